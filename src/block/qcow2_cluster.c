/* qcow2 guest data: the L1/L2 mapping, reads (data, zero, compressed,
 * unallocated from the backing image), writes (in place, or allocating
 * with copy-on-write of partial clusters), zeroing and discard.
 *
 * Locks: q->lock covers the metadata. A read or an overwrite of an
 * allocated cluster looks up its mapping under the lock and moves the data
 * outside it (holding q->io shared); an allocating write runs whole under
 * the lock (its data lands before its L2 entry is set). */
#include "qcow2.h"
#include "blk_util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

enum ctype { C_UNALLOC, C_ZERO, C_NORMAL, C_COMPRESSED };

struct mapping {
	enum ctype type;
	uint64_t host;     /* normal: cluster offset; compressed: byte offset */
	uint64_t csize;    /* compressed: bytes to read */
	bool copied;       /* normal: refcount 1, may be written in place */
	uint64_t raw;
};

/* Decodes and checks an L2 entry. */
static int classify(const struct qcow2 *q, uint64_t e, struct mapping *m)
{
	memset(m, 0, sizeof(*m));
	m->raw = e;
	if (e & QCOW2_COMPRESSED) {
		uint64_t ns = ((e >> q->csize_shift) & q->csize_mask) + 1;
		if (e & QCOW2_COPIED)
			return -EIO;
		m->type = C_COMPRESSED;
		m->host = e & q->coff_mask;
		m->csize = ns * 512 - (m->host & 511);
		if (m->host < q->cs || m->host >= QCOW2_MAX_OFFSET)
			return -EIO;
		return 0;
	}
	if (e & QCOW2_L2_RESERVED)
		return -EIO;
	if ((e & QCOW2_ZERO) && q->version < 3)
		return -EIO;
	m->host = e & QCOW2_OFF_MASK;
	m->copied = e & QCOW2_COPIED;
	if (m->host && (m->host & (q->cs - 1) || m->host < q->cs))
		return -EIO;
	if (e & QCOW2_ZERO)
		m->type = C_ZERO;
	else
		m->type = m->host ? C_NORMAL : C_UNALLOC;
	return 0;
}

static uint64_t l1_index(const struct qcow2 *q, uint64_t off)
{
	return off >> (q->cb + q->cb - 3);
}

static uint64_t l2_index(const struct qcow2 *q, uint64_t off)
{
	return (off >> q->cb) & (q->l2_entries - 1);
}

/* The L2 table offset for guest offset off: 0 when unallocated. */
static int l2_offset(const struct qcow2 *q, uint64_t off, uint64_t *l2off)
{
	uint64_t i = l1_index(q, off), e;

	if (i >= q->l1_size)
		return -EIO;
	e = q->l1[i];
	if (e & QCOW2_L1_RESERVED)
		return -EIO;
	*l2off = e & QCOW2_OFF_MASK;
	if (*l2off && (*l2off & (q->cs - 1) || *l2off < q->cs))
		return -EIO;
	return 0;
}

int qcow2_get_l2e(struct qcow2 *q, uint64_t off, uint64_t *l2e)
{
	uint64_t l2off;
	uint8_t *t;
	int err;

	*l2e = 0;
	if ((err = l2_offset(q, off, &l2off)) || !l2off)
		return err;
	if ((err = qcow2_l2_get(q, l2off, false, &t)))
		return err;
	*l2e = qcow2_be64(t + 8 * l2_index(q, off));
	return 0;
}

static int get_mapping(struct qcow2 *q, uint64_t off, struct mapping *m)
{
	uint64_t e;
	int err = qcow2_get_l2e(q, off, &e);

	return err ? err : classify(q, e, m);
}

/* --- iovec helpers --- */

/* The part [skip, skip+len) of iov as a new vector in out (room for n). */
static int iov_slice(const struct iovec *iov, int n, size_t skip, size_t len, struct iovec *out)
{
	int k = 0;

	for (int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[k].iov_len = MIN(l - skip, len);
		len -= out[k].iov_len;
		skip = 0;
		k++;
	}
	return k;
}

/* Copies between a flat buffer and iov[skip, skip+len): to_iov or from;
 * buf NULL (to_iov) zeroes that part of the vector. */
