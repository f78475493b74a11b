/* Guest RAM layout around the 3 GiB hole, and gpa_ptr's bounds checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "kumo/memory.h"

/* Maps size bytes (cheap: MAP_NORESERVE, nothing touched). */
static void mem_init(struct guest_mem *mem, uint64_t size)
{
	int rc = guest_mem_init(mem, size);

	if (rc)
		fail_msg("guest_mem_init(%llu) = %d", (unsigned long long)size, rc);
	assert_non_null(mem->base);
	assert_int_equal(mem->size, size);
}

static void assert_region(const struct guest_mem *mem, unsigned i, uint64_t gpa,
			  uint64_t size, uint64_t host_off)
{
	assert_true(i < mem->nr_regions);
	assert_int_equal(mem->regions[i].gpa, gpa);
	assert_int_equal(mem->regions[i].size, size);
	assert_ptr_equal(mem->regions[i].host, mem->base + host_off);
}

static void test_layout_512m(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 512 * MiB);
	assert_int_equal(mem.nr_regions, 1);
	assert_region(&mem, 0, 0, 512 * MiB, 0);
	assert_int_equal(guest_mem_low_end(&mem), 512 * MiB);
	guest_mem_free(&mem);
	assert_null(mem.base);
	assert_int_equal(mem.nr_regions, 0);
}

static void test_layout_exactly_3g(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 3 * GiB);
	assert_int_equal(mem.nr_regions, 1);
	assert_region(&mem, 0, 0, 3 * GiB, 0);
	assert_int_equal(guest_mem_low_end(&mem), MMIO_HOLE_START);
	guest_mem_free(&mem);
}

static void test_layout_3g_plus_a_page(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 3 * GiB + 4096);
	assert_int_equal(mem.nr_regions, 2);
	assert_region(&mem, 0, 0, 3 * GiB, 0);
	assert_region(&mem, 1, MMIO_HOLE_END, 4096, 3 * GiB);
	guest_mem_free(&mem);
}

static void test_layout_4g(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 4 * GiB);
	assert_int_equal(mem.nr_regions, 2);
	assert_region(&mem, 0, 0, 3 * GiB, 0);
	assert_region(&mem, 1, 4 * GiB, 1 * GiB, 3 * GiB);
	assert_int_equal(guest_mem_low_end(&mem), 3 * GiB);
	guest_mem_free(&mem);
}

static void test_layout_8g(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 8 * GiB);
	assert_int_equal(mem.nr_regions, 2);
	assert_region(&mem, 0, 0, 3 * GiB, 0);
	assert_region(&mem, 1, 4 * GiB, 5 * GiB, 3 * GiB);
	guest_mem_free(&mem);
}

static void test_init_limits(void **state)
{
	struct guest_mem mem;
	int rc;

	assert_int_equal(guest_mem_init(&mem, 0), -EINVAL);
	assert_null(mem.base);
	assert_int_equal(guest_mem_init(&mem, GUEST_MEM_MIN - 4096), -EINVAL);
	assert_int_equal(guest_mem_init(&mem, GUEST_MEM_MIN + 1), -EINVAL);
	assert_int_equal(guest_mem_init(&mem, 512 * MiB + 2048), -EINVAL);
	assert_int_equal(guest_mem_init(&mem, GUEST_MEM_MAX + 4096), -EINVAL);
	assert_int_equal(guest_mem_init(&mem, UINT64_MAX), -EINVAL);
	assert_int_equal(guest_mem_init(&mem, UINT64_MAX & ~4095ULL), -EINVAL);
	assert_null(mem.base);
	guest_mem_free(&mem); /* harmless after a failed init */

	mem_init(&mem, GUEST_MEM_MIN);
	assert_int_equal(mem.nr_regions, 1);
	guest_mem_free(&mem);

	/* 1 TiB passes the checks; the mmap itself may fail on a small host. */
	rc = guest_mem_init(&mem, GUEST_MEM_MAX);
	assert_int_not_equal(rc, -EINVAL);
	if (!rc) {
		assert_int_equal(mem.nr_regions, 2);
		assert_region(&mem, 1, MMIO_HOLE_END, GUEST_MEM_MAX - 3 * GiB, 3 * GiB);
		guest_mem_free(&mem);
	}
}

