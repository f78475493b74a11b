/* bzimage_parse on synthetic images (and on the real guest kernel if cached). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kumo/boot.h"
#include "images.h"

#define REAL_KERNEL "/var/cache/kumo/guest/vmlinuz"

/* Parses the first n bytes of f from an exact-size copy (so ASan sees any
 * read past the end); on failure checks *why is set and bz is cleared. */
static const char *last_why;

static int parse_n(const uint8_t *f, size_t n, struct bzimage *bz)
{
	uint8_t *copy = malloc(n ? n : 1);
	const char *why = NULL;
	int rc;

	assert_non_null(copy);
	memcpy(copy, f, n);
	rc = bzimage_parse(copy, n, bz, &why);
	last_why = why;
	if (rc) {
		assert_non_null(why);
		assert_true(strlen(why) > 0);
		assert_null(bz->kernel);
		assert_int_equal(bz->kernel_size, 0);
	} else {
		/* Make kernel point into f, which outlives the copy. */
		assert_true(bz->kernel >= copy && bz->kernel <= copy + n);
		bz->kernel = f + (bz->kernel - copy);
	}
	free(copy);
	return rc;
}

/* Builds the image s describes, parses it, expects rc. */
static int parse_spec(const struct bz_spec *s, struct bzimage *bz)
{
	size_t len;
	uint8_t *f = bz_build(s, &len);
	int rc = parse_n(f, len, bz);

	free(f);
	bz->kernel = NULL; /* f is gone */
	return rc;
}

static void test_valid(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;
	size_t len;
	uint8_t *f = bz_build(&s, &len);

	assert_int_equal(parse_n(f, len, &bz), 0);
	assert_int_equal(bz.version, 0x020f);
	assert_int_equal(bz.setup_size, 1024);
	assert_int_equal(bz.hdr_end, 0x26c);
	assert_ptr_equal(bz.kernel, f + 1024);
	assert_int_equal(bz.kernel_size, 8192);
	assert_int_equal(bz.kernel_size, len - bz.setup_size);
	assert_int_equal(bz.initrd_addr_max, 0x7fffffff);
	assert_int_equal(bz.cmdline_size, 2048);
	assert_int_equal(bz.init_size, 1 << 20);
	assert_int_equal(bz.kernel_alignment, 2 << 20);
	free(f);
}

static void test_fields_read_from_the_file(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.version = 0x020c;
	s.setup_sects = 3;
	s.cmdline_size = 0x12345;
	s.initrd_addr_max = 0x37ffffff;
	s.init_size = 0x2345000;
	s.kernel_alignment = 0x200000;
	s.payload_len = 777;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.version, 0x020c);
	assert_int_equal(bz.setup_size, 4 * 512);
	assert_int_equal(bz.kernel_size, 777);
	assert_int_equal(bz.cmdline_size, 0x12345);
	assert_int_equal(bz.initrd_addr_max, 0x37ffffff);
	assert_int_equal(bz.init_size, 0x2345000);
}

static void test_init_size_at_least_kernel(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.init_size = 100;
	s.payload_len = 5000;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.init_size, 5000);
	s.init_size = 0;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.init_size, 5000);
}

static void test_setup_sects(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;
	size_t len;
	uint8_t *f;

	/* 0 means 4. */
	s.setup_sects = 0;
	f = bz_build(&s, &len);
	assert_int_equal(len, 5 * 512 + s.payload_len);
	assert_int_equal(parse_n(f, len, &bz), 0);
	assert_int_equal(bz.setup_size, 5 * 512);
	assert_ptr_equal(bz.kernel, f + 5 * 512);
	assert_int_equal(bz.kernel_size, s.payload_len);
	free(f);

	s.setup_sects = 255;
	f = bz_build(&s, &len);
	assert_int_equal(parse_n(f, len, &bz), 0);
	assert_int_equal(bz.setup_size, 256 * 512);
	assert_ptr_equal(bz.kernel, f + 256 * 512);
	free(f);
}

/* The header ends at 0x202 + the jump's offset byte, never before init_size. */
static void test_hdr_end(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.jump_len = 0;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.hdr_end, 0x264);
	s.jump_len = 0x62;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.hdr_end, 0x264);
	s.jump_len = 0x63;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.hdr_end, 0x265);
	s.jump_len = 0xff;
	assert_int_equal(parse_spec(&s, &bz), 0);
	assert_int_equal(bz.hdr_end, 0x301);
}

/* Every prefix of a valid image: too short to be recognised, a cut header,
 * a header without a kernel, and from one kernel byte on, valid. */
static void test_every_truncation(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;
	size_t len;
	uint8_t *f;

	s.payload_len = 16;
	f = bz_build(&s, &len);
	for (size_t n = 0; n <= len; n++) {
		int want = n < 0x206 ? -EINVAL : n < 0x264 ? -E2BIG : n <= 1024 ? -E2BIG : 0;
		int rc = parse_n(f, n, &bz);
		if (rc != want)
			fail_msg("%zu of %zu bytes: %d, want %d", n, len, rc, want);
		if (rc == -E2BIG)
			assert_non_null(strstr(last_why, n < 0x264 ? "header" : "kernel"));
		if (!rc) {
			assert_ptr_equal(bz.kernel, f + 1024);
			assert_int_equal(bz.kernel_size, n - 1024);
		}
	}
	free(f);
}

