// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_handover.c - the upgrade handover protocol: every message type round
 * trips; the header is checked (magic, length); another version is reported
 * as such with its type, so a new binary can refuse it; bad payloads are
 * refused; a refusal's text is made printable; descriptors cross a real
 * SOCK_SEQPACKET pair with SCM_RIGHTS (and a datagram with two is refused);
 * EOF and timeouts are told apart; handover_spawn() runs a child that finds
 * its end through the environment. Version 2: the session messages round
 * trip and every malformed form is refused; a version-1 conversation still
 * decodes (a new process answers an older hello in its version); a SESSION
 * carries 1 to 4 descriptors and a full-size state across a real pair, and
 * on every error each descriptor that came is closed (no fd leaks: checked
 * with fcntl(F_GETFD) on the numbers the kernel would have used).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/compiler.h"
#include "pgktls/handover.h"
#include "testlib.h"

static struct handover_msg msg(uint16_t type)
{
	return (struct handover_msg){ .version = HANDOVER_VERSION, .type = type };
}

static void roundtrip(const struct handover_msg *in, struct handover_msg *out)
{
	uint8_t buf[512];
	ssize_t n = handover_encode(buf, sizeof(buf), in);

	ck_assert_int_gt(n, HANDOVER_HDR_LEN - 1);
	ck_assert_int_eq(handover_decode(buf, (size_t)n, out), 0);
	ck_assert_uint_eq(out->version, HANDOVER_VERSION);
	ck_assert_uint_eq(out->type, in->type);
}

START_TEST(test_roundtrip_all)
{
	struct handover_msg in, out;

	in = msg(HANDOVER_HELLO);
	in.u.hello.pid = 4242;
	in.u.hello.features = 0;
	in.u.hello.listeners = 7;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.hello.pid, 4242);
	ck_assert_uint_eq(out.u.hello.listeners, 7);

	in = msg(HANDOVER_ACCEPT);
	in.u.accept.pid = 0xdeadbeef;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.accept.pid, 0xdeadbeef);

	in = msg(HANDOVER_REFUSE);
	in.u.refuse.reason = HANDOVER_R_VERSION;
	in.u.refuse.version = 9;
	snprintf(in.u.refuse.text, sizeof(in.u.refuse.text), "speaks version 9");
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.refuse.reason, HANDOVER_R_VERSION);
	ck_assert_uint_eq(out.u.refuse.version, 9);
	ck_assert_str_eq(out.u.refuse.text, "speaks version 9");

	in = msg(HANDOVER_LISTENER);
	in.u.listener.kind = HANDOVER_L_METRICS;
	in.u.listener.index = 3;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.listener.kind, HANDOVER_L_METRICS);
	ck_assert_uint_eq(out.u.listener.index, 3);

	in = msg(HANDOVER_LISTENERS_END);
	in.u.listeners_end.count = 12;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.listeners_end.count, 12);

	in = msg(HANDOVER_READY);
	in.u.ready.pid = 77;
	in.u.ready.listeners = 12;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.ready.pid, 77);
	ck_assert_uint_eq(out.u.ready.listeners, 12);

	in = msg(HANDOVER_COMMIT);
	roundtrip(&in, &out);

	in = msg(HANDOVER_STATUS);
	in.u.status.draining = 200;
	in.u.status.moved = 31;
	in.u.status.kept = 4;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.status.draining, 200);
	ck_assert_uint_eq(out.u.status.moved, 31);
	ck_assert_uint_eq(out.u.status.kept, 4);

	in = msg(HANDOVER_SESSION_ACK);
	in.u.session_ack.id = 0x0102030405060708ull;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.session_ack.id, 0x0102030405060708ull);

	in = msg(HANDOVER_SESSION_NACK);
	in.u.session_nack.id = 99;
	in.u.session_nack.reason = HANDOVER_N_UNSUPPORTED;
	snprintf(in.u.session_nack.text, sizeof(in.u.session_nack.text), "unknown tag 0x8001");
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.session_nack.id, 99);
	ck_assert_uint_eq(out.u.session_nack.reason, HANDOVER_N_UNSUPPORTED);
	ck_assert_str_eq(out.u.session_nack.text, "unknown tag 0x8001");

	in = msg(HANDOVER_SESSIONS_END);
	in.u.sessions_end.count = 200;
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.sessions_end.count, 200);
}
END_TEST

