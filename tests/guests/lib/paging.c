#include "guest.h"

#define ADDR_MASK 0x000ffffffffff000ull
#define POOL_PAGES 8

extern uint64_t boot_pml4[512];

/* Not zeroed at boot: new_table() clears each page it hands out. */
static uint64_t pool[POOL_PAGES][512] __attribute__((aligned(4096), section(".noinit")));
static unsigned pool_used;

static uint64_t *table(uint64_t entry)
{
	return (uint64_t *)(entry & ADDR_MASK);
}

static uint64_t *new_table(void)
{
	if (pool_used == POOL_PAGES)
		return NULL;
	uint64_t *t = pool[pool_used++];
	memset(t, 0, PAGE_SIZE);
	return t;
}

/* The page-directory entry for addr; with create, adds missing tables. */
static uint64_t *pde(uint64_t addr, bool create)
{
	uint64_t *l4 = &boot_pml4[(addr >> 39) & 511];
	if (!(*l4 & PTE_P)) {
		uint64_t *t = create ? new_table() : NULL;
		if (!t)
			return NULL;
		*l4 = (uint64_t)t | PTE_P | PTE_W;
	}
	uint64_t *l3 = &table(*l4)[(addr >> 30) & 511];
	if (!(*l3 & PTE_P)) {
		uint64_t *t = create ? new_table() : NULL;
		if (!t)
			return NULL;
		*l3 = (uint64_t)t | PTE_P | PTE_W;
	}
	return &table(*l3)[(addr >> 21) & 511];
}

bool paging_is_mapped(uint64_t addr)
{
	uint64_t *e = pde(addr, false);
	if (!e || !(*e & PTE_P))
		return false;
	if (*e & PTE_PS)
		return true;
	return table(*e)[(addr >> 12) & 511] & PTE_P;
}

bool paging_map_identity(uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;
	for (uint64_t a = addr & ~(LARGE_PAGE_SIZE - 1); a < end; a += LARGE_PAGE_SIZE) {
		uint64_t *e = pde(a, true);
		if (!e)
			return false;
		if (!(*e & PTE_P))
			*e = a | PTE_P | PTE_W | PTE_PS;
	}
	return true;
}

volatile uint64_t *paging_pte_4k(uint64_t addr)
{
	uint64_t *e = pde(addr, false);
	if (!e || !(*e & PTE_P))
		return NULL;
	if (*e & PTE_PS) {
		uint64_t *pt = new_table();
		if (!pt)
			return NULL;
		uint64_t base = *e & ADDR_MASK & ~(LARGE_PAGE_SIZE - 1);
		uint64_t flags = *e & (PTE_P | PTE_W | PTE_PWT | PTE_PCD);
		for (int i = 0; i < 512; i++)
			pt[i] = (base + (uint64_t)i * PAGE_SIZE) | flags;
		*e = (uint64_t)pt | PTE_P | PTE_W;
		write_cr3(read_cr3()); /* drop the 2 MiB translation */
	}
	return &table(*e)[(addr >> 12) & 511];
}
