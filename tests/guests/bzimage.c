/*
 * bzimage: the Linux 64-bit boot protocol, as a small bzImage (built by
 * mkbzimage.py around this guest; entry in bzimage-entry.S, not the PVH
 * one). Checks what a 64-bit kernel relies on at startup_64:
 *   - long mode (the code runs as 64-bit, CS.L in the loader's GDT,
 *     EFER.LMA) with paging on, interrupts off;
 *   - boot_params: the loader type (0xff), the setup header it copied, the
 *     command line at cmd_line_ptr, the e820 table, acpi_rsdp_addr
 *     pointing at "RSD PTR ", and the initrd (ramdisk_image/size), whose
 *     FNV-1a 32-bit hash it prints for the host to compare;
 *   - whether the compressed payload (payload_offset/length, when
 *     mkbzimage.py --compress put one there, past .bss) is in memory: it
 *     is when the loader copied the bzImage as it is, and not when the
 *     loader unpacked the payload (this guest's ELF) and loaded that.
 */
#include "guest.h"

GUEST("bzimage");

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst and
 * boot.rst). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_BOOT_FLAG 0x1fe
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PAYLOAD_OFFSET 0x248
#define BP_PAYLOAD_LENGTH 0x24c
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define E820_MAX_ENTRIES 128 /* the zero page's table */
#define E820_ENTRY_SIZE 20

#define LOAD_ADDR 0x100000u
#define EFER_LMA (1u << 10)
#define RFLAGS_IF (1u << 9)

extern char _end[];

static uint8_t bp8(const uint8_t *bp, unsigned off) { return bp[off]; }
static uint16_t bp16(const uint8_t *bp, unsigned off) { uint16_t v; memcpy(&v, bp + off, 2); return v; }
static uint32_t bp32(const uint8_t *bp, unsigned off) { uint32_t v; memcpy(&v, bp + off, 4); return v; }
static uint64_t bp64(const uint8_t *bp, unsigned off) { uint64_t v; memcpy(&v, bp + off, 8); return v; }

static uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static uint16_t read_cs(void) { uint16_t v; __asm__ volatile("mov %%cs, %0" : "=r"(v)); return v; }

struct dtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* 1 when this code runs as 64-bit code: 0x48 is REX.W before "inc eax"
 * (inc rax: 1), but "dec eax" in 32-bit code (then inc: 0). */
static uint32_t runs_64bit(void)
{
	uint32_t v;
	__asm__ volatile("xorl %%eax, %%eax\n\t.byte 0x48, 0xff, 0xc0\n\tmovl %%eax, %0"
			 : "=r"(v) : : "rax");
	return v;
}

/* The same layout as the loader's and the PVH guests' (layout.h), so the
 * library's IDT (SEL_CODE64 gates) works unchanged. */
static const uint64_t gdt[] __attribute__((aligned(16))) = {
	0,
	0x00cf9a000000ffffull, /* 0x08 32-bit code */
	0x00af9a000000ffffull, /* 0x10 64-bit code */
	0x00cf92000000ffffull, /* 0x18 data */
};

static void load_gdt(void)
{
	struct dtr d = { sizeof(gdt) - 1, (uint64_t)gdt };
	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\tmovl %2, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%ss\n\t"
			 "movl %%eax, %%fs\n\t"
			 "movl %%eax, %%gs"
			 : : "m"(d), "i"(SEL_CODE64), "i"(SEL_DATA) : "rax", "memory");
}

