/* The executor: one x86 instruction per emu_step(). This part holds the
 * integer instructions every mode shares (ALU, moves, stack, branches,
 * strings, bit operations, multiply/divide); system.c has the system
 * instructions, deliver.c exception delivery, sse.c and x87.c the SIMD
 * and floating-point instructions. */
#include "exec.h"
#include "flags.h"

#include "kumo/machine.h"

#include <string.h>

#include "exec_internal.h"
#include "icache.h"
#include "jit.h"
#include "sse.h"

/* Read-modify-write of the r/m operand: fn computes the new value (and
 * the flags) from the old one. LOCK (or an implicit lock) on RAM is a
 * compare-and-swap loop, so other vCPUs see it atomic. */
typedef bool (*rmw_fn)(struct ctx *c, unsigned size, uint64_t old, uint64_t arg, uint64_t *res);

static bool cas(void *p, unsigned size, uint64_t *expected, uint64_t desired)
{
	switch (size) {
	case 1: { uint8_t e = *expected; bool ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return ok; }
	case 2: { uint16_t e = *expected; bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return ok; }
	case 4: { uint32_t e = *expected; bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return ok; }
	default: return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

static int rm_rmw(struct ctx *c, unsigned size, rmw_fn fn, uint64_t arg, bool locked, uint64_t *old_out)
{
	uint64_t old, res;
	bool write;
	int err;

	if (is_mem(c) && locked) {
		void *p = emu_host_ptr(c->cpu, c->seg, c->ea, size, ACC_WRITE, &err);
		if (err)
			return err;
		if (p) {
			old = 0;
			memcpy(&old, p, size);
			for (;;) {
				write = fn(c, size, old, arg, &res);
				if (!write || cas(p, size, &old, res))
					break;
			}
			if (old_out)
				*old_out = old;
			return 0;
		}
		/* Split or MMIO: not atomic, as on hardware without a bus lock. */
	}
	if ((err = rm_read(c, size, &old)))
		return err;
	write = fn(c, size, old, arg, &res);
	if (write && (err = rm_write(c, size, res)))
		return err;
	if (old_out)
		*old_out = old;
	return 0;
}

/* ---- the stack ---- */

unsigned emu_stack_size(const struct emu_cpu *cpu)
{
	if (cpu->mode == MODE_LONG64)
		return 8;
	return cpu->seg[SR_SS].db ? 4 : 2;
}

static void set_sp(struct emu_cpu *cpu, uint64_t sp)
{
	unsigned s = emu_stack_size(cpu);
	uint64_t *r = &cpu->gpr[X86_RSP];

	*r = s == 8 ? sp : s == 4 ? (uint32_t)sp : (*r & ~0xffffULL) | (sp & 0xffff);
}

int emu_push(struct emu_cpu *cpu, unsigned size, uint64_t v)
{
	uint64_t sp = (cpu->gpr[X86_RSP] - size) & mask_of(emu_stack_size(cpu));
	int err = emu_write_inl(cpu, SR_SS, sp, size, v);

	if (!err)
		set_sp(cpu, sp);
	return err;
}

/* Reads the stack at RSP + offset without moving RSP (commit with
 * emu_pop_commit). */
int emu_peek(struct emu_cpu *cpu, unsigned size, unsigned offset, uint64_t *v)
{
	return emu_read_inl(cpu, SR_SS, (cpu->gpr[X86_RSP] + offset) & mask_of(emu_stack_size(cpu)), size, v);
}

void emu_pop_commit(struct emu_cpu *cpu, unsigned size)
{
	set_sp(cpu, cpu->gpr[X86_RSP] + size);
}

/* ---- ALU ---- */

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

static bool alu(struct ctx *c, unsigned size, uint64_t dst, uint64_t src, unsigned op, uint64_t *res)
{
	struct emu_cpu *cpu = c->cpu;
	uint64_t m = mask_of(size), r, cin;

	dst &= m;
	src &= m;
	switch (op) {
	case ALU_ADD: r = dst + src; emu_flags_lazy(cpu, FLOP_ADD, size, dst, src, r & m); break;
	case ALU_ADC:
		cin = emu_flag(cpu, FL_CF);
		r = dst + src + cin;
		emu_flags_lazy(cpu, FLOP_ADC, size, dst, src, r & m);
		break;
	case ALU_SBB:
		cin = emu_flag(cpu, FL_CF);
		r = dst - src - cin;
		emu_flags_lazy(cpu, FLOP_SBB, size, dst, src, r & m);
		break;
	case ALU_SUB:
	case ALU_CMP: r = dst - src; emu_flags_lazy(cpu, FLOP_SUB, size, dst, src, r & m); break;
	case ALU_OR: r = dst | src; emu_flags_lazy(cpu, FLOP_LOGIC, size, dst, src, r); break;
	case ALU_AND: r = dst & src; emu_flags_lazy(cpu, FLOP_LOGIC, size, dst, src, r); break;
	default: r = dst ^ src; emu_flags_lazy(cpu, FLOP_LOGIC, size, dst, src, r); break;
	}
	*res = r & m;
	return op != ALU_CMP;
}

static bool alu_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t src, uint64_t *res)
{
	return alu(c, size, old, src, c->alu_op, res);
}

static int alu_rm(struct ctx *c, unsigned size, unsigned op, uint64_t src)
{
	c->alu_op = op;
	return rm_rmw(c, size, alu_rmw, src, c->in->lock, NULL);
}

/* ---- shifts and rotates (group 2) ---- */

static int shift(struct ctx *c, unsigned size, unsigned op, unsigned count)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned bits = size * 8;
	uint64_t m = mask_of(size), v, r;
	bool cf;
	int err;

	count &= size == 8 ? 63 : 31;
	if ((err = rm_read(c, size, &v)))
		return err;
	if (!count) /* flags untouched; the operand is still written (32-bit registers zero-extend) */
		return rm_write(c, size, v);
	switch (op) {
	case 0: /* ROL */
	case 1: { /* ROR */
		unsigned n = count % bits;
		r = op == 0 ? ((v << n) | (v >> ((bits - n) % bits))) & m
			    : ((v >> n) | (v << ((bits - n) % bits))) & m;
		if (!n)
			r = v;
		if ((err = rm_write(c, size, r)))
			return err;
		cf = op == 0 ? r & 1 : (r >> (bits - 1)) & 1;
		{
			bool msb = (r >> (bits - 1)) & 1;
			bool of = op == 0 ? msb ^ cf : msb ^ ((r >> (bits - 2)) & 1);
			emu_flags_update(cpu, FL_CF | FL_OF, (cf ? FL_CF : 0) | (of ? FL_OF : 0));
		}
		return 0;
	}
	case 2: /* RCL */
	case 3: { /* RCR */
		unsigned n = count % (bits + 1);
		uint64_t carry = emu_flag(cpu, FL_CF);
		r = v;
		for (unsigned i = 0; i < n; i++) {
			if (op == 2) {
				uint64_t out = (r >> (bits - 1)) & 1;
				r = ((r << 1) | carry) & m;
				carry = out;
			} else {
				uint64_t out = r & 1;
				r = (r >> 1) | (carry << (bits - 1));
				carry = out;
			}
		}
		if ((err = rm_write(c, size, r)))
			return err;
		{
			bool msb = (r >> (bits - 1)) & 1;
			bool of = op == 2 ? msb ^ carry : msb ^ ((r >> (bits - 2)) & 1);
			emu_flags_update(cpu, FL_CF | FL_OF, (carry ? FL_CF : 0) | (of ? FL_OF : 0));
		}
		return 0;
	}
	case 4: /* SHL */
	case 6: /* SAL */
		r = count >= bits ? 0 : (v << count) & m;
		if ((err = rm_write(c, size, r)))
			return err;
		emu_flags_lazy(cpu, FLOP_SHL, size, v, count, r);
		return 0;
	case 5: /* SHR */
		r = count >= bits ? 0 : v >> count;
		if ((err = rm_write(c, size, r)))
			return err;
		emu_flags_lazy(cpu, FLOP_SHR, size, v, count, r);
		return 0;
	default: /* SAR */
		r = (uint64_t)((int64_t)sext(v, size) >> (count >= bits ? bits - 1 : count)) & m;
		if ((err = rm_write(c, size, r)))
			return err;
		emu_flags_lazy(cpu, FLOP_SAR, size, v, count, r);
		return 0;
	}
}

/* SHLD / SHRD r/m, reg, count */
static int shift_double(struct ctx *c, bool left, unsigned count)
{
	unsigned size = c->in->opsize, bits = size * 8;
	uint64_t m = mask_of(size), dst, src = reg_read(c, c->in->reg, size), r;
	bool cf;
	int err;

	count &= size == 8 ? 63 : 31;
	if ((err = rm_read(c, size, &dst)))
		return err;
	if (!count)
		return rm_write(c, size, dst); /* as for shifts: written, flags kept */
	if (count > bits) /* undefined result for 16-bit operands; any value */
		count %= bits;
	if (!count)
		return rm_write(c, size, dst);
	if (left) {
		r = ((dst << count) | (count == bits ? src : src >> (bits - count))) & m;
		cf = (dst >> (bits - count)) & 1;
	} else {
		r = ((dst >> count) | (count == bits ? src : src << (bits - count))) & m;
		cf = (dst >> (count - 1)) & 1;
	}
	if ((err = rm_write(c, size, r)))
		return err;
	{
		uint64_t sign = 1ULL << (bits - 1);
		uint64_t f = (cf ? FL_CF : 0) | ((((r ^ dst) & sign) != 0) ? FL_OF : 0);
		f |= !r ? FL_ZF : 0;
		f |= (r & sign) ? FL_SF : 0;
		f |= !__builtin_parity((uint8_t)r) ? FL_PF : 0;
		emu_flags_update(c->cpu, FL_CF | FL_OF | FL_ZF | FL_SF | FL_PF | FL_AF, f);
	}
	return 0;
}

/* ---- multiply and divide (group 3) ---- */

static void set_mul_flags(struct emu_cpu *cpu, bool overflow, uint64_t low, unsigned size)
{
	/* CF = OF = the result did not fit; SF ZF PF from the low half (what
	 * current Intel cores do; architecturally undefined). */
	uint64_t f = overflow ? FL_CF | FL_OF : 0;
	uint64_t m = mask_of(size);

	f |= (low & m) == 0 ? FL_ZF : 0;
	f |= (low >> (size * 8 - 1)) & 1 ? FL_SF : 0;
	f |= !__builtin_parity((uint8_t)low) ? FL_PF : 0;
	emu_flags_update(cpu, FL_ARITH, f);
}

static int mul_div(struct ctx *c, unsigned size, unsigned op)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned bits = size * 8;
	uint64_t m = mask_of(size), src;
	int err;

	if ((err = rm_read(c, size, &src)))
		return err;
	if (size == 1) {
		uint16_t ax = cpu->gpr[X86_RAX] & 0xffff;
		uint8_t s = src;
		switch (op) {
		case 4: { uint16_t r = (uint16_t)(ax & 0xff) * s; reg_write(c, X86_RAX, 2, r); set_mul_flags(cpu, r >> 8, r, 1); return 0; }
		case 5: { int16_t r = (int16_t)(int8_t)ax * (int8_t)s; reg_write(c, X86_RAX, 2, (uint16_t)r); set_mul_flags(cpu, r != (int8_t)r, r, 1); return 0; }
		case 6: {
			if (!s) return emu_fault(cpu, EXC_DE, false, 0);
			uint16_t q = ax / s;
			if (q > 0xff) return emu_fault(cpu, EXC_DE, false, 0);
			reg_write(c, X86_RAX, 2, (uint16_t)((ax % s) << 8 | q));
			return 0;
		}
		default: {
			if (!s) return emu_fault(cpu, EXC_DE, false, 0);
			int16_t a = (int16_t)ax;
			if (a == INT16_MIN && (int8_t)s == -1) return emu_fault(cpu, EXC_DE, false, 0);
			int16_t q = a / (int8_t)s, r = a % (int8_t)s;
			if (q != (int8_t)q) return emu_fault(cpu, EXC_DE, false, 0);
			reg_write(c, X86_RAX, 2, (uint16_t)((uint8_t)r << 8 | (uint8_t)q));
			return 0;
		}
		}
	}
	{
		unsigned __int128 a = ((unsigned __int128)(cpu->gpr[X86_RDX] & m) << bits) | (cpu->gpr[X86_RAX] & m);
		switch (op) {
		case 4: {
			unsigned __int128 r = (unsigned __int128)(cpu->gpr[X86_RAX] & m) * src;
			reg_write(c, X86_RAX, size, (uint64_t)r);
			reg_write(c, X86_RDX, size, (uint64_t)(r >> bits));
			set_mul_flags(cpu, (r >> bits) != 0, (uint64_t)r, size);
			return 0;
		}
		case 5: {
			__int128 r = (__int128)(int64_t)sext(cpu->gpr[X86_RAX], size) * (int64_t)sext(src, size);
			reg_write(c, X86_RAX, size, (uint64_t)r);
			reg_write(c, X86_RDX, size, (uint64_t)(r >> bits));
			set_mul_flags(cpu, r != (__int128)(int64_t)sext((uint64_t)r, size), (uint64_t)r, size);
			return 0;
		}
		case 6: {
			if (!src) return emu_fault(cpu, EXC_DE, false, 0);
			unsigned __int128 q = a / src;
			if (q > m) return emu_fault(cpu, EXC_DE, false, 0);
			reg_write(c, X86_RAX, size, (uint64_t)q);
			reg_write(c, X86_RDX, size, (uint64_t)(a % src));
			return 0;
		}
		default: {
			__int128 sa, q, r;
			int64_t d = (int64_t)sext(src, size);
			if (!d) return emu_fault(cpu, EXC_DE, false, 0);
			/* sign-extend the double-width dividend */
			sa = (__int128)(a << (128 - 2 * bits)) >> (128 - 2 * bits);
			if (bits == 64)
				sa = (__int128)a;
			/* the one quotient __int128 cannot hold: -2^127 / -1 */
			if (bits == 64 && d == -1 && (unsigned __int128)sa == (unsigned __int128)1 << 127)
				return emu_fault(cpu, EXC_DE, false, 0);
			q = sa / d;
			r = sa % d;
			if (q != (__int128)(int64_t)sext((uint64_t)q, size))
				return emu_fault(cpu, EXC_DE, false, 0);
			reg_write(c, X86_RAX, size, (uint64_t)q);
			reg_write(c, X86_RDX, size, (uint64_t)r);
			return 0;
		}
		}
	}
}

