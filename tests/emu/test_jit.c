/* Translation to host code (src/emu/jit.h), switched on: blocks of
 * register-only ALU and MOV run as host code and leave registers and
 * flags as the interpreter would; the interpreter carries on after them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "fixture_lm64.h"
#include "flags.h"
#include "icache.h"
#include "jit.h"
#include "kumo/memory.h"

/* The expected results are written out: the switch is read once, when
 * the thread's cache is made, so one process cannot compare itself
 * with the interpreter (emu-diff-jit compares with the host CPU). */

static uint64_t flags(struct fx *f)
{
	return emu_flags_get(&f->cpu) & (FL_CF | FL_PF | FL_ZF | FL_SF | FL_OF | FL_AF);
}

/* Register-only ALU and MOV run translated, and the interpreter after
 * them reads the flags the host left. */
static void alu_and_mov_translated(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb8, 0xff, 0xff, 0xff, 0xff,             /* mov eax, 0xffffffff */
		0x48, 0xbb, 1, 2, 3, 4, 5, 6, 7, 0x88,    /* movabs rbx, 0x8807060504030201 */
		0x48, 0xc7, 0xc1, 0xfe, 0xff, 0xff, 0xff, /* mov rcx, -2 */
		0x89, 0xc2,                               /* mov edx, eax */
		0x48, 0x01, 0xd9,                         /* add rcx, rbx */
		0x4c, 0x8b, 0xc1,                         /* mov r8, rcx */
		0x49, 0x83, 0xe8, 0x10,                   /* sub r8, 0x10 */
		0x31, 0xf6,                               /* xor esi, esi */
		0x83, 0xc0, 0x01,                         /* add eax, 1: CF ZF PF AF */
		0x0f, 0x92, 0xc7,                         /* setc bh (interpreted) */
		0xf4,
	};
	uint64_t before = emu_jit_translated();

	put(f, CODE, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		memset(f->cpu.gpr, 0x55, sizeof(f->cpu.gpr));
		f->cpu.gpr[X86_RSP] = STACK;
		run_to_hlt(f, CODE);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0);
		assert_int_equal(f->cpu.gpr[X86_RDX], 0xffffffff);
		assert_int_equal(f->cpu.gpr[X86_RCX], 0x88070605040301ffULL);
		assert_int_equal(f->cpu.gpr[X86_R8], 0x88070605040301efULL);
		assert_int_equal(f->cpu.gpr[X86_RSI], 0);
		assert_int_equal(f->cpu.gpr[X86_RBX], 0x8807060504030101ULL); /* BH = CF */
		assert_int_equal(flags(f), FL_CF | FL_ZF | FL_PF | FL_AF);
	}
	assert_true(emu_jit_translated() - before >= 9); /* once: the second round is cached */
}

/* Logic operations: the interpreter's AF (clear); CMP and TEST write no
 * register; a budget that ends inside the prefix runs it interpreted. */
static void logic_cmp_test_and_budget(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x39, 0xd8,                         /* cmp rax, rbx */
		0x48, 0x85, 0xc0,                         /* test rax, rax */
		0x48, 0x25, 0x00, 0xff, 0x00, 0x00,       /* and rax, 0xff00 */
		0x09, 0xd9,                               /* or ecx, ebx */
		0xf4,
	};
	unsigned ran;

	put(f, CODE + 0x100, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.gpr[X86_RAX] = 0x8000000000001234ULL;
		f->cpu.gpr[X86_RBX] = 0x0f;
		f->cpu.gpr[X86_RCX] = 0xffffffff00000080ULL;
		emu_flags_set(&f->cpu, 0x2 | FL_AF | FL_CF);
		run_to_hlt(f, CODE + 0x100);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x1200);
		assert_int_equal(f->cpu.gpr[X86_RBX], 0x0f);
		assert_int_equal(f->cpu.gpr[X86_RCX], 0x8f); /* 32-bit: zero-extended */
		assert_int_equal(flags(f), 0);               /* 0x8f: odd parity, AF clear */

		/* two instructions at a time: the prefix does not fit the budget */
		f->cpu.gpr[X86_RAX] = 0x8000000000001234ULL;
		f->cpu.rip = CODE + 0x100;
		assert_int_equal(emu_run(&f->cpu, 2, &ran), EMU_OK);
		assert_int_equal(ran, 2);
		assert_int_equal(f->cpu.rip, CODE + 0x106);
		assert_int_equal(flags(f), FL_SF);           /* TEST of a negative */
		assert_int_equal(f->cpu.gpr[X86_RAX], 0x8000000000001234ULL);
	}
}

/* Code rewritten in guest RAM: the block is decoded and translated again. */
static void rewritten_code_translated_again(void **state)
{
	struct fx *f = *state;
	uint8_t code[] = { 0xb9, 1, 0, 0, 0, 0x01, 0xc8, 0xf4 }; /* mov ecx, imm; add eax, ecx; hlt */

	for (unsigned i = 0; i < 4; i++) {
		code[1] = (uint8_t)(i + 1);
		put(f, CODE + 0x200, code, sizeof(code));
		f->cpu.gpr[X86_RAX] = 100;
		run_to_hlt(f, CODE + 0x200);
		assert_int_equal(f->cpu.gpr[X86_RAX], 101 + i);
	}
}

/* A loop: conditional branches on the host's flags inside the
 * translated code, taken (leaving the block) and not; INC/DEC after
 * another flag writer; shifts by constants; IMUL. */
static void branches_shifts_imul(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb9, 10, 0, 0, 0,                        /* mov ecx, 10 */
		0x31, 0xc0,                               /* xor eax, eax */
		0x01, 0xc8,                               /* L: add eax, ecx */
		0x48, 0x89, 0xc2,                         /* mov rdx, rax */
		0x48, 0xc1, 0xe2, 0x3c,                   /* shl rdx, 60 */
		0x48, 0xc1, 0xfa, 0x3d,                   /* sar rdx, 61 */
		0x48, 0xff, 0xc6,                         /* inc rsi */
		0xff, 0xc9,                               /* dec ecx */
		0x75, 0xec,                               /* jnz L */
		0x48, 0x0f, 0xaf, 0xc0,                   /* imul rax, rax */
		0xd1, 0xe8,                               /* shr eax, 1 */
		0x0f, 0x92, 0xc3,                         /* setc bl (interpreted) */
		0xf4,
	};

	put(f, CODE + 0x300, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.gpr[X86_RSI] = 0xffffffff;
		f->cpu.gpr[X86_RBX] = 0;
		assert_int_equal(run_to_hlt(f, CODE + 0x300), 2 + 10 * 7 + 4);
		assert_int_equal(f->cpu.gpr[X86_RCX], 0);
		assert_int_equal(f->cpu.gpr[X86_RAX], 55 * 55 / 2);
		assert_int_equal(f->cpu.gpr[X86_RBX], 1);             /* 3025 is odd: CF */
		assert_int_equal(f->cpu.gpr[X86_RSI], 0xffffffffULL + 10);
		/* rax was 55 at the last turn: 55 << 60 is 0x7000..., >> 61 (arithmetic) is 3 */
		assert_int_equal(f->cpu.gpr[X86_RDX], 3);
	}
}

/* Rotates: with dead flags before any flag writer (the prefix reaches
 * the instruction that overwrites them), and exact after one (a Jcc
 * reads their CF). */
static void rotates(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xc1, 0xc8, 0x07,                         /* ror eax, 7 (flags dead) */
		0x48, 0xc1, 0xc3, 0x0d,                   /* rol rbx, 13 (flags dead) */
		0x31, 0xd8,                               /* xor eax, ebx: overwrites them */
		0xd1, 0xc1,                               /* rol ecx, 1: CF OF from here */
		0x72, 0x06,                               /* jc +6 */
		0xbe, 1, 0, 0, 0,                         /* mov esi, 1 */
		0xf4,                                     /* hlt */
		0xbe, 2, 0, 0, 0,                         /* mov esi, 2 */
		0xf4,
	};
	uint64_t before = emu_jit_translated();

	put(f, CODE + 0x400, code, sizeof(code));
	for (unsigned round = 0; round < 4; round++) {
		uint32_t a = 0x12345678u * (round + 1), c = round & 1 ? 0x80000001u : 0x40000001u;
		uint64_t b = 0x0123456789abcdefULL + round;
		uint32_t ra = (a >> 7) | (a << 25);
		uint64_t rb = (b << 13) | (b >> 51);

		f->cpu.gpr[X86_RAX] = a;
		f->cpu.gpr[X86_RBX] = b;
		f->cpu.gpr[X86_RCX] = c;
		run_to_hlt(f, CODE + 0x400);
		assert_int_equal(f->cpu.gpr[X86_RAX], ra ^ (uint32_t)rb);
		assert_int_equal(f->cpu.gpr[X86_RBX], rb);
		assert_int_equal(f->cpu.gpr[X86_RCX], (uint32_t)((c << 1) | (c >> 31)));
		assert_int_equal(f->cpu.gpr[X86_RSI], round & 1 ? 2 : 1);
		/* OF of a 1-bit ROL: the new sign xor the new CF */
		assert_int_equal(!!(flags(f) & FL_OF), ((c >> 30) & 1) ^ (c >> 31));
	}
	assert_true(emu_jit_translated() - before >= 5);
}

/* LEA: base, index, scale, displacement, RIP-relative, 32-bit results;
 * the flags of the ADD before it reach the Jcc after it. */
static void lea_forms(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x01, 0xff,                         /* add rdi, rdi: ZF when 0 */
		0x48, 0x8d, 0x44, 0x8b, 0x10,             /* lea rax, [rbx + rcx*4 + 0x10] */
		0x8d, 0x50, 0xff,                         /* lea edx, [rax - 1] */
		0x48, 0x8d, 0x35, 0x00, 0x01, 0, 0,       /* lea rsi, [rip + 0x100] */
		0x4e, 0x8d, 0x04, 0xcd, 0xf8, 0xff, 0xff, 0xff, /* lea r8, [r9*8 - 8] */
		0x74, 0x01,                               /* jz +1 */
		0xf4,                                     /* hlt */
		0x48, 0xff, 0xc7,                         /* inc rdi: ZF was set */
		0xf4,
	};

	put(f, CODE + 0x500, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.gpr[X86_RBX] = 0xffffffff00001000ULL;
		f->cpu.gpr[X86_RCX] = 3;
		f->cpu.gpr[X86_R9] = 5;
		f->cpu.gpr[X86_RDI] = round;
		run_to_hlt(f, CODE + 0x500);
		assert_int_equal(f->cpu.gpr[X86_RAX], 0xffffffff0000101cULL);
		assert_int_equal(f->cpu.gpr[X86_RDX], 0x101b);
		assert_int_equal(f->cpu.gpr[X86_RSI], CODE + 0x500 + 18 + 0x100);
		assert_int_equal(f->cpu.gpr[X86_R8], 32);
		assert_int_equal(f->cpu.gpr[X86_RDI], round ? 2 : 1);
	}
}

