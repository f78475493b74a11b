/* The decoded-block cache: runs of decoded instructions keyed by the
 * PHYSICAL address of their first byte and the CPU mode they were decoded
 * in. Internal to src/emu; the design and why is in docs/emu.md ("Speed").
 *
 * Two mechanisms keep blocks true to guest memory (docs/emu.md, "Write
 * tracking"):
 *  - the byte check: a block keeps a copy of the bytes it was decoded
 *    from, compared with guest memory the first time the block is entered
 *    in a session. Whoever changed the bytes — this vCPU, another one, a
 *    device writing guest RAM directly — the next session sees it and
 *    decodes again;
 *  - write tracking, which makes a session last: the pages this thread's
 *    cache has validated blocks from are marked in a per-thread bitmap
 *    (codemap), the CPU's TLB entries for marked pages lack TLB_PLAIN so
 *    stores into them leave the inline fast path, and the slow path
 *    (emu_code_store) unmarks the page and starts a new session. Within a
 *    session, every store this CPU makes into code it has validated is
 *    therefore seen.
 * Since a decode is a pure function of (bytes, mode), the cache is also
 * free to be shared by every CPU a thread runs: it is per host thread, so
 * vCPU threads never contend on it. */
#ifndef KUMO_EMU_ICACHE_H
#define KUMO_EMU_ICACHE_H

#include "cpu.h"

#include "kumo/memory.h"

#define EMU_BLOCK_MAX 64        /* instructions in a block, at most */

struct emu_block {
	uint64_t phys;          /* physical address of the first byte */
	/* The cache's session (struct emu_icache) in which the bytes were
	 * last found equal to guest memory: within that session they need no
	 * comparing again. */
	uint64_t session;
	/* Chaining: the blocks last entered after this one, [0] when it ran
	 * to its end, [1] when it went elsewhere (a taken branch). Hints
	 * only: whoever follows one checks its phys, mode and gen. */
	struct emu_block *next[2];
	uint32_t gen;           /* the cache's generation when built: stale if older */
	uint32_t first;         /* the first instruction's index in the pool */
	uint32_t boff;          /* the bytes' offset in the byte pool */
	uint16_t nbytes;        /* bytes decoded: all in phys's 4 KiB page */
	uint8_t ninsn;          /* 1..EMU_BLOCK_MAX */
	uint8_t mode;           /* enum emu_mode */
	bool chain;             /* may be chained to its successors (see icache.c) */
	bool sync;              /* a new session after its last instruction (icache.c) */
	/* Translation (jit.h, when switched on): the first native_n
	 * instructions as one host function (it may leave earlier, at a
	 * taken Jcc). A block is translated once it has been entered
	 * emu_jit_hot() times (heat counts): code that runs a few times
	 * only is cheaper to interpret than to translate. */
	uint8_t native_n;
	uint8_t heat;
	uint64_t (*native)(struct emu_cpu *cpu);
};

_Static_assert(sizeof(struct emu_block) == 64, "a block is one cache line (struct emu_icache)");

#define EMU_ICACHE_BLOCKS_LOG2 18
#define EMU_ICACHE_BLOCKS (1u << EMU_ICACHE_BLOCKS_LOG2)
#define EMU_ICACHE_INSNS (1024u * 1024)
#define EMU_ICACHE_BYTES (8192u * 1024)
/* The codemap covers physical addresses below 2 TiB (guest RAM ends
 * below 1 TiB + 4 GiB); a page above counts as marked, always. */
#define EMU_CODEMAP_PAGES (1ULL << 29)

