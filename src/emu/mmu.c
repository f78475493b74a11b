/* The emu engine's MMU: linear -> physical translation through the guest's
 * paging structures (Intel SDM vol. 3, chapter 4), behind a software TLB.
 *
 * Results: *phys is the full physical address (page | offset); *host is the
 * host address of the 4 KiB physical PAGE (add linear & 0xfff yourself), or
 * NULL when that page is not RAM (MMIO, the hole, past the end): not a
 * fault, the executor sends such accesses to the MMIO bus.
 *
 * The TLB contract. Like a hardware TLB, this one is not coherent with the
 * paging structures: a translation stays cached until the executor flushes
 * it, and the guest is expected to flush after changing its page tables.
 * The executor must call
 *  - emu_tlb_flush(cpu, true) before the first translation (it is also the
 *    TLB's initialisation), and whenever CR0.PG, CR4.PAE/PSE/PGE or
 *    EFER.NXE/LMA change (entries record the walk's result under them);
 *  - emu_tlb_flush(cpu, false) on every CR3 write (global entries stay);
 *  - emu_tlb_flush_page(cpu, linear) on INVLPG.
 * CR0.WP, CR4.SMEP/SMAP, RFLAGS.AC and the CPL (ACC_USER) are checked on
 * every hit, so changing them needs no flush (flushing is harmless). With
 * paging off the identity translations are cached too; turning paging on
 * flushes them (CR0.PG above).
 *
 * Page tables live in guest RAM and are hostile: an entry outside RAM reads
 * as not present, and every reserved bit is checked. Other vCPUs share the
 * tables: entries are read with atomic loads and the Accessed/Dirty bits set
 * with atomic ORs, only once the whole access is known to be allowed. */
#include <errno.h>

#include "cpu.h"
#include "icache.h"
#include "kumo/memory.h"

#define CR0_WP    (1ULL << 16)
#define CR4_PSE   (1ULL << 4)
#define CR4_PGE   (1ULL << 7)
#define CR4_SMEP  (1ULL << 20)
#define CR4_SMAP  (1ULL << 21)
#define EFER_NXE  (1ULL << 11)
#define RFLAGS_AC (1ULL << 18)

/* Paging-structure entry bits. */
#define PTE_P  (1ULL << 0)
#define PTE_W  (1ULL << 1)
#define PTE_U  (1ULL << 2)
#define PTE_A  (1ULL << 5)
#define PTE_D  (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_G  (1ULL << 8)
#define PTE_XD (1ULL << 63)

/* Bits hi..lo set. */
#define BITS(hi, lo) ((~0ULL >> (63 - (hi))) & ~((1ULL << (lo)) - 1))

/* MAXPHYADDR, as CPUID 0x80000008 advertises it. */
#define PHYS_BITS 46
#define ADDR_MASK BITS(PHYS_BITS - 1, 12)

/* #PF error code. */
enum { PF_P = 1 << 0, PF_W = 1 << 1, PF_U = 1 << 2, PF_RSVD = 1 << 3, PF_ID = 1 << 4 };

/* One level of a paging mode. */
struct level {
	uint8_t shift;      /* lowest linear-address bit that indexes the table */
	uint8_t bits;       /* index width */
	bool large;         /* PS=1 maps a page here */
	bool pdpte;         /* PAE PDPTE: no R/W, U/S, XD or A bits */
	uint64_t rsvd;      /* reserved bits (bit 63 without NXE comes on top) */
	uint64_t rsvd_ps;   /* also reserved when PS=1 maps a page */
};

/* 4-level paging: PML4E, PDPTE (1 GiB pages), PDE (2 MiB), PTE. Bits 62:52
 * are ignored (available to software, or protection keys) here. */
