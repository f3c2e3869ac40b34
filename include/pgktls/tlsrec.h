/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * tlsrec.h - pgktls's own TLS record layer, in userspace, for an established
 * hop whose records the kernel does not take.
 *
 * Once a handshake is done, a relay only needs record protection: AEAD with
 * the traffic keys, a sequence number per direction, and a few
 * post-handshake messages (KeyUpdate, NewSessionTicket, alerts). OpenSSL's
 * SSL object keeps far more for that (about 13 KB per TLS 1.3 session in
 * OpenSSL 3.0, more with a peer certificate). This module takes the keys out
 * of the SSL, the way kTLS does (keysched.c derives them), so the SSL can be
 * freed: an idle hop then holds its two keyed cipher contexts and a few
 * hundred bytes. Buffers exist only while bytes are in flight.
 *
 * Scope: TLS 1.2 and 1.3 with AES-GCM or ChaCha20-Poly1305, the ciphers
 * pgktls negotiates. Crypto is libcrypto's EVP AEAD; this module does the
 * framing, nonces, padding and post-handshake messages (RFC 8446 5 and 7.2,
 * RFC 5246 6.2, RFC 5288, RFC 7905).
 */
#ifndef PGKTLS_TLSREC_H
#define PGKTLS_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "pgktls/compiler.h"

struct stats;
struct tlsrec;
struct tlv_writer;

/**
 * tlsrec_new() - take over record protection from an established @ssl.
 * @ssl: handshake complete, nothing read or written through it since
 *	(keysched_export()'s preconditions); the TLS 1.3 secrets move out of
 *	it on success, after which the caller must not use it for records
 *	again and should free it
 * @out: the new record layer, freed (and wiped) by tlsrec_free();
 *	NULL on failure
 *
 * Return: 0, -ENOMEM, or keysched_export()'s errors (version, cipher,
 * unread bytes in OpenSSL): @ssl is then untouched and can go on.
 */
PGKTLS_MUSTCHECK int tlsrec_new(SSL *ssl, struct tlsrec **out);

/** tlsrec_free() - wipe and free @t (keys, secrets, buffers); NULL is fine. */
void tlsrec_free(struct tlsrec *t);

/**
 * tlsrec_read() - read decrypted application data from @fd.
 * @st: the worker's counters (control records, alerts, tickets, KeyUpdates)
 * @err: where a failure is described, @errlen bytes
 *
 * Reads ahead as much as one buffer holds. Control records are handled
 * here, with the rules of tlsmsg.h: NewSessionTicket is ignored, a TLS 1.3
 * KeyUpdate rekeys (and is answered if the peer asks: one answer for all the
 * requests that came while the last one waits in the queue, none once our
 * close_notify is queued), a TLS 1.2 renegotiation request gets a
 * no_renegotiation warning, ignored warning alerts are counted. Records this
 * queues for the peer go out as the socket allows: see tlsrec_wants_write().
 * After 32 records without data it yields: see tlsrec_yielded().
 *
 * A failure that RFC 8446 6.2 / RFC 5246 7.2.2 answers with a fatal alert
 * (bad_record_mac, record_overflow, unexpected_message, decode_error,
 * illegal_parameter, protocol_version) queues that alert and sends what the
 * socket takes of it; nothing is written after it.
 *
 * Return: bytes read (> 0); 0 at EOF (tlsrec_clean_eof() says whether it
 * came with close_notify); -EAGAIN; -EBADMSG (a record failed
 * authentication), -ECONNRESET (a fatal alert), -EMSGSIZE (a record too
 * large), -EPROTO or another -errno.
 * EOF and failures are final: later calls return the same and read nothing
 * (records after close_notify or a fatal alert are never delivered).
 */
PGKTLS_MUSTCHECK ssize_t tlsrec_read(struct tlsrec *t, int fd, void *buf, size_t len,
				     struct stats *st, char *err, size_t errlen);

