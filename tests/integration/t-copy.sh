#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# 100 MB COPY in each direction through pgktls (TLS on both hops, and TLS client with a
# plaintext upstream), arriving byte for byte. PGKTLS_COPY_MB changes the size (the kTLS VM
# uses less: t-ktls.sh moves 256 MB there).
. "$(dirname "$0")/lib.sh"
setup
pg_setup main
pg_sql main "create table t (id int, payload text); grant all on t to alice" >/dev/null

CERTCONF="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\""
px_start tls "$CERTCONF
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
px_start plain "$CERTCONF
tls_verify = \"disable\""

# 100 MB of rows "id<TAB>payload", payload pseudo-random hex so nothing compresses away.
"$PY" - "$T/data.tsv" "${PGKTLS_COPY_MB:-100}" <<'PYEOF'
import hashlib, sys
out = open(sys.argv[1], "w")
size, i = 0, 0
seed = b"pgktls"
while size < int(sys.argv[2]) * 1024 * 1024:
    seed = hashlib.sha512(seed).digest()
    line = "%d\t%s\n" % (i, (seed.hex() * 2)[:200 + i % 50])
    out.write(line)
    size += len(line)
    i += 1
PYEOF
want=$(md5sum <"$T/data.tsv" | cut -d' ' -f1)
rows=$(wc -l <"$T/data.tsv")
diag "data: $(stat -c %s "$T/data.tsv") bytes, $rows rows, md5 $want"
SUMQ="select md5(string_agg(id || E'\t' || payload || E'\n', '' order by id)) from t"
DIRECT="host=${PG_SOCK[main]} port=${PG_PORT[main]} dbname=postgres user=postgres"

for px in tls plain; do
	D=$(px_dsn "$px" "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")
	pg_sql main "truncate t" >/dev/null
	t0=$(date +%s.%N)
	out=$(timeout 300 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$D" \
		-c "copy t from stdin" <"$T/data.tsv" 2>&1)
	rc=$?
	t1=$(date +%s.%N)
	is "$rc $out" "0 COPY $rows" "$px: COPY FROM STDIN of ${PGKTLS_COPY_MB:-100} MB completes"
	diag "$px: COPY FROM took $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
	is "$(pg_sql main "$SUMQ")" "$want" "$px: the table holds exactly the bytes sent"

	direct=$(copy_sha "$DIRECT" t)
	t0=$(date +%s.%N)
	via=$(copy_sha "$D" t)
	t1=$(date +%s.%N)
	diag "$px: COPY TO took $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
	is "$via" "$direct" "$px: COPY TO STDOUT through pgktls matches the direct output"
	is "$via" "$(sha256sum <"$T/data.tsv" | cut -d' ' -f1)" \
		"$px: ... and the file that went in"

	# A reader that stalls, then trickles: pgktls's writes to the client come back
	# short or EAGAIN in the middle of its batches, and what it had read stays stashed.
	via=$(timeout 300 "$PGBIN/psql" -X -d "$D" -c "copy t to stdout" | "$PY" -c '
import hashlib, sys, time
h, got, inp = hashlib.sha256(), 0, sys.stdin.buffer
time.sleep(1)
while True:
    b = inp.read(4096)
    if not b:
        break
    h.update(b)
    got += len(b)
    if got < 16 << 20 and got % (256 << 10) < 4096:
        time.sleep(0.02)
print(h.hexdigest())')
	is "$via" "$(printf '%s' "$direct" | cut -d' ' -f1)" \
		"$px: COPY TO a stalling, trickling reader arrives byte for byte"
done

done_testing
