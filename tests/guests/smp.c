/*
 * smp: every CPU in the MADT comes up through INIT-SIPI-SIPI, counts
 * itself in and says so. PASS when the count matches the MADT.
 */
#include "guest.h"

GUEST("smp");

static spinlock_t print_lock;
static volatile int online;
static uint32_t apic_ids[SMP_MAX_CPUS];

static void cpu_online(unsigned cpu)
{
	__atomic_fetch_add(&online, 1, __ATOMIC_SEQ_CST);
	spin_lock(&print_lock);
	kprintf("smp: cpu %u (apic id %u) online\n", cpu, lapic_id());
	spin_unlock(&print_lock);
}

void guest_main(void)
{
	int ncpus = acpi_cpu_apic_ids(apic_ids, SMP_MAX_CPUS);
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

	spin_lock(&print_lock);
	kprintf("smp: %d of %d cpus online\n", n, ncpus);
	if (n != ncpus)
		fail("%d of %d cpus came online", n, ncpus);
	if (cpu != (unsigned)ncpus)
		fail("the BSP (apic id %u) is not in the MADT", bsp);
	pass();
}