static const struct level levels_4[] = {
	{ 39, 9, false, false, BITS(51, PHYS_BITS) | PTE_PS, 0 },
	{ 30, 9, true, false, BITS(51, PHYS_BITS), BITS(29, 13) },
	{ 21, 9, true, false, BITS(51, PHYS_BITS), BITS(20, 13) },
	{ 12, 9, false, false, BITS(51, PHYS_BITS), 0 },
};

/* PAE paging: 4 PDPTEs, PDE (2 MiB), PTE. Bits 62:M are reserved here. */
static const struct level levels_pae[] = {
	{ 30, 2, false, true, BITS(63, PHYS_BITS) | BITS(8, 5) | BITS(2, 1), 0 },
	{ 21, 9, true, false, BITS(62, PHYS_BITS), BITS(20, 13) },
	{ 12, 9, false, false, BITS(62, PHYS_BITS), 0 },
};

/* 32-bit paging: PDE (4 MiB pages with CR4.PSE), PTE. No PSE-36: bits 21:13
 * of a 4 MiB PDE are reserved. */
static const struct level levels_32_pse[] = {
	{ 22, 10, true, false, 0, BITS(21, 13) },
	{ 12, 10, false, false, 0, 0 },
};
static const struct level levels_32[] = {
	{ 22, 10, false, false, 0, 0 },
	{ 12, 10, false, false, 0, 0 },
};

static bool user_access(unsigned access)
{
	return (access & (ACC_USER | ACC_IMPLICIT)) == ACC_USER;
}

/* May this access use a translation with these rights (TLB_W/X/U)? SDM 4.6. */
static inline bool access_allowed(const struct emu_cpu *cpu, unsigned perm, unsigned access)
{
	bool user = user_access(access);

	if ((access & ACC_WRITE) && !(perm & TLB_W) && (user || (cpu->cr0 & CR0_WP)))
		return false;
	if ((access & ACC_EXEC) && !(perm & TLB_X))
		return false;
	if (user)
		return perm & TLB_U;
	if (!(perm & TLB_U))
		return true;
	/* A supervisor access to a user page: SMEP for fetches, SMAP for data
	 * (explicit accesses with RFLAGS.AC set are let through). */
	if (access & ACC_EXEC)
		return !(cpu->cr4 & CR4_SMEP);
	return !(cpu->cr4 & CR4_SMAP) ||
	       ((cpu->rflags & RFLAGS_AC) && !(access & ACC_IMPLICIT));
}

/* linear's set: EMU_TLB_WAYS entries. */
static struct emu_tlb_entry *tlb_set(struct emu_cpu *cpu, uint64_t linear)
{
	return &cpu->tlb.e[emu_tlb_set(linear >> 12) * EMU_TLB_WAYS];
}

static int page_fault(struct emu_cpu *cpu, uint64_t linear, unsigned access, uint32_t error)
{
	struct emu_tlb_entry *e = tlb_set(cpu, linear);

	if (access & ACC_WRITE)
		error |= PF_W;
	if (user_access(access))
		error |= PF_U;
	/* I/D is only reported with SMEP, or NXE under PAE/4-level paging. */
	if ((access & ACC_EXEC) &&
	    ((cpu->cr4 & CR4_SMEP) || ((cpu->cr4 & X86_CR4_PAE) && (cpu->efer & EFER_NXE))))
		error |= PF_ID;
	/* A #PF drops the faulting page's cached translation (SDM 4.10.4.1). */
	for (unsigned w = 0; w < EMU_TLB_WAYS; w++)
		if (e[w].vpage == linear >> 12)
			emu_tlb_entry_drop(&e[w]);
	cpu->exc = (struct emu_exception){ .vector = EXC_PF, .has_error = true,
					   .error = error, .cr2 = linear };
	return -EFAULT;
}

