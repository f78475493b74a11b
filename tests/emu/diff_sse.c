/* Differential testing of the emu engine's MMX/SSE..SSSE3 instructions
 * against the host CPU (the integer ones are diff.c's).
 *
 * Each case is one random instruction from a table of templates, with
 * random registers (XMM0-15, MM0-7, GPRs), register or memory forms
 * (aligned or not), immediates, MXCSR (rounding, DAZ, FTZ, sticky flags,
 * now and then an unmasked exception: #XM), the x87 state (TOP, tags,
 * control and status words, 80-bit values; x87 instructions too, every
 * valid form) and operand values (NaNs quiet and signalling,
 * infinities, denormals, zeros of both signs, extremes, random bits). It
 * runs natively and on an emu CPU in 64-bit user mode from the same state
 * (loaded natively with FXRSTOR64); GPRs, RFLAGS, the FXSAVE image (but the
 * x87 instruction/data pointers and MXCSR_MASK, which are the host's), the
 * data page and the fault must match.
 *
 * usage: diff_sse [--cases N] [--seed S] [--verbose] */
#include "diff_common.h"
#include "exec.h"
#include "flags.h"

#include "kumo/memory.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fx: FXSAVE64 layout: FCW 0, FSW 2, FTW 4, MXCSR 24, ST(i)/MMi 32 + 16i,
 * XMMi 160 + 16i */
struct sse_regs {
	uint64_t gpr[16];
	uint64_t rflags;
	uint64_t pad;
	uint8_t fx[512] __attribute__((aligned(16)));
};
_Static_assert(__builtin_offsetof(struct sse_regs, fx) == 144, "layout");
#define XMM(r, i) ((r)->fx + 160 + 16 * (i))
#define STI(r, i) ((r)->fx + 32 + 16 * (i))


static uint32_t rnd_f32(void)
{
	static const uint32_t v[] = {
		0, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
		0x7fa00000, 0xff800001, 0x00000001, 0x807fffff, 0x00400000, 0x7f7fffff, 0xff7fffff,
		0x00800000, 0x80800000, 0x4f000000, 0xcf000000, 0x5f000000, 0xdf000000, 0x3f000000,
		0x40490fdb, 0x4b000000, 0x3fc00000, 0x4effffff,
	};
	switch (rndn(4)) {
	case 0: return v[rndn(ARRAY_SIZE(v))];
	case 1: { float f = (float)((int)rndn(2001) - 1000) / (float)(1 + rndn(16)); uint32_t u; memcpy(&u, &f, 4); return u; }
	case 2: return (uint32_t)rnd();
	default: return (uint32_t)rnd() & 0x807fffff; /* denormal */
	}
}

/* A bit of MXCSR's upper half that the host's MXCSR_MASK also reserves
 * (AMD hosts allow bit 17, MM), or 0: both must then raise #GP. */
static uint32_t reserved_mxcsr_bit(void)
{
	static uint32_t host_mask;
	uint32_t bit = 1u << (16 + rndn(16));

	if (!host_mask) {
		uint8_t fx[512] __attribute__((aligned(16)));
		memset(fx, 0, sizeof(fx));
		asm volatile("fxsave64 %0" : "=m"(fx));
		memcpy(&host_mask, fx + 28, 4);
		if (!host_mask)
			host_mask = 0xffbf; /* SDM 11.6.6: none saved */
	}
	return bit & host_mask ? 0 : bit;
}

static uint64_t rnd_f64(void)
{
	static const uint64_t v[] = {
		0, 0x8000000000000000ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
		0x7ff0000000000000ULL, 0xfff0000000000000ULL, 0x7ff8000000000000ULL, 0xfff8000000000000ULL,
		0x7ff4000000000000ULL, 0xfff0000000000001ULL, 1, 0x800fffffffffffffULL,
		0x7fefffffffffffffULL, 0x0010000000000000ULL, 0x41e0000000000000ULL, 0xc1e0000000000000ULL,
		0x43e0000000000000ULL, 0xc3e0000000000000ULL, 0x3fe0000000000000ULL, 0x400921fb54442d18ULL,
		0x47efffffe0000000ULL, 0x36a0000000000000ULL, 0x41dfffffffc00000ULL,
	};
	switch (rndn(4)) {
	case 0: return v[rndn(ARRAY_SIZE(v))];
	case 1: { double f = (double)((int)rndn(20001) - 10000) / (double)(1 + rndn(16)); uint64_t u; memcpy(&u, &f, 8); return u; }
	case 2: return rnd();
	default: return rnd() & 0x800fffffffffffffULL;
	}
}

