/* A main() for the fuzz targets without libFuzzer (any compiler, any
 * sanitizer):
 *
 *   fuzz-X FILE...                  run each file through the target
 *   fuzz-X --random N [--seed S]    N random mutations of the built-in seeds
 *   fuzz-X --write-seeds DIR        write the built-in seeds as files
 *
 * The seeds are a minimal bzImage and minimal ELF images built in memory,
 * and whatever the target adds with fuzz_target_seeds().
 * --random prints its seed first, so a failure can be replayed with the
 * same --random N --seed S; on a crash the input is also saved to
 * ./fuzz-crash-S-I (I: the input's number), which replays as a FILE. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kumo/util.h"
#include "images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

/* ---- seeds ---- */

struct seed {
	const char *name;
	uint8_t *data;
	size_t len;
};

#define MAX_SEEDS 16

static struct seed seeds[MAX_SEEDS];
static size_t nr_seeds = 4;

/* A target's own seeds (malloc'd data, kept), after the built-in ones. */
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len)) __attribute__((weak));

static void add_seed(const char *name, uint8_t *data, size_t len)
{
	if (nr_seeds == MAX_SEEDS || len > MAX_INPUT)
		abort();
	seeds[nr_seeds++] = (struct seed){ name, data, len };
}

static void make_seeds(void)
{
	struct bz_spec bz = bz_spec_default();
	struct elf_spec pvh = elf_spec_pvh(0x100000);
	struct elf_spec vmlinux = elf_spec_default();

	bz.payload_len = 512;
	bz.init_size = 0x10000;
	seeds[0] = (struct seed){ "bzimage-min" };
	seeds[0].data = bz_build(&bz, &seeds[0].len);

	bz.setup_sects = 0;   /* means 4 */
	bz.jump_len = 0;      /* header ends at init_size */
	bz.cmdline_size = 255;
	bz.initrd_addr_max = 0x00ffffff;
	seeds[1] = (struct seed){ "bzimage-sects0" };
	seeds[1].data = bz_build(&bz, &seeds[1].len);

	pvh.filesz = 0x100;
	pvh.memsz = 0x1000;
	seeds[2] = (struct seed){ "elf-pvh" };
	seeds[2].data = elf_build(&pvh, &seeds[2].len);

	vmlinux.nr_load = 2;
	vmlinux.filesz = 0x80;
	vmlinux.memsz = 0x2000;
	seeds[3] = (struct seed){ "elf-vmlinux" };
	seeds[3].data = elf_build(&vmlinux, &seeds[3].len);
	if (fuzz_target_seeds)
		fuzz_target_seeds(add_seed);
}

static int write_seeds(const char *dir)
{
	if (mkdir(dir, 0777) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	for (size_t i = 0; i < nr_seeds; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		f = fopen(path, "wb");
		if (!f || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len || fclose(f)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

/* ---- saving the input that crashed ---- */

static uint8_t *cur;
static size_t cur_len;
static uint64_t cur_seed, cur_index;
static bool random_mode;

static void save_crash(void)
{
	static volatile sig_atomic_t done;
	char path[96];
	int fd;

	if (!random_mode || done)
		return;
	done = 1;
	snprintf(path, sizeof(path), "fuzz-crash-%" PRIu64 "-%" PRIu64, cur_seed, cur_index);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, cur, cur_len) != (ssize_t)cur_len)
			perror(path);
		close(fd);
	}
	fprintf(stderr, "\ncrash on input #%" PRIu64 " of --seed %" PRIu64 " (%zu bytes), saved to %s\n",
		cur_index, cur_seed, cur_len, path);
}

static void on_fatal_signal(int sig)
{
	save_crash();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Present when built with ASan/UBSan: called before a sanitizer exits. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void catch_crashes(void)
{
	static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], on_fatal_signal);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(save_crash);
}

/* ---- mutations ---- */

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return n ? rnd() % n : 0;
}

/* Offsets favour the headers, where the parsers look. */
static size_t pick_offset(size_t len)
{
	if (!len)
		return 0;
	if (rnd() & 1)
		return below(MIN(len, 0x300));
	return below(len);
}

