/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * hop.h - one side of a connection: a socket and the engine that does its
 * record crypto, behind one interface.
 *
 * Engines (one struct hop_engine each, in hop.c):
 *   plain    no TLS: the socket carries the bytes (TCP or unix socket)
 *   openssl  OpenSSL's SSL object does the records (the handshake, and
 *            afterwards where nothing else can take them)
 *   tlsrec   pgktls's own userspace record layer (tlsrec.h); the SSL is freed
 *   ktls     the kernel seals and opens records in both directions (ktls.h);
 *            pgktls handles only the control records the kernel hands up
 * A hop starts plain (hop_init()), becomes openssl for its handshake
 * (hop_start_tls()), and hop_engage() picks its engine for good once the
 * handshake is done. Both directions of a hop always use the same engine:
 * kTLS in one direction only is refused (ktls.h: the kernel cannot read in
 * step with OpenSSL writing, nor the other way round), so the engine is a
 * property of the hop, not of a direction.
 *
 * A hop never knows the other hop: relay.c pumps bytes between two of them,
 * conn.c decides when.
 */
#ifndef PGKTLS_HOP_H
#define PGKTLS_HOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "pgktls/compiler.h"
#include "pgktls/config.h"
#include "pgktls/ev.h"
#include "pgktls/ktls.h"
#include "pgktls/stats.h"
#include "pgktls/tlsmsg.h"

struct hop;
struct hop_info;
struct tlsrec;
struct tlv_writer;

/*
 * How many payload bytes a reader may take from a userspace engine in one
 * go: four full records (the relay's batch), so that a burst OpenSSL reads
 * ahead goes on in 16 KB records, not in the sender's.
 */
#define HOP_READ_AHEAD (4u * 16384u)

/* How bytes may leave or enter a hop's socket without passing through userspace. */
enum hop_splice {
	HOP_SPLICE_NONE,	/* records are sealed or opened in userspace: no splice */
	HOP_SPLICE_STREAM,	/* plain socket: splice moves the stream as it is */
	HOP_SPLICE_RECORDS,	/* kTLS: splice moves data records; control records need a read */
};

/*
 * One record engine. Every hop I/O call goes through these; hop.c holds one
 * table per engine. Calls happen on the hop's worker thread only.
 *
 * Adding an operation (e.g. export/import of an engine's state for a
 * binary upgrade) means one more member here and one function per engine:
 * nothing outside hop.c switches on the engine.
 */
struct hop_engine {
	const char *name;	/* "plain", "openssl", "tlsrec", "ktls": logs and stats */
	/* Payload in: as hop_read(), called only before EOF. */
	ssize_t (*read)(struct hop *h, void *buf, size_t len, struct stats *st);
	/* Payload out: as hop_write(). */
	ssize_t (*write)(struct hop *h, const void *buf, size_t len);
	/* Our close_notify, if the engine has one: 0, -EAGAIN or -errno (SHUT_WR is hop.c's). */
	int (*shutdown)(struct hop *h);
	/* Send records the engine queued itself (answers, alerts): as hop_flush(). */
	int (*flush)(struct hop *h, struct stats *st);
	/* Records due before any more payload (a KeyUpdate answer): as hop_tx_ready(). */
	int (*tx_ready)(struct hop *h, struct stats *st);
	/* Whether a read can return payload without the socket (read-ahead). */
	bool (*has_pending)(const struct hop *h);
	/* The epoll mask: what the relay wants plus what the engine itself waits for. */
	uint32_t (*events)(const struct hop *h, bool want_read, bool want_write);
	/* TLS facts for the stats (tls, version, cipher...); the caller zeroed @out. */
	void (*info)(const struct hop *h, struct hop_info *out);
	/* Free the engine's state (keys wiped); the fd is hop.c's. */
	void (*release)(struct hop *h);
	/*
	 * Binary upgrade: the engine's state as a TLV list (tlv.h), everything
	 * it acts on next; NULL: the engine cannot move (its state is opaque).
	 */
	int (*export)(const struct hop *h, struct tlv_writer *w);
	/* Rebuild the engine's state on a hop_init()ed @h from export's list. */
	int (*import)(struct hop *h, const void *buf, size_t len);
	enum hop_splice splice;	/* both directions: see enum hop_splice */
};

/*
 * What stays of a hop's TLS session for reporting once its SSL is freed
 * (kTLS or tlsrec): hop_info() reads it instead of the SSL.
 */
