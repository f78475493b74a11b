/* System instructions: segment loads through descriptor tables, far
 * transfers, GDTR/IDTR/LDTR/TR, control and debug registers, MSRs,
 * CPUID and the TSC. Everything a guest writes here is checked the way
 * the SDM says the CPU checks it, and violations raise the documented
 * exception; nothing a guest does reaches the host. */
#include "exec_internal.h"
#include "sse.h"
#include "flags.h"
#include "irqchip.h"

#include "kumo/memory.h"
#include "kumo/util.h"

#include <string.h>
#include <time.h>

#define EMU_TSC_HZ 1000000000ULL /* the guest TSC counts nanoseconds */

#define MSR_TSC            0x10
#define MSR_APIC_BASE      0x1b
#define MSR_MTRRCAP        0xfe
#define MSR_SYSENTER_CS    0x174
#define MSR_SYSENTER_ESP   0x175
#define MSR_SYSENTER_EIP   0x176
#define MSR_MISC_ENABLE    0x1a0
#define MSR_PAT            0x277
#define MSR_MTRR_DEF_TYPE  0x2ff
#define MSR_TSC_DEADLINE   0x6e0
#define MSR_EFER           0xc0000080
#define MSR_STAR           0xc0000081
#define MSR_LSTAR          0xc0000082
#define MSR_CSTAR          0xc0000083
#define MSR_SFMASK         0xc0000084
#define MSR_FS_BASE        0xc0000100
#define MSR_GS_BASE        0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX        0xc0000103
/* KVM's paravirtual clock (Documentation/virt/kvm/x86/msr.rst), which
 * emu offers as Linux's clocksource and TSC frequency source. */
/* AMD K8 "interrupt pending message": Linux reads it to see whether C1E
 * (which stops the LAPIC timer in idle) is on; here it never is. */
#define MSR_K8_INT_PENDING_MSG  0xc0010055
/* Machine check: the architecture with no error-reporting banks. */
#define MSR_MCG_CAP             0x179
#define MSR_MCG_STATUS          0x17a
#define MSR_KVM_WALL_CLOCK      0x11
#define MSR_KVM_SYSTEM_TIME     0x12
#define MSR_KVM_WALL_CLOCK_NEW  0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

#define EFER_SCE (1ULL << 0)
#define EFER_NXE (1ULL << 11)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_NW (1ULL << 29)
#define CR0_CD (1ULL << 30)
#define CR0_TS (1ULL << 3)
#define CR0_EM (1ULL << 2)
#define CR0_MP (1ULL << 1)
#define CR4_TSD (1ULL << 2)
#define CR4_PSE (1ULL << 4)
#define CR4_PGE (1ULL << 7)
/* what kumo's CPU implements: VME/PVI/DE/MCE/PCE/UMIP/LA57/VMXE/... are not */
#define CR4_SUPPORTED (CR4_TSD | CR4_PSE | (1ULL << 6) /* MCE */ | X86_CR4_PAE | CR4_PGE | (1ULL << 9) /* OSFXSR */ | \
		       (1ULL << 10) /* OSXMMEXCPT */)
#define CR0_SUPPORTED (X86_CR0_PE | CR0_MP | CR0_EM | CR0_TS | X86_CR0_ET | (1ULL << 5) /* NE */ | \
		       CR0_WP | CR0_AM | CR0_NW | CR0_CD | X86_CR0_PG)

static uint64_t guest_tsc(const struct emu_cpu *cpu)
{
	return now_ns() + cpu->msr.tsc_offset; /* 1 GHz: ns are ticks */
}

/* The kvmclock structures. The guest TSC counts nanoseconds, so the
 * time structure is constant: system time = TSC (tsc_timestamp 0,
 * system_time 0, multiplier 2^31 with shift 1 = x1), TSC-stable. */
struct pvclock_time {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
};
struct pvclock_wall {
	uint32_t version, sec, nsec;
};
#define PVCLOCK_TSC_STABLE 0x01

static void kvmclock_publish(struct emu_cpu *cpu)
{
	uint64_t v = cpu->msr.kvm_system_time;
	struct pvclock_time *t;

	if (!(v & 1) || !cpu->mem)
		return;
	/* An unusable address is ignored, as KVM does: the guest reads zeros. */
	t = gpa_ptr(cpu->mem, v & ~1ULL & ~3ULL, sizeof(*t));
	if (!t)
		return;
	emu_code_store(cpu, (v & ~3ULL) >> 12);
	emu_code_store(cpu, ((v & ~3ULL) + sizeof(*t) - 1) >> 12);
	*t = (struct pvclock_time){
		.version = 2,
		.tsc_timestamp = 0,
		.system_time = (uint64_t)-cpu->msr.tsc_offset, /* ns at TSC 0 */
		.tsc_to_system_mul = 0x80000000u,
		.tsc_shift = 1,
		.flags = PVCLOCK_TSC_STABLE,
	};
}

/* Wall-clock time when the guest's kvmclock read zero. */
static void kvmclock_wall(struct emu_cpu *cpu, uint64_t gpa)
{
	struct pvclock_wall *w = cpu->mem ? gpa_ptr(cpu->mem, gpa & ~3ULL, sizeof(*w)) : NULL;
	struct timespec rt;
	uint64_t boot;

	if (!w)
		return;
	emu_code_store(cpu, (gpa & ~3ULL) >> 12);
	emu_code_store(cpu, ((gpa & ~3ULL) + sizeof(*w) - 1) >> 12);
	clock_gettime(CLOCK_REALTIME, &rt);
	boot = (uint64_t)rt.tv_sec * 1000000000u + rt.tv_nsec - now_ns();
	*w = (struct pvclock_wall){ .version = 2, .sec = boot / 1000000000u,
				    .nsec = boot % 1000000000u };
}

static int gp(struct emu_cpu *cpu, uint32_t error)
{
	return emu_fault(cpu, EXC_GP, true, error);
}

/* ---- descriptors ---- */

static void desc_to_seg(uint64_t d, uint16_t sel, struct x86_seg *s)
{
	s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
	s->limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
	s->g = (d >> 55) & 1;
	if (s->g)
		s->limit = (s->limit << 12) | 0xfff;
	s->type = (d >> 40) & 0xf;
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
	s->unusable = 0;
	s->sel = sel;
}

/* Reads the 8-byte descriptor for sel (16 bytes for system descriptors in
 * long mode when wide). #GP(sel) outside the table. */
static int read_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *d, bool wide, uint64_t *addr)
{
	bool local = sel & 4;
	uint64_t base = local ? cpu->ldt.base : cpu->gdt.base;
	uint32_t limit = local ? cpu->ldt.limit : cpu->gdt.limit;
	unsigned index = sel & ~7u, len = wide ? 16 : 8;

	if ((local && (cpu->ldt.unusable || !cpu->ldt.present)) || index + len - 1 > limit)
		return gp(cpu, sel & 0xfffc);
	*addr = base + index;
	return emu_read_linear(cpu, *addr, d, len, ACC_READ | ACC_IMPLICIT);
}

static void set_accessed(struct emu_cpu *cpu, uint64_t addr, uint64_t d)
{
	uint8_t type = (d >> 40) & 0xff;

	if (!(type & 1)) {
		type |= 1;
		if (emu_write_linear(cpu, addr + 5, &type, 1, ACC_WRITE | ACC_IMPLICIT))
			cpu->exc = (struct emu_exception){ 0 }; /* a read-only GDT: leave it */
	}
}

