/* elf_parse on synthetic ELF64 images, valid and hostile. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/boot.h"
#include "images.h"

#define PVH_ENTRY 0x100040u

/* An image being patched. */
struct img {
	uint8_t *f;
	size_t len;
};

static struct img img_build(const struct elf_spec *s)
{
	struct img m;

	m.f = elf_build(s, &m.len);
	return m;
}

static void img_free(struct img *m)
{
	free(m->f);
	m->f = NULL;
}

static Elf64_Ehdr *ehdr(struct img *m)
{
	return (Elf64_Ehdr *)m->f;
}

static Elf64_Phdr *phdr(struct img *m, unsigned i)
{
	return (Elf64_Phdr *)(m->f + ehdr(m)->e_phoff + i * sizeof(Elf64_Phdr));
}

/* Appends n bytes (8-byte aligned); returns their file offset. */
static size_t img_append(struct img *m, const void *data, size_t n)
{
	size_t at = ALIGN_UP(m->len, 8);

	m->f = realloc(m->f, at + n);
	assert_non_null(m->f);
	memset(m->f + m->len, 0, at - m->len);
	if (data)
		memcpy(m->f + at, data, n);
	else
		memset(m->f + at, 0, n);
	m->len = at + n;
	return at;
}

/* Moves the program headers to the end of the file with extra PT_NULL
 * entries after them; returns the index of the first new one. */
static unsigned img_add_phdrs(struct img *m, unsigned extra)
{
	unsigned n = ehdr(m)->e_phnum;
	size_t old = ehdr(m)->e_phoff, at;

	at = img_append(m, NULL, (n + extra) * sizeof(Elf64_Phdr));
	memcpy(m->f + at, m->f + old, n * sizeof(Elf64_Phdr));
	ehdr(m)->e_phoff = at;
	ehdr(m)->e_phnum = n + extra;
	return n;
}

/* Adds a PT_NOTE holding note[0..len). */
static void img_add_note(struct img *m, const uint8_t *note, size_t len)
{
	unsigned i = img_add_phdrs(m, 1);
	size_t at = img_append(m, note, len);

	*phdr(m, i) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = at, .p_filesz = len, .p_align = 4 };
}

/* elf_parse on an exact-size copy of the first n bytes, so ASan sees any
 * read past the end; a failure must say why. */
static int parse_n(const uint8_t *f, size_t n, struct elf_image *elf)
{
	uint8_t *copy = malloc(n ? n : 1);
	const char *why = NULL;
	int rc;

	assert_non_null(copy);
	memcpy(copy, f, n);
	rc = elf_parse(copy, n, elf, &why);
	if (rc) {
		assert_non_null(why);
		assert_true(strlen(why) > 0);
	}
	free(copy);
	return rc;
}

static int parse(struct img *m, struct elf_image *elf)
{
	return parse_n(m->f, m->len, elf);
}

/* Parses m, expects rc; frees m. */
static void expect(struct img *m, int want, const char *what)
{
	struct elf_image elf;
	int rc = parse(m, &elf);

	if (rc != want)
		fail_msg("%s: elf_parse = %d, want %d", what, rc, want);
	img_free(m);
}

/* Parses m, expects success and returns whether it found the PVH entry. */
static bool finds_pvh(struct img *m)
{
	struct elf_image elf;

	assert_int_equal(parse(m, &elf), 0);
	img_free(m);
	if (elf.has_pvh)
		assert_int_equal(elf.pvh_entry, PVH_ENTRY);
	return elf.has_pvh;
}

/* ---- valid images ---- */

static void test_pvh(void **state)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct img m = img_build(&s);
	struct elf_image elf;

	assert_int_equal(parse(&m, &elf), 0);
	assert_true(elf.has_pvh);
	assert_int_equal(elf.pvh_entry, PVH_ENTRY);
	assert_int_equal(elf.entry, s.entry);
	assert_int_equal(elf.nr_segments, 1);
	assert_int_equal(elf.seg[0].offset, elf_load_offset(&s, 0));
	assert_int_equal(elf.seg[0].filesz, 0x2000);
	assert_int_equal(elf.seg[0].paddr, 0x100000);
	assert_int_equal(elf.seg[0].memsz, 0x3000);
	img_free(&m);
}