static uint64_t interesting(size_t len)
{
	static const uint64_t v[] = {
		0, 1, 2, 4, 8, 12, 18, 0x38, 0x40, 0x7f, 0x80, 0xff, 0x100, 0x200, 0xfff, 0x1000,
		0x7fff, 0x8000, 0xffff, 0x10000, 0x100000, 0x1000000, 0x7fffffff, 0x80000000,
		0xc0000000, 0xfffffff4, 0xfffffffc, 0xffffffff, 0x100000000ULL,
		0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xfffffffffffff000ULL, ~0ULL,
	};
	size_t i = below(ARRAY_SIZE(v) + 3);

	if (i == ARRAY_SIZE(v))
		return len;
	if (i == ARRAY_SIZE(v) + 1)
		return len - 1 - below(16);
	if (i == ARRAY_SIZE(v) + 2)
		return rnd();
	return v[i];
}

static void mutate(uint8_t *buf, size_t *len)
{
	size_t n = *len, off = pick_offset(n), width;
	uint64_t v;

	switch (rnd() % 8) {
	case 0: /* flip a bit */
		if (n)
			buf[off] ^= 1 << below(8);
		break;
	case 1: /* a random byte */
		if (n)
			buf[off] = (uint8_t)rnd();
		break;
	case 2: /* an interesting 1, 2, 4 or 8-byte little-endian value */
	case 3:
		width = (size_t)1 << below(4);
		v = interesting(n);
		for (size_t i = 0; i < width && off + i < n; i++)
			buf[off + i] = (uint8_t)(v >> (8 * i));
		break;
	case 4: /* truncate */
		*len = below(n + 1);
		break;
	case 5: /* grow with random bytes */
		width = 1 + below(MIN(4096, MAX_INPUT - n + 1));
		width = MIN(width, MAX_INPUT - n);
		for (size_t i = 0; i < width; i++)
			buf[n + i] = (uint8_t)rnd();
		*len = n + width;
		break;
	case 6: /* copy a chunk over another place */
		if (n) {
			size_t from = below(n), to = pick_offset(n);
			width = 1 + below(MIN(64, n - MAX(from, to)));
			memmove(buf + to, buf + from, width);
		}
		break;
	case 7: /* delete a chunk */
		if (n) {
			width = 1 + below(MIN(256, n - off));
			memmove(buf + off, buf + off + width, n - off - width);
			*len = n - width;
		}
		break;
	}
}

static int run_random(uint64_t count, uint64_t seed)
{
	uint8_t *buf = malloc(MAX_INPUT);

	if (!buf)
		return 1;
	printf("fuzz: %" PRIu64 " random inputs, --seed %" PRIu64 "\n", count, seed);
	fflush(stdout);
	random_mode = true;
	cur_seed = seed;
	rng_state = seed;
	for (cur_index = 0; cur_index < count; cur_index++) {
		const struct seed *s = &seeds[cur_index % nr_seeds];
		/* The seeds as they are first, then 1 to 8 mutations stacked. */
		unsigned rounds = cur_index < nr_seeds ? 0 : 1 + below(8);
		uint8_t *input;

		memcpy(buf, s->data, s->len);
		cur_len = s->len;
		for (unsigned r = 0; r < rounds; r++)
			mutate(buf, &cur_len);
		/* An exact-size copy, so ASan sees reads past the end. */
		input = malloc(cur_len ? cur_len : 1);
		if (!input)
			return 1;
		memcpy(input, buf, cur_len);
		cur = input;
		LLVMFuzzerTestOneInput(input, cur_len);
		cur = NULL;
		free(input);
	}
	random_mode = false;
	free(buf);
	printf("fuzz: %" PRIu64 " inputs ok\n", count);
	return 0;
}

static int run_file(const char *path)
{
	uint8_t *data;
	size_t len;
	int err = read_file(path, 256 << 20, &data, &len);

	if (err) {
		fprintf(stderr, "%s: %s\n", path, strerror(-err));
		return 1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	printf("%s: ok\n", path);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fuzz-TARGET [--random N [--seed S]] [--write-seeds DIR] [FILE...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t count = 0, seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	const char *seed_dir = NULL;
	int files = 0, status = 0;

	make_seeds();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--random") && i + 1 < argc) {
			if (parse_uint(argv[++i], 0, UINT64_MAX, &count))
				return usage();
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			if (parse_uint(argv[++i], 0, UINT64_MAX, &seed))
				return usage();
		} else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc) {
			seed_dir = argv[++i];
		} else if (argv[i][0] == '-') {
			return usage();
		} else {
			files++;
		}
	}
	if (!count && !seed_dir && !files)
		return usage();
	if (seed_dir && write_seeds(seed_dir))
		return 1;
	catch_crashes();
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			i++; /* every option takes a value */
			continue;
		}
		status |= run_file(argv[i]);
	}
	if (count)
		status |= run_random(count, seed);
	return status;
}