/* A SESSION decodes to a view of its payload, byte for byte. */
START_TEST(test_session_roundtrip)
{
	uint8_t state[300], buf[512];
	struct handover_msg in = msg(HANDOVER_SESSION), out;
	ssize_t n;

	for (size_t i = 0; i < sizeof(state); i++)
		state[i] = (uint8_t)(i * 7);
	in.u.session.id = 0xfedcba9876543210ull;
	in.u.session.payload = state;
	in.u.session.len = sizeof(state);
	in.u.session.n_fds = 3;
	n = handover_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(n, HANDOVER_HDR_LEN + HANDOVER_SESSION_FIXED + sizeof(state));
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), 0);
	ck_assert_uint_eq(out.u.session.id, 0xfedcba9876543210ull);
	ck_assert_uint_eq(out.u.session.n_fds, 3);
	ck_assert_uint_eq(out.u.session.len, sizeof(state));
	ck_assert_mem_eq(out.u.session.payload, state, sizeof(state));
	ck_assert_ptr_eq(out.u.session.payload, buf + HANDOVER_HDR_LEN + HANDOVER_SESSION_FIXED);
	ck_assert_int_eq(out.u.session.fds[0], -1);
	/* Too small a buffer, and what the encoder will not write. */
	ck_assert_int_eq(handover_encode(buf, (size_t)n - 1, &in), -ENOSPC);
	in.u.session.n_fds = 0;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
	in.u.session.n_fds = HANDOVER_SESSION_FDS + 1;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
	in.u.session.n_fds = 1;
	in.u.session.len = 0;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
	in.u.session.len = HANDOVER_SESSION_MAX + 1;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
}
END_TEST

