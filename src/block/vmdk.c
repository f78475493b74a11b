/* VMDK hosted sparse extents (VMware's format 4), read-only, for `kumo img
 * convert`: monolithicSparse (one file: header, embedded descriptor, grain
 * directory and tables, grains) and streamOptimized (the same with every
 * grain deflated behind a marker, tables after the grains, the real header
 * in a footer at the end). Split, flat and delta (child) disks and the old
 * VMDK3 "COWD" files are refused with a reason.
 *
 * Everything is untrusted and little-endian: the header's sizes are bounded
 * before any allocation, the directory and each table must lie in the file,
 * every grain offset is checked against the file's length, a compressed
 * grain must inflate to exactly one grain. Grain tables are read on demand
 * into a small cache (a mutex: several workers read at once). */
#include "kumo/block.h"
#include "blk_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define SECTOR 512ULL
#define VMDK4_MAGIC 0x564d444bu            /* "KDMV" */
#define FLAG_ZERO_GRAIN (1u << 2)
#define FLAG_COMPRESSED (1u << 16)
#define FLAG_MARKERS (1u << 17)
#define COMPRESS_DEFLATE 1
#define GD_AT_END 0xffffffffffffffffULL
#define MARKER_EOS 0
#define MARKER_FOOTER 3
#define GTE_ZEROED 1
#define MAX_GRAIN (16ULL << 20)            /* bytes (VMware writes 64 KiB) */
#define MAX_GTES 512                       /* qemu's limit too */
#define MAX_GD_BYTES (64u << 20)
#define MAX_DESC (64u << 10)
#define GT_CACHE 16

struct gt_slot {
	uint32_t gd_index;                 /* UINT32_MAX: empty */
	uint64_t used;                     /* LRU stamp */
	uint32_t *gt;
};

struct vmdk {
	uint64_t grain;                    /* bytes */
	uint32_t gtes;                     /* entries per grain table */
	uint32_t nr_gd;
	uint32_t *gd;                      /* host order, sectors */
	bool compressed, markers, zero_grain;
	uint64_t file_size;
	char create_type[32];
	pthread_mutex_t lock;
	uint64_t clock;
	struct gt_slot cache[GT_CACHE];
};

static bool vmdk_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && get_le32(head) == VMDK4_MAGIC;
}

