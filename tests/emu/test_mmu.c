/* The emu MMU: paging modes, permissions and #PF error codes, A/D bits and
 * the software TLB, on page tables built in real guest RAM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fixture.h"
#include "kumo/memory.h"

#define P    (1ULL << 0)
#define W    (1ULL << 1)
#define U    (1ULL << 2)
#define A    (1ULL << 5)
#define D    (1ULL << 6)
#define PS   (1ULL << 7)
#define G    (1ULL << 8)
#define XD   (1ULL << 63)

#define CR0_WP    (1ULL << 16)
#define CR4_PSE   (1ULL << 4)
#define CR4_PGE   (1ULL << 7)
#define CR4_SMEP  (1ULL << 20)
#define CR4_SMAP  (1ULL << 21)
#define EFER_NXE  (1ULL << 11)
#define RFLAGS_AC (1ULL << 18)

#define ADDR 0x3ffffffff000ULL   /* bits 45:12 */
#define OK (-1)                  /* expected: no fault */

/* #PF error code bits. */
enum { E_P = 1, E_W = 2, E_U = 4, E_RSVD = 8, E_ID = 16 };

struct fx {
	struct guest_mem mem;   /* first, for fx_teardown */
	struct emu_cpu cpu;
	uint64_t next_page;     /* page-table allocator */
};

static int setup(void **state)
{
	struct fx *f = aligned_alloc(64, (sizeof(*f) + 63) & ~(size_t)63); /* as the jump cache is */

	if (f)
		memset(f, 0, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->mem, 64 * MiB), 0);
	f->cpu.mem = &f->mem;
	f->cpu.rflags = 2;
	f->next_page = 0x100000;
	emu_tlb_flush(&f->cpu, true);
	*state = f;
	return 0;
}

static uint64_t alloc_page(struct fx *f)
{
	uint64_t gpa = f->next_page;

	f->next_page += 4096;
	memset(gpa_ptr(&f->mem, gpa, 4096), 0, 4096);
	return gpa;
}

static void put64(struct fx *f, uint64_t gpa, uint64_t v)
{
	uint8_t *p = gpa_ptr(&f->mem, gpa, 8);

	assert_non_null(p);
	put_le64(p, v);
}

static uint64_t get64(struct fx *f, uint64_t gpa)
{
	return get_le64(gpa_ptr(&f->mem, gpa, 8));
}

static void put32(struct fx *f, uint64_t gpa, uint32_t v)
{
	put_le32(gpa_ptr(&f->mem, gpa, 4), v);
}

static uint32_t get32(struct fx *f, uint64_t gpa)
{
	return get_le32(gpa_ptr(&f->mem, gpa, 4));
}

/* ---- paging modes ---- */

static void mode_long(struct fx *f)
{
	f->cpu.cr0 = X86_CR0_PE | X86_CR0_PG;
	f->cpu.cr4 = X86_CR4_PAE;
	f->cpu.efer = X86_EFER_LME | X86_EFER_LMA;
	f->cpu.mode = MODE_LONG64;
	f->cpu.cr3 = alloc_page(f);
	emu_tlb_flush(&f->cpu, true);
}

/* Address of linear's entry at `level` (4 = PML4E .. 1 = PTE) in the 4-level
 * tables, creating the missing tables above it with the flags `upper`. */
static uint64_t ent4(struct fx *f, uint64_t linear, int level, uint64_t upper)
{
	uint64_t table = f->cpu.cr3 & ADDR;

	for (int l = 4;; l--) {
		uint64_t ea = table + ((linear >> (3 + 9 * l)) & 511) * 8;
		uint64_t e;

		if (l == level)
			return ea;
		e = get64(f, ea);
		if (!(e & P)) {
			e = alloc_page(f) | upper;
			put64(f, ea, e);
		}
		table = e & ADDR;
	}
}

static void map4k(struct fx *f, uint64_t linear, uint64_t phys, uint64_t flags)
{
	put64(f, ent4(f, linear, 1, P | W | U), phys | flags);
}

/* Translates; on a fault returns the error code (and checks it is a #PF
 * with CR2), else OK with *phys / *host. */
static int64_t xlate(struct fx *f, uint64_t linear, unsigned access, uint64_t *phys, uint8_t **host)
{
	uint64_t ph = 0xdead;
	uint8_t *h = (uint8_t *)1;
	int rc;

	memset(&f->cpu.exc, 0, sizeof(f->cpu.exc));
	rc = emu_mmu_translate(&f->cpu, linear, access, &ph, &h);
	if (rc) {
		assert_int_equal(rc, -EFAULT);
		assert_int_equal(f->cpu.exc.vector, EXC_PF);
		assert_true(f->cpu.exc.has_error);
		assert_int_equal(f->cpu.exc.cr2, linear);
		return f->cpu.exc.error;
	}
	if (phys)
		*phys = ph;
	if (host)
		*host = h;
	return OK;
}

/* Expects a successful translation to phys, RAM or not. */
static void expect_phys(struct fx *f, uint64_t linear, unsigned access, uint64_t phys)
{
	uint64_t ph;
	uint8_t *h;

	assert_int_equal(xlate(f, linear, access, &ph, &h), OK);
	assert_int_equal(ph, phys);
	assert_ptr_equal(h, gpa_ptr(&f->mem, phys & ~0xfffULL, 4096));
}

