/* Split virtqueues against a hostile driver: every malformed ring or chain
 * is refused (and the queue marked broken), nothing outside guest RAM is
 * ever handed to a device, and interrupts follow the suppression rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kumo/virtio.h"
#include "mem_fixture.h"

#define QSIZE 8
#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define BUFS  0x20000ULL
#define IND   0x30000ULL

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct ctx {
	struct guest_mem *mem;
	struct virtq q;
	struct virtq_elem e;
	unsigned interrupts;
};

static uint8_t *g(struct ctx *c, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gpa_ptr(c->mem, gpa, len);
	assert_non_null(p);
	return p;
}

static void desc_at(struct ctx *c, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	uint8_t *d = g(c, table + 16ULL * i, 16);
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

static void desc(struct ctx *c, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(c, DESC, i, addr, len, flags, next);
}

/* Offer head as the next available chain. */
static void offer(struct ctx *c, uint16_t head)
{
	uint8_t *a = g(c, AVAIL, 6 + 2 * QSIZE);
	uint16_t idx = get_le16(a + 2);
	put_le16(a + 4 + 2 * (idx % QSIZE), head);
	put_le16(a + 2, (uint16_t)(idx + 1));
}

static void on_interrupt(void *opaque, struct virtq *q)
{
	(void)q;
	((struct ctx *)opaque)->interrupts++;
}

static int setup(void **state)
{
	static struct ctx c;
	void *mem;

	if (mem_setup_size(&mem, 16 << 20))
		return -1;
	memset(&c, 0, sizeof(c));
	c.mem = mem;
	virtq_init(&c.q, c.mem, 256);
	c.q.size = QSIZE;
	c.q.desc_gpa = DESC;
	c.q.avail_gpa = AVAIL;
	c.q.used_gpa = USED;
	c.q.interrupt = on_interrupt;
	c.q.opaque = &c;
	if (virtq_enable(&c.q))
		return -1;
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	void *mem = c->mem;

	virtq_destroy(&c->q);
	return mem_teardown(&mem);
}

static void pop_broken(struct ctx *c)
{
	assert_int_equal(virtq_pop(&c->q, &c->e), -EIO);
	assert_true(c->q.broken);
	/* Broken stays broken: nothing more is popped. */
	assert_int_equal(virtq_pop(&c->q, &c->e), -EIO);
}

static void test_empty(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(virtq_pop(&c->q, &c->e), 0);
	assert_false(virtq_has_avail(&c->q));
}

static void test_chain(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, BUFS, 16, F_NEXT, 3);
	desc(c, 3, BUFS + 0x1000, 512, F_NEXT | F_WRITE, 5);
	desc(c, 5, BUFS + 0x2000, 1, F_WRITE, 0);
	offer(c, 0);
	assert_true(virtq_has_avail(&c->q));
	assert_int_equal(virtq_pop(&c->q, &c->e), 1);
	assert_int_equal(c->e.head, 0);
	assert_int_equal(c->e.nout, 1);
	assert_int_equal(c->e.nin, 2);
	assert_int_equal(c->e.out_len, 16);
	assert_int_equal(c->e.in_len, 513);
	assert_ptr_equal(c->e.iov[0].iov_base, g(c, BUFS, 16));
	assert_ptr_equal(c->e.iov[2].iov_base, g(c, BUFS + 0x2000, 1));
	assert_int_equal(virtq_pop(&c->q, &c->e), 0);

	virtq_push(&c->q, 0, 513);
	uint8_t *u = g(c, USED, 6 + 8 * QSIZE);
	assert_int_equal(get_le16(u + 2), 1);
	assert_int_equal(get_le32(u + 4), 0);
	assert_int_equal(get_le32(u + 8), 513);
	virtq_notify(&c->q);
	assert_int_equal(c->interrupts, 1);
}

static void test_loop(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, BUFS, 16, F_NEXT, 1);
	desc(c, 1, BUFS, 16, F_NEXT, 0);
	offer(c, 0);
	pop_broken(c);
}

