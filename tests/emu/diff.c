/* Differential testing of the emu engine against the host CPU.
 *
 * Each case is one random instruction from a table of templates (every
 * integer opcode class the executor implements), with random operand
 * sizes, registers, addressing forms, immediates, flags and memory. It runs
 * natively, in this process, from a register file and a data page, and on
 * an emu CPU in 64-bit user mode from the same registers and memory.
 * Registers, the flags the SDM defines for that instruction, the data and
 * stack pages, and the exception (if any) must match.
 *
 * usage: diff [--cases N] [--seed S] [--verbose]
 * On a mismatch: the seed, the case number, the bytes, both states. */
#include "jit.h"
#include "diff_common.h"
#include "exec.h"
#include "flags.h"

#include "kumo/memory.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct diff_regs {
	uint64_t gpr[16];
	uint64_t rflags;
};


static uint64_t interesting(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
		0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
		0x7fffffffffffffffULL, 0x8000000000000000ULL, ~0ULL, ~0ULL - 1,
	};
	switch (rndn(4)) {
	case 0: return v[rndn(ARRAY_SIZE(v))];
	case 1: return rndn(64);
	default: return rnd();
	}
}

/* ---- templates ---- */
enum { IMM_NO, IMM8, IMM16, IMMZ, IMMV };
enum {
	T_BYTE = 1 << 0,    /* 8-bit operand (no 66/REX.W) */
	T_NOMEM = 1 << 1,   /* register form only */
	T_MEM = 1 << 2,     /* memory form only */
	T_LOCK = 1 << 3,    /* may take LOCK with a memory destination */
	T_NO16 = 1 << 4,    /* no 66 prefix */
	T_REP = 1 << 5,     /* string op: may take REP/REPE/REPNE */
	T_COUNT = 1 << 6,   /* flags depend on a shift count */
	T_NOMODRM = 1 << 7,
	T_F3 = 1 << 8,      /* mandatory F3 */
	T_DIV = 1 << 9,     /* may raise #DE */
	T_BSF = 1 << 10,    /* destination undefined when the source is 0 */
	T_SHXD = 1 << 11,   /* SHLD/SHRD */
	T_BTMEM = 1 << 12,  /* bit offset from a register reaches beyond */
};

struct tmpl {
	const char *name;
	uint8_t map;        /* 0: one byte, 1: 0F */
	uint8_t op;
	int8_t digit;       /* ModRM.reg forced, -1 any */
	uint8_t imm;
	uint16_t flags;
	uint64_t undef;     /* flags the SDM leaves undefined */
};

#define ALL_ARITH FL_ARITH
#define T(n, m, o, d, i, f, u) { n, m, o, d, i, f, u }

