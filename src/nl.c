// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * nl.c - sock_diag, ethtool netlink and /proc/net/tls_stat, through libmnl.
 *
 * The kernel is the only source of truth for who does a kTLS socket's
 * crypto: the ULP may fall back to software silently when a NIC declines a
 * key, so pgktls asks rather than infers. Every reply is checked for its
 * sequence number and port id, attributes are validated by type and length,
 * and attributes we do not know are skipped (newer kernels add some).
 */
#include "config.h"

#include "pgktls/nl.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <linux/ethtool_netlink.h>
#include <linux/genetlink.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "pgktls/tls_uapi.h"

/* How long one netlink round trip may take before the query gives up. */
#define NL_TIMEOUT_MS 500

/* Our requests are a header and a few attributes. */
#define NL_REQ_MAX 512

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

struct nl_ctx {
	struct mnl_socket *diag;	/* NETLINK_SOCK_DIAG */
	struct mnl_socket *genl;	/* NETLINK_GENERIC, for ethtool */
	uint16_t ethtool_family;	/* 0 = not resolved yet */
	int ethtool_err;		/* sticky: resolving failed with this -errno */
	uint32_t seq;
};

static struct mnl_socket *open_one(int bus, int *err)
{
	struct mnl_socket *nl = mnl_socket_open2(bus, SOCK_CLOEXEC);
	struct timeval tv = { .tv_sec = 0, .tv_usec = NL_TIMEOUT_MS * 1000 };
	int one = 1;

	if (!nl) {
		*err = -errno;
		return NULL;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		*err = -errno;
		mnl_socket_close(nl);
		return NULL;
	}
	/* Extended acks are a nicety (better error text); old kernels lack them. */
	(void)mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1) {
		*err = -errno;
		mnl_socket_close(nl);
		return NULL;
	}
	return nl;
}

int nl_open(struct nl_ctx **out)
{
	struct nl_ctx *ctx = calloc(1, sizeof(*ctx));
	int err = 0;

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	ctx->diag = open_one(NETLINK_SOCK_DIAG, &err);
	if (!ctx->diag)
		goto err;
	ctx->genl = open_one(NETLINK_GENERIC, &err);
	if (!ctx->genl)
		goto err;
	ctx->seq = (uint32_t)time(NULL);
	*out = ctx;
	return 0;
err:
	nl_close(ctx);
	return err;
}

void nl_close(struct nl_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->diag)
		mnl_socket_close(ctx->diag);
	if (ctx->genl)
		mnl_socket_close(ctx->genl);
	free(ctx);
}

/*
 * Send @nlh and read one datagram of reply. A stale reply from an earlier
 * query that timed out has an older sequence number: skip it and read again.
 */
static ssize_t exchange(struct mnl_socket *nl, struct nlmsghdr *nlh, void *buf, size_t len)
{
	ssize_t n;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		const struct nlmsghdr *r = buf;

		n = recv(mnl_socket_get_fd(nl), buf, len, MSG_TRUNC);
		if (n == -1)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if ((size_t)n > len)
			return -EMSGSIZE;
		if ((size_t)n >= sizeof(*r) && r->nlmsg_seq != nlh->nlmsg_seq &&
		    r->nlmsg_seq != 0)
			continue;
		return n;
	}
}

/* ---- sock_diag ---- */

