/* The IOAPIC: registers, redirection entries, edge and level delivery. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "irqchip.h"

/* The bus: this file's emu_apic_bus_send records what the IOAPIC sends.
 * Being a definition in the test program, it is found before libemu's
 * lapic.o is looked at, and nothing else here pulls lapic.o in. */
#define MAX_SENT 64
static struct emu_apic_bus bus;
static struct emu_apic_msg sent[MAX_SENT];
static unsigned nsent;

void emu_apic_bus_send(struct emu_apic_bus *b, const struct emu_apic_msg *msg)
{
	assert_ptr_equal(b, &bus);
	if (nsent == MAX_SENT)
		fail_msg("more than %u messages", MAX_SENT);
	sent[nsent++] = *msg;
}

static int setup(void **state)
{
	nsent = 0;
	*state = emu_ioapic_create(&bus, 3);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	emu_ioapic_destroy(*state);
	return 0;
}

static uint32_t rd(struct emu_ioapic *io, uint32_t reg)
{
	emu_ioapic_write(io, 0x00, reg);
	return emu_ioapic_read(io, 0x10);
}

static void wr(struct emu_ioapic *io, uint32_t reg, uint32_t v)
{
	emu_ioapic_write(io, 0x00, reg);
	emu_ioapic_write(io, 0x10, v);
}

/* Entry low dword bits. */
#define LOGICAL   (1u << 11)
#define LOW       (1u << 13)
#define REMOTE    (1u << 14)
#define LEVEL     (1u << 15)
#define MASKED    (1u << 16)
#define DM(m)     ((uint32_t)(m) << 8)

static void program(struct emu_ioapic *io, unsigned pin, uint32_t lo, uint8_t dest)
{
	wr(io, 0x11 + 2 * pin, (uint32_t)dest << 24);
	wr(io, 0x10 + 2 * pin, lo);
}

static void expect_msg(unsigned i, uint8_t vector, uint8_t dm, bool logical, bool level,
		       uint32_t dest)
{
	assert_true(i < nsent);
	assert_int_equal(sent[i].vector, vector);
	assert_int_equal(sent[i].delivery, dm);
	assert_int_equal(sent[i].logical, logical);
	assert_int_equal(sent[i].level, level);
	assert_int_equal(sent[i].dest, dest);
	assert_int_equal(sent[i].shorthand, 0);
}

static void test_id_version_arbitration(void **state)
{
	struct emu_ioapic *io = *state;

	assert_int_equal(rd(io, 0x00), 0x03000000);
	assert_int_equal(rd(io, 0x01), 0x00170020);
	assert_int_equal(rd(io, 0x02), 0x03000000);
	wr(io, 0x00, 0xfeffffff); /* only bits 31:24 are the ID */
	assert_int_equal(rd(io, 0x00), 0xfe000000);
	wr(io, 0x01, 0);
	wr(io, 0x02, 0);
	assert_int_equal(rd(io, 0x01), 0x00170020);
	assert_int_equal(rd(io, 0x02), 0xfe000000);
	emu_ioapic_write(io, 0x00, 0x123);
	assert_int_equal(emu_ioapic_read(io, 0x00), 0x23);
	assert_int_equal(nsent, 0);
}

static void test_reset_entries(void **state)
{
	struct emu_ioapic *io = *state;

	for (unsigned pin = 0; pin < EMU_IOAPIC_PINS; pin++) {
		assert_int_equal(rd(io, 0x10 + 2 * pin), MASKED);
		assert_int_equal(rd(io, 0x11 + 2 * pin), 0);
	}
}

static void test_entry_writable_bits(void **state)
{
	struct emu_ioapic *io = *state;

	/* Delivery Status, Remote IRR and reserved bits stay clear. */
	wr(io, 0x10 + 2 * 5, 0xffffffff);
	assert_int_equal(rd(io, 0x10 + 2 * 5), 0x0001afff);
	wr(io, 0x11 + 2 * 5, 0xffffffff);
	assert_int_equal(rd(io, 0x11 + 2 * 5), 0xff000000);
	/* The dwords are independent; the last entry is 0x3e/0x3f. */
	wr(io, 0x3e, 0x000100ab);
	wr(io, 0x3f, 0x5a000000);
	assert_int_equal(rd(io, 0x3e), 0x000100ab);
	assert_int_equal(rd(io, 0x3f), 0x5a000000);
	assert_int_equal(rd(io, 0x10 + 2 * 5), 0x0001afff);
	assert_int_equal(nsent, 0);
}

