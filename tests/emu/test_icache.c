/* The decoded-block cache seen from outside: code changed in guest RAM
 * behind the CPU's back (as a device's DMA does, through the host pointer)
 * runs as changed; code written by the CPU itself, even the very next
 * instruction, runs as written; a block decoded through one virtual alias
 * is found through another, with that alias's own fetch permissions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "icache.h"
#include "fixture_lm64.h"
#include "flags.h"
#include "kumo/memory.h"

/* mov eax, imm32; a run of NOPs; mov ebx, imm32; hlt */
static void code_two_movs(uint8_t *buf, uint32_t a, uint32_t b)
{
	unsigned i = 0;

	buf[i++] = 0xb8;
	memcpy(buf + i, &a, 4), i += 4;
	memset(buf + i, 0x90, 20), i += 20;
	buf[i++] = 0xbb;
	memcpy(buf + i, &b, 4), i += 4;
	buf[i++] = 0xf4;
}

static void device_write_between_runs(void **state)
{
	struct fx *f = *state;
	uint8_t code[64];

	code_two_movs(code, 1, 2);
	put(f, CODE, code, 31);
	run_to_hlt(f, CODE);
	run_to_hlt(f, CODE); /* now from the cache */
	assert_int_equal(f->cpu.gpr[X86_RAX], 1);
	assert_int_equal(f->cpu.gpr[X86_RBX], 2);

	/* the first instruction's immediate, then the last one's */
	code_two_movs(code, 3, 2);
	put(f, CODE, code, 31);
	run_to_hlt(f, CODE);
	assert_int_equal(f->cpu.gpr[X86_RAX], 3);
	code_two_movs(code, 3, 4);
	put(f, CODE, code, 31);
	run_to_hlt(f, CODE);
	assert_int_equal(f->cpu.gpr[X86_RBX], 4);

	/* a different instruction boundary: mov rax, imm64 over the NOPs */
	{
		static const uint8_t movabs[] = { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 };
		put(f, CODE + 5, movabs, sizeof(movabs));
		run_to_hlt(f, CODE);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x0807060504030201ULL);
		assert_int_equal(f->cpu.gpr[X86_RBX], 4);
	}
}

/* An instruction that crosses into the next page, changed in its second
 * half. */
static void device_write_across_pages(void **state)
{
	struct fx *f = *state;
	uint64_t at = CODE + 0x1000 - 3;
	uint8_t code[] = { 0xb8, 0x11, 0x22, 0x33, 0x44, 0xf4 };

	put(f, at, code, sizeof(code));
	run_to_hlt(f, at);
	run_to_hlt(f, at);
	assert_int_equal(f->cpu.gpr[X86_RAX], 0x44332211);
	gpa(f, CODE + 0x1000, 1)[0] = 0x55;
	run_to_hlt(f, at);
	assert_int_equal(f->cpu.gpr[X86_RAX], 0x44552211);
}

/* The CPU writes the immediate of the instruction right after the store. */
static void self_modifying_next_instruction(void **state)
{
	struct fx *f = *state;
	/* mov byte [rip+1], 0x77 ; mov al, 0x11 ; hlt */
	static const uint8_t code[] = { 0xc6, 0x05, 0x01, 0, 0, 0, 0x77, 0xb0, 0x11, 0xf4 };

	for (unsigned i = 0; i < 2; i++) {
		put(f, CODE, code, sizeof(code)); /* the second time from the cache */
		f->cpu.gpr[X86_RAX] = 0;
		run_to_hlt(f, CODE);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x77);
	}
}

/* A block decoded through one alias is found through another; the fetch
 * is still checked with the alias's own rights. */
static void aliases_share_blocks_and_keep_rights(void **state)
{
	struct fx *f = *state;
	uint8_t code[64];
	unsigned ran;

	code_two_movs(code, 5, 6);
	put(f, CODE, code, 31);
	run_to_hlt(f, CODE);
	assert_int_equal(f->cpu.gpr[X86_RAX], 5);
	code_two_movs(code, 7, 6);
	memcpy(gpa(f, CODE, 31), code, 31);
	run_to_hlt(f, ALIAS);
	assert_int_equal(f->cpu.gpr[X86_RAX], 7);
	assert_int_equal(f->cpu.rip, ALIAS + 31);

	f->cpu.rip = NXALIAS;
	assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_FAULT);
	assert_int_equal(ran, 1);
	assert_int_equal(f->cpu.exc.vector, EXC_PF);
	assert_int_equal(f->cpu.exc.error, 0x11); /* P | I/D */
	assert_int_equal(f->cpu.exc.cr2, NXALIAS);
	assert_int_equal(f->cpu.rip, NXALIAS);
}

