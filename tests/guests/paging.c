/*
 * paging: the page-walk rules a kernel relies on, on 4 KiB pages made by
 * splitting the 2 MiB page that holds this image: a write to a read-only
 * page at CPL 0 faults with CR0.WP=1 (error 0x3, CR2 = the address) and
 * lands with WP=0; a not-present page faults on write (0x2) and read
 * (0x0); with EFER.NXE a fetch from an NX page faults with I/D (0x11);
 * the CPU sets Accessed on a read and Dirty on a write; after INVLPG a
 * changed PTE (same linear page, another physical page) is used, and so
 * after a CR3 reload; a 1 GiB page maps where CPUID says pdpe1gb exists.
 * Whether a stale translation survives without INVLPG is not tested: a
 * TLB may or may not hold it.
 */
#include "guest.h"

GUEST("paging");

#define PTE_A   0x020ull
#define PTE_D   0x040ull
#define PTE_NX  (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define CR0_WP  (1ull << 16)
#define EFER_NXE (1ull << 11)

#define PF_P    0x1
#define PF_W    0x2
#define PF_ID   0x10

#define ONE_GIB (1ull << 30)

static uint8_t pages[4][PAGE_SIZE] __attribute__((aligned(4096)));

/* What the #PF handler saw. It resumes at pf_resume (when set) or, for a
 * fetch fault, at the caller's return address (a `ret` never ran). */
static volatile struct {
	int count;
	uint64_t rip, error_code, cr2;
	uint64_t resume;
} pf;

extern char ro_write[], ro_write_end[];
extern char np_write[], np_write_end[];
extern char np_read[], np_read_end[];

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline void write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }

static void on_pf(struct int_frame *f)
{
	pf.count++;
	pf.rip = f->rip;
	pf.error_code = f->error_code;
	pf.cr2 = read_cr2();
	if (pf.count > 1)
		fail("#PF again at 0x%lx (cr2 0x%lx, error 0x%lx)", f->rip, pf.cr2, f->error_code);
	if (pf.resume) {
		f->rip = pf.resume;
	} else if (f->error_code & PF_ID) {
		/* the fetch of the `ret` faulted: return for it */
		f->rip = *(uint64_t *)f->rsp;
		f->rsp += 8;
	} else {
		fail("#PF at 0x%lx (cr2 0x%lx, error 0x%lx) with nowhere to resume", f->rip, pf.cr2,
		     f->error_code);
	}
}

static void pf_arm(uint64_t resume)
{
	pf.count = 0;
	pf.rip = pf.error_code = pf.cr2 = 0;
	pf.resume = resume;
}

static void expect_pf(const char *what, uint64_t rip, uint64_t cr2, uint64_t error)
{
	kprintf("paging: %s: #PF count %d rip 0x%lx cr2 0x%lx error 0x%lx\n", what, pf.count, pf.rip,
		pf.cr2, pf.error_code);
	if (pf.count != 1)
		fail("%s: #PF fired %d times, want 1", what, pf.count);
	if (pf.rip != rip)
		fail("%s: #PF rip 0x%lx, want 0x%lx", what, pf.rip, rip);
	if (pf.cr2 != cr2)
		fail("%s: cr2 0x%lx, want 0x%lx", what, pf.cr2, cr2);
	if (pf.error_code != error)
		fail("%s: error code 0x%lx, want 0x%lx", what, pf.error_code, error);
}

/* The faulting accesses, each at a label the test can name. */
__attribute__((noinline, noclone)) static void write_ro(volatile uint32_t *p, uint32_t v)
{
	__asm__ volatile(".globl ro_write, ro_write_end\n"
			 "ro_write: movl %1, (%0)\n"
			 "ro_write_end:\n"
			 : : "r"(p), "r"(v) : "memory");
}

__attribute__((noinline, noclone)) static void write_np(volatile uint32_t *p, uint32_t v)
{
	__asm__ volatile(".globl np_write, np_write_end\n"
			 "np_write: movl %1, (%0)\n"
			 "np_write_end:\n"
			 : : "r"(p), "r"(v) : "memory");
}

