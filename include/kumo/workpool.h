/* A small pool of threads for blocking work (disk I/O): submit a job from
 * any thread, one of the pool's threads runs it. Jobs run in no particular
 * order and at most nthreads at once. */
#ifndef KUMO_WORKPOOL_H
#define KUMO_WORKPOOL_H

#include "kumo/util.h"

struct workpool;

struct work {
	struct work *next;          /* the pool's */
	void (*fn)(struct work *w); /* runs on a pool thread */
};

/* name: the threads' name ("kumo-blk0", at most 15 characters). */
int workpool_create(unsigned nthreads, const char *name, struct workpool **out) WUR;
void workpool_submit(struct workpool *p, struct work *w);
/* Runs what is still queued, then joins the threads and frees the pool. */
void workpool_destroy(struct workpool *p);

#endif
