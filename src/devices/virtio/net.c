/* virtio-net (virtio 1.2, 5.1) on a tap: one receive queue (0) and one
 * transmit queue (1), both served on the machine's event-loop thread.
 *
 * Transmit: on a kick, pop chains, copy and check each header
 * (vnet_tx_prepare), writev header + frame to the tap, push with length 0.
 * At most TX_BUDGET chains a turn; more work goes through an eventfd of
 * our own so the loop serves the other devices in between.
 *
 * Receive: the tap is in the event loop while the guest has buffers. A
 * frame is read whole (the tap hands out one frame per read) into a
 * bounce buffer, then copied into as many receive chains as it needs
 * (MRG_RXBUF: num_buffers says how many; otherwise one chain that holds
 * the frame). When the guest has no buffers the frame waits, the tap
 * leaves the loop and a receive kick brings it back.
 *
 * Offloads: the guest is offered checksum/TSO/UFO in both directions as
 * far as the tap accepts them; the tap is told (TUNSETOFFLOAD) what the
 * guest negotiated to receive. */
#include "kumo/devices.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/tap.h"
#include "kumo/virtio.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NET_QUEUE_SIZE 256
#define RXQ 0
#define TXQ 1
#define TX_BUDGET 256           /* chains a turn */
#define RX_BUDGET 64            /* frames a turn (the tap stays readable) */
#define RX_CHAINS 64            /* receive chains held for one frame */
#define RX_IOVS (2 * VIRTQ_MAX_SEGS)
#define VIRTIO_NET_S_LINK_UP 1
#define CONFIG_SIZE 10          /* mac, status, max_virtqueue_pairs */

#define F(bit) (1ULL << (bit))

struct rx_chain {
	uint16_t head;
	uint16_t niov;
	unsigned iov;           /* first segment in rx_iov */
	size_t len;             /* bytes the chain holds */
};

struct net {
	struct virtio_dev *dev;
	struct machine *m;
	/* Features depend on the tap. The transport reads ops until it is
	 * freed, after net_free: the machine owns them (freed after it). */
	struct virtio_device_ops *ops;
	struct tap tap;
	char name[16];
	uint8_t mac[6];
	uint64_t features;             /* negotiated */
	bool tap_in_loop, rx_polling, tap_dead;
	int tx_efd;                    /* more transmit work */
	bool tx_efd_in_loop;

	/* The frame read from the tap and not yet delivered: header + frame. */
	uint8_t *frame;
	size_t frame_len;
	/* Receive chains popped for it. */
	struct rx_chain chains[RX_CHAINS];
	unsigned nchains;
	size_t chains_len;
	struct iovec rx_iov[RX_IOVS];
	unsigned nrx_iov;

	struct virtq_elem elem;
	struct iovec tx_iov[VIRTQ_MAX_SEGS + 1];
	uint8_t tx_hdr[VNET_HDR_LEN];
	uint64_t rx_dropped, tx_dropped;
};

/* ---- receive ---- */

static void rx_set_polling(struct net *n, bool on)
{
	if (n->rx_polling == on || !n->tap_in_loop)
		return;
	if (evloop_mod(&n->m->loop, n->tap.fd, on ? EPOLLIN : 0))
		log_warn("%s: cannot %s polling the tap", n->name, on ? "start" : "stop");
	else
		n->rx_polling = on;
}

/* Forget popped chains (reset: the queue starts over anyway). */
static void rx_forget(struct net *n)
{
	n->nchains = n->nrx_iov = 0;
	n->chains_len = 0;
	n->frame_len = 0;
}

enum { GATHER_BROKEN = -1, GATHER_EMPTY = 0, GATHER_OK = 1, GATHER_DROP = 2 };

/* Pop receive chains until those held can take the frame. */
static int rx_gather(struct net *n, struct virtq *q)
{
	bool mrg = n->features & F(VIRTIO_NET_F_MRG_RXBUF);

	while (n->chains_len < n->frame_len) {
		struct virtq_elem *e = &n->elem;
		int got;

		/* Without MRG_RXBUF a frame goes in one chain; with it, in at
		 * most what we hold at once. The chains stay for the next. */
		if ((!mrg && n->nchains) || n->nchains == RX_CHAINS ||
		    n->nrx_iov + VIRTQ_MAX_SEGS > RX_IOVS)
			return GATHER_DROP;
		if ((got = virtq_pop(q, e)) <= 0)
			return got < 0 ? GATHER_BROKEN : GATHER_EMPTY;
		if (e->nout || e->in_len < VNET_HDR_LEN) {
			/* Not a receive buffer: hand it back unused. */
			virtq_push(q, e->head, 0);
			virtq_notify(q);
			continue;
		}
		n->chains[n->nchains++] = (struct rx_chain){
			.head = e->head, .niov = e->nin, .iov = n->nrx_iov, .len = e->in_len,
		};
		memcpy(&n->rx_iov[n->nrx_iov], &e->iov[e->nout], e->nin * sizeof(struct iovec));
		n->nrx_iov += e->nin;
		n->chains_len += e->in_len;
	}
	return GATHER_OK;
}

