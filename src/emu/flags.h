/* Lazy arithmetic flags: an instruction records its operands and result;
 * CF PF AF ZF SF OF are computed only when something reads them. */
#ifndef KUMO_EMU_FLAGS_H
#define KUMO_EMU_FLAGS_H

#include "cpu.h"

#define FL_CF (1ULL << 0)
#define FL_PF (1ULL << 2)
#define FL_AF (1ULL << 4)
#define FL_ZF (1ULL << 6)
#define FL_SF (1ULL << 7)
#define FL_TF (1ULL << 8)
#define FL_IF (1ULL << 9)
#define FL_DF (1ULL << 10)
#define FL_OF (1ULL << 11)
#define FL_IOPL (3ULL << 12)
#define FL_NT (1ULL << 14)
#define FL_RF (1ULL << 16)
#define FL_VM (1ULL << 17)
#define FL_AC (1ULL << 18)
#define FL_VIF (1ULL << 19)
#define FL_VIP (1ULL << 20)
#define FL_ID (1ULL << 21)
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

enum emu_flags_op {
	FLOP_NONE,  /* the arithmetic flags are in cpu->rflags as they are */
	FLOP_ADD, FLOP_ADC, FLOP_SUB, FLOP_SBB, FLOP_LOGIC,
	FLOP_INC, FLOP_DEC, /* CF is kept in cpu->rflags */
	FLOP_SHL, FLOP_SHR, FLOP_SAR, /* src = the (non-zero, masked) count */
};

static inline void emu_flags_lazy(struct emu_cpu *cpu, enum emu_flags_op op, unsigned size,
				  uint64_t dst, uint64_t src, uint64_t res)
{
	cpu->lf = (struct emu_lazy_flags){ .res = res, .src = src, .dst = dst, .op = op, .size = size };
}

/* All of RFLAGS, the arithmetic flags computed. */
uint64_t emu_flags_get(const struct emu_cpu *cpu);
/* Replace all of RFLAGS (bit 1 always set); drops the lazy state. */
void emu_flags_set(struct emu_cpu *cpu, uint64_t rflags);
/* Replace the flags in mask, keep the rest (computing them first). */
void emu_flags_update(struct emu_cpu *cpu, uint64_t mask, uint64_t values);
/* One arithmetic flag from the whole lazy evaluation (emu_flag's slow
 * path). */
bool emu_flag_slow(const struct emu_cpu *cpu, uint64_t flag);

/* One flag: CF, ZF... without computing the others where possible. Inline:
 * every Jcc, SETcc, CMOVcc, ADC/SBB reads one or two. */
static inline bool emu_flag(const struct emu_cpu *cpu, uint64_t flag)
{
	const struct emu_lazy_flags *l = &cpu->lf;
	uint64_t mask = l->size == 8 ? ~0ULL : (1ULL << (l->size * 8)) - 1;

	if (l->op == FLOP_NONE || !(flag & FL_ARITH))
		return cpu->rflags & flag;
	switch (flag) {
	case FL_ZF:
		return !(l->res & mask);
	case FL_SF:
		return (l->res >> (l->size * 8 - 1)) & 1;
	case FL_CF: /* the common cases without computing all six */
		switch (l->op) {
		case FLOP_ADD: return (l->res & mask) < (l->dst & mask);
		case FLOP_SUB: return (l->dst & mask) < (l->src & mask);
		case FLOP_LOGIC: return false;
		case FLOP_INC: case FLOP_DEC: return cpu->rflags & FL_CF;
		}
		return emu_flag_slow(cpu, FL_CF);
	case FL_OF:
		if (l->op == FLOP_LOGIC)
			return false;
		if (l->op == FLOP_SUB)
			return (((l->dst ^ l->src) & (l->dst ^ l->res)) >> (l->size * 8 - 1)) & 1;
		return emu_flag_slow(cpu, FL_OF);
	default:
		return emu_flag_slow(cpu, flag);
	}
}

/* Condition code 0..15 (Jcc, SETcc, CMOVcc low nibble). */
static inline bool emu_cond(const struct emu_cpu *cpu, unsigned cc)
{
	bool r;

	switch ((cc >> 1) & 7) {
	case 0: r = emu_flag(cpu, FL_OF); break;                           /* O */
	case 1: r = emu_flag(cpu, FL_CF); break;                           /* B */
	case 2: r = emu_flag(cpu, FL_ZF); break;                           /* Z */
	case 3: r = emu_flag(cpu, FL_CF) || emu_flag(cpu, FL_ZF); break;   /* BE */
	case 4: r = emu_flag(cpu, FL_SF); break;                           /* S */
	case 5: r = emu_flag(cpu, FL_PF); break;                           /* P */
	case 6: r = emu_flag(cpu, FL_SF) != emu_flag(cpu, FL_OF); break;   /* L */
	default: r = emu_flag(cpu, FL_ZF) ||
		     emu_flag(cpu, FL_SF) != emu_flag(cpu, FL_OF); break;   /* LE */
	}
	return (cc & 1) ? !r : r;
}

#endif