/* Long mode, as the loader set it up, before anything here changes it. */
static void check_mode(uint64_t entry_rflags)
{
	struct dtr g;
	__asm__ volatile("sgdt %0" : "=m"(g));
	uint16_t cs = read_cs();
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = rdmsr(MSR_EFER);
	uint64_t desc = 0;
	if ((uint32_t)(cs & ~7u) + 7 <= g.limit)
		desc = *(const volatile uint64_t *)(g.base + (cs & ~7u));
	unsigned l = (desc >> 53) & 1, d = (desc >> 54) & 1;
	kprintf("bzimage: CS 0x%x (GDT at 0x%lx: L=%u D=%u), EFER 0x%lx, CR0 0x%lx, CR4 0x%lx, CR3 0x%lx\n",
		cs, g.base, l, d, efer, cr0, cr4, read_cr3());
	if (!runs_64bit())
		fail("the code does not run as 64-bit code");
	if (!l || d)
		fail("CS 0x%x is not a 64-bit code segment (descriptor 0x%016lx)", cs, desc);
	if (!(efer & EFER_LMA) || !(efer & EFER_LME))
		fail("EFER 0x%lx: long mode not active", efer);
	if (!(cr0 & CR0_PG) || !(cr0 & CR0_PE) || !(cr4 & CR4_PAE))
		fail("paging is not on (CR0 0x%lx, CR4 0x%lx)", cr0, cr4);
	if (entry_rflags & RFLAGS_IF)
		fail("entered with interrupts on (RFLAGS 0x%lx)", entry_rflags);
	kprintf("bzimage: 64-bit mode, paging on, interrupts off\n");
}

/* Prints the e820 table; returns the RAM (type 1) in bytes. */
static uint64_t check_e820(const uint8_t *bp, uint64_t *top_low)
{
	unsigned n = bp8(bp, BP_E820_ENTRIES);
	if (n == 0 || n > E820_MAX_ENTRIES)
		fail("e820_entries is %u", n);
	uint64_t ram = 0;
	*top_low = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + i * E820_ENTRY_SIZE;
		uint64_t addr = bp64(e, 0), size = bp64(e, 8);
		uint32_t type = bp32(e, 16);
		if (!size)
			continue;
		kprintf("bzimage: e820 0x%016lx-0x%016lx type %u (%s)\n", addr, addr + size - 1, type,
			e820_type_name(type));
		if (type != E820_RAM)
			continue;
		ram += size;
		if (addr + size <= 0x100000000ull && addr + size > *top_low)
			*top_low = addr + size;
	}
	kprintf("bzimage: %lu MiB of RAM\n", (ram + (1u << 19)) >> 20);
	if (!ram)
		fail("no RAM in the e820 table");
	return ram;
}

static void check_rsdp(const uint8_t *bp)
{
	uint64_t rsdp = bp64(bp, BP_ACPI_RSDP_ADDR);
	if (!rsdp || rsdp >= 0x100000000ull)
		fail("acpi_rsdp_addr is 0x%lx", rsdp);
	const uint8_t *p = (const uint8_t *)rsdp;
	if (memcmp(p, "RSD PTR ", 8))
		fail("acpi_rsdp_addr 0x%lx does not point at \"RSD PTR \"", rsdp);
	uint8_t sum = 0;
	for (int i = 0; i < 20; i++)
		sum += p[i];
	if (sum)
		fail("the RSDP at 0x%lx has a bad checksum", rsdp);
	kprintf("bzimage: RSDP at 0x%lx (revision %u)\n", rsdp, p[15]);
}

