/* Shared between the kvm engine's files. */
#ifndef KUMO_KVM_INTERNAL_H
#define KUMO_KVM_INTERNAL_H

#include <pthread.h>
#include <linux/kvm.h>

#include "kumo/util.h"

#define KVM_MSI_GSI_BASE   24   /* after the IOAPIC's pins */
#define KVM_MAX_MSI_ROUTES 1000

struct kvm_vm {
	int kvm_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, filtered per vCPU */
	bool dirty_log;
	/* MSI routes (GSIs from KVM_MSI_GSI_BASE) for irqfds; the table KVM
	 * gets is the default irqchip routes plus these. */
	pthread_mutex_t routes_lock;
	struct kvm_msi_route {
		bool used;
		uint64_t addr;
		uint32_t data;
	} routes[KVM_MAX_MSI_ROUTES];
};

struct kvm_vcpu {
	int fd;
	struct kvm_run *run;
};

/* Topology and feature fix-ups of KVM's supported CPUID for one vCPU. */
int kvm_cpuid_setup(struct kvm_vm *vm, int vcpu_fd, unsigned index, unsigned ncpus) WUR;
int kvm_cpuid_load(struct kvm_vm *vm) WUR;

#endif