#define DATA 0x40000ULL      /* identity-mapped RAM, 4 KiB pages */
#define UNMAPPED 0x2000000ULL /* above the 16 MiB the page tables map */

/* Loads, stores and read-modify-write ALU operations on memory, of 1, 4
 * and 8 bytes, with base + index * scale + displacement and RIP-relative
 * operands (a store into the code page goes to the interpreter: it holds
 * validated code), in a loop: run by the translated code once the TLB
 * holds the pages. */
static void memory_operands(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb9, 0x08, 0x00, 0x00, 0x00,             /* mov ecx, 8 */
		0x31, 0xc0,                               /* xor eax, eax */
		0x48, 0x03, 0x44, 0xcb, 0xf8,             /* L: add rax, [rbx + rcx*8 - 8] */
		0x48, 0x8b, 0x54, 0xcb, 0xf8,             /* mov rdx, [rbx + rcx*8 - 8] */
		0x48, 0x89, 0x94, 0xcb, 0xf8, 0, 0, 0,    /* mov [rbx + rcx*8 + 0xf8], rdx */
		0x48, 0x83, 0x84, 0xcb, 0xf8, 0, 0, 0, 1, /* add qword [rbx + rcx*8 + 0xf8], 1 */
		0x0f, 0xb6, 0x74, 0xcb, 0xf8,             /* movzx esi, byte [rbx + rcx*8 - 8] */
		0x40, 0x88, 0xb4, 0x0b, 0xff, 1, 0, 0,    /* mov [rbx + rcx + 0x1ff], sil */
		0x83, 0xbb, 0x00, 0x03, 0, 0, 0x05,       /* cmp dword [rbx + 0x300], 5 */
		0xc7, 0x83, 0x04, 0x03, 0, 0, 0x78, 0x56, 0x34, 0x12, /* mov dword [rbx + 0x304], 0x12345678 */
		0xf6, 0x44, 0xcb, 0xf8, 0x01,             /* test byte [rbx + rcx*8 - 8], 1 */
		0xff, 0xc9,                               /* dec ecx */
		0x75, 0xbe,                               /* jnz L */
		0x48, 0x89, 0x05, 0xf0, 0x07, 0, 0,       /* mov [rip + 0x7f0], rax: the code page */
		0x48, 0x8b, 0x3d, 0xe9, 0x07, 0, 0,       /* mov rdi, [rip + 0x7e9]: the same qword */
		0xf4,
	};
	uint64_t sum = 0;

	put(f, CODE + 0x600, code, sizeof(code));
	for (unsigned i = 0; i < 8; i++) {
		wr64(f, DATA + 8 * i, 0x0101010101010101ULL * (i + 1) + 0x1000000000ULL * i);
		sum += 0x0101010101010101ULL * (i + 1) + 0x1000000000ULL * i;
	}
	for (unsigned round = 0; round < 3; round++) {
		uint64_t before = f->cpu.jit_insns;

		memset(gpa(f, DATA + 0x100, 0x300), 0, 0x300);
		f->cpu.gpr[X86_RBX] = DATA;
		run_to_hlt(f, CODE + 0x600);
		assert_int_equal(f->cpu.gpr[X86_RAX], sum);
		assert_int_equal(f->cpu.gpr[X86_RDI], sum);
		assert_int_equal(f->cpu.gpr[X86_RCX], 0);
		for (unsigned i = 0; i < 8; i++) {
			uint64_t v = 0x0101010101010101ULL * (i + 1) + 0x1000000000ULL * i, got;

			memcpy(&got, gpa(f, DATA + 0x100 + 8 * i, 8), 8);
			assert_int_equal(got, v + 1);
			assert_int_equal(*gpa(f, DATA + 0x200 + i, 1), (uint8_t)(i + 1));
		}
		assert_int_equal(*(uint32_t *)gpa(f, DATA + 0x304, 4), 0x12345678);
		assert_int_equal(*(uint64_t *)gpa(f, CODE + 0x600 + 0x49 + 7 + 0x7f0, 8), sum);
		/* flags: DEC to 0 */
		assert_int_equal(flags(f) & (FL_ZF | FL_SF), FL_ZF);
		if (round) /* the loop ran translated: 10 a turn, and the JNZ (taken: not counted) */
			assert_true(f->cpu.jit_insns - before >= 8 * 10);
	}
}

/* CALL, RET, PUSH and POP: fib(12) by recursion, 465 calls deep-first. */
static void call_ret_push_pop(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xbf, 0x0c, 0x00, 0x00, 0x00,             /* mov edi, 12 */
		0xe8, 0x01, 0x00, 0x00, 0x00,             /* call fib */
		0xf4,                                     /* hlt */
		0x53,                                     /* fib: push rbx */
		0x55,                                     /* push rbp */
		0x89, 0xfb,                               /* mov ebx, edi */
		0x89, 0xf8,                               /* mov eax, edi */
		0x83, 0xff, 0x02,                         /* cmp edi, 2 */
		0x72, 0x16,                               /* jb out */
		0x8d, 0x7b, 0xff,                         /* lea edi, [rbx - 1] */
		0xe8, 0xed, 0xff, 0xff, 0xff,             /* call fib */
		0x48, 0x89, 0xc5,                         /* mov rbp, rax */
		0x8d, 0x7b, 0xfe,                         /* lea edi, [rbx - 2] */
		0xe8, 0xe2, 0xff, 0xff, 0xff,             /* call fib */
		0x48, 0x01, 0xe8,                         /* add rax, rbp */
		0x5d,                                     /* out: pop rbp */
		0x5b,                                     /* pop rbx */
		0xc3,                                     /* ret */
	};

	put(f, CODE + 0x700, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		uint64_t before = f->cpu.jit_insns;

		f->cpu.gpr[X86_RBX] = 0x1111;
		f->cpu.gpr[X86_RBP] = 0x2222;
		run_to_hlt(f, CODE + 0x700);
		assert_int_equal(f->cpu.gpr[X86_RAX], 144);
		assert_int_equal(f->cpu.gpr[X86_RSP], STACK);
		assert_int_equal(f->cpu.gpr[X86_RBX], 0x1111);
		assert_int_equal(f->cpu.gpr[X86_RBP], 0x2222);
		/* 465 calls of 7 to 15 instructions: most of them translated */
		assert_true(f->cpu.jit_insns - before > 3000);
	}
}

/* The guest's flags survive the TLB probes of a store and a load between
 * the CMP that set them and the Jcc that reads them, and leave in
 * cpu->jit_flags after an ADD and a store. */
static void flags_across_accesses(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x39, 0xd8,                         /* cmp rax, rbx */
		0x48, 0x89, 0x0e,                         /* mov [rsi], rcx */
		0x48, 0x8b, 0x16,                         /* mov rdx, [rsi] */
		0x74, 0x0d,                               /* jz eq */
		0xbf, 0x01, 0x00, 0x00, 0x00,             /* mov edi, 1 */
		0x48, 0x01, 0xc9,                         /* add rcx, rcx */
		0x48, 0x89, 0x56, 0x08,                   /* mov [rsi + 8], rdx */
		0xf4,                                     /* hlt */
		0xbf, 0x02, 0x00, 0x00, 0x00,             /* eq: mov edi, 2 */
		0xf4,
	};

	put(f, CODE + 0x800, code, sizeof(code));
	for (unsigned round = 0; round < 4; round++) {
		f->cpu.gpr[X86_RAX] = 5;
		f->cpu.gpr[X86_RBX] = round & 1 ? 5 : 6;
		f->cpu.gpr[X86_RCX] = 0x8000000000000001ULL;
		f->cpu.gpr[X86_RSI] = DATA + 0x400;
		run_to_hlt(f, CODE + 0x800);
		assert_int_equal(f->cpu.gpr[X86_RDX], 0x8000000000000001ULL);
		if (round & 1) {
			assert_int_equal(f->cpu.gpr[X86_RDI], 2);
			assert_int_equal(flags(f), FL_ZF | FL_PF);
		} else {
			assert_int_equal(f->cpu.gpr[X86_RDI], 1);
			assert_int_equal(f->cpu.gpr[X86_RCX], 2);
			assert_int_equal(*(uint64_t *)gpa(f, DATA + 0x408, 8), 0x8000000000000001ULL);
			assert_int_equal(flags(f), FL_CF | FL_OF);
		}
	}
}

/* A load that faults inside a translated prefix: the instructions before
 * it are done, it and those after are not, RIP is at it, and the #PF
 * carries its address. */
static void fault_in_translated_code(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb8, 0x01, 0x00, 0x00, 0x00,             /* mov eax, 1 */
		0xbb, 0x02, 0x00, 0x00, 0x00,             /* mov ebx, 2 */
		0x83, 0xc1, 0x03,                         /* add ecx, 3 */
		0x48, 0x8b, 0x16,                         /* mov rdx, [rsi] */
		0xb8, 0x04, 0x00, 0x00, 0x00,             /* mov eax, 4 */
		0xf4,
	};
	unsigned ran;

	put(f, CODE + 0x900, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		f->cpu.rip = CODE + 0x900;
		f->cpu.gpr[X86_RCX] = 0;
		f->cpu.gpr[X86_RDX] = 0x77;
		f->cpu.gpr[X86_RSI] = round ? UNMAPPED : DATA; /* the first warms the TLB */
		f->cpu.exc = (struct emu_exception){ 0 };
		assert_int_equal(emu_run(&f->cpu, 100, &ran), round ? EMU_FAULT : EMU_HALT);
		if (!round)
			continue;
		assert_int_equal(f->cpu.rip, CODE + 0x900 + 13);
		assert_int_equal(f->cpu.gpr[X86_RAX], 1);
		assert_int_equal(f->cpu.gpr[X86_RCX], 3);
		assert_int_equal(f->cpu.gpr[X86_RDX], 0x77);
		assert_int_equal(f->cpu.exc.vector, EXC_PF);
		assert_int_equal(f->cpu.exc.cr2, UNMAPPED);
	}
}

