#include "guest.h"

struct ap_params { /* trampoline.S, ap_trampoline_params */
	uint64_t cr3;
	uint64_t stack;
	uint64_t entry;
	uint64_t arg;
};

extern char ap_trampoline[], ap_trampoline_params[], ap_trampoline_end[];

static uint8_t ap_stacks[SMP_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16), section(".noinit")));
static ap_func ap_fn;
static volatile unsigned ap_arrived; /* the last AP to reach C */

static void ap_entry(uint64_t cpu)
{
	idt_load();
	lapic_init();
	ap_func fn = ap_fn;
	__atomic_store_n(&ap_arrived, (unsigned)cpu, __ATOMIC_RELEASE);
	fn((unsigned)cpu);
	halt_forever();
}

bool smp_start_ap(uint32_t apic_id, unsigned cpu, ap_func fn)
{
	if (cpu == 0 || cpu >= SMP_MAX_CPUS)
		return false;
	uint8_t *base = (uint8_t *)TRAMPOLINE_BASE;
	memcpy(base, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	struct ap_params *p = (void *)(base + (ap_trampoline_params - ap_trampoline));
	p->cr3 = read_cr3();
	p->stack = (uint64_t)&ap_stacks[cpu][AP_STACK_SIZE];
	p->entry = (uint64_t)ap_entry;
	p->arg = cpu;
	ap_fn = fn;
	__atomic_store_n(&ap_arrived, 0, __ATOMIC_SEQ_CST);

	lapic_send_init(apic_id);
	pit_delay_us(10000);
	lapic_send_sipi(apic_id, TRAMPOLINE_BASE >> 12);
	pit_delay_us(200);
	lapic_send_sipi(apic_id, TRAMPOLINE_BASE >> 12);

	for (int i = 0; i < 1000; i++) { /* up to 1 s */
		if (__atomic_load_n(&ap_arrived, __ATOMIC_ACQUIRE) == cpu)
			return true;
		pit_delay_us(1000);
	}
	return false;
}
