/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * stats.h - counters, one set per worker, summed when read.
 *
 * Each worker is the only writer of its own counters, so increments are
 * plain relaxed loads and stores (no locked instructions on the data path);
 * a reader in another thread sees each counter torn-free but the set of
 * them only approximately consistent, which is what monitoring needs.
 */
#ifndef PGKTLS_STATS_H
#define PGKTLS_STATS_H

#include <stddef.h>
#include <stdint.h>

/* X(name, help): every counter, in the order they are reported. */
#define STATS_COUNTERS(X)                                                                  \
	X(conns_accepted, "client connections accepted")                                   \
	X(conns_closed, "client connections closed (any reason)")                          \
	X(client_tls_handshakes, "TLS handshakes completed with clients")                   \
	X(client_tls_failures, "TLS handshakes with clients that failed")                   \
	X(client_direct_tls, "clients that used PostgreSQL 17 direct TLS")                  \
	X(client_plaintext, "client sessions without TLS")                                  \
	X(plaintext_refused, "plaintext clients refused by tls_client_required")            \
	X(startup_timeouts, "handshakes or startups that did not finish in time")           \
	X(protocol_errors, "malformed or illegal client negotiation packets")               \
	X(cancels_forwarded, "CancelRequests forwarded upstream")                           \
	X(upstream_connects, "upstream connections established")                            \
	X(upstream_failures, "upstream connections that failed (connect or TLS)")           \
	X(upstream_tls_handshakes, "TLS handshakes completed with PostgreSQL")              \
	X(upstream_tls_failures, "TLS handshakes with PostgreSQL that failed")              \
	X(upstream_lost, "sessions told 08006: PostgreSQL closed between two messages")     \
	X(sasl_plus_stripped, "AuthenticationSASL messages with -PLUS removed")             \
	X(channel_binding_hints, "channel-binding errors given a HINT")                     \
	X(bytes_client_to_server, "bytes relayed from clients to PostgreSQL")               \
	X(bytes_server_to_client, "bytes relayed from PostgreSQL to clients")               \
	X(bytes_spliced, "bytes moved by splice() (no userspace copy)")                     \
	X(ktls_client_engaged, "client hops with both directions in the kernel")            \
	X(ktls_server_engaged, "upstream hops with both directions in the kernel")          \
	X(ktls_fallbacks, "hops that stayed in userspace TLS")                              \
	X(ktls_refused, "connections refused because ktls = required could not be met")     \
	X(tls_control_records, "non-data TLS records seen by kTLS or tlsrec")               \
	X(tls_tickets, "TLS 1.3 NewSessionTickets seen (and ignored) by kTLS or tlsrec")    \
	X(tls_alerts, "TLS alerts seen by kTLS or tlsrec (close_notify included)")          \
	X(tls_key_updates, "TLS 1.3 KeyUpdates received and followed by rekeying")          \
	X(tls_key_updates_refused, "connections closed on a KeyUpdate the kernel cannot follow") \
	X(tls_key_updates_sent, "own TLS 1.3 KeyUpdates at a send key's record limit")      \
	X(tls_key_limit_closes, "connections closed at a send key's record limit (no rekey)") \
	X(accept_backoffs, "times accept() hit a descriptor limit and backed off")          \
	X(proxy_headers, "PROXY protocol headers accepted (proxy_protocol = true)")         \
	X(proxy_untrusted, "connections refused: source not in proxy_protocol_trusted")     \
	X(proxy_invalid, "connections refused: PROXY header missing, malformed or too long") \
	X(client_certs_revoked, "client certificates refused as revoked (tls_client_crl)")  \
	X(server_certs_revoked, "PostgreSQL certificates refused as revoked (tls_server_crl)") \
	X(accept_refused_nofd, "clients refused at once (53300) at the descriptor limit")

/* Room for enum conn_close_reason and enum ktls_reason (checked where they are used). */
#define STATS_MAX_REASONS 16

/* Why a TLS handshake failed, as far as pgktls can tell without parsing OpenSSL's text. */
enum stats_hs_fail {
	STATS_HS_FAIL_PROTOCOL,	/* alert received, no common version or cipher, bad record */
	STATS_HS_FAIL_VERIFY,	/* the peer's certificate did not verify */
	STATS_HS_FAIL_EOF,	/* the peer closed or reset the connection mid-handshake */
	STATS_HS_FAIL_TIMEOUT,	/* startup_timeout / connect_timeout expired */
	STATS_HS_FAIL__N
};

/* Hops and directions, to index the per-hop arrays below. */
enum stats_hop { STATS_HOP_CLIENT, STATS_HOP_SERVER, STATS_HOP__N };
enum stats_dir { STATS_DIR_RX, STATS_DIR_TX, STATS_DIR__N };