/* A translated store into its own block (the next instruction's
 * immediate): the interpreter does it and the new code runs. */
static void store_into_own_block(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb9, 0x01, 0x00, 0x00, 0x00,             /* mov ecx, 1 */
		0xb8, 0x02, 0x00, 0x00, 0x00,             /* mov eax, 2 */
		0x01, 0xc8,                               /* add eax, ecx */
		0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x07, /* mov byte [rip + 1], 7 */
		0xba, 0x05, 0x00, 0x00, 0x00,             /* mov edx, 5 (becomes 7) */
		0xf4,
	};

	for (unsigned round = 0; round < 3; round++) {
		put(f, CODE + 0xa00, code, sizeof(code));
		run_to_hlt(f, CODE + 0xa00);
		assert_int_equal(f->cpu.gpr[X86_RAX], 3);
		assert_int_equal(f->cpu.gpr[X86_RDX], 7);
	}
}

/* Instructions the emitter does not take, between ones it does, run by
 * the interpreter's handlers from the translated code: flags handed over
 * both ways (ADC after ADD, SBB after a store), a Jcc on the interpreter's
 * flags taken and not (leaving the code after it when taken). */
static void helpers_between_translated(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb8, 0x0a, 0x00, 0x00, 0x00,             /* mov eax, 10 */
		0x83, 0xc0, 0x05,                         /* add eax, 5 */
		0x11, 0xc9,                               /* adc ecx, ecx (helper) */
		0x0f, 0xca,                               /* bswap edx (helper) */
		0x01, 0xc8,                               /* add eax, ecx */
		0x89, 0x06,                               /* mov [rsi], eax */
		0x19, 0xdb,                               /* sbb ebx, ebx (helper) */
		0x72, 0x06,                               /* jc +6 (helper: lazy flags) */
		0xbf, 0x01, 0x00, 0x00, 0x00,             /* mov edi, 1 */
		0xf4,                                     /* hlt */
		0xbf, 0x02, 0x00, 0x00, 0x00,             /* mov edi, 2 */
		0xf4,
	};

	put(f, CODE + 0xb00, code, sizeof(code));
	for (unsigned round = 0; round < 6; round++) {
		bool carry = round & 1;
		uint32_t c = carry ? 0x7ffffffa : 0x80000001, adc = c + c, sum = 15 + adc;
		uint64_t before = f->cpu.jit_insns;

		f->cpu.gpr[X86_RCX] = c;
		f->cpu.gpr[X86_RDX] = 0x11223344;
		f->cpu.gpr[X86_RBX] = 0x5555;
		f->cpu.gpr[X86_RSI] = DATA + 0x500;
		run_to_hlt(f, CODE + 0xb00);
		assert_int_equal(f->cpu.gpr[X86_RCX], adc);
		assert_int_equal(f->cpu.gpr[X86_RDX], 0x44332211);
		assert_int_equal(f->cpu.gpr[X86_RAX], sum);
		assert_int_equal(*(uint32_t *)gpa(f, DATA + 0x500, 4), sum);
		assert_int_equal(f->cpu.gpr[X86_RBX], carry ? 0xffffffff : 0);
		assert_int_equal(f->cpu.gpr[X86_RDI], carry ? 2 : 1);
		if (round >= 2) /* the eight up to the JC ran from translated code */
			assert_true(f->cpu.jit_insns - before >= 8);
	}
}

/* A helper that faults (DIV by zero): what came before it is done, RIP
 * is at it, nothing after it ran; without the fault the code goes on. */
static void helper_fault(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb8, 0x64, 0x00, 0x00, 0x00,             /* mov eax, 100 */
		0x31, 0xd2,                               /* xor edx, edx */
		0x83, 0xc1, 0x07,                         /* add ecx, 7 */
		0xf7, 0xf3,                               /* div ebx (helper) */
		0xbe, 0x09, 0x00, 0x00, 0x00,             /* mov esi, 9 */
		0xf4,
	};
	unsigned ran;

	put(f, CODE + 0xc00, code, sizeof(code));
	for (unsigned round = 0; round < 4; round++) {
		f->cpu.rip = CODE + 0xc00;
		f->cpu.gpr[X86_RBX] = round & 1 ? 0 : 5;
		f->cpu.gpr[X86_RCX] = 1;
		f->cpu.gpr[X86_RSI] = 0x33;
		if (!(round & 1)) {
			assert_int_equal(emu_run(&f->cpu, 100, &ran), EMU_HALT);
			assert_int_equal(f->cpu.gpr[X86_RAX], 20);
			assert_int_equal(f->cpu.gpr[X86_RSI], 9);
			continue;
		}
		assert_int_equal(emu_run(&f->cpu, 100, &ran), EMU_FAULT);
		assert_int_equal(f->cpu.exc.vector, EXC_DE);
		assert_int_equal(f->cpu.rip, CODE + 0xc00 + 10);
		assert_int_equal(f->cpu.gpr[X86_RAX], 100);
		assert_int_equal(f->cpu.gpr[X86_RCX], 8);
		assert_int_equal(f->cpu.gpr[X86_RSI], 0x33);
		assert_int_equal(ran, 4);
	}
}

/* A helper that writes the block's own code (XCHG with memory): the
 * translated code stops after it and the new code runs. */
static void helper_writes_code(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0xb9, 0x01, 0x00, 0x00, 0x00,             /* mov ecx, 1 */
		0xb0, 0x07,                               /* mov al, 7 */
		0x83, 0xc1, 0x02,                         /* add ecx, 2 */
		0x86, 0x05, 0x01, 0x00, 0x00, 0x00,       /* xchg [rip + 1], al (helper) */
		0xba, 0x05, 0x00, 0x00, 0x00,             /* mov edx, 5 (becomes 7) */
		0xf4,
	};

	for (unsigned round = 0; round < 3; round++) {
		put(f, CODE + 0xd00, code, sizeof(code));
		f->cpu.gpr[X86_RAX] = 0;
		run_to_hlt(f, CODE + 0xd00);
		assert_int_equal(f->cpu.gpr[X86_RCX], 3);
		assert_int_equal(f->cpu.gpr[X86_RAX], 5);
		assert_int_equal(f->cpu.gpr[X86_RDX], 7);
	}
}

/* A block whose Jcc goes back to its own start loops inside the
 * translated code: as many passes as the budget has room for, none past
 * a stop request, and the count of instructions run is exact. */
/* Runs from rip in emu_run() calls of budget instructions each until
 * HLT: none runs more than its budget, want run in all. */
static void run_in_budgets(struct fx *f, uint64_t rip, unsigned budget, unsigned want)
{
	unsigned ran, total = 0;
	int st;

	f->cpu.rip = rip;
	do {
		st = emu_run(&f->cpu, budget, &ran);
		assert_true(ran <= budget);
		total += ran;
		assert_true(total <= want);
	} while (st == EMU_OK);
	assert_int_equal(st, EMU_HALT);
	assert_int_equal(total, want);
}

/* One emu_run() from rip with a stop request already made: what it ran. */
static unsigned run_stopped(struct fx *f, uint64_t rip)
{
	atomic_bool stop = true;
	unsigned ran;

	f->cpu.rip = rip;
	f->cpu.stop = &stop;
	assert_int_equal(emu_run(&f->cpu, 100000, &ran), EMU_OK);
	f->cpu.stop = NULL;
	return ran;
}

static void loop_in_translated_code(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x01, 0xc8,                         /* L: add rax, rcx */
		0x48, 0x89, 0x06,                         /* mov [rsi], rax */
		0xff, 0xc9,                               /* dec ecx */
		0x75, 0xf6,                               /* jnz L */
		0xf4,
	};
	unsigned ran;

	put(f, CODE + 0xe00, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		uint64_t before = f->cpu.jit_insns;

		f->cpu.rip = CODE + 0xe00;
		f->cpu.gpr[X86_RAX] = 0;
		f->cpu.gpr[X86_RCX] = 1000;
		f->cpu.gpr[X86_RSI] = DATA + 0x600;
		assert_int_equal(emu_run(&f->cpu, 100000, &ran), EMU_HALT);
		assert_int_equal(ran, 4 * 1000 + 1);
		assert_int_equal(f->cpu.gpr[X86_RAX], 500500);
		assert_int_equal(*(uint64_t *)gpa(f, DATA + 0x600, 8), 500500);
		if (round)
			assert_true(f->cpu.jit_insns - before >= 3990);
	}
	/* a small budget: never more than it, the same result in the end */
	f->cpu.gpr[X86_RAX] = 0;
	f->cpu.gpr[X86_RCX] = 1000;
	run_in_budgets(f, CODE + 0xe00, 10, 4001);
	assert_int_equal(f->cpu.gpr[X86_RAX], 500500);
	/* a stop request: one pass, then out */
	f->cpu.gpr[X86_RCX] = 1000;
	assert_int_equal(run_stopped(f, CODE + 0xe00), 4);
	assert_int_equal(f->cpu.gpr[X86_RCX], 999);
	assert_int_equal(f->cpu.rip, CODE + 0xe00);
}

/* One emu_run() from rip of a loop that sums RCX = 1000..1 into RAX in
 * per instructions an iteration, two of them jumps from one block's code
 * into another's (links, or the dispatcher): the count and the sum
 * exact, and once the code is warm (round > 0) all but the first few
 * jumps made without returning to emu_run. */
static void run_sum_loop(struct fx *f, uint64_t rip, unsigned per, unsigned round)
{
	uint64_t hops = f->cpu.jit_hops, before = f->cpu.jit_insns;
	unsigned ran;

	f->cpu.rip = rip;
	f->cpu.gpr[X86_RAX] = 0;
	f->cpu.gpr[X86_RCX] = 1000;
	assert_int_equal(emu_run(&f->cpu, 100000, &ran), EMU_HALT);
	assert_int_equal(ran, per * 1000 + 1);
	assert_int_equal(f->cpu.gpr[X86_RAX], 500500);
	if (round) {
		assert_true(f->cpu.jit_hops - hops >= 2 * 1000 - 4);
		assert_true(f->cpu.jit_insns - before >= per * 1000 - 2 * per);
	}
}

