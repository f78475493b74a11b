/* The emu engine's system side: segment loads, far transfers, interrupt and
 * exception delivery (privilege changes, IST, #DF, triple fault), IRET,
 * SYSCALL/SYSRET and SYSENTER/SYSEXIT, and the legacy instructions that
 * live in system.c. Each test builds a GDT, IDT and TSS in guest RAM and
 * steps small code sequences through emu_step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec_internal.h"
#include "fixture.h"
#include "flags.h"
#include "kumo/memory.h"

#define GDT   0x10000ULL
#define IDT   0x11000ULL
#define TSS   0x12000ULL
#define CODE  0x20000ULL
#define KSTK  0x30000ULL   /* the stack the test starts on */
#define USTK  0x40000ULL
#define RSP0  0x50000ULL
#define IST1  0x60000ULL
#define HANDLER 0x70000ULL
#define PML4  0x1000ULL

enum {
	S_CODE32 = 0x08, S_CODE64 = 0x10, S_DATA = 0x18, S_UCODE32 = 0x20, S_UDATA = 0x28,
	S_UCODE64 = 0x30, S_NP = 0x38, S_TSS = 0x40, S_RODATA = 0x50, S_XCODE = 0x58,
	S_CODE16 = 0x60,
};

static const uint64_t gdt_init[] = {
	0,
	0x00cf9a000000ffffULL,   /* 0x08 code32 DPL0 */
	0x00af9a000000ffffULL,   /* 0x10 code64 DPL0 */
	0x00cf92000000ffffULL,   /* 0x18 data DPL0 */
	0x00cffa000000ffffULL,   /* 0x20 code32 DPL3 */
	0x00cff2000000ffffULL,   /* 0x28 data DPL3 */
	0x00affa000000ffffULL,   /* 0x30 code64 DPL3 */
	0x00cf12000000ffffULL,   /* 0x38 data DPL0, not present */
	0, 0,                    /* 0x40 TSS (written by the tests) */
	0x00cf90000000ffffULL,   /* 0x50 read-only data DPL0 */
	0x00cf98000000ffffULL,   /* 0x58 execute-only code DPL0 */
	0x00009a000000ffffULL,   /* 0x60 code16 DPL0 */
};

struct fx {
	struct guest_mem mem;   /* first, for fx_teardown */
	struct emu_cpu cpu;
};

static void *gpa(struct fx *f, uint64_t a, uint64_t len)
{
	return gpa_ptr(&f->mem, a, len);
}

static uint64_t rd64(struct fx *f, uint64_t a)
{
	uint64_t v;
	memcpy(&v, gpa(f, a, 8), 8);
	return v;
}

static uint32_t rd32(struct fx *f, uint64_t a)
{
	uint32_t v;
	memcpy(&v, gpa(f, a, 4), 4);
	return v;
}

static void wr64(struct fx *f, uint64_t a, uint64_t v)
{
	memcpy(gpa(f, a, 8), &v, 8);
}

static void wr32(struct fx *f, uint64_t a, uint32_t v)
{
	memcpy(gpa(f, a, 4), &v, 4);
}

static void code(struct fx *f, uint64_t a, const void *bytes, size_t n)
{
	memcpy(gpa(f, a, n), bytes, n);
}

static struct x86_seg seg_of(struct fx *f, uint16_t sel)
{
	uint64_t d = rd64(f, GDT + (sel & ~7u));
	struct x86_seg s = {
		.base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
		.limit = (d & 0xffff) | ((d >> 32) & 0xf0000), .sel = sel,
		.type = (d >> 40) & 0xf, .s = (d >> 44) & 1, .dpl = (d >> 45) & 3,
		.present = (d >> 47) & 1, .l = (d >> 53) & 1, .db = (d >> 54) & 1, .g = (d >> 55) & 1,
	};
	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

/* Protected-mode gate (8 bytes) or long-mode gate (16 bytes). */
static void gate32(struct fx *f, unsigned vec, uint16_t sel, uint32_t off, unsigned type, unsigned dpl, bool present)
{
	uint64_t g = (off & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)type << 40) | ((uint64_t)dpl << 45) |
		     ((uint64_t)present << 47) | ((uint64_t)(off >> 16) << 48);
	wr64(f, IDT + 8 * vec, g);
}

static void gate64(struct fx *f, unsigned vec, uint64_t off, unsigned dpl, unsigned ist, bool present)
{
	uint64_t g = (off & 0xffff) | ((uint64_t)S_CODE64 << 16) | ((uint64_t)ist << 32) | (0xeULL << 40) |
		     ((uint64_t)dpl << 45) | ((uint64_t)present << 47) | (((off >> 16) & 0xffff) << 48);
	wr64(f, IDT + 16 * vec, g);
	wr64(f, IDT + 16 * vec + 8, off >> 32);
}

static int setup(void **state)
{
	struct fx *f = aligned_alloc(64, (sizeof(*f) + 63) & ~(size_t)63); /* as the jump cache is */

	if (f)
		memset(f, 0, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->mem, 16 * MiB), 0);
	f->cpu.mem = &f->mem;
	emu_cpu_reset(&f->cpu);
	memcpy(gpa(f, GDT, sizeof(gdt_init)), gdt_init, sizeof(gdt_init));
	f->cpu.gdt = (struct x86_dtable){ .base = GDT, .limit = sizeof(gdt_init) - 1 };
	*state = f;
	return 0;
}