static uint64_t rnd_int(void)
{
	static const uint64_t v[] = { 0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
				      0x80000000, 0xffffffff, 0x7fffffffffffffffULL, 0x8000000000000000ULL, ~0ULL };
	switch (rndn(3)) {
	case 0: return v[rndn(ARRAY_SIZE(v))];
	case 1: return rndn(80);
	default: return rnd();
	}
}

static void rnd_vec(uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i += 8) {
		uint64_t q;
		switch (rndn(4)) {
		case 0: q = rnd_f64(); break;
		case 1: q = rnd_f32() | (uint64_t)rnd_f32() << 32; break;
		case 2: q = rnd_int(); break;
		default: q = rnd(); break;
		}
		memcpy(p + i, &q, 8);
	}
}

/* ---- templates ---- */
enum {
	F_MMX = 1 << 0,      /* no prefix: MM registers in reg and rm */
	F_REGONLY = 1 << 1,
	F_MEMONLY = 1 << 2,
	F_IMM = 1 << 3,
	F_GSRC = 1 << 4,     /* rm is a GPR (register form) */
	F_GDST = 1 << 5,     /* reg is a GPR */
	F_GREG = 1 << 6,     /* reg is a GPR source (MOVNTI) */
	F_IMM8 = 1 << 7,     /* predicate 0-7 */
	F_MMSRC = 1 << 8,    /* rm is an MM register (reg XMM) */
	F_MMDST = 1 << 9,    /* reg is an MM register (rm XMM) */
	F_LDMXCSR = 1 << 10,
	F_RDI = 1 << 11,     /* MASKMOV: [RDI] in the data page */
	F_X87 = 1 << 12,     /* D8-DF: a random valid form */
};

struct tmpl {
	const char *name;
	uint8_t pfx, map, op;
	int8_t digit;
	uint16_t flags;
};

