/*
 * A modern virtio-pci device (virtio 1.2, 4.1) on PCI bus 0, polled or
 * with MSI-X: finding it and its capabilities, the init sequence (reset,
 * feature negotiation, queue setup, DRIVER_OK), the split virtqueue's
 * layout (2.7) and virtio-blk's request header (5.2).
 *
 * Errors go to the caller's fail hook with a virtio_err, so a guest can
 * give each its own exit code; the hook must not return.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* Capability types (4.1.4) and common configuration offsets (4.1.4.3). */
enum {
	VIRTIO_CAP_COMMON = 1, VIRTIO_CAP_NOTIFY = 2, VIRTIO_CAP_ISR = 3,
	VIRTIO_CAP_DEVICE = 4, VIRTIO_CAP_TYPES = 5,
};
enum {
	VIRTIO_C_DFSELECT = 0x00, VIRTIO_C_DF = 0x04, VIRTIO_C_GFSELECT = 0x08, VIRTIO_C_GF = 0x0c,
	VIRTIO_C_MSIX_CONFIG = 0x10, VIRTIO_C_NUM_QUEUES = 0x12, VIRTIO_C_STATUS = 0x14,
	VIRTIO_C_CONFIG_GEN = 0x15, VIRTIO_C_Q_SELECT = 0x16, VIRTIO_C_Q_SIZE = 0x18,
	VIRTIO_C_Q_MSIX = 0x1a, VIRTIO_C_Q_ENABLE = 0x1c, VIRTIO_C_Q_NOTIFY_OFF = 0x1e,
	VIRTIO_C_Q_DESC = 0x20, VIRTIO_C_Q_AVAIL = 0x28, VIRTIO_C_Q_USED = 0x30,
	VIRTIO_COMMON_LEN = 0x38,
};

/* Device status (2.1). */
#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER      2
#define VIRTIO_S_DRIVER_OK   4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 64
#define VIRTIO_S_FAILED      128

#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_NO_VECTOR   0xffff

/* Split virtqueue (2.7). n: the queue size. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
#define VRING_DESC_F_NEXT  1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_used_elem {
	uint32_t id, len;
};
#define VRING_AVAIL(n) struct { uint16_t flags, idx, ring[n], used_event; }
#define VRING_USED(n) struct { uint16_t flags, idx; struct vring_used_elem ring[n]; uint16_t avail_event; }

/* virtio-blk requests (5.2.6). */
enum { VIRTIO_BLK_T_IN = 0, VIRTIO_BLK_T_OUT = 1, VIRTIO_BLK_T_FLUSH = 4, VIRTIO_BLK_T_GET_ID = 8 };
enum { VIRTIO_BLK_S_OK = 0, VIRTIO_BLK_S_IOERR = 1, VIRTIO_BLK_S_UNSUPP = 2 };
struct virtio_blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

enum virtio_err {
	VIRTIO_E_NO_DEVICE = 1, /* no such device on bus 0 */
	VIRTIO_E_CAPS,          /* a capability missing or malformed */
	VIRTIO_E_BAR,           /* a capability's BAR unusable */
	VIRTIO_E_RESET,         /* status did not read back 0 after a reset */
	VIRTIO_E_FEATURES,      /* a wanted feature not offered */
	VIRTIO_E_FEATURES_OK,   /* the device refused our features */
	VIRTIO_E_MSIX,          /* a vector not accepted */
	VIRTIO_E_QUEUE,         /* the queue missing, too small or not enabled */
	VIRTIO_E_STATUS,        /* the device set NEEDS_RESET or FAILED */
};

struct virtio_pci {
	/* Set by the caller before virtio_pci_find. */
	__attribute__((noreturn)) void (*fail)(enum virtio_err err, const char *fmt, va_list ap);
	const char *log;                    /* prefix of progress lines; NULL: quiet */
	/* Called for each non-vendor capability (e.g. MSI-X); may be NULL. */
	void (*other_cap)(unsigned slot, uint8_t off, uint8_t id);
	/* Found. */
	unsigned slot;
	uint64_t cap_addr[VIRTIO_CAP_TYPES]; /* BAR address + offset, per cfg_type */
	uint32_t cap_len[VIRTIO_CAP_TYPES];
	uint32_t notify_mult;
};

/* Finds vendor:device 1af4:device_id, its common, notify, ISR and device
 * capabilities (the first of each type; the device one at least dev_len
 * bytes), maps BARs above 4 GiB and enables memory decoding and bus
 * mastering. */
void virtio_pci_find(struct virtio_pci *v, uint16_t device_id, uint32_t dev_len);

static inline uint64_t virtio_common(const struct virtio_pci *v, unsigned off)
{
	return v->cap_addr[VIRTIO_CAP_COMMON] + off;
}

uint8_t virtio_status(const struct virtio_pci *v);
/* Resets and waits (bounded) for the status to read back 0. */
void virtio_reset(struct virtio_pci *v);
/* Reset, ACKNOWLEDGE, DRIVER, then the features: fails unless every bit
 * of want is offered; writes want, sets FEATURES_OK and checks it stuck. */
void virtio_negotiate(struct virtio_pci *v, uint64_t want);
/* The configuration-change MSI-X vector (checked unless NO_VECTOR). */
void virtio_config_vector(struct virtio_pci *v, uint16_t vector);
/* Sets up and enables queue q with size entries (the device must offer
 * at least that many) and MSI-X vector (checked unless NO_VECTOR) on the
 * rings at desc, avail, used. Returns the queue's notify address. */
uint64_t virtio_queue_setup(struct virtio_pci *v, uint16_t q, uint16_t size, uint16_t vector,
			    const void *desc, const void *avail, const volatile void *used);
/* Sets DRIVER_OK; fails if the device says NEEDS_RESET or FAILED. */
void virtio_driver_ok(struct virtio_pci *v);
/* A 64-bit device-configuration field, read again while the generation
 * counter moves. */
uint64_t virtio_config_read64(const struct virtio_pci *v, unsigned off);

#endif
