/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statsnap.h - the stats snapshot: the facts one stats document (statjson.h)
 * or one /metrics answer is made from, taken in one go by the stats thread.
 *
 * Data comes from three places, none of them touched from the wrong thread:
 *  - counters: every worker's struct stats, summed with relaxed loads;
 *  - connections: each worker copies its own connections into plain structs
 *    when asked (worker_call()), and the stats thread waits for the answers
 *    at most a given time; a worker that is late is reported, never waited for;
 *  - the kernel: sock_diag, ethtool netlink and /proc/net/tls_stat (nl.h),
 *    queried from the stats thread, never on the data path.
 */
#ifndef PGKTLS_STATSNAP_H
#define PGKTLS_STATSNAP_H

#include <sys/socket.h>
#include <sys/types.h>
#include <net/if.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"
#include "pgktls/ktls.h"
#include "pgktls/nl.h"
#include "pgktls/sock.h"
#include "pgktls/stats.h"

struct worker;

/* Interfaces the snapshot looks up NIC TLS features for, at most. */
#define STATSNAP_MAX_IFACES 16

/* One hop of a connection, copied out of the worker (strings, not pointers). */
struct statsnap_hop {
	bool open;			/* the hop has a socket */
	bool is_tcp;			/* false: unix socket (no kTLS, no sock_diag) */
	const char *record_layer;	/* the hop engine's name (hop.h): static */
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
struct statsnap_conn {
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
	struct statsnap_hop client;
	struct statsnap_hop server;
};

/* One network interface in use by a connection, and its NIC TLS features. */
struct statsnap_iface {
	char name[IF_NAMESIZE];
	int err;			/* 0, or -errno of the ethtool query */
	struct nl_nic_tls nic;
};

/* Why the metrics endpoint refused or cut off a request (the reasons counted). */
enum statsnap_refusal {
	STATSNAP_REFUSED_BAD_REQUEST,	/* 400: malformed */
	STATSNAP_REFUSED_NOT_FOUND,	/* 404: a path other than /metrics */
	STATSNAP_REFUSED_METHOD,		/* 405: a method other than GET or HEAD */
	STATSNAP_REFUSED_TIMEOUT,	/* 408: the request head was not complete in time */
	STATSNAP_REFUSED_TOO_LARGE,	/* 413, 414, 431: a body, a long line, a large head */
	STATSNAP_REFUSED_VERSION,	/* 505: not HTTP/1.x */
	STATSNAP_REFUSED_BUSY,		/* 503: more scrapers than the server takes */
	STATSNAP_REFUSED_ABORTED,	/* the client closed mid-request: no answer */
	STATSNAP_REFUSED_INTERNAL,	/* 500: no snapshot (out of memory) */
	STATSNAP_REFUSED__N
};

/* The metrics endpoint's own counters, kept by the stats thread. */
struct statsnap_metrics {
	bool enabled;			/* metrics_listen is set */
	uint64_t scrapes;		/* GET or HEAD /metrics answered 200 */
	uint64_t refused[STATSNAP_REFUSED__N];
};

/* Everything one document is rendered from. */
struct statsnap {
	const char *version;		/* PACKAGE_VERSION */
	long pid;
	uint64_t time_ms;		/* wall clock, ms since the epoch */
	uint64_t uptime_ms;
	unsigned n_workers;
	unsigned workers_late;		/* did not answer within the timeout */
	unsigned late[64];		/* their indexes (first 64) */
	struct stats totals;		/* sum over the workers */
	struct stats_process process;
	struct statsnap_conn *conns;	/* owned; free with statsnap_fini() */
	size_t n_conns;
	/* kernel */
	bool ktls_available;		/* /proc/net/tls_stat exists: the tls ULP is loaded */
	int tls_stat_err;		/* 0, or -errno reading it */
	struct nl_tls_stat tls_stat;
	int netlink_err;		/* 0, or why netlink sockets could not be opened */
	bool net_admin;			/* CAP_NET_ADMIN: the kernel shows ULP info */
	struct statsnap_iface *ifaces;	/* owned */
	size_t n_ifaces;
	struct statsnap_metrics metrics; /* copied in by the server, zero otherwise */
};

/**
 * statsnap_collect() - take a snapshot: sum the counters, ask every worker
 * for its connections (waiting at most @timeout_ms in all), then ask the
 * kernel about the kTLS sockets and the interfaces in use.
 * @nl: netlink context, or NULL (the document then says why the kernel view
 *	is missing, with @nl_err)
 * @out: filled; release with statsnap_fini()
 *
 * Call from a thread that is not a worker (it blocks).
 * Return: 0, or -ENOMEM.
 */
PGKTLS_MUSTCHECK int statsnap_collect(struct worker *workers, size_t n_workers,
				      unsigned timeout_ms, struct nl_ctx *nl, int nl_err,
				      struct statsnap *out);

/** statsnap_fini() - free what @s owns. */
void statsnap_fini(struct statsnap *s);

/**
 * statsnap_mark_start() - note now as the moment the snapshot's uptime counts
 * from. Only the first call counts (a restarted stats server keeps it).
 */
void statsnap_mark_start(void);

#endif /* PGKTLS_STATSNAP_H */
