/* qcow2 metadata: the L2 table and refcount block caches, refcounts,
 * cluster allocation, and the flush that writes metadata in the order that
 * keeps a crashed image consistent:
 *   refcount blocks -> sync -> refcount table -> sync -> L2 tables -> sync
 *   -> L1 table -> sync -> (clusters freed by those L2 writes) .
 * Data is written before the L2 entry that points at it is even set in
 * the cache, so it also reaches the disk first. A dirty L2 table evicted
 * from the cache goes out only after the refcounts are on disk. */
#include "qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cs)
{
	c->n = n;
	c->tick = 0;
	c->ents = calloc(n, sizeof(*c->ents));
	if (!c->ents)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		c->ents[i].data = malloc(cs);
		if (!c->ents[i].data)
			return -ENOMEM;
	}
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	if (!c->ents)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->ents[i].data);
	free(c->ents);
	c->ents = NULL;
}

static struct qcow2_cache_ent *cache_find(struct qcow2_cache *c, uint64_t off)
{
	/* The last table found first: requests walk one table for a while. */
	if (c->ents[c->last].off == off) {
		c->ents[c->last].lru = ++c->tick;
		return &c->ents[c->last];
	}
	for (unsigned i = 0; i < c->n; i++)
		if (c->ents[i].off == off) {
			c->ents[i].lru = ++c->tick;
			c->last = i;
			return &c->ents[i];
		}
	return NULL;
}

static int write_ent(struct qcow2 *q, struct qcow2_cache_ent *e)
{
	int err = qcow2_pwrite(q->fd, e->data, q->cs, e->off);

	if (!err)
		e->dirty = false;
	return err;
}

/* A free slot, or the least recently used one written back first. */
static int cache_victim(struct qcow2 *q, struct qcow2_cache *c, bool l2, struct qcow2_cache_ent **out)
{
	struct qcow2_cache_ent *v = NULL;
	int err;

	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_ent *e = &c->ents[i];
		if (!e->off) {
			v = e;
			break;
		}
		if (!v || e->lru < v->lru)
			v = e;
	}
	if (v->dirty) {
		/* An L2 table may point at clusters whose refcounts are only in
		 * the cache, and at data not yet durable: those go first. */
		if (l2 && ((err = qcow2_flush_refcounts(q)) || (err = qcow2_sync(q))))
			return err;
		if ((err = write_ent(q, v)))
			return err;
	}
	v->off = 0;
	v->lru = ++c->tick;
	*out = v;
	return 0;
}

static int cache_get(struct qcow2 *q, struct qcow2_cache *c, bool l2, uint64_t off, bool fresh,
		     uint8_t **tbl)
{
	struct qcow2_cache_ent *e = cache_find(c, off);
	int err;

	if (!off || off & (q->cs - 1) || off >= QCOW2_MAX_OFFSET)
		return -EIO;
	if (e) {
		if (fresh) {
			memset(e->data, 0, q->cs);
			e->dirty = true;
		}
		*tbl = e->data;
		return 0;
	}
	if ((err = cache_victim(q, c, l2, &e)))
		return err;
	if (fresh) {
		memset(e->data, 0, q->cs);
		e->dirty = true;
	} else if ((err = qcow2_pread(q->fd, e->data, q->cs, off))) {
		return err;
	}
	e->off = off;
	*tbl = e->data;
	return 0;
}

int qcow2_l2_get(struct qcow2 *q, uint64_t off, bool fresh, uint8_t **tbl)
{
	return cache_get(q, &q->l2c, true, off, fresh, tbl);
}

void qcow2_l2_dirty(struct qcow2 *q, uint64_t off)
{
	struct qcow2_cache_ent *e = cache_find(&q->l2c, off);

	if (e)
		e->dirty = true;
}

static int cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c, bool *wrote)
{
	int err;

	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_ent *e = &c->ents[i];
		if (e->off && e->dirty) {
			if ((err = write_ent(q, e)))
				return err;
			*wrote = true;
		}
	}
	return 0;
}

/* Refcount values: 1, 2 and 4 bits are packed from the low bit of each
 * byte; 8 to 64 bits are big-endian. */
