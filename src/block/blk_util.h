/* Helpers shared by the image formats of src/block: the request checks
 * and the read-only ops every format that cannot write fills in alike. */
#ifndef KUMO_BLOCK_BLK_UTIL_H
#define KUMO_BLOCK_BLK_UTIL_H

#include "kumo/block.h"

/* pread of exactly len bytes at off (EINTR retried): -errno, or -EIO
 * where the file ends first. */
int blk_pread_full(int fd, void *buf, size_t len, uint64_t off) WUR;

/* Reads [off, off + len) of img into buf (the range is checked). */
typedef int (*blk_read_fn)(struct blk_image *img, uint8_t *buf, uint64_t len, uint64_t off);

/* preadv as one read a vector element, each checked against img->size
 * (-EINVAL past the end): for formats that read a flat range at a time. */
int blk_preadv_each(struct blk_image *img, const struct iovec *iov, int n, uint64_t off,
		    blk_read_fn read) WUR;

/* Checks a vectored request: 0 <= n <= IOV_MAX and [off, off + total)
 * inside img->size (-EINVAL otherwise); *total is the bytes it spans. */
int blk_iov_check(const struct blk_image *img, const struct iovec *iov, int n,
		  uint64_t off, size_t *total) WUR;

/* The ops of a read-only format: writes are -EROFS, flush has nothing
 * to do. */
int blk_ro_pwritev(struct blk_image *img, const struct iovec *iov, int n, uint64_t off);
int blk_ro_flush(struct blk_image *img);
int blk_ro_discard(struct blk_image *img, uint64_t off, uint64_t len);
int blk_ro_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap);

#endif
