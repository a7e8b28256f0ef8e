#!/usr/bin/env bash
# `dst status`: one line per storage and export and an exit status, through
# a storage's life, with real daemons:
#  - all up: exit 0, [UUU], 3/3 up, sizes as nbdinfo sees them;
#  - a mirror leg's export killed with SIGKILL: exit 1, [UU_], 2/3 up; its
#    export restarted after writes it missed: the leg resynced (R, a resync
#    percentage, exit 1 meanwhile), then exit 0 again;
#  - a linear node's export killed: exit 1, [U_]; restarted: exit 0;
#  - a linear node suspended (S) and one being migrated (M, migrate N%):
#    exit 1; resumed, aborted: exit 0;
#  - every leg of the mirror killed: exit 2 (FAILED, no leg in sync);
#  - the storage stopped: exit 2 (stopped), and `dst status` of everything
#    is the worst of all; a daemon that holds its pid file and does not
#    answer: exit 2; an unknown name: exit 4.
# --json of status (and its exit status) is checked alongside, with
# python3's json module.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

# status ARGS...: dst status; its output in STATUS_OUT, its exit in STATUS_RC.
status() {
	STATUS_RC=0
	STATUS_OUT=$("$DST" status "$@" 2>"$T_TMP/status.err") || STATUS_RC=$?
	check_stderr "$T_TMP/status.err" "dst status $*"
}

# status_is RC WHAT ARGS...: dst status ARGS exits RC; its --json agrees.
status_is() {
	local want=$1 what=$2 jrc=0
	shift 2
	status "$@"
	[ "$STATUS_RC" = "$want" ] || {
		printf '%s\n' "$STATUS_OUT" >&2
		cat "$T_TMP/status.err" >&2
		fail "$what: dst status $* exited $STATUS_RC, expected $want"
	}
	"$DST" status --json "$@" >"$T_TMP/status.json" 2>"$T_TMP/status.err" || jrc=$?
	check_stderr "$T_TMP/status.err" "dst status --json $*"
	[ "$jrc" = "$want" ] || fail "$what: dst status --json $* exited $jrc, expected $want"
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T_TMP/status.json" ||
		fail "$what: dst status --json is not JSON"
}

# status_wait RC SECONDS WHAT NAME: poll until dst status NAME exits RC.
status_wait() {
	local want=$1 secs=$2 what=$3 t0
	t0=$(date +%s%3N)
	for _ in $(seq $((secs * 10))); do
		status "$4"
		if [ "$STATUS_RC" = "$want" ]; then
			note "$what: exit $want after $(($(date +%s%3N) - t0)) ms: $STATUS_OUT"
			return 0
		fi
		sleep 0.1
	done
	printf '%s\n' "$STATUS_OUT" >&2
	fail "$what: dst status $4 still exits $STATUS_RC after $secs s, expected $want"
}

# jstatus NAME PYEXPR: PYEXPR over the last --json output (s: NAME's object).
jstatus() {
	python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))[sys.argv[2]]; print(eval(sys.argv[3]))' \
		"$T_TMP/status.json" "$1" "$2" || fail "reading $1 from dst status --json"
}

step "a mirror over three 16M legs (resync rate-limited), a linear storage over two 8M nodes"
mr_legs m 16M 16M 16M
mr_mirror m --resync-rate 4M
st_export lin0 8M
LIN0=$URI
st_export lin1 8M
LIN1_PORT=$PORT LIN1_IMG=$IMG
st_create lin linear
st_add lin --remote "$LIN0"
st_add lin --remote "nbd://127.0.0.1:$LIN1_PORT"
st_start lin --listen "127.0.0.1:$(free_port)"
LIN_URI=$ST_URI

step "all healthy: exit 0, a line each, letters U, sizes as nbdinfo sees them"
status_is 0 "all up"
for n in m m-leg0 m-leg1 m-leg2 lin lin0 lin1; do
	grep -qE "^$n +(storage|export) " <<<"$STATUS_OUT" ||
		{ printf '%s\n' "$STATUS_OUT" >&2; fail "dst status: no line for $n"; }
