/* Translation to host code: the code buffer (a memfd mapped twice) and
 * the emitter for register-only ALU and MOV (jit.h). */
#include "jit.h"
#include "exec.h"
#include "flags.h"
#include "icache.h"

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define JIT_BYTES (64u << 20)
#define JIT_BLOCK_MAX 16384u   /* bytes of host code a block may take, at most */
#define JIT_INSN_MAX 320u      /* bytes of host code per instruction, at most */
#define JIT_EXIT_MAX 24u       /* bytes of host code per exit, at most */
#define JIT_TAIL_MAX 64u       /* bytes of the exits' common tails, at most */
#define JIT_LINK_MAX 384u      /* bytes of a linkable exit (record, stub, hop), at most */
#define JIT_LINKS 8u           /* linkable exits of a block, at most */
#define JIT_ENTRY_SKIP 14u     /* bytes of the prologue's pushes and mov rbx, rdi */
#define JIT_LOOP_MAX 160u      /* bytes of host code per loop-back stub, at most */
#define JIT_EXITS (3 * EMU_JIT_MAX_INSNS) /* exits of a block, at most */
#define JIT_HOT 8u             /* entries before a block is translated */
#define JIT_MIN_PREFIX 4u      /* instructions, unless the prefix is the whole block */

struct emu_jit_buf {
	uint8_t *rw, *rx;      /* the same pages: written through rw, run through rx */
	uint32_t used;
	uint32_t base;         /* the dispatcher's bytes at the start: what a reset keeps */
	uint32_t dispatch;     /* the dispatcher's entry (emit_dispatcher) */
	const uint64_t *session; /* the cache's current session (struct emu_icache) */
	/* Bumped by every reset and emu_jit_buf_forget(): a jump-cache entry
	 * of an older epoch names code that is gone, or a block that holds
	 * other code now (cpu.h: struct emu_jcache_entry). */
	uint64_t epoch;
};

static void emit_dispatcher(struct emu_jit_buf *j);

static atomic_int jit_switch = -1; /* -1: not decided yet; 2: every prefix (tests) */
static atomic_uint_fast64_t jit_count;

void emu_jit_set(bool on)
{
	atomic_store(&jit_switch, on ? 1 : 0);
}

bool emu_jit_on(void)
{
	int s = atomic_load(&jit_switch);

	if (s < 0) {
		const char *e = getenv("KUMO_EMU_JIT");
		s = e && (e[0] == '0' || e[0] == '2') && !e[1] ? e[0] - '0' : 1;
		atomic_store(&jit_switch, s);
	}
	return s >= 1;
}

unsigned emu_jit_hot(void)
{
	return atomic_load(&jit_switch) == 2 ? 1 : JIT_HOT;
}

void emu_jit_set_every_prefix(void)
{
	atomic_store(&jit_switch, 2);
}

uint64_t emu_jit_translated(void)
{
	return atomic_load(&jit_count);
}

struct emu_jit_buf *emu_jit_buf_new(const uint64_t *session)
{
	struct emu_jit_buf *j = calloc(1, sizeof(*j));
	int fd;

