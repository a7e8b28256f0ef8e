#!/usr/bin/env bash
# Bad TLS input: a missing or garbled PSK file, a certificate dir without
# its files or with a garbled key, --tls require without credentials,
# contradictory options. Each is one clear line, and nothing is written
# or started.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_tls.sh"

tls_psk "$T_TMP/keys.psk" alice
tls_pki "$T_TMP/pki"
printf 'hello world\n' >"$T_TMP/garbled.psk"
printf 'alice:0123xyz\n' >"$T_TMP/badhex.psk"
: >"$T_TMP/empty.psk"
mkdir -p "$T_TMP/empty" "$T_TMP/nokey" "$T_TMP/badkey"
cp "$T_TMP/pki/server-cert.pem" "$T_TMP/nokey/"
cp "$T_TMP/pki/server-cert.pem" "$T_TMP/badkey/"
printf -- '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n' >"$T_TMP/badkey/server-key.pem"

# refused WHAT EXPECTED ARGS...: dst ARGS fails with one line containing
# EXPECTED, and leaves no config, pid or daemon behind.
refused() {
	local what=$1 expected=$2 lines
	shift 2
	run_fails "$what" "$DST" "$@"
	check_stderr "$T_TMP/run.out" "dst $*"
	assert_contains "$RUN_OUT" "$expected" "$what"
	lines=$(printf '%s\n' "$RUN_OUT" | grep -c .)
	assert_eq "$lines" 1 "$what: lines of output"
	note "$what: $RUN_OUT"
	[ ! -e "$DST_STATE_DIR/bad.conf" ] || fail "$what: a config was written"
	[ ! -e "$DST_STATE_DIR/bad.pid" ] || fail "$what: a daemon was started"
}

step "dst export with bad TLS input"
P=$(free_port)
ex() { refused "$1" "$2" export mem:16M --name bad --listen "127.0.0.1:$P" "${@:3}"; }
ex "missing PSK file" "--tls-psk $T_TMP/nothere.psk: No such file or directory" --tls-psk "$T_TMP/nothere.psk"
ex "garbled PSK file" "line 1 is not 'username:hexkey'" --tls require --tls-psk "$T_TMP/garbled.psk"
ex "PSK file with a bad key" "line 1 is not 'username:hexkey'" --tls-psk "$T_TMP/badhex.psk"
ex "empty PSK file" "no 'username:hexkey' line" --tls-psk "$T_TMP/empty.psk"
ex "certs dir without files" "server-cert.pem: No such file or directory" --tls-certs "$T_TMP/empty"
ex "certs dir without the key" "server-key.pem: No such file or directory" --tls-certs "$T_TMP/nokey"
ex "garbled server key" "server-cert.pem / server-key.pem:" --tls-certs "$T_TMP/badkey"
ex "missing certs dir" "--tls-certs $T_TMP/nodir: No such file or directory" --tls-certs "$T_TMP/nodir"
ex "require without credentials" "--tls require needs credentials" --tls require
ex "on without credentials" "--tls on needs credentials" --tls on
ex "bad mode" "--tls maybe: expected off, on or require" --tls maybe
ex "both kinds" "not both" --tls-psk "$T_TMP/keys.psk" --tls-certs "$T_TMP/pki"
ex "off with a key" "--tls off does not take" --tls off --tls-psk "$T_TMP/keys.psk"
ex "verify-peer with PSK" "--tls-verify-peer is for X.509" --tls-psk "$T_TMP/keys.psk" --tls-verify-peer
ex "verify-peer without a CA" "ca-cert.pem: No such file or directory" --tls-certs "$T_TMP/nokey" --tls-verify-peer

step "dst start with bad TLS input keeps the config as it was"
start_export good mem:16M
cp "$DST_STATE_DIR/good.conf" "$T_TMP/good.conf.before"
stop_export good
run_fails "dst start --tls require without credentials" "$DST" start good --tls require
assert_contains "$RUN_OUT" "--tls require needs credentials" "dst start --tls require"
run_fails "dst start with a garbled key" "$DST" start good --tls-psk "$T_TMP/garbled.psk"
assert_contains "$RUN_OUT" "is not 'username:hexkey'" "dst start --tls-psk garbled"
cmp -s "$DST_STATE_DIR/good.conf" "$T_TMP/good.conf.before" || fail "dst start changed the config"
[ ! -e "$DST_STATE_DIR/good.pid" ] || fail "dst start started a daemon"
note "a key file gone since: the daemon says so, nothing runs"
cp "$T_TMP/keys.psk" "$T_TMP/gone.psk"
dst_ok start good --tls-psk "$T_TMP/gone.psk" >/dev/null
stop_export good
rm "$T_TMP/gone.psk"
run_fails "dst start after the key file went" "$DST" start good
assert_contains "$RUN_OUT" "PSK file $T_TMP/gone.psk: No such file or directory" "daemon's reason"
[ ! -e "$DST_STATE_DIR/good.pid" ] || fail "a daemon runs without its key file"

step "storages: bad credentials for nbds:// nodes"
refused "dst create with a missing PSK file" "--tls-psk $T_TMP/nothere.psk: No such file or directory" \
	create bad --alg linear --tls-psk "$T_TMP/nothere.psk"
refused "dst create with an unknown user" "no key for user 'zed'" \
	create bad --alg linear --tls-psk "$T_TMP/keys.psk" --tls-username zed
refused "dst create with a client dir without CA" "ca-cert.pem: No such file or directory" \
	create bad --alg linear --tls-certs "$T_TMP/nokey"
refused "--tls-username without a PSK file" "--tls-username goes with --tls-psk" \
	create bad --alg linear --tls-username alice
dst_ok create st --alg linear >/dev/null
cp "$DST_STATE_DIR/st.conf" "$T_TMP/st.conf.before"
run_fails "dst add nbds:// without credentials" "$DST" add st --remote "nbds://127.0.0.1:$P"
assert_contains "$RUN_OUT" "TLS needs the storage's credentials" "dst add nbds:// without credentials"
run_fails "dst add with a garbled PSK file" "$DST" add st --remote "nbds://127.0.0.1:$P" --tls-psk "$T_TMP/garbled.psk"
assert_contains "$RUN_OUT" "is not 'username:hexkey'" "dst add --tls-psk garbled"
cmp -s "$DST_STATE_DIR/st.conf" "$T_TMP/st.conf.before" || fail "a refused dst add changed the config"
echo "PASS"
