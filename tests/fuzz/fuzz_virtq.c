/* Fuzz target: a split virtqueue whose rings, descriptors and indirect
 * tables are the input. The first 32 bytes choose the queue (size,
 * features, ring addresses, avail idx); the rest is copied into guest
 * memory at 0. Whatever the bytes, virtq_pop returns a chain whose every
 * segment lies inside guest RAM, or an error, and never loops. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/virtio.h"
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

#define MEM_SIZE (8ULL << 20)

static struct guest_mem mem;
static bool mem_ready;

static bool in_ram(const void *p, size_t len)
{
	const uint8_t *b = p;
	for (unsigned i = 0; i < mem.nr_regions; i++) {
		const struct mem_region *r = &mem.regions[i];
		if (b >= r->host && len <= r->size && b - r->host <= (ptrdiff_t)(r->size - len))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq q;
	static struct virtq_elem e;
	uint8_t *ram;

	if (size < 32)
		return 0;
	if (!mem_ready) {
		FUZZ_CHECK(guest_mem_init(&mem, MEM_SIZE) == 0);
		mem_ready = true;
	}
	ram = gpa_ptr(&mem, 0, 1 << 16);
	FUZZ_CHECK(ram);
	memset(ram, 0, 1 << 16);
	memcpy(ram, data + 32, MIN(size - 32, (size_t)1 << 16));

	virtq_init(&q, &mem, 1024);
	q.size = (uint16_t)(1u << (data[0] % 11));     /* 1..1024 */
	if (data[1] & 0x80)
		q.size = get_le16(data + 2);            /* any size at all */
	q.indirect = data[1] & 1;
	/* Ring addresses: small offsets mostly, anything sometimes. */
	q.desc_gpa = data[1] & 2 ? get_le64(data + 4) : get_le16(data + 4);
	q.avail_gpa = data[1] & 4 ? get_le64(data + 12) : get_le16(data + 12);
	q.used_gpa = data[1] & 8 ? get_le64(data + 20) : get_le16(data + 20) + 0x8000ULL;
	if (virtq_enable(&q) == 0) {
		q.indirect = data[1] & 1;
		q.event_idx = data[1] & 16;
		for (unsigned n = 0; n < 2048; n++) {
			int rc = virtq_pop(&q, &e);
			if (rc <= 0) {
				FUZZ_CHECK(rc == 0 || (rc == -EIO && q.broken));
				break;
			}
			FUZZ_CHECK(e.head < q.size);
			FUZZ_CHECK((unsigned)e.nout + e.nin <= VIRTQ_MAX_SEGS);
			uint64_t out = 0, in = 0;
			for (unsigned i = 0; i < (unsigned)e.nout + e.nin; i++) {
				if (e.iov[i].iov_len)
					FUZZ_CHECK(in_ram(e.iov[i].iov_base, e.iov[i].iov_len));
				*(i < e.nout ? &out : &in) += e.iov[i].iov_len;
			}
			FUZZ_CHECK(out == e.out_len && in == e.in_len);
			/* The device writes what it may. */
			if (e.nin)
				iov_from_buf(e.iov + e.nout, e.nin, 0, data, MIN(size, (size_t)e.in_len));
			virtq_push(&q, e.head, (uint32_t)e.in_len);
			virtq_notify(&q);
		}
		virtq_set_kicks(&q, data[30] & 1);
	}
	virtq_destroy(&q);
	return 0;
}

/* Seeds: well-formed queues (direct chains, an indirect table, event idx)
 * for the mutations to start from. gpa 0 is input byte 32. */
static void put_desc(uint8_t *ram, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = ram + table + 16 * i;
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	for (unsigned variant = 0; variant < 3; variant++) {
		size_t len = 32 + 0x4000;
		uint8_t *s = calloc(1, len), *ram = s + 32;
		if (!s)
			return;
		s[0] = 4;                              /* size 16 */
		s[1] = variant == 1 ? 1 : variant == 2 ? 16 : 0;
		put_le16(s + 4, 0x0000);               /* desc */
		put_le16(s + 12, 0x1000);              /* avail */
		put_le16(s + 20, 0x2000);              /* used at 0xa000 */
		/* chain 0: header, data, status; chain 3: one writable buffer */
		put_desc(ram, 0, 0, 0x3000, 16, 1, 1);
		put_desc(ram, 0, 1, 0x3100, 512, 3, 2);
		put_desc(ram, 0, 2, 0x3400, 1, 2, 0);
		put_desc(ram, 0, 3, 0x3500, 64, 2, 0);
		unsigned n = 2;
		put_le16(ram + 0x1000 + 4, 0);
		put_le16(ram + 0x1000 + 6, 3);
		if (variant == 1) {                     /* indirect table at 0x3800 */
			put_desc(ram, 0x3800, 0, 0x3000, 16, 1, 1);
			put_desc(ram, 0x3800, 1, 0x3100, 8, 3, 2);
			put_desc(ram, 0x3800, 2, 0x3400, 1, 2, 0);
			put_desc(ram, 0, 4, 0x3800, 48, 4, 0);
			put_le16(ram + 0x1000 + 8, 4);
			n = 3;
		}
		put_le16(ram + 0x1000 + 2, (uint16_t)n);
		add(variant == 0 ? "virtq-direct" : variant == 1 ? "virtq-indirect" : "virtq-event-idx",
		    s, len);
	}
}