	if (!j)
		return NULL;
	j->session = session;
	fd = memfd_create("kumo-emu-jit", MFD_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (ftruncate(fd, JIT_BYTES) < 0)
		goto fail_fd;
	j->rw = mmap(NULL, JIT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (j->rw == MAP_FAILED)
		goto fail_fd;
	j->rx = mmap(NULL, JIT_BYTES, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (j->rx == MAP_FAILED) {
		munmap(j->rw, JIT_BYTES);
		goto fail_fd;
	}
	close(fd); /* the mappings keep the memory */
	j->epoch = 1;
	emit_dispatcher(j);
	return j;
fail_fd:
	close(fd);
fail:
	free(j);
	return NULL;
}

void emu_jit_buf_free(struct emu_jit_buf *j)
{
	if (!j)
		return;
	munmap(j->rw, JIT_BYTES);
	munmap(j->rx, JIT_BYTES);
	free(j);
}

void emu_jit_buf_reset(struct emu_jit_buf *j)
{
	j->used = j->base;
	j->epoch++;
}

void emu_jit_buf_forget(struct emu_jit_buf *j)
{
	j->epoch++;
}

bool emu_jit_buf_room(const struct emu_jit_buf *j)
{
	return j->used + JIT_BLOCK_MAX <= JIT_BYTES;
}

/* ---- the emitter ---- */

struct emit {
	uint8_t *p;
	/* Register homes: the host register guest register r lives in for
	 * the whole translated prefix (loaded by the prologue, stored back by
	 * the exits and around helpers), -1 for one that stays in cpu->gpr. */
	int8_t home[16];
	uint16_t written;       /* homes written somewhere: the exits store them */
};

static void b1(struct emit *e, uint8_t v)
{
	*e->p++ = v;
}

static void b4(struct emit *e, uint32_t v)
{
	memcpy(e->p, &v, 4);
	e->p += 4;
}

static void b8(struct emit *e, uint64_t v)
{
	memcpy(e->p, &v, 8);
	e->p += 8;
}

/* Host registers the code uses: RDI holds cpu (RBX keeps it across
 * helper calls); RAX, RCX, RDX and RSI are scratch; R8-R11, RBP and
 * R12-R15 are homes of guest registers (jit_homes()); the prologue
 * pushes every callee-saved one, whether used or not. */
enum { H_RAX = 0, H_RCX = 1, H_RDX = 2, H_RBX = 3, H_RBP = 5, H_RSI = 6, H_RDI = 7 };
static const uint8_t home_regs[] = { 8, 9, 10, 11, H_RBP, 12, 13, 14, 15 };
#define JIT_HOMES ARRAY_SIZE(home_regs)

/* The TLB probe below computes emu_tlb_set() and indexes the entries
 * itself: it must agree with cpu.h. */
_Static_assert(sizeof(struct emu_tlb_entry) == 64 && EMU_TLB_WAYS == 2 && EMU_TLB_SETS == 256,
	       "the JIT's TLB probe assumes 256 sets of two 64-byte entries");
_Static_assert(offsetof(struct emu_tlb_entry, wtag) + 64 < 128 && offsetof(struct emu_tlb_entry, rtag) + 64 < 128 &&
	       offsetof(struct emu_tlb_entry, addend) < 128,
	       "the JIT's TLB probe reaches the entry's fields with 8-bit displacements");
_Static_assert(offsetof(struct emu_cpu, gpr) + 8 * 16 <= 128,
	       "the JIT reaches the guest's registers with 8-bit displacements");

/* [REX] op ModRM(11, reg, rm) on host registers 0-15; op 0x0fXX is a
 * two-byte opcode. */
static void rr(struct emit *e, unsigned size, unsigned op, unsigned reg, unsigned rm)
{
	unsigned rex = (size == 8 ? 8u : 0u) | (reg >> 3) << 2 | rm >> 3;

	if (rex)
		b1(e, (uint8_t)(0x40 | rex));
	if (op > 0xff)
		b1(e, (uint8_t)(op >> 8));
	b1(e, (uint8_t)op);
	b1(e, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* [REX] op ModRM with cpu->gpr[r] ([rdi + 8r]: mod 01, rm 111, disp8),
 * host register h in the reg field */
static void gpr_mem(struct emit *e, unsigned size, unsigned op, unsigned h, unsigned r)
{
	unsigned rex = (size == 8 ? 8u : 0u) | (h >> 3) << 2;

	if (rex)
		b1(e, (uint8_t)(0x40 | rex));
	if (op > 0xff)
		b1(e, (uint8_t)(op >> 8));
	b1(e, (uint8_t)op);
	b1(e, (uint8_t)(0x47 | (h & 7) << 3));
	b1(e, (uint8_t)(offsetof(struct emu_cpu, gpr) + 8 * r));
}

static bool homed(const struct emit *e, unsigned r)
{
	return e->home[r] >= 0;
}

/* op h, guest r: on r's home, or on cpu->gpr[r] */
static void gpr_op(struct emit *e, unsigned size, unsigned op, unsigned h, unsigned r)
{
	if (homed(e, r))
		rr(e, size, op, h, (unsigned)e->home[r]);
	else
		gpr_mem(e, size, op, h, r);
}

/* Every home into cpu->gpr (mask: which), or back from it. */
static void homes_out(struct emit *e, uint16_t mask)
{
	for (unsigned r = 0; r < 16; r++)
		if (homed(e, r) && (mask >> r & 1))
			gpr_mem(e, 8, 0x89, (unsigned)e->home[r], r);
}

static void homes_in(struct emit *e)
{
	for (unsigned r = 0; r < 16; r++)
		if (homed(e, r))
			gpr_mem(e, 8, 0x8b, (unsigned)e->home[r], r);
}

/* A field of cpu at off: ModRM mod 10, rm 111 (RDI), disp32 */
static void cpu_operand(struct emit *e, unsigned reg_field, size_t off)
{
	b1(e, (uint8_t)(0x87 | (reg_field << 3)));
	b4(e, (uint32_t)off);
}

/* host h = the 64-bit field of cpu at off */
static void load_cpu(struct emit *e, unsigned h, size_t off)
{
	b1(e, 0x48);
	b1(e, 0x8b);
	cpu_operand(e, h, off);
}

/* the 64-bit field of cpu at off = host h */
static void store_cpu(struct emit *e, unsigned h, size_t off)
{
	b1(e, 0x48);
	b1(e, 0x89);
	cpu_operand(e, h, off);
}

static void rex_w(struct emit *e, unsigned size)
{
	if (size == 8)
		b1(e, 0x48);
}

/* host h (the low 32 bits zero-extended for 4) = guest r */
static void load_to(struct emit *e, unsigned size, unsigned h, unsigned r)
{
	gpr_op(e, size, 0x8b, h, r);
}

static void load(struct emit *e, unsigned size, unsigned r)
{
	load_to(e, size, H_RAX, r);
}

/* guest r = host h (all 64 bits: after a 32-bit operation they are zero-extended) */
static void store_from(struct emit *e, unsigned h, unsigned r)
{
	gpr_op(e, 8, 0x89, h, r);
	if (homed(e, r))
		e->written |= (uint16_t)(1u << r);
}

static void store(struct emit *e, unsigned r)
{
	store_from(e, H_RAX, r);
}

/* rax = imm: movabs for what a sign-extended imm32 cannot say */
static void mov_imm(struct emit *e, unsigned size, uint64_t imm)
{
	if (size == 4) {
		b1(e, 0xb8);
		b4(e, (uint32_t)imm);
	} else if ((uint64_t)(int64_t)(int32_t)imm == imm) {
		b1(e, 0x48);
		b1(e, 0xc7);
		b1(e, 0xc0);
		b4(e, (uint32_t)imm);
	} else {
		b1(e, 0x48);
		b1(e, 0xb8);
		b8(e, imm);
	}
}

/* lea rax, [rax + disp32] (flags untouched) */
static void add_rax(struct emit *e, int32_t disp)
{
	b1(e, 0x48);
	b1(e, 0x8d);
	b1(e, 0x80);
	b4(e, (uint32_t)disp);
}

static bool imm_fits(unsigned size, uint64_t imm)
{
	return size <= 4 || (uint64_t)(int64_t)(int32_t)imm == imm;
}

/* The immediate of an operation of size bytes (8: a sign-extended imm32) */
static void imm_of(struct emit *e, unsigned size, uint64_t imm)
{
	if (size == 1) {
		b1(e, (uint8_t)imm);
	} else if (size == 2) {
		b1(e, (uint8_t)imm);
		b1(e, (uint8_t)(imm >> 8));
	} else {
		b4(e, (uint32_t)imm);
	}
}

/* OR, AND, XOR: the interpreter clears AF (JIT_FLAGS_LOGIC) */
static bool alu_logic(unsigned alu)
{
	return alu == 1 || alu == 4 || alu == 6;
}

/* Group-1 operations the emitter takes: not ADC (2), SBB (3). */
static bool alu_ok(unsigned alu)
{
	return alu != 2 && alu != 3;
}

/* ---- a block's translation: flags, exits ---- */

/* Where the code leaves to emu_run: one stub each, after the body. */
struct jit_exit {
	uint8_t *rel[8];        /* rel32 fields of the branches that lead here */
	unsigned nrel;
	unsigned k, kind;       /* instructions completed; enum emu_jit_flags */
	uint32_t bytes;         /* their guest bytes */
	bool save;              /* the flags are in the host's RFLAGS only: save them */
	bool taken;             /* EMU_JIT_TAKEN */
	bool stop;              /* EMU_JIT_STOP: after a helper, RIP set */
	bool loop;              /* a taken Jcc to the block's start: loop back if allowed */
	uint32_t synced;        /* (loop) the bytes RIP is ahead of the block's start */
	bool status;            /* the helper's status in EAX goes into the value */
	bool link;              /* a static target: linkable (emu_jit_link) */
	int32_t target;         /* (link) the target, bytes from the block's start */
	int32_t delta;          /* (link) the target, bytes from cpu->rip at the exit */
};

/* A linkable exit's record, in the code buffer in front of its stub
 * (never run: only jumps reach the stub). Offsets are from the start of
 * the block's function. The stub starts with a jump to the ordinary
 * exit, which linking turns into a jump to the hop: the checks (budget,
 * stop, the linked block still valid), then the flags into the CPU's
 * state, RIP to the target, the homes stored and a jump into the linked
 * block's code past its pushes. */
struct jit_link {
	uint32_t activate;      /* the rel32 of the stub's first jump */
	uint32_t blk, fn;       /* the imm64s of the linked block and its code */
	uint32_t jmp;           /* the rel32 of the jump into its code */
	uint32_t hop;
	int32_t target;
	uint64_t to, to_fn;     /* what it is linked to (0: nothing) */
};

/* Every exit ends in a jump to one of the block's two tails: the first
 * stores the homes written (jit_homes) into cpu->gpr, then falls into
 * the second, which pops what the prologue pushed and returns. The exits
 * right after a helper take the second: cpu->gpr is the truth there. */
struct jit_tail_jump {
	uint8_t *rel;
	bool store;
};

struct jit {
	struct emit e;
	/* The guest's arithmetic flags, when the prefix has written them
	 * (kind != JIT_FLAGS_NONE), are in the host's RFLAGS (in_host), in
	 * cpu->jit_flags (in_mem), or both; never in neither. A memory
	 * access's TLB probe clobbers the host's: they are saved first. */
	unsigned kind;
	bool in_host, in_mem;
	bool guarded;           /* the CPL the accesses assume is checked */
	uint8_t cpl;            /* the CPL the block was translated at */
	unsigned k;             /* the instruction being emitted */
	uint32_t bytes;         /* the guest bytes before it */
	uint32_t synced;        /* the bytes already added to cpu->rip (before a helper) */
	int bail;               /* its exit to the interpreter (index), -1 none yet */
	struct jit_exit exits[JIT_EXITS];
	unsigned nexits;
	uint8_t *loop_start;    /* the first instruction's code (after the prologue) */
	unsigned nloops;        /* loop exits so far */
	struct jit_tail_jump tails[JIT_EXITS + 2 * EMU_JIT_MAX_INSNS];
	unsigned ntails;
	unsigned nlinks;        /* linkable exits so far */
	/* The flags a pass starts with: -1 not known yet, 0 read (by a
	 * helper) or left with (an exit before any flag writer), 1 dead (a
	 * flag writer comes first): a loop back then need not hand the
	 * flags over to the CPU's state. */
	int8_t entry_flags;
	const uint64_t *session; /* struct emu_jit_buf's */
};

static struct jit_exit *new_exit(struct jit *j, unsigned k, bool taken, uint32_t bytes);

/* Makes x (a taken branch's, or the fall-through at the block's end)
 * linkable, to the target `target` bytes from the block's start, while
 * the block has room for another. */
static void link_exit(struct jit *j, struct jit_exit *x, int64_t target)
{
	if (j->nlinks >= JIT_LINKS || target != (int32_t)target)
		return;
	x->link = true;
	x->target = (int32_t)target;
	x->delta = (int32_t)(target - j->synced);
	j->nlinks++;
}

/* The target of in (a Jcc, JMP or CALL rel at j->bytes), in bytes from
 * the block's start. */
static int64_t branch_target(const struct jit *j, const struct emu_insn *in)
{
	return (int64_t)j->bytes + in->len + (int64_t)in->imm;
}

/* x, the exit of in (a taken Jcc or JMP rel): a loop when in goes back to
 * the block's start, else linkable. */
static void branch_exit(struct jit *j, struct jit_exit *x, const struct emu_insn *in)
{
	if (branch_target(j, in) == 0) {
		x->loop = true;
		x->synced = j->synced;
		j->nloops++;
	} else {
		link_exit(j, x, branch_target(j, in));
	}
}

static struct jit_exit *new_exit(struct jit *j, unsigned k, bool taken, uint32_t bytes)
{
	struct jit_exit *x = &j->exits[j->nexits++];

	if (j->entry_flags < 0 && j->kind == JIT_FLAGS_NONE)
		j->entry_flags = 0;

	*x = (struct jit_exit){ .k = k, .kind = j->kind, .bytes = bytes - j->synced, .taken = taken,
				.save = j->kind != JIT_FLAGS_NONE && !j->in_mem };
	return x;
}

/* jcc rel32 (cc: the low nibble of 0F 8x) to x */
static void jcc_to(struct jit *j, struct jit_exit *x, unsigned cc)
{
	b1(&j->e, 0x0f);
	b1(&j->e, (uint8_t)(0x80 | cc));
	assert(x->nrel < ARRAY_SIZE(x->rel));
	x->rel[x->nrel++] = j->e.p;
	b4(&j->e, 0);
}

/* jmp rel32 to x */
static void jmp_to(struct jit *j, struct jit_exit *x)
{
	b1(&j->e, 0xe9);
	assert(x->nrel < ARRAY_SIZE(x->rel));
	x->rel[x->nrel++] = j->e.p;
	b4(&j->e, 0);
}

enum { CC_NE = 0x5, CC_E = 0x4, CC_A = 0x7, CC_B = 0x2 };

/* A branch to the interpreter: the instruction being emitted is not
 * done, nothing of it was (its checks come before its effects). */
static void bail_if(struct jit *j, unsigned cc)
{
	if (j->bail < 0)
		j->bail = (int)(new_exit(j, j->k, false, j->bytes) - j->exits);
	jcc_to(j, &j->exits[j->bail], cc);
}

/* pushfq; pop qword [rdi + jit_flags] */
static void save_flags(struct emit *e)
{
	b1(e, 0x9c);
	b1(e, 0x8f);
	cpu_operand(e, 0, offsetof(struct emu_cpu, jit_flags));
}

/* The host's RFLAGS are about to be overwritten by something not the
 * guest's: keep the guest's in cpu->jit_flags. */
static void clobber_flags(struct jit *j)
{
	if (j->kind != JIT_FLAGS_NONE && !j->in_mem) {
		save_flags(&j->e);
		j->in_mem = true;
	}
	j->in_host = false;
}

/* Something reads the guest's flags in the host's RFLAGS (Jcc, INC/DEC). */
static void flags_to_host(struct jit *j)
{
	if (j->kind != JIT_FLAGS_NONE && !j->in_host) {
		b1(&j->e, 0xff);                  /* push qword [rdi + jit_flags] */
		cpu_operand(&j->e, 6, offsetof(struct emu_cpu, jit_flags));
		b1(&j->e, 0x9d);                  /* popfq */
		j->in_host = true;
	}
}

static void flags_written(struct jit *j, bool logic)
{
	if (j->entry_flags < 0)
		j->entry_flags = 1;
	j->kind = logic ? JIT_FLAGS_LOGIC : JIT_FLAGS_ARITH;
	j->in_host = true;
	j->in_mem = false;
}

/* Called from translated code: the guest's arithmetic flags (and bit 1)
 * from cpu->rflags and the lazy state a helper or the interpreter left. */
static uint64_t jit_arith_flags(const struct emu_cpu *cpu)
{
	return (emu_flags_get(cpu) & FL_ARITH) | 0x2;
}

/* An instruction about to read the guest's flags in the host's RFLAGS
 * (Jcc, SETcc, CMOVcc, ADC/SBB, shifts by CL, INC/DEC, BTS...): from the
 * prefix's, or, where the prefix has written none, from the CPU's state
 * (a call; the caller-saved homes kept around it). Then they are the
 * prefix's: in the host, as exact as an arithmetic instruction's. */
static void flags_for_reader(struct jit *j)
{
	struct emit *e = &j->e;
	uint8_t saved[4];
	unsigned n = 0;

	if (j->kind != JIT_FLAGS_NONE) {
		flags_to_host(j);
		return;
	}
	if (j->entry_flags < 0)
		j->entry_flags = 0; /* read at entry: a loop back hands them over */
	for (unsigned r = 0; r < 16; r++)
		if (homed(e, r) && e->home[r] >= 8 && e->home[r] <= 11)
			saved[n++] = (uint8_t)e->home[r];
	for (unsigned i = 0; i < n; i++) {
		b1(e, 0x41);                          /* push r8-r11 */
		b1(e, (uint8_t)(0x50 | (saved[i] & 7)));
	}
	if (n & 1) {
		b1(e, 0x48);                          /* sub rsp, 8: aligned for the call */
		b1(e, 0x83);
		b1(e, 0xec);
		b1(e, 8);
	}
	b1(e, 0x48);                                  /* mov rax, jit_arith_flags */
	b1(e, 0xb8);
	b8(e, (uint64_t)(uintptr_t)jit_arith_flags);
	b1(e, 0xff);                                  /* call rax */
	b1(e, 0xd0);
	b1(e, 0x48);                                  /* mov rdi, rbx */
	b1(e, 0x89);
	b1(e, 0xdf);
	if (n & 1) {
		b1(e, 0x48);                          /* add rsp, 8 */
		b1(e, 0x83);
		b1(e, 0xc4);
		b1(e, 8);
	}
	for (unsigned i = n; i-- > 0;) {
		b1(e, 0x41);                          /* pop */
		b1(e, (uint8_t)(0x58 | (saved[i] & 7)));
	}
	b1(e, 0x50);                                  /* push rax; popfq */
	b1(e, 0x9d);
	j->kind = JIT_FLAGS_ARITH;
	j->in_host = true;
	j->in_mem = false;
}

/* ---- memory operands ---- */

/* rax = the operand's effective address, segment base included (64-bit
 * addressing only; RIP-relative from cpu->rip, the prefix's first
 * instruction, `at` bytes before this one). Flags untouched. */
static bool emit_ea(struct emit *e, const struct emu_insn *in, unsigned at)
{
	int64_t disp = in->disp;

	if (in->mod == 3 || in->addrsize != 8 || !in->scale || (in->scale & (in->scale - 1)) ||
	    in->scale > 8)
		return false;
	if (in->rip_relative) {
		disp += at + in->len;
		load_cpu(e, H_RAX, offsetof(struct emu_cpu, rip));
	} else if (in->base >= 0) {
		load(e, 8, (unsigned)in->base);
	} else {
		b1(e, 0xb8);                          /* mov eax, 0 */
		b4(e, 0);
	}
	if (disp != (int32_t)disp)
		return false;
	if (in->index >= 0) {
		load_to(e, 8, H_RCX, (unsigned)in->index);
		b1(e, 0x48);                          /* lea rax, [rax + rcx * scale + disp32] */
		b1(e, 0x8d);
		b1(e, 0x84);
		b1(e, (uint8_t)(__builtin_ctz(in->scale) << 6 | 1 << 3 | 0));
		b4(e, (uint32_t)(int32_t)disp);
	} else {
		add_rax(e, (int32_t)disp);
	}
	if (in->seg == SR_FS || in->seg == SR_GS) {
		load_cpu(e, H_RCX, offsetof(struct emu_cpu, seg) + in->seg * sizeof(struct x86_seg) +
				      offsetof(struct x86_seg, base)); /* mov rcx, [rdi + seg base] */
		b1(e, 0x48);                          /* lea rax, [rax + rcx] */
		b1(e, 0x8d);
		b1(e, 0x04);
		b1(e, 0x08);
	}
	return true;
}

/* The software TLB's hit path (exec.h: emu_tlb_fast), inline: rax holds
 * the linear address of a size-byte access; on a hit rdx = its host
 * address, else the instruction goes to the interpreter, which walks the
 * page tables, raises the faults, and does MMIO and stores into code.
 * One compare per way, as QEMU's softmmu does: the page of the access's
 * last byte, | 1 (| 2 at CPL 3), against the entry's tag for the access
 * (cpu.h: emu_tlb_entry_tags), which is 0 where the inline path may not
 * be taken; an access that crosses into the next page never matches,
 * since that page's entry is never in the set of the first (emu_tlb_set).
 * Stricter than emu_tlb_fast: the page's U bit must be what the CPL says
 * (a supervisor access to a user page goes to the interpreter, so SMAP
 * needs no thought here; trying a user page's tag too at CPL 0, inline,
 * made fio rand-read 10-15% slower: the longer probe in every block).
 * rax is kept; rcx, rsi and the flags are not. */
static void emit_probe(struct jit *j, unsigned size, bool write)
{
	struct emit *e = &j->e;
	unsigned tag = write ? offsetof(struct emu_tlb_entry, wtag) : offsetof(struct emu_tlb_entry, rtag);

	if (!j->guarded) { /* the CPL this code's U checks assume */
		b1(e, 0x80);                          /* cmp byte [rdi + cpl], imm8 */
		cpu_operand(e, 7, offsetof(struct emu_cpu, cpl));
		b1(e, j->cpl);
		bail_if(j, CC_NE);
		j->guarded = true;
	}
	static const uint8_t hash[] = {
		0x48, 0x89, 0xc6,                     /* mov rsi, rax */
		0x48, 0xc1, 0xee, 0x0c,               /* shr rsi, 12: the page */
		0x48, 0x89, 0xf2,                     /* mov rdx, rsi */
		0x48, 0xc1, 0xea, 0x08,               /* shr rdx, 8 */
		0x48, 0x89, 0xf1,                     /* mov rcx, rsi */
		0x48, 0xc1, 0xe9, 0x10,               /* shr rcx, 16 */
		0x48, 0x01, 0xca,                     /* add rdx, rcx */
		0x48, 0x01, 0xf2,                     /* add rdx, rsi */
		0x0f, 0xb6, 0xd2,                     /* movzx edx, dl: the set */
		0xc1, 0xe2, 0x07,                     /* shl edx, 7: its two entries */
	};
	memcpy(e->p, hash, sizeof(hash));
	e->p += sizeof(hash);
	b1(e, 0x48);                                  /* lea rdx, [rdi + rdx + tlb] */
	b1(e, 0x8d);
	b1(e, 0x94);
	b1(e, 0x17);
	b4(e, (uint32_t)offsetof(struct emu_cpu, tlb));
	b1(e, 0x48);                                  /* lea rsi, [rax + size - 1] */
	b1(e, 0x8d);
	b1(e, 0x70);
	b1(e, (uint8_t)(size - 1));
	b1(e, 0x48);                                  /* and rsi, -4096 */
	b1(e, 0x81);
	b1(e, 0xe6);
	b4(e, 0xfffff000u);
	b1(e, 0x48);                                  /* or rsi, 1 (| 2 at CPL 3) */
	b1(e, 0x83);
	b1(e, 0xce);
	b1(e, j->cpl == 3 ? 3 : 1);
	b1(e, 0x48);                                  /* cmp rsi, [rdx + tag] */
	b1(e, 0x3b);
	b1(e, 0x72);
	b1(e, (uint8_t)tag);
	b1(e, 0x74);                                  /* je hit */
	b1(e, 0x0e);
	b1(e, 0x48);                                  /* cmp rsi, [rdx + 64 + tag]: way 1 */
	b1(e, 0x3b);
	b1(e, 0x72);
	b1(e, (uint8_t)(64 + tag));
	bail_if(j, CC_NE);                            /* (6 bytes) */
	b1(e, 0x48);                                  /* add rdx, 64 */
	b1(e, 0x83);
	b1(e, 0xc2);
	b1(e, 64);
	/* hit: */
	b1(e, 0x48);                                  /* mov rdx, [rdx + addend] */
	b1(e, 0x8b);
	b1(e, 0x52);
	b1(e, (uint8_t)offsetof(struct emu_tlb_entry, addend));
	b1(e, 0x48);                                  /* add rdx, rax */
	b1(e, 0x01);
	b1(e, 0xc2);
}

/* A new RIP in host register h (RAX or RCX) must be canonical, or the
 * instruction goes to the interpreter (which raises the #GP). Uses RSI. */
static void check_canonical(struct jit *j, unsigned h)
{
	struct emit *e = &j->e;

	b1(e, 0x48);                                  /* mov rsi, h */
	b1(e, 0x89);
	b1(e, (uint8_t)(0xc6 | h << 3));
	b1(e, 0x48);                                  /* shl rsi, 16 */
	b1(e, 0xc1);
	b1(e, 0xe6);
	b1(e, 16);
	b1(e, 0x48);                                  /* sar rsi, 16 */
	b1(e, 0xc1);
	b1(e, 0xfe);
	b1(e, 16);
	b1(e, 0x48);                                  /* cmp rsi, h */
	b1(e, 0x39);
	b1(e, (uint8_t)(0xc6 | h << 3));
	bail_if(j, CC_NE);
}

/* rcx = the byte register r of an instruction with the given REX (AH..BH
 * without one), zero-extended in the low byte at least. */
static void load_byte_reg(struct emit *e, unsigned rex, unsigned r)
{
	if (!rex && r >= 4 && r < 8) {
		load_to(e, 8, H_RCX, r - 4);
		b1(e, 0x48);                          /* shr rcx, 8 */
		b1(e, 0xc1);
		b1(e, 0xe9);
		b1(e, 8);
	} else {
		load_to(e, 8, H_RCX, r);
	}
}

/* The stack's two halves: rdx = the host address of the qword a push
 * writes, rax = the RSP after it (probed for a write); and rcx = the
 * qword a pop reads, rax = the RSP before it. */
static void push_slot(struct jit *j)
{
	load(&j->e, 8, X86_RSP);
	add_rax(&j->e, -8);
	emit_probe(j, 8, true);
}

static void pop_to_rcx(struct jit *j)
{
	load(&j->e, 8, X86_RSP);
	emit_probe(j, 8, false);
	b1(&j->e, 0x48);                              /* mov rcx, [rdx] */
	b1(&j->e, 0x8b);
	b1(&j->e, 0x0a);
}

/* mov [rdx], rcx */
static void store_rcx(struct emit *e)
{
	b1(e, 0x48);
	b1(e, 0x89);
	b1(e, 0x0a);
}

/* A CALL's push of its return address (the next instruction's RIP).
 * Uses RAX, RCX, RDX and RSI. */
static void push_return(struct jit *j, const struct emu_insn *in)
{
	struct emit *e = &j->e;

	push_slot(j);
	load_cpu(e, H_RCX, offsetof(struct emu_cpu, rip));
	b1(e, 0x48);                                  /* lea rcx, [rcx + disp32] */
	b1(e, 0x8d);
	b1(e, 0x89);
	b4(e, j->bytes - j->synced + in->len);
	store_rcx(e);
	store(e, X86_RSP);
}

/* size-prefix bytes for an operation on [rdx]: 1 uses the byte opcode */
static void op_size(struct emit *e, unsigned size)
{
	if (size == 2)
		b1(e, 0x66);
	rex_w(e, size);
}

/* The guest's LOCK, on the host's instruction (lock_ok() said it may) */
static void lock(struct emit *e, const struct emu_insn *in)
{
	if (in->lock)
		b1(e, 0xf0);
}

/* The LOCKed forms the emitter takes: read-modify-writes of memory, as
 * the host's own. Every other LOCK goes to the interpreter (#UD or rare). */
static bool lock_ok(const struct emu_insn *in)
{
	unsigned op = in->op, grp = in->reg & 7;

	if (!in->has_modrm || in->mod == 3)
		return false;
	if (in->map == MAP_0F)
		return op == 0xb1 || op == 0xc1 || (op == 0xba && grp >= 5);
	if (in->map != MAP_1B)
		return false;
	switch (op) {
	case 0x01: case 0x09: case 0x21: case 0x29: case 0x31:
	case 0x87:
		return true;
	case 0x80: case 0x81: case 0x83:
		return grp != 7 && alu_ok(grp);
	case 0xfe: case 0xff:
		return grp <= 1;
	}
	return false;
}

static bool byte_rm(struct emit *e, unsigned rex, unsigned r, unsigned op, unsigned reg, bool write);

/* Two-byte opcodes with a memory operand, 32 and 64 bits: MOVZX/MOVSX,
 * CMOVcc, SETcc, IMUL, XADD, BT* with an imm8. Those that read the
 * guest's flags have them put in the prefix's before the probe (which
 * clobbers the host's) and back in the host's after it. */
static int emit_mem_0f(struct jit *j, const struct emu_insn *in, bool *writes)
{
	struct emit *e = &j->e;
	unsigned op = in->op, size = in->opsize, grp = in->reg & 7;

	if (!in->has_modrm || in->mod == 3 || size == 2)
		return 0;
	switch (op) {
	case 0xb6: case 0xb7: case 0xbe: case 0xbf: /* MOVZX/MOVSX r32/r64, m8/m16 */
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, op & 1 ? 2 : 1, false);
		rex_w(e, op >= 0xbe ? size : 4);
		b1(e, 0x0f);                          /* movzx eax / movsx eax/rax, [rdx] */
		b1(e, (uint8_t)op);
		b1(e, 0x02);
		store(e, in->reg);
		return 1;
	case 0x40 ... 0x4f: /* CMOVcc r, m: the load whatever the condition */
	case 0x90 ... 0x9f: /* SETcc m8 */
		flags_for_reader(j);
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, op >= 0x90 ? 1 : size, op >= 0x90);
		flags_to_host(j);
		if (op < 0x90)
			load(e, size, in->reg);
		rex_w(e, op < 0x90 ? size : 4);
		b1(e, 0x0f);                          /* cmovcc eax/rax, [rdx]; setcc [rdx] */
		b1(e, (uint8_t)op);
		b1(e, 0x02);
		if (op < 0x90)
			store(e, in->reg);
		return 1;
	case 0xaf: /* IMUL r, m */
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, size, false);
		load(e, size, in->reg);
		rex_w(e, size);
		b1(e, 0x0f);                          /* imul eax/rax, [rdx] */
		b1(e, 0xaf);
		b1(e, 0x02);
		store(e, in->reg);
		*writes = true;
		return 1;
	case 0xc1: /* XADD m, r */
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, size, true);
		load_to(e, 8, H_RCX, in->reg);
		lock(e, in);
		rex_w(e, size);
		b1(e, 0x0f);                          /* xadd [rdx], ecx/rcx */
		b1(e, 0xc1);
		b1(e, 0x0a);
		store_from(e, H_RCX, in->reg);
		*writes = true;
		return 1;
	case 0xba: /* BT/BTS/BTR/BTC m, imm8: ZF kept, the bit within the operand */
		if (grp < 4)
			return 0;
		flags_for_reader(j);
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, size, grp != 4);
		flags_to_host(j);
		lock(e, in);
		rex_w(e, size);
		b1(e, 0x0f);                          /* bt* [rdx], imm8 */
		b1(e, 0xba);
		b1(e, (uint8_t)(grp << 3 | 2));
		b1(e, (uint8_t)in->imm);
		*writes = true;
		return 1;
	}
	return 0;
}

