/* The emu engine's local APIC, one per vCPU, in xAPIC mode only (x2APIC is
 * not advertised), after the Intel SDM vol. 3, "Advanced Programmable
 * Interrupt Controller". A pure state machine: the engine serializes the
 * calls and passes the time in.
 *
 * Timer clock: the count-down timer runs from a fixed 1 GHz bus clock
 * divided by the divide configuration register, whatever the guest's TSC
 * frequency, so an initial count of N at divide 1 lasts N ns. The engine
 * advertises that frequency (CPUID 0x15/0x16) so guests need not calibrate.
 * TSC-deadline mode compares against the guest TSC, which runs at tsc_hz.
 *
 * Deadlines: after anything that may arm or re-arm the timer (a write to
 * the LVT timer, initial count or divide register, or to IA32_TSC_DEADLINE)
 * the engine calls emu_lapic_tick() to learn the next deadline.
 *
 * Pending NMI / INIT / SIPI events belong to the engine: it takes them with
 * emu_lapic_take_*(); neither reset nor a hardware disable drops them. */
#include "irqchip.h"

#include <stdlib.h>
#include <string.h>

#define APIC_BASE_ADDR 0xfee00000ULL
#define BASE_BSP       (1u << 8)
#define BASE_ENABLE    (1u << 11)
#define APIC_VERSION   0x00050014u /* max LVT entry 5, version 0x14 */
#define BUS_SHIFT_MAX  7           /* divide by 128 */

enum {
	REG_ID = 0x20, REG_VERSION = 0x30, REG_TPR = 0x80, REG_APR = 0x90,
	REG_PPR = 0xa0, REG_EOI = 0xb0, REG_LDR = 0xd0, REG_DFR = 0xe0,
	REG_SVR = 0xf0, REG_ISR = 0x100, REG_TMR = 0x180, REG_IRR = 0x200,
	REG_ESR = 0x280, REG_ICR_LO = 0x300, REG_ICR_HI = 0x310,
	REG_TIMER_INIT = 0x380, REG_TIMER_CUR = 0x390, REG_TIMER_DIV = 0x3e0,
	REG_END = 0x400,
};

#define SVR_ENABLE (1u << 8)
#define SVR_WMASK  0x3ffu       /* spurious vector, enable, focus check */
#define LDR_WMASK  0xff000000u
#define DFR_FIXED  0x0fffffffu  /* bits 27:0 read as ones */
#define DIV_WMASK  0xbu         /* bits 0, 1, 3 */

#define LVT_MASKED        (1u << 16)
#define LVT_DM(v)         (((v) >> 8) & 7)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
enum { TIMER_ONESHOT, TIMER_PERIODIC, TIMER_TSC_DEADLINE };

#define ICR_WMASK        0x000ccfffu /* vector, DM, dest mode, level, trigger, shorthand */
#define ICR_DM(v)        (((v) >> 8) & 7)
#define ICR_LOGICAL      (1u << 11)
#define ICR_ASSERT       (1u << 14)
#define ICR_LEVEL        (1u << 15)
#define ICR_SHORTHAND(v) (((v) >> 18) & 3)
enum { SH_NONE, SH_SELF, SH_ALL, SH_ALL_BUT_SELF };

#define ESR_SEND_ILLEGAL 0x20
#define ESR_RECV_ILLEGAL 0x40

/* The local vector table in register order, with what the guest may write
 * (delivery status and remote IRR are read-only and read as idle). */
enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_N };

static const struct {
	uint32_t offset, wmask;
} lvt_regs[LVT_N] = {
	[LVT_CMCI]    = { 0x2f0, 0x107ff }, /* vector, delivery mode, mask */
	[LVT_TIMER]   = { 0x320, 0x700ff }, /* vector, mask, timer mode */
	[LVT_THERMAL] = { 0x330, 0x107ff },
	[LVT_PERF]    = { 0x340, 0x107ff },
	[LVT_LINT0]   = { 0x350, 0x1a7ff }, /* + pin polarity, trigger mode */
	[LVT_LINT1]   = { 0x360, 0x1a7ff },
	[LVT_ERROR]   = { 0x370, 0x100ff }, /* vector, mask */
};

