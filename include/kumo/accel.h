/* The engine interface: what the machine asks of kvm or emu. The machine
 * (memory, boot, buses, devices) never calls an engine's internals. */
#ifndef KUMO_ACCEL_H
#define KUMO_ACCEL_H

#include "kumo/util.h"

struct machine;
struct vcpu;
struct x86_cpu_state;

struct accel_ops {
	const char *name;
	/* Create the VM: interrupt controllers, timers, guest memory mapped. */
	int (*init)(struct machine *m) WUR;
	/* Create vCPU v->index; the boot vCPU is runnable, the others wait
	 * for INIT/SIPI. Called from the machine thread before any vCPU runs. */
	int (*vcpu_init)(struct machine *m, struct vcpu *v) WUR;
	int (*vcpu_set_state)(struct vcpu *v, const struct x86_cpu_state *s) WUR;
	int (*vcpu_get_state)(struct vcpu *v, struct x86_cpu_state *s) WUR;
	/* Run on the vCPU's own thread until machine_exiting(); dispatches
	 * port and MMIO accesses to the machine's buses. 0 or -errno. */
	int (*vcpu_run)(struct vcpu *v) WUR;
	/* From any thread: make vcpu_run return soon. */
	void (*vcpu_kick)(struct vcpu *v);
	/* Drive an interrupt line (GSI) of the interrupt controllers. */
	int (*irq_line)(struct machine *m, unsigned gsi, int level) WUR;
	/* Signal eventfd fd on guest writes of len bytes to addr (port or
	 * MMIO) without leaving the engine's fast path; assign=false removes.
	 * -ENOTSUP where the engine has no such path (then writes reach the
	 * bus as usual). */
	int (*ioeventfd)(struct machine *m, uint64_t addr, unsigned len, bool pio,
			 int fd, bool assign) WUR;
	/* MSI: deliver the message (address, data as the guest programmed
	 * them) now; from any thread. */
	int (*msi_send)(struct machine *m, uint64_t addr, uint32_t data) WUR;
	/* irqfd: from now on a write to efd delivers (addr, data) without
	 * kumo. First call with *route == ACCEL_NO_ROUTE allocates a route;
	 * later calls update it; assign=false removes it. -ENOTSUP where the
	 * engine has no such path (then kumo calls msi_send). */
	int (*msi_irqfd)(struct machine *m, int efd, uint64_t addr, uint32_t data,
			 unsigned *route, bool assign) WUR;
	/* Dirty-page tracking of guest RAM (for migration): on/off, and fetch
	 * and clear the bitmap (one bit per 4 KiB page of region i). */
	int (*dirty_log_enable)(struct machine *m, bool on) WUR;
	int (*dirty_log_get)(struct machine *m, unsigned region, uint64_t *bitmap) WUR;
	void (*vcpu_destroy)(struct vcpu *v);
	void (*destroy)(struct machine *m);
};

#define ACCEL_NO_ROUTE (~0u)

enum accel_kind { ACCEL_AUTO, ACCEL_KVM, ACCEL_EMU };

struct accel_choice {
	const struct accel_ops *ops;
	const char *why; /* one line: why this engine, shown on the first line */
};

/* "auto", "kvm", "emu" → enum; -EINVAL for anything else. */
int accel_parse(const char *s, enum accel_kind *out) WUR;
/* Pick an engine. On failure *err_msg says why in one line. */
int accel_select(enum accel_kind kind, struct accel_choice *out, const char **err_msg) WUR;

/* What the host's /dev/kvm is. */
enum kvm_backing { KVM_ABSENT, KVM_HARDWARE, KVM_PVM, KVM_UNKNOWN };
enum kvm_backing kvm_probe_backing(void);

extern const struct accel_ops kvm_accel_ops;
/* Only in builds with all of src/emu's parts (KUMO_HAVE_EMU). */
extern const struct accel_ops emu_accel_ops;

#endif
