/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * nl.h - what the kernel says about our sockets and interfaces, through
 * netlink (libmnl): sock_diag (inet_diag, INET_DIAG_ULP_INFO) for the
 * per-socket kTLS configuration, ethtool netlink for the NIC TLS offload
 * features, and /proc/net/tls_stat.
 *
 * Only the stats thread calls this module, never the data path: every query
 * is a blocking round trip to the kernel (bounded by a receive timeout).
 * Each query is split into an exchange (raw reply bytes) and a parser that
 * takes (buf, len), so recorded kernel replies in tests/data/ test the
 * parsers byte for byte.
 */
#ifndef PGKTLS_NL_H
#define PGKTLS_NL_H

#include <sys/socket.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

/* Room for any reply we ask for (ethtool's verbose bitsets are the largest). */
#define NL_REPLY_MAX 32768

/* What the kernel does for one direction of a kTLS socket (TLS_CONF_*). */
enum nl_tls_conf {
	NL_TLS_CONF_UNKNOWN = 0,	/* not reported */
	NL_TLS_CONF_BASE = 1,		/* ULP attached, no key in this direction */
	NL_TLS_CONF_SW = 2,		/* kernel software crypto */
	NL_TLS_CONF_HW = 3,		/* NIC crypto offload */
	NL_TLS_CONF_HW_RECORD = 4,	/* NIC full record offload */
};

/* One TCP socket as sock_diag reports it. */
struct nl_sock_info {
	uint8_t state;		/* TCP_ESTABLISHED ... */
	uint32_t inode;		/* socket inode, as in /proc/net/tcp */
	bool has_ulp;		/* INET_DIAG_ULP_INFO present: some ULP is attached */
	char ulp[16];		/* its name, "tls" for kTLS */
	bool tls;		/* INET_ULP_INFO_TLS present */
	uint16_t tls_version;	/* 0x0303 TLS 1.2, 0x0304 TLS 1.3 */
	uint16_t tls_cipher;	/* TLS_CIPHER_* */
	uint16_t txconf;	/* enum nl_tls_conf */
	uint16_t rxconf;	/* enum nl_tls_conf */
	bool zc_ro_tx;		/* TLS_INFO_ZC_RO_TX: zero-copy sendfile */
	bool rx_no_pad;		/* TLS_INFO_RX_NO_PAD: TLS 1.3 no-padding hint */
};

/* NIC TLS offload features of one interface (ethtool "hw" and "active" sets). */
struct nl_nic_tls {
	bool hw_tx;		/* tls-hw-tx-offload supported */
	bool hw_rx;		/* tls-hw-rx-offload supported */
	bool hw_record;		/* tls-hw-record supported */
	bool on_tx;		/* ... and currently enabled */
	bool on_rx;
	bool on_record;
};

/* /proc/net/tls_stat: name/value pairs, in file order (6.14 added rekey counters). */
#define NL_TLS_STAT_MAX 32
struct nl_tls_stat {
	size_t n;
	struct {
		char name[40];
		uint64_t value;
	} v[NL_TLS_STAT_MAX];
};

struct nl_ctx;

/**
 * nl_open() - open the sock_diag and generic netlink sockets (lazily
 * resolving the ethtool family on first use), with NETLINK_EXT_ACK and a
 * receive timeout so a query never blocks the caller for long.
 * @out: the context, freed with nl_close(); NULL on failure
 *
 * Return: 0, or -errno.
 */
PGKTLS_MUSTCHECK int nl_open(struct nl_ctx **out);

/** nl_close() - close @ctx's sockets and free it; NULL is fine. */
void nl_close(struct nl_ctx *ctx);

/**
 * nl_diag_exchange() - ask sock_diag about the TCP socket with this exact
 * 4-tuple (INET_DIAG_INFO requested, which carries the ULP info when the
 * caller has CAP_NET_ADMIN), and return the raw reply.
 * @local: the socket's own address (getsockname)
 * @remote: its peer (getpeername); same family as @local
 * @buf: reply buffer, NL_REPLY_MAX bytes
 * @len: its size
 *
 * Return: bytes of reply, or -errno (-EAFNOSUPPORT for a non-IP address).
 */
