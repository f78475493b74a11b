/* Ending the machine: ACPI power-off, resets. */
#ifndef GUEST_POWER_H
#define GUEST_POWER_H

/* ACPI S5: the FADT's SLEEP_CONTROL_REG (SLP_TYP from \_S5, else 5), then
 * PM1a_CNT (SLP_TYP from \_S5, else 0), each given 100 ms to act; if the
 * machine is still running, guest_exit(2). */
__attribute__((noreturn)) void poweroff(void);
/* Pulses the reset line through the i8042 (0xfe to port 0x64). Returns
 * if the machine did not reset. */
void reset_i8042(void);
/* Writes RESET_VALUE to the FADT's RESET_REG. Returns if nothing happened. */
void reset_acpi(void);

#endif
