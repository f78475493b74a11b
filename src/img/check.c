/* kumo img check [-f FMT] [-r leaks|all] [--output=human|json] FILE
 * Exit codes as qemu-img: 0 clean, 1 the check could not run, 2
 * corruptions, 3 leaks only, 63 the format has no check. */
#include "img.h"

#include <getopt.h>
#include <string.h>

#define CHECK_CORRUPT 2
#define CHECK_LEAKS 3
#define CHECK_UNSUPPORTED 63

static const char check_help[] =
	"usage: kumo img check [-q] [-f FMT] [-r leaks|all] [--output=human|json] FILENAME\n"
	"\n"
	"Checks the image's metadata; -r leaks frees leaked clusters (-r all also\n"
	"repairs what it can). Exit: 0 clean, 1 check failed, 2 corrupt, 3 leaks.\n";

static void check_human(const char *path, const struct blk_check *r, bool repaired)
{
	if (repaired && (r->leaks_fixed || r->corruptions_fixed))
		printf("The following inconsistencies were found and repaired:\n\n"
		       "    %llu leaked clusters\n    %llu corruptions\n\n"
		       "Double checking the fixed image now...\n",
		       (unsigned long long)r->leaks_fixed, (unsigned long long)r->corruptions_fixed);
	if (!r->corruptions && !r->leaks && !r->check_errors)
		printf("No errors were found on the image.\n");
	else {
		if (r->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the image may corrupt it.\n",
			       (unsigned long long)r->corruptions);
		if (r->leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to data.\n",
			       (unsigned long long)r->leaks);
		if (r->check_errors)
			printf("\n%llu internal errors have occurred during the check.\n",
			       (unsigned long long)r->check_errors);
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters, (unsigned long long)r->total_clusters,
		       100.0 * (double)r->allocated_clusters / (double)r->total_clusters,
		       100.0 * (double)r->fragmented_clusters / (double)r->allocated_clusters,
		       100.0 * (double)r->compressed_clusters / (double)r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
	(void)path;
}

static void check_json(const char *path, const char *fmt, const struct blk_check *r)
{
	struct img_json j;

	json_begin(&j, stdout);
	json_obj_open(&j, NULL);
	if (r->image_end_offset)
		json_u64(&j, "image-end-offset", r->image_end_offset);
	if (r->corruptions)
		json_u64(&j, "corruptions", r->corruptions);
	if (r->leaks)
		json_u64(&j, "leaks", r->leaks);
	if (r->corruptions_fixed)
		json_u64(&j, "corruptions-fixed", r->corruptions_fixed);
	if (r->leaks_fixed)
		json_u64(&j, "leaks-fixed", r->leaks_fixed);
	if (r->total_clusters)
		json_u64(&j, "total-clusters", r->total_clusters);
	if (r->allocated_clusters) {
		json_u64(&j, "allocated-clusters", r->allocated_clusters);
		json_u64(&j, "fragmented-clusters", r->fragmented_clusters);
		json_u64(&j, "compressed-clusters", r->compressed_clusters);
	}
	json_u64(&j, "check-errors", r->check_errors);
	json_str(&j, "filename", path);
	json_str(&j, "format", fmt);
	json_obj_close(&j);
	json_end(&j);
}

int img_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "repair", required_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	const char *fmt = NULL, *path;
	bool repair = false, quiet = false;
	int json = 0, c, err;
	struct blk_image *img;
	struct blk_check r = { 0 };

	while ((c = getopt_long(argc, argv, "hf:r:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(check_help, stdout); return IMG_OK;
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case 'U': img_force_share = true; break;
		case 'o': if ((json = img_output_format(optarg)) < 0) return IMG_ERR; break;
		case 'j': json = 1; break;
		case 'r':
			if (strcmp(optarg, "leaks") && strcmp(optarg, "all"))
				return img_usage("Unknown option value for -r (expecting 'leaks' or 'all'): %s", optarg);
			repair = true;
			break;
		default: return img_usage("check: bad option (see 'kumo img check --help')");
		}
	}
	if (optind != argc - 1)
		return img_usage("Expecting one image file name");
	path = argv[optind];
	img = img_open(path, fmt, !repair, true);
	if (!img)
		return IMG_ERR;
	if (!img->ops->check) {
		img_err("This image format does not support checks");
		blk_close(img);
		return CHECK_UNSUPPORTED;
	}
	err = img->ops->check(img, repair, &r);
	if (err) {
		img_err("Check failed: %s", strerror(-err));
		blk_close(img);
		return IMG_ERR;
	}
	if (repair && (r.leaks_fixed || r.corruptions_fixed)) {
		/* What is left after the repair decides, as qemu-img's double
		 * check does; the counts of what was fixed are kept. */
		struct blk_check again = { 0 };

		if ((err = img->ops->check(img, false, &again))) {
			img_err("Check failed: %s", strerror(-err));
			blk_close(img);
			return IMG_ERR;
		}
		again.leaks_fixed = r.leaks_fixed;
		again.corruptions_fixed = r.corruptions_fixed;
		r = again;
	}
	if (json)
		check_json(path, img->ops->name, &r);
	else if (!quiet)
		check_human(path, &r, repair);
	blk_close(img);
	if (r.check_errors)
		return IMG_ERR;
	if (r.corruptions)
		return CHECK_CORRUPT;
	if (r.leaks)
		return CHECK_LEAKS;
	return IMG_OK;
}
