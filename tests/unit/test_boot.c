/* boot_load: bzImage (64-bit Linux boot protocol), PVH ELF, vmlinux ELF. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kumo/acpi.h"
#include "kumo/boot.h"
#include "kumo/e820.h"
#include "kumo/memory.h"
#include "images.h"
#include "mem_fixture.h"

#define GUEST_MEM   (64 * MiB)
#define PVH_ENTRY   0x100040u
#define CMDLINE     "console=ttyS0 root=/dev/vda quiet"
#define REAL_DIR    "/var/cache/kumo/guest/"

/* ---- fixtures and helpers ---- */

static int mem_setup(void **state) { return mem_setup_size(state, GUEST_MEM); }
static int mem_setup_8m(void **state) { return mem_setup_size(state, GUEST_MEM_MIN); }
static int mem_setup_4g(void **state) { return mem_setup_size(state, 4 * GiB); }

/* len bytes unlike any kernel image's. */
static uint8_t *make_blob(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)~image_pattern(i * 3 + 1);
	return p;
}

static void *gptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	void *p = gpa_ptr(mem, gpa, len);

	if (!p)
		fail_msg("gpa [%#llx, +%#llx) is not RAM", (unsigned long long)gpa,
			 (unsigned long long)len);
	return p;
}

/* boot_load of kernel/initrd/cmdline; checks *why is set exactly on failure. */
static int boot(struct guest_mem *mem, const uint8_t *kernel, size_t kernel_len,
		const uint8_t *initrd, size_t initrd_len, const char *cmdline,
		struct x86_cpu_state *cpu, const char **why)
{
	struct boot_config bc = {
		.kernel = kernel, .kernel_len = kernel_len,
		.initrd = initrd, .initrd_len = initrd_len,
		.cmdline = cmdline, .rsdp_gpa = ACPI_TABLES_GPA,
		/* bzImages as they are; test_kernel_unpack.c covers host unpacking */
		.unpack = BOOT_UNPACK_GUEST,
	};
	const char *w = NULL;
	int rc;

	memset(cpu, 0xee, sizeof(*cpu));
	rc = boot_load(mem, &bc, cpu, &w);
	if (rc) {
		assert_true(rc < 0);
		assert_non_null(w);
		assert_true(strlen(w) > 0);
	}
	if (why)
		*why = w;
	return rc;
}

/* Boots the bzImage s describes, with an initrd of initrd_len bytes (none if 0). */
static int boot_bz(struct guest_mem *mem, const struct bz_spec *s, size_t initrd_len,
		   const char *cmdline, struct x86_cpu_state *cpu, const char **why)
{
	size_t len;
	uint8_t *k = bz_build(s, &len), *initrd = initrd_len ? make_blob(initrd_len) : NULL;
	int rc = boot(mem, k, len, initrd, initrd_len, cmdline, cpu, why);

	free(k);
	free(initrd);
	return rc;
}

static int boot_elf(struct guest_mem *mem, const struct elf_spec *s, size_t initrd_len,
		    const char *cmdline, struct x86_cpu_state *cpu, const char **why)
{
	size_t len;
	uint8_t *k = elf_build(s, &len), *initrd = initrd_len ? make_blob(initrd_len) : NULL;
	int rc = boot(mem, k, len, initrd, initrd_len, cmdline, cpu, why);

	free(k);
	free(initrd);
	return rc;
}

static struct boot_params *boot_params(const struct guest_mem *mem)
{
	return gptr(mem, BOOT_PARAMS_GPA, sizeof(struct boot_params));
}