static void test_paging_off(void **state)
{
	struct fx *f = *state;
	uint64_t ph;
	uint8_t *h;

	f->cpu.cr0 = X86_CR0_PE;
	f->cpu.mode = MODE_PROT32;
	assert_int_equal(xlate(f, 0x1234, ACC_READ, &ph, &h), OK);
	assert_int_equal(ph, 0x1234);
	assert_ptr_equal(h, f->mem.base + 0x1000);
	expect_phys(f, 0x3fff123, ACC_WRITE | ACC_USER, 0x3fff123);     /* the last page */
	expect_phys(f, 0x1234, ACC_EXEC, 0x1234);                       /* now a TLB hit */
	/* Not RAM: no fault, no host pointer. */
	assert_int_equal(xlate(f, 0xfee00010, ACC_WRITE, &ph, &h), OK);
	assert_int_equal(ph, 0xfee00010);
	assert_null(h);
	assert_int_equal(xlate(f, 64 * MiB + 8, ACC_READ, &ph, &h), OK);
	assert_int_equal(ph, 64 * MiB + 8);
	assert_null(h);
}

static void test_long_4k_2m_1g(void **state)
{
	struct fx *f = *state;
	uint64_t ph;
	uint8_t *h;

	mode_long(f);
	map4k(f, 0x400000, 0x200000, P | W);
	map4k(f, 0xffff800000001000ULL, 0x300000, P);
	put64(f, ent4(f, 0x600000, 2, P | W), 0x1000000 | PS | P | W);           /* 2 MiB */
	put64(f, ent4(f, 0x8000000000ULL, 3, P | W), 0 | PS | P);               /* 1 GiB */
	put64(f, ent4(f, 0x8040000000ULL, 3, P | W), 0x40000000 | PS | P);      /* past RAM */
	put64(f, ent4(f, 0xa00000, 2, P | W), 0x1400000 | PS | P | (1 << 12));  /* PAT bit */

	expect_phys(f, 0x400abc, ACC_READ, 0x200abc);
	expect_phys(f, 0x400abc, ACC_WRITE, 0x200abc);
	expect_phys(f, 0xffff800000001ff8ULL, ACC_READ, 0x300ff8);
	expect_phys(f, 0x612345, ACC_READ, 0x1012345);
	expect_phys(f, 0x7ffff0, ACC_WRITE, 0x11ffff0);
	expect_phys(f, 0x8002345678ULL, ACC_EXEC, 0x2345678);
	expect_phys(f, 0x8000000010ULL, ACC_READ, 0x10);
	expect_phys(f, 0xa00010, ACC_READ, 0x1400010);
	assert_int_equal(xlate(f, 0x8040000010ULL, ACC_READ, &ph, &h), OK);
	assert_int_equal(ph, 0x40000010);
	assert_null(h);
	/* Nothing mapped next to them. */
	assert_int_equal(xlate(f, 0x401000, ACC_READ, NULL, NULL), 0);
	assert_int_equal(xlate(f, 0x800000, ACC_WRITE, NULL, NULL), E_W);
}

static void test_pae(void **state)
{
	struct fx *f = *state;
	uint64_t pdpt = 0x20020, pd = alloc_page(f), pt = alloc_page(f);

	f->cpu.cr0 = X86_CR0_PE | X86_CR0_PG;
	f->cpu.cr4 = X86_CR4_PAE;
	f->cpu.mode = MODE_PROT32;
	f->cpu.cr3 = pdpt;
	put64(f, pdpt + 3 * 8, pd | P);
	put64(f, pd + 0 * 8, 0x600000 | PS | P | W);            /* 0xc0000000: 2 MiB */
	put64(f, pd + 1 * 8, pt | P | W);                       /* 0xc0200000: table */
	put64(f, pt + 5 * 8, 0x345000 | P);
	emu_tlb_flush(&f->cpu, true);

	expect_phys(f, 0xc0012345, ACC_WRITE, 0x612345);
	expect_phys(f, 0xc0205010, ACC_READ, 0x345010);
	/* The PDPTE has no A bit; the PDEs and the PTE do. */
	assert_int_equal(get64(f, pdpt + 24), pd | P);
	assert_int_equal(get64(f, pd), 0x600000 | PS | P | W | A | D);
	assert_int_equal(get64(f, pd + 8), pt | P | W | A);
	assert_int_equal(get64(f, pt + 40), 0x345000 | P | A);

	/* PDPTE 0 not present; reserved bits in a PDPTE, and bits 62:52 in a
	 * PAE PDE (ignored under 4-level paging). */
	assert_int_equal(xlate(f, 0x1000, ACC_READ, NULL, NULL), 0);
	put64(f, pdpt + 2 * 8, pd | P | W);
	assert_int_equal(xlate(f, 0x80000000, ACC_READ, NULL, NULL), E_P | E_RSVD);
	put64(f, pdpt + 2 * 8, pd | P | PS);
	assert_int_equal(xlate(f, 0x80000000, ACC_READ, NULL, NULL), E_P | E_RSVD);
	put64(f, pd + 2 * 8, 0x800000 | PS | P | (1ULL << 52));
	assert_int_equal(xlate(f, 0xc0400000, ACC_READ, NULL, NULL), E_P | E_RSVD);
	put64(f, pd + 2 * 8, 0x800000 | PS | P | (1ULL << 13));
	assert_int_equal(xlate(f, 0xc0400000, ACC_READ, NULL, NULL), E_P | E_RSVD);
	/* XD is reserved without NXE, execute-disable with it (with I/D). */
	put64(f, pd + 2 * 8, 0x800000 | PS | P | XD);
	assert_int_equal(xlate(f, 0xc0400000, ACC_EXEC, NULL, NULL), E_P | E_RSVD);
	f->cpu.efer = EFER_NXE;
	emu_tlb_flush(&f->cpu, true);
	expect_phys(f, 0xc0400000, ACC_READ, 0x800000);
	assert_int_equal(xlate(f, 0xc0400000, ACC_EXEC, NULL, NULL), E_P | E_ID);
}

