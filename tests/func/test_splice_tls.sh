#!/usr/bin/env bash
# TLS keeps the copying path (issue 21): a payload that must be encrypted or
# decrypted cannot go socket -> pipe -> socket. alg_linear over n0, a
# plaintext file-backed export, and n1, one that requires TLS (PSK, reached
# as nbds://):
#  1. the storage served in plaintext: fio 1M write+verify on both nodes;
#     n0's payload is spliced, n1's copied, and `dst show` says why
#     (n-65536/splice "no (TLS)", tl/splice/state "on");
#  2. the storage served with --tls require: nbdcopy of a random 48M file
#     in (1M requests, across both nodes) and out over TLS, cmp, qemu-io
#     patterns over TLS; nothing at all is spliced, not even n0's payload,
#     and NAME/splice says off because of TLS;
#  3. a storage over n0 started with DST_SPLICE=0 copies a 1M write and
#     read, and says so.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_tls.sh"
. "$TESTS_DIR/func/lib_splice.sh"
need fio qemu-io nbdinfo nbdcopy

KEYS=$T_TMP/keys.psk
tls_psk "$KEYS" alice

step "n0 in plaintext, n1 with --tls require (32M files)"
st_export n0 32M
N0=$URI N0_IMG=$IMG
IMG=$T_TMP/n1.img
{ truncate -s 32M "$IMG" && truncate -s +4096 "$IMG"; } || fail "truncate $IMG"
start_export n1 "$IMG" --tls require --tls-psk "$KEYS"
N1_URI=nbds://127.0.0.1:$PORT N1_IMG=$IMG
N1="n-65536"

step "1. storage tl over nbd://n0 and nbds://n1, served in plaintext"
st_create tl linear --tls-psk "$KEYS"
st_add tl --remote "$N0"
st_add tl --remote "$N1_URI"
st_start tl --listen "127.0.0.1:$(free_port)"
TL=$ST_URI
tl_log_has() { grep -Eq "$1" "$DST_STATE_DIR/tl.log" || fail "$2: no line matching '$1' in tl.log"; }
tl_log_has "node $N1_URI: up, [0-9]+ bytes, TLS PSK" "n1 came up over TLS"
sp_assert_attr tl splice/state "on*" "a storage served in plaintext"
sp_assert_attr tl n-0/splice yes "n-0, a plaintext node"
sp_assert_attr tl $N1/splice "no*TLS*" "$N1, a node over TLS"

step "1. fio 1M write+verify on n0 (0..16M) and n1 (36M..52M)"
sp_mark tl n-0 $N1
sp_fio_jobs "$TL" "$T_TMP/fio.tl" 1m@0+16M 1m@36M+16M
sp_counters tl n-0 $N1
# Each node: 16M written and 16M read back.
sp_assert_delta tl n-0/spliced_bytes ge "$(sp_most $((32 * MiB)))" "n-0's payload spliced"
sp_assert_delta tl $N1/spliced_bytes eq 0 "$N1 (TLS): nothing spliced"
sp_assert_delta tl $N1/copied_bytes eq $((32 * MiB)) "$N1 (TLS): all of its payload copied"
for d in read write; do
	sp_assert_delta tl "splice/${d}_spliced_bytes" ge "$(sp_most $((16 * MiB)))" "$d: n0's half spliced"
	sp_assert_delta tl "splice/${d}_spliced_bytes" le $((16 * MiB)) "$d: no more than n0's half spliced"
	sp_assert_delta tl "splice/${d}_copied_bytes" ge $((16 * MiB)) "$d: n1's half copied"
done
assert_eq "$(show_attr tl io/errors)" 0 "tl io/errors"
sp_idle_pipes tl 1 # n0's: a node over TLS has none
st_stop tl

step "2. storage tl served with --tls require"
SP=$(free_port)
dst_ok start tl --listen "127.0.0.1:$SP" --tls require --tls-psk "$KEYS" >/dev/null
track_export tl
assert_eq "$(show_attr tl tls)" "require (PSK)" "dst show tl/tls"
TLS_URI="nbds://alice@127.0.0.1:$SP/?tls-psk-file=$KEYS"
sp_assert_attr tl splice/state "off*TLS*" "a storage served over TLS"
sp_assert_attr tl n-0/splice yes "n-0, a plaintext node"

