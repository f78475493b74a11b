/* MMX, SSE, SSE2, SSE3 and SSSE3: the state moves (FXSAVE/FXRSTOR,
 * LDMXCSR/STMXCSR), the data moves, the integer operations (MMX and XMM
 * forms share their code: 8 or 16 bytes), and the floating-point ones,
 * which run on the host's SSE unit under the guest's MXCSR (rounding, DAZ,
 * FTZ) with every exception masked, so results, NaN propagation and the
 * MXCSR flags are the hardware's own. An exception the guest left unmasked
 * raises #XM (#UD without CR4.OSXMMEXCPT) after setting the flags the
 * masked run saw, without writing the destination; which flags hardware
 * sets for a partly unmasked packed operation may differ from that.
 * The state is cpu->fxsave (FXSAVE layout, see sse.h). */
#include "sse.h"
#include "flags.h"

#include <string.h>

#if EMU_HAVE_SIMD

#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)

typedef float v4sf __attribute__((vector_size(16)));

typedef union {
	uint8_t b[16];
	int8_t sb[16];
	uint16_t w[8];
	int16_t sw[8];
	uint32_t d[4];
	int32_t sd[4];
	uint64_t q[2];
	int64_t sq[2];
	v4sf v;
} vec;

/* ---- state ---- */

static uint8_t *xmm_p(struct emu_cpu *cpu, unsigned n) { return cpu->fxsave + 160 + 16 * (n & 15); }
static uint8_t *mm_p(struct emu_cpu *cpu, unsigned n) { return cpu->fxsave + 32 + 16 * (n & 7); }

static uint32_t mxcsr_get(const struct emu_cpu *cpu)
{
	uint32_t v;
	memcpy(&v, cpu->fxsave + 24, 4);
	return v;
}

static void mxcsr_set(struct emu_cpu *cpu, uint32_t v)
{
	memcpy(cpu->fxsave + 24, &v, 4);
}

#define MXCSR_MASK 0xffffu   /* DAZ and all the rest of the low 16 bits */

/* An MMX instruction: the x87 stack top is 0, every register valid. The
 * registers are kept in stack order (FXSAVE's): with TOP 0, MMi (physical
 * register i) is ST(i), so they rotate when TOP was not 0. */
static void mmx_enter(struct emu_cpu *cpu)
{
	unsigned top = (cpu->fxsave[3] >> 3) & 7;

	if (top) {
		uint8_t r[128];
		for (unsigned j = 0; j < 8; j++)
			memcpy(r + 16 * j, cpu->fxsave + 32 + 16 * ((j - top) & 7), 16);
		memcpy(cpu->fxsave + 32, r, 128);
	}
	cpu->fxsave[3] &= ~0x38;         /* FSW.TOP (bits 11-13) */
	cpu->fxsave[4] = 0xff;
}

static void reg_get(struct ctx *c, bool mmx, unsigned n, vec *v)
{
	memset(v, 0, sizeof(*v));
	if (mmx)
		memcpy(v, mm_p(c->cpu, n), 8);
	else
		memcpy(v, xmm_p(c->cpu, n), 16);
}

static void reg_put(struct ctx *c, bool mmx, unsigned n, const vec *v)
{
	if (mmx) {
		uint8_t *p = mm_p(c->cpu, n);
		memcpy(p, v, 8);
		p[8] = p[9] = 0xff;      /* the exponent of an MMX value: all ones */
	} else {
		memcpy(xmm_p(c->cpu, n), v, 16);
	}
}

/* ---- memory ---- */

static int mem_access(struct ctx *c, uint64_t off, void *buf, unsigned size, bool align, bool write)
{
	uint64_t linear;
	int err;

	off &= addr_mask(c);
	if ((err = emu_linear(c->cpu, c->seg, off, size, write ? ACC_WRITE : ACC_READ, &linear)))
		return err;
	if (align && (linear & (size - 1)))
		return gp0(c);
	return write ? emu_write_linear(c->cpu, linear, buf, size, ACC_WRITE)
		     : emu_read_linear(c->cpu, linear, buf, size, ACC_READ);
}

/* The r/m source: a register (all of it) or size bytes of memory (the
 * rest zero); 16-byte memory operands must be aligned unless unaligned. */
static int src_get(struct ctx *c, bool mmx, unsigned size, vec *v, bool unaligned)
{
	if (!is_mem(c)) {
		reg_get(c, mmx, c->in->rm, v);
		return 0;
	}
	memset(v, 0, sizeof(*v));
	return mem_access(c, c->ea, v, size, size == 16 && !unaligned, false);
}

static int rm_put(struct ctx *c, bool mmx, unsigned size, const vec *v, bool aligned)
{
	if (!is_mem(c)) {
		reg_put(c, mmx, c->in->rm, v);
		return 0;
	}
	return mem_access(c, c->ea, (void *)v, size, aligned, true);
}

/* ---- checks ---- */

static int nm(struct ctx *c) { return emu_fault(c->cpu, EXC_NM, false, 0); }

static int check_sse(struct ctx *c)
{
	if ((c->cpu->cr0 & CR0_EM) || !(c->cpu->cr4 & CR4_OSFXSR))
		return ud(c);
	if (c->cpu->cr0 & CR0_TS)
		return nm(c);
	return 0;
}

static int check_mmx(struct ctx *c)
{
	uint16_t fcw, fsw;

	if (c->cpu->cr0 & CR0_EM)
		return ud(c);
	if (c->cpu->cr0 & CR0_TS)
		return nm(c);
	memcpy(&fcw, c->cpu->fxsave, 2);
	memcpy(&fsw, c->cpu->fxsave + 2, 2);
	if ((fsw & 0x80) || (fsw & ~fcw & 0x3f))   /* a pending x87 exception */
		return emu_fault(c->cpu, EXC_MF, false, 0);
	return 0;
}

/* ---- integer lanes ---- */

static uint64_t lane(const vec *v, unsigned esz, unsigned i)
{
	switch (esz) {
	case 1: return v->b[i];
	case 2: return v->w[i];
	case 4: return v->d[i];
	default: return v->q[i];
	}
}

static void set_lane(vec *v, unsigned esz, unsigned i, uint64_t x)
{
	switch (esz) {
	case 1: v->b[i] = x; break;
	case 2: v->w[i] = x; break;
	case 4: v->d[i] = x; break;
	default: v->q[i] = x; break;
	}
}