static void imul_flags(struct ctx *c, unsigned size, int64_t a, int64_t b, uint64_t *res)
{
	__int128 r = (__int128)a * b;
	*res = (uint64_t)r & mask_of(size);
	set_mul_flags(c->cpu, r != (__int128)(int64_t)sext((uint64_t)r, size), (uint64_t)r, size);
}

/* ---- group 3 / 4 / 5 helpers ---- */

static bool not_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t arg, uint64_t *res)
{
	(void)c, (void)arg;
	*res = ~old & mask_of(size);
	return true;
}

static bool neg_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t arg, uint64_t *res)
{
	(void)arg;
	*res = (0 - old) & mask_of(size);
	emu_flags_lazy(c->cpu, FLOP_SUB, size, 0, old & mask_of(size), *res);
	return true;
}

static bool incdec_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t dec, uint64_t *res)
{
	/* CF is kept: put it in rflags before the lazy state takes over (the
	 * other five come from the new lazy state, whatever rflags holds) */
	c->cpu->rflags = (c->cpu->rflags & ~FL_CF) | (emu_flag(c->cpu, FL_CF) ? FL_CF : 0);
	*res = (dec ? old - 1 : old + 1) & mask_of(size);
	emu_flags_lazy(c->cpu, dec ? FLOP_DEC : FLOP_INC, size, old, 1, *res);
	return true;
}

static bool xadd_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t src, uint64_t *res)
{
	return alu(c, size, old, src, ALU_ADD, res);
}

static bool xchg_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t src, uint64_t *res)
{
	(void)c, (void)old;
	*res = src & mask_of(size);
	return true;
}

/* BT/BTS/BTR/BTC: op 0..3 */
static bool bt_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t arg, uint64_t *res)
{
	unsigned bit = arg & (size * 8 - 1), op = arg >> 62;
	bool cf = (old >> bit) & 1;

	emu_flags_update(c->cpu, FL_CF, cf ? FL_CF : 0);
	switch (op) {
	case 1: *res = old | (1ULL << bit); break;
	case 2: *res = old & ~(1ULL << bit); break;
	case 3: *res = old ^ (1ULL << bit); break;
	default: *res = old; return false;
	}
	return true;
}

static int bit_op(struct ctx *c, unsigned op, uint64_t bitoff, bool from_reg)
{
	unsigned size = c->in->opsize;
	struct ctx sub = *c;

	if (from_reg && is_mem(c)) {
		/* a register bit offset addresses memory beyond the operand */
		int64_t off = (int64_t)sext(bitoff, size);
		int64_t words = off >> (size == 8 ? 6 : size == 4 ? 5 : 4);
		sub.ea = (c->ea + words * (int64_t)size) & addr_mask(c);
	}
	return rm_rmw(&sub, size, bt_rmw, ((uint64_t)op << 62) | (bitoff & (size * 8 - 1)),
		      c->in->lock && op, NULL);
}

/* ---- string instructions ---- */

static uint64_t count_reg(struct ctx *c)
{
	return GPR(c, X86_RCX) & addr_mask(c);
}

static void set_count(struct ctx *c, uint64_t v)
{
	reg_write(c, X86_RCX, c->in->addrsize, v);
}

static void advance(struct ctx *c, unsigned reg, unsigned size)
{
	uint64_t v = GPR(c, reg);
	v = emu_flag(c->cpu, FL_DF) ? v - size : v + size;
	reg_write(c, reg, c->in->addrsize, v);
}

static void port_access(struct ctx *c, uint16_t port, unsigned size, bool out, uint64_t *v);
static int io_check(struct ctx *c, uint16_t port, unsigned size);

/* One iteration of a string instruction; *stop for REPE/REPNE conditions. */
static int string_once(struct ctx *c, unsigned size, bool *stop)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	unsigned src_seg = in->seg != SR_NONE ? in->seg : SR_DS;
	uint64_t si = GPR(c, X86_RSI) & addr_mask(c), di = GPR(c, X86_RDI) & addr_mask(c);
	uint64_t a, b, res;
	int err;

	*stop = false;
	switch (in->op) {
	case 0xa4: case 0xa5: /* MOVS */
		if ((err = emu_read(cpu, src_seg, si, size, &a)) || (err = emu_write(cpu, SR_ES, di, size, a)))
			return err;
		advance(c, X86_RSI, size);
		advance(c, X86_RDI, size);
		return 0;
	case 0xa6: case 0xa7: /* CMPS */
		if ((err = emu_read(cpu, src_seg, si, size, &a)) || (err = emu_read(cpu, SR_ES, di, size, &b)))
			return err;
		alu(c, size, a, b, ALU_CMP, &res);
		advance(c, X86_RSI, size);
		advance(c, X86_RDI, size);
		*stop = emu_flag(cpu, FL_ZF) != (in->rep == 0xf3);
		return 0;
	case 0xaa: case 0xab: /* STOS */
		if ((err = emu_write(cpu, SR_ES, di, size, GPR(c, X86_RAX))))
			return err;
		advance(c, X86_RDI, size);
		return 0;
	case 0xac: case 0xad: /* LODS */
		if ((err = emu_read(cpu, src_seg, si, size, &a)))
			return err;
		reg_write(c, X86_RAX, size, a);
		advance(c, X86_RSI, size);
		return 0;
	case 0x6c: case 0x6d: /* INS */
		a = 0;
		port_access(c, GPR(c, X86_RDX) & 0xffff, size, false, &a);
		if ((err = emu_write(cpu, SR_ES, di, size, a)))
			return err;
		advance(c, X86_RDI, size);
		return 0;
	case 0x6e: case 0x6f: /* OUTS */
		if ((err = emu_read(cpu, src_seg, si, size, &a)))
			return err;
		port_access(c, GPR(c, X86_RDX) & 0xffff, size, true, &a);
		advance(c, X86_RSI, size);
		return 0;
	default: /* SCAS */
		if ((err = emu_read(cpu, SR_ES, di, size, &b)))
			return err;
		alu(c, size, GPR(c, X86_RAX), b, ALU_CMP, &res);
		advance(c, X86_RDI, size);
		*stop = emu_flag(cpu, FL_ZF) != (in->rep == 0xf3);
		return 0;
	}
}

#define STRING_BATCH 4096 /* iterations per step: interrupts get a look-in */

/* REP MOVS and REP STOS forward (DF=0) on RAM, a chunk at a time: as
 * many whole elements as fit before the next page boundary of the
 * destination and of the source, copied with memmove (or element by
 * element when the destination overlaps the source ahead of it, as the
 * instruction's own order gives) or filled; RSI, RDI and RCX are written
 * after each chunk as the instruction leaves them. An element that
 * crosses a page, an address that faults, MMIO, a segment limit in the
 * way: one iteration of string_once(), which raises the exact fault with
 * the registers as the iterations before left them. At most
 * STRING_CHUNKS chunks, then the instruction pauses (runs again) so that
 * interrupts get a look-in. */
#define STRING_CHUNKS 16

/* STOS's fill of bytes (a multiple of size) with the low size bytes of
 * v: memset when those are all one byte (clear_page's zeroes), else one
 * store per element of a constant size (a memcpy of a variable size
 * compiles to a REP MOVSQ per element, 40 times slower). */
static void fill(uint8_t *dst, uint64_t v, unsigned size, uint64_t bytes)
{
	uint64_t m = mask_of(size);

	if ((v & m) == ((v & 0xff) * 0x0101010101010101ULL & m)) {
		memset(dst, (uint8_t)v, bytes);
		return;
	}
	switch (size) {
	case 2:
		for (uint64_t i = 0; i < bytes; i += 2)
			memcpy(dst + i, &(uint16_t){ (uint16_t)v }, 2);
		break;
	case 4:
		for (uint64_t i = 0; i < bytes; i += 4)
			memcpy(dst + i, &(uint32_t){ (uint32_t)v }, 4);
		break;
	default:
		for (uint64_t i = 0; i < bytes; i += 8)
			memcpy(dst + i, &v, 8);
		break;
	}
}

static int string_fast(struct ctx *c, unsigned size)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	bool movs = in->op == 0xa4 || in->op == 0xa5, stop;
	unsigned src_seg = in->seg != SR_NONE ? in->seg : SR_DS;
	unsigned user = cpu->cpl == 3 ? ACC_USER : 0;
	uint64_t amask = addr_mask(c);
	int err;

	for (unsigned k = 0; k < STRING_CHUNKS; k++) {
		uint64_t count = count_reg(c), di = GPR(c, X86_RDI) & amask, si = GPR(c, X86_RSI) & amask;
		uint64_t n, bytes, ldst, lsrc = 0, pdst, psrc;
		uint8_t *hdst = NULL, *hsrc = NULL;

		if (!count)
			return 0;
		n = count;
		if (amask != ~0ULL) /* no wrap of SI/DI inside a chunk */
			n = MIN(n, MIN((amask + 1 - di) / size, (amask + 1 - si) / size));
		if (n && !emu_linear(cpu, SR_ES, di, size, ACC_WRITE, &ldst))
			n = MIN(n, (4096 - (ldst & 0xfff)) / size);
		else
			n = 0;
		if (n && movs && !emu_linear(cpu, src_seg, si, size, ACC_READ, &lsrc))
			n = MIN(n, (4096 - (lsrc & 0xfff)) / size);
		else if (movs)
			n = 0;
		bytes = n * size;
		/* the whole chunk within the segments; source translated first,
		 * as the instruction reads before it writes */
		if (n && (emu_linear(cpu, SR_ES, di, (unsigned)bytes, ACC_WRITE, &ldst) ||
			  (movs && emu_linear(cpu, src_seg, si, (unsigned)bytes, ACC_READ, &lsrc)) ||
			  (movs && (emu_mmu_translate(cpu, lsrc, ACC_READ | user, &psrc, &hsrc) || !hsrc)) ||
			  emu_mmu_translate(cpu, ldst, ACC_WRITE | user, &pdst, &hdst) || !hdst))
			n = 0;
		if (!n) {
			if ((err = string_once(c, size, &stop)))
				return err;
			set_count(c, count - 1);
			continue;
		}
		hdst += ldst & 0xfff;
		if (movs) {
			hsrc += lsrc & 0xfff;
			if (hdst > hsrc && hdst < hsrc + bytes) {
				for (uint64_t i = 0; i < bytes; i += size) {
					uint64_t t;
					memcpy(&t, hsrc + i, size);
					memcpy(hdst + i, &t, size);
				}
			} else {
				memmove(hdst, hsrc, bytes);
			}
			reg_write(c, X86_RSI, in->addrsize, si + bytes);
		} else {
			fill(hdst, GPR(c, X86_RAX), size, bytes);
		}
		emu_code_store(cpu, pdst >> 12);
		reg_write(c, X86_RDI, in->addrsize, di + bytes);
		set_count(c, count - n);
	}
	if (count_reg(c))
		c->next = cpu->rip; /* not done: run this instruction again */
	return 0;
}

