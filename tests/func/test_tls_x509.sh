#!/usr/bin/env bash
# TLS on an export with X.509 certificates: nbdinfo, nbdcopy, qemu-img and
# qemu-io with the certificates of one CA; a client that trusts another CA
# refuses the server, and with --tls-verify-peer the server refuses clients
# without a certificate of its CA; each with a clear reason in the log.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_tls.sh"
need nbdinfo nbdcopy qemu-img qemu-io

tls_pki "$T_TMP/pki"
tls_pki "$T_TMP/evil" "some other CA"
# A client dir with only the CA (no client certificate), and one whose
# client certificate comes from the other CA.
mkdir -p "$T_TMP/nocert" "$T_TMP/badcert"
cp "$T_TMP/pki/ca-cert.pem" "$T_TMP/nocert/"
cp "$T_TMP/pki/ca-cert.pem" "$T_TMP/badcert/"
cp "$T_TMP/evil/client-cert.pem" "$T_TMP/evil/client-key.pem" "$T_TMP/badcert/"
tls_uri() { echo "nbds://127.0.0.1:$PORT/?tls-certificates=${1:-$T_TMP/pki}"; }
qemu_x509() { echo "--object tls-creds-x509,id=tls0,endpoint=client,dir=${1:-$T_TMP/pki}"; }
LOG=$DST_STATE_DIR/tls-x509.log

step "--tls require --tls-certs: clients trusting our CA get in"
truncate -s 64M "$T_TMP/disk.img"
start_export tls-x509 "$T_TMP/disk.img" --tls require --tls-certs "$T_TMP/pki"
assert_eq "$(show_attr tls-x509 tls)" "require (X.509)" "dst show tls"
assert_eq "$(nbdinfo --size "$(tls_uri)")" 67108864 "nbdinfo over X.509"
head -c 16M /dev/urandom >"$T_TMP/data.img"
run_ok "nbdcopy in" nbdcopy "$T_TMP/data.img" "$(tls_uri)"
run_ok "nbdcopy out" nbdcopy "$(tls_uri)" "$T_TMP/back.img"
head -c 16M "$T_TMP/back.img" | cmp -s - "$T_TMP/data.img" || fail "data read back over X.509 differs"
# shellcheck disable=SC2046 # the options are words on purpose
run_ok "qemu-img info with tls-creds-x509" qemu-img info $(qemu_x509) --image-opts \
	"driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
assert_contains "$(cat "$T_TMP/run.out")" "virtual size: 64 MiB" "qemu-img info over X.509"
log_has "$LOG" 'TLS on, X\.509' "X.509 client logged"
run_fails "nbdinfo without TLS" nbdinfo --size "$URI"
assert_not_contains "$RUN_OUT" 67108864 "plaintext client learned the size"

step "a client that trusts another CA refuses our server"
run_fails "nbdinfo trusting another CA" nbdinfo --size "$(tls_uri "$T_TMP/evil")"
note "client: $(printf '%s' "$RUN_OUT" | head -1)"
# shellcheck disable=SC2046
run_fails "qemu-img trusting another CA" qemu-img info $(qemu_x509 "$T_TMP/evil") --image-opts \
	"driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
note "client: $(printf '%s' "$RUN_OUT" | head -1)"
assert_contains "$RUN_OUT" "certificate" "qemu-img's reason"
sleep 0.2
log_has "$LOG" 'refused: TLS handshake failed: the peer closed the connection \(does it trust our certificate' \
	"refused client logged"
stop_export tls-x509

step "--tls-verify-peer: only clients with a certificate of our CA"
dst_ok start tls-x509 --tls-verify-peer >/dev/null
grep -q '^tls-verify-peer = 1$' "$DST_STATE_DIR/tls-x509.conf" || fail "config has no tls-verify-peer"
assert_eq "$(nbdinfo --size "$(tls_uri)")" 67108864 "nbdinfo with a client certificate"
# shellcheck disable=SC2046
run_ok "qemu-io with a client certificate" qemu-io $(qemu_x509) --image-opts \
	-c "read -P 0 20M 1M" -c "write -P 0x33 20M 1M" -c "read -P 0x33 20M 1M" \
	"driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
run_fails "nbdinfo without a client certificate" nbdinfo --size "$(tls_uri "$T_TMP/nocert")"
note "client: $(printf '%s' "$RUN_OUT" | head -1)"
assert_not_contains "$RUN_OUT" 67108864 "a client without a certificate learned the size"
run_fails "nbdinfo with another CA's client certificate" nbdinfo --size "$(tls_uri "$T_TMP/badcert")"
note "client: $(printf '%s' "$RUN_OUT" | head -1)"
sleep 0.2
# (A client whose certificate is of another CA does not even show it: the
# server names the CAs it takes.)
assert_ge "$(grep -c 'refused: TLS handshake failed: the client showed no certificate signed by our CA' "$LOG")" 2 \
	"clients without a good certificate logged"
note "server: $(grep -m1 'showed no certificate' "$LOG" | sed 's/.*warning: //')"
stop_export tls-x509
echo "PASS"