uint64_t qcow2_rb_get(const struct qcow2 *q, const uint8_t *rb, uint64_t i)
{
	unsigned order = q->refcount_order;

	switch (order) {
	case 0: case 1: case 2: {
		unsigned b = 1u << order;
		return (rb[i * b / 8] >> (i * b % 8)) & ((1u << b) - 1);
	}
	case 3: return rb[i];
	case 4: return (uint64_t)rb[2 * i] << 8 | rb[2 * i + 1];
	case 5: return qcow2_be32(rb + 4 * i);
	default: return qcow2_be64(rb + 8 * i);
	}
}

void qcow2_rb_set(const struct qcow2 *q, uint8_t *rb, uint64_t i, uint64_t v)
{
	unsigned order = q->refcount_order;

	switch (order) {
	case 0: case 1: case 2: {
		unsigned b = 1u << order, sh = (unsigned)(i * b % 8);
		uint8_t m = (uint8_t)(((1u << b) - 1) << sh);
		rb[i * b / 8] = (uint8_t)((rb[i * b / 8] & ~m) | ((v << sh) & m));
		break;
	}
	case 3: rb[i] = (uint8_t)v; break;
	case 4: rb[2 * i] = (uint8_t)(v >> 8); rb[2 * i + 1] = (uint8_t)v; break;
	case 5: qcow2_put32(rb + 4 * i, (uint32_t)v); break;
	default: qcow2_put64(rb + 8 * i, v); break;
	}
}

static uint64_t refcount_max(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX : (1ULL << q->refcount_bits) - 1;
}

/* The refcount block offset of rt index r: 0 when none; -EIO when damaged. */
static int rb_offset(struct qcow2 *q, uint64_t r, uint64_t *off)
{
	uint64_t e;

	*off = 0;
	if (r >= q->rt_size)
		return 0;
	e = q->rt[r];
	if (e & QCOW2_RT_RESERVED || (e && e >= QCOW2_MAX_OFFSET))
		return -EIO;
	*off = e & ~QCOW2_RT_RESERVED & ~(q->cs - 1);
	if (e & (q->cs - 1))
		return -EIO;
	return 0;
}

int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster, uint64_t *rc)
{
	uint64_t r = cluster / q->rb_entries, off;
	uint8_t *rb;
	int err;

	*rc = 0;
	if ((err = rb_offset(q, r, &off)) || !off)
		return err;
	if ((err = cache_get(q, &q->rbc, false, off, false, &rb)))
		return err;
	*rc = qcow2_rb_get(q, rb, cluster % q->rb_entries);
	return 0;
}

/* Write dirty refcount blocks, then the table that points at new ones,
 * each durable before what depends on it. */
int qcow2_flush_refcounts(struct qcow2 *q)
{
	bool wrote = false;
	int err;

	if ((err = cache_write_dirty(q, &q->rbc, &wrote)))
		return err;
	if (q->rt_dirty) {
		size_t bytes = (size_t)q->rt_clusters << q->cb;
		uint8_t *buf = calloc(1, bytes);
		if (!buf)
			return -ENOMEM;
		for (uint64_t i = 0; i < q->rt_size; i++)
			qcow2_put64(buf + 8 * i, q->rt[i]);
		if (wrote && (err = qcow2_sync(q))) {
			free(buf);
			return err;
		}
		err = qcow2_pwrite(q->fd, buf, bytes, q->rt_off);
		free(buf);
		if (err)
			return err;
		q->rt_dirty = false;
		wrote = true;
	}
	if (wrote)
		return qcow2_sync(q);
	return 0;
}

/* A bigger refcount table, with the refcount blocks for itself, placed
 * past everything the old one covers; the header switches to it in one
 * write, then the old table is freed. */
