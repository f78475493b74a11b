/* The decoded-block cache: runs of decoded instructions keyed by the
 * PHYSICAL address of their first byte and the CPU mode they were decoded
 * in. Internal to src/emu; the design and why is in docs/emu.md ("Speed").
 *
 * Correctness does not rest on invalidation: a block keeps a copy of the
 * bytes it was decoded from, and emu_icache_lookup() compares that copy
 * with guest memory on every hit. Whoever changed the bytes — this vCPU,
 * another one, a device writing guest RAM directly — the next lookup sees
 * it and decodes again. Since a decode is a pure function of (bytes, mode),
 * the cache is also free to be shared by every CPU a thread runs: it is
 * per host thread, so vCPU threads never contend on it. */
#ifndef KUMO_EMU_ICACHE_H
#define KUMO_EMU_ICACHE_H

#include "cpu.h"

#define EMU_BLOCK_MAX 32        /* instructions in a block, at most */

struct emu_block {
	uint64_t phys;          /* physical address of the first byte */
	uint32_t gen;           /* the cache's generation when built: stale if older */
	uint32_t first;         /* the first instruction's index in the pool */
	uint32_t boff;          /* the bytes' offset in the byte pool */
	uint16_t nbytes;        /* bytes decoded: all in phys's 4 KiB page */
	uint8_t ninsn;          /* 1..EMU_BLOCK_MAX */
	uint8_t mode;           /* enum emu_mode */
};

#define EMU_ICACHE_BLOCKS_LOG2 13
#define EMU_ICACHE_BLOCKS (1u << EMU_ICACHE_BLOCKS_LOG2)
#define EMU_ICACHE_INSNS (32u * 1024)
#define EMU_ICACHE_BYTES (256u * 1024)

struct emu_icache {
	uint32_t gen;           /* blocks of older generations are stale */
	uint32_t insns_used, bytes_used;
	struct emu_block blocks[EMU_ICACHE_BLOCKS];
	struct emu_insn insns[EMU_ICACHE_INSNS];
	uint8_t bytes[EMU_ICACHE_BYTES];
};

/* This thread's cache; NULL until the first emu_icache_lookup(). */
extern __thread struct emu_icache *emu_icache_tls;

/* The block starting at phys, whose page is host_page in this host's
 * memory (RAM), decoded in mode; validated against the bytes there now.
 * NULL when the first instruction cannot be cached: it crosses into the
 * next page, or does not decode (the caller takes the slow path, which
 * raises the exact fault). *insns receives the block's instructions. */
const struct emu_block *emu_icache_lookup(uint64_t phys, const uint8_t *host_page,
					  enum emu_mode mode, const struct emu_insn **insns);

static inline unsigned emu_icache_slot(uint64_t phys, enum emu_mode mode)
{
	return (unsigned)(((phys ^ ((uint64_t)mode << 40)) * 0x9e3779b97f4a7c15ULL) >>
			  (64 - EMU_ICACHE_BLOCKS_LOG2));
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

/* emu_icache_lookup() with its hit path inline. */
static inline const struct emu_block *emu_icache_find(uint64_t phys, const uint8_t *host_page,
						      enum emu_mode mode, const struct emu_insn **insns)
{
	struct emu_icache *c = emu_icache_tls;
	const struct emu_block *b;

	if (__builtin_expect(c != NULL, 1)) {
		b = &c->blocks[emu_icache_slot(phys, mode)];
		if (b->phys == phys && b->gen == c->gen && b->mode == mode &&
		    emu_icache_same(c->bytes + b->boff, host_page + (phys & 0xfff), b->nbytes)) {
			*insns = &c->insns[b->first];
			return b;
		}
	}
	return emu_icache_lookup(phys, host_page, mode, insns);
}

#endif