static void test_32bit(void **state)
{
	struct fx *f = *state;
	uint64_t pd = alloc_page(f), pt = alloc_page(f);

	f->cpu.cr0 = X86_CR0_PE | X86_CR0_PG;
	f->cpu.cr4 = CR4_PSE;
	f->cpu.mode = MODE_PROT32;
	f->cpu.cr3 = pd;
	put32(f, pd + 1 * 4, 0x800000 | PS | P | W | U);        /* 0x400000: 4 MiB */
	put32(f, pd + 2 * 4, pt | P | W);                       /* 0x800000: table */
	put32(f, pt + 3 * 4, 0x555000 | P);
	put32(f, pd + 3 * 4, 0xc00000 | PS | P | (1 << 13));    /* PSE-36 bits: reserved */
	put32(f, pd + 5 * 4, 0x1000000 | PS | P | (1 << 12));   /* PAT bit */
	emu_tlb_flush(&f->cpu, true);

	expect_phys(f, 0x401234, ACC_READ | ACC_USER, 0x801234);
	expect_phys(f, 0x7fffff, ACC_WRITE, 0xbfffff);
	expect_phys(f, 0x803abc, ACC_READ, 0x555abc);
	expect_phys(f, 0x1400010, ACC_READ, 0x1000010);
	assert_int_equal(get32(f, pd + 4), 0x800000 | PS | P | W | U | A | D);
	assert_int_equal(get32(f, pd + 8), pt | P | W | A);
	assert_int_equal(get32(f, pt + 12), 0x555000 | P | A);
	assert_int_equal(xlate(f, 0xc00000, ACC_READ, NULL, NULL), E_P | E_RSVD);
	assert_int_equal(xlate(f, 0x803000, ACC_WRITE | ACC_USER, NULL, NULL), E_P | E_W | E_U);
	assert_int_equal(xlate(f, 0x1000000, ACC_READ, NULL, NULL), 0);
	/* No XD in 32-bit paging: NXE alone does not report I/D; SMEP does. */
	f->cpu.efer = EFER_NXE;
	assert_int_equal(xlate(f, 0x803000, ACC_EXEC | ACC_USER, NULL, NULL), E_P | E_U);
	f->cpu.cr4 |= CR4_SMEP;
	assert_int_equal(xlate(f, 0x803000, ACC_EXEC | ACC_USER, NULL, NULL), E_P | E_U | E_ID);

	/* Without CR4.PSE the PS bit is ignored: the PDE points to a table. */
	f->cpu.cr4 = 0;
	f->cpu.efer = 0;
	emu_tlb_flush(&f->cpu, true);
	put32(f, 0x800000 + 1 * 4, 0x777000 | P);
	expect_phys(f, 0x401234, ACC_READ, 0x777234);
	/* No reserved bits now: bit 13 is part of the table address. */
	put32(f, 0xc02000, 0x999000 | P);
	expect_phys(f, 0xc00abc, ACC_READ, 0x999abc);
}

/* ---- permissions ---- */

/* Environment bits of a permission case. */
enum { ENV_WP = 1, ENV_NXE = 2, ENV_SMEP = 4, ENV_SMAP = 8, ENV_AC = 16, ENV_ALL = 31 };

struct perm_case {
	uint64_t page;      /* U and W on every level, XD on the leaf */
	unsigned access;
	unsigned env;
	int expect;         /* OK or the error code */
};

#define R_ ACC_READ
#define W_ ACC_WRITE
#define X_ ACC_EXEC
#define US ACC_USER
#define IM ACC_IMPLICIT

