/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * relay.h - move bytes between the two hops of a connection.
 *
 * A hop is one socket with whatever does its record crypto: nothing
 * (plaintext TCP or unix socket), OpenSSL in userspace, or the kernel
 * (kTLS), chosen per direction. The relay reads from one hop and writes to
 * the other through a bounded buffer per direction, in both directions at
 * once; when a writer is blocked its reader stops, so memory stays bounded,
 * but the other direction keeps moving (a blocked write never stops reads
 * the peer needs to make progress, as with TLS 1.3 KeyUpdate).
 *
 * relay.c makes no policy decisions: the connection state machine (conn.c)
 * decides when relaying starts, what to inspect and how to close.
 */
#ifndef PGKTLS_RELAY_H
#define PGKTLS_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "pgktls/compiler.h"
#include "pgktls/ev.h"
#include "pgktls/ktls.h"
#include "pgktls/tlsmsg.h"

struct keysched_session;
struct pgproto_framer;
struct stats;
struct tlsrec;

/* Per-direction buffer: room for one full TLS record plus a rewritten message. */
#define RELAY_BUF_SIZE (16384u + 1024u)
/*
 * The worker-wide bounce buffer: what one pass may gather from a source
 * before writing it on. Four full records: a burst that OpenSSL has
 * already read ahead goes out in 16 KB records, not in the sender's.
 */
#define RELAY_BATCH_SIZE (4u * 16384u)

/*
 * What stays of a hop's TLS session for reporting once its SSL is freed
 * (kTLS in both directions): see hop_release_ssl().
 */
struct hop_tls_summary {
	const char *version;	/* "TLSv1.3": static in OpenSSL */
	const char *cipher;	/* OpenSSL's name: static in OpenSSL */
	bool alpn_postgresql;	/* ALPN "postgresql" was negotiated */
	char *sni;		/* server name sent or received; owned, or NULL */
	char *peer_subject;	/* peer certificate subject; owned, or NULL */
	bool peer_verified;	/* that certificate was asked for and verified */
};

/* One side of a connection. */
struct hop {
	int fd;			/* owned; -1 once closed */
	SSL *ssl;		/* owned; NULL if no TLS, or freed by hop_release_ssl() */
	struct keysched_session *ks; /* owned; after hop_release_ssl(): what kTLS still needs */
	struct tlsrec *rec;	/* owned; after hop_use_tlsrec(): pgktls's record layer */
	struct hop_tls_summary *summary; /* owned; once the SSL is freed: for the stats */
	struct ev_io io;
	struct ktls_hop_state ktls; /* who does the crypto, per direction, and why */
	struct tlsmsg msg;	/* kTLS RX: post-handshake state, once msg_ready */
	bool msg_ready;		/* msg set up (from the SSL, before it is freed) */
	bool is_tcp;		/* false for unix sockets */
	bool rx_eof;		/* the peer has finished sending (EOF or close_notify) */
	bool tx_shut;		/* we have finished sending (close_notify + SHUT_WR sent) */
	bool rd_wants_write;	/* OpenSSL's read needs the socket writable first */
	bool wr_wants_read;	/* OpenSSL's write needs the socket readable first */
	bool clean_eof;		/* rx_eof came with close_notify (TLS) or FIN (plain) */
	const char *name;	/* "client" or "server", for log lines */
	char err[160];		/* why the last failed operation failed */
};

/* One direction of traffic, from one hop to the other. */
struct relay_dir {
	uint8_t *buf;		/* cap bytes while in use, else NULL */
	uint32_t cap;		/* RELAY_BUF_SIZE, or up to RELAY_BATCH_SIZE for a stash */
	uint32_t head;		/* next byte to write to the destination */
	uint32_t scan;		/* bytes before this may be written (inspection boundary) */
	uint32_t tail;		/* next free byte */
	uint64_t bytes;		/* delivered to the destination */
	int pipe[2];		/* splice() pipe while it holds bytes; -1 = none */
	uint32_t pipe_len;	/* bytes sitting in the pipe */
	bool no_pipe;		/* pipe2() failed (EMFILE): copy through userspace */
	bool done;		/* EOF passed on to the destination */
	bool eof_told;		/* the relay's on_eof has been called for this direction */
};

/*
 * Empty pipes a worker keeps for splice(). A direction borrows a pipe only
 * while bytes sit in it and gives it back once splice has drained it, so
 * an idle connection, offloaded or not, holds just its two sockets.
 */
#define RELAY_SPARE_PIPES 32
struct relay_pipes {
	int fd[RELAY_SPARE_PIPES][2];
	unsigned n;		/* spares in fd[0..n) */
};

/** relay_pipes_fini() - close every spare pipe in @p. */
void relay_pipes_fini(struct relay_pipes *p);

/*
 * relay_inspect_cb - called when new bytes arrive in @d while the owner
 * inspects that direction. It must advance d->scan over every byte that may
 * now be written (it may rewrite bytes between scan and tail in place, and
 * change tail). Return 0, or -errno to end the connection.
 */
typedef int relay_inspect_cb(void *arg, struct relay_dir *d);

/*
 * relay_eof_cb - called once when direction @i's source has ended and
 * everything it sent has been written on, just before the EOF is passed to
 * the destination: the owner may put last words in @d (its buffer is empty;
 * it may reserve it and fill head..tail), which go out before the EOF.
 */