static int string_op(struct ctx *c, unsigned size)
{
	bool cond = c->in->op == 0xa6 || c->in->op == 0xa7 || c->in->op == 0xae || c->in->op == 0xaf;
	bool stop;
	int err;

	if (!c->in->rep)
		return string_once(c, size, &stop);
	if ((c->in->op == 0xa4 || c->in->op == 0xa5 || c->in->op == 0xaa || c->in->op == 0xab) &&
	    !(c->cpu->rflags & FL_DF))
		return string_fast(c, size);
	for (unsigned i = 0; i < STRING_BATCH; i++) {
		if (!count_reg(c))
			return 0;
		if ((err = string_once(c, size, &stop)))
			return err;   /* registers show the iterations done, as on hardware */
		set_count(c, count_reg(c) - 1);
		if ((cond && stop) || !count_reg(c))
			return 0;
	}
	c->next = c->cpu->rip;        /* not done: run this instruction again */
	return 0;
}

/* ---- branches ---- */

static uint64_t ip_mask(const struct ctx *c)
{
	return c->cpu->mode == MODE_LONG64 ? ~0ULL : mask_of(c->in->opsize == 8 ? 8 : c->in->opsize);
}

int emu_jump(struct ctx *c, uint64_t target)
{
	target &= ip_mask(c);
	if (c->cpu->mode == MODE_LONG64 && (uint64_t)((int64_t)(target << 16) >> 16) != target)
		return gp0(c);
	if (c->cpu->mode != MODE_LONG64 && c->cpu->mode != MODE_REAL && target > c->cpu->seg[SR_CS].limit)
		return gp0(c);
	c->next = target;
	return 0;
}

static int call(struct ctx *c, uint64_t target)
{
	unsigned size = c->in->opsize;
	uint64_t ret = c->next;
	int err = emu_jump(c, target);

	if (!err && (err = emu_push(c->cpu, size, ret)))
		c->next = ret;
	return err;
}

/* ---- the one-byte map ---- */

/* I/O privilege: CPL <= IOPL, else every bit for the ports in the TSS's
 * I/O permission bitmap must be clear (#GP(0) otherwise, or when the
 * bitmap or the TSS is too short). */
static int io_check(struct ctx *c, uint16_t port, unsigned size)
{
	struct emu_cpu *cpu = c->cpu;
	uint64_t base = 0, bits = 0;
	unsigned off;

	if (cpu->mode == MODE_REAL || cpu->cpl <= ((cpu->rflags & FL_IOPL) >> 12))
		return 0;
	if (cpu->tr.unusable || !cpu->tr.present || (cpu->tr.type & 7) != 3 || cpu->tr.limit < 0x67)
		return gp0(c);
	if (emu_read_linear(cpu, cpu->tr.base + 0x66, &base, 2, ACC_READ | ACC_IMPLICIT))
		return -EFAULT;
	off = (unsigned)base + port / 8;
	if (off + 1 > cpu->tr.limit)
		return gp0(c);
	if (emu_read_linear(cpu, cpu->tr.base + off, &bits, 2, ACC_READ | ACC_IMPLICIT))
		return -EFAULT;
	if ((bits >> (port & 7)) & ((1u << size) - 1))
		return gp0(c);
	return 0;
}

/* One port access of size 1, 2 or 4 bytes, after io_check. */
static void port_access(struct ctx *c, uint16_t port, unsigned size, bool out, uint64_t *v)
{
	uint8_t data[4];

	if (!c->cpu->machine) {
		if (!out)
			*v = mask_of(size);
		return;
	}
	memcpy(data, v, size);
	machine_pio(c->cpu->machine, port, data, size, out);
	if (!out) {
		*v = 0;
		memcpy(v, data, size);
	}
}

static int port_io(struct ctx *c, uint16_t port, unsigned size, bool out)
{
	uint8_t data[4];
	uint64_t v = GPR(c, X86_RAX);
	int err;

	if ((err = io_check(c, port, size)))
		return err;
	if (!c->cpu->machine) {
		if (!out)
			reg_write(c, X86_RAX, size, mask_of(size));
		return 0;
	}
	memcpy(data, &v, size);
	machine_pio(c->cpu->machine, port, data, size, out);
	if (!out) {
		v = 0;
		memcpy(&v, data, size);
		reg_write(c, X86_RAX, size, v);
	}
	return 0;
}

/* Opcodes the integer core leaves to system.c (or #UD). */
static int system_or_ud(struct ctx *c)
{
	bool handled;
	int r = emu_exec_simd(c, &handled);   /* x87, MMX, SSE (sse.c, x87.c) */

	if (handled)
		return r;
	return emu_exec_system(c, &handled);
}

static int exec_1b(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	unsigned op = in->op, size = (op & 1) ? in->opsize : 1;
	uint64_t v, res;
	int err = 0;

	if (op < 0x40 && (op & 7) < 6) {                  /* ALU */
		unsigned alu_op = op >> 3;
		switch (op & 7) {
		case 0: case 1: return alu_rm(c, size, alu_op, reg_read(c, in->reg, size));
		case 2: case 3:
			if ((err = rm_read(c, size, &v)))
				return err;
			if (alu(c, size, reg_read(c, in->reg, size), v, alu_op, &res))
				reg_write(c, in->reg, size, res);
			return 0;
		default:
			if (alu(c, size, reg_read(c, X86_RAX, size), in->imm, alu_op, &res))
				reg_write(c, X86_RAX, size, res);
			return 0;
		}
	}
	switch (op) {
	case 0x40 ... 0x4f: {                              /* INC/DEC r (not 64-bit) */
		struct ctx r = *c;
		struct emu_insn rin = *in;
		rin.mod = 3;
		rin.rm = op & 7;
		r.in = &rin;
		return rm_rmw(&r, in->opsize, incdec_rmw, op >= 0x48, false, NULL);
	}
	case 0x50 ... 0x57:                                /* PUSH r */
		return emu_push(cpu, in->opsize, GPR(c, (op & 7) | ((in->rex & 1) << 3)));
	case 0x58 ... 0x5f: {                              /* POP r */
		unsigned r = (op & 7) | ((in->rex & 1) << 3);
		if ((err = emu_peek(cpu, in->opsize, 0, &v)))
			return err;
		emu_pop_commit(cpu, in->opsize);
		reg_write(c, r, in->opsize, v);
		return 0;
	}
	case 0x63:                                         /* MOVSXD (64-bit mode) */
		if (cpu->mode != MODE_LONG64)
			return system_or_ud(c);            /* ARPL */
		if ((err = rm_read(c, 4, &v)))
			return err;
		reg_write(c, in->reg, in->opsize, in->opsize == 8 ? sext(v, 4) : v);
		return 0;
	case 0x68: case 0x6a:                              /* PUSH imm */
		return emu_push(cpu, in->opsize, in->imm);
	case 0x69: case 0x6b:                              /* IMUL r, r/m, imm */
		if ((err = rm_read(c, in->opsize, &v)))
			return err;
		imul_flags(c, in->opsize, (int64_t)sext(v, in->opsize), (int64_t)sext(in->imm, in->opsize), &res);
		reg_write(c, in->reg, in->opsize, res);
		return 0;
	case 0x70 ... 0x7f:                                /* Jcc rel8 */
		return emu_cond(cpu, op & 15) ? emu_jump(c, c->next + in->imm) : 0;
	case 0x80: case 0x81: case 0x83:                   /* group 1 */
		size = op == 0x80 ? 1 : in->opsize;
		return alu_rm(c, size, in->reg & 7, in->imm);
	case 0x84: case 0x85:                              /* TEST r/m, r */
		if ((err = rm_read(c, size, &v)))
			return err;
		alu(c, size, v, reg_read(c, in->reg, size), ALU_AND, &res);
		return 0;
	case 0x86: case 0x87:                              /* XCHG r/m, r (locked) */
		if ((err = rm_rmw(c, size, xchg_rmw, reg_read(c, in->reg, size), true, &v)))
			return err;
		reg_write(c, in->reg, size, v);
		return 0;
	case 0x88: case 0x89:                              /* MOV r/m, r */
		return rm_write(c, size, reg_read(c, in->reg, size));
	case 0x8a: case 0x8b:                              /* MOV r, r/m */
		if ((err = rm_read(c, size, &v)))
			return err;
		reg_write(c, in->reg, size, v);
		return 0;
	case 0x8c:                                         /* MOV r/m, Sreg */
		if ((in->reg & 7) > SR_GS)
			return ud(c);
		return rm_write(c, is_mem(c) ? 2 : in->opsize, cpu->seg[in->reg & 7].sel);
	case 0x8d:                                         /* LEA */
		reg_write(c, in->reg, in->opsize, c->ea);
		return 0;
	case 0x8f:                                         /* POP r/m */
		if ((in->reg & 7) != 0)
			return ud(c);
		if ((err = emu_peek(cpu, in->opsize, 0, &v)))
			return err;
		{
			/* RSP-based addresses use RSP after the pop */
			uint64_t old_sp = cpu->gpr[X86_RSP];
			emu_pop_commit(cpu, in->opsize);
			calc_ea(c);
			if ((err = rm_write(c, in->opsize, v)))
				cpu->gpr[X86_RSP] = old_sp;
		}
		return err;
	case 0x90:                                         /* NOP, PAUSE, XCHG r8, rAX */
		if (!(in->rex & 1))
			return 0;
		/* fall through */
	case 0x91 ... 0x97: {
		unsigned r = (op & 7) | ((in->rex & 1) << 3);
		v = reg_read(c, r, in->opsize);
		reg_write(c, r, in->opsize, reg_read(c, X86_RAX, in->opsize));
		reg_write(c, X86_RAX, in->opsize, v);
		return 0;
	}
	case 0x98:                                         /* CBW / CWDE / CDQE */
		reg_write(c, X86_RAX, in->opsize, sext(GPR(c, X86_RAX), in->opsize / 2));
		return 0;
	case 0x99:                                         /* CWD / CDQ / CQO */
		v = (GPR(c, X86_RAX) >> (in->opsize * 8 - 1)) & 1;
		reg_write(c, X86_RDX, in->opsize, v ? ~0ULL : 0);
		return 0;
	case 0x9b:                                         /* FWAIT */
		return 0;
	case 0x9c:                                         /* PUSHF */
		v = emu_flags_get(cpu) & ~(FL_VM | FL_RF);
		return emu_push(cpu, in->opsize, v);
	case 0x9d: {                                       /* POPF */
		uint64_t keep = FL_VM | FL_RF | FL_VIF | FL_VIP, cur = emu_flags_get(cpu);
		if ((err = emu_peek(cpu, in->opsize, 0, &v)))
			return err;
		if (cpu->cpl > 0)
			keep |= FL_IOPL;
		if (cpu->cpl > ((cur & FL_IOPL) >> 12))
			keep |= FL_IF;
		v &= mask_of(in->opsize);
		if (in->opsize == 2)
			keep |= ~0xffffULL;
		v = (v & ~keep) | (cur & keep);
		v &= 0x3f7fd5 | keep;  /* reserved bits read as zero */
		emu_pop_commit(cpu, in->opsize);
		emu_flags_set(cpu, v);
		return 0;
	}
	case 0x9e:                                         /* SAHF */
		emu_flags_update(cpu, FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF, (GPR(c, X86_RAX) >> 8) & 0xd5);
		return 0;
	case 0x9f:                                         /* LAHF */
		/* AH, whatever REX says */
		GPR(c, X86_RAX) = (GPR(c, X86_RAX) & ~0xff00ULL) | (((emu_flags_get(cpu) & 0xd5) | 0x2) << 8);
		return 0;
	case 0xa0 ... 0xa3: {                              /* MOV moffs */
		unsigned seg = in->seg != SR_NONE ? in->seg : SR_DS;
		uint64_t off = (uint64_t)in->disp & addr_mask(c);
		if (op < 0xa2) {
			if ((err = emu_read(cpu, seg, off, size, &v)))
				return err;
			reg_write(c, X86_RAX, size, v);
			return 0;
		}
		return emu_write(cpu, seg, off, size, GPR(c, X86_RAX));
	}
	case 0xa4 ... 0xa7: case 0xaa ... 0xaf:            /* string instructions */
		return string_op(c, size);
	case 0x6c ... 0x6f:                                /* INS / OUTS */
		size = size == 1 ? 1 : MIN(in->opsize, 4u);
		if ((err = io_check(c, GPR(c, X86_RDX) & 0xffff, size)))
			return err;
		return string_op(c, size);
	case 0xa8: case 0xa9:                              /* TEST rAX, imm */
		alu(c, size, GPR(c, X86_RAX), in->imm, ALU_AND, &res);
		return 0;
	case 0xb0 ... 0xb7:                                /* MOV r8, imm8 */
		reg_write(c, (op & 7) | ((in->rex & 1) << 3), 1, in->imm);
		return 0;
	case 0xb8 ... 0xbf:                                /* MOV r, imm */
		reg_write(c, (op & 7) | ((in->rex & 1) << 3), in->opsize, in->imm);
		return 0;
	case 0xc0: case 0xc1:                              /* group 2, imm8 */
		return shift(c, size, in->reg & 7, in->imm & 0xff);
	case 0xc2: case 0xc3:                              /* RET near */
		if ((err = emu_peek(cpu, in->opsize, 0, &v)))
			return err;
		if ((err = emu_jump(c, v)))
			return err;
		emu_pop_commit(cpu, in->opsize);
		if (op == 0xc2)
			set_sp(cpu, cpu->gpr[X86_RSP] + (in->imm & 0xffff));
		return 0;
	case 0xc6: case 0xc7:                              /* MOV r/m, imm */
		if ((in->reg & 7) != 0)
			return ud(c);
		return rm_write(c, size, in->imm);
	case 0xc9: {                                       /* LEAVE */
		uint64_t old_sp = cpu->gpr[X86_RSP];
		set_sp(cpu, cpu->gpr[X86_RBP]);
		if ((err = emu_peek(cpu, in->opsize, 0, &v))) {
			cpu->gpr[X86_RSP] = old_sp;
			return err;
		}
		emu_pop_commit(cpu, in->opsize);
		reg_write(c, X86_RBP, in->opsize, v);
		return 0;
	}
	case 0xcc:                                         /* INT3 */
		if ((err = emu_deliver(cpu, EXC_BP, false, 0, true, c->next)))
			return err;
		c->next = cpu->rip;
		return 0;
	case 0xd0 ... 0xd3:                                /* group 2, 1 or CL */
		return shift(c, size, in->reg & 7, op < 0xd2 ? 1 : GPR(c, X86_RCX) & 0xff);
	case 0xd7: {                                       /* XLAT */
		unsigned seg = in->seg != SR_NONE ? in->seg : SR_DS;
		if ((err = emu_read(cpu, seg, (GPR(c, X86_RBX) + (GPR(c, X86_RAX) & 0xff)) & addr_mask(c), 1, &v)))
			return err;
		reg_write(c, X86_RAX, 1, v);
		return 0;
	}
	case 0xe0 ... 0xe2: {                              /* LOOPNE / LOOPE / LOOP */
		uint64_t n = (count_reg(c) - 1) & addr_mask(c);
		bool take = n != 0;
		if (op == 0xe0) take = take && !emu_flag(cpu, FL_ZF);
		if (op == 0xe1) take = take && emu_flag(cpu, FL_ZF);
		if (take && (err = emu_jump(c, c->next + in->imm)))
			return err;
		set_count(c, n);
		return 0;
	}
	case 0xe3:                                         /* JrCXZ */
		return count_reg(c) ? 0 : emu_jump(c, c->next + in->imm);
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:        /* IN/OUT imm8 */
		return port_io(c, in->imm & 0xff, size == 1 ? 1 : MIN(in->opsize, 4u), op >= 0xe6);
	case 0xe8:                                         /* CALL rel */
		return call(c, c->next + in->imm);
	case 0xe9: case 0xeb:                              /* JMP rel */
		return emu_jump(c, c->next + in->imm);
	case 0xec: case 0xed: case 0xee: case 0xef:        /* IN/OUT DX */
		return port_io(c, GPR(c, X86_RDX) & 0xffff, size == 1 ? 1 : MIN(in->opsize, 4u), op >= 0xee);
	case 0xf4:                                         /* HLT */
		if (cpu->cpl)
			return gp0(c);
		return EMU_HALT;
	case 0xf5:                                         /* CMC */
		emu_flags_update(cpu, FL_CF, emu_flag(cpu, FL_CF) ? 0 : FL_CF);
		return 0;
	case 0xf6: case 0xf7:                              /* group 3 */
		switch (in->reg & 7) {
		case 0: case 1:
			if ((err = rm_read(c, size, &v)))
				return err;
			alu(c, size, v, in->imm, ALU_AND, &res);
			return 0;
		case 2: return rm_rmw(c, size, not_rmw, 0, in->lock, NULL);
		case 3: return rm_rmw(c, size, neg_rmw, 0, in->lock, NULL);
		default: return mul_div(c, size, in->reg & 7);
		}
	case 0xf8: case 0xf9:                              /* CLC / STC */
		emu_flags_update(cpu, FL_CF, op & 1 ? FL_CF : 0);
		return 0;
	case 0xfa: case 0xfb:                              /* CLI / STI */
		if (cpu->mode != MODE_REAL && cpu->cpl > ((cpu->rflags & FL_IOPL) >> 12))
			return gp0(c);
		if (op == 0xfb && !(cpu->rflags & FL_IF))
			cpu->interrupt_shadow = true;
		cpu->rflags = op == 0xfb ? cpu->rflags | FL_IF : cpu->rflags & ~FL_IF;
		return 0;
	case 0xfc: case 0xfd:                              /* CLD / STD */
		cpu->rflags = op & 1 ? cpu->rflags | FL_DF : cpu->rflags & ~FL_DF;
		return 0;
	case 0xfe:                                         /* group 4 */
		if ((in->reg & 7) > 1)
			return ud(c);
		return rm_rmw(c, 1, incdec_rmw, in->reg & 1, in->lock, NULL);
	case 0xff:                                         /* group 5 */
		switch (in->reg & 7) {
		case 0: case 1:
			return rm_rmw(c, in->opsize, incdec_rmw, in->reg & 1, in->lock, NULL);
		case 2:
			if ((err = rm_read(c, in->opsize, &v)))
				return err;
			return call(c, v);
		case 4:
			if ((err = rm_read(c, in->opsize, &v)))
				return err;
			return emu_jump(c, v);
		case 6:
			if ((err = rm_read(c, in->opsize, &v)))
				return err;
			return emu_push(cpu, in->opsize, v);
		default:
			return system_or_ud(c);            /* far CALL/JMP */
		}
	}
	return system_or_ud(c);
}

