/* The decoded-block cache (icache.h): a two-way set-associative table of blocks,
 * their instructions and bytes in two pools that are emptied together when
 * either fills up. One cache per host thread, made on first use and freed
 * when the thread ends. */
#include "icache.h"
#include "exec_internal.h"
#include "jit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Instructions after which the next one is still decoded into the same
 * block: they fall through and change nothing the decode or the fetch
 * depends on (mode, CPL, paging, CS), and conditional branches (a taken
 * one leaves the block: the executor checks where each instruction went).
 * Other branches, far transfers, system
 * instructions, I/O, serialising instructions (CPUID: cross-modifying code
 * becomes visible after one) and anything unlisted end a block. The
 * executor also leaves a block early when an instruction went elsewhere
 * (a REP string paused, a fault) or wrote to the block's page. */
static const bool straight_1b[256] = {
	[0x00 ... 0x05] = true, [0x08 ... 0x0d] = true, [0x10 ... 0x15] = true,
	[0x18 ... 0x1d] = true, [0x20 ... 0x25] = true, [0x28 ... 0x2d] = true,
	[0x30 ... 0x35] = true, [0x38 ... 0x3d] = true,
	[0x40 ... 0x5f] = true,                 /* INC/DEC, PUSH/POP r */
	[0x63] = true, [0x68 ... 0x6b] = true,
	[0x70 ... 0x7f] = true,                 /* Jcc: a taken one leaves the block */
	[0x80 ... 0x8d] = true, [0x8f] = true,  /* not 8E: MOV Sreg */
	[0x90 ... 0x99] = true, [0x9c] = true, [0x9e] = true, [0x9f] = true,
	[0xa0 ... 0xaf] = true,                 /* moffs, strings, TEST */
	[0xb0 ... 0xbf] = true, [0xc0] = true, [0xc1] = true, [0xc6 ... 0xc9] = true,
	[0xd0 ... 0xd3] = true, [0xd7] = true, [0xd8 ... 0xdf] = true, /* x87 */
	[0xf5] = true, [0xf6] = true, [0xf7] = true, [0xf8] = true, [0xf9] = true,
	[0xfa] = true,                          /* CLI: interrupts are taken outside emu_run */
	[0xfc] = true, [0xfd] = true, [0xfe] = true,
};

static const bool straight_0f[256] = {
	[0x0d] = true,                          /* PREFETCH/PREFETCHW */
	[0x10 ... 0x17] = true, [0x18 ... 0x1f] = true, [0x28 ... 0x2f] = true,
	[0x40 ... 0x4f] = true, [0x50 ... 0x7f] = true, [0x80 ... 0x8f] = true, [0x90 ... 0x9f] = true,
	[0xa3 ... 0xa5] = true, [0xab ... 0xad] = true, [0xaf ... 0xb1] = true,
	[0xb3] = true, [0xb6 ... 0xb8] = true, [0xba ... 0xbf] = true,
	[0xc0 ... 0xc7] = true, [0xc8 ... 0xcf] = true, [0xd0 ... 0xff] = true,
};

static bool straight(const struct emu_insn *in)
{
	switch (in->map) {
	case MAP_1B:
		if (in->op == 0xff) /* INC/DEC/PUSH r/m; not the branches */
			return (in->reg & 7) == 0 || (in->reg & 7) == 1 || (in->reg & 7) == 6;
		return straight_1b[in->op];
	case MAP_0F:
		switch (in->op) {
		case 0x01: /* SWAPGS, RDTSCP: nothing the decode or the fetch depends on */
			return in->mod == 3 && (in->reg & 7) == 7 && (in->rm & 7) <= 1;
		case 0x31: /* RDTSC */
			return true;
		case 0xae: /* LFENCE, MFENCE, SFENCE */
			return in->mod == 3 && (in->reg & 7) >= 5;
		}
		return straight_0f[in->op];
	default:
		return true; /* 0F 38 / 0F 3A: SSSE3, CRC32, MOVBE */
	}
}

/* After this instruction, the next block may be entered through a chain
 * (exec.c): it changed nothing but registers, flags, memory and RIP —
 * a straight-line instruction, or a near branch (JMP, CALL, RET, direct
 * or not). Far transfers, system and serialising instructions are not
 * here: after them the next block is always looked up. */
static bool chains(const struct emu_insn *in)
{
	if (straight(in))
		return true;
	if (in->map != MAP_1B)
		return false;
	switch (in->op) {
	case 0xc2: case 0xc3: case 0xe8: case 0xe9: case 0xeb:
		return true;
	case 0xff:
		return (in->reg & 7) == 2 || (in->reg & 7) == 4;
	}
	return false;
}

/* Of the instructions that end a block without chaining, those after which
 * the cache's session goes on: none is serialising (SDM vol. 3, "Serializing
 * Instructions"), so code that another processor or a device wrote need not
 * be seen after them yet, and a kernel runs them all the time — CLI, STI,
 * POPF, segment loads, I/O ports, INT n, HLT, SYSCALL, SYSRET, SWAPGS,
 * RDTSC(P), the fences, UD2. */