ssize_t nl_diag_exchange(struct nl_ctx *ctx, const struct sockaddr *local,
			 const struct sockaddr *remote, void *buf, size_t len)
{
	char req_buf[NL_REQ_MAX];
	struct nlmsghdr *nlh;
	struct inet_diag_req_v2 *req;

	if (local->sa_family != remote->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	nlh = mnl_nlmsg_put_header(req_buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++ctx->seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = (uint8_t)local->sa_family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = ~0u;
	/* The ULP info rides in the INET_DIAG_INFO extension (tcp_diag_get_aux). */
	req->idiag_ext = 1u << (INET_DIAG_INFO - 1);
	req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (local->sa_family == AF_INET) {
		const struct sockaddr_in *l = (const void *)local, *r = (const void *)remote;

		req->id.idiag_sport = l->sin_port;
		req->id.idiag_dport = r->sin_port;
		memcpy(req->id.idiag_src, &l->sin_addr, 4);
		memcpy(req->id.idiag_dst, &r->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const void *)local, *r = (const void *)remote;

		req->id.idiag_sport = l->sin6_port;
		req->id.idiag_dport = r->sin6_port;
		memcpy(req->id.idiag_src, &l->sin6_addr, 16);
		memcpy(req->id.idiag_dst, &r->sin6_addr, 16);
	}
	return exchange(ctx->diag, nlh, buf, len);
}

/* Attribute tables: mnl_attr_parse* callbacks that keep known, valid attributes. */
struct attr_tab {
	const struct nlattr **tb;
	unsigned max;
};

static int keep_attr(const struct nlattr *attr, void *data)
{
	struct attr_tab *t = data;
	unsigned type = mnl_attr_get_type(attr);

	if (type <= t->max)
		t->tb[type] = attr;
	return MNL_CB_OK;	/* unknown: skipped */
}

static uint16_t get_u16(const struct nlattr *a)
{
	return mnl_attr_validate(a, MNL_TYPE_U16) < 0 ? 0 : mnl_attr_get_u16(a);
}

static void parse_tls_info(const struct nlattr *nest, struct nl_sock_info *out)
{
	const struct nlattr *tb[PGKTLS_TLS_INFO_MAX + 1] = { NULL };
	struct attr_tab t = { tb, PGKTLS_TLS_INFO_MAX };

	if (mnl_attr_parse_nested(nest, keep_attr, &t) < 0)
		return;
	out->tls = true;
	if (tb[TLS_INFO_VERSION])
		out->tls_version = get_u16(tb[TLS_INFO_VERSION]);
	if (tb[TLS_INFO_CIPHER])
		out->tls_cipher = get_u16(tb[TLS_INFO_CIPHER]);
	if (tb[TLS_INFO_TXCONF])
		out->txconf = get_u16(tb[TLS_INFO_TXCONF]);
	if (tb[TLS_INFO_RXCONF])
		out->rxconf = get_u16(tb[TLS_INFO_RXCONF]);
	out->zc_ro_tx = tb[TLS_INFO_ZC_RO_TX] != NULL;
	out->rx_no_pad = tb[TLS_INFO_RX_NO_PAD] != NULL;
}

struct diag_parse {
	struct nl_sock_info *out;
	bool found;
	bool bad;
};

static int diag_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct diag_parse *p = data;
	const struct inet_diag_msg *m;
	const struct nlattr *tb[INET_DIAG_MAX + 1] = { NULL };
	struct attr_tab t = { tb, INET_DIAG_MAX };

	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m)) {
		p->bad = true;
		return MNL_CB_ERROR;
	}
	m = mnl_nlmsg_get_payload(nlh);
	p->found = true;
	p->out->state = m->idiag_state;
	p->out->inode = m->idiag_inode;
	if (mnl_attr_parse(nlh, sizeof(*m), keep_attr, &t) < 0) {
		p->bad = true;
		return MNL_CB_ERROR;
	}
	if (tb[INET_DIAG_ULP_INFO]) {
		const struct nlattr *ub[INET_ULP_INFO_MAX + 1] = { NULL };
		struct attr_tab u = { ub, INET_ULP_INFO_MAX };

		p->out->has_ulp = true;
		if (mnl_attr_parse_nested(tb[INET_DIAG_ULP_INFO], keep_attr, &u) < 0) {
			p->bad = true;
			return MNL_CB_ERROR;
		}
		if (ub[INET_ULP_INFO_NAME] &&
		    mnl_attr_validate(ub[INET_ULP_INFO_NAME], MNL_TYPE_NUL_STRING) == 0)
			snprintf(p->out->ulp, sizeof(p->out->ulp), "%s",
				 mnl_attr_get_str(ub[INET_ULP_INFO_NAME]));
		if (ub[INET_ULP_INFO_TLS])
			parse_tls_info(ub[INET_ULP_INFO_TLS], p->out);
	}
	return MNL_CB_STOP;
}

