/* Helpers shared by the image formats (see blk_util.h). */
#include "blk_util.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

int blk_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t at = 0;

	while (at < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + at, len - at, (off_t)(off + at));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;    /* the file ends early */
		at += (size_t)n;
	}
	return 0;
}

int blk_preadv_each(struct blk_image *img, const struct iovec *iov, int n, uint64_t off,
		    blk_read_fn read)
{
	int err;

	for (int i = 0; i < n; i++) {
		if (off > img->size || iov[i].iov_len > img->size - off)
			return -EINVAL;
		if ((err = read(img, iov[i].iov_base, iov[i].iov_len, off)))
			return err;
		off += iov[i].iov_len;
	}
	return 0;
}

int blk_iov_check(const struct blk_image *img, const struct iovec *iov, int n,
		  uint64_t off, size_t *total)
{
	size_t sum = 0;

	if (n < 0 || n > IOV_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		sum += iov[i].iov_len;
	if (off > img->size || sum > img->size - off)
		return -EINVAL;
	*total = sum;
	return 0;
}

int blk_ro_pwritev(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	(void)img, (void)iov, (void)n, (void)off;
	return -EROFS;
}

int blk_ro_flush(struct blk_image *img)
{
	(void)img;
	return 0;
}

int blk_ro_discard(struct blk_image *img, uint64_t off, uint64_t len)
{
	(void)img, (void)off, (void)len;
	return -EROFS;
}

int blk_ro_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap)
{
	(void)img, (void)off, (void)len, (void)may_unmap;
	return -EROFS;
}
