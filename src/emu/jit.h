/* Translation to host code (step 3 of docs/emu.md's plan), on by
 * default; off with emu_jit_set(false) or KUMO_EMU_JIT=0 in the
 * environment, before the thread's decoded-block cache is made.
 *
 * What it does so far: the longest prefix of a 64-bit block made of
 * ADD/OR/AND/SUB/XOR/CMP/TEST, MOV, LEA, SHL/SHR/SAR by a constant,
 * ROL/ROR, IMUL r, r, NOT, NEG and (after another flag writer) INC/DEC
 * on 32 and 64-bit registers; ADD/OR/AND/SUB/XOR/CMP, TEST and MOV on
 * byte registers (AH..BH only without a home); of the same ALU operations, MOV and MOVZX
 * with a memory operand (byte forms of MOV, CMP-like group 1 and TEST
 * with an immediate); of PUSH, POP, CALL rel32, RET and JMP rel; and of
 * conditional branches (after a flag writer), becomes one host function.
 * The guest registers it uses most live in host registers (homes) while
 * it runs, the others in cpu->gpr (the function gets cpu in RDI and
 * works through RAX, RCX, RDX and RSI); the arithmetic flags are those of
 * the host's own instructions, which a Jcc reads where they are, saved
 * (PUSHFQ) only where the function leaves or a memory access's TLB probe
 * would overwrite them — never per instruction. A memory access probes
 * the software TLB inline (exec.h: emu_tlb_fast, stricter); a miss, a
 * store into code, MMIO, a page crossing or a supervisor access to a
 * user page leaves for the interpreter at that instruction, before any
 * of it is done, so no fault is ever raised in translated code. A taken
 * Jcc or JMP leaves the block, unless it goes back to the block's start
 * and the budget (cpu->jit_left) allows another pass, or its exit is
 * linked to the target's translated block (emu_jit_link); an exit that
 * is not (linkable ones, other pages, RET) goes to the dispatcher, which
 * finds the next translated block in the per-CPU jump cache (cpu.h) and
 * goes on into it. An instruction
 * the emitter does not take between ones it does is called: the
 * interpreter's handler for it, with the flags and RIP handed over
 * (emit_helper). The rest of the block, after
 * the prefix, runs in the interpreter. Code lives in a memfd mapped twice, writable for
 * the emitter and executable for the CPU: no page is both. */
#ifndef KUMO_EMU_JIT_H
#define KUMO_EMU_JIT_H

#include "cpu.h"

/* The host function of a translated prefix. It returns where it left:
 * bits 0-7, the instructions it completed (a taken Jcc not counted);
 * bits 8-9, enum emu_jit_flags: how the flags it left in cpu->jit_flags
 * (the host's RFLAGS) stand; EMU_JIT_TAKEN, the Jcc after those
 * instructions was taken (its target is for the caller to check and
 * take); bits 32-63, the guest bytes of the instructions completed. */
typedef uint64_t (*emu_native_fn)(struct emu_cpu *cpu);
#define EMU_JIT_TAKEN (1ULL << 10)
/* EMU_JIT_STOP: the code left after an instruction it ran through the
 * interpreter's handler (a helper) that faulted, halted, branched or
 * wrote code: RIP is as the handler left it, the block ends here; bits
 * 12-13, the handler's status (enum emu_status). */
#define EMU_JIT_STOP (1ULL << 11)
#define EMU_JIT_STATUS_SHIFT 12
/* Bits 14-27: an exit that can be linked (emu_jit_link) says where its
 * link record is, in bytes from the start of the function it left; 0
 * for one that cannot. */
#define EMU_JIT_LINK_SHIFT 14
#define EMU_JIT_LINK_MASK 0x3fffu
#define EMU_JIT_MAX_INSNS 64
/* An exit that went through the dispatcher (a RET, or a linkable exit
 * not linked or whose hop failed) and that the jump cache did not take
 * on: emu_run fills the jump cache with the block it finds at RIP
 * (emu_jit_jcache_fill). */
#define EMU_JIT_INDIRECT (1ULL << 28)

/* How the prefix leaves the arithmetic flags. */
enum emu_jit_flags {
	JIT_FLAGS_NONE,   /* untouched: the lazy state stays */
	JIT_FLAGS_ARITH,  /* the host's six flags, as they are */
	JIT_FLAGS_LOGIC,  /* the host's, AF cleared (the interpreter's AND/OR/XOR/TEST) */
};

struct emu_jit_buf;
struct emu_block;

/* The switch. emu_jit_on() reads KUMO_EMU_JIT once unless set before:
 * 0, off (the interpreter alone); unset or 1, on; 2, on and translating
 * even prefixes too short to pay (so that emu-diff's one-instruction
 * cases run translated). */
void emu_jit_set(bool on);
void emu_jit_set_every_prefix(void);
bool emu_jit_on(void);
/* How many entries make a block worth translating (1 for the tests that
 * translate every prefix). */
unsigned emu_jit_hot(void);

/* A code buffer (one per decoded-block cache, whose current session is
 * *session: linked code checks it); NULL if none can be made. */
struct emu_jit_buf *emu_jit_buf_new(const uint64_t *session);
void emu_jit_buf_free(struct emu_jit_buf *j);
/* Empties it (every block translated so far is stale: the cache's
 * generation changed). */
void emu_jit_buf_reset(struct emu_jit_buf *j);
/* Room for one more block's code. */
bool emu_jit_buf_room(const struct emu_jit_buf *j);
/* A translated block is decoded again (its slot rebuilt): the jump
 * cache's entries, which are not checked against the block, go stale. */
void emu_jit_buf_forget(struct emu_jit_buf *j);

struct emu_jit_result {
	emu_native_fn fn;
	uint8_t ninsn;    /* instructions translated: 0 if none */
};

/* Translates the longest prefix of insns[0..n) (decoded in 64-bit mode)
 * that it can, for a CPU at privilege level cpl: the code's memory
 * accesses assume it and leave for the interpreter when it differs. */
struct emu_jit_result emu_jit_block(struct emu_jit_buf *j, const struct emu_insn *insns, unsigned n,
				   unsigned cpl);

/* Links an exit to the block its branch (or its fall-through) goes to:
 * from, the translated code of the block the exit is in, whose return
 * value gave link_off; to, a translated block of the same cache at
 * exactly the exit's target, target bytes from from's block (false and
 * nothing done if that is not the exit's). From then on the exit goes on
 * into to's code without returning, as long as to still holds that code
 * and was validated in the cache's current session, the budget
 * (cpu->jit_left) has room for a pass of it and the vCPU is not being
 * stopped; else it returns as before. Linking again replaces the link. */
bool emu_jit_link(struct emu_jit_buf *j, emu_native_fn from, unsigned link_off,
		  const struct emu_block *to, int64_t target);

/* The jump cache (cpu.h): an entry made for the block b just found at
 * cpu->rip (a translated 64-bit block, validated in this session, its
 * page's translation the fetch's). */
void emu_jit_jcache_fill(const struct emu_jit_buf *jb, struct emu_cpu *cpu, const struct emu_block *b);

/* Guest instructions translated so far, by every thread (for tests). */
uint64_t emu_jit_translated(void);

#endif