static bool keeps_session_1(const struct emu_insn *in)
{
	if (in->map == MAP_1B)
		switch (in->op) {
		case 0x6c ... 0x6f: case 0x8e: case 0x9d: case 0xcc: case 0xcd:
		case 0xe4 ... 0xe7: case 0xec ... 0xef: case 0xf4: case 0xfa: case 0xfb:
			return true;
		}
	if (in->map != MAP_0F)
		return false;
	switch (in->op) {
	case 0x05: case 0x07: case 0x0b: case 0x31:
		return true;
	case 0x01: /* SWAPGS, RDTSCP */
		return in->mod == 3 && (in->reg & 7) == 7 && (in->rm & 7) <= 1;
	case 0xae: /* LFENCE, MFENCE, SFENCE */
		return in->mod == 3 && (in->reg & 7) >= 5;
	}
	return false;
}

/* After any other (CPUID, IRET, MOV CR, WRMSR, LGDT, far transfers...) a
 * new session starts (exec.c: emu_run); none after one that chains. */
bool emu_insn_keeps_session(const struct emu_insn *in)
{
	return chains(in) || keeps_session_1(in);
}

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
__thread struct emu_icache *emu_icache_tls;

#define CODEMAP_BYTES (EMU_CODEMAP_PAGES / 8)

static void cache_free(void *p)
{
	struct emu_icache *c = p;

	munmap(c->codemap, CODEMAP_BYTES);
	emu_jit_buf_free(c->jit);
	free(c->raw);
}

static void cache_key_init(void)
{
	if (pthread_key_create(&cache_key, cache_free))
		abort(); /* only when the process is out of keys: cannot go on */
}

struct emu_icache *emu_icache_get(void)
{
	struct emu_icache *c;
	void *raw;

	if (__builtin_expect(emu_icache_tls != NULL, 1))
		return emu_icache_tls;
	pthread_once(&cache_once, cache_key_init);
	/* zeroed (calloc maps a size like this one: pages are touched only
	 * when used), and aligned so that each block is one cache line */
	raw = calloc(1, sizeof(*c) + 64);
	if (!raw)
		return NULL; /* every instruction takes the slow path */
	c = (struct emu_icache *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
	c->raw = raw;
	c->gen = 1;
	c->codemap = mmap(NULL, CODEMAP_BYTES, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->codemap == MAP_FAILED) {
		free(raw);
		return NULL;
	}
	if (emu_jit_on()) {
		c->jit = emu_jit_buf_new(&c->session); /* NULL: the interpreter alone */
		c->jit_hot = (uint8_t)emu_jit_hot();
	}
	if (pthread_setspecific(cache_key, c)) {
		cache_free(c);
		return NULL;
	}
	return emu_icache_tls = c;
}

/* Decodes the block at phys into the pools (not yet committed). */
static bool build(struct emu_icache *c, struct emu_block *b, uint64_t phys, const uint8_t *host_page,
		  enum emu_mode mode)
{
	unsigned off = phys & 0xfff, pos = 0, n = 0, have;
	bool chain = false, sync = false;
	uint8_t *bytes;