/* MOVSXD, XCHG, IMUL r, m, imm, INC/DEC and MUL with a memory operand,
 * 32 and 64 bits */
static int emit_mem_other(struct jit *j, const struct emu_insn *in, bool *writes)
{
	struct emit *e = &j->e;
	unsigned op = in->op, size = in->opsize, grp = in->reg & 7;
	bool incdec = op == 0xfe || op == 0xff;

	if (op == 0xfe)
		size = 1;
	if (incdec)
		flags_for_reader(j); /* INC/DEC keep CF */
	clobber_flags(j);
	if (!emit_ea(e, in, j->bytes - j->synced))
		return 0;
	emit_probe(j, op == 0x63 ? 4 : size, op == 0x87 || incdec);
	switch (op) {
	case 0x63: /* movsxd rax, dword [rdx]; mov eax, [rdx] */
		rex_w(e, size);
		b1(e, size == 8 ? 0x63 : 0x8b);
		b1(e, 0x02);
		store(e, in->reg);
		return 1;
	case 0x87: /* xchg [rdx], ecx/rcx (the host's LOCK, as the guest's) */
		load_to(e, 8, H_RCX, in->reg);
		rex_w(e, size);
		b1(e, 0x87);
		b1(e, 0x0a);
		store_from(e, H_RCX, in->reg);
		return 1;
	case 0x69: case 0x6b: /* imul eax/rax, [rdx], imm */
		if (!imm_fits(size, in->imm))
			return 0;
		rex_w(e, size);
		b1(e, (uint8_t)op);
		b1(e, 0x02);
		if (op == 0x6b)
			b1(e, (uint8_t)in->imm);
		else
			b4(e, (uint32_t)in->imm);
		store(e, in->reg);
		*writes = true;
		return 1;
	case 0xf7: /* mul dword/qword [rdx] */
		rex_w(e, size);
		b1(e, 0x8b);                          /* mov ecx/rcx, [rdx] */
		b1(e, 0x0a);
		load(e, 8, X86_RAX);
		rr(e, size, 0xf7, 4, H_RCX);
		store(e, X86_RAX);
		store_from(e, H_RDX, X86_RDX);
		*writes = true;
		return 1;
	}
	flags_to_host(j); /* INC/DEC [rdx] */
	lock(e, in);
	rex_w(e, size);
	b1(e, (uint8_t)op);
	b1(e, (uint8_t)(grp << 3 | 2));
	*writes = true;
	return 1;
}

/* CALL r/m64 and JMP r/m64: the target read (and checked canonical)
 * before the push of a CALL, then RIP set; the block leaves as after a
 * RET (emu_jit_block: through the jump cache). */
static int emit_indirect_branch(struct jit *j, const struct emu_insn *in, bool *ends)
{
	struct emit *e = &j->e;

	clobber_flags(j);
	if (in->mod == 3) {
		load_to(e, 8, H_RCX, in->rm);
	} else {
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, 8, false);
		b1(e, 0x48);                          /* mov rcx, [rdx] */
		b1(e, 0x8b);
		b1(e, 0x0a);
	}
	check_canonical(j, H_RCX);
	if ((in->reg & 7) == 2) {
		store_cpu(e, H_RCX, offsetof(struct emu_cpu, jit_rip)); /* the probe takes RCX */
		push_return(j, in);
		load_cpu(e, H_RCX, offsetof(struct emu_cpu, jit_rip));
	}
	store_cpu(e, H_RCX, offsetof(struct emu_cpu, rip));
	*ends = true;
	return 1;
}

