#include "fuzz_boot.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <string.h>

#include "kumo/acpi.h"
#include "kumo/boot.h"
#include "kumo/memory.h"

static struct guest_mem mem;
static uint8_t *initrd_buf;
static char *cmdlines[4];

/* Initrd sizes: none, empty, small, unaligned, a page plus, larger than RAM. */
static const size_t initrd_lens[8] = {
	0, 0, 1, 4095, 5000, 64 << 10, 256 << 10, (17 << 20),
};
/* Command line lengths; the last is past the 64 KiB window. */
static const size_t cmdline_lens[4] = { 0, 13, 300, 65536 };

static void init_once(void)
{
	size_t max = initrd_lens[7];

	if (mem.base)
		return;
	if (guest_mem_init(&mem, FUZZ_GUEST_MEM))
		abort();
	initrd_buf = malloc(max);
	if (!initrd_buf)
		abort();
	for (size_t i = 0; i < max; i++)
		initrd_buf[i] = (uint8_t)(i * 251 + (i >> 12));
	for (size_t c = 0; c < 4; c++) {
		cmdlines[c] = malloc(cmdline_lens[c] + 1);
		if (!cmdlines[c])
			abort();
		for (size_t i = 0; i < cmdline_lens[c]; i++)
			cmdlines[c][i] = 'a' + i % 26;
		cmdlines[c][cmdline_lens[c]] = 0;
	}
}

static void *gptr(uint64_t gpa, uint64_t len)
{
	void *p = gpa_ptr(&mem, gpa, len);

	FUZZ_CHECK(p);
	return p;
}

/* The initrd at [gpa, +len) is page aligned, in [floor, limit) and intact. */
static void check_initrd(uint64_t gpa, size_t len, uint64_t floor, uint64_t limit)
{
	FUZZ_CHECK(gpa % 4096 == 0);
	FUZZ_CHECK(gpa >= floor);
	FUZZ_CHECK(gpa + len <= limit);
	FUZZ_CHECK(!memcmp(gptr(gpa, len), initrd_buf, len));
}

static void check_bzimage_boot(const struct bzimage *bz, const struct boot_config *bc,
			       const struct x86_cpu_state *cpu)
{
	const struct boot_params *bp = gptr(BOOT_PARAMS_GPA, sizeof(*bp));
	uint64_t kernel_end = BOOT_KERNEL_GPA + bz->init_size;

	FUZZ_CHECK(cpu->rip == BOOT_KERNEL_GPA + 0x200);
	FUZZ_CHECK(cpu->gpr[X86_RSI] == BOOT_PARAMS_GPA);
	FUZZ_CHECK(cpu->cr0 & X86_CR0_PG);
	FUZZ_CHECK(kernel_end <= mem.size);
	FUZZ_CHECK(!memcmp(gptr(BOOT_KERNEL_GPA, bz->kernel_size), bz->kernel, bz->kernel_size));
	FUZZ_CHECK(strlen(bc->cmdline) <= bz->cmdline_size);
	FUZZ_CHECK(bp->hdr.cmd_line_ptr == BOOT_CMDLINE_GPA);
	FUZZ_CHECK(!strcmp(gptr(BOOT_CMDLINE_GPA, strlen(bc->cmdline) + 1), bc->cmdline));
	FUZZ_CHECK(bp->hdr.type_of_loader == 0xff);
	FUZZ_CHECK(bp->acpi_rsdp_addr == ACPI_TABLES_GPA);
	if (bc->initrd) {
		FUZZ_CHECK(bp->hdr.ramdisk_size == bc->initrd_len);
		check_initrd(bp->hdr.ramdisk_image, bc->initrd_len, kernel_end,
			     MIN(mem.size, (uint64_t)bz->initrd_addr_max + 1));
	} else {
		FUZZ_CHECK(bp->hdr.ramdisk_image == 0 && bp->hdr.ramdisk_size == 0);
	}
}