static const struct perm_case perm_cases[] = {
	/* supervisor reads */
	{ 0, R_, 0, OK },
	{ U, R_, 0, OK },
	{ U, R_, ENV_SMAP, E_P },
	{ U, R_, ENV_SMAP | ENV_AC, OK },
	{ U, R_ | IM, ENV_SMAP | ENV_AC, E_P },
	{ U, R_ | IM | US, ENV_SMAP | ENV_AC, E_P },    /* implicit at CPL 3: still supervisor */
	{ U, R_ | IM, 0, OK },
	{ 0, R_ | IM | US, 0, OK },
	{ 0, R_, ENV_SMAP | ENV_SMEP, OK },
	/* supervisor writes: WP */
	{ 0, W_, 0, OK },
	{ 0, W_, ENV_WP, E_P | E_W },
	{ W, W_, ENV_WP, OK },
	{ U, W_, 0, OK },
	{ U, W_, ENV_WP, E_P | E_W },
	{ U | W, W_, ENV_WP, OK },
	{ U | W, W_, ENV_SMAP, E_P | E_W },
	{ U | W, W_, ENV_SMAP | ENV_AC, OK },
	{ U, W_, ENV_SMAP | ENV_AC, OK },
	{ U, W_, ENV_SMAP | ENV_AC | ENV_WP, E_P | E_W },
	{ U | W, W_ | IM, ENV_SMAP | ENV_AC, E_P | E_W },
	{ 0, W_ | IM | US, ENV_WP, E_P | E_W },
	/* user reads and writes */
	{ 0, R_ | US, 0, E_P | E_U },
	{ W, R_ | US, ENV_ALL, E_P | E_U },
	{ U, R_ | US, 0, OK },
	{ U, R_ | US, ENV_SMAP, OK },
	{ U, W_ | US, 0, E_P | E_W | E_U },
	{ U, W_ | US, ENV_WP, E_P | E_W | E_U },
	{ U | W, W_ | US, 0, OK },
	{ U | W, W_ | US, ENV_WP | ENV_SMAP, OK },
	{ W, W_ | US, 0, E_P | E_W | E_U },
	/* fetches: NX, SMEP */
	{ 0, X_, 0, OK },
	{ 0, X_, ENV_NXE, OK },
	{ XD, X_, ENV_NXE, E_P | E_ID },
	{ XD, R_, ENV_NXE, OK },
	{ XD | W, W_, ENV_NXE | ENV_WP, OK },
	{ XD, R_, 0, E_P | E_RSVD },
	{ XD, W_, 0, E_P | E_W | E_RSVD },
	{ XD, X_, 0, E_P | E_RSVD },
	{ XD, X_, ENV_SMEP, E_P | E_RSVD | E_ID },
	{ U, X_, 0, OK },
	{ U, X_, ENV_SMAP, OK },
	{ U, X_, ENV_SMEP, E_P | E_ID },
	{ U, X_, ENV_SMEP | ENV_NXE, E_P | E_ID },
	{ U, X_ | US, ENV_SMEP, OK },
	{ U | XD, X_ | US, ENV_NXE, E_P | E_U | E_ID },
	{ U | XD, R_ | US, ENV_NXE, OK },
	{ 0, X_ | US, 0, E_P | E_U },
	{ 0, X_ | US, ENV_NXE, E_P | E_U | E_ID },
	{ U | XD, X_ | US, 0, E_P | E_U | E_RSVD },
};

#define PERM_LIN 0x7f0012345000ULL

struct chain {
	uint64_t ea[4];     /* PML4E, PDPTE, PDE, PTE addresses */
	uint64_t val[4];    /* their address bits */
};

static void perm_init(struct fx *f, struct chain *c)
{
	mode_long(f);
	map4k(f, PERM_LIN, 0x5000, P);
	for (int l = 4; l >= 1; l--) {
		c->ea[4 - l] = ent4(f, PERM_LIN, l, 0);
		c->val[4 - l] = get64(f, c->ea[4 - l]) & ADDR;
	}
}

/* Writes the chain with U/W on every level and extra bits on the leaf. */
static void set_chain(struct fx *f, const struct chain *c, uint64_t page, uint64_t leaf_extra)
{
	for (int i = 0; i < 4; i++)
		put64(f, c->ea[i], c->val[i] | P | (page & (U | W)) | (i == 3 ? (page & XD) | leaf_extra : 0));
}

static void set_env(struct fx *f, unsigned env)
{
	f->cpu.cr0 = X86_CR0_PE | X86_CR0_PG | (env & ENV_WP ? CR0_WP : 0);
	f->cpu.cr4 = X86_CR4_PAE | (env & ENV_SMEP ? CR4_SMEP : 0) | (env & ENV_SMAP ? CR4_SMAP : 0);
	f->cpu.efer = X86_EFER_LME | X86_EFER_LMA | (env & ENV_NXE ? EFER_NXE : 0);
	f->cpu.rflags = 2 | (env & ENV_AC ? RFLAGS_AC : 0);
	emu_tlb_flush(&f->cpu, true);
}

static void test_permission_table(void **state)
{
	struct fx *f = *state;
	struct chain c;

	perm_init(f, &c);
	for (size_t i = 0; i < ARRAY_SIZE(perm_cases); i++) {
		const struct perm_case *pc = &perm_cases[i];
		int64_t got;

		set_chain(f, &c, pc->page, 0);
		set_env(f, pc->env);
		got = xlate(f, PERM_LIN + 0x18, pc->access, NULL, NULL);
		if (got != pc->expect)
			fail_msg("case %zu: page %#llx access %#x env %#x: got %lld, expected %d", i,
				 (unsigned long long)pc->page, pc->access, pc->env, (long long)got,
				 pc->expect);
		/* The same answer again (from the TLB when it succeeded). */
		assert_int_equal(xlate(f, PERM_LIN + 0x18, pc->access, NULL, NULL), got);
	}
}

/* SDM 4.6, phrased as "what is allowed", for the exhaustive sweep. */
static int64_t oracle(uint64_t page, unsigned access, unsigned env)
{
	bool fetch = access & ACC_EXEC, write = access & ACC_WRITE;
	bool implicit = access & ACC_IMPLICIT, user = (access & ACC_USER) && !implicit;
	bool nxe = env & ENV_NXE, user_page = page & U;
	bool no_exec = nxe && (page & XD);
	uint32_t err = (write ? E_W : 0) | (user ? E_U : 0) |
		       (fetch && (nxe || (env & ENV_SMEP)) ? E_ID : 0);
	bool ok;

	if ((page & XD) && !nxe)
		return err | E_P | E_RSVD;
	if (user)
		ok = user_page && (!write || (page & W)) && (!fetch || !no_exec);
	else if (fetch)
		ok = !(user_page && (env & ENV_SMEP)) && !no_exec;
	else
		ok = !(user_page && (env & ENV_SMAP) && (implicit || !(env & ENV_AC))) &&
		     (!write || !(env & ENV_WP) || (page & W));
	return ok ? OK : (int64_t)(err | E_P);
}

