/* The IOAPIC (address from the MADT, normally 0xfec00000). */
#ifndef GUEST_IOAPIC_H
#define GUEST_IOAPIC_H

#include <stdint.h>

/* Finds the IOAPIC and masks every pin. */
void ioapic_init(void);
unsigned ioapic_pins(void);
/* Edge-triggered, active-high, fixed delivery of pin to vector at the
 * CPU with this APIC id; unmasked. */
void ioapic_route(unsigned pin, uint8_t vector, uint32_t apic_id);
void ioapic_mask(unsigned pin);

#endif
