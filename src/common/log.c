#include "kumo/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level cur_level = LOG_WARN;
static int raw_terminal;

void log_set_level(enum log_level level) { cur_level = level; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_raw_terminal(int raw) { raw_terminal = raw; }

void log_msg(enum log_level level, const char *fmt, ...)
{
	/* Errors read as one plain line: "kumo: cannot open ...". */
	static const char *const prefix[] = { "", "warning: ", "info: ", "debug: " };
	char buf[1024];
	va_list ap;
	int n;

	if (level > cur_level)
		return;
	n = snprintf(buf, sizeof(buf), "kumo: %s", prefix[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	if (raw_terminal)
		buf[n++] = '\r';
	buf[n++] = '\n';
	/* One write so lines from several threads do not interleave. */
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}
