/*
 * sse: SSE/SSE2 (and x87) after a kernel enables them (CR0.EM=0, CR0.MP=1,
 * CR4.OSFXSR|OSXMMEXCPT): CPUID 1 says SSE and SSE2; packed integer
 * adds, compares, shuffles and PMOVMSKB; a float dot product (MULPS with
 * shuffles/ADDPS, and HADDPS when SSE3 is advertised); double arithmetic
 * (ADDSD, MULSD, DIVSD, SQRTSD) and conversions (CVTSI2SD, CVTTSD2SI,
 * CVTSD2SI) with exactly representable results; COMISD/UCOMISD flags;
 * MXCSR rounding (1/3 in single precision: nearest vs toward zero) and
 * its precision flag; an FXSAVE/FXRSTOR round trip of XMM0-7 and MXCSR;
 * x87 FLD/FSQRT/FMUL/FSTP and FNSTCW; #XM for an unmasked divide by
 * zero; #UD for an SSE instruction with CR4.OSFXSR clear; #NM with
 * CR0.TS set (the handler CLTSes and the instruction is retried).
 *
 * The SSE and x87 instructions run at CPL 3 (its own GDT, a TSS and
 * IRETQ, as in usermode), the kernel (CPL 0) only sets CR0/CR4, handles
 * the exceptions and checks what the user code stored: the kvm engine
 * here (PVM running a stock guest) carries out CPL-0 code in KVM's
 * instruction emulator, which knows few SSE instructions and stops the
 * VM (KVM internal error) at the others, while CPL-3 code runs on the
 * host CPU. A CPL-3 #UD where none is expected ends the user code: on
 * emu (CPUID brand "KumoEmuX86_6 ...") a failure, elsewhere the checks are
 * skipped; so are #UD/#NM that CR4.OSFXSR/CR0.TS should cause but that
 * such a host does not raise.
 *
 * The guests are built with -mgeneral-regs-only, so every SSE and x87
 * instruction is inline asm on memory operands and named registers, and
 * floating-point values are their bit patterns: nothing is folded at
 * build time. Nor can the asm name XMM or x87 registers as clobbered
 * (gcc refuses under -mgeneral-regs-only); it need not: no compiled code
 * here keeps anything in them, and the interrupt stubs, which do not
 * save them, run C handlers that never touch them.
 */
#include "guest.h"

GUEST("sse");

#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)

#define VEC_NM 7
#define VEC_BP 3
#define VEC_XM 19

#define MXCSR_DEFAULT 0x1f80u
#define MXCSR_ZE 0x0004u
#define MXCSR_PE 0x0020u
#define MXCSR_ZM 0x0200u
#define MXCSR_RZ 0x6000u

#define RFLAGS_CF 0x01
#define RFLAGS_PF 0x04
#define RFLAGS_ZF 0x40

#define D_1_0   0x3ff0000000000000ull
#define D_1_5   0x3ff8000000000000ull
#define D_2_25  0x4002000000000000ull
#define D_2_5   0x4004000000000000ull
#define D_3_375 0x400b000000000000ull
#define D_3_5   0x400c000000000000ull
#define D_3_75  0x400e000000000000ull
#define D_4_0   0x4010000000000000ull
#define D_6_25  0x4019000000000000ull
#define D_8_0   0x4020000000000000ull
#define D_15_0  0x402e000000000000ull
#define D_1_875 0x3ffe000000000000ull
#define D_M7_0  0xc01c000000000000ull
#define D_M7_75 0xc01f000000000000ull
#define D_QNAN  0x7ff8000000000000ull

#define F_1_0   0x3f800000u
#define F_3_0   0x40400000u
#define F_4_0   0x40800000u
#define F_70_0  0x428c0000u
#define F_THIRD_RN 0x3eaaaaabu
#define F_THIRD_RZ 0x3eaaaaaau
#define F_QUARTER  0x3e800000u

struct v128 {
	uint32_t d[4];
} __attribute__((aligned(16)));

static bool strict; /* emu: every check must pass */

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline void write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }

static inline uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static inline void ldmxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" : : "m"(v) : "memory"); }

static inline uint32_t stmxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v) : : "memory");
	return v;
}

