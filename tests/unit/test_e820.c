/* The e820 map derived from the guest RAM layout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kumo/acpi.h"
#include "kumo/e820.h"
#include "kumo/memory.h"

/* RAM the map cannot give the guest below 1 MiB: the EBDA, the VGA/ROM
 * window 0xa0000-0xdffff and the ACPI/BIOS area 0xe0000-0xfffff. */
#define LOW_NOT_RAM (0x100000ULL - E820_EBDA_START)

struct want {
	uint64_t addr, size;
	uint32_t type;
};

/* Builds the map for size bytes of RAM and compares it entry by entry. */
static void check_map(uint64_t size, const struct want *want, unsigned n)
{
	struct guest_mem mem;
	struct e820_entry map[E820_MAX];

	memset(map, 0xee, sizeof(map));
	assert_int_equal(guest_mem_init(&mem, size), 0);
	assert_int_equal(e820_build(&mem, map), n);
	for (unsigned i = 0; i < n; i++) {
		if (map[i].addr != want[i].addr || map[i].size != want[i].size ||
		    map[i].type != want[i].type)
			fail_msg("entry %u: [%#llx +%#llx type %u], want [%#llx +%#llx type %u]", i,
				 (unsigned long long)map[i].addr, (unsigned long long)map[i].size,
				 map[i].type, (unsigned long long)want[i].addr,
				 (unsigned long long)want[i].size, want[i].type);
	}
	guest_mem_free(&mem);
}

static void test_512m(void **state)
{
	const struct want want[] = {
		{ 0, 0x9fc00, E820_TYPE_RAM },
		{ 0x9fc00, 0x400, E820_TYPE_RESERVED },
		{ 0xe0000, 0x20000, E820_TYPE_RESERVED },
		{ 0x100000, 512 * MiB - 0x100000, E820_TYPE_RAM },
	};
	check_map(512 * MiB, want, ARRAY_SIZE(want));
}

static void test_minimum_8m(void **state)
{
	const struct want want[] = {
		{ 0, 0x9fc00, E820_TYPE_RAM },
		{ 0x9fc00, 0x400, E820_TYPE_RESERVED },
		{ 0xe0000, 0x20000, E820_TYPE_RESERVED },
		{ 0x100000, 7 * MiB, E820_TYPE_RAM },
	};
	check_map(8 * MiB, want, ARRAY_SIZE(want));
}

static void test_3g(void **state)
{
	const struct want want[] = {
		{ 0, 0x9fc00, E820_TYPE_RAM },
		{ 0x9fc00, 0x400, E820_TYPE_RESERVED },
		{ 0xe0000, 0x20000, E820_TYPE_RESERVED },
		{ 0x100000, 0xc0000000 - 0x100000, E820_TYPE_RAM },
	};
	check_map(3 * GiB, want, ARRAY_SIZE(want));
}

static void test_4g(void **state)
{
	const struct want want[] = {
		{ 0, 0x9fc00, E820_TYPE_RAM },
		{ 0x9fc00, 0x400, E820_TYPE_RESERVED },
		{ 0xe0000, 0x20000, E820_TYPE_RESERVED },
		{ 0x100000, 0xc0000000 - 0x100000, E820_TYPE_RAM },
		{ 0x100000000, 1 * GiB, E820_TYPE_RAM },
	};
	check_map(4 * GiB, want, ARRAY_SIZE(want));
}

static void test_8g(void **state)
{
	const struct want want[] = {
		{ 0, 0x9fc00, E820_TYPE_RAM },
		{ 0x9fc00, 0x400, E820_TYPE_RESERVED },
		{ 0xe0000, 0x20000, E820_TYPE_RESERVED },
		{ 0x100000, 0xc0000000 - 0x100000, E820_TYPE_RAM },
		{ 0x100000000, 5 * GiB, E820_TYPE_RAM },
	};
	check_map(8 * GiB, want, ARRAY_SIZE(want));
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static bool covered_by(const struct e820_entry *map, unsigned n, uint64_t addr,
		       uint64_t len, uint32_t type)
{
	for (unsigned i = 0; i < n; i++)
		if (map[i].type == type && map[i].addr <= addr &&
		    addr + len <= map[i].addr + map[i].size)
			return true;
	return false;
}

/* For many sizes: sorted, disjoint, only RAM inside guest RAM, never RAM in
 * the hole or the low reserved areas, and RAM totals size - LOW_NOT_RAM. */
static void test_invariants(void **state)
{
	static const uint64_t sizes[] = {
		8 * MiB, 64 * MiB, 512 * MiB + 4096, 1 * GiB, 3 * GiB - 4096, 3 * GiB,
		3 * GiB + 4096, 4 * GiB, 5 * GiB + 12 * KiB, 8 * GiB, 64 * GiB,
	};

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		struct guest_mem mem;
		struct e820_entry map[E820_MAX];
		uint64_t ram = 0;
		unsigned n;

		assert_int_equal(guest_mem_init(&mem, sizes[s]), 0);
		n = e820_build(&mem, map);
		assert_in_range(n, 4, E820_MAX);
		assert_int_equal(n, 3 + mem.nr_regions);
		for (unsigned i = 0; i < n; i++) {
			assert_true(map[i].size > 0);
			assert_true(map[i].type == E820_TYPE_RAM || map[i].type == E820_TYPE_RESERVED);
			if (i)
				assert_true(map[i - 1].addr + map[i - 1].size <= map[i].addr);
			if (map[i].type != E820_TYPE_RAM)
				continue;
			ram += map[i].size;
			/* Every RAM byte is backed by guest RAM. */
			assert_non_null(gpa_ptr(&mem, map[i].addr, map[i].size));
			assert_false(overlaps(map[i].addr, map[i].size, MMIO_HOLE_START,
					      MMIO_HOLE_END - MMIO_HOLE_START));
			assert_false(overlaps(map[i].addr, map[i].size, E820_EBDA_START,
					      0x100000 - E820_EBDA_START));
		}
		assert_int_equal(ram, sizes[s] - LOW_NOT_RAM);
		/* The ACPI tables sit inside a reserved entry. */
		assert_true(covered_by(map, n, ACPI_TABLES_GPA, ACPI_TABLES_MAX, E820_TYPE_RESERVED));
		assert_int_equal(map[n - 1].addr + map[n - 1].size,
				 sizes[s] > 3 * GiB ? sizes[s] + 1 * GiB : sizes[s]);
		guest_mem_free(&mem);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_512m),
		cmocka_unit_test(test_minimum_8m),
		cmocka_unit_test(test_3g),
		cmocka_unit_test(test_4g),
		cmocka_unit_test(test_8g),
		cmocka_unit_test(test_invariants),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
