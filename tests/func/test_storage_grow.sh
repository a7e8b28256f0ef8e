#!/usr/bin/env bash
# Grow and shrink a running alg_linear storage: `dst add` of a third node
# while it runs grows the device (a new client sees the new size, `dst show`
# shows it, data beyond the old end reads back, from the new node too);
# `dst remove` of a middle node is refused with a message that only the last
# node can go, and changes nothing; removing the last node (by name, then
# by URI after adding it again) shrinks the device.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio qemu-io nbdinfo

step "exports g0 16M, g1 8M, g2 8M; storage grow over g0 + g1, running"
st_export g0 16M
G0=$URI
st_export g1 8M
G1=$URI
st_export g2 8M
G2=$URI G2_IMG=$IMG
st_create grow linear
st_add grow --remote "$G0"
st_add grow --remote "$G1"
st_start grow
GROW=$ST_URI GROW_PID=$ST_PID
assert_eq "$(dev_size "$GROW")" $((24 * MiB)) "size before growing"
qio "$GROW" "write -P 0xf0 $((16 * MiB - 32768)) 65536" "flush"

step "dst add g2 while running"
out=$(dst add grow --remote "$G2") || fail "dst add to the running storage failed"
note "$out"
assert_contains "$out" "n-49152" "dst add names the new node"
assert_eq "$(export_pid grow)" "$GROW_PID" "the storage daemon is the same process"
assert_eq "$(dev_size "$GROW")" $((32 * MiB)) "size a new client sees after the add"
assert_eq "$(show_attr grow size)" 65536 "grow/size after the add"
assert_eq "$(show_attr grow nodes)" "sectors (start [size]): 0 [32768] | 32768 [16384] | 49152 [16384]" "grow/nodes after the add"
assert_eq "$(show_attr grow n-49152/start)" 49152 "n-49152/start"
assert_eq "$(show_attr grow n-49152/size)" 16384 "n-49152/size"
assert_eq "$(show_attr grow n-49152/state)" up "n-49152/state"
grep -q "^node = remote start=49152 size=16384 label=8388608 id=[0-9a-f]\{32\} $G2\$" "$DST_STATE_DIR/grow.conf" || {
	cat "$DST_STATE_DIR/grow.conf" >&2
	fail "the new node is not in grow.conf"
}

step "fio verify across the old end (20M..32M)"
st_fio_verify "$GROW" 2 6M --offset=20M || fail "fio verify across the old end"

step "data across and beyond the old end"
qio "$GROW" "write -P 0xf1 $((24 * MiB - 4096)) 8192" "write -P 0xf2 $((32 * MiB - 4096)) 4096" "flush" \
	"read -P 0xf0 $((16 * MiB - 32768)) 65536" "read -P 0xf1 $((24 * MiB - 4096)) 8192" \
	"read -P 0xf2 $((32 * MiB - 4096)) 4096"
assert_node_pattern "$G2" 0 4096 0xf1 "start of the new node"
assert_node_pattern "$G2" $((8 * MiB - 4096)) 4096 0xf2 "end of the new node"
assert_file_pattern "$G2_IMG" 0 4096 0xf1 "start of the new node's file"

step "remove a middle node of the running storage: refused, nothing changes"
conf_before=$(conf_md5 grow)
bad_input "remove middle node" "n-32768" "last" -- remove grow n-32768
assert_eq "$(conf_md5 grow)" "$conf_before" "md5 of grow.conf after the refused remove"
bad_input "remove first node" "n-0" "last" -- remove grow n-0
assert_eq "$(dev_size "$GROW")" $((32 * MiB)) "size after the refused removes"
assert_eq "$(show_attr grow nodes)" "sectors (start [size]): 0 [32768] | 32768 [16384] | 49152 [16384]" "nodes after the refused removes"
qio "$GROW" "read -P 0xf1 $((24 * MiB - 4096)) 8192" "read -P 0xf2 $((32 * MiB - 4096)) 4096"

step "remove the last node: the device shrinks"
out=$(dst remove grow n-49152) || fail "dst remove of the last node failed"
note "$out"
assert_eq "$(dev_size "$GROW")" $((24 * MiB)) "size a new client sees after the remove"
assert_eq "$(show_attr grow size)" 49152 "grow/size after the remove"
assert_eq "$(show_attr grow nodes)" "sectors (start [size]): 0 [32768] | 32768 [16384]" "grow/nodes after the remove"
[ -z "$(show_attr grow n-49152/start)" ] || fail "dst show still lists n-49152"
! grep -qF "$G2" "$DST_STATE_DIR/grow.conf" || fail "the removed node is still in grow.conf"
qio "$GROW" "read -P 0xf1 $((24 * MiB - 4096)) 4096"

step "add it again, remove it by its URI"
dst_ok add grow --remote "$G2" >/dev/null
assert_eq "$(dev_size "$GROW")" $((32 * MiB)) "size after adding the node again"
qio "$GROW" "read -P 0xf1 $((24 * MiB)) 4096"
dst_ok remove grow "$G2" >/dev/null
assert_eq "$(dev_size "$GROW")" $((24 * MiB)) "size after removing the node by URI"

step "add and remove the last node 25 times in a row (a new node can be ready at once)"
for i in $(seq 25); do
	dst add grow --remote "$G2" >/dev/null || fail "add #$i of the node failed"
	dst remove grow n-49152 >/dev/null || fail "remove #$i of the node failed"
done
assert_eq "$(dev_size "$GROW")" $((24 * MiB)) "size after 25 add/remove rounds"
qio "$GROW" "read -P 0xf0 $((16 * MiB - 32768)) 65536"
assert_eq "$(export_pid grow)" "$GROW_PID" "the storage daemon survived it all"
assert_eq "$(show_attr grow io/errors)" 0 "io errors on the storage"

step "stop"
assert_eq "$(show_attr grow clients)" 0 "clients left connected"
st_stop grow
stop_export g0
stop_export g1
stop_export g2
echo "PASS"
