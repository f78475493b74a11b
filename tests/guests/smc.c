/*
 * smc: self-modifying code as the architecture guarantees it (SDM vol. 3
 * 11.6 / 9.1.3: a write to code is seen by a fetch after a jump or a
 * serialising instruction on the writing CPU):
 *  - an instruction's immediate rewritten before every call of it, 1000
 *    times: each call returns the new value;
 *  - a function written into a fresh page and called, then another one of
 *    other instruction lengths written over it and called;
 *  - an instruction that crosses a page boundary, changed in its second
 *    page;
 *  - code written through a second virtual mapping of a physical page and
 *    run through the first (and changed again through the alias);
 *  - the immediate of the instruction right after the store rewritten,
 *    then reached through a JMP, and through CPUID (serialising);
 *  - with two CPUs or more, cross-modifying code (SDM vol. 3 9.1.3):
 *    another CPU rewrites a function this one has run, then raises a
 *    flag; this one sees the flag, executes CPUID and calls the new code,
 *    1000 times.
 * Engines that cache decoded instructions (emu) must notice every one.
 */
#include "guest.h"
#include "smp.h"

GUEST("smc");

#define PTE_ADDR 0x000ffffffffff000ull

/* Code pages in .bss (identity-mapped, writable, executable). The last
 * one is remapped as an alias of the second. */
static uint8_t pages[4][PAGE_SIZE] __attribute__((aligned(4096)));

typedef uint32_t (*fn0)(void);
typedef uint32_t (*fn1)(uint32_t);

/* mov eax, v; ret */
static void emit_mov_ret(uint8_t *p, uint32_t v)
{
	p[0] = 0xb8;
	memcpy(p + 1, &v, 4);
	p[5] = 0xc3;
}

static uint32_t call0(const void *code)
{
	__asm__ volatile("" : : : "memory"); /* the stores happen before the call */
	return ((fn0)(uintptr_t)code)();
}

static uint32_t call1(const void *code, uint32_t arg)
{
	__asm__ volatile("" : : : "memory");
	return ((fn1)(uintptr_t)code)(arg);
}

static void immediate_in_a_loop(void)
{
	uint8_t *code = pages[0] + 0x100;

	emit_mov_ret(code, 0);
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t v = i * 0x9e3779b9u, got;
		memcpy(code + 1, &v, 4);
		got = call0(code);
		if (got != v)
			fail("immediate: call %u returned 0x%x, want 0x%x", i, got, v);
	}
	kprintf("smc: immediate rewritten and run 1000 times\n");
}

static void new_code_in_a_page(void)
{
	/* sum 1..n: xor eax,eax; mov ecx,edi; 1: add eax,ecx; loop 1b; ret */
	static const uint8_t sum[] = { 0x31, 0xc0, 0x89, 0xf9, 0x01, 0xc8, 0xe2, 0xfc, 0xc3 };
	/* 2 * sum 1..n: xor eax,eax; mov ecx,edi; 1: lea eax,[rax+rcx*2]; loop 1b; ret */
	static const uint8_t twice[] = { 0x31, 0xc0, 0x89, 0xf9, 0x8d, 0x04, 0x48, 0xe2, 0xfb, 0xc3 };
	uint8_t *code = pages[1] + 0x800;
	uint32_t got;

	for (int round = 0; round < 3; round++) {
		memcpy(code, sum, sizeof(sum));
		if ((got = call1(code, 100)) != 5050)
			fail("new code: sum(100) = %u, want 5050 (round %d)", got, round);
		memcpy(code, twice, sizeof(twice));
		if ((got = call1(code, 100)) != 10100)
			fail("new code: twice sum(100) = %u, want 10100 (round %d)", got, round);
	}
	kprintf("smc: code written to a page and called, then other code over it\n");
}

static void across_a_page_boundary(void)
{
	uint8_t *code = pages[1] - 3; /* b8 v0 v1 | v2 v3 c3: crosses into pages[1] */
	uint32_t got;

	for (uint32_t i = 0; i < 100; i++) {
		uint32_t v = 0x01020304u * (i + 1);
		emit_mov_ret(code, v);
		if ((got = call0(code)) != v)
			fail("across pages: got 0x%x, want 0x%x", got, v);
		pages[1][0] ^= 0xff; /* only the second page's bytes change */
		v ^= 0xff0000;
		if ((got = call0(code)) != v)
			fail("across pages, second page changed: got 0x%x, want 0x%x", got, v);
	}
	kprintf("smc: an instruction across a page boundary changed in its second page\n");
}

