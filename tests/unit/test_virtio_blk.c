/* virtio_blk_parse: well-formed requests in every framing the spec allows,
 * and a table of malformed ones from a hostile driver. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kumo/virtio_blk.h"

#define CAPACITY 2048 /* sectors: 1 MiB */
#define MAX_SECT 1024

struct chain {
	struct virtq_elem e;
	uint8_t out[8192], in[8192]; /* the guest's buffers, flat */
};

/* Splits the flat buffers into segments of the given lengths: readable
 * ones first, then writable. */
static void build(struct chain *c, const unsigned *out, unsigned nout, const unsigned *in, unsigned nin)
{
	size_t at = 0;

	c->e = (struct virtq_elem){ .head = 7, .nout = (uint16_t)nout, .nin = (uint16_t)nin };
	for (unsigned i = 0; i < nout; i++) {
		c->e.iov[i] = (struct iovec){ c->out + at, out[i] };
		c->e.out_len += out[i];
		at += out[i];
	}
	at = 0;
	for (unsigned i = 0; i < nin; i++) {
		c->e.iov[nout + i] = (struct iovec){ c->in + at, in[i] };
		c->e.in_len += in[i];
		at += in[i];
	}
}

static void header(struct chain *c, uint32_t type, uint64_t sector)
{
	put_le32(c->out, type);
	put_le32(c->out + 4, 0);
	put_le64(c->out + 8, sector);
}

static void range(struct chain *c, unsigned i, uint64_t sector, uint32_t num, uint32_t flags)
{
	uint8_t *p = c->out + VIRTIO_BLK_HDR_LEN + i * VIRTIO_BLK_RANGE_LEN;

	put_le64(p, sector);
	put_le32(p + 8, num);
	put_le32(p + 12, flags);
}

static struct virtio_blk_limits limits(bool ro)
{
	return (struct virtio_blk_limits){
		.capacity = CAPACITY, .read_only = ro, .discard = !ro, .write_zeroes = !ro,
		.max_discard_sectors = MAX_SECT, .max_write_zeroes_sectors = MAX_SECT, .max_ranges = 4,
	};
}

static uint64_t iov_sum(const struct blk_req *r)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < r->niov; i++) {
		assert_true(r->iov[i].iov_len > 0);
		t += r->iov[i].iov_len;
	}
	return t;
}

static struct chain c;
static struct blk_req req;

/* ---- well-formed ---- */

static void test_read_linux_framing(void **state)
{
	struct virtio_blk_limits lim = limits(false);

	header(&c, VIRTIO_BLK_T_IN, 8);
	build(&c, (unsigned[]){ 16 }, 1, (unsigned[]){ 4096, 1 }, 2);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.type, VIRTIO_BLK_T_IN);
	assert_int_equal(req.sector, 8);
	assert_int_equal(req.len, 4096);
	assert_int_equal(req.niov, 1);
	assert_ptr_equal(req.iov[0].iov_base, c.in);
	assert_ptr_equal(req.status, c.in + 4096);
}

/* Data and status in one segment, the header in three. */
static void test_read_any_framing(void **state)
{
	struct virtio_blk_limits lim = limits(false);

	header(&c, VIRTIO_BLK_T_IN, 0x0102030405ULL & 0x3ff);
	build(&c, (unsigned[]){ 5, 5, 6 }, 3, (unsigned[]){ 1024 + 1 }, 1);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.sector, 0x0102030405ULL & 0x3ff);
	assert_int_equal(req.len, 1024);
	assert_int_equal(req.niov, 1);
	assert_int_equal(req.iov[0].iov_len, 1024);
	assert_ptr_equal(req.status, c.in + 1024);
}

/* Zero-length segments anywhere: skipped, never handed on. */
static void test_zero_length_segments(void **state)
{
	struct virtio_blk_limits lim = limits(false);

	header(&c, VIRTIO_BLK_T_OUT, 2);
	build(&c, (unsigned[]){ 0, 16, 0, 512, 0, 512 }, 6, (unsigned[]){ 1, 0, 0 }, 3);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.len, 1024);
	assert_int_equal(req.niov, 2);
	assert_int_equal(iov_sum(&req), 1024);
	assert_ptr_equal(req.iov[0].iov_base, c.out + 16);
	assert_ptr_equal(req.status, c.in);
}

