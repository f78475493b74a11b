/* virtio-blk (virtio 1.2, 5.2) on a disk image (include/kumo/block.h).
 *
 * One request queue. The kick handler (event-loop thread, device lock
 * held) pops chains, checks them (blk_req.c) and hands them to a small pool
 * of worker threads that make the blocking calls of the image's format and
 * complete the requests themselves (virtq_push + virtq_notify take the
 * queue's own lock, not the device's). A worker pool rather than io_uring:
 * the format vtable stays synchronous, which a qcow2 driver (metadata
 * reads, cluster allocation) wants, and it needs no kernel feature.
 *
 * Disk sizes that are not a multiple of 512 bytes: the capacity rounds up;
 * the partial last sector reads as the file's bytes then zeros, and a write
 * or write-zeroes reaching past the end of the file fails (S_IOERR), so
 * the image never grows. */
#include "kumo/block.h"
#include "kumo/devices.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/virtio_blk.h"
#include "kumo/workpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLK_QUEUE_SIZE   256
#define BLK_SEG_MAX      (BLK_QUEUE_SIZE - 2)   /* data segments of one request */
#define BLK_THREADS      4
#define BLK_MAX_RANGE_SECTORS (1u << 22)        /* 2 GiB per discard range */
#define BLK_DISCARD_ALIGN 8                     /* sectors: 4 KiB, the page */
#define BLK_CONFIG_SIZE  60                     /* up to write_zeroes_may_unmap */

struct blk_work {
	struct work work;
	struct vblk *b;
	struct virtq *q;
	struct blk_work *next_free;
	struct blk_req req;
	struct virtq_elem elem;
};

struct vblk {
	struct virtio_dev *dev;
	struct blk_image *img;
	struct workpool *pool;
	struct virtio_blk_limits lim;
	uint8_t config[BLK_CONFIG_SIZE];
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	size_t id_len;
	char name[16];

	pthread_mutex_t lock;       /* inflight, free list */
	pthread_cond_t idle;
	unsigned inflight;
	struct blk_work *free;
	bool warned;
};

static struct blk_work *get_work(struct vblk *b)
{
	struct blk_work *w;

	pthread_mutex_lock(&b->lock);
	w = b->free;
	if (w)
		b->free = w->next_free;
	pthread_mutex_unlock(&b->lock);
	if (!w && (w = malloc(sizeof(*w))))
		w->b = b;
	return w;
}

/* Called by a worker after its push, or by the kick handler. */
static void put_work(struct vblk *b, struct blk_work *w, bool was_inflight)
{
	pthread_mutex_lock(&b->lock);
	w->next_free = b->free;
	b->free = w;
	if (was_inflight && !--b->inflight)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
}

static void io_error(struct vblk *b, const char *what, int err)
{
	/* Once: a guest hammering a failing disk must not flood the log. */
	if (!__atomic_exchange_n(&b->warned, true, __ATOMIC_RELAXED))
		log_warn("%s: %s %s failed: %s (further errors not shown)", b->name, what,
			 b->img->path, strerror(-err));
}

/* Carries out a checked request; returns its status. */
static uint8_t do_request(struct vblk *b, struct blk_req *r)
{
	struct blk_image *img = b->img;
	uint64_t off = r->sector * VIRTIO_BLK_SECTOR;
	int err = 0;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		err = img->ops->preadv(img, r->iov, (int)r->niov, off);
		if (err)
			io_error(b, "read of", err);
		break;
	case VIRTIO_BLK_T_OUT:
		if (off + r->len > img->size)
			return VIRTIO_BLK_S_IOERR; /* the partial last sector */
		err = img->ops->pwritev(img, r->iov, (int)r->niov, off);
		if (err)
			io_error(b, "write to", err);
		break;
	case VIRTIO_BLK_T_FLUSH:
		err = img->ops->flush(img);
		if (err)
			io_error(b, "flush of", err);
		break;
	case VIRTIO_BLK_T_DISCARD:
		for (unsigned i = 0; i < r->nranges && !err; i++) {
			uint64_t start = r->ranges[i].sector * VIRTIO_BLK_SECTOR;
			uint64_t end = MIN(start + (uint64_t)r->ranges[i].num_sectors * VIRTIO_BLK_SECTOR,
					   img->size);
			if (start < end)
				err = img->ops->discard(img, start, end - start);
			if (err == -EOPNOTSUPP)
				err = 0; /* a discard is a hint */
		}
		if (err)
			io_error(b, "discard on", err);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (unsigned i = 0; i < r->nranges && !err; i++) {
			uint64_t start = r->ranges[i].sector * VIRTIO_BLK_SECTOR;
			uint64_t len = (uint64_t)r->ranges[i].num_sectors * VIRTIO_BLK_SECTOR;
			if (start + len > img->size)
				return VIRTIO_BLK_S_IOERR;
			err = img->ops->write_zeroes(img, start, len, r->ranges[i].unmap);
		}
		if (err)
			io_error(b, "write-zeroes on", err);
		break;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
	return err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* Bytes the device wrote into the chain's writable part, status included. */
static uint32_t used_len(const struct blk_req *r)
{
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID)
		return (uint32_t)MIN(r->len + 1, UINT32_MAX);
	return 1;
}

