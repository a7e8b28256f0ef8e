#!/usr/bin/env bash
# Bad input to the storage commands: each exits non-zero with ONE line on
# stderr that names the problem, prints nothing on stdout, and changes
# nothing in the state dir (configs compared by md5, file list compared).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need nbdinfo

step "set-up: exports e16a, e16c, e16b (16M), e24 (24M); storages lin (linear) and str (stripe)"
st_export e16a 16M
E16A=$URI
st_export e16c 16M
E16C=$URI
st_export e16b 16M
E16B=$URI
st_export e24 24M
E24=$URI
st_create lin linear
st_add lin --remote "$E16A"
st_create str stripe
st_add str --remote "$E16C"
# A disk carries one storage's label: lin's node cannot join str.
bad_input "another storage's disk" "carries the label of storage lin" "--relabel" -- add str --remote "$E16A"

step "--help of every storage command: status 0, a usage line"
for c in create add remove start stop delete show stat; do
	out=$("$DST" "$c" --help 2>&1) || fail "dst $c --help exited non-zero"
	assert_contains "$out" "usage: dst $c" "dst $c --help"
done
out=$("$DST" --help 2>&1) || fail "dst --help exited non-zero"
for c in create add remove start stop delete show stat; do
	grep -qE "^ +$c( |$)" <<<"$out" || fail "dst --help does not list '$c'"
done

step "dst create"
bad_input "unknown algorithm" raid5 -- create bad --alg raid5
[ ! -e "$DST_STATE_DIR/bad.conf" ] || fail "a config was written for an unknown algorithm"
bad_input "create of an existing name" lin exist -- create lin --alg linear
bad_input "create of an existing name, other alg" lin exist -- create lin --alg stripe
bad_input "create without --alg" alg -- create bad2
bad_input "--chunk not a power of two" chunk -- create bad3 --alg stripe --chunk 48K
bad_input "--chunk on alg_linear" chunk -- create bad4 --alg linear --chunk 64K
bad_input "a bad name" name -- create "../evil" --alg linear
[ ! -e "$DST_STATE_DIR/../evil.conf" ] || fail "create ../evil wrote outside the state dir"

step "dst add"
bad_input "add to unknown storage" nosuch -- add nosuch --remote "$E16B"
bad_input "unreachable node" "nbd://127.0.0.1:1" "refused" -- add lin --remote nbd://127.0.0.1:1
bad_input "the same node twice" "$E16A" n-0 -- add lin --remote "$E16A"
bad_input "overlapping range with --start" overlap n-0 -- add lin --remote "$E16B" --start 100
bad_input "overlap: --start inside the new node's own range" overlap -- add lin --remote "$E16B" --start 32767
bad_input "--size larger than the node" 99999999 32768 -- add lin --remote "$E16B" --size 99999999
bad_input "--size 0" size -- add lin --remote "$E16B" --size 0
bad_input "--start not a number" start -- add lin --remote "$E16B" --start abc
bad_input "stripe nodes of unequal size" "equal size" -- add str --remote "$E24"
bad_input "--start on a stripe" start -- add str --remote "$E16B" --start 32768
bad_input "not an NBD URI" URI -- add lin --remote "http://127.0.0.1:80/"
bad_input "missing local disk" "$T_TMP/nope.img" -- add lin --disk "$T_TMP/nope.img"
bad_input "both --remote and --disk" -- add lin --remote "$E16B" --disk "$T_TMP/x"
bad_input "unknown export name on a node" "$E16B/nosuch" -- add lin --remote "$E16B/nosuch"
# And a good add after all that still works, at the right place.
dst_ok add lin --remote "$E16B" >/dev/null
grep -Eqx "node = remote start=32768 size=32768 label=16777216 id=[0-9a-f]{32} $E16B" "$DST_STATE_DIR/lin.conf" || {
	cat "$DST_STATE_DIR/lin.conf" >&2
	fail "the good add is not in lin.conf at start 32768"
}

step "dst remove"
bad_input "remove from unknown storage" nosuch -- remove nosuch n-0
bad_input "unknown node for remove" n-5 -- remove lin n-5
bad_input "unknown node URI for remove" "nbd://127.0.0.1:1" -- remove lin nbd://127.0.0.1:1
bad_input "remove a node of a stopped storage that leaves a hole" n-0 -- remove lin n-0

step "dst start / stop / delete"
st_start lin
bad_input "starting a storage twice" lin running -- start lin
bad_input "start unknown storage" nosuch -- start nosuch
bad_input "stop unknown storage" nosuch -- stop nosuch
bad_input "delete a running storage" lin running -- delete lin
st_stop lin
bad_input "stop a stopped storage" lin "not running" -- stop lin
# A storage whose node is not up starts all the same (at boot its host may
# come later), and warns, naming the node (test_storage_boot.sh has more).
st_create gone linear
st_export tmpx 4M
st_add gone --remote "$URI"
TMPX=$URI
stop_export tmpx
out=$("$DST" start gone 2>&1) || fail "start with an unreachable node failed: $out"
track_export gone
assert_contains "$out" "warning: node n-0 ($TMPX) is not up yet" "start with an unreachable node"
st_stop gone

step "the seed form"
bad_input "seed form without -n" "-n" -- -A alg_linear -a 127.0.0.1 -p "${E16B##*:}"
bad_input "-n for a nonexistent storage without -A" nosuch "-A" -- -n nosuch -a 127.0.0.1 -p "${E16B##*:}"
bad_input "seed: bad port" port -- -n lin -a 127.0.0.1 -p 99999
bad_input "seed: unknown algorithm" alg_raid5 -- -n newone -A alg_raid5 -a 127.0.0.1 -p "${E16B##*:}"
bad_input "seed: wrong alg for an existing storage" alg_stripe -- -n lin -A alg_stripe
bad_input "seed: -D of a nonexistent storage" nosuch -- -n nosuch -D
bad_input "seed: unreachable node" "127.0.0.1:1" -- -n lin -a 127.0.0.1 -p 1
bad_input "seed: -r of a node that is not there" "127.0.0.1:1" -- -n lin -a 127.0.0.1 -p 1 -r

step "nothing was created by any of it"
for f in bad bad2 bad3 bad4 nosuch newone; do
	[ ! -e "$DST_STATE_DIR/$f.conf" ] || fail "$f.conf exists"
done
assert_eq "$(show_attr lin state)" stopped "lin/state"

stop_export e16a
stop_export e16c
stop_export e16b
stop_export e24
echo "PASS"