/* ---- the 0F map ---- */

static bool cmpxchg_rmw(struct ctx *c, unsigned size, uint64_t old, uint64_t src, uint64_t *res)
{
	uint64_t acc = reg_read(c, X86_RAX, size), tmp;

	alu(c, size, acc, old, ALU_CMP, &tmp);
	/* Unequal: the SDM writes the old value back to memory (a CAS that
	 * changes nothing); a register destination keeps its upper half, so
	 * nothing is written at all. */
	*res = src;
	return acc == (old & mask_of(size));
}

static int exec_0f(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	unsigned op = in->op, size = in->opsize;
	uint64_t v, res;
	int err;

	switch (op) {
	case 0x0b: case 0xb9:                              /* UD2, UD1 */
		return ud(c);
	case 0x0d: case 0x18 ... 0x1f:                     /* prefetch, hint NOPs */
		return 0;
	case 0x40 ... 0x4f:                                /* CMOVcc */
		if ((err = rm_read(c, size, &v)))
			return err;
		if (emu_cond(cpu, op & 15))
			reg_write(c, in->reg, size, v);
		else if (size == 4)
			reg_write(c, in->reg, 4, reg_read(c, in->reg, 4)); /* zero-extends anyway */
		return 0;
	case 0x80 ... 0x8f:                                /* Jcc rel */
		return emu_cond(cpu, op & 15) ? emu_jump(c, c->next + in->imm) : 0;
	case 0x90 ... 0x9f:                                /* SETcc */
		return rm_write(c, 1, emu_cond(cpu, op & 15));
	case 0xa3: return bit_op(c, 0, reg_read(c, in->reg, size), true);  /* BT */
	case 0xab: return bit_op(c, 1, reg_read(c, in->reg, size), true);  /* BTS */
	case 0xb3: return bit_op(c, 2, reg_read(c, in->reg, size), true);  /* BTR */
	case 0xbb: return bit_op(c, 3, reg_read(c, in->reg, size), true);  /* BTC */
	case 0xba:                                         /* group 8 */
		if ((in->reg & 7) < 4)
			return ud(c);
		return bit_op(c, (in->reg & 7) - 4, in->imm & 0xff, false);
	case 0xa4: case 0xa5:                              /* SHLD */
		return shift_double(c, true, op == 0xa4 ? in->imm & 0xff : GPR(c, X86_RCX) & 0xff);
	case 0xac: case 0xad:                              /* SHRD */
		return shift_double(c, false, op == 0xac ? in->imm & 0xff : GPR(c, X86_RCX) & 0xff);
	case 0xaf:                                         /* IMUL r, r/m */
		if ((err = rm_read(c, size, &v)))
			return err;
		imul_flags(c, size, (int64_t)sext(reg_read(c, in->reg, size), size), (int64_t)sext(v, size), &res);
		reg_write(c, in->reg, size, res);
		return 0;
	case 0xb0: case 0xb1:                              /* CMPXCHG */
		size = op == 0xb0 ? 1 : size;
		if ((err = rm_rmw(c, size, cmpxchg_rmw, reg_read(c, in->reg, size), in->lock, &v)))
			return err;
		if (!emu_flag(cpu, FL_ZF))
			reg_write(c, X86_RAX, size, v);
		return 0;
	case 0xb6: case 0xb7:                              /* MOVZX */
		if ((err = rm_read(c, op == 0xb6 ? 1 : 2, &v)))
			return err;
		reg_write(c, in->reg, size, v);
		return 0;
	case 0xbe: case 0xbf:                              /* MOVSX */
		if ((err = rm_read(c, op == 0xbe ? 1 : 2, &v)))
			return err;
		reg_write(c, in->reg, size, sext(v, op == 0xbe ? 1 : 2));
		return 0;
	case 0xb8:                                         /* POPCNT (F3) */
		if (in->rep != 0xf3)
			return ud(c);
		if ((err = rm_read(c, size, &v)))
			return err;
		reg_write(c, in->reg, size, __builtin_popcountll(v));
		emu_flags_update(cpu, FL_ARITH, v ? 0 : FL_ZF);
		return 0;
	case 0xbc: case 0xbd:                              /* BSF, BSR (TZCNT/LZCNT not advertised) */
		if ((err = rm_read(c, size, &v)))
			return err;
		if (!v) {
			emu_flags_update(cpu, FL_ZF, FL_ZF); /* destination unchanged */
			return 0;
		}
		reg_write(c, in->reg, size, op == 0xbc ? (uint64_t)__builtin_ctzll(v) : 63 - (uint64_t)__builtin_clzll(v));
		emu_flags_update(cpu, FL_ZF, 0);
		return 0;
	case 0xc0: case 0xc1:                              /* XADD */
		size = op == 0xc0 ? 1 : size;
		if (!is_mem(c)) {
			/* the source is written first: XADD r, r leaves the sum */
			uint64_t dst = reg_read(c, in->rm, size), src = reg_read(c, in->reg, size);
			xadd_rmw(c, size, dst, src, &res);
			reg_write(c, in->reg, size, dst);
			reg_write(c, in->rm, size, res);
			return 0;
		}
		if ((err = rm_rmw(c, size, xadd_rmw, reg_read(c, in->reg, size), in->lock, &v)))
			return err;
		reg_write(c, in->reg, size, v);
		return 0;
	case 0xc8 ... 0xcf: {                              /* BSWAP */
		unsigned r = (op & 7) | ((in->rex & 1) << 3);
		if (size == 8)
			GPR(c, r) = __builtin_bswap64(GPR(c, r));
		else if (size == 4)
			GPR(c, r) = __builtin_bswap32((uint32_t)GPR(c, r));
		else
			reg_write(c, r, 2, 0);         /* undefined; zero as Intel cores do */
		return 0;
	}
	}
	return system_or_ud(c);
}

/* ---- handlers for the common 64-bit forms ----
 *
 * The block cache gives each instruction a handler once, when it decodes
 * it (emu_exec_pick): for the forms that make most of the integer code a
 * compiler emits, in 64-bit mode with 32- or 64-bit operands and no LOCK
 * or REP, a function that does just that form; for everything else the
 * general path (exec_insn). Each is exactly what the general path does for
 * its form; emu-diff runs them against the host CPU. */

#define FAST_CTX(c, cpu, in) struct ctx c = { .cpu = (cpu), .in = (in), .next = (cpu)->rip + (in)->len }

static inline void gpr_set(struct emu_cpu *cpu, unsigned r, unsigned size, uint64_t v)
{
	cpu->gpr[r] = size == 8 ? v : (uint32_t)v;
}

