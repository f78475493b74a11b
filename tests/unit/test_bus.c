/* The port I/O / MMIO bus: registration, overlap checks, dispatch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "kumo/bus.h"

/* A device that records its last access; reads return id + offset + i. */
struct dev {
	uint8_t id;
	unsigned calls;
	uint64_t offset;
	unsigned len;
	bool is_write;
	uint8_t written[8];
};

static void dev_handler(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct dev *d = opaque;

	d->calls++;
	d->offset = offset;
	d->len = len;
	d->is_write = is_write;
	if (is_write)
		memcpy(d->written, data, len);
	else
		for (unsigned i = 0; i < len; i++)
			data[i] = (uint8_t)(d->id + offset + i);
}

static void reg(struct io_bus *bus, uint64_t base, uint64_t len, struct dev *d)
{
	int rc = io_bus_register(bus, base, len, dev_handler, d, "dev");

	if (rc)
		fail_msg("io_bus_register(%#llx, %#llx) = %d",
			 (unsigned long long)base, (unsigned long long)len, rc);
}

/* A 1-byte read at addr must reach d at offset want_off and nobody else. */
static void expect_hit(const struct io_bus *bus, uint64_t addr, struct dev *d, uint64_t want_off)
{
	uint8_t b = 0;
	unsigned before = d->calls;

	if (!io_bus_access(bus, addr, &b, 1, false))
		fail_msg("nothing claims %#llx", (unsigned long long)addr);
	assert_int_equal(d->calls, before + 1);
	assert_int_equal(d->offset, want_off);
	assert_int_equal(b, (uint8_t)(d->id + want_off));
}

static void expect_miss(const struct io_bus *bus, uint64_t addr)
{
	uint8_t b[4] = { 0x11, 0x22, 0x33, 0x44 };

	if (io_bus_access(bus, addr, b, 4, false))
		fail_msg("%#llx claimed, want unclaimed", (unsigned long long)addr);
	assert_memory_equal(b, ((uint8_t[]){ 0x11, 0x22, 0x33, 0x44 }), 4);
}

static void assert_sorted(const struct io_bus *bus)
{
	for (unsigned i = 1; i < bus->nr; i++)
		assert_true(bus->ranges[i - 1].base + bus->ranges[i - 1].len <= bus->ranges[i].base);
}

static void test_empty_bus(void **state)
{
	struct io_bus bus = { 0 };

	expect_miss(&bus, 0);
	expect_miss(&bus, 0x3f8);
	expect_miss(&bus, UINT64_MAX);
	io_bus_free(&bus);
}

/* Four ranges registered in each of the 24 orders give the same bus. */
static void test_order_independent(void **state)
{
	static const struct { uint64_t base, len; } r[4] = {
		{ 0x20, 2 }, { 0xf4, 1 }, { 0x3f8, 8 }, { 0x600, 5 },
	};
	static const unsigned perms[24][4] = {
		{0,1,2,3},{0,1,3,2},{0,2,1,3},{0,2,3,1},{0,3,1,2},{0,3,2,1},
		{1,0,2,3},{1,0,3,2},{1,2,0,3},{1,2,3,0},{1,3,0,2},{1,3,2,0},
		{2,0,1,3},{2,0,3,1},{2,1,0,3},{2,1,3,0},{2,3,0,1},{2,3,1,0},
		{3,0,1,2},{3,0,2,1},{3,1,0,2},{3,1,2,0},{3,2,0,1},{3,2,1,0},
	};

	for (unsigned p = 0; p < 24; p++) {
		struct io_bus bus = { 0 };
		struct dev d[4] = { { .id = 0x10 }, { .id = 0x20 }, { .id = 0x30 }, { .id = 0x40 } };

		for (unsigned k = 0; k < 4; k++)
			reg(&bus, r[perms[p][k]].base, r[perms[p][k]].len, &d[perms[p][k]]);
		assert_int_equal(bus.nr, 4);
		assert_sorted(&bus);
		for (unsigned i = 0; i < 4; i++) {
			assert_int_equal(bus.ranges[i].base, r[i].base);
			assert_ptr_equal(bus.ranges[i].opaque, &d[i]);
			expect_hit(&bus, r[i].base, &d[i], 0);
			expect_hit(&bus, r[i].base + r[i].len - 1, &d[i], r[i].len - 1);
			expect_miss(&bus, r[i].base - 1);
			expect_miss(&bus, r[i].base + r[i].len);
		}
		expect_miss(&bus, 0);
		expect_miss(&bus, 0xffff);
		io_bus_free(&bus);
		assert_null(bus.ranges);
		assert_int_equal(bus.nr, 0);
	}
}