/* The descriptor at sel in the GDT kumo wrote says what the cached segment says. */
static void check_seg_vs_gdt(const struct guest_mem *mem, const struct x86_cpu_state *cpu,
			     const struct x86_seg *seg)
{
	const uint8_t *gdt = gptr(mem, cpu->gdt.base, cpu->gdt.limit + 1);
	uint64_t d, limit;

	assert_int_equal(seg->sel & 7, 0);
	assert_true(seg->sel + 7u <= cpu->gdt.limit);
	d = get_le64(gdt + seg->sel);
	limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
	if ((d >> 55) & 1)
		limit = (limit << 12) | 0xfff;
	assert_int_equal(seg->base, ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
	assert_int_equal(seg->limit, limit);
	assert_int_equal(seg->type, (d >> 40) & 0xf);
	assert_int_equal(seg->s, (d >> 44) & 1);
	assert_int_equal(seg->dpl, (d >> 45) & 3);
	assert_int_equal(seg->present, (d >> 47) & 1);
	assert_int_equal(seg->l, (d >> 53) & 1);
	assert_int_equal(seg->db, (d >> 54) & 1);
	assert_int_equal(seg->g, (d >> 55) & 1);
}

static void check_flat_data_segs(const struct guest_mem *mem, const struct x86_cpu_state *cpu)
{
	const struct x86_seg *segs[] = { &cpu->ds, &cpu->es, &cpu->ss, &cpu->fs, &cpu->gs };

	for (size_t i = 0; i < ARRAY_SIZE(segs); i++) {
		assert_int_equal(segs[i]->sel, 0x18);
		assert_int_equal(segs[i]->base, 0);
		assert_int_equal(segs[i]->limit, 0xffffffff);
		assert_true(segs[i]->type & 2); /* writable */
		check_seg_vs_gdt(mem, cpu, segs[i]);
	}
	assert_int_equal(cpu->gdt.base, BOOT_GDT_GPA);
	assert_int_equal(cpu->gdt.limit, 4 * 8 - 1);
	assert_true(cpu->rflags & X86_RFLAGS_FIXED);
	assert_false(cpu->rflags & (1 << 9)); /* interrupts off */
}

/* The 64-bit Linux boot protocol's entry state. */
static void check_long_mode(const struct guest_mem *mem, const struct x86_cpu_state *cpu,
			    uint64_t rip)
{
	assert_int_equal(cpu->cr0 & (X86_CR0_PG | X86_CR0_PE), X86_CR0_PG | X86_CR0_PE);
	assert_int_equal(cpu->efer & (X86_EFER_LME | X86_EFER_LMA), X86_EFER_LME | X86_EFER_LMA);
	assert_int_equal(cpu->cr3, BOOT_PML4_GPA);
	assert_true(cpu->cr4 & X86_CR4_PAE);
	assert_int_equal(cpu->cs.sel, 0x10);
	assert_int_equal(cpu->cs.l, 1);
	assert_int_equal(cpu->cs.db, 0);
	assert_true(cpu->cs.type & 8); /* code */
	check_seg_vs_gdt(mem, cpu, &cpu->cs);
	check_flat_data_segs(mem, cpu);
	assert_int_equal(cpu->rip, rip);
	assert_int_equal(cpu->gpr[X86_RSI], BOOT_PARAMS_GPA);
}

/* The PVH entry state: 32-bit protected mode, paging off. */
static void check_pvh_mode(const struct guest_mem *mem, const struct x86_cpu_state *cpu)
{
	assert_true(cpu->cr0 & X86_CR0_PE);
	assert_false(cpu->cr0 & X86_CR0_PG);
	assert_false(cpu->efer & (X86_EFER_LME | X86_EFER_LMA));
	assert_int_equal(cpu->cs.sel, 0x08);
	assert_int_equal(cpu->cs.db, 1);
	assert_int_equal(cpu->cs.l, 0);
	assert_int_equal(cpu->cs.base, 0);
	assert_int_equal(cpu->cs.limit, 0xffffffff);
	check_seg_vs_gdt(mem, cpu, &cpu->cs);
	check_flat_data_segs(mem, cpu);
	assert_int_equal(cpu->rip, PVH_ENTRY);
	assert_int_equal(cpu->gpr[X86_RBX], BOOT_PVH_INFO_GPA);
}

/* The identity map of the first 4 GiB with 2 MiB pages at 0x9000. */
static void check_page_tables(const struct guest_mem *mem)
{
	const uint8_t *pml4 = gptr(mem, BOOT_PML4_GPA, 4096);
	const uint8_t *pdpt, *pd;
	uint64_t e;

	e = get_le64(pml4);
	assert_true(e & 1);                           /* present */
	assert_true(e & 2);                           /* writable */
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(get_le64(pml4 + 8 * i), 0);
	pdpt = gptr(mem, e & ~0xfffULL, 4096);
	for (unsigned i = 0; i < 512; i++) {
		e = get_le64(pdpt + 8 * i);
		if (i >= 4) {
			assert_int_equal(e, 0);
			continue;
		}
		assert_int_equal(e & 0x83, 0x03);      /* present, writable, not a 1 GiB page */
		pd = gptr(mem, e & ~0xfffULL, 4096);
		/* The tables are where docs/machine.md says, below the kernel. */
		assert_true((e & ~0xfffULL) < 0xf000);
		for (unsigned j = 0; j < 512; j++) {
			uint64_t pde = get_le64(pd + 8 * j);
			uint64_t va = ((uint64_t)i << 30) | ((uint64_t)j << 21);
			if ((pde & ~0x1fffffULL) != va || (pde & 0x83) != 0x83)
				fail_msg("PD entry for %#llx is %#llx", (unsigned long long)va,
					 (unsigned long long)pde);
		}
	}
}

/* The e820 table given to the guest is e820_build's. */
static void check_e820(const struct guest_mem *mem, unsigned n, uint64_t (*entry)(const struct guest_mem *, unsigned, unsigned))
{
	struct e820_entry map[E820_MAX];
	unsigned want = e820_build(mem, map);

	assert_int_equal(n, want);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(entry(mem, i, 0), map[i].addr);
		assert_int_equal(entry(mem, i, 1), map[i].size);
		assert_int_equal(entry(mem, i, 2), map[i].type);
	}
}

