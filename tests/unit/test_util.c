/* parse_size, parse_uint, byte_sum, the little-endian helpers, read_file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kumo/util.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

static void size_ok(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;

	if (parse_size(s, &v) != 0)
		fail_msg("parse_size(\"%s\") failed", s);
	if (v != want)
		fail_msg("parse_size(\"%s\") = %llu, want %llu", s,
			 (unsigned long long)v, (unsigned long long)want);
}

/* Refused with -EINVAL, and *out left alone. */
static void size_bad(const char *s)
{
	uint64_t v = SENTINEL;
	int rc = parse_size(s, &v);

	if (rc != -EINVAL)
		fail_msg("parse_size(\"%s\") = %d, want -EINVAL", s ? s : "(null)", rc);
	assert_int_equal(v, SENTINEL);
}

static void test_size_plain(void **state)
{
	size_ok("0", 0);
	size_ok("1", 1);
	size_ok("1048576", 1048576);
	size_ok("18446744073709551615", UINT64_MAX);
}

static void test_size_suffixes(void **state)
{
	size_ok("64k", 64 * KiB);
	size_ok("64K", 64 * KiB);
	size_ok("512m", 512 * MiB);
	size_ok("512M", 512 * MiB);
	size_ok("2g", 2 * GiB);
	size_ok("2G", 2 * GiB);
	size_ok("3t", 3 * 1024 * GiB);
	size_ok("1T", 1024 * GiB);
	size_ok("0M", 0);
}

static void test_size_ib_and_b_forms(void **state)
{
	size_ok("512MiB", 512 * MiB);
	size_ok("512MB", 512 * MiB);
	size_ok("4KiB", 4 * KiB);
	size_ok("4kB", 4 * KiB);
	size_ok("1GiB", GiB);
	size_ok("1TiB", 1024 * GiB);
	/* Only a unit may carry "B"/"iB"; the rest is junk. */
	size_bad("512Mi");
	size_bad("512MiBB");
	size_bad("512MBB");
	size_bad("512MIB");
	size_bad("512Mib");
	size_bad("512iB");
	size_bad("512Bi");
}

static void test_size_junk(void **state)
{
	size_bad(NULL);
	size_bad("");
	size_bad("M");
	size_bad("abc");
	size_bad("12abc");
	size_bad("1.5G");
	size_bad("0x1000");
	size_bad(" 512M");
	size_bad("512M ");
	size_bad("512 M");
	size_bad("5P");
	size_bad("5KM");
	size_bad("5\n");
}

static void test_size_negative(void **state)
{
	size_bad("-1");
	size_bad("-512M");
	size_bad("+512M");
}

static void test_size_overflow(void **state)
{
	size_bad("20000000T");
	size_bad("18446744073709551616");      /* 2^64 */
	size_bad("99999999999999999999999999");
	size_bad("17179869184G");              /* 2^34 GiB = 2^64 */
	size_bad("16777216T");                 /* 2^24 TiB = 2^64 */
	size_bad("18014398509481984k");        /* 2^54 KiB = 2^64 */
	/* The largest values that still fit. */
	size_ok("16777215T", 16777215ULL << 40);
	size_ok("17179869183G", 17179869183ULL << 30);
	size_ok("18014398509481983K", 18014398509481983ULL << 10);
}

static void uint_ok(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	uint64_t v = SENTINEL;

	if (parse_uint(s, min, max, &v) != 0)
		fail_msg("parse_uint(\"%s\") failed", s);
	assert_int_equal(v, want);
}

static void uint_bad(const char *s, uint64_t min, uint64_t max, int want_rc)
{
	uint64_t v = SENTINEL;
	int rc = parse_uint(s, min, max, &v);

	if (rc != want_rc)
		fail_msg("parse_uint(\"%s\", %llu, %llu) = %d, want %d", s ? s : "(null)",
			 (unsigned long long)min, (unsigned long long)max, rc, want_rc);
	assert_int_equal(v, SENTINEL);
}

static void test_uint_valid(void **state)
{
	uint_ok("1", 1, 64, 1);
	uint_ok("64", 1, 64, 64);
	uint_ok("007", 0, 10, 7);
	uint_ok("0", 0, 0, 0);
	uint_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
}

