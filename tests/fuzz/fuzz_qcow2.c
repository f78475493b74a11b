/* Fuzz target: the input is a qcow2 image file (header, extensions, L1,
 * L2 and refcount tables, compressed clusters). Whatever the bytes, open
 * either refuses it with a reason or the image serves reads, block_status,
 * a few writes, write-zeroes, discard, flush and a check with errors, never
 * a crash, a hang or a leak. The seeds are small images kumo itself
 * creates (512-byte and 4 KiB clusters, data, zero and compressed
 * clusters, a backing file name, 1- and 64-bit refcounts). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kumo/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

static char path[64];
static int keep_fd = -1;

/* The image lives in an unlinked file (tmpfs when there is one: syncs cost
 * nothing), opened again through /proc/self/fd: nothing is left behind,
 * even when libFuzzer kills the process. */
static bool make_path(void)
{
	char tmpl[64];

	if (keep_fd >= 0)
		return true;
	snprintf(tmpl, sizeof(tmpl), "%s/kumo-fuzz-qcow2.XXXXXX",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	keep_fd = mkstemp(tmpl);
	if (keep_fd < 0)
		return false;
	unlink(tmpl);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", keep_fd);
	return true;
}

static bool put_file(const uint8_t *data, size_t size)
{
	return !ftruncate(keep_fd, 0) && pwrite(keep_fd, data, size, 0) == (ssize_t)size;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static void exercise(struct blk_image *img, uint64_t h)
{
	static uint8_t buf[65536];
	struct iovec v[2];
	uint64_t off, pnum, map;
	struct blk_check ck;
	struct blk_info info;

	if (!img->size)
		return;
	/* The start of the disk, over two vectors. */
	pnum = img->size < sizeof(buf) ? img->size : sizeof(buf);
	v[0] = (struct iovec){ buf, (size_t)pnum / 3 };
	v[1] = (struct iovec){ buf + pnum / 3, (size_t)(pnum - pnum / 3) };
	(void)!img->ops->preadv(img, v, 2, 0);
	for (int i = 0; i < 3; i++) {
		h = mix(h + (uint64_t)i);
		off = h % img->size;
		pnum = 1 + mix(h) % 8192;
		if (pnum > img->size - off)
			pnum = img->size - off;
		v[0] = (struct iovec){ buf, (size_t)pnum };
		(void)!img->ops->preadv(img, v, 1, off);
	}
	off = 0;
	for (int i = 0; i < 16 && off < img->size; i++) {
		if (img->ops->block_status(img, off, img->size - off, &pnum, &map) < 0 || !pnum)
			break;
		off += pnum;
	}
	(void)!img->ops->info(img, &info);
	if (img->read_only)
		return;
	for (int i = 0; i < 3; i++) {
		h = mix(h + 17);
		off = h % img->size;
		pnum = 1 + mix(h) % 4096;
		if (pnum > img->size - off)
			pnum = img->size - off;
		memset(buf, (int)h, (size_t)pnum);
		v[0] = (struct iovec){ buf, (size_t)pnum };
		(void)!img->ops->pwritev(img, v, 1, off);
	}
	h = mix(h);
	off = h % img->size;
	(void)!img->ops->write_zeroes(img, off, (img->size - off) % 20000, true);
	(void)!img->ops->discard(img, off / 2, (img->size - off / 2) % 70000);
	/* A damaged table can send allocations (or the L1 table) far out: the
	 * check of a huge sparse file is real work, not worth a fuzz input.
	 * After a good flush the check writes nothing that could grow it. */
	if (!img->ops->flush(img) && lseek(img->fd, 0, SEEK_END) < (16 << 20))
		(void)!img->ops->check(img, false, &ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blk_open_opts o = { .format = "qcow2", .no_backing = true };
	struct blk_image *img = NULL;
	const char *why = "";
	uint64_t h = size;

	if (!make_path() || !put_file(data, size))
		return 0;
	for (size_t i = 0; i < size; i += 61)
		h = mix(h ^ data[i]);
	if (blk_open2(path, &o, &img, &why)) {
		o.read_only = true;
		if (blk_open2(path, &o, &img, &why))
			return 0;
	}
	exercise(img, h);
	blk_close(img);
	return 0;
}

/* ---- seeds: small images made by kumo ---- */

static void seed(void (*add)(const char *, uint8_t *, size_t), const char *name,
		 const struct blk_create_opts *co, bool compressed)
{
	struct blk_image *img = NULL;
	const char *why = "";
	static uint8_t buf[4096];
	struct iovec v = { buf, 3000 };
	uint8_t *d;
	ssize_t n;
	int fd;

	if (!make_path() || blk_qcow2_ops.create(path, co, &why))
		abort();
	{
		struct blk_open_opts o = { .format = "qcow2", .no_backing = true };
		if (blk_open2(path, &o, &img, &why))
			abort();
	}
	memset(buf, 0x5a, sizeof(buf));
	if (img->ops->pwritev(img, &v, 1, 1000) || img->ops->write_zeroes(img, 8192, 8192, true))
		abort();
	if (compressed) {
		uint64_t cs = co->cluster_size;
		uint8_t *c = calloc(1, cs);
		if (!c)
			abort();
		memset(c, 'q', cs / 2);
		if (img->ops->write_compressed(img, c, 2 * cs, cs))
			abort();
		free(c);
	}
	blk_close(img);
	d = malloc(65536);
	fd = open(path, O_RDONLY);
	if (!d || fd < 0 || (n = read(fd, d, 65536)) <= 0)
		abort();
	close(fd);
	add(name, d, (size_t)n);
	if (ftruncate(keep_fd, 0))
		abort();
}

void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	struct blk_create_opts a = { .size = 64 * 1024, .cluster_size = 512 };
	struct blk_create_opts b = { .size = 1 << 20, .cluster_size = 4096, .backing_file = "base.img",
				     .backing_format = "raw", .refcount_bits = 64 };
	struct blk_create_opts c = { .size = 32 * 1024, .cluster_size = 1024, .refcount_bits = 1,
				     .compression_type = "zstd" };

	seed(add, "qcow2-512", &a, true);
	seed(add, "qcow2-4k-backing", &b, false);
	seed(add, "qcow2-1k-zstd", &c, true);
}