/* emu_run's budget, and what it counts. */
static void budget_and_count(void **state)
{
	struct fx *f = *state;
	uint8_t code[64];
	unsigned ran;

	code_two_movs(code, 1, 2);
	put(f, CODE, code, 31);
	f->cpu.rip = CODE;
	assert_int_equal(emu_run(&f->cpu, 3, &ran), EMU_OK);
	assert_int_equal(ran, 3);
	assert_int_equal(f->cpu.rip, CODE + 7);
	assert_int_equal(emu_step(&f->cpu), EMU_OK);
	assert_int_equal(f->cpu.rip, CODE + 8);
	assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_HALT);
	assert_int_equal(ran, 19);
	assert_int_equal(f->cpu.rip, CODE + 31);

	/* a fault in the middle of a block: counted, state before it */
	f->cpu.rip = CODE;
	gpa(f, CODE + 5, 1)[0] = 0x0f; /* UD2 */
	gpa(f, CODE + 6, 1)[0] = 0x0b;
	assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_FAULT);
	assert_int_equal(ran, 2);
	assert_int_equal(f->cpu.exc.vector, EXC_UD);
	assert_int_equal(f->cpu.rip, CODE + 5);

	/* the stop flag ends a run between blocks: jmp $ runs once */
	{
		atomic_bool stop = true;
		static const uint8_t spin[] = { 0xeb, 0xfe };
		put(f, CODE, spin, sizeof(spin));
		f->cpu.rip = CODE;
		f->cpu.stop = &stop;
		assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_OK);
		assert_int_equal(ran, 1);
		atomic_store(&stop, false);
		assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_OK);
		assert_int_equal(ran, 1000);
		f->cpu.stop = NULL;
	}
}

/* Chained blocks (exec.c: a block remembers its successors on the same
 * code page) still see code this CPU writes: into the page of the chain
 * while running elsewhere, and into the page the chain runs in. */
static void chains_see_self_modifying_code(void **state)
{
	struct fx *f = *state;
	/* CODE + 0x100: loop: mov [rbx], ecx; call F; add edx, eax; dec ecx;
	 * jnz loop; hlt.  F (CODE + 0x1000): jmp F2; F2 (+0x40): mov eax,
	 * imm32; ret — F2's immediate is what the loop stores. */
	static const uint8_t loop[] = { 0x89, 0x0b, 0xe8, 0xf9, 0x0e, 0x00, 0x00, 0x01, 0xc2,
					0xff, 0xc9, 0x75, 0xf3, 0xf4 };
	static const uint8_t fn[] = { 0xeb, 0x3e };
	static const uint8_t fn2[] = { 0xb8, 0, 0, 0, 0, 0xc3 };
	/* CODE + 0x200: loop: mov [rbx], ecx; jmp B; B (+0x240): mov eax,
	 * imm32; add edx, eax; dec ecx; jnz loop; hlt — all on one page */
	static const uint8_t same[] = { 0x89, 0x0b, 0xeb, 0x3c };
	static const uint8_t same_b[] = { 0xb8, 0, 0, 0, 0, 0x01, 0xc2, 0xff, 0xc9, 0x75, 0xb5, 0xf4 };

	put(f, CODE + 0x100, loop, sizeof(loop));
	put(f, CODE + 0x1000, fn, sizeof(fn));
	put(f, CODE + 0x1040, fn2, sizeof(fn2));
	for (unsigned round = 0; round < 2; round++) { /* the second from the cache */
		f->cpu.gpr[X86_RBX] = CODE + 0x1041;
		f->cpu.gpr[X86_RCX] = 100;
		f->cpu.gpr[X86_RDX] = 0;
		run_to_hlt(f, CODE + 0x100);
		assert_int_equal(f->cpu.gpr[X86_RDX], 5050);
	}

	put(f, CODE + 0x200, same, sizeof(same));
	put(f, CODE + 0x240, same_b, sizeof(same_b));
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.gpr[X86_RBX] = CODE + 0x241;
		f->cpu.gpr[X86_RCX] = 100;
		f->cpu.gpr[X86_RDX] = 0;
		run_to_hlt(f, CODE + 0x200);
		assert_int_equal(f->cpu.gpr[X86_RDX], 5050);
	}
}