static bool in_file(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* createType and whether a parent is named, from the embedded descriptor. */
static int parse_descriptor(struct vmdk *s, const char *d, const char **why)
{
	const char *p = strstr(d, "createType=\"");
	const char *parent = strstr(d, "parentCID=");

	if (p) {
		size_t n;

		p += strlen("createType=\"");
		n = strcspn(p, "\"\n");
		if (n >= sizeof(s->create_type))
			n = sizeof(s->create_type) - 1;
		memcpy(s->create_type, p, n);
		s->create_type[n] = 0;
	}
	if (parent && strncmp(parent + strlen("parentCID="), "ffffffff", 8)) {
		*why = "VMDK delta (child) disks are not supported";
		return -ENOTSUP;
	}
	return 0;
}

static int read_descriptor(struct blk_image *img, struct vmdk *s, const uint8_t *h, const char **why)
{
	uint64_t off = get_le64(h + 28), len = get_le64(h + 36);
	char *d;
	int err;

	if (!off || !len)
		return 0;   /* streamOptimized footers may not repeat it */
	if (off > s->file_size / SECTOR || len > MAX_DESC / SECTOR ||
	    !in_file(off * SECTOR, len * SECTOR, s->file_size)) {
		*why = "VMDK descriptor outside the file";
		return -EINVAL;
	}
	d = calloc(1, len * SECTOR + 1);
	if (!d) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if ((err = blk_pread_full(img->fd, d, len * SECTOR, off * SECTOR)))
		*why = "cannot read the VMDK descriptor";
	else
		err = parse_descriptor(s, d, why);
	free(d);
	return err;
}

/* streamOptimized: the header at the start says "at the end"; the footer
 * marker, footer header and end-of-stream marker are the last sectors. */
static int read_footer(struct blk_image *img, struct vmdk *s, uint8_t *h, const char **why)
{
	uint8_t t[3 * SECTOR];
	int err;

	if (s->file_size < 4 * SECTOR) {
		*why = "VMDK stream too short for its footer";
		return -EINVAL;
	}
	if ((err = blk_pread_full(img->fd, t, sizeof(t), s->file_size - sizeof(t)))) {
		*why = "cannot read the VMDK footer";
		return err;
	}
	if (get_le32(t + 12) != MARKER_FOOTER || get_le32(t + SECTOR) != VMDK4_MAGIC ||
	    get_le32(t + 2 * SECTOR + 12) != MARKER_EOS || get_le32(t + 2 * SECTOR + 8)) {
		*why = "VMDK stream has no valid footer";
		return -EINVAL;
	}
	memcpy(h, t + SECTOR, SECTOR);
	if (get_le64(h + 56) == GD_AT_END) {
		*why = "VMDK footer has no grain directory";
		return -EINVAL;
	}
	return 0;
}

static int check_header(struct blk_image *img, struct vmdk *s, const uint8_t *h, const char **why)
{
	uint32_t version = get_le32(h + 4), flags = get_le32(h + 8);
	uint64_t capacity = get_le64(h + 12), grain_sectors = get_le64(h + 20);
	uint64_t gd_off = get_le64(h + 56), per_gt_bytes;

	if (version < 1 || version > 3) {
		*why = blk_whyf("VMDK version %u is not supported", version);
		return -ENOTSUP;
	}
	if (!grain_sectors || grain_sectors > MAX_GRAIN / SECTOR ||
	    (grain_sectors & (grain_sectors - 1))) {
		*why = "VMDK grain size is invalid";
		return -EINVAL;
	}
	s->grain = grain_sectors * SECTOR;
	s->gtes = get_le32(h + 44);
	if (!s->gtes || s->gtes > MAX_GTES) {
		*why = "VMDK grain table size is invalid";
		return -EINVAL;
	}
	if (capacity > (uint64_t)INT64_MAX / SECTOR) {
		*why = "VMDK capacity too large";
		return -EFBIG;
	}
	s->compressed = flags & FLAG_COMPRESSED;
	s->markers = flags & FLAG_MARKERS;
	s->zero_grain = flags & FLAG_ZERO_GRAIN;
	if (s->compressed && get_le16(h + 77) != COMPRESS_DEFLATE) {
		*why = "VMDK compression algorithm is not deflate";
		return -ENOTSUP;
	}
	per_gt_bytes = s->grain * s->gtes;
	img->size = capacity * SECTOR;
	if ((img->size + per_gt_bytes - 1) / per_gt_bytes > MAX_GD_BYTES / 4) {
		*why = "VMDK grain directory too large";
		return -EFBIG;
	}
	s->nr_gd = (uint32_t)((img->size + per_gt_bytes - 1) / per_gt_bytes);
	if (gd_off > s->file_size / SECTOR || !in_file(gd_off * SECTOR, (uint64_t)s->nr_gd * 4, s->file_size)) {
		*why = "VMDK grain directory outside the file";
		return -EINVAL;
	}
	return 0;
}

static void vmdk_close(struct blk_image *img);

static int vmdk_open(struct blk_image *img, const char **why)
{
	uint8_t h[SECTOR];
	struct vmdk *s;
	int err;

	if (!img->read_only) {
		*why = "VMDK images are read-only here (convert them to qcow2)";
		return -EROFS;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		*why = "out of memory";
		return -ENOMEM;
	}
	img->priv = s;
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < GT_CACHE; i++)
		s->cache[i].gd_index = UINT32_MAX;
	s->file_size = img->size;
	if (s->file_size < SECTOR || (err = blk_pread_full(img->fd, h, sizeof(h), 0))) {
		*why = "too small for a VMDK image";
		err = -EINVAL;
		goto fail;
	}
	if (get_le32(h) != VMDK4_MAGIC) {
		*why = "not a VMDK sparse extent (descriptor files, flat and COWD extents are not supported)";
		err = -ENOTSUP;
		goto fail;
	}
	if ((err = read_descriptor(img, s, h, why)))
		goto fail;
	if (get_le64(h + 56) == GD_AT_END && (err = read_footer(img, s, h, why)))
		goto fail;
	if ((err = check_header(img, s, h, why)))
		goto fail;
	s->gd = malloc((size_t)s->nr_gd * 4 + 4);
	if (!s->gd) {
		*why = "out of memory";
		err = -ENOMEM;
		goto fail;
	}
	if ((err = blk_pread_full(img->fd, s->gd, (size_t)s->nr_gd * 4, get_le64(h + 56) * SECTOR))) {
		*why = "cannot read the VMDK grain directory";
		goto fail;
	}
	for (uint32_t i = 0; i < s->nr_gd; i++)
		s->gd[i] = get_le32((const uint8_t *)&s->gd[i]);
	if (!s->create_type[0])
		strcpy(s->create_type, s->markers ? "streamOptimized" : "monolithicSparse");
	return 0;
fail:
	vmdk_close(img);
	return err;
}

