/* The ways out: pass, fail, the test-exit port, halting. Nothing here
 * depends on the PVH entry (the bzimage guest links it too). */
#include "guest.h"

void halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

void guest_exit(uint32_t code)
{
	outl(TEST_EXIT_PORT, code);
	halt_forever();
}

void pass(void)
{
	kprintf("TEST %s: PASS\n", guest_name);
	guest_exit(0);
}

void fail(const char *fmt, ...)
{
	va_list ap;
	kprintf("TEST %s: FAIL ", guest_name);
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	guest_exit(1);
}