static int grow_rt(struct qcow2 *q, uint64_t need)
{
	uint64_t a = q->rt_size * q->rb_entries; /* first cluster no refblock covers */
	uint64_t nb = 0, nt = 1, entries = 0, old_off = q->rt_off, old_clusters = q->rt_clusters;
	uint8_t *buf = NULL, hdr[12];
	uint64_t *nrt;
	int err;

	if ((err = qcow2_flush_refcounts(q)))
		return err;
	for (int iter = 0; iter < 8; iter++) {
		uint64_t end = (a + nb + nt + q->rb_entries - 1) / q->rb_entries;
		uint64_t nnb = end - q->rt_size, nnt;
		entries = MAX(need + 1, end);
		entries += entries / 2;
		nnt = (entries * 8 + q->cs - 1) >> q->cb;
		if (nnb == nb && nnt == nt)
			break;
		nb = nnb;
		nt = nnt;
	}
	entries = (nt << q->cb) / 8;
	if ((nt << q->cb) > QCOW2_MAX_RT_BYTES || ((a + nb + nt) << q->cb) >= QCOW2_MAX_OFFSET)
		return -ENOSPC;
	buf = calloc(1, q->cs);
	nrt = calloc(entries, sizeof(*nrt));
	if (!buf || !nrt) {
		free(buf);
		free(nrt);
		return -ENOMEM;
	}
	memcpy(nrt, q->rt, q->rt_size * sizeof(*nrt));
	for (uint64_t k = 0; k < nb; k++) {
		uint64_t r = q->rt_size + k;
		memset(buf, 0, q->cs);
		for (uint64_t c = a; c < a + nb + nt; c++)
			if (c / q->rb_entries == r)
				qcow2_rb_set(q, buf, c % q->rb_entries, 1);
		nrt[r] = (a + k) << q->cb;
		if ((err = qcow2_pwrite(q->fd, buf, q->cs, (a + k) << q->cb)))
			goto out;
	}
	free(buf);
	buf = calloc(nt, q->cs);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < entries; i++)
		qcow2_put64(buf + 8 * i, nrt[i]);
	if ((err = qcow2_pwrite(q->fd, buf, nt << q->cb, (a + nb) << q->cb)) || (err = qcow2_sync(q)))
		goto out;
	qcow2_put64(hdr, (a + nb) << q->cb);
	qcow2_put32(hdr + 8, (uint32_t)nt);
	if ((err = qcow2_pwrite(q->fd, hdr, sizeof(hdr), 48)) || (err = qcow2_sync(q)))
		goto out;
	free(q->rt);
	q->rt = nrt;
	nrt = NULL;
	q->rt_size = entries;
	q->rt_off = (a + nb) << q->cb;
	q->rt_clusters = (uint32_t)nt;
	for (uint64_t i = 0; i < old_clusters && !err; i++)
		err = qcow2_update_refcount(q, (old_off >> q->cb) + i, -1);
	if (q->free_hint > old_off >> q->cb)
		q->free_hint = old_off >> q->cb;
out:
	free(buf);
	free(nrt);
	return err;
}

/* Makes sure the refcount block for cluster exists: a new one is put at
 * the first cluster it covers (free, since nothing there is counted). */
static int ensure_rb(struct qcow2 *q, uint64_t cluster, bool *made)
{
	uint64_t r = cluster / q->rb_entries, off, self;
	uint8_t *rb;
	int err;

	*made = false;
	if (r >= q->rt_size && (err = grow_rt(q, r)))
		return err;
	if ((err = rb_offset(q, r, &off)))
		return err;
	if (off)
		return 0;
	self = r * q->rb_entries;
	if (!self)
		return -EIO; /* no refcount block for the header: damaged */
	if ((self << q->cb) >= QCOW2_MAX_OFFSET)
		return -ENOSPC;
	if ((err = cache_get(q, &q->rbc, false, self << q->cb, true, &rb)))
		return err;
	qcow2_rb_set(q, rb, 0, 1);
	q->rt[r] = self << q->cb;
	q->rt_dirty = true;
	*made = true;
	return 0;
}