/* Client handshake latency buckets: upper bounds in ms; one more bucket for the rest. */
#define STATS_HS_BOUNDS_MS { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000 }
#define STATS_HS_BUCKETS 13

struct stats {
#define STATS_FIELD(name, help) uint64_t name;
	STATS_COUNTERS(STATS_FIELD)
#undef STATS_FIELD
	uint64_t conns_active;		/* gauge */
	uint64_t closed_by_reason[STATS_MAX_REASONS];		/* enum conn_close_reason */
	uint64_t hs_failed[STATS_HOP__N][STATS_HS_FAIL__N];	/* by enum stats_hs_fail */
	/* Directions offloaded to the kernel, and the reasons of those that were not. */
	uint64_t ktls_dir_engaged[STATS_HOP__N][STATS_DIR__N];
	uint64_t ktls_dir_fallback[STATS_HOP__N][STATS_DIR__N][STATS_MAX_REASONS];
	/* Accept to client handshake done: count per bucket (not cumulative), and the sum. */
	uint64_t hs_latency[STATS_HS_BUCKETS];
	uint64_t hs_latency_sum_ms;
};

/* Process-wide counters kept outside the workers (written by the main thread). */
struct stats_process {
	uint64_t reloads_ok;		/* SIGHUP reloads applied */
	uint64_t reloads_failed;	/* SIGHUP reloads refused or not supported */
	uint64_t listen_sockets;	/* listening addresses (set at start-up) */
	uint64_t listen_from_systemd;	/* 1: those came from systemd (socket activation) */
	/* Binary upgrades (SIGUSR2, handover.h); read with stats_process_upgrade_load(). */
	uint64_t upgrades_started;	/* new processes started */
	uint64_t upgrades_ok;		/* handed over: this process then drains and exits */
	uint64_t upgrades_failed;	/* refused, died or timed out: this process kept serving */
	uint64_t upgrade_child_pid;	/* the new process while a handover runs; else 0 */
	uint64_t adopted_from_pid;	/* started by an upgrade: the previous process; else 0 */
	uint64_t adopted_listeners;	/* listening sockets it handed to us */
	uint64_t previous_draining;	/* its connections still open, as it last said */
	uint64_t previous_running;	/* 1 until its end of the handover closes */
	uint64_t previous_moved;	/* sessions it handed to us, as it last said (version 2) */
	uint64_t previous_kept;		/* sessions it kept to drain, as it last said (version 2) */
	/* Established sessions across an upgrade (issue 15 phase 2; see ARCHITECTURE.md). */
	uint64_t sessions_handed_over;	/* old side: ACKed by the new process (also a close reason) */
	uint64_t sessions_kept;		/* old side: open at the last COMMIT and drained here */
	uint64_t sessions_adopted;	/* new side: taken over from the previous process */
	char upgrade_error[256];	/* why the last upgrade failed ("" none); under a lock */
};
extern struct stats_process stats_process;

/* The bucket bounds of STATS_HS_BOUNDS_MS, for renderers. */
extern const uint32_t stats_hs_bounds_ms[STATS_HS_BUCKETS - 1];

/* Increment a counter owned by the calling worker. */
#define STAT_ADD(st, field, n)                                                             \
	__atomic_store_n(&(st)->field, __atomic_load_n(&(st)->field, __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)
#define STAT_INC(st, field) STAT_ADD(st, field, 1)
#define STAT_DEC(st, field) STAT_ADD(st, field, (uint64_t)-1)

/** stats_hs_observe() - count one client handshake that took @ms (owning worker only). */
void stats_hs_observe(struct stats *st, uint64_t ms);

/** stats_add() - @sum += @part, field by field (relaxed loads of @part). */
void stats_add(struct stats *sum, const struct stats *part);

/**
 * stats_process_upgrade_load() - copy the upgrade fields of stats_process
 * (written by the main thread at any time) into @out, each read atomically.
 */
void stats_process_upgrade_load(struct stats_process *out);

/** stats_process_set_upgrade_error() - why the last upgrade failed, for the stats (thread-safe). */
void stats_process_set_upgrade_error(const char *why);

/** stats_names() - counter names in field order, NULL-terminated. */
const char *const *stats_names(void);

/** stats_helps() - the help text of each counter, in the order of stats_names(). */
const char *const *stats_helps(void);

/** stats_hs_fail_name() - "protocol", "verify", "eof", "timeout". */
const char *stats_hs_fail_name(enum stats_hs_fail f);

#endif /* PGKTLS_STATS_H */
