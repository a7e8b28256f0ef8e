#!/usr/bin/env bash
# dst replace: live migration of a node of a running storage (issue 5),
# alg_linear over three file-backed `dst export` nodes (16M each), the
# middle one (n-32768) migrated again and again. In the order run:
# 5. bad input: a smaller new node, a new disk another export serves
#    read-write, an unknown node, a storage not running,
#    --abort with nothing running, the node's own address, an
#    unreachable new node, a second migration, a suspended node: refused
#    with one clear line, nothing started, the state dir unchanged. At the
#    very end: dst remove of the node being migrated. A mirror leg is
#    moved the same way (full copy while the old leg serves).
# 2. --abort mid-way (--rate 1M): the old node stays (config, dst show),
#    last_migration is "stopped: aborted", no migrate line is left, writes
#    made during the copy are on the old node, IO works, the aborted new
#    node gets nothing more.
# 3. the new node dies mid-way (SIGSTOP, then kill -9) while fio verify
#    writes over the whole storage: the migration stops with a reason, the
#    old node stays, fio sees no error.
# 4. dstd kill -9 mid-way: `dst start` begins the migration again by itself
#    and it completes; data written before the kill is there, the old node
#    is no longer written. Likewise after a dst stop that comes while the
#    copy waits on a hung old node (SIGSTOP): a clean stop, then dst start.
#    Also alg_stripe: a replace with --disk and no rate limit.
# 1. the middle node is migrated (--rate 3M, --wait) while fio writes with
#    crc32c verify (QD32, 4K..1M) over the whole storage: no fio error, the
#    copy overlaps the load; then, with the OLD node's export stopped, fio
#    --verify_only finds every block, the device is the current nodes' files
#    end to end, the config names the new node, last_migration says done.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio qemu-io nbdinfo nbdcopy

now_ms() { date +%s%3N; }

# fail_later WHY: a failed check that does not stop the test; the test fails
# at its end (so that the checks after it still run).
LATER=()
fail_later() {
	echo "FAIL (later): $*" >&2
	LATER+=("$*")
}

# conf_lines NAME KEY: the values of the KEY lines of NAME.conf.
conf_lines() {
	sed -n "s/^$2 = //p" "$DST_STATE_DIR/$1.conf"
}

# node_spec NAME START: the spec of the node line with start=START.
node_spec() {
	conf_lines "$1" node | awk -v s="start=$2" '$2 == s { print $NF }'
}

# mig_wait_end NAME SECONDS: wait until no migration runs any more.
mig_wait_end() {
	local t=$(($2 * 10))
	while [ $t -gt 0 ]; do
		[ -z "$(show_attr "$1" migration/node)" ] && return 0
		sleep 0.1
		t=$((t - 1))
	done
	fail "$1: the migration did not end within $2 s (percent $(show_attr "$1" migration/percent))"
}

# mig_wait_start NAME: wait (10 s at most) until a migration shows.
mig_wait_start() {
	for _ in $(seq 100); do
		[ -n "$(show_attr "$1" migration/node)" ] && return 0
		sleep 0.1
	done
	fail "$1: no migration shows 10 s after dst replace"
}

