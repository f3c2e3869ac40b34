// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_handover.c - the upgrade handover protocol: every message type round
 * trips; the header is checked (magic, length); another version is reported
 * as such with its type, so a new binary can refuse it; bad payloads are
 * refused; a refusal's text is made printable; descriptors cross a real
 * SOCK_SEQPACKET pair with SCM_RIGHTS (and a datagram with two is refused);
 * EOF and timeouts are told apart; handover_spawn() runs a child that finds
 * its end through the environment.
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
	roundtrip(&in, &out);
	ck_assert_uint_eq(out.u.status.draining, 200);
}
END_TEST

/* The frozen header, byte by byte: what any future version must still read. */
START_TEST(test_wire_format)
{
	static const uint8_t want[] = { 'P', 'K', 'H', 'O', 1, 0, 6, 0, 8, 0, 0, 0,
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

	buf[4] = 2;
	ck_assert_int_eq(handover_decode(buf, (size_t)n, &out), -EPROTONOSUPPORT);
	ck_assert_uint_eq(out.version, 2);
	ck_assert_uint_eq(out.type, HANDOVER_HELLO);
	ck_assert_int_eq(handover_decode_header(buf, (size_t)n, &v, &t), 0);
	ck_assert_uint_eq(v, 2);
	/* And we never write one. */
	in.version = 2;
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
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(handover_suite());
}
