/* Guest RAM: one host mapping, split around the 32-bit MMIO hole. */
#ifndef KUMO_MEMORY_H
#define KUMO_MEMORY_H

#include "kumo/util.h"

#include <stdatomic.h>
#include <stdbool.h>

#define MMIO_HOLE_START 0xc0000000ULL  /* 3 GiB: RAM below, MMIO above */
#define MMIO_HOLE_END   0x100000000ULL /* 4 GiB: the rest of RAM from here */
#define GUEST_MEM_MIN   (8 * MiB)
#define GUEST_MEM_MAX   (1024 * GiB)
#define GUEST_MEM_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;   /* guest-physical start */
	uint64_t size;
	uint8_t *host;  /* host address of gpa */
};

/* Guest pages that a software CPU may hold decoded code from, for an
 * engine that asks (guest_mem_track_code: emu on a machine of one vCPU):
 * one bit per guest-physical page, set and cleared by that vCPU, and an
 * epoch that a device bumps after it wrote into such a page, so that the
 * CPU compares its decoded code with memory again. */
struct guest_code {
	_Atomic uint64_t epoch;
	uint64_t pages;             /* bits in map */
	_Atomic uint8_t *map;
};

struct guest_mem {
	uint8_t *base;      /* the whole mapping */
	uint64_t size;      /* bytes of RAM */
	unsigned nr_regions;
	struct mem_region regions[GUEST_MEM_MAX_REGIONS];
	struct guest_code *code;    /* NULL: nobody tracks code */
};

/* Map size bytes of RAM (anonymous, MAP_NORESERVE); lay out the regions. */
int guest_mem_init(struct guest_mem *mem, uint64_t size) WUR;
void guest_mem_free(struct guest_mem *mem);

/* Host pointer for [gpa, gpa+len) when the whole range is RAM in one region,
 * NULL otherwise (overflow, hole, past the end). Never trust gpa or len. */
void *gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len) WUR;
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len) WUR;

/* Start tracking code pages (struct guest_code); freed with the memory. */
int guest_mem_track_code(struct guest_mem *mem) WUR;

/* For devices: whether [gpa, gpa + len) may hold decoded code (then
 * guest_mem_code_written once the device has written there). */
bool guest_mem_code_slow(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
static inline bool guest_mem_code(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	return mem->code && guest_mem_code_slow(mem, gpa, len);
}
void guest_mem_code_written(const struct guest_mem *mem);

/* For the engine: page (a guest-physical page number) may hold decoded
 * code, or no longer; pages past the map are left alone. */
static inline void guest_mem_code_mark(const struct guest_mem *mem, uint64_t page, bool code)
{
	struct guest_code *gc = mem->code;
	uint8_t bit = (uint8_t)(1u << (page & 7));

	if (!gc || page >= gc->pages)
		return;
	if (code)
		atomic_fetch_or_explicit(&gc->map[page >> 3], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&gc->map[page >> 3], (uint8_t)~bit, memory_order_relaxed);
}

/* End of RAM below the MMIO hole. */
static inline uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].gpa + mem->regions[0].size;
}

#endif