#define VPAGE   0x1a0000ULL         /* mapped to PAGE_A, or to PAGE_B by the second tables */
#define PAGE_A  0x50000ULL
#define PAGE_B  0x60000ULL
#define PML4_2  0x8000ULL           /* a copy of the tables at PML4 */

/* A CR3 write changes what a chain's linear page holds: the chain built
 * under the old tables is not followed under the new ones. */
static void chains_follow_cr3(void **state)
{
	struct fx *f = *state;
	/* VPAGE: mov cr3, rsi; jmp +0x3b; (+0x40) mov eax, imm32; hlt */
	uint8_t code[] = { 0x0f, 0x22, 0xde, 0xeb, 0x3b };
	uint8_t tail[] = { 0xb8, 1, 0, 0, 0, 0xf4 };

	put(f, PAGE_A, code, sizeof(code));
	put(f, PAGE_A + 0x40, tail, sizeof(tail));
	tail[1] = 2;
	put(f, PAGE_B, code, sizeof(code));
	put(f, PAGE_B + 0x40, tail, sizeof(tail));
	memcpy(gpa(f, PML4_2, 0x4000), gpa(f, PML4, 0x4000), 0x4000);
	for (unsigned i = 0; i < 3; i++) /* each table at PML4_2 points into the copy */
		wr64(f, PML4_2 + 0x1000 * i, (PML4_2 + 0x1000 * (i + 1)) | PTE_P | PTE_W);
	wr64(f, PT + 8 * (VPAGE >> 12), PAGE_A | PTE_P | PTE_W);
	wr64(f, PML4_2 + 0x3000 + 8 * (VPAGE >> 12), PAGE_B | PTE_P | PTE_W);

	/* CR3 rewritten with its own value: the chain VPAGE+3 -> +0x40 is built */
	for (unsigned i = 0; i < 3; i++) {
		f->cpu.gpr[X86_RSI] = PML4;
		run_to_hlt(f, VPAGE);
		assert_int_equal(f->cpu.gpr[X86_RAX], 1);
	}
	/* the CPU switches tables between the two blocks of the chain */
	f->cpu.gpr[X86_RSI] = PML4_2;
	run_to_hlt(f, VPAGE);
	assert_int_equal(f->cpu.gpr[X86_RAX], 2);
	for (unsigned i = 0; i < 2; i++) {
		run_to_hlt(f, VPAGE);
		assert_int_equal(f->cpu.gpr[X86_RAX], 2);
	}
	/* and back, from outside (as a vCPU state load does) */
	f->cpu.cr3 = PML4;
	emu_tlb_flush(&f->cpu, true);
	f->cpu.gpr[X86_RSI] = PML4;
	run_to_hlt(f, VPAGE + 3);
	assert_int_equal(f->cpu.gpr[X86_RAX], 1);
}

/* Handlers the cache picks that emu-diff does not reach (its branches
 * stay in the code page): JMP and CALL through a register and memory,
 * the long NOPs. */
static void indirect_branches_and_nops(void **state)
{
	struct fx *f = *state;
	/* +0x300: lea rax, [rip+0x19]; jmp rax */
	static const uint8_t start[] = { 0x48, 0x8d, 0x05, 0x19, 0, 0, 0, 0xff, 0xe0 };
	/* +0x320: nopl 0(rax,rax,1); xchg ax, ax; nop; call [rbx]; hlt */
	static const uint8_t body[] = { 0x0f, 0x1f, 0x44, 0, 0, 0x66, 0x90, 0x90, 0xff, 0x13, 0xf4 };
	/* +0x340: mov ecx, 7; ret */
	static const uint8_t fn[] = { 0xb9, 7, 0, 0, 0, 0xc3 };
	unsigned ran;

	put(f, CODE + 0x300, start, sizeof(start));
	put(f, CODE + 0x320, body, sizeof(body));
	put(f, CODE + 0x340, fn, sizeof(fn));
	wr64(f, CODE + 0x380, CODE + 0x340);
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.gpr[X86_RBX] = CODE + 0x380;
		f->cpu.gpr[X86_RCX] = 0;
		assert_int_equal(run_to_hlt(f, CODE + 0x300), 9);
		assert_int_equal(f->cpu.gpr[X86_RCX], 7);
		assert_int_equal(f->cpu.gpr[X86_RAX], CODE + 0x320);
		assert_int_equal(f->cpu.gpr[X86_RSP], STACK);
		assert_int_equal(f->cpu.rip, CODE + 0x32b);
	}
	/* a non-canonical target: #GP, nothing changed */
	f->cpu.rip = CODE + 0x307;
	f->cpu.gpr[X86_RAX] = 0x8000000000000000ULL;
	assert_int_equal(emu_run(&f->cpu, 10, &ran), EMU_FAULT);
	assert_int_equal(f->cpu.exc.vector, EXC_GP);
	assert_int_equal(f->cpu.rip, CODE + 0x307);
	wr64(f, CODE + 0x380, 0x8000000000000000ULL);
	f->cpu.rip = CODE + 0x328;
	assert_int_equal(emu_run(&f->cpu, 10, &ran), EMU_FAULT);
	assert_int_equal(f->cpu.exc.vector, EXC_GP);
	assert_int_equal(f->cpu.rip, CODE + 0x328);
	assert_int_equal(f->cpu.gpr[X86_RSP], STACK);
}