static void set_segs(struct fx *f, unsigned cpl, bool lm)
{
	struct emu_cpu *c = &f->cpu;
	uint16_t cs = cpl ? (lm ? S_UCODE64 : S_UCODE32) | 3 : (lm ? S_CODE64 : S_CODE32);
	uint16_t ds = cpl ? S_UDATA | 3 : S_DATA;

	c->seg[SR_CS] = seg_of(f, cs);
	for (unsigned s = 0; s < 6; s++)
		if (s != SR_CS)
			c->seg[s] = seg_of(f, ds);
	emu_cpu_update_mode(c);
	c->gpr[X86_RSP] = cpl ? USTK : KSTK;
}

/* 32-bit protected mode, paging off, at CPL cpl; a 32-bit TSS (ESP0/SS0). */
static void pm32(struct fx *f, unsigned cpl)
{
	struct emu_cpu *c = &f->cpu;
	uint64_t d = 0x67 | ((TSS & 0xffffff) << 16) | (0x89ULL << 40);

	c->cr0 = X86_CR0_PE | X86_CR0_ET;
	c->efer = 0;
	wr64(f, GDT + S_TSS, d);
	wr32(f, TSS + 4, RSP0);
	wr32(f, TSS + 8, S_DATA);
	c->tr = (struct x86_seg){ .base = TSS, .limit = 0x67, .sel = S_TSS, .type = 0xb, .present = 1 };
	c->idt = (struct x86_dtable){ .base = IDT, .limit = 0x7ff };
	set_segs(f, cpl, false);
	c->rip = CODE;
	emu_flags_set(c, 0x202);
	emu_tlb_flush(c, true);
}

/* Long mode: identity map of the first 1 GiB (2 MiB pages, user), a 64-bit
 * TSS with RSP0 and IST1. */
static void lm64(struct fx *f, unsigned cpl)
{
	struct emu_cpu *c = &f->cpu;
	uint64_t d = 0x67 | ((TSS & 0xffffff) << 16) | (0x89ULL << 40);

	wr64(f, PML4, (PML4 + 0x1000) | 7);
	wr64(f, PML4 + 0x1000, (PML4 + 0x2000) | 7);
	for (unsigned i = 0; i < 512; i++)
		wr64(f, PML4 + 0x2000 + 8 * i, ((uint64_t)i << 21) | 0x87);
	c->cr3 = PML4;
	c->cr4 = X86_CR4_PAE;
	c->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	c->efer = X86_EFER_LME | X86_EFER_LMA | 1 /* SCE */;
	wr64(f, GDT + S_TSS, d);
	wr64(f, GDT + S_TSS + 8, 0);
	wr64(f, TSS + 4, RSP0);
	wr64(f, TSS + 0x24, IST1);
	c->tr = (struct x86_seg){ .base = TSS, .limit = 0x67, .sel = S_TSS, .type = 0xb, .present = 1 };
	c->idt = (struct x86_dtable){ .base = IDT, .limit = 0xfff };
	set_segs(f, cpl, true);
	c->rip = CODE;
	emu_flags_set(c, 0x202);
	emu_tlb_flush(c, true);
}

/* One instruction as the engine runs it: a fault is delivered. */
static int run1(struct fx *f)
{
	int st = emu_step(&f->cpu);
	if (st == EMU_FAULT)
		return emu_deliver_exception(&f->cpu) == EMU_OK ? EMU_FAULT : EMU_EXIT;
	return st;
}

static void expect_fault(struct fx *f, uint8_t vec, uint32_t err)
{
	assert_int_equal(emu_step(&f->cpu), EMU_FAULT);
	assert_int_equal(f->cpu.exc.vector, vec);
	assert_int_equal(f->cpu.exc.error, err);
}

/* ---- segment loads ---- */

static void test_seg_loads(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	pm32(f, 0);
	assert_int_equal(emu_load_seg(c, SR_DS, 0), 0);             /* null: fine for DS */
	assert_true(c->seg[SR_DS].unusable);
	assert_int_equal(emu_load_seg(c, SR_SS, 0), -EFAULT);       /* not for SS */
	assert_int_equal(c->exc.vector, EXC_GP);
	assert_int_equal(emu_load_seg(c, SR_DS, S_NP), -EFAULT);    /* not present */
	assert_int_equal(c->exc.vector, EXC_NP);
	assert_int_equal(c->exc.error, S_NP);
	assert_int_equal(emu_load_seg(c, SR_SS, S_NP), -EFAULT);    /* SS: #SS */
	assert_int_equal(c->exc.vector, EXC_SS);
	assert_int_equal(emu_load_seg(c, SR_SS, S_RODATA), -EFAULT); /* read-only SS */
	assert_int_equal(c->exc.vector, EXC_GP);
	assert_int_equal(c->exc.error, S_RODATA);
	assert_int_equal(emu_load_seg(c, SR_SS, S_UDATA | 3), -EFAULT); /* RPL != CPL */
	assert_int_equal(c->exc.error, S_UDATA);
	assert_int_equal(emu_load_seg(c, SR_DS, S_XCODE), -EFAULT); /* execute-only */
	assert_int_equal(c->exc.vector, EXC_GP);
	assert_int_equal(emu_load_seg(c, SR_DS, S_TSS), -EFAULT);   /* system */
	assert_int_equal(emu_load_seg(c, SR_DS, 0x1000), -EFAULT);  /* past the limit */
	assert_int_equal(c->exc.error, 0x1000);
	assert_int_equal(emu_load_seg(c, SR_DS, S_CODE32), 0);      /* readable code */
	assert_int_equal(emu_load_seg(c, SR_SS, S_DATA), 0);
	assert_true(c->interrupt_shadow);
	/* the Accessed bit lands in the GDT */
	assert_true(rd64(f, GDT + S_DATA) & (1ULL << 40));

	pm32(f, 3);
	assert_int_equal(emu_load_seg(c, SR_DS, S_DATA), -EFAULT);  /* DPL 0 < CPL 3 */
	assert_int_equal(c->exc.vector, EXC_GP);
	assert_int_equal(c->exc.error, S_DATA);
	assert_int_equal(emu_load_seg(c, SR_DS, S_UDATA | 3), 0);
	assert_int_equal(emu_load_seg(c, SR_SS, S_UDATA | 3), 0);

	lm64(f, 0);
	assert_int_equal(emu_load_seg(c, SR_SS, 0), 0);             /* null SS at CPL 0 in 64-bit mode */
	lm64(f, 3);
	assert_int_equal(emu_load_seg(c, SR_SS, 3), -EFAULT);       /* but not at CPL 3 */

	/* through an instruction: mov ds, ax with a bad selector is a fault */
	pm32(f, 0);
	c->gpr[X86_RAX] = S_NP;
	code(f, CODE, "\x8e\xd8", 2);
	expect_fault(f, EXC_NP, S_NP);
	assert_int_equal(c->rip, CODE);
}