int emu_load_seg(struct emu_cpu *cpu, unsigned sreg, uint16_t sel)
{
	struct x86_seg *s = &cpu->seg[sreg];
	uint64_t d[2], addr;
	unsigned rpl = sel & 3, dpl;
	bool code, readable, writable, conforming;
	int err;

	if (cpu->mode == MODE_REAL) {
		s->sel = sel;
		s->base = (uint64_t)sel << 4;
		return 0;
	}
	if (!(sel & ~3u)) {
		if (sreg == SR_SS && !(cpu->mode == MODE_LONG64 && cpu->cpl < 3 && rpl == cpu->cpl))
			return gp(cpu, 0);
		*s = (struct x86_seg){ .sel = sel, .unusable = 1, .dpl = sreg == SR_SS ? cpu->cpl : 0 };
		if (sreg == SR_SS)
			s->db = 1, s->present = 1, s->type = 3, s->s = 1;
		return 0;
	}
	if ((err = read_desc(cpu, sel, d, false, &addr)))
		return err;
	code = (d[0] >> 43) & 1;
	readable = !code || ((d[0] >> 41) & 1);
	writable = !code && ((d[0] >> 41) & 1);
	conforming = code && ((d[0] >> 42) & 1);
	dpl = (d[0] >> 45) & 3;
	if (!((d[0] >> 44) & 1))                     /* a system descriptor */
		return gp(cpu, sel & 0xfffc);
	if (sreg == SR_SS) {
		if (!writable || rpl != cpu->cpl || dpl != cpu->cpl)
			return gp(cpu, sel & 0xfffc);
		if (!((d[0] >> 47) & 1))
			return emu_fault(cpu, EXC_SS, true, sel & 0xfffc);
	} else {
		if (!readable)
			return gp(cpu, sel & 0xfffc);
		if (!conforming && dpl < MAX(cpu->cpl, rpl))
			return gp(cpu, sel & 0xfffc);
		if (!((d[0] >> 47) & 1))
			return emu_fault(cpu, EXC_NP, true, sel & 0xfffc);
	}
	set_accessed(cpu, addr, d[0]);
	desc_to_seg(d[0] | (1ULL << 40), sel, s);
	if (sreg == SR_SS)
		cpu->interrupt_shadow = true;
	return 0;
}

/* Loads CS for a far JMP/CALL/RET to the same privilege level. */
static int load_cs(struct emu_cpu *cpu, uint16_t sel, unsigned new_cpl)
{
	uint64_t d[2], addr;
	unsigned dpl;
	int err;

	if (cpu->mode == MODE_REAL) {
		cpu->seg[SR_CS].sel = sel;
		cpu->seg[SR_CS].base = (uint64_t)sel << 4;
		return 0;
	}
	if (!(sel & ~3u))
		return gp(cpu, 0);
	if ((err = read_desc(cpu, sel, d, false, &addr)))
		return err;
	dpl = (d[0] >> 45) & 3;
	if (!((d[0] >> 44) & 1) || !((d[0] >> 43) & 1)) /* not a code segment (gates: not yet) */
		return gp(cpu, sel & 0xfffc);
	if (((d[0] >> 42) & 1) ? dpl > new_cpl : dpl != new_cpl)
		return gp(cpu, sel & 0xfffc);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EXC_NP, true, sel & 0xfffc);
	if ((cpu->efer & X86_EFER_LMA) && ((d[0] >> 53) & 1) && ((d[0] >> 54) & 1))
		return gp(cpu, sel & 0xfffc);            /* L and D both set */
	set_accessed(cpu, addr, d[0]);
	desc_to_seg(d[0] | (1ULL << 40), (sel & ~3u) | new_cpl, &cpu->seg[SR_CS]);
	emu_cpu_update_mode(cpu);
	return 0;
}

int emu_far_jump(struct ctx *c, uint16_t sel, uint64_t offset, bool call, unsigned size)
{
	struct emu_cpu *cpu = c->cpu;
	struct x86_seg old_cs = cpu->seg[SR_CS];
	enum emu_mode old_mode = cpu->mode;
	uint64_t old_rsp = cpu->gpr[X86_RSP];
	int err;

	if (call && ((err = emu_push(cpu, size, old_cs.sel)) || (err = emu_push(cpu, size, c->next))))
		goto undo;
	if ((err = load_cs(cpu, sel, cpu->cpl)))
		goto undo;
	c->next = size == 2 ? offset & 0xffff : size == 4 ? (uint32_t)offset : offset;
	return 0;
undo:
	cpu->seg[SR_CS] = old_cs;
	cpu->mode = old_mode;
	cpu->gpr[X86_RSP] = old_rsp;
	return err;
}

static int far_return_outer(struct ctx *c, uint16_t cs, uint64_t ip, uint16_t pop_extra);

/* RETF: to the same privilege level, or to an outer one (popping SS:SP). */
static int far_return(struct ctx *c, uint16_t pop_extra)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = c->in->opsize;
	uint64_t ip, cs;
	int err;

	if ((err = emu_peek(cpu, size, 0, &ip)) || (err = emu_peek(cpu, size, size, &cs)))
		return err;
	if (cpu->mode != MODE_REAL && (cs & 3) < cpu->cpl)
		return gp(cpu, cs & 0xfffc);
	if (cpu->mode != MODE_REAL && (cs & 3) > cpu->cpl)
		return far_return_outer(c, cs, ip, pop_extra);
	if ((err = load_cs(cpu, cs, cpu->cpl)))
		return err;
	emu_pop_commit(cpu, 2 * size + pop_extra);
	c->next = size == 8 ? ip : ip & mask_of(size);
	return 0;
}

/* ---- descriptor-table registers ---- */

static int load_dtable(struct ctx *c, struct x86_dtable *dt)
{
	struct emu_cpu *cpu = c->cpu;
	uint64_t limit, base;
	unsigned bsize = cpu->mode == MODE_LONG64 ? 8 : 4;
	int err;

	if (cpu->cpl)
		return gp(cpu, 0);
	if (!is_mem(c))
		return ud(c);
	if ((err = emu_read(cpu, c->seg, c->ea, 2, &limit)) ||
	    (err = emu_read(cpu, c->seg, (c->ea + 2) & addr_mask(c), bsize, &base)))
		return err;
	if (c->in->opsize == 2 && cpu->mode != MODE_LONG64)
		base &= 0xffffff;
	dt->limit = limit;
	dt->base = base;
	return 0;
}

static int store_dtable(struct ctx *c, const struct x86_dtable *dt)
{
	struct emu_cpu *cpu = c->cpu;
	int err;

	if (!is_mem(c))
		return ud(c);
	if ((err = emu_write(cpu, c->seg, c->ea, 2, dt->limit)))
		return err;
	return emu_write(cpu, c->seg, (c->ea + 2) & addr_mask(c), cpu->mode == MODE_LONG64 ? 8 : 4, dt->base);
}