/* Encode @in into @buf and return its length (asserted to work). */
static size_t enc(uint8_t *buf, size_t len, const struct handover_msg *in)
{
	ssize_t n = handover_encode(buf, len, in);

	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

/* Rewrite the header's length field after a test changed the datagram's size. */
static void set_len(uint8_t *buf, size_t total)
{
	uint32_t plen = (uint32_t)(total - HANDOVER_HDR_LEN);

	buf[8] = (uint8_t)plen;
	buf[9] = (uint8_t)(plen >> 8);
	buf[10] = (uint8_t)(plen >> 16);
	buf[11] = (uint8_t)(plen >> 24);
}

/* Every malformed form of the session messages: short, long, reserved bytes, bad values. */
START_TEST(test_session_malformed)
{
	const size_t p = HANDOVER_HDR_LEN;
	uint8_t state[16] = { 1, 2, 3 }, buf[512];
	struct handover_msg in = msg(HANDOVER_SESSION), out;
	size_t n;

	in.u.session.payload = state;
	in.u.session.len = sizeof(state);
	in.u.session.n_fds = 2;
	n = enc(buf, sizeof(buf), &in);
	/* Fd count 0 or above HANDOVER_SESSION_FDS; each reserved byte. */
	buf[p + 8] = 0;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
	buf[p + 8] = HANDOVER_SESSION_FDS + 1;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
	buf[p + 8] = 2;
	for (size_t i = 9; i < HANDOVER_SESSION_FIXED; i++) {
		buf[p + i] = 1;
		ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
		buf[p + i] = 0;
	}
	ck_assert_int_eq(handover_decode(buf, n, &out), 0);
	/* No payload at all; shorter than the fixed part. */
	set_len(buf, p + HANDOVER_SESSION_FIXED);
	ck_assert_int_eq(handover_decode(buf, p + HANDOVER_SESSION_FIXED, &out), -EBADMSG);
	set_len(buf, p + HANDOVER_SESSION_FIXED - 1);
	ck_assert_int_eq(handover_decode(buf, p + HANDOVER_SESSION_FIXED - 1, &out), -EBADMSG);

	/* ACK, SESSIONS_END: one byte short and one long. */
	in = msg(HANDOVER_SESSION_ACK);
	n = enc(buf, sizeof(buf), &in);
	set_len(buf, n - 1);
	ck_assert_int_eq(handover_decode(buf, n - 1, &out), -EBADMSG);
	buf[n] = 0;
	set_len(buf, n + 1);
	ck_assert_int_eq(handover_decode(buf, n + 1, &out), -EBADMSG);
	in = msg(HANDOVER_SESSIONS_END);
	n = enc(buf, sizeof(buf), &in);
	set_len(buf, n - 1);
	ck_assert_int_eq(handover_decode(buf, n - 1, &out), -EBADMSG);
	buf[n] = 0;
	set_len(buf, n + 1);
	ck_assert_int_eq(handover_decode(buf, n + 1, &out), -EBADMSG);

	/* NACK: text length against the datagram, reserved bytes, too long a text. */
	in = msg(HANDOVER_SESSION_NACK);
	snprintf(in.u.session_nack.text, sizeof(in.u.session_nack.text), "a\nb");
	n = enc(buf, sizeof(buf), &in);
	ck_assert_int_eq(handover_decode(buf, n, &out), 0);
	ck_assert_str_eq(out.u.session_nack.text, "a?b");	/* printable for the log */
	buf[p + 12] = 4;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
	buf[p + 12] = 3;
	buf[p + 14] = 1;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
	buf[p + 14] = 0;
	buf[p + 15] = 1;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
	buf[p + 15] = 0;
	set_len(buf, p + 15);
	ck_assert_int_eq(handover_decode(buf, p + 15, &out), -EBADMSG);
	memset(buf + p + 16, 'x', HANDOVER_TEXT_MAX + 1);
	buf[p + 12] = (uint8_t)(HANDOVER_TEXT_MAX + 1);
	buf[p + 13] = 0;
	set_len(buf, p + 16 + HANDOVER_TEXT_MAX + 1);
	ck_assert_int_eq(handover_decode(buf, p + 16 + HANDOVER_TEXT_MAX + 1, &out), -EBADMSG);
}
END_TEST

/*
 * Version 1 is still spoken (a phase-1 process's hello is answered in its
 * version): its STATUS is the short one, and the session types do not exist
 * in it, neither to decode nor to encode.
 */
START_TEST(test_version1)
{
	struct handover_msg in = msg(HANDOVER_STATUS), out;
	uint8_t buf[512];
	size_t n;

	in.version = 1;
	in.u.status.draining = 7;
	in.u.status.moved = 5;	/* not in version 1: dropped */
	n = enc(buf, sizeof(buf), &in);
	ck_assert_uint_eq(n, HANDOVER_HDR_LEN + 4);
	ck_assert_int_eq(handover_decode(buf, n, &out), 0);
	ck_assert_uint_eq(out.version, 1);
	ck_assert_uint_eq(out.u.status.draining, 7);
	ck_assert_uint_eq(out.u.status.moved, 0);
	/* A version-2 STATUS relabelled as version 1 is the wrong size. */
	in.version = 2;
	n = enc(buf, sizeof(buf), &in);
	buf[4] = 1;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EBADMSG);
	/* The session types in version 1: unknown to decode, refused to encode. */
	in = msg(HANDOVER_SESSIONS_END);
	n = enc(buf, sizeof(buf), &in);
	buf[4] = 1;
	ck_assert_int_eq(handover_decode(buf, n, &out), -ENOMSG);
	in.version = 1;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
	/* Version 0 is no version. */
	in = msg(HANDOVER_COMMIT);
	n = enc(buf, sizeof(buf), &in);
	buf[4] = 0;
	ck_assert_int_eq(handover_decode(buf, n, &out), -EPROTONOSUPPORT);
}
END_TEST