static void test_no_note(void **state)
{
	struct elf_spec s = elf_spec_default();
	struct img m;
	struct elf_image elf;

	s.entry = 0x1000000;
	m = img_build(&s);
	assert_int_equal(parse(&m, &elf), 0);
	assert_false(elf.has_pvh);
	assert_int_equal(elf.pvh_entry, 0);
	assert_int_equal(elf.entry, 0x1000000);
	assert_int_equal(elf.nr_segments, 1);
	img_free(&m);
}

static void test_segments(void **state)
{
	struct elf_spec s = elf_spec_default();
	struct img m;
	struct elf_image elf;

	s.nr_load = ELF_MAX_SEGMENTS;
	s.filesz = 0x100;
	s.memsz = 0x1000;
	m = img_build(&s);
	assert_int_equal(parse(&m, &elf), 0);
	assert_int_equal(elf.nr_segments, ELF_MAX_SEGMENTS);
	for (unsigned i = 0; i < ELF_MAX_SEGMENTS; i++) {
		assert_int_equal(elf.seg[i].offset, elf_load_offset(&s, i));
		assert_int_equal(elf.seg[i].paddr, 0x100000 + i * 0x1000);
		assert_int_equal(elf.seg[i].filesz, 0x100);
		assert_int_equal(elf.seg[i].memsz, 0x1000);
	}
	img_free(&m);
}

/* Program headers other than PT_LOAD and PT_NOTE are skipped unchecked. */
static void test_other_phdrs_ignored(void **state)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct img m = img_build(&s);
	struct elf_image elf;
	unsigned i = img_add_phdrs(&m, 3);

	*phdr(&m, i) = (Elf64_Phdr){ .p_type = PT_GNU_STACK, .p_offset = UINT64_MAX, .p_filesz = 9 };
	*phdr(&m, i + 1) = (Elf64_Phdr){ .p_type = PT_DYNAMIC, .p_offset = 1ULL << 40, .p_filesz = 1 };
	/* i + 2 stays PT_NULL */
	assert_int_equal(parse(&m, &elf), 0);
	assert_int_equal(elf.nr_segments, 1);
	assert_true(elf.has_pvh);
	img_free(&m);
}

/* A full table of 64 program headers is accepted; 65 is not. */
static void test_phnum_limit(void **state)
{
	struct elf_spec s = elf_spec_default();
	struct img m = img_build(&s);

	img_add_phdrs(&m, 63);
	assert_int_equal(ehdr(&m)->e_phnum, 64);
	expect(&m, 0, "64 phdrs");
	m = img_build(&s);
	img_add_phdrs(&m, 64);
	expect(&m, -ENOEXEC, "65 phdrs");
}

static void test_too_many_loads(void **state)
{
	struct elf_spec s = elf_spec_default();
	struct img m;

	s.nr_load = ELF_MAX_SEGMENTS + 1;
	s.filesz = 0x10;
	s.memsz = 0x10;
	m = img_build(&s);
	expect(&m, -ENOEXEC, "17 PT_LOADs");
}

static void test_only_a_note(void **state)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct img m = img_build(&s);

	phdr(&m, 0)->p_type = PT_NULL;
	expect(&m, -ENOEXEC, "no PT_LOAD");
}

/* ---- the PVH note ---- */

static void test_pvh_note_desc8(void **state)
{
	uint8_t note[32];
	size_t n = elf_note_hdr(note, 4, 8, 18);
	struct elf_spec s = elf_spec_default();
	struct img m = img_build(&s);

	memcpy(note + n, "Xen", 4);
	put_le64(note + n + 4, PVH_ENTRY);
	img_add_note(&m, note, n + 12);
	assert_true(finds_pvh(&m));
}

/* The Xen note after a GNU build id note and another Xen note. */
static void test_pvh_note_after_others(void **state)
{
	uint8_t note[ELF_NOTE_MAX];
	size_t n = 0;
	struct elf_spec s = elf_spec_default();
	struct img m = img_build(&s);

	n += elf_note_hdr(note + n, 4, 8, NT_GNU_BUILD_ID);
	memcpy(note + n, "GNU\0\1\2\3\4\5\6\7\10", 12);
	n += 12;
	n += elf_note_hdr(note + n, 4, 2, 6 /* XEN_ELFNOTE_LOADER */);
	memcpy(note + n, "Xen\0ab\0\0", 8);
	n += 8;
	n += elf_note_xen_entry(note + n, PVH_ENTRY);
	img_add_note(&m, note, n);
	assert_true(finds_pvh(&m));
}

