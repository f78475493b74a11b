/* A small epoll event loop: one per machine, run on the machine thread;
 * devices add their fds before the vCPUs start. */
#ifndef KUMO_EVLOOP_H
#define KUMO_EVLOOP_H

#include "kumo/util.h"

#define EVLOOP_MAX 256

typedef void (*ev_fn)(void *opaque, uint32_t events);

struct evloop {
	int epfd;
	struct ev_slot {
		int fd; /* -1: free */
		ev_fn fn;
		void *opaque;
	} slots[EVLOOP_MAX];
};

int evloop_init(struct evloop *l) WUR;
void evloop_free(struct evloop *l);
int evloop_add(struct evloop *l, int fd, uint32_t events, ev_fn fn, void *opaque) WUR;
int evloop_mod(struct evloop *l, int fd, uint32_t events) WUR;
void evloop_del(struct evloop *l, int fd);
/* Waits up to timeout_ms (-1: forever) and runs the handlers of what is ready. */
int evloop_once(struct evloop *l, int timeout_ms) WUR;

#endif
