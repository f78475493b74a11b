/*
 * virtio_blk: a minimal modern virtio-pci driver (virtio 1.2, 4.1 and 2.7)
 * for the first virtio-blk device (1af4:1042) on PCI bus 0:
 *   1. its capabilities: common, notify, ISR and device configuration
 *      (vendor capabilities 0x09, cfg_type 1-4), MSI-X (0x11);
 *   2. the init sequence: reset, ACKNOWLEDGE, DRIVER, features VERSION_1 +
 *      FLUSH, FEATURES_OK (read back), MSI-X enabled with vector 0 for
 *      queue 0 and vector 1 for config changes, queue 0 (8 entries),
 *      DRIVER_OK;
 *   3. requests, one at a time, each completion awaited by its MSI-X
 *      interrupt: write 8 sectors (data in two descriptors), flush, read
 *      them back and compare, GET_ID (compared with blk.id= from the
 *      command line), read the last sector (OK) and the one past it
 *      (VIRTIO_BLK_S_IOERR); one interrupt per request;
 *   4. a read with the vector masked, by the MSI-X function mask and then
 *      by the entry's own mask bit: the used ring is polled, no interrupt
 *      arrives, the PBA bit is set; on unmask the interrupt fires and the
 *      PBA bit clears;
 *   5. a device reset (status reads back 0).
 * The written sectors stay on the disk for the host to check: sector s
 * (from WRITE_SECTOR) byte i is (s * 37 + i * 3 + 1) & 0xff.
 *
 * Command line: blk.sectors=N (the capacity to expect; optional),
 * blk.id=NAME (the serial GET_ID must return; optional).
 * Every failure has its own exit code (enum fail_code: kumo-vmm's status
 * is 64 + code).
 */
#include "guest.h"
#include "pci.h"

GUEST("virtio_blk");

enum fail_code {
	F_CMDLINE = 10,   /* a bad blk.* argument */
	F_NO_DEVICE,      /* no 1af4:1042 on bus 0 */
	F_CAPS,           /* a capability missing or malformed */
	F_BAR,            /* a capability's BAR unusable */
	F_RESET,          /* status did not read back 0 after a reset */
	F_FEATURES,       /* VERSION_1 or FLUSH not offered */
	F_FEATURES_OK,    /* the device refused our features */
	F_MSIX,           /* too few vectors, or a vector not accepted */
	F_QUEUE,          /* queue 0 missing, too small or not enabled */
	F_TIMEOUT,        /* no completion / interrupt within the watchdog */
	F_USED,           /* the used ring returned something odd */
	F_STATUS,         /* a request's status was not what it should be */
	F_DATA,           /* read-back data differs from what was written */
	F_ID,             /* GET_ID differs from blk.id= */
	F_CAPACITY,       /* capacity differs from blk.sectors= or too small */
	F_IRQ_COUNT,      /* interrupts != completions awaited by interrupt */
	F_MASKED_IRQ,     /* an interrupt arrived while its vector was masked */
	F_PBA,            /* the pending bit not set while masked / not cleared */
	F_DEVICE_STATUS,  /* the device set NEEDS_RESET or FAILED */
};

/* virtio-pci capability types (4.1.4) and common config offsets (4.1.4.3). */
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

/* MSI-X capability (PCI 3.0, 6.8.2). */
#define MSIX_CTRL 2
#define  MSIX_CTRL_ENABLE  0x8000
#define  MSIX_CTRL_MASKALL 0x4000
#define MSIX_TABLE 4
#define MSIX_PBA   8
#define MSIX_ENTRY_CTRL_MASKED 1

/* virtio-blk (5.2). */
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8 };
enum { BLK_S_OK = 0, BLK_S_IOERR = 1, BLK_S_UNSUPP = 2 };
#define SECTOR 512
#define ID_BYTES 20

#define VEC_QUEUE    0x50
#define VEC_CONFIG   0x51
#define VEC_WATCHDOG 0x41
/* ~10 s with a 1 GHz LAPIC timer clock (kvm, emu, QEMU) */
#define WATCHDOG_DIVIDE 128
#define WATCHDOG_COUNT 78125000u

