/* Synthetic kernel images (bzImage, ELF64) built in memory, for the unit
 * tests and the fuzz driver's seeds. Every file byte that is not a header
 * field is image_pattern(file offset), so a test can check what was copied. */
#ifndef KUMO_TEST_IMAGES_H
#define KUMO_TEST_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint8_t image_pattern(size_t offset);

/* ---- bzImage (Documentation/arch/x86/boot.rst) ---- */
#define BZ_OFF_SETUP_SECTS  0x1f1
#define BZ_OFF_BOOT_FLAG    0x1fe
#define BZ_OFF_JUMP         0x200
#define BZ_OFF_MAGIC        0x202
#define BZ_OFF_VERSION      0x206
#define BZ_OFF_LOADFLAGS    0x211
#define BZ_OFF_INITRD_MAX   0x22c
#define BZ_OFF_KERNEL_ALIGN 0x230
#define BZ_OFF_XLOADFLAGS   0x236
#define BZ_OFF_CMDLINE_SIZE 0x238
#define BZ_OFF_INIT_SIZE    0x260
#define BZ_HDR_MIN_END      0x264   /* through init_size */
#define BZ_HDR_END          0x26c   /* struct setup_header's end (Linux 5.5+) */

struct bz_spec {
	uint8_t setup_sects;       /* as stored: 0 means 4 */
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t jump_len;          /* byte at 0x201: the header ends at 0x202 + it */
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint32_t init_size;
	uint32_t kernel_alignment;
	size_t payload_len;        /* protected-mode kernel after the setup sectors */
};

/* A bootable 64-bit bzImage: protocol 2.15, 1 setup sector, 8 KiB payload,
 * init_size 1 MiB, cmdline_size 2048, initrd_addr_max 0x7fffffff. */
struct bz_spec bz_spec_default(void);
/* Bytes of the real-mode part for a stored setup_sects. */
size_t bz_setup_bytes(uint8_t setup_sects);
/* A malloc'd image (never NULL), *len its size. */
uint8_t *bz_build(const struct bz_spec *s, size_t *len);

/* ---- ELF64 ---- */
#define ELF_NOTE_MAX 64

struct elf_spec {
	uint8_t class;             /* ELFCLASS64 */
	uint16_t type, machine;    /* ET_EXEC, EM_X86_64 */
	uint64_t entry;
	unsigned nr_load;          /* PT_LOADs, each with its own file bytes */
	uint64_t paddr;            /* of the first; the others follow at memsz steps */
	uint64_t filesz, memsz;    /* of each */
	uint8_t note[ELF_NOTE_MAX]; /* PT_NOTE contents (after the PT_LOADs) */
	size_t note_len;           /* 0: no PT_NOTE */
};

/* A vmlinux-like image: one PT_LOAD at 1 MiB (8 KiB in the file, 12 KiB in
 * memory), entry 0x100000, no note. */
struct elf_spec elf_spec_default(void);
/* The same with a Xen PHYS32_ENTRY note for entry. */
struct elf_spec elf_spec_pvh(uint32_t pvh_entry);

/* Writes a note header (namesz, descsz, type) at p; returns 12. */
size_t elf_note_hdr(uint8_t *p, uint32_t namesz, uint32_t descsz, uint32_t type);
/* Writes a whole Xen PHYS32_ENTRY note at p; returns its size (20). */
size_t elf_note_xen_entry(uint8_t *p, uint32_t entry);

/* A malloc'd image (never NULL), *len its size. The program headers start at
 * ELF_PHDR_OFF, PT_LOADs first, so tests can patch them in place. */
#define ELF_PHDR_OFF 64
uint8_t *elf_build(const struct elf_spec *s, size_t *len);
/* File offset of the note data and of PT_LOAD i's bytes. */
size_t elf_note_offset(const struct elf_spec *s);
size_t elf_load_offset(const struct elf_spec *s, unsigned i);

#endif
