/* Starting application processors: INIT, SIPI, SIPI to the trampoline. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdbool.h>
#include <stdint.h>

#define SMP_MAX_CPUS 16

typedef void (*ap_func)(unsigned cpu);

/* Starts the CPU with this APIC id; it loads the IDT, enables its LAPIC
 * and calls fn(cpu) on a stack of its own, then halts when fn returns.
 * Waits (bounded) until the AP has reached C; false if it did not.
 * cpu is the caller's index for it, 1 .. SMP_MAX_CPUS-1. */
bool smp_start_ap(uint32_t apic_id, unsigned cpu, ap_func fn);

#endif
