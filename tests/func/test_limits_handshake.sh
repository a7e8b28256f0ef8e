#!/usr/bin/env bash
# Limits during the handshake, against `dst export mem:...`:
# - --handshake-timeout 2: clients that connect and send nothing are closed
#   after 2 s (asserted within a window), logged and counted;
# - slowloris: 200 clients trickling their handshake a byte a second (and
#   reconnecting when closed) against --max-clients 32 do not keep out a
#   well-behaved client: qemu-io connects and reads within a bound the whole
#   time, the oldest trickling handshake being dropped to make room;
# - a client that sends options and never reads the replies is not read
#   from past 64 KiB of replies waiting for it;
# - the daemon's memory stays within its buffer budget plus a stated
#   overhead meanwhile.
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_limits.sh
. "$TESTS_DIR/func/lib_limits.sh"
need python3 qemu-io

MiB=1048576
# What the daemon may use besides its buffer pool: the program, 32 client
# buffers of 128 KiB, the mem disk's tables, and in the ASan build of make
# check the sanitizer's shadow memory and its quarantine (limited here).
OVERHEAD_MIB=64
export ASAN_OPTIONS="${ASAN_OPTIONS}:quarantine_size_mb=16"

step "export with --handshake-timeout 2 --max-clients 32 --buffers 32M"
start_export hs mem:256M --handshake-timeout 2 --max-clients 32 --buffers 32M
assert_eq "$(show_attr hs limits/handshake_timeout)" 2 "limits/handshake_timeout"
assert_eq "$(show_attr hs limits/max_clients)" 32 "limits/max_clients"
budget=$(show_attr hs mem/buffer_budget)

step "20 clients connect and send nothing: closed after 2 s"
out=$(nbd_load 127.0.0.1 "$PORT" silent 20 15) || fail "nbd_load silent failed"
note "$out"
assert_eq "$(kv "$out" dropped)" 20 "silent clients closed by the server"
assert_eq "$(kv "$out" refused)" 0 "silent clients refused at accept"
secs_le 1.9 "$(kv "$out" first)" || fail "first silent client closed after $(kv "$out" first) s, before the 2 s timeout"
secs_le "$(kv "$out" last)" 4.5 || fail "last silent client closed after $(kv "$out" last) s (timeout 2 s)"
n=$(grep -c 'handshake timed out' "$DST_STATE_DIR/hs.log")
assert_ge "$n" 20 "'handshake timed out' lines in the log"
assert_ge "$(show_attr hs clients_dropped)" 20 "clients_dropped"

step "slowloris: 200 clients trickle their handshakes for 14 s; qemu-io probes meanwhile"
bg rss_watch "$PID" "$T_TMP/rss"
rss_pid=$BG_PID
dropped0=$(show_attr hs clients_dropped)
bg nbd_load 127.0.0.1 "$PORT" slowloris 200 14 >"$T_TMP/sl.out"
sl=$BG_PID
sleep 3
probe_loop 9 "$URI" "$T_TMP/probe"
bg_wait "$sl" || fail "nbd_load slowloris failed"
out=$(cat "$T_TMP/sl.out")
note "slowloris: $out"
probe_check "$T_TMP/probe" 3000 "qemu-io during slowloris"
assert_eq "$(kv "$out" finished)" 0 "trickled handshakes that finished"
assert_ge "$(kv "$out" dropped)" 100 "trickling clients dropped"
assert_ge "$(grep -c 'dropped: still in its handshake' "$DST_STATE_DIR/hs.log")" 50 \
	"'dropped: still in its handshake' lines in the log"
assert_ge "$(show_attr hs clients_dropped)" $((dropped0 + 100)) "clients_dropped"
assert_le "$(show_attr hs clients)" 33 "clients connected (max 32, plus one being let go)"

step "a client sends options for 5 s and never reads the replies"
# Before: the server read on and queued ~3.5 bytes of reply per byte of
# option, without end (600 MiB in 5 s). Now it stops reading from that
# client at 64 KiB of replies waiting, and the client's sends block.
rss0=$(rss_kb "$PID")
out=$(nbd_load 127.0.0.1 "$PORT" chatter 5) || fail "nbd_load chatter failed"
rss1=$(rss_kb "$PID")
note "$out; VmRSS $((rss0 / 1024)) -> $((rss1 / 1024)) MiB"
assert_le "$(kv "$out" sent)" $((64 * MiB)) "bytes of options the server took"
assert_le $((rss1 - rss0)) $((16 * 1024)) "daemon VmRSS growth (KiB)"
run_ok "qemu-io after the chatter" qemu-io -f raw -r -c 'read 0 4k' "$URI"

kill_pid "$rss_pid"
rss=$(max_of "$T_TMP/rss")
note "VmRSS peak $((rss / 1024)) MiB; buffer budget $((budget / MiB)) MiB + overhead $OVERHEAD_MIB MiB"
assert_le "$rss" $(((budget / MiB + OVERHEAD_MIB) * 1024)) "daemon VmRSS (KiB)"
assert_eq "$(show_attr hs mem/buffer_in_use)" 0 "buffers in use afterwards"
stop_export hs
echo "PASS"
