#!/usr/bin/env bash
# Bad command lines for dst export: each exits non-zero with exactly one
# line on stderr naming the problem, and leaves nothing new in the state dir
# (no .conf, .pid, .log...). A failed re-export keeps the old config.
. "$(dirname "$0")/lib.sh"

snapshot() { (cd "$DST_STATE_DIR" && ls -A | sort); }

# bad WHAT EXPECTED_TEXT ARGS...: dst ARGS must fail with one stderr line
# containing EXPECTED_TEXT, and leave the state dir as it was.
bad() {
	local what=$1 want=$2 before after rc=0 lines
	shift 2
	before=$(snapshot)
	"$DST" "$@" >"$T_TMP/out" 2>"$T_TMP/err" || rc=$?
	check_stderr "$T_TMP/err" "dst $*"
	[ $rc -ne 0 ] || { cat "$T_TMP/out" "$T_TMP/err"; fail "$what: 'dst $*' succeeded"; }
	lines=$(wc -l <"$T_TMP/err")
	note "$what -> status $rc: $(head -c 200 "$T_TMP/err")"
	[ "$lines" -eq 1 ] || { cat "$T_TMP/err" >&2; fail "$what: $lines lines on stderr, expected 1"; }
	grep -qF -- "$want" "$T_TMP/err" || fail "$what: stderr does not mention '$want'"
	after=$(snapshot)
	[ "$before" = "$after" ] || fail "$what: the state dir changed: before [$before] after [$after]"
}

P=$(free_port)
L="127.0.0.1:$P"

step "missing or unusable disks"
bad "no DISK" "missing DISK" export
bad "no DISK, options only" "missing DISK" export --listen "$L"
bad "two DISKs" "unexpected argument" export mem:1M mem:2M --listen "$L"
bad "nonexistent file" "No such file or directory" export "$T_TMP/nope.img" --listen "$L"
bad "file in a nonexistent dir" "No such file or directory" export /nonexistent/dir/x.img --listen "$L"
mkdir "$T_TMP/adir"
bad "a directory" "not a regular file or block device" export "$T_TMP/adir" --listen "$L"
mkfifo "$T_TMP/fifo"
bad "a fifo" "not a regular file or block device" export "$T_TMP/fifo" --listen "$L"
: >"$T_TMP/empty.img"
bad "empty file" "empty" export "$T_TMP/empty.img" --listen "$L"

step "unreadable file"
truncate -s 1M "$T_TMP/locked.img"
chmod 000 "$T_TMP/locked.img"
if [ "$(id -u)" -ne 0 ]; then
	bad "unreadable file (chmod 000)" "Permission denied" export "$T_TMP/locked.img" --listen "$L"
elif command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	# root reads anything: run dst as nobody, with a state dir nobody owns.
	note "running as root: trying as user nobody instead"
	chmod 755 "$T_TMP"
	mkdir -m 700 "$T_TMP/nobody-state"
	chown nobody "$T_TMP/nobody-state"
	rc=0
	DST_STATE_DIR=$T_TMP/nobody-state setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$DST" export "$T_TMP/locked.img" --listen "$L" >"$T_TMP/out" 2>"$T_TMP/err" || rc=$?
	check_stderr "$T_TMP/err" "dst export as nobody"
	note "as nobody -> status $rc: $(cat "$T_TMP/err")"
	[ $rc -ne 0 ] || fail "nobody could export a chmod 000 file"
	[ "$(wc -l <"$T_TMP/err")" -eq 1 ] || fail "unreadable file: not one line on stderr"
	grep -q "Permission denied" "$T_TMP/err" || fail "unreadable file: no 'Permission denied'"
	[ -z "$(ls -A "$T_TMP/nobody-state")" ] || fail "unreadable file: state dir not empty: $(ls -A "$T_TMP/nobody-state")"
	chmod 444 "$T_TMP/locked.img"
	rc=0
	DST_STATE_DIR=$T_TMP/nobody-state setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$DST" export "$T_TMP/locked.img" --listen "$L" >"$T_TMP/out" 2>"$T_TMP/err" || rc=$?
	note "read-only file, read-write export as nobody -> status $rc: $(cat "$T_TMP/err")"
	[ $rc -ne 0 ] || fail "nobody could export a read-only file read-write"
	grep -q -- "--readonly" "$T_TMP/err" || fail "the error does not suggest --readonly"
else
	note "SKIP unreadable-file check: running as root without setpriv (root bypasses permissions)"
fi