static uint64_t bp_e820(const struct guest_mem *mem, unsigned i, unsigned field)
{
	const struct boot_params *bp = boot_params(mem);

	return field == 0 ? bp->e820_table[i].addr : field == 1 ? bp->e820_table[i].size :
	       bp->e820_table[i].type;
}

/* Offsets in the Xen public ABI (xen/include/public/arch-x86/hvm/start_info.h). */
enum {
	SI_MAGIC = 0, SI_VERSION = 4, SI_FLAGS = 8, SI_NR_MODULES = 12, SI_MODLIST = 16,
	SI_CMDLINE = 24, SI_RSDP = 32, SI_MEMMAP = 40, SI_MEMMAP_ENTRIES = 48, SI_SIZE = 56,
	MOD_PADDR = 0, MOD_SIZE = 8, MOD_CMDLINE = 16, MOD_SIZEOF = 32,
	MM_ADDR = 0, MM_SIZE = 8, MM_TYPE = 16, MM_SIZEOF = 24,
};

static uint64_t pvh_e820(const struct guest_mem *mem, unsigned i, unsigned field)
{
	const uint8_t *si = gptr(mem, BOOT_PVH_INFO_GPA, SI_SIZE);
	const uint8_t *e = gptr(mem, get_le64(si + SI_MEMMAP) + i * MM_SIZEOF, MM_SIZEOF);

	return field == 0 ? get_le64(e + MM_ADDR) : field == 1 ? get_le64(e + MM_SIZE) :
	       get_le32(e + MM_TYPE);
}

static void check_string_at(const struct guest_mem *mem, uint64_t gpa, const char *want)
{
	const char *got = gptr(mem, gpa, strlen(want) + 1);

	assert_string_equal(got, want);
}

/* The initrd is in RAM at [gpa, +len), page aligned, above floor, its bytes intact. */
static void check_initrd(const struct guest_mem *mem, uint64_t gpa, uint64_t len, uint64_t floor,
			 uint64_t limit)
{
	uint8_t *want = make_blob(len);

	assert_int_equal(gpa % 4096, 0);
	assert_true(gpa >= floor);
	assert_true(gpa + len <= limit);
	assert_memory_equal(gptr(mem, gpa, len), want, len);
	free(want);
}

/* ---- bzImage ---- */

static void test_bz_cpu_state(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;

	assert_int_equal(boot_bz(mem, &s, 100000, CMDLINE, &cpu, NULL), 0);
	check_long_mode(mem, &cpu, 0x100200);
	check_page_tables(mem);
}

