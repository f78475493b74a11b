/* The benchmark guests' shared part: see bench.h. */
#include "guest.h"
#include "cmdline.h"

#define CALIBRATE_MS 50

uint32_t bench_cmdline_num(const char *key, uint32_t def)
{
	const char *val = cmdline_find(key);
	uint64_t v;

	if (!val)
		return def;
	if (!cmdline_parse_u64(val, &v) || v == 0)
		fail("bad %s on the command line: %s", key, pvh_boot.cmdline);
	if (v > 0xffffffffu)
		fail("%s too large: %s", key, pvh_boot.cmdline);
	return (uint32_t)v;
}

uint32_t bench_tsc_khz(void)
{
	uint32_t khz = pit_tsc_khz(CALIBRATE_MS);
	if (!khz)
		fail("TSC calibration gave 0 kHz");
	kprintf("bench: tsc_khz %u\n", khz);
	return khz;
}

void bench_print_section(uint64_t t0, uint64_t t1, uint32_t khz)
{
	uint64_t ticks = t1 - t0;
	kprintf("bench: section %lu ns\n", ticks / khz * 1000000u + ticks % khz * 1000000u / khz);
}
