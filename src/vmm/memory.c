#include "kumo/memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int guest_mem_init(struct guest_mem *mem, uint64_t size)
{
	uint64_t low;
	void *p;

	memset(mem, 0, sizeof(*mem));
	if (size < GUEST_MEM_MIN || size > GUEST_MEM_MAX || size % (4 * KiB))
		return -EINVAL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Guest RAM is not worth a core dump, and fork children need none of it. */
	madvise(p, size, MADV_DONTDUMP);
	madvise(p, size, MADV_DONTFORK);
	mem->base = p;
	mem->size = size;
	low = MIN(size, MMIO_HOLE_START);
	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = low, .host = p };
	mem->nr_regions = 1;
	if (size > low) {
		mem->regions[1] = (struct mem_region){
			.gpa = MMIO_HOLE_END, .size = size - low, .host = mem->base + low,
		};
		mem->nr_regions = 2;
	}
	return 0;
}

void guest_mem_free(struct guest_mem *mem)
{
	if (mem->code) {
		munmap((void *)mem->code->map, (mem->code->pages + 7) / 8);
		free(mem->code);
	}
	if (mem->base)
		munmap(mem->base, mem->size);
	memset(mem, 0, sizeof(*mem));
}

int guest_mem_track_code(struct guest_mem *mem)
{
	const struct mem_region *top = &mem->regions[mem->nr_regions - 1];
	struct guest_code *gc;
	void *map;

	if (mem->code)
		return 0;
	gc = calloc(1, sizeof(*gc));
	if (!gc)
		return -ENOMEM;
	gc->pages = (top->gpa + top->size) >> 12;
	map = mmap(NULL, (gc->pages + 7) / 8, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED) {
		free(gc);
		return -ENOMEM;
	}
	gc->map = map;
	mem->code = gc;
	return 0;
}

bool guest_mem_code_slow(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct guest_code *gc = mem->code;
	uint64_t last;

	if (!len)
		return false;
	last = (gpa + len - 1) >> 12;
	if (last < gpa >> 12 || last >= gc->pages)
		return true; /* not RAM that was looked at: say yes */
	/* bit by bit to a byte boundary, then 8 pages a byte, then the rest */
	for (uint64_t pg = gpa >> 12; pg <= last;) {
		uint8_t bits = atomic_load_explicit(&gc->map[pg >> 3], memory_order_relaxed);

		if (!(pg & 7) && last - pg >= 7) {
			if (bits)
				return true;
			pg += 8;
			continue;
		}
		if (bits & (1u << (pg & 7)))
			return true;
		pg++;
	}
	return false;
}

void guest_mem_code_written(const struct guest_mem *mem)
{
	if (mem->code)
		atomic_fetch_add_explicit(&mem->code->epoch, 1, memory_order_release);
}

void *gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gpa_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = gpa_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}
