#include "kumo/memory.h"

#include <errno.h>
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
	if (mem->base)
		munmap(mem->base, mem->size);
	memset(mem, 0, sizeof(*mem));
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
