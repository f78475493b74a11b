/* The 8259A pair as Linux and simple guests program it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "irqchip.h"

struct intr_log {
	unsigned changes;
	bool level;
};

static void on_intr(void *opaque, bool level)
{
	struct intr_log *log = opaque;

	log->changes++;
	log->level = level;
}

struct fixture {
	struct emu_pic *p;
	struct intr_log log;
};

/* Linux's init_8259A: mask all, ICW1 0x11, ICW2 base, ICW3 4/2, ICW4. */
static void init_pair(struct emu_pic *p, uint8_t mbase, uint8_t sbase, uint8_t icw4)
{
	emu_pic_write(p, 0x21, 0xff);
	emu_pic_write(p, 0xa1, 0xff);
	emu_pic_write(p, 0x20, 0x11);
	emu_pic_write(p, 0x21, mbase);
	emu_pic_write(p, 0x21, 0x04);
	emu_pic_write(p, 0x21, icw4);
	emu_pic_write(p, 0xa0, 0x11);
	emu_pic_write(p, 0xa1, sbase);
	emu_pic_write(p, 0xa1, 0x02);
	emu_pic_write(p, 0xa1, icw4);
}

static int setup_with(void **state, uint8_t icw4)
{
	static struct fixture f;
	struct emu_pic_ops ops = { .intr = on_intr, .opaque = &f.log };

	f.log = (struct intr_log){ 0 };
	f.p = emu_pic_create(&ops);
	if (!f.p)
		return -1;
	init_pair(f.p, 0x20, 0x28, icw4);
	emu_pic_write(f.p, 0x21, 0x00); /* everything unmasked */
	emu_pic_write(f.p, 0xa1, 0x00);
	*state = &f;
	return 0;
}

static int setup(void **state) { return setup_with(state, 0x01); }
static int setup_aeoi(void **state) { return setup_with(state, 0x03); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	emu_pic_destroy(f->p);
	return 0;
}

static uint8_t read_irr(struct emu_pic *p, uint16_t cmd)
{
	emu_pic_write(p, cmd, 0x0a);
	return emu_pic_read(p, cmd);
}

static uint8_t read_isr(struct emu_pic *p, uint16_t cmd)
{
	emu_pic_write(p, cmd, 0x0b);
	return emu_pic_read(p, cmd);
}

static void eoi_master(struct emu_pic *p) { emu_pic_write(p, 0x20, 0x20); }
static void eoi_slave(struct emu_pic *p) { emu_pic_write(p, 0xa0, 0x20); }

/* An edge: the line goes high and low again. */
static void pulse(struct emu_pic *p, unsigned irq)
{
	emu_pic_set_irq(p, irq, true);
	emu_pic_set_irq(p, irq, false);
}

static void test_linux_init_irq1(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	/* Linux's masks after init: everything but the cascade... */
	emu_pic_write(p, 0x21, 0xfb);
	emu_pic_write(p, 0xa1, 0xff);
	assert_int_equal(emu_pic_read(p, 0x21), 0xfb);
	assert_int_equal(emu_pic_read(p, 0xa1), 0xff);
	emu_pic_set_irq(p, 1, true);
	assert_false(emu_pic_intr(p));
	assert_int_equal(f->log.changes, 0);

	/* ...then the keyboard's IRQ 1 unmasked: its latched edge comes. */
	emu_pic_write(p, 0x21, 0xf9);
	assert_true(emu_pic_intr(p));
	assert_int_equal(f->log.changes, 1);
	assert_true(f->log.level);
	assert_int_equal(emu_pic_ack(p), 0x21);
	assert_false(emu_pic_intr(p));
	assert_int_equal(f->log.changes, 2);
	assert_int_equal(read_isr(p, 0x20), 0x02);
	assert_int_equal(read_irr(p, 0x20), 0x00);

	/* The line stays high: no new edge, nothing more. */
	eoi_master(p);
	assert_int_equal(read_isr(p, 0x20), 0x00);
	assert_false(emu_pic_intr(p));
	assert_int_equal(f->log.changes, 2);

	/* Low and high again: a second interrupt. */
	emu_pic_set_irq(p, 1, false);
	emu_pic_set_irq(p, 1, true);
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x21);
	eoi_master(p);
	assert_false(emu_pic_intr(p));
}

