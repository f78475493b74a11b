/* The emu engine's local APIC (src/emu/lapic.c): registers, acceptance and
 * priorities, IPIs over a 4-LAPIC bus, the timer in simulated time, the
 * APIC base MSR, ExtINT routing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "irqchip.h"

#define NCPU 4
#define TSC_HZ 2500000000ULL

enum {
	ID = 0x20, VER = 0x30, TPR = 0x80, APR = 0x90, PPR = 0xa0, EOI = 0xb0,
	LDR = 0xd0, DFR = 0xe0, SVR = 0xf0, ISR = 0x100, TMR = 0x180, IRR = 0x200,
	ESR = 0x280, CMCI = 0x2f0, ICR_LO = 0x300, ICR_HI = 0x310, LVTT = 0x320,
	THERM = 0x330, PERF = 0x340, LINT0 = 0x350, LINT1 = 0x360, LVTERR = 0x370,
	TMICT = 0x380, TMCCT = 0x390, TDCR = 0x3e0,
};

static const uint32_t lvt_offsets[] = { CMCI, LVTT, THERM, PERF, LINT0, LINT1, LVTERR };

#define MASKED     0x10000u
#define PERIODIC   0x20000u
#define TSCDL      0x40000u
#define SH_SELF    (1u << 18)
#define SH_ALL     (2u << 18)
#define SH_OTHERS  (3u << 18)
#define LOGICAL    (1u << 11)
#define ASSERT     (1u << 14)
#define LEVELTRIG  (1u << 15)
#define DM_NMI     0x400u
#define DM_INIT    0x500u
#define DM_SIPI    0x600u
#define DM_LOWEST  0x100u

/* A bus of NCPU LAPICs that records kicks and EOIs. */
struct rig {
	struct emu_apic_bus bus;
	struct emu_lapic *l[NCPU];
	unsigned kicks[NCPU];
	unsigned eois;
	uint8_t eoi_vector;
};

static void rig_kick(void *opaque, unsigned cpu)
{
	struct rig *r = opaque;

	assert_true(cpu < NCPU);
	r->kicks[cpu]++;
}

static void rig_eoi(void *opaque, uint8_t vector)
{
	struct rig *r = opaque;

	r->eois++;
	r->eoi_vector = vector;
}

static int rig_setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->bus = (struct emu_apic_bus){
		.n = NCPU, .lapics = r->l, .kick = rig_kick, .eoi = rig_eoi, .opaque = r,
	};
	for (unsigned i = 0; i < NCPU; i++) {
		r->l[i] = emu_lapic_create(&r->bus, i, TSC_HZ);
		assert_non_null(r->l[i]);
	}
	*state = r;
	return 0;
}

static int rig_teardown(void **state)
{
	struct rig *r = *state;

	for (unsigned i = 0; i < NCPU; i++)
		emu_lapic_destroy(r->l[i]);
	free(r);
	return 0;
}

static uint32_t rd(struct emu_lapic *l, uint32_t off) { return emu_lapic_read(l, off, 0); }
static void wr(struct emu_lapic *l, uint32_t off, uint32_t v) { emu_lapic_write(l, off, v, 0); }

/* Software-enable with spurious vector 0xff. */
static void enable(struct emu_lapic *l) { wr(l, SVR, 0x1ff); }

static void enable_all(struct rig *r)
{
	for (unsigned i = 0; i < NCPU; i++)
		enable(r->l[i]);
}

static void clear_kicks(struct rig *r)
{
	for (unsigned i = 0; i < NCPU; i++)
		r->kicks[i] = 0;
}

static bool vec_bit(struct emu_lapic *l, uint32_t base, uint8_t v)
{
	return rd(l, base + (v >> 5) * 0x10) >> (v & 31) & 1;
}

static void fixed(struct emu_lapic *l, uint8_t vector, bool level)
{
	struct emu_apic_msg m = { .vector = vector, .delivery = EMU_DM_FIXED, .level = level };

	emu_lapic_accept(l, &m);
}

/* Take the pending interrupt, which must be want; then EOI it. */
static void take_and_eoi(struct emu_lapic *l, int want)
{
	assert_int_equal(emu_lapic_pending(l), want);
	emu_lapic_ack(l, (uint8_t)want);
	wr(l, EOI, 0);
}

/* Write ICR high (destination) then low (sends). */
static void ipi(struct emu_lapic *from, uint8_t dest, uint32_t lo)
{
	wr(from, ICR_HI, (uint32_t)dest << 24);
	wr(from, ICR_LO, lo);
}

/* The cpus in mask have vector pending and were kicked once, the others
 * neither; then all is taken and EOIed, kicks cleared. */
static void expect_pending(struct rig *r, unsigned mask, int vector)
{
	for (unsigned i = 0; i < NCPU; i++) {
		int want = mask >> i & 1 ? vector : -1;
		int got = emu_lapic_pending(r->l[i]);

		if (got != want)
			fail_msg("cpu %u: pending %d, want %d", i, got, want);
		assert_int_equal(r->kicks[i], (mask >> i & 1) ? 1 : 0);
		if (got >= 0) {
			emu_lapic_ack(r->l[i], (uint8_t)got);
			wr(r->l[i], EOI, 0);
		}
	}
	clear_kicks(r);
}

/* ---- registers ---- */

