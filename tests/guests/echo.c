/*
 * echo: serial input through the receive interrupt. IRQ 4 goes through
 * the IOAPIC (the 8259 is masked); the CPU HLTs until it arrives. Each
 * line read comes back as "echo: <line>"; the line "quit" ends the test.
 */
#include "guest.h"

GUEST("echo");

#define VEC_SERIAL 0x34
#define RING 256
#define LINE 128

static volatile uint8_t ring[RING];
static volatile unsigned ring_head, ring_tail; /* written by the handler / main */
static volatile unsigned irqs;
static volatile bool throttled; /* ring full: receive interrupt off */

static void on_serial(struct int_frame *f)
{
	(void)f;
	irqs++;
	/* Take only what fits; the rest waits in the UART (back-pressure). */
	while (ring_head - ring_tail < RING && serial_can_read())
		ring[ring_head++ % RING] = (uint8_t)inb(COM1);
	if (ring_head - ring_tail == RING) {
		throttled = true;
		serial_rx_irq(false);
	}
	lapic_eoi();
}

/* HLTs until a character is queued; interrupts are off outside the HLT. */
static char next_char(void)
{
	char c;

	while (ring_tail == ring_head) {
		sti_hlt();
		cli();
	}
	c = (char)ring[ring_tail++ % RING];
	if (throttled) {
		throttled = false;
		serial_rx_irq(true);
	}
	return c;
}

void guest_main(void)
{
	idt_set_handler(VEC_SERIAL, on_serial);
	pic_init();
	ioapic_init();
	lapic_init();
	uint32_t gsi = acpi_isa_irq_gsi(COM1_IRQ);
	ioapic_route(gsi, VEC_SERIAL, lapic_id());
	serial_rx_irq(true);
	kprintf("echo: ready\n");

	char line[LINE];
	unsigned len = 0;
	for (;;) {
		char c = next_char();
		if (c != '\n' && c != '\r') {
			if (len < LINE - 1)
				line[len++] = c;
			continue;
		}
		if (!len)
			continue; /* the second half of "\r\n", or an empty line */
		line[len] = '\0';
		len = 0;
		kprintf("echo: %s\n", line);
		if (!strcmp(line, "quit"))
			break;
	}
	serial_rx_irq(false);
	ioapic_mask(gsi);
	kprintf("echo: %u receive interrupts\n", irqs);
	pass();
}