static void test_self_loop(void **state)
{
	struct ctx *c = *state;

	desc(c, 2, BUFS, 16, F_NEXT, 2);
	offer(c, 2);
	pop_broken(c);
}

static void test_out_of_ram(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, 16ULL << 20, 16, 0, 0);  /* just past the end of RAM */
	offer(c, 0);
	pop_broken(c);
}

static void test_straddles_end(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, (16ULL << 20) - 8, 16, 0, 0);
	offer(c, 0);
	pop_broken(c);
}

static void test_length_wraps(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	offer(c, 0);
	pop_broken(c);
}

static void test_mmio_buffer(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, 0xfee00000ULL, 4, F_WRITE, 0);  /* the LAPIC */
	offer(c, 0);
	pop_broken(c);
}

static void test_zero_length(void **state)
{
	struct ctx *c = *state;

	/* A zero-length buffer at a bogus address carries nothing: accepted,
	 * never dereferenced. */
	desc(c, 0, 0xdead0000000ULL, 0, F_NEXT, 1);
	desc(c, 1, BUFS, 1, F_WRITE, 0);
	offer(c, 0);
	assert_int_equal(virtq_pop(&c->q, &c->e), 1);
	assert_int_equal(c->e.nout, 1);
	assert_int_equal(c->e.iov[0].iov_len, 0);
	assert_null(c->e.iov[0].iov_base);
	assert_int_equal(c->e.in_len, 1);
}

static void test_write_then_read(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, BUFS, 16, F_WRITE | F_NEXT, 1);
	desc(c, 1, BUFS, 16, 0, 0);
	offer(c, 0);
	pop_broken(c);
}

static void test_bad_head(void **state)
{
	struct ctx *c = *state;

	offer(c, QSIZE);
	pop_broken(c);
}

static void test_bad_next(void **state)
{
	struct ctx *c = *state;

	desc(c, 0, BUFS, 16, F_NEXT, QSIZE);
	offer(c, 0);
	pop_broken(c);
}

static void test_avail_jump(void **state)
{
	struct ctx *c = *state;
	uint8_t *a = g(c, AVAIL, 6);

	/* The driver claims more buffers than the ring holds. */
	put_le16(a + 2, QSIZE + 1);
	pop_broken(c);
}

static void test_indirect_not_negotiated(void **state)
{
	struct ctx *c = *state;

	desc_at(c, IND, 0, BUFS, 16, 0, 0);
	desc(c, 0, IND, 16, F_INDIRECT, 0);
	offer(c, 0);
	pop_broken(c);
}

static void test_indirect(void **state)
{
	struct ctx *c = *state;

	c->q.indirect = true;
	desc_at(c, IND, 0, BUFS, 16, F_NEXT, 1);
	desc_at(c, IND, 1, BUFS + 0x100, 100, F_WRITE, 0);
	desc(c, 4, IND, 32, F_INDIRECT, 0);
	offer(c, 4);
	assert_int_equal(virtq_pop(&c->q, &c->e), 1);
	assert_int_equal(c->e.head, 4);
	assert_int_equal(c->e.nout, 1);
	assert_int_equal(c->e.nin, 1);
	assert_int_equal(c->e.in_len, 100);
}

static void test_indirect_bad(void **state)
{
	struct ctx *c = *state;
	/* Each: the indirect descriptor, and what its table holds. */
	static const struct { uint32_t len; uint16_t flags; uint16_t in_flags, in_next; } cases[] = {
		{ 24, F_INDIRECT, 0, 0 },                    /* not whole entries */
		{ 0, F_INDIRECT, 0, 0 },                     /* empty table */
		{ 32, F_INDIRECT | F_NEXT, 0, 0 },           /* indirect and next */
		{ 32, F_INDIRECT, F_INDIRECT, 0 },           /* nested */
		{ 32, F_INDIRECT, F_NEXT, 2 },               /* next past the table */
		{ 32, F_INDIRECT, F_NEXT, 0 },               /* loop inside */
		{ 16 * (VIRTQ_MAX_SEGS + 1), F_INDIRECT, 0, 0 }, /* too long */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		virtq_reset(&c->q);
		c->q.size = QSIZE;
		c->q.desc_gpa = DESC;
		c->q.avail_gpa = AVAIL;
		c->q.used_gpa = USED;
		memset(g(c, AVAIL, 6 + 2 * QSIZE), 0, 6 + 2 * QSIZE);
		assert_int_equal(virtq_enable(&c->q), 0);
		c->q.indirect = true;
		desc_at(c, IND, 0, BUFS, 16, cases[i].in_flags, cases[i].in_next);
		desc_at(c, IND, 1, BUFS, 16, cases[i].in_flags, cases[i].in_next);
		desc(c, 0, IND, cases[i].len, cases[i].flags, 1);
		desc(c, 1, BUFS, 16, 0, 0);
		offer(c, 0);
		assert_int_equal(virtq_pop(&c->q, &c->e), -EIO);
	}
}

