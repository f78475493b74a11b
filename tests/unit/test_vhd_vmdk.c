/* The VHD (vpc) and VMDK readers against images qemu-img made: every
 * subformat reads byte for byte as qemu-img's own raw conversion, block
 * status covers the disk and agrees with the content, and damaged headers,
 * tables and grains are refused with a reason (or read as -EIO), never a
 * crash. A fixed VHD built here runs without qemu-img. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kumo/block.h"

static char dir[] = "/tmp/kumo-test-vdisk.XXXXXX";
static bool have_qemu_img;

static const char *p(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* A 3 MiB + 4 KiB disk with data in scattered places, some across the 2
 * MiB VHD block boundary, the rest holes. */
static void make_source(void)
{
	int fd = open(p("src.raw"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint8_t buf[70000];

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3 * 1024 * 1024 + 4096), 0);
	for (int k = 0; k < 6; k++) {
		off_t at = (off_t)k * 600000 + 1000 * k;
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(i * 31 + k + 1);
		assert_int_equal(pwrite(fd, buf, sizeof(buf), at), (ssize_t)sizeof(buf));
	}
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	/* Strong references: block.c's probe table alone (weak symbols) does
	 * not link the formats in from the library. */
	if (blk_format("vpc") != &blk_vpc_ops || blk_format("vmdk") != &blk_vmdk_ops)
		return -1;
	if (!mkdtemp(dir))
		return -1;
	have_qemu_img = !system("qemu-img --version >/dev/null 2>&1");
	if (!have_qemu_img)
		return 0;
	make_source();
	if (sh("cd %s && qemu-img convert -O vpc -o subformat=dynamic src.raw dyn.vhd && "
	       "qemu-img convert -O vpc -o subformat=fixed src.raw fixed.vhd && "
	       "qemu-img convert -O vmdk -o subformat=monolithicSparse src.raw sparse.vmdk && "
	       "qemu-img convert -O vmdk -o subformat=streamOptimized src.raw stream.vmdk && "
	       "qemu-img convert -f vpc -O raw dyn.vhd dyn.raw && "
	       "qemu-img convert -f vpc -O raw fixed.vhd fixed.raw && "
	       "qemu-img convert -O raw sparse.vmdk sparse.raw && "
	       "qemu-img convert -O raw stream.vmdk stream.raw", dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

static struct blk_image *open_fmt(const char *path, const char *fmt, const char **why)
{
	const struct blk_open_opts o = { .read_only = true, .format = fmt };
	struct blk_image *img = NULL;

	*why = NULL;
	if (blk_open2(path, &o, &img, why))
		return NULL;
	return img;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

/* Reads img in odd-sized pieces and compares with the raw file; walks
 * block status over the whole disk. */
static void check_equal(struct blk_image *img, const char *raw)
{
	size_t len, at = 0, step = 12345;
	uint8_t *want = slurp(raw, &len), *got = malloc(len + 1);
	uint64_t off = 0;

	assert_non_null(got);
	assert_int_equal(img->size, len);
	while (at < len) {
		size_t n = step < len - at ? step : len - at;
		struct iovec iov = { got + at, n };
		assert_int_equal(img->ops->preadv(img, &iov, 1, at), 0);
		at += n;
		step = step * 3 % 300007 + 1;
	}
	assert_memory_equal(got, want, len);
	while (off < img->size) {
		uint64_t pnum = 0, map = 0;
		int st = img->ops->block_status(img, off, img->size - off, &pnum, &map);
		assert_true(st >= 0);
		assert_true(pnum > 0 && pnum <= img->size - off);
		if (!(st & BLK_ALLOCATED) || (st & BLK_ZERO))
			for (uint64_t i = 0; i < pnum; i++)
				assert_int_equal(want[off + i], 0);
		off += pnum;
	}
	free(got);
	free(want);
}

static void test_qemu_images(void **state)
{
	static const struct { const char *img, *fmt, *raw, *sub; } cases[] = {
		{ "dyn.vhd", NULL, "dyn.raw", "dynamic" },
		{ "fixed.vhd", "vpc", "fixed.raw", "fixed" },
		{ "sparse.vmdk", NULL, "sparse.raw", "monolithicSparse" },
		{ "stream.vmdk", NULL, "stream.raw", "streamOptimized" },
	};
	(void)state;
	if (!have_qemu_img)
		skip();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;
		struct blk_image *img = open_fmt(p(cases[i].img), cases[i].fmt, &why);
		struct blk_info bi;

		if (!img)
			fail_msg("%s: %s", cases[i].img, why);
		assert_string_equal(img->ops->name, strstr(cases[i].img, "vhd") ? "vpc" : "vmdk");
		assert_int_equal(img->ops->info(img, &bi), 0);
		assert_string_equal(bi.subformat, cases[i].sub);
		check_equal(img, p(cases[i].raw));
		blk_close(img);
	}
}

/* A fixed VHD probes as raw (as in qemu): its footer is at the end. */
static void test_fixed_probes_raw(void **state)
{
	const char *why;
	struct blk_image *img;

	(void)state;
	if (!have_qemu_img)
		skip();
	img = open_fmt(p("fixed.vhd"), NULL, &why);
	assert_non_null(img);
	assert_string_equal(img->ops->name, "raw");
	blk_close(img);
}

static void test_read_write_refused(void **state)
{
	const struct blk_open_opts o = { .read_only = false };
	struct blk_image *img = NULL;
	const char *why = NULL;

	(void)state;
	if (!have_qemu_img)
		skip();
	assert_int_equal(blk_open2(p("dyn.vhd"), &o, &img, &why), -EROFS);
	assert_non_null(strstr(why, "read-only"));
	assert_int_equal(blk_open2(p("sparse.vmdk"), &o, &img, &why), -EROFS);
}

/* Copies name to bad.img with len bytes at off replaced by bytes. */
static void damage(const char *name, off_t off, const void *bytes, size_t len)
{
	int fd;

	assert_int_equal(sh("cp %s %s", p(name), p("bad.img")), 0);
	fd = open(p("bad.img"), O_RDWR);
	assert_true(fd >= 0);
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

static void expect_refused(const char *fmt, const char *reason)
{
	const char *why;
	struct blk_image *img = open_fmt(p("bad.img"), fmt, &why);

	if (img)
		fail_msg("damaged image opened (expected: %s)", reason);
	assert_non_null(why);
	if (!strstr(why, reason))
		fail_msg("why '%s', expected '%s'", why, reason);
}

/* Reads the whole disk: at least one read must fail with -EIO. */
static void expect_read_eio(const char *fmt)
{
	const char *why;
	struct blk_image *img = open_fmt(p("bad.img"), fmt, &why);
	uint8_t *buf;
	bool eio = false;

	if (!img)
		fail_msg("opening: %s", why);
	buf = malloc(65536);
	for (uint64_t off = 0; off < img->size; off += 65536) {
		struct iovec iov = { buf, MIN(65536, img->size - off) };
		int err = img->ops->preadv(img, &iov, 1, off);
		assert_true(err == 0 || err == -EIO);
		eio |= err == -EIO;
	}
	free(buf);
	blk_close(img);
	assert_true(eio);
}

static void test_damaged_vhd(void **state)
{
	static const uint8_t junk = 0x5a, huge[8] = { 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	uint8_t bs[4] = { 0, 0, 0x0c, 0 }, bat[4] = { 0x7f, 0, 0, 0 };
	uint8_t h[1024];
	uint32_t sum = 0;
	int fd;

	(void)state;
	if (!have_qemu_img)
		skip();
	damage("dyn.vhd", 70, &junk, 1);                 /* inside the unique id */
	expect_refused(NULL, "");                         /* probed: conectix, bad sum */
	expect_refused("vpc", "checksum");
	damage("fixed.vhd", -512 + 48, huge, 8);          /* current size (sum now wrong) */
	expect_refused("vpc", "checksum");
	damage("dyn.vhd", 512, "xxsparse", 8);
	expect_refused("vpc", "dynamic header");
	/* A block size of 3072 with a valid checksum. */
	damage("dyn.vhd", 512 + 32, bs, 4);
	fd = open(p("bad.img"), O_RDWR);
	assert_int_equal(pread(fd, h, sizeof(h), 512), (ssize_t)sizeof(h));
	memset(h + 36, 0, 4);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	sum = ~sum;
	h[36] = (uint8_t)(sum >> 24), h[37] = (uint8_t)(sum >> 16), h[38] = (uint8_t)(sum >> 8), h[39] = (uint8_t)sum;
	assert_int_equal(pwrite(fd, h, sizeof(h), 512), (ssize_t)sizeof(h));
	close(fd);
	expect_refused("vpc", "block size");
	/* A table entry past the end of the file. */
	damage("dyn.vhd", 1536, bat, 4);
	expect_read_eio("vpc");
	/* Truncated: the table lies outside the file. */
	assert_int_equal(sh("head -c 1540 %s > %s", p("dyn.vhd"), p("bad.img")), 0);
	expect_refused("vpc", "");
}

static void test_damaged_vmdk(void **state)
{
	uint8_t v9[4] = { 9, 0, 0, 0 }, zero8[8] = { 0 }, big[8] = { 0, 0, 0, 0x40, 0, 0, 0, 0 };
	uint8_t bad_marker[4] = { 7, 0, 0, 0 }, gt_far[4] = { 0xff, 0xff, 0xff, 0x0f };
	uint8_t junk[64], all_ones[8];
	uint32_t gd, gte;
	int fd;

	(void)state;
	if (!have_qemu_img)
		skip();
	memset(all_ones, 0xff, sizeof(all_ones));
	damage("sparse.vmdk", 4, v9, 4);
	expect_refused("vmdk", "version");
	damage("sparse.vmdk", 20, zero8, 8);
	expect_refused("vmdk", "grain size");
	damage("sparse.vmdk", 56, big, 8);
	expect_refused("vmdk", "grain directory");
	damage("sparse.vmdk", 12, (uint8_t[8]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }, 8);
	expect_refused("vmdk", "");
	/* qemu writes the stream with the directory's place in the first
	 * header and no footer. Make it a stream as VMware writes them: "at
	 * the end" in the first header, then a footer marker, the header with
	 * the directory's place, and an end-of-stream marker. */
	{
		uint8_t tail[3 * 512] = { 0 };

		fd = open(p("stream.vmdk"), O_RDONLY);
		assert_int_equal(pread(fd, tail + 512, 512, 0), 512);
		close(fd);
		tail[0] = 1;
		tail[12] = 3;
		damage("stream.vmdk", 56, all_ones, 8);
		fd = open(p("bad.img"), O_RDWR | O_APPEND);
		assert_int_equal(write(fd, tail, sizeof(tail)), (ssize_t)sizeof(tail));
		close(fd);
	}
	{
		const char *why;
		struct blk_image *img = open_fmt(p("bad.img"), "vmdk", &why);

		if (!img)
			fail_msg("footer-only stream: %s", why);
		check_equal(img, p("stream.raw"));
		blk_close(img);
	}
	assert_int_equal(sh("cp %s %s", p("bad.img"), p("atend.vmdk")), 0);
	damage("atend.vmdk", -1536 + 12, bad_marker, 4);
	expect_refused("vmdk", "footer");
	/* The first grain table entry of the sparse image past the file. */
	fd = open(p("sparse.vmdk"), O_RDONLY);
	assert_int_equal(pread(fd, &gd, 4, 56), 4);   /* gd offset low bits, LE host */
	assert_int_equal(pread(fd, &gte, 4, (off_t)gd * 512), 4);
	close(fd);
	damage("sparse.vmdk", (off_t)gte * 512, gt_far, 4);
	expect_read_eio("vmdk");
	/* Garbage in the first compressed grain of the stream. */
	memset(junk, 0xa5, sizeof(junk));
	damage("stream.vmdk", 128 * 512 + 12, junk, sizeof(junk));
	{
		const char *why;
		struct blk_image *img = open_fmt(p("bad.img"), "vmdk", &why);
		uint64_t pnum, map, off = 0;
		bool eio = false;
		uint8_t *buf = malloc(65536);

		assert_non_null(img);
		while (off < img->size && !eio) {
			int st = img->ops->block_status(img, off, img->size - off, &pnum, &map);
			assert_true(st >= 0);
			if (st & BLK_COMPRESSED) {
				struct iovec iov = { buf, 4096 };
				eio = img->ops->preadv(img, &iov, 1, off) == -EIO;
				break;
			}
			off += pnum;
		}
		free(buf);
		blk_close(img);
		assert_true(eio);
	}
}

/* Built here: 8 KiB of data and a footer, "win " so the size is the
 * footer's. No qemu-img needed. */
static void test_handmade_fixed(void **state)
{
	uint8_t img_bytes[8192 + 512], *f = img_bytes + 8192, got[8192];
	uint32_t sum = 0;
	struct blk_image *img;
	const char *why;
	struct iovec iov = { got, sizeof(got) };
	int fd;

	(void)state;
	for (int i = 0; i < 8192; i++)
		img_bytes[i] = (uint8_t)(i * 13 + 5);
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	memcpy(f + 28, "win ", 4);
	f[54] = 0x20;            /* current size 8192, big-endian */
	f[63] = 2;               /* fixed */
	for (int i = 0; i < 512; i++)
		sum += f[i];
	sum = ~sum;
	f[64] = (uint8_t)(sum >> 24), f[65] = (uint8_t)(sum >> 16), f[66] = (uint8_t)(sum >> 8), f[67] = (uint8_t)sum;
	fd = open(p("hand.vhd"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img_bytes, sizeof(img_bytes)), (ssize_t)sizeof(img_bytes));
	close(fd);
	img = open_fmt(p("hand.vhd"), "vpc", &why);
	if (!img)
		fail_msg("%s", why);
	assert_int_equal(img->size, 8192);
	assert_int_equal(img->ops->preadv(img, &iov, 1, 0), 0);
	assert_memory_equal(got, img_bytes, 8192);
	blk_close(img);
	/* One bit off in the footer: refused. */
	f[100] ^= 1;
	fd = open(p("hand.vhd"), O_RDWR);
	assert_int_equal(pwrite(fd, f, 512, 8192), 512);
	close(fd);
	assert_null(open_fmt(p("hand.vhd"), "vpc", &why));
	assert_non_null(strstr(why, "checksum"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handmade_fixed),
		cmocka_unit_test(test_qemu_images),
		cmocka_unit_test(test_fixed_probes_raw),
		cmocka_unit_test(test_read_write_refused),
		cmocka_unit_test(test_damaged_vhd),
		cmocka_unit_test(test_damaged_vmdk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