PGKTLS_MUSTCHECK ssize_t nl_diag_exchange(struct nl_ctx *ctx, const struct sockaddr *local,
					  const struct sockaddr *remote, void *buf, size_t len);

/**
 * nl_diag_parse() - decode a sock_diag reply (one SOCK_DIAG_BY_FAMILY message,
 * or an NLMSG_ERROR). Unknown attributes are skipped.
 * @seq: expected sequence number, 0 = do not check
 * @out: zeroed, then filled
 *
 * Return: 0, -ENOENT (no such socket), another -errno from the kernel, or
 * -EPROTO for a malformed reply.
 */
PGKTLS_MUSTCHECK int nl_diag_parse(const void *buf, size_t len, uint32_t seq,
				   struct nl_sock_info *out);

/** nl_diag_query() - nl_diag_exchange() then nl_diag_parse(). Return: 0 or -errno. */
PGKTLS_MUSTCHECK int nl_diag_query(struct nl_ctx *ctx, const struct sockaddr *local,
				   const struct sockaddr *remote, struct nl_sock_info *out);

/**
 * nl_genl_family_parse() - the family id in a CTRL_CMD_GETFAMILY reply.
 * Return: 0 with *@id set, -ENOENT (family unknown to this kernel), -EPROTO.
 */
PGKTLS_MUSTCHECK int nl_genl_family_parse(const void *buf, size_t len, uint32_t seq,
					  uint16_t *id);

/**
 * nl_ethtool_exchange() - ETHTOOL_MSG_FEATURES_GET for interface @ifname
 * (verbose bitsets, so bits are matched by name), raw reply in @buf.
 * Return: bytes of reply, or -errno (-EOPNOTSUPP without ethtool netlink).
 */
PGKTLS_MUSTCHECK ssize_t nl_ethtool_exchange(struct nl_ctx *ctx, const char *ifname, void *buf,
					     size_t len);

/**
 * nl_ethtool_parse() - the tls-hw-* bits of a FEATURES_GET reply.
 * Return: 0, -errno from the kernel (-ENODEV), or -EPROTO.
 */
PGKTLS_MUSTCHECK int nl_ethtool_parse(const void *buf, size_t len, uint32_t seq,
				      struct nl_nic_tls *out);

/** nl_ethtool_query() - nl_ethtool_exchange() then nl_ethtool_parse(). */
PGKTLS_MUSTCHECK int nl_ethtool_query(struct nl_ctx *ctx, const char *ifname,
				      struct nl_nic_tls *out);

/**
 * nl_tls_stat_parse() - parse the text of /proc/net/tls_stat ("Name  value"
 * lines; lines that do not parse are skipped, extra entries dropped).
 * Return: 0, or -EPROTO if no line parsed.
 */
PGKTLS_MUSTCHECK int nl_tls_stat_parse(const char *buf, size_t len, struct nl_tls_stat *out);

/**
 * nl_tls_stat_read() - read and parse /proc/net/tls_stat (this network namespace).
 * Return: 0, -ENOENT when the kernel has no kTLS (module not loaded or not
 * built), or another -errno.
 */
PGKTLS_MUSTCHECK int nl_tls_stat_read(struct nl_tls_stat *out);

/** nl_have_net_admin() - whether this process has CAP_NET_ADMIN (effective). */
bool nl_have_net_admin(void);

/** nl_tls_conf_name() - "none", "sw", "hw", "hw_record", or "unknown". */
const char *nl_tls_conf_name(unsigned conf);

/** nl_tls_cipher_name() - "aes-gcm-128" ... as `ss -tie` spells it, or "unknown". */
const char *nl_tls_cipher_name(unsigned cipher);

/** nl_tls_version_name() - "TLSv1.2", "TLSv1.3", or "unknown". */
const char *nl_tls_version_name(unsigned version);

#endif /* PGKTLS_NL_H */
