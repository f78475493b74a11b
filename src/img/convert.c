/* kumo img convert [-f FMT] [-O FMT] [-c] [-p] [-q] [-n] [-o OPTS] [-S SIZE]
 *                  SRC DST
 * Copies what the guest sees of SRC (through its backing chain) into a new
 * DST. Runs that read as zeros are not written, and with -S (default 4k)
 * all-zero pieces of data are skipped too, so DST stays sparse: a hole in
 * raw, an unallocated cluster in qcow2. -c writes compressed clusters. */
#include "img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (2 * MiB)

static const char convert_help[] =
	"usage: kumo img convert [-q] [-p] [-c] [-n] [-f FMT] [-O OUTPUT_FMT] [-o OPTIONS]\n"
	"                        [-S SPARSE_SIZE] [-B BACKING_FILE -F BACKING_FMT]\n"
	"                        FILENAME OUTPUT_FILENAME\n"
	"\n"
	"Converts FILENAME (raw, qcow2, vpc, vmdk) to OUTPUT_FILENAME (raw or qcow2).\n"
	"  -f FMT        the input's format (probed otherwise; a fixed VHD needs -f vpc)\n"
	"  -O FMT        the output's format: raw (the default) or qcow2\n"
	"  -c            compress the output's clusters (qcow2)\n"
	"  -o OPTIONS    creation options of the output, as for create\n"
	"  -S SIZE       zero runs this long and aligned are left unallocated (default 4k,\n"
	"                0: write everything)\n"
	"  -B FILE       the output is an overlay of FILE (which holds what SRC's backing\n"
	"                chain holds): only SRC's own data is copied; -F gives its format\n"
	"  -n            do not create the output (it exists, at least as large)\n"
	"  -t CACHE      the output's cache mode: unsafe (the default, as qemu-img: no\n"
	"                flush at the end), writeback, none, writethrough, directsync\n"
	"  -p            show progress\n"
	"  -q            quiet\n";

struct conv {
	struct blk_image *src, *dst;
	uint64_t sparse;       /* granularity of zero detection; 0: none */
	uint64_t cluster;      /* compression unit */
	bool compress, existing;
	bool flush;            /* -t other than unsafe: make the output durable */
	bool backed;           /* -B: the output has the source's backing file */
	uint8_t *buf;
};

static int write_run(struct conv *c, const uint8_t *p, uint64_t len, uint64_t off)
{
	struct iovec iov = { (void *)p, len };

	return c->dst->ops->pwritev(c->dst, &iov, 1, off);
}

/* Writes a data chunk, leaving all-zero aligned pieces out. */
static int write_data(struct conv *c, const uint8_t *p, uint64_t len, uint64_t off)
{
	uint64_t at = 0;
	int err;

	if (c->compress) {
		for (at = 0; at < len; at += c->cluster) {
			uint64_t n = MIN(c->cluster, len - at);
			if (img_is_zero(p + at, n))
				continue;
			if ((err = c->dst->ops->write_compressed(c->dst, p + at, off + at, n)))
				return err;
		}
		return 0;
	}
	if (!c->sparse)
		return write_run(c, p, len, off);
	while (at < len) {
		/* A run of pieces all zero or all data. */
		uint64_t end = MIN(len, ALIGN_DOWN(off + at, c->sparse) + c->sparse - off);
		bool zero = img_is_zero(p + at, end - at);

		while (end < len) {
			uint64_t n = MIN(c->sparse, len - end);
			if (img_is_zero(p + end, n) != zero)
				break;
			end += n;
		}
		if (!zero && (err = write_run(c, p + at, end - at, off + at)))
			return err;
		/* Zeros must be written over what an existing output or the
		 * output's backing file holds. */
		if (zero && (c->existing || c->backed) &&
		    (err = c->dst->ops->write_zeroes(c->dst, off + at, end - at, !c->backed)))
			return err;
		at = end;
	}
	return 0;
}

/* Walks the source by chain status: zero runs (as long as they come, up
 * to 1 GiB a step) are skipped, data is copied CHUNK at a time. With -c
 * every step starts on a CHUNK boundary (whole clusters): a zero run
 * shorter than the rest of its chunk is read with it. */
static int convert_run(struct conv *c, struct img_progress *prog)
{
	uint64_t off = 0, size = c->src->size;
	int err;

	img_progress(prog, 0, size);
	while (off < size) {
		uint64_t len = MIN(1ULL << 30, size - off), pnum, map;
		struct blk_image *owner;
		int depth, st;
		bool zero;

		st = img_chain_status(c->src, off, len, &pnum, &map, &depth, &owner);
		if (st < 0)
			return st;
		if (c->backed && depth > 0) {
			/* Not in the source's top image: the output's backing
			 * file has it (as qemu-img -B assumes). */
			off += pnum;
			img_progress(prog, off, size);
			continue;
		}
		if (c->backed && (st & BLK_ZERO)) {
			/* Zeros over the backing file must be written. */
			if ((err = c->dst->ops->write_zeroes(c->dst, off, pnum, false)))
				return err;
			off += pnum;
			img_progress(prog, off, size);
			continue;
		}
		zero = (st & BLK_ZERO) || !(st & BLK_ALLOCATED);
		if (zero && c->compress && off + pnum < size) {
			len = ALIGN_DOWN(pnum, CHUNK);
			zero = len != 0;
			if (!zero)
				len = MIN(CHUNK, size - off);
		} else if (zero) {
			len = pnum;
		} else {
			len = MIN(c->compress ? CHUNK : pnum, MIN(CHUNK - off % CHUNK, size - off));
		}
		if (!zero) {
			if ((err = img_read(c->src, c->buf, len, off)))
				return err;
			if ((err = write_data(c, c->buf, len, off)))
				return err;
		} else if (c->existing &&
			   (err = c->dst->ops->write_zeroes(c->dst, off, len, true))) {
			return err;
		}
		off += len;
		img_progress(prog, off, size);
	}
	return 0;
}

