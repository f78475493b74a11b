/* The cascaded 8259A pair of a PC: master at 0x20/0x21, slave at 0xa0/0xa1
 * on the master's IR2, and the edge/level control registers (ELCR) at
 * 0x4d0/0x4d1.
 *
 * What is modelled: the ICW1-ICW4 sequence (vector base, single/cascade,
 * AEOI; 8086 vectors always), OCW1 (IMR), every OCW2 command (EOIs,
 * rotations, set priority), OCW3 (IRR/ISR select, poll, special mask mode),
 * edge or level triggering per ELCR, spurious IR7 on an acknowledge with
 * nothing to deliver. Left out: 8080 mode (ICW4 bit 0 clear still gives
 * 8086 vectors), buffered mode, special fully nested mode and ICW1's LTIM
 * (the ELCR decides, as on PIIX and later chipsets).
 *
 * Edge inputs latch: a rising edge sets IRR and it stays set until the
 * acknowledge. Level inputs are not latched: IRR follows the line. The
 * master's IR2 follows the slave's INT output like a level input. */
#include "irqchip.h"

#include <stdlib.h>

#define PIC_MASTER 0
#define PIC_SLAVE  1
#define CASCADE_IR 2

/* IRQs the chipset never lets be level-triggered: 0, 1, 2 and 8, 13. */
static const uint8_t elcr_writable[2] = { 0xf8, 0xde };

struct chip {
	uint8_t irr, isr, imr;
	uint8_t lines;      /* input levels as last set */
	uint8_t elcr;       /* 1 = level-triggered */
	uint8_t base;       /* vector of IR0 (ICW2, bits 7:3) */
	uint8_t icw3;
	uint8_t prio;       /* IR with the highest priority (rotations move it) */
	uint8_t init_step;  /* 0 ready; else the ICW the next data write is */
	bool icw4_wanted, single;
	bool aeoi, rotate_on_aeoi;
	bool read_isr, poll, special_mask;
};

struct emu_pic {
	struct chip c[2];
	struct emu_pic_ops ops;
	bool intr;
};

/* The IR of mask with the highest priority, or -1 for an empty mask. */
static int highest(const struct chip *c, uint8_t mask)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned ir = (c->prio + i) & 7;

		if (mask & (1u << ir))
			return ir;
	}
	return -1;
}

static unsigned rank(const struct chip *c, int ir)
{
	return (unsigned)(ir - c->prio) & 7;
}

/* The IR this chip would request the CPU for now, or -1: the highest
 * unmasked request above everything in service (in special mask mode,
 * masked levels in service do not block). */
static int pending(const struct chip *c)
{
	int req = highest(c, c->irr & ~c->imr);
	uint8_t busy = c->special_mask ? c->isr & ~c->imr : c->isr;
	int srv = highest(c, busy);

	if (req < 0 || (srv >= 0 && rank(c, req) >= rank(c, srv)))
		return -1;
	return req;
}

static void set_line(struct chip *c, unsigned ir, bool level)
{
	uint8_t bit = 1u << ir;

	if (c->elcr & bit)
		c->irr = level ? c->irr | bit : c->irr & ~bit;
	else if (level && !(c->lines & bit))
		c->irr |= bit; /* a rising edge */
	c->lines = level ? c->lines | bit : c->lines & ~bit;
}

/* Cascade the slave's INT into the master's IR2 (a level input whatever
 * the ELCR says), then drive INTR. */
static void update(struct emu_pic *p)
{
	struct chip *m = &p->c[PIC_MASTER];
	uint8_t ir2 = 1u << CASCADE_IR;
	bool level;

	m->irr = pending(&p->c[PIC_SLAVE]) >= 0 ? m->irr | ir2 : m->irr & ~ir2;
	level = pending(&p->c[PIC_MASTER]) >= 0;
	if (level == p->intr)
		return;
	p->intr = level;
	if (p->ops.intr)
		p->ops.intr(p->ops.opaque, level);
}

/* The INTA (or poll) of one chip for IR ir: edge requests leave IRR;
 * the level goes in service unless automatic EOI. */
static void take(struct chip *c, int ir)
{
	uint8_t bit = 1u << ir;

	if (!(c->elcr & bit))
		c->irr &= ~bit;
	if (!c->aeoi)
		c->isr |= bit;
	else if (c->rotate_on_aeoi)
		c->prio = (ir + 1) & 7;
}

static bool slave_on_ir2(const struct chip *master)
{
	return !master->single && (master->icw3 & (1u << CASCADE_IR));
}

uint8_t emu_pic_ack(struct emu_pic *p)
{
	struct chip *m = &p->c[PIC_MASTER], *s = &p->c[PIC_SLAVE];
	int ir = pending(m);
	uint8_t vector;

	if (ir < 0)
		return m->base | 7; /* spurious: nothing goes in service */
	take(m, ir);
	vector = m->base | ir;
	if (ir == CASCADE_IR && slave_on_ir2(m)) {
		int sir = pending(s);

		if (sir < 0) {
			vector = s->base | 7;
		} else {
			take(s, sir);
			vector = s->base | sir;
		}
	}
	update(p);
	return vector;
}

bool emu_pic_intr(const struct emu_pic *p)
{
	return p->intr;
}

void emu_pic_set_irq(struct emu_pic *p, unsigned irq, bool level)
{
	if (irq >= 16 || irq == CASCADE_IR)
		return; /* IR2 is the cascade, not an ISA line */
	set_line(&p->c[irq / 8], irq % 8, level);
	update(p);
}

