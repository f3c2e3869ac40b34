// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * conn.c - the life of one proxied connection.
 *
 *   [PROXY_HEADER -->] ACCEPTED   (proxy_protocol: the balancer's header first)
 *   ACCEPTED --SSLRequest--> CLIENT_TLS --> STARTUP --+
 *      |  \--0x16 (direct TLS)--^                       |
 *      +--StartupMessage / CancelRequest----------------+--> UPSTREAM_CONNECT
 *   UPSTREAM_CONNECT --> [UPSTREAM_SSLREQ --> UPSTREAM_TLS] --> RELAY (or CANCEL_SEND)
 *   any state --> ERROR_FLUSH (our ErrorResponse) --> CLOSING
 *
 * Everything a client must be told is told with a PostgreSQL ErrorResponse
 * once the protocol allows one (after its first packet, or inside TLS).
 * kTLS is engaged on each hop right after its handshake, before any
 * application byte is read through OpenSSL, so the startup packet and the
 * authentication exchange are read through whichever engine won.
 */
#include "config.h"

#include "pgktls/conn.h"

#include <sys/epoll.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/authinspect.h"
#include "pgktls/config.h"
#include "pgktls/hop.h"
#include "pgktls/identmap.h"
#include "pgktls/ktls.h"
#include "pgktls/log.h"
#include "pgktls/pgproto.h"
#include "pgktls/proxyproto.h"
#include "pgktls/stats.h"
#include "pgktls/tls.h"
#include "pgktls/worker.h"

/* How long we keep trying to deliver our own ErrorResponse before giving up. */
#define CONN_ERROR_FLUSH_MS 5000

static const char *const state_names[CONN__NSTATES] = {
	[CONN_PROXY_HEADER] = "proxy_header",
	[CONN_ACCEPTED] = "accepted",
	[CONN_CLIENT_TLS] = "client_tls",
	[CONN_STARTUP] = "startup",
	[CONN_UPSTREAM_CONNECT] = "upstream_connect",
	[CONN_UPSTREAM_SSLREQ] = "upstream_sslrequest",
	[CONN_UPSTREAM_TLS] = "upstream_tls",
	[CONN_CANCEL_SEND] = "cancel_send",
	[CONN_RELAY] = "relay",
	[CONN_ERROR_FLUSH] = "error_flush",
	[CONN_CLOSING] = "closing",
};

static const char *const reason_names[CONN__NREASONS] = {
	[CONN_CLOSE_DONE] = "done",
	[CONN_CLOSE_CLIENT_GONE] = "client_gone",
	[CONN_CLOSE_CLIENT_ERROR] = "client_error",
	[CONN_CLOSE_SERVER_ERROR] = "server_error",
	[CONN_CLOSE_HANDSHAKE] = "handshake_failed",
	[CONN_CLOSE_TIMEOUT] = "timeout",
	[CONN_CLOSE_PROTOCOL] = "protocol_error",
	[CONN_CLOSE_TLS_REQUIRED] = "tls_required",
	[CONN_CLOSE_UPSTREAM] = "upstream_failed",
	[CONN_CLOSE_CANCEL] = "cancel_forwarded",
	[CONN_CLOSE_KTLS] = "ktls_required",
	[CONN_CLOSE_KEYUPDATE] = "key_update",
	[CONN_CLOSE_SHUTDOWN] = "shutdown",
	[CONN_CLOSE_NOMEM] = "out_of_memory",
	[CONN_CLOSE_PROXY] = "proxy_refused",
	[CONN_CLOSE_HANDED_OVER] = "handed_over",
};

/* Allowed successors of each state (PGKTLS_BUG_ON on anything else). */
#define B(s) (1u << (s))
static const unsigned conn_next[CONN__NSTATES] = {
	[CONN_PROXY_HEADER] = B(CONN_ACCEPTED) | B(CONN_CLOSING),
	[CONN_ACCEPTED] = B(CONN_CLIENT_TLS) | B(CONN_UPSTREAM_CONNECT) | B(CONN_ERROR_FLUSH) |
			  B(CONN_CLOSING),
	[CONN_CLIENT_TLS] = B(CONN_STARTUP) | B(CONN_ERROR_FLUSH) | B(CONN_CLOSING),
	[CONN_STARTUP] = B(CONN_UPSTREAM_CONNECT) | B(CONN_ERROR_FLUSH) | B(CONN_CLOSING),
	[CONN_UPSTREAM_CONNECT] = B(CONN_UPSTREAM_SSLREQ) | B(CONN_RELAY) | B(CONN_CANCEL_SEND) |
				  B(CONN_ERROR_FLUSH) | B(CONN_CLOSING),
	[CONN_UPSTREAM_SSLREQ] = B(CONN_UPSTREAM_TLS) | B(CONN_RELAY) | B(CONN_CANCEL_SEND) |
				 B(CONN_ERROR_FLUSH) | B(CONN_CLOSING),
	[CONN_UPSTREAM_TLS] = B(CONN_RELAY) | B(CONN_CANCEL_SEND) | B(CONN_ERROR_FLUSH) |
			      B(CONN_CLOSING),
	[CONN_CANCEL_SEND] = B(CONN_CLOSING),
	[CONN_RELAY] = B(CONN_ERROR_FLUSH) | B(CONN_CLOSING),
	[CONN_ERROR_FLUSH] = B(CONN_CLOSING),
	[CONN_CLOSING] = 0,
};
#undef B

enum conn_close_reason conn_hop_failure_reason(bool client_hop, int err)
{
	/* A KeyUpdate the kernel cannot follow, or a send key spent that cannot change. */
	if (err == -EKEYREJECTED || err == -EKEYEXPIRED)
		return CONN_CLOSE_KEYUPDATE;
	return client_hop ? CONN_CLOSE_CLIENT_ERROR : CONN_CLOSE_SERVER_ERROR;
}

const char *conn_state_name(enum conn_state s)
{
	return s < CONN__NSTATES ? state_names[s] : "?";
}

const char *conn_close_reason_name(enum conn_close_reason r)
{
	return r < CONN__NREASONS ? reason_names[r] : "?";
}

static void conn_set_state(struct conn *c, enum conn_state s)
{
	PGKTLS_BUG_ON(!(conn_next[c->state] & (1u << s)));
	clog_debug(c, "state %s -> %s", state_names[c->state], state_names[s]);
	c->state = s;
}

static struct stats *st(struct conn *c)
{
	return &c->w->stats;
}

static const struct pgktls_config *cfg(struct conn *c)
{
	return c->rt->cfg;
}

static struct ev_loop *loop_of(struct conn *c)
{
	return c->w->loop;
}

_Static_assert(CONN__NREASONS <= STATS_MAX_REASONS, "stats: closed_by_reason too small");
_Static_assert(KTLS__NREASONS <= STATS_MAX_REASONS, "stats: ktls_dir_fallback too small");

/* Count each direction of a hop as offloaded, or as a fallback with its reason. */
static void count_ktls_dirs(struct conn *c, const struct ktls_hop_state *k, bool client_side)
{
	enum stats_hop hop = client_side ? STATS_HOP_CLIENT : STATS_HOP_SERVER;

	if (k->rx == KTLS_ENGINE_KERNEL)
		STAT_INC(st(c), ktls_dir_engaged[hop][STATS_DIR_RX]);
	else
		STAT_INC(st(c), ktls_dir_fallback[hop][STATS_DIR_RX][k->rx_reason]);
	if (k->tx == KTLS_ENGINE_KERNEL)
		STAT_INC(st(c), ktls_dir_engaged[hop][STATS_DIR_TX]);
	else
		STAT_INC(st(c), ktls_dir_fallback[hop][STATS_DIR_TX][k->tx_reason]);
}

static void conn_free(struct ev_defer *d)
{
	struct conn *c = container_of(d, struct conn, defer);

	relay_dir_fini(&c->c2s);
	relay_dir_fini(&c->s2c);
	runtime_put(c->rt);
	free(c);
}

void conn_close(struct conn *c, enum conn_close_reason reason)
{
	struct worker *w = c->w;

	if (c->state == CONN_CLOSING)
		return;
	c->state_before_close = c->state;
	conn_set_state(c, CONN_CLOSING);
	c->close_reason = reason;
	ev_timer_stop(w->loop, &c->timer);
	if (c->flags & (CONN_F_CANCEL | CONN_F_PROXY_LOCAL))
		clog_debug(c, "closed: %s", reason_names[reason]);
	else
		clog_info(c, "closed: %s (client->server %llu bytes, server->client %llu bytes, "
			     "%llu ms)",
			  reason_names[reason], (unsigned long long)c->c2s.bytes,
			  (unsigned long long)c->s2c.bytes,
			  (unsigned long long)(ev_now(w->loop) - c->accepted_ms));
	/*
	 * CONN_CLOSE_HANDED_OVER never comes here, nor a frozen connection (one the
	 * new process may hold): the session goes on there, so no close_notify, no
	 * shutdown(): hop_close() only close()s our references to its sockets.
	 */
	if ((reason == CONN_CLOSE_SHUTDOWN || reason == CONN_CLOSE_KEYUPDATE) &&
	    !(c->flags & CONN_F_FROZEN)) {
		/*
		 * pgktls is stopping, or a peer's KeyUpdate could not be followed
		 * (no kTLS rekeying before Linux 6.14): end cleanly where TLS is
		 * up (close_notify), best effort and non-blocking; a full socket
		 * buffer just loses it. After a KeyUpdate only the peer's sending
		 * key moved on: the one we send with is still the one it expects.
		 */
		if (c->state_before_close == CONN_RELAY || c->state_before_close == CONN_STARTUP) {
			if (hop_shutdown_write(&c->client) < 0)
				clog_debug(c, "no close_notify to the client");
			if (c->server.fd >= 0 && hop_shutdown_write(&c->server) < 0)
				clog_debug(c, "no close_notify to the server");
		}
	}
	hop_close(w->loop, &c->client);
	hop_close(w->loop, &c->server);
	c->on_closed(w, c);
	STAT_INC(st(c), conns_closed);
	STAT_INC(st(c), closed_by_reason[reason]);
	STAT_DEC(st(c), conns_active);
	ev_defer(w->loop, &c->defer, conn_free);
}

/* ---- errors we send ourselves ---- */

static void set_events(struct conn *c, struct hop *h, uint32_t events)
{
	if (h->fd < 0)
		return;
	if (ev_io_set(loop_of(c), &h->io, events) < 0) {
		clog_err(c, "epoll_ctl on %s socket: %s", h->name, strerror(errno));
		conn_close(c, CONN_CLOSE_NOMEM);
	}
}

static void flush_error(struct conn *c)
{
	struct relay_dir *d = &c->s2c;

	while (d->head < d->tail) {
		ssize_t n = hop_write(&c->client, d->buf + d->head, d->tail - d->head);

		if (n == -EAGAIN) {
			set_events(c, &c->client, hop_events(&c->client, false, true));
			return;
		}
		if (n < 0) {
			conn_close(c, c->close_reason);
			return;
		}
		d->head += (uint32_t)n;
	}
	/* Delivered: say goodbye properly (close_notify where TLS is up). */
	if (hop_shutdown_write(&c->client) == -EAGAIN) {
		set_events(c, &c->client, EPOLLOUT);
		return;
	}
	conn_close(c, c->close_reason);
}

int conn_queue_error(struct relay_dir *d, const struct hop *client, bool at_boundary,
		     const char *sqlstate, const char *msg, const char *detail, const char *hint)
{
	bool partial = hop_tx_partial(client);
	size_t n;

	if (relay_dir_reserve(d) < 0)
		return -ENOMEM;
	if (!partial && (relay_dir_pending(d) == 0 || d->bytes == 0)) {
		/* Nothing on its way, or not one byte of it has left: ours alone. */
		d->head = d->scan = d->tail = 0;
	} else {
		/*
		 * Bytes for the client are on their way: some went before, or
		 * the client's engine holds a record made of the first of them,
		 * half sent, and writes must go on with those same bytes
		 * (hop_write()). They go first, then ours, if they end a
		 * message; else the client gets no message of ours, as one cut
		 * in half would be read as garbage.
		 */
		if (!at_boundary || d->pipe_len > 0 || d->tail == d->head)
			return -EBUSY;
		if (d->head > 0) {
			/* The engine takes the same bytes anywhere in memory (hop_write()). */
			memmove(d->buf, d->buf + d->head, d->tail - d->head);
			d->tail -= d->head;
			d->head = 0;
		}
	}
	n = pgproto_build_error(d->buf + d->tail, d->cap - d->tail, "FATAL", sqlstate, msg,
				detail, hint);
	if (n == 0)
		return -ENOSPC;
	d->tail += (uint32_t)n;
	d->scan = d->tail;
	return 0;
}

/*
 * fail() - end the connection with an ErrorResponse to the client where the
 * protocol allows one (not in the middle of a TLS handshake), log why, and
 * close once it is delivered.
 */
static void fail(struct conn *c, enum conn_close_reason reason, const char *sqlstate,
		 const char *detail, const char *hint, const char *fmt, ...) PGKTLS_PRINTF(6, 7);
static void fail(struct conn *c, enum conn_close_reason reason, const char *sqlstate,
		 const char *detail, const char *hint, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (reason == CONN_CLOSE_UPSTREAM || reason == CONN_CLOSE_KTLS)
		clog_warn(c, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
	else
		clog_info(c, "refused: %s%s%s", msg, detail ? ": " : "", detail ? detail : "");
	c->close_reason = reason;
	if (c->state == CONN_CLIENT_TLS || c->client.fd < 0 || c->client.tx_shut) {
		conn_close(c, reason);
		return;
	}
	r = conn_queue_error(&c->s2c, &c->client,
			     c->state != CONN_RELAY || pgproto_framer_at_boundary(&c->s2c_frame),
			     sqlstate, msg, detail, hint);
	if (r < 0) {
		if (r == -EBUSY)
			clog_debug(c, "no ErrorResponse: a server message to the client is half "
				      "sent");
		conn_close(c, reason);
		return;
	}
	hop_close(loop_of(c), &c->server);
	conn_set_state(c, CONN_ERROR_FLUSH);
	ev_timer_start(loop_of(c), &c->timer, CONN_ERROR_FLUSH_MS);
	set_events(c, &c->client, 0);
	flush_error(c);
}

/* ---- kTLS policy ---- */

/*
 * Pick the record engine of a hop that just finished its handshake
 * (hop_engage(): kTLS as @mode says, else tlsrec, else OpenSSL), and count
 * what happened.
 * Return: 0 to go on (offloaded or falling back), -EOPNOTSUPP if
 * ktls = required could not be met, -ENOTRECOVERABLE if the kernel took
 * the receive side only (any mode): the caller refuses the connection.
 */
static int offload(struct conn *c, struct hop *h, enum cfg_ktls mode, bool client_side)
{
	const struct hop_policy p = {
		.ktls = mode,
		.kernel_tls = c->rt->ktls_available,
		.openssl_records = cfg(c)->openssl_records,
	};
	const struct ktls_hop_state *k = &h->ktls;
	int r = hop_engage(h, &p);

	if (mode != CFG_KTLS_OFF && !(k->rx == KTLS_ENGINE_KERNEL && k->tx == KTLS_ENGINE_KERNEL))
		STAT_INC(st(c), ktls_fallbacks);
	count_ktls_dirs(c, k, client_side);
	if (r == -ENOTRECOVERABLE)
		return r;
	if (r == -EOPNOTSUPP) {
		STAT_INC(st(c), ktls_refused);
		return r;
	}
	if (k->rx == KTLS_ENGINE_KERNEL) {
		if (client_side)
			STAT_INC(st(c), ktls_client_engaged);
		else
			STAT_INC(st(c), ktls_server_engaged);
		clog_debug(c, "%s hop: kTLS engaged (rx %s, tx %s)", h->name,
			   ktls_engine_name(k->rx), ktls_engine_name(k->tx));
	} else if (mode != CFG_KTLS_OFF) {
		clog_debug(c, "%s hop: userspace TLS (rx %s: %s, tx %s: %s)", h->name,
			   ktls_engine_name(k->rx), ktls_reason_name(k->rx_reason),
			   ktls_engine_name(k->tx), ktls_reason_name(k->tx_reason));
	}
	return 0;
}

static void fail_ktls_required(struct conn *c, struct hop *h)
{
	char detail[160];

	if (h->ktls.rx == KTLS_ENGINE_KERNEL) {
		/* ktls_install() -ENOTRECOVERABLE: closed under any ktls mode. */
		snprintf(detail, sizeof(detail), "%s hop: kTLS took the receive side, send: %s",
			 h->name, h->ktls.err ? strerror(h->ktls.err) : "refused");
		fail(c, CONN_CLOSE_KTLS, "08006", detail, NULL,
		     "pgktls: kernel TLS offload failed half way; the connection cannot go on");
		return;
	}

	snprintf(detail, sizeof(detail), "%s hop: receive %s, send %s%s%s",
		 h->name, ktls_reason_name(h->ktls.rx_reason),
		 ktls_reason_name(h->ktls.tx_reason), h->ktls.err ? ": " : "",
		 h->ktls.err ? strerror(h->ktls.err) : "");
	fail(c, CONN_CLOSE_KTLS, "08006", detail,
	     "Set ktls = auto to fall back to userspace TLS, or load the kernel tls module.",
	     "pgktls: kernel TLS offload is required (ktls = required) but not possible");
}

/* ---- upstream ---- */

static void start_upstream(struct conn *c);
static void handshake_step(struct conn *c, struct hop *h);
static void read_initial(struct conn *c);
static void on_server_event(struct conn *c, uint32_t events);
static void start_relay(struct conn *c);

static void fail_upstream(struct conn *c, const char *detail, const char *fmt, ...)
	PGKTLS_PRINTF(3, 4);
static void fail_upstream(struct conn *c, const char *detail, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	STAT_INC(st(c), upstream_failures);
	fail(c, CONN_CLOSE_UPSTREAM, "08006", detail, NULL, "pgktls: upstream %s: %s",
	     c->rt->upstream_str, msg);
}

static void server_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct hop *h = container_of(io, struct hop, io);
	struct conn *c = container_of(h, struct conn, server);

	on_server_event(c, events);
}

static void client_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events);

