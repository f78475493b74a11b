/* Shared between the kvm engine's files. */
#ifndef KUMO_KVM_INTERNAL_H
#define KUMO_KVM_INTERNAL_H

#include <linux/kvm.h>

#include "kumo/util.h"

struct kvm_vm {
	int kvm_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, filtered per vCPU */
	bool dirty_log;
};

struct kvm_vcpu {
	int fd;
	struct kvm_run *run;
};

/* Topology and feature fix-ups of KVM's supported CPUID for one vCPU. */
int kvm_cpuid_setup(struct kvm_vm *vm, int vcpu_fd, unsigned index, unsigned ncpus) WUR;
int kvm_cpuid_load(struct kvm_vm *vm) WUR;

#endif
