# shellcheck shell=bash
# lib_limits.sh - helpers of the test_limits_* tests; source after lib.sh.
#
# The misbehaving clients are tests/tools/nbd_load.py (one line of
# key=value results); the well-behaved one is qemu-io, timed from the shell.

# nbd_load ARGS...: tests/tools/nbd_load.py (HOST PORT MODE ARGS...).
nbd_load() { python3 "$TESTS_DIR/tools/nbd_load.py" "$@"; }

# kv LINE KEY: the value of KEY=VALUE in LINE.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# secs_le A B: true if the decimal A <= B.
secs_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# rss_kb PID: the process's resident memory in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# rss_watch PID OUT: sample rss_kb every 0.2 s into OUT until PID exits or
# the caller kills this (run it with bg).
rss_watch() {
	while pid_alive "$1"; do
		rss_kb "$1" >>"$2"
		sleep 0.2
	done
}

# max_of FILE: the largest number in FILE (0 if none).
max_of() { sort -n "$1" 2>/dev/null | tail -1 | grep . || echo 0; }

# probe_loop SECS URI OUT: a well-behaved client (qemu-io: connect,
# handshake, read 4 KiB, disconnect) again and again for SECS seconds; one
# line "MS RC" per attempt in OUT. Each attempt is given 30 s.
probe_loop() {
	local end=$(($(date +%s) + $1)) t0 rc
	while [ "$(date +%s)" -lt "$end" ]; do
		t0=$(date +%s%3N)
		rc=0
		timeout 30 qemu-io -f raw -r -c 'read 0 4k' "$2" >/dev/null 2>&1 || rc=$?
		echo "$(($(date +%s%3N) - t0)) $rc" >>"$3"
		sleep 0.2
	done
}

# probe_check OUT MAX_MS WHAT: every attempt in OUT succeeded within MAX_MS.
probe_check() {
	local n worst bad
	n=$(wc -l <"$1")
	worst=$(awk '{ if ($1 > m) m = $1 } END { print m + 0 }' "$1")
	bad=$(awk '$2 != 0' "$1" | wc -l)
	note "$3: $n attempts, worst ${worst} ms, $bad failed"
	assert_ge "$n" 3 "$3: attempts"
	assert_eq "$bad" 0 "$3: failed attempts"
	assert_le "$worst" "$2" "$3: worst latency (ms)"
}

# idle_gaps LOG: for each client the log shows closed by the idle timeout,
# the seconds from its "ready" line to that, one a line.
idle_gaps() {
	awk '
		function secs(ts,   t) { split(substr(ts, 12), t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
		/ client .*: ready / { p = $5; sub(/:$/, "", p); ready[p] = secs($1) }
		/ client .*: closed: idle timeout/ { p = $5; sub(/:$/, "", p); if (p in ready) printf "%.2f\n", secs($1) - ready[p] }
	' "$1"
}