/* Caches linear's page -> the physical page page_pa and returns it. */
static int tlb_fill(struct emu_cpu *cpu, uint64_t linear, uint64_t page_pa, unsigned perm,
		    bool global, uint64_t *phys, uint8_t **host)
{
	struct emu_tlb_entry *e = tlb_set(cpu, linear);
	const struct emu_icache *c = emu_icache_tls;

	/* Into way 0; what was there moves to way 1 unless it is this page's
	 * old entry (way 1 is then dropped if it is this page too). */
	if (e[0].vpage != linear >> 12)
		e[1] = e[0];
	else if (e[1].vpage == linear >> 12)
		emu_tlb_entry_drop(&e[1]);
	*e = (struct emu_tlb_entry){
		.vpage = linear >> 12,
		.ppage = page_pa >> 12,
		.host = gpa_ptr(cpu->mem, page_pa, 4096),
		.perm = perm | TLB_VALID,
		.global = global,
	};
	/* Stores take the inline fast path only on RAM that holds no code of
	 * this thread's decoded-block cache (icache.h; emu_code_sync() makes
	 * this agree with the cache that runs the CPU). */
	if (e->host && (!c || !emu_code_marked(c, e->ppage)))
		e->perm |= TLB_PLAIN;
	emu_tlb_entry_tags(e);
	*phys = page_pa | (linear & 0xfff);
	*host = e->host;
	return 0;
}

static uint64_t load_entry(const void *p, bool wide)
{
	if (!p)
		return 0; /* outside RAM: not present */
	if (wide)
		return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
	return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}

/* Sets bits in an entry that was read as old, unless they are already set. */
static void set_bits(void *p, bool wide, uint64_t old, uint64_t bits)
{
	if ((old & bits) == bits)
		return;
	if (wide)
		__atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_RELAXED);
	else
		__atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
}

/* The TLB missed (or its entry did not allow this access): walk the paging
 * structures, check the access, set A/D, refill the TLB. */
static __attribute__((noinline)) int walk(struct emu_cpu *cpu, uint64_t linear, unsigned access,
					  uint64_t *phys, uint8_t **host)
{
	const struct level *lv;
	unsigned nlevels;
	uint64_t table;
	bool wide = true;
	bool nxe = cpu->efer & EFER_NXE;

	if (!(cpu->cr0 & X86_CR0_PG))
		return tlb_fill(cpu, linear, linear & ~0xfffULL,
				TLB_W | TLB_X | TLB_U | TLB_DIRTY, false, phys, host);
	if (cpu->efer & X86_EFER_LMA) {
		/* CR4.LA57 is not advertised: always 4-level. */
		lv = levels_4;
		nlevels = ARRAY_SIZE(levels_4);
		table = cpu->cr3 & ADDR_MASK;
	} else if (cpu->cr4 & X86_CR4_PAE) {
		/* A real CPU loads the four PDPTEs into registers at CR3 load
		 * (and #GPs there on reserved bits); reading them at each walk
		 * is simpler and only differs for a guest that changes its PDPT
		 * without reloading CR3. A bad PDPTE is a #PF with RSVD here. */
		lv = levels_pae;
		nlevels = ARRAY_SIZE(levels_pae);
		table = cpu->cr3 & BITS(31, 5);
	} else {
		lv = (cpu->cr4 & CR4_PSE) ? levels_32_pse : levels_32;
		nlevels = ARRAY_SIZE(levels_32);
		table = cpu->cr3 & BITS(31, 12);
		wide = false;
		nxe = false; /* no XD bit in 32-bit entries */
	}

	void *used[4];            /* entries to mark Accessed */
	uint64_t used_val[4];
	unsigned nused = 0;
	unsigned rights = TLB_W | TLB_U | TLB_X;
	unsigned esize = wide ? 8 : 4;
	uint64_t entry;
	unsigned i;

	for (i = 0;; i++) {
		uint64_t idx = (linear >> lv[i].shift) & ((1ULL << lv[i].bits) - 1);
		void *p = gpa_ptr(cpu->mem, table + idx * esize, esize);
		uint64_t rsvd = lv[i].rsvd;
		bool leaf;

		entry = load_entry(p, wide);
		if (!(entry & PTE_P))
			return page_fault(cpu, linear, access, 0);
		leaf = i == nlevels - 1 || (lv[i].large && (entry & PTE_PS));
		if (leaf && i != nlevels - 1)
			rsvd |= lv[i].rsvd_ps;
		if (wide && !nxe)
			rsvd |= PTE_XD;
		if (entry & rsvd)
			return page_fault(cpu, linear, access, PF_P | PF_RSVD);
		if (!lv[i].pdpte) {
			if (!(entry & PTE_W))
				rights &= ~TLB_W;
			if (!(entry & PTE_U))
				rights &= ~TLB_U;
			if (nxe && (entry & PTE_XD))
				rights &= ~TLB_X;
			used[nused] = p;
			used_val[nused++] = entry;
		}
		if (leaf)
			break;
		table = entry & ADDR_MASK;
	}

	if (!access_allowed(cpu, rights, access))
		return page_fault(cpu, linear, access, PF_P);

	/* Allowed: Accessed on every level, Dirty on the leaf for a write. */
	for (unsigned j = 0; j < nused; j++)
		set_bits(used[j], wide, used_val[j], PTE_A);
	if (access & ACC_WRITE) {
		set_bits(used[nused - 1], wide, used_val[nused - 1] | PTE_A, PTE_D);
		entry |= PTE_D;
	}

	uint64_t page_mask = (1ULL << lv[i].shift) - 1;
	uint64_t pa = (entry & ADDR_MASK & ~page_mask) | (linear & page_mask & ~0xfffULL);
	unsigned perm = rights | (entry & PTE_D ? TLB_DIRTY : 0) | (i != nlevels - 1 ? TLB_LARGE : 0);
	bool global = (cpu->cr4 & CR4_PGE) && (entry & PTE_G);

	return tlb_fill(cpu, linear, pa, perm, global, phys, host);
}

