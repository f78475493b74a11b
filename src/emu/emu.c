/* The emu engine behind struct accel_ops: a thread per vCPU steps the
 * software CPU in batches; between batches it runs the timers, takes
 * INIT/SIPI and delivers interrupts. The PIC, IOAPIC, LAPICs and PIT are
 * emu's own (irqchip.h), under one lock, reached through the machine's
 * port and MMIO buses like any device. HLT sleeps on a condition variable
 * until an interrupt or the next timer deadline. */
#include "exec.h"
#include "flags.h"
#include "icache.h"
#include "irqchip.h"
#include "jit.h"

#include "kumo/accel.h"
#include "kumo/acpi.h"
#include "kumo/log.h"
#include "kumo/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 100000              /* instructions between looks at timers and interrupts */
/* Quiet batches in a row (no interrupt, exception, kick or halt) that
 * go on in the decoded-block cache's session of the one before
 * (struct emu_cpu.keep_session): code that a device or another vCPU
 * wrote without anything serialising here is seen within
 * (SESSION_BATCHES + 1) * BATCH instructions. */
#define SESSION_BATCHES 1

enum vcpu_state { VCPU_RUN, VCPU_HALT, VCPU_WAIT_SIPI };

struct emu_vcpu {
	struct emu_cpu cpu;
	struct emu_lapic *lapic;
	enum vcpu_state state;
	atomic_bool kicked;
	uint64_t insns;               /* instructions run (a statistic) */
	unsigned quiet;               /* quiet batches since the last new session */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

struct emu_vm {
	struct machine *m;
	pthread_mutex_t lock;         /* the interrupt controllers and timers */
	struct emu_pic *pic;
	struct emu_ioapic *ioapic;
	struct emu_pit *pit;
	struct emu_apic_bus bus;
	struct emu_lapic **lapics;
	struct emu_vcpu **vcpus;
	unsigned n;
};

static __thread struct emu_vcpu *current; /* the vCPU this thread runs, for LAPIC MMIO */

static void kick_vcpu(struct emu_vcpu *v)
{
	if (!v)
		return;
	atomic_store(&v->kicked, true);
	pthread_mutex_lock(&v->mu);
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

static void bus_kick(void *opaque, unsigned cpu)
{
	struct emu_vm *vm = opaque;
	if (cpu < vm->n)
		kick_vcpu(vm->vcpus[cpu]);
}

static void bus_eoi(void *opaque, uint8_t vector)
{
	struct emu_vm *vm = opaque;
	emu_ioapic_eoi(vm->ioapic, vector); /* called with vm->lock held */
}

static void pic_intr(void *opaque, bool level)
{
	struct emu_vm *vm = opaque;
	if (level && vm->n)
		kick_vcpu(vm->vcpus[0]);
}

static void pit_irq0(void *opaque, bool level)
{
	struct emu_vm *vm = opaque;
	emu_pic_set_irq(vm->pic, 0, level);
	emu_ioapic_set_irq(vm->ioapic, 0, level);
}

/* ---- devices on the machine's buses ---- */

static void pic_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct emu_vm *vm = opaque;
	uint16_t port = (uint16_t)offset;

	(void)len;
	pthread_mutex_lock(&vm->lock);
	if (is_write)
		emu_pic_write(vm->pic, port, data[0]);
	else
		data[0] = emu_pic_read(vm->pic, port);
	pthread_mutex_unlock(&vm->lock);
}

static void pit_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct emu_vm *vm = opaque;
	uint16_t port = (uint16_t)offset;

	(void)len;
	pthread_mutex_lock(&vm->lock);
	if (is_write)
		emu_pit_write(vm->pit, port, data[0], now_ns());
	else
		data[0] = emu_pit_read(vm->pit, port, now_ns());
	pthread_mutex_unlock(&vm->lock);
	if (is_write && vm->n)
		kick_vcpu(vm->vcpus[0]); /* the BSP runs the PIT: a new deadline */
}