static void test_bz_boot_params(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const struct boot_params *bp;
	const size_t initrd_len = 100000;

	memset(gptr(mem, BOOT_PARAMS_GPA, 4096), 0xcc, 4096); /* stale junk */
	assert_int_equal(boot_bz(mem, &s, initrd_len, CMDLINE, &cpu, NULL), 0);
	bp = boot_params(mem);

	/* The kernel's own setup header... */
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.setup_sects, 1);
	assert_int_equal(bp->hdr.xloadflags, s.xloadflags);
	assert_int_equal(bp->hdr.cmdline_size, s.cmdline_size);
	assert_int_equal(bp->hdr.init_size, s.init_size);
	assert_int_equal(bp->hdr.initrd_addr_max, s.initrd_addr_max);
	/* ...with the loader's fields filled in. */
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_GPA);
	check_string_at(mem, bp->hdr.cmd_line_ptr, CMDLINE);
	assert_int_equal(bp->hdr.ramdisk_size, initrd_len);
	/* As high as it goes: the top of RAM, page aligned. */
	assert_int_equal(bp->hdr.ramdisk_image, ALIGN_DOWN(GUEST_MEM - initrd_len, 4096));
	check_initrd(mem, bp->hdr.ramdisk_image, initrd_len, BOOT_KERNEL_GPA + s.init_size,
		     MIN(GUEST_MEM, (uint64_t)s.initrd_addr_max + 1));
	assert_int_equal(bp->acpi_rsdp_addr, ACPI_TABLES_GPA);
	check_e820(mem, bp->e820_entries, bp_e820);
	/* Nothing else left over from before. */
	for (size_t i = 0; i < sizeof(bp->screen_info); i++)
		assert_int_equal(((const uint8_t *)&bp->screen_info)[i], 0);
	assert_int_equal(bp->hdr.setup_data, 0);
}

/* Only the setup header the file declares (0x202 + its jump offset) is
 * copied into boot_params, and never more than struct setup_header. */
static void test_bz_header_copy_bounded(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const uint8_t *bp;
	size_t len;
	uint8_t *k;

	s.jump_len = 0xff; /* claims a header through 0x301 */
	k = bz_build(&s, &len);
	memset(k + BZ_HDR_END, 0x77, 0x301 - BZ_HDR_END);
	assert_int_equal(boot(mem, k, len, NULL, 0, "", &cpu, NULL), 0);
	bp = gptr(mem, BOOT_PARAMS_GPA, 4096);
	for (size_t off = BZ_HDR_END; off < 0x2d0; off++) /* up to e820_table */
		if (bp[off])
			fail_msg("boot_params byte %#zx is %#x, want 0", off, bp[off]);
	free(k);

	s.jump_len = 0; /* the header ends at init_size, 0x264 */
	k = bz_build(&s, &len);
	memset(k + 0x264, 0x77, BZ_HDR_END - 0x264);
	assert_int_equal(boot(mem, k, len, NULL, 0, "", &cpu, NULL), 0);
	assert_int_equal(boot_params(mem)->hdr.handover_offset, 0);
	assert_int_equal(boot_params(mem)->hdr.kernel_info_offset, 0);
	assert_int_equal(boot_params(mem)->hdr.init_size, s.init_size);
	free(k);
}

static void test_bz_kernel_bytes(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	size_t len;
	uint8_t *k;

	s.setup_sects = 0; /* 4 sectors */
	s.payload_len = 123457;
	k = bz_build(&s, &len);
	assert_int_equal(boot(mem, k, len, NULL, 0, "", &cpu, NULL), 0);
	assert_memory_equal(gptr(mem, BOOT_KERNEL_GPA, s.payload_len), k + 5 * 512, s.payload_len);
	free(k);
}

static void test_bz_no_initrd(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;

	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, NULL), 0);
	assert_int_equal(boot_params(mem)->hdr.ramdisk_image, 0);
	assert_int_equal(boot_params(mem)->hdr.ramdisk_size, 0);
	check_string_at(mem, BOOT_CMDLINE_GPA, "");
}

/* initrd_addr_max is the highest byte the initrd may occupy. */
static void test_bz_initrd_addr_max(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const struct boot_params *bp;

	s.initrd_addr_max = 32 * MiB - 1;
	assert_int_equal(boot_bz(mem, &s, 5000, CMDLINE, &cpu, NULL), 0);
	bp = boot_params(mem);
	assert_int_equal(bp->hdr.ramdisk_image, 32 * MiB - 8192);
	check_initrd(mem, bp->hdr.ramdisk_image, 5000, BOOT_KERNEL_GPA + s.init_size, 32 * MiB);
}

