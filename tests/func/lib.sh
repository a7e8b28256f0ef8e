# shellcheck shell=bash
# lib.sh - shared helpers for the functional tests; source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# It gives each test a private temp dir and state dir, finds the binaries
# ($DST_BUILD, default build/), starts exports on free ports of 127.0.0.1,
# and on exit stops every process the test started (by PID: TERM, then KILL),
# checks every daemon log for sanitizer reports, and removes the temp dir.
#
# Conventions: `step "what"` before each stage; `fail "why"` ends the test
# with status 1; `skip "why"` ends it with status 77.

set -u
set -o pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$TESTS_DIR/.." && pwd)
DST_BIN=${DST_BUILD:-build}
case $DST_BIN in /*) ;; *) DST_BIN=$ROOT/$DST_BIN ;; esac
DST=$DST_BIN/dst
DSTD=$DST_BIN/dstd
# The raw NBD client (tests/tools/nbd_raw.py): nbd_raw [options] HOST PORT
# SCENARIO|OP... ($NBD_RAW is the same as a command string.)
nbd_raw() { python3 "$TESTS_DIR/tools/nbd_raw.py" "$@"; }
# shellcheck disable=SC2034 # used by the tests
NBD_RAW="python3 $TESTS_DIR/tools/nbd_raw.py"
TEST_NAME=$(basename "$0" .sh)

# Sanitizer reports of the daemon go to its stderr, which is its log file
# once it has daemonized; the CLI's go to the test's stderr.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SAN_PATTERN='ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ERROR: [A-Za-z]*Sanitizer|SUMMARY: [A-Za-z]*Sanitizer'

if [ ! -x "$DST" ] || [ ! -x "$DSTD" ]; then
	echo "SKIP: $DST or $DSTD not built (run make, or set DST_BUILD)"
	exit 77
fi

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dst-$TEST_NAME.XXXXXX")
export DST_STATE_DIR=$T_TMP/state
mkdir -p "$DST_STATE_DIR"
# Work in the temp dir: whatever a client leaves behind (fio state files...)
# goes away with it.
cd "$T_TMP" || exit 1
T_PIDS=()   # background processes started by the test (clients, loads)
T_EXPORTS=() # names of exports started by the test
T_SAN_CHECKED=() # logs already checked

step() { echo "== $*"; }
note() { echo "   $*"; }

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
	done
}

# python_with MODULE: print a python3 that can import MODULE; false if none
# can. Debian's python modules belong to the system's python3, which may not
# be the first python3 on PATH.
python_with() {
	local py
	for py in python3 /usr/bin/python3; do
		if "$py" -c "import $1" 2>/dev/null; then
			echo "$py"
			return 0
		fi
	done
	return 1
}

# need_nbdpy: set NBDPY to a python3 with libnbd's bindings, or skip. nbdpy
# CODE runs CODE there with `import nbd` and h.
need_nbdpy() {
	NBDPY=$(python_with nbd) || skip "no python3 with libnbd's bindings (python3-libnbd)"
}
nbdpy() {
	"$NBDPY" -c "import nbd; h = nbd.NBD()
$1"
}

# ---- processes ----

# True if pid exists and is not a zombie (zombies can linger here: the
# container's init reaps them late).
pid_alive() {
	local pid=$1 st
	kill -0 "$pid" 2>/dev/null || return 1
	st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_gone PID SECONDS: true once pid is gone.
wait_gone() {
	local pid=$1 t=$(($2 * 10))
	while [ $t -gt 0 ]; do
		pid_alive "$pid" || return 0
		sleep 0.1
		t=$((t - 1))
	done
	! pid_alive "$pid"
}

# descendants PID: the pids of PID's children, grandchildren... (fio forks
# one process per job, a shell function run with bg is a subshell).
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# kill_pid PID: TERM PID and its descendants, wait up to 10 s, then KILL
# what is left. Reaps PID if it is our child.
kill_pid() {
	local pid=$1 p all
	all="$(descendants "$pid") $pid"
	pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	for p in $all; do
		[ "$p" = "$pid" ] || kill -TERM "$p" 2>/dev/null
	done
	for p in $all; do
		if ! wait_gone "$p" 10; then
			echo "   pid $p did not exit on SIGTERM: SIGKILL" >&2
			kill -KILL "$p" 2>/dev/null
			wait_gone "$p" 5
		fi
	done
	wait "$pid" 2>/dev/null
	return 0
}

# bg CMD...: run CMD in the background, remember its pid in $BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	T_PIDS+=("$BG_PID")
}

# bg_wait PID: wait for a background process, return its status.
bg_wait() {
	local rc=0
	wait "$1" || rc=$?
	return $rc
}

# ---- sanitizer checks ----

# san_report FILE: the gist of the sanitizer reports in FILE (what, where,
# the top frames of each stack), without the shadow-memory dump.
san_report() {
	awk '
		/ERROR: [A-Za-z]*Sanitizer|runtime error:|SUMMARY:|LeakSanitizer/ { print; frames = 0; next }
		/(READ|WRITE) of size|is located|freed by thread|previously allocated by|allocated by thread|Direct leak|Indirect leak/ { print; frames = 0; next }
		/^ +#[0-9]+ / { if (frames++ < 6) print; next }
	' "$1" | head -80
}

# log_tail FILE [N]: the last N (default 20) lines of a log, without the
# shadow-memory dump of a sanitizer report.
log_tail() {
	grep -Ev '^ +0x[0-9a-f]+:|^=>0x|^  [A-Z][a-z].*:  |^Shadow byte' "$1" | tail -n "${2:-20}"
}

# check_log FILE: fail if FILE has a sanitizer report.
check_log() {
	local f=$1
	T_SAN_CHECKED+=("$f")
	[ -f "$f" ] || return 0
	if grep -Eq "$SAN_PATTERN" "$f"; then
		echo "---- sanitizer report in $f ----" >&2
		san_report "$f" >&2
		fail "sanitizer report in $(basename "$f")"
	fi
}

# check_stderr FILE WHAT: fail if a command's captured stderr has a report.
check_stderr() {
	if [ -f "$1" ] && grep -Eq "$SAN_PATTERN" "$1"; then
		cat "$1" >&2
		fail "sanitizer report from $2"
	fi
}

# ---- running dst ----

# dst ARGS...: run the CLI; stdout to stdout, stderr shown and checked for
# sanitizer reports. Returns dst's status.
dst() {
	local rc=0
	"$DST" "$@" 2>"$T_TMP/dst.err" || rc=$?
	cat "$T_TMP/dst.err" >&2
	check_stderr "$T_TMP/dst.err" "dst $*"
	return $rc
}

# dst_ok ARGS...: dst that must succeed.
dst_ok() {
	dst "$@" || fail "dst $* exited with status $?"
}

# free_port: a TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# export_pid NAME: the daemon's pid from its pid file.
export_pid() {
	local p
	p=$(cat "$DST_STATE_DIR/$1.pid" 2>/dev/null) || return 1
	[ -n "$p" ] && echo "$p"
}

# track_export NAME: remember an export started directly with dst export.
track_export() {
	T_EXPORTS+=("$1")
}

# start_export NAME DISK [dst export options...]
# Starts `dst export DISK --name NAME --listen 127.0.0.1:PORT OPTIONS` on a
# free port (retrying if someone took it meanwhile). Sets PORT, URI, PID.
start_export() {
	local name=$1 disk=$2 rc out
	shift 2
	for _ in 1 2 3 4 5; do
		PORT=$(free_port)
		rc=0
		out=$("$DST" export "$disk" --name "$name" --listen "127.0.0.1:$PORT" "$@" 2>"$T_TMP/dst.err") || rc=$?
		check_stderr "$T_TMP/dst.err" "dst export"
		if [ $rc -eq 0 ]; then
			break
		fi
		# Only a port taken meanwhile is worth another try (a disk in use
		# by another export is an error of the test).
		if grep -q "Address already in use" "$T_TMP/dst.err"; then
			note "port $PORT was taken; trying another"
			continue
		fi
		cat "$T_TMP/dst.err" >&2
		fail "dst export $disk --name $name $* failed (status $rc)"
	done
	[ "$rc" -eq 0 ] || fail "no free port after 5 tries"
	track_export "$name"
	PID=$(export_pid "$name") || fail "no pid file for $name after dst export"
	pid_alive "$PID" || fail "export $name: pid $PID is not running"
	URI=nbd://127.0.0.1:$PORT
	note "export $name: $disk on $URI (pid $PID)"
}

# stop_export NAME [--force]: dst stop, check the daemon is gone and its log
# clean. An export with clients connected (a storage on top of it) is only
# stopped with --force: say so where the test means it.
stop_export() {
	local name=$1 pid
	shift
	pid=$(export_pid "$name") || fail "stop_export $name: no pid file"
	dst_ok stop "$name" "$@" >/dev/null
	wait_gone "$pid" 10 || fail "export $name (pid $pid) still running after dst stop"
	[ ! -e "$DST_STATE_DIR/$name.pid" ] || fail "pid file of $name left after dst stop"
	check_log "$DST_STATE_DIR/$name.log"
}

# show_attr NAME ATTR: one attribute of `dst show NAME` (e.g. io/errors); of
# one shown more than once (uri), the first.
show_attr() {
	show_attrs "$1" "$2"
}

# show_attrs NAME ATTR...: the ATTRs of NAME from one `dst show NAME`, one
# line each in the order asked (an empty line for one not shown). One
# snapshot, so attributes that change together (a resync's progress, rate
# and the health it makes) are read as they were at one moment.
show_attrs() {
	local out name=$1 a
	shift
	out=$("$DST" show "$name" 2>"$T_TMP/dst.err") || { cat "$T_TMP/dst.err" >&2; fail "dst show $name failed"; }
	check_stderr "$T_TMP/dst.err" "dst show"
	for a in "$@"; do
		printf '%s\n' "$out" | awk -v k="$name/$a" -F' : ' '$1 == k && !seen { v = $2; seen = 1 } END { print v }'
	done
}

# fio_run SECONDS OUT ARGS...: run fio with a time limit (a server that
# stops answering must fail the test, not hang it), output in OUT. True if
# fio exited 0 and every job reported err=0. On a timeout, what every
# daemon of the test reports (in flight, clients) and the state of the
# processes go to OUT before fio is killed.
fio_run() {
	local limit=$1 out=$2 rc=0 fp t=0 n diag
	shift 2
	fio "$@" >"$out" 2>&1 &
	fp=$!
	T_PIDS+=("$fp")
	while pid_alive "$fp"; do
		if [ $t -ge $((limit * 10)) ]; then
			# Look before killing; write it after fio's last words.
			diag=$(
				echo "fio timed out after $limit s: the server stopped answering"
				for n in "$DST_STATE_DIR"/*.pid; do
					[ -e "$n" ] || continue
					n=$(basename "$n" .pid)
					echo "-- dst show $n (timeout 5):"
					timeout 5 "$DST" show "$n" 2>&1 | grep -E '/(clients|io/inflight|io/reads|io/writes|io/errors|mem/buffer_in_use) :' ||
						echo "   (no answer from $n)"
				done
				echo "-- processes:"
				# shellcheck disable=SC2046 # word lists on purpose
				ps -o pid,stat,%cpu,etime,args -p "$(echo "$fp" $(descendants "$fp") $(cat "$DST_STATE_DIR"/*.pid 2>/dev/null) | tr ' ' ,)" | cut -c1-150
			)
			kill_pid "$fp"
			echo "$diag" >>"$out"
			return 1
		fi
		sleep 0.1
		t=$((t + 1))
	done
	wait "$fp" || rc=$?
	[ $rc -eq 0 ] || return 1
	grep -q 'err= *0' "$out" && ! grep -Eq 'err= *[1-9]' "$out"
}

# ---- assertions ----

assert_eq() { # ACTUAL EXPECTED WHAT
	[ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

assert_contains() { # HAYSTACK NEEDLE WHAT
	case $1 in *"$2"*) ;; *) printf '%s\n' "$1" | head -40 >&2; fail "$3: '$2' not found" ;; esac
}

assert_not_contains() { # HAYSTACK NEEDLE WHAT
	case $1 in *"$2"*) printf '%s\n' "$1" | head -40 >&2; fail "$3: unexpected '$2'" ;; *) ;; esac
}

assert_ge() { # ACTUAL MIN WHAT
	[ "$1" -ge "$2" ] 2>/dev/null || fail "$3: got '$1', expected >= $2"
}

assert_le() { # ACTUAL MAX WHAT
	[ "$1" -le "$2" ] 2>/dev/null || fail "$3: got '$1', expected <= $2"
}

# run_ok WHAT CMD...: run CMD, show its output on failure.
run_ok() {
	local what=$1 rc=0
	shift
	"$@" >"$T_TMP/run.out" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		tail -40 "$T_TMP/run.out" >&2
		fail "$what: '$*' exited with status $rc"
	fi
}

# run_fails WHAT CMD...: CMD must fail; its output is left in $RUN_OUT.
run_fails() {
	local what=$1 rc=0
	shift
	"$@" >"$T_TMP/run.out" 2>&1 || rc=$?
	RUN_OUT=$(cat "$T_TMP/run.out")
	if [ $rc -eq 0 ]; then
		printf '%s\n' "$RUN_OUT" | tail -20 >&2
		fail "$what: '$*' succeeded but should have failed"
	fi
}

# ---- cleanup ----

t_cleanup() {
	local rc=$? name pid f seen
	trap - EXIT INT TERM
	set +e
	for pid in "${T_PIDS[@]}"; do
		kill_pid "$pid"
	done
	for name in "${T_EXPORTS[@]}"; do
		pid=$(export_pid "$name") || continue
		pid_alive "$pid" || continue
		echo "   cleanup: stopping export $name (pid $pid)"
		kill_pid "$pid"
	done
	# Every daemon log must be free of sanitizer reports, whatever happened.
	for f in "$DST_STATE_DIR"/*.log; do
		[ -f "$f" ] || continue
		seen=0
		for name in "${T_SAN_CHECKED[@]}"; do [ "$name" = "$f" ] && seen=1; done
		[ $seen = 1 ] && [ $rc -ne 0 ] && continue
		if grep -Eq "$SAN_PATTERN" "$f"; then
			echo "---- sanitizer report in $f ----" >&2
			san_report "$f" >&2
			echo "FAIL: sanitizer report in $(basename "$f")" >&2
			[ $rc -eq 0 ] || [ $rc -eq 77 ] && rc=1
		fi
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		# The logs of daemons still running at the failure (those already
		# stopped and checked were reported when they were).
		for f in "$DST_STATE_DIR"/*.log; do
			[ -f "$f" ] || continue
			seen=0
			for name in "${T_SAN_CHECKED[@]}"; do [ "$name" = "$f" ] && seen=1; done
			[ $seen = 1 ] && continue
			echo "---- last lines of $(basename "$f") ----"
			log_tail "$f" 12
		done
	fi
	if [ -n "${DST_KEEP_TMP:-}" ]; then
		echo "   kept $T_TMP"
	else
		rm -rf "$T_TMP"
	fi
	exit $rc
}
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