/*
 * Whether every message in @buf lies inside it. libmnl's mnl_nlmsg_ok()
 * compares the length word as a signed int, so a message claiming more than
 * 2 GiB passes its check and mnl_cb_run() walks out of the buffer (found by
 * tests/fuzz/fuzz_nl). A trailing piece shorter than a header is ignored,
 * as libmnl does.
 */
static bool chain_ok(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t msglen;
	size_t step;

	if (len < sizeof(struct nlmsghdr))
		return false;
	while (len >= sizeof(struct nlmsghdr)) {
		memcpy(&msglen, p + offsetof(struct nlmsghdr, nlmsg_len), sizeof(msglen));
		if (msglen < sizeof(struct nlmsghdr) || msglen > len)
			return false;
		step = NLMSG_ALIGN(msglen);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return true;
}

/*
 * Run @cb over the messages in @buf. libmnl turns an NLMSG_ERROR into
 * MNL_CB_ERROR with errno set from the kernel's error code.
 */
static int run_cb(const void *buf, size_t len, uint32_t seq, mnl_cb_t cb, void *data, bool *bad)
{
	int r;

	/* A reply cut short is malformed, not "no answer". */
	if (len > INT_MAX || !chain_ok(buf, len))
		return -EPROTO;
	errno = 0;
	r = mnl_cb_run(buf, len, seq, 0, cb, data);
	if (r == MNL_CB_ERROR) {
		/*
		 * libmnl negates the reply's error code into errno: a forged code
		 * (0, positive, or INT_MIN, whose negation overflows) is no errno.
		 */
		if (*bad || errno <= 0 || errno > 4095)
			return -EPROTO;
		return -errno;
	}
	return 0;
}

int nl_diag_parse(const void *buf, size_t len, uint32_t seq, struct nl_sock_info *out)
{
	struct diag_parse p = { .out = out };
	int r;

	memset(out, 0, sizeof(*out));
	r = run_cb(buf, len, seq, diag_msg_cb, &p, &p.bad);
	if (r < 0)
		return r;
	return p.found ? 0 : -ENOENT;
}

int nl_diag_query(struct nl_ctx *ctx, const struct sockaddr *local, const struct sockaddr *remote,
		  struct nl_sock_info *out)
{
	static __thread char buf[NL_REPLY_MAX];
	ssize_t n = nl_diag_exchange(ctx, local, remote, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	return nl_diag_parse(buf, (size_t)n, ctx->seq, out);
}

/* ---- generic netlink: family id ---- */

struct family_parse {
	uint16_t id;
	bool bad;
};

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct family_parse *p = data;
	const struct nlattr *tb[CTRL_ATTR_MAX + 1] = { NULL };
	struct attr_tab t = { tb, CTRL_ATTR_MAX };

	if (nlh->nlmsg_type != GENL_ID_CTRL)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), keep_attr, &t) < 0 ||
	    !tb[CTRL_ATTR_FAMILY_ID] ||
	    mnl_attr_validate(tb[CTRL_ATTR_FAMILY_ID], MNL_TYPE_U16) < 0) {
		p->bad = true;
		return MNL_CB_ERROR;
	}
	p->id = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	return MNL_CB_STOP;
}

int nl_genl_family_parse(const void *buf, size_t len, uint32_t seq, uint16_t *id)
{
	struct family_parse p = { 0 };
	int r = run_cb(buf, len, seq, family_cb, &p, &p.bad);

	if (r < 0)
		return r;
	if (!p.id)
		return -EPROTO;
	*id = p.id;
	return 0;
}

static struct nlmsghdr *genl_header(char *buf, uint16_t type, uint8_t cmd, uint8_t version,
				    uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

static int resolve_ethtool(struct nl_ctx *ctx)
{
	char req[NL_REQ_MAX], buf[8192];
	struct nlmsghdr *nlh;
	ssize_t n;
	int r;

	if (ctx->ethtool_family)
		return 0;
	if (ctx->ethtool_err)
		return ctx->ethtool_err;
	nlh = genl_header(req, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, ++ctx->seq);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, ETHTOOL_GENL_NAME);
	n = exchange(ctx->genl, nlh, buf, sizeof(buf));
	if (n < 0)
		return (int)n;	/* a timeout may pass: not sticky */
	r = nl_genl_family_parse(buf, (size_t)n, ctx->seq, &ctx->ethtool_family);
	if (r == -ENOENT)
		ctx->ethtool_err = -EOPNOTSUPP;	/* kernel without ethtool netlink */
	return r == -ENOENT ? -EOPNOTSUPP : r;
}

