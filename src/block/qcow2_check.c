/* qcow2 consistency check, counted as qemu-img check counts: every
 * cluster's references are rebuilt from the header, the tables and the
 * L1/L2 mapping, then compared with the stored refcounts. A stored count
 * below the references is a corruption; above, a leak (repairable). */
#include "qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct refs {
	uint32_t *n;               /* references per cluster of the file (saturating) */
	uint64_t nclusters;
	struct blk_check *res;
};

/* Counts a reference to every cluster of [off, off+len). */
static void ref(struct qcow2 *q, struct refs *r, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	for (uint64_t c = off >> q->cb; c <= (off + len - 1) >> q->cb; c++) {
		if (c >= r->nclusters) {
			r->res->corruptions++; /* past the end of the file */
			return;
		}
		if (r->n[c] != UINT32_MAX)
			r->n[c]++;
	}
}

static int check_l2(struct qcow2 *q, struct refs *r, uint64_t l2off)
{
	uint64_t next = 0, *prev = &next; /* contiguity is counted per L2 table, as QEMU does */
	uint8_t *t, *copy;
	int err;

	if ((err = qcow2_l2_get(q, l2off, false, &t)))
		return err;
	copy = malloc(q->cs);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, t, q->cs);
	for (uint64_t i = 0; i < q->l2_entries; i++) {
		uint64_t e = qcow2_be64(copy + 8 * i), host, rc;
		if (e & QCOW2_COMPRESSED) {
			uint64_t ns = ((e >> q->csize_shift) & q->csize_mask) + 1;
			host = e & q->coff_mask;
			if (e & QCOW2_COPIED || host < q->cs) {
				r->res->corruptions++;
				continue;
			}
			ref(q, r, host & ~511ULL, ns * 512);
			r->res->compressed_clusters++;
			r->res->allocated_clusters++;
			r->res->fragmented_clusters++; /* as QEMU: by nature */
			continue;
		}
		host = e & QCOW2_OFF_MASK;
		if (e & QCOW2_L2_RESERVED || (host && (host & (q->cs - 1) || host < q->cs)) ||
		    ((e & QCOW2_ZERO) && q->version < 3)) {
			r->res->corruptions++;
			continue;
		}
		if (!host)
			continue;
		r->res->allocated_clusters++;
		if (*prev && host != *prev + q->cs)
			r->res->fragmented_clusters++;
		*prev = host;
		ref(q, r, host, q->cs);
		if ((err = qcow2_get_refcount(q, host >> q->cb, &rc))) {
			r->res->check_errors++;
			continue;
		}
		if ((rc == 1) != !!(e & QCOW2_COPIED))
			r->res->corruptions++; /* OFLAG_COPIED disagrees with the refcount */
	}
	free(copy);
	return 0;
}

static int rebuild(struct qcow2 *q, struct refs *r)
{
	int err;

	ref(q, r, 0, q->cs);
	ref(q, r, q->l1_off, (uint64_t)q->l1_size * 8);
	ref(q, r, q->rt_off, (uint64_t)q->rt_clusters << q->cb);
	for (uint64_t i = 0; i < q->rt_size; i++) {
		uint64_t e = q->rt[i];
		if (!e)
			continue;
		if (e & (q->cs - 1) || e >= QCOW2_MAX_OFFSET) {
			r->res->corruptions++;
			continue;
		}
		ref(q, r, e, q->cs);
	}
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t e = q->l1[i], l2off = e & QCOW2_OFF_MASK, rc;
		if (e & QCOW2_L1_RESERVED || (l2off && (l2off & (q->cs - 1) || l2off < q->cs))) {
			r->res->corruptions++;
			continue;
		}
		if (!l2off)
			continue;
		if ((l2off >> q->cb) >= r->nclusters || r->n[l2off >> q->cb]) {
			/* Past the end, or a table already seen (no snapshots:
			 * nothing may share it): not walked again. */
			r->res->corruptions++;
			continue;
		}
		ref(q, r, l2off, q->cs);
		if (!qcow2_get_refcount(q, l2off >> q->cb, &rc) && (rc == 1) != !!(e & QCOW2_COPIED))
			r->res->corruptions++;
		if ((err = check_l2(q, r, l2off))) {
			if (err == -ENOMEM)
				return err;
			r->res->check_errors++;
		}
	}
	return 0;
}

int qcow2_check(struct blk_image *img, bool repair_leaks, struct blk_check *out)
{
	struct qcow2 *q = img->priv;
	struct refs r = { .res = out };
	uint64_t highest = 0, scan;
	off_t end;
	int err;

	memset(out, 0, sizeof(*out));
	if (repair_leaks && !q->writable)
		return -EROFS;
	if (q->nb_snapshots)
		return -ENOTSUP;
	pthread_mutex_lock(&q->lock);
	if (q->writable && (err = qcow2_flush_meta(q)))
		goto out;
	end = lseek(q->fd, 0, SEEK_END);
	if (end < 0) {
		err = -errno;
		goto out;
	}
	r.nclusters = ((uint64_t)end + q->cs - 1) >> q->cb;
	if (r.nclusters > (1ULL << 28)) { /* 1 GiB of counters */
		err = -EFBIG;
		goto out;
	}
	r.n = calloc(r.nclusters ? r.nclusters : 1, sizeof(*r.n));
	if (!r.n) {
		err = -ENOMEM;
		goto out;
	}
	out->total_clusters = (img->size + q->cs - 1) >> q->cb;
	if ((err = rebuild(q, &r)))
		goto out;
	/* Compare over the clusters of the file, as QEMU does (a refcount
	 * past the end, on nothing, is not looked at). */
	scan = r.nclusters;
	for (uint64_t c = 0; c < scan; c++) {
		uint64_t want = c < r.nclusters ? r.n[c] : 0, have;
		if (want)
			highest = c + 1;
		if (qcow2_get_refcount(q, c, &have)) {
			out->check_errors++;
			c = (c / q->rb_entries + 1) * q->rb_entries - 1; /* skip the block */
			continue;
		}
		if (have == want)
			continue;
		if (have < want) {
			out->corruptions++;
			continue;
		}
		out->leaks++;
		if (repair_leaks && !qcow2_update_refcount(q, c, -(int64_t)(have - want)))
			out->leaks_fixed++;
	}
	out->image_end_offset = highest << q->cb;
	if (repair_leaks && out->leaks_fixed) {
		/* Freed clusters may be reused from here on. */
		if ((err = qcow2_flush_meta(q)))
			goto out;
		q->free_hint = 1;
		q->cpack = 0;
	}
	err = 0;
out:
	free(r.n);
	pthread_mutex_unlock(&q->lock);
	return err;
}
