/* kumo: the command-line tool. Commands are a table. */
#include "kumo/cli.h"

#include <stdio.h>
#include <string.h>

#define KUMO_VERSION "0.1.0"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "run", cmd_run, "boot a virtual machine on this terminal" },
	{ "img", cmd_img, "create, inspect and convert disk images (as qemu-img)" },
	{ "version", cmd_version, "print kumo's version" },
	{ "help", cmd_help, "list the commands" },
};

static int cmd_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("kumo %s\n", KUMO_VERSION);
	return 0;
}

static void list(FILE *f)
{
	fprintf(f, "usage: kumo COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'kumo COMMAND --help' tells more.\n");
}

static int cmd_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	list(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		list(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(argc, argv);
	if (!strcmp(argv[1], "--version"))
		return cmd_version(argc, argv);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kumo: unknown command '%s'\n", argv[1]);
	list(stderr);
	return 2;
}
