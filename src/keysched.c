// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * keysched.c - the key schedule of an established session (see keysched.h):
 * TLS 1.3 secrets from the keylog callback, HKDF-Expand-Label, the TLS 1.2
 * key block, and the next secret of a KeyUpdate.
 */
#include "config.h"

#include "pgktls/keysched.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "pgktls/hex.h"
#include "pgktls/tlv.h"

/* How one AEAD's key material is laid out. */
struct cipher_info {
	int nid;		/* OpenSSL's NID of the AEAD (SSL_CIPHER_get_cipher_nid) */
	uint8_t key_len;	/* bytes of write key */
	uint8_t fixed_iv_len;	/* TLS 1.2 implicit IV from the key block: 4 GCM, 12 ChaCha */
	const char *evp;	/* the EVP cipher, for pgktls's own record layer (tlsrec.c) */
};

/* Indexed by enum keysched_cipher. */
static const struct cipher_info ciphers[] = {
	[KEYSCHED_CIPHER_NONE] = { NID_undef, 0, 0, NULL },
	[KEYSCHED_AES_128_GCM] = { NID_aes_128_gcm, 16, 4, "AES-128-GCM" },
	[KEYSCHED_AES_256_GCM] = { NID_aes_256_gcm, 32, 4, "AES-256-GCM" },
	[KEYSCHED_CHACHA20_POLY1305] = { NID_chacha20_poly1305, 32, 12, "ChaCha20-Poly1305" },
};

/*
 * TLS 1.3 traffic secrets of one SSL, held in its ex_data from the keylog
 * callback until keysched_forget() (or SSL_free, through secrets_free()),
 * or by a detached session.
 */
struct keysched_secrets {
	uint8_t client[KEYSCHED_MAX_SECRET];	/* current client application traffic secret */
	uint8_t server[KEYSCHED_MAX_SECRET];	/* current server application traffic secret */
	uint8_t client_len;			/* 0 until the keylog line arrived */
	uint8_t server_len;
};

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;

static void secrets_wipe_free(struct keysched_secrets *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* ex_data free callback: the safety net when keysched_forget() was not called. */
static void secrets_free(void *parent PGKTLS_UNUSED, void *ptr, CRYPTO_EX_DATA *ad PGKTLS_UNUSED,
			 int idx PGKTLS_UNUSED, long argl PGKTLS_UNUSED, void *argp PGKTLS_UNUSED)
{
	secrets_wipe_free(ptr);
}

static void ex_index_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, secrets_free);
}

static struct keysched_secrets *secrets_get(const SSL *ssl)
{
	if (ex_index < 0)
		return NULL;
	return SSL_get_ex_data(ssl, ex_index);
}

/* Decode the hex secret at @hex into @out; return its length, or 0 if malformed. */
static uint8_t unhex_secret(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex);
	size_t i;

	if (n == 0 || n % 2 || n / 2 > KEYSCHED_MAX_SECRET)
		return 0;
	for (i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(out, i);
			return 0;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (uint8_t)(n / 2);
}

/*
 * The keylog callback: "LABEL <client_random hex> <secret hex>". Only the
 * two application traffic secrets are kept; OpenSSL wipes @line itself.
 */
static void keylog_cb(const SSL *cssl, const char *line)
{
	static const char client_label[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char server_label[] = "SERVER_TRAFFIC_SECRET_0 ";
	/* OpenSSL passes a const SSL, but the ex_data slot is ours to fill. */
	SSL *ssl = (SSL *)cssl;
	struct keysched_secrets *s;
	const char *secret;
	bool is_client;

	if (!strncmp(line, client_label, sizeof(client_label) - 1))
		is_client = true;
	else if (!strncmp(line, server_label, sizeof(server_label) - 1))
		is_client = false;
	else
		return;
	secret = strchr(line + sizeof(client_label) - 1, ' ');
	if (!secret)
		return;
	secret++;

	s = secrets_get(ssl);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return;	/* keysched_export() will report -ENOKEY */
		if (!SSL_set_ex_data(ssl, ex_index, s)) {
			free(s);
			return;
		}
	}
	if (is_client)
		s->client_len = unhex_secret(secret, s->client);
	else
		s->server_len = unhex_secret(secret, s->server);
}