struct emu_lapic {
	struct emu_apic_bus *bus;
	uint8_t id;                /* APIC id = vCPU index */
	uint64_t tsc_hz;
	bool hw_enabled;           /* IA32_APIC_BASE bit 11 */

	uint32_t tpr, ldr, dfr, svr, icr_lo, icr_hi;
	uint32_t esr;              /* as the guest reads it */
	uint32_t esr_pending;      /* errors since the last ESR write */
	uint32_t lvt[LVT_N];
	uint32_t irr[8], isr[8], tmr[8];

	/* Timer. The count-down timer counts ref_count down from ref_ns; a
	 * periodic reload restarts it at the due time with timer_init. due_ns
	 * is the next expiry of whichever mode is armed. */
	uint32_t timer_init, timer_div;
	bool counting;
	uint32_t ref_count;
	uint64_t ref_ns, due_ns;
	uint64_t tsc_deadline;

	bool nmi, init;
	int sipi;
};

/* ---- 256-bit vector bitmaps (IRR, ISR, TMR) ---- */

static bool bit_test(const uint32_t *bm, uint8_t v) { return bm[v >> 5] >> (v & 31) & 1; }
static void bit_set(uint32_t *bm, uint8_t v) { bm[v >> 5] |= 1u << (v & 31); }
static void bit_clear(uint32_t *bm, uint8_t v) { bm[v >> 5] &= ~(1u << (v & 31)); }

static int highest(const uint32_t *bm)
{
	for (int i = 7; i >= 0; i--)
		if (bm[i])
			return i * 32 + 31 - __builtin_clz(bm[i]);
	return -1;
}

static uint32_t class_of(int vector) { return vector < 0 ? 0 : (uint32_t)vector & 0xf0; }

/* Processor priority: TPR, or the class of the highest in-service vector. */
static uint32_t ppr(const struct emu_lapic *l)
{
	uint32_t isr_class = class_of(highest(l->isr));

	return (l->tpr & 0xf0) >= isr_class ? l->tpr : isr_class;
}

/* Arbitration priority (only read back; lowest-priority delivery here does
 * not arbitrate). */
static uint32_t apr(const struct emu_lapic *l)
{
	uint32_t tpr_class = l->tpr & 0xf0;
	uint32_t irr_class = class_of(highest(l->irr)), isr_class = class_of(highest(l->isr));

	if (tpr_class >= irr_class && tpr_class > isr_class)
		return l->tpr;
	return MAX(tpr_class, MAX(irr_class, isr_class));
}

/* ---- errors and interrupt acceptance ---- */

static void error(struct emu_lapic *l, uint32_t bit)
{
	uint32_t lvt = l->lvt[LVT_ERROR];

	l->esr_pending |= bit;
	/* The error interrupt itself; an illegal error vector is not reported
	 * again (that would recurse). */
	if (!(lvt & LVT_MASKED) && (lvt & 0xff) >= 16) {
		bit_set(l->irr, lvt & 0xff);
		bit_clear(l->tmr, lvt & 0xff);
	}
}

/* A fixed interrupt into the IRR; vectors 0-15 are illegal. */
static bool set_irr(struct emu_lapic *l, uint8_t vector, bool level)
{
	if (vector < 16) {
		error(l, ESR_RECV_ILLEGAL);
		return false;
	}
	bit_set(l->irr, vector);
	if (level)
		bit_set(l->tmr, vector);
	else
		bit_clear(l->tmr, vector);
	return true;
}

static bool accepts_fixed(const struct emu_lapic *l)
{
	return l->hw_enabled && (l->svr & SVR_ENABLE);
}

/* A bus message for this LAPIC; true if it changed anything (worth a kick). */
static bool accept(struct emu_lapic *l, const struct emu_apic_msg *m)
{
	if (!l->hw_enabled)
		return false;
	switch (m->delivery) {
	case EMU_DM_FIXED:
	case EMU_DM_LOWEST:
		return accepts_fixed(l) && set_irr(l, m->vector, m->level);
	case EMU_DM_NMI:
		l->nmi = true;
		return true;
	case EMU_DM_INIT:
		l->init = true;
		l->sipi = -1; /* a SIPI from before this INIT is stale */
		return true;
	case EMU_DM_SIPI:
		l->sipi = m->vector;
		return true;
	default:
		/* SMI: no SMM. ExtINT: the engine takes the PIC's vector
		 * through LINT0. Reserved modes: nothing. */
		return false;
	}
}