static void expect(bool ok, const char *what)
{
	kprintf("sse: %s: %s\n", what, ok ? "ok" : "WRONG");
	if (!ok)
		fail("%s", what);
}

static void expect_v(const char *what, const struct v128 *got, const struct v128 *want)
{
	bool ok = !memcmp(got, want, sizeof(*got));
	if (!ok)
		kprintf("sse: %s: got %08x %08x %08x %08x, want %08x %08x %08x %08x\n", what,
			got->d[0], got->d[1], got->d[2], got->d[3], want->d[0], want->d[1],
			want->d[2], want->d[3]);
	expect(ok, what);
}

static void expect_q(const char *what, uint64_t got, uint64_t want)
{
	if (got != want)
		kprintf("sse: %s: got 0x%lx, want 0x%lx\n", what, got, want);
	expect(got == want, what);
}

/* ---- what the user code computes (CPL 3: no printing here) ---- */

static struct {
	uint32_t mxcsr0;
	struct v128 paddd, pcmpeqb, pshufd;
	uint32_t pmovmskb;
	uint32_t dot, hdot;
	uint64_t sum, prod, quot, root, conv;
	int32_t trunc, near_2_5, near_3_5;
	uint64_t comi_lt, comi_gt, comi_eq, ucomi_nan;
	uint32_t quarter, mxcsr_quarter, third_rn, mxcsr_rn, third_rz, mxcsr_rz;
	uint32_t fx_mxcsr, fx_mxcsr_back;
	bool fx_image_ok[8];
	struct v128 fx_in[8], fx_out[8];
	uint16_t fcw;
	uint64_t x87_prod, x87_root;
	uint64_t xm_dest;
	uint32_t xm_mxcsr_after;
	struct v128 nm_sum;
	bool sse3;
} R;

static uint8_t fxbuf[512] __attribute__((aligned(16)));

static void user_integer(void)
{
	static const struct v128 a = { { 1, 2, 3, 0xffffffff } }, b = { { 10, 20, 30, 1 } };
	__asm__ volatile("movdqu %1, %%xmm0\n\t"
			 "paddd %2, %%xmm0\n\t"
			 "movdqu %%xmm0, %0"
			 : "=m"(R.paddd) : "m"(a), "m"(b));
	static const struct v128 x = { { 0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c } };
	static const struct v128 y = { { 0xff020100, 0x07060504, 0x0b0a0908, 0x0f0e0d00 } };
	__asm__ volatile("movdqu %2, %%xmm0\n\t"
			 "pcmpeqb %3, %%xmm0\n\t"
			 "movdqu %%xmm0, %0\n\t"
			 "pmovmskb %%xmm0, %1"
			 : "=m"(R.pcmpeqb), "=r"(R.pmovmskb) : "m"(x), "m"(y));
	static const struct v128 s = { { 1, 2, 3, 4 } };
	__asm__ volatile("pshufd $0x1b, %1, %%xmm1\n\t"
			 "movdqu %%xmm1, %0"
			 : "=m"(R.pshufd) : "m"(s));
}

static void user_dot(void)
{
	/* (1,2,3,4) . (5,6,7,8) = 70 */
	static const struct v128 a = { { 0x3f800000, 0x40000000, 0x40400000, 0x40800000 } };
	static const struct v128 b = { { 0x40a00000, 0x40c00000, 0x40e00000, 0x41000000 } };
	__asm__ volatile("movups %1, %%xmm0\n\t"
			 "mulps %2, %%xmm0\n\t"
			 "movhlps %%xmm0, %%xmm1\n\t"
			 "addps %%xmm1, %%xmm0\n\t"
			 "movaps %%xmm0, %%xmm1\n\t"
			 "shufps $0x55, %%xmm1, %%xmm1\n\t"
			 "addss %%xmm1, %%xmm0\n\t"
			 "movss %%xmm0, %0"
			 : "=m"(R.dot) : "m"(a), "m"(b));
	if (R.sse3)
		__asm__ volatile("movups %1, %%xmm0\n\t"
				 "mulps %2, %%xmm0\n\t"
				 "haddps %%xmm0, %%xmm0\n\t"
				 "haddps %%xmm0, %%xmm0\n\t"
				 "movss %%xmm0, %0"
				 : "=m"(R.hdot) : "m"(a), "m"(b));
}

