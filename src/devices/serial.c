/* 16550A UART: interrupt driven both ways. Transmit is immediate (the THR
 * is always empty again at once); receive is a FIFO fed by the console. */
#include "kumo/devices.h"
#include "kumo/log.h"
#include "kumo/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

enum { RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR };

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_RLSI  0x04
#define IER_MSI   0x08
#define IIR_NONE  0x01
#define IIR_MSI   0x00
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_FIFO  0x01
#define FCR_CLR_RX 0x02
#define LCR_DLAB  0x80
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

struct serial {
	struct machine *m;
	pthread_mutex_t lock;
	unsigned irq;
	int irq_level;
	struct serial_backend be;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm, msr;
	bool thr_ipending;
	uint8_t rx[SERIAL_RX_FIFO];
	size_t rx_head, rx_count;
};

static uint8_t pending_iir(const struct serial *s)
{
	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & 0x0f))
		return IIR_MSI;
	return IIR_NONE;
}

static void update_irq(struct serial *s)
{
	int level = pending_iir(s) != IIR_NONE;

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (machine_irq_line(s->m, s->irq, level))
		log_warn("serial: cannot drive IRQ %u", s->irq);
}

static void rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_count == SERIAL_RX_FIFO)
		return; /* overrun: the byte is lost, as on hardware */
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = c;
	s->rx_count++;
}

static uint8_t modem_status(const struct serial *s)
{
	uint8_t v = s->msr & 0x0f;

	if (!(s->mcr & MCR_LOOP))
		return v | MSR_DCD | MSR_DSR | MSR_CTS;
	if (s->mcr & MCR_DTR)  v |= MSR_DSR;
	if (s->mcr & MCR_RTS)  v |= MSR_CTS;
	if (s->mcr & MCR_OUT1) v |= MSR_RI;
	if (s->mcr & MCR_OUT2) v |= MSR_DCD;
	return v;
}

static uint8_t serial_read(struct serial *s, unsigned reg)
{
	uint8_t v = 0;

	switch (reg) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_count) {
			bool was_full = s->rx_count == SERIAL_RX_FIFO;
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
			s->rx_count--;
			if (was_full && s->be.rx_room)
				s->be.rx_room(s->be.opaque);
		}
		break;
	case IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case IIR_FCR:
		v = pending_iir(s);
		if (v == IIR_THRI)
			s->thr_ipending = false; /* reading IIR acknowledges THRE */
		if (s->fcr & FCR_FIFO)
			v |= IIR_FIFO;
		break;
	case LCR:
		return s->lcr;
	case MCR:
		return s->mcr;
	case LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case MSR:
		v = modem_status(s);
		s->msr &= ~0x0f; /* delta bits clear on read */
		break;
	case SCR:
		return s->scr;
	}
	return v;
}

static void serial_write(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		if (s->mcr & MCR_LOOP)
			rx_push(s, v);
		else if (s->be.tx)
			s->be.tx(s->be.opaque, &v, 1);
		s->thr_ipending = true; /* sent at once: THR is empty again */
		break;
	case IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thr_ipending = true;
		s->ier = v & 0x0f;
		break;
	case IIR_FCR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLR_RX) {
			bool was_full = s->rx_count == SERIAL_RX_FIFO;
			s->rx_count = 0;
			if (was_full && s->be.rx_room)
				s->be.rx_room(s->be.opaque);
		}
		break;
	case LCR:
		s->lcr = v;
		break;
	case MCR:
		s->mcr = v & 0x1f;
		break;
	case SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct serial *s = opaque;

	if (len != 1 || offset > SCR) {
		if (!is_write)
			for (unsigned i = 0; i < len; i++)
				data[i] = 0xff;
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		serial_write(s, offset, data[0]);
	else
		data[0] = serial_read(s, offset);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = MIN(len, SERIAL_RX_FIFO - s->rx_count);
	for (size_t i = 0; i < n; i++)
		rx_push(s, buf[i]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_room(struct serial *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_RX_FIFO - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void serial_free(void *opaque)
{
	struct serial *s = opaque;

	pthread_mutex_destroy(&s->lock);
	free(s);
}

int serial_create(struct machine *m, uint16_t base, unsigned irq,
		  const struct serial_backend *be, struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->irq = irq;
	s->be = *be;
	s->dll = 12; /* 9600 baud until the guest says otherwise */
	s->lcr = 0x03;
	s->mcr = MCR_OUT2;
	pthread_mutex_init(&s->lock, NULL);
	err = machine_own(m, serial_free, s);
	if (!err)
		err = io_bus_register(&m->pio, base, 8, serial_io, s, "serial");
	if (!err)
		*out = s;
	return err;
}