#define QSIZE 8
#define WRITE_SECTOR 3
#define WRITE_SECTORS 8
#define FIRST_SEG 1024 /* the write's data: two descriptors, 1 KiB + 3 KiB */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
#define VRING_DESC_F_NEXT  1
#define VRING_DESC_F_WRITE 2

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

static struct vring_desc desc[QSIZE] __attribute__((aligned(4096)));
static struct vring_avail avail __attribute__((aligned(4096)));
static volatile struct vring_used used __attribute__((aligned(4096)));
static struct blk_req req;
static volatile uint8_t req_status;
static uint8_t wbuf[WRITE_SECTORS * SECTOR] __attribute__((aligned(4096)));
static uint8_t rbuf[WRITE_SECTORS * SECTOR] __attribute__((aligned(4096)));

/* The device as found. */
static unsigned slot;
static uint64_t cap_addr[CAP_TYPES];   /* BAR address + offset, per cfg_type */
static uint32_t cap_len[CAP_TYPES];
static uint32_t notify_mult;
static uint8_t msix_cap;
static uint64_t msix_table, msix_pba;
static uint64_t notify_addr;

static uint16_t avail_idx, used_seen;
static volatile unsigned queue_irqs, config_irqs, watchdog;
static unsigned irq_requests; /* requests awaited by interrupt */

__attribute__((noreturn, format(printf, 2, 3))) static void die(enum fail_code code, const char *fmt, ...)
{
	va_list ap;
	kprintf("TEST %s: FAIL ", guest_name);
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf(" (code %d)\n", code);
	guest_exit(code);
}

static void on_queue(struct int_frame *f) { (void)f; queue_irqs++; lapic_eoi(); }
static void on_config(struct int_frame *f) { (void)f; config_irqs++; lapic_eoi(); }
static void on_watchdog(struct int_frame *f) { (void)f; watchdog = 1; lapic_eoi(); }

/* ---- MMIO (uncached: the 3-4 GiB hole is mapped PCD by entry.S) ---- */

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

/* The value of "key=..." up to the next space, copied into buf; false if
 * the key is not there. */
static bool cmdline_arg(const char *key, char *buf, size_t size)
{
	const char *c = pvh_boot.cmdline;
	size_t klen = strlen(key);
	for (;;) {
		while (*c == ' ')
			c++;
		if (!*c)
			return false;
		if (strncmp(c, key, klen) == 0 && c[klen] == '=') {
			size_t n = 0;
			for (c += klen + 1; *c && *c != ' '; c++)
				if (n + 1 < size)
					buf[n++] = *c;
			buf[n] = 0;
			return true;
		}
		while (*c && *c != ' ')
			c++;
	}
}