/* REP MOVS / REP STOS a page at a time (exec.c: string_fast): the
 * result, RSI/RDI/RCX, an overlap copying forward element by element, a
 * fault in the middle, a pause after a bounded amount, code written. */
#define SBUF 0x60000ULL               /* 0x60000-0x6ffff present, 0x70000 not */

static void rep_strings_by_page(void **state)
{
	struct fx *f = *state;
	static const uint8_t movsb[] = { 0xf3, 0xa4, 0xf4 }, movsd[] = { 0xf3, 0xa5, 0xf4 };
	static const uint8_t stosq[] = { 0xf3, 0x48, 0xab, 0xf4 }, stosb[] = { 0xf3, 0xaa, 0xf4 };
	uint8_t *p = gpa(f, SBUF, 0x10000), want[0x3000];
	unsigned ran;

	put(f, CODE + 0x400, movsb, sizeof(movsb));
	put(f, CODE + 0x410, movsd, sizeof(movsd));
	put(f, CODE + 0x420, stosq, sizeof(stosq));
	put(f, CODE + 0x430, stosb, sizeof(stosb));
	wr64(f, PT + 8 * 0x70, 0);
	emu_tlb_flush(&f->cpu, true);

	/* 10000 bytes from an odd offset to another, across pages */
	for (unsigned i = 0; i < 0x10000; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	f->cpu.gpr[X86_RSI] = SBUF + 0x123;
	f->cpu.gpr[X86_RDI] = SBUF + 0x8007;
	f->cpu.gpr[X86_RCX] = 10000;
	run_to_hlt(f, CODE + 0x400);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(p[0x8007 + i], (uint8_t)((0x123 + i) * 7 + 3));
	assert_int_equal(f->cpu.gpr[X86_RSI], SBUF + 0x123 + 10000);
	assert_int_equal(f->cpu.gpr[X86_RDI], SBUF + 0x8007 + 10000);
	assert_int_equal(f->cpu.gpr[X86_RCX], 0);

	/* MOVSD with the destination 6 bytes ahead of the source: each
	 * element reads what the ones before wrote */
	for (unsigned i = 0; i < 0x3000; i++)
		p[i] = want[i] = (uint8_t)(i ^ (i >> 8));
	for (unsigned i = 0; i < 2000; i++)
		memmove(want + 0xffa + 6 + 4 * i, want + 0xffa + 4 * i, 4);
	f->cpu.gpr[X86_RSI] = SBUF + 0xffa;
	f->cpu.gpr[X86_RDI] = SBUF + 0x1000;
	f->cpu.gpr[X86_RCX] = 2000;
	run_to_hlt(f, CODE + 0x410);
	assert_memory_equal(p, want, sizeof(want));
	assert_int_equal(f->cpu.gpr[X86_RDI], SBUF + 0x1000 + 8000);

	/* STOSQ running into a page that is not present: the fault at its
	 * first byte, the registers as the stores before it left them */
	f->cpu.gpr[X86_RAX] = 0x1122334455667788ULL;
	f->cpu.gpr[X86_RDI] = 0x6ff00;
	f->cpu.gpr[X86_RCX] = 100;
	f->cpu.rip = CODE + 0x420;
	assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_FAULT);
	assert_int_equal(f->cpu.exc.vector, EXC_PF);
	assert_int_equal(f->cpu.exc.cr2, 0x70000);
	assert_int_equal(f->cpu.gpr[X86_RDI], 0x70000);
	assert_int_equal(f->cpu.gpr[X86_RCX], 68);
	assert_int_equal(f->cpu.rip, CODE + 0x420);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(((uint64_t *)(p + 0xff00))[i], 0x1122334455667788ULL);

	/* a long STOSB pauses: one step does a bounded part, RIP stays */
	f->cpu.gpr[X86_RAX] = 0xab;
	f->cpu.gpr[X86_RDI] = 0x200000; /* in a 2 MiB page */
	f->cpu.gpr[X86_RCX] = 0x40000;
	f->cpu.rip = CODE + 0x430;
	assert_int_equal(emu_step(&f->cpu), EMU_OK);
	assert_int_equal(f->cpu.rip, CODE + 0x430);
	assert_true(f->cpu.gpr[X86_RCX] > 0 && f->cpu.gpr[X86_RCX] < 0x40000);
	assert_int_equal(f->cpu.gpr[X86_RDI], 0x200000 + 0x40000 - f->cpu.gpr[X86_RCX]);
	run_to_hlt(f, CODE + 0x430);
	p = gpa(f, 0x200000, 0x40001);
	for (unsigned i = 0; i < 0x40000; i++)
		assert_int_equal(p[i], 0xab);
	assert_int_equal(p[0x40000], 0);

	/* STOSB over the immediate of the next instruction: it runs as written */
	{
		static const uint8_t code[] = { 0xf3, 0xaa, 0xb8, 0, 0, 0, 0, 0xf4 };
		put(f, CODE + 0x440, code, sizeof(code));
		for (unsigned i = 0; i < 2; i++) {
			f->cpu.gpr[X86_RAX] = 0x55 + i;
			f->cpu.gpr[X86_RDI] = CODE + 0x443;
			f->cpu.gpr[X86_RCX] = 4;
			run_to_hlt(f, CODE + 0x440);
			assert_int_equal(f->cpu.gpr[X86_RAX], 0x01010101u * (0x55 + i));
		}
	}
}

