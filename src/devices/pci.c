/* PCI bus 0: the host bridge, configuration mechanism #1, BARs in one MMIO
 * window, INTx and MSI-X. Config space is what the guest may write through
 * a write mask and nothing else: a BAR keeps its size's alignment, read-only
 * registers stay read-only, and the MSI-X table is parsed only when used. */
#include "kumo/pci.h"
#include "kumo/log.h"
#include "kumo/machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MSIX_PBA_OFFSET 0x800       /* in the MSI-X BAR, after 64 entries */
#define MSIX_BAR_SIZE   0x1000
#define MSIX_CTRL_ENABLE  0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 0x1

struct pci_host {
	struct machine *m;
	pthread_rwlock_t lock;   /* config writes (BAR moves) vs BAR lookups */
	pthread_mutex_t cf8_lock;
	uint32_t cf8;
	struct pci_device bridge;
	struct pci_device *dev[PCI_MAX_SLOTS];
	uint64_t next_mmio;
	pthread_mutex_t intx_lock;
	unsigned intx_count[PCI_INTX_GSIS]; /* asserting devices per GSI */
};

/* ---- building a device ---- */

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	put_le16(d->cfg + PCI_VENDOR_ID, vendor);
	put_le16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION_ID] = 1;
	d->cfg[PCI_CLASS_PROG] = class_code & 0xff;
	put_le16(d->cfg + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	put_le16(d->cfg + PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	put_le16(d->cfg + PCI_SUBSYSTEM_ID, subsys_id);
	d->cfg[PCI_INTERRUPT_PIN] = 1;  /* INTA# */
	put_le16(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
					 PCI_COMMAND_INTX_DISABLE);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->cap_end = 0x40;
	pthread_mutex_init(&d->msix_lock, NULL);
	for (unsigned i = 0; i < PCI_MSIX_MAX; i++) {
		d->msix[i].efd = -1;
		d->msix[i].route = ACCEL_NO_ROUTE;
	}
}

uint8_t pci_cap_add(struct pci_device *d, uint8_t id, const void *body, unsigned body_len)
{
	unsigned at = ALIGN_UP(d->cap_end, 4);

	if (at + 2 + body_len > sizeof(d->cfg))
		return 0;
	d->cfg[at] = id;
	d->cfg[at + 1] = 0;
	memcpy(d->cfg + at + 2, body, body_len);
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)at;
	else
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)at;
	put_le16(d->cfg + PCI_STATUS, get_le16(d->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	d->cap_last = (uint8_t)at;
	d->cap_end = at + 2 + body_len;
	return (uint8_t)at;
}

void pci_bar_set(struct pci_device *d, unsigned i, uint64_t size, io_handler_fn fn, void *opaque)
{
	if (i >= PCI_NUM_BARS || size < 4096 || (size & (size - 1)) || size > (1ULL << 30))
		return;
	d->bar[i] = (struct pci_bar){ .size = size, .fn = fn, .opaque = opaque };
	/* 32-bit memory BAR, not prefetchable: address bits above the size
	 * are the guest's to write. */
	put_le32(d->wmask + PCI_BAR0 + 4 * i, (uint32_t)~(size - 1));
}

/* ---- MSI-X ---- */

static uint16_t msix_ctrl(struct pci_device *d)
{
	return get_le16(d->cfg + d->msix_cap + 2);
}

static void msix_entry(struct pci_device *d, unsigned v, uint64_t *addr, uint32_t *data, bool *masked)
{
	const uint8_t *e = d->msix_table + 16 * v;

	*addr = get_le64(e);
	*data = get_le32(e + 8);
	*masked = get_le32(e + 12) & MSIX_ENTRY_MASKED;
}

/* msix_lock held. Point the vector's irqfd at its table entry. */
static void msix_route(struct pci_device *d, unsigned v)
{
	struct pci_msix_vec *mv = &d->msix[v];
	uint64_t addr;
	uint32_t data;
	bool masked;

	if (mv->efd < 0 || mv->routed)
		return;
	msix_entry(d, v, &addr, &data, &masked);
	if (d->m->accel->msi_irqfd(d->m, mv->efd, addr, data, &mv->route, true)) {
		log_debug("%s: MSI-X vector %u: no irqfd route, sending directly", d->name, v);
		close(mv->efd);
		mv->efd = -1;
		return;
	}
	mv->routed = true;
}

/* msix_lock held: deliver vector v now. */
static void msix_fire(struct pci_device *d, unsigned v)
{
	struct pci_msix_vec *mv = &d->msix[v];
	uint64_t addr, one = 1;
	uint32_t data;
	bool masked;

	msix_route(d, v);
	if (mv->efd >= 0) {
		if (write(mv->efd, &one, sizeof(one)) == sizeof(one))
			return;
	}
	msix_entry(d, v, &addr, &data, &masked);
	if (d->m->accel->msi_send(d->m, addr, data))
		log_debug("%s: MSI to 0x%llx dropped", d->name, (unsigned long long)addr);
}

bool pci_msix_enabled(struct pci_device *d)
{
	return d->msix_cap && (msix_ctrl(d) & MSIX_CTRL_ENABLE);
}

void pci_msix_notify(struct pci_device *d, unsigned v)
{
	uint64_t addr;
	uint32_t data;
	bool masked;

	if (v >= d->msix_nvec)
		return;
	pthread_mutex_lock(&d->msix_lock);
	msix_entry(d, v, &addr, &data, &masked);
	if (!pci_msix_enabled(d)) {
		/* Nothing to deliver to: the transport uses INTx then. */
	} else if (masked || (msix_ctrl(d) & MSIX_CTRL_MASKALL)) {
		d->msix_pba |= 1ULL << v;
	} else {
		msix_fire(d, v);
	}
	pthread_mutex_unlock(&d->msix_lock);
}

/* msix_lock held: unmasked now, deliver what is pending. */
static void msix_unmasked(struct pci_device *d)
{
	if (!pci_msix_enabled(d) || (msix_ctrl(d) & MSIX_CTRL_MASKALL))
		return;
	for (unsigned v = 0; v < d->msix_nvec; v++) {
		uint64_t addr;
		uint32_t data;
		bool masked;
		if (!(d->msix_pba & (1ULL << v)))
			continue;
		msix_entry(d, v, &addr, &data, &masked);
		if (masked)
			continue;
		d->msix_pba &= ~(1ULL << v);
		msix_fire(d, v);
	}
}

/* The MSI-X BAR: the table at 0, the PBA at 0x800 (read-only). */
static void msix_bar_io(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	struct pci_device *d = opaque;
	uint64_t table_len = 16ULL * d->msix_nvec;

	pthread_mutex_lock(&d->msix_lock);
	if (off < table_len && len <= table_len - off) {
		if (!is_write) {
			memcpy(data, d->msix_table + off, len);
		} else {
			unsigned first = (unsigned)(off / 16), last = (unsigned)((off + len - 1) / 16);
			memcpy(d->msix_table + off, data, len);
			for (unsigned v = first; v <= last; v++) {
				/* Address/data changed: re-route before next use. */
				d->msix[v].routed = false;
				/* Only the mask bit of vector control is defined. */
				uint32_t ctl = get_le32(d->msix_table + 16 * v + 12) & MSIX_ENTRY_MASKED;
				put_le32(d->msix_table + 16 * v + 12, ctl);
			}
			msix_unmasked(d);
		}
	} else if (!is_write && off >= MSIX_PBA_OFFSET && off - MSIX_PBA_OFFSET < 8 &&
		   len <= 8 - (off - MSIX_PBA_OFFSET)) {
		uint8_t pba[8];
		put_le64(pba, d->msix_pba);
		memcpy(data, pba + (off - MSIX_PBA_OFFSET), len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&d->msix_lock);
}

int pci_msix_init(struct pci_device *d, unsigned nvec, unsigned bar)
{
	uint8_t body[10];

	if (!nvec || nvec > PCI_MSIX_MAX || bar >= PCI_NUM_BARS)
		return -EINVAL;
	put_le16(body, (uint16_t)(nvec - 1));            /* table size - 1 */
	put_le32(body + 2, 0 | bar);                      /* table at 0 of BAR bar */
	put_le32(body + 6, MSIX_PBA_OFFSET | bar);
	d->msix_cap = pci_cap_add(d, PCI_CAP_ID_MSIX, body, sizeof(body));
	if (!d->msix_cap)
		return -ENOSPC;
	put_le16(d->wmask + d->msix_cap + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
	d->msix_nvec = nvec;
	d->msix_bar = bar;
	/* Every vector starts masked (PCI 6.8.2.9). */
	for (unsigned v = 0; v < nvec; v++)
		put_le32(d->msix_table + 16 * v + 12, MSIX_ENTRY_MASKED);
	pci_bar_set(d, bar, MSIX_BAR_SIZE, msix_bar_io, d);
	return 0;
}

/* ---- INTx ---- */

void pci_intx(struct pci_device *d, bool level)
{
	struct pci_host *h = d->m->pci;
	unsigned i = d->gsi - PCI_INTX_GSI_BASE;
	bool was, now;

	if (!h || i >= PCI_INTX_GSIS)
		return;
	pthread_mutex_lock(&h->intx_lock);
	if (get_le16(d->cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE)
		level = false;
	if (level != d->intx_level) {
		was = h->intx_count[i] > 0;
		h->intx_count[i] += level ? 1 : -1;
		now = h->intx_count[i] > 0;
		d->intx_level = level;
		uint16_t st = get_le16(d->cfg + PCI_STATUS);
		put_le16(d->cfg + PCI_STATUS, level ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT);
		if (was != now && machine_irq_line(d->m, d->gsi, now))
			log_debug("%s: cannot drive GSI %u", d->name, d->gsi);
	}
	pthread_mutex_unlock(&h->intx_lock);
}

/* ---- config cycles ---- */

static uint64_t bar_addr(const struct pci_device *d, unsigned i)
{
	return get_le32(d->cfg + PCI_BAR0 + 4 * i) & ~0xfULL;
}

/* Bus lock held for writing. */
static void config_write(struct pci_device *d, unsigned off, const uint8_t *data, unsigned len)
{
	uint64_t old_bar[PCI_NUM_BARS];
	uint16_t old_msix = d->msix_cap ? msix_ctrl(d) : 0;
	uint16_t old_cmd = get_le16(d->cfg + PCI_COMMAND);

	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		old_bar[i] = bar_addr(d, i);
	if (d->msix_cap)
		pthread_mutex_lock(&d->msix_lock);
	for (unsigned i = 0; i < len && off + i < sizeof(d->cfg); i++) {
		uint8_t m = d->wmask[off + i];
		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | (data[i] & m));
	}
	if (d->msix_cap) {
		if (msix_ctrl(d) != old_msix)
			msix_unmasked(d);
		pthread_mutex_unlock(&d->msix_lock);
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t now = bar_addr(d, i);
		if (d->bar[i].size && now != old_bar[i]) {
			d->bar[i].addr = now;
			if (d->bar_moved)
				d->bar_moved(d, i, old_bar[i], now);
		}
	}
	if ((old_cmd ^ get_le16(d->cfg + PCI_COMMAND)) & PCI_COMMAND_INTX_DISABLE) {
		/* Masking INTx lowers the line; unmasking lets it through
		 * again at the device's next change. */
		bool level = d->intx_level;
		pci_intx(d, false);
		if (level && !(get_le16(d->cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE))
			pci_intx(d, true);
	}
}

static void config_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pci_host *h = opaque;
	uint32_t cf8;
	struct pci_device *d = NULL;
	unsigned reg;

	if (offset < 4) {
		/* CONFIG_ADDRESS: dword accesses only (byte ones are other
		 * ports of the chipset, e.g. 0xcf9 reset control: ignored). */
		pthread_mutex_lock(&h->cf8_lock);
		if (offset == 0 && len == 4) {
			if (is_write)
				h->cf8 = get_le32(data) & 0x80fffffc;
			else
				put_le32(data, h->cf8);
		} else if (!is_write) {
			memset(data, 0xff, len);
		}
		pthread_mutex_unlock(&h->cf8_lock);
		return;
	}
	pthread_mutex_lock(&h->cf8_lock);
	cf8 = h->cf8;
	pthread_mutex_unlock(&h->cf8_lock);
	/* Enabled, bus 0, function 0; anything else is absent. */
	reg = (cf8 & 0xfc) + (unsigned)(offset - 4);
	if ((cf8 & 0x80000000) && !((cf8 >> 16) & 0xff) && !((cf8 >> 8) & 7) &&
	    reg + len <= 256)
		d = h->dev[(cf8 >> 11) & 0x1f];
	if (!d) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write) {
		pthread_rwlock_wrlock(&h->lock);
		config_write(d, reg, data, len);
		pthread_rwlock_unlock(&h->lock);
	} else {
		pthread_rwlock_rdlock(&h->lock);
		memcpy(data, d->cfg + reg, len);
		pthread_rwlock_unlock(&h->lock);
	}
}

/* ---- the BAR window ---- */

static void window_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pci_host *h = opaque;
	uint64_t addr = PCI_MMIO_START + offset;

	pthread_rwlock_rdlock(&h->lock);
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_device *d = h->dev[s];
		if (!d || !(get_le16(d->cfg + PCI_COMMAND) & PCI_COMMAND_MEMORY))
			continue;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar *b = &d->bar[i];
			if (!b->size || addr < b->addr || addr - b->addr >= b->size ||
			    len > b->size - (addr - b->addr))
				continue;
			b->fn(b->opaque, addr - b->addr, data, len, is_write);
			pthread_rwlock_unlock(&h->lock);
			return;
		}
	}
	pthread_rwlock_unlock(&h->lock);
	if (!is_write)
		memset(data, 0xff, len);
}