done
mline=$(printf '%s\n' "$STATUS_OUT" | grep '^m ')
assert_contains "$mline" "mirror  running  [UUU]  3/3 up  sync 100%  clients 0  size 16.0M" "mirror line"
assert_contains "$(printf '%s\n' "$STATUS_OUT" | grep '^lin ')" "[UU]  2/2 up" "linear line"
assert_contains "$(printf '%s\n' "$STATUS_OUT" | grep '^m-leg0 ')" "running  clients 1  size 16.0M  $T_TMP/m-leg0.img" "export line"
assert_eq "$(jstatus m 's["bytes"]')" "$(dev_size "$M_URI")" "status JSON bytes of m vs nbdinfo"
assert_eq "$(jstatus lin 's["bytes"]')" "$(dev_size "$LIN_URI")" "status JSON bytes of lin vs nbdinfo"
assert_eq "$(jstatus m '[s["health"], s["exit"], s["letters"], s["nodes_up"], s["nodes_total"], s["alg"], s["sync_percent"], s["resync"]]')" \
	"['healthy', 0, 'UUU', 3, 3, 'alg_mirror', 100, None]" "status JSON of m"
assert_eq "$(jstatus m '[(n["name"], n["letter"], n["state"]) for n in s["nodes"]]')" \
	"[('${LEG_NODE[0]}', 'U', 'up'), ('${LEG_NODE[1]}', 'U', 'up'), ('${LEG_NODE[2]}', 'U', 'up')]" "status JSON nodes of m"
assert_eq "$(jstatus m-leg0 '[s["type"], s["alg"], s["health"], s["clients"], type(s["bytes"]).__name__, s["disk"]]')" \
	"['export', None, 'healthy', 1, 'int', '$T_TMP/m-leg0.img']" "status JSON of an export"
M_BYTES=$(jstatus m 's["bytes"]')

step "dst show --json: typed values, nodes as an array"
dst_ok show m --json >"$T_TMP/show.json"
python3 - "$T_TMP/show.json" "$M_BYTES" "${LEG_URI[*]}" <<'EOF' || fail "dst show --json of m"
import json, sys
m = json.load(open(sys.argv[1]))["m"]
size, uris = int(sys.argv[2]), sys.argv[3].split()
def want(what, got, exp):
    if got != exp:
        sys.exit("%s: %r, expected %r" % (what, got, exp))
