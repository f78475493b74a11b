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

/* The block starting at phys, whose page is host_page in this host's
 * memory (RAM), decoded in mode; validated against the bytes there now.
 * NULL when the first instruction cannot be cached: it crosses into the
 * next page, or does not decode (the caller takes the slow path, which
 * raises the exact fault). *insns receives the block's instructions. */
const struct emu_block *emu_icache_lookup(uint64_t phys, const uint8_t *host_page,
					  enum emu_mode mode, const struct emu_insn **insns);

#endif
