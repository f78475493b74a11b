/* Fuzz target: the emu engine's executor on any bytes. The input is code
 * (and, in its first bytes, the starting mode and registers) for a CPU in
 * real, 32-bit protected or 64-bit long mode over 16 MiB of guest RAM with
 * identity page tables; up to MAX_STEPS instructions run, exceptions are
 * delivered through whatever IDT the code builds (a triple fault ends the
 * run). Whatever the bytes do, the engine must neither crash nor hang, and
 * every step must end in one of its documented states. */
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "flags.h"
#include "fuzz_boot.h"

#include "kumo/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The CPU here has no machine (cpu->machine is NULL), so port and MMIO
 * accesses never reach these; they let run-libfuzzer.sh link the engine
 * without the rest of kumo. In the meson build libkumo's win. */
struct machine;
__attribute__((weak)) void machine_pio(struct machine *m, uint16_t port, uint8_t *data,
				       unsigned len, bool is_write)
{
	(void)m, (void)port, (void)data, (void)len, (void)is_write;
	abort();
}
__attribute__((weak)) void machine_mmio(struct machine *m, uint64_t addr, uint8_t *data,
					unsigned len, bool is_write)
{
	(void)m, (void)addr, (void)data, (void)len, (void)is_write;
	abort();
}

#define MEM       (16 * MiB)
#define CODE_PA   0x100000ULL
#define PT_PA     0x1000ULL
#define MAX_STEPS 256

static struct guest_mem mem;
static struct emu_cpu *cpu;

static void setup_long(void)
{
	uint64_t *pml4 = gpa_ptr(&mem, PT_PA, 3 * 4096), *pdpt = pml4 + 512, *pd = pdpt + 512;

	memset(pml4, 0, 3 * 4096);
	pml4[0] = (PT_PA + 0x1000) | 0x7;
	pdpt[0] = (PT_PA + 0x2000) | 0x7;
	for (unsigned i = 0; i < 8; i++)
		pd[i] = ((uint64_t)i << 21) | 0x87;
	cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET;
	cpu->cr4 = X86_CR4_PAE | (1 << 9) | (1 << 10);
	cpu->cr3 = PT_PA;
	cpu->efer = X86_EFER_LME | X86_EFER_LMA | (1ULL << 11) | 1;
	for (unsigned i = 0; i < 6; i++)
		cpu->seg[i] = (struct x86_seg){ .limit = 0xffffffff, .type = 0x3, .s = 1,
						.present = 1, .db = 1, .g = 1 };
	cpu->seg[SR_CS] = (struct x86_seg){ .limit = 0xffffffff, .type = 0xb, .s = 1,
					    .present = 1, .l = 1, .g = 1, .sel = 8 };
}

static void setup_prot32(void)
{
	cpu->cr0 = X86_CR0_PE | X86_CR0_ET;
	cpu->cr4 = (1 << 9) | (1 << 10);
	for (unsigned i = 0; i < 6; i++)
		cpu->seg[i] = (struct x86_seg){ .limit = 0xffffffff, .type = 0x3, .s = 1,
						.present = 1, .db = 1, .g = 1 };
	cpu->seg[SR_CS] = (struct x86_seg){ .limit = 0xffffffff, .type = 0xb, .s = 1,
					    .present = 1, .db = 1, .g = 1, .sel = 8 };
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *code;
	size_t head = 1 + 16 * 2, n;

	if (!cpu) {
		if (guest_mem_init(&mem, MEM))
			abort();
		cpu = aligned_alloc(64, ALIGN_UP(sizeof(*cpu), 64));
		memset(cpu, 0, sizeof(*cpu));
		cpu->mem = &mem;
		cpu->ncpus = 1;
	}
	if (size < head + 1)
		return 0;
	memset(mem.base, 0, 4 * MiB);
	emu_cpu_reset(cpu);
	switch (data[0] % 3) {
	case 0: /* real mode: CS:IP = 0x1000:0 is physical 0x10000 */
		cpu->seg[SR_CS].sel = 0x1000;
		cpu->seg[SR_CS].base = 0x10000;
		cpu->rip = 0;
		break;
	case 1: setup_prot32(); cpu->rip = CODE_PA; break;
	default: setup_long(); cpu->rip = CODE_PA; break;
	}
	/* registers: small values so memory operands often land in RAM */
	for (unsigned i = 0; i < 16; i++)
		cpu->gpr[i] = (uint64_t)data[1 + 2 * i] << 8 | data[2 + 2 * i];
	cpu->gpr[X86_RSP] = 0x80000;
	emu_flags_set(cpu, 0x2);
	emu_cpu_update_mode(cpu);
	emu_tlb_flush(cpu, true);
	n = MIN(size - head, (size_t)64 * KiB);
	code = gpa_ptr(&mem, data[0] % 3 == 0 ? 0x10000 : CODE_PA, n);
	FUZZ_CHECK(code != NULL);
	memcpy(code, data + head, n);

	for (unsigned step = 0; step < MAX_STEPS; step++) {
		int st = emu_step(cpu);
		FUZZ_CHECK(st == EMU_OK || st == EMU_FAULT || st == EMU_HALT);
		FUZZ_CHECK(cpu->mode <= MODE_LONG64 && cpu->cpl <= 3);
		if (st == EMU_HALT)
			break;
		if (st == EMU_FAULT) {
			FUZZ_CHECK(cpu->exc.vector < 32);
			if (emu_deliver_exception(cpu) != EMU_OK)
				break; /* triple fault */
		}
	}
	return 0;
}