# mig_wait_percent NAME MIN: wait (10 s at most) until the copy is at MIN %.
mig_wait_percent() {
	local p
	for _ in $(seq 100); do
		p=$(show_attr "$1" migration/percent)
		[ -n "$p" ] || fail "$1: no migration running while waiting for $2 %"
		[ "$p" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "$1: the copy did not reach $2 % in 10 s (at $p %)"
}

# The fio job of part 1: writes of 4K..1M at QD32 over the whole 48M
# storage (4 regions of 12M: the node boundaries at 16M and 32M fall inside
# them), crc32c in every block. --verify_only replays the same layout.
fio_job() {
	echo --name=mig --ioengine=nbd --uri="$1" --rw=randwrite \
		--bssplit=4k/30:16k/20:64k/20:256k/15:1m/15 --blockalign=4k \
		--iodepth=32 --numjobs=4 --size=12M --offset_increment=12M \
		--verify=crc32c --verify_fatal=1 --verify_state_save=0 --group_reporting
}

# fio_ok OUT WHAT: fio's output OUT has no error and no verify failure.
fio_ok() {
	if grep -qiE 'verify: bad|verify failed|bad magic|crc32c: verify|err= *[1-9]' "$1"; then
		grep -iE 'verify|err=' "$1" | head -10 >&2
		fail "$2: fio reported errors"
	fi
	grep -qE 'err= *0' "$1" || { tail -20 "$1" >&2; fail "$2: fio did not report err=0"; }
}

step "three 16M export nodes and a storage mig over them (alg_linear)"
st_export r0 16M
R0=$URI R0_IMG=$IMG
st_export r1 16M
R1=$URI R1_IMG=$IMG
st_export r2 16M
R2=$URI R2_IMG=$IMG
st_create mig linear --io-timeout 10
st_add mig --remote "$R0"
st_add mig --remote "$R1"
st_add mig --remote "$R2"
st_start mig --listen "127.0.0.1:$(free_port)"
MIG=$ST_URI MIG_PID=$ST_PID
NODE=n-32768
assert_eq "$(dev_size "$MIG")" $((48 * MiB)) "size of mig"
assert_eq "$(show_attr mig last_migration)" "" "last_migration before any migration"

# ---------------------------------------------------------------------------
step "5. bad input"
st_export small 8M
SMALL=$URI SMALL_PID=$PID
bad_input "a smaller new node" "fewer" "16384" "32768" -- replace mig $NODE --remote "$SMALL"
assert_eq "$(show_attr mig migration/node)" "" "a migration after the smaller node was refused"
assert_eq "$(show_attr mig last_migration)" "" "last_migration after the smaller node was refused"
truncate -s 8M "$T_TMP/small-disk.img"
bad_input "a smaller new disk" "fewer" -- replace mig $NODE --disk "$T_TMP/small-disk.img"
# A disk exported read-write is the export's alone: not labelled, not taken.
st_export busy 16M
BUSY_IMG=$IMG BUSY_PID=$PID
bad_input "a new disk that an export serves" "in use by dstd $BUSY_PID (export busy)" -- replace mig $NODE --disk "$BUSY_IMG"
assert_eq "$(tail -c 4096 "$BUSY_IMG" | tr -d '\0' | wc -c)" 0 "the exported disk's label block, untouched"
stop_export busy
bad_input "an unknown node" "n-99" "no node" -- replace mig n-99 --remote "$SMALL"
bad_input "the node's own address" "already on" -- replace mig $NODE --remote "$R1"
bad_input "--abort with nothing running" "no migration" -- replace mig $NODE --abort
DEADPORT=$(free_port)
bad_input "an unreachable new node" "127.0.0.1:$DEADPORT" -- replace mig $NODE --remote "nbd://127.0.0.1:$DEADPORT"
bad_input "neither --remote nor --disk" "--remote" -- replace mig $NODE
bad_input "--abort with a new node" "--abort" -- replace mig $NODE --abort --remote "$SMALL"
bad_input "a bad --rate" "--rate" -- replace mig $NODE --remote "$SMALL" --rate 1
bad_input "no such storage" "nosuch" -- replace nosuch n-0 --remote "$SMALL"
truncate -s 8M "$T_TMP/idle0.img" "$T_TMP/idle-new.img"
st_create idle linear
st_add idle --disk "$T_TMP/idle0.img"
bad_input "a storage that is not running" "not running" -- replace idle n-0 --disk "$T_TMP/idle-new.img"
truncate -s 8M "$T_TMP/leg0.img" "$T_TMP/leg1.img" "$T_TMP/leg-new.img"
st_create mir mirror
st_add mir --disk "$T_TMP/leg0.img"
st_add mir --disk "$T_TMP/leg1.img"
st_start mir
# A mirror leg moves like a node (add, full copy, drop): the old leg serves
# until the switch; the new one ends up identical and carries the header.
qio "$(st_uri mir)" "write -P 0x6d 0 2M"
out=$(dst replace mir n-0 --disk "$T_TMP/leg-new.img" --wait) || fail "replace of a mirror leg: $out"
note "$(printf '%s\n' "$out" | tail -1)"
assert_contains "$(show_attr mir last_migration)" "done" "last_migration of the mirror"
assert_eq "$(show_attr mir health)" AA "health after the leg moved"
cmp -n $((8 * MiB - 4096)) "$T_TMP/leg-new.img" "$T_TMP/leg1.img" || fail "the moved leg differs from the other"
[ "$(head -c 8 <(tail -c 4096 "$T_TMP/leg-new.img"))" = DSTLABL1 ] || fail "the moved leg has no label"
st_stop mir
assert_eq "$(conf_lines mir migrate)" "" "migrate line of the mirror"
assert_eq "$(conf_lines mig migrate)" "" "migrate line after the bad input"

# ---------------------------------------------------------------------------
step "2. --abort mid-way (rate 1M/s)"
st_export n2 16M
N2=$URI N2_IMG=$IMG
dst_ok replace mig $NODE --remote "$N2" --rate 1M >/dev/null
mig_wait_percent mig 6
assert_eq "$(show_attr mig migration/node)" $NODE "migration/node while copying"
assert_eq "$(show_attr mig migration/to)" "$N2" "migration/to while copying"
assert_eq "$(show_attr mig migration/state)" copying "migration/state while copying"
assert_eq "$(show_attr mig migration/total)" $((16 * MiB)) "migration/total"
# (with the disk id the new node's label carries)
[[ $(conf_lines mig migrate) =~ ^$NODE\ remote\ 1048576\ id=[0-9a-f]{32}\ $N2$ ]] ||
	fail "the config's migrate line while copying: '$(conf_lines mig migrate)'"
assert_eq "$(node_spec mig 32768)" "$R1" "the config's node line while copying"
assert_eq "$(show_attr mig $NODE/uri)" "$R1" "$NODE/uri while copying"
bad_input "a second migration while one runs" "already running" -- replace mig n-0 --remote "$N2"
bad_input "--abort of another node" "no migration of n-0" -- replace mig n-0 --abort
# Writes during the copy, behind the cursor (to both nodes) and ahead of it
# (old node only): after the abort both are on the old node. (A write ahead
# of the copy is not behind it: 28M is node offset 12M, 75 % of the node.)
qio "$MIG" "write -P 0xa1 $((16 * MiB)) 65536" "write -P 0xa2 $((28 * MiB)) 65536" "flush"
p=$(show_attr mig migration/percent)
note "aborting at $p %"
assert_le "$p" 70 "percent copied at 1M/s shortly after the start"
out=$(dst replace mig $NODE --abort) || fail "dst replace --abort failed"
assert_contains "$out" "aborted the migration of $NODE" "dst replace --abort"
mig_wait_end mig 10
assert_eq "$(show_attr mig last_migration)" "stopped: aborted" "last_migration after --abort"
assert_eq "$(conf_lines mig migrate)" "" "the config's migrate line after --abort"
assert_eq "$(node_spec mig 32768)" "$R1" "the config's node line after --abort"
assert_eq "$(show_attr mig $NODE/uri)" "$R1" "$NODE/uri after --abort"
assert_eq "$(show_attr mig $NODE/state)" up "$NODE/state after --abort"
assert_file_pattern "$R1_IMG" 0 65536 0xa1 "a write behind the copy cursor, on the old node"
assert_file_pattern "$R1_IMG" $((12 * MiB)) 65536 0xa2 "a write ahead of the copy cursor, on the old node"
n2_md5=$(md5sum <"$N2_IMG")
step "2. IO after the abort: fio verify over the whole storage; the new node gets nothing"
st_fio_verify "$MIG" 4 12M || fail "fio verify after --abort"
qio "$MIG" "write -P 0xa1 $((16 * MiB)) 65536" "write -P 0xa2 $((28 * MiB)) 65536" "flush"
assert_eq "$(md5sum <"$N2_IMG")" "$n2_md5" "md5 of the aborted new node after more IO"
want=$(node_data "$R0_IMG" "$R1_IMG" "$R2_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$MIG")" "$want" "sha256 of the device vs. r0 + r1 + r2 after --abort"
stop_export n2

step "5. more bad input: replace of a suspended node"
dst_ok suspend mig n-0 >/dev/null
bad_input "a suspended node" "suspended" "resume" -- replace mig n-0 --remote "$SMALL"
dst_ok resume mig n-0 >/dev/null
stop_export small

# ---------------------------------------------------------------------------
step "3. the new node dies mid-way (hangs, then kill -9) while fio verify runs"
# The new node is stopped (SIGSTOP) once the copy is under way, so the copy
# cannot finish before it dies whatever the load; fio's writes behind the
# copy cursor wait for it, then the kill -9 fails them on the new node only.
st_export n3 16M
N3=$URI N3_PID=$PID
bg sh -c "'$DST' replace mig $NODE --remote '$N3' --rate 2M --wait >'$T_TMP/rep3.out' 2>&1"
REP=$BG_PID
mig_wait_start mig
mig_wait_percent mig 12
kill -STOP "$N3_PID"
T_STOPPED=$N3_PID
# shellcheck disable=SC2046 # fio_job's words on purpose
bg fio_run 60 "$T_TMP/fio3.out" $(fio_job "$MIG") --do_verify=1 --rate=1536k --randseed=3
FIO=$BG_PID
sleep 1.5
pid_alive "$REP" || fail "the migration ended while the new node was stopped: $(tail -1 "$T_TMP/rep3.out")"
assert_eq "$(show_attr mig migration/node)" $NODE "migration/node while the new node hangs"
kill -KILL "$N3_PID"
T_STOPPED=
wait_gone "$N3_PID" 10 || fail "export n3 survived kill -9"
t0=$(now_ms)
rc=0
bg_wait "$REP" || rc=$?
check_stderr "$T_TMP/rep3.out" "dst replace --wait"
note "dst replace --wait returned $(($(now_ms) - t0)) ms after the kill, status $rc: $(tail -1 "$T_TMP/rep3.out")"
[ $rc -ne 0 ] || fail "dst replace --wait succeeded although the new node died"
assert_contains "$(tail -1 "$T_TMP/rep3.out")" "migration stopped: " "dst replace --wait's message"
last=$(show_attr mig last_migration)
note "last_migration: $last"
[ "${last#stopped: }" != "$last" ] || fail "last_migration does not start with 'stopped: ': $last"
assert_contains "$last" "new node" "last_migration names the new node as the cause"
assert_eq "$(show_attr mig migration/node)" "" "migration/node after the new node died"
assert_eq "$(conf_lines mig migrate)" "" "the config's migrate line after the new node died"
assert_eq "$(node_spec mig 32768)" "$R1" "the config's node line after the new node died"
assert_eq "$(show_attr mig $NODE/uri)" "$R1" "$NODE/uri after the new node died"
pid_alive "$MIG_PID" || fail "the storage daemon died with the new node"
pid_alive "$FIO" || note "(fio was done before the migration stopped)"
rc=0
bg_wait "$FIO" || rc=$?
grep -E '^ *(READ|WRITE):' "$T_TMP/fio3.out" | sed 's/^ */   /'
[ $rc -eq 0 ] || { tail -30 "$T_TMP/fio3.out" >&2; fail "fio while the new node died"; }
fio_ok "$T_TMP/fio3.out" "fio while the new node died"
assert_eq "$(show_attr mig io/errors)" 0 "io errors of the storage after the new node died"
want=$(node_data "$R0_IMG" "$R1_IMG" "$R2_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$MIG")" "$want" "sha256 of the device vs. r0 + r1 + r2 after the new node died"
check_log "$DST_STATE_DIR/n3.log"

# ---------------------------------------------------------------------------
step "4. dstd kill -9 mid-way: dst start begins the migration again, it completes"
st_export n4 16M
N4=$URI N4_IMG=$IMG
qio "$MIG" "write -P 0xc1 $((16 * MiB)) $((16 * MiB))" "flush"
dst_ok replace mig $NODE --remote "$N4" --rate 4M >/dev/null
mig_wait_percent mig 12
# Behind the cursor, ahead of it, across the end of the node.
qio "$MIG" "write -P 0xc2 $((16 * MiB)) 65536" "write -P 0xc3 $((31 * MiB)) 65536" \
	"write -P 0xc4 $((32 * MiB - 4096)) 8192" "flush"
before=$(show_attr mig migration/copied)
kill -KILL "$MIG_PID"
wait_gone "$MIG_PID" 10 || fail "the storage daemon survived kill -9"
note "killed dstd with $before bytes copied"
[ "$before" -lt $((16 * MiB)) ] || fail "the copy was done before the kill"
[[ $(conf_lines mig migrate) =~ ^$NODE\ remote\ 4194304\ id=[0-9a-f]{32}\ $N4$ ]] ||
	fail "the config's migrate line after kill -9: '$(conf_lines mig migrate)'"
assert_eq "$(node_spec mig 32768)" "$R1" "the config's node line after kill -9"
st_start mig
MIG_PID=$ST_PID
assert_eq "$ST_URI" "$MIG" "mig/uri after the restart"
seen=
for _ in $(seq 30); do
	[ -n "$(show_attr mig migration/node)" ] && { seen=1; break; }
	case $(show_attr mig last_migration) in done*) seen=1; break ;; esac
	sleep 0.1
