// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_statsrv.c - the stats endpoint without a daemon: request parsing,
 * the JSON document from a hand-made snapshot (validated against
 * docs/stats.schema.json), the Prometheus and table renderers (also fed
 * with recorded netlink replies of a NIC that does the crypto), and the
 * socket server itself (permissions, errors, a scraper that never reads).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <linux/tls.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pgktls/conn.h"
#include "pgktls/ev.h"
#include "pgktls/statfmt.h"
#include "pgktls/statjson.h"
#include "pgktls/statsnap.h"
#include "pgktls/statsrv.h"
#include "testlib.h"

START_TEST(test_parse_request)
{
	enum statsrv_what w;
	uint64_t id;
	char err[160];

#define OK(s, want)                                                                     \
	do {                                                                            \
		ck_assert_int_eq(statsrv_parse_request(s, strlen(s), &w, &id, err,      \
						       sizeof(err)),                     \
				 0);                                                    \
		ck_assert_int_eq(w, want);                                              \
	} while (0)
#define BAD(s) ck_assert_int_eq(statsrv_parse_request(s, sizeof(s) - 1, &w, &id, err, sizeof(err)), \
				-EINVAL)
	OK("", STATSRV_ALL);
	OK("\n", STATSRV_ALL);
	OK("all\r\n", STATSRV_ALL);
	OK("  totals \n", STATSRV_TOTALS);
	OK("connections", STATSRV_CONNECTIONS);
	OK("connection 42\n", STATSRV_CONNECTION);
	ck_assert_uint_eq(id, 42);
	OK("connection\t 18446744073709551615", STATSRV_CONNECTION);
	ck_assert_uint_eq(id, UINT64_MAX);
	BAD("connection");
	BAD("connection 0");
	BAD("connection -1");
	BAD("connection 12x");
	BAD("connection 18446744073709551616");
	BAD("connectionsx");
	BAD("TOTALS");
	BAD("all\nall");
	BAD("tot\0als");
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
	{
		char big[400];

		memset(big, 'a', sizeof(big));
		ck_assert_int_eq(statsrv_parse_request(big, sizeof(big), &w, &id, err, sizeof(err)),
				 -EINVAL);
	}
#undef OK
#undef BAD
}
END_TEST

static void set_in(struct sockaddr_storage *ss, socklen_t *len, const char *ip, int port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &sin->sin_addr);
	*len = sizeof(*sin);
}

