/* kernel_unpack: every format, truncated and corrupt streams, the size
 * limit; and boot_load of a bzImage whose payload is a compressed vmlinux,
 * with --kernel-unpack host (and its fallbacks) and guest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kumo/acpi.h"
#include "kumo/boot.h"
#include "kumo/kernel_unpack.h"
#include "kumo/memory.h"
#include "images.h"
#include "mem_fixture.h"
#include "packers.h"

#define DATA_LEN   (300 * 1024 + 7)
#define GUEST_MEM  (64 * MiB)
#define CMDLINE    "console=ttyS0 quiet"
#define REAL_DIR   "/var/cache/kumo/guest/"

/* Compressible but not trivial: runs of a few symbols, pseudo-random. */
static uint8_t *test_data(size_t len)
{
	uint8_t *d = malloc(len);
	uint32_t x = 12345;

	assert_non_null(d);
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		d[i] = (uint8_t)("kumo vm\n"[(x >> 16) & 7] + ((i >> 10) & 1));
	}
	return d;
}

static int unpack(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len,
		  const char **format)
{
	const char *why = NULL, *fmt = NULL;
	int rc = kernel_unpack(in, len, max, out, out_len, &fmt, &why);

	assert_non_null(fmt);
	if (format)
		*format = fmt;
	if (rc) {
		assert_true(rc == -ENOTSUP || rc == -EBADMSG || rc == -EFBIG || rc == -ENOMEM);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
		assert_null(*out);
	} else {
		assert_true(*out_len <= max);
	}
	return rc;
}

/* ---- the unpacker ---- */

static void test_formats(void **state)
{
	uint8_t *data = test_data(DATA_LEN);

	(void)state;
	for (size_t f = 0; f < pack_nr_formats; f++) {
		size_t plen, olen;
		uint8_t *p = pack(pack_formats[f], data, DATA_LEN, &plen), *out;
		const char *fmt;

		assert_string_equal(kernel_unpack_format(p, plen), pack_formats[f]);
		assert_int_equal(unpack(p, plen, 64 * MiB, &out, &olen, &fmt), 0);
		assert_string_equal(fmt, pack_formats[f]);
		assert_int_equal(olen, DATA_LEN);
		assert_memory_equal(out, data, DATA_LEN);
		free(out);
		free(p);
	}
	free(data);
}

/* The trailing size is a hint only: too small, too big, or absent. */
static void test_size_hint_lies(void **state)
{
	static const uint32_t hints[] = { 0, 1, DATA_LEN - 1, DATA_LEN + 1, 0xffffffff };
	uint8_t *data = test_data(DATA_LEN);

	(void)state;
	for (size_t f = 0; f < pack_nr_formats; f++) {
		size_t plen, olen;
		uint8_t *p = pack(pack_formats[f], data, DATA_LEN, &plen), *out;

		for (size_t h = 0; h < ARRAY_SIZE(hints); h++) {
			put_le32(p + plen - 4, hints[h]);
			assert_int_equal(unpack(p, plen, 16 * MiB, &out, &olen, NULL), 0);
			assert_int_equal(olen, DATA_LEN);
			assert_memory_equal(out, data, DATA_LEN);
			free(out);
		}
		/* Without the size at all (lz4 then ends at its last block). */
		assert_int_equal(unpack(p, plen - 4, 16 * MiB, &out, &olen, NULL), 0);
		assert_int_equal(olen, DATA_LEN);
		free(out);
		free(p);
	}
	free(data);
}

/* Exactly max bytes is fine; one more is a bomb. */
static void test_limit(void **state)
{
	uint8_t *data = test_data(DATA_LEN);

	(void)state;
	for (size_t f = 0; f < pack_nr_formats; f++) {
		size_t plen, olen;
		uint8_t *p = pack(pack_formats[f], data, DATA_LEN, &plen), *out;

		assert_int_equal(unpack(p, plen, DATA_LEN, &out, &olen, NULL), 0);
		assert_int_equal(olen, DATA_LEN);
		free(out);
		assert_int_equal(unpack(p, plen, DATA_LEN - 1, &out, &olen, NULL), -EFBIG);
		assert_int_equal(unpack(p, plen, 4096, &out, &olen, NULL), -EFBIG);
		assert_int_equal(unpack(p, plen, 0, &out, &olen, NULL), -EFBIG);
		free(p);
	}
	free(data);
}

