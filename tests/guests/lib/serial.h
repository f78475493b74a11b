/* COM1, the 16550A UART at 0x3f8 (IRQ 4). */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#include <stdbool.h>

#define COM1 0x3f8
#define COM1_IRQ 4

/* 115200 8N1, FIFOs left as they are (so input already queued survives),
 * interrupts off, OUT2 on (the PC's IRQ gate). */
void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
bool serial_can_read(void);
/* Busy-waits for a character. */
char serial_getc(void);
/* Receive-data-available interrupt on or off (IER bit 0). */
void serial_rx_irq(bool on);

#endif