/* The PIC and PIT sit at scattered ports: one range each, offset = port. */
static void pic_port(void *o, uint64_t off, uint8_t *d, unsigned l, bool w, uint16_t base)
{
	pic_io(o, base + off, d, l, w);
}
static void pic_master(void *o, uint64_t off, uint8_t *d, unsigned l, bool w) { pic_port(o, off, d, l, w, 0x20); }
static void pic_slave(void *o, uint64_t off, uint8_t *d, unsigned l, bool w) { pic_port(o, off, d, l, w, 0xa0); }
static void pic_elcr(void *o, uint64_t off, uint8_t *d, unsigned l, bool w) { pic_port(o, off, d, l, w, 0x4d0); }
static void pit_ch(void *o, uint64_t off, uint8_t *d, unsigned l, bool w) { pit_io(o, 0x40 + off, d, l, w); }
static void pit_portb(void *o, uint64_t off, uint8_t *d, unsigned l, bool w) { pit_io(o, 0x61 + off, d, l, w); }

static void u32_io(uint8_t *data, unsigned len, uint32_t *v, bool is_write)
{
	if (is_write) {
		*v = 0;
		memcpy(v, data, MIN(len, 4u));
	} else {
		memset(data, 0, len);
		memcpy(data, v, MIN(len, 4u));
	}
}

static void ioapic_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct emu_vm *vm = opaque;
	uint32_t v = 0;

	u32_io(data, len, &v, is_write);
	pthread_mutex_lock(&vm->lock);
	if (is_write)
		emu_ioapic_write(vm->ioapic, offset, v);
	else
		v = emu_ioapic_read(vm->ioapic, offset);
	pthread_mutex_unlock(&vm->lock);
	if (!is_write)
		u32_io(data, len, &v, false);
}

static void lapic_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct emu_vm *vm = opaque;
	uint32_t v = 0;

	if (!current) {
		memset(data, 0xff, len);
		return;
	}
	u32_io(data, len, &v, is_write);
	pthread_mutex_lock(&vm->lock);
	if (is_write)
		emu_lapic_write(current->lapic, offset, v, now_ns());
	else
		v = emu_lapic_read(current->lapic, offset, now_ns());
	pthread_mutex_unlock(&vm->lock);
	if (!is_write)
		u32_io(data, len, &v, false);
}

/* ---- accel_ops ---- */

static void emu_destroy(struct machine *m)
{
	struct emu_vm *vm = m->engine;

	if (!vm)
		return;
	for (unsigned i = 0; i < vm->n; i++)
		if (vm->lapics[i])
			emu_lapic_destroy(vm->lapics[i]);
	if (vm->pic)
		emu_pic_destroy(vm->pic);
	if (vm->ioapic)
		emu_ioapic_destroy(vm->ioapic);
	if (vm->pit)
		emu_pit_destroy(vm->pit);
	free(vm->lapics);
	free(vm->vcpus);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
	m->engine = NULL;
}

static int emu_init(struct machine *m)
{
	struct emu_vm *vm = calloc(1, sizeof(*vm));
	struct emu_pic_ops pic_ops;
	struct emu_pit_ops pit_ops;
	int err;

	if (!vm)
		return -ENOMEM;
	m->engine = vm;
	vm->m = m;
	vm->n = m->ncpus;
	pthread_mutex_init(&vm->lock, NULL);
	vm->lapics = calloc(vm->n, sizeof(*vm->lapics));
	vm->vcpus = calloc(vm->n, sizeof(*vm->vcpus));
	if (!vm->lapics || !vm->vcpus)
		return -ENOMEM;
	vm->bus = (struct emu_apic_bus){ .n = vm->n, .lapics = vm->lapics, .kick = bus_kick,
					 .eoi = bus_eoi, .opaque = vm };
	pic_ops = (struct emu_pic_ops){ .intr = pic_intr, .opaque = vm };
	pit_ops = (struct emu_pit_ops){ .irq0 = pit_irq0, .opaque = vm };
	/* One vCPU: only devices write guest memory behind it, and they say
	 * when they wrote where it may hold decoded code (icache.h). */
	if (vm->n == 1 && (err = guest_mem_track_code(&m->mem)))
		return err;
	vm->pic = emu_pic_create(&pic_ops);
	vm->ioapic = emu_ioapic_create(&vm->bus, vm->n);
	vm->pit = emu_pit_create(&pit_ops, now_ns());
	if (!vm->pic || !vm->ioapic || !vm->pit)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->n; i++)
		if (!(vm->lapics[i] = emu_lapic_create(&vm->bus, i, 1000000000ULL)))
			return -ENOMEM;
	/* What firmware leaves (and KVM's in-kernel LAPIC does at reset): the
	 * boot CPU in virtual-wire mode, LINT0 taking the PIC's ExtINT and
	 * LINT1 as NMI, so a guest that enables its LAPIC still gets 8259
	 * interrupts. */
	emu_lapic_write(vm->lapics[0], 0x350, 0x700, now_ns());
	emu_lapic_write(vm->lapics[0], 0x360, 0x400, now_ns());
	if ((err = io_bus_register(&m->pio, 0x20, 2, pic_master, vm, "pic")) ||
	    (err = io_bus_register(&m->pio, 0xa0, 2, pic_slave, vm, "pic")) ||
	    (err = io_bus_register(&m->pio, 0x4d0, 2, pic_elcr, vm, "elcr")) ||
	    (err = io_bus_register(&m->pio, 0x40, 4, pit_ch, vm, "pit")) ||
	    (err = io_bus_register(&m->pio, 0x61, 1, pit_portb, vm, "port-b")) ||
	    (err = io_bus_register(&m->mmio, IOAPIC_GPA, 0x1000, ioapic_io, vm, "ioapic")) ||
	    (err = io_bus_register(&m->mmio, LAPIC_GPA, 0x1000, lapic_io, vm, "lapic")))
		return err;
	return 0;
}

