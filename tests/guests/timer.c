/*
 * timer: timer interrupts arrive, with HLT between them.
 *   1. the PIT (channel 0, 1 kHz) through the 8259, IRQ 0 -> vector 0x20;
 *   2. the PIT through the IOAPIC (the GSI of ISA IRQ 0 from the MADT);
 *   3. the LAPIC timer, one-shot, re-armed N times (and no extra firing);
 *   4. the LAPIC timer, periodic.
 * A LAPIC one-shot guards phases 1 and 2, the PIT phases 3 and 4.
 */
#include "guest.h"

GUEST("timer");

#define N 10
#define PIT_RATE 1000            /* Hz */
#define VEC_PIT_IOAPIC 0x30
#define VEC_LAPIC_TIMER 0x40
#define VEC_WATCHDOG 0x41
#define LAPIC_DIVIDE 16
#define LAPIC_COUNT 62500        /* 1 ms with a 1 GHz APIC timer clock */
#define WATCHDOG_COUNT 125000000 /* 2 s with a 1 GHz APIC timer clock */

static volatile unsigned pic_ticks, ioapic_ticks, lapic_ticks, watchdog;

static void on_pit_pic(struct int_frame *f) { (void)f; pic_ticks++; pic_eoi(PIT_IRQ); }
static void on_pit_ioapic(struct int_frame *f) { (void)f; ioapic_ticks++; lapic_eoi(); }
static void on_lapic_timer(struct int_frame *f) { (void)f; lapic_ticks++; lapic_eoi(); }
static void on_watchdog(struct int_frame *f) { (void)f; watchdog = 1; lapic_eoi(); }

/* HLT until *count reaches want; false if *clock reaches limit first.
 * Called and returns with interrupts off. */
static bool wait_for(volatile unsigned *count, unsigned want, volatile unsigned *clock, unsigned limit)
{
	while (*count < want) {
		if (*clock >= limit)
			return false;
		sti_hlt();
		cli();
	}
	return true;
}

/* HLT through n more PIT ticks (through the IOAPIC). Interrupts off. */
static void sleep_ticks(unsigned n)
{
	unsigned until = ioapic_ticks + n;
	while (ioapic_ticks < until) {
		sti_hlt();
		cli();
	}
}

static void pit_phase(const char *path, volatile unsigned *ticks)
{
	watchdog = 0;
	lapic_timer_oneshot(VEC_WATCHDOG, LAPIC_DIVIDE, WATCHDOG_COUNT);
	bool ok = wait_for(ticks, N, &watchdog, 1);
	lapic_timer_stop();
	kprintf("timer: PIT through the %s: %u ticks\n", path, *ticks);
	if (!ok)
		fail("PIT through the %s: %u of %d ticks before the watchdog", path, *ticks, N);
}

void guest_main(void)
{
	idt_set_handler(PIC_VECTOR_BASE + PIT_IRQ, on_pit_pic);
	idt_set_handler(VEC_PIT_IOAPIC, on_pit_ioapic);
	idt_set_handler(VEC_LAPIC_TIMER, on_lapic_timer);
	idt_set_handler(VEC_WATCHDOG, on_watchdog);
	pic_init();
	ioapic_init();
	lapic_init();
	uint32_t bsp = lapic_id();
	pit_periodic(PIT_RATE);

	/* 1. 8259 (the IOAPIC is all masked). */
	pic_unmask(PIT_IRQ);
	pit_phase("8259 PIC", &pic_ticks);
	pic_mask(PIT_IRQ);

	/* 2. IOAPIC (the 8259 is all masked). The PIT keeps ticking here
	 * through phases 3 and 4 as their clock. */
	uint32_t gsi = acpi_isa_irq_gsi(PIT_IRQ);
	kprintf("timer: ISA IRQ 0 is GSI %u\n", gsi);
	ioapic_route(gsi, VEC_PIT_IOAPIC, bsp);
	pit_phase("IOAPIC", &ioapic_ticks);

	/* 3. LAPIC one-shot, N times. */
	unsigned limit = ioapic_ticks + PIT_RATE; /* 1 s */
	for (unsigned i = 1; i <= N; i++) {
		lapic_timer_oneshot(VEC_LAPIC_TIMER, LAPIC_DIVIDE, LAPIC_COUNT);
		if (!wait_for(&lapic_ticks, i, &ioapic_ticks, limit))
			fail("LAPIC one-shot: %u of %d interrupts in 1 s", lapic_ticks, N);
	}
	sleep_ticks(5); /* a one-shot must not fire again */
	kprintf("timer: LAPIC one-shot: %u interrupts\n", lapic_ticks);
	if (lapic_ticks != N)
		fail("LAPIC one-shot: %u interrupts for %d arms", lapic_ticks, N);

	/* 4. LAPIC periodic. */
	lapic_ticks = 0;
	unsigned start = ioapic_ticks;
	limit = start + PIT_RATE;
	lapic_timer_periodic(VEC_LAPIC_TIMER, LAPIC_DIVIDE, LAPIC_COUNT);
	bool ok = wait_for(&lapic_ticks, N, &ioapic_ticks, limit);
	lapic_timer_stop();
	unsigned took = ioapic_ticks - start;
	kprintf("timer: LAPIC periodic: %u interrupts in %u PIT ticks (%u ms)\n", lapic_ticks, took,
		took * 1000 / PIT_RATE);
	if (!ok)
		fail("LAPIC periodic: %u of %d interrupts in 1 s", lapic_ticks, N);

	ioapic_mask(gsi);
	pass();
}
