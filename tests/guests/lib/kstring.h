/* The few <string.h> functions the guests use (GCC may call the mem*
 * ones on its own, for struct copies and clears). */
#ifndef GUEST_KSTRING_H
#define GUEST_KSTRING_H

#include <stddef.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
