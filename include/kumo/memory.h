/* Guest RAM: one host mapping, split around the 32-bit MMIO hole. */
#ifndef KUMO_MEMORY_H
#define KUMO_MEMORY_H

#include "kumo/util.h"

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

struct guest_mem {
	uint8_t *base;      /* the whole mapping */
	uint64_t size;      /* bytes of RAM */
	unsigned nr_regions;
	struct mem_region regions[GUEST_MEM_MAX_REGIONS];
};

/* Map size bytes of RAM (anonymous, MAP_NORESERVE); lay out the regions. */
int guest_mem_init(struct guest_mem *mem, uint64_t size) WUR;
void guest_mem_free(struct guest_mem *mem);

/* Host pointer for [gpa, gpa+len) when the whole range is RAM in one region,
 * NULL otherwise (overflow, hole, past the end). Never trust gpa or len. */
void *gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len) WUR;
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len) WUR;

/* End of RAM below the MMIO hole. */
static inline uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].gpa + mem->regions[0].size;
}

#endif
