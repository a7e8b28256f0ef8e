#!/usr/bin/env bash
# `dst show`'s sync line (NAME/sync : X/N regions, the regions every leg
# has, as dm-raid1's sync ratio) while a replaced leg is copied whole (two
# 16M file-backed legs, --resync-rate 4M so the copy takes about 4 s): the
# new leg has none of the data yet, so X must be below N and grow with the
# copy, while health says AS and resync/progress counts the regions; after
# the copy, N/N.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

step "mirror mw over two 16M exports, --resync-rate 4M; data over 15M"
mr_legs mw 16M 16M
mr_mirror mw --resync-rate 4M
qio "$M_URI" "write -P 0x44 0 15M" "flush"
mr_settle mw
assert_eq "$(show_attr mw sync)" "16/16 regions" "sync with both legs in sync"

step "replace leg 1 by an empty file; watch the full copy"
leg_kill9 1
mr_wait mw health AD 5 "health after leg 1 died"
assert_eq "$(show_attr mw sync)" "16/16 regions" "sync with a dead leg and no write since (nothing dirty)"
leg_blank 1
mr_log_mark mw
leg_restart 1
mr_leg_refused mw 1 10
mr_leg_take mw 1
mr_wait_log mw "mirror: resync of 16 regions starts" 10 "the full resync starts"
sleep 1
mapfile -t v <<<"$(show_attrs mw health resync/progress sync)"
health=${v[0]} prog=${v[1]} sync=${v[2]}
note "during the copy: health $health, resync/progress $prog, sync $sync"
assert_eq "$health" AS "health during the copy"
[[ $prog =~ ^([0-9]+)/16\ regions$ ]] || fail "resync/progress '$prog'"
done_regions=${BASH_REMATCH[1]}
assert_le "$done_regions" 15 "regions copied so far"
[[ $sync =~ ^([0-9]+)/16\ regions$ ]] || fail "sync '$sync'"
assert_le "${BASH_REMATCH[1]}" 15 "regions in sync while an empty leg is being copied whole (sync says '$sync', resync/progress '$prog')"

step "after the copy: 16/16"
mr_wait mw health AA 15 "health after the copy"
assert_eq "$(show_attr mw sync)" "16/16 regions" "sync after the copy"
mr_legs_identical "after the copy"

step "stop"
st_stop mw
stop_export mw-leg0
stop_export mw-leg1
echo "PASS"
