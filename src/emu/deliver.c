/* Exceptions and interrupts through the IDT in real, protected and long
 * mode (interrupt and trap gates; task gates are refused), the privilege
 * change through the TSS (RSP0/SS:ESP0, IST), and IRET back. A fault while
 * delivering becomes #DF; a fault while delivering #DF is a triple fault. */
#include "exec_internal.h"
#include "flags.h"

#include <string.h>

#define GATE_INT32  0xe
#define GATE_TRAP32 0xf
#define GATE_INT16  0x6
#define GATE_TRAP16 0x7

static bool contributory(uint8_t v)
{
	return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP);
}

static int deliver_real(struct emu_cpu *cpu, uint8_t vector, uint64_t ret)
{
	uint64_t ip, cs;
	uint64_t flags = emu_flags_get(cpu);
	int err;

	if ((unsigned)vector * 4 + 3 > cpu->idt.limit)
		return emu_fault(cpu, EXC_GP, true, vector * 8 + 2);
	if ((err = emu_read_linear(cpu, cpu->idt.base + vector * 4, &ip, 2, ACC_READ)) ||
	    (err = emu_read_linear(cpu, cpu->idt.base + vector * 4 + 2, &cs, 2, ACC_READ)))
		return err;
	ip &= 0xffff;
	cs &= 0xffff;
	if ((err = emu_push(cpu, 2, flags)) || (err = emu_push(cpu, 2, cpu->seg[SR_CS].sel)) ||
	    (err = emu_push(cpu, 2, ret)))
		return err;
	emu_flags_set(cpu, flags & ~(FL_IF | FL_TF | FL_AC | FL_RF));
	cpu->seg[SR_CS].sel = cs;
	cpu->seg[SR_CS].base = cs << 4;
	cpu->rip = ip;
	return 0;
}

/* The stack pointer for CPL new_cpl (or IST n) from the TSS. */
static int tss_stack(struct emu_cpu *cpu, unsigned new_cpl, unsigned ist, uint64_t *sp, uint16_t *ss)
{
	uint64_t v = 0;
	unsigned off;
	int err;

	if (cpu->efer & X86_EFER_LMA) {
		off = ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * new_cpl;
		if (off + 7 > cpu->tr.limit)
			return emu_fault(cpu, EXC_TS, true, cpu->tr.sel & 0xfffc);
		if ((err = emu_read_linear(cpu, cpu->tr.base + off, &v, 8, ACC_READ | ACC_IMPLICIT)))
			return err;
		*sp = v;
		*ss = new_cpl;  /* a null selector with RPL = new CPL */
		return 0;
	}
	off = 4 + 8 * new_cpl;
	if (off + 5 > cpu->tr.limit)
		return emu_fault(cpu, EXC_TS, true, cpu->tr.sel & 0xfffc);
	if ((err = emu_read_linear(cpu, cpu->tr.base + off, &v, 4, ACC_READ | ACC_IMPLICIT)))
		return err;
	*sp = (uint32_t)v;
	if ((err = emu_read_linear(cpu, cpu->tr.base + off + 4, &v, 2, ACC_READ | ACC_IMPLICIT)))
		return err;
	*ss = v;
	return 0;
}