static uint64_t parse_u64(const char *s)
{
	uint64_t v = 0;
	if (!*s)
		die(F_CMDLINE, "empty number");
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			die(F_CMDLINE, "bad number on the command line");
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

/* ---- finding the device ---- */

static bool on_cap(unsigned s, uint8_t off, uint8_t id, void *arg)
{
	(void)arg;
	if (id == PCI_CAP_ID_MSIX && !msix_cap) {
		msix_cap = off;
		return true;
	}
	if (id != PCI_CAP_ID_VNDR)
		return true;
	uint8_t len = pci_read8(s, off + 2), type = pci_read8(s, off + 3), bar = pci_read8(s, off + 4);
	uint32_t offset = pci_read32(s, off + 8), length = pci_read32(s, off + 12);
	kprintf("virtio_blk: cap at 0x%x: cfg_type %u bar %u offset 0x%x length 0x%x\n",
		off, type, bar, offset, length);
	if (type == 0 || type >= CAP_TYPES || cap_addr[type])
		return true; /* PCI config access (5) or another: not needed; the first of a type wins */
	if (len < 16 || (type == CAP_NOTIFY && len < 20))
		die(F_CAPS, "cfg_type %u capability of %u bytes", type, len);
	uint64_t base = pci_bar_addr(s, bar);
	if (!base || base + offset + length < base)
		die(F_BAR, "cfg_type %u in BAR %u, which is not a memory BAR", type, bar);
	cap_addr[type] = base + offset;
	cap_len[type] = length;
	if (type == CAP_NOTIFY)
		notify_mult = pci_read32(s, off + 16);
	return true;
}

static uint64_t msix_region(uint32_t reg, const char *what)
{
	uint64_t base = pci_bar_addr(slot, reg & 7);
	if (!base)
		die(F_MSIX, "MSI-X %s in BAR %u, which is not a memory BAR", what, reg & 7);
	return base + (reg & ~7u);
}

static void find_device(void)
{
	int s = pci_find(0x1af4, 0x1042);
	if (s < 0)
		die(F_NO_DEVICE, "no virtio-blk (1af4:1042) on PCI bus 0");
	slot = (unsigned)s;
	kprintf("virtio_blk: 00:%02x.0 1af4:1042 class 0x%06x\n", slot, pci_read32(slot, 0x08) >> 8);
	if (pci_caps(slot, on_cap, NULL) < 0)
		die(F_CAPS, "no capability list, or a pointer into the header");
	for (unsigned t = CAP_COMMON; t < CAP_TYPES; t++)
		if (!cap_addr[t])
			die(F_CAPS, "no cfg_type %u capability", t);
	if (cap_len[CAP_COMMON] < COMMON_LEN)
		die(F_CAPS, "common configuration of %u bytes", cap_len[CAP_COMMON]);
	if (cap_len[CAP_DEVICE] < 8)
		die(F_CAPS, "device configuration of %u bytes (no capacity)", cap_len[CAP_DEVICE]);
	if (!msix_cap)
		die(F_CAPS, "no MSI-X capability");
	msix_table = msix_region(pci_read32(slot, msix_cap + MSIX_TABLE), "table");
	msix_pba = msix_region(pci_read32(slot, msix_cap + MSIX_PBA), "PBA");
	uint64_t top = 0;
	for (unsigned t = CAP_COMMON; t < CAP_TYPES; t++)
		if (cap_addr[t] + cap_len[t] > top)
			top = cap_addr[t] + cap_len[t];
	if (top > ((uint64_t)4 << 30) && !paging_map_identity(0, top))
		die(F_BAR, "cannot map the BARs (up to 0x%lx)", top);
	uint16_t cmd = pci_read16(slot, PCI_COMMAND);
	pci_write16(slot, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	kprintf("virtio_blk: common 0x%lx notify 0x%lx (x%u) isr 0x%lx device 0x%lx, MSI-X table 0x%lx PBA 0x%lx\n",
		cap_addr[CAP_COMMON], cap_addr[CAP_NOTIFY], notify_mult, cap_addr[CAP_ISR],
		cap_addr[CAP_DEVICE], msix_table, msix_pba);
}

/* ---- MSI-X ---- */

static void msix_ctrl(uint16_t set, uint16_t clear)
{
	uint16_t v = pci_read16(slot, msix_cap + MSIX_CTRL);
	pci_write16(slot, msix_cap + MSIX_CTRL, (uint16_t)((v & ~clear) | set));
}

static void msix_entry_mask(unsigned vec, bool masked)
{
	wr32(msix_table + 16 * vec + 12, masked ? MSIX_ENTRY_CTRL_MASKED : 0);
}

static bool msix_pending(unsigned vec)
{
	return rd32(msix_pba + 4 * (vec / 32)) >> (vec % 32) & 1;
}

static void msix_setup(void)
{
	uint16_t ctrl = pci_read16(slot, msix_cap + MSIX_CTRL);
	unsigned n = (ctrl & 0x7ff) + 1u;
	kprintf("virtio_blk: MSI-X %u vectors\n", n);
	if (n < 2)
		die(F_MSIX, "%u MSI-X vectors, need 2", n);
	uint32_t dest = lapic_id();
	const uint8_t vecs[2] = {VEC_QUEUE, VEC_CONFIG};
	for (unsigned i = 0; i < 2; i++) {
		uint64_t e = msix_table + 16 * i;
		wr32(e + 0, 0xfee00000u | dest << 12); /* fixed, physical destination */
		wr32(e + 4, 0);
		wr32(e + 8, vecs[i]);                 /* edge */
		msix_entry_mask(i, false);
	}
	msix_ctrl(MSIX_CTRL_ENABLE, MSIX_CTRL_MASKALL);
}

/* ---- the device ---- */

static void check_device_status(const char *when)
{
	uint8_t st = rd8(common(C_STATUS));
	if (st & (S_NEEDS_RESET | S_FAILED))
		die(F_DEVICE_STATUS, "device status 0x%x %s", st, when);
}

static void reset_device(void)
{
	wr8(common(C_STATUS), 0);
	for (unsigned i = 0; i < 1000000; i++)
		if (rd8(common(C_STATUS)) == 0)
			return;
	die(F_RESET, "device status 0x%x after a reset", rd8(common(C_STATUS)));
}

static uint64_t device_features(void)
{
	wr32(common(C_DFSELECT), 0);
	uint64_t lo = rd32(common(C_DF));
	wr32(common(C_DFSELECT), 1);
	return lo | (uint64_t)rd32(common(C_DF)) << 32;
}

static void init_device(void)
{
	reset_device();
	wr8(common(C_STATUS), S_ACKNOWLEDGE);
	wr8(common(C_STATUS), S_ACKNOWLEDGE | S_DRIVER);

	uint64_t have = device_features();
	kprintf("virtio_blk: device features 0x%lx\n", have);
	uint64_t want = (uint64_t)1 << F_VERSION_1 | (uint64_t)1 << F_BLK_FLUSH;
	if ((have & want) != want)
		die(F_FEATURES, "device features 0x%lx lack VERSION_1 or FLUSH", have);
	wr32(common(C_GFSELECT), 0);
	wr32(common(C_GF), (uint32_t)want);
	wr32(common(C_GFSELECT), 1);
	wr32(common(C_GF), (uint32_t)(want >> 32));
	wr8(common(C_STATUS), S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(rd8(common(C_STATUS)) & S_FEATURES_OK))
		die(F_FEATURES_OK, "FEATURES_OK not kept (status 0x%x)", rd8(common(C_STATUS)));

	msix_setup();
	wr16(common(C_MSIX_CONFIG), 1);
	if (rd16(common(C_MSIX_CONFIG)) != 1)
		die(F_MSIX, "config vector 1 not accepted (reads 0x%x)", rd16(common(C_MSIX_CONFIG)));

	uint16_t nq = rd16(common(C_NUM_QUEUES));
	if (nq < 1)
		die(F_QUEUE, "%u queues", nq);
	wr16(common(C_Q_SELECT), 0);
	uint16_t max = rd16(common(C_Q_SIZE));
	kprintf("virtio_blk: %u queue(s), queue 0 up to %u entries\n", nq, max);
	if (max < QSIZE)
		die(F_QUEUE, "queue 0 has %u entries, need %d", max, QSIZE);
	wr16(common(C_Q_SIZE), QSIZE);
	wr16(common(C_Q_MSIX), 0);
	if (rd16(common(C_Q_MSIX)) != 0)
		die(F_MSIX, "queue vector 0 not accepted (reads 0x%x)", rd16(common(C_Q_MSIX)));
	wr64(common(C_Q_DESC), (uint64_t)(uintptr_t)desc);
	wr64(common(C_Q_AVAIL), (uint64_t)(uintptr_t)&avail);
	wr64(common(C_Q_USED), (uint64_t)(uintptr_t)&used);
	uint64_t noff = (uint64_t)rd16(common(C_Q_NOTIFY_OFF)) * notify_mult;
	if (noff + 2 > cap_len[CAP_NOTIFY])
		die(F_CAPS, "queue 0's notify offset 0x%lx outside the notify region", noff);
	notify_addr = cap_addr[CAP_NOTIFY] + noff;
	wr16(common(C_Q_ENABLE), 1);
	if (rd16(common(C_Q_ENABLE)) != 1)
		die(F_QUEUE, "queue 0 not enabled");

	wr8(common(C_STATUS), S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	check_device_status("after DRIVER_OK");
}

static uint64_t capacity(void)
{
	/* A 64-bit field read as two halves: retry while the generation moves. */
	for (;;) {
		uint8_t gen = rd8(common(0x15));
		uint64_t v = rd32(cap_addr[CAP_DEVICE]) | (uint64_t)rd32(cap_addr[CAP_DEVICE] + 4) << 32;
		if (rd8(common(0x15)) == gen)
			return v;
	}
}

/* ---- requests ---- */

enum wait_mode { BY_INTERRUPT, BY_POLLING };

static void watchdog_start(void)
{
	watchdog = 0;
	lapic_timer_oneshot(VEC_WATCHDOG, WATCHDOG_DIVIDE, WATCHDOG_COUNT);
}

/* One request: the header, up to two data segments (device-writable when
 * in), the status byte. Waits for its completion and returns the status.
 * Interrupts are off on entry and on return. */
static uint8_t request(uint32_t type, uint64_t sector, void *d1, uint32_t l1, void *d2, uint32_t l2,
		       bool in, enum wait_mode mode, const char *what)
{
	uint16_t wflag = in ? VRING_DESC_F_WRITE : 0;
	unsigned n = 0;
	req = (struct blk_req){.type = type, .sector = sector};
	req_status = 0xff;
	desc[n++] = (struct vring_desc){(uint64_t)(uintptr_t)&req, sizeof(req), VRING_DESC_F_NEXT, 1};
	if (l1)
		desc[n++] = (struct vring_desc){(uint64_t)(uintptr_t)d1, l1, wflag | VRING_DESC_F_NEXT, 0};
	if (l2)
		desc[n++] = (struct vring_desc){(uint64_t)(uintptr_t)d2, l2, wflag | VRING_DESC_F_NEXT, 0};
	desc[n] = (struct vring_desc){(uint64_t)(uintptr_t)&req_status, 1, VRING_DESC_F_WRITE, 0};
	for (unsigned i = 0; i < n; i++)
		desc[i].next = (uint16_t)(i + 1);

	avail.ring[avail_idx % QSIZE] = 0;
	mb();
	avail.idx = ++avail_idx;
	mb();
	wr16(notify_addr, 0);

	unsigned irqs = queue_irqs;
	watchdog_start();
	if (mode == BY_INTERRUPT) {
		irq_requests++;
		while (used.idx == used_seen || queue_irqs == irqs) {
			if (watchdog)
				die(F_TIMEOUT, "%s: no completion interrupt (used idx %u, %u interrupts)",
				    what, used.idx, queue_irqs - irqs);
			sti_hlt();
			cli();
		}
	} else {
		sti(); /* the watchdog may fire; the masked vector may not */
		while (used.idx == used_seen && !watchdog)
			cpu_relax();
		cli();
		if (used.idx == used_seen)
			die(F_TIMEOUT, "%s: no completion in the used ring (polling)", what);
	}
	lapic_timer_stop();
	mb();
	uint16_t got = (uint16_t)(used.idx - used_seen);
	uint32_t id = used.ring[used_seen % QSIZE].id, len = used.ring[used_seen % QSIZE].len;
	used_seen++;
	if (got != 1 || id != 0)
		die(F_USED, "%s: %u new used entries, head %u (want 1, head 0)", what, got, id);
	check_device_status(what);
	kprintf("virtio_blk: %s: status %u, used len %u\n", what, req_status, len);
	return req_status;
}

static uint8_t pattern(uint64_t sector, unsigned i) { return (uint8_t)(sector * 37 + i * 3 + 1); }

static void expect_status(uint8_t got, uint8_t want, const char *what)
{
	if (got != want)
		die(F_STATUS, "%s: status %u, want %u", what, got, want);
}

/* A read with vector 0 masked (by the function mask, or the entry's own
 * bit): completes by polling, the PBA bit goes up, no interrupt until
 * the unmask, then exactly one. */
static void masked_read(bool function_mask)
{
	const char *how = function_mask ? "function mask" : "vector mask";
	if (function_mask)
		msix_ctrl(MSIX_CTRL_MASKALL, 0);
	else
		msix_entry_mask(0, true);
	if (msix_pending(0))
		die(F_PBA, "%s: PBA bit 0 set before the request", how);
	unsigned irqs = queue_irqs;
	memset(rbuf, 0, SECTOR);
	expect_status(request(T_IN, WRITE_SECTOR, rbuf, SECTOR, NULL, 0, true, BY_POLLING, how), BLK_S_OK, how);
	if (memcmp(rbuf, wbuf, SECTOR) != 0)
		die(F_DATA, "%s: the read returned other data", how);
	/* The interrupt would be on its way by now: give it 10 ms to show. */
	sti();
	pit_delay_us(10000);
	cli();
	if (queue_irqs != irqs)
		die(F_MASKED_IRQ, "%s: %u interrupt(s) with the vector masked", how, queue_irqs - irqs);
	if (!msix_pending(0))
		die(F_PBA, "%s: PBA bit 0 clear after a masked completion", how);

	watchdog_start();
	if (function_mask)
		msix_ctrl(0, MSIX_CTRL_MASKALL);
	else
		msix_entry_mask(0, false);
	while (queue_irqs == irqs && !watchdog) {
		sti_hlt();
		cli();
	}
	lapic_timer_stop();
	if (queue_irqs != irqs + 1)
		die(F_TIMEOUT, "%s: %u interrupt(s) after the unmask, want 1", how, queue_irqs - irqs);
	if (msix_pending(0))
		die(F_PBA, "%s: PBA bit 0 still set after the interrupt", how);
	kprintf("virtio_blk: %s: PBA bit set while masked, one interrupt on unmask\n", how);
}

void guest_main(void)
{
	char arg[64], want_id[ID_BYTES + 1] = {0};
	uint64_t want_sectors = 0;
	if (cmdline_arg("blk.sectors", arg, sizeof(arg)))
		want_sectors = parse_u64(arg);
	bool have_id = cmdline_arg("blk.id", want_id, sizeof(want_id));

	idt_set_handler(VEC_QUEUE, on_queue);
	idt_set_handler(VEC_CONFIG, on_config);
	idt_set_handler(VEC_WATCHDOG, on_watchdog);
	pic_init(); /* all masked */
	lapic_init();

	find_device();
	init_device();

	uint64_t cap = capacity();
	kprintf("virtio_blk: capacity %lu sectors\n", cap);
	if (want_sectors && cap != want_sectors)
		die(F_CAPACITY, "capacity %lu sectors, want %lu", cap, want_sectors);
	if (cap < WRITE_SECTOR + WRITE_SECTORS)
		die(F_CAPACITY, "capacity %lu sectors is too small", cap);

	for (unsigned s = 0; s < WRITE_SECTORS; s++)
		for (unsigned i = 0; i < SECTOR; i++)
			wbuf[s * SECTOR + i] = pattern(WRITE_SECTOR + s, i);
	expect_status(request(T_OUT, WRITE_SECTOR, wbuf, FIRST_SEG, wbuf + FIRST_SEG,
			      sizeof(wbuf) - FIRST_SEG, false, BY_INTERRUPT, "write"), BLK_S_OK, "write");
	expect_status(request(T_FLUSH, 0, NULL, 0, NULL, 0, false, BY_INTERRUPT, "flush"), BLK_S_OK, "flush");
	memset(rbuf, 0, sizeof(rbuf));
	expect_status(request(T_IN, WRITE_SECTOR, rbuf, sizeof(rbuf), NULL, 0, true, BY_INTERRUPT, "read"),
		      BLK_S_OK, "read");
	for (unsigned i = 0; i < sizeof(rbuf); i++)
		if (rbuf[i] != wbuf[i])
			die(F_DATA, "read back: byte %u of sector %u is 0x%x, want 0x%x", i % SECTOR,
			    WRITE_SECTOR + i / SECTOR, rbuf[i], wbuf[i]);

	char id[ID_BYTES + 1] = {0};
	expect_status(request(T_GET_ID, 0, id, ID_BYTES, NULL, 0, true, BY_INTERRUPT, "get-id"), BLK_S_OK, "get-id");
	kprintf("virtio_blk: id \"%s\"\n", id);
	if (have_id && strncmp(id, want_id, ID_BYTES) != 0)
		die(F_ID, "id \"%s\", want \"%s\"", id, want_id);

	expect_status(request(T_IN, cap - 1, rbuf, SECTOR, NULL, 0, true, BY_INTERRUPT, "read last sector"),
		      BLK_S_OK, "read last sector");
	expect_status(request(T_IN, cap, rbuf, SECTOR, NULL, 0, true, BY_INTERRUPT, "read past the end"),
		      BLK_S_IOERR, "read past the end");

	kprintf("virtio_blk: %u interrupts for %u requests, %u config interrupts\n", queue_irqs,
		irq_requests, config_irqs);
	if (queue_irqs != irq_requests)
		die(F_IRQ_COUNT, "%u queue interrupts for %u requests", queue_irqs, irq_requests);

	masked_read(true);
	masked_read(false);

	reset_device();
	kprintf("virtio_blk: reset, %u queue interrupts in all\n", queue_irqs);
	pass();
}
