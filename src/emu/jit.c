/* Translation to host code: the code buffer (a memfd mapped twice) and
 * the emitter for register-only ALU and MOV (jit.h). */
#include "jit.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define JIT_BYTES (4u << 20)
#define JIT_BLOCK_MAX 2048u    /* bytes of host code a block may take, at most */
#define JIT_INSN_MAX 32u       /* bytes of host code per instruction, at most */
#define JIT_EXIT_MAX 20u       /* bytes of host code per exit, at most */
#define JIT_MIN_PREFIX 4u      /* instructions, unless the prefix is the whole block */

struct emu_jit_buf {
	uint8_t *rw, *rx;      /* the same pages: written through rw, run through rx */
	uint32_t used;
};

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
		s = e && (e[0] == '1' || e[0] == '2') && !e[1] ? e[0] - '0' : 0;
		atomic_store(&jit_switch, s);
	}
	return s >= 1;
}

void emu_jit_set_every_prefix(void)
{
	atomic_store(&jit_switch, 2);
}

uint64_t emu_jit_translated(void)
{
	return atomic_load(&jit_count);
}

struct emu_jit_buf *emu_jit_buf_new(void)
{
	struct emu_jit_buf *j = calloc(1, sizeof(*j));
	int fd;

	if (!j)
		return NULL;
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
	j->used = 0;
}

bool emu_jit_buf_room(const struct emu_jit_buf *j)
{
	return j->used + JIT_BLOCK_MAX <= JIT_BYTES;
}

/* ---- the emitter ---- */

