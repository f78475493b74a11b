/* Fuzz target: elf_parse, then boot_load of the same bytes. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "kumo/boot.h"
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_image elf;
	const char *why = NULL;
	int rc = elf_parse(data, size, &elf, &why);

	if (rc) {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOEXEC || rc == -E2BIG);
		FUZZ_CHECK(why && *why);
	} else {
		/* Every segment's file bytes are inside the file, and its
		 * memory range neither shrinks nor wraps. */
		FUZZ_CHECK(size >= sizeof(Elf64_Ehdr));
		FUZZ_CHECK(elf.nr_segments >= 1 && elf.nr_segments <= ELF_MAX_SEGMENTS);
		for (unsigned i = 0; i < elf.nr_segments; i++) {
			const struct elf_segment *s = &elf.seg[i];
			FUZZ_CHECK(s->offset <= size && s->filesz <= size - s->offset);
			FUZZ_CHECK(s->filesz <= s->memsz);
			FUZZ_CHECK(s->paddr + s->memsz >= s->paddr);
		}
		FUZZ_CHECK(elf.entry == get_le64(data + 24));
		if (!elf.has_pvh)
			FUZZ_CHECK(elf.pvh_entry == 0);
	}
	fuzz_boot(data, size);
	return 0;
}