static int64_t slane(const vec *v, unsigned esz, unsigned i)
{
	return (int64_t)sext(lane(v, esz, i), esz);
}

static int64_t sat_s(int64_t x, unsigned esz)
{
	int64_t max = (int64_t)(mask_of(esz) >> 1), min = -max - 1;
	return x > max ? max : x < min ? min : x;
}

static int64_t sat_u(int64_t x, unsigned esz)
{
	int64_t max = (int64_t)mask_of(esz);
	return x > max ? max : x < 0 ? 0 : x;
}

enum { SH_RL, SH_RA, SH_LL };

static void shift_lanes(vec *d, unsigned n, unsigned esz, unsigned kind, uint64_t count)
{
	unsigned bits = esz * 8;

	for (unsigned i = 0; i < n / esz; i++) {
		uint64_t x = lane(d, esz, i);
		if (kind == SH_RA)
			x = (uint64_t)(slane(d, esz, i) >> (count >= bits ? bits - 1 : count));
		else if (count >= bits)
			x = 0;
		else
			x = kind == SH_LL ? x << count : x >> count;
		set_lane(d, esz, i, x & mask_of(esz));
	}
}

static void byte_shift(vec *d, unsigned count, bool left)
{
	vec r = { 0 };

	if (count > 16)
		count = 16;
	for (unsigned i = 0; i < 16; i++) {
		if (left && i >= count)
			r.b[i] = d->b[i - count];
		else if (!left && i + count < 16)
			r.b[i] = d->b[i + count];
	}
	*d = r;
}

/* The two-operand integer operations of 0F 60-7F D0-FF (without the moves):
 * d = d op s over n bytes; false if op is none of them. */
static bool int_op(unsigned op, vec *d, const vec *s, unsigned n)
{
	vec r = { 0 };
	unsigned esz, cnt;

	switch (op) {
	case 0x60: case 0x61: case 0x62: case 0x6c:           /* PUNPCKL */
	case 0x68: case 0x69: case 0x6a: case 0x6d: {         /* PUNPCKH */
		unsigned lo = (op & 0xf) < 8 || op == 0x6c;
		esz = op == 0x6c || op == 0x6d ? 8 : 1u << (op & 3);
		cnt = n / esz / 2;
		for (unsigned i = 0; i < cnt; i++) {
			unsigned k = lo ? i : cnt + i;
			set_lane(&r, esz, 2 * i, lane(d, esz, k));
			set_lane(&r, esz, 2 * i + 1, lane(s, esz, k));
		}
		break;
	}
	case 0x63: case 0x67: case 0x6b: {                    /* PACKSSWB PACKUSWB PACKSSDW */
		esz = op == 0x6b ? 4 : 2;
		cnt = n / esz;
		for (unsigned i = 0; i < 2 * cnt; i++) {
			int64_t x = i < cnt ? slane(d, esz, i) : slane(s, esz, i - cnt);
			x = op == 0x67 ? sat_u(x, esz / 2) : sat_s(x, esz / 2);
			set_lane(&r, esz / 2, i, (uint64_t)x & mask_of(esz / 2));
		}
		break;
	}
	case 0x64: case 0x65: case 0x66:                      /* PCMPGT */
		esz = 1u << (op - 0x64);
		for (unsigned i = 0; i < n / esz; i++)
			set_lane(&r, esz, i, slane(d, esz, i) > slane(s, esz, i) ? mask_of(esz) : 0);
		break;
	case 0x74: case 0x75: case 0x76:                      /* PCMPEQ */
		esz = 1u << (op - 0x74);
		for (unsigned i = 0; i < n / esz; i++)
			set_lane(&r, esz, i, lane(d, esz, i) == lane(s, esz, i) ? mask_of(esz) : 0);
		break;
	case 0xd1: case 0xd2: case 0xd3:                      /* PSRL */
		r = *d;
		shift_lanes(&r, n, 1u << (op - 0xd0), SH_RL, s->q[0]);
		break;
	case 0xe1: case 0xe2:                                 /* PSRA */
		r = *d;
		shift_lanes(&r, n, 1u << (op - 0xe0), SH_RA, s->q[0]);
		break;
	case 0xf1: case 0xf2: case 0xf3:                      /* PSLL */
		r = *d;
		shift_lanes(&r, n, 1u << (op - 0xf0), SH_LL, s->q[0]);
		break;
	case 0xd4: case 0xfc: case 0xfd: case 0xfe:           /* PADD */
	case 0xfb: case 0xf8: case 0xf9: case 0xfa:           /* PSUB */
		esz = op == 0xd4 || op == 0xfb ? 8 : 1u << (op & 3);
		for (unsigned i = 0; i < n / esz; i++)
			set_lane(&r, esz, i, (op >= 0xfc || op == 0xd4 ? lane(d, esz, i) + lane(s, esz, i)
							: lane(d, esz, i) - lane(s, esz, i)) & mask_of(esz));
		break;
	case 0xd8: case 0xd9: case 0xdc: case 0xdd:           /* PSUBUS PADDUS */
		esz = (op & 1) + 1;
		for (unsigned i = 0; i < n / esz; i++) {
			int64_t a = lane(d, esz, i), b = lane(s, esz, i);
			set_lane(&r, esz, i, sat_u(op >= 0xdc ? a + b : a - b, esz));
		}
		break;
	case 0xe8: case 0xe9: case 0xec: case 0xed:           /* PSUBS PADDS */
		esz = (op & 1) + 1;
		for (unsigned i = 0; i < n / esz; i++) {
			int64_t a = slane(d, esz, i), b = slane(s, esz, i);
			set_lane(&r, esz, i, (uint64_t)sat_s(op >= 0xec ? a + b : a - b, esz) & mask_of(esz));
		}
		break;
	case 0xda: case 0xde:                                 /* PMINUB PMAXUB */
		for (unsigned i = 0; i < n; i++)
			r.b[i] = (op == 0xda) == (d->b[i] < s->b[i]) ? d->b[i] : s->b[i];
		break;
	case 0xea: case 0xee:                                 /* PMINSW PMAXSW */
		for (unsigned i = 0; i < n / 2; i++)
			r.sw[i] = (op == 0xea) == (d->sw[i] < s->sw[i]) ? d->sw[i] : s->sw[i];
		break;
	case 0xdb: for (unsigned i = 0; i < 2; i++) r.q[i] = d->q[i] & s->q[i]; break;   /* PAND */
	case 0xdf: for (unsigned i = 0; i < 2; i++) r.q[i] = ~d->q[i] & s->q[i]; break;  /* PANDN */
	case 0xeb: for (unsigned i = 0; i < 2; i++) r.q[i] = d->q[i] | s->q[i]; break;   /* POR */
	case 0xef: for (unsigned i = 0; i < 2; i++) r.q[i] = d->q[i] ^ s->q[i]; break;   /* PXOR */
	case 0xe0: case 0xe3:                                 /* PAVGB PAVGW */
		esz = op == 0xe0 ? 1 : 2;
		for (unsigned i = 0; i < n / esz; i++)
			set_lane(&r, esz, i, (lane(d, esz, i) + lane(s, esz, i) + 1) >> 1);
		break;
	case 0xd5: case 0xe5: case 0xe4:                      /* PMULLW PMULHW PMULHUW */
		for (unsigned i = 0; i < n / 2; i++) {
			int64_t p = op == 0xe4 ? (int64_t)d->w[i] * s->w[i] : (int64_t)d->sw[i] * s->sw[i];
			r.w[i] = op == 0xd5 ? (uint16_t)p : (uint16_t)(p >> 16);
		}
		break;
	case 0xf4:                                            /* PMULUDQ */
		for (unsigned i = 0; i < n / 8; i++)
			r.q[i] = (uint64_t)d->d[2 * i] * s->d[2 * i];
		break;
	case 0xf5:                                            /* PMADDWD */
		for (unsigned i = 0; i < n / 4; i++)
			r.d[i] = (uint32_t)((int32_t)d->sw[2 * i] * s->sw[2 * i] +
					    (int32_t)d->sw[2 * i + 1] * s->sw[2 * i + 1]);
		break;
	case 0xf6:                                            /* PSADBW */
		for (unsigned i = 0; i < n / 8; i++) {
			unsigned sum = 0;
			for (unsigned j = 0; j < 8; j++) {
				int x = d->b[8 * i + j] - s->b[8 * i + j];
				sum += x < 0 ? -x : x;
			}
			r.q[i] = sum;
		}
		break;
	default:
		return false;
	}
	if (n == 8)
		r.q[1] = 0;
	*d = r;
	return true;
}