struct emit {
	uint8_t *p;
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

/* cpu->gpr[r] is [rdi + 8r]: ModRM mod 01, rm 111 (RDI), disp8 */
static void gpr_operand(struct emit *e, unsigned reg_field, unsigned r)
{
	b1(e, 0x47 | (reg_field << 3));
	b1(e, (uint8_t)(offsetof(struct emu_cpu, gpr) + 8 * r));
}

static void rex_w(struct emit *e, unsigned size)
{
	if (size == 8)
		b1(e, 0x48);
}

/* rax (eax for 4: zero-extended) = guest r */
static void load(struct emit *e, unsigned size, unsigned r)
{
	rex_w(e, size);
	b1(e, 0x8b);
	gpr_operand(e, 0, r);
}

/* guest r = rax (all 64 bits: after a 32-bit operation they are zero-extended) */
static void store(struct emit *e, unsigned r)
{
	b1(e, 0x48);
	b1(e, 0x89);
	gpr_operand(e, 0, r);
}

/* rax op= guest r; alu is the ModRM.reg of group 1 (0 ADD 1 OR 4 AND 5 SUB 6 XOR 7 CMP) */
static void alu_mem(struct emit *e, unsigned size, unsigned alu, unsigned r)
{
	rex_w(e, size);
	b1(e, (uint8_t)(alu << 3 | 3));
	gpr_operand(e, 0, r);
}

static void alu_imm(struct emit *e, unsigned size, unsigned alu, uint32_t imm)
{
	rex_w(e, size);
	b1(e, 0x81);
	b1(e, (uint8_t)(0xc0 | alu << 3));
	b4(e, imm);
}

static void test_mem(struct emit *e, unsigned size, unsigned r)
{
	rex_w(e, size);
	b1(e, 0x85);
	gpr_operand(e, 0, r);
}

static void test_imm(struct emit *e, unsigned size, uint32_t imm)
{
	rex_w(e, size);
	b1(e, 0xa9);
	b4(e, imm);
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

static bool imm_fits(unsigned size, uint64_t imm)
{
	return size == 4 || (uint64_t)(int64_t)(int32_t)imm == imm;
}

/* Group-1 operations the emitter takes: not ADC (2), SBB (3). */
static bool alu_ok(unsigned alu)
{
	return alu != 2 && alu != 3;
}

/* Emits one instruction; false if it is not one the emitter takes.
 * *writes: it writes the flags (*logic: as AND/OR/XOR/TEST do). */
/* LEA: base + index * scale + disp (+ the next RIP: cpu->rip is the
 * prefix's first instruction, `at` bytes before this one), with MOV and
 * LEA only, which leave the flags alone. */
static bool emit_lea(struct emit *e, const struct emu_insn *in, unsigned at)
{
	int64_t disp = in->disp;

	if (in->mod == 3 || in->addrsize != 8 || !in->scale || (in->scale & (in->scale - 1)) ||
	    in->scale > 8)
		return false;
	if (in->rip_relative) {
		disp += at + in->len;
		b1(e, 0x48);                          /* mov rax, [rdi + rip] */
		b1(e, 0x8b);
		b1(e, 0x87);
		b4(e, (uint32_t)offsetof(struct emu_cpu, rip));
	} else if (in->base >= 0) {
		load(e, 8, (unsigned)in->base);
	} else {
		b1(e, 0xb8);                          /* mov eax, 0 */
		b4(e, 0);
	}
	if (disp != (int32_t)disp)
		return false;
	if (in->index >= 0) {
		b1(e, 0x48);                          /* mov rcx, guest index */
		b1(e, 0x8b);
		gpr_operand(e, 1, (unsigned)in->index);
		b1(e, 0x48);                          /* lea rax, [rax + rcx * scale + disp32] */
		b1(e, 0x8d);
		b1(e, 0x84);
		b1(e, (uint8_t)(__builtin_ctz(in->scale) << 6 | 1 << 3 | 0));
	} else {
		b1(e, 0x48);                          /* lea rax, [rax + disp32] */
		b1(e, 0x8d);
		b1(e, 0x80);
	}
	b4(e, (uint32_t)(int32_t)disp);
	if (in->opsize == 4) {
		b1(e, 0x89);                          /* mov eax, eax */
		b1(e, 0xc0);
	}
	store(e, in->reg);
	return true;
}

static bool emit_insn(struct emit *e, const struct emu_insn *in, unsigned at, bool flags_in_host,
		      bool *writes, bool *logic)
{
	unsigned size = in->opsize, op = in->op, alu;
	bool reg = in->has_modrm && in->mod == 3;
	unsigned opreg = (op & 7) | ((in->rex & 1) << 3);

	if (in->lock || in->rep || (size != 4 && size != 8))
		return false;
	*writes = false;
	*logic = false;
	if (in->map == MAP_0F) {
		if (in->op != 0xaf || !reg) /* IMUL r, r/m: CF OF (the rest undefined) */
			return false;
		load(e, size, in->reg);
		rex_w(e, size);
		b1(e, 0x0f);
		b1(e, 0xaf);
		gpr_operand(e, 0, in->rm);
		store(e, in->reg);
		*writes = true;
		return true;
	}
	if (in->map != MAP_1B)
		return false;
	if (op < 0x40 && (op & 7) <= 5 && (op & 7) != 0 && (op & 7) != 2 && (op & 7) != 4) {
		alu = op >> 3;
		if (!alu_ok(alu))
			return false;
		switch (op & 7) {
		case 1: /* op r/m, r */
			if (!reg)
				return false;
			load(e, size, in->rm);
			alu_mem(e, size, alu, in->reg);
			if (alu != 7)
				store(e, in->rm);
			break;
		case 3: /* op r, r/m */
			if (!reg)
				return false;
			load(e, size, in->reg);
			alu_mem(e, size, alu, in->rm);
			if (alu != 7)
				store(e, in->reg);
			break;
		case 5: /* op rAX, imm */
			if (!imm_fits(size, in->imm))
				return false;
			load(e, size, X86_RAX);
			alu_imm(e, size, alu, (uint32_t)in->imm);
			if (alu != 7)
				store(e, X86_RAX);
			break;
		}
		*writes = true;
		*logic = alu == 1 || alu == 4 || alu == 6;
		return true;
	}
	switch (op) {
	case 0x81: case 0x83:
		alu = in->reg & 7;
		if (!reg || !alu_ok(alu) || !imm_fits(size, in->imm))
			return false;
		load(e, size, in->rm);
		alu_imm(e, size, alu, (uint32_t)in->imm);
		if (alu != 7)
			store(e, in->rm);
		*writes = true;
		*logic = alu == 1 || alu == 4 || alu == 6;
		return true;
	case 0x85:
		if (!reg)
			return false;
		load(e, size, in->rm);
		test_mem(e, size, in->reg);
		*writes = *logic = true;
		return true;
	case 0xa9:
		if (!imm_fits(size, in->imm))
			return false;
		load(e, size, X86_RAX);
		test_imm(e, size, (uint32_t)in->imm);
		*writes = *logic = true;
		return true;
	case 0x8d:
		return emit_lea(e, in, at);
	case 0x89:
		if (!reg)
			return false;
		load(e, size, in->reg);
		store(e, in->rm);
		return true;
	case 0x8b:
		if (!reg)
			return false;
		load(e, size, in->rm);
		store(e, in->reg);
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
			load(e, size, in->rm);
			rex_w(e, size);
			b1(e, 0xc1);
			b1(e, (uint8_t)(0xc0 | grp << 3));
			b1(e, (uint8_t)count);
			store(e, in->rm);
			return true;
		}
		if (!reg || (grp != 4 && grp != 5 && grp != 7) || !count)
			return false;
		load(e, size, in->rm);
		rex_w(e, size);
		b1(e, 0xc1);
		b1(e, (uint8_t)(0xc0 | grp << 3));
		b1(e, (uint8_t)count);
		store(e, in->rm);
		*writes = true;
		return true;
	}
	case 0xff: /* INC/DEC keep CF: only where the host's CF is the guest's */
		if (!reg || (in->reg & 7) > 1 || !flags_in_host)
			return false;
		load(e, size, in->rm);
		rex_w(e, size);
		b1(e, 0xff);
		b1(e, (uint8_t)(0xc0 | (in->reg & 7) << 3));
		store(e, in->rm);
		*writes = true;
		return true;
	}
	return false;
}

