/* The machine's small legacy devices. Each lives in one file under
 * src/devices/ and registers itself on the port bus. */
#ifndef KUMO_DEVICES_H
#define KUMO_DEVICES_H

#include "kumo/util.h"

struct machine;
struct machine_disk;
struct machine_nic;
struct serial;

/* ---- 8250/16550A UART (serial.c) ---- */
#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ  4
#define SERIAL_RX_FIFO   1024

struct serial_backend {
	/* Bytes the guest transmits (called with the UART's lock held). */
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	/* The receive FIFO has room again after being full. */
	void (*rx_room)(void *opaque);
	void *opaque;
};

int serial_create(struct machine *m, uint16_t base, unsigned irq,
		  const struct serial_backend *be, struct serial **out) WUR;
/* The machine frees the UART (machine_own). Host → guest: queues up to len bytes, returns how many were taken. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
size_t serial_rx_room(struct serial *s);

/* ---- i8042: the reset line only (i8042.c) ---- */
int i8042_create(struct machine *m) WUR;

/* ---- ACPI sleep control and reset registers (acpi_pm.c) ---- */
int acpi_pm_create(struct machine *m) WUR;

/* ---- test device: exit port 0xf4, doorbell 0xf8 (testdev.c) ---- */
#define TESTDEV_EXIT_PORT     0xf4
#define TESTDEV_DOORBELL_PORT 0xf8
int testdev_create(struct machine *m) WUR;

/* ---- virtio devices on PCI (src/devices/virtio/) ---- */
/* Disk index (0 → vda). On failure *why says what is wrong with the disk
 * in one line ("no such file", "not a regular file or block device"...). */
int virtio_blk_create(struct machine *m, const struct machine_disk *disk, unsigned index,
		      const char **why) WUR;
/* NIC index (0 → eth0). *why: "cannot create tap NAME: ...", ... */
int virtio_net_create(struct machine *m, const struct machine_nic *nic, unsigned index,
		      const char **why) WUR;
int virtio_rng_create(struct machine *m) WUR;

#endif