/* Copy the waiting frame into the chains it needs and push them. */
static void rx_deliver(struct net *n, struct virtq *q)
{
	bool mrg = n->features & F(VIRTIO_NET_F_MRG_RXBUF);
	unsigned used = 0, left;
	size_t done = 0, room = 0;

	while (room < n->frame_len)
		room += n->chains[used++].len;
	put_le16(n->frame + 10, mrg ? used : 1);
	if (!(n->features & F(VIRTIO_NET_F_GUEST_CSUM)))
		n->frame[0] &= ~VNET_HDR_F_DATA_VALID;
	for (unsigned i = 0; i < used; i++) {
		const struct rx_chain *c = &n->chains[i];
		size_t len = iov_from_buf(&n->rx_iov[c->iov], c->niov, 0, n->frame + done,
					  n->frame_len - done);
		done += len;
		virtq_push(q, c->head, (uint32_t)len);
	}
	/* Chains not needed (only after a frame too big for them was
	 * dropped) move to the front for the next frame. */
	left = n->nchains - used;
	if (left) {
		unsigned first = n->chains[used].iov;
		memmove(n->chains, &n->chains[used], left * sizeof(n->chains[0]));
		memmove(n->rx_iov, &n->rx_iov[first], (n->nrx_iov - first) * sizeof(struct iovec));
		n->nrx_iov -= first;
		n->chains_len = 0;
		for (unsigned i = 0; i < left; i++) {
			n->chains[i].iov -= first;
			n->chains_len += n->chains[i].len;
		}
	} else {
		n->nrx_iov = 0;
		n->chains_len = 0;
	}
	n->nchains = left;
	n->frame_len = 0;
}

/* Read one frame from the tap: 1, 0 (nothing to read) or -1 (the tap is
 * gone or broken: stop reading it). */
static int rx_read(struct net *n)
{
	for (;;) {
		ssize_t r = read(n->tap.fd, n->frame, VNET_HDR_LEN + VNET_MAX_FRAME);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r < 0) {
			log_warn("%s: reading tap %s: %s; no more receiving", n->name, n->tap.name,
				 strerror(errno));
			return -1;
		}
		if (r <= VNET_HDR_LEN)
			continue; /* nothing after the header: skip it */
		n->frame_len = (size_t)r;
		return 1;
	}
}

static void rx_stop_tap(struct net *n)
{
	/* epoll reports a detached tap's EPOLLERR even with no events asked
	 * for: take it out of the loop. */
	n->tap_dead = true;
	if (n->tap_in_loop)
		evloop_del(&n->m->loop, n->tap.fd);
	n->tap_in_loop = n->rx_polling = false;
}

static void rx_process(struct net *n)
{
	struct virtq *q = virtio_queue(n->dev, RXQ);
	bool pushed = false;

	if (n->tap_dead)
		return;
	if (!q->enabled || q->broken) {
		rx_set_polling(n, false);
		return;
	}
	for (unsigned budget = RX_BUDGET; budget;) {
		int got;

		if (!n->frame_len) {
			if ((got = rx_read(n)) <= 0) {
				if (got < 0)
					rx_stop_tap(n);
				break;
			}
		}
		got = rx_gather(n, q);
		if (got == GATHER_EMPTY) {
			/* Ask for a kick when buffers come, then look again:
			 * one may have come in between. */
			virtq_set_kicks(q, true);
			if (virtq_has_avail(q))
				continue;
			rx_set_polling(n, false);
			break;
		}
		if (got == GATHER_BROKEN) {
			rx_set_polling(n, false);
			virtio_set_broken(n->dev, "malformed receive chain");
			break;
		}
		budget--; /* a frame handled, delivered or dropped */
		if (got == GATHER_DROP) {
			n->rx_dropped++;
			n->frame_len = 0;
			continue;
		}
		rx_deliver(n, q);
		pushed = true;
	}
	if (pushed)
		virtq_notify(q);
}

