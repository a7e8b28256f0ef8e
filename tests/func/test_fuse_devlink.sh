#!/usr/bin/env bash
# The stable name of a storage's block device: `dst attach` links
# $DST_DEV_DIR/NAME (here in the test's temp dir; /dev/dst/NAME by default)
# to the loop device it made; data read through the link is the storage's;
# `dst detach` and `dst stop` remove the link; a link directory others may
# write is not used. `dst attach --boot` saves
# attach = yes: every `dst start` (and the systemd unit's `dst attach
# --auto`) attaches again; `dst detach --no-boot` forgets it, after which
# --auto does nothing.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
need_fuse qemu-io cmp
LINK=$DST_DEV_DIR/dl # lib_fuse.sh: in the test's temp dir

# link_target: where the link points, "" if there is none.
link_target() { readlink "$LINK" 2>/dev/null || true; }

step "storage dl: alg_linear over one 16M export, with a FUSE file"
st_export d0 16M
D0=$URI
st_create dl linear
st_add dl --remote "$D0"
FILE=$T_TMP/dl.dev
track_fuse "$FILE"
st_start dl --fuse "$FILE"
qio "$ST_URI" "write -P 0x3c 0 4M"

step "dst attach: $LINK -> the loop device"
fuse_attach dl
assert_eq "$(link_target)" "$LOOP" "the link's target"
assert_eq "$(readlink -f "$LINK")" "$LOOP" "the link resolved"
head -c $((4 * MiB)) "$LINK" | cmp - <(head -c $((4 * MiB)) /dev/zero | tr '\0' '\074') ||
	fail "the data read through $LINK is not what was written"
assert_eq "$(blockdev --getsize64 "$LINK")" $((16 * MiB)) "the size of the device behind the link"

step "dst detach removes the link"
dst_ok detach dl >/dev/null
[ ! -e "$LINK" ] && [ ! -L "$LINK" ] || fail "$LINK left after dst detach"

step "a link directory others may write is not used"
chmod 0777 "$DST_DEV_DIR"
out=$("$DST" attach dl 2>&1) || fail "dst attach with a world-writable link dir: $out"
LOOP=$(printf '%s\n' "$out" | tail -1)
track_loop "$LOOP"
assert_contains "$out" "warning: 'dl': no stable name for $LOOP" "dst attach with a world-writable link dir"
[ ! -L "$LINK" ] || fail "a link was made in a world-writable directory"
dst_ok detach dl >/dev/null
chmod 0755 "$DST_DEV_DIR"

step "dst attach --boot: attached now, and at every start"
out=$(dst attach dl --boot) || fail "dst attach --boot"
LOOP=$(printf '%s\n' "$out" | tail -1)
track_loop "$LOOP"
assert_contains "$out" "$LINK -> $LOOP" "what dst attach --boot printed"
assert_eq "$(grep -c '^attach = yes$' "$DST_STATE_DIR/dl.conf")" 1 "attach = yes in dl.conf"
st_stop dl
[ ! -L "$LINK" ] || fail "$LINK left after dst stop"
out=$(dst start dl) || fail "dst start dl (attach = yes)"
track_export dl
LOOP=$(printf '%s\n' "$out" | tail -1)
case $LOOP in /dev/loop*) track_loop "$LOOP" ;; *) fail "dst start with attach = yes printed no loop device: $out" ;; esac
assert_eq "$(readlink -f "$LINK")" "$LOOP" "the link after a start with attach = yes"
head -c 4096 "$LINK" | cmp - <(head -c 4096 /dev/zero | tr '\0' '\074') ||
	fail "data through the link after the restart"

step "dst attach --auto (the unit's ExecStartPost) attaches when attach = yes"
dst_ok detach dl >/dev/null
grep -q '^attach = yes$' "$DST_STATE_DIR/dl.conf" || fail "a plain dst detach forgot attach = yes"
out=$(dst attach dl --auto) || fail "dst attach --auto with attach = yes"
LOOP=$(printf '%s\n' "$out" | tail -1)
case $LOOP in /dev/loop*) track_loop "$LOOP" ;; *) fail "dst attach --auto printed no loop device: $out" ;; esac
assert_eq "$(readlink -f "$LINK")" "$LOOP" "the link after dst attach --auto"

step "dst detach --no-boot forgets attach = yes; --auto then does nothing"
dst_ok detach dl --no-boot >/dev/null
[ ! -L "$LINK" ] || fail "$LINK left after dst detach --no-boot"
grep -q '^attach' "$DST_STATE_DIR/dl.conf" && fail "attach still in dl.conf after --no-boot"
out=$(dst attach dl --auto) || fail "dst attach --auto without attach = yes"
assert_eq "$out" "" "dst attach --auto without attach = yes"
[ ! -L "$LINK" ] || fail "dst attach --auto attached without attach = yes"
st_stop dl
stop_export d0
echo "PASS"
