/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * conn.h - one client connection and its upstream connection: the state
 * machine from accept to close, and the one teardown path.
 */
#ifndef PGKTLS_CONN_H
#define PGKTLS_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "pgktls/authinspect.h"
#include "pgktls/ev.h"
#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/sock.h"

struct conn;
struct runtime;
struct tls_identity;
struct worker;

enum conn_state {
	CONN_PROXY_HEADER,	/* proxy_protocol: reading the balancer's PROXY header */
	CONN_ACCEPTED,		/* reading the first plaintext packet (or peeking 0x16) */
	CONN_CLIENT_TLS,	/* SSL_accept in progress */
	CONN_STARTUP,		/* TLS up: reading StartupMessage or CancelRequest */
	CONN_UPSTREAM_CONNECT,	/* non-blocking connect() to PostgreSQL */
	CONN_UPSTREAM_SSLREQ,	/* SSLRequest sent, waiting for 'S' or 'N' */
	CONN_UPSTREAM_TLS,	/* SSL_connect in progress */
	CONN_CANCEL_SEND,	/* writing a CancelRequest upstream, then done */
	CONN_RELAY,		/* both hops up; auth inspected until AuthenticationOk */
	CONN_ERROR_FLUSH,	/* sending our ErrorResponse to the client, then close */
	CONN_CLOSING,		/* on the defer list; no I/O allowed */
	CONN__NSTATES
};

/* Why a connection ended: counted per reason, logged on close. */
enum conn_close_reason {
	CONN_CLOSE_DONE,		/* both sides finished cleanly */
	CONN_CLOSE_CLIENT_GONE,		/* client vanished before or during relay */
	CONN_CLOSE_CLIENT_ERROR,	/* client socket/TLS error */
	CONN_CLOSE_SERVER_ERROR,	/* upstream socket/TLS error during relay */
	CONN_CLOSE_HANDSHAKE,		/* client TLS handshake failed */
	CONN_CLOSE_TIMEOUT,		/* handshake, startup or upstream connect too slow */
	CONN_CLOSE_PROTOCOL,		/* malformed or illegal negotiation */
	CONN_CLOSE_TLS_REQUIRED,	/* plaintext client refused */
	CONN_CLOSE_UPSTREAM,		/* upstream unreachable or its TLS failed */
	CONN_CLOSE_CANCEL,		/* CancelRequest forwarded */
	CONN_CLOSE_KTLS,		/* ktls = required and offload was not possible */
	CONN_CLOSE_KEYUPDATE,		/* a KeyUpdate the kernel cannot follow */
	CONN_CLOSE_SHUTDOWN,		/* pgktls is stopping */
	CONN_CLOSE_NOMEM,		/* allocation failure */
	CONN_CLOSE_PROXY,		/* PROXY header missing or bad, or source untrusted */
	CONN_CLOSE_HANDED_OVER,		/* moved to a new process by an upgrade: its fds are
					 * closed without close_notify or shutdown (the new
					 * process holds the same sockets and goes on) */
	CONN__NREASONS
};

/* Connection flags. */
#define CONN_F_DIRECT_TLS (1u << 0)	/* client used PostgreSQL 17 direct TLS */
#define CONN_F_GSS_SEEN (1u << 1)	/* a GSSENCRequest was answered 'N' */
#define CONN_F_SSL_SEEN (1u << 2)	/* an SSLRequest was answered */
#define CONN_F_INSPECT (1u << 3)	/* server->client auth messages are inspected */
#define CONN_F_CANCEL (1u << 4)		/* this connection carries a CancelRequest */
#define CONN_F_PROXY_LOCAL (1u << 5)	/* PROXY header without a client: the balancer's own
					 * connection (a health check) */
#define CONN_F_FROZEN (1u << 6)		/* offered to a new process (binary upgrade): no event,
					 * no I/O until it answers (conn_freeze()) */
#define CONN_F_KEPT (1u << 7)		/* the new process refused it: it stays here, never
					 * offered again */
/* The flags a connection carries to a new process (the others are this process's). */
#define CONN_F_MOVED_MASK (CONN_F_DIRECT_TLS | CONN_F_GSS_SEEN | CONN_F_SSL_SEEN | \
			   CONN_F_INSPECT | CONN_F_PROXY_LOCAL)

/*
 * conn_closed_cb - the connection is closing (from conn_close(), in the
 * worker's thread): its owner lets go of it; it is freed after the
 * current dispatch round.
 */
typedef void conn_closed_cb(struct worker *w, struct conn *c);

