/* The fixture of the emu tests that run code (test_icache, test_jit): one
 * CPU in 64-bit mode at CPL 0 on 16 MiB of guest RAM. The first 2 MiB are
 * mapped in 4 KiB pages (identity, plus two aliases of CODE's page), the
 * next 14 MiB as 2 MiB pages. */
#ifndef KUMO_TESTS_EMU_FIXTURE_LM64_H
#define KUMO_TESTS_EMU_FIXTURE_LM64_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "fixture.h"
#include "kumo/memory.h"

#define PML4   0x1000ULL
#define PT     0x4000ULL
#define CODE   0x20000ULL           /* identity-mapped, executable */
#define ALIAS  0x180000ULL          /* CODE's page again, executable */
#define NXALIAS 0x190000ULL         /* CODE's page again, no execute */
#define STACK  0x30000ULL

#define PTE_P  1ULL
#define PTE_W  2ULL
#define PTE_PS (1ULL << 7)
#define PTE_XD (1ULL << 63)

struct fx {
	struct guest_mem mem;   /* first, for fx_teardown */
	struct emu_cpu cpu;
};

/* cmocka setup: *state becomes a struct fx as above; fx_teardown frees it. */
int fx_setup_lm64(void **state);

/* The host pointer to guest RAM [a, a + len); fails the test if outside. */
uint8_t *gpa(struct fx *f, uint64_t a, uint64_t len);
void wr64(struct fx *f, uint64_t a, uint64_t v);
/* Writes code straight into guest RAM, as a device writes it. */
void put(struct fx *f, uint64_t a, const void *code, size_t len);
/* Runs from rip until HLT; returns the instructions run. */
unsigned run_to_hlt(struct fx *f, uint64_t rip);

#endif
