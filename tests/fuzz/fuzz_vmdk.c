/* Fuzz target: the VMDK reader on any file. The input is the image; it is
 * opened read-only as vmdk, walked with block_status and read where data
 * is, with the invariants of fuzz_vhd.c (runs non-empty and inside the
 * disk, unallocated runs read as zeros, no access out of bounds). Seeds:
 * a monolithicSparse and a streamOptimized image built here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "kumo/block.h"
#include "fuzz_blk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

#define S 512

/* capacity 64 sectors, 4 KiB grains (8 sectors), 512 entries a table. */
static void header(uint8_t *h, uint32_t flags, uint64_t desc, uint64_t gd)
{
	memset(h, 0, S);
	put_le32(h, 0x564d444b);
	put_le32(h + 4, flags & (1u << 16) ? 3 : 1);
	put_le32(h + 8, flags | 3);
	put_le64(h + 12, 64);
	put_le64(h + 20, 8);
	put_le64(h + 28, desc);
	put_le64(h + 36, desc ? 1 : 0);
	put_le32(h + 44, 512);
	put_le64(h + 56, gd);
	put_le64(h + 64, 128);
	h[73] = '\n'; h[74] = ' '; h[75] = '\r'; h[76] = '\n';
	put_le16(h + 77, flags & (1u << 16) ? 1 : 0);
}

static void descriptor(uint8_t *d, const char *type)
{
	snprintf((char *)d, S, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
		 "createType=\"%s\"\nRW 64 SPARSE \"x.vmdk\"\n", type);
}

/* header, descriptor (1), GD (2), GT (3-6), grains at 8 and 16. */
static uint8_t *build_sparse(size_t *len)
{
	size_t n = 24 * S;
	uint8_t *p = calloc(1, n);

	header(p, 1u << 2, 1, 2);
	descriptor(p + S, "monolithicSparse");
	put_le32(p + 2 * S, 3);
	put_le32(p + 3 * S, 8);         /* grain 0 */
	put_le32(p + 3 * S + 8, 16);    /* grain 2 */
	put_le32(p + 3 * S + 12, 1);    /* grain 3: zeroed (with the flag) */
	for (int i = 0; i < 16 * S; i++)
		p[8 * S + i] = (uint8_t)(i * 11 + 1);
	*len = n;
	return p;
}

/* header (GD at the end), descriptor, a compressed grain for grain 1
 * (marker at sector 2), GT marker + GT, GD marker + GD, footer. */
static uint8_t *build_stream(size_t *len)
{
	uint8_t grain[4096], *p = calloc(1, 64 * S);
	uLongf clen = 2 * S;
	size_t at;

	for (int i = 0; i < 4096; i++)
		grain[i] = (uint8_t)(i / 16);
	header(p, (1u << 16) | (1u << 17), 1, UINT64_MAX);
	descriptor(p + S, "streamOptimized");
	compress2(p + 2 * S + 12, &clen, grain, sizeof(grain), 6);
	put_le64(p + 2 * S, 8);
	put_le32(p + 2 * S + 8, (uint32_t)clen);
	at = ALIGN_UP(2 * S + 12 + clen, S) / S;          /* GT marker */
	put_le64(p + at * S, 4);
	put_le32(p + at * S + 12, 1);
	put_le32(p + (at + 1) * S + 4, 2);                  /* GT entry 1 */
	put_le64(p + (at + 5) * S, 1);                      /* GD marker */
	put_le32(p + (at + 5) * S + 12, 2);
	put_le32(p + (at + 6) * S, (uint32_t)(at + 1));     /* GD entry 0 */
	put_le64(p + (at + 7) * S, 1);                      /* footer marker */
	put_le32(p + (at + 7) * S + 12, 3);
	header(p + (at + 8) * S, (1u << 16) | (1u << 17), 1, at + 6);
	/* EOS: zeros at at + 9. */
	*len = (at + 10) * S;
	return p;
}

void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	size_t len;
	uint8_t *p = build_sparse(&len);

	add("vmdk-sparse", p, len);
	p = build_stream(&len);
	add("vmdk-stream", p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A strong reference: block.c's probe table alone (weak) does not
	 * link the format in from the library. */
	fuzz_blk_open_walk(data, size, "vmdk", &blk_vmdk_ops);
	return 0;
}
