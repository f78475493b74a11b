/* The 64-bit fixture of the emu tests that run code (fixture_lm64.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "fixture_lm64.h"

uint8_t *gpa(struct fx *f, uint64_t a, uint64_t len)
{
	uint8_t *p = gpa_ptr(&f->mem, a, len);

	assert_non_null(p);
	return p;
}

void wr64(struct fx *f, uint64_t a, uint64_t v)
{
	memcpy(gpa(f, a, 8), &v, 8);
}

int fx_setup_lm64(void **state)
{
	struct fx *f = aligned_alloc(64, (sizeof(*f) + 63) & ~(size_t)63); /* as the jump cache is */
	struct emu_cpu *c;

	if (f)
		memset(f, 0, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->mem, 16 * MiB), 0);
	c = &f->cpu;
	c->mem = &f->mem;
	emu_cpu_reset(c);
	wr64(f, PML4, (PML4 + 0x1000) | PTE_P | PTE_W);
	wr64(f, PML4 + 0x1000, (PML4 + 0x2000) | PTE_P | PTE_W);
	wr64(f, PML4 + 0x2000, PT | PTE_P | PTE_W);
	for (uint64_t i = 1; i < 8; i++)
		wr64(f, PML4 + 0x2000 + 8 * i, (i << 21) | PTE_P | PTE_W | PTE_PS);
	for (uint64_t i = 0; i < 512; i++)
		wr64(f, PT + 8 * i, (i << 12) | PTE_P | PTE_W);
	wr64(f, PT + 8 * (ALIAS >> 12), CODE | PTE_P | PTE_W);
	wr64(f, PT + 8 * (NXALIAS >> 12), CODE | PTE_P | PTE_W | PTE_XD);
	c->cr3 = PML4;
	c->cr4 = X86_CR4_PAE;
	c->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	c->efer = X86_EFER_LME | X86_EFER_LMA | (1ULL << 11) /* NXE */;
	for (unsigned s = 0; s < 6; s++)
		c->seg[s] = (struct x86_seg){ .limit = 0xffffffff, .type = 0x3, .s = 1, .present = 1,
					      .db = 1, .g = 1 };
	c->seg[SR_CS] = (struct x86_seg){ .limit = 0xffffffff, .type = 0xb, .s = 1, .present = 1,
					  .l = 1, .g = 1 };
	emu_cpu_update_mode(c);
	emu_tlb_flush(c, true);
	*state = f;
	return 0;
}

void put(struct fx *f, uint64_t a, const void *code, size_t len)
{
	memcpy(gpa(f, a, len), code, len);
}

unsigned run_to_hlt(struct fx *f, uint64_t rip)
{
	unsigned total = 0, ran;
	int st;

	f->cpu.rip = rip;
	f->cpu.gpr[X86_RSP] = STACK;
	for (;;) {
		st = emu_run(&f->cpu, 1000, &ran);
		total += ran;
		if (st == EMU_HALT)
			return total;
		assert_int_equal(st, EMU_OK);
		assert_true(total < 10000);
	}
}
