/* The emu engine's interrupt controllers and timers: 8259 PIC pair, IOAPIC,
 * a LAPIC per vCPU, 8254 PIT. Each is a state machine in its own file;
 * nothing here reads a clock or takes a lock. Time comes in as now_ns
 * arguments and each timer says when it next needs a tick, so unit tests
 * drive them deterministically. The engine (emu.c) serializes access and
 * wires them together with the callbacks below. */
#ifndef KUMO_EMU_IRQCHIP_H
#define KUMO_EMU_IRQCHIP_H

#include "kumo/util.h"

#define EMU_NO_DEADLINE UINT64_MAX

/* ---- 8259A pair (pic.c): master 0x20/0x21, slave 0xa0/0xa1, ELCR 0x4d0/0x4d1 ---- */
struct emu_pic;

struct emu_pic_ops {
	/* The INTR line to the boot vCPU changed (level). */
	void (*intr)(void *opaque, bool level);
	void *opaque;
};

struct emu_pic *emu_pic_create(const struct emu_pic_ops *ops);
void emu_pic_destroy(struct emu_pic *p);
/* ISA IRQ 0..15 line level (edge-triggered unless ELCR says level). */
void emu_pic_set_irq(struct emu_pic *p, unsigned irq, bool level);
/* The INTR line as it is now. */
bool emu_pic_intr(const struct emu_pic *p);
/* Interrupt acknowledge: the vector to deliver (spurious 7/15 if nothing). */
uint8_t emu_pic_ack(struct emu_pic *p);
/* Port access; port is the absolute port number, len 1. */
uint8_t emu_pic_read(struct emu_pic *p, uint16_t port);
void emu_pic_write(struct emu_pic *p, uint16_t port, uint8_t v);

/* ---- APIC bus: how IOAPIC messages and IPIs reach LAPICs (lapic.c) ---- */
enum emu_delivery {
	EMU_DM_FIXED = 0, EMU_DM_LOWEST = 1, EMU_DM_SMI = 2, EMU_DM_NMI = 4,
	EMU_DM_INIT = 5, EMU_DM_SIPI = 6, EMU_DM_EXTINT = 7,
};

struct emu_apic_msg {
	uint8_t vector;
	uint8_t delivery;     /* enum emu_delivery */
	bool logical;         /* destination mode */
	bool level;           /* trigger mode: level (needs EOI to the IOAPIC) */
	uint32_t dest;        /* 8-bit xAPIC destination (or 0xff broadcast) */
	uint8_t shorthand;    /* ICR 19:18: 0 none, 1 self, 2 all, 3 all but self */
	unsigned source;      /* sending vCPU index, for shorthands */
};

struct emu_lapic;

struct emu_apic_bus {
	unsigned n;
	struct emu_lapic **lapics; /* indexed by vCPU; APIC id = index */
	/* Wake vCPU cpu (it has a new interrupt or INIT/SIPI pending). */
	void (*kick)(void *opaque, unsigned cpu);
	/* A level-triggered vector was EOIed: tell the IOAPIC. */
	void (*eoi)(void *opaque, uint8_t vector);
	void *opaque;
};

/* Deliver a message to every LAPIC it addresses. */
void emu_apic_bus_send(struct emu_apic_bus *bus, const struct emu_apic_msg *msg);

