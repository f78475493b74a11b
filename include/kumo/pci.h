/* PCI: one bus (bus 0, segment 0) behind a host bridge reached through
 * configuration mechanism #1 (ports 0xcf8/0xcfc). kumo assigns every BAR
 * an address in the PCI window of the 32-bit hole when the device is added
 * (the guest may move it; the window's handler follows). Legacy INTx goes
 * to a GSI of the IOAPIC; MSI-X goes through the engine (irqfd on kvm,
 * straight to the LAPICs on emu). Config space is 256 bytes (no ECAM). */
#ifndef KUMO_PCI_H
#define KUMO_PCI_H

#include <pthread.h>

#include "kumo/bus.h"
#include "kumo/util.h"

struct machine;

#define PCI_CONFIG_ADDR_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT 0xcfc
#define PCI_MMIO_START 0xc0000000ULL  /* the window BARs live in */
#define PCI_MMIO_END   0xfec00000ULL  /* exclusive: the IOAPIC is next */
#define PCI_MAX_SLOTS  32             /* slot 0 is the host bridge */
#define PCI_INTX_GSI_BASE 16          /* slot s, pin A: GSI 16 + s % 8 */
#define PCI_INTX_GSIS     8
#define PCI_NUM_BARS   6
#define PCI_MSIX_MAX   64             /* vectors per device */

/* Standard config-space offsets and bits used across kumo. */
#define PCI_VENDOR_ID     0x00
#define PCI_DEVICE_ID     0x02
#define PCI_COMMAND       0x04
#define  PCI_COMMAND_IO     0x1
#define  PCI_COMMAND_MEMORY 0x2
#define  PCI_COMMAND_MASTER 0x4
#define  PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS        0x06
#define  PCI_STATUS_INTERRUPT 0x08
#define  PCI_STATUS_CAP_LIST  0x10
#define PCI_REVISION_ID   0x08
#define PCI_CLASS_PROG    0x09
#define PCI_CLASS_DEVICE  0x0a
#define PCI_HEADER_TYPE   0x0e
#define PCI_BAR0          0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID  0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_CAP_ID_VNDR   0x09
#define PCI_CAP_ID_MSIX   0x11

struct pci_device;

struct pci_bar {
	uint64_t size;      /* power of two, >= 4 KiB; 0: unused */
	uint64_t addr;      /* where the guest has it now */
	io_handler_fn fn;   /* offset relative to the BAR */
	void *opaque;
};

/* What kumo keeps of each MSI-X vector besides its table entry. */
struct pci_msix_vec {
	int efd;            /* irqfd on engines that have one, else -1 */
	unsigned route;     /* the engine's route for efd */
	bool routed;        /* efd delivers the table entry as it is now */
};

struct pci_device {
	const char *name;
	uint8_t cfg[256];
	uint8_t wmask[256];  /* config bits the guest may write */
	uint8_t cap_last;    /* offset of the last capability, 0: none */
	unsigned cap_end;    /* first free config byte after the capabilities */
	unsigned slot;       /* assigned by pci_device_add */
	unsigned gsi;        /* INTx pin A */
	struct pci_bar bar[PCI_NUM_BARS];
	/* The guest moved BAR i (old address → new; 0 while disabled). Called
	 * on the vCPU thread, with the bus's lock held; may be NULL. */
	void (*bar_moved)(struct pci_device *d, unsigned i, uint64_t old, uint64_t now);
	void *opaque;        /* the device's own state */
	struct machine *m;

	/* MSI-X (pci_msix_init); the table and PBA fill a BAR of their own. */
	pthread_mutex_t msix_lock;
	unsigned msix_nvec, msix_bar;
	uint8_t msix_cap;    /* config offset of the capability, 0: none */
	uint8_t msix_table[PCI_MSIX_MAX * 16]; /* address lo/hi, data, control */
	uint64_t msix_pba;
	struct pci_msix_vec msix[PCI_MSIX_MAX];
	bool intx_level;
};

/* The host bridge at slot 0 and the config ports. Called once, before any
 * device is added. */
int pci_bus_create(struct machine *m) WUR;

/* Initialise d: vendor/device/class in cfg, INTx pin A. */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id);
/* Append a capability (id, then body after the 2-byte header); returns its
 * config offset, or 0 when config space is full. */
uint8_t pci_cap_add(struct pci_device *d, uint8_t id, const void *body, unsigned body_len);
/* A 32-bit memory BAR of size bytes (power of two >= 4 KiB). */
void pci_bar_set(struct pci_device *d, unsigned i, uint64_t size, io_handler_fn fn, void *opaque);
/* MSI-X with nvec vectors, table and PBA in BAR bar (which it claims). */
int pci_msix_init(struct pci_device *d, unsigned nvec, unsigned bar) WUR;
/* Put d on the bus: slot, BAR addresses, GSI. Before any vCPU runs. */
int pci_device_add(struct machine *m, struct pci_device *d) WUR;
/* Take d off the bus and release its irqfds; the device calls it when it
 * is destroyed (after the vCPUs stopped), before freeing d. Safe on a
 * device that was never added. */
void pci_device_remove(struct pci_device *d);

/* Interrupts, from any thread. vector is an MSI-X vector; 0xffff (the
 * virtio "no vector") does nothing. */
void pci_msix_notify(struct pci_device *d, unsigned vector);
bool pci_msix_enabled(struct pci_device *d);
/* Level of INTx pin A (ignored while the guest disables INTx). */
void pci_intx(struct pci_device *d, bool level);

#endif