static void vmdk_close(struct blk_image *img)
{
	struct vmdk *s = img->priv;

	if (!s)
		return;
	for (int i = 0; i < GT_CACHE; i++)
		free(s->cache[i].gt);
	pthread_mutex_destroy(&s->lock);
	free(s->gd);
	free(s);
	img->priv = NULL;
}

/* The grain table entry for the grain at off: 0 unallocated, else its
 * sector. */
static int grain_entry(struct blk_image *img, uint64_t off, uint32_t *out)
{
	struct vmdk *s = img->priv;
	uint64_t g = off / s->grain;
	uint32_t di = (uint32_t)(g / s->gtes), ti = (uint32_t)(g % s->gtes);
	struct gt_slot *slot = NULL, *victim = &s->cache[0];
	uint64_t gt_off;
	int err = 0;

	if (di >= s->nr_gd || !s->gd[di]) {
		*out = 0;
		return 0;
	}
	gt_off = (uint64_t)s->gd[di] * SECTOR;
	if (!in_file(gt_off, (uint64_t)s->gtes * 4, s->file_size))
		return -EIO;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < GT_CACHE; i++) {
		if (s->cache[i].gd_index == di)
			slot = &s->cache[i];
		if (s->cache[i].used < victim->used)
			victim = &s->cache[i];
	}
	if (!slot) {
		slot = victim;
		slot->gd_index = UINT32_MAX;
		if (!slot->gt && !(slot->gt = malloc((size_t)s->gtes * 4)))
			err = -ENOMEM;
		else if (!(err = blk_pread_full(img->fd, slot->gt, (size_t)s->gtes * 4, gt_off)))
			slot->gd_index = di;
	}
	if (!err) {
		slot->used = ++s->clock;
		*out = get_le32((const uint8_t *)&slot->gt[ti]);
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* One compressed grain (behind a marker when the image has them). */
static int read_compressed(struct blk_image *img, uint64_t at, uint8_t *grain)
{
	struct vmdk *s = img->priv;
	uint64_t max = 2 * s->grain + 64, clen, skip = 0;
	uint8_t *buf;
	z_stream z;
	int err = -EIO, zr;

	if (s->markers) {
		uint8_t m[12];

		if (!in_file(at, 12, s->file_size) || blk_pread_full(img->fd, m, 12, at))
			return -EIO;
		clen = get_le32(m + 8);
		skip = 12;
		if (!clen || clen > max)
			return -EIO;
	} else {
		clen = MIN(max, s->file_size > at ? s->file_size - at : 0);
	}
	if (!in_file(at + skip, clen, s->file_size))
		return -EIO;
	buf = malloc(clen ? clen : 1);
	if (!buf)
		return -ENOMEM;
	if (blk_pread_full(img->fd, buf, clen, at + skip))
		goto out;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		goto out;
	z.next_in = buf;
	z.avail_in = (uInt)clen;
	z.next_out = grain;
	z.avail_out = (uInt)s->grain;
	zr = inflate(&z, Z_FINISH);
	if (zr == Z_STREAM_END && z.total_out == s->grain)
		err = 0;
	inflateEnd(&z);
out:
	free(buf);
	return err;
}

static int vmdk_read(struct blk_image *img, uint8_t *buf, uint64_t len, uint64_t off)
{
	struct vmdk *s = img->priv;
	uint8_t *grain = NULL;
	int err = 0;

	while (len && !err) {
		uint64_t in = off % s->grain, run = MIN(len, s->grain - in), at;
		uint32_t e;

		if ((err = grain_entry(img, off, &e)))
			break;
		at = (uint64_t)e * SECTOR;
		if (!e || (e == GTE_ZEROED && s->zero_grain)) {
			memset(buf, 0, run);
		} else if (s->compressed) {
			if (!grain && !(grain = malloc(s->grain)))
				err = -ENOMEM;
			else if (!(err = read_compressed(img, at, grain)))
				memcpy(buf, grain + in, run);
		} else if (!in_file(at + in, run, s->file_size)) {
			err = -EIO;
		} else {
			err = blk_pread_full(img->fd, buf, run, at + in);
		}
		buf += run;
		off += run;
		len -= run;
	}
	free(grain);
	return err;
}

static int vmdk_preadv(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	return blk_preadv_each(img, iov, n, off, vmdk_read);
}

/* One grain's status: flags and its file offset (UINT64_MAX: none). */
static int grain_status(struct blk_image *img, uint64_t off, uint64_t *map)
{
	struct vmdk *s = img->priv;
	uint32_t e;
	int err;

	*map = UINT64_MAX;
	if ((err = grain_entry(img, off, &e)))
		return err;
	if (!e)
		return 0;
	if (e == GTE_ZEROED && s->zero_grain)
		return BLK_ALLOCATED | BLK_ZERO;
	if (s->compressed)
		return BLK_ALLOCATED | BLK_DATA | BLK_COMPRESSED;
	*map = (uint64_t)e * SECTOR + off % s->grain;
	return BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
}

/* How far the status found at off holds for sure: the rest of the grain
 * table's span when the directory has no table there (all unallocated),
 * else the rest of the grain. */
static uint64_t status_step(struct vmdk *s, uint64_t off)
{
	uint64_t span = s->grain * s->gtes, di = off / span;

	if (di >= s->nr_gd || !s->gd[di])
		return span - off % span;
	return s->grain - off % s->grain;
}

static int vmdk_block_status(struct blk_image *img, uint64_t off, uint64_t len,
			     uint64_t *pnum, uint64_t *map)
{
	struct vmdk *s = img->priv;
	uint64_t total, m;
	int st;

	if (off >= img->size || !len)
		return -EINVAL;
	len = MIN(len, img->size - off);
	if ((st = grain_status(img, off, map)) < 0)
		return st;
	total = MIN(len, status_step(s, off));
	while (total < len) {
		int st2 = grain_status(img, off + total, &m);

		if (st2 != st || ((st & BLK_OFFSET_VALID) && m != *map + total))
			break;
		total += MIN(len - total, status_step(s, off + total));
	}
	*pnum = total;
	return st;
}

static int vmdk_info(struct blk_image *img, struct blk_info *out)
{
	struct vmdk *s = img->priv;

	memset(out, 0, sizeof(*out));
	out->cluster_size = s->grain;
	snprintf(out->subformat, sizeof(out->subformat), "%s", s->create_type);
	return 0;
}

const struct blk_format_ops blk_vmdk_ops = {
	.name = "vmdk",
	.probe = vmdk_probe,
	.open = vmdk_open,
	.close = vmdk_close,
	.preadv = vmdk_preadv,
	.pwritev = blk_ro_pwritev,
	.flush = blk_ro_flush,
	.discard = blk_ro_discard,
	.write_zeroes = blk_ro_write_zeroes,
	.block_status = vmdk_block_status,
	.info = vmdk_info,
};