/* Two connections: one offloaded both ways (kernel: sw), one in userspace. */
static void fake_snapshot(struct statsnap *s, bool kernel_view)
{
	static struct statsnap_conn conns[2];
	static struct statsnap_iface ifaces[1];
	struct statsnap_conn *c;

	memset(s, 0, sizeof(*s));
	memset(conns, 0, sizeof(conns));
	s->version = "9.9";
	s->pid = 1234;
	s->time_ms = 1700000000000ull;
	s->uptime_ms = 61000;
	s->n_workers = 2;
	s->workers_late = kernel_view ? 0 : 1;
	s->late[0] = 1;
	s->totals.conns_accepted = 7;
	s->totals.conns_active = 2;
	s->totals.conns_closed = 5;
	s->totals.closed_by_reason[CONN_CLOSE_DONE] = 4;
	s->totals.closed_by_reason[CONN_CLOSE_TLS_REQUIRED] = 1;
	s->totals.plaintext_refused = 1;
	s->totals.client_tls_handshakes = 6;
	s->totals.client_tls_failures = 1;
	s->totals.hs_failed[STATS_HOP_CLIENT][STATS_HS_FAIL_VERIFY] = 1;
	s->totals.client_certs_revoked = 1;
	s->totals.hs_latency[0] = 2;	/* <= 1 ms */
	s->totals.hs_latency[4] = 3;	/* <= 25 ms */
	s->totals.hs_latency[STATS_HS_BUCKETS - 1] = 1;	/* > 5 s */
	s->totals.hs_latency_sum_ms = 6100;
	s->totals.bytes_client_to_server = 1000;
	s->totals.bytes_server_to_client = 5000;
	s->totals.ktls_dir_engaged[STATS_HOP_CLIENT][STATS_DIR_RX] = 5;
	s->totals.ktls_dir_fallback[STATS_HOP_SERVER][STATS_DIR_TX][KTLS_R_NO_KERNEL] = 2;
	s->process.reloads_failed = 3;
	s->metrics.enabled = true;
	s->metrics.scrapes = 11;
	s->metrics.refused[STATSNAP_REFUSED_TIMEOUT] = 2;
	s->conns = conns;
	s->n_conns = 2;

	c = &conns[0];
	c->id = 11;
	c->worker = 0;
	c->state = "relay";
	c->age_ms = 1500;
	snprintf(c->client_addr, sizeof(c->client_addr), "127.0.0.1:40000");
	snprintf(c->upstream_addr, sizeof(c->upstream_addr), "127.0.0.1:5432");
	c->bytes_c2s = 100;
	c->bytes_s2c = 200;
	c->client.open = c->client.is_tcp = c->client.tls = c->client.tls_done = true;
	snprintf(c->client.version, sizeof(c->client.version), "TLSv1.3");
	snprintf(c->client.cipher, sizeof(c->client.cipher), "TLS_AES_128_GCM_SHA256");
	snprintf(c->client.alpn, sizeof(c->client.alpn), "postgresql");
	snprintf(c->client.sni, sizeof(c->client.sni), "db.example");
	snprintf(c->client.peer_subject, sizeof(c->client.peer_subject), "/CN=alice \"x\"");
	c->client.peer_verified = true;
	c->client.ktls.rx = c->client.ktls.tx = KTLS_ENGINE_KERNEL;
	set_in(&c->client.local, &c->client.local_len, "127.0.0.1", 6432);
	set_in(&c->client.remote, &c->client.remote_len, "127.0.0.1", 40000);
	if (kernel_view) {
		c->client.kernel.has_ulp = c->client.kernel.tls = true;
		snprintf(c->client.kernel.ulp, sizeof(c->client.kernel.ulp), "tls");
		c->client.kernel.tls_version = TLS_1_3_VERSION;
		c->client.kernel.tls_cipher = TLS_CIPHER_AES_GCM_128;
		c->client.kernel.rxconf = NL_TLS_CONF_SW;
		c->client.kernel.txconf = NL_TLS_CONF_HW;
	} else {
		c->client.kernel_err = -EPERM;
		c->client.kernel_why = "pgktls lacks CAP_NET_ADMIN";
	}
	c->server.open = c->server.is_tcp = c->server.tls = c->server.tls_done = true;
	snprintf(c->server.version, sizeof(c->server.version), "TLSv1.3");
	snprintf(c->server.cipher, sizeof(c->server.cipher), "TLS_AES_256_GCM_SHA384");
	c->server.ktls.rx = c->server.ktls.tx = KTLS_ENGINE_USERSPACE;
	c->server.ktls.rx_reason = c->server.ktls.tx_reason = KTLS_R_NO_KERNEL;
	c->server.kernel_err = -ENODATA;
	c->server.kernel_why = "not offloaded";

	c = &conns[1];
	c->id = 12;
	c->worker = 1;
	c->state = "client_tls";
	snprintf(c->client_addr, sizeof(c->client_addr), "[::1]:40001");
	snprintf(c->upstream_addr, sizeof(c->upstream_addr), "127.0.0.1:5432");
	c->client.open = c->client.is_tcp = c->client.tls = true;	/* handshake running */
	c->client.kernel_err = -ENODATA;
	c->client.kernel_why = "not offloaded";
	c->server.kernel_err = -ENODATA;
	c->server.kernel_why = "hop not connected";

	s->ktls_available = kernel_view;
	s->tls_stat_err = kernel_view ? 0 : -ENOENT;
	s->tls_stat.n = 1;
	snprintf(s->tls_stat.v[0].name, sizeof(s->tls_stat.v[0].name), "TlsTxSw");
	s->tls_stat.v[0].value = 9;
	s->net_admin = kernel_view;
	memset(ifaces, 0, sizeof(ifaces));
	snprintf(ifaces[0].name, sizeof(ifaces[0].name), "lo");
	ifaces[0].nic.hw_tx = ifaces[0].nic.on_tx = kernel_view;
	ifaces[0].err = kernel_view ? 0 : -EOPNOTSUPP;
	s->ifaces = ifaces;
	s->n_ifaces = 1;
}

static const cJSON *jget(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(o))
			o = cJSON_GetArrayItem(o, atoi(tok));
		else
			o = cJSON_GetObjectItemCaseSensitive(o, tok);
	}
	ck_assert_msg(o != NULL, "no %s in the document", path);
	return o;
}

static double jnum(const cJSON *o, const char *path)
{
	const cJSON *n = jget(o, path);

	ck_assert_msg(cJSON_IsNumber(n), "%s is not a number", path);
	return n->valuedouble;
}