static void eoi(struct chip *c, int ir, bool rotate)
{
	if (ir < 0)
		return;
	c->isr &= ~(1u << ir);
	if (rotate)
		c->prio = (ir + 1) & 7;
}

/* OCW2: bits 7:5 are R, SL, EOI; bits 2:0 the level for the specific ones. */
static void ocw2(struct chip *c, uint8_t v)
{
	int level = v & 7;

	switch (v >> 5) {
	case 1: eoi(c, highest(c, c->isr), false); break; /* non-specific EOI */
	case 3: eoi(c, level, false); break;              /* specific EOI */
	case 5: eoi(c, highest(c, c->isr), true); break;  /* rotate on non-specific EOI */
	case 7: eoi(c, level, true); break;               /* rotate on specific EOI */
	case 4: c->rotate_on_aeoi = true; break;
	case 0: c->rotate_on_aeoi = false; break;
	case 6: c->prio = (level + 1) & 7; break;         /* set priority: level lowest */
	default: break;                                   /* 2: no operation */
	}
}

/* OCW3: bit 6 enables bit 5 (special mask), bit 2 polls, bit 1 enables
 * bit 0 (read ISR rather than IRR). */
static void ocw3(struct chip *c, uint8_t v)
{
	if (v & 0x02)
		c->read_isr = v & 0x01;
	if (v & 0x04)
		c->poll = true;
	if (v & 0x40)
		c->special_mask = v & 0x20;
}

/* ICW1 starts the sequence and resets the chip, edge sense included: an
 * edge input that is high now has to go low and high again to request. */
static void icw1(struct chip *c, uint8_t v)
{
	c->irr &= c->elcr;
	c->isr = 0;
	c->imr = 0;
	c->prio = 0;
	c->icw4_wanted = v & 0x01;
	c->single = v & 0x02;
	c->read_isr = c->poll = c->special_mask = false;
	c->rotate_on_aeoi = false;
	if (!c->icw4_wanted)
		c->aeoi = false;
	c->init_step = 2;
}

static void data_write(struct chip *c, uint8_t v)
{
	switch (c->init_step) {
	case 0:
		c->imr = v;
		return;
	case 2:
		c->base = v & 0xf8;
		c->init_step = !c->single ? 3 : c->icw4_wanted ? 4 : 0;
		return;
	case 3:
		c->icw3 = v;
		c->init_step = c->icw4_wanted ? 4 : 0;
		return;
	default: /* ICW4: bit 1 AEOI; 8086 mode, buffering and SFNM ignored */
		c->aeoi = v & 0x02;
		c->init_step = 0;
		return;
	}
}

/* The poll command's answer: 0x80 | IR for a request, which it also
 * acknowledges, or 0. */
static uint8_t poll_read(struct emu_pic *p, struct chip *c)
{
	int ir = pending(c);

	c->poll = false;
	if (ir < 0)
		return 0;
	take(c, ir);
	update(p);
	return 0x80 | ir;
}

uint8_t emu_pic_read(struct emu_pic *p, uint16_t port)
{
	struct chip *c;

	switch (port) {
	case 0x4d0: return p->c[PIC_MASTER].elcr;
	case 0x4d1: return p->c[PIC_SLAVE].elcr;
	case 0x20: case 0x21: c = &p->c[PIC_MASTER]; break;
	case 0xa0: case 0xa1: c = &p->c[PIC_SLAVE]; break;
	default: return 0xff;
	}
	if (c->poll)
		return poll_read(p, c);
	if (port & 1)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

static void set_elcr(struct emu_pic *p, unsigned n, uint8_t v)
{
	struct chip *c = &p->c[n];

	c->elcr = v & elcr_writable[n];
	/* A level input's IRR is its line; an edge input keeps what it has. */
	c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr);
}

void emu_pic_write(struct emu_pic *p, uint16_t port, uint8_t v)
{
	struct chip *c;

	switch (port) {
	case 0x4d0: set_elcr(p, PIC_MASTER, v); update(p); return;
	case 0x4d1: set_elcr(p, PIC_SLAVE, v); update(p); return;
	case 0x20: case 0x21: c = &p->c[PIC_MASTER]; break;
	case 0xa0: case 0xa1: c = &p->c[PIC_SLAVE]; break;
	default: return;
	}
	if (port & 1)
		data_write(c, v);
	else if (v & 0x10)
		icw1(c, v);
	else if (v & 0x08)
		ocw3(c, v);
	else
		ocw2(c, v);
	update(p);
}

/* Power-on state as a PC BIOS leaves it (kumo boots without one): vectors
 * 0x08 and 0x70, cascaded on IR2, everything masked, edge-triggered. */
struct emu_pic *emu_pic_create(const struct emu_pic_ops *ops)
{
	struct emu_pic *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (ops)
		p->ops = *ops;
	p->c[PIC_MASTER].base = 0x08;
	p->c[PIC_MASTER].icw3 = 1u << CASCADE_IR;
	p->c[PIC_SLAVE].base = 0x70;
	p->c[PIC_SLAVE].icw3 = CASCADE_IR;
	for (unsigned i = 0; i < 2; i++)
		p->c[i].imr = 0xff;
	return p;
}

void emu_pic_destroy(struct emu_pic *p)
{
	free(p);
}
