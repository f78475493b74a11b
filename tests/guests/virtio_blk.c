/*
 * virtio_blk: a minimal modern virtio-pci driver (virtio 1.2, 4.1 and 2.7;
 * the discovery and init sequence are lib/virtio.c)
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
#include "cmdline.h"
#include "pci.h"
#include "virtio.h"

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

/* MSI-X capability (PCI 3.0, 6.8.2). */
#define MSIX_CTRL 2
#define  MSIX_CTRL_ENABLE  0x8000
#define  MSIX_CTRL_MASKALL 0x4000
#define MSIX_TABLE 4
#define MSIX_PBA   8
#define MSIX_ENTRY_CTRL_MASKED 1

/* virtio-blk (5.2). */
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

static struct vring_desc desc[QSIZE] __attribute__((aligned(4096)));
static VRING_AVAIL(QSIZE) avail __attribute__((aligned(4096)));
static volatile VRING_USED(QSIZE) used __attribute__((aligned(4096)));
static struct virtio_blk_req req;
static volatile uint8_t req_status;
static uint8_t wbuf[WRITE_SECTORS * SECTOR] __attribute__((aligned(4096)));
static uint8_t rbuf[WRITE_SECTORS * SECTOR] __attribute__((aligned(4096)));

/* The device as found. */
static struct virtio_pci dev = {.log = "virtio_blk"};
static uint8_t msix_cap;
static uint64_t msix_table, msix_pba;
static uint64_t notify_addr;

static uint16_t avail_idx, used_seen;
static volatile unsigned queue_irqs, config_irqs, watchdog;
static unsigned irq_requests; /* requests awaited by interrupt */

__attribute__((noreturn, format(printf, 2, 3))) static void die(enum fail_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_code(code, fmt, ap);
}

static const enum fail_code virtio_codes[] = {
	[VIRTIO_E_NO_DEVICE] = F_NO_DEVICE,
	[VIRTIO_E_CAPS] = F_CAPS,
	[VIRTIO_E_BAR] = F_BAR,
	[VIRTIO_E_RESET] = F_RESET,
	[VIRTIO_E_FEATURES] = F_FEATURES,
	[VIRTIO_E_FEATURES_OK] = F_FEATURES_OK,
	[VIRTIO_E_MSIX] = F_MSIX,
	[VIRTIO_E_QUEUE] = F_QUEUE,
	[VIRTIO_E_STATUS] = F_DEVICE_STATUS,
};

__attribute__((noreturn)) static void on_virtio_fail(enum virtio_err err, const char *fmt, va_list ap)
{
	vfail_code(virtio_codes[err], fmt, ap);
}

static void on_queue(struct int_frame *f) { (void)f; queue_irqs++; lapic_eoi(); }
static void on_config(struct int_frame *f) { (void)f; config_irqs++; lapic_eoi(); }
static void on_watchdog(struct int_frame *f) { (void)f; watchdog = 1; lapic_eoi(); }

/* ---- finding the device ---- */

static void on_other_cap(unsigned s, uint8_t off, uint8_t id)
{
	(void)s;
	if (id == PCI_CAP_ID_MSIX && !msix_cap)
		msix_cap = off;
}

static uint64_t msix_region(uint32_t reg, const char *what)
{
	uint64_t base = pci_bar_addr(dev.slot, reg & 7);
	if (!base)
		die(F_MSIX, "MSI-X %s in BAR %u, which is not a memory BAR", what, reg & 7);
	return base + (reg & ~7u);
}

static void find_device(void)
{
	dev.fail = on_virtio_fail;
	dev.other_cap = on_other_cap;
	virtio_pci_find(&dev, 0x1042, 8);
	if (!msix_cap)
		die(F_CAPS, "no MSI-X capability");
	msix_table = msix_region(pci_read32(dev.slot, msix_cap + MSIX_TABLE), "table");
	msix_pba = msix_region(pci_read32(dev.slot, msix_cap + MSIX_PBA), "PBA");
	kprintf("virtio_blk: common 0x%lx notify 0x%lx (x%u) isr 0x%lx device 0x%lx, MSI-X table 0x%lx PBA 0x%lx\n",
		dev.cap_addr[VIRTIO_CAP_COMMON], dev.cap_addr[VIRTIO_CAP_NOTIFY], dev.notify_mult,
		dev.cap_addr[VIRTIO_CAP_ISR], dev.cap_addr[VIRTIO_CAP_DEVICE], msix_table, msix_pba);
}

/* ---- MSI-X ---- */

static void msix_ctrl(uint16_t set, uint16_t clear)
{
	uint16_t v = pci_read16(dev.slot, msix_cap + MSIX_CTRL);
	pci_write16(dev.slot, msix_cap + MSIX_CTRL, (uint16_t)((v & ~clear) | set));
}

static void msix_entry_mask(unsigned vec, bool masked)
{
	mmio_write32(msix_table + 16 * vec + 12, masked ? MSIX_ENTRY_CTRL_MASKED : 0);
}

static bool msix_pending(unsigned vec)
{
	return mmio_read32(msix_pba + 4 * (vec / 32)) >> (vec % 32) & 1;
}

