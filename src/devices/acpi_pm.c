/* Hardware-reduced ACPI power management: the FADT's SLEEP_CONTROL_REG
 * (power off on \_S5) and RESET_REG. See src/vmm/acpi.c for the tables. */
#include "kumo/acpi.h"
#include "kumo/devices.h"
#include "kumo/machine.h"

#include <string.h>

#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK  0x1c

/* One range from SLEEP_CONTROL_REG to RESET_REG; the others read as 0. */
static void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct machine *m = opaque;
	uint16_t port = ACPI_SLEEP_CTL_PORT + offset;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (port == ACPI_SLEEP_CTL_PORT && (data[0] & ACPI_SLP_EN) &&
	    ((data[0] & SLP_TYP_MASK) >> SLP_TYP_SHIFT) == ACPI_S5_SLP_TYP)
		machine_request_exit(m, EXIT_POWEROFF);
	else if (port == ACPI_RESET_PORT && data[0] == ACPI_RESET_VALUE)
		machine_request_exit(m, EXIT_RESET);
}

int acpi_pm_create(struct machine *m)
{
	return io_bus_register(&m->pio, ACPI_SLEEP_CTL_PORT,
			       ACPI_RESET_PORT - ACPI_SLEEP_CTL_PORT + 1, acpi_pm_io, m, "acpi-pm");
}