static const struct tmpl tmpls[] = {
	/* ALU: r/m,r  r,r/m  acc,imm  group 1 */
	T("add", 0, 0x00, -1, IMM_NO, T_BYTE | T_LOCK, 0), T("add", 0, 0x01, -1, IMM_NO, T_LOCK, 0),
	T("add", 0, 0x02, -1, IMM_NO, T_BYTE, 0), T("add", 0, 0x03, -1, IMM_NO, 0, 0),
	T("or", 0, 0x09, -1, IMM_NO, T_LOCK, FL_AF), T("or", 0, 0x0a, -1, IMM_NO, T_BYTE, FL_AF),
	T("adc", 0, 0x11, -1, IMM_NO, T_LOCK, 0), T("adc", 0, 0x12, -1, IMM_NO, T_BYTE, 0),
	T("sbb", 0, 0x19, -1, IMM_NO, T_LOCK, 0), T("sbb", 0, 0x1a, -1, IMM_NO, T_BYTE, 0),
	T("and", 0, 0x21, -1, IMM_NO, T_LOCK, FL_AF), T("and", 0, 0x22, -1, IMM_NO, T_BYTE, FL_AF),
	T("sub", 0, 0x29, -1, IMM_NO, T_LOCK, 0), T("sub", 0, 0x2a, -1, IMM_NO, T_BYTE, 0),
	T("xor", 0, 0x31, -1, IMM_NO, T_LOCK, FL_AF), T("xor", 0, 0x32, -1, IMM_NO, T_BYTE, FL_AF),
	T("cmp", 0, 0x39, -1, IMM_NO, 0, 0), T("cmp", 0, 0x3a, -1, IMM_NO, T_BYTE, 0),
	T("add al", 0, 0x04, -1, IMM8, T_BYTE | T_NOMODRM, 0), T("sbb eax", 0, 0x1d, -1, IMMZ, T_NOMODRM, 0),
	T("cmp eax", 0, 0x3d, -1, IMMZ, T_NOMODRM, 0), T("and eax", 0, 0x25, -1, IMMZ, T_NOMODRM, FL_AF),
	T("grp1 b", 0, 0x80, -1, IMM8, T_BYTE | T_LOCK, 0), T("grp1 z", 0, 0x81, -1, IMMZ, T_LOCK, 0),
	T("grp1 sb", 0, 0x83, -1, IMM8, T_LOCK, 0),
	T("test", 0, 0x85, -1, IMM_NO, 0, FL_AF), T("test b", 0, 0x84, -1, IMM_NO, T_BYTE, FL_AF),
	T("test eax", 0, 0xa9, -1, IMMZ, T_NOMODRM, FL_AF),
	/* moves */
	T("mov", 0, 0x89, -1, IMM_NO, 0, 0), T("mov b", 0, 0x8a, -1, IMM_NO, T_BYTE, 0),
	T("mov imm", 0, 0xc7, 0, IMMZ, 0, 0), T("mov imm b", 0, 0xc6, 0, IMM8, T_BYTE, 0),
	T("mov r imm", 0, 0xb8, -1, IMMV, T_NOMODRM, 0), T("mov r8 imm", 0, 0xb3, -1, IMM8, T_BYTE | T_NOMODRM, 0),
	T("lea", 0, 0x8d, -1, IMM_NO, T_MEM, 0), T("movsxd", 0, 0x63, -1, IMM_NO, 0, 0),
	T("xchg", 0, 0x87, -1, IMM_NO, 0, 0), T("xchg b", 0, 0x86, -1, IMM_NO, T_BYTE, 0),
	T("xchg eax", 0, 0x93, -1, IMM_NO, T_NOMODRM, 0),
	T("movzx b", 1, 0xb6, -1, IMM_NO, 0, 0), T("movzx w", 1, 0xb7, -1, IMM_NO, 0, 0),
	T("movsx b", 1, 0xbe, -1, IMM_NO, 0, 0), T("movsx w", 1, 0xbf, -1, IMM_NO, 0, 0),
	T("cmovcc", 1, 0x40, -1, IMM_NO, 0, 0), T("cmovle", 1, 0x4e, -1, IMM_NO, 0, 0),
	T("setcc", 1, 0x97, 0, IMM_NO, T_BYTE, 0), T("setl", 1, 0x9c, 0, IMM_NO, T_BYTE, 0),
	T("cbw", 0, 0x98, -1, IMM_NO, T_NOMODRM, 0), T("cwd", 0, 0x99, -1, IMM_NO, T_NOMODRM, 0),
	T("lahf", 0, 0x9f, -1, IMM_NO, T_NOMODRM | T_NO16, 0), T("sahf", 0, 0x9e, -1, IMM_NO, T_NOMODRM | T_NO16, 0),
	T("bswap", 1, 0xc9, -1, IMM_NO, T_NOMODRM | T_NO16, 0),
	/* stack */
	T("push", 0, 0x53, -1, IMM_NO, T_NOMODRM, 0), T("pop", 0, 0x5e, -1, IMM_NO, T_NOMODRM, 0),
	T("push imm", 0, 0x68, -1, IMMZ, T_NOMODRM, 0), T("push imm8", 0, 0x6a, -1, IMM8, T_NOMODRM, 0),
	T("push rm", 0, 0xff, 6, IMM_NO, 0, 0), T("pop rm", 0, 0x8f, 0, IMM_NO, 0, 0),
	T("pushf", 0, 0x9c, -1, IMM_NO, T_NOMODRM, 0), T("popf", 0, 0x9d, -1, IMM_NO, T_NOMODRM, 0),
	T("leave", 0, 0xc9, -1, IMM_NO, T_NOMODRM, 0),
	/* unary, inc/dec */
	T("not", 0, 0xf7, 2, IMM_NO, T_LOCK, 0), T("neg", 0, 0xf7, 3, IMM_NO, T_LOCK, 0),
	T("neg b", 0, 0xf6, 3, IMM_NO, T_BYTE | T_LOCK, 0),
	T("inc", 0, 0xff, 0, IMM_NO, T_LOCK, 0), T("dec", 0, 0xff, 1, IMM_NO, T_LOCK, 0),
	T("inc b", 0, 0xfe, 0, IMM_NO, T_BYTE | T_LOCK, 0),
	T("test imm", 0, 0xf7, 0, IMMZ, 0, FL_AF),
	/* multiply, divide */
	T("mul", 0, 0xf7, 4, IMM_NO, 0, FL_SF | FL_ZF | FL_AF | FL_PF),
	T("imul1", 0, 0xf7, 5, IMM_NO, 0, FL_SF | FL_ZF | FL_AF | FL_PF),
	T("mul b", 0, 0xf6, 4, IMM_NO, T_BYTE, FL_SF | FL_ZF | FL_AF | FL_PF),
	T("imul2", 1, 0xaf, -1, IMM_NO, 0, FL_SF | FL_ZF | FL_AF | FL_PF),
	T("imul3", 0, 0x69, -1, IMMZ, 0, FL_SF | FL_ZF | FL_AF | FL_PF),
	T("imul3b", 0, 0x6b, -1, IMM8, 0, FL_SF | FL_ZF | FL_AF | FL_PF),
	T("div", 0, 0xf7, 6, IMM_NO, T_DIV, ALL_ARITH), T("idiv", 0, 0xf7, 7, IMM_NO, T_DIV, ALL_ARITH),
	T("div b", 0, 0xf6, 6, IMM_NO, T_BYTE | T_DIV, ALL_ARITH),
	T("idiv b", 0, 0xf6, 7, IMM_NO, T_BYTE | T_DIV, ALL_ARITH),
	/* shifts and rotates */
	T("grp2 1", 0, 0xd1, -1, IMM_NO, T_COUNT, 0), T("grp2 cl", 0, 0xd3, -1, IMM_NO, T_COUNT, 0),
	T("grp2 ib", 0, 0xc1, -1, IMM8, T_COUNT, 0), T("grp2 b cl", 0, 0xd2, -1, IMM_NO, T_BYTE | T_COUNT, 0),
	T("shld ib", 1, 0xa4, -1, IMM8, T_COUNT | T_SHXD, 0), T("shrd cl", 1, 0xad, -1, IMM_NO, T_COUNT | T_SHXD, 0),
	/* bits */
	T("bt", 1, 0xa3, -1, IMM_NO, T_BTMEM, FL_OF | FL_SF | FL_AF | FL_PF),
	T("bts", 1, 0xab, -1, IMM_NO, T_LOCK | T_BTMEM, FL_OF | FL_SF | FL_AF | FL_PF),
	T("btr", 1, 0xb3, -1, IMM_NO, T_LOCK | T_BTMEM, FL_OF | FL_SF | FL_AF | FL_PF),
	T("grp8", 1, 0xba, -1, IMM8, T_LOCK, FL_OF | FL_SF | FL_AF | FL_PF),
	T("bsf", 1, 0xbc, -1, IMM_NO, T_BSF, FL_CF | FL_OF | FL_SF | FL_AF | FL_PF),
	T("bsr", 1, 0xbd, -1, IMM_NO, T_BSF, FL_CF | FL_OF | FL_SF | FL_AF | FL_PF),
	T("popcnt", 1, 0xb8, -1, IMM_NO, T_F3, 0),
	/* exchange-and-add, compare-and-exchange */
	T("xadd", 1, 0xc1, -1, IMM_NO, T_LOCK, 0), T("xadd b", 1, 0xc0, -1, IMM_NO, T_BYTE | T_LOCK, 0),
	T("cmpxchg", 1, 0xb1, -1, IMM_NO, T_LOCK, 0), T("cmpxchg b", 1, 0xb0, -1, IMM_NO, T_BYTE | T_LOCK, 0),
	/* flags */
	T("cmc", 0, 0xf5, -1, IMM_NO, T_NOMODRM | T_NO16, 0), T("stc", 0, 0xf9, -1, IMM_NO, T_NOMODRM | T_NO16, 0),
	T("std", 0, 0xfd, -1, IMM_NO, T_NOMODRM | T_NO16, 0),
	/* strings: RSI/RDI point into the data page */
	T("movs", 0, 0xa5, -1, IMM_NO, T_NOMODRM | T_REP, 0), T("stos b", 0, 0xaa, -1, IMM_NO, T_NOMODRM | T_REP | T_BYTE, 0),
	T("stos", 0, 0xab, -1, IMM_NO, T_NOMODRM | T_REP, 0),
	T("lods", 0, 0xad, -1, IMM_NO, T_NOMODRM | T_REP, 0), T("cmps", 0, 0xa7, -1, IMM_NO, T_NOMODRM | T_REP, 0),
	T("scas b", 0, 0xae, -1, IMM_NO, T_NOMODRM | T_REP | T_BYTE, 0),
	/* branches: targets stay inside the code page */
	T("jcc", 0, 0x74, -1, IMM8, T_NOMODRM | T_NO16, 0), T("jcc32", 1, 0x8f, -1, IMMZ, T_NOMODRM | T_NO16, 0),
};

