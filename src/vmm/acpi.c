/* Hardware-reduced ACPI (as cloud-hypervisor and Firecracker do): no PM
 * timer, no SCI, no fixed events; power off and reset are two I/O ports
 * named in the FADT, and \_S5 in the DSDT gives the sleep type. */
#include "kumo/acpi.h"

#include <errno.h>
#include <string.h>

#define HDR_LEN 36

struct builder {
	uint8_t *buf;
	size_t size, used;
	uint64_t gpa;
};

/* Room for a table of len bytes, 16-byte aligned; NULL when full. */
static uint8_t *take(struct builder *b, size_t len, uint64_t *gpa)
{
	size_t at = ALIGN_UP(b->used, 16);
	if (at > b->size || len > b->size - at)
		return NULL;
	b->used = at + len;
	*gpa = b->gpa + at;
	return b->buf + at;
}

static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "KUMO  ", 6);    /* OEM id */
	memcpy(t + 16, "KUMOVM  ", 8);  /* OEM table id */
	put_le32(t + 24, 1);            /* OEM revision */
	memcpy(t + 28, "KUMO", 4);      /* creator id */
	put_le32(t + 32, 1);            /* creator revision */
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = -byte_sum(t, len);
}

/* Generic Address Structure for a byte-wide I/O port. */
static void gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = 1;  /* system I/O space */
	p[1] = 8;  /* register bit width */
	p[2] = 0;  /* bit offset */
	p[3] = 1;  /* byte access */
	put_le64(p + 4, port);
}

static int build_dsdt(struct builder *b, uint64_t *gpa)
{
	/* Name (_S5_, Package (4) { 5, 5, 0, 0 }) */
	static const uint8_t aml[] = {
		0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
		0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00,
	};
	uint32_t len = HDR_LEN + sizeof(aml);
	uint8_t *t = take(b, len, gpa);

	if (!t)
		return -ENOSPC;
	header(t, "DSDT", len, 2);
	memcpy(t + HDR_LEN, aml, sizeof(aml));
	finish(t, len);
	return 0;
}

static int build_fadt(struct builder *b, uint64_t dsdt, uint64_t *gpa)
{
	const uint32_t len = 276; /* ACPI 6.0 */
	uint8_t *t = take(b, len, gpa);

	if (!t)
		return -ENOSPC;
	memset(t, 0, len);
	header(t, "FACP", len, 6);
	put_le32(t + 40, (uint32_t)dsdt);      /* DSDT */
	put_le16(t + 46, ACPI_SCI_IRQ);        /* SCI_INT: unused when reduced */
	/* IAPC_BOOT_ARCH: no VGA, no CMOS RTC; the 8042 exists only for reset. */
	put_le16(t + 109, (1 << 2) | (1 << 5));
	/* Flags: WBINVD, RESET_REG_SUP, HW_REDUCED_ACPI. */
	put_le32(t + 112, (1 << 0) | (1 << 10) | (1 << 20));
	gas_io8(t + 116, ACPI_RESET_PORT);     /* RESET_REG */
	t[128] = ACPI_RESET_VALUE;
	t[131] = 0;                            /* FADT minor version */
	put_le64(t + 140, dsdt);               /* X_DSDT */
	gas_io8(t + 244, ACPI_SLEEP_CTL_PORT); /* SLEEP_CONTROL_REG */
	gas_io8(t + 256, ACPI_SLEEP_STS_PORT); /* SLEEP_STATUS_REG */
	memcpy(t + 268, "KUMO    ", 8);        /* hypervisor vendor identity */
	finish(t, len);
	return 0;
}

static int build_madt(struct builder *b, unsigned ncpus, uint64_t *gpa)
{
	uint32_t len = HDR_LEN + 8 + ncpus * 8 + 12;
	uint8_t *t = take(b, len, gpa), *e;

	if (!t)
		return -ENOSPC;
	memset(t, 0, len);
	header(t, "APIC", len, 4);
	put_le32(t + 36, (uint32_t)LAPIC_GPA);
	put_le32(t + 40, 1); /* PCAT_COMPAT: there are 8259s */
	e = t + 44;
	for (unsigned i = 0; i < ncpus; i++, e += 8) {
		e[0] = 0;           /* processor local APIC */
		e[1] = 8;
		e[2] = i;           /* ACPI processor UID */
		e[3] = i;           /* APIC id */
		put_le32(e + 4, 1); /* enabled */
	}
	e[0] = 1;                   /* I/O APIC */
	e[1] = 12;
	e[2] = ncpus;               /* its id follows the LAPICs' */
	put_le32(e + 4, (uint32_t)IOAPIC_GPA);
	put_le32(e + 8, 0);         /* GSI base */
	finish(t, len);
	return 0;
}

static int build_sdt(struct builder *b, const char sig[4], unsigned entry_size,
		     const uint64_t *tables, unsigned n, uint64_t *gpa)
{
	uint32_t len = HDR_LEN + entry_size * n;
	uint8_t *t = take(b, len, gpa);

	if (!t)
		return -ENOSPC;
	header(t, sig, len, 1);
	for (unsigned i = 0; i < n; i++) {
		if (entry_size == 8)
			put_le64(t + HDR_LEN + 8 * i, tables[i]);
		else
			put_le32(t + HDR_LEN + 4 * i, (uint32_t)tables[i]);
	}
	finish(t, len);
	return 0;
}

int acpi_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned ncpus)
{
	struct builder b = { .buf = buf, .size = size, .gpa = gpa };
	uint64_t rsdp_gpa, dsdt, tables[2], rsdt, xsdt;
	uint8_t *rsdp;
	int err;

	/* 8-bit APIC and processor ids; the IOAPIC takes the id after them. */
	if (gpa % 16 || !ncpus || ncpus > ACPI_MAX_CPUS)
		return -EINVAL;
	rsdp = take(&b, 36, &rsdp_gpa);
	if (!rsdp)
		return -ENOSPC;
	if ((err = build_dsdt(&b, &dsdt)) ||
	    (err = build_fadt(&b, dsdt, &tables[0])) ||
	    (err = build_madt(&b, ncpus, &tables[1])) ||
	    (err = build_sdt(&b, "RSDT", 4, tables, 2, &rsdt)) ||
	    (err = build_sdt(&b, "XSDT", 8, tables, 2, &xsdt)))
		return err;

	memset(rsdp, 0, 36);
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "KUMO  ", 6);
	rsdp[15] = 2;                 /* revision: ACPI 2.0+ */
	put_le32(rsdp + 16, (uint32_t)rsdt);
	put_le32(rsdp + 20, 36);
	put_le64(rsdp + 24, xsdt);
	rsdp[8] = -byte_sum(rsdp, 20);
	rsdp[32] = -byte_sum(rsdp, 36);
	return (int)b.used;
}
