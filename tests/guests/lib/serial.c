#include "guest.h"

enum {
	UART_DATA = 0, /* RBR/THR; DLL with DLAB */
	UART_IER = 1,  /* DLM with DLAB */
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
};

#define LCR_8N1 0x03
#define LCR_DLAB 0x80
#define MCR_DTR_RTS_OUT2 0x0b
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define IER_RDI 0x01

void serial_init(void)
{
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DATA, 1); /* divisor 1: 115200 baud */
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, LCR_8N1);
	outb(COM1 + UART_MCR, MCR_DTR_RTS_OUT2);
}

void serial_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		cpu_relax();
	outb(COM1 + UART_DATA, (uint8_t)c);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

bool serial_can_read(void)
{
	return inb(COM1 + UART_LSR) & LSR_DR;
}

char serial_getc(void)
{
	while (!serial_can_read())
		cpu_relax();
	return (char)inb(COM1 + UART_DATA);
}

void serial_rx_irq(bool on)
{
	outb(COM1 + UART_IER, on ? IER_RDI : 0);
}
