/* The command line's words: see cmdline.h. */
#include "guest.h"
#include "cmdline.h"

const char *cmdline_find(const char *prefix)
{
	const char *c = pvh_boot.cmdline;
	size_t plen = strlen(prefix);

	for (;;) {
		while (*c == ' ')
			c++;
		if (!*c)
			return NULL;
		if (strncmp(c, prefix, plen) == 0)
			return c + plen;
		while (*c && *c != ' ')
			c++;
	}
}

bool cmdline_copy(const char *prefix, char *buf, size_t size)
{
	const char *c = cmdline_find(prefix);
	size_t n = 0;

	if (!c || !size)
		return false;
	for (; *c && *c != ' '; c++)
		if (n + 1 < size)
			buf[n++] = *c;
	buf[n] = 0;
	return true;
}

bool cmdline_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || *s == ' ')
		return false;
	for (; *s && *s != ' '; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}
