/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * tls.h - OpenSSL 3 contexts for both hops, built from the config, and the
 * small helpers the connection code needs around SSL objects.
 *
 * Contexts are immutable once built and shared by every worker (SSL_new on
 * a shared SSL_CTX is thread-safe). A reload builds a new set and swaps it.
 */
#ifndef PGKTLS_TLS_H
#define PGKTLS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "pgktls/compiler.h"

struct identmap;
struct identmap_entry;
struct pgktls_config;

/*
 * One line of tls_server_identity_map, loaded: the certificate pgktls
 * presents to PostgreSQL for a client whose verified certificate matched.
 */
struct tls_identity {
	const struct identmap_entry *entry; /* its map line (file order, line number) */
	X509 *cert;			/* the leaf; a reference we own */
	STACK_OF(X509) *chain;		/* the rest of the certificate file; owned, or NULL */
	EVP_PKEY *key;			/* a reference we own */
	char subject[256];		/* cert's subject, one-line form, for logs and stats */
};

struct tls_contexts {
	SSL_CTX *client_side;	/* pgktls as TLS server to clients; NULL = answer 'N' */
	SSL_CTX *server_side;	/* pgktls as TLS client to PostgreSQL; NULL = tls_verify disable */
	bool verify_full;	/* upstream: also check the host name / IP SAN */
	bool verify_peer;	/* upstream: check the chain (verify_ca, verify_full) */
	char *server_name;	/* upstream name for SNI and verify_full; owned */
	bool server_name_is_ip;	/* an IP literal: no SNI (RFC 6066), IP SAN check */
	struct identmap *identity_map;	/* tls_server_identity_map, parsed; owned, or NULL */
	struct tls_identity *identities; /* one per map line, same order; owned */
	size_t n_identities;
};

/**
 * tls_contexts_build() - build both SSL_CTXs from @cfg.
 * @out: zeroed by the caller; filled on success, left empty on failure
 * @err: "pgktls.toml:4: tls_private_key: does not match the certificate ...
 *	 (OpenSSL: ...)", naming the key at fault through config_where()
 *
 * Checks everything that can be checked without a peer: files parse, the key
 * matches its certificate, cipher lists and groups are accepted.
 *
 * Return: 0, or -EINVAL. The caller frees with tls_contexts_fini().
 */
PGKTLS_MUSTCHECK int tls_contexts_build(const struct pgktls_config *cfg, struct tls_contexts *out,
					char *err, size_t errlen);

void tls_contexts_fini(struct tls_contexts *t);

/**
 * tls_new_upstream() - an SSL for a new upstream connection on @fd, with
 * SNI, ALPN "postgresql" and, for verify_full, the expected host or IP set.
 * @id: the identity to present (from tls_identity_pick()), or NULL for
 *	tls_server_certificate (or no certificate)
 * Return: the SSL (freed by the connection with SSL_free), or NULL.
 */
SSL *tls_new_upstream(const struct tls_contexts *t, int fd, const struct tls_identity *id);

/**
 * tls_identity_pick() - the upstream identity for a client, by its
 * certificate: the first tls_server_identity_map line matching the leaf's
 * SHA-256 fingerprint or subject.
 * @client: the client hop's SSL, handshake done (before it is freed)
 *
 * Only a certificate that was asked for and verified (tls_peer_verified():
 * tls_client_ca_certificate and the CRL) can match.
 * Return: an identity owned by @t (valid as long as the runtime holding @t),
 * or NULL: no map, no verified certificate, or no line for it.
 */
const struct tls_identity *tls_identity_pick(const struct tls_contexts *t, SSL *client);

/** tls_new_client() - an SSL for an accepted client connection on @fd; or NULL. */
SSL *tls_new_client(const struct tls_contexts *t, int fd);

/**
 * tls_error_string() - drain OpenSSL's error queue into @buf as one line
 * ("certificate verify failed (self-signed certificate in certificate chain)"),
 * adding the verify result of @ssl when it failed, and for a revoked
 * certificate which one (tls_revoked_cert()). Always leaves the queue empty.
 * Return: @buf.
 */
const char *tls_error_string(SSL *ssl, char *buf, size_t len);

/**
 * tls_wipe_freed_memory() - make OpenSSL wipe what it frees.
 *
 * OpenSSL 3.0 frees an SSL (which holds the TLS 1.3 traffic secrets) and
 * its session (the master secret) without cleansing all of it, so a
 * finished session's keys would linger in freed heap. This installs
 * allocation functions that clear each block of up to 16 KB before
 * freeing it; larger blocks are record buffers holding relayed data, not
 * keys, and wiping them would only cost throughput. Must be called before
 * any other OpenSSL function (first thing in main()).
 *
 * Return: 0, or -EBUSY if OpenSSL has already allocated.
 */
PGKTLS_MUSTCHECK int tls_wipe_freed_memory(void);

/* Room for tls_revoked_cert()'s text: a subject of up to 256 bytes and a serial. */
#define TLS_REVOKED_STRLEN 384

/**
 * tls_revoked_cert() - whether @ssl's handshake failed on a revoked
 * certificate (tls_client_crl, tls_server_crl) and, if so, which one:
 * "subject /CN=alice, serial 0x1A2B" in @buf. With CRL_CHECK_ALL it may be
 * an intermediate CA's certificate, not the peer's own.
 * Return: true if the verify result is X509_V_ERR_CERT_REVOKED.
 */
bool tls_revoked_cert(SSL *ssl, char *buf, size_t len);

/**
 * tls_peer_verified() - whether @ssl asked for the peer's certificate, got
 * one and it verified (a client certificate under tls_client_ca_certificate,
 * PostgreSQL's under verify_ca / verify_full). Call once the handshake is done.
 */
bool tls_peer_verified(const SSL *ssl);

/** tls_drain_errors() - empty OpenSSL's per-thread error queue. */
void tls_drain_errors(void);

/** tls_alpn_is_postgresql() - whether the handshake negotiated ALPN "postgresql". */
bool tls_alpn_is_postgresql(const SSL *ssl);

#endif /* PGKTLS_TLS_H */