int img_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "target-is-zero", no_argument, NULL, 'z' },
		{ 0 },
	};
	struct blk_create_opts o = { 0 };
	const char *ifmt = NULL, *ofmt = "raw", *src, *dst, *fopt = NULL;
	struct img_progress prog = { 0 };
	struct conv c = { .sparse = 4096 };
	bool quiet = false;
	int ch, err;

	while ((ch = getopt_long(argc, argv, "hf:O:co:S:npqt:T:m:WUB:F:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': fputs(convert_help, stdout); return IMG_OK;
		case 'f': ifmt = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'c': c.compress = true; break;
		case 'n': c.existing = true; break;
		case 'p': prog.on = true; break;
		case 'q': quiet = true; break;
		case 'o':
			if (img_parse_create_opts(optarg, &o, &fopt))
				return IMG_ERR;
			break;
		case 'S':
			if (img_parse_size(optarg, &c.sparse) || (c.sparse && c.sparse % 512)) {
				img_err("Invalid buffer size for sparse output specified. "
					"Must be a multiple of 512.");
				return IMG_ERR;
			}
			break;
		case 'B': o.backing_file = optarg; break;
		case 'F': o.backing_format = optarg; break;
		case 't':
			/* As qemu-img: the output's cache mode, "unsafe" (no
			 * flush at the end) by default. */
			if (strcmp(optarg, "unsafe") && strcmp(optarg, "writeback") &&
			    strcmp(optarg, "none") && strcmp(optarg, "writethrough") &&
			    strcmp(optarg, "directsync"))
				return img_usage("Invalid cache option: %s", optarg);
			c.flush = strcmp(optarg, "unsafe") != 0;
			break;
		case 'U': img_force_share = true; break;
		case 'T': case 'm': case 'W': case 'z': break;
		default: return img_usage("convert: bad option (see 'kumo img convert --help')");
		}
	}
	if (argc - optind != 2)
		return img_usage(argc - optind < 2 ? "Expecting image file name" :
				 "only one input image is supported");
	if (quiet)
		prog.on = false;
	src = argv[optind];
	dst = argv[optind + 1];
	if (!blk_format(ofmt)) {
		img_err("Unknown file format '%s'", ofmt);
		return IMG_ERR;
	}
	if (c.compress && !blk_format(ofmt)->write_compressed) {
		img_err("Compression not supported for this file format");
		return IMG_ERR;
	}
	if (o.backing_file && !o.backing_format) {
		img_err("%s: Backing file specified without backing format", dst);
		return IMG_ERR;
	}
	if (o.backing_file && (c.existing || c.compress)) {
		img_err("-B cannot be combined with -n or -c");
		return IMG_ERR;
	}
	c.src = img_open(src, ifmt, true, false);
	if (!c.src)
		return IMG_ERR;
	c.backed = o.backing_file != NULL;
	err = -EINVAL;
	if (!c.existing) {
		o.size = c.src->size;
		if (img_do_create(dst, ofmt, &o, true))
			goto out;
	}
	c.dst = img_open_opts(dst, &(struct blk_open_opts){ .format = ofmt, .no_backing = true,
							     .unsafe = !c.flush });
	if (!c.dst)
		goto out;
	if (c.dst->size < c.src->size) {
		img_err("Target image is too small (%llu bytes, needs %llu)",
			(unsigned long long)c.dst->size, (unsigned long long)c.src->size);
		goto out;
	}
	if (c.compress) {
		struct blk_info bi = { 0 };
		c.cluster = c.dst->ops->info && !c.dst->ops->info(c.dst, &bi) && bi.cluster_size ?
			bi.cluster_size : 65536;
		if (c.cluster > CHUNK || CHUNK % c.cluster) {
			img_err("cluster size %llu too large for compression", (unsigned long long)c.cluster);
			goto out;
		}
	}
	c.buf = aligned_alloc(4096, CHUNK);
	if (!c.buf) {
		img_err("out of memory");
		goto out;
	}
	if ((err = convert_run(&c, &prog))) {
		img_err("error while converting %s: %s", ofmt, strerror(-err));
		goto out;
	}
	if (c.flush && (err = c.dst->ops->flush(c.dst)))
		img_err("error while flushing %s: %s", dst, strerror(-err));
	else
		img_progress_end(&prog);
out:
	free(c.buf);
	blk_close(c.dst);
	blk_close(c.src);
	return err ? IMG_ERR : IMG_OK;
}