done
[ -n "$seen" ] || fail "no migration after dst start (the config had a migrate line)"
grep -q "was under way: starting it again" "$DST_STATE_DIR/mig.log" ||
	fail "the storage's log does not say the migration started again"
mig_wait_end mig 30
last=$(show_attr mig last_migration)
note "last_migration: $last"
assert_contains "$last" "done: $NODE now on $N4 (16777216 bytes in" "last_migration after the restart"
assert_eq "$(conf_lines mig migrate)" "" "the config's migrate line after the restarted migration"
assert_eq "$(node_spec mig 32768)" "$N4" "the config's node line after the restarted migration"
assert_eq "$(show_attr mig $NODE/uri)" "$N4" "$NODE/uri after the restarted migration"
qio "$MIG" "read -P 0xc2 $((16 * MiB)) 65536" "read -P 0xc1 $((16 * MiB + 65536)) $((15 * MiB - 65536))" \
	"read -P 0xc3 $((31 * MiB)) 65536" "read -P 0xc1 $((31 * MiB + 65536)) $((MiB - 65536 - 4096))" \
	"read -P 0xc4 $((32 * MiB - 4096)) 8192"
assert_file_pattern "$N4_IMG" 0 65536 0xc2 "the new node after the restarted migration (start)"
assert_file_pattern "$N4_IMG" $((15 * MiB)) 65536 0xc3 "the new node after the restarted migration (15M)"
assert_file_pattern "$N4_IMG" $((16 * MiB - 4096)) 4096 0xc4 "the new node after the restarted migration (end)"
want=$(node_data "$R0_IMG" "$N4_IMG" "$R2_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$MIG")" "$want" "sha256 of the device vs. r0 + n4 + r2"
# The old node is left untouched and no longer used.
r1_md5=$(md5sum <"$R1_IMG")
qio "$MIG" "write -P 0xc5 $((16 * MiB)) $((MiB))" "flush"
assert_eq "$(md5sum <"$R1_IMG")" "$r1_md5" "md5 of the old node after a write to its range"
assert_file_pattern "$N4_IMG" 0 $((MiB)) 0xc5 "a write after the switch, on the new node"
stop_export r1