/* Is @fd open in this process? */
static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/*
 * The lowest free descriptor numbers: where the kernel puts what arrives by
 * SCM_RIGHTS. If they are still free after a refused message, nothing leaked.
 */
static void free_fd_numbers(int *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(out[i], 0);
	}
	for (size_t i = 0; i < n; i++)
		close(out[i]);
}

/* Send @len bytes of @buf with @n descriptors of @fds, bypassing handover_send()'s checks. */
static void raw_send(int sock, const uint8_t *buf, size_t len, const int *fds, size_t n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} control = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	ck_assert_uint_le(n, 8);
	if (n) {
		struct cmsghdr *cm;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(sock, &mh, 0), (ssize_t)len);
}

/*
 * A SESSION with 1 to 4 descriptors crosses a real pair: each is the same
 * open file on the other side, in order; the payload is the message's own
 * copy. handover_msg_fini() closes what was not taken.
 */
START_TEST(test_session_fds)
{
	uint8_t state[64];
	int sv[2], pipes[HANDOVER_SESSION_FDS][2], got;
	struct handover_msg in = msg(HANDOVER_SESSION), out;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	for (size_t i = 0; i < HANDOVER_SESSION_FDS; i++)
		ck_assert_int_eq(pipe2(pipes[i], O_CLOEXEC), 0);
	memset(state, 0xa5, sizeof(state));
	in.u.session.payload = state;
	in.u.session.len = sizeof(state);
	for (uint8_t k = 1; k <= HANDOVER_SESSION_FDS; k++) {
		int saved[HANDOVER_SESSION_FDS];

		in.u.session.id = 1000 + k;
		in.u.session.n_fds = k;
		for (size_t i = 0; i < k; i++)
			in.u.session.fds[i] = pipes[i][1];
		ck_assert_int_eq(handover_send(sv[0], &in, -1, 1000), 0);
		ck_assert_int_eq(handover_recv(sv[1], &out, &got, 1000), 0);
		ck_assert_int_eq(got, -1);
		ck_assert_uint_eq(out.type, HANDOVER_SESSION);
		ck_assert_uint_eq(out.u.session.id, 1000 + k);
		ck_assert_uint_eq(out.u.session.n_fds, k);
		ck_assert_mem_eq(out.u.session.payload, state, sizeof(state));
		for (size_t i = 0; i < k; i++) {
			char c = 0;

			ck_assert_int_ge(out.u.session.fds[i], 0);
			ck_assert_int_eq(fcntl(out.u.session.fds[i], F_GETFD) & FD_CLOEXEC,
					 FD_CLOEXEC);
			ck_assert_int_eq(write(out.u.session.fds[i], &"0123"[i], 1), 1);
			ck_assert_int_eq(read(pipes[i][0], &c, 1), 1);
			ck_assert_int_eq(c, "0123"[i]);
			saved[i] = out.u.session.fds[i];
		}
		for (size_t i = k; i < HANDOVER_SESSION_FDS; i++)
			ck_assert_int_eq(out.u.session.fds[i], -1);
		handover_msg_fini(&out);
		for (size_t i = 0; i < k; i++)
			ck_assert(!fd_open(saved[i]));
		handover_msg_fini(&out);	/* twice: harmless */
	}
	/* A SESSION with a descriptor besides its own, or none of its own: not sent. */
	ck_assert_int_eq(handover_send(sv[0], &in, pipes[0][0], 1000), -EINVAL);
	in.u.session.n_fds = 0;
	ck_assert_int_eq(handover_send(sv[0], &in, -1, 1000), -EINVAL);
	for (size_t i = 0; i < HANDOVER_SESSION_FDS; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * Every wrong descriptor count is refused and closes every descriptor that
 * came: a SESSION with fewer or more than it says (5: more than any message
 * may carry), a LISTENER with none, a message that carries none with one,
 * and a malformed SESSION with its descriptors.
 */
START_TEST(test_session_bad_fds)
{
	static const struct {
		uint16_t type;
		uint8_t says;	/* a SESSION's fd count */
		size_t sends;
		bool corrupt;	/* a reserved byte set: a decode error */
	} cases[] = {
		{ HANDOVER_SESSION, 2, 1, false },
		{ HANDOVER_SESSION, 2, 3, false },
		{ HANDOVER_SESSION, 1, 0, false },
		{ HANDOVER_SESSION, 4, 5, false },
		{ HANDOVER_SESSION, 4, 7, false },
		{ HANDOVER_SESSION, 2, 2, true },
		{ HANDOVER_LISTENER, 0, 0, false },
		{ HANDOVER_SESSIONS_END, 0, 1, false },
		{ HANDOVER_SESSION_ACK, 0, 2, false },
	};
	uint8_t state[8] = { 0 }, buf[512];
	int sv[2], fds[8], probe[8], got;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(fds); i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (size_t c = 0; c < PGKTLS_ARRAY_SIZE(cases); c++) {
		struct handover_msg in = msg(cases[c].type), out;
		size_t n;

		if (in.type == HANDOVER_SESSION) {
			in.u.session.payload = state;
			in.u.session.len = sizeof(state);
			in.u.session.n_fds = cases[c].says;
		} else if (in.type == HANDOVER_LISTENER) {
			in.u.listener.kind = HANDOVER_L_TCP;
		}
		n = enc(buf, sizeof(buf), &in);
		if (cases[c].corrupt)
			buf[HANDOVER_HDR_LEN + 10] = 1;
		raw_send(sv[0], buf, n, fds, cases[c].sends);
		free_fd_numbers(probe, PGKTLS_ARRAY_SIZE(probe));
		ck_assert_msg(handover_recv(sv[1], &out, &got, 1000) == -EBADMSG, "case %zu", c);
		ck_assert_int_eq(got, -1);
		handover_msg_fini(&out);	/* nothing to release, and nothing wrongly closed */
		for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(probe); i++)
			ck_assert_msg(!fd_open(probe[i]), "case %zu: fd %d leaked", c, probe[i]);
		for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(fds); i++)
			ck_assert(fd_open(fds[i]));
	}
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(fds); i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * A full-size SESSION (HANDOVER_SESSION_MAX of state) fits one datagram on a
 * pair sized by handover_size_buffers(); without the sizing it would not on
 * a default kernel (EMSGSIZE), which is why handover_spawn() sizes both ends.
 */
START_TEST(test_session_full_size)
{
	struct handover_msg in = msg(HANDOVER_SESSION), out;
	uint8_t *state = malloc(HANDOVER_SESSION_MAX);
	int sv[2], p[2], got, sndbuf = 0;
	socklen_t len = sizeof(sndbuf);

	ck_assert_ptr_nonnull(state);
	for (size_t i = 0; i < HANDOVER_SESSION_MAX; i++)
		state[i] = (uint8_t)(i * 31 + 7);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	in.u.session.id = 7;
	in.u.session.payload = state;
	in.u.session.len = HANDOVER_SESSION_MAX;
	in.u.session.n_fds = 1;
	in.u.session.fds[0] = p[0];
	/* The measurement behind the sizing: an unsized pair's default is too small. */
	ck_assert_int_eq(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
	if ((size_t)sndbuf < HANDOVER_MAX_MSG + 32)
		ck_assert_int_eq(handover_send(sv[0], &in, -1, 1000), -EMSGSIZE);
	ck_assert_int_eq(handover_size_buffers(sv[0]), 0);
	ck_assert_int_eq(handover_size_buffers(sv[1]), 0);
	len = sizeof(sndbuf);
	ck_assert_int_eq(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
	ck_assert_uint_gt((size_t)sndbuf, HANDOVER_MAX_MSG + 32);
	ck_assert_int_eq(handover_send(sv[0], &in, -1, 1000), 0);
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 1000), 0);
	ck_assert_uint_eq(out.u.session.len, HANDOVER_SESSION_MAX);
	ck_assert_mem_eq(out.u.session.payload, state, HANDOVER_SESSION_MAX);
	handover_msg_fini(&out);
	/* One byte more is not sent. */
	in.u.session.len = HANDOVER_SESSION_MAX + 1;
	ck_assert_int_eq(handover_send(sv[0], &in, -1, 1000), -EINVAL);
	free(state);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Cut control data (a receiver-side MSG_CTRUNC) is refused: shown with a too-small buffer. */
START_TEST(test_ctrunc)
{
	struct handover_msg in = msg(HANDOVER_SESSION), out;
	uint8_t state[4] = { 9 };
	int sv[2], fds[HANDOVER_SESSION_FDS + 3], probe[12], got;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(fds); i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	in.u.session.payload = state;
	in.u.session.len = sizeof(state);
	in.u.session.n_fds = HANDOVER_SESSION_FDS;
	{
		uint8_t buf[64];
		size_t n = enc(buf, sizeof(buf), &in);

		/* More descriptors than handover_recv() has room for: the kernel cuts them. */
		raw_send(sv[0], buf, n, fds, PGKTLS_ARRAY_SIZE(fds));
	}
	free_fd_numbers(probe, PGKTLS_ARRAY_SIZE(probe));
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 1000), -EBADMSG);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(probe); i++)
		ck_assert_msg(!fd_open(probe[i]), "fd %d leaked", probe[i]);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(fds); i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The frozen header, byte by byte: what any future version must still read. */