static int emu_vcpu_init(struct machine *m, struct vcpu *v)
{
	struct emu_vm *vm = m->engine;
	struct emu_vcpu *ev = aligned_alloc(64, ALIGN_UP(sizeof(*ev), 64));

	if (!ev)
		return -ENOMEM;
	memset(ev, 0, sizeof(*ev));
	v->engine = ev;
	vm->vcpus[v->index] = ev;
	ev->lapic = vm->lapics[v->index];
	ev->cpu.mem = &m->mem;
	ev->cpu.machine = m;
	ev->cpu.lapic = ev->lapic;
	ev->cpu.index = v->index;
	ev->cpu.ncpus = m->ncpus;
	pthread_mutex_init(&ev->mu, NULL);
	{
		/* deadlines are monotonic (now_ns); so is the wait */
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ev->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	emu_cpu_reset(&ev->cpu);
	ev->state = v->index == 0 ? VCPU_RUN : VCPU_WAIT_SIPI;
	return 0;
}

static void emu_vcpu_destroy(struct vcpu *v)
{
	struct emu_vcpu *ev = v->engine;

	if (!ev)
		return;
	pthread_mutex_destroy(&ev->mu);
	pthread_cond_destroy(&ev->cv);
	free(ev);
	v->engine = NULL;
}

static const unsigned seg_order[6] = { SR_CS, SR_DS, SR_ES, SR_FS, SR_GS, SR_SS };

static int emu_vcpu_set_state(struct vcpu *v, const struct x86_cpu_state *s)
{
	struct emu_cpu *cpu = &((struct emu_vcpu *)v->engine)->cpu;
	const struct x86_seg *segs[6] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss };

	memcpy(cpu->gpr, s->gpr, sizeof(cpu->gpr));
	cpu->rip = s->rip;
	emu_flags_set(cpu, s->rflags);
	for (unsigned i = 0; i < 6; i++)
		cpu->seg[seg_order[i]] = *segs[i];
	cpu->tr = s->tr;
	cpu->ldt = s->ldt;
	cpu->gdt = s->gdt;
	cpu->idt = s->idt;
	cpu->cr0 = s->cr0;
	cpu->cr2 = s->cr2;
	cpu->cr3 = s->cr3;
	cpu->cr4 = s->cr4;
	cpu->efer = s->efer;
	emu_cpu_update_mode(cpu);
	emu_tlb_flush(cpu, true);
	return 0;
}

static int emu_vcpu_get_state(struct vcpu *v, struct x86_cpu_state *s)
{
	struct emu_cpu *cpu = &((struct emu_vcpu *)v->engine)->cpu;
	struct x86_seg *segs[6] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss };

	memset(s, 0, sizeof(*s));
	memcpy(s->gpr, cpu->gpr, sizeof(s->gpr));
	s->rip = cpu->rip;
	s->rflags = emu_flags_get(cpu);
	for (unsigned i = 0; i < 6; i++)
		*segs[i] = cpu->seg[seg_order[i]];
	s->tr = cpu->tr;
	s->ldt = cpu->ldt;
	s->gdt = cpu->gdt;
	s->idt = cpu->idt;
	s->cr0 = cpu->cr0;
	s->cr2 = cpu->cr2;
	s->cr3 = cpu->cr3;
	s->cr4 = cpu->cr4;
	s->efer = cpu->efer;
	return 0;
}

