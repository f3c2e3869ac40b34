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

/*
 * Fixed payload sizes, per version (REFUSE and SESSION_NACK: the part before
 * their text; SESSION: before its opaque payload); 0 with no entry: a type
 * that version does not have. Version 2 = version 1 + the session messages
 * + a longer STATUS.
 */
static const size_t payload_len_v1[HANDOVER__NTYPES] = {
	[HANDOVER_HELLO] = 12,
	[HANDOVER_ACCEPT] = 4,
	[HANDOVER_REFUSE] = 8,
	[HANDOVER_LISTENER] = 8,
	[HANDOVER_LISTENERS_END] = 4,
	[HANDOVER_READY] = 8,
	[HANDOVER_COMMIT] = 0,
	[HANDOVER_STATUS] = 4,
};

static const size_t payload_len_v2[HANDOVER__NTYPES] = {
	[HANDOVER_HELLO] = 12,
	[HANDOVER_ACCEPT] = 4,
	[HANDOVER_REFUSE] = 8,
	[HANDOVER_LISTENER] = 8,
	[HANDOVER_LISTENERS_END] = 4,
	[HANDOVER_READY] = 8,
	[HANDOVER_COMMIT] = 0,
	[HANDOVER_STATUS] = 12,
	[HANDOVER_SESSION] = HANDOVER_SESSION_FIXED,
	[HANDOVER_SESSION_ACK] = 8,
	[HANDOVER_SESSION_NACK] = 16,
	[HANDOVER_SESSIONS_END] = 4,
};

/* Types version 1 has: everything before the session messages. */
static bool type_known(uint16_t version, uint16_t type)
{
	if (type == 0 || type >= HANDOVER__NTYPES)
		return false;
	return version >= 2 || type <= HANDOVER_STATUS;
}

static size_t fixed_len(uint16_t version, uint16_t type)
{
	return version == 1 ? payload_len_v1[type] : payload_len_v2[type];
}

