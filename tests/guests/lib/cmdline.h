/* The guest's command line (pvh_boot.cmdline): space-separated words,
 * looked up by prefix. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The first word starting with prefix (e.g. "n=", "blk.id="): a pointer
 * just past the prefix (the value runs to the next space or the end), or
 * NULL when no word starts so. */
const char *cmdline_find(const char *prefix);

/* The value after prefix (up to the next space), cut to size - 1 bytes,
 * NUL-terminated into buf; false (buf untouched) if there is none. */
bool cmdline_copy(const char *prefix, char *buf, size_t size);

/* The decimal number at s, up to the next space or the end, into *out;
 * false if it is empty, has a non-digit or does not fit 64 bits. */
bool cmdline_parse_u64(const char *s, uint64_t *out);

#endif
