/* kumo img info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILE
 * What qemu-img info says, with the same JSON keys. */
#include "img.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char info_help[] =
	"usage: kumo img info [-f FMT] [--output=human|json] [--backing-chain] FILENAME\n"
	"\n"
	"Prints what the image is: format, virtual and disk size, cluster size,\n"
	"backing file, and what its format knows of itself.\n";

static uint64_t actual_size(const struct blk_image *img)
{
	struct stat st;

	if (fstat(img->fd, &st))
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

static void info_human(struct blk_image *img, const char *name, const struct blk_info *bi, bool has_info)
{
	char a[32], b[32];

	printf("image: %s\nfile format: %s\n", name, img->ops->name);
	printf("virtual size: %s (%llu bytes)\n", img_human_size(img->size, a, sizeof(a)),
	       (unsigned long long)img->size);
	printf("disk size: %s\n", img_human_size(actual_size(img), b, sizeof(b)));
	if (has_info && bi->cluster_size)
		printf("cluster_size: %llu\n", (unsigned long long)bi->cluster_size);
	if (has_info && bi->backing_file[0]) {
		printf("backing file: %s", bi->backing_file);
		if (img->backing_file && strcmp(img->backing_file, bi->backing_file))
			printf(" (actual path: %s)", img->backing_file);
		printf("\n");
		if (bi->backing_format[0])
			printf("backing file format: %s\n", bi->backing_format);
	}
	if (!has_info)
		return;
	if (!strcmp(img->ops->name, "qcow2")) {
		printf("Format specific information:\n");
		printf("    compat: %s\n", bi->version == 2 ? "0.10" : "1.1");
		if (bi->version != 2) {
			printf("    compression type: %s\n", bi->compression_type[0] ? bi->compression_type : "zlib");
			printf("    lazy refcounts: %s\n", bi->lazy_refcounts ? "true" : "false");
		}
		printf("    refcount bits: %d\n", bi->refcount_bits ? bi->refcount_bits : 16);
		printf("    corrupt: %s\n", bi->corrupt ? "true" : "false");
		printf("    extended l2: %s\n", bi->extended_l2 ? "true" : "false");
	} else if (bi->subformat[0]) {
		printf("Format specific information:\n");
		printf("    %s: %s\n", !strcmp(img->ops->name, "vmdk") ? "create type" : "subformat",
		       bi->subformat);
	}
}

static void info_json(struct img_json *j, struct blk_image *img, const char *name,
		      const struct blk_info *bi, bool has_info)
{
	json_obj_open(j, NULL);
	if (has_info && bi->backing_format[0])
		json_str(j, "backing-filename-format", bi->backing_format);
	json_u64(j, "virtual-size", img->size);
	json_str(j, "filename", name);
	if (has_info && bi->cluster_size)
		json_u64(j, "cluster-size", bi->cluster_size);
	json_str(j, "format", img->ops->name);
	json_u64(j, "actual-size", actual_size(img));
	if (has_info && !strcmp(img->ops->name, "qcow2")) {
		json_obj_open(j, "format-specific");
		json_str(j, "type", "qcow2");
		json_obj_open(j, "data");
		json_str(j, "compat", bi->version == 2 ? "0.10" : "1.1");
		if (bi->version != 2) {
			json_str(j, "compression-type", bi->compression_type[0] ? bi->compression_type : "zlib");
			json_bool(j, "lazy-refcounts", bi->lazy_refcounts);
		}
		json_u64(j, "refcount-bits", (uint64_t)(bi->refcount_bits ? bi->refcount_bits : 16));
		json_bool(j, "corrupt", bi->corrupt);
		json_bool(j, "extended-l2", bi->extended_l2);
		json_obj_close(j);
		json_obj_close(j);
	} else if (has_info && bi->subformat[0]) {
		json_obj_open(j, "format-specific");
		json_str(j, "type", img->ops->name);
		json_obj_open(j, "data");
		json_str(j, !strcmp(img->ops->name, "vmdk") ? "create-type" : "subformat", bi->subformat);
		json_obj_close(j);
		json_obj_close(j);
	}
	if (has_info && bi->backing_file[0]) {
		json_str(j, "full-backing-filename", img->backing_file ? img->backing_file : bi->backing_file);
		json_str(j, "backing-filename", bi->backing_file);
	}
	json_bool(j, "dirty-flag", has_info && bi->dirty);
	json_obj_close(j);
}

int img_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "backing-chain", no_argument, NULL, 'c' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	const char *fmt = NULL, *path;
	bool chain = false;
	int json = 0, c, rc = IMG_OK;
	struct blk_image *top, *img;
	struct img_json j;

	while ((c = getopt_long(argc, argv, "hf:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(info_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'o': if ((json = img_output_format(optarg)) < 0) return IMG_ERR; break;
		case 'j': json = 1; break;
		case 'c': chain = true; break;
		case 'U': img_force_share = true; break;
		default: return img_usage("info: bad option (see 'kumo img info --help')");
		}
	}
	if (optind != argc - 1)
		return img_usage("Expecting one image file name");
	path = argv[optind];
	/* The chain is opened only for --backing-chain (a missing backing
	 * file does not stop info on the overlay). */
	top = img_open(path, fmt, true, !chain);
	if (!top)
		return IMG_ERR;
	json_begin(&j, stdout);
	if (json && chain)
		json_arr_open(&j, NULL);
	for (img = top; img; img = chain ? img->backing : NULL) {
		struct blk_info bi;
		bool has = img->ops->info && !img->ops->info(img, &bi);

		if (!has)
			memset(&bi, 0, sizeof(bi));
		if (json)
			info_json(&j, img, img->path, &bi, has);
		else {
			if (img != top)
				printf("\n");
			info_human(img, img->path, &bi, has);
		}
	}
	if (json && chain)
		json_arr_close(&j);
	if (json)
		json_end(&j);
	blk_close(top);
	return rc;
}