/* 16 MiB of zeros in a few KiB stops at a 1 MiB limit, whatever the
 * payload claims its size is. */
static void test_bomb(void **state)
{
	size_t len = 16 * MiB;
	uint8_t *zeros = calloc(1, len);

	(void)state;
	assert_non_null(zeros);
	for (size_t f = 0; f < pack_nr_formats; f++) {
		size_t plen, olen;
		uint8_t *p = pack(pack_formats[f], zeros, len, &plen), *out;

		assert_true(plen < len / 64);
		assert_int_equal(unpack(p, plen, 1 * MiB, &out, &olen, NULL), -EFBIG);
		put_le32(p + plen - 4, 100);
		assert_int_equal(unpack(p, plen, 1 * MiB, &out, &olen, NULL), -EFBIG);
		free(p);
	}
	free(zeros);
}

static void test_truncated(void **state)
{
	uint8_t *data = test_data(DATA_LEN);

	(void)state;
	for (size_t f = 0; f < pack_nr_formats; f++) {
		size_t plen, olen;
		uint8_t *p = pack(pack_formats[f], data, DATA_LEN, &plen), *out;
		/* Cut inside the stream: in its header, its body, its last bytes. */
		size_t cuts[] = { 4, 7, 13, 40, (plen - 4) / 2, plen - 4 - 9, plen - 4 - 1 };

		for (size_t c = 0; c < ARRAY_SIZE(cuts); c++) {
			int rc = unpack(p, cuts[c], 16 * MiB, &out, &olen, NULL);

			if (rc == -ENOTSUP && cuts[c] < 6) /* the magic itself cut */
				continue;
			assert_int_equal(rc, -EBADMSG);
		}
		free(p);
	}
	free(data);
}

/* Damage anywhere: an error or (formats without a checksum) some output,
 * never a crash; xz, gzip and bzip2 check a CRC and must notice. */
static void test_corrupt(void **state)
{
	uint8_t *data = test_data(DATA_LEN);

	(void)state;
	for (size_t f = 0; f < pack_nr_formats; f++) {
		size_t plen, olen;
		uint8_t *p = pack(pack_formats[f], data, DATA_LEN, &plen), *out;
		bool crc = !strcmp(pack_formats[f], "xz") || !strcmp(pack_formats[f], "gzip") ||
			   !strcmp(pack_formats[f], "bzip2");

		for (size_t at = 6; at < plen - 4; at += plen / 37 + 1) {
			uint8_t *q = malloc(plen);
			int rc;

			assert_non_null(q);
			memcpy(q, p, plen);
			q[at] ^= 0x5a;
			rc = unpack(q, plen, 16 * MiB, &out, &olen, NULL);
			if (!rc) {
				if (crc && olen == DATA_LEN && memcmp(out, data, DATA_LEN))
					fail_msg("%s: damage at %zu not detected", pack_formats[f], at);
				free(out);
			}
			free(q);
		}
		free(p);
	}
	free(data);
}

static void test_unknown(void **state)
{
	static const uint8_t lzo[] = { 0x89, 'L', 'Z', 'O', 0, 0x0d, 0x0a, 0x1a, 0x0a };
	static const uint8_t elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
	static const uint8_t xz_short[] = { 0xfd, '7', 'z', 'X', 'Z' };
	uint8_t *out;
	size_t olen;

	(void)state;
	assert_null(kernel_unpack_format(lzo, sizeof(lzo)));
	assert_int_equal(unpack(lzo, sizeof(lzo), MiB, &out, &olen, NULL), -ENOTSUP);
	assert_int_equal(unpack(elf, sizeof(elf), MiB, &out, &olen, NULL), -ENOTSUP);
	assert_int_equal(unpack(xz_short, sizeof(xz_short), MiB, &out, &olen, NULL), -ENOTSUP);
	assert_int_equal(unpack(elf, 0, MiB, &out, &olen, NULL), -ENOTSUP);
}