/**
 * tlsrec_write() - encrypt and send at most one record of @buf.
 *
 * SSL_write()'s contract with SSL_MODE_ENABLE_PARTIAL_WRITE and
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: after -EAGAIN, call again with the
 * same bytes first (more may follow, anywhere in memory); the return value
 * then counts the bytes of the record that went out.
 *
 * An AES-GCM send key seals at most 2^23 records (RFC 8446 5.5, RFC 9001
 * 6.6; the test-only environment variable PGKTLS_TEST_REKEY_RECORDS lowers
 * it): then, under TLS 1.3, a KeyUpdate(update_not_requested) of our own
 * goes first and the next key takes over; under TLS 1.2, which cannot
 * change keys, a close_notify is queued and the write fails with
 * -EKEYEXPIRED. @st (NULL: not counted; a hop writes before its relay
 * has counters) counts each in tls_key_updates_sent or
 * tls_key_limit_closes; the KeyUpdates that answer a peer's request are
 * tlsrec_read()'s and are not counted as sent.
 *
 * Return: bytes taken (> 0), -EAGAIN, or -errno with @err set (-EPIPE once
 * our close_notify or a fatal alert is queued, -EKEYEXPIRED).
 */
PGKTLS_MUSTCHECK ssize_t tlsrec_write(struct tlsrec *t, int fd, const void *buf, size_t len,
				      struct stats *st, char *err, size_t errlen);

/**
 * tlsrec_flush() - send the records that wait in the queue (KeyUpdate
 * answers, alerts, the rest of a data record), as far as @fd takes them.
 * Return: 0 once the queue is empty, -EAGAIN, or -errno.
 */
PGKTLS_MUSTCHECK int tlsrec_flush(struct tlsrec *t, int fd);

/**
 * tlsrec_shutdown() - send what is queued, then a close_notify alert (queued once).
 * Return: 0, -EAGAIN (call again when @fd is writable), or -errno.
 */
PGKTLS_MUSTCHECK int tlsrec_shutdown(struct tlsrec *t, int fd);

/** tlsrec_has_pending() - whether a read can return bytes without the socket. */
bool tlsrec_has_pending(const struct tlsrec *t);

/** tlsrec_wants_write() - whether records wait for @fd to become writable. */
bool tlsrec_wants_write(const struct tlsrec *t);

/**
 * tlsrec_tx_partial() - whether a data record made of a tlsrec_write()'s
 * bytes is queued but not yet counted as taken (that write returned
 * -EAGAIN): the next tlsrec_write() must start with the same bytes.
 */
bool tlsrec_tx_partial(const struct tlsrec *t);

/** tlsrec_clean_eof() - whether the EOF tlsrec_read() returned came with close_notify. */
bool tlsrec_clean_eof(const struct tlsrec *t);

/**
 * tlsrec_yielded() - whether the last tlsrec_read() returned -EAGAIN because
 * it handled 32 records that brought no data (control records, empty data
 * records), as OpenSSL caps empty records, and not because the socket was
 * drained: the caller must come back to it without waiting for the socket
 * to become readable.
 */
bool tlsrec_yielded(const struct tlsrec *t);

/**
 * tlsrec_export() - write everything @t will act on as a TLV list (tlv.h),
 * for a binary upgrade: version, cipher, role, each direction's key, IV
 * and next sequence number, the TLS 1.3 traffic secrets, the
 * post-handshake state, every flag, and the bytes in flight (plaintext
 * opened but not delivered, ciphertext read ahead but not opened, records
 * sealed but not sent, whose sequence numbers are spent). @t is unchanged.
 * Call it between two calls on @t (no syscall half done); whoever owns
 * @w's buffer wipes it (keys) once it is sent.
 *
 * A tlsrec_tx_partial() record moves too: the new owner's next
 * tlsrec_write() must start with the same bytes, as here.
 *
 * Return: 0, or the writer's error (-ENOSPC: the buffer is too small;
 * 128 KB always holds it).
 */
PGKTLS_MUSTCHECK int tlsrec_export(const struct tlsrec *t, struct tlv_writer *w);

/**
 * tlsrec_import() - rebuild a record layer from tlsrec_export()'s list.
 * @buf: the list, @len bytes; not kept (the caller wipes it)
 * @out: the record layer, freed (and wiped) by tlsrec_free(); NULL on failure
 *
 * Return: 0; -EBADMSG (cut short, a length or value this layer cannot
 * have written, a field twice), -EPROTONOSUPPORT (a version other than
 * TLS 1.2 or 1.3, or an unknown mandatory tag), -EOPNOTSUPP (a cipher
 * pgktls does not take), -ENODATA (a field missing), -ENOMEM, -EPROTO.
 * Nothing is logged: the caller says why.
 */
PGKTLS_MUSTCHECK int tlsrec_import(const void *buf, size_t len, struct tlsrec **out);

#endif /* PGKTLS_TLSREC_H */