static void through_an_alias(void)
{
	volatile uint64_t *pte = paging_pte_4k((uint64_t)pages[3]);
	uint8_t *alias = pages[3], *code = pages[2];
	uint64_t orig;
	uint32_t got;

	if (!pte || !paging_pte_4k((uint64_t)pages[2]))
		fail("cannot split the pages at 0x%lx", (uint64_t)pages[2]);
	orig = *pte;
	*pte = (orig & ~PTE_ADDR) | (uint64_t)pages[2];
	invlpg(alias);
	for (uint32_t i = 0; i < 100; i++) {
		emit_mov_ret(alias + 0x40, 0xa11a5000u + i);
		if (code[0x40 + 1] != (uint8_t)i)
			fail("alias: the write did not reach the page (0x%x)", code[0x41]);
		if ((got = call0(code + 0x40)) != 0xa11a5000u + i)
			fail("alias: got 0x%x, want 0x%x", got, 0xa11a5000u + i);
	}
	*pte = orig;
	invlpg(alias);
	kprintf("smc: code written through an alias and run through the original mapping\n");
}

/* The store rewrites the immediate of the instruction after the JMP. */
__attribute__((noinline, noclone)) static uint32_t next_after_jmp(uint8_t v)
{
	uint32_t r;

	__asm__ volatile("movb %b1, 1f+1(%%rip)\n\t"
			 "jmp 1f\n"
			 "1:\tmovl $0, %%eax\n\t"
			 : "=a"(r) : "S"(v) : "memory");
	return r;
}

/* The same through CPUID, a serialising instruction. */
__attribute__((noinline, noclone)) static uint32_t next_after_cpuid(uint8_t v)
{
	uint32_t r;

	__asm__ volatile("movb %b1, 1f+1(%%rip)\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "cpuid\n"
			 "1:\tmovl $0, %%eax\n\t"
			 : "=a"(r) : "S"(v) : "rbx", "rcx", "rdx", "memory");
	return r;
}

static void next_instruction(void)
{
	uint32_t got;

	/* movl $imm32, %reg is b8+r imm32 (the immediate's low byte at +1) */
	for (uint32_t i = 1; i < 200; i++) {
		if ((got = next_after_jmp((uint8_t)i)) != i)
			fail("next instruction after JMP: got 0x%x, want 0x%x", got, i);
		if ((got = next_after_cpuid((uint8_t)(i ^ 0x80))) != (i ^ 0x80))
			fail("next instruction after CPUID: got 0x%x, want 0x%x", got, i ^ 0x80);
	}
	kprintf("smc: the next instruction rewritten, seen after JMP and after CPUID\n");
}

/* ---- cross-modifying code: the AP writes, the BSP runs ---- */
#define XMC_ROUNDS 1000u

static uint8_t xmc_page[PAGE_SIZE] __attribute__((aligned(4096)));
static volatile uint32_t xmc_turn;   /* odd: the AP's turn to write; even: the BSP's to run */
static volatile uint32_t xmc_ap_done;

static uint32_t xmc_value(uint32_t round)
{
	return 0x5eed0000u ^ (round * 0x9e3779b9u);
}

static void xmc_writer(unsigned cpu)
{
	(void)cpu;
	for (uint32_t k = 1; k <= XMC_ROUNDS; k++) {
		uint32_t v = xmc_value(k);

		while (__atomic_load_n(&xmc_turn, __ATOMIC_ACQUIRE) != 2 * k - 1)
			__asm__ volatile("pause");
		memcpy(xmc_page + 0x200 + 1, &v, 4);
		__atomic_store_n(&xmc_turn, 2 * k, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&xmc_ap_done, 1, __ATOMIC_RELEASE);
}

static void serialize(void)
{
	uint32_t r[4];

	cpuid(0, 0, r);
}

static void cross_modifying(void)
{
	uint32_t ids[SMP_MAX_CPUS], bsp, got;
	int n = acpi_cpu_apic_ids(ids, SMP_MAX_CPUS);
	int ap = -1;

	if (n < 2) {
		kprintf("smc: one CPU, no cross-modifying code to test\n");
		return;
	}
	lapic_init();
	bsp = lapic_id();
	for (int i = 0; i < n && i < SMP_MAX_CPUS && ap < 0; i++)
		if (ids[i] != bsp)
			ap = i;
	emit_mov_ret(xmc_page + 0x200, xmc_value(0));
	if ((got = call0(xmc_page + 0x200)) != xmc_value(0))
		fail("cross-modifying: first call got 0x%x", got);
	if (ap < 0 || !smp_start_ap(ids[ap], 1, xmc_writer))
		fail("cross-modifying: the AP did not start");
	for (uint32_t k = 1; k <= XMC_ROUNDS; k++) {
		__atomic_store_n(&xmc_turn, 2 * k - 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&xmc_turn, __ATOMIC_ACQUIRE) != 2 * k)
			__asm__ volatile("pause");
		serialize();
		if ((got = call0(xmc_page + 0x200)) != xmc_value(k))
			fail("cross-modifying: round %u got 0x%x, want 0x%x", k, got, xmc_value(k));
	}
	while (!__atomic_load_n(&xmc_ap_done, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause");
	kprintf("smc: code rewritten by another CPU, run after CPUID, %u times\n", XMC_ROUNDS);
}

void guest_main(void)
{
	immediate_in_a_loop();
	new_code_in_a_page();
	across_a_page_boundary();
	through_an_alias();
	next_instruction();
	cross_modifying();
	pass();
}
