/* qcow2 internals shared by qcow2*.c (docs/block.md tells the story: the
 * on-disk layout, the order of writes for crash safety, caches, locks). */
#ifndef KUMO_BLOCK_QCOW2_H
#define KUMO_BLOCK_QCOW2_H

#include <pthread.h>
#include <stdint.h>

#include "kumo/block.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_V2_HDR 72
#define QCOW2_V3_HDR 104
#define QCOW2_MIN_CB 9
#define QCOW2_MAX_CB 21
#define QCOW2_MAX_OFFSET (1ULL << 56)          /* host offsets are bits 9..55 */
#define QCOW2_MAX_L1_BYTES (32ULL << 20)       /* as QEMU */
#define QCOW2_MAX_RT_BYTES (8ULL << 20)
#define QCOW2_MAX_SIZE (1ULL << 61)             /* virtual size */

/* Incompatible, compatible and autoclear feature bits. */
#define QCOW2_INC_DIRTY (1ULL << 0)
#define QCOW2_INC_CORRUPT (1ULL << 1)
#define QCOW2_INC_DATA_FILE (1ULL << 2)
#define QCOW2_INC_COMPRESSION (1ULL << 3)
#define QCOW2_INC_EXTL2 (1ULL << 4)
#define QCOW2_INC_KNOWN (QCOW2_INC_DIRTY | QCOW2_INC_CORRUPT | QCOW2_INC_COMPRESSION)
#define QCOW2_COMPAT_LAZY (1ULL << 0)

/* Header extensions. */
#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FMT 0xe2792acau
#define QCOW2_EXT_FEATURES 0x6803f857u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* Table entries. */
#define QCOW2_OFF_MASK 0x00fffffffffffe00ULL
#define QCOW2_COPIED (1ULL << 63)
#define QCOW2_COMPRESSED (1ULL << 62)
#define QCOW2_ZERO 1ULL
#define QCOW2_L1_RESERVED 0x7f000000000001ffULL
#define QCOW2_L2_RESERVED 0x3f000000000001feULL
#define QCOW2_RT_RESERVED 0x1ffULL

enum { QCOW2_ZLIB = 0, QCOW2_ZSTD = 1 };

/* A bounded cache of tables of one cluster (L2 tables or refcount blocks),
 * least recently used out. */
struct qcow2_cache_ent {
	uint64_t off;          /* 0: empty slot */
	uint64_t lru;
	bool dirty;
	uint8_t *data;
};

struct qcow2_cache {
	unsigned n;
	unsigned last;         /* the entry found last */
	uint64_t tick;
	struct qcow2_cache_ent *ents;
};

struct qcow2 {
	pthread_mutex_t lock;      /* all metadata below, and the caches */
	/* In-place data I/O outside lock holds this shared; freeing clusters
	 * for reuse takes it exclusive (no stale writer lands in a reused one). */
	pthread_rwlock_t io;
	int fd;
	bool unsafe;            /* img->unsafe: qcow2_sync does nothing */
	int version;
	unsigned cb;               /* cluster_bits */
	uint64_t cs;               /* cluster size */
	uint64_t incompat, compat, autoclear;
	unsigned refcount_order, refcount_bits;
	uint64_t rb_entries;       /* refcounts per refcount block */
	uint64_t l2_entries;
	unsigned header_length;
	int compression;
	unsigned csize_shift;      /* compressed L2 entries: sector count shift */
	uint64_t csize_mask, coff_mask;

	uint64_t l1_off;
	uint32_t l1_size;
	uint64_t *l1;              /* host order */
	bool l1_dirty;

	uint64_t rt_off;
	uint32_t rt_clusters;
	uint64_t rt_size;          /* entries */
	uint64_t *rt;
	bool rt_dirty;

	uint32_t nb_snapshots;
	uint64_t snapshots_off;

	uint64_t free_hint;        /* cluster index where free space search starts */
	struct qcow2_cache l2c, rbc;

	/* Clusters to free once the L2 tables that no longer point to them
	 * are on disk (freeing earlier would let a crash leave an L2 entry on
	 * a cluster with refcount 0, or reused). */
	uint64_t *pending_free;
	size_t npending, cap_pending;

	/* Compressed clusters are packed: the next free byte (512-aligned) in
	 * the host cluster the last one went to; 0: none. Dropped whenever
	 * clusters are freed (that one may be reused). */
	uint64_t cpack;

	bool writable;
	char backing_raw[1024];
	char backing_fmt[32];
};

/* qcow2_cache.c: tables and refcounts (all under q->lock). */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cs) WUR;
void qcow2_cache_free(struct qcow2_cache *c);
/* The L2 table at off (big-endian, as on disk), valid until the next call
 * into the cache; fresh: a new table, all zeros (no read). */
int qcow2_l2_get(struct qcow2 *q, uint64_t off, bool fresh, uint8_t **tbl) WUR;
void qcow2_l2_dirty(struct qcow2 *q, uint64_t off);
int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster, uint64_t *rc) WUR;
int qcow2_update_refcount(struct qcow2 *q, uint64_t cluster, int64_t delta) WUR;
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off) WUR;
int qcow2_free_later(struct qcow2 *q, uint64_t off, uint64_t nclusters) WUR;
int qcow2_flush_meta(struct qcow2 *q) WUR;
int qcow2_flush_refcounts(struct qcow2 *q) WUR;
uint64_t qcow2_rb_get(const struct qcow2 *q, const uint8_t *rb, uint64_t i);
void qcow2_rb_set(const struct qcow2 *q, uint8_t *rb, uint64_t i, uint64_t v);

/* qcow2_cluster.c: guest data. */
int qcow2_preadv(struct blk_image *img, const struct iovec *iov, int n, uint64_t off) WUR;
int qcow2_pwritev(struct blk_image *img, const struct iovec *iov, int n, uint64_t off) WUR;
int qcow2_discard(struct blk_image *img, uint64_t off, uint64_t len) WUR;
int qcow2_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len, bool may_unmap) WUR;
int qcow2_block_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
		       uint64_t *map) WUR;
int qcow2_write_compressed(struct blk_image *img, const void *buf, uint64_t off, size_t len) WUR;
int qcow2_make_empty(struct blk_image *img) WUR;
int qcow2_decompress(struct qcow2 *q, const uint8_t *in, size_t inlen, uint8_t *out) WUR;
/* The L2 entry of guest offset off (0 when its L2 table is unallocated). */
int qcow2_get_l2e(struct qcow2 *q, uint64_t off, uint64_t *l2e) WUR;

/* qcow2_check.c */
int qcow2_check(struct blk_image *img, bool repair_leaks, struct blk_check *out) WUR;

/* qcow2.c: helpers */
int qcow2_pread(int fd, void *buf, size_t len, uint64_t off) WUR;
int qcow2_pwrite(int fd, const void *buf, size_t len, uint64_t off) WUR;
int qcow2_sync(struct qcow2 *q) WUR;
int qcow2_write_l1_entries(struct qcow2 *q) WUR;

static inline uint64_t qcow2_be64(const uint8_t *p)
{
	return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
	       (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
	       (uint64_t)p[6] << 8 | p[7];
}

static inline uint32_t qcow2_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void qcow2_put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void qcow2_put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

#endif
