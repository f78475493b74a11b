/*
 * blk_crash: a heavy, endless write stream on the first virtio-blk device
 * (1af4:1042), for the crash-safety test (tests/integration/qcow2-crash.py),
 * which kills the VMM at a random moment and checks the image afterwards.
 *
 * The disk is seen as 4 KiB blocks. Generation g (from crash.base= up)
 * writes a set of blocks that depends only on g (the host replays it):
 *   - SEQ_BLOCKS sequential blocks from (g * SEQ_BLOCKS) % blocks, in
 *     requests of SEQ_PER_REQ blocks (wrapping at the end of the disk);
 *   - SCATTER single blocks at splitmix64(g, i) % blocks.
 * Up to QD requests are in flight at once (the device completes them in
 * any order); when every write of g has completed, a flush, and when the
 * flush has completed the guest prints "blk_crash: durable g". Before the
 * first write of g it prints "blk_crash: start g".
 *
 * Sector s written by generation g holds 32 copies of the 16-byte record
 * { MAGIC, s, g, s ^ g ^ MAGIC2 } (little endian u32s): each sector says
 * who wrote it, and a torn or misplaced sector cannot look valid.
 *
 * Command line: crash.base=G (first generation, default 1),
 * crash.blocks=N (blocks of the disk to use, default all, at most the
 * capacity), crash.gens=N (stop after N generations with PASS; default 0:
 * never stop, the host kills the VMM).
 *
 * No interrupts: completions are found by polling the used ring, each wait
 * bounded by the TSC (10 s). Failures exit with 1 (kumo-vmm status 65).
 */
#include "guest.h"
#include "cmdline.h"
#include "virtio.h"

GUEST("blk_crash");

#define MAGIC  0x6b756d6fu /* "kumo" */
#define MAGIC2 0x43524153u /* "CRAS" */

#define BLOCK       4096
#define SECTOR      512
#define SEQ_BLOCKS  64
#define SEQ_PER_REQ 16
#define SCATTER     32
#define QD          16          /* requests in flight */
#define QSIZE       64          /* descriptors: 3 per request */
#define TIMEOUT_S   10

struct slot {
	struct virtio_blk_req req;
	volatile uint8_t status;
	bool busy;
};

static struct vring_desc desc[QSIZE] __attribute__((aligned(4096)));
static VRING_AVAIL(QSIZE) avail __attribute__((aligned(4096)));
static volatile VRING_USED(QSIZE) used __attribute__((aligned(4096)));
static struct slot slots[QD];
static uint8_t buf[QD][SEQ_PER_REQ * BLOCK] __attribute__((aligned(4096)));

static struct virtio_pci dev;
static uint64_t notify_addr;
static uint16_t avail_idx, used_seen;
static unsigned busy;
static uint64_t tsc_per_s;

/* Every failure exits with 1. */
__attribute__((noreturn)) static void on_virtio_fail(enum virtio_err err, const char *fmt, va_list ap)
{
	(void)err;
	vfail_code(1, fmt, ap);
}

/* The command line's number for prefix (e.g. "crash.base="), if there. */
static void cmdline_num(const char *prefix, uint64_t *out)
{
	const char *val = cmdline_find(prefix);
	if (val && !cmdline_parse_u64(val, out))
		fail("%s is not a number", prefix);
}

/* The first virtio-blk device, polled: no MSI-X vectors, no interrupts. */
static void init_device(void)
{
	dev.fail = on_virtio_fail;
	virtio_pci_find(&dev, 0x1042, 8);
	virtio_negotiate(&dev, (uint64_t)1 << VIRTIO_F_VERSION_1 | (uint64_t)1 << VIRTIO_BLK_F_FLUSH);
	virtio_config_vector(&dev, VIRTIO_NO_VECTOR);
	avail.flags = VRING_AVAIL_F_NO_INTERRUPT;
	notify_addr = virtio_queue_setup(&dev, 0, QSIZE, VIRTIO_NO_VECTOR, desc, &avail, &used);
	virtio_driver_ok(&dev);
}

/* ---- requests: slot i owns descriptors 3i..3i+2 and buf[i] ---- */

/* Reaps one completion (polling, bounded); fails on an error status. */
static void reap_one(void)
{
	uint64_t t0 = rdtsc();
	while (used.idx == used_seen) {
		if (rdtsc() - t0 > TIMEOUT_S * tsc_per_s)
			fail("no completion within %u s (%u in flight)", TIMEOUT_S, busy);
		cpu_relax();
	}
	mfence();
	uint32_t id = used.ring[used_seen % QSIZE].id;
	used_seen++;
	if (id % 3 || id / 3 >= QD || !slots[id / 3].busy)
		fail("used ring returned head %u", id);
	struct slot *s = &slots[id / 3];
	if (s->status != 0)
		fail("request type %u sector %lu: status %u", s->req.type, s->req.sector, s->status);
	s->busy = false;
	busy--;
}