/* Every combination, through a walk, a TLB hit after it, and a TLB hit
 * after warming the entry with other accesses: all must agree. */
static void test_permission_sweep(void **state)
{
	static const unsigned accesses[] = {
		R_, W_, X_, R_ | US, W_ | US, X_ | US, R_ | IM, W_ | IM, R_ | IM | US, W_ | IM | US,
	};
	struct fx *f = *state;
	struct chain c;
	unsigned n = 0;

	perm_init(f, &c);
	for (uint64_t pi = 0; pi < 8; pi++) {
		uint64_t page = (pi & 1 ? U : 0) | (pi & 2 ? W : 0) | (pi & 4 ? XD : 0);

		for (size_t ai = 0; ai < ARRAY_SIZE(accesses); ai++) {
			for (unsigned env = 0; env <= ENV_ALL; env++) {
				for (int dirty = 0; dirty < 2; dirty++) {
					unsigned acc = accesses[ai];
					int64_t want = oracle(page, acc, env), got[3];

					set_chain(f, &c, page, dirty ? D : 0);
					set_env(f, env);
					got[0] = xlate(f, PERM_LIN, acc, NULL, NULL);
					got[1] = xlate(f, PERM_LIN, acc, NULL, NULL);
					set_chain(f, &c, page, dirty ? D : 0);
					emu_tlb_flush(&f->cpu, true);
					(void)xlate(f, PERM_LIN, R_, NULL, NULL);
					(void)xlate(f, PERM_LIN, R_ | US, NULL, NULL);
					got[2] = xlate(f, PERM_LIN, acc, NULL, NULL);
					for (int k = 0; k < 3; k++)
						if (got[k] != want)
							fail_msg("page %#llx access %#x env %#x dirty %d try %d: "
								 "got %lld, expected %lld",
								 (unsigned long long)page, acc, env, dirty, k,
								 (long long)got[k], (long long)want);
					n++;
				}
			}
		}
	}
	assert_int_equal(n, 8 * ARRAY_SIZE(accesses) * 32 * 2);
}

/* All levels must allow W and U; XD on any level forbids fetches. */
static void test_permissions_combine(void **state)
{
	struct fx *f = *state;
	struct chain c;

	perm_init(f, &c);
	for (int i = 0; i < 4; i++) {
		set_env(f, ENV_NXE);
		set_chain(f, &c, U | W, 0);
		assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), OK);
		assert_int_equal(xlate(f, PERM_LIN, X_ | US, NULL, NULL), OK);
		/* W clear on level i only. */
		set_env(f, ENV_NXE);
		put64(f, c.ea[i], get64(f, c.ea[i]) & ~W);
		assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), E_P | E_W | E_U);
		assert_int_equal(xlate(f, PERM_LIN, R_ | US, NULL, NULL), OK);
		/* U clear on level i only. */
		set_chain(f, &c, U | W, 0);
		set_env(f, ENV_NXE);
		put64(f, c.ea[i], get64(f, c.ea[i]) & ~U);
		assert_int_equal(xlate(f, PERM_LIN, R_ | US, NULL, NULL), E_P | E_U);
		assert_int_equal(xlate(f, PERM_LIN, W_, NULL, NULL), OK);
		/* XD on level i only. */
		set_chain(f, &c, U | W, 0);
		set_env(f, ENV_NXE);
		put64(f, c.ea[i], get64(f, c.ea[i]) | XD);
		assert_int_equal(xlate(f, PERM_LIN, X_ | US, NULL, NULL), E_P | E_U | E_ID);
		assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), OK);
	}
}

/* ---- not present, reserved bits, hostile pointers ---- */

static void test_not_present_each_level(void **state)
{
	struct fx *f = *state;
	struct chain c;

	perm_init(f, &c);
	for (int i = 0; i < 4; i++) {
		set_chain(f, &c, U | W, 0);
		set_env(f, ENV_NXE);
		/* Only P clear (reserved bits in a non-present entry are not checked). */
		put64(f, c.ea[i], (get64(f, c.ea[i]) & ~P) | (1ULL << 51));
		assert_int_equal(xlate(f, PERM_LIN, R_, NULL, NULL), 0);
		assert_int_equal(xlate(f, PERM_LIN, W_, NULL, NULL), E_W);
		assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), E_W | E_U);
		assert_int_equal(xlate(f, PERM_LIN, X_ | US, NULL, NULL), E_U | E_ID);
		assert_int_equal(xlate(f, PERM_LIN, R_ | IM | US, NULL, NULL), 0);
		/* No A bit anywhere. */
		for (int j = 0; j < 4; j++)
			assert_false(get64(f, c.ea[j]) & A);
	}
}

