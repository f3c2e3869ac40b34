// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * statsrv.c - the stats endpoint: snapshot, kernel truth, JSON, and the
 * unix-socket server that hands the document out.
 *
 * Threads: the stats thread owns its ev loop, the listening socket, every
 * scraper connection and the netlink sockets. Workers only ever run
 * snap_worker_fn() (through worker_call()), which copies their own
 * connections into a request object that is reference-counted, so a worker
 * that answers after the stats thread gave up (1 s) frees its answer itself.
 *
 * Scrapers never stall anything: reads and writes are non-blocking, each
 * client has a deadline, and the number of clients is bounded.
 *
 * With metrics_listen, the same loop also serves HTTP: GET or HEAD /metrics
 * is answered in the same rounds, from the same snapshot, rendered by
 * statfmt.c from the document's totals; anything else gets its 4xx and the
 * connection is closed (after draining what the client still sends, so the
 * answer is not lost to a reset). Requests are parsed by httpreq.c.
 */
#include "config.h"

#include "pgktls/statsrv.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <ifaddrs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgktls/conn.h"
#include "pgktls/ev.h"
#include "pgktls/hop.h"
#include "pgktls/httpreq.h"
#include "pgktls/log.h"
#include "pgktls/relay.h"
#include "pgktls/statfmt.h"
#include "pgktls/worker.h"

/* Version of the document's layout; bumped on incompatible changes. */
#define STATSRV_SCHEMA 1

#define STATSRV_REQ_MAX 256		/* longest request line */
#define STATSRV_REQ_WAIT_MS 250		/* a client that sends nothing gets "all" after this */
#define STATSRV_CLIENT_MS 5000		/* a client must have read its answer by then */
#define STATSRV_MAX_CLIENTS 64		/* more are answered with an error and closed */
#define STATSRV_WORKER_MS 1000		/* how long the workers get to answer */
#define STATSRV_MAX_IFACES 16
#define STATSRV_HTTP_REQ_MS 2000	/* an HTTP request head must be in by then, else 408 */
#define STATSRV_LINGER_MS 1000		/* after an HTTP answer, input is drained so long */
#define STATSRV_LINGER_MAX 65536	/* ... or until this many bytes */

/* ---- requests ---- */

int statsrv_parse_request(const char *line, size_t len, enum statsrv_what *what, uint64_t *id,
			  char *err, size_t errlen)
{
	char buf[STATSRV_REQ_MAX + 1], *p, *end, *arg;
	unsigned long long v;

	if (len > STATSRV_REQ_MAX) {
		snprintf(err, errlen, "request longer than %d bytes", STATSRV_REQ_MAX);
		return -EINVAL;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, errlen, "request contains a NUL byte");
		return -EINVAL;
	}
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	end = p + strlen(p);
	while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (strpbrk(p, "\r\n")) {
		snprintf(err, errlen, "one request line expected");
		return -EINVAL;
	}
	*id = 0;
	if (!*p || !strcmp(p, "all")) {
		*what = STATSRV_ALL;
		return 0;
	}
	if (!strcmp(p, "totals")) {
		*what = STATSRV_TOTALS;
		return 0;
	}
	if (!strcmp(p, "connections")) {
		*what = STATSRV_CONNECTIONS;
		return 0;
	}
	if (!strcmp(p, "reload")) {
		*what = STATSRV_RELOAD;
		return 0;
	}
	if (!strncmp(p, "connection", 10) && (p[10] == ' ' || p[10] == '\t')) {
		for (arg = p + 11; *arg == ' ' || *arg == '\t'; arg++)
			;
		errno = 0;
		if (*arg >= '0' && *arg <= '9') {
			v = strtoull(arg, &end, 10);
			if (!errno && !*end && v > 0) {
				*what = STATSRV_CONNECTION;
				*id = v;
				return 0;
			}
		}
		snprintf(err, errlen, "connection: expected a connection id (1, 2, ...), got '%.64s'",
			 arg);
		return -EINVAL;
	}
	snprintf(err, errlen,
		 "unknown request '%.64s': expected all, totals, connections, connection ID or "
		 "reload",
		 p);
	return -EINVAL;
}

const char *statsrv_refusal_name(enum statsrv_refusal r)
{
	static const char *const names[STATSRV_REFUSED__N] = {
		[STATSRV_REFUSED_BAD_REQUEST] = "bad_request",
		[STATSRV_REFUSED_NOT_FOUND] = "not_found",
		[STATSRV_REFUSED_METHOD] = "method_not_allowed",
		[STATSRV_REFUSED_TIMEOUT] = "timeout",
		[STATSRV_REFUSED_TOO_LARGE] = "too_large",
		[STATSRV_REFUSED_VERSION] = "version_not_supported",
		[STATSRV_REFUSED_BUSY] = "busy",
		[STATSRV_REFUSED_ABORTED] = "aborted",
		[STATSRV_REFUSED_INTERNAL] = "internal",
	};

	return (unsigned)r < STATSRV_REFUSED__N ? names[r] : "unknown";
}

/* ---- snapshot: the worker side ---- */

struct snap_req;

struct snap_part {
	struct snap_req *req;
	struct worker_call call;
	struct statsrv_conn *conns;	/* the worker's answer */
	size_t n;
	bool done;
};

struct snap_req {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* signalled as each worker answers */
	unsigned refs;			/* the stats thread + workers yet to answer */
	unsigned pending;		/* workers yet to answer */
	bool abandoned;			/* the stats thread stopped waiting */
	size_t n;
	struct snap_part parts[];
};

static void snap_req_put_locked(struct snap_req *r, bool *last)
{
	*last = --r->refs == 0;
}