static void test_bz_initrd_too_big(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const char *why;
	/* Room between the kernel's init_size end (2 MiB) and the top of RAM. */
	const size_t room = GUEST_MEM - BOOT_KERNEL_GPA - s.init_size;

	assert_int_equal(boot_bz(mem, &s, room, "", &cpu, NULL), 0);
	assert_int_equal(boot_params(mem)->hdr.ramdisk_image, BOOT_KERNEL_GPA + s.init_size);
	assert_int_equal(boot_bz(mem, &s, room + 1, "", &cpu, &why), -ENOSPC);
	assert_non_null(strstr(why, "initrd"));
	assert_int_equal(boot_bz(mem, &s, GUEST_MEM + 1, "", &cpu, &why), -ENOSPC);
	/* Fits in RAM, but not below initrd_addr_max and above the kernel. */
	s.init_size = 16 * MiB;
	s.initrd_addr_max = 20 * MiB - 1;
	assert_int_equal(boot_bz(mem, &s, 3 * MiB, "", &cpu, NULL), 0);
	assert_int_equal(boot_params(mem)->hdr.ramdisk_image, 17 * MiB);
	assert_int_equal(boot_bz(mem, &s, 3 * MiB + 1, "", &cpu, &why), -ENOSPC);
	assert_non_null(strstr(why, "initrd"));
	s.initrd_addr_max = 0;
	assert_int_equal(boot_bz(mem, &s, 1, "", &cpu, &why), -ENOSPC);
}

static void test_bz_kernel_too_big(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const char *why;

	s.init_size = GUEST_MEM - BOOT_KERNEL_GPA;
	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, NULL), 0);
	s.init_size++;
	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, &why), -ENOSPC);
	assert_non_null(strstr(why, "kernel"));
	s.init_size = 0xffffffff;
	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, &why), -ENOSPC);
}

static char *make_cmdline(size_t len)
{
	char *s = malloc(len + 1);

	assert_non_null(s);
	for (size_t i = 0; i < len; i++)
		s[i] = 'a' + i % 26;
	s[len] = 0;
	return s;
}

static void test_bz_cmdline_size(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const char *why;
	char *c16 = make_cmdline(16), *c17 = make_cmdline(17);

	s.cmdline_size = 16;
	assert_int_equal(boot_bz(mem, &s, 0, c16, &cpu, NULL), 0);
	check_string_at(mem, BOOT_CMDLINE_GPA, c16);
	assert_int_equal(boot_bz(mem, &s, 0, c17, &cpu, &why), -E2BIG);
	assert_non_null(strstr(why, "command line"));
	s.cmdline_size = 0;
	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, NULL), 0);
	assert_int_equal(boot_bz(mem, &s, 0, "x", &cpu, NULL), -E2BIG);
	free(c16);
	free(c17);
}

/* Whatever the kernel allows, the command line window is 64 KiB with its NUL. */
static void test_cmdline_window(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct elf_spec e = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;
	char *fits = make_cmdline(BOOT_CMDLINE_MAX - 1), *over = make_cmdline(BOOT_CMDLINE_MAX);

	s.cmdline_size = 0xffffffff;
	assert_int_equal(boot_bz(mem, &s, 0, fits, &cpu, NULL), 0);
	check_string_at(mem, BOOT_CMDLINE_GPA, fits);
	assert_int_equal(boot_bz(mem, &s, 0, over, &cpu, NULL), -E2BIG);
	assert_int_equal(boot_elf(mem, &e, 0, fits, &cpu, NULL), 0);
	assert_int_equal(boot_elf(mem, &e, 0, over, &cpu, NULL), -E2BIG);
	free(fits);
	free(over);
}

/* 4 GiB of RAM: the initrd stays below 2 GiB (initrd_addr_max), the e820
 * table has the high region. */
static void test_bz_4g(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const struct boot_params *bp;

	assert_int_equal(boot_bz(mem, &s, 3 * MiB, CMDLINE, &cpu, NULL), 0);
	bp = boot_params(mem);
	assert_int_equal(bp->hdr.ramdisk_image, 2 * GiB - 3 * MiB);
	check_initrd(mem, bp->hdr.ramdisk_image, 3 * MiB, 2 * MiB, 2 * GiB);
	assert_int_equal(bp->e820_entries, 5);
	check_e820(mem, bp->e820_entries, bp_e820);
}

