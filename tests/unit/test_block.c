/* blk_open and the raw format on real files in a temporary directory:
 * errors, sparse files, reads past the end, discard and write-zeroes
 * punching holes, read-only images. */
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
#include "kumo/workpool.h"

static char dir[] = "/tmp/kumo-test-block.XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void make_file(uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static uint64_t blocks(void)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks;
}

static struct blk_image *open_ok(bool ro)
{
	struct blk_image *img = NULL;
	const char *why = NULL;
	int rc = blk_open(path, ro, &img, &why);

	if (rc)
		fail_msg("blk_open(%s): %d %s", path, rc, why);
	assert_non_null(img);
	assert_string_equal(img->ops->name, "raw");
	return img;
}

static void pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_open_errors(void **state)
{
	struct blk_image *img = (void *)1;
	const char *why = NULL;
	char missing[300];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(blk_open(missing, false, &img, &why), -ENOENT);
	assert_string_equal(why, "no such file");
	assert_null(img);
	for (int ro = 0; ro < 2; ro++) {
		why = NULL;
		assert_true(blk_open(dir, ro, &img, &why) < 0);
		assert_string_equal(why, "not a regular file or block device");
	}
	why = NULL;
	assert_int_equal(blk_open("/dev/null", true, &img, &why), -EINVAL);
	assert_string_equal(why, "not a regular file or block device");
	if (geteuid() != 0) { /* root opens anything */
		make_file(4096);
		assert_int_equal(chmod(path, 0), 0);
		why = NULL;
		assert_int_equal(blk_open(path, false, &img, &why), -EACCES);
		assert_string_equal(why, "permission denied");
	}
}

/* A sparse file: written data comes back through several segments, and
 * discard gives the blocks back. */
static void test_sparse_rw_discard(void **state)
{
	enum { LEN = 1 << 20, OFF = 4 << 20 };
	static uint8_t wbuf[LEN], rbuf[LEN];
	struct blk_image *img;
	struct iovec iov[3];
	uint64_t before, after_write;

	(void)state;
	make_file(16 << 20);
	img = open_ok(false);
	assert_int_equal(img->size, 16 << 20);
	assert_false(img->is_blockdev);
	before = blocks();
	pattern(wbuf, LEN, 1);
	iov[0] = (struct iovec){ wbuf, 512 };
	iov[1] = (struct iovec){ wbuf + 512, LEN - 4096 };
	iov[2] = (struct iovec){ wbuf + LEN - 3584, 3584 };
	assert_int_equal(img->ops->pwritev(img, iov, 3, OFF), 0);
	assert_int_equal(img->ops->flush(img), 0);
	after_write = blocks();
	assert_true(after_write >= before + LEN / 512);
	iov[0] = (struct iovec){ rbuf, 4096 };
	iov[1] = (struct iovec){ rbuf + 4096, LEN - 4096 };
	assert_int_equal(img->ops->preadv(img, iov, 2, OFF), 0);
	assert_memory_equal(wbuf, rbuf, LEN);
	/* A hole reads as zeros. */
	memset(rbuf, 0xff, 8192);
	iov[0] = (struct iovec){ rbuf, 8192 };
	assert_int_equal(img->ops->preadv(img, iov, 1, 0), 0);
	assert_true(all_zero(rbuf, 8192));

	assert_int_equal(img->ops->discard(img, OFF, LEN), 0);
	assert_true(blocks() <= after_write - LEN / 512);
	iov[0] = (struct iovec){ rbuf, LEN };
	assert_int_equal(img->ops->preadv(img, iov, 1, OFF), 0);
	assert_true(all_zero(rbuf, LEN));
	assert_int_equal(img->size, 16 << 20); /* the size stays */
	blk_close(img);
}

/* A file of 1000 bytes: the rest of a sector, and anything after, read as
 * zeros. */
static void test_read_past_eof(void **state)
{
	uint8_t data[1000], buf[2048];
	struct blk_image *img;
	struct iovec iov[2];
	int fd;

	(void)state;
	pattern(data, sizeof(data), 3);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(fd);
	img = open_ok(true);
	assert_int_equal(img->size, 1000);
	memset(buf, 0xaa, sizeof(buf));
	iov[0] = (struct iovec){ buf, 600 };
	iov[1] = (struct iovec){ buf + 600, 424 };
	assert_int_equal(img->ops->preadv(img, iov, 2, 0), 0);
	assert_memory_equal(buf, data, 1000);
	assert_true(all_zero(buf + 1000, 24));
	memset(buf, 0xaa, sizeof(buf));
	iov[0] = (struct iovec){ buf, 2048 };
	assert_int_equal(img->ops->preadv(img, iov, 1, 4096), 0);
	assert_true(all_zero(buf, 2048));
	blk_close(img);
}