/* ---- the bus ---- */

int pci_device_add(struct machine *m, struct pci_device *d)
{
	struct pci_host *h = m->pci;
	unsigned s;

	if (!h)
		return -ENODEV;
	for (s = 1; s < PCI_MAX_SLOTS && h->dev[s]; s++)
		;
	if (s == PCI_MAX_SLOTS)
		return -ENOSPC;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t size = d->bar[i].size, at;
		if (!size)
			continue;
		at = ALIGN_UP(h->next_mmio, size);
		if (at > PCI_MMIO_END || size > PCI_MMIO_END - at)
			return -ENOSPC;
		h->next_mmio = at + size;
		d->bar[i].addr = at;
		put_le32(d->cfg + PCI_BAR0 + 4 * i, (uint32_t)at);
	}
	d->m = m;
	d->slot = s;
	d->gsi = PCI_INTX_GSI_BASE + s % PCI_INTX_GSIS;
	d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)d->gsi;
	/* Firmware leaves memory decoding on, as a BIOS would. */
	put_le16(d->cfg + PCI_COMMAND, PCI_COMMAND_MEMORY);
	/* One eventfd per MSI-X vector where the engine has irqfd. */
	for (unsigned v = 0; v < d->msix_nvec; v++) {
		unsigned route = ACCEL_NO_ROUTE;
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			break;
		if (m->accel->msi_irqfd(m, efd, 0, 0, &route, false) == -ENOTSUP) {
			close(efd);
			break;
		}
		d->msix[v].efd = efd;
	}
	h->dev[s] = d;
	log_debug("pci: %s at 00:%02x.0, GSI %u", d->name, s, d->gsi);
	return 0;
}