struct conn {
	uint64_t id;			/* process-wide, for log lines */
	char peer[SOCK_ADDR_STRLEN];	/* client address */
	enum conn_state state;		/* written only by conn_set_state() */
	enum conn_state state_before_close; /* what the conn was doing when closed */
	unsigned flags;			/* CONN_F_* */
	struct worker *w;		/* owning worker (and thread) */
	struct runtime *rt;		/* config this connection started with; a reference */
	const struct tls_identity *identity; /* presented upstream for the client's verified
					 * certificate (tls_identity_pick()); owned by rt */
	struct hop client;		/* owns the accepted fd and its SSL */
	struct hop server;		/* owns the upstream fd and its SSL */
	struct relay_dir c2s;		/* client -> server (holds the startup packet first) */
	struct relay_dir s2c;		/* server -> client (or our ErrorResponse) */
	struct relay relay;		/* wiring of the above for relay_run() */
	struct authinspect auth;	/* server->client authentication, until AuthenticationOk */
	struct pgproto_framer c2s_frame; /* where each direction stands between messages */
	struct pgproto_framer s2c_frame;
	struct ev_timer timer;		/* startup / connect / flush deadline */
	struct ev_defer defer;		/* frees the conn after the dispatch round */
	struct conn *prev, *next;	/* worker's list: only worker.c touches these */
	conn_closed_cb *on_closed;	/* the owner's, from conn_accept() */
	uint64_t accepted_ms;		/* ev_now() at accept */
	enum conn_close_reason close_reason;
};

/**
 * conn_accept() - take over an accepted socket and start its state machine.
 * @w: the accepting worker (the connection lives on its thread)
 * @fd: non-blocking socket from accept4(); owned by the conn from here on,
 *	closed here on failure
 * @peer: the client's address
 * @on_closed: called by conn_close(), so the worker can let go of it
 *
 * Return: the connection, for the worker to keep in its list until
 * @on_closed; NULL (out of memory, @fd closed).
 */
struct conn *conn_accept(struct worker *w, int fd, const struct sockaddr *peer,
			 socklen_t peerlen, conn_closed_cb *on_closed);

/**
 * conn_close() - the one teardown path: close both hops, count @reason,
 * log, tell the owner (on_closed), and free the conn after the
 * current dispatch round. Idempotent.
 */
void conn_close(struct conn *c, enum conn_close_reason reason);

/**
 * conn_hop_failure_reason() - why a connection ends when one of its hops fails.
 * @client_hop: the client's hop failed (else the server's)
 * @err: the -errno it failed with (hop_read(), hop_write(), struct relay's err)
 *
 * Chosen from the code alone: a hop's err text is for the log.
 * Return: CONN_CLOSE_KEYUPDATE for a KeyUpdate the kernel cannot follow
 * (-EKEYREJECTED), else CONN_CLOSE_CLIENT_ERROR or CONN_CLOSE_SERVER_ERROR.
 */
enum conn_close_reason conn_hop_failure_reason(bool client_hop, int err);

/**
 * conn_queue_error() - queue an ErrorResponse (FATAL @sqlstate @msg) of
 * ours for the client in @d, its server-to-client direction.
 * @client: the client's hop: its engine may hold a half-sent record of
 *	what @d still holds
 * @at_boundary: what @d holds for the client ends a server message
 * @detail, @hint: the ErrorResponse's fields, or NULL
 *
 * If nothing of what @d holds has reached the client (no byte delivered,
 * no record half sent), ours replaces it. Else what @d holds goes first,
 * whole, and ours after it; where that would cut a message (or bytes wait
 * in @d's pipe) nothing is queued.
 * Return: 0; -EBUSY (close without a message); -ENOMEM, -ENOSPC.
 */
PGKTLS_MUSTCHECK int conn_queue_error(struct relay_dir *d, const struct hop *client,
				      bool at_boundary, const char *sqlstate, const char *msg,
				      const char *detail, const char *hint);

/* ---- binary upgrade: a connection moves to the new process (sessmove.h) ---- */

/**
 * conn_new() - a connection with no socket yet, for conn_accept() and for an
 * adoption (sessmove.h): its id (process-wide), @w's runtime, both hops
 * unconnected, both directions empty. Not counted, not armed.
 * Return: the connection, or NULL (out of memory).
 */
struct conn *conn_new(struct worker *w, conn_closed_cb *on_closed);

/**
 * conn_discard() - free a conn_new() connection that never started (an
 * adoption that failed): its hops are closed without a word to the peers
 * (their sockets are still the old process's), nothing is counted or logged.
 */
void conn_discard(struct conn *c);

/**
 * conn_movable() - whether @c can be offered to a new process now: relaying,
 * both hops on an engine whose state can move (hop_movable()), not frozen,
 * not refused by the new process before.
 */
bool conn_movable(const struct conn *c);

/**
 * conn_freeze() - stop @c's events (its sockets leave the worker's epoll, its
 * timer stops), between two events, so it stays exactly as exported until
 * conn_thaw() or conn_close(); closing a frozen connection sends nothing
 * (no close_notify, no shutdown: the new process may hold its sockets).
 */
void conn_freeze(struct conn *c);

/**
 * conn_thaw() - the new process did not take frozen @c (it refused, or it
 * is gone): relay here again, from where it stopped; never offered again.
 */
void conn_thaw(struct conn *c);

/**
 * conn_resume() - start a connection rebuilt from another process's state
 * (sessmove_import()): wire its relay (inspection while authentication is
 * still inspected) and its events, count it open. It may close at once
 * (what the old process left undone fails here).
 */
void conn_resume(struct conn *c);

const char *conn_state_name(enum conn_state s);
const char *conn_close_reason_name(enum conn_close_reason r);

#endif /* PGKTLS_CONN_H */