int keysched_ctx_prepare(SSL_CTX *ctx)
{
	pthread_once(&ex_once, ex_index_init);
	if (ex_index < 0)
		return -ENOMEM;
	SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	return 0;
}

static enum keysched_cipher cipher_lookup(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int nid;
	size_t i;

	if (!c)
		return KEYSCHED_CIPHER_NONE;
	nid = SSL_CIPHER_get_cipher_nid(c);
	for (i = KEYSCHED_CIPHER_NONE + 1; i < PGKTLS_ARRAY_SIZE(ciphers); i++)
		if (ciphers[i].nid == nid)
			return (enum keysched_cipher)i;
	return KEYSCHED_CIPHER_NONE;
}

/* The PRF / HKDF hash of the session's cipher suite, by provider name. */
static const char *cipher_md_name(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	const EVP_MD *md = c ? SSL_CIPHER_get_handshake_digest(c) : NULL;

	return md ? EVP_MD_get0_name(md) : NULL;
}

/* Run the KDF @name with @params into @out. */
static int kdf_derive(const char *name, OSSL_PARAM *params, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, name, NULL);
	EVP_KDF_CTX *kctx = NULL;
	int ret = -EPROTO;

	if (!kdf)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx)
		goto out;
	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		ret = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ret;
}

int keysched_hkdf_expand_label(const char *md, const uint8_t *secret, size_t secret_len,
			       const char *label, uint8_t *out, size_t out_len)
{
	uint8_t info[2 + 1 + 255 + 1];
	size_t label_len = strlen("tls13 ") + strlen(label);
	size_t n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5];

	if (label_len > 255 || out_len > UINT16_MAX)
		return -EINVAL;
	/* struct HkdfLabel: uint16 length, opaque label<7..255>, opaque context<0..255>. */
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)label_len;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, label_len - 6);
	n += label_len;
	info[n++] = 0;	/* empty context */

	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
						      secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	return kdf_derive("HKDF", params, out, out_len);
}

int keysched_tls13_keys(enum keysched_cipher cipher, const char *md, const uint8_t *secret,
			size_t secret_len, struct keysched_dir_keys *k)
{
	int ret;

	if (cipher <= KEYSCHED_CIPHER_NONE || (size_t)cipher >= PGKTLS_ARRAY_SIZE(ciphers))
		return -EOPNOTSUPP;
	ret = keysched_hkdf_expand_label(md, secret, secret_len, "key", k->key,
					 ciphers[cipher].key_len);
	if (ret)
		return ret;
	return keysched_hkdf_expand_label(md, secret, secret_len, "iv", k->iv, KEYSCHED_IV_LEN);
}

/* TLS 1.2 (RFC 5246 6.3, AEAD suites): client key, server key, client IV, server IV. */
static int tls12_keys(SSL *ssl, const struct cipher_info *ci, const char *md,
		      struct keysched_dir_keys *client, struct keysched_dir_keys *server)
{
	SSL_SESSION *sess = SSL_get_session(ssl);
	uint8_t master[SSL_MAX_MASTER_KEY_LENGTH];
	uint8_t seed[13 + 2 * SSL3_RANDOM_SIZE];
	uint8_t block[2 * KEYSCHED_MAX_KEY + 2 * KEYSCHED_IV_LEN];
	size_t master_len, block_len = 2u * ci->key_len + 2u * ci->fixed_iv_len;
	OSSL_PARAM params[4];
	int ret = -ENOKEY;