#define T(n, p, m, o, d, f) { n, p, m, o, d, f }
#define N 0
static const struct tmpl tmpls[] = {
	T("movups", N, 1, 0x10, -1, 0), T("movupd", 0x66, 1, 0x10, -1, 0), T("movss", 0xf3, 1, 0x10, -1, 0),
	T("movsd", 0xf2, 1, 0x10, -1, 0), T("movups st", N, 1, 0x11, -1, 0), T("movss st", 0xf3, 1, 0x11, -1, 0),
	T("movsd st", 0xf2, 1, 0x11, -1, 0), T("movupd st", 0x66, 1, 0x11, -1, 0),
	T("movlps/hlps", N, 1, 0x12, -1, 0), T("movlpd", 0x66, 1, 0x12, -1, F_MEMONLY),
	T("movddup", 0xf2, 1, 0x12, -1, 0), T("movsldup", 0xf3, 1, 0x12, -1, 0),
	T("movlps st", N, 1, 0x13, -1, F_MEMONLY), T("movlpd st", 0x66, 1, 0x13, -1, F_MEMONLY),
	T("unpcklps", N, 1, 0x14, -1, 0), T("unpcklpd", 0x66, 1, 0x14, -1, 0),
	T("unpckhps", N, 1, 0x15, -1, 0), T("unpckhpd", 0x66, 1, 0x15, -1, 0),
	T("movhps/lhps", N, 1, 0x16, -1, 0), T("movhpd", 0x66, 1, 0x16, -1, F_MEMONLY),
	T("movshdup", 0xf3, 1, 0x16, -1, 0),
	T("movhps st", N, 1, 0x17, -1, F_MEMONLY), T("movhpd st", 0x66, 1, 0x17, -1, F_MEMONLY),
	T("movaps", N, 1, 0x28, -1, 0), T("movapd", 0x66, 1, 0x28, -1, 0),
	T("movaps st", N, 1, 0x29, -1, 0), T("movapd st", 0x66, 1, 0x29, -1, 0),
	T("cvtsi2ss", 0xf3, 1, 0x2a, -1, F_GSRC), T("cvtsi2sd", 0xf2, 1, 0x2a, -1, F_GSRC),
	T("cvtpi2ps", N, 1, 0x2a, -1, F_MMSRC), T("cvtpi2pd", 0x66, 1, 0x2a, -1, F_MMSRC),
	T("movntps", N, 1, 0x2b, -1, F_MEMONLY), T("movntpd", 0x66, 1, 0x2b, -1, F_MEMONLY),
	T("cvttss2si", 0xf3, 1, 0x2c, -1, F_GDST), T("cvttsd2si", 0xf2, 1, 0x2c, -1, F_GDST),
	T("cvtss2si", 0xf3, 1, 0x2d, -1, F_GDST), T("cvtsd2si", 0xf2, 1, 0x2d, -1, F_GDST),
	T("cvttps2pi", N, 1, 0x2c, -1, F_MMDST), T("cvtpd2pi", 0x66, 1, 0x2d, -1, F_MMDST),
	T("cvtps2pi", N, 1, 0x2d, -1, F_MMDST), T("cvttpd2pi", 0x66, 1, 0x2c, -1, F_MMDST),
	T("ucomiss", N, 1, 0x2e, -1, 0), T("ucomisd", 0x66, 1, 0x2e, -1, 0),
	T("comiss", N, 1, 0x2f, -1, 0), T("comisd", 0x66, 1, 0x2f, -1, 0),
	T("movmskps", N, 1, 0x50, -1, F_GDST | F_REGONLY), T("movmskpd", 0x66, 1, 0x50, -1, F_GDST | F_REGONLY),
	T("sqrtps", N, 1, 0x51, -1, 0), T("sqrtpd", 0x66, 1, 0x51, -1, 0), T("sqrtss", 0xf3, 1, 0x51, -1, 0),
	T("sqrtsd", 0xf2, 1, 0x51, -1, 0), T("rsqrtps", N, 1, 0x52, -1, 0), T("rsqrtss", 0xf3, 1, 0x52, -1, 0),
	T("rcpps", N, 1, 0x53, -1, 0), T("rcpss", 0xf3, 1, 0x53, -1, 0),
	T("andps", N, 1, 0x54, -1, 0), T("andnpd", 0x66, 1, 0x55, -1, 0), T("orps", N, 1, 0x56, -1, 0),
	T("xorpd", 0x66, 1, 0x57, -1, 0),
	/* 58-5F in all four forms: filled in by gen */
	T("fp 58-5f ps", N, 1, 0x58, -2, 0), T("fp 58-5f pd", 0x66, 1, 0x58, -2, 0),
	T("fp 58-5f ss", 0xf3, 1, 0x58, -2, 0), T("fp 58-5f sd", 0xf2, 1, 0x58, -2, 0),
	T("cvtdq2ps", N, 1, 0x5b, -1, 0), T("cvtps2dq", 0x66, 1, 0x5b, -1, 0), T("cvttps2dq", 0xf3, 1, 0x5b, -1, 0),
	/* 60-6B 74-76 D1-FE integer, MMX and XMM: filled in by gen */
	T("int mmx", N, 1, 0x60, -3, F_MMX), T("int xmm", 0x66, 1, 0x60, -3, 0),
	T("int mmx", N, 1, 0xd1, -4, F_MMX), T("int xmm", 0x66, 1, 0xd1, -4, 0),
	T("punpcklqdq", 0x66, 1, 0x6c, -1, 0), T("punpckhqdq", 0x66, 1, 0x6d, -1, 0),
	T("movd mm", N, 1, 0x6e, -1, F_MMX | F_GSRC), T("movd xmm", 0x66, 1, 0x6e, -1, F_GSRC),
	T("movq mm", N, 1, 0x6f, -1, F_MMX), T("movdqa", 0x66, 1, 0x6f, -1, 0), T("movdqu", 0xf3, 1, 0x6f, -1, 0),
	T("pshufw", N, 1, 0x70, -1, F_MMX | F_IMM), T("pshufd", 0x66, 1, 0x70, -1, F_IMM),
	T("pshufhw", 0xf3, 1, 0x70, -1, F_IMM), T("pshuflw", 0xf2, 1, 0x70, -1, F_IMM),
	T("psrlw i mm", N, 1, 0x71, 2, F_MMX | F_IMM | F_REGONLY), T("psraw i", 0x66, 1, 0x71, 4, F_IMM | F_REGONLY),
	T("psllw i", 0x66, 1, 0x71, 6, F_IMM | F_REGONLY), T("psrad i mm", N, 1, 0x72, 4, F_MMX | F_IMM | F_REGONLY),
	T("psrld i", 0x66, 1, 0x72, 2, F_IMM | F_REGONLY), T("pslld i", 0x66, 1, 0x72, 6, F_IMM | F_REGONLY),
	T("psrlq i", 0x66, 1, 0x73, 2, F_IMM | F_REGONLY), T("psllq i mm", N, 1, 0x73, 6, F_MMX | F_IMM | F_REGONLY),
	T("psrldq", 0x66, 1, 0x73, 3, F_IMM | F_REGONLY), T("pslldq", 0x66, 1, 0x73, 7, F_IMM | F_REGONLY),
	T("haddpd", 0x66, 1, 0x7c, -1, 0), T("haddps", 0xf2, 1, 0x7c, -1, 0),
	T("hsubpd", 0x66, 1, 0x7d, -1, 0), T("hsubps", 0xf2, 1, 0x7d, -1, 0),
	T("movd r mm", N, 1, 0x7e, -1, F_MMX | F_GSRC), T("movd r xmm", 0x66, 1, 0x7e, -1, F_GSRC),
	T("movq xmm", 0xf3, 1, 0x7e, -1, 0),
	T("movq mm st", N, 1, 0x7f, -1, F_MMX), T("movdqa st", 0x66, 1, 0x7f, -1, 0), T("movdqu st", 0xf3, 1, 0x7f, -1, 0),
	T("emms", N, 1, 0x77, -1, F_MMX | F_REGONLY),
	T("cmpps", N, 1, 0xc2, -1, F_IMM8), T("cmppd", 0x66, 1, 0xc2, -1, F_IMM8),
	T("cmpss", 0xf3, 1, 0xc2, -1, F_IMM8), T("cmpsd", 0xf2, 1, 0xc2, -1, F_IMM8),
	T("movnti", N, 1, 0xc3, -1, F_MEMONLY | F_GREG),
	T("pinsrw mm", N, 1, 0xc4, -1, F_MMX | F_GSRC | F_IMM), T("pinsrw", 0x66, 1, 0xc4, -1, F_GSRC | F_IMM),
	T("pextrw mm", N, 1, 0xc5, -1, F_MMX | F_GDST | F_IMM | F_REGONLY),
	T("pextrw", 0x66, 1, 0xc5, -1, F_GDST | F_IMM | F_REGONLY),
	T("shufps", N, 1, 0xc6, -1, F_IMM), T("shufpd", 0x66, 1, 0xc6, -1, F_IMM),
	T("addsubpd", 0x66, 1, 0xd0, -1, 0), T("addsubps", 0xf2, 1, 0xd0, -1, 0),
	T("movq st", 0x66, 1, 0xd6, -1, 0), T("movq2dq", 0xf3, 1, 0xd6, -1, F_MMSRC | F_REGONLY),
	T("movdq2q", 0xf2, 1, 0xd6, -1, F_MMDST | F_REGONLY),
	T("pmovmskb mm", N, 1, 0xd7, -1, F_MMX | F_GDST | F_REGONLY), T("pmovmskb", 0x66, 1, 0xd7, -1, F_GDST | F_REGONLY),
	T("cvttpd2dq", 0x66, 1, 0xe6, -1, 0), T("cvtdq2pd", 0xf3, 1, 0xe6, -1, 0), T("cvtpd2dq", 0xf2, 1, 0xe6, -1, 0),
	T("movntq", N, 1, 0xe7, -1, F_MMX | F_MEMONLY), T("movntdq", 0x66, 1, 0xe7, -1, F_MEMONLY),
	T("lddqu", 0xf2, 1, 0xf0, -1, F_MEMONLY),
	T("maskmovq", N, 1, 0xf7, -1, F_MMX | F_REGONLY | F_RDI), T("maskmovdqu", 0x66, 1, 0xf7, -1, F_REGONLY | F_RDI),
	T("ssse3 mm", N, 2, 0x00, -5, F_MMX), T("ssse3", 0x66, 2, 0x00, -5, 0),
	T("palignr mm", N, 3, 0x0f, -1, F_MMX | F_IMM), T("palignr", 0x66, 3, 0x0f, -1, F_IMM),
	T("ldmxcsr", N, 1, 0xae, 2, F_MEMONLY | F_LDMXCSR), T("stmxcsr", N, 1, 0xae, 3, F_MEMONLY),
	T("fxsave", N, 1, 0xae, 0, F_MEMONLY), T("fxrstor", N, 1, 0xae, 1, F_MEMONLY),
	T("lfence", N, 1, 0xae, 5, F_REGONLY), T("mfence", N, 1, 0xae, 6, F_REGONLY),
	T("sfence", N, 1, 0xae, 7, F_REGONLY),
	T("x87 d8", N, 0, 0xd8, -1, F_X87), T("x87 d9", N, 0, 0xd9, -1, F_X87), T("x87 da", N, 0, 0xda, -1, F_X87),
	T("x87 db", N, 0, 0xdb, -1, F_X87), T("x87 dc", N, 0, 0xdc, -1, F_X87), T("x87 dd", N, 0, 0xdd, -1, F_X87),
	T("x87 de", N, 0, 0xde, -1, F_X87), T("x87 df", N, 0, 0xdf, -1, F_X87),
	T("x87 d9 reg", N, 0, 0xd9, -1, F_X87 | F_REGONLY), T("x87 de reg", N, 0, 0xde, -1, F_X87 | F_REGONLY),
	T("x87 db reg", N, 0, 0xdb, -1, F_X87 | F_REGONLY), T("x87 dd reg", N, 0, 0xdd, -1, F_X87 | F_REGONLY),
};