/* Blocks linked to each other (emu_jit_link): A ends in a JMP to B, B's
 * taken JNZ goes back to A; after the first pass each goes on into the
 * other's code without returning. The budget, a stop request and the
 * instruction counts stay exact. */
static void linked_blocks(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x01, 0xc8,                         /* A: add rax, rcx */
		0xeb, 0x02,                               /* jmp B */
		0x0f, 0x0b,                               /* ud2 (never run) */
		0x83, 0xe9, 0x01,                         /* B: sub ecx, 1 */
		0x75, 0xf4,                               /* jnz A */
		0xf4,
	};

	put(f, CODE + 0xc00, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) { /* linked: A to B, B to A */
		run_sum_loop(f, CODE + 0xc00, 4, round);
		assert_int_equal(f->cpu.gpr[X86_RCX], 0);
	}
	/* small budgets: never more than each, the same in the end */
	f->cpu.gpr[X86_RAX] = 0;
	f->cpu.gpr[X86_RCX] = 1000;
	run_in_budgets(f, CODE + 0xc00, 37, 4001);
	assert_int_equal(f->cpu.gpr[X86_RAX], 500500);
	/* a stop request: A, then out before B */
	f->cpu.gpr[X86_RCX] = 1000;
	assert_int_equal(run_stopped(f, CODE + 0xc00), 2);
	assert_int_equal(f->cpu.rip, CODE + 0xc07);
}

/* A linked block whose code changes: written by the loop itself while
 * the links are in use (A's store at c == 500), and by a device (or
 * another vCPU) between runs while A's code stays linked to B's old
 * translation. The new code runs, never the old translation. */
static void linked_block_rewritten(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x01, 0xc8,                         /* A: add rax, rcx */
		0x81, 0xf9, 0xf4, 0x01, 0x00, 0x00,       /* cmp ecx, 500 */
		0x75, 0x0b,                               /* jne B */
		0xc6, 0x05, 0x06, 0x00, 0x00, 0x00, 0x05, /* mov byte [rip + 6], 5: B's imm8 */
		0xeb, 0x02,                               /* jmp B */
		0x0f, 0x0b,                               /* ud2 (never run) */
		0x83, 0xe9, 0x01,                         /* B: sub ecx, 1 */
		0x75, 0xe5,                               /* jnz A */
		0xf4,
	};
	uint64_t want[2] = { 0, 0 };

	for (unsigned i = 0; i < 2; i++) { /* the loop, in C, with B's first step 1 or 2 */
		uint32_t c = 1000, step = i + 1;

		do {
			want[i] += c;
			if (c == 500)
				step = 5;
			c -= step;
		} while (c);
	}
	for (unsigned round = 0; round < 4; round++) {
		uint64_t hops = f->cpu.jit_hops;

		if (round < 2)
			put(f, CODE + 0xd00, code, sizeof(code));
		else /* B's step 2, A as it is (linked to B's last code) */
			put(f, CODE + 0xd18, (const uint8_t[]){ 2 }, 1);
		f->cpu.gpr[X86_RAX] = 0;
		f->cpu.gpr[X86_RCX] = 1000;
		run_to_hlt(f, CODE + 0xd00);
		assert_int_equal(f->cpu.gpr[X86_RAX], want[round >= 2]);
		assert_int_equal(f->cpu.gpr[X86_RCX], 0);
		assert_true(f->cpu.jit_hops - hops >= 400); /* linked, most of the way */
	}
}

/* A loop whose pass reads the flags the previous pass left (SETC, a
 * helper, first): the loop back hands them over. A pass that writes the
 * flags before anything reads them skips that (loop_in_translated_code). */
static void loop_reads_flags_of_last_pass(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x0f, 0x92, 0xc2,                         /* L: setc dl */
		0x48, 0x01, 0xd0,                         /* add rax, rdx */
		0xba, 0x00, 0x00, 0x00, 0x00,             /* mov edx, 0 */
		0x81, 0xf9, 0xf4, 0x01, 0x00, 0x00,       /* cmp ecx, 500: CF = ecx < 500 */
		0xff, 0xc9,                               /* dec ecx (CF kept) */
		0x75, 0xeb,                               /* jnz L */
		0xf4,
	};

	put(f, CODE + 0xb00, code, sizeof(code));
	for (unsigned round = 0; round < 2; round++) {
		uint64_t before = f->cpu.jit_insns;

		emu_flags_set(&f->cpu, 0x2); /* CF clear for the first pass */
		f->cpu.gpr[X86_RAX] = 0;
		f->cpu.gpr[X86_RCX] = 1000;
		f->cpu.gpr[X86_RDX] = 0;
		run_to_hlt(f, CODE + 0xb00);
		assert_int_equal(f->cpu.gpr[X86_RAX], 498); /* the passes after ecx = 499 .. 2 */
		assert_int_equal(f->cpu.gpr[X86_RCX], 0);
		if (round)
			assert_true(f->cpu.jit_insns - before >= 5000);
	}
}

/* Runs code from rip to HLT one instruction per emu_run() (so the
 * interpreter runs it: a translated prefix needs a budget for all of
 * it), then twice again whole (translated), from the same registers,
 * flags and data[0..len) at DATA (written there before every run): the
 * registers, flags and data must agree, with at least min_jit
 * instructions translated in each of the two. */
static void same_as_interpreter_data(struct fx *f, uint64_t rip, const uint64_t regs[16], uint64_t fl,
				     const uint8_t *data, size_t len, unsigned min_jit)
{
	uint64_t want[16], want_fl, before;
	uint8_t want_data[256];
	unsigned ran;
	int st;

	assert_true(len <= sizeof(want_data));
	if (len)
		memcpy(gpa(f, DATA, len), data, len);
	memcpy(f->cpu.gpr, regs, sizeof(f->cpu.gpr));
	emu_flags_set(&f->cpu, fl);
	f->cpu.rip = rip;
	while ((st = emu_run(&f->cpu, 1, &ran)) == EMU_OK)
		;
	assert_int_equal(st, EMU_HALT);
	memcpy(want, f->cpu.gpr, sizeof(want));
	if (len)
		memcpy(want_data, gpa(f, DATA, len), len);
	want_fl = flags(f);
	for (unsigned round = 0; round < 2; round++) {
		if (len)
			memcpy(gpa(f, DATA, len), data, len);
		memcpy(f->cpu.gpr, regs, sizeof(f->cpu.gpr));
		emu_flags_set(&f->cpu, fl);
		f->cpu.rip = rip;
		before = f->cpu.jit_insns;
		assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_HALT);
		for (unsigned r = 0; r < 16; r++)
			assert_int_equal(f->cpu.gpr[r], want[r]);
		assert_int_equal(flags(f), want_fl);
		if (len)
			assert_memory_equal(gpa(f, DATA, len), want_data, len);
		assert_true(f->cpu.jit_insns - before >= min_jit);
	}
}

static void same_as_interpreter(struct fx *f, uint64_t rip, const uint64_t regs[16], uint64_t fl)
{
	same_as_interpreter_data(f, rip, regs, fl, NULL, 0, 20);
}

/* What reads the flags, translated on the host's: CMOVcc, SETcc and Jcc
 * (first in the block, where the flags are the CPU's; after a helper),
 * ADC/SBB, shifts by CL (a count of 0 keeps the flags), INC/DEC on memory
 * (CF kept), BTS/BTR/BTC with an imm8 (ZF kept); MOVZX/MOVSX/MOVSXD,
 * CDQE and friends, IMUL with an immediate, MUL, XCHG and XADD, the
 * LOCKed read-modify-writes, MOV r8, m8 and TEST r8, imm8. Each result
 * feeds a later one; the registers, flags and data must be the
 * interpreter's, with the flags coming in set and clear. */
