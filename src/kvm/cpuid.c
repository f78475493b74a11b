/* CPUID for kvm vCPUs: what KVM supports, with a topology of one socket of
 * ncpus single-threaded cores and per-vCPU APIC ids. */
#include "kvm_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 1024

static bool has_entry(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return true;
	return false;
}

/* The topology leaves need their SMT, core and terminating subleaves even
 * where the host reports only subleaf 0; fix_entry fills them in. The
 * caller's array has room for 4 more entries. */
static void add_topology_subleaves(struct kvm_cpuid2 *c)
{
	static const uint32_t leaves[] = { 0xb, 0x1f };

	for (size_t l = 0; l < ARRAY_SIZE(leaves); l++) {
		if (!has_entry(c, leaves[l], 0))
			continue;
		for (uint32_t index = 1; index <= 2; index++)
			if (!has_entry(c, leaves[l], index))
				c->entries[c->nent++] = (struct kvm_cpuid_entry2){
					.function = leaves[l], .index = index,
					.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
				};
	}
}

int kvm_cpuid_load(struct kvm_vm *vm)
{
	for (unsigned n = 128; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (n + 4) * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			add_topology_subleaves(c);
			vm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return -errno;
	}
	return -E2BIG;
}

static unsigned order(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

static void fix_entry(struct kvm_cpuid_entry2 *e, unsigned index, unsigned ncpus)
{
	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x0000ffff) | (ncpus << 16) | (index << 24);
		if (ncpus > 1)
			e->edx |= 1u << 28; /* HTT: more than one logical CPU */
		e->ecx |= 1u << 31;         /* hypervisor present */
		break;
	case 4: {
		/* Cores per package - 1 in 31:26; caches shared by all above L2. */
		unsigned level = (e->eax >> 5) & 7;
		unsigned sharing = level >= 3 ? ncpus - 1 : 0;
		e->eax = (e->eax & 0x3ff) | (sharing << 14) | ((ncpus - 1) << 26);
		break;
	}
	case 6:
		e->ecx &= ~(1u << 3); /* no energy-performance bias MSR */
		break;
	case 0xa:
		e->eax = e->ebx = e->ecx = e->edx = 0; /* no PMU */
		break;
	case 0xb:
	case 0x1f:
		/* Level 0: SMT, one thread per core. Level 1: cores. */
		e->edx = index;
		if (e->index == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx = 0 | (1 << 8);
		} else if (e->index == 1) {
			e->eax = order(ncpus);
			e->ebx = ncpus;
			e->ecx = 1 | (2 << 8);
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index;
		}
		break;
	}
}

int kvm_cpuid_setup(struct kvm_vm *vm, int vcpu_fd, unsigned index, unsigned ncpus)
{
	size_t size = sizeof(*vm->cpuid) + vm->cpuid->nent * sizeof(vm->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	int err = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, vm->cpuid, size);
	for (unsigned i = 0; i < c->nent; i++)
		fix_entry(&c->entries[i], index, ncpus);
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0)
		err = -errno;
	free(c);
	return err;
}