int qcow2_update_refcount(struct qcow2 *q, uint64_t cluster, int64_t delta)
{
	uint64_t off, v;
	uint8_t *rb;
	bool made;
	int err;

	if ((err = ensure_rb(q, cluster, &made)))
		return err;
	if ((err = rb_offset(q, cluster / q->rb_entries, &off)))
		return err;
	if ((err = cache_get(q, &q->rbc, false, off, false, &rb)))
		return err;
	v = qcow2_rb_get(q, rb, cluster % q->rb_entries);
	if (delta < 0 && v < (uint64_t)-delta)
		return -EIO;
	if (delta > 0 && refcount_max(q) - v < (uint64_t)delta)
		return -ERANGE;
	v += (uint64_t)delta;
	qcow2_rb_set(q, rb, cluster % q->rb_entries, v);
	for (unsigned i = 0; i < q->rbc.n; i++)
		if (q->rbc.ents[i].off == off)
			q->rbc.ents[i].dirty = true;
	if (!v && cluster < q->free_hint)
		q->free_hint = cluster;
	return 0;
}

/* n contiguous free clusters, counted once each. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off)
{
	uint64_t s = MAX(q->free_hint, 1), start = s, limit = QCOW2_MAX_OFFSET >> q->cb;
	int err;

	/* Runs of free clusters are broken by a refcount block every
	 * rb_entries clusters (see ensure_rb). */
	if (n >= q->rb_entries)
		return -ENOSPC;
	for (uint64_t scanned = 0;; scanned++) {
		uint64_t i, rc;
		bool made = false;

		/* A long search (a full image, or a damaged refcount table
		 * claiming everything): take space past all refcount blocks. */
		if (scanned == (1u << 22) && s < q->rt_size * q->rb_entries)
			s = q->rt_size * q->rb_entries;
		if (s + n > limit)
			return -ENOSPC;
		for (i = 0; i < n; i++) {
			if ((err = ensure_rb(q, s + i, &made)))
				return err;
			if (made)
				break;
			if ((err = qcow2_get_refcount(q, s + i, &rc)))
				return err;
			if (rc)
				break;
		}
		if (i == n)
			break;
		s += i + 1;
		if (made)
			s = MAX(q->free_hint, 1);
	}
	for (uint64_t i = 0; i < n; i++)
		if ((err = qcow2_update_refcount(q, s + i, 1)))
			return err;
	if (q->free_hint >= start)
		q->free_hint = s + n;
	*off = s << q->cb;
	return 0;
}

int qcow2_free_later(struct qcow2 *q, uint64_t off, uint64_t nclusters)
{
	for (uint64_t i = 0; i < nclusters; i++) {
		if (q->npending == q->cap_pending) {
			size_t cap = q->cap_pending ? q->cap_pending * 2 : 64;
			uint64_t *p = realloc(q->pending_free, cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			q->pending_free = p;
			q->cap_pending = cap;
		}
		q->pending_free[q->npending++] = (off >> q->cb) + i;
	}
	return 0;
}

int qcow2_flush_meta(struct qcow2 *q)
{
	bool wrote = false;
	int err;

	if ((err = qcow2_flush_refcounts(q)))
		return err;
	for (unsigned i = 0; i < q->l2c.n; i++)
		if (q->l2c.ents[i].off && q->l2c.ents[i].dirty) {
			/* The data these L2 entries point at, durable first. */
			if ((err = qcow2_sync(q)))
				return err;
			break;
		}
	if ((err = cache_write_dirty(q, &q->l2c, &wrote)))
		return err;
	if (q->l1_dirty) {
		/* The L2 tables (maybe evicted earlier) before the L1 entries. */
		if ((err = qcow2_sync(q)))
			return err;
		if ((err = qcow2_write_l1_entries(q)))
			return err;
		q->l1_dirty = false;
	}
	if ((err = qcow2_sync(q)))
		return err;
	if (q->npending) {
		/* The L2 tables that pointed at these are on disk without them:
		 * now they may be counted down and reused. */
		pthread_rwlock_wrlock(&q->io);
		q->cpack = 0;
		for (size_t i = 0; i < q->npending && !err; i++)
			err = qcow2_update_refcount(q, q->pending_free[i], -1);
		q->npending = 0;
		pthread_rwlock_unlock(&q->io);
		/* Written (not synced: lost, they would only be leaks). */
		if (!err)
			err = cache_write_dirty(q, &q->rbc, &wrote);
	}
	return err;
}