static void start_upstream(struct conn *c)
{
	int fd = -1, r;

	conn_set_state(c, CONN_UPSTREAM_CONNECT);
	set_events(c, &c->client, 0);
	ev_timer_start(loop_of(c), &c->timer, cfg(c)->connect_timeout);
	r = sock_connect(&c->rt->upstream, &fd);
	if (r < 0 && r != -EINPROGRESS) {
		fail_upstream(c, NULL, "cannot connect: %s", strerror(-r));
		return;
	}
	hop_init(&c->server, fd, "server", c->rt->upstream_is_tcp);
	ev_io_init(&c->server.io, fd, server_io_cb);
	if (r == 0) {
		on_server_event(c, EPOLLOUT);
		return;
	}
	set_events(c, &c->server, EPOLLOUT);
}

static void upstream_ready(struct conn *c)
{
	STAT_INC(st(c), upstream_connects);
	if (c->flags & CONN_F_CANCEL) {
		conn_set_state(c, CONN_CANCEL_SEND);
		on_server_event(c, EPOLLOUT);
		return;
	}
	start_relay(c);
}

/* The upstream hop's handshake finished: offload it, then relay (or cancel). */
static void upstream_tls_up(struct conn *c)
{
	struct hop_info info;

	hop_info(&c->server, &info);
	STAT_INC(st(c), upstream_tls_handshakes);
	clog_debug(c, "upstream TLS: %s %s", info.version, info.cipher);
	if (offload(c, &c->server, cfg(c)->ktls_server, false) < 0) {
		fail_ktls_required(c, &c->server);
		return;
	}
	upstream_ready(c);
}