static void test_write_zeroes(void **state)
{
	enum { LEN = 256 << 10 };
	static uint8_t buf[LEN];
	struct blk_image *img;
	struct iovec iov = { buf, LEN };
	uint64_t full;

	(void)state;
	make_file(4 << 20);
	img = open_ok(false);
	pattern(buf, LEN, 5);
	assert_int_equal(img->ops->pwritev(img, &iov, 1, 0), 0);
	assert_int_equal(img->ops->pwritev(img, &iov, 1, LEN), 0);
	full = blocks();
	/* Without unmap: zeros, however the file system gets them. */
	assert_int_equal(img->ops->write_zeroes(img, 4096, LEN - 8192, false), 0);
	assert_int_equal(img->ops->preadv(img, &iov, 1, 0), 0);
	assert_false(all_zero(buf, 4096));
	assert_true(all_zero(buf + 4096, LEN - 8192));
	assert_false(all_zero(buf + LEN - 4096, 4096));
	/* With unmap: a hole. */
	assert_int_equal(img->ops->write_zeroes(img, LEN, LEN, true), 0);
	assert_true(blocks() <= full - LEN / 512);
	assert_int_equal(img->ops->preadv(img, &iov, 1, LEN), 0);
	assert_true(all_zero(buf, LEN));
	blk_close(img);
}

static void test_read_only(void **state)
{
	uint8_t data[4096], buf[4096];
	struct blk_image *img;
	struct iovec iov = { buf, sizeof(buf) };
	int fd;

	(void)state;
	pattern(data, sizeof(data), 9);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(fd);
	assert_int_equal(chmod(path, 0444), 0);
	img = open_ok(true);
	assert_true(img->read_only);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(img->ops->pwritev(img, &iov, 1, 0), -EROFS);
	assert_int_equal(img->ops->discard(img, 0, 4096), -EROFS);
	assert_int_equal(img->ops->write_zeroes(img, 0, 4096, true), -EROFS);
	assert_int_equal(img->ops->flush(img), 0);
	assert_int_equal(img->ops->preadv(img, &iov, 1, 0), 0);
	assert_memory_equal(buf, data, sizeof(data));
	blk_close(img);
	assert_int_equal(chmod(path, 0644), 0);
}

/* One writer or many readers per image, whoever opens it. */
static void test_locking(void **state)
{
	struct blk_image *a, *b = NULL, *c = NULL;
	const char *why = NULL;

	(void)state;
	make_file(1 << 20);
	a = open_ok(false);
	assert_int_equal(blk_open(path, false, &b, &why), -EBUSY);
	assert_string_equal(why, "in use (locked)");
	assert_int_equal(blk_open(path, true, &b, &why), -EBUSY);
	assert_string_equal(why, "in use by a writer (locked)");
	blk_close(a);
	a = open_ok(true);
	b = open_ok(true);
	assert_int_equal(blk_open(path, false, &c, &why), -EBUSY);
	assert_null(c);
	blk_close(a);
	blk_close(b);
	a = open_ok(false);
	blk_close(a);
}

struct count_work {
	struct work w;
	int *counter;
};

static void count_fn(struct work *w)
{
	__atomic_add_fetch(((struct count_work *)w)->counter, 1, __ATOMIC_RELAXED);
}

/* Every job runs once; destroy runs what is still queued. */
static void test_workpool(void **state)
{
	static struct count_work jobs[5000];
	struct workpool *p;
	int counter = 0;

	(void)state;
	assert_int_equal(workpool_create(0, "x", &p), -EINVAL);
	assert_int_equal(workpool_create(3, "kumo-test", &p), 0);
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		jobs[i] = (struct count_work){ .w.fn = count_fn, .counter = &counter };
		workpool_submit(p, &jobs[i].w);
	}
	workpool_destroy(p);
	assert_int_equal(counter, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_sparse_rw_discard),
		cmocka_unit_test(test_read_past_eof),
		cmocka_unit_test(test_write_zeroes),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_locking),
		cmocka_unit_test(test_workpool),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