static void test_power_on_masked(void **state)
{
	struct intr_log log = { 0 };
	struct emu_pic_ops ops = { .intr = on_intr, .opaque = &log };
	struct emu_pic *p = emu_pic_create(&ops);

	assert_non_null(p);
	assert_int_equal(emu_pic_read(p, 0x21), 0xff);
	assert_int_equal(emu_pic_read(p, 0xa1), 0xff);
	pulse(p, 0);
	pulse(p, 12);
	assert_false(emu_pic_intr(p));
	assert_int_equal(log.changes, 0);
	assert_int_equal(emu_pic_ack(p), 0x08 | 7); /* BIOS-like base, spurious */
	emu_pic_destroy(p);
}

static void test_no_ops(void **state)
{
	struct emu_pic *p = emu_pic_create(NULL);

	assert_non_null(p);
	init_pair(p, 0x30, 0x38, 0x01);
	emu_pic_write(p, 0x21, 0);
	pulse(p, 4);
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x34);
	emu_pic_destroy(p);
}

static void test_priority_irq0_before_irq3(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 3);
	pulse(p, 0);
	assert_int_equal(read_irr(p, 0x20), 0x09);
	assert_int_equal(emu_pic_ack(p), 0x20);
	/* IRQ 3 waits while the higher IRQ 0 is in service. */
	assert_false(emu_pic_intr(p));
	eoi_master(p);
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x23);
	eoi_master(p);
	assert_false(emu_pic_intr(p));
	assert_int_equal(read_isr(p, 0x20), 0);
}

static void test_higher_nests(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 5);
	assert_int_equal(emu_pic_ack(p), 0x25);
	pulse(p, 6); /* lower: waits */
	assert_false(emu_pic_intr(p));
	pulse(p, 1); /* higher: interrupts the handler of 5 */
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x21);
	assert_int_equal(read_isr(p, 0x20), 0x22);
	eoi_master(p); /* non-specific: the highest, 1 */
	assert_int_equal(read_isr(p, 0x20), 0x20);
	assert_false(emu_pic_intr(p));
	eoi_master(p);
	assert_int_equal(emu_pic_ack(p), 0x26);
	eoi_master(p);
	assert_int_equal(read_isr(p, 0x20), 0);
}

static void test_slave_through_cascade(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 10);
	assert_true(emu_pic_intr(p));
	assert_int_equal(read_irr(p, 0xa0), 0x04);
	assert_int_equal(read_irr(p, 0x20), 0x04);
	assert_int_equal(emu_pic_ack(p), 0x2a);
	assert_false(emu_pic_intr(p));
	assert_int_equal(read_isr(p, 0x20), 0x04);
	assert_int_equal(read_isr(p, 0xa0), 0x04);
	assert_int_equal(read_irr(p, 0x20), 0x00);
	eoi_slave(p);
	eoi_master(p);
	assert_int_equal(read_isr(p, 0x20), 0);
	assert_int_equal(read_isr(p, 0xa0), 0);
	assert_false(emu_pic_intr(p));
}

static void test_slave_priorities(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	/* The cascade sits at IR2: above IRQ 3, below IRQ 1. */
	pulse(p, 3);
	pulse(p, 14);
	pulse(p, 9);
	pulse(p, 1);
	assert_int_equal(emu_pic_ack(p), 0x21);
	eoi_master(p);
	assert_int_equal(emu_pic_ack(p), 0x29);
	/* With the cascade in service, neither 14 nor 3 gets through. */
	assert_false(emu_pic_intr(p));
	eoi_slave(p);
	assert_false(emu_pic_intr(p));
	eoi_master(p);
	assert_int_equal(emu_pic_ack(p), 0x2e);
	eoi_slave(p);
	eoi_master(p);
	assert_int_equal(emu_pic_ack(p), 0x23);
	eoi_master(p);
	assert_false(emu_pic_intr(p));
}

