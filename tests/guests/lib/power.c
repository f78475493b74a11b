#include "guest.h"

#define SLP_EN_HW_REDUCED 0x20    /* SLEEP_CONTROL_REG: SLP_TYP bits 2-4 */
#define SLP_EN_PM1 (1u << 13)     /* PM1_CNT: SLP_TYP bits 10-12 */
#define GRACE_US 100000

void poweroff(void)
{
	struct acpi_power p;
	if (acpi_power_info(&p)) {
		if (p.has_sleep_control) {
			unsigned typ = p.s5_slp_typ >= 0 ? (unsigned)p.s5_slp_typ : 5;
			acpi_gas_write(&p.sleep_control, (typ & 7) << 2 | SLP_EN_HW_REDUCED);
			pit_delay_us(GRACE_US);
		}
		if (p.has_pm1a_cnt) {
			unsigned typ = p.s5_slp_typ >= 0 ? (unsigned)p.s5_slp_typ : 0;
			acpi_gas_write(&p.pm1a_cnt, (typ & 7) << 10 | SLP_EN_PM1);
			pit_delay_us(GRACE_US);
		}
	}
	kprintf("poweroff: ACPI did not power off the machine\n");
	guest_exit(2);
}

void reset_i8042(void)
{
	outb(0x64, 0xfe);
	pit_delay_us(GRACE_US);
}

void reset_acpi(void)
{
	struct acpi_power p;
	if (acpi_power_info(&p) && p.has_reset) {
		acpi_gas_write(&p.reset_reg, p.reset_value);
		pit_delay_us(GRACE_US);
	}
}
