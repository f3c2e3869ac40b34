/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * sessmove.h - moving established sessions to the process of a binary
 * upgrade (phase 2 of docs/ARCHITECTURE.md, "Binary upgrade"): a
 * connection's whole state as one SESSION payload, the old process's offer
 * passes and the answers to them, the new process's adoption.
 *
 * The commit point is the new process's SESSION_ACK. The old process owns a
 * session until the ACK arrives: it freezes the connection (no event, no
 * I/O) before it sends the SESSION, closes its copies of the sockets without
 * a word on the ACK (CONN_CLOSE_HANDED_OVER), and relays again on a NACK or
 * when the new process is gone. The new process rebuilds the connection,
 * sends the ACK, and only once the ACK is sent arms it: if the ACK cannot be
 * sent, it drops its copies and the old process, which never saw an ACK,
 * keeps the session. So at no moment do both processes do I/O on one
 * session, and a session is never lost while either process lives.
 *
 * Threads: the main thread of each process talks to the other process; each
 * worker freezes, exports, adopts and sends on its own connections (a
 * datagram on the SEQPACKET pair is written whole, so workers share it
 * through dup()s of it without a lock).
 */
#ifndef PGKTLS_SESSMOVE_H
#define PGKTLS_SESSMOVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pgktls/compiler.h"

struct conn;
struct handover_msg;
struct worker;

/*
 * How long a worker waits for room on the handover socket for one SESSION
 * or its answer: the peer reads them as fast as it can; a peer this slow is
 * stuck, and the session then stays where it is.
 */
#define SESSMOVE_SEND_MS 2000

/* Descriptor order in a SESSION: the sockets, then each direction's pipe if it holds bytes. */
#define SESSMOVE_FD_CLIENT 0
#define SESSMOVE_FD_SERVER 1

/**
 * sessmove_export() - @c's state (sessmove.c lists what) as a SESSION payload
 * in @buf, and the descriptors that go with it: the client and server
 * sockets, then the read end of each direction's splice pipe that holds
 * bytes (c2s first). Call it in @c's worker, between events, on a
 * conn_movable() connection. @c is unchanged. The payload holds keys: the
 * caller wipes @buf after sending it.
 * @len: out: the payload's length
 * @fds: out: HANDOVER_SESSION_FDS slots, @n_fds of them filled (borrowed
 *	from @c, not dup()ed)
 * Return: 0; -ENOSPC (the buffers in flight do not fit @cap now: offer it
 * again later); -EOPNOTSUPP (a hop that cannot move); -ENOMEM.
 */
PGKTLS_MUSTCHECK int sessmove_export(const struct conn *c, uint8_t *buf, size_t cap, size_t *len,
				     int *fds, uint8_t *n_fds);

/**
 * sessmove_import() - rebuild a conn_new() connection @c from a SESSION's
 * @payload and its descriptors.
 * @fds: @n_fds descriptors, in sessmove_export()'s order; each one @c takes
 *	is set to -1 in @fds (on failure too: conn_discard() closes those),
 *	the rest stay the caller's
 * @why: out: for the NACK's text and the log, on failure
 * Return: 0; -EPROTONOSUPPORT (a mandatory field this binary does not
 * know: NACK unsupported); -EBADMSG, -ENODATA (malformed); -ENOMEM.
 */
PGKTLS_MUSTCHECK int sessmove_import(struct conn *c, const uint8_t *payload, size_t len, int *fds,
				     uint8_t n_fds, char *why, size_t whylen);

/* ---- the old process: offering ---- */

/* One upgrade's offering, shared by the main thread and the workers (reference-counted). */
struct sessmove_offer;

/* Where the offering stands, for the main thread's decisions and the log. */
struct sessmove_counts {
	uint32_t offered;	/* SESSIONs sent */
	uint32_t moved;		/* ACKed: the new process has them */
	uint32_t refused;	/* NACKed, or left here because the new process went away */
	uint32_t unsettled;	/* offered and not yet closed or relaying again here */
	uint32_t passes;	/* worker passes posted and not yet finished */
};

/**
 * sessmove_offer_new() - start offering over handover socket @fd (not owned:
 * each pass sends on its own dup()), in handover protocol @version.
 * Return: the offer, or NULL.
 */
struct sessmove_offer *sessmove_offer_new(int fd, uint16_t version);

/** sessmove_offer_put() - the main thread lets go of @o (workers may still hold it). */
void sessmove_offer_put(struct sessmove_offer *o);

/**
 * sessmove_offer_pass() - ask each of @n @workers to offer every connection
 * that can move now and was not offered yet (a worker_call()). A pass still
 * running in a worker is not doubled.
 * Return: 0, or -errno (nothing more posted).
 */
PGKTLS_MUSTCHECK int sessmove_offer_pass(struct sessmove_offer *o, struct worker *workers,
					 size_t n);

/**
 * sessmove_answer() - the new process answered @msg (SESSION_ACK or
 * SESSION_NACK): hand it to the worker that froze the connection.
 * Return: true, or false for an id never offered (or answered already).
 */
bool sessmove_answer(struct sessmove_offer *o, struct worker *workers,
		     const struct handover_msg *msg);

/**
 * sessmove_abandon() - stop offering: no pass sends any more, and no answer
 * is waited for.
 * @thaw: the new process is gone (EOF): every connection still waiting for
 *	an answer relays here again. False when this process stops: those stay
 *	frozen (the new process may hold them, an ACK unread) and the stop
 *	closes them without a word.
 */
void sessmove_abandon(struct sessmove_offer *o, struct worker *workers, bool thaw);

/** sessmove_counts() - a snapshot of @o's counters (thread-safe). */
void sessmove_counts(const struct sessmove_offer *o, struct sessmove_counts *out);

/* ---- the new process: adopting ---- */

/**
 * sessmove_adopt() - have @w rebuild the session in @msg (a SESSION from
 * handover_recv()), answer it on a dup() of handover socket @fd, and relay
 * it (a worker_call()). The payload and descriptors move out of @msg (set to
 * NULL and -1 there).
 * @from_pid: the old process, for the log
 * Return: 0; -ENOMEM or -EMFILE (nothing taken: the caller answers NACK).
 */
PGKTLS_MUSTCHECK int sessmove_adopt(struct worker *w, struct handover_msg *msg, int fd,
				    pid_t from_pid);

#endif /* PGKTLS_SESSMOVE_H */
