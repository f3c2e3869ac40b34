// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "pgktls/listener.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/log.h"
#include "pgktls/pgproto.h"
#include "pgktls/stats.h"

/* Accepts per wakeup: enough to drain a burst, few enough to keep relays moving. */
#define LISTENER_BATCH 64
/* Out of descriptors: stop accepting this long, then try again. */
#define LISTENER_BACKOFF_MS 100
/*
 * EPOLLEXCLUSIVE: when the workers share one socket (socket activation),
 * a new connection wakes one worker that is waiting in epoll, not all of
 * them; a busy worker is passed over. Harmless on a worker's own socket.
 */
#define LISTENER_EVENTS (EPOLLIN | EPOLLEXCLUSIVE)
/* Clients taken from the queue when a drain closes the socket (the rest see the close). */
#define LISTENER_CLOSE_MAX 1024

static void backoff_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct listener *l = container_of(t, struct listener, backoff);

	if (ev_io_set(loop, &l->io, LISTENER_EVENTS) < 0)
		log_err("worker %u: cannot resume accepting: %s", l->idx, strerror(errno));
}

/* A descriptor held back for refusing connections at the limit (see refuse_at_limit()). */
static int spare_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Out of descriptors with clients waiting: give the spare back to the
 * kernel, accept one client with it, tell it why in the plaintext phase,
 * as PostgreSQL's postmaster does when it cannot start a backend, close,
 * and take the spare again. A burst at the limit is refused at once
 * instead of waiting in the backlog for a back-off to end.
 *
 * Return: true if a client was refused (try the next one), false if the
 * spare could not do it (the caller backs off).
 */
static bool refuse_at_limit(struct listener *l, int err)
{
	static const char detail[] = "pgktls has no file descriptor left for this connection";
	uint8_t msg[160];
	size_t n;
	int fd;

	if (l->spare_fd < 0)
		return false;
	close(l->spare_fd);
	fd = accept4(l->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		n = pgproto_build_error(msg, sizeof(msg), "FATAL", "53300",
					"sorry, too many clients already", detail, NULL);
		/* A fresh socket takes 120 bytes at once; if not, the client gets the close. */
		if (send(fd, msg, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("worker %u: refusal not sent: %s", l->idx, strerror(errno));
		close(fd);
		STAT_INC(l->stats, accept_refused_nofd);
	}
	l->spare_fd = spare_open();
	if (fd < 0 || l->spare_fd < 0)
		return false;
	if (!l->refusing)
		log_warn("worker %u: accept: %s; refusing new connections (53300) until "
			 "descriptors are free", l->idx, strerror(err));
	l->refusing = true;
	return true;
}

static void accept_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct listener *l = container_of(io, struct listener, io);

	for (int i = 0; i < LISTENER_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			int err = errno;

			if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
				return;
			if ((err == EMFILE || err == ENFILE) && refuse_at_limit(l, err))
				continue;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
				/*
				 * Level-triggered accept with no fds would spin: pause this
				 * listener; the pending clients wait in the backlog.
				 */
				STAT_INC(l->stats, accept_backoffs);
				log_warn("worker %u: accept: %s; pausing %d ms", l->idx,
					 strerror(err), LISTENER_BACKOFF_MS);
				ev_io_stop(loop, io);
				ev_timer_start(loop, &l->backoff, LISTENER_BACKOFF_MS);
				return;
			}
			log_warn("worker %u: accept: %s", l->idx, strerror(err));
			return;
		}
		if (l->refusing)
			log_info("worker %u: accepting again", l->idx);
		l->refusing = false;
		l->on_accept(l->arg, fd, (struct sockaddr *)&ss, len);
	}
}

struct listener *listener_new(struct ev_loop *loop, int fd, unsigned idx, struct stats *st,
			      listener_accept_cb *on_accept, void *arg)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->loop = loop;
	l->idx = idx;
	l->stats = st;
	l->on_accept = on_accept;
	l->arg = arg;
	/* Without a spare (already at the limit) EMFILE falls back to backing off. */
	l->spare_fd = spare_open();
	ev_io_init(&l->io, fd, accept_cb);
	ev_timer_init(&l->backoff, backoff_cb);
	if (ev_io_set(loop, &l->io, LISTENER_EVENTS) < 0) {
		if (l->spare_fd >= 0)
			close(l->spare_fd);
		free(l);
		return NULL;
	}
	return l;
}

void listener_close_accepting(struct listener *l)
{
	/*
	 * Out of epoll first: from here on a new client's wakeup goes to the
	 * other processes or threads that share the socket (an upgrade's new
	 * process). Then take what is queued, including a client whose wakeup we
	 * consumed and would otherwise leave waiting, unseen, until the next one.
	 */
	ev_io_stop(l->loop, &l->io);
	ev_timer_stop(l->loop, &l->backoff);
	for (int i = 0; i < LISTENER_CLOSE_MAX; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->io.fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		l->on_accept(l->arg, fd, (struct sockaddr *)&ss, len);
	}
	listener_free(l);
}

static void listener_release(struct ev_defer *d)
{
	free(container_of(d, struct listener, defer));
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	ev_io_stop(l->loop, &l->io);
	ev_timer_stop(l->loop, &l->backoff);
	if (l->spare_fd >= 0)
		close(l->spare_fd);
	close(l->io.fd);
	l->io.fd = -1;
	ev_defer(l->loop, &l->defer, listener_release);
}