/* SSSE3 (0F 38 00-0B 1C-1E): d = d op s over n bytes. */
static bool ssse3_op(unsigned op, vec *d, const vec *s, unsigned n)
{
	vec r = { 0 };
	unsigned esz, cnt;

	switch (op) {
	case 0x00:                                            /* PSHUFB */
		for (unsigned i = 0; i < n; i++)
			r.b[i] = s->b[i] & 0x80 ? 0 : d->b[s->b[i] & (n - 1)];
		break;
	case 0x01: case 0x02: case 0x03:                      /* PHADDW PHADDD PHADDSW */
	case 0x05: case 0x06: case 0x07:                      /* PHSUBW PHSUBD PHSUBSW */
		esz = (op & 3) == 2 ? 4 : 2;
		cnt = n / esz / 2;
		for (unsigned i = 0; i < 2 * cnt; i++) {
			const vec *v = i < cnt ? d : s;
			unsigned k = 2 * (i % cnt);
			int64_t a = slane(v, esz, k), b = slane(v, esz, k + 1);
			int64_t x = op < 4 ? a + b : a - b;
			if ((op & 3) == 3)
				x = sat_s(x, 2);
			set_lane(&r, esz, i, (uint64_t)x & mask_of(esz));
		}
		break;
	case 0x04:                                            /* PMADDUBSW */
		for (unsigned i = 0; i < n / 2; i++)
			r.sw[i] = sat_s((int)d->b[2 * i] * s->sb[2 * i] + (int)d->b[2 * i + 1] * s->sb[2 * i + 1], 2);
		break;
	case 0x08: case 0x09: case 0x0a:                      /* PSIGN */
		esz = 1u << (op - 8);
		for (unsigned i = 0; i < n / esz; i++) {
			int64_t x = slane(s, esz, i);
			set_lane(&r, esz, i, (x < 0 ? 0 - lane(d, esz, i) : x ? lane(d, esz, i) : 0) & mask_of(esz));
		}
		break;
	case 0x0b:                                            /* PMULHRSW */
		for (unsigned i = 0; i < n / 2; i++)
			r.sw[i] = (int16_t)((((int32_t)d->sw[i] * s->sw[i] >> 14) + 1) >> 1);
		break;
	case 0x1c: case 0x1d: case 0x1e:                      /* PABS */
		esz = 1u << (op - 0x1c);
		for (unsigned i = 0; i < n / esz; i++) {
			int64_t x = slane(s, esz, i);
			set_lane(&r, esz, i, (uint64_t)(x < 0 ? -x : x) & mask_of(esz));
		}
		break;
	default:
		return false;
	}
	*d = r;
	return true;
}

/* ---- floating point on the host's SSE unit ---- */

static inline uint32_t host_enter(uint32_t guest)
{
	uint32_t old, v = (guest & 0xffc0u) | 0x1f80;

	if (!(guest & 0x800))    /* FTZ applies to masked underflow only */
		v &= ~0x8000u;
	asm volatile("stmxcsr %0" : "=m"(old) : : "memory");
	asm volatile("ldmxcsr %0" : : "m"(v) : "memory");
	return old;
}

static inline uint32_t host_leave(uint32_t old)
{
	uint32_t v;
	asm volatile("stmxcsr %0" : "=m"(v) : : "memory");
	asm volatile("ldmxcsr %0" : : "m"(old) : "memory");
	return v & 0x3f;
}

#define A2(insn) asm volatile(insn " %1, %0" : "+x"(d->v) : "x"(s->v) : "memory")
#define A4(a, b, cc, dd) \
	switch (pfx) { case 0: A2(a); break; case 1: A2(b); break; case 2: A2(cc); break; default: A2(dd); break; }
#define AC(insn, k) asm volatile(insn " $" #k ", %1, %0" : "+x"(d->v) : "x"(s->v) : "memory")
#define ACMP(insn) \
	switch (imm & 7) { case 0: AC(insn, 0); break; case 1: AC(insn, 1); break; case 2: AC(insn, 2); break; \
	case 3: AC(insn, 3); break; case 4: AC(insn, 4); break; case 5: AC(insn, 5); break; \
	case 6: AC(insn, 6); break; default: AC(insn, 7); break; }

