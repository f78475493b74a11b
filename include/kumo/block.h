/* Disk images behind a small vtable: raw now (raw.c), qcow2 next. A
 * virtio-blk device sees only struct blk_image; the format code sees only a
 * file. Every function may be called from several worker threads at once
 * (a format that keeps metadata locks it itself). Offsets and lengths come
 * from the guest: the device checks them against size before calling. */
#ifndef KUMO_BLOCK_H
#define KUMO_BLOCK_H

#include <sys/types.h>
#include <sys/uio.h>

#include "kumo/util.h"

struct blk_image;

struct blk_format_ops {
	const char *name;                   /* "raw" */
	/* Does this format claim the file? (header magic; raw claims all) */
	bool (*probe)(const uint8_t *head, size_t len);
	int (*open)(struct blk_image *img) WUR;    /* img->fd, img->read_only set */
	void (*close)(struct blk_image *img);
	/* Whole requests: short reads past EOF of a sparse file read zeros.
	 * 0 or -errno. */
	int (*preadv)(struct blk_image *img, const struct iovec *iov, int n, uint64_t off) WUR;
	int (*pwritev)(struct blk_image *img, const struct iovec *iov, int n, uint64_t off) WUR;
	int (*flush)(struct blk_image *img) WUR;   /* data durable (fdatasync) */
	/* Deallocate (discard) or zero [off, off+len); may_unmap lets
	 * write-zeroes punch a hole. -EOPNOTSUPP when the file system can't. */
	int (*discard)(struct blk_image *img, uint64_t off, uint64_t len) WUR;
	int (*write_zeroes)(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap) WUR;
};

struct blk_image {
	const struct blk_format_ops *ops;
	const char *path;
	int fd;
	bool read_only;
	bool is_blockdev;
	uint64_t size;        /* virtual disk size in bytes */
	void *priv;           /* the format's state */
};

/* Opens path (a regular file or block device) and picks its format. On
 * failure *why is a one-line reason ("no such file", "not a regular file
 * or block device", "permission denied"...). */
int blk_open(const char *path, bool read_only, struct blk_image **out, const char **why) WUR;
void blk_close(struct blk_image *img);

extern const struct blk_format_ops blk_raw_ops;

#endif
