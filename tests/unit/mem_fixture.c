#include "mem_fixture.h"

#include <stdlib.h>

#include "kumo/memory.h"

int mem_setup_size(void **state, uint64_t size)
{
	struct guest_mem *mem = malloc(sizeof(*mem));

	if (!mem || guest_mem_init(mem, size)) {
		free(mem);
		return -1;
	}
	*state = mem;
	return 0;
}

int mem_teardown(void **state)
{
	guest_mem_free(*state);
	free(*state);
	return 0;
}
