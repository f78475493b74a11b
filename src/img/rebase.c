/* kumo img rebase [-f FMT] [-u] [-p] [-q] -b BACKING [-F BACKING_FMT] FILE
 * Safe mode (the default) keeps what the guest sees: wherever FILE does not
 * hold the data itself and the old and new backing files differ, the old
 * content is copied into FILE first. -u only rewrites the name. -b ""
 * makes FILE stand alone. */
#include "img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (64 * KiB)

static const char rebase_help[] =
	"usage: kumo img rebase [-q] [-p] [-u] [-f FMT] -b BACKING_FILE [-F BACKING_FMT]\n"
	"                       FILENAME\n"
	"\n"
	"Changes the backing file of FILENAME to BACKING_FILE (\"\": none). Without -u\n"
	"the content the guest sees is kept (differences are copied into FILENAME).\n";

/* Reads [off, off+len) of a backing image or zeros (none, or past its end). */
static int read_view(struct blk_image *b, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t in = b && off < b->size ? MIN(len, b->size - off) : 0;
	int err;

	if (in && (err = img_read(b, buf, in, off)))
		return err;
	memset(buf + in, 0, len - in);
	return 0;
}

static int rebase_copy(struct blk_image *img, struct blk_image *nb, struct img_progress *prog)
{
	uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
	uint64_t off = 0;
	int err = a && b ? 0 : -ENOMEM;

	while (!err && off < img->size) {
		uint64_t len = MIN(CHUNK, img->size - off), pnum, map;
		int st = img_block_status(img, off, len, &pnum, &map);

		if (st < 0) {
			err = st;
			break;
		}
		len = MIN(len, pnum);
		if (!(st & BLK_ALLOCATED)) {
			if (!(err = read_view(img->backing, a, len, off)) &&
			    !(err = read_view(nb, b, len, off)) && memcmp(a, b, len)) {
				struct iovec iov = { a, len };
				err = img->ops->pwritev(img, &iov, 1, off);
			}
		}
		off += len;
		img_progress(prog, off, img->size);
	}
	free(a);
	free(b);
	return err;
}

int img_rebase(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	struct img_progress prog = { 0 };
	const char *fmt = NULL, *backing = NULL, *bfmt = NULL;
	bool unsafe = false, quiet = false;
	struct blk_image *img = NULL, *nb = NULL;
	char *bpath = NULL;
	int c, err = -EINVAL;

	while ((c = getopt_long(argc, argv, "hf:b:F:upqt:T:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(rebase_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'b': backing = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': prog.on = true; break;
		case 'q': quiet = true; break;
		case 'U': img_force_share = true; break;
		case 't': case 'T': break;
		default: return img_usage("rebase: bad option (see 'kumo img rebase --help')");
		}
	}
	if (optind != argc - 1)
		return img_usage("Expecting one image file name");
	if (!backing)
		return img_usage("Must specify backing file (-b)");
	if (quiet)
		prog.on = false;
	if (!*backing)
		backing = NULL;
	img = img_open(argv[optind], fmt, false, unsafe);
	if (!img)
		return IMG_ERR;
	if (!img->ops->set_backing) {
		img_err("Image format '%s' does not support backing files", img->ops->name);
		goto out;
	}
	if (backing && !unsafe) {
		bpath = img_resolve_backing(argv[optind], backing);
		nb = bpath ? img_open(bpath, bfmt, true, false) : NULL;
		if (!nb) {
			img_err("Could not open new backing file '%s'", backing);
			goto out;
		}
		if (!bfmt)
			bfmt = nb->ops->name;
	}
	if (!unsafe) {
		img_progress(&prog, 0, img->size);
		if ((err = rebase_copy(img, nb, &prog))) {
			img_err("error while rebasing: %s", strerror(-err));
			goto out;
		}
	}
	if ((err = img->ops->set_backing(img, backing, backing ? bfmt : NULL)) ||
	    (err = img->ops->flush(img))) {
		img_err("Could not change the backing file to '%s': %s", backing ? backing : "",
			strerror(-err));
		goto out;
	}
	img_progress_end(&prog);
out:
	free(bpath);
	blk_close(nb);
	blk_close(img);
	return err ? IMG_ERR : IMG_OK;
}