static void iov_copy(const struct iovec *iov, int n, size_t skip, void *buf, size_t len,
		     bool to_iov)
{
	uint8_t *b = buf;

	for (int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len, c;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		c = MIN(l - skip, len);
		if (to_iov && !b)
			memset((uint8_t *)iov[i].iov_base + skip, 0, c);
		else if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + skip, b, c);
		else
			memcpy(b, (uint8_t *)iov[i].iov_base + skip, c);
		if (b)
			b += c;
		len -= c;
		skip = 0;
	}
}

static void iov_zero(const struct iovec *iov, int n, size_t skip, size_t len)
{
	iov_copy(iov, n, skip, NULL, len, true);
}

static int rw_vec(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	size_t want = 0;

	for (int i = 0; i < n; i++)
		want += iov[i].iov_len;
	while (want) {
		ssize_t got = write ? pwritev(fd, iov, n, (off_t)off) : preadv(fd, iov, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0) {
			if (write)
				return -EIO;
			for (int i = 0; i < n; i++)
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		want -= (size_t)got;
		while (n && (size_t)got >= iov->iov_len) {
			got -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + got;
			iov->iov_len -= (size_t)got;
		}
	}
	return 0;
}

/* --- compression --- */

int qcow2_decompress(struct qcow2 *q, const uint8_t *in, size_t inlen, uint8_t *out)
{
	if (q->compression == QCOW2_ZSTD) {
		ZSTD_DCtx *d = ZSTD_createDCtx();
		ZSTD_inBuffer ib = { in, inlen, 0 };
		ZSTD_outBuffer ob = { out, q->cs, 0 };
		int err = 0;
		if (!d)
			return -ENOMEM;
		while (ob.pos < ob.size) {
			size_t r = ZSTD_decompressStream(d, &ob, &ib);
			if (ZSTD_isError(r)) {
				err = -EIO;
				break;
			}
			if (!r || ib.pos == ib.size) {
				if (ob.pos < ob.size)
					err = -EIO;
				break;
			}
		}
		ZSTD_freeDCtx(d);
		return err;
	} else {
		z_stream s = { 0 };
		int r;
		if (inflateInit2(&s, -15) != Z_OK)
			return -ENOMEM;
		s.next_in = (Bytef *)in;
		s.avail_in = (uInt)inlen;
		s.next_out = out;
		s.avail_out = (uInt)q->cs;
		r = inflate(&s, Z_FINISH);
		inflateEnd(&s);
		if ((r == Z_STREAM_END || r == Z_BUF_ERROR) && s.avail_out == 0)
			return 0;
		return -EIO;
	}
}

static int read_compressed(struct qcow2 *q, const struct mapping *m, uint8_t *out)
{
	uint8_t *in;
	int err;

	if (m->csize > 2 * q->cs + 512)
		return -EIO;
	in = malloc(m->csize);
	if (!in)
		return -ENOMEM;
	err = qcow2_pread(q->fd, in, m->csize, m->host);
	if (!err)
		err = qcow2_decompress(q, in, m->csize, out);
	free(in);
	return err;
}

/* Reads guest [off, off+len) of the backing image into iov[skip..]; zeros
 * past its end (or without one). */
static int read_backing(struct blk_image *img, const struct iovec *iov, int n, size_t skip,
			uint64_t off, size_t len, struct iovec *tmp)
{
	struct blk_image *b = img->backing;
	size_t in = 0;

	if (b && off < b->size)
		in = (size_t)MIN((uint64_t)len, b->size - off);
	if (in) {
		int k = iov_slice(iov, n, skip, in, tmp);
		int err = b->ops->preadv(b, tmp, k, off);
		if (err)
			return err;
	}
	iov_zero(iov, n, skip + in, len - in);
	return 0;
}

/* The current content of the whole cluster at guest offset coff. */
static int read_cluster(struct blk_image *img, const struct mapping *m, uint64_t coff, uint8_t *buf)
{
	struct qcow2 *q = img->priv;
	struct iovec iov = { buf, q->cs }, tmp;

	switch (m->type) {
	case C_NORMAL:
		return qcow2_pread(q->fd, buf, q->cs, m->host);
	case C_COMPRESSED:
		return read_compressed(q, m, buf);
	case C_ZERO:
		memset(buf, 0, q->cs);
		return 0;
	default:
		return read_backing(img, &iov, 1, 0, coff, q->cs, &tmp);
	}
}

int qcow2_preadv(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	struct qcow2 *q = img->priv;
	struct iovec *tmp, small[32];
	uint8_t *cbuf = NULL;
	size_t total = 0, done = 0;
	int err = 0;

	if ((err = blk_iov_check(img, iov, n, off, &total)))
		return err;
	tmp = n <= 32 ? small : malloc(sizeof(*tmp) * (size_t)n);
	if (!tmp)
		return -ENOMEM;
	while (done < total && !err) {
		uint64_t at = off + done, in = at & (q->cs - 1);
		size_t len = (size_t)MIN(total - done, q->cs - in), more;
		struct mapping m, m2;

		pthread_mutex_lock(&q->lock);
		err = get_mapping(q, at, &m);
		/* Extend over following clusters of the same kind. */
		while (!err && m.type != C_COMPRESSED && done + len < total) {
			uint64_t nat = off + done + len;
			if ((err = get_mapping(q, nat, &m2)))
				break;
			if (m2.type != m.type || (m.type == C_NORMAL && m2.host != m.host + (nat - (at - in))))
				break;
			more = (size_t)MIN(total - done - len, q->cs);
			len += more;
		}
		if (err) {
			pthread_mutex_unlock(&q->lock);
			break;
		}
		if (m.type == C_NORMAL || m.type == C_COMPRESSED)
			pthread_rwlock_rdlock(&q->io);
		pthread_mutex_unlock(&q->lock);
		switch (m.type) {
		case C_NORMAL: {
			int k = iov_slice(iov, n, done, len, tmp);
			err = rw_vec(q->fd, tmp, k, m.host + in, false);
			break;
		}
		case C_COMPRESSED:
			if (!cbuf && !(cbuf = malloc(q->cs))) {
				err = -ENOMEM;
				break;
			}
			if (!(err = read_compressed(q, &m, cbuf)))
				iov_copy(iov, n, done, cbuf + in, len, true);
			break;
		case C_ZERO:
			iov_zero(iov, n, done, len);
			break;
		default:
			err = read_backing(img, iov, n, done, at, len, tmp);
			break;
		}
		if (m.type == C_NORMAL || m.type == C_COMPRESSED)
			pthread_rwlock_unlock(&q->io);
		done += len;
	}
	free(cbuf);
	if (tmp != small)
		free(tmp);
	return err;
}

/* Makes sure the L2 table for guest offset off exists; returns its offset. */
static int ensure_l2(struct qcow2 *q, uint64_t off, uint64_t *l2off)
{
	uint64_t i = l1_index(q, off);
	uint8_t *t;
	int err;

	if ((err = l2_offset(q, off, l2off)) || *l2off)
		return err;
	if ((err = qcow2_alloc_clusters(q, 1, l2off)))
		return err;
	if ((err = qcow2_l2_get(q, *l2off, true, &t)))
		return err;
	q->l1[i] = *l2off | QCOW2_COPIED;
	q->l1_dirty = true;
	return 0;
}

/* The clusters an L2 entry holds, freed once the new entry is on disk. */
static int release(struct qcow2 *q, const struct mapping *m)
{
	if (m->type == C_COMPRESSED) {
		uint64_t start = m->host & ~511ULL, end = m->host + m->csize;
		uint64_t c0 = start >> q->cb, c1 = (end - 1) >> q->cb;
		return qcow2_free_later(q, c0 << q->cb, c1 - c0 + 1);
	}
	if (m->host)
		return qcow2_free_later(q, m->host, 1);
	return 0;
}

static int set_l2e(struct qcow2 *q, uint64_t l2off, uint64_t off, uint64_t e)
{
	uint8_t *t;
	int err = qcow2_l2_get(q, l2off, false, &t);

	if (err)
		return err;
	qcow2_put64(t + 8 * l2_index(q, off), e);
	qcow2_l2_dirty(q, l2off);
	return 0;
}

static int maybe_flush(struct qcow2 *q)
{
	return q->npending > 8192 ? qcow2_flush_meta(q) : 0;
}

/* An allocating write of guest [at, at+len) (the run ends in one L2 table),
 * under q->lock. Writes the data (and the copied rest of partial clusters)
 * to new clusters, then points the L2 entries at them. */
static int write_alloc(struct blk_image *img, const struct iovec *iov, int n, size_t skip,
		       uint64_t at, size_t len, struct iovec *tmp)
{
	struct qcow2 *q = img->priv;
	uint64_t first = at & ~(q->cs - 1), last = (at + len - 1) & ~(q->cs - 1);
	uint64_t nc = ((last - first) >> q->cb) + 1, host, l2off, head = at - first;
	uint64_t tail = last + q->cs - (at + len);
	uint8_t *buf = NULL;
	struct mapping m;
	int err, k;

	if ((err = ensure_l2(q, at, &l2off)))
		return err;
	if ((err = qcow2_alloc_clusters(q, nc, &host)))
		return err;
	if (head || tail) {
		buf = malloc(q->cs);
		if (!buf)
			return -ENOMEM;
	}
	if (head) {
		if ((err = get_mapping(q, first, &m)) || (err = read_cluster(img, &m, first, buf)) ||
		    (err = qcow2_pwrite(q->fd, buf, head, host)))
			goto out;
	}
	if (tail) {
		if ((err = get_mapping(q, last, &m)) || (err = read_cluster(img, &m, last, buf)) ||
		    (err = qcow2_pwrite(q->fd, buf + q->cs - tail, tail,
					host + (last - first) + q->cs - tail)))
			goto out;
	}
	k = iov_slice(iov, n, skip, len, tmp);
	if ((err = rw_vec(q->fd, tmp, k, host + head, true)))
		goto out;
	for (uint64_t i = 0; i < nc; i++) {
		uint64_t v = first + (i << q->cb);
		if ((err = get_mapping(q, v, &m)) || (err = release(q, &m)) ||
		    (err = set_l2e(q, l2off, v, (host + (i << q->cb)) | QCOW2_COPIED)))
			goto out;
	}
	err = maybe_flush(q);
out:
	free(buf);
	return err;
}

int qcow2_pwritev(struct blk_image *img, const struct iovec *iov, int n, uint64_t off)
{
	struct qcow2 *q = img->priv;
	struct iovec *tmp, small[32];
	size_t total = 0, done = 0;
	int err = 0;

	if (!q->writable)
		return -EROFS;
	if ((err = blk_iov_check(img, iov, n, off, &total)))
		return err;
	tmp = n <= 32 ? small : malloc(sizeof(*tmp) * (size_t)n);
	if (!tmp)
		return -ENOMEM;
	while (done < total && !err) {
		uint64_t at = off + done, in = at & (q->cs - 1);
		uint64_t l2end = (at | (q->cs * q->l2_entries - 1)) + 1;
		size_t len = (size_t)MIN(total - done, q->cs - in);
		struct mapping m, m2;

		pthread_mutex_lock(&q->lock);
		err = get_mapping(q, at, &m);
		if (!err && m.type == C_NORMAL && m.copied) {
			/* In place, over a run of contiguous clusters. */
			while (done + len < total) {
				uint64_t nat = at + len;
				if ((err = get_mapping(q, nat, &m2)))
					break;
				if (m2.type != C_NORMAL || !m2.copied || m2.host != m.host + in + len)
					break;
				len += (size_t)MIN(total - done - len, q->cs);
			}
			if (!err)
				pthread_rwlock_rdlock(&q->io);
			pthread_mutex_unlock(&q->lock);
			if (!err) {
				int k = iov_slice(iov, n, done, len, tmp);
				err = rw_vec(q->fd, tmp, k, m.host + in, true);
				pthread_rwlock_unlock(&q->io);
			}
		} else if (!err) {
			/* Allocating: the run of clusters not writable in place. */
			/* At most half a refcount block's clusters: a new refcount
			 * block sits at the start of the range it covers, so longer
			 * runs of free clusters may not exist. */
			uint64_t cap = MIN(32ULL << 20, MAX(1, q->rb_entries / 2) << q->cb);
			while (done + len < total && at + len < l2end && len < cap) {
				if ((err = get_mapping(q, at + len, &m2)))
					break;
				if (m2.type == C_NORMAL && m2.copied)
					break;
				len += (size_t)MIN(total - done - len, q->cs);
			}
			if (!err)
				err = write_alloc(img, iov, n, done, at, len, tmp);
			pthread_mutex_unlock(&q->lock);
		} else {
			pthread_mutex_unlock(&q->lock);
		}
		done += len;
	}
	if (tmp != small)
		free(tmp);
	return err;
}

/* How whole clusters become: unallocated, zero-flagged, or (discard)
 * whichever keeps them reading zeros. */
enum zmode { Z_UNMAP, Z_ZERO, Z_DISCARD };

static int zero_clusters(struct blk_image *img, uint64_t off, uint64_t len, enum zmode mode)
{
	struct qcow2 *q = img->priv;
	int err = 0;

	for (uint64_t at = off; at < off + len && !err; at += q->cs) {
		uint64_t l2off, e;
		struct mapping m;

		pthread_mutex_lock(&q->lock);
		if ((err = l2_offset(q, at, &l2off)))
			goto next;
		if (!l2off) {
			bool need = mode == Z_ZERO ? img->backing_file != NULL
						   : mode == Z_DISCARD && img->backing_file;
			if (!need) {
				/* The whole L2 table's range is unallocated: skip it. */
				uint64_t end = (at | (q->cs * q->l2_entries - 1)) + 1;
				at = MIN(end, off + len) - q->cs;
				goto next;
			}
			if ((err = ensure_l2(q, at, &l2off)))
				goto next;
		}
		if ((err = get_mapping(q, at, &m)))
			goto next;
		e = 0;
		if (mode == Z_ZERO || (mode == Z_DISCARD && img->backing_file))
			e = QCOW2_ZERO;
		if (m.raw == e)
			goto next;
		if ((err = release(q, &m)) || (err = set_l2e(q, l2off, at, e)))
			goto next;
		err = maybe_flush(q);
next:
		pthread_mutex_unlock(&q->lock);
	}
	return err;
}

static int write_zero_bytes(struct blk_image *img, uint64_t off, uint64_t len)
{
	struct qcow2 *q = img->priv;
	uint8_t *z;
	int err = 0;

	if (!len)
		return 0;
	z = calloc(1, q->cs);
	if (!z)
		return -ENOMEM;
	while (len && !err) {
		struct iovec v = { z, (size_t)MIN(len, q->cs) };
		err = qcow2_pwritev(img, &v, 1, off);
		off += v.iov_len;
		len -= v.iov_len;
	}
	free(z);
	return err;
}

static int range_ok(struct blk_image *img, uint64_t off, uint64_t len)
{
	struct qcow2 *q = img->priv;

	if (!q->writable)
		return -EROFS;
	if (off > img->size || len > img->size - off)
		return -EINVAL;
	return 0;
}

int qcow2_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap)
{
	struct qcow2 *q = img->priv;
	uint64_t a, b;
	int err;

	(void)may_unmap; /* zero clusters never keep their host cluster */
	if ((err = range_ok(img, off, len)) || !len)
		return err;
	a = ALIGN_UP(off, q->cs);
	b = off + len == img->size ? ALIGN_UP(img->size, q->cs) : ALIGN_DOWN(off + len, q->cs);
	if (q->version < 3 || a >= b)
		return write_zero_bytes(img, off, len);
	if ((err = write_zero_bytes(img, off, a - off)))
		return err;
	if ((err = zero_clusters(img, a, b - a, Z_ZERO)))
		return err;
	return b < off + len ? write_zero_bytes(img, b, off + len - b) : 0;
}

