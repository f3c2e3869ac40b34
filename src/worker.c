// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * worker.c - worker threads and the shared runtime they serve.
 */
#include "config.h"

#include "pgktls/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/config.h"
#include "pgktls/conn.h"
#include "pgktls/ev.h"
#include "pgktls/ktls.h"
#include "pgktls/listener.h"
#include "pgktls/log.h"
#include "pgktls/relay.h"

struct runtime *runtime_new(struct pgktls_config *cfg, char *err, size_t errlen)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	struct sock_addr *addrs = NULL;
	size_t n = 0;

	if (!rt) {
		snprintf(err, errlen, "out of memory");
		config_free(cfg);
		return NULL;
	}
	rt->cfg = cfg;
	rt->refs = 1;
	if (tls_contexts_build(cfg, &rt->tls, err, errlen) < 0)
		goto err;
	if (cfg->upstream_unix_socket) {
		if (sock_unix_addr(cfg->upstream_unix_socket, cfg->upstream_port,
				   &rt->upstream) < 0) {
			snprintf(err, errlen, "upstream.unix_socket: path too long, got '%s'",
				 cfg->upstream_unix_socket);
			goto err;
		}
		rt->upstream_is_tcp = false;
	} else {
		if (sock_resolve(cfg->upstream_host, cfg->upstream_port, false, &addrs, &n, err,
				 errlen) < 0)
			goto err;
		if (n == 0) {
			snprintf(err, errlen, "upstream.host: no address for '%s'",
				 cfg->upstream_host);
			goto err;
		}
		/* The first address, as resolved at load time (a reload re-resolves). */
		rt->upstream = addrs[0];
		rt->upstream_is_tcp = true;
		free(addrs);
	}
	sock_addr_str((struct sockaddr *)&rt->upstream.ss, rt->upstream.len, rt->upstream_str,
		      sizeof(rt->upstream_str));
	rt->ktls_available = cfg->ktls_client != CFG_KTLS_OFF || cfg->ktls_server != CFG_KTLS_OFF
				     ? ktls_probe()
				     : false;
	return rt;
err:
	runtime_put(rt);
	return NULL;
}

struct runtime *runtime_get(struct runtime *rt)
{
	__atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
	return rt;
}

void runtime_put(struct runtime *rt)
{
	if (!rt || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	tls_contexts_fini(&rt->tls);
	config_free((struct pgktls_config *)rt->cfg);
	free(rt);
}

/* Run every posted call, in posting order. */
static void run_calls(struct worker *w)
{
	struct worker_call *list, *rev = NULL;

	pthread_mutex_lock(&w->calls_lock);
	list = w->calls;
	w->calls = NULL;
	pthread_mutex_unlock(&w->calls_lock);
	while (list) {
		struct worker_call *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct worker_call *next = rev->next;

		rev->fn(w, rev->arg);	/* may free rev */
		rev = next;
	}
}

void worker_call(struct worker *w, struct worker_call *call)
{
	pthread_mutex_lock(&w->calls_lock);
	call->next = w->calls;
	w->calls = call;
	pthread_mutex_unlock(&w->calls_lock);
	ev_loop_wakeup(w->loop);
}

/* A call that carries its own storage and frees it when run. */
struct owned_call {
	struct worker_call call;
	struct runtime *rt;	/* for set_runtime: a reference handed over */
};

static void set_runtime_fn(struct worker *w, void *arg)
{
	struct owned_call *oc = arg;

	runtime_put(w->rt);
	w->rt = oc->rt;
	free(oc);
}

int worker_set_runtime(struct worker *w, struct runtime *rt)
{
	struct owned_call *oc = calloc(1, sizeof(*oc));

	if (!oc)
		return -ENOMEM;
	oc->rt = runtime_get(rt);
	oc->call.fn = set_runtime_fn;
	oc->call.arg = oc;
	worker_call(w, &oc->call);
	return 0;
}

static void close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++)
		listener_free(w->listeners[i]);
	w->n_listeners = 0;
}

