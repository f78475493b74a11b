/* Hardware-reduced ACPI (as cloud-hypervisor and Firecracker do): no PM
 * timer, no SCI, no fixed events; power off and reset are two I/O ports
 * named in the FADT, and \_S5 in the DSDT gives the sleep type. */
#include "kumo/acpi.h"
#include "kumo/devices.h"
#include "kumo/pci.h"

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

/* ---- a little AML writer: byte-code into a bounded buffer ---- */
struct aml {
	uint8_t *p;
	size_t size, len;
	bool overflow;
	size_t open[4];          /* where each open package's body starts */
	unsigned depth;
};

static void aml_bytes(struct aml *a, const void *bytes, size_t n)
{
	if (a->overflow || n > a->size - a->len) {
		a->overflow = true;
		return;
	}
	memcpy(a->p + a->len, bytes, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

/* Opens a package (Scope, Device, Buffer...) after its opcode: the
 * PkgLength is written when it is closed. */
static void aml_open(struct aml *a)
{
	if (a->depth == ARRAY_SIZE(a->open)) {
		a->overflow = true;
		return;
	}
	a->open[a->depth++] = a->len;
}

/* PkgLength counts itself: one byte up to 63, else 2-4 bytes with the
 * low nibble first (ACPI 6.4, 20.2.4). */
static void aml_close(struct aml *a)
{
	size_t at, body, total, n;
	uint8_t enc[4];

	if (a->overflow || !a->depth)
		return;
	at = a->open[--a->depth];
	body = a->len - at;
	n = body + 1 <= 63 ? 1 : body + 2 < (1u << 12) ? 2 : body + 3 < (1u << 20) ? 3 : 4;
	total = body + n;
	if (n == 1) {
		enc[0] = total;
	} else {
		enc[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (n > a->size - a->len) {
		a->overflow = true;
		return;
	}
	memmove(a->p + at + n, a->p + at, body);
	memcpy(a->p + at, enc, n);
	a->len += n;
}

static void aml_name(struct aml *a, const char seg[4])
{
	aml_byte(a, 0x08);                       /* NameOp */
	aml_bytes(a, seg, 4);
}

/* EISA id "PNP0501" as its compressed 32-bit form. */
static void aml_eisa_id(struct aml *a, const char id[7])
{
	uint16_t vendor = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	unsigned product = 0;
	for (int i = 3; i < 7; i++)
		product = product << 4 | (unsigned)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
	aml_byte(a, 0x0c);                       /* DWordPrefix */
	aml_byte(a, vendor >> 8);
	aml_byte(a, vendor & 0xff);
	aml_byte(a, product >> 8);
	aml_byte(a, product & 0xff);
}

/* Device (NAME) { _HID EISA id, _UID, _CRS { IO port range, IRQ } } for
 * a legacy ISA device: hardware-reduced ACPI has no legacy PIC, so Linux
 * sets up an ISA IRQ only for a device ACPI describes. */
static void aml_isa_device(struct aml *a, const char name[4], const char hid[7], uint8_t uid,
			   uint16_t port, uint8_t nports, uint8_t irq)
{
	uint8_t crs[] = {
		0x47, 0x01, port & 0xff, port >> 8, port & 0xff, port >> 8, 0x01, nports, /* IO Decode16 */
		0x22, (uint8_t)(1u << irq), (uint8_t)((1u << irq) >> 8),           /* IRQNoFlags {irq} */
		0x79, 0x00,                                                          /* EndTag */
	};

	aml_byte(a, 0x5b);                       /* DeviceOp */
	aml_byte(a, 0x82);
	aml_open(a);
	aml_bytes(a, name, 4);
	aml_name(a, "_HID");
	aml_eisa_id(a, hid);
	aml_name(a, "_UID");
	aml_byte(a, 0x0a);                       /* BytePrefix */
	aml_byte(a, uid);
	aml_name(a, "_CRS");
	aml_byte(a, 0x11);                       /* BufferOp */
	aml_open(a);
	aml_byte(a, 0x0a);
	aml_byte(a, sizeof(crs));
	aml_bytes(a, crs, sizeof(crs));
	aml_close(a);
	aml_close(a);
}

static void aml_int(struct aml *a, uint64_t v)
{
	if (v <= 1) {
		aml_byte(a, (uint8_t)v);         /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		aml_byte(a, 0x0a);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		aml_byte(a, 0x0b);
		aml_byte(a, v & 0xff);
		aml_byte(a, (uint8_t)(v >> 8));
	} else {
		uint8_t le[4];
		put_le32(le, (uint32_t)v);
		aml_byte(a, 0x0c);
		aml_bytes(a, le, 4);
	}
}

/* Name (NAME, Buffer () { resource descriptors..., EndTag }) */
static void aml_resources(struct aml *a, const char name[4], const uint8_t *res, size_t len)
{
	aml_name(a, name);
	aml_byte(a, 0x11);                       /* BufferOp */
	aml_open(a);
	aml_int(a, len + 2);
	aml_bytes(a, res, len);
	aml_byte(a, 0x79);                       /* EndTag */
	aml_byte(a, 0x00);
	aml_close(a);
}

/* Word/DWord address space descriptors (ACPI 6.4, 6.4.3.5.2-3): a
 * producer range [min, max], fixed, positively decoded. */
static size_t res_word(uint8_t *p, uint8_t type, uint16_t min, uint16_t max)
{
	p[0] = 0x88;                             /* Word Address Space */
	put_le16(p + 1, 13);
	p[3] = type;                             /* 1 I/O, 2 bus number */
	p[4] = 0x0c;                             /* MinFixed, MaxFixed, producer */
	p[5] = type == 1 ? 3 : 0;                /* I/O: entire range */
	put_le16(p + 6, 0);                      /* granularity */
	put_le16(p + 8, min);
	put_le16(p + 10, max);
	put_le16(p + 12, 0);                     /* translation */
	put_le16(p + 14, (uint16_t)(max - min + 1));
	return 16;
}

static size_t res_dword_mem(uint8_t *p, uint32_t min, uint32_t max)
{
	p[0] = 0x87;                             /* DWord Address Space */
	put_le16(p + 1, 23);
	p[3] = 0;                                /* memory */
	p[4] = 0x0c;
	p[5] = 0x01;                             /* read/write, non-cacheable */
	put_le32(p + 6, 0);
	put_le32(p + 10, min);
	put_le32(p + 14, max);
	put_le32(p + 18, 0);
	put_le32(p + 22, max - min + 1);
	return 26;
}

/* \_SB.PCI0: the host bridge of bus 0 (config through 0xcf8), its windows,
 * and _PRT: pin p of slot s is GSI 16 + (s + p) % 8, as pci.c drives it. */
static void aml_pci_root(struct aml *a)
{
	uint8_t crs[16 * 3 + 8 + 26], *p = crs;

	p += res_word(p, 2, 0, 0);               /* bus 0 */
	memcpy(p, (uint8_t[]){ 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 }, 8);
	p += 8;                                  /* IO (Decode16, 0xcf8, 8): config ports */
	p += res_word(p, 1, 0x0000, 0x0cf7);
	p += res_word(p, 1, 0x0d00, 0xffff);
	p += res_dword_mem(p, (uint32_t)PCI_MMIO_START, (uint32_t)(PCI_MMIO_END - 1));

	aml_byte(a, 0x5b);                       /* DeviceOp */
	aml_byte(a, 0x82);
	aml_open(a);
	aml_bytes(a, "PCI0", 4);
	aml_name(a, "_HID");
	aml_eisa_id(a, "PNP0A03");
	aml_name(a, "_ADR");
	aml_int(a, 0);
	aml_name(a, "_SEG");
	aml_int(a, 0);
	aml_name(a, "_UID");
	aml_int(a, 0);
	aml_name(a, "_BBN");
	aml_int(a, 0);
	aml_resources(a, "_CRS", crs, (size_t)(p - crs));
	aml_name(a, "_PRT");
	aml_byte(a, 0x12);                       /* PackageOp */
	aml_open(a);
	aml_byte(a, (PCI_MAX_SLOTS - 1) * 4);
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++)
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_byte(a, 0x12);
			aml_open(a);
			aml_byte(a, 4);
			aml_int(a, (uint64_t)s << 16 | 0xffff);
			aml_int(a, pin);
			aml_int(a, 0);           /* source: a GSI, not a link device */
			aml_int(a, PCI_INTX_GSI_BASE + (s + pin) % PCI_INTX_GSIS);
			aml_close(a);
		}
	aml_close(a);
	aml_close(a);
}

static int build_dsdt(struct builder *b, uint64_t *gpa)
{
	uint8_t body[4096];
	struct aml a = { .p = body, .size = sizeof(body) };
	/* Name (_S5_, Package (4) { 5, 5, 0, 0 }) */
	static const uint8_t s5[] = {
		0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
		0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00,
	};
	uint32_t len;
	uint8_t *t;

	aml_bytes(&a, s5, sizeof(s5));
	aml_byte(&a, 0x10);                      /* Scope (\_SB) */
	aml_open(&a);
	aml_bytes(&a, "\\_SB_", 5);
	aml_isa_device(&a, "COM1", "PNP0501", 0, SERIAL_COM1_BASE, 8, SERIAL_COM1_IRQ);
	aml_pci_root(&a);
	aml_close(&a);
	if (a.overflow || a.depth)
		return -ENOSPC;
	len = HDR_LEN + a.len;
	t = take(b, len, gpa);
	if (!t)
		return -ENOSPC;
	header(t, "DSDT", len, 2);
	memcpy(t + HDR_LEN, body, a.len);
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
