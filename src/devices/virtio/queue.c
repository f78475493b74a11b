/* Split virtqueues (virtio 1.2, 2.7) from the device's side. The rings live
 * in guest memory and the guest may change them at any moment, so every
 * value is read once into a local, checked, and only then used: indices
 * against the queue size, descriptors against the table, buffers against
 * guest RAM (start and length), chains against a hop limit. */
#include "kumo/virtio.h"

#include <errno.h>
#include <string.h>

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Ring sizes in bytes (2.7.*): desc 16/entry; avail flags, idx, ring,
 * used_event; used flags, idx, ring of {id, len}, avail_event. */
static uint64_t desc_bytes(uint16_t n) { return 16ULL * n; }
static uint64_t avail_bytes(uint16_t n) { return 6 + 2ULL * n; }
static uint64_t used_bytes(uint16_t n) { return 6 + 8ULL * n; }

static inline uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static inline void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

void virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->max_size = max_size;
	q->vector = VIRTIO_NO_VECTOR;
	pthread_mutex_init(&q->lock, NULL);
	virtq_reset(q);
}

void virtq_destroy(struct virtq *q)
{
	pthread_mutex_destroy(&q->lock);
}

static void forget_code_heads(struct virtq *q)
{
	for (unsigned i = 0; i < ARRAY_SIZE(q->code_heads); i++)
		atomic_store(&q->code_heads[i], 0);
}

void virtq_reset(struct virtq *q)
{
	pthread_mutex_lock(&q->lock);
	q->size = q->max_size;
	q->enabled = false;
	q->event_idx = q->indirect = false;
	q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
	q->desc = q->avail = q->used = NULL;
	q->last_avail = q->used_idx = q->signalled_used = 0;
	q->signalled_valid = false;
	q->broken = false;
	forget_code_heads(q);
	q->vector = VIRTIO_NO_VECTOR;
	pthread_mutex_unlock(&q->lock);
}

int virtq_enable(struct virtq *q)
{
	uint16_t n = q->size;

	if (!n || n > q->max_size || (n & (n - 1)))
		return -EINVAL;
	/* Alignment (2.7): desc 16, avail 2, used 4. */
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -EINVAL;
	q->desc = gpa_ptr(q->mem, q->desc_gpa, desc_bytes(n));
	q->avail = gpa_ptr(q->mem, q->avail_gpa, avail_bytes(n));
	q->used = gpa_ptr(q->mem, q->used_gpa, used_bytes(n));
	if (!q->desc || !q->avail || !q->used) {
		q->desc = q->avail = q->used = NULL;
		return -EINVAL;
	}
	/* The host mapping is 2-byte aligned where the gpa is (RAM regions
	 * start page aligned), so 16-bit ring fields load atomically. */
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	q->broken = false;
	forget_code_heads(q);
	q->enabled = true;
	return 0;
}

static int broken(struct virtq *q)
{
	q->broken = true;
	return -EIO;
}

/* Adds descriptor d to e; -EIO when it breaks the rules. */
static int add_segment(struct virtq *q, struct virtq_elem *e, const struct vdesc *d)
{
	unsigned n = e->nout + e->nin;
	void *p;

	if (n >= VIRTQ_MAX_SEGS)
		return -EIO;
	if (d->flags & VIRTQ_DESC_F_WRITE) {
		e->nin++;
		e->in_len += d->len;
	} else {
		if (e->nin) /* readable after writable (2.7.4.2) */
			return -EIO;
		e->nout++;
		e->out_len += d->len;
	}
	/* A zero-length buffer carries nothing; keep it as an empty segment
	 * so the counts stay true, without looking at its address. */
	if (!d->len) {
		e->iov[n] = (struct iovec){ NULL, 0 };
		return 0;
	}
	p = gpa_ptr(q->mem, d->addr, d->len);
	if (!p)
		return -EIO;
	if ((d->flags & VIRTQ_DESC_F_WRITE) && guest_mem_code(q->mem, d->addr, d->len))
		e->code = true;
	e->iov[n] = (struct iovec){ p, d->len };
	return 0;
}