static void user_double(void)
{
	static const uint64_t c1_5 = D_1_5, c2_25 = D_2_25, c4 = D_4_0, c8 = D_8_0, c6_25 = D_6_25;
	__asm__ volatile("movsd %4, %%xmm0\n\t"
			 "addsd %5, %%xmm0\n\t"
			 "movsd %%xmm0, %0\n\t"
			 "mulsd %6, %%xmm0\n\t"
			 "movsd %%xmm0, %1\n\t"
			 "divsd %7, %%xmm0\n\t"
			 "movsd %%xmm0, %2\n\t"
			 "sqrtsd %8, %%xmm1\n\t"
			 "movsd %%xmm1, %3"
			 : "=m"(R.sum), "=m"(R.prod), "=m"(R.quot), "=m"(R.root)
			 : "m"(c1_5), "m"(c2_25), "m"(c4), "m"(c8), "m"(c6_25));

	static const uint64_t cm7_75 = D_M7_75, c2_5 = D_2_5, c3_5 = D_3_5;
	__asm__ volatile("cvtsi2sdl %4, %%xmm0\n\t"
			 "movsd %%xmm0, %0\n\t"
			 "cvttsd2si %5, %1\n\t"
			 "cvtsd2si %6, %2\n\t"
			 "cvtsd2si %7, %3"
			 : "=m"(R.conv), "=&r"(R.trunc), "=&r"(R.near_2_5), "=&r"(R.near_3_5)
			 : "r"(-7), "m"(cm7_75), "m"(c2_5), "m"(c3_5));
}

static uint64_t comi(bool unordered_quiet, uint64_t a, uint64_t b)
{
	uint64_t flags;
	if (unordered_quiet)
		__asm__ volatile("movsd %1, %%xmm0\n\t"
				 "ucomisd %2, %%xmm0\n\t"
				 "pushfq\n\t"
				 "popq %0"
				 : "=r"(flags) : "m"(a), "m"(b) : "cc");
	else
		__asm__ volatile("movsd %1, %%xmm0\n\t"
				 "comisd %2, %%xmm0\n\t"
				 "pushfq\n\t"
				 "popq %0"
				 : "=r"(flags) : "m"(a), "m"(b) : "cc");
	return flags & (RFLAGS_CF | RFLAGS_PF | RFLAGS_ZF);
}

static void user_compare(void)
{
	R.comi_lt = comi(false, D_1_5, D_2_25);
	R.comi_gt = comi(false, D_2_25, D_1_5);
	R.comi_eq = comi(false, D_2_25, D_2_25);
	R.ucomi_nan = comi(true, D_1_5, D_QNAN);
}

static uint32_t divss(uint32_t a, uint32_t b)
{
	uint32_t r;
	__asm__ volatile("movss %1, %%xmm0\n\t"
			 "divss %2, %%xmm0\n\t"
			 "movss %%xmm0, %0"
			 : "=m"(r) : "m"(a), "m"(b));
	return r;
}

static void user_mxcsr(void)
{
	ldmxcsr(MXCSR_DEFAULT);
	R.quarter = divss(F_1_0, F_4_0);
	R.mxcsr_quarter = stmxcsr();
	R.third_rn = divss(F_1_0, F_3_0);
	R.mxcsr_rn = stmxcsr();
	ldmxcsr(MXCSR_DEFAULT | MXCSR_RZ);
	R.third_rz = divss(F_1_0, F_3_0);
	R.mxcsr_rz = stmxcsr();
	ldmxcsr(MXCSR_DEFAULT);
}

