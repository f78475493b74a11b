/* PCI bus 0 through configuration mechanism #1: see pci.h. */
#include "guest.h"
#include "pci.h"

#define CONFIG_ADDR 0xcf8
#define CONFIG_DATA 0xcfc
#define MAX_CAPS 48 /* (256 - 64) / 4: more means a loop */

static void select_reg(unsigned slot, unsigned off)
{
	outl(CONFIG_ADDR, 0x80000000u | (slot & 31) << 11 | (off & 0xfc));
}

uint32_t pci_read32(unsigned slot, unsigned off)
{
	select_reg(slot, off);
	return inl(CONFIG_DATA);
}

uint16_t pci_read16(unsigned slot, unsigned off)
{
	select_reg(slot, off);
	return inw(CONFIG_DATA + (off & 2));
}

uint8_t pci_read8(unsigned slot, unsigned off)
{
	select_reg(slot, off);
	return inb(CONFIG_DATA + (off & 3));
}

void pci_write16(unsigned slot, unsigned off, uint16_t v)
{
	select_reg(slot, off);
	outw(CONFIG_DATA + (off & 2), v);
}

void pci_write32(unsigned slot, unsigned off, uint32_t v)
{
	select_reg(slot, off);
	outl(CONFIG_DATA, v);
}

int pci_find(uint16_t vendor, uint16_t device)
{
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
		uint32_t id = pci_read32(slot, PCI_VENDOR_ID);
		if ((id & 0xffff) == vendor && id >> 16 == device)
			return (int)slot;
	}
	return -1;
}

int pci_caps(unsigned slot, bool (*fn)(unsigned slot, uint8_t off, uint8_t id, void *arg), void *arg)
{
	if (!(pci_read16(slot, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return -1;
	uint8_t off = pci_read8(slot, PCI_CAP_PTR) & 0xfc;
	int n = 0;
	while (off && n < MAX_CAPS) {
		if (off < 0x40)
			return -1;
		n++;
		if (!fn(slot, off, pci_read8(slot, off), arg))
			break;
		off = pci_read8(slot, off + 1) & 0xfc;
	}
	return n;
}

uint64_t pci_bar_addr(unsigned slot, unsigned bar)
{
	if (bar > 5)
		return 0;
	uint32_t lo = pci_read32(slot, PCI_BAR0 + 4 * bar);
	if (lo & 1)
		return 0; /* I/O space */
	uint64_t addr = lo & ~0xfu;
	if ((lo >> 1 & 3) == 2) { /* 64-bit */
		if (bar == 5)
			return 0;
		addr |= (uint64_t)pci_read32(slot, PCI_BAR0 + 4 * (bar + 1)) << 32;
	}
	return addr;
}
