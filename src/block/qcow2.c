/* qcow2: the header, its extensions, open and close, create, info, the
 * backing file name, and resize. Every field read from the file is checked
 * against the format's limits before it is used: a damaged image is an
 * error with a reason, never a crash. */
#include "qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int qcow2_pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t at = 0;

	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	while (at < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + at, len - at, (off_t)(off + at));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n) {
			memset((uint8_t *)buf + at, 0, len - at); /* past the end: zeros */
			break;
		}
		at += (size_t)n;
	}
	return 0;
}

int qcow2_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t at = 0;

	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	while (at < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + at, len - at, (off_t)(off + at));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EIO;
		at += (size_t)n;
	}
	return 0;
}

int qcow2_sync(struct qcow2 *q)
{
	int rc;

	if (q->unsafe)
		return 0;
	do
		rc = fdatasync(q->fd);
	while (rc && errno == EINTR);
	return rc ? -errno : 0;
}

int qcow2_write_l1_entries(struct qcow2 *q)
{
	/* Whole clusters: the tail of the last one is zeros. */
	size_t bytes = (size_t)ALIGN_UP((uint64_t)q->l1_size * 8, q->cs);
	uint8_t *buf;
	int err;

	if (!bytes)
		return 0;
	buf = calloc(1, bytes);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->l1_size; i++)
		qcow2_put64(buf + 8 * i, q->l1[i]);
	err = qcow2_pwrite(q->fd, buf, bytes, q->l1_off);
	free(buf);
	return err;
}

static bool qcow2_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && qcow2_be32(head) == QCOW2_MAGIC;
}

/* Is [off, off+len) a valid place for metadata: cluster aligned, past the
 * header cluster, below the format's limit? */
static bool meta_ok(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	return off && !(off & (q->cs - 1)) && off >= q->cs && len <= QCOW2_MAX_OFFSET &&
	       off <= QCOW2_MAX_OFFSET - len;
}

static const char *const incompat_names[] = {
	"dirty bit", "corrupt bit", "external data file", "compression type", "extended L2 entries",
};

/* "unsupported qcow2 feature(s): NAME, bit 7" from the feature name table
 * when the image has one. */
static const char *unknown_features(const uint8_t *tbl, uint32_t tlen, uint64_t bits)
{
	char buf[400];
	size_t at = 0;

	buf[0] = 0;
	for (unsigned b = 0; b < 64; b++) {
		char name[47] = "";
		if (!(bits & (1ULL << b)))
			continue;
		for (uint32_t e = 0; tbl && e + 48 <= tlen; e += 48)
			if (tbl[e] == 0 && tbl[e + 1] == b) {
				memcpy(name, tbl + e + 2, 46);
				name[46] = 0;
				for (char *c = name; *c; c++)
					if (*c < 32 || *c > 126)
						*c = '?';
			}
		if (!name[0] && b < ARRAY_SIZE(incompat_names))
			snprintf(name, sizeof(name), "%s", incompat_names[b]);
		if (!name[0])
			snprintf(name, sizeof(name), "bit %u", b);
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s", at ? ", " : "", name);
		if (at >= sizeof(buf))
			break;
	}
	return blk_whyf("unsupported qcow2 incompatible feature(s): %s", buf);
}

/* The backing file path relative to the image's directory. */
static char *resolve_backing(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	size_t dl = slash ? (size_t)(slash - image) + 1 : 0;
	char *p;

	if (name[0] == '/' || !dl)
		return strdup(name);
	p = malloc(dl + strlen(name) + 1);
	if (!p)
		return NULL;
	memcpy(p, image, dl);
	strcpy(p + dl, name);
	return p;
}

static void qcow2_free(struct qcow2 *q)
{
	if (!q)
		return;
	qcow2_cache_free(&q->l2c);
	qcow2_cache_free(&q->rbc);
	free(q->l1);
	free(q->rt);
	free(q->pending_free);
	pthread_mutex_destroy(&q->lock);
	pthread_rwlock_destroy(&q->io);
	free(q);
}

