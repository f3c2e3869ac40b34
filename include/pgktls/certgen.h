/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * certgen.h - generated certificates: the self-signed one behind
 * tls_generate_self_signed, and the CA/server/client set written by
 * `pgktls --generate-cert DIR` for testing and development.
 *
 * Every key is ECDSA P-256. Host names become DNS SANs and numeric addresses
 * (IPv4 or IPv6) IP SANs; "localhost", 127.0.0.1 and ::1 are always added, and
 * the listen wildcards "*", "0.0.0.0" and "::" (and empty names) are skipped,
 * so callers may pass listen hosts as they come.
 */
#ifndef PGKTLS_CERTGEN_H
#define PGKTLS_CERTGEN_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdbool.h>

#include "pgktls/compiler.h"

/* The CN of the client certificate certgen_write_dir() writes. */
#define CERTGEN_CLIENT_CN "pgktls-client"

/** certgen_name_ok() - whether @name can go into a certificate: an IP address or a DNS name. */
bool certgen_name_ok(const char *name);

/**
 * certgen_self_signed() - a new P-256 key and a self-signed server certificate.
 * @names: host names and addresses for the SANs; the first usable one is the CN
 *	   ("localhost" if there is none, or if it is longer than 64 characters)
 * @n_names: how many; 0 is fine
 * @key: out: the key; the caller frees it with EVP_PKEY_free()
 * @cert: out: the certificate; the caller frees it with X509_free()
 * @err: buffer for one error line
 * @errlen: its size
 *
 * The certificate is valid from an hour ago (clock skew) for a year, has a
 * random 128-bit serial, basicConstraints CA:FALSE, keyUsage digitalSignature,
 * extendedKeyUsage serverAuth and a subject key identifier. A client pins it
 * by using the certificate itself as its root (libpq's sslrootcert).
 *
 * Return: 0; -EINVAL for a name that is neither a host name nor an address;
 * -EIO if OpenSSL fails. On failure *@key and *@cert are NULL.
 */
PGKTLS_MUSTCHECK int certgen_self_signed(const char *const *names, size_t n_names,
					 EVP_PKEY **key, X509 **cert, char *err, size_t errlen);

/**
 * certgen_write_dir() - write a test CA, a server and a client certificate to @dir.
 * @dir: created (mode 0700, its parent must exist) if missing
 * @names: host names and addresses for the server certificate, as for
 *	   certgen_self_signed()
 * @n_names: how many
 * @err: buffer for one error line, naming the file at fault
 * @errlen: its size
 *
 * Files: ca.pem, ca.key (CA:TRUE, keyCertSign|cRLSign); server.pem (leaf only),
 * server-chain.pem (leaf then CA), server.key (serverAuth, SANs as above);
 * client.pem, client.key (CN CERTGEN_CLIENT_CN, clientAuth), both signed by the
 * CA. Keys are PKCS#8 PEM, unencrypted, mode 0600; certificates mode 0644.
 * Nothing is overwritten: if any of the files exists, nothing is written. If
 * writing fails half-way, the files written so far are removed.
 *
 * Return: 0; -EEXIST if a file exists; -EINVAL for a bad name; -EIO if OpenSSL
 * fails; another -errno from mkdir, open or write.
 */
PGKTLS_MUSTCHECK int certgen_write_dir(const char *dir, const char *const *names, size_t n_names,
				       char *err, size_t errlen);

#endif /* PGKTLS_CERTGEN_H */