int qcow2_discard(struct blk_image *img, uint64_t off, uint64_t len)
{
	struct qcow2 *q = img->priv;
	uint64_t a, b;
	int err;

	if ((err = range_ok(img, off, len)))
		return err;
	a = ALIGN_UP(off, q->cs);
	b = off + len == img->size ? ALIGN_UP(img->size, q->cs) : ALIGN_DOWN(off + len, q->cs);
	if (a >= b)
		return 0;
	if (q->version < 3 && img->backing_file)
		return 0; /* a hint: v2 cannot say "zero" over a backing file */
	return zero_clusters(img, a, b - a, Z_DISCARD);
}

int qcow2_make_empty(struct blk_image *img)
{
	struct qcow2 *q = img->priv;
	int err;

	if (!q->writable)
		return -EROFS;
	if ((err = zero_clusters(img, 0, ALIGN_UP(img->size, q->cs), Z_UNMAP)))
		return err;
	pthread_mutex_lock(&q->lock);
	err = qcow2_flush_meta(q);
	pthread_mutex_unlock(&q->lock);
	return err;
}

int qcow2_block_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
		       uint64_t *map)
{
	struct qcow2 *q = img->priv;
	uint64_t in = off & (q->cs - 1), n;
	struct mapping m, m2;
	int err, flags = 0;

	if (off >= img->size || !len)
		return -EINVAL;
	len = MIN(len, img->size - off);
	n = MIN(len, q->cs - in);
	pthread_mutex_lock(&q->lock);
	err = get_mapping(q, off, &m);
	while (!err && n < len && n < (1ULL << 30)) {
		if ((err = get_mapping(q, off + n, &m2)))
			break;
		if (m2.type != m.type || (m.type == C_NORMAL && m2.host != m.host + in + n) ||
		    m.type == C_COMPRESSED)
			break;
		n += MIN(len - n, q->cs);
	}
	pthread_mutex_unlock(&q->lock);
	if (err)
		return err;
	*pnum = n;
	*map = 0;
	switch (m.type) {
	case C_NORMAL:
		flags = BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
		*map = m.host + in;
		break;
	case C_COMPRESSED:
		flags = BLK_ALLOCATED | BLK_DATA | BLK_COMPRESSED;
		break;
	case C_ZERO:
		flags = BLK_ALLOCATED | BLK_ZERO;
		break;
	default:
		flags = 0;
		break;
	}
	return flags;
}

