/* A modern virtio-pci device: see virtio.h. */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

__attribute__((noreturn, format(printf, 3, 4)))
static void vfail(struct virtio_pci *v, enum virtio_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	v->fail(err, fmt, ap);
}

static bool on_cap(unsigned s, uint8_t off, uint8_t id, void *arg)
{
	struct virtio_pci *v = arg;
	if (id != PCI_CAP_ID_VNDR) {
		if (v->other_cap)
			v->other_cap(s, off, id);
		return true;
	}
	uint8_t len = pci_read8(s, off + 2), type = pci_read8(s, off + 3), bar = pci_read8(s, off + 4);
	uint32_t offset = pci_read32(s, off + 8), length = pci_read32(s, off + 12);
	if (v->log)
		kprintf("%s: cap at 0x%x: cfg_type %u bar %u offset 0x%x length 0x%x\n",
			v->log, off, type, bar, offset, length);
	if (type == 0 || type >= VIRTIO_CAP_TYPES || v->cap_addr[type])
		return true; /* PCI config access (5) or another: not needed; the first of a type wins */
	if (len < 16 || (type == VIRTIO_CAP_NOTIFY && len < 20))
		vfail(v, VIRTIO_E_CAPS, "cfg_type %u capability of %u bytes", type, len);
	uint64_t base = pci_bar_addr(s, bar);
	if (!base || base + offset + length < base)
		vfail(v, VIRTIO_E_BAR, "cfg_type %u in BAR %u, which is not a memory BAR", type, bar);
	v->cap_addr[type] = base + offset;
	v->cap_len[type] = length;
	if (type == VIRTIO_CAP_NOTIFY)
		v->notify_mult = pci_read32(s, off + 16);
	return true;
}

