// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * handover.c - the old/new process handover protocol: message encoding
 * (sans I/O), one datagram per message over a SOCK_SEQPACKET socketpair with
 * SCM_RIGHTS, and starting the new process. See handover.h for the
 * conversation; the upgrade's policy (when to commit, when to give up) is
 * daemon.c's.
 */
#include "config.h"

#include "pgktls/handover.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

extern char **environ;

/* Payload sizes of version 1 (REFUSE: the fixed part, before its text). */
static const size_t payload_len[HANDOVER__NTYPES] = {
	[HANDOVER_HELLO] = 12,
	[HANDOVER_ACCEPT] = 4,
	[HANDOVER_REFUSE] = 8,
	[HANDOVER_LISTENER] = 8,
	[HANDOVER_LISTENERS_END] = 4,
	[HANDOVER_READY] = 8,
	[HANDOVER_COMMIT] = 0,
	[HANDOVER_STATUS] = 4,
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

ssize_t handover_encode(uint8_t *buf, size_t len, const struct handover_msg *m)
{
	uint8_t *p = buf + HANDOVER_HDR_LEN;
	size_t plen, textlen = 0;

	if (m->version != HANDOVER_VERSION || m->type == 0 || m->type >= HANDOVER__NTYPES)
		return -EINVAL;
	plen = payload_len[m->type];
	if (m->type == HANDOVER_REFUSE)
		textlen = strnlen(m->u.refuse.text, HANDOVER_TEXT_MAX);
	if (len < HANDOVER_HDR_LEN + plen + textlen)
		return -ENOSPC;
	memset(p, 0, plen);	/* reserved bytes are zero */
	switch (m->type) {
	case HANDOVER_HELLO:
		put32(p, m->u.hello.pid);
		put32(p + 4, m->u.hello.features);
		put32(p + 8, m->u.hello.listeners);
		break;
	case HANDOVER_ACCEPT:
		put32(p, m->u.accept.pid);
		break;
	case HANDOVER_REFUSE:
		put32(p, m->u.refuse.reason);
		put16(p + 4, m->u.refuse.version);
		put16(p + 6, (uint16_t)textlen);
		memcpy(p + 8, m->u.refuse.text, textlen);
		plen += textlen;
		break;
	case HANDOVER_LISTENER:
		if (m->u.listener.kind == 0 || m->u.listener.kind >= HANDOVER_L__NKINDS)
			return -EINVAL;
		p[0] = m->u.listener.kind;
		put32(p + 4, m->u.listener.index);
		break;
	case HANDOVER_LISTENERS_END:
		put32(p, m->u.listeners_end.count);
		break;
	case HANDOVER_READY:
		put32(p, m->u.ready.pid);
		put32(p + 4, m->u.ready.listeners);
		break;
	case HANDOVER_COMMIT:
		break;
	case HANDOVER_STATUS:
		put32(p, m->u.status.draining);
		break;
	}
	memcpy(buf, HANDOVER_MAGIC, 4);
	put16(buf + 4, m->version);
	put16(buf + 6, m->type);
	put32(buf + 8, (uint32_t)plen);
	return (ssize_t)(HANDOVER_HDR_LEN + plen);
}

int handover_decode_header(const uint8_t *buf, size_t len, uint16_t *version, uint16_t *type)
{
	if (len < HANDOVER_HDR_LEN || memcmp(buf, HANDOVER_MAGIC, 4) != 0 ||
	    get32(buf + 8) != len - HANDOVER_HDR_LEN)
		return -EBADMSG;
	*version = get16(buf + 4);
	*type = get16(buf + 6);
	return 0;
}

int handover_decode(const uint8_t *buf, size_t len, struct handover_msg *out)
{
	const uint8_t *p = buf + HANDOVER_HDR_LEN;
	size_t plen = len - HANDOVER_HDR_LEN;
	int r;

	memset(out, 0, sizeof(*out));
	r = handover_decode_header(buf, len, &out->version, &out->type);
	if (r < 0)
		return r;
	if (out->version != HANDOVER_VERSION)
		return -EPROTONOSUPPORT;
	if (out->type == 0 || out->type >= HANDOVER__NTYPES)
		return -ENOMSG;
	if (out->type == HANDOVER_REFUSE ? plen < payload_len[out->type]
					 : plen != payload_len[out->type])
		return -EBADMSG;
	switch (out->type) {
	case HANDOVER_HELLO:
		out->u.hello.pid = get32(p);
		out->u.hello.features = get32(p + 4);
		out->u.hello.listeners = get32(p + 8);
		break;
	case HANDOVER_ACCEPT:
		out->u.accept.pid = get32(p);
		break;
	case HANDOVER_REFUSE: {
		size_t textlen = get16(p + 6);

		if (textlen > HANDOVER_TEXT_MAX || plen != payload_len[out->type] + textlen)
			return -EBADMSG;
		out->u.refuse.reason = get32(p);
		out->u.refuse.version = get16(p + 4);
		/* It goes to our log: printable ASCII only, whatever the peer sent. */
		for (size_t i = 0; i < textlen; i++) {
			uint8_t ch = p[8 + i];

			out->u.refuse.text[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		}
		out->u.refuse.text[textlen] = '\0';
		break;
	}
	case HANDOVER_LISTENER:
		if (p[0] == 0 || p[0] >= HANDOVER_L__NKINDS || p[1] || p[2] || p[3])
			return -EBADMSG;
		out->u.listener.kind = p[0];
		out->u.listener.index = get32(p + 4);
		break;
	case HANDOVER_LISTENERS_END:
		out->u.listeners_end.count = get32(p);
		break;
	case HANDOVER_READY:
		out->u.ready.pid = get32(p);
		out->u.ready.listeners = get32(p + 4);
		break;
	case HANDOVER_COMMIT:
		break;
	case HANDOVER_STATUS:
		out->u.status.draining = get32(p);
		break;
	}
	return 0;
}

const char *handover_type_name(unsigned type)
{
	static const char *const names[HANDOVER__NTYPES] = {
		[HANDOVER_HELLO] = "hello",
		[HANDOVER_ACCEPT] = "accept",
		[HANDOVER_REFUSE] = "refuse",
		[HANDOVER_LISTENER] = "listener",
		[HANDOVER_LISTENERS_END] = "listeners_end",
		[HANDOVER_READY] = "ready",
		[HANDOVER_COMMIT] = "commit",
		[HANDOVER_STATUS] = "status",
	};

	return type < HANDOVER__NTYPES && names[type] ? names[type] : "?";
}

const char *handover_refusal_name(unsigned reason)
{
	static const char *const names[HANDOVER_R__N] = {
		[HANDOVER_R_VERSION] = "version",
		[HANDOVER_R_PROTOCOL] = "protocol",
		[HANDOVER_R_START] = "start",
	};

	return reason < HANDOVER_R__N && names[reason] ? names[reason] : "?";
}

/* Wait for @events on @fd for at most @timeout_ms. Return: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int handover_send(int fd, const struct handover_msg *m, int pass_fd, int timeout_ms)
{
	uint8_t buf[HANDOVER_HDR_LEN + 64 + HANDOVER_TEXT_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n = handover_encode(buf, sizeof(buf), m);
	int r = 0;

	if (n < 0)
		return (int)n;
	iov.iov_len = (size_t)n;
	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	for (;;) {
		if (sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) != -1)
			break;
		r = -errno;
		if (r == -EINTR)
			continue;
		if (r != -EAGAIN)
			break;
		r = wait_fd(fd, POLLOUT, timeout_ms);
		if (r < 0)
			break;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

/* Close every descriptor a control message carried. */
static int take_fds(struct msghdr *msg, int *got_fd)
{
	int n_fds = 0, r = 0;

	*got_fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n_fds++ == 0) {
				*got_fd = fd;
				continue;
			}
			close(fd);
			r = -EBADMSG;
		}
	}
	if (r < 0 && *got_fd >= 0) {
		close(*got_fd);
		*got_fd = -1;
	}
	return r;
}

