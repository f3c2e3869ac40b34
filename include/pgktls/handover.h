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
 *	STATUS {draining}               (while the old process drains; then EOF)
 *
 * Phase 2 adds SESSION messages (one established connection each, with its
 * two sockets) between LISTENERS_END and READY: see docs/ARCHITECTURE.md.
 * Their payload carries key material, so every buffer a message is encoded
 * into or decoded from is wiped after use (handover_send()/handover_recv()
 * do it for their own buffers; a caller wipes its struct handover_msg), and
 * no message's contents are ever logged.
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

/* The protocol this binary speaks. Raise it on any change of a payload. */
#define HANDOVER_VERSION 1
#define HANDOVER_MAGIC "PKHO"
#define HANDOVER_HDR_LEN 12
/* The largest datagram either side sends or accepts (phase 2 sessions included). */
#define HANDOVER_MAX_MSG 65536
#define HANDOVER_TEXT_MAX 200

/* The environment variable that tells a new process the fd of its end of the pair. */
#define HANDOVER_ENV_FD "PGKTLS_HANDOVER_FD"
/*
 * Test knobs, read by the new process only: the protocol version it
 * pretends to speak (forces a refusal), and a crash right after it took the
 * listeners (the worst moment to die). Not for production; documented in
 * docs/ARCHITECTURE.md.
 */
#define HANDOVER_ENV_TEST_VERSION "PGKTLS_TEST_HANDOVER_VERSION"
#define HANDOVER_ENV_TEST_CRASH "PGKTLS_TEST_HANDOVER_CRASH"

enum handover_type {
	HANDOVER_HELLO = 1,
	HANDOVER_ACCEPT = 2,
	HANDOVER_REFUSE = 3,
	HANDOVER_LISTENER = 4,
	HANDOVER_LISTENERS_END = 5,
	HANDOVER_READY = 6,
	HANDOVER_COMMIT = 7,
	HANDOVER_STATUS = 8,
	/* 9..15 reserved for phase 2: SESSION, SESSIONS_END, SESSION_NACK. */
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

/* Feature bits in HELLO: what the old process will send. None defined in version 1. */
#define HANDOVER_F_SESSIONS (1u << 0)	/* phase 2: established sessions follow */

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
		} status;
	} u;
};

/**
 * handover_encode() - serialise @m (its type's fields, under @m->version's
 * layout; only HANDOVER_VERSION is known) into @buf.
 * @buf: out; wipe it after use if it may hold secrets (phase 2)
 * Return: the bytes written, -ENOSPC if @len is too small, -EINVAL for an
 * unknown type or version.
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
 * Return: 0; -EBADMSG (bad header or a payload of the wrong size or with
 * bad values), -EPROTONOSUPPORT (a version other than HANDOVER_VERSION:
 * @out->version and @out->type are still filled, so the caller can refuse
 * with the right reason), -ENOMSG (an unknown type in a known version).
 */
PGKTLS_MUSTCHECK int handover_decode(const uint8_t *buf, size_t len, struct handover_msg *out);

/** handover_type_name() - "hello", "ready", ... for log lines ("?" if unknown). */
const char *handover_type_name(unsigned type);

/** handover_refusal_name() - "version", "protocol", "start" ("?" if unknown). */
const char *handover_refusal_name(unsigned reason);

/**
 * handover_send() - encode @m and send it as one datagram, with @pass_fd
 * (>= 0) attached by SCM_RIGHTS. Blocks at most @timeout_ms for room (a
 * socketpair has plenty for phase 1's small messages). The encoded bytes
 * are wiped before return. @pass_fd stays the caller's.
 * Return: 0, -ETIMEDOUT, -EPIPE (the peer is gone) or another -errno.
 */
PGKTLS_MUSTCHECK int handover_send(int fd, const struct handover_msg *m, int pass_fd,
				   int timeout_ms);

/**
 * handover_recv() - wait at most @timeout_ms (-1: forever, 0: do not wait)
 * for one datagram and decode it into @m.
 * @got_fd: out: the descriptor that came with it (close-on-exec, the
 *          caller's to close), or -1. A message with more than one
 *          descriptor is refused (-EBADMSG, all of them closed).
 * Return: 0; -ECONNRESET when the peer closed its end (EOF); -EAGAIN /
 * -ETIMEDOUT when nothing came; a handover_decode() error (@m's version and
 * type are still set for a refusal); or another -errno. The datagram's
 * bytes are wiped before return.
 */
PGKTLS_MUSTCHECK int handover_recv(int fd, struct handover_msg *m, int *got_fd, int timeout_ms);

/**
 * handover_spawn() - start @path with @argv as a new process that inherits
 * one end of a fresh SOCK_SEQPACKET socketpair (its number in
 * HANDOVER_ENV_FD, added to a copy of the environment), with every signal
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