/* LLDT / LTR: a system descriptor (16 bytes in long mode). */
static int load_system_seg(struct ctx *c, bool tr)
{
	struct emu_cpu *cpu = c->cpu;
	uint64_t sel, d[2] = { 0, 0 }, addr;
	unsigned type;
	int err;

	if (cpu->mode == MODE_REAL)
		return ud(c);
	if (cpu->cpl)
		return gp(cpu, 0);
	if ((err = rm_read(c, 2, &sel)))
		return err;
	if (!(sel & ~3u)) {
		if (tr)
			return gp(cpu, 0);
		cpu->ldt = (struct x86_seg){ .unusable = 1 };
		return 0;
	}
	if (sel & 4)
		return gp(cpu, sel & 0xfffc);
	if ((err = read_desc(cpu, sel, d, cpu->mode == MODE_LONG64, &addr)))
		return err;
	type = (d[0] >> 40) & 0x1f;                  /* S bit and type */
	if (tr ? (type != 0x09 && (cpu->mode == MODE_LONG64 || type != 0x01)) : type != 0x02)
		return gp(cpu, sel & 0xfffc);
	if (!((d[0] >> 47) & 1))
		return emu_fault(cpu, EXC_NP, true, sel & 0xfffc);
	if (tr) {
		uint8_t busy = ((d[0] >> 40) & 0xff) | 2;
		if ((err = emu_write_linear(cpu, addr + 5, &busy, 1, ACC_WRITE | ACC_IMPLICIT)))
			return err;
		d[0] |= 2ULL << 40;
	}
	desc_to_seg(d[0], sel, tr ? &cpu->tr : &cpu->ldt);
	if (cpu->mode == MODE_LONG64)
		(tr ? &cpu->tr : &cpu->ldt)->base |= (d[1] & 0xffffffff) << 32;
	return 0;
}

/* ---- control registers ---- */

static int write_cr0(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->cr0;

	v |= X86_CR0_ET;
	if (v >> 32 || (v & ~CR0_SUPPORTED) || ((v & X86_CR0_PG) && !(v & X86_CR0_PE)) ||
	    ((v & CR0_NW) && !(v & CR0_CD)))
		return gp(cpu, 0);
	if ((v & X86_CR0_PG) && !(old & X86_CR0_PG) && (cpu->efer & X86_EFER_LME)) {
		if (!(cpu->cr4 & X86_CR4_PAE) || cpu->seg[SR_CS].l)
			return gp(cpu, 0);
		cpu->efer |= X86_EFER_LMA;
	}
	if (!(v & X86_CR0_PG) && (old & X86_CR0_PG)) {
		if (cpu->mode == MODE_LONG64)
			return gp(cpu, 0);
		cpu->efer &= ~X86_EFER_LMA;
	}
	cpu->cr0 = v;
	cpu->tlb_gen++;     /* permissions (WP) may differ: no cached fetch page */
	if ((old ^ v) & (X86_CR0_PG | X86_CR0_PE | CR0_WP))
		emu_tlb_flush(cpu, true);
	emu_cpu_update_mode(cpu);
	return 0;
}

static int write_cr4(struct emu_cpu *cpu, uint64_t v)
{
	if (v & ~CR4_SUPPORTED)
		return gp(cpu, 0);
	if ((cpu->efer & X86_EFER_LMA) && !(v & X86_CR4_PAE))
		return gp(cpu, 0);
	if ((v ^ cpu->cr4) & (X86_CR4_PAE | CR4_PSE | CR4_PGE))
		emu_tlb_flush(cpu, true);
	cpu->cr4 = v;
	cpu->tlb_gen++;     /* SMEP and friends: no cached fetch page */
	return 0;
}

static int mov_cr(struct ctx *c, bool to_cr)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned cr = c->in->reg, size = cpu->mode == MODE_LONG64 ? 8 : 4;
	uint64_t v;

	if (cpu->cpl)
		return gp(cpu, 0);
	if (!to_cr) {
		switch (cr) {
		case 0: v = cpu->cr0; break;
		case 2: v = cpu->cr2; break;
		case 3: v = cpu->cr3; break;
		case 4: v = cpu->cr4; break;
		case 8: v = cpu->lapic ? emu_lapic_get_cr8(cpu->lapic) : 0; break;
		default: return ud(c);
		}
		reg_write(c, c->in->rm, size, v);
		return 0;
	}
	v = GPR(c, c->in->rm) & mask_of(size);
	switch (cr) {
	case 0: return write_cr0(cpu, v);
	case 2: cpu->cr2 = v; return 0;
	case 3:
		if (cpu->mode == MODE_LONG64 && v >> 46)
			return gp(cpu, 0);
		cpu->cr3 = v;
		emu_tlb_flush(cpu, false);
		return 0;
	case 4: return write_cr4(cpu, v);
	case 8:
		if (v > 15)
			return gp(cpu, 0);
		if (cpu->lapic)
			emu_lapic_set_cr8(cpu->lapic, v);
		return 0;
	default: return ud(c);
	}
}

static int mov_dr(struct ctx *c, bool to_dr)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned dr = c->in->reg, size = cpu->mode == MODE_LONG64 ? 8 : 4;

	if (cpu->cpl)
		return gp(cpu, 0);
	if (dr == 4 || dr == 5)
		dr += 2;               /* aliases of DR6/DR7 without CR4.DE */
	if (dr > 7)
		return ud(c);
	if (to_dr)
		cpu->dr[dr] = GPR(c, c->in->rm) & mask_of(size);
	else
		reg_write(c, c->in->rm, size, cpu->dr[dr]);
	return 0;
}

/* ---- MSRs ---- */

static int rdmsr(struct emu_cpu *cpu, uint32_t msr, uint64_t *v)
{
	switch (msr) {
	case MSR_TSC: *v = guest_tsc(cpu); return 0;
	case MSR_APIC_BASE: *v = cpu->lapic ? emu_lapic_get_base(cpu->lapic) : 0xfee00900; return 0;
	case MSR_MTRRCAP: case MSR_MTRR_DEF_TYPE: *v = 0; return 0;
	case MSR_SYSENTER_CS: *v = cpu->msr.sysenter_cs; return 0;
	case MSR_SYSENTER_ESP: *v = cpu->msr.sysenter_esp; return 0;
	case MSR_SYSENTER_EIP: *v = cpu->msr.sysenter_eip; return 0;
	case MSR_MISC_ENABLE: *v = cpu->msr.misc_enable | 1; return 0; /* fast strings */
	case MSR_PAT: *v = cpu->msr.pat; return 0;
	case MSR_TSC_DEADLINE: *v = cpu->lapic ? emu_lapic_get_tsc_deadline(cpu->lapic) : 0; return 0;
	case MSR_EFER: *v = cpu->efer; return 0;
	case MSR_STAR: *v = cpu->msr.star; return 0;
	case MSR_LSTAR: *v = cpu->msr.lstar; return 0;
	case MSR_CSTAR: *v = cpu->msr.cstar; return 0;
	case MSR_SFMASK: *v = cpu->msr.sfmask; return 0;
	case MSR_FS_BASE: *v = cpu->seg[SR_FS].base; return 0;
	case MSR_GS_BASE: *v = cpu->seg[SR_GS].base; return 0;
	case MSR_KERNEL_GS_BASE: *v = cpu->msr.kernel_gs_base; return 0;
	case MSR_TSC_AUX: *v = cpu->msr.tsc_aux; return 0;
	case MSR_KVM_SYSTEM_TIME: case MSR_KVM_SYSTEM_TIME_NEW: *v = cpu->msr.kvm_system_time; return 0;
	case MSR_KVM_WALL_CLOCK: case MSR_KVM_WALL_CLOCK_NEW: *v = 0; return 0;
	case MSR_K8_INT_PENDING_MSG: *v = 0; return 0;
	case MSR_MCG_CAP: *v = 0; return 0;          /* no banks, no MCG_CTL */
	case MSR_MCG_STATUS: *v = 0; return 0;
	}
	return -1;
}

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

