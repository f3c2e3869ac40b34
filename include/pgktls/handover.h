/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * handover.h - the protocol between a running pgktls (the old process) and
 * the binary it starts to replace itself (the new process), over one
 * AF_UNIX SOCK_SEQPACKET socketpair: one message per datagram, descriptors
 * riding along with SCM_RIGHTS.
 *
 * Every message starts with the same 12-byte header, frozen for every
 * future version so that any two pgktls can at least read each other's
 * hello and say no: magic "PKHO", u16 version, u16 type, u32 payload
 * length, all little-endian. The payload of each type is fixed by the
 * version in the header. A receiver that does not speak the sender's
 * version answers HANDOVER_REFUSE and the old process keeps serving.
 *
 * The conversation (old → new unless marked):
 *
 *	HELLO {pid, features, listeners}
 *	    ← ACCEPT {pid}  or  ← REFUSE {reason, version, text}
 *	LISTENER {kind, index} + 1 fd   (once per listening socket)
 *	LISTENERS_END {count}
 *	    ← READY {pid, listeners}    (its workers accept on them now)
 *	COMMIT                          (the old process stopped accepting)
 *	                                version 2, when HELLO set HANDOVER_F_SESSIONS:
 *	SESSION {id, fds, payload} + 1..4 fds   (once per session offered)
 *	    ← SESSION_ACK {id}  or  ← SESSION_NACK {id, reason, text}
 *	SESSIONS_END {count}            (every session it will offer was offered)
 *	STATUS {draining[, moved, kept]} (while the old process drains; then EOF)
 *
 * Versions: a new process speaks every version from HANDOVER_VERSION_MIN to
 * HANDOVER_VERSION and answers in the version of the hello it got, so a
 * phase-1 (version 1) process can still be upgraded to this one. The old
 * process always says hello in HANDOVER_VERSION: an older binary refuses it
 * (REFUSE `version`, with the version it speaks) and the old process keeps
 * serving. See docs/ARCHITECTURE.md, "The protocol", for why.
 *
 * A SESSION's payload (the session's state, made by the hop engines) carries
 * key material, so every buffer a message is encoded into or decoded from is
 * wiped after use (handover_send()/handover_recv() do it for their own
 * buffers; handover_msg_fini() for what handover_recv() hands out), and no
 * message's contents are ever logged.
 *
 * The encoder and decoder are pure functions of their buffers (a fuzz
 * target); only handover_send(), handover_recv() and handover_spawn() touch
 * the system.
 */
#ifndef PGKTLS_HANDOVER_H
#define PGKTLS_HANDOVER_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

/* The newest protocol this binary speaks. Raise it on any change of a payload. */
#define HANDOVER_VERSION 2
/* The oldest it still speaks (as a new process answering an older hello). */
#define HANDOVER_VERSION_MIN 1
#define HANDOVER_MAGIC "PKHO"
#define HANDOVER_HDR_LEN 12
#define HANDOVER_TEXT_MAX 200
/*
 * The largest SESSION payload. What one session may hold in buffers when it
 * is frozen (src/relay.c, src/tlsrec.c as of this version): per hop, tlsrec's
 * read-ahead REC_RBUF (4 records with headers: 66,580 bytes), one opened
 * record's undelivered plaintext (16,384) and its send queue REC_TBUF (one
 * sealed record and a few control records: under 17,000); per direction the
 * relay's buffer RELAY_BUF_SIZE (17,408). Both hops and both directions:
 * 2 * (66,580 + 16,384 + 17,000) + 2 * 17,408 = 234,744 bytes, plus keys,
 * secrets and small state (a few hundred bytes). 256 KiB holds that with
 * room for TLV headers; a splice pipe's bytes are not in it (its fd moves).
 * A session that would not fit is not offered: it drains on the old process.
 */