	if (!sess)
		return -ENOKEY;
	master_len = SSL_SESSION_get_master_key(sess, master, sizeof(master));
	if (master_len == 0)
		goto out;
	memcpy(seed, "key expansion", 13);
	if (SSL_get_server_random(ssl, seed + 13, SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE ||
	    SSL_get_client_random(ssl, seed + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) !=
		    SSL3_RANDOM_SIZE)
		goto out;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, master_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed));
	params[3] = OSSL_PARAM_construct_end();
	ret = kdf_derive("TLS1-PRF", params, block, block_len);
	if (ret)
		goto out;
	memcpy(client->key, block, ci->key_len);
	memcpy(server->key, block + ci->key_len, ci->key_len);
	memcpy(client->iv, block + 2 * ci->key_len, ci->fixed_iv_len);
	memcpy(server->iv, block + 2 * ci->key_len + ci->fixed_iv_len, ci->fixed_iv_len);
out:
	OPENSSL_cleanse(master, sizeof(master));
	OPENSSL_cleanse(block, sizeof(block));
	return ret;
}

int keysched_export(SSL *ssl, struct keysched_keys *k)
{
	struct keysched_dir_keys client, server;
	const struct cipher_info *ci;
	enum keysched_cipher cipher;
	struct keysched_secrets *s;
	SSL_SESSION *sess;
	const char *md;
	uint8_t mfl;
	int ret;

	memset(k, 0, sizeof(*k));
	memset(&client, 0, sizeof(client));
	memset(&server, 0, sizeof(server));
	k->version = SSL_version(ssl);
	if (k->version != TLS1_2_VERSION && k->version != TLS1_3_VERSION)
		return -EPROTONOSUPPORT;
	cipher = cipher_lookup(ssl);
	md = cipher_md_name(ssl);
	if (cipher == KEYSCHED_CIPHER_NONE || !md)
		return -EOPNOTSUPP;
	ci = &ciphers[cipher];
	/* Bytes OpenSSL already pulled from the socket would be lost to the new reader. */
	if (SSL_has_pending(ssl) || SSL_pending(ssl) > 0)
		return -EBUSY;
	if (k->version == TLS1_3_VERSION) {
		s = secrets_get(ssl);
		if (!s || !s->client_len || !s->server_len)
			return -ENOKEY;
		ret = keysched_tls13_keys(cipher, md, s->client, s->client_len, &client);
		if (!ret)
			ret = keysched_tls13_keys(cipher, md, s->server, s->server_len, &server);
	} else {
		ret = tls12_keys(ssl, ci, md, &client, &server);
	}
	if (ret)
		goto out;
	k->rx = SSL_is_server(ssl) ? client : server;
	k->tx = SSL_is_server(ssl) ? server : client;
	k->cipher = (uint8_t)cipher;
	k->evp_cipher = ci->evp;
	k->key_len = ci->key_len;
	/* TLS 1.2 AES-GCM: 4 implicit bytes, the other 8 travel in each record. */
	k->iv_len = k->version == TLS1_3_VERSION ? KEYSCHED_IV_LEN : ci->fixed_iv_len;
	/* TLS 1.2 starts both ways at 1 (Finished used 0), TLS 1.3 at 0. */
	k->seq = k->version == TLS1_3_VERSION ? 0 : 1;
	/* RFC 6066 max_fragment_length, if the client asked for it: 2^(8 + code). */
	sess = SSL_get_session(ssl);
	mfl = sess ? SSL_SESSION_get_max_fragment_length(sess)
		   : TLSEXT_max_fragment_length_DISABLED;
	k->max_fragment_negotiated = mfl != TLSEXT_max_fragment_length_DISABLED;
	k->max_fragment = mfl >= TLSEXT_max_fragment_length_512 &&
				  mfl <= TLSEXT_max_fragment_length_4096
			  ? (uint16_t)(256u << mfl)
			  : 16384;
out:
	OPENSSL_cleanse(&client, sizeof(client));
	OPENSSL_cleanse(&server, sizeof(server));
	if (ret) {
		OPENSSL_cleanse(k, sizeof(*k));
		k->version = 0;
	}
	return ret;
}