/* ---- Local APIC (lapic.c): xAPIC MMIO at 0xfee00000, one per vCPU ---- */
struct emu_lapic *emu_lapic_create(struct emu_apic_bus *bus, unsigned id, uint64_t tsc_hz);
void emu_lapic_destroy(struct emu_lapic *l);
void emu_lapic_reset(struct emu_lapic *l);          /* power-on / INIT state */
uint32_t emu_lapic_read(struct emu_lapic *l, uint32_t offset, uint64_t now_ns);
void emu_lapic_write(struct emu_lapic *l, uint32_t offset, uint32_t v, uint64_t now_ns);
/* IA32_APIC_BASE (MSR 0x1b); writes may disable the LAPIC. */
uint64_t emu_lapic_get_base(const struct emu_lapic *l);
void emu_lapic_set_base(struct emu_lapic *l, uint64_t v);
/* TPR as CR8 (bits 7:4 of TPR). */
uint8_t emu_lapic_get_cr8(const struct emu_lapic *l);
void emu_lapic_set_cr8(struct emu_lapic *l, uint8_t v);
/* A message from the bus to this LAPIC. */
void emu_lapic_accept(struct emu_lapic *l, const struct emu_apic_msg *msg);
/* Highest-priority fixed interrupt deliverable now (IRR above PPR), or -1. */
int emu_lapic_pending(const struct emu_lapic *l);
/* The CPU takes it: IRR -> ISR. */
void emu_lapic_ack(struct emu_lapic *l, uint8_t vector);
/* Pending NMI / INIT / SIPI, taken by the engine (returns and clears). */
bool emu_lapic_take_nmi(struct emu_lapic *l);
bool emu_lapic_take_init(struct emu_lapic *l);
int emu_lapic_take_sipi(struct emu_lapic *l);     /* vector, or -1 */
/* LINT0 in ExtINT mode: is the PIC's INTR to be taken through this LAPIC? */
bool emu_lapic_accepts_extint(const struct emu_lapic *l);
/* Timer: fire if due (one-shot, periodic; TSC-deadline if advertised);
 * returns the next deadline in ns or EMU_NO_DEADLINE. */
uint64_t emu_lapic_tick(struct emu_lapic *l, uint64_t now_ns);
/* IA32_TSC_DEADLINE (MSR 0x6e0), in guest TSC ticks at tsc_hz. */
void emu_lapic_set_tsc_deadline(struct emu_lapic *l, uint64_t tsc, uint64_t now_ns);
uint64_t emu_lapic_get_tsc_deadline(const struct emu_lapic *l);

/* ---- IOAPIC (ioapic.c): MMIO at 0xfec00000, 24 pins ---- */
#define EMU_IOAPIC_PINS 24
struct emu_ioapic;

struct emu_ioapic *emu_ioapic_create(struct emu_apic_bus *bus, uint8_t id);
void emu_ioapic_destroy(struct emu_ioapic *io);
void emu_ioapic_set_irq(struct emu_ioapic *io, unsigned pin, bool level);
/* A LAPIC EOI of a level-triggered vector: clear Remote IRR, re-deliver
 * if the line is still asserted. */
void emu_ioapic_eoi(struct emu_ioapic *io, uint8_t vector);
/* MMIO: IOREGSEL at 0x00, IOWIN at 0x10 (32-bit); other offsets ignored. */
uint32_t emu_ioapic_read(struct emu_ioapic *io, uint32_t offset);
void emu_ioapic_write(struct emu_ioapic *io, uint32_t offset, uint32_t v);

/* ---- 8254 PIT (pit.c): ports 0x40-0x43 and port B 0x61 (gate 2, out 2) ---- */
#define EMU_PIT_HZ 1193182ULL
struct emu_pit;

struct emu_pit_ops {
	/* Channel 0's output changed: drives ISA IRQ 0. */
	void (*irq0)(void *opaque, bool level);
	void *opaque;
};

struct emu_pit *emu_pit_create(const struct emu_pit_ops *ops, uint64_t now_ns);
void emu_pit_destroy(struct emu_pit *p);
uint8_t emu_pit_read(struct emu_pit *p, uint16_t port, uint64_t now_ns);
void emu_pit_write(struct emu_pit *p, uint16_t port, uint8_t v, uint64_t now_ns);
/* Raise/lower IRQ 0 for what happened up to now; next deadline or
 * EMU_NO_DEADLINE. Periodic modes raise one edge per period, even when
 * ticks come late (no burst of missed ones). */
uint64_t emu_pit_tick(struct emu_pit *p, uint64_t now_ns);

#endif
