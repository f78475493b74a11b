/* The kvm engine: vCPUs run in KVM_RUN; KVM's in-kernel LAPIC, IOAPIC,
 * PIC and PIT are the interrupt controllers and timers. */
#include "kvm_internal.h"

#include "kumo/accel.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/x86.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVM_TSS_GPA          0xfffbd000ULL /* three pages in the MMIO hole */
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ULL
#define SIG_KICK             SIGUSR1

static const char *kvm_device(void)
{
	const char *p = getenv("KUMO_KVM_DEVICE"); /* tests point it elsewhere */
	return p && *p ? p : "/dev/kvm";
}

static int set_slots(struct machine *m, struct kvm_vm *vm)
{
	for (unsigned i = 0; i < m->mem.nr_regions; i++) {
		const struct mem_region *r = &m->mem.regions[i];
		struct kvm_userspace_memory_region kr = {
			.slot = i,
			.flags = vm->dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
			return -errno;
	}
	return 0;
}

static void kvm_destroy(struct machine *m)
{
	struct kvm_vm *vm = m->engine;

	if (!vm)
		return;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->cpuid);
	pthread_mutex_destroy(&vm->routes_lock);
	free(vm);
	m->engine = NULL;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

static int kvm_init(struct machine *m)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	struct kvm_vm *vm = calloc(1, sizeof(*vm));
	struct sigaction sa = { .sa_handler = kick_handler };
	int err, max;

	if (!vm)
		return -ENOMEM;
	pthread_mutex_init(&vm->routes_lock, NULL);
	vm->vm_fd = -1;
	m->engine = vm;
	vm->kvm_fd = open(kvm_device(), O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return -errno;
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return -ENOTTY;
	max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && m->ncpus > (unsigned)max)
		return -E2BIG;
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return -ENOTTY;
	if ((err = kvm_cpuid_load(vm)))
		return err;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return -errno;
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
		return -errno;
	{
		uint64_t idmap = KVM_IDENTITY_MAP_GPA;
		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
			return -errno;
	}
	/* Memory before the irqchip: with an irqchip, installing a memory
	 * slot waits for an SRCU grace period (~5 ms here). */
	if ((err = set_slots(m, vm)))
		return err;
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_KICK, &sa, NULL) < 0)
		return -errno;
	return 0;
}

