/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * ktls.h - move an established OpenSSL session's record crypto into the
 * kernel (TCP_ULP "tls", SOL_TLS TLS_RX/TLS_TX), and talk to a kTLS socket.
 *
 * pgktls installs the keys itself instead of relying on SSL_OP_ENABLE_KTLS:
 * OpenSSL 3.0 offloads TLS 1.3 for TX only, and one code path for every
 * 3.x keeps behaviour the same everywhere. The keys come from keysched.h
 * (which needs keysched_ctx_prepare() on the SSL_CTX); this module only
 * talks to the kernel, and wipes every copy of a key it made.
 *
 * Policy (auto/off/required) is the caller's: this module only reports
 * what happened and why.
 */
#ifndef PGKTLS_KTLS_H
#define PGKTLS_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "pgktls/compiler.h"

struct keysched_session;

/* Who does the record crypto for one direction of one hop. */
enum ktls_engine {
	KTLS_ENGINE_NONE,	/* no TLS on this hop: plaintext */
	KTLS_ENGINE_USERSPACE,	/* OpenSSL in pgktls */
	KTLS_ENGINE_KERNEL,	/* kernel software crypto (or NIC: see nl.c for the truth) */
};

/* Why a direction stayed in userspace (counted, and reported per connection). */
enum ktls_reason {
	KTLS_R_NONE,		/* offloaded, or no TLS */
	KTLS_R_DISABLED,	/* ktls = off */
	KTLS_R_NO_KERNEL,	/* TCP_ULP "tls" unavailable (module missing: ENOENT) */
	KTLS_R_NOT_TCP,		/* unix socket */
	KTLS_R_VERSION,		/* TLS version the kernel (or pgktls) cannot offload */
	KTLS_R_CIPHER,		/* cipher the kernel (or pgktls) cannot offload */
	KTLS_R_PENDING,		/* OpenSSL still held unread data at switch time */
	KTLS_R_NO_SECRETS,	/* keylog secrets missing (should not happen) */
	KTLS_R_SETSOCKOPT,	/* kernel refused the key (errno logged) */
	KTLS_R_MAX_FRAGMENT,	/* max_fragment_length negotiated: the kernel would ignore it */
	KTLS__NREASONS
};

/* The outcome for one hop. */
struct ktls_hop_state {
	uint8_t rx;		/* enum ktls_engine */
	uint8_t tx;		/* enum ktls_engine */
	uint8_t rx_reason;	/* enum ktls_reason */
	uint8_t tx_reason;	/* enum ktls_reason */
	int err;		/* errno of a failed setsockopt, else 0 */
};

/* TLS record content types as the kernel reports them in TLS_GET_RECORD_TYPE. */
#define KTLS_RECORD_ALERT 21
#define KTLS_RECORD_HANDSHAKE 22
#define KTLS_RECORD_DATA 23

/**
 * ktls_probe() - find out once, at startup, whether this kernel offers kTLS
 * (TCP_ULP "tls" on a loopback TCP pair, and which ciphers accept a key).
 * Logs what it found. Safe to call more than once; later calls are cheap.
 *
 * Return: true if TCP_ULP "tls" can be attached.
 */
bool ktls_probe(void);

/**
 * ktls_install() - offload both directions of an established session.
 * @ssl: handshake complete, nothing read or written through it since
 * @fd: its TCP socket
 * @st: out: per-direction outcome
 *
 * Refuses (KTLS_R_PENDING) if OpenSSL holds unread bytes, and a session
 * with a negotiated max_fragment_length (KTLS_R_MAX_FRAGMENT). Everything
 * that can be checked is checked before the kernel is asked (version,
 * cipher, secrets; ktls_probe() has seen each cipher's TX key accepted), then
 * RX is installed before TX. Both directions go to the kernel or neither
 * does: a failure before RX leaves nothing in the kernel (userspace TLS can
 * go on); a TX failure after RX worked (rare: out of memory) leaves a hop
 * that nobody can serve, as RX cannot be uninstalled and OpenSSL cannot
 * write in step with the kernel's reading. That is -ENOTRECOVERABLE: the
 * caller closes the connection, whatever the ktls mode. (The environment
 * variable PGKTLS_TEST_KTLS_TX_FAIL, for tests only, forces that case.)
 * Wipes every key buffer it used. After success in a direction, the caller
 * must never use @ssl for that direction again.
 *
 * Return: 0 if both directions are in the kernel; -ENOTRECOVERABLE (RX
 * only: close the connection); else -errno (-EOPNOTSUPP, -ENOENT,
 * -EPROTO...) with @st saying what happened and nothing in the kernel.
 */
PGKTLS_MUSTCHECK int ktls_install(SSL *ssl, int fd, struct ktls_hop_state *st);

/**
 * ktls_recv_record() - read one record from a kTLS RX socket, with its type.
 * @fd: socket with TLS_RX installed
 * @buf: where the payload goes
 * @len: its size (16384 is always enough for one record)
 * @type: out: record content type (KTLS_RECORD_*)
 *
 * Return: bytes of payload (0 is a legal empty record, or EOF: the caller
 * tells them apart by @type, which is 0 at EOF), or -errno (-EAGAIN,
 * -EBADMSG for a record that failed authentication).
 */
PGKTLS_MUSTCHECK ssize_t ktls_recv_record(int fd, void *buf, size_t len, uint8_t *type);