static int compress_cluster(struct qcow2 *q, const uint8_t *in, uint8_t *out, size_t *olen)
{
	if (q->compression == QCOW2_ZSTD) {
		size_t r = ZSTD_compress(out, *olen, in, q->cs, 3);
		if (ZSTD_isError(r))
			return -ENOSPC;
		*olen = r;
		return 0;
	} else {
		z_stream s = { 0 };
		int r;
		if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		s.next_in = (Bytef *)in;
		s.avail_in = (uInt)q->cs;
		s.next_out = out;
		s.avail_out = (uInt)*olen;
		r = deflate(&s, Z_FINISH);
		*olen = *olen - s.avail_out;
		deflateEnd(&s);
		return r == Z_STREAM_END ? 0 : -ENOSPC;
	}
}

/* Where olen compressed bytes go: after the last compressed cluster in its
 * host cluster when they fit (one more reference to it), else at the start
 * of a new one. Either way the range touches one host cluster, counted once
 * per compressed cluster in it (as qemu-img check counts). */
static int pack_place(struct qcow2 *q, size_t olen, uint64_t *host)
{
	uint64_t rc;
	int err;

	if (q->cpack && q->cs - (q->cpack & (q->cs - 1)) >= olen &&
	    !qcow2_get_refcount(q, q->cpack >> q->cb, &rc) && rc &&
	    !qcow2_update_refcount(q, q->cpack >> q->cb, 1)) {
		*host = q->cpack;
	} else if ((err = qcow2_alloc_clusters(q, 1, host))) {
		return err;
	}
	q->cpack = ALIGN_UP(*host + olen, 512);
	if (!(q->cpack & (q->cs - 1)))
		q->cpack = 0;
	return 0;
}