/* The header and the data share a segment; the status has a few extra
 * writable bytes before it (they are ignored). */
static void test_write_shared_segment(void **state)
{
	struct virtio_blk_limits lim = limits(false);

	header(&c, VIRTIO_BLK_T_OUT, CAPACITY - 2);
	build(&c, (unsigned[]){ 16 + 1024 }, 1, (unsigned[]){ 3 }, 1);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.len, 1024);
	assert_ptr_equal(req.iov[0].iov_base, c.out + 16);
	assert_ptr_equal(req.status, c.in + 2);
}

static void test_get_id(void **state)
{
	struct virtio_blk_limits lim = limits(true);

	header(&c, VIRTIO_BLK_T_GET_ID, 0);
	build(&c, (unsigned[]){ 16 }, 1, (unsigned[]){ 20, 1 }, 2);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.len, 20);
	/* A longer buffer: still 20 bytes of id at most. */
	build(&c, (unsigned[]){ 16 }, 1, (unsigned[]){ 64 }, 1);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.len, 20);
	assert_int_equal(iov_sum(&req), 20);
	assert_ptr_equal(req.status, c.in + 63);
}

static void test_ranges(void **state)
{
	struct virtio_blk_limits lim = limits(false);

	header(&c, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	range(&c, 0, 0, 8, VIRTIO_BLK_WZ_F_UNMAP);
	range(&c, 1, CAPACITY - MAX_SECT, MAX_SECT, 0);
	build(&c, (unsigned[]){ 16, 20, 12 }, 3, (unsigned[]){ 1 }, 1);
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.nranges, 2);
	assert_true(req.ranges[0].unmap);
	assert_int_equal(req.ranges[0].num_sectors, 8);
	assert_false(req.ranges[1].unmap);
	assert_int_equal(req.ranges[1].sector, CAPACITY - MAX_SECT);
}

/* ---- malformed: a table ---- */

struct bad_case {
	const char *name;
	uint32_t type;
	uint64_t sector;
	unsigned out[4], nout;
	unsigned in[4], nin;
	unsigned nranges;         /* ranges, all equal to r */
	uint64_t r_sector;
	uint32_t r_num, r_flags;
	bool ro, no_discard;
	int rc;                   /* VIRTIO_BLK_REQ_DONE or -EINVAL */
	uint8_t status;
};

#define HDR16 .out = { 16 }, .nout = 1
#define ST1 .in = { 1 }, .nin = 1

