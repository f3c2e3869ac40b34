// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * certgen.c - ECDSA P-256 keys and X.509 certificates made in-process with
 * OpenSSL 3 (never by running openssl(1)): the self-signed certificate of
 * tls_generate_self_signed, and the CA, server and client set that
 * `pgktls --generate-cert DIR` writes.
 *
 * Keys are written straight to their file through an fd BIO, so no PEM copy
 * of a private key is left in a buffer of ours; OpenSSL cleanses its own.
 */
#include "config.h"

#include "pgktls/certgen.h"

#include <sys/stat.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* Every certificate: a year from now, and valid an hour back for skewed clocks. */
#define CERTGEN_DAYS 365
#define CERTGEN_BACKDATE_SECS 3600
/* X.509's upper bound for a CN (ub-common-name); longer names still get a SAN. */
#define CERTGEN_CN_MAX 64

enum cert_kind {
	CERT_SELF_SIGNED,	/* a server certificate that is its own issuer */
	CERT_CA,		/* the root of certgen_write_dir()'s set */
	CERT_SERVER,		/* signed by the CA, serverAuth, SANs */
	CERT_CLIENT,		/* signed by the CA, clientAuth, no SANs */
};

struct ext_def {
	int nid;
	const char *value;	/* in openssl x509v3_config(5) syntax */
};

/*
 * Extensions by kind, in the order added: the subject key identifier comes
 * before the authority key identifier, which is looked up from the issuer's.
 */
static const struct ext_def ext_self_signed[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "serverAuth" },
	{ NID_subject_key_identifier, "hash" },
	{ NID_undef, NULL },
};
static const struct ext_def ext_ca[] = {
	{ NID_basic_constraints, "critical,CA:TRUE" },
	{ NID_key_usage, "critical,keyCertSign,cRLSign" },
	{ NID_subject_key_identifier, "hash" },
	{ NID_authority_key_identifier, "keyid:always" },
	{ NID_undef, NULL },
};
static const struct ext_def ext_server[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "serverAuth" },
	{ NID_subject_key_identifier, "hash" },
	{ NID_authority_key_identifier, "keyid:always" },
	{ NID_undef, NULL },
};
static const struct ext_def ext_client[] = {
	{ NID_basic_constraints, "critical,CA:FALSE" },
	{ NID_key_usage, "critical,digitalSignature" },
	{ NID_ext_key_usage, "clientAuth" },
	{ NID_subject_key_identifier, "hash" },
	{ NID_authority_key_identifier, "keyid:always" },
	{ NID_undef, NULL },
};

/* Names every generated server certificate carries, so local use always verifies. */
static const char *const always_names[] = { "localhost", "127.0.0.1", "::1" };

/* Fill @err with "@what: <OpenSSL's reason>" and empty the error queue. */
static int ossl_fail(const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_peek_last_error();
	char detail[256] = "no further detail from OpenSSL";

	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(err, errlen, "%s: %s", what, detail);
	return -EIO;
}

/* Parse @name as an address into @ip. Return: 4, 16, or 0 for a host name. */
static int ip_parse(const char *name, unsigned char ip[static sizeof(struct in6_addr)])
{
	if (inet_pton(AF_INET, name, ip) == 1)
		return 4;
	if (inet_pton(AF_INET6, name, ip) == 1)
		return 16;
	return 0;
}

/* Listen wildcards ("*", 0.0.0.0, ::) name no host: no certificate can carry them. */
static bool skipped(const char *name)
{
	static const unsigned char zero[sizeof(struct in6_addr)];
	unsigned char ip[sizeof(struct in6_addr)];
	int iplen;

	if (!name[0] || strcmp(name, "*") == 0)
		return true;
	iplen = ip_parse(name, ip);
	return iplen && memcmp(ip, zero, (size_t)iplen) == 0;
}

