// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * statfmt.c - stats document to table, and to Prometheus text or OpenMetrics.
 *
 * Both renderers read the JSON document rather than C structs, so
 * pgktls-stat needs nothing but the socket, and what an operator sees is
 * exactly what the endpoint said. Missing members render as zero or are
 * skipped: an older daemon's document still prints. The daemon's own
 * metrics_listen endpoint renders the same way, from the document it would
 * send on the socket, so the two cannot disagree.
 */
#include "config.h"

#include "pgktls/statfmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pgktls/stats.h"

static const cJSON *get(const cJSON *o, const char *path)
{
	char key[64];

	/* "a.b.c": walk nested objects. */
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = cJSON_GetObjectItemCaseSensitive(o, key);
		path += n + (dot ? 1 : 0);
	}
	return o;
}

static double num(const cJSON *o, const char *path)
{
	const cJSON *n = get(o, path);

	return cJSON_IsNumber(n) ? n->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *path)
{
	const cJSON *s = get(o, path);

	return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* ---- Prometheus ---- */

/*
 * The two exposition formats differ in little here: OpenMetrics names a
 * counter family without its "_total" (the samples keep it), has an "info"
 * type, escapes '"' in HELP too, and ends with "# EOF".
 */
struct prom {
	FILE *out;
	bool om;	/* OpenMetrics 1.0.0, else text format 0.0.4 */
};

/* A label value with \, " and newline escaped, as the format requires. */
static void label_value(FILE *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(out, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
}

/* HELP and TYPE of one family; @name is the sample name ("x_total", "x_info"). */
static void head(const struct prom *p, const char *name, const char *type, const char *help)
{
	size_t n = strlen(name);

	if (p->om && !strcmp(type, "counter") && n > 6 && !strcmp(name + n - 6, "_total"))
		n -= 6;
	if (p->om && !strcmp(type, "info") && n > 5 && !strcmp(name + n - 5, "_info"))
		n -= 5;
	fprintf(p->out, "# HELP %.*s ", (int)n, name);
	for (; *help; help++) {
		if (*help == '\\')
			fputs("\\\\", p->out);
		else if (*help == '\n')
			fputs("\\n", p->out);
		else if (*help == '"' && p->om)
			fputs("\\\"", p->out);
		else
			fputc(*help, p->out);
	}
	fprintf(p->out, "\n# TYPE %.*s %s\n", (int)n, name, type);
}

static void sample(FILE *out, const char *name, const char *labels, double v)
{
	fprintf(out, "%s%s%s%s %.17g\n", name, labels ? "{" : "", labels ? labels : "",
		labels ? "}" : "", v);
}

/* One sample per member of @obj, the member name as label @label. */
static void samples_by(FILE *out, const char *name, const char *prefix, const char *label,
		       const cJSON *obj)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, obj) {
		if (!cJSON_IsNumber(e) || !e->string)
			continue;
		fprintf(out, "%s{%s%s%s=\"", name, prefix ? prefix : "", prefix ? "," : "", label);
		label_value(out, e->string);
		fprintf(out, "\"} %.17g\n", e->valuedouble);
	}
}

static void kernel_metrics(const struct prom *p, const cJSON *k);

