/* Puts a kernel, its initrd and command line into guest memory and sets up
 * the boot vCPU: the Linux 64-bit boot protocol for bzImage and vmlinux,
 * the PVH boot ABI for ELF images with a PVH note. */
#include "kumo/boot.h"
#include "kumo/e820.h"
#include "kumo/kernel_unpack.h"
#include "kumo/log.h"
#include "kumo/memory.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18

/* PVH start info (the Xen public ABI, xen/include/public/arch-x86/hvm/start_info.h). */
struct pvh_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct pvh_module {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct pvh_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static const uint64_t gdt[] = {
	0,
	0x00cf9b000000ffffULL, /* 0x08: 32-bit code, flat, accessed */
	0x00af9b000000ffffULL, /* 0x10: 64-bit code */
	0x00cf93000000ffffULL, /* 0x18: data, flat */
};

static struct x86_seg code_seg(bool long_mode)
{
	return (struct x86_seg){
		.base = 0, .limit = 0xffffffff, .sel = long_mode ? SEL_CODE64 : SEL_CODE32,
		.type = 0xb, .s = 1, .present = 1, .l = long_mode, .db = !long_mode, .g = 1,
	};
}

static void flat_state(struct x86_cpu_state *c, bool long_mode)
{
	struct x86_seg data = {
		.base = 0, .limit = 0xffffffff, .sel = SEL_DATA,
		.type = 0x3, .s = 1, .present = 1, .db = 1, .g = 1,
	};

	memset(c, 0, sizeof(*c));
	c->cs = code_seg(long_mode);
	c->ds = c->es = c->fs = c->gs = c->ss = data;
	c->tr = (struct x86_seg){ .limit = 0x67, .type = 0xb, .present = 1 };
	c->ldt = (struct x86_seg){ .limit = 0xffff, .type = 0x2, .present = 1 };
	c->gdt = (struct x86_dtable){ BOOT_GDT_GPA, sizeof(gdt) - 1 };
	c->idt = (struct x86_dtable){ 0, 0 };
	c->rflags = X86_RFLAGS_FIXED;
	c->cr0 = X86_CR0_PE | X86_CR0_ET;
	if (long_mode) {
		c->cr0 |= X86_CR0_PG;
		c->cr3 = BOOT_PML4_GPA;
		c->cr4 = X86_CR4_PAE;
		c->efer = X86_EFER_LME | X86_EFER_LMA;
		c->gpr[X86_RSP] = c->gpr[X86_RBP] = BOOT_STACK_GPA;
	}
}

/* Identity map of the first 4 GiB with 2 MiB pages: PML4, PDPT, 4 PDs. */
static int write_page_tables(struct guest_mem *mem)
{
	uint64_t *pml4 = gpa_ptr(mem, BOOT_PML4_GPA, 6 * 4096);
	uint64_t *pdpt, *pd;

	if (!pml4)
		return -ENOMEM;
	memset(pml4, 0, 6 * 4096);
	pdpt = pml4 + 512;
	pd = pdpt + 512;
	pml4[0] = (BOOT_PML4_GPA + 0x1000) | 0x3;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PML4_GPA + 0x2000 + i * 0x1000) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
	return 0;
}

static int write_cmdline(struct guest_mem *mem, const char *cmdline, size_t max, const char **why)
{
	size_t n = strlen(cmdline);

	if (n > max || n >= BOOT_CMDLINE_MAX) {
		*why = "kernel command line too long for this kernel";
		return -E2BIG;
	}
	return guest_mem_write(mem, BOOT_CMDLINE_GPA, cmdline, n + 1);
}

/* The initrd goes as high as it may below limit, page aligned, above floor. */
static int place_initrd(struct guest_mem *mem, const struct boot_config *bc,
			uint64_t floor, uint64_t limit, uint64_t *gpa, const char **why)
{
	uint64_t top = MIN(guest_mem_low_end(mem), limit);

	*gpa = 0;
	if (!bc->initrd)
		return 0;
	if (bc->initrd_len > top || ALIGN_DOWN(top - bc->initrd_len, 4096) < floor) {
		*why = "initrd does not fit in guest memory below its address limit (use more --memory)";
		return -ENOSPC;
	}
	*gpa = ALIGN_DOWN(top - bc->initrd_len, 4096);
	return guest_mem_write(mem, *gpa, bc->initrd, bc->initrd_len);
}

