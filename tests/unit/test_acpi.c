/* The ACPI tables: RSDP -> XSDT/RSDT -> FADT (-> DSDT), MADT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/acpi.h"

#define HDR_LEN 36

struct tables {
	uint8_t *buf;
	size_t size;
	uint64_t gpa;
	int used;
};

static void build(struct tables *t, uint64_t gpa, unsigned ncpus)
{
	t->size = ACPI_TABLES_MAX;
	t->buf = malloc(t->size);
	assert_non_null(t->buf);
	memset(t->buf, 0xa5, t->size); /* no help from a zeroed buffer */
	t->gpa = gpa;
	t->used = acpi_build(t->buf, t->size, gpa, ncpus);
	if (t->used <= 0)
		fail_msg("acpi_build(%u cpus) = %d", ncpus, t->used);
	assert_true((size_t)t->used <= t->size);
}

/* The table at guest address gpa: inside what acpi_build used, with the
 * signature sig, a sane length and a zero checksum. */
static const uint8_t *table_at(const struct tables *t, uint64_t gpa, const char *sig)
{
	const uint8_t *p;
	uint32_t len;

	if (gpa < t->gpa || gpa - t->gpa > (uint64_t)t->used - HDR_LEN)
		fail_msg("%s at %#llx is outside the tables [%#llx, +%#x)", sig,
			 (unsigned long long)gpa, (unsigned long long)t->gpa, t->used);
	p = t->buf + (gpa - t->gpa);
	if (memcmp(p, sig, 4))
		fail_msg("table at %#llx is '%.4s', want '%s'", (unsigned long long)gpa, p, sig);
	len = get_le32(p + 4);
	assert_true(len >= HDR_LEN);
	assert_true(gpa - t->gpa + len <= (uint64_t)t->used);
	if (byte_sum(p, len))
		fail_msg("%s checksum: bytes sum to %#x", sig, byte_sum(p, len));
	assert_memory_equal(p + 10, "KUMO  ", 6);
	return p;
}

static const uint8_t *check_rsdp(const struct tables *t)
{
	const uint8_t *rsdp = t->buf;

	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(byte_sum(rsdp, 20), 0);
	assert_int_equal(byte_sum(rsdp, 36), 0);
	assert_int_equal(rsdp[15], 2);               /* revision: has an XSDT */
	assert_int_equal(get_le32(rsdp + 20), 36);   /* length */
	assert_memory_equal(rsdp + 9, "KUMO  ", 6);
	assert_memory_equal(rsdp + 33, "\0\0\0", 3); /* reserved */
	return rsdp;
}

/* GAS for a byte-wide register at I/O port port. */
static void check_gas_io8(const uint8_t *gas, uint16_t port)
{
	assert_int_equal(gas[0], 1);   /* system I/O */
	assert_int_equal(gas[1], 8);   /* bit width */
	assert_int_equal(gas[2], 0);   /* bit offset */
	assert_int_equal(gas[3], 1);   /* byte access */
	assert_int_equal(get_le64(gas + 4), port);
}

