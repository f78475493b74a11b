/* The teardown the emu unit tests share (fixture.h). */
#include <stdlib.h>

#include "fixture.h"
#include "kumo/memory.h"

int fx_teardown(void **state)
{
	/* a pointer to a struct, converted, points to its first member */
	struct guest_mem *mem = *state;

	guest_mem_free(mem);
	free(*state);
	return 0;
}