struct gen {
	uint8_t code[64];
	unsigned len;
	const struct tmpl *t;
	uint64_t undef;
	bool skip_dest_check;   /* BSF/BSR with a zero source */
	int dest_reg;
};

/* Registers used for addressing get values that keep it in the data page. */
static void gen_case(struct gen *g, struct diff_regs *r)
{
	const struct tmpl *t = &tmpls[rndn(ARRAY_SIZE(tmpls))];
	uint8_t *p = g->code;
	bool byte = t->flags & T_BYTE, mem;
	unsigned size, rex = 0, reg, rm, base, form, index;

	memset(g, 0, sizeof(*g));
	g->t = t;
	g->undef = t->undef;
	g->dest_reg = -1;
	p = g->code;
	for (unsigned i = 0; i < 16; i++)
		r->gpr[i] = interesting();
	r->gpr[4] = STACK_VA + 0x800 + rndn(64) * 8;     /* RSP */
	r->rflags = 0x2 | (rnd() & (FL_ARITH | FL_DF));

	/* operand size */
	size = byte ? 1 : 4;
	if (!byte && !(t->flags & T_NO16) && rndn(4) == 0) {
		*p++ = 0x66;
		size = 2;
	}
	if (t->flags & T_F3)
		*p++ = 0xf3;
	if (t->flags & T_REP && rndn(2))
		*p++ = rndn(2) ? 0xf3 : 0xf2;
	mem = !(t->flags & (T_NOMEM | T_NOMODRM)) && ((t->flags & T_MEM) || rndn(2));
	if (mem && (t->flags & T_LOCK) && rndn(3) == 0)
		*p++ = 0xf0;
	if (!byte && size == 4 && rndn(2)) {
		rex |= 0x48;
		size = 8;
	}
	reg = rndn(16);
	rm = rndn(16);
	if (t->digit >= 0)
		reg = t->digit;
	base = 0;
	form = rndn(3);
	index = 0;
	if (mem) {
		do base = rndn(16); while (base == 4 || base == 5 || base == 12 || base == 13 || base == reg);
		rm = base;
		if (form == 2)
			do index = rndn(16); while (index == 4 || index == base || index == reg);
	}
	if (reg & 8) rex |= 0x44;
	if (rm & 8) rex |= 0x41;
	if (mem && form == 2 && (index & 8)) rex |= 0x42;
	if (byte && rndn(2)) rex |= 0x40;
	if (t->flags & T_NOMODRM) {
		if (t->op >= 0x90 && t->op <= 0x97)
			rex |= (rndn(2) ? 0x41 : 0);
		if ((t->op >= 0x50 && t->op <= 0x5f) || (t->op >= 0xb0 && t->op <= 0xbf) ||
		    (t->map == 1 && t->op >= 0xc8))
			rex |= (rndn(2) ? 0x41 : 0);
		if (t->op == 0x50 || t->op == 0x53 || t->op == 0x5e || t->op == 0x68 || t->op == 0x6a ||
		    t->op == 0x9c || t->op == 0x9d || t->op == 0xc9 || t->map == 1 || t->op == 0x74)
			rex &= ~0x08;            /* default 64-bit / no REX.W meaning */
	}
	if ((t->op == 0x50 || t->op == 0x53 || t->op == 0x5e || t->op == 0x68 || t->op == 0x6a ||
	     t->op == 0x9c || t->op == 0x9d || t->op == 0xc9 || (t->op == 0xff && t->digit == 6) ||
	     (t->op == 0x8f)) && t->map == 0)
		size = size == 2 ? 2 : 8;
	if (rex && rex != 0x40)
		*p++ = rex;
	else if (rex == 0x40)
		*p++ = 0x40;
	if (t->map == 1)
		*p++ = 0x0f;
	*p++ = t->op;
	if (!(t->flags & T_NOMODRM)) {
		if (mem) {
			/* in the page with room on both sides: bit offsets reach +-32 bytes */
			uint64_t off = 64 + rndn(4096 - 192);
			if (form == 2) {               /* SIB: base + index*scale + disp32 0 */
				unsigned scale = rndn(4);
				*p++ = 0x84 | ((reg & 7) << 3);         /* mod 2, rm 4: SIB */
				*p++ = (scale << 6) | ((index & 7) << 3) | (base & 7);
				memset(p, 0, 4);
				p += 4;
				r->gpr[index] = rndn(16);
				r->gpr[base] = DATA_VA + off - (r->gpr[index] << scale);
			} else if (form == 1) {       /* disp8 */
				int8_t d = (int8_t)(rndn(256) - 128);
				*p++ = 0x40 | ((reg & 7) << 3) | (base & 7);
				*p++ = (uint8_t)d;
				r->gpr[base] = DATA_VA + 256 + off % (4096 - 512) - d;
			} else {                      /* disp32 */
				int32_t d = (int32_t)(rndn(0x10000) - 0x8000);
				*p++ = 0x80 | ((reg & 7) << 3) | (base & 7);
				memcpy(p, &d, 4);
				p += 4;
				r->gpr[base] = DATA_VA + off - d;
			}
			if (t->flags & T_BTMEM)
				r->gpr[reg] = rndn(512) - 256; /* bit offset within +-32 bytes */
		} else {
			*p++ = 0xc0 | ((reg & 7) << 3) | (rm & 7);
		}
	}
	switch (t->imm) {
	case IMM8: *p++ = (uint8_t)interesting(); break;
	case IMMZ:
		if (size == 2) { uint16_t v = interesting(); memcpy(p, &v, 2); p += 2; }
		else { uint32_t v = interesting(); memcpy(p, &v, 4); p += 4; }
		break;
	case IMMV:
		if (size == 8) { uint64_t v = interesting(); memcpy(p, &v, 8); p += 8; }
		else if (size == 2) { uint16_t v = interesting(); memcpy(p, &v, 2); p += 2; }
		else { uint32_t v = interesting(); memcpy(p, &v, 4); p += 4; }
		break;
	}
	/* branches: a small forward displacement, landing on the return jump */
	if (t->op == 0x74 && t->map == 0)
		p[-1] = 0;
	if (t->op == 0x8f && t->map == 1)
		memset(p - 4, 0, 4);
	/* strings: RSI/RDI in the data page, a small count */
	if (t->flags & T_REP) {
		r->gpr[6] = DATA_VA + 1024 + rndn(1024);
		r->gpr[7] = DATA_VA + 2048 + rndn(1024);
		r->gpr[1] = rndn(64);
		r->rflags &= ~FL_DF; /* DF set walks down: still inside, but keep it simple */
		if (rndn(2))
			r->rflags |= FL_DF;
	}
	/* shift counts make some flags undefined */
	if (t->flags & T_COUNT) {
		unsigned count = t->imm == IMM8 ? p[-1] : (t->op == 0xd1 ? 1 : r->gpr[1] & 0xff);
		unsigned opsz = byte ? 1 : size;
		unsigned mcount = count & (opsz == 8 ? 63 : 31);
		if (mcount != 1)
			g->undef |= FL_OF;
		g->undef |= FL_AF;
		if (mcount >= opsz * 8)
			g->undef |= FL_CF | FL_OF;
		if ((t->flags & T_SHXD) && opsz == 2 && mcount > 16)
			g->undef |= ALL_ARITH, g->dest_reg = -2; /* result undefined too */
		if (t->flags & T_SHXD)
			g->undef |= mcount > 1 ? FL_OF : 0;
	}
	if ((t->flags & T_BSF) && !mem && !(r->gpr[rm] & (size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1)))
		g->dest_reg = reg;
	if (t->op == 0xc9)
		r->gpr[5] = STACK_VA + 0x400 + rndn(64) * 8; /* RBP for LEAVE */
	g->len = p - g->code;
}

