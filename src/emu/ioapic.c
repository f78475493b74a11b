/* The IOAPIC (82093AA programming model, version 0x20): 24 redirection
 * entries behind the IOREGSEL/IOWIN window, turning pin changes into
 * messages on the APIC bus.
 *
 * Edge pins send once per assertion while unmasked. Level pins send while
 * asserted, unmasked and Remote IRR is clear; sending sets Remote IRR, and
 * the LAPIC's EOI of the vector (emu_ioapic_eoi, or the version-0x20 EOI
 * register at 0x40) clears it and sends again if the pin is still
 * asserted. Delivery is immediate, so Delivery Status always reads idle. */
#include "irqchip.h"

#include <stdlib.h>

#define IOREGSEL 0x00
#define IOWIN    0x10
#define IOEOI    0x40 /* version 0x20: write a vector to EOI it */

#define REG_ID    0x00
#define REG_VER   0x01
#define REG_ARB   0x02
#define REG_REDIR 0x10 /* two registers per entry: low, high dword */

#define VERSION   (0x20 | (EMU_IOAPIC_PINS - 1) << 16)

#define RTE_VECTOR      0x000000ffULL
#define RTE_DELIVERY    0x00000700ULL
#define RTE_LOGICAL     (1ULL << 11)
#define RTE_POLARITY    (1ULL << 13) /* 1 = active low */
#define RTE_REMOTE_IRR  (1ULL << 14)
#define RTE_LEVEL       (1ULL << 15)
#define RTE_MASKED      (1ULL << 16)
#define RTE_DEST_SHIFT  56
/* What the guest may write: everything but Delivery Status (12), Remote
 * IRR (14) and the reserved bits 55:17. */
#define RTE_WRITABLE    (0xff000000000000ffULL | RTE_DELIVERY | RTE_LOGICAL | \
			 RTE_POLARITY | RTE_LEVEL | RTE_MASKED)

struct emu_ioapic {
	struct emu_apic_bus *bus;
	/* ID register 31:24, all 8 bits as Linux reads them (the 82093AA
	 * has 4: too few for kumo, whose IOAPIC id is the vCPU count). */
	uint8_t id;
	uint8_t regsel;
	uint32_t lines;   /* pins asserted */
	uint64_t rte[EMU_IOAPIC_PINS];
};

/* The level given to emu_ioapic_set_irq() is the pin's assertion, not its
 * voltage: devices say "interrupt pending" whatever polarity the guest
 * programs, as with KVM_IRQ_LINE on the kvm engine (whose IOAPIC ignores
 * polarity too), so the polarity bit is kept for reads only. */
static bool asserted(const struct emu_ioapic *io, unsigned pin)
{
	return io->lines & (1u << pin);
}

/* SMI, NMI, INIT and ExtINT are edge-triggered whatever the entry says. */
static bool level_triggered(uint64_t rte)
{
	unsigned dm = (rte & RTE_DELIVERY) >> 8;

	return (rte & RTE_LEVEL) && (dm == EMU_DM_FIXED || dm == EMU_DM_LOWEST);
}

static void send(struct emu_ioapic *io, unsigned pin)
{
	uint64_t *rte = &io->rte[pin];
	struct emu_apic_msg msg = {
		.vector = *rte & RTE_VECTOR,
		.delivery = (*rte & RTE_DELIVERY) >> 8,
		.logical = *rte & RTE_LOGICAL,
		.level = level_triggered(*rte),
		.dest = *rte >> RTE_DEST_SHIFT,
	};

	if (msg.level)
		*rte |= RTE_REMOTE_IRR;
	emu_apic_bus_send(io->bus, &msg);
}

/* A level pin sends whenever it can: asserted, unmasked, not in service. */
static void service_level(struct emu_ioapic *io, unsigned pin)
{
	uint64_t rte = io->rte[pin];

	if (level_triggered(rte) && !(rte & (RTE_MASKED | RTE_REMOTE_IRR)) &&
	    asserted(io, pin))
		send(io, pin);
}

void emu_ioapic_set_irq(struct emu_ioapic *io, unsigned pin, bool level)
{
	bool was;

	if (pin >= EMU_IOAPIC_PINS)
		return;
	was = asserted(io, pin);
	io->lines = level ? io->lines | 1u << pin : io->lines & ~(1u << pin);
	if (level_triggered(io->rte[pin]))
		service_level(io, pin);
	else if (!was && asserted(io, pin) && !(io->rte[pin] & RTE_MASKED))
		send(io, pin);
}

void emu_ioapic_eoi(struct emu_ioapic *io, uint8_t vector)
{
	for (unsigned pin = 0; pin < EMU_IOAPIC_PINS; pin++) {
		uint64_t *rte = &io->rte[pin];

		if ((*rte & RTE_VECTOR) != vector || !(*rte & RTE_REMOTE_IRR))
			continue;
		*rte &= ~RTE_REMOTE_IRR;
		service_level(io, pin);
	}
}

static uint32_t reg_read(const struct emu_ioapic *io, unsigned reg)
{
	unsigned pin = (reg - REG_REDIR) / 2;

	switch (reg) {
	case REG_ID:
	case REG_ARB:
		return (uint32_t)io->id << 24;
	case REG_VER:
		return VERSION;
	}
	if (reg < REG_REDIR || pin >= EMU_IOAPIC_PINS)
		return 0; /* no such register */
	return reg & 1 ? io->rte[pin] >> 32 : (uint32_t)io->rte[pin];
}

static void rte_write(struct emu_ioapic *io, unsigned pin, bool high, uint32_t v)
{
	uint64_t *rte = &io->rte[pin];
	uint64_t val = high ? (*rte & 0xffffffffULL) | (uint64_t)v << 32
			    : (*rte & ~0xffffffffULL) | v;

	*rte = (*rte & ~RTE_WRITABLE) | (val & RTE_WRITABLE);
	if (!(*rte & RTE_LEVEL))
		*rte &= ~RTE_REMOTE_IRR; /* going edge clears it, as Linux expects */
	service_level(io, pin);   /* e.g. unmasking an asserted level pin */
}

static void reg_write(struct emu_ioapic *io, unsigned reg, uint32_t v)
{
	unsigned pin = (reg - REG_REDIR) / 2;

	if (reg == REG_ID)
		io->id = v >> 24;
	else if (reg >= REG_REDIR && pin < EMU_IOAPIC_PINS)
		rte_write(io, pin, reg & 1, v);
	/* version, arbitration and unimplemented registers are read-only */
}

uint32_t emu_ioapic_read(struct emu_ioapic *io, uint32_t offset)
{
	switch (offset) {
	case IOREGSEL: return io->regsel;
	case IOWIN:    return reg_read(io, io->regsel);
	default:       return 0;
	}
}

void emu_ioapic_write(struct emu_ioapic *io, uint32_t offset, uint32_t v)
{
	switch (offset) {
	case IOREGSEL: io->regsel = v & 0xff; break;
	case IOWIN:    reg_write(io, io->regsel, v); break;
	case IOEOI:    emu_ioapic_eoi(io, v & 0xff); break;
	default:       break;
	}
}

/* Reset state: every entry masked, edge, active high, vector 0. */
struct emu_ioapic *emu_ioapic_create(struct emu_apic_bus *bus, uint8_t id)
{
	struct emu_ioapic *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->bus = bus;
	io->id = id;
	for (unsigned pin = 0; pin < EMU_IOAPIC_PINS; pin++)
		io->rte[pin] = RTE_MASKED;
	return io;
}

void emu_ioapic_destroy(struct emu_ioapic *io)
{
	free(io);
}
