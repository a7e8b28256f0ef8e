#!/usr/bin/env bash
# The limit options of dst export and dst start (--max-clients,
# --client-budget, --handshake-timeout, --idle-timeout, --ctl-group): bad
# values are refused in one line and change nothing; good ones are saved in
# the config, shown by dst show, and kept by a later plain dst start, for an
# export and a storage alike; a hand-edited bad value stops the daemon from
# starting with a reason. As root, --ctl-group lets that group's members use
# the control socket and nobody else.
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"

snapshot() { (cd "$DST_STATE_DIR" && ls -A | sort); }

# bad WHAT EXPECTED_TEXT ARGS...: dst ARGS fails with one line naming the
# problem and leaves the state dir as it was.
bad() {
	local what=$1 want=$2 before rc=0
	shift 2
	before=$(snapshot)
	"$DST" "$@" >"$T_TMP/out" 2>"$T_TMP/err" || rc=$?
	check_stderr "$T_TMP/err" "dst $*"
	[ $rc -ne 0 ] || fail "$what: 'dst $*' succeeded"
	note "$what -> $(head -c 200 "$T_TMP/err")"
	[ "$(wc -l <"$T_TMP/err")" -eq 1 ] || { cat "$T_TMP/err" >&2; fail "$what: not one line on stderr"; }
	grep -qF -- "$want" "$T_TMP/err" || fail "$what: stderr does not mention '$want'"
	[ "$before" = "$(snapshot)" ] || fail "$what: the state dir changed"
}

L=127.0.0.1:$(free_port)
step "bad values are refused"
bad "max-clients 0" "--max-clients '0'" export mem:1M --listen "$L" --max-clients 0
bad "max-clients word" "--max-clients 'many'" export mem:1M --listen "$L" --max-clients many
bad "client-budget 1K" "--client-budget '1K'" export mem:1M --listen "$L" --client-budget 1K
bad "handshake-timeout 0" "--handshake-timeout '0'" export mem:1M --listen "$L" --handshake-timeout 0
bad "handshake-timeout 2h" "--handshake-timeout '7200'" export mem:1M --listen "$L" --handshake-timeout 7200
bad "idle-timeout -1" "--idle-timeout '-1'" export mem:1M --listen "$L" --idle-timeout -1
bad "no such group" "--ctl-group no-such-group-here: no such group" export mem:1M --listen "$L" \
	--ctl-group no-such-group-here
bad "missing value" "missing value for option '--max-clients'" export mem:1M --listen "$L" --max-clients

step "an export's limits are saved, shown, and kept by dst start"
start_export lim mem:64M --max-clients 7 --client-budget 2M --handshake-timeout 9 --idle-timeout 11
conf=$(cat "$DST_STATE_DIR/lim.conf")
for kv in "max-clients = 7" "client-budget = 2M" "handshake-timeout = 9" "idle-timeout = 11"; do
	assert_contains "$conf" "$kv" "lim.conf"
done
check() {
	assert_eq "$(show_attr lim limits/max_clients)" "$1" "limits/max_clients"
	assert_eq "$(show_attr lim mem/client_budget)" "$2" "mem/client_budget"
	assert_eq "$(show_attr lim limits/handshake_timeout)" "$3" "limits/handshake_timeout"
	assert_eq "$(show_attr lim limits/idle_timeout)" "$4" "limits/idle_timeout"
}
check 7 $((2 * MiB)) 9 11
stop_export lim
dst_ok start lim >/dev/null
check 7 $((2 * MiB)) 9 11
stop_export lim
dst_ok start lim --max-clients 9 --idle-timeout 0 >/dev/null
check 9 $((2 * MiB)) 9 0
assert_contains "$(cat "$DST_STATE_DIR/lim.conf")" "max-clients = 9" "lim.conf after dst start --max-clients 9"
stop_export lim
before=$(cat "$DST_STATE_DIR/lim.conf")
bad "dst start with a bad limit" "--handshake-timeout 'x'" start lim --handshake-timeout x
assert_eq "$(cat "$DST_STATE_DIR/lim.conf")" "$before" "lim.conf after a refused dst start"

step "defaults: 64 clients, a quarter of the buffers, 30 s, no idle timeout"
start_export def mem:64M --buffers 64M
assert_eq "$(show_attr def limits/max_clients)" 64 "default limits/max_clients"
assert_eq "$(show_attr def mem/client_budget)" $((16 * MiB)) "default mem/client_budget"
assert_eq "$(show_attr def limits/handshake_timeout)" 30 "default limits/handshake_timeout"
assert_eq "$(show_attr def limits/idle_timeout)" 0 "default limits/idle_timeout"
stop_export def

step "a storage takes the same options, saved by dst start"
st_create s linear
st_add s --disk mem:64M
st_start s --max-clients 5 --handshake-timeout 4 --idle-timeout 6
assert_eq "$(show_attr s limits/max_clients)" 5 "storage limits/max_clients"
assert_eq "$(show_attr s limits/handshake_timeout)" 4 "storage limits/handshake_timeout"
assert_eq "$(show_attr s limits/idle_timeout)" 6 "storage limits/idle_timeout"
st_stop s
st_start s
assert_eq "$(show_attr s limits/max_clients)" 5 "storage limits/max_clients after a plain dst start"
st_stop s

step "a hand-edited bad limit: the daemon does not start and says why"
sed -i 's/^max-clients = 5$/max-clients = 0/' "$DST_STATE_DIR/s.conf"
run_fails "dst start with max-clients = 0 in the config" "$DST" start s
note "$RUN_OUT"
assert_contains "$RUN_OUT" "max-clients '0'" "dst start's reason"
[ -z "$(export_pid s)" ] || ! pid_alive "$(export_pid s)" || fail "storage s runs with a bad config"

step "--ctl-group: members may use the control socket, others may not"
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
	note "skipped: needs root, setpriv and user nobody"
else
	grp=$(getent group | awk -F: '$3 > 0 && $3 < 1000 { print $1; exit }')
	gid=$(getent group "$grp" | cut -d: -f3)
	note "group $grp ($gid)"
	chmod 711 "$T_TMP" "$DST_STATE_DIR"
	start_export cg mem:16M --ctl-group "$grp"
	assert_eq "$(stat -c '%a %G' "$DST_STATE_DIR/cg.ctl")" "660 $grp" "cg.ctl mode and group"
	as_nobody() { setpriv --reuid=nobody "$@" env DST_STATE_DIR="$DST_STATE_DIR" "$DST" show cg 2>&1; }
	out=$(as_nobody --regid=nogroup --groups="$gid")
	assert_contains "$out" "cg/state : running" "dst show as nobody with $grp among its groups"
	out=$(as_nobody --regid="$gid" --clear-groups)
	assert_contains "$out" "cg/state : running" "dst show as nobody with primary group $grp"
	out=$(as_nobody --regid=nogroup --clear-groups)
	assert_not_contains "$out" "cg/state : running" "dst show as nobody outside $grp"
	stop_export cg
fi
echo "PASS"