/* An AML PkgLength at p: its value, and its own size in *n. */
static size_t pkglen(const uint8_t *p, size_t *n)
{
	size_t extra = p[0] >> 6, v;

	*n = extra + 1;
	if (!extra)
		return p[0] & 0x3f;
	v = p[0] & 0xf;
	for (size_t i = 1; i <= extra; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

/* Where the object whose name starts at name ends: its PkgLength sits
 * between the opcode's last byte op and the name. */
static const uint8_t *pkg_end(const uint8_t *name, uint8_t op)
{
	for (size_t n = 1; n <= 4; n++) {
		const uint8_t *pl = name - n;
		size_t got, v = pkglen(pl, &got);
		if (got == n && pl[-1] == op)
			return pl + v;
	}
	return NULL;
}

static void check_dsdt(const struct tables *t, uint64_t gpa)
{
	const uint8_t *dsdt = table_at(t, gpa, "DSDT");
	uint32_t len = get_le32(dsdt + 4);
	const uint8_t *s5 = memmem(dsdt + HDR_LEN, len - HDR_LEN, "_S5_", 4);

	assert_non_null(s5);
	/* Name (_S5_, Package (n) { SLP_TYP, ... }) */
	assert_int_equal(s5[-1], 0x08);                      /* NameOp */
	assert_true(s5 + 9 <= dsdt + len);
	assert_int_equal(s5[4], 0x12);                       /* PackageOp */
	assert_true(s5[6] >= 1);                             /* elements */
	assert_int_equal(s5[7], 0x0a);                       /* BytePrefix */
	assert_int_equal(s5[8], ACPI_S5_SLP_TYP);
	assert_true(s5 + 5 + s5[5] <= dsdt + len);           /* PkgLength fits */

	/* \_SB.COM1: _HID EISAID("PNP0501"), a _CRS with I/O 0x3f8 x 8 and IRQ 4 */
	static const uint8_t hid[] = { '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t io[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08 };
	static const uint8_t irq[] = { 0x22, 0x10, 0x00, 0x79 };
	const uint8_t *scope = memmem(dsdt + HDR_LEN, len - HDR_LEN, "\\_SB_", 5);
	assert_non_null(scope);
	assert_true(pkg_end(scope, 0x10) == dsdt + len);        /* its PkgLength ends the table */
	const uint8_t *dev = memmem(scope, dsdt + len - scope, "COM1", 4);
	assert_non_null(dev);
	assert_int_equal(dev[-3], 0x5b);                     /* DeviceOp */
	assert_int_equal(dev[-2], 0x82);
	assert_true(dev - 1 + dev[-1] < dsdt + len);
	assert_non_null(memmem(dev, dsdt + len - dev, hid, sizeof(hid)));
	assert_non_null(memmem(dev, dsdt + len - dev, io, sizeof(io)));
	assert_non_null(memmem(dev, dsdt + len - dev, irq, sizeof(irq)));

	/* \_SB.PCI0: PNP0A03, the 32-bit BAR window, a _PRT of 31 slots x 4 pins */
	static const uint8_t pci_hid[] = { '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	const uint8_t *pci = memmem(scope, dsdt + len - scope, "PCI0", 4);
	assert_non_null(pci);
	assert_true(pkg_end(pci, 0x82) == dsdt + len);          /* the last device in \_SB */
	assert_non_null(memmem(pci, dsdt + len - pci, pci_hid, sizeof(pci_hid)));
	const uint8_t *win = memmem(pci, dsdt + len - pci, (uint8_t[]){ 0x87, 23, 0, 0 }, 4);
	assert_non_null(win);
	assert_int_equal(get_le32(win + 10), 0xc0000000u);
	assert_int_equal(get_le32(win + 14), 0xfebfffffu);
	const uint8_t *prt = memmem(pci, dsdt + len - pci, "_PRT", 4);
	assert_non_null(prt);
	assert_int_equal(prt[4], 0x12);                      /* PackageOp */
	size_t n;
	size_t plen = pkglen(prt + 5, &n);
	assert_true(prt + 5 + plen <= dsdt + len);
	assert_int_equal(prt[5 + n], 31 * 4);
	/* The first entry: slot 1 (0x1ffff), pin 0, source 0, GSI 17. */
	static const uint8_t first[] = { 0x04, 0x0c, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x0a, 17 };
	assert_memory_equal(prt + 5 + n + 3, first, sizeof(first));
}

static void check_fadt(const struct tables *t, uint64_t gpa)
{
	const uint8_t *f = table_at(t, gpa, "FACP");
	uint32_t flags = get_le32(f + 112);

	assert_int_equal(get_le32(f + 4), 276);   /* ACPI 6.0 FADT */
	assert_int_equal(f[8], 6);                /* major version */
	assert_true(flags & (1u << 20));          /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));          /* RESET_REG_SUP */
	check_gas_io8(f + 116, ACPI_RESET_PORT);  /* RESET_REG */
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	check_gas_io8(f + 244, ACPI_SLEEP_CTL_PORT);
	check_gas_io8(f + 256, ACPI_SLEEP_STS_PORT);
	/* Hardware-reduced: no fixed PM register blocks at all. */
	for (unsigned off = 48; off < 96; off++)
		if (f[off])
			fail_msg("FADT byte %u is %#x, want 0 (no fixed hardware)", off, f[off]);
	for (unsigned off = 148; off < 244; off++)
		if (f[off])
			fail_msg("FADT byte %u is %#x, want 0 (no X_ PM blocks)", off, f[off]);
	assert_int_equal(get_le64(f + 140), get_le32(f + 40)); /* X_DSDT == DSDT */
	check_dsdt(t, get_le64(f + 140));
}

static void check_madt(const struct tables *t, uint64_t gpa, unsigned ncpus)
{
	const uint8_t *m = table_at(t, gpa, "APIC");
	uint32_t len = get_le32(m + 4);
	unsigned lapics = 0, ioapics = 0;

	assert_int_equal(len, 44 + 8 * ncpus + 12);
	assert_int_equal(get_le32(m + 36), LAPIC_GPA);
	assert_int_equal(get_le32(m + 40) & 1, 1);   /* PCAT_COMPAT */
	for (uint32_t at = 44; at < len;) {
		const uint8_t *e = m + at;

		assert_true(at + 2 <= len);
		assert_true(e[1] >= 2 && at + e[1] <= len);
		if (e[0] == 0) {
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);     /* processor UID */
			assert_int_equal(e[3], lapics);     /* APIC id = vCPU index */
			assert_int_equal(get_le32(e + 4) & 1, 1); /* enabled */
			lapics++;
		} else if (e[0] == 1) {
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], ncpus);      /* id after the LAPICs' */
			assert_int_equal(get_le32(e + 4), IOAPIC_GPA);
			assert_int_equal(get_le32(e + 8), 0); /* GSI base */
			ioapics++;
		} else {
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		at += e[1];
	}
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
}

