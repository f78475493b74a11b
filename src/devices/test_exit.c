/* The test-exit port: a guest ends kumo-vmm with status 64 + (value & 63).
 * At 0xf4, where QEMU's isa-debug-exit is put with iobase=0xf4, so one test
 * guest can end both. A guest gains nothing by it: it can power off anyway. */
#include "kumo/devices.h"
#include "kumo/machine.h"

static void test_exit_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct machine *m = opaque;

	if (!is_write) {
		for (unsigned i = 0; i < len; i++)
			data[i] = 0xff;
		return;
	}
	if (offset == 0)
		machine_request_exit(m, EXIT_TEST_BASE + (data[0] & 63));
}

int test_exit_create(struct machine *m)
{
	return io_bus_register(&m->pio, TEST_EXIT_PORT, 4, test_exit_io, m, "test-exit");
}
