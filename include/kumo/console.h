/* The serial console on the user's terminal (or pipes): raw mode restored
 * on every exit, Ctrl-A escapes as QEMU's, an optional log file. */
#ifndef KUMO_CONSOLE_H
#define KUMO_CONSOLE_H

#include "kumo/util.h"

struct console;
struct evloop;
struct machine;
struct serial;
struct serial_backend;

/* in_fd may be -1 (no input). log_path may be NULL. */
int console_open(struct console **out, struct machine *m, int in_fd, int out_fd,
		 const char *log_path, const char **why) WUR;
/* The UART backend that prints to this console. */
void console_backend(struct console *c, struct serial_backend *be);
/* Start reading input into s, from the machine thread's loop. */
int console_attach(struct console *c, struct serial *s, struct evloop *loop) WUR;
/* Restores the terminal; safe to call twice. */
void console_close(struct console *c);

#endif
