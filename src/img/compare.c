/* kumo img compare [-f FMT] [-F FMT] [-s] [-p] [-q] FILE1 FILE2
 * Exit 0 identical, 1 different ("Content mismatch at offset N!"), 2 error.
 * Without -s, images of different sizes are equal when the extra part of
 * the larger one reads as zeros; -s also wants the same sizes and the
 * same allocation. */
#include "img.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1 * MiB)
#define CMP_DIFFER 1
#define CMP_ERROR 2

static const char compare_help[] =
	"usage: kumo img compare [-q] [-p] [-s] [-f FMT] [-F FMT] FILENAME1 FILENAME2\n"
	"\n"
	"Compares what a guest sees of two images. Exit 0 identical, 1 different,\n"
	"2 error. -s (strict) also fails on different sizes or allocation.\n";

static bool is_zero_status(int st)
{
	return (st & BLK_ZERO) || !(st & BLK_ALLOCATED);
}

/* First differing byte, rounded down to a 512-byte sector as qemu-img. */
static uint64_t mismatch(const uint8_t *a, const uint8_t *b, uint64_t len)
{
	uint64_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return ALIGN_DOWN(i, 512);
}

/* The tail [from, to) of the larger image must read as zeros. */
static int check_tail(struct blk_image *img, uint8_t *buf, uint64_t from, uint64_t to, bool quiet)
{
	while (from < to) {
		uint64_t len = MIN(CHUNK, to - from), pnum, map;
		struct blk_image *owner;
		int depth, st = img_chain_status(img, from, len, &pnum, &map, &depth, &owner);

		if (st < 0)
			return -1;
		len = MIN(len, pnum);
		if (!is_zero_status(st)) {
			if (img_read(img, buf, len, from))
				return -1;
			if (!img_is_zero(buf, len)) {
				uint64_t i = 0;
				while (!buf[i])
					i++;
				if (!quiet)
					printf("Content mismatch at offset %llu!\n",
					       (unsigned long long)(from + ALIGN_DOWN(i, 512)));
				return 1;
			}
		}
		from += len;
	}
	return 0;
}

static int compare_images(struct blk_image *a, struct blk_image *b, bool strict, bool quiet,
			  struct img_progress *prog)
{
	uint64_t common = MIN(a->size, b->size), off = 0, total = MAX(a->size, b->size);
	uint8_t *ba = malloc(CHUNK), *bb = malloc(CHUNK);
	int rc = 0;

	if (!ba || !bb) {
		img_err("out of memory");
		rc = -1;
		goto out;
	}
	if (strict && a->size != b->size) {
		if (!quiet)
			printf("Strict mode: Image size mismatch!\n");
		rc = 1;
		goto out;
	}
	while (off < common && !rc) {
		uint64_t len = MIN(CHUNK, common - off), pa, pb, ma, mb;
		struct blk_image *oa, *ob;
		int da, db, sa, sb;

		sa = img_chain_status(a, off, len, &pa, &ma, &da, &oa);
		sb = sa < 0 ? sa : img_chain_status(b, off, len, &pb, &mb, &db, &ob);
		if (sa < 0 || sb < 0) {
			img_err("error while reading the block status at offset %llu",
				(unsigned long long)off);
			rc = -1;
			break;
		}
		len = MIN(len, MIN(pa, pb));
		if (strict && (sa & BLK_ALLOCATED) != (sb & BLK_ALLOCATED)) {
			if (!quiet)
				printf("Strict mode: Offset %llu block status mismatch!\n",
				       (unsigned long long)off);
			rc = 1;
			break;
		}
		if (!(is_zero_status(sa) && is_zero_status(sb))) {
			if (img_read(a, ba, len, off) || img_read(b, bb, len, off)) {
				img_err("error while reading offset %llu", (unsigned long long)off);
				rc = -1;
				break;
			}
			if (memcmp(ba, bb, len)) {
				if (!quiet)
					printf("Content mismatch at offset %llu!\n",
					       (unsigned long long)(off + mismatch(ba, bb, len)));
				rc = 1;
				break;
			}
		}
		off += len;
		img_progress(prog, off, total);
	}
	if (!rc && a->size != b->size) {
		if (!quiet)
			printf("Warning: Image size mismatch!\n");
		rc = check_tail(a->size > b->size ? a : b, ba, common, total, quiet);
	}
out:
	free(ba);
	free(bb);
	return rc;
}

int img_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	struct img_progress prog = { 0 };
	const char *fa = NULL, *fb = NULL;
	bool strict = false, quiet = false;
	struct blk_image *a, *b;
	int c, rc;

	while ((c = getopt_long(argc, argv, "hf:F:spqT:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(compare_help, stdout); return 0;
		case 'f': fa = optarg; break;
		case 'F': fb = optarg; break;
		case 's': strict = true; break;
		case 'p': prog.on = true; break;
		case 'q': quiet = true; break;
		case 'U': img_force_share = true; break;
		case 'T': break;
		default:
			img_usage("compare: bad option (see 'kumo img compare --help')");
			return CMP_ERROR;
		}
	}
	if (argc - optind != 2) {
		img_usage("Expecting two image file names");
		return CMP_ERROR;
	}
	if (quiet)
		prog.on = false;
	if (fa && !fb)
		fb = fa;
	a = img_open(argv[optind], fa, true, false);
	if (!a)
		return CMP_ERROR;
	b = img_open(argv[optind + 1], fb, true, false);
	if (!b) {
		blk_close(a);
		return CMP_ERROR;
	}
	rc = compare_images(a, b, strict, quiet, &prog);
	blk_close(b);
	blk_close(a);
	if (rc < 0)
		return CMP_ERROR;
	if (!rc) {
		img_progress_end(&prog);
		if (!quiet)
			printf("Images are identical.\n");
	}
	return rc ? CMP_DIFFER : 0;
}
