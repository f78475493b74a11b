/* Opening a disk image: the file, its kind and size, then its format from
 * a table (the first format whose probe claims the header; raw claims
 * anything, so it comes last). */
#include "kumo/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Probed in order: raw claims anything, so it comes last. (Named
 * strongly: a weak reference would not pull a format out of libkumo.a.) */
static const struct blk_format_ops *const formats[] = {
	&blk_qcow2_ops,
	&blk_vpc_ops,
	&blk_vmdk_ops,
	&blk_raw_ops,
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))
#define PROBE_LEN 512
#define MAX_BACKING_DEPTH 16

const struct blk_format_ops *blk_format(const char *name)
{
	for (size_t i = 0; i < NFORMATS; i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	return NULL;
}

const char *blk_whyf(const char *fmt, ...)
{
	static __thread char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

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

/* Image locks, as QEMU's file-posix takes them, so kumo and QEMU see each
 * other: open file description locks on single bytes, all shared (F_RDLCK).
 * Byte 100+i says "I use permission i", byte 200+i "I do not let others
 * have permission i" (i: 0 consistent read, 1 write, 3 resize). A writer
 * holds 100, 101, 103, 201, 203; a reader 100, 201, 203; a reader that
 * shares everything (force_share, qemu-img -U) 100 alone. A conflict is
 * another description holding 200+i for a permission i we take, or 100+i
 * for one we refuse to share: so a second writer, or a writer and a
 * reader, are refused, and readers share. Released when the fd closes. */
#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200
#define PERM_READ (1u << 0)
#define PERM_WRITE (1u << 1)
#define PERM_RESIZE (1u << 3)
#define PERM_ALL (PERM_READ | PERM_WRITE | PERM_RESIZE)

static int lock_byte(int fd, off_t at, int cmd, struct flock *fl)
{
	*fl = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };
	if (cmd == F_OFD_GETLK)
		fl->l_type = F_WRLCK;
	return fcntl(fd, cmd, fl);
}

static int lock_image(struct blk_image *img, bool force_share)
{
	unsigned perm = img->read_only ? PERM_READ : PERM_ALL;
	unsigned unshared = img->read_only && force_share ? 0 : PERM_WRITE | PERM_RESIZE;
	struct flock fl;

	for (unsigned i = 0; i < 8; i++) {
		if ((perm & (1u << i)) && lock_byte(img->fd, LOCK_PERM_BASE + i, F_OFD_SETLK, &fl))
			goto failed;
		if ((unshared & (1u << i)) && lock_byte(img->fd, LOCK_SHARED_BASE + i, F_OFD_SETLK, &fl))
			goto failed;
	}
	for (unsigned i = 0; i < 8; i++) {
		if ((perm & (1u << i)) && !lock_byte(img->fd, LOCK_SHARED_BASE + i, F_OFD_GETLK, &fl) &&
		    fl.l_type != F_UNLCK)
			return -EBUSY;
		if ((unshared & (1u << i)) && !lock_byte(img->fd, LOCK_PERM_BASE + i, F_OFD_GETLK, &fl) &&
		    fl.l_type != F_UNLCK)
			return -EBUSY;
	}
	return 0;
failed:
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

static int open_one(const char *path, const struct blk_open_opts *o, int depth,
		    struct blk_image **out, const char **why)
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
	img->read_only = o->read_only;
	img->unsafe = o->unsafe && !o->read_only;
	img->fd = open(path, (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
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
		if ((err = lock_image(img, o->force_share))) {
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
	if (o->format) {
		img->ops = blk_format(o->format);
		if (!img->ops) {
			err = -EINVAL;
			*why = blk_whyf("unknown format '%s'", o->format);
			goto fail;
		}
	} else {
		for (size_t i = 0; i < NFORMATS; i++) {
			if (formats[i]->probe(head, (size_t)got)) {
				img->ops = formats[i];
				break;
			}
		}
	}
	*why = "cannot open the image format";
	if ((err = img->ops->open(img, why))) {
		img->ops = NULL;
		goto fail;
	}
	if (img->backing_file && !o->no_backing) {
		const struct blk_open_opts bo = { .read_only = true, .format = img->backing_format,
						   .force_share = o->force_share };
		const char *bwhy = "cannot open";

		if (depth >= MAX_BACKING_DEPTH) {
			err = -ELOOP;
			*why = "backing chain deeper than 16 (a loop?)";
			goto fail;
		}
		if ((err = open_one(img->backing_file, &bo, depth + 1, &img->backing, &bwhy))) {
			*why = blk_whyf("backing file %s: %s", img->backing_file, bwhy);
			goto fail;
		}
	}
	*out = img;
	return 0;
fail:
	blk_close(img);
	return err;
}

int blk_open2(const char *path, const struct blk_open_opts *o, struct blk_image **out,
	      const char **why)
{
	return open_one(path, o, 0, out, why);
}

int blk_open(const char *path, bool read_only, struct blk_image **out, const char **why)
{
	const struct blk_open_opts o = { .read_only = read_only };

	return open_one(path, &o, 0, out, why);
}

void blk_close(struct blk_image *img)
{
	if (!img)
		return;
	blk_close(img->backing);
	if (img->ops)
		img->ops->close(img);
	free(img->backing_file);
	free(img->backing_format);
	if (img->fd >= 0)
		close(img->fd);
	free((char *)img->path);
	free(img);
}
