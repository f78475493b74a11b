/* The modern virtio-pci transport (virtio 1.2, 4.1): registers in BAR 0,
 * MSI-X in BAR 1, a kick per queue through an eventfd (KVM's ioeventfd on
 * kvm, so a kick never exits to the vCPU thread), processed on the
 * machine's event-loop thread. Legacy (0.9) devices are not offered.
 *
 * BAR 0:  0x0000 common configuration   0x1000 ISR status
 *         0x2000 device configuration   0x3000 notifications (4 bytes/queue)
 */
#include "kumo/virtio.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/pci.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VIRTIO_MAX_QUEUES 16

#define BAR_SIZE      0x4000
#define COMMON_OFF    0x0000
#define COMMON_LEN    0x38
#define ISR_OFF       0x1000
#define DEVCFG_OFF    0x2000
#define DEVCFG_MAX    0x1000
#define NOTIFY_OFF    0x3000
#define NOTIFY_MULT   4

enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4 };

/* Offsets in the common configuration (4.1.4.3). */
enum {
	C_DFSELECT = 0x00, C_DF = 0x04, C_GFSELECT = 0x08, C_GF = 0x0c,
	C_MSIX = 0x10, C_NUMQ = 0x12, C_STATUS = 0x14, C_CFGGEN = 0x15,
	C_Q_SELECT = 0x16, C_Q_SIZE = 0x18, C_Q_MSIX = 0x1a, C_Q_ENABLE = 0x1c,
	C_Q_NOFF = 0x1e, C_Q_DESCLO = 0x20, C_Q_DESCHI = 0x24, C_Q_AVAILLO = 0x28,
	C_Q_AVAILHI = 0x2c, C_Q_USEDLO = 0x30, C_Q_USEDHI = 0x34,
};

struct virtio_dev;

struct kick {
	struct virtio_dev *d;
	unsigned q;
	int efd;
	bool ioeventfd;   /* registered with the engine at notify_addr */
	uint64_t notify_addr;
};

struct virtio_dev {
	struct machine *m;
	char name[32];
	const struct virtio_device_ops *ops;
	void *opaque;
	void (*destroy)(void *opaque);
	struct pci_device pci;
	pthread_mutex_t lock;

	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t config_generation;
	uint16_t config_vector;
	uint16_t queue_select;
	atomic_uint isr;
	bool started;

	struct virtq vq[VIRTIO_MAX_QUEUES];
	struct kick kicks[VIRTIO_MAX_QUEUES];
};

/* ---- interrupts ---- */

static void raise_isr(struct virtio_dev *d, unsigned bit)
{
	atomic_fetch_or(&d->isr, bit);
	pci_intx(&d->pci, true);
}

static void queue_interrupt(void *opaque, struct virtq *q)
{
	struct virtio_dev *d = opaque;

	if (pci_msix_enabled(&d->pci))
		pci_msix_notify(&d->pci, q->vector);
	else
		raise_isr(d, 1);
}

void virtio_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	if (pci_msix_enabled(&d->pci))
		pci_msix_notify(&d->pci, d->config_vector);
	else
		raise_isr(d, 2);
}

void virtio_set_broken(struct virtio_dev *d, const char *why)
{
	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_info("%s: %s; the device needs a reset", d->name, why);
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_changed(d);
}

/* ---- lifecycle ---- */

void virtio_lock(struct virtio_dev *d) { pthread_mutex_lock(&d->lock); }
void virtio_unlock(struct virtio_dev *d) { pthread_mutex_unlock(&d->lock); }
struct machine *virtio_machine(struct virtio_dev *d) { return d->m; }

bool virtio_running(struct virtio_dev *d)
{
	return d->started && !(d->status & VIRTIO_STATUS_NEEDS_RESET);
}

struct virtq *virtio_queue(struct virtio_dev *d, unsigned i)
{
	return i < d->ops->nr_queues ? &d->vq[i] : NULL;
}

/* Device lock held. */
static void device_reset(struct virtio_dev *d)
{
	if (d->started && d->ops->reset)
		d->ops->reset(d->opaque);
	d->started = false;
	for (unsigned i = 0; i < d->ops->nr_queues; i++)
		virtq_reset(&d->vq[i]);
	d->guest_features = 0;
	d->dfselect = d->gfselect = 0;
	d->status = 0;
	d->config_vector = VIRTIO_NO_VECTOR;
	d->queue_select = 0;
	atomic_store(&d->isr, 0);
	pci_intx(&d->pci, false);
}