static void test_slave_masked_by_ir2(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_write(p, 0x21, 0x04);
	pulse(p, 8);
	assert_false(emu_pic_intr(p));
	emu_pic_write(p, 0x21, 0x00);
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x28);
}

static void test_level_reraise(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_write(p, 0x4d1, 0x04); /* IRQ 10 level-triggered */
	assert_int_equal(emu_pic_read(p, 0x4d1), 0x04);
	emu_pic_set_irq(p, 10, true);
	assert_int_equal(emu_pic_ack(p), 0x2a);
	eoi_slave(p);
	eoi_master(p);
	/* Still asserted after the EOI: again. */
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x2a);
	emu_pic_set_irq(p, 10, false);
	eoi_slave(p);
	eoi_master(p);
	assert_false(emu_pic_intr(p));

	/* A level request that goes away before the INTA is gone. */
	emu_pic_write(p, 0x4d0, 0x20); /* IRQ 5 level-triggered */
	emu_pic_set_irq(p, 5, true);
	assert_true(emu_pic_intr(p));
	emu_pic_set_irq(p, 5, false);
	assert_false(emu_pic_intr(p));
	assert_int_equal(read_irr(p, 0x20), 0);
}

static void test_elcr_switch(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	/* A line held high as edge, then made level: requesting again. */
	emu_pic_set_irq(p, 5, true);
	assert_int_equal(emu_pic_ack(p), 0x25);
	eoi_master(p);
	assert_false(emu_pic_intr(p));
	emu_pic_write(p, 0x4d0, 0x20);
	assert_true(emu_pic_intr(p));
	/* A latched edge whose line is low is no level request. */
	emu_pic_write(p, 0x4d0, 0x00);
	emu_pic_set_irq(p, 5, false);
	pulse(p, 6);
	assert_int_equal(read_irr(p, 0x20), 0x60);
	emu_pic_write(p, 0x4d0, 0x40);
	assert_int_equal(read_irr(p, 0x20), 0x20);
}

static void test_elcr_fixed_bits(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_write(p, 0x4d0, 0xff);
	emu_pic_write(p, 0x4d1, 0xff);
	assert_int_equal(emu_pic_read(p, 0x4d0), 0xf8); /* 0, 1, 2 stay edge */
	assert_int_equal(emu_pic_read(p, 0x4d1), 0xde); /* 8, 13 stay edge */
	/* IRQ 0 is still edge: a held line interrupts once. */
	emu_pic_set_irq(p, 0, true);
	assert_int_equal(emu_pic_ack(p), 0x20);
	eoi_master(p);
	assert_false(emu_pic_intr(p));
}

static void test_spurious(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	/* Nothing pending: IR7's vector, nothing in service. */
	assert_int_equal(emu_pic_ack(p), 0x27);
	assert_int_equal(read_isr(p, 0x20), 0);

	/* A request only below the one in service is no request. */
	pulse(p, 5);
	assert_int_equal(emu_pic_ack(p), 0x25);
	pulse(p, 6);
	assert_int_equal(emu_pic_ack(p), 0x27);
	assert_int_equal(read_isr(p, 0x20), 0x20);
	assert_int_equal(read_irr(p, 0x20), 0x40);
}

static void test_aeoi(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 0);
	pulse(p, 4);
	assert_int_equal(emu_pic_ack(p), 0x20);
	assert_int_equal(read_isr(p, 0x20), 0);
	/* No EOI needed: the next one is there at once. */
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x24);
	pulse(p, 11);
	assert_int_equal(emu_pic_ack(p), 0x2b);
	assert_int_equal(read_isr(p, 0x20), 0);
	assert_int_equal(read_isr(p, 0xa0), 0);
	assert_false(emu_pic_intr(p));
}