static void check_elf_boot(const struct elf_image *elf, const struct boot_config *bc,
			   const struct x86_cpu_state *cpu)
{
	uint64_t end = 0, initrd_gpa;

	for (unsigned i = 0; i < elf->nr_segments; i++) {
		const struct elf_segment *s = &elf->seg[i];
		FUZZ_CHECK(s->paddr >= BOOT_KERNEL_GPA);
		FUZZ_CHECK(gpa_ptr(&mem, s->paddr, s->memsz));
		end = MAX(end, s->paddr + s->memsz);
	}
	if (elf->nr_segments == 1) {
		const struct elf_segment *s = &elf->seg[0];
		const uint8_t *p = gptr(s->paddr, s->memsz);
		FUZZ_CHECK(!memcmp(p, bc->kernel + s->offset, s->filesz));
		for (uint64_t i = s->filesz; i < s->memsz; i++)
			FUZZ_CHECK(p[i] == 0);
	}
	FUZZ_CHECK(!strcmp(gptr(BOOT_CMDLINE_GPA, strlen(bc->cmdline) + 1), bc->cmdline));
	if (elf->has_pvh) {
		const uint8_t *si = gptr(BOOT_PVH_INFO_GPA, 56);
		FUZZ_CHECK(cpu->rip == elf->pvh_entry);
		FUZZ_CHECK(cpu->gpr[X86_RBX] == BOOT_PVH_INFO_GPA);
		FUZZ_CHECK(!(cpu->cr0 & X86_CR0_PG));
		FUZZ_CHECK(get_le32(si) == PVH_START_MAGIC);
		FUZZ_CHECK(get_le32(si + 12) == (bc->initrd ? 1u : 0u));
		initrd_gpa = bc->initrd ? get_le64(gptr(get_le64(si + 16), 8)) : 0;
	} else {
		const struct boot_params *bp = gptr(BOOT_PARAMS_GPA, sizeof(*bp));
		FUZZ_CHECK(cpu->rip == elf->entry);
		FUZZ_CHECK(cpu->gpr[X86_RSI] == BOOT_PARAMS_GPA);
		FUZZ_CHECK(cpu->cr0 & X86_CR0_PG);
		FUZZ_CHECK(bp->hdr.ramdisk_size == (bc->initrd ? bc->initrd_len : 0));
		initrd_gpa = bp->hdr.ramdisk_image;
	}
	if (bc->initrd)
		check_initrd(initrd_gpa, bc->initrd_len, ALIGN_UP(end, 4096),
			     MIN(guest_mem_low_end(&mem), MMIO_HOLE_START));
}

void fuzz_boot(const uint8_t *data, size_t size)
{
	unsigned sel = size ? data[size - 1] : 0;
	struct boot_config bc = {
		.kernel = data, .kernel_len = size,
		.initrd = (sel & 7) ? initrd_buf : NULL, .initrd_len = initrd_lens[sel & 7],
		.rsdp_gpa = ACPI_TABLES_GPA,
	};
	struct x86_cpu_state cpu;
	struct bzimage bz;
	struct elf_image elf;
	const char *why = NULL, *pwhy;
	int rc, bz_rc, elf_rc = -EINVAL;

	init_once();
	bc.cmdline = cmdlines[(sel >> 3) & 3];
	rc = boot_load(&mem, &bc, &cpu, &why);

	/* What the parsers say about the same bytes. */
	bz_rc = bzimage_parse(data, size, &bz, &pwhy);
	if (bz_rc == -EINVAL)
		elf_rc = elf_parse(data, size, &elf, &pwhy);

	if (rc) {
		FUZZ_CHECK(why && *why);
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOEXEC || rc == -E2BIG || rc == -ENOSPC);
		/* A parser's refusal is passed on as it is. */
		if (bz_rc && bz_rc != -EINVAL)
			FUZZ_CHECK(rc == bz_rc);
		else if (bz_rc == -EINVAL && elf_rc)
			FUZZ_CHECK(rc == elf_rc);
		return;
	}
	FUZZ_CHECK(bz_rc == 0 || elf_rc == 0);
	if (bz_rc == 0)
		check_bzimage_boot(&bz, &bc, &cpu);
	else
		check_elf_boot(&elf, &bc, &cpu);
}