/* Letters, digits, '-', '_' and '.', after an optional "*." (an RFC 6125 wildcard). */
static bool dns_name_ok(const char *name)
{
	if (strlen(name) > 253)
		return false;
	if (strncmp(name, "*.", 2) == 0)
		name += 2;
	if (!name[0] || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	return true;
}

bool certgen_name_ok(const char *name)
{
	unsigned char ip[sizeof(struct in6_addr)];

	return ip_parse(name, ip) || dns_name_ok(name);
}

/* The CN: the first name that names a host and fits, else "localhost". */
static const char *pick_cn(const char *const *names, size_t n_names)
{
	for (size_t i = 0; i < n_names; i++)
		if (!skipped(names[i]))
			return strlen(names[i]) <= CERTGEN_CN_MAX ? names[i] : "localhost";
	return "localhost";
}

/* Add @name to @gens as an IP or a DNS SAN, unless it is skipped or already there. */
static int san_add(GENERAL_NAMES *gens, const char *name, char *err, size_t errlen)
{
	unsigned char ip[sizeof(struct in6_addr)];
	ASN1_STRING *s = NULL;
	GENERAL_NAME *gn = NULL;
	int iplen;

	if (skipped(name))
		return 0;
	iplen = ip_parse(name, ip);
	if (!iplen && !dns_name_ok(name)) {
		snprintf(err, errlen, "'%s' is neither a host name nor an IP address", name);
		return -EINVAL;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		/* Compare addresses as bytes, so "::1" and "0::1" are one SAN. */
		if (iplen && g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == iplen &&
		    memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, (size_t)iplen) == 0)
			return 0;
		if (!iplen && g->type == GEN_DNS &&
		    strcasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), name) == 0)
			return 0;
	}
	s = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	gn = GENERAL_NAME_new();
	if (!s || !gn)
		goto err;
	if (iplen ? !ASN1_STRING_set(s, ip, iplen) : !ASN1_STRING_set(s, name, -1))
		goto err;
	GENERAL_NAME_set0_value(gn, iplen ? GEN_IPADD : GEN_DNS, s);
	s = NULL;	/* gn owns it now */
	if (!sk_GENERAL_NAME_push(gens, gn))
		goto err;
	return 0;
err:
	ASN1_STRING_free(s);
	GENERAL_NAME_free(gn);
	return ossl_fail("cannot build subjectAltName", err, errlen);
}

/* @names, then always_names, as one subjectAltName extension on @cert. */
static int add_sans(X509 *cert, const char *const *names, size_t n_names, char *err,
		    size_t errlen)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int r = 0;

	if (!gens)
		return ossl_fail("cannot build subjectAltName", err, errlen);
	for (size_t i = 0; i < n_names && r == 0; i++)
		r = san_add(gens, names[i], err, errlen);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(always_names) && r == 0; i++)
		r = san_add(gens, always_names[i], err, errlen);
	if (r == 0 &&
	    X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) != 1)
		r = ossl_fail("cannot add subjectAltName", err, errlen);
	GENERAL_NAMES_free(gens);
	return r;
}

static int add_exts(X509 *cert, X509 *issuer, const struct ext_def *defs, char *err,
		    size_t errlen)
{
	char what[128];
	X509V3_CTX v3;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	for (; defs->nid != NID_undef; defs++) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, defs->nid, defs->value);

		if (!ext || X509_add_ext(cert, ext, -1) != 1) {
			X509_EXTENSION_free(ext);
			snprintf(what, sizeof(what), "cannot add %s = %s", OBJ_nid2sn(defs->nid),
				 defs->value);
			return ossl_fail(what, err, errlen);
		}
		X509_EXTENSION_free(ext);
	}
	return 0;
}