void keysched_view(SSL *ssl, struct keysched_session *view)
{
	view->cipher = (uint8_t)cipher_lookup(ssl);
	view->md = cipher_md_name(ssl);
	view->is_server = SSL_is_server(ssl);
	view->version = SSL_version(ssl);
	view->sec = secrets_get(ssl);
}

struct keysched_session *keysched_detach(SSL *ssl)
{
	struct keysched_session *ks = calloc(1, sizeof(*ks));

	if (!ks)
		return NULL;
	keysched_view(ssl, ks);
	/* The secrets move over: the SSL can now be freed without taking them along. */
	if (ks->sec)
		SSL_set_ex_data(ssl, ex_index, NULL);
	return ks;
}

void keysched_session_free(struct keysched_session *ks)
{
	if (!ks)
		return;
	secrets_wipe_free(ks->sec);
	free(ks);
}

void keysched_forget(SSL *ssl)
{
	struct keysched_secrets *s = secrets_get(ssl);

	if (!s)
		return;
	SSL_set_ex_data(ssl, ex_index, NULL);
	secrets_wipe_free(s);
}

/*
 * The traffic secret @ks reads with (@tx false) or sends with (@tx true):
 * a server sends with the server secret and reads with the client's.
 */
static int dir_secret(const struct keysched_session *ks, bool tx, uint8_t **secret,
		      uint8_t *len)
{
	struct keysched_secrets *s = ks->sec;

	if (ks->version != TLS1_3_VERSION || ks->cipher == KEYSCHED_CIPHER_NONE || !ks->md)
		return -EPROTO;
	if (!s || !s->client_len || !s->server_len)
		return -ENOKEY;
	*secret = ks->is_server == tx ? s->server : s->client;
	*len = ks->is_server == tx ? s->server_len : s->client_len;
	return 0;
}

int keysched_next(const struct keysched_session *ks, bool tx, struct keysched_update *u)
{
	uint8_t *secret;
	uint8_t len;
	int ret;

	memset(u, 0, sizeof(*u));
	ret = dir_secret(ks, tx, &secret, &len);
	if (ret)
		return ret;
	ret = keysched_hkdf_expand_label(ks->md, secret, len, "traffic upd", u->secret, len);
	if (!ret)
		ret = keysched_tls13_keys(ks->cipher, ks->md, u->secret, len, &u->keys);
	if (ret) {
		OPENSSL_cleanse(u, sizeof(*u));
		return ret;
	}
	u->secret_len = len;
	u->tx = tx;
	return 0;
}

void keysched_advance(const struct keysched_session *ks, struct keysched_update *u)
{
	uint8_t *secret;
	uint8_t len;

	/* keysched_next() succeeded on @ks, so this cannot fail. */
	if (!dir_secret(ks, u->tx, &secret, &len) && len == u->secret_len)
		memcpy(secret, u->secret, len);
	OPENSSL_cleanse(u, sizeof(*u));
}

int keysched_next_keys(struct keysched_session *ks, bool tx, struct keysched_dir_keys *k)
{
	struct keysched_update u;
	int ret;

	memset(k, 0, sizeof(*k));
	ret = keysched_next(ks, tx, &u);
	if (ret)
		return ret;
	*k = u.keys;
	keysched_advance(ks, &u);
	return 0;
}

/* ---- moving a session to another process (binary upgrade) ---- */

/* Tags of keysched_session_export()'s list: all mandatory, none may be guessed. */
enum {
	KS_TAG_CIPHER = 1 | TLV_MANDATORY,
	KS_TAG_VERSION = 2 | TLV_MANDATORY,
	KS_TAG_SERVER = 3 | TLV_MANDATORY,
	KS_TAG_CLIENT_SECRET = 4 | TLV_MANDATORY,
	KS_TAG_SERVER_SECRET = 5 | TLV_MANDATORY,
};

