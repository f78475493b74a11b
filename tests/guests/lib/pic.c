#include "guest.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define ICW1_INIT_ICW4 0x11
#define ICW4_8086 0x01
#define OCW2_EOI 0x20

static void ignore(struct int_frame *f) { (void)f; }

void pic_init(void)
{
	outb(PIC1_CMD, ICW1_INIT_ICW4);
	outb(PIC2_CMD, ICW1_INIT_ICW4);
	outb(PIC1_DATA, PIC_VECTOR_BASE);
	outb(PIC2_DATA, PIC_VECTOR_BASE + 8);
	outb(PIC1_DATA, 1 << 2); /* slave on IRQ 2 */
	outb(PIC2_DATA, 2);      /* cascade identity */
	outb(PIC1_DATA, ICW4_8086);
	outb(PIC2_DATA, ICW4_8086);
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
	/* Spurious IRQ 7 / 15 need no EOI and mean nothing. */
	idt_set_handler(PIC_VECTOR_BASE + 7, ignore);
	idt_set_handler(PIC_VECTOR_BASE + 15, ignore);
}

void pic_unmask(uint8_t irq)
{
	uint16_t port = irq < 8 ? PIC1_DATA : PIC2_DATA;
	outb(port, inb(port) & ~(1u << (irq & 7)));
	if (irq >= 8)
		outb(PIC1_DATA, inb(PIC1_DATA) & ~(1u << 2));
}

void pic_mask(uint8_t irq)
{
	uint16_t port = irq < 8 ? PIC1_DATA : PIC2_DATA;
	outb(port, inb(port) | (1u << (irq & 7)));
}

void pic_eoi(uint8_t irq)
{
	if (irq >= 8)
		outb(PIC2_CMD, OCW2_EOI);
	outb(PIC1_CMD, OCW2_EOI);
}