step "4. dst stop while the copy waits on a hung old node, dst start: the migration begins again"
# SIGSTOP the old node's export: the copy's next read of it stays in flight
# (the node does not answer) when the storage stops.
st_export n5 16M
N5=$URI N5_IMG=$IMG
N4_PID=$(export_pid n4)
dst_ok replace mig $NODE --remote "$N5" --rate 8M >/dev/null
mig_wait_percent mig 6
kill -STOP "$N4_PID"
T_STOPPED=$N4_PID
sleep 1
c1=$(show_attr mig migration/copied)
sleep 0.5
assert_eq "$(show_attr mig migration/copied)" "$c1" "bytes copied while the old node hangs"
note "the copy waits on the old node at $c1 bytes"
dst_ok stop mig >/dev/null
wait_gone "$MIG_PID" 10 || fail "the storage daemon still runs 10 s after dst stop"
kill -CONT "$N4_PID"
T_STOPPED=
if grep -Eq "$SAN_PATTERN" "$DST_STATE_DIR/mig.log"; then
	san_report "$DST_STATE_DIR/mig.log" | head -30 >&2
	fail_later "sanitizer report when the storage stopped during the migration (see above)"
	# Keep the later checks of this log to what comes after the restart.
	mv "$DST_STATE_DIR/mig.log" "$T_TMP/mig.log.stop-during-migration"