static void eoi(struct emu_lapic *l)
{
	int v = highest(l->isr);

	if (v < 0)
		return;
	bit_clear(l->isr, (uint8_t)v);
	if (bit_test(l->tmr, (uint8_t)v) && l->bus && l->bus->eoi)
		l->bus->eoi(l->bus->opaque, (uint8_t)v);
}

/* ---- the APIC bus ---- */

static bool addressed(const struct emu_lapic *l, unsigned index, const struct emu_apic_msg *m)
{
	uint8_t dest = m->dest & 0xff, ldr = l->ldr >> 24;

	switch (m->shorthand & 3) {
	case SH_SELF:
		return index == m->source;
	case SH_ALL:
		return true;
	case SH_ALL_BUT_SELF:
		return index != m->source;
	}
	if (dest == 0xff)
		return true; /* broadcast, physical or logical */
	if (!m->logical)
		return dest == l->id;
	if (l->dfr >> 28 == 0) /* cluster model: cluster in 7:4, members in 3:0 */
		return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf);
	return ldr & dest; /* flat model: one bit per LAPIC */
}

static void deliver(struct emu_apic_bus *bus, unsigned i, const struct emu_apic_msg *m)
{
	if (accept(bus->lapics[i], m) && bus->kick)
		bus->kick(bus->opaque, i);
}

void emu_apic_bus_send(struct emu_apic_bus *bus, const struct emu_apic_msg *m)
{
	if (m->delivery == EMU_DM_LOWEST) {
		/* Lowest priority: the lowest-numbered LAPIC in the set that
		 * takes fixed interrupts at all. */
		for (unsigned i = 0; i < bus->n; i++) {
			struct emu_lapic *l = bus->lapics[i];

			if (l && accepts_fixed(l) && addressed(l, i, m)) {
				deliver(bus, i, m);
				return;
			}
		}
		return;
	}
	for (unsigned i = 0; i < bus->n; i++)
		if (bus->lapics[i] && addressed(bus->lapics[i], i, m))
			deliver(bus, i, m);
}

/* ICR low dword written: send the IPI it describes. IPIs are always edge:
 * a level-triggered IPI would make its EOI reach the IOAPIC. */
static void send_ipi(struct emu_lapic *l)
{
	uint32_t icr = l->icr_lo;
	struct emu_apic_msg m = {
		.vector = icr & 0xff,
		.delivery = ICR_DM(icr),
		.logical = icr & ICR_LOGICAL,
		.dest = l->icr_hi >> 24,
		.shorthand = ICR_SHORTHAND(icr),
		.source = l->id,
	};

	if (m.delivery == EMU_DM_INIT && (icr & ICR_LEVEL) && !(icr & ICR_ASSERT))
		return; /* INIT level de-assert: nothing to do */
	if ((m.delivery == EMU_DM_FIXED || m.delivery == EMU_DM_LOWEST) && m.vector < 16) {
		error(l, ESR_SEND_ILLEGAL);
		return;
	}
	if (l->bus)
		emu_apic_bus_send(l->bus, &m);
	else if (addressed(l, l->id, &m)) /* a LAPIC on its own */
		accept(l, &m);
}

/* ---- the timer ---- */

static unsigned timer_mode(const struct emu_lapic *l) { return LVT_TIMER_MODE(l->lvt[LVT_TIMER]); }

/* Divide configuration bits 3,1:0 -> log2 of the divisor: 0 -> /2 ... 6 -> /128, 7 -> /1. */
static unsigned timer_shift(const struct emu_lapic *l)
{
	uint32_t code = (l->timer_div & 3) | (l->timer_div >> 1 & 4);

	return (code + 1) & BUS_SHIFT_MAX;
}