/* The x87 register forms that exist and #UD-free aliases aside. */
static bool x87_reg_ok(unsigned op, unsigned m)
{
	switch (op) {
	case 0xd8: return true;
	case 0xd9: return m < 0xd1 || m == 0xe0 || m == 0xe1 || m == 0xe4 || m == 0xe5 ||
			  (m >= 0xe8 && m <= 0xee) || m >= 0xf0;
	case 0xda: return m < 0xe0 || m == 0xe9;
	case 0xdb: return m < 0xe0 || m == 0xe2 || m == 0xe3 || (m >= 0xe8 && m < 0xf8);
	case 0xdc: return m < 0xd0 || m >= 0xe0;
	case 0xdd: return m < 0xc8 || (m >= 0xd0 && m < 0xf0);
	case 0xde: return m < 0xd0 || m == 0xd9 || m >= 0xe0;
	default: return m == 0xe0 || (m >= 0xe8 && m < 0xf8);
	}
}

static void rnd_x87(struct sse_regs *r)
{
	static const uint16_t exps[] = { 0, 0x7fff, 0x3fff, 0xbfff, 0x401e, 0x403e, 0x3ffe, 0x0001, 0xffff, 0x8000 };
	uint16_t fcw = 0x037f & ~0x0f00, fsw;
	unsigned top = rndn(8);

	fcw |= (rndn(4) << 10) | ((uint16_t[]){ 0, 2, 3, 3 })[rndn(4)] << 8;
	if (rndn(8) == 0)
		fcw &= ~(1u << rndn(6));               /* an unmasked exception */
	fsw = (top << 11) | (rndn(4) == 0 ? rnd() & 0x4700 : 0);
	if (rndn(8) == 0)
		fsw |= rnd() & 0x3f;
	if (fsw & ~fcw & 0x3f)
		fsw |= 0x8080;                          /* ES, B */
	memcpy(r->fx, &fcw, 2);
	memcpy(r->fx + 2, &fsw, 2);
	r->fx[4] = rndn(3) ? 0xff : rnd();
	for (unsigned i = 0; i < 8; i++) {
		uint64_t m = rndn(3) ? rnd() | (1ULL << 63) : rnd_int();
		uint16_t e = rndn(2) ? exps[rndn(ARRAY_SIZE(exps))] : 0x3fff + (int)rndn(128) - 64 + (rndn(2) ? 0x8000 : 0);
		memcpy(STI(r, i), &m, 8);
		memcpy(STI(r, i) + 8, &e, 2);
	}
}

