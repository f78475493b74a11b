/* Fuzz target: bzimage_parse, then boot_load of the same bytes. */
#include <errno.h>
#include <string.h>

#include "kumo/boot.h"
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bzimage bz;
	const char *why = NULL;
	int rc = bzimage_parse(data, size, &bz, &why);

	if (rc) {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOEXEC || rc == -E2BIG);
		FUZZ_CHECK(why && *why);
	} else {
		/* The setup code, then the kernel to the end of the file. */
		FUZZ_CHECK(bz.version >= BZ_MIN_VERSION);
		FUZZ_CHECK(bz.setup_size >= 2 * 512 && bz.setup_size <= 256 * 512);
		FUZZ_CHECK(bz.setup_size % 512 == 0);
		FUZZ_CHECK(bz.hdr_end >= 0x264 && bz.hdr_end <= bz.setup_size);
		FUZZ_CHECK(bz.setup_size < size);
		FUZZ_CHECK(bz.kernel == data + bz.setup_size);
		FUZZ_CHECK(bz.kernel_size == size - bz.setup_size);
		FUZZ_CHECK(bz.init_size >= bz.kernel_size);
		FUZZ_CHECK(bz.cmdline_size == get_le32(data + 0x238));
		FUZZ_CHECK(bz.initrd_addr_max == get_le32(data + 0x22c));
	}
	fuzz_boot(data, size);
	return 0;
}