static void on_server_event(struct conn *c, uint32_t events)
{
	uint8_t req[8], reply;
	SSL *ssl;
	ssize_t n;
	int err;

	switch (c->state) {
	case CONN_UPSTREAM_CONNECT:
		err = sock_error(c->server.fd);
		if (err) {
			fail_upstream(c, NULL, "cannot connect: %s", strerror(err));
			return;
		}
		if (!c->rt->tls.server_side) {
			upstream_ready(c);
			return;
		}
		pgproto_ssl_request(req);
		/* A fresh socket always takes 8 bytes; anything else is a broken peer. */
		n = hop_write(&c->server, req, sizeof(req));
		if (n != (ssize_t)sizeof(req)) {
			fail_upstream(c, NULL, "cannot send SSLRequest: %s",
				      n < 0 ? strerror((int)-n) : "short write");
			return;
		}
		conn_set_state(c, CONN_UPSTREAM_SSLREQ);
		set_events(c, &c->server, EPOLLIN);
		return;

	case CONN_UPSTREAM_SSLREQ:
		n = hop_read(&c->server, &reply, 1, st(c));
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			fail_upstream(c, NULL, "closed the connection after SSLRequest%s%s",
				      n < 0 ? ": " : "", n < 0 ? strerror((int)-n) : "");
			return;
		}
		if (reply == 'S') {
			/* Bytes before our ClientHello were not sent by a TLS server (CVE-2021-23222). */
			if (hop_has_unread(&c->server)) {
				fail_upstream(c, NULL, "received unencrypted data after SSL response");
				return;
			}
			ssl = tls_new_upstream(&c->rt->tls, c->server.fd, c->identity);
			if (!ssl) {
				fail_upstream(c, NULL, "cannot create TLS session");
				return;
			}
			hop_start_tls(&c->server, ssl);
			if (c->identity)
				clog_info(c, "upstream identity %s (%s:%u)", c->identity->subject,
					  c->rt->tls.identity_map->path,
					  c->identity->entry->lineno);
			conn_set_state(c, CONN_UPSTREAM_TLS);
			handshake_step(c, &c->server);
			return;
		}
		if (reply == 'N') {
			if (c->rt->tls.verify_peer) {
				fail_upstream(c, NULL,
					      "server does not support TLS, but tls_verify = %s "
					      "requires it",
					      config_verify_name(cfg(c)->tls_verify));
				return;
			}
			clog_debug(c, "upstream declined TLS; continuing in plaintext (prefer)");
			upstream_ready(c);
			return;
		}
		fail_upstream(c, NULL, "invalid response to SSLRequest (byte 0x%02x)", reply);
		return;

	case CONN_UPSTREAM_TLS:
		handshake_step(c, &c->server);
		return;

	case CONN_CANCEL_SEND:
		while (c->c2s.head < c->c2s.tail) {
			n = hop_write(&c->server, c->c2s.buf + c->c2s.head,
				      c->c2s.tail - c->c2s.head);
			if (n == -EAGAIN) {
				set_events(c, &c->server, hop_events(&c->server, false, true));
				return;
			}
			if (n < 0) {
				clog_warn(c, "cannot forward CancelRequest: %s", c->server.err);
				conn_close(c, CONN_CLOSE_UPSTREAM);
				return;
			}
			c->c2s.head += (uint32_t)n;
		}
		STAT_INC(st(c), cancels_forwarded);
		clog_info(c, "CancelRequest forwarded to %s", c->rt->upstream_str);
		/* Best effort: the server closes a cancel connection itself. */
		if (hop_shutdown_write(&c->server) < 0)
			clog_debug(c, "close_notify after CancelRequest not sent");
		conn_close(c, CONN_CLOSE_CANCEL);
		return;

	case CONN_RELAY:
		if ((events & EPOLLIN) || c->server.rd_wants_write)
			c->relay.rx_ready[1] = true;
		start_relay(c);
		return;

	default:
		/* A late event after we stopped caring about this socket. */
		set_events(c, &c->server, 0);
		return;
	}
}

