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

void vfail_code(uint32_t code, const char *fmt, va_list ap)
{
	kprintf("TEST %s: FAIL ", guest_name);
	kvprintf(fmt, ap);
	if (code != 1)
		kprintf(" (code %u)", code);
	kprintf("\n");
	guest_exit(code);
}

void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_code(1, fmt, ap);
}