static void test_reset_values(void **state)
{
	struct rig *r = *state;

	for (unsigned i = 0; i < NCPU; i++) {
		struct emu_lapic *l = r->l[i];

		assert_int_equal(rd(l, ID), i << 24);
		assert_int_equal(rd(l, VER), 0x50014);
		assert_int_equal(rd(l, SVR), 0xff);
		assert_int_equal(rd(l, DFR), 0xffffffff);
		assert_int_equal(emu_lapic_get_base(l), i == 0 ? 0xfee00900 : 0xfee00800);
		for (unsigned j = 0; j < sizeof(lvt_offsets) / sizeof(lvt_offsets[0]); j++)
			assert_int_equal(rd(l, lvt_offsets[j]), MASKED);
		assert_int_equal(rd(l, TPR), 0);
		assert_int_equal(rd(l, PPR), 0);
		assert_int_equal(rd(l, APR), 0);
		assert_int_equal(rd(l, LDR), 0);
		assert_int_equal(rd(l, ESR), 0);
		assert_int_equal(rd(l, ICR_LO), 0);
		assert_int_equal(rd(l, TMICT), 0);
		assert_int_equal(rd(l, TMCCT), 0);
		assert_int_equal(rd(l, TDCR), 0);
		for (uint32_t off = 0; off < 0x80; off += 0x10) {
			assert_int_equal(rd(l, ISR + off), 0);
			assert_int_equal(rd(l, TMR + off), 0);
			assert_int_equal(rd(l, IRR + off), 0);
		}
		assert_int_equal(emu_lapic_pending(l), -1);
		assert_false(emu_lapic_take_nmi(l));
		assert_false(emu_lapic_take_init(l));
		assert_int_equal(emu_lapic_take_sipi(l), -1);
		assert_int_equal(emu_lapic_tick(l, 1000000), EMU_NO_DEADLINE);
	}
	assert_null(emu_lapic_create(NULL, 0xff, TSC_HZ));
	assert_null(emu_lapic_create(NULL, 0, 0));
}

static void test_unaligned_unknown_readonly(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[1];

	enable(l);
	wr(l, TPR, 0x20);
	/* Unaligned, unknown, out-of-page: 0. */
	assert_int_equal(rd(l, ID + 4), 0);
	assert_int_equal(rd(l, TPR + 1), 0);
	assert_int_equal(rd(l, 0x00), 0);
	assert_int_equal(rd(l, 0x40), 0);
	assert_int_equal(rd(l, 0x3f0), 0);
	assert_int_equal(rd(l, 0x400), 0);
	assert_int_equal(rd(l, 0xff0), 0);
	assert_int_equal(rd(l, 0xfffffff0), 0);
	assert_int_equal(rd(l, EOI), 0);
	/* Unaligned writes do nothing. */
	wr(l, TPR + 4, 0x90);
	wr(l, SVR + 8, 0);
	assert_int_equal(rd(l, TPR), 0x20);
	assert_int_equal(rd(l, SVR), 0x1ff);
	/* Read-only registers ignore writes. */
	wr(l, ID, 0x07000000);
	wr(l, VER, 0);
	wr(l, PPR, 0xff);
	wr(l, APR, 0xff);
	wr(l, ISR + 0x10, ~0u);
	wr(l, IRR + 0x70, ~0u);
	wr(l, TMR, ~0u);
	wr(l, TMCCT, 1234);
	assert_int_equal(rd(l, ID), 1u << 24);
	assert_int_equal(rd(l, VER), 0x50014);
	assert_int_equal(rd(l, PPR), 0x20);
	assert_int_equal(rd(l, ISR + 0x10), 0);
	assert_int_equal(rd(l, IRR + 0x70), 0);
	assert_int_equal(rd(l, TMR), 0);
	assert_int_equal(rd(l, TMCCT), 0);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Writable fields are bounded. */
	wr(l, TPR, ~0u);
	assert_int_equal(rd(l, TPR), 0xff);
	wr(l, LDR, ~0u);
	assert_int_equal(rd(l, LDR), 0xff000000);
	wr(l, DFR, 0);
	assert_int_equal(rd(l, DFR), 0x0fffffff);
	wr(l, SVR, ~0u);
	assert_int_equal(rd(l, SVR), 0x3ff);
	wr(l, TDCR, ~0u);
	assert_int_equal(rd(l, TDCR), 0xb);
	wr(l, LINT0, ~0u);
	assert_int_equal(rd(l, LINT0), 0x1a7ff);
	wr(l, LVTERR, ~0u);
	assert_int_equal(rd(l, LVTERR), 0x100ff);
	wr(l, LVTT, 0x1ffff & ~MASKED); /* no mode bits */
	assert_int_equal(rd(l, LVTT), 0xff);
	wr(l, LVTT, 0x600ec); /* mode 3 is reserved: one-shot */
	assert_int_equal(rd(l, LVTT), 0xec);
	wr(l, ICR_HI, ~0u);
	assert_int_equal(rd(l, ICR_HI), 0xff000000);
	wr(l, ICR_LO, 0x1000 | SH_SELF | 0x30);  /* delivery status is read-only */
	assert_int_equal(rd(l, ICR_LO), SH_SELF | 0x30);
}

static void test_svr_enable(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[0];

	/* Disabled: LVTs stay masked, fixed interrupts are dropped. */
	wr(l, LINT0, 0x700);
	assert_int_equal(rd(l, LINT0), MASKED | 0x700);
	fixed(l, 0x40, false);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_false(vec_bit(l, IRR, 0x40));
	/* NMI, INIT, SIPI still get through. */
	emu_lapic_accept(l, &(struct emu_apic_msg){ .delivery = EMU_DM_NMI });
	emu_lapic_accept(l, &(struct emu_apic_msg){ .delivery = EMU_DM_INIT });
	emu_lapic_accept(l, &(struct emu_apic_msg){ .delivery = EMU_DM_SIPI, .vector = 0x9a });
	assert_true(emu_lapic_take_nmi(l));
	assert_true(emu_lapic_take_init(l));
	assert_int_equal(emu_lapic_take_sipi(l), 0x9a);

	enable(l);
	assert_int_equal(rd(l, SVR), 0x1ff);
	wr(l, LINT0, 0x700);
	wr(l, LVTERR, 0xfe);
	assert_int_equal(rd(l, LINT0), 0x700);
	fixed(l, 0x40, false);
	assert_int_equal(emu_lapic_pending(l), 0x40);

	/* Software disable masks every LVT; pending IRR is kept. */
	wr(l, SVR, 0xff);
	assert_int_equal(rd(l, LINT0), MASKED | 0x700);
	assert_int_equal(rd(l, LVTERR), MASKED | 0xfe);
	assert_int_equal(emu_lapic_pending(l), 0x40);
	fixed(l, 0x50, false);
	assert_false(vec_bit(l, IRR, 0x50));
}