typedef void relay_eof_cb(void *arg, int i, struct relay_dir *d);

struct relay {
	struct hop *src[2];	/* [0] client->server reads client; [1] server->client */
	struct hop *dst[2];
	struct relay_dir *dir[2];
	relay_inspect_cb *inspect[2]; /* NULL = pass bytes through untouched */
	/*
	 * Whether src[i] may have bytes to read. Set by the owner when epoll
	 * reports the socket readable; cleared when a read shows it drained.
	 * Only an optimisation (no read that would return EAGAIN): with
	 * level-triggered epoll a wrong "drained" costs one more wakeup.
	 */
	bool rx_ready[2];
	/*
	 * Framing of each direction's PostgreSQL messages (NULL = not
	 * tracked): fed every byte that passes through userspace, marked lost
	 * when bytes are spliced past it. Headers only: no copy of the data.
	 */
	struct pgproto_framer *frame[2];
	relay_eof_cb *on_eof;	/* NULL = pass EOF on at once */
	void *inspect_arg;	/* for inspect and on_eof */
	struct stats *stats;	/* the worker's counters */
	uint8_t *scratch;	/* worker-wide bounce buffer, RELAY_BATCH_SIZE */
	struct relay_pipes *pipes; /* the worker's spare pipes */
	int err;		/* on RELAY_FAILED: the -errno that ended it (see hop_read()) */
};

enum relay_status {
	RELAY_AGAIN,		/* waiting for the sockets: epoll masks set */
	RELAY_FINISHED,		/* both directions delivered their EOF */
	RELAY_FAILED,		/* a hop failed: r->err says how, its err why (for the log);
				 * *failed_hop says which */
};

/** hop_init() - an empty hop around @fd (no TLS yet). */
void hop_init(struct hop *h, int fd, const char *name, bool is_tcp);

/**
 * hop_read() - read decrypted payload from @h.
 *
 * Userspace TLS goes through SSL_read; kTLS RX reads records with their type,
 * handles non-data records (tickets ignored, KeyUpdate rekeyed where the
 * kernel can, close_notify is EOF) and skips empty data records.
 *
 * Return: bytes read (> 0), 0 at EOF (h->rx_eof set), -EAGAIN, or another
 * -errno with h->err set (-EBADMSG: a record failed authentication;
 * -EKEYREJECTED: a KeyUpdate this kernel cannot follow).
 */
PGKTLS_MUSTCHECK ssize_t hop_read(struct hop *h, void *buf, size_t len, struct stats *st);

/** hop_write() - write payload; > 0 bytes taken, -EAGAIN, or -errno with h->err set. */
PGKTLS_MUSTCHECK ssize_t hop_write(struct hop *h, const void *buf, size_t len);

/**
 * hop_shutdown_write() - finish our sending side: close_notify where TLS is
 * up (SSL_shutdown, or an alert record on kTLS TX), then SHUT_WR.
 * Return: 0, -EAGAIN (retry when writable), or -errno.
 */
PGKTLS_MUSTCHECK int hop_shutdown_write(struct hop *h);

/** hop_has_tls() - whether this hop speaks TLS (through OpenSSL or the kernel). */
static inline bool hop_has_tls(const struct hop *h)
{
	return h->ssl || h->ks || h->rec;
}

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

/** hop_close() - free the SSL (wiping kTLS secrets) and close the fd. */
void hop_close(struct ev_loop *loop, struct hop *h);

/**
 * hop_events() - the epoll mask @h needs given what the relay wants from it.
 */
uint32_t hop_events(const struct hop *h, bool want_read, bool want_write);

/**
 * relay_init() - wire @r between two hops: direction 0 reads @client and
 * writes @server through @c2s, direction 1 the other way through @s2c; both
 * sources marked ready, nothing inspected or framed, no on_eof (the owner
 * sets those after).
 * @st: the worker's counters; @scratch: its RELAY_BATCH_SIZE bounce
 * buffer; @pipes: its spare pipes (all borrowed, not owned)
 */
void relay_init(struct relay *r, struct hop *client, struct hop *server, struct relay_dir *c2s,
		struct relay_dir *s2c, struct stats *st, uint8_t *scratch,
		struct relay_pipes *pipes);

/**
 * relay_run() - move as much as the sockets allow, both directions, then
 * set each hop's epoll mask.
 * @failed_hop: out, on RELAY_FAILED: the hop whose error ended it
 *
 * Return: an enum relay_status.
 */
enum relay_status relay_run(struct relay *r, struct ev_loop *loop, struct hop **failed_hop);

/** relay_dir_init() - an empty direction (no buffer, no pipe). */
void relay_dir_init(struct relay_dir *d);

/** relay_dir_free() - release @d's buffer (its pipe stays). */
void relay_dir_free(struct relay_dir *d);

/** relay_dir_fini() - release @d's buffer and close its pipe. */
void relay_dir_fini(struct relay_dir *d);

/**
 * relay_dir_reserve() - make sure @d has its buffer.
 * Return: 0 or -ENOMEM.
 */
PGKTLS_MUSTCHECK int relay_dir_reserve(struct relay_dir *d);

/** relay_dir_pending() - bytes buffered (or in the pipe) and not yet written. */
static inline uint32_t relay_dir_pending(const struct relay_dir *d)
{
	return d->tail - d->head + d->pipe_len;
}

#endif /* PGKTLS_RELAY_H */