/* ---- authentication inspection (server -> client until AuthenticationOk) ---- */

static int inspect_auth(void *arg, struct relay_dir *d)
{
	struct conn *c = arg;
	unsigned stripped = c->auth.stripped, hinted = c->auth.hinted;

	if (authinspect_run(&c->auth, d) < 0) {
		clog_warn(c, "malformed message from upstream during authentication");
		return -EPROTO;
	}
	if (c->auth.stripped != stripped) {
		STAT_INC(st(c), sasl_plus_stripped);
		clog_debug(c, "removed SCRAM-SHA-256-PLUS: the client hop is plaintext");
	}
	if (c->auth.hinted != hinted) {
		STAT_INC(st(c), channel_binding_hints);
		clog_info(c, "server rejected SCRAM channel binding; hint added");
	}
	if (c->auth.done) {
		/* Authenticated: from here on bytes pass untouched. */
		c->flags &= ~CONN_F_INSPECT;
		c->relay.inspect[1] = NULL;
	}
	return 0;
}

/* ---- the server's last words ---- */

/*
 * Whether the client may be told, with an ErrorResponse of ours, that the
 * server is gone: only between two of the server's messages (never inside
 * one half relayed, or where spliced bytes went past unseen), never after
 * the server's own ErrorResponse (its FATAL says why it closes, as with
 * pg_terminate_backend), and never once the client said goodbye
 * (Terminate) or left.
 */
static bool server_vanished(const struct conn *c)
{
	return pgproto_framer_at_boundary(&c->s2c_frame) && c->s2c_frame.last_type != 'E' &&
	       pgproto_framer_at_boundary(&c->c2s_frame) && c->c2s_frame.last_type != 'X' &&
	       !c->client.rx_eof && !c->client.tx_shut && c->s2c.pipe_len == 0;
}

/*
 * Queue FATAL 08006 after whatever @d still holds for the client, as libpq
 * would say it had it lost the server itself. Return: false if it does not
 * fit (then the client just sees the connection close).
 */
