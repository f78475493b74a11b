/* The PVH boot ABI: what the loader hands the 32-bit entry in EBX. */
#ifndef GUEST_PVH_H
#define GUEST_PVH_H

#include <stdint.h>

#define PVH_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define E820_RAM 1

/* A copy of what the loader passed, taken before anything can reuse low
 * memory. Empty (magic 0) when EBX did not point at a start_info. */
#define PVH_MAX_MEMMAP 64
#define PVH_MAX_CMDLINE 1024

struct pvh_boot {
	struct hvm_start_info info;
	uint32_t nr_memmap;
	struct hvm_memmap_entry memmap[PVH_MAX_MEMMAP];
	char cmdline[PVH_MAX_CMDLINE];
};

extern struct pvh_boot pvh_boot;

void pvh_init(uint32_t start_info_paddr);

/* The name of an e820 memory-map entry type, for printing. */
static inline const char *e820_type_name(uint32_t type)
{
	switch (type) {
	case 1: return "RAM";
	case 2: return "reserved";
	case 3: return "ACPI";
	case 4: return "NVS";
	case 5: return "unusable";
	default: return "other";
	}
}

#endif