/* A broken first PT_NOTE does not hide a good second one. */
static void test_pvh_in_second_note_segment(void **state)
{
	uint8_t bad[12], good[20];
	struct elf_spec s = elf_spec_default();
	struct img m = img_build(&s);

	elf_note_hdr(bad, 0xffffffff, 0xffffffff, 18);
	elf_note_xen_entry(good, PVH_ENTRY);
	img_add_note(&m, bad, sizeof(bad));
	img_add_note(&m, good, sizeof(good));
	assert_true(finds_pvh(&m));
}

/* Notes that are almost the PVH note. */
static void test_not_pvh_notes(void **state)
{
	static const struct { uint32_t namesz, descsz, type; char name[4]; } cases[] = {
		{ 4, 4, 17, "Xen" },      /* another Xen note type */
		{ 4, 4, 18, "GNU" },      /* type 18 of another owner */
		{ 4, 4, 18, "XeN" },
		{ 3, 4, 18, "Xen" },      /* name without its NUL */
		{ 4, 2, 18, "Xen" },      /* descriptor too small */
		{ 4, 0, 18, "Xen" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t note[24] = { 0 };
		struct elf_spec s = elf_spec_default();
		struct img m = img_build(&s);

		elf_note_hdr(note, cases[i].namesz, cases[i].descsz, cases[i].type);
		memcpy(note + 12, cases[i].name, 4);
		put_le32(note + 16, PVH_ENTRY);
		img_add_note(&m, note, 12 + 4 + ALIGN_UP(cases[i].descsz, 4));
		if (finds_pvh(&m))
			fail_msg("case %zu taken for the PVH note", i);
	}
}

/* The Xen note cut short by its segment's p_filesz, by 1 to 8 bytes. */
static void test_pvh_note_cut_short(void **state)
{
	for (unsigned cut = 1; cut <= 8; cut++) {
		struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
		struct img m = img_build(&s);
		unsigned note = s.nr_load;

		phdr(&m, note)->p_filesz = s.note_len - cut;
		if (finds_pvh(&m))
			fail_msg("PVH note found in %zu bytes", s.note_len - cut);
	}
}

/* Sizes that overflow, or would wrap in 32-bit arithmetic onto a valid
 * Xen note behind them: the walk must stop, not find the note. */
static void test_hostile_note_sizes(void **state)
{
	static const uint32_t sizes[][2] = {
		{ 0xffffffff, 0 },          /* ALIGN_UP wraps to 0 in 32 bits */
		{ 0xfffffffc, 4 },          /* 12 + namesz wraps to 8 in 32 bits */
		{ 0, 0xfffffff4 },          /* next wraps back onto this note */
		{ 0x80000000, 0x80000000 },
		{ 0xffffffff, 0xffffffff },
		{ 0, 100 },                 /* past the segment */
		{ 100, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint8_t note[12 + 20];
		struct elf_spec s = elf_spec_default();
		struct img m = img_build(&s);

		elf_note_hdr(note, sizes[i][0], sizes[i][1], 18);
		elf_note_xen_entry(note + 12, PVH_ENTRY);
		img_add_note(&m, note, sizeof(note));
		if (finds_pvh(&m))
			fail_msg("case %zu (namesz %#x descsz %#x) found PVH", i,
				 sizes[i][0], sizes[i][1]);
	}
}

/* Less than a note header: nothing to find, nothing read. */
static void test_tiny_note_segments(void **state)
{
	for (size_t len = 0; len < 12; len++) {
		uint8_t note[12];
		struct elf_spec s = elf_spec_default();
		struct img m = img_build(&s);

		elf_note_hdr(note, 4, 4, 18);
		img_add_note(&m, note, len);
		assert_false(finds_pvh(&m));
	}
}

/* ---- hostile headers ---- */

static void test_bad_magic(void **state)
{
	for (unsigned i = 0; i < SELFMAG; i++) {
		struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
		struct img m = img_build(&s);

		m.f[i] ^= 0x20;
		expect(&m, -EINVAL, "bad magic");
	}
}

/* Every prefix of the ELF header. */
static void test_truncated_header(void **state)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct img m = img_build(&s);
	struct elf_image elf;

	for (size_t n = 0; n < sizeof(Elf64_Ehdr); n++) {
		int want = n < SELFMAG ? -EINVAL : -E2BIG;
		int rc = parse_n(m.f, n, &elf);
		if (rc != want)
			fail_msg("%zu bytes: %d, want %d", n, rc, want);
	}
	img_free(&m);
}

/* Every prefix of a whole image fails cleanly, up to the last byte. */
static void test_every_truncation(void **state)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct img m;
	struct elf_image elf;

	s.filesz = 0x40;
	m = img_build(&s);
	for (size_t n = 0; n < m.len; n++)
		assert_int_not_equal(parse_n(m.f, n, &elf), 0);
	assert_int_equal(parse_n(m.f, m.len, &elf), 0);
	img_free(&m);
}

