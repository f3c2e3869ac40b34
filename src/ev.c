// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * ev.c - the epoll loop behind every worker.
 *
 * Level-triggered on purpose: the relay decides each round what it wants
 * from each fd (read, write, or both) and says so with ev_io_set(), so a
 * missed edge can never strand a connection. Freed objects are protected by
 * two rules: ev_io_stop() zeroes the mask, and dispatch skips watchers whose
 * mask is zero; owners are freed only from the defer list, after the round.
 */
#include "config.h"

#include "pgktls/ev.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256

struct ev_loop {
	int epfd;
	struct ev_io wake_io;		/* eventfd written by other threads */
	void (*wake_cb)(struct ev_loop *, void *);
	void *wake_arg;
	uint64_t now;			/* cached CLOCK_MONOTONIC ms */
	bool stop;
	struct ev_timer **heap;		/* min-heap on when */
	size_t n_heap;
	size_t cap_heap;
	struct ev_defer *defer_head;	/* LIFO is fine: order does not matter */
};

uint64_t ev_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t ev_now(const struct ev_loop *loop)
{
	return loop->now;
}

static void wake_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	uint64_t v;

	/* Drain the counter; several wakeups collapse into one callback. */
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (loop->wake_cb)
		loop->wake_cb(loop, loop->wake_arg);
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = calloc(1, sizeof(*loop));
	int efd;

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd == -1)
		goto err_free;
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd == -1)
		goto err_epoll;
	ev_io_init(&loop->wake_io, efd, wake_io_cb);
	if (ev_io_set(loop, &loop->wake_io, EPOLLIN) < 0)
		goto err_eventfd;
	loop->now = ev_monotonic_ms();
	return loop;

err_eventfd:
	close(efd);
err_epoll:
	close(loop->epfd);
err_free:
	free(loop);
	return NULL;
}

static void run_deferred(struct ev_loop *loop);

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	/* Frees queued after the last round (owners closed after the loop ended). */
	run_deferred(loop);
	close(loop->wake_io.fd);
	close(loop->epfd);
	free(loop->heap);
	free(loop);
}

void ev_loop_set_wakeup_cb(struct ev_loop *loop, void (*cb)(struct ev_loop *, void *), void *arg)
{
	loop->wake_cb = cb;
	loop->wake_arg = arg;
}

void ev_loop_wakeup(struct ev_loop *loop)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: a wakeup is pending. */
	if (write(loop->wake_io.fd, &one, sizeof(one)) < 0)
		(void)errno;
}

void ev_io_init(struct ev_io *io, int fd, ev_io_cb *cb)
{
	io->fd = fd;
	io->events = 0;
	io->cb = cb;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct epoll_event ee = { .events = events, .data.ptr = io };
	int op;

	if (events == io->events)
		return 0;
	if (events == 0) {
		ev_io_stop(loop, io);
		return 0;
	}
	/*
	 * RDHUP only with IN: level-triggered, a half-closed peer would
	 * otherwise wake a writer forever after its EOF was already read.
	 * EPOLLEXCLUSIVE (listeners) does not allow RDHUP, nor needs it.
	 */
	if ((events & EPOLLIN) && !(events & EPOLLEXCLUSIVE))
		ee.events |= EPOLLRDHUP;
	op = io->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(loop->epfd, op, io->fd, &ee) == -1)
		return -errno;
	io->events = events;
	return 0;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
	if (io->events && io->fd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->events = 0;
}

/* ---- timers: a binary min-heap of pointers; t->slot is its index + 1 ---- */

static void heap_swap(struct ev_loop *loop, size_t a, size_t b)
{
	struct ev_timer *t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->slot = a + 1;
	loop->heap[b]->slot = b + 1;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (loop->heap[p]->when <= loop->heap[i]->when)
			break;
		heap_swap(loop, p, i);
		i = p;
	}
}

static void heap_down(struct ev_loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < loop->n_heap && loop->heap[l]->when < loop->heap[m]->when)
			m = l;
		if (r < loop->n_heap && loop->heap[r]->when < loop->heap[m]->when)
			m = r;
		if (m == i)
			break;
		heap_swap(loop, i, m);
		i = m;
	}
}

void ev_timer_init(struct ev_timer *t, ev_timer_cb *cb)
{
	t->when = 0;
	t->slot = 0;
	t->cb = cb;
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	size_t i;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	loop->n_heap--;
	if (i == loop->n_heap)
		return;
	loop->heap[i] = loop->heap[loop->n_heap];
	loop->heap[i]->slot = i + 1;
	heap_up(loop, i);
	heap_down(loop, loop->heap[i]->slot - 1);
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t ms)
{
	ev_timer_stop(loop, t);
	if (loop->n_heap == loop->cap_heap) {
		size_t cap = loop->cap_heap ? loop->cap_heap * 2 : 64;
		struct ev_timer **h = realloc(loop->heap, cap * sizeof(*h));

		/* Out of memory for a timer: treat as already expired, never lose it. */
		PGKTLS_BUG_ON(!h);
		loop->heap = h;
		loop->cap_heap = cap;
	}
	t->when = loop->now + ms;
	loop->heap[loop->n_heap] = t;
	t->slot = ++loop->n_heap;
	heap_up(loop, loop->n_heap - 1);
}

void ev_defer(struct ev_loop *loop, struct ev_defer *d, ev_defer_cb *cb)
{
	if (d->queued)
		return;
	d->queued = true;
	d->cb = cb;
	d->next = loop->defer_head;
	loop->defer_head = d;
}

static void run_deferred(struct ev_loop *loop)
{
	while (loop->defer_head) {
		struct ev_defer *d = loop->defer_head;

		loop->defer_head = d->next;
		d->queued = false;
		d->cb(d);
	}
}

static void run_timers(struct ev_loop *loop)
{
	while (loop->n_heap && loop->heap[0]->when <= loop->now) {
		struct ev_timer *t = loop->heap[0];

		ev_timer_stop(loop, t);
		t->cb(loop, t);
	}
}

void ev_loop_break(struct ev_loop *loop)
{
	loop->stop = true;
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[EV_BATCH];

	loop->stop = false;
	while (!loop->stop) {
		int timeout = -1, n;

		if (loop->n_heap) {
			uint64_t when = loop->heap[0]->when;

			timeout = when <= loop->now ? 0 : (int)(when - loop->now);
		}
		n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout);
		if (n == -1 && errno != EINTR)
			return -errno;
		loop->now = ev_monotonic_ms();
		for (int i = 0; i < n; i++) {
			struct ev_io *io = evs[i].data.ptr;
			uint32_t e = evs[i].events;

			/* Stopped earlier in this round (its owner may be closing). */
			if (!io->events)
				continue;
			if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
				e |= EPOLLIN;
			io->cb(loop, io, e & (EPOLLIN | EPOLLOUT));
		}
		run_timers(loop);
		run_deferred(loop);
	}
	return 0;
}
