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
#include "pci.h"

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

/* virtio-pci (4.1.4) */
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_TYPES = 5 };
enum {
	C_DFSELECT = 0x00, C_DF = 0x04, C_GFSELECT = 0x08, C_GF = 0x0c,
	C_MSIX_CONFIG = 0x10, C_NUM_QUEUES = 0x12, C_STATUS = 0x14,
	C_Q_SELECT = 0x16, C_Q_SIZE = 0x18, C_Q_MSIX = 0x1a, C_Q_ENABLE = 0x1c,
	C_Q_NOTIFY_OFF = 0x1e, C_Q_DESC = 0x20, C_Q_AVAIL = 0x28, C_Q_USED = 0x30,
	COMMON_LEN = 0x38,
};
#define S_ACKNOWLEDGE 1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 64
#define S_FAILED      128
#define F_BLK_FLUSH 9
#define F_VERSION_1 32
#define NO_VECTOR 0xffff

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4 };

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
#define VRING_DESC_F_NEXT  1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_avail {
	uint16_t flags, idx, ring[QSIZE], used_event;
};

struct vring_used {
	uint16_t flags, idx;
	struct { uint32_t id, len; } ring[QSIZE];
	uint16_t avail_event;
};

struct blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

struct slot {
	struct blk_req req;
	volatile uint8_t status;
	bool busy;
};

static struct vring_desc desc[QSIZE] __attribute__((aligned(4096)));
static struct vring_avail avail __attribute__((aligned(4096)));
static volatile struct vring_used used __attribute__((aligned(4096)));
static struct slot slots[QD];
static uint8_t buf[QD][SEQ_PER_REQ * BLOCK] __attribute__((aligned(4096)));

static uint64_t cap_addr[CAP_TYPES];
static uint32_t cap_len[CAP_TYPES];
static uint32_t notify_mult;
static uint64_t notify_addr;
static uint16_t avail_idx, used_seen;
static unsigned busy;
static uint64_t tsc_per_s;

static inline uint8_t rd8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t rd16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t rd32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void wr8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void wr16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void wr32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void wr64(uint64_t a, uint64_t v) { wr32(a, (uint32_t)v); wr32(a + 4, (uint32_t)(v >> 32)); }
static inline void mb(void) { __asm__ volatile("mfence" : : : "memory"); }
static uint64_t common(unsigned off) { return cap_addr[CAP_COMMON] + off; }

/* ---- the command line ---- */

static bool cmdline_num(const char *key, uint64_t *out)
{
	const char *c = pvh_boot.cmdline;
	size_t klen = strlen(key);
	for (;;) {
		while (*c == ' ')
			c++;
		if (!*c)
			return false;
		if (strncmp(c, key, klen) == 0 && c[klen] == '=') {
			uint64_t v = 0;
			c += klen + 1;
			if (*c < '0' || *c > '9')
				fail("%s= is not a number", key);
			for (; *c && *c != ' '; c++) {
				if (*c < '0' || *c > '9' || v > (UINT64_MAX - 9) / 10)
					fail("%s= is not a number", key);
				v = v * 10 + (uint64_t)(*c - '0');
			}
			*out = v;
			return true;
		}
		while (*c && *c != ' ')
			c++;
	}
}

/* ---- the device ---- */

static bool on_cap(unsigned s, uint8_t off, uint8_t id, void *arg)
{
	(void)arg;
	if (id != PCI_CAP_ID_VNDR)
		return true;
	uint8_t len = pci_read8(s, off + 2), type = pci_read8(s, off + 3), bar = pci_read8(s, off + 4);
	uint32_t offset = pci_read32(s, off + 8), length = pci_read32(s, off + 12);
	if (type == 0 || type >= CAP_TYPES || cap_addr[type])
		return true;
	if (len < 16 || (type == CAP_NOTIFY && len < 20))
		fail("cfg_type %u capability of %u bytes", type, len);
	uint64_t base = pci_bar_addr(s, bar);
	if (!base)
		fail("cfg_type %u in BAR %u, not a memory BAR", type, bar);
	cap_addr[type] = base + offset;
	cap_len[type] = length;
	if (type == CAP_NOTIFY)
		notify_mult = pci_read32(s, off + 16);
	return true;
}