static void test_no_payload_with_setup_sects_0(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.setup_sects = 0;
	s.payload_len = 0;
	assert_int_equal(parse_spec(&s, &bz), -E2BIG);
	s.payload_len = 1;
	assert_int_equal(parse_spec(&s, &bz), 0);
}

/* Patches one byte of a valid image and expects rc. */
static void expect_patched(size_t off, uint8_t value, int want)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;
	size_t len;
	uint8_t *f = bz_build(&s, &len);
	int rc;

	f[off] = value;
	rc = parse_n(f, len, &bz);
	if (rc != want)
		fail_msg("byte %#zx = %#x: %d, want %d", off, value, rc, want);
	free(f);
}

static void test_wrong_magic(void **state)
{
	expect_patched(BZ_OFF_MAGIC, 'h', -EINVAL);
	expect_patched(BZ_OFF_MAGIC + 3, 'Z', -EINVAL);
	expect_patched(BZ_OFF_BOOT_FLAG, 0x56, -EINVAL);
	expect_patched(BZ_OFF_BOOT_FLAG + 1, 0x00, -EINVAL);
}

static void test_version(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.version = 0x020b; /* 2.11: no xloadflags */
	assert_int_equal(parse_spec(&s, &bz), -ENOEXEC);
	s.version = 0x0200;
	assert_int_equal(parse_spec(&s, &bz), -ENOEXEC);
	s.version = 0x0000;
	assert_int_equal(parse_spec(&s, &bz), -ENOEXEC);
	s.version = BZ_MIN_VERSION;
	assert_int_equal(parse_spec(&s, &bz), 0);
	s.version = 0xffff;
	assert_int_equal(parse_spec(&s, &bz), 0);
}

static void test_not_64_bit(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.xloadflags = 0x02; /* XLF_CAN_BE_LOADED_ABOVE_4G without XLF_KERNEL_64 */
	assert_int_equal(parse_spec(&s, &bz), -ENOEXEC);
	s.xloadflags = 0;
	assert_int_equal(parse_spec(&s, &bz), -ENOEXEC);
	s.xloadflags = 0x01;
	assert_int_equal(parse_spec(&s, &bz), 0);
}

static void test_loaded_low(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;

	s.loadflags = 0x80; /* CAN_USE_HEAP but not LOADED_HIGH: a zImage */
	assert_int_equal(parse_spec(&s, &bz), -ENOEXEC);
}

static void test_why_messages_differ(void **state)
{
	struct bz_spec s = bz_spec_default();
	struct bzimage bz;
	const char *why[3] = { NULL, NULL, NULL };
	size_t len;
	uint8_t *f;

	s.version = 0x020b;
	f = bz_build(&s, &len);
	assert_int_equal(bzimage_parse(f, len, &bz, &why[0]), -ENOEXEC);
	free(f);
	s = bz_spec_default();
	s.xloadflags = 0;
	f = bz_build(&s, &len);
	assert_int_equal(bzimage_parse(f, len, &bz, &why[1]), -ENOEXEC);
	free(f);
	s = bz_spec_default();
	f = bz_build(&s, &len);
	assert_int_equal(bzimage_parse(f, 0x250, &bz, &why[2]), -E2BIG);
	free(f);
	assert_non_null(why[0]);
	assert_non_null(why[1]);
	assert_non_null(why[2]);
	assert_string_not_equal(why[0], why[1]);
	assert_string_not_equal(why[1], why[2]);
	assert_non_null(strstr(why[0], "2.12"));
	assert_non_null(strstr(why[2], "truncated"));
}

static void test_real_kernel(void **state)
{
	struct bzimage bz;
	uint8_t *f;
	size_t len;
	unsigned sects;

	if (access(REAL_KERNEL, R_OK)) {
		print_message("no %s: skipped\n", REAL_KERNEL);
		skip();
	}
	assert_int_equal(read_file(REAL_KERNEL, 256 * MiB, &f, &len), 0);
	assert_int_equal(parse_n(f, len, &bz), 0);
	sects = f[BZ_OFF_SETUP_SECTS] ? f[BZ_OFF_SETUP_SECTS] : 4;
	assert_true(bz.version >= BZ_MIN_VERSION);
	assert_int_equal(bz.version, get_le16(f + BZ_OFF_VERSION));
	assert_int_equal(bz.setup_size, (sects + 1) * 512);
	assert_ptr_equal(bz.kernel, f + bz.setup_size);
	assert_int_equal(bz.kernel_size, len - bz.setup_size);
	assert_int_equal(bz.hdr_end, 0x202 + f[BZ_OFF_JUMP + 1]);
	assert_true(bz.init_size >= bz.kernel_size);
	assert_true(bz.cmdline_size >= 255);
	assert_int_equal(bz.initrd_addr_max, 0x7fffffff);
	assert_true(bz.kernel_alignment && !(bz.kernel_alignment & (bz.kernel_alignment - 1)));
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_fields_read_from_the_file),
		cmocka_unit_test(test_init_size_at_least_kernel),
		cmocka_unit_test(test_setup_sects),
		cmocka_unit_test(test_hdr_end),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_no_payload_with_setup_sects_0),
		cmocka_unit_test(test_wrong_magic),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_not_64_bit),
		cmocka_unit_test(test_loaded_low),
		cmocka_unit_test(test_why_messages_differ),
		cmocka_unit_test(test_real_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
