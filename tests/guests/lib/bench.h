/*
 * What the benchmark guests (bench_int, bench_interp, bench_mem) share:
 * the command line's numbers, the TSC calibration and the timed section's
 * line, in the format bench/emu/bench_emu.py parses.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>

/* The value of "KEY=NUMBER" (key: "n=", "kib=") on the command line, else
 * def; fails on a bad one (not a number, 0, more than 32 bits). */
uint32_t bench_cmdline_num(const char *key, uint32_t def);
/* The TSC frequency by the PIT (50 ms); fails on 0; prints
 * "bench: tsc_khz K". */
uint32_t bench_tsc_khz(void);
/* Prints "bench: section T ns" for the TSC ticks t1 - t0. */
void bench_print_section(uint64_t t0, uint64_t t1, uint32_t khz);

#endif
