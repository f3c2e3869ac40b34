// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * statdoc.c - the stats unit tests' shared snapshot and document helpers
 * (statdoc.h).
 */
#include "config.h"

#include "statdoc.h"

#include <sys/socket.h>
#include <linux/tls.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/conn.h"
#include "testlib.h"

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
void statdoc_snapshot(struct statsnap *s, bool kernel_view)
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
	c->client.record_layer = "ktls";
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
	c->server.record_layer = "tlsrec";
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
	c->client.record_layer = "openssl";
	c->server.record_layer = "plain";
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

const cJSON *jget(const cJSON *o, const char *path)
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

double jnum(const cJSON *o, const char *path)
{
	const cJSON *n = jget(o, path);

	ck_assert_msg(cJSON_IsNumber(n), "%s is not a number", path);
	return n->valuedouble;
}

const char *jstr(const cJSON *o, const char *path)
{
	const cJSON *n = jget(o, path);

	ck_assert_msg(cJSON_IsString(n), "%s is not a string", path);
	return n->valuestring;
}

/* Validate @doc against docs/stats.schema.json with python3-jsonschema. */
void statdoc_validate(const cJSON *doc)
{
	char path[512], cmd[1024];
	char *text = cJSON_Print(doc);
	FILE *f;
	int rc;

	if (system("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null") != 0) {
		fprintf(stderr, "python3-jsonschema missing: schema not checked\n");
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
