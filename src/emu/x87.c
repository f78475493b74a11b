/* x87 (D8-DF). Each instruction runs on the host's own x87 unit: the
 * guest's x87/SSE state (cpu->fxsave) is loaded with FXRSTOR64, one
 * precompiled copy of the instruction runs (memory forms rewritten to use
 * a host buffer at [rax], which holds the operand read from, or to be
 * written to, guest memory), and FXSAVE64 takes the state back; the host's
 * own state is saved and restored around it. So every result, flag,
 * rounding and precision control, tag and stack effect is the hardware's,
 * transcendental instructions included.
 *
 * Checked here first: CR0.EM/TS (#NM); a pending unmasked exception
 * (FSW.ES) makes every waiting instruction raise #MF (whatever CR0.NE:
 * the FERR#/IRQ 13 path is not modelled) — which also keeps the host
 * from ever trapping; the reserved register forms are #UD. The pointer
 * fields (FIP/FCS/FDP/FDS) are the guest's: the instruction's RIP and
 * memory operand, in FXSAVE and in FNSTENV/FNSAVE images (those use the
 * protected-mode layouts, in real mode too). */
#include "sse.h"
#include "flags.h"

#include <string.h>

#if EMU_HAVE_SIMD

#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)

/* The stubs: [0, 64) memory forms (op - D8) * 8 + reg with ModRM [rax];
 * [64, 576) register forms 64 + (op - D8) * 64 + (ModRM - C0); 576..579
 * the 16-bit FLDENV FNSTENV FRSTOR FNSAVE. 4 bytes each, ending in RET. */
asm(".pushsection .text\n"
    ".balign 16\n"
    "emu_x87_stubs:\n"
    ".irp op, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf\n"
    ".irp r, 0, 1, 2, 3, 4, 5, 6, 7\n"
    ".byte \\op, (\\r << 3), 0xc3, 0xcc\n"
    ".endr\n"
    ".endr\n"
    ".irp op, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf\n"
    ".set emu_x87_m, 0xc0\n"
    ".rept 64\n"
    ".byte \\op, emu_x87_m, 0xc3, 0xcc\n"
    ".set emu_x87_m, emu_x87_m + 1\n"
    ".endr\n"
    ".endr\n"
    ".byte 0x66, 0xd9, 0x20, 0xc3\n"
    ".byte 0x66, 0xd9, 0x30, 0xc3\n"
    ".byte 0x66, 0xdd, 0x20, 0xc3\n"
    ".byte 0x66, 0xdd, 0x30, 0xc3\n"
    /* void emu_x87_host(void *guest, void *host, unsigned index, uint64_t io[2])
     * io[0]: RFLAGS in and out; io[1]: RAX in and out */
    ".globl emu_x87_host\n"
    ".hidden emu_x87_host\n"
    ".type emu_x87_host, @function\n"
    "emu_x87_host:\n"
    "push %rbx\n"
    "push %r12\n"
    "push %r13\n"
    "mov %rdi, %r12\n"
    "mov %rsi, %r13\n"
    "mov %rcx, %rbx\n"
    "fxsave64 (%r13)\n"
    "fxrstor64 (%r12)\n"
    "lea emu_x87_stubs(%rip), %rcx\n"
    "mov %edx, %edx\n"
    "lea (%rcx, %rdx, 4), %rcx\n"
    "pushq (%rbx)\n"
    "popfq\n"
    "mov 8(%rbx), %rax\n"
    "call *%rcx\n"
    "pushfq\n"
    "popq (%rbx)\n"
    "mov %rax, 8(%rbx)\n"
    "fxsave64 (%r12)\n"
    "fxrstor64 (%r13)\n"
    "cld\n"
    "pop %r13\n"
    "pop %r12\n"
    "pop %rbx\n"
    "ret\n"
    ".size emu_x87_host, . - emu_x87_host\n"
    ".popsection\n");

void emu_x87_host(void *guest, void *host, unsigned index, uint64_t io[2]);