static int deliver_protected(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error,
			     bool software, uint64_t ret)
{
	bool lm = cpu->efer & X86_EFER_LMA;
	unsigned gsize = lm ? 16 : 8, type, dpl, ist, new_cpl, psize;
	uint64_t g[2] = { 0, 0 }, offset, flags = emu_flags_get(cpu), sp;
	uint16_t sel, ss_sel = 0;
	struct x86_seg old_cs = cpu->seg[SR_CS], old_ss = cpu->seg[SR_SS];
	uint64_t old_rsp = cpu->gpr[X86_RSP];
	enum emu_mode old_mode = cpu->mode;
	uint8_t old_cpl = cpu->cpl;
	bool to_inner;
	int err;

	if ((unsigned)vector * gsize + gsize - 1 > cpu->idt.limit)
		return emu_fault(cpu, EXC_GP, true, vector * 8 + 2);
	if ((err = emu_read_linear(cpu, cpu->idt.base + vector * gsize, g, gsize, ACC_READ | ACC_IMPLICIT)))
		return err;
	type = (g[0] >> 40) & 0xf;
	dpl = (g[0] >> 45) & 3;
	if (!(type == GATE_INT32 || type == GATE_TRAP32 || (!lm && (type == GATE_INT16 || type == GATE_TRAP16))))
		return emu_fault(cpu, EXC_GP, true, vector * 8 + 2);
	if (software && dpl < cpu->cpl)
		return emu_fault(cpu, EXC_GP, true, vector * 8 + 2);
	if (!((g[0] >> 47) & 1))
		return emu_fault(cpu, EXC_NP, true, vector * 8 + 2);
	sel = (g[0] >> 16) & 0xffff;
	offset = (g[0] & 0xffff) | ((g[0] >> 32) & 0xffff0000);
	if (lm)
		offset |= (g[1] & 0xffffffff) << 32;
	ist = lm ? (g[0] >> 32) & 7 : 0;
	psize = lm ? 8 : (type & 8) ? 4 : 2;

	/* The target code segment decides the new CPL. */
	{
		uint64_t d = 0;
		unsigned cdpl;
		if (!(sel & ~3u) || (sel & ~7u) + 7 > cpu->gdt.limit)
			return emu_fault(cpu, EXC_GP, true, sel & 0xfffc);
		if ((err = emu_read_linear(cpu, cpu->gdt.base + (sel & ~7u), &d, 8, ACC_READ | ACC_IMPLICIT)))
			return err;
		cdpl = (d >> 45) & 3;
		if (!((d >> 43) & 1) || !((d >> 44) & 1) || cdpl > cpu->cpl)
			return emu_fault(cpu, EXC_GP, true, sel & 0xfffc);
		if (!((d >> 47) & 1))
			return emu_fault(cpu, EXC_NP, true, sel & 0xfffc);
		if (lm && !((d >> 53) & 1))
			return emu_fault(cpu, EXC_GP, true, sel & 0xfffc);
		new_cpl = ((d >> 42) & 1) ? cpu->cpl : cdpl;  /* conforming keeps CPL */
	}
	to_inner = new_cpl < cpu->cpl;

	if (to_inner || ist) {
		if ((err = tss_stack(cpu, new_cpl, ist, &sp, &ss_sel)))
			return err;
	} else {
		sp = cpu->gpr[X86_RSP];
	}
	if (lm)
		sp &= ~0xfULL;

	/* Switch CS (and SS), then push on the new stack. */
	{
		uint64_t d = 0;
		if ((err = emu_read_linear(cpu, cpu->gdt.base + (sel & ~7u), &d, 8, ACC_READ | ACC_IMPLICIT)))
			goto undo;
		cpu->seg[SR_CS] = (struct x86_seg){
			.base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
			.limit = ((d & 0xffff) | ((d >> 32) & 0xf0000)), .sel = (sel & ~3u) | new_cpl,
			.type = ((d >> 40) & 0xf) | 1, .s = 1, .dpl = (d >> 45) & 3, .present = 1,
			.l = (d >> 53) & 1, .db = (d >> 54) & 1, .g = (d >> 55) & 1,
		};
		if (cpu->seg[SR_CS].g)
			cpu->seg[SR_CS].limit = (cpu->seg[SR_CS].limit << 12) | 0xfff;
	}
	cpu->cpl = new_cpl;
	emu_cpu_update_mode(cpu);
	if (to_inner) {
		if (lm) {
			cpu->seg[SR_SS] = (struct x86_seg){ .sel = ss_sel, .unusable = 1, .dpl = new_cpl,
							    .present = 1, .db = 1, .type = 3, .s = 1 };
		} else if ((err = emu_load_seg(cpu, SR_SS, ss_sel))) {
			err = emu_fault(cpu, EXC_TS, true, ss_sel & 0xfffc);
			goto undo;
		}
	}
	cpu->gpr[X86_RSP] = sp;
	if (lm || to_inner) {
		if ((err = emu_push(cpu, psize, old_ss.sel)) || (err = emu_push(cpu, psize, old_rsp)))
			goto undo;
	}
	if ((err = emu_push(cpu, psize, flags)) || (err = emu_push(cpu, psize, old_cs.sel)) ||
	    (err = emu_push(cpu, psize, ret)))
		goto undo;
	if (has_error && (err = emu_push(cpu, psize, error)))
		goto undo;
	flags &= ~(FL_TF | FL_NT | FL_RF | FL_VM);
	if (!(type & 1))
		flags &= ~FL_IF;                          /* interrupt gate */
	emu_flags_set(cpu, flags);
	cpu->rip = offset;
	return 0;
undo:
	cpu->seg[SR_CS] = old_cs;
	cpu->seg[SR_SS] = old_ss;
	cpu->gpr[X86_RSP] = old_rsp;
	cpu->mode = old_mode;
	cpu->cpl = old_cpl;
	return err;
}

int emu_deliver(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error,
		bool software, uint64_t return_rip)
{
	int err;

	if (cpu->mode == MODE_REAL)
		err = deliver_real(cpu, vector, return_rip);
	else
		err = deliver_protected(cpu, vector, has_error, error, software, return_rip);
	return err;
}

/* Delivers cpu->exc (a fault of the instruction at cpu->rip), escalating
 * to #DF and then to a triple fault. Returns EMU_OK or EMU_EXIT. */