static bool queue_server_lost(struct conn *c, struct relay_dir *d, const char *how)
{
	char detail[256];
	size_t n;

	if (relay_dir_reserve(d) < 0)
		return false;
	if (d->head == d->tail)
		d->head = d->scan = d->tail = 0;
	snprintf(detail, sizeof(detail), "pgktls lost its connection to upstream %s: %s",
		 c->rt->upstream_str, how);
	n = pgproto_build_error(d->buf + d->tail, d->cap - d->tail, "FATAL", "08006",
				"server closed the connection unexpectedly", detail,
				"The server probably terminated abnormally.");
	if (n == 0)
		return false;
	d->tail += (uint32_t)n;
	d->scan = d->tail;
	STAT_INC(st(c), upstream_lost);
	clog_info(c, "upstream closed the connection unexpectedly (%s): client told", how);
	return true;
}

/* relay_eof_cb: the server's stream ended where the client still listens. */
static void on_relay_eof(void *arg, int i, struct relay_dir *d)
{
	struct conn *c = arg;

	if (i == 1 && server_vanished(c))
		queue_server_lost(c, d, c->server.clean_eof ? "end of stream" : "end of stream "
										"without close_notify");
}

/* ---- relay ---- */

/* Wire @c's relay to its hops, directions and worker (at RELAY, or once adopted). */
static void wire_relay(struct conn *c)
{
	relay_init(&c->relay, &c->client, &c->server, &c->c2s, &c->s2c, st(c), c->w->scratch,
		   &c->w->pipes);
	if (c->flags & CONN_F_INSPECT)
		c->relay.inspect[1] = inspect_auth;
	c->relay.inspect_arg = c;
	c->relay.frame[0] = &c->c2s_frame;
	c->relay.frame[1] = &c->s2c_frame;
	c->relay.on_eof = on_relay_eof;
}

static void start_relay(struct conn *c)
{
	struct hop *failed = NULL;
	enum relay_status rs;

	if (c->state != CONN_RELAY) {
		conn_set_state(c, CONN_RELAY);
		ev_timer_stop(loop_of(c), &c->timer);
		c->flags |= CONN_F_INSPECT;
		wire_relay(c);
		c->auth.strip_plus = !hop_has_tls(&c->client) && hop_has_tls(&c->server);
		/* The startup packet (and anything after it) waits in c2s. */
		c->c2s.scan = c->c2s.tail;
		pgproto_framer_init(&c->c2s_frame, pgproto_get_u32(c->c2s.buf + c->c2s.head));
		pgproto_framer_feed(&c->c2s_frame, c->c2s.buf + c->c2s.head,
				    c->c2s.tail - c->c2s.head);
		pgproto_framer_init(&c->s2c_frame, 0);
		clog_debug(c, "relaying to %s", c->rt->upstream_str);
	}
	rs = relay_run(&c->relay, loop_of(c), &failed);
	if (rs == RELAY_AGAIN)
		return;
	if (rs == RELAY_FINISHED) {
		conn_close(c, CONN_CLOSE_DONE);
		return;
	}
	if (failed == &c->server && c->s2c.bytes == 0 && !c->client.tx_shut) {
		/*
		 * The server went away before saying anything (with TLS 1.3 it
		 * checks our client certificate only after the handshake): the
		 * client still expects a reply, so give it one that says why.
		 */
		STAT_INC(st(c), upstream_failures);
		fail(c, CONN_CLOSE_UPSTREAM, "08006", c->server.err, NULL,
		     "pgktls: upstream %s closed the connection before authentication",
		     c->rt->upstream_str);
		return;
	}
	if (failed == &c->server && c->relay.err != -EKEYEXPIRED && server_vanished(c) &&
	    queue_server_lost(c, &c->s2c, c->server.err)) {
		/* Reset between two messages: say so once what came before is out. */
		c->close_reason = CONN_CLOSE_SERVER_ERROR;
		hop_close(loop_of(c), &c->server);
		conn_set_state(c, CONN_ERROR_FLUSH);
		ev_timer_start(loop_of(c), &c->timer, CONN_ERROR_FLUSH_MS);
		set_events(c, &c->client, 0);
		flush_error(c);
		return;
	}
	if (failed == &c->server)
		clog_info(c, "server hop failed: %s", c->server.err);
	else
		clog_info(c, "client hop failed: %s", c->client.err[0] ? c->client.err : "error");
	conn_close(c, conn_hop_failure_reason(failed != &c->server, c->relay.err));
}

/* ---- client side: negotiation ---- */

/* Answer a client's SSLRequest or GSSENCRequest ('S' or 'N'), on its plain hop. */
static bool write_byte(struct conn *c, char b)
{
	/* One byte on a socket nobody has written to yet cannot block. */
	return hop_write(&c->client, &b, 1) == 1;
}


static void start_client_tls(struct conn *c)
{
	SSL *ssl = tls_new_client(&c->rt->tls, c->client.fd);

	if (!ssl) {
		clog_err(c, "cannot create TLS session");
		conn_close(c, CONN_CLOSE_NOMEM);
		return;
	}
	hop_start_tls(&c->client, ssl);
	conn_set_state(c, CONN_CLIENT_TLS);
	handshake_step(c, &c->client);
}