START_TEST(test_wire_format)
{
	static const uint8_t want[] = { 'P', 'K', 'H', 'O', HANDOVER_VERSION, 0, 6, 0, 8, 0, 0, 0,
					0x04, 0x03, 0x02, 0x01, 2, 0, 0, 0 };
	struct handover_msg in = msg(HANDOVER_READY);
	uint8_t buf[64];

	in.u.ready.pid = 0x01020304;
	in.u.ready.listeners = 2;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	/* Too small a buffer: nothing half-written is claimed. */
	ck_assert_int_eq(handover_encode(buf, sizeof(want) - 1, &in), -ENOSPC);
}
END_TEST

START_TEST(test_bad_header)
{
	struct handover_msg in = msg(HANDOVER_STATUS), out;
	uint8_t buf[64];
	ssize_t n = handover_encode(buf, sizeof(buf), &in);

	ck_assert_int_eq(handover_decode(buf, (size_t)n - 1, &out), -EBADMSG);	/* length */
	ck_assert_int_eq(handover_decode(buf, 3, &out), -EBADMSG);		/* short */
	buf[0] = 'X';
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EBADMSG);	/* magic */
}
END_TEST

/* A version we do not speak: the type is still known, to refuse with the right reason. */
START_TEST(test_other_version)
{
	struct handover_msg in = msg(HANDOVER_HELLO), out;
	uint8_t buf[64];
	ssize_t n = handover_encode(buf, sizeof(buf), &in);
	uint16_t v, t;

	buf[4] = HANDOVER_VERSION + 1;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EPROTONOSUPPORT);
	ck_assert_uint_eq(out.version, HANDOVER_VERSION + 1);
	ck_assert_uint_eq(out.type, HANDOVER_HELLO);
	ck_assert_int_eq(handover_decode_header(buf, (size_t)n, &v, &t), 0);
	ck_assert_uint_eq(v, HANDOVER_VERSION + 1);
	/* And we never write one. */
	in.version = HANDOVER_VERSION + 1;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
}
END_TEST

