#include "guest.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define CMD_CH0_LOHI_MODE2 0x34
#define CMD_CH0_LATCH 0x00

static void load(uint16_t count)
{
	outb(PIT_CMD, CMD_CH0_LOHI_MODE2);
	outb(PIT_CH0, count & 0xff);
	outb(PIT_CH0, count >> 8);
}

void pit_periodic(uint32_t hz)
{
	uint32_t d = PIT_HZ / hz;
	load(d > 0xffff ? 0 : (uint16_t)d);
}

static uint16_t read_ch0(void)
{
	outb(PIT_CMD, CMD_CH0_LATCH);
	uint8_t lo = inb(PIT_CH0);
	uint8_t hi = inb(PIT_CH0);
	return (uint16_t)(hi << 8 | lo);
}

/* Channel 0 free-running (mode 2, count 65536, wraps every 55 ms) for
 * pit_delay_us and pit_tsc_khz. */
static void load_free_running(void)
{
	static bool loaded;
	if (!loaded) {
		load(0);
		loaded = true;
	}
}

void pit_delay_us(uint32_t us)
{
	load_free_running();
	uint64_t want = (uint64_t)us * PIT_HZ / 1000000u;
	uint64_t elapsed = 0;
	uint16_t prev = read_ch0();
	while (elapsed < want) {
		uint16_t now = read_ch0();
		elapsed += (uint16_t)(prev - now); /* counts down, modulo 65536 */
		prev = now;
	}
}

uint32_t pit_tsc_khz(uint32_t ms)
{
	load_free_running();
	uint64_t want = (uint64_t)ms * PIT_HZ / 1000u;
	uint64_t elapsed = 0;
	/* The TSC is read just before each latch command, so the time the
	 * two data reads take is the same at both ends and cancels out. */
	uint64_t t0 = rdtsc(), t1 = t0;
	uint16_t prev = read_ch0();
	while (elapsed < want) {
		t1 = rdtsc();
		uint16_t now = read_ch0();
		elapsed += (uint16_t)(prev - now);
		prev = now;
	}
	/* kHz = TSC ticks / (elapsed / PIT_HZ seconds) / 1000 */
	return (uint32_t)((t1 - t0) * PIT_HZ / (elapsed * 1000u));
}