/* a + b, never reaching EMU_NO_DEADLINE. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a >= EMU_NO_DEADLINE - 1 - b ? EMU_NO_DEADLINE - 1 : a + b;
}

static void timer_stop(struct emu_lapic *l)
{
	l->counting = false;
	l->due_ns = EMU_NO_DEADLINE;
}

static void timer_start(struct emu_lapic *l, uint32_t count, uint64_t now)
{
	l->counting = true;
	l->ref_ns = now;
	l->ref_count = count;
	l->due_ns = add_sat(now, (uint64_t)count << timer_shift(l));
}

static uint32_t timer_current(const struct emu_lapic *l, uint64_t now)
{
	uint64_t ticks;

	if (!l->counting || !l->timer_init)
		return 0;
	ticks = now > l->ref_ns ? (now - l->ref_ns) >> timer_shift(l) : 0;
	if (ticks < l->ref_count)
		return l->ref_count - (uint32_t)ticks;
	/* Expired and not yet ticked: periodic has reloaded, one-shot is 0. */
	if (timer_mode(l) == TIMER_PERIODIC)
		return l->timer_init - (uint32_t)((ticks - l->ref_count) % l->timer_init);
	return 0;
}

static void timer_set_initial(struct emu_lapic *l, uint32_t v, uint64_t now)
{
	if (timer_mode(l) == TIMER_TSC_DEADLINE)
		return;
	l->timer_init = v;
	if (v)
		timer_start(l, v, now);
	else
		timer_stop(l);
}

/* A new divisor: what is left of the count runs on at the new rate. */
static void timer_set_divide(struct emu_lapic *l, uint32_t v, uint64_t now)
{
	uint32_t left;

	emu_lapic_tick(l, now); /* an expiry due by now happens at the old rate */
	left = timer_current(l, now);
	l->timer_div = v & DIV_WMASK;
	if (l->counting && left)
		timer_start(l, left, now);
}

/* Guest TSC value -> ns, rounded up so the TSC has reached it by then. */
static uint64_t tsc_to_ns(const struct emu_lapic *l, uint64_t tsc)
{
	unsigned __int128 ns = ((unsigned __int128)tsc * 1000000000u + l->tsc_hz - 1) / l->tsc_hz;

	return ns >= EMU_NO_DEADLINE - 1 ? EMU_NO_DEADLINE - 1 : (uint64_t)ns;
}

uint64_t emu_lapic_tick(struct emu_lapic *l, uint64_t now_ns)
{
	uint32_t lvt = l->lvt[LVT_TIMER];

	if (l->due_ns == EMU_NO_DEADLINE || now_ns < l->due_ns)
		return l->due_ns;
	if (!(lvt & LVT_MASKED))
		set_irr(l, lvt & 0xff, false);
	if (LVT_TIMER_MODE(lvt) == TIMER_TSC_DEADLINE) {
		l->tsc_deadline = 0;
		l->due_ns = EMU_NO_DEADLINE;
	} else if (LVT_TIMER_MODE(lvt) == TIMER_PERIODIC && l->counting) {
		/* Reload from the due time, keeping the phase, unless a whole
		 * period was missed: then fire once and re-arm from now. */
		uint64_t period = (uint64_t)l->timer_init << timer_shift(l);

		timer_start(l, l->timer_init, now_ns - l->due_ns < period ? l->due_ns : now_ns);
	} else {
		timer_stop(l);
	}
	return l->due_ns;
}

void emu_lapic_set_tsc_deadline(struct emu_lapic *l, uint64_t tsc, uint64_t now_ns)
{
	if (!l->hw_enabled || timer_mode(l) != TIMER_TSC_DEADLINE)
		return; /* the MSR is ignored in the other modes */
	l->tsc_deadline = tsc;
	l->due_ns = tsc ? tsc_to_ns(l, tsc) : EMU_NO_DEADLINE;
	emu_lapic_tick(l, now_ns); /* a deadline already passed fires now */
}

uint64_t emu_lapic_get_tsc_deadline(const struct emu_lapic *l)
{
	return timer_mode(l) == TIMER_TSC_DEADLINE ? l->tsc_deadline : 0;
}

