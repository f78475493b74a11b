#include "kumo/console.h"
#include "kumo/devices.h"
#include "kumo/evloop.h"
#include "kumo/log.h"
#include "kumo/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_CHAR 0x01 /* Ctrl-A */
#define OUT_BUF     8192

struct console {
	struct machine *m;
	struct serial *serial;
	struct evloop *loop;
	int in_fd, out_fd, log_fd;
	int room_efd;         /* the UART has room again */
	bool raw, escape, paused, out_broken;
	bool file_input, in_done;
	struct termios saved;
	/* Output: vCPUs append, the machine thread writes (one syscall per
	 * burst, not per byte); a full buffer is written by the vCPU itself. */
	pthread_mutex_t out_lock;
	int out_efd;
	size_t out_len;
	uint8_t out_buf[OUT_BUF];
};

/* The terminal must come back even when kumo leaves through exit(). */
static struct console *raw_console;

static void restore_terminal(void)
{
	if (raw_console && raw_console->raw) {
		tcsetattr(raw_console->in_fd, TCSAFLUSH, &raw_console->saved);
		raw_console->raw = false;
		log_set_raw_terminal(0);
	}
}

static void write_all(int fd, const uint8_t *buf, size_t len, bool *broken)
{
	while (len && !*broken) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*broken = true; /* a closed pipe: keep the guest running */
			return;
		}
		buf += n;
		len -= n;
	}
}

/* To the terminal and the log; a failing log does not stop the terminal. */
static void emit(struct console *c, const uint8_t *buf, size_t len)
{
	bool log_broken = false;

	write_all(c->out_fd, buf, len, &c->out_broken);
	if (c->log_fd >= 0)
		write_all(c->log_fd, buf, len, &log_broken);
}

static void flush_locked(struct console *c)
{
	emit(c, c->out_buf, c->out_len);
	c->out_len = 0;
}

static void console_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *c = opaque;
	uint64_t one = 1;

	pthread_mutex_lock(&c->out_lock);
	if (c->out_len + len > OUT_BUF)
		flush_locked(c);
	if (len > OUT_BUF) { /* the buffer is empty now: write through */
		emit(c, buf, len);
	} else {
		if (!c->out_len && write(c->out_efd, &one, sizeof(one)) < 0)
			log_debug("console: eventfd write failed");
		memcpy(c->out_buf + c->out_len, buf, len);
		c->out_len += len;
	}
	pthread_mutex_unlock(&c->out_lock);
}

static void on_output(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;

	(void)events;
	if (read(c->out_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&c->out_lock);
	flush_locked(c);
	pthread_mutex_unlock(&c->out_lock);
}

static void console_rx_room(void *opaque)
{
	struct console *c = opaque;
	uint64_t one = 1;

	if (write(c->room_efd, &one, sizeof(one)) < 0)
		log_debug("console: eventfd write failed");
}

void console_backend(struct console *c, struct serial_backend *be)
{
	be->tx = console_tx;
	be->rx_room = console_rx_room;
	be->opaque = c;
}

static void help(void)
{
	static const char text[] =
		"\r\nC-a h    print this help\r\n"
		"C-a x    quit kumo (the guest is stopped)\r\n"
		"C-a C-a  send C-a to the guest\r\n";
	if (write(STDERR_FILENO, text, sizeof(text) - 1) < 0)
		return;
}

static void set_paused(struct console *c, bool paused)
{
	if (c->paused == paused || c->file_input || c->in_done)
		return;
	c->paused = paused;
	if (evloop_mod(c->loop, c->in_fd, paused ? 0 : EPOLLIN))
		log_warn("console: cannot %s input", paused ? "pause" : "resume");
}

/* Feeds bytes through the escape filter into the UART. */
static void feed(struct console *c, const uint8_t *in, size_t n)
{
	uint8_t out[256];
	size_t n_out = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = in[i];
		if (c->escape) {
			c->escape = false;
			if (ch == 'x' || ch == 'X') {
				machine_request_exit(c->m, EXIT_USER_QUIT);
				return;
			}
			if (ch == 'h' || ch == 'H' || ch == '?')
				help();
			else if (ch == ESCAPE_CHAR || ch == 'a')
				out[n_out++] = ESCAPE_CHAR;
			continue;
		}
		if (ch == ESCAPE_CHAR)
			c->escape = true;
		else
			out[n_out++] = ch;
	}
	serial_receive(c->serial, out, n_out);
}

static void stop_input(struct console *c)
{
	if (!c->file_input)
		evloop_del(c->loop, c->in_fd);
	c->in_done = true;
}

/* Reads as much input as the UART has room for; what does not fit stays
 * unread (in the terminal, pipe or file) until the guest drains its FIFO
 * and console_rx_room() wakes us. A regular file, which epoll cannot wait
 * on, is read only on those wake-ups. */
static void on_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;

	(void)events;
	while (!c->in_done && !machine_exiting(c->m)) {
		uint8_t in[256];
		size_t room = serial_rx_room(c->serial);
		ssize_t n;

		if (!room) {
			set_paused(c, true);
			return;
		}
		n = read(c->in_fd, in, MIN(room, sizeof(in)));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { /* end of input: the guest keeps running */
			stop_input(c);
			return;
		}
		feed(c, in, n);
		if (!c->file_input)
			return; /* epoll says when there is more */
	}
}

static void on_room(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;

	(void)events;
	if (read(c->room_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (c->file_input)
		on_input(c, 0);
	else
		set_paused(c, false);
}

int console_open(struct console **out, struct machine *m, int in_fd, int out_fd,
		 const char *log_path, const char **why)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->m = m;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->log_fd = -1;
	pthread_mutex_init(&c->out_lock, NULL);
	c->room_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->out_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->room_efd < 0 || c->out_efd < 0) {
		int err = -errno;
		console_close(c);
		return err;
	}
	if (log_path) {
		c->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (c->log_fd < 0) {
			int err = -errno;
			*why = "cannot open the console log file";
			console_close(c);
			return err;
		}
	}
	if (in_fd >= 0 && isatty(in_fd) && tcgetattr(in_fd, &c->saved) == 0) {
		struct termios raw = c->saved;
		cfmakeraw(&raw);
		static bool registered;
		raw_console = c;
		if (!registered)
			registered = !atexit(restore_terminal);
		if (tcsetattr(in_fd, TCSANOW, &raw) == 0) {
			c->raw = true;
			log_set_raw_terminal(1);
		}
	}
	*out = c;
	return 0;
}

int console_attach(struct console *c, struct serial *s, struct evloop *loop)
{
	int err;

	c->serial = s;
	c->loop = loop;
	err = evloop_add(loop, c->room_efd, EPOLLIN, on_room, c);
	if (!err)
		err = evloop_add(loop, c->out_efd, EPOLLIN, on_output, c);
	if (err || c->in_fd < 0)
		return err;
	err = evloop_add(loop, c->in_fd, EPOLLIN, on_input, c);
	if (err == -EPERM) { /* a regular file: always readable, epoll refuses it */
		c->file_input = true;
		console_rx_room(c); /* read the first bytes from the loop */
		err = 0;
	}
	return err;
}

void console_close(struct console *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->out_lock);
	flush_locked(c);
	pthread_mutex_unlock(&c->out_lock);
	pthread_mutex_destroy(&c->out_lock);
	if (raw_console == c) {
		restore_terminal();
		raw_console = NULL;
	}
	if (c->log_fd >= 0)
		close(c->log_fd);
	if (c->room_efd >= 0)
		close(c->room_efd);
	if (c->out_efd >= 0)
		close(c->out_efd);
	free(c);
}