/* ---- far transfers ---- */

static void test_far_jmp_call_ret(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	pm32(f, 0);
	/* call far 0x08:CODE+0x100; at the target: retf */
	code(f, CODE, "\x9a\x00\x01\x02\x00\x08\x00", 7);
	code(f, CODE + 0x100, "\xcb", 1);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 0x100);
	assert_int_equal(c->gpr[X86_RSP], KSTK - 8);
	assert_int_equal(rd32(f, KSTK - 8), CODE + 7);
	assert_int_equal(rd32(f, KSTK - 4), S_CODE32);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 7);
	assert_int_equal(c->gpr[X86_RSP], KSTK);

	/* jmp far to a 16-bit code segment changes the mode */
	code(f, CODE, "\xea\x34\x12\x00\x00\x60\x00", 7);
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, 0x1234);
	assert_int_equal(c->mode, MODE_PROT16);

	/* to a DPL-3 code segment from CPL 0: #GP(sel) */
	pm32(f, 0);
	code(f, CODE, "\xea\x00\x00\x00\x00\x20\x00", 7);
	expect_fault(f, EXC_GP, S_UCODE32);
	/* to a data segment */
	code(f, CODE, "\xea\x00\x00\x00\x00\x18\x00", 7);
	expect_fault(f, EXC_GP, S_DATA);

	/* retf to an outer level pops SS:ESP too; retf imm16 skips the arguments */
	pm32(f, 0);
	c->gpr[X86_RSP] = KSTK - 24;
	wr32(f, KSTK - 24, 0x1000);           /* EIP */
	wr32(f, KSTK - 20, S_UCODE32 | 3);     /* CS */
	wr32(f, KSTK - 16, 0xaaaa);            /* argument */
	wr32(f, KSTK - 12, USTK - 64);         /* ESP */
	wr32(f, KSTK - 8, S_UDATA | 3);        /* SS */
	code(f, CODE, "\xca\x04\x00", 3);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->cpl, 3);
	assert_int_equal(c->rip, 0x1000);
	assert_int_equal(c->seg[SR_SS].sel, S_UDATA | 3);
	assert_int_equal(c->gpr[X86_RSP], USTK - 64 + 4);
	assert_int_equal(c->seg[SR_CS].sel, S_UCODE32 | 3);

	/* retf to an inner level: #GP */
	pm32(f, 3);
	c->gpr[X86_RSP] = USTK - 8;
	wr32(f, USTK - 8, 0x1000);
	wr32(f, USTK - 4, S_CODE32);
	code(f, CODE, "\xcb", 1);
	expect_fault(f, EXC_GP, S_CODE32);
}

/* ---- interrupt delivery ---- */

static void test_deliver_pm32(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	/* same privilege: EFLAGS CS EIP on the current stack, IF cleared */
	pm32(f, 0);
	gate32(f, 0x40, S_CODE32, HANDLER, 0xe, 0, true);
	code(f, CODE, "\xcd\x40", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, HANDLER);
	assert_int_equal(c->gpr[X86_RSP], KSTK - 12);
	assert_int_equal(rd32(f, KSTK - 12), CODE + 2);
	assert_int_equal(rd32(f, KSTK - 8), S_CODE32);
	assert_int_equal(rd32(f, KSTK - 4), 0x202);
	assert_false(emu_flags_get(c) & FL_IF);

	/* from CPL 3 through a DPL-3 gate: SS:ESP from the TSS, the old SS:ESP pushed */
	pm32(f, 3);
	gate32(f, 0x40, S_CODE32, HANDLER, 0xf, 3, true); /* trap gate: IF stays */
	code(f, CODE, "\xcd\x40", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->cpl, 0);
	assert_int_equal(c->seg[SR_SS].sel, S_DATA);
	assert_int_equal(c->gpr[X86_RSP], RSP0 - 20);
	assert_int_equal(rd32(f, RSP0 - 20), CODE + 2);
	assert_int_equal(rd32(f, RSP0 - 16), S_UCODE32 | 3);
	assert_int_equal(rd32(f, RSP0 - 12), 0x202);
	assert_int_equal(rd32(f, RSP0 - 8), USTK);
	assert_int_equal(rd32(f, RSP0 - 4), S_UDATA | 3);
	assert_true(emu_flags_get(c) & FL_IF);

	/* and IRET back to CPL 3 */
	code(f, HANDLER, "\xcf", 1);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->cpl, 3);
	assert_int_equal(c->rip, CODE + 2);
	assert_int_equal(c->gpr[X86_RSP], USTK);
	assert_int_equal(c->seg[SR_SS].sel, S_UDATA | 3);

	/* INT through a DPL-0 gate at CPL 3: #GP(vector * 8 + 2) */
	pm32(f, 3);
	gate32(f, 0x40, S_CODE32, HANDLER, 0xe, 0, true);
	code(f, CODE, "\xcd\x40", 2);
	assert_int_equal(emu_step(c), EMU_FAULT);
	assert_int_equal(c->exc.vector, EXC_GP);
	assert_int_equal(c->exc.error, 0x40 * 8 + 2);

	/* an exception with an error code: HLT at CPL 3 is #GP(0) */
	pm32(f, 3);
	gate32(f, EXC_GP, S_CODE32, HANDLER, 0xe, 0, true);
	code(f, CODE, "\xf4", 1);
	assert_int_equal(run1(f), EMU_FAULT);
	assert_int_equal(c->rip, HANDLER);
	assert_int_equal(c->gpr[X86_RSP], RSP0 - 24);
	assert_int_equal(rd32(f, RSP0 - 24), 0);        /* error code */
	assert_int_equal(rd32(f, RSP0 - 20), CODE);     /* the faulting instruction */
}