/* ---- acceptance, priorities, EOI ---- */

static void test_fixed_flow(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[0];

	enable(l);
	fixed(l, 0x31, false);
	assert_true(vec_bit(l, IRR, 0x31));
	assert_false(vec_bit(l, TMR, 0x31));
	assert_int_equal(rd(l, IRR + 0x10), 1u << 17);
	assert_int_equal(emu_lapic_pending(l), 0x31);
	assert_int_equal(rd(l, APR), 0x30);

	emu_lapic_ack(l, 0x31);
	assert_false(vec_bit(l, IRR, 0x31));
	assert_true(vec_bit(l, ISR, 0x31));
	assert_int_equal(rd(l, PPR), 0x30);
	assert_int_equal(emu_lapic_pending(l), -1);

	/* Acking a vector that is not requested changes nothing. */
	emu_lapic_ack(l, 0x99);
	assert_false(vec_bit(l, ISR, 0x99));

	wr(l, EOI, 0);
	assert_false(vec_bit(l, ISR, 0x31));
	assert_int_equal(rd(l, PPR), 0);
	assert_int_equal(r->eois, 0); /* edge: the IOAPIC is not told */
	/* An EOI with nothing in service is harmless. */
	wr(l, EOI, 0);
	assert_int_equal(r->eois, 0);
	assert_int_equal(emu_lapic_pending(l), -1);
}

static void test_priority_tpr_nested(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[0];

	enable(l);
	wr(l, TPR, 0x50);
	fixed(l, 0x55, false);
	assert_int_equal(emu_lapic_pending(l), -1);  /* class 5 <= TPR class 5 */
	assert_int_equal(rd(l, PPR), 0x50);
	fixed(l, 0x61, false);
	assert_int_equal(emu_lapic_pending(l), 0x61);
	wr(l, TPR, 0x6f);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_get_cr8(l), 6);
	emu_lapic_set_cr8(l, 0x15); /* only 3:0 count; TPR[3:0] cleared */
	assert_int_equal(rd(l, TPR), 0x50);
	assert_int_equal(emu_lapic_get_cr8(l), 5);
	emu_lapic_set_cr8(l, 0);
	assert_int_equal(rd(l, TPR), 0);

	/* Nested: 0x61 in service blocks its own class, not a higher one. */
	assert_int_equal(emu_lapic_pending(l), 0x61);
	emu_lapic_ack(l, 0x61);
	assert_int_equal(rd(l, PPR), 0x60);
	fixed(l, 0x65, false);
	assert_int_equal(emu_lapic_pending(l), -1);
	fixed(l, 0x71, false);
	assert_int_equal(emu_lapic_pending(l), 0x71);
	emu_lapic_ack(l, 0x71);
	assert_int_equal(rd(l, PPR), 0x70);
	assert_int_equal(emu_lapic_pending(l), -1);

	wr(l, EOI, 0); /* the highest in service: 0x71 */
	assert_false(vec_bit(l, ISR, 0x71));
	assert_true(vec_bit(l, ISR, 0x61));
	assert_int_equal(emu_lapic_pending(l), -1);
	wr(l, EOI, 0);
	assert_int_equal(emu_lapic_pending(l), 0x65);
	emu_lapic_ack(l, 0x65);
	wr(l, EOI, 0);
	/* A TPR above the ISR class wins PPR. */
	emu_lapic_ack(l, 0x55);
	wr(l, TPR, 0x9a);
	assert_int_equal(rd(l, PPR), 0x9a);
	wr(l, TPR, 0x5a); /* same class as in service: TPR, all 8 bits */
	assert_int_equal(rd(l, PPR), 0x5a);
	wr(l, TPR, 0);
	assert_int_equal(rd(l, PPR), 0x50);
	wr(l, EOI, 0);
	assert_int_equal(rd(l, PPR), 0);
	/* The highest vector of several wins. */
	fixed(l, 0x20, false);
	fixed(l, 0xfe, false);
	fixed(l, 0x80, false);
	take_and_eoi(l, 0xfe);
	take_and_eoi(l, 0x80);
	take_and_eoi(l, 0x20);
	assert_int_equal(emu_lapic_pending(l), -1);
}

static void test_level_eoi(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[2];

	enable(l);
	fixed(l, 0x40, true);
	assert_true(vec_bit(l, TMR, 0x40));
	take_and_eoi(l, 0x40);
	assert_int_equal(r->eois, 1);
	assert_int_equal(r->eoi_vector, 0x40);
	wr(l, EOI, 0);
	assert_int_equal(r->eois, 1);

	/* Level under edge in service: only the level one's EOI goes out. */
	fixed(l, 0x41, true);
	fixed(l, 0x90, false);
	emu_lapic_ack(l, 0x41);
	emu_lapic_ack(l, 0x90);
	wr(l, EOI, 0);
	assert_int_equal(r->eois, 1);
	wr(l, EOI, 0);
	assert_int_equal(r->eois, 2);
	assert_int_equal(r->eoi_vector, 0x41);

	/* An edge delivery of the vector clears its TMR bit. */
	fixed(l, 0x40, true);
	fixed(l, 0x40, false);
	assert_false(vec_bit(l, TMR, 0x40));
	take_and_eoi(l, 0x40);
	assert_int_equal(r->eois, 2);
}

