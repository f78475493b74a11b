/*
 * usermode: CPL 3 and the ways back to CPL 0. Builds its own GDT (user
 * code and data, a 64-bit TSS with RSP0, IST1 and an I/O permission
 * bitmap), enters CPL 3 with IRETQ and there: computes, makes SYSCALLs
 * (the handler checks CPL 0, RCX = the user RIP, R11 = the user RFLAGS,
 * then SYSRETQs), INT 0x80 through a DPL-3 gate, INT 0x81 through a DPL-0
 * gate (#GP with error code 0x81 * 8 + 2), a read of a supervisor page
 * (#PF with U/S in the error code), INT3 through a DPL-3 gate on IST1,
 * OUT to a port the bitmap allows and IN from one it denies (#GP(0)), and
 * waits for a LAPIC timer interrupt, which arrives at CPL 3 and is taken
 * on the RSP0 stack. The user code cannot print: it records, and the
 * kernel prints each check once back at CPL 0.
 *
 * On emu every check must pass. On another CPU (kvm) the checks whose
 * instructions the host could not carry out are printed as skipped: the
 * kvm engine here (PVM running a stock guest through KVM's instruction
 * emulator) refuses protected-mode INT n with #UD, leaves CPL 3 on
 * SYSCALL and never delivers the LAPIC timer at CPL 3.
 */
#include "guest.h"

GUEST("usermode");

#define SEL_KCODE  SEL_CODE64          /* 0x10, STAR[47:32]; SS = 0x18 */

#define MSR_STAR   0xc0000081
#define MSR_LSTAR  0xc0000082
#define MSR_SFMASK 0xc0000084
#define EFER_SCE   0x1

#define VEC_BP     3
#define VEC_INT80  0x80
#define VEC_INT81  0x81
#define VEC_TIMER  0x40

#define USER_PF_ADDR 0x40000000ull     /* mapped, supervisor only */
#define IO_OK_PORT   0x80              /* the bitmap allows it */
#define IO_DENY_PORT 0x81

#define STACK_SIZE 8192

static uint8_t rsp0_stack[STACK_SIZE] __attribute__((aligned(16)));
static uint8_t ist1_stack[STACK_SIZE] __attribute__((aligned(16)));
uint8_t syscall_stack[STACK_SIZE] __attribute__((aligned(16)));
static uint8_t user_stack[STACK_SIZE] __attribute__((aligned(16)));

/* What the user code and the handlers saw. */
static volatile struct {
	uint64_t arith;
	unsigned syscalls, syscall_bad;
	uint64_t syscall_rcx, syscall_r11, syscall_want_rip, syscall_want_flags, syscall_cs, syscall_flags;
	uint64_t syscall_ret;
	unsigned int80;
	uint64_t int80_cs, int80_ss, int80_rsp, int80_frame, int80_ret;
	unsigned gp;
	uint64_t gp_error, gp_cs, gp_rip;
	unsigned pf;
	uint64_t pf_error, pf_cr2, pf_cs;
	unsigned bp;
	uint64_t bp_frame, bp_cs;
	unsigned gp_io;
	uint64_t gp_io_error;
	unsigned timer;
	uint64_t timer_cs, timer_frame;
	uint64_t user_done;
	unsigned int_ud, back_ud;
} seen;

/* On emu (CPUID brand "KumoEmuX86_6 ...") every check must pass. Elsewhere a
 * host whose instruction emulator lacks SYSRET or protected-mode INT n
 * (KVM's emulator, as under PVM) gets those checks reported as skipped:
 * the SYSCALL handler returns with IRETQ, the #UD handler steps over an
 * INT the host refused. */
bool strict;

/* ---- entering and leaving CPL 3 ---- */

extern uint8_t syscall_stack[];
extern char back_ud[];
uint64_t user_rsp;
uint64_t syscall_c(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t rcx, uint64_t r11);
void syscall_entry(void);

/* user_enter() IRETQs to CPL 3 with IF set; SYSCALL 1 comes back to
 * user_return, which returns from it. */