static void user_fxsave(void)
{
	struct v128 *in = R.fx_in, *out = R.fx_out;
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 4; j++)
			in[i].d[j] = 0x01010101u * (uint32_t)(i + 1) + (uint32_t)j * 0x10000000u;
	ldmxcsr(MXCSR_DEFAULT | MXCSR_RZ);
	memset(fxbuf, 0xcc, sizeof(fxbuf));
	__asm__ volatile("movdqu 0(%0), %%xmm0\n\t"
			 "movdqu 16(%0), %%xmm1\n\t"
			 "movdqu 32(%0), %%xmm2\n\t"
			 "movdqu 48(%0), %%xmm3\n\t"
			 "movdqu 64(%0), %%xmm4\n\t"
			 "movdqu 80(%0), %%xmm5\n\t"
			 "movdqu 96(%0), %%xmm6\n\t"
			 "movdqu 112(%0), %%xmm7\n\t"
			 "fxsaveq (%1)"
			 : : "r"(in), "r"(fxbuf) : "memory");
	ldmxcsr(MXCSR_DEFAULT);
	memcpy(&R.fx_mxcsr, fxbuf + 24, 4);
	for (int i = 0; i < 8; i++)
		R.fx_image_ok[i] = !memcmp(fxbuf + 160 + 16 * i, &in[i], 16);

	/* change the image, clear the registers, restore */
	for (int i = 0; i < 8; i++) {
		for (int j = 0; j < 4; j++)
			in[i].d[j] = ~in[i].d[j];
		memcpy(fxbuf + 160 + 16 * i, &in[i], 16);
	}
	__asm__ volatile("pxor %%xmm0, %%xmm0\n\t"
			 "pxor %%xmm1, %%xmm1\n\t"
			 "pxor %%xmm2, %%xmm2\n\t"
			 "pxor %%xmm3, %%xmm3\n\t"
			 "pxor %%xmm4, %%xmm4\n\t"
			 "pxor %%xmm5, %%xmm5\n\t"
			 "pxor %%xmm6, %%xmm6\n\t"
			 "pxor %%xmm7, %%xmm7\n\t"
			 "fxrstorq (%1)\n\t"
			 "movdqu %%xmm0, 0(%0)\n\t"
			 "movdqu %%xmm1, 16(%0)\n\t"
			 "movdqu %%xmm2, 32(%0)\n\t"
			 "movdqu %%xmm3, 48(%0)\n\t"
			 "movdqu %%xmm4, 64(%0)\n\t"
			 "movdqu %%xmm5, 80(%0)\n\t"
			 "movdqu %%xmm6, 96(%0)\n\t"
			 "movdqu %%xmm7, 112(%0)"
			 : : "r"(out), "r"(fxbuf) : "memory");
	R.fx_mxcsr_back = stmxcsr();
	ldmxcsr(MXCSR_DEFAULT);
}

static void user_x87(void)
{
	static const uint64_t c6_25 = D_6_25, c1_5 = D_1_5, c2_25 = D_2_25;
	__asm__ volatile("fninit\n\t"
			 "fnstcw %2\n\t"
			 "fldl %3\n\t"
			 "fmull %4\n\t"
			 "fstpl %0\n\t"
			 "fldl %5\n\t"
			 "fsqrt\n\t"
			 "fmull %3\n\t"
			 "fstpl %1"
			 : "=m"(R.x87_prod), "=m"(R.x87_root), "=m"(R.fcw)
			 : "m"(c1_5), "m"(c2_25), "m"(c6_25)
			 : "memory");
}

/* divsd by zero with ZM clear: #XM; the handler steps over it. */
__attribute__((noinline)) static void user_xm(void)
{
	static const uint64_t c1 = D_1_0;
	R.xm_dest = 0;
	ldmxcsr(MXCSR_DEFAULT & ~MXCSR_ZM);
	__asm__ volatile("movsd %1, %%xmm0\n\t"
			 "xorpd %%xmm1, %%xmm1\n\t"
			 ".globl xm_insn\n"
			 "xm_insn: divsd %%xmm1, %%xmm0\n\t"
			 "movsd %%xmm0, %0"
			 : "=m"(R.xm_dest) : "m"(c1) : "memory");
	R.xm_mxcsr_after = stmxcsr();
	ldmxcsr(MXCSR_DEFAULT);
}

static void user_compute(void)
{
	R.mxcsr0 = stmxcsr();
	user_integer();
	user_dot();
	user_double();
	user_compare();
	user_mxcsr();
	user_fxsave();
	user_x87();
	user_xm();
}

/* movups with CR4.OSFXSR clear: #UD; the handler steps over it. */
__attribute__((noinline)) static void user_ud(void)
{
	__asm__ volatile(".globl ud_insn\n"
			 "ud_insn: movups %%xmm1, %%xmm0" : : : "memory");
}