static void snap_req_free(struct snap_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->parts[i].conns);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void copy_hop(struct statsrv_hop *o, const struct hop *h)
{
	struct hop_info info;
	struct stat stb;

	o->open = h->fd >= 0;
	o->is_tcp = h->is_tcp;
	o->ktls = h->ktls;
	if (o->open) {
		o->local_len = sizeof(o->local);
		if (getsockname(h->fd, (struct sockaddr *)&o->local, &o->local_len) == -1)
			o->local_len = 0;
		o->remote_len = sizeof(o->remote);
		if (getpeername(h->fd, (struct sockaddr *)&o->remote, &o->remote_len) == -1)
			o->remote_len = 0;
		if (fstat(h->fd, &stb) == 0)
			o->inode = stb.st_ino;
	}
	/* The TLS facts come from the hop, whichever engine holds them. */
	hop_info(h, &info);
	o->tls = info.tls;
	o->tls_done = info.tls_done;
	snprintf(o->version, sizeof(o->version), "%s", info.version);
	snprintf(o->cipher, sizeof(o->cipher), "%s", info.cipher);
	snprintf(o->alpn, sizeof(o->alpn), "%s", info.alpn);
	snprintf(o->sni, sizeof(o->sni), "%s", info.sni);
	snprintf(o->peer_subject, sizeof(o->peer_subject), "%s", info.peer_subject);
	o->peer_verified = info.peer_verified;
}

/* Runs in the worker: copy every live connection, then hand the copy over. */
static void snap_worker_fn(struct worker *w, void *arg)
{
	struct snap_part *part = arg;
	struct snap_req *req = part->req;
	struct statsrv_conn *out = NULL;
	size_t n = 0, i = 0;
	uint64_t now = ev_now(w->loop);
	bool last;

	for (struct conn *c = w->conns; c; c = c->next)
		n++;
	if (n)
		out = calloc(n, sizeof(*out));
	for (struct conn *c = w->conns; c && out; c = c->next, i++) {
		struct statsrv_conn *o = &out[i];

		o->id = c->id;
		o->worker = w->idx;
		o->state = conn_state_name(c->state);
		o->age_ms = now - c->accepted_ms;
		snprintf(o->client_addr, sizeof(o->client_addr), "%s", c->peer);
		o->bytes_c2s = c->c2s.bytes;
		o->bytes_s2c = c->s2c.bytes;
		copy_hop(&o->client, &c->client);
		copy_hop(&o->server, &c->server);
		/* Only once there is an upstream TLS session to present it in. */
		if (c->identity && o->server.tls)
			snprintf(o->upstream_identity, sizeof(o->upstream_identity), "%s",
				 c->identity->subject);
		if (o->server.remote_len)
			sock_addr_str((struct sockaddr *)&o->server.remote, o->server.remote_len,
				      o->upstream_addr, sizeof(o->upstream_addr));
		else
			snprintf(o->upstream_addr, sizeof(o->upstream_addr), "%s",
				 c->rt->upstream_str);
	}
	pthread_mutex_lock(&req->lock);
	if (req->abandoned) {
		free(out);
	} else {
		part->conns = out;
		part->n = out ? n : 0;
	}
	part->done = true;
	req->pending--;
	snap_req_put_locked(req, &last);
	pthread_cond_signal(&req->cond);
	pthread_mutex_unlock(&req->lock);
	if (last)
		snap_req_free(req);
}

/* ---- snapshot: the stats thread side ---- */

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t started_ms;	/* ev_monotonic_ms() at statsrv_start() */

/* Ask every worker, wait at most @timeout_ms, move the answers into @s. */
static int gather_conns(struct worker *workers, size_t n_workers, unsigned timeout_ms,
			struct statsrv_snapshot *s)
{
	struct snap_req *req = calloc(1, sizeof(*req) + n_workers * sizeof(req->parts[0]));
	pthread_condattr_t ca;
	struct timespec deadline;
	size_t total = 0;
	bool last;

	if (!req)
		return -ENOMEM;
	pthread_mutex_init(&req->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&req->cond, &ca);
	pthread_condattr_destroy(&ca);
	req->n = n_workers;
	req->refs = (unsigned)n_workers + 1;
	req->pending = (unsigned)n_workers;
	for (size_t i = 0; i < n_workers; i++) {
		req->parts[i].req = req;
		req->parts[i].call.fn = snap_worker_fn;
		req->parts[i].call.arg = &req->parts[i];
		worker_call(&workers[i], &req->parts[i].call);
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&req->lock);
	while (req->pending > 0)
		if (pthread_cond_timedwait(&req->cond, &req->lock, &deadline) == ETIMEDOUT)
			break;
	for (size_t i = 0; i < n_workers; i++)
		total += req->parts[i].done ? req->parts[i].n : 0;
	s->conns = total ? calloc(total, sizeof(*s->conns)) : NULL;
	for (size_t i = 0; i < n_workers; i++) {
		struct snap_part *p = &req->parts[i];

		if (!p->done) {
			if (s->workers_late < PGKTLS_ARRAY_SIZE(s->late))
				s->late[s->workers_late] = (unsigned)i;
			s->workers_late++;
			continue;
		}
		if (s->conns && p->n) {
			memcpy(s->conns + s->n_conns, p->conns, p->n * sizeof(*p->conns));
			s->n_conns += p->n;
		}
	}
	req->abandoned = true;
	snap_req_put_locked(req, &last);
	pthread_mutex_unlock(&req->lock);
	if (last)
		snap_req_free(req);
	return total && !s->conns ? -ENOMEM : 0;
}

static bool hop_offloaded(const struct statsrv_hop *h)
{
	return h->ktls.rx == KTLS_ENGINE_KERNEL || h->ktls.tx == KTLS_ENGINE_KERNEL;
}