/* A random positive 128-bit serial (RFC 5280 allows 20 octets; this takes at most 17). */
static bool set_serial(X509 *cert)
{
	unsigned char buf[16];
	BIGNUM *bn;
	bool ok;

	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return false;
	buf[0] |= 0x80;	/* never zero, always 128 bits long */
	bn = BN_bin2bn(buf, sizeof(buf), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

static int gen_key(EVP_PKEY **key, char *err, size_t errlen)
{
	*key = EVP_EC_gen("P-256");
	if (!*key)
		return ossl_fail("cannot generate a P-256 key", err, errlen);
	return 0;
}

/*
 * A certificate of @kind for @key named @cn, signed by @issuer_key as @issuer,
 * or by @key itself when @issuer is NULL.
 */
static int make_cert(enum cert_kind kind, EVP_PKEY *key, const char *cn, const char *const *names,
		     size_t n_names, X509 *issuer, EVP_PKEY *issuer_key, X509 **out, char *err,
		     size_t errlen)
{
	static const struct ext_def *const defs[] = {
		[CERT_SELF_SIGNED] = ext_self_signed,
		[CERT_CA] = ext_ca,
		[CERT_SERVER] = ext_server,
		[CERT_CLIENT] = ext_client,
	};
	X509 *cert;
	X509_NAME *subj;
	int r;

	*out = NULL;
	cert = X509_new();
	if (!cert)
		return ossl_fail("cannot create a certificate", err, errlen);
	subj = X509_get_subject_name(cert);
	if (X509_set_version(cert, X509_VERSION_3) != 1 || !set_serial(cert) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -CERTGEN_BACKDATE_SECS) ||
	    !X509_time_adj_ex(X509_getm_notAfter(cert), CERTGEN_DAYS, 0, NULL) ||
	    X509_set_pubkey(cert, key) != 1 ||
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subj) != 1) {
		r = ossl_fail("cannot fill in the certificate", err, errlen);
		goto err;
	}
	/* A self-issued certificate is its own issuer for the key identifiers. */
	r = add_exts(cert, issuer ? issuer : cert, defs[kind], err, errlen);
	if (r < 0)
		goto err;
	if (kind == CERT_SELF_SIGNED || kind == CERT_SERVER) {
		r = add_sans(cert, names, n_names, err, errlen);
		if (r < 0)
			goto err;
	}
	if (X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) <= 0) {
		r = ossl_fail("cannot sign the certificate", err, errlen);
		goto err;
	}
	*out = cert;
	return 0;
err:
	X509_free(cert);
	return r;
}

int certgen_self_signed(const char *const *names, size_t n_names, EVP_PKEY **key, X509 **cert,
			char *err, size_t errlen)
{
	int r;

	*cert = NULL;
	r = gen_key(key, err, errlen);
	if (r < 0)
		return r;
	r = make_cert(CERT_SELF_SIGNED, *key, pick_cn(names, n_names), names, n_names, NULL, NULL,
		      cert, err, errlen);
	if (r < 0) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	return r;
}

/* The files of certgen_write_dir(), in the order written. */
enum {
	F_CA_PEM,
	F_CA_KEY,
	F_SERVER_PEM,
	F_SERVER_CHAIN,
	F_SERVER_KEY,
	F_CLIENT_PEM,
	F_CLIENT_KEY,
	F__N
};

static const char *const file_names[F__N] = {
	[F_CA_PEM] = "ca.pem",
	[F_CA_KEY] = "ca.key",
	[F_SERVER_PEM] = "server.pem",
	[F_SERVER_CHAIN] = "server-chain.pem",
	[F_SERVER_KEY] = "server.key",
	[F_CLIENT_PEM] = "client.pem",
	[F_CLIENT_KEY] = "client.key",
};

static int file_path(const char *dir, int f, char *buf, size_t len, char *err, size_t errlen)
{
	int n = snprintf(buf, len, "%s/%s", dir, file_names[f]);

	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * Write @key (if any) then @certs as PEM to a new file @path with @mode.
 * O_EXCL: an existing file, or a symlink planted in its place, is never
 * written through. A file this call created is removed if writing it fails.
 */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *const *certs,
		     size_t n_certs, char *err, size_t errlen)
{
	BIO *bio = NULL;
	int fd, r = 0, e;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd == -1) {
		e = errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(e),
			 e == EEXIST ? ": refusing to overwrite it" : "");
		return -e;
	}
	/* The umask may have taken bits from a certificate's 0644. */
	if (fchmod(fd, mode) == -1) {
		e = errno;
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(e));
		r = -e;
		goto out;
	}
	bio = BIO_new_fd(fd, BIO_NOCLOSE);
	if (!bio) {
		r = ossl_fail(path, err, errlen);
		goto out;
	}
	errno = 0;
	if (key && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
		goto write_err;
	for (size_t i = 0; i < n_certs; i++)
		if (PEM_write_bio_X509(bio, certs[i]) != 1)
			goto write_err;
	if (BIO_flush(bio) != 1)
		goto write_err;
	if (fsync(fd) == -1)
		goto write_err;
	goto out;
write_err:
	if (errno) {
		e = errno;
		ERR_clear_error();
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
		r = -e;
	} else {
		char what[PATH_MAX + 32];

		snprintf(what, sizeof(what), "%s: cannot write", path);
		r = ossl_fail(what, err, errlen);
	}
out:
	BIO_free(bio);
	if (close(fd) == -1 && r == 0) {
		e = errno;
		snprintf(err, errlen, "%s: close: %s", path, strerror(e));
		r = -e;
	}
	if (r < 0)
		unlink(path);
	return r;
}

