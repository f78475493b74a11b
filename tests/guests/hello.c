/* hello: the smallest guest. Boots through PVH, prints its command line. */
#include "guest.h"

GUEST("hello");

void guest_main(void)
{
	kprintf("Hello from a kumo test guest\n");
	if (pvh_boot.info.magic != PVH_MAGIC)
		fail("no hvm_start_info");
	kprintf("hello: cmdline: %s\n", pvh_boot.cmdline);
	pass();
}