START_TEST(test_bad_payloads)
{
	struct handover_msg in, out;
	uint8_t buf[512];
	ssize_t n;

	/* An unknown type in our version. */
	in = msg(HANDOVER_COMMIT);
	n = handover_encode(buf, sizeof(buf), &in);
	buf[6] = 42;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -ENOMSG);
	/* A payload of the wrong size (a STATUS with a COMMIT's empty payload). */
	buf[6] = HANDOVER_STATUS;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EBADMSG);
	/* A listener of an unknown kind, and reserved bytes that are not zero. */
	in = msg(HANDOVER_LISTENER);
	in.u.listener.kind = HANDOVER_L_TCP;
	n = handover_encode(buf, sizeof(buf), &in);
	buf[HANDOVER_HDR_LEN] = 99;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EBADMSG);
	buf[HANDOVER_HDR_LEN] = HANDOVER_L_TCP;
	buf[HANDOVER_HDR_LEN + 2] = 1;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EBADMSG);
	in.u.listener.kind = 0;
	ck_assert_int_eq(handover_encode(buf, sizeof(buf), &in), -EINVAL);
	/* A refusal whose text length disagrees with the datagram. */
	in = msg(HANDOVER_REFUSE);
	snprintf(in.u.refuse.text, sizeof(in.u.refuse.text), "abc");
	n = handover_encode(buf, sizeof(buf), &in);
	buf[HANDOVER_HDR_LEN + 6] = 4;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EBADMSG);
}
END_TEST