static void test_too_many_segments(void **state)
{
	struct ctx *c = *state;

	/* A direct chain can't exceed the queue size; make the queue big
	 * enough that the segment limit is what stops it. */
	virtq_reset(&c->q);
	c->q.size = 256;
	c->q.desc_gpa = 0x40000;
	c->q.avail_gpa = 0x50000;
	c->q.used_gpa = 0x60000;
	assert_int_equal(virtq_enable(&c->q), 0);
	c->q.indirect = true;
	/* An indirect table of VIRTQ_MAX_SEGS entries is fine... */
	for (uint16_t i = 0; i < VIRTQ_MAX_SEGS; i++)
		desc_at(c, IND, i, BUFS, 1, i + 1 < VIRTQ_MAX_SEGS ? F_NEXT : 0, (uint16_t)(i + 1));
	desc_at(c, 0x40000, 0, IND, 16 * VIRTQ_MAX_SEGS, F_INDIRECT, 0);
	uint8_t *a = g(c, 0x50000, 6 + 2 * 256);
	put_le16(a + 4, 0);
	put_le16(a + 2, 1);
	assert_int_equal(virtq_pop(&c->q, &c->e), 1);
	assert_int_equal(c->e.nout, VIRTQ_MAX_SEGS);
}

static void test_rings_outside_ram(void **state)
{
	struct ctx *c = *state;
	static const struct { uint64_t desc, avail, used; uint16_t size; } cases[] = {
		{ DESC, AVAIL, 0xfee00000ULL, QSIZE },          /* used ring in MMIO */
		{ DESC, 0xc0000000ULL, USED, QSIZE },           /* avail ring in the PCI window */
		{ (16ULL << 20) - 64, AVAIL, USED, QSIZE },     /* desc table past the end */
		{ DESC + 8, AVAIL, USED, QSIZE },               /* misaligned */
		{ DESC, AVAIL + 1, USED, QSIZE },
		{ DESC, AVAIL, USED + 2, QSIZE },
		{ DESC, AVAIL, USED, 6 },                       /* not a power of two */
		{ DESC, AVAIL, USED, 0 },
		{ DESC, AVAIL, USED, 512 },                     /* above the maximum */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		virtq_reset(&c->q);
		c->q.desc_gpa = cases[i].desc;
		c->q.avail_gpa = cases[i].avail;
		c->q.used_gpa = cases[i].used;
		c->q.size = cases[i].size;
		assert_int_equal(virtq_enable(&c->q), -EINVAL);
		assert_false(c->q.enabled);
		assert_int_equal(virtq_pop(&c->q, &c->e), 0);
	}
}