/* Sleeps until kicked or until deadline_ns (monotonic). */
static void wait_for(struct emu_vcpu *ev, uint64_t deadline_ns)
{
	pthread_mutex_lock(&ev->mu);
	if (!atomic_load(&ev->kicked)) {
		/* kicks set the flag before signalling under mu: none is lost */
		if (deadline_ns == EMU_NO_DEADLINE) {
			pthread_cond_wait(&ev->cv, &ev->mu);
		} else {
			struct timespec ts = {
				.tv_sec = deadline_ns / 1000000000ULL,
				.tv_nsec = deadline_ns % 1000000000ULL,
			};
			pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
		}
	}
	atomic_store(&ev->kicked, false);
	pthread_mutex_unlock(&ev->mu);
}

/* Timers, INIT/SIPI and interrupts between batches. Returns the next timer
 * deadline; *deliver is the vector to deliver, or -1. */
static uint64_t service(struct emu_vm *vm, struct emu_vcpu *ev, unsigned index, int *deliver)
{
	struct emu_cpu *cpu = &ev->cpu;
	uint64_t now = now_ns(), deadline;
	int sipi;

	*deliver = -1;
	pthread_mutex_lock(&vm->lock);
	deadline = emu_lapic_tick(ev->lapic, now);
	if (index == 0)
		deadline = MIN(deadline, emu_pit_tick(vm->pit, now));
	if (emu_lapic_take_init(ev->lapic)) {
		emu_cpu_reset(cpu);
		emu_lapic_reset(ev->lapic);
		ev->state = VCPU_WAIT_SIPI;
	}
	if (ev->state == VCPU_WAIT_SIPI && (sipi = emu_lapic_take_sipi(ev->lapic)) >= 0) {
		cpu->seg[SR_CS].sel = sipi << 8;
		cpu->seg[SR_CS].base = (uint64_t)sipi << 12;
		cpu->rip = 0;
		ev->state = VCPU_RUN;
	}
	/* NMI: not masked by IF; blocked from its delivery until the next IRET */
	if (ev->state != VCPU_WAIT_SIPI && !cpu->nmi_blocked && emu_lapic_take_nmi(ev->lapic)) {
		cpu->nmi_blocked = true;
		*deliver = EXC_NMI;
	} else if (ev->state != VCPU_WAIT_SIPI && (cpu->rflags & FL_IF) && !cpu->interrupt_shadow) {
		int v = emu_lapic_pending(ev->lapic);
		if (v >= 0) {
			emu_lapic_ack(ev->lapic, v);
			*deliver = v;
		} else if (index == 0 && emu_lapic_accepts_extint(ev->lapic) && emu_pic_intr(vm->pic)) {
			*deliver = emu_pic_ack(vm->pic);
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return deadline;
}

static int emu_vcpu_run(struct vcpu *v)
{
	struct emu_vm *vm = v->m->engine;
	struct emu_vcpu *ev = v->engine;
	struct emu_cpu *cpu = &ev->cpu;

	current = ev;
	while (!machine_exiting(v->m)) {
		int vector;
		unsigned quiet;
		uint64_t deadline;

		atomic_store(&ev->kicked, false); /* what service() sees is handled below */
		deadline = service(vm, ev, v->index, &vector);

		if (vector >= 0) {
			if (ev->state == VCPU_HALT)
				ev->state = VCPU_RUN;
			if (emu_deliver_interrupt(cpu, vector)) {
				machine_request_exit(v->m, EXIT_RESET); /* triple fault */
				break;
			}
		}
		if (ev->state != VCPU_RUN) {
			wait_for(ev, deadline);
			continue;
		}
		cpu->stop = &ev->kicked; /* ends emu_run between blocks */
		/* the last batch ran whole and nothing came in since */
		quiet = vector < 0 && ev->quiet <= SESSION_BATCHES ? ev->quiet : 0;
		cpu->keep_session = quiet != 0;
		ev->quiet = 0; /* unless this one runs whole, without a kick */
		for (unsigned i = 0, ran; i < BATCH && !atomic_load_explicit(&ev->kicked, memory_order_relaxed); i += ran) {
			int st = emu_run(cpu, BATCH - i, &ran);

			ev->insns += ran;
			if (st == EMU_OK) {
				if (i + ran >= BATCH)
					ev->quiet = quiet + 1;
				continue;
			}
			quiet = 0;
			if (st == EMU_HALT) {
				ev->state = VCPU_HALT;
				break;
			}
			if (st == EMU_FAULT && emu_deliver_exception(cpu) == EMU_OK)
				continue;
			log_info("vCPU %u: triple fault at rip 0x%llx (exception %u)", v->index,
				 (unsigned long long)cpu->rip, cpu->exc.vector);
			machine_request_exit(v->m, EXIT_RESET);
			break;
		}
	}
	current = NULL;
	if (emu_jit_on())
		log_info("vCPU %u: %llu instructions, %.1f%% of them in translated code, "
			 "%llu jumps between linked blocks", v->index, (unsigned long long)ev->insns,
			 ev->insns ? 100.0 * (double)cpu->jit_insns / (double)ev->insns : 0.0,
			 (unsigned long long)cpu->jit_hops);
	if (emu_icache_tls)
		log_info("vCPU %u: %llu blocks decoded, %llu translated, cache emptied %llu times",
			 v->index, (unsigned long long)emu_icache_tls->builds,
			 (unsigned long long)emu_icache_tls->translations,
			 (unsigned long long)emu_icache_tls->flushes);
	return 0;
}

static void emu_vcpu_kick(struct vcpu *v)
{
	kick_vcpu(v->engine);
}

static int emu_irq_line(struct machine *m, unsigned gsi, int level)
{
	struct emu_vm *vm = m->engine;

	if (gsi >= EMU_IOAPIC_PINS)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (gsi < 16)
		emu_pic_set_irq(vm->pic, gsi, level);
	emu_ioapic_set_irq(vm->ioapic, gsi, level);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static int emu_ioeventfd(struct machine *m, uint64_t addr, unsigned len, bool pio, int fd, bool assign)
{
	(void)m, (void)addr, (void)len, (void)pio, (void)fd, (void)assign;
	return -ENOTSUP; /* every write reaches the bus anyway */
}

/* An MSI is an APIC bus message (Intel SDM 10.11): address 0xfeeXXXXX
 * carries the destination, data the vector and delivery mode. */
static int emu_msi_send(struct machine *m, uint64_t addr, uint32_t data)
{
	struct emu_vm *vm = m->engine;
	struct emu_apic_msg msg = {
		.vector = data & 0xff,
		.delivery = (data >> 8) & 7,
		.level = (data >> 15) & 1,
		.logical = (addr >> 2) & 1,
		.dest = (addr >> 12) & 0xff,
	};

	if ((addr >> 20) != 0xfee)
		return -EINVAL; /* not an interrupt: a DMA write we do not do */
	if (msg.delivery == EMU_DM_SIPI || msg.delivery == EMU_DM_INIT || msg.delivery == 3)
		return -EINVAL;
	msg.level = false; /* MSIs are edges: nothing to EOI at an IOAPIC */
	pthread_mutex_lock(&vm->lock);
	emu_apic_bus_send(&vm->bus, &msg);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static int emu_msi_irqfd(struct machine *m, int efd, uint64_t addr, uint32_t data,
			 unsigned *route, bool assign)
{
	(void)m, (void)efd, (void)addr, (void)data, (void)route, (void)assign;
	return -ENOTSUP; /* msi_send is as direct as it gets here */
}

static int emu_dirty_log_enable(struct machine *m, bool on)
{
	(void)m, (void)on;
	return -ENOTSUP; /* comes with migration on emu */
}

static int emu_dirty_log_get(struct machine *m, unsigned region, uint64_t *bitmap)
{
	(void)m, (void)region, (void)bitmap;
	return -ENOTSUP;
}

const struct accel_ops emu_accel_ops = {
	.name = "emu",
	.init = emu_init,
	.vcpu_init = emu_vcpu_init,
	.vcpu_set_state = emu_vcpu_set_state,
	.vcpu_get_state = emu_vcpu_get_state,
	.vcpu_run = emu_vcpu_run,
	.vcpu_kick = emu_vcpu_kick,
	.irq_line = emu_irq_line,
	.ioeventfd = emu_ioeventfd,
	.msi_send = emu_msi_send,
	.msi_irqfd = emu_msi_irqfd,
	.dirty_log_enable = emu_dirty_log_enable,
	.dirty_log_get = emu_dirty_log_get,
	.vcpu_destroy = emu_vcpu_destroy,
	.destroy = emu_destroy,
};