static void read_desc(const uint8_t *table, uint16_t i, struct vdesc *d)
{
	const uint8_t *p = table + 16ULL * i;

	/* One copy: the guest may rewrite the entry under us. */
	uint8_t raw[16];
	memcpy(raw, p, sizeof(raw));
	d->addr = get_le64(raw);
	d->len = get_le32(raw + 8);
	d->flags = get_le16(raw + 12);
	d->next = get_le16(raw + 14);
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	const uint8_t *table;
	uint16_t avail_idx, head, i, size = q->size;
	unsigned limit, hops = 0;
	bool in_indirect = false;
	struct vdesc d;

	if (!q->enabled)
		return 0;
	if (q->broken)
		return -EIO;
	avail_idx = load16(q->avail + 2);
	if (avail_idx == q->last_avail)
		return 0;
	/* The driver cannot have more than size buffers outstanding. */
	if ((uint16_t)(avail_idx - q->last_avail) > size)
		return broken(q);
	/* Read the ring entry and descriptors only after seeing idx. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head = load16(q->avail + 4 + 2 * (q->last_avail & (size - 1)));
	if (head >= size)
		return broken(q);

	e->head = head;
	e->nout = e->nin = 0;
	e->out_len = e->in_len = 0;
	e->code = false;
	table = q->desc;
	limit = size;
	i = head;
	for (;;) {
		if (++hops > limit)
			return broken(q); /* a loop, or longer than the table */
		read_desc(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* 2.7.5.3: only with the feature, not nested, not
			 * chained, a whole number of entries. */
			if (!q->indirect || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT) ||
			    !d.len || d.len % 16 || d.len / 16 > VIRTQ_MAX_SEGS)
				return broken(q);
			table = gpa_ptr(q->mem, d.addr, d.len);
			if (!table)
				return broken(q);
			in_indirect = true;
			limit = d.len / 16;
			hops = 0;
			i = 0;
			continue;
		}
		if (add_segment(q, e, &d))
			return broken(q);
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= limit)
			return broken(q);
	}
	if (e->code)
		atomic_fetch_or(&q->code_heads[head >> 3], (uint8_t)(1u << (head & 7)));
	q->last_avail++;
	return 1;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	uint8_t *ent;

	pthread_mutex_lock(&q->lock);
	if (!q->enabled || head >= q->size) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	ent = q->used + 4 + 8 * (q->used_idx & (q->size - 1));
	__atomic_store_n((uint32_t *)ent, (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n((uint32_t *)(ent + 4), len, __ATOMIC_RELAXED);
	q->used_idx++;
	/* What the device wrote may have been code: the CPU that ran the old
	 * code hears of it before the driver can see the buffer back. */
	if (atomic_load_explicit(&q->code_heads[head >> 3], memory_order_relaxed) & (1u << (head & 7))) {
		atomic_fetch_and(&q->code_heads[head >> 3], (uint8_t)~(1u << (head & 7)));
		guest_mem_code_written(q->mem);
	}
	/* The entry before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	store16(q->used + 2, q->used_idx);
	pthread_mutex_unlock(&q->lock);
}

/* 2.7.7.2: interrupt when used_idx passed used_event since the last check. */
static bool need_event(uint16_t event, uint16_t now, uint16_t old)
{
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

void virtq_notify(struct virtq *q)
{
	bool fire;

	pthread_mutex_lock(&q->lock);
	if (!q->enabled) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	/* Our used idx store before the driver's flags / used_event load. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		uint16_t event = load16(q->avail + 4 + 2 * q->size);
		fire = !q->signalled_valid || need_event(event, q->used_idx, q->signalled_used);
		q->signalled_used = q->used_idx;
		q->signalled_valid = true;
	} else {
		fire = !(load16(q->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	pthread_mutex_unlock(&q->lock);
	if (fire && q->interrupt)
		q->interrupt(q->opaque, q);
}

void virtq_set_kicks(struct virtq *q, bool on)
{
	if (!q->enabled)
		return;
	if (q->event_idx) {
		/* avail_event: kick us when avail idx moves past last_avail. */
		if (on)
			store16(q->used + 4 + 8 * q->size, q->last_avail);
	} else {
		store16(q->used, on ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_has_avail(struct virtq *q)
{
	return q->enabled && !q->broken && load16(q->avail + 2) != q->last_avail;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = MIN(l - skip, len - done);
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = MIN(l - skip, len - done);
		memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, l);
		done += l;
		skip = 0;
	}
	return done;
}