step "2. nbdcopy a random 48M file in and out over TLS (1M requests, both nodes)"
sp_random "$T_TMP/rand48" $((48 * MiB))
sp_mark tl n-0 $N1
run_ok "nbdcopy into tl over TLS" nbdcopy --request-size=$MiB "$T_TMP/rand48" "$TLS_URI"
run_ok "nbdcopy out of tl over TLS" nbdcopy --request-size=$MiB "$TLS_URI" "$T_TMP/tl.out"
cmp -n $((48 * MiB)) "$T_TMP/rand48" "$T_TMP/tl.out" || fail "nbdcopy in and out of tl over TLS: the data differs"
QPSK="tls-creds-psk,id=tls0,endpoint=client,dir=$T_TMP,username=alice"
run_ok "qemu-io over TLS" qemu-io --object "$QPSK" --image-opts \
	-c "write -P 0x4e $((60 * MiB)) 1M" -c "read -P 0x4e $((60 * MiB)) 1M" \
	-c "write -P 0x4f $((8 * MiB)) 1M" -c "read -P 0x4f $((8 * MiB)) 1M" \
	"driver=nbd,host=127.0.0.1,port=$SP,tls-creds=tls0"
assert_not_contains "$(cat "$T_TMP/run.out")" "Pattern verification failed" "qemu-io over TLS"
sp_counters tl n-0 $N1
for d in read write; do
	sp_assert_delta tl "splice/${d}_spliced_bytes" eq 0 "$d: nothing spliced for a TLS client"
	sp_assert_delta tl "splice/${d}_copied_bytes" ge $((49 * MiB)) "$d: the payload copied"
done
sp_assert_delta tl n-0/spliced_bytes eq 0 "n-0: nothing spliced for a TLS client"
assert_file_pattern "$N1_IMG" $((28 * MiB)) "$MiB" 0x4e "qemu-io's write over TLS, in n1's file"
assert_file_pattern "$N0_IMG" $((8 * MiB)) "$MiB" 0x4f "qemu-io's write over TLS, in n0's file"
# The random file's first 32M are n0's (but 8M..9M, written again since),
# the rest n1's.
cmp -n $((8 * MiB)) "$T_TMP/rand48" "$N0_IMG" || fail "the random file's first 8M are not in n0's file"
cmp -n $((23 * MiB)) -i $((9 * MiB)) "$T_TMP/rand48" "$N0_IMG" || fail "the random file's 9M..32M are not in n0's file"
cmp -n $((16 * MiB)) -i $((32 * MiB)):0 "$T_TMP/rand48" "$N1_IMG" || fail "the random file's last 16M are not in n1's file"
assert_eq "$(show_attr tl io/errors)" 0 "tl io/errors"
sp_idle_pipes tl 1

step "3. DST_SPLICE=0: a plaintext storage over n0 that copies everything, and says why"
st_stop tl
st_create t0 linear
st_add t0 --remote "$N0" --relabel # tl, stopped, had it
DST_SPLICE=0 st_start t0 --listen "127.0.0.1:$(free_port)"
sp_assert_attr t0 splice/state "off: DST_SPLICE=0*" "a storage started with DST_SPLICE=0"
sp_assert_attr t0 n-0/splice "no (DST_SPLICE=0: *" "n-0 of a storage started with DST_SPLICE=0"
sp_mark t0 n-0
run_ok "qemu-io 1M write and read through t0" qemu-io -f raw \
	-c "write -P 0x5a $((4 * MiB)) 1M" -c "read -P 0x5a $((4 * MiB)) 1M" "$ST_URI"
assert_not_contains "$(cat "$T_TMP/run.out")" "Pattern verification failed" "qemu-io through t0"
sp_counters t0 n-0
for d in read write; do
	sp_assert_delta t0 "splice/${d}_spliced_bytes" eq 0 "$d: nothing spliced with DST_SPLICE=0"
	sp_assert_delta t0 "splice/${d}_copied_bytes" eq "$MiB" "$d: the payload copied"
done
assert_file_pattern "$N0_IMG" $((4 * MiB)) "$MiB" 0x5a "t0's write, in n0's file"
assert_eq "$(show_attr t0 splice/pipes)" 0 "t0/splice/pipes with DST_SPLICE=0"

step "stop"
st_stop t0
stop_export n0
stop_export n1
echo "PASS"