/* d = d op s for the floating-point opcodes taking two XMM operands;
 * pfx 0 none, 1 66, 2 F3, 3 F2. Returns the MXCSR flags raised, or -1
 * when the opcode/prefix pair is not one of them. */
static int fp_op(unsigned op, unsigned pfx, unsigned imm, vec *d, const vec *s, uint32_t mxcsr)
{
	uint32_t saved = host_enter(mxcsr);
	int bad = 0;

	switch (op) {
	case 0x51: A4("sqrtps", "sqrtpd", "sqrtss", "sqrtsd"); break;
	case 0x52:
		if (pfx == 0) A2("rsqrtps");
		else if (pfx == 2) A2("rsqrtss");
		else bad = 1;
		break;
	case 0x53:
		if (pfx == 0) A2("rcpps");
		else if (pfx == 2) A2("rcpss");
		else bad = 1;
		break;
	case 0x58: A4("addps", "addpd", "addss", "addsd"); break;
	case 0x59: A4("mulps", "mulpd", "mulss", "mulsd"); break;
	case 0x5a: A4("cvtps2pd", "cvtpd2ps", "cvtss2sd", "cvtsd2ss"); break;
	case 0x5b:
		if (pfx == 0) A2("cvtdq2ps");
		else if (pfx == 1) A2("cvtps2dq");
		else if (pfx == 2) A2("cvttps2dq");
		else bad = 1;
		break;
	case 0x5c: A4("subps", "subpd", "subss", "subsd"); break;
	case 0x5d: A4("minps", "minpd", "minss", "minsd"); break;
	case 0x5e: A4("divps", "divpd", "divss", "divsd"); break;
	case 0x5f: A4("maxps", "maxpd", "maxss", "maxsd"); break;
	case 0x7c:
		if (pfx == 1) A2("haddpd");
		else if (pfx == 3) A2("haddps");
		else bad = 1;
		break;
	case 0x7d:
		if (pfx == 1) A2("hsubpd");
		else if (pfx == 3) A2("hsubps");
		else bad = 1;
		break;
	case 0xd0:
		if (pfx == 1) A2("addsubpd");
		else if (pfx == 3) A2("addsubps");
		else bad = 1;
		break;
	case 0xe6:
		if (pfx == 1) A2("cvttpd2dq");
		else if (pfx == 2) A2("cvtdq2pd");
		else if (pfx == 3) A2("cvtpd2dq");
		else bad = 1;
		break;
	case 0xc2:
		switch (pfx) {
		case 0: ACMP("cmpps"); break;
		case 1: ACMP("cmppd"); break;
		case 2: ACMP("cmpss"); break;
		default: ACMP("cmpsd"); break;
		}
		break;
	default: bad = 1; break;
	}
	saved = host_leave(saved);
	return bad ? -1 : (int)saved;
}

/* Unmasked, underflow is a tiny result even when exact (masked, only an
 * inexact one): the host's masked run shows the exact ones as denormal
 * results. esz 4 or 8, lanes from 0. */
static unsigned tiny_exact(const vec *d, unsigned esz, unsigned lanes)
{
	for (unsigned i = 0; i < lanes; i++) {
		uint64_t x = esz == 4 ? d->d[i] : d->q[i];
		uint64_t exp = esz == 4 ? (x >> 23) & 0xff : (x >> 52) & 0x7ff;
		uint64_t man = esz == 4 ? x & 0x7fffff : x & 0xfffffffffffffULL;
		if (!exp && man)
			return 0x10;
	}
	return 0;
}

static unsigned underflow_unmasked(unsigned op, unsigned pfx, const vec *d)
{
	switch (op) {
	case 0x58: case 0x59: case 0x5c: case 0x5e:
		return pfx == 0 ? tiny_exact(d, 4, 4) : pfx == 1 ? tiny_exact(d, 8, 2) :
		       pfx == 2 ? tiny_exact(d, 4, 1) : tiny_exact(d, 8, 1);
	case 0x5a:
		return pfx == 1 ? tiny_exact(d, 4, 2) : pfx == 3 ? tiny_exact(d, 4, 1) : 0;
	case 0x7c: case 0x7d: case 0xd0:
		return pfx == 1 ? tiny_exact(d, 8, 2) : tiny_exact(d, 4, 4);
	}
	return 0;
}

/* Sets the flags; an unmasked one faults (the destination not written). */
static int fp_flags(struct ctx *c, unsigned flags)
{
	uint32_t m = mxcsr_get(c->cpu);

	mxcsr_set(c->cpu, m | flags);
	if (flags & ~(m >> 7) & 0x3f)
		return c->cpu->cr4 & CR4_OSXMMEXCPT ? emu_fault(c->cpu, EXC_XM, false, 0) : ud(c);
	return 0;
}

/* The size of the memory operand of a floating-point opcode. */
static unsigned fp_mem_size(unsigned op, unsigned pfx)
{
	switch (op) {
	case 0x5a: return pfx == 1 ? 16 : pfx == 2 ? 4 : 8;
	case 0xe6: return pfx == 2 ? 8 : 16;
	case 0x5b: case 0x7c: case 0x7d: case 0xd0: return 16;
	}
	return pfx == 2 ? 4 : pfx == 3 ? 8 : 16;
}

/* ---- FXSAVE / FXRSTOR / LDMXCSR / STMXCSR / fences (0F AE) ---- */

