/* qcow2 against qemu-img: images qemu-img (and qemu-io) made, read by
 * kumo, match their raw content (every cluster size, backing chains,
 * compressed zlib and zstd, zero clusters, refcount widths); images kumo
 * wrote pass `qemu-img check` with no errors and `qemu-img compare` with
 * the expected content; hostile headers are refused with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kumo/block.h"

static char dir[64];

/* On tmpfs when there is one: the image code syncs often, and a sync
 * there costs nothing (SIGKILL keeps the page cache either way). */
static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/kumo-test-qcow2.XXXXXX",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A shell command in dir; its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	int n, rc;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ( ", dir);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " ) >/dev/null 2>%s/err.log", dir);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void sh_ok(const char *fmt, ...)
{
	char cmd[1900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (sh("%s", cmd)) {
		char log[400];
		snprintf(log, sizeof(log), "cat %s/err.log >&2", dir);
		if (system(log)) {}
		fail_msg("command failed: %s", cmd);
	}
}

static const char *p(const char *name)
{
	static char buf[4][300];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void fill(uint8_t *b, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
}

static void write_file(const char *name, const uint8_t *b, size_t len)
{
	int fd = open(p(name), O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
	close(fd);
}

static struct blk_image *open_img(const char *name, bool ro)
{
	struct blk_image *img = NULL;
	const char *why = "";
	int err = blk_open(p(name), ro, &img, &why);

	if (err)
		fail_msg("open %s: %s (%d)", name, why, err);
	return img;
}

/* Reads the whole disk in pieces of odd sizes over two iovecs. */
static uint8_t *read_all(struct blk_image *img)
{
	uint8_t *b = malloc(img->size + 1);
	uint64_t at = 0, step = 300 * 1024 + 512;

	assert_non_null(b);
	while (at < img->size) {
		uint64_t n = img->size - at < step ? img->size - at : step;
		size_t half = (size_t)n / 3;
		struct iovec v[2] = { { b + at, half }, { b + at + half, (size_t)n - half } };
		assert_int_equal(img->ops->preadv(img, v, 2, at), 0);
		at += n;
	}
	return b;
}

static void expect_content_img(struct blk_image *img, const uint8_t *want, uint64_t size)
{
	uint8_t *got;

	assert_int_equal(img->size, size);
	got = read_all(img);
	for (uint64_t i = 0; i < size; i++)
		if (got[i] != want[i]) {
			uint8_t g = got[i];
			free(got);
			fail_msg("%s: byte %llu differs: 0x%02x, want 0x%02x", img->path,
				 (unsigned long long)i, g, want[i]);
		}
	free(got);
}

static void expect_content(const char *name, const uint8_t *want, uint64_t size)
{
	struct blk_image *img = open_img(name, true);

	expect_content_img(img, want, size);
	blk_close(img);
}

/* A raw disk with data, holes and zeros in it. */
static uint8_t *pattern_disk(uint64_t size, uint32_t seed)
{
	uint8_t *b = calloc(1, size);

	assert_non_null(b);
	for (uint64_t at = 0; at < size; at += 256 * 1024) {
		uint64_t n = size - at < 100 * 1024 ? size - at : 100 * 1024;
		fill(b + at, (size_t)n, seed + (uint32_t)(at >> 10));
	}
	return b;
}

static void test_read_cluster_sizes(void **state)
{
	const uint64_t size = 3 * 1024 * 1024 + 4096 + 512;
	uint8_t *raw = pattern_disk(size, 1);

	(void)state;
	write_file("src.raw", raw, size);
	for (unsigned cb = 9; cb <= 21; cb++) {
		sh_ok("qemu-img convert -f raw -O qcow2 -o cluster_size=%u src.raw c.qcow2", 1u << cb);
		expect_content("c.qcow2", raw, size);
	}
	free(raw);
}

static void test_read_v2_and_refcount_widths(void **state)
{
	const uint64_t size = 2 * 1024 * 1024;
	uint8_t *raw = pattern_disk(size, 2);
	struct blk_image *img;
	struct blk_info info;

	(void)state;
	write_file("src.raw", raw, size);
	sh_ok("qemu-img convert -f raw -O qcow2 -o compat=0.10 src.raw v2.qcow2");
	expect_content("v2.qcow2", raw, size);
	img = open_img("v2.qcow2", true);
	assert_int_equal(img->ops->info(img, &info), 0);
	assert_int_equal(info.version, 2);
	blk_close(img);
	for (int rb = 1; rb <= 64; rb *= 2) {
		sh_ok("qemu-img convert -f raw -O qcow2 -o refcount_bits=%d,cluster_size=4096 src.raw r.qcow2", rb);
		expect_content("r.qcow2", raw, size);
		img = open_img("r.qcow2", true);
		assert_int_equal(img->ops->info(img, &info), 0);
		assert_int_equal(info.refcount_bits, rb);
		blk_close(img);
	}
	free(raw);
}

static void test_read_compressed(void **state)
{
	const uint64_t size = 2 * 1024 * 1024 + 12288;
	uint8_t *raw = pattern_disk(size, 3);
	static const char *const types[] = { "zlib", "zstd" };

	(void)state;
	/* Compressible data too: text-like runs. */
	for (uint64_t i = 1024 * 1024; i < 1024 * 1024 + 300000; i++)
		raw[i] = (uint8_t)"kumo qcow2 "[i % 11];
	write_file("src.raw", raw, size);
	for (int t = 0; t < 2; t++)
		for (unsigned cs = 4096; cs <= 2u << 20; cs *= 8) {
			struct blk_image *img;
			struct blk_info info;
			uint64_t pnum, map;
			sh_ok("qemu-img convert -c -f raw -O qcow2 -o compression_type=%s,cluster_size=%u src.raw z.qcow2",
			      types[t], cs);
			expect_content("z.qcow2", raw, size);
			img = open_img("z.qcow2", true);
			assert_int_equal(img->ops->info(img, &info), 0);
			assert_string_equal(info.compression_type, types[t]);
			assert_int_equal(img->ops->block_status(img, 1024 * 1024, 4096, &pnum, &map),
					 BLK_ALLOCATED | BLK_DATA | BLK_COMPRESSED);
			blk_close(img);
		}
	free(raw);
}

static void test_read_zero_clusters(void **state)
{
	const uint64_t size = 1024 * 1024;
	uint8_t *raw = pattern_disk(size, 4);
	struct blk_image *img;
	uint64_t pnum, map;

	(void)state;
	for (uint64_t i = 0; i < size; i++)
		raw[i] |= 1; /* no zero clusters by chance */
	write_file("src.raw", raw, size);
	sh_ok("qemu-img convert -f raw -O qcow2 src.raw base.qcow2");
	sh_ok("qemu-img create -f qcow2 -b base.qcow2 -F qcow2 zero.qcow2");
	/* Zero clusters over a backing file, and a discarded range. */
	sh_ok("qemu-io -c 'write -z 65536 131072' -c 'write -P 0x5a 262144 65536' "
	      "-c 'discard 262144 65536' zero.qcow2");
	memset(raw + 65536, 0, 131072);
	memset(raw + 262144, 0, 65536);
	expect_content("zero.qcow2", raw, size);
	img = open_img("zero.qcow2", true);
	assert_int_equal(img->ops->block_status(img, 65536, size, &pnum, &map), BLK_ALLOCATED | BLK_ZERO);
	assert_int_equal(pnum, 131072);
	assert_int_equal(img->ops->block_status(img, 0, size, &pnum, &map), 0);
	assert_int_equal(pnum, 65536);
	blk_close(img);
	free(raw);
}

static void test_backing_chain(void **state)
{
	const uint64_t size = 1024 * 1024;
	uint8_t *raw = pattern_disk(size, 5);
	struct blk_image *img;

	(void)state;
	write_file("b0.raw", raw, size);
	sh_ok("mkdir -p sub && qemu-img convert -f raw -O qcow2 b0.raw sub/base.qcow2");
	sh_ok("cd sub && qemu-img create -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2");
	sh_ok("qemu-io -c 'write -P 0x11 4096 70000' -c 'write -P 0x22 500000 1000' sub/mid.qcow2");
	/* The top names its backing file relative to its own directory. */
	sh_ok("cd sub && qemu-img create -f qcow2 -b mid.qcow2 -F qcow2 -o cluster_size=4096 top.qcow2 2M");
	sh_ok("qemu-io -c 'write -P 0x33 69632 4096' -c 'write -P 0x44 1040000 20000' sub/top.qcow2");
	memset(raw + 4096, 0x11, 70000);
	memset(raw + 500000, 0x22, 1000);
	memset(raw + 69632, 0x33, 4096);
	raw = realloc(raw, 2 * size);
	memset(raw + size, 0, size); /* past the backing file's end: zeros */
	memset(raw + 1040000, 0x44, 20000);
	expect_content("sub/top.qcow2", raw, 2 * size);
	img = open_img("sub/top.qcow2", true);
	assert_non_null(img->backing);
	assert_non_null(img->backing->backing);
	assert_null(img->backing->backing->backing);
	blk_close(img);
	free(raw);
}

/* Random writes through kumo mirrored in want; then qemu-img judges. */
static void random_writes(struct blk_image *img, uint8_t *want, int n, uint32_t seed, uint64_t maxlen)
{
	uint32_t x = seed;
	uint8_t *buf = malloc(maxlen + 512);

	assert_non_null(buf);
	for (int i = 0; i < n; i++) {
		uint64_t off, len;
		x = x * 1103515245 + 12345;
		off = ((uint64_t)x << 7) % img->size;
		x = x * 1103515245 + 12345;
		len = 1 + (x >> 4) % maxlen;
		if (i % 3 == 0) { /* sector aligned, like a guest */
			off &= ~511ULL;
			len = (len + 511) & ~511ULL;
		}
		if (len > img->size - off)
			len = img->size - off;
		fill(buf, (size_t)len, x);
		struct iovec v[2] = { { buf, (size_t)len / 2 }, { buf + len / 2, (size_t)(len - len / 2) } };
		assert_int_equal(img->ops->pwritev(img, v, 2, off), 0);
		memcpy(want + off, buf, len);
	}
	free(buf);
}

static void check_clean(const char *name, const uint8_t *want, uint64_t size)
{
	int rc;

	write_file("want.raw", want, size);
	rc = sh("qemu-img check %s", name);
	if (rc) {
		sh("qemu-img check %s >&2; cp %s /tmp/qcow2-failed.qcow2", name, name);
		fail_msg("qemu-img check %s: exit %d", name, rc);
	}
	sh_ok("qemu-img compare -f raw -F qcow2 want.raw %s", name);
}

static void test_write_kumo_created(void **state)
{
	static const struct { uint32_t cs; int rbits; } cases[] = {
		{ 512, 1 }, { 512, 64 }, { 4096, 16 }, { 65536, 16 }, { 65536, 2 },
		{ 2u << 20, 32 }, { 1024, 8 },
	};
	const uint64_t size = 5 * 1024 * 1024 + 1536;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct blk_create_opts o = { .size = size, .cluster_size = cases[c].cs,
					     .refcount_bits = cases[c].rbits };
		const char *why = "";
		uint8_t *want = calloc(1, size);
		struct blk_image *img;

		assert_int_equal(blk_qcow2_ops.create(p("w.qcow2"), &o, &why), 0);
		check_clean("w.qcow2", want, size);
		img = open_img("w.qcow2", false);
		random_writes(img, want, 60, (uint32_t)c + 7, 200000);
		/* A sequential run: contiguous clusters. */
		{
			uint8_t *b = malloc(1 << 20);
			fill(b, 1 << 20, 99);
			struct iovec v = { b, 1 << 20 };
			for (int i = 0; i < 3; i++) {
				assert_int_equal(img->ops->pwritev(img, &v, 1, (uint64_t)(1 + i) << 20), 0);
				memcpy(want + ((uint64_t)(1 + i) << 20), b, 1 << 20);
			}
			free(b);
		}
		assert_int_equal(img->ops->flush(img), 0);
		/* Zeroing and discarding ranges. */
		assert_int_equal(img->ops->write_zeroes(img, 100000, 300000, true), 0);
		memset(want + 100000, 0, 300000);
		assert_int_equal(img->ops->discard(img, 2 * 1024 * 1024, 512 * 1024), 0);
		{
			/* A hint: only whole clusters go (to zeros, no backing file). */
			uint64_t a = (2 * 1024 * 1024 + cases[c].cs - 1) / cases[c].cs * cases[c].cs;
			uint64_t b = (2 * 1024 * 1024 + 512 * 1024) / cases[c].cs * cases[c].cs;
			if (a < b)
				memset(want + a, 0, b - a);
		}
		print_message("cluster size %u, refcount bits %d\n", cases[c].cs, cases[c].rbits);
		expect_content_img(img, want, size);
		random_writes(img, want, 20, (uint32_t)c + 77, 5000);
		blk_close(img);
		expect_content("w.qcow2", want, size);
		check_clean("w.qcow2", want, size);
		free(want);
	}
}

static void test_write_over_qemu_image(void **state)
{
	const uint64_t size = 3 * 1024 * 1024;
	uint8_t *want = pattern_disk(size, 9);
	struct blk_image *img;

	(void)state;
	write_file("src.raw", want, size);
	sh_ok("qemu-img convert -f raw -O qcow2 src.raw base.qcow2");
	sh_ok("qemu-img create -f qcow2 -b base.qcow2 -F qcow2 -o cluster_size=16384 ov.qcow2");
	img = open_img("ov.qcow2", false);
	random_writes(img, want, 50, 5, 40000); /* partial clusters: copy-on-write */
	blk_close(img);
	expect_content("ov.qcow2", want, size);
	check_clean("ov.qcow2", want, size);
	/* Overwrite compressed clusters. */
	sh_ok("qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd src.raw cz.qcow2");
	{
		uint8_t *raw = pattern_disk(size, 9);
		memcpy(want, raw, size);
		free(raw);
	}
	img = open_img("cz.qcow2", false);
	random_writes(img, want, 30, 6, 30000);
	blk_close(img);
	check_clean("cz.qcow2", want, size);
	/* A version 2 image: no zero flag, zeroes are written as data. */
	sh_ok("qemu-img convert -f raw -O qcow2 -o compat=0.10,cluster_size=4096 src.raw v2.qcow2");
	{
		uint8_t *raw = pattern_disk(size, 9);
		memcpy(want, raw, size);
		free(raw);
	}
	img = open_img("v2.qcow2", false);
	random_writes(img, want, 30, 8, 30000);
	assert_int_equal(img->ops->write_zeroes(img, 4096, 65536, true), 0);
	memset(want + 4096, 0, 65536);
	assert_int_equal(img->ops->discard(img, 1 << 20, 65536), 0);
	memset(want + (1 << 20), 0, 65536);
	blk_close(img);
	check_clean("v2.qcow2", want, size);
	sh_ok("qemu-img info v2.qcow2 | grep -q 'compat: 0.10'");
	free(want);
}

static void test_growth(void **state)
{
	/* 512-byte clusters, 64-bit refcounts: a refcount block covers 32 KiB,
	 * the first table 2 MiB of file: it has to grow. The L1 grows with
	 * the disk (truncate). */
	struct blk_create_opts o = { .size = 1024 * 1024, .cluster_size = 512, .refcount_bits = 64 };
	const uint64_t big = 12 * 1024 * 1024;
	uint8_t *want = calloc(1, big);
	struct blk_image *img;
	const char *why = "";

	(void)state;
	assert_int_equal(blk_qcow2_ops.create(p("g.qcow2"), &o, &why), 0);
	img = open_img("g.qcow2", false);
	random_writes(img, want, 40, 3, 60000);
	assert_int_equal(img->ops->truncate(img, big), 0);
	assert_int_equal(img->size, big);
	{
		uint8_t *b = malloc(4 << 20);
		fill(b, 4 << 20, 5);
		struct iovec v = { b, 4 << 20 };
		assert_int_equal(img->ops->pwritev(img, &v, 1, big - (4 << 20)), 0);
		memcpy(want + big - (4 << 20), b, 4 << 20);
		free(b);
	}
	random_writes(img, want, 40, 4, 60000);
	blk_close(img);
	expect_content("g.qcow2", want, big);
	check_clean("g.qcow2", want, big);
	free(want);
}

struct worker { struct blk_image *img; int id; uint8_t *want; };

static void *writer(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[12288];

	for (int i = 0; i < 200; i++) {
		uint64_t off = ((uint64_t)(i * 4 + w->id) * 12288) % (w->img->size - sizeof(buf));
		off &= ~511ULL;
		if ((off / 12288) % 4 != (uint64_t)w->id)
			continue; /* keep the threads' ranges apart */
		fill(buf, sizeof(buf), (uint32_t)(i * 10 + w->id));
		struct iovec v = { buf, sizeof(buf) };
		if (w->img->ops->pwritev(w->img, &v, 1, off))
			return (void *)1;
		memcpy(w->want + off, buf, sizeof(buf));
		if (i % 50 == 0 && w->img->ops->flush(w->img))
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct blk_create_opts o = { .size = 8 * 1024 * 1024, .cluster_size = 4096 };
	uint8_t *want = calloc(1, o.size);
	struct worker w[4];
	pthread_t t[4];
	struct blk_image *img;
	const char *why = "";

	(void)state;
	assert_int_equal(blk_qcow2_ops.create(p("t.qcow2"), &o, &why), 0);
	img = open_img("t.qcow2", false);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ img, i, want };
		assert_int_equal(pthread_create(&t[i], NULL, writer, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}
	blk_close(img);
	check_clean("t.qcow2", want, o.size);
	free(want);
}

static void compressed_case(const char *type)
{
	struct blk_create_opts o = { .size = 1024 * 1024, .cluster_size = 65536,
				     .compression_type = type };
	uint8_t *want = calloc(1, o.size);
	struct blk_image *img;
	struct blk_check ck;
	const char *why = "";

	assert_int_equal(blk_qcow2_ops.create(p("cw.qcow2"), &o, &why), 0);
	for (uint64_t i = 0; i < o.size / 2; i++)
		want[i] = (uint8_t)"compress me "[i % 12];
	fill(want + o.size / 2, 65536, 3); /* incompressible: stored plain */
	img = open_img("cw.qcow2", false);
	for (uint64_t at = 0; at < o.size; at += 65536)
		assert_int_equal(img->ops->write_compressed(img, want + at, at, 65536), 0);
	assert_int_equal(img->ops->check(img, false, &ck), 0);
	assert_int_equal(ck.corruptions, 0);
	assert_int_equal(ck.leaks, 0);
	assert_int_equal(ck.compressed_clusters, 15); /* all but the random one */
	/* Packed: the 15 compressed clusters share a host cluster or two. */
	assert_true(ck.image_end_offset <= 7 * 65536);
	/* Overwrite some (their references go), compress again, check. */
	fill(want, 100000, 8);
	{
		struct iovec v = { want, 100000 };
		assert_int_equal(img->ops->pwritev(img, &v, 1, 0), 0);
	}
	assert_int_equal(img->ops->flush(img), 0);
	assert_int_equal(img->ops->write_compressed(img, want + 3 * 65536, 3 * 65536, 65536), 0);
	assert_int_equal(img->ops->check(img, false, &ck), 0);
	assert_int_equal(ck.corruptions, 0);
	assert_int_equal(ck.leaks, 0);
	blk_close(img);
	check_clean("cw.qcow2", want, o.size);
	expect_content("cw.qcow2", want, o.size);
	free(want);
}

static void test_compressed_write_and_check(void **state)
{
	(void)state;
	compressed_case("zlib");
	compressed_case("zstd");
}

static void test_check_leaks(void **state)
{
	struct blk_image *img;
	struct blk_check ck;

	(void)state;
	sh_ok("qemu-img create -f qcow2 -o cluster_size=4096 lk.qcow2 1M");
	sh_ok("qemu-io -c 'write -P 1 0 64k' lk.qcow2");
	/* Leak two clusters: refcount 1 on clusters no table points at. */
	sh_ok("qemu-img resize lk.qcow2 2M");
	img = open_img("lk.qcow2", false);
	assert_int_equal(img->ops->check(img, false, &ck), 0);
	assert_int_equal(ck.corruptions, 0);
	assert_int_equal(ck.leaks, 0);
	assert_int_equal(ck.allocated_clusters, 16);
	/* Overwrite a cluster's L2 entry by hand? Use discard then a leak: drop
	 * one L2 entry behind the cache's back. */
	blk_close(img);
	{
		/* L1 at cluster 3 for qemu-img's layout: its first entry's L2
		 * table; clear the first L2 entry: one leaked cluster. */
		int fd = open(p("lk.qcow2"), O_RDWR);
		uint8_t e[8];
		uint64_t l1off, l2off;
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, e, 8, 40), 8);
		l1off = 0;
		for (int i = 0; i < 8; i++)
			l1off = l1off << 8 | e[i];
		assert_int_equal(pread(fd, e, 8, (off_t)l1off), 8);
		l2off = 0;
		for (int i = 0; i < 8; i++)
			l2off = l2off << 8 | e[i];
		l2off &= 0x00fffffffffffe00ULL;
		memset(e, 0, 8);
		assert_int_equal(pwrite(fd, e, 8, (off_t)l2off), 8);
		close(fd);
	}
	assert_int_equal(sh("qemu-img check lk.qcow2"), 3);
	img = open_img("lk.qcow2", false);
	assert_int_equal(img->ops->check(img, false, &ck), 0);
	assert_int_equal(ck.leaks, 1);
	assert_int_equal(ck.corruptions, 0);
	assert_int_equal(img->ops->check(img, true, &ck), 0);
	assert_int_equal(ck.leaks_fixed, 1);
	blk_close(img);
	assert_int_equal(sh("qemu-img check lk.qcow2"), 0);
}

static void test_set_backing_and_make_empty(void **state)
{
	const uint64_t size = 1024 * 1024;
	uint8_t *raw = pattern_disk(size, 11);
	struct blk_image *img;
	struct blk_info info;

	(void)state;
	write_file("sb.raw", raw, size);
	sh_ok("qemu-img create -f qcow2 -b sb.raw -F raw sbo.qcow2");
	sh_ok("qemu-io -c 'write -P 0x7 0 100000' sbo.qcow2");
	img = open_img("sbo.qcow2", false);
	assert_int_equal(img->ops->make_empty(img), 0);
	assert_int_equal(img->ops->set_backing(img, "other.raw", "raw"), 0);
	assert_int_equal(img->ops->info(img, &info), 0);
	assert_string_equal(info.backing_file, "other.raw");
	blk_close(img);
	sh_ok("cp sb.raw other.raw");
	expect_content("sbo.qcow2", raw, size);
	sh_ok("qemu-img info sbo.qcow2 | grep -q 'backing file: other.raw'");
	sh_ok("qemu-img info sbo.qcow2 | grep -q 'backing file format: raw'");
	sh_ok("qemu-img check sbo.qcow2");
	free(raw);
}

/* Hostile headers: each edit of a good image gives a clean error. */
static void test_hostile_headers(void **state)
{
	static const struct {
		unsigned off, len;
		uint64_t val;
		const char *why;
	} edits[] = {
		{ 0, 4, 0x514649fc, "bad magic" },
		{ 4, 4, 4, "version" },
		{ 4, 4, 1, "version" },
		{ 20, 4, 8, "cluster_bits" },
		{ 20, 4, 22, "cluster_bits" },
		{ 20, 4, 0xffffffff, "cluster_bits" },
		{ 36, 4, 0, "L1" },
		{ 36, 4, 0x7fffffff, "L1" },
		{ 40, 8, 0x1234, "L1" },
		{ 40, 8, 0, "L1" },
		{ 40, 8, 0xfffffffffff0000ULL, "L1" },
		{ 48, 8, 0x100, "refcount table" },
		{ 48, 8, 0, "refcount table" },
		{ 56, 4, 0, "refcount table" },
		{ 56, 4, 0x10000000, "refcount table" },
		{ 72, 8, 1ULL << 40, "bit 40" },
		{ 72, 8, 1ULL << 2, "external data file" },
		{ 72, 8, 1ULL << 4, "extended L2" },
		{ 96, 4, 7, "refcount_order" },
		{ 100, 4, 8, "header length" },
		{ 100, 4, 105, "header length" },
		{ 24, 8, 1ULL << 62, "virtual size" },
		{ 32, 4, 1, "encrypted" },
		{ 8, 8, 0xfff0, "backing file" },
		{ 16, 4, 2000, "backing file" },
	};
	int fd;
	uint8_t good[512];

	(void)state;
	sh_ok("truncate -s 1M base.raw && qemu-img create -f qcow2 -b base.raw -F raw -o cluster_size=65536 h0.qcow2 1M");
	fd = open(p("h0.qcow2"), O_RDONLY);
	assert_int_equal(pread(fd, good, sizeof(good), 0), (ssize_t)sizeof(good));
	close(fd);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		uint8_t h[512];
		struct blk_image *img = NULL;
		const struct blk_open_opts o = { .read_only = true, .format = "qcow2", .no_backing = true };
		const char *why = "";
		memcpy(h, good, sizeof(h));
		for (unsigned b = 0; b < edits[i].len; b++)
			h[edits[i].off + b] = (uint8_t)(edits[i].val >> (8 * (edits[i].len - 1 - b)));
		sh_ok("cp h0.qcow2 h.qcow2");
		fd = open(p("h.qcow2"), O_RDWR);
		assert_int_equal(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
		close(fd);
		int err = blk_open2(p("h.qcow2"), &o, &img, &why);
		if (!err)
			fail_msg("edit %zu (%s) opened", i, edits[i].why);
		assert_null(img);
		if (!strcasestr(why, edits[i].why))
			fail_msg("edit %zu: why '%s' lacks '%s'", i, why, edits[i].why);
	}
	/* A damaged L1 entry: reads fail cleanly. */
	{
		struct blk_image *img;
		uint8_t e[8] = { 0x80, 0, 0, 0, 0, 0, 0x12, 0x34 }, buf[4096];
		struct iovec v = { buf, sizeof(buf) };
		sh_ok("qemu-img create -f qcow2 d.qcow2 1M && qemu-io -c 'write 0 4k' d.qcow2");
		fd = open(p("d.qcow2"), O_RDWR);
		assert_int_equal(pwrite(fd, e, 8, 3 * 65536), 8);
		close(fd);
		img = open_img("d.qcow2", true);
		assert_int_equal(img->ops->preadv(img, &v, 1, 0), -EIO);
		blk_close(img);
	}
}

static void test_create_matches_qemu(void **state)
{
	struct blk_create_opts o = { .size = 10 * 1024 * 1024, .backing_file = "b.raw",
				     .backing_format = "raw", .compression_type = "zstd",
				     .cluster_size = 512 };
	const char *why = "";
	struct blk_image *img;
	uint64_t pnum, map;

	(void)state;
	sh_ok("truncate -s 4M b.raw");
	assert_int_equal(blk_qcow2_ops.create(p("cr.qcow2"), &o, &why), 0);
	sh_ok("qemu-img check cr.qcow2");
	sh_ok("qemu-img info cr.qcow2 | grep -q 'compression type: zstd'");
	sh_ok("qemu-img info cr.qcow2 | grep -q 'cluster_size: 512'");
	img = open_img("cr.qcow2", false);
	assert_string_equal(img->backing_format, "raw");
	assert_int_equal(img->ops->block_status(img, 0, 1 << 20, &pnum, &map), 0);
	assert_int_equal(pnum, 1 << 20);
	blk_close(img);
}

/* Locks QEMU understands: kumo's writer keeps qemu-img out (but not
 * qemu-img -U), readers share with readers, and a second writer or a
 * reader next to a writer is refused. */
static void test_locking(void **state)
{
	struct blk_image *w, *r1, *r2, *x = NULL;
	const struct blk_open_opts fs = { .read_only = true, .force_share = true };
	const char *why = "";

	(void)state;
	sh_ok("qemu-img create -f qcow2 lock.qcow2 1M");
	w = open_img("lock.qcow2", false);
	assert_int_not_equal(sh("qemu-img info lock.qcow2"), 0);
	assert_int_not_equal(sh("qemu-io -c 'read 0 512' lock.qcow2"), 0);
	sh_ok("qemu-img info -U lock.qcow2");
	assert_int_equal(blk_open(p("lock.qcow2"), false, &x, &why), -EBUSY);
	assert_string_equal(why, "in use (locked)");
	assert_int_equal(blk_open(p("lock.qcow2"), true, &x, &why), -EBUSY);
	assert_string_equal(why, "in use by a writer (locked)");
	assert_int_equal(blk_open2(p("lock.qcow2"), &fs, &x, &why), 0);
	blk_close(x);
	blk_close(w);
	r1 = open_img("lock.qcow2", true);
	r2 = open_img("lock.qcow2", true);
	sh_ok("qemu-img info lock.qcow2");
	assert_int_not_equal(sh("qemu-io -c 'write 0 512' lock.qcow2"), 0);
	assert_int_equal(blk_open(p("lock.qcow2"), false, &x, &why), -EBUSY);
	blk_close(r1);
	blk_close(r2);
	sh_ok("qemu-io -c 'write 0 512' lock.qcow2");
}

/* raw: create, block_status from the file's holes, truncate. */
static void test_raw_ops(void **state)
{
	struct blk_create_opts o = { .size = 4 * 1024 * 1024 };
	struct blk_image *img;
	const char *why = "";
	uint64_t pnum, map;
	uint8_t buf[65536];
	struct iovec v = { buf, sizeof(buf) };

	(void)state;
	assert_int_equal(blk_raw_ops.create(p("r.raw"), &o, &why), 0);
	img = open_img("r.raw", false);
	assert_string_equal(img->ops->name, "raw");
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(img->ops->pwritev(img, &v, 1, 1024 * 1024), 0);
	assert_int_equal(img->ops->block_status(img, 0, img->size, &pnum, &map),
			 BLK_ALLOCATED | BLK_ZERO | BLK_OFFSET_VALID);
	assert_int_equal(pnum, 1024 * 1024);
	assert_int_equal(img->ops->block_status(img, 1024 * 1024, img->size, &pnum, &map),
			 BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID);
	assert_int_equal(map, 1024 * 1024);
	assert_true(pnum >= sizeof(buf) && pnum < 2 * 1024 * 1024);
	assert_int_equal(img->ops->truncate(img, 8 * 1024 * 1024), 0);
	assert_int_equal(img->size, 8 * 1024 * 1024);
	blk_close(img);
	sh_ok("test $(stat -c %%s r.raw) = 8388608");
}

/* A writer killed with SIGKILL at random moments: qemu-img check finds no
 * corruption (leaks allowed), and every round it had flushed reads back.
 * 512-byte clusters and a 24 MiB disk, so L2 tables get evicted and the
 * refcount table grows while the writer runs. */
static void crash_writer(int fd_report)
{
	struct blk_image *img = open_img("crash.qcow2", false);
	static uint8_t buf[65536];

	for (uint32_t r = 0;; r++) {
		uint64_t base = (uint64_t)(r * 7919 % 384) * 65536;
		memset(buf, (int)(r % 251 + 1), sizeof(buf));
		for (size_t at = 0; at < sizeof(buf); at += 3000) {
			size_t n = sizeof(buf) - at < 3000 ? sizeof(buf) - at : 3000;
			struct iovec v = { buf + at, n };
			if (img->ops->pwritev(img, &v, 1, base + at))
				_exit(2);
		}
		if (r % 5 == 4 && img->ops->discard(img, (uint64_t)((r * 31) % 384) * 65536, 65536))
			_exit(2);
		if (img->ops->flush(img))
			_exit(2);
		if (write(fd_report, &r, sizeof(r)) != sizeof(r))
			_exit(2);
	}
}

static void test_crash_safety(void **state)
{
	struct blk_create_opts o = { .size = 24 * 1024 * 1024, .cluster_size = 512 };
	const char *why = "";

	(void)state;
	srand((unsigned)time(NULL));
	assert_int_equal(blk_qcow2_ops.create(p("crash.qcow2"), &o, &why), 0);
	for (int k = 0; k < 6; k++) {
		int pfd[2], st, rc;
		uint32_t r, last = UINT32_MAX;
		pid_t pid;
		struct timespec ts = { 0, (long)(20 + rand() % 400) * 1000000L };
		static int8_t owner[384];
		static uint32_t owner_round[384];

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (!pid) {
			close(pfd[0]);
			crash_writer(pfd[1]);
		}
		close(pfd[1]);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		while (read(pfd[0], &r, sizeof(r)) == sizeof(r))
			last = r;
		close(pfd[0]);
		rc = sh("qemu-img check crash.qcow2");
		if (rc != 0 && rc != 3) {
			sh("qemu-img check crash.qcow2 >&2; cp crash.qcow2 /tmp/qcow2-crash.qcow2");
			fail_msg("after kill %d: qemu-img check exit %d", k, rc);
		}
		/* Which round owns each region after the flushed rounds (a
		 * region is rewritten by later rounds; a discard zeroes it). */
		memset(owner, -1, sizeof(owner));
		for (uint32_t i = 0; last != UINT32_MAX && i <= last; i++) {
			owner[i * 7919 % 384] = 1;
			owner_round[i * 7919 % 384] = i;
			if (i % 5 == 4)
				owner[(i * 31) % 384] = 0;
		}
		{
			struct blk_image *img = open_img("crash.qcow2", true);
			uint8_t *b = read_all(img);
			for (int g = 0; g < 384; g++) {
				uint8_t want = owner[g] == 1 ? (uint8_t)(owner_round[g] % 251 + 1) : 0;
				/* The region may be rewritten by the unflushed round
				 * after last: only regions no later round touched. */
				uint32_t nx = last == UINT32_MAX ? 0 : last + 1;
				if (owner[g] < 0 || (uint32_t)(nx * 7919 % 384) == (uint32_t)g ||
				    (nx % 5 == 4 && (nx * 31) % 384 == (uint32_t)g))
					continue;
				for (int i = 0; i < 65536; i++)
					if (b[(size_t)g * 65536 + (size_t)i] != want)
						fail_msg("kill %d: region %d byte %d: 0x%02x, want 0x%02x (round %u)",
							 k, g, i, b[(size_t)g * 65536 + (size_t)i], want, last);
			}
			free(b);
			blk_close(img);
		}
		/* The next writer goes on from here; repair the leaks first
		 * now and then, as an admin would. */
		if (k % 2)
			sh_ok("qemu-img check -r leaks crash.qcow2");
		print_message("kill %d after %ld ms: %u rounds flushed, check exit %d\n", k,
			      ts.tv_nsec / 1000000, last + 1, rc);
	}
}

/* The dirty bit (lazy refcounts left unrepaired) and the corrupt bit:
 * read-only opens work, writers are refused with the reason. */
static void test_write_refusals(void **state)
{
	static const struct { uint8_t bit; const char *why; } cases[] = {
		{ 0, "dirty" }, { 1, "corrupt" },
	};
	struct blk_image *img = NULL;
	const char *why = "";

	(void)state;
	for (int i = 0; i < 2; i++) {
		uint8_t b;
		int fd;
		sh_ok("qemu-img create -f qcow2 -o lazy_refcounts=on dirty.qcow2 1M");
		fd = open(p("dirty.qcow2"), O_RDWR);
		b = (uint8_t)(1u << cases[i].bit);
		assert_int_equal(pwrite(fd, &b, 1, 79), 1);
		close(fd);
		assert_int_equal(blk_open(p("dirty.qcow2"), false, &img, &why), -EROFS);
		assert_non_null(strstr(why, cases[i].why));
		img = open_img("dirty.qcow2", true);
		blk_close(img);
	}
}

/* Sequential guest writes to a fresh image: one run of contiguous
 * clusters in the file (after the L2 table). */
static void test_sequential_contiguous(void **state)
{
	struct blk_create_opts o = { .size = 8 * 1024 * 1024 };
	struct blk_image *img;
	const char *why = "";
	static uint8_t buf[1 << 20];
	uint64_t pnum, map;

	(void)state;
	assert_int_equal(blk_qcow2_ops.create(p("seq.qcow2"), &o, &why), 0);
	img = open_img("seq.qcow2", false);
	memset(buf, 0x3c, sizeof(buf));
	for (int i = 0; i < 4; i++) {
		struct iovec v = { buf, sizeof(buf) };
		assert_int_equal(img->ops->pwritev(img, &v, 1, (uint64_t)i << 20), 0);
	}
	assert_int_equal(img->ops->block_status(img, 0, img->size, &pnum, &map),
			 BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID);
	assert_int_equal(pnum, 4 << 20);
	assert_int_equal(map, 5 * 65536); /* header, refcounts, L1, L2, then data */
	blk_close(img);
	sh_ok("qemu-img map --output=json seq.qcow2 | grep -q '\"length\": 4194304, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 327680'");
}

/* A number from qemu-img check --output=json (0 when absent, as qemu-img
 * leaves zero counts out). */
static uint64_t json_num(const char *json, const char *key)
{
	char k[64];
	const char *at;

	snprintf(k, sizeof(k), "\"%s\":", key);
	at = strstr(json, k);
	return at ? strtoull(at + strlen(k), NULL, 10) : 0;
}

/* kumo's check counts what qemu-img check counts. */
static void test_check_matches_qemu(void **state)
{
	static const char *const make[] = {
		"qemu-img convert -f raw -O qcow2 ck.raw ck.qcow2",
		"qemu-img convert -c -f raw -O qcow2 -o cluster_size=4096 ck.raw ck.qcow2",
		"qemu-img create -f qcow2 -b ckb.qcow2 -F qcow2 ck.qcow2 && qemu-io -c 'write -P 1 100k 300k' "
		"-c 'write -z 1M 1M' -c 'write -P 2 5M 64k' -c 'write -P 3 700k 10k' ck.qcow2",
	};
	uint8_t *raw = pattern_disk(8 << 20, 21);

	(void)state;
	memset(raw + (6 << 20), 'k', 1 << 20); /* compressible */
	write_file("ck.raw", raw, 8 << 20);
	free(raw);
	sh_ok("qemu-img convert -f raw -O qcow2 ck.raw ckb.qcow2");
	for (size_t i = 0; i < sizeof(make) / sizeof(make[0]); i++) {
		const struct blk_open_opts o = { .read_only = true, .no_backing = true };
		struct blk_image *img = NULL;
		const char *why = "";
		struct blk_check ck;
		char json[4096] = "";
		FILE *f;

		sh_ok("rm -f ck.qcow2 && %s", make[i]);
		sh_ok("qemu-img check --output=json ck.qcow2 | tr -d ' \n' > ck.json");
		f = fopen(p("ck.json"), "r");
		assert_non_null(f);
		assert_true(fread(json, 1, sizeof(json) - 1, f) > 0);
		fclose(f);
		assert_int_equal(blk_open2(p("ck.qcow2"), &o, &img, &why), 0);
		assert_int_equal(img->ops->check(img, false, &ck), 0);
		blk_close(img);
		assert_int_equal(ck.corruptions, json_num(json, "corruptions"));
		assert_int_equal(ck.leaks, json_num(json, "leaks"));
		assert_int_equal(ck.allocated_clusters, json_num(json, "allocated-clusters"));
		assert_int_equal(ck.total_clusters, json_num(json, "total-clusters"));
		assert_int_equal(ck.fragmented_clusters, json_num(json, "fragmented-clusters"));
		assert_int_equal(ck.compressed_clusters, json_num(json, "compressed-clusters"));
		assert_int_equal(ck.image_end_offset, json_num(json, "image-end-offset"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_cluster_sizes),
		cmocka_unit_test(test_read_v2_and_refcount_widths),
		cmocka_unit_test(test_read_compressed),
		cmocka_unit_test(test_read_zero_clusters),
		cmocka_unit_test(test_backing_chain),
		cmocka_unit_test(test_write_kumo_created),
		cmocka_unit_test(test_write_over_qemu_image),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_compressed_write_and_check),
		cmocka_unit_test(test_check_leaks),
		cmocka_unit_test(test_set_backing_and_make_empty),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_create_matches_qemu),
		cmocka_unit_test(test_locking),
		cmocka_unit_test(test_raw_ops),
		cmocka_unit_test(test_crash_safety),
		cmocka_unit_test(test_write_refusals),
		cmocka_unit_test(test_sequential_contiguous),
		cmocka_unit_test(test_check_matches_qemu),
	};

	if (getenv("QCOW2_TEST"))
		cmocka_set_test_filter(getenv("QCOW2_TEST")); /* one test by name, for debugging */
	return cmocka_run_group_tests(tests, setup, teardown);
}
