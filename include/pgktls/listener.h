/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * listener.h - a worker's listening socket: accept4() in a loop, hand each
 * socket to the owner's callback; out of file descriptors, refuse clients at once
 * with a spare descriptor (FATAL 53300), or back off if even that fails.
 */
#ifndef PGKTLS_LISTENER_H
#define PGKTLS_LISTENER_H

#include <stdbool.h>

#include "pgktls/compiler.h"
#include "pgktls/ev.h"

#include <sys/socket.h>

struct stats;

/*
 * listener_accept_cb - a client socket was accepted: @fd (non-blocking,
 * close-on-exec) is the callee's from here on, to serve or close.
 */
typedef void listener_accept_cb(void *arg, int fd, const struct sockaddr *peer,
				socklen_t peerlen);

struct listener {
	struct ev_io io;	/* the listening fd (owned) */
	struct ev_timer backoff; /* re-arms accepting after EMFILE/ENFILE */
	struct ev_loop *loop;	/* the owning worker's */
	struct stats *stats;	/* the owning worker's counters */
	unsigned idx;		/* the owning worker's index, for log lines */
	listener_accept_cb *on_accept;
	void *arg;		/* for on_accept */
	int spare_fd;		/* held back to accept and refuse at the fd limit; -1 = none */
	bool refusing;		/* refusing at the fd limit now (for the log) */
	struct ev_defer defer;	/* the free, after the dispatch round that closed it */
};

/**
 * listener_new() - take over listening socket @fd and start accepting on @loop,
 * handing each client socket to @on_accept(@arg, ...).
 * @idx: the owning worker's index (log lines); @st: its counters
 * Return: the listener (freed with listener_free()), or NULL on ENOMEM.
 */
struct listener *listener_new(struct ev_loop *loop, int fd, unsigned idx, struct stats *st,
			      listener_accept_cb *on_accept, void *arg);

/**
 * listener_close_accepting() - a drain's close: stop watching the socket, then
 * accept (and hand to on_accept) the clients already queued on it, then
 * listener_free(). With EPOLLEXCLUSIVE, a client's wakeup may have gone to
 * this loop alone; closing without accepting would leave that client unseen
 * by the process that shares the socket (after an upgrade) until another
 * client arrives. Call from the owning worker's thread.
 */
void listener_close_accepting(struct listener *l);

/**
 * listener_free() - stop accepting and close the socket now; the memory is
 * freed after the current dispatch round (an event for it may already have
 * been fetched in the same round: a drain or stop runs from the wakeup
 * callback while new clients make the socket readable), or by ev_loop_free().
 */
void listener_free(struct listener *l);

#endif /* PGKTLS_LISTENER_H */
