#include "kumo/evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int evloop_init(struct evloop *l)
{
	for (unsigned i = 0; i < EVLOOP_MAX; i++)
		l->slots[i].fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

void evloop_free(struct evloop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

static int find(struct evloop *l, int fd)
{
	for (unsigned i = 0; i < EVLOOP_MAX; i++)
		if (l->slots[i].fd == fd)
			return i;
	return -1;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, ev_fn fn, void *opaque)
{
	int i = find(l, -1);
	struct epoll_event ev = { .events = events };

	if (fd < 0)
		return -EBADF;
	if (i < 0)
		return -ENOSPC;
	ev.data.u32 = i;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->slots[i] = (struct ev_slot){ fd, fn, opaque };
	return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	int i = find(l, fd);
	struct epoll_event ev = { .events = events };

	if (fd < 0 || i < 0)
		return -ENOENT;
	ev.data.u32 = i;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void evloop_del(struct evloop *l, int fd)
{
	int i = find(l, fd);

	if (fd < 0 || i < 0)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->slots[i].fd = -1;
}

int evloop_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(l->epfd, evs, ARRAY_SIZE(evs), timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct ev_slot *s = &l->slots[evs[i].data.u32];
		if (s->fd >= 0) /* an earlier handler may have removed it */
			s->fn(s->opaque, evs[i].events);
	}
	return 0;
}
