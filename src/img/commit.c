/* kumo img commit [-f FMT] [-d] [-p] [-q] FILE
 * Writes what FILE (an overlay) holds into its backing file, then empties
 * the overlay (unless -d), as qemu-img commit does. */
#include "img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (2 * MiB)

static const char commit_help[] =
	"usage: kumo img commit [-q] [-p] [-d] [-f FMT] FILENAME\n"
	"\n"
	"Commits the overlay FILENAME into its backing file; -d keeps the overlay's\n"
	"content (otherwise it is emptied).\n";

static int grow_base(struct blk_image *base, uint64_t size)
{
	if (base->size >= size)
		return 0;
	if (base->ops->truncate)
		return base->ops->truncate(base, size);
	if (!strcmp(base->ops->name, "raw") && !base->is_blockdev)
		return ftruncate(base->fd, (off_t)size) ? -errno : 0;
	return -ENOTSUP;
}

static int commit_runs(struct blk_image *top, struct blk_image *base, uint8_t *buf,
		       struct img_progress *prog)
{
	uint64_t off = 0;
	int err;

	while (off < top->size) {
		uint64_t len = MIN(CHUNK, top->size - off), pnum, map;
		int st = img_block_status(top, off, len, &pnum, &map);

		if (st < 0)
			return st;
		len = MIN(len, pnum);
		if ((st & BLK_ALLOCATED) && (st & BLK_ZERO)) {
			if ((err = base->ops->write_zeroes(base, off, len, false)))
				return err;
		} else if (st & BLK_ALLOCATED) {
			struct iovec iov = { buf, len };
			if ((err = top->ops->preadv(top, &iov, 1, off)) ||
			    (err = base->ops->pwritev(base, &iov, 1, off)))
				return err;
		}
		off += len;
		img_progress(prog, off, top->size);
	}
	return 0;
}

int img_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct img_progress prog = { 0 };
	const char *fmt = NULL;
	bool keep = false, quiet = false;
	struct blk_image *top, *base = NULL;
	uint8_t *buf = NULL;
	int c, err = -EINVAL;

	while ((c = getopt_long(argc, argv, "hf:dpqt:b:r:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(commit_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'd': keep = true; break;
		case 'p': prog.on = true; break;
		case 'q': quiet = true; break;
		case 't': case 'r': break;
		case 'b': return img_usage("commit -b (into a deeper base) is not supported");
		default: return img_usage("commit: bad option (see 'kumo img commit --help')");
		}
	}
	if (optind != argc - 1)
		return img_usage("Expecting one image file name");
	if (quiet)
		prog.on = false;
	top = img_open(argv[optind], fmt, keep, true);
	if (!top)
		return IMG_ERR;
	if (!top->backing_file) {
		img_err("Image does not have a backing file");
		goto out;
	}
	if (!keep && !top->ops->make_empty) {
		img_err("Image format '%s' cannot be emptied after commit", top->ops->name);
		goto out;
	}
	base = img_open(top->backing_file, top->backing_format, false, true);
	if (!base)
		goto out;
	if ((err = grow_base(base, top->size))) {
		img_err("Could not resize the backing file: %s", strerror(-err));
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	img_progress(&prog, 0, top->size);
	if ((err = commit_runs(top, base, buf, &prog)) || (err = base->ops->flush(base))) {
		img_err("Block job failed: %s", strerror(-err));
		goto out;
	}
	if (!keep && ((err = top->ops->make_empty(top)) || (err = top->ops->flush(top)))) {
		img_err("Could not empty %s: %s", argv[optind], strerror(-err));
		goto out;
	}
	img_progress_end(&prog);
	if (!quiet)
		printf("Image committed.\n");
out:
	free(buf);
	blk_close(base);
	blk_close(top);
	return err ? IMG_ERR : IMG_OK;
}