__attribute__((noinline, noclone)) static uint32_t read_np(volatile uint32_t *p)
{
	uint32_t v = 0xdeadbeef;
	__asm__ volatile(".globl np_read, np_read_end\n"
			 "np_read: movl (%1), %0\n"
			 "np_read_end:\n"
			 : "+r"(v) : "r"(p) : "memory");
	return v;
}

static uint32_t read32(const volatile void *p) { return *(const volatile uint32_t *)p; }

void guest_main(void)
{
	idt_set_handler(VEC_PF, on_pf);

	volatile uint64_t *pte[4];
	uint64_t orig[4];
	for (int i = 0; i < 4; i++) {
		pte[i] = paging_pte_4k((uint64_t)pages[i]);
		if (!pte[i])
			fail("cannot split the page holding 0x%lx", (uint64_t)pages[i]);
		orig[i] = *pte[i];
		if ((orig[i] & PTE_ADDR) != (uint64_t)pages[i])
			fail("pte of 0x%lx is 0x%lx", (uint64_t)pages[i], orig[i]);
		*(volatile uint32_t *)pages[i] = 0x1111111 * (uint32_t)(i + 1);
	}
	kprintf("paging: 4 KiB pages at 0x%lx..0x%lx, pte 0x%lx\n", (uint64_t)pages[0],
		(uint64_t)pages[3] + PAGE_SIZE, orig[0]);

	/* read-only page, CR0.WP=1: a CPL-0 write faults (present, write) */
	volatile uint32_t *ro = (volatile uint32_t *)(pages[0] + 0x124);
	*ro = 0x0101;
	*pte[0] = orig[0] & ~(uint64_t)PTE_W;
	invlpg(pages[0]);
	write_cr0(read_cr0() | CR0_WP);
	pf_arm((uint64_t)ro_write_end);
	write_ro(ro, 0xbad);
	expect_pf("read-only write, CR0.WP=1", (uint64_t)ro_write, (uint64_t)ro, PF_P | PF_W);
	if (*ro != 0x0101)
		fail("the faulting write changed the page: 0x%x", *ro);

	/* CR0.WP=0: the same write lands */
	write_cr0(read_cr0() & ~CR0_WP);
	pf_arm(0);
	write_ro(ro, 0x600d);
	kprintf("paging: read-only write, CR0.WP=0: #PF count %d, value 0x%x\n", pf.count, *ro);
	if (pf.count != 0 || *ro != 0x600d)
		fail("with CR0.WP=0 the write to a read-only page did not land");
	write_cr0(read_cr0() | CR0_WP);
	*pte[0] = orig[0];
	invlpg(pages[0]);

	/* not present: write (0x2), then read (0x0) */
	volatile uint32_t *np = (volatile uint32_t *)(pages[1] + 0x38);
	*np = 0x7777;
	*pte[1] = orig[1] & ~(uint64_t)PTE_P;
	invlpg(pages[1]);
	pf_arm((uint64_t)np_write_end);
	write_np(np, 0xbad);
	expect_pf("not-present write", (uint64_t)np_write, (uint64_t)np, PF_W);
	pf_arm((uint64_t)np_read_end);
	uint32_t got = read_np(np);
	expect_pf("not-present read", (uint64_t)np_read, (uint64_t)np, 0);
	if (got != 0xdeadbeef)
		fail("the faulting read wrote its destination: 0x%x", got);
	*pte[1] = orig[1];
	invlpg(pages[1]);
	if (*np != 0x7777)
		fail("not-present page changed: 0x%x", *np);

	/* NX: a `ret` runs, then with bit 63 set its fetch faults (0x11) */
	uint32_t r[4];
	cpuid(0x80000000, 0, r);
	uint32_t max_ext = r[0];
	uint32_t ext_edx = 0;
	if (max_ext >= 0x80000001) {
		cpuid(0x80000001, 0, r);
		ext_edx = r[3];
	}
	if (!(ext_edx & (1u << 20)))
		fail("CPUID 0x80000001 EDX 0x%x: no NX", ext_edx);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	uint8_t *code = pages[2] + 0x40;
	code[0] = 0xc3; /* ret */
	void (*fn)(void) = (void (*)(void))code;
	pf_arm(0);
	fn();
	if (pf.count != 0)
		fail("the executable page faulted (error 0x%lx)", pf.error_code);
	*pte[2] = orig[2] | PTE_NX;
	invlpg(pages[2]);
	pf_arm(0);
	fn();
	expect_pf("fetch from an NX page", (uint64_t)code, (uint64_t)code, PF_ID | PF_P);
	*pte[2] = orig[2];
	invlpg(pages[2]);

	/* Accessed after a read, Dirty after a write */
	*pte[3] = orig[3] & ~(PTE_A | PTE_D);
	invlpg(pages[3]);
	uint64_t before = *pte[3];
	(void)read32(pages[3] + 8);
	uint64_t after_read = *pte[3];
	*(volatile uint32_t *)(pages[3] + 8) = 0x5a5a;
	uint64_t after_write = *pte[3];
	kprintf("paging: A/D: pte 0x%lx, after a read 0x%lx, after a write 0x%lx\n", before,
		after_read, after_write);
	if (!(after_read & PTE_A))
		fail("no Accessed bit after a read: 0x%lx", after_read);
	if (after_read & PTE_D)
		fail("Dirty bit after a read: 0x%lx", after_read);
	if (!(after_write & PTE_D))
		fail("no Dirty bit after a write: 0x%lx", after_write);

	/* INVLPG: pages[0]'s linear page mapped to pages[1]'s frame */
	uint32_t want0 = read32(pages[0]), want1 = read32(pages[1]), want2 = read32(pages[2]);
	*pte[0] = (orig[0] & ~PTE_ADDR) | (uint64_t)pages[1];
	invlpg(pages[0]);
	got = read32(pages[0]);
	kprintf("paging: remapped with INVLPG: 0x%x (old frame 0x%x, new 0x%x)\n", got, want0, want1);
	if (got != want1)
		fail("after INVLPG the old mapping is still used: 0x%x, want 0x%x", got, want1);

	/* a CR3 reload flushes it too (no global pages here) */
	*pte[0] = (orig[0] & ~PTE_ADDR) | (uint64_t)pages[2];
	write_cr3(read_cr3());
	got = read32(pages[0]);
	kprintf("paging: remapped with a CR3 reload: 0x%x (want 0x%x)\n", got, want2);
	if (got != want2)
		fail("after a CR3 reload the old mapping is still used: 0x%x, want 0x%x", got, want2);
	*pte[0] = orig[0];
	invlpg(pages[0]);
	if (read32(pages[0]) != want0)
		fail("restoring the mapping: 0x%x, want 0x%x", read32(pages[0]), want0);

	/* a 1 GiB page: linear 4 GiB..5 GiB -> physical 0..1 GiB */
	if (ext_edx & (1u << 26)) {
		extern uint64_t boot_pdpt[512];
		boot_pdpt[4] = 0 | PTE_P | PTE_W | PTE_PS;
		invlpg((void *)(4 * ONE_GIB));
		volatile uint32_t *alias = (volatile uint32_t *)(4 * ONE_GIB + (uint64_t)pages[3] + 8);
		uint32_t a = *alias;
		*alias = 0x1ba9e;
		uint32_t b = read32(pages[3] + 8);
		kprintf("paging: 1 GiB page at 4 GiB -> 0: read 0x%x (want 0x5a5a), wrote through it: 0x%x\n",
			a, b);
		boot_pdpt[4] = 0;
		invlpg((const void *)alias);
		if (a != 0x5a5a || b != 0x1ba9e)
			fail("the 1 GiB page does not map physical 0: read 0x%x, wrote 0x%x", a, b);
	} else {
		kprintf("paging: no 1 GiB pages\n");
	}
	pass();
}
