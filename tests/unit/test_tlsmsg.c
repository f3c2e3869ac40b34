// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_tlsmsg.c - the post-handshake rules, one by one: who may send which
 * message under which version, KeyUpdate's form and place, alert levels
 * and closure alerts, the run of ignored warnings, one answer for a burst of
 * KeyUpdate requests, nothing due after our close_notify.
 */
#include "config.h"

#include "pgktls/tlsmsg.h"

#include "testlib.h"

/* Peers: a TLS 1.3 server or client, a TLS 1.2 server or client. */
#define S13 true, true
#define C13 true, false
#define S12 false, true
#define C12 false, false

static enum tlsmsg_kind hs(bool tls13, bool peer_is_server, const uint8_t *rec, size_t len,
			   struct tlsmsg_event *ev)
{
	struct tlsmsg m;

	tlsmsg_init(&m, tls13, peer_is_server);
	return tlsmsg_handshake(&m, rec, len, ev);
}

static enum tlsmsg_kind alert(bool tls13, bool peer_is_server, uint8_t level, uint8_t desc,
			      struct tlsmsg_event *ev)
{
	const uint8_t a[2] = { level, desc };
	struct tlsmsg m;

	tlsmsg_init(&m, tls13, peer_is_server);
	return tlsmsg_alert(&m, a, 2, ev);
}

/* A minimal well-formed TLS 1.3 NewSessionTicket: empty nonce, 1-byte ticket, no extensions. */
static const uint8_t ticket[] = { 4, 0, 0, 14, 0, 0, 0, 60, 1, 2, 3, 4, 0, 0, 1, 0xaa, 0, 0 };

