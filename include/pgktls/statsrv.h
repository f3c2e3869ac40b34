/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statsrv.h - the statistics endpoint: a unix socket served by a thread of
 * its own, answering each client with one JSON document (see docs/STATS.md
 * and docs/stats.schema.json), then EOF; and, with metrics_listen, the same
 * thread serving GET /metrics over HTTP (Prometheus text or OpenMetrics,
 * rendered by statfmt.c from that document's totals).
 *
 * Data comes from three places, none of them touched from the wrong thread:
 *  - counters: every worker's struct stats, summed with relaxed loads;
 *  - connections: each worker copies its own connections into plain structs
 *    when asked (worker_call()), and the stats thread waits for the answers
 *    at most a second; a worker that is late is reported, never waited for;
 *  - the kernel: sock_diag, ethtool netlink and /proc/net/tls_stat (nl.h),
 *    queried from the stats thread, never on the data path.
 */
#ifndef PGKTLS_STATSRV_H
#define PGKTLS_STATSRV_H

#include <sys/socket.h>
#include <sys/types.h>
#include <net/if.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pgktls/compiler.h"
#include "pgktls/ktls.h"
#include "pgktls/nl.h"
#include "pgktls/sock.h"
#include "pgktls/stats.h"

struct worker;
struct statsrv;

/* One hop of a connection, copied out of the worker (strings, not pointers). */
struct statsrv_hop {
	bool open;			/* the hop has a socket */
	bool is_tcp;			/* false: unix socket (no kTLS, no sock_diag) */
	bool tls;			/* an SSL exists on this hop */
	bool tls_done;			/* ... and its handshake is complete */
	char version[16];		/* "TLSv1.3" */
	char cipher[64];		/* OpenSSL's name, "TLS_AES_256_GCM_SHA384" */
	char alpn[32];			/* negotiated ALPN, "" if none */
	char sni[256];			/* server name sent (server hop) or received (client) */
	char peer_subject[256];		/* the peer certificate's subject, "" if none */
	bool peer_verified;		/* ... asked for and verified (tls_peer_verified()) */
	struct ktls_hop_state ktls;	/* what pgktls decided, per direction */
	struct sockaddr_storage local;	/* getsockname() */
	struct sockaddr_storage remote;	/* getpeername() */
	socklen_t local_len;		/* 0 if unknown */
	socklen_t remote_len;
	uint64_t inode;			/* socket inode, to match sock_diag's answer */
	/* Filled by the stats thread: the kernel's own view of this socket. */
	int kernel_err;			/* 0: kernel is valid; else -errno of the query */
	const char *kernel_why;		/* when kernel_err != 0: why, for the document */
	struct nl_sock_info kernel;
};

/* One connection at snapshot time. */
struct statsrv_conn {
	uint64_t id;
	unsigned worker;
	const char *state;		/* conn_state_name(): static storage */
	uint64_t age_ms;
	char client_addr[SOCK_ADDR_STRLEN];
	char upstream_addr[SOCK_ADDR_STRLEN];
	uint64_t bytes_c2s;		/* delivered to PostgreSQL */
	uint64_t bytes_s2c;		/* delivered to the client */
	char upstream_identity[256];	/* subject presented upstream from
					 * tls_server_identity_map; "" if none */
	struct statsrv_hop client;
	struct statsrv_hop server;
};

/* One network interface in use by a connection, and its NIC TLS features. */
struct statsrv_iface {
	char name[IF_NAMESIZE];
	int err;			/* 0, or -errno of the ethtool query */
	struct nl_nic_tls nic;
};

/* Why the metrics endpoint refused or cut off a request (the reasons counted). */
enum statsrv_refusal {
	STATSRV_REFUSED_BAD_REQUEST,	/* 400: malformed */
	STATSRV_REFUSED_NOT_FOUND,	/* 404: a path other than /metrics */
	STATSRV_REFUSED_METHOD,		/* 405: a method other than GET or HEAD */
	STATSRV_REFUSED_TIMEOUT,	/* 408: the request head was not complete in time */
	STATSRV_REFUSED_TOO_LARGE,	/* 413, 414, 431: a body, a long line, a large head */
	STATSRV_REFUSED_VERSION,	/* 505: not HTTP/1.x */
	STATSRV_REFUSED_BUSY,		/* 503: more scrapers than STATSRV_MAX_CLIENTS */
	STATSRV_REFUSED_ABORTED,	/* the client closed mid-request: no answer */
	STATSRV_REFUSED_INTERNAL,	/* 500: no snapshot (out of memory) */
	STATSRV_REFUSED__N
};

/* The metrics endpoint's own counters, kept by the stats thread. */
struct statsrv_metrics_stats {
	bool enabled;			/* metrics_listen is set */
	uint64_t scrapes;		/* GET or HEAD /metrics answered 200 */
	uint64_t refused[STATSRV_REFUSED__N];
};

/**
 * statsrv_refusal_name() - the document's (and the metric label's) name for @r:
 * "bad_request", "not_found", "method_not_allowed", "timeout", "too_large",
 * "version_not_supported", "busy", "aborted", "internal".
 * Return: static storage.
 */
const char *statsrv_refusal_name(enum statsrv_refusal r);

/* Everything one document is rendered from. */
struct statsrv_snapshot {
	const char *version;		/* PACKAGE_VERSION */
	long pid;
	uint64_t time_ms;		/* wall clock, ms since the epoch */
	uint64_t uptime_ms;
	unsigned n_workers;
	unsigned workers_late;		/* did not answer within the timeout */
	unsigned late[64];		/* their indexes (first 64) */
	struct stats totals;		/* sum over the workers */
	struct stats_process process;
	struct statsrv_conn *conns;	/* owned; free with statsrv_snapshot_fini() */
	size_t n_conns;
	/* kernel */
	bool ktls_available;		/* /proc/net/tls_stat exists: the tls ULP is loaded */
	int tls_stat_err;		/* 0, or -errno reading it */
	struct nl_tls_stat tls_stat;
	int netlink_err;		/* 0, or why netlink sockets could not be opened */
	bool net_admin;			/* CAP_NET_ADMIN: the kernel shows ULP info */
	struct statsrv_iface *ifaces;	/* owned */
	size_t n_ifaces;
	struct statsrv_metrics_stats metrics; /* copied in by the server, zero otherwise */
};

/* What a request asks for. */
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

/**
 * statsrv_render() - the document for @what (schema: docs/stats.schema.json).
 * Return: a new cJSON tree the caller frees with cJSON_Delete(), or NULL on
 * ENOMEM. A STATSRV_CONNECTION for an unknown id renders an error object.
 */
cJSON *statsrv_render(const struct statsrv_snapshot *s, enum statsrv_what what, uint64_t id);

/**
 * statsrv_render_error() - {"error": {"code": @code, "message": @msg}}.
 * Return: a new tree (cJSON_Delete()), or NULL on ENOMEM.
 */
cJSON *statsrv_render_error(const char *code, const char *msg);

/**
 * statsrv_collect() - take a snapshot: sum the counters, ask every worker
 * for its connections (waiting at most @timeout_ms in all), then ask the
 * kernel about the kTLS sockets and the interfaces in use.
 * @nl: netlink context, or NULL (the document then says why the kernel view
 *	is missing, with @nl_err)
 * @out: filled; release with statsrv_snapshot_fini()
 *
 * Call from a thread that is not a worker (it blocks).
 * Return: 0, or -ENOMEM.
 */
PGKTLS_MUSTCHECK int statsrv_collect(struct worker *workers, size_t n_workers,
				     unsigned timeout_ms, struct nl_ctx *nl, int nl_err,
				     struct statsrv_snapshot *out);

/** statsrv_snapshot_fini() - free what @s owns. */
void statsrv_snapshot_fini(struct statsrv_snapshot *s);

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
