/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * listener.h - a worker's listening socket: accept4() in a loop, hand each
 * socket to conn_accept(), and back off when out of file descriptors.
 */
#ifndef PGKTLS_LISTENER_H
#define PGKTLS_LISTENER_H

#include "pgktls/compiler.h"
#include "pgktls/ev.h"

struct worker;

struct listener {
	struct ev_io io;	/* the listening fd (owned) */
	struct ev_timer backoff; /* re-arms accepting after EMFILE/ENFILE */
	struct worker *w;
	struct ev_defer defer;	/* the free, after the dispatch round that closed it */
};

/**
 * listener_new() - take over listening socket @fd for worker @w and start accepting.
 * Return: the listener (freed with listener_free()), or NULL on ENOMEM.
 */
struct listener *listener_new(struct worker *w, int fd);

/**
 * listener_free() - stop accepting and close the socket now; the memory is
 * freed after the current dispatch round (an event for it may already have
 * been fetched in the same round: a drain or stop runs from the wakeup
 * callback while new clients make the socket readable), or by ev_loop_free().
 */
void listener_free(struct listener *l);

#endif /* PGKTLS_LISTENER_H */
