/* The 8254 PIT against simulated time: Linux's calibration loops, the
 * periodic and one-shot timer on IRQ 0, latches and byte order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "irqchip.h"

#define T0 1000000000ULL /* the time the tests start programming */
#define MS 1000000ULL

struct irq_log {
	unsigned rises, falls;
	bool level;
};

static void on_irq0(void *opaque, bool level)
{
	struct irq_log *log = opaque;

	if (level == log->level)
		fail_msg("irq0 reported %d twice", level);
	log->level = level;
	if (level)
		log->rises++;
	else
		log->falls++;
}

struct fixture {
	struct emu_pit *p;
	struct irq_log log;
};

static int setup(void **state)
{
	static struct fixture f;
	struct emu_pit_ops ops = { .irq0 = on_irq0, .opaque = &f.log };

	f.log = (struct irq_log){ 0 };
	f.p = emu_pit_create(&ops, T0 - 12345);
	*state = &f;
	return f.p ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	emu_pit_destroy(f->p);
	return 0;
}

/* When t clocks of 1.193182 MHz have passed: the first whole ns. */
static uint64_t ns_of(uint64_t t)
{
	return (t * 1000000000ULL + EMU_PIT_HZ - 1) / EMU_PIT_HZ;
}

/* Clocks passed after ns. */
static uint64_t ticks_of(uint64_t ns)
{
	return ns * EMU_PIT_HZ / 1000000000ULL;
}

static void program(struct emu_pit *p, unsigned ch, uint8_t mode, uint16_t count, uint64_t now)
{
	emu_pit_write(p, 0x43, ch << 6 | 0x30 | mode << 1, now);
	emu_pit_write(p, 0x40 + ch, count & 0xff, now);
	emu_pit_write(p, 0x40 + ch, count >> 8, now);
}

static uint16_t read16(struct emu_pit *p, unsigned ch, uint64_t now)
{
	uint16_t lo = emu_pit_read(p, 0x40 + ch, now);

	return lo | emu_pit_read(p, 0x40 + ch, now) << 8;
}

static bool out2(struct emu_pit *p, uint64_t now)
{
	return emu_pit_read(p, 0x61, now) & 0x20;
}

/* pit_calibrate_tsc(): gate 2 high, speaker off, channel 2 mode 0 with
 * 50 ms worth of count, then poll port B's OUT2 until it goes high. */
static void test_linux_calibration(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	const uint16_t latch = EMU_PIT_HZ / 20;
	uint64_t t_out = T0 + ns_of(latch);
	uint8_t b = emu_pit_read(p, 0x61, T0);

	assert_int_equal(b & 0x23, 0);
	emu_pit_write(p, 0x61, (b & ~0x02) | 0x01, T0);
	emu_pit_write(p, 0x43, 0xb0, T0);
	emu_pit_write(p, 0x42, latch & 0xff, T0);
	assert_false(out2(p, T0 + 60 * MS)); /* not started before the MSB */
	emu_pit_write(p, 0x42, latch >> 8, T0);
	assert_true(emu_pit_read(p, 0x61, T0) & 0x01);
	assert_false(emu_pit_read(p, 0x61, T0) & 0x02);

	assert_false(out2(p, T0));
	assert_false(out2(p, T0 + 25 * MS));
	assert_false(out2(p, t_out - 1));
	assert_true(out2(p, t_out));
	assert_true(out2(p, T0 + 200 * MS)); /* and stays high */
	assert_in_range(t_out - T0, 50 * MS - 1000, 50 * MS + 1000);
	assert_int_equal(f->log.rises, 0); /* channel 2 is not IRQ 0 */
	assert_int_equal(emu_pit_tick(p, T0 + 100 * MS), EMU_NO_DEADLINE);
}

/* quick_pit_calibrate(): mode 0 from 0xffff, the count read live. */
static void test_live_count(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 0, 0xffff, T0);
	assert_int_equal(read16(p, 2, T0), 0xffff);
	assert_int_equal(read16(p, 2, T0 + MS), 0xffff - ticks_of(MS));
	assert_int_equal(read16(p, 2, T0 + 40 * MS), 0xffff - ticks_of(40 * MS));
	/* Past zero it wraps and keeps counting. */
	assert_int_equal(read16(p, 2, T0 + ns_of(0xffff + 5)), 0x10000 - 5);
	/* Each byte is sampled when it is read. */
	assert_int_equal(emu_pit_read(p, 0x42, T0 + ns_of(0x100)), 0xff);
	assert_int_equal(emu_pit_read(p, 0x42, T0 + ns_of(0x101)), 0xfe);
}