/* Instructions with a memory operand, and the stack's PUSH/POP/CALL/RET.
 * 1: emitted; 0: not one the emitter takes (emu_jit_block takes back
 * whatever was emitted); *writes, *logic: as emit_insn. *ends: the
 * block's last (a CALL/RET/JMP that left). */
static int emit_mem_insn(struct jit *j, const struct emu_insn *in, bool *writes, bool *logic,
			 bool *ends)
{
	struct emit *e = &j->e;
	unsigned op = in->op, size = in->opsize, alu, opreg = (op & 7) | ((in->rex & 1) << 3);
	bool mem = in->has_modrm && in->mod != 3;

	if (in->map == MAP_0F && op == 0xb1 && mem && size != 2) {
		/* CMPXCHG m, r (LOCKed too): the host's, on the guest's RAX */
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, size, true);            /* it writes, equal or not */
		load_to(e, 8, H_RCX, in->reg);
		load(e, 8, X86_RAX);
		if (in->lock)
			b1(e, 0xf0);
		op_size(e, size);
		b1(e, 0x0f);                          /* cmpxchg [rdx], ecx/rcx */
		b1(e, 0xb1);
		b1(e, 0x0a);
		store(e, X86_RAX);
		*writes = true;
		return 1;
	}
	if (in->map == MAP_0F)
		return emit_mem_0f(j, in, writes);
	if (in->map != MAP_1B)
		return 0;
	if (op == 0xff && ((in->reg & 7) == 2 || (in->reg & 7) == 4) && size == 8)
		return emit_indirect_branch(j, in, ends);
	if (mem && size != 2 && (op == 0x63 || op == 0x87 || op == 0x69 || op == 0x6b ||
				 ((op == 0xfe || op == 0xff) && (in->reg & 7) <= 1) ||
				 (op == 0xf7 && (in->reg & 7) == 4)))
		return emit_mem_other(j, in, writes);
	if (op == 0x8a && mem) { /* MOV r8, m8 (not AH..BH of a home: byte_rm) */
		clobber_flags(j);
		if (!emit_ea(e, in, j->bytes - j->synced))
			return 0;
		emit_probe(j, 1, false);
		b1(e, 0x8a);                          /* mov cl, [rdx] */
		b1(e, 0x0a);
		return byte_rm(e, in->rex, in->reg, 0x88, H_RCX, true);
	}
	switch (op) {
	case 0x50 ... 0x57: /* PUSH r64 */
	case 0x68: case 0x6a: /* PUSH imm */
		if (size != 8)
			return 0;
		clobber_flags(j);
		push_slot(j);
		if (op >= 0x68) {
			b1(e, 0x48);                  /* mov qword [rdx], imm32 */
			b1(e, 0xc7);
			b1(e, 0x02);
			b4(e, (uint32_t)in->imm);
		} else {
			load_to(e, 8, H_RCX, opreg);  /* the old RSP for PUSH RSP */
			store_rcx(e);
		}
		store(e, X86_RSP);
		return 1;
	case 0x58 ... 0x5f: /* POP r64 */
		if (size != 8)
			return 0;
		clobber_flags(j);
		pop_to_rcx(j);
		add_rax(e, 8);
		store(e, X86_RSP);
		store_from(e, H_RCX, opreg);          /* after: POP RSP loads RSP */
		return 1;
	case 0xe8: /* CALL rel32: push, then leave as a taken branch does */
		if (size != 8)
			return 0;
		clobber_flags(j);
		load_cpu(e, H_RAX, offsetof(struct emu_cpu, rip));
		{
			int64_t t = (int64_t)(j->bytes - j->synced + in->len) + (int64_t)in->imm;

			if (t != (int32_t)t)
				return 0;
			add_rax(e, (int32_t)t);
		}
		check_canonical(j, H_RAX);            /* the target: #GP before the push */
		push_return(j, in);
		*ends = true;
		return 1;
	case 0xc2: case 0xc3: /* RET [imm16] */
		if (size != 8)
			return 0;
		clobber_flags(j);
		pop_to_rcx(j);
		check_canonical(j, H_RCX);
		add_rax(e, 8 + (op == 0xc2 ? (int32_t)(in->imm & 0xffff) : 0));
		store(e, X86_RSP);
		store_cpu(e, H_RCX, offsetof(struct emu_cpu, rip));
		*ends = true;
		return 1;
	}
	if (!mem)
		return 0;
	/* 16-bit forms: those whose guest register, if any, is read whole
	 * (and written whole after the operation on its low word) */
	if (size == 2 && op != 0x85 && op != 0x89 && op != 0x8b && op != 0xc7 && op != 0xf7 &&
	    op != 0x81 && op != 0x83 && !(op < 0x40 && ((op & 7) == 1 || (op & 7) == 3)))
		return 0;
	/* The rest have a ModRM memory operand: which access, how big. */
	bool byte = false, wr = false;
	alu = 0;
	switch (op) {
	case 0x01: case 0x09: case 0x21: case 0x29: case 0x31: case 0x39: /* op m, r */
	case 0x03: case 0x0b: case 0x23: case 0x2b: case 0x33: case 0x3b: /* op r, m */
		wr = !(op & 2) && op != 0x39;
		break;
	case 0x81: case 0x83:
		if (!alu_ok(in->reg & 7) || !imm_fits(size, in->imm))
			return 0;
		wr = (in->reg & 7) != 7;
		break;
	case 0x80:
		if (!alu_ok(in->reg & 7))
			return 0;
		byte = true;
		wr = (in->reg & 7) != 7;
		break;
	case 0x85: case 0x8b:
		break;
	case 0x89:
		wr = true;
		break;
	case 0x88:
		byte = wr = true;
		break;
	case 0xc7:
		if ((in->reg & 7) || !imm_fits(size, in->imm))
			return 0;
		wr = true;
		break;
	case 0xc6:
		if (in->reg & 7)
			return 0;
		byte = wr = true;
		break;
	case 0xf6: case 0xf7: /* TEST m, imm */
		if (in->reg & 7 || (op == 0xf7 && !imm_fits(size, in->imm)))
			return 0;
		byte = op == 0xf6;
		break;
	default:
		return 0;
	}
	if (byte)
		size = 1;
	clobber_flags(j);
	if (!emit_ea(e, in, j->bytes - j->synced))
		return 0;
	emit_probe(j, size, wr);
	switch (op) {
	case 0x01: case 0x09: case 0x21: case 0x29: case 0x31: case 0x39:
		alu = op >> 3;
		load_to(e, 8, H_RCX, in->reg);
		lock(e, in);
		op_size(e, size);
		b1(e, (uint8_t)(alu << 3 | 1));       /* op [rdx], ecx/rcx */
		b1(e, 0x0a);
		break;
	case 0x03: case 0x0b: case 0x23: case 0x2b: case 0x33: case 0x3b:
		alu = op >> 3;
		load(e, size == 2 ? 8 : size, in->reg); /* 16-bit: the rest of it stays */
		op_size(e, size);
		b1(e, (uint8_t)(alu << 3 | 3));       /* op eax/rax, [rdx] */
		b1(e, 0x02);
		if (alu != 7)
			store(e, in->reg);
		break;
	case 0x80: case 0x81: case 0x83:
		alu = in->reg & 7;
		lock(e, in);
		op_size(e, size);
		b1(e, op == 0x80 ? 0x80 : 0x81);      /* op [rdx], imm */
		b1(e, (uint8_t)(alu << 3 | 2));
		imm_of(e, size, in->imm);
		break;
	case 0x85:
		alu = 4;
		load_to(e, 8, H_RCX, in->reg);
		op_size(e, size);
		b1(e, 0x85);                          /* test [rdx], ecx/rcx */
		b1(e, 0x0a);
		break;
	case 0xf6: case 0xf7:
		alu = 4;
		op_size(e, size);
		b1(e, op);                            /* test [rdx], imm */
		b1(e, 0x02);
		imm_of(e, size, in->imm);
		break;
	case 0x8b:
		if (size == 2)
			load(e, 8, in->reg);          /* the rest of it stays */
		op_size(e, size);
		b1(e, 0x8b);                          /* mov eax/rax/ax, [rdx] */
		b1(e, 0x02);
		store(e, in->reg);
		return 1;
	case 0x88: case 0x89:
		if (size == 1)
			load_byte_reg(e, in->rex, in->reg);
		else
			load_to(e, 8, H_RCX, in->reg);
		op_size(e, size);
		b1(e, op);                            /* mov [rdx], cl/ecx/rcx */
		b1(e, 0x0a);
		return 1;
	case 0xc6: case 0xc7:
		op_size(e, size);
		b1(e, op);                            /* mov [rdx], imm */
		b1(e, 0x02);
		imm_of(e, size, in->imm);
		return 1;
	}
	*writes = true;
	*logic = alu_logic(alu);
	return 1;
}

/* Register-only instructions. Emits one; false if it is not one the
 * emitter takes. *writes: it writes the flags (*logic: as AND/OR/XOR/TEST
 * do). */
/* LEA: base + index * scale + disp (+ the next RIP), flags untouched. */
static bool emit_lea(struct jit *j, const struct emu_insn *in)
{
	struct emit *e = &j->e;

	if (in->seg == SR_FS || in->seg == SR_GS) /* LEA ignores segments */
		return false;
	if (!emit_ea(e, in, j->bytes - j->synced))
		return false;
	if (in->opsize == 4) {
		b1(e, 0x89);                          /* mov eax, eax */
		b1(e, 0xc0);
	}
	store(e, in->reg);
	return true;
}

/* Register operations, on a guest register's home where it has one
 * (one host instruction), else through RAX and cpu->gpr. A 32-bit
 * operation on a home clears its upper half, as the guest's does. */

/* op /digit on guest register r (C1 and 81: an immediate of immlen
 * bytes after it); write: the result is r's */
static void op_reg(struct emit *e, unsigned size, unsigned op, unsigned digit, unsigned r,
		   unsigned immlen, uint32_t imm, bool write)
{
	unsigned h = homed(e, r) ? (unsigned)e->home[r] : H_RAX;

	if (h == H_RAX)
		load(e, size, r);
	rr(e, size, op, digit, h);
	if (immlen == 1)
		b1(e, (uint8_t)imm);
	else if (immlen == 4)
		b4(e, imm);
	if (!write)
		return;
	if (h == H_RAX)
		store(e, r);
	else
		e->written |= (uint16_t)(1u << r);
}

/* dst op= src, op a "r/m, reg" opcode (01 09 21 29 31 39 85) */
static void op_regs(struct emit *e, unsigned size, unsigned op, unsigned dst, unsigned src, bool write)
{
	if (homed(e, dst)) {
		unsigned hs = H_RAX;

		if (homed(e, src))
			hs = (unsigned)e->home[src];
		else
			load(e, size, src);
		rr(e, size, op, hs, (unsigned)e->home[dst]);
		if (write)
			e->written |= (uint16_t)(1u << dst);
		return;
	}
	load(e, size, dst);
	gpr_op(e, size, op == 0x85 ? 0x85 : op | 2, H_RAX, src); /* the "reg, r/m" form */
	if (write)
		store(e, dst);
}

/* dst = src (and IMUL: dst *= src, op 0x0faf; MOV: op 0x8b) */
static void mov_regs(struct emit *e, unsigned size, unsigned op, unsigned dst, unsigned src)
{
	if (homed(e, dst)) {
		gpr_op(e, size, op, (unsigned)e->home[dst], src);
		e->written |= (uint16_t)(1u << dst);
		return;
	}
	if (op == 0x8b) {
		load(e, size, src);
	} else {
		load(e, size, dst);
		gpr_op(e, size, op, H_RAX, src);
	}
	store(e, dst);
}

/* op with guest byte register r (rex: the instruction's REX; AH..BH
 * without one) as its r/m operand and host register reg (0-3) or a
 * digit in ModRM.reg: the low byte of r's home, or r's byte in cpu->gpr.
 * False, with nothing emitted, for AH..BH of a register with a home. */
static bool byte_rm(struct emit *e, unsigned rex, unsigned r, unsigned op, unsigned reg, bool write)
{
	bool high = !rex && r >= 4 && r < 8;
	unsigned g = high ? r - 4 : r;

	if (homed(e, g)) {
		unsigned h = (unsigned)e->home[g];

		if (high)
			return false;
		b1(e, (uint8_t)(0x40 | h >> 3));      /* a REX: BPL, R8B-R15B */
		b1(e, (uint8_t)op);
		b1(e, (uint8_t)(0xc0 | reg << 3 | (h & 7)));
		if (write)
			e->written |= (uint16_t)(1u << g);
		return true;
	}
	b1(e, (uint8_t)op);
	b1(e, (uint8_t)(0x47 | reg << 3));            /* [rdi + disp8] */
	b1(e, (uint8_t)(offsetof(struct emu_cpu, gpr) + 8 * g + (high ? 1 : 0)));
	return true;
}

