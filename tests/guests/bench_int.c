/*
 * bench_int: an integer ALU loop with an exact instruction count, for
 * bench/emu/bench_emu.py (guest MIPS on kumo's emu and QEMU TCG).
 *
 * The loop (inline asm, below) does n iterations of 12 instructions --
 * mov, shl, xor, mov, shr, xor (a xorshift step), imul, add (a
 * multiply-accumulate), cmp + jb (a data-dependent branch), dec + jnz --
 * plus one inc each time the jb is not taken, which the inc itself
 * counts. So the timed section executes exactly 12 * n + incs
 * instructions (the asm block is the whole section: its inputs come in
 * registers). n is "n=NUMBER" on the command line (default 50000, about
 * 650 000 instructions, for the integration tests -- KVM on a host
 * without VT-x emulates the guest at ~1 MIPS; the benchmark passes a
 * larger one).
 *
 * Before the timed run the same loop runs on a small fixed n and must
 * agree with the same computation in C (so a wrong ALU fails the test).
 * Prints the lines the benchmark parses (keep their format):
 *   bench: n N
 *   bench: tsc_khz K
 *   bench: instructions I
 *   bench: section T ns         (the timed section, by the TSC)
 *   bench: checksum 0xXXXXXXXXXXXXXXXX
 */
#include "guest.h"

GUEST("bench_int");

#define DEFAULT_N 50000u
#define CHECK_N 5000u
#define SEED 0x9e3779b97f4a7c15ull
#define MULT 0x5851f42d4c957f2dull /* odd */

struct state {
	uint64_t x, acc, incs;
};

/* n >= 1 iterations of the loop; 12 * n + s->incs (new) instructions. */
static void run_asm(struct state *s, uint32_t n)
{
	uint64_t x = s->x, acc = s->acc, incs = s->incs, cnt = n, d;
	__asm__ volatile(
		"1:\n\t"
		"mov %[x], %[d]\n\t"
		"shl $13, %[d]\n\t"
		"xor %[d], %[x]\n\t"
		"mov %[x], %[d]\n\t"
		"shr $7, %[d]\n\t"
		"xor %[d], %[x]\n\t"
		"imul %[m], %[acc]\n\t"
		"add %[x], %[acc]\n\t"
		"cmp %[d], %[acc]\n\t"
		"jb 2f\n\t"
		"inc %[incs]\n"
		"2:\n\t"
		"dec %[cnt]\n\t"
		"jnz 1b"
		: [x] "+r"(x), [acc] "+r"(acc), [incs] "+r"(incs), [cnt] "+r"(cnt),
		  [d] "=&r"(d)
		: [m] "r"(MULT)
		: "cc");
	s->x = x;
	s->acc = acc;
	s->incs = incs;
}

/* The same in C. */
static void run_c(struct state *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		s->x ^= s->x << 13;
		uint64_t d = s->x >> 7;
		s->x ^= d;
		s->acc = s->acc * MULT + s->x;
		if (s->acc >= d)
			s->incs++;
		__asm__ volatile("" : : : "memory"); /* keep it a loop */
	}
}

void guest_main(void)
{
	uint32_t n = bench_cmdline_num("n=", DEFAULT_N);
	kprintf("bench: n %u\n", n);

	struct state a = { SEED, 1, 0 }, c = { SEED, 1, 0 };
	run_asm(&a, CHECK_N);
	run_c(&c, CHECK_N);
	if (a.x != c.x || a.acc != c.acc || a.incs != c.incs)
		fail("the loop computed x 0x%lx acc 0x%lx incs %lu, C says 0x%lx 0x%lx %lu",
		     a.x, a.acc, a.incs, c.x, c.acc, c.incs);

	uint32_t khz = bench_tsc_khz();

	struct state s = { SEED, 1, 0 };
	uint64_t t0 = rdtsc();
	run_asm(&s, n);
	uint64_t t1 = rdtsc();
	kprintf("bench: instructions %lu\n", (uint64_t)12 * n + s.incs);
	bench_print_section(t0, t1, khz);
	kprintf("bench: checksum 0x%016lx\n", s.x ^ s.acc ^ (s.incs << 32));
	pass();
}