static int write_boot_params(struct guest_mem *mem, const struct boot_config *bc,
			     const uint8_t *hdr, size_t hdr_len, uint64_t initrd_gpa)
{
	struct boot_params *bp = gpa_ptr(mem, BOOT_PARAMS_GPA, sizeof(*bp));
	struct e820_entry map[E820_MAX];
	unsigned n = e820_build(mem, map);

	if (!bp)
		return -ENOMEM;
	memset(bp, 0, sizeof(*bp));
	if (hdr) {
		/* The kernel's own header, as the boot protocol asks; never more
		 * than struct setup_header, whatever the file claims. */
		hdr_len = MIN(hdr_len, 0x1f1 + sizeof(bp->hdr));
		memcpy(&bp->hdr, hdr + 0x1f1, hdr_len - 0x1f1);
	} else {
		bp->hdr.boot_flag = 0xaa55;
		bp->hdr.header = 0x53726448; /* "HdrS" */
		bp->hdr.version = 0x020f;
	}
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.cmd_line_ptr = BOOT_CMDLINE_GPA;
	bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
	bp->hdr.ramdisk_size = bc->initrd ? (uint32_t)bc->initrd_len : 0;
	bp->acpi_rsdp_addr = bc->rsdp_gpa;
	for (unsigned i = 0; i < n; i++) {
		bp->e820_table[i].addr = map[i].addr;
		bp->e820_table[i].size = map[i].size;
		bp->e820_table[i].type = map[i].type;
	}
	bp->e820_entries = n;
	return 0;
}

static int boot_bzimage(struct guest_mem *mem, const struct boot_config *bc,
			const struct bzimage *bz, struct x86_cpu_state *cpu, const char **why)
{
	/* The decompressor runs the kernel at pref_address
	 * (LOAD_PHYSICAL_ADDR) when that is above where it was loaded, and
	 * needs init_size bytes from there: nothing else may live there. */
	uint64_t start = MAX(BOOT_KERNEL_GPA, bz->pref_address), initrd_gpa;
	uint64_t kernel_end = start + bz->init_size;
	size_t cmax = bz->version >= 0x0206 ? bz->cmdline_size : 255;
	int err;

	if (start > guest_mem_low_end(mem) || kernel_end > guest_mem_low_end(mem)) {
		*why = "kernel does not fit in guest memory (use more --memory)";
		return -ENOSPC;
	}
	if ((err = guest_mem_write(mem, BOOT_KERNEL_GPA, bz->kernel, bz->kernel_size)))
		return err;
	if ((err = place_initrd(mem, bc, kernel_end, (uint64_t)bz->initrd_addr_max + 1, &initrd_gpa, why)))
		return err;
	if ((err = write_cmdline(mem, bc->cmdline, cmax, why)))
		return err;
	if ((err = write_boot_params(mem, bc, bc->kernel, bz->hdr_end, initrd_gpa)))
		return err;
	flat_state(cpu, true);
	cpu->rip = BOOT_KERNEL_GPA + 0x200;
	cpu->gpr[X86_RSI] = BOOT_PARAMS_GPA;
	return 0;
}

static int load_segments(struct guest_mem *mem, const uint8_t *file,
			 const struct elf_image *elf, uint64_t *end, const char **why)
{
	*end = 0;
	for (unsigned i = 0; i < elf->nr_segments; i++) {
		const struct elf_segment *s = &elf->seg[i];
		uint8_t *p = gpa_ptr(mem, s->paddr, s->memsz);

		if (!p || s->paddr < BOOT_KERNEL_GPA) {
			*why = "ELF segment lies outside guest RAM above 1 MiB (use more --memory?)";
			return -ENOSPC;
		}
		memcpy(p, file + s->offset, s->filesz);
		memset(p + s->filesz, 0, s->memsz - s->filesz);
		*end = MAX(*end, s->paddr + s->memsz);
	}
	return 0;
}