/* cl = guest byte register r (rex: as byte_rm's), the host's flags
 * untouched (they may be the guest's). */
static void load_byte(struct emit *e, unsigned rex, unsigned r)
{
	bool high = !rex && r >= 4 && r < 8;
	unsigned g = high ? r - 4 : r;

	if (!high || homed(e, g)) {
		load_to(e, 8, H_RCX, g);
		if (high) {
			b1(e, 0x0f);                  /* movzx ecx, ch */
			b1(e, 0xb6);
			b1(e, 0xcd);
		}
		return;
	}
	b1(e, 0x0f);                                  /* movzx ecx, byte [rdi + disp8] */
	b1(e, 0xb6);
	b1(e, 0x4f);
	b1(e, (uint8_t)(offsetof(struct emu_cpu, gpr) + 8 * g + 1));
}

/* The register-only byte forms: ADD/OR/AND/SUB/XOR/CMP, TEST and MOV
 * between byte registers and with an imm8 (the host's byte operations
 * on the same bytes: its flags are the guest's). */
static bool emit_byte_insn(const struct emu_insn *in, struct emit *e, bool *writes, bool *logic)
{
	unsigned op = in->op, alu = op >> 3, rex = in->rex;
	bool reg = in->has_modrm && in->mod == 3;

	if (op < 0x40 && ((op & 7) == 0 || (op & 7) == 2 || (op & 7) == 4)) {
		if (!alu_ok(alu))
			return false;
		if ((op & 7) == 4) {                  /* op al, imm8 */
			if (!byte_rm(e, rex, X86_RAX, 0x80, alu, alu != 7))
				return false;
			b1(e, (uint8_t)in->imm);
		} else {
			unsigned dst = (op & 7) == 0 ? in->rm : in->reg;

			if (!reg)
				return false;
			load_byte(e, rex, (op & 7) == 0 ? in->reg : in->rm);
			if (!byte_rm(e, rex, dst, alu << 3, H_RCX, alu != 7))
				return false;
		}
		*writes = true;
		*logic = alu_logic(alu);
		return true;
	}
	switch (op) {
	case 0x80:                                    /* op r/m8, imm8 */
		alu = in->reg & 7;
		if (!reg || !alu_ok(alu) || !byte_rm(e, rex, in->rm, 0x80, alu, alu != 7))
			return false;
		b1(e, (uint8_t)in->imm);
		*writes = true;
		*logic = alu_logic(alu);
		return true;
	case 0x84:                                    /* test r/m8, r8 */
		if (!reg)
			return false;
		load_byte(e, rex, in->reg);
		if (!byte_rm(e, rex, in->rm, 0x84, H_RCX, false))
			return false;
		*writes = *logic = true;
		return true;
	case 0xf6:                                    /* test r/m8, imm8 */
		if (!reg || (in->reg & 7) || !byte_rm(e, rex, in->rm, 0xf6, 0, false))
			return false;
		b1(e, (uint8_t)in->imm);
		*writes = *logic = true;
		return true;
	case 0xa8:                                    /* test al, imm8 */
		if (!byte_rm(e, rex, X86_RAX, 0xf6, 0, false))
			return false;
		b1(e, (uint8_t)in->imm);
		*writes = *logic = true;
		return true;
	case 0x88: case 0x8a:                         /* mov r/m8, r8; mov r8, r/m8 */
		if (!reg)
			return false;
		load_byte(e, rex, op == 0x88 ? in->reg : in->rm);
		return byte_rm(e, rex, op == 0x88 ? in->rm : in->reg, 0x88, H_RCX, true);
	case 0xb0 ... 0xb7:                           /* mov r8, imm8 */
		if (!byte_rm(e, rex, (op & 7) | (rex & 1) << 3, 0xc6, 0, true))
			return false;
		b1(e, (uint8_t)in->imm);
		return true;
	}
	return false;
}

static bool emit_insn(struct jit *j, const struct emu_insn *in, bool *writes, bool *logic)
{
	struct emit *e = &j->e;
	unsigned size = in->opsize, op = in->op, alu;
	bool reg = in->has_modrm && in->mod == 3;
	unsigned opreg = (op & 7) | ((in->rex & 1) << 3);
	bool flags_in_host = j->kind != JIT_FLAGS_NONE;

	if (in->map == MAP_0F) {
		if (!reg)
			return false;
		switch (op) {
		case 0xaf: /* IMUL r, r/m: CF OF (the rest undefined) */
			mov_regs(e, size, 0x0faf, in->reg, in->rm);
			*writes = true;
			return true;
		case 0x40 ... 0x4f: /* CMOVcc r, r: the host's, on the guest's flags */
			flags_for_reader(j);
			mov_regs(e, size, 0x0f00 | op, in->reg, in->rm);
			return true;
		case 0x90 ... 0x9f: /* SETcc r8 (not AH..BH of a home: byte_rm) */
			flags_for_reader(j);
			b1(e, 0x0f);                  /* setcc cl */
			b1(e, (uint8_t)op);
			b1(e, 0xc1);
			return byte_rm(e, in->rex, in->rm, 0x88, H_RCX, true);
		case 0xb6: case 0xbe: /* MOVZX, MOVSX r, r8 */
		case 0xb7: case 0xbf: /* MOVZX, MOVSX r, r16 */
			if (op & 1)
				load_to(e, 8, H_RCX, in->rm);
			else
				load_byte(e, in->rex, in->rm);
			rex_w(e, size);
			b1(e, 0x0f);                  /* movzx/movsx eax/rax, cl/cx */
			b1(e, (uint8_t)op);
			b1(e, 0xc1);
			store(e, in->reg);
			return true;
		}
		return false;
	}
	if (in->map != MAP_1B)
		return false;
	if (emit_byte_insn(in, e, writes, logic))
		return true;
	if (op < 0x40 && (op & 7) <= 5 && (op & 7) != 0 && (op & 7) != 2 && (op & 7) != 4) {
		alu = op >> 3;
		if (!alu_ok(alu)) /* ADC, SBB: the host's, on the guest's CF */
			flags_for_reader(j);
		switch (op & 7) {
		case 1: /* op r/m, r */
			if (!reg)
				return false;
			op_regs(e, size, alu << 3 | 1, in->rm, in->reg, alu != 7);
			break;
		case 3: /* op r, r/m */
			if (!reg)
				return false;
			op_regs(e, size, alu << 3 | 1, in->reg, in->rm, alu != 7);
			break;
		case 5: /* op rAX, imm */
			if (!imm_fits(size, in->imm))
				return false;
			op_reg(e, size, 0x81, alu, X86_RAX, 4, (uint32_t)in->imm, alu != 7);
			break;
		}
		*writes = true;
		*logic = alu_logic(alu);
		return true;
	}
	switch (op) {
	case 0x81: case 0x83:
		alu = in->reg & 7;
		if (!reg || !imm_fits(size, in->imm))
			return false;
		if (!alu_ok(alu))
			flags_for_reader(j);
		op_reg(e, size, 0x81, alu, in->rm, 4, (uint32_t)in->imm, alu != 7);
		*writes = true;
		*logic = alu_logic(alu);
		return true;
	case 0x85:
		if (!reg)
			return false;
		op_regs(e, size, 0x85, in->rm, in->reg, false);
		*writes = *logic = true;
		return true;
	case 0xa9:
		if (!imm_fits(size, in->imm))
			return false;
		op_reg(e, size, 0xf7, 0, X86_RAX, 4, (uint32_t)in->imm, false); /* test rax, imm */
		*writes = *logic = true;
		return true;
	case 0x8d:
		return emit_lea(j, in);
	case 0x89:
		if (!reg)
			return false;
		mov_regs(e, size, 0x8b, in->rm, in->reg);
		return true;
	case 0x8b:
		if (!reg)
			return false;
		mov_regs(e, size, 0x8b, in->reg, in->rm);
		return true;
	case 0xb8 ... 0xbf:
		mov_imm(e, size, in->imm);
		store(e, opreg);
		return true;
	case 0xc7:
		if (!reg || (in->reg & 7) || !imm_fits(size, in->imm))
			return false;
		mov_imm(e, size, in->imm);
		store(e, in->rm);
		return true;
	case 0xc1: case 0xd1: { /* SHL/SHR/SAR by a non-zero constant; ROL/ROR */
		unsigned grp = in->reg & 7;
		unsigned count = op == 0xd1 ? 1 : (unsigned)in->imm & (size == 8 ? 63 : 31);

		if (reg && grp <= 1 && (flags_in_host || in->flags_dead)) {
			/* CF and OF, the rest kept: exact where the host's flags
			 * are the guest's; else only where the block overwrites
			 * them (emu_jit_block makes sure that is in the prefix) */
			flags_to_host(j);
			op_reg(e, size, 0xc1, grp, in->rm, 1, count, true);
			if (flags_in_host) /* the guest's flags, changed: only in the host now */
				j->in_mem = false;
			return true;
		}
		if (!reg || (grp != 4 && grp != 5 && grp != 7) || !count)
			return false;
		op_reg(e, size, 0xc1, grp, in->rm, 1, count, true);
		*writes = true;
		return true;
	}
	case 0xd3: { /* shifts and rotates by CL, on the guest's flags (a count of 0 keeps them) */
		unsigned grp = in->reg & 7;

		if (!reg || grp == 2 || grp == 3 || grp == 6)
			return false;
		flags_for_reader(j);
		load_to(e, 8, H_RCX, X86_RCX);
		if (homed(e, in->rm)) {
			rr(e, size, 0xd3, grp, (unsigned)e->home[in->rm]);
			e->written |= (uint16_t)(1u << in->rm);
		} else {
			load(e, 8, in->rm);
			rr(e, size, 0xd3, grp, H_RAX);
			store(e, in->rm);
		}
		*writes = true;
		return true;
	}
	case 0x63: /* MOVSXD r64, r32; without REX.W a 32-bit MOV */
		if (!reg)
			return false;
		if (size != 8) {
			mov_regs(e, 4, 0x8b, in->reg, in->rm);
			return true;
		}
		load_to(e, 8, H_RCX, in->rm);
		b1(e, 0x48);                          /* movsxd rax, ecx */
		b1(e, 0x63);
		b1(e, 0xc1);
		store(e, in->reg);
		return true;
	case 0xfa: /* CLI at CPL 0 (the CPL checked as a memory access's is) */
		if (j->cpl != 0)
			return false;
		clobber_flags(j);
		if (!j->guarded) {
			b1(e, 0x80);                  /* cmp byte [rdi + cpl], 0 */
			cpu_operand(e, 7, offsetof(struct emu_cpu, cpl));
			b1(e, 0);
			bail_if(j, CC_NE);
			j->guarded = true;
		}
		b1(e, 0x48);                          /* and qword [rdi + rflags], ~IF */
		b1(e, 0x81);
		cpu_operand(e, 4, offsetof(struct emu_cpu, rflags));
		b4(e, (uint32_t)~(uint32_t)FL_IF);
		return true;
	case 0x98: /* CWDE, CDQE */
		load(e, 8, X86_RAX);
		rex_w(e, size);
		b1(e, 0x98);
		store(e, X86_RAX);
		return true;
	case 0x99: /* CDQ, CQO */
		load(e, 8, X86_RAX);
		rex_w(e, size);
		b1(e, 0x99);
		store_from(e, H_RDX, X86_RDX);
		return true;
	case 0x69: case 0x6b: /* IMUL r, r/m, imm: CF OF (the rest undefined) */
		if (!reg || !imm_fits(size, in->imm))
			return false;
		if (homed(e, in->rm))
			rr(e, size, op, H_RAX, (unsigned)e->home[in->rm]);
		else
			gpr_mem(e, size, op, H_RAX, in->rm);
		if (op == 0x6b)
			b1(e, (uint8_t)in->imm);
		else
			b4(e, (uint32_t)in->imm);
		store(e, in->reg);
		*writes = true;
		return true;
	case 0xf7: /* TEST r, imm; NOT (no flags), NEG; MUL */
		if (reg && (in->reg & 7) == 4) {
			load_to(e, 8, H_RCX, in->rm);
			load(e, 8, X86_RAX);
			rr(e, size, 0xf7, 4, H_RCX);  /* mul ecx/rcx */
			store(e, X86_RAX);
			store_from(e, H_RDX, X86_RDX);
			*writes = true;
			return true;
		}
		if (reg && !(in->reg & 7)) {
			if (!imm_fits(size, in->imm))
				return false;
			op_reg(e, size, 0xf7, 0, in->rm, 4, (uint32_t)in->imm, false);
			*writes = *logic = true;
			return true;
		}
		if (!reg || ((in->reg & 7) != 2 && (in->reg & 7) != 3))
			return false;
		op_reg(e, size, 0xf7, in->reg & 7, in->rm, 0, 0, true);
		*writes = (in->reg & 7) == 3;
		return true;
	case 0xff: /* INC/DEC keep CF: only where the host's CF is the guest's */
		if (!reg || (in->reg & 7) > 1 || !flags_in_host)
			return false;
		flags_to_host(j);
		op_reg(e, size, 0xff, in->reg & 7, in->rm, 0, 0, true);
		*writes = true;
		return true;
	}
	return false;
}