static inline bool canonical_addr(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* 8-byte PUSH and POP in 64-bit mode (SS has no base or limit there), for
 * the fast handlers: emu_push/emu_peek with the size a constant. */
static inline int push64(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t sp = cpu->gpr[X86_RSP] - 8;

	if (emu_write_inl(cpu, SR_SS, sp, 8, v))
		return -EFAULT;
	cpu->gpr[X86_RSP] = sp;
	return 0;
}

static inline int peek64(struct emu_cpu *cpu, uint64_t *v)
{
	return emu_read_inl(cpu, SR_SS, cpu->gpr[X86_RSP], 8, v);
}

/* r/m op= imm or reg, through memory: the flags come back if the write
 * faults, so the fault leaves the state as before. */
static inline int alu_mem(struct ctx *c, unsigned size, unsigned op, uint64_t src)
{
	struct emu_cpu *cpu = c->cpu;
	struct emu_lazy_flags lf = cpu->lf;
	uint64_t rflags = cpu->rflags, dst, res;

	calc_ea(c);
	if (emu_read_inl(cpu, c->seg, c->ea, size, &dst))
		return EMU_FAULT;
	if (alu(c, size, dst, src, op, &res) && emu_write_inl(cpu, c->seg, c->ea, size, res)) {
		cpu->lf = lf;
		cpu->rflags = rflags;
		return EMU_FAULT;
	}
	return EMU_OK;
}

/* The r/m operand of a fast handler: a register, or memory through the
 * inline TLB path (the effective address computed into c). */
static inline int fast_rm_read(struct ctx *c, unsigned size, uint64_t *v)
{
	const struct emu_insn *in = c->in;

	if (in->mod == 3) {
		*v = c->cpu->gpr[in->rm];
		return 0;
	}
	calc_ea(c);
	return emu_read_inl(c->cpu, c->seg, c->ea, size, v);
}

/* 01 09 11 19 21 29 31 39: r/m op= reg */
static inline int alu_rm_reg_sized(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	FAST_CTX(c, cpu, in);
	unsigned op = in->op >> 3;
	uint64_t res;

	if (in->mod == 3) {
		if (alu(&c, size, cpu->gpr[in->rm], cpu->gpr[in->reg], op, &res))
			gpr_set(cpu, in->rm, size, res);
	} else if (alu_mem(&c, size, op, cpu->gpr[in->reg])) {
		return EMU_FAULT;
	}
	cpu->rip = c.next;
	return EMU_OK;
}

/* 03 0B 13 1B 23 2B 33 3B: reg op= r/m */
static inline int alu_reg_rm_sized(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	FAST_CTX(c, cpu, in);
	uint64_t src, res;

	if (fast_rm_read(&c, size, &src))
		return EMU_FAULT;
	if (alu(&c, size, cpu->gpr[in->reg], src, in->op >> 3, &res))
		gpr_set(cpu, in->reg, size, res);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 81 83: r/m op= imm */
static inline int alu_rm_imm_sized(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	FAST_CTX(c, cpu, in);
	unsigned op = in->reg & 7;
	uint64_t res;

	if (in->mod == 3) {
		if (alu(&c, size, cpu->gpr[in->rm], in->imm, op, &res))
			gpr_set(cpu, in->rm, size, res);
	} else if (alu_mem(&c, size, op, in->imm)) {
		return EMU_FAULT;
	}
	cpu->rip = c.next;
	return EMU_OK;
}

/* the three above per operand size: a constant size for the inline TLB path */
#define ALU_SIZED(form, size) \
	static int fast_##form##size(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ return form##_sized(cpu, in, size); }
ALU_SIZED(alu_rm_reg, 4) ALU_SIZED(alu_rm_reg, 8) ALU_SIZED(alu_reg_rm, 4) ALU_SIZED(alu_reg_rm, 8)
ALU_SIZED(alu_rm_imm, 4) ALU_SIZED(alu_rm_imm, 8)
#undef ALU_SIZED

/* 05 0D ... 3D: rAX op= imm */
static int fast_alu_acc_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t res;

	if (alu(&c, in->opsize, cpu->gpr[X86_RAX], in->imm, in->op >> 3, &res))
		gpr_set(cpu, X86_RAX, in->opsize, res);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 85: TEST r/m, reg */
static int fast_test(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v, res;

	if (fast_rm_read(&c, in->opsize, &v))
		return EMU_FAULT;
	alu(&c, in->opsize, v, cpu->gpr[in->reg], ALU_AND, &res);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 89 8B: MOV r/m, reg and MOV reg, r/m, one handler per operand size and
 * form, so that the inline TLB path sees a constant size */
static inline int mov_store(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	FAST_CTX(c, cpu, in);

	calc_ea(&c);
	if (emu_write_inl(cpu, c.seg, c.ea, size, cpu->gpr[in->reg]))
		return EMU_FAULT;
	cpu->rip = c.next;
	return EMU_OK;
}

static inline int mov_load(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	FAST_CTX(c, cpu, in);
	uint64_t v;

	calc_ea(&c);
	if (emu_read_inl(cpu, c.seg, c.ea, size, &v))
		return EMU_FAULT;
	gpr_set(cpu, in->reg, size, v);
	cpu->rip = c.next;
	return EMU_OK;
}

#define MOV_SIZED(size) \
	static int fast_mov_store##size(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ return mov_store(cpu, in, size); } \
	static int fast_mov_load##size(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ return mov_load(cpu, in, size); } \
	static int fast_mov_rr##size(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ gpr_set(cpu, in->rm, size, cpu->gpr[in->reg]); cpu->rip += in->len; return EMU_OK; } \
	static int fast_mov_rr_load##size(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ gpr_set(cpu, in->reg, size, cpu->gpr[in->rm]); cpu->rip += in->len; return EMU_OK; }
MOV_SIZED(4)
MOV_SIZED(8)
#undef MOV_SIZED

/* C7 /0: MOV r/m, imm32 (sign-extended) */
static int fast_mov_imm_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);

	if (in->mod == 3) {
		gpr_set(cpu, in->rm, in->opsize, in->imm);
	} else {
		calc_ea(&c);
		if (emu_write_inl(cpu, c.seg, c.ea, in->opsize, in->imm))
			return EMU_FAULT;
	}
	cpu->rip = c.next;
	return EMU_OK;
}

/* B8+r: MOV reg, imm */
static int fast_mov_imm_reg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	gpr_set(cpu, (in->op & 7) | ((in->rex & 1) << 3), in->opsize, in->imm);
	cpu->rip += in->len;
	return EMU_OK;
}

/* 8D: LEA */
static int fast_lea(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);

	calc_ea(&c);
	gpr_set(cpu, in->reg, in->opsize, c.ea);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 70-7F, 0F 80-8F: Jcc rel, one handler per condition so that each
 * evaluates just its flags */
static inline int jcc(struct emu_cpu *cpu, const struct emu_insn *in, unsigned cc)
{
	uint64_t next = cpu->rip + in->len;

	if (emu_cond(cpu, cc)) {
		next += in->imm;
		if (!canonical_addr(next))
			return emu_fault(cpu, EXC_GP, true, 0), EMU_FAULT;
	}
	cpu->rip = next;
	return EMU_OK;
}

#define JCC(cc) static int fast_jcc_##cc(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ return jcc(cpu, in, cc); }
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)
#undef JCC

static const emu_exec_fn fast_jcc[16] = {
	fast_jcc_0, fast_jcc_1, fast_jcc_2, fast_jcc_3, fast_jcc_4, fast_jcc_5, fast_jcc_6, fast_jcc_7,
	fast_jcc_8, fast_jcc_9, fast_jcc_10, fast_jcc_11, fast_jcc_12, fast_jcc_13, fast_jcc_14, fast_jcc_15,
};

/* E9 EB: JMP rel */
static int fast_jmp(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t next = cpu->rip + in->len + in->imm;

	if (!canonical_addr(next))
		return emu_fault(cpu, EXC_GP, true, 0), EMU_FAULT;
	cpu->rip = next;
	return EMU_OK;
}

/* E8: CALL rel */
static int fast_call(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t ret = cpu->rip + in->len, target = ret + in->imm;

	if (!canonical_addr(target))
		return emu_fault(cpu, EXC_GP, true, 0), EMU_FAULT;
	if (push64(cpu, ret))
		return EMU_FAULT;
	cpu->rip = target;
	return EMU_OK;
}

/* C3: RET */
static int fast_ret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	(void)in;
	if (peek64(cpu, &v))
		return EMU_FAULT;
	if (!canonical_addr(v))
		return emu_fault(cpu, EXC_GP, true, 0), EMU_FAULT;
	cpu->gpr[X86_RSP] += 8;
	cpu->rip = v;
	return EMU_OK;
}

/* 50-57: PUSH reg (64-bit) */
static int fast_push(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (push64(cpu, cpu->gpr[(in->op & 7) | ((in->rex & 1) << 3)]))
		return EMU_FAULT;
	cpu->rip += in->len;
	return EMU_OK;
}

/* 58-5F: POP reg (64-bit) */
static int fast_pop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v;

	if (peek64(cpu, &v))
		return EMU_FAULT;
	cpu->gpr[X86_RSP] += 8;
	cpu->gpr[(in->op & 7) | ((in->rex & 1) << 3)] = v;
	cpu->rip += in->len;
	return EMU_OK;
}

/* FF /0 /1 with a register: INC/DEC (CF kept) */
static inline int incdec(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size, bool dec)
{
	uint64_t old = cpu->gpr[in->rm] & mask_of(size);
	uint64_t res = (dec ? old - 1 : old + 1) & mask_of(size);

	/* CF is kept: already in rflags after INC/DEC, else from the lazy state */
	if (cpu->lf.op != FLOP_INC && cpu->lf.op != FLOP_DEC)
		cpu->rflags = (cpu->rflags & ~FL_CF) | (emu_flag(cpu, FL_CF) ? FL_CF : 0);
	emu_flags_lazy(cpu, dec ? FLOP_DEC : FLOP_INC, size, old, 1, res);
	gpr_set(cpu, in->rm, size, res);
	cpu->rip += in->len;
	return EMU_OK;
}

/* per size and direction: constants for the masks */
static int fast_inc4(struct emu_cpu *cpu, const struct emu_insn *in) { return incdec(cpu, in, 4, false); }
static int fast_dec4(struct emu_cpu *cpu, const struct emu_insn *in) { return incdec(cpu, in, 4, true); }
static int fast_inc8(struct emu_cpu *cpu, const struct emu_insn *in) { return incdec(cpu, in, 8, false); }
static int fast_dec8(struct emu_cpu *cpu, const struct emu_insn *in) { return incdec(cpu, in, 8, true); }

/* F7 /2 with a register: NOT (no flags) */
static int fast_not_reg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	gpr_set(cpu, in->rm, in->opsize, ~cpu->gpr[in->rm]);
	cpu->rip += in->len;
	return EMU_OK;
}

/* 0F C8-CF, 32/64-bit: BSWAP */
static int fast_bswap(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned r = (in->op & 7) | ((in->rex & 1) << 3);

	cpu->gpr[r] = in->opsize == 8 ? __builtin_bswap64(cpu->gpr[r]) : __builtin_bswap32((uint32_t)cpu->gpr[r]);
	cpu->rip += in->len;
	return EMU_OK;
}

/* C1 D1 D3: shifts and rotates by imm8, 1 or CL */
static int fast_shift(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	unsigned count = in->op == 0xc1 ? in->imm & 0xff : in->op == 0xd1 ? 1 : cpu->gpr[X86_RCX] & 0xff;

	if (in->mod != 3)
		calc_ea(&c);
	if (shift(&c, in->opsize, in->reg & 7, count))
		return EMU_FAULT;
	cpu->rip = c.next;
	return EMU_OK;
}

