#include "kumo/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name)
{
	unsigned i;

	if (!len || base + len < base)
		return -EINVAL;
	for (i = 0; i < bus->nr; i++) {
		const struct io_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
		if (r->base > base)
			break;
	}
	if (bus->nr == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct io_range *n = realloc(bus->ranges, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(*bus->ranges));
	bus->ranges[i] = (struct io_range){ base, len, fn, opaque, name };
	bus->nr++;
	return 0;
}

bool io_bus_access(const struct io_bus *bus, uint64_t addr, uint8_t *data,
		   unsigned len, bool is_write)
{
	unsigned lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct io_range *r = &bus->ranges[mid];
		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			r->fn(r->opaque, addr - r->base, data, len, is_write);
			return true;
		}
	}
	return false;
}

void io_bus_free(struct io_bus *bus)
{
	free(bus->ranges);
	memset(bus, 0, sizeof(*bus));
}