/* ---- registers ---- */

static int lvt_index(uint32_t offset)
{
	for (int i = 0; i < LVT_N; i++)
		if (lvt_regs[i].offset == offset)
			return i;
	return -1;
}

static void lvt_write(struct emu_lapic *l, int i, uint32_t v, uint64_t now)
{
	v &= lvt_regs[i].wmask;
	if (!(l->svr & SVR_ENABLE))
		v |= LVT_MASKED; /* a software-disabled LAPIC keeps them masked */
	if (i == LVT_TIMER) {
		if (LVT_TIMER_MODE(v) == 3)
			v &= ~(3u << 17); /* reserved mode: one-shot */
		emu_lapic_tick(l, now); /* an expiry due by now sees the old LVT */
		/* Entering or leaving TSC-deadline mode disarms the timer. */
		if ((LVT_TIMER_MODE(v) == TIMER_TSC_DEADLINE) != (timer_mode(l) == TIMER_TSC_DEADLINE)) {
			timer_stop(l);
			l->timer_init = 0;
			l->tsc_deadline = 0;
		}
	}
	l->lvt[i] = v;
}

static void svr_write(struct emu_lapic *l, uint32_t v)
{
	l->svr = v & SVR_WMASK;
	if (!(l->svr & SVR_ENABLE))
		for (int i = 0; i < LVT_N; i++)
			l->lvt[i] |= LVT_MASKED;
}

uint32_t emu_lapic_read(struct emu_lapic *l, uint32_t offset, uint64_t now_ns)
{
	int lvt;

	if (!l->hw_enabled || (offset & 0xf) || offset >= REG_END)
		return 0;
	if (offset >= REG_ISR && offset < REG_ISR + 0x80)
		return l->isr[(offset - REG_ISR) >> 4];
	if (offset >= REG_TMR && offset < REG_TMR + 0x80)
		return l->tmr[(offset - REG_TMR) >> 4];
	if (offset >= REG_IRR && offset < REG_IRR + 0x80)
		return l->irr[(offset - REG_IRR) >> 4];
	lvt = lvt_index(offset);
	if (lvt >= 0)
		return l->lvt[lvt];
	switch (offset) {
	case REG_ID:         return (uint32_t)l->id << 24;
	case REG_VERSION:    return APIC_VERSION;
	case REG_TPR:        return l->tpr;
	case REG_APR:        return apr(l);
	case REG_PPR:        return ppr(l);
	case REG_LDR:        return l->ldr;
	case REG_DFR:        return l->dfr;
	case REG_SVR:        return l->svr;
	case REG_ESR:        return l->esr;
	case REG_ICR_LO:     return l->icr_lo; /* delivery status: idle */
	case REG_ICR_HI:     return l->icr_hi;
	case REG_TIMER_INIT: return l->timer_init;
	case REG_TIMER_CUR:  return timer_current(l, now_ns);
	case REG_TIMER_DIV:  return l->timer_div;
	default:             return 0; /* EOI is write-only; the rest reserved */
	}
}

void emu_lapic_write(struct emu_lapic *l, uint32_t offset, uint32_t v, uint64_t now_ns)
{
	int lvt;

	if (!l->hw_enabled || (offset & 0xf) || offset >= REG_END)
		return;
	lvt = lvt_index(offset);
	if (lvt >= 0) {
		lvt_write(l, lvt, v, now_ns);
		return;
	}
	switch (offset) {
	case REG_TPR:
		l->tpr = v & 0xff;
		break;
	case REG_EOI:
		eoi(l);
		break;
	case REG_LDR:
		l->ldr = v & LDR_WMASK;
		break;
	case REG_DFR:
		l->dfr = v | DFR_FIXED;
		break;
	case REG_SVR:
		svr_write(l, v);
		break;
	case REG_ESR:
		/* Latch the errors seen since the last write, start afresh. */
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		break;
	case REG_ICR_HI:
		l->icr_hi = v & 0xff000000u;
		break;
	case REG_ICR_LO:
		l->icr_lo = v & ICR_WMASK;
		send_ipi(l);
		break;
	case REG_TIMER_INIT:
		timer_set_initial(l, v, now_ns);
		break;
	case REG_TIMER_DIV:
		timer_set_divide(l, v, now_ns);
		break;
	default:
		break; /* ID (fixed = vCPU index), version, APR, PPR, ISR, TMR,
			* IRR, current count: read-only; the rest reserved */
	}
}

