#include "guest.h"

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t zero;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern char isr_stubs[];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static int_handler handlers[256];

static void unexpected(struct int_frame *f)
{
	if (f->vector < 32)
		fail("unexpected exception %lu error 0x%lx at rip 0x%lx cr2 0x%lx",
		     f->vector, f->error_code, f->rip, read_cr2());
	fail("unexpected interrupt vector 0x%lx at rip 0x%lx", f->vector, f->rip);
}

void isr_dispatch(struct int_frame *f);
void isr_dispatch(struct int_frame *f)
{
	handlers[f->vector & 0xff](f);
}

void idt_load(void)
{
	struct idt_desc d = { sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lidt %0" : : "m"(d));
}

void idt_set_handler(uint8_t vector, int_handler h)
{
	handlers[vector] = h ? h : unexpected;
}

void idt_init(void)
{
	for (int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)isr_stubs + 16 * (uint64_t)v;
		idt[v] = (struct idt_gate){
			.offset_lo = a & 0xffff,
			.selector = SEL_CODE64,
			.type_attr = 0x8e, /* present, DPL 0, interrupt gate */
			.offset_mid = (a >> 16) & 0xffff,
			.offset_hi = a >> 32,
		};
		handlers[v] = unexpected;
	}
	idt_load();
}
