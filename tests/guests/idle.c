/*
 * idle: says it is ready, then halts for good with interrupts off, so a
 * benchmark can measure what the VMM costs (memory, CPU) while its guest
 * does nothing. Never ends by itself: stop the VMM (SIGTERM).
 */
#include "guest.h"

GUEST("idle");

void guest_main(void)
{
	kprintf("idle: ready\n");
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}