static void flag_readers_and_extensions(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x4d, 0x0f, 0x44, 0xc1,                   /* cmove r8,r9 */
		0x0f, 0x92, 0xc1,                         /* setb cl */
		0x74, 0x03,                               /* je +3 */
		0x4d, 0x01, 0xda,                         /* add r10,r11 */
		0x0f, 0x45, 0xf7,                         /* cmovne esi,edi */
		0x0f, 0x92, 0xc4,                         /* setb ah */
		0x4c, 0x0f, 0x4c, 0x23,                   /* cmovl r12,QWORD PTR [rbx] */
		0x0f, 0x4f, 0x6b, 0x08,                   /* cmovg ebp,DWORD PTR [rbx+0x8] */
		0x0f, 0x94, 0x43, 0x10,                   /* sete BYTE PTR [rbx+0x10] */
		0x0f, 0x95, 0x43, 0x11,                   /* setne BYTE PTR [rbx+0x11] */
		0x0f, 0xb6, 0xc4,                         /* movzx eax,ah */
		0x4d, 0x0f, 0xb6, 0xe8,                   /* movzx r13,r8b */
		0x45, 0x0f, 0xb7, 0xf1,                   /* movzx r14d,r9w */
		0x4c, 0x0f, 0xbe, 0xf9,                   /* movsx r15,cl */
		0x41, 0x0f, 0xbf, 0xd2,                   /* movsx edx,r10w */
		0x48, 0x0f, 0xbe, 0x7b, 0x03,             /* movsx rdi,BYTE PTR [rbx+0x3] */
		0x0f, 0xbf, 0x73, 0x06,                   /* movsx esi,WORD PTR [rbx+0x6] */
		0x4d, 0x63, 0xdc,                         /* movsxd r11,r12d */
		0x4c, 0x63, 0x4b, 0x04,                   /* movsxd r9,DWORD PTR [rbx+0x4] */
		0x44, 0x0f, 0xb6, 0x53, 0x11,             /* movzx r10d,BYTE PTR [rbx+0x11] */
		0x8a, 0x53, 0x10,                         /* mov dl,BYTE PTR [rbx+0x10] */
		0x8a, 0x73, 0x02,                         /* mov dh,BYTE PTR [rbx+0x2] */
		0x44, 0x8a, 0x43, 0x05,                   /* mov r8b,BYTE PTR [rbx+0x5] */
		0x41, 0xf6, 0xc0, 0x81,                   /* test r8b,0x81 */
		0x41, 0x0f, 0x95, 0xc1,                   /* setne r9b */
		0xf6, 0xc6, 0x20,                         /* test dh,0x20 */
		0x41, 0x0f, 0x94, 0xc2,                   /* sete r10b */
		0x48, 0x98,                               /* cdqe */
		0x48, 0x99,                               /* cqo */
		0x49, 0x89, 0xd4,                         /* mov r12,rdx */
		0x98,                                     /* cwde */
		0x99,                                     /* cdq */
		0x49, 0x01, 0xd4,                         /* add r12,rdx */
		0x44, 0x89, 0xe9,                         /* mov ecx,r13d */
		0x49, 0xd3, 0xe6,                         /* shl r14,cl */
		0x41, 0xd3, 0xef,                         /* shr r15d,cl */
		0x49, 0xd3, 0xfb,                         /* sar r11,cl */
		0x49, 0xd3, 0xc2,                         /* rol r10,cl */
		0xd3, 0xcf,                               /* ror edi,cl */
		0x31, 0xc9,                               /* xor ecx,ecx */
		0x49, 0xd3, 0xe5,                         /* shl r13,cl */
		0x0f, 0x90, 0xc0,                         /* seto al */
		0x4d, 0x11, 0xfe,                         /* adc r14,r15 */
		0x81, 0xdf, 0x34, 0x12, 0x00, 0x00,       /* sbb edi,0x1234 */
		0x49, 0x83, 0xd1, 0x07,                   /* adc r9,0x7 */
		0x49, 0x19, 0xf2,                         /* sbb r10,rsi */
		0x4d, 0x69, 0xdc, 0x45, 0x23, 0x01, 0x00, /* imul r11,r12,0x12345 */
		0x6b, 0xf7, 0xfd,                         /* imul esi,edi,0xfffffffd */
		0x48, 0x6b, 0x2b, 0x77,                   /* imul rbp,QWORD PTR [rbx],0x77 */
		0x44, 0x6b, 0x6b, 0x08, 0xf7,             /* imul r13d,DWORD PTR [rbx+0x8],0xfffffff7 */
		0x48, 0x8b, 0x43, 0x08,                   /* mov rax,QWORD PTR [rbx+0x8] */
		0x49, 0xf7, 0xe1,                         /* mul r9 */
		0x49, 0x89, 0xc7,                         /* mov r15,rax */
		0x48, 0x89, 0xd5,                         /* mov rbp,rdx */
		0xf7, 0x63, 0x08,                         /* mul DWORD PTR [rbx+0x8] */
		0x49, 0x89, 0xc4,                         /* mov r12,rax */
		0x49, 0x01, 0xd4,                         /* add r12,rdx */
		0xf9,                                     /* stc */
		0x48, 0xff, 0x43, 0x18,                   /* inc QWORD PTR [rbx+0x18] */
		0x0f, 0x92, 0xc1,                         /* setb cl */
		0xff, 0x4b, 0x1c,                         /* dec DWORD PTR [rbx+0x1c] */
		0x0f, 0x96, 0xc5,                         /* setbe ch */
		0xfe, 0x43, 0x11,                         /* inc BYTE PTR [rbx+0x11] */
		0xf0, 0x48, 0xff, 0x43, 0x18,             /* lock inc QWORD PTR [rbx+0x18] */
		0xf0, 0x48, 0xff, 0x4b, 0x18,             /* lock dec QWORD PTR [rbx+0x18] */
		0xf0, 0x4c, 0x01, 0x7b, 0x20,             /* lock add QWORD PTR [rbx+0x20],r15 */
		0xf0, 0x81, 0x4b, 0x24, 0x00, 0x00, 0x01, /* lock or DWORD PTR [rbx+0x24],0x10000 */
		0x00,                                     /*  */
		0xf0, 0x80, 0x6b, 0x28, 0x03,             /* lock sub BYTE PTR [rbx+0x28],0x3 */
		0xf0, 0x4c, 0x0f, 0xc1, 0x73, 0x20,       /* lock xadd QWORD PTR [rbx+0x20],r14 */
		0x0f, 0xc1, 0x73, 0x24,                   /* xadd DWORD PTR [rbx+0x24],esi */
		0x44, 0x87, 0x43, 0x2c,                   /* xchg DWORD PTR [rbx+0x2c],r8d */
		0x4c, 0x87, 0x4b, 0x30,                   /* xchg QWORD PTR [rbx+0x30],r9 */
		0x48, 0x0f, 0xba, 0x6b, 0x30, 0x3f,       /* bts QWORD PTR [rbx+0x30],0x3f */
		0x0f, 0x92, 0xc2,                         /* setb dl */
		0xf0, 0x0f, 0xba, 0x73, 0x24, 0x10,       /* lock btr DWORD PTR [rbx+0x24],0x10 */
		0x0f, 0x92, 0xc0,                         /* setb al */
		0x48, 0x0f, 0xba, 0x63, 0x20, 0x05,       /* bt QWORD PTR [rbx+0x20],0x5 */
		0xf0, 0x0f, 0xba, 0x7b, 0x2c, 0x00,       /* lock btc DWORD PTR [rbx+0x2c],0x0 */
		0x4d, 0x11, 0xf7,                         /* adc r15,r14 */
		0x9f,                                     /* lahf */
		0x73, 0x03,                               /* jnc +3 */
		0x4d, 0x01, 0xfb,                         /* add r11,r15 */
		0x4d, 0x19, 0xe5,                         /* sbb r13,r12 */
		0xf4,                                     /* hlt */
	};
	uint8_t data[64];
	uint64_t regs[16];

	put(f, CODE + 0xb00, code, sizeof(code));
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 37 + 0x85);
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RBX] = DATA;
	same_as_interpreter_data(f, CODE + 0xb00, regs, 0x2, data, sizeof(data), 60);
	same_as_interpreter_data(f, CODE + 0xb00, regs, 0x2 | FL_CF | FL_ZF | FL_OF, data, sizeof(data), 60);
	same_as_interpreter_data(f, CODE + 0xb00, regs, 0x2 | FL_SF | FL_PF, data, sizeof(data), 60);
	regs[X86_R13] = 0x100; /* shifts by CL = 0: the flags kept */
	same_as_interpreter_data(f, CODE + 0xb00, regs, 0x2 | FL_CF | FL_SF, data, sizeof(data), 60);
}

/* The jump cache does not read the block it names: a translated block
 * decoded again in its slot must make the cache's entries stale, or a
 * RET would go on into the old code with the new block taken for its own
 * (the interpreter's tail after the old code then runs the new block's
 * instructions). Here a return site's block is evicted by three others
 * of its set (two ways: each of the last two takes one), all in one
 * emu_run, so one session. */
static void return_site_evicted(void **state)
{
	struct fx *f = *state;
	uint64_t at[4], fn = CODE + 0x500, evict = CODE + 0x540, done = CODE + 0x580, clear = CODE + 0x5c0, m;
	unsigned n = 0, ran;
	uint8_t buf[64];

	for (uint64_t a = 0x200040; a < 0x1000000 && n < 4; a += 64) {
		unsigned s = emu_icache_slot(a, MODE_LONG64);

		n = 0;
		for (uint64_t b = a; b < 0x1000000 && n < 4; b += 16)
			if (emu_icache_slot(b, MODE_LONG64) == s && (!n || b >= at[n - 1] + 64))
				at[n++] = b;
	}
	assert_int_equal(n, 4);
	m = at[0] - 5;
#define REL32(p, from, to) do { int32_t r_ = (int32_t)((int64_t)(to) - (int64_t)(from)); memcpy((p), &r_, 4); } while (0)
	buf[0] = 0xe8;                            /* M: call F, which returns to the site */
	REL32(buf + 1, m + 5, fn);
	put(f, m, buf, 5);
	buf[0] = 0xc3;                            /* F: ret */
	put(f, fn, buf, 1);
	/* the site: a translated prefix of two, then PUSHFQ, POPFQ (helpers
	 * at the end, left to the interpreter: the tail) */
	static const uint8_t site[] = {
		0x48, 0x83, 0xc1, 0x01,           /* add rcx, 1 */
		0x48, 0x83, 0xc7, 0x01,           /* add rdi, 1 */
		0x9c, 0x9d,                       /* pushfq; popfq: the block ends */
		0x48, 0x83, 0xc6, 0x01,           /* add rsi, 1 */
		0x48, 0x83, 0xfe, 0x02,           /* cmp rsi, 2 */
		0x0f, 0x84, 0, 0, 0, 0,           /* je evict */
		0x48, 0x83, 0xfe, 0x03,           /* cmp rsi, 3 */
		0x0f, 0x84, 0, 0, 0, 0,           /* je done */
		0xe9, 0, 0, 0, 0,                 /* jmp M */
	};
	memcpy(buf, site, sizeof(site));
	REL32(buf + 20, at[0] + 24, evict);
	REL32(buf + 30, at[0] + 34, done);
	REL32(buf + 35, at[0] + 39, m);
	put(f, at[0], buf, sizeof(site));
	buf[0] = 0xe9;                            /* evict: jmp the first other */
	REL32(buf + 1, evict + 5, at[1]);
	put(f, evict, buf, 5);
	buf[0] = 0xf4;                            /* done: hlt */
	put(f, done, buf, 1);
	buf[0] = 0x45;                            /* clear: xor r10d, r10d; jmp M */
	buf[1] = 0x31;
	buf[2] = 0xd2;
	buf[3] = 0xe9;
	REL32(buf + 4, clear + 8, m);
	put(f, clear, buf, 8);
	/* the others, each once: the third instruction sets R10, which is
	 * cleared before the site runs the third time */
	for (unsigned i = 1; i < 4; i++) {
		static const uint8_t other[] = {
			0xb8, 0, 0, 0, 0,         /* mov eax, i */
			0x41, 0xb9, 0, 0, 0, 0,   /* mov r9d, i */
			0x41, 0xba, 0x55, 0x55, 0, 0, /* mov r10d, 0x5555 */
			0xe9, 0, 0, 0, 0,         /* jmp the next, or clear */
		};
		memcpy(buf, other, sizeof(other));
		buf[1] = buf[7] = (uint8_t)i;
		REL32(buf + 18, at[i] + 22, i < 3 ? at[i + 1] : clear);
		put(f, at[i], buf, sizeof(other));
	}
#undef REL32
	memset(f->cpu.gpr, 0, sizeof(f->cpu.gpr));
	f->cpu.gpr[X86_RSP] = STACK;
	f->cpu.rip = m;
	assert_int_equal(emu_run(&f->cpu, 10000, &ran), EMU_HALT);
	assert_int_equal(f->cpu.rip, done + 1);
	assert_int_equal(f->cpu.gpr[X86_RCX], 3);
	assert_int_equal(f->cpu.gpr[X86_RDI], 3);
	assert_int_equal(f->cpu.gpr[X86_RSI], 3);
	assert_int_equal(f->cpu.gpr[X86_R9], 3);  /* the others ran */
	assert_int_equal(f->cpu.gpr[X86_R10], 0); /* and not at the site */
}

