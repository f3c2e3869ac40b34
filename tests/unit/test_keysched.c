// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_keysched.c - the key schedule against published vectors.
 *
 * RFC 8448 section 3 (Simple 1-RTT Handshake, TLS_AES_128_GCM_SHA256) gives
 * the application traffic secrets of both sides and the write key and IV
 * derived from each. A real OpenSSL handshake (testlib's TCP pair) is made,
 * then its captured secrets are replaced with the RFC's through the keylog
 * callback, so keysched_export() must turn them into the RFC's keys, each
 * on the right side. RFC 8448 has no KeyUpdate: the next secrets were
 * computed independently (HKDF-Expand-Label written out with Python's hmac,
 * and `openssl kdf ... HKDF` for the client's), and the SHA-384 case is the
 * KeyUpdate vector s2n-tls took from OpenSSL's s_client
 * (tests/unit/s2n_key_update_test.c there). Each vector was cross-checked
 * against that independent HKDF before it was written here.
 */
#include "config.h"

#include "pgktls/keysched.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "testlib.h"

/* Decode @hex (no spaces) into @out, which must be exactly its size. */
static void unhex(const char *hex, uint8_t *out, size_t len)
{
	ck_assert_uint_eq(strlen(hex), 2 * len);
	for (size_t i = 0; i < len; i++) {
		unsigned int v;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void assert_hex(const uint8_t *got, const char *want)
{
	uint8_t buf[KEYSCHED_MAX_SECRET];
	size_t len = strlen(want) / 2;

	ck_assert_uint_le(len, sizeof(buf));
	unhex(want, buf, len);
	ck_assert_mem_eq(got, buf, len);
}

/* RFC 8448 section 3: {server} derive secret "tls13 c ap traffic" / "tls13 s ap traffic". */
#define RFC8448_C_AP "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
#define RFC8448_S_AP "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"
/* ... derive write traffic keys for application data (client, then server). */
#define RFC8448_C_KEY "17422dda596ed5d9acd890e3c63f5051"
#define RFC8448_C_IV "5b78923dee08579033e523d9"
#define RFC8448_S_KEY "9f02283b6c9c07efc26bb9f2ac92e356"
#define RFC8448_S_IV "cf782b88dd83549aadf1e984"
/* ... and for handshake data: the same derivation from the handshake secrets. */
#define RFC8448_S_HS "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"
#define RFC8448_S_HS_KEY "3fce516009c21727d0f2e4e86ee403bc"
#define RFC8448_S_HS_IV "5d313eb2671276ee13000b30"
#define RFC8448_C_HS "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"
#define RFC8448_C_HS_KEY "dbfaa693d1762c5b666af5d950258d01"
#define RFC8448_C_HS_IV "5bd3c71b836e0b76bb73265f"

/* application_traffic_secret_1 and _2 from RFC 8448's _0 (computed, see the top). */
#define C_AP1 "fcdfcc72725aaee48bf64e4fd8b749cdbdbab39d90da0b26e2245ca6ea167207"
#define C_AP1_KEY "3879d82f5f14056e623f2ce5bfc66fce"
#define C_AP1_IV "5dfb2c5938c3379b6cc5d1f2"
#define C_AP2 "68474fe58c172143d0a009a76edd231b0d934f3058588ea0852662279e54a573"
#define S_AP1 "51921b8aa3001976eb401d0a4319a8516416a6c56001a357e5d162031e84f916"
#define S_AP1_KEY "2e63be99d67b39097feb9786cf7a15a0"
#define S_AP1_IV "628a0a8298ac953baef4255a"
#define S_AP2 "6418ddd5d277cde37bfaae96363a805a95abfaa55ccd80713848de187fb082f6"

/* s2n-tls's KeyUpdate vector (TLS_AES_256_GCM_SHA384), produced by OpenSSL. */
#define S2N_AP "4bc28934ddd802b00f479e14a72d7725dab45d32b3b145f29e4c5b56677560eb" \
	       "5236b168c71c5c75aa52f3e20ee89bfb"
#define S2N_AP1 "ee85dd54781bd4d8a100589a9fe6ac9a3797b811e977f549cd531be2441d7c63" \
		"e2b9729d145c11d84af35957727565a4"

/* Make @ssl's captured secrets the given ones, as if its handshake had produced them. */
static void inject(SSL *ssl, const char *client_hex, const char *server_hex)
{
	SSL_CTX_keylog_cb_func cb = SSL_CTX_get_keylog_callback(SSL_get_SSL_CTX(ssl));
	char line[256];
	/* The client_random field is not looked at. */
	static const char random_hex[] = "00";

	ck_assert_ptr_nonnull(cb);
	snprintf(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0 %s %s", random_hex, client_hex);
	cb(ssl, line);
	snprintf(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0 %s %s", random_hex, server_hex);
	cb(ssl, line);
	OPENSSL_cleanse(line, sizeof(line));
}

/* HKDF-Expand-Label on its own: RFC 8448's key and IV of four traffic secrets. */
START_TEST(test_rfc8448_expand_label)
{
	static const struct {
		const char *secret, *key, *iv;
	} v[] = {
		{ RFC8448_C_AP, RFC8448_C_KEY, RFC8448_C_IV },
		{ RFC8448_S_AP, RFC8448_S_KEY, RFC8448_S_IV },
		{ RFC8448_C_HS, RFC8448_C_HS_KEY, RFC8448_C_HS_IV },
		{ RFC8448_S_HS, RFC8448_S_HS_KEY, RFC8448_S_HS_IV },
	};

	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(v); i++) {
		uint8_t secret[32];
		struct keysched_dir_keys k;

		unhex(v[i].secret, secret, sizeof(secret));
		memset(&k, 0, sizeof(k));
		ck_assert_int_eq(keysched_tls13_keys(KEYSCHED_AES_128_GCM, "SHA256", secret,
						     sizeof(secret), &k), 0);
		assert_hex(k.key, v[i].key);
		assert_hex(k.iv, v[i].iv);
		/* 16 bytes of key for AES-128: nothing written past it. */
		for (size_t j = 16; j < KEYSCHED_MAX_KEY; j++)
			ck_assert_uint_eq(k.key[j], 0);
	}
}
END_TEST

START_TEST(test_expand_label_limits)
{
	uint8_t secret[32] = { 1 }, out[32];
	struct keysched_dir_keys k;
	char label[260];

	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	/* "tls13 " + 249 bytes is the longest label RFC 8446's HkdfLabel holds. */
	label[249] = '\0';
	ck_assert_int_eq(keysched_hkdf_expand_label("SHA256", secret, sizeof(secret), label, out,
						    sizeof(out)), 0);
	label[249] = 'a';
	label[250] = '\0';
	ck_assert_int_eq(keysched_hkdf_expand_label("SHA256", secret, sizeof(secret), label, out,
						    sizeof(out)), -EINVAL);
	ck_assert_int_eq(keysched_tls13_keys(KEYSCHED_CIPHER_NONE, "SHA256", secret,
					     sizeof(secret), &k),
			 -EOPNOTSUPP);
}
END_TEST

/*
 * keysched_export() from a live session whose secrets are RFC 8448's: the
 * server reads with the client's keys and sends with its own, the client
 * the other way round; sequence numbers start at 0.
 */
START_TEST(test_rfc8448_export)
{
	struct keysched_keys k;
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	inject(p.s.ssl, RFC8448_C_AP, RFC8448_S_AP);
	inject(p.c.ssl, RFC8448_C_AP, RFC8448_S_AP);

	ck_assert_int_eq(keysched_export(p.s.ssl, &k), 0);
	ck_assert_int_eq(k.cipher, KEYSCHED_AES_128_GCM);
	ck_assert_str_eq(k.evp_cipher, "AES-128-GCM");
	ck_assert_int_eq(k.version, TLS1_3_VERSION);
	ck_assert_uint_eq(k.key_len, 16);
	ck_assert_uint_eq(k.iv_len, KEYSCHED_IV_LEN);
	ck_assert_uint_eq(k.seq, 0);
	ck_assert_uint_eq(k.max_fragment, 16384);
	ck_assert(!k.max_fragment_negotiated);
	assert_hex(k.rx.key, RFC8448_C_KEY);
	assert_hex(k.rx.iv, RFC8448_C_IV);
	assert_hex(k.tx.key, RFC8448_S_KEY);
	assert_hex(k.tx.iv, RFC8448_S_IV);
	OPENSSL_cleanse(&k, sizeof(k));

	ck_assert_int_eq(keysched_export(p.c.ssl, &k), 0);
	assert_hex(k.rx.key, RFC8448_S_KEY);
	assert_hex(k.rx.iv, RFC8448_S_IV);
	assert_hex(k.tx.key, RFC8448_C_KEY);
	assert_hex(k.tx.iv, RFC8448_C_IV);
	OPENSSL_cleanse(&k, sizeof(k));
	pair_close(&p);
}
END_TEST

/*
 * KeyUpdate (RFC 8446 7.2) on a detached session: keysched_next() derives
 * without taking, keysched_advance() takes, each direction on its own.
 */
START_TEST(test_rfc8448_key_update)
{
	struct keysched_session *ks;
	struct keysched_update u, again;
	struct keysched_dir_keys k;
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	inject(p.s.ssl, RFC8448_C_AP, RFC8448_S_AP);
	ks = keysched_detach(p.s.ssl);
	ck_assert_ptr_nonnull(ks);
	ck_assert(ks->is_server);
	ck_assert_int_eq(ks->cipher, KEYSCHED_AES_128_GCM);
	/* The secrets moved: the SSL has none left to export. */
	ck_assert_int_eq(keysched_export(p.s.ssl, &(struct keysched_keys){ 0 }), -ENOKEY);

	/* The peer's (client's) next secret, twice without advancing: the same. */
	ck_assert_int_eq(keysched_next(ks, false, &u), 0);
	ck_assert_uint_eq(u.secret_len, 32);
	ck_assert(!u.tx);
	assert_hex(u.secret, C_AP1);
	assert_hex(u.keys.key, C_AP1_KEY);
	assert_hex(u.keys.iv, C_AP1_IV);
	ck_assert_int_eq(keysched_next(ks, false, &again), 0);
	ck_assert_mem_eq(again.secret, u.secret, 32);
	OPENSSL_cleanse(&again, sizeof(again));
	keysched_advance(ks, &u);
	/* advance() wiped the update. */
	for (size_t i = 0; i < sizeof(u.secret); i++)
		ck_assert_uint_eq(u.secret[i], 0);

	/* Generation 2 follows from 1; our own (server) direction is still at 0. */
	ck_assert_int_eq(keysched_next(ks, false, &u), 0);
	assert_hex(u.secret, C_AP2);
	OPENSSL_cleanse(&u, sizeof(u));
	ck_assert_int_eq(keysched_next_keys(ks, true, &k), 0);
	assert_hex(k.key, S_AP1_KEY);
	assert_hex(k.iv, S_AP1_IV);
	OPENSSL_cleanse(&k, sizeof(k));
	/* next_keys() advanced: what follows now is generation 2. */
	ck_assert_int_eq(keysched_next(ks, true, &u), 0);
	assert_hex(u.secret, S_AP2);
	OPENSSL_cleanse(&u, sizeof(u));

	keysched_session_free(ks);
	pair_close(&p);
}
END_TEST

/*
 * A view of a live SSL advances the SSL's own secrets (the kTLS path with
 * the SSL kept): the next export gives the next generation's keys.
 */
START_TEST(test_view_advances_ssl)
{
	struct keysched_session view;
	struct keysched_update u;
	struct keysched_keys k;
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	inject(p.c.ssl, RFC8448_C_AP, RFC8448_S_AP);
	keysched_view(p.c.ssl, &view);
	ck_assert(!view.is_server);
	/* The client sends with the client secret. */
	ck_assert_int_eq(keysched_next(&view, true, &u), 0);
	assert_hex(u.secret, C_AP1);
	keysched_advance(&view, &u);
	ck_assert_int_eq(keysched_export(p.c.ssl, &k), 0);
	assert_hex(k.tx.key, C_AP1_KEY);
	assert_hex(k.tx.iv, C_AP1_IV);
	assert_hex(k.rx.key, RFC8448_S_KEY);
	OPENSSL_cleanse(&k, sizeof(k));
	pair_close(&p);
}
END_TEST

/* SHA-384 (TLS_AES_256_GCM_SHA384): a 48-byte secret, s2n-tls's vector. */
START_TEST(test_sha384_key_update)
{
	struct keysched_session *ks;
	struct keysched_update u;
	struct keysched_keys k;
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", 0);
	inject(p.c.ssl, S2N_AP, S2N_AP);
	ck_assert_int_eq(keysched_export(p.c.ssl, &k), 0);
	ck_assert_int_eq(k.cipher, KEYSCHED_AES_256_GCM);
	ck_assert_uint_eq(k.key_len, 32);
	OPENSSL_cleanse(&k, sizeof(k));
	ks = keysched_detach(p.c.ssl);
	ck_assert_ptr_nonnull(ks);
	ck_assert_int_eq(keysched_next(ks, true, &u), 0);
	ck_assert_uint_eq(u.secret_len, 48);
	assert_hex(u.secret, S2N_AP1);
	OPENSSL_cleanse(&u, sizeof(u));
	keysched_session_free(ks);
	pair_close(&p);
}
END_TEST

/*
 * TLS 1.2: both ends derive the same key block (each one's tx is the
 * other's rx), the implicit IV is 4 bytes for AES-GCM and 12 for ChaCha20,
 * sequence numbers start at 1, and there is no KeyUpdate.
 */
START_TEST(test_tls12_key_block)
{
	static const struct {
		const char *suite;
		uint8_t cipher, key_len, iv_len;
	} v[] = {
		{ "ECDHE-ECDSA-AES128-GCM-SHA256", KEYSCHED_AES_128_GCM, 16, 4 },
		{ "ECDHE-ECDSA-AES256-GCM-SHA384", KEYSCHED_AES_256_GCM, 32, 4 },
		{ "ECDHE-ECDSA-CHACHA20-POLY1305", KEYSCHED_CHACHA20_POLY1305, 32, 12 },
	};
	struct keysched_keys ks, kc;
	struct keysched_session view;
	struct keysched_update u;
	struct conn_pair p;

	pair_open(&p, TLS1_2_VERSION, v[_i].suite, 0);
	ck_assert_int_eq(keysched_export(p.s.ssl, &ks), 0);
	ck_assert_int_eq(keysched_export(p.c.ssl, &kc), 0);
	ck_assert_int_eq(ks.cipher, v[_i].cipher);
	ck_assert_int_eq(ks.version, TLS1_2_VERSION);
	ck_assert_uint_eq(ks.key_len, v[_i].key_len);
	ck_assert_uint_eq(ks.iv_len, v[_i].iv_len);
	ck_assert_uint_eq(ks.seq, 1);
	ck_assert_mem_eq(ks.tx.key, kc.rx.key, ks.key_len);
	ck_assert_mem_eq(ks.rx.key, kc.tx.key, ks.key_len);
	ck_assert_mem_eq(ks.tx.iv, kc.rx.iv, ks.iv_len);
	ck_assert_mem_eq(ks.rx.iv, kc.tx.iv, ks.iv_len);
	ck_assert_int_ne(memcmp(ks.tx.key, ks.rx.key, ks.key_len), 0);
	OPENSSL_cleanse(&ks, sizeof(ks));
	OPENSSL_cleanse(&kc, sizeof(kc));
	keysched_view(p.s.ssl, &view);
	ck_assert_int_eq(keysched_next(&view, true, &u), -EPROTO);
	pair_close(&p);
}
END_TEST

/* Refusals: a session whose secrets were forgotten, and unread bytes in OpenSSL. */
START_TEST(test_refusals)
{
	struct keysched_keys k;
	struct keysched_session view;
	struct keysched_update u;
	struct conn_pair p;
	char buf[8];

	pair_open(&p, TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", 0);
	ck_assert_int_eq(keysched_export(p.s.ssl, &k), 0);
	ck_assert_int_eq(k.cipher, KEYSCHED_CHACHA20_POLY1305);
	OPENSSL_cleanse(&k, sizeof(k));

	/* One record, a partial read: OpenSSL keeps the rest, which a new reader would lose. */
	ck_assert_uint_eq(ep_write(&p.c, "0123456789", 10), 10);
	wait_readable(p.s.fd);
	ck_assert_int_eq(SSL_read(p.s.ssl, buf, 4), 4);
	ck_assert_int_eq(keysched_export(p.s.ssl, &k), -EBUSY);

	keysched_forget(p.c.ssl);
	keysched_forget(p.c.ssl);	/* twice is harmless */
	ck_assert_int_eq(keysched_export(p.c.ssl, &k), -ENOKEY);
	keysched_view(p.c.ssl, &view);
	ck_assert_int_eq(keysched_next(&view, true, &u), -ENOKEY);
	pair_close(&p);
}
END_TEST

static Suite *keysched_suite(void)
{
	Suite *s = suite_create("keysched");
	TCase *tc = tcase_create("vectors");

	tcase_add_test(tc, test_rfc8448_expand_label);
	tcase_add_test(tc, test_expand_label_limits);
	tcase_add_test(tc, test_rfc8448_export);
	tcase_add_test(tc, test_rfc8448_key_update);
	tcase_add_test(tc, test_view_advances_ssl);
	tcase_add_test(tc, test_sha384_key_update);
	tcase_add_loop_test(tc, test_tls12_key_block, 0, 3);
	tcase_add_test(tc, test_refusals);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (testlib_tls_init()) {
		fprintf(stderr, "cannot make test certificates in %s\n", testlib_tmpdir());
		return 1;
	}
	return run_suite(keysched_suite());
}