static const uint8_t int_ops_a[] = { 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b,
				     0x74, 0x75, 0x76 };
static const uint8_t int_ops_b[] = { 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde,
				     0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec,
				     0xed, 0xee, 0xef, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf8, 0xf9, 0xfa,
				     0xfb, 0xfc, 0xfd, 0xfe };
static const uint8_t ssse3_ops[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x1c, 0x1d, 0x1e };

struct gen {
	uint8_t code[32];
	unsigned len;
	const struct tmpl *t;
	uint8_t op;
	bool mem_env;
	unsigned mem_off, env_ptr, env_ptr_len;
};

static void gen_case(struct gen *g, struct sse_regs *r, uint8_t *data)
{
	const struct tmpl *t = &tmpls[rndn(ARRAY_SIZE(tmpls))];
	uint8_t *p = g->code, op = t->op;
	unsigned reg = rndn(16), rm = rndn(16), base, rex = 0;
	bool mem;

	memset(g, 0, sizeof(*g));
	g->t = t;
	switch (t->digit) {
	case -2: op = 0x58 + rndn(8); if (op == 0x5b) op = 0x5a; break;
	case -3: op = int_ops_a[rndn(ARRAY_SIZE(int_ops_a))]; break;
	case -4: op = int_ops_b[rndn(ARRAY_SIZE(int_ops_b))]; break;
	case -5: op = ssse3_ops[rndn(ARRAY_SIZE(ssse3_ops))]; break;
	}
	g->op = op;
	for (unsigned i = 0; i < 16; i++)
		r->gpr[i] = rnd_int();
	r->gpr[4] = STACK_VA + 0x800;
	r->rflags = 0x2 | (rnd() & FL_ARITH);
	memset(r->fx, 0, sizeof(r->fx));
	{
		uint32_t mxcsr = 0x1f80 | (rnd() & 0x3f) | (rndn(4) << 13) | (rndn(4) == 0 ? 0x40 : 0) |
				 (rndn(4) == 0 ? 0x8000 : 0);
		if (rndn(8) == 0)
			mxcsr &= ~(0x80u << rndn(6));       /* an unmasked exception */
		memcpy(r->fx + 24, &mxcsr, 4);
	}
	for (unsigned i = 0; i < 16; i++)
		rnd_vec(XMM(r, i), 16);
	rnd_x87(r);
	if (!(t->flags & F_X87) && rndn(2)) {
		/* MMX as most code leaves it: TOP 0, no pending exception */
		r->fx[2] = r->fx[3] = 0;
	}

	mem = !(t->flags & F_REGONLY) && ((t->flags & F_MEMONLY) || rndn(2));
	if (t->digit >= 0)
		reg = t->digit;
	if (t->flags & F_X87) {
		if (mem) {
			reg = rndn(8);
			while ((op == 0xd9 && reg == 1) || (op == 0xdb && (reg == 4 || reg == 6)) || (op == 0xdd && reg == 5))
				reg = rndn(8);
		} else {
			unsigned m;
			do m = 0xc0 + rndn(64); while (!x87_reg_ok(op, m));
			reg = (m >> 3) & 7;
			rm = m & 7;
		}
	}
	do base = rndn(16); while (base == 4 || base == 5 || base == 12 || base == 13 ||
				   ((t->flags & (F_GDST | F_GREG)) && base == reg));
	if (mem)
		rm = base;
	if (t->pfx)
		*p++ = t->pfx;
	if ((t->flags & F_X87) && rndn(8) == 0)
		*p++ = 0x66;                            /* 16-bit FNSTENV & co. */
	if (rndn(2) || (t->flags & (F_GSRC | F_GDST | F_GREG)))
		rex |= rndn(2) ? 0x48 : 0;
	if (reg & 8) rex |= 0x44;
	if (rm & 8) rex |= 0x41;
	if (rex || rndn(4) == 0)
		*p++ = 0x40 | rex;
	if (t->map)
		*p++ = 0x0f;
	if (t->map == 2) *p++ = 0x38;
	if (t->map == 3) *p++ = 0x3a;
	*p++ = op;
	if (op == 0x77 && t->map == 1) {
		/* EMMS: no ModRM */
	} else if (mem) {
		uint64_t off = rndn(4) ? rndn(4096 / 16) * 16 : rndn(4096 - 16);
		int32_t d = (int32_t)(rndn(0x10000) - 0x8000);
		if (off > 4096 - 512)
			off = off % (4096 - 512);
		*p++ = 0x80 | ((reg & 7) << 3) | (base & 7);
		memcpy(p, &d, 4);
		p += 4;
		r->gpr[base] = DATA_VA + off - d;
		g->mem_off = off;
		if (t->map == 1 && op == 0xae && (reg == 0 || reg == 1)) {
			if (off > 4096 - 512)
				off = off & 0x7f;
			r->gpr[base] = DATA_VA + off - d;
			g->mem_off = off;
			g->mem_env = true;           /* FIP FDP MXCSR_MASK: the host's */
			g->env_ptr = 8;
			g->env_ptr_len = 24;
			if (reg == 1) {
				struct sse_regs tmp;
				uint32_t mxcsr = 0x1f80 | (rnd() & 0x3f) | (rndn(4) << 13);
				if (rndn(16) == 0)
					mxcsr |= reserved_mxcsr_bit();
				for (unsigned i = 0; i < 16; i++)
					rnd_vec(XMM(&tmp, i), 16);
				rnd_x87(&tmp);
				memcpy(data + off, tmp.fx, 160 + 256);
				memcpy(data + off + 24, &mxcsr, 4);
			}
		}
		if ((t->flags & F_X87) && (op == 0xd9 || op == 0xdd) && (reg == 6 || reg == 4)) {
			bool o16 = g->code[0] == 0x66 && !(rex & 8);
			g->mem_env = reg == 6;
			g->env_ptr = o16 ? 6 : 12;
			g->env_ptr_len = o16 ? 8 : 16;
			if (reg == 4) {
				/* FLDENV/FRSTOR: a sane image: the control word masks all */
				uint16_t cw = 0x037f;
				memcpy(data + off, &cw, 2);
				memset(data + off + (o16 ? 2 : 4), 0, 2);
			}
		}
		if (t->flags & F_LDMXCSR) {
			uint32_t v = 0x1f80 | (rnd() & 0x3f) | (rndn(4) << 13) | (rndn(2) ? 0x8040 : 0);
			if (rndn(8) == 0)
				v |= reserved_mxcsr_bit();
			memcpy(data + off, &v, 4);
		}
	} else {
		*p++ = 0xc0 | ((reg & 7) << 3) | (rm & 7);
	}
	if (t->flags & F_IMM)
		*p++ = rndn(2) ? rndn(40) : rnd();
	if (t->flags & F_IMM8)
		*p++ = rndn(8);
	if (t->flags & F_RDI)
		r->gpr[7] = DATA_VA + 64 + rndn(1024);
	g->len = p - g->code;
}

