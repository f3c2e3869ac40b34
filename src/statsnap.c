// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * statsnap.c - the stats snapshot (see statsnap.h): counters summed, each
 * worker's connections copied by the worker itself, and the kernel's view
 * of the kTLS sockets and the interfaces they use.
 *
 * Workers only ever run snap_worker_fn() (through worker_call()), which
 * copies their own connections into a request object that is
 * reference-counted, so a worker that answers after the stats thread gave
 * up frees its answer itself.
 */
#include "config.h"

#include "pgktls/statsnap.h"

#include <sys/stat.h>
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
#include "pgktls/relay.h"
#include "pgktls/worker.h"

/* ---- snapshot: the worker side ---- */

struct snap_req;

struct snap_part {
	struct snap_req *req;
	struct worker_call call;
	struct statsnap_conn *conns;	/* the worker's answer */
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

static void copy_hop(struct statsnap_hop *o, const struct hop *h)
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
	o->record_layer = info.engine;
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
	struct statsnap_conn *out = NULL;
	size_t n = 0, i = 0;
	uint64_t now = ev_now(w->loop);
	bool last;

	for (struct conn *c = w->conns; c; c = c->next)
		n++;
	if (n)
		out = calloc(n, sizeof(*out));
	for (struct conn *c = w->conns; c && out; c = c->next, i++) {
		struct statsnap_conn *o = &out[i];

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

static uint64_t started_ms;	/* ev_monotonic_ms() at statsnap_mark_start() */

/* Ask every worker, wait at most @timeout_ms, move the answers into @s. */
static int gather_conns(struct worker *workers, size_t n_workers, unsigned timeout_ms,
			struct statsnap *s)
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

static bool hop_offloaded(const struct statsnap_hop *h)
{
	return h->ktls.rx == KTLS_ENGINE_KERNEL || h->ktls.tx == KTLS_ENGINE_KERNEL;
}

/* The kernel's own view of one hop (kTLS hops only: this is not free). */
static void kernel_view(struct nl_ctx *nl, int nl_err, bool net_admin, struct statsnap_hop *h)
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

static void add_iface(struct statsnap *s, const struct ifaddrs *ifs,
		      const struct statsnap_hop *h)
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
	if (s->n_ifaces == STATSNAP_MAX_IFACES)
		return;
	snprintf(s->ifaces[s->n_ifaces].name, sizeof(s->ifaces[0].name), "%s", name);
	s->n_ifaces++;
}

static void gather_kernel(struct nl_ctx *nl, int nl_err, struct statsnap *s)
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
	s->ifaces = calloc(STATSNAP_MAX_IFACES, sizeof(*s->ifaces));
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

int statsnap_collect(struct worker *workers, size_t n_workers, unsigned timeout_ms,
		    struct nl_ctx *nl, int nl_err, struct statsnap *out)
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

void statsnap_fini(struct statsnap *s)
{
	free(s->conns);
	free(s->ifaces);
	memset(s, 0, sizeof(*s));
}

void statsnap_mark_start(void)
{
	if (!started_ms)
		started_ms = ev_monotonic_ms();
}
