/* Disk images behind a small vtable: raw (raw.c), qcow2 (qcow2*.c), and
 * read-only foreign formats for `kumo img convert` (vhd.c, vmdk.c). A
 * virtio-blk device sees only struct blk_image; the format code sees only a
 * file (and its backing image, opened for it by blk_open2). Every data
 * function may be called from several worker threads at once (a format that
 * keeps metadata locks it itself). Offsets and lengths come from the guest:
 * the device checks them against size before calling. Everything a format
 * reads from its file is untrusted. */
#ifndef KUMO_BLOCK_H
#define KUMO_BLOCK_H

#include <sys/types.h>
#include <sys/uio.h>

#include "kumo/util.h"

struct blk_image;

/* What block_status says of a run of the virtual disk, in one image alone
 * (not looking into its backing file). 0 = unallocated here: the content
 * comes from the backing image, or is zeros without one. */
enum {
	BLK_ALLOCATED = 1 << 0,     /* this image decides the content */
	BLK_DATA = 1 << 1,          /* ... as data stored in the file */
	BLK_ZERO = 1 << 2,          /* ... as zeros (zero cluster, hole) */
	BLK_OFFSET_VALID = 1 << 3,  /* *map is the data's offset in the file */
	BLK_COMPRESSED = 1 << 4,    /* ... stored compressed (no *map) */
};

/* `kumo img info`: what a format knows of itself. Strings are "" and
 * numbers 0 where they do not apply. */
struct blk_info {
	uint64_t cluster_size;
	char backing_file[1024];    /* as stored in the image */
	char backing_format[32];
	bool dirty;                 /* qcow2: the dirty bit (lazy refcounts) */
	bool corrupt;               /* qcow2: the corrupt bit */
	int version;                /* qcow2: 2 or 3 */
	int refcount_bits;
	bool lazy_refcounts;
	bool extended_l2;
	char compression_type[8];   /* "zlib", "zstd" */
	char subformat[32];         /* vhd "fixed"/"dynamic", vmdk "monolithicSparse"... */
};

/* `kumo img check`: counts as qemu-img reports them. */
struct blk_check {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t allocated_clusters, total_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	uint64_t image_end_offset;
};

/* `kumo img create` (and qcow2 overlays made by snapshots later). */
struct blk_create_opts {
	uint64_t size;                 /* virtual size in bytes */
	uint32_t cluster_size;         /* 0: the format's default (qcow2 64 KiB) */
	const char *backing_file;      /* stored as given (relative to the image) */
	const char *backing_format;    /* NULL: not stored */
	int refcount_bits;             /* 0: 16 */
	const char *compression_type;  /* NULL: "zlib" */
	bool lazy_refcounts;
	bool extended_l2;              /* may be refused (-ENOTSUP) */
};

struct blk_format_ops {
	const char *name;                   /* "raw", "qcow2", "vpc", "vmdk" */
	/* Does this format claim the file? (header magic; raw claims all) */
	bool (*probe)(const uint8_t *head, size_t len);
	/* img->fd, img->path, img->read_only, img->size (the file's) are set;
	 * the format sets img->size to the virtual size, and img->backing_file
	 * / img->backing_format when the image names one (blk_open2 opens it
	 * after open returns). On failure *why is a one-line reason. */
	int (*open)(struct blk_image *img, const char **why) WUR;
	void (*close)(struct blk_image *img);
	/* Whole requests: short reads past EOF of a sparse file read zeros.
	 * 0 or -errno. */
	int (*preadv)(struct blk_image *img, const struct iovec *iov, int n, uint64_t off) WUR;
	int (*pwritev)(struct blk_image *img, const struct iovec *iov, int n, uint64_t off) WUR;
	int (*flush)(struct blk_image *img) WUR;   /* every completed write durable */
	/* Deallocate (discard) or zero [off, off+len); may_unmap lets
	 * write-zeroes punch a hole. -EOPNOTSUPP when the file system can't. */
	int (*discard)(struct blk_image *img, uint64_t off, uint64_t len) WUR;
	int (*write_zeroes)(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap) WUR;

	/* The rest is for `kumo img`; NULL where a format lacks it (the tool
	 * says "not supported by FORMAT"). */
	/* The run starting at off (at most len bytes) that has one status:
	 * returns BLK_* flags (or -errno), *pnum its length (> 0), *map the
	 * file offset when BLK_OFFSET_VALID. */
	int (*block_status)(struct blk_image *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, uint64_t *map) WUR;
	int (*info)(struct blk_image *img, struct blk_info *out) WUR;
	/* Consistency check; repair_leaks frees leaked clusters. 0 when the
	 * check ran (whatever it found), -errno when it could not. */
	int (*check)(struct blk_image *img, bool repair_leaks, struct blk_check *out) WUR;
	int (*truncate)(struct blk_image *img, uint64_t new_size) WUR;   /* resize */
	/* One cluster, compressed: off cluster-aligned, len == cluster size
	 * (or the tail of the disk). */
	int (*write_compressed)(struct blk_image *img, const void *buf, uint64_t off, size_t len) WUR;
	/* Rewrites the backing file name/format in the header (rebase -u). */
	int (*set_backing)(struct blk_image *img, const char *file, const char *format) WUR;
	/* Drops every allocation of this image (commit's emptying). */
	int (*make_empty)(struct blk_image *img) WUR;
	/* Creates a new image at path (truncating it). */
	int (*create)(const char *path, const struct blk_create_opts *o, const char **why) WUR;
};

struct blk_image {
	const struct blk_format_ops *ops;
	const char *path;
	int fd;
	bool read_only;
	bool is_blockdev;
	uint64_t size;                /* virtual disk size in bytes */
	void *priv;                   /* the format's state */
	char *backing_file;           /* resolved path, malloc'd by the format; NULL: none */
	char *backing_format;         /* NULL: probe */
	struct blk_image *backing;    /* opened by blk_open2 (read-only, shared lock) */
	bool unsafe;                  /* flush does nothing: no durability, no ordering */
};

struct blk_open_opts {
	bool read_only;
	const char *format;           /* NULL: probe; "raw", "qcow2", ... */
	bool no_backing;              /* leave the backing chain closed (info, rebase -u) */
	bool force_share;             /* read-only: share with a writer (qemu-img -U) */
	/* Writes are never made durable, not even metadata before the data
	 * that needs it (qemu-img convert's default cache=unsafe, for an output
	 * that is worthless if the tool dies anyway); flush is a no-op. */
	bool unsafe;
};

/* Opens path (a regular file or block device), picks its format and opens
 * its backing chain (at most 16 deep, each read-only with a shared lock).
 * On failure *why is a one-line reason ("no such file", "not a regular
 * file or block device", "permission denied", "backing file X: ..."). */
int blk_open2(const char *path, const struct blk_open_opts *o, struct blk_image **out,
	      const char **why) WUR;
int blk_open(const char *path, bool read_only, struct blk_image **out, const char **why) WUR;
void blk_close(struct blk_image *img);

/* The format named name ("raw", "qcow2", "vpc", "vmdk"), or NULL. */
const struct blk_format_ops *blk_format(const char *name);

/* A reason built with printf, in a per-thread buffer that lives until the
 * next call on the thread: for *why. */
const char *blk_whyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern const struct blk_format_ops blk_raw_ops;
extern const struct blk_format_ops blk_qcow2_ops;
extern const struct blk_format_ops blk_vpc_ops;
extern const struct blk_format_ops blk_vmdk_ops;

#endif