/* The header extensions: backing format, feature names, refusals. */
static int parse_extensions(struct qcow2 *q, const uint8_t *h, uint64_t limit,
			    const uint8_t **ftbl, uint32_t *flen, const char **why)
{
	uint64_t at = q->header_length;

	while (at + 8 <= limit) {
		uint32_t type = qcow2_be32(h + at), len = qcow2_be32(h + at + 4);
		at += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > limit - at) {
			*why = "header extension runs past the header cluster";
			return -EINVAL;
		}
		switch (type) {
		case QCOW2_EXT_BACKING_FMT:
			if (len >= sizeof(q->backing_fmt)) {
				*why = "backing format name too long";
				return -EINVAL;
			}
			memcpy(q->backing_fmt, h + at, len);
			q->backing_fmt[len] = 0;
			break;
		case QCOW2_EXT_FEATURES:
			*ftbl = h + at;
			*flen = len;
			break;
		default:
			break; /* unknown extensions are ignored (and kept) */
		}
		at += ALIGN_UP((uint64_t)len, 8);
	}
	return 0;
}

static int read_tables(struct qcow2 *q, const char **why)
{
	int err;

	if (q->l1_size) {
		uint8_t *buf = malloc((size_t)q->l1_size * 8);
		q->l1 = calloc(q->l1_size, sizeof(*q->l1));
		if (!buf || !q->l1) {
			free(buf);
			*why = "out of memory";
			return -ENOMEM;
		}
		if ((err = qcow2_pread(q->fd, buf, (size_t)q->l1_size * 8, q->l1_off))) {
			free(buf);
			*why = "cannot read the L1 table";
			return err;
		}
		for (uint32_t i = 0; i < q->l1_size; i++)
			q->l1[i] = qcow2_be64(buf + 8 * i);
		free(buf);
	}
	{
		size_t bytes = (size_t)q->rt_clusters << q->cb;
		uint8_t *buf = malloc(bytes);
		q->rt_size = bytes / 8;
		q->rt = calloc(q->rt_size, sizeof(*q->rt));
		if (!buf || !q->rt) {
			free(buf);
			*why = "out of memory";
			return -ENOMEM;
		}
		if ((err = qcow2_pread(q->fd, buf, bytes, q->rt_off))) {
			free(buf);
			*why = "cannot read the refcount table";
			return err;
		}
		for (uint64_t i = 0; i < q->rt_size; i++)
			q->rt[i] = qcow2_be64(buf + 8 * i);
		free(buf);
	}
	return 0;
}