/**
 * ktls_send_alert() - send an alert record (the kernel never sends one itself).
 * @level: 1 warning, 2 fatal
 * @desc: 0 close_notify, ...
 *
 * Return: 0, or -errno.
 */
PGKTLS_MUSTCHECK int ktls_send_alert(int fd, uint8_t level, uint8_t desc);

/**
 * ktls_key_update_rx() - follow the peer's TLS 1.3 KeyUpdate (RFC 8446 7.2)
 * on a kTLS RX socket: next receive secret, installed in the kernel.
 * @ssl: the connection's SSL (holds the captured secrets) when @ks is NULL
 * @ks: the session kept by keysched_detach(), or NULL
 * @fd: the socket
 *
 * What a control record means is tlsmsg.c's to say; this only rekeys.
 *
 * Return: 0; -EKEYREJECTED where the kernel cannot take a second key
 * (before Linux 6.14: the caller closes the connection with that reason);
 * -ENOKEY (no secrets), -EPROTO (not TLS 1.3) or another -errno. The
 * secret is left as it was on failure.
 */
PGKTLS_MUSTCHECK int ktls_key_update_rx(SSL *ssl, struct keysched_session *ks, int fd);

/**
 * ktls_key_update_tx() - answer a KeyUpdate request on a kTLS TX socket:
 * send our KeyUpdate(update_not_requested) under the current key, then
 * install the next send key (RFC 8446 4.6.3).
 * @ssl, @ks, @fd: as for ktls_key_update_rx()
 *
 * Return: 0; -EAGAIN when the socket took nothing (nothing changed: call
 * again when it is writable, before any other record on it);
 * -EKEYREJECTED, -ENOKEY, -EPROTO or another -errno.
 */
PGKTLS_MUSTCHECK int ktls_key_update_tx(SSL *ssl, struct keysched_session *ks, int fd);

/*
 * The record budget of one kTLS send key (RFC 8446 5.5: AES-GCM keys seal
 * at most about 2^24.5 records; like tlsrec, pgktls stops at 2^23, RFC 9001
 * 6.6's confidentiality limit; the test-only environment variable
 * PGKTLS_TEST_REKEY_RECORDS lowers it). The kernel seals the records and
 * does not say how many as it goes: the caller notes each write and
 * splice to the socket, ktls_tx_budget_check() says when the key is spent.
 * Embedded in the hop; all zeroes is "not set up yet".
 */
struct ktls_cipher;
struct ktls_tx_budget {
	uint64_t records;	/* upper bound on records sealed under the send key */
	uint64_t limit;		/* 0: not set up; UINT64_MAX: none (ChaCha20-Poly1305) */
	const struct ktls_cipher *kc; /* to read the kernel's own count (TLS_TX rec_seq) */
	bool tls13;		/* a KeyUpdate can change the key; TLS 1.2 cannot */
};

/* ktls_tx_budget_check(): the send key is spent and a KeyUpdate of ours must go first. */
#define KTLS_TX_REKEY 1

/**
 * ktls_tx_budget_init() - set up @b for the send key of a hop just
 * offloaded; the records noted so far are kept.
 * @ssl, @ks: as for ktls_key_update_rx()
 */
void ktls_tx_budget_init(struct ktls_tx_budget *b, SSL *ssl, struct keysched_session *ks);

/**
 * ktls_tx_budget_note() - @bytes went to the kTLS send socket in one send
 * or splice call.
 *
 * The kernel cuts records of at most 2^14 bytes, so ceil(@bytes / 2^14) is
 * only a lower bound: a call also ends its last, partial record, may
 * complete one left open by the call before, and a splice may close a
 * record early when its scatterlist is full (17 entries, from at most 16
 * pipe buffers a call). So a call counts @bytes / 2^14 + 2: an upper
 * bound, which ktls_tx_budget_check() replaces with the kernel's exact
 * count before acting on it.
 */
static inline void ktls_tx_budget_note(struct ktls_tx_budget *b, size_t bytes)
{
	b->records += bytes / 16384 + 2;
}

/**
 * ktls_tx_budget_rekeyed() - the send key changed (our KeyUpdate is out:
 * an answer to the peer's request or our own): a new budget.
 */
static inline void ktls_tx_budget_rekeyed(struct ktls_tx_budget *b)
{
	b->records = 0;
}

/**
 * ktls_tx_budget_check() - before more records go to kTLS send socket @fd:
 * is its key spent? Cheap while the noted count is below the limit; at the
 * limit it reads the kernel's exact count (the live rec_seq that
 * getsockopt(TLS_TX) returns, which counts records under the current key)
 * and carries on if that is still below.
 *
 * Return: 0 (send on); KTLS_TX_REKEY (TLS 1.3 on a kernel that can rekey,
 * ktls_can_rekey(): send ktls_key_update_tx() first, then
 * ktls_tx_budget_rekeyed()); -EKEYEXPIRED (TLS 1.2, which cannot change
 * keys, or a kernel that cannot rekey: end the connection cleanly, the
 * key's close_notify still readable by the peer).
 */
PGKTLS_MUSTCHECK int ktls_tx_budget_check(struct ktls_tx_budget *b, int fd);

/**
 * ktls_can_rekey() - whether this kernel takes a second TLS_TX/TLS_RX key
 * on a socket (Linux 6.14 and later), tried once on a loopback pair.
 */
bool ktls_can_rekey(void);

const char *ktls_reason_name(enum ktls_reason r);
const char *ktls_engine_name(enum ktls_engine e);

#endif /* PGKTLS_KTLS_H */
