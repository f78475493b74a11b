/*
 * bench_interp: a small bytecode interpreter in C (a register machine,
 * switch dispatch: an indirect branch per op) running a fixed program,
 * for bench/emu/bench_emu.py (guest speed on kumo's emu and QEMU TCG).
 *
 * The program (prog[] below) runs an outer loop n times ("n=NUMBER" on
 * the command line, default 200, about 0.9 M instructions, for the
 * integration tests; the benchmark passes a larger one); each outer
 * iteration runs an inner loop of 16 with a call every 4th time, loads,
 * stores, multiplies, shifts: OPS_PER_ITER ops, the same path every
 * time. The interpreter counts the ops it dispatches: "bench: ops N",
 * exact.
 *
 * Guest instructions: compiled C has no count by construction, but since
 * every outer iteration takes the same path through the interpreter (no
 * branch depends on the data), the instructions of run(n) are a * n + b.
 * The guest counts run(1), run(2) and run(3) by single-stepping (EFLAGS.TF,
 * a #DB per instruction), checks they are linear, and prints
 * "bench: instructions a*n+b" for the timed run(n). Where single-step
 * traps do not happen (kumo's emu does not implement TF yet) it prints
 * "bench: instructions unknown"; the same image with the same n executes
 * the same instructions everywhere, so the benchmark takes the count from
 * the QEMU run. The count includes the few instructions of the call and
 * the TF toggling around run() (the same in every count).
 *
 * For the default n the checksum must be DEFAULT_SUM (found on QEMU TCG
 * and KVM). Prints the lines the benchmark parses (keep their format):
 *   bench: n N
 *   bench: tsc_khz K
 *   bench: ops N
 *   bench: instructions I | unknown
 *   bench: section T ns         (the timed section, by the TSC)
 *   bench: checksum 0xXXXXXXXXXXXXXXXX
 */
#include "guest.h"

GUEST("bench_interp");

#define DEFAULT_N 200u
#define DEFAULT_SUM 0x28b4088199bcb9c9ull
#define VEC_DB 1
#define FL_TF 0x100u

enum op {
	HALT, LI, MOV, ADD, SUB, XOR, AND, MUL, SHLI, SHRI, ANDI,
	LD, ST, DEC, JNZ, JZ, CALL, RET, NR_OPS
};

struct insn {
	uint8_t op, a, b, c; /* registers (c: or a small immediate) */
	int32_t imm;         /* LI's value, jump targets */
};

#define I(o, ra, rb, rc, im) { (o), (ra), (rb), (rc), (im) }

/* r0 outer count (n), r1 state, r2 inner count, r3 scratch, r4 scratch,
 * r5 multiplier, r6 accumulator, r7 loaded value. */
static const struct insn prog[] = {
	/*  0 */ I(LI, 5, 0, 0, 0x2f6b4d35),
	/*  1 */ I(LI, 1, 0, 0, 0x12345),
	/*  2 */ I(LI, 6, 0, 0, 0),
	/* outer: */
	/*  3 */ I(LI, 2, 0, 0, 16),
	/* inner: */
	/*  4 */ I(ANDI, 3, 2, 3, 0),
	/*  5 */ I(JNZ, 3, 0, 0, 7),
	/*  6 */ I(CALL, 0, 0, 0, 20),
	/*  7 */ I(MUL, 1, 1, 5, 0),
	/*  8 */ I(SHRI, 4, 1, 29, 0),
	/*  9 */ I(XOR, 1, 1, 4, 0),
	/* 10 */ I(ST, 1, 2, 0, 0),           /* mem[r2] = r1 */
	/* 11 */ I(ANDI, 3, 1, 15, 0),
	/* 12 */ I(LD, 7, 3, 0, 0),           /* r7 = mem[r3] */
	/* 13 */ I(ADD, 6, 6, 7, 0),
	/* 14 */ I(SUB, 6, 6, 2, 0),
	/* 15 */ I(DEC, 2, 0, 0, 0),
	/* 16 */ I(JNZ, 2, 0, 0, 4),
	/* 17 */ I(DEC, 0, 0, 0, 0),
	/* 18 */ I(JZ, 0, 0, 0, 32),
	/* 19 */ I(JNZ, 0, 0, 0, 3),          /* never falls through */
	/* mix: */
	/* 20 */ I(SHLI, 4, 1, 11, 0),
	/* 21 */ I(XOR, 1, 1, 4, 0),
	/* 22 */ I(AND, 4, 1, 6, 0),
	/* 23 */ I(ADD, 6, 6, 4, 0),
	/* 24 */ I(MOV, 4, 6, 0, 0),
	/* 25 */ I(SHRI, 4, 4, 3, 0),
	/* 26 */ I(XOR, 6, 6, 4, 0),
	/* 27 */ I(RET, 0, 0, 0, 0),
	/* 28 */ I(HALT, 0, 0, 0, 0),
	/* 29 */ I(HALT, 0, 0, 0, 0),
	/* 30 */ I(HALT, 0, 0, 0, 0),
	/* 31 */ I(HALT, 0, 0, 0, 0),
	/* done: */
	/* 32 */ I(HALT, 0, 0, 0, 0),
};

