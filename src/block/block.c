/* Opening a disk image: the file, its kind and size, then its format from
 * a table (the first format whose probe claims the header; raw claims
 * anything, so it comes last). */
#include "kumo/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct blk_format_ops *const formats[] = {
	&blk_raw_ops,
};

#define PROBE_LEN 512

static const char *open_error(int err)
{
	switch (err) {
	case ENOENT: case ENOTDIR: return "no such file";
	case EACCES: case EPERM: return "permission denied";
	case EROFS: return "on a read-only file system (add ,ro)";
	case EISDIR: return "not a regular file or block device";
	case ETXTBSY: case EBUSY: return "in use";
	case ELOOP: return "too many symbolic links";
	case ENAMETOOLONG: return "path too long";
	default: return "cannot open";
	}
}

/* Two writers, or a writer and a reader, on one image corrupt it or read
 * garbage: an open file description lock (whole file, shared for read-only,
 * exclusive otherwise) keeps a second kumo — or a second --disk of the same
 * file — out. Released when the fd closes. */
static int lock_image(struct blk_image *img)
{
	struct flock fl = {
		.l_type = img->read_only ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};

	if (!fcntl(img->fd, F_OFD_SETLK, &fl))
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return -EBUSY;
	return 0; /* a file system without locks: go on unprotected */
}

/* Reads the first bytes for the probes (fewer for a small file). */
static ssize_t read_head(int fd, uint8_t *buf, size_t len)
{
	size_t at = 0;

	while (at < len) {
		ssize_t n = pread(fd, buf + at, len - at, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		at += (size_t)n;
	}
	return (ssize_t)at;
}

int blk_open(const char *path, bool read_only, struct blk_image **out, const char **why)
{
	uint8_t head[PROBE_LEN];
	struct blk_image *img;
	struct stat st;
	ssize_t got;
	int err;

	*out = NULL;
	img = calloc(1, sizeof(*img));
	if (!img || !(img->path = strdup(path))) {
		free(img);
		*why = "out of memory";
		return -ENOMEM;
	}
	img->read_only = read_only;
	img->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (img->fd < 0) {
		err = -errno;
		*why = open_error(errno);
		goto fail;
	}
	if (fstat(img->fd, &st)) {
		err = -errno;
		*why = "cannot stat";
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		img->size = (uint64_t)st.st_size;
		if ((err = lock_image(img))) {
			*why = img->read_only ? "in use by a writer (locked)" : "in use (locked)";
			goto fail;
		}
	} else if (S_ISBLK(st.st_mode)) {
		img->is_blockdev = true;
		if (ioctl(img->fd, BLKGETSIZE64, &img->size)) {
			err = -errno;
			*why = "cannot read the block device's size";
			goto fail;
		}
	} else {
		err = -EINVAL;
		*why = "not a regular file or block device";
		goto fail;
	}
	got = read_head(img->fd, head, sizeof(head));
	if (got < 0) {
		err = (int)got;
		*why = "cannot read";
		goto fail;
	}
	err = -EINVAL;
	*why = "unknown image format";
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (!formats[i]->probe(head, (size_t)got))
			continue;
		img->ops = formats[i];
		if ((err = img->ops->open(img))) {
			img->ops = NULL;
			*why = "cannot open the image format";
		}
		break;
	}
	if (err)
		goto fail;
	*out = img;
	return 0;
fail:
	blk_close(img);
	return err;
}

void blk_close(struct blk_image *img)
{
	if (!img)
		return;
	if (img->ops)
		img->ops->close(img);
	if (img->fd >= 0)
		close(img->fd);
	free((char *)img->path);
	free(img);
}