int emu_mmu_translate(struct emu_cpu *cpu, uint64_t linear, unsigned access,
		      uint64_t *phys, uint8_t **host)
{
	const struct emu_tlb_entry *e = tlb_set(cpu, linear);
	unsigned need = TLB_VALID | (access & ACC_WRITE ? TLB_DIRTY : 0);

	if (cpu->mode == MODE_LONG64 && (uint64_t)((int64_t)(linear << 16) >> 16) != linear) {
		cpu->exc = (struct emu_exception){ .vector = EXC_GP, .has_error = true, .error = 0 };
		return -EFAULT;
	}
	/* The hit path. A write through an entry not yet Dirty walks to set D;
	 * a hit that does not allow the access walks for the exact fault. */
	if (e[0].vpage != linear >> 12)
		e++; /* way 1, or a miss */
	if (__builtin_expect(e->vpage == linear >> 12 && (e->perm & need) == need &&
			     access_allowed(cpu, e->perm, access), 1)) {
		*phys = e->ppage << 12 | (linear & 0xfff);
		*host = e->host;
		return 0;
	}
	return walk(cpu, linear, access, phys, host);
}

void emu_tlb_flush(struct emu_cpu *cpu, bool include_global)
{
	cpu->tlb_gen++;
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
		struct emu_tlb_entry *e = &cpu->tlb.e[i];

		if (include_global || !e->global)
			*e = (struct emu_tlb_entry){ .vpage = ~0ULL };
	}
}

void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t linear)
{
	uint64_t vpage = linear >> 12;

	cpu->tlb_gen++;

	/* INVLPG drops the whole page containing linear. Large pages are
	 * cached in 4 KiB pieces whose size is not recorded, so drop every
	 * large-page piece in the same 1 GiB (flushing more is allowed). */
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
		struct emu_tlb_entry *e = &cpu->tlb.e[i];

		if (e->vpage == vpage || ((e->perm & TLB_LARGE) && (e->vpage >> 18) == (vpage >> 18)))
			*e = (struct emu_tlb_entry){ .vpage = ~0ULL };
	}
}