static void test_deliver_lm64(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	/* CPL 3 -> 0: SS RSP RFLAGS CS RIP (error) on RSP0, SS null */
	lm64(f, 3);
	c->gpr[X86_RSP] = USTK - 8;  /* the new RSP is 16-byte aligned whatever */
	gate64(f, EXC_GP, HANDLER, 0, 0, true);
	code(f, CODE, "\xf4", 1);
	assert_int_equal(run1(f), EMU_FAULT);
	assert_int_equal(c->cpl, 0);
	assert_int_equal(c->rip, HANDLER);
	assert_int_equal(c->gpr[X86_RSP], RSP0 - 48);
	assert_int_equal(rd64(f, RSP0 - 48), 0);
	assert_int_equal(rd64(f, RSP0 - 40), CODE);
	assert_int_equal(rd64(f, RSP0 - 32), S_UCODE64 | 3);
	assert_int_equal(rd64(f, RSP0 - 24), 0x202);
	assert_int_equal(rd64(f, RSP0 - 16), USTK - 8);
	assert_int_equal(rd64(f, RSP0 - 8), S_UDATA | 3);
	assert_int_equal(c->seg[SR_SS].sel, 0);

	/* same privilege: still SS:RSP, on the current stack aligned down */
	lm64(f, 0);
	c->gpr[X86_RSP] = KSTK - 8;
	gate64(f, 0x40, HANDLER, 0, 0, true);
	code(f, CODE, "\xcd\x40", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RSP], KSTK - 16 - 40);
	assert_int_equal(rd64(f, KSTK - 16 - 8), S_DATA);
	assert_int_equal(rd64(f, KSTK - 16 - 16), KSTK - 8);
	assert_int_equal(rd64(f, KSTK - 16 - 40), CODE + 2);

	/* IST: the stack comes from the TSS even without a privilege change */
	lm64(f, 0);
	gate64(f, EXC_BP, HANDLER, 0, 1, true);
	code(f, CODE, "\xcc", 1);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RSP], IST1 - 40);
	assert_int_equal(rd64(f, IST1 - 40), CODE + 1);
	assert_int_equal(rd64(f, IST1 - 16), KSTK);

	/* IRETQ from the handler returns to the interrupted stack */
	code(f, HANDLER, "\x48\xcf", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 1);
	assert_int_equal(c->gpr[X86_RSP], KSTK);
}

static void test_double_and_triple_fault(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	/* #GP whose gate is not present: #NP while delivering, then #DF */
	lm64(f, 0);
	gate64(f, EXC_GP, HANDLER, 0, 0, false);
	gate64(f, EXC_DF, HANDLER + 0x100, 0, 1, true);
	code(f, CODE, "\x0f\x22\xc0", 3);     /* mov cr0, rax: rax = 0 clears PE with PG: #GP */
	c->gpr[X86_RAX] = 0;
	assert_int_equal(run1(f), EMU_FAULT);
	assert_int_equal(c->rip, HANDLER + 0x100);
	assert_int_equal(c->gpr[X86_RSP], IST1 - 48);
	assert_int_equal(rd64(f, IST1 - 48), 0);            /* #DF's error code */
	assert_int_equal(rd64(f, IST1 - 40), CODE);

	/* and with #DF not present either: a triple fault */
	lm64(f, 0);
	gate64(f, EXC_GP, HANDLER, 0, 0, false);
	gate64(f, EXC_DF, HANDLER, 0, 0, false);
	c->gpr[X86_RAX] = 0;
	assert_int_equal(run1(f), EMU_EXIT);

	/* #PF, then #NP delivering it: #DF too */
	lm64(f, 0);
	gate64(f, EXC_PF, HANDLER, 0, 0, false);
	gate64(f, EXC_DF, HANDLER + 0x100, 0, 0, true);
	code(f, CODE, "\x8b\x04\x25\x00\x00\x00\x40", 7);  /* mov eax, [0x40000000]: not mapped */
	assert_int_equal(run1(f), EMU_FAULT);
	assert_int_equal(c->rip, HANDLER + 0x100);
	assert_int_equal(c->cr2, 0x40000000);

	/* #UD whose gate is not present: #NP, which is delivered (no #DF) */
	lm64(f, 0);
	gate64(f, EXC_UD, HANDLER, 0, 0, false);
	gate64(f, EXC_NP, HANDLER + 0x200, 0, 0, true);
	code(f, CODE, "\x0f\x0b", 2);
	assert_int_equal(run1(f), EMU_FAULT);
	assert_int_equal(c->rip, HANDLER + 0x200);
	assert_int_equal(rd64(f, KSTK - 48) & ~1ULL, EXC_UD * 8 + 2);  /* the IDT entry */
}