static void test_refresh_toggles(void **state)
{
	struct fixture *f = *state;
	uint8_t a = emu_pit_read(f->p, 0x61, T0);
	uint8_t b = emu_pit_read(f->p, 0x61, T0);
	uint8_t c = emu_pit_read(f->p, 0x61, T0);

	assert_int_equal((a ^ b) & 0x10, 0x10);
	assert_int_equal((b ^ c) & 0x10, 0x10);
	emu_pit_write(f->p, 0x61, 0xff, T0);
	assert_int_equal(emu_pit_read(f->p, 0x61, T0) & 0xcf, 0x0f);
}

static void test_gate_pauses_mode0(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 0, 1000, T0);
	emu_pit_write(p, 0x61, 0x00, T0 + ns_of(300));
	assert_int_equal(read16(p, 2, T0 + 10 * MS), 700);
	assert_false(out2(p, T0 + 10 * MS));
	emu_pit_write(p, 0x61, 0x01, T0 + 10 * MS);
	assert_int_equal(read16(p, 2, T0 + 10 * MS + ns_of(200)), 500);
	assert_false(out2(p, T0 + 10 * MS + ns_of(699)));
	assert_true(out2(p, T0 + 10 * MS + ns_of(700) + 1));
}

/* Linux's periodic clockevent: 0x34, LATCH = 1193, one edge a ms. */
static void test_mode2_1000hz(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	uint64_t now = T0, end = T0 + 100 * MS;
	unsigned ticks = 0;

	program(p, 0, 2, 1193, T0);
	assert_int_equal(f->log.rises, 0);
	for (;;) {
		uint64_t next = emu_pit_tick(p, now);

		ticks++;
		assert_int_equal(f->log.rises, ticks - 1);
		assert_int_equal(next, T0 + ns_of((uint64_t)ticks * 1193));
		if (next > end)
			break;
		now = next;
	}
	assert_int_equal(f->log.rises, 100);
	assert_int_equal(f->log.falls, 100); /* each edge is a pulse */
	assert_false(f->log.level);
}

static void test_tick_deadlines(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	uint64_t d1 = T0 + ns_of(1193), d2 = T0 + ns_of(2 * 1193);

	assert_int_equal(emu_pit_tick(p, T0), EMU_NO_DEADLINE); /* unprogrammed */
	program(p, 0, 2, 1193, T0);
	assert_int_equal(emu_pit_tick(p, T0), d1);
	assert_int_equal(emu_pit_tick(p, T0 + MS / 2), d1);
	assert_int_equal(emu_pit_tick(p, d1 - 1), d1);
	assert_int_equal(f->log.rises, 0);
	assert_int_equal(emu_pit_tick(p, d1), d2);
	assert_int_equal(f->log.rises, 1);
	assert_int_equal(emu_pit_tick(p, d1), d2);
	assert_int_equal(f->log.rises, 1);
	/* A little late: the next one keeps the phase. */
	assert_int_equal(emu_pit_tick(p, d2 + 300000), T0 + ns_of(3 * 1193));
	assert_int_equal(f->log.rises, 2);
	/* The counter agrees with the edges. */
	assert_int_equal(read16(p, 0, d2), 1193);
	assert_int_equal(read16(p, 0, d2 + ns_of(1192)), 1);
}

static void test_late_ticks_no_burst(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	uint64_t late = T0 + ns_of(10 * 1193) + ns_of(1193) / 2;

	program(p, 0, 2, 1193, T0);
	assert_int_equal(emu_pit_tick(p, T0), T0 + ns_of(1193));
	/* Ten and a half periods late: one edge, the next after now. */
	assert_int_equal(emu_pit_tick(p, late), T0 + ns_of(11 * 1193));
	assert_int_equal(f->log.rises, 1);
	assert_int_equal(emu_pit_tick(p, late + 1000), T0 + ns_of(11 * 1193));
	assert_int_equal(f->log.rises, 1);
	assert_int_equal(emu_pit_tick(p, T0 + ns_of(11 * 1193)), T0 + ns_of(12 * 1193));
	assert_int_equal(f->log.rises, 2);
	/* A whole second late: still one. */
	assert_int_equal(emu_pit_tick(p, T0 + 1000 * MS), T0 + ns_of(1001 * 1193ULL));
	assert_int_equal(f->log.rises, 3);
	assert_int_equal(f->log.falls, 3);
}

