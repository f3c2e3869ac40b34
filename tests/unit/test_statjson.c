// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_statjson.c - the stats document (statjson.c) from a hand-made
 * snapshot: every part, the fields that say why the kernel view is
 * missing, errors, and each document validated against
 * docs/stats.schema.json.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pgktls/statjson.h"
#include "pgktls/statsnap.h"
#include "statdoc.h"
#include "testlib.h"

START_TEST(test_render_all)
{
	struct statsnap s;
	cJSON *doc;

	statdoc_snapshot(&s, true);
	doc = statjson_render(&s, STATJSON_ALL, 0);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(jnum(doc, "schema"), 1);
	ck_assert_str_eq(jstr(doc, "version"), "9.9");
	ck_assert_int_eq(jnum(doc, "workers.count"), 2);
	ck_assert_int_eq(cJSON_GetArraySize(jget(doc, "workers.late")), 0);
	ck_assert_int_eq(jnum(doc, "totals.connections.accepted"), 7);
	ck_assert_int_eq(jnum(doc, "totals.connections.active"), 2);
	ck_assert_int_eq(jnum(doc, "totals.connections.closed_by_reason.done"), 4);
	ck_assert_int_eq(jnum(doc, "totals.connections.closed_by_reason.tls_required"), 1);
	ck_assert_int_eq(jnum(doc, "totals.clients.plaintext_refused"), 1);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client.failed_by_reason.verify"), 1);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client.revoked"), 1);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.server.revoked"), 0);
	ck_assert_int_eq(jnum(doc, "totals.counters.client_certs_revoked"), 1);
	/* Buckets are cumulative; the last is +Inf and equals the count. */
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client_latency_ms.buckets.0.count"), 2);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client_latency_ms.buckets.3.count"), 2);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client_latency_ms.buckets.4.count"), 5);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client_latency_ms.buckets.4.le"), 25);
	ck_assert_str_eq(jstr(doc, "totals.handshakes.client_latency_ms.buckets.12.le"), "+Inf");
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client_latency_ms.buckets.12.count"), 6);
	ck_assert_int_eq(jnum(doc, "totals.handshakes.client_latency_ms.count"), 6);
	ck_assert_int_eq(jnum(doc, "totals.bytes.client.rx"), 1000);
	ck_assert_int_eq(jnum(doc, "totals.bytes.server.rx"), 5000);
	ck_assert_int_eq(jnum(doc, "totals.bytes.copied"), 6000);
	ck_assert_int_eq(jnum(doc, "totals.ktls.engaged.client.rx"), 5);
	ck_assert_int_eq(jnum(doc, "totals.ktls.fallbacks.server.tx.no_kernel"), 2);
	ck_assert_int_eq(jnum(doc, "totals.config_reloads.failed"), 3);
	ck_assert(cJSON_IsTrue(jget(doc, "totals.metrics_endpoint.enabled")));
	ck_assert_int_eq(jnum(doc, "totals.metrics_endpoint.refused.timeout"), 2);
	ck_assert_int_eq(jnum(doc, "totals.metrics_endpoint.refused.busy"), 0);
	ck_assert_int_eq(jnum(doc, "totals.metrics_endpoint.scrapes"), 11);
	ck_assert_int_eq(jnum(doc, "totals.counters.conns_accepted"), 7);
	/* From the connections: versions, ciphers, and who does the crypto now. */
	ck_assert_int_eq(cJSON_GetObjectItem(jget(doc, "totals.tls_in_use.client.versions"),
					     "TLSv1.3")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(jget(doc, "totals.tls_in_use.server.ciphers"),
					     "TLS_AES_256_GCM_SHA384")->valueint, 1);
	ck_assert_int_eq(jnum(doc, "totals.ktls.directions_now.kernel_sw"), 1);
	ck_assert_int_eq(jnum(doc, "totals.ktls.directions_now.kernel_nic"), 1);
	ck_assert_int_eq(jnum(doc, "totals.ktls.directions_now.userspace"), 4);
	/* Kernel. */
	ck_assert(cJSON_IsTrue(jget(doc, "kernel.ktls.available")));
	ck_assert(cJSON_IsNull(jget(doc, "kernel.ktls.reason")));
	ck_assert(cJSON_IsTrue(jget(doc, "kernel.sock_diag.available")));
	ck_assert_int_eq(jnum(doc, "kernel.tls_stat.counters.TlsTxSw"), 9);
	ck_assert_str_eq(jstr(doc, "kernel.interfaces.0.name"), "lo");
	ck_assert(cJSON_IsTrue(jget(doc, "kernel.interfaces.0.features.tls-hw-tx-offload.active")));
	ck_assert(cJSON_IsFalse(jget(doc, "kernel.interfaces.0.features.tls-hw-record.supported")));
	/* Connections. */
	ck_assert_int_eq(cJSON_GetArraySize(jget(doc, "connections")), 2);
	ck_assert_int_eq(jnum(doc, "connections.0.id"), 11);
	ck_assert_str_eq(jstr(doc, "connections.0.client.local"), "127.0.0.1:6432");
	ck_assert_str_eq(jstr(doc, "connections.0.client.alpn"), "postgresql");
	ck_assert_str_eq(jstr(doc, "connections.0.client.peer_subject"), "/CN=alice \"x\"");
	ck_assert(cJSON_IsTrue(jget(doc, "connections.0.client.peer_verified")));
	ck_assert(cJSON_IsFalse(jget(doc, "connections.0.server.peer_verified")));
	ck_assert_str_eq(cJSON_GetStringValue(jget(doc, "connections.0.client.record_layer")), "ktls");
	ck_assert_str_eq(cJSON_GetStringValue(jget(doc, "connections.0.server.record_layer")),
			 "tlsrec");
	ck_assert_str_eq(jstr(doc, "connections.0.client.rx.engine"), "kernel_sw");
	ck_assert_str_eq(jstr(doc, "connections.0.client.tx.engine"), "kernel_nic");
	ck_assert(cJSON_IsNull(jget(doc, "connections.0.client.rx.reason")));
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.rxconf"), "sw");
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.txconf"), "hw");
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.cipher"), "aes-gcm-128");
	ck_assert_str_eq(jstr(doc, "connections.0.server.rx.engine"), "userspace");
	ck_assert_str_eq(jstr(doc, "connections.0.server.rx.reason"), "no_kernel");
	ck_assert(cJSON_IsFalse(jget(doc, "connections.0.server.kernel.available")));
	ck_assert_str_eq(jstr(doc, "connections.1.client.rx.reason"), "handshake");
	ck_assert(cJSON_IsNull(jget(doc, "connections.1.client.version")));
	ck_assert(cJSON_IsFalse(jget(doc, "connections.1.server.connected")));
	ck_assert_str_eq(jstr(doc, "connections.1.server.rx.engine"), "none");
	statdoc_validate(doc);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_render_no_kernel)
{
	struct statsnap s;
	cJSON *doc;

	statdoc_snapshot(&s, false);
	doc = statjson_render(&s, STATJSON_ALL, 0);
	ck_assert_int_eq(jnum(doc, "workers.late.0"), 1);
	/* Said, not omitted. */
	ck_assert(cJSON_IsFalse(jget(doc, "kernel.ktls.available")));
	ck_assert_ptr_nonnull(strstr(jstr(doc, "kernel.ktls.reason"), "tls_stat"));
	ck_assert(cJSON_IsFalse(jget(doc, "kernel.sock_diag.available")));
	ck_assert_ptr_nonnull(strstr(jstr(doc, "kernel.sock_diag.reason"), "CAP_NET_ADMIN"));
	ck_assert(cJSON_IsFalse(jget(doc, "kernel.tls_stat.available")));
	ck_assert(cJSON_IsFalse(jget(doc, "kernel.interfaces.0.available")));
	/* pgktls says kernel, the kernel could not confirm. */
	ck_assert_str_eq(jstr(doc, "connections.0.client.rx.engine"), "kernel");
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.reason"),
			 "pgktls lacks CAP_NET_ADMIN");
	statdoc_validate(doc);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_render_parts)
{
	struct statsnap s;
	cJSON *doc;

	statdoc_snapshot(&s, true);
	doc = statjson_render(&s, STATJSON_TOTALS, 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "totals"));
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "kernel"));
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "connections"));
	statdoc_validate(doc);
	cJSON_Delete(doc);
	doc = statjson_render(&s, STATJSON_CONNECTIONS, 0);
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "totals"));
	ck_assert_int_eq(cJSON_GetArraySize(jget(doc, "connections")), 2);
	statdoc_validate(doc);
	cJSON_Delete(doc);
	doc = statjson_render(&s, STATJSON_CONNECTION, 12);
	ck_assert_int_eq(jnum(doc, "connection.id"), 12);
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "connections"));
	statdoc_validate(doc);
	cJSON_Delete(doc);
	doc = statjson_render(&s, STATJSON_CONNECTION, 99);
	ck_assert_str_eq(jstr(doc, "error.code"), "not_found");
	ck_assert_str_eq(jstr(doc, "error.message"), "no connection 99");
	statdoc_validate(doc);
	cJSON_Delete(doc);
}
END_TEST

static Suite *statjson_suite(void)
{
	Suite *s = suite_create("statjson");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_render_all);
	tcase_add_test(tc, test_render_no_kernel);
	tcase_add_test(tc, test_render_parts);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(statjson_suite());
}