static int group15(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	unsigned digit = in->reg & 7;
	uint8_t buf[512];
	uint32_t v;
	int err;

	if (!is_mem(c)) {
		if (in->rep || in->opsize_prefix || digit < 5)
			return ud(c);      /* RDFSBASE & co., not advertised */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);   /* LFENCE MFENCE SFENCE */
		return 0;
	}
	if (in->rep)
		return ud(c);
	switch (digit) {
	case 0:                                           /* FXSAVE */
	case 1:                                           /* FXRSTOR */
		if (cpu->cr0 & (CR0_EM | CR0_TS))
			return nm(c);
		{
			uint64_t linear;
			if ((err = emu_linear(cpu, c->seg, c->ea, 512, digit ? ACC_READ : ACC_WRITE, &linear)))
				return err;
			if (linear & 15)
				return gp0(c);
		}
		if (digit == 0) {
			memcpy(buf, cpu->fxsave, 512);
			v = MXCSR_MASK;
			memcpy(buf + 28, &v, 4);
			/* XMM8-15 only in 64-bit mode; the reserved and software
			 * bytes after them are not written */
			return mem_access(c, c->ea, buf, cpu->mode == MODE_LONG64 ? 416 : 288, false, true);
		}
		if ((err = mem_access(c, c->ea, buf, 512, false, false)))
			return err;
		memcpy(&v, buf + 24, 4);
		if (v & ~MXCSR_MASK)
			return gp0(c);
		memcpy(cpu->fxsave, buf, 24);
		memcpy(cpu->fxsave + 24, &v, 4);
		memcpy(cpu->fxsave + 32, buf + 32, cpu->mode == MODE_LONG64 ? 256 + 128 : 128 + 128);
		cpu->fxsave[5] = 0;                       /* reserved */
		cpu->fxsave[7] &= 0x07;                   /* FOP: 11 bits */
		for (unsigned i = 0; i < 8; i++)          /* ST(i) are 10 bytes of 16 */
			memset(cpu->fxsave + 32 + 16 * i + 10, 0, 6);
		return 0;
	case 2:                                           /* LDMXCSR */
	case 3:                                           /* STMXCSR */
		if ((err = check_sse(c)))
			return err;
		if (digit == 3) {
			v = mxcsr_get(cpu);
			return mem_access(c, c->ea, &v, 4, false, true);
		}
		if ((err = mem_access(c, c->ea, &v, 4, false, false)))
			return err;
		if (v & ~MXCSR_MASK)
			return gp0(c);
		mxcsr_set(cpu, v);
		return 0;
	case 7: {                                         /* CLFLUSH */
		/* Caches are the host's business; it faults like a byte read. */
		uint8_t b;
		if (in->opsize_prefix)
			return ud(c);                     /* CLFLUSHOPT: not advertised */
		return mem_access(c, c->ea, &b, 1, false, false);
	}
	}
	return ud(c);    /* XSAVE & co.: not advertised */
}

/* ---- conversions with GPR / MMX operands (0F 2A 2C 2D) ---- */

static int cvt_gpr(struct ctx *c, unsigned pfx)
{
	const struct emu_insn *in = c->in;
	unsigned op = in->op, flags;
	bool w = in->opsize == 8;
	uint32_t saved;
	vec d, s;
	uint64_t g = 0;
	int err;

	if (op == 0x2a) {
		if (pfx >= 2) {                               /* CVTSI2SS/SD xmm, r/m32/64 */
			if ((err = check_sse(c)) || (err = rm_read(c, w ? 8 : 4, &g)))
				return err;
			reg_get(c, false, in->reg, &d);
			saved = host_enter(mxcsr_get(c->cpu));
			if (pfx == 2 && w) asm volatile("cvtsi2ssq %1, %0" : "+x"(d.v) : "r"(g) : "memory");
			else if (pfx == 2) asm volatile("cvtsi2ssl %1, %0" : "+x"(d.v) : "r"((uint32_t)g) : "memory");
			else if (w) asm volatile("cvtsi2sdq %1, %0" : "+x"(d.v) : "r"(g) : "memory");
			else asm volatile("cvtsi2sdl %1, %0" : "+x"(d.v) : "r"((uint32_t)g) : "memory");
			flags = host_leave(saved);
			if ((err = fp_flags(c, flags)))
				return err;
			reg_put(c, false, in->reg, &d);
			return 0;
		}
		/* CVTPI2PS / CVTPI2PD xmm, mm/m64 */
		if ((err = check_sse(c)) || (!is_mem(c) && (err = check_mmx(c))))
			return err;
		if (!is_mem(c))
			mmx_enter(c->cpu);
		if ((err = src_get(c, true, 8, &s, false)))
			return err;
		reg_get(c, false, in->reg, &d);
		saved = host_enter(mxcsr_get(c->cpu));
		if (pfx == 0) asm volatile("cvtpi2ps %1, %0" : "+x"(d.v) : "y"(s.q[0]) : "memory");
		else asm volatile("cvtpi2pd %1, %0" : "+x"(d.v) : "y"(s.q[0]) : "memory");
		flags = host_leave(saved);
		if ((err = fp_flags(c, flags)))
			return err;
		if (!is_mem(c))
			mmx_enter(c->cpu);
		reg_put(c, false, in->reg, &d);
		return 0;
	}
	/* 2C (truncating) / 2D */
	if (pfx >= 2) {                                       /* CVT(T)SS2SI / CVT(T)SD2SI */
		if ((err = check_sse(c)) || (err = src_get(c, false, pfx == 2 ? 4 : 8, &s, false)))
			return err;
		saved = host_enter(mxcsr_get(c->cpu));
#define CVQ(insn) asm volatile(insn " %1, %0" : "=r"(g) : "x"(s.v) : "memory")
#define CVL(insn) do { uint32_t t32; asm volatile(insn " %1, %0" : "=r"(t32) : "x"(s.v) : "memory"); g = t32; } while (0)
		if (pfx == 2) {
			if (op == 0x2c) { if (w) CVQ("cvttss2siq"); else CVL("cvttss2sil"); }
			else { if (w) CVQ("cvtss2siq"); else CVL("cvtss2sil"); }
		} else {
			if (op == 0x2c) { if (w) CVQ("cvttsd2siq"); else CVL("cvttsd2sil"); }
			else { if (w) CVQ("cvtsd2siq"); else CVL("cvtsd2sil"); }
		}
#undef CVQ
#undef CVL
		flags = host_leave(saved);
		if ((err = fp_flags(c, flags)))
			return err;
		reg_write(c, in->reg, w ? 8 : 4, g);
		return 0;
	}
	/* CVT(T)PS2PI mm, xmm/m64; CVT(T)PD2PI mm, xmm/m128 */
	if ((err = check_sse(c)) || (err = check_mmx(c)))
		return err;
	mmx_enter(c->cpu);
	if ((err = src_get(c, false, pfx ? 16 : 8, &s, false)))
		return err;
	saved = host_enter(mxcsr_get(c->cpu));
	{
		uint64_t r;
		if (pfx == 0 && op == 0x2c) asm volatile("cvttps2pi %1, %0" : "=y"(r) : "x"(s.v) : "memory");
		else if (pfx == 0) asm volatile("cvtps2pi %1, %0" : "=y"(r) : "x"(s.v) : "memory");
		else if (op == 0x2c) asm volatile("cvttpd2pi %1, %0" : "=y"(r) : "x"(s.v) : "memory");
		else asm volatile("cvtpd2pi %1, %0" : "=y"(r) : "x"(s.v) : "memory");
		asm volatile("emms" ::: "memory");
		flags = host_leave(saved);
		if ((err = fp_flags(c, flags)))
			return err;
		memset(&d, 0, sizeof(d));
		d.q[0] = r;
	}
	mmx_enter(c->cpu);
	reg_put(c, true, in->reg, &d);
	return 0;
}

