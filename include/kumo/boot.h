/* Kernel images (bzImage, ELF64) and the boot layout in guest memory. */
#ifndef KUMO_BOOT_H
#define KUMO_BOOT_H

#include "kumo/util.h"
#include "kumo/x86.h"

struct guest_mem;

/* ---- bzImage (Documentation/arch/x86/boot.rst) ---- */
#define BZ_MIN_VERSION 0x020c /* 2.12: xloadflags, XLF_KERNEL_64 */

struct bzimage {
	uint16_t version;
	size_t setup_size;       /* real-mode part, (setup_sects + 1) * 512 */
	size_t hdr_end;          /* end of the setup header in the file */
	const uint8_t *kernel;   /* protected-mode part */
	size_t kernel_size;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;   /* max length, without the NUL */
	uint32_t init_size;      /* memory the kernel needs from its load address */
	uint32_t kernel_alignment;
	uint64_t pref_address;   /* where the kernel runs (LOAD_PHYSICAL_ADDR) */
	const uint8_t *payload;  /* the compressed kernel (payload_offset, 2.08+); */
	size_t payload_len;      /* NULL/0 when absent or not inside the file */
};

/* Validates the setup header of a whole bzImage file. -EINVAL: not a
 * bzImage; -ENOEXEC: a bzImage kumo cannot boot (too old, not 64-bit);
 * -E2BIG: truncated. *why says which check failed. */
int bzimage_parse(const uint8_t *file, size_t len, struct bzimage *bz, const char **why) WUR;

/* ---- ELF64 ---- */
#define ELF_MAX_SEGMENTS 16

struct elf_segment {
	uint64_t offset, filesz, paddr, memsz;
};

struct elf_image {
	uint64_t entry;          /* e_entry: 64-bit entry (vmlinux) */
	bool has_pvh;
	uint32_t pvh_entry;      /* XEN_ELFNOTE_PHYS32_ENTRY */
	unsigned nr_segments;
	struct elf_segment seg[ELF_MAX_SEGMENTS];
};

int elf_parse(const uint8_t *file, size_t len, struct elf_image *elf, const char **why) WUR;

/* ---- Boot layout (docs/machine.md) ---- */
#define BOOT_GDT_GPA        0x500ULL
#define BOOT_PVH_INFO_GPA   0x6000ULL
#define BOOT_PVH_MODS_GPA   0x6100ULL
#define BOOT_PVH_MEMMAP_GPA 0x6200ULL
#define BOOT_PARAMS_GPA     0x7000ULL
#define BOOT_STACK_GPA      0x8ff0ULL
#define BOOT_PML4_GPA       0x9000ULL
#define BOOT_CMDLINE_GPA    0x20000ULL
#define BOOT_CMDLINE_MAX    0x10000ULL
#define BOOT_KERNEL_GPA     0x100000ULL
#define PVH_START_MAGIC     0x336ec578U

/* Who decompresses a bzImage's kernel: kumo before boot (then the vmlinux
 * inside is entered directly; the default), or the guest's own decompressor. */
enum boot_unpack { BOOT_UNPACK_HOST, BOOT_UNPACK_GUEST };

/* "host" / "guest" -> *mode; -EINVAL otherwise. */
int boot_unpack_parse(const char *s, enum boot_unpack *mode) WUR;

struct boot_config {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd;   /* may be NULL */
	size_t initrd_len;
	const char *cmdline;
	uint64_t rsdp_gpa;
	enum boot_unpack unpack;
};

/* Loads the kernel (bzImage or ELF64), initrd and command line into guest
 * memory and fills the boot vCPU's initial state. On failure *why is one
 * line for the user. A bzImage whose payload kumo can unpack to an x86-64
 * vmlinux is, with BOOT_UNPACK_HOST, booted as that vmlinux (loaded at its
 * link address, entered at startup_64 with the bzImage's setup header in
 * boot_params); any other bzImage boots as it is. */
int boot_load(struct guest_mem *mem, const struct boot_config *bc,
	      struct x86_cpu_state *cpu, const char **why) WUR;

#endif
