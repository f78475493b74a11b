/* The i8042 keyboard controller, only as far as a guest needs it to reset
 * the machine: the pulse-reset command (0xfe) and the output port's reset
 * bit. No keyboard, no mouse; the FADT tells Linux there is no 8042 to probe. */
#include "kumo/devices.h"
#include "kumo/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define DATA_PORT    0x60
#define CMD_PORT     0x64
#define STATUS_OBF   0x01
#define STATUS_SYS   0x04
#define CMD_READ_CB  0x20
#define CMD_WRITE_CB 0x60
#define CMD_SELFTEST 0xaa
#define CMD_WRITE_OP 0xd1
#define CMD_RESET    0xfe

struct i8042 {
	struct machine *m;
	pthread_mutex_t lock;
	uint8_t cmd_byte, pending_cmd, out;
	bool out_full;
};

static void reply(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CB:
		reply(k, k->cmd_byte);
		break;
	case CMD_SELFTEST:
		reply(k, 0x55);
		break;
	case CMD_WRITE_CB:
	case CMD_WRITE_OP:
		k->pending_cmd = cmd;
		break;
	case CMD_RESET:
		machine_request_exit(k->m, EXIT_RESET);
		break;
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	if (k->pending_cmd == CMD_WRITE_CB)
		k->cmd_byte = v;
	else if (k->pending_cmd == CMD_WRITE_OP && !(v & 0x01))
		machine_request_exit(k->m, EXIT_RESET); /* output port bit 0: reset line */
	k->pending_cmd = 0;
}

static void i8042_io(struct i8042 *k, uint16_t port, uint8_t *data, unsigned len, bool is_write)
{
	if (len != 1) {
		if (!is_write)
			for (unsigned i = 0; i < len; i++)
				data[i] = 0xff;
		return;
	}
	pthread_mutex_lock(&k->lock);
	if (is_write && port == CMD_PORT)
		command(k, data[0]);
	else if (is_write)
		data_write(k, data[0]);
	else if (port == CMD_PORT)
		data[0] = STATUS_SYS | (k->out_full ? STATUS_OBF : 0);
	else {
		data[0] = k->out;
		k->out_full = false;
	}
	pthread_mutex_unlock(&k->lock);
}

static void data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)offset;
	i8042_io(opaque, DATA_PORT, data, len, is_write);
}

static void cmd_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)offset;
	i8042_io(opaque, CMD_PORT, data, len, is_write);
}

static void i8042_destroy(void *opaque)
{
	struct i8042 *k = opaque;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

int i8042_create(struct machine *m)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int err;

	if (!k)
		return -ENOMEM;
	k->m = m;
	k->cmd_byte = 0x30; /* keyboard and mouse clocks off, no interrupts */
	pthread_mutex_init(&k->lock, NULL);
	err = machine_own(m, i8042_destroy, k);
	if (err)
		return err;
	/* 0x60 and 0x64, leaving 0x61 (port B) to the PIT's speaker. */
	err = io_bus_register(&m->pio, DATA_PORT, 1, data_io, k, "i8042");
	if (!err)
		err = io_bus_register(&m->pio, CMD_PORT, 1, cmd_io, k, "i8042");
	return err;
}