/* ---- the 0F map ---- */

static int exec_0f(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	unsigned op = in->op;
	unsigned pfx = in->rep == 0xf3 ? 2 : in->rep == 0xf2 ? 3 : in->opsize_prefix ? 1 : 0;
	unsigned imm = in->imm & 0xff;
	bool mmx = pfx == 0, w = in->opsize == 8;
	unsigned n = mmx ? 8 : 16;
	vec d, s;
	uint64_t g;
	int err, fl;

	if (op == 0xae)
		return group15(c);
	if (op == 0xc3) {                                     /* MOVNTI m, r32/64 */
		if (pfx || !is_mem(c))
			return ud(c);
		return rm_write(c, w ? 8 : 4, reg_read(c, in->reg, w ? 8 : 4));
	}
	if (op == 0x77) {                                     /* EMMS */
		if (pfx)
			return ud(c);
		if ((err = check_mmx(c)))
			return err;
		mmx_enter(cpu);                       /* TOP 0 too */
		cpu->fxsave[4] = 0;
		return 0;
	}
	if (op == 0x2a || op == 0x2c || op == 0x2d)
		return cvt_gpr(c, pfx);

	/* everything else: SSE (or MMX for the no-prefix integer forms) */
	if (mmx && ((op >= 0x60 && op <= 0x7f) || op >= 0xc4) && op != 0xc6 && op != 0xd0 &&
	    op != 0xf0 && op != 0xd6 && op != 0x7c && op != 0x7d && op != 0xe6 && op != 0x6c && op != 0x6d) {
		if ((err = check_mmx(c)))
			return err;
		if (op != 0x77)
			mmx_enter(cpu);
	} else if ((err = check_sse(c))) {
		return err;
	}

	switch (op) {
	case 0x10: case 0x11:                                 /* MOVUPS/PD MOVSS MOVSD */
		if (pfx < 2) {
			if (op == 0x10) {
				if ((err = src_get(c, false, 16, &s, true)))
					return err;
				reg_put(c, false, in->reg, &s);
				return 0;
			}
			reg_get(c, false, in->reg, &d);
			return rm_put(c, false, 16, &d, false);
		}
		{
			unsigned sz = pfx == 2 ? 4 : 8;
			if (op == 0x10) {
				if ((err = src_get(c, false, sz, &s, false)))
					return err;
				if (!is_mem(c)) {
					reg_get(c, false, in->reg, &d);
					memcpy(&d, &s, sz);
					s = d;
				}
				reg_put(c, false, in->reg, &s);
				return 0;
			}
			reg_get(c, false, in->reg, &s);
			if (is_mem(c))
				return mem_access(c, c->ea, &s, sz, false, true);
			reg_get(c, false, in->rm, &d);
			memcpy(&d, &s, sz);
			reg_put(c, false, in->rm, &d);
			return 0;
		}
	case 0x12: case 0x16:                                 /* MOVLPS/PD MOVHLPS MOVHPS/PD MOVLHPS, SSE3 dups */
		reg_get(c, false, in->reg, &d);
		if (pfx == 2) {                               /* MOVSLDUP / MOVSHDUP */
			if ((err = src_get(c, false, 16, &s, false)))
				return err;
			unsigned o = op == 0x16;
			d.d[0] = d.d[1] = s.d[o];
			d.d[2] = d.d[3] = s.d[2 + o];
		} else if (pfx == 3) {                        /* MOVDDUP */
			if (op != 0x12)
				return ud(c);
			if ((err = src_get(c, false, 8, &s, false)))
				return err;
			d.q[0] = d.q[1] = s.q[0];
		} else {
			if (pfx == 1 && !is_mem(c))
				return ud(c);
			if ((err = src_get(c, false, 8, &s, false)))
				return err;
			if (op == 0x12)
				d.q[0] = is_mem(c) ? s.q[0] : s.q[1];
			else
				d.q[1] = s.q[0];
		}
		reg_put(c, false, in->reg, &d);
		return 0;
	case 0x13: case 0x17:                                 /* MOVLPS/PD MOVHPS/PD m64, xmm */
		if (pfx > 1 || !is_mem(c))
			return ud(c);
		reg_get(c, false, in->reg, &d);
		return mem_access(c, c->ea, &d.q[op == 0x17], 8, false, true);
	case 0x14: case 0x15:                                 /* UNPCKLPS/PD UNPCKHPS/PD */
		if (pfx > 1)
			return ud(c);
		if ((err = src_get(c, false, 16, &s, false)))
			return err;
		reg_get(c, false, in->reg, &d);
		{
			vec r;
			unsigned h = op == 0x15;
			if (pfx) {
				r.q[0] = d.q[h];
				r.q[1] = s.q[h];
			} else {
				r.d[0] = d.d[2 * h]; r.d[1] = s.d[2 * h];
				r.d[2] = d.d[2 * h + 1]; r.d[3] = s.d[2 * h + 1];
			}
			reg_put(c, false, in->reg, &r);
		}
		return 0;
	case 0x28: case 0x29: case 0x2b:                      /* MOVAPS/PD, MOVNTPS/PD */
		if (pfx > 1)
			return ud(c);
		if (op == 0x28) {
			if ((err = src_get(c, false, 16, &s, false)))
				return err;
			reg_put(c, false, in->reg, &s);
			return 0;
		}
		reg_get(c, false, in->reg, &d);
		return rm_put(c, false, 16, &d, true);
	case 0x2e: case 0x2f: {                               /* UCOMISS/SD COMISS/SD */
		uint8_t zf, pf, cf;
		uint32_t saved;
		if (pfx > 1)
			return ud(c);
		if ((err = src_get(c, false, pfx ? 8 : 4, &s, false)))
			return err;
		reg_get(c, false, in->reg, &d);
		saved = host_enter(mxcsr_get(cpu));
#define CMI(insn) asm volatile(insn " %4, %3\n\tsetz %0\n\tsetp %1\n\tsetc %2" \
			       : "=q"(zf), "=q"(pf), "=q"(cf) : "x"(d.v), "x"(s.v) : "cc", "memory")
		if (op == 0x2e) { if (pfx) CMI("ucomisd"); else CMI("ucomiss"); }
		else { if (pfx) CMI("comisd"); else CMI("comiss"); }
#undef CMI
		if ((err = fp_flags(c, host_leave(saved))))
			return err;
		emu_flags_update(cpu, FL_ARITH, (zf ? FL_ZF : 0) | (pf ? FL_PF : 0) | (cf ? FL_CF : 0));
		return 0;
	}
	case 0x50:                                            /* MOVMSKPS/PD */
		if (pfx > 1 || is_mem(c))
			return ud(c);
		reg_get(c, false, in->rm, &s);
		g = pfx ? (s.q[0] >> 63) | (s.q[1] >> 63) << 1
			: (s.d[0] >> 31) | (s.d[1] >> 31) << 1 | (s.d[2] >> 31) << 2 | (s.d[3] >> 31) << 3;
		reg_write(c, in->reg, 4, g);
		return 0;
	case 0x54: case 0x55: case 0x56: case 0x57:           /* ANDPS ANDNPS ORPS XORPS (PD) */
		if (pfx > 1)
			return ud(c);
		if ((err = src_get(c, false, 16, &s, false)))
			return err;
		reg_get(c, false, in->reg, &d);
		int_op(op == 0x54 ? 0xdb : op == 0x55 ? 0xdf : op == 0x56 ? 0xeb : 0xef, &d, &s, 16);
		reg_put(c, false, in->reg, &d);
		return 0;
	case 0x51 ... 0x53: case 0x58 ... 0x5f: case 0x7c: case 0x7d: case 0xd0: case 0xe6: case 0xc2:
		if (op == 0xd0 && pfx == 0)
			return ud(c);
		if ((err = src_get(c, false, fp_mem_size(op, pfx), &s, false)))
			return err;
		reg_get(c, false, in->reg, &d);
		if ((fl = fp_op(op, pfx, imm, &d, &s, mxcsr_get(cpu))) < 0)
			return ud(c);
		if (!(mxcsr_get(cpu) & 0x800))
			fl |= underflow_unmasked(op, pfx, &d);
		if ((err = fp_flags(c, fl)))
			return err;
		reg_put(c, false, in->reg, &d);
		return 0;
	case 0x6e:                                            /* MOVD/MOVQ mm/xmm, r/m */
		if (pfx > 1)
			return ud(c);
		if ((err = rm_read(c, w ? 8 : 4, &g)))
			return err;
		memset(&d, 0, sizeof(d));
		d.q[0] = g;
		break;
	case 0x7e:                                            /* MOVD/MOVQ r/m, mm/xmm; MOVQ xmm, xmm/m64 */
		if (pfx == 2) {
			if ((err = src_get(c, false, 8, &s, false)))
				return err;
			s.q[1] = 0;
			reg_put(c, false, in->reg, &s);
			return 0;
		}
		if (pfx > 1)
			return ud(c);
		reg_get(c, mmx, in->reg, &s);
		if ((err = rm_write(c, w ? 8 : 4, s.q[0])))
			return err;
		if (mmx)
			mmx_enter(cpu);
		return 0;
	case 0x6f:                                            /* MOVQ mm, mm/m64; MOVDQA MOVDQU */
		if (pfx == 3)
			return ud(c);
		if ((err = src_get(c, mmx, n, &d, pfx == 2)))
			return err;
		break;
	case 0x7f: case 0xe7:                                 /* MOVQ mm/m64, mm; MOVDQA MOVDQU; MOVNTQ/DQ */
		if (pfx == 3 || (op == 0xe7 && pfx == 2))
			return ud(c);
		reg_get(c, mmx, in->reg, &d);
		if ((err = rm_put(c, mmx, n, &d, pfx == 1)))
			return err;
		if (mmx)
			mmx_enter(cpu);
		return 0;
	case 0xd6:                                            /* MOVQ xmm/m64, xmm; MOVQ2DQ; MOVDQ2Q */
		if (pfx == 1) {
			reg_get(c, false, in->reg, &d);
			d.q[1] = 0;
			return is_mem(c) ? mem_access(c, c->ea, &d, 8, false, true) : (reg_put(c, false, in->rm, &d), 0);
		}
		if (pfx == 0 || is_mem(c) || (err = check_mmx(c)))
			return pfx == 0 || is_mem(c) ? ud(c) : err;
		mmx_enter(cpu);
		if (pfx == 2) {                               /* MOVQ2DQ xmm, mm */
			reg_get(c, true, in->rm, &d);
			reg_put(c, false, in->reg, &d);
		} else {                                      /* MOVDQ2Q mm, xmm */
			reg_get(c, false, in->rm, &d);
			d.q[1] = 0;
			reg_put(c, true, in->reg, &d);
		}
		mmx_enter(cpu);
		return 0;
	case 0xf0:                                            /* LDDQU */
		if (pfx != 3 || !is_mem(c))
			return ud(c);
		if ((err = src_get(c, false, 16, &s, true)))
			return err;
		reg_put(c, false, in->reg, &s);
		return 0;
	case 0x70:                                            /* PSHUFW PSHUFD PSHUFHW PSHUFLW */
		if ((err = src_get(c, mmx, n, &s, false)))
			return err;
		d = s;
		if (pfx == 0 || pfx == 3)
			for (unsigned i = 0; i < 4; i++)
				d.w[i] = s.w[(imm >> (2 * i)) & 3];
		else if (pfx == 2)
			for (unsigned i = 0; i < 4; i++)
				d.w[4 + i] = s.w[4 + ((imm >> (2 * i)) & 3)];
		else
			for (unsigned i = 0; i < 4; i++)
				d.d[i] = s.d[(imm >> (2 * i)) & 3];
		break;
	case 0x71: case 0x72: case 0x73: {                    /* shifts by imm8 */
		unsigned digit = in->reg & 7, esz = op == 0x71 ? 2 : op == 0x72 ? 4 : 8;
		if (pfx > 1 || is_mem(c))
			return ud(c);
		reg_get(c, mmx, in->rm, &d);
		if (op == 0x73 && (digit == 3 || digit == 7)) {
			if (mmx)
				return ud(c);
			byte_shift(&d, imm, digit == 7);
		} else if (digit == 2 || (digit == 4 && op != 0x73) || digit == 6) {
			shift_lanes(&d, n, esz, digit == 2 ? SH_RL : digit == 4 ? SH_RA : SH_LL, imm);
		} else {
			return ud(c);
		}
		reg_put(c, mmx, in->rm, &d);
		if (mmx)
			mmx_enter(cpu);
		return 0;
	}
	case 0xc4:                                            /* PINSRW */
		if (pfx > 1)
			return ud(c);
		if ((err = rm_read(c, 2, &g)))
			return err;
		reg_get(c, mmx, in->reg, &d);
		d.w[imm & (n / 2 - 1)] = g;
		break;
	case 0xc5:                                            /* PEXTRW r32, mm/xmm, imm8 */
		if (pfx > 1 || is_mem(c))
			return ud(c);
		reg_get(c, mmx, in->rm, &s);
		reg_write(c, in->reg, 4, s.w[imm & (n / 2 - 1)]);
		if (mmx)
			mmx_enter(cpu);
		return 0;
	case 0xc6:                                            /* SHUFPS SHUFPD */
		if (pfx > 1)
			return ud(c);
		if ((err = src_get(c, false, 16, &s, false)))
			return err;
		reg_get(c, false, in->reg, &d);
		{
			vec r;
			if (pfx) {
				r.q[0] = d.q[imm & 1];
				r.q[1] = s.q[(imm >> 1) & 1];
			} else {
				r.d[0] = d.d[imm & 3]; r.d[1] = d.d[(imm >> 2) & 3];
				r.d[2] = s.d[(imm >> 4) & 3]; r.d[3] = s.d[(imm >> 6) & 3];
			}
			reg_put(c, false, in->reg, &r);
		}
		return 0;
	case 0xd7:                                            /* PMOVMSKB */
		if (pfx > 1 || is_mem(c))
			return ud(c);
		reg_get(c, mmx, in->rm, &s);
		g = 0;
		for (unsigned i = 0; i < n; i++)
			g |= (uint64_t)(s.b[i] >> 7) << i;
		reg_write(c, in->reg, 4, g);
		if (mmx)
			mmx_enter(cpu);
		return 0;
	case 0xf7: {                                          /* MASKMOVQ MASKMOVDQU */
		unsigned seg = in->seg != SR_NONE ? in->seg : SR_DS;
		if (pfx > 1 || is_mem(c))
			return ud(c);
		reg_get(c, mmx, in->reg, &d);
		reg_get(c, mmx, in->rm, &s);
		for (unsigned i = 0; i < n; i++)
			if ((s.b[i] & 0x80) &&
			    (err = emu_write(cpu, seg, (GPR(c, X86_RDI) + i) & addr_mask(c), 1, d.b[i])))
				return err;
		if (mmx)
			mmx_enter(cpu);
		return 0;
	}
	default:
		if (pfx > 1 || (pfx == 0 && (op == 0x6c || op == 0x6d)))
			return ud(c);
		if (!((op >= 0x60 && op <= 0x6d) || (op >= 0x74 && op <= 0x76) || op >= 0xd1))
			return ud(c);
		/* MMX PUNPCKL* read 4 bytes of memory */
		if ((err = src_get(c, mmx, mmx && op >= 0x60 && op <= 0x62 ? 4 : n, &s, false)))
			return err;
		reg_get(c, mmx, in->reg, &d);
		if (!int_op(op, &d, &s, n))
			return ud(c);
		break;
	}
	/* the result to the ModRM.reg register */
	reg_put(c, mmx, in->reg, &d);
	if (mmx)
		mmx_enter(cpu);
	return 0;
}