/* ---- boot_load with a compressed vmlinux payload ---- */

struct packed_bz {
	uint8_t *file;
	size_t len;
	uint8_t *elf;     /* the vmlinux inside */
	size_t elf_len;
	struct elf_spec spec;
	size_t payload_off; /* in the file */
};

/* A bzImage whose protected-mode part holds, at payload_offset 0x400, the
 * ELF of spec compressed with format. */
static struct packed_bz make_packed(const char *format, const struct elf_spec *spec)
{
	struct packed_bz p = { .spec = *spec };
	struct bz_spec bz = bz_spec_default();
	size_t plen, setup = bz_setup_bytes(bz.setup_sects);
	uint8_t *payload;

	p.elf = elf_build(spec, &p.elf_len);
	payload = pack(format, p.elf, p.elf_len, &plen);
	bz.payload_len = 0x400 + plen;
	bz.init_size = 4 * MiB;
	p.file = bz_build(&bz, &p.len);
	p.payload_off = setup + 0x400;
	memcpy(p.file + p.payload_off, payload, plen);
	put_le32(p.file + 0x248, 0x400);
	put_le32(p.file + 0x24c, (uint32_t)plen);
	free(payload);
	return p;
}

static void free_packed(struct packed_bz *p)
{
	free(p->file);
	free(p->elf);
}

static int boot_mode(struct guest_mem *mem, const uint8_t *k, size_t klen, enum boot_unpack mode,
		     const uint8_t *initrd, size_t ilen, struct x86_cpu_state *cpu)
{
	struct boot_config bc = {
		.kernel = k, .kernel_len = klen, .initrd = initrd, .initrd_len = ilen,
		.cmdline = CMDLINE, .rsdp_gpa = ACPI_TABLES_GPA, .unpack = mode,
	};
	const char *why = NULL;

	memset(cpu, 0xee, sizeof(*cpu));
	return boot_load(mem, &bc, cpu, &why);
}

static const struct boot_params *bparams(struct guest_mem *mem)
{
	const struct boot_params *bp = gpa_ptr(mem, BOOT_PARAMS_GPA, sizeof(*bp));

	assert_non_null(bp);
	return bp;
}

static int mem_setup(void **state) { return mem_setup_size(state, GUEST_MEM); }
static int mem_setup_512m(void **state) { return mem_setup_size(state, 512 * MiB); }

/* Entered at the vmlinux's entry in long mode, its segments at their
 * physical addresses (bss zeroed), the bzImage's header in boot_params with
 * KASLR_FLAG clear, the initrd above init_size. */
