/* virtio 1.x: split virtqueues (queue.c) and the modern virtio-pci
 * transport (pci.c), under src/devices/virtio/. A device (blk.c, net.c,
 * rng.c) is one file on top: it fills a struct virtio_device_ops and pops
 * and pushes chains; it never touches rings, registers or interrupts.
 *
 * Everything in guest memory is hostile: virtq_pop checks every index,
 * descriptor, length and address before the device sees a byte, and
 * returns an error rather than trusting it. */
#ifndef KUMO_VIRTIO_H
#define KUMO_VIRTIO_H

#include <pthread.h>
#include <sys/uio.h>

#include "kumo/memory.h"
#include "kumo/util.h"

struct machine;

/* Device ids (virtio 1.2, 5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_RNG     4

/* Feature bits the transport and queue code own. */
#define VIRTIO_F_INDIRECT_DESC  28
#define VIRTIO_F_EVENT_IDX      29
#define VIRTIO_F_VERSION_1      32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED      128

#define VIRTQ_MAX_SIZE  1024  /* queue size limit (power of two) */
#define VIRTQ_MAX_SEGS  260   /* segments of one chain the device accepts */
#define VIRTIO_NO_VECTOR 0xffff

/* A split virtqueue as the device sees it. The transport sets it up;
 * devices only pop and push. pop is for one thread at a time (the device's
 * own); push and notify may come from any thread (they take lock). */
struct virtq {
	const struct guest_mem *mem;
	uint16_t size;          /* set by the driver, <= max_size */
	uint16_t max_size;
	bool enabled;
	bool event_idx, indirect;  /* negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host pointers of the three rings, checked once when enabled. */
	uint8_t *desc, *avail, *used;
	uint16_t last_avail;    /* next avail entry to pop */
	uint16_t used_idx;      /* next used entry to fill */
	uint16_t signalled_used;  /* used_idx at the last interrupt */
	bool signalled_valid;
	bool broken;            /* the driver broke the rules */
	uint16_t vector;        /* MSI-X vector (transport) */
	/* Chains (by head) with a device-writable buffer where a software
	 * CPU may hold decoded code (guest_mem_code): their push says so. */
	_Atomic uint8_t code_heads[VIRTQ_MAX_SIZE / 8];
	pthread_mutex_t lock;   /* push / notify */
	/* Interrupt the driver (set by the transport). */
	void (*interrupt)(void *opaque, struct virtq *q);
	void *opaque;
};

/* One chain popped from a queue: the device-readable segments ("out", the
 * driver's request) first, then the device-writable ones ("in"). iov_base
 * points into guest memory; each segment is inside one RAM region. */
struct virtq_elem {
	uint16_t head;
	uint16_t nout, nin;
	uint64_t out_len, in_len;  /* total bytes of each part */
	bool code;                 /* a writable segment may hold decoded code */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Queue lifetime (transport and tests). */
void virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size);
void virtq_destroy(struct virtq *q);
/* Check the rings' addresses against guest memory and start the queue:
 * -EINVAL when the size is not a power of two <= max_size or a ring is not
 * in RAM (the queue stays disabled). */
int virtq_enable(struct virtq *q) WUR;
void virtq_reset(struct virtq *q);

/* 1: *e holds the next chain; 0: nothing available; -EIO: the chain breaks
 * the rules (loop, too long, out of RAM, bad index, writable before
 * readable...) and the queue is marked broken (the device should stop
 * using it; the transport reports NEEDS_RESET). */
int virtq_pop(struct virtq *q, struct virtq_elem *e) WUR;
/* Hand a chain back: len bytes written into its device-writable part. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* After pushing: interrupt the driver unless it suppressed interrupts
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). */
void virtq_notify(struct virtq *q);
/* Ask (or not) for kicks when the driver adds buffers (used flags or
 * avail_event); after enabling, re-check with virtq_pop: a buffer may have
 * come in between. */
void virtq_set_kicks(struct virtq *q, bool on);
bool virtq_has_avail(struct virtq *q);

/* Copy between a chain's segments and a flat buffer. Return bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);

/* ---- the transport (virtio-pci, modern only) ---- */
struct virtio_dev;

struct virtio_device_ops {
	uint16_t device_id;      /* VIRTIO_ID_* */
	uint16_t nr_queues;
	uint16_t queue_size;     /* max size of each queue */
	uint64_t features;       /* device-specific offered bits */
	uint32_t config_size;    /* bytes of device config space */
	/* Device config space; off + len <= config_size. Device lock held. */
	void (*config_read)(void *opaque, uint32_t off, uint8_t *data, unsigned len);
	void (*config_write)(void *opaque, uint32_t off, const uint8_t *data, unsigned len);
	/* DRIVER_OK: features are final and the enabled queues usable.
	 * Non-zero: the device cannot run (the transport sets NEEDS_RESET). */
	int (*start)(void *opaque, uint64_t features);
	/* Queue q was kicked (or has work at start). Runs on the machine's
	 * event-loop thread with the device lock held. */
	void (*kick)(void *opaque, unsigned q);
	/* Driver reset: stop touching the queues; return only once no other
	 * thread of the device will pop or push. Device lock held. */
	void (*reset)(void *opaque);
};

/* Creates the virtio-pci device (vendor 0x1af4, device 0x1040 + id) and puts
 * it on the PCI bus; name is for messages ("virtio-blk0"). ops is kept, not
 * copied, and read until after destroy(opaque): make it static. The transport
 * lives until machine_destroy; destroy(opaque) runs then, after the vCPUs
 * and event loop are gone. */
int virtio_pci_create(struct machine *m, const char *name, const struct virtio_device_ops *ops,
		      void *opaque, void (*destroy)(void *opaque), struct virtio_dev **out) WUR;
struct virtq *virtio_queue(struct virtio_dev *d, unsigned i);
/* The device lock: held around ops callbacks; a device takes it in its own
 * event handlers (tap readable, completion) before touching queues. */
void virtio_lock(struct virtio_dev *d);
void virtio_unlock(struct virtio_dev *d);
/* Device lock held: is DRIVER_OK set and no reset pending? */
bool virtio_running(struct virtio_dev *d);
/* Config space changed (link status, capacity): config interrupt. */
void virtio_config_changed(struct virtio_dev *d);
/* The device cannot go on: set NEEDS_RESET and tell the driver. */
void virtio_set_broken(struct virtio_dev *d, const char *why);
struct machine *virtio_machine(struct virtio_dev *d);

#endif