static void test_reserved_each_level(void **state)
{
	static const struct {
		int level;          /* index in the chain: 0 = PML4E */
		uint64_t bits;      /* set on that entry */
		bool large;         /* and make it map a page */
		int expect;
	} cases[] = {
		{ 0, 1ULL << 51, false, E_P | E_RSVD },
		{ 0, 1ULL << 46, false, E_P | E_RSVD },
		{ 0, PS, false, E_P | E_RSVD },
		{ 0, 1ULL << 52 | 1ULL << 62, false, OK },    /* 62:52 ignored */
		{ 1, 1ULL << 46, false, E_P | E_RSVD },
		{ 1, 1ULL << 13, true, E_P | E_RSVD },         /* 1 GiB page: 29:13 */
		{ 1, 1ULL << 29, true, E_P | E_RSVD },
		{ 1, 1ULL << 12, true, OK },                   /* PAT */
		{ 2, 1ULL << 50, false, E_P | E_RSVD },
		{ 2, 1ULL << 20, true, E_P | E_RSVD },         /* 2 MiB page: 20:13 */
		{ 2, 1ULL << 13, true, E_P | E_RSVD },
		{ 2, 1ULL << 12, true, OK },
		{ 3, 1ULL << 46, false, E_P | E_RSVD },
		{ 3, 1ULL << 51, false, E_P | E_RSVD },
		{ 3, PS | 1ULL << 12 | 1ULL << 58, false, OK }, /* PAT, ignored */
		{ 3, XD, false, E_P | E_RSVD },                /* no NXE */
	};
	struct fx *f = *state;
	struct chain c;

	perm_init(f, &c);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int l = cases[i].level;
		int64_t got;

		set_chain(f, &c, U | W, 0);
		set_env(f, 0);
		/* A large page maps phys 0 (its address bits are 0). */
		put64(f, c.ea[l], (cases[i].large ? PS : c.val[l]) | P | W | U | cases[i].bits);
		got = xlate(f, PERM_LIN, R_, NULL, NULL);
		if (got != cases[i].expect)
			fail_msg("case %zu: got %lld, expected %d", i, (long long)got, cases[i].expect);
		if (got != OK) {
			assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), E_P | E_RSVD | E_W | E_U);
			for (int j = 0; j < 4; j++)
				assert_false(get64(f, c.ea[j]) & A);
		}
	}
}

static void test_tables_outside_ram(void **state)
{
	struct fx *f = *state;
	struct chain c;
	uint64_t ph;
	uint8_t *h;

	perm_init(f, &c);
	set_env(f, 0);
	/* CR3 in the MMIO hole, past RAM, at the top of the physical space. */
	f->cpu.cr3 = 0xd0000000;
	assert_int_equal(xlate(f, PERM_LIN, R_, NULL, NULL), 0);
	f->cpu.cr3 = 128 * MiB;
	assert_int_equal(xlate(f, PERM_LIN, W_, NULL, NULL), E_W);
	f->cpu.cr3 = 0x3ffffffff000ULL;
	assert_int_equal(xlate(f, PERM_LIN, R_, NULL, NULL), 0);
	f->cpu.cr3 = c.ea[0] & ADDR;
	/* A PDE pointing outside RAM. */
	set_env(f, 0);
	put64(f, c.ea[2], 0xfee00000 | P | W);
	assert_int_equal(xlate(f, PERM_LIN, R_, NULL, NULL), 0);
	put64(f, c.ea[2], 64 * MiB | P | W);
	assert_int_equal(xlate(f, PERM_LIN, R_, NULL, NULL), 0);
	/* A page outside RAM is not a fault: MMIO. */
	set_chain(f, &c, W, 0);
	put64(f, c.ea[3], 0xfee00000 | P | W);
	set_env(f, 0);
	assert_int_equal(xlate(f, PERM_LIN + 0x30, W_, &ph, &h), OK);
	assert_int_equal(ph, 0xfee00030);
	assert_null(h);
}

static void test_non_canonical(void **state)
{
	static const uint64_t bad[] = { 0x0000800000000000ULL, 0xffff7fffffffffffULL, 1ULL << 63,
					0x00ff000000000000ULL };
	struct fx *f = *state;
	int rc;
	uint64_t ph;
	uint8_t *h;

	mode_long(f);
	map4k(f, 0, 0x1000, P | W);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&f->cpu.exc, 0, sizeof(f->cpu.exc));
		rc = emu_mmu_translate(&f->cpu, bad[i], ACC_READ, &ph, &h);
		assert_int_equal(rc, -EFAULT);
		assert_int_equal(f->cpu.exc.vector, EXC_GP);
		assert_true(f->cpu.exc.has_error);
		assert_int_equal(f->cpu.exc.error, 0);
	}
	/* Canonical but unmapped: #PF; mapped: fine. */
	assert_int_equal(xlate(f, 0xffff800000000000ULL, ACC_READ, NULL, NULL), 0);
	assert_int_equal(xlate(f, 0x00007ffffffff000ULL, ACC_READ, NULL, NULL), 0);
	expect_phys(f, 0x10, ACC_READ, 0x1010);
}

/* ---- Accessed and Dirty ---- */

