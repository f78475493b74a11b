/* The emu engine's CPU state and the interfaces between its parts:
 * decode.c (bytes -> struct emu_insn), mmu.c (linear -> physical, TLB),
 * exec.c (one instruction), flags.c (lazy arithmetic flags). */
#ifndef KUMO_EMU_CPU_H
#define KUMO_EMU_CPU_H

#include <stdatomic.h>

#include "kumo/util.h"
#include "kumo/x86.h"

struct guest_mem;
struct machine;
struct emu_lapic;

/* Segment registers in encoding order (ModRM.reg of MOV Sreg). */
enum emu_sreg { SR_ES, SR_CS, SR_SS, SR_DS, SR_FS, SR_GS, SR_NONE = 7 };

/* Exception vectors. */
enum {
	EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
	EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12,
	EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};

/* What a step of the CPU ended with. */
enum emu_status {
	EMU_OK = 0,      /* instruction retired */
	EMU_FAULT = 1,   /* an exception is in cpu->exc, to be delivered */
	EMU_HALT = 2,    /* HLT: sleep until an interrupt */
	EMU_EXIT = 3,    /* the machine is stopping (or a triple fault) */
};

struct emu_exception {
	uint8_t vector;
	bool has_error;
	uint32_t error;
	uint64_t cr2;    /* for #PF */
};

/* The CPU mode, derived from CR0.PE, EFER.LMA, CS.L/D, RFLAGS.VM. */
enum emu_mode { MODE_REAL, MODE_PROT16, MODE_PROT32, MODE_COMPAT16, MODE_COMPAT32, MODE_LONG64 };

/* Lazy flags: the last flag-setting operation, evaluated on demand. */
struct emu_lazy_flags {
	uint64_t res, src, dst; /* result and operands, zero-extended */
	uint8_t op;             /* enum emu_flags_op (flags.c) */
	uint8_t size;           /* operand size in bytes: 1, 2, 4, 8 */
};

/* ---- the software TLB (mmu.c) ---- */
/* Two-way set-associative: EMU_TLB_SETS sets of EMU_TLB_WAYS entries,
 * e[set * EMU_TLB_WAYS + way]; way 0 holds the most recently filled. */
#define EMU_TLB_SETS 256
#define EMU_TLB_WAYS 2
#define EMU_TLB_SIZE (EMU_TLB_SETS * EMU_TLB_WAYS)

/* The jump cache (jit.h: the dispatcher): where translated code that
 * returns (RET), or leaves through an exit that is not linked, finds the
 * translated block at the RIP it goes to, without going back to the
 * executor. An entry says: at vrip, under the TLB generation and CPL in
 * tag, is block (a struct emu_block *), of code page code_page, whose
 * code was fn in the code buffer's epoch epoch (bumped by every reset and
 * by every translated block decoded again: icache.c), validated in the
 * cache's session session. Filled by emu_run; checked before use without
 * reading the block (jit.c: the dispatcher). One cache line. */
#define EMU_JCACHE_SIZE 16384
struct emu_jcache_entry {
	uint64_t vrip;
	uint64_t tag;           /* tlb_gen << 3 | cpl << 1 | 1: never 0 */
	uint64_t epoch;
	uint64_t session;
	void *block;
	uint64_t fn;
	uint64_t code_page;
	uint64_t pad;
};

/* The set of a linear page: hashed, so that buffers a power of two apart
 * (1 MiB, 2 MiB...) do not all land in one set; by adding, so that a page
 * and the next one never share a set (for every carry, the sum of the
 * three low bytes moves by 1, 2 or 3): the JIT's probe relies on that to
 * catch an access that crosses into the next page (jit.c: emit_probe). */
static inline unsigned emu_tlb_set(uint64_t vpage)
{
	return (unsigned)((vpage + (vpage >> 8) + (vpage >> 16)) % EMU_TLB_SETS);
}

enum emu_access {
	ACC_READ = 0, ACC_WRITE = 1 << 0, ACC_EXEC = 1 << 1,
	ACC_USER = 1 << 2,     /* a CPL-3 access (not an implicit supervisor one) */
	ACC_IMPLICIT = 1 << 3, /* descriptor tables, TSS: supervisor whatever CPL */
};

