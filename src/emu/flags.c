#include "flags.h"

static uint64_t size_mask(unsigned size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static bool parity_even(uint8_t b)
{
	return !__builtin_parity(b);
}

/* The six arithmetic flags of the lazy state. */
static uint64_t lazy_arith(const struct emu_cpu *cpu)
{
	const struct emu_lazy_flags *l = &cpu->lf;
	uint64_t mask, sign, res, dst, src, f = 0;
	bool cf = false, of = false, af = false, cin;
	unsigned bits = l->size * 8;

	if (l->op == FLOP_NONE || !l->size)
		return cpu->rflags & FL_ARITH;
	mask = size_mask(l->size);
	sign = 1ULL << (bits - 1);
	res = l->res & mask;
	dst = l->dst & mask;
	src = l->src & mask;
	switch (l->op) {
	case FLOP_ADD:
		cf = res < dst;
		of = (dst ^ res) & (src ^ res) & sign;
		af = (dst ^ src ^ res) & 0x10;
		break;
	case FLOP_ADC:
		cin = ((res - dst - src) & mask) != 0;
		cf = cin ? res <= dst : res < dst;
		of = (dst ^ res) & (src ^ res) & sign;
		af = (dst ^ src ^ res) & 0x10;
		break;
	case FLOP_SUB:
		cf = dst < src;
		of = (dst ^ src) & (dst ^ res) & sign;
		af = (dst ^ src ^ res) & 0x10;
		break;
	case FLOP_SBB:
		cin = ((dst - src - res) & mask) != 0;
		cf = cin ? dst <= src : dst < src;
		of = (dst ^ src) & (dst ^ res) & sign;
		af = (dst ^ src ^ res) & 0x10;
		break;
	case FLOP_LOGIC:
		break;
	case FLOP_INC:
		cf = cpu->rflags & FL_CF;
		of = res == sign;
		af = (res & 0xf) == 0;
		break;
	case FLOP_DEC:
		cf = cpu->rflags & FL_CF;
		of = res == sign - 1;
		af = (res & 0xf) == 0xf;
		break;
	case FLOP_SHL:
		cf = src <= bits ? (dst >> (bits - src)) & 1 : 0;
		of = ((res & sign) != 0) != cf;
		break;
	case FLOP_SHR:
		cf = (dst >> (src - 1)) & 1;
		of = dst & sign;
		break;
	case FLOP_SAR:
		cf = src >= bits ? (dst & sign) != 0 : (dst >> (src - 1)) & 1;
		of = false;
		break;
	default:
		return cpu->rflags & FL_ARITH;
	}
	if (cf) f |= FL_CF;
	if (of) f |= FL_OF;
	if (af) f |= FL_AF;
	if (!res) f |= FL_ZF;
	if (res & sign) f |= FL_SF;
	if (parity_even((uint8_t)res)) f |= FL_PF;
	return f;
}

uint64_t emu_flags_get(const struct emu_cpu *cpu)
{
	return (cpu->rflags & ~FL_ARITH) | lazy_arith(cpu) | 0x2;
}

void emu_flags_set(struct emu_cpu *cpu, uint64_t rflags)
{
	cpu->rflags = rflags | 0x2;
	cpu->lf.op = FLOP_NONE;
}

void emu_flags_update(struct emu_cpu *cpu, uint64_t mask, uint64_t values)
{
	if ((mask & FL_ARITH) == FL_ARITH) {
		/* all six replaced: nothing of the lazy state survives */
		emu_flags_set(cpu, (cpu->rflags & ~mask) | (values & mask));
		return;
	}
	emu_flags_set(cpu, (emu_flags_get(cpu) & ~mask) | (values & mask));
}

bool emu_flag_slow(const struct emu_cpu *cpu, uint64_t flag)
{
	return lazy_arith(cpu) & flag;
}