static void test_iret_flags_cpl3(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	/* at CPL 3 (IOPL 0) IRETQ cannot change IOPL or IF */
	lm64(f, 3);
	c->gpr[X86_RSP] = USTK - 40;
	wr64(f, USTK - 40, CODE + 0x10);
	wr64(f, USTK - 32, S_UCODE64 | 3);
	wr64(f, USTK - 24, 0x3002 | FL_CF);   /* IOPL 3, IF 0, CF */
	wr64(f, USTK - 16, USTK);
	wr64(f, USTK - 8, S_UDATA | 3);
	code(f, CODE, "\x48\xcf", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 0x10);
	assert_int_equal(emu_flags_get(c) & (FL_IOPL | FL_IF | FL_CF), FL_IF | FL_CF);

	/* at CPL 0 they can, also on the way out to CPL 3 */
	lm64(f, 0);
	c->gpr[X86_RSP] = KSTK - 40;
	wr64(f, KSTK - 40, CODE + 0x10);
	wr64(f, KSTK - 32, S_UCODE64 | 3);
	wr64(f, KSTK - 24, 0x3002);
	wr64(f, KSTK - 16, USTK);
	wr64(f, KSTK - 8, S_UDATA | 3);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->cpl, 3);
	assert_int_equal(emu_flags_get(c) & (FL_IOPL | FL_IF), FL_IOPL);
	assert_int_equal(c->gpr[X86_RSP], USTK);
	assert_true(c->seg[SR_DS].unusable);           /* DPL 0 data: nulled on the way out */

	/* POPF at CPL 3 keeps IOPL too */
	lm64(f, 3);
	c->gpr[X86_RSP] = USTK - 8;
	wr64(f, USTK - 8, 0x3002);
	code(f, CODE, "\x9d", 1);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(emu_flags_get(c) & (FL_IOPL | FL_IF), FL_IF);
}

/* ---- fast system calls ---- */

static void test_syscall_sysret(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	lm64(f, 3);
	c->msr.star = (0x20ULL << 48) | (0x10ULL << 32);
	c->msr.lstar = HANDLER;
	c->msr.sfmask = FL_IF | FL_DF;
	emu_flags_set(c, 0x202 | FL_DF | FL_CF);
	code(f, CODE, "\x0f\x05", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, HANDLER);
	assert_int_equal(c->gpr[X86_RCX], CODE + 2);
	assert_int_equal(c->gpr[X86_R11], 0x202 | FL_DF | FL_CF);
	assert_int_equal(emu_flags_get(c), 0x2 | FL_CF);
	assert_int_equal(c->cpl, 0);
	assert_int_equal(c->mode, MODE_LONG64);
	assert_int_equal(c->seg[SR_CS].sel, 0x10);
	assert_int_equal(c->seg[SR_SS].sel, 0x18);
	assert_int_equal(c->gpr[X86_RSP], USTK);     /* untouched */

	/* SYSRETQ: CS = STAR[63:48] + 16 | 3, SS = + 8 | 3, RIP = RCX, RFLAGS = R11 */
	c->gpr[X86_R11] = 0x202 | FL_OF;
	code(f, HANDLER, "\x48\x0f\x07", 3);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 2);
	assert_int_equal(c->cpl, 3);
	assert_int_equal(c->seg[SR_CS].sel, 0x33);
	assert_int_equal(c->seg[SR_SS].sel, 0x2b);
	assert_int_equal(c->mode, MODE_LONG64);
	assert_int_equal(emu_flags_get(c), 0x202 | FL_OF);

	/* SYSRETL: to compatibility mode at STAR[63:48] | 3 */
	lm64(f, 0);
	c->msr.star = (0x20ULL << 48) | (0x10ULL << 32);
	c->gpr[X86_RCX] = 0xffffffff00001000ULL;
	c->gpr[X86_R11] = 0x202;
	code(f, CODE, "\x0f\x07", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, 0x1000);
	assert_int_equal(c->seg[SR_CS].sel, 0x23);
	assert_int_equal(c->mode, MODE_COMPAT32);

	/* SYSRETQ to a non-canonical RCX: #GP(0) at CPL 0 */
	lm64(f, 0);
	c->gpr[X86_RCX] = 0x0000800000000000ULL;
	code(f, CODE, "\x48\x0f\x07", 3);
	expect_fault(f, EXC_GP, 0);
	assert_int_equal(c->cpl, 0);

	/* SYSRET at CPL 3: #GP(0); without EFER.SCE: #UD for both */
	lm64(f, 3);
	expect_fault(f, EXC_GP, 0);
	c->efer &= ~1ULL;
	code(f, CODE, "\x0f\x05", 2);
	expect_fault(f, EXC_UD, 0);
	/* SYSCALL outside 64-bit mode: #UD */
	pm32(f, 3);
	c->efer = 1;
	expect_fault(f, EXC_UD, 0);
}

