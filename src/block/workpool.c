/* The worker pool: one FIFO under a mutex, threads asleep on a condition
 * variable. The threads block every signal, so signalfd and the vCPU kick
 * signal keep going to the threads that expect them. */
#include "kumo/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct workpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct work *head, **tail;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker(void *arg)
{
	struct workpool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct work *w = p->head;
		if (!w) {
			if (p->stopping)
				break;
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		p->head = w->next;
		if (!p->head)
			p->tail = &p->head;
		pthread_mutex_unlock(&p->lock);
		w->fn(w);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int workpool_create(unsigned nthreads, const char *name, struct workpool **out)
{
	struct workpool *p;
	sigset_t all, old;
	int err = 0;

	if (!nthreads)
		return -EINVAL;
	p = calloc(1, sizeof(*p) + nthreads * sizeof(p->threads[0]));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->tail = &p->head;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->nthreads < nthreads; p->nthreads++) {
		if ((err = -pthread_create(&p->threads[p->nthreads], NULL, worker, p)))
			break;
		if (name)
			pthread_setname_np(p->threads[p->nthreads], name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		workpool_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

void workpool_submit(struct workpool *p, struct work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&p->lock);
	*p->tail = w;
	p->tail = &w->next;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void workpool_destroy(struct workpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