fi
[[ $(conf_lines mig migrate) =~ ^$NODE\ remote\ 8388608\ id=[0-9a-f]{32}\ $N5$ ]] ||
	fail "the config's migrate line after dst stop: '$(conf_lines mig migrate)'"
assert_eq "$(node_spec mig 32768)" "$N4" "the config's node line after dst stop"
st_start mig
MIG_PID=$ST_PID
mig_wait_start mig
mig_wait_end mig 30
last=$(show_attr mig last_migration)
note "last_migration: $last"
assert_contains "$last" "done: $NODE now on $N5 (16777216 bytes in" "last_migration after stop + start"
assert_eq "$(conf_lines mig migrate)" "" "the config's migrate line after the migration"
assert_eq "$(node_spec mig 32768)" "$N5" "the config's node line after the migration"
cmp -n $((16 * MiB)) "$N4_IMG" "$N5_IMG" || fail "the new node differs from the old one (no writes since the start)"
stop_export n4

# ---------------------------------------------------------------------------
step "alg_stripe: replace a node (--disk, no rate limit) with --wait"
truncate -s 8M "$T_TMP/st0.img" "$T_TMP/st1.img" "$T_TMP/st1-new.img"
st_create str stripe
st_add str --disk "$T_TMP/st0.img"
st_add str --disk "$T_TMP/st1.img"
st_start str
STR=$ST_URI
st_fio_verify "$STR" 2 8M || fail "fio verify on the stripe storage"
sha_before=$(dev_sha "$STR")
ST1=$(realpath "$T_TMP/st1.img")
out=$(dst replace str "$ST1" --disk "$T_TMP/st1-new.img" --wait) || fail "dst replace on the stripe storage"
assert_contains "$out" "done: " "dst replace --wait on the stripe storage"
cmp -n $((8 * MiB - 4096)) "$T_TMP/st1.img" "$T_TMP/st1-new.img" || fail "the stripe node and its copy differ (data; each has its own label)"
assert_eq "$(dev_sha "$STR")" "$sha_before" "sha256 of the stripe storage after replace"
assert_contains "$(conf_lines str node)" "$(realpath "$T_TMP/st1-new.img")" "the stripe's config names the new node"
assert_not_contains "$(conf_lines str node)" "$ST1" "the stripe's config after replace"
st_fio_verify "$STR" 2 8M --verify_only=1 || fail "fio verify_only on the stripe storage after replace"
st_stop str