/* The kernel's own view of one hop (kTLS hops only: this is not free). */
static void kernel_view(struct nl_ctx *nl, int nl_err, bool net_admin, struct statsrv_hop *h)
{
	int r;

	h->kernel_err = -ENODATA;
	if (!h->open) {
		h->kernel_why = "hop not connected";
		return;
	}
	if (!h->is_tcp) {
		h->kernel_why = "unix socket: no kTLS";
		return;
	}
	if (!hop_offloaded(h)) {
		h->kernel_why = h->tls ? "not offloaded: TLS runs in pgktls (userspace)"
				       : "no TLS on this hop";
		return;
	}
	if (!nl) {
		h->kernel_err = nl_err;
		h->kernel_why = "netlink sockets unavailable";
		return;
	}
	if (!h->local_len || !h->remote_len) {
		h->kernel_why = "socket addresses unknown";
		return;
	}
	r = nl_diag_query(nl, (struct sockaddr *)&h->local, (struct sockaddr *)&h->remote,
			  &h->kernel);
	if (r == 0 && h->inode && h->kernel.inode != h->inode)
		r = -ENOENT;	/* the 4-tuple was reused: not our socket any more */
	if (r < 0) {
		h->kernel_err = r;
		h->kernel_why = r == -ENOENT	   ? "socket not found (closed meanwhile?)"
				: r == -ETIMEDOUT  ? "sock_diag did not answer in time"
						   : "sock_diag query failed";
		return;
	}
	if (!h->kernel.has_ulp || !h->kernel.tls) {
		h->kernel_err = net_admin ? -ENODATA : -EPERM;
		h->kernel_why = net_admin ? "the kernel reports no TLS ULP on this socket"
					  : "pgktls lacks CAP_NET_ADMIN: the kernel hides the ULP "
					    "info";
		return;
	}
	h->kernel_err = 0;
	h->kernel_why = NULL;
}