int statfmt_prometheus(const cJSON *doc, bool openmetrics, FILE *out)
{
	const struct prom pr = { .out = out, .om = openmetrics }, *p = &pr;
	const cJSON *t = get(doc, "totals"), *k = get(doc, "kernel"), *m, *e;
	const char *const *names = stats_names(), *const *helps = stats_helps();
	static const char *const hops[] = { "client", "server" };
	static const char *const dirs[] = { "rx", "tx" };
	char metric[128], labels[160];

	if (!cJSON_IsObject(t) || get(doc, "error"))
		return -EINVAL;
	head(p, "pgktls_up", "gauge", "Whether pgktls answered (1 whenever there is an answer).");
	sample(out, "pgktls_up", NULL, 1);
	head(p, "pgktls_info", p->om ? "info" : "gauge", "The running pgktls version.");
	fprintf(out, "pgktls_info{version=\"");
	label_value(out, str(doc, "version") ? str(doc, "version") : "unknown");
	fprintf(out, "\"} 1\n");
	head(p, "pgktls_uptime_seconds", "gauge", "Seconds since the stats endpoint started.");
	sample(out, "pgktls_uptime_seconds", NULL, num(doc, "uptime_ms") / 1000);
	head(p, "pgktls_workers", "gauge", "Worker threads.");
	sample(out, "pgktls_workers", NULL, num(doc, "workers.count"));
	head(p, "pgktls_workers_late", "gauge",
	     "Workers that did not answer the snapshot request in time.");
	sample(out, "pgktls_workers_late", NULL, cJSON_GetArraySize(get(doc, "workers.late")));

	/* Every flat counter, with the help text of the daemon's own table. */
	for (size_t i = 0; names[i]; i++) {
		char path[96];

		snprintf(path, sizeof(path), "counters.%s", names[i]);
		if (!cJSON_IsNumber(get(t, path)))
			continue;
		snprintf(metric, sizeof(metric), "pgktls_%s_total", names[i]);
		head(p, metric, "counter", helps[i]);
		sample(out, metric, NULL, num(t, path));
	}
	head(p, "pgktls_connections_active", "gauge", "Client connections open now.");
	sample(out, "pgktls_connections_active", NULL, num(t, "connections.active"));
	head(p, "pgktls_connections_closed_by_reason_total", "counter",
	     "Client connections closed, by reason.");
	samples_by(out, "pgktls_connections_closed_by_reason_total", NULL, "reason",
		   get(t, "connections.closed_by_reason"));

	head(p, "pgktls_tls_handshake_failures_total", "counter",
	     "Failed TLS handshakes, by hop and reason.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(labels, sizeof(labels), "hop=\"%s\"", hops[i]);
		snprintf(metric, sizeof(metric), "handshakes.%s.failed_by_reason", hops[i]);
		samples_by(out, "pgktls_tls_handshake_failures_total", labels, "reason",
			   get(t, metric));
	}
	head(p, "pgktls_client_tls_handshake_seconds", "histogram",
	     "Time from accept to a completed client TLS handshake.");
	cJSON_ArrayForEach(e, get(t, "handshakes.client_latency_ms.buckets")) {
		const cJSON *le = cJSON_GetObjectItemCaseSensitive(e, "le");

		if (cJSON_IsNumber(le))
			fprintf(out, "pgktls_client_tls_handshake_seconds_bucket{le=\"%g\"} %.17g\n",
				le->valuedouble / 1000, num(e, "count"));
		else
			fprintf(out, "pgktls_client_tls_handshake_seconds_bucket{le=\"+Inf\"} %.17g\n",
				num(e, "count"));
	}
	sample(out, "pgktls_client_tls_handshake_seconds_sum", NULL,
	       num(t, "handshakes.client_latency_ms.sum") / 1000);
	sample(out, "pgktls_client_tls_handshake_seconds_count", NULL,
	       num(t, "handshakes.client_latency_ms.count"));

	head(p, "pgktls_tls_versions_in_use", "gauge", "Open hops by negotiated TLS version.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(labels, sizeof(labels), "hop=\"%s\"", hops[i]);
		snprintf(metric, sizeof(metric), "tls_in_use.%s.versions", hops[i]);
		samples_by(out, "pgktls_tls_versions_in_use", labels, "version", get(t, metric));
	}
	head(p, "pgktls_tls_ciphers_in_use", "gauge", "Open hops by negotiated cipher.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(labels, sizeof(labels), "hop=\"%s\"", hops[i]);
		snprintf(metric, sizeof(metric), "tls_in_use.%s.ciphers", hops[i]);
		samples_by(out, "pgktls_tls_ciphers_in_use", labels, "cipher", get(t, metric));
	}

	head(p, "pgktls_ktls_directions", "gauge",
	     "Directions of open hops by who does the record crypto now.");
	samples_by(out, "pgktls_ktls_directions", NULL, "engine", get(t, "ktls.directions_now"));
	/* Each family's samples together: OpenMetrics requires it. */
	head(p, "pgktls_ktls_engaged_total", "counter",
	     "Hop directions whose record crypto moved into the kernel.");
	for (size_t i = 0; i < 2; i++)
		for (size_t d = 0; d < 2; d++) {
			snprintf(metric, sizeof(metric), "ktls.engaged.%s.%s", hops[i], dirs[d]);
			snprintf(labels, sizeof(labels), "hop=\"%s\",direction=\"%s\"", hops[i],
				 dirs[d]);
			sample(out, "pgktls_ktls_engaged_total", labels, num(t, metric));
		}
	/* Not pgktls_ktls_fallbacks_total: the flat counter ktls_fallbacks (per hop) has it. */
	head(p, "pgktls_ktls_direction_fallbacks_total", "counter",
	     "Hop directions left in userspace TLS, by reason.");
	for (size_t i = 0; i < 2; i++)
		for (size_t d = 0; d < 2; d++) {
			snprintf(labels, sizeof(labels), "hop=\"%s\",direction=\"%s\"", hops[i],
				 dirs[d]);
			snprintf(metric, sizeof(metric), "ktls.fallbacks.%s.%s", hops[i], dirs[d]);
			samples_by(out, "pgktls_ktls_direction_fallbacks_total", labels, "reason",
				   get(t, metric));
		}

	head(p, "pgktls_hop_bytes_total", "counter",
	     "Payload bytes per hop and direction (rx: from that peer, tx: to it).");
	for (size_t i = 0; i < 2; i++)
		for (size_t d = 0; d < 2; d++) {
			snprintf(metric, sizeof(metric), "bytes.%s.%s", hops[i], dirs[d]);
			snprintf(labels, sizeof(labels), "hop=\"%s\",direction=\"%s\"", hops[i],
				 dirs[d]);
			sample(out, "pgktls_hop_bytes_total", labels, num(t, metric));
		}
	head(p, "pgktls_relay_bytes_total", "counter", "Relayed bytes by how they moved.");
	sample(out, "pgktls_relay_bytes_total", "method=\"splice\"", num(t, "bytes.spliced"));
	sample(out, "pgktls_relay_bytes_total", "method=\"copy\"", num(t, "bytes.copied"));

	head(p, "pgktls_config_reloads_total", "counter", "Configuration reloads, by result.");
	sample(out, "pgktls_config_reloads_total", "result=\"ok\"", num(t, "config_reloads.ok"));
	sample(out, "pgktls_config_reloads_total", "result=\"failed\"",
	       num(t, "config_reloads.failed"));

	m = get(t, "metrics_endpoint");
	if (cJSON_IsTrue(get(m, "enabled"))) {
		head(p, "pgktls_metrics_scrapes_total", "counter",
		     "Scrapes answered by the metrics_listen endpoint (GET and HEAD /metrics).");
		sample(out, "pgktls_metrics_scrapes_total", NULL, num(m, "scrapes"));
		head(p, "pgktls_metrics_requests_refused_total", "counter",
		     "Requests to the metrics_listen endpoint refused or cut off, by reason.");
		samples_by(out, "pgktls_metrics_requests_refused_total", NULL, "reason",
			   get(m, "refused"));
	}

	if (cJSON_IsObject(k))
		kernel_metrics(p, k);
	if (p->om)
		fputs("# EOF\n", out);
	return 0;
}