static void test_gpa_ptr_low(void **state)
{
	struct guest_mem mem;
	const uint64_t end = 512 * MiB;

	mem_init(&mem, end);
	assert_ptr_equal(gpa_ptr(&mem, 0, 1), mem.base);
	assert_ptr_equal(gpa_ptr(&mem, 0, end), mem.base);
	assert_ptr_equal(gpa_ptr(&mem, 0x1234, 16), mem.base + 0x1234);
	assert_ptr_equal(gpa_ptr(&mem, end - 1, 1), mem.base + end - 1);
	assert_ptr_equal(gpa_ptr(&mem, end - 4096, 4096), mem.base + end - 4096);
	/* Start inside, length past the end. */
	assert_null(gpa_ptr(&mem, end - 4096, 4097));
	assert_null(gpa_ptr(&mem, end - 1, 2));
	assert_null(gpa_ptr(&mem, 0, end + 1));
	/* Length 0 at the very end is the empty range there; one past is not RAM. */
	assert_ptr_equal(gpa_ptr(&mem, end, 0), mem.base + end);
	assert_null(gpa_ptr(&mem, end + 1, 0));
	assert_null(gpa_ptr(&mem, end, 1));
	assert_null(gpa_ptr(&mem, 4 * GiB, 1));
	guest_mem_free(&mem);
}

static void test_gpa_ptr_overflow(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 8 * GiB);
	assert_null(gpa_ptr(&mem, UINT64_MAX, 1));
	assert_null(gpa_ptr(&mem, UINT64_MAX, 0));
	assert_null(gpa_ptr(&mem, UINT64_MAX - 4095, 4096));
	assert_null(gpa_ptr(&mem, 4096, UINT64_MAX));
	assert_null(gpa_ptr(&mem, 0, UINT64_MAX));
	assert_null(gpa_ptr(&mem, 4 * GiB, UINT64_MAX));
	assert_null(gpa_ptr(&mem, 4 * GiB + 4096, UINT64_MAX - 4095)); /* gpa+len wraps to 4 GiB */
	assert_null(gpa_ptr(&mem, 8 * GiB, UINT64_MAX - 8 * GiB + 2));  /* gpa+len wraps to 1 */
	guest_mem_free(&mem);
}

static void test_gpa_ptr_hole(void **state)
{
	struct guest_mem mem;

	mem_init(&mem, 8 * GiB);
	/* Below the hole. */
	assert_ptr_equal(gpa_ptr(&mem, 3 * GiB - 8, 8), mem.base + 3 * GiB - 8);
	/* In the hole. */
	assert_null(gpa_ptr(&mem, 3 * GiB, 1));
	assert_null(gpa_ptr(&mem, 0xfec00000ULL, 4));
	assert_null(gpa_ptr(&mem, 4 * GiB - 1, 1));
	/* Spanning the hole, or both regions. */
	assert_null(gpa_ptr(&mem, 3 * GiB - 4096, 8192));
	assert_null(gpa_ptr(&mem, 3 * GiB - 1, 1 * GiB + 2));
	assert_null(gpa_ptr(&mem, 0, 8 * GiB));
	assert_null(gpa_ptr(&mem, 4 * GiB - 4096, 8192));
	/* Above it: 4 GiB maps to host offset 3 GiB. */
	assert_ptr_equal(gpa_ptr(&mem, 4 * GiB, 1), mem.base + 3 * GiB);
	assert_ptr_equal(gpa_ptr(&mem, 4 * GiB, 5 * GiB), mem.base + 3 * GiB);
	assert_ptr_equal(gpa_ptr(&mem, 9 * GiB - 1, 1), mem.base + 8 * GiB - 1);
	assert_null(gpa_ptr(&mem, 9 * GiB - 1, 2));
	assert_null(gpa_ptr(&mem, 9 * GiB, 1));
	assert_null(gpa_ptr(&mem, 4 * GiB, 5 * GiB + 1));
	guest_mem_free(&mem);
}

