/* kumo img map [-f FMT] [--output=human|json] [--start-offset=N]
 *              [--max-length=N] FILE
 * Where each run of the disk comes from, through the backing chain: which
 * image (depth), data or zeros, and where in that file. Runs that agree
 * and follow each other are merged, as qemu-img does. */
#include "img.h"

#include <getopt.h>
#include <string.h>

static const char map_help[] =
	"usage: kumo img map [-f FMT] [--output=human|json] [--start-offset=OFFSET]\n"
	"                    [--max-length=LENGTH] FILENAME\n"
	"\n"
	"Prints the image's allocation through its backing chain. human: the data\n"
	"runs and where they are stored; json: every run with depth, present, zero,\n"
	"data and offset.\n";

struct entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *file;
};

static bool mergeable(const struct entry *a, const struct entry *b)
{
	return a->start + a->length == b->start && a->depth == b->depth &&
	       a->present == b->present && a->zero == b->zero && a->data == b->data &&
	       a->has_offset == b->has_offset && a->file == b->file &&
	       (!a->has_offset || a->offset + a->length == b->offset);
}

static void print_entry(const struct entry *e, bool json, bool *first)
{
	if (json) {
		printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
		       "\"zero\": %s, \"data\": %s", *first ? "[" : ",\n",
		       (unsigned long long)e->start, (unsigned long long)e->length, e->depth,
		       e->present ? "true" : "false", e->zero ? "true" : "false",
		       e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		printf("}");
	} else if (e->data && e->has_offset) {
		printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, (unsigned long long)e->offset, e->file);
	}
	*first = false;
}

int img_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "start-offset", required_argument, NULL, 's' },
		{ "max-length", required_argument, NULL, 'l' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	const char *fmt = NULL;
	uint64_t start = 0, max_len = UINT64_MAX, off, end;
	struct entry cur = { 0 };
	bool have = false, first = true;
	struct blk_image *img;
	int c, json = 0, rc = IMG_OK;

	while ((c = getopt_long(argc, argv, "hf:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(map_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'U': img_force_share = true; break;
		case 'o': if ((json = img_output_format(optarg)) < 0) return IMG_ERR; break;
		case 'j': json = 1; break;
		case 's':
			if (img_parse_size(optarg, &start)) {
				img_err("Invalid start offset specified! You may use k, M, G, T, P or E suffixes for ");
				return IMG_ERR;
			}
			break;
		case 'l':
			if (img_parse_size(optarg, &max_len)) {
				img_err("Invalid length specified! You may use k, M, G, T, P or E suffixes for ");
				return IMG_ERR;
			}
			break;
		default: return img_usage("map: bad option (see 'kumo img map --help')");
		}
	}
	if (optind != argc - 1)
		return img_usage("Expecting one image file name");
	img = img_open(argv[optind], fmt, true, false);
	if (!img)
		return IMG_ERR;
	end = max_len > img->size - MIN(start, img->size) ? img->size : start + max_len;
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (off = start; off < end;) {
		uint64_t pnum, map;
		struct blk_image *owner;
		int depth, st = img_chain_status(img, off, MIN(end - off, 1ULL << 30), &pnum, &map,
						 &depth, &owner);
		struct entry e;

		if (st < 0) {
			img_err("Could not read the block status at offset %llu", (unsigned long long)off);
			rc = IMG_ERR;
			break;
		}
		e = (struct entry){
			.start = off, .length = pnum, .depth = depth, .file = owner->path,
			.present = st & BLK_ALLOCATED, .data = st & BLK_DATA,
			.zero = (st & BLK_ZERO) || !(st & BLK_ALLOCATED),
			.has_offset = st & BLK_OFFSET_VALID, .offset = map,
		};
		if (have && mergeable(&cur, &e)) {
			cur.length += e.length;
		} else {
			if (have)
				print_entry(&cur, json, &first);
			cur = e;
			have = true;
		}
		off += pnum;
	}
	if (have)
		print_entry(&cur, json, &first);
	if (json)
		printf(first ? "[]\n" : "]\n");
	blk_close(img);
	return rc;
}
