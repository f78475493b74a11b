/* The 8254 PIT: three 16-bit down-counters clocked at 1.193182 MHz, ports
 * 0x40-0x42 (counters) and 0x43 (control word), plus port B at 0x61 for
 * channel 2's gate and output.
 *
 * A counter's state is a function of time: the count n loaded at base_ns
 * (base_ticks clocks already counted before it, for a gate that paused
 * the count), so reads need no ticking. Only channel 0 drives a line,
 * IRQ 0, and emu_pit_tick() reports its rising edges: mode 0 holds the line
 * high from terminal count until the channel is written again; modes 2, 3
 * and 4 give a pulse (high, then low) at each rising edge of OUT, which
 * is all an edge-triggered input sees. Channels 0 and 1 have their gates
 * tied high, so their modes 1 and 5 never start, as on a PC.
 *
 * Simplifications: BCD counting is refused (the counter counts binary and
 * the status byte says binary); a new count written to a running mode 2
 * or 3 counter restarts it at once instead of at the end of the period. */
#include "irqchip.h"

#include <stdlib.h>

#define NS_PER_S 1000000000ULL
/* Channel 0's periodic edges come at least this far apart (~200 us, the
 * limit KVM's in-kernel PIT puts on the period), so a guest cannot ask
 * for an interrupt every microsecond. */
#define MIN_GAP_TICKS (EMU_PIT_HZ / 5000)

enum { ACC_LATCH, ACC_LO, ACC_HI, ACC_LOHI };

#define PORTB_GATE2   0x01
#define PORTB_WRITE   0x0f /* gate 2, speaker, parity and channel checks */
#define PORTB_REFRESH 0x10
#define PORTB_OUT2    0x20

struct channel {
	uint8_t mode;        /* 0-5 */
	uint8_t access;      /* ACC_LO, ACC_HI or ACC_LOHI */
	bool gate;
	bool has_cr;         /* a count was written since the control word */
	bool loaded;         /* the count is in the counting element */
	bool null_count;     /* written but not loaded yet (status bit 6) */
	uint32_t cr;         /* count last written (or held), 1..65536 */
	uint32_t n;          /* count being counted, 1..65536 */
	uint64_t base_ns;    /* counting started or resumed here */
	uint64_t base_ticks; /* clocks counted before base_ns */
	bool write_hi;       /* lo/hi access: the next write is the high byte */
	uint8_t write_lo;
	bool read_hi;        /* lo/hi access: the next read is the high byte */
	bool count_latched, status_latched;
	uint16_t latch;
	uint8_t status;
	uint64_t edge;       /* channel 0, modes 2/3: index of the next rising edge */
	bool fired;          /* channel 0, modes 0/4: terminal count reported */
};

struct emu_pit {
	struct channel ch[3];
	struct emu_pit_ops ops;
	bool irq0;
	uint8_t port_b;      /* 0x61 bits 3:0 as written */
	bool refresh;        /* 0x61 bit 4: toggles on every read */
};

/* Whole clocks in ns; split at whole seconds so nothing overflows. */
static uint64_t ns_to_ticks(uint64_t ns)
{
	return ns / NS_PER_S * EMU_PIT_HZ + ns % NS_PER_S * EMU_PIT_HZ / NS_PER_S;
}

/* The first nanosecond by which t clocks have passed (saturating). */
static uint64_t ticks_to_ns(uint64_t t)
{
	uint64_t s = t / EMU_PIT_HZ, r = t % EMU_PIT_HZ;

	if (s >= UINT64_MAX / NS_PER_S)
		return UINT64_MAX;
	return s * NS_PER_S + (r * NS_PER_S + EMU_PIT_HZ - 1) / EMU_PIT_HZ;
}

static bool counting(const struct channel *ch)
{
	return ch->loaded && (ch->gate || ch->mode == 1 || ch->mode == 5);
}

/* Clocks counted since the count was loaded. */
static uint64_t elapsed(const struct channel *ch, uint64_t now)
{
	if (!counting(ch) || now <= ch->base_ns)
		return ch->base_ticks;
	return ch->base_ticks + ns_to_ticks(now - ch->base_ns);
}

/* When elapsed() reaches t clocks (t >= base_ticks), counting steadily. */
static uint64_t time_at(const struct channel *ch, uint64_t t)
{
	uint64_t d = ticks_to_ns(t - ch->base_ticks);

	return d > UINT64_MAX - ch->base_ns ? UINT64_MAX : ch->base_ns + d;
}