/* ---- native side ---- */
static int run_native(const struct gen *g, struct diff_regs *r, uint8_t *code)
{
	diff_place_code(code, g->code, g->len, diff_native_back);
	diff_native_sig = 0;
	if (sigsetjmp(diff_native_jmp, 1) == 0)
		diff_native_run(r, code, 0);
	return diff_native_sig;
}

/* ---- emu side ---- */
static int run_emu(struct emu_cpu *cpu, struct guest_mem *mem, const struct gen *g,
		   struct diff_regs *r)
{
	uint8_t *code = gpa_ptr(mem, CODE_VA, 4096);
	int st;

	diff_place_code(code, g->code, g->len, NULL);
	memcpy(cpu->gpr, r->gpr, sizeof(r->gpr));
	emu_flags_set(cpu, r->rflags | FL_IF); /* user code always runs with IF set */
	cpu->rip = CODE_VA;
	emu_tlb_flush(cpu, true);
	st = emu_step(cpu);
	memcpy(r->gpr, cpu->gpr, sizeof(r->gpr));
	r->rflags = emu_flags_get(cpu) & ~FL_IF;
	if (st == EMU_FAULT)
		return cpu->exc.vector + 1;
	if (st == EMU_OK && cpu->rip != CODE_VA + g->len && !(g->t->flags & T_REP))
		return -1; /* went somewhere else: only branches to +0 are generated */
	return 0;
}

