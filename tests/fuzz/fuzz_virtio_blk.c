/* Fuzz target: virtio_blk_parse on a chain whose shape and bytes come from
 * the input. Every segment is its own exact-size allocation, so a read or
 * write one byte outside the chain is an ASan report.
 *
 * Input: byte 0 limits (bit 0 read-only, bit 1 discard, bit 2 write
 * zeroes, bits 3-7 pick the capacity), byte 1 readable segments (0-15),
 * byte 2 writable segments (0-15), then a le16 length per segment (mod
 * 4096), then the readable bytes (zeros once the input runs out). */
#include <errno.h>
#include <string.h>

#include "kumo/virtio_blk.h"
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

#define MAX_SEG_LEN 4096

static const uint64_t capacities[] = {
	0, 1, 8, 2048, 1 << 20, UINT64_MAX / 512, UINT64_MAX - 1, UINT64_MAX,
};

static uint8_t next(const uint8_t *data, size_t size, size_t *at)
{
	return *at < size ? data[(*at)++] : 0;
}

static bool inside(const struct virtq_elem *e, unsigned first, unsigned n, const uint8_t *p, size_t len)
{
	for (unsigned i = first; i < first + n; i++) {
		const uint8_t *b = e->iov[i].iov_base;
		if (p >= b && len <= e->iov[i].iov_len && p - b <= (ptrdiff_t)(e->iov[i].iov_len - len))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_elem e;
	static struct blk_req r;
	struct virtio_blk_limits lim;
	size_t at = 0;
	uint8_t flags = next(data, size, &at);
	unsigned nout = next(data, size, &at) % 16, nin = next(data, size, &at) % 16;
	uint64_t out_total = 0, in_total = 0;
	int rc;

	lim = (struct virtio_blk_limits){
		.capacity = capacities[(flags >> 3) % ARRAY_SIZE(capacities)],
		.read_only = flags & 1, .discard = flags & 2, .write_zeroes = flags & 4,
		.max_discard_sectors = 1 << 22, .max_write_zeroes_sectors = 1 << 22,
		.max_ranges = VIRTIO_BLK_MAX_RANGES,
	};
	memset(&e, 0, sizeof(e));
	e.nout = (uint16_t)nout;
	e.nin = (uint16_t)nin;
	for (unsigned i = 0; i < nout + nin; i++) {
		size_t len = (next(data, size, &at) | (size_t)next(data, size, &at) << 8) % MAX_SEG_LEN;
		e.iov[i] = (struct iovec){ malloc(len ? len : 1), len };
		FUZZ_CHECK(e.iov[i].iov_base);
		if (i < nout)
			out_total += len;
		else
			in_total += len;
	}
	e.out_len = out_total;
	e.in_len = in_total;
	for (unsigned i = 0; i < nout; i++)
		for (size_t k = 0; k < e.iov[i].iov_len; k++)
			((uint8_t *)e.iov[i].iov_base)[k] = next(data, size, &at);
	for (unsigned i = nout; i < nout + nin; i++)
		memset(e.iov[i].iov_base, 0xcc, e.iov[i].iov_len);

	rc = virtio_blk_parse(&e, &lim, &r);
	FUZZ_CHECK(rc == VIRTIO_BLK_REQ_RUN || rc == VIRTIO_BLK_REQ_DONE || rc == -EINVAL);
	if (rc == -EINVAL) {
		FUZZ_CHECK(in_total == 0);
		goto out;
	}
	/* The status byte is the writable part's last byte. */
	FUZZ_CHECK(in_total > 0);
	FUZZ_CHECK(inside(&e, nout, nin, r.status, 1));
	*r.status = 0;
	if (rc == VIRTIO_BLK_REQ_DONE) {
		FUZZ_CHECK(r.status_code == VIRTIO_BLK_S_IOERR || r.status_code == VIRTIO_BLK_S_UNSUPP);
		goto out;
	}
	switch (r.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		uint64_t sum = 0;
		bool in = r.type == VIRTIO_BLK_T_IN;
		FUZZ_CHECK(!in || r.len == in_total - 1);
		FUZZ_CHECK(in || (r.len == out_total - VIRTIO_BLK_HDR_LEN && !lim.read_only));
		FUZZ_CHECK(r.len % VIRTIO_BLK_SECTOR == 0);
		FUZZ_CHECK(r.sector <= lim.capacity &&
			   r.len / VIRTIO_BLK_SECTOR <= lim.capacity - r.sector);
		for (unsigned i = 0; i < r.niov; i++) {
			FUZZ_CHECK(r.iov[i].iov_len > 0);
			FUZZ_CHECK(inside(&e, in ? nout : 0, in ? nin : nout, r.iov[i].iov_base,
					  r.iov[i].iov_len));
			/* Data never overlaps the status byte. */
			FUZZ_CHECK(r.status < (uint8_t *)r.iov[i].iov_base ||
				   r.status >= (uint8_t *)r.iov[i].iov_base + r.iov[i].iov_len);
			sum += r.iov[i].iov_len;
		}
		FUZZ_CHECK(sum == r.len);
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		break;
	case VIRTIO_BLK_T_GET_ID:
		FUZZ_CHECK(r.len <= VIRTIO_BLK_ID_BYTES);
		for (unsigned i = 0; i < r.niov; i++) {
			FUZZ_CHECK(inside(&e, nout, nin, r.iov[i].iov_base, r.iov[i].iov_len));
			memset(r.iov[i].iov_base, 'x', r.iov[i].iov_len);
		}
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		FUZZ_CHECK(!lim.read_only);
		FUZZ_CHECK(r.type == VIRTIO_BLK_T_DISCARD ? lim.discard : lim.write_zeroes);
		FUZZ_CHECK(r.nranges >= 1 && r.nranges <= lim.max_ranges);
		for (unsigned i = 0; i < r.nranges; i++) {
			FUZZ_CHECK(r.ranges[i].sector <= lim.capacity &&
				   r.ranges[i].num_sectors <= lim.capacity - r.ranges[i].sector);
			FUZZ_CHECK(r.ranges[i].num_sectors <= (1u << 22));
			FUZZ_CHECK(r.type == VIRTIO_BLK_T_WRITE_ZEROES || !r.ranges[i].unmap);
		}
		break;
	default:
		FUZZ_CHECK(!"a request of an unknown type to run");
	}
out:
	for (unsigned i = 0; i < nout + nin; i++)
		free(e.iov[i].iov_base);
	return 0;
}

/* ---- seeds: the requests Linux sends ---- */

static void seed(void (*add)(const char *, uint8_t *, size_t), const char *name, uint8_t flags,
		 const uint16_t *out, unsigned nout, const uint16_t *in, unsigned nin,
		 uint32_t type, uint64_t sector, unsigned nranges)
{
	size_t len = 3 + 2 * (nout + nin) + 16 + 16 * nranges, at = 0;
	uint8_t *p = calloc(1, len);

	if (!p)
		abort();
	p[at++] = flags;
	p[at++] = (uint8_t)nout;
	p[at++] = (uint8_t)nin;
	for (unsigned i = 0; i < nout; i++, at += 2)
		put_le16(p + at, out[i]);
	for (unsigned i = 0; i < nin; i++, at += 2)
		put_le16(p + at, in[i]);
	put_le32(p + at, type);
	put_le64(p + at + 8, sector);
	at += 16;
	for (unsigned i = 0; i < nranges; i++, at += 16) {
		put_le64(p + at, 8 * i);
		put_le32(p + at + 8, 8);
		put_le32(p + at + 12, type == VIRTIO_BLK_T_WRITE_ZEROES);
	}
	add(name, p, len);
}

void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	const uint8_t rw = 3 << 3 | 6; /* 2048 sectors, discard, write zeroes */

	seed(add, "blk-read", rw, (uint16_t[]){ 16 }, 1, (uint16_t[]){ 4096, 1 }, 2,
	     VIRTIO_BLK_T_IN, 8, 0);
	seed(add, "blk-write", rw, (uint16_t[]){ 16, 1024 }, 2, (uint16_t[]){ 1 }, 1,
	     VIRTIO_BLK_T_OUT, 2040, 0);
	seed(add, "blk-write-ro", rw | 1, (uint16_t[]){ 16, 512 }, 2, (uint16_t[]){ 1 }, 1,
	     VIRTIO_BLK_T_OUT, 0, 0);
	seed(add, "blk-flush", rw, (uint16_t[]){ 16 }, 1, (uint16_t[]){ 1 }, 1,
	     VIRTIO_BLK_T_FLUSH, 0, 0);
	seed(add, "blk-get-id", rw, (uint16_t[]){ 16 }, 1, (uint16_t[]){ 20, 1 }, 2,
	     VIRTIO_BLK_T_GET_ID, 0, 0);
	seed(add, "blk-discard", rw, (uint16_t[]){ 16, 48 }, 2, (uint16_t[]){ 1 }, 1,
	     VIRTIO_BLK_T_DISCARD, 0, 3);
	seed(add, "blk-write-zeroes", rw, (uint16_t[]){ 48 }, 1, (uint16_t[]){ 1 }, 1,
	     VIRTIO_BLK_T_WRITE_ZEROES, 0, 2);
}