int handover_recv(int fd, struct handover_msg *m, int *got_fd, int timeout_ms)
{
	uint8_t *buf = malloc(HANDOVER_MAX_MSG);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = HANDOVER_MAX_MSG };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	ssize_t n;
	int r;

	*got_fd = -1;
	memset(m, 0, sizeof(*m));
	if (!buf)
		return -ENOMEM;
	for (bool reset = false;;) {
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0)
			break;
		r = -errno;
		/*
		 * A peer that closed with our message unread sets ECONNRESET on
		 * this socket, reported (once) before what it sent last: a
		 * refusal is still queued behind it. Read on; EOF follows it.
		 */
		if (r == -EINTR || (r == -ECONNRESET && !reset)) {
			reset = reset || r == -ECONNRESET;
			continue;
		}
		if (r != -EAGAIN || timeout_ms == 0)
			goto out;
		r = wait_fd(fd, POLLIN, timeout_ms);
		if (r < 0)
			goto out;
	}
	r = take_fds(&msg, got_fd);
	if (n == 0 && r == 0 && *got_fd < 0) {
		r = -ECONNRESET;	/* every message has a header: 0 bytes is EOF */
		goto out;
	}
	if (r == 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		r = -EBADMSG;
	if (r == 0)
		r = handover_decode(buf, (size_t)n, m);
	if (r < 0 && *got_fd >= 0) {
		close(*got_fd);
		*got_fd = -1;
	}
out:
	OPENSSL_cleanse(buf, HANDOVER_MAX_MSG);
	free(buf);
	return r;
}