/* The interface that owns @sa's address, from getifaddrs(). */
static const char *iface_of(const struct ifaddrs *ifs, const struct sockaddr_storage *sa)
{
	for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != sa->ss_family)
			continue;
		if (sa->ss_family == AF_INET &&
		    !memcmp(&((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr,
			    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
			    sizeof(struct in_addr)))
			return i->ifa_name;
		if (sa->ss_family == AF_INET6 &&
		    !memcmp(&((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr,
			    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			    sizeof(struct in6_addr)))
			return i->ifa_name;
	}
	return NULL;
}

static void add_iface(struct statsrv_snapshot *s, const struct ifaddrs *ifs,
		      const struct statsrv_hop *h)
{
	const char *name;

	if (!h->open || !h->is_tcp || !h->local_len)
		return;
	name = iface_of(ifs, &h->local);
	if (!name)
		return;
	for (size_t i = 0; i < s->n_ifaces; i++)
		if (!strcmp(s->ifaces[i].name, name))
			return;
	if (s->n_ifaces == STATSRV_MAX_IFACES)
		return;
	snprintf(s->ifaces[s->n_ifaces].name, sizeof(s->ifaces[0].name), "%s", name);
	s->n_ifaces++;
}

static void gather_kernel(struct nl_ctx *nl, int nl_err, struct statsrv_snapshot *s)
{
	struct ifaddrs *ifs = NULL;

	s->netlink_err = nl ? 0 : nl_err;
	s->net_admin = nl_have_net_admin();
	s->tls_stat_err = nl_tls_stat_read(&s->tls_stat);
	s->ktls_available = s->tls_stat_err == 0;
	for (size_t i = 0; i < s->n_conns; i++) {
		kernel_view(nl, nl_err, s->net_admin, &s->conns[i].client);
		kernel_view(nl, nl_err, s->net_admin, &s->conns[i].server);
	}
	s->ifaces = calloc(STATSRV_MAX_IFACES, sizeof(*s->ifaces));
	if (!s->ifaces || getifaddrs(&ifs) == -1)
		return;
	for (size_t i = 0; i < s->n_conns; i++) {
		add_iface(s, ifs, &s->conns[i].client);
		add_iface(s, ifs, &s->conns[i].server);
	}
	freeifaddrs(ifs);
	for (size_t i = 0; i < s->n_ifaces; i++)
		s->ifaces[i].err = nl ? nl_ethtool_query(nl, s->ifaces[i].name, &s->ifaces[i].nic)
				      : nl_err;
}

int statsrv_collect(struct worker *workers, size_t n_workers, unsigned timeout_ms,
		    struct nl_ctx *nl, int nl_err, struct statsrv_snapshot *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	out->version = PACKAGE_VERSION;
	out->pid = (long)getpid();
	out->time_ms = wall_ms();
	out->uptime_ms = started_ms ? ev_monotonic_ms() - started_ms : 0;
	out->n_workers = (unsigned)n_workers;
	for (size_t i = 0; i < n_workers; i++)
		stats_add(&out->totals, &workers[i].stats);
	out->process.reloads_ok = __atomic_load_n(&stats_process.reloads_ok, __ATOMIC_RELAXED);
	out->process.reloads_failed =
		__atomic_load_n(&stats_process.reloads_failed, __ATOMIC_RELAXED);
	/* Written once before any thread started. */
	out->process.listen_sockets = stats_process.listen_sockets;
	out->process.listen_from_systemd = stats_process.listen_from_systemd;
	stats_process_upgrade_load(&out->process);
	r = gather_conns(workers, n_workers, timeout_ms, out);
	if (r < 0)
		return r;
	gather_kernel(nl, nl_err, out);
	return 0;
}

void statsrv_snapshot_fini(struct statsrv_snapshot *s)
{
	free(s->conns);
	free(s->ifaces);
	memset(s, 0, sizeof(*s));
}

/* ---- rendering ---- */

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
static const char *dir_engine(const struct statsrv_hop *h, bool tx)
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

static cJSON *render_dir(const struct statsrv_hop *h, bool tx)
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

static cJSON *render_hop(const struct statsrv_hop *h)
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

static cJSON *render_conn(const struct statsrv_conn *c)
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
static cJSON *stats_render_upgrade(const struct stats_process *p)
{
	cJSON *o = cJSON_CreateObject(), *prev;

	cJSON_AddStringToObject(o, "state", p->upgrade_child_pid ? "handing_over" : "none");
	put_u64(o, "started", p->upgrades_started);
	put_u64(o, "ok", p->upgrades_ok);
	put_u64(o, "failed", p->upgrades_failed);
	if (p->upgrade_child_pid)
		put_u64(o, "new_pid", p->upgrade_child_pid);
	if (p->upgrade_error[0])
		cJSON_AddStringToObject(o, "last_error", p->upgrade_error);
	if (p->adopted_from_pid) {
		prev = cJSON_AddObjectToObject(o, "previous");
		put_u64(prev, "pid", p->adopted_from_pid);
		put_u64(prev, "listeners", p->adopted_listeners);
		cJSON_AddBoolToObject(prev, "running", p->previous_running != 0);
		put_u64(prev, "draining", p->previous_draining);
	}
	return o;
}

static cJSON *render_totals(const struct statsrv_snapshot *s)
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
		put_u64(y, "completed",
			h == STATS_HOP_CLIENT ? t->client_tls_handshakes : t->upstream_tls_handshakes);
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
		const struct statsrv_hop *hp[2] = { &s->conns[i].client, &s->conns[i].server };

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
		cJSON_AddItemToObject(y, "rx", fallback_reasons(t->ktls_dir_fallback[h][STATS_DIR_RX]));
		cJSON_AddItemToObject(y, "tx", fallback_reasons(t->ktls_dir_fallback[h][STATS_DIR_TX]));
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

	x = cJSON_AddObjectToObject(o, "config_reloads");
	put_u64(x, "ok", s->process.reloads_ok);
	put_u64(x, "failed", s->process.reloads_failed);

	x = cJSON_AddObjectToObject(o, "metrics_endpoint");
	put_bool(x, "enabled", s->metrics.enabled);
	put_u64(x, "scrapes", s->metrics.scrapes);
	y = cJSON_AddObjectToObject(x, "refused");
	for (unsigned r = 0; r < STATSRV_REFUSED__N; r++)
		put_u64(y, statsrv_refusal_name(r), s->metrics.refused[r]);

	/* Every flat counter under its own name, for generic consumers. */
	x = cJSON_AddObjectToObject(o, "counters");
#define STATS_JSON(name, help) put_u64(x, #name, t->name);
	STATS_COUNTERS(STATS_JSON)
#undef STATS_JSON
	(void)names;
	return o;
}

static cJSON *render_kernel(const struct statsrv_snapshot *s)
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
		const struct statsrv_iface *f = &s->ifaces[i];
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

cJSON *statsrv_render_error(const char *code, const char *msg)
{
	cJSON *root = cJSON_CreateObject(), *e;

	if (!root)
		return NULL;
	put_u64(root, "schema", STATSRV_SCHEMA);
	e = cJSON_AddObjectToObject(root, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	return root;
}

cJSON *statsrv_render(const struct statsrv_snapshot *s, enum statsrv_what what, uint64_t id)
{
	cJSON *root, *w, *late, *arr;
	char msg[96];

	if (what == STATSRV_CONNECTION) {
		size_t i;

		for (i = 0; i < s->n_conns; i++)
			if (s->conns[i].id == id)
				break;
		if (i == s->n_conns) {
			snprintf(msg, sizeof(msg), "no connection %llu", (unsigned long long)id);
			return statsrv_render_error("not_found", msg);
		}
	}
	root = cJSON_CreateObject();
	if (!root)
		return NULL;
	put_u64(root, "schema", STATSRV_SCHEMA);
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
	cJSON_AddItemToObject(root, "upgrade", stats_render_upgrade(&s->process));
	if (what == STATSRV_ALL || what == STATSRV_TOTALS) {
		cJSON_AddItemToObject(root, "totals", render_totals(s));
		cJSON_AddItemToObject(root, "kernel", render_kernel(s));
	}
	if (what == STATSRV_ALL || what == STATSRV_CONNECTIONS) {
		arr = cJSON_AddArrayToObject(root, "connections");
		for (size_t i = 0; i < s->n_conns; i++)
			cJSON_AddItemToArray(arr, render_conn(&s->conns[i]));
	}
	if (what == STATSRV_CONNECTION)
		for (size_t i = 0; i < s->n_conns; i++)
			if (s->conns[i].id == id)
				cJSON_AddItemToObject(root, "connection", render_conn(&s->conns[i]));
	return root;
}

/* ---- the server ---- */

struct sclient {
	struct statsrv *srv;
	struct ev_io io;
	struct ev_timer timer;		/* request wait, answer deadline, then lingering */
	uint64_t deadline;		/* ev_now() by which the answer must be read */
	char *req;			/* what the client sent so far (malloc) */
	size_t req_len, req_cap;
	bool http;			/* from metrics_listen: HTTP, not the line protocol */
	bool answering;			/* request read: waiting for a snapshot, or writing */
	bool ready;			/* waiting for the next snapshot round */
	bool lingering;			/* HTTP: answer sent, draining input before close */
	bool head_only;			/* HTTP HEAD: the answer's head only */
	bool openmetrics;		/* HTTP: the client's Accept chose OpenMetrics */
	enum statsrv_what what;		/* the parsed request, while ready */
	uint64_t id;
	char *out;			/* the answer, freed with out_free() */
	void (*out_free)(void *p);	/* cJSON_free for documents, free for HTTP */
	size_t out_len, out_off;
	size_t drained;			/* lingering: bytes read and dropped */
	struct sclient *prev, *next;
};

struct statsrv {
	statsrv_reload_fn *reload;	/* the "reload" request, or NULL */
	bool keep_path;			/* an upgrade's new process serves the path now */
	void *reload_arg;
	struct ev_loop *loop;
	pthread_t thread;
	bool thread_started;
	int lfd;			/* the unix socket, or -1 */
	struct ev_io lio;
	int hlfd;			/* the metrics_listen socket, or -1 */
	struct ev_io hlio;
	struct statsrv_metrics_stats metrics; /* the HTTP endpoint's counters */
	char *path;
	struct worker *workers;
	size_t n_workers;
	struct nl_ctx *nl;
	int nl_err;
	struct sclient *clients;
	unsigned n_clients;
	bool stopping;
	/*
	 * Scrapers whose request is in wait for the next round: one snapshot
	 * serves all of them, so many scrapers cost one snapshot, not one each.
	 */
	struct ev_timer round;
	unsigned n_ready;
};

static void client_free(struct sclient *cl)
{
	struct statsrv *srv = cl->srv;

	ev_io_stop(srv->loop, &cl->io);
	ev_timer_stop(srv->loop, &cl->timer);
	close(cl->io.fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		srv->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	srv->n_clients--;
	if (cl->ready)
		srv->n_ready--;
	if (cl->out)
		cl->out_free(cl->out);
	free(cl->req);
	free(cl);
}

static void http_linger(struct sclient *cl);

static void client_write(struct sclient *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->io.fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (ev_io_set(cl->srv->loop, &cl->io, EPOLLOUT) < 0)
				client_free(cl);
			return;
		}
		if (n <= 0) {
			client_free(cl);	/* the scraper went away */
			return;
		}
		cl->out_off += (size_t)n;
	}
	if (cl->http)
		http_linger(cl);
	else
		client_free(cl);	/* everything is queued in the socket: EOF follows */
}

/* Print @doc (taken over) into @cl's buffer and start writing it. */
static void client_start_write(struct sclient *cl, cJSON *doc)
{
	cl->out = doc ? cJSON_PrintUnformatted(doc) : NULL;
	cl->out_free = cJSON_free;
	cJSON_Delete(doc);
	if (!cl->out) {
		client_free(cl);
		return;
	}
	cl->out_len = strlen(cl->out);
	cl->out[cl->out_len++] = '\n';	/* replaces the NUL: one line per document */
	client_write(cl);
}

/* ---- HTTP (metrics_listen) ---- */

static const char *status_text(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/*
 * @cl's request is read: stop reading it and keep its deadline for the
 * answer. Return: false if @cl was dropped (it must not be used again).
 */
static bool start_answer(struct sclient *cl)
{
	struct statsrv *srv = cl->srv;

	cl->answering = true;
	ev_timer_start(srv->loop, &cl->timer,
		       cl->deadline > ev_now(srv->loop) ? cl->deadline - ev_now(srv->loop) : 1);
	if (ev_io_set(srv->loop, &cl->io, 0) < 0) {
		client_free(cl);
		return false;
	}
	return true;
}

/*
 * Answer @cl with @status and @body (left out for HEAD), then close: every
 * answer says "Connection: close", so there is no keep-alive state to get
 * wrong. An answer that cannot be built drops the connection.
 */
static void http_respond(struct sclient *cl, unsigned status, const char *ctype,
			 const char *body, size_t body_len)
{
	char head[320];
	int n;

	if (!start_answer(cl))
		return;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n%s%s\r\n",
		     status, status_text(status), ctype, body_len,
		     status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     status == 503 ? "Retry-After: 1\r\n" : "");
	if (cl->head_only)
		body_len = 0;
	cl->out = malloc((size_t)n + body_len);
	cl->out_free = free;
	if (!cl->out) {
		client_free(cl);
		return;
	}
	memcpy(cl->out, head, (size_t)n);
	if (body_len)
		memcpy(cl->out + n, body, body_len);
	cl->out_len = (size_t)n + body_len;
	client_write(cl);
}

/* Refuse @cl's request: count it under @why, answer @status with a one-line reason. */
static void http_refuse(struct sclient *cl, enum statsrv_refusal why, unsigned status,
			const char *msg)
{
	char body[160];
	int n;

	cl->srv->metrics.refused[why]++;
	log_debug("stats: metrics request refused: %u %s (%s)", status, status_text(status), msg);
	n = snprintf(body, sizeof(body), "%u %s: %s\n", status, status_text(status), msg);
	http_respond(cl, status, "text/plain; charset=utf-8", body,
		     n < (int)sizeof(body) ? (size_t)n : sizeof(body) - 1);
}

static enum statsrv_refusal refusal_of(unsigned status)
{
	switch (status) {
	case 404: return STATSRV_REFUSED_NOT_FOUND;
	case 405: return STATSRV_REFUSED_METHOD;
	case 408: return STATSRV_REFUSED_TIMEOUT;
	case 413:
	case 414:
	case 431: return STATSRV_REFUSED_TOO_LARGE;
	case 505: return STATSRV_REFUSED_VERSION;
	default: return STATSRV_REFUSED_BAD_REQUEST;
	}
}

/*
 * The answer is queued: stop sending, and read (and drop) what the client
 * still sends until it closes, for at most STATSRV_LINGER_MS. Closing with
 * unread input would send a reset, which can destroy the answer before the
 * client reads it: exactly the 431 or 413 of a client still sending.
 */
static void http_linger(struct sclient *cl)
{
	struct statsrv *srv = cl->srv;
	uint64_t left = cl->deadline > ev_now(srv->loop) ? cl->deadline - ev_now(srv->loop) : 1;

	cl->lingering = true;
	if (shutdown(cl->io.fd, SHUT_WR) == -1 || ev_io_set(srv->loop, &cl->io, EPOLLIN) < 0) {
		client_free(cl);
		return;
	}
	ev_timer_start(srv->loop, &cl->timer, left < STATSRV_LINGER_MS ? left : STATSRV_LINGER_MS);
}

static void http_drain(struct sclient *cl)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(cl->io.fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0 || (cl->drained += (size_t)n) > STATSRV_LINGER_MAX) {
			client_free(cl);
			return;
		}
	}
}

