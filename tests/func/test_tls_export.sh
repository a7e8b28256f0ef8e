#!/usr/bin/env bash
# TLS on an export with pre-shared keys: nbdinfo, nbdcopy, qemu-img and
# qemu-io over TLS against --tls require; a plaintext client refused before
# it learns anything (the raw client shows the exact replies); a wrong key
# or an unknown user refused with a clear log line; --tls on serving both;
# a server without TLS answering STARTTLS with ERR_UNSUP.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_tls.sh"
need nbdinfo nbdcopy qemu-img qemu-io

mkdir -p "$T_TMP/psk" "$T_TMP/other"
tls_psk "$T_TMP/psk/keys.psk" alice bob
tls_psk "$T_TMP/other/keys.psk" alice carol # alice with another key
KEYS=$T_TMP/psk/keys.psk
tls_uri() { echo "nbds://${2:-alice}@127.0.0.1:$PORT/?tls-psk-file=${1:-$KEYS}"; }
qemu_psk() { # qemu-img/qemu-io options for user $1 (keys.psk in dir $2)
	echo "--object tls-creds-psk,id=tls0,endpoint=client,dir=${2:-$T_TMP/psk},username=$1"
}
LOG=$DST_STATE_DIR/tls-req.log

step "--tls require --tls-psk: clients with a key get in"
truncate -s 64M "$T_TMP/disk.img"
start_export tls-req "$T_TMP/disk.img" --tls require --tls-psk "$KEYS"
assert_eq "$(nbdinfo --size "$(tls_uri)")" 67108864 "nbdinfo over TLS as alice"
assert_eq "$(nbdinfo --size "$(tls_uri "$KEYS" bob)")" 67108864 "nbdinfo over TLS as bob"
assert_eq "$(show_attr tls-req tls)" "require (PSK)" "dst show tls"
grep -Eq '^tls = require$' "$DST_STATE_DIR/tls-req.conf" || fail "config has no 'tls = require'"
grep -Eq "^tls-psk = $KEYS\$" "$DST_STATE_DIR/tls-req.conf" || fail "config has no absolute tls-psk"
log_has "$LOG" 'client 127\.0\.0\.1:[0-9]+: TLS on, PSK' "TLS client logged"

step "data through TLS: nbdcopy in and out, qemu-io patterns"
head -c 24M /dev/urandom >"$T_TMP/data.img"
run_ok "nbdcopy into the export" nbdcopy "$T_TMP/data.img" "$(tls_uri)"
run_ok "nbdcopy out of the export" nbdcopy "$(tls_uri)" "$T_TMP/back.img"
head -c 24M "$T_TMP/back.img" | cmp -s - "$T_TMP/data.img" || fail "data read back over TLS differs"
# shellcheck disable=SC2046 # the options are words on purpose
run_ok "qemu-img info with tls-creds-psk" qemu-img info $(qemu_psk alice) --image-opts \
	"driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
assert_contains "$(cat "$T_TMP/run.out")" "virtual size: 64 MiB" "qemu-img info over TLS"
# shellcheck disable=SC2046
run_ok "qemu-io over TLS" qemu-io $(qemu_psk bob) --image-opts \
	-c "write -P 0x5a 40M 3M" -c "read -P 0x5a 40M 3M" -c "read -P 0 43M 1M" \
	"driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"

step "plaintext clients are refused before they learn anything"
run_fails "nbdinfo without TLS" nbdinfo "$URI"
assert_not_contains "$RUN_OUT" "67108864" "nbdinfo without TLS learned the size"
run_fails "nbdinfo --list without TLS" nbdinfo --list "$URI"
assert_not_contains "$RUN_OUT" "tls-req" "nbdinfo --list without TLS learned the name"
run_fails "qemu-img info without TLS" qemu-img info "$URI"
run_ok "raw client: TLS_REQD for every option" nbd_raw --name tls-req 127.0.0.1 "$PORT" \
	tls_required tls_starttls_ack tls_injection
cat "$T_TMP/run.out"
log_has "$LOG" 'client 127\.0\.0\.1:[0-9]+: refused: it did not start TLS' "plaintext client logged"
log_has "$LOG" 'refused: plaintext data after STARTTLS' "injection logged"

step "a wrong key and an unknown user are refused, with a reason on both sides"
run_fails "nbdinfo with alice's wrong key" nbdinfo --size "$(tls_uri "$T_TMP/other/keys.psk")"
note "client: $(printf '%s' "$RUN_OUT" | head -1)"
assert_not_contains "$RUN_OUT" "67108864" "a wrong key learned the size"
log_has "$LOG" 'refused: TLS handshake failed.*wrong PSK' "wrong key logged"
n_before=$(grep -c 'wrong PSK' "$LOG")
# shellcheck disable=SC2046
run_fails "qemu-img as carol (not in the server's file)" qemu-img info \
	$(qemu_psk carol "$T_TMP/other") --image-opts "driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
note "client: $(printf '%s' "$RUN_OUT" | head -1)"
sleep 0.2
assert_ge "$(grep -c 'refused: TLS handshake failed' "$LOG")" $((n_before + 1)) "unknown user logged"
assert_ge "$(show_attr tls-req clients_tls)" 4 "clients_tls"
stop_export tls-req

step "--tls on: plaintext and TLS clients alike"
dst_ok start tls-req --tls on >/dev/null
grep -Eq '^tls = on$' "$DST_STATE_DIR/tls-req.conf" || fail "config has no 'tls = on'"
assert_eq "$(show_attr tls-req tls)" "on (PSK)" "dst show tls"
assert_eq "$(nbdinfo --size "$URI")" 67108864 "plaintext nbdinfo with --tls on"
assert_eq "$(nbdinfo --size "$(tls_uri)")" 67108864 "TLS nbdinfo with --tls on"
run_ok "raw client: STARTTLS acked, plaintext works" nbd_raw 127.0.0.1 "$PORT" \
	tls_starttls_ack oor_read options_burst
# shellcheck disable=SC2046
run_ok "qemu-io over TLS with --tls on" qemu-io $(qemu_psk alice) --image-opts \
	-c "read -P 0x5a 40M 3M" "driver=nbd,host=127.0.0.1,port=$PORT,tls-creds=tls0"
stop_export tls-req

step "--tls off (no TLS): STARTTLS gets ERR_UNSUP, nbds:// clients fail"
dst_ok start tls-req --tls off >/dev/null
assert_eq "$(show_attr tls-req tls)" off "dst show tls"
run_ok "raw client: STARTTLS refused, GO works" nbd_raw 127.0.0.1 "$PORT" tls_unsupported
run_fails "nbdinfo nbds:// against no TLS" nbdinfo --size "$(tls_uri)"
stop_export tls-req
step "backpressure through TLS: 32 MiB requests against a 32 MiB buffer budget"
start_export tls-bp mem:64M --buffers 1M --tls-psk "$KEYS"
run_ok "nbdcopy of 32 MiB requests in" nbdcopy --connections=1 --requests=8 \
	--request-size=33554432 "$T_TMP/data.img" "$(tls_uri)"
run_ok "nbdcopy of 32 MiB requests out" nbdcopy --connections=1 --requests=8 \
	--request-size=33554432 "$(tls_uri)" "$T_TMP/back2.img"
head -c 24M "$T_TMP/back2.img" | cmp -s - "$T_TMP/data.img" || fail "data differs after backpressure"
assert_eq "$(show_attr tls-bp mem/buffer_peak)" 33554432 "the whole budget was in use"
stop_export tls-bp

echo "PASS"
