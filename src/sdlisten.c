// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * sdlisten.c - sockets from systemd socket activation (sd_listen_fds(3)
 * semantics, without libsystemd).
 */
#include "config.h"

#include "pgktls/sdlisten.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A whole decimal number, nothing around it; -EINVAL otherwise. */
static int parse_ulong(const char *s, unsigned long *out)
{
	char *end;

	if (!s || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int sdlisten_parse(const char *listen_pid, const char *listen_fds, pid_t self, size_t *n,
		   char *err, size_t errlen)
{
	unsigned long pid, count;

	*n = 0;
	err[0] = '\0';
	if (!listen_fds)
		return 0;	/* not socket-activated */
	if (!listen_pid) {
		/* systemd always sets both: a lone LISTEN_FDS is not addressed to us. */
		snprintf(err, errlen, "LISTEN_FDS is set without LISTEN_PID: ignored");
		return 0;
	}
	if (parse_ulong(listen_pid, &pid) < 0 || pid == 0 || pid > INT_MAX) {
		snprintf(err, errlen, "LISTEN_PID: expected a process id, got '%s'", listen_pid);
		return -EINVAL;
	}
	if ((pid_t)pid != self) {
		snprintf(err, errlen, "LISTEN_FDS is for process %lu, not this one (%ld): ignored",
			 pid, (long)self);
		return 0;
	}
	if (parse_ulong(listen_fds, &count) < 0) {
		snprintf(err, errlen, "LISTEN_FDS: expected a number of sockets, got '%s'",
			 listen_fds);
		return -EINVAL;
	}
	if (count > SDLISTEN_MAX) {
		snprintf(err, errlen, "LISTEN_FDS: %lu sockets, at most %d are supported", count,
			 SDLISTEN_MAX);
		return -EINVAL;
	}
	*n = count;
	return 0;
}

int sdlisten_check_fd(int fd, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0, listening = 0, flags;
	socklen_t olen = sizeof(int);
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fd %d: %s", fd, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "fd %d is not a socket", fd);
		return -ENOTSOCK;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		snprintf(err, errlen, "fd %d: %s", fd, strerror(errno));
		return -errno;
	}
	/* kTLS needs TCP: a unix or UDP socket unit is a configuration mistake. */
	if (type != SOCK_STREAM || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		snprintf(err, errlen, "fd %d is not a TCP socket (family %d, type %d): the socket "
			 "unit must use ListenStream= with an IP address and port", fd,
			 ss.ss_family, type);
		return -EPROTONOSUPPORT;
	}
	olen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) == -1) {
		snprintf(err, errlen, "fd %d: SO_ACCEPTCONN: %s", fd, strerror(errno));
		return -errno;
	}
	if (!listening) {
		snprintf(err, errlen, "fd %d is a TCP socket that is not listening (Accept=yes in "
			 "the socket unit? pgktls needs Accept=no)", fd);
		return -EINVAL;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		snprintf(err, errlen, "fd %d: fcntl: %s", fd, strerror(errno));
		return -errno;
	}
	return 0;
}

int sdlisten_take(struct sdlisten *out, int first_fd, char *err, size_t errlen)
{
	const char *names = getenv("LISTEN_FDNAMES");
	char *p;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	r = sdlisten_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getpid(), &n, err, errlen);
	if (r == 0 && n && names) {
		out->names_buf = strdup(names);
		if (!out->names_buf) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
		}
	}
	/* Whatever they said, they were for us to read once: no child inherits them. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		out->fds[i] = first_fd + (int)i;
	out->n = n;
	/* Names are optional and may be fewer than the sockets: the rest stay "". */
	p = out->names_buf;
	for (size_t i = 0; i < n; i++) {
		char *colon = p ? strchr(p, ':') : NULL;

		out->names[i] = p ? p : "";
		if (colon)
			*colon = '\0';
		p = colon ? colon + 1 : NULL;
	}
	for (size_t i = 0; i < n; i++) {
		char why[256];

		r = sdlisten_check_fd(out->fds[i], why, sizeof(why));
		if (r < 0) {
			snprintf(err, errlen, "socket %zu of %zu from systemd%s%s%s: %s", i + 1, n,
				 out->names[i][0] ? " ('" : "", out->names[i],
				 out->names[i][0] ? "')" : "", why);
			return r;
		}
	}
	return 0;
}

void sdlisten_fini(struct sdlisten *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->fds[i]);
	free(l->names_buf);
	memset(l, 0, sizeof(*l));
}
