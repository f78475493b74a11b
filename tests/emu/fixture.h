/* What every emu unit test's fixture has in common: guest RAM as the first
 * member of a calloc'd struct that also holds the CPU (and whatever else the
 * test needs), made by the test's setup, freed by fx_teardown. */
#ifndef KUMO_TESTS_EMU_FIXTURE_H
#define KUMO_TESTS_EMU_FIXTURE_H

/* cmocka teardown: frees *state, a calloc'd struct whose first member is
 * its struct guest_mem. */
int fx_teardown(void **state);

#endif