/* CR0.TS set: #NM at the first SSE instruction, retried after CLTS. */
__attribute__((noinline)) static void user_nm(void)
{
	static const struct v128 a = { { F_1_0, F_1_0, F_1_0, F_1_0 } };
	static const struct v128 b = { { F_3_0, 0, F_3_0, 0 } };
	__asm__ volatile(".globl nm_insn\n"
			 "nm_insn: movups %1, %%xmm0\n\t"
			 "movups %2, %%xmm1\n\t"
			 "addps %%xmm1, %%xmm0\n\t"
			 "movups %%xmm0, %0"
			 : "=m"(R.nm_sum) : "m"(a), "m"(b) : "memory");
}

/* ---- CPL 3: GDT, TSS, IRETQ there, and back through an exception ---- */

#define STACK_SIZE 8192

static uint8_t rsp0_stack[STACK_SIZE] __attribute__((aligned(16)));
static uint8_t user_stack[STACK_SIZE] __attribute__((aligned(16)));

void (*user_fn)(void);
extern const uint8_t user_entry[], user_hlt[];
extern const uint8_t xm_insn[], ud_insn[], nm_insn[];

/* user_enter() IRETQs to user_entry at CPL 3 (IF clear), which calls
 * user_fn and HLTs: the #GP (or an unexpected exception) comes back to
 * user_return. */
__asm__(
	"	.text\n"
	"	.globl user_entry, user_hlt\n"
	"user_entry:\n"
	"	call *user_fn(%rip)\n"
	"user_hlt:\n"
	"	hlt\n"
	"	jmp user_hlt\n");

static volatile struct {
	unsigned xm, ud, nm, refused;
	uint64_t xm_rip, ud_rip, nm_rip, refused_rip, refused_vector;
	uint8_t refused_bytes[4];
} seen;

/* Back to the kernel at user_return, on the stack user_enter left. */
static void to_kernel(struct int_frame *f)
{
	f->rip = (uint64_t)user_return;
	f->cs = SEL_CODE64;
	f->ss = SEL_DATA;
	f->rsp = user_kernel_rsp;
	f->rflags = 0x2;
}

/* An exception at CPL 3 that the test did not ask for ends the user code. */
static void refused(struct int_frame *f)
{
	seen.refused++;
	seen.refused_rip = f->rip;
	seen.refused_vector = f->vector;
	memcpy((void *)seen.refused_bytes, (const void *)f->rip, 4);
	to_kernel(f);
}

static void on_gp(struct int_frame *f)
{
	if (!(f->cs & 3))
		fail("#GP(0x%lx) at rip 0x%lx at CPL 0", f->error_code, f->rip);
	if (f->rip == (uint64_t)user_hlt)
		to_kernel(f);
	else
		refused(f);
}

/* No SSE here: the handlers run at CPL 0 (KVM's emulator under PVM). */
static void on_xm(struct int_frame *f)
{
	seen.xm++;
	seen.xm_rip = f->rip;
	if (f->rip != (uint64_t)xm_insn || !(f->cs & 3)) {
		refused(f);
		return;
	}
	f->rip += 4; /* divsd %xmm1, %xmm0: f2 0f 5e c1 */
}

static void on_ud(struct int_frame *f)
{
	if (!(f->cs & 3))
		fail("#UD at rip 0x%lx at CPL 0", f->rip);
	if (f->rip != (uint64_t)ud_insn) {
		refused(f);
		return;
	}
	seen.ud++;
	seen.ud_rip = f->rip;
	f->rip += 3; /* movups %xmm1, %xmm0: 0f 10 c1 */
}

/* Lets the instruction run again with CR0.TS clear. */
static void on_nm(struct int_frame *f)
{
	seen.nm++;
	seen.nm_rip = f->rip;
	if (seen.nm > 1 || f->rip != (uint64_t)nm_insn)
		fail("#NM at 0x%lx (count %u), want 0x%lx", f->rip, seen.nm, (uint64_t)nm_insn);
	__asm__ volatile("clts" : : : "memory");
}