static void test_wrong_class_data_machine_type(void **state)
{
	struct elf_spec s = elf_spec_default();
	struct img m;

	m = img_build(&s);
	m.f[EI_CLASS] = ELFCLASS32;
	expect(&m, -ENOEXEC, "ELFCLASS32");
	m = img_build(&s);
	m.f[EI_DATA] = ELFDATA2MSB;
	expect(&m, -ENOEXEC, "big endian");
	m = img_build(&s);
	ehdr(&m)->e_machine = EM_386;
	expect(&m, -ENOEXEC, "EM_386");
	m = img_build(&s);
	ehdr(&m)->e_machine = EM_AARCH64;
	expect(&m, -ENOEXEC, "EM_AARCH64");
	m = img_build(&s);
	ehdr(&m)->e_type = ET_DYN;
	expect(&m, -ENOEXEC, "ET_DYN");
	m = img_build(&s);
	ehdr(&m)->e_type = ET_REL;
	expect(&m, -ENOEXEC, "ET_REL");
	m = img_build(&s);
	ehdr(&m)->e_type = ET_CORE;
	expect(&m, -ENOEXEC, "ET_CORE");
}

static void test_bad_phdr_table(void **state)
{
	struct elf_spec s = elf_spec_default();
	struct img m;

	m = img_build(&s);
	ehdr(&m)->e_phnum = 0;
	expect(&m, -ENOEXEC, "e_phnum 0");
	m = img_build(&s);
	ehdr(&m)->e_phnum = 65;
	expect(&m, -ENOEXEC, "e_phnum 65");
	m = img_build(&s);
	ehdr(&m)->e_phnum = 0xffff;
	expect(&m, -ENOEXEC, "e_phnum 0xffff");
	m = img_build(&s);
	ehdr(&m)->e_phentsize = sizeof(Elf32_Phdr);
	expect(&m, -ENOEXEC, "e_phentsize 32");
	m = img_build(&s);
	ehdr(&m)->e_phentsize = sizeof(Elf64_Phdr) + 8;
	expect(&m, -ENOEXEC, "e_phentsize 64");
	m = img_build(&s);
	ehdr(&m)->e_phentsize = 0;
	expect(&m, -ENOEXEC, "e_phentsize 0");
}

static void test_phoff_out_of_file(void **state)
{
	static const uint64_t phoffs[] = {
		~0ULL, ~0ULL - sizeof(Elf64_Phdr) + 1, 1ULL << 63, 0x100000000ULL,
	};
	struct elf_spec s = elf_spec_default();
	struct img m;
	Elf64_Phdr ph;
	size_t at;

	for (size_t i = 0; i < ARRAY_SIZE(phoffs); i++) {
		m = img_build(&s);
		ehdr(&m)->e_phoff = phoffs[i];
		expect(&m, -E2BIG, "e_phoff far out");
	}
	/* Just past the end, and one byte short of a whole table. */
	m = img_build(&s);
	ehdr(&m)->e_phoff = m.len;
	expect(&m, -E2BIG, "e_phoff at the end");
	m = img_build(&s);
	ehdr(&m)->e_phoff = m.len - sizeof(Elf64_Phdr) + 1;
	expect(&m, -E2BIG, "e_phoff one byte short");
	/* phoff + phnum * 56 wraps around to a small number. */
	m = img_build(&s);
	ehdr(&m)->e_phnum = 2;
	ehdr(&m)->e_phoff = 0 - sizeof(Elf64_Phdr);
	expect(&m, -E2BIG, "e_phoff + size wraps");
	/* The table ending exactly at the end of the file is fine. */
	m = img_build(&s);
	ph = *phdr(&m, 0);
	at = img_append(&m, &ph, sizeof(ph));
	ehdr(&m)->e_phoff = at;
	assert_int_equal(at + sizeof(ph), m.len);
	expect(&m, 0, "phdrs at the very end");
}