static void test_accessed_dirty(void **state)
{
	struct fx *f = *state;
	struct chain c;
	uint64_t pde;

	perm_init(f, &c);
	set_chain(f, &c, U | W, 0);
	set_env(f, ENV_WP);
	assert_int_equal(xlate(f, PERM_LIN, R_ | US, NULL, NULL), OK);
	for (int j = 0; j < 4; j++)
		assert_true(get64(f, c.ea[j]) & A);
	for (int j = 0; j < 4; j++)
		assert_false(get64(f, c.ea[j]) & D);
	assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), OK);
	assert_true(get64(f, c.ea[3]) & D);
	for (int j = 0; j < 3; j++)
		assert_false(get64(f, c.ea[j]) & D);
	/* An exec sets A, not D. */
	set_chain(f, &c, U | W, 0);
	set_env(f, ENV_WP);
	assert_int_equal(xlate(f, PERM_LIN, X_, NULL, NULL), OK);
	assert_int_equal(get64(f, c.ea[3]), c.val[3] | P | U | W | A);

	/* A permission fault sets nothing: a user write to a read-only page. */
	set_chain(f, &c, U, 0);
	set_env(f, ENV_WP);
	assert_int_equal(xlate(f, PERM_LIN, W_ | US, NULL, NULL), E_P | E_W | E_U);
	for (int j = 0; j < 4; j++)
		assert_int_equal(get64(f, c.ea[j]), c.val[j] | P | U);
	/* Nor does a fault at the last level. */
	set_chain(f, &c, U | W, 0);
	put64(f, c.ea[3], 0);
	assert_int_equal(xlate(f, PERM_LIN, R_, NULL, NULL), 0);
	for (int j = 0; j < 3; j++)
		assert_int_equal(get64(f, c.ea[j]), c.val[j] | P | U | W);

	/* A 2 MiB page: D on the PDE. */
	set_chain(f, &c, W, 0);
	pde = 0x400000 | PS | P | W;
	put64(f, c.ea[2], pde);
	set_env(f, 0);
	expect_phys(f, PERM_LIN, W_, 0x400000 + (PERM_LIN & 0x1fffff));
	assert_int_equal(get64(f, c.ea[2]), pde | A | D);
}

/* ---- the TLB ---- */

static void test_tlb_flush_init(void **state)
{
	struct fx *f = *state;

	memset(&f->cpu.tlb, 0x5a, sizeof(f->cpu.tlb));
	emu_tlb_flush(&f->cpu, true);
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
		assert_int_equal(f->cpu.tlb.e[i].vpage, ~0ULL);
		assert_false(f->cpu.tlb.e[i].global);
	}
	/* A zeroed (never flushed) TLB does not hit for page 0 either. */
	mode_long(f);
	memset(&f->cpu.tlb, 0, sizeof(f->cpu.tlb));
	assert_int_equal(xlate(f, 0x10, ACC_READ, NULL, NULL), 0);
}

static void test_tlb_hit_and_flush_page(void **state)
{
	struct fx *f = *state;
	uint64_t pte;

	mode_long(f);
	map4k(f, 0x400000, 0x200000, P | W);
	pte = ent4(f, 0x400000, 1, 0);
	expect_phys(f, 0x400010, ACC_READ, 0x200010);
	/* Changed in memory, not flushed: the cached translation stays. */
	put64(f, pte, 0x300000 | P | W | A);
	expect_phys(f, 0x400020, ACC_READ, 0x200020);
	/* Even a not-present PTE. */
	put64(f, pte, 0);
	expect_phys(f, 0x400020, ACC_READ, 0x200020);
	put64(f, pte, 0x300000 | P | W);
	emu_tlb_flush_page(&f->cpu, 0x400fff);
	expect_phys(f, 0x400020, ACC_READ, 0x300020);
	emu_tlb_flush(&f->cpu, false);
	put64(f, pte, 0x310000 | P | W);
	expect_phys(f, 0x400020, ACC_READ, 0x310020);
}

static void test_tlb_global(void **state)
{
	struct fx *f = *state;
	uint64_t pte_g, pte_n;

	mode_long(f);
	f->cpu.cr4 |= CR4_PGE;
	map4k(f, 0x400000, 0x200000, P | G);
	map4k(f, 0x401000, 0x201000, P | G);
	pte_g = ent4(f, 0x400000, 1, 0);
	pte_n = ent4(f, 0x401000, 1, 0);
	put64(f, pte_n, 0x201000 | P);          /* not global */
	expect_phys(f, 0x400000, ACC_READ, 0x200000);
	expect_phys(f, 0x401000, ACC_READ, 0x201000);
	put64(f, pte_g, 0x300000 | P | G);
	put64(f, pte_n, 0x301000 | P);
	emu_tlb_flush(&f->cpu, false);
	expect_phys(f, 0x400000, ACC_READ, 0x200000);   /* survives */
	expect_phys(f, 0x401000, ACC_READ, 0x301000);   /* gone */
	emu_tlb_flush(&f->cpu, true);
	expect_phys(f, 0x400000, ACC_READ, 0x300000);
	/* INVLPG drops a global page too. */
	put64(f, pte_g, 0x310000 | P | G);
	emu_tlb_flush_page(&f->cpu, 0x400000);
	expect_phys(f, 0x400000, ACC_READ, 0x310000);

	/* G without CR4.PGE is not global. */
	f->cpu.cr4 &= ~CR4_PGE;
	emu_tlb_flush(&f->cpu, true);
	expect_phys(f, 0x400000, ACC_READ, 0x310000);
	put64(f, pte_g, 0x320000 | P | G);
	emu_tlb_flush(&f->cpu, false);
	expect_phys(f, 0x400000, ACC_READ, 0x320000);
}

