#include "guest.h"

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_ENABLE (1ull << 11)

enum {
	LAPIC_ID = 0x020,
	LAPIC_TPR = 0x080,
	LAPIC_EOI = 0x0b0,
	LAPIC_SVR = 0x0f0,
	LAPIC_ICR_LO = 0x300,
	LAPIC_ICR_HI = 0x310,
	LAPIC_LVT_TIMER = 0x320,
	LAPIC_LVT_LINT0 = 0x350,
	LAPIC_LVT_LINT1 = 0x360,
	LAPIC_TIMER_INIT = 0x380,
	LAPIC_TIMER_CUR = 0x390,
	LAPIC_TIMER_DIV = 0x3e0,
};

#define SVR_ENABLE 0x100
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define LVT_EXTINT 0x700
#define LVT_NMI 0x400
#define ICR_BUSY (1u << 12)
#define ICR_ASSERT (1u << 14)
#define ICR_INIT 0x500
#define ICR_STARTUP 0x600

static uint64_t lapic_base = 0xfee00000;

static uint32_t rd(uint32_t reg) { return mmio_read32(lapic_base + reg); }
static void wr(uint32_t reg, uint32_t v) { mmio_write32(lapic_base + reg, v); }

static void ignore(struct int_frame *f) { (void)f; }

void lapic_init(void)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);
	if (!(msr & APIC_BASE_ENABLE))
		wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
	lapic_base = msr & 0x000ffffffffff000ull;
	idt_set_handler(LAPIC_SPURIOUS_VECTOR, ignore);
	wr(LAPIC_SVR, SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
	wr(LAPIC_TPR, 0);
	wr(LAPIC_LVT_TIMER, LVT_MASKED);
	/* Virtual-wire mode: the 8259's INTR reaches the BSP through LINT0. */
	wr(LAPIC_LVT_LINT0, (msr & APIC_BASE_BSP) ? LVT_EXTINT : LVT_MASKED);
	wr(LAPIC_LVT_LINT1, LVT_NMI);
}

uint32_t lapic_id(void)
{
	return rd(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	wr(LAPIC_EOI, 0);
}

static uint32_t divide_bits(uint32_t divide)
{
	/* Divide configuration: bits 0, 1 and 3; 0b1011 is divide by 1. */
	static const uint8_t bits[] = { 0xb, 0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa };
	unsigned log = 0;
	while ((1u << log) < divide && log < 7)
		log++;
	return bits[log];
}

static void timer_start(uint32_t lvt, uint32_t divide, uint32_t count)
{
	wr(LAPIC_TIMER_DIV, divide_bits(divide));
	wr(LAPIC_LVT_TIMER, lvt);
	wr(LAPIC_TIMER_INIT, count);
}

void lapic_timer_oneshot(uint8_t vector, uint32_t divide, uint32_t count)
{
	timer_start(vector, divide, count);
}

void lapic_timer_periodic(uint8_t vector, uint32_t divide, uint32_t count)
{
	timer_start(LVT_PERIODIC | vector, divide, count);
}

void lapic_timer_stop(void)
{
	wr(LAPIC_LVT_TIMER, LVT_MASKED);
	wr(LAPIC_TIMER_INIT, 0);
}

uint32_t lapic_timer_current(void)
{
	return rd(LAPIC_TIMER_CUR);
}

static void send_icr(uint32_t apic_id, uint32_t lo)
{
	wr(LAPIC_ICR_HI, apic_id << 24);
	wr(LAPIC_ICR_LO, lo);
	while (rd(LAPIC_ICR_LO) & ICR_BUSY)
		cpu_relax();
}

void lapic_send_init(uint32_t apic_id)
{
	send_icr(apic_id, ICR_INIT | ICR_ASSERT);
}

void lapic_send_sipi(uint32_t apic_id, uint8_t page)
{
	send_icr(apic_id, ICR_STARTUP | ICR_ASSERT | page);
}

void lapic_send_ipi(uint32_t apic_id, uint8_t vector)
{
	send_icr(apic_id, ICR_ASSERT | vector);
}