static const char *jstr(const cJSON *o, const char *path)
{
	const cJSON *n = jget(o, path);

	ck_assert_msg(cJSON_IsString(n), "%s is not a string", path);
	return n->valuestring;
}

/* Validate @doc against docs/stats.schema.json with python3-jsonschema. */
static void validate(const cJSON *doc)
{
	char path[512], cmd[1024];
	char *text = cJSON_Print(doc);
	FILE *f;
	int rc;

	if (system("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null") != 0) {
		fprintf(stderr, "test_statsrv: python3-jsonschema missing: schema not checked\n");
		cJSON_free(text);
		return;
	}
	snprintf(path, sizeof(path), "%s/doc.json", testlib_tmpdir());
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	cJSON_free(text);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys,jsonschema; "
		 "jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))' "
		 "%s/docs/stats.schema.json %s",
		 TOP_SRCDIR, path);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "the document does not match docs/stats.schema.json (%s)", path);
}

START_TEST(test_render_all)
{
	struct statsnap s;
	cJSON *doc;

	fake_snapshot(&s, true);
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
	validate(doc);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_render_no_kernel)
{
	struct statsnap s;
	cJSON *doc;

	fake_snapshot(&s, false);
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
	validate(doc);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_render_parts)
{
	struct statsnap s;
	cJSON *doc;

	fake_snapshot(&s, true);
	doc = statjson_render(&s, STATJSON_TOTALS, 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "totals"));
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "kernel"));
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "connections"));
	validate(doc);
	cJSON_Delete(doc);
	doc = statjson_render(&s, STATJSON_CONNECTIONS, 0);
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "totals"));
	ck_assert_int_eq(cJSON_GetArraySize(jget(doc, "connections")), 2);
	validate(doc);
	cJSON_Delete(doc);
	doc = statjson_render(&s, STATJSON_CONNECTION, 12);
	ck_assert_int_eq(jnum(doc, "connection.id"), 12);
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "connections"));
	validate(doc);
	cJSON_Delete(doc);
	doc = statjson_render(&s, STATJSON_CONNECTION, 99);
	ck_assert_str_eq(jstr(doc, "error.code"), "not_found");
	ck_assert_str_eq(jstr(doc, "error.message"), "no connection 99");
	validate(doc);
	cJSON_Delete(doc);
}
END_TEST

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

	fake_snapshot(&s, true);
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
	has_line(text,
		 "pgktls_nic_tls_feature{interface=\"lo\",feature=\"tls-hw-tx-offload\",state=\"active\"} 1");
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

	fake_snapshot(&s, true);
	doc = statjson_render(&s, STATJSON_ALL, 0);
	text = render_text(doc, false, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(strstr(text, "pgktls 9.9, pid 1234, up 1m01s, 2 workers"));
	ck_assert_ptr_nonnull(strstr(text, "2 active, 7 accepted, 5 closed (done 4, tls_required 1)"));
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

	fake_snapshot(&s, true);
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
	validate(doc);

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

/* ---- the server, with no workers ---- */

static int connect_to(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == -1) {
		close(fd);
		return -errno;
	}
	return fd;
}

static cJSON *ask(const char *path, const char *req)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	int fd = connect_to(path);

	ck_assert_int_ge(fd, 0);
	if (req)
		ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	ck_assert_msg(len > 0 && buf[len - 1] == '\n', "answer not one line: %s", buf);
	return cJSON_Parse(buf);
}

START_TEST(test_server)
{
	struct statsrv_opts o = { .mode = 0640, .uid = -1, .gid = -1 };
	struct statsrv *srv, *srv2;
	char path[100];
	struct stat st;
	cJSON *doc;
	int idle[3];
	uint64_t t0;

	snprintf(path, sizeof(path), "%s/stats.sock", testlib_tmpdir());
	o.path = path;
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	/* A second server on a live socket is refused, not a takeover. */
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv2), -EADDRINUSE);

	/* Scrapers that connect and never read or write must not hold up others. */
	for (int i = 0; i < 3; i++)
		idle[i] = connect_to(path);
	t0 = ev_monotonic_ms();
	doc = ask(path, "totals\n");
	ck_assert_int_eq(jnum(doc, "workers.count"), 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "totals"));
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "connections"));
	cJSON_Delete(doc);
	ck_assert_uint_lt(ev_monotonic_ms() - t0, 1000);
	doc = ask(path, "connections\nignored second line\n");
	ck_assert_int_eq(cJSON_GetArraySize(jget(doc, "connections")), 0);
	cJSON_Delete(doc);
	doc = ask(path, "bogus\n");
	ck_assert_str_eq(jstr(doc, "error.code"), "bad_request");
	cJSON_Delete(doc);
	/* No request at all (nothing written, not even EOF): the whole document. */
	doc = ask(path, NULL);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "kernel"));
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "connections"));
	validate(doc);
	cJSON_Delete(doc);
	for (int i = 0; i < 3; i++)
		close(idle[i]);
	statsrv_stop(srv);
	ck_assert_int_eq(access(path, F_OK), -1);	/* removed at stop */

	/* A stale socket file (no server behind it) is replaced. */
	{
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
		close(fd);
	}
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), 0);
	doc = ask(path, "all\n");
	ck_assert_int_eq(jnum(doc, "schema"), 1);
	cJSON_Delete(doc);
	statsrv_stop(srv);
}
END_TEST