int handover_spawn(const char *path, char *const argv[], pid_t *pid, int *fd)
{
	char var[64], **envp;
	size_t n = 0, k = 0;
	sigset_t none;
	int sv[2], r;
	pid_t child;

	*pid = -1;
	*fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	if (!envp) {
		r = -ENOMEM;
		goto err;
	}
	/* Everything is prepared before fork(): the child may only call async-signal-safe code. */
	snprintf(var, sizeof(var), "%s=%d", HANDOVER_ENV_FD, sv[1]);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], HANDOVER_ENV_FD "=", strlen(HANDOVER_ENV_FD) + 1) != 0)
			envp[k++] = environ[i];
	envp[k++] = var;
	envp[k] = NULL;
	sigemptyset(&none);
	child = fork();
	if (child == -1) {
		r = -errno;
		free(envp);
		goto err;
	}
	if (child == 0) {
		/* Our blocked signals (the daemon's signalfd set) must not reach the new binary. */
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fcntl(sv[1], F_SETFD, 0) == -1)
			_exit(127);
		execve(path, argv, envp);
		_exit(127);
	}
	free(envp);
	close(sv[1]);
	if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == -1) {
		r = -errno;
		close(sv[0]);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return r;
	}
	*pid = child;
	*fd = sv[0];
	return 0;
err:
	close(sv[0]);
	close(sv[1]);
	return r;
}

int handover_child_fd(void)
{
	const char *v = getenv(HANDOVER_ENV_FD);
	int fd, type = 0, domain = 0;
	socklen_t len = sizeof(int);
	char *end;
	long l;

	if (!v)
		return -ENOENT;
	errno = 0;
	l = strtol(v, &end, 10);
	unsetenv(HANDOVER_ENV_FD);
	if (errno || *end || end == v || l < 0 || l > INT_MAX)
		return -EINVAL;
	fd = (int)l;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return errno == ENOTSOCK ? -ENOTSOCK : -EINVAL;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == -1 || domain != AF_UNIX ||
	    type != SOCK_SEQPACKET)
		return -ENOTSOCK;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		return -errno;
	return fd;
}