struct emu_icache {
	uint32_t gen;           /* blocks of older generations are stale */
	/* A session is a run of blocks from one physical code page, during
	 * which this thread's CPU wrote nothing to that page (a write there
	 * ends the block and the session: struct emu_cpu.code_written): what
	 * was compared once in a session stays true for it. The executor
	 * starts a new one on every emu_run(), code page change, code write,
	 * exception and slow-path instruction (exec.c). */
	uint64_t session;
	uint32_t insns_used, bytes_used;
	/* One bit per physical page: set while a block validated in the
	 * current session may come from it (emu_code_mark); never cleared
	 * but by a store through the slow path (emu_code_store), which
	 * starts a new session. mmap'ed, untouched parts cost nothing. */
	uint8_t *codemap;
	uint64_t mark_epoch;    /* bumped by every page newly marked */
	struct emu_jit_buf *jit; /* NULL: translation off (jit.h) */
	uint8_t jit_hot;        /* emu_jit_hot(), read once */
	/* Statistics (kumo run -v): blocks decoded, blocks translated, and
	 * times a full pool or code buffer emptied the whole cache. */
	uint64_t builds, translations, flushes;
	unsigned victim;        /* the way replaced last when both held blocks */
	void *raw;              /* what calloc gave (the cache is 64 bytes in from it at most) */
	_Alignas(64) struct emu_block blocks[EMU_ICACHE_BLOCKS]; /* a block is a cache line */
	struct emu_insn insns[EMU_ICACHE_INSNS];
	uint8_t bytes[EMU_ICACHE_BYTES];
};

/* This thread's cache; NULL until the first emu_icache_get(). */
extern __thread struct emu_icache *emu_icache_tls;

/* This thread's cache, made on first use; NULL if out of memory (every
 * instruction then takes the slow path). */
struct emu_icache *emu_icache_get(void);

/* The block starting at phys, whose page is host_page in this host's
 * memory (RAM), decoded in mode; validated against the bytes there now.
 * NULL when the first instruction cannot be cached: it crosses into the
 * next page, or does not decode (the caller takes the slow path, which
 * raises the exact fault). *insns receives the block's instructions. */
/* Translates b (a 64-bit block of the thread's cache, not yet
 * translated) for a CPU at privilege level cpl, if the code buffer has
 * room (else the next build empties it). */
void emu_icache_translate(struct emu_block *b, unsigned cpl);

/* False when a new session must start after in ran: a serialising
 * instruction, or one that may change what code is (icache.c). */
bool emu_insn_keeps_session(const struct emu_insn *in);

struct emu_block *emu_icache_lookup(struct emu_cpu *cpu, uint64_t phys, const uint8_t *host_page,
				    enum emu_mode mode, const struct emu_insn **insns);

/* A new session because code may have changed behind this thread's back
 * (emu_run's start, a serialising instruction). When guest memory tracks
 * code (struct guest_code: a machine of one vCPU, where only devices
 * write behind it, and say when they wrote into code), only if a device
 * did since this CPU last looked. */
static inline void emu_icache_foreign(struct emu_cpu *cpu, struct emu_icache *c)
{
	const struct guest_code *gc = cpu->mem ? cpu->mem->code : NULL;

	if (gc) {
		uint64_t e = atomic_load_explicit(&gc->epoch, memory_order_acquire);

		if (e == cpu->dma_epoch)
			return;
		cpu->dma_epoch = e;
	}
	c->session++;
}

/* ---- write tracking ---- */
static inline bool emu_code_marked(const struct emu_icache *c, uint64_t ppage)
{
	return ppage >= EMU_CODEMAP_PAGES || ((c->codemap[ppage >> 3] >> (ppage & 7)) & 1);
}

/* Marks ppage as holding validated code, and takes TLB_PLAIN from cpu's
 * TLB entries for it: cpu's stores there now take the slow path. */
void emu_code_mark_slow(struct emu_cpu *cpu, struct emu_icache *c, uint64_t ppage);

static inline void emu_code_mark(struct emu_cpu *cpu, struct emu_icache *c, uint64_t ppage)
{
	if (!emu_code_marked(c, ppage))
		emu_code_mark_slow(cpu, c, ppage);
}