/* The kernel's part: kTLS and sock_diag availability, tls_stat, NIC features. */
static void kernel_metrics(const struct prom *p, const cJSON *k)
{
	FILE *out = p->out;
	const cJSON *e, *h;

	head(p, "pgktls_kernel_ktls_available", "gauge",
	     "Whether the kernel offers kTLS (1) or not (0).");
	sample(out, "pgktls_kernel_ktls_available", NULL,
	       cJSON_IsTrue(get(k, "ktls.available")) ? 1 : 0);
	head(p, "pgktls_kernel_sock_diag_available", "gauge",
	     "Whether the kernel's per-socket TLS view is readable (needs CAP_NET_ADMIN).");
	sample(out, "pgktls_kernel_sock_diag_available", NULL,
	       cJSON_IsTrue(get(k, "sock_diag.available")) ? 1 : 0);
	head(p, "pgktls_kernel_tls_stat", "gauge",
	     "/proc/net/tls_stat of pgktls's network namespace.");
	samples_by(out, "pgktls_kernel_tls_stat", NULL, "counter", get(k, "tls_stat.counters"));
	head(p, "pgktls_nic_tls_feature", "gauge",
	     "NIC TLS offload features of interfaces in use (ethtool).");
	cJSON_ArrayForEach(e, get(k, "interfaces")) {
		cJSON_ArrayForEach(h, get(e, "features")) {
			const char *ifn = str(e, "name") ? str(e, "name") : "?";

			for (int s = 0; s < 2; s++) {
				const char *st = s ? "active" : "supported";

				fprintf(out, "pgktls_nic_tls_feature{interface=\"");
				label_value(out, ifn);
				fprintf(out, "\",feature=\"");
				label_value(out, h->string ? h->string : "?");
				fprintf(out, "\",state=\"%s\"} %d\n", st,
					cJSON_IsTrue(get(h, st)) ? 1 : 0);
			}
		}
	}
}