static uint64_t offered(const struct virtio_dev *d)
{
	return d->host_features;
}

/* Device lock held: the driver wrote the status register. */
static void set_status(struct virtio_dev *d, uint8_t v)
{
	uint8_t old = d->status;

	if (!v) {
		device_reset(d);
		return;
	}
	/* FEATURES_OK only for a subset of what we offered, with VERSION_1. */
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if ((d->guest_features & ~offered(d)) ||
		    !(d->guest_features & (1ULL << VIRTIO_F_VERSION_1)))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	/* The driver cannot clear bits without a reset; keep NEEDS_RESET. */
	d->status = (uint8_t)(v | (old & VIRTIO_STATUS_NEEDS_RESET));
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) && !d->started) {
		if (!(d->status & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_set_broken(d, "DRIVER_OK without FEATURES_OK");
			return;
		}
		for (unsigned i = 0; i < d->ops->nr_queues; i++) {
			d->vq[i].event_idx = d->guest_features & (1ULL << VIRTIO_F_EVENT_IDX);
			d->vq[i].indirect = d->guest_features & (1ULL << VIRTIO_F_INDIRECT_DESC);
		}
		if (d->ops->start && d->ops->start(d->opaque, d->guest_features)) {
			virtio_set_broken(d, "the device cannot start");
			return;
		}
		d->started = true;
		/* Buffers the driver queued before DRIVER_OK: look at them. */
		for (unsigned i = 0; i < d->ops->nr_queues; i++) {
			uint64_t one = 1;
			if (d->vq[i].enabled && write(d->kicks[i].efd, &one, sizeof(one)) < 0)
				log_debug("%s: kick eventfd write failed", d->name);
		}
	}
}

/* ---- the common configuration ---- */

/* Device lock held: the value of the 32-bit-aligned word at off. */
static uint32_t common_read32(struct virtio_dev *d, unsigned off)
{
	struct virtq *q = d->queue_select < d->ops->nr_queues ? &d->vq[d->queue_select] : NULL;

	switch (off) {
	case C_DFSELECT: return d->dfselect;
	case C_DF: return d->dfselect < 2 ? (uint32_t)(offered(d) >> (32 * d->dfselect)) : 0;
	case C_GFSELECT: return d->gfselect;
	case C_GF: return d->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * d->gfselect)) : 0;
	case C_MSIX: return d->config_vector | (uint32_t)d->ops->nr_queues << 16;
	case C_STATUS: return d->status | (uint32_t)d->config_generation << 8 |
			      (uint32_t)d->queue_select << 16;
	case C_Q_SIZE: return q ? q->size | (uint32_t)q->vector << 16 : 0;
	case C_Q_ENABLE: return q ? q->enabled | (uint32_t)d->queue_select << 16 : 0;
	case C_Q_DESCLO: return q ? (uint32_t)q->desc_gpa : 0;
	case C_Q_DESCHI: return q ? (uint32_t)(q->desc_gpa >> 32) : 0;
	case C_Q_AVAILLO: return q ? (uint32_t)q->avail_gpa : 0;
	case C_Q_AVAILHI: return q ? (uint32_t)(q->avail_gpa >> 32) : 0;
	case C_Q_USEDLO: return q ? (uint32_t)q->used_gpa : 0;
	case C_Q_USEDHI: return q ? (uint32_t)(q->used_gpa >> 32) : 0;
	}
	return 0;
}

static uint16_t checked_vector(struct virtio_dev *d, uint16_t v)
{
	/* A vector the device does not have reads back as NO_VECTOR (4.1.5.1.2). */
	return v < d->pci.msix_nvec ? v : VIRTIO_NO_VECTOR;
}

static void set_addr(uint64_t *a, bool hi, uint32_t v)
{
	*a = hi ? (*a & 0xffffffffULL) | (uint64_t)v << 32 : (*a & ~0xffffffffULL) | v;
}