#define HANDOVER_SESSION_MAX (256u * 1024u)
/* Descriptors one SESSION carries: both sockets and up to one splice pipe per direction. */
#define HANDOVER_SESSION_FDS 4
/* A SESSION's fixed part: u64 id, u8 fd count, 3 reserved bytes. */
#define HANDOVER_SESSION_FIXED 12
/* The largest datagram either side sends or accepts (a full SESSION). */
#define HANDOVER_MAX_MSG (HANDOVER_HDR_LEN + HANDOVER_SESSION_FIXED + HANDOVER_SESSION_MAX)
/*
 * SO_SNDBUF/SO_RCVBUF asked for on both ends of the pair. An AF_UNIX datagram
 * must fit the sender's sk_sndbuf (less 32 bytes) or sendmsg() fails with
 * EMSGSIZE; Debian's default (net.core.wmem_default) is 212,992, too small
 * for HANDOVER_MAX_MSG. The kernel doubles what is asked, capped at
 * net.core.wmem_max (212,992 by default: 425,984 once doubled), so this
 * works unprivileged on a default kernel. Measured by test_handover's
 * full-size SESSION.
 */
#define HANDOVER_SOCKBUF (512 * 1024)

/* The environment variable that tells a new process the fd of its end of the pair. */
#define HANDOVER_ENV_FD "PGKTLS_HANDOVER_FD"
/*
 * Test knobs, read by the new process only: the protocol version it
 * pretends to speak (the only one it then accepts: forces a refusal), a
 * crash right after it took the listeners (the worst moment to die before
 * READY; with the value "session": at the first SESSION offered, unanswered,
 * after COMMIT, so the old process must take back what it froze), and a
 * SESSION_NACK for every session offered (each then drains on the old
 * process). Not for production; documented in docs/ARCHITECTURE.md.
 */
#define HANDOVER_ENV_TEST_VERSION "PGKTLS_TEST_HANDOVER_VERSION"
#define HANDOVER_ENV_TEST_CRASH "PGKTLS_TEST_HANDOVER_CRASH"
#define HANDOVER_ENV_TEST_NACK "PGKTLS_TEST_HANDOVER_NACK"

enum handover_type {
	HANDOVER_HELLO = 1,
	HANDOVER_ACCEPT = 2,
	HANDOVER_REFUSE = 3,
	HANDOVER_LISTENER = 4,
	HANDOVER_LISTENERS_END = 5,
	HANDOVER_READY = 6,
	HANDOVER_COMMIT = 7,
	HANDOVER_STATUS = 8,
	/* Version 2 only. */
	HANDOVER_SESSION = 9,
	HANDOVER_SESSION_ACK = 10,
	HANDOVER_SESSION_NACK = 11,
	HANDOVER_SESSIONS_END = 12,
	HANDOVER__NTYPES
};

/* What a HANDOVER_LISTENER's descriptor is, so the new process knows where it goes. */
enum handover_listener_kind {
	HANDOVER_L_TCP = 1,		/* a worker's own SO_REUSEPORT client socket */
	HANDOVER_L_TCP_SHARED = 2,	/* one client socket every worker shares (systemd's) */
	HANDOVER_L_STATS = 3,		/* the stats_socket (AF_UNIX) */
	HANDOVER_L_METRICS = 4,		/* the metrics_listen HTTP socket */
	HANDOVER_L__NKINDS
};

/* Why a new process said no. */
enum handover_refusal {
	HANDOVER_R_VERSION = 1,		/* it does not speak the old process's version */
	HANDOVER_R_PROTOCOL = 2,	/* a malformed or unexpected message */
	HANDOVER_R_START = 3,		/* it could not start with what it was given */
	HANDOVER_R__N
};

/* Why a new process did not take one session (the old process then drains it). */
enum handover_nack {
	HANDOVER_N_UNSUPPORTED = 1,	/* a state it cannot rebuild (an unknown mandatory tag) */
	HANDOVER_N_MALFORMED = 2,	/* the payload or its descriptors do not add up */
	HANDOVER_N_RESOURCES = 3,	/* out of memory or descriptors */
	HANDOVER_N_REFUSED = 4,		/* policy or a test knob */
	HANDOVER_N__N
};

/*
 * Feature bits in HELLO: what the old process will send. Version 1 has none
 * (a version-1 hello with any bit set is refused); version 2 defines one.
 */
#define HANDOVER_F_SESSIONS (1u << 0)	/* SESSIONs follow COMMIT, then SESSIONS_END */
#define HANDOVER_F_KNOWN HANDOVER_F_SESSIONS