/* Act on one complete first packet. Return: true if parsing may continue. */
static bool handle_initial(struct conn *c, int kind, size_t pktlen)
{
	struct relay_dir *d = &c->c2s;
	bool in_tls = hop_has_tls(&c->client);
	size_t rest = d->tail - d->head - pktlen;

	switch (kind) {
	case PGPROTO_SSLREQUEST:
	case PGPROTO_GSSENCREQUEST:
		if (in_tls) {
			STAT_INC(st(c), protocol_errors);
			fail(c, CONN_CLOSE_PROTOCOL, "08P01", NULL, NULL,
			     "%s received inside an encrypted connection",
			     kind == PGPROTO_SSLREQUEST ? "SSLRequest" : "GSSENCRequest");
			return false;
		}
		if (kind == PGPROTO_GSSENCREQUEST) {
			if (c->flags & (CONN_F_GSS_SEEN | CONN_F_SSL_SEEN)) {
				STAT_INC(st(c), protocol_errors);
				fail(c, CONN_CLOSE_PROTOCOL, "08P01", NULL, NULL,
				     "unexpected GSSENCRequest after a previous negotiation");
				return false;
			}
			c->flags |= CONN_F_GSS_SEEN;
			d->head += (uint32_t)pktlen;
			/* No GSSAPI here: 'N', and the client may go on with SSLRequest. */
			if (!write_byte(c, 'N')) {
				conn_close(c, CONN_CLOSE_CLIENT_GONE);
				return false;
			}
			return true;
		}
		if (c->flags & CONN_F_SSL_SEEN) {
			STAT_INC(st(c), protocol_errors);
			fail(c, CONN_CLOSE_PROTOCOL, "08P01", NULL, NULL,
			     "unexpected second SSLRequest");
			return false;
		}
		c->flags |= CONN_F_SSL_SEEN;
		d->head += (uint32_t)pktlen;
		if (!c->rt->tls.client_side) {
			if (!write_byte(c, 'N')) {
				conn_close(c, CONN_CLOSE_CLIENT_GONE);
				return false;
			}
			return true;
		}
		if (rest > 0) {
			/* CVE-2021-23214: nothing may precede the TLS handshake. */
			STAT_INC(st(c), protocol_errors);
			fail(c, CONN_CLOSE_PROTOCOL, "08P01", NULL, NULL,
			     "received unencrypted data after SSL request");
			return false;
		}
		d->head = d->scan = d->tail = 0;
		if (!write_byte(c, 'S')) {
			conn_close(c, CONN_CLOSE_CLIENT_GONE);
			return false;
		}
		start_client_tls(c);
		return false;

	case PGPROTO_CANCEL:
		/* Keep exactly the packet; the server reads nothing else on a cancel. */
		memmove(d->buf, d->buf + d->head, pktlen);
		d->head = 0;
		d->scan = d->tail = (uint32_t)pktlen;
		c->flags |= CONN_F_CANCEL;
		clog_debug(c, "CancelRequest (%s)", in_tls ? "inside TLS" : "plaintext");
		start_upstream(c);
		return false;

	case PGPROTO_STARTUP:
		/*
		 * Mutual TLS implies TLS: a plaintext client has no certificate to
		 * check. With optional client certificates, having none is fine.
		 */
		if (!in_tls && (cfg(c)->tls_client_required ||
				(cfg(c)->tls_client_ca_certificate &&
				 cfg(c)->tls_client_certificate == CFG_CLIENT_CERT_REQUIRED))) {
			STAT_INC(st(c), plaintext_refused);
			fail(c, CONN_CLOSE_TLS_REQUIRED, "28000", NULL,
			     "Connect with sslmode=require (or verify-ca, verify-full).",
			     "TLS is required: this pgktls accepts only encrypted connections "
			     "(%s)",
			     cfg(c)->tls_client_required
				     ? "tls_client_required = true"
				     : "tls_client_ca_certificate is set: a client certificate is "
				       "required");
			return false;
		}
		if (!in_tls)
			STAT_INC(st(c), client_plaintext);
		/* The startup packet, and whatever followed it, goes upstream as is. */
		start_upstream(c);
		return false;

	case PGPROTO_TLS_HELLO:
	default:
		/* A TLS record where a packet belongs: after a negotiation, or inside TLS. */
		STAT_INC(st(c), protocol_errors);
		fail(c, CONN_CLOSE_PROTOCOL, "08P01", NULL, NULL,
		     "unexpected TLS handshake record after protocol negotiation");
		return false;
	}
}

/* ---- the PROXY protocol header (proxy_protocol = true) ---- */

static void read_initial(struct conn *c);

_Static_assert(PROXYPROTO_MAX_LEN <= RELAY_BUF_SIZE, "c2s cannot hold a PROXY header");

/*
 * A balancer's PROXY header, before anything PostgreSQL sends. Not one byte
 * after it may be taken from the socket (a ClientHello may follow in the
 * same segment, and OpenSSL or the kernel must find it there), so what has
 * arrived is peeked at, and only header bytes are consumed: all of them
 * while the parser asks for more (it guarantees that those are header
 * bytes, so nothing stays queued to wake a level-triggered loop again),
 * then exactly the rest of the header. They collect in c2s's buffer, which
 * read_initial() finds empty afterwards.
 */
static void read_proxy_header(struct conn *c)
{
	struct relay_dir *d = &c->c2s;
	struct proxyproto_hdr h;
	const char *why = "";
	size_t take;
	ssize_t n;
	int r;

	if (relay_dir_reserve(d) < 0) {
		conn_close(c, CONN_CLOSE_NOMEM);
		return;
	}
	n = hop_peek(&c->client, d->buf + d->tail, PROXYPROTO_MAX_LEN - d->tail);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? CONN_CLOSE_CLIENT_GONE : CONN_CLOSE_CLIENT_ERROR);
		return;
	}
	r = proxyproto_parse(d->buf, d->tail + (size_t)n, &h, &why);
	if (r < 0) {
		STAT_INC(st(c), proxy_invalid);
		clog_info(c, "refused: %s (proxy_protocol = true: every connection must start "
			     "with a PROXY v1 or v2 header)", why);
		conn_close(c, CONN_CLOSE_PROXY);
		return;
	}
	take = r == PROXYPROTO_NEED_MORE ? (size_t)n : h.len - d->tail;
	/* The bytes were just peeked at: nothing but a broken socket takes fewer. */
	n = hop_read(&c->client, d->buf + d->tail, take, st(c));
	if (n != (ssize_t)take) {
		clog_info(c, "client read failed: %s", n < 0 ? c->client.err : "short read");
		conn_close(c, CONN_CLOSE_CLIENT_ERROR);
		return;
	}
	d->tail += (uint32_t)take;
	if (r == PROXYPROTO_NEED_MORE)
		return;	/* EPOLLIN stays on; startup_timeout bounds the wait */

	STAT_INC(st(c), proxy_headers);
	if (h.local) {
		c->flags |= CONN_F_PROXY_LOCAL;
		clog_debug(c, "PROXY v%u header without a client address: keeping the socket's",
			   h.version);
	} else {
		char client[SOCK_ADDR_STRLEN];

		sock_addr_str((struct sockaddr *)&h.src, h.addrlen, client, sizeof(client));
		clog_debug(c, "PROXY v%u header: client %s", h.version, client);
		memcpy(c->peer, client, sizeof(c->peer));
	}
	d->head = d->scan = d->tail = 0;
	conn_set_state(c, CONN_ACCEPTED);
	read_initial(c);
}

