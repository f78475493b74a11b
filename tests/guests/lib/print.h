/* printf to the serial port: %d %i %u %x %X %p %s %c %%, with l/ll, a
 * field width and '0' / '-' flags. Lines end with "\n" only. */
#ifndef GUEST_PRINT_H
#define GUEST_PRINT_H

#include <stdarg.h>
#include <stddef.h>

void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);
/* Formats into buf (always NUL-terminated); returns the length written. */
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