want("bytes", m["bytes"], size)
want("size (sectors)", m["size"], size // 512)
want("state", m["state"], "running")
want("health", m["health"], "AAA")
want("sync", m["sync"], {"in_sync": m["sync"]["regions"], "regions": 16})
want("region_size", m["region_size"], 1048576)
want("node uris", [n["uri"] for n in m["nodes"]], uris)
for n in m["nodes"]:
    want(n["name"] + " state", n["state"], "up")
    want(n["name"] + " leg", n["leg"], "A")
    for k in ("size", "start", "reconnects"):
        want(n["name"] + " " + k + " type", type(n[k]), int)
    want(n["name"] + " io/writes type", type(n["io"]["writes"]), int)
want("uri is a list", type(m["uri"]), list)
want("clients", m["clients"], 0)
want("layout", m["layout"].startswith("sectors (start [size]): 0 ["), True)
EOF

step "dst stat --json --watch: JSON lines, nodes as an array, rates as numbers"
qemu-io -f raw -c "write -P 7 0 1M" "$M_URI" >/dev/null || fail "qemu-io write to m"
dst_ok stat m --json --watch --interval 0.2 --count 2 >"$T_TMP/stat.json"
python3 - "$T_TMP/stat.json" "${LEG_NODE[*]}" <<'EOF' || fail "dst stat --json of m"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
if len(lines) != 2:
    sys.exit("%d lines, expected 2" % len(lines))
for ln in lines:
    s = json.loads(ln)
    if s["name"] != "m" or not 0.15 < s["interval_s"] < 2:
        sys.exit("name/interval: %r" % s)
    if [n["name"] for n in s["nodes"]] != sys.argv[2].split():
        sys.exit("nodes: %r" % s["nodes"])
    for r in [s["io"]] + [n["io"] for n in s["nodes"]]:
        for k in ("reads_s", "writes_s", "read_mib_s", "write_mib_s", "read_lat_us", "write_lat_us"):
            if not isinstance(r[k], (int, float)) or r[k] < 0:
                sys.exit("%s: %r" % (k, r))
        if not isinstance(r["inflight"], int):
            sys.exit("inflight: %r" % r)
    if s["mirror"]["health"] != "AAA" or s["mirror"]["resync"] is not None:
        sys.exit("mirror: %r" % s["mirror"])
EOF

step "kill -9 mirror leg 2: degraded, exit 1, [UU_]"
leg_kill9 2
status_wait 1 10 "leg 2 killed" m
assert_contains "$STATUS_OUT" "[UU_]  2/3 up" "status of m with leg 2 down"
status_is 1 "leg 2 down" m
assert_eq "$(jstatus m '[s["health"], s["letters"], s["nodes_up"], s["nodes"][2]["letter"]]')" \
	"['degraded', 'UU_', 2, '_']" "status JSON of m with leg 2 down"
# Everything: the killed leg's export is itself stopped (2), the worst.
status_is 2 "everything, with one leg's export killed"
assert_contains "$(printf '%s\n' "$STATUS_OUT" | grep '^m-leg2 ')" "export           stopped" "the killed export's line"

step "writes leg 2 misses, then its export back: resynced (R), exit 1, then 0"
qemu-io -f raw -c "write -P 9 0 8M" "$M_URI" >/dev/null || fail "qemu-io write to m"
status m
assert_contains "$STATUS_OUT" "sync 50%" "share in sync after 8 of 16 regions written with a leg down"
leg_restart 2
saw=
for _ in $(seq 200); do
	status m
	case $STATUS_OUT in *"[UUR]"*"resync "*%*) [ "$STATUS_RC" = 1 ] && [ -z "$saw" ] && saw=$STATUS_OUT ;; esac
	[ "$STATUS_RC" = 0 ] && break
	sleep 0.05
done
[ -n "$saw" ] || fail "no status line showed leg 2 being resynced (R, resync N%) with exit 1"
note "during the resync: $saw"
status_wait 0 20 "resync done" m
assert_contains "$STATUS_OUT" "[UUU]  3/3 up  sync 100%" "status of m after the resync"

step "kill -9 a linear node's export: exit 1, [U_]; back: exit 0"
lpid=$(export_pid lin1) || fail "no pid for lin1"
kill -KILL "$lpid"
wait_gone "$lpid" 10 || fail "lin1 survived kill -9"
rm -f "$DST_STATE_DIR/lin1.pid"
status_wait 1 10 "linear node down" lin
assert_contains "$STATUS_OUT" "[U_]  1/2 up" "status of lin with a node down"
for _ in $(seq 20); do
	"$DST" export "$LIN1_IMG" --name lin1 --listen "127.0.0.1:$LIN1_PORT" >/dev/null 2>"$T_TMP/dst.err" && break
	grep -q "Address already in use" "$T_TMP/dst.err" || { cat "$T_TMP/dst.err" >&2; fail "restart lin1"; }
	sleep 0.25
done
status_wait 0 20 "linear node back" lin
status_is 0 "linear storage whole again" lin

step "a linear node suspended: S, exit 1; resumed: exit 0"
dst_ok suspend lin n-0 >/dev/null
status_is 1 "lin with n-0 suspended" lin
assert_contains "$STATUS_OUT" "[SU]  1/2 up" "status of lin with n-0 suspended"
assert_eq "$(jstatus lin '[s["health"], s["letters"], s["nodes"][0]["letter"]]')" "['degraded', 'SU', 'S']" "status JSON with n-0 suspended"
dst_ok resume lin n-0 >/dev/null
status_is 0 "lin resumed" lin

