/* The local APIC, xAPIC mode, through its MMIO page (0xfee00000). */
#ifndef GUEST_LAPIC_H
#define GUEST_LAPIC_H

#include <stdint.h>

#define LAPIC_SPURIOUS_VECTOR 0xff

/* Software-enables this CPU's LAPIC (SVR), TPR 0, LINT0 ExtINT on the BSP
 * (so the 8259 reaches it; masked on APs), LINT1 NMI, the timer masked.
 * Call once per CPU. */
void lapic_init(void);
uint32_t lapic_id(void);
void lapic_eoi(void);

/* Timer. divide is 1, 2, 4, ..., 128. */
void lapic_timer_oneshot(uint8_t vector, uint32_t divide, uint32_t count);
void lapic_timer_periodic(uint8_t vector, uint32_t divide, uint32_t count);
void lapic_timer_stop(void);
uint32_t lapic_timer_current(void);

/* IPIs. Each waits for the delivery to be accepted. */
void lapic_send_init(uint32_t apic_id);
void lapic_send_sipi(uint32_t apic_id, uint8_t page);
void lapic_send_ipi(uint32_t apic_id, uint8_t vector);

#endif