/* Patches PT_LOAD 0 (or the note when note is set) and expects want. */
static void expect_seg(bool note, uint64_t offset, uint64_t filesz, uint64_t paddr,
		       uint64_t memsz, int want, const char *what)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	struct img m = img_build(&s);
	Elf64_Phdr *p = phdr(&m, note ? s.nr_load : 0);

	p->p_offset = offset;
	p->p_filesz = filesz;
	p->p_paddr = paddr;
	p->p_memsz = memsz;
	expect(&m, want, what);
}

static void test_segment_out_of_file(void **state)
{
	struct elf_spec s = elf_spec_pvh(PVH_ENTRY);
	size_t len = elf_load_offset(&s, 1);

	expect_seg(false, len - 0x10, 0x10, 0x100000, 0x10, 0, "ends at the end");
	expect_seg(false, len, 0, 0x100000, 0x10, 0, "empty, at the end");
	expect_seg(false, len - 0x10, 0x11, 0x100000, 0x11, -E2BIG, "one byte past");
	expect_seg(false, len + 1, 0, 0x100000, 0x10, -E2BIG, "starts past the end");
	expect_seg(false, ~0ULL, 2, 0x100000, 2, -E2BIG, "offset near 2^64");
	expect_seg(false, 0x10, ~0ULL - 0xf, 0x100000, ~0ULL - 0xf, -E2BIG, "offset + filesz = 2^64");
	expect_seg(false, 0x10, ~0ULL, 0x100000, ~0ULL, -E2BIG, "filesz 2^64-1");
	expect_seg(true, len + 4, 20, 0, 0, -E2BIG, "note past the end");
	expect_seg(true, 0x20, ~0ULL - 0x1f, 0, 0, -E2BIG, "note offset + size = 2^64");
}

static void test_segment_impossible_sizes(void **state)
{
	expect_seg(false, 0x10, 0x2000, 0x100000, 0x1fff, -ENOEXEC, "filesz > memsz");
	expect_seg(false, 0x100, 0x10, ~0ULL - 0xfff, 0x2000, -ENOEXEC, "paddr + memsz wraps");
	expect_seg(false, 0x100, 0x10, ~0ULL - 0xfff, 0x1000, -ENOEXEC, "paddr + memsz = 2^64");
	expect_seg(false, 0x100, 0x10, 0x1000, ~0ULL, -ENOEXEC, "memsz 2^64-1");
	/* Huge but representable: elf_parse's business is the file, boot_load's the RAM. */
	expect_seg(false, 0x100, 0x10, ~0ULL - 0x1000, 0x1000, 0, "paddr + memsz = 2^64-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pvh),
		cmocka_unit_test(test_no_note),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_other_phdrs_ignored),
		cmocka_unit_test(test_phnum_limit),
		cmocka_unit_test(test_too_many_loads),
		cmocka_unit_test(test_only_a_note),
		cmocka_unit_test(test_pvh_note_desc8),
		cmocka_unit_test(test_pvh_note_after_others),
		cmocka_unit_test(test_pvh_in_second_note_segment),
		cmocka_unit_test(test_not_pvh_notes),
		cmocka_unit_test(test_pvh_note_cut_short),
		cmocka_unit_test(test_hostile_note_sizes),
		cmocka_unit_test(test_tiny_note_segments),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_wrong_class_data_machine_type),
		cmocka_unit_test(test_bad_phdr_table),
		cmocka_unit_test(test_phoff_out_of_file),
		cmocka_unit_test(test_segment_out_of_file),
		cmocka_unit_test(test_segment_impossible_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