/* ---- native ---- */
static int run_native(const struct gen *g, struct sse_regs *r, uint8_t *code)
{
	uint32_t host = 0x1f80;

	diff_place_code(code, g->code, g->len, diff_native_back);
	diff_native_sig = 0;
	if (sigsetjmp(diff_native_jmp, 1) == 0)
		diff_native_run(r, code, 1);
	asm volatile("fninit\n\temms\n\tldmxcsr %0" : : "m"(host) : "memory");
	return diff_native_sig;
}

/* ---- emu ---- */
static int run_emu(struct emu_cpu *cpu, struct guest_mem *mem, const struct gen *g, struct sse_regs *r)
{
	uint8_t *code = gpa_ptr(mem, CODE_VA, 4096);
	int st;

	diff_place_code(code, g->code, g->len, NULL);
	memcpy(cpu->gpr, r->gpr, sizeof(r->gpr));
	emu_flags_set(cpu, r->rflags | FL_IF);
	memcpy(cpu->fxsave, r->fx, 512);
	cpu->rip = CODE_VA;
	emu_tlb_flush(cpu, true);
	st = emu_step(cpu);
	memcpy(r->gpr, cpu->gpr, sizeof(r->gpr));
	r->rflags = emu_flags_get(cpu) & ~FL_IF;
	memcpy(r->fx, cpu->fxsave, 512);
	if (st == EMU_FAULT)
		return cpu->exc.vector + 1;
	if (st == EMU_OK && cpu->rip != CODE_VA + g->len)
		return -1;
	return 0;
}

