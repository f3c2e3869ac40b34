#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# TLS, plaintext and unix-socket upstreams, each with trust, md5 and scram-sha-256 auth;
# a daemon configured only by command-line flags.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

TLSCLIENT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\""
px_start tcp-tls "$TLSCLIENT
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
px_start tcp-plain "$TLSCLIENT
tls_verify = \"disable\""
px_start unix-file "$TLSCLIENT" "unix_socket = \"${PG_SOCK[main]}/.s.PGSQL.${PG_PORT[main]}\""
px_start unix-dir "$TLSCLIENT" "unix_socket = \"${PG_SOCK[main]}\"
port = ${PG_PORT[main]}"

CLIENT="sslmode=verify-full sslrootcert=$CERTS/ca.crt"
# The upstream hop as PostgreSQL sees it: TLS or not, and TCP or unix socket.
HOPQ="select case when s.ssl then 't' else 'f' end || ' ' || coalesce(host(a.client_addr), 'unix')
	from pg_stat_ssl s
	join pg_stat_activity a using (pid) where pid = pg_backend_pid()"

for px in tcp-tls tcp-plain unix-file unix-dir; do
	case $px in
	tcp-tls) hop="t 127.0.0.1" ;;
	tcp-plain) hop="f 127.0.0.1" ;;
	*) hop="f unix" ;;
	esac
	base="host=localhost hostaddr=127.0.0.1 port=${PX_PORT[$px]} dbname=postgres $CLIENT"
	# Over TLS on both hops the proxy certificate differs from the server's, so SCRAM
	# channel binding cannot work (t-channel-binding.sh): disable it there.
	cb=
	[ $px = tcp-tls ] && cb="channel_binding=disable"
	q_ok "$px: trust auth" "$base user=trusty" "$HOPQ" "$hop"
	q_ok "$px: md5 auth" "$base user=bob password=bob-pw" "select current_user" bob
	q_fails "$px: md5 auth with a wrong password fails" "$base user=bob password=nope" \
		"select 1" "password authentication failed"
	q_ok "$px: scram-sha-256 auth" "$base user=alice password=alice-pw $cb" \
		"select current_user" alice
	q_fails "$px: scram-sha-256 auth with a wrong password fails" \
		"$base user=alice password=nope $cb" "select 1" "password authentication failed"
	q_ok "$px: a multi-statement session works" "$base user=bob password=bob-pw" \
		"create temp table x(i int); insert into x select generate_series(1, 1000); select sum(i) from x" \
		500500
done

# Command-line flags only, no config file.
p=$(port_alloc)
px_run flags -H 127.0.0.1 -p "$p" -u "127.0.0.1:${PG_PORT[main]}" --cert "$CERTS/proxy.crt" \
	--key "$CERTS/proxy.key" --tls-verify verify_full --server-ca "$CERTS/ca.crt" \
	-o connect_timeout=3000 --workers 1 --log-level info
ok $? "pgktls configured by flags only starts"
q_ok "flags only: verify-full client, TLS upstream" \
	"host=localhost hostaddr=127.0.0.1 port=$p dbname=postgres user=trusty $CLIENT" "$HOPQ" \
	"t 127.0.0.1"
p2=$(port_alloc)
px_run flags-unix -H 127.0.0.1 -p "$p2" -u "${PG_SOCK[main]}/.s.PGSQL.${PG_PORT[main]}" \
	--cert "$CERTS/proxy.crt" --key "$CERTS/proxy.key" --workers 1
ok $? "pgktls with -u /path/to/socket starts"
q_ok "flags only: unix-socket upstream" \
	"host=localhost hostaddr=127.0.0.1 port=$p2 dbname=postgres user=trusty $CLIENT" "$HOPQ" \
	"f unix"

done_testing
