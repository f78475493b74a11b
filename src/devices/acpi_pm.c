/* Hardware-reduced ACPI power management: the FADT's SLEEP_CONTROL_REG
 * (power off on \_S5) and RESET_REG. See src/vmm/acpi.c for the tables. */
#include "kumo/acpi.h"
#include "kumo/devices.h"
#include "kumo/machine.h"

#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK  0x1c

static void sleep_ctl_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct machine *m = opaque;

	(void)offset;
	if (!is_write) {
		for (unsigned i = 0; i < len; i++)
			data[i] = 0;
		return;
	}
	if ((data[0] & ACPI_SLP_EN) &&
	    ((data[0] & SLP_TYP_MASK) >> SLP_TYP_SHIFT) == ACPI_S5_SLP_TYP)
		machine_request_exit(m, EXIT_POWEROFF);
}

static void reset_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct machine *m = opaque;

	(void)offset;
	if (!is_write) {
		for (unsigned i = 0; i < len; i++)
			data[i] = 0;
		return;
	}
	if (data[0] == ACPI_RESET_VALUE)
		machine_request_exit(m, EXIT_RESET);
}

int acpi_pm_create(struct machine *m)
{
	int err;

	/* Control and status share one 2-byte range: status reads as 0. */
	err = io_bus_register(&m->pio, ACPI_SLEEP_CTL_PORT, 2, sleep_ctl_io, m, "acpi-sleep");
	if (!err)
		err = io_bus_register(&m->pio, ACPI_RESET_PORT, 1, reset_io, m, "acpi-reset");
	return err;
}
