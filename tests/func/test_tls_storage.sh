#!/usr/bin/env bash
# TLS on every hop of a storage:
#  1. its node is an `nbdkit --tls=require --tls-psk` server (nbds://):
#     dst add probes it with the storage's key, fio verifies through it;
#  2. that nbdkit is killed and restarted under load: the node reconnects,
#     doing TLS again, and fio sees no error;
#  3. the storage itself served with --tls require to qemu-img / qemu-io;
#  4. a wrong PSK, and 5. a node certificate of another CA, refused with
#     the reason in the storage's log and in the node's (a dst export);
#     nbds+unix:// with X.509 works.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
# shellcheck source=lib_failover.sh
. "$TESTS_DIR/func/lib_failover.sh"
# shellcheck source=lib_tls.sh
. "$TESTS_DIR/func/lib_tls.sh"
need nbdkit nbdinfo fio qemu-img qemu-io

mkdir -p "$T_TMP/psk" "$T_TMP/other"
tls_psk "$T_TMP/psk/keys.psk" alice
tls_psk "$T_TMP/other/keys.psk" alice # the same user, another key
KEYS=$T_TMP/psk/keys.psk

# tls_nbdkit PORT FILE: nbdkit --tls=require with our PSK file serving FILE
# on PORT, in the background; waits until it answers over TLS.
tls_nbdkit() {
	local port=$1 file=$2
	bg nbdkit -f -i 127.0.0.1 -p "$port" --tls=require --tls-psk="$KEYS" file "$file"
	NBDKIT_PID=$BG_PID
	for _ in $(seq 50); do
		nbdinfo --size "nbds://alice@127.0.0.1:$port/?tls-psk-file=$KEYS" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "nbdkit --tls=require on port $port did not come up"
}

step "1. a storage over an nbdkit --tls=require node (PSK)"
truncate -s 64M "$T_TMP/node.img"
NP=$(free_port)
tls_nbdkit "$NP" "$T_TMP/node.img"
NODE=nbds://127.0.0.1:$NP
st_create st linear --tls-psk "$KEYS"
run_fails "dst add nbd:// (plaintext) to a TLS-only node" "$DST" add st --remote "nbd://127.0.0.1:$NP"
note "$RUN_OUT"
st_add st --remote "$NODE"
grep -q "^node-tls-psk = $KEYS\$" "$DST_STATE_DIR/st.conf" || fail "config has no node-tls-psk"
st_start st --listen "127.0.0.1:$(free_port)"
ST=$ST_URI
fo_log_has st "node $NODE: up, 67108864 bytes, TLS PSK" "the node came up over TLS"
st_fio_verify "$ST" 2 16M || fail "fio verify through the TLS node"

step "2. nbdkit killed and restarted under load: the node does TLS again"
fo_fio_start "$ST" 8 "$T_TMP/fio.st"
fo_sleep_under_load 2
fo_expect_load st n-0
kill -KILL "$NBDKIT_PID"
wait_gone "$NBDKIT_PID" 10 || fail "nbdkit survived kill -9"
sleep 1
assert_eq "$(show_attr st n-0/state)" reconnecting "n-0/state while nbdkit is dead"
READS_BACK=$(show_attr st n-0/io/reads) # while it is dead: later reads come after its return
tls_nbdkit "$NP" "$T_TMP/node.img"
fo_wait_up st n-0 15
fo_fio_wait "$T_TMP/fio.st" || fail "fio through the storage across the nbdkit restart"
fo_check_after st n-0 "$READS_BACK" 1
fo_log_has st "node $NODE: back after" "the node came back (over TLS again)"
st_stop st

step "3. the storage served with --tls require to qemu-img and qemu-io"
SP=$(free_port)
dst_ok start st --listen "127.0.0.1:$SP" --tls require --tls-psk "$KEYS" >/dev/null
track_export st
assert_eq "$(show_attr st tls)" "require (PSK)" "dst show st/tls"
QPSK="tls-creds-psk,id=tls0,endpoint=client,dir=$T_TMP/psk,username=alice"
run_ok "qemu-img info over TLS" qemu-img info --object "$QPSK" --image-opts \
	"driver=nbd,host=127.0.0.1,port=$SP,tls-creds=tls0"