/* 0F AF: IMUL reg, r/m */
static int fast_imul(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	unsigned size = in->opsize;
	uint64_t v, res;

	if (fast_rm_read(&c, size, &v))
		return EMU_FAULT;
	imul_flags(&c, size, (int64_t)sext(cpu->gpr[in->reg], size), (int64_t)sext(v, size), &res);
	gpr_set(cpu, in->reg, size, res);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 0F B6 B7 BE BF: MOVZX / MOVSX; 63: MOVSXD */
static inline int movx(struct emu_cpu *cpu, const struct emu_insn *in, unsigned from)
{
	FAST_CTX(c, cpu, in);
	uint64_t v;

	if (in->mod == 3) {
		v = reg_read(&c, in->rm, from);
	} else {
		calc_ea(&c);
		if (emu_read_inl(cpu, c.seg, c.ea, from, &v))
			return EMU_FAULT;
	}
	if (in->map == MAP_1B ? in->opsize == 8 : in->op >= 0xbe)
		v = sext(v, from);
	gpr_set(cpu, in->reg, in->opsize, v);
	cpu->rip = c.next;
	return EMU_OK;
}

/* per source size: a constant size for the inline TLB path */
static int fast_movx1(struct emu_cpu *cpu, const struct emu_insn *in) { return movx(cpu, in, 1); }
static int fast_movx2(struct emu_cpu *cpu, const struct emu_insn *in) { return movx(cpu, in, 2); }
static int fast_movx4(struct emu_cpu *cpu, const struct emu_insn *in) { return movx(cpu, in, 4); }

/* 0F 40-4F: CMOVcc */
static int fast_cmov(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v;

	if (fast_rm_read(&c, in->opsize, &v))
		return EMU_FAULT;
	gpr_set(cpu, in->reg, in->opsize, emu_cond(cpu, in->op & 15) ? v : cpu->gpr[in->reg]);
	cpu->rip = c.next;
	return EMU_OK;
}

/* ALU on registers only, one handler per operation, size and form, so
 * that the operation and the operand size are constants: 01-39 /r and
 * 03-3B /r with mod 3, 81/83 with mod 3, 85 with mod 3 (TEST). ADC and
 * SBB stay on fast_alu_*. */
static inline void alu_regs(struct emu_cpu *cpu, unsigned op, unsigned size, unsigned dst, uint64_t src)
{
	uint64_t m = mask_of(size), d = cpu->gpr[dst] & m, r;

	src &= m;
	switch (op) {
	case ALU_ADD: r = (d + src) & m; emu_flags_lazy(cpu, FLOP_ADD, size, d, src, r); break;
	case ALU_SUB:
	case ALU_CMP: r = (d - src) & m; emu_flags_lazy(cpu, FLOP_SUB, size, d, src, r); break;
	case ALU_OR: r = d | src; emu_flags_lazy(cpu, FLOP_LOGIC, size, d, src, r); break;
	case ALU_AND: r = d & src; emu_flags_lazy(cpu, FLOP_LOGIC, size, d, src, r); break;
	default: r = d ^ src; emu_flags_lazy(cpu, FLOP_LOGIC, size, d, src, r); break;
	}
	if (op != ALU_CMP)
		cpu->gpr[dst] = r; /* masked: a 32-bit result zero-extends */
}

#define ALU_REGS(opn, op, size) \
	static int fast_##opn##size##_rm_reg(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ alu_regs(cpu, op, size, in->rm, cpu->gpr[in->reg]); cpu->rip += in->len; return EMU_OK; } \
	static int fast_##opn##size##_reg_rm(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ alu_regs(cpu, op, size, in->reg, cpu->gpr[in->rm]); cpu->rip += in->len; return EMU_OK; } \
	static int fast_##opn##size##_rm_imm(struct emu_cpu *cpu, const struct emu_insn *in) \
	{ alu_regs(cpu, op, size, in->rm, in->imm); cpu->rip += in->len; return EMU_OK; }
#define ALU_REGS_SIZES(opn, op) ALU_REGS(opn, op, 4) ALU_REGS(opn, op, 8)
ALU_REGS_SIZES(add, ALU_ADD) ALU_REGS_SIZES(or, ALU_OR) ALU_REGS_SIZES(and, ALU_AND)
ALU_REGS_SIZES(sub, ALU_SUB) ALU_REGS_SIZES(xor, ALU_XOR) ALU_REGS_SIZES(cmp, ALU_CMP)
#undef ALU_REGS_SIZES
#undef ALU_REGS

#define ALU_REGS_ROW(opn) { { fast_##opn##4_rm_reg, fast_##opn##4_reg_rm, fast_##opn##4_rm_imm }, \
			    { fast_##opn##8_rm_reg, fast_##opn##8_reg_rm, fast_##opn##8_rm_imm } }
/* [op][size == 8][0: r/m op= reg, 1: reg op= r/m, 2: r/m op= imm]; NULL for ADC/SBB */
static const emu_exec_fn fast_alu_regs[8][2][3] = {
	[ALU_ADD] = ALU_REGS_ROW(add), [ALU_OR] = ALU_REGS_ROW(or), [ALU_AND] = ALU_REGS_ROW(and),
	[ALU_SUB] = ALU_REGS_ROW(sub), [ALU_XOR] = ALU_REGS_ROW(xor), [ALU_CMP] = ALU_REGS_ROW(cmp),
};
#undef ALU_REGS_ROW

static int fast_test4_rr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t r = (uint32_t)(cpu->gpr[in->rm] & cpu->gpr[in->reg]);

	emu_flags_lazy(cpu, FLOP_LOGIC, 4, (uint32_t)cpu->gpr[in->rm], (uint32_t)cpu->gpr[in->reg], r);
	cpu->rip += in->len;
	return EMU_OK;
}

static int fast_test8_rr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t r = cpu->gpr[in->rm] & cpu->gpr[in->reg];

	emu_flags_lazy(cpu, FLOP_LOGIC, 8, cpu->gpr[in->rm], cpu->gpr[in->reg], r);
	cpu->rip += in->len;
	return EMU_OK;
}

/* Byte operations: 00-3A /r (even, ALU), 80 (ALU imm8), 84 (TEST), 88 8A
 * (MOV), C6 /0 (MOV imm8), B0-B7 (MOV r8, imm8), F6 /0 (TEST imm8);
 * registers through reg_read/reg_write for AH-BH without REX. */
static int alu8_rm(struct emu_cpu *cpu, const struct emu_insn *in, unsigned op, uint64_t src)
{
	FAST_CTX(c, cpu, in);
	uint64_t res;

	if (in->mod == 3) {
		if (alu(&c, 1, reg_read(&c, in->rm, 1), src, op, &res))
			reg_write(&c, in->rm, 1, res);
	} else if (alu_mem(&c, 1, op, src)) {
		return EMU_FAULT;
	}
	cpu->rip = c.next;
	return EMU_OK;
}

static int fast_alu8_rm_reg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);

	return alu8_rm(cpu, in, in->op >> 3, reg_read(&c, in->reg, 1));
}

static int fast_alu8_rm_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return alu8_rm(cpu, in, in->reg & 7, in->imm);
}

/* the r/m8 operand, register or memory */
static inline int rm8_read(struct ctx *c, uint64_t *v)
{
	if (c->in->mod == 3) {
		*v = reg_read(c, c->in->rm, 1);
		return 0;
	}
	calc_ea(c);
	return emu_read_inl(c->cpu, c->seg, c->ea, 1, v);
}

static int fast_alu8_reg_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v, res;

	if (rm8_read(&c, &v))
		return EMU_FAULT;
	if (alu(&c, 1, reg_read(&c, in->reg, 1), v, in->op >> 3, &res))
		reg_write(&c, in->reg, 1, res);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 84 (TEST r/m8, r8) and F6 /0 (TEST r/m8, imm8) */
static int fast_test8(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v, res;

	if (rm8_read(&c, &v))
		return EMU_FAULT;
	alu(&c, 1, v, in->op == 0x84 ? reg_read(&c, in->reg, 1) : in->imm, ALU_AND, &res);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 88: MOV r/m8, r8; C6 /0: MOV r/m8, imm8 */
static int fast_mov8_store(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v = in->op == 0x88 ? reg_read(&c, in->reg, 1) : in->imm;

	if (in->mod == 3) {
		reg_write(&c, in->rm, 1, v);
	} else {
		calc_ea(&c);
		if (emu_write_inl(cpu, c.seg, c.ea, 1, v))
			return EMU_FAULT;
	}
	cpu->rip = c.next;
	return EMU_OK;
}

/* 8A: MOV r8, r/m8 */
static int fast_mov8_load(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v;

	if (rm8_read(&c, &v))
		return EMU_FAULT;
	reg_write(&c, in->reg, 1, v);
	cpu->rip = c.next;
	return EMU_OK;
}

/* B0-B7: MOV r8, imm8 */
static int fast_mov8_imm_reg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);

	reg_write(&c, (in->op & 7) | ((in->rex & 1) << 3), 1, in->imm);
	cpu->rip = c.next;
	return EMU_OK;
}

/* 0F 90-9F: SETcc r/m8 */
static int fast_setcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v = emu_cond(cpu, in->op & 15);

	if (in->mod == 3) {
		reg_write(&c, in->rm, 1, v);
	} else {
		calc_ea(&c);
		if (emu_write_inl(cpu, c.seg, c.ea, 1, v))
			return EMU_FAULT;
	}
	cpu->rip = c.next;
	return EMU_OK;
}

/* 87 with mod 3: XCHG reg, reg (no memory: nothing to lock) */
static int fast_xchg_rr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a = cpu->gpr[in->rm], b = cpu->gpr[in->reg];

	gpr_set(cpu, in->reg, in->opsize, a);
	gpr_set(cpu, in->rm, in->opsize, b);
	cpu->rip += in->len;
	return EMU_OK;
}

/* 90 (no REX.B), 0F 1F: NOP */
static int fast_nop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->rip += in->len;
	return EMU_OK;
}

/* FF /4: JMP r/m64 */
static int fast_jmp_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v;

	if (fast_rm_read(&c, 8, &v))
		return EMU_FAULT;
	if (!canonical_addr(v))
		return emu_fault(cpu, EXC_GP, true, 0), EMU_FAULT;
	cpu->rip = v;
	return EMU_OK;
}

/* FF /2: CALL r/m64 */
static int fast_call_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	FAST_CTX(c, cpu, in);
	uint64_t v;

	if (fast_rm_read(&c, 8, &v))
		return EMU_FAULT;
	if (!canonical_addr(v))
		return emu_fault(cpu, EXC_GP, true, 0), EMU_FAULT;
	if (push64(cpu, c.next))
		return EMU_FAULT;
	cpu->rip = v;
	return EMU_OK;
}

/* C1 D1 D3 with a register, 32/64-bit: ROL/ROR/SHL/SHR/SAR by imm8, 1 or
 * CL (RCL/RCR and SAL's /6 stay on fast_shift) */
static int fast_shift_reg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, bits = size * 8, op = in->reg & 7;
	unsigned count = in->op == 0xc1 ? in->imm : in->op == 0xd1 ? 1 : cpu->gpr[X86_RCX];
	uint64_t m = mask_of(size), v = cpu->gpr[in->rm] & m, r;

	count &= size == 8 ? 63 : 31;
	if (count) {
		switch (op) {
		case 0: /* ROL */
		case 1: { /* ROR */
			unsigned n = count & (bits - 1);
			bool cf, of;

			r = !n ? v : op == 0 ? ((v << n) | (v >> (bits - n))) & m
					     : ((v >> n) | (v << (bits - n))) & m;
			cf = op == 0 ? r & 1 : (r >> (bits - 1)) & 1;
			of = op == 0 ? ((r >> (bits - 1)) & 1) ^ cf : ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1;
			emu_flags_update(cpu, FL_CF | FL_OF, (cf ? FL_CF : 0) | (of ? FL_OF : 0));
			break;
		}
		case 4:
			r = (v << count) & m;
			emu_flags_lazy(cpu, FLOP_SHL, size, v, count, r);
			break;
		case 5:
			r = v >> count;
			emu_flags_lazy(cpu, FLOP_SHR, size, v, count, r);
			break;
		default:
			r = (uint64_t)((int64_t)sext(v, size) >> count) & m;
			emu_flags_lazy(cpu, FLOP_SAR, size, v, count, r);
			break;
		}
		v = r;
	}
	gpr_set(cpu, in->rm, size, v); /* a zero count still zero-extends a 32-bit register */
	cpu->rip += in->len;
	return EMU_OK;
}

static int exec_insn(struct emu_cpu *cpu, const struct emu_insn *in);