/* Like KVM's PIT: periodic interrupts no closer than ~200 us. */
static void test_min_period(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	const uint64_t gap = EMU_PIT_HZ / 5000; /* clocks */
	uint64_t now = T0, next;

	program(p, 0, 2, 10, T0);
	next = emu_pit_tick(p, now);
	assert_int_equal(next, T0 + ns_of(10));
	for (unsigned i = 0; i < 50; i++) {
		now = next;
		next = emu_pit_tick(p, now);
		assert_true(next - now >= ns_of(gap));
		assert_true(next - now < ns_of(gap + 10) + 1);
		assert_int_equal((ticks_of(next - T0)) % 10, 0); /* on the phase */
	}
	assert_int_equal(f->log.rises, 50);
	/* The count itself runs at full speed. */
	assert_int_equal(read16(p, 0, T0 + ns_of(1003)), 7);
}

static void test_mode3_square_wave(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 3, 100, T0);
	assert_true(out2(p, T0 + ns_of(49)));
	assert_false(out2(p, T0 + ns_of(50)));
	assert_false(out2(p, T0 + ns_of(99)));
	assert_true(out2(p, T0 + ns_of(100)));
	assert_int_equal(read16(p, 2, T0 + ns_of(10)), 80); /* by twos */
	assert_int_equal(read16(p, 2, T0 + ns_of(60)), 80);
	/* Gate low holds OUT high; a rising gate restarts the period. */
	emu_pit_write(p, 0x61, 0x00, T0 + ns_of(160));
	assert_true(out2(p, T0 + ns_of(170)));
	emu_pit_write(p, 0x61, 0x01, T0 + ns_of(1000));
	assert_int_equal(read16(p, 2, T0 + ns_of(1000)), 100);
	assert_true(out2(p, T0 + ns_of(1000) + ns_of(49)));
	assert_false(out2(p, T0 + ns_of(1000) + ns_of(50)));

	/* On channel 0: one edge per period too. */
	program(p, 0, 3, 1000, T0);
	assert_int_equal(emu_pit_tick(p, T0 + ns_of(500)), T0 + ns_of(1000));
	assert_int_equal(emu_pit_tick(p, T0 + ns_of(1000)), T0 + ns_of(2000));
	assert_int_equal(f->log.rises, 1);
}

static void test_mode2_gate_and_out(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 2, 100, T0);
	assert_true(out2(p, T0 + ns_of(98)));
	assert_false(out2(p, T0 + ns_of(99))); /* low for the clock at 1 */
	assert_true(out2(p, T0 + ns_of(100)));
	assert_int_equal(read16(p, 2, T0 + ns_of(130)), 70);
	emu_pit_write(p, 0x61, 0x00, T0 + ns_of(130));
	assert_int_equal(read16(p, 2, T0 + ns_of(500)), 70);
	emu_pit_write(p, 0x61, 0x01, T0 + ns_of(600));
	assert_int_equal(read16(p, 2, T0 + ns_of(600) + ns_of(10)), 90);
}

static void test_mode1_gate_trigger(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	uint64_t t1 = T0 + 7 * MS, t2 = T0 + 9 * MS;

	program(p, 2, 1, 100, T0);
	assert_true(out2(p, T0 + ns_of(500)));
	assert_int_equal(read16(p, 2, T0 + MS), 100); /* waiting for the gate */
	emu_pit_write(p, 0x61, 0x01, t1);
	assert_false(out2(p, t1));
	assert_int_equal(read16(p, 2, t1 + ns_of(40)), 60);
	assert_false(out2(p, t1 + ns_of(99)));
	assert_true(out2(p, t1 + ns_of(100)));
	/* Gate low does not stop it; the next rising edge retriggers it. */
	emu_pit_write(p, 0x61, 0x00, t1 + ns_of(50));
	assert_true(out2(p, t1 + ns_of(100)));
	emu_pit_write(p, 0x61, 0x01, t2);
	assert_false(out2(p, t2 + ns_of(50)));
	assert_true(out2(p, t2 + ns_of(100)));
	/* Channel 0's gate is tied high: mode 1 never starts there. */
	program(p, 0, 1, 100, T0);
	assert_int_equal(emu_pit_tick(p, T0 + MS), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 0);
}