/* A refusal's text goes to the old process's log: control bytes do not. */
START_TEST(test_refuse_text_printable)
{
	struct handover_msg in = msg(HANDOVER_REFUSE), out;
	uint8_t buf[512];
	ssize_t n;

	snprintf(in.u.refuse.text, sizeof(in.u.refuse.text), "a\nb\x1b[2Jc");
	n = handover_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), 0);
	ck_assert_str_eq(out.u.refuse.text, "a?b?[2Jc");
	/* Longer than HANDOVER_TEXT_MAX: cut, not refused. */
	memset(in.u.refuse.text, 'x', HANDOVER_TEXT_MAX);
	in.u.refuse.text[HANDOVER_TEXT_MAX] = '\0';
	n = handover_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), 0);
	ck_assert_uint_eq(strlen(out.u.refuse.text), HANDOVER_TEXT_MAX);
}
END_TEST

/* A descriptor crosses the pair and is the same open file on the other side. */
START_TEST(test_send_recv_fd)
{
	struct handover_msg in = msg(HANDOVER_LISTENER), out;
	int sv[2], p[2], got = -2;
	char c = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(pipe(p), 0);
	in.u.listener.kind = HANDOVER_L_TCP;
	in.u.listener.index = 5;
	ck_assert_int_eq(handover_send(sv[0], &in, p[1], 1000), 0);
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 1000), 0);
	ck_assert_uint_eq(out.type, HANDOVER_LISTENER);
	ck_assert_uint_eq(out.u.listener.index, 5);
	ck_assert_int_ge(got, 0);
	ck_assert_int_ne(got, p[1]);
	ck_assert_int_eq(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(write(got, "z", 1), 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 'z');
	close(got);
	/* Nothing waiting: a timeout, then EOF once the peer is gone. */
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 0), -EAGAIN);
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 20), -ETIMEDOUT);
	close(sv[0]);
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 1000), -ECONNRESET);
	ck_assert_int_eq(got, -1);
	ck_assert_int_eq(handover_send(sv[1], &in, -1, 100), -EPIPE);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * The new process refuses and exits without reading our hello: the kernel
 * reports ECONNRESET first, yet the refusal behind it must still be read.
 */
START_TEST(test_refusal_after_unread)
{
	struct handover_msg hello = msg(HANDOVER_HELLO), no = msg(HANDOVER_REFUSE), out;
	int sv[2], got;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(handover_send(sv[0], &hello, -1, 1000), 0);
	no.u.refuse.reason = HANDOVER_R_START;
	snprintf(no.u.refuse.text, sizeof(no.u.refuse.text), "bad config");
	ck_assert_int_eq(handover_send(sv[1], &no, -1, 1000), 0);
	close(sv[1]);	/* our hello unread */
	ck_assert_int_eq(handover_recv(sv[0], &out, &got, 1000), 0);
	ck_assert_uint_eq(out.type, HANDOVER_REFUSE);
	ck_assert_str_eq(out.u.refuse.text, "bad config");
	ck_assert_int_eq(handover_recv(sv[0], &out, &got, 1000), -ECONNRESET);
	close(sv[0]);
}
END_TEST

