/* CPL 3: see user.h. */
#include "guest.h"

#define PTE_U 0x4

struct user_tss user_tss __attribute__((aligned(16)));
static uint64_t gdt64[9] __attribute__((aligned(16)));
extern uint64_t gdt[];
extern uint64_t boot_pml4[], boot_pdpt[], boot_pd[];
uint64_t user_kernel_rsp;

void user_setup(uint64_t rsp0, uint64_t ist1, bool io_bitmap)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gp = { sizeof(gdt64) - 1, (uint64_t)gdt64 };
	uint64_t t = (uint64_t)&user_tss;
	uint64_t limit = io_bitmap ? sizeof(user_tss) - 1 : offsetof(struct user_tss, iomap) - 1;

	/* GDT: the library's four, user code32/data/code64, the TSS */
	for (int i = 0; i < 4; i++)
		gdt64[i] = gdt[i];
	gdt64[4] = 0x00cffa000000ffffull;               /* 0x20 user code32 */
	gdt64[5] = 0x00cff2000000ffffull;               /* 0x28 user data */
	gdt64[6] = 0x00affa000000ffffull;               /* 0x30 user code64 */
	gdt64[7] = limit | ((t & 0xffffff) << 16) | (0x89ull << 40) |
		   (((t >> 24) & 0xff) << 56);
	gdt64[8] = t >> 32;
	memset(&user_tss, 0, sizeof(user_tss));
	user_tss.rsp[0] = rsp0;
	user_tss.ist[0] = ist1;
	/* without the bitmap: its base at the TSS limit + 1, no I/O bitmap */
	user_tss.iomap_base = offsetof(struct user_tss, iomap);
	if (io_bitmap)
		memset((void *)user_tss.iomap, 0xff, sizeof(user_tss.iomap));
	__asm__ volatile("lgdt %0" : : "m"(gp));
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));

	/* The first 16 MiB (the image) user-accessible */
	boot_pml4[0] |= PTE_U;
	boot_pdpt[0] |= PTE_U;
	for (int i = 0; i < 8; i++)
		boot_pd[i] |= PTE_U;
	write_cr3(read_cr3());
}

bool cpu_vendor_is_emu(char vendor[13])
{
	uint32_t r[4];
	char brand[13];

	cpuid(0, 0, r);
	memcpy(vendor, &r[1], 4);
	memcpy(vendor + 4, &r[3], 4);
	memcpy(vendor + 8, &r[2], 4);
	vendor[12] = 0;
	cpuid(0x80000000, 0, r);
	if (r[0] < 0x80000002)
		return false;
	cpuid(0x80000002, 0, r);
	memcpy(brand, r, 12);
	brand[12] = 0;
	return !memcmp(brand, "KumoEmuX86_6", 12);
}

void user_io_allow(unsigned port)
{
	user_tss.iomap[port / 8] &= ~(1u << (port % 8));
}

__asm__(
	"	.text\n"
	"	.globl user_enter, user_return\n"
	"user_enter:\n"
	"	pushq %rbx\n"
	"	pushq %rbp\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, user_kernel_rsp(%rip)\n"
	"	pushq $0x2b\n"          /* SS */
	"	pushq %rsi\n"           /* RSP */
	"	pushq %rdx\n"           /* RFLAGS */
	"	pushq $0x33\n"          /* CS */
	"	pushq %rdi\n"           /* RIP */
	"	iretq\n"
	"user_return:\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbp\n"
	"	popq %rbx\n"
	"	ret\n");
