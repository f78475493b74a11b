#include "kumo/e820.h"
#include "kumo/memory.h"

unsigned e820_build(const struct guest_mem *mem, struct e820_entry *map)
{
	uint64_t low_end = guest_mem_low_end(mem);
	unsigned n = 0;

	map[n++] = (struct e820_entry){ 0, E820_EBDA_START, E820_TYPE_RAM };
	map[n++] = (struct e820_entry){ E820_EBDA_START, 0xa0000 - E820_EBDA_START, E820_TYPE_RESERVED };
	map[n++] = (struct e820_entry){ E820_BIOS_START, E820_HIGH_START - E820_BIOS_START, E820_TYPE_RESERVED };
	map[n++] = (struct e820_entry){ E820_HIGH_START, low_end - E820_HIGH_START, E820_TYPE_RAM };
	for (unsigned i = 1; i < mem->nr_regions; i++)
		map[n++] = (struct e820_entry){ mem->regions[i].gpa, mem->regions[i].size, E820_TYPE_RAM };
	return n;
}