/* Supervisor code on a user page (U on every level): translated code
 * leaves those accesses to the interpreter, and the results are the
 * interpreter's while SMAP is off, or on with RFLAGS.AC set; with SMAP on
 * and AC clear the first access raises the #PF. */
#define USERPAGE 0x50000ULL
#define PTE_U 4ULL

static void supervisor_on_user_pages(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x4d, 0x01, 0xc1,                         /* add r9, r8 */
		0x48, 0x8b, 0x03,                         /* mov rax, [rbx] */
		0x48, 0x01, 0x43, 0x08,                   /* add [rbx+8], rax */
		0x48, 0x8b, 0x4b, 0x10,                   /* mov rcx, [rbx+16] */
		0x4c, 0x01, 0xca,                         /* add rdx, r9 */
		0x48, 0x89, 0x53, 0x18,                   /* mov [rbx+24], rdx */
		0xf4,                                     /* hlt */
	};
	uint8_t data[32], want_data[32];
	uint64_t regs[16], want[16];
	unsigned ran;
	int st;

	/* U on every level of the path (the upper ones let the PTEs decide) */
	wr64(f, PML4, (PML4 + 0x1000) | PTE_P | PTE_W | PTE_U);
	wr64(f, PML4 + 0x1000, (PML4 + 0x2000) | PTE_P | PTE_W | PTE_U);
	wr64(f, PML4 + 0x2000, PT | PTE_P | PTE_W | PTE_U);
	wr64(f, PT + 8 * (USERPAGE >> 12), USERPAGE | PTE_P | PTE_W | PTE_U);
	emu_tlb_flush(&f->cpu, true);
	put(f, CODE + 0x600, code, sizeof(code));
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 41 + 7);
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RBX] = USERPAGE;
	for (unsigned round = 0; round < 5; round++) {
		memcpy(gpa(f, USERPAGE, sizeof(data)), data, sizeof(data));
		memcpy(f->cpu.gpr, regs, sizeof(f->cpu.gpr));
		emu_flags_set(&f->cpu, 0x2);
		f->cpu.rip = CODE + 0x600;
		if (round == 0) { /* the interpreter */
			while ((st = emu_run(&f->cpu, 1, &ran)) == EMU_OK)
				;
			assert_int_equal(st, EMU_HALT);
			memcpy(want, f->cpu.gpr, sizeof(want));
			memcpy(want_data, gpa(f, USERPAGE, sizeof(data)), sizeof(data));
			continue;
		}
		if (round == 4) { /* SMAP on, AC set: allowed */
			f->cpu.cr4 |= 1ULL << 21;
			emu_flags_set(&f->cpu, 0x2 | FL_AC);
		}
		assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_HALT);
		for (unsigned r = 0; r < 16; r++)
			assert_int_equal(f->cpu.gpr[r], want[r]);
		assert_memory_equal(gpa(f, USERPAGE, sizeof(data)), want_data, sizeof(data));
	}
	/* SMAP on, AC clear: the first access faults, translated or not */
	memcpy(f->cpu.gpr, regs, sizeof(f->cpu.gpr));
	emu_flags_set(&f->cpu, 0x2);
	f->cpu.rip = CODE + 0x600;
	assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_FAULT);
	assert_int_equal(f->cpu.exc.vector, EXC_PF);
	assert_int_equal(f->cpu.rip, CODE + 0x603);
	assert_true(f->cpu.jit_insns > 0);
}

/* Indirect CALL and JMP, through a register and through memory
 * (RIP-relative too), leave translated code as a RET does, through the
 * jump cache: the same registers, stack and flags as the interpreter's. */
static void indirect_calls_and_jumps(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x4d, 0x01, 0xc1,                         /* add r9,r8 */
		0x48, 0x8d, 0x05, 0x4a, 0x00, 0x00, 0x00, /* lea rax,[rip+0x4a] # 54 <f1> */
		0xff, 0xd0,                               /* call rax */
		0x4d, 0x01, 0xc1,                         /* add r9,r8 */
		0x48, 0x8d, 0x0d, 0x45, 0x00, 0x00, 0x00, /* lea rcx,[rip+0x45] # 5b <f2> */
		0x48, 0x89, 0x0b,                         /* mov QWORD PTR [rbx],rcx */
		0xff, 0x13,                               /* call QWORD PTR [rbx] */
		0x4d, 0x01, 0xca,                         /* add r10,r9 */
		0x48, 0x8d, 0x0d, 0x0a, 0x00, 0x00, 0x00, /* lea rcx,[rip+0xa] # 2f <l1> */
		0x48, 0x89, 0x4b, 0x08,                   /* mov QWORD PTR [rbx+0x8],rcx */
		0xff, 0x63, 0x08,                         /* jmp QWORD PTR [rbx+0x8] */
		0x4d, 0x01, 0xd3,                         /* add r11,r10 */
		0x4d, 0x01, 0xdc,                         /* add r12,r11 */
		0x4d, 0x01, 0xe3,                         /* add r11,r12 */
		0x48, 0x8d, 0x15, 0x05, 0x00, 0x00, 0x00, /* lea rdx,[rip+0x5] # 41 <l2> */
		0xff, 0xe2,                               /* jmp rdx */
		0x4d, 0x01, 0xe5,                         /* add r13,r12 */
		0x4d, 0x01, 0xee,                         /* add r14,r13 */
		0x4d, 0x01, 0xf5,                         /* add r13,r14 */
		0xff, 0x15, 0x1b, 0x00, 0x00, 0x00,       /* call QWORD PTR [rip+0x1b] # 68 <slot> */
		0x4c, 0x01, 0xed,                         /* add rbp,r13 */
		0x48, 0x01, 0xef,                         /* add rdi,rbp */
		0xf4,                                     /* hlt */
		0x4d, 0x01, 0xf7,                         /* add r15,r14 */
		0x4d, 0x01, 0xfe,                         /* add r14,r15 */
		0xc3,                                     /* ret */
		0x4c, 0x01, 0xfe,                         /* add rsi,r15 */
		0x49, 0x01, 0xf7,                         /* add r15,rsi */
		0xc3,                                     /* ret */
		0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00,       /* nop WORD PTR [rax+rax*1+0x0] */
		0, 0, 0, 0, 0, 0, 0, 0,                   /* slot: f1 */
	};
	uint64_t regs[16];

	put(f, CODE + 0x700, code, sizeof(code));
	wr64(f, CODE + 0x700 + 0x68, CODE + 0x700 + 0x54); /* the slot: f1 */
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RBX] = DATA;
	regs[X86_RSP] = STACK;
	same_as_interpreter(f, CODE + 0x700, regs, 0x2);
	same_as_interpreter(f, CODE + 0x700, regs, 0x2 | FL_CF);
}

/* CLI no longer ends its block (translated at CPL 0) and leaves IF
 * clear; the block after an STI runs translated too (in the STI's
 * shadow: interrupts are taken outside emu_run), and the shadow is over
 * once it has run. */
static void cli_and_sti_shadow(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x4d, 0x01, 0xc1,                         /* add r9, r8 */
		0xfa,                                     /* cli */
		0x4d, 0x01, 0xca, 0x4d, 0x01, 0xd3,       /* add r10, r9; add r11, r10 */
		0x4d, 0x01, 0xdc, 0x4d, 0x01, 0xe5,       /* add r12, r11; add r13, r12 */
		0x4d, 0x01, 0xee, 0x4d, 0x01, 0xf7,       /* add r14, r13; add r15, r14 */
		0x4c, 0x01, 0xf8, 0x4c, 0x01, 0xfb,       /* add rax, r15; add rbx, r15 */
		0xfb,                                     /* sti: ends the block */
		0x4d, 0x01, 0xc1, 0x4d, 0x01, 0xca,       /* add r9, r8; add r10, r9 */
		0x4d, 0x01, 0xd3, 0x4d, 0x01, 0xdc,       /* add r11, r10; add r12, r11 */
		0x4d, 0x01, 0xe5, 0x4d, 0x01, 0xee,       /* add r13, r12; add r14, r13 */
		0x4d, 0x01, 0xf7, 0x4c, 0x01, 0xf9,       /* add r15, r14; add rcx, r15 */
		0x4c, 0x01, 0xfa, 0x4c, 0x01, 0xfe,       /* add rdx, r15; add rsi, r15 */
		0xf4,                                     /* hlt */
	};
	uint64_t regs[16];

	put(f, CODE + 0x900, code, sizeof(code));
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	same_as_interpreter(f, CODE + 0x900, regs, 0x2 | FL_IF);
	assert_true(emu_flags_get(&f->cpu) & FL_IF);
	assert_false(f->cpu.interrupt_shadow);
	/* CLI alone, left clear */
	f->cpu.rip = CODE + 0x900;
	emu_flags_set(&f->cpu, 0x2 | FL_IF);
	{
		static const uint8_t stop[] = { 0xf4 };
		unsigned ran;

		put(f, CODE + 0x900 + 28, stop, 1); /* hlt over the sti */
		assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_HALT);
		assert_false(emu_flags_get(&f->cpu) & FL_IF);
	}
}

/* Accesses that cross from one page into the next, both in the TLB:
 * the inline probe never takes them (the next page's entry is never in
 * the set of the first: emu_tlb_set), the interpreter does them whole.
 * Each starts a block of its own (the JMPs), so each meets the probe. */
#define NEXT 0x60000ULL

