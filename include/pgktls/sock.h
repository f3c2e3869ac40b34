/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * sock.h - socket helpers: addresses, listening sockets, non-blocking connect.
 */
#ifndef PGKTLS_SOCK_H
#define PGKTLS_SOCK_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

/* Big enough for "[ffff:...:ffff%scope]:65535" and for a unix socket path. */
#define SOCK_ADDR_STRLEN 128

/* A resolved address to connect to or listen on. */
struct sock_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/**
 * sock_addr_str() - "127.0.0.1:5432", "[::1]:5432" or "unix:/path".
 * Return: @buf.
 */
const char *sock_addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

/**
 * sock_resolve() - resolve @host (numeric or name) and @port, for listening
 * (@passive: "*" means every address) or connecting.
 * @out: array the caller frees with free(); *@n entries
 *
 * Blocking (getaddrinfo): call only at startup or from a non-worker thread.
 * Return: 0, or -EINVAL with @err filled in ("cannot resolve 'x': ...").
 */
PGKTLS_MUSTCHECK int sock_resolve(const char *host, uint16_t port, bool passive,
				  struct sock_addr **out, size_t *n, char *err, size_t errlen);

/**
 * sock_unix_addr() - a unix socket address for @path; a directory means
 * @dir/.s.PGSQL.@port, as libpq does.
 * Return: 0, or -ENAMETOOLONG.
 */
PGKTLS_MUSTCHECK int sock_unix_addr(const char *path, uint16_t port, struct sock_addr *out);

/**
 * sock_listen() - a non-blocking listening socket with SO_REUSEPORT, so
 * each worker can own one for the same address (the kernel spreads
 * connections across them). IPv6 sockets are IPV6_V6ONLY.
 * Return: the fd, or -errno.
 */
PGKTLS_MUSTCHECK int sock_listen(const struct sock_addr *a, int backlog);

/**
 * sock_connect() - start a non-blocking connect.
 * @fd: out: the new socket (non-blocking, close-on-exec, TCP_NODELAY for TCP)
 * Return: 0 if connected at once, -EINPROGRESS if pending, other -errno on failure.
 */
PGKTLS_MUSTCHECK int sock_connect(const struct sock_addr *a, int *fd);

/* One network of an address list, such as proxy_protocol_trusted. */
struct sock_cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network address, host bits zero (4 bytes used for IPv4) */
	unsigned prefix;	/* 0..32 or 0..128 */
};

/**
 * sock_cidr_parse() - "10.0.0.0/8", "::1/128", or one address alone (a /32
 * or /128).
 * @text: the network, no spaces
 * @out: the parsed network
 * @why: on -EINVAL, a static reason ("host bits set", ...)
 * Return: 0 or -EINVAL.
 */
PGKTLS_MUSTCHECK int sock_cidr_parse(const char *text, struct sock_cidr *out, const char **why);

/**
 * sock_cidr_match() - is @sa (AF_INET or AF_INET6) inside one of @n networks?
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 networks too.
 */
bool sock_cidr_match(const struct sock_cidr *list, size_t n, const struct sockaddr *sa);

/** sock_error() - SO_ERROR of @fd as a positive errno (0 = none). */
int sock_error(int fd);

/**
 * sock_parse_hostport() - a numeric "192.0.2.1:9939" or "[2001:db8::1]:9939"
 * (no names: one setting, one address, no resolver at start-up).
 * @out: the address; zeroed on failure
 *
 * Return: 0, or -EINVAL (not that form, a bad address, port 0 or above 65535).
 */
PGKTLS_MUSTCHECK int sock_parse_hostport(const char *s, struct sock_addr *out);

/** sock_set_nodelay() - TCP_NODELAY; silently nothing for non-TCP sockets. */
void sock_set_nodelay(int fd);

#endif /* PGKTLS_SOCK_H */