static void test_boot_host(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec spec = elf_spec_default();
	uint8_t initrd[5000];

	spec.nr_load = 2;
	spec.paddr = 2 * MiB;
	spec.entry = 2 * MiB + 0x200;
	memset(initrd, 0xa5, sizeof(initrd));
	for (size_t f = 0; f < pack_nr_formats; f++) {
		struct packed_bz p = make_packed(pack_formats[f], &spec);
		struct x86_cpu_state cpu;
		const struct boot_params *bp;

		p.file[0x211] |= KASLR_FLAG; /* as if a decompressor had randomized */
		memset(gpa_ptr(mem, 0, GUEST_MEM), 0xcc, GUEST_MEM);
		assert_int_equal(boot_mode(mem, p.file, p.len, BOOT_UNPACK_HOST, initrd,
					   sizeof(initrd), &cpu), 0);
		assert_int_equal(cpu.rip, spec.entry);
		assert_int_equal(cpu.gpr[X86_RSI], BOOT_PARAMS_GPA);
		assert_true(cpu.cr0 & X86_CR0_PG);
		assert_true(cpu.efer & X86_EFER_LMA);
		for (unsigned i = 0; i < spec.nr_load; i++) {
			uint64_t gpa = spec.paddr + i * spec.memsz;
			const uint8_t *g = gpa_ptr(mem, gpa, spec.memsz);

			assert_memory_equal(g, p.elf + elf_load_offset(&spec, i), spec.filesz);
			for (uint64_t b = spec.filesz; b < spec.memsz; b++)
				assert_int_equal(g[b], 0);
		}
		bp = bparams(mem);
		assert_int_equal(bp->hdr.version, get_le16(p.file + 0x206));
		assert_int_equal(bp->hdr.init_size, 4 * MiB);
		assert_int_equal(bp->hdr.loadflags & KASLR_FLAG, 0);
		assert_true(bp->hdr.loadflags & LOADED_HIGH);
		assert_int_equal(bp->hdr.type_of_loader, 0xff);
		assert_int_equal(bp->hdr.payload_length, p.len - p.payload_off);
		assert_int_equal(bp->hdr.ramdisk_size, sizeof(initrd));
		assert_true(bp->hdr.ramdisk_image >= spec.paddr + 4 * MiB);
		assert_memory_equal(gpa_ptr(mem, bp->hdr.ramdisk_image, sizeof(initrd)), initrd,
				    sizeof(initrd));
		assert_string_equal(gpa_ptr(mem, bp->hdr.cmd_line_ptr, sizeof(CMDLINE)), CMDLINE);
		free_packed(&p);
	}
}

/* Checks a bzImage booted as it is: entry 0x100200, the file's
 * protected-mode part at 1 MiB. */
static void check_as_is(struct guest_mem *mem, const struct packed_bz *p,
			const struct x86_cpu_state *cpu)
{
	size_t setup = p->payload_off - 0x400;

	assert_int_equal(cpu->rip, BOOT_KERNEL_GPA + 0x200);
	assert_memory_equal(gpa_ptr(mem, BOOT_KERNEL_GPA, p->len - setup), p->file + setup,
			    p->len - setup);
}

static void test_boot_guest(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec spec = elf_spec_default();
	struct packed_bz p = make_packed("xz", &spec);
	struct x86_cpu_state cpu;

	assert_int_equal(boot_mode(mem, p.file, p.len, BOOT_UNPACK_GUEST, NULL, 0, &cpu), 0);
	check_as_is(mem, &p, &cpu);
	free_packed(&p);
}

/* Whatever is wrong with the payload, host mode boots the bzImage as it is. */
static void test_boot_fallbacks(void **state)
{
	struct guest_mem *mem = *state;
	struct x86_cpu_state cpu;

	for (int c = 0; c < 9; c++) {
		struct elf_spec spec = elf_spec_default();
		struct packed_bz p;

		switch (c) {
		case 3: spec.machine = EM_386; break;              /* not x86-64 */
		case 4: spec.entry = 0x5000000; break;            /* entry nowhere */
		case 5: spec.paddr = 0x80000; spec.entry = 0x80000; break; /* below 1 MiB */
		case 6: spec.paddr = 61 * MiB; spec.entry = 61 * MiB; break; /* init_size past RAM */
		case 7: spec.type = ET_DYN; break;
		case 8: spec.paddr = 128 * MiB; spec.entry = 128 * MiB; break; /* past RAM */
		}
		p = make_packed(c == 2 ? "gzip" : "xz", &spec);
		if (c == 0)
			p.file[p.payload_off + 30] ^= 0xff;  /* corrupt */
		if (c == 1)
			p.file[p.payload_off] = 0x89;        /* unknown (LZO-like) magic */
		if (c == 2)
			put_le32(p.file + 0x24c, 0x7fffffff); /* payload past the file */
		assert_int_equal(boot_mode(mem, p.file, p.len, BOOT_UNPACK_HOST, NULL, 0, &cpu), 0);
		check_as_is(mem, &p, &cpu);
		free_packed(&p);
	}
}

