// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_sdlisten.c - socket activation: LISTEN_PID / LISTEN_FDS parsing (not
 * for us, malformed, too many), the checks on each inherited fd (not a
 * socket, not TCP, not listening), and sdlisten_take() on real sockets.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/sdlisten.h"
#include "testlib.h"

static char err[512];

START_TEST(test_parse_not_activated)
{
	size_t n = 99;

	ck_assert_int_eq(sdlisten_parse(NULL, NULL, 100, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_str_eq(err, "");
	/* LISTEN_PID alone (no sockets) is nothing either. */
	ck_assert_int_eq(sdlisten_parse("100", NULL, 100, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_parse_ok)
{
	size_t n = 0;

	ck_assert_int_eq(sdlisten_parse("4242", "2", 4242, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(sdlisten_parse("4242", "0", 4242, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(sdlisten_parse("4242", "64", 4242, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, SDLISTEN_MAX);
}
END_TEST

START_TEST(test_parse_wrong_pid)
{
	size_t n = 99;

	/* Meant for another process (inherited through a shell): ignored, with a note. */
	ck_assert_int_eq(sdlisten_parse("4243", "2", 4242, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(strstr(err, "for process 4243, not this one (4242)"));
	ck_assert_int_eq(sdlisten_parse(NULL, "2", 4242, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(strstr(err, "without LISTEN_PID"));
}
END_TEST

START_TEST(test_parse_malformed)
{
	static const char *const bad_pid[] = { "", "0", "-5", "12x", " 12", "abc",
					       "99999999999999999999" };
	static const char *const bad_count[] = { "", "-1", "two", "2 ", "+2", "65",
						 "18446744073709551616" };
	size_t n;

	for (size_t i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++) {
		n = 99;
		ck_assert_int_eq(sdlisten_parse(bad_pid[i], "1", 7, &n, err, sizeof(err)), -EINVAL);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_nonnull(strstr(err, "LISTEN_PID"));
	}
	for (size_t i = 0; i < sizeof(bad_count) / sizeof(bad_count[0]); i++) {
		n = 99;
		ck_assert_int_eq(sdlisten_parse("7", bad_count[i], 7, &n, err, sizeof(err)),
				 -EINVAL);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_nonnull(strstr(err, "LISTEN_FDS"));
	}
}
END_TEST

/* A TCP socket on 127.0.0.1, listening or not, blocking, without CLOEXEC. */
static int tcp_socket(bool listening)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

START_TEST(test_check_listening_tcp)
{
	int fd = tcp_socket(true);

	ck_assert_int_eq(sdlisten_check_fd(fd, err, sizeof(err)), 0);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}
END_TEST

START_TEST(test_check_not_socket)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(sdlisten_check_fd(p[0], err, sizeof(err)), -ENOTSOCK);
	ck_assert_ptr_nonnull(strstr(err, "is not a socket"));
	close(p[0]);
	close(p[1]);
	/* A closed descriptor (LISTEN_FDS larger than what was passed). */
	ck_assert_int_eq(sdlisten_check_fd(p[0], err, sizeof(err)), -EBADF);
}
END_TEST

START_TEST(test_check_not_listening)
{
	int fd = tcp_socket(false);

	ck_assert_int_eq(sdlisten_check_fd(fd, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not listening"));
	close(fd);
}
END_TEST

START_TEST(test_check_not_tcp)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	/* UDP (ListenDatagram=). */
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	ck_assert_int_eq(sdlisten_check_fd(fd, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_ptr_nonnull(strstr(err, "not a TCP socket"));
	close(fd);
	/* A listening unix socket (ListenStream=/path): no kTLS there. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(un.sun_path, sizeof(un.sun_path), "%s/s", testlib_tmpdir());
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(sdlisten_check_fd(fd, err, sizeof(err)), -EPROTONOSUPPORT);
	close(fd);
	unlink(un.sun_path);
}
END_TEST

/*
 * The inherited range starts at FIRST here, not 3: check's own files may sit
 * at low numbers. place() puts @fd at FIRST + @i.
 */
#define FIRST 200

static void place(int fd, int i)
{
	ck_assert_int_eq(dup2(fd, FIRST + i), FIRST + i);
	close(fd);
}

static void set_env(const char *pid, const char *fds, const char *names)
{
	char self[32];

	snprintf(self, sizeof(self), "%ld", (long)getpid());
	ck_assert_int_eq(setenv("LISTEN_PID", pid ? pid : self, 1), 0);
	ck_assert_int_eq(setenv("LISTEN_FDS", fds, 1), 0);
	if (names)
		ck_assert_int_eq(setenv("LISTEN_FDNAMES", names, 1), 0);
	else
		unsetenv("LISTEN_FDNAMES");
}

static void assert_env_unset(void)
{
	ck_assert_ptr_null(getenv("LISTEN_PID"));
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
	ck_assert_ptr_null(getenv("LISTEN_FDNAMES"));
}

START_TEST(test_take_two_sockets)
{
	struct sdlisten sd;
	int a = tcp_socket(true), b = tcp_socket(true);

	place(a, 0);
	place(b, 1);
	set_env(NULL, "2", "pgktls.socket:second");
	ck_assert_int_eq(sdlisten_take(&sd, FIRST, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(sd.n, 2);
	ck_assert_int_eq(sd.fds[0], FIRST);
	ck_assert_int_eq(sd.fds[1], FIRST + 1);
	ck_assert_str_eq(sd.names[0], "pgktls.socket");
	ck_assert_str_eq(sd.names[1], "second");
	ck_assert(fcntl(FIRST, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(FIRST + 1, F_GETFL) & O_NONBLOCK);
	assert_env_unset();
	sdlisten_fini(&sd);
	ck_assert_int_eq(fcntl(FIRST, F_GETFD), -1);	/* closed */
}
END_TEST

START_TEST(test_take_fewer_names)
{
	struct sdlisten sd;
	int a = tcp_socket(true), b = tcp_socket(true);

	place(a, 0);
	place(b, 1);
	set_env(NULL, "2", "only");
	ck_assert_int_eq(sdlisten_take(&sd, FIRST, err, sizeof(err)), 0);
	ck_assert_str_eq(sd.names[0], "only");
	ck_assert_str_eq(sd.names[1], "");
	sdlisten_fini(&sd);
}
END_TEST

START_TEST(test_take_wrong_pid)
{
	struct sdlisten sd;

	set_env("1", "2", "x:y");
	ck_assert_int_eq(sdlisten_take(&sd, FIRST, err, sizeof(err)), 0);
	ck_assert_uint_eq(sd.n, 0);
	ck_assert_ptr_nonnull(strstr(err, "not this one"));
	assert_env_unset();
	sdlisten_fini(&sd);
}
END_TEST

START_TEST(test_take_bad_fd)
{
	struct sdlisten sd;
	int p[2];

	/* The first fd a pipe: the daemon must refuse to start, naming the socket. */
	ck_assert_int_eq(pipe(p), 0);
	place(p[0], 0);
	set_env(NULL, "1", "pgktls.socket");
	ck_assert_int_eq(sdlisten_take(&sd, FIRST, err, sizeof(err)), -ENOTSOCK);
	ck_assert_ptr_nonnull(strstr(err, "socket 1 of 1 from systemd ('pgktls.socket')"));
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	assert_env_unset();
	sdlisten_fini(&sd);
	/* A malformed count: refused too, and the variables are gone all the same. */
	set_env(NULL, "many", NULL);
	ck_assert_int_eq(sdlisten_take(&sd, FIRST, err, sizeof(err)), -EINVAL);
	assert_env_unset();
	sdlisten_fini(&sd);
	close(p[1]);
}
END_TEST

static Suite *sdlisten_suite(void)
{
	Suite *s = suite_create("sdlisten");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_not_activated);
	tcase_add_test(tc, test_parse_ok);
	tcase_add_test(tc, test_parse_wrong_pid);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_check_listening_tcp);
	tcase_add_test(tc, test_check_not_socket);
	tcase_add_test(tc, test_check_not_listening);
	tcase_add_test(tc, test_check_not_tcp);
	tcase_add_test(tc, test_take_two_sockets);
	tcase_add_test(tc, test_take_fewer_names);
	tcase_add_test(tc, test_take_wrong_pid);
	tcase_add_test(tc, test_take_bad_fd);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(sdlisten_suite());
}
