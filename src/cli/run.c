/* `kumo run` / `kumo-vmm`: one VM in the foreground, its serial console on
 * the terminal. */
#include "kumo/block.h"
#include "kumo/boot.h"
#include "kumo/cli.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/tap.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_GUEST_DIR "/var/cache/kumo/guest"
#define DEFAULT_CMDLINE   "console=ttyS0 panic=-1"
#define STR_(x) #x
#define STR(x) STR_(x)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kumo run [options]\n"
		"\n"
		"Boots a virtual machine with its serial console on this terminal.\n"
		"With no --kernel, boots the default guest built by guest/build.sh\n"
		"(in $KUMO_GUEST_DIR, default " DEFAULT_GUEST_DIR ").\n"
		"\n"
		"options:\n"
		"  --kernel FILE        bzImage, or ELF64 (PVH note or vmlinux)\n"
		"  --initrd FILE        initial ramdisk\n"
		"  --cmdline TEXT       kernel command line (default \"" DEFAULT_CMDLINE "\")\n"
		"  --cpus N             vCPUs, 1-%d (default 1)\n"
		"  --memory SIZE        guest RAM, e.g. 512M, 2G (default 512M)\n"
		"  --accel auto|kvm|emu execution engine (default auto)\n"
		"  --console-log FILE   also append the guest's console output to FILE\n"
		"  --disk PATH[,ro][,id=NAME][,format=raw|qcow2]\n"
		"                       a virtio disk on an image file or block device\n"
		"                       (repeatable: vda, vdb...); ro: read-only; id: the\n"
		"                       serial the guest reads (up to 20 characters);\n"
		"                       format: raw, qcow2, or vpc/vmdk (read-only); default:\n"
		"                       probed (give format=raw for a raw disk a guest\n"
		"                       may write a qcow2 header into)\n"
		"  --net tap=NAME[,mac=MAC]\n"
		"                       a virtio-net NIC on the tap NAME (created when it\n"
		"                       does not exist), or fd=N: a tap already open\n"
		"                       (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR); repeatable, up to %d\n"
		"  --kernel-unpack host|guest\n"
		"                       who decompresses a bzImage's kernel: kumo before\n"
		"                       boot, entering the vmlinux directly (default host),\n"
		"                       or the guest's own decompressor\n"
		"  -q, --quiet          no engine line on start\n"
		"  -v, --verbose        more messages (twice: debug)\n"
		"  -h, --help           this help\n"
		"\n"
		"console: C-a x quits, C-a h helps, C-a C-a sends C-a.\n"
		"exit status: 0 guest powered off, 1 kumo failed, 2 bad usage,\n"
		"3 guest reset, 64+N guest wrote N to the test-exit port, 130 quit.\n",
		MACHINE_MAX_VCPUS, MACHINE_MAX_NICS);
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_ACCEL, OPT_LOG,
       OPT_UNPACK, OPT_DISK, OPT_NET };

static const struct option options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "console-log", required_argument, NULL, OPT_LOG },
	{ "kernel-unpack", required_argument, NULL, OPT_UNPACK },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

struct run_args {
	struct machine_config cfg;
	enum accel_kind accel;
	bool quiet;
	char *default_kernel, *default_initrd;
	char *disk_args[MACHINE_MAX_DISKS];  /* --disk's values, split at commas */
};

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "kumo run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see kumo run --help)\n");
	return EXIT_USAGE;
}

