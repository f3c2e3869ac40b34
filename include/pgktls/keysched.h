/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * keysched.h - the key schedule of an established TLS session: the traffic
 * keys of both directions taken out of an OpenSSL SSL, and the next keys of
 * a TLS 1.3 KeyUpdate. No I/O: the kernel path (ktls.c) and pgktls's own
 * record layer (tlsrec.c) install what this derives.
 *
 *  - TLS 1.3 (RFC 8446 7.1-7.3): the keylog callback hands us the two
 *    application traffic secrets; key/iv = HKDF-Expand-Label(secret,
 *    "key"/"iv", "", length). The secrets stay (in the SSL's ex_data, then
 *    in a detached keysched_session) while the connection lives, because a
 *    KeyUpdate derives the next ones from them: secret_N+1 =
 *    HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length).
 *  - TLS 1.2 (RFC 5246 6.3, AEAD suites): key_block = PRF(master secret,
 *    "key expansion", server_random + client_random); nothing is kept.
 *
 * Sequence numbers right after the handshake are known, not read (OpenSSL
 * has no getter): TLS 1.2 starts both ways at 1 (Finished used 0), TLS 1.3
 * at 0 (pgktls sends no session tickets, and reads nothing after the
 * handshake before the keys are taken).
 *
 * Every buffer that held key material is wiped with OPENSSL_cleanse().
 */
#ifndef PGKTLS_KEYSCHED_H
#define PGKTLS_KEYSCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "pgktls/compiler.h"

struct tlv_writer;

/* Longest write key (AES-256, ChaCha20) and the AEAD nonce length of every cipher we take. */
#define KEYSCHED_MAX_KEY 32
#define KEYSCHED_IV_LEN 12
/* Longest traffic secret (SHA-384). */
#define KEYSCHED_MAX_SECRET 48

/* The AEADs pgktls takes records over for. */
enum keysched_cipher {
	KEYSCHED_CIPHER_NONE,		/* not one of ours: the session stays with OpenSSL */
	KEYSCHED_AES_128_GCM,
	KEYSCHED_AES_256_GCM,
	KEYSCHED_CHACHA20_POLY1305,
};

/* Write key and 12-byte IV of one direction. */
struct keysched_dir_keys {
	uint8_t key[KEYSCHED_MAX_KEY];
	uint8_t iv[KEYSCHED_IV_LEN];	/* TLS 1.3 write_iv; TLS 1.2: fixed_iv_len bytes used */
};

/* Both directions' keys of an established session, and what they are for. */
struct keysched_keys {
	uint8_t cipher;			/* enum keysched_cipher */
	const char *evp_cipher;		/* "AES-128-GCM", "AES-256-GCM" or "ChaCha20-Poly1305" */
	int version;			/* TLS1_2_VERSION or TLS1_3_VERSION */
	uint8_t key_len;		/* bytes of each write key */
	uint8_t iv_len;			/* implicit IV bytes: 12, or 4 for TLS 1.2 AES-GCM */
	uint16_t max_fragment;		/* largest plaintext we may send in one record */
	bool max_fragment_negotiated;	/* RFC 6066 max_fragment_length was agreed on */
	uint64_t seq;			/* first sequence number, both ways: TLS 1.2 1, TLS 1.3 0 */
	struct keysched_dir_keys rx;	/* the peer's write key and IV */
	struct keysched_dir_keys tx;	/* ours */
};

/* The TLS 1.3 traffic secrets of one session (opaque; wiped when freed). */
struct keysched_secrets;

/*
 * What a TLS session amounts to for rekeying: the cipher and version and,
 * for TLS 1.3, the current traffic secrets. Either a view of a live SSL
 * (keysched_view(): the secrets stay the SSL's) or detached and owning the
 * secrets (keysched_detach()).
 */
struct keysched_session {
	uint8_t cipher;			/* enum keysched_cipher; NONE: not one pgktls takes */
	bool is_server;			/* a server sends with the server secret */
	int version;			/* TLS1_2_VERSION or TLS1_3_VERSION */
	const char *md;			/* HKDF hash name (static in OpenSSL) */
	struct keysched_secrets *sec;	/* TLS 1.3 only; owned when detached */
};

/*
 * One direction's next generation (RFC 8446 7.2), derived but not yet
 * taken: the caller installs @keys, then keysched_advance() makes @secret
 * current, so a key the kernel refuses leaves the session as it was.
 */
struct keysched_update {
	uint8_t secret[KEYSCHED_MAX_SECRET];	/* application_traffic_secret_N+1 */
	uint8_t secret_len;
	bool tx;				/* our send direction, or the peer's */
	struct keysched_dir_keys keys;		/* key and IV from @secret */
};

/**
 * keysched_ctx_prepare() - hook an SSL_CTX so its sessions' keys can be taken
 * (installs the keylog callback that captures TLS 1.3 traffic secrets into
 * per-SSL storage). Call once per SSL_CTX, before any SSL_new().
 *
 * Return: 0, or -ENOMEM.
 */
PGKTLS_MUSTCHECK int keysched_ctx_prepare(SSL_CTX *ctx);