static void test_sysenter_sysexit(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	pm32(f, 3);
	code(f, CODE, "\x0f\x34", 2);
	expect_fault(f, EXC_GP, 0);               /* SYSENTER_CS 0 */
	c->msr.sysenter_cs = S_CODE32;
	c->msr.sysenter_esp = RSP0;
	c->msr.sysenter_eip = HANDLER;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->cpl, 0);
	assert_int_equal(c->rip, HANDLER);
	assert_int_equal(c->gpr[X86_RSP], RSP0);
	assert_int_equal(c->seg[SR_CS].sel, S_CODE32);
	assert_int_equal(c->seg[SR_SS].sel, S_CODE32 + 8);
	assert_false(emu_flags_get(c) & FL_IF);

	/* SYSEXIT: CS = SYSENTER_CS + 16 | 3, SS = + 24 | 3, EIP = EDX, ESP = ECX
	 * (flat segments: the GDT is not read) */
	c->gpr[X86_RDX] = CODE + 0x40;
	c->gpr[X86_RCX] = USTK - 16;
	code(f, HANDLER, "\x0f\x35", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->cpl, 3);
	assert_int_equal(c->rip, CODE + 0x40);
	assert_int_equal(c->gpr[X86_RSP], USTK - 16);
	assert_int_equal(c->seg[SR_CS].sel, (S_CODE32 + 16) | 3);
	assert_int_equal(c->seg[SR_SS].sel, (S_CODE32 + 24) | 3);
	assert_int_equal(c->mode, MODE_PROT32);

	/* SYSEXIT at CPL 3: #GP(0) */
	code(f, CODE + 0x40, "\x0f\x35", 2);
	expect_fault(f, EXC_GP, 0);
}

/* ---- legacy instructions of system.c ---- */

static void test_legacy(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	pm32(f, 0);
	/* PUSHAD / POPAD */
	for (unsigned r = 0; r < 8; r++)
		if (r != X86_RSP)
			c->gpr[r] = 0x1000 + r;
	code(f, CODE, "\x60\x31\xc0\x61", 4);      /* pushad; xor eax, eax; popad */
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RSP], KSTK - 32);
	assert_int_equal(rd32(f, KSTK - 4), 0x1000);      /* EAX first */
	assert_int_equal(rd32(f, KSTK - 20), KSTK);       /* ESP as before */
	assert_int_equal(rd32(f, KSTK - 32), 0x1007);     /* EDI last */
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX], 0x1000);
	assert_int_equal(c->gpr[X86_RSP], KSTK);

	/* DAA: 0x19 + 0x28 = 0x41 -> 0x47 */
	pm32(f, 0);
	code(f, CODE, "\xb0\x19\x04\x28\x27", 5);  /* mov al, 0x19; add al, 0x28; daa */
	run1(f); run1(f);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX] & 0xff, 0x47);
	assert_false(emu_flag(c, FL_CF));
	/* AAM 10: AL 47 -> AH 4, AL 7; AAM 0: #DE */
	code(f, CODE, "\xb0\x2f\xd4\x0a\xd4\x00", 6);
	c->rip = CODE;
	run1(f);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX] & 0xffff, 0x0407);
	expect_fault(f, EXC_DE, 0);
	/* AAD: AH 4 AL 7 -> AL 47 */
	code(f, CODE + 4, "\xd5\x0a", 2);
	c->rip = CODE + 4;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX] & 0xffff, 47);

	/* ENTER 16, 2 */
	pm32(f, 0);
	c->gpr[X86_RBP] = KSTK - 0x100;
	wr32(f, KSTK - 0x104, 0xfeed);
	code(f, CODE, "\xc8\x10\x00\x02", 4);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(rd32(f, KSTK - 4), KSTK - 0x100);     /* old EBP */
	assert_int_equal(rd32(f, KSTK - 8), 0xfeed);           /* the outer frame pointer */
	assert_int_equal(rd32(f, KSTK - 12), KSTK - 4);        /* this frame */
	assert_int_equal(c->gpr[X86_RBP], KSTK - 4);
	assert_int_equal(c->gpr[X86_RSP], KSTK - 12 - 16);

	/* BOUND: in range fine, out of range #BR */
	pm32(f, 0);
	wr32(f, 0x8000, 10);
	wr32(f, 0x8004, 20);
	c->gpr[X86_RAX] = 15;
	code(f, CODE, "\x62\x05\x00\x80\x00\x00", 6);          /* bound eax, [0x8000] */
	assert_int_equal(run1(f), EMU_OK);
	c->rip = CODE;
	c->gpr[X86_RAX] = 21;
	expect_fault(f, EXC_BR, 0);

	/* ARPL: raises the RPL, sets ZF */
	c->gpr[X86_RAX] = 0x10;
	c->gpr[X86_RBX] = 0x3;
	code(f, CODE, "\x63\xd8", 2);                          /* arpl ax, bx */
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX], 0x13);
	assert_true(emu_flag(c, FL_ZF));

	/* INTO with OF clear does nothing */
	emu_flags_set(c, 0x2);
	code(f, CODE, "\xce", 1);
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 1);

	/* LSS: offset and selector from memory */
	wr32(f, 0x8000, 0x1234);
	wr32(f, 0x8004, S_DATA);
	code(f, CODE, "\x0f\xb2\x25\x00\x80\x00\x00", 7);     /* lss esp, [0x8000] */
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RSP], 0x1234);
	assert_int_equal(c->seg[SR_SS].sel, S_DATA);

	/* LAR / LSL / VERW */
	c->gpr[X86_RBX] = S_DATA;
	code(f, CODE, "\x0f\x02\xc3\x0f\x03\xcb\x0f\x00\xeb", 9); /* lar eax,bx; lsl ecx,bx; verw bx */
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	assert_true(emu_flag(c, FL_ZF));
	assert_int_equal(c->gpr[X86_RAX], 0x00c09300);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RCX], 0xffffffff);
	assert_int_equal(run1(f), EMU_OK);
	assert_true(emu_flag(c, FL_ZF));
	c->gpr[X86_RBX] = S_CODE32;                             /* code: not writable */
	c->rip = CODE + 6;
	assert_int_equal(run1(f), EMU_OK);
	assert_false(emu_flag(c, FL_ZF));
}