/* Send @req to @a, read until EOF; the caller frees the answer. */
static char *http_ask(const struct sock_addr *a, const char *req)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 10 };
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(connect(fd, (const struct sockaddr *)&a->ss, a->len), 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while ((n = recv(fd, buf + len, cap - len, 0)) > 0 && len + (size_t)n < cap)
		len += (size_t)n;
	ck_assert_int_eq(n, 0);	/* the server closed after its answer */
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* metrics_listen without a unix socket, on IPv6 loopback when the host has it. */
START_TEST(test_http_server)
{
	struct statsrv_opts o = { .mode = 0640, .uid = -1, .gid = -1 };
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in any4 = { .sin_family = AF_INET };
	struct statsrv *srv, *srv2;
	struct sock_addr a;
	socklen_t alen;
	char listen_at[64], *ans, *body;
	int fd;

	/* A free port: bind to 0, note the port, let it go. */
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	alen = sizeof(any6);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&any6, sizeof(any6)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&any6, &alen) == 0) {
		snprintf(listen_at, sizeof(listen_at), "[::1]:%u", ntohs(any6.sin6_port));
	} else {
		any4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd >= 0)
			close(fd);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		alen = sizeof(any4);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&any4, sizeof(any4)), 0);
		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&any4, &alen), 0);
		snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%u", ntohs(any4.sin_port));
	}
	close(fd);
	ck_assert_int_eq(sock_parse_hostport(listen_at, &a), 0);

	o.metrics_listen = "localhost:9939";
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), -EINVAL);
	o.metrics_listen = listen_at;
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), 0);
	/* No SO_REUSEPORT: a second server on the address fails instead of sharing it. */
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv2), -EADDRINUSE);

	/* A pipelined second request is not answered: one answer, then close. */
	ans = http_ask(&a, "GET /metrics HTTP/1.0\r\n\r\nGET /x HTTP/1.0\r\n\r\n");
	ck_assert_msg(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17), "%s", ans);
	ck_assert(strstr(ans, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	ck_assert(strstr(ans, "\r\nConnection: close\r\n"));
	body = strstr(ans, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	ck_assert(strstr(body, "\npgktls_metrics_scrapes_total 1\n"));
	ck_assert(strstr(body, "\npgktls_workers 0\n"));
	{
		char want[64];

		snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(body));
		ck_assert_msg(strstr(ans, want), "%s", ans);
	}
	free(ans);

	ans = http_ask(&a, "HEAD /metrics HTTP/1.1\r\nHost: h\r\n"
			   "Accept: application/openmetrics-text\r\n\r\n");
	ck_assert(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17));
	ck_assert(strstr(ans, "\r\nContent-Type: application/openmetrics-text; version=1.0.0"));
	body = strstr(ans, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(body, "\r\n\r\n");	/* HEAD: no body */
	free(ans);

	ans = http_ask(&a, "PUT /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert(!strncmp(ans, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
	ck_assert(strstr(ans, "\r\nAllow: GET, HEAD\r\n"));
	free(ans);

	ans = http_ask(&a, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert(strstr(ans, "\npgktls_metrics_scrapes_total 3\n"));
	ck_assert(strstr(ans, "\npgktls_metrics_requests_refused_total"
			      "{reason=\"method_not_allowed\"} 1\n"));
	free(ans);
	statsrv_stop(srv);
}
END_TEST

static Suite *statsrv_suite(void)
{
	Suite *s = suite_create("statsrv");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_parse_request);
	tcase_add_test(tc, test_render_all);
	tcase_add_test(tc, test_render_no_kernel);
	tcase_add_test(tc, test_render_parts);
	tcase_add_test(tc, test_prometheus);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_render_nic_offload);
	tcase_add_test(tc, test_server);
	tcase_add_test(tc, test_http_server);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(statsrv_suite());
}