/* A jump to one of the tails (struct jit_tail_jump). */
static void jmp_tail(struct jit *j, bool store)
{
	b1(&j->e, 0xe9);                          /* jmp rel32 (patched by emit_tails) */
	assert(j->ntails < ARRAY_SIZE(j->tails));
	j->tails[j->ntails++] = (struct jit_tail_jump){ .rel = j->e.p, .store = store };
	b4(&j->e, 0);
}

/* What the code returns through exit x (jit.h). */
static uint64_t exit_value(const struct jit_exit *x)
{
	return (uint64_t)x->k | (uint64_t)x->kind << 8 | (x->taken ? EMU_JIT_TAKEN : 0) |
	       (x->stop ? EMU_JIT_STOP : 0) | (uint64_t)x->bytes << 32;
}

/* An exit's stub: the flags (when they are only in the host's RFLAGS)
 * into cpu->jit_flags, and the return value for emu_run (jit.h). */
static void emit_exit(struct jit *j, const struct jit_exit *x)
{
	struct emit *e = &j->e;

	if (x->status) {
		b1(e, 0xc1);                      /* shl eax, 12 */
		b1(e, 0xe0);
		b1(e, 12);
		b1(e, 0x0d);                      /* or eax, imm32 */
		b4(e, x->k | EMU_JIT_STOP);
		jmp_tail(j, false);
		return;
	}
	if (x->save) {
		save_flags(e);
	}
	b1(e, 0x48);                              /* movabs rax, imm64 */
	b1(e, 0xb8);
	b8(e, exit_value(x));
	jmp_tail(j, !x->stop);
}

/* The prologue: push RBX and the callee-saved homes (and one more when
 * that makes an even count: helper calls need RSP 16-byte aligned), keep
 * cpu in RBX, load the homes. */
/* What every prologue pushes, in order: the same in every block, since
 * a linked block's code is entered past them (JIT_ENTRY_SKIP) and its
 * tails pop what the first block pushed. */
static const uint8_t pushed[] = { H_RBX, H_RBP, 12, 13, 14, 15, H_RCX /* padding */ };

static void emit_prologue(struct jit *j)
{
	struct emit *e = &j->e;
	uint8_t *p0 = e->p;

	for (unsigned i = 0; i < ARRAY_SIZE(pushed); i++) {
		if (pushed[i] >= 8)
			b1(e, 0x41);
		b1(e, (uint8_t)(0x50 | (pushed[i] & 7))); /* push */
	}
	b1(e, 0x48);                                  /* mov rbx, rdi */
	b1(e, 0x89);
	b1(e, 0xfb);
	assert(e->p - p0 == JIT_ENTRY_SKIP);
	homes_in(e);
}

/* The two tails (struct jit_tail_jump), and the exits' jumps to them. */
static void emit_tails(struct jit *j)
{
	struct emit *e = &j->e;
	uint8_t *tail[2];

	tail[1] = e->p;
	homes_out(e, e->written);
	tail[0] = e->p;
	for (unsigned i = ARRAY_SIZE(pushed); i-- > 0;) {
		if (pushed[i] >= 8)
			b1(e, 0x41);
		b1(e, (uint8_t)(0x58 | (pushed[i] & 7))); /* pop */
	}
	b1(e, 0xc3);                                  /* ret */
	for (unsigned i = 0; i < j->ntails; i++) {
		int32_t rel = (int32_t)(tail[j->tails[i].store] - (j->tails[i].rel + 4));

		memcpy(j->tails[i].rel, &rel, 4);
	}
}

static void flags_to_cpu(struct jit *j);

/* The stub of a taken Jcc back to the block's start: when the budget
 * (cpu->jit_left) has room for another whole pass and the vCPU is not being
 * stopped, the flags go to the CPU's state (a pass starts with them
 * there), RIP back to the start, and the code runs again; else it leaves
 * as any taken Jcc (emu_run takes the branch). */
static void emit_loop(struct jit *j, const struct jit_exit *x, unsigned per_pass, unsigned native_n)
{
	struct emit *e = &j->e;
	uint8_t *fail[2];

	if (x->kind != JIT_FLAGS_NONE) {
		save_flags(e);
	}
	load_cpu(e, H_RAX, offsetof(struct emu_cpu, stop));
	b1(e, 0x48);                                  /* test rax, rax */
	b1(e, 0x85);
	b1(e, 0xc0);
	b1(e, 0x74);                                  /* jz budget */
	b1(e, 5);
	b1(e, 0x80);                                  /* cmp byte [rax], 0 */
	b1(e, 0x38);
	b1(e, 0);
	b1(e, 0x75);                                  /* jne fail */
	fail[0] = e->p;
	b1(e, 0);
	load_cpu(e, H_RAX, offsetof(struct emu_cpu, jit_left));
	b1(e, 0x48);                                  /* sub rax, per_pass */
	b1(e, 0x2d);
	b4(e, per_pass);
	b1(e, 0x48);                                  /* cmp rax, native_n: room for a pass */
	b1(e, 0x3d);
	b4(e, native_n);
	b1(e, 0x72);                                  /* jb fail */
	fail[1] = e->p;
	b1(e, 0);
	store_cpu(e, H_RAX, offsetof(struct emu_cpu, jit_left));
	j->kind = x->kind;                            /* go: */
	j->in_host = false;
	j->in_mem = true;
	if (j->entry_flags == 1) /* the pass writes them before anything reads them */
		j->kind = JIT_FLAGS_NONE;
	flags_to_cpu(j);
	if (x->synced) {
		b1(e, 0x48);                          /* add qword [rdi + rip], -synced */
		b1(e, 0x81);
		cpu_operand(e, 0, offsetof(struct emu_cpu, rip));
		b4(e, (uint32_t)-(int32_t)x->synced);
	}
	b1(e, 0xe9);                                  /* jmp loop_start */
	b4(e, (uint32_t)(int32_t)(j->loop_start - (e->p + 4)));
	for (unsigned i = 0; i < 2; i++) {
		assert(e->p - (fail[i] + 1) <= 127);
		*fail[i] = (uint8_t)(e->p - (fail[i] + 1));
	}
	struct jit_exit out = *x;                     /* fail: a taken Jcc's exit */
	out.save = false;
	out.loop = false;
	emit_exit(j, &out);
}

/* jcc rel32 to a place already emitted */
static void jcc_back(struct emit *e, unsigned cc, const uint8_t *to)
{
	b1(e, 0x0f);
	b1(e, (uint8_t)(0x80 | cc));
	b4(e, (uint32_t)(int32_t)(to - (e->p + 4)));
}

/* [REX.W] op ModRM(10, reg, base) disp32: host register reg and the
 * memory at [base + disp] (base neither RSP nor R12, which need a SIB). */
static void mrm(struct emit *e, unsigned op, unsigned reg, unsigned base, int32_t disp)
{
	assert((base & 7) != 4);
	b1(e, (uint8_t)(0x48 | (reg >> 3) << 2 | base >> 3));
	if (op > 0xff)
		b1(e, (uint8_t)(op >> 8));
	b1(e, (uint8_t)op);
	b1(e, (uint8_t)(0x80 | (reg & 7) << 3 | (base & 7)));
	b4(e, (uint32_t)disp);
}

/* [REX.W] op (group) reg, imm8 */
static void grp_imm8(struct emit *e, unsigned op, unsigned digit, unsigned reg, uint8_t imm)
{
	b1(e, (uint8_t)(0x48 | reg >> 3));
	b1(e, (uint8_t)op);
	b1(e, (uint8_t)(0xc0 | digit << 3 | (reg & 7)));
	b1(e, imm);
}

/* The end of an exit that may go on into another block: RAX the value
 * to return, EDX the instructions of this pass, then a jump to the
 * dispatcher; returns where that jump's rel32 is (a linkable exit's
 * stub turns it into a jump to its hop). */
static uint8_t *jmp_dispatcher(struct emit *e, uint64_t value, unsigned pass, const uint8_t *dispatcher)
{
	uint8_t *rel;

	b1(e, 0x48);                                  /* movabs rax, value */
	b1(e, 0xb8);
	b8(e, value);
	b1(e, 0xba);                                  /* mov edx, pass */
	b4(e, pass);
	b1(e, 0xe9);                                  /* jmp dispatcher */
	rel = e->p;
	b4(e, (uint32_t)(int32_t)(dispatcher - (e->p + 4)));
	return rel;
}

/* Going on into another block's code (a link's hop, the dispatcher),
 * with RDX the instructions of this pass: the budget (cpu->jit_left)
 * must hold another whole pass after this one, left in R8 for
 * emit_hop_go, and the vCPU must not be stopping; else to fail. Uses
 * RCX. */
static void emit_hop_room(struct emit *e, const uint8_t *fail)
{
	mrm(e, 0x8b, 8, H_RDI, offsetof(struct emu_cpu, jit_left)); /* mov r8, [rdi + jit_left] */
	b1(e, 0x49); b1(e, 0x29); b1(e, 0xd0);        /* sub r8, rdx */
	grp_imm8(e, 0x83, 7, 8, EMU_JIT_MAX_INSNS);   /* cmp r8, a pass */
	jcc_back(e, CC_B, fail);
	mrm(e, 0x8b, H_RCX, H_RDI, offsetof(struct emu_cpu, stop)); /* mov rcx, [rdi + stop] */
	b1(e, 0x48); b1(e, 0x85); b1(e, 0xc9);        /* test rcx, rcx */
	b1(e, 0x74); b1(e, 9);                        /* jz +9 */
	b1(e, 0x80); b1(e, 0x39); b1(e, 0);           /* cmp byte [rcx], 0 */
	jcc_back(e, CC_NE, fail);
}

/* And the block (RCX) must still hold the code (RSI) and have been
 * validated in the cache's current session (*session); else to fail.
 * Uses R10 and R11 (RDX stays, for the dispatcher after a failing hop). */
static void emit_hop_valid(struct emit *e, const uint8_t *fail, const uint64_t *session)
{
	b1(e, 0x48); b1(e, 0x3b); b1(e, 0x71);        /* cmp rsi, [rcx + native] */
	b1(e, (uint8_t)offsetof(struct emu_block, native));
	jcc_back(e, CC_NE, fail);
	b1(e, 0x4c); b1(e, 0x8b); b1(e, 0x59);        /* mov r11, [rcx + session] */
	b1(e, (uint8_t)offsetof(struct emu_block, session));
	b1(e, 0x49); b1(e, 0xba);                     /* movabs r10, session */
	b8(e, (uint64_t)(uintptr_t)session);
	b1(e, 0x4d); b1(e, 0x3b); b1(e, 0x1a);        /* cmp r11, [r10] */
	jcc_back(e, CC_NE, fail);
}

/* Go: the budget left (R8), the block (RCX) and the RIP it is entered at
 * for run_translated, a hop counted. The jump is the caller's. */
static void emit_hop_go(struct emit *e)
{
	mrm(e, 0x89, 8, H_RDI, offsetof(struct emu_cpu, jit_left)); /* mov [rdi + jit_left], r8 */
	mrm(e, 0x89, H_RCX, H_RDI, offsetof(struct emu_cpu, jit_block));
	mrm(e, 0xff, 0, H_RDI, offsetof(struct emu_cpu, jit_hops)); /* inc qword [rdi + jit_hops] */
	load_cpu(e, H_RAX, offsetof(struct emu_cpu, rip));
	store_cpu(e, H_RAX, offsetof(struct emu_cpu, jit_entry));
}

/* A linkable exit (struct jit_link): its record at rec, then the stub:
 * the flags into the CPU's state, RIP to the target, the homes stored,
 * then a jump to the dispatcher (which may go on through the jump cache,
 * or returns: the value says STOP, RIP set, INDIRECT, and where the
 * record is), which linking turns into a jump to the hop: the checks
 * (budget, stop, the linked block still valid; the dispatcher when one
 * fails) and a jump into the linked block's code past its pushes. */
