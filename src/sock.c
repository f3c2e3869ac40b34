// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "pgktls/sock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *sock_addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, buflen, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, buflen, "[%s]:%u", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;

		if (len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0])
			snprintf(buf, buflen, "unix:%.*s",
				 (int)(len - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
		else
			snprintf(buf, buflen, "unix");
		break;
	}
	default:
		snprintf(buf, buflen, "family-%d", sa->sa_family);
	}
	return buf;
}

int sock_resolve(const char *host, uint16_t port, bool passive, struct sock_addr **out, size_t *n,
		 char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL, *ai;
	char portstr[8];
	size_t count = 0, i = 0;
	int r;

	*out = NULL;
	*n = 0;
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	else
		hints.ai_flags = AI_ADDRCONFIG;
	if (passive && strcmp(host, "*") == 0)
		host = NULL;
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host ? host : "*",
			 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next)
		count++;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out) {
		freeaddrinfo(res);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		bool dup = false;

		/* getaddrinfo lists each address once per protocol on some systems. */
		for (size_t j = 0; j < i; j++)
			if ((*out)[j].len == ai->ai_addrlen &&
			    memcmp(&(*out)[j].ss, ai->ai_addr, ai->ai_addrlen) == 0)
				dup = true;
		if (dup)
			continue;
		memcpy(&(*out)[i].ss, ai->ai_addr, ai->ai_addrlen);
		(*out)[i].len = ai->ai_addrlen;
		i++;
	}
	freeaddrinfo(res);
	*n = i;
	return 0;
}

int sock_unix_addr(const char *path, uint16_t port, struct sock_addr *out)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
	size_t plen = strlen(path);
	char full[sizeof(un->sun_path) + 32];
	int r;

	memset(out, 0, sizeof(*out));
	un->sun_family = AF_UNIX;
	if (plen && path[plen - 1] == '/')
		plen--;
	/* A directory is what libpq's host=/dir means: the socket file inside it. */
	if (plen == 0 || strstr(path, ".s.PGSQL.") == NULL)
		r = snprintf(full, sizeof(full), "%.*s/.s.PGSQL.%u", (int)plen, path, port);
	else
		r = snprintf(full, sizeof(full), "%s", path);
	if (r < 0 || (size_t)r >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	memcpy(un->sun_path, full, (size_t)r + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)r + 1);
	return 0;
}

int sock_listen(const struct sock_addr *a, int backlog)
{
	int one = 1, fd, err;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto err;
	/* Each address family gets its own socket: "*" binds 0.0.0.0 and ::. */
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto err;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
		goto err;
	if (listen(fd, backlog) == -1)
		goto err;
	return fd;
err:
	err = errno;
	close(fd);
	return -err;
}

void sock_set_nodelay(int fd)
{
	int one = 1;

	/* PostgreSQL messages are small and latency-bound: never wait for Nagle. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int sock_connect(const struct sock_addr *a, int *fd)
{
	int s, err;

	*fd = -1;
	s = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s == -1)
		return -errno;
	if (a->ss.ss_family != AF_UNIX)
		sock_set_nodelay(s);
	if (connect(s, (const struct sockaddr *)&a->ss, a->len) == 0) {
		*fd = s;
		return 0;
	}
	err = errno;
	/* A unix socket's EAGAIN means its backlog is full: a failure, not pending. */
	if (err == EINPROGRESS) {
		*fd = s;
		return -EINPROGRESS;
	}
	close(s);
	return -err;
}

int sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		return errno;
	return e;
}

int sock_cidr_parse(const char *text, struct sock_cidr *out, const char **why)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max, prefix;
	struct sock_cidr c;

	memset(&c, 0, sizeof(c));
	*why = "expected an address or network such as \"10.0.0.0/8\" or \"::1/128\"";
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	prefix = max;
	if (slash) {
		const char *p = slash + 1;

		if (!*p || strlen(p) > 3)
			return -EINVAL;
		prefix = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max) {
			*why = c.family == AF_INET ? "an IPv4 prefix length is at most 32"
						   : "an IPv6 prefix length is at most 128";
			return -EINVAL;
		}
	}
	/* Bits set past the prefix are almost always a typo for another network. */
	for (unsigned bit = prefix; bit < max; bit++) {
		if (c.addr[bit / 8] & (0x80u >> (bit % 8))) {
			*why = "the address has bits set beyond the prefix length";
			return -EINVAL;
		}
	}
	c.prefix = prefix;
	*out = c;
	return 0;
}

/* Do the first @prefix bits of @a and @b agree? */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (!rest)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool sock_cidr_match(const struct sock_cidr *list, size_t n, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a4 = NULL, *a6 = NULL;

	if (sa->sa_family == AF_INET) {
		a4 = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0)
			a4 = a6 + 12;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sock_cidr *c = &list[i];

		if (c->family == AF_INET && a4 && prefix_equal(a4, c->addr, c->prefix))
			return true;
		if (c->family == AF_INET6 && a6 && prefix_equal(a6, c->addr, c->prefix))
			return true;
	}
	return false;
}

int sock_parse_hostport(const char *s, struct sock_addr *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon, *h = s, *p;
	size_t hlen;
	unsigned long port = 0;

	memset(out, 0, sizeof(*out));
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;	/* an IPv6 address needs its brackets */
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return -EINVAL;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (p == colon + 1 || port == 0 || port > 65535)
		return -EINVAL;
	if (*s != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EINVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		out->len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*in6);
	}
	return 0;
}