START_TEST(test_ticket_only_from_tls13_server)
{
	struct tlsmsg_event ev;
	uint8_t two[2 * sizeof(ticket)];

	ck_assert_int_eq(hs(S13, ticket, sizeof(ticket), &ev), TLSMSG_NONE);
	ck_assert_uint_eq(ev.tickets, 1);
	memcpy(two, ticket, sizeof(ticket));
	memcpy(two + sizeof(ticket), ticket, sizeof(ticket));
	ck_assert_int_eq(hs(S13, two, sizeof(two), &ev), TLSMSG_NONE);
	ck_assert_uint_eq(ev.tickets, 2);
	/* From a client, or under TLS 1.2 after the handshake: unexpected_message. */
	ck_assert_int_eq(hs(C13, ticket, sizeof(ticket), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
	ck_assert_int_eq(hs(S12, ticket, sizeof(ticket), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
}
END_TEST

START_TEST(test_ticket_form)
{
	uint8_t t[sizeof(ticket) + 1];
	struct tlsmsg_event ev;

	/* Empty ticket field (ticket<1..2^16-1>). */
	memcpy(t, ticket, sizeof(ticket));
	t[3] = 13;
	t[13] = 0;
	t[14] = 0;
	t[15] = 0;
	t[16] = 0;
	ck_assert_int_eq(hs(S13, t, 4 + 13, &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	/* A trailing byte after the extensions. */
	memcpy(t, ticket, sizeof(ticket));
	t[3] = 15;
	t[sizeof(ticket)] = 0;
	ck_assert_int_eq(hs(S13, t, sizeof(t), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	/* A body of 8 bytes: no nonce length. */
	memcpy(t, ticket, 12);
	t[3] = 8;
	ck_assert_int_eq(hs(S13, t, 12, &ev), TLSMSG_MALFORMED);
}
END_TEST

START_TEST(test_key_update)
{
	static const uint8_t req[] = { 24, 0, 0, 1, 1 }, noreq[] = { 24, 0, 0, 1, 0 };
	static const uint8_t bad_val[] = { 24, 0, 0, 1, 2 }, long_body[] = { 24, 0, 0, 2, 0, 0 };
	static const uint8_t then_more[] = { 24, 0, 0, 1, 0, 24, 0, 0, 1, 0 };
	struct tlsmsg_event ev;
	uint8_t after_ticket[sizeof(ticket) + 5];
	struct tlsmsg m;

	tlsmsg_init(&m, C13);
	ck_assert_int_eq(tlsmsg_handshake(&m, noreq, sizeof(noreq), &ev), TLSMSG_KEY_UPDATE);
	ck_assert(!tlsmsg_answer_due(&m));
	ck_assert_int_eq(tlsmsg_handshake(&m, req, sizeof(req), &ev), TLSMSG_KEY_UPDATE);
	ck_assert(tlsmsg_answer_due(&m));
	ck_assert_int_eq(hs(S12, req, sizeof(req), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
	ck_assert_int_eq(hs(S13, bad_val, sizeof(bad_val), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_ILLEGAL_PARAMETER);
	ck_assert_int_eq(hs(S13, long_body, sizeof(long_body), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	/* A KeyUpdate must end its record (RFC 8446 5.1). */
	ck_assert_int_eq(hs(S13, then_more, sizeof(then_more), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
	/* Behind a ticket in the same record it is fine. */
	memcpy(after_ticket, ticket, sizeof(ticket));
	memcpy(after_ticket + sizeof(ticket), req, sizeof(req));
	ck_assert_int_eq(hs(S13, after_ticket, sizeof(after_ticket), &ev), TLSMSG_KEY_UPDATE);
	ck_assert_uint_eq(ev.tickets, 1);
}
END_TEST

/* Several requests while we are silent: one answer (RFC 8446 4.6.3). */
START_TEST(test_one_answer_for_a_burst)
{
	static const uint8_t req[] = { 24, 0, 0, 1, 1 };
	struct tlsmsg_event ev;
	struct tlsmsg m;

	tlsmsg_init(&m, S13);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(tlsmsg_handshake(&m, req, sizeof(req), &ev), TLSMSG_KEY_UPDATE);
	ck_assert(tlsmsg_answer_due(&m));
	tlsmsg_answer_sent(&m);
	ck_assert(!tlsmsg_answer_due(&m));
	ck_assert_int_eq(tlsmsg_handshake(&m, req, sizeof(req), &ev), TLSMSG_KEY_UPDATE);
	ck_assert(tlsmsg_answer_due(&m));
	/* Our close_notify went out: the peer's keys are followed, nothing is answered. */
	tlsmsg_close_sent(&m);
	ck_assert(!tlsmsg_answer_due(&m));
	ck_assert_int_eq(tlsmsg_handshake(&m, req, sizeof(req), &ev), TLSMSG_KEY_UPDATE);
	ck_assert(!tlsmsg_answer_due(&m));
	ck_assert(tlsmsg_tx_closed(&m));
}
END_TEST

START_TEST(test_renegotiation_by_direction)
{
	static const uint8_t hello_req[] = { 0, 0, 0, 0 }, client_hello[] = { 1, 0, 0, 2, 3, 3 };
	static const uint8_t hello_req_body[] = { 0, 0, 0, 1, 0 };
	struct tlsmsg_event ev;

	ck_assert_int_eq(hs(S12, hello_req, sizeof(hello_req), &ev), TLSMSG_RENEGOTIATION);
	ck_assert_int_eq(hs(C12, client_hello, sizeof(client_hello), &ev), TLSMSG_RENEGOTIATION);
	/* The wrong side, or TLS 1.3. */
	ck_assert_int_eq(hs(C12, hello_req, sizeof(hello_req), &ev), TLSMSG_MALFORMED);
	ck_assert_int_eq(hs(S12, client_hello, sizeof(client_hello), &ev), TLSMSG_MALFORMED);
	ck_assert_int_eq(hs(S13, hello_req, sizeof(hello_req), &ev), TLSMSG_MALFORMED);
	ck_assert_int_eq(hs(C13, client_hello, sizeof(client_hello), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
	ck_assert_int_eq(hs(S12, hello_req_body, sizeof(hello_req_body), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
}
END_TEST

START_TEST(test_handshake_framing)
{
	static const uint8_t cut[] = { 4, 0, 0 }, overlong[] = { 4, 0, 0, 9, 1 };
	static const uint8_t unknown[] = { 20, 0, 0, 0 };
	struct tlsmsg_event ev;

	ck_assert_int_eq(hs(S13, NULL, 0, &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
	ck_assert_int_eq(hs(S13, cut, sizeof(cut), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	ck_assert_int_eq(hs(S13, overlong, sizeof(overlong), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	ck_assert_int_eq(hs(S13, unknown, sizeof(unknown), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
}
END_TEST

START_TEST(test_closure_alerts)
{
	static const uint8_t three[] = { 1, 0, 0 };
	struct tlsmsg_event ev;
	struct tlsmsg m;

	ck_assert_int_eq(alert(S13, 1, 0, &ev), TLSMSG_CLOSE_NOTIFY);
	ck_assert_int_eq(alert(C13, 2, 0, &ev), TLSMSG_CLOSE_NOTIFY);
	ck_assert_int_eq(alert(C12, 1, 0, &ev), TLSMSG_CLOSE_NOTIFY);
	/* TLS 1.2: a fatal close_notify is a fatal alert, as for OpenSSL. */
	ck_assert_int_eq(alert(C12, 2, 0, &ev), TLSMSG_PEER_ALERT);
	ck_assert_int_eq(alert(C13, 3, 0, &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_ILLEGAL_PARAMETER);
	tlsmsg_init(&m, C13);
	ck_assert_int_eq(tlsmsg_alert(&m, three, sizeof(three), &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	ck_assert_int_eq(tlsmsg_alert(&m, three, 1, &ev), TLSMSG_MALFORMED);
	ck_assert_uint_eq(ev.alert, TLSMSG_AD_DECODE_ERROR);
	/* TLS 1.3 user_canceled, either level: a closure alert, ignored (close_notify follows). */
	ck_assert_int_eq(alert(C13, 1, 90, &ev), TLSMSG_NONE);
	ck_assert_int_eq(alert(C13, 2, 90, &ev), TLSMSG_NONE);
}
END_TEST

START_TEST(test_other_alerts)
{
	struct tlsmsg_event ev;

	/* TLS 1.3: every alert but the closure ones is fatal, whatever its level. */
	ck_assert_int_eq(alert(C13, 1, 100, &ev), TLSMSG_PEER_ALERT);
	ck_assert_uint_eq(ev.alert, 100);
	ck_assert_uint_eq(ev.level, 1);
	ck_assert_int_eq(alert(S13, 2, 20, &ev), TLSMSG_PEER_ALERT);
	/* TLS 1.2: warnings are ignored, fatal alerts are fatal. */
	ck_assert_int_eq(alert(C12, 1, 90, &ev), TLSMSG_NONE);
	ck_assert_int_eq(alert(C12, 1, 100, &ev), TLSMSG_NONE);
	ck_assert_int_eq(alert(S12, 1, 45, &ev), TLSMSG_NONE);
	ck_assert_int_eq(alert(S12, 2, 45, &ev), TLSMSG_PEER_ALERT);
	ck_assert_uint_eq(ev.alert, 45);
}
END_TEST

/* Ignored warnings: at most TLSMSG_MAX_WARNINGS - 1 in a row; data resets the run. */
START_TEST(test_warning_run)
{
	static const uint8_t warn12[] = { 1, 90 };
	struct tlsmsg_event ev;
	struct tlsmsg m;
	int i;

	for (int v = 0; v < 2; v++) {
		tlsmsg_init(&m, v == 0, false);
		for (i = 0; i < TLSMSG_MAX_WARNINGS - 1; i++)
			ck_assert_int_eq(tlsmsg_alert(&m, warn12, 2, &ev), TLSMSG_NONE);
		tlsmsg_data(&m);
		for (i = 0; i < TLSMSG_MAX_WARNINGS - 1; i++)
			ck_assert_int_eq(tlsmsg_alert(&m, warn12, 2, &ev), TLSMSG_NONE);
		ck_assert_int_eq(tlsmsg_alert(&m, warn12, 2, &ev), TLSMSG_MALFORMED);
		ck_assert_uint_eq(ev.alert, TLSMSG_AD_UNEXPECTED_MESSAGE);
	}
}
END_TEST

START_TEST(test_alert_names)
{
	ck_assert_str_eq(tlsmsg_alert_name(20), "bad_record_mac");
	ck_assert_str_eq(tlsmsg_alert_name(90), "user_canceled");
	ck_assert_str_eq(tlsmsg_alert_name(255), "unknown");
}
END_TEST

static Suite *tlsmsg_suite(void)
{
	Suite *s = suite_create("tlsmsg");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, test_ticket_only_from_tls13_server);
	tcase_add_test(tc, test_ticket_form);
	tcase_add_test(tc, test_key_update);
	tcase_add_test(tc, test_one_answer_for_a_burst);
	tcase_add_test(tc, test_renegotiation_by_direction);
	tcase_add_test(tc, test_handshake_framing);
	tcase_add_test(tc, test_closure_alerts);
	tcase_add_test(tc, test_other_alerts);
	tcase_add_test(tc, test_warning_run);
	tcase_add_test(tc, test_alert_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(tlsmsg_suite());
}