static void emit_link_exit(struct jit *j, const struct jit_exit *x, uint8_t *rec, uint8_t *fn,
			   const uint8_t *dispatcher)
{
	struct emit *e = &j->e;
	struct jit_link l = { .target = x->target };
	unsigned pass = x->k + (x->taken ? 1u : 0u);

	if (x->save) {
		save_flags(e);
	}
	j->kind = x->kind;
	j->in_host = false;
	j->in_mem = true;
	flags_to_cpu(j);
	b1(e, 0x48);                                  /* add qword [rdi + rip], delta */
	b1(e, 0x81);
	cpu_operand(e, 0, offsetof(struct emu_cpu, rip));
	b4(e, (uint32_t)x->delta);
	homes_out(e, e->written);
	l.activate = (uint32_t)(jmp_dispatcher(e, (uint64_t)pass | EMU_JIT_STOP | EMU_JIT_INDIRECT |
						   (uint64_t)(rec - fn) << EMU_JIT_LINK_SHIFT,
					       pass, dispatcher) - fn);

	l.hop = (uint32_t)(e->p - fn);
	emit_hop_room(e, dispatcher);
	b1(e, 0x48);                                  /* movabs rcx, the linked block */
	b1(e, 0xb9);
	l.blk = (uint32_t)(e->p - fn);
	b8(e, 0);
	b1(e, 0x48);                                  /* movabs rsi, its code */
	b1(e, 0xbe);
	l.fn = (uint32_t)(e->p - fn);
	b8(e, 0);
	emit_hop_valid(e, dispatcher, j->session);
	emit_hop_go(e);
	b1(e, 0xe9);                                  /* jmp into the linked block */
	l.jmp = (uint32_t)(e->p - fn);
	b4(e, 0);
	memcpy(rec, &l, sizeof(l));
	assert(e->p - rec <= (ptrdiff_t)JIT_LINK_MAX);
}

#define JC_OFF(field) ((int32_t)(offsetof(struct emu_cpu, jcache) + offsetof(struct emu_jcache_entry, field)))
_Static_assert(sizeof(struct emu_jcache_entry) == 64, "the dispatcher indexes 64-byte entries");
_Static_assert(offsetof(struct emu_block, native) < 128 && offsetof(struct emu_block, session) < 128,
	       "the dispatcher reaches a block's fields with 8-bit displacements");

/* The jump cache's entry for a RIP, and the tag of the CPU's state
 * (cpu.h); the dispatcher computes both in host code. */
static unsigned jcache_index(uint64_t rip)
{
	return (unsigned)((rip ^ rip >> 10) & (EMU_JCACHE_SIZE - 1));
}

static uint64_t jcache_tag(const struct emu_cpu *cpu)
{
	return cpu->tlb_gen << 3 | (uint64_t)cpu->cpl << 1 | 1;
}

void emu_jit_jcache_fill(const struct emu_jit_buf *jb, struct emu_cpu *cpu, const struct emu_block *b)
{
	struct emu_jcache_entry *en = &cpu->jcache[jcache_index(cpu->rip)];

	*en = (struct emu_jcache_entry){ .vrip = cpu->rip, .tag = jcache_tag(cpu),
					 .epoch = jb->epoch, .session = *jb->session, .block = (void *)b,
					 .fn = (uint64_t)(uintptr_t)b->native, .code_page = b->phys >> 12 };
}

/* The dispatcher, at the start of the code buffer: where an exit that
 * may go on (jmp_dispatcher) goes with the homes stored, the flags in
 * the CPU's state, RIP at the target, RAX the value to return and RDX
 * the instructions done in this pass. It looks RIP up in the jump cache
 * and goes on into that block's code past its pushes when the entry is
 * for this RIP, TLB generation and CPL, from this buffer's epoch and the
 * cache's session, and the budget and stop checks of a linked exit's hop
 * pass (emit_hop_room): the entry's tag makes its virtual address as good
 * as the fetch's translation; its epoch, that the block still holds that
 * code (a block decoded again bumps it); its session, that the block was
 * validated in this one. The block itself is not read (a cache miss, in
 * a table of 16 MiB). Else it returns RAX: its failure tail (the pops and
 * RET) comes first, so every check jumps back to it. */
static void emit_dispatcher(struct emu_jit_buf *jb)
{
	struct emit ee = { .p = jb->rw }, *e = &ee;
	uint8_t *fail = e->p;

	for (unsigned i = ARRAY_SIZE(pushed); i-- > 0;) {
		if (pushed[i] >= 8)
			b1(e, 0x41);
		b1(e, (uint8_t)(0x58 | (pushed[i] & 7)));           /* pop */
	}
	b1(e, 0xc3);                                                /* ret */
	jb->dispatch = (uint32_t)(e->p - jb->rw);                   /* the entry: */
	emit_hop_room(e, fail);
	mrm(e, 0x8b, 9, H_RDI, offsetof(struct emu_cpu, rip));      /* mov r9, [rdi + rip] */
	b1(e, 0x4d); b1(e, 0x89); b1(e, 0xca);                      /* mov r10, r9 */
	grp_imm8(e, 0xc1, 5, 10, 10);                               /* shr r10, 10 */
	b1(e, 0x4d); b1(e, 0x31); b1(e, 0xca);                      /* xor r10, r9 */
	b1(e, 0x41); b1(e, 0x81); b1(e, 0xe2);                      /* and r10d, size - 1 */
	b4(e, EMU_JCACHE_SIZE - 1);
	grp_imm8(e, 0xc1, 4, 10, 6);                                /* shl r10, 6: * 64 */
	b1(e, 0x49); b1(e, 0x01); b1(e, 0xfa);                      /* add r10, rdi */
	mrm(e, 0x3b, 9, 10, JC_OFF(vrip));                          /* cmp r9, [r10 + vrip] */
	jcc_back(e, CC_NE, fail);
	mrm(e, 0x8b, 11, H_RDI, offsetof(struct emu_cpu, tlb_gen)); /* mov r11, [rdi + tlb_gen] */
	grp_imm8(e, 0xc1, 4, 11, 3);                                /* shl r11, 3 */
	b1(e, 0x0f); b1(e, 0xb6); b1(e, 0x8f);                      /* movzx ecx, byte [rdi + cpl] */
	b4(e, (uint32_t)offsetof(struct emu_cpu, cpl));
	b1(e, 0x4d); b1(e, 0x8d); b1(e, 0x5c); b1(e, 0x4b); b1(e, 1); /* lea r11, [r11 + rcx * 2 + 1] */
	mrm(e, 0x3b, 11, 10, JC_OFF(tag));                          /* cmp r11, [r10 + tag] */
	jcc_back(e, CC_NE, fail);
	b1(e, 0x48); b1(e, 0xb9);                                   /* movabs rcx, &jb->epoch */
	b8(e, (uint64_t)(uintptr_t)&jb->epoch);
	b1(e, 0x4c); b1(e, 0x8b); b1(e, 0x19);                      /* mov r11, [rcx] */
	mrm(e, 0x3b, 11, 10, JC_OFF(epoch));                        /* cmp r11, [r10 + epoch] */
	jcc_back(e, CC_NE, fail);
	b1(e, 0x48); b1(e, 0xb9);                                   /* movabs rcx, session */
	b8(e, (uint64_t)(uintptr_t)jb->session);
	b1(e, 0x4c); b1(e, 0x8b); b1(e, 0x19);                      /* mov r11, [rcx] */
	mrm(e, 0x3b, 11, 10, JC_OFF(session));                      /* cmp r11, [r10 + session] */
	jcc_back(e, CC_NE, fail);
	mrm(e, 0x8b, H_RCX, 10, JC_OFF(block));                     /* mov rcx, [r10 + block] */
	mrm(e, 0x8b, H_RSI, 10, JC_OFF(fn));                        /* mov rsi, [r10 + fn] */
	emit_hop_go(e);
	mrm(e, 0x8b, 11, 10, JC_OFF(code_page));                    /* mov r11, [r10 + code_page] */
	mrm(e, 0x89, 11, H_RDI, offsetof(struct emu_cpu, code_page)); /* the page stores end blocks in */
	grp_imm8(e, 0x83, 0, H_RSI, JIT_ENTRY_SKIP);                /* add rsi, past the pushes */
	b1(e, 0xff); b1(e, 0xe6);                                   /* jmp rsi */
	jb->base = jb->used = (uint32_t)((e->p - jb->rw + 15) & ~15);
}

/* The exit of a RET: the flags into the CPU's state, the homes stored,
 * then the dispatcher, which goes on into the block at the target when
 * the jump cache knows it, or returns x's value, marked
 * EMU_JIT_INDIRECT so that emu_run fills the jump cache. */
static void emit_indirect_exit(struct jit *j, struct jit_exit *x, const uint8_t *dispatcher)
{
	struct emit *e = &j->e;

	flags_to_cpu(j);
	homes_out(e, e->written);
	x->kind = JIT_FLAGS_NONE;
	x->save = false;
	jmp_dispatcher(e, exit_value(x) | EMU_JIT_INDIRECT, x->k, dispatcher);
}

bool emu_jit_link(struct emu_jit_buf *jb, emu_native_fn from, unsigned link_off,
		  const struct emu_block *to, int64_t target)
{
	uint8_t *rx = (uint8_t *)(void *)from, *rw, *dest;
	struct jit_link l;
	uint64_t v;
	int32_t rel;

	if (!to->native || rx < jb->rx || rx >= jb->rx + jb->used || !link_off)
		return false;
	rw = jb->rw + (rx - jb->rx);
	memcpy(&l, rw + link_off, sizeof(l));
	if (l.target != target)
		return false;
	if (l.to == (uintptr_t)to && l.to_fn == (uintptr_t)to->native)
		return true;
	v = (uintptr_t)to;
	memcpy(rw + l.blk, &v, 8);
	v = (uintptr_t)to->native;
	memcpy(rw + l.fn, &v, 8);
	dest = (uint8_t *)(void *)to->native + JIT_ENTRY_SKIP;
	rel = (int32_t)(dest - (rx + l.jmp + 4));
	memcpy(rw + l.jmp, &rel, 4);
	rel = (int32_t)((rx + l.hop) - (rx + l.activate + 4));
	memcpy(rw + l.activate, &rel, 4);
	l.to = (uintptr_t)to;
	l.to_fn = (uintptr_t)to->native;
	memcpy(rw + link_off, &l, sizeof(l));
	return true;
}

static bool is_jcc(const struct emu_insn *in)
{
	return in->map == MAP_1B ? in->op >= 0x70 && in->op <= 0x7f
				 : in->map == MAP_0F && in->op >= 0x80 && in->op <= 0x8f;
}

/* The guest's flags from the prefix, if any, into cpu->rflags (the lazy
 * state emptied), where the interpreter's handlers find them. */
static void flags_to_cpu(struct jit *j)
{
	struct emit *e = &j->e;

	if (j->kind == JIT_FLAGS_NONE)
		return;
	if (j->in_host) {
		b1(e, 0x9c);                          /* pushfq */
		b1(e, 0x58);                          /* pop rax */
	} else {
		load_cpu(e, H_RAX, offsetof(struct emu_cpu, jit_flags));
	}
	b1(e, 0x25);                                  /* and eax, the arithmetic flags */
	b4(e, j->kind == JIT_FLAGS_LOGIC ? FL_ARITH & ~FL_AF : FL_ARITH);
	load_cpu(e, H_RCX, offsetof(struct emu_cpu, rflags));
	b1(e, 0x48);                                  /* and rcx, ~arithmetic */
	b1(e, 0x81);
	b1(e, 0xe1);
	b4(e, (uint32_t)~(uint32_t)FL_ARITH);
	b1(e, 0x48);                                  /* or rcx, rax */
	b1(e, 0x09);
	b1(e, 0xc1);
	store_cpu(e, H_RCX, offsetof(struct emu_cpu, rflags));
	b1(e, 0xc6);                                  /* mov byte [rdi + lf.op], FLOP_NONE */
	cpu_operand(e, 0, offsetof(struct emu_cpu, lf) + offsetof(struct emu_lazy_flags, op));
	b1(e, FLOP_NONE);
	j->kind = JIT_FLAGS_NONE;
	j->in_host = j->in_mem = false;
}

/* An instruction the emitter does not take, run by the interpreter's own
 * handler from the translated code: the flags and RIP handed over first;
 * afterwards the code leaves (EMU_JIT_STOP) when the handler did not
 * finish (a fault, HLT), went elsewhere (a branch, a paused REP) or wrote
 * code, and carries on otherwise. *exact: where the fn pointer is, for
 * emu_jit_block to make it the exact handler (flags_dead is exact only
 * when the whole block runs). */