/* The smallest guest still boots the small kernel. */
static void test_bz_8m(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;

	assert_int_equal(boot_bz(mem, &s, 4096, CMDLINE, &cpu, NULL), 0);
	assert_int_equal(boot_params(mem)->hdr.ramdisk_image, 8 * MiB - 4096);
	check_long_mode(mem, &cpu, 0x100200);
}

/* bzImage errors other than "not a bzImage" are reported as such. */
static void test_bz_errors(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec s = bz_spec_default();
	struct x86_cpu_state cpu;
	const char *why;

	s.payload_len = 0;
	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, &why), -E2BIG);
	assert_non_null(strstr(why, "truncated"));
	s = bz_spec_default();
	s.version = 0x020b;
	assert_int_equal(boot_bz(mem, &s, 0, "", &cpu, &why), -ENOEXEC);
	assert_non_null(strstr(why, "2.12"));
}

/* ---- PVH ---- */

static void test_pvh_cpu_state(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;

	assert_int_equal(boot_elf(mem, &s, 5000, CMDLINE, &cpu, NULL), 0);
	check_pvh_mode(mem, &cpu);
}

static void test_pvh_start_info(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;
	const uint8_t *si, *mod;
	const size_t initrd_len = 300000;

	assert_int_equal(boot_elf(mem, &s, initrd_len, CMDLINE, &cpu, NULL), 0);
	si = gptr(mem, cpu.gpr[X86_RBX], SI_SIZE);
	assert_int_equal(get_le32(si + SI_MAGIC), PVH_START_MAGIC);
	assert_int_equal(get_le32(si + SI_MAGIC), 0x336ec578);
	assert_int_equal(get_le32(si + SI_VERSION), 1);
	assert_int_equal(get_le32(si + SI_FLAGS), 0);
	assert_int_equal(get_le64(si + SI_RSDP), ACPI_TABLES_GPA);
	check_string_at(mem, get_le64(si + SI_CMDLINE), CMDLINE);
	check_e820(mem, get_le32(si + SI_MEMMAP_ENTRIES), pvh_e820);
	/* The initrd is module 0, above the kernel and below the hole. */
	assert_int_equal(get_le32(si + SI_NR_MODULES), 1);
	mod = gptr(mem, get_le64(si + SI_MODLIST), MOD_SIZEOF);
	assert_int_equal(get_le64(mod + MOD_SIZE), initrd_len);
	assert_int_equal(get_le64(mod + MOD_CMDLINE), 0);
	assert_int_equal(get_le64(mod + MOD_PADDR), ALIGN_DOWN(GUEST_MEM - initrd_len, 4096));
	check_initrd(mem, get_le64(mod + MOD_PADDR), initrd_len, s.paddr + s.memsz, GUEST_MEM);
	/* The structures do not overlap each other or the boot_params page. */
	assert_true(get_le64(si + SI_MODLIST) >= BOOT_PVH_INFO_GPA + SI_SIZE);
	assert_true(get_le64(si + SI_MEMMAP) >= get_le64(si + SI_MODLIST) + MOD_SIZEOF);
	assert_true(get_le64(si + SI_MEMMAP) + E820_MAX * MM_SIZEOF <= BOOT_PARAMS_GPA);
}

static void test_pvh_no_initrd(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;
	const uint8_t *si;

	memset(gptr(mem, BOOT_PVH_INFO_GPA, 0x1000), 0xcc, 0x1000);
	assert_int_equal(boot_elf(mem, &s, 0, "", &cpu, NULL), 0);
	si = gptr(mem, BOOT_PVH_INFO_GPA, SI_SIZE);
	assert_int_equal(get_le32(si + SI_NR_MODULES), 0);
	assert_int_equal(get_le64(si + SI_MODLIST), 0);
	check_string_at(mem, get_le64(si + SI_CMDLINE), "");
}