static int wrmsr(struct emu_cpu *cpu, uint32_t msr, uint64_t v)
{
	switch (msr) {
	case MSR_TSC: cpu->msr.tsc_offset = v - now_ns(); kvmclock_publish(cpu); return 0;
	case MSR_KVM_SYSTEM_TIME: case MSR_KVM_SYSTEM_TIME_NEW:
		cpu->msr.kvm_system_time = v;
		kvmclock_publish(cpu);
		return 0;
	case MSR_KVM_WALL_CLOCK: case MSR_KVM_WALL_CLOCK_NEW:
		kvmclock_wall(cpu, v);
		return 0;
	case MSR_K8_INT_PENDING_MSG: return 0;
	case MSR_MCG_STATUS: return v ? -1 : 0;      /* only zero may be written */
	case MSR_APIC_BASE: if (cpu->lapic) emu_lapic_set_base(cpu->lapic, v); return 0;
	case MSR_MTRR_DEF_TYPE: return 0;
	case MSR_SYSENTER_CS: cpu->msr.sysenter_cs = v & 0xffff; return 0;
	case MSR_SYSENTER_ESP: if (!canonical(v)) return -1; cpu->msr.sysenter_esp = v; return 0;
	case MSR_SYSENTER_EIP: if (!canonical(v)) return -1; cpu->msr.sysenter_eip = v; return 0;
	case MSR_MISC_ENABLE: cpu->msr.misc_enable = v; return 0;
	case MSR_PAT: cpu->msr.pat = v; return 0;
	case MSR_TSC_DEADLINE: if (cpu->lapic) emu_lapic_set_tsc_deadline(cpu->lapic, v, now_ns()); return 0;
	case MSR_EFER: {
		uint64_t allowed = EFER_SCE | X86_EFER_LME | EFER_NXE;
		if (v & ~(allowed | X86_EFER_LMA))
			return -1;
		/* LME cannot change while paging is on; LMA is the CPU's */
		if ((cpu->cr0 & X86_CR0_PG) && ((v ^ cpu->efer) & X86_EFER_LME))
			return -1;
		if ((v ^ cpu->efer) & EFER_NXE)
			emu_tlb_flush(cpu, true);
		cpu->efer = (v & allowed) | (cpu->efer & X86_EFER_LMA);
		cpu->tlb_gen++; /* NXE: no cached fetch page */
		return 0;
	}
	case MSR_STAR: cpu->msr.star = v; return 0;
	case MSR_LSTAR: if (!canonical(v)) return -1; cpu->msr.lstar = v; return 0;
	case MSR_CSTAR: if (!canonical(v)) return -1; cpu->msr.cstar = v; return 0;
	case MSR_SFMASK: cpu->msr.sfmask = v & 0xffffffff; return 0;
	case MSR_FS_BASE: if (!canonical(v)) return -1; cpu->seg[SR_FS].base = v; return 0;
	case MSR_GS_BASE: if (!canonical(v)) return -1; cpu->seg[SR_GS].base = v; return 0;
	case MSR_KERNEL_GS_BASE: if (!canonical(v)) return -1; cpu->msr.kernel_gs_base = v; return 0;
	case MSR_TSC_AUX: cpu->msr.tsc_aux = v & 0xffffffff; return 0;
	}
	return -1;
}

/* ---- legacy integer instructions the integer core leaves here ---- */

static void stack_set(struct emu_cpu *cpu, uint64_t sp)
{
	unsigned s = emu_stack_size(cpu);
	uint64_t *r = &cpu->gpr[X86_RSP];

	*r = s == 8 ? sp : s == 4 ? (uint32_t)sp : (*r & ~0xffffULL) | (sp & 0xffff);
}

/* SF ZF PF from AL, the rest as given. */
static void bcd_flags(struct emu_cpu *cpu, uint8_t al, bool cf, bool af)
{
	uint64_t f = (cf ? FL_CF : 0) | (af ? FL_AF : 0) | (al ? 0 : FL_ZF) | ((al & 0x80) ? FL_SF : 0) |
		     (__builtin_parity(al) ? 0 : FL_PF);
	emu_flags_update(cpu, FL_ARITH, f);
}

static int bcd(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	uint64_t ax = GPR(c, X86_RAX) & 0xffff;
	uint8_t al = ax, ah = ax >> 8, old_al = al, base;
	bool cf = emu_flag(cpu, FL_CF), af = emu_flag(cpu, FL_AF), ncf = false, naf = false;

	switch (c->in->op) {
	case 0x27:                                   /* DAA */
	case 0x2f:                                   /* DAS */
		if ((al & 0xf) > 9 || af) {
			ncf = cf || (c->in->op == 0x27 ? al > 0xf9 : al < 6);
			al = c->in->op == 0x27 ? al + 6 : al - 6;
			naf = true;
		}
		if (old_al > 0x99 || cf) {
			al = c->in->op == 0x27 ? al + 0x60 : al - 0x60;
			ncf = true;
		}
		reg_write(c, X86_RAX, 1, al);
		bcd_flags(cpu, al, ncf, naf);
		return 0;
	case 0x37:                                   /* AAA */
	case 0x3f:                                   /* AAS */
		if ((al & 0xf) > 9 || af) {
			ax = c->in->op == 0x37 ? ax + 0x106 : ax - 0x106;
			ncf = naf = true;
		}
		ax &= 0xff0f;
		reg_write(c, X86_RAX, 2, ax);
		bcd_flags(cpu, ax & 0xff, ncf, naf);
		return 0;
	case 0xd4:                                   /* AAM */
		base = c->in->imm;
		if (!base)
			return emu_fault(cpu, EXC_DE, false, 0);
		ah = al / base;
		al = al % base;
		reg_write(c, X86_RAX, 2, (uint16_t)(ah << 8 | al));
		bcd_flags(cpu, al, false, false);
		return 0;
	default:                                     /* AAD */
		al = (uint8_t)(al + ah * (uint8_t)c->in->imm);
		reg_write(c, X86_RAX, 2, al);
		bcd_flags(cpu, al, false, false);
		return 0;
	}
}

static int pusha_popa(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = c->in->opsize;
	uint64_t old_sp = cpu->gpr[X86_RSP], v[8];
	int err;

	if (c->in->op == 0x60) {
		for (unsigned r = 0; r < 8; r++) {
			if ((err = emu_push(cpu, size, r == X86_RSP ? old_sp : GPR(c, r)))) {
				cpu->gpr[X86_RSP] = old_sp;
				return err;
			}
		}
		return 0;
	}
	for (unsigned i = 0; i < 8; i++)
		if ((err = emu_peek(cpu, size, i * size, &v[7 - i])))
			return err;
	for (unsigned r = 0; r < 8; r++)
		if (r != X86_RSP)
			reg_write(c, r, size, v[r]);
	emu_pop_commit(cpu, 8 * size);
	return 0;
}

