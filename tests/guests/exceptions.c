/*
 * exceptions: #UD, #DE, #GP and #PF each reach their handler once, with the
 * faulting RIP (and CR2 / error code where there is one), and execution
 * resumes where the handler says.
 */
#include "guest.h"

GUEST("exceptions");

#define PF_WRITE 0x2

struct seen {
	int count;
	uint64_t rip;
	uint64_t error_code;
	uint64_t cr2;
	bool at_expected_insn;
};

static struct seen ud, de, gp, pf;
static volatile uint64_t pf_page_pte; /* the PTE the #PF handler restores */
static volatile uint64_t *pf_pte;
static uint8_t pf_page[PAGE_SIZE] __attribute__((aligned(4096)));

static void record(struct seen *s, const struct int_frame *f, const uint8_t *insn, unsigned len)
{
	s->count++;
	s->rip = f->rip;
	s->error_code = f->error_code;
	s->at_expected_insn = !memcmp((const void *)f->rip, insn, len);
}

/* The handlers skip the faulting instruction, whose bytes they check. */
static void on_ud(struct int_frame *f)
{
	static const uint8_t ud2[] = { 0x0f, 0x0b };
	record(&ud, f, ud2, sizeof(ud2));
	f->rip += sizeof(ud2);
}

static void on_de(struct int_frame *f)
{
	static const uint8_t div_ecx[] = { 0xf7, 0xf1 };
	record(&de, f, div_ecx, sizeof(div_ecx));
	f->rip += sizeof(div_ecx);
}

static void on_gp(struct int_frame *f)
{
	static const uint8_t mov_rax_mem[] = { 0x48, 0x8b, 0x00 };
	record(&gp, f, mov_rax_mem, sizeof(mov_rax_mem));
	f->rip += sizeof(mov_rax_mem);
}

/* Maps the page back; the write is retried on return. */
static void on_pf(struct int_frame *f)
{
	pf.count++;
	pf.rip = f->rip;
	pf.error_code = f->error_code;
	pf.cr2 = read_cr2();
	if (pf.count > 1 || pf.cr2 != (uint64_t)pf_page)
		fail("#PF at 0x%lx (cr2 0x%lx, error 0x%lx), count %d", f->rip, pf.cr2,
		     f->error_code, pf.count);
	*pf_pte = pf_page_pte;
	invlpg((void *)pf.cr2);
}

static void check(const char *name, int vector, const struct seen *s)
{
	kprintf("exceptions: %s (vector %d) count %d rip 0x%lx error 0x%lx%s\n", name, vector,
		s->count, s->rip, s->error_code,
		s->at_expected_insn ? "" : " (rip not at the faulting instruction)");
	if (s->count != 1)
		fail("%s fired %d times", name, s->count);
	if (!s->at_expected_insn)
		fail("%s: rip 0x%lx is not the faulting instruction", name, s->rip);
}

void guest_main(void)
{
	idt_set_handler(VEC_UD, on_ud);
	idt_set_handler(VEC_DE, on_de);
	idt_set_handler(VEC_GP, on_gp);
	idt_set_handler(VEC_PF, on_pf);

	__asm__ volatile("ud2");
	check("#UD", VEC_UD, &ud);

	uint32_t lo = 1, hi = 0;
	__asm__ volatile("divl %%ecx" : "+a"(lo), "+d"(hi) : "c"(0));
	check("#DE", VEC_DE, &de);

	uint64_t non_canonical = 0x8000000000000000ull;
	__asm__ volatile("movq (%%rax), %%rax" : "+a"(non_canonical) : : "memory");
	check("#GP", VEC_GP, &gp);
	if (gp.error_code != 0)
		fail("#GP error code 0x%lx, want 0", gp.error_code);

	/* A not-present 4 KiB page in the middle of the identity map. */
	pf_pte = paging_pte_4k((uint64_t)pf_page);
	if (!pf_pte)
		fail("cannot split the page holding 0x%lx", (uint64_t)pf_page);
	pf_page_pte = *pf_pte;
	*pf_pte = pf_page_pte & ~(uint64_t)PTE_P;
	invlpg(pf_page);
	static const uint8_t pf_insn[] = { 0xc7, 0x00 }; /* movl $imm32, (%rax) */
	volatile uint32_t *target = (volatile uint32_t *)pf_page;
	__asm__ volatile("movl $0x600dcafe, (%%rax)" : : "a"(target) : "memory");
	pf.at_expected_insn = !memcmp((const void *)pf.rip, pf_insn, sizeof(pf_insn));
	kprintf("exceptions: #PF (vector %d) count %d rip 0x%lx cr2 0x%lx error 0x%lx\n", VEC_PF,
		pf.count, pf.rip, pf.cr2, pf.error_code);
	if (pf.count != 1)
		fail("#PF fired %d times", pf.count);
	if (pf.cr2 != (uint64_t)pf_page)
		fail("#PF cr2 0x%lx, want 0x%lx", pf.cr2, (uint64_t)pf_page);
	if (pf.error_code != PF_WRITE)
		fail("#PF error code 0x%lx, want 0x%x (write, not present)", pf.error_code, PF_WRITE);
	if (!pf.at_expected_insn)
		fail("#PF: rip 0x%lx is not the faulting instruction", pf.rip);
	if (*target != 0x600dcafe)
		fail("the retried write did not land: 0x%x", *target);
	pass();
}