/* A whole, well-formed request head: route it. */
static void http_route(struct sclient *cl, const struct httpreq *r)
{
	struct statsrv *srv = cl->srv;
	const char *path = cl->req + r->path_off;

	cl->head_only = r->method == HTTPREQ_HEAD;
	if (r->path_len != 8 || memcmp(path, "/metrics", 8)) {
		http_refuse(cl, STATSRV_REFUSED_NOT_FOUND, 404, "only /metrics is served here");
		return;
	}
	if (r->method == HTTPREQ_OTHER) {
		http_refuse(cl, STATSRV_REFUSED_METHOD, 405, "only GET and HEAD are allowed");
		return;
	}
	cl->openmetrics = httpreq_wants_openmetrics(r->accept);
	if (!start_answer(cl))
		return;
	/* Counted now, so the scrape sees itself: the counter moves once per scrape. */
	srv->metrics.scrapes++;
	cl->ready = true;
	srv->n_ready++;
	if (!ev_timer_armed(&srv->round))
		ev_timer_start(srv->loop, &srv->round, 0);
}

static void http_read(struct sclient *cl)
{
	struct httpreq r;
	ssize_t n;

	n = recv(cl->io.fd, cl->req + cl->req_len, cl->req_cap - cl->req_len, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		if (cl->req_len)
			cl->srv->metrics.refused[STATSRV_REFUSED_ABORTED]++;
		client_free(cl);
		return;
	}
	cl->req_len += (size_t)n;
	switch (httpreq_parse(cl->req, cl->req_len, &r)) {
	case HTTPREQ_INCOMPLETE:
		if (n > 0)
			return;
		/* A connection opened and closed without a byte is a port probe, not a request. */
		if (cl->req_len)
			cl->srv->metrics.refused[STATSRV_REFUSED_ABORTED]++;
		client_free(cl);
		return;
	case HTTPREQ_BAD:
		http_refuse(cl, refusal_of(r.status), r.status, r.error);
		return;
	case HTTPREQ_DONE:
		http_route(cl, &r);
		return;
	}
}