/* A rotate's CF/OF are skipped when the block overwrites them before
 * anything reads them (exec.c: emu_exec_pick_block), and exact when the
 * block is cut short right after it, or a Jcc reads them. */
static void rotate_flags_dead_and_exact(void **state)
{
	struct fx *f = *state;
	/* rol eax, 1; mov ecx, eax; add edx, ebx; hlt */
	static const uint8_t dead[] = { 0xd1, 0xc0, 0x89, 0xc1, 0x01, 0xda, 0xf4 };
	/* ror eax, 4; jc +1; hlt; mov ebx, 7; hlt */
	static const uint8_t read[] = { 0xc1, 0xc8, 0x04, 0x72, 0x01, 0xf4, 0xbb, 7, 0, 0, 0, 0xf4 };
	unsigned ran;

	put(f, CODE + 0x500, dead, sizeof(dead));
	put(f, CODE + 0x520, read, sizeof(read));
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.gpr[X86_RAX] = 0x80000000;
		f->cpu.gpr[X86_RDX] = 0xffffffff;
		f->cpu.gpr[X86_RBX] = 1;
		run_to_hlt(f, CODE + 0x500);
		assert_int_equal(f->cpu.gpr[X86_RAX], 1);
		assert_int_equal(f->cpu.gpr[X86_RCX], 1);
		assert_int_equal(f->cpu.gpr[X86_RDX], 0);
		assert_int_equal(emu_flags_get(&f->cpu) & (FL_CF | FL_OF | FL_ZF), FL_CF | FL_ZF);

		/* the same block cut after the rotate: its own flags */
		f->cpu.gpr[X86_RAX] = 0x80000000;
		emu_flags_set(&f->cpu, 0x2 | FL_ZF);
		f->cpu.rip = CODE + 0x500;
		assert_int_equal(emu_run(&f->cpu, 1, &ran), EMU_OK);
		assert_int_equal(f->cpu.gpr[X86_RAX], 1);
		assert_int_equal(emu_flags_get(&f->cpu) & (FL_CF | FL_OF | FL_ZF), FL_CF | FL_OF | FL_ZF);

		f->cpu.gpr[X86_RAX] = 0x8;
		f->cpu.gpr[X86_RBX] = 0;
		run_to_hlt(f, CODE + 0x520);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x80000000);
		assert_int_equal(f->cpu.gpr[X86_RBX], 7);
	}
}