# ---------------------------------------------------------------------------
step "1. replace $NODE under fio verify load over the whole storage (--rate 3M: ~5 s)"
st_export n1 16M
N1=$URI N1_IMG=$IMG
# Writes rate-limited to 4 x 1.5M/s: the 48M take ~8 s, the copy starts
# after 1 s and should end around 6 s; then fio verifies what it wrote.
# shellcheck disable=SC2046 # fio_job's words on purpose
bg fio_run 60 "$T_TMP/fio1.out" $(fio_job "$MIG") --do_verify=1 --rate=1536k --verify_backlog=256
FIO=$BG_PID
sleep 1
pid_alive "$FIO" || { cat "$T_TMP/fio1.out" >&2; fail "fio ended before the migration started"; }
t0=$(now_ms)
rc=0
dst replace mig $NODE --remote "$N1" --rate 3M --wait >"$T_TMP/rep1.out" || rc=$?
rep_ms=$(($(now_ms) - t0))
tail -3 "$T_TMP/rep1.out" | sed 's/^/   /'
note "dst replace --wait took $rep_ms ms, status $rc"
# 16M at 3M/s: 5 s, less the first region copied at once.
[ "$rep_ms" -ge 4000 ] ||
	fail_later "--rate 3M under load: 16M copied in $rep_ms ms ($(tail -1 "$T_TMP/rep1.out")), expected >= 4000 ms"
fio_alive=0
pid_alive "$FIO" && fio_alive=1
# mig_died WHEN: fail at once if the storage daemon is gone (fio's jobs do
# not answer SIGTERM with their requests lost in a dead server).
mig_died() {
	pid_alive "$MIG_PID" && return 0
	# shellcheck disable=SC2046
	kill -KILL $(descendants "$FIO") 2>/dev/null
	check_log "$DST_STATE_DIR/mig.log"
	log_tail "$DST_STATE_DIR/mig.log" 5 >&2
	fail "the storage daemon (pid $MIG_PID) died $1 (no sanitizer report: a crash)"
}
sleep 0.5 # a timer of the migration left behind would have fired by now
mig_died "during the migration under load"
[ $rc -eq 0 ] || fail "dst replace --wait exited with status $rc"
assert_contains "$(tail -1 "$T_TMP/rep1.out")" "done: $NODE now on $N1" "last line of dst replace --wait"
last=$(show_attr mig last_migration)
[ "${last#done: }" != "$last" ] || { mig_died "after the migration"; fail "last_migration does not start with 'done: ': $last"; }
assert_eq "$(node_spec mig 32768)" "$N1" "the config's node line after the migration"
assert_eq "$(conf_lines mig migrate)" "" "the config's migrate line after the migration"
assert_eq "$(show_attr mig $NODE/uri)" "$N1" "$NODE/uri after the migration"
while pid_alive "$FIO"; do
	mig_died "after the migration, under load"
	sleep 0.2