/* The body of a 200 for one format, rendered at most once per round. */
struct http_body {
	char *text;	/* NULL until rendered; free() */
	size_t len;
	bool failed;
};

static void http_render(const struct statsrv_snapshot *snap, bool om, struct http_body *b)
{
	cJSON *doc;
	FILE *f;
	int r = -ENOMEM;

	if (b->text || b->failed)
		return;
	doc = statsrv_render(snap, STATSRV_TOTALS, 0);
	f = open_memstream(&b->text, &b->len);
	if (doc && f)
		r = statfmt_prometheus(doc, om, f);
	if (f && fclose(f) != 0)
		r = -ENOMEM;
	cJSON_Delete(doc);
	if (r < 0) {
		free(b->text);
		b->text = NULL;
		b->failed = true;
	}
}

/*
 * One round: one snapshot (started after every waiting request arrived, so
 * nobody gets data older than its request), one answer per waiting client.
 */
static void round_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct statsrv *srv = container_of(t, struct statsrv, round);
	struct statsrv_snapshot snap;
	struct sclient *cl, *next;
	uint64_t t0 = ev_monotonic_ms();
	bool ok;

	(void)loop;
	struct http_body bodies[2] = { { 0 } };	/* text format, OpenMetrics */

	ok = statsrv_collect(srv->workers, srv->n_workers, STATSRV_WORKER_MS, srv->nl, srv->nl_err,
			     &snap) == 0;
	snap.metrics = srv->metrics;
	if (snap.workers_late)
		log_warn("stats: %u worker(s) did not answer within %d ms", snap.workers_late,
			 STATSRV_WORKER_MS);
	log_debug("stats: snapshot of %zu connections for %u scrapers in %llu ms", snap.n_conns,
		  srv->n_ready, (unsigned long long)(ev_monotonic_ms() - t0));
	for (cl = srv->clients; cl; cl = next) {
		next = cl->next;	/* client_start_write() may free cl */
		if (!cl->ready)
			continue;
		cl->ready = false;
		srv->n_ready--;
		if (cl->http) {
			struct http_body *b = &bodies[cl->openmetrics];

			if (ok)
				http_render(&snap, cl->openmetrics, b);
			if (!ok || !b->text) {
				http_refuse(cl, STATSRV_REFUSED_INTERNAL, 500,
					    "out of memory taking the snapshot");
				continue;
			}
			http_respond(cl, 200,
				     cl->openmetrics
					     ? "application/openmetrics-text; version=1.0.0; "
					       "charset=utf-8"
					     : "text/plain; version=0.0.4; charset=utf-8",
				     b->text, b->len);
			continue;
		}
		client_start_write(cl, ok ? statsrv_render(&snap, cl->what, cl->id)
					  : statsrv_render_error("internal",
								 "out of memory taking the snapshot"));
	}
	free(bodies[0].text);
	free(bodies[1].text);
	statsrv_snapshot_fini(&snap);
}

/* The request is complete (or the wait is over): answer now, or in the next round. */
/*
 * "reload": run it here, in the stats thread (it reads files and builds TLS
 * contexts: milliseconds), and answer {"reload": {"ok": ..., "message": ...}}.
 */
