#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Passphrase-protected private keys (tls_private_key_passphrase_command,
# tls_server_private_key_passphrase_command): the right passphrase unlocks both keys (the
# command gets %p as the prompt, and the passphrase never reaches the log); a wrong
# passphrase, a failing command and a silent one are errors naming the key file, from
# --check-config and at start-up; a reload with a changed key and command applies, and a
# reload whose command fails or whose passphrase is wrong keeps the old configuration.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

K=$T/keys
mkdir -p "$K"
# enc IN OUT PASSPHRASE: IN encrypted with AES-256 under PASSPHRASE.
enc() {
	openssl pkey -in "$1" -aes256 -passout "pass:$3" -out "$2" 2>/dev/null ||
		bail "openssl pkey failed"
	chmod 600 "$2"
}
enc "$CERTS/proxy.key" "$K/proxy.key" "first-Secret"
enc "$CERTS/client.key" "$K/client.key" "client-Secret"
enc "$CERTS/other-server.key" "$K/other.key" "second-Secret"
# The command: records its argument (the prompt), prints the passphrase file's first line.
cat >"$K/pass.sh" <<'EOF'
#!/bin/sh
printf '%s\n' "$1" >>"$(dirname "$0")/prompts"
cat "$(dirname "$0")/$2"
EOF
chmod 755 "$K/pass.sh"
echo "first-Secret" >"$K/proxy.pass"
printf 'client-Secret\nsecond line is ignored\n' >"$K/client.pass"

# ---- start-up: both keys encrypted, each unlocked by its command
install -m 644 "$CERTS/proxy.crt" "$K/cert.pem"
cp "$K/proxy.key" "$K/key.pem"
px_start enc "tls_certificate = \"$K/cert.pem\"
tls_private_key = \"$K/key.pem\"
tls_private_key_passphrase_command = \"$K/pass.sh '%p' proxy.pass\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_certificate = \"$CERTS/client.crt\"
tls_server_private_key = \"$K/client.key\"
tls_server_private_key_passphrase_command = \"$K/pass.sh '%p' client.pass\""
OLD="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"
NEW="sslmode=verify-full sslrootcert=$CERTS/other-ca.crt channel_binding=disable"
q_ok "the encrypted key serves clients" "$(px_dsn enc "$OLD")" "select 1" 1
# PostgreSQL saw the certificate pgktls presented with the other encrypted key.
q_ok "the encrypted upstream key presents tls_server_certificate to PostgreSQL" \
	"$(px_dsn enc "$OLD")" "select client_dn from pg_stat_ssl where pid = pg_backend_pid()" \
	"/CN=alice"
is "$(sort -u "$K/prompts")" "Enter PEM pass phrase:" "the command got %p as the prompt"
unlike "$(cat "${PX_LOG[enc]}")" "Secret" "no passphrase in the log"

# ---- errors, from --check-config and at start-up
# cfg CMD: a config file whose client key is the encrypted one, unlocked by CMD.
cfg() {
	printf '[general]\nport = %s\ntls_certificate = "%s"\ntls_private_key = "%s"\n%s\n' \
		"$(port_alloc)" "$CERTS/proxy.crt" "$K/proxy.key" \
		"tls_private_key_passphrase_command = \"$1\"" >"$T/bad.toml"
}
# check_err DESCRIPTION REGEX: --check-config and a real start both fail with REGEX.
check_err() {
	local out rc
	out=$(timeout 20 "$PGKTLS_BIN" --check-config -c "$T/bad.toml" 2>&1)
	rc=$?
	is "$rc" 1 "$1: --check-config exits 1"
	like "$out" "$2" "$1: --check-config says so"
	unlike "$out" "Secret" "$1: --check-config does not print the passphrase"
	out=$(timeout 20 "$PGKTLS_BIN" -c "$T/bad.toml" 2>&1 </dev/null)
	rc=$?
	is "$rc" 1 "$1: pgktls does not start (exit 1)"
	like "$out" "$2" "$1: ... and says why"
}
echo "wrong-Secret" >"$K/wrong.pass"
cfg "$K/pass.sh '%p' wrong.pass"
check_err "wrong passphrase" \
	"^$T/bad.toml:4: tls_private_key: cannot decrypt key file '$K/proxy.key': wrong passphrase"
cfg "exit 3"
CMDKEY=tls_private_key_passphrase_command KF=$K/proxy.key
check_err "failing command" \
	"^$T/bad.toml:5: $CMDKEY: command 'exit 3' for key file '$KF' failed: exited with status 3"
cfg "true"
check_err "silent command" \
	"$CMDKEY: command 'true' for key file '$KF' failed: exited 0 but printed no passphrase"
printf '[general]\ntls_certificate = "%s"\ntls_private_key = "%s"\n' "$CERTS/proxy.crt" \
	"$K/proxy.key" >"$T/bad.toml"
out=$(timeout 20 "$PGKTLS_BIN" --check-config -c "$T/bad.toml" 2>&1)
like "$out" "^$T/bad.toml:3: tls_private_key: key file '$K/proxy.key' is encrypted: set $CMDKEY" \
	"an encrypted key without a command: --check-config says which key and what to set"

# ---- reload: a new key under a new command applies; a failing command or a wrong
# passphrase keeps the previous configuration.
PID=${PX_PID[enc]}
# reload_wait WORD: wait for the next "SIGHUP: WORD" line (reloaded / reload failed).
reload_wait() {
	local before i
	before=$(grep -c "SIGHUP: $1" "${PX_LOG[enc]}")
	kill -HUP "$PID"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c "SIGHUP: $1" "${PX_LOG[enc]}")" -gt "$before" ] && return 0
		sleep 0.1
	done
	return 1
}
install -m 644 "$CERTS/other-server.crt" "$K/cert.pem"
cp "$K/other.key" "$K/key.pem"
echo "second-Secret" >"$K/other.pass"
sed -i "s|pass.sh '%p' proxy.pass|pass.sh '%p' other.pass|" "${PX_CONF[enc]}"
reload_wait reloaded
ok $? "reload with a new key and a changed command applies"
q_ok "... new connections get the new certificate" "$(px_dsn enc "$NEW")" "select 1" 1

# The command now fails: the reload is refused, the second certificate stays.
sed -i "s|pass.sh '%p' other.pass|pass.sh '%p' missing.pass|" "${PX_CONF[enc]}"
reload_wait "reload failed"
ok $? "reload with a failing command is refused"
like "$(grep "SIGHUP: reload failed" "${PX_LOG[enc]}" | tail -n 1)" \
	"$CMDKEY: command '.*' for key file '$K/key.pem' failed: exited with status 1" \
	"... the log names the command, the key file and the exit status"
q_ok "... and the previous certificate is still served" "$(px_dsn enc "$NEW")" "select 1" 1

# A wrong passphrase on reload: refused too.
sed -i "s|pass.sh '%p' missing.pass|pass.sh '%p' wrong.pass|" "${PX_CONF[enc]}"
reload_wait "reload failed"
ok $? "reload with a wrong passphrase is refused"
like "$(grep "SIGHUP: reload failed" "${PX_LOG[enc]}" | tail -n 1)" \
	"tls_private_key: cannot decrypt key file '$K/key.pem': wrong passphrase" \
	"... the log says the passphrase is wrong for that key file"
q_ok "... and the previous certificate is still served" "$(px_dsn enc "$NEW")" "select 1" 1
unlike "$(cat "${PX_LOG[enc]}")" "Secret" "still no passphrase in the log"
ok "$(kill -0 "$PID" 2>/dev/null; echo $?)" "pgktls still runs"

done_testing