/* ---- write tracking (icache.h): stores into validated code leave the
 * inline fast path, and start a new session ---- */
#define FN     (CODE + 0x2000)      /* a function on its own page */
#define DATA   0x40000ULL

static const struct emu_tlb_entry *tlb_entry(struct fx *f, uint64_t linear)
{
	const struct emu_tlb_entry *e = &f->cpu.tlb.e[emu_tlb_set(linear >> 12) * EMU_TLB_WAYS];

	for (unsigned w = 0; w < EMU_TLB_WAYS; w++)
		if (e[w].vpage == linear >> 12)
			return &e[w];
	return NULL;
}

/* mov eax, imm32; ret */
static void put_fn(struct fx *f, uint32_t v)
{
	uint8_t fn[] = { 0xb8, 0, 0, 0, 0, 0xc3 };

	memcpy(fn + 1, &v, 4);
	put(f, FN, fn, sizeof(fn));
}

/* Code at CODE + 0x600 that stores EAX to DATA and calls FN (which
 * returns v in EAX), then halts; run once. */
static void store_and_call(struct fx *f, uint32_t v)
{
	/* mov [rbx], eax; call rsi; hlt */
	static const uint8_t code[] = { 0x89, 0x03, 0xff, 0xd6, 0xf4 };

	put(f, CODE + 0x600, code, sizeof(code));
	put_fn(f, v);
	f->cpu.gpr[X86_RBX] = DATA;
	f->cpu.gpr[X86_RSI] = FN;
	run_to_hlt(f, CODE + 0x600);
	assert_int_equal(f->cpu.gpr[X86_RAX], v);
}

/* The TLB marks the page of code that ran, not the page of data. */
static void tracking_marks_code_pages(void **state)
{
	struct fx *f = *state;
	const struct emu_tlb_entry *e;

	store_and_call(f, 3);
	assert_non_null(e = tlb_entry(f, DATA));
	assert_true(e->perm & TLB_PLAIN);
	assert_non_null(e = tlb_entry(f, FN));
	assert_false(e->perm & TLB_PLAIN);
	assert_non_null(e = tlb_entry(f, STACK - 8));
	assert_true(e->perm & TLB_PLAIN);

	/* a store into FN's page from outside a run: unmarked, plain again,
	 * until its code is validated again */
	assert_int_equal(emu_write(&f->cpu, SR_DS, FN + 0x800, 4, 0), 0);
	assert_true(tlb_entry(f, FN)->perm & TLB_PLAIN);
	run_to_hlt(f, CODE + 0x600);
	assert_false(tlb_entry(f, FN)->perm & TLB_PLAIN);
}

/* Guest memory that tracks code (a machine of one vCPU, struct guest_code):
 * the pages the CPU validated code from are marked for the devices, a
 * store of the CPU's own into one takes its mark away, and code a device
 * rewrote runs as rewritten once the device says so — and only then: the
 * CPU trusts its decoded blocks without comparing them across runs. */
static void devices_told_of_code_pages(void **state)
{
	struct fx *f = *state;

	assert_int_equal(guest_mem_track_code(&f->mem), 0);
	/* This thread's cache knew these pages before the memory tracked code
	 * (earlier tests; a vCPU thread starts with it tracking): forget them. */
	assert_int_equal(emu_write(&f->cpu, SR_DS, CODE + 0xf00, 4, 0), 0);
	assert_int_equal(emu_write(&f->cpu, SR_DS, FN + 0x800, 4, 0), 0);
	store_and_call(f, 3);
	assert_true(guest_mem_code(&f->mem, CODE + 0x600, 1));
	assert_true(guest_mem_code(&f->mem, FN - 0x100, 0x200)); /* FN's page in the range */
	assert_false(guest_mem_code(&f->mem, DATA, 4096));
	assert_false(guest_mem_code(&f->mem, CODE + 0x600, 0));
	assert_true(guest_mem_code(&f->mem, 1ULL << 40, 1)); /* not RAM: say yes */

	/* a device rewrites FN's immediate without a word: the old code runs */
	put_fn(f, 5);
	run_to_hlt(f, CODE + 0x600);
	assert_int_equal(f->cpu.gpr[X86_RAX], 3);
	/* with one: the new code */
	guest_mem_code_written(&f->mem);
	run_to_hlt(f, CODE + 0x600);
	assert_int_equal(f->cpu.gpr[X86_RAX], 5);

	/* the CPU's own store into FN's page takes the mark away until its
	 * code is validated again */
	assert_int_equal(emu_write(&f->cpu, SR_DS, FN + 0x800, 4, 0), 0);
	assert_false(guest_mem_code(&f->mem, FN, 1));
	put_fn(f, 7); /* that page is compared again: no word needed */
	run_to_hlt(f, CODE + 0x600);
	assert_int_equal(f->cpu.gpr[X86_RAX], 7);
	assert_true(guest_mem_code(&f->mem, FN, 1));
}