step "bad mem: sizes"
bad "mem: without size" "mem:" export mem: --listen "$L"
bad "mem:abc" "mem:abc" export mem:abc --listen "$L"
bad "mem:0" "mem:0" export mem:0 --listen "$L"
bad "mem:-1M" "mem:-1M" export mem:-1M --listen "$L"
bad "mem:1000 (not a multiple of 512)" "512" export mem:1000 --listen "$L"
bad "mem:1Q" "mem:1Q" export mem:1Q --listen "$L"
bad "mem:300T (too large)" "too large" export mem:300T --listen "$L"

step "bad --allow"
for a in 300.1.1.1 10.0.0.0/33 10.0.0.0/8:rx abc 10.0.0.0/ ::1/129 "[::1" ""; do
	bad "--allow '$a'" "--allow" export mem:1M --listen "$L" --allow "$a"
done

step "bad --listen"
bad "--listen without port" "--listen" export mem:1M --listen 127.0.0.1
bad "--listen port 99999" "--listen" export mem:1M --listen 127.0.0.1:99999
bad "--listen port abc" "--listen" export mem:1M --listen 127.0.0.1:abc
bad "--listen empty port" "--listen" export mem:1M --listen 127.0.0.1:
bad "--listen bad host" "256.1.1.1" export mem:1M --listen "256.1.1.1:$P"
bad "--listen non-local address" "192.0.2.1" export mem:1M --listen "192.0.2.1:$P"

step "other bad options"
# getopt's own message plus a pointer to --help: allow two lines here.
rc=0
"$DST" export mem:1M --listen "$L" --frobnicate >/dev/null 2>"$T_TMP/err" || rc=$?
note "unknown option -> status $rc: $(tr '\n' '|' <"$T_TMP/err")"
[ $rc -ne 0 ] || fail "unknown option accepted"
grep -q -- "--frobnicate" "$T_TMP/err" || fail "unknown option: the error does not name --frobnicate"
[ "$(wc -l <"$T_TMP/err")" -le 2 ] || fail "unknown option: more than 2 lines on stderr"
bad "--backlog 0" "--backlog" export mem:1M --listen "$L" --backlog 0
bad "--backlog x" "--backlog" export mem:1M --listen "$L" --backlog x
bad "--buffers 100" "--buffers" export mem:1M --listen "$L" --buffers 100
bad "--buffers 1T" "--buffers" export mem:1M --listen "$L" --buffers 1T
bad "--name with a slash" "name" export mem:1M --listen "$L" --name ../evil
bad "--name empty" "name" export mem:1M --listen "$L" --name ""
bad "--name starting with -" "name" export mem:1M --listen "$L" --name=-x
bad "--socket too long" "too long" export mem:1M --socket "$T_TMP/$(printf 'x%.0s' $(seq 120))/s.sock"

step "port in use"
start_export holder mem:16M
HOLD_PORT=$PORT
bad "second export on the same port" "in use" export mem:16M --name second --listen "127.0.0.1:$HOLD_PORT"
python3 -c 'import socket, time; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' >"$T_TMP/port" &
T_PIDS+=($!)
for _ in $(seq 50); do [ -s "$T_TMP/port" ] && break; sleep 0.1; done
FOREIGN=$(cat "$T_TMP/port")
[ -n "$FOREIGN" ] || fail "could not start the port holder"
bad "port held by another program" "in use" export mem:16M --name third --listen "127.0.0.1:$FOREIGN"
pid_alive "$PID" || fail "the first export died"
run_ok "the first export still serves" nbd_raw 127.0.0.1 "$HOLD_PORT" read:0:4096:0

step "a failed re-export keeps the old config"
stop_export holder
cp "$DST_STATE_DIR/holder.conf" "$T_TMP/holder.conf.before"
bad "re-export onto a busy port" "in use" export mem:32M --name holder --listen "127.0.0.1:$FOREIGN"
cmp -s "$DST_STATE_DIR/holder.conf" "$T_TMP/holder.conf.before" || fail "holder.conf changed by a failed export"
dst_ok start holder >/dev/null
track_export holder
assert_eq "$(show_attr holder bytes)" 16777216 "size after restarting from the kept config"
stop_export holder

step "dst start/stop/show of unknown names, bad names"
bad "dst start unknown" "no-such" start no-such
bad "dst stop unknown" "no-such" stop no-such
bad "dst show unknown" "no-such" show no-such
bad "dst stop bad name" "name" stop ../x
bad "dst unknown command" "unknown command" frobnicate
echo "PASS"
