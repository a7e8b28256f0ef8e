#!/usr/bin/env bash
# Events (--on-event): a hook script records its arguments and environment,
# one line per call, and every event is logged as "event NAME storage=...".
# A mirror over two file-backed exports, created with --on-event:
#  - leg 1's export killed with kill -9, a write while it is away, the export
#    restarted: the hook gets node-lost, degraded, node-back, resync-started,
#    resync-done, healthy, in that order, with the storage, the node, its URI
#    and details;
#  - dst replace of leg 1: migration-started, migration-done;
#  - leg 0's address serving a disk that carries another storage's label:
#    label-mismatch (once), and node-back once the right disk is back;
#  - a hook that hangs (on suspend): the storage serves meanwhile, the hook
#    and what it started are killed after --on-event-timeout, the events
#    that waited behind it (resume...) are delivered after it, in order; a
#    hook's non-zero exit status is logged;
#  - an export with --on-event: client-connect and client-disconnect; 80
#    events while its hook is held: 64 queued for it, the rest dropped and
#    logged (every event is logged all the same).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

HOOK_OUT=$T_TMP/events.txt
HOOK=$T_TMP/hook.sh
cat >"$HOOK" <<EOF
#!/bin/bash
# args | env, one line per event
printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "\$1" "\$2" "\${3:-}" "\$DST_EVENT" "\$DST_KIND" \\
	"\$DST_NODE" "\$DST_NODE_SPEC" "\$DST_DETAIL" >>"$HOOK_OUT"
if [ "\$1" = suspend ]; then
	sleep 300 &
	echo \$! >"$T_TMP/sleep.pid"
	wait
fi
# Held while the file is there (events pile up behind it).
while [ "\$2" = evx ] && [ -e "$T_TMP/hold" ]; do sleep 0.05; done
[ "\$1" != resume ] || exit 3
EOF
chmod +x "$HOOK"
: >"$HOOK_OUT"

# hook_events: the event names the hook got, space-separated, but the
# storage's clients' (qemu-io) client-connect and client-disconnect.
hook_events() { cut -d'|' -f1 "$HOOK_OUT" | grep -v '^client-' | tr '\n' ' ' | sed 's/ $//'; }
# hook_wait EVENT SECONDS: until the hook got EVENT (after HOOK_MARK lines).
hook_wait() {
	local t
	for t in $(seq $(($2 * 10))); do
		grep -qx -- "$1" <<<"$(tail -n +$((HOOK_MARK + 1)) "$HOOK_OUT" | cut -d'|' -f1)" && return 0
		sleep 0.1
	done
	echo "hook got: $(hook_events)" >&2
	log_tail "$DST_STATE_DIR/ev.log" 15 >&2
	fail "the hook did not get $1 within $2 s"
}
# hook_since [ALL]: the event names since HOOK_MARK (with ALL, the
# clients' too).
hook_since() {
	tail -n +$((HOOK_MARK + 1)) "$HOOK_OUT" | cut -d'|' -f1 | grep -v "^${1:-client}-" |
		tr '\n' ' ' | sed 's/ $//'
}
hook_mark() { HOOK_MARK=$(grep -c '' "$HOOK_OUT"); }
HOOK_MARK=0

step "bad --on-event values are refused"
bad_input "a missing program" "--on-event" "$T_TMP/nope" -- create bad --alg mirror --on-event "$T_TMP/nope"
bad_input "a program not in PATH" "no such program" -- create bad --alg mirror --on-event no-such-hook-xyz
bad_input "a bad timeout" "--on-event-timeout" -- create bad --alg mirror --on-event "$HOOK" --on-event-timeout soon

step "mirror ev with --on-event (timeout 3 s) over two 8M exports"
mr_legs ev 8M 8M
mr_mirror ev --on-event "$HOOK" --on-event-timeout 3
assert_contains "$(cat "$DST_STATE_DIR/ev.conf")" "on-event = $HOOK" "the hook in the config"
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
assert_eq "$(hook_events)" "" "events of a healthy start"

step "kill -9 leg 1, write, restart it: the hook sees the loss and the resync"
leg_kill9 1
hook_wait degraded 10
qio "$M_URI" "write -P 0x5a 1M 64k"
leg_restart 1
hook_wait healthy 20
assert_eq "$(hook_events)" "node-lost degraded node-back resync-started resync-done healthy" \
	"the events, in order"
line=$(grep '^node-lost|' "$HOOK_OUT")
assert_eq "$(cut -d'|' -f1-7 <<<"$line")" "node-lost|ev|$L1|node-lost|storage|$L1|${LEG_URI[1]}" \
	"node-lost: arguments, DST_EVENT, DST_KIND, DST_NODE, DST_NODE_SPEC"
[ -n "$(cut -d'|' -f8 <<<"$line")" ] || fail "node-lost: DST_DETAIL is empty"
assert_eq "$(grep '^degraded|' "$HOOK_OUT" | cut -d'|' -f2,3,8)" "ev||1 of 2 legs in sync" \
	"degraded: no node argument, the legs in sync as detail"
assert_eq "$(grep '^resync-done|' "$HOOK_OUT" | cut -d'|' -f3,7)" "$L1|${LEG_URI[1]}" \
	"resync-done names the leg"
log=$(cat "$DST_STATE_DIR/ev.log")
assert_contains "$log" "warning: event node-lost storage=ev node=$L1 spec=${LEG_URI[1]}: " \
	"the event's log line"
assert_contains "$log" "info: event healthy storage=ev: all 2 legs in sync" "healthy in the log"
assert_not_contains "$log" "event hook" "nothing wrong with the hook"
mr_legs_identical "after the resync"

