/* What the differential harnesses (diff.c, diff_sse.c) share: the PRNG,
 * the command line, the native pages and signals, the emu CPU in 64-bit
 * user mode, and the native trampoline (diff_native.S). */
#ifndef KUMO_TESTS_EMU_DIFF_COMMON_H
#define KUMO_TESTS_EMU_DIFF_COMMON_H

#include "exec.h"

#include "kumo/memory.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#define CODE_VA  0x10000000ULL
#define DATA_VA  0x20000000ULL  /* operands: one page */
#define STACK_VA 0x20001000ULL  /* one page; RSP starts in the middle */
#define PT_PA    0x1000ULL      /* emu page tables: PML4, PDPT, PD */
#define GUEST_MEM (1024 * MiB)

/* Runs code natively from io: 16 GPRs (0), RFLAGS (128) and, when fx is
 * non-zero, the FXSAVE64 image at 144 (loaded with FXRSTOR64, stored with
 * FXSAVE64). The code ends with an absolute jump to diff_native_back. */
void diff_native_run(void *io, void *code, int fx);
extern char diff_native_back[];

/* ---- a tiny deterministic PRNG (xorshift64*) ---- */
extern uint64_t diff_rng_state;
static inline uint64_t rnd(void)
{
	diff_rng_state ^= diff_rng_state >> 12;
	diff_rng_state ^= diff_rng_state << 25;
	diff_rng_state ^= diff_rng_state >> 27;
	return diff_rng_state * 0x2545f4914f6cdd1dULL;
}
static inline unsigned rndn(unsigned n) { return rnd() % n; }

struct diff_args {
	uint64_t cases, seed;
	bool verbose;
};

/* --cases N, --seed S, --verbose; on anything else prints the usage of
 * name and returns 2, else 0. */
int diff_args_parse(struct diff_args *a, int argc, char **argv, const char *name);
/* Picks a seed when none was given and seeds the PRNG from it. */
void diff_seed(struct diff_args *a);
/* Maps the native code page at CODE_VA and the data and stack pages at
 * DATA_VA; prints SKIP and returns 77 when it cannot, else 0. */
int diff_map_native(uint8_t **code, uint8_t **data);
/* The start of a run: diff_args_parse, diff_seed, "name: seed S, N cases",
 * diff_map_native; 0, or the exit status when one of them failed. */
int diff_start(const char *name, int argc, char **argv, struct diff_args *a,
	       uint8_t **code, uint8_t **data);

/* The native run's faults: the handler stores the signal in
 * diff_native_sig and jumps back to diff_native_jmp, on an alternate stack. */
extern sigjmp_buf diff_native_jmp;
extern volatile int diff_native_sig;
void diff_signals_init(void);
void diff_signals_fini(void);

/* Copies len bytes of code to dst followed by `jmp *0(%rip)`, and the
 * absolute target after it when back is not NULL. */
void diff_place_code(uint8_t *dst, const uint8_t *insn, unsigned len, const void *back);

/* Maps the guest memory and makes an emu CPU in 64-bit user mode (CPL 3,
 * flat segments) on identity page tables at PT_PA (2 MiB pages, user),
 * with extra CR0 and CR4 bits; prints "name: cannot map guest memory" and
 * returns NULL on failure. */
struct emu_cpu *diff_emu_user64_setup(const char *name, struct guest_mem *mem,
				      uint64_t cr0_extra, uint64_t cr4_extra);
void diff_emu_free(struct emu_cpu *cpu, struct guest_mem *mem);
/* The end of a run: "name: N cases, F faulted natively, M mismatches",
 * diff_emu_free, diff_signals_fini; the exit status (1 on a mismatch). */
int diff_finish(const char *name, const struct diff_args *a, uint64_t faults, uint64_t failures,
		struct emu_cpu *cpu, struct guest_mem *mem);

#endif