static void accesses_across_pages(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x8b, 0x03,                         /* mov rax,QWORD PTR [rbx] */
		0x48, 0x8b, 0x8b, 0x00, 0x10, 0x00, 0x00, /* mov rcx,QWORD PTR [rbx+0x1000] */
		0x48, 0x8b, 0x93, 0xfc, 0x0f, 0x00, 0x00, /* mov rdx,QWORD PTR [rbx+0xffc] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x8b, 0xb3, 0xfe, 0x0f, 0x00, 0x00,       /* mov esi,DWORD PTR [rbx+0xffe] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x0f, 0xb7, 0xbb, 0xff, 0x0f, 0x00, 0x00, /* movzx edi,WORD PTR [rbx+0xfff] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x48, 0x89, 0x8b, 0xfa, 0x0f, 0x00, 0x00, /* mov QWORD PTR [rbx+0xffa],rcx */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x01, 0x83, 0xfd, 0x0f, 0x00, 0x00,       /* add DWORD PTR [rbx+0xffd],eax */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x48, 0x8b, 0xab, 0xf8, 0x0f, 0x00, 0x00, /* mov rbp,QWORD PTR [rbx+0xff8] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x4c, 0x8b, 0x83, 0x00, 0x10, 0x00, 0x00, /* mov r8,QWORD PTR [rbx+0x1000] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x4c, 0x03, 0x8b, 0xf9, 0x0f, 0x00, 0x00, /* add r9,QWORD PTR [rbx+0xff9] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0x4c, 0x8b, 0x93, 0xf0, 0x0f, 0x00, 0x00, /* mov r10,QWORD PTR [rbx+0xff0] */
		0xeb, 0x00,                               /* jmp +0: a block of its own next */
		0xf4,                                     /* hlt */
	};
	uint64_t regs[16], want[16];
	uint8_t want_data[64], data[64];
	unsigned ran;
	int st;

	for (uint64_t p = 0; p < (1u << 20); p++)
		assert_int_not_equal(emu_tlb_set(p), emu_tlb_set(p + 1));
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 29 + 0x31);
	/* the page after DATA's elsewhere in RAM: what runs on past the end
	 * of DATA's page in the host reads something else */
	wr64(f, PT + 8 * ((DATA >> 12) + 1), NEXT | PTE_P | PTE_W);
	emu_tlb_flush(&f->cpu, true);
	put(f, CODE + 0xa00, code, sizeof(code));
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RBX] = DATA;
	for (unsigned round = 0; round < 4; round++) { /* the interpreter, then translated */
		memcpy(gpa(f, DATA + 0x1000 - 32, 32), data, 32);
		memcpy(gpa(f, NEXT, 32), data + 32, 32);
		memcpy(f->cpu.gpr, regs, sizeof(f->cpu.gpr));
		emu_flags_set(&f->cpu, 0x2);
		f->cpu.rip = CODE + 0xa00;
		if (!round) {
			while ((st = emu_run(&f->cpu, 1, &ran)) == EMU_OK)
				;
			assert_int_equal(st, EMU_HALT);
			memcpy(want, f->cpu.gpr, sizeof(want));
			memcpy(want_data, gpa(f, DATA + 0x1000 - 32, 32), 32);
			memcpy(want_data + 32, gpa(f, NEXT, 32), 32);
			continue;
		}
		assert_int_equal(emu_run(&f->cpu, 1000, &ran), EMU_HALT);
		for (unsigned r = 0; r < 16; r++)
			assert_int_equal(f->cpu.gpr[r], want[r]);
		assert_memory_equal(gpa(f, DATA + 0x1000 - 32, 32), want_data, 32);
		assert_memory_equal(gpa(f, NEXT, 32), want_data + 32, 32);
	}
	assert_true(f->cpu.jit_insns > 0);
}

/* Byte registers, translated: ALU, TEST and MOV between them and with an
 * imm8, on the low bytes of registers with a home and of ones without
 * (more registers than homes), on AH..BH, and with a REX on SPL..DIL and
 * R8B..R15B; each result feeds the next so one wrong byte shows. */
static void byte_registers(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		/* the homes go to the registers used most: r8-r15, rax */
		0x4d, 0x01, 0xc1, 0x4d, 0x01, 0xca, 0x4d, 0x01, 0xd3, 0x4d, 0x01, 0xdc, /* add r9, r8 ... */
		0x4d, 0x01, 0xe5, 0x4d, 0x01, 0xee, 0x4d, 0x01, 0xf7, 0x4c, 0x01, 0xf8, /* ... add rax, r15 */
		0x00, 0xe3,                               /* add bl, ah (rbx, rax: no home / home) */
		0x28, 0xdc,                               /* sub ah, bl: AH of a home: helper */
		0x30, 0xf9,                               /* xor cl, bh */
		0x08, 0xcd,                               /* or ch, cl */
		0x20, 0xea,                               /* and dl, ch */
		0x38, 0xd6,                               /* cmp dh, dl */
		0x40, 0x00, 0xd6,                         /* add sil, dl */
		0x40, 0x28, 0xf7,                         /* sub dil, sil */
		0x45, 0x00, 0xc1,                         /* add r9b, r8b */
		0x44, 0x30, 0xcf,                         /* xor dil, r9b */
		0x41, 0x02, 0xc2,                         /* add al, r10b */
		0x3a, 0xc3,                               /* cmp al, bl */
		0x04, 0x7f,                               /* add al, 0x7f */
		0x2c, 0x80,                               /* sub al, 0x80: OF */
		0x80, 0xc3, 0x91,                         /* add bl, 0x91 */
		0x80, 0xf7, 0x5a,                         /* xor bh, 0x5a */
		0x41, 0x80, 0xe3, 0x3c,                   /* and r11b, 0x3c */
		0x80, 0xfd, 0x10,                         /* cmp ch, 0x10 */
		0x84, 0xe1,                               /* test cl, ah */
		0xa8, 0x40,                               /* test al, 0x40 */
		0x88, 0xf8,                               /* mov al, bh */
		0x88, 0xd4,                               /* mov ah, dl: helper */
		0x8a, 0xee,                               /* mov ch, dh */
		0x40, 0x8a, 0xef,                         /* mov bpl, dil */
		0x44, 0x88, 0xe6,                         /* mov sil, r12b */
		0xb3, 0xa5,                               /* mov bl, 0xa5 */
		0xb7, 0x3c,                               /* mov bh, 0x3c */
		0x41, 0xb5, 0x99,                         /* mov r13b, 0x99 */
		0x40, 0xb4, 0x66,                         /* mov spl, 0x66 */
		0x00, 0xfb,                               /* add bl, bh: CF */
		0x2a, 0xc7,                               /* sub al, bh */
		0x14, 0x01,                               /* adc al, 1 (a helper reads CF) */
		0xf4,
	};
	uint64_t regs[16];

	put(f, CODE + 0xf00, code, sizeof(code));
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	same_as_interpreter(f, CODE + 0xf00, regs, 0x2);
	same_as_interpreter(f, CODE + 0xf00, regs, 0x2 | FL_CF | FL_ZF);
}

/* The same byte forms on registers without a home: each group of them
 * comes after 18 ADDs that make r8-r15 and RBP the registers used most
 * (the homes), and ends its block with a JMP to the next. */
static void byte_registers_without_homes(void **state)
{
	struct fx *f = *state;
	static const uint8_t chain[] = {
		0x4d, 0x01, 0xc1, 0x4d, 0x01, 0xca, 0x4d, 0x01, 0xd3, /* add r9, r8; add r10, r9; ... */
		0x4d, 0x01, 0xdc, 0x4d, 0x01, 0xe5, 0x4d, 0x01, 0xee,
		0x4d, 0x01, 0xf7, 0x4c, 0x01, 0xfd, 0x49, 0x01, 0xe8, /* ... add rbp, r15; add r8, rbp */
	};
	static const uint8_t groups[][16] = {
		{ 6, 0x00, 0xe3, 0x28, 0xdc, 0x30, 0xf9 },         /* add bl, ah; sub ah, bl; xor cl, bh */
		{ 6, 0x08, 0xcd, 0x20, 0xea, 0x38, 0xd6 },         /* or ch, cl; and dl, ch; cmp dh, dl */
		{ 6, 0x40, 0x00, 0xd6, 0x40, 0x28, 0xf7 },         /* add sil, dl; sub dil, sil */
		{ 6, 0x45, 0x00, 0xc1, 0x44, 0x30, 0xcf },         /* add r9b, r8b; xor dil, r9b */
		{ 7, 0x04, 0x7f, 0x2c, 0x80, 0x80, 0xc7, 0x91 },   /* add al, 0x7f; sub al, 0x80; add bh, 0x91 */
		{ 7, 0x80, 0xfd, 0x10, 0x84, 0xe1, 0xa8, 0x40 },   /* cmp ch, 0x10; test cl, ah; test al, 0x40 */
		{ 6, 0x88, 0xf8, 0x88, 0xd4, 0x8a, 0xee },         /* mov al, bh; mov ah, dl; mov ch, dh */
		{ 6, 0x40, 0x8a, 0xef, 0x44, 0x88, 0xe6 },         /* mov bpl, dil; mov sil, r12b */
		{ 6, 0xb3, 0xa5, 0xb7, 0x3c, 0xb4, 0x99 },         /* mov bl, 0xa5; mov bh, 0x3c; mov ah, 0x99 */
		{ 6, 0x00, 0xfc, 0x2a, 0xc7, 0x14, 0x01 },         /* add ah, bh; sub al, bh; adc al, 1 */
	};
	uint8_t code[1024];
	size_t n = 0;
	uint64_t regs[16];

	for (unsigned g = 0; g < ARRAY_SIZE(groups); g++) {
		memcpy(code + n, chain, sizeof(chain));
		n += sizeof(chain);
		memcpy(code + n, chain, sizeof(chain));
		n += sizeof(chain);
		memcpy(code + n, groups[g] + 1, groups[g][0]);
		n += groups[g][0];
		code[n++] = 0xeb;                         /* jmp next: the block ends */
		code[n++] = 0;
	}
	code[n++] = 0xf4;
	assert_true(n <= sizeof(code));
	put(f, 0x26000, code, n);
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 5) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RSP] = STACK;
	same_as_interpreter(f, 0x26000, regs, 0x2);
	same_as_interpreter(f, 0x26000, regs, 0x2 | FL_CF | FL_ZF);
}

/* Calls to a function on another page and its RETs go on through the
 * jump cache (the dispatcher), not back to emu_run: hops counted, the
 * result, budgets and a stop request exact. */