static int enter(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = c->in->opsize, level = c->in->imm & 31;
	uint64_t smask = mask_of(emu_stack_size(cpu)), old_sp = cpu->gpr[X86_RSP];
	uint64_t bp = cpu->gpr[X86_RBP], frame, v;
	int err;

	if ((err = emu_push(cpu, size, bp)))
		goto undo;
	frame = cpu->gpr[X86_RSP] & smask;
	if (level) {
		for (unsigned i = 1; i < level; i++) {
			bp = (bp - size) & smask;
			if ((err = emu_read(cpu, SR_SS, bp, size, &v)) || (err = emu_push(cpu, size, v)))
				goto undo;
		}
		if ((err = emu_push(cpu, size, frame)))
			goto undo;
	}
	/* the lowest byte of the new frame must be writable too */
	v = (cpu->gpr[X86_RSP] - c->in->imm2) & smask;
	if (c->in->imm2 && (err = emu_linear(cpu, SR_SS, v, 1, ACC_WRITE, &bp)))
		goto undo;
	reg_write(c, X86_RBP, size, frame);
	stack_set(cpu, v);
	return 0;
undo:
	cpu->gpr[X86_RSP] = old_sp;
	return err;
}

/* LES LDS LSS LFS LGS: a far pointer from memory. */
static int load_far_ptr(struct ctx *c, unsigned sreg)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = c->in->opsize;
	uint64_t off, sel;
	int err;

	if (!is_mem(c))
		return ud(c);
	if ((err = emu_read(cpu, c->seg, c->ea, size, &off)) ||
	    (err = emu_read(cpu, c->seg, (c->ea + size) & addr_mask(c), 2, &sel)) ||
	    (err = emu_load_seg(cpu, sreg, sel)))
		return err;
	reg_write(c, c->in->reg, size, off);
	return 0;
}

static int bound(struct ctx *c)
{
	unsigned size = c->in->opsize;
	uint64_t lo, hi;
	int64_t idx = (int64_t)sext(reg_read(c, c->in->reg, size), size);
	int err;

	if ((err = emu_read(c->cpu, c->seg, c->ea, size, &lo)) ||
	    (err = emu_read(c->cpu, c->seg, (c->ea + size) & addr_mask(c), size, &hi)))
		return err;
	if (idx < (int64_t)sext(lo, size) || idx > (int64_t)sext(hi, size))
		return emu_fault(c->cpu, EXC_BR, false, 0);
	return 0;
}

static int arpl(struct ctx *c)
{
	uint64_t dst, src = reg_read(c, c->in->reg, 2);
	int err;

	if (c->cpu->mode == MODE_REAL)
		return ud(c);
	if ((err = rm_read(c, 2, &dst)))
		return err;
	if ((dst & 3) < (src & 3)) {
		if ((err = rm_write(c, 2, (dst & ~3ULL) | (src & 3))))
			return err;
		emu_flags_update(c->cpu, FL_ZF, FL_ZF);
	} else {
		emu_flags_update(c->cpu, FL_ZF, 0);
	}
	return 0;
}

static bool cas16(void *p, uint64_t exp[2], const uint64_t des[2])
{
#if defined(__x86_64__)
	bool ok;
	__asm__ volatile("lock cmpxchg16b %1"
			 : "=@ccz"(ok), "+m"(*(volatile unsigned __int128 *)p), "+a"(exp[0]), "+d"(exp[1])
			 : "b"(des[0]), "c"(des[1])
			 : "memory");
	return ok;
#else
	/* no 16-byte CAS on this host: not atomic against other vCPUs */
	uint64_t *q = p;
	if (q[0] == exp[0] && q[1] == exp[1]) {
		q[0] = des[0], q[1] = des[1];
		return true;
	}
	exp[0] = q[0], exp[1] = q[1];
	return false;
#endif
}