step "a linear node being migrated (dst replace, rate-limited): M, migrate N%, exit 1; aborted: exit 0"
st_export lin2 8M
dst_ok replace lin n-16384 --remote "$URI" --rate 1M >/dev/null
status_is 1 "lin during a migration" lin
assert_contains "$STATUS_OUT" "[UM]  2/2 up  clients 0  migrate n-16384 " "status of lin during a migration"
assert_eq "$(jstatus lin '[s["health"], s["letters"], s["migration"]["node"], type(s["migration"]["percent"]).__name__]')" \
	"['degraded', 'UM', 'n-16384', 'int']" "status JSON during a migration"
dst_ok replace lin n-16384 --abort >/dev/null
status_wait 0 10 "migration aborted" lin

step "every leg of the mirror killed: failed, exit 2"
for i in 0 1 2; do leg_kill9 "$i"; done
status_wait 2 15 "all legs down" m
assert_contains "$STATUS_OUT" "FAILED" "status of m with every leg down"
status_is 2 "all legs down" m
assert_not_contains "$STATUS_OUT" "sync " "status of m with no leg up (no sync % to give)"
assert_eq "$(jstatus m '[s["health"], s["nodes_up"], s["sync_percent"]]')" "['failed', 0, None]" "status JSON of a failed mirror"
for i in 0 1 2; do leg_restart "$i"; done
status_wait 0 20 "legs back" m

step "the mirror stopped: exit 2, its config; its size as when it ran"
st_stop m
status_is 2 "stopped mirror" m
assert_contains "$STATUS_OUT" "mirror  stopped  3 nodes  size 16.0M" "stopped mirror line"
assert_eq "$(jstatus m '[s["health"], s["state"], s["bytes"], s["letters"]]')" "['stopped', 'stopped', $M_BYTES, None]" "status JSON of the stopped mirror"
assert_eq "$(show_attr m bytes)" "$M_BYTES" "dst show bytes of the stopped mirror (the smallest leg less its header, not the sum)"
assert_eq "$(show_attr m size)" $((M_BYTES / 512)) "dst show size of the stopped mirror"
status_is 2 "everything, with m stopped"
status_is 0 "the others, named" lin lin0 m-leg0

step "a daemon that holds its pid file but does not answer: failed, exit 2"
st_create ghost linear
bg flock "$DST_STATE_DIR/ghost.pid" sleep 60
GHOST=$BG_PID
# flock runs sleep once it holds the lock.
for _ in $(seq 50); do
	[ -n "$(descendants "$GHOST")" ] && break
	sleep 0.1
done
[ -n "$(descendants "$GHOST")" ] || fail "flock did not take ghost.pid"
status_is 2 "a daemon that does not answer" ghost
assert_contains "$STATUS_OUT" "FAILED: its daemon does not answer" "status of ghost"
assert_eq "$(jstatus ghost '[s["type"], s["state"], s["health"]]')" "['storage', 'running', 'failed']" "status JSON of ghost"
kill_pid "$GHOST"

step "a daemon frozen by SIGSTOP: failed within the 10 s read timeout, not after 60"
st_export frozen 4M
FPID=$PID
kill -STOP "$FPID"
t0=$(date +%s)
status frozen
t=$(($(date +%s) - t0))
kill -CONT "$FPID"
[ "$STATUS_RC" = 2 ] || fail "dst status of a frozen daemon exited $STATUS_RC, expected 2"
assert_contains "$STATUS_OUT" "FAILED: its daemon does not answer" "status of the frozen export"
[ "$t" -le 20 ] || fail "dst status took $t s on a frozen daemon (10 s read timeout)"
note "a frozen daemon reported failed after $t s"
status_is 0 "the thawed export" frozen

step "bad input: unknown name and bad option exit 4"
status nosuch
assert_eq "$STATUS_RC" 4 "dst status nosuch"
assert_contains "$(cat "$T_TMP/status.err")" "nosuch" "error names it"
status --bogus
assert_eq "$STATUS_RC" 4 "dst status --bogus"
help=$("$DST" status --help) || fail "dst status --help"
assert_contains "$help" "1  degraded" "--help explains the exit status"

st_stop lin
echo "PASS"