static void test_read_registers(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_write(p, 0x21, 0x80);
	pulse(p, 7);
	pulse(p, 3);
	assert_int_equal(read_irr(p, 0x20), 0x88);
	/* The selection holds across reads; IMR is always at the data port. */
	assert_int_equal(emu_pic_read(p, 0x20), 0x88);
	assert_int_equal(emu_pic_read(p, 0x21), 0x80);
	assert_int_equal(emu_pic_ack(p), 0x23);
	assert_int_equal(read_isr(p, 0x20), 0x08);
	assert_int_equal(emu_pic_read(p, 0x20), 0x08);
	emu_pic_write(p, 0x20, 0x08); /* OCW3 without RR: selection unchanged */
	assert_int_equal(emu_pic_read(p, 0x20), 0x08);
	assert_int_equal(read_irr(p, 0x20), 0x80);
}

static void test_poll(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_write(p, 0x21, 0x80);
	emu_pic_write(p, 0x20, 0x0c);
	assert_int_equal(emu_pic_read(p, 0x20), 0x00);
	pulse(p, 6);
	emu_pic_write(p, 0x20, 0x0c);
	assert_int_equal(emu_pic_read(p, 0x21), 0x86); /* either port */
	assert_int_equal(read_isr(p, 0x20), 0x40);
	assert_false(emu_pic_intr(p));
	/* Poll mode is one read only. */
	assert_int_equal(emu_pic_read(p, 0x21), 0x80);
}

static void test_specific_eoi_and_rotation(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 3);
	pulse(p, 4);
	assert_int_equal(emu_pic_ack(p), 0x23);
	pulse(p, 0);
	assert_int_equal(emu_pic_ack(p), 0x20);
	emu_pic_write(p, 0x20, 0x63); /* specific EOI of 3 leaves 0 */
	assert_int_equal(read_isr(p, 0x20), 0x01);
	emu_pic_write(p, 0x20, 0xa0); /* rotate on EOI: 0 goes lowest */
	assert_int_equal(read_isr(p, 0x20), 0);
	pulse(p, 0);
	assert_int_equal(emu_pic_ack(p), 0x24); /* 4 now beats 0 */
	emu_pic_write(p, 0x20, 0xe4); /* rotate on specific EOI of 4 */
	pulse(p, 3);
	assert_int_equal(emu_pic_ack(p), 0x20); /* order 5,6,7,0,1,2,3,4 */
	emu_pic_write(p, 0x20, 0x60);

	/* Set priority: 5 lowest, so 6 is highest. */
	emu_pic_write(p, 0x20, 0xc5);
	pulse(p, 5);
	pulse(p, 6);
	assert_int_equal(emu_pic_ack(p), 0x26);
	emu_pic_write(p, 0x20, 0x66);
	assert_int_equal(emu_pic_ack(p), 0x23);
	emu_pic_write(p, 0x20, 0x63);
	assert_int_equal(emu_pic_ack(p), 0x25);
}

static void test_rotate_in_aeoi(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_write(p, 0x20, 0x80); /* rotate in AEOI mode on */
	pulse(p, 1);
	assert_int_equal(emu_pic_ack(p), 0x21); /* 1 goes lowest */
	pulse(p, 1);
	pulse(p, 6);
	assert_int_equal(emu_pic_ack(p), 0x26);
	assert_int_equal(emu_pic_ack(p), 0x21);
	emu_pic_write(p, 0x20, 0x00); /* off */
	pulse(p, 1);
	pulse(p, 0);
	assert_int_equal(emu_pic_ack(p), 0x20); /* 1 is lowest: 0 beats it */
	assert_int_equal(emu_pic_ack(p), 0x21);
	pulse(p, 3);
	assert_int_equal(emu_pic_ack(p), 0x23);
	pulse(p, 3);
	pulse(p, 4);
	assert_int_equal(emu_pic_ack(p), 0x23); /* 3 did not go lowest */
}