static void test_latch_freezes(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	uint64_t t1 = T0 + ns_of(1234);

	program(p, 0, 2, 0x8000, T0);
	emu_pit_write(p, 0x43, 0x00, t1);
	emu_pit_write(p, 0x43, 0x00, t1 + MS); /* ignored: the first holds */
	assert_int_equal(emu_pit_read(p, 0x40, t1 + 5 * MS), (0x8000 - 1234) & 0xff);
	assert_int_equal(emu_pit_read(p, 0x40, t1 + 9 * MS), (0x8000 - 1234) >> 8);
	/* Read out: live again. */
	assert_int_equal(read16(p, 0, T0 + ns_of(4000)), 0x8000 - 4000);
	/* The read-back command latches the same way, status first. */
	emu_pit_write(p, 0x43, 0xc2, T0 + ns_of(5000));
	assert_int_equal(emu_pit_read(p, 0x40, T0 + ns_of(9000)), 0x80 | 0x34);
	assert_int_equal(read16(p, 0, T0 + ns_of(9000)), 0x8000 - 5000);
	/* Status only; null count until the count is written. */
	emu_pit_write(p, 0x43, 0x34, T0);
	emu_pit_write(p, 0x43, 0xe2, T0);
	assert_int_equal(emu_pit_read(p, 0x40, T0), 0x80 | 0x40 | 0x34);
	emu_pit_write(p, 0x43, 0x30, T0);
	emu_pit_write(p, 0x43, 0xe2, T0);
	assert_int_equal(emu_pit_read(p, 0x40, T0), 0x40 | 0x30); /* mode 0: OUT low */
}

static void test_access_modes(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	/* lo/hi: low byte first, then high, alternating. */
	program(p, 1, 2, 0x1234, T0);
	assert_int_equal(emu_pit_read(p, 0x41, T0), 0x34);
	assert_int_equal(emu_pit_read(p, 0x41, T0), 0x12);
	assert_int_equal(emu_pit_read(p, 0x41, T0), 0x34);
	/* A control word resets the flip-flops: this read is the low byte. */
	program(p, 1, 2, 0x5678, T0);
	assert_int_equal(emu_pit_read(p, 0x41, T0), 0x78);
	assert_int_equal(emu_pit_read(p, 0x41, T0), 0x56);

	/* Low byte only: the count is v, every read the low byte. */
	emu_pit_write(p, 0x43, 0x54, T0);
	emu_pit_write(p, 0x41, 200, T0);
	assert_int_equal(emu_pit_read(p, 0x41, T0 + ns_of(50)), 150);
	assert_int_equal(emu_pit_read(p, 0x41, T0 + ns_of(60)), 140);

	/* High byte only: the count is v << 8. */
	emu_pit_write(p, 0x43, 0x64, T0);
	emu_pit_write(p, 0x41, 0x02, T0);
	assert_int_equal(emu_pit_read(p, 0x41, T0 + ns_of(0x100)), 0x01);
	assert_int_equal(emu_pit_read(p, 0x41, T0 + ns_of(0x101)), 0x00);
	/* A latched high-byte count is read once. */
	emu_pit_write(p, 0x43, 0x40, T0);
	assert_int_equal(emu_pit_read(p, 0x41, T0 + ns_of(0x180)), 0x02);
	assert_int_equal(emu_pit_read(p, 0x41, T0 + ns_of(0x180)), 0x00);
}

static void test_mode0_one_shot(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;
	uint64_t tc = T0 + ns_of(11932);

	program(p, 0, 0, 11932, T0);
	assert_false(f->log.level);
	assert_int_equal(emu_pit_tick(p, T0), tc);
	assert_int_equal(emu_pit_tick(p, tc - 1), tc);
	assert_int_equal(f->log.rises, 0);
	assert_int_equal(emu_pit_tick(p, tc), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 1);
	assert_true(f->log.level); /* OUT stays high after terminal count */
	assert_int_equal(emu_pit_tick(p, tc + 100 * MS), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 1);
	assert_int_equal(read16(p, 0, tc + ns_of(10)), 0x10000 - 10);

	/* Linux re-arms with a control word (OUT low) and a new count. */
	emu_pit_write(p, 0x43, 0x30, tc + MS);
	assert_false(f->log.level);
	emu_pit_write(p, 0x40, 100, tc + MS);
	assert_int_equal(emu_pit_tick(p, tc + MS), EMU_NO_DEADLINE); /* stopped */
	emu_pit_write(p, 0x40, 0, tc + 2 * MS);
	assert_int_equal(emu_pit_tick(p, tc + 2 * MS), tc + 2 * MS + ns_of(100));
	assert_int_equal(emu_pit_tick(p, tc + 3 * MS), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 2);

	/* Without a control word: the first byte stops the count and
	 * lowers OUT, the second starts the new one. */
	emu_pit_write(p, 0x40, 50, tc + 4 * MS);
	assert_false(f->log.level);
	assert_int_equal(emu_pit_tick(p, tc + 5 * MS), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 2);
	emu_pit_write(p, 0x40, 0, tc + 6 * MS);
	assert_int_equal(emu_pit_tick(p, tc + 6 * MS), tc + 6 * MS + ns_of(50));

	/* The same on channel 2: OUT2 drops, the count holds. */
	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 0, 100, T0);
	assert_true(out2(p, T0 + ns_of(150)));
	emu_pit_write(p, 0x42, 7, T0 + ns_of(150));
	assert_false(out2(p, T0 + ns_of(150)));
	assert_int_equal(read16(p, 2, T0 + ns_of(400)), 0x10000 - 50);

	/* A late tick fires it once all the same. */
	program(p, 0, 0, 10, T0 + 10000 * MS);
	assert_int_equal(emu_pit_tick(p, T0 + 20000 * MS), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 3);
	assert_true(f->log.level);
}