/* The register forms that exist (a bit per ModRM C0-FF). */
static bool reg_form_ok(unsigned op, unsigned m)
{
	switch (op) {
	case 0xd8: return true;
	case 0xd9: return m < 0xd1 || m == 0xe0 || m == 0xe1 || m == 0xe4 || m == 0xe5 ||
			  (m >= 0xe8 && m <= 0xee) || m >= 0xf0;
	case 0xda: return m < 0xe0 || m == 0xe9;
	case 0xdb: return m < 0xe0 || m == 0xe2 || m == 0xe3 || (m >= 0xe8 && m < 0xf8);
	case 0xdc: return m < 0xd0 || m >= 0xe0;
	case 0xdd: return m < 0xc8 || (m >= 0xd0 && m < 0xf0);
	case 0xde: return m < 0xd0 || m == 0xd9 || m >= 0xe0;
	default: return m == 0xe0 || (m >= 0xe8 && m < 0xf8);
	}
}

/* Memory forms: operand size, and whether it is read (else written). */
static unsigned mem_size(unsigned op, unsigned reg, bool o16, bool *read)
{
	static const uint8_t sz[8][8] = {
		{ 4, 4, 4, 4, 4, 4, 4, 4 },       /* D8 m32fp */
		{ 4, 0, 4, 4, 28, 2, 28, 2 },     /* D9 FLD FST FSTP FLDENV FLDCW FNSTENV FNSTCW */
		{ 4, 4, 4, 4, 4, 4, 4, 4 },       /* DA m32int */
		{ 4, 4, 4, 4, 0, 10, 0, 10 },     /* DB FILD FISTTP FIST FISTP FLD80 FSTP80 */
		{ 8, 8, 8, 8, 8, 8, 8, 8 },       /* DC m64fp */
		{ 8, 8, 8, 8, 108, 0, 108, 2 },   /* DD FLD FISTTP FST FSTP FRSTOR FNSAVE FNSTSW */
		{ 2, 2, 2, 2, 2, 2, 2, 2 },       /* DE m16int */
		{ 2, 2, 2, 2, 10, 8, 10, 8 },     /* DF FILD FISTTP FIST FISTP FBLD FILD64 FBSTP FISTP64 */
	};
	unsigned s = sz[op - 0xd8][reg];

	*read = true;
	if ((op == 0xd9 && (reg == 2 || reg == 3 || reg >= 6)) || (op == 0xdb && (reg == 1 || reg == 2 || reg == 3 || reg == 7)) ||
	    (op == 0xdd && (reg == 1 || reg == 2 || reg == 3 || reg >= 6)) || (op == 0xdf && reg != 0 && reg != 4 && reg != 5))
		*read = false;
	if (o16 && s == 28)
		s = 14;
	if (o16 && s == 108)
		s = 94;
	return s;
}

/* An FNSTENV/FNSAVE image: the pointers the guest's, not the host's. */
static void patch_env(struct ctx *c, uint8_t *env, bool o16, uint64_t fip, uint64_t fdp)
{
	struct emu_cpu *cpu = c->cpu;
	uint16_t cs = cpu->seg[SR_CS].sel, ds = cpu->seg[c->seg].sel;

	if (o16) {
		uint16_t ip = fip, dp = fdp;
		memcpy(env + 6, &ip, 2);
		memcpy(env + 8, &cs, 2);
		memcpy(env + 10, &dp, 2);
		memcpy(env + 12, &ds, 2);
	} else {
		uint32_t ip = fip, dp = fdp;
		memcpy(env + 12, &ip, 4);
		memcpy(env + 16, &cs, 2);
		memcpy(env + 20, &dp, 4);
		memcpy(env + 24, &ds, 2);
	}
}