static int parse_header(struct qcow2 *q, struct blk_image *img, const char **why)
{
	uint8_t h0[QCOW2_V3_HDR + 8], *h = NULL;
	const uint8_t *ftbl = NULL;
	uint32_t flen = 0, bf_size, crypt;
	uint64_t bf_off, size, l1_need, l2_cover;
	int err;

	if ((err = qcow2_pread(q->fd, h0, sizeof(h0), 0))) {
		*why = "cannot read the header";
		return err;
	}
	if (qcow2_be32(h0) != QCOW2_MAGIC) {
		*why = "not a qcow2 image (bad magic)";
		return -EINVAL;
	}
	q->version = (int)qcow2_be32(h0 + 4);
	if (q->version != 2 && q->version != 3) {
		*why = blk_whyf("unsupported qcow2 version %d", q->version);
		return -ENOTSUP;
	}
	q->cb = qcow2_be32(h0 + 20);
	if (q->cb < QCOW2_MIN_CB || q->cb > QCOW2_MAX_CB) {
		*why = blk_whyf("cluster_bits %u out of range (9..21)", q->cb);
		return -EINVAL;
	}
	q->cs = 1ULL << q->cb;
	q->l2_entries = q->cs / 8;
	h = calloc(1, q->cs);
	if (!h) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if ((err = qcow2_pread(q->fd, h, q->cs, 0))) {
		*why = "cannot read the header";
		goto out;
	}
	err = -EINVAL;
	bf_off = qcow2_be64(h + 8);
	bf_size = qcow2_be32(h + 16);
	size = qcow2_be64(h + 24);
	crypt = qcow2_be32(h + 32);
	q->l1_size = qcow2_be32(h + 36);
	q->l1_off = qcow2_be64(h + 40);
	q->rt_off = qcow2_be64(h + 48);
	q->rt_clusters = qcow2_be32(h + 56);
	q->nb_snapshots = qcow2_be32(h + 60);
	q->snapshots_off = qcow2_be64(h + 64);
	if (q->version == 3) {
		q->incompat = qcow2_be64(h + 72);
		q->compat = qcow2_be64(h + 80);
		q->autoclear = qcow2_be64(h + 88);
		q->refcount_order = qcow2_be32(h + 96);
		q->header_length = qcow2_be32(h + 100);
		if (q->header_length < QCOW2_V3_HDR || q->header_length > q->cs ||
		    q->header_length % 8) {
			*why = blk_whyf("bad header length %u", q->header_length);
			goto out;
		}
	} else {
		q->refcount_order = 4;
		q->header_length = QCOW2_V2_HDR;
	}
	if (q->refcount_order > 6) {
		*why = blk_whyf("refcount_order %u out of range (0..6)", q->refcount_order);
		goto out;
	}
	q->refcount_bits = 1u << q->refcount_order;
	q->rb_entries = q->cs * 8 / q->refcount_bits;
	if ((err = parse_extensions(q, h, q->cs, &ftbl, &flen, why)))
		goto out;
	err = -EINVAL;
	if (q->incompat & ~QCOW2_INC_KNOWN) {
		*why = unknown_features(ftbl, flen, q->incompat & ~QCOW2_INC_KNOWN);
		err = -ENOTSUP;
		goto out;
	}
	if (crypt) {
		*why = "encrypted qcow2 images are not supported";
		err = -ENOTSUP;
		goto out;
	}
	q->compression = QCOW2_ZLIB;
	if (q->header_length > 104) {
		uint8_t ct = h[104];
		if (ct > QCOW2_ZSTD) {
			*why = blk_whyf("unknown compression type %u", ct);
			err = -ENOTSUP;
			goto out;
		}
		if (ct && !(q->incompat & QCOW2_INC_COMPRESSION)) {
			*why = "compression type set without its incompatible feature bit";
			goto out;
		}
		q->compression = ct;
	}
	if ((q->incompat & QCOW2_INC_COMPRESSION) && q->header_length <= 104) {
		*why = "compression type bit set but the header has no compression type";
		goto out;
	}
	if (size > QCOW2_MAX_SIZE) {
		*why = "virtual size too large";
		goto out;
	}
	l2_cover = q->cs * q->l2_entries;
	l1_need = (size + l2_cover - 1) / l2_cover;
	if (q->l1_size < l1_need || (uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		*why = blk_whyf("bad L1 table size %u", q->l1_size);
		goto out;
	}
	if (q->l1_size && !meta_ok(q, q->l1_off, (uint64_t)q->l1_size * 8)) {
		*why = blk_whyf("bad L1 table offset 0x%" PRIx64, q->l1_off);
		goto out;
	}
	if (!q->rt_clusters || ((uint64_t)q->rt_clusters << q->cb) > QCOW2_MAX_RT_BYTES ||
	    !meta_ok(q, q->rt_off, (uint64_t)q->rt_clusters << q->cb)) {
		*why = blk_whyf("bad refcount table (offset 0x%" PRIx64 ", %u clusters)",
				q->rt_off, q->rt_clusters);
		goto out;
	}
	if (q->nb_snapshots && !meta_ok(q, q->snapshots_off, 1)) {
		*why = "bad snapshot table offset";
		goto out;
	}
	if (bf_off) {
		if (bf_size == 0 || bf_size >= sizeof(q->backing_raw) || bf_off < q->header_length ||
		    bf_off > q->cs || bf_size > q->cs - bf_off) {
			*why = "bad backing file name offset or size";
			goto out;
		}
		memcpy(q->backing_raw, h + bf_off, bf_size);
		q->backing_raw[bf_size] = 0;
		if (strlen(q->backing_raw) != bf_size) {
			*why = "backing file name contains a NUL byte";
			goto out;
		}
	}
	img->size = size;
	q->csize_shift = 62 - (q->cb - 8);
	q->csize_mask = (1ULL << (q->cb - 8)) - 1;
	q->coff_mask = (1ULL << q->csize_shift) - 1;
	err = 0;
out:
	free(h);
	return err;
}

/* Refusals for writing: what kumo cannot keep consistent. */
static const char *write_refusal(const struct qcow2 *q)
{
	if (q->incompat & QCOW2_INC_DIRTY)
		return "image is dirty (lazy refcounts): repair it (qemu-img check -r all) or open it read-only";
	if (q->incompat & QCOW2_INC_CORRUPT)
		return "image is marked corrupt: repair it or open it read-only";
	if (q->nb_snapshots)
		return "images with internal snapshots are read-only in kumo";
	return NULL;
}

static int qcow2_open(struct blk_image *img, const char **why)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	unsigned nl2, nrb;
	int err;

	if (!q) {
		*why = "out of memory";
		return -ENOMEM;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_rwlock_init(&q->io, NULL);
	q->fd = img->fd;
	q->unsafe = img->unsafe;
	if ((err = parse_header(q, img, why)))
		goto fail;
	if (q->incompat & QCOW2_INC_DATA_FILE) {
		*why = "qcow2 external data files are not supported";
		err = -ENOTSUP;
		goto fail;
	}
	if (q->incompat & QCOW2_INC_EXTL2) {
		*why = "qcow2 extended L2 entries (subclusters) are not supported";
		err = -ENOTSUP;
		goto fail;
	}
	if (!img->read_only) {
		const char *r = write_refusal(q);
		if (r) {
			*why = r;
			err = -EROFS;
			goto fail;
		}
	}
	if ((err = read_tables(q, why)))
		goto fail;
	nl2 = (unsigned)MIN(256, MAX(16, (4ULL << 20) >> q->cb));
	nrb = (unsigned)MIN(64, MAX(8, (1ULL << 20) >> q->cb));
	if ((err = qcow2_cache_init(&q->l2c, nl2, q->cs)) ||
	    (err = qcow2_cache_init(&q->rbc, nrb, q->cs))) {
		*why = "out of memory";
		goto fail;
	}
	q->free_hint = 1;
	if (q->backing_raw[0]) {
		if (!strncmp(q->backing_raw, "json:", 5)) {
			*why = "json: backing file names are not supported";
			err = -ENOTSUP;
			goto fail;
		}
		img->backing_file = resolve_backing(img->path, q->backing_raw);
		if (q->backing_fmt[0])
			img->backing_format = strdup(q->backing_fmt);
		if (!img->backing_file || (q->backing_fmt[0] && !img->backing_format)) {
			*why = "out of memory";
			err = -ENOMEM;
			goto fail;
		}
	}
	q->writable = !img->read_only;
	if (q->writable && q->version == 3 && q->autoclear) {
		/* kumo keeps no bitmaps: they are stale from the first write. */
		uint8_t z[8] = { 0 };
		if ((err = qcow2_pwrite(q->fd, z, 8, 88)) || (err = qcow2_sync(q))) {
			*why = "cannot write the header";
			goto fail;
		}
		q->autoclear = 0;
	}
	img->priv = q;
	return 0;
fail:
	free(img->backing_file);
	free(img->backing_format);
	img->backing_file = img->backing_format = NULL;
	qcow2_free(q);
	return err;
}

static void qcow2_close(struct blk_image *img)
{
	struct qcow2 *q = img->priv;

	if (!q)
		return;
	if (q->writable) {
		pthread_mutex_lock(&q->lock);
		if (qcow2_flush_meta(q))
			q->writable = false; /* nothing more to do: the next check sees leaks */
		pthread_mutex_unlock(&q->lock);
	}
	qcow2_free(q);
	img->priv = NULL;
}

static int qcow2_flush(struct blk_image *img)
{
	struct qcow2 *q = img->priv;
	int err;

	if (!q->writable)
		return 0;
	pthread_mutex_lock(&q->lock);
	err = qcow2_flush_meta(q);
	pthread_mutex_unlock(&q->lock);
	return err;
}

static int qcow2_info(struct blk_image *img, struct blk_info *out)
{
	struct qcow2 *q = img->priv;

	memset(out, 0, sizeof(*out));
	out->cluster_size = q->cs;
	snprintf(out->backing_file, sizeof(out->backing_file), "%s", q->backing_raw);
	snprintf(out->backing_format, sizeof(out->backing_format), "%s", q->backing_fmt);
	out->dirty = q->incompat & QCOW2_INC_DIRTY;
	out->corrupt = q->incompat & QCOW2_INC_CORRUPT;
	out->version = q->version;
	out->refcount_bits = (int)q->refcount_bits;
	out->lazy_refcounts = q->compat & QCOW2_COMPAT_LAZY;
	out->extended_l2 = q->incompat & QCOW2_INC_EXTL2;
	snprintf(out->compression_type, sizeof(out->compression_type), "%s",
		 q->compression == QCOW2_ZSTD ? "zstd" : "zlib");
	return 0;
}

/* Header extensions written at at (up to limit): backing format, feature
 * names (when they fit), then the end marker. Returns the end or 0. */
static const struct {
	uint8_t type, bit;
	const char *name;
} feature_names[] = {
	{ 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
	{ 0, 3, "compression type" }, { 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" }, { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
};

static uint64_t put_ext(uint8_t *h, uint64_t at, uint64_t limit, uint32_t type, const void *d,
			uint32_t len)
{
	uint64_t need = 8 + ALIGN_UP((uint64_t)len, 8);

	if (at + need > limit)
		return 0;
	qcow2_put32(h + at, type);
	qcow2_put32(h + at + 4, len);
	memset(h + at + 8, 0, need - 8);
	memcpy(h + at + 8, d, len);
	return at + need;
}

/* Rewrites the extension area from q->header_length: the extensions kept
 * (all but the backing format and feature names) from old, then ours, then
 * the backing file name. */
static int build_ext(uint8_t *h, uint64_t cs, uint64_t hl, const uint8_t *old, const char *file,
		     const char *fmt, bool features)
{
	uint64_t at = hl, o = hl;
	size_t fl = file ? strlen(file) : 0;

	while (old && o + 8 <= cs) {
		uint32_t type = qcow2_be32(old + o), len = qcow2_be32(old + o + 4);
		if (type == QCOW2_EXT_END || len > cs - o - 8)
			break;
		if (type != QCOW2_EXT_BACKING_FMT && (type != QCOW2_EXT_FEATURES || !features))
			if (!(at = put_ext(h, at, cs, type, old + o + 8, len)))
				return -ENOSPC;
		o += 8 + ALIGN_UP((uint64_t)len, 8);
	}
	if (fmt && *fmt && !(at = put_ext(h, at, cs, QCOW2_EXT_BACKING_FMT, fmt, (uint32_t)strlen(fmt))))
		return -ENOSPC;
	if (features) {
		uint8_t t[ARRAY_SIZE(feature_names) * 48] = { 0 };
		uint64_t nat;
		for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
			t[i * 48] = feature_names[i].type;
			t[i * 48 + 1] = feature_names[i].bit;
			memcpy(t + i * 48 + 2, feature_names[i].name, strlen(feature_names[i].name));
		}
		/* Only when the end marker and the name still fit after it. */
		nat = put_ext(h, at, cs, QCOW2_EXT_FEATURES, t, sizeof(t));
		if (nat && nat + 8 + fl <= cs)
			at = nat;
	}
	if (at + 8 + fl > cs)
		return -ENOSPC;
	memset(h + at, 0, 8);
	at += 8;
	qcow2_put64(h + 8, fl ? at : 0);
	qcow2_put32(h + 16, (uint32_t)fl);
	if (fl)
		memcpy(h + at, file, fl);
	return 0;
}

static int qcow2_set_backing(struct blk_image *img, const char *file, const char *format)
{
	struct qcow2 *q = img->priv;
	uint8_t *old = NULL, *h = NULL;
	int err;

	if (!q->writable)
		return -EROFS;
	if (file && strlen(file) >= sizeof(q->backing_raw))
		return -ENAMETOOLONG;
	if (format && strlen(format) >= sizeof(q->backing_fmt))
		return -EINVAL;
	old = malloc(q->cs);
	h = calloc(1, q->cs);
	if (!old || !h) {
		err = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&q->lock);
	if (!(err = qcow2_pread(q->fd, old, q->cs, 0))) {
		memcpy(h, old, q->header_length);
		err = build_ext(h, q->cs, q->header_length, old, file, format, false);
	}
	if (!err && !(err = qcow2_pwrite(q->fd, h, q->cs, 0)) && !(err = qcow2_sync(q))) {
		snprintf(q->backing_raw, sizeof(q->backing_raw), "%s", file ? file : "");
		snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%s", format ? format : "");
	}
	pthread_mutex_unlock(&q->lock);
out:
	free(old);
	free(h);
	return err;
}

static int qcow2_create(const char *path, const struct blk_create_opts *o, const char **why)
{
	uint64_t cs = o->cluster_size ? o->cluster_size : 64 * KiB, size = o->size;
	int rbits = o->refcount_bits ? o->refcount_bits : 16, order = 0, ct = QCOW2_ZLIB;
	unsigned cb = 0;
	uint64_t l1_entries, l1c, rtc = 1, nrb = 1, total = 0, rb_entries;
	uint8_t *buf = NULL;
	int fd, err = -EINVAL;

	while ((1ULL << cb) < cs)
		cb++;
	if ((1ULL << cb) != cs || cb < QCOW2_MIN_CB || cb > QCOW2_MAX_CB) {
		*why = "cluster size must be a power of two from 512 to 2M";
		return -EINVAL;
	}
	while ((1 << order) < rbits)
		order++;
	if ((1 << order) != rbits || order > 6) {
		*why = "refcount_bits must be a power of two from 1 to 64";
		return -EINVAL;
	}
	if (o->compression_type && !strcmp(o->compression_type, "zstd"))
		ct = QCOW2_ZSTD;
	else if (o->compression_type && strcmp(o->compression_type, "zlib")) {
		*why = blk_whyf("unknown compression type '%s'", o->compression_type);
		return -EINVAL;
	}
	if (o->extended_l2) {
		*why = "extended L2 entries are not supported";
		return -ENOTSUP;
	}
	if (size > QCOW2_MAX_SIZE) {
		*why = "size too large";
		return -EINVAL;
	}
	size = ALIGN_UP(size, 512); /* whole sectors, as qemu-img makes them */
	l1_entries = (size + (cs * (cs / 8)) - 1) / (cs * (cs / 8));
	if (l1_entries * 8 > QCOW2_MAX_L1_BYTES) {
		*why = "size too large for this cluster size";
		return -EINVAL;
	}
	l1c = (l1_entries * 8 + cs - 1) / cs;
	rb_entries = cs * 8 / (uint64_t)rbits;
	for (int i = 0; i < 16; i++) {
		total = 1 + rtc + nrb + l1c;
		uint64_t nnrb = (total + rb_entries - 1) / rb_entries;
		uint64_t nrtc = (nnrb * 8 + cs - 1) / cs;
		if (nnrb == nrb && nrtc == rtc)
			break;
		nrb = nnrb;
		rtc = nrtc;
	}
	total = 1 + rtc + nrb + l1c;
	if (rtc * cs > QCOW2_MAX_RT_BYTES) {
		*why = "size too large for this cluster size and refcount width";
		return -EINVAL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*why = errno == EACCES ? "permission denied" : "cannot create the file";
		return -errno;
	}
	buf = calloc(1, cs * MAX(rtc, 1));
	if (!buf) {
		err = -ENOMEM;
		*why = "out of memory";
		goto out;
	}
	/* Header. */
	qcow2_put32(buf, QCOW2_MAGIC);
	qcow2_put32(buf + 4, 3);
	qcow2_put32(buf + 20, cb);
	qcow2_put64(buf + 24, size);
	qcow2_put32(buf + 36, (uint32_t)l1_entries);
	qcow2_put64(buf + 40, l1_entries ? (1 + rtc + nrb) * cs : 0);
	qcow2_put64(buf + 48, cs);
	qcow2_put32(buf + 56, (uint32_t)rtc);
	qcow2_put64(buf + 72, ct ? QCOW2_INC_COMPRESSION : 0);
	qcow2_put64(buf + 80, o->lazy_refcounts ? QCOW2_COMPAT_LAZY : 0);
	qcow2_put32(buf + 96, (uint32_t)order);
	qcow2_put32(buf + 100, 112);
	buf[104] = (uint8_t)ct;
	if (build_ext(buf, cs, 112, NULL, o->backing_file, o->backing_format, true)) {
		*why = "backing file name too long for the cluster size";
		err = -ENAMETOOLONG;
		goto out;
	}
	if ((err = qcow2_pwrite(fd, buf, cs, 0)))
		goto io;
	/* Refcount table. */
	memset(buf, 0, cs * rtc);
	for (uint64_t i = 0; i < nrb; i++)
		qcow2_put64(buf + 8 * i, (1 + rtc + i) * cs);
	if ((err = qcow2_pwrite(fd, buf, cs * rtc, cs)))
		goto io;
	/* Refcount blocks: every metadata cluster counted once. */
	{
		struct qcow2 tmp = { .refcount_order = (unsigned)order };
		for (uint64_t b = 0; b < nrb; b++) {
			memset(buf, 0, cs);
			for (uint64_t c = b * rb_entries; c < total && c < (b + 1) * rb_entries; c++)
				qcow2_rb_set(&tmp, buf, c - b * rb_entries, 1);
			if ((err = qcow2_pwrite(fd, buf, cs, (1 + rtc + b) * cs)))
				goto io;
		}
	}
	if (ftruncate(fd, (off_t)(total * cs)) || fdatasync(fd)) {
		err = -errno;
		goto io;
	}
	err = 0;
	goto out;
io:
	*why = "cannot write the image";
out:
	free(buf);
	close(fd);
	if (err)
		unlink(path);
	return err;
}

/* Resize (grow only): a bigger L1 table first if needed, then the size. */
static int qcow2_truncate(struct blk_image *img, uint64_t new_size)
{
	struct qcow2 *q = img->priv;
	uint64_t cover = q->cs * q->l2_entries, need, noff = 0, nclusters, oclusters;
	uint8_t b8[12];
	int err;

	if (!q->writable)
		return -EROFS;
	if (new_size < img->size)
		return -ENOTSUP;
	if (new_size > QCOW2_MAX_SIZE)
		return -EFBIG;
	need = (new_size + cover - 1) / cover;
	if (need * 8 > QCOW2_MAX_L1_BYTES)
		return -EFBIG;
	pthread_mutex_lock(&q->lock);
	if ((err = qcow2_flush_meta(q)))
		goto out;
	if (need > q->l1_size) {
		uint64_t *nl1 = calloc(need, sizeof(*nl1));
		uint32_t old_size = q->l1_size;
		uint64_t old_off = q->l1_off;
		if (!nl1) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(nl1, q->l1, (size_t)q->l1_size * 8);
		nclusters = (need * 8 + q->cs - 1) >> q->cb;
		oclusters = ((uint64_t)old_size * 8 + q->cs - 1) >> q->cb;
		if ((err = qcow2_alloc_clusters(q, nclusters, &noff)) || (err = qcow2_flush_refcounts(q))) {
			free(nl1);
			goto out;
		}
		free(q->l1);
		q->l1 = nl1;
		q->l1_size = (uint32_t)need;
		q->l1_off = noff;
		/* The new table, durable, then the header points at it. */
		if ((err = qcow2_write_l1_entries(q)))
			goto out;
		if ((err = qcow2_sync(q)))
			goto out;
		qcow2_put32(b8, q->l1_size);
		qcow2_put64(b8 + 4, q->l1_off);
		if ((err = qcow2_pwrite(q->fd, b8, 12, 36)) || (err = qcow2_sync(q)))
			goto out;
		for (uint64_t i = 0; old_off && i < oclusters && !err; i++)
			err = qcow2_update_refcount(q, (old_off >> q->cb) + i, -1);
		if (err)
			goto out;
	}
	qcow2_put64(b8, new_size);
	if ((err = qcow2_pwrite(q->fd, b8, 8, 24)) || (err = qcow2_sync(q)))
		goto out;
	img->size = new_size;
out:
	pthread_mutex_unlock(&q->lock);
	return err;
}

const struct blk_format_ops blk_qcow2_ops = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.preadv = qcow2_preadv,
	.pwritev = qcow2_pwritev,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.block_status = qcow2_block_status,
	.info = qcow2_info,
	.check = qcow2_check,
	.truncate = qcow2_truncate,
	.write_compressed = qcow2_write_compressed,
	.set_backing = qcow2_set_backing,
	.make_empty = qcow2_make_empty,
	.create = qcow2_create,
};
