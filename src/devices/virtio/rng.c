/* virtio-rng (virtio 1.2, 5.4): one queue of device-writable buffers,
 * filled from the host's getrandom(). A buffer is filled on the event-loop
 * thread when the guest kicks; at most 64 KiB per request, so a guest asking
 * for gigabytes gets them a piece at a time and the loop stays responsive. */
#include "kumo/devices.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_REQUEST (64 * 1024)

struct rng {
	struct virtio_dev *dev;
	struct virtq_elem elem;
};

/* Fill the writable part of e with up to RNG_MAX_REQUEST random bytes. */
static uint32_t fill(const struct virtq_elem *e)
{
	uint32_t done = 0;

	for (unsigned i = e->nout; i < e->nout + e->nin && done < RNG_MAX_REQUEST; i++) {
		size_t left = MIN(e->iov[i].iov_len, RNG_MAX_REQUEST - done), at = 0;
		while (at < left) {
			ssize_t n = getrandom((uint8_t *)e->iov[i].iov_base + at, left - at, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return done;
			}
			at += (size_t)n;
		}
		done += (uint32_t)left;
	}
	return done;
}

static void rng_kick(void *opaque, unsigned qi)
{
	struct rng *r = opaque;
	struct virtq *q = virtio_queue(r->dev, qi);
	bool any = false;
	int got;

	for (;;) {
		while ((got = virtq_pop(q, &r->elem)) > 0) {
			virtq_push(q, r->elem.head, fill(&r->elem));
			any = true;
		}
		if (got < 0) {
			virtio_set_broken(r->dev, "malformed request");
			break;
		}
		virtq_set_kicks(q, true);
		if (!virtq_has_avail(q))
			break;
	}
	if (any)
		virtq_notify(q);
}

static int rng_start(void *opaque, uint64_t features)
{
	(void)opaque, (void)features;
	return 0;
}

static void rng_reset(void *opaque)
{
	(void)opaque; /* requests complete on the loop thread: none in flight */
}

static const struct virtio_device_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.nr_queues = 1,
	.queue_size = RNG_QUEUE_SIZE,
	.start = rng_start,
	.kick = rng_kick,
	.reset = rng_reset,
};

int virtio_rng_create(struct machine *m)
{
	struct rng *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	return virtio_pci_create(m, "virtio-rng", &rng_ops, r, free, &r->dev);
}
