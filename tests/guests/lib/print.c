#include "guest.h"

struct sink {
	char *buf;   /* NULL: the serial port */
	size_t size;
	size_t len;
};

static void put(struct sink *s, char c)
{
	if (!s->buf)
		serial_putc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void put_padded(struct sink *s, const char *str, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;
	if (!left)
		while (fill-- > 0)
			put(s, pad);
	for (size_t i = 0; i < n; i++)
		put(s, str[i]);
	if (left)
		while (fill-- > 0)
			put(s, ' ');
}

static void put_number(struct sink *s, unsigned long long v, unsigned base, bool upper,
		       bool negative, int width, bool left, char pad)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = digits[v % base];
		v /= base;
	} while (v);
	if (negative) {
		if (pad == '0') {
			put(s, '-');
			width = width > 0 ? width - 1 : 0;
		} else {
			tmp[sizeof(tmp) - 1 - n++] = '-';
		}
	}
	put_padded(s, tmp + sizeof(tmp) - n, (size_t)n, width, left, pad);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(s, *fmt);
			continue;
		}
		fmt++;
		bool left = false;
		char pad = ' ';
		for (;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		int width = 0;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		int longs = 0;
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		if (left)
			pad = ' ';

		switch (*fmt) {
		case 'd':
		case 'i': {
			long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
			unsigned long long m = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
			put_number(s, m, 10, false, v < 0, width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			unsigned long long v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			put_number(s, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', false, width, left, pad);
			break;
		}
		case 'p':
			put(s, '0');
			put(s, 'x');
			put_number(s, (unsigned long long)(uintptr_t)va_arg(ap, void *), 16, false, false,
				   width, left, pad);
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			put_padded(s, str, strlen(str), width, left, ' ');
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);
			put_padded(s, &c, 1, width, left, ' ');
			break;
		}
		case '%':
			put(s, '%');
			break;
		case '\0':
			return;
		default:
			put(s, '%');
			put(s, *fmt);
			break;
		}
	}
}

void kvprintf(const char *fmt, va_list ap)
{
	struct sink s = { 0 };
	format(&s, fmt, ap);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	struct sink s = { buf, size, 0 };
	va_list ap;
	va_start(ap, fmt);
	format(&s, fmt, ap);
	va_end(ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return (int)s.len;
}