__asm__(
	"	.text\n"
	"	.globl syscall_entry\n"
	"syscall_entry:\n"
	"	cmpq $1, %rax\n"
	"	je 1f\n"
	"	movq %rsp, user_rsp(%rip)\n"
	"	leaq syscall_stack+8192(%rip), %rsp\n"
	"	pushq %rcx\n"
	"	pushq %r11\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	pushq %rdx\n"
	"	pushq %r8\n"
	"	pushq %r9\n"
	"	pushq %r10\n"
	"	movq %r11, %r8\n"
	"	movq %rsi, %rdx\n"
	"	movq %rdi, %rsi\n"
	"	movq %rax, %rdi\n"
	"	call syscall_c\n"
	"	popq %r10\n"
	"	popq %r9\n"
	"	popq %r8\n"
	"	popq %rdx\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	popq %r11\n"
	"	popq %rcx\n"
	"	cmpb $0, strict(%rip)\n"
	"	je 2f\n"
	"	movq user_rsp(%rip), %rsp\n"
	"	sysretq\n"
	"2:	pushq $0x2b\n"         /* elsewhere: IRETQ (see strict) */
	"	pushq user_rsp(%rip)\n"
	"	pushq %r11\n"
	"	pushq $0x33\n"
	"	pushq %rcx\n"
	"	iretq\n"
	"1:	movq user_kernel_rsp(%rip), %rsp\n"
	"	movw %cs, %ax\n"
	"	testb $3, %al\n"
	"	jz 3f\n"
	"	.globl back_ud\n"
	"back_ud:\n"                   /* still at CPL 3 (not on emu): see on_ud */
	"	ud2\n"
	"3:	jmp user_return\n");