/* An exit: the flags (when the prefix wrote them) into cpu->jit_flags,
 * and the return value for emu_run (jit.h: EMU_JIT_*). */
static void emit_exit(struct emit *e, unsigned k, unsigned kind, bool taken, uint32_t bytes)
{
	if (kind != JIT_FLAGS_NONE) {
		b1(e, 0x9c);                      /* pushfq */
		b1(e, 0x8f);                      /* pop qword [rdi + disp32] */
		b1(e, 0x87);
		b4(e, (uint32_t)offsetof(struct emu_cpu, jit_flags));
	}
	b1(e, 0x48);                              /* movabs rax, imm64 */
	b1(e, 0xb8);
	b8(e, (uint64_t)k | (uint64_t)kind << 8 | (taken ? EMU_JIT_TAKEN : 0) | (uint64_t)bytes << 32);
	b1(e, 0xc3);                              /* ret */
}

struct emu_jit_result emu_jit_block(struct emu_jit_buf *j, const struct emu_insn *insns, unsigned n)
{
	struct emu_jit_result r = { 0 };
	uint8_t *start = j->rw + j->used;
	struct emit e = { .p = start };
	struct {
		uint8_t *rel;          /* the Jcc's rel32 */
		unsigned k, kind;
		uint32_t bytes;
	} jcc[EMU_JIT_MAX_INSNS];
	unsigned k, njcc = 0, kind = JIT_FLAGS_NONE, bytes = 0;
	/* A rotate whose flags are dead, with the host's flags not the
	 * guest's: the prefix must reach the instruction that overwrites
	 * them, or end before the rotate. */
	struct {
		uint8_t *p;
		unsigned k, njcc, bytes;
	} undo = { 0 };
	bool unsettled = false;

	for (k = 0; k < n && k < EMU_JIT_MAX_INSNS &&
		    (unsigned)(e.p - start) + JIT_INSN_MAX + (njcc + 2) * JIT_EXIT_MAX <= JIT_BLOCK_MAX;
	     k++) {
		const struct emu_insn *in = &insns[k];
		uint8_t *mark = e.p;
		bool w, l;

		if (in->map == MAP_1B ? in->op >= 0x70 && in->op <= 0x7f
				      : in->map == MAP_0F && in->op >= 0x80 && in->op <= 0x8f) {
			/* Jcc: on the host's flags, which must be the guest's */
			if (kind == JIT_FLAGS_NONE)
				break;
			b1(&e, 0x0f);
			b1(&e, (uint8_t)(0x80 | (in->op & 15)));
			jcc[njcc].rel = e.p;
			jcc[njcc].k = k;
			jcc[njcc].kind = kind;
			jcc[njcc].bytes = bytes;
			njcc++;
			b4(&e, 0);
			bytes += in->len;
			continue;
		}
		if (kind == JIT_FLAGS_NONE && !unsettled && in->map == MAP_1B &&
		    (in->op == 0xc1 || in->op == 0xd1) && (in->reg & 7) <= 1) {
			undo.p = e.p;
			undo.k = k;
			undo.njcc = njcc;
			undo.bytes = bytes;
			unsettled = true;
		}
		if (!emit_insn(&e, in, bytes, kind != JIT_FLAGS_NONE, &w, &l)) {
			e.p = mark;
			break;
		}
		if (w) {
			kind = l ? JIT_FLAGS_LOGIC : JIT_FLAGS_ARITH;
			unsettled = false;
		}
		bytes += in->len;
	}
	if (unsettled) {
		e.p = undo.p;
		k = undo.k;
		njcc = undo.njcc;
		bytes = undo.bytes;
	}
	/* A short prefix that leaves the rest of its block to the interpreter
	 * costs more (a call, an exit, the flags) than it saves. */
	if (!k || (k < JIT_MIN_PREFIX && k < n && atomic_load(&jit_switch) != 2))
		return r;
	emit_exit(&e, k, kind, false, bytes);
	for (unsigned i = 0; i < njcc; i++) {
		int32_t rel = (int32_t)(e.p - (jcc[i].rel + 4));

		memcpy(jcc[i].rel, &rel, 4);
		emit_exit(&e, jcc[i].k, jcc[i].kind, true, jcc[i].bytes);
	}
	r.fn = (emu_native_fn)(void *)(j->rx + j->used);
	r.ninsn = (uint8_t)k;
	j->used += (uint32_t)((e.p - start + 15) & ~15);
	atomic_fetch_add(&jit_count, k);
	return r;
}