void pci_device_remove(struct pci_device *d)
{
	struct pci_host *h = d->m ? d->m->pci : NULL;

	for (unsigned v = 0; v < d->msix_nvec; v++) {
		struct pci_msix_vec *mv = &d->msix[v];
		if (mv->efd < 0)
			continue;
		if (mv->route != ACCEL_NO_ROUTE &&
		    d->m->accel->msi_irqfd(d->m, mv->efd, 0, 0, &mv->route, false))
			log_debug("%s: cannot remove an irqfd", d->name);
		close(mv->efd);
		mv->efd = -1;
	}
	if (h && d->slot < PCI_MAX_SLOTS && h->dev[d->slot] == d) {
		pthread_rwlock_wrlock(&h->lock);
		h->dev[d->slot] = NULL;
		pthread_rwlock_unlock(&h->lock);
	}
	pthread_mutex_destroy(&d->msix_lock);
}

static void pci_host_free(void *opaque)
{
	struct pci_host *h = opaque;

	h->m->pci = NULL;
	pthread_rwlock_destroy(&h->lock);
	pthread_mutex_destroy(&h->cf8_lock);
	pthread_mutex_destroy(&h->intx_lock);
	pthread_mutex_destroy(&h->bridge.msix_lock);
	free(h);
}

int pci_bus_create(struct machine *m)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	h->m = m;
	pthread_rwlock_init(&h->lock, NULL);
	pthread_mutex_init(&h->cf8_lock, NULL);
	pthread_mutex_init(&h->intx_lock, NULL);
	h->next_mmio = PCI_MMIO_START;
	/* The host bridge: slot 0, class 06.00.00, no BARs, no interrupt. */
	pci_device_init(&h->bridge, "host-bridge", 0x1b36, 0x0008, 0x060000, 0x1af4, 0x1100);
	h->bridge.cfg[PCI_INTERRUPT_PIN] = 0;
	h->bridge.wmask[PCI_INTERRUPT_LINE] = 0;
	h->bridge.m = m;
	h->dev[0] = &h->bridge;
	m->pci = h;
	if ((err = machine_own(m, pci_host_free, h)))
		return err;
	if ((err = io_bus_register(&m->pio, PCI_CONFIG_ADDR_PORT, 8, config_io, h, "pci-config")) ||
	    (err = io_bus_register(&m->mmio, PCI_MMIO_START, PCI_MMIO_END - PCI_MMIO_START,
				   window_io, h, "pci-window")))
		return err;
	return 0;
}