struct hop_tls_summary {
	const char *version;	/* "TLSv1.3": static in OpenSSL */
	const char *cipher;	/* OpenSSL's name: static in OpenSSL */
	char alpn[32];		/* negotiated ALPN, "" if none */
	char *sni;		/* server name sent or received; owned, or NULL */
	char *peer_subject;	/* peer certificate subject; owned, or NULL */
	char *cipher_owned;	/* imported (hop_import()): what @cipher points to; owned */
	bool peer_verified;	/* that certificate was asked for and verified */
};

/* One side of a connection. */
struct hop {
	int fd;			/* owned; -1 once closed */
	const struct hop_engine *eng; /* who does the records; never NULL after hop_init() */
	SSL *ssl;		/* owned; the handshake's, kept by the openssl engine */
	struct keysched_session *ks; /* owned; kTLS: what a KeyUpdate needs once the SSL is freed */
	struct tlsrec *rec;	/* owned; the tlsrec engine's record layer */
	struct hop_tls_summary *summary; /* owned; once the SSL is freed: for hop_info() */
	struct ev_io io;
	struct ktls_hop_state ktls; /* who does the crypto, per direction, and why */
	struct tlsmsg msg;	/* kTLS: post-handshake state, once msg_ready */
	struct ktls_tx_budget txb; /* kTLS TX: records under the send key, and its limit */
	struct stats *stats;	/* where kTLS send-side events are counted (relay_init()) */
	bool msg_ready;		/* msg set up (from the SSL, before it is freed) */
	bool is_tcp;		/* false for unix sockets */
	bool rx_eof;		/* the peer has finished sending (EOF or close_notify) */
	bool tx_shut;		/* we have finished sending (close_notify + SHUT_WR sent) */
	bool rd_wants_write;	/* the engine's read needs the socket writable first */
	bool wr_wants_read;	/* OpenSSL's write needs the socket readable first */
	bool clean_eof;		/* rx_eof came with close_notify (TLS) or FIN (plain) */
	const char *name;	/* "client" or "server", for log lines */
	char err[160];		/* why the last failed operation failed */
};

/* A hop's TLS facts, as the stats show them (hop_info()). */
struct hop_info {
	const char *engine;	/* struct hop_engine's name: static */
	bool tls;		/* the hop speaks TLS (or is negotiating it) */
	bool tls_done;		/* ... and its handshake is complete */
	char version[16];	/* "TLSv1.3" */
	char cipher[64];	/* OpenSSL's name, "TLS_AES_256_GCM_SHA384" */
	char alpn[32];		/* negotiated ALPN, "" if none */
	char sni[256];		/* server name sent (server hop) or received (client hop) */
	char peer_subject[256];	/* the peer certificate's subject, "" if none */
	bool peer_verified;	/* ... asked for and verified */
	struct ktls_hop_state ktls; /* kTLS state per direction, and why */
};

/* After-handshake policy for one hop: see hop_engage(). */
struct hop_policy {
	enum cfg_ktls ktls;	/* off, auto or required */
	bool kernel_tls;	/* this kernel offers kTLS (ktls_probe()) */
	bool openssl_records;	/* keep OpenSSL's record layer instead of tlsrec */
};

/* How a failed handshake failed, for the caller's counters and log. */
struct hop_hs_result {
	uint32_t events;	/* on -EAGAIN: the epoll mask to wait with */
	enum stats_hs_fail kind; /* on -EPROTO: EOF, certificate verification, or protocol */
	bool revoked;		/* on -EPROTO: the peer's certificate is revoked */
	char detail[256];	/* on -EPROTO: OpenSSL's reasons, for the log and the client */
};

/** hop_init() - a plain hop around @fd (-1: not connected yet); nothing to free. */
void hop_init(struct hop *h, int fd, const char *name, bool is_tcp);

/**
 * hop_start_tls() - hand @h to OpenSSL for its handshake.
 * @ssl: set up on @h's fd (tls_new_client(), tls_new_upstream()); owned by
 *	@h from here on, freed by hop_close()
 */
void hop_start_tls(struct hop *h, SSL *ssl);

/**
 * hop_handshake() - one non-blocking step of @h's TLS handshake.
 * @res: out: what to wait for, or how it failed
 *
 * Return: 0 once the handshake is done; -EAGAIN (wait for res->events);
 * -EPROTO with res->kind, res->revoked and res->detail (OpenSSL's reasons,
 * with a revoked certificate's subject and serial) saying why.
 */
