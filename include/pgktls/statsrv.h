/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statsrv.h - the statistics endpoint: a unix socket served by a thread of
 * its own, answering each client with one JSON document (statjson.h; see
 * docs/STATS.md), then EOF; and, with metrics_listen, the same thread
 * serving GET /metrics over HTTP (Prometheus text or OpenMetrics, rendered
 * by statfmt.c from that document's totals). Each answer comes from a
 * snapshot (statsnap.h) taken in the stats thread, one per round for every
 * client waiting; the workers get at most a second to answer.
 */
#ifndef PGKTLS_STATSRV_H
#define PGKTLS_STATSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

struct worker;
struct statsrv;

/* What a request on the unix socket asks for. */
enum statsrv_what {
	STATSRV_ALL,		/* "" or "all": the whole document */
	STATSRV_TOTALS,		/* "totals": counters and the kernel, no connection list */
	STATSRV_CONNECTIONS,	/* "connections": the connection list only */
	STATSRV_CONNECTION,	/* "connection ID": one connection */
	STATSRV_RELOAD,		/* "reload": reload the configuration, answer the result */
};

/**
 * statsrv_parse_request() - parse one request line (without or with its
 * trailing "\n" or "\r\n"; surrounding blanks are ignored).
 * @id: out: the id for STATSRV_CONNECTION
 * @err: the reason for a malformed request
 *
 * Return: 0 with *@what set, or -EINVAL.
 */
PGKTLS_MUSTCHECK int statsrv_parse_request(const char *line, size_t len, enum statsrv_what *what,
					   uint64_t *id, char *err, size_t errlen);

/* Where the socket goes and who may use it. */
/*
 * statsrv_reload_fn - the "reload" request: reload the configuration and
 * put a one-line result in @msg. Runs in the stats thread.
 * Return: 0 if the new configuration is in use, -errno if the old one stays.
 */
typedef int statsrv_reload_fn(void *arg, char *msg, size_t msglen);

struct statsrv_opts {
	const char *path;	/* socket path or NULL; a stale socket there is replaced */
	const char *metrics_listen; /* "ADDRESS:PORT" for HTTP GET /metrics, or NULL */
	unsigned mode;		/* permission bits, e.g. 0660 */
	long uid;		/* owner, or -1 to leave it */
	long gid;		/* group, or -1 to leave it */
	statsrv_reload_fn *reload; /* NULL: "reload" is refused */
	void *reload_arg;
	/*
	 * An upgrade (handover.h): serve these listening sockets, handed over by
	 * the previous process, instead of binding path / metrics_listen (-1:
	 * bind that one). Taken over by statsrv_start(), even when it fails.
	 */
	bool inherit;
	int inherit_fd;
	int inherit_http_fd;
};

/**
 * statsrv_start() - bind the socket and/or the metrics address, and start the
 * stats thread.
 * @workers: the worker array, which must outlive the stats thread
 * @out: the server, stopped and freed with statsrv_stop()
 *
 * Return: 0, or -errno (a socket cannot be bound, the thread not started;
 * -EINVAL: metrics_listen is not a numeric ADDRESS:PORT).
 */
PGKTLS_MUSTCHECK int statsrv_start(const struct statsrv_opts *opts, struct worker *workers,
				   size_t n_workers, struct statsrv **out);

/**
 * statsrv_listen_fds() - the listening sockets @s serves (for an upgrade to
 * hand over; still @s's), -1 where there is none.
 */
void statsrv_listen_fds(const struct statsrv *s, int *fd, int *http_fd);

/**
 * statsrv_keep_path() - statsrv_stop() will leave the socket file in place:
 * after an upgrade the new process serves it.
 */
void statsrv_keep_path(struct statsrv *s);

/**
 * statsrv_stop() - stop the thread (clients being served are dropped),
 * remove the socket file and free @s. Call before the workers are
 * finished. NULL is fine.
 */
void statsrv_stop(struct statsrv *s);

#endif /* PGKTLS_STATSRV_H */
