/* The 8259A pair. */
#ifndef GUEST_PIC_H
#define GUEST_PIC_H

#include <stdint.h>

#define PIC_VECTOR_BASE 0x20 /* IRQ n arrives at vector 0x20 + n */

/* Remaps the pair to vectors 0x20-0x2f and masks every IRQ. */
void pic_init(void);
void pic_unmask(uint8_t irq);
void pic_mask(uint8_t irq);
void pic_eoi(uint8_t irq);

#endif
