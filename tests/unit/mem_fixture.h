/* A guest_mem as a cmocka fixture's state, shared by the unit tests that
 * load kernels into guest memory. */
#ifndef KUMO_TESTS_MEM_FIXTURE_H
#define KUMO_TESTS_MEM_FIXTURE_H

#include <stdint.h>

/* *state = a new guest_mem of size bytes; 0, or -1 when it cannot be made. */
int mem_setup_size(void **state, uint64_t size);
/* Frees what mem_setup_size() made. */
int mem_teardown(void **state);

#endif