static void on_tap(void *opaque, uint32_t events)
{
	struct net *n = opaque;

	virtio_lock(n->dev);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The tap's interface is gone (ip link del): stop listening,
		 * or the loop would spin on it. */
		log_warn("%s: tap %s is gone; no more receiving", n->name, n->tap.name);
		rx_stop_tap(n);
	} else if (virtio_running(n->dev))
		rx_process(n);
	else
		rx_set_polling(n, false);
	virtio_unlock(n->dev);
}

/* ---- transmit ---- */

static void tx_one(struct net *n)
{
	int cnt = vnet_tx_prepare(n->elem.iov, n->elem.nout, n->features, n->tx_hdr, n->tx_iov);
	ssize_t r;

	if (cnt < 0) {
		if (!n->tx_dropped++)
			log_info("%s: dropping a malformed transmit chain (and later ones)", n->name);
		return;
	}
	do
		r = writev(n->tap.fd, n->tx_iov, cnt);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		n->tx_dropped++; /* full or down: dropped, as on a wire */
}

static void tx_process(struct net *n)
{
	struct virtq *q = virtio_queue(n->dev, TXQ);
	unsigned done = 0;
	int got = 0;

	if (!q->enabled || q->broken)
		return;
	virtq_set_kicks(q, false);
	for (;;) {
		while (done < TX_BUDGET && (got = virtq_pop(q, &n->elem)) > 0) {
			tx_one(n);
			virtq_push(q, n->elem.head, 0);
			done++;
		}
		if (got < 0) {
			virtio_set_broken(n->dev, "malformed transmit chain");
			break;
		}
		if (done == TX_BUDGET) {
			/* Let the loop breathe; our own eventfd brings us back. */
			if (write(n->tx_efd, &(uint64_t){ 1 }, 8) < 0)
				log_debug("%s: tx eventfd write failed", n->name);
			break;
		}
		virtq_set_kicks(q, true);
		if (!virtq_has_avail(q))
			break;
		virtq_set_kicks(q, false);
	}
	if (done)
		virtq_notify(q);
}

