#!/usr/bin/env bash
# dst add refuses exactly the layouts dst start refuses, in the same words:
# one check (array_layout_check) serves both. For each bad layout - a gap
# between linear nodes, a start that would wrap around 2^64 bytes, a mirror
# leg too small for its header, stripe nodes of unequal size or smaller
# than a chunk - dst add fails with one line and changes nothing; the same
# node line written into the config by hand makes dst start fail with the
# same reason, and no daemon is left running. mem: nodes keep it quick.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"

# add_and_start WHAT NEEDLE NAME NODE-LINE -- ADD-ARGS...: dst add NAME
# ADD-ARGS must fail naming NEEDLE; then the storage with NODE-LINE added
# to its config must fail to start with the same reason.
add_and_start() {
	local what=$1 needle=$2 name=$3 line=$4 reason rc=0 out
	shift 5
	bad_input "dst add: $what" "$needle" -- add "$name" "$@"
	# "cannot add SPEC to 'NAME': REASON"
	reason=${BAD_ERR#*"to '$name': "}
	[ "$reason" != "$BAD_ERR" ] || fail "$what: no reason in '$BAD_ERR'"
	cp "$DST_STATE_DIR/$name.conf" "$T_TMP/$name.conf.good"
	echo "node = $line" >>"$DST_STATE_DIR/$name.conf"
	out=$(timeout 30 "$DST" start "$name" 2>&1) || rc=$?
	note "dst start $name -> status $rc: $out"
	[ $rc -ne 0 ] || {
		track_export "$name"
		fail "$what: dst start of the hand-made config succeeded"
	}
	[ $rc -ne 124 ] || fail "$what: dst start hung"
	assert_contains "$out" "$reason" "$what: dst start's reason (the same as dst add's)"
	[ ! -e "$DST_STATE_DIR/$name.pid" ] || fail "$what: a pid file was left by the failed start"
	cp "$T_TMP/$name.conf.good" "$DST_STATE_DIR/$name.conf"
}

step "alg_linear: a gap, starts past 2^64 bytes"
st_create lin linear
st_add lin --disk mem:8M
add_and_start "a gap between nodes" "gap between sector 16384 and 100000" \
	lin "disk start=100000 size=16384 mem:8192K" -- --disk mem:8192K --start 100000
add_and_start "a start that wraps around 2^64 bytes" "2^64" \
	lin "disk start=18446744073709551000 size=16384 mem:8192K" \
	-- --disk mem:8192K --start 18446744073709551000
add_and_start "an end past 2^64 bytes" "2^64" \
	lin "disk start=36028797018963960 size=16384 mem:8192K" \
	-- --disk mem:8192K --start 36028797018963960
add_and_start "an overlap" "overlaps node n-0" \
	lin "disk start=100 size=16384 mem:8192K" -- --disk mem:8192K --start 100

step "alg_mirror: a 1 KiB leg, as the first leg and as the second"
st_create mir mirror
bad_input "dst add: a 1 KiB first leg" "leg n-0 is too small" -- add mir --disk mem:1K
st_add mir --disk mem:8M
add_and_start "a 1 KiB second leg" "leg n-16384 is too small (2 sectors)" \
	mir "disk start=16384 size=2 mem:1K" -- --disk mem:1K

step "alg_stripe: unequal sizes, nodes smaller than a chunk"
st_create str stripe
st_add str --disk mem:8M
add_and_start "unequal sizes" "equal size" \
	str "disk start=16384 size=18432 mem:9M" -- --disk mem:9M
st_create big stripe --chunk 1M
add_and_start "nodes smaller than a chunk" "smaller than one chunk" \
	big "disk start=0 size=1024 mem:512K" -- --disk mem:512K

step "the good layouts still add and start"
st_add lin --disk mem:8192K
st_add mir --disk mem:8192K
st_start lin
st_stop lin