static void test_read_write(void **state)
{
	struct guest_mem mem;
	uint8_t in[64], out[64];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0xa0 + i);
	mem_init(&mem, 4 * GiB);

	assert_int_equal(guest_mem_write(&mem, 0x1000, in, sizeof(in)), 0);
	assert_memory_equal(mem.base + 0x1000, in, sizeof(in));
	memset(out, 0, sizeof(out));
	assert_int_equal(guest_mem_read(&mem, 0x1000, out, sizeof(out)), 0);
	assert_memory_equal(out, in, sizeof(in));

	/* Above the hole the bytes land right after the low 3 GiB in the mapping. */
	assert_int_equal(guest_mem_write(&mem, 5 * GiB - sizeof(in), in, sizeof(in)), 0);
	assert_memory_equal(mem.base + 4 * GiB - sizeof(in), in, sizeof(in));
	memset(out, 0, sizeof(out));
	assert_int_equal(guest_mem_read(&mem, 5 * GiB - sizeof(in), out, sizeof(out)), 0);
	assert_memory_equal(out, in, sizeof(in));

	/* Refused without touching anything. */
	memset(out, 0x11, sizeof(out));
	assert_int_equal(guest_mem_write(&mem, 3 * GiB - 32, in, sizeof(in)), -EFAULT);
	assert_int_equal(guest_mem_read(&mem, 3 * GiB - 32, out, sizeof(out)), -EFAULT);
	assert_int_equal(guest_mem_read(&mem, 5 * GiB - 32, out, sizeof(out)), -EFAULT);
	assert_int_equal(guest_mem_write(&mem, UINT64_MAX - 8, in, sizeof(in)), -EFAULT);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x11);
	assert_int_equal(mem.base[3 * GiB - 32], 0);
	guest_mem_free(&mem);
}

/* Code-page tracking (struct guest_code): which ranges touch a marked
 * page, bit by bit and 8 pages a byte; anything that is not RAM the map
 * covers, or wraps, says yes; an empty range says no; the epoch moves by
 * one per word from a device. */
static void test_code_pages(void **state)
{
	struct guest_mem mem;
	(void)state;

	mem_init(&mem, 64 * MiB);
	assert_false(guest_mem_code(&mem, 0, 4096)); /* not tracking: nothing is code */
	assert_int_equal(guest_mem_track_code(&mem), 0);
	assert_int_equal(mem.code->pages, 64 * MiB / 4096);
	guest_mem_code_mark(&mem, 3, true);
	guest_mem_code_mark(&mem, 17, true);
	guest_mem_code_mark(&mem, 100, true);
	guest_mem_code_mark(&mem, 101, true);
	guest_mem_code_mark(&mem, 101, false);
	guest_mem_code_mark(&mem, 1ULL << 40, true); /* past the map: nothing */

	assert_false(guest_mem_code(&mem, 0, 3 * 4096));
	assert_true(guest_mem_code(&mem, 0, 3 * 4096 + 1));
	assert_true(guest_mem_code(&mem, 3 * 4096 + 4095, 1));
	assert_false(guest_mem_code(&mem, 4 * 4096, 13 * 4096));        /* pages 4..16 */
	assert_true(guest_mem_code(&mem, 4 * 4096, 13 * 4096 + 1));     /* ..17 */
	assert_false(guest_mem_code(&mem, 18 * 4096, 82 * 4096));       /* 18..99: whole bytes */
	assert_true(guest_mem_code(&mem, 18 * 4096, 83 * 4096));
	assert_true(guest_mem_code(&mem, 0, 64 * MiB));
	assert_false(guest_mem_code(&mem, 101 * 4096, 64 * MiB - 101 * 4096));
	assert_false(guest_mem_code(&mem, 3 * 4096, 0));
	assert_true(guest_mem_code(&mem, 64 * MiB, 1));                 /* past the end */
	assert_true(guest_mem_code(&mem, UINT64_MAX - 10, 100));        /* wraps */

	assert_int_equal(atomic_load(&mem.code->epoch), 0);
	guest_mem_code_written(&mem);
	assert_int_equal(atomic_load(&mem.code->epoch), 1);
	guest_mem_free(&mem);
	assert_null(mem.code);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_512m),
		cmocka_unit_test(test_layout_exactly_3g),
		cmocka_unit_test(test_layout_3g_plus_a_page),
		cmocka_unit_test(test_layout_4g),
		cmocka_unit_test(test_layout_8g),
		cmocka_unit_test(test_init_limits),
		cmocka_unit_test(test_gpa_ptr_low),
		cmocka_unit_test(test_gpa_ptr_overflow),
		cmocka_unit_test(test_gpa_ptr_hole),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_code_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
