/* The executor: one instruction at a time (exec.c), with its memory and
 * register access (access.c). */
#ifndef KUMO_EMU_EXEC_H
#define KUMO_EMU_EXEC_H

#include <errno.h>

#include "cpu.h"

/* Fetch, decode and execute one instruction. On EMU_FAULT the
 * architectural state is as before the instruction and cpu->exc says
 * which exception to deliver. */
int emu_step(struct emu_cpu *cpu);

/* Runs instructions from cpu->rip, block after block: at most budget (at
 * least one), ending early on anything but EMU_OK, which it returns as
 * emu_step() does for the last instruction it ran, or when *cpu->stop is
 * set (looked at between blocks); *ran is how many it ran, the faulting
 * one included. Between two calls is where interrupts are looked at. */
int emu_run(struct emu_cpu *cpu, unsigned budget, unsigned *ran);

/* Delivers cpu->exc (raised by the instruction at cpu->rip) through the
 * IDT, escalating to #DF; EMU_OK, or EMU_EXIT on a triple fault. */
int emu_deliver_exception(struct emu_cpu *cpu);
/* Delivers external interrupt vector (from the LAPIC or PIC) now. */
int emu_deliver_interrupt(struct emu_cpu *cpu, uint8_t vector) WUR;

/* Recompute cpu->mode and cpu->cpl from CR0, EFER, CS and RFLAGS. */
void emu_cpu_update_mode(struct emu_cpu *cpu);

/* Sets up a CPU at its power-on state (real mode at F000:FFF0) with an
 * empty TLB. */
void emu_cpu_reset(struct emu_cpu *cpu);

/* ---- access.c: memory through segmentation and paging ---- */
/* Segmented address → linear, with the mode's checks (limits outside
 * 64-bit mode, canonical form inside it). -EFAULT with cpu->exc set. */
int emu_linear(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
	       unsigned access, uint64_t *linear) WUR;
/* size 1, 2, 4, 8 (or up to 16 for the block forms below); values are
 * little-endian in the low bytes of *val. */
int emu_read(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size, uint64_t *val) WUR;
int emu_write(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size, uint64_t val) WUR;
/* The hit path of emu_read/emu_write, inline for the executor's handlers:
 * a 1, 2, 4 or 8-byte access in 64-bit mode that stays in its page and
 * hits the TLB with rights that need no further thought. False: nothing
 * was done, take emu_read/emu_write (which also raise the faults). A TLB
 * entry is only ever filled by a translation that checked the address
 * canonical, so a hit is canonical. */
static inline const struct emu_tlb_entry *emu_tlb_fast(struct emu_cpu *cpu, unsigned seg, uint64_t offset,
							unsigned size, bool write, uint64_t *linear)
{
	const struct emu_tlb_entry *e;
	uint64_t a = offset;
	unsigned need;

	if (cpu->mode != MODE_LONG64)
		return NULL;
	if (seg == SR_FS || seg == SR_GS)
		a += cpu->seg[seg].base;
	if ((a & 0xfff) > 4096 - size)
		return NULL;
	e = &cpu->tlb.e[emu_tlb_set(a >> 12) * EMU_TLB_WAYS];
	if (e->vpage != a >> 12 && (++e)->vpage != a >> 12)
		return NULL;
	/* a store needs TLB_PLAIN: stores into code go to the slow path,
	 * which invalidates it (icache.h) */
	need = TLB_VALID | (cpu->cpl == 3 ? TLB_U : 0) | (write ? TLB_W | TLB_DIRTY | TLB_PLAIN : 0);
	if ((e->perm & need) != need || !e->host)
		return NULL;
	/* a supervisor access to a user page: SMAP's rules are the full path's */
	if (cpu->cpl != 3 && (e->perm & TLB_U) && (cpu->cr4 & (1ULL << 21) /* SMAP */))
		return NULL;
	*linear = a;
	return e;
}

static inline bool emu_read_fast(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
				 uint64_t *val)
{
	uint64_t linear;
	const struct emu_tlb_entry *e = emu_tlb_fast(cpu, seg, offset, size, false, &linear);
	const uint8_t *p;

	if (!e)
		return false;
	p = e->host + (linear & 0xfff);
	switch (size) {
	case 1: *val = *p; return true;
	case 2: { uint16_t v; __builtin_memcpy(&v, p, 2); *val = v; return true; }
	case 4: { uint32_t v; __builtin_memcpy(&v, p, 4); *val = v; return true; }
	case 8: __builtin_memcpy(val, p, 8); return true;
	}
	return false;
}

static inline bool emu_write_fast(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
				  uint64_t val)
{
	uint64_t linear;
	const struct emu_tlb_entry *e = emu_tlb_fast(cpu, seg, offset, size, true, &linear);
	uint8_t *p;

	if (!e || size > 8)
		return false;
	p = e->host + (linear & 0xfff);
	switch (size) {
	case 1: *p = (uint8_t)val; break;
	case 2: { uint16_t v = (uint16_t)val; __builtin_memcpy(p, &v, 2); break; }
	case 4: { uint32_t v = (uint32_t)val; __builtin_memcpy(p, &v, 4); break; }
	default: __builtin_memcpy(p, &val, size); break;
	}
	return true;
}

/* emu_read/emu_write with the hit path inline. */
static inline int emu_read_inl(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
			       uint64_t *val)
{
	*val = 0;
	return emu_read_fast(cpu, seg, offset, size, val) ? 0 : emu_read(cpu, seg, offset, size, val);
}

static inline int emu_write_inl(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
				uint64_t val)
{
	return emu_write_fast(cpu, seg, offset, size, val) ? 0 : emu_write(cpu, seg, offset, size, val);
}

/* Linear (already segmented) block access, any size, page crossings handled. */
int emu_read_linear(struct emu_cpu *cpu, uint64_t linear, void *buf, unsigned size,
		    unsigned access) WUR;
int emu_write_linear(struct emu_cpu *cpu, uint64_t linear, const void *buf, unsigned size,
		     unsigned access) WUR;
/* A host pointer for an aligned, in-page RAM operand (atomic ops), else NULL. */
void *emu_host_ptr(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
		   unsigned access, int *err);

/* One decoded instruction at cpu->rip by the general path, flags exact
 * (translated code calls it for flags_dead instructions: jit.c). */
int emu_exec_exact(struct emu_cpu *cpu, const struct emu_insn *in);

static inline int emu_fault(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error)
{
	cpu->exc = (struct emu_exception){ .vector = vector, .has_error = has_error, .error = error };
	return -EFAULT;
}

#endif