struct emu_tlb_entry {
	uint64_t vpage;        /* linear address >> 12, or ~0 when empty */
	uint64_t ppage;        /* physical address >> 12 */
	uint8_t *host;         /* host address of the page, NULL for MMIO */
	/* For translated code's inline probe (jit.c: emit_probe), kept by
	 * emu_tlb_entry_tags() whenever the fields above or perm change:
	 * what the page of an access's last byte, | 1, | 2 at CPL 3, must
	 * equal for a read (rtag) or a store (wtag) to go inline — vpage << 12
	 * | 1 | 2 for a user page — or 0 where it may not (MMIO, no rights,
	 * a clean page, a page of code); and host minus the page's linear
	 * address. */
	uint64_t rtag, wtag;
	uint64_t addend;
	uint8_t perm;          /* TLB_R/W/X/U as allowed by the walk */
	bool global;
	uint8_t pad[14];       /* 64 bytes: the probe indexes by shifting */
};
/* TLB_VALID: the entry was filled (a zeroed TLB never hits); TLB_LARGE:
 * a 4 KiB piece of a 2M/4M/1G page; TLB_PLAIN: RAM that holds no code
 * this thread's decoded-block cache has validated (icache.h): stores may
 * take the inline fast path, which needs it. */
enum { TLB_W = 1 << 0, TLB_X = 1 << 1, TLB_U = 1 << 2, TLB_DIRTY = 1 << 3, TLB_PLAIN = 1 << 4,
       TLB_LARGE = 1 << 6, TLB_VALID = 1 << 7 };

static inline void emu_tlb_entry_tags(struct emu_tlb_entry *e)
{
	const unsigned st = TLB_W | TLB_DIRTY | TLB_PLAIN;
	bool ok = (e->perm & TLB_VALID) && e->host && e->vpage != ~0ULL;
	uint64_t t = e->vpage << 12 | 1 | (e->perm & TLB_U ? 2 : 0);

	e->rtag = ok ? t : 0;
	e->wtag = ok && (e->perm & st) == st ? t : 0;
	e->addend = ok ? (uint64_t)(uintptr_t)e->host - (e->vpage << 12) : 0;
}

/* An entry emptied (what a zeroed one with vpage ~0 is) */
static inline void emu_tlb_entry_drop(struct emu_tlb_entry *e)
{
	e->vpage = ~0ULL;
	e->rtag = e->wtag = 0;
}

struct emu_tlb {
	struct emu_tlb_entry e[EMU_TLB_SIZE];
};

struct emu_cpu {
	uint64_t gpr[X86_NR_GPRS];
	uint64_t rip;
	uint64_t rflags;        /* all but the six arithmetic flags (see flags.c) */
	struct emu_lazy_flags lf;
	struct x86_seg seg[6];  /* enum emu_sreg order */
	struct x86_seg tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, efer, xcr0;
	uint64_t dr[8];
	struct {
		uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
		uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
		uint64_t pat, tsc_aux, misc_enable, tsc_offset;
		uint64_t kvm_system_time; /* kvmclock MSR: GPA | enable */
	} msr;
	/* x87 / SSE state in FXSAVE layout (512 bytes, 16-byte aligned). */
	uint8_t fxsave[512] __attribute__((aligned(16)));

	enum emu_mode mode;     /* cached: emu_cpu_update_mode() after changes */
	uint8_t cpl;
	bool interrupt_shadow;  /* after STI / MOV SS / POP SS: one instruction */
	bool nmi_blocked;       /* from NMI delivery until IRET */
	struct emu_exception exc;
	unsigned exc_depth;     /* nested delivery: #DF, then triple fault */

	struct emu_tlb tlb;
	uint64_t tlb_gen;       /* bumped by every TLB flush and paging-mode change */
	/* The code page instructions were last fetched from: its linear and
	 * physical page and host address (NULL: not RAM), valid while tlb_gen
	 * and the CPL are what they were. */
	struct {
		uint64_t vpage, ppage;
		uint8_t *host;
		uint64_t gen;
		uint8_t cpl;
	} fetch;
	/* The physical page of the block being executed; a write there sets
	 * code_written (emu_code_store) and the executor leaves the block, so
	 * the next instruction is fetched and validated again. */
	uint64_t code_page;
	bool code_written;
	/* The decoded-block cache (a per-thread struct emu_icache) and its
	 * mark_epoch that this TLB's TLB_PLAIN bits agree with (icache.h). */
	const void *code_cache;
	uint64_t code_epoch;
	/* The devices' code-write epoch (struct guest_code) this CPU's
	 * current session has seen, when the memory tracks code. */
	uint64_t dma_epoch;
	/* The host's RFLAGS where translated code left (jit.h), and the
	 * guest instructions translated code has completed (a statistic). */
	uint64_t jit_flags;
	uint64_t jit_insns;
	uint64_t jit_rip;       /* scratch of translated code: RIP after a helper */
	/* Instructions translated code may still run, counted from the start
	 * of the pass it is in: a loop back to a block's start or a jump into
	 * a linked block takes its share (jit.h). */
	uint64_t jit_left;
	/* Set by translated code that went on into a linked block: that
	 * block (a struct emu_block *) and the RIP it was entered at. */
	void *jit_block;
	uint64_t jit_entry;
	uint64_t jit_hops;      /* jumps from one block's code into another's (a statistic) */
	/* Set by translated code that left through the dispatcher
	 * (EMU_JIT_INDIRECT): emu_run fills the jump cache with the block
	 * found at RIP. */
	bool jc_fill;
	/* Set by the caller of emu_run() to go on in the decoded-block
	 * cache's current session instead of starting a new one (icache.h):
	 * nothing it knows of wrote code since the last call. emu_run()
	 * clears it. */
	bool keep_session;
	/* emu_run() returns early once this is set (NULL: never): the
	 * engine's kick flag. */
	const atomic_bool *stop;
	struct guest_mem *mem;
	struct machine *machine;
	struct emu_lapic *lapic;
	unsigned index;
	unsigned ncpus;         /* for CPUID's topology */
	_Alignas(64) struct emu_jcache_entry jcache[EMU_JCACHE_SIZE]; /* an entry is a cache line */
};