/* ---- lifecycle, MSRs, the engine's side ---- */

/* Register and timer state of power-on / INIT. */
static void regs_reset(struct emu_lapic *l)
{
	l->tpr = l->ldr = l->icr_lo = l->icr_hi = 0;
	l->dfr = 0xffffffffu;
	l->svr = 0xff;
	l->esr = l->esr_pending = 0;
	for (int i = 0; i < LVT_N; i++)
		l->lvt[i] = LVT_MASKED;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->timer_init = l->timer_div = 0;
	l->tsc_deadline = 0;
	timer_stop(l);
}

struct emu_lapic *emu_lapic_create(struct emu_apic_bus *bus, unsigned id, uint64_t tsc_hz)
{
	struct emu_lapic *l;

	if (id >= 0xff || !tsc_hz) /* 0xff is the broadcast destination */
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->bus = bus;
	l->id = (uint8_t)id;
	l->tsc_hz = tsc_hz;
	l->sipi = -1;
	emu_lapic_reset(l);
	return l;
}

void emu_lapic_destroy(struct emu_lapic *l)
{
	free(l);
}

void emu_lapic_reset(struct emu_lapic *l)
{
	regs_reset(l);
	l->hw_enabled = true;
}

uint64_t emu_lapic_get_base(const struct emu_lapic *l)
{
	return APIC_BASE_ADDR | (l->id == 0 ? BASE_BSP : 0) | (l->hw_enabled ? BASE_ENABLE : 0);
}

/* Only the global enable bit counts: the base cannot move, the BSP flag is
 * fixed and x2APIC is not offered. Disabling is a reset of the registers;
 * re-enabling finds them in their power-on state. */
void emu_lapic_set_base(struct emu_lapic *l, uint64_t v)
{
	bool enable = v & BASE_ENABLE;

	if (l->hw_enabled && !enable)
		regs_reset(l);
	l->hw_enabled = enable;
}

uint8_t emu_lapic_get_cr8(const struct emu_lapic *l)
{
	return (l->tpr >> 4) & 0xf;
}

void emu_lapic_set_cr8(struct emu_lapic *l, uint8_t v)
{
	l->tpr = (uint32_t)(v & 0xf) << 4; /* TPR[3:0] cleared, as MOV CR8 does */
}

void emu_lapic_accept(struct emu_lapic *l, const struct emu_apic_msg *msg)
{
	accept(l, msg);
}

int emu_lapic_pending(const struct emu_lapic *l)
{
	int v = highest(l->irr);

	return v >= 0 && class_of(v) > (ppr(l) & 0xf0) ? v : -1;
}

void emu_lapic_ack(struct emu_lapic *l, uint8_t vector)
{
	if (!bit_test(l->irr, vector))
		return;
	bit_clear(l->irr, vector);
	bit_set(l->isr, vector);
}

bool emu_lapic_take_nmi(struct emu_lapic *l)
{
	bool v = l->nmi;

	l->nmi = false;
	return v;
}

bool emu_lapic_take_init(struct emu_lapic *l)
{
	bool v = l->init;

	l->init = false;
	return v;
}

int emu_lapic_take_sipi(struct emu_lapic *l)
{
	int v = l->sipi;

	l->sipi = -1;
	return v;
}

/* The PIC's INTR reaches the CPU through LINT0 in ExtINT mode, or directly
 * when the LAPIC is disabled (hardware or software), as for a BSP in
 * virtual-wire mode. */
bool emu_lapic_accepts_extint(const struct emu_lapic *l)
{
	uint32_t lint0 = l->lvt[LVT_LINT0];

	if (!l->hw_enabled || !(l->svr & SVR_ENABLE))
		return true;
	return !(lint0 & LVT_MASKED) && LVT_DM(lint0) == EMU_DM_EXTINT;
}