static void test_special_mask_mode(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 3);
	assert_int_equal(emu_pic_ack(p), 0x23);
	pulse(p, 5);
	assert_false(emu_pic_intr(p));
	emu_pic_write(p, 0x21, 0x08); /* mask 3, in service */
	assert_false(emu_pic_intr(p));
	emu_pic_write(p, 0x20, 0x68); /* special mask mode on */
	assert_true(emu_pic_intr(p));
	assert_int_equal(emu_pic_ack(p), 0x25);
	emu_pic_write(p, 0x20, 0x65);
	emu_pic_write(p, 0x20, 0x48); /* off */
	pulse(p, 4);
	assert_false(emu_pic_intr(p)); /* 3 in service blocks again */
	emu_pic_write(p, 0x20, 0x63);
	assert_int_equal(emu_pic_ack(p), 0x24);
}

static void test_reinit_resets(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 4);
	pulse(p, 5);
	assert_int_equal(emu_pic_ack(p), 0x24);
	emu_pic_set_irq(p, 6, true);
	/* ICW1 forgets edges, service and masks; ICW2 moves the base. */
	emu_pic_write(p, 0x20, 0x11);
	assert_false(emu_pic_intr(p));
	emu_pic_write(p, 0x21, 0x40);
	emu_pic_write(p, 0x21, 0x04);
	emu_pic_write(p, 0x21, 0x01);
	assert_int_equal(emu_pic_read(p, 0x21), 0x00);
	assert_int_equal(read_isr(p, 0x20), 0);
	assert_int_equal(read_irr(p, 0x20), 0);
	assert_false(emu_pic_intr(p));
	/* IRQ 6 is still high: it needs a new edge. */
	emu_pic_set_irq(p, 6, false);
	emu_pic_set_irq(p, 6, true);
	assert_int_equal(emu_pic_ack(p), 0x46);

	/* Without ICW4, and single: ICW2 ends the sequence. */
	emu_pic_write(p, 0x20, 0x12);
	emu_pic_write(p, 0x21, 0x50);
	emu_pic_write(p, 0x21, 0xfe); /* OCW1 already */
	assert_int_equal(emu_pic_read(p, 0x21), 0xfe);
	pulse(p, 7);
	assert_int_equal(emu_pic_ack(p), 0x57);
}

static void test_intr_callback_on_change_only(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	pulse(p, 3);
	pulse(p, 4);
	pulse(p, 5);
	assert_int_equal(f->log.changes, 1);
	emu_pic_write(p, 0x21, 0xff);
	assert_int_equal(f->log.changes, 2);
	assert_false(f->log.level);
	emu_pic_write(p, 0x21, 0x00);
	assert_int_equal(f->log.changes, 3);
	assert_true(f->log.level);
	assert_int_equal(emu_pic_ack(p), 0x23);
	assert_int_equal(f->log.changes, 4);
	assert_false(f->log.level);
}

static void test_bad_inputs_ignored(void **state)
{
	struct fixture *f = *state;
	struct emu_pic *p = f->p;

	emu_pic_set_irq(p, 16, true);
	emu_pic_set_irq(p, 1000, true);
	emu_pic_set_irq(p, 2, true); /* the cascade is not an ISA line */
	assert_false(emu_pic_intr(p));
	assert_int_equal(read_irr(p, 0x20), 0);
	assert_int_equal(emu_pic_read(p, 0x22), 0xff);
	emu_pic_write(p, 0x22, 0x11);
	emu_pic_write(p, 0x4d2, 0xff);
	assert_int_equal(emu_pic_read(p, 0x21), 0x00);
	pulse(p, 1);
	assert_int_equal(emu_pic_ack(p), 0x21);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_linux_init_irq1, setup, teardown),
		cmocka_unit_test(test_power_on_masked),
		cmocka_unit_test(test_no_ops),
		cmocka_unit_test_setup_teardown(test_priority_irq0_before_irq3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_higher_nests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slave_through_cascade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slave_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slave_masked_by_ir2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_reraise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elcr_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elcr_fixed_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spurious, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aeoi, setup_aeoi, teardown),
		cmocka_unit_test_setup_teardown(test_read_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_specific_eoi_and_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_in_aeoi, setup_aeoi, teardown),
		cmocka_unit_test_setup_teardown(test_special_mask_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reinit_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intr_callback_on_change_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_inputs_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