void virtio_pci_find(struct virtio_pci *v, uint16_t device_id, uint32_t dev_len)
{
	int s = pci_find(0x1af4, device_id);
	if (s < 0)
		vfail(v, VIRTIO_E_NO_DEVICE, "no virtio device 1af4:%04x on PCI bus 0", device_id);
	v->slot = (unsigned)s;
	if (v->log)
		kprintf("%s: 00:%02x.0 1af4:%04x class 0x%06x\n", v->log, v->slot, device_id,
			pci_read32(v->slot, 0x08) >> 8);
	if (pci_caps(v->slot, on_cap, v) < 0)
		vfail(v, VIRTIO_E_CAPS, "no capability list, or a pointer into the header");
	uint64_t top = 0;
	for (unsigned t = VIRTIO_CAP_COMMON; t < VIRTIO_CAP_TYPES; t++) {
		if (!v->cap_addr[t])
			vfail(v, VIRTIO_E_CAPS, "no cfg_type %u capability", t);
		if (v->cap_addr[t] + v->cap_len[t] > top)
			top = v->cap_addr[t] + v->cap_len[t];
	}
	if (v->cap_len[VIRTIO_CAP_COMMON] < VIRTIO_COMMON_LEN)
		vfail(v, VIRTIO_E_CAPS, "common configuration of %u bytes", v->cap_len[VIRTIO_CAP_COMMON]);
	if (v->cap_len[VIRTIO_CAP_DEVICE] < dev_len)
		vfail(v, VIRTIO_E_CAPS, "device configuration of %u bytes, need %u",
		      v->cap_len[VIRTIO_CAP_DEVICE], dev_len);
	if (top > ((uint64_t)4 << 30) && !paging_map_identity(0, top))
		vfail(v, VIRTIO_E_BAR, "cannot map the BARs (up to 0x%lx)", top);
	uint16_t cmd = pci_read16(v->slot, PCI_COMMAND);
	pci_write16(v->slot, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

uint8_t virtio_status(const struct virtio_pci *v)
{
	return mmio_read8(virtio_common(v, VIRTIO_C_STATUS));
}

static void set_status(struct virtio_pci *v, uint8_t st)
{
	mmio_write8(virtio_common(v, VIRTIO_C_STATUS), st);
}

void virtio_reset(struct virtio_pci *v)
{
	set_status(v, 0);
	for (unsigned i = 0; i < 1000000; i++)
		if (virtio_status(v) == 0)
			return;
	vfail(v, VIRTIO_E_RESET, "device status 0x%x after a reset", virtio_status(v));
}

void virtio_negotiate(struct virtio_pci *v, uint64_t want)
{
	virtio_reset(v);
	set_status(v, VIRTIO_S_ACKNOWLEDGE);
	set_status(v, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);

	mmio_write32(virtio_common(v, VIRTIO_C_DFSELECT), 0);
	uint64_t have = mmio_read32(virtio_common(v, VIRTIO_C_DF));
	mmio_write32(virtio_common(v, VIRTIO_C_DFSELECT), 1);
	have |= (uint64_t)mmio_read32(virtio_common(v, VIRTIO_C_DF)) << 32;
	if (v->log)
		kprintf("%s: device features 0x%lx\n", v->log, have);
	if ((have & want) != want)
		vfail(v, VIRTIO_E_FEATURES, "device features 0x%lx lack some of 0x%lx", have, want);
	mmio_write32(virtio_common(v, VIRTIO_C_GFSELECT), 0);
	mmio_write32(virtio_common(v, VIRTIO_C_GF), (uint32_t)want);
	mmio_write32(virtio_common(v, VIRTIO_C_GFSELECT), 1);
	mmio_write32(virtio_common(v, VIRTIO_C_GF), (uint32_t)(want >> 32));
	set_status(v, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	if (!(virtio_status(v) & VIRTIO_S_FEATURES_OK))
		vfail(v, VIRTIO_E_FEATURES_OK, "FEATURES_OK not kept (status 0x%x)", virtio_status(v));
}

void virtio_config_vector(struct virtio_pci *v, uint16_t vector)
{
	uint64_t reg = virtio_common(v, VIRTIO_C_MSIX_CONFIG);
	mmio_write16(reg, vector);
	if (vector != VIRTIO_NO_VECTOR && mmio_read16(reg) != vector)
		vfail(v, VIRTIO_E_MSIX, "config vector %u not accepted (reads 0x%x)", vector, mmio_read16(reg));
}

uint64_t virtio_queue_setup(struct virtio_pci *v, uint16_t q, uint16_t size, uint16_t vector,
			    const void *desc, const void *avail, const volatile void *used)
{
	uint16_t nq = mmio_read16(virtio_common(v, VIRTIO_C_NUM_QUEUES));
	if (q >= nq)
		vfail(v, VIRTIO_E_QUEUE, "%u queues, no queue %u", nq, q);
	mmio_write16(virtio_common(v, VIRTIO_C_Q_SELECT), q);
	uint16_t max = mmio_read16(virtio_common(v, VIRTIO_C_Q_SIZE));
	if (v->log)
		kprintf("%s: %u queue(s), queue %u up to %u entries\n", v->log, nq, q, max);
	if (max < size)
		vfail(v, VIRTIO_E_QUEUE, "queue %u has %u entries, need %u", q, max, size);
	mmio_write16(virtio_common(v, VIRTIO_C_Q_SIZE), size);
	uint64_t qvec = virtio_common(v, VIRTIO_C_Q_MSIX);
	mmio_write16(qvec, vector);
	if (vector != VIRTIO_NO_VECTOR && mmio_read16(qvec) != vector)
		vfail(v, VIRTIO_E_MSIX, "queue vector %u not accepted (reads 0x%x)", vector, mmio_read16(qvec));
	mmio_write64(virtio_common(v, VIRTIO_C_Q_DESC), (uint64_t)(uintptr_t)desc);
	mmio_write64(virtio_common(v, VIRTIO_C_Q_AVAIL), (uint64_t)(uintptr_t)avail);
	mmio_write64(virtio_common(v, VIRTIO_C_Q_USED), (uint64_t)(uintptr_t)used);
	uint64_t noff = (uint64_t)mmio_read16(virtio_common(v, VIRTIO_C_Q_NOTIFY_OFF)) * v->notify_mult;
	if (noff + 2 > v->cap_len[VIRTIO_CAP_NOTIFY])
		vfail(v, VIRTIO_E_CAPS, "queue %u's notify offset 0x%lx outside the notify region", q, noff);
	mmio_write16(virtio_common(v, VIRTIO_C_Q_ENABLE), 1);
	if (mmio_read16(virtio_common(v, VIRTIO_C_Q_ENABLE)) != 1)
		vfail(v, VIRTIO_E_QUEUE, "queue %u not enabled", q);
	return v->cap_addr[VIRTIO_CAP_NOTIFY] + noff;
}

void virtio_driver_ok(struct virtio_pci *v)
{
	set_status(v, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
	uint8_t st = virtio_status(v);
	if (st & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED))
		vfail(v, VIRTIO_E_STATUS, "device status 0x%x after DRIVER_OK", st);
}

uint64_t virtio_config_read64(const struct virtio_pci *v, unsigned off)
{
	uint64_t a = v->cap_addr[VIRTIO_CAP_DEVICE] + off;
	for (;;) {
		uint8_t gen = mmio_read8(virtio_common(v, VIRTIO_C_CONFIG_GEN));
		uint64_t val = mmio_read32(a) | (uint64_t)mmio_read32(a + 4) << 32;
		if (mmio_read8(virtio_common(v, VIRTIO_C_CONFIG_GEN)) == gen)
			return val;
	}
}
