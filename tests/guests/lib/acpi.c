#include "guest.h"

struct rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length; /* revision >= 2 from here */
	uint64_t xsdt_address;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

static uint8_t sum(const void *p, uint32_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--)
		s += *b++;
	return s;
}

static uint64_t scan_rsdp(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 20 <= end; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) && sum((const void *)a, 20) == 0)
			return a;
	return 0;
}

uint64_t acpi_rsdp(void)
{
	if (pvh_boot.info.magic == PVH_MAGIC && pvh_boot.info.rsdp_paddr)
		return pvh_boot.info.rsdp_paddr;
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)0x40e << 4;
	uint64_t r = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		r = scan_rsdp(ebda, ebda + 1024);
	return r ? r : scan_rsdp(0xe0000, 0x100000);
}

static const struct acpi_header *check(uint64_t addr, const char *signature)
{
	const struct acpi_header *h = (const void *)addr;
	if (!addr || memcmp(h->signature, signature, 4))
		return NULL;
	if (sum(h, h->length) != 0)
		kprintf("acpi: warning: bad checksum in %s\n", signature);
	return h;
}

const struct acpi_header *acpi_find_table(const char *signature)
{
	const struct rsdp *r = (const void *)acpi_rsdp();
	if (!r)
		return NULL;
	const struct acpi_header *root = NULL;
	unsigned entry_size = 4;
	if (r->revision >= 2 && r->xsdt_address) {
		root = check(r->xsdt_address, "XSDT");
		entry_size = 8;
	}
	if (!root) {
		root = check(r->rsdt_address, "RSDT");
		entry_size = 4;
	}
	if (!root)
		return NULL;
	const uint8_t *e = (const uint8_t *)root + sizeof(*root);
	const uint8_t *end = (const uint8_t *)root + root->length;
	for (; e + entry_size <= end; e += entry_size) {
		uint64_t addr = 0;
		memcpy(&addr, e, entry_size);
		const struct acpi_header *t = (const void *)addr;
		if (addr && !memcmp(t->signature, signature, 4))
			return check(addr, signature);
	}
	return NULL;
}

/* ---- MADT ---- */

enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_ISO = 2, MADT_X2APIC = 9 };