/*
 * The HKDF hash follows from the AEAD for every suite pgktls takes
 * (RFC 8446 B.4; the TLS 1.2 AEAD suites' PRF hash likewise), so it is
 * derived, not carried.
 */
static const char *md_for_cipher(enum keysched_cipher c)
{
	return c == KEYSCHED_AES_256_GCM ? "SHA384" : "SHA256";
}

int keysched_session_export(const struct keysched_session *ks, struct tlv_writer *w)
{
	const struct keysched_secrets *s = ks->sec;

	if (ks->cipher == KEYSCHED_CIPHER_NONE || ks->cipher > KEYSCHED_CHACHA20_POLY1305)
		return -EINVAL;
	if (ks->version == TLS1_3_VERSION && (!s || !s->client_len || !s->server_len))
		return -EINVAL;
	tlv_put_u8(w, KS_TAG_CIPHER, ks->cipher);
	tlv_put_u16(w, KS_TAG_VERSION, (uint16_t)ks->version);
	tlv_put_u8(w, KS_TAG_SERVER, ks->is_server);
	if (ks->version == TLS1_3_VERSION) {
		tlv_put(w, KS_TAG_CLIENT_SECRET, s->client, s->client_len);
		tlv_put(w, KS_TAG_SERVER_SECRET, s->server, s->server_len);
	}
	return tlv_writer_err(w);
}

int keysched_session_import(const void *buf, size_t len, struct keysched_session **out)
{
	struct tlv_field f[] = {
		{ .tag = KS_TAG_CIPHER, .min_len = 1, .max_len = 1, .required = true },
		{ .tag = KS_TAG_VERSION, .min_len = 2, .max_len = 2, .required = true },
		{ .tag = KS_TAG_SERVER, .min_len = 1, .max_len = 1, .required = true },
		{ .tag = KS_TAG_CLIENT_SECRET, .min_len = 1, .max_len = KEYSCHED_MAX_SECRET },
		{ .tag = KS_TAG_SERVER_SECRET, .min_len = 1, .max_len = KEYSCHED_MAX_SECRET },
	};
	struct keysched_session *ks;
	size_t hash_len;
	uint8_t cipher;
	int version, r;

	*out = NULL;
	r = tlv_parse(buf, len, f, PGKTLS_ARRAY_SIZE(f));
	if (r)
		return r;
	cipher = tlv_u8(&f[0]);
	version = tlv_u16(&f[1]);
	if (version != TLS1_2_VERSION && version != TLS1_3_VERSION)
		return -EPROTONOSUPPORT;
	if (cipher == KEYSCHED_CIPHER_NONE || cipher > KEYSCHED_CHACHA20_POLY1305)
		return -EOPNOTSUPP;
	if (tlv_u8(&f[2]) > 1)
		return -EBADMSG;
	hash_len = cipher == KEYSCHED_AES_256_GCM ? 48 : 32;
	if (version == TLS1_3_VERSION ? f[3].len != hash_len || f[4].len != hash_len
				      : f[3].seen || f[4].seen)
		return -EBADMSG;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	ks->cipher = cipher;
	ks->version = version;
	ks->is_server = tlv_u8(&f[2]);
	ks->md = md_for_cipher(cipher);
	if (version == TLS1_3_VERSION) {
		ks->sec = calloc(1, sizeof(*ks->sec));
		if (!ks->sec) {
			free(ks);
			return -ENOMEM;
		}
		memcpy(ks->sec->client, f[3].val, hash_len);
		memcpy(ks->sec->server, f[4].val, hash_len);
		ks->sec->client_len = ks->sec->server_len = (uint8_t)hash_len;
	}
	*out = ks;
	return 0;
}