/* The vmlinux's decompression buffer is init_size: a payload that unpacks
 * to more than that is not unpacked. */
static void test_boot_init_size_bound(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_spec spec = elf_spec_default();
	struct packed_bz p = make_packed("zstd", &spec);
	struct x86_cpu_state cpu;

	put_le32(p.file + 0x260, (uint32_t)(p.elf_len - 1));
	assert_int_equal(boot_mode(mem, p.file, p.len, BOOT_UNPACK_HOST, NULL, 0, &cpu), 0);
	assert_int_equal(cpu.rip, BOOT_KERNEL_GPA + 0x200);
	free_packed(&p);
}

/* Booted as it is, a kernel runs at pref_address when that is higher than
 * 1 MiB (the decompressor moves it there) and needs init_size from there:
 * the initrd goes above. */
static void test_bz_pref_address(void **state)
{
	struct guest_mem *mem = *state;
	struct bz_spec spec = bz_spec_default();
	struct x86_cpu_state cpu;
	uint8_t initrd[5000] = { 7 };
	size_t len;
	uint8_t *bz;

	bz = bz_build(&spec, &len);
	put_le64(bz + 0x258, 16 * MiB);
	assert_int_equal(boot_mode(mem, bz, len, BOOT_UNPACK_GUEST, initrd, sizeof(initrd), &cpu), 0);
	assert_int_equal(cpu.rip, BOOT_KERNEL_GPA + 0x200);
	assert_true(bparams(mem)->hdr.ramdisk_image >= 16 * MiB + spec.init_size);
	put_le64(bz + 0x258, 1ULL << 40); /* far past RAM */
	assert_int_equal(boot_mode(mem, bz, len, BOOT_UNPACK_GUEST, initrd, sizeof(initrd), &cpu),
			 -ENOSPC);
	put_le64(bz + 0x258, ~0ULL);
	assert_int_equal(boot_mode(mem, bz, len, BOOT_UNPACK_GUEST, NULL, 0, &cpu), -ENOSPC);
	free(bz);
}

/* Debian's kernel: its xz payload unpacks to a vmlinux linked at 16 MiB. */
static void test_real_kernel(void **state)
{
	struct guest_mem *mem = *state;
	struct x86_cpu_state cpu;
	struct bzimage bz;
	const struct boot_params *bp;
	const char *why;
	uint8_t *k, initrd[4096] = { 1 };
	size_t klen;

	if (access(REAL_DIR "vmlinuz", R_OK)) {
		print_message("no " REAL_DIR "vmlinuz: skipped\n");
		skip();
	}
	assert_int_equal(read_file(REAL_DIR "vmlinuz", 256 * MiB, &k, &klen), 0);
	assert_int_equal(bzimage_parse(k, klen, &bz, &why), 0);
	assert_non_null(bz.payload);
	assert_non_null(kernel_unpack_format(bz.payload, bz.payload_len));
	assert_int_equal(boot_mode(mem, k, klen, BOOT_UNPACK_HOST, initrd, sizeof(initrd), &cpu), 0);
	assert_int_not_equal(cpu.rip, BOOT_KERNEL_GPA + 0x200);
	assert_int_equal(cpu.rip % (2 * MiB), 0); /* startup_64 at LOAD_PHYSICAL_ADDR */
	bp = bparams(mem);
	assert_int_equal(bp->hdr.loadflags & KASLR_FLAG, 0);
	assert_true(bp->hdr.ramdisk_image >= cpu.rip + bz.init_size);
	free(k);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, mem_setup, mem_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_size_hint_lies),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_unknown),
		T(test_boot_host),
		T(test_boot_guest),
		T(test_boot_fallbacks),
		T(test_boot_init_size_bound),
		T(test_bz_pref_address),
		cmocka_unit_test_setup_teardown(test_real_kernel, mem_setup_512m, mem_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