/* CMPXCHG8B / CMPXCHG16B m: EDX:EAX (RDX:RAX) against memory. */
static int cmpxchg_wide(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	bool wide = c->in->opsize == 8;
	unsigned half = wide ? 8 : 4, size = 2 * half;
	uint64_t m = mask_of(half);
	uint64_t exp[2] = { GPR(c, X86_RAX) & m, GPR(c, X86_RDX) & m };
	uint64_t des[2] = { GPR(c, X86_RBX) & m, GPR(c, X86_RCX) & m };
	uint64_t old[2] = { 0, 0 };
	bool eq;
	void *p;
	int err;

	if (!is_mem(c))
		return ud(c);
	if (wide && (c->ea & 15))
		return gp(cpu, 0);
	p = emu_host_ptr(cpu, c->seg, c->ea, size, ACC_WRITE, &err);
	if (err)
		return err;
	if (p && wide) {
		old[0] = exp[0], old[1] = exp[1];
		eq = cas16(p, old, des);
	} else if (p) {
		uint64_t e = exp[0] | exp[1] << 32;
		eq = __atomic_compare_exchange_n((uint64_t *)p, &e, des[0] | des[1] << 32, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		old[0] = (uint32_t)e, old[1] = e >> 32;
	} else {
		/* split or MMIO: not atomic, as for CMPXCHG */
		if ((err = emu_read(cpu, c->seg, c->ea, half, &old[0])) ||
		    (err = emu_read(cpu, c->seg, (c->ea + half) & addr_mask(c), half, &old[1])))
			return err;
		eq = old[0] == exp[0] && old[1] == exp[1];
		if ((err = emu_write(cpu, c->seg, c->ea, half, eq ? des[0] : old[0])) ||
		    (err = emu_write(cpu, c->seg, (c->ea + half) & addr_mask(c), half, eq ? des[1] : old[1])))
			return err;
	}
	emu_flags_update(cpu, FL_ZF, eq ? FL_ZF : 0);
	if (!eq) {
		reg_write(c, X86_RAX, half, old[0]);
		reg_write(c, X86_RDX, half, old[1]);
	}
	return 0;
}

/* LAR LSL VERR VERW: ZF says whether the selector passes; *d its descriptor. */
static bool desc_visible(struct emu_cpu *cpu, uint16_t sel, unsigned what, uint64_t *d)
{
	uint64_t dd[2], addr;
	unsigned type, dpl;
	bool lm = cpu->efer & X86_EFER_LMA;

	if (!(sel & ~3u))
		return false;
	if (read_desc(cpu, sel, dd, false, &addr)) {
		cpu->exc = (struct emu_exception){ 0 };
		return false;
	}
	*d = dd[0];
	type = (dd[0] >> 40) & 0xf;
	dpl = (dd[0] >> 45) & 3;
	if (!((dd[0] >> 44) & 1)) {                  /* system descriptors */
		if (what == 0)                               /* LAR */
			return lm ? (type == 2 || type == 9 || type == 0xb || type == 0xc)
				  : (type && type != 8 && type != 0xa && type != 0xd && type != 0xe && type != 0xf);
		if (what == 1)                               /* LSL */
			return lm ? (type == 2 || type == 9 || type == 0xb)
				  : (type == 1 || type == 2 || type == 3 || type == 9 || type == 0xb);
		return false;
	}
	if (!((type & 0xc) == 0xc) && dpl < MAX(cpu->cpl, sel & 3u))  /* conforming code: no check */
		return false;
	if (what == 2)                                       /* VERR: readable */
		return !(type & 8) || (type & 2);
	if (what == 3)                                       /* VERW: writable data */
		return !(type & 8) && (type & 2);
	return true;
}

static int lar_lsl(struct ctx *c, unsigned what)
{
	struct emu_cpu *cpu = c->cpu;
	uint64_t sel, d = 0;
	bool ok;
	int err;

	if (cpu->mode == MODE_REAL)
		return ud(c);
	if ((err = rm_read(c, 2, &sel)))
		return err;
	ok = desc_visible(cpu, sel, what, &d);
	emu_flags_update(cpu, FL_ZF, ok ? FL_ZF : 0);
	if (!ok || what >= 2)
		return 0;
	if (what == 0) {
		reg_write(c, c->in->reg, c->in->opsize, (d >> 32) & (c->in->opsize == 2 ? 0xff00 : 0x00f0ff00));
	} else {
		uint64_t limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
		if ((d >> 55) & 1)
			limit = (limit << 12) | 0xfff;
		reg_write(c, c->in->reg, c->in->opsize, limit);
	}
	return 0;
}

/* RETF to an outer privilege level: after CS:IP (and imm16 bytes), SS:SP. */
static int far_return_outer(struct ctx *c, uint16_t cs, uint64_t ip, uint16_t pop_extra)
{
	struct emu_cpu *cpu = c->cpu;
	unsigned size = c->in->opsize, new_cpl = cs & 3;
	struct x86_seg old_cs = cpu->seg[SR_CS], old_ss = cpu->seg[SR_SS];
	enum emu_mode old_mode = cpu->mode;
	uint8_t old_cpl = cpu->cpl;
	uint64_t sp, ss;
	int err;

	if ((err = emu_peek(cpu, size, 2 * size + pop_extra, &sp)) ||
	    (err = emu_peek(cpu, size, 3 * size + pop_extra, &ss)))
		return err;
	if ((err = load_cs(cpu, cs, new_cpl)))
		return err;
	cpu->cpl = new_cpl;
	if ((err = emu_load_seg(cpu, SR_SS, ss))) {
		cpu->seg[SR_CS] = old_cs;
		cpu->seg[SR_SS] = old_ss;
		cpu->mode = old_mode;
		cpu->cpl = old_cpl;
		return err;
	}
	cpu->interrupt_shadow = false;
	stack_set(cpu, sp + pop_extra);
	/* data segments the new CPL may not use become null */
	for (unsigned s = SR_ES; s <= SR_GS; s++) {
		struct x86_seg *g = &cpu->seg[s];
		if (s == SR_CS || s == SR_SS || g->unusable)
			continue;
		if (g->dpl < new_cpl && !((g->type & 0xc) == 0xc))
			*g = (struct x86_seg){ .unusable = 1 };
	}
	c->next = size == 8 ? ip : ip & mask_of(size);
	return 0;
}

/* ---- fast system calls: SYSCALL/SYSRET, SYSENTER/SYSEXIT ---- */

/* The flat segments these instructions load without reading the GDT. */
static void flat_seg(struct x86_seg *s, uint16_t sel, bool code, unsigned dpl, bool l, bool db)
{
	*s = (struct x86_seg){ .base = 0, .limit = 0xffffffff, .sel = sel, .type = code ? 0xb : 0x3,
			       .s = 1, .dpl = dpl, .present = 1, .l = l, .db = db, .g = 1 };
}

static int syscall_insn(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	uint16_t sel = (cpu->msr.star >> 32) & 0xffff;
	uint64_t flags;

	/* Intel: #UD outside 64-bit mode (CSTAR is AMD's compatibility-mode entry) */
	if (cpu->mode != MODE_LONG64 || !(cpu->efer & EFER_SCE))
		return ud(c);
	flags = emu_flags_get(cpu) & ~FL_RF;
	GPR(c, X86_RCX) = c->next;
	GPR(c, X86_R11) = flags;
	flat_seg(&cpu->seg[SR_CS], sel & 0xfffc, true, 0, true, false);
	flat_seg(&cpu->seg[SR_SS], (sel + 8) & 0xffff, false, 0, false, true);
	emu_flags_set(cpu, flags & ~cpu->msr.sfmask);
	emu_cpu_update_mode(cpu);
	c->next = cpu->msr.lstar;
	return 0;
}

static int sysret_insn(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	uint16_t sel = (cpu->msr.star >> 48) & 0xffff;
	bool q = c->in->opsize == 8;
	uint64_t rip = GPR(c, X86_RCX);

	if (cpu->mode != MODE_LONG64 || !(cpu->efer & EFER_SCE))
		return ud(c);
	if (cpu->cpl)
		return gp(cpu, 0);
	if (q && !canonical(rip))
		return gp(cpu, 0);
	flat_seg(&cpu->seg[SR_CS], ((q ? sel + 16 : sel) & 0xffff) | 3, true, 3, q, !q);
	/* SS: the selector changes, the cached descriptor is a flat DPL-3 one */
	flat_seg(&cpu->seg[SR_SS], ((sel + 8) & 0xffff) | 3, false, 3, false, true);
	emu_flags_set(cpu, (GPR(c, X86_R11) & 0x3c7fd7) | 2);
	emu_cpu_update_mode(cpu);
	c->next = q ? rip : (uint32_t)rip;
	return 0;
}

static int sysenter_insn(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	uint16_t sel = cpu->msr.sysenter_cs & 0xfffc;
	bool lm = cpu->efer & X86_EFER_LMA;

	if (cpu->mode == MODE_REAL || !sel)
		return gp(cpu, 0);
	emu_flags_set(cpu, emu_flags_get(cpu) & ~(FL_VM | FL_IF | FL_RF));
	flat_seg(&cpu->seg[SR_CS], sel, true, 0, lm, !lm);
	flat_seg(&cpu->seg[SR_SS], (sel + 8) & 0xffff, false, 0, false, true);
	emu_cpu_update_mode(cpu);
	GPR(c, X86_RSP) = lm ? cpu->msr.sysenter_esp : (uint32_t)cpu->msr.sysenter_esp;
	c->next = lm ? cpu->msr.sysenter_eip : (uint32_t)cpu->msr.sysenter_eip;
	return 0;
}

static int sysexit_insn(struct ctx *c)
{
	struct emu_cpu *cpu = c->cpu;
	uint16_t sel = cpu->msr.sysenter_cs & 0xfffc;
	bool q = c->in->opsize == 8;

	if (cpu->mode == MODE_REAL || !sel || cpu->cpl)
		return gp(cpu, 0);
	if (q && (!canonical(GPR(c, X86_RDX)) || !canonical(GPR(c, X86_RCX))))
		return gp(cpu, 0);
	sel += q ? 32 : 16;
	flat_seg(&cpu->seg[SR_CS], sel | 3, true, 3, q, !q);
	flat_seg(&cpu->seg[SR_SS], (sel + 8) | 3, false, 3, false, true);
	emu_cpu_update_mode(cpu);
	GPR(c, X86_RSP) = q ? GPR(c, X86_RCX) : (uint32_t)GPR(c, X86_RCX);
	c->next = q ? GPR(c, X86_RDX) : (uint32_t)GPR(c, X86_RDX);
	return 0;
}

/* ---- CPUID: exactly what this CPU implements ---- */

#define CPUID_MAX_BASIC 0x16
#define CPUID_MAX_EXT   0x80000008
/* An AMD family 15 (K8-class, 64-bit) identity: a vendor Linux knows,
 * whose generic paths ask nothing of model-specific registers; the brand
 * string tells kumo's own test guests they run on emu. */
#define CPUID_VENDOR    "AuthenticAMD"
#define CPUID_SIGNATURE 0x00060fb1               /* family 0xf, model 0x6b, stepping 1 */
#define CPUID_BRAND     "KumoEmuX86_6 software x86-64 CPU"

static void cpuid(struct emu_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	unsigned ncpus = cpu->ncpus ? cpu->ncpus : 1;

	memset(r, 0, 16);
	switch (leaf) {
	case 0:
		r[0] = CPUID_MAX_BASIC;
		memcpy(&r[1], CPUID_VENDOR, 4);           /* EBX EDX ECX */
		memcpy(&r[3], CPUID_VENDOR + 4, 4);
		memcpy(&r[2], CPUID_VENDOR + 8, 4);
		break;
	case 1:
		r[0] = CPUID_SIGNATURE;
		r[1] = (cpu->index << 24) | (ncpus << 16) | (8 << 8);
		r[2] = (1u << 23) | (1u << 31);           /* POPCNT, hypervisor */
		r[2] |= 1u << 24;                         /* TSC-deadline LAPIC timer */
		r[3] = (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 9) | (1u << 13) |
		       (1u << 15) | (1u << 16) | (ncpus > 1 ? 1u << 28 : 0);
		/* PSE TSC MSR PAE APIC PGE CMOV PAT HTT */
		r[3] |= (1u << 7) | (1u << 14);           /* MCE, MCA (with no banks) */
		r[3] |= (1u << 11) | (1u << 8);           /* SEP: SYSENTER/SYSEXIT, CX8 */
		r[3] |= 1u << 19;                         /* CLFSH (line size 8 x 8 in EBX) */
		r[2] |= 1u << 13;                         /* CX16: CMPXCHG16B */
		r[2] |= EMU_CPUID1_ECX_SIMD;              /* sse.h: what sse.c/x87.c implement */
		r[3] |= EMU_CPUID1_EDX_SIMD;
		break;
	case 6:
		r[0] = 1u << 2;                           /* ARAT: the LAPIC timer runs in idle */
		break;
	case 0xb:
		r[3] = cpu->index;
		if (sub == 0) { r[1] = 1; r[2] = 0x100; }
		else if (sub == 1) {
			unsigned shift = 0;
			while ((1u << shift) < ncpus)
				shift++;
			r[0] = shift; r[1] = ncpus; r[2] = 0x201;
		} else {
			r[2] = sub;
		}
		break;
	case 0x15:
		/* TSC = crystal * EBX / EAX: a 1 GHz "crystal", ratio 1 */
		r[0] = 1;
		r[1] = 1;
		r[2] = (uint32_t)EMU_TSC_HZ;
		break;
	case 0x16:
		r[0] = EMU_TSC_HZ / 1000000;              /* base MHz */
		r[1] = EMU_TSC_HZ / 1000000;              /* maximum MHz */
		r[2] = 100;                               /* bus MHz */
		break;
	case 0x40000000:                                  /* hypervisor: KVM's ABI for kvmclock */
		r[0] = 0x40000001;
		memcpy(&r[1], "KVMKVMKVM\0\0\0", 12);
		break;
	case 0x40000001:
		r[0] = (1u << 0) | (1u << 3) |            /* kvmclock MSRs, old and new */
		       (1u << 1) |                        /* no port 0x80 delay needed */
		       (1u << 24);                        /* kvmclock is TSC-stable */
		break;
	case 0x80000000:
		r[0] = CPUID_MAX_EXT;
		memcpy(&r[1], CPUID_VENDOR, 4);
		memcpy(&r[3], CPUID_VENDOR + 4, 4);
		memcpy(&r[2], CPUID_VENDOR + 8, 4);
		break;
	case 0x80000002: case 0x80000003: case 0x80000004: {
		char brand[48] = CPUID_BRAND;
		memcpy(r, brand + (leaf - 0x80000002) * 16, 16);
		break;
	}
	case 0x80000001:
		r[0] = CPUID_SIGNATURE;
		r[2] = 1u << 0;                           /* LAHF/SAHF in 64-bit mode */
		r[3] = (1u << 20) | (1u << 29);           /* NX, long mode */
		r[3] |= (1u << 11) | (1u << 27);          /* SYSCALL/SYSRET, RDTSCP */
		break;
	case 0x80000007:
		r[3] = 1u << 8;                           /* invariant TSC: it counts host ns */
		break;
	case 0x80000008:
		r[0] = 46 | (48 << 8);                    /* physical, linear address bits */
		r[2] = ncpus - 1;                         /* AMD: cores per package - 1 */
		break;
	}
}

/* ---- the dispatcher ---- */

int emu_exec_system(struct ctx *c, bool *handled)
{
	struct emu_cpu *cpu = c->cpu;
	const struct emu_insn *in = c->in;
	uint64_t v;
	int err;

	*handled = true;
	if (in->map == MAP_1B) {
		switch (in->op) {
		case 0x8e:                                   /* MOV Sreg, r/m */
			if ((in->reg & 7) == SR_CS || (in->reg & 7) > SR_GS)
				return ud(c);
			if ((err = rm_read(c, 2, &v)))
				return err;
			return emu_load_seg(cpu, in->reg & 7, v);
		case 0xea: {                                 /* JMP ptr16:16/32 */
			return emu_far_jump(c, in->imm2, in->imm, false, in->opsize);
		}
		case 0x9a:                                   /* CALL ptr16:16/32 */
			return emu_far_jump(c, in->imm2, in->imm, true, in->opsize);
		case 0xca: case 0xcb:                        /* RETF */
			return far_return(c, in->op == 0xca ? in->imm & 0xffff : 0);
		case 0xff: {                                 /* CALL/JMP m16:16/32/64 */
			uint64_t sel;
			unsigned size = in->opsize;
			if ((in->reg & 7) != 3 && (in->reg & 7) != 5)
				break;
			if (!is_mem(c))
				return ud(c);
			if ((err = emu_read(cpu, c->seg, c->ea, size, &v)) ||
			    (err = emu_read(cpu, c->seg, (c->ea + size) & addr_mask(c), 2, &sel)))
				return err;
			return emu_far_jump(c, sel, v, (in->reg & 7) == 3, size);
		}
		case 0xcd:                                   /* INT n */
			if ((err = emu_deliver(cpu, in->imm & 0xff, false, 0, true, c->next)))
				return err;
			c->next = cpu->rip;
			return 0;
		case 0xcf:                                   /* IRET */
			return emu_iret(c);
		case 0x27: case 0x2f: case 0x37: case 0x3f:  /* DAA DAS AAA AAS */
		case 0xd4: case 0xd5:                        /* AAM AAD */
			return bcd(c);
		case 0x60: case 0x61:                        /* PUSHA POPA */
			return pusha_popa(c);
		case 0x62:                                   /* BOUND */
			return bound(c);
		case 0x63:                                   /* ARPL (outside 64-bit mode) */
			return arpl(c);
		case 0xc4: case 0xc5:                        /* LES LDS */
			return load_far_ptr(c, in->op == 0xc4 ? SR_ES : SR_DS);
		case 0xc8:                                   /* ENTER */
			return enter(c);
		case 0xce:                                   /* INTO */
			if (!emu_flag(cpu, FL_OF))
				return 0;
			if ((err = emu_deliver(cpu, EXC_OF, false, 0, true, c->next)))
				return err;
			c->next = cpu->rip;
			return 0;
		case 0xf1:                                   /* INT1 (ICEBP) */
			if ((err = emu_deliver(cpu, EXC_DB, false, 0, false, c->next)))
				return err;
			c->next = cpu->rip;
			return 0;
		case 0x06: case 0x0e: case 0x16: case 0x1e:  /* PUSH ES/CS/SS/DS */
			return emu_push(cpu, in->opsize, cpu->seg[in->op >> 3].sel);
		case 0x07: case 0x17: case 0x1f:             /* POP ES/SS/DS */
			if ((err = emu_peek(cpu, in->opsize, 0, &v)) || (err = emu_load_seg(cpu, in->op >> 3, v)))
				return err;
			emu_pop_commit(cpu, in->opsize);
			return 0;
		}
	} else if (in->map == MAP_0F) {
		switch (in->op) {
		case 0x00:                                   /* group 6 */
			switch (in->reg & 7) {
			case 0: return rm_write(c, is_mem(c) ? 2 : in->opsize, cpu->ldt.sel);  /* SLDT */
			case 1: return rm_write(c, is_mem(c) ? 2 : in->opsize, cpu->tr.sel);   /* STR */
			case 2: return load_system_seg(c, false);                               /* LLDT */
			case 3: return load_system_seg(c, true);                                /* LTR */
			case 4: case 5: return lar_lsl(c, (in->reg & 7) - 2);                   /* VERR VERW */
			}
			return ud(c);
		case 0x02: case 0x03:                        /* LAR LSL */
			return lar_lsl(c, in->op - 2);
		case 0xb2: case 0xb4: case 0xb5:             /* LSS LFS LGS */
			return load_far_ptr(c, in->op == 0xb2 ? SR_SS : in->op == 0xb4 ? SR_FS : SR_GS);
		case 0xc7:                                   /* CMPXCHG8B/16B */
			if ((in->reg & 7) != 1)
				break;
			return cmpxchg_wide(c);
		case 0x01:                                   /* group 7 */
			if (in->mod == 3) {
				unsigned rm = in->rm & 7;
				switch ((in->reg & 7) << 3 | rm) {
				case 0x20 ... 0x27:          /* SMSW r */
					reg_write(c, in->rm | ((in->rex & 1) << 3), in->opsize, cpu->cr0);
					return 0;
				case 0x30 ... 0x37:          /* LMSW r */
					if (cpu->cpl)
						return gp(cpu, 0);
					v = GPR(c, rm | ((in->rex & 1) << 3));
					return write_cr0(cpu, (cpu->cr0 & ~0xeULL) | (v & 0xf) | (cpu->cr0 & 1));
				case 0x39:                   /* RDTSCP */
					if ((cpu->cr4 & CR4_TSD) && cpu->cpl)
						return gp(cpu, 0);
					v = guest_tsc(cpu);
					GPR(c, X86_RAX) = (uint32_t)v;
					GPR(c, X86_RDX) = v >> 32;
					GPR(c, X86_RCX) = (uint32_t)cpu->msr.tsc_aux;
					return 0;
				case 0x38:                   /* SWAPGS */
					if (cpu->mode != MODE_LONG64)
						return ud(c);
					if (cpu->cpl)
						return gp(cpu, 0);
					v = cpu->seg[SR_GS].base;
					cpu->seg[SR_GS].base = cpu->msr.kernel_gs_base;
					cpu->msr.kernel_gs_base = v;
					return 0;
				}
				return ud(c);
			}
			switch (in->reg & 7) {
			case 0: return store_dtable(c, &cpu->gdt);                              /* SGDT */
			case 1: return store_dtable(c, &cpu->idt);                              /* SIDT */
			case 2: return load_dtable(c, &cpu->gdt);                               /* LGDT */
			case 3: return load_dtable(c, &cpu->idt);                               /* LIDT */
			case 4: return rm_write(c, 2, cpu->cr0);                                /* SMSW */
			case 6:                                                                 /* LMSW */
				if (cpu->cpl)
					return gp(cpu, 0);
				if ((err = rm_read(c, 2, &v)))
					return err;
				return write_cr0(cpu, (cpu->cr0 & ~0xeULL) | (v & 0xf) | (cpu->cr0 & 1));
			case 7:                                                                 /* INVLPG */
				if (cpu->cpl)
					return gp(cpu, 0);
				{
					uint64_t linear;
					if (emu_linear(cpu, c->seg, c->ea, 1, ACC_READ, &linear) == 0)
						emu_tlb_flush_page(cpu, linear);
					cpu->exc = (struct emu_exception){ 0 };
				}
				return 0;
			}
			return ud(c);
		case 0x06:                                   /* CLTS */
			if (cpu->cpl)
				return gp(cpu, 0);
			cpu->cr0 &= ~CR0_TS;
			return 0;
		case 0x08: case 0x09:                        /* INVD, WBINVD */
			return cpu->cpl ? gp(cpu, 0) : 0;
		case 0x20: case 0x22:                        /* MOV CR */
			return mov_cr(c, in->op == 0x22);
		case 0x21: case 0x23:                        /* MOV DR */
			return mov_dr(c, in->op == 0x23);
		case 0x30: case 0x32: {                      /* WRMSR, RDMSR */
			uint32_t msr = GPR(c, X86_RCX);
			if (cpu->cpl)
				return gp(cpu, 0);
			if (in->op == 0x30) {
				v = (GPR(c, X86_RDX) << 32) | (uint32_t)GPR(c, X86_RAX);
				return wrmsr(cpu, msr, v) ? gp(cpu, 0) : 0;
			}
			if (rdmsr(cpu, msr, &v))
				return gp(cpu, 0);
			GPR(c, X86_RAX) = (uint32_t)v;
			GPR(c, X86_RDX) = v >> 32;
			return 0;
		}
		case 0x05:                                   /* SYSCALL */
			return syscall_insn(c);
		case 0x07:                                   /* SYSRET */
			return sysret_insn(c);
		case 0x34:                                   /* SYSENTER */
			return sysenter_insn(c);
		case 0x35:                                   /* SYSEXIT */
			return sysexit_insn(c);
		case 0x31:                                   /* RDTSC */
			if ((cpu->cr4 & CR4_TSD) && cpu->cpl)
				return gp(cpu, 0);
			v = guest_tsc(cpu);
			GPR(c, X86_RAX) = (uint32_t)v;
			GPR(c, X86_RDX) = v >> 32;
			return 0;
		case 0xa2: {                                 /* CPUID */
			uint32_t r[4];
			cpuid(cpu, GPR(c, X86_RAX), GPR(c, X86_RCX), r);
			GPR(c, X86_RAX) = r[0];
			GPR(c, X86_RBX) = r[1];
			GPR(c, X86_RCX) = r[2];
			GPR(c, X86_RDX) = r[3];
			return 0;
		}
		case 0xa0: case 0xa8:                        /* PUSH FS/GS */
			return emu_push(cpu, in->opsize, cpu->seg[in->op == 0xa0 ? SR_FS : SR_GS].sel);
		case 0xa1: case 0xa9:                        /* POP FS/GS */
			if ((err = emu_peek(cpu, in->opsize, 0, &v)) ||
			    (err = emu_load_seg(cpu, in->op == 0xa1 ? SR_FS : SR_GS, v)))
				return err;
			emu_pop_commit(cpu, in->opsize);
			return 0;
		}
	}
	*handled = false;
	return ud(c);
}