static void test_illegal_vector(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[0];

	enable(l);
	for (unsigned v = 0; v < 16; v++)
		fixed(l, (uint8_t)v, false);
	assert_int_equal(rd(l, IRR), 0);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Errors show after an ESR write, which also clears them. */
	assert_int_equal(rd(l, ESR), 0);
	wr(l, ESR, 0);
	assert_int_equal(rd(l, ESR), 0x40);
	wr(l, ESR, 0);
	assert_int_equal(rd(l, ESR), 0);

	/* Sending one: "send illegal vector", nobody receives it. */
	ipi(l, 1, ASSERT | 0x05);
	wr(l, ESR, 0);
	assert_int_equal(rd(l, ESR), 0x20);
	assert_int_equal(rd(r->l[1], IRR), 0);
	assert_int_equal(r->kicks[1], 0);
	/* ... but NMI/INIT ignore the vector field. */
	ipi(l, 1, DM_NMI | ASSERT);
	assert_true(emu_lapic_take_nmi(r->l[1]));

	/* An unmasked error LVT raises its vector. */
	wr(l, LVTERR, 0xfe);
	fixed(l, 3, false);
	assert_int_equal(emu_lapic_pending(l), 0xfe);
	wr(l, ESR, 0);
	assert_int_equal(rd(l, ESR), 0x40);
	/* An illegal timer vector is a receive error too. */
	wr(l, LVTT, 0x08);
	wr(l, TMICT, 10); /* divide by 2 after reset: due at 20 ns */
	assert_int_equal(emu_lapic_tick(l, 19), 20);
	assert_int_equal(emu_lapic_tick(l, 20), EMU_NO_DEADLINE);
	assert_int_equal(rd(l, IRR), 0);
	wr(l, ESR, 0);
	assert_int_equal(rd(l, ESR), 0x40);
}

/* ---- IPIs ---- */

static void test_ipi_physical(void **state)
{
	struct rig *r = *state;

	enable_all(r);
	ipi(r->l[0], 2, ASSERT | 0x41);
	assert_int_equal(rd(r->l[0], ICR_LO), ASSERT | 0x41);
	assert_int_equal(rd(r->l[0], ICR_HI), 2u << 24);
	assert_false(vec_bit(r->l[2], TMR, 0x41));
	expect_pending(r, 1u << 2, 0x41);
	ipi(r->l[3], 0, ASSERT | 0x42);
	expect_pending(r, 1u << 0, 0x42);
	/* A destination nobody has. */
	ipi(r->l[3], 9, ASSERT | 0x43);
	expect_pending(r, 0, -1);
	/* Level-triggered IPIs are taken as edge. */
	ipi(r->l[1], 3, LEVELTRIG | ASSERT | 0x44);
	assert_false(vec_bit(r->l[3], TMR, 0x44));
	expect_pending(r, 1u << 3, 0x44);
	assert_int_equal(r->eois, 0);
}

static void test_ipi_broadcast_shorthands(void **state)
{
	struct rig *r = *state;

	enable_all(r);
	ipi(r->l[1], 0xff, ASSERT | 0x50);
	expect_pending(r, 0xf, 0x50);
	ipi(r->l[1], 0, SH_SELF | ASSERT | 0x51); /* destination field ignored */
	expect_pending(r, 1u << 1, 0x51);
	ipi(r->l[2], 3, SH_ALL | ASSERT | 0x52);
	expect_pending(r, 0xf, 0x52);
	ipi(r->l[2], 2, SH_OTHERS | ASSERT | 0x53);
	expect_pending(r, 0xf & ~(1u << 2), 0x53);
	/* A software-disabled LAPIC takes no fixed interrupt and no kick. */
	wr(r->l[3], SVR, 0xff);
	ipi(r->l[0], 0xff, ASSERT | 0x54);
	expect_pending(r, 0x7, 0x54);
	/* A NULL slot is skipped. */
	struct emu_lapic *saved = r->l[1];

	r->l[1] = NULL;
	ipi(r->l[0], 0, SH_ALL | ASSERT | 0x55);
	r->l[1] = saved;
	expect_pending(r, 0x5, 0x55);
}

static void test_ipi_logical_flat(void **state)
{
	struct rig *r = *state;

	enable_all(r);
	for (unsigned i = 0; i < NCPU; i++)
		wr(r->l[i], LDR, 1u << (24 + i));
	ipi(r->l[0], 0x0a, LOGICAL | ASSERT | 0x60);
	expect_pending(r, 0xa, 0x60);
	ipi(r->l[0], 0x01, LOGICAL | ASSERT | 0x61);
	expect_pending(r, 0x1, 0x61);
	ipi(r->l[0], 0xf0, LOGICAL | ASSERT | 0x62);
	expect_pending(r, 0, -1);
	ipi(r->l[3], 0xff, LOGICAL | ASSERT | 0x63);
	expect_pending(r, 0xf, 0x63);
	/* Physical destination 2 is APIC id 2, not the logical bit. */
	ipi(r->l[0], 0x02, ASSERT | 0x64);
	expect_pending(r, 0x4, 0x64);
	/* Lowest priority: one of the set (the lowest-numbered enabled). */
	ipi(r->l[0], 0x0c, LOGICAL | DM_LOWEST | ASSERT | 0x65);
	expect_pending(r, 0x4, 0x65);
	wr(r->l[2], SVR, 0xff);
	ipi(r->l[0], 0x0c, LOGICAL | DM_LOWEST | ASSERT | 0x66);
	expect_pending(r, 0x8, 0x66);
}

static void test_ipi_logical_cluster(void **state)
{
	struct rig *r = *state;
	static const uint8_t ids[NCPU] = { 0x11, 0x12, 0x21, 0x22 };

	enable_all(r);
	for (unsigned i = 0; i < NCPU; i++) {
		wr(r->l[i], DFR, 0x0fffffff);
		wr(r->l[i], LDR, (uint32_t)ids[i] << 24);
	}
	assert_int_equal(rd(r->l[0], DFR), 0x0fffffff);
	ipi(r->l[0], 0x13, LOGICAL | ASSERT | 0x70);
	expect_pending(r, 0x3, 0x70);
	ipi(r->l[0], 0x22, LOGICAL | ASSERT | 0x71);
	expect_pending(r, 0x8, 0x71);
	ipi(r->l[0], 0x12, LOGICAL | ASSERT | 0x72);
	expect_pending(r, 0x2, 0x72);
	ipi(r->l[0], 0x31, LOGICAL | ASSERT | 0x73); /* no such cluster */
	expect_pending(r, 0, -1);
	ipi(r->l[0], 0x20, LOGICAL | ASSERT | 0x74); /* cluster, no members */
	expect_pending(r, 0, -1);
	ipi(r->l[1], 0xff, LOGICAL | ASSERT | 0x75);
	expect_pending(r, 0xf, 0x75);
}