static int write_pvh_info(struct guest_mem *mem, const struct boot_config *bc, uint64_t initrd_gpa)
{
	struct pvh_start_info *si = gpa_ptr(mem, BOOT_PVH_INFO_GPA, sizeof(*si));
	struct pvh_module *mod = gpa_ptr(mem, BOOT_PVH_MODS_GPA, sizeof(*mod));
	struct pvh_memmap_entry *mm = gpa_ptr(mem, BOOT_PVH_MEMMAP_GPA, E820_MAX * sizeof(*mm));
	struct e820_entry map[E820_MAX];
	unsigned n = e820_build(mem, map);

	if (!si || !mod || !mm)
		return -ENOMEM;
	*si = (struct pvh_start_info){
		.magic = PVH_START_MAGIC, .version = 1,
		.cmdline_paddr = BOOT_CMDLINE_GPA, .rsdp_paddr = bc->rsdp_gpa,
		.memmap_paddr = BOOT_PVH_MEMMAP_GPA, .memmap_entries = n,
	};
	if (bc->initrd) {
		*mod = (struct pvh_module){ .paddr = initrd_gpa, .size = bc->initrd_len };
		si->nr_modules = 1;
		si->modlist_paddr = BOOT_PVH_MODS_GPA;
	}
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct pvh_memmap_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	return 0;
}

static int boot_elf(struct guest_mem *mem, const struct boot_config *bc,
		    const struct elf_image *elf, struct x86_cpu_state *cpu, const char **why)
{
	uint64_t end, initrd_gpa;
	int err;

	if ((err = load_segments(mem, bc->kernel, elf, &end, why)))
		return err;
	if ((err = place_initrd(mem, bc, ALIGN_UP(end, 4096), MMIO_HOLE_START, &initrd_gpa, why)))
		return err;
	if ((err = write_cmdline(mem, bc->cmdline, BOOT_CMDLINE_MAX - 1, why)))
		return err;
	if (elf->has_pvh) {
		if ((err = write_pvh_info(mem, bc, initrd_gpa)))
			return err;
		flat_state(cpu, false);
		cpu->rip = elf->pvh_entry;
		cpu->gpr[X86_RBX] = BOOT_PVH_INFO_GPA;
		return 0;
	}
	if ((err = write_boot_params(mem, bc, NULL, 0, initrd_gpa)))
		return err;
	flat_state(cpu, true);
	cpu->rip = elf->entry;
	cpu->gpr[X86_RSI] = BOOT_PARAMS_GPA;
	return 0;
}

int boot_unpack_parse(const char *s, enum boot_unpack *mode)
{
	if (!strcmp(s, "host"))
		*mode = BOOT_UNPACK_HOST;
	else if (!strcmp(s, "guest"))
		*mode = BOOT_UNPACK_GUEST;
	else
		return -EINVAL;
	return 0;
}

/* Checks an unpacked vmlinux before anything is written: every PT_LOAD in
 * guest RAM above 1 MiB, the entry inside a segment's file bytes, and the
 * memory the kernel needs (init_size from its lowest address, or its
 * segments' end if that is higher) in low RAM. *floor: where that ends. */
static int check_vmlinux(struct guest_mem *mem, const struct bzimage *bz,
			 const struct elf_image *elf, uint64_t *floor, const char **why)
{
	uint64_t lo = UINT64_MAX, end = 0;
	bool entry_ok = false;

	for (unsigned i = 0; i < elf->nr_segments; i++) {
		const struct elf_segment *s = &elf->seg[i];

		if (s->paddr < BOOT_KERNEL_GPA || !gpa_ptr(mem, s->paddr, s->memsz)) {
			*why = "a segment of the unpacked kernel lies outside guest RAM above 1 MiB";
			return -ENOSPC;
		}
		lo = MIN(lo, s->paddr);
		end = MAX(end, s->paddr + s->memsz);
		if (elf->entry >= s->paddr && elf->entry - s->paddr < s->filesz)
			entry_ok = true;
	}
	if (!entry_ok) {
		*why = "the unpacked kernel's entry point is not in a loaded segment";
		return -ENOEXEC;
	}
	*floor = ALIGN_UP(MAX(end, lo + bz->init_size), 4096);
	if (*floor > guest_mem_low_end(mem)) {
		*why = "the unpacked kernel does not fit in guest memory";
		return -ENOSPC;
	}
	return 0;
}