static const struct bad_case bad_cases[] = {
	{ "no writable segment", VIRTIO_BLK_T_IN, 0, { 16 }, 1, { 0 }, 0, .rc = -EINVAL },
	{ "only empty writable segments", VIRTIO_BLK_T_FLUSH, 0, { 16 }, 1, { 0, 0 }, 2, .rc = -EINVAL },
	{ "no header at all", VIRTIO_BLK_T_IN, 0, { 0 }, 0, { 513 }, 1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "header of 15 bytes", VIRTIO_BLK_T_FLUSH, 0, { 15 }, 1, ST1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "unknown type", 99, 0, HDR16, ST1, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "type with high bits", VIRTIO_BLK_T_IN | 0x80000000u, 0, HDR16, { 513 }, 1, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "get lifetime", VIRTIO_BLK_T_GET_LIFETIME, 0, HDR16, { 17 }, 1, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "secure erase", VIRTIO_BLK_T_SECURE_ERASE, 0, { 32 }, 1, ST1, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "read of half a sector", VIRTIO_BLK_T_IN, 0, HDR16, { 256, 1 }, 2, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "write of half a sector", VIRTIO_BLK_T_OUT, 0, { 16, 256 }, 2, ST1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "read past the end", VIRTIO_BLK_T_IN, CAPACITY - 1, HDR16, { 1024, 1 }, 2, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "read starting past the end", VIRTIO_BLK_T_IN, CAPACITY + 1, HDR16, { 0, 1 }, 2, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "sector + length wraps", VIRTIO_BLK_T_IN, UINT64_MAX - 1, HDR16, { 1024, 1 }, 2, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "sector whose bytes wrap", VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1, { 16, 512 }, 2, ST1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "write past the end", VIRTIO_BLK_T_OUT, CAPACITY, { 16, 512 }, 2, ST1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "read with readable data", VIRTIO_BLK_T_IN, 0, { 16, 512 }, 2, { 513 }, 1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "write to a read-only disk", VIRTIO_BLK_T_OUT, 0, { 16, 512 }, 2, ST1, .ro = true, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard on a read-only disk", VIRTIO_BLK_T_DISCARD, 0, { 32 }, 1, ST1, 1, 0, 8, 0, .ro = true, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "write zeroes on a read-only disk", VIRTIO_BLK_T_WRITE_ZEROES, 0, { 32 }, 1, ST1, 1, 0, 8, 0, .ro = true, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard not negotiated", VIRTIO_BLK_T_DISCARD, 0, { 32 }, 1, ST1, 1, 0, 8, 0, .no_discard = true, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "discard without ranges", VIRTIO_BLK_T_DISCARD, 0, HDR16, ST1, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard with a partial range", VIRTIO_BLK_T_DISCARD, 0, { 16, 15 }, 2, ST1, 1, 0, 8, 0, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard with too many ranges", VIRTIO_BLK_T_DISCARD, 0, { 16 + 5 * 16 }, 1, ST1, 5, 0, 8, 0, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard with unmap", VIRTIO_BLK_T_DISCARD, 0, { 32 }, 1, ST1, 1, 0, 8, VIRTIO_BLK_WZ_F_UNMAP, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "write zeroes, unknown flag", VIRTIO_BLK_T_WRITE_ZEROES, 0, { 32 }, 1, ST1, 1, 0, 8, 2, .rc = 1, .status = VIRTIO_BLK_S_UNSUPP },
	{ "discard range past the end", VIRTIO_BLK_T_DISCARD, 0, { 32 }, 1, ST1, 1, CAPACITY - 4, 8, 0, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard range that wraps", VIRTIO_BLK_T_DISCARD, 0, { 32 }, 1, ST1, 1, UINT64_MAX - 3, 8, 0, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "discard range too long", VIRTIO_BLK_T_DISCARD, 0, { 32 }, 1, ST1, 1, 0, MAX_SECT + 1, 0, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
	{ "write zeroes range past the end", VIRTIO_BLK_T_WRITE_ZEROES, 0, { 48 }, 1, ST1, 2, CAPACITY, 1, 0, .rc = 1, .status = VIRTIO_BLK_S_IOERR },
};

static void test_bad_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct virtio_blk_limits lim = limits(t->ro);
		int rc;

		if (t->no_discard)
			lim.discard = lim.write_zeroes = false;
		memset(&c, 0xee, sizeof(c));
		header(&c, t->type, t->sector);
		for (unsigned k = 0; k < t->nranges; k++)
			range(&c, k, t->r_sector, t->r_num, t->r_flags);
		build(&c, t->out, t->nout, t->in, t->nin);
		rc = virtio_blk_parse(&c.e, &lim, &req);
		if (rc != t->rc)
			fail_msg("%s: rc %d, want %d", t->name, rc, t->rc);
		if (rc == VIRTIO_BLK_REQ_DONE && req.status_code != t->status)
			fail_msg("%s: status %u, want %u", t->name, req.status_code, t->status);
		if (rc == VIRTIO_BLK_REQ_DONE) {
			/* The status byte is the last writable one. */
			uint64_t last = 0;
			for (unsigned k = 0; k < t->nin; k++)
				last += t->in[k];
			if (req.status != c.in + last - 1)
				fail_msg("%s: status byte at the wrong place", t->name);
		}
	}
}

/* The totals in the element are the guest's word through virtq_pop; the
 * parser recomputes them from the segments. */
static void test_lying_totals(void **state)
{
	struct virtio_blk_limits lim = limits(false);

	header(&c, VIRTIO_BLK_T_IN, 0);
	build(&c, (unsigned[]){ 16 }, 1, (unsigned[]){ 512, 1 }, 2);
	c.e.in_len = 1u << 30;
	c.e.out_len = 0;
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), VIRTIO_BLK_REQ_RUN);
	assert_int_equal(req.len, 512);
	c.e.nin = VIRTQ_MAX_SEGS; /* more segments than the element holds */
	assert_int_equal(virtio_blk_parse(&c.e, &lim, &req), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_linux_framing),
		cmocka_unit_test(test_read_any_framing),
		cmocka_unit_test(test_zero_length_segments),
		cmocka_unit_test(test_write_shared_segment),
		cmocka_unit_test(test_get_id),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_lying_totals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