/* At the start of emu_run(): brings cpu's TLB in line with this thread's
 * codemap (TLB_PLAIN off for every marked page) when pages were marked
 * since cpu last ran here, or cpu last ran on another thread. */
void emu_code_sync_slow(struct emu_cpu *cpu, struct emu_icache *c);

static inline void emu_code_sync(struct emu_cpu *cpu, struct emu_icache *c)
{
	if (cpu->code_cache != c || cpu->code_epoch != c->mark_epoch)
		emu_code_sync_slow(cpu, c);
}

/* The first of the two slots (ways) a block at phys may be in: the table
 * is two-way set-associative, so that two hot blocks whose hashes meet
 * do not evict each other on every entry (each eviction decodes again,
 * loses the translation, and eats pool space until the next flush). */
static inline unsigned emu_icache_slot(uint64_t phys, enum emu_mode mode)
{
	return (unsigned)(((phys ^ ((uint64_t)mode << 40)) * 0x9e3779b97f4a7c15ULL) >>
			  (64 - EMU_ICACHE_BLOCKS_LOG2)) & ~1u;
}

static inline bool emu_icache_is(const struct emu_icache *c, const struct emu_block *b, uint64_t phys,
				 enum emu_mode mode)
{
	return b->phys == phys && b->gen == c->gen && b->mode == mode;
}

/* memcmp(a, b, n) == 0, inline: blocks are short and this runs on every
 * block entered. */
static inline bool emu_icache_same(const uint8_t *a, const uint8_t *b, unsigned n)
{
	uint64_t x, y;
	uint32_t x4, y4;

	for (; n >= 8; a += 8, b += 8, n -= 8) {
		__builtin_memcpy(&x, a, 8);
		__builtin_memcpy(&y, b, 8);
		if (x != y)
			return false;
	}
	if (n >= 4) {
		__builtin_memcpy(&x4, a, 4);
		__builtin_memcpy(&y4, b, 4);
		if (x4 != y4)
			return false;
		a += 4, b += 4, n -= 4;
	}
	for (; n; a++, b++, n--)
		if (*a != *b)
			return false;
	return true;
}

/* emu_icache_lookup() with its hit path inline: a block validated in this
 * session (its page is then marked). Otherwise the lookup compares the
 * bytes, and marks the page. */
static inline struct emu_block *emu_icache_find(struct emu_cpu *cpu, uint64_t phys,
						const uint8_t *host_page, enum emu_mode mode,
						const struct emu_insn **insns)
{
	struct emu_icache *c = emu_icache_tls;
	struct emu_block *b;

	if (__builtin_expect(c != NULL, 1)) {
		b = &c->blocks[emu_icache_slot(phys, mode)];
		if ((emu_icache_is(c, b, phys, mode) && b->session == c->session) ||
		    (emu_icache_is(c, ++b, phys, mode) && b->session == c->session)) {
			*insns = &c->insns[b->first];
			return b;
		}
	}
	return emu_icache_lookup(cpu, phys, host_page, mode, insns);
}

/* The block b->next[k] if it is the one at phys (on the code page of
 * this session, in mode) and still valid; NULL to look it up. */
static inline struct emu_block *emu_icache_follow(struct emu_cpu *cpu, const struct emu_block *b,
						  unsigned k, uint64_t phys, const uint8_t *host_page,
						  enum emu_mode mode, const struct emu_insn **insns)
{
	struct emu_icache *c = emu_icache_tls;
	struct emu_block *n = b->next[k];

	if (!n || n->phys != phys || n->gen != c->gen || n->mode != mode)
		return NULL;
	if (n->session != c->session) {
		if (!emu_icache_same(c->bytes + n->boff, host_page + (phys & 0xfff), n->nbytes))
			return NULL;
		n->session = c->session;
		emu_code_mark(cpu, c, phys >> 12);
	}
	*insns = &c->insns[n->first];
	return n;
}

#endif