step "dst replace leg 1: migration-started, migration-done"
hook_mark
st_export ev-new 8M
NEW_URI=$URI
dst_ok replace ev "$L1" --remote "$NEW_URI" --wait >/dev/null
hook_wait migration-done 20
assert_eq "$(hook_since)" "migration-started migration-done" "the events of dst replace"
assert_eq "$(grep '^migration-' "$HOOK_OUT" | cut -d'|' -f3 | sort -u)" "$L1" "both name the node"
assert_contains "$(grep '^migration-done|' "$HOOK_OUT" | cut -d'|' -f7,8)" "$NEW_URI|from ${LEG_URI[1]}" \
	"migration-done: the new URI, the old one in the detail"

step "a disk with another storage's label at leg 0's address: label-mismatch"
hook_mark
st_export other-disk 8M
OTHER_IMG=$IMG
st_create other linear
st_add other --remote "$URI"
stop_export other-disk
stop_export "${LEG_EXPORT[0]}" --force
start_export foreign "$OTHER_IMG" --listen "127.0.0.1:${LEG_PORT[0]}"
hook_wait label-mismatch 15
sleep 1 # more reconnect attempts: still one event
assert_eq "$(grep -c '^label-mismatch|' "$HOOK_OUT")" 1 "label-mismatch fired once"
line=$(grep '^label-mismatch|' "$HOOK_OUT")
assert_eq "$(cut -d'|' -f3,7 <<<"$line")" "$L0|${LEG_URI[0]}" "label-mismatch: node and URI"
assert_contains "$(cut -d'|' -f8 <<<"$line")" "other" "label-mismatch: the detail names the other storage"
stop_export foreign --force
leg_restart 0
hook_wait healthy 20
assert_eq "$(hook_since)" "node-lost degraded label-mismatch node-back resync-started resync-done healthy" \
	"the events of a foreign disk and the right one back"

step "a hook that hangs (on suspend) is killed after 3 s; IO goes on meanwhile"
hook_mark
dst_ok suspend ev "$L0" >/dev/null
hook_wait suspend 10
sleep_pid=$(cat "$T_TMP/sleep.pid")
pid_alive "$sleep_pid" || fail "the hanging hook's sleep is not running"
dst_ok resume ev "$L0" >/dev/null
qio "$M_URI" "write -P 0x6b 2M 64k" "read -P 0x6b 2M 64k"
assert_eq "$(hook_since)" "degraded suspend" "the events behind the hanging hook wait"
wait_gone "$sleep_pid" 10 || {
	kill "$sleep_pid"
	fail "the hanging hook's child still runs after the timeout"
}
hook_wait healthy 20
assert_eq "$(hook_since)" "degraded suspend resume resync-started resync-done healthy" \
	"the events after the hanging hook, in order"
assert_contains "$(cat "$DST_STATE_DIR/ev.log")" "event hook $HOOK suspend: still running after 3 s: killed" \
	"the kill is logged"
assert_contains "$(cat "$DST_STATE_DIR/ev.log")" "event hook $HOOK resume: exit status 3" \
	"a hook's non-zero exit status is logged"
pid_alive "$M_PID" || fail "the storage died"
grep 'event ' "$DST_STATE_DIR/ev.log" | tail -n 8 | cut -d' ' -f3- | sed 's/^/   log: /'

note "the hook got: $(hook_events)"
st_stop ev

step "an export with --on-event: a client's connection and disconnection"
hook_mark
start_export evx mem:8M --on-event "$HOOK"
run_ok "nbdinfo" nbdinfo --size "$URI"
hook_wait client-disconnect 10
assert_eq "$(hook_since all)" "client-connect client-disconnect" "an export's events"
line=$(grep '^client-connect|' "$HOOK_OUT" | tail -n 1)
assert_eq "$(cut -d'|' -f2,4,5 <<<"$line")" "evx|client-connect|export" "client-connect: name, DST_EVENT, DST_KIND"
assert_contains "$(cut -d'|' -f8 <<<"$line")" "127.0.0.1:" "client-connect: the client's address"

step "80 events while the hook is held: 64 wait for it, 16 are dropped and logged"
hook_mark
touch "$T_TMP/hold"
for _ in $(seq 40); do
	nbdinfo --size "$URI" >/dev/null 2>&1 || fail "nbdinfo $URI failed"
done
# Every event fired (the server may see the last disconnection after
# nbdinfo exits), then the hook let go.
for _ in $(seq 100); do
	[ "$(grep -c 'event client-disconnect export=evx' "$DST_STATE_DIR/evx.log")" -ge 41 ] && break
	sleep 0.1
done
rm -f "$T_TMP/hold"
for _ in $(seq 100); do
	[ "$(tail -n +$((HOOK_MARK + 1)) "$HOOK_OUT" | grep -c '|evx|')" -ge 64 ] && break
	sleep 0.1
done
sleep 0.5 # nothing more comes
assert_eq "$(tail -n +$((HOOK_MARK + 1)) "$HOOK_OUT" | grep -c '|evx|')" 64 "events the hook got"
assert_eq "$(grep -c "event hook $HOOK: 64 events already waiting: client-[a-z]* not passed to it" \
	"$DST_STATE_DIR/evx.log")" 16 "events dropped, each logged"
assert_eq "$(grep -c 'event client-connect export=evx' "$DST_STATE_DIR/evx.log")" 41 \
	"every client-connect is in the log, dropped or not"
stop_export evx
echo "PASS"