/* Segments land at their paddr with the bss zeroed; the initrd goes above. */
static void test_elf_segments_loaded(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;
	size_t len;
	uint8_t *k;
	const uint8_t *si, *mod;
	uint64_t end;

	s.nr_load = 3;
	s.filesz = 0x1800;
	s.memsz = 0x3000;
	s.paddr = 0x200000;
	end = s.paddr + 3 * s.memsz;
	memset(gptr(mem, s.paddr, end - s.paddr), 0xcc, end - s.paddr);
	k = elf_build(&s, &len);
	assert_int_equal(boot(mem, k, len, NULL, 0, "", &cpu, NULL), 0);
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *p = gptr(mem, s.paddr + i * s.memsz, s.memsz);
		assert_memory_equal(p, k + elf_load_offset(&s, i), s.filesz);
		for (uint64_t j = s.filesz; j < s.memsz; j++)
			if (p[j])
				fail_msg("segment %u: bss byte %#llx is %#x", i, (unsigned long long)j, p[j]);
	}
	free(k);

	/* An initrd as big as the rest of RAM still fits, right after the kernel. */
	assert_int_equal(boot_elf(mem, &s, GUEST_MEM - end, "", &cpu, NULL), 0);
	si = gptr(mem, BOOT_PVH_INFO_GPA, SI_SIZE);
	mod = gptr(mem, get_le64(si + SI_MODLIST), MOD_SIZEOF);
	assert_int_equal(get_le64(mod + MOD_PADDR), end);
	assert_int_equal(boot_elf(mem, &s, GUEST_MEM - end + 1, "", &cpu, NULL), -ENOSPC);
}

/* A vmlinux: 64-bit entry at e_entry with a boot_params kumo makes up. */
static void test_vmlinux(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_default();
	struct x86_cpu_state cpu;
	const struct boot_params *bp;

	s.entry = 0x1000100;
	s.paddr = 0x1000000;
	assert_int_equal(boot_elf(mem, &s, 7000, CMDLINE, &cpu, NULL), 0);
	check_long_mode(mem, &cpu, 0x1000100);
	check_page_tables(mem);
	bp = boot_params(mem);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_true(bp->hdr.version >= BZ_MIN_VERSION);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_GPA);
	check_string_at(mem, BOOT_CMDLINE_GPA, CMDLINE);
	assert_int_equal(bp->hdr.ramdisk_size, 7000);
	check_initrd(mem, bp->hdr.ramdisk_image, 7000, s.paddr + s.memsz, GUEST_MEM);
	assert_int_equal(bp->acpi_rsdp_addr, ACPI_TABLES_GPA);
	check_e820(mem, bp->e820_entries, bp_e820);
}

static void expect_segment_refused(struct guest_mem *mem, uint64_t paddr, uint64_t memsz)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;
	const char *why;
	int rc;

	s.paddr = paddr;
	s.filesz = MIN(0x1000, memsz);
	s.memsz = memsz;
	rc = boot_elf(mem, &s, 0, "", &cpu, &why);
	if (rc != -ENOSPC)
		fail_msg("segment [%#llx, +%#llx): %d, want -ENOSPC", (unsigned long long)paddr,
			 (unsigned long long)memsz, rc);
	assert_non_null(strstr(why, "ELF segment"));
}

static void test_elf_segment_outside_ram(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;

	expect_segment_refused(mem, 0x80000, 0x1000);             /* below 1 MiB */
	expect_segment_refused(mem, 0, 0x200000);                 /* over the boot structures */
	expect_segment_refused(mem, BOOT_KERNEL_GPA - 0x1000, 0x2000);
	expect_segment_refused(mem, GUEST_MEM - 0x1000, 0x2000);  /* past RAM */
	expect_segment_refused(mem, 63 * MiB, 2 * MiB);
	expect_segment_refused(mem, GUEST_MEM, 0x1000);
	expect_segment_refused(mem, MMIO_HOLE_START, 0x1000);
	expect_segment_refused(mem, 0x100000000ULL, 0x1000);
	expect_segment_refused(mem, ~0ULL - 0x2000, 0x1000);
	/* Right up to the end of RAM is fine. */
	s.paddr = GUEST_MEM - 0x3000;
	assert_int_equal(boot_elf(mem, &s, 0, "", &cpu, NULL), 0);
}

