/* Fuzz target: the VHD (vpc) reader on any file. The input is the image;
 * it is opened read-only as vpc (fixed or dynamic), walked with
 * block_status and read where it says data is, with the invariants: runs
 * are non-empty and inside the disk, unallocated or zero runs read as
 * zeros, and nothing reads or allocates past its bounds (ASan). Seeds: a dynamic and
 * a fixed image built here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/block.h"
#include "fuzz_blk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

static void put_be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, v >> 32); put_be32(p + 4, (uint32_t)v); }

static void checksum(uint8_t *p, size_t len, size_t field)
{
	uint32_t sum = 0;

	put_be32(p + field, 0);
	for (size_t i = 0; i < len; i++)
		sum += p[i];
	put_be32(p + field, ~sum);
}

static void footer(uint8_t *f, uint64_t size, uint32_t type, uint64_t dyn_off)
{
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);
	put_be32(f + 12, 0x10000);
	put_be64(f + 16, dyn_off);
	memcpy(f + 28, "win ", 4);   /* the footer's size, not CHS */
	put_be64(f + 40, size);
	put_be64(f + 48, size);
	put_be32(f + 56, 0x00011011);
	put_be32(f + 60, type);
	checksum(f, 512, 64);
}

/* A 16 KiB dynamic disk of 4 KiB blocks, blocks 0 and 2 present. */
static uint8_t *build_dynamic(size_t *len)
{
	size_t n = 512 + 1024 + 512 + 2 * (512 + 4096) + 512;
	uint8_t *p = calloc(1, n), *h = p + 512, *bat = p + 1536;
	uint32_t blk = 2048 / 512;

	footer(p, 16384, 3, 512);
	memcpy(h, "cxsparse", 8);
	put_be64(h + 8, UINT64_MAX);
	put_be64(h + 16, 1536);
	put_be32(h + 24, 0x10000);
	put_be32(h + 28, 4);
	put_be32(h + 32, 4096);
	checksum(h, 1024, 36);
	memset(bat, 0xff, 16);
	put_be32(bat, blk);
	put_be32(bat + 8, blk + 9);
	for (int b = 0; b < 2; b++) {
		uint8_t *blkp = p + 2048 + (size_t)b * 4608;
		memset(blkp, 0xff, 1);
		for (int i = 0; i < 4096; i++)
			blkp[512 + i] = (uint8_t)(i * 7 + b);
	}
	footer(p + n - 512, 16384, 3, 512);
	*len = n;
	return p;
}

static uint8_t *build_fixed(size_t *len)
{
	uint8_t *p = calloc(1, 8192 + 512);

	for (int i = 0; i < 8192; i++)
		p[i] = (uint8_t)(i * 13);
	footer(p + 8192, 8192, 2, UINT64_MAX);
	*len = 8192 + 512;
	return p;
}

void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	size_t len;
	uint8_t *p = build_dynamic(&len);

	add("vhd-dynamic", p, len);
	p = build_fixed(&len);
	add("vhd-fixed", p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A strong reference: block.c's probe table alone (weak) does not
	 * link the format in from the library. */
	fuzz_blk_open_walk(data, size, "vpc", &blk_vpc_ops);
	return 0;
}