/* Code written by stores through a TLB entry filled before the page held
 * code: the page becoming code takes the plain bit from that entry, so
 * the second rewrite, in the same run, is seen. */
static void store_through_entry_filled_before_code(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xc6, 0x03, 0xb8,                         /* mov byte [rbx], 0xb8 */
		0xc7, 0x43, 0x01, 0x01, 0, 0, 0,          /* mov dword [rbx+1], 1 */
		0xc6, 0x43, 0x05, 0xc3,                   /* mov byte [rbx+5], 0xc3 */
		0xff, 0xd3,                               /* call rbx */
		0x89, 0xc6,                               /* mov esi, eax */
		0xc7, 0x43, 0x01, 0x02, 0, 0, 0,          /* mov dword [rbx+1], 2 */
		0xff, 0xd3,                               /* call rbx */
		0xf4,
	};

	put(f, CODE + 0x700, code, sizeof(code));
	memset(gpa(f, FN, 8), 0xcc, 8);
	for (unsigned round = 0; round < 3; round++) {
		f->cpu.gpr[X86_RBX] = FN;
		run_to_hlt(f, CODE + 0x700);
		assert_int_equal(f->cpu.gpr[X86_RSI], 1);
		assert_int_equal(f->cpu.gpr[X86_RAX], 2);
	}
}

/* Code on another page rewritten by a LOCKed operation (a host pointer:
 * emu_host_ptr) and by REP STOSB a page at a time, in the same run that
 * validated it. */
static void atomic_and_string_stores_into_code(void **state)
{
	struct fx *f = *state;
	static const uint8_t locked[] = {
		0xff, 0xd3,                               /* call rbx */
		0x89, 0xc6,                               /* mov esi, eax */
		0xf0, 0x83, 0x43, 0x01, 0x10,             /* lock add dword [rbx+1], 0x10 */
		0xff, 0xd3,                               /* call rbx */
		0xf4,
	};
	static const uint8_t string[] = {
		0xff, 0xd3,                               /* call rbx */
		0x89, 0xc6,                               /* mov esi, eax */
		0x48, 0x8d, 0x7b, 0x01,                   /* lea rdi, [rbx+1] */
		0xb9, 4, 0, 0, 0,                         /* mov ecx, 4 */
		0xb8, 0x22, 0, 0, 0,                      /* mov eax, 0x22 */
		0xf3, 0xaa,                               /* rep stosb */
		0xff, 0xd3,                               /* call rbx */
		0xf4,
	};

	put(f, CODE + 0x780, locked, sizeof(locked));
	put(f, CODE + 0x7c0, string, sizeof(string));
	for (unsigned round = 0; round < 2; round++) {
		put_fn(f, 5);
		f->cpu.gpr[X86_RBX] = FN;
		run_to_hlt(f, CODE + 0x780);
		assert_int_equal(f->cpu.gpr[X86_RSI], 5);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x15);

		f->cpu.gpr[X86_RBX] = FN;
		run_to_hlt(f, CODE + 0x7c0);
		assert_int_equal(f->cpu.gpr[X86_RSI], 0x15);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x22222222);
	}
}

/* Two CPUs run by one thread share its cache and codemap, each with its
 * own TLB: a page that became code while the other CPU ran takes the
 * plain bit from this one's TLB when it runs again (emu_code_sync). */