static void calls_and_returns_across_pages(void **state)
{
	struct fx *f = *state;
	static const uint8_t caller[] = {
		0xe8, 0xfb, 0x0f, 0x00, 0x00,             /* L: call fn (0x22000) */
		0x48, 0x01, 0xc8,                         /* add rax, rcx */
		0xff, 0xc9,                               /* dec ecx */
		0x75, 0xf4,                               /* jnz L */
		0xf4,
	};
	static const uint8_t fn[] = {
		0x48, 0x83, 0xc2, 0x03,                   /* fn: add rdx, 3 */
		0xc3,                                     /* ret */
	};

	put(f, 0x21000, caller, sizeof(caller));
	put(f, 0x22000, fn, sizeof(fn));
	for (unsigned round = 0; round < 2; round++) { /* the call and the return */
		f->cpu.gpr[X86_RSP] = STACK;
		f->cpu.gpr[X86_RDX] = 0;
		run_sum_loop(f, 0x21000, 6, round);
		assert_int_equal(f->cpu.gpr[X86_RDX], 3000);
		assert_int_equal(f->cpu.gpr[X86_RSP], STACK);
	}
	f->cpu.gpr[X86_RAX] = 0;
	f->cpu.gpr[X86_RCX] = 1000;
	f->cpu.gpr[X86_RSP] = STACK;
	run_in_budgets(f, 0x21000, 29, 6001);
	assert_int_equal(f->cpu.gpr[X86_RAX], 500500);
	f->cpu.gpr[X86_RCX] = 1000;
	f->cpu.gpr[X86_RSP] = STACK;
	assert_int_equal(run_stopped(f, 0x21000), 1); /* the call, then out */
	assert_int_equal(f->cpu.rip, 0x22000);
}

/* The code behind a virtual page changes while the jump cache knows it:
 * the loop calls fn at 0x23000, mapped to physical page A (fn returns
 * 1) and, halfway, remaps that page to B (fn returns 2) and INVLPGs it.
 * Every call after the INVLPG runs B's code. */
static void remapped_code_page(void **state)
{
	struct fx *f = *state;
	static const uint8_t caller[] = {
		0xe8, 0xfb, 0x1f, 0x00, 0x00,             /* L: call fn (0x23000) */
		0x48, 0x01, 0xc3,                         /* add rbx, rax */
		0x81, 0xf9, 0xf4, 0x01, 0x00, 0x00,       /* cmp ecx, 500 */
		0x75, 0x0a,                               /* jne next */
		0x48, 0x89, 0x16,                         /* mov [rsi], rdx: the PTE, to B */
		0x0f, 0x01, 0x3d, 0xe6, 0x1f, 0x00, 0x00, /* invlpg [rip + 0x1fe6]: 0x23000 */
		0xff, 0xc9,                               /* next: dec ecx */
		0x75, 0xe2,                               /* jnz L */
		0xf4,
	};
	static const uint8_t fn_a[] = { 0xb8, 1, 0, 0, 0, 0xc3 }; /* mov eax, 1; ret */
	static const uint8_t fn_b[] = { 0xb8, 2, 0, 0, 0, 0xc3 }; /* mov eax, 2; ret */

	put(f, 0x21000, caller, sizeof(caller));
	put(f, 0x24000, fn_a, sizeof(fn_a));
	put(f, 0x25000, fn_b, sizeof(fn_b));
	for (unsigned round = 0; round < 2; round++) {
		wr64(f, PT + 8 * 0x23, 0x24000 | PTE_P | PTE_W);
		emu_tlb_flush(&f->cpu, true);
		f->cpu.gpr[X86_RBX] = 0;
		f->cpu.gpr[X86_RCX] = 1000;
		f->cpu.gpr[X86_RSI] = PT + 8 * 0x23;
		f->cpu.gpr[X86_RDX] = 0x25000 | PTE_P | PTE_W;
		run_to_hlt(f, 0x21000);
		assert_int_equal(f->cpu.gpr[X86_RBX], 501 * 1 + 499 * 2); /* c = 1000..500, then 499..1 */
	}
}

/* 16-bit operations on memory, translated: MOV both ways (the rest of
 * the register stays), ALU with the register read or written, with an
 * immediate (imm8 and imm16), TEST, MOV of an imm16; and NOPs, PAUSE and
 * prefetches, which leave nothing but RIP moved. Memory the code adds to
 * is set by the code first, so each run finds the same; loads at the end
 * bring the memory into registers. */
static void word_memory_and_nops(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x66, 0x89, 0x03,                         /* mov [rbx], ax */
		0x66, 0x8b, 0x0b,                         /* mov cx, [rbx] */
		0x66, 0x03, 0x53, 0x02,                   /* add dx, [rbx+2] */
		0x66, 0xc7, 0x43, 0x04, 0x11, 0x81,       /* mov word [rbx+4], 0x8111 */
		0x66, 0x01, 0x73, 0x04,                   /* add [rbx+4], si */
		0x66, 0x83, 0x3b, 0x05,                   /* cmp word [rbx], 5 */
		0x66, 0xc7, 0x43, 0x06, 0xff, 0xff,       /* mov word [rbx+6], 0xffff */
		0x66, 0x81, 0x43, 0x06, 0x34, 0x12,       /* add word [rbx+6], 0x1234: CF */
		0x66, 0x83, 0x6b, 0x06, 0x80,             /* sub word [rbx+6], -128 */
		0x66, 0xf7, 0x43, 0x04, 0x00, 0x80,       /* test word [rbx+4], 0x8000 */
		0x66, 0x85, 0x3b,                         /* test [rbx], di */
		0x0f, 0x1f, 0x44, 0x00, 0x00,             /* nopl 0(rax, rax) */
		0x66, 0x90,                               /* xchg ax, ax */
		0x90,                                     /* nop */
		0xf3, 0x90,                               /* pause */
		0x0f, 0x18, 0x0b,                         /* prefetcht0 [rbx] */
		0x0f, 0x0d, 0x0b,                         /* prefetchw [rbx] */
		0x66, 0x2b, 0x4b, 0x06,                   /* sub cx, [rbx+6] */
		0x66, 0x33, 0x43, 0x04,                   /* xor ax, [rbx+4] */
		0x66, 0x0b, 0x7b, 0x02,                   /* or di, [rbx+2] */
		0x48, 0x8b, 0x33,                         /* mov rsi, [rbx] */
		0x48, 0x8b, 0x6b, 0x04,                   /* mov rbp, [rbx+4] */
		0xf4,
	};
	static const uint8_t data[8] = { 0, 0, 0xfe, 0x7f, 0, 0, 0, 0 };
	uint64_t regs[16];

	put(f, CODE + 0xe00, code, sizeof(code));
	memcpy(gpa(f, DATA, 8), data, 8);
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RBX] = DATA;
	same_as_interpreter(f, CODE + 0xe00, regs, 0x2);
	same_as_interpreter(f, CODE + 0xe00, regs, 0x2 | FL_CF | FL_OF);
}

/* CMPXCHG on memory, translated (the host's own, LOCKed when the guest's
 * is): equal and not, 32 and 64 bits, RAX and the flags after each;
 * and TEST of a register with an immediate. */
static void cmpxchg_and_test_imm(void **state)
{
	struct fx *f = *state;
	static const uint8_t code[] = {
		0x48, 0x89, 0x03,                         /* mov [rbx], rax */
		0x48, 0x0f, 0xb1, 0x0b,                   /* cmpxchg [rbx], rcx: equal */
		0x48, 0x89, 0xc6,                         /* mov rsi, rax */
		0x48, 0x0f, 0xb1, 0x13,                   /* cmpxchg [rbx], rdx: not (rax = rcx) */
		0x48, 0x89, 0xc7,                         /* mov rdi, rax */
		0x89, 0x53, 0x08,                         /* mov [rbx+8], edx */
		0xf0, 0x0f, 0xb1, 0x4b, 0x08,             /* lock cmpxchg [rbx+8], ecx: not */
		0x49, 0x89, 0xc0,                         /* mov r8, rax */
		0xf0, 0x0f, 0xb1, 0x4b, 0x08,             /* lock cmpxchg [rbx+8], ecx: equal */
		0x49, 0x89, 0xc1,                         /* mov r9, rax */
		0x48, 0x8b, 0x6b, 0x08,                   /* mov rbp, [rbx+8] */
		0x4c, 0x8b, 0x23,                         /* mov r12, [rbx] */
		0x49, 0xf7, 0xc2, 0x00, 0x00, 0x00, 0x80, /* test r10, 0xffffffff80000000 */
		0x4d, 0x01, 0xd3,                         /* add r11, r10 */
		0xf7, 0xc6, 0x01, 0x00, 0x00, 0x00,       /* test esi, 1 */
		0x4d, 0x01, 0xdc,                         /* add r12, r11 */
		0x4d, 0x01, 0xe5,                         /* add r13, r12 */
		0x4d, 0x01, 0xee,                         /* add r14, r13 */
		0x4d, 0x01, 0xf7,                         /* add r15, r14 */
		0x49, 0xf7, 0xc7, 0x10, 0x00, 0x00, 0x00, /* test r15, 0x10 */
		0xf4,
	};
	uint64_t regs[16];

	put(f, CODE + 0xd00, code, sizeof(code));
	for (unsigned r = 0; r < 16; r++)
		regs[r] = 0x0123456789abcdefULL * (r + 3) ^ 0x8040201008040201ULL << (r & 7);
	regs[X86_RBX] = DATA;
	same_as_interpreter(f, CODE + 0xd00, regs, 0x2);
	regs[X86_RCX] = regs[X86_RDX] & 0xffffffff; /* the 32-bit ones: equal first */
	same_as_interpreter(f, CODE + 0xd00, regs, 0x2 | FL_ZF);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_lm64, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(alu_and_mov_translated),
		T(logic_cmp_test_and_budget),
		T(rewritten_code_translated_again),
		T(branches_shifts_imul),
		T(rotates),
		T(lea_forms),
		T(memory_operands),
		T(call_ret_push_pop),
		T(flags_across_accesses),
		T(fault_in_translated_code),
		T(store_into_own_block),
		T(helpers_between_translated),
		T(helper_fault),
		T(helper_writes_code),
		T(loop_in_translated_code),
		T(loop_reads_flags_of_last_pass),
		T(linked_blocks),
		T(linked_block_rewritten),
		T(byte_registers),
		T(byte_registers_without_homes),
		T(calls_and_returns_across_pages),
		T(remapped_code_page),
		T(word_memory_and_nops),
		T(cmpxchg_and_test_imm),
		T(flag_readers_and_extensions),
		T(accesses_across_pages),
		T(cli_and_sti_shadow),
		T(indirect_calls_and_jumps),
		T(supervisor_on_user_pages),
		T(return_site_evicted),
	};

	emu_jit_set_every_prefix(); /* on, short prefixes too; before this thread's cache is made */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