/* Ops per outer iteration: the inner loop 16 x 12 (ANDI JNZ, 7-16), plus 4 x 9
 * (CALL, mix); LI, DEC, JZ, JNZ around it. The last iteration ends with
 * DEC, JZ (taken), HALT instead; with the 3 LIs before: n * 232 + 3. */
#define OPS_PER_ITER (12u * 16u + 9u * 4u + 4u)
#define OPS_EXTRA 3u

#define STACK_DEPTH 16

struct vm {
	uint64_t r[8];
	uint64_t mem[16];
	uint32_t stack[STACK_DEPTH];
	uint64_t ops;
};

/* Runs prog[] with r0 = n. No branch here depends on the data: the
 * program's jumps depend on counters only, and the registers, memory
 * index and stack are masked, not checked. */
static __attribute__((noinline)) void run(struct vm *vm, uint64_t n)
{
	uint32_t pc = 0, sp = 0;
	uint64_t *r = vm->r;
	r[0] = n;
	for (;;) {
		const struct insn *in = &prog[pc++];
		vm->ops++;
		switch (in->op) {
		case HALT: return;
		case LI: r[in->a & 7] = (uint64_t)(int64_t)in->imm; break;
		case MOV: r[in->a & 7] = r[in->b & 7]; break;
		case ADD: r[in->a & 7] = r[in->b & 7] + r[in->c & 7]; break;
		case SUB: r[in->a & 7] = r[in->b & 7] - r[in->c & 7]; break;
		case XOR: r[in->a & 7] = r[in->b & 7] ^ r[in->c & 7]; break;
		case AND: r[in->a & 7] = r[in->b & 7] & r[in->c & 7]; break;
		case MUL: r[in->a & 7] = r[in->b & 7] * r[in->c & 7]; break;
		case SHLI: r[in->a & 7] = r[in->b & 7] << (in->c & 63); break;
		case SHRI: r[in->a & 7] = r[in->b & 7] >> (in->c & 63); break;
		case ANDI: r[in->a & 7] = r[in->b & 7] & in->c; break;
		case LD: r[in->a & 7] = vm->mem[r[in->b & 7] & 15]; break;
		case ST: vm->mem[r[in->b & 7] & 15] = r[in->a & 7]; break;
		case DEC: r[in->a & 7]--; break;
		case JNZ: if (r[in->a & 7]) pc = (uint32_t)in->imm; break;
		case JZ: if (!r[in->a & 7]) pc = (uint32_t)in->imm; break;
		case CALL: vm->stack[sp++ % STACK_DEPTH] = pc; pc = (uint32_t)in->imm; break;
		case RET: pc = vm->stack[--sp % STACK_DEPTH]; break;
		default: return;
		}
	}
}

static volatile uint64_t steps;

static void on_db(struct int_frame *f)
{
	(void)f;
	steps++;
}

static void vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
}

/* Instructions of run(vm, n), counted by single-step traps (0: none). */
static uint64_t count_insns(uint64_t n)
{
	static struct vm vm;
	vm_init(&vm);
	steps = 0;
	__asm__ volatile("pushfq; orq %0, (%%rsp); popfq" : : "i"(FL_TF) : "memory", "cc");
	run(&vm, n);
	__asm__ volatile("pushfq; andq %0, (%%rsp); popfq" : : "i"(~FL_TF) : "memory", "cc");
	return steps;
}

void guest_main(void)
{
	uint32_t n = bench_cmdline_num("n=", DEFAULT_N);
	kprintf("bench: n %u\n", n);

	idt_set_handler(VEC_DB, on_db);
	uint64_t c1 = count_insns(1), c2 = count_insns(2), c3 = count_insns(3);
	uint64_t a = c2 - c1, b = c1 - a;
	bool counted = c1 != 0;
	if (counted && (c3 - c2 != a || c1 <= a))
		fail("run(1..3) took %lu, %lu, %lu instructions: not a*n+b", c1, c2, c3);
	if (!counted && (c2 || c3))
		fail("single-step traps in some runs only: %lu, %lu, %lu", c1, c2, c3);

	uint32_t khz = bench_tsc_khz();

	static struct vm vm;
	vm_init(&vm);
	uint64_t t0 = rdtsc();
	run(&vm, n);
	uint64_t t1 = rdtsc();

	if (vm.ops != (uint64_t)n * OPS_PER_ITER + OPS_EXTRA)
		fail("interpreted %lu ops, want %lu", vm.ops, (uint64_t)n * OPS_PER_ITER + OPS_EXTRA);
	kprintf("bench: ops %lu\n", vm.ops);
	if (counted)
		kprintf("bench: instructions %lu\n", a * n + b);
	else
		kprintf("bench: instructions unknown (no single-step traps)\n");
	bench_print_section(t0, t1, khz);
	uint64_t sum = vm.r[1] ^ vm.r[6];
	for (unsigned i = 0; i < 16; i++)
		sum = (sum ^ vm.mem[i]) * 0x100000001b3ull;
	kprintf("bench: checksum 0x%016lx\n", sum);
	if (n == DEFAULT_N && sum != DEFAULT_SUM)
		fail("checksum 0x%016lx for n=%u, want 0x%016llx", sum, n, DEFAULT_SUM);
	pass();
}