int certgen_write_dir(const char *dir, const char *const *names, size_t n_names, char *err,
		      size_t errlen)
{
	EVP_PKEY *ca_key = NULL, *srv_key = NULL, *cli_key = NULL;
	X509 *ca = NULL, *srv = NULL, *cli = NULL;
	char path[PATH_MAX], ca_cn[64];
	unsigned char tag[4];
	unsigned written = 0;	/* bit per file, to undo a half-written set */
	struct stat st;
	int r, f;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(-r));
		return r;
	}
	/* Refuse before generating anything, so a second run changes nothing. */
	for (f = 0; f < F__N; f++) {
		r = file_path(dir, f, path, sizeof(path), err, errlen);
		if (r < 0)
			return r;
		if (lstat(path, &st) == 0) {
			snprintf(err, errlen, "%s: already exists: refusing to overwrite it", path);
			return -EEXIST;
		}
		if (errno != ENOENT) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			return r;
		}
	}

	/* A random tag tells two generated CAs apart in a trust store. */
	if (RAND_bytes(tag, sizeof(tag)) != 1)
		return ossl_fail("cannot get random bytes", err, errlen);
	snprintf(ca_cn, sizeof(ca_cn), "pgktls development CA %02x%02x%02x%02x", tag[0], tag[1],
		 tag[2], tag[3]);
	r = gen_key(&ca_key, err, errlen);
	if (r == 0)
		r = make_cert(CERT_CA, ca_key, ca_cn, NULL, 0, NULL, NULL, &ca, err, errlen);
	if (r == 0)
		r = gen_key(&srv_key, err, errlen);
	if (r == 0)
		r = make_cert(CERT_SERVER, srv_key, pick_cn(names, n_names), names, n_names, ca,
			      ca_key, &srv, err, errlen);
	if (r == 0)
		r = gen_key(&cli_key, err, errlen);
	if (r == 0)
		r = make_cert(CERT_CLIENT, cli_key, CERTGEN_CLIENT_CN, NULL, 0, ca, ca_key, &cli,
			      err, errlen);
	if (r < 0)
		goto out;

	for (f = 0; f < F__N; f++) {
		X509 *chain[2] = { srv, ca };
		EVP_PKEY *key = NULL;
		X509 **certs = NULL;
		size_t n = 1;

		switch (f) {
		case F_CA_PEM: certs = &ca; break;
		case F_CA_KEY: key = ca_key; n = 0; break;
		case F_SERVER_PEM: certs = &srv; break;
		case F_SERVER_CHAIN: certs = chain; n = 2; break;
		case F_SERVER_KEY: key = srv_key; n = 0; break;
		case F_CLIENT_PEM: certs = &cli; break;
		case F_CLIENT_KEY: key = cli_key; n = 0; break;
		}
		r = file_path(dir, f, path, sizeof(path), err, errlen);
		if (r == 0)
			r = write_pem(path, key ? 0600 : 0644, key, certs, n, err, errlen);
		if (r < 0)
			goto out;
		written |= 1u << f;
	}
out:
	for (f = 0; r < 0 && f < F__N; f++)
		if (written & (1u << f) && file_path(dir, f, path, sizeof(path), NULL, 0) == 0)
			unlink(path);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
	X509_free(ca);
	X509_free(srv);
	X509_free(cli);
	return r;
}
