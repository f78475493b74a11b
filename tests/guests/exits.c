/*
 * exits: times VM-exit round trips through the test device.
 *   A. N 32-bit reads of 0xf4 (test-exit): each exits to the VMM's userspace;
 *   B. N 32-bit writes to 0xf8: on kumo's kvm engine an ioeventfd, which
 *      KVM signals without leaving the kernel.
 * Then one more read must return N, the number of writes (kumo counts
 * them; 0xffffffff means no kumo test device, e.g. QEMU: not checked).
 * N comes from "n=NUMBER" on the command line (default 20000). The TSC,
 * calibrated against the PIT, times both phases. The benchmark parses
 * the "exits:" lines; keep their format.
 */
#include "guest.h"

GUEST("exits");

#define DOORBELL_PORT 0xf8
/* Phase A reads the test-exit port: a device on both kumo and QEMU
 * (isa-debug-exit) whose read handler does nothing, so the time is the
 * exit round trip itself. */
#define READ_PORT 0xf4
#define DEFAULT_N 20000u
#define CALIBRATE_MS 50

/* The value of "n=NUMBER" in the command line, else def. Fails the test
 * on a malformed or zero number. */
static uint32_t cmdline_n(const char *c, uint32_t def)
{
	while (*c) {
		while (*c == ' ')
			c++;
		if (c[0] == 'n' && c[1] == '=') {
			uint64_t v = 0;
			const char *p = c + 2;
			if (*p < '0' || *p > '9')
				fail("bad n= on the command line: %s", pvh_boot.cmdline);
			for (; *p >= '0' && *p <= '9'; p++) {
				v = v * 10 + (uint64_t)(*p - '0');
				if (v > 0xffffffffu)
					fail("n= too large: %s", pvh_boot.cmdline);
			}
			if ((*p && *p != ' ') || v == 0)
				fail("bad n= on the command line: %s", pvh_boot.cmdline);
			return (uint32_t)v;
		}
		while (*c && *c != ' ')
			c++;
	}
	return def;
}

static uint64_t ns(uint64_t ticks, uint32_t khz)
{
	/* ticks * 10^6 / khz; split to keep ticks * 10^6 in 64 bits */
	return ticks / khz * 1000000u + ticks % khz * 1000000u / khz;
}

void guest_main(void)
{
	uint32_t n = cmdline_n(pvh_boot.cmdline, DEFAULT_N);
	uint32_t khz = pit_tsc_khz(CALIBRATE_MS);
	if (!khz)
		fail("TSC calibration gave 0 kHz");
	kprintf("exits: tsc_khz %u\n", khz);

	uint32_t sink = 0;
	uint64_t t0 = rdtsc();
	for (uint32_t i = 0; i < n; i++)
		sink ^= inl(READ_PORT);
	uint64_t t1 = rdtsc();
	kprintf("exits: userspace %u in %lu ns\n", n, ns(t1 - t0, khz));

	t0 = rdtsc();
	for (uint32_t i = 0; i < n; i++)
		outl(DOORBELL_PORT, i);
	t1 = rdtsc();
	kprintf("exits: ioeventfd %u in %lu ns\n", n, ns(t1 - t0, khz));
	(void)sink;

	uint32_t count = inl(DOORBELL_PORT);
	if (count == 0xffffffffu) {
		kprintf("exits: no kumo test device at port 0x%x (reads 0xffffffff), "
			"write count not checked\n", DOORBELL_PORT);
	} else {
		kprintf("exits: doorbell count %u\n", count);
		if (count != n)
			fail("the doorbell counted %u writes, want %u", count, n);
	}
	pass();
}