static void test_tlb_write_sets_dirty(void **state)
{
	struct fx *f = *state;
	uint64_t pte;

	mode_long(f);
	map4k(f, 0x400000, 0x200000, P | W);
	pte = ent4(f, 0x400000, 1, 0);
	expect_phys(f, 0x400000, ACC_READ, 0x200000);
	assert_int_equal(get64(f, pte), 0x200000 | P | W | A);
	expect_phys(f, 0x400008, ACC_WRITE, 0x200008);  /* cached, but clean: walks */
	assert_int_equal(get64(f, pte), 0x200000 | P | W | A | D);
	/* Now cached dirty: a write hits without walking. */
	put64(f, pte, 0x300000 | P | W | A | D);
	expect_phys(f, 0x400008, ACC_WRITE, 0x200008);
}

static void test_tlb_rechecks_on_hit(void **state)
{
	struct fx *f = *state;
	uint64_t pte;

	mode_long(f);
	map4k(f, 0x400000, 0x200000, P | D);            /* supervisor, read-only */
	map4k(f, 0x500000, 0x210000, P | W | U);
	pte = ent4(f, 0x400000, 1, 0);
	expect_phys(f, 0x400000, ACC_WRITE, 0x200000);  /* WP=0 */
	f->cpu.cr0 |= CR0_WP;                           /* no flush needed */
	assert_int_equal(xlate(f, 0x400000, ACC_WRITE, NULL, NULL), E_P | E_W);
	assert_int_equal(xlate(f, 0x400000, ACC_READ | ACC_USER, NULL, NULL), E_P | E_U);
	/* The fault dropped the cached entry: the next read walks again. */
	put64(f, pte, 0x220000 | P);
	expect_phys(f, 0x400000, ACC_READ, 0x220000);

	/* RFLAGS.AC under SMAP. */
	f->cpu.cr4 |= CR4_SMAP;
	emu_tlb_flush(&f->cpu, true);
	f->cpu.rflags |= RFLAGS_AC;
	expect_phys(f, 0x500000, ACC_WRITE, 0x210000);
	f->cpu.rflags &= ~RFLAGS_AC;
	assert_int_equal(xlate(f, 0x500000, ACC_READ, NULL, NULL), E_P);
	expect_phys(f, 0x500000, ACC_READ | ACC_USER, 0x210000);
}

/* The next page after linear (by 4 KiB steps) in linear's TLB set. */
static uint64_t same_set(uint64_t linear)
{
	uint64_t p = linear + 4096;

	while (emu_tlb_set(p >> 12) != emu_tlb_set(linear >> 12))
		p += 4096;
	return p;
}

static void test_tlb_same_slot(void **state)
{
	struct fx *f = *state;
	uint64_t a = 0x400000, b = same_set(a), c = same_set(b), pte_a;

	mode_long(f);
	map4k(f, a, 0x200000, P);
	map4k(f, b, 0x201000, P);
	map4k(f, c, 0x204000, P);
	pte_a = ent4(f, a, 1, 0);
	expect_phys(f, a + 1, ACC_READ, 0x200001);
	expect_phys(f, b + 2, ACC_READ, 0x201002);      /* a and b: both ways */
	put64(f, pte_a, 0x205000 | P);
	expect_phys(f, a + 3, ACC_READ, 0x200003);      /* still cached */
	expect_phys(f, c + 2, ACC_READ, 0x204002);      /* evicts a, the older */
	expect_phys(f, a + 3, ACC_READ, 0x205003);      /* walked again */
	put64(f, pte_a, 0x202000 | P);
	expect_phys(f, b + 4, ACC_READ, 0x201004);      /* evicts c, keeps a */
	expect_phys(f, a + 5, ACC_READ, 0x205005);
	/* Flushing b's page leaves its set neighbour alone and vice versa. */
	emu_tlb_flush_page(&f->cpu, b);
	put64(f, pte_a, 0x203000 | P);
	expect_phys(f, a, ACC_READ, 0x205000);
}

static void test_tlb_flush_page_large(void **state)
{
	struct fx *f = *state;
	uint64_t pde;

	mode_long(f);
	pde = ent4(f, 0x600000, 2, P | W);
	put64(f, pde, 0x1000000 | PS | P | W);
	map4k(f, 0x400000, 0x200000, P);
	expect_phys(f, 0x600000, ACC_READ, 0x1000000);
	expect_phys(f, 0x7ff000, ACC_READ, 0x11ff000);
	expect_phys(f, 0x400000, ACC_READ, 0x200000);
	/* INVLPG anywhere in the 2 MiB page drops all its cached pieces. */
	put64(f, pde, 0x1200000 | PS | P | W);
	emu_tlb_flush_page(&f->cpu, 0x654321);
	expect_phys(f, 0x600000, ACC_READ, 0x1200000);
	expect_phys(f, 0x7ff000, ACC_READ, 0x13ff000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
		T(test_paging_off),
		T(test_long_4k_2m_1g),
		T(test_pae),
		T(test_32bit),
		T(test_permission_table),
		T(test_permission_sweep),
		T(test_permissions_combine),
		T(test_not_present_each_level),
		T(test_reserved_each_level),
		T(test_tables_outside_ram),
		T(test_non_canonical),
		T(test_accessed_dirty),
		T(test_tlb_flush_init),
		T(test_tlb_hit_and_flush_page),
		T(test_tlb_global),
		T(test_tlb_write_sets_dirty),
		T(test_tlb_rechecks_on_hit),
		T(test_tlb_same_slot),
		T(test_tlb_flush_page_large),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
