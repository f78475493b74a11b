/* kumo img create [-q] [-f FMT] [-b BACKING -F BACKING_FMT] [-u] [-o OPTS]
 *                 FILE [SIZE]
 * Without SIZE, an overlay takes its backing file's size. */
#include "img.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char create_help[] =
	"usage: kumo img create [-q] [-f FMT] [-b BACKING_FILE -F BACKING_FMT] [-u]\n"
	"                       [-o OPTIONS] FILENAME [SIZE]\n"
	"\n"
	"Creates a disk image FILENAME of SIZE bytes (suffixes k, M, G, T, P, E).\n"
	"  -f FMT        raw (the default) or qcow2\n"
	"  -b FILE       backing file (an overlay; SIZE defaults to the backing file's)\n"
	"  -F FMT        the backing file's format (required with -b)\n"
	"  -u            do not open the backing file (SIZE is then required)\n"
	"  -o OPTIONS    cluster_size=, refcount_bits=, compression_type=zlib|zstd,\n"
	"                lazy_refcounts=on|off, extended_l2=on|off, size=, backing_file=,\n"
	"                backing_fmt=\n"
	"  -q            quiet\n";

int img_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, 'O' },
		{ 0 },
	};
	struct blk_create_opts o = { 0 };
	const char *fmt = "raw", *path;
	bool quiet = false, unsafe = false, have_size = false;
	int c;

	while ((c = getopt_long(argc, argv, "hf:b:F:uo:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(create_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'b': o.backing_file = optarg; break;
		case 'F': o.backing_format = optarg; break;
		case 'u': unsafe = true; break;
		case 'q': quiet = true; break;
		case 'o':
			if (!strcmp(optarg, "help") || !strcmp(optarg, "?")) {
				puts("Supported options:\n  cluster_size\n  refcount_bits\n  compression_type\n"
				     "  lazy_refcounts\n  extended_l2\n  size\n  backing_file\n  backing_fmt");
				return IMG_OK;
			}
			if (img_parse_create_opts(optarg, &o, &fmt))
				return IMG_ERR;
			have_size = o.size != 0;
			break;
		default: return img_usage("create: bad option (see 'kumo img create --help')");
		}
	}
	if (optind >= argc)
		return img_usage("Expecting image file name");
	path = argv[optind++];
	if (optind < argc) {
		if (img_parse_size(argv[optind], &o.size)) {
			img_err("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
			img_err("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
			return IMG_ERR;
		}
		have_size = true;
		optind++;
	}
	if (optind < argc)
		return img_usage("Unexpected argument: %s", argv[optind]);
	if (!blk_format(fmt)) {
		img_err("Unknown file format '%s'", fmt);
		return IMG_ERR;
	}
	if (o.backing_file && !o.backing_format) {
		img_err("%s: Backing file specified without backing format", path);
		return IMG_ERR;
	}
	if (o.backing_file && strcmp(fmt, "raw") && !unsafe) {
		/* The backing file must open; it gives the size when none is given. */
		char *bpath = img_resolve_backing(path, o.backing_file);
		struct blk_image *b = bpath ? img_open(bpath, o.backing_format, true, false) : NULL;

		free(bpath);
		if (!b) {
			img_err("%s: Could not open backing image.", path);
			return IMG_ERR;
		}
		if (!have_size) {
			o.size = b->size;
			have_size = true;
		}
		blk_close(b);
	}
	if (!have_size) {
		img_err("%s: Image creation needs a size parameter", path);
		return IMG_ERR;
	}
	return img_do_create(path, fmt, &o, quiet) ? IMG_ERR : IMG_OK;
}
