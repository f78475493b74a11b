/* The e820 memory map the guest is told about, derived from guest RAM. */
#ifndef KUMO_E820_H
#define KUMO_E820_H

#include "kumo/util.h"

struct guest_mem;

enum { E820_TYPE_RAM = 1, E820_TYPE_RESERVED = 2 };
#define E820_MAX 8

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

#define E820_EBDA_START  0x9fc00ULL
#define E820_BIOS_START  0xe0000ULL
#define E820_HIGH_START  0x100000ULL

/* Fills map (E820_MAX entries), returns the number of entries. */
unsigned e820_build(const struct guest_mem *mem, struct e820_entry *map);

#endif
