/* kumo img resize [-f FMT] [--shrink] [-q] FILE [+|-]SIZE */
#include "img.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

static const char resize_help[] =
	"usage: kumo img resize [-q] [-f FMT] [--shrink] FILENAME [+|-]SIZE\n"
	"\n"
	"Changes the virtual size to SIZE, or by +SIZE / -SIZE. Shrinking needs\n"
	"--shrink (the data past the new end is lost).\n";

int img_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "shrink", no_argument, NULL, 's' },
		{ "preallocation", required_argument, NULL, 'P' },
		{ 0 },
	};
	const char *fmt = NULL, *path, *arg;
	bool shrink = false, quiet = false;
	uint64_t n, size;
	struct blk_image *img;
	int c, err, sign = 0;

	/* "-1G" is a size, not an option: taken out before getopt sees it. */
	arg = NULL;
	if (argc > 2 && argv[argc - 1][0] == '-' && isdigit((unsigned char)argv[argc - 1][1]))
		arg = argv[--argc];
	while ((c = getopt_long(argc, argv, "hf:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(resize_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case 's': shrink = true; break;
		case 'P':
			if (strcmp(optarg, "off"))
				return img_usage("preallocation '%s' is not supported", optarg);
			break;
		default: return img_usage("resize: bad option (see 'kumo img resize --help')");
		}
	}
	if (argc - optind != (arg ? 1 : 2))
		return img_usage("Expecting image file name and size");
	path = argv[optind];
	if (!arg)
		arg = argv[optind + 1];
	if (*arg == '+' || *arg == '-')
		sign = *arg++ == '+' ? 1 : -1;
	if (img_parse_size(arg, &n)) {
		img_err("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
		img_err("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
		return IMG_ERR;
	}
	img = img_open(path, fmt, false, true);
	if (!img)
		return IMG_ERR;
	err = -EINVAL;
	if (sign > 0 && n > UINT64_MAX - img->size) {
		img_err("Image size too large");
		goto out;
	}
	if (sign < 0 && n > img->size) {
		img_err("New image size must be positive");
		goto out;
	}
	size = sign > 0 ? img->size + n : sign < 0 ? img->size - n : n;
	if (size > (uint64_t)INT64_MAX) {
		img_err("Image size too large");
		goto out;
	}
	if (size < img->size && !shrink) {
		img_err("Use the --shrink option to perform a shrink operation.");
		goto out;
	}
	if (size == img->size) {
		err = 0;
	} else if (img->ops->truncate) {
		err = img->ops->truncate(img, size);
	} else if (!strcmp(img->ops->name, "raw") && !img->is_blockdev) {
		err = ftruncate(img->fd, (off_t)size) ? -errno : 0;
	} else {
		img_err("Image format '%s' does not support resizing", img->ops->name);
		goto out;
	}
	if (!err)
		err = img->ops->flush(img);
	if (err)
		img_err("Error resizing image: %s", strerror(-err));
	else if (!quiet)
		printf("Image resized.\n");
out:
	blk_close(img);
	return err ? IMG_ERR : IMG_OK;
}
