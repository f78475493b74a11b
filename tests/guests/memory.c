/*
 * memory: the e820 map from hvm_start_info, the RAM it adds up to, and a
 * write/read-back of a pattern in the last page of RAM.
 */
#include "guest.h"

GUEST("memory");

#define WORDS (PAGE_SIZE / 8)

static uint64_t saved[WORDS];

/* Pattern, check, restore: the page may hold firmware data. */
static bool test_page(uint64_t addr)
{
	volatile uint64_t *p = (volatile uint64_t *)addr;
	bool ok = true;
	for (unsigned i = 0; i < WORDS; i++) {
		saved[i] = p[i];
		p[i] = (addr + i * 8) ^ 0x5a5aa5a5c3c33c3cull;
	}
	for (unsigned i = 0; i < WORDS && ok; i++)
		if (p[i] != ((addr + i * 8) ^ 0x5a5aa5a5c3c33c3cull)) {
			kprintf("memory: mismatch at 0x%lx: 0x%lx\n", addr + i * 8, p[i]);
			ok = false;
		}
	for (unsigned i = 0; i < WORDS; i++)
		p[i] = ~p[i];
	for (unsigned i = 0; i < WORDS && ok; i++)
		if (p[i] != ~((addr + i * 8) ^ 0x5a5aa5a5c3c33c3cull)) {
			kprintf("memory: mismatch at 0x%lx: 0x%lx (inverted)\n", addr + i * 8, p[i]);
			ok = false;
		}
	for (unsigned i = 0; i < WORDS; i++)
		p[i] = saved[i];
	return ok;
}

void guest_main(void)
{
	if (pvh_boot.info.magic != PVH_MAGIC)
		fail("no hvm_start_info");
	if (pvh_boot.info.version < 1 || !pvh_boot.nr_memmap)
		fail("no memory map (start_info version %u)", pvh_boot.info.version);

	uint64_t ram = 0, top = 0;
	for (uint32_t i = 0; i < pvh_boot.nr_memmap; i++) {
		const struct hvm_memmap_entry *e = &pvh_boot.memmap[i];
		if (!e->size)
			continue; /* qboot (QEMU microvm) passes an empty last entry */
		kprintf("memory: e820 0x%016lx-0x%016lx type %u (%s)\n", e->addr,
			e->addr + e->size - 1, e->type, e820_type_name(e->type));
		if (e->type != E820_RAM)
			continue;
		ram += e->size;
		if (e->addr + e->size > top)
			top = e->addr + e->size;
	}
	kprintf("memory: %lu MiB of RAM\n", (ram + (1u << 19)) >> 20);
	if (!ram)
		fail("no RAM in the memory map");

	uint64_t last = (top - PAGE_SIZE) & ~(PAGE_SIZE - 1);
	if (!paging_map_identity(last, PAGE_SIZE))
		fail("cannot map 0x%lx", last);
	kprintf("memory: testing the last page, 0x%lx-0x%lx\n", last, last + PAGE_SIZE - 1);
	if (!test_page(last))
		fail("pattern at the top of RAM did not read back");
	pass();
}