static void test_cmpxchg_wide(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	lm64(f, 0);
	wr64(f, 0x8000, 1);
	wr64(f, 0x8008, 2);
	c->gpr[X86_RAX] = 1; c->gpr[X86_RDX] = 2;
	c->gpr[X86_RBX] = 3; c->gpr[X86_RCX] = 4;
	c->gpr[X86_RDI] = 0x8000;
	code(f, CODE, "\xf0\x48\x0f\xc7\x0f", 5);              /* lock cmpxchg16b [rdi] */
	assert_int_equal(run1(f), EMU_OK);
	assert_true(emu_flag(c, FL_ZF));
	assert_int_equal(rd64(f, 0x8000), 3);
	assert_int_equal(rd64(f, 0x8008), 4);
	c->rip = CODE;                                         /* now unequal */
	assert_int_equal(run1(f), EMU_OK);
	assert_false(emu_flag(c, FL_ZF));
	assert_int_equal(c->gpr[X86_RAX], 3);
	assert_int_equal(c->gpr[X86_RDX], 4);
	c->rip = CODE;                                         /* misaligned: #GP(0) */
	c->gpr[X86_RDI] = 0x8008;
	expect_fault(f, EXC_GP, 0);
	/* CMPXCHG8B: EDX:EAX against m64 */
	wr64(f, 0x8008, 0x0000000500000006ULL);
	c->gpr[X86_RAX] = 6; c->gpr[X86_RDX] = 5;
	c->gpr[X86_RBX] = 8; c->gpr[X86_RCX] = 7;
	code(f, CODE, "\x0f\xc7\x0f", 3);
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	assert_true(emu_flag(c, FL_ZF));
	assert_int_equal(rd64(f, 0x8008), 0x0000000700000008ULL);
}

/* CLFLUSH (CPUID.1:EDX.CLFSH): a no-op on memory that faults like a byte
 * read; CLFLUSHOPT (66 prefix) is not there. */
static void test_clflush(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	lm64(f, 0);
	wr64(f, 0x8000, 0x1122334455667788ULL);
	c->gpr[X86_RDI] = 0x8000;
	code(f, CODE, "\x0f\xae\x3f", 3);                     /* clflush [rdi] */
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->rip, CODE + 3);
	assert_int_equal(rd64(f, 0x8000), 0x1122334455667788ULL);
	c->rip = CODE;                                         /* non-canonical: #GP(0) */
	c->gpr[X86_RDI] = 0x8000000000000000ULL;
	expect_fault(f, EXC_GP, 0);
	code(f, CODE, "\x66\x0f\xae\x3f", 4);                 /* clflushopt: #UD */
	c->rip = CODE;
	c->gpr[X86_RDI] = 0x8000;
	expect_fault(f, EXC_UD, 0);
}

/* CPUID: the TSC frequency is advertised (leaves 0x15, 0x16) and invariant. */
static void test_cpuid_tsc(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;

	lm64(f, 0);
	code(f, CODE, "\x0f\xa2", 2);                          /* cpuid */
	c->gpr[X86_RAX] = 0;
	assert_int_equal(run1(f), EMU_OK);
	assert_true(c->gpr[X86_RAX] >= 0x16);
	c->rip = CODE;
	c->gpr[X86_RAX] = 0x15;
	assert_int_equal(run1(f), EMU_OK);
	/* TSC Hz = ECX * EBX / EAX */
	assert_int_equal((uint64_t)c->gpr[X86_RCX] * c->gpr[X86_RBX] / c->gpr[X86_RAX], 1000000000ULL);
	c->rip = CODE;
	c->gpr[X86_RAX] = 0x16;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX], 1000);
	c->rip = CODE;
	c->gpr[X86_RAX] = 0x80000007;
	assert_int_equal(run1(f), EMU_OK);
	assert_true(c->gpr[X86_RDX] & (1u << 8));
	/* and the TSC moves at that rate: two RDTSCs 10 ms apart */
	{
		uint64_t t0, t1;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		code(f, CODE, "\x0f\x31", 2);                  /* rdtsc */
		c->rip = CODE;
		assert_int_equal(run1(f), EMU_OK);
		t0 = (c->gpr[X86_RDX] << 32) | (uint32_t)c->gpr[X86_RAX];
		nanosleep(&ts, NULL);
		c->rip = CODE;
		assert_int_equal(run1(f), EMU_OK);
		t1 = (c->gpr[X86_RDX] << 32) | (uint32_t)c->gpr[X86_RAX];
		assert_true(t1 - t0 >= 10000000ULL && t1 - t0 < 1000000000ULL);
	}
}

/* CPUID identity (a vendor Linux knows, emu's name in the brand string,
 * the KVM clock leaves) and kvmclock: enabling it through its MSR writes
 * a structure whose time is the TSC, and the wall-clock MSR the time of
 * day when that clock read zero. */
