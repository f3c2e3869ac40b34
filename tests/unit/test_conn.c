/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_conn.c - the connection state machine's decisions that need no sockets:
 * which close reason a hop failure is counted under.
 */
#include "config.h"

#include "pgktls/conn.h"

#include <errno.h>

#include "testlib.h"

/*
 * Only a KeyUpdate the kernel cannot follow is key_update. A malformed
 * KeyUpdate, or any other failure whose log text names a KeyUpdate, is the
 * failing peer's error: the reason comes from the code, never the text.
 */
START_TEST(test_hop_failure_reason)
{
	static const int others[] = { -EPROTO, -EBADMSG, -ENOBUFS, -ECONNRESET, -EPIPE, -EIO,
				      -ENOMEM, -EINVAL };

	ck_assert_int_eq(conn_hop_failure_reason(true, -EKEYREJECTED), CONN_CLOSE_KEYUPDATE);
	ck_assert_int_eq(conn_hop_failure_reason(false, -EKEYREJECTED), CONN_CLOSE_KEYUPDATE);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(others); i++) {
		ck_assert_int_eq(conn_hop_failure_reason(true, others[i]),
				 CONN_CLOSE_CLIENT_ERROR);
		ck_assert_int_eq(conn_hop_failure_reason(false, others[i]),
				 CONN_CLOSE_SERVER_ERROR);
	}
	ck_assert_str_eq(conn_close_reason_name(conn_hop_failure_reason(true, -EPROTO)),
			 "client_error");
	ck_assert_str_eq(conn_close_reason_name(conn_hop_failure_reason(false, -EKEYREJECTED)),
			 "key_update");
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("reasons");

	tcase_add_test(tc, test_hop_failure_reason);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(conn_suite());
}
