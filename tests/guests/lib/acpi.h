/* Reading the firmware's ACPI tables: RSDP, XSDT/RSDT, MADT, FADT, DSDT. */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdbool.h>
#include <stdint.h>

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id; /* 0 memory, 1 I/O port */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));

#define ACPI_SPACE_MEMORY 0
#define ACPI_SPACE_IO 1

/* The RSDP's address: hvm_start_info.rsdp_paddr, else a scan of the EBDA
 * and 0xe0000-0xfffff. 0 if there is none. */
uint64_t acpi_rsdp(void);
/* The first table with this signature ("APIC", "FACP", ...), or NULL. */
const struct acpi_header *acpi_find_table(const char *signature);

/* MADT: the APIC ids of the enabled CPUs (up to max stored); returns how
 * many there are, 0 without a MADT. */
int acpi_cpu_apic_ids(uint32_t *ids, int max);
/* MADT: the first IOAPIC's address (0xfec00000 without a MADT). */
uint64_t acpi_ioapic_address(void);
/* MADT: the GSI an ISA IRQ arrives on, after interrupt source overrides. */
uint32_t acpi_isa_irq_gsi(uint8_t irq);

struct acpi_power {
	bool hw_reduced;           /* FADT flag HW_REDUCED_ACPI */
	bool has_sleep_control;    /* SLEEP_CONTROL_REG */
	struct acpi_gas sleep_control;
	bool has_pm1a_cnt;         /* X_PM1a_CNT_BLK or PM1a_CNT_BLK */
	struct acpi_gas pm1a_cnt;
	bool has_reset;            /* RESET_REG */
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	int s5_slp_typ;            /* from \_S5 in the DSDT; -1 unknown */
};

/* From the FADT (and the DSDT for \_S5). False without a FADT. */
bool acpi_power_info(struct acpi_power *p);
/* Writes v to the register a GAS describes. False if it cannot. */
bool acpi_gas_write(const struct acpi_gas *g, uint64_t v);

#endif