/* ---- ethtool features ---- */

ssize_t nl_ethtool_exchange(struct nl_ctx *ctx, const char *ifname, void *buf, size_t len)
{
	char req[NL_REQ_MAX];
	struct nlmsghdr *nlh;
	struct nlattr *hdr;
	int r = resolve_ethtool(ctx);

	if (r < 0)
		return r;
	nlh = genl_header(req, ctx->ethtool_family, ETHTOOL_MSG_FEATURES_GET, ETHTOOL_GENL_VERSION,
			  ++ctx->seq);
	hdr = mnl_attr_nest_start(nlh, ETHTOOL_A_FEATURES_HEADER);
	mnl_attr_put_strz(nlh, ETHTOOL_A_HEADER_DEV_NAME, ifname);
	/* No ETHTOOL_FLAG_COMPACT_BITSETS: verbose bitsets name each bit. */
	mnl_attr_nest_end(nlh, hdr);
	return exchange(ctx->genl, nlh, buf, len);
}

/* Which of the three tls-hw-* bits a verbose bitset has set. */
static int bitset_tls_bits(const struct nlattr *set, bool *tx, bool *rx, bool *record)
{
	const struct nlattr *tb[ETHTOOL_A_BITSET_MAX + 1] = { NULL };
	struct attr_tab t = { tb, ETHTOOL_A_BITSET_MAX };
	const struct nlattr *bit;
	bool nomask;

	if (mnl_attr_parse_nested(set, keep_attr, &t) < 0)
		return -EPROTO;
	if (!tb[ETHTOOL_A_BITSET_BITS])
		return tb[ETHTOOL_A_BITSET_VALUE] ? -EPROTO : 0;	/* compact: not asked for */
	/* Without a mask, the list holds only the bits that are set. */
	nomask = tb[ETHTOOL_A_BITSET_NOMASK] != NULL;
	mnl_attr_for_each_nested(bit, tb[ETHTOOL_A_BITSET_BITS]) {
		const struct nlattr *bb[ETHTOOL_A_BITSET_BIT_MAX + 1] = { NULL };
		struct attr_tab b = { bb, ETHTOOL_A_BITSET_BIT_MAX };
		const char *name;
		bool on;

		if (mnl_attr_get_type(bit) != ETHTOOL_A_BITSET_BITS_BIT)
			continue;
		if (mnl_attr_parse_nested(bit, keep_attr, &b) < 0)
			return -EPROTO;
		if (!bb[ETHTOOL_A_BITSET_BIT_NAME] ||
		    mnl_attr_validate(bb[ETHTOOL_A_BITSET_BIT_NAME], MNL_TYPE_NUL_STRING) < 0)
			continue;
		name = mnl_attr_get_str(bb[ETHTOOL_A_BITSET_BIT_NAME]);
		on = nomask || bb[ETHTOOL_A_BITSET_BIT_VALUE];
		if (!strcmp(name, "tls-hw-tx-offload"))
			*tx = on;
		else if (!strcmp(name, "tls-hw-rx-offload"))
			*rx = on;
		else if (!strcmp(name, "tls-hw-record"))
			*record = on;
	}
	return 0;
}

struct features_parse {
	struct nl_nic_tls *out;
	bool found;
	bool bad;
};