/* The bzImage's payload unpacked here: the vmlinux inside it is loaded at
 * its link address (LOAD_PHYSICAL_ADDR, so the kernel never learns of a
 * relocation: the guest's decompressor would have put it there too without
 * KASLR) and entered at startup_64 (e_entry) with the bzImage's own setup
 * header in boot_params, KASLR_FLAG clear. The guest's decompressor does
 * nothing else the kernel needs on this machine: relocations apply only to
 * a kernel moved from its link address, and the rest (its own page tables,
 * GDT, SEV/TDX set-up, 5-level paging trampoline) the kernel does again.
 * Returns 1 when the payload is not an unpackable x86-64 vmlinux (*why:
 * why not; nothing was written), 0 when booted, <0 on a layout error. */
static int boot_bzimage_unpacked(struct guest_mem *mem, const struct boot_config *bc,
				 const struct bzimage *bz, struct x86_cpu_state *cpu,
				 const char **why)
{
	size_t cmax = bz->cmdline_size, vm_len;
	uint64_t floor, end, initrd_gpa, t0 = now_ns();
	struct elf_image elf;
	struct boot_params *bp;
	const char *format;
	uint8_t *vm;
	int err;

	if (!bz->payload) {
		*why = "the bzImage has no payload inside the file";
		return 1;
	}
	if (kernel_unpack(bz->payload, bz->payload_len, MIN(bz->init_size, KERNEL_UNPACK_MAX),
			  &vm, &vm_len, &format, why))
		return 1;
	if (elf_parse(vm, vm_len, &elf, why) || check_vmlinux(mem, bz, &elf, &floor, why)) {
		free(vm);
		return 1;
	}
	err = load_segments(mem, vm, &elf, &end, why);
	free(vm);
	if (err)
		return err;
	log_info("kernel: %s payload unpacked on the host (%zu -> %zu bytes, %.1f ms), "
		 "entering the vmlinux at 0x%llx", format, bz->payload_len, vm_len,
		 (double)(now_ns() - t0) / 1e6, (unsigned long long)elf.entry);
	if ((err = place_initrd(mem, bc, floor, (uint64_t)bz->initrd_addr_max + 1, &initrd_gpa, why)))
		return err;
	if ((err = write_cmdline(mem, bc->cmdline, cmax, why)))
		return err;
	if ((err = write_boot_params(mem, bc, bc->kernel, bz->hdr_end, initrd_gpa)))
		return err;
	bp = gpa_ptr(mem, BOOT_PARAMS_GPA, sizeof(*bp));
	bp->hdr.loadflags &= ~KASLR_FLAG; /* not randomized: kaslr_enabled() is false */
	flat_state(cpu, true);
	cpu->rip = elf.entry;
	cpu->gpr[X86_RSI] = BOOT_PARAMS_GPA;
	return 0;
}

int boot_load(struct guest_mem *mem, const struct boot_config *bc,
	      struct x86_cpu_state *cpu, const char **why)
{
	struct bzimage bz;
	struct elf_image elf;
	const char *bz_why, *elf_why;
	int err;

	*why = "cannot lay out the kernel in guest memory"; /* until a step says more */
	if ((err = guest_mem_write(mem, BOOT_GDT_GPA, gdt, sizeof(gdt))) ||
	    (err = write_page_tables(mem))) {
		*why = "guest memory too small for the boot structures";
		return err;
	}
	err = bzimage_parse(bc->kernel, bc->kernel_len, &bz, &bz_why);
	if (!err && bc->unpack == BOOT_UNPACK_HOST) {
		err = boot_bzimage_unpacked(mem, bc, &bz, cpu, &bz_why);
		if (err <= 0) {
			if (err)
				*why = bz_why;
			return err;
		}
		log_info("kernel: booting the bzImage as it is, the guest decompresses (%s)", bz_why);
		err = 0;
	}
	if (!err)
		return boot_bzimage(mem, bc, &bz, cpu, why);
	if (err != -EINVAL) {
		*why = bz_why;
		return err;
	}
	err = elf_parse(bc->kernel, bc->kernel_len, &elf, &elf_why);
	if (!err)
		return boot_elf(mem, bc, &elf, cpu, why);
	*why = err == -EINVAL ? "kernel is neither a bzImage nor an ELF64 image" : elf_why;
	return err;
}