done
rc=0
bg_wait "$FIO" || rc=$?
grep -E '^ *(READ|WRITE):' "$T_TMP/fio1.out" | sed 's/^ */   /'
mig_died "after the migration, under load"
[ $rc -eq 0 ] || { tail -30 "$T_TMP/fio1.out" >&2; fail "fio under the migration failed"; }
fio_ok "$T_TMP/fio1.out" "fio under the migration"
[ $fio_alive = 1 ] || fail "fio's writes ended before the migration: the copy did not overlap the load"
assert_eq "$(show_attr mig io/errors)" 0 "io errors of the storage"
assert_ge "$(show_attr mig $NODE/io/writes)" 1 "writes counted on the new node"

step "1. stop the OLD node's export: fio --verify_only over the whole storage, device = r0 + n1 + r2"
stop_export n5
# shellcheck disable=SC2046
fio_run 60 "$T_TMP/fio1v.out" $(fio_job "$MIG") --verify_only=1 ||
	{ tail -30 "$T_TMP/fio1v.out" >&2; fail "fio --verify_only after the migration"; }
fio_ok "$T_TMP/fio1v.out" "fio --verify_only after the migration"
grep -E '^ *READ:' "$T_TMP/fio1v.out" | sed 's/^ */   /'
want=$(node_data "$R0_IMG" "$N1_IMG" "$R2_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$MIG")" "$want" "sha256 of the device vs. r0 + n1 + r2"
assert_eq "$(show_attr mig io/errors)" 0 "io errors of the storage (the old node is gone)"

# ---------------------------------------------------------------------------
step "5. dst remove of the node being migrated"
# Either refused (the migration goes on, and can be aborted), or the
# migration ends with it and the config keeps no migrate line for a node
# that is gone.
st_export n6 16M
N6=$URI
dst_ok replace mig n-65536 --remote "$N6" --rate 2M >/dev/null
mig_wait_percent mig 6
rc=0
"$DST" remove mig n-65536 >"$T_TMP/rm.out" 2>&1 || rc=$?
check_stderr "$T_TMP/rm.out" "dst remove"
note "dst remove of the node being migrated: status $rc: $(cat "$T_TMP/rm.out")"
sleep 1.5 # three regions at 2M/s
if ! pid_alive "$MIG_PID"; then
	check_log "$DST_STATE_DIR/mig.log"
	fail "the storage daemon died after dst remove of the node being migrated"
fi
if [ $rc -ne 0 ]; then
	assert_eq "$(node_spec mig 65536)" "$R2" "the config's node line after a refused remove"
	assert_eq "$(show_attr mig migration/node)" n-65536 "migration/node after a refused remove"
	dst_ok replace mig n-65536 --abort >/dev/null
	mig_wait_end mig 10
	want=$(node_data "$R0_IMG" "$N1_IMG" "$R2_IMG" | sha256sum | cut -d' ' -f1)
else
	mig_wait_end mig 10
	assert_eq "$(conf_lines mig migrate)" "" "the config's migrate line after the migrating node was removed"
	last=$(show_attr mig last_migration)
	[ "${last#stopped: }" != "$last" ] || fail "last_migration after the migrating node was removed: '$last'"
	want=$(node_data "$R0_IMG" "$N1_IMG" | sha256sum | cut -d' ' -f1)
fi
assert_eq "$(dev_sha "$MIG")" "$want" "sha256 of the device after dst remove of the migrating node"

step "stop"
assert_eq "$(show_attr mig clients)" 0 "clients left connected"
st_stop mig
stop_export r0
stop_export r2
stop_export n1
stop_export n6
[ ${#LATER[@]} -eq 0 ] || fail "${#LATER[@]} check(s) failed: ${LATER[*]}"
echo "PASS"
