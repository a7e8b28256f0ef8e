#!/usr/bin/env bash
# Node URIs take libnbd's and qemu's query parameters: a URI that works with
# nbdinfo works with dst add. A storage with no credentials of its own gets
# three nodes, each a dst export named by such a URI:
#   n0  nbds://bob@127.0.0.1:PORT/?tls-psk-file=FILE   (PSK, user from USER@)
#   n1  nbd+unix:///?socket=PATH                       (Unix socket)
#   n2  nbds://127.0.0.1:PORT/?tls-certificates=DIR    (X.509)
# Each URI is checked with nbdinfo first. Data written through the storage
# is on the three backing files. The user name is the one the URI gives (the
# export logs it); a user not in the file, a relative file name, a bad
# tls-verify-peer and an X.509 node whose CA we do not have are refused with
# a reason; that node is let in with tls-verify-peer=false.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
# shellcheck source=lib_tls.sh
. "$TESTS_DIR/func/lib_tls.sh"
need nbdinfo nbdcopy

KEYS=$T_TMP/keys.psk
tls_psk "$KEYS" alice bob
tls_pki "$T_TMP/pki"
tls_pki "$T_TMP/other" "another CA"

# uri_export NAME URI-TEMPLATE OPTIONS...: a 8 MiB (+ label) file exported
# with OPTIONS; @PORT@ in the template becomes its port. Sets NODE_URI.
uri_export() {
	local name=$1 tmpl=$2
	shift 2
	{ truncate -s 8M "$T_TMP/$name.img" && truncate -s +4096 "$T_TMP/$name.img"; } || fail "truncate"
	start_export "$name" "$T_TMP/$name.img" "$@"
	NODE_URI=${tmpl//@PORT@/$PORT}
	run_ok "nbdinfo $NODE_URI" nbdinfo --size "$NODE_URI"
	assert_eq "$(cat "$T_TMP/run.out")" $((8 * MiB + 4096)) "nbdinfo --size $NODE_URI"
}

step "three exports, and their URIs checked with nbdinfo"
uri_export n0 "nbds://bob@127.0.0.1:@PORT@/?tls-psk-file=$KEYS" --tls-psk "$KEYS"
N0=$NODE_URI
SOCK=$T_TMP/n1.sock
uri_export n1 "nbd+unix:///?socket=$SOCK" --socket "$SOCK"
N1=$NODE_URI
uri_export n2 "nbds://127.0.0.1:@PORT@/?tls-certificates=$T_TMP/pki" --tls-certs "$T_TMP/pki"
N2=$NODE_URI N2_PORT=$PORT

step "storage st (no credentials of its own) over the three URIs"
st_create st linear
st_add st --remote "$N0"
st_add st --remote "$N1"
st_add st --remote "$N2"
st_start st
for n in n-0 n-16384 n-32768; do
	assert_eq "$(show_attr st $n/state)" up "st/$n/state"
done
assert_eq "$(show_attr st n-0/tls)" PSK "st/n-0/tls"
assert_eq "$(show_attr st n-32768/tls)" X.509 "st/n-32768/tls"
log_has "$DST_STATE_DIR/n0.log" "TLS on, PSK user bob " "the node connected as the URI's user (bob@)"

step "data through st lands on the three files"
SIZE=$(dev_size "$ST_URI")
assert_eq "$SIZE" $((24 * MiB)) "st's size"
head -c "$SIZE" /dev/urandom >"$T_TMP/data" || fail "random data"
run_ok "nbdcopy into st" nbdcopy "$T_TMP/data" "$ST_URI"
assert_eq "$(node_data "$T_TMP/n0.img" "$T_TMP/n1.img" "$T_TMP/n2.img" | sha256sum)" \
	"$(sha256sum <"$T_TMP/data")" "the three backing files"
assert_eq "$(nbdcopy "$N0" - | head -c $((8 * MiB)) | sha256sum)" \
	"$(head -c $((8 * MiB)) "$T_TMP/data" | sha256sum)" "n0 read with nbdcopy and the same URI"
st_stop st

step "bad parameters are refused with a reason"
st_create bad linear
run_fails "a user not in the PSK file" "$DST" add bad --remote "${N0/bob@/carol@}"
assert_contains "$RUN_OUT" "carol" "dst add with carol@"
run_fails "tls-username= wins over USER@" "$DST" add bad --remote "$N0&tls-username=carol"
assert_contains "$RUN_OUT" "carol" "dst add with tls-username=carol"
cp "$KEYS" "$T_TMP/rel.psk"
run_fails "a relative tls-psk-file" "$DST" add bad --remote "nbds://127.0.0.1:1/?tls-psk-file=rel.psk"
assert_contains "$RUN_OUT" "absolute path" "dst add with a relative tls-psk-file"
run_fails "a bad tls-verify-peer" "$DST" add bad --remote "$N2&tls-verify-peer=maybe"
assert_contains "$RUN_OUT" "tls-verify-peer" "dst add with tls-verify-peer=maybe"

step "X.509 with a CA that did not sign the node's certificate: refused"
OTHER="nbds://127.0.0.1:$N2_PORT/?tls-certificates=$T_TMP/other"
run_fails "nbdinfo with the other CA" nbdinfo --size "$OTHER"
run_fails "dst add with the other CA" "$DST" add bad --remote "$OTHER"
assert_contains "$RUN_OUT" "certificate" "dst add with the other CA"
assert_eq "$(grep -c '^node' "$DST_STATE_DIR/bad.conf")" 0 "nodes in bad.conf after the refusals"

step "the same with tls-verify-peer=false: let in, data read"
dst_ok delete st >/dev/null # its labels come off the nodes: n2 may join bad
st_add bad --remote "$OTHER&tls-verify-peer=false"
st_start bad
assert_eq "$(show_attr bad n-0/state)" up "bad/n-0/state"
assert_eq "$(dev_sha "$ST_URI")" "$(node_data "$T_TMP/n2.img" | sha256sum | cut -d' ' -f1)" \
	"n2's data through a storage that does not check its certificate"
st_stop bad
echo "PASS"
