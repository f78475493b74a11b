/* bzImage setup header parsing. Every field comes from an untrusted file. */
#include "kumo/boot.h"

#include <errno.h>
#include <string.h>

#define HDR_SETUP_SECTS   0x1f1
#define HDR_BOOT_FLAG     0x1fe
#define HDR_JUMP          0x200
#define HDR_MAGIC         0x202
#define HDR_VERSION       0x206
#define HDR_LOADFLAGS     0x211
#define HDR_INITRD_MAX    0x22c
#define HDR_KERNEL_ALIGN  0x230
#define HDR_XLOADFLAGS    0x236
#define HDR_CMDLINE_SIZE  0x238
#define HDR_PAYLOAD_OFF   0x248
#define HDR_PAYLOAD_LEN   0x24c
#define HDR_PREF_ADDRESS  0x258
#define HDR_INIT_SIZE     0x260
#define HDR_MIN_END       0x264

#define LOADED_HIGH       0x01
#define XLF_KERNEL_64     0x01

int bzimage_parse(const uint8_t *f, size_t len, struct bzimage *bz, const char **why)
{
	unsigned setup_sects;
	uint32_t off, plen;

	memset(bz, 0, sizeof(*bz));
	if (len < HDR_MAGIC + 4 || get_le16(f + HDR_BOOT_FLAG) != 0xaa55 ||
	    memcmp(f + HDR_MAGIC, "HdrS", 4)) {
		*why = "not a bzImage (no boot flag or HdrS magic)";
		return -EINVAL;
	}
	if (len < HDR_MIN_END) {
		*why = "truncated bzImage (setup header cut short)";
		return -E2BIG;
	}
	bz->version = get_le16(f + HDR_VERSION);
	if (bz->version < BZ_MIN_VERSION) {
		*why = "bzImage boot protocol older than 2.12 (no 64-bit entry)";
		return -ENOEXEC;
	}
	if (!(f[HDR_XLOADFLAGS] & XLF_KERNEL_64)) {
		*why = "bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)";
		return -ENOEXEC;
	}
	if (!(f[HDR_LOADFLAGS] & LOADED_HIGH)) {
		*why = "bzImage must be loaded low (zImage), which kumo does not do";
		return -ENOEXEC;
	}
	setup_sects = f[HDR_SETUP_SECTS] ? f[HDR_SETUP_SECTS] : 4;
	bz->setup_size = (size_t)(setup_sects + 1) * 512;
	bz->hdr_end = HDR_JUMP + 2 + f[HDR_JUMP + 1];
	if (bz->hdr_end < HDR_MIN_END)
		bz->hdr_end = HDR_MIN_END;
	if (bz->hdr_end > bz->setup_size || bz->setup_size >= len) {
		*why = "truncated bzImage (no protected-mode kernel after the setup code)";
		return -E2BIG;
	}
	bz->kernel = f + bz->setup_size;
	bz->kernel_size = len - bz->setup_size;
	bz->initrd_addr_max = get_le32(f + HDR_INITRD_MAX);
	bz->cmdline_size = get_le32(f + HDR_CMDLINE_SIZE);
	bz->kernel_alignment = get_le32(f + HDR_KERNEL_ALIGN);
	bz->init_size = get_le32(f + HDR_INIT_SIZE);
	bz->pref_address = get_le64(f + HDR_PREF_ADDRESS);
	if (bz->init_size < bz->kernel_size)
		bz->init_size = bz->kernel_size;
	/* The payload (2.08+), relative to the protected-mode part: only
	 * when it lies wholly inside the file. */
	off = get_le32(f + HDR_PAYLOAD_OFF);
	plen = get_le32(f + HDR_PAYLOAD_LEN);
	if (plen && off < bz->kernel_size && plen <= bz->kernel_size - off) {
		bz->payload = bz->kernel + off;
		bz->payload_len = plen;
	}
	return 0;
}