static void test_cpuid_kvmclock(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;
	char s[49] = { 0 };
	uint32_t r[4];

	lm64(f, 0);
	code(f, CODE, "\x0f\xa2", 2);                          /* cpuid */
#define CPUID(leaf) do { c->rip = CODE; c->gpr[X86_RAX] = (leaf); c->gpr[X86_RCX] = 0; \
		assert_int_equal(run1(f), EMU_OK); \
		r[0] = c->gpr[X86_RAX]; r[1] = c->gpr[X86_RBX]; r[2] = c->gpr[X86_RCX]; r[3] = c->gpr[X86_RDX]; } while (0)
	CPUID(0);
	memcpy(s, &r[1], 4); memcpy(s + 4, &r[3], 4); memcpy(s + 8, &r[2], 4);
	assert_string_equal(s, "AuthenticAMD");
	for (unsigned i = 0; i < 3; i++) {
		CPUID(0x80000002 + i);
		memcpy(s + 16 * i, r, 16);
	}
	assert_memory_equal(s, "KumoEmuX86_6", 12);
	CPUID(0x40000000);
	assert_true(r[0] >= 0x40000001);
	assert_memory_equal(&r[1], "KVMKVMKVM\0\0\0", 12);
	CPUID(0x40000001);
	assert_true(r[0] & (1u << 3));                         /* kvmclock2 MSRs */
	CPUID(6);
	assert_true(r[0] & (1u << 2));                         /* ARAT */
	CPUID(1);
	assert_true(r[2] & (1u << 24));                        /* TSC deadline */
#undef CPUID

	/* wrmsr 0x4b564d01 = 0x8000 | 1, then rdtsc */
	memset(gpa(f, 0x8000, 32), 0xee, 32);
	code(f, CODE, "\x0f\x30\x0f\x31", 4);
	c->rip = CODE;
	c->gpr[X86_RCX] = 0x4b564d01;
	c->gpr[X86_RAX] = 0x8001;
	c->gpr[X86_RDX] = 0;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(run1(f), EMU_OK);
	{
		uint64_t tsc = (c->gpr[X86_RDX] << 32) | (uint32_t)c->gpr[X86_RAX];
		const uint8_t *t = gpa(f, 0x8000, 32);
		uint64_t ts = get_le64(t + 8), sys = get_le64(t + 16);
		uint32_t mul = get_le32(t + 24);
		int8_t shift = (int8_t)t[28];
		uint64_t delta = tsc - ts;
		delta = shift >= 0 ? delta << shift : delta >> -shift;
		uint64_t clock = sys + (uint64_t)(((unsigned __int128)delta * mul) >> 32);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_int_equal(get_le32(t) & 1, 0);          /* version even: stable */
		assert_true(t[29] & 1);                        /* PVCLOCK_TSC_STABLE */
		/* kvmclock is the host's monotonic clock: within a second of it */
		uint64_t mono = (uint64_t)now.tv_sec * 1000000000u + now.tv_nsec;
		assert_true(clock <= mono && mono - clock < 1000000000ULL);
	}
	/* wrmsr 0x4b564d00 = 0x9000: the time of day at kvmclock zero */
	code(f, CODE, "\x0f\x30", 2);
	c->rip = CODE;
	c->gpr[X86_RCX] = 0x4b564d00;
	c->gpr[X86_RAX] = 0x9000;
	c->gpr[X86_RDX] = 0;
	assert_int_equal(run1(f), EMU_OK);
	{
		struct timespec rt, mono;
		clock_gettime(CLOCK_REALTIME, &rt);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		uint32_t sec = get_le32((uint8_t *)gpa(f, 0x9004, 4));
		int64_t boot = (int64_t)rt.tv_sec - mono.tv_sec;
		assert_true((int64_t)sec >= boot - 2 && (int64_t)sec <= boot + 2);
	}
}

static void test_io_bitmap(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *c = &f->cpu;
	uint8_t *map;

	lm64(f, 3);
	/* the bitmap at 0x68, past the TSS's limit: every port denied */
	memset(gpa(f, TSS + 0x66, 2), 0, 2);
	*(uint8_t *)gpa(f, TSS + 0x66, 1) = 0x68;
	code(f, CODE, "\xe4\x80", 2);                          /* in al, 0x80 */
	expect_fault(f, EXC_GP, 0);
	/* within the limit, allowing ports 0x80 and 0x81 */
	c->tr.limit = 0x68 + 0x20;
	map = gpa(f, TSS + 0x68, 0x21);
	memset(map, 0xff, 0x21);
	map[0x10] = 0xfc;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RAX] & 0xff, 0xff);        /* no machine: all ones */
	code(f, CODE, "\x66\xe5\x80", 3);                      /* in ax, 0x80: 0x80-0x81 */
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	code(f, CODE, "\xe5\x80", 2);                          /* in eax, 0x80: 0x83 denied */
	c->rip = CODE;
	expect_fault(f, EXC_GP, 0);
	/* IOPL 3: no bitmap check */
	emu_flags_set(c, 0x3202);
	assert_int_equal(run1(f), EMU_OK);

	/* REP INSB / OUTSB at CPL 0 */
	lm64(f, 0);
	c->gpr[X86_RCX] = 4;
	c->gpr[X86_RDI] = 0x9000;
	c->gpr[X86_RDX] = 0x80;
	code(f, CODE, "\xf3\x6c", 2);
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RCX], 0);
	assert_int_equal(c->gpr[X86_RDI], 0x9004);
	assert_int_equal(rd32(f, 0x9000), 0xffffffff);
	c->gpr[X86_RCX] = 3;
	c->gpr[X86_RSI] = 0x9000;
	code(f, CODE, "\xf3\x6e", 2);
	c->rip = CODE;
	assert_int_equal(run1(f), EMU_OK);
	assert_int_equal(c->gpr[X86_RSI], 0x9003);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seg_loads, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_far_jmp_call_ret, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_pm32, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_lm64, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_double_and_triple_fault, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_iret_flags_cpl3, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_syscall_sysret, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sysenter_sysexit, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_legacy, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cmpxchg_wide, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_clflush, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_io_bitmap, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cpuid_tsc, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cpuid_kvmclock, setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