static void test_init_sipi_nmi(void **state)
{
	struct rig *r = *state;

	/* APs are software-disabled after reset; INIT/SIPI still arrive. */
	enable(r->l[0]);
	ipi(r->l[0], 0, SH_OTHERS | LEVELTRIG | ASSERT | DM_INIT);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(r->kicks[i], i ? 1 : 0);
	clear_kicks(r);
	/* INIT level de-assert: ignored, no kicks. */
	ipi(r->l[0], 0, SH_OTHERS | LEVELTRIG | DM_INIT);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(r->kicks[i], 0);
	ipi(r->l[0], 0, SH_OTHERS | ASSERT | DM_SIPI | 0x98);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(r->kicks[i], i ? 1 : 0);
	assert_false(emu_lapic_take_init(r->l[0]));
	assert_int_equal(emu_lapic_take_sipi(r->l[0]), -1);
	for (unsigned i = 1; i < NCPU; i++) {
		assert_true(emu_lapic_take_init(r->l[i]));
		assert_false(emu_lapic_take_init(r->l[i]));
		emu_lapic_reset(r->l[i]); /* what the engine does on INIT */
		assert_int_equal(emu_lapic_take_sipi(r->l[i]), 0x98);
		assert_int_equal(emu_lapic_take_sipi(r->l[i]), -1);
	}
	clear_kicks(r);

	/* Physical INIT + two SIPIs to one AP: the last vector is kept. */
	ipi(r->l[0], 2, LEVELTRIG | ASSERT | DM_INIT);
	ipi(r->l[0], 2, ASSERT | DM_SIPI | 0x10);
	ipi(r->l[0], 2, ASSERT | DM_SIPI | 0x11);
	assert_int_equal(r->kicks[2], 3);
	assert_int_equal(r->kicks[1] + r->kicks[3], 0);
	assert_true(emu_lapic_take_init(r->l[2]));
	assert_int_equal(emu_lapic_take_sipi(r->l[2]), 0x11);
	assert_false(emu_lapic_take_init(r->l[1]));
	/* A SIPI from before an INIT is dropped by the INIT. */
	ipi(r->l[0], 3, ASSERT | DM_SIPI | 0x20);
	ipi(r->l[0], 3, LEVELTRIG | ASSERT | DM_INIT);
	assert_int_equal(emu_lapic_take_sipi(r->l[3]), -1);
	assert_true(emu_lapic_take_init(r->l[3]));
	clear_kicks(r);

	/* NMI to cpu 1 only. */
	ipi(r->l[0], 1, ASSERT | DM_NMI);
	assert_int_equal(r->kicks[1], 1);
	assert_true(emu_lapic_take_nmi(r->l[1]));
	assert_false(emu_lapic_take_nmi(r->l[1]));
	assert_false(emu_lapic_take_nmi(r->l[2]));
	/* SMI and ExtINT messages are not taken here, and wake nobody. */
	clear_kicks(r);
	emu_apic_bus_send(&r->bus, &(struct emu_apic_msg){ .delivery = EMU_DM_EXTINT, .dest = 0xff });
	emu_apic_bus_send(&r->bus, &(struct emu_apic_msg){ .delivery = EMU_DM_SMI, .dest = 0xff });
	for (unsigned i = 0; i < NCPU; i++) {
		assert_int_equal(r->kicks[i], 0);
		assert_int_equal(emu_lapic_pending(r->l[i]), -1);
	}
}

/* IOAPIC-style messages straight onto the bus, with no kick callback. */
static void test_bus_send_direct(void **state)
{
	struct rig *r = *state;

	enable_all(r);
	r->bus.kick = NULL;
	emu_apic_bus_send(&r->bus, &(struct emu_apic_msg){
		.vector = 0x33, .delivery = EMU_DM_FIXED, .level = true, .dest = 1 });
	assert_true(vec_bit(r->l[1], TMR, 0x33));
	take_and_eoi(r->l[1], 0x33);
	assert_int_equal(r->eois, 1);
	assert_int_equal(r->eoi_vector, 0x33);
	emu_apic_bus_send(&r->bus, &(struct emu_apic_msg){
		.vector = 0x34, .delivery = EMU_DM_LOWEST, .dest = 0xff });
	take_and_eoi(r->l[0], 0x34);
	for (unsigned i = 1; i < NCPU; i++)
		assert_int_equal(emu_lapic_pending(r->l[i]), -1);
	/* Only the low 8 bits of the destination count. */
	emu_apic_bus_send(&r->bus, &(struct emu_apic_msg){
		.vector = 0x35, .delivery = EMU_DM_FIXED, .dest = 0x103 });
	take_and_eoi(r->l[3], 0x35);
	/* A LAPIC with no bus can still IPI itself. */
	struct emu_lapic *solo = emu_lapic_create(NULL, 0, TSC_HZ);

	assert_non_null(solo);
	enable(solo);
	ipi(solo, 0, SH_SELF | ASSERT | 0x44);
	take_and_eoi(solo, 0x44);
	ipi(solo, 5, ASSERT | 0x45);
	assert_int_equal(emu_lapic_pending(solo), -1);
	emu_lapic_destroy(solo);
}

/* ---- the timer ---- */

