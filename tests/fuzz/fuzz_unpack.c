/* Fuzz target: kernel_unpack on any bytes (every decoder, by magic), with
 * a small output limit so bombs stop early; what unpacks goes through
 * elf_parse, as the boot path does. Seeds: a small vmlinux-like ELF in
 * every format (fuzz_target_seeds). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/boot.h"
#include "kumo/kernel_unpack.h"
#include "fuzz_boot.h"
#include "images.h"
#include "packers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	struct elf_spec spec = elf_spec_default();
	size_t elf_len;
	uint8_t *elf;

	spec.nr_load = 2;
	spec.filesz = 0x800;
	spec.memsz = 0x1000;
	elf = elf_build(&spec, &elf_len);
	for (size_t i = 0; i < pack_nr_formats; i++) {
		size_t len;
		uint8_t *p = pack(pack_formats[i], elf, elf_len, &len);

		add(pack_formats[i], p, len);
	}
	free(elf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The last byte picks the limit: tiny, about the seeds' size, 1 MiB. */
	static const size_t limits[] = { 0, 100, 4096, 1 << 20 };
	size_t max = limits[size ? data[size - 1] & 3 : 3], out_len = 12345;
	const char *format = NULL, *why = NULL;
	uint8_t *out = (uint8_t *)1;
	struct elf_image elf;
	int rc = kernel_unpack(data, size, max, &out, &out_len, &format, &why);

	FUZZ_CHECK(format && *format);
	FUZZ_CHECK((rc == -ENOTSUP) == !kernel_unpack_format(data, size));
	if (rc) {
		FUZZ_CHECK(rc == -ENOTSUP || rc == -EBADMSG || rc == -EFBIG || rc == -ENOMEM);
		FUZZ_CHECK(why && *why);
		FUZZ_CHECK(!out && !out_len);
		return 0;
	}
	FUZZ_CHECK(out_len <= max);
	FUZZ_CHECK(!strcmp(format, kernel_unpack_format(data, size)));
	rc = elf_parse(out, out_len, &elf, &why);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOEXEC || rc == -E2BIG);
	free(out);
	return 0;
}