int qcow2_write_compressed(struct blk_image *img, const void *buf, uint64_t off, size_t len)
{
	struct qcow2 *q = img->priv;
	uint8_t *in = NULL, *out = NULL;
	size_t olen;
	uint64_t l2off, host;
	struct mapping m;
	int err;

	if ((err = range_ok(img, off, len)))
		return err;
	if (off & (q->cs - 1) || !len || len > q->cs || (len < q->cs && off + len != img->size))
		return -EINVAL;
	in = calloc(1, q->cs);
	out = malloc(q->cs);
	if (!in || !out) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(in, buf, len);
	olen = q->cs - 512;
	if (compress_cluster(q, in, out, &olen)) {
		/* No gain: stored as it is. */
		struct iovec v = { in, len };
		err = qcow2_pwritev(img, &v, 1, off);
		goto out;
	}
	pthread_mutex_lock(&q->lock);
	if ((err = ensure_l2(q, off, &l2off)) || (err = pack_place(q, olen, &host)) ||
	    (err = qcow2_pwrite(q->fd, out, olen, host)) || (err = get_mapping(q, off, &m)) ||
	    (err = release(q, &m)))
		goto unlock;
	err = set_l2e(q, l2off, off,
		      QCOW2_COMPRESSED | host | ((uint64_t)((olen - 1) / 512) << q->csize_shift));
	if (!err)
		err = maybe_flush(q);
unlock:
	pthread_mutex_unlock(&q->lock);
out:
	free(in);
	free(out);
	return err;
}
