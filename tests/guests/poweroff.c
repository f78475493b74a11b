/*
 * poweroff: ACPI S5. Ends the machine with "powered off" (kumo: status 0);
 * if nothing happens, poweroff() falls back to guest_exit(2).
 */
#include "guest.h"

GUEST("poweroff");

static void show(const char *what, const struct acpi_gas *g)
{
	kprintf("poweroff: %s in %s space at 0x%lx, %u bits\n", what,
		g->space_id == ACPI_SPACE_IO ? "I/O" : "memory", g->address, g->bit_width);
}

void guest_main(void)
{
	struct acpi_power p;
	if (!acpi_power_info(&p)) {
		kprintf("poweroff: no FADT\n");
	} else {
		kprintf("poweroff: FADT %s, \\_S5 SLP_TYP %d\n",
			p.hw_reduced ? "hardware-reduced" : "with fixed hardware", p.s5_slp_typ);
		if (p.has_sleep_control)
			show("SLEEP_CONTROL_REG", &p.sleep_control);
		if (p.has_pm1a_cnt)
			show("PM1a_CNT", &p.pm1a_cnt);
	}
	kprintf("poweroff: bye\n");
	poweroff();
}