/* A text for the log: printable ASCII only, whatever the peer sent. */
static void copy_printable(char *out, const uint8_t *in, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? (char)in[i] : '?';
	out[len] = '\0';
}

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

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Every byte in [p, p + n) zero (reserved bytes). */
static bool zeros(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

ssize_t handover_encode(uint8_t *buf, size_t len, const struct handover_msg *m)
{
	uint8_t *p = buf + HANDOVER_HDR_LEN;
	size_t plen, extra = 0;

	if (m->version < HANDOVER_VERSION_MIN || m->version > HANDOVER_VERSION ||
	    !type_known(m->version, m->type))
		return -EINVAL;
	plen = fixed_len(m->version, m->type);
	if (m->type == HANDOVER_REFUSE)
		extra = strnlen(m->u.refuse.text, HANDOVER_TEXT_MAX);
	else if (m->type == HANDOVER_SESSION_NACK)
		extra = strnlen(m->u.session_nack.text, HANDOVER_TEXT_MAX);
	else if (m->type == HANDOVER_SESSION) {
		if (m->u.session.len == 0 || m->u.session.len > HANDOVER_SESSION_MAX ||
		    !m->u.session.payload || m->u.session.n_fds == 0 ||
		    m->u.session.n_fds > HANDOVER_SESSION_FDS)
			return -EINVAL;
		extra = m->u.session.len;
	}
	if (m->type == HANDOVER_LISTENER &&
	    (m->u.listener.kind == 0 || m->u.listener.kind >= HANDOVER_L__NKINDS))
		return -EINVAL;
	if (len < HANDOVER_HDR_LEN + plen + extra)
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
		put16(p + 6, (uint16_t)extra);
		memcpy(p + 8, m->u.refuse.text, extra);
		break;
	case HANDOVER_LISTENER:
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
		if (m->version >= 2) {
			put32(p + 4, m->u.status.moved);
			put32(p + 8, m->u.status.kept);
		}
		break;
	case HANDOVER_SESSION:
		put64(p, m->u.session.id);
		p[8] = m->u.session.n_fds;
		memcpy(p + HANDOVER_SESSION_FIXED, m->u.session.payload, extra);
		break;
	case HANDOVER_SESSION_ACK:
		put64(p, m->u.session_ack.id);
		break;
	case HANDOVER_SESSION_NACK:
		put64(p, m->u.session_nack.id);
		put32(p + 8, m->u.session_nack.reason);
		put16(p + 12, (uint16_t)extra);
		memcpy(p + 16, m->u.session_nack.text, extra);
		break;
	case HANDOVER_SESSIONS_END:
		put32(p, m->u.sessions_end.count);
		break;
	}
	plen += extra;
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
	size_t plen = len - HANDOVER_HDR_LEN, fixed;
	int r;

	memset(out, 0, sizeof(*out));
	r = handover_decode_header(buf, len, &out->version, &out->type);
	if (r < 0)
		return r;
	if (out->version < HANDOVER_VERSION_MIN || out->version > HANDOVER_VERSION)
		return -EPROTONOSUPPORT;
	if (!type_known(out->version, out->type))
		return -ENOMSG;
	fixed = fixed_len(out->version, out->type);
	/* Types with a variable tail (a text, a session's state) have a minimum, the rest a size. */
	if (out->type == HANDOVER_REFUSE || out->type == HANDOVER_SESSION ||
	    out->type == HANDOVER_SESSION_NACK ? plen < fixed : plen != fixed)
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

		if (textlen > HANDOVER_TEXT_MAX || plen != fixed + textlen)
			return -EBADMSG;
		out->u.refuse.reason = get32(p);
		out->u.refuse.version = get16(p + 4);
		/* It goes to our log. */
		copy_printable(out->u.refuse.text, p + 8, textlen);
		break;
	}
	case HANDOVER_LISTENER:
		if (p[0] == 0 || p[0] >= HANDOVER_L__NKINDS || !zeros(p + 1, 3))
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
		if (out->version >= 2) {
			out->u.status.moved = get32(p + 4);
			out->u.status.kept = get32(p + 8);
		}
		break;
	case HANDOVER_SESSION:
		if (p[8] == 0 || p[8] > HANDOVER_SESSION_FDS || !zeros(p + 9, 3) ||
		    plen == fixed || plen - fixed > HANDOVER_SESSION_MAX)
			return -EBADMSG;
		out->u.session.id = get64(p);
		out->u.session.n_fds = p[8];
		/* Not a copy: the caller's buffer must outlive this view (handover_recv() copies). */
		out->u.session.payload = (uint8_t *)(uintptr_t)(p + fixed);
		out->u.session.len = (uint32_t)(plen - fixed);
		for (size_t i = 0; i < HANDOVER_SESSION_FDS; i++)
			out->u.session.fds[i] = -1;
		break;
	case HANDOVER_SESSION_ACK:
		out->u.session_ack.id = get64(p);
		break;
	case HANDOVER_SESSION_NACK: {
		size_t textlen = get16(p + 12);

		if (textlen > HANDOVER_TEXT_MAX || plen != fixed + textlen || !zeros(p + 14, 2))
			return -EBADMSG;
		out->u.session_nack.id = get64(p);
		out->u.session_nack.reason = get32(p + 8);
		copy_printable(out->u.session_nack.text, p + 16, textlen);
		break;
	}
	case HANDOVER_SESSIONS_END:
		out->u.sessions_end.count = get32(p);
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
		[HANDOVER_SESSION] = "session",
		[HANDOVER_SESSION_ACK] = "session_ack",
		[HANDOVER_SESSION_NACK] = "session_nack",
		[HANDOVER_SESSIONS_END] = "sessions_end",
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

const char *handover_nack_name(unsigned reason)
{
	static const char *const names[HANDOVER_N__N] = {
		[HANDOVER_N_UNSUPPORTED] = "unsupported",
		[HANDOVER_N_MALFORMED] = "malformed",
		[HANDOVER_N_RESOURCES] = "resources",
		[HANDOVER_N_REFUSED] = "refused",
	};

	return reason < HANDOVER_N__N && names[reason] ? names[reason] : "?";
}

unsigned handover_fds_expected(const struct handover_msg *m)
{
	if (m->type == HANDOVER_LISTENER)
		return 1;
	return m->type == HANDOVER_SESSION ? m->u.session.n_fds : 0;
}

void handover_msg_fini(struct handover_msg *m)
{
	if (m->type == HANDOVER_SESSION) {
		for (size_t i = 0; i < HANDOVER_SESSION_FDS; i++)
			if (m->u.session.fds[i] >= 0)
				close(m->u.session.fds[i]);
		if (m->u.session.payload) {
			OPENSSL_cleanse(m->u.session.payload, m->u.session.len);
			free(m->u.session.payload);
		}
	}
	OPENSSL_cleanse(m, sizeof(*m));
}