static void setup_user(void)
{
	user_setup((uint64_t)rsp0_stack + STACK_SIZE, 0, false); /* no I/O bitmap */
	idt_set_handler(VEC_GP, on_gp);
	idt_set_handler(VEC_UD, on_ud);
	idt_set_handler(VEC_XM, on_xm);
	idt_set_handler(VEC_NM, on_nm);
	idt_set_handler(VEC_PF, refused);
	idt_set_handler(VEC_BP, refused);
}

/* Runs fn at CPL 3; false if it ended with an exception it did not ask for. */
static bool run_user(void (*fn)(void), const char *what)
{
	unsigned before = seen.refused;
	user_fn = fn;
	user_enter((uint64_t)user_entry, (uint64_t)user_stack + STACK_SIZE, 0x2);
	if (seen.refused == before)
		return true;
	kprintf("sse: %s: vector %lu at CPL 3, rip 0x%lx (bytes %02x %02x %02x %02x)\n", what,
		seen.refused_vector, seen.refused_rip, seen.refused_bytes[0], seen.refused_bytes[1],
		seen.refused_bytes[2], seen.refused_bytes[3]);
	if (strict)
		fail("%s: vector %lu at rip 0x%lx", what, seen.refused_vector, seen.refused_rip);
	kprintf("sse: %s: skipped (the host does not emulate it)\n", what);
	return false;
}

/* An exception the host did not raise: on emu a failure, elsewhere a skip. */
static void expect_exception(unsigned count, const char *what)
{
	if (count == 0 && !strict) {
		kprintf("sse: %s: skipped (the host does not emulate it)\n", what);
		return;
	}
	if (count != 1)
		kprintf("sse: %s: fired %u times, want 1\n", what, count);
	expect(count == 1, what);
}

/* ---- the kernel's checks ---- */

static void check_compute(void)
{
	static const struct v128 sum = { { 11, 22, 33, 0 } };
	static const struct v128 eq = { { 0x00ffffff, 0xffffffff, 0xffffffff, 0xffffff00 } };
	static const struct v128 rev = { { 4, 3, 2, 1 } };

	expect_q("mxcsr at the start", R.mxcsr0, MXCSR_DEFAULT);
	expect_v("paddd", &R.paddd, &sum);
	expect_v("pcmpeqb", &R.pcmpeqb, &eq);
	expect_q("pmovmskb", R.pmovmskb, 0xeff7);
	expect_v("pshufd $0x1b", &R.pshufd, &rev);

	expect_q("dot product (mulps, movhlps, addps, shufps, addss)", R.dot, F_70_0);
	if (R.sse3)
		expect_q("dot product (mulps, haddps)", R.hdot, F_70_0);
	else
		kprintf("sse: no SSE3: haddps not checked\n");

	expect_q("addsd 1.5 + 2.25 = 3.75", R.sum, D_3_75);
	expect_q("mulsd 3.75 * 4 = 15", R.prod, D_15_0);
	expect_q("divsd 15 / 8 = 1.875", R.quot, D_1_875);
	expect_q("sqrtsd 6.25 = 2.5", R.root, D_2_5);
	expect_q("cvtsi2sd -7", R.conv, D_M7_0);
	expect_q("cvttsd2si -7.75 = -7", (uint64_t)(int64_t)R.trunc, (uint64_t)-7ll);
	expect_q("cvtsd2si 2.5 = 2 (to nearest even)", (uint64_t)(int64_t)R.near_2_5, 2);
	expect_q("cvtsd2si 3.5 = 4", (uint64_t)(int64_t)R.near_3_5, 4);

	expect_q("comisd 1.5 < 2.25: CF", R.comi_lt, RFLAGS_CF);
	expect_q("comisd 2.25 > 1.5: none", R.comi_gt, 0);
	expect_q("comisd 2.25 == 2.25: ZF", R.comi_eq, RFLAGS_ZF);
	expect_q("ucomisd 1.5 vs NaN: ZF PF CF", R.ucomi_nan, RFLAGS_ZF | RFLAGS_PF | RFLAGS_CF);

	expect_q("divss 1/4 (exact)", R.quarter, F_QUARTER);
	expect_q("mxcsr after an exact divide: no PE", R.mxcsr_quarter, MXCSR_DEFAULT);
	expect_q("divss 1/3 rounded to nearest", R.third_rn, F_THIRD_RN);
	expect_q("mxcsr after 1/3: PE", R.mxcsr_rn, MXCSR_DEFAULT | MXCSR_PE);
	expect_q("divss 1/3 rounded toward zero", R.third_rz, F_THIRD_RZ);
	expect_q("mxcsr with RC=toward zero after 1/3", R.mxcsr_rz, MXCSR_DEFAULT | MXCSR_RZ | MXCSR_PE);

	expect_q("fxsave: mxcsr in the image", R.fx_mxcsr, MXCSR_DEFAULT | MXCSR_RZ);
	bool ok = true;
	for (int i = 0; i < 8; i++)
		if (!R.fx_image_ok[i]) {
			kprintf("sse: fxsave: xmm%d in the image differs\n", i);
			ok = false;
		}
	expect(ok, "fxsave: xmm0-7 in the image");
	expect_q("fxrstor: mxcsr", R.fx_mxcsr_back, MXCSR_DEFAULT | MXCSR_RZ);
	for (int i = 0; i < 8; i++)
		if (memcmp(&R.fx_in[i], &R.fx_out[i], 16))
			expect_v("fxrstor: an xmm register", &R.fx_out[i], &R.fx_in[i]);
	expect(true, "fxrstor: xmm0-7 from the changed image");

	expect_q("fnstcw after fninit", R.fcw, 0x037f);
	expect_q("x87 fld/fmul/fstp 1.5 * 2.25 = 3.375", R.x87_prod, D_3_375);
	expect_q("x87 fsqrt 6.25 * 1.5 = 3.75", R.x87_root, D_3_75);

	kprintf("sse: #XM: count %u rip 0x%lx, mxcsr 0x%x after it\n", seen.xm, seen.xm_rip,
		R.xm_mxcsr_after);
	expect(seen.xm == 1 && seen.xm_rip == (uint64_t)xm_insn,
	       "#XM for divsd by zero with ZM clear");
	expect_q("#XM: mxcsr with ZE set", R.xm_mxcsr_after, (MXCSR_DEFAULT & ~MXCSR_ZM) | MXCSR_ZE);
	expect_q("#XM: the destination unchanged", R.xm_dest, D_1_0);
}