static void worker_fn(struct work *work)
{
	struct blk_work *w = (struct blk_work *)work;
	struct vblk *b = w->b;

	*w->req.status = do_request(b, &w->req);
	virtq_push(w->q, w->elem.head, used_len(&w->req));
	virtq_notify(w->q);
	put_work(b, w, true);
}

static void get_id(struct vblk *b, struct blk_req *r)
{
	size_t at = 0;

	/* Up to 20 bytes, NUL-padded when shorter (5.2.6: no terminator
	 * when it is exactly 20). */
	for (unsigned i = 0; i < r->niov; i++) {
		for (size_t k = 0; k < r->iov[i].iov_len; k++, at++)
			((uint8_t *)r->iov[i].iov_base)[k] = at < b->id_len ? b->id[at] : 0;
	}
	*r->status = VIRTIO_BLK_S_OK;
}

/* One popped chain; true when it was completed here (needs a notify). */
static bool handle(struct vblk *b, struct virtq *q, struct blk_work *w)
{
	int rc = virtio_blk_parse(&w->elem, &b->lim, &w->req);

	if (rc < 0) { /* no byte to answer in */
		virtq_push(q, w->elem.head, 0);
		return true;
	}
	if (rc == VIRTIO_BLK_REQ_DONE) {
		*w->req.status = w->req.status_code;
		virtq_push(q, w->elem.head, 1);
		return true;
	}
	if (w->req.type == VIRTIO_BLK_T_GET_ID) {
		get_id(b, &w->req);
		virtq_push(q, w->elem.head, used_len(&w->req));
		return true;
	}
	w->q = q;
	w->work.fn = worker_fn;
	pthread_mutex_lock(&b->lock);
	b->inflight++;
	pthread_mutex_unlock(&b->lock);
	workpool_submit(b->pool, &w->work);
	return false;
}

static void blk_kick(void *opaque, unsigned qi)
{
	struct vblk *b = opaque;
	struct virtq *q = virtio_queue(b->dev, qi);
	bool notify = false;
	int got;

	for (;;) {
		struct blk_work *w;
		while ((w = get_work(b))) {
			got = virtq_pop(q, &w->elem);
			if (got <= 0) {
				put_work(b, w, false);
				break;
			}
			if (handle(b, q, w)) {
				notify = true;
				put_work(b, w, false);
			}
		}
		if (!w) {
			log_warn("%s: out of memory, requests wait for the next kick", b->name);
			break;
		}
		if (got < 0) {
			virtio_set_broken(b->dev, "malformed request chain");
			break;
		}
		virtq_set_kicks(q, true);
		if (!virtq_has_avail(q))
			break;
	}
	if (notify)
		virtq_notify(q);
}

static int blk_start(void *opaque, uint64_t features)
{
	struct vblk *b = opaque;

	b->lim.discard = features & (1ULL << VIRTIO_BLK_F_DISCARD);
	b->lim.write_zeroes = features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	return 0;
}