static void test_overlap_refused(void **state)
{
	static const struct { uint64_t base, len; } bad[] = {
		{ 0x100, 0x10 },  /* identical */
		{ 0xf0, 0x11 },   /* ends on its first byte */
		{ 0x10f, 0x10 },  /* starts on its last byte */
		{ 0x104, 4 },     /* inside */
		{ 0x0, 0x1000 },  /* around it and its neighbours */
		{ 0x10f, 1 },
		{ 0x2ff, 2 },     /* the last range's first byte */
		{ 0x200, 1 },
	};
	struct io_bus bus = { 0 };
	struct dev a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 }, x = { .id = 4 };

	reg(&bus, 0x100, 0x10, &a);
	reg(&bus, 0x200, 0x10, &b);
	reg(&bus, 0x300, 0x10, &c);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rc = io_bus_register(&bus, bad[i].base, bad[i].len, dev_handler, &x, "x");
		if (rc != -EEXIST)
			fail_msg("[%#llx, +%#llx) = %d, want -EEXIST",
				 (unsigned long long)bad[i].base, (unsigned long long)bad[i].len, rc);
	}
	assert_int_equal(bus.nr, 3);
	/* Touching is not overlapping. */
	reg(&bus, 0xf0, 0x10, &x);
	reg(&bus, 0x110, 0x10, &x);
	reg(&bus, 0x310, 1, &x);
	assert_int_equal(bus.nr, 6);
	assert_sorted(&bus);
	expect_hit(&bus, 0x100, &a, 0);
	expect_hit(&bus, 0x10f, &a, 0xf);
	expect_hit(&bus, 0xff, &x, 0xf);
	expect_hit(&bus, 0x110, &x, 0);
	expect_hit(&bus, 0x30f, &c, 0xf);
	expect_hit(&bus, 0x310, &x, 0);
	io_bus_free(&bus);
}

static void test_bad_lengths(void **state)
{
	struct io_bus bus = { 0 };
	struct dev d = { .id = 1 };

	assert_int_equal(io_bus_register(&bus, 0x100, 0, dev_handler, &d, "d"), -EINVAL);
	assert_int_equal(io_bus_register(&bus, UINT64_MAX, 2, dev_handler, &d, "d"), -EINVAL);
	assert_int_equal(io_bus_register(&bus, 0x1000, UINT64_MAX, dev_handler, &d, "d"), -EINVAL);
	assert_int_equal(bus.nr, 0);
	expect_miss(&bus, 0x100);
	io_bus_free(&bus);
}

static void test_handler_args(void **state)
{
	struct io_bus bus = { 0 };
	struct dev uart = { .id = 0x50 }, mmio = { .id = 0x60 };
	uint8_t data[8];

	reg(&bus, 0x3f8, 8, &uart);
	reg(&bus, 0xfee00000, 0x1000, &mmio);

	/* A 1-byte write at offset 5. */
	data[0] = 0xab;
	assert_true(io_bus_access(&bus, 0x3fd, data, 1, true));
	assert_int_equal(uart.calls, 1);
	assert_int_equal(uart.offset, 5);
	assert_int_equal(uart.len, 1);
	assert_true(uart.is_write);
	assert_int_equal(uart.written[0], 0xab);

	/* A 4-byte read at offset 0x20 fills all four bytes. */
	memset(data, 0, sizeof(data));
	assert_true(io_bus_access(&bus, 0xfee00020, data, 4, false));
	assert_int_equal(mmio.calls, 1);
	assert_int_equal(mmio.offset, 0x20);
	assert_int_equal(mmio.len, 4);
	assert_false(mmio.is_write);
	assert_memory_equal(data, ((uint8_t[]){ 0x80, 0x81, 0x82, 0x83 }), 4);

	/* An 8-byte write. */
	memcpy(data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_true(io_bus_access(&bus, 0xfee00ff8, data, 8, true));
	assert_int_equal(mmio.offset, 0xff8);
	assert_int_equal(mmio.len, 8);
	assert_true(mmio.is_write);
	assert_memory_equal(mmio.written, data, 8);
	assert_int_equal(uart.calls, 1);

	/* The bus keeps the name it was given. */
	assert_string_equal(bus.ranges[0].name, "dev");
	io_bus_free(&bus);
}

/* Enough ranges to make the array grow, registered in a scrambled order. */
static void test_many_ranges(void **state)
{
	enum { N = 200 };
	struct io_bus bus = { 0 };
	static struct dev d[N];

	for (unsigned k = 0; k < N; k++) {
		unsigned i = (k * 7919) % N; /* a permutation: 7919 is prime, coprime to N */
		d[i] = (struct dev){ .id = (uint8_t)i };
		reg(&bus, 0x10000 + i * 0x100, 0x10 + i % 16, &d[i]);
	}
	assert_int_equal(bus.nr, N);
	assert_true(bus.cap >= N);
	assert_sorted(&bus);
	for (unsigned i = 0; i < N; i++) {
		uint64_t base = 0x10000 + i * 0x100, len = 0x10 + i % 16;
		expect_hit(&bus, base, &d[i], 0);
		expect_hit(&bus, base + len - 1, &d[i], len - 1);
		expect_miss(&bus, base + len);
		expect_miss(&bus, base - 1);
	}
	io_bus_free(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_bus),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_overlap_refused),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_handler_args),
		cmocka_unit_test(test_many_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