static void drain_fn(struct worker *w, void *arg)
{
	/* Clients already queued are served (and drained) here, not left unseen. */
	for (size_t i = 0; i < w->n_listeners; i++)
		listener_close_accepting(w->listeners[i]);
	w->n_listeners = 0;
	__atomic_store_n(&w->drained, true, __ATOMIC_RELEASE);
	free(arg);
}

bool worker_drained(const struct worker *w)
{
	return __atomic_load_n(&w->drained, __ATOMIC_ACQUIRE);
}

void worker_drain(struct worker *w)
{
	struct worker_call *call = calloc(1, sizeof(*call));

	/* Out of memory: stopping later closes the listeners all the same. */
	if (!call) {
		__atomic_store_n(&w->drained, true, __ATOMIC_RELEASE);
		return;
	}
	call->fn = drain_fn;
	call->arg = call;
	worker_call(w, call);
}

uint64_t worker_active(const struct worker *w)
{
	return __atomic_load_n(&w->stats.conns_active, __ATOMIC_RELAXED);
}

static void on_wakeup(struct ev_loop *loop, void *arg)
{
	struct worker *w = arg;

	run_calls(w);
	if (!__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE))
		return;
	close_listeners(w);
	while (w->conns)
		conn_close(w->conns, CONN_CLOSE_SHUTDOWN);
	ev_loop_break(loop);
}

int worker_init(struct worker *w, unsigned idx, struct runtime *rt)
{
	memset(w, 0, sizeof(*w));
	w->idx = idx;
	w->loop = ev_loop_new();
	if (!w->loop)
		return -errno;
	w->scratch = malloc(RELAY_BATCH_SIZE);
	if (!w->scratch) {
		ev_loop_free(w->loop);
		return -ENOMEM;
	}
	w->rt = runtime_get(rt);
	pthread_mutex_init(&w->calls_lock, NULL);
	ev_loop_set_wakeup_cb(w->loop, on_wakeup, w);
	return 0;
}

void worker_untrack_conn(struct worker *w, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (w->conns == c)
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* listener_accept_cb: a new client; the worker keeps its connection in its list. */
static void on_accept(void *arg, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct worker *w = arg;
	struct conn *c = conn_accept(w, fd, peer, peerlen, worker_untrack_conn);

	/* Closed already (a failed set-up)? Then it was never listed. */
	if (c && c->state != CONN_CLOSING)
		worker_track_conn(w, c);
}

void worker_track_conn(struct worker *w, struct conn *c)
{
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
}

int worker_add_listener(struct worker *w, int fd)
{
	struct listener **ls = realloc(w->listeners, (w->n_listeners + 1) * sizeof(*ls));
	struct listener *l;

	if (!ls)
		return -ENOMEM;
	w->listeners = ls;
	l = listener_new(w->loop, fd, w->idx, &w->stats, on_accept, w);
	if (!l)
		return -ENOMEM;
	w->listeners[w->n_listeners++] = l;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (ev_run(w->loop) < 0)
		log_err("worker %u: event loop failed: %s", w->idx, strerror(errno));
	return NULL;
}

int worker_start(struct worker *w)
{
	return -pthread_create(&w->thread, NULL, worker_main, w);
}

void worker_stop(struct worker *w)
{
	__atomic_store_n(&w->stopping, true, __ATOMIC_RELEASE);
	ev_loop_wakeup(w->loop);
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

void worker_fini(struct worker *w)
{
	run_calls(w);	/* calls posted after the loop ended still run, once */
	pthread_mutex_destroy(&w->calls_lock);
	for (size_t i = 0; i < w->n_listeners; i++)
		listener_free(w->listeners[i]);
	free(w->listeners);
	ev_loop_free(w->loop);
	free(w->scratch);
	relay_pipes_fini(&w->pipes);
	runtime_put(w->rt);
	memset(w, 0, sizeof(*w));
}