static cJSON *render_reload(struct statsrv *srv)
{
	char msg[1200];
	cJSON *root, *r;
	int ret;

	if (!srv->reload)
		return statsrv_render_error("unsupported", "reload is not available here");
	ret = srv->reload(srv->reload_arg, msg, sizeof(msg));
	root = cJSON_CreateObject();
	if (!root)
		return NULL;
	r = cJSON_AddObjectToObject(root, "reload");
	if (!r || !cJSON_AddBoolToObject(r, "ok", ret == 0) ||
	    !cJSON_AddStringToObject(r, "message", msg)) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

static void client_answer(struct sclient *cl)
{
	struct statsrv *srv = cl->srv;
	char err[160];

	cl->answering = true;
	/* From here on the whole deadline applies; we stop reading. */
	ev_timer_start(srv->loop, &cl->timer,
		       cl->deadline > ev_now(srv->loop) ? cl->deadline - ev_now(srv->loop) : 1);
	if (ev_io_set(srv->loop, &cl->io, 0) < 0) {
		client_free(cl);
		return;
	}
	if (statsrv_parse_request(cl->req, cl->req_len, &cl->what, &cl->id, err, sizeof(err)) < 0) {
		client_start_write(cl, statsrv_render_error("bad_request", err));
		return;
	}
	if (cl->what == STATSRV_RELOAD) {
		client_start_write(cl, render_reload(srv));
		return;
	}
	cl->ready = true;
	srv->n_ready++;
	if (!ev_timer_armed(&srv->round))
		ev_timer_start(srv->loop, &srv->round, 0);
}

static void client_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct sclient *cl = container_of(io, struct sclient, io);
	char *nl;
	ssize_t n;

	(void)loop;
	if (cl->lingering) {
		http_drain(cl);
		return;
	}
	if (cl->answering) {
		client_write(cl);
		return;
	}
	if (cl->http) {
		http_read(cl);
		return;
	}
	n = recv(io->fd, cl->req + cl->req_len, cl->req_cap - 1 - cl->req_len, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		client_free(cl);
		return;
	}
	cl->req_len += (size_t)n;
	cl->req[cl->req_len] = '\0';
	nl = memchr(cl->req, '\n', cl->req_len);
	if (nl) {
		/* Anything after the first line is ignored. */
		cl->req_len = (size_t)(nl - cl->req) + 1;
		client_answer(cl);
		return;
	}
	if (n == 0 || cl->req_len >= cl->req_cap - 1)
		client_answer(cl);	/* EOF ends the request; an overlong one is refused */
	(void)events;
}

static void client_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct sclient *cl = container_of(t, struct sclient, timer);

	(void)loop;
	if (!cl->answering && cl->http)
		http_refuse(cl, STATSRV_REFUSED_TIMEOUT, 408, "the request did not arrive in time");
	else if (!cl->answering)
		client_answer(cl);	/* no newline in time: whatever came is the request */
	else
		client_free(cl);	/* never read its answer, or lingered long enough */
}

/* Accept every pending client of one listening socket: @http for metrics_listen. */
static void accept_clients(struct statsrv *srv, int lfd, bool http)
{
	static const char busy[] = "{\"schema\":1,\"error\":{\"code\":\"busy\","
				   "\"message\":\"too many stats clients\"}}\n";
	static const char http_busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
					"Content-Type: text/plain; charset=utf-8\r\n"
					"Content-Length: 22\r\nConnection: close\r\n"
					"Retry-After: 1\r\n\r\ntoo many stats clients";

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct sclient *cl;

		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("stats: accept: %s", strerror(errno));
			return;
		}
		if (srv->n_clients >= STATSRV_MAX_CLIENTS) {
			/* Best effort: no buffer, no state; the request is never read. */
			if (http) {
				srv->metrics.refused[STATSRV_REFUSED_BUSY]++;
				(void)!send(fd, http_busy, sizeof(http_busy) - 1,
					    MSG_NOSIGNAL | MSG_DONTWAIT);
			} else {
				(void)!send(fd, busy, sizeof(busy) - 1,
					    MSG_NOSIGNAL | MSG_DONTWAIT);
			}
			close(fd);
			continue;
		}
		cl = calloc(1, sizeof(*cl));
		if (cl) {
			cl->req_cap = http ? HTTPREQ_HEAD_MAX : STATSRV_REQ_MAX + 2;
			cl->req = malloc(cl->req_cap);
		}
		if (!cl || !cl->req) {
			free(cl);
			close(fd);
			continue;
		}
		cl->srv = srv;
		cl->http = http;
		ev_io_init(&cl->io, fd, client_io_cb);
		ev_timer_init(&cl->timer, client_timer_cb);
		cl->deadline = ev_now(srv->loop) + STATSRV_CLIENT_MS;
		cl->next = srv->clients;
		if (srv->clients)
			srv->clients->prev = cl;
		srv->clients = cl;
		srv->n_clients++;
		if (ev_io_set(srv->loop, &cl->io, EPOLLIN) < 0) {
			client_free(cl);
			continue;
		}
		ev_timer_start(srv->loop, &cl->timer,
			       http ? STATSRV_HTTP_REQ_MS : STATSRV_REQ_WAIT_MS);
	}
}

static void accept_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	accept_clients(container_of(io, struct statsrv, lio), io->fd, false);
}

static void accept_http_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	accept_clients(container_of(io, struct statsrv, hlio), io->fd, true);
}

static void on_wakeup(struct ev_loop *loop, void *arg)
{
	struct statsrv *srv = arg;

	if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
		ev_loop_break(loop);
}

static void *statsrv_main(void *arg)
{
	struct statsrv *srv = arg;

	if (ev_run(srv->loop) < 0)
		log_err("stats: event loop failed: %s", strerror(errno));
	return NULL;
}