static uint16_t count_now(const struct channel *ch, uint64_t now)
{
	uint64_t e, ph, high;

	if (!ch->loaded)
		return ch->cr;
	e = elapsed(ch, now);
	switch (ch->mode) {
	case 2: /* n, n-1, ..., 1, reload */
		return ch->n - e % ch->n;
	case 3: /* by twos from n (made even), once per half period */
		ph = e % ch->n;
		high = (ch->n + 1) / 2;
		return (ch->n & ~1u) - 2 * (ph < high ? ph : ph - high);
	default: /* 0, 1, 4, 5: down past 0 and around */
		return ch->n - e;
	}
}

static bool out_now(const struct channel *ch, uint64_t now)
{
	uint64_t e;

	if (!ch->loaded)
		return ch->mode != 0;
	e = elapsed(ch, now);
	switch (ch->mode) {
	case 0: case 1: return e >= ch->n;
	case 2: return !ch->gate || e % ch->n != ch->n - 1;
	case 3: return !ch->gate || e % ch->n < (ch->n + 1) / 2;
	default: return e != ch->n; /* 4, 5: low for the clock of terminal count */
	}
}

static void set_irq0(struct emu_pit *p, bool level)
{
	if (level == p->irq0)
		return;
	p->irq0 = level;
	if (p->ops.irq0)
		p->ops.irq0(p->ops.opaque, level);
}

/* The count register goes into the counting element. */
static void start(struct channel *ch, uint64_t now)
{
	ch->n = ch->cr;
	ch->loaded = true;
	ch->null_count = false;
	ch->base_ns = now;
	ch->base_ticks = 0;
	ch->edge = 1;
	ch->fired = false;
}

static void set_gate(struct channel *ch, bool gate, uint64_t now)
{
	if (gate == ch->gate)
		return;
	ch->base_ticks = elapsed(ch, now);
	ch->base_ns = now;
	ch->gate = gate;
	if (!gate)
		return;
	if (((ch->mode == 1 || ch->mode == 5) && ch->has_cr) ||
	    ((ch->mode == 2 || ch->mode == 3) && ch->loaded))
		start(ch, now); /* a rising gate (re)triggers these modes */
}

static void latch_count(struct channel *ch, uint64_t now)
{
	if (ch->count_latched)
		return; /* the first latch holds until read */
	ch->latch = count_now(ch, now);
	ch->count_latched = true;
}

static void latch_status(struct channel *ch, uint64_t now)
{
	if (ch->status_latched)
		return;
	ch->status = out_now(ch, now) << 7 | ch->null_count << 6 |
		     ch->access << 4 | ch->mode << 1;
	ch->status_latched = true;
}

/* Read-back: bit 5 clear latches counts, bit 4 clear latches status,
 * bits 3:1 select channels 2, 1, 0. */
static void read_back(struct emu_pit *p, uint8_t v, uint64_t now)
{
	for (unsigned i = 0; i < 3; i++) {
		if (!(v & (2u << i)))
			continue;
		if (!(v & 0x20))
			latch_count(&p->ch[i], now);
		if (!(v & 0x10))
			latch_status(&p->ch[i], now);
	}
}

static void control_write(struct emu_pit *p, uint8_t v, uint64_t now)
{
	unsigned sel = v >> 6, access = (v >> 4) & 3, mode = (v >> 1) & 7;
	struct channel *ch;

	if (sel == 3) {
		read_back(p, v, now);
		return;
	}
	ch = &p->ch[sel];
	if (access == ACC_LATCH) {
		latch_count(ch, now);
		return;
	}
	ch->mode = mode > 5 ? mode - 4 : mode; /* 6, 7 are 2, 3 */
	ch->access = access;
	ch->has_cr = ch->loaded = false;
	ch->null_count = true;
	ch->write_hi = ch->read_hi = false;
	ch->count_latched = ch->status_latched = false;
	if (sel == 0)
		set_irq0(p, false);
}