static void on_tx_more(void *opaque, uint32_t events)
{
	struct net *n = opaque;
	uint64_t v;

	(void)events;
	if (read(n->tx_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	virtio_lock(n->dev);
	if (virtio_running(n->dev))
		tx_process(n);
	virtio_unlock(n->dev);
}

/* ---- the device ---- */

static void net_kick(void *opaque, unsigned q)
{
	struct net *n = opaque;

	if (q == TXQ) {
		tx_process(n);
	} else if (q == RXQ) {
		/* Buffers came: read the tap again; no more kicks until we
		 * run out (rx_process asks for them then). */
		virtq_set_kicks(virtio_queue(n->dev, RXQ), false);
		rx_set_polling(n, true);
		rx_process(n);
	}
}

static void net_config_read(void *opaque, uint32_t off, uint8_t *data, unsigned len)
{
	struct net *n = opaque;
	uint8_t cfg[CONFIG_SIZE];

	memcpy(cfg, n->mac, 6);
	put_le16(cfg + 6, VIRTIO_NET_S_LINK_UP);
	put_le16(cfg + 8, 1);
	if (off <= CONFIG_SIZE && len <= CONFIG_SIZE - off)
		memcpy(data, cfg + off, len);
}

static void net_config_write(void *opaque, uint32_t off, const uint8_t *data, unsigned len)
{
	(void)opaque, (void)off, (void)data, (void)len; /* read-only (no legacy MAC writes) */
}

/* What the guest takes in (GUEST_*) → what the tap may hand us. */
static unsigned tap_offloads_for(uint64_t f)
{
	unsigned o = 0;

	if (!(f & F(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	o |= TUN_F_CSUM;
	if (f & F(VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (f & F(VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if (f & F(VIRTIO_NET_F_GUEST_ECN))
		o |= TUN_F_TSO_ECN;
	if (f & F(VIRTIO_NET_F_GUEST_UFO))
		o |= TUN_F_UFO;
	return o;
}

static int net_start(void *opaque, uint64_t features)
{
	struct net *n = opaque;
	int err;

	n->features = features;
	rx_forget(n);
	if ((err = tap_set_offloads(&n->tap, tap_offloads_for(features))))
		log_warn("%s: tap %s refuses the offloads: %s", n->name, n->tap.name,
			 strerror(-err));
	rx_set_polling(n, true);
	return 0;
}

static void net_reset(void *opaque)
{
	struct net *n = opaque;

	/* Everything runs on the loop thread under the device lock, which
	 * the caller holds: nothing is in flight. */
	rx_set_polling(n, false);
	rx_forget(n);
	n->features = 0;
	if (tap_set_offloads(&n->tap, 0))
		log_debug("%s: cannot turn the tap's offloads off", n->name);
}

static uint64_t offered_features(const struct tap *t)
{
	uint64_t f = F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF);

	if (!(t->offloads & TUN_F_CSUM))
		return f;
	/* A tap with a vnet header takes checksum and GSO requests on write;
	 * what it may hand us is what TUNSETOFFLOAD accepted. */
	f |= F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |
	     F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN);
	if (t->ufo)
		f |= F(VIRTIO_NET_F_HOST_UFO) | F(VIRTIO_NET_F_GUEST_UFO);
	if (t->offloads & TUN_F_TSO4)
		f |= F(VIRTIO_NET_F_GUEST_TSO4);
	if (t->offloads & TUN_F_TSO6)
		f |= F(VIRTIO_NET_F_GUEST_TSO6);
	if ((t->offloads & TUN_F_TSO_ECN) && (t->offloads & (TUN_F_TSO4 | TUN_F_TSO6)))
		f |= F(VIRTIO_NET_F_GUEST_ECN);
	return f;
}

static void net_free(void *opaque)
{
	struct net *n = opaque;

	if (n->m->loop_ready) {
		if (n->tap_in_loop)
			evloop_del(&n->m->loop, n->tap.fd);
		if (n->tx_efd_in_loop)
			evloop_del(&n->m->loop, n->tx_efd);
	}
	if (n->rx_dropped || n->tx_dropped)
		log_info("%s: %llu received and %llu sent frames dropped", n->name,
			 (unsigned long long)n->rx_dropped, (unsigned long long)n->tx_dropped);
	tap_close(&n->tap);
	if (n->tx_efd >= 0)
		close(n->tx_efd);
	free(n->frame);
	free(n);
}

/* *why must outlive the call; machines are built one at a time. */
static char why_buf[128];

int virtio_net_create(struct machine *m, const struct machine_nic *nic, unsigned index,
		      const char **why)
{
	struct net *n = calloc(1, sizeof(*n));
	char mac[18];
	int err;

	if (!n) {
		if (nic->tap_fd >= 0)
			close(nic->tap_fd);
		*why = "cannot allocate a network device";
		return -ENOMEM;
	}
	n->m = m;
	n->tx_efd = -1;
	snprintf(n->name, sizeof(n->name), "virtio-net%u", index);
	if ((err = tap_open(&n->tap, nic->tap, nic->tap_fd, why_buf, sizeof(why_buf)))) {
		*why = why_buf;
		net_free(n);
		return err;
	}
	if (nic->mac_set)
		memcpy(n->mac, nic->mac, 6);
	else
		mac_default(index, n->mac);
	n->frame = malloc(VNET_HDR_LEN + VNET_MAX_FRAME);
	n->tx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!n->frame || n->tx_efd < 0) {
		*why = "cannot allocate a network device";
		net_free(n);
		return -ENOMEM;
	}
	/* Owned before the transport is, so freed after it. */
	if (!(n->ops = malloc(sizeof(*n->ops))) || machine_own(m, free, n->ops)) {
		*why = "cannot allocate a network device";
		net_free(n);
		return -ENOMEM;
	}
	*n->ops = (struct virtio_device_ops){
		.device_id = VIRTIO_ID_NET,
		.nr_queues = 2,
		.queue_size = NET_QUEUE_SIZE,
		.features = offered_features(&n->tap),
		.config_size = CONFIG_SIZE,
		.config_read = net_config_read,
		.config_write = net_config_write,
		.start = net_start,
		.kick = net_kick,
		.reset = net_reset,
	};
	if ((err = virtio_pci_create(m, n->name, n->ops, n, net_free, &n->dev))) {
		*why = "cannot create the virtio-net device";
		return err; /* n is freed now or with the machine */
	}
	/* The tap joins the loop with no events until the driver starts. */
	if ((err = evloop_add(&m->loop, n->tap.fd, 0, on_tap, n))) {
		*why = "cannot add the tap to the event loop";
		return err;
	}
	n->tap_in_loop = true;
	if ((err = evloop_add(&m->loop, n->tx_efd, EPOLLIN, on_tx_more, n))) {
		*why = "cannot add the tap to the event loop";
		return err;
	}
	n->tx_efd_in_loop = true;
	mac_format(n->mac, mac);
	log_info("%s: tap %s, MAC %s, offloads %#x", n->name, n->tap.name, mac, n->tap.offloads);
	return 0;
}