static void test_timer_oneshot_div16(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[0];
	const uint64_t t0 = 5000;

	enable(l);
	wr(l, LVTT, 0xec);
	wr(l, TDCR, 0x3); /* divide by 16 */
	emu_lapic_write(l, TMICT, 1000, t0);
	assert_int_equal(rd(l, TMICT), 1000);
	assert_int_equal(emu_lapic_tick(l, t0), t0 + 16000);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0), 1000);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 15), 1000);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 16), 999);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 1600), 900);
	assert_int_equal(emu_lapic_tick(l, t0 + 15999), t0 + 16000);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 15999), 1);
	assert_int_equal(emu_lapic_tick(l, t0 + 16000), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), 0xec);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 16000), 0);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 99999), 0);
	assert_int_equal(rd(l, TMICT), 1000);
	take_and_eoi(l, 0xec);
	assert_int_equal(emu_lapic_tick(l, t0 + 50000), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);
}

static void test_timer_divides(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[0];
	static const struct { uint32_t tdcr; unsigned div; } t[] = {
		{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
		{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
	};

	enable(l);
	wr(l, LVTT, MASKED | 0x30);
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		wr(l, TDCR, t[i].tdcr);
		emu_lapic_write(l, TMICT, 7, 100);
		assert_int_equal(emu_lapic_tick(l, 100), 100 + 7 * t[i].div);
	}
	/* The maximum count at the maximum divisor does not overflow. */
	wr(l, TDCR, 0xa);
	emu_lapic_write(l, TMICT, 0xffffffff, 1);
	assert_int_equal(emu_lapic_tick(l, 1), 1 + 0xffffffffULL * 128);
}

static void test_timer_periodic_100(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[1];
	const uint64_t t0 = 1234, period = 500 * 4;
	uint64_t next;
	unsigned fired = 0;

	enable(l);
	wr(l, LVTT, PERIODIC | 0xd0);
	wr(l, TDCR, 0x1); /* divide by 4 */
	emu_lapic_write(l, TMICT, 500, t0);
	next = emu_lapic_tick(l, t0);
	assert_int_equal(next, t0 + period);
	for (unsigned p = 1; p <= 100; p++) {
		uint64_t due = t0 + p * period;

		assert_int_equal(next, due);
		/* Mid-period: nothing; the count is part way down. */
		assert_int_equal(emu_lapic_tick(l, due - period / 2), due);
		assert_int_equal(emu_lapic_pending(l), -1);
		assert_int_equal(emu_lapic_read(l, TMCCT, due - period / 2), 250);
		/* Every other tick comes a little late: the phase stays. */
		next = emu_lapic_tick(l, due + (p % 2 ? 7 : 0));
		if (emu_lapic_pending(l) == 0xd0) {
			fired++;
			take_and_eoi(l, 0xd0);
		}
		assert_int_equal(emu_lapic_pending(l), -1);
	}
	assert_int_equal(fired, 100);
	assert_int_equal(next, t0 + 101 * period);
	assert_int_equal(emu_lapic_read(l, TMCCT, t0 + 100 * period + 8), 498);
}

static void test_timer_periodic_late_no_burst(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[1];

	enable(l);
	wr(l, LVTT, PERIODIC | 0xd1);
	wr(l, TDCR, 0xb); /* divide by 1 */
	emu_lapic_write(l, TMICT, 1000, 0);
	/* Ten and a half periods late: one interrupt, re-armed from now. */
	assert_int_equal(emu_lapic_tick(l, 10500), 11500);
	take_and_eoi(l, 0xd1);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_tick(l, 11499), 11500);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_read(l, TMCCT, 11000), 500);
	/* Late by less than a period: one interrupt, phase kept. */
	assert_int_equal(emu_lapic_tick(l, 12400), 12500);
	take_and_eoi(l, 0xd1);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Not yet ticked past expiry: the count reads as reloaded. */
	assert_int_equal(emu_lapic_read(l, TMCCT, 12600), 900);
	assert_int_equal(emu_lapic_read(l, TMCCT, 14600), 900);
}

static void test_timer_current_count(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[0];
	uint32_t last = 0xffffffff;

	enable(l);
	wr(l, LVTT, 0xe0);
	wr(l, TDCR, 0x0); /* divide by 2 */
	emu_lapic_write(l, TMICT, 100000, 1000);
	for (uint64_t t = 1000; t < 1000 + 200000; t += 997) {
		uint32_t c = emu_lapic_read(l, TMCCT, t);

		assert_true(c < last);
		assert_int_equal(c, 100000 - (t - 1000) / 2);
		last = c;
	}
	assert_int_equal(emu_lapic_read(l, TMCCT, 201000), 0);
	assert_int_equal(emu_lapic_read(l, TMCCT, 200999), 1);
	/* A divide change mid-count: the rest runs at the new rate. */
	emu_lapic_write(l, TMICT, 1000, 0);
	wr(l, TDCR, 0xb);
	emu_lapic_write(l, TMICT, 1000, 0);
	assert_int_equal(emu_lapic_tick(l, 0), 1000);
	emu_lapic_write(l, TDCR, 0x0, 400); /* 600 left, now divide by 2 */
	assert_int_equal(emu_lapic_read(l, TMCCT, 400), 600);
	assert_int_equal(emu_lapic_tick(l, 400), 400 + 1200);
	assert_int_equal(emu_lapic_read(l, TMCCT, 1000), 300);
	assert_int_equal(emu_lapic_tick(l, 1599), 1600);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_tick(l, 1600), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), 0xe0);
	take_and_eoi(l, 0xe0);
	/* A divide change after the expiry but before the tick: it fires
	 * once, at the old rate, and the count stays 0. */
	emu_lapic_write(l, TMICT, 100, 2000);
	emu_lapic_write(l, TDCR, 0xa, 2300);
	assert_int_equal(emu_lapic_pending(l), 0xe0);
	assert_int_equal(emu_lapic_read(l, TMCCT, 2300), 0);
	assert_int_equal(emu_lapic_tick(l, 5000), EMU_NO_DEADLINE);
}