/* ---- table ---- */

static const char *human_bytes(double v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", v);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static const char *human_ms(double ms, char *buf, size_t len)
{
	uint64_t s = (uint64_t)(ms / 1000);

	if (ms < 10000)
		snprintf(buf, len, "%.1fs", ms / 1000);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	return buf;
}

/* "name N, name N" for the non-zero members of @obj, or "none". */
static void nonzero_list(FILE *out, const cJSON *obj)
{
	const cJSON *e;
	bool any = false;

	cJSON_ArrayForEach(e, obj) {
		if (!cJSON_IsNumber(e) || e->valuedouble == 0)
			continue;
		fprintf(out, "%s%s %.0f", any ? ", " : "", e->string, e->valuedouble);
		any = true;
	}
	if (!any)
		fputs("none", out);
}

/* "kernel_sw", or "userspace(no_kernel)" with the fallback reason. */
static void dir_cell(char *buf, size_t len, const cJSON *dir)
{
	const char *engine = str(dir, "engine"), *reason = str(dir, "reason");

	if (reason)
		snprintf(buf, len, "%s(%s)", engine ? engine : "?", reason);
	else
		snprintf(buf, len, "%s", engine ? engine : "?");
}

static void hop_cell(char *buf, size_t len, const cJSON *hop)
{
	char rx[48], tx[48];

	if (!cJSON_IsTrue(get(hop, "connected"))) {
		snprintf(buf, len, "-");
		return;
	}
	dir_cell(rx, sizeof(rx), get(hop, "rx"));
	dir_cell(tx, sizeof(tx), get(hop, "tx"));
	snprintf(buf, len, "%s %s/%s",
		 str(hop, "version") ? str(hop, "version")
				     : cJSON_IsTrue(get(hop, "tls")) ? "TLS" : "plain",
		 rx, tx);
}

static void print_totals(const cJSON *doc, FILE *out)
{
	const cJSON *t = get(doc, "totals"), *k = get(doc, "kernel"), *e;
	char a[32], b[32], c[32], d[32];

	fprintf(out, "connections  %.0f active, %.0f accepted, %.0f closed (",
		num(t, "connections.active"), num(t, "connections.accepted"),
		num(t, "connections.closed"));
	nonzero_list(out, get(t, "connections.closed_by_reason"));
	fprintf(out, ")\n");
	fprintf(out, "handshakes   client %.0f ok, %.0f failed; server %.0f ok, %.0f failed\n",
		num(t, "handshakes.client.completed"), num(t, "handshakes.client.failed"),
		num(t, "handshakes.server.completed"), num(t, "handshakes.server.failed"));
	fprintf(out, "clients      plaintext %.0f, plaintext refused %.0f, cancels forwarded %.0f\n",
		num(t, "clients.plaintext"), num(t, "clients.plaintext_refused"),
		num(t, "cancels_forwarded"));
	fprintf(out, "bytes        client rx %s tx %s; server rx %s tx %s\n",
		human_bytes(num(t, "bytes.client.rx"), a, sizeof(a)),
		human_bytes(num(t, "bytes.client.tx"), b, sizeof(b)),
		human_bytes(num(t, "bytes.server.rx"), c, sizeof(c)),
		human_bytes(num(t, "bytes.server.tx"), d, sizeof(d)));
	fprintf(out, "kTLS now     ");
	nonzero_list(out, get(t, "ktls.directions_now"));
	fprintf(out, " (directions)\nkTLS total   engaged client rx %.0f tx %.0f, server rx %.0f "
		     "tx %.0f; fallbacks %.0f hops\n",
		num(t, "ktls.engaged.client.rx"), num(t, "ktls.engaged.client.tx"),
		num(t, "ktls.engaged.server.rx"), num(t, "ktls.engaged.server.tx"),
		num(t, "ktls.hops_fallback"));
	if (!k)
		return;
	fprintf(out, "kernel       kTLS %s", cJSON_IsTrue(get(k, "ktls.available")) ? "yes" : "no");
	if (str(k, "ktls.reason"))
		fprintf(out, " (%s)", str(k, "ktls.reason"));
	fprintf(out, "; per-socket view %s",
		cJSON_IsTrue(get(k, "sock_diag.available")) ? "yes" : "no");
	if (str(k, "sock_diag.reason"))
		fprintf(out, " (%s)", str(k, "sock_diag.reason"));
	fputc('\n', out);
	cJSON_ArrayForEach(e, get(k, "interfaces")) {
		fprintf(out, "nic          %s:", str(e, "name") ? str(e, "name") : "?");
		if (!cJSON_IsTrue(get(e, "available"))) {
			fprintf(out, " unknown (%s)\n", str(e, "reason") ? str(e, "reason") : "?");
			continue;
		}
		fprintf(out, " tls-hw-tx %s, tls-hw-rx %s, tls-hw-record %s\n",
			cJSON_IsTrue(get(e, "features.tls-hw-tx-offload.active")) ? "on" : "off",
			cJSON_IsTrue(get(e, "features.tls-hw-rx-offload.active")) ? "on" : "off",
			cJSON_IsTrue(get(e, "features.tls-hw-record.active")) ? "on" : "off");
	}
}

int statfmt_table(const cJSON *doc, FILE *out)
{
	const cJSON *conns = get(doc, "connections"), *one = get(doc, "connection"), *c;
	char up[32];

	if (!cJSON_IsObject(doc) || get(doc, "error"))
		return -EINVAL;
	fprintf(out, "pgktls %s, pid %.0f, up %s, %.0f workers",
		str(doc, "version") ? str(doc, "version") : "?", num(doc, "pid"),
		human_ms(num(doc, "uptime_ms"), up, sizeof(up)), num(doc, "workers.count"));
	if (cJSON_GetArraySize(get(doc, "workers.late")) > 0)
		fprintf(out, " (%d did not answer in time)",
			cJSON_GetArraySize(get(doc, "workers.late")));
	fputc('\n', out);
	if (get(doc, "totals"))
		print_totals(doc, out);
	if (!conns && !one)
		return 0;
	fprintf(out, "\n%-6s %-22s %-12s %8s %10s %10s  %-34s %s\n", "ID", "CLIENT", "STATE", "AGE",
		"C->S", "S->C", "CLIENT HOP (rx/tx)", "SERVER HOP (rx/tx)");
	for (c = one ? one : conns ? conns->child : NULL; c; c = one ? NULL : c->next) {
		char age[32], c2s[32], s2c[32], ch[128], sh[128];

		hop_cell(ch, sizeof(ch), get(c, "client"));
		hop_cell(sh, sizeof(sh), get(c, "server"));
		fprintf(out, "%-6.0f %-22s %-12s %8s %10s %10s  %-34s %s\n", num(c, "id"),
			str(c, "client_addr") ? str(c, "client_addr") : "?",
			str(c, "state") ? str(c, "state") : "?",
			human_ms(num(c, "age_ms"), age, sizeof(age)),
			human_bytes(num(c, "bytes.client_to_server"), c2s, sizeof(c2s)),
			human_bytes(num(c, "bytes.server_to_client"), s2c, sizeof(s2c)), ch, sh);
	}
	return 0;
}
