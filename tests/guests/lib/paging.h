/* The identity map entry.S builds (4 GiB, 2 MiB pages), and changes to it. */
#ifndef GUEST_PAGING_H
#define GUEST_PAGING_H

#include <stdbool.h>
#include <stdint.h>

#define PAGE_SIZE ((uint64_t)4096)
#define LARGE_PAGE_SIZE ((uint64_t)2 << 20)

/* Identity-maps [addr, addr + len) with 2 MiB pages where not mapped yet
 * (RAM above 4 GiB). False when the small table pool runs out. */
bool paging_map_identity(uint64_t addr, uint64_t len);
/* Splits the 2 MiB page holding addr into 4 KiB pages that map the same,
 * and returns addr's page-table entry; NULL if addr is not mapped. */
volatile uint64_t *paging_pte_4k(uint64_t addr);
bool paging_is_mapped(uint64_t addr);

#endif