PGKTLS_MUSTCHECK int hop_handshake(struct hop *h, struct hop_hs_result *res);

/**
 * hop_engage() - pick @h's record engine for good, right after its handshake
 * and before any payload went through OpenSSL: the kernel in both
 * directions if @p allows and the session fits, else tlsrec (the SSL is
 * freed), else OpenSSL reading ahead (p->openssl_records, or a session
 * tlsrec does not take). h->ktls says, per direction, what happened and why.
 *
 * Return: 0 (engaged or falling back as @p allows); -EOPNOTSUPP when
 * ktls = required was not met; -ENOTRECOVERABLE when the kernel took the
 * receive side only (ktls.h), under any mode. Either way the caller ends
 * the connection; @h can still send an ErrorResponse (its send side is
 * not in the kernel).
 */
PGKTLS_MUSTCHECK int hop_engage(struct hop *h, const struct hop_policy *p);

/**
 * hop_read() - read payload from @h.
 *
 * kTLS reads records with their type and handles non-data records
 * (tickets ignored, KeyUpdate rekeyed where the kernel can, close_notify is
 * EOF); tlsrec and OpenSSL do the same in userspace.
 *
 * Return: bytes read (> 0), 0 at EOF (h->rx_eof set), -EAGAIN, or another
 * -errno with h->err set (-EBADMSG: a record failed authentication;
 * -EKEYREJECTED: a KeyUpdate this kernel cannot follow).
 */
PGKTLS_MUSTCHECK ssize_t hop_read(struct hop *h, void *buf, size_t len, struct stats *st);

/**
 * hop_write() - write payload.
 *
 * After -EAGAIN, call again with the same bytes first (a userspace engine
 * may hold a half-sent record of them: see hop_tx_partial()).
 * Return: > 0 bytes taken, -EAGAIN, or -errno with h->err set.
 */
PGKTLS_MUSTCHECK ssize_t hop_write(struct hop *h, const void *buf, size_t len);

/**
 * hop_tx_partial() - whether @h's engine holds a record made of bytes a
 * hop_write() was given but has not yet counted as taken: the next write
 * must start with those same bytes.
 */
bool hop_tx_partial(const struct hop *h);

/**
 * hop_shutdown_write() - finish our sending side: close_notify where TLS is
 * up, then SHUT_WR.
 * Return: 0, -EAGAIN (retry when writable), or -errno.
 */
PGKTLS_MUSTCHECK int hop_shutdown_write(struct hop *h);

/**
 * hop_flush() - send what the engine queued itself (KeyUpdate answers,
 * alerts), as far as the socket takes it, and recompute what the engine
 * waits for, so that an emptied queue stops asking for EPOLLOUT.
 * Return: 0, or -errno with h->err set.
 */
PGKTLS_MUSTCHECK int hop_flush(struct hop *h, struct stats *st);

/**
 * hop_tx_ready() - send what must go before any more payload on @h (a kTLS
 * KeyUpdate answer, RFC 8446 4.6.3), before bytes are spliced to it.
 * @st: the worker's counters, or NULL
 * Return: 0 (payload may follow), -EAGAIN, or -errno with h->err set.
 */
PGKTLS_MUSTCHECK int hop_tx_ready(struct hop *h, struct stats *st);

/** hop_has_pending() - whether a read can return payload without the socket. */
bool hop_has_pending(const struct hop *h);

/** hop_splice() - how bytes may be spliced to and from @h's socket. */
static inline enum hop_splice hop_splice(const struct hop *h)
{
	return h->eng->splice;
}

/**
 * hop_spliced_in() - @h's socket gave payload to splice: a kTLS hop's
 * post-handshake state hears of data (it ends a run of warning alerts).
 */
void hop_spliced_in(struct hop *h);

/**
 * hop_spliced_out() - @n bytes went from a pipe to @h's socket in one
 * splice: a kTLS hop notes them in its send key's record budget (ktls.h).
 */
void hop_spliced_out(struct hop *h, size_t n);

/**
 * hop_splice_end() - splice from @h returned 0 or failed with @err.
 * Return: 1 when the next record must be read with hop_read() (a kTLS
 * control record, or an empty data record); 0 at EOF (h->rx_eof set); or
 * -errno with h->err set.
 */
PGKTLS_MUSTCHECK int hop_splice_end(struct hop *h, int err);