static void msix_setup(void)
{
	uint16_t ctrl = pci_read16(dev.slot, msix_cap + MSIX_CTRL);
	unsigned n = (ctrl & 0x7ff) + 1u;
	kprintf("virtio_blk: MSI-X %u vectors\n", n);
	if (n < 2)
		die(F_MSIX, "%u MSI-X vectors, need 2", n);
	uint32_t dest = lapic_id();
	const uint8_t vecs[2] = {VEC_QUEUE, VEC_CONFIG};
	for (unsigned i = 0; i < 2; i++) {
		uint64_t e = msix_table + 16 * i;
		mmio_write32(e + 0, 0xfee00000u | dest << 12); /* fixed, physical destination */
		mmio_write32(e + 4, 0);
		mmio_write32(e + 8, vecs[i]);                 /* edge */
		msix_entry_mask(i, false);
	}
	msix_ctrl(MSIX_CTRL_ENABLE, MSIX_CTRL_MASKALL);
}

/* ---- the device ---- */

static void check_device_status(const char *when)
{
	uint8_t st = virtio_status(&dev);
	if (st & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED))
		die(F_DEVICE_STATUS, "device status 0x%x %s", st, when);
}

/* Features VERSION_1 + FLUSH, MSI-X: vector 1 for config changes, 0 for
 * queue 0. */
static void init_device(void)
{
	virtio_negotiate(&dev, (uint64_t)1 << VIRTIO_F_VERSION_1 | (uint64_t)1 << VIRTIO_BLK_F_FLUSH);
	msix_setup();
	virtio_config_vector(&dev, 1);
	notify_addr = virtio_queue_setup(&dev, 0, QSIZE, 0, desc, &avail, &used);
	virtio_driver_ok(&dev);
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
	req = (struct virtio_blk_req){.type = type, .sector = sector};
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
	mfence();
	avail.idx = ++avail_idx;
	mfence();
	mmio_write16(notify_addr, 0);

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
	mfence();
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
	expect_status(request(VIRTIO_BLK_T_IN, WRITE_SECTOR, rbuf, SECTOR, NULL, 0, true, BY_POLLING, how), VIRTIO_BLK_S_OK, how);
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
	char want_id[ID_BYTES + 1] = {0};
	uint64_t want_sectors = 0;
	const char *sectors = cmdline_find("blk.sectors=");
	if (sectors && !cmdline_parse_u64(sectors, &want_sectors))
		die(F_CMDLINE, "bad number on the command line");
	bool have_id = cmdline_copy("blk.id=", want_id, sizeof(want_id));

	idt_set_handler(VEC_QUEUE, on_queue);
	idt_set_handler(VEC_CONFIG, on_config);
	idt_set_handler(VEC_WATCHDOG, on_watchdog);
	pic_init(); /* all masked */
	lapic_init();

	find_device();
	init_device();

	uint64_t cap = virtio_config_read64(&dev, 0);
	kprintf("virtio_blk: capacity %lu sectors\n", cap);
	if (want_sectors && cap != want_sectors)
		die(F_CAPACITY, "capacity %lu sectors, want %lu", cap, want_sectors);
	if (cap < WRITE_SECTOR + WRITE_SECTORS)
		die(F_CAPACITY, "capacity %lu sectors is too small", cap);

	for (unsigned s = 0; s < WRITE_SECTORS; s++)
		for (unsigned i = 0; i < SECTOR; i++)
			wbuf[s * SECTOR + i] = pattern(WRITE_SECTOR + s, i);
	expect_status(request(VIRTIO_BLK_T_OUT, WRITE_SECTOR, wbuf, FIRST_SEG, wbuf + FIRST_SEG,
			      sizeof(wbuf) - FIRST_SEG, false, BY_INTERRUPT, "write"), VIRTIO_BLK_S_OK, "write");
	expect_status(request(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, false, BY_INTERRUPT, "flush"), VIRTIO_BLK_S_OK, "flush");
	memset(rbuf, 0, sizeof(rbuf));
	expect_status(request(VIRTIO_BLK_T_IN, WRITE_SECTOR, rbuf, sizeof(rbuf), NULL, 0, true, BY_INTERRUPT, "read"),
		      VIRTIO_BLK_S_OK, "read");
	for (unsigned i = 0; i < sizeof(rbuf); i++)
		if (rbuf[i] != wbuf[i])
			die(F_DATA, "read back: byte %u of sector %u is 0x%x, want 0x%x", i % SECTOR,
			    WRITE_SECTOR + i / SECTOR, rbuf[i], wbuf[i]);

	char id[ID_BYTES + 1] = {0};
	expect_status(request(VIRTIO_BLK_T_GET_ID, 0, id, ID_BYTES, NULL, 0, true, BY_INTERRUPT, "get-id"), VIRTIO_BLK_S_OK, "get-id");
	kprintf("virtio_blk: id \"%s\"\n", id);
	if (have_id && strncmp(id, want_id, ID_BYTES) != 0)
		die(F_ID, "id \"%s\", want \"%s\"", id, want_id);

	expect_status(request(VIRTIO_BLK_T_IN, cap - 1, rbuf, SECTOR, NULL, 0, true, BY_INTERRUPT, "read last sector"),
		      VIRTIO_BLK_S_OK, "read last sector");
	expect_status(request(VIRTIO_BLK_T_IN, cap, rbuf, SECTOR, NULL, 0, true, BY_INTERRUPT, "read past the end"),
		      VIRTIO_BLK_S_IOERR, "read past the end");

	kprintf("virtio_blk: %u interrupts for %u requests, %u config interrupts\n", queue_irqs,
		irq_requests, config_irqs);
	if (queue_irqs != irq_requests)
		die(F_IRQ_COUNT, "%u queue interrupts for %u requests", queue_irqs, irq_requests);

	masked_read(true);
	masked_read(false);

	virtio_reset(&dev);
	kprintf("virtio_blk: reset, %u queue interrupts in all\n", queue_irqs);
	pass();
}