static void find_device(void)
{
	int s = pci_find(0x1af4, 0x1042);
	if (s < 0)
		fail("no virtio-blk (1af4:1042) on PCI bus 0");
	if (pci_caps((unsigned)s, on_cap, NULL) < 0)
		fail("no capability list");
	uint64_t top = 0;
	for (unsigned t = CAP_COMMON; t < CAP_TYPES; t++) {
		if (!cap_addr[t])
			fail("no cfg_type %u capability", t);
		if (cap_addr[t] + cap_len[t] > top)
			top = cap_addr[t] + cap_len[t];
	}
	if (cap_len[CAP_COMMON] < COMMON_LEN || cap_len[CAP_DEVICE] < 8)
		fail("common or device configuration too small");
	if (top > ((uint64_t)4 << 30) && !paging_map_identity(0, top))
		fail("cannot map the BARs (up to 0x%lx)", top);
	uint16_t cmd = pci_read16((unsigned)s, PCI_COMMAND);
	pci_write16((unsigned)s, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

static void init_device(void)
{
	wr8(common(C_STATUS), 0);
	for (unsigned i = 0; rd8(common(C_STATUS)); i++)
		if (i > 1000000)
			fail("device status 0x%x after a reset", rd8(common(C_STATUS)));
	wr8(common(C_STATUS), S_ACKNOWLEDGE);
	wr8(common(C_STATUS), S_ACKNOWLEDGE | S_DRIVER);
	wr32(common(C_DFSELECT), 0);
	uint64_t have = rd32(common(C_DF));
	wr32(common(C_DFSELECT), 1);
	have |= (uint64_t)rd32(common(C_DF)) << 32;
	uint64_t want = (uint64_t)1 << F_VERSION_1 | (uint64_t)1 << F_BLK_FLUSH;
	if ((have & want) != want)
		fail("device features 0x%lx lack VERSION_1 or FLUSH", have);
	wr32(common(C_GFSELECT), 0);
	wr32(common(C_GF), (uint32_t)want);
	wr32(common(C_GFSELECT), 1);
	wr32(common(C_GF), (uint32_t)(want >> 32));
	wr8(common(C_STATUS), S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(rd8(common(C_STATUS)) & S_FEATURES_OK))
		fail("FEATURES_OK not kept");
	wr16(common(C_MSIX_CONFIG), NO_VECTOR);
	wr16(common(C_Q_SELECT), 0);
	uint16_t max = rd16(common(C_Q_SIZE));
	if (max < QSIZE)
		fail("queue 0 has %u entries, need %d", max, QSIZE);
	wr16(common(C_Q_SIZE), QSIZE);
	wr16(common(C_Q_MSIX), NO_VECTOR);
	wr64(common(C_Q_DESC), (uint64_t)(uintptr_t)desc);
	wr64(common(C_Q_AVAIL), (uint64_t)(uintptr_t)&avail);
	wr64(common(C_Q_USED), (uint64_t)(uintptr_t)&used);
	uint64_t noff = (uint64_t)rd16(common(C_Q_NOTIFY_OFF)) * notify_mult;
	if (noff + 2 > cap_len[CAP_NOTIFY])
		fail("notify offset 0x%lx outside the notify region", noff);
	notify_addr = cap_addr[CAP_NOTIFY] + noff;
	avail.flags = VRING_AVAIL_F_NO_INTERRUPT;
	wr16(common(C_Q_ENABLE), 1);
	wr8(common(C_STATUS), S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static uint64_t capacity(void)
{
	for (;;) {
		uint8_t gen = rd8(common(0x15));
		uint64_t v = rd32(cap_addr[CAP_DEVICE]) | (uint64_t)rd32(cap_addr[CAP_DEVICE] + 4) << 32;
		if (rd8(common(0x15)) == gen)
			return v;
	}
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
	mb();
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
	s->req = (struct blk_req){.type = type, .sector = sector};
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
	mb();
	avail.idx = ++avail_idx;
	mb();
	wr16(notify_addr, 0);
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
	submit(i, T_OUT, block * (BLOCK / SECTOR), (uint32_t)(n * BLOCK));
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
	submit(get_slot(), T_FLUSH, 0, 0);
	drain();
	kprintf("blk_crash: durable %u\n", gen);
}

void guest_main(void)
{
	uint64_t base = 1, blocks = 0, gens = 0;
	cmdline_num("crash.base", &base);
	cmdline_num("crash.blocks", &blocks);
	cmdline_num("crash.gens", &gens);
	if (base == 0 || base + gens > UINT32_MAX)
		fail("crash.base=%lu crash.gens=%lu out of range", base, gens);

	tsc_per_s = (uint64_t)pit_tsc_khz(20) * 1000;
	if (!tsc_per_s)
		fail("TSC frequency 0");
	find_device();
	init_device();
	uint64_t cap = capacity() / (BLOCK / SECTOR);
	if (!blocks)
		blocks = cap;
	if (blocks < SEQ_BLOCKS || blocks > cap)
		fail("crash.blocks=%lu: the disk has %lu blocks (at least %d needed)", blocks, cap, SEQ_BLOCKS);
	kprintf("blk_crash: %lu blocks, from generation %lu\n", blocks, base);
	for (uint64_t g = base; !gens || g < base + gens; g++)
		generation((uint32_t)g, blocks);
	pass();
}
