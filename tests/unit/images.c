#include "images.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/util.h"

uint8_t image_pattern(size_t offset)
{
	return (uint8_t)(offset * 131 + (offset >> 8) + 7);
}

static uint8_t *alloc_pattern(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		abort();
	for (size_t i = 0; i < len; i++)
		p[i] = image_pattern(i);
	return p;
}

/* ---- bzImage ---- */

struct bz_spec bz_spec_default(void)
{
	return (struct bz_spec){
		.setup_sects = 1,
		.version = 0x020f,
		.loadflags = 0x01,          /* LOADED_HIGH */
		.xloadflags = 0x03,         /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
		.jump_len = 0x6a,           /* header through 0x26c, as Linux 6.x */
		.cmdline_size = 2048,
		.initrd_addr_max = 0x7fffffff,
		.init_size = 1 << 20,
		.kernel_alignment = 2 << 20,
		.payload_len = 8192,
	};
}

size_t bz_setup_bytes(uint8_t setup_sects)
{
	return ((size_t)(setup_sects ? setup_sects : 4) + 1) * 512;
}

uint8_t *bz_build(const struct bz_spec *s, size_t *len)
{
	size_t setup = bz_setup_bytes(s->setup_sects);
	uint8_t *f;

	*len = setup + s->payload_len;
	f = alloc_pattern(*len);
	/* The setup header is zero apart from the fields a loader reads. */
	memset(f + BZ_OFF_SETUP_SECTS, 0, BZ_HDR_END - BZ_OFF_SETUP_SECTS);
	f[BZ_OFF_SETUP_SECTS] = s->setup_sects;
	put_le16(f + BZ_OFF_BOOT_FLAG, 0xaa55);
	f[BZ_OFF_JUMP] = 0xeb;
	f[BZ_OFF_JUMP + 1] = s->jump_len;
	memcpy(f + BZ_OFF_MAGIC, "HdrS", 4);
	put_le16(f + BZ_OFF_VERSION, s->version);
	f[BZ_OFF_LOADFLAGS] = s->loadflags;
	put_le32(f + BZ_OFF_INITRD_MAX, s->initrd_addr_max);
	put_le32(f + BZ_OFF_KERNEL_ALIGN, s->kernel_alignment);
	put_le16(f + BZ_OFF_XLOADFLAGS, s->xloadflags);
	put_le32(f + BZ_OFF_CMDLINE_SIZE, s->cmdline_size);
	put_le32(f + BZ_OFF_INIT_SIZE, s->init_size);
	return f;
}

/* ---- ELF64 ---- */

struct elf_spec elf_spec_default(void)
{
	return (struct elf_spec){
		.class = ELFCLASS64,
		.type = ET_EXEC,
		.machine = EM_X86_64,
		.entry = 0x100000,
		.nr_load = 1,
		.paddr = 0x100000,
		.filesz = 0x2000,
		.memsz = 0x3000,
	};
}

struct elf_spec elf_spec_pvh(uint32_t pvh_entry)
{
	struct elf_spec s = elf_spec_default();

	s.note_len = elf_note_xen_entry(s.note, pvh_entry);
	return s;
}

size_t elf_note_hdr(uint8_t *p, uint32_t namesz, uint32_t descsz, uint32_t type)
{
	put_le32(p, namesz);
	put_le32(p + 4, descsz);
	put_le32(p + 8, type);
	return 12;
}

size_t elf_note_xen_entry(uint8_t *p, uint32_t entry)
{
	size_t n = elf_note_hdr(p, 4, 4, 18 /* XEN_ELFNOTE_PHYS32_ENTRY */);

	memcpy(p + n, "Xen", 4);
	put_le32(p + n + 4, entry);
	return n + 8;
}

static unsigned elf_phnum(const struct elf_spec *s)
{
	return s->nr_load + (s->note_len ? 1 : 0);
}

size_t elf_note_offset(const struct elf_spec *s)
{
	return ELF_PHDR_OFF + (size_t)elf_phnum(s) * sizeof(Elf64_Phdr);
}

size_t elf_load_offset(const struct elf_spec *s, unsigned i)
{
	return ALIGN_UP(elf_note_offset(s) + s->note_len, 16) + i * s->filesz;
}

uint8_t *elf_build(const struct elf_spec *s, size_t *len)
{
	Elf64_Ehdr eh = {
		.e_type = s->type,
		.e_machine = s->machine,
		.e_version = EV_CURRENT,
		.e_entry = s->entry,
		.e_phoff = ELF_PHDR_OFF,
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = elf_phnum(s),
	};
	uint8_t *f;

	*len = elf_load_offset(s, s->nr_load);
	f = alloc_pattern(*len);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = s->class;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(f, &eh, sizeof(eh));
	for (unsigned i = 0; i < s->nr_load; i++) {
		Elf64_Phdr ph = {
			.p_type = PT_LOAD, .p_flags = PF_R | PF_W | PF_X,
			.p_offset = elf_load_offset(s, i),
			.p_vaddr = 0xffffffff80000000ULL + s->paddr + i * s->memsz,
			.p_paddr = s->paddr + i * s->memsz,
			.p_filesz = s->filesz, .p_memsz = s->memsz, .p_align = 16,
		};
		memcpy(f + ELF_PHDR_OFF + i * sizeof(ph), &ph, sizeof(ph));
	}
	if (s->note_len) {
		Elf64_Phdr ph = {
			.p_type = PT_NOTE, .p_flags = PF_R,
			.p_offset = elf_note_offset(s),
			.p_filesz = s->note_len, .p_align = 4,
		};
		memcpy(f + ELF_PHDR_OFF + s->nr_load * sizeof(ph), &ph, sizeof(ph));
		memcpy(f + ph.p_offset, s->note, s->note_len);
	}
	return f;
}