void guest_main(void)
{
	uint32_t r[4];
	char v[13];
	strict = cpu_vendor_is_emu(v);
	cpuid(1, 0, r);
	R.sse3 = r[2] & 1;
	kprintf("sse: cpu vendor %s (%s), cpuid 1 ecx 0x%x edx 0x%x\n", v,
		strict ? "every check must pass" : "checks the host cannot carry out are skipped",
		r[2], r[3]);
	expect((r[3] & (1u << 25)) && (r[3] & (1u << 26)), "cpuid 1 edx: sse and sse2");

	setup_user();
	write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);

	if (run_user(user_compute, "SSE/x87 computations at CPL 3"))
		check_compute();

	uint64_t cr4 = read_cr4();
	write_cr4(cr4 & ~CR4_OSFXSR);
	bool ran = run_user(user_ud, "movups with CR4.OSFXSR clear");
	write_cr4(cr4);
	kprintf("sse: #UD with CR4.OSFXSR clear: count %u rip 0x%lx\n", seen.ud, seen.ud_rip);
	if (ran)
		expect_exception(seen.ud, "#UD for movups with CR4.OSFXSR clear");

	write_cr0(read_cr0() | CR0_TS);
	ran = run_user(user_nm, "movups/addps with CR0.TS set");
	uint64_t cr0 = read_cr0();
	write_cr0(cr0 & ~CR0_TS);
	kprintf("sse: #NM with CR0.TS set: count %u rip 0x%lx, cr0 0x%lx after\n", seen.nm,
		seen.nm_rip, cr0);
	if (ran) {
		static const struct v128 want = { { F_4_0, F_1_0, F_4_0, F_1_0 } };
		expect_exception(seen.nm, "#NM for movups with CR0.TS set");
		expect_v("the instruction retried after clts", &R.nm_sum, &want);
	}
	pass();
}