	if (c->insns_used + EMU_BLOCK_MAX > EMU_ICACHE_INSNS ||
	    c->bytes_used + EMU_BLOCK_MAX * EMU_INSN_MAX > EMU_ICACHE_BYTES ||
	    (c->jit && !emu_jit_buf_room(c->jit))) {
		/* Full: start again, every block built so far goes stale. */
		c->insns_used = c->bytes_used = 0;
		if (c->jit)
			emu_jit_buf_reset(c->jit);
		c->gen++;
		c->flushes++;
	}
	/* A translated block goes: the jump cache must not go on into it. */
	if (c->jit && b->native && b->gen == c->gen)
		emu_jit_buf_forget(c->jit);
	/* Decode from a copy, never from guest memory that another vCPU may be
	 * writing: what is decoded must be what is later validated against. */
	bytes = c->bytes + c->bytes_used;
	have = MIN(4096 - off, (unsigned)(EMU_BLOCK_MAX * EMU_INSN_MAX));
	memcpy(bytes, host_page + off, have);
	while (n < EMU_BLOCK_MAX && pos < have) {
		struct emu_insn *in = &c->insns[c->insns_used + n];
		size_t avail = MIN((size_t)EMU_INSN_MAX, (size_t)(have - pos));

		if (emu_decode(bytes + pos, avail, mode, in) != DECODE_OK)
			break; /* crosses the page, or faults: left to the slow path */
		pos += in->len;
		n++;
		chain = chains(in);
		sync = !emu_insn_keeps_session(in);
		if (!straight(in))
			break;
	}
	if (!n)
		return false;
	emu_exec_pick_block(&c->insns[c->insns_used], n, mode);
	*b = (struct emu_block){ .phys = phys, .session = c->session, .gen = c->gen,
				 .first = c->insns_used, .boff = c->bytes_used, .nbytes = (uint16_t)pos,
				 .ninsn = (uint8_t)n, .mode = (uint8_t)mode, .chain = chain,
				 .sync = sync };
	c->insns_used += n;
	c->bytes_used += pos;
	c->builds++;
	return true;
}

void emu_icache_translate(struct emu_block *b, unsigned cpl)
{
	struct emu_icache *c = emu_icache_tls;
	struct emu_jit_result r;

	if (!emu_jit_buf_room(c->jit))
		return;
	r = emu_jit_block(c->jit, &c->insns[b->first], b->ninsn, cpl);
	b->native = r.fn;
	b->native_n = r.ninsn;
	c->translations++;
}

/* The way of set (two slots) that holds the block at phys, or else the
 * one to build it in: an empty or stale one, else one not translated,
 * else each in turn. */
static struct emu_block *set_way(struct emu_icache *c, struct emu_block *set, uint64_t phys,
				 enum emu_mode mode)
{
	if (emu_icache_is(c, &set[0], phys, mode))
		return &set[0];
	if (emu_icache_is(c, &set[1], phys, mode))
		return &set[1];
	for (unsigned w = 0; w < 2; w++)
		if (set[w].gen != c->gen || !set[w].ninsn)
			return &set[w];
	if (!set[0].native != !set[1].native)
		return set[0].native ? &set[1] : &set[0];
	c->victim ^= 1;
	return &set[c->victim];
}

struct emu_block *emu_icache_lookup(struct emu_cpu *cpu, uint64_t phys, const uint8_t *host_page,
				    enum emu_mode mode, const struct emu_insn **insns)
{
	struct emu_icache *c = emu_icache_get();
	struct emu_block *b;

	if (!c)
		return NULL;
	b = set_way(c, &c->blocks[emu_icache_slot(phys, mode)], phys, mode);
	if (!emu_icache_is(c, b, phys, mode) ||
	    (b->session != c->session &&
	     !emu_icache_same(c->bytes + b->boff, host_page + (phys & 0xfff), b->nbytes))) {
		/* A miss, or the bytes changed since: decode (again). */
		if (!build(c, b, phys, host_page, mode))
			return NULL;
	}
	b->session = c->session;
	emu_code_mark(cpu, c, phys >> 12);
	*insns = &c->insns[b->first];
	return b;
}

/* ---- write tracking (icache.h) ---- */

static void set_plain(struct emu_cpu *cpu, uint64_t ppage, bool plain)
{
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
		struct emu_tlb_entry *e = &cpu->tlb.e[i];

		if (e->ppage == ppage && e->host && e->vpage != ~0ULL) {
			e->perm = plain ? e->perm | TLB_PLAIN : e->perm & ~TLB_PLAIN;
			emu_tlb_entry_tags(e);
		}
	}
}

void emu_code_mark_slow(struct emu_cpu *cpu, struct emu_icache *c, uint64_t ppage)
{
	bool in_sync = cpu->code_cache == c && cpu->code_epoch == c->mark_epoch;

	c->codemap[ppage >> 3] |= (uint8_t)(1u << (ppage & 7));
	c->mark_epoch++;
	if (cpu->mem)
		guest_mem_code_mark(cpu->mem, ppage, true);
	set_plain(cpu, ppage, false);
	if (in_sync) /* else the next emu_code_sync() goes through the whole TLB */
		cpu->code_epoch = c->mark_epoch;
}

void emu_code_sync_slow(struct emu_cpu *cpu, struct emu_icache *c)
{
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
		struct emu_tlb_entry *e = &cpu->tlb.e[i];

		if ((e->perm & TLB_PLAIN) && emu_code_marked(c, e->ppage)) {
			e->perm &= ~TLB_PLAIN;
			emu_tlb_entry_tags(e);
		}
	}
	cpu->code_cache = c;
	cpu->code_epoch = c->mark_epoch;
}

void emu_code_store(struct emu_cpu *cpu, uint64_t ppage)
{
	struct emu_icache *c = emu_icache_tls;

	if (ppage == cpu->code_page)
		cpu->code_written = true;
	if (!c || !emu_code_marked(c, ppage))
		return;
	/* Blocks from this page may be stale now: every block is compared
	 * again before it runs (a new session), and the page is marked again
	 * when one of its blocks passes. Until then, stores there are plain. */
	c->session++;
	if (cpu->mem)
		guest_mem_code_mark(cpu->mem, ppage, false);
	if (ppage < EMU_CODEMAP_PAGES) {
		c->codemap[ppage >> 3] &= (uint8_t)~(1u << (ppage & 7));
		if (cpu->code_cache == c)
			set_plain(cpu, ppage, true);
	}
}
