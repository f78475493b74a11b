/* ELF64 kernel parsing: program headers and the PVH entry note. Every
 * offset and size comes from an untrusted file and is checked before use. */
#include "kumo/boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MAX_PHDRS 64

static bool in_file(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

/* Walks the notes in [p, p+size) for Xen's PHYS32_ENTRY. */
static void find_pvh(const uint8_t *p, uint64_t size, struct elf_image *elf)
{
	uint64_t at = 0;

	while (size - at >= 12) {
		uint32_t namesz = get_le32(p + at), descsz = get_le32(p + at + 4);
		uint32_t type = get_le32(p + at + 8);
		uint64_t name = at + 12;
		uint64_t desc = name + ALIGN_UP((uint64_t)namesz, 4);
		uint64_t next = desc + ALIGN_UP((uint64_t)descsz, 4);

		if (desc > size || next > size)
			return;
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
		    !memcmp(p + name, "Xen", 4) && (descsz == 4 || descsz == 8)) {
			elf->has_pvh = true;
			elf->pvh_entry = get_le32(p + desc);
			return;
		}
		at = next;
	}
}

int elf_parse(const uint8_t *f, size_t len, struct elf_image *elf, const char **why)
{
	Elf64_Ehdr eh;

	memset(elf, 0, sizeof(*elf));
	if (len < 4 || memcmp(f, ELFMAG, SELFMAG)) {
		*why = "not an ELF file";
		return -EINVAL;
	}
	if (len < sizeof(eh)) {
		*why = "truncated ELF file (header cut short)";
		return -E2BIG;
	}
	memcpy(&eh, f, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64) {
		*why = "ELF file is not a 64-bit little-endian x86-64 image";
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC) {
		*why = "ELF file is not an executable";
		return -ENOEXEC;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS) {
		*why = "ELF file has a bad program header table";
		return -ENOEXEC;
	}
	if (!in_file(len, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr))) {
		*why = "truncated ELF file (program headers past the end)";
		return -E2BIG;
	}
	elf->entry = eh.e_entry;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, f + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		if (!in_file(len, ph.p_offset, ph.p_filesz)) {
			*why = "truncated ELF file (segment past the end)";
			return -E2BIG;
		}
		if (ph.p_type == PT_NOTE) {
			if (!elf->has_pvh)
				find_pvh(f + ph.p_offset, ph.p_filesz, elf);
			continue;
		}
		if (ph.p_filesz > ph.p_memsz || ph.p_paddr + ph.p_memsz < ph.p_paddr) {
			*why = "ELF segment has impossible sizes";
			return -ENOEXEC;
		}
		if (elf->nr_segments == ELF_MAX_SEGMENTS) {
			*why = "ELF file has too many loadable segments";
			return -ENOEXEC;
		}
		elf->seg[elf->nr_segments++] = (struct elf_segment){
			ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz,
		};
	}
	if (!elf->nr_segments) {
		*why = "ELF file has nothing to load";
		return -ENOEXEC;
	}
	return 0;
}
