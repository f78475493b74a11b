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
/* Linear (already segmented) block access, any size, page crossings handled. */
int emu_read_linear(struct emu_cpu *cpu, uint64_t linear, void *buf, unsigned size,
		    unsigned access) WUR;
int emu_write_linear(struct emu_cpu *cpu, uint64_t linear, const void *buf, unsigned size,
		     unsigned access) WUR;
/* A host pointer for an aligned, in-page RAM operand (atomic ops), else NULL. */
void *emu_host_ptr(struct emu_cpu *cpu, unsigned seg, uint64_t offset, unsigned size,
		   unsigned access, int *err);

static inline int emu_fault(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error)
{
	cpu->exc = (struct emu_exception){ .vector = vector, .has_error = has_error, .error = error };
	return -EFAULT;
}

#endif