static uint32_t fnv1a32(const uint8_t *p, uint64_t n)
{
	uint32_t h = 0x811c9dc5u;
	for (uint64_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

static void check_initrd(const uint8_t *bp, uint64_t top_low)
{
	uint64_t addr = bp32(bp, BP_RAMDISK_IMAGE) | (uint64_t)bp32(bp, BP_EXT_RAMDISK_IMAGE) << 32;
	uint64_t size = bp32(bp, BP_RAMDISK_SIZE) | (uint64_t)bp32(bp, BP_EXT_RAMDISK_SIZE) << 32;
	uint64_t max = bp32(bp, BP_INITRD_ADDR_MAX);
	uint64_t kernel_end = LOAD_ADDR + bp32(bp, BP_INIT_SIZE);
	if (!size) {
		kprintf("bzimage: no initrd (ramdisk_image 0x%lx)\n", addr);
		return;
	}
	kprintf("bzimage: initrd at 0x%lx-0x%lx (initrd_addr_max 0x%lx)\n", addr, addr + size - 1, max);
	if (addr < kernel_end)
		fail("the initrd at 0x%lx overlaps the kernel (up to 0x%lx)", addr, kernel_end);
	if (addr + size - 1 > max)
		fail("the initrd ends above initrd_addr_max 0x%lx", max);
	if (addr + size > top_low)
		fail("the initrd ends above low RAM (0x%lx)", top_low);
	kprintf("bzimage: initrd %lu bytes fnv1a32 0x%08x\n", size, fnv1a32((const uint8_t *)addr, size));
}

static void check_payload(const uint8_t *bp)
{
	uint32_t off = bp32(bp, BP_PAYLOAD_OFFSET), len = bp32(bp, BP_PAYLOAD_LENGTH);
	const volatile uint8_t *p = (const volatile uint8_t *)(uint64_t)(LOAD_ADDR + off);
	unsigned nonzero = 0;

	if (!len) {
		kprintf("bzimage: no compressed payload\n");
		return;
	}
	if ((uint64_t)LOAD_ADDR + off < (uint64_t)_end)
		fail("the payload at +0x%x lies inside the image (ends at 0x%lx)", off, (uint64_t)_end);
	for (unsigned i = 0; i < 16 && i < len; i++)
		nonzero += p[i] != 0;
	kprintf("bzimage: payload of %u bytes at 0x%lx: %s\n", len, (uint64_t)p,
		nonzero ? "in memory (loaded as it is)" : "not in memory (unpacked by the loader)");
}

void bzimage_start(const uint8_t *bp, uint64_t entry_rsp, uint64_t entry_rflags);
void bzimage_start(const uint8_t *bp, uint64_t entry_rsp, uint64_t entry_rflags)
{
	serial_init();
	kprintf("bzimage: entered at 0x%lx, RSI (boot_params) 0x%lx, RSP 0x%lx, RFLAGS 0x%lx\n",
		(uint64_t)LOAD_ADDR + 0x200, (uint64_t)bp, entry_rsp, entry_rflags);
	check_mode(entry_rflags);
	load_gdt();
	idt_init();

	if ((uint64_t)bp == 0 || (uint64_t)bp >= LOAD_ADDR)
		fail("RSI 0x%lx does not look like boot_params", (uint64_t)bp);
	if (bp16(bp, BP_BOOT_FLAG) != 0xaa55 || memcmp(bp + BP_HEADER, "HdrS", 4))
		fail("boot_params holds no setup header (boot flag 0x%x)", bp16(bp, BP_BOOT_FLAG));
	uint16_t version = bp16(bp, BP_VERSION);
	kprintf("bzimage: boot protocol %u.%02u, type_of_loader 0x%02x, loadflags 0x%02x, "
		"xloadflags 0x%02x, init_size 0x%x (image ends at 0x%lx)\n",
		version >> 8, version & 0xff, bp8(bp, BP_TYPE_OF_LOADER), bp8(bp, BP_LOADFLAGS),
		bp8(bp, BP_XLOADFLAGS), bp32(bp, BP_INIT_SIZE), (uint64_t)_end);
	if (bp8(bp, BP_TYPE_OF_LOADER) != 0xff)
		fail("type_of_loader is 0x%02x, want 0xff", bp8(bp, BP_TYPE_OF_LOADER));
	if ((uint64_t)_end > LOAD_ADDR + bp32(bp, BP_INIT_SIZE))
		fail("init_size 0x%x does not cover the image", bp32(bp, BP_INIT_SIZE));

	uint64_t cmd = bp32(bp, BP_CMD_LINE_PTR) | (uint64_t)bp32(bp, BP_EXT_CMD_LINE_PTR) << 32;
	if (!cmd)
		fail("cmd_line_ptr is 0");
	const char *cmdline = (const char *)cmd;
	size_t len = 0, max = bp32(bp, BP_CMDLINE_SIZE);
	while (len <= max && cmdline[len])
		len++;
	if (len > max)
		fail("the command line at 0x%lx is longer than cmdline_size %lu", cmd, (uint64_t)max);
	kprintf("bzimage: cmdline at 0x%lx: %s\n", cmd, cmdline);

	uint64_t top_low;
	check_e820(bp, &top_low);
	check_rsdp(bp);
	check_initrd(bp, top_low);
	check_payload(bp);
	pass();
}
