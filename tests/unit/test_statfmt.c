// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_statfmt.c - the text renderers of a stats document (statfmt.c):
 * Prometheus text and OpenMetrics (families, HELP and TYPE lines, labels),
 * the table pgktls-stat prints, and both fed with recorded netlink replies
 * of a NIC that does the crypto.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pgktls/nl.h"
#include "pgktls/statfmt.h"
#include "pgktls/statjson.h"
#include "pgktls/statsnap.h"
#include "statdoc.h"
#include "testlib.h"

static char *render_text(const cJSON *doc, bool prom, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	*rc = prom ? statfmt_prometheus(doc, false, f) : statfmt_table(doc, f);
	fclose(f);
	return text;
}

static char *render_om(const cJSON *doc, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	*rc = statfmt_prometheus(doc, true, f);
	fclose(f);
	return text;
}

static void has_line(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	ck_assert_msg(strstr(text, want) != NULL, "missing line '%s' in:\n%s", line, text);
}

/*
 * What both exposition formats require of the whole text: one TYPE per
 * family, before its samples, and each family's samples together (a sample
 * belongs to the last TYPE whose name prefixes it).
 */
static void families_ok(const char *text, bool om)
{
	char seen[128][128], cur[128] = "";
	size_t n_seen = 0;

	for (const char *line = text, *nl; *line; line = nl + 1) {
		char name[128];

		nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		if (!strncmp(line, "# TYPE ", 7)) {
			ck_assert_int_eq(sscanf(line + 7, "%127s", name), 1);
			for (size_t i = 0; i < n_seen; i++)
				ck_assert_msg(strcmp(seen[i], name), "second TYPE for %s", name);
			ck_assert(n_seen < 128);
			strcpy(seen[n_seen++], name);
			strcpy(cur, name);
			if (om)
				ck_assert_msg(!strstr(name, "_total"), "OpenMetrics family %s",
					      name);
			continue;
		}
		if (*line == '#')
			continue;
		ck_assert_int_eq(sscanf(line, "%127[a-z_]", name), 1);
		ck_assert_msg(*cur && !strncmp(name, cur, strlen(cur)),
			      "sample %s outside its family (after TYPE %s)", name, cur);
	}
}

