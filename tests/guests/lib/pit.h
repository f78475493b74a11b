/* The 8254 PIT, 1.193182 MHz, channel 0 (IRQ 0). */
#ifndef GUEST_PIT_H
#define GUEST_PIT_H

#include <stdint.h>

#define PIT_HZ 1193182u
#define PIT_IRQ 0

/* Channel 0, mode 2 (rate generator), hz interrupts a second. */
void pit_periodic(uint32_t hz);
/* Busy-waits by reading channel 0 back; reprograms it (mode 2, full
 * 65536 count), so do not mix with pit_periodic. */
void pit_delay_us(uint32_t us);
/* The TSC's frequency in kHz, measured against channel 0 over ms
 * milliseconds (busy-waiting as pit_delay_us does, same programming). */
uint32_t pit_tsc_khz(uint32_t ms);

#endif