static void test_timer_stop_and_mask(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[0];

	enable(l);
	wr(l, LVTT, PERIODIC | 0xe1);
	wr(l, TDCR, 0xb);
	emu_lapic_write(l, TMICT, 300, 0);
	assert_int_equal(emu_lapic_tick(l, 0), 300);
	emu_lapic_write(l, TMICT, 0, 100);
	assert_int_equal(emu_lapic_tick(l, 300), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_tick(l, 100000), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_read(l, TMCCT, 200), 0);

	/* Masked: it counts and expires, but raises nothing. */
	wr(l, LVTT, MASKED | 0xe1);
	emu_lapic_write(l, TMICT, 300, 1000);
	assert_int_equal(emu_lapic_read(l, TMCCT, 1100), 200);
	assert_int_equal(emu_lapic_tick(l, 1300), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(rd(l, IRR + 0x70), 0);
	/* Periodic and masked: re-arms, still silent; unmasked: fires. */
	wr(l, LVTT, MASKED | PERIODIC | 0xe1);
	emu_lapic_write(l, TMICT, 300, 2000);
	assert_int_equal(emu_lapic_tick(l, 2300), 2600);
	assert_int_equal(emu_lapic_pending(l), -1);
	emu_lapic_write(l, LVTT, PERIODIC | 0xe1, 2400);
	assert_int_equal(emu_lapic_tick(l, 2600), 2900);
	assert_int_equal(emu_lapic_pending(l), 0xe1);
	take_and_eoi(l, 0xe1);
	/* Software disable masks the timer too. */
	emu_lapic_write(l, SVR, 0xff, 2700);
	assert_int_equal(emu_lapic_tick(l, 2900), 3200);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Periodic switched to one-shot: the current period is the last. */
	enable(l);
	emu_lapic_write(l, LVTT, 0xe1, 3000);
	assert_int_equal(emu_lapic_tick(l, 3200), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), 0xe1);
}

static void test_timer_tsc_deadline(void **state)
{
	struct emu_lapic *l = ((struct rig *)*state)->l[3];

	enable(l);
	/* Not in TSC-deadline mode: the MSR reads 0 and ignores writes. */
	emu_lapic_set_tsc_deadline(l, 1000, 0);
	assert_int_equal(emu_lapic_get_tsc_deadline(l), 0);
	assert_int_equal(emu_lapic_tick(l, 0), EMU_NO_DEADLINE);

	/* A running count-down timer is disarmed by the mode switch. */
	wr(l, TDCR, 0xb);
	emu_lapic_write(l, TMICT, 500, 0);
	emu_lapic_write(l, LVTT, TSCDL | 0xef, 10);
	assert_int_equal(rd(l, LVTT), TSCDL | 0xef);
	assert_int_equal(rd(l, TMICT), 0);
	assert_int_equal(emu_lapic_tick(l, 600), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);

	/* 2.5 GHz: 2,500,000 ticks = 1 ms. */
	emu_lapic_set_tsc_deadline(l, 2500000, 1000);
	assert_int_equal(emu_lapic_get_tsc_deadline(l), 2500000);
	assert_int_equal(emu_lapic_tick(l, 1000), 1000000);
	assert_int_equal(emu_lapic_tick(l, 999999), 1000000);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Initial count writes are ignored in this mode. */
	emu_lapic_write(l, TMICT, 5, 2000);
	assert_int_equal(rd(l, TMICT), 0);
	assert_int_equal(emu_lapic_read(l, TMCCT, 2000), 0);
	assert_int_equal(emu_lapic_tick(l, 2000), 1000000);
	assert_int_equal(emu_lapic_tick(l, 1000000), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), 0xef);
	assert_int_equal(emu_lapic_get_tsc_deadline(l), 0);
	take_and_eoi(l, 0xef);

	/* Rounding up: 3 ticks at 2.5 GHz are 1.2 ns, due at 2 ns. */
	emu_lapic_set_tsc_deadline(l, 3, 0);
	assert_int_equal(emu_lapic_tick(l, 1), 2);
	/* Disarm with 0. */
	emu_lapic_set_tsc_deadline(l, 0, 1);
	assert_int_equal(emu_lapic_tick(l, 10), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* A deadline already past fires at once. */
	emu_lapic_set_tsc_deadline(l, 2500, 5000);
	assert_int_equal(emu_lapic_pending(l), 0xef);
	assert_int_equal(emu_lapic_get_tsc_deadline(l), 0);
	take_and_eoi(l, 0xef);
	/* A huge deadline does not wrap into the past. */
	emu_lapic_set_tsc_deadline(l, UINT64_MAX, 5000);
	assert_true(emu_lapic_tick(l, 5000) > 1000000000000000ULL);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Leaving the mode disarms and clears the MSR. */
	emu_lapic_set_tsc_deadline(l, 25000, 5000);
	emu_lapic_write(l, LVTT, 0xef, 6000);
	assert_int_equal(emu_lapic_get_tsc_deadline(l), 0);
	assert_int_equal(emu_lapic_tick(l, 20000), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);
	/* Masked: the deadline passes silently and disarms. */
	emu_lapic_write(l, LVTT, MASKED | TSCDL | 0xef, 20000);
	emu_lapic_set_tsc_deadline(l, 75000, 20000);
	assert_int_equal(emu_lapic_tick(l, 30000), EMU_NO_DEADLINE);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_get_tsc_deadline(l), 0);
}

/* ---- APIC base MSR, ExtINT ---- */