/* Each case runs twice on emu from the same state: the first run decodes
 * the code page's block into the decoded-block cache, the second executes
 * the cached decode (the bytes validate unchanged). Both must agree; the
 * second run's results are what is compared with the host CPU. */
static int run_emu_twice(struct emu_cpu *cpu, struct guest_mem *mem, const struct gen *g,
			 struct diff_regs *r, uint8_t *emu_data, bool *differ)
{
	static uint8_t pristine[8192], first_mem[8192];
	struct diff_regs first = *r;
	int first_vec, vec;

	memcpy(pristine, emu_data, sizeof(pristine));
	first_vec = run_emu(cpu, mem, g, &first);
	memcpy(first_mem, emu_data, sizeof(first_mem));
	memcpy(emu_data, pristine, sizeof(pristine));
	vec = run_emu(cpu, mem, g, r);
	*differ = vec != first_vec || memcmp(&first, r, sizeof(first)) ||
		  memcmp(first_mem, emu_data, sizeof(first_mem));
	return vec;
}

static const char *sig_class(int sig)
{
	return sig == SIGFPE ? "#DE" : sig == SIGILL ? "#UD" : sig ? "#GP/#PF" : "none";
}

static bool same_fault(int sig, int vec)
{
	if (!sig && !vec)
		return true;
	if (sig == SIGFPE) return vec == EXC_DE + 1;
	if (sig == SIGILL) return vec == EXC_UD + 1;
	if (sig == SIGSEGV || sig == SIGBUS) return vec == EXC_GP + 1 || vec == EXC_PF + 1 || vec == EXC_SS + 1;
	return false;
}

