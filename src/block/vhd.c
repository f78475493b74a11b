/* VHD (Virtual PC / Hyper-V, qemu's "vpc"), read-only, for `kumo img
 * convert`: fixed disks (the data, then a 512-byte footer) and dynamic ones
 * (footer copy, dynamic header, block allocation table, then blocks of a
 * sector bitmap and data, footer at the end). Differencing disks are
 * refused. Every field is big-endian and untrusted: the footer's checksum,
 * the table's place in the file and each block's place are checked before
 * use.
 *
 * The virtual size follows qemu's rules, so that a conversion is
 * byte-identical to qemu-img's: images made by Virtual PC or by qemu
 * ("vpc ", "qemu") are as large as their CHS geometry says, others (Hyper-V,
 * disk2vhd, XenServer, qemu's force_size "qem2") as large as the footer's
 * current size; a geometry at its maximum means the current size too.
 * The sector bitmaps are not consulted on read, as qemu does not: a block
 * in the table reads as stored (writers zero-fill new blocks).
 * Like qemu, the probe claims a file only when the footer copy is at its
 * start (a dynamic disk): a fixed disk is opened with -f vpc. */
#include "kumo/block.h"
#include "blk_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VHD_SECTOR 512
#define FOOTER_LEN 512
#define DYN_HEADER_LEN 1024
#define VHD_TYPE_FIXED 2
#define VHD_TYPE_DYNAMIC 3
#define VHD_TYPE_DIFF 4
#define VHD_MAX_GEOMETRY (65535ULL * 16 * 255)
#define VHD_MAX_SECTORS 0xff000000ULL          /* 2040 GiB, as qemu */
#define BAT_UNUSED 0xffffffffu
#define MAX_BLOCK_SIZE (256u << 20)
#define MAX_BAT_BYTES (64u << 20)

struct vhd {
	bool dynamic;
	uint32_t block_size;      /* dynamic: bytes of data a BAT entry covers */
	uint32_t bitmap_size;     /* the sector bitmap before each block, bytes */
	uint32_t nr_entries;
	uint32_t *bat;            /* host order */
	char subformat[16];
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* The ones' complement of the byte sum, the checksum field counted as 0. */
static uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t field)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < field || i >= field + 4)
			sum += p[i];
	return ~sum;
}

static bool vhd_probe(const uint8_t *head, size_t len)
{
	return len >= 8 && !memcmp(head, "conectix", 8);
}

static bool footer_ok(const uint8_t *f)
{
	return !memcmp(f, "conectix", 8) && be32(f + 64) == vhd_checksum(f, FOOTER_LEN, 64);
}

/* qemu's choice between the CHS geometry and the footer's current size. */
static uint64_t vhd_sectors(const uint8_t *f)
{
	uint64_t chs = (uint64_t)be16(f + 56) * f[58] * f[59];
	bool use_chs = !memcmp(f + 28, "vpc ", 4) || !memcmp(f + 28, "qemu", 4);

	if (!use_chs || chs == VHD_MAX_GEOMETRY)
		return be64(f + 48) / VHD_SECTOR;
	return chs;
}

