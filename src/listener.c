// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "pgktls/listener.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/conn.h"
#include "pgktls/log.h"
#include "pgktls/worker.h"

/* Accepts per wakeup: enough to drain a burst, few enough to keep relays moving. */
#define LISTENER_BATCH 64
/*
 * EPOLLEXCLUSIVE: when the workers share one socket (socket activation),
 * a new connection wakes one worker that is waiting in epoll, not all of
 * them; a busy worker is passed over. Harmless on a worker's own socket.
 */
#define LISTENER_EVENTS (EPOLLIN | EPOLLEXCLUSIVE)
/* Out of descriptors: stop accepting this long, then try again. */
#define LISTENER_BACKOFF_MS 100

static void backoff_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct listener *l = container_of(t, struct listener, backoff);

	if (ev_io_set(loop, &l->io, LISTENER_EVENTS) < 0)
		log_err("worker %u: cannot resume accepting: %s", l->w->idx, strerror(errno));
}

static void accept_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct listener *l = container_of(io, struct listener, io);

	for (int i = 0; i < LISTENER_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			int err = errno;

			if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
				return;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
				/*
				 * Level-triggered accept with no fds would spin: pause this
				 * listener; the pending clients wait in the backlog.
				 */
				STAT_INC(&l->w->stats, accept_backoffs);
				log_warn("worker %u: accept: %s; pausing %d ms", l->w->idx,
					 strerror(err), LISTENER_BACKOFF_MS);
				ev_io_stop(loop, io);
				ev_timer_start(loop, &l->backoff, LISTENER_BACKOFF_MS);
				return;
			}
			log_warn("worker %u: accept: %s", l->w->idx, strerror(err));
			return;
		}
		conn_accept(l->w, fd, (struct sockaddr *)&ss, len);
	}
}

struct listener *listener_new(struct worker *w, int fd)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->w = w;
	ev_io_init(&l->io, fd, accept_cb);
	ev_timer_init(&l->backoff, backoff_cb);
	if (ev_io_set(w->loop, &l->io, LISTENER_EVENTS) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

static void listener_release(struct ev_defer *d)
{
	free(container_of(d, struct listener, defer));
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	ev_io_stop(l->w->loop, &l->io);
	ev_timer_stop(l->w->loop, &l->backoff);
	close(l->io.fd);
	l->io.fd = -1;
	ev_defer(l->w->loop, &l->defer, listener_release);
}
