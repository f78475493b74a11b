/* The IDT: a C handler per vector, exceptions and interrupts alike. */
#ifndef GUEST_IDT_H
#define GUEST_IDT_H

#include <stdint.h>

/* The stack as isr_common leaves it; the layout matches isr.S. */
struct int_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

typedef void (*int_handler)(struct int_frame *f);

/* Fills and loads the IDT; every vector starts with a handler that fails
 * the test ("unexpected exception/interrupt"). */
void idt_init(void);
/* Loads the (shared) IDT on this CPU: for APs. */
void idt_load(void);
void idt_set_handler(uint8_t vector, int_handler h);

#define VEC_DE 0
#define VEC_UD 6
#define VEC_GP 13
#define VEC_PF 14

#endif
