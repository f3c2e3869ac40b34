/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * relay.h - move bytes between the two hops of a connection.
 *
 * A hop (hop.h) is one socket with whatever does its record crypto; the
 * relay knows hops only through hop.h's interface, never an engine. It
 * reads from one hop and writes to the other through a bounded buffer per
 * direction, in both directions at once; when a writer is blocked its
 * reader stops, so memory stays bounded, but the other direction keeps
 * moving (a blocked write never stops reads the peer needs to make
 * progress, as with TLS 1.3 KeyUpdate).
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

#include "pgktls/compiler.h"
#include "pgktls/ev.h"
#include "pgktls/hop.h"

struct pgproto_framer;
struct stats;
struct tlv_writer;

/* Per-direction buffer: room for one full TLS record plus a rewritten message. */
#define RELAY_BUF_SIZE (16384u + 1024u)
/*
 * The worker-wide bounce buffer: what one pass may gather from a source
 * before writing it on. Four full records: a burst that OpenSSL has
 * already read ahead goes out in 16 KB records, not in the sender's.
 */
#define RELAY_BATCH_SIZE HOP_READ_AHEAD

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

/**
 * relay_dir_export() - @d's state for a binary upgrade, as a TLV list
 * (tlv.h): the bytes buffered and not yet written (with the inspection
 * boundary inside them), the bytes delivered so far, done, eof_told, and
 * how many bytes sit in its splice pipe (the pipe itself goes by
 * SCM_RIGHTS). @d is unchanged.
 * Return: 0, or the writer's error.
 */
PGKTLS_MUSTCHECK int relay_dir_export(const struct relay_dir *d, struct tlv_writer *w);

/**
 * relay_dir_import() - rebuild a relay_dir_init()ed @d from
 * relay_dir_export()'s list; the buffered bytes start a new buffer. Its
 * pipe fds stay -1: when d->pipe_len > 0 the caller puts the received pipe
 * in d->pipe.
 * Return: 0; tlv_parse()'s errors; -EBADMSG (more bytes than a direction
 * holds, a boundary outside them, byte counts that disagree); -ENOMEM.
 * @d is left empty on failure.
 */
PGKTLS_MUSTCHECK int relay_dir_import(struct relay_dir *d, const void *buf, size_t len);

#endif /* PGKTLS_RELAY_H */