static void test_apic_base(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[0];

	enable(l);
	wr(l, TPR, 0x30);
	wr(l, LINT0, 0x700);
	fixed(l, 0x80, false);
	wr(l, TMICT, 100);
	/* The base cannot move; the BSP flag is fixed. */
	emu_lapic_set_base(l, 0xfed00800);
	assert_int_equal(emu_lapic_get_base(l), 0xfee00900);
	emu_lapic_set_base(r->l[1], 0xfee00900);
	assert_int_equal(emu_lapic_get_base(r->l[1]), 0xfee00800);
	assert_int_equal(emu_lapic_pending(l), 0x80);

	/* Hardware disable: everything back to reset, nothing accepted. */
	emu_lapic_set_base(l, 0xfee00100);
	assert_int_equal(emu_lapic_get_base(l), 0xfee00100);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(emu_lapic_tick(l, 100), EMU_NO_DEADLINE);
	assert_true(emu_lapic_accepts_extint(l));
	assert_int_equal(rd(l, VER), 0);
	wr(l, SVR, 0x1ff);
	fixed(l, 0x81, false);
	ipi(r->l[1], 0, ASSERT | DM_INIT | LEVELTRIG);
	assert_false(emu_lapic_take_init(l));
	assert_int_equal(r->kicks[0], 0);
	enable(r->l[1]);
	ipi(r->l[1], 0, SH_ALL | ASSERT | 0x82);
	assert_int_equal(r->kicks[0], 0);
	assert_int_equal(emu_lapic_pending(r->l[1]), 0x82);

	/* Enabled again: power-on register state. */
	emu_lapic_set_base(l, 0xfee00800);
	assert_int_equal(emu_lapic_get_base(l), 0xfee00900);
	assert_int_equal(rd(l, SVR), 0xff);
	assert_int_equal(rd(l, TPR), 0);
	assert_int_equal(rd(l, LINT0), MASKED);
	assert_int_equal(rd(l, TMICT), 0);
	assert_int_equal(rd(l, IRR + 0x40), 0);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(rd(l, ID), 0);
	enable(l);
	fixed(l, 0x83, false);
	assert_int_equal(emu_lapic_pending(l), 0x83);
	/* reset() does the same, and re-enables. */
	emu_lapic_set_base(l, 0);
	emu_lapic_reset(l);
	assert_int_equal(emu_lapic_get_base(l), 0xfee00900);
	assert_int_equal(emu_lapic_pending(l), -1);
	assert_int_equal(rd(l, VER), 0x50014);
}

static void test_extint(void **state)
{
	struct rig *r = *state;
	struct emu_lapic *l = r->l[0];

	/* Reset: software-disabled, so the PIC goes straight through. */
	assert_true(emu_lapic_accepts_extint(l));
	enable(l);
	assert_false(emu_lapic_accepts_extint(l)); /* LINT0 masked */
	wr(l, LINT0, 0x700);
	assert_true(emu_lapic_accepts_extint(l));
	wr(l, LINT0, MASKED | 0x700);
	assert_false(emu_lapic_accepts_extint(l));
	wr(l, LINT0, 0x400); /* NMI mode */
	assert_false(emu_lapic_accepts_extint(l));
	wr(l, LINT0, 0x000 | 0x30); /* fixed */
	assert_false(emu_lapic_accepts_extint(l));
	wr(l, LINT1, 0x700); /* only LINT0 counts */
	assert_false(emu_lapic_accepts_extint(l));
	wr(l, LINT0, 0x8700); /* level-triggered ExtINT */
	assert_true(emu_lapic_accepts_extint(l));
	wr(l, SVR, 0xff);
	assert_true(emu_lapic_accepts_extint(l));
	enable(l);
	assert_false(emu_lapic_accepts_extint(l)); /* the mask stuck */
	emu_lapic_set_base(l, 0xfee00000);
	assert_true(emu_lapic_accepts_extint(l));
}

/* Random writes everywhere, and ticks: no crash, no sanitizer report,
 * every readable value within its register's bounds. */
static void test_random_writes(void **state)
{
	struct rig *r = *state;
	uint64_t seed = 0x6b756d6f6c617069ULL, now = 0;

	print_message("seed %#llx\n", (unsigned long long)seed);
	for (unsigned n = 0; n < 200000; n++) {
		struct emu_lapic *l;
		uint32_t off, v;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		l = r->l[(seed >> 60) % NCPU];
		off = (uint32_t)(seed >> 20) & (n % 16 ? 0x3f0 : 0xfff);
		v = (uint32_t)(seed >> 32);
		now += (seed >> 8) & 0xfff;
		switch ((seed >> 56) & 7) {
		case 0:
			emu_lapic_set_tsc_deadline(l, (seed >> 13) & 0xffffff, now);
			break;
		case 1: {
			int p = emu_lapic_pending(l);

			if (p >= 0)
				emu_lapic_ack(l, (uint8_t)p);
			break;
		}
		case 2:
			if (!(seed & 0xff00))
				emu_lapic_set_base(l, v);
			break;
		default:
			emu_lapic_write(l, off, v, now);
		}
		uint64_t d = emu_lapic_tick(l, now);

		assert_true(d > now);
		assert_true(emu_lapic_read(l, TPR, now) <= 0xff);
		assert_int_equal(emu_lapic_read(l, SVR, now) & ~0x3ffu, 0);
		assert_true(emu_lapic_read(l, TMCCT, now) <= emu_lapic_read(l, TMICT, now));
		int p = emu_lapic_pending(l);

		assert_true(p == -1 || (p >= 16 && p <= 255));
		emu_lapic_take_nmi(l);
		emu_lapic_take_init(l);
		emu_lapic_take_sipi(l);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, rig_setup, rig_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reset_values),
		T(test_unaligned_unknown_readonly),
		T(test_svr_enable),
		T(test_fixed_flow),
		T(test_priority_tpr_nested),
		T(test_level_eoi),
		T(test_illegal_vector),
		T(test_ipi_physical),
		T(test_ipi_broadcast_shorthands),
		T(test_ipi_logical_flat),
		T(test_ipi_logical_cluster),
		T(test_init_sipi_nmi),
		T(test_bus_send_direct),
		T(test_timer_oneshot_div16),
		T(test_timer_divides),
		T(test_timer_periodic_100),
		T(test_timer_periodic_late_no_burst),
		T(test_timer_current_count),
		T(test_timer_stop_and_mask),
		T(test_timer_tsc_deadline),
		T(test_apic_base),
		T(test_extint),
		T(test_random_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