/* The RSDT (4-byte entries) or XSDT (8-byte): exactly FADT then MADT. */
static void check_sdt(const struct tables *t, uint64_t gpa, const char *sig, unsigned esize,
		      uint64_t *fadt, uint64_t *madt)
{
	const uint8_t *s = table_at(t, gpa, sig);
	uint64_t e[2];

	assert_int_equal(get_le32(s + 4), HDR_LEN + 2 * esize);
	for (unsigned i = 0; i < 2; i++)
		e[i] = esize == 8 ? get_le64(s + HDR_LEN + 8 * i) : get_le32(s + HDR_LEN + 4 * i);
	table_at(t, e[0], "FACP");
	table_at(t, e[1], "APIC");
	*fadt = e[0];
	*madt = e[1];
}

static void check_all(uint64_t gpa, unsigned ncpus)
{
	struct tables t;
	const uint8_t *rsdp;
	uint64_t xf, xm, rf, rm;

	build(&t, gpa, ncpus);
	rsdp = check_rsdp(&t);
	check_sdt(&t, get_le64(rsdp + 24), "XSDT", 8, &xf, &xm);
	check_sdt(&t, get_le32(rsdp + 16), "RSDT", 4, &rf, &rm);
	assert_int_equal(xf, rf);
	assert_int_equal(xm, rm);
	check_fadt(&t, xf);
	check_madt(&t, xm, ncpus);
	free(t.buf);
}

static void test_1_cpu(void **state) { check_all(ACPI_TABLES_GPA, 1); }
static void test_4_cpus(void **state) { check_all(ACPI_TABLES_GPA, 4); }
static void test_64_cpus(void **state) { check_all(ACPI_TABLES_GPA, 64); }
/* The pointers follow gpa; nothing assumes 0xe0000. */
static void test_other_gpa(void **state) { check_all(0x12340, 3); }

/* Every table, and the RSDP, is 16-byte aligned and disjoint from the others. */
static void test_layout(void **state)
{
	struct tables t;
	const uint8_t *rsdp, *x;
	uint64_t start[5], end[5];
	unsigned n = 0;

	build(&t, ACPI_TABLES_GPA, 8);
	rsdp = t.buf;
	start[n] = t.gpa, end[n++] = t.gpa + 36;
	x = table_at(&t, get_le64(rsdp + 24), "XSDT");
	start[n] = get_le64(rsdp + 24), end[n] = start[n] + get_le32(x + 4), n++;
	start[n] = get_le32(rsdp + 16), end[n] = start[n] + 44, n++;
	for (unsigned i = 0; i < 2; i++) {
		uint64_t g = get_le64(x + HDR_LEN + 8 * i);
		start[n] = g, end[n++] = g + get_le32(t.buf + (g - t.gpa) + 4);
	}
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(start[i] % 16, 0);
		assert_true(end[i] <= t.gpa + t.used);
		for (unsigned j = 0; j < i; j++)
			assert_true(end[i] <= start[j] || end[j] <= start[i]);
	}
	free(t.buf);
}

/* Every buffer smaller than what the tables need is refused without a
 * write past its end (the exact-size heap buffers let ASan check that). */
static void check_too_small(unsigned ncpus)
{
	struct tables t;
	int need;

	build(&t, ACPI_TABLES_GPA, ncpus);
	need = t.used;
	free(t.buf);
	for (int size = 0; size < need; size++) {
		uint8_t *buf = malloc(size ? size : 1);
		int rc = acpi_build(buf, size, ACPI_TABLES_GPA, ncpus);
		if (rc != -ENOSPC)
			fail_msg("size %d of %d: acpi_build = %d, want -ENOSPC", size, need, rc);
		free(buf);
	}
	{
		uint8_t *buf = malloc(need);
		assert_int_equal(acpi_build(buf, need, ACPI_TABLES_GPA, ncpus), need);
		free(buf);
	}
}

static void test_too_small_1(void **state) { check_too_small(1); }
static void test_too_small_64(void **state) { check_too_small(64); }

static void test_64_cpus_fit(void **state)
{
	uint8_t *buf = malloc(ACPI_TABLES_MAX);
	int used = acpi_build(buf, ACPI_TABLES_MAX, ACPI_TABLES_GPA, 64);

	assert_true(used > 0 && used <= 4096); /* far below the 64 KiB window */
	free(buf);
}

static void test_invalid(void **state)
{
	uint8_t buf[4096];

	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_GPA + 8, 1), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_GPA + 1, 1), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_GPA, 0), -EINVAL);
	assert_int_equal(acpi_build(buf, 0, ACPI_TABLES_GPA + 4, 1), -EINVAL);
	/* 8-bit APIC ids: 254 CPUs and the IOAPIC at most. */
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_GPA, ACPI_MAX_CPUS + 1), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_GPA, 1u << 29), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_1_cpu),
		cmocka_unit_test(test_4_cpus),
		cmocka_unit_test(test_64_cpus),
		cmocka_unit_test(test_other_gpa),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_too_small_1),
		cmocka_unit_test(test_too_small_64),
		cmocka_unit_test(test_64_cpus_fit),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