/* Each case runs twice on emu from the same state: the first run decodes
 * the code page's block into the decoded-block cache, the second executes
 * the cached decode (the bytes validate unchanged). Both must agree; the
 * second run's results are what is compared with the host CPU. */
static int run_emu_twice(struct emu_cpu *cpu, struct guest_mem *mem, const struct gen *g,
			 struct sse_regs *r, uint8_t *emu_data, bool *differ)
{
	static uint8_t pristine[8192], first_mem[8192];
	struct sse_regs first = *r;
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

static bool same_fault(int sig, int vec)
{
	if (!sig && !vec)
		return true;
	if (sig == SIGILL) return vec == EXC_UD + 1;
	if (sig == SIGFPE) return vec == EXC_XM + 1 || vec == EXC_MF + 1;
	if (sig == SIGSEGV || sig == SIGBUS) return vec == EXC_GP + 1 || vec == EXC_PF + 1 || vec == EXC_SS + 1;
	return false;
}

static void dump(const char *who, const struct sse_regs *r)
{
	uint32_t mxcsr;
	uint16_t fcw, fsw;
	memcpy(&mxcsr, r->fx + 24, 4);
	memcpy(&fcw, r->fx, 2);
	memcpy(&fsw, r->fx + 2, 2);
	fprintf(stderr, "  %s: rflags=%llx mxcsr=%08x fcw=%04x fsw=%04x ftw=%02x fop=%02x%02x\n   ", who,
		(unsigned long long)r->rflags, mxcsr, fcw, fsw, r->fx[4], r->fx[7], r->fx[6]);
	for (unsigned i = 0; i < 16; i++)
		fprintf(stderr, " r%u=%llx", i, (unsigned long long)r->gpr[i]);
	fprintf(stderr, "\n");
	for (unsigned i = 0; i < 16; i++) {
		uint64_t q[2];
		memcpy(q, XMM(r, i), 16);
		fprintf(stderr, "    xmm%-2u %016llx %016llx%s", i, (unsigned long long)q[1],
			(unsigned long long)q[0], i < 8 ? "" : "\n");
		if (i < 8) {
			uint64_t m;
			uint16_t e;
			memcpy(&m, STI(r, i), 8);
			memcpy(&e, STI(r, i) + 8, 2);
			fprintf(stderr, "   st%u %04x %016llx\n", i, e, (unsigned long long)m);
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t failures = 0, faults = 0;
	struct diff_args args;
	struct guest_mem mem;
	struct emu_cpu *cpu;
	uint8_t *code, *data, *emu_data;
	int rc;

	if ((rc = diff_start("diff_sse", argc, argv, &args, &code, &data)))
		return rc;
	if (!__builtin_cpu_supports("ssse3")) {
		printf("SKIP: the host lacks SSSE3\n");
		return 77;
	}
	diff_signals_init();

	/* CR0.MP, CR0.NE, CR4.OSFXSR, CR4.OSXMMEXCPT */
	cpu = diff_emu_user64_setup("diff_sse", &mem, (1ULL << 1) | (1ULL << 5), (1ULL << 9) | (1ULL << 10));
	if (!cpu)
		return 1;
	emu_data = gpa_ptr(&mem, DATA_VA, 8192);

	for (uint64_t n = 0; n < args.cases; n++) {
		struct gen g;
		struct sse_regs in, nat, emu;
		int sig, vec;
		bool cached_differs;
		bool bad;

		for (unsigned i = 0; i < 8192; i += 8) {
			uint64_t v = rnd();
			if (i < 4096 && rndn(2))
				rnd_vec(data + i, 8);
			else
				memcpy(data + i, &v, 8);
		}
		gen_case(&g, &in, data);
		memcpy(emu_data, data, 8192);
		nat = in;
		emu = in;
		sig = run_native(&g, &nat, code);
		vec = run_emu_twice(cpu, &mem, &g, &emu, emu_data, &cached_differs);
		bad = !same_fault(sig, vec) || cached_differs;
		if (!sig && !bad) {
			/* FNSTENV/FNSAVE images: the pointer fields are the
			 * host's (FCS/FDS deprecation, FDP only on exceptions) */
			if (g.mem_env)
				memcpy(emu_data + g.mem_off + g.env_ptr, data + g.mem_off + g.env_ptr, g.env_ptr_len);
			/* FIP and FDP (8-23): emu keeps the guest's, as hardware
			 * does only for some instructions on some models */
			/* and MXCSR_MASK (28-31): the host's own */
			if (memcmp(nat.gpr, emu.gpr, sizeof(nat.gpr)) || memcmp(nat.fx, emu.fx, 8) ||
			    memcmp(nat.fx + 24, emu.fx + 24, 4) || memcmp(nat.fx + 32, emu.fx + 32, 464 - 32) ||
			    (nat.rflags & (FL_ARITH | FL_DF)) != (emu.rflags & (FL_ARITH | FL_DF)) ||
			    memcmp(data, emu_data, 8192))
				bad = true;
		}
		if (sig)
			faults++;
		if (bad) {
			failures++;
			if (cached_differs)
				fprintf(stderr, "diff_sse: the cached decode ran differently from the fresh one\n");
			fprintf(stderr, "diff_sse: MISMATCH case %llu (seed %llu) %s op %02x:", (unsigned long long)n,
				(unsigned long long)args.seed, g.t->name, g.op);
			for (unsigned i = 0; i < g.len; i++)
				fprintf(stderr, " %02x", g.code[i]);
			fprintf(stderr, "\n  native signal %d, emu fault %d (vector+1)\n", sig, vec);
			dump("before", &in);
			dump("native", &nat);
			dump("emu", &emu);
			for (unsigned i = 0; i < 464; i++)
				if (nat.fx[i] != emu.fx[i] && (i < 8 || (i >= 24 && i < 28) || i >= 32)) {
					fprintf(stderr, "  state differs first at fx+%u: native %02x emu %02x\n",
						i, nat.fx[i], emu.fx[i]);
					break;
				}
			for (unsigned i = 0; i < 8192; i++)
				if (data[i] != emu_data[i]) {
					fprintf(stderr, "  memory differs first at +0x%x: native %02x emu %02x\n",
						i, data[i], emu_data[i]);
					break;
				}
			if (failures >= 5)
				break;
		} else if (args.verbose) {
			fprintf(stderr, "ok %s %02x\n", g.t->name, g.op);
		}
	}
	return diff_finish("diff_sse", &args, faults, failures, cpu, &mem);
}