static void emit_helper(struct jit *j, const struct emu_insn *in, uint8_t **exact)
{
	struct emit *e = &j->e;
	uint32_t delta = j->bytes - j->synced;
	struct jit_exit *x;

	if (j->entry_flags < 0)
		j->entry_flags = 0;
	flags_to_cpu(j);
	if (delta) {
		b1(e, 0x48);                          /* add qword [rdi + rip], delta */
		b1(e, 0x81);
		cpu_operand(e, 0, offsetof(struct emu_cpu, rip));
		b4(e, delta);
		j->synced = j->bytes;
	}
	load_cpu(e, H_RAX, offsetof(struct emu_cpu, rip));
	b1(e, 0x48);                                  /* lea rax, [rax + len] */
	b1(e, 0x8d);
	b1(e, 0x40);
	b1(e, in->len);
	store_cpu(e, H_RAX, offsetof(struct emu_cpu, jit_rip));
	b1(e, 0xc6);                                  /* mov byte [rdi + code_written], 0 */
	cpu_operand(e, 0, offsetof(struct emu_cpu, code_written));
	b1(e, 0);
	homes_out(e, 0xffff);                         /* the handler sees cpu->gpr */
	b1(e, 0x48);                                  /* mov rsi, in */
	b1(e, 0xbe);
	b8(e, (uint64_t)(uintptr_t)in);
	b1(e, 0x48);                                  /* mov rax, handler */
	b1(e, 0xb8);
	*exact = in->flags_dead ? e->p : NULL;
	b8(e, (uint64_t)(uintptr_t)in->exec);
	b1(e, 0xff);                                  /* call rax */
	b1(e, 0xd0);
	b1(e, 0x48);                                  /* mov rdi, rbx */
	b1(e, 0x89);
	b1(e, 0xdf);
	b1(e, 0x85);                                  /* test eax, eax */
	b1(e, 0xc0);
	x = new_exit(j, j->k + 1, false, 0);
	x->bytes = 0;
	x->status = true;
	jcc_to(j, x, CC_NE);
	load_cpu(e, H_RAX, offsetof(struct emu_cpu, rip));
	b1(e, 0x48);                                  /* cmp rax, [rdi + jit_rip] */
	b1(e, 0x3b);
	cpu_operand(e, H_RAX, offsetof(struct emu_cpu, jit_rip));
	x = new_exit(j, j->k + 1, false, 0);
	x->bytes = 0;
	x->stop = true;
	jcc_to(j, x, CC_NE);
	b1(e, 0x80);                                  /* cmp byte [rdi + code_written], 0 */
	cpu_operand(e, 7, offsetof(struct emu_cpu, code_written));
	b1(e, 0);
	jcc_to(j, x, CC_NE);
	homes_in(e);                                  /* what the handler left there */
	j->synced = j->bytes + in->len;
	j->guarded = false; /* it may have changed the CPL */
}

/* What emu_jit_block must be able to go back to. */
struct jit_snap {
	uint8_t *p;
	unsigned kind, nexits, ntails, nlinks, k, nexact;
	uint32_t bytes, synced;
	bool in_host, in_mem, guarded;
	int8_t entry_flags;
};

static struct jit_snap snap(const struct jit *j, unsigned k, unsigned nexact)
{
	return (struct jit_snap){ .p = j->e.p, .kind = j->kind, .nexits = j->nexits,
				  .ntails = j->ntails, .nlinks = j->nlinks, .k = k,
				  .nexact = nexact, .bytes = j->bytes, .synced = j->synced,
				  .in_host = j->in_host, .in_mem = j->in_mem, .guarded = j->guarded,
				  .entry_flags = j->entry_flags };
}

static void unsnap(struct jit *j, const struct jit_snap *sn)
{
	j->e.p = sn->p;
	j->kind = sn->kind;
	j->nexits = sn->nexits;
	j->ntails = sn->ntails;
	j->nlinks = sn->nlinks;
	j->bytes = sn->bytes;
	j->synced = sn->synced;
	j->in_host = sn->in_host;
	j->in_mem = sn->in_mem;
	j->guarded = sn->guarded;
	j->entry_flags = sn->entry_flags;
	j->bail = -1; /* an exit of what was taken back */
}

/* The guest registers insns use: a use each for ModRM's reg and rm (or
 * base and index), the register in the opcode, the implied RAX and RSP
 * (more than they use, at times: a ModRM.reg that extends the opcode). */
static void count_uses(const struct emu_insn *in, unsigned uses[16])
{
	unsigned op = in->op;

	if (in->has_modrm) {
		uses[in->reg & 15]++;
		if (in->mod == 3) {
			uses[in->rm & 15]++;
		} else {
			if (in->base >= 0)
				uses[in->base & 15]++;
			if (in->index >= 0)
				uses[in->index & 15]++;
		}
	}
	if (in->map != MAP_1B)
		return;
	if ((op >= 0x50 && op <= 0x5f) || (op >= 0xb8 && op <= 0xbf))
		uses[(op & 7) | (in->rex & 1) << 3]++;
	if ((op >= 0x50 && op <= 0x5f) || op == 0x68 || op == 0x6a || op == 0xe8 || op == 0xc2 ||
	    op == 0xc3)
		uses[X86_RSP]++;
	if ((op < 0x40 && (op & 7) == 5) || op == 0xa9)
		uses[X86_RAX]++;
}

/* Homes (struct emit) for the guest registers insns use most, twice at
 * least (one use is as cheap from cpu->gpr; once is enough when every
 * prefix is translated, so that emu-diff-jit's one-instruction cases run
 * on homes): the caller-saved host registers first, which cost no push. */
static void jit_homes(struct emit *e, const struct emu_insn *insns, unsigned n)
{
	unsigned uses[16] = { 0 }, used = 0, least = atomic_load(&jit_switch) == 2 ? 1 : 2;

	memset(e->home, -1, sizeof(e->home));
	for (unsigned k = 0; k < n; k++)
		count_uses(&insns[k], uses);
	while (used < JIT_HOMES) {
		unsigned best = 16;

		for (unsigned r = 0; r < 16; r++)
			if (!homed(e, r) && uses[r] >= least && (best == 16 || uses[r] > uses[best]))
				best = r;
		if (best == 16)
			break;
		e->home[best] = (int8_t)home_regs[used++];
	}
}

/* NOP, PAUSE, the hint NOPs and prefetches (0F 0D, 0F 18-1F): as the
 * interpreter runs them, they only move RIP. Not 90 with REX.B (XCHG
 * R8, RAX), nor with LOCK (#UD). */
static bool is_nop(const struct emu_insn *in)
{
	if (in->lock)
		return false;
	if (in->map == MAP_1B)
		return in->op == 0x90 && !(in->rex & 1);
	return in->map == MAP_0F && (in->op == 0x0d || (in->op >= 0x18 && in->op <= 0x1f));
}

struct emu_jit_result emu_jit_block(struct emu_jit_buf *jb, const struct emu_insn *insns, unsigned n,
				   unsigned cpl)
{
	struct emu_jit_result r = { 0 };
	uint8_t *start = jb->rw + jb->used;
	struct jit j = { .e = { .p = start }, .kind = JIT_FLAGS_NONE, .cpl = (uint8_t)cpl, .bail = -1,
			 .session = jb->session, .entry_flags = -1 };
	/* A rotate whose flags are dead, with the host's flags not the
	 * guest's: the prefix must reach the translated instruction that
	 * overwrites them, or end before the rotate. */
	struct jit_snap undo = { 0 }, native;
	uint8_t *exact[EMU_JIT_MAX_INSNS];
	unsigned k, nexact = 0, nnative = 0;
	bool unsettled = false, ended = false;

	jit_homes(&j.e, insns, MIN(n, (unsigned)EMU_JIT_MAX_INSNS));
	emit_prologue(&j);
	j.loop_start = j.e.p;
	native = snap(&j, 0, 0);
	for (k = 0; k < n && k < EMU_JIT_MAX_INSNS && j.nexits + 3 <= JIT_EXITS &&
		    (unsigned)(j.e.p - start) + JIT_INSN_MAX + (j.nexits + 2) * JIT_EXIT_MAX +
			    j.nloops * JIT_LOOP_MAX + (j.nlinks + 2) * JIT_LINK_MAX + JIT_TAIL_MAX <=
			    JIT_BLOCK_MAX;
	     k++) {
		const struct emu_insn *in = &insns[k];
		struct jit_snap before = snap(&j, k, nexact);
		bool w = false, l = false, ends = false;

		j.k = k;
		j.bail = -1;
		if (is_nop(in)) { /* nothing to emit: RIP moves with the rest */
			j.bytes += in->len;
			native = snap(&j, k + 1, nexact);
			nnative++;
			continue;
		}
		if (is_jcc(in)) {
			/* on the host's flags, which are the guest's */
			struct jit_exit *x;

			flags_for_reader(&j);
			x = new_exit(&j, k, true, j.bytes);
			branch_exit(&j, x, in);
			jcc_to(&j, x, in->op & 15);
			j.bytes += in->len;
			native = snap(&j, k + 1, nexact);
			nnative++;
			continue;
		}
		if (in->map == MAP_1B && (in->op == 0xe9 || in->op == 0xeb) && in->opsize == 8) {
			/* JMP rel: leave as a taken branch does */
			struct jit_exit *x = new_exit(&j, k, true, j.bytes);

			branch_exit(&j, x, in);
			jmp_to(&j, x);
			ended = true;
			nnative++;
			k++;
			break;
		}
		if (j.kind == JIT_FLAGS_NONE && !unsettled && in->map == MAP_1B &&
		    (in->op == 0xc1 || in->op == 0xd1) && (in->reg & 7) <= 1) {
			undo = before;
			unsettled = true;
		}
		bool ok = (!in->lock || lock_ok(in)) &&
			  (!in->rep || (in->map == MAP_1B && in->op == 0xc3)) &&
			  (in->opsize == 2 || in->opsize == 4 || in->opsize == 8);

		/* register-only forms: 32 and 64 bits; with memory: 16 as well */
		if (ok && (in->opsize == 2 || !emit_insn(&j, in, &w, &l))) {
			unsnap(&j, &before);
			ok = emit_mem_insn(&j, in, &w, &l, &ends);
		}
		if (!ok) {
			unsnap(&j, &before);
			if (!in->exec)
				break;
			emit_helper(&j, in, &exact[nexact]);
			if (exact[nexact])
				nexact++;
			j.bytes += in->len;
			assert(j.e.p - before.p <= (ptrdiff_t)JIT_INSN_MAX);
			continue;
		}
		assert(j.e.p - before.p <= (ptrdiff_t)JIT_INSN_MAX);
		nnative++;
		if (w) {
			flags_written(&j, l);
			unsettled = false;
		}
		if (ends) {
			/* CALL rel: the push is done, the branch is the
			 * caller's (taken, as a Jcc); RET, CALL/JMP r/m: RIP is
			 * set, the instruction counted */
			if (in->op == 0xe8) {
				struct jit_exit *x = new_exit(&j, k, true, j.bytes);

				link_exit(&j, x, branch_target(&j, in));
				jmp_to(&j, x);
			} else {
				struct jit_exit *x = new_exit(&j, k + 1, false, 0);

				x->bytes = 0;
				emit_indirect_exit(&j, x, jb->rw + jb->dispatch);
				j.nexits--;
			}
			ended = true;
			k++;
			break;
		}
		j.bytes += in->len;
		native = snap(&j, k + 1, nexact);
	}
	if (unsettled) {
		unsnap(&j, &undo);
		k = undo.k;
		nexact = undo.nexact;
		ended = false;
	} else if (!ended && native.k < k) {
		/* helpers at the end: the interpreter runs those as well */
		unsnap(&j, &native);
		k = native.k;
		nexact = native.nexact;
	}
	/* A short prefix that leaves the rest of its block to the interpreter
	 * costs more (a call, an exit, the flags) than it saves. */
	if (!k || !nnative || (k < JIT_MIN_PREFIX && k < n && atomic_load(&jit_switch) != 2))
		return r;
	if (!ended) {
		struct jit_exit *x = new_exit(&j, k, false, j.bytes);

		if (k == n) /* the whole block: on to the next one */
			link_exit(&j, x, j.bytes);
		if (x->link) {
			jmp_to(&j, x);
		} else {
			emit_exit(&j, x);
			j.nexits--;
		}
	}
	for (unsigned i = 0; i < j.nexits; i++) {
		struct jit_exit *x = &j.exits[i];
		uint8_t *rec = NULL;

		if (x->link) {
			rec = j.e.p;
			j.e.p += sizeof(struct jit_link);
		}
		for (unsigned b = 0; b < x->nrel; b++) {
			int32_t rel = (int32_t)(j.e.p - (x->rel[b] + 4));

			memcpy(x->rel[b], &rel, 4);
		}
		if (x->loop)
			emit_loop(&j, x, x->k + 1, k);
		else if (x->link)
			emit_link_exit(&j, x, rec, start, jb->rw + jb->dispatch);
		else
			emit_exit(&j, x);
	}
	emit_tails(&j);
	if (k < n) /* the block does not run whole here: flags exact */
		for (unsigned i = 0; i < nexact; i++) {
			uint64_t fn = (uint64_t)(uintptr_t)emu_exec_exact;

			memcpy(exact[i], &fn, 8);
		}
	assert((unsigned)(j.e.p - start) <= JIT_BLOCK_MAX);
	r.fn = (emu_native_fn)(void *)(jb->rx + jb->used);
	r.ninsn = (uint8_t)k;
	jb->used += (uint32_t)((j.e.p - start + 15) & ~15);
	atomic_fetch_add(&jit_count, k);
	return r;
}