static int vhd_open_dynamic(struct blk_image *img, struct vhd *s, const uint8_t *f,
			    uint64_t file_size, const char **why)
{
	uint8_t h[DYN_HEADER_LEN];
	uint64_t hoff = be64(f + 16), toff;
	size_t bat_bytes;
	int err;

	if (hoff > file_size || file_size - hoff < DYN_HEADER_LEN) {
		*why = "VHD dynamic header outside the file";
		return -EINVAL;
	}
	if ((err = blk_pread_full(img->fd, h, sizeof(h), hoff))) {
		*why = "cannot read the VHD dynamic header";
		return err;
	}
	if (memcmp(h, "cxsparse", 8)) {
		*why = "VHD dynamic header has a bad magic";
		return -EINVAL;
	}
	if (be32(h + 36) != vhd_checksum(h, DYN_HEADER_LEN, 36)) {
		*why = "VHD dynamic header checksum mismatch";
		return -EINVAL;
	}
	s->block_size = be32(h + 32);
	if (s->block_size < VHD_SECTOR || s->block_size > MAX_BLOCK_SIZE ||
	    (s->block_size & (s->block_size - 1))) {
		*why = blk_whyf("VHD block size %u is invalid", s->block_size);
		return -EINVAL;
	}
	s->bitmap_size = (uint32_t)ALIGN_UP(s->block_size / VHD_SECTOR / 8, VHD_SECTOR);
	s->nr_entries = be32(h + 28);
	if ((uint64_t)s->nr_entries * s->block_size < img->size) {
		*why = "VHD block allocation table too small for the disk";
		return -EINVAL;
	}
	bat_bytes = (size_t)s->nr_entries * 4;
	toff = be64(h + 16);
	if (bat_bytes > MAX_BAT_BYTES || toff > file_size || file_size - toff < bat_bytes) {
		*why = "VHD block allocation table outside the file";
		return -EINVAL;
	}
	s->bat = malloc(bat_bytes ? bat_bytes : 1);
	if (!s->bat) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if ((err = blk_pread_full(img->fd, s->bat, bat_bytes, toff))) {
		*why = "cannot read the VHD block allocation table";
		return err;
	}
	for (uint32_t i = 0; i < s->nr_entries; i++)
		s->bat[i] = be32((const uint8_t *)&s->bat[i]);
	return 0;
}

static int vhd_open(struct blk_image *img, const char **why)
{
	uint64_t file_size = img->size, sectors;
	uint8_t f[FOOTER_LEN];
	struct vhd *s;
	uint32_t type;
	int err;

	if (file_size < FOOTER_LEN) {
		*why = "too small for a VHD image";
		return -EINVAL;
	}
	/* The copy at the start (dynamic), else the footer at the end. */
	if ((err = blk_pread_full(img->fd, f, sizeof(f), 0))) {
		*why = "cannot read the VHD footer";
		return err;
	}
	if (memcmp(f, "conectix", 8)) {
		if ((err = blk_pread_full(img->fd, f, sizeof(f), file_size - FOOTER_LEN))) {
			*why = "cannot read the VHD footer";
			return err;
		}
		if (memcmp(f, "conectix", 8)) {
			*why = "no VHD footer (not a VHD image)";
			return -EINVAL;
		}
	}
	if (!footer_ok(f)) {
		*why = "VHD footer checksum mismatch";
		return -EINVAL;
	}
	type = be32(f + 60);
	if (type == VHD_TYPE_DIFF) {
		*why = "differencing VHD images are not supported";
		return -ENOTSUP;
	}
	if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC) {
		*why = blk_whyf("unknown VHD disk type %u", type);
		return -EINVAL;
	}
	sectors = vhd_sectors(f);
	if (sectors > VHD_MAX_SECTORS) {
		*why = "VHD image larger than 2040 GiB";
		return -EFBIG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		*why = "out of memory";
		return -ENOMEM;
	}
	img->priv = s;
	img->size = sectors * VHD_SECTOR;
	s->dynamic = type == VHD_TYPE_DYNAMIC;
	strcpy(s->subformat, s->dynamic ? "dynamic" : "fixed");
	if (!img->read_only) {
		*why = "VHD images are read-only here (convert them to qcow2)";
		err = -EROFS;
		goto fail;
	}
	if (!s->dynamic) {
		if (img->size > file_size - FOOTER_LEN) {
			*why = "fixed VHD image shorter than its disk";
			err = -EINVAL;
			goto fail;
		}
		return 0;
	}
	if ((err = vhd_open_dynamic(img, s, f, file_size, why)))
		goto fail;
	return 0;
fail:
	free(s->bat);
	free(s);
	img->priv = NULL;
	return err;
}

static void vhd_close(struct blk_image *img)
{
	struct vhd *s = img->priv;

	if (s)
		free(s->bat);
	free(s);
	img->priv = NULL;
}

/* Where [off, off + *len) is: a file offset, or UINT64_MAX for a run that
 * reads as zeros; *len is cut to what has one answer. -EIO when the table
 * or the bitmap points outside the file. */