static int features_cb(const struct nlmsghdr *nlh, void *data)
{
	struct features_parse *p = data;
	const struct nlattr *tb[ETHTOOL_A_FEATURES_MAX + 1] = { NULL };
	struct attr_tab t = { tb, ETHTOOL_A_FEATURES_MAX };
	struct nl_nic_tls *o = p->out;

	if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr) ||
	    mnl_attr_parse(nlh, sizeof(struct genlmsghdr), keep_attr, &t) < 0)
		goto bad;
	if (tb[ETHTOOL_A_FEATURES_HW] &&
	    bitset_tls_bits(tb[ETHTOOL_A_FEATURES_HW], &o->hw_tx, &o->hw_rx, &o->hw_record) < 0)
		goto bad;
	if (tb[ETHTOOL_A_FEATURES_ACTIVE] &&
	    bitset_tls_bits(tb[ETHTOOL_A_FEATURES_ACTIVE], &o->on_tx, &o->on_rx, &o->on_record) < 0)
		goto bad;
	p->found = tb[ETHTOOL_A_FEATURES_HW] || tb[ETHTOOL_A_FEATURES_ACTIVE];
	if (!p->found)
		goto bad;
	return MNL_CB_STOP;
bad:
	p->bad = true;
	return MNL_CB_ERROR;
}

int nl_ethtool_parse(const void *buf, size_t len, uint32_t seq, struct nl_nic_tls *out)
{
	struct features_parse p = { .out = out };
	int r;

	memset(out, 0, sizeof(*out));
	r = run_cb(buf, len, seq, features_cb, &p, &p.bad);
	if (r < 0)
		return r;
	return p.found ? 0 : -EPROTO;
}

int nl_ethtool_query(struct nl_ctx *ctx, const char *ifname, struct nl_nic_tls *out)
{
	static __thread char buf[NL_REPLY_MAX];
	ssize_t n = nl_ethtool_exchange(ctx, ifname, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	return nl_ethtool_parse(buf, (size_t)n, ctx->seq, out);
}

/* ---- /proc/net/tls_stat ---- */

int nl_tls_stat_parse(const char *buf, size_t len, struct nl_tls_stat *out)
{
	const char *p = buf, *end = buf + len;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		char line[128], name[40];
		unsigned long long v;
		size_t l = (size_t)(eol - p);

		if (l < sizeof(line)) {
			memcpy(line, p, l);
			line[l] = '\0';
			if (sscanf(line, "%39s %llu", name, &v) == 2 && out->n < NL_TLS_STAT_MAX) {
				snprintf(out->v[out->n].name, sizeof(out->v[out->n].name), "%s",
					 name);
				out->v[out->n].value = v;
				out->n++;
			}
		}
		p = eol + 1;
	}
	return out->n ? 0 : -EPROTO;
}

int nl_tls_stat_read(struct nl_tls_stat *out)
{
	char buf[4096];
	ssize_t n;
	size_t got = 0;
	int fd = open("/proc/net/tls_stat", O_RDONLY | O_CLOEXEC), r = 0;

	if (fd == -1)
		return -errno;
	while (got < sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r = nl_tls_stat_parse(buf, got, out);
out:
	close(fd);
	return r;
}

bool nl_have_net_admin(void)
{
	char line[256];
	bool yes = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long caps;

		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			yes = caps & (1ull << 12);	/* CAP_NET_ADMIN */
			break;
		}
	}
	fclose(f);
	return yes;
}

const char *nl_tls_conf_name(unsigned conf)
{
	switch (conf) {
	case NL_TLS_CONF_BASE: return "none";
	case NL_TLS_CONF_SW: return "sw";
	case NL_TLS_CONF_HW: return "hw";
	case NL_TLS_CONF_HW_RECORD: return "hw_record";
	default: return "unknown";
	}
}

const char *nl_tls_cipher_name(unsigned cipher)
{
	switch (cipher) {
	case TLS_CIPHER_AES_GCM_128: return "aes-gcm-128";
	case TLS_CIPHER_AES_GCM_256: return "aes-gcm-256";
	case TLS_CIPHER_AES_CCM_128: return "aes-ccm-128";
	case TLS_CIPHER_CHACHA20_POLY1305: return "chacha20-poly1305";
	case TLS_CIPHER_SM4_GCM: return "sm4-gcm";
	case TLS_CIPHER_SM4_CCM: return "sm4-ccm";
	default: return "unknown";
	}
}

const char *nl_tls_version_name(unsigned version)
{
	switch (version) {
	case TLS_1_2_VERSION: return "TLSv1.2";
	case TLS_1_3_VERSION: return "TLSv1.3";
	default: return "unknown";
	}
}
