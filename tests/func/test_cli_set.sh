#!/usr/bin/env bash
# The tool's own surface: `dst --version` and `dstd --version` name the
# VERSION file's release; `dst help CMD` is CMD's --help; `dst set` changes
# a storage's settings after dst create: saved in its config, the timeouts
# and the resync rate taken live by a running storage (a resync held back by
# a 4K/s rate finishes once the limit goes; a read of a dead node fails after
# the new io-timeout), the others said to wait for the next start; and bad
# settings refused in one line, the config unchanged.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

step "--version and help"
want=$(cat "$TESTS_DIR/../VERSION")
v=$(dst --version) || fail "dst --version failed"
case $v in "dst $want"*) ;; *) fail "dst --version says '$v', expected 'dst $want...'" ;; esac
v=$("$DSTD" --version) || fail "dstd --version failed"
case $v in "dstd $want"*) ;; *) fail "dstd --version says '$v', expected 'dstd $want...'" ;; esac
note "$v"
for c in create add set start status; do
	[ "$c" = status ] && ! "$DST" help status >/dev/null 2>&1 && continue
	a=$(dst help "$c") || fail "dst help $c failed"
	b=$(dst "$c" --help) || fail "dst $c --help failed"
	[ "$a" = "$b" ] || fail "dst help $c differs from dst $c --help"
	case $a in "usage: dst $c"*) ;; *) fail "dst help $c: not $c's usage: $(echo "$a" | head -1)" ;; esac
done
rc=0
err=$("$DST" help frobnicate 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "dst help frobnicate succeeded"
assert_contains "$err" "unknown command 'frobnicate'" "dst help of an unknown command"
out=$(dst help) || fail "dst help failed"
assert_contains "$out" "set NAME" "dst help lists dst set"

step "a two-leg mirror; dst set while it runs"
mr_legs M 8M 8M
mr_mirror M
conf=$DST_STATE_DIR/M.conf
out=$(dst set M --io-timeout 7 --request-timeout 9 --resync-rate 8M) || fail "dst set failed"
assert_contains "$out" "M: io-timeout = 7 (applied now)" "dst set's report"
[ "$(show_attr M io_timeout)" = 7 ] || fail "io_timeout is $(show_attr M io_timeout), expected 7"
[ "$(show_attr M request_timeout)" = 9 ] || fail "request_timeout is not 9"
[ "$(show_attr M resync/rate)" = 8388608 ] || fail "resync/rate is $(show_attr M resync/rate)"
grep -qx "io-timeout = 7" "$conf" || fail "io-timeout not saved in $conf"
grep -qx "resync-rate = 8388608" "$conf" || fail "resync-rate not saved in $conf"

step "a resync held at 4K/s finishes at once when dst set lifts the limit"
dst_ok set M --resync-rate 4K >/dev/null
kill -9 "$(leg_pid 1)"
qio "$M_URI" "write -P 0x5a 0 4M" || fail "write while leg 1 is down"
leg_restart 1
mr_wait M "${LEG_NODE[1]}/leg" S 15 "leg 1 resyncing"
sleep 1
pct=$(show_attr M resync/percent)
[ "${pct:-100}" -lt 100 ] || fail "the resync at 4K/s is already done ($pct%)"
note "at 4K/s: $pct% after 1 s"
# The README's example, to the letter.
out=$(dst set M --io-timeout 30 --resync-rate 0) || fail "dst set --resync-rate 0"
[ "$out" = "M: io-timeout = 30 (applied now)
M: resync-rate = 0 (applied now)" ] || fail "dst set's report is not the README's: $out"
grep -q "^resync-rate" "$conf" && fail "resync-rate 0 left a resync-rate line in $conf"
mr_settle M
mr_legs_identical "after the resync"

step "io-timeout set live: a read of a dead node fails after it"
dst_ok set M --io-timeout 1 >/dev/null
st_export lin 4M
st_create L linear --io-timeout 0
st_add L --remote "$URI"
st_start L
LPID=$(export_pid lin)
dst_ok set L --io-timeout 2 >/dev/null
kill -9 "$LPID"
t0=$(date +%s)
rc=0
timeout 60 qemu-io -r -f raw "$ST_URI" -c "read 0 4k" >"$T_TMP/qio.out" 2>&1 || rc=$?
t=$(($(date +%s) - t0))
[ $rc -ne 124 ] || fail "the read of a dead node still waits after 60 s (io-timeout 0 kept)"
grep -qi "error\|failed" "$T_TMP/qio.out" || { cat "$T_TMP/qio.out" >&2; fail "the read of a dead node did not fail"; }
[ "$t" -le 15 ] || fail "the read failed after $t s, with io-timeout 2"
note "read of the dead node failed after ${t}s"
dst_ok stop L >/dev/null

step "settings of a stopped storage, and credentials that wait for a start"
out=$(dst set L --request-timeout 5) || fail "dst set of a stopped storage"
assert_contains "$out" "saved; the storage is not running" "dst set of a stopped storage"
grep -qx "request-timeout = 5" "$DST_STATE_DIR/L.conf" || fail "request-timeout not saved"
# A storage without a kernel NBD device takes it live all the same (it is
# the device's setting, used when one is attached: tests/vm).
out=$(dst set M --nbd-reconnect-timeout 45) || fail "dst set --nbd-reconnect-timeout"
assert_contains "$out" "M: nbd-reconnect-timeout = 45 (applied now)" "dst set's report"
grep -qx "nbd-reconnect-timeout = 45" "$conf" || fail "nbd-reconnect-timeout not saved"
need psktool
psktool -u alice -p "$T_TMP/keys.psk" >/dev/null 2>&1 || fail "psktool"
out=$(dst set M --tls-psk "$T_TMP/keys.psk" --tls-username alice) || fail "dst set --tls-psk"
[ "$out" = "M: node TLS credentials saved; they take effect at the next start (dst stop, dst start)" ] ||
	fail "dst set --tls-psk's report is not the README's: $out"
grep -qx "node-tls-psk = $T_TMP/keys.psk" "$conf" || fail "node-tls-psk not saved"

step "bad settings: one line each, the config unchanged"
before=$(cat "$conf")
bad() { # WHAT EXPECTED ARGS...
	local what=$1 want=$2 rc=0 err
	shift 2
	err=$("$DST" set "$@" 2>&1 >/dev/null) || rc=$?
	check_stderr <(printf '%s' "$err") "dst set $*"
	[ $rc -ne 0 ] || fail "$what: dst set $* succeeded"
	assert_contains "$err" "$want" "$what"
	[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "$what: more than one line: $err"
}
bad "nothing to set" "nothing to change" M
bad "request-timeout 0" "--request-timeout 0" M --request-timeout 0
bad "a negative io-timeout" "--io-timeout -1" M --io-timeout -1
bad "a rate below 4K" "at least 4K" M --resync-rate 100
bad "nbd-reconnect-timeout 0" "--nbd-reconnect-timeout 0" M --nbd-reconnect-timeout 0
bad "resync-rate of a linear storage" "has no resync" L --resync-rate 10M
bad "an unknown storage" "nosuch" nosuch --io-timeout 3
bad "psk and certs" "not both" M --tls-psk "$T_TMP/keys.psk" --tls-certs "$T_TMP"
bad "an unknown option" "--frob" M --frob 1
[ "$(cat "$conf")" = "$before" ] || fail "a refused dst set changed $conf"
st_export X 4M
bad "an export" "not a storage" X --io-timeout 3