static void two_cpus_one_thread(void **state)
{
	struct fx *f = *state;
	struct emu_cpu *a = &f->cpu, *b = malloc(sizeof(*b));
	/* A, first: mov dword [rbx+1], 7; hlt (its TLB maps FN with plain) */
	static const uint8_t a_first[] = { 0xc7, 0x43, 0x01, 7, 0, 0, 0, 0xf4 };
	/* A, then: call rbx; mov esi, eax; mov dword [rbx+1], 9; call rbx; hlt */
	static const uint8_t a_then[] = { 0xff, 0xd3, 0x89, 0xc6, 0xc7, 0x43, 0x01, 9, 0, 0, 0,
					  0xff, 0xd3, 0xf4 };
	/* B: call rbx; hlt */
	static const uint8_t b_code[] = { 0xff, 0xd3, 0xf4 };
	unsigned ran;

	assert_non_null(b);
	put(f, CODE + 0x800, a_first, sizeof(a_first));
	put(f, CODE + 0x840, a_then, sizeof(a_then));
	put(f, CODE + 0x880, b_code, sizeof(b_code));
	for (unsigned round = 0; round < 2; round++) {
		put_fn(f, 1);
		a->gpr[X86_RBX] = FN;
		run_to_hlt(f, CODE + 0x800);
		assert_non_null(tlb_entry(f, FN));
		assert_true(tlb_entry(f, FN)->perm & TLB_PLAIN);

		*b = *a;
		emu_tlb_flush(b, true);
		b->rip = CODE + 0x880;
		b->gpr[X86_RSP] = STACK - 0x100;
		assert_int_equal(emu_run(b, 100, &ran), EMU_HALT);
		assert_int_equal(b->gpr[X86_RAX], 7);

		run_to_hlt(f, CODE + 0x840);
		assert_int_equal(a->gpr[X86_RSI], 7);
		assert_int_equal(a->gpr[X86_RAX], 9);
	}
	free(b);
}

/* Blocks whose hashes meet share a set of two slots: two of them, run
 * in turn, both stay decoded (a direct-mapped table decoded each on every
 * entry); a third takes one of the two slots and runs as written. */
static void colliding_blocks_both_stay(void **state)
{
	struct fx *f = *state;
	struct emu_icache *c;
	uint64_t at[3], builds;
	unsigned n = 0, set = 0;

	/* three block addresses of one set, in the 2 MiB pages */
	for (uint64_t a = 0x200000; a < 0x1000000 && n < 3; a += 16) {
		unsigned s = emu_icache_slot(a, MODE_LONG64);

		if (n && s != set)
			continue;
		set = s;
		at[n++] = a;
		if (n == 1) { /* another set to try if no two more are found soon */
			for (uint64_t b = a + 16; b < 0x1000000 && n < 3; b += 16)
				if (emu_icache_slot(b, MODE_LONG64) == set)
					at[n++] = b;
			if (n < 3)
				n = 0;
		}
	}
	assert_int_equal(n, 3);
	for (unsigned i = 0; i < 3; i++) {
		uint8_t code[6] = { 0xb8, (uint8_t)(i + 1), 0, 0, 0, 0xf4 }; /* mov eax, i + 1; hlt */

		put(f, at[i], code, sizeof(code));
	}
	run_to_hlt(f, at[0]);
	run_to_hlt(f, at[1]);
	c = emu_icache_tls;
	assert_non_null(c);
	builds = c->builds;
	for (unsigned round = 0; round < 10; round++)
		for (unsigned i = 0; i < 2; i++) {
			run_to_hlt(f, at[i]);
			assert_int_equal(f->cpu.gpr[X86_RAX], i + 1);
		}
	assert_int_equal(c->builds, builds);
	assert_true((c->blocks[set].phys == at[0] && c->blocks[set + 1].phys == at[1]) ||
		    (c->blocks[set].phys == at[1] && c->blocks[set + 1].phys == at[0]));
	run_to_hlt(f, at[2]);
	assert_int_equal(f->cpu.gpr[X86_RAX], 3);
	assert_int_equal(c->builds, builds + 1);
	for (unsigned i = 0; i < 3; i++) {
		run_to_hlt(f, at[i]);
		assert_int_equal(f->cpu.gpr[X86_RAX], i + 1);
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_lm64, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(device_write_between_runs),
		T(device_write_across_pages),
		T(self_modifying_next_instruction),
		T(aliases_share_blocks_and_keep_rights),
		T(budget_and_count),
		T(chains_see_self_modifying_code),
		T(chains_follow_cr3),
		T(indirect_branches_and_nops),
		T(rep_strings_by_page),
		T(rotate_flags_dead_and_exact),
		T(tracking_marks_code_pages),
		T(devices_told_of_code_pages),
		T(store_through_entry_filled_before_code),
		T(atomic_and_string_stores_into_code),
		T(two_cpus_one_thread),
		T(colliding_blocks_both_stay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
