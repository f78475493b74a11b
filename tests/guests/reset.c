/*
 * reset: the i8042 reset line (0xfe to port 0x64). Ends the machine with
 * "reset" (kumo: status 3); if nothing happens within 100 ms, FAIL.
 */
#include "guest.h"

GUEST("reset");

void guest_main(void)
{
	kprintf("reset: bye\n");
	reset_i8042();
	fail("the i8042 reset did not reset the machine");
}