/* --disk PATH[,ro][,id=NAME][,format=FMT] */
static int parse_disk(const char *arg, struct run_args *a)
{
	struct machine_disk *d;
	char *s, *opt, *next;

	if (a->cfg.nr_disks == MACHINE_MAX_DISKS)
		return bad("at most 16 disks: one --disk too many ('%s')", arg);
	if (!(s = strdup(arg)))
		return bad("%s", "out of memory");
	a->disk_args[a->cfg.nr_disks] = s;
	d = &a->cfg.disks[a->cfg.nr_disks++];
	next = strchr(s, ',');
	if (next)
		*next++ = 0;
	if (!*s)
		return bad("--disk needs a file: --disk PATH[,ro][,id=NAME][,format=FMT], not '%s'", arg);
	d->path = s;
	while ((opt = next)) {
		next = strchr(opt, ',');
		if (next)
			*next++ = 0;
		if (!strcmp(opt, "ro")) {
			d->read_only = true;
		} else if (!strncmp(opt, "id=", 3)) {
			size_t len = strlen(opt + 3);
			bool printable = len >= 1 && len <= 20;
			for (size_t i = 3; printable && opt[i]; i++)
				printable = opt[i] > ' ' && opt[i] < 0x7f;
			if (!printable)
				return bad("--disk id= must be 1 to 20 printable characters, not '%s'", arg);
			d->id = opt + 3;
		} else if (!strncmp(opt, "format=", 7)) {
			if (!blk_format(opt + 7))
				return bad("--disk format= must be raw, qcow2, vpc or vmdk, not '%s'", arg);
			d->format = opt + 7;
		} else {
			return bad("--disk takes PATH[,ro][,id=NAME][,format=FMT], not '%s'", arg);
		}
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct run_args *a)
{
	uint64_t v;
	int c, verbose = 0;

	a->cfg.mem_size = 512 * MiB;
	a->cfg.ncpus = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qvh", options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: a->cfg.kernel = optarg; break;
		case OPT_INITRD: a->cfg.initrd = optarg; break;
		case OPT_CMDLINE: a->cfg.cmdline = optarg; break;
		case OPT_LOG: a->cfg.console_log = optarg; break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, MACHINE_MAX_VCPUS, &v))
				return bad("--cpus must be a number from 1 to 64, not '%s'", optarg);
			a->cfg.ncpus = v;
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, &v) || v % (4 * KiB))
				return bad("--memory must be a size like 512M or 2G, not '%s'", optarg);
			if (v < GUEST_MEM_MIN || v > GUEST_MEM_MAX)
				return bad("--memory must be between 8M and 1T, not '%s'", optarg);
			a->cfg.mem_size = v;
			break;
		case OPT_ACCEL:
			if (accel_parse(optarg, &a->accel))
				return bad("--accel must be auto, kvm or emu, not '%s'", optarg);
			break;
		case OPT_UNPACK:
			if (boot_unpack_parse(optarg, &a->cfg.kernel_unpack))
				return bad("--kernel-unpack must be host or guest, not '%s'", optarg);
			break;
		case OPT_DISK: {
			int st = parse_disk(optarg, a);
			if (st)
				return st;
			break;
		}
		case OPT_NET: {
			char why[160];
			if (a->cfg.nr_nics == MACHINE_MAX_NICS)
				return bad("--net: at most %s NICs", STR(MACHINE_MAX_NICS));
			if (net_option_parse(optarg, &a->cfg.nics[a->cfg.nr_nics], why, sizeof(why)))
				return bad("%s", why);
			a->cfg.nr_nics++;
			break;
		}
		case 'q': a->quiet = true; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); exit(0);
		default: return bad("%s", "unknown option");
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	log_set_level(verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN);
	return 0;
}

/* No --kernel: the default guest image. */
static int default_guest(struct run_args *a)
{
	const char *dir = getenv("KUMO_GUEST_DIR");

	if (a->cfg.kernel)
		return 0;
	if (!dir || !*dir)
		dir = DEFAULT_GUEST_DIR;
	if (asprintf(&a->default_kernel, "%s/vmlinuz", dir) < 0 ||
	    asprintf(&a->default_initrd, "%s/initrd.img", dir) < 0)
		return -ENOMEM;
	if (access(a->default_kernel, R_OK)) {
		fprintf(stderr, "kumo run: no guest image in %s: build it with 'make guest' "
			"(guest/build.sh) or pass --kernel\n", dir);
		return -ENOENT;
	}
	a->cfg.kernel = a->default_kernel;
	if (!a->cfg.initrd && !access(a->default_initrd, R_OK))
		a->cfg.initrd = a->default_initrd;
	if (!a->cfg.cmdline)
		a->cfg.cmdline = DEFAULT_CMDLINE;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_args a = { 0 };
	struct accel_choice choice;
	struct machine m;
	const char *why = NULL;
	int err, status;

	if ((status = parse_args(argc, argv, &a)))
		goto out;
	if (default_guest(&a)) {
		status = EXIT_FAILURE_KUMO;
		goto out;
	}
	if (accel_select(a.accel, &choice, &why)) {
		fprintf(stderr, "kumo run: %s\n", why);
		status = EXIT_FAILURE_KUMO;
		goto out;
	}
	a.cfg.accel_ops = choice.ops;
	if (!a.quiet)
		fprintf(stderr, "kumo: %s engine (%s), %u vCPU%s, %llu MiB\n", choice.ops->name,
			choice.why, a.cfg.ncpus, a.cfg.ncpus > 1 ? "s" : "",
			(unsigned long long)(a.cfg.mem_size / MiB));
	err = machine_create(&m, &a.cfg, &why);
	if (err) {
		fprintf(stderr, "kumo run: %s: %s\n", why, strerror(-err));
		machine_destroy(&m);
		status = EXIT_FAILURE_KUMO;
		goto out;
	}
	status = machine_run(&m);
	machine_destroy(&m);
out:
	free(a.default_kernel);
	free(a.default_initrd);
	for (unsigned i = 0; i < MACHINE_MAX_DISKS; i++)
		free(a.disk_args[i]);
	return status;
}