emu_exec_fn emu_exec_pick(const struct emu_insn *in, enum emu_mode mode)
{
	bool wide = in->opsize == 4 || in->opsize == 8, reg = in->has_modrm && in->mod == 3;
	unsigned op = in->op, grp = in->reg & 7;

	if (mode != MODE_LONG64 || in->lock || in->rep)
		return exec_insn;
	if (in->map == MAP_1B) {
		if (op < 0x40 && (op & 5) == 1 && reg && wide && fast_alu_regs[op >> 3][0][0])
			return fast_alu_regs[op >> 3][in->opsize == 8][(op >> 1) & 1];
		if (op < 0x40 && (op & 7) == 1 && wide)
			return in->opsize == 8 ? fast_alu_rm_reg8 : fast_alu_rm_reg4;
		if (op < 0x40 && (op & 7) == 3 && wide)
			return in->opsize == 8 ? fast_alu_reg_rm8 : fast_alu_reg_rm4;
		if (op < 0x40 && (op & 7) == 5 && wide)
			return fast_alu_acc_imm;
		if (op < 0x40 && (op & 7) == 0)
			return fast_alu8_rm_reg;
		if (op < 0x40 && (op & 7) == 2)
			return fast_alu8_reg_rm;
		switch (op) {
		case 0x50 ... 0x57: return in->opsize == 8 ? fast_push : exec_insn;
		case 0x58 ... 0x5f: return in->opsize == 8 ? fast_pop : exec_insn;
		case 0x63: return wide ? fast_movx4 : exec_insn;
		case 0x70 ... 0x7f: return fast_jcc[op & 15];
		case 0x80: return fast_alu8_rm_imm;
		case 0x81: case 0x83:
			if (reg && wide && fast_alu_regs[grp][0][0])
				return fast_alu_regs[grp][in->opsize == 8][2];
			return !wide ? exec_insn : in->opsize == 8 ? fast_alu_rm_imm8 : fast_alu_rm_imm4;
		case 0x84: return fast_test8;
		case 0x85:
			if (reg && wide)
				return in->opsize == 8 ? fast_test8_rr : fast_test4_rr;
			return wide ? fast_test : exec_insn;
		case 0x87: return reg && wide ? fast_xchg_rr : exec_insn;
		case 0x88: return fast_mov8_store;
		case 0x89:
			if (!wide)
				return exec_insn;
			if (reg)
				return in->opsize == 8 ? fast_mov_rr8 : fast_mov_rr4;
			return in->opsize == 8 ? fast_mov_store8 : fast_mov_store4;
		case 0x8a: return fast_mov8_load;
		case 0x8b:
			if (!wide)
				return exec_insn;
			if (reg)
				return in->opsize == 8 ? fast_mov_rr_load8 : fast_mov_rr_load4;
			return in->opsize == 8 ? fast_mov_load8 : fast_mov_load4;
		case 0x8d: return wide ? fast_lea : exec_insn;
		case 0x90: return in->rex & 1 ? exec_insn : fast_nop;
		case 0xb0 ... 0xb7: return fast_mov8_imm_reg;
		case 0xb8 ... 0xbf: return wide ? fast_mov_imm_reg : exec_insn;
		case 0xc1:
			if (wide && reg && grp != 2 && grp != 3 && grp != 6)
				return fast_shift_reg;
			return wide ? fast_shift : exec_insn;
		case 0xd1: case 0xd3:
			if (wide && reg && grp != 2 && grp != 3 && grp != 6)
				return fast_shift_reg;
			return wide ? fast_shift : exec_insn;
		case 0xc3: return fast_ret;
		case 0xc6: return grp == 0 ? fast_mov8_store : exec_insn;
		case 0xc7: return wide && grp == 0 ? fast_mov_imm_rm : exec_insn;
		case 0xe8: return fast_call;
		case 0xe9: case 0xeb: return fast_jmp;
		case 0xf6: return grp == 0 ? fast_test8 : exec_insn;
		case 0xf7: return wide && reg && grp == 2 ? fast_not_reg : exec_insn;
		case 0xff:
			if (wide && reg && grp < 2)
				return in->opsize == 8 ? (grp ? fast_dec8 : fast_inc8) : (grp ? fast_dec4 : fast_inc4);
			if (in->opsize == 8 && grp == 4)
				return fast_jmp_rm;
			if (in->opsize == 8 && grp == 2)
				return fast_call_rm;
			return exec_insn;
		}
		return exec_insn;
	}
	if (in->map == MAP_0F) {
		switch (op) {
		case 0x1f: return fast_nop;
		case 0xc8 ... 0xcf: return wide ? fast_bswap : exec_insn;
		case 0x40 ... 0x4f: return wide ? fast_cmov : exec_insn;
		case 0x80 ... 0x8f: return fast_jcc[op & 15];
		case 0x90 ... 0x9f: return fast_setcc;
		case 0xaf: return wide ? fast_imul : exec_insn;
		case 0xb6: case 0xbe: return wide ? fast_movx1 : exec_insn;
		case 0xb7: case 0xbf: return wide ? fast_movx2 : exec_insn;
		}
	}
	return exec_insn;
}

/* ---- flags nobody sees ----
 *
 * A rotate writes CF and OF, at the price of evaluating the lazy flags
 * (it keeps the other four). In compiled code (SHA-256, MD5, hashes) the
 * next flag-writing ADD/XOR/AND comes a few register-only instructions
 * later, so nothing ever reads them. Within a block, a rotate's flags
 * are dead when, before anything could read them, an instruction
 * overwrites both CF and OF; in between only instructions that neither
 * read flags nor can fault or leave the block (a fault or an interrupt
 * would see the flags). The block must run to its end for this to hold:
 * the executor runs a block cut short by its budget with exact handlers
 * (run_insns). */

enum flag_use { FU_BARRIER, FU_NEUTRAL, FU_KILL };

static enum flag_use flag_use(const struct emu_insn *in)
{
	bool reg = in->has_modrm && in->mod == 3;
	unsigned op = in->op, grp = in->reg & 7;

	if (in->lock || in->rep)
		return FU_BARRIER;
	if (in->map == MAP_1B) {
		if (op < 0x40 && (op & 7) < 4)  /* ALU r/m, reg */
			return !reg ? FU_BARRIER : (op >> 3) == ALU_ADC || (op >> 3) == ALU_SBB ? FU_BARRIER : FU_KILL;
		switch (op) {
		case 0x80: case 0x81: case 0x83:
			return reg && grp != ALU_ADC && grp != ALU_SBB ? FU_KILL : FU_BARRIER;
		case 0x84: case 0x85:
			return reg ? FU_KILL : FU_BARRIER;
		case 0x86 ... 0x8b:
			return reg ? FU_NEUTRAL : FU_BARRIER;
		case 0x8d: /* LEA (a register operand is #UD) */
			return reg ? FU_BARRIER : FU_NEUTRAL;
		case 0x90 ... 0x97: case 0xb0 ... 0xbf: /* XCHG rAX, NOP; MOV reg, imm */
			return FU_NEUTRAL;
		case 0xc6: case 0xc7:
			return reg && grp == 0 ? FU_NEUTRAL : FU_BARRIER;
		case 0xc1: case 0xd1: {
			unsigned count = (op == 0xd1 ? 1 : in->imm) & (in->opsize == 8 ? 63 : 31);
			if (!reg || grp == 2 || grp == 3 || grp == 6) /* RCL/RCR read CF */
				return FU_BARRIER;
			return count ? FU_KILL : FU_NEUTRAL;
		}
		case 0xf6: case 0xf7:
			return reg && grp == 2 ? FU_NEUTRAL : FU_BARRIER; /* NOT */
		}
		return FU_BARRIER;
	}
	if (in->map == MAP_0F) {
		switch (op) {
		case 0x1f: case 0xc8 ... 0xcf:
			return FU_NEUTRAL;
		case 0xb6: case 0xb7: case 0xbe: case 0xbf:
			return reg ? FU_NEUTRAL : FU_BARRIER;
		}
	}
	return FU_BARRIER;
}

/* fast_shift_reg for ROL/ROR without the flags */
static int fast_rot_reg_nf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, bits = size * 8;
	unsigned count = in->op == 0xc1 ? in->imm : in->op == 0xd1 ? 1 : cpu->gpr[X86_RCX];
	uint64_t m = mask_of(size), v = cpu->gpr[in->rm] & m;
	unsigned n = count & (bits - 1);

	if (n)
		v = (in->reg & 7) == 0 ? ((v << n) | (v >> (bits - n))) & m : ((v >> n) | (v << (bits - n))) & m;
	gpr_set(cpu, in->rm, size, v);
	cpu->rip += in->len;
	return EMU_OK;
}

void emu_exec_pick_block(struct emu_insn *insns, unsigned n, enum emu_mode mode)
{
	for (unsigned i = 0; i < n; i++) {
		insns[i].exec = emu_exec_pick(&insns[i], mode);
		insns[i].flags_dead = false;
	}
	for (unsigned i = 0; i < n; i++) {
		struct emu_insn *in = &insns[i];

		if (in->exec != fast_shift_reg || (in->reg & 7) > 1)
			continue;
		for (unsigned j = i + 1; j < n; j++) {
			enum flag_use u = flag_use(&insns[j]);

			if (u == FU_BARRIER)
				break;
			if (u == FU_KILL) {
				in->exec = fast_rot_reg_nf;
				in->flags_dead = true;
				break;
			}
		}
	}
}

/* ---- fetch, decode, execute ---- */

/* The slow fetch: through segmentation and the TLB into a buffer, both
 * pages of an instruction that crosses one, decoded every time. For what
 * the block cache does not take: page-crossing instructions, code in MMIO,
 * bytes that do not decode (the fault comes from here). */
static int fetch_decode(struct emu_cpu *cpu, struct emu_insn *in)
{
	uint8_t buf[EMU_INSN_MAX];
	uint64_t linear;
	unsigned avail;
	int err, r;

	if ((err = emu_linear(cpu, SR_CS, cpu->rip, 1, ACC_EXEC, &linear)))
		return err;
	avail = MIN(EMU_INSN_MAX, 4096 - (linear & 0xfff));
	if ((err = emu_read_linear(cpu, linear, buf, avail, ACC_EXEC)))
		return err;
	r = emu_decode(buf, avail, cpu->mode, in);
	if (r == DECODE_NEED_MORE) {
		/* The instruction crosses into the next page: fetch that too. */
		if ((err = emu_read_linear(cpu, linear + avail, buf + avail, EMU_INSN_MAX - avail, ACC_EXEC)))
			return err;
		r = emu_decode(buf, EMU_INSN_MAX, cpu->mode, in);
	}
	if (r == DECODE_TOO_LONG)
		return emu_fault(cpu, EXC_GP, true, 0);
	if (r != DECODE_OK)
		return emu_fault(cpu, EXC_UD, false, 0);
	return 0;
}

/* Executes one decoded instruction at cpu->rip: EMU_OK (cpu->rip is the
 * next instruction's), EMU_HALT, or EMU_FAULT with the state as before. */
static int exec_insn(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct ctx c = { .cpu = cpu, .in = in };
	bool shadow = cpu->interrupt_shadow;
	int r;

	/* IP wraps at the code segment's size */
	c.next = cpu->rip + in->len;
	if (cpu->mode != MODE_LONG64)
		c.next &= cpu->seg[SR_CS].db ? 0xffffffffULL : 0xffffULL;
	if (in->has_modrm && in->mod != 3)
		calc_ea(&c);
	r = in->map == MAP_1B ? exec_1b(&c) : in->map == MAP_0F ? exec_0f(&c) : system_or_ud(&c);
	if (r < 0)
		return EMU_FAULT;
	cpu->rip = c.next;
	if (shadow) /* the shadow of STI / MOV SS covers one instruction: this one */
		cpu->interrupt_shadow = false;
	return r == EMU_HALT ? EMU_HALT : EMU_OK;
}

int emu_exec_exact(struct emu_cpu *cpu, const struct emu_insn *in)
{
	return exec_insn(cpu, in);
}

/* The code page of cpu->rip for a fetch at the current CPL: its host
 * address (NULL: not RAM) and physical page. The translation is the TLB's,
 * remembered in cpu->fetch until the TLB, the paging mode or the CPL
 * change (tlb_gen). Segmentation (CS limit outside 64-bit mode) is
 * checked on every call. */
static int code_page(struct emu_cpu *cpu, uint8_t **host, uint64_t *ppage)
{
	uint64_t linear = cpu->rip, phys;
	int err;

	if (cpu->mode != MODE_LONG64 && (err = emu_linear(cpu, SR_CS, cpu->rip, 1, ACC_EXEC, &linear)))
		return err;
	if ((linear >> 12) != cpu->fetch.vpage || cpu->fetch.gen != cpu->tlb_gen ||
	    cpu->fetch.cpl != cpu->cpl) {
		if ((err = emu_mmu_translate(cpu, linear, ACC_EXEC | (cpu->cpl == 3 ? ACC_USER : 0),
					     &phys, host)))
			return err;
		cpu->fetch.vpage = linear >> 12;
		cpu->fetch.ppage = phys >> 12;
		cpu->fetch.host = *host;
		cpu->fetch.gen = cpu->tlb_gen;
		cpu->fetch.cpl = cpu->cpl;
	}
	*host = cpu->fetch.host;
	*ppage = cpu->fetch.ppage;
	return 0;
}

/* One instruction decoded from guest memory, not cached (it crosses a
 * page, or is not in RAM); *sync: a new session must start after it. */
static int step_slow(struct emu_cpu *cpu, bool *sync)
{
	struct emu_insn in;

	*sync = true;
	if (fetch_decode(cpu, &in))
		return EMU_FAULT;
	*sync = !emu_insn_keeps_session(&in);
	return exec_insn(cpu, &in);
}

/* Runs n (>= 1) of the full instructions of a block from cpu->rip, or fewer: it
 * leaves the block when an instruction did not return EMU_OK, did not
 * fall through (a taken branch, a paused REP string, IP wrapping), or
 * wrote to the block's code page (cpu->code_written, see access.c): the
 * next lookup validates the bytes again. *ran is how many ran. */
