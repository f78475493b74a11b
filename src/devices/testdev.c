/* The test device, for test guests and benchmarks (docs/machine.md):
 *
 * 0xf4 exit:     a write of N ends kumo-vmm with status 64 + (N & 63). At
 *                0xf4, where QEMU's isa-debug-exit sits with iobase=0xf4,
 *                so one test guest ends both VMMs. A guest gains nothing by
 *                it: it can power off anyway.
 * 0xf8 doorbell: 32-bit writes are counted; a read returns the count. The
 *                writes go through the engine's ioeventfd path where there
 *                is one (no exit to kumo), so a guest can time both kinds
 *                of exit. */
#include "kumo/devices.h"
#include "kumo/log.h"
#include "kumo/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct testdev {
	struct machine *m;
	pthread_mutex_t lock;
	int efd;           /* the doorbell's eventfd, -1 without ioeventfd */
	uint64_t rings;
};

static void exit_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct testdev *t = opaque;

	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	if (offset == 0)
		machine_request_exit(t->m, EXIT_TEST_BASE + (data[0] & 63));
}

static void doorbell_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct testdev *t = opaque;
	uint64_t n = 0;

	pthread_mutex_lock(&t->lock);
	if (is_write) {
		t->rings++; /* a write the fast path did not take */
	} else {
		/* Writes before this read were signalled before the guest went on. */
		if (t->efd >= 0 && read(t->efd, &n, sizeof(n)) == sizeof(n))
			t->rings += n;
		memset(data, 0, len);
		if (offset == 0)
			for (unsigned i = 0; i < len && i < 4; i++)
				data[i] = t->rings >> (8 * i);
	}
	pthread_mutex_unlock(&t->lock);
}

static void testdev_free(void *opaque)
{
	struct testdev *t = opaque;

	if (t->efd >= 0) {
		if (t->m->accel->ioeventfd(t->m, TESTDEV_DOORBELL_PORT, 4, true, t->efd, false))
			log_debug("testdev: ioeventfd removal failed");
		close(t->efd);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int testdev_create(struct machine *m)
{
	struct testdev *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	t->m = m;
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&t->lock, NULL);
	if (t->efd >= 0 && (!m->accel->ioeventfd ||
	    m->accel->ioeventfd(m, TESTDEV_DOORBELL_PORT, 4, true, t->efd, true))) {
		close(t->efd);
		t->efd = -1;
	}
	if ((err = machine_own(m, testdev_free, t)))
		return err;
	err = io_bus_register(&m->pio, TESTDEV_EXIT_PORT, 4, exit_io, t, "test-exit");
	if (!err)
		err = io_bus_register(&m->pio, TESTDEV_DOORBELL_PORT, 4, doorbell_io, t, "test-doorbell");
	return err;
}