static int vhd_locate(struct blk_image *img, uint64_t off, uint64_t *len, uint64_t *where,
		      uint64_t file_size)
{
	struct vhd *s = img->priv;
	uint64_t in_block, block, base;
	uint32_t e;

	if (!s->dynamic) {
		*where = off;
		return 0;
	}
	block = off / s->block_size;
	in_block = off % s->block_size;
	*len = MIN(*len, s->block_size - in_block);
	e = block < s->nr_entries ? s->bat[block] : BAT_UNUSED;
	if (e == BAT_UNUSED) {
		*where = UINT64_MAX;
		return 0;
	}
	base = (uint64_t)e * VHD_SECTOR;
	if (base + s->bitmap_size + in_block + *len > file_size)
		return -EIO;
	*where = base + s->bitmap_size + in_block;
	return 0;
}

static uint64_t file_size_of(struct blk_image *img)
{
	off_t end = lseek(img->fd, 0, SEEK_END);

	return end < 0 ? 0 : (uint64_t)end;
}

static int vhd_read(struct blk_image *img, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t fsize = file_size_of(img);
	int err;

	while (len) {
		uint64_t run = len, where;

		if ((err = vhd_locate(img, off, &run, &where, fsize)))
			return err;
		if (where == UINT64_MAX)
			memset(buf, 0, run);
		else if ((err = blk_pread_full(img->fd, buf, run, where)))
			return err;
		buf += run;
		off += run;
		len -= run;
	}
	return 0;
}

static int vhd_preadv(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	return blk_preadv_each(img, iov, n, off, vhd_read);
}

/* A fixed disk is its file: data, and holes of the file that read as
 * zeros (data and zero at once, as qemu reports them). */
static int fixed_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
			uint64_t *map)
{
	const int data = BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
	off_t d = lseek(img->fd, (off_t)off, SEEK_DATA), h;

	*map = off;
	*pnum = len;
	if (d < 0)
		return errno == ENXIO ? data | BLK_ZERO : data;
	if ((uint64_t)d > off) {
		*pnum = MIN(len, (uint64_t)d - off);
		return data | BLK_ZERO;
	}
	h = lseek(img->fd, (off_t)off, SEEK_HOLE);
	if (h > d)
		*pnum = MIN(len, (uint64_t)h - off);
	return data;
}

static int vhd_block_status(struct blk_image *img, uint64_t off, uint64_t len,
			    uint64_t *pnum, uint64_t *map)
{
	struct vhd *s = img->priv;
	uint64_t fsize = file_size_of(img), where, run, total = 0;
	int err;

	if (off >= img->size || !len)
		return -EINVAL;
	len = MIN(len, img->size - off);
	if (!s->dynamic)
		return fixed_status(img, off, len, pnum, map);
	run = len;
	if ((err = vhd_locate(img, off, &run, &where, fsize)))
		return err;
	*map = where;
	/* Merge following blocks of the same kind (contiguous for data). */
	for (total = run; s->dynamic && total < len;) {
		uint64_t r = len - total, w;

		if ((err = vhd_locate(img, off + total, &r, &w, fsize)))
			break;
		if ((where == UINT64_MAX) != (w == UINT64_MAX) ||
		    (where != UINT64_MAX && w != where + total))
			break;
		total += r;
	}
	*pnum = total;
	/* A block not in the table reads as zeros, and no backing file can
	 * say otherwise (differencing disks are refused): zeros decided here,
	 * as qemu reports them. */
	if (where == UINT64_MAX)
		return BLK_ALLOCATED | BLK_ZERO;
	return BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
}

static int vhd_info(struct blk_image *img, struct blk_info *out)
{
	struct vhd *s = img->priv;

	memset(out, 0, sizeof(*out));
	out->cluster_size = s->dynamic ? s->block_size : 0;
	snprintf(out->subformat, sizeof(out->subformat), "%s", s->subformat);
	return 0;
}

const struct blk_format_ops blk_vpc_ops = {
	.name = "vpc",
	.probe = vhd_probe,
	.open = vhd_open,
	.close = vhd_close,
	.preadv = vhd_preadv,
	.pwritev = blk_ro_pwritev,
	.flush = blk_ro_flush,
	.discard = blk_ro_discard,
	.write_zeroes = blk_ro_write_zeroes,
	.block_status = vhd_block_status,
	.info = vhd_info,
};
