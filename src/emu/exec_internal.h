/* What the executor's files share: the decoded-instruction context and
 * the small register and operand helpers. Internal to src/emu. */
#ifndef KUMO_EMU_EXEC_INTERNAL_H
#define KUMO_EMU_EXEC_INTERNAL_H

#include "exec.h"

struct ctx {
	struct emu_cpu *cpu;
	const struct emu_insn *in;
	uint64_t next;      /* RIP of the next instruction */
	uint64_t ea;        /* memory operand: offset in its segment */
	unsigned seg;
	unsigned alu_op;    /* for alu_rmw */
};

#define GPR(c, r) ((c)->cpu->gpr[r])

static inline uint64_t mask_of(unsigned size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static inline uint64_t sext(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;
	return (uint64_t)((int64_t)(v << sh) >> sh);
}

static inline int ud(struct ctx *c)
{
	return emu_fault(c->cpu, EXC_UD, false, 0);
}

static inline int gp0(struct ctx *c)
{
	return emu_fault(c->cpu, EXC_GP, true, 0);
}

/* ---- registers ---- */

static inline bool high_byte(const struct ctx *c, unsigned reg, unsigned size)
{
	return size == 1 && !c->in->rex && reg >= 4 && reg < 8;
}

static inline uint64_t reg_read(struct ctx *c, unsigned reg, unsigned size)
{
	if (high_byte(c, reg, size))
		return (GPR(c, reg - 4) >> 8) & 0xff;
	return GPR(c, reg) & mask_of(size);
}

static inline void reg_write(struct ctx *c, unsigned reg, unsigned size, uint64_t v)
{
	uint64_t *r;

	if (high_byte(c, reg, size)) {
		r = &GPR(c, reg - 4);
		*r = (*r & ~0xff00ULL) | ((v & 0xff) << 8);
		return;
	}
	r = &GPR(c, reg);
	if (size == 4)
		*r = (uint32_t)v;         /* 32-bit writes zero-extend */
	else if (size == 8)
		*r = v;
	else
		*r = (*r & ~mask_of(size)) | (v & mask_of(size));
}

/* ---- operands ---- */

static inline uint64_t addr_mask(const struct ctx *c)
{
	return mask_of(c->in->addrsize);
}

static inline void calc_ea(struct ctx *c)
{
	const struct emu_insn *in = c->in;
	uint64_t ea = in->disp;

	if (in->base >= 0)
		ea += GPR(c, in->base);
	if (in->index >= 0)
		ea += GPR(c, in->index) * in->scale;
	if (in->rip_relative)
		ea += c->next;
	c->ea = ea & addr_mask(c);
	if (in->seg != SR_NONE)
		c->seg = in->seg;
	else if (in->base == 4 || in->base == 5) /* rSP, rBP: the stack segment */
		c->seg = SR_SS;
	else
		c->seg = SR_DS;
}

static inline bool is_mem(const struct ctx *c)
{
	return c->in->mod != 3;
}

static inline int rm_read(struct ctx *c, unsigned size, uint64_t *v)
{
	if (!is_mem(c)) {
		*v = reg_read(c, c->in->rm, size);
		return 0;
	}
	return emu_read_inl(c->cpu, c->seg, c->ea, size, v);
}

static inline int rm_write(struct ctx *c, unsigned size, uint64_t v)
{
	if (!is_mem(c)) {
		reg_write(c, c->in->rm, size, v);
		return 0;
	}
	return emu_write_inl(c->cpu, c->seg, c->ea, size, v);
}

/* exec.c */
/* The handler for a decoded instruction in mode (struct emu_insn.exec):
 * one of the specialised ones for the common 64-bit forms, or the general
 * one. Both return EMU_OK (cpu->rip at the next instruction), EMU_HALT or
 * EMU_FAULT (state as before the instruction). */
typedef int (*emu_exec_fn)(struct emu_cpu *cpu, const struct emu_insn *in);
emu_exec_fn emu_exec_pick(const struct emu_insn *in, enum emu_mode mode);
/* emu_exec_pick() for each of a block's n instructions, then the
 * flag-less handlers where the block itself overwrites the flags. */
void emu_exec_pick_block(struct emu_insn *insns, unsigned n, enum emu_mode mode);
int emu_push(struct emu_cpu *cpu, unsigned size, uint64_t v) WUR;
int emu_peek(struct emu_cpu *cpu, unsigned size, unsigned offset, uint64_t *v) WUR;
void emu_pop_commit(struct emu_cpu *cpu, unsigned size);
unsigned emu_stack_size(const struct emu_cpu *cpu);
int emu_jump(struct ctx *c, uint64_t target) WUR;

/* system.c: system instructions, descriptors, CPUID, MSRs */
int emu_exec_system(struct ctx *c, bool *handled) WUR;
int emu_load_seg(struct emu_cpu *cpu, unsigned sreg, uint16_t sel) WUR;
int emu_far_jump(struct ctx *c, uint16_t sel, uint64_t offset, bool call, unsigned size) WUR;

/* deliver.c: exceptions and interrupts through the IDT, IRET */
int emu_deliver(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error,
		bool software, uint64_t return_rip) WUR;
int emu_iret(struct ctx *c) WUR;

#endif