/* Read and act on the first packet(s), plaintext or inside TLS. */
static void read_initial(struct conn *c)
{
	struct relay_dir *d = &c->c2s;

	if (relay_dir_reserve(d) < 0) {
		conn_close(c, CONN_CLOSE_NOMEM);
		return;
	}
	for (;;) {
		const char *why = NULL;
		size_t pktlen = 0;
		int kind;

		if (d->head == d->tail && c->state == CONN_ACCEPTED) {
			uint8_t first;
			ssize_t n = hop_peek(&c->client, &first, 1);

			if (n == -EAGAIN)
				break;
			if (n <= 0) {
				conn_close(c, n == 0 ? CONN_CLOSE_CLIENT_GONE
						     : CONN_CLOSE_CLIENT_ERROR);
				return;
			}
			if (first == PG_TLS_HANDSHAKE_BYTE &&
			    !(c->flags & (CONN_F_SSL_SEEN | CONN_F_GSS_SEEN))) {
				if (!c->rt->tls.client_side) {
					clog_info(c, "refused: direct TLS but no tls_certificate "
						     "is configured");
					conn_close(c, CONN_CLOSE_PROTOCOL);
					return;
				}
				c->flags |= CONN_F_DIRECT_TLS;
				STAT_INC(st(c), client_direct_tls);
				start_client_tls(c);
				return;
			}
		}
		kind = pgproto_parse_initial(d->buf + d->head, d->tail - d->head, &pktlen, &why);
		if (kind < 0) {
			const char *sqlstate = pgproto_refusal_sqlstate(kind);

			STAT_INC(st(c), protocol_errors);
			if (!sqlstate) {
				/* As PostgreSQL: a wrong length is only logged. */
				clog_info(c, "refused: %s", why);
				conn_close(c, CONN_CLOSE_PROTOCOL);
				return;
			}
			fail(c, CONN_CLOSE_PROTOCOL, sqlstate, NULL, NULL, "%s", why);
			return;
		}
		if (kind != PGPROTO_NEED_MORE) {
			if (!handle_initial(c, kind, pktlen))
				return;
			if (d->head == d->tail)
				d->head = d->scan = d->tail = 0;
			continue;
		}
		/* Need more bytes. Compact, then read at most what is still missing. */
		if (d->head > 0) {
			memmove(d->buf, d->buf + d->head, d->tail - d->head);
			d->tail -= d->head;
			d->head = d->scan = 0;
		}
		{
			ssize_t n = hop_read(&c->client, d->buf + d->tail, RELAY_BUF_SIZE - d->tail,
					     st(c));

			if (n == -EAGAIN)
				break;
			if (n == 0) {
				conn_close(c, CONN_CLOSE_CLIENT_GONE);
				return;
			}
			if (n < 0) {
				clog_info(c, "client read failed: %s", c->client.err);
				conn_close(c, conn_hop_failure_reason(true, (int)n));
				return;
			}
			d->tail += (uint32_t)n;
		}
	}
	set_events(c, &c->client, hop_events(&c->client, true, false));
}

/* The client hop's handshake finished: check ALPN, offload, read the startup packet. */
static void client_tls_up(struct conn *c)
{
	struct hop_info info;

	hop_info(&c->client, &info);
	STAT_INC(st(c), client_tls_handshakes);
	stats_hs_observe(st(c), ev_now(loop_of(c)) - c->accepted_ms);
	clog_debug(c, "client TLS: %s %s%s", info.version, info.cipher,
		   (c->flags & CONN_F_DIRECT_TLS) ? " (direct)" : "");
	conn_set_state(c, CONN_STARTUP);
	if ((c->flags & CONN_F_DIRECT_TLS) && strcmp(info.alpn, "postgresql") != 0) {
		/* PostgreSQL 17 refuses direct TLS without ALPN; so do we. */
		STAT_INC(st(c), protocol_errors);
		fail(c, CONN_CLOSE_PROTOCOL, "08P01", NULL, NULL,
		     "received direct SSL connection request without ALPN protocol "
		     "negotiation extension");
		return;
	}
	/* Now, while the client's SSL (and its certificate) still exists: offload may free it. */
	c->identity = tls_identity_pick(&c->rt->tls, c->client.ssl);
	if (offload(c, &c->client, cfg(c)->ktls_client, true) < 0) {
		fail_ktls_required(c, &c->client);
		return;
	}
	read_initial(c);
}

/*
 * handshake_step() - one non-blocking step of @h's TLS handshake, either
 * hop: wait for the socket, go on once it is done, or end the connection
 * (the client is told nothing mid-handshake; a failed upstream handshake
 * is told to the client, whose own TLS is up or absent).
 */
static void handshake_step(struct conn *c, struct hop *h)
{
	bool client = h == &c->client;
	enum stats_hop hop = client ? STATS_HOP_CLIENT : STATS_HOP_SERVER;
	struct hop_hs_result res;
	int r;

	r = hop_handshake(h, &res);
	if (r == 0) {
		if (client)
			client_tls_up(c);
		else
			upstream_tls_up(c);
		return;
	}
	if (r == -EAGAIN) {
		set_events(c, h, res.events);
		return;
	}
	if (client && (c->flags & CONN_F_PROXY_LOCAL) && res.kind == STATS_HS_FAIL_EOF) {
		/* A balancer's health check that stops at 'S': not a failure. */
		clog_debug(c, "health check closed after the SSLRequest");
		conn_close(c, CONN_CLOSE_CLIENT_GONE);
		return;
	}
	STAT_INC(st(c), hs_failed[hop][res.kind]);
	if (client) {
		STAT_INC(st(c), client_tls_failures);
		if (res.revoked)
			STAT_INC(st(c), client_certs_revoked);
		clog_info(c, "TLS handshake failed: %s", res.detail);
		conn_close(c, CONN_CLOSE_HANDSHAKE);
		return;
	}
	STAT_INC(st(c), upstream_tls_failures);
	if (res.revoked)
		STAT_INC(st(c), server_certs_revoked);
	fail_upstream(c, res.detail, "TLS handshake failed (tls_verify = %s)",
		      config_verify_name(cfg(c)->tls_verify));
}

static void client_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct hop *h = container_of(io, struct hop, io);
	struct conn *c = container_of(h, struct conn, client);

	switch (c->state) {
	case CONN_PROXY_HEADER:
		read_proxy_header(c);
		return;
	case CONN_ACCEPTED:
	case CONN_STARTUP:
		read_initial(c);
		return;
	case CONN_CLIENT_TLS:
		handshake_step(c, &c->client);
		return;
	case CONN_RELAY:
		if ((events & EPOLLIN) || c->client.rd_wants_write)
			c->relay.rx_ready[0] = true;
		start_relay(c);
		return;
	case CONN_ERROR_FLUSH:
		flush_error(c);
		return;
	case CONN_UPSTREAM_CONNECT:
	case CONN_UPSTREAM_SSLREQ:
	case CONN_UPSTREAM_TLS:
	case CONN_CANCEL_SEND:
		/*
		 * Not reading the client while upstream is set up; an event here
		 * is a hangup. Check so a vanished client frees its upstream.
		 */
		{
			uint8_t b;
			ssize_t n = hop_peek(&c->client, &b, 1);

			if (n == 0 || (n < 0 && n != -EAGAIN)) {
				if (c->flags & CONN_F_CANCEL)
					set_events(c, &c->client, 0);
				else
					conn_close(c, CONN_CLOSE_CLIENT_GONE);
				return;
			}
			set_events(c, &c->client, 0);
		}
		return;
	default:
		set_events(c, &c->client, 0);
		return;
	}
}