/* Device lock held: the driver wrote the field at off (its full width
 * after merging the bytes it wrote). */
static void common_write_field(struct virtio_dev *d, unsigned off, uint32_t v)
{
	struct virtq *q = d->queue_select < d->ops->nr_queues ? &d->vq[d->queue_select] : NULL;
	bool q_locked = q && q->enabled; /* a live queue's setup is fixed */

	switch (off) {
	case C_DFSELECT: d->dfselect = v; break;
	case C_GFSELECT: d->gfselect = v; break;
	case C_GF:
		if (d->gfselect < 2 && !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
			uint64_t mask = 0xffffffffULL << (32 * d->gfselect);
			d->guest_features = (d->guest_features & ~mask) |
					    ((uint64_t)v << (32 * d->gfselect));
		}
		break;
	case C_MSIX: d->config_vector = checked_vector(d, (uint16_t)v); break;
	case C_STATUS: set_status(d, (uint8_t)v); break;
	case C_Q_SELECT: d->queue_select = (uint16_t)v; break;
	case C_Q_SIZE:
		if (q && !q_locked)
			q->size = (uint16_t)v; /* checked when enabled */
		break;
	case C_Q_MSIX:
		if (q)
			q->vector = checked_vector(d, (uint16_t)v);
		break;
	case C_Q_ENABLE:
		if (q && !q_locked && (v & 1)) {
			q->event_idx = d->guest_features & (1ULL << VIRTIO_F_EVENT_IDX);
			q->indirect = d->guest_features & (1ULL << VIRTIO_F_INDIRECT_DESC);
			if (virtq_enable(q))
				virtio_set_broken(d, "a queue's rings are not in guest RAM");
			else if (d->started && write(d->kicks[d->queue_select].efd, &(uint64_t){ 1 }, 8) < 0)
				log_debug("%s: kick eventfd write failed", d->name);
		}
		break;
	case C_Q_DESCLO: case C_Q_DESCHI:
		if (q && !q_locked)
			set_addr(&q->desc_gpa, off == C_Q_DESCHI, v);
		break;
	case C_Q_AVAILLO: case C_Q_AVAILHI:
		if (q && !q_locked)
			set_addr(&q->avail_gpa, off == C_Q_AVAILHI, v);
		break;
	case C_Q_USEDLO: case C_Q_USEDHI:
		if (q && !q_locked)
			set_addr(&q->used_gpa, off == C_Q_USEDHI, v);
		break;
	}
}

/* Field boundaries of the common configuration: start, width. */
static const struct { uint8_t off, width; } common_fields[] = {
	{ C_DFSELECT, 4 }, { C_DF, 4 }, { C_GFSELECT, 4 }, { C_GF, 4 }, { C_MSIX, 2 },
	{ C_NUMQ, 2 }, { C_STATUS, 1 }, { C_CFGGEN, 1 }, { C_Q_SELECT, 2 }, { C_Q_SIZE, 2 },
	{ C_Q_MSIX, 2 }, { C_Q_ENABLE, 2 }, { C_Q_NOFF, 2 }, { C_Q_DESCLO, 4 }, { C_Q_DESCHI, 4 },
	{ C_Q_AVAILLO, 4 }, { C_Q_AVAILHI, 4 }, { C_Q_USEDLO, 4 }, { C_Q_USEDHI, 4 },
};

static void common_io(struct virtio_dev *d, unsigned off, uint8_t *data, unsigned len, bool is_write)
{
	if (off >= COMMON_LEN || len > COMMON_LEN - off) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write) {
		for (unsigned i = 0; i < len; i++) {
			unsigned at = off + i;
			data[i] = (uint8_t)(common_read32(d, at & ~3u) >> (8 * (at & 3)));
		}
		return;
	}
	/* Each field the write touches gets its merged new value. */
	for (size_t f = 0; f < ARRAY_SIZE(common_fields); f++) {
		unsigned fo = common_fields[f].off, fw = common_fields[f].width;
		if (off >= fo + fw || off + len <= fo)
			continue;
		uint32_t word = common_read32(d, fo & ~3u) >> (8 * (fo & 3));
		for (unsigned i = 0; i < fw; i++) {
			unsigned at = fo + i;
			if (at >= off && at < off + len) {
				word &= ~(0xffu << (8 * i));
				word |= (uint32_t)data[at - off] << (8 * i);
			}
		}
		if (fw < 4)
			word &= (1u << (8 * fw)) - 1;
		common_write_field(d, fo, word);
	}
}