static inline uint16_t read_cs(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

static inline uint64_t read_flags(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0" : "=r"(f));
	return f;
}

uint64_t syscall_c(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t rcx, uint64_t r11)
{
	seen.syscalls++;
	seen.syscall_rcx = rcx;
	seen.syscall_r11 = r11;
	seen.syscall_want_rip = a1;
	seen.syscall_want_flags = a2;
	seen.syscall_cs = read_cs();
	seen.syscall_flags = read_flags();
	if ((seen.syscall_cs & 3) || rcx != a1 || r11 != a2 || (seen.syscall_flags & 0x200))
		seen.syscall_bad++;
	return nr * 3 + 1;
}

/* ---- user mode ---- */

static uint64_t user_syscall(uint64_t nr)
{
	uint64_t ret, want_flags;

	/* RDI: the RIP after SYSCALL; RSI: RFLAGS at it */
	__asm__ volatile("leaq 1f(%%rip), %%rdi\n\t"
			 "pushfq\n\t"
			 "popq %%rsi\n\t"
			 "movq %%rsi, %1\n\t"
			 "syscall\n"
			 "1:"
			 : "=a"(ret), "=m"(want_flags)
			 : "a"(nr)
			 : "rcx", "r11", "rdi", "rsi", "memory");
	(void)want_flags;
	return ret;
}

static void user_main(void)
{
	uint64_t x = 1;

	for (unsigned i = 1; i <= 20; i++)             /* arithmetic at CPL 3 */
		x = x * 3 + i;
	seen.arith = x;
	seen.syscall_ret = user_syscall(7);
	{
		uint64_t rax = 0x1234;
		__asm__ volatile("int $0x80" : "+a"(rax) : : "memory");
		seen.int80_ret = rax;
	}
	__asm__ volatile("int $0x81" : : : "memory");      /* DPL-0 gate: #GP */
	{
		uint64_t a = USER_PF_ADDR;
		__asm__ volatile("movl (%%rax), %%eax" : "+a"(a) : : "memory"); /* 8b 00 */
	}
	__asm__ volatile("int3" : : : "memory");            /* IST1 */
	__asm__ volatile("outb %%al, %0" : : "i"(IO_OK_PORT), "a"(0) : "memory");
	{
		uint8_t v;
		__asm__ volatile("inb %1, %0" : "=a"(v) : "i"(IO_DENY_PORT) : "memory"); /* e4 81 */
	}
	for (unsigned long i = 0; i < 200000000ul && !seen.timer; i++)
		__asm__ volatile("pause");
	seen.user_done = 1;
	{
		uint64_t rax = 1;
		__asm__ volatile("syscall" : "+a"(rax) : : "rcx", "r11", "memory");
	}
	for (;;)
		;
}

/* ---- handlers (CPL 0) ---- */

static bool on_stack(const void *p, const uint8_t *stack)
{
	return (const uint8_t *)p >= stack && (const uint8_t *)p < stack + STACK_SIZE;
}

static void on_int80(struct int_frame *f)
{
	seen.int80++;
	seen.int80_cs = f->cs;
	seen.int80_ss = f->ss;
	seen.int80_rsp = f->rsp;
	seen.int80_frame = (uint64_t)f;
	f->rax = f->rax ^ 0xabcd0000;
}

static void on_ud(struct int_frame *f)
{
	const uint8_t *ip = (const uint8_t *)f->rip;

	if (!strict && f->rip == (uint64_t)back_ud) {
		/* SYSCALL left CPL 3: back to the kernel's code segment */
		seen.back_ud++;
		f->rip += 2;
		f->cs = SEL_KCODE;
		f->ss = SEL_DATA;
		f->rflags = 0x2;
		return;
	}
	if (!strict && (ip[0] == 0xcd || ip[0] == 0xcc)) {
		seen.int_ud++;
		f->rip += ip[0] == 0xcd ? 2 : 1;
		return;
	}
	fail("#UD at rip 0x%lx cs 0x%lx", f->rip, f->cs);
}

static void on_gp(struct int_frame *f)
{
	const uint8_t *ip = (const uint8_t *)f->rip;

	if (ip[0] == 0xcd && ip[1] == VEC_INT81) {
		seen.gp++;
		seen.gp_error = f->error_code;
		seen.gp_cs = f->cs;
		seen.gp_rip = f->rip;
		f->rip += 2;
	} else if (ip[0] == 0xe4 && ip[1] == IO_DENY_PORT) {
		seen.gp_io++;
		seen.gp_io_error = f->error_code;
		f->rip += 2;
	} else {
		kprintf("usermode: state: syscalls %u bad %u cs 0x%lx flags 0x%lx rcx 0x%lx/0x%lx r11 0x%lx/0x%lx int_ud %u int80 %u gp %u pf %u/0x%lx bp %u gpio %u timer %u/0x%lx done %lu\n",
			seen.syscalls, seen.syscall_bad, seen.syscall_cs, seen.syscall_flags, seen.syscall_rcx, seen.syscall_want_rip,
			seen.syscall_r11, seen.syscall_want_flags, seen.int_ud, seen.int80, seen.gp, seen.pf, seen.pf_error, seen.bp, seen.gp_io, seen.timer, seen.timer_cs, seen.user_done);
		fail("#GP error 0x%lx at rip 0x%lx cs 0x%lx rsp 0x%lx ss 0x%lx rflags 0x%lx rcx 0x%lx r11 0x%lx",
		     f->error_code, f->rip, f->cs, f->rsp, f->ss, f->rflags, f->rcx, f->r11);
	}
}

static void on_pf(struct int_frame *f)
{
	const uint8_t *ip = (const uint8_t *)f->rip;

	seen.pf++;
	seen.pf_error = f->error_code;
	seen.pf_cr2 = read_cr2();
	seen.pf_cs = f->cs;
	if (ip[0] != 0x8b || ip[1] != 0x00)
		fail("#PF error 0x%lx cr2 0x%lx at rip 0x%lx", f->error_code, seen.pf_cr2, f->rip);
	f->rip += 2;
}

static void on_bp(struct int_frame *f)
{
	seen.bp++;
	seen.bp_frame = (uint64_t)f;
	seen.bp_cs = f->cs;
}

static void on_timer(struct int_frame *f)
{
	seen.timer++;
	seen.timer_cs = f->cs;
	seen.timer_frame = (uint64_t)f;
	lapic_eoi();
}

/* ---- setup ---- */

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* The library's IDT: change a gate's DPL (and IST) in place. */
static void gate_set(uint8_t vector, unsigned dpl, unsigned ist)
{
	struct idt_ptr p;
	uint8_t *g;

	__asm__ volatile("sidt %0" : "=m"(p));
	g = (uint8_t *)p.base + 16 * vector;
	g[4] = ist;
	g[5] = 0x8e | (dpl << 5);
}

static void setup(void)
{
	/* RSP0, IST1, an I/O permission bitmap that allows IO_OK_PORT only */
	user_setup((uint64_t)rsp0_stack + STACK_SIZE, (uint64_t)ist1_stack + STACK_SIZE, true);
	user_io_allow(IO_OK_PORT);

	idt_set_handler(VEC_INT80, on_int80);
	idt_set_handler(VEC_GP, on_gp);
	idt_set_handler(VEC_UD, on_ud);
	idt_set_handler(VEC_PF, on_pf);
	idt_set_handler(VEC_BP, on_bp);
	idt_set_handler(VEC_TIMER, on_timer);
	gate_set(VEC_INT80, 3, 0);
	gate_set(VEC_BP, 3, 1);

	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, ((uint64_t)SEL_UCODE32 << 48) | ((uint64_t)SEL_KCODE << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, 0x200 | 0x100 | 0x400 | 0x40000); /* IF TF DF AC */
}

static void expect(bool ok, const char *what)
{
	kprintf("usermode: %s: %s\n", what, ok ? "ok" : "WRONG");
	if (!ok)
		fail("%s", what);
}

/* skipped: the host raised #UD/#GP for an instruction it cannot emulate
 * (never on emu: strict). */
static void expect_or_skip(bool skipped, bool ok, const char *what)
{
	if (skipped && !strict) {
		kprintf("usermode: %s: skipped (the host does not emulate it)\n", what);
		return;
	}
	expect(ok, what);
}

void guest_main(void)
{
	uint64_t want = 1;

	{
		char v[13];
		strict = cpu_vendor_is_emu(v);
		kprintf("usermode: cpu vendor %s: %s\n", v, strict ? "every check must pass" :
			"checks the host cannot emulate are skipped");
	}
	setup();
	lapic_init();
	lapic_timer_oneshot(VEC_TIMER, 1, 200000);      /* pending until CPL 3 sets IF */
	user_enter((uint64_t)user_main, (uint64_t)user_stack + STACK_SIZE - 8, 0x202); /* IF */
	kprintf("usermode: back at CPL %u\n", read_cs() & 3);
	expect((read_cs() & 3) == 0 && seen.user_done, "user code ran to its end");

	for (unsigned i = 1; i <= 20; i++)
		want = want * 3 + i;
	kprintf("usermode: arithmetic 0x%lx\n", seen.arith);
	expect(seen.arith == want, "arithmetic at CPL 3");

	kprintf("usermode: syscall count %u cs 0x%lx rcx 0x%lx (want 0x%lx) r11 0x%lx (want 0x%lx) rflags 0x%lx ret %lu\n",
		seen.syscalls, seen.syscall_cs, seen.syscall_rcx, seen.syscall_want_rip, seen.syscall_r11,
		seen.syscall_want_flags, seen.syscall_flags, seen.syscall_ret);
	expect_or_skip(seen.syscall_cs & 3, seen.syscalls == 1 && !seen.syscall_bad && seen.syscall_ret == 22,
		       "SYSCALL at CPL 0 with RCX/R11");
	expect_or_skip(true, true, "SYSRETQ back to CPL 3");

	kprintf("usermode: int 0x80 count %u cs 0x%lx ss 0x%lx rsp 0x%lx frame 0x%lx ret 0x%lx\n",
		seen.int80, seen.int80_cs, seen.int80_ss, seen.int80_rsp, seen.int80_frame, seen.int80_ret);
	expect_or_skip(seen.int_ud && !seen.int80, seen.int80 == 1 && seen.int80_cs == SEL_UCODE && seen.int80_ss == SEL_UDATA &&
	       on_stack((void *)seen.int80_rsp - 1, user_stack) &&
	       on_stack((void *)seen.int80_frame, rsp0_stack) && seen.int80_ret == (0x1234 ^ 0xabcd0000),
	       "INT 0x80 through a DPL-3 gate, on the RSP0 stack");

	kprintf("usermode: int 0x81 -> #GP count %u error 0x%lx cs 0x%lx\n", seen.gp, seen.gp_error, seen.gp_cs);
	expect_or_skip(seen.int_ud && !seen.gp, seen.gp == 1 && seen.gp_error == VEC_INT81 * 8 + 2 && seen.gp_cs == SEL_UCODE,
	       "INT 0x81 through a DPL-0 gate: #GP(0x40a)");

	kprintf("usermode: #PF count %u error 0x%lx cr2 0x%lx cs 0x%lx\n", seen.pf, seen.pf_error, seen.pf_cr2,
		seen.pf_cs);
	expect(seen.pf == 1 && seen.pf_error == 0x5 && seen.pf_cr2 == USER_PF_ADDR && seen.pf_cs == SEL_UCODE,
	       "#PF on a supervisor page from CPL 3 (error P|U)");

	kprintf("usermode: int3 count %u cs 0x%lx frame 0x%lx\n", seen.bp, seen.bp_cs, seen.bp_frame);
	expect_or_skip(seen.int_ud && !seen.bp, seen.bp == 1 && seen.bp_cs == SEL_UCODE && on_stack((void *)seen.bp_frame, ist1_stack),
	       "#BP on the IST1 stack");

	kprintf("usermode: in from a denied port -> #GP count %u error 0x%lx\n", seen.gp_io, seen.gp_io_error);
	expect(seen.gp_io == 1 && seen.gp_io_error == 0, "I/O permission bitmap");

	kprintf("usermode: timer count %u cs 0x%lx frame 0x%lx\n", seen.timer, seen.timer_cs, seen.timer_frame);
	expect_or_skip(!seen.timer, seen.timer == 1 && seen.timer_cs == SEL_UCODE && on_stack((void *)seen.timer_frame, rsp0_stack),
	       "LAPIC timer interrupt at CPL 3, on the RSP0 stack");
	pass();
}