static void test_interrupt_suppression(void **state)
{
	struct ctx *c = *state;
	uint8_t *a = g(c, AVAIL, 6 + 2 * QSIZE + 2);

	/* No EVENT_IDX: the NO_INTERRUPT flag. */
	put_le16(a, 1);
	virtq_push(&c->q, 0, 0);
	virtq_notify(&c->q);
	assert_int_equal(c->interrupts, 0);
	put_le16(a, 0);
	virtq_push(&c->q, 0, 0);
	virtq_notify(&c->q);
	assert_int_equal(c->interrupts, 1);

	/* EVENT_IDX: interrupt only when used idx passes used_event. */
	c->q.event_idx = true;
	put_le16(a + 4 + 2 * QSIZE, 3);       /* used_event: after entry 3 */
	virtq_push(&c->q, 0, 0);              /* used idx 3 */
	virtq_notify(&c->q);                  /* first check always fires */
	assert_int_equal(c->interrupts, 2);
	virtq_push(&c->q, 0, 0);              /* 4: passes 3 */
	virtq_notify(&c->q);
	assert_int_equal(c->interrupts, 3);
	virtq_push(&c->q, 0, 0);              /* 5: event still 3 */
	virtq_notify(&c->q);
	assert_int_equal(c->interrupts, 3);
	put_le16(a + 4 + 2 * QSIZE, 5);
	virtq_push(&c->q, 0, 0);              /* 6: passes 5 */
	virtq_notify(&c->q);
	assert_int_equal(c->interrupts, 4);

	/* Kicks: avail_event follows last_avail when asked for. */
	virtq_set_kicks(&c->q, true);
	assert_int_equal(get_le16(g(c, USED, 6 + 8 * QSIZE) + 4 + 8 * QSIZE), c->q.last_avail);
}

static void test_iov_copy(void **state)
{
	(void)state;
	uint8_t a[3], b[5], out[8];
	struct iovec iov[] = { { a, 3 }, { NULL, 0 }, { b, 5 } };

	assert_int_equal(iov_from_buf(iov, 3, 2, "abcdefgh", 8), 6);
	assert_int_equal(a[2], 'a');
	assert_int_equal(b[4], 'f');
	assert_int_equal(iov_to_buf(iov, 3, 2, out, sizeof(out)), 6);
	assert_memory_equal(out, "abcdef", 6);
	assert_int_equal(iov_to_buf(iov, 3, 100, out, sizeof(out)), 0);
}

/* Memory that tracks code (a software CPU's): a chain whose writable part
 * touches a code page says so when pushed back, after the write; one that
 * only reads a code page, or writes elsewhere, says nothing. */
static void test_code_pages(void **state)
{
	struct ctx *c = *state;
	uint64_t code_page = (BUFS + 0x1000) >> 12;
	uint64_t before;

	assert_int_equal(guest_mem_track_code(c->mem), 0);
	guest_mem_code_mark(c->mem, code_page, true);
	before = atomic_load(&c->mem->code->epoch);

	desc(c, 0, BUFS + 0x1000, 16, F_NEXT, 1);            /* reads the code page */
	desc(c, 1, BUFS, 0x1000, F_WRITE, 0);                /* writes the page before */
	offer(c, 0);
	assert_int_equal(virtq_pop(&c->q, &c->e), 1);
	assert_false(c->e.code);
	virtq_push(&c->q, 0, 0x1000);
	assert_int_equal(atomic_load(&c->mem->code->epoch), before);

	desc(c, 2, BUFS, 16, F_NEXT, 3);
	desc(c, 3, BUFS + 0xff0, 0x20, F_WRITE, 0);          /* ends in the code page */
	offer(c, 2);
	assert_int_equal(virtq_pop(&c->q, &c->e), 1);
	assert_true(c->e.code);
	assert_int_equal(atomic_load(&c->mem->code->epoch), before); /* not yet written */
	virtq_push(&c->q, 2, 0x20);
	assert_int_equal(atomic_load(&c->mem->code->epoch), before + 1);
	virtq_push(&c->q, 2, 0x20); /* a second push of that head: said once */
	assert_int_equal(atomic_load(&c->mem->code->epoch), before + 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_empty), T(test_chain), T(test_loop), T(test_self_loop),
		T(test_out_of_ram), T(test_straddles_end), T(test_length_wraps),
		T(test_mmio_buffer), T(test_zero_length), T(test_write_then_read),
		T(test_bad_head), T(test_bad_next), T(test_avail_jump),
		T(test_indirect_not_negotiated), T(test_indirect), T(test_indirect_bad),
		T(test_too_many_segments), T(test_rings_outside_ram),
		T(test_interrupt_suppression), T(test_iov_copy), T(test_code_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