static void bar0_io(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_dev *d = opaque;

	if (off >= NOTIFY_OFF) {
		/* A kick that did not take the engine's ioeventfd path. */
		uint64_t q = (off - NOTIFY_OFF) / NOTIFY_MULT, one = 1;
		if (!is_write) {
			memset(data, 0, len);
		} else if (q < d->ops->nr_queues &&
			   write(d->kicks[q].efd, &one, sizeof(one)) < 0) {
			log_debug("%s: kick eventfd write failed", d->name);
		}
		return;
	}
	if (off >= ISR_OFF && off < DEVCFG_OFF) {
		if (!is_write) {
			memset(data, 0, len);
			if (off == ISR_OFF) {
				/* Reading ISR clears it and lowers INTx (4.1.4.5). */
				data[0] = (uint8_t)atomic_exchange(&d->isr, 0);
				pci_intx(&d->pci, false);
			}
		}
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off < ISR_OFF) {
		common_io(d, (unsigned)off, data, len, is_write);
	} else {
		uint64_t o = off - DEVCFG_OFF;
		if (o >= d->ops->config_size || len > d->ops->config_size - o) {
			if (!is_write)
				memset(data, 0, len);
		} else if (is_write) {
			if (d->ops->config_write)
				d->ops->config_write(d->opaque, (uint32_t)o, data, len);
		} else {
			if (d->ops->config_read)
				d->ops->config_read(d->opaque, (uint32_t)o, data, len);
			else
				memset(data, 0, len);
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- kicks ---- */

static void on_kick(void *opaque, uint32_t events)
{
	struct kick *k = opaque;
	struct virtio_dev *d = k->d;
	uint64_t n;

	(void)events;
	if (read(k->efd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&d->lock);
	if (virtio_running(d) && d->vq[k->q].enabled && !d->vq[k->q].broken)
		d->ops->kick(d->opaque, k->q);
	pthread_mutex_unlock(&d->lock);
}

static void set_ioeventfds(struct virtio_dev *d, uint64_t bar, bool assign)
{
	for (unsigned i = 0; i < d->ops->nr_queues; i++) {
		struct kick *k = &d->kicks[i];
		if (assign == k->ioeventfd)
			continue;
		if (!assign) {
			if (d->m->accel->ioeventfd(d->m, k->notify_addr, 2, false, k->efd, false))
				log_debug("%s: cannot remove an ioeventfd", d->name);
			k->ioeventfd = false;
			continue;
		}
		k->notify_addr = bar + NOTIFY_OFF + NOTIFY_MULT * i;
		/* Linux kicks with a 16-bit write of the queue index. */
		k->ioeventfd = !d->m->accel->ioeventfd(d->m, k->notify_addr, 2, false, k->efd, true);
	}
}

static void bar_moved(struct pci_device *p, unsigned i, uint64_t old, uint64_t now)
{
	struct virtio_dev *d = p->opaque;

	(void)old;
	if (i != 0)
		return;
	set_ioeventfds(d, 0, false);
	/* Not while the guest sizes the BAR (all ones) or parks it at 0. */
	if (now >= PCI_MMIO_START && now < PCI_MMIO_END)
		set_ioeventfds(d, now, true);
}

/* ---- creation ---- */

static void add_cap(struct virtio_dev *d, uint8_t type, uint32_t off, uint32_t len, bool notify)
{
	uint8_t body[18] = { 0 };
	/* After id and next: cap_len, cfg_type, bar, id, padding[2], offset, length. */
	body[0] = notify ? 20 : 16;
	body[1] = type;
	body[2] = 0;  /* BAR 0 */
	put_le32(body + 6, off);
	put_le32(body + 10, len);
	put_le32(body + 14, NOTIFY_MULT);
	if (!pci_cap_add(&d->pci, PCI_CAP_ID_VNDR, body, notify ? 18 : 14))
		log_error("%s: PCI config space full", d->name);
}

static void virtio_dev_free(void *opaque)
{
	struct virtio_dev *d = opaque;
	/* The device's ops may go with its state: read them first. */
	unsigned nq = d->ops->nr_queues;

	for (unsigned i = 0; i < nq; i++) {
		struct kick *k = &d->kicks[i];
		if (k->efd < 0)
			continue;
		if (d->m->loop_ready)
			evloop_del(&d->m->loop, k->efd);
		if (k->ioeventfd && d->m->accel->ioeventfd(d->m, k->notify_addr, 2, false, k->efd, false))
			log_debug("%s: cannot remove an ioeventfd", d->name);
		close(k->efd);
	}
	d->ops = NULL;
	if (d->destroy)
		d->destroy(d->opaque);
	for (unsigned i = 0; i < nq; i++)
		virtq_destroy(&d->vq[i]);
	pci_device_remove(&d->pci);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int virtio_pci_create(struct machine *m, const char *name, const struct virtio_device_ops *ops,
		      void *opaque, void (*destroy)(void *opaque), struct virtio_dev **out)
{
	struct virtio_dev *d;
	int err;

	if (!ops->nr_queues || ops->nr_queues > VIRTIO_MAX_QUEUES || !ops->queue_size ||
	    ops->queue_size > VIRTQ_MAX_SIZE || (ops->queue_size & (ops->queue_size - 1)) ||
	    ops->config_size > DEVCFG_MAX || !ops->kick) {
		if (destroy)
			destroy(opaque);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		if (destroy)
			destroy(opaque);
		return -ENOMEM;
	}
	d->m = m;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ops = ops;
	d->opaque = opaque;
	d->destroy = destroy;
	pthread_mutex_init(&d->lock, NULL);
	d->host_features = ops->features | 1ULL << VIRTIO_F_VERSION_1 |
			   1ULL << VIRTIO_F_EVENT_IDX | 1ULL << VIRTIO_F_INDIRECT_DESC;
	d->config_vector = VIRTIO_NO_VECTOR;
	for (unsigned i = 0; i < ops->nr_queues; i++) {
		virtq_init(&d->vq[i], &m->mem, ops->queue_size);
		d->vq[i].interrupt = queue_interrupt;
		d->vq[i].opaque = d;
		d->kicks[i] = (struct kick){ .d = d, .q = i, .efd = -1 };
	}
	for (unsigned i = 0; i < ops->nr_queues; i++)
		d->kicks[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	/* Network controller, mass storage or "other": the class Linux shows. */
	uint32_t class_code = ops->device_id == VIRTIO_ID_NET ? 0x020000 :
			      ops->device_id == VIRTIO_ID_BLOCK ? 0x018000 : 0x00ff00;
	pci_device_init(&d->pci, d->name, 0x1af4, (uint16_t)(0x1040 + ops->device_id), class_code,
			0x1af4, (uint16_t)(0x1040 + ops->device_id));
	d->pci.opaque = d;
	d->pci.bar_moved = bar_moved;
	pci_bar_set(&d->pci, 0, BAR_SIZE, bar0_io, d);
	add_cap(d, CAP_COMMON, COMMON_OFF, COMMON_LEN, false);
	add_cap(d, CAP_ISR, ISR_OFF, 4, false);
	if (ops->config_size)
		add_cap(d, CAP_DEVICE, DEVCFG_OFF, ops->config_size, false);
	add_cap(d, CAP_NOTIFY, NOTIFY_OFF, NOTIFY_MULT * ops->nr_queues, true);

	if ((err = machine_own(m, virtio_dev_free, d)))
		return err;
	for (unsigned i = 0; i < ops->nr_queues; i++)
		if (d->kicks[i].efd < 0)
			return -EMFILE;
	/* A vector per queue and one for config changes. */
	if ((err = pci_msix_init(&d->pci, ops->nr_queues + 1u, 1)) ||
	    (err = pci_device_add(m, &d->pci)))
		return err;
	for (unsigned i = 0; i < ops->nr_queues; i++)
		if ((err = evloop_add(&m->loop, d->kicks[i].efd, EPOLLIN, on_kick, &d->kicks[i])))
			return err;
	set_ioeventfds(d, d->pci.bar[0].addr, true);
	if (out)
		*out = d;
	return 0;
}