/**
 * keysched_export() - both directions' keys of an established session.
 * @ssl: handshake complete, nothing read or written through it since
 * @k: out; the caller wipes it with OPENSSL_cleanse() once the keys are in use
 *
 * Return: 0, or -EPROTONOSUPPORT (neither TLS 1.2 nor 1.3), -EOPNOTSUPP
 * (a cipher pgktls does not take), -EBUSY (OpenSSL holds unread bytes,
 * which a new reader would lose), -ENOKEY (TLS 1.3 secrets not captured),
 * -EPROTO (derivation failed); @k holds no key then.
 */
PGKTLS_MUSTCHECK int keysched_export(SSL *ssl, struct keysched_keys *k);

/**
 * keysched_view() - a view of a live SSL as a session, for rekeying a hop
 * that kept its SSL. @view borrows the SSL's secrets: it is valid while
 * @ssl is, and is never freed.
 */
void keysched_view(SSL *ssl, struct keysched_session *view);

/**
 * keysched_detach() - keep only what a hop still needs of its TLS session
 * for rekeying (cipher, version and, for TLS 1.3, the traffic secrets), so
 * that the SSL, some 17 KB of OpenSSL state, can be freed. The secrets
 * move out of @ssl.
 *
 * Return: a session freed (and wiped) with keysched_session_free(), or NULL on ENOMEM.
 */
struct keysched_session *keysched_detach(SSL *ssl);

/** keysched_session_free() - wipe and free @ks; NULL is fine. */
void keysched_session_free(struct keysched_session *ks);

/** keysched_forget() - wipe and free the secrets captured for @ssl (before SSL_free). */
void keysched_forget(SSL *ssl);

/**
 * keysched_next() - derive the next generation of one direction's traffic
 * secret and its key and IV (RFC 8446 7.2), without taking it yet.
 * @ks: a TLS 1.3 session (detached, or a view)
 * @tx: true for the secret we send with, false for the peer's
 * @u: out; wiped by keysched_advance(), else by the caller
 *
 * Return: 0, or -EPROTO (not TLS 1.3, or derivation failed), -ENOKEY (no secrets).
 */
PGKTLS_MUSTCHECK int keysched_next(const struct keysched_session *ks, bool tx,
				   struct keysched_update *u);

/**
 * keysched_advance() - make @u's secret current in @ks (its keys are now in
 * use), and wipe @u. @ks must be the session @u was derived from.
 */
void keysched_advance(const struct keysched_session *ks, struct keysched_update *u);

/**
 * keysched_next_keys() - keysched_next() and keysched_advance() in one, for
 * a record layer that cannot refuse a key: the next key and IV of one
 * direction into @k (the caller wipes @k).
 *
 * Return: 0, or keysched_next()'s errors; the secret is left as it was on failure.
 */
PGKTLS_MUSTCHECK int keysched_next_keys(struct keysched_session *ks, bool tx,
					struct keysched_dir_keys *k);

/**
 * keysched_hkdf_expand_label() - RFC 8446 7.1 HKDF-Expand-Label(@secret,
 * @label, "", @out_len), the label without its "tls13 " prefix.
 * @md: the hash, by OpenSSL name ("SHA256", "SHA384")
 *
 * Return: 0, or -EINVAL (label too long), -EPROTO (the KDF failed).
 */
PGKTLS_MUSTCHECK int keysched_hkdf_expand_label(const char *md, const uint8_t *secret,
						size_t secret_len, const char *label,
						uint8_t *out, size_t out_len);

/**
 * keysched_tls13_keys() - the write key and IV of a TLS 1.3 traffic secret
 * (RFC 8446 7.3) for @cipher.
 *
 * Return: 0, or -EOPNOTSUPP (@cipher unknown), -EPROTO.
 */
PGKTLS_MUSTCHECK int keysched_tls13_keys(enum keysched_cipher cipher, const char *md,
					 const uint8_t *secret, size_t secret_len,
					 struct keysched_dir_keys *k);

/**
 * keysched_session_export() - write @ks (cipher, version, role and, for TLS
 * 1.3, both current traffic secrets) as a TLV list (tlv.h), for a binary
 * upgrade: keysched_session_import() in the new process rebuilds it.
 * The secrets are in @w's buffer afterwards: its owner wipes it.
 *
 * Return: 0, -EINVAL (@ks is not one pgktls takes: no cipher, or a TLS 1.3
 * session without its secrets), or the writer's error.
 */
PGKTLS_MUSTCHECK int keysched_session_export(const struct keysched_session *ks,
					     struct tlv_writer *w);

/**
 * keysched_session_import() - rebuild a detached session from
 * keysched_session_export()'s list @buf of @len bytes.
 * @out: the session, freed (and wiped) with keysched_session_free(); NULL
 *	on failure
 *
 * Return: 0; tlv_parse()'s errors for a malformed list; -EPROTONOSUPPORT
 * (a version other than TLS 1.2 or 1.3); -EOPNOTSUPP (a cipher pgktls does
 * not take); -EBADMSG (a secret whose length is not the hash's, or secrets
 * under TLS 1.2); -ENOMEM.
 */
PGKTLS_MUSTCHECK int keysched_session_import(const void *buf, size_t len,
					     struct keysched_session **out);

#endif /* PGKTLS_KEYSCHED_H */