/* One message, decoded. Fields of other types are zero. */
struct handover_msg {
	uint16_t version;		/* from the header */
	uint16_t type;			/* enum handover_type */
	union {
		struct {
			uint32_t pid;
			uint32_t features;	/* HANDOVER_F_* */
			uint32_t listeners;	/* LISTENER messages that will follow */
		} hello;
		struct {
			uint32_t pid;
		} accept;
		struct {
			uint32_t reason;	/* enum handover_refusal */
			uint16_t version;	/* the version the refuser speaks */
			char text[HANDOVER_TEXT_MAX + 1]; /* for the log; NUL-terminated */
		} refuse;
		struct {
			uint8_t kind;		/* enum handover_listener_kind */
			uint32_t index;		/* its place in the old process (worker, address) */
		} listener;
		struct {
			uint32_t count;
		} listeners_end;
		struct {
			uint32_t pid;
			uint32_t listeners;	/* adopted */
		} ready;
		struct {
			uint32_t draining;	/* connections the old process still holds */
			/* Version 2 only (zero in version 1): */
			uint32_t moved;		/* sessions it handed over (ACKed) */
			uint32_t kept;		/* sessions it kept to drain (NACKed, not movable) */
		} status;
		struct {
			uint64_t id;		/* the conn's id in the old process (its c#) */
			/*
			 * Encoding: the caller's, sent as is. From handover_recv():
			 * a heap copy owned by the message (handover_msg_fini()).
			 * From handover_decode(): points into the decoded buffer.
			 */
			uint8_t *payload;
			uint32_t len;		/* 1..HANDOVER_SESSION_MAX */
			uint8_t n_fds;		/* 1..HANDOVER_SESSION_FDS */
			/* From handover_recv(): the descriptors, in the sender's order. */
			int fds[HANDOVER_SESSION_FDS];
		} session;
		struct {
			uint64_t id;
		} session_ack;
		struct {
			uint64_t id;
			uint32_t reason;	/* enum handover_nack */
			char text[HANDOVER_TEXT_MAX + 1]; /* for the log; NUL-terminated */
		} session_nack;
		struct {
			uint32_t count;		/* SESSION messages sent */
		} sessions_end;
	} u;
};

/**
 * handover_encode() - serialise @m (its type's fields, under @m->version's
 * layout: HANDOVER_VERSION_MIN to HANDOVER_VERSION) into @buf.
 * @buf: out; wipe it after use if it may hold secrets (a SESSION)
 * Return: the bytes written, -ENOSPC if @len is too small, -EINVAL for an
 * unknown version, a type the version does not have, or a bad value (a
 * SESSION with no payload, too long a one, or 0 or more than
 * HANDOVER_SESSION_FDS descriptors).
 */
PGKTLS_MUSTCHECK ssize_t handover_encode(uint8_t *buf, size_t len, const struct handover_msg *m);

/**
 * handover_decode_header() - read the fixed header of one datagram.
 * @version, @type: out
 * Return: 0; -EBADMSG if the magic is wrong, the datagram is shorter than
 * the header, or the length field disagrees with @len.
 */
PGKTLS_MUSTCHECK int handover_decode_header(const uint8_t *buf, size_t len, uint16_t *version,
					    uint16_t *type);

/**
 * handover_decode() - parse one whole datagram into @out.
 * A SESSION's @out->u.session.payload points into @buf (no copy) and its
 * fds are -1: handover_recv() fills them.
 * Return: 0; -EBADMSG (bad header or a payload of the wrong size or with
 * bad values: reserved bytes not zero), -EPROTONOSUPPORT (a version outside
 * HANDOVER_VERSION_MIN..HANDOVER_VERSION: @out->version and @out->type are
 * still filled, so the caller can refuse with the right reason), -ENOMSG (a
 * type the header's version does not have).
 */
PGKTLS_MUSTCHECK int handover_decode(const uint8_t *buf, size_t len, struct handover_msg *out);

/** handover_type_name() - "hello", "ready", ... for log lines ("?" if unknown). */
const char *handover_type_name(unsigned type);

/** handover_refusal_name() - "version", "protocol", "start" ("?" if unknown). */
const char *handover_refusal_name(unsigned reason);

/** handover_nack_name() - "unsupported", "malformed", ... ("?" if unknown). */
const char *handover_nack_name(unsigned reason);