static int exec_ssse3(struct ctx *c)
{
	const struct emu_insn *in = c->in;
	bool mmx = !in->opsize_prefix;
	unsigned n = mmx ? 8 : 16;
	vec d, s;
	int err;

	if (in->rep)
		return ud(c);
	if ((err = mmx ? check_mmx(c) : check_sse(c)))
		return err;
	if (mmx)
		mmx_enter(c->cpu);
	if ((err = src_get(c, mmx, n, &s, false)))
		return err;
	reg_get(c, mmx, in->reg, &d);
	if (in->map == MAP_0F3A) {                            /* PALIGNR */
		uint8_t t[32] = { 0 };
		unsigned imm = in->imm & 0xff;
		memcpy(t, &s, n);
		memcpy(t + n, &d, n);
		memset(&d, 0, sizeof(d));
		for (unsigned i = 0; i < n; i++)
			d.b[i] = i + imm < 2 * n ? t[i + imm] : 0;
	} else if (!ssse3_op(in->op, &d, &s, n)) {
		return ud(c);
	}
	reg_put(c, mmx, in->reg, &d);
	if (mmx)
		mmx_enter(c->cpu);
	return 0;
}

int emu_exec_simd(struct ctx *c, bool *handled)
{
	const struct emu_insn *in = c->in;
	unsigned op = in->op;

	*handled = true;
	switch (in->map) {
	case MAP_1B:
		if (op >= 0xd8 && op <= 0xdf)
			return emu_exec_x87(c);
		break;
	case MAP_0F:
		if ((op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2f) || (op >= 0x50 && op <= 0x7f) ||
		    op == 0xae || (op >= 0xc2 && op <= 0xc6) || op >= 0xd0)
			return op == 0xff ? ud(c) : exec_0f(c);
		break;
	case MAP_0F38:
		if (op <= 0x0b || (op >= 0x1c && op <= 0x1e))
			return exec_ssse3(c);
		break;
	case MAP_0F3A:
		if (op == 0x0f)
			return exec_ssse3(c);
		break;
	}
	*handled = false;
	return 0;
}

#else /* !EMU_HAVE_SIMD */

int emu_exec_simd(struct ctx *c, bool *handled)
{
	(void)c;
	*handled = false;
	return 0;
}

#endif
