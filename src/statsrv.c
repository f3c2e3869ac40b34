// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * statsrv.c - the stats endpoint: the unix-socket server that hands the
 * document out (statsnap.c takes the snapshot, statjson.c renders it).
 *
 * Threads: the stats thread owns its ev loop, the listening socket, every
 * scraper connection and the netlink sockets. It takes the snapshots; the
 * workers only copy their own connections when asked (statsnap.c).
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pgktls/ev.h"
#include "pgktls/httpreq.h"
#include "pgktls/log.h"
#include "pgktls/nl.h"
#include "pgktls/sock.h"
#include "pgktls/statfmt.h"
#include "pgktls/statjson.h"
#include "pgktls/statsnap.h"

#define STATSRV_REQ_MAX 256		/* longest request line */
#define STATSRV_REQ_WAIT_MS 250		/* a client that sends nothing gets "all" after this */
#define STATSRV_CLIENT_MS 5000		/* a client must have read its answer by then */
#define STATSRV_MAX_CLIENTS 64		/* more are answered with an error and closed */
#define STATSRV_WORKER_MS 1000		/* how long the workers get to answer */
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
	struct statsnap_metrics metrics; /* the HTTP endpoint's counters */
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
static void http_refuse(struct sclient *cl, enum statsnap_refusal why, unsigned status,
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

static enum statsnap_refusal refusal_of(unsigned status)
{
	switch (status) {
	case 404: return STATSNAP_REFUSED_NOT_FOUND;
	case 405: return STATSNAP_REFUSED_METHOD;
	case 408: return STATSNAP_REFUSED_TIMEOUT;
	case 413:
	case 414:
	case 431: return STATSNAP_REFUSED_TOO_LARGE;
	case 505: return STATSNAP_REFUSED_VERSION;
	default: return STATSNAP_REFUSED_BAD_REQUEST;
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
		http_refuse(cl, STATSNAP_REFUSED_NOT_FOUND, 404, "only /metrics is served here");
		return;
	}
	if (r->method == HTTPREQ_OTHER) {
		http_refuse(cl, STATSNAP_REFUSED_METHOD, 405, "only GET and HEAD are allowed");
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
			cl->srv->metrics.refused[STATSNAP_REFUSED_ABORTED]++;
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
			cl->srv->metrics.refused[STATSNAP_REFUSED_ABORTED]++;
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

/* The part of the document a (non-reload) request asks for. */
static enum statjson_part part_of(enum statsrv_what what)
{
	switch (what) {
	case STATSRV_TOTALS:
		return STATJSON_TOTALS;
	case STATSRV_CONNECTIONS:
		return STATJSON_CONNECTIONS;
	case STATSRV_CONNECTION:
		return STATJSON_CONNECTION;
	default:	/* STATSRV_ALL; STATSRV_RELOAD never gets here */
		return STATJSON_ALL;
	}
}

/* The body of a 200 for one format, rendered at most once per round. */
struct http_body {
	char *text;	/* NULL until rendered; free() */
	size_t len;
	bool failed;
};

static void http_render(const struct statsnap *snap, bool om, struct http_body *b)
{
	cJSON *doc;
	FILE *f;
	int r = -ENOMEM;

	if (b->text || b->failed)
		return;
	doc = statjson_render(snap, STATJSON_TOTALS, 0);
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
	struct statsnap snap;
	struct sclient *cl, *next;
	uint64_t t0 = ev_monotonic_ms();
	bool ok;

	(void)loop;
	struct http_body bodies[2] = { { 0 } };	/* text format, OpenMetrics */

	ok = statsnap_collect(srv->workers, srv->n_workers, STATSRV_WORKER_MS, srv->nl, srv->nl_err,
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
				http_refuse(cl, STATSNAP_REFUSED_INTERNAL, 500,
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
		if (ok)
			client_start_write(cl, statjson_render(&snap, part_of(cl->what), cl->id));
		else
			client_start_write(cl, statjson_error("internal",
							      "out of memory taking the snapshot"));
	}
	free(bodies[0].text);
	free(bodies[1].text);
	statsnap_fini(&snap);
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
		return statjson_error("unsupported", "reload is not available here");
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
		client_start_write(cl, statjson_error("bad_request", err));
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
		http_refuse(cl, STATSNAP_REFUSED_TIMEOUT, 408,
			    "the request did not arrive in time");
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
				srv->metrics.refused[STATSNAP_REFUSED_BUSY]++;
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
	statsnap_mark_start();
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