static inline __attribute__((always_inline)) int run_insns(struct emu_cpu *cpu, const struct emu_insn *in,
							   unsigned n, unsigned full, unsigned *ran)
{
	const struct emu_insn *first = in, *end = in + n;
	/* the CS limit, outside 64-bit and real mode: the fetch checked the
	 * block's first instruction */
	bool limit = cpu->mode != MODE_LONG64 && cpu->mode != MODE_REAL;
	uint64_t expect = cpu->rip;
	int st;

	cpu->code_written = false;
	if (__builtin_expect(n < full, 0)) {
		/* cut short by the budget: the flags must be exact where it stops */
		do {
			st = in->flags_dead || cpu->interrupt_shadow ? exec_insn(cpu, in) : in->exec(cpu, in);
			expect += in->len;
			in++;
		} while (st == EMU_OK && in != end && cpu->rip == expect && !cpu->code_written &&
			 !(limit && cpu->rip > cpu->seg[SR_CS].limit));
		goto out;
	}
	if (cpu->interrupt_shadow) {
		/* The handlers leave the interrupt shadow alone: ending it is the
		 * general path's (only the first instruction of a block can be in
		 * one: what starts a shadow ends its block). */
		st = exec_insn(cpu, in);
		expect += in->len;
		in++;
		if (st != EMU_OK || in == end || cpu->rip != expect || cpu->code_written)
			goto out;
	}
	for (;;) {
		if (limit && in != first && cpu->rip > cpu->seg[SR_CS].limit) {
			st = EMU_OK; /* the fetch of this one raises #GP */
			goto out;
		}
		st = in->exec(cpu, in);
		expect += in->len;
		in++;
		if (__builtin_expect(st != EMU_OK || cpu->rip != expect || cpu->code_written, 0) || in == end)
			break;
	}
out:
	*ran = (unsigned)(in - first);
	return st;
}

/* Runs a block's translated prefix (jit.h): registers in place, the
 * host's flags taken as the guest's where the prefix wrote them. The
 * code may go on into linked blocks (emu_jit_link): *bp and *inp are
 * then the block it left from, *entry the RIP it entered that one at.
 * 0: it ran to the end of that block's prefix, or left for the
 * interpreter at instruction *n; 1: a Jcc in it was taken (RIP at the
 * target), or it stopped after a helper (*st its status); -1: that
 * target is not canonical (#GP, RIP at the Jcc). *n: instructions run in
 * that block; *link: the exit's link record (0: none). */
static inline int run_native(struct emu_cpu *cpu, struct emu_block **bp, const struct emu_insn **inp,
			     uint64_t *entry, unsigned *n, int *st, unsigned *link)
{
	uint64_t r, next;
	const struct emu_insn *in;
	unsigned k, kind;

	cpu->jit_block = NULL;
	r = (*bp)->native(cpu);
	cpu->jc_fill = (r & EMU_JIT_INDIRECT) != 0;
	k = r & 0xff;
	kind = (r >> 8) & 3;
	*link = (r >> EMU_JIT_LINK_SHIFT) & EMU_JIT_LINK_MASK;
	if (cpu->jit_block) {
		*bp = cpu->jit_block;
		*inp = &emu_icache_tls->insns[(*bp)->first];
		*entry = cpu->jit_entry;
	}
	in = *inp;

	if (kind != JIT_FLAGS_NONE) {
		uint64_t fl = cpu->jit_flags & FL_ARITH;

		if (kind == JIT_FLAGS_LOGIC)
			fl &= ~FL_AF;
		cpu->rflags = (cpu->rflags & ~FL_ARITH) | fl;
		cpu->lf.op = FLOP_NONE;
	}
	cpu->rip += r >> 32;
	cpu->jit_insns += k;
	*n = k;
	if (r & EMU_JIT_STOP) {
		*st = (int)((r >> EMU_JIT_STATUS_SHIFT) & 3);
		return 1;
	}
	if (!(r & EMU_JIT_TAKEN))
		return 0;
	*n = k + 1;
	next = cpu->rip + in[k].len + in[k].imm;
	if (!canonical_addr(next)) {
		emu_fault(cpu, EXC_GP, true, 0);
		return -1;
	}
	cpu->rip = next;
	return 1;
}

/* A block with a translated prefix: the prefix (when the budget and the
 * interrupt shadow allow), going on into linked blocks, then what it
 * left of the last one interpreted. *bp, *inp, *entry: as run_native's;
 * *last: the instructions run in that block's last pass; *link: as
 * run_native's. Out of line: the interpreter's path stays as it was. */
static __attribute__((noinline)) int run_translated(struct emu_cpu *cpu, struct emu_block **bp,
						    const struct emu_insn **inp, uint64_t *entry,
						    unsigned budget, unsigned *ran, unsigned *last,
						    unsigned *link)
{
	unsigned k = 0, n, extra = 0;
	int left = 0, st = EMU_OK;
	const struct emu_block *b = *bp;

	*link = 0;
	if (b->native_n <= budget) {
		/* In the shadow of an STI (the block's first instruction), the
		 * code runs as well: interrupts are taken outside emu_run, and
		 * the shadow ends once an instruction has run (the helpers leave
		 * it alone); if none did, the interpreter's first one ends it. */
		bool shadow = cpu->interrupt_shadow;

		/* set by a store into this page, if it was one of this code's
		 * (a helper's: the helper stub clears it first) */
		cpu->code_written = false;
		cpu->jit_left = budget;
		left = run_native(cpu, bp, inp, entry, &k, &st, link);
		b = *bp;
		extra = (unsigned)(budget - cpu->jit_left); /* passes before the last */
		cpu->jit_insns += extra;
		if (shadow && (k || extra))
			cpu->interrupt_shadow = false;
	}
	if (left || k == b->ninsn || k + extra >= budget) {
		*ran = k + extra;
		*last = k;
		return left < 0 ? EMU_FAULT : st;
	}
	st = run_insns(cpu, *inp + k, MIN((unsigned)b->ninsn - k, budget - k - extra), b->ninsn - k, &n);
	*ran = n + k + extra;
	*last = n + k;
	return st;
}

/* Runs block after block. A block is found by its physical address
 * through the cache's hash table (emu_icache_find), or — chaining — from
 * the block that ran before it, which remembers its successors: taken
 * when both are in 64-bit mode on the same code page, that page's
 * translation still the one cpu->fetch holds, and the previous block
 * ended with an instruction that changes nothing the fetch depends on
 * (icache.c: chains()). A chained entry skips the fetch's translation and
 * the hash; both skip the byte compare for blocks already compared in
 * this session (icache.h). A session is this call, cut by every store of
 * this CPU into a page of validated code (emu_code_store) and after every
 * block that ends in a serialising instruction or one that may change
 * what code is (CPUID, IRET, MOV CR, WRMSR, far transfers...; not CLI,
 * STI, RDTSC or SWAPGS: icache.c, emu_insn_keeps_session): code that
 * another vCPU or a device wrote is seen from there on. The budget and the kick flag
 * are looked at after every block, chained or not. */
int emu_run(struct emu_cpu *cpu, unsigned budget, unsigned *ran)
{
	struct emu_icache *c = emu_icache_get();
	struct emu_block *prev = NULL, *b;
	const struct emu_insn *in;
	uint64_t cur_page = ~0ULL, ppage, entry = 0;
	unsigned done = 0, n, last, link = 0;
	bool followed, sync;
	uint8_t *host;
	int st;

	if (!budget)
		budget = 1;
	if (c) {
		if (!cpu->keep_session)
			emu_icache_foreign(cpu, c);
		emu_code_sync(cpu, c);
	}
	cpu->keep_session = false;
	for (;;) {
		b = NULL;
		if (prev && cpu->mode == MODE_LONG64 && (cpu->rip >> 12) == cpu->fetch.vpage &&
		    cpu->fetch.gen == cpu->tlb_gen && cpu->fetch.cpl == cpu->cpl &&
		    cpu->fetch.ppage == cur_page) {
			b = emu_icache_follow(cpu, prev, cpu->rip != entry + prev->nbytes,
					      cur_page << 12 | (cpu->rip & 0xfff), cpu->fetch.host,
					      MODE_LONG64, &in);
		}
		followed = b != NULL;
		if (!b) {
			if (code_page(cpu, &host, &ppage)) {
				st = EMU_FAULT;
				n = 1; /* the faulting one counts */
				goto next;
			}
			if (!host || !c) {
				cur_page = ~0ULL;
				prev = NULL;
				st = step_slow(cpu, &sync);
				if (c && sync) /* a serialising one */
					emu_icache_foreign(cpu, c);
				n = 1;
				goto next;
			}
			if (ppage != cur_page) {
				cur_page = ppage;
				prev = NULL; /* links stay within a page */
			}
			b = emu_icache_find(cpu, ppage << 12 | (cpu->rip & 0xfff), host, cpu->mode, &in);
			if (!b) {
				cur_page = ~0ULL;
				prev = NULL;
				st = step_slow(cpu, &sync); /* one that crosses a page, say */
				if (sync)
					emu_icache_foreign(cpu, c);
				n = 1;
				goto next;
			}
			if (prev && b->mode == MODE_LONG64) /* prev: chains (below) */
				prev->next[cpu->rip != entry + prev->nbytes] = b;
		}
		if (c->jit && b->heat < 255 && ++b->heat == c->jit_hot && b->mode == MODE_LONG64)
			emu_icache_translate(b, cpu->cpl);
		/* The previous block left through a RET that the jump cache did
		 * not know: now it does. */
		if (cpu->jc_fill) {
			cpu->jc_fill = false;
			if (b->native && cpu->mode == MODE_LONG64)
				emu_jit_jcache_fill(c->jit, cpu, b);
		}
		/* The previous block left through a linkable exit to this one,
		 * on its page: from now on its code goes on into this one's. */
		if (link && followed && b->native)
			emu_jit_link(c->jit, prev->native, link, b, (int64_t)(b->phys - prev->phys));
		entry = cpu->rip;
		cpu->code_page = cur_page;
		if (__builtin_expect(b->native_n != 0, 0)) {
			st = run_translated(cpu, &b, &in, &entry, budget - done, &n, &last, &link);
		} else {
			st = run_insns(cpu, in, MIN((unsigned)b->ninsn, budget - done), b->ninsn, &n);
			last = n;
			link = 0;
		}
		/* the next block may be chained to this one when what ran last
		 * in it chains: its last instruction, or a straight one before
		 * it (a taken Jcc) */
		prev = (b->chain || last < b->ninsn) && b->mode == MODE_LONG64 ? b : NULL;
		if (b->sync && last == b->ninsn) /* its last one ran (passes back to its start aside) */
			emu_icache_foreign(cpu, c); /* after a serialising instruction, among others */
		if (cpu->code_written)
			prev = NULL; /* the session is new already (emu_code_store) */
next:
		done += n;
		if (st != EMU_OK || done >= budget ||
		    (cpu->stop && atomic_load_explicit(cpu->stop, memory_order_relaxed)))
			break;
	}
	*ran = done;
	return st;
}

int emu_step(struct emu_cpu *cpu)
{
	unsigned ran;

	return emu_run(cpu, 1, &ran);
}

void emu_cpu_update_mode(struct emu_cpu *cpu)
{
	const struct x86_seg *cs = &cpu->seg[SR_CS];

	if (!(cpu->cr0 & X86_CR0_PE))
		cpu->mode = MODE_REAL;
	else if (cpu->efer & X86_EFER_LMA)
		cpu->mode = cs->l ? MODE_LONG64 : cs->db ? MODE_COMPAT32 : MODE_COMPAT16;
	else
		cpu->mode = cs->db ? MODE_PROT32 : MODE_PROT16;
	cpu->cpl = cpu->mode == MODE_REAL ? 0 : cs->dpl;
}

void emu_cpu_reset(struct emu_cpu *cpu)
{
	struct guest_mem *mem = cpu->mem;
	struct machine *m = cpu->machine;
	struct emu_lapic *l = cpu->lapic;
	unsigned index = cpu->index, ncpus = cpu->ncpus;
	struct x86_seg data = { .limit = 0xffff, .type = 0x3, .s = 1, .present = 1 };

	memset(cpu, 0, sizeof(*cpu));
	cpu->mem = mem;
	cpu->machine = m;
	cpu->lapic = l;
	cpu->index = index;
	cpu->ncpus = ncpus;
	for (unsigned i = 0; i < 6; i++)
		cpu->seg[i] = data;
	cpu->seg[SR_CS] = (struct x86_seg){ .base = 0xffff0000, .limit = 0xffff, .sel = 0xf000,
					    .type = 0xb, .s = 1, .present = 1 };
	cpu->rip = 0xfff0;
	cpu->gpr[X86_RDX] = 0x600; /* family 6 */
	cpu->rflags = 0x2;
	cpu->cr0 = 0x60000010;
	cpu->gdt.limit = cpu->idt.limit = 0xffff;
	cpu->ldt = (struct x86_seg){ .limit = 0xffff, .type = 0x2, .present = 1 };
	cpu->tr = (struct x86_seg){ .limit = 0xffff, .type = 0xb, .present = 1 };
	cpu->dr[6] = 0xffff0ff0;
	cpu->dr[7] = 0x400;
	cpu->msr.pat = 0x0007040600070406ULL;
	cpu->xcr0 = 1;
	memset(cpu->fxsave, 0, sizeof(cpu->fxsave));
	cpu->fxsave[0] = 0x7f; cpu->fxsave[1] = 0x03;      /* FCW 0x037f */
	cpu->fxsave[24] = 0x80; cpu->fxsave[25] = 0x1f;    /* MXCSR 0x1f80 */
	emu_cpu_update_mode(cpu);
	emu_tlb_flush(cpu, true);
}