static void dump(const char *who, const struct diff_regs *r)
{
	static const char *names[] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	fprintf(stderr, "  %s:", who);
	for (unsigned i = 0; i < 16; i++)
		fprintf(stderr, "%s%s=%016llx", i % 4 ? " " : "\n    ", names[i], (unsigned long long)r->gpr[i]);
	fprintf(stderr, "\n    rflags=%llx\n", (unsigned long long)r->rflags);
}

int main(int argc, char **argv)
{
	uint64_t failures = 0, faults = 0;
	struct diff_args args;
	struct guest_mem mem;
	struct emu_cpu *cpu;
	uint8_t *code, *data, *emu_data;
	int rc;

	if ((rc = diff_start("diff", argc, argv, &args, &code, &data)))
		return rc;
	diff_signals_init();

	cpu = diff_emu_user64_setup("diff", &mem, 0, 0);
	if (!cpu)
		return 1;
	emu_data = gpa_ptr(&mem, DATA_VA, 8192);

	for (uint64_t n = 0; n < args.cases; n++) {
		struct gen g;
		struct diff_regs in, nat, emu;
		int sig, vec;
		bool cached_differs;
		uint64_t mask;
		bool bad;

		gen_case(&g, &in);
		/* same memory on both sides */
		for (unsigned i = 0; i < 8192; i += 8) {
			uint64_t v = rnd();
			memcpy(data + i, &v, 8);
		}
		if (g.t->op == 0x9d && g.t->map == 0) {
			uint64_t v = 0x2 | (rnd() & (FL_ARITH | FL_DF));
			memcpy(data + (in.gpr[4] - DATA_VA), &v, 8);
		}
		memcpy(emu_data, data, 8192);
		nat = in;
		emu = in;
		sig = run_native(&g, &nat, code);
		vec = run_emu_twice(cpu, &mem, &g, &emu, emu_data, &cached_differs);
		mask = ~g.undef & (FL_ARITH | FL_DF);
		bad = !same_fault(sig, vec) || cached_differs;
		if (!sig && !bad) {
			for (unsigned i = 0; i < 16; i++)
				if (nat.gpr[i] != emu.gpr[i] && !(g.dest_reg == (int)i) && g.dest_reg != -2)
					bad = true;
			if ((nat.rflags & mask) != (emu.rflags & mask))
				bad = true;
			if (g.dest_reg != -2 && memcmp(data, emu_data, 8192))
				bad = true;
		}
		if (sig)
			faults++;
		if (bad) {
			failures++;
			if (cached_differs)
				fprintf(stderr, "diff: the cached decode ran differently from the fresh one\n");
			fprintf(stderr, "diff: MISMATCH case %llu (seed %llu) %s:", (unsigned long long)n,
				(unsigned long long)args.seed, g.t->name);
			for (unsigned i = 0; i < g.len; i++)
				fprintf(stderr, " %02x", g.code[i]);
			fprintf(stderr, "\n  native fault %s, emu fault %d (vector+1), flag mask %llx\n",
				sig_class(sig), vec, (unsigned long long)mask);
			dump("before", &in);
			dump("native", &nat);
			dump("emu", &emu);
			for (unsigned i = 0; i < 8192; i++)
				if (data[i] != emu_data[i]) {
					fprintf(stderr, "  memory differs first at +0x%x: native %02x emu %02x\n",
						i, data[i], emu_data[i]);
					break;
				}
			if (failures >= 10)
				break;
		} else if (args.verbose) {
			fprintf(stderr, "ok %s\n", g.t->name);
		}
	}
	if (emu_jit_on()) { /* on (KUMO_EMU_JIT=2 in the test): the cases the emitter takes ran translated */
		printf("diff: jit on, %llu instructions translated\n",
		       (unsigned long long)emu_jit_translated());
		if (!emu_jit_translated()) {
			fprintf(stderr, "diff: jit on, but nothing was translated\n");
			failures++;
		}
	}
	return diff_finish("diff", &args, faults, failures, cpu, &mem);
}