static void test_neither(void **state)
{
	struct guest_mem *mem = *state;
	struct x86_cpu_state cpu;
	const char *why;
	uint8_t *junk = make_blob(8192);

	assert_int_equal(boot(mem, junk, 8192, NULL, 0, "", &cpu, &why), -EINVAL);
	assert_non_null(strstr(why, "neither"));
	assert_int_equal(boot(mem, junk, 0, NULL, 0, "", &cpu, &why), -EINVAL);
	assert_non_null(strstr(why, "neither"));
	assert_int_equal(boot(mem, (const uint8_t *)"\177EL", 3, NULL, 0, "", &cpu, &why), -EINVAL);
	assert_non_null(strstr(why, "neither"));
	free(junk);
}

/* An ELF that elf_parse refuses for a reason of its own says that reason. */
static void test_elf_errors(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct x86_cpu_state cpu;
	const char *why;

	s.machine = EM_386;
	assert_int_equal(boot_elf(mem, &s, 0, "", &cpu, &why), -ENOEXEC);
	assert_null(strstr(why, "neither"));
	assert_non_null(strstr(why, "x86-64"));
}

/* ---- the real Debian kernel, when the guest cache has it ---- */

static void test_real_kernel(void **state)
{
	struct guest_mem *mem = *state;
	struct x86_cpu_state cpu;
	uint8_t *k, *initrd = NULL;
	size_t klen, ilen = 0;
	struct bzimage bz;
	const char *why;
	const struct boot_params *bp;

	if (access(REAL_DIR "vmlinuz", R_OK)) {
		print_message("no " REAL_DIR "vmlinuz: skipped\n");
		skip();
	}
	assert_int_equal(read_file(REAL_DIR "vmlinuz", 256 * MiB, &k, &klen), 0);
	if (!access(REAL_DIR "initrd.img", R_OK))
		assert_int_equal(read_file(REAL_DIR "initrd.img", 1 * GiB, &initrd, &ilen), 0);
	assert_int_equal(bzimage_parse(k, klen, &bz, &why), 0);
	assert_int_equal(boot(mem, k, klen, initrd, ilen, "console=ttyS0 panic=-1", &cpu, NULL), 0);
	check_long_mode(mem, &cpu, 0x100200);
	assert_memory_equal(gptr(mem, BOOT_KERNEL_GPA, bz.kernel_size), bz.kernel, bz.kernel_size);
	bp = boot_params(mem);
	assert_int_equal(bp->hdr.version, bz.version);
	assert_int_equal(bp->hdr.init_size, bz.init_size);
	if (initrd) {
		assert_int_equal(bp->hdr.ramdisk_size, ilen);
		assert_true(bp->hdr.ramdisk_image >= BOOT_KERNEL_GPA + bz.init_size);
		assert_true(bp->hdr.ramdisk_image + ilen <= (uint64_t)bz.initrd_addr_max + 1);
		assert_memory_equal(gptr(mem, bp->hdr.ramdisk_image, ilen), initrd, ilen);
	}
	free(k);
	free(initrd);
}

static int mem_setup_512m(void **state) { return mem_setup_size(state, 512 * MiB); }

#define T(fn) cmocka_unit_test_setup_teardown(fn, mem_setup, mem_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bz_cpu_state),
		T(test_bz_boot_params),
		T(test_bz_header_copy_bounded),
		T(test_bz_kernel_bytes),
		T(test_bz_no_initrd),
		T(test_bz_initrd_addr_max),
		T(test_bz_initrd_too_big),
		T(test_bz_kernel_too_big),
		T(test_bz_cmdline_size),
		T(test_cmdline_window),
		cmocka_unit_test_setup_teardown(test_bz_4g, mem_setup_4g, mem_teardown),
		cmocka_unit_test_setup_teardown(test_bz_8m, mem_setup_8m, mem_teardown),
		T(test_bz_errors),
		T(test_pvh_cpu_state),
		T(test_pvh_start_info),
		T(test_pvh_no_initrd),
		T(test_elf_segments_loaded),
		T(test_vmlinux),
		T(test_elf_segment_outside_ram),
		T(test_neither),
		T(test_elf_errors),
		cmocka_unit_test_setup_teardown(test_real_kernel, mem_setup_512m, mem_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