/* Bind @path, refusing to take over a socket another process still serves. */
static int bind_socket(const struct statsrv_opts *o)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, probe, r;

	if (strlen(o->path) >= sizeof(un.sun_path))
		return -ENAMETOOLONG;
	memcpy(un.sun_path, o->path, strlen(o->path));
	if (lstat(o->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe == -1)
			return -errno;
		r = connect(probe, (struct sockaddr *)&un, sizeof(un));
		close(probe);
		if (r == 0)
			return -EADDRINUSE;	/* someone is serving it */
		unlink(o->path);		/* stale, from a previous run */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (bind(fd, (struct sockaddr *)&un, sizeof(un)) == -1)
		goto err;
	/* Permissions before listen(): nobody can connect in between. */
	if (chmod(o->path, o->mode & 07777) == -1)
		goto err_unlink;
	if ((o->uid >= 0 || o->gid >= 0) &&
	    chown(o->path, o->uid >= 0 ? (uid_t)o->uid : (uid_t)-1,
		  o->gid >= 0 ? (gid_t)o->gid : (gid_t)-1) == -1)
		goto err_unlink;
	if (listen(fd, 64) == -1)
		goto err_unlink;
	return fd;
err_unlink:
	r = -errno;
	unlink(o->path);
	close(fd);
	return r;
err:
	r = -errno;
	close(fd);
	return r;
}

/*
 * The metrics_listen socket. SO_REUSEADDR (a restart need not wait out
 * TIME_WAIT) but not SO_REUSEPORT: a second pgktls on the same address must
 * fail to start rather than take every other scrape.
 */
static int bind_http(const char *hostport)
{
	struct sock_addr a;
	int fd, one = 1, r;

	r = sock_parse_hostport(hostport, &a);
	if (r < 0)
		return r;
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (a.ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&a.ss, a.len) == -1 || listen(fd, 64) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int statsrv_start(const struct statsrv_opts *opts, struct worker *workers, size_t n_workers,
		  struct statsrv **out)
{
	struct statsrv *srv = calloc(1, sizeof(*srv));
	int r;

	*out = NULL;
	if (!srv)
		return -ENOMEM;
	if (!started_ms)
		started_ms = ev_monotonic_ms();
	srv->lfd = -1;
	srv->hlfd = -1;
	srv->workers = workers;
	srv->n_workers = n_workers;
	srv->reload = opts->reload;
	srv->reload_arg = opts->reload_arg;
	srv->path = opts->path ? strdup(opts->path) : NULL;
	srv->loop = ev_loop_new();
	if ((opts->path && !srv->path) || !srv->loop) {
		r = -ENOMEM;
		goto err;
	}
	if (opts->path) {
		r = opts->inherit && opts->inherit_fd >= 0 ? opts->inherit_fd : bind_socket(opts);
		if (r < 0)
			goto err;
		srv->lfd = r;
	}
	if (opts->metrics_listen) {
		r = opts->inherit && opts->inherit_http_fd >= 0 ? opts->inherit_http_fd
								 : bind_http(opts->metrics_listen);
		if (r < 0)
			goto err;
		srv->hlfd = r;
		srv->metrics.enabled = true;
	}
	/* Without netlink the document still comes, saying why the kernel view is missing. */
	srv->nl_err = nl_open(&srv->nl);
	if (srv->nl_err < 0)
		log_warn("stats: netlink unavailable (%s): no kernel view of sockets",
			 strerror(-srv->nl_err));
	if (srv->lfd >= 0) {
		ev_io_init(&srv->lio, srv->lfd, accept_cb);
		r = ev_io_set(srv->loop, &srv->lio, EPOLLIN);
		if (r < 0)
			goto err;
	}
	if (srv->hlfd >= 0) {
		ev_io_init(&srv->hlio, srv->hlfd, accept_http_cb);
		r = ev_io_set(srv->loop, &srv->hlio, EPOLLIN);
		if (r < 0)
			goto err;
	}
	ev_loop_set_wakeup_cb(srv->loop, on_wakeup, srv);
	ev_timer_init(&srv->round, round_cb);
	r = -pthread_create(&srv->thread, NULL, statsrv_main, srv);
	if (r < 0)
		goto err;
	srv->thread_started = true;
	if (srv->path)
		log_info("stats: serving on %s (mode %04o)", srv->path, opts->mode & 07777);
	if (srv->hlfd >= 0)
		log_info("stats: serving metrics on http://%s/metrics", opts->metrics_listen);
	*out = srv;
	return 0;
err:
	if (srv->lfd >= 0 && !(opts->inherit && opts->inherit_fd >= 0))
		unlink(srv->path);
	srv->keep_path = opts->inherit && opts->inherit_fd >= 0;
	statsrv_stop(srv);
	return r;
}

void statsrv_listen_fds(const struct statsrv *srv, int *fd, int *http_fd)
{
	*fd = srv ? srv->lfd : -1;
	*http_fd = srv ? srv->hlfd : -1;
}

void statsrv_keep_path(struct statsrv *srv)
{
	if (srv)
		srv->keep_path = true;
}

void statsrv_stop(struct statsrv *srv)
{
	if (!srv)
		return;
	if (srv->thread_started) {
		__atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
		ev_loop_wakeup(srv->loop);
		pthread_join(srv->thread, NULL);
		if (srv->path && !srv->keep_path)
			unlink(srv->path);
	}
	while (srv->clients)
		client_free(srv->clients);
	if (srv->lfd >= 0) {
		ev_io_stop(srv->loop, &srv->lio);
		close(srv->lfd);
	}
	if (srv->hlfd >= 0) {
		ev_io_stop(srv->loop, &srv->hlio);
		close(srv->hlfd);
	}
	if (srv->loop)
		ev_timer_stop(srv->loop, &srv->round);
	nl_close(srv->nl);
	ev_loop_free(srv->loop);
	free(srv->path);
	free(srv);
}