static void timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct conn *c = container_of(t, struct conn, timer);

	switch (c->state) {
	case CONN_PROXY_HEADER:
		/* Nothing PostgreSQL-shaped has been said yet: no ErrorResponse. */
		STAT_INC(st(c), startup_timeouts);
		STAT_INC(st(c), proxy_invalid);
		clog_info(c, "refused: no complete PROXY header within %u ms (startup_timeout)",
			  cfg(c)->startup_timeout);
		conn_close(c, CONN_CLOSE_TIMEOUT);
		return;
	case CONN_ACCEPTED:
	case CONN_CLIENT_TLS:
	case CONN_STARTUP:
		STAT_INC(st(c), startup_timeouts);
		if (c->state == CONN_CLIENT_TLS) {
			STAT_INC(st(c), client_tls_failures);
			STAT_INC(st(c), hs_failed[STATS_HOP_CLIENT][STATS_HS_FAIL_TIMEOUT]);
		}
		fail(c, CONN_CLOSE_TIMEOUT, "08006", NULL, NULL,
		     "timeout: no complete %s within %u ms (startup_timeout)",
		     c->state == CONN_CLIENT_TLS ? "TLS handshake" : "startup packet",
		     cfg(c)->startup_timeout);
		return;
	case CONN_UPSTREAM_CONNECT:
	case CONN_UPSTREAM_SSLREQ:
	case CONN_UPSTREAM_TLS:
	case CONN_CANCEL_SEND:
		if (c->state == CONN_UPSTREAM_TLS) {
			STAT_INC(st(c), upstream_tls_failures);
			STAT_INC(st(c), hs_failed[STATS_HOP_SERVER][STATS_HS_FAIL_TIMEOUT]);
		}
		fail_upstream(c, NULL, "no answer within %u ms (connect_timeout)",
			      cfg(c)->connect_timeout);
		return;
	case CONN_ERROR_FLUSH:
		conn_close(c, c->close_reason);
		return;
	default:
		return;
	}
}

struct conn *conn_new(struct worker *w, conn_closed_cb *on_closed)
{
	/* Process-wide, for log lines and the stats: unique across workers. */
	static uint64_t next_id;
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	c->on_closed = on_closed;
	c->w = w;
	c->rt = runtime_get(w->rt);
	c->state = CONN_ACCEPTED;
	c->accepted_ms = ev_now(w->loop);
	hop_init(&c->client, -1, "client", true);
	hop_init(&c->server, -1, "server", true);
	relay_dir_init(&c->c2s);
	relay_dir_init(&c->s2c);
	ev_timer_init(&c->timer, timer_cb);
	return c;
}

void conn_discard(struct conn *c)
{
	hop_close(loop_of(c), &c->client);
	hop_close(loop_of(c), &c->server);
	relay_dir_fini(&c->c2s);
	relay_dir_fini(&c->s2c);
	runtime_put(c->rt);
	free(c);
}

bool conn_movable(const struct conn *c)
{
	return c->state == CONN_RELAY && !(c->flags & (CONN_F_FROZEN | CONN_F_KEPT)) &&
	       c->client.fd >= 0 && c->server.fd >= 0 && hop_movable(&c->client) &&
	       hop_movable(&c->server);
}

void conn_freeze(struct conn *c)
{
	PGKTLS_BUG_ON(c->state != CONN_RELAY);
	c->flags |= CONN_F_FROZEN;
	ev_io_stop(loop_of(c), &c->client.io);
	ev_io_stop(loop_of(c), &c->server.io);
	ev_timer_stop(loop_of(c), &c->timer);
}

void conn_thaw(struct conn *c)
{
	c->flags &= ~CONN_F_FROZEN;
	c->flags |= CONN_F_KEPT;
	/* Whatever arrived meanwhile waits in the sockets: look at both sides. */
	c->relay.rx_ready[0] = c->relay.rx_ready[1] = true;
	start_relay(c);
}

void conn_resume(struct conn *c)
{
	PGKTLS_BUG_ON(c->client.fd < 0 || c->server.fd < 0);
	STAT_INC(st(c), conns_active);
	c->state = CONN_RELAY;
	ev_io_init(&c->client.io, c->client.fd, client_io_cb);
	ev_io_init(&c->server.io, c->server.fd, server_io_cb);
	wire_relay(c);
	/* Bytes the old process left in the engines or the sockets: look at both sides now. */
	start_relay(c);
}

struct conn *conn_accept(struct worker *w, int fd, const struct sockaddr *peer,
			 socklen_t peerlen, conn_closed_cb *on_closed)
{
	struct conn *c = conn_new(w, on_closed);

	if (!c) {
		log_err("out of memory accepting a connection");
		close(fd);
		return NULL;
	}
	sock_addr_str(peer, peerlen, c->peer, sizeof(c->peer));
	hop_init(&c->client, fd, "client", true);
	ev_io_init(&c->client.io, fd, client_io_cb);
	sock_set_nodelay(fd);
	STAT_INC(&w->stats, conns_accepted);
	STAT_INC(&w->stats, conns_active);
	clog_debug(c, "accepted on worker %u", w->idx);
	if (c->rt->cfg->proxy_protocol) {
		/* Only a trusted balancer may say who the client is. */
		if (!sock_cidr_match(c->rt->cfg->proxy_protocol_trusted,
				     c->rt->cfg->n_proxy_protocol_trusted, peer)) {
			STAT_INC(&w->stats, proxy_untrusted);
			clog_info(c, "refused: source not in proxy_protocol_trusted, so it may not "
				     "send a PROXY header (proxy_protocol = true)");
			conn_close(c, CONN_CLOSE_PROXY);
			return c;
		}
		c->state = CONN_PROXY_HEADER;
	}
	ev_timer_start(w->loop, &c->timer, c->rt->cfg->startup_timeout);
	set_events(c, &c->client, EPOLLIN);
	return c;
}
