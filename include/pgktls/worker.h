/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * worker.h - one thread, one epoll loop, its own SO_REUSEPORT listeners and
 * every connection it accepted, for that connection's whole life (no locks
 * on the data path). Shared, read-only state lives in struct runtime.
 */
#ifndef PGKTLS_WORKER_H
#define PGKTLS_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"
#include "pgktls/relay.h"
#include "pgktls/sock.h"
#include "pgktls/stats.h"
#include "pgktls/tls.h"

struct conn;
struct ev_loop;
struct listener;
struct pgktls_config;
struct worker;

/*
 * What every connection needs to know about the configuration it was
 * accepted under: immutable, reference-counted, so a reload can swap in a
 * new one while old connections keep theirs.
 */
struct runtime {
	const struct pgktls_config *cfg;	/* owned */
	struct tls_contexts tls;		/* owned */
	struct sock_addr upstream;		/* resolved once, at load time */
	char upstream_str[SOCK_ADDR_STRLEN];	/* for messages */
	bool upstream_is_tcp;
	bool ktls_available;			/* ktls_probe() said yes */
	unsigned refs;				/* atomic */
};

/**
 * runtime_new() - load @cfg's TLS contexts and upstream address.
 * @cfg: taken over (freed with the runtime)
 * Return: a runtime with one reference, or NULL with @err filled.
 */
struct runtime *runtime_new(struct pgktls_config *cfg, char *err, size_t errlen);
struct runtime *runtime_get(struct runtime *rt);
void runtime_put(struct runtime *rt);

/*
 * worker_call_fn - runs in the worker's own thread, between events, so it
 * may read the worker's connections; it must not block.
 */
typedef void worker_call_fn(struct worker *w, void *arg);

/* A function another thread asks a worker to run (the stats snapshot). */
struct worker_call {
	worker_call_fn *fn;
	void *arg;
	struct worker_call *next;	/* the worker's queue */
};

struct worker {
	unsigned idx;
	pthread_t thread;
	struct ev_loop *loop;
	struct runtime *rt;		/* current config; a reference */
	struct listener **listeners;	/* this worker's own sockets */
	size_t n_listeners;
	struct conn *conns;		/* doubly linked list of live connections */
	struct stats stats;		/* written only by this thread */
	uint8_t *scratch;		/* RELAY_BATCH_SIZE bounce buffer */
	struct relay_pipes pipes;	/* spare empty pipes for splice() */
	bool stopping;
	bool drained;			/* worker_drain() has closed the listeners (atomic) */
	pthread_mutex_t calls_lock;	/* guards calls: the one cross-thread queue */
	struct worker_call *calls;	/* posted by worker_call(), run by the worker */
};

/**
 * worker_init() - create @w's loop and scratch buffer; listeners are added
 * with worker_add_listener() before worker_start().
 * Return: 0 or -errno.
 */
PGKTLS_MUSTCHECK int worker_init(struct worker *w, unsigned idx, struct runtime *rt);

/** worker_add_listener() - hand listening socket @fd to @w. Return: 0 or -errno. */
PGKTLS_MUSTCHECK int worker_add_listener(struct worker *w, int fd);

/** worker_start() - run @w's loop in a new thread. Return: 0 or -errno. */
PGKTLS_MUSTCHECK int worker_start(struct worker *w);

/** worker_stop() - ask @w to close everything and end its loop (thread-safe). */
void worker_stop(struct worker *w);

/** worker_join() and worker_fini() - wait for the thread, then free @w's resources. */
void worker_join(struct worker *w);
void worker_fini(struct worker *w);

/**
 * worker_call() - run @call->fn(@w, @call->arg) in @w's thread, soon
 * (thread-safe; returns at once). @call must stay valid until fn has run;
 * fn runs exactly once: in the worker's loop, or at worker_fini() if the
 * worker stopped first (then in the caller of worker_fini, after the join).
 */
void worker_call(struct worker *w, struct worker_call *call);

/**
 * worker_set_runtime() - give @w a new runtime for connections it accepts
 * from now on (thread-safe; takes its own reference). Connections already
 * accepted keep theirs.
 * Return: 0, or -ENOMEM.
 */
PGKTLS_MUSTCHECK int worker_set_runtime(struct worker *w, struct runtime *rt);

/** worker_drain() - stop accepting (close @w's listeners); connections go on. Thread-safe. */
void worker_drain(struct worker *w);

/**
 * worker_drained() - @w has run the drain worker_drain() asked for: it accepts
 * no more, so worker_active() can only go down from here (thread-safe).
 */
bool worker_drained(const struct worker *w);

/**
 * worker_track_conn() - keep @c in @w's list of live connections (in @w's
 * thread): the stats see it and a stop closes it. worker_untrack_conn() is
 * the conn_closed_cb that lets go of it; every connection of @w names it.
 */
void worker_track_conn(struct worker *w, struct conn *c);
void worker_untrack_conn(struct worker *w, struct conn *c);

/** worker_active() - connections @w holds now (thread-safe, approximate). */
uint64_t worker_active(const struct worker *w);

#endif /* PGKTLS_WORKER_H */