static void test_count_zero_is_65536(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	program(p, 0, 2, 0, T0);
	assert_int_equal(emu_pit_tick(p, T0), T0 + ns_of(65536));
	assert_int_equal(read16(p, 0, T0), 0);
	assert_int_equal(read16(p, 0, T0 + ns_of(1)), 0xffff);
	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 0, 0, T0);
	assert_false(out2(p, T0 + ns_of(65535)));
	assert_true(out2(p, T0 + ns_of(65536)));
	/* A single-byte access mode's 0 too. */
	emu_pit_write(p, 0x43, 0x14, T0);
	emu_pit_write(p, 0x40, 0, T0);
	assert_int_equal(emu_pit_tick(p, T0), T0 + ns_of(65536));
}

static void test_mode4_strobe(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	program(p, 0, 4, 500, T0);
	assert_int_equal(emu_pit_tick(p, T0), T0 + ns_of(500));
	assert_int_equal(emu_pit_tick(p, T0 + ns_of(500)), EMU_NO_DEADLINE);
	assert_int_equal(f->log.rises, 1);
	assert_int_equal(f->log.falls, 1);
	assert_int_equal(emu_pit_tick(p, T0 + MS), EMU_NO_DEADLINE); /* once */
	assert_int_equal(f->log.rises, 1);
	emu_pit_write(p, 0x61, 0x01, T0);
	program(p, 2, 4, 500, T0);
	assert_true(out2(p, T0 + ns_of(499)));
	assert_false(out2(p, T0 + ns_of(500)));
	assert_true(out2(p, T0 + ns_of(501)));
}

static void test_bcd_refused_and_bad_ports(void **state)
{
	struct fixture *f = *state;
	struct emu_pit *p = f->p;

	emu_pit_write(p, 0x43, 0x35, T0); /* mode 2, BCD */
	emu_pit_write(p, 0x40, 0x00, T0);
	emu_pit_write(p, 0x40, 0x10, T0); /* binary 0x1000, not BCD 1000 */
	assert_int_equal(emu_pit_tick(p, T0), T0 + ns_of(0x1000));
	emu_pit_write(p, 0x43, 0xe2, T0);
	assert_int_equal(emu_pit_read(p, 0x40, T0) & 0x01, 0);
	/* Mode bits 11x are modes 2 and 3. */
	emu_pit_write(p, 0x43, 0x3c, T0);
	emu_pit_write(p, 0x43, 0xe2, T0);
	assert_int_equal(emu_pit_read(p, 0x40, T0) & 0x0e, 2 << 1);
	emu_pit_write(p, 0x43, 0x3e, T0);
	emu_pit_write(p, 0x43, 0xe2, T0);
	assert_int_equal(emu_pit_read(p, 0x40, T0) & 0x0e, 3 << 1);

	assert_int_equal(emu_pit_read(p, 0x43, T0), 0xff);
	assert_int_equal(emu_pit_read(p, 0x44, T0), 0xff);
	emu_pit_write(p, 0x44, 0x12, T0);
	emu_pit_write(p, 0x3f, 0x12, T0);
	assert_int_equal(f->log.rises, 0);
}

static void test_no_ops(void **state)
{
	struct emu_pit *p = emu_pit_create(NULL, 0);

	assert_non_null(p);
	program(p, 0, 2, 1000, 0);
	assert_int_equal(emu_pit_tick(p, ns_of(1000)), ns_of(2000));
	emu_pit_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_linux_calibration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_toggles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_pauses_mode0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode2_1000hz, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_deadlines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_ticks_no_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_period, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode3_square_wave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode2_gate_and_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode1_gate_trigger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latch_freezes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode0_one_shot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_zero_is_65536, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode4_strobe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bcd_refused_and_bad_ports, setup, teardown),
		cmocka_unit_test(test_no_ops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
