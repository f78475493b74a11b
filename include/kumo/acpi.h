/* ACPI tables: hardware-reduced ACPI 6 with a MADT for every vCPU. */
#ifndef KUMO_ACPI_H
#define KUMO_ACPI_H

#include "kumo/util.h"

#define ACPI_TABLES_GPA   0xe0000ULL   /* RSDP first, 16-byte aligned */
#define ACPI_TABLES_MAX   0x10000      /* 64 KiB: up to 0xf0000 */
#define ACPI_SLEEP_CTL_PORT  0x600
#define ACPI_SLEEP_STS_PORT  0x601
#define ACPI_RESET_PORT      0x604
#define ACPI_RESET_VALUE     0x1
#define ACPI_S5_SLP_TYP      5
#define ACPI_SLP_EN          0x20
#define ACPI_SCI_IRQ         9
#define IOAPIC_GPA           0xfec00000ULL
#define LAPIC_GPA            0xfee00000ULL
#define ACPI_MAX_CPUS        254

/* Writes RSDP, RSDT, XSDT, FADT, DSDT and MADT for ncpus vCPUs into buf
 * (which the guest will see at gpa). Returns bytes used, or -ENOSPC. */
int acpi_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned ncpus) WUR;

#endif