static void count_write(struct emu_pit *p, unsigned i, uint8_t v, uint64_t now)
{
	struct channel *ch = &p->ch[i];
	uint32_t count;
	uint16_t held;

	switch (ch->access) {
	case ACC_LO: count = v; break;
	case ACC_HI: count = (uint32_t)v << 8; break;
	default:
		ch->write_hi = !ch->write_hi;
		if (ch->write_hi) {
			ch->write_lo = v;
			if (ch->mode == 0) { /* the first byte stops mode 0 */
				held = count_now(ch, now);
				ch->cr = held ? held : 0x10000;
				ch->loaded = false;
			}
			if (i == 0)
				set_irq0(p, false);
			return;
		}
		count = ch->write_lo | (uint32_t)v << 8;
		break;
	}
	ch->cr = count ? count : 0x10000;
	ch->has_cr = true;
	ch->null_count = true;
	if (ch->mode != 1 && ch->mode != 5)
		start(ch, now); /* 1 and 5 wait for a rising gate */
	if (i == 0)
		set_irq0(p, false);
}

static uint8_t count_read(struct channel *ch, uint64_t now)
{
	uint16_t v;

	if (ch->status_latched) {
		ch->status_latched = false;
		return ch->status;
	}
	v = ch->count_latched ? ch->latch : count_now(ch, now);
	if (ch->access == ACC_LOHI) {
		ch->read_hi = !ch->read_hi;
		if (ch->read_hi)
			return v & 0xff;
	}
	ch->count_latched = false;
	return ch->access == ACC_LO ? v & 0xff : v >> 8;
}

uint8_t emu_pit_read(struct emu_pit *p, uint16_t port, uint64_t now)
{
	switch (port) {
	case 0x40: case 0x41: case 0x42:
		return count_read(&p->ch[port - 0x40], now);
	case 0x61:
		p->refresh = !p->refresh;
		return p->port_b | (p->refresh ? PORTB_REFRESH : 0) |
		       (out_now(&p->ch[2], now) ? PORTB_OUT2 : 0);
	default: /* 0x43 is write-only */
		return 0xff;
	}
}

void emu_pit_write(struct emu_pit *p, uint16_t port, uint8_t v, uint64_t now)
{
	switch (port) {
	case 0x40: case 0x41: case 0x42:
		count_write(p, port - 0x40, v, now);
		break;
	case 0x43:
		control_write(p, v, now);
		break;
	case 0x61:
		p->port_b = v & PORTB_WRITE;
		set_gate(&p->ch[2], v & PORTB_GATE2, now);
		break;
	default:
		break;
	}
}

/* Periodic: one pulse per tick that finds an edge due. Edges missed by a
 * late tick are dropped: the next is the first one after now (and at
 * least MIN_GAP_TICKS on), on the counter's own phase, so reads of the
 * count agree with the interrupts. */
static uint64_t tick_periodic(struct emu_pit *p, struct channel *ch, uint64_t now)
{
	uint64_t due = time_at(ch, ch->edge * ch->n);

	if (now < due)
		return due;
	set_irq0(p, true);
	set_irq0(p, false);
	ch->edge = (elapsed(ch, now) + MIN_GAP_TICKS) / ch->n + 1;
	return time_at(ch, ch->edge * ch->n);
}

static uint64_t tick_one_shot(struct emu_pit *p, struct channel *ch, uint64_t now)
{
	uint64_t due = time_at(ch, ch->n);

	if (ch->fired)
		return EMU_NO_DEADLINE;
	if (now < due)
		return due;
	ch->fired = true;
	set_irq0(p, true);
	if (ch->mode == 4)
		set_irq0(p, false); /* the strobe's rising edge: a pulse */
	return EMU_NO_DEADLINE;
}

uint64_t emu_pit_tick(struct emu_pit *p, uint64_t now)
{
	struct channel *ch = &p->ch[0];

	if (!ch->loaded)
		return EMU_NO_DEADLINE;
	switch (ch->mode) {
	case 0: case 4: return tick_one_shot(p, ch, now);
	case 2: case 3: return tick_periodic(p, ch, now);
	default: return EMU_NO_DEADLINE; /* 1, 5: the gate never rises */
	}
}

/* Power-on: nothing programmed, every channel waiting for a control word;
 * gates 0 and 1 tied high, gate 2 low (port B clear). */
struct emu_pit *emu_pit_create(const struct emu_pit_ops *ops, uint64_t now)
{
	struct emu_pit *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (ops)
		p->ops = *ops;
	for (unsigned i = 0; i < 3; i++) {
		p->ch[i].access = ACC_LOHI;
		p->ch[i].cr = 0x10000;
		p->ch[i].gate = i < 2;
		p->ch[i].base_ns = now;
	}
	return p;
}

void emu_pit_destroy(struct emu_pit *p)
{
	free(p);
}