int handover_size_buffers(int fd)
{
	int size = HANDOVER_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) == -1)
		return -errno;
	return 0;
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
	uint8_t small[HANDOVER_HDR_LEN + 64 + HANDOVER_TEXT_MAX], *buf = small;
	size_t cap = sizeof(small), n_fds = 0;
	int fds[HANDOVER_SESSION_FDS];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(HANDOVER_SESSION_FDS * sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	int r = 0;

	if (m->type == HANDOVER_SESSION) {
		if (pass_fd >= 0 || m->u.session.n_fds == 0 ||
		    m->u.session.n_fds > HANDOVER_SESSION_FDS)
			return -EINVAL;
		n_fds = m->u.session.n_fds;
		memcpy(fds, m->u.session.fds, n_fds * sizeof(int));
		/* Only a session is big: the rest fit on the stack. */
		cap = HANDOVER_HDR_LEN + HANDOVER_SESSION_FIXED + m->u.session.len;
		if (m->u.session.len > HANDOVER_SESSION_MAX)
			return -EINVAL;
		buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
	} else if (pass_fd >= 0) {
		fds[n_fds++] = pass_fd;
	}
	n = handover_encode(buf, cap, m);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	iov = (struct iovec){ .iov_base = buf, .iov_len = (size_t)n };
	if (n_fds) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
	}
	for (;;) {
		if (sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) != -1) {
			r = 0;
			break;
		}
		r = -errno;
		if (r == -EINTR)
			continue;
		if (r != -EAGAIN)
			break;
		r = wait_fd(fd, POLLOUT, timeout_ms);
		if (r < 0)
			break;
	}
out:
	OPENSSL_cleanse(buf, n > 0 ? (size_t)n : cap);
	if (buf != small)
		free(buf);
	return r;
}

/*
 * Take every descriptor a control message carried into @fds (at most @cap;
 * any beyond are closed). Return: how many arrived (all of them counted).
 */
static size_t take_fds(struct msghdr *msg, int *fds, size_t cap)
{
	size_t n_fds = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n_fds < cap)
				fds[n_fds] = fd;
			else
				close(fd);
			n_fds++;
		}
	}
	return n_fds;
}

int handover_recv(int fd, struct handover_msg *m, int *got_fd, int timeout_ms)
{
	uint8_t *buf = malloc(HANDOVER_MAX_MSG);
	/* Room for one more than any message may carry, to see a sender that sends too many. */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE((HANDOVER_SESSION_FDS + 1) * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = HANDOVER_MAX_MSG };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	int fds[HANDOVER_SESSION_FDS + 1];
	size_t n_fds = 0;
	ssize_t n = 0;
	int r;

	*got_fd = -1;
	memset(m, 0, sizeof(*m));
	if (!buf)
		return -ENOMEM;
	for (bool reset = false;;) {
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0)
			break;
		n = 0;
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
	n_fds = take_fds(&msg, fds, PGKTLS_ARRAY_SIZE(fds));
	if (n == 0 && n_fds == 0) {
		r = -ECONNRESET;	/* every message has a header: 0 bytes is EOF */
		goto out;
	}
	/* Cut bytes or cut descriptors (the kernel closed those it could not pass): refused. */
	r = msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC) ? -EBADMSG
						     : handover_decode(buf, (size_t)n, m);
	if (r == 0 && n_fds != handover_fds_expected(m))
		r = -EBADMSG;
	if (r == 0 && m->type == HANDOVER_SESSION) {
		uint8_t *copy = malloc(m->u.session.len);

		if (!copy) {
			r = -ENOMEM;
		} else {
			memcpy(copy, m->u.session.payload, m->u.session.len);
			m->u.session.payload = copy;
			memcpy(m->u.session.fds, fds, n_fds * sizeof(int));
			n_fds = 0;	/* the message owns them now */
		}
	} else if (r == 0 && n_fds == 1) {
		*got_fd = fds[0];
		n_fds = 0;
	}
	if (r < 0) {
		uint16_t version = m->version, type = m->type;

		/* Nothing to release on an error, but a refusal needs the version and type. */
		memset(m, 0, sizeof(*m));
		m->version = version;
		m->type = type;
		for (size_t i = 0; type == HANDOVER_SESSION && i < HANDOVER_SESSION_FDS; i++)
			m->u.session.fds[i] = -1;	/* so handover_msg_fini() closes none */
	}
	for (size_t i = 0; i < n_fds && i < PGKTLS_ARRAY_SIZE(fds); i++)
		close(fds[i]);
out:
	OPENSSL_cleanse(buf, n > 0 ? (size_t)n : 0);
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
	if ((r = handover_size_buffers(sv[0])) < 0 || (r = handover_size_buffers(sv[1])) < 0)
		goto err;
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