int emu_exec_x87(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	unsigned op = in->op, reg = in->reg & 7, modrm = 0xc0 | reg << 3 | (in->rm & 7);
	bool mem = is_mem(c), o16 = in->opsize == 2, read = false, control;
	uint8_t state[512] __attribute__((aligned(16)));
	uint8_t host[512] __attribute__((aligned(16)));
	uint8_t buf[128] __attribute__((aligned(16)));
	uint64_t io[2], linear = 0;
	unsigned size = 0, index;
	uint16_t fsw, fcw;
	int err;

	if (cpu->cr0 & (CR0_EM | CR0_TS))
		return emu_fault(cpu, EXC_NM, false, 0);
	if (!mem && !reg_form_ok(op, modrm))
		return ud(c);
	/* the control instructions (which keep the pointers); FN* do not wait */
	control = mem ? ((op == 0xd9 && reg >= 4) || (op == 0xdd && (reg == 4 || reg == 6 || reg == 7)))
		      : ((op == 0xdb && (modrm == 0xe2 || modrm == 0xe3)) || (op == 0xdf && modrm == 0xe0));
	memcpy(&fsw, cpu->fxsave + 2, 2);
	memcpy(&fcw, cpu->fxsave, 2);
	if (((fsw & 0x80) || (fsw & ~fcw & 0x3f)) && !(control && (mem ? (reg == 6 || reg == 7) : true)))
		return emu_fault(cpu, EXC_MF, false, 0);

	memset(buf, 0, sizeof(buf));
	if (mem) {
		size = mem_size(op, reg, o16, &read);
		if ((err = emu_linear(cpu, c->seg, c->ea, size, read ? ACC_READ : ACC_WRITE, &linear)))
			return err;
		if (read && (err = emu_read_linear(cpu, linear, buf, size, ACC_READ)))
			return err;
		index = (op - 0xd8) * 8 + reg;
		if (o16 && size == 14)
			index = 576 + (reg == 6);
		else if (o16 && size == 94)
			index = 578 + (reg == 6);
		io[1] = (uint64_t)(uintptr_t)buf;
	} else {
		index = 64 + (op - 0xd8) * 64 + (modrm - 0xc0);
		io[1] = GPR(c, X86_RAX);
	}
	io[0] = 0x2 | (emu_flags_get(cpu) & FL_ARITH);
	memcpy(state, cpu->fxsave, 512);
	state[26] = state[27] = 0;     /* MXCSR: never a reserved bit (#GP) into the host */
	/* FOP: a value no D8-DF memory form or valid register form has, to
	 * see whether the host recorded one (some only do on exceptions) */
	if (!control) {
		state[6] = 0xff;
		state[7] = 0x07;
	}
	emu_x87_host(state, host, index, io);
	if (!control && state[6] == 0xff && state[7] == 0x07)
		memcpy(state + 6, cpu->fxsave + 6, 2);

	/* an unmasked exception (but precision) leaves memory unwritten */
	memcpy(&fsw, state + 2, 2);
	memcpy(&fcw, state, 2);
	if (mem && !read && (control || !(fsw & ~fcw & 0x1f))) {
		if (size == 14 || size == 28 || size == 94 || size == 108)
			patch_env(c, buf, o16, cpu->rip, c->ea);
		if ((err = emu_write_linear(cpu, linear, buf, size, ACC_WRITE)))
			return err;
	}
	if (!control) {
		/* the last instruction's pointers, in FXSAVE64's layout */
		uint64_t fdp = mem ? c->ea : 0;
		uint16_t fop;
		memcpy(state + 8, &cpu->rip, 8);
		memcpy(state + 16, &fdp, 8);
		/* the opcode: the guest's ModRM, if the host recorded the stub's */
		memcpy(&fop, state + 6, 2);
		if (mem && fop == ((op & 7) << 8 | reg << 3) && (fop || (fsw & 0x80))) {
			fop = (op & 7) << 8 | in->mod << 6 | reg << 3 | (in->rm & 7);
			memcpy(state + 6, &fop, 2);
		}
	}
	memcpy(cpu->fxsave, state, 464);
	if (!mem && op == 0xdf && modrm == 0xe0)                 /* FNSTSW AX */
		reg_write(c, X86_RAX, 2, io[1]);
	if (!mem && (op == 0xdb || op == 0xdf) && modrm >= 0xe8 && modrm < 0xf8)  /* F(U)COMI(P) */
		emu_flags_update(cpu, FL_ARITH, io[0] & (FL_ZF | FL_PF | FL_CF));
	return 0;
}

#else

int emu_exec_x87(struct ctx *c)
{
	return ud(c);
}

#endif
