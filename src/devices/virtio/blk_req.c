/* virtio-blk request parsing: from a popped chain (already checked by
 * virtq_pop: every segment is in guest RAM) to a request whose every
 * number is checked. The guest chooses the framing (2.6.4): the 16-byte
 * header may be split over segments, data may share a segment with the
 * header or the status; only the totals mean something. */
#include "kumo/virtio_blk.h"

#include <errno.h>
#include <string.h>

/* Copies len bytes at offset skip of the n segments at iov. */
static size_t copy_out(const struct iovec *iov, unsigned n, uint64_t skip, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t l = MIN(iov[i].iov_len - skip, len - done);
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

/* The segments covering [skip, skip + len) of iov[0..n), into out. */
static unsigned slice(const struct iovec *iov, unsigned n, uint64_t skip, uint64_t len,
		      struct iovec *out)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t l = (size_t)MIN(iov[i].iov_len - skip, len);
		if (l) /* zero-length segments carry nothing */
			out[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, l };
		len -= l;
		skip = 0;
	}
	return k;
}

static uint64_t total(const struct iovec *iov, unsigned n)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static bool in_range(const struct virtio_blk_limits *lim, uint64_t sector, uint64_t nsect)
{
	return sector <= lim->capacity && nsect <= lim->capacity - sector;
}

static int done(struct blk_req *r, uint8_t status)
{
	r->status_code = status;
	return VIRTIO_BLK_REQ_DONE;
}

static int parse_ranges(const struct virtq_elem *e, uint64_t out_len,
			const struct virtio_blk_limits *lim, struct blk_req *r)
{
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	uint64_t bytes = out_len - VIRTIO_BLK_HDR_LEN;
	uint32_t max_sectors = discard ? lim->max_discard_sectors : lim->max_write_zeroes_sectors;

	if (lim->read_only)
		return done(r, VIRTIO_BLK_S_IOERR);
	if (!(discard ? lim->discard : lim->write_zeroes))
		return done(r, VIRTIO_BLK_S_UNSUPP);
	if (!bytes || bytes % VIRTIO_BLK_RANGE_LEN || bytes / VIRTIO_BLK_RANGE_LEN > lim->max_ranges ||
	    bytes / VIRTIO_BLK_RANGE_LEN > VIRTIO_BLK_MAX_RANGES)
		return done(r, VIRTIO_BLK_S_IOERR);
	r->nranges = (unsigned)(bytes / VIRTIO_BLK_RANGE_LEN);
	for (unsigned i = 0; i < r->nranges; i++) {
		uint8_t raw[VIRTIO_BLK_RANGE_LEN];
		uint32_t flags;

		if (copy_out(e->iov, e->nout, VIRTIO_BLK_HDR_LEN + (uint64_t)i * sizeof(raw), raw,
			     sizeof(raw)) != sizeof(raw))
			return done(r, VIRTIO_BLK_S_IOERR);
		r->ranges[i].sector = get_le64(raw);
		r->ranges[i].num_sectors = get_le32(raw + 8);
		flags = get_le32(raw + 12);
		/* Unknown flags, or unmap on a discard (5.2.6.2). */
		if (flags & ~VIRTIO_BLK_WZ_F_UNMAP || (discard && flags))
			return done(r, VIRTIO_BLK_S_UNSUPP);
		r->ranges[i].unmap = flags & VIRTIO_BLK_WZ_F_UNMAP;
		if (r->ranges[i].num_sectors > max_sectors ||
		    !in_range(lim, r->ranges[i].sector, r->ranges[i].num_sectors))
			return done(r, VIRTIO_BLK_S_IOERR);
	}
	return VIRTIO_BLK_REQ_RUN;
}

int virtio_blk_parse(const struct virtq_elem *e, const struct virtio_blk_limits *lim,
		     struct blk_req *r)
{
	const struct iovec *in = e->iov + e->nout;
	uint8_t hdr[VIRTIO_BLK_HDR_LEN];
	uint64_t in_data, out_len;
	int last;

	r->type = ~0u;
	r->sector = 0;
	r->status = NULL;
	r->status_code = VIRTIO_BLK_S_OK;
	r->len = 0;
	r->niov = 0;
	r->nranges = 0;
	if (e->nout > VIRTQ_MAX_SEGS || e->nin > VIRTQ_MAX_SEGS - e->nout)
		return -EINVAL;
	/* The status byte: the last byte of the last non-empty writable
	 * segment (the writable part's last byte). */
	for (last = (int)e->nin - 1; last >= 0 && !in[last].iov_len; last--)
		;
	if (last < 0)
		return -EINVAL;
	r->status = (uint8_t *)in[last].iov_base + in[last].iov_len - 1;
	/* The totals from the segments themselves, whatever e's say. */
	in_data = total(in, e->nin) - 1;
	out_len = total(e->iov, e->nout);

	if (out_len < VIRTIO_BLK_HDR_LEN ||
	    copy_out(e->iov, e->nout, 0, hdr, sizeof(hdr)) != sizeof(hdr))
		return done(r, VIRTIO_BLK_S_IOERR);
	r->type = get_le32(hdr);
	r->sector = get_le64(hdr + 8);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r->type == VIRTIO_BLK_T_IN) {
			r->len = in_data;
			if (out_len != VIRTIO_BLK_HDR_LEN)
				return done(r, VIRTIO_BLK_S_IOERR);
			r->niov = slice(in, e->nin, 0, in_data, r->iov);
		} else {
			r->len = out_len - VIRTIO_BLK_HDR_LEN;
			if (lim->read_only)
				return done(r, VIRTIO_BLK_S_IOERR);
			r->niov = slice(e->iov, e->nout, VIRTIO_BLK_HDR_LEN, r->len, r->iov);
		}
		if (r->len % VIRTIO_BLK_SECTOR ||
		    !in_range(lim, r->sector, r->len / VIRTIO_BLK_SECTOR))
			return done(r, VIRTIO_BLK_S_IOERR);
		return VIRTIO_BLK_REQ_RUN;
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_REQ_RUN;
	case VIRTIO_BLK_T_GET_ID:
		r->len = MIN(in_data, VIRTIO_BLK_ID_BYTES);
		r->niov = slice(in, e->nin, 0, r->len, r->iov);
		return VIRTIO_BLK_REQ_RUN;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_ranges(e, out_len, lim, r);
	default:
		return done(r, VIRTIO_BLK_S_UNSUPP);
	}
}
