/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * listener.h - a worker's listening socket: accept4() in a loop, hand each
 * socket to conn_accept(); out of file descriptors, refuse clients at once
 * with a spare descriptor (FATAL 53300), or back off if even that fails.
 */
#ifndef PGKTLS_LISTENER_H
#define PGKTLS_LISTENER_H

#include <stdbool.h>

#include "pgktls/compiler.h"
#include "pgktls/ev.h"

struct worker;

struct listener {
	struct ev_io io;	/* the listening fd (owned) */
	struct ev_timer backoff; /* re-arms accepting after EMFILE/ENFILE */
	struct worker *w;
	int spare_fd;		/* held back to accept and refuse at the fd limit; -1 = none */
	bool refusing;		/* refusing at the fd limit now (for the log) */
};

/**
 * listener_new() - take over listening socket @fd for worker @w and start accepting.
 * Return: the listener (freed with listener_free()), or NULL on ENOMEM.
 */
struct listener *listener_new(struct worker *w, int fd);

/** listener_free() - stop accepting and close the socket. */
void listener_free(struct listener *l);

#endif /* PGKTLS_LISTENER_H */
