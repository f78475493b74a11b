#include "guest.h"

#define IOAPIC_VER 0x01
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define REDIR_MASKED (1u << 16)

static uint64_t base = 0xfec00000;

static uint32_t rd(uint32_t reg)
{
	mmio_write32(base, reg);
	return mmio_read32(base + 0x10);
}

static void wr(uint32_t reg, uint32_t v)
{
	mmio_write32(base, reg);
	mmio_write32(base + 0x10, v);
}

unsigned ioapic_pins(void)
{
	return ((rd(IOAPIC_VER) >> 16) & 0xff) + 1;
}

void ioapic_init(void)
{
	base = acpi_ioapic_address();
	paging_map_identity(base, 0x20);
	unsigned n = ioapic_pins();
	for (unsigned pin = 0; pin < n; pin++)
		ioapic_mask(pin);
}

void ioapic_route(unsigned pin, uint8_t vector, uint32_t apic_id)
{
	wr(IOAPIC_REDTBL(pin) + 1, apic_id << 24);
	wr(IOAPIC_REDTBL(pin), vector); /* fixed, physical, high, edge, unmasked */
}

void ioapic_mask(unsigned pin)
{
	wr(IOAPIC_REDTBL(pin), REDIR_MASKED);
	wr(IOAPIC_REDTBL(pin) + 1, 0);
}
