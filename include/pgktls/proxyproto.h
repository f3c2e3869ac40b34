/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * proxyproto.h - the PROXY protocol header (HAProxy's doc/proxy-protocol.txt,
 * version 1 text and version 2 binary) that an L4 load balancer puts in
 * front of a connection, sans I/O.
 *
 * The caller feeds every byte it holds from the start of the connection;
 * the parser says whether they are a complete header (and how long it is,
 * so the caller consumes exactly that and no byte of the PostgreSQL stream
 * after it), the beginning of one, or not a header at all.
 */
#ifndef PGKTLS_PROXYPROTO_H
#define PGKTLS_PROXYPROTO_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

/* The 12-byte signature of a version 2 header, and its fixed part (signature + 4). */
#define PROXYPROTO_V2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define PROXYPROTO_V2_SIG_LEN 12u
#define PROXYPROTO_V2_FIXED_LEN 16u
/* A version 1 line, "PROXY ... \r\n" included, is at most this long (the spec's bound). */
#define PROXYPROTO_V1_MAX_LEN 107u
/*
 * pgktls's bound on a whole version 2 header. The format allows 16 + 65535
 * bytes; addresses take at most 216 and what balancers add as TLVs (AWS's
 * VPC endpoint id, HAProxy's unique id, authority, SSL details) stays far
 * below 1 KB. Anything longer is refused rather than buffered.
 */
#define PROXYPROTO_MAX_LEN 2048u

/* A complete header, as proxyproto_parse() returns it. */
struct proxyproto_hdr {
	unsigned version;		/* 1 or 2 */
	/*
	 * No usable addresses: a v2 LOCAL command (the balancer's own health
	 * check), a v2 PROXY with AF_UNSPEC or AF_UNIX, or a v1 UNKNOWN. The
	 * connection keeps the socket's own addresses.
	 */
	bool local;
	struct sockaddr_storage src;	/* the original client (when !local) */
	struct sockaddr_storage dst;	/* the address it connected to (when !local) */
	socklen_t addrlen;		/* of src and dst; 0 when local */
	size_t len;			/* header bytes, TLVs included: consume exactly these */
};

/* Results of proxyproto_parse() besides 0 (complete) and -errno. */
#define PROXYPROTO_NEED_MORE 1

/**
 * proxyproto_parse() - look for a PROXY protocol header at the start of @buf.
 * @buf: every byte received on the connection so far
 * @len: how many
 * @out: on 0, the header; untouched otherwise
 * @why: on a negative return, a static reason for the log
 *
 * Checks what the spec requires (signature, version 2, command LOCAL or
 * PROXY, a known family and transport, an address block as long as the
 * family needs; for version 1 the exact "PROXY TCP4|TCP6 src dst sport dport"
 * syntax with addresses inet_pton() accepts and ports 0..65535). TLVs are
 * skipped, not parsed.
 *
 * PROXYPROTO_NEED_MORE is only returned while all of @buf may still be part
 * of one header, so the caller may consume every byte it fed without ever
 * taking one that follows the header.
 *
 * Return: 0 with *@out filled in (bytes after @out->len are not looked at),
 * PROXYPROTO_NEED_MORE, -ENOMSG if @buf does not start like a header at
 * all, -E2BIG if the header would be longer than PROXYPROTO_MAX_LEN (or a
 * version 1 line longer than 107 bytes), -EPROTO if it is malformed.
 */
PGKTLS_MUSTCHECK int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_hdr *out,
				      const char **why);

#endif /* PGKTLS_PROXYPROTO_H */
