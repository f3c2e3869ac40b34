// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * statjson.c - the stats document (see statjson.h and docs/stats.schema.json)
 * rendered from a snapshot with cJSON. Pure: no I/O, no locks.
 */
#include "config.h"

#include "pgktls/statjson.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pgktls/conn.h"
#include "pgktls/ktls.h"
#include "pgktls/nl.h"
#include "pgktls/stats.h"

/* Version of the document's layout; bumped on incompatible changes. */
#define STATJSON_SCHEMA 1

const char *statjson_refusal_name(enum statsnap_refusal r)
{
	static const char *const names[STATSNAP_REFUSED__N] = {
		[STATSNAP_REFUSED_BAD_REQUEST] = "bad_request",
		[STATSNAP_REFUSED_NOT_FOUND] = "not_found",
		[STATSNAP_REFUSED_METHOD] = "method_not_allowed",
		[STATSNAP_REFUSED_TIMEOUT] = "timeout",
		[STATSNAP_REFUSED_TOO_LARGE] = "too_large",
		[STATSNAP_REFUSED_VERSION] = "version_not_supported",
		[STATSNAP_REFUSED_BUSY] = "busy",
		[STATSNAP_REFUSED_ABORTED] = "aborted",
		[STATSNAP_REFUSED_INTERNAL] = "internal",
	};

	return (unsigned)r < STATSNAP_REFUSED__N ? names[r] : "unknown";
}

static void put_u64(cJSON *o, const char *k, uint64_t v)
{
	cJSON_AddNumberToObject(o, k, (double)v);
}

