/* From the PVH assembly entry (entry.S) to guest_main(). */
#include "guest.h"

struct pvh_boot pvh_boot;

void pvh_init(uint32_t paddr)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)paddr;
	if (!paddr || si->magic != PVH_MAGIC)
		return;
	pvh_boot.info = *si;
	if (si->version >= 1 && si->memmap_paddr) {
		uint32_t n = si->memmap_entries;
		if (n > PVH_MAX_MEMMAP)
			n = PVH_MAX_MEMMAP;
		memcpy(pvh_boot.memmap, (const void *)si->memmap_paddr, n * sizeof(pvh_boot.memmap[0]));
		pvh_boot.nr_memmap = n;
	}
	if (si->cmdline_paddr) {
		const char *c = (const char *)si->cmdline_paddr;
		size_t i = 0;
		for (; i < PVH_MAX_CMDLINE - 1 && c[i]; i++)
			pvh_boot.cmdline[i] = c[i];
		pvh_boot.cmdline[i] = '\0';
	}
}

void guest_start(uint32_t start_info);
void guest_start(uint32_t start_info)
{
	serial_init();
	pvh_init(start_info);
	idt_init();
	if (pvh_boot.info.magic != PVH_MAGIC)
		kprintf("guest: warning: no hvm_start_info (ebx 0x%x)\n", start_info);
	guest_main();
	fail("guest_main returned without a verdict");
}
