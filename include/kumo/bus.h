/* Port I/O and MMIO buses: address ranges mapped to device handlers.
 * Ranges are registered before any vCPU runs and never change after, so a
 * lookup needs no lock; each device locks its own state. */
#ifndef KUMO_BUS_H
#define KUMO_BUS_H

#include "kumo/util.h"

/* offset is relative to the range's base; len is 1..8. On a read the handler
 * fills data[0..len). */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, uint8_t *data,
			      unsigned len, bool is_write);

struct io_range {
	uint64_t base, len;
	io_handler_fn fn;
	void *opaque;
	const char *name;
};

struct io_bus {
	struct io_range *ranges; /* sorted by base, never overlapping */
	unsigned nr, cap;
};

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name) WUR;
/* false when nothing claims addr (the caller decides: reads see all ones). */
bool io_bus_access(const struct io_bus *bus, uint64_t addr, uint8_t *data,
		   unsigned len, bool is_write);
void io_bus_free(struct io_bus *bus);

#endif