START_TEST(test_prometheus)
{
	struct statsnap s;
	cJSON *doc;
	char *text;
	int rc;

	statdoc_snapshot(&s, true);
	doc = statjson_render(&s, STATJSON_ALL, 0);
	text = render_text(doc, true, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert(!strncmp(text, "# HELP pgktls_up ", 17));
	has_line(text, "pgktls_info{version=\"9.9\"} 1");
	has_line(text, "pgktls_uptime_seconds 61");
	has_line(text, "# TYPE pgktls_conns_accepted_total counter");
	has_line(text, "# HELP pgktls_conns_accepted_total client connections accepted");
	has_line(text, "pgktls_conns_accepted_total 7");
	has_line(text, "pgktls_connections_active 2");
	has_line(text, "pgktls_connections_closed_by_reason_total{reason=\"tls_required\"} 1");
	has_line(text, "pgktls_tls_handshake_failures_total{hop=\"client\",reason=\"verify\"} 1");
	has_line(text, "# TYPE pgktls_client_tls_handshake_seconds histogram");
	has_line(text, "pgktls_client_tls_handshake_seconds_bucket{le=\"0.001\"} 2");
	has_line(text, "pgktls_client_tls_handshake_seconds_bucket{le=\"0.025\"} 5");
	has_line(text, "pgktls_client_tls_handshake_seconds_bucket{le=\"+Inf\"} 6");
	has_line(text, "pgktls_client_tls_handshake_seconds_sum 6.0999999999999996");
	has_line(text, "pgktls_client_tls_handshake_seconds_count 6");
	has_line(text, "pgktls_tls_versions_in_use{hop=\"client\",version=\"TLSv1.3\"} 1");
	has_line(text, "pgktls_ktls_directions{engine=\"kernel_sw\"} 1");
	has_line(text, "pgktls_ktls_engaged_total{hop=\"client\",direction=\"rx\"} 5");
	has_line(text,
		 "pgktls_ktls_direction_fallbacks_total{hop=\"server\",direction=\"tx\","
		 "reason=\"no_kernel\"} 2");
	has_line(text, "pgktls_hop_bytes_total{hop=\"server\",direction=\"rx\"} 5000");
	has_line(text, "pgktls_config_reloads_total{result=\"failed\"} 3");
	has_line(text, "pgktls_metrics_scrapes_total 11");
	has_line(text, "pgktls_metrics_requests_refused_total{reason=\"timeout\"} 2");
	has_line(text, "pgktls_metrics_requests_refused_total{reason=\"method_not_allowed\"} 0");
	has_line(text, "pgktls_kernel_ktls_available 1");
	has_line(text, "pgktls_kernel_tls_stat{counter=\"TlsTxSw\"} 9");
	has_line(text, "pgktls_nic_tls_feature{interface=\"lo\",feature=\"tls-hw-tx-offload\","
		       "state=\"active\"} 1");
	/* Every sample line is NAME[{LABELS}] VALUE; every metric has a TYPE first. */
	for (char *line = text, *nl; *line; line = nl + 1) {
		char name[128];

		nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		if (*line == '#')
			continue;
		ck_assert_int_eq(sscanf(line, "%127[a-z_]", name), 1);
		ck_assert(strchr(line, ' ') != NULL);
	}
	families_ok(text, false);
	ck_assert(!strstr(text, "# EOF"));
	free(text);

	/* OpenMetrics: the same samples, families named without _total, # EOF last. */
	text = render_om(doc, &rc);
	ck_assert_int_eq(rc, 0);
	families_ok(text, true);
	has_line(text, "# TYPE pgktls_conns_accepted counter");
	has_line(text, "pgktls_conns_accepted_total 7");
	has_line(text, "# TYPE pgktls info");
	has_line(text, "pgktls_info{version=\"9.9\"} 1");
	has_line(text, "# TYPE pgktls_client_tls_handshake_seconds histogram");
	has_line(text, "pgktls_hop_bytes_total{hop=\"server\",direction=\"rx\"} 5000");
	ck_assert(strlen(text) > 6 && !strcmp(text + strlen(text) - 6, "# EOF\n"));
	ck_assert(strstr(text, "# EOF") == text + strlen(text) - 6);
	free(text);
	cJSON_Delete(doc);
	/* An error document is refused. */
	doc = statjson_error("bad_request", "x");
	text = render_text(doc, true, &rc);
	ck_assert_int_eq(rc, -EINVAL);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_table)
{
	struct statsnap s;
	cJSON *doc;
	char *text;
	int rc;

	statdoc_snapshot(&s, true);
	doc = statjson_render(&s, STATJSON_ALL, 0);
	text = render_text(doc, false, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(strstr(text, "pgktls 9.9, pid 1234, up 1m01s, 2 workers"));
	ck_assert_ptr_nonnull(strstr(text,
				     "2 active, 7 accepted, 5 closed (done 4, tls_required 1)"));
	ck_assert_ptr_nonnull(strstr(text, "TLSv1.3 kernel_sw/kernel_nic"));
	ck_assert_ptr_nonnull(strstr(text, "TLSv1.3 userspace(no_kernel)/userspace(no_kernel)"));
	ck_assert_ptr_nonnull(strstr(text, "\n11     127.0.0.1:40000        relay"));
	ck_assert_ptr_nonnull(strstr(text, "nic          lo: tls-hw-tx on"));
	free(text);
	cJSON_Delete(doc);
}
END_TEST

static size_t load_data(const char *name, void *buf, size_t len)
{
	return testlib_read_data(TOP_SRCDIR, name, buf, len);
}

/*
 * What pgktls-stat shows for a hop whose NIC does the crypto, from the
 * kernel's replies (tests/data/synth-*: a TLS 1.2 socket with TXCONF and
 * RXCONF TLS_CONF_HW, and an interface with tls-hw-tx/rx-offload on) through
 * the parsers, the document and both renderers.
 */
START_TEST(test_render_nic_offload)
{
	static char reply[NL_REPLY_MAX];
	struct statsnap s;
	struct statsnap_hop *h;
	char *text;
	cJSON *doc;
	size_t n;
	int rc;

	statdoc_snapshot(&s, true);
	h = &s.conns[0].client;
	snprintf(h->version, sizeof(h->version), "TLSv1.2");
	n = load_data("synth-diag-tls12-hw.nl", reply, sizeof(reply));
	ck_assert_int_eq(nl_diag_parse(reply, n, 0, &h->kernel), 0);
	n = load_data("synth-ethtool-eth0-tls-hw.nl", reply, sizeof(reply));
	snprintf(s.ifaces[0].name, sizeof(s.ifaces[0].name), "eth0");
	ck_assert_int_eq(nl_ethtool_parse(reply, n, 0, &s.ifaces[0].nic), 0);

	doc = statjson_render(&s, STATJSON_ALL, 0);
	ck_assert_str_eq(jstr(doc, "connections.0.client.rx.engine"), "kernel_nic");
	ck_assert_str_eq(jstr(doc, "connections.0.client.tx.engine"), "kernel_nic");
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.rxconf"), "hw");
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.txconf"), "hw");
	ck_assert_str_eq(jstr(doc, "connections.0.client.kernel.version"), "TLSv1.2");
	ck_assert(cJSON_IsTrue(jget(doc, "connections.0.client.kernel.zc_ro_tx")));
	ck_assert(cJSON_IsFalse(jget(doc, "connections.0.client.kernel.rx_no_pad")));
	ck_assert_str_eq(jstr(doc, "kernel.interfaces.0.name"), "eth0");
	ck_assert(cJSON_IsTrue(jget(doc, "kernel.interfaces.0.features.tls-hw-rx-offload.active")));
	ck_assert(cJSON_IsTrue(jget(doc, "kernel.interfaces.0.features.tls-hw-record.supported")));
	ck_assert(cJSON_IsFalse(jget(doc, "kernel.interfaces.0.features.tls-hw-record.active")));
	statdoc_validate(doc);

	text = render_text(doc, false, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(text, "TLSv1.2 kernel_nic/kernel_nic") != NULL, "table:\n%s", text);
	has_line(text, "nic          eth0: tls-hw-tx on, tls-hw-rx on, tls-hw-record off");
	free(text);
	text = render_text(doc, true, &rc);
	ck_assert_int_eq(rc, 0);
	has_line(text, "pgktls_nic_tls_feature{interface=\"eth0\",feature=\"tls-hw-tx-offload\","
		       "state=\"active\"} 1");
	has_line(text, "pgktls_nic_tls_feature{interface=\"eth0\",feature=\"tls-hw-rx-offload\","
		       "state=\"active\"} 1");
	has_line(text, "pgktls_nic_tls_feature{interface=\"eth0\",feature=\"tls-hw-record\","
		       "state=\"supported\"} 1");
	has_line(text, "pgktls_nic_tls_feature{interface=\"eth0\",feature=\"tls-hw-record\","
		       "state=\"active\"} 0");
	free(text);
	cJSON_Delete(doc);
}
END_TEST

static Suite *statfmt_suite(void)
{
	Suite *s = suite_create("statfmt");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_prometheus);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_render_nic_offload);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(statfmt_suite());
}