/**
 * hop_set_err() - record why an operation on @h failed (for the log).
 * Return: -@err.
 */
int hop_set_err(struct hop *h, int err, const char *what);

/** hop_has_tls() - whether this hop speaks TLS (through OpenSSL, tlsrec or the kernel). */
static inline bool hop_has_tls(const struct hop *h)
{
	return h->ssl || h->ks || h->rec;
}

/**
 * hop_info() - @h's TLS facts (version, cipher, ALPN, SNI, peer, kTLS per
 * direction), whichever engine holds them, for the stats and the log.
 * @out: filled entirely; "" and false where there is nothing to say
 */
void hop_info(const struct hop *h, struct hop_info *out);

/**
 * hop_peek() - look at what the peer sent on a plain hop, without taking it
 * (before a TLS handshake: OpenSSL or the kernel must still find it).
 * Return: bytes seen (> 0), 0 at EOF, -EAGAIN, or -errno.
 */
PGKTLS_MUSTCHECK ssize_t hop_peek(struct hop *h, void *buf, size_t len);

/**
 * hop_has_unread() - whether bytes the peer sent wait in @h's socket: after
 * a server's 'S', anything there was not sent by a TLS server (CVE-2021-23222).
 */
bool hop_has_unread(const struct hop *h);

/**
 * hop_release_ssl() - free @h's SSL once both directions are in the kernel,
 * keeping only what kTLS (KeyUpdate) and the stats still need: an idle
 * offloaded hop then costs a few hundred bytes instead of OpenSSL's ~17 KB.
 * Return: 0, or -ENOMEM (the SSL is kept; nothing is lost).
 */
PGKTLS_MUSTCHECK int hop_release_ssl(struct hop *h);

/**
 * hop_use_tlsrec() - move @h's record protection, both directions in
 * userspace, from OpenSSL to pgktls's own record layer (tlsrec.h) and free
 * the SSL, keeping a summary for the stats: an idle hop then costs about
 * 2.5 KB instead of OpenSSL's 13 KB or more.
 * Return: 0, or -errno (-ENOMEM, or a session tlsrec cannot take: see
 * tlsrec_new()); the SSL is then kept and carries on.
 */
PGKTLS_MUSTCHECK int hop_use_tlsrec(struct hop *h);

/** hop_close() - free the engine's state (wiping keys) and close the fd. Idempotent. */
void hop_close(struct ev_loop *loop, struct hop *h);

/** hop_events() - the epoll mask @h needs given what the relay wants from it. */
uint32_t hop_events(const struct hop *h, bool want_read, bool want_write);

/** hop_movable() - whether @h's engine can move to another process (hop_export()). */
bool hop_movable(const struct hop *h);

/**
 * hop_export() - @h's state for a binary upgrade, as a TLV list (tlv.h):
 * the engine, the hop's flags (EOF seen, our side shut, ...), the engine's
 * own state (tlsrec: keys, sequence numbers, bytes in flight) and the TLS
 * summary for the stats. The fd is not in it: it travels by SCM_RIGHTS.
 * Call it between events (no operation on @h half done); @h is unchanged,
 * and is then freed with hop_close() (no close_notify: the peer's session
 * goes on in the new process). Whoever owns @w's buffer wipes it (keys).
 *
 * kTLS: the kernel's record state (keys, sequence numbers, bytes queued)
 * moves with the socket; the list carries pgktls's side (the session for
 * KeyUpdate, the post-handshake state, the send key's budget, the facts
 * for the stats).
 *
 * Return: 0; -EOPNOTSUPP (an engine that cannot move: openssl, or a kTLS
 * hop still holding its SSL); the writer's error.
 */
PGKTLS_MUSTCHECK int hop_export(const struct hop *h, struct tlv_writer *w);

/**
 * hop_import() - rebuild a hop from hop_export()'s list @buf of @len bytes
 * around @fd (the same socket, received by SCM_RIGHTS).
 * @name: "client" or "server", for log lines
 *
 * Return: 0; or -errno (tlv_parse()'s, tlsrec_import()'s, -EOPNOTSUPP for
 * an engine this binary cannot adopt), @h then a plain hop around @fd that
 * the caller closes with hop_close() or hands back.
 */
PGKTLS_MUSTCHECK int hop_import(struct hop *h, int fd, const char *name, const void *buf,
				size_t len);

#endif /* PGKTLS_HOP_H */
