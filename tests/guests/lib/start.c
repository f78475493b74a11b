/* From the assembly entry to guest_main(), and the ways out. */
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

void halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

void guest_exit(uint32_t code)
{
	outl(TEST_EXIT_PORT, code);
	halt_forever();
}

void pass(void)
{
	kprintf("TEST %s: PASS\n", guest_name);
	guest_exit(0);
}

void fail(const char *fmt, ...)
{
	va_list ap;
	kprintf("TEST %s: FAIL ", guest_name);
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	guest_exit(1);
}