int emu_deliver_exception(struct emu_cpu *cpu)
{
	struct emu_exception e = cpu->exc;

	for (unsigned depth = 0; depth < 3; depth++) {
		uint8_t first = e.vector;
		if (e.vector == EXC_PF)
			cpu->cr2 = e.cr2;
		if (!emu_deliver(cpu, e.vector, e.has_error, e.error, false, cpu->rip))
			return EMU_OK;
		/* a fault while delivering */
		if (first == EXC_DF)
			break;
		if ((contributory(first) || first == EXC_PF) &&
		    (contributory(cpu->exc.vector) || (first == EXC_PF && cpu->exc.vector == EXC_PF)))
			e = (struct emu_exception){ .vector = EXC_DF, .has_error = true, .error = 0 };
		else
			e = cpu->exc;
	}
	return EMU_EXIT; /* triple fault: the machine resets */
}

int emu_deliver_interrupt(struct emu_cpu *cpu, uint8_t vector)
{
	cpu->interrupt_shadow = false;
	if (!emu_deliver(cpu, vector, false, 0, false, cpu->rip))
		return 0;
	return emu_deliver_exception(cpu) == EMU_OK ? 0 : -EFAULT;
}

int emu_iret(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = c->in->opsize;
	uint64_t ip, cs, flags, sp = 0, ss = 0, cur = emu_flags_get(cpu), keep;
	int err;

	if ((err = emu_peek(cpu, size, 0, &ip)) || (err = emu_peek(cpu, size, size, &cs)) ||
	    (err = emu_peek(cpu, size, 2 * size, &flags)))
		return err;
	if (cpu->mode == MODE_REAL) {
		cpu->seg[SR_CS].sel = cs & 0xffff;
		cpu->seg[SR_CS].base = (cs & 0xffff) << 4;
		emu_pop_commit(cpu, 3 * size);
		keep = size == 2 ? ~0xffffULL : FL_VM | FL_VIF | FL_VIP;
		emu_flags_set(cpu, (flags & ~keep) | (cur & keep));
		c->next = ip & mask_of(size);
		cpu->nmi_blocked = false;
		return 0;
	}
	if (cpu->rflags & FL_NT)
		return emu_fault(cpu, EXC_GP, true, 0);   /* task return: not supported */
	{
		unsigned new_cpl = cs & 3;
		bool outer = new_cpl > cpu->cpl;
		bool lm64 = cpu->mode == MODE_LONG64;
		struct x86_seg old_cs = cpu->seg[SR_CS];
		enum emu_mode old_mode = cpu->mode;
		uint8_t old_cpl = cpu->cpl;

		if (new_cpl < cpu->cpl)
			return emu_fault(cpu, EXC_GP, true, cs & 0xfffc);
		if ((outer || lm64) &&
		    ((err = emu_peek(cpu, size, 3 * size, &sp)) || (err = emu_peek(cpu, size, 4 * size, &ss))))
			return err;
		/* flags the new CPL may change */
		keep = FL_VM | FL_VIF | FL_VIP;
		if (cpu->cpl > 0)
			keep |= FL_IOPL;
		if (cpu->cpl > ((cur & FL_IOPL) >> 12))
			keep |= FL_IF;
		if (size == 2)
			keep |= ~0xffffULL;
		/* CS first: it may fault, and then nothing has changed */
		if ((err = emu_far_jump(c, cs, ip, false, size))) {
			/* emu_far_jump checks DPL == CPL: for an outer return, load as new CPL */
			if (!outer)
				return err;
			cpu->exc = (struct emu_exception){ 0 };
			cpu->cpl = new_cpl;
			if ((err = emu_far_jump(c, cs, ip, false, size))) {
				cpu->cpl = old_cpl;
				cpu->seg[SR_CS] = old_cs;
				cpu->mode = old_mode;
				return err;
			}
		}
		cpu->cpl = new_cpl;
		emu_cpu_update_mode(cpu);
		if (outer || lm64) {
			if (outer || (ss & ~3u)) {
				if ((err = emu_load_seg(cpu, SR_SS, ss))) {
					cpu->seg[SR_CS] = old_cs;
					cpu->mode = old_mode;
					cpu->cpl = old_cpl;
					return err;
				}
			} else {
				cpu->seg[SR_SS] = (struct x86_seg){ .sel = ss, .unusable = 1, .dpl = new_cpl,
								    .present = 1, .db = 1, .type = 3, .s = 1 };
			}
			cpu->gpr[X86_RSP] = sp;
			cpu->interrupt_shadow = false;  /* IRET's SS load opens no shadow */
		} else {
			emu_pop_commit(cpu, 3 * size);
		}
		/* to an outer level: data segments the new CPL may not use become null */
		for (unsigned s = SR_ES; outer && s <= SR_GS; s++) {
			struct x86_seg *g = &cpu->seg[s];
			if (s == SR_CS || s == SR_SS || g->unusable)
				continue;
			if (g->dpl < new_cpl && (g->type & 0xc) != 0xc)
				*g = (struct x86_seg){ .unusable = 1 };
		}
		emu_flags_set(cpu, (flags & ~keep & 0x3f7fd5) | (cur & keep) | 0x2);
		cpu->nmi_blocked = false;
	}
	return 0;
}
