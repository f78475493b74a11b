/* Architectural x86-64 CPU state, in kumo's own engine-neutral form. */
#ifndef KUMO_X86_H
#define KUMO_X86_H

#include <stdint.h>

enum x86_gpr {
	X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI,
	X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
	X86_NR_GPRS
};

struct x86_seg {
	uint64_t base;
	uint32_t limit;
	uint16_t sel;
	uint8_t type, s, dpl, present, avl, l, db, g, unusable;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

struct x86_cpu_state {
	uint64_t gpr[X86_NR_GPRS];
	uint64_t rip, rflags;
	struct x86_seg cs, ds, es, fs, gs, ss, tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
};

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_RFLAGS_FIXED 0x2ULL

#endif
