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

void pit_delay_us(uint32_t us)
{
	static bool loaded;
	if (!loaded) {
		load(0); /* 65536: wraps every 55 ms */
		loaded = true;
	}
	uint64_t want = (uint64_t)us * PIT_HZ / 1000000u;
	uint64_t elapsed = 0;
	uint16_t prev = read_ch0();
	while (elapsed < want) {
		uint16_t now = read_ch0();
		elapsed += (uint16_t)(prev - now); /* counts down, modulo 65536 */
		prev = now;
	}
}