static void put_str(cJSON *o, const char *k, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

static void put_bool(cJSON *o, const char *k, bool v)
{
	cJSON_AddBoolToObject(o, k, v);
}

/* Who does the crypto for one direction, with the kernel's word where we have it. */
static const char *dir_engine(const struct statsnap_hop *h, bool tx)
{
	uint8_t e = tx ? h->ktls.tx : h->ktls.rx;
	uint16_t conf;

	if (!h->tls)
		return "none";
	if (e != KTLS_ENGINE_KERNEL)
		return "userspace";
	if (h->kernel_err)
		return "kernel";	/* pgktls's word only */
	conf = tx ? h->kernel.txconf : h->kernel.rxconf;
	if (conf == NL_TLS_CONF_HW || conf == NL_TLS_CONF_HW_RECORD)
		return "kernel_nic";
	if (conf == NL_TLS_CONF_SW)
		return "kernel_sw";
	return "kernel";
}

static cJSON *render_dir(const struct statsnap_hop *h, bool tx)
{
	cJSON *d = cJSON_CreateObject();
	const char *engine = dir_engine(h, tx);
	uint8_t reason = tx ? h->ktls.tx_reason : h->ktls.rx_reason;

	cJSON_AddStringToObject(d, "engine", engine);
	put_str(d, "reason",
		!strcmp(engine, "userspace") && reason != KTLS_R_NONE ? ktls_reason_name(reason)
		: !strcmp(engine, "userspace") && !h->tls_done	       ? "handshake"
									       : NULL);
	return d;
}

static cJSON *render_hop(const struct statsnap_hop *h)
{
	cJSON *o = cJSON_CreateObject(), *k;
	char addr[SOCK_ADDR_STRLEN];

	put_bool(o, "connected", h->open);
	cJSON_AddStringToObject(o, "transport", h->is_tcp ? "tcp" : "unix");
	put_str(o, "local",
		h->local_len ? sock_addr_str((const struct sockaddr *)&h->local, h->local_len,
					     addr, sizeof(addr))
			     : NULL);
	put_str(o, "remote",
		h->remote_len ? sock_addr_str((const struct sockaddr *)&h->remote, h->remote_len,
					      addr, sizeof(addr))
			      : NULL);
	cJSON_AddStringToObject(o, "record_layer", h->record_layer ? h->record_layer : "plain");
	put_bool(o, "tls", h->tls);
	put_str(o, "version", h->version);
	put_str(o, "cipher", h->cipher);
	put_str(o, "alpn", h->alpn);
	put_str(o, "sni", h->sni);
	put_str(o, "peer_subject", h->peer_subject);
	put_bool(o, "peer_verified", h->peer_verified);
	cJSON_AddItemToObject(o, "rx", render_dir(h, false));
	cJSON_AddItemToObject(o, "tx", render_dir(h, true));
	k = cJSON_AddObjectToObject(o, "kernel");
	put_bool(k, "available", h->kernel_err == 0);
	if (h->kernel_err) {
		put_str(k, "reason", h->kernel_why ? h->kernel_why : "unknown");
		return o;
	}
	put_str(k, "ulp", h->kernel.ulp);
	cJSON_AddStringToObject(k, "version", nl_tls_version_name(h->kernel.tls_version));
	cJSON_AddStringToObject(k, "cipher", nl_tls_cipher_name(h->kernel.tls_cipher));
	cJSON_AddStringToObject(k, "rxconf", nl_tls_conf_name(h->kernel.rxconf));
	cJSON_AddStringToObject(k, "txconf", nl_tls_conf_name(h->kernel.txconf));
	put_bool(k, "zc_ro_tx", h->kernel.zc_ro_tx);
	put_bool(k, "rx_no_pad", h->kernel.rx_no_pad);
	return o;
}

static cJSON *render_conn(const struct statsnap_conn *c)
{
	cJSON *o = cJSON_CreateObject(), *b;

	put_u64(o, "id", c->id);
	put_u64(o, "worker", c->worker);
	cJSON_AddStringToObject(o, "state", c->state ? c->state : "unknown");
	put_u64(o, "age_ms", c->age_ms);
	put_str(o, "client_addr", c->client_addr);
	put_str(o, "upstream_addr", c->upstream_addr);
	b = cJSON_AddObjectToObject(o, "bytes");
	put_u64(b, "client_to_server", c->bytes_c2s);
	put_u64(b, "server_to_client", c->bytes_s2c);
	put_str(o, "upstream_identity", c->upstream_identity);
	cJSON_AddItemToObject(o, "client", render_hop(&c->client));
	cJSON_AddItemToObject(o, "server", render_hop(&c->server));
	return o;
}

/* Bump @obj[@key] by one (a small map from name to count). */
static void count_in(cJSON *obj, const char *key)
{
	cJSON *n;

	if (!key || !*key)
		return;
	n = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (n)
		cJSON_SetNumberValue(n, n->valuedouble + 1);
	else
		cJSON_AddNumberToObject(obj, key, 1);
}

static cJSON *hop_dirs(const uint64_t v[STATS_DIR__N])
{
	cJSON *o = cJSON_CreateObject();

	put_u64(o, "rx", v[STATS_DIR_RX]);
	put_u64(o, "tx", v[STATS_DIR_TX]);
	return o;
}

static cJSON *fallback_reasons(const uint64_t v[STATS_MAX_REASONS])
{
	cJSON *o = cJSON_CreateObject();

	/* KTLS_R_NONE never counts as a fallback reason. */
	for (unsigned r = KTLS_R_NONE + 1; r < KTLS__NREASONS; r++)
		put_u64(o, ktls_reason_name(r), v[r]);
	return o;
}

/*
 * "upgrade": this process's binary upgrades (SIGUSR2) and, in a process an
 * upgrade started, the one it took over from (see ARCHITECTURE.md).
 */
static cJSON *render_upgrade(const struct stats_process *p)
{
	cJSON *o = cJSON_CreateObject(), *prev, *sess;

	cJSON_AddStringToObject(o, "state", p->upgrade_child_pid ? "handing_over" : "none");
	put_u64(o, "started", p->upgrades_started);
	put_u64(o, "ok", p->upgrades_ok);
	put_u64(o, "failed", p->upgrades_failed);
	if (p->upgrade_child_pid)
		put_u64(o, "new_pid", p->upgrade_child_pid);
	if (p->upgrade_error[0])
		cJSON_AddStringToObject(o, "last_error", p->upgrade_error);
	/*
	 * Established sessions: the old process's share (handed_over, kept) is
	 * seen here only until it commits (its stats socket then moves to the new
	 * process), so the new one shows it again in previous {moved, kept}.
	 */
	sess = cJSON_AddObjectToObject(o, "sessions");
	put_u64(sess, "handed_over", p->sessions_handed_over);
	put_u64(sess, "kept", p->sessions_kept);
	put_u64(sess, "adopted", p->sessions_adopted);
	if (p->adopted_from_pid) {
		prev = cJSON_AddObjectToObject(o, "previous");
		put_u64(prev, "pid", p->adopted_from_pid);
		put_u64(prev, "listeners", p->adopted_listeners);
		cJSON_AddBoolToObject(prev, "running", p->previous_running != 0);
		put_u64(prev, "draining", p->previous_draining);
		put_u64(prev, "moved", p->previous_moved);
		put_u64(prev, "kept", p->previous_kept);
	}
	return o;
}

static cJSON *render_totals(const struct statsnap *s)
{
	const struct stats *t = &s->totals;
	const char *const *names = stats_names();
	const char *hops[STATS_HOP__N] = { "client", "server" };
	cJSON *o = cJSON_CreateObject(), *x, *y, *z, *arr;
	uint64_t cum = 0;

	x = cJSON_AddObjectToObject(o, "connections");
	put_u64(x, "accepted", t->conns_accepted);
	put_u64(x, "active", t->conns_active);
	put_u64(x, "closed", t->conns_closed);
	y = cJSON_AddObjectToObject(x, "closed_by_reason");
	for (unsigned r = 0; r < CONN__NREASONS; r++)
		put_u64(y, conn_close_reason_name(r), t->closed_by_reason[r]);

	x = cJSON_AddObjectToObject(o, "handshakes");
	for (unsigned h = 0; h < STATS_HOP__N; h++) {
		y = cJSON_AddObjectToObject(x, hops[h]);
		put_u64(y, "completed", h == STATS_HOP_CLIENT ? t->client_tls_handshakes
							: t->upstream_tls_handshakes);
		put_u64(y, "failed",
			h == STATS_HOP_CLIENT ? t->client_tls_failures : t->upstream_tls_failures);
		z = cJSON_AddObjectToObject(y, "failed_by_reason");
		for (unsigned f = 0; f < STATS_HS_FAIL__N; f++)
			put_u64(z, stats_hs_fail_name(f), t->hs_failed[h][f]);
		/* A subset of failed_by_reason.verify: the CRL said no. */
		put_u64(y, "revoked",
			h == STATS_HOP_CLIENT ? t->client_certs_revoked : t->server_certs_revoked);
	}
	y = cJSON_AddObjectToObject(x, "client_latency_ms");
	arr = cJSON_AddArrayToObject(y, "buckets");
	for (unsigned b = 0; b < STATS_HS_BUCKETS; b++) {
		cJSON *e = cJSON_CreateObject();

		cum += t->hs_latency[b];
		if (b < STATS_HS_BUCKETS - 1)
			put_u64(e, "le", stats_hs_bounds_ms[b]);
		else
			cJSON_AddStringToObject(e, "le", "+Inf");
		put_u64(e, "count", cum);
		cJSON_AddItemToArray(arr, e);
	}
	put_u64(y, "count", cum);
	put_u64(y, "sum", t->hs_latency_sum_ms);

	x = cJSON_AddObjectToObject(o, "tls_in_use");
	y = cJSON_AddObjectToObject(x, "client");
	cJSON_AddObjectToObject(y, "versions");
	cJSON_AddObjectToObject(y, "ciphers");
	y = cJSON_AddObjectToObject(x, "server");
	cJSON_AddObjectToObject(y, "versions");
	cJSON_AddObjectToObject(y, "ciphers");
	z = cJSON_AddObjectToObject(o, "ktls");
	y = cJSON_AddObjectToObject(z, "directions_now");
	put_u64(y, "none", 0);
	put_u64(y, "userspace", 0);
	put_u64(y, "kernel", 0);
	put_u64(y, "kernel_sw", 0);
	put_u64(y, "kernel_nic", 0);
	for (size_t i = 0; i < s->n_conns; i++) {
		const struct statsnap_hop *hp[2] = { &s->conns[i].client, &s->conns[i].server };

		for (unsigned h = 0; h < 2; h++) {
			cJSON *use = cJSON_GetObjectItemCaseSensitive(x, hops[h]);

			if (!hp[h]->open)
				continue;
			count_in(cJSON_GetObjectItemCaseSensitive(use, "versions"), hp[h]->version);
			count_in(cJSON_GetObjectItemCaseSensitive(use, "ciphers"), hp[h]->cipher);
			count_in(y, dir_engine(hp[h], false));
			count_in(y, dir_engine(hp[h], true));
		}
	}
	x = cJSON_AddObjectToObject(z, "engaged");
	for (unsigned h = 0; h < STATS_HOP__N; h++)
		cJSON_AddItemToObject(x, hops[h], hop_dirs(t->ktls_dir_engaged[h]));
	x = cJSON_AddObjectToObject(z, "fallbacks");
	for (unsigned h = 0; h < STATS_HOP__N; h++) {
		y = cJSON_AddObjectToObject(x, hops[h]);
		cJSON_AddItemToObject(y, "rx",
				      fallback_reasons(t->ktls_dir_fallback[h][STATS_DIR_RX]));
		cJSON_AddItemToObject(y, "tx",
				      fallback_reasons(t->ktls_dir_fallback[h][STATS_DIR_TX]));
	}
	put_u64(z, "hops_engaged_client", t->ktls_client_engaged);
	put_u64(z, "hops_engaged_server", t->ktls_server_engaged);
	put_u64(z, "hops_fallback", t->ktls_fallbacks);
	put_u64(z, "refused", t->ktls_refused);

	x = cJSON_AddObjectToObject(o, "clients");
	put_u64(x, "plaintext", t->client_plaintext);
	put_u64(x, "plaintext_refused", t->plaintext_refused);
	put_u64(x, "direct_tls", t->client_direct_tls);
	put_u64(x, "protocol_errors", t->protocol_errors);
	put_u64(x, "startup_timeouts", t->startup_timeouts);
	put_u64(x, "proxy_headers", t->proxy_headers);
	put_u64(x, "proxy_untrusted", t->proxy_untrusted);
	put_u64(x, "proxy_invalid", t->proxy_invalid);
	put_u64(o, "cancels_forwarded", t->cancels_forwarded);

	x = cJSON_AddObjectToObject(o, "bytes");
	y = cJSON_AddObjectToObject(x, "client");
	put_u64(y, "rx", t->bytes_client_to_server);
	put_u64(y, "tx", t->bytes_server_to_client);
	y = cJSON_AddObjectToObject(x, "server");
	put_u64(y, "rx", t->bytes_server_to_client);
	put_u64(y, "tx", t->bytes_client_to_server);
	put_u64(x, "spliced", t->bytes_spliced);
	put_u64(x, "copied", t->bytes_client_to_server + t->bytes_server_to_client -
				     t->bytes_spliced);

	x = cJSON_AddObjectToObject(o, "control_records");
	put_u64(x, "total", t->tls_control_records);
	put_u64(x, "tickets", t->tls_tickets);
	put_u64(x, "alerts", t->tls_alerts);
	put_u64(x, "key_updates_rekeyed", t->tls_key_updates);
	put_u64(x, "key_updates_refused", t->tls_key_updates_refused);
	put_u64(x, "key_updates_sent", t->tls_key_updates_sent);
	put_u64(x, "key_limit_closes", t->tls_key_limit_closes);

	x = cJSON_AddObjectToObject(o, "config_reloads");
	put_u64(x, "ok", s->process.reloads_ok);
	put_u64(x, "failed", s->process.reloads_failed);

	x = cJSON_AddObjectToObject(o, "metrics_endpoint");
	put_bool(x, "enabled", s->metrics.enabled);
	put_u64(x, "scrapes", s->metrics.scrapes);
	y = cJSON_AddObjectToObject(x, "refused");
	for (unsigned r = 0; r < STATSNAP_REFUSED__N; r++)
		put_u64(y, statjson_refusal_name(r), s->metrics.refused[r]);

	/* Every flat counter under its own name, for generic consumers. */
	x = cJSON_AddObjectToObject(o, "counters");
#define STATS_JSON(name, help) put_u64(x, #name, t->name);
	STATS_COUNTERS(STATS_JSON)
#undef STATS_JSON
	(void)names;
	return o;
}

static cJSON *render_kernel(const struct statsnap *s)
{
	cJSON *o = cJSON_CreateObject(), *x, *y, *arr;
	char why[160];

	x = cJSON_AddObjectToObject(o, "ktls");
	put_bool(x, "available", s->ktls_available);
	if (s->ktls_available)
		cJSON_AddNullToObject(x, "reason");
	else if (s->tls_stat_err == -ENOENT)
		cJSON_AddStringToObject(x, "reason",
					"no /proc/net/tls_stat: the kernel tls module is not "
					"loaded or the kernel has no CONFIG_TLS");
	else {
		snprintf(why, sizeof(why), "cannot read /proc/net/tls_stat: %s",
			 strerror(-s->tls_stat_err));
		cJSON_AddStringToObject(x, "reason", why);
	}

	x = cJSON_AddObjectToObject(o, "sock_diag");
	put_bool(x, "available", s->netlink_err == 0 && s->net_admin);
	if (s->netlink_err) {
		snprintf(why, sizeof(why), "cannot open netlink sockets: %s",
			 strerror(-s->netlink_err));
		cJSON_AddStringToObject(x, "reason", why);
	} else if (!s->net_admin) {
		cJSON_AddStringToObject(x, "reason",
					"pgktls lacks CAP_NET_ADMIN: the kernel does not show the "
					"per-socket TLS (ULP) info");
	} else {
		cJSON_AddNullToObject(x, "reason");
	}
	put_bool(x, "net_admin", s->net_admin);

	x = cJSON_AddObjectToObject(o, "tls_stat");
	put_bool(x, "available", s->tls_stat_err == 0);
	y = cJSON_AddObjectToObject(x, "counters");
	for (size_t i = 0; i < s->tls_stat.n && s->tls_stat_err == 0; i++)
		put_u64(y, s->tls_stat.v[i].name, s->tls_stat.v[i].value);

	arr = cJSON_AddArrayToObject(o, "interfaces");
	for (size_t i = 0; i < s->n_ifaces; i++) {
		const struct statsnap_iface *f = &s->ifaces[i];
		cJSON *e = cJSON_CreateObject();
		const struct {
			const char *name;
			bool hw, on;
		} feats[] = {
			{ "tls-hw-tx-offload", f->nic.hw_tx, f->nic.on_tx },
			{ "tls-hw-rx-offload", f->nic.hw_rx, f->nic.on_rx },
			{ "tls-hw-record", f->nic.hw_record, f->nic.on_record },
		};

		cJSON_AddStringToObject(e, "name", f->name);
		put_bool(e, "available", f->err == 0);
		if (f->err) {
			snprintf(why, sizeof(why), "ethtool netlink: %s", strerror(-f->err));
			cJSON_AddStringToObject(e, "reason", why);
		} else {
			cJSON_AddNullToObject(e, "reason");
			y = cJSON_AddObjectToObject(e, "features");
			for (size_t j = 0; j < PGKTLS_ARRAY_SIZE(feats); j++) {
				cJSON *ft = cJSON_AddObjectToObject(y, feats[j].name);

				put_bool(ft, "supported", feats[j].hw);
				put_bool(ft, "active", feats[j].on);
			}
		}
		cJSON_AddItemToArray(arr, e);
	}
	return o;
}

cJSON *statjson_error(const char *code, const char *msg)
{
	cJSON *root = cJSON_CreateObject(), *e;

	if (!root)
		return NULL;
	put_u64(root, "schema", STATJSON_SCHEMA);
	e = cJSON_AddObjectToObject(root, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	return root;
}

cJSON *statjson_render(const struct statsnap *s, enum statjson_part what, uint64_t id)
{
	cJSON *root, *w, *late, *arr;
	char msg[96];

	if (what == STATJSON_CONNECTION) {
		size_t i;

		for (i = 0; i < s->n_conns; i++)
			if (s->conns[i].id == id)
				break;
		if (i == s->n_conns) {
			snprintf(msg, sizeof(msg), "no connection %llu", (unsigned long long)id);
			return statjson_error("not_found", msg);
		}
	}
	root = cJSON_CreateObject();
	if (!root)
		return NULL;
	put_u64(root, "schema", STATJSON_SCHEMA);
	cJSON_AddStringToObject(root, "version", s->version ? s->version : PACKAGE_VERSION);
	put_u64(root, "pid", (uint64_t)s->pid);
	put_u64(root, "time_ms", s->time_ms);
	put_u64(root, "uptime_ms", s->uptime_ms);
	w = cJSON_AddObjectToObject(root, "workers");
	put_u64(w, "count", s->n_workers);
	late = cJSON_AddArrayToObject(w, "late");
	for (unsigned i = 0; i < s->workers_late && i < PGKTLS_ARRAY_SIZE(s->late); i++)
		cJSON_AddItemToArray(late, cJSON_CreateNumber(s->late[i]));
	w = cJSON_AddObjectToObject(root, "listen");
	put_u64(w, "sockets", s->process.listen_sockets);
	cJSON_AddStringToObject(w, "from", s->process.listen_from_systemd ? "systemd" : "pgktls");
	cJSON_AddItemToObject(root, "upgrade", render_upgrade(&s->process));
	if (what == STATJSON_ALL || what == STATJSON_TOTALS) {
		cJSON_AddItemToObject(root, "totals", render_totals(s));
		cJSON_AddItemToObject(root, "kernel", render_kernel(s));
	}
	if (what == STATJSON_ALL || what == STATJSON_CONNECTIONS) {
		arr = cJSON_AddArrayToObject(root, "connections");
		for (size_t i = 0; i < s->n_conns; i++)
			cJSON_AddItemToArray(arr, render_conn(&s->conns[i]));
	}
	if (what == STATJSON_CONNECTION)
		for (size_t i = 0; i < s->n_conns; i++)
			if (s->conns[i].id == id)
				cJSON_AddItemToObject(root, "connection",
						      render_conn(&s->conns[i]));
	return root;
}