static void test_out_of_range_ignored(void **state)
{
	struct emu_ioapic *io = *state;
	static const uint32_t bad[] = { 0x03, 0x0f, 0x40, 0x41, 0x80, 0xff };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wr(io, bad[i], 0x12345678);
		assert_int_equal(rd(io, bad[i]), 0);
	}
	/* Only the low 8 bits of IOREGSEL count: 0x110 is 0x10, not 0x110. */
	emu_ioapic_write(io, 0x00, 0x110);
	emu_ioapic_write(io, 0x10, 0x42);
	assert_int_equal(rd(io, 0x10), 0x42);
	/* Offsets other than IOREGSEL and IOWIN. */
	emu_ioapic_write(io, 0x00, 0x01);
	emu_ioapic_write(io, 0x04, 0x10);
	emu_ioapic_write(io, 0x20, 0xdead);
	assert_int_equal(emu_ioapic_read(io, 0x00), 0x01);
	assert_int_equal(emu_ioapic_read(io, 0x20), 0);
	assert_int_equal(emu_ioapic_read(io, 0x14), 0);
	for (unsigned pin = 1; pin < EMU_IOAPIC_PINS; pin++) {
		assert_int_equal(rd(io, 0x10 + 2 * pin), MASKED);
		assert_int_equal(rd(io, 0x11 + 2 * pin), 0);
	}
	emu_ioapic_set_irq(io, EMU_IOAPIC_PINS, true);
	emu_ioapic_set_irq(io, 1000, true);
	assert_int_equal(nsent, 0);
}

static void test_edge_once_per_rising_edge(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 4, 0x31, 0x01);
	assert_int_equal(nsent, 0);
	emu_ioapic_set_irq(io, 4, true);
	assert_int_equal(nsent, 1);
	expect_msg(0, 0x31, EMU_DM_FIXED, false, false, 0x01);
	emu_ioapic_set_irq(io, 4, true);
	emu_ioapic_set_irq(io, 4, false);
	assert_int_equal(nsent, 1);
	emu_ioapic_set_irq(io, 4, true);
	assert_int_equal(nsent, 2);
	/* Edge entries have no Remote IRR and ignore EOIs. */
	assert_int_equal(rd(io, 0x10 + 2 * 4), 0x31);
	emu_ioapic_eoi(io, 0x31);
	assert_int_equal(nsent, 2);
}

static void test_message_fields(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 7, 0x45 | DM(EMU_DM_LOWEST) | LOGICAL, 0xff);
	program(io, 8, 0x00 | DM(EMU_DM_NMI), 0x02);
	program(io, 9, 0x00 | DM(EMU_DM_EXTINT), 0x00);
	emu_ioapic_set_irq(io, 7, true);
	emu_ioapic_set_irq(io, 8, true);
	emu_ioapic_set_irq(io, 9, true);
	assert_int_equal(nsent, 3);
	expect_msg(0, 0x45, EMU_DM_LOWEST, true, false, 0xff);
	expect_msg(1, 0x00, EMU_DM_NMI, false, false, 0x02);
	expect_msg(2, 0x00, EMU_DM_EXTINT, false, false, 0x00);
}

static void test_masked_pins(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 1, 0x41 | MASKED, 0);
	emu_ioapic_set_irq(io, 1, true);
	assert_int_equal(nsent, 0);
	/* The edge came while masked: unmasking does not bring it back. */
	program(io, 1, 0x41, 0);
	assert_int_equal(nsent, 0);
	emu_ioapic_set_irq(io, 1, false);
	emu_ioapic_set_irq(io, 1, true);
	assert_int_equal(nsent, 1);
	program(io, 1, 0x41 | MASKED, 0);
	emu_ioapic_set_irq(io, 1, false);
	emu_ioapic_set_irq(io, 1, true);
	assert_int_equal(nsent, 1);
}

static void test_level_remote_irr_eoi(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 10, 0x50 | LEVEL, 0x01);
	emu_ioapic_set_irq(io, 10, true);
	assert_int_equal(nsent, 1);
	expect_msg(0, 0x50, EMU_DM_FIXED, false, true, 0x01);
	assert_int_equal(rd(io, 0x10 + 2 * 10), 0x50 | LEVEL | REMOTE);

	/* In service: no more until the EOI. */
	emu_ioapic_set_irq(io, 10, false);
	emu_ioapic_set_irq(io, 10, true);
	assert_int_equal(nsent, 1);
	emu_ioapic_eoi(io, 0x51); /* another vector */
	assert_int_equal(nsent, 1);
	/* Guest writes cannot clear Remote IRR. */
	program(io, 10, 0x50 | LEVEL, 0x01);
	assert_int_equal(rd(io, 0x10 + 2 * 10), 0x50 | LEVEL | REMOTE);
	assert_int_equal(nsent, 1);

	/* EOI with the line still asserted: sent again. */
	emu_ioapic_eoi(io, 0x50);
	assert_int_equal(nsent, 2);
	expect_msg(1, 0x50, EMU_DM_FIXED, false, true, 0x01);
	assert_true(rd(io, 0x10 + 2 * 10) & REMOTE);

	/* Deasserted before the EOI: Remote IRR clears, nothing sent. */
	emu_ioapic_set_irq(io, 10, false);
	emu_ioapic_eoi(io, 0x50);
	assert_int_equal(nsent, 2);
	assert_int_equal(rd(io, 0x10 + 2 * 10), 0x50 | LEVEL);

	/* The version-0x20 EOI register does the same. */
	emu_ioapic_set_irq(io, 10, true);
	assert_int_equal(nsent, 3);
	emu_ioapic_write(io, 0x40, 0x50);
	assert_int_equal(nsent, 4);
}

