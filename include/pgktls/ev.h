/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * ev.h - a small level-triggered epoll loop: fd watchers, a timer heap on
 * CLOCK_MONOTONIC, a cross-thread wakeup, and deferred frees.
 *
 * One loop per worker thread; nothing here is shared between threads except
 * ev_loop_wakeup(). The loop knows nothing about connections: owners embed
 * struct ev_io / struct ev_timer and recover themselves with container_of.
 */
#ifndef PGKTLS_EV_H
#define PGKTLS_EV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct ev_loop;
struct ev_io;
struct ev_timer;

/*
 * ev_io_cb - an fd is ready. @events holds EPOLLIN/EPOLLOUT; EPOLLERR,
 * EPOLLHUP and EPOLLRDHUP are reported as EPOLLIN too, so the handler's
 * next read finds the error or EOF. The callback may stop or close @io.
 */
typedef void ev_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* ev_timer_cb - a timer expired; it is already stopped and may be restarted. */
typedef void ev_timer_cb(struct ev_loop *loop, struct ev_timer *t);

/* ev_defer_cb - runs after the current dispatch round; used to free owners. */
struct ev_defer;
typedef void ev_defer_cb(struct ev_defer *d);

struct ev_io {
	int fd;			/* -1 when not in use */
	uint32_t events;	/* mask registered with epoll (0 = not registered) */
	ev_io_cb *cb;
};

struct ev_timer {
	uint64_t when;		/* expiry, ms on the loop clock */
	size_t slot;		/* index in the heap + 1; 0 = not armed */
	ev_timer_cb *cb;
};

struct ev_defer {
	struct ev_defer *next;
	ev_defer_cb *cb;
	bool queued;
};

/**
 * ev_loop_new() - create a loop (epoll fd and wakeup eventfd).
 * Return: the loop, freed with ev_loop_free(); NULL with errno set.
 */
struct ev_loop *ev_loop_new(void);

/** ev_loop_free() - run what is still on the defer list, then free @loop. */
void ev_loop_free(struct ev_loop *loop);

/** ev_io_init() - prepare @io for @fd; nothing is registered yet. */
void ev_io_init(struct ev_io *io, int fd, ev_io_cb *cb);

/**
 * ev_io_set() - make epoll watch exactly @events (EPOLLIN|EPOLLOUT) on @io.
 * 0 removes the fd from epoll. No syscall when the mask is unchanged.
 * EPOLLEXCLUSIVE may be added to EPOLLIN for a watcher whose mask never
 * changes except through 0 (the kernel refuses it on a modification).
 * Return: 0, or -errno.
 */
PGKTLS_MUSTCHECK int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/**
 * ev_io_stop() - remove @io from epoll (before its fd is closed) and make
 * sure no event already fetched in this round is delivered to it.
 */
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_cb *cb);
/** ev_timer_start() - (re)arm @t to fire @ms milliseconds from ev_now(). */
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_armed(const struct ev_timer *t)
{
	return t->slot != 0;
}

/** ev_defer() - call @cb(@d) once the current dispatch round is over. */
void ev_defer(struct ev_loop *loop, struct ev_defer *d, ev_defer_cb *cb);

/** ev_now() - the loop clock in ms (CLOCK_MONOTONIC), cached per iteration. */
uint64_t ev_now(const struct ev_loop *loop);

/**
 * ev_run() - dispatch until ev_loop_break() is called.
 * Return: 0, or -errno if epoll_wait fails with something other than EINTR.
 */
PGKTLS_MUSTCHECK int ev_run(struct ev_loop *loop);

/** ev_loop_break() - make ev_run() return after the current iteration. */
void ev_loop_break(struct ev_loop *loop);

/**
 * ev_loop_wakeup() - thread-safe: interrupt epoll_wait and call @cb (set
 * with ev_loop_set_wakeup_cb()) in the loop's thread.
 */
void ev_loop_wakeup(struct ev_loop *loop);
void ev_loop_set_wakeup_cb(struct ev_loop *loop, void (*cb)(struct ev_loop *, void *), void *arg);

/** ev_monotonic_ms() - CLOCK_MONOTONIC now, in ms (uncached). */
uint64_t ev_monotonic_ms(void);

#endif /* PGKTLS_EV_H */