/* ---- mmu.c ---- */
/* Linear -> physical for an access of the given kind at the current CPL,
 * paging mode and CR0.WP/CR4.SMEP/SMAP/EFER.NXE; sets Accessed (and Dirty
 * on writes) in the paging structures. On a fault returns -EFAULT with
 * cpu->exc set to #PF (error code, CR2) — or #GP for a non-canonical
 * address in 64-bit mode. *host is the host address when the physical
 * address is RAM, NULL for MMIO. The access must not cross a page. */
int emu_mmu_translate(struct emu_cpu *cpu, uint64_t linear, unsigned access,
		      uint64_t *phys, uint8_t **host) WUR;
void emu_tlb_flush(struct emu_cpu *cpu, bool include_global);
void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t linear);
/* A store by cpu to the physical page ppage went through the slow path
 * (access.c, string and atomic operations, MSR-driven writes): if the
 * page holds code of this thread's cache, it stops being marked and a new
 * session starts (icache.h); if it is the running block's, the block ends
 * after this instruction. */
void emu_code_store(struct emu_cpu *cpu, uint64_t ppage);

/* ---- decode.c ---- */
#define EMU_INSN_MAX 15

enum emu_opmap { MAP_1B, MAP_0F, MAP_0F38, MAP_0F3A };

/* Immediate kinds, from the opcode tables. */
enum emu_imm { IMM_NONE, IMM_B, IMM_W, IMM_Z, IMM_V, IMM_WB /* ENTER */, IMM_P /* far ptr16:16/32 */,
	       IMM_MOFFS /* A0-A3: address-sized */ };

struct emu_insn {
	uint8_t len;
	uint8_t map;            /* enum emu_opmap */
	uint8_t op;             /* the opcode byte in its map */
	uint8_t opsize;         /* operand size: 2, 4 or 8 bytes */
	uint8_t addrsize;       /* address size: 2, 4 or 8 */
	uint8_t rex;            /* 0 or 0x40-0x4f */
	uint8_t rep;            /* 0, 0xf2 or 0xf3 (last one given) */
	bool lock;
	bool opsize_prefix;     /* 0x66 seen (mandatory prefix of SSE forms) */
	uint8_t seg;            /* segment override, SR_NONE if none */
	bool has_modrm;
	uint8_t mod, reg, rm;   /* reg and rm extended by REX.R / REX.B */
	bool has_sib;
	uint8_t scale;          /* 1, 2, 4, 8 */
	int8_t index, base;     /* -1: none; extended by REX.X / REX.B */
	bool rip_relative;
	int64_t disp;
	uint64_t imm;           /* sign- or zero-extended as the table says */
	uint16_t imm2;          /* ENTER's first operand; far pointer selector */
	uint8_t bytes[EMU_INSN_MAX];
	/* How the executor runs it: set by the decoded-block cache (a handler
	 * for this exact form, or the general one); the decoder leaves NULL. */
	int (*exec)(struct emu_cpu *cpu, const struct emu_insn *in);
	/* exec skips flags that a later instruction of the block overwrites
	 * before anything can see them (exec.c: emu_exec_pick_block); exact
	 * only when the whole block runs. */
	bool flags_dead;
};

enum emu_decode_result {
	DECODE_OK = 0,
	DECODE_UD = -1,         /* invalid encoding: #UD */
	DECODE_TOO_LONG = -2,   /* over 15 bytes: #GP(0) */
	DECODE_NEED_MORE = -3,  /* avail too short: fetch more and retry */
};

/* Decodes one instruction from buf[0..avail) in the given mode. */
int emu_decode(const uint8_t *buf, size_t avail, enum emu_mode mode, struct emu_insn *insn) WUR;

#endif
