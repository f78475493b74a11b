/* kumo img: disk image tool, a qemu-img work-alike. The subcommands are a
 * table; each lives in src/img/. */
#include <stdio.h>
#include <string.h>

#include "../img/img.h"

int cmd_img(int argc, char **argv);

static const struct img_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} img_commands[] = {
	{ "create", img_create, "create a raw or qcow2 image (an overlay with -b)" },
	{ "info", img_info, "describe an image (--output=json, --backing-chain)" },
	{ "check", img_check, "check an image's metadata (-r leaks|all repairs)" },
	{ "convert", img_convert, "copy an image to another format (raw, qcow2; from vpc, vmdk)" },
	{ "resize", img_resize, "change an image's virtual size" },
	{ "commit", img_commit, "write an overlay into its backing file" },
	{ "rebase", img_rebase, "change an overlay's backing file" },
	{ "compare", img_compare, "compare two images' content" },
	{ "map", img_map, "show where an image's data is" },
};

/* The formats, referenced here so that they are linked in for sure
 * (block.c's probe table names them weakly, which does not pull them out
 * of the static library). */
static const struct blk_format_ops *const writable[] = { &blk_raw_ops, &blk_qcow2_ops };
static const struct blk_format_ops *const foreign[] = { &blk_vpc_ops, &blk_vmdk_ops };

static void img_list(FILE *f)
{
	fprintf(f, "usage: kumo img COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(img_commands); i++)
		fprintf(f, "  %-10s %s\n", img_commands[i].name, img_commands[i].summary);
	fprintf(f, "\nSupported formats:");
	for (size_t i = 0; i < ARRAY_SIZE(writable); i++)
		fprintf(f, " %s", writable[i]->name);
	for (size_t i = 0; i < ARRAY_SIZE(foreign); i++)
		fprintf(f, " %s (read-only)", foreign[i]->name);
	fprintf(f, "\n\nOptions and exit codes are qemu-img's. 'kumo img COMMAND --help' tells more.\n");
}

int cmd_img(int argc, char **argv)
{
	if (argc < 2) {
		img_list(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		img_list(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(img_commands); i++)
		if (!strcmp(argv[1], img_commands[i].name))
			return img_commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kumo img: Command not found: %s\nTry 'kumo img --help' for more information\n",
		argv[1]);
	return 1;
}
