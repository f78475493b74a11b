/*
 * bench_mem: copies a buffer (K KiB, up to 1 MiB) back and forth with a
 * load/store loop of known length, for bench/emu/bench_emu.py (guest MIPS
 * on kumo's emu and QEMU TCG).
 *
 * One asm block is the timed section: n rounds, each copying A to B then
 * B to A, 32 bytes per iteration with four 8-byte loads, four 8-byte
 * stores, add, jnz (10 instructions; K * 32 iterations per copy), plus
 * two movs (loop setup) and dec + jnz per round. So it executes exactly
 * n * (2 * 10 * 32 * K + 4) instructions and moves 2 * K KiB per round.
 * n is "n=NUMBER" and K "kib=NUMBER" on the command line (defaults 8 and
 * 64, about 0.5 M instructions with the checks, for the integration tests
 * -- KVM on a host without VT-x emulates the guest at ~1 MIPS; the
 * benchmark passes kib=1024 and a larger n).
 *
 * A is filled first with a xorshift64 sequence; afterwards both buffers
 * must hold it again (checked against the sequence, so a wrong load or
 * store fails the test), and its hash is the checksum. Prints the lines
 * the benchmark parses (keep their format):
 *   bench: n N
 *   bench: tsc_khz K
 *   bench: instructions I
 *   bench: section T ns         (the timed section, by the TSC)
 *   bench: checksum 0xXXXXXXXXXXXXXXXX
 */
#include "guest.h"

GUEST("bench_mem");

#define DEFAULT_N 8u
#define DEFAULT_KIB 64u
#define MAX_KIB 1024u
#define MAX_QWORDS (MAX_KIB * 1024u / 8)
#define LOOP_INSNS 10u  /* per 32 bytes */

/* Written in full before use: not zeroed at boot (.noinit, no file bytes). */
static uint64_t buf_a[MAX_QWORDS] __attribute__((aligned(4096), section(".noinit")));
static uint64_t buf_b[MAX_QWORDS] __attribute__((aligned(4096), section(".noinit")));

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* n >= 1 rounds: A -> B, B -> A. Indexes run from -BUF_BYTES up to 0
 * off the buffers' ends, so add sets the flags jnz needs. */
static void rounds(uint32_t n, uint32_t bytes)
{
	uint64_t r = n, i, t0, t1, t2, t3;
	__asm__ volatile(
		"1:\n\t"
		"mov %[neg], %[i]\n"
		"2:\n\t"
		"mov (%[a],%[i]), %[t0]\n\t"
		"mov 8(%[a],%[i]), %[t1]\n\t"
		"mov 16(%[a],%[i]), %[t2]\n\t"
		"mov 24(%[a],%[i]), %[t3]\n\t"
		"mov %[t0], (%[b],%[i])\n\t"
		"mov %[t1], 8(%[b],%[i])\n\t"
		"mov %[t2], 16(%[b],%[i])\n\t"
		"mov %[t3], 24(%[b],%[i])\n\t"
		"add $32, %[i]\n\t"
		"jnz 2b\n\t"
		"mov %[neg], %[i]\n"
		"3:\n\t"
		"mov (%[b],%[i]), %[t0]\n\t"
		"mov 8(%[b],%[i]), %[t1]\n\t"
		"mov 16(%[b],%[i]), %[t2]\n\t"
		"mov 24(%[b],%[i]), %[t3]\n\t"
		"mov %[t0], (%[a],%[i])\n\t"
		"mov %[t1], 8(%[a],%[i])\n\t"
		"mov %[t2], 16(%[a],%[i])\n\t"
		"mov %[t3], 24(%[a],%[i])\n\t"
		"add $32, %[i]\n\t"
		"jnz 3b\n\t"
		"dec %[r]\n\t"
		"jnz 1b"
		: [r] "+r"(r), [i] "=&r"(i), [t0] "=&r"(t0), [t1] "=&r"(t1),
		  [t2] "=&r"(t2), [t3] "=&r"(t3)
		: [a] "r"((char *)buf_a + bytes), [b] "r"((char *)buf_b + bytes),
		  [neg] "r"(-(uint64_t)bytes)
		: "cc", "memory");
}

void guest_main(void)
{
	uint32_t n = bench_cmdline_num("n=", DEFAULT_N);
	uint32_t kib = bench_cmdline_num("kib=", DEFAULT_KIB);
	if (kib > MAX_KIB)
		fail("kib=%u: at most %u", kib, MAX_KIB);
	uint32_t bytes = kib * 1024u, qwords = bytes / 8;
	kprintf("bench: n %u kib %u\n", n, kib);

	const uint64_t seed = 0x2545f4914f6cdd1dull;
	uint64_t s = seed;
	for (uint32_t i = 0; i < qwords; i++) {
		buf_a[i] = xorshift64(&s);
		buf_b[i] = 0;
	}

	uint32_t khz = bench_tsc_khz();

	uint64_t t0 = rdtsc();
	rounds(n, bytes);
	uint64_t t1 = rdtsc();
	kprintf("bench: instructions %lu\n", (uint64_t)n * (2u * LOOP_INSNS * (bytes / 32) + 4u));
	bench_print_section(t0, t1, khz);

	/* FNV-1a, 64-bit, a qword at a time */
	uint64_t h = 0xcbf29ce484222325ull;
	s = seed;
	for (uint32_t i = 0; i < qwords; i++) {
		uint64_t want = xorshift64(&s);
		if (buf_a[i] != want || buf_b[i] != want)
			fail("qword %u: A 0x%lx B 0x%lx, want 0x%lx", i, buf_a[i], buf_b[i], want);
		h = (h ^ buf_a[i]) * 0x100000001b3ull;
	}
	kprintf("bench: checksum 0x%016lx\n", h);
	pass();
}
