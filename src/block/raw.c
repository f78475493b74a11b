/* The raw format: the guest's disk is the file, byte for byte. Holes
 * stay holes: discard and write-zeroes punch them (fallocate), so a sparse
 * image keeps only what the guest uses. */
#include "kumo/block.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "kumo/util.h"

static bool raw_probe(const uint8_t *head, size_t len)
{
	(void)head, (void)len;
	return true;
}

static int raw_open(struct blk_image *img, const char **why)
{
	(void)img, (void)why;
	return 0;
}

static void raw_close(struct blk_image *img)
{
	(void)img;
}

/* Drops the first done bytes of iov[0..*n), in place. */
static struct iovec *iov_advance(struct iovec *iov, int *n, size_t done)
{
	while (*n && done >= iov->iov_len) {
		done -= iov->iov_len;
		iov++;
		(*n)--;
	}
	if (*n) {
		iov->iov_base = (uint8_t *)iov->iov_base + done;
		iov->iov_len -= done;
	}
	return iov;
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* preadv or pwritev of the whole of iov, going on after short transfers.
 * A read that meets the end of the file fills the rest with zeros. */
static int rw_full(struct blk_image *img, const struct iovec *iov0, int n, uint64_t off, bool write)
{
	struct iovec copy[IOV_MAX], *iov = copy;
	size_t want;
	ssize_t got;

	if (n < 0 || n > IOV_MAX || off > (uint64_t)INT64_MAX)
		return -EINVAL;
	want = iov_total(iov0, n);
	if (want > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	/* The common case, one call, without copying the vector. */
	do
		got = write ? pwritev(img->fd, iov0, n, (off_t)off) : preadv(img->fd, iov0, n, (off_t)off);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if ((size_t)got == want)
		return 0;
	memcpy(copy, iov0, (size_t)n * sizeof(*iov0));
	for (;;) {
		iov = iov_advance(iov, &n, (size_t)got);
		off += (uint64_t)got;
		if (!n)
			return 0;
		if (got == 0) {
			if (write)
				return -EIO;
			for (int i = 0; i < n; i++) /* end of file: zeros */
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		do
			got = write ? pwritev(img->fd, iov, n, (off_t)off) : preadv(img->fd, iov, n, (off_t)off);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return -errno;
	}
}

static int raw_preadv(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	return rw_full(img, iov, n, off, false);
}

static int raw_pwritev(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	if (img->read_only)
		return -EROFS;
	return rw_full(img, iov, n, off, true);
}

static int raw_flush(struct blk_image *img)
{
	if (img->read_only || img->unsafe)
		return 0;
	return fdatasync(img->fd) ? -errno : 0;
}

static int do_fallocate(struct blk_image *img, int mode, uint64_t off, uint64_t len)
{
	int rc;

	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	if (!len)
		return 0;
	do
		rc = fallocate(img->fd, mode, (off_t)off, (off_t)len);
	while (rc && errno == EINTR);
	if (rc && (errno == ENOSYS || errno == EINVAL))
		return -EOPNOTSUPP; /* file systems say either for "can't" */
	return rc ? -errno : 0;
}

static int raw_discard(struct blk_image *img, uint64_t off, uint64_t len)
{
	if (img->read_only)
		return -EROFS;
	return do_fallocate(img, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

/* Zeros written the slow way, 64 KiB a call. */
static int write_zero_bytes(struct blk_image *img, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];
	struct iovec iov[16];
	int err;

	while (len) {
		int n = 0;
		uint64_t chunk = 0;
		while (n < (int)(sizeof(iov) / sizeof(iov[0])) && chunk < len) {
			size_t l = (size_t)(len - chunk < sizeof(zeros) ? len - chunk : sizeof(zeros));
			iov[n++] = (struct iovec){ (void *)zeros, l };
			chunk += l;
		}
		if ((err = rw_full(img, iov, n, off, true)))
			return err;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

static int raw_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap)
{
	int err = -EOPNOTSUPP;

	if (img->read_only)
		return -EROFS;
	if (may_unmap)
		err = do_fallocate(img, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	if (err == -EOPNOTSUPP)
		err = do_fallocate(img, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
	if (err == -EOPNOTSUPP)
		err = write_zero_bytes(img, off, len);
	return err;
}

/* Data and holes from the file system (SEEK_DATA / SEEK_HOLE); a file
 * system or device that cannot say is all data. A hole reads as zeros. */
static int raw_block_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
			    uint64_t *map)
{
	off_t data, hole;

	if (off >= img->size || !len)
		return -EINVAL;
	len = MIN(len, img->size - off);
	*map = off;
	if (off > (uint64_t)INT64_MAX)
		return -EINVAL;
	data = lseek(img->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		*pnum = len; /* a hole to the end of the file */
		return BLK_ALLOCATED | BLK_ZERO | BLK_OFFSET_VALID;
	}
	if (data < 0) {
		*pnum = len;
		return BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
	}
	if ((uint64_t)data > off) {
		*pnum = MIN(len, (uint64_t)data - off);
		return BLK_ALLOCATED | BLK_ZERO | BLK_OFFSET_VALID;
	}
	hole = lseek(img->fd, (off_t)off, SEEK_HOLE);
	*pnum = hole > (off_t)off ? MIN(len, (uint64_t)hole - off) : len;
	return BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
}

static int raw_info(struct blk_image *img, struct blk_info *out)
{
	(void)img;
	memset(out, 0, sizeof(*out));
	return 0;
}

static int raw_truncate(struct blk_image *img, uint64_t new_size)
{
	if (img->read_only)
		return -EROFS;
	if (img->is_blockdev)
		return new_size == img->size ? 0 : -ENOTSUP;
	if (new_size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (ftruncate(img->fd, (off_t)new_size))
		return -errno;
	img->size = new_size;
	return 0;
}

static int raw_create(const char *path, const struct blk_create_opts *o, const char **why)
{
	int fd, err = 0;

	if (o->backing_file) {
		*why = "raw images have no backing file";
		return -ENOTSUP;
	}
	if (o->size > (uint64_t)INT64_MAX) {
		*why = "size too large";
		return -EFBIG;
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*why = errno == EACCES ? "permission denied" : "cannot create the file";
		return -errno;
	}
	if (ftruncate(fd, (off_t)o->size)) {
		err = -errno;
		*why = "cannot set the file's size";
	}
	close(fd);
	return err;
}

const struct blk_format_ops blk_raw_ops = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.close = raw_close,
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.block_status = raw_block_status,
	.info = raw_info,
	.truncate = raw_truncate,
	.create = raw_create,
};
