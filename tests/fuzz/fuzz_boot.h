/* Shared by the fuzz targets: boot_load of an untrusted kernel image into a
 * small guest, with the invariants that must hold whatever the bytes are. */
#ifndef KUMO_FUZZ_BOOT_H
#define KUMO_FUZZ_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A failed check is a crash, so that libFuzzer and the driver report it. */
#define FUZZ_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n",       \
				__FILE__, __LINE__, #cond);                     \
			abort();                                                \
		}                                                               \
	} while (0)

#define FUZZ_GUEST_MEM (16ULL << 20)

/* Loads data as the kernel (with an initrd and command line chosen by the
 * input's last byte) and checks the result against what bzimage_parse and
 * elf_parse say about the same bytes. */
void fuzz_boot(const uint8_t *data, size_t size);

#endif