static void test_uint_range(void **state)
{
	uint_bad("0", 1, 64, -ERANGE);
	uint_bad("65", 1, 64, -ERANGE);
	uint_bad("1000000", 1, 64, -ERANGE);
	uint_bad("4", 5, 5, -ERANGE);
	uint_bad("6", 5, 5, -ERANGE);
	uint_ok("5", 5, 5, 5);
}

static void test_uint_junk(void **state)
{
	uint_bad(NULL, 0, 100, -EINVAL);
	uint_bad("", 0, 100, -EINVAL);
	uint_bad("-1", 0, 100, -EINVAL);
	uint_bad("+1", 0, 100, -EINVAL);
	uint_bad(" 1", 0, 100, -EINVAL);
	uint_bad("1 ", 0, 100, -EINVAL);
	uint_bad("1k", 0, 10000, -EINVAL);
	uint_bad("0x10", 0, 100, -EINVAL);
	uint_bad("abc", 0, 100, -EINVAL);
}

static void test_uint_overflow(void **state)
{
	uint64_t v = SENTINEL;
	int rc = parse_uint("18446744073709551616", 0, UINT64_MAX, &v);

	/* util.h allows either error for a number past 2^64-1. */
	assert_true(rc == -EINVAL || rc == -ERANGE);
	assert_int_equal(v, SENTINEL);
}

static void test_byte_sum(void **state)
{
	uint8_t b[300];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)i;
	assert_int_equal(byte_sum(b, 0), 0);
	/* sum 0..299 = 44850 = 0xaf32 */
	assert_int_equal(byte_sum(b, sizeof(b)), 0x32);
	assert_int_equal(byte_sum(b + 255, 2), 0xff);
}

static void test_le_helpers(void **state)
{
	uint8_t b[8];

	put_le64(b, 0x0102030405060708ULL);
	assert_memory_equal(b, ((uint8_t[]){ 8, 7, 6, 5, 4, 3, 2, 1 }), 8);
	assert_int_equal(get_le64(b), 0x0102030405060708ULL);
	assert_int_equal(get_le32(b + 4), 0x01020304);
	assert_int_equal(get_le16(b + 6), 0x0102);
	put_le32(b, 0xfedcba98);
	assert_int_equal(get_le32(b), 0xfedcba98);
	assert_int_equal(b[0], 0x98);
	put_le16(b, 0xffee);
	assert_int_equal(get_le16(b), 0xffee);
	assert_int_equal(get_le64((const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }),
			 UINT64_MAX);
}

static void write_temp(char *path, const void *data, size_t len)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/kumo-test-util-XXXXXX";
	uint8_t *data = NULL;
	size_t len = 0;
	uint8_t content[5000];

	for (size_t i = 0; i < sizeof(content); i++)
		content[i] = (uint8_t)(i * 7);
	write_temp(path, content, sizeof(content));

	assert_int_equal(read_file(path, sizeof(content), &data, &len), 0);
	assert_int_equal(len, sizeof(content));
	assert_memory_equal(data, content, len);
	free(data);

	data = NULL;
	assert_int_equal(read_file(path, sizeof(content) - 1, &data, &len), -EFBIG);
	assert_null(data);
	unlink(path);

	assert_int_equal(read_file(path, 1 << 20, &data, &len), -ENOENT);
	assert_int_equal(read_file("/tmp", 1 << 20, &data, &len), -EINVAL);
}

static void test_read_file_empty(void **state)
{
	char path[] = "/tmp/kumo-test-util-XXXXXX";
	uint8_t *data = NULL;
	size_t len = 99;

	write_temp(path, "", 0);
	assert_int_equal(read_file(path, 0, &data, &len), 0);
	assert_non_null(data);
	assert_int_equal(len, 0);
	free(data);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_plain),
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_size_ib_and_b_forms),
		cmocka_unit_test(test_size_junk),
		cmocka_unit_test(test_size_negative),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_uint_valid),
		cmocka_unit_test(test_uint_range),
		cmocka_unit_test(test_uint_junk),
		cmocka_unit_test(test_uint_overflow),
		cmocka_unit_test(test_byte_sum),
		cmocka_unit_test(test_le_helpers),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_read_file_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