/* Calls fn for each MADT entry (type, bytes) until it returns false. */
static void madt_each(bool (*fn)(const uint8_t *e, void *ctx), void *ctx)
{
	const struct acpi_header *m = acpi_find_table("APIC");
	if (!m)
		return;
	const uint8_t *e = (const uint8_t *)m + sizeof(*m) + 8; /* LAPIC address, flags */
	const uint8_t *end = (const uint8_t *)m + m->length;
	while (e + 2 <= end && e[1] >= 2 && e + e[1] <= end) {
		if (!fn(e, ctx))
			return;
		e += e[1];
	}
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

struct cpu_list {
	uint32_t *ids;
	int max, n;
};

static bool add_cpu(const uint8_t *e, void *ctx)
{
	struct cpu_list *l = ctx;
	uint32_t id, flags;
	if (e[0] == MADT_LAPIC && e[1] >= 8) {
		id = e[3];
		flags = le32(e + 4);
	} else if (e[0] == MADT_X2APIC && e[1] >= 16) {
		id = le32(e + 4);
		flags = le32(e + 8);
	} else {
		return true;
	}
	if (!(flags & 1)) /* not enabled */
		return true;
	if (l->n < l->max)
		l->ids[l->n] = id;
	l->n++;
	return true;
}

int acpi_cpu_apic_ids(uint32_t *ids, int max)
{
	struct cpu_list l = { ids, max, 0 };
	madt_each(add_cpu, &l);
	return l.n;
}

static bool find_ioapic(const uint8_t *e, void *ctx)
{
	if (e[0] != MADT_IOAPIC || e[1] < 12)
		return true;
	*(uint64_t *)ctx = le32(e + 4);
	return false;
}

uint64_t acpi_ioapic_address(void)
{
	uint64_t a = 0xfec00000;
	madt_each(find_ioapic, &a);
	return a;
}

struct iso_query {
	uint8_t irq;
	uint32_t gsi;
};

static bool find_iso(const uint8_t *e, void *ctx)
{
	struct iso_query *q = ctx;
	if (e[0] != MADT_ISO || e[1] < 10 || e[2] != 0 || e[3] != q->irq)
		return true;
	q->gsi = le32(e + 4);
	return false;
}

uint32_t acpi_isa_irq_gsi(uint8_t irq)
{
	struct iso_query q = { irq, irq };
	madt_each(find_iso, &q);
	return q.gsi;
}

/* ---- FADT, DSDT ---- */

enum {
	FADT_DSDT = 40,
	FADT_PM1A_CNT_BLK = 64,
	FADT_FLAGS = 112,
	FADT_RESET_REG = 116,
	FADT_RESET_VALUE = 128,
	FADT_X_DSDT = 140,
	FADT_X_PM1A_CNT_BLK = 172,
	FADT_SLEEP_CONTROL_REG = 244,
};
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* The first element of the \_S5 package: Name(_S5_, Package(){n, ...}). */
static int dsdt_s5(const struct acpi_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt + sizeof(*dsdt);
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;
	for (; p + 8 <= end; p++) {
		if (memcmp(p, "_S5_", 4) || p[4] != 0x12) /* PackageOp */
			continue;
		const uint8_t *q = p + 5;
		q += 1 + (*q >> 6); /* PkgLength */
		q++;                /* NumElements */
		if (q + 2 > end)
			return -1;
		switch (q[0]) {
		case 0x00: return 0;    /* ZeroOp */
		case 0x01: return 1;    /* OneOp */
		case 0x0a: return q[1]; /* BytePrefix */
		case 0x0b:              /* WordPrefix */
		case 0x0c: return q[1]; /* DWordPrefix: SLP_TYP is 3 bits anyway */
		default: return -1;
		}
	}
	return -1;
}

static bool gas_present(const struct acpi_gas *g)
{
	return g->address != 0 && (g->space_id == ACPI_SPACE_MEMORY || g->space_id == ACPI_SPACE_IO);
}

bool acpi_power_info(struct acpi_power *p)
{
	memset(p, 0, sizeof(*p));
	p->s5_slp_typ = -1;
	const struct acpi_header *f = acpi_find_table("FACP");
	if (!f)
		return false;
	const uint8_t *b = (const uint8_t *)f;
	uint32_t len = f->length;
	uint32_t flags = len >= FADT_FLAGS + 4 ? le32(b + FADT_FLAGS) : 0;
	p->hw_reduced = flags & FADT_HW_REDUCED_ACPI;

	if (len >= FADT_SLEEP_CONTROL_REG + 12) {
		memcpy(&p->sleep_control, b + FADT_SLEEP_CONTROL_REG, 12);
		p->has_sleep_control = gas_present(&p->sleep_control);
	}
	if (len >= FADT_X_PM1A_CNT_BLK + 12) {
		memcpy(&p->pm1a_cnt, b + FADT_X_PM1A_CNT_BLK, 12);
		p->has_pm1a_cnt = gas_present(&p->pm1a_cnt);
	}
	if (!p->has_pm1a_cnt && len >= FADT_PM1A_CNT_BLK + 4 && le32(b + FADT_PM1A_CNT_BLK)) {
		p->pm1a_cnt = (struct acpi_gas){ ACPI_SPACE_IO, 16, 0, 2, le32(b + FADT_PM1A_CNT_BLK) };
		p->has_pm1a_cnt = true;
	}
	if (len >= FADT_RESET_VALUE + 1) {
		memcpy(&p->reset_reg, b + FADT_RESET_REG, 12);
		p->reset_value = b[FADT_RESET_VALUE];
		p->has_reset = (flags & FADT_RESET_REG_SUP) && gas_present(&p->reset_reg);
	}

	uint64_t dsdt = 0;
	if (len >= FADT_X_DSDT + 8)
		memcpy(&dsdt, b + FADT_X_DSDT, 8);
	if (!dsdt)
		dsdt = le32(b + FADT_DSDT);
	const struct acpi_header *d = check(dsdt, "DSDT");
	if (d)
		p->s5_slp_typ = dsdt_s5(d);
	return true;
}

bool acpi_gas_write(const struct acpi_gas *g, uint64_t v)
{
	unsigned bytes = g->access_size ? 1u << (g->access_size - 1) : g->bit_width / 8u;
	v <<= g->bit_offset;
	if (g->space_id == ACPI_SPACE_IO) {
		uint16_t port = (uint16_t)g->address;
		switch (bytes) {
		case 1: outb(port, (uint8_t)v); return true;
		case 2: outw(port, (uint16_t)v); return true;
		case 4: outl(port, (uint32_t)v); return true;
		default: return false;
		}
	}
	if (g->space_id != ACPI_SPACE_MEMORY || !paging_map_identity(g->address, bytes))
		return false;
	switch (bytes) {
	case 1: *(volatile uint8_t *)g->address = (uint8_t)v; return true;
	case 2: *(volatile uint16_t *)g->address = (uint16_t)v; return true;
	case 4: *(volatile uint32_t *)g->address = (uint32_t)v; return true;
	case 8: *(volatile uint64_t *)g->address = v; return true;
	default: return false;
	}
}