static unsigned get_slot(void)
{
	while (busy == QD)
		reap_one();
	for (unsigned i = 0; i < QD; i++)
		if (!slots[i].busy)
			return i;
	fail("no free slot with %u busy", busy);
}

static void submit(unsigned i, uint32_t type, uint64_t sector, uint32_t len)
{
	struct slot *s = &slots[i];
	unsigned d = 3 * i, n = 0;
	s->req = (struct virtio_blk_req){.type = type, .sector = sector};
	s->status = 0xff;
	s->busy = true;
	busy++;
	desc[d + n++] = (struct vring_desc){(uint64_t)(uintptr_t)&s->req, sizeof(s->req), VRING_DESC_F_NEXT, 0};
	if (len)
		desc[d + n++] = (struct vring_desc){(uint64_t)(uintptr_t)buf[i], len, VRING_DESC_F_NEXT, 0};
	desc[d + n] = (struct vring_desc){(uint64_t)(uintptr_t)&s->status, 1, VRING_DESC_F_WRITE, 0};
	for (unsigned k = 0; k < n; k++)
		desc[d + k].next = (uint16_t)(d + k + 1);
	avail.ring[avail_idx % QSIZE] = (uint16_t)d;
	mfence();
	avail.idx = ++avail_idx;
	mfence();
	mmio_write16(notify_addr, 0);
}

static void drain(void)
{
	while (busy)
		reap_one();
}

/* ---- the write stream ---- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void fill(uint8_t *p, uint64_t block, uint64_t nblocks, uint32_t gen)
{
	uint32_t *w = (uint32_t *)p;
	for (uint64_t s = block * (BLOCK / SECTOR); s < (block + nblocks) * (BLOCK / SECTOR); s++)
		for (unsigned k = 0; k < SECTOR / 16; k++) {
			*w++ = MAGIC;
			*w++ = (uint32_t)s;
			*w++ = gen;
			*w++ = (uint32_t)s ^ gen ^ MAGIC2;
		}
}

static void write_blocks(uint64_t block, uint64_t n, uint32_t gen)
{
	unsigned i = get_slot();
	fill(buf[i], block, n, gen);
	submit(i, VIRTIO_BLK_T_OUT, block * (BLOCK / SECTOR), (uint32_t)(n * BLOCK));
}

static void generation(uint32_t gen, uint64_t blocks)
{
	kprintf("blk_crash: start %u\n", gen);
	uint64_t start = (uint64_t)gen * SEQ_BLOCKS % blocks;
	for (uint64_t done = 0; done < SEQ_BLOCKS;) {
		uint64_t b = (start + done) % blocks, n = SEQ_PER_REQ;
		if (n > SEQ_BLOCKS - done)
			n = SEQ_BLOCKS - done;
		if (n > blocks - b)
			n = blocks - b;
		write_blocks(b, n, gen);
		done += n;
	}
	for (uint64_t i = 0; i < SCATTER; i++)
		write_blocks(splitmix64((uint64_t)gen << 32 | i) % blocks, 1, gen);
	drain();
	submit(get_slot(), VIRTIO_BLK_T_FLUSH, 0, 0);
	drain();
	kprintf("blk_crash: durable %u\n", gen);
}

void guest_main(void)
{
	uint64_t base = 1, blocks = 0, gens = 0;
	cmdline_num("crash.base=", &base);
	cmdline_num("crash.blocks=", &blocks);
	cmdline_num("crash.gens=", &gens);
	if (base == 0 || base + gens > UINT32_MAX)
		fail("crash.base=%lu crash.gens=%lu out of range", base, gens);

	tsc_per_s = (uint64_t)pit_tsc_khz(20) * 1000;
	if (!tsc_per_s)
		fail("TSC frequency 0");
	init_device();
	uint64_t cap = virtio_config_read64(&dev, 0) / (BLOCK / SECTOR);
	if (!blocks)
		blocks = cap;
	if (blocks < SEQ_BLOCKS || blocks > cap)
		fail("crash.blocks=%lu: the disk has %lu blocks (at least %d needed)", blocks, cap, SEQ_BLOCKS);
	kprintf("blk_crash: %lu blocks, from generation %lu\n", blocks, base);
	for (uint64_t g = base; !gens || g < base + gens; g++)
		generation((uint32_t)g, blocks);
	pass();
}