static void blk_reset(void *opaque)
{
	struct vblk *b = opaque;

	pthread_mutex_lock(&b->lock);
	while (b->inflight)
		pthread_cond_wait(&b->idle, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

static void blk_config_read(void *opaque, uint32_t off, uint8_t *data, unsigned len)
{
	struct vblk *b = opaque;

	if (off > BLK_CONFIG_SIZE || len > BLK_CONFIG_SIZE - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, b->config + off, len);
}

static void blk_config_write(void *opaque, uint32_t off, const uint8_t *data, unsigned len)
{
	(void)opaque, (void)off, (void)data, (void)len; /* nothing writable (no CONFIG_WCE) */
}

static void blk_destroy(void *opaque)
{
	struct vblk *b = opaque;

	workpool_destroy(b->pool);
	while (b->free) {
		struct blk_work *w = b->free;
		b->free = w->next_free;
		free(w);
	}
	blk_close(b->img);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->idle);
	free(b);
}

static void fill_config(struct vblk *b)
{
	uint8_t *c = b->config;

	put_le64(c + 0, b->lim.capacity);
	put_le32(c + 12, BLK_SEG_MAX);                   /* seg_max */
	put_le32(c + 20, VIRTIO_BLK_SECTOR);             /* blk_size */
	put_le32(c + 36, b->lim.max_discard_sectors);
	put_le32(c + 40, b->lim.max_ranges);             /* max_discard_seg */
	put_le32(c + 44, BLK_DISCARD_ALIGN);             /* discard_sector_alignment */
	put_le32(c + 48, b->lim.max_write_zeroes_sectors);
	put_le32(c + 52, b->lim.max_ranges);             /* max_write_zeroes_seg */
	c[56] = 1;                                        /* write_zeroes_may_unmap */
}

/* "disk PATH: why", owned by the machine (it outlives machine_create's
 * caller's message). */
static const char *disk_error(struct machine *m, const char *path, const char *why)
{
	char *s;

	if (asprintf(&s, "disk %s: %s", path, why) < 0)
		return why;
	if (machine_own(m, free, s))
		return why;
	return s;
}

#define BLK_OPS(offered)                                \
	{                                               \
		.device_id = VIRTIO_ID_BLOCK,           \
		.nr_queues = 1,                         \
		.queue_size = BLK_QUEUE_SIZE,           \
		.features = (offered),                  \
		.config_size = BLK_CONFIG_SIZE,         \
		.config_read = blk_config_read,         \
		.config_write = blk_config_write,       \
		.start = blk_start,                     \
		.kick = blk_kick,                       \
		.reset = blk_reset,                     \
	}
#define BLK_F_COMMON (1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE | \
		      1ULL << VIRTIO_BLK_F_FLUSH)

/* Static: the transport reads its ops until after destroy(opaque). */
static const struct virtio_device_ops blk_ops_rw =
	BLK_OPS(BLK_F_COMMON | 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
static const struct virtio_device_ops blk_ops_ro = BLK_OPS(BLK_F_COMMON | 1ULL << VIRTIO_BLK_F_RO);

int virtio_blk_create(struct machine *m, const struct machine_disk *disk, unsigned index,
		      const char **why)
{
	const char *reason = NULL;
	struct vblk *b;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b) {
		*why = "out of memory";
		return -ENOMEM;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->idle, NULL);
	snprintf(b->name, sizeof(b->name), "virtio-blk%u", index);
	if ((err = blk_open2(disk->path, &(struct blk_open_opts){ .read_only = disk->read_only,
								 .format = disk->format },
			     &b->img, &reason))) {
		*why = disk_error(m, disk->path, reason);
		goto fail;
	}
	if (disk->id && *disk->id) {
		b->id_len = MIN(strlen(disk->id), sizeof(b->id));
		memcpy(b->id, disk->id, b->id_len);
	} else {
		b->id_len = (size_t)snprintf((char *)b->id, sizeof(b->id), "kumo-vd%c",
					     (char)('a' + index % 26));
	}
	b->lim = (struct virtio_blk_limits){
		.capacity = (b->img->size + VIRTIO_BLK_SECTOR - 1) / VIRTIO_BLK_SECTOR,
		.read_only = disk->read_only,
		.max_discard_sectors = BLK_MAX_RANGE_SECTORS,
		.max_write_zeroes_sectors = BLK_MAX_RANGE_SECTORS,
		.max_ranges = VIRTIO_BLK_MAX_RANGES,
	};
	if (b->img->size % VIRTIO_BLK_SECTOR)
		log_warn("%s: %s is %llu bytes, not a multiple of 512: the last sector reads "
			 "padded with zeros and cannot be written", b->name, disk->path,
			 (unsigned long long)b->img->size);
	fill_config(b);
	if ((err = workpool_create(BLK_THREADS, b->name, &b->pool))) {
		*why = "cannot start the disk's I/O threads";
		goto fail;
	}
	err = virtio_pci_create(m, b->name, disk->read_only ? &blk_ops_ro : &blk_ops_rw, b,
				blk_destroy, &b->dev);
	if (err)
		*why = "cannot create the virtio-blk device";
	return err; /* on failure, blk_destroy has run */
fail:
	blk_destroy(b);
	return err;
}