static int kvm_vcpu_init(struct machine *m, struct vcpu *v)
{
	struct kvm_vm *vm = m->engine;
	struct kvm_vcpu *kv = calloc(1, sizeof(*kv));
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	void *run;
	int err;

	if (!kv)
		return -ENOMEM;
	v->engine = kv;
	kv->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, v->index);
	if (kv->fd < 0)
		return -errno;
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, kv->fd, 0);
	if (run == MAP_FAILED)
		return -errno;
	kv->run = run;
	if ((err = kvm_cpuid_setup(vm, kv->fd, v->index, m->ncpus)))
		return err;
	if (ioctl(kv->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

static void kvm_vcpu_destroy(struct vcpu *v)
{
	struct kvm_vcpu *kv = v->engine;
	struct kvm_vm *vm = v->m->engine;

	if (!kv)
		return;
	if (kv->run)
		munmap(kv->run, vm->run_size);
	if (kv->fd >= 0)
		close(kv->fd);
	free(kv);
	v->engine = NULL;
}

static void seg_to_kvm(struct kvm_segment *k, const struct x86_seg *s)
{
	*k = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->sel, .type = s->type,
		.present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l,
		.g = s->g, .avl = s->avl, .unusable = s->unusable,
	};
}

static void seg_from_kvm(struct x86_seg *s, const struct kvm_segment *k)
{
	*s = (struct x86_seg){
		.base = k->base, .limit = k->limit, .sel = k->selector, .type = k->type,
		.present = k->present, .dpl = k->dpl, .db = k->db, .s = k->s, .l = k->l,
		.g = k->g, .avl = k->avl, .unusable = k->unusable,
	};
}

/* struct kvm_regs orders its registers rax rbx rcx rdx rsi rdi rsp rbp r8..r15. */
static const uint8_t kvm_gpr_order[X86_NR_GPRS] = {
	X86_RAX, X86_RBX, X86_RCX, X86_RDX, X86_RSI, X86_RDI, X86_RSP, X86_RBP,
	X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
};

static int kvm_vcpu_set_state(struct vcpu *v, const struct x86_cpu_state *s)
{
	struct kvm_vcpu *kv = v->engine;
	struct kvm_sregs sr;
	struct kvm_regs r = { .rip = s->rip, .rflags = s->rflags };
	__u64 *rp = &r.rax;

	if (ioctl(kv->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	seg_to_kvm(&sr.cs, &s->cs);
	seg_to_kvm(&sr.ds, &s->ds);
	seg_to_kvm(&sr.es, &s->es);
	seg_to_kvm(&sr.fs, &s->fs);
	seg_to_kvm(&sr.gs, &s->gs);
	seg_to_kvm(&sr.ss, &s->ss);
	seg_to_kvm(&sr.tr, &s->tr);
	seg_to_kvm(&sr.ldt, &s->ldt);
	sr.gdt = (struct kvm_dtable){ .base = s->gdt.base, .limit = s->gdt.limit };
	sr.idt = (struct kvm_dtable){ .base = s->idt.base, .limit = s->idt.limit };
	sr.cr0 = s->cr0;
	sr.cr2 = s->cr2;
	sr.cr3 = s->cr3;
	sr.cr4 = s->cr4;
	sr.cr8 = s->cr8;
	sr.efer = s->efer;
	if (ioctl(kv->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	for (unsigned i = 0; i < X86_NR_GPRS; i++)
		rp[i] = s->gpr[kvm_gpr_order[i]];
	if (ioctl(kv->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

static int kvm_vcpu_get_state(struct vcpu *v, struct x86_cpu_state *s)
{
	struct kvm_vcpu *kv = v->engine;
	struct kvm_sregs sr;
	struct kvm_regs r;
	const __u64 *rp = &r.rax;

	if (ioctl(kv->fd, KVM_GET_SREGS, &sr) < 0 || ioctl(kv->fd, KVM_GET_REGS, &r) < 0)
		return -errno;
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < X86_NR_GPRS; i++)
		s->gpr[kvm_gpr_order[i]] = rp[i];
	s->rip = r.rip;
	s->rflags = r.rflags;
	seg_from_kvm(&s->cs, &sr.cs);
	seg_from_kvm(&s->ds, &sr.ds);
	seg_from_kvm(&s->es, &sr.es);
	seg_from_kvm(&s->fs, &sr.fs);
	seg_from_kvm(&s->gs, &sr.gs);
	seg_from_kvm(&s->ss, &sr.ss);
	seg_from_kvm(&s->tr, &sr.tr);
	seg_from_kvm(&s->ldt, &sr.ldt);
	s->gdt = (struct x86_dtable){ sr.gdt.base, sr.gdt.limit };
	s->idt = (struct x86_dtable){ sr.idt.base, sr.idt.limit };
	s->cr0 = sr.cr0;
	s->cr2 = sr.cr2;
	s->cr3 = sr.cr3;
	s->cr4 = sr.cr4;
	s->cr8 = sr.cr8;
	s->efer = sr.efer;
	return 0;
}

static void handle_io(struct machine *m, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		machine_pio(m, run->io.port, data, run->io.size, out);
}

/* One KVM exit; 0 to go on, -errno to stop this vCPU with an error. */
static int handle_exit(struct vcpu *v, struct kvm_run *run)
{
	struct machine *m = v->m;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(m, run);
		return 0;
	case KVM_EXIT_MMIO:
		machine_mmio(m, run->mmio.phys_addr, run->mmio.data,
			     MIN(run->mmio.len, 8u), run->mmio.is_write);
		return 0;
	case KVM_EXIT_HLT:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_SHUTDOWN: /* triple fault: the machine resets */
		log_info("vCPU %u: triple fault, resetting", v->index);
		machine_request_exit(m, EXIT_RESET);
		return 0;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			machine_request_exit(m, EXIT_POWEROFF);
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			machine_request_exit(m, EXIT_RESET);
		else
			machine_request_exit(m, EXIT_FAILURE_KUMO);
		return 0;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)",
			  v->index, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return -EIO;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error("vCPU %u: KVM internal error (suberror %u)", v->index, run->internal.suberror);
		return -EIO;
	default:
		log_error("vCPU %u: unexpected KVM exit %u", v->index, run->exit_reason);
		return -EIO;
	}
}

static int kvm_vcpu_run(struct vcpu *v)
{
	struct kvm_vcpu *kv = v->engine;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (!machine_exiting(v->m)) {
		int err;

		if (ioctl(kv->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				kv->run->immediate_exit = 0;
				continue;
			}
			log_error("vCPU %u: KVM_RUN failed: %s", v->index, strerror(errno));
			return -errno;
		}
		if ((err = handle_exit(v, kv->run)))
			return err;
	}
	return 0;
}

static void kvm_vcpu_kick(struct vcpu *v)
{
	struct kvm_vcpu *kv = v->engine;

	if (!kv || !kv->run)
		return;
	kv->run->immediate_exit = 1;
	if (v->started)
		pthread_kill(v->thread, SIG_KICK);
}

static int kvm_irq_line(struct machine *m, unsigned gsi, int level)
{
	struct kvm_vm *vm = m->engine;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

static int kvm_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio,
			 int fd, bool assign)
{
	struct kvm_vm *vm = m->engine;
	struct kvm_ioeventfd io = {
		.addr = addr, .len = len, .fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int kvm_msi_send(struct machine *m, uint64_t addr, uint32_t data)
{
	struct kvm_vm *vm = m->engine;
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data,
	};

	/* 1: delivered, 0: blocked by the guest (e.g. masked LAPIC). */
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

/* routes_lock held: give KVM the whole table (KVM_SET_GSI_ROUTING replaces
 * it): the IOAPIC's 24 pins, the PICs' 16, then the MSI routes. */
static int push_routes(struct kvm_vm *vm)
{
	unsigned n = 0, max = 24 + 16 + KVM_MAX_MSI_ROUTES;
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
	int err = 0;

	if (!r)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi < 16)
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
								     KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
	}
	for (unsigned i = 0; i < KVM_MAX_MSI_ROUTES; i++)
		if (vm->routes[i].used)
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = KVM_MSI_GSI_BASE + i, .type = KVM_IRQ_ROUTING_MSI,
				.u.msi = { .address_lo = (uint32_t)vm->routes[i].addr,
					   .address_hi = (uint32_t)(vm->routes[i].addr >> 32),
					   .data = vm->routes[i].data },
			};
	r->nr = n;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
		err = -errno;
	free(r);
	return err;
}

static int kvm_msi_irqfd(struct machine *m, int efd, uint64_t addr, uint32_t data,
			 unsigned *route, bool assign)
{
	struct kvm_vm *vm = m->engine;
	struct kvm_irqfd irqfd = { .fd = (uint32_t)efd };
	unsigned i = *route;
	int err;

	pthread_mutex_lock(&vm->routes_lock);
	if (!assign) {
		if (i < KVM_MAX_MSI_ROUTES && vm->routes[i].used) {
			irqfd.gsi = KVM_MSI_GSI_BASE + i;
			irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
			err = ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
			vm->routes[i].used = false;
			*route = ACCEL_NO_ROUTE;
		} else {
			err = 0;
		}
		pthread_mutex_unlock(&vm->routes_lock);
		return err;
	}
	bool fresh = i >= KVM_MAX_MSI_ROUTES || !vm->routes[i].used;
	if (fresh) {
		for (i = 0; i < KVM_MAX_MSI_ROUTES && vm->routes[i].used; i++)
			;
		if (i == KVM_MAX_MSI_ROUTES) {
			pthread_mutex_unlock(&vm->routes_lock);
			return -ENOSPC;
		}
	}
	vm->routes[i] = (struct kvm_msi_route){ true, addr, data };
	err = push_routes(vm);
	if (!err && fresh) {
		irqfd.gsi = KVM_MSI_GSI_BASE + i;
		if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
			err = -errno;
	}
	if (err) {
		if (fresh)
			vm->routes[i].used = false;
	} else {
		*route = i;
	}
	pthread_mutex_unlock(&vm->routes_lock);
	return err;
}

static int kvm_dirty_log_enable(struct machine *m, bool on)
{
	struct kvm_vm *vm = m->engine;

	vm->dirty_log = on;
	return set_slots(m, vm);
}

static int kvm_dirty_log_get(struct machine *m, unsigned region, uint64_t *bitmap)
{
	struct kvm_vm *vm = m->engine;
	struct kvm_dirty_log log = { .slot = region, .dirty_bitmap = bitmap };

	if (region >= m->mem.nr_regions || !vm->dirty_log)
		return -EINVAL;
	return ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0 ? -errno : 0;
}

const struct accel_ops kvm_accel_ops = {
	.name = "kvm",
	.init = kvm_init,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_set_state = kvm_vcpu_set_state,
	.vcpu_get_state = kvm_vcpu_get_state,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.irq_line = kvm_irq_line,
	.ioeventfd = kvm_ioeventfd,
	.msi_send = kvm_msi_send,
	.msi_irqfd = kvm_msi_irqfd,
	.dirty_log_enable = kvm_dirty_log_enable,
	.dirty_log_get = kvm_dirty_log_get,
	.vcpu_destroy = kvm_vcpu_destroy,
	.destroy = kvm_destroy,
};