/**
 * handover_fds_expected() - how many descriptors a message of @m's type must
 * carry: 1 for a LISTENER, @m->u.session.n_fds for a SESSION, else 0.
 */
unsigned handover_fds_expected(const struct handover_msg *m);

/**
 * handover_msg_fini() - release what handover_recv() gave @m: wipe and free
 * a SESSION's payload copy, close every one of its descriptors still >= 0
 * (set an fd to -1 once taken), then wipe @m. For a message handover_recv()
 * filled (even on its error: nothing is left then) or a zeroed one, and
 * safe twice; never for handover_decode()'s view of a caller's buffer.
 */
void handover_msg_fini(struct handover_msg *m);

/**
 * handover_size_buffers() - ask for HANDOVER_SOCKBUF of send and receive
 * buffer on @fd, so a full SESSION fits one datagram (handover_spawn() does
 * it for both ends of its pair).
 * Return: 0 or -errno.
 */
PGKTLS_MUSTCHECK int handover_size_buffers(int fd);

/**
 * handover_send() - encode @m and send it as one datagram, with @pass_fd
 * (>= 0) attached by SCM_RIGHTS; a SESSION sends its @m->u.session.fds
 * (n_fds of them) instead, and @pass_fd must be -1. Blocks at most
 * @timeout_ms for room. The encoded bytes are wiped before return. The
 * descriptors stay the caller's.
 * Return: 0, -ETIMEDOUT, -EPIPE (the peer is gone), -EMSGSIZE (the
 * socket's send buffer is smaller than the datagram: handover_size_buffers())
 * or another -errno.
 */
PGKTLS_MUSTCHECK int handover_send(int fd, const struct handover_msg *m, int pass_fd,
				   int timeout_ms);

/**
 * handover_recv() - wait at most @timeout_ms (-1: forever, 0: do not wait)
 * for one datagram and decode it into @m.
 * @got_fd: out: a LISTENER's descriptor (close-on-exec, the caller's to
 *          close), else -1. A SESSION's descriptors land in
 *          @m->u.session.fds and its payload is a heap copy: release both
 *          with handover_msg_fini() (after taking what is kept). A message
 *          whose descriptor count is not handover_fds_expected(), or whose
 *          control data was cut (MSG_CTRUNC), is refused: -EBADMSG, every
 *          descriptor that came with it closed.
 * Return: 0; -ECONNRESET when the peer closed its end (EOF); -EAGAIN /
 * -ETIMEDOUT when nothing came; a handover_decode() error (@m's version and
 * type are still set for a refusal); -ENOMEM; or another -errno. The
 * datagram's bytes are wiped before return; on an error nothing is left
 * for the caller to release.
 */
PGKTLS_MUSTCHECK int handover_recv(int fd, struct handover_msg *m, int *got_fd, int timeout_ms);

/**
 * handover_spawn() - start @path with @argv as a new process that inherits
 * one end of a fresh SOCK_SEQPACKET socketpair (its number in
 * HANDOVER_ENV_FD, added to a copy of the environment; both ends sized by
 * handover_size_buffers()), with every signal
 * unblocked. Only async-signal-safe calls run between fork() and exec().
 * @path: the executable (an absolute path: no PATH search)
 * @argv: its arguments, argv[0] first, NULL-terminated
 * @pid: out: the child's pid
 * @fd: out: our end (non-blocking, close-on-exec), owned by the caller
 * Return: 0, or -errno (nothing is left open). An exec() that fails shows
 * as the child exiting 127 and the pair reaching EOF.
 */
PGKTLS_MUSTCHECK int handover_spawn(const char *path, char *const argv[], pid_t *pid, int *fd);

/**
 * handover_child_fd() - in a new process: the fd named by HANDOVER_ENV_FD,
 * checked to be an AF_UNIX SOCK_SEQPACKET socket and made close-on-exec
 * and non-blocking. The variable is unset either way (a later child must
 * not see it).
 * Return: the fd (>= 0), -ENOENT when the variable is not set (a normal
 * start), or -EINVAL/-ENOTSOCK when it is set but wrong.
 */
PGKTLS_MUSTCHECK int handover_child_fd(void);

#endif /* PGKTLS_HANDOVER_H */
