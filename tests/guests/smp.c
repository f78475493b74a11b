/*
 * smp: every CPU in the MADT comes up through INIT-SIPI-SIPI, counts
 * itself in and says so. PASS when the count matches the MADT.
 * Each CPU also checks its CPUID topology against the machine: leaf 1
 * EBX[31:24] (initial APIC id) is its LAPIC id; when leaf 0xB exists, its
 * EDX (x2APIC id) is the LAPIC id too and subleaf 1 (the core level) EBX
 * counts the MADT's CPUs (kumo: one socket of single-threaded cores).
 */
#include "guest.h"

GUEST("smp");

static spinlock_t print_lock;
static volatile int online;
static uint32_t apic_ids[SMP_MAX_CPUS];

static int ncpus;
static volatile int reported; /* CPUs done printing and checking */
static volatile int cpuid_bad;

#define LEVEL_TYPE_CORE 2

/* Prints what this CPU's CPUID says about its place in the topology;
 * false on a mismatch with its LAPIC id or the MADT. Under print_lock. */
static bool check_cpuid(unsigned cpu, uint32_t apic_id)
{
	uint32_t r[4];
	bool ok = true;

	cpuid(0, 0, r);
	uint32_t max_leaf = r[0];
	cpuid(1, 0, r);
	uint32_t initial_id = r[1] >> 24;
	kprintf("smp: cpu %u: cpuid 1: initial apic id %u\n", cpu, initial_id);
	if (initial_id != apic_id) {
		kprintf("smp: cpu %u: cpuid 1 initial apic id %u, but the LAPIC id is %u\n", cpu,
			initial_id, apic_id);
		ok = false;
	}
	if (max_leaf < 0xb) {
		kprintf("smp: cpu %u: no cpuid leaf 0xb (max leaf 0x%x)\n", cpu, max_leaf);
		return ok;
	}
	uint32_t l0[4], l1[4];
	cpuid(0xb, 0, l0);
	cpuid(0xb, 1, l1);
	if (l0[1] == 0) { /* EBX 0 at subleaf 0: the leaf is not implemented */
		kprintf("smp: cpu %u: cpuid 0xb not implemented\n", cpu);
		return ok;
	}
	kprintf("smp: cpu %u: cpuid 0xb: x2apic id %u; level 0 type %u, %u logical; "
		"level 1 type %u, %u logical\n", cpu, l0[3], (l0[2] >> 8) & 0xff, l0[1] & 0xffff,
		(l1[2] >> 8) & 0xff, l1[1] & 0xffff);
	if (l0[3] != apic_id) {
		kprintf("smp: cpu %u: cpuid 0xb x2apic id %u, but the LAPIC id is %u\n", cpu, l0[3],
			apic_id);
		ok = false;
	}
	if (((l1[2] >> 8) & 0xff) != LEVEL_TYPE_CORE || (l1[1] & 0xffff) != (uint32_t)ncpus) {
		kprintf("smp: cpu %u: cpuid 0xb level 1 is type %u with %u logical CPUs, "
			"want a core level (type %u) with the MADT's %d\n", cpu,
			(l1[2] >> 8) & 0xff, l1[1] & 0xffff, LEVEL_TYPE_CORE, ncpus);
		ok = false;
	}
	return ok;
}

static void cpu_online(unsigned cpu)
{
	__atomic_fetch_add(&online, 1, __ATOMIC_SEQ_CST);
	spin_lock(&print_lock);
	uint32_t id = lapic_id();
	kprintf("smp: cpu %u (apic id %u) online\n", cpu, id);
	if (!check_cpuid(cpu, id))
		cpuid_bad++;
	reported++;
	spin_unlock(&print_lock);
}

void guest_main(void)
{
	ncpus = acpi_cpu_apic_ids(apic_ids, SMP_MAX_CPUS);
	if (ncpus <= 0)
		fail("no CPUs in the MADT");
	if (ncpus > SMP_MAX_CPUS)
		fail("%d CPUs, this guest handles %d", ncpus, SMP_MAX_CPUS);
	kprintf("smp: %d cpus in the MADT\n", ncpus);

	lapic_init();
	uint32_t bsp = lapic_id();
	cpu_online(0);

	unsigned cpu = 1;
	for (int i = 0; i < ncpus; i++) {
		if (apic_ids[i] == bsp)
			continue;
		if (!smp_start_ap(apic_ids[i], cpu, cpu_online)) {
			spin_lock(&print_lock);
			kprintf("smp: apic id %u did not start\n", apic_ids[i]);
			spin_unlock(&print_lock);
		}
		cpu++;
	}

	/* Each AP counts itself in before anything else; allow a second. */
	for (int ms = 0; ms < 1000 && __atomic_load_n(&online, __ATOMIC_SEQ_CST) < ncpus; ms++)
		pit_delay_us(1000);
	int n = __atomic_load_n(&online, __ATOMIC_SEQ_CST);
	/* And another second for those online to finish what they print. */
	for (int ms = 0; ms < 1000; ms++) {
		spin_lock(&print_lock);
		bool done = reported >= n;
		spin_unlock(&print_lock);
		if (done)
			break;
		pit_delay_us(1000);
	}

	spin_lock(&print_lock);
	kprintf("smp: %d of %d cpus online\n", n, ncpus);
	if (n != ncpus)
		fail("%d of %d cpus came online", n, ncpus);
	if (cpu != (unsigned)ncpus)
		fail("the BSP (apic id %u) is not in the MADT", bsp);
	if (cpuid_bad)
		fail("CPUID topology disagrees with the LAPIC ids or the MADT on %d cpus", cpuid_bad);
	pass();
}