/* A datagram with two descriptors is refused, and neither is left open. */
START_TEST(test_recv_two_fds)
{
	struct handover_msg in = msg(HANDOVER_LISTENER), out;
	uint8_t buf[64];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} control = { 0 };
	struct iovec iov = { .iov_base = buf };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm;
	int sv[2], p[2], got;
	char c;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(pipe(p), 0);
	in.u.listener.kind = HANDOVER_L_TCP;
	iov.iov_len = (size_t)handover_encode(buf, sizeof(buf), &in);
	cm = CMSG_FIRSTHDR(&mh);
	ck_assert_ptr_nonnull(cm);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), p, sizeof(p));
	ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t)iov.iov_len);
	close(p[0]);
	ck_assert_int_eq(handover_recv(sv[1], &out, &got, 1000), -EBADMSG);
	ck_assert_int_eq(got, -1);
	/* Both received copies are closed: the pipe's read end is gone, so a write fails. */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(write(p[1], &c, 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The child finds its end through the environment and answers on it. */
START_TEST(test_spawn)
{
	static char sh[] = "/bin/sh", dash_c[] = "-c",
		    script[] = "[ -n \"$" HANDOVER_ENV_FD "\" ] && printf x >&$" HANDOVER_ENV_FD;
	char *const argv[] = { sh, dash_c, script, NULL };
	struct handover_msg out;
	int fd, got, status;
	pid_t pid;

	ck_assert_int_eq(handover_spawn("/bin/sh", argv, &pid, &fd), 0);
	ck_assert_int_gt(pid, 0);
	/* One byte is no message: the decoder refuses it. */
	ck_assert_int_eq(handover_recv(fd, &out, &got, 5000), -EBADMSG);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(handover_recv(fd, &out, &got, 1000), -ECONNRESET);
	close(fd);
	/* A binary that does not exist: exit 127, and EOF on the pair. */
	ck_assert_int_eq(handover_spawn("/nonexistent/pgktls", argv, &pid, &fd), 0);
	ck_assert_int_eq(handover_recv(fd, &out, &got, 5000), -ECONNRESET);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127);
	close(fd);
}
END_TEST

START_TEST(test_child_fd)
{
	int sv[2], p[2], fd;
	char num[16];

	unsetenv(HANDOVER_ENV_FD);
	ck_assert_int_eq(handover_child_fd(), -ENOENT);
	setenv(HANDOVER_ENV_FD, "x1", 1);
	ck_assert_int_eq(handover_child_fd(), -EINVAL);
	ck_assert_ptr_null(getenv(HANDOVER_ENV_FD));	/* unset, whatever it said */
	ck_assert_int_eq(pipe(p), 0);
	snprintf(num, sizeof(num), "%d", p[0]);
	setenv(HANDOVER_ENV_FD, num, 1);
	ck_assert_int_eq(handover_child_fd(), -ENOTSOCK);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	snprintf(num, sizeof(num), "%d", sv[1]);
	setenv(HANDOVER_ENV_FD, num, 1);
	fd = handover_child_fd();
	ck_assert_int_eq(fd, sv[1]);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	ck_assert_ptr_null(getenv(HANDOVER_ENV_FD));
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

static Suite *handover_suite(void)
{
	Suite *s = suite_create("handover");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_roundtrip_all);
	tcase_add_test(tc, test_wire_format);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_other_version);
	tcase_add_test(tc, test_bad_payloads);
	tcase_add_test(tc, test_refuse_text_printable);
	tcase_add_test(tc, test_send_recv_fd);
	tcase_add_test(tc, test_refusal_after_unread);
	tcase_add_test(tc, test_recv_two_fds);
	tcase_add_test(tc, test_spawn);
	tcase_add_test(tc, test_child_fd);
	tcase_add_test(tc, test_session_roundtrip);
	tcase_add_test(tc, test_session_malformed);
	tcase_add_test(tc, test_version1);
	tcase_add_test(tc, test_session_fds);
	tcase_add_test(tc, test_session_bad_fds);
	tcase_add_test(tc, test_session_full_size);
	tcase_add_test(tc, test_ctrunc);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(handover_suite());
}