assert_contains "$(cat "$T_TMP/run.out")" "virtual size: 64 MiB" "qemu-img info of the storage"
run_ok "qemu-io over TLS, both hops" qemu-io --object "$QPSK" --image-opts \
	-c "write -P 0x6c 60M 2M" -c "read -P 0x6c 60M 2M" \
	"driver=nbd,host=127.0.0.1,port=$SP,tls-creds=tls0"
run_fails "plaintext qemu-img info" qemu-img info "nbd://127.0.0.1:$SP"
fo_log_has st 'refused: it did not start TLS' "the plaintext client was logged"
st_stop st
cmp -s <(dd if="$T_TMP/node.img" bs=1M skip=60 count=2 2>/dev/null) <(head -c 2M /dev/zero | tr '\0' 'l') ||
	fail "the pattern written through both TLS hops is not in nbdkit's file"

step "4. a wrong PSK: refused on both sides, with the reason"
start_export ex mem:16M --tls require --tls-psk "$T_TMP/other/keys.psk"
EX=nbds://127.0.0.1:$PORT
st_create wp linear --tls-psk "$KEYS"
run_fails "dst add with the wrong key" "$DST" add wp --remote "$EX"
note "$RUN_OUT"
assert_contains "$RUN_OUT" "node $EX: cannot reach it" "dst add names the node"
fo_log_has ex 'refused: TLS handshake failed.*wrong PSK' "the export logged the wrong key"
stop_export ex
dst_ok start ex --tls-psk "$KEYS" >/dev/null
st_add wp --remote "$EX"
stop_export ex
dst_ok start ex --tls-psk "$T_TMP/other/keys.psk" >/dev/null
run_fails "dst start with the wrong key" "$DST" start wp
note "$RUN_OUT"
assert_contains "$RUN_OUT" "node n-0 ($EX): TLS handshake failed" "dst start names the node"
assert_contains "$RUN_OUT" "wrong PSK" "dst start says why"
[ ! -e "$DST_STATE_DIR/wp.pid" ] || fail "the storage runs with a node it cannot reach"
assert_ge "$(grep -c 'refused: TLS handshake failed.*wrong PSK' "$DST_STATE_DIR/ex.log")" 1 \
	"the export logged the storage's wrong key"
stop_export ex

step "5. X.509 nodes: nbds+unix:// works; a node certificate of another CA is refused"
tls_pki "$T_TMP/pki"
tls_pki "$T_TMP/evil" "some other CA"
truncate -s 16M "$T_TMP/x.img"
dst_ok export "$T_TMP/x.img" --name xs --socket "$T_TMP/xs.sock" --tls require --tls-certs "$T_TMP/pki" >/dev/null
track_export xs
XS="nbds+unix:///?socket=$T_TMP/xs.sock"
st_create xv linear --tls-certs "$T_TMP/pki"
st_add xv --remote "$XS"
st_start xv
run_ok "qemu-io through xv" qemu-io -f raw -c "write -P 0x21 1M 1M" -c "read -P 0x21 1M 1M" "$ST_URI"
fo_log_has xv "node .*xs.sock: up, 16777216 bytes, TLS X.509" "the X.509 node came up"
st_stop xv
sed -i "s|^node-tls-certs = .*|node-tls-certs = $T_TMP/evil|" "$DST_STATE_DIR/xv.conf"
run_fails "dst start trusting another CA" "$DST" start xv
note "$RUN_OUT"
assert_contains "$RUN_OUT" "TLS handshake failed: the peer's certificate: " "dst start says why"
fo_log_has xs 'refused: TLS handshake failed' "the export logged the refused storage"
stop_export xs
# (Over TCP: libnbd, which dst add probes with, checks no certificate over
# a Unix socket.)
start_export xt mem:16M --tls-certs "$T_TMP/pki"
run_fails "dst add trusting another CA" "$DST" add wp --remote "nbds://127.0.0.1:$PORT" --tls-certs "$T_TMP/evil"
note "$RUN_OUT"
assert_contains "$RUN_OUT" "node nbds://127.0.0.1:$PORT: cannot reach it" "dst add names the node"
stop_export xt
echo "PASS"