static void test_level_eoi_shared_vector(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 16, 0x60 | LEVEL, 0);
	program(io, 17, 0x60 | LEVEL, 0);
	emu_ioapic_set_irq(io, 16, true);
	emu_ioapic_set_irq(io, 17, true);
	assert_int_equal(nsent, 2);
	emu_ioapic_set_irq(io, 16, false);
	emu_ioapic_eoi(io, 0x60);
	assert_int_equal(nsent, 3); /* 17 again; 16 is quiet */
	assert_false(rd(io, 0x10 + 2 * 16) & REMOTE);
	assert_true(rd(io, 0x10 + 2 * 17) & REMOTE);
}

static void test_level_unmask_delivers(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 11, 0x52 | LEVEL | MASKED, 0);
	emu_ioapic_set_irq(io, 11, true);
	assert_int_equal(nsent, 0);
	assert_false(rd(io, 0x10 + 2 * 11) & REMOTE);
	program(io, 11, 0x52 | LEVEL, 0);
	assert_int_equal(nsent, 1);
	expect_msg(0, 0x52, EMU_DM_FIXED, false, true, 0);
	/* Masked while in service, then the EOI: nothing until unmasked. */
	program(io, 11, 0x52 | LEVEL | MASKED, 0);
	emu_ioapic_eoi(io, 0x52);
	assert_int_equal(nsent, 1);
	program(io, 11, 0x52 | LEVEL, 0);
	assert_int_equal(nsent, 2);
}

static void test_switch_to_edge_clears_remote_irr(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 12, 0x53 | LEVEL, 0);
	emu_ioapic_set_irq(io, 12, true);
	assert_true(rd(io, 0x10 + 2 * 12) & REMOTE);
	/* Linux's way to clear a stuck Remote IRR: edge, then level again. */
	program(io, 12, 0x53 | MASKED, 0);
	assert_false(rd(io, 0x10 + 2 * 12) & REMOTE);
	program(io, 12, 0x53 | LEVEL, 0);
	assert_int_equal(nsent, 2); /* still asserted: delivered again */
}

/* Non-fixed delivery modes are edge-triggered whatever the entry says. */
static void test_nmi_level_is_edge(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 13, DM(EMU_DM_NMI) | LEVEL, 0);
	emu_ioapic_set_irq(io, 13, true);
	assert_int_equal(nsent, 1);
	expect_msg(0, 0, EMU_DM_NMI, false, false, 0);
	assert_false(rd(io, 0x10 + 2 * 13) & REMOTE);
	emu_ioapic_set_irq(io, 13, true);
	assert_int_equal(nsent, 1);
}

/* set_irq's level is the assertion (as KVM_IRQ_LINE's is on the kvm
 * engine): polarity is the guest's to read back, not an inverter. */
static void test_polarity(void **state)
{
	struct emu_ioapic *io = *state;

	program(io, 20, 0x70 | LOW | LEVEL, 0);
	assert_int_equal(rd(io, 0x10 + 2 * 20), 0x70 | LOW | LEVEL);
	assert_int_equal(nsent, 0);
	emu_ioapic_set_irq(io, 20, true);
	assert_int_equal(nsent, 1);
	emu_ioapic_set_irq(io, 20, false);
	emu_ioapic_eoi(io, 0x70);
	assert_int_equal(nsent, 1);

	program(io, 21, 0x71 | LOW, 0);
	emu_ioapic_set_irq(io, 21, true);
	emu_ioapic_set_irq(io, 21, false);
	assert_int_equal(nsent, 2);
	expect_msg(1, 0x71, EMU_DM_FIXED, false, false, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_id_version_arbitration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_writable_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edge_once_per_rising_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_remote_irr_eoi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_eoi_shared_vector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_unmask_delivers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switch_to_edge_clears_remote_irr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmi_level_is_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_polarity, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
