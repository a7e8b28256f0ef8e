# shellcheck shell=bash
# lib_mirror.sh - helpers for the alg_mirror tests (test_mirror_*.sh); source
# it after lib.sh and lib_storage.sh.
#
# A mirror's legs are file-backed `dst export` nodes on 127.0.0.1 (sparse
# files in the test's temp dir), so a leg can be killed, hung, replaced and
# restarted on the same port with the same file, and its bytes compared with
# cmp. Leg i (0-based) is the export named ${MR_PREFIX}i:
#   LEG_IMG[i]  its backing file     LEG_PORT[i]  its port on 127.0.0.1
#   LEG_URI[i]  nbd://127.0.0.1:PORT LEG_NODE[i]  its node name in `dst show`
#                                                 (n-START, e.g. n-0)
# The storage: M_NAME, M_URI, M_PID, M_SIZE (bytes a client sees).

# mr_legs STORAGE SIZE...: one file-backed export per SIZE (truncate syntax).
mr_legs() {
	local s=$1 i=0 size
	shift
	LEG_IMG=() LEG_PORT=() LEG_URI=() LEG_NODE=() LEG_EXPORT=()
	for size in "$@"; do
		st_export "$s-leg$i" "$size"
		LEG_EXPORT[i]=$s-leg$i
		LEG_IMG[i]=$IMG
		LEG_PORT[i]=$PORT
		LEG_URI[i]=$URI
		i=$((i + 1))
	done
}

# mr_mirror STORAGE [dst create options...]: create a mirror over the legs
# of mr_legs, add them in order, start it on a free port. Sets M_*, LEG_NODE.
# The legs are new blank files, identical: the mirror is created with
# --assume-clean (no initial sync) unless MR_INITIAL_SYNC=1.
mr_mirror() {
	local s=$1 i
	shift
	if [ "${MR_INITIAL_SYNC:-0}" = 1 ]; then
		st_create "$s" mirror "$@"
	else
		st_create "$s" mirror --assume-clean "$@"
	fi
	for i in "${!LEG_URI[@]}"; do
		st_add "$s" --remote "${LEG_URI[i]}"
	done
	st_start "$s" --listen "127.0.0.1:$(free_port)"
	M_NAME=$s M_URI=$ST_URI M_PID=$ST_PID
	M_SIZE=$(show_attr "$s" bytes)
	mr_leg_nodes "$s" ${#LEG_URI[@]}
	note "mirror $s: ${LEG_NODE[*]}, $M_SIZE bytes, health $(show_attr "$s" health)"
}

# mr_leg_nodes STORAGE N: LEG_NODE, the node names of the mirror's legs in
# the order they were added; fails unless there are N.
mr_leg_nodes() {
	mapfile -t LEG_NODE < <("$DST" show "$1" | sed -n "s|^$1/\(n-[0-9]*\)/leg : .*|\1|p")
	[ ${#LEG_NODE[@]} -eq "$2" ] || fail "dst show $1 lists ${#LEG_NODE[@]} legs, expected $2"
}

# leg_pid I: the pid of leg I's export (from its pid file).
leg_pid() {
	export_pid "${LEG_EXPORT[$1]}"
}

# leg_kill9 I: kill -9 leg I's export and wait until it is gone.
leg_kill9() {
	local pid
	pid=$(leg_pid "$1") || fail "leg $1: no pid file"
	kill -KILL "$pid"
	leg_kill9_wait "$1" "$pid"
}

# leg_kill9_wait I PID: after kill -KILL PID (leg I's export): wait until it
# is gone, remove its stale pid file.
leg_kill9_wait() {
	wait_gone "$2" 10 || fail "leg $1 (pid $2) survived kill -9"
	rm -f "$DST_STATE_DIR/${LEG_EXPORT[$1]}.pid"
	note "leg $1 (${LEG_NODE[$1]:-?}): export pid $2 killed with SIGKILL"
}

# leg_blank I: leg I's file replaced by an empty one of the same size (new
# media). The caller has stopped its export first.
leg_blank() {
	local sz
	sz=$(stat -c %s "${LEG_IMG[$1]}") || fail "stat leg $1"
	rm -f "${LEG_IMG[$1]}"
	truncate -s "$sz" "${LEG_IMG[$1]}" || fail "truncate leg $1"
}

# mr_leg_refused STORAGE I SECONDS: leg I answers but is not used (its disk
# has no label of this storage): its node state is "foreign".
mr_leg_refused() {
	mr_wait "$1" "${LEG_NODE[$2]}/state" foreign "$3" "leg $2 on a disk without its label"
	assert_eq "$(show_attr "$1" "${LEG_NODE[$2]}/leg")" D "leg $2's letter while it is refused"
}

# mr_leg_take STORAGE I: what an administrator does to put new media in
# under leg I: dst suspend, then dst resume --remote on the same URI, which
# labels the disk; the leg is then copied whole.
mr_leg_take() {
	dst_ok suspend "$1" "${LEG_NODE[$2]}" >/dev/null
	dst_ok resume "$1" "${LEG_NODE[$2]}" --remote "${LEG_URI[$2]}" >/dev/null
	note "leg $2 (${LEG_NODE[$2]}): new disk labelled with dst suspend + dst resume --remote"
}

# leg_restart I: `dst export` leg I's file again, on the same port.
leg_restart() {
	local i=$1 rc=0
	for _ in $(seq 20); do
		rc=0
		"$DST" export "${LEG_IMG[i]}" --name "${LEG_EXPORT[i]}" \
			--listen "127.0.0.1:${LEG_PORT[i]}" >/dev/null 2>"$T_TMP/dst.err" || rc=$?
		check_stderr "$T_TMP/dst.err" "dst export (restart of leg $i)"
		[ $rc -eq 0 ] && break
		# The port may still be held for a moment by the killed process.
		grep -q "Address already in use" "$T_TMP/dst.err" || break
		sleep 0.25
	done
	[ $rc -eq 0 ] || { cat "$T_TMP/dst.err" >&2; fail "restart of leg $i's export on port ${LEG_PORT[i]}"; }
	note "leg $i (${LEG_NODE[i]:-?}): export restarted on ${LEG_URI[i]} (pid $(leg_pid "$i"))"
}

# mr_wait STORAGE ATTR VALUE SECONDS WHAT: poll `dst show` until ATTR is VALUE.
mr_wait() {
	local s=$1 attr=$2 want=$3 secs=$4 what=$5 got t0
	t0=$(date +%s%3N)
	for _ in $(seq $((secs * 5))); do
		got=$(show_attr "$s" "$attr")
		[ "$got" = "$want" ] && {
			note "$s/$attr = $want after $(($(date +%s%3N) - t0)) ms"
			return 0
		}
		sleep 0.2
	done
	"$DST" show "$s" 2>&1 | grep -E '/(leg|state|health|sync|bitmap|resync|error)' >&2
	log_tail "$DST_STATE_DIR/$s.log" 10 >&2
	fail "$what: $s/$attr is '$got' after $secs s, expected '$want'"
}

# mr_settle STORAGE: every leg in sync and the bitmap swept clean (the sweep
# runs once a second and clears regions not written in the last second).
mr_settle() {
	mr_wait "$1" health "$(printf 'A%.0s' "${LEG_NODE[@]}")" 20 "every leg in sync"
	mr_wait "$1" bitmap/dirty 0 10 "the bitmap sweep"
}

# mr_copied STORAGE: resync/regions_copied.
mr_copied() {
	show_attr "$1" resync/regions_copied
}

# mr_legs_identical WHAT: every leg's file equals leg 0's over the data range
# (the header in each leg's last 4 KiB block is not data).
mr_legs_identical() {
	local i out
	for i in "${!LEG_IMG[@]}"; do
		[ "$i" -eq 0 ] && continue
		out=$(cmp -n "$M_SIZE" "${LEG_IMG[0]}" "${LEG_IMG[i]}" 2>&1) ||
			fail "$1: legs 0 and $i differ over the first $M_SIZE bytes: $out"
	done
	note "legs identical over $M_SIZE bytes ($1)"
}

# mr_log_mark STORAGE: remember how long the log is; mr_log_has looks after it.
mr_log_mark() {
	MR_LOG_MARK=$(grep -c '' "$DST_STATE_DIR/$1.log")
}

# mr_log_has STORAGE ERE WHAT: a line matching ERE since mr_log_mark.
mr_log_has() {
	# A here-string, not a pipe: grep -q stops at the first match, and under
	# pipefail the tail still writing a long log after it would fail with
	# SIGPIPE (the match then reads as none).
	grep -Eq -- "$2" <<<"$(tail -n +$((${MR_LOG_MARK:-0} + 1)) "$DST_STATE_DIR/$1.log")" || {
		log_tail "$DST_STATE_DIR/$1.log" 15 >&2
		fail "$3: no line matching '$2' in $1.log"
	}
	note "log: $(tail -n +$((${MR_LOG_MARK:-0} + 1)) "$DST_STATE_DIR/$1.log" | grep -E -m1 -- "$2" | cut -d' ' -f3-)"
}

# mr_wait_log STORAGE ERE SECONDS WHAT: wait for such a line (since the mark).
mr_wait_log() {
	for _ in $(seq $(($3 * 5))); do
		grep -Eq -- "$2" <<<"$(tail -n +$((${MR_LOG_MARK:-0} + 1)) "$DST_STATE_DIR/$1.log")" && break
		sleep 0.2
	done
	mr_log_has "$@"
}

# mr_fio_start URI RUNTIME OUT [fio options]: a write load with crc32c verify
# in the background, time_based: each pass of each of 2 jobs writes its
# 8M region (0..8M, 8M..16M) in random 4K..1M requests at QD32, then reads
# back and verifies it; a pass cut by the end of the runtime is not
# verified. --norandommap lets a pass write a block twice (fio checks each
# block against its last write); --serialize_overlap keeps two overlapping
# writes from being in flight at once (NBD does not order them). Sets
# FIO_PID, FIO_OUT.
mr_fio_start() {
	local uri=$1 runtime=$2 out=$3
	shift 3
	bg fio_run $((runtime + 60)) "$out" --name=mirror --ioengine=nbd --uri="$uri" \
		--rw=randwrite --bssplit=4k/30:16k/20:64k/20:256k/15:1m/15 --blockalign=4k \
		--iodepth=32 --numjobs=2 --size=8M --offset_increment=8M \
		--time_based --runtime="$runtime" --norandommap --serialize_overlap=1 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting "$@"
	FIO_PID=$BG_PID
	FIO_OUT=$out
	note "fio write+verify on $uri for $runtime s (pid $FIO_PID)"
}

# mr_fio_alive: fio must still be running (the fault lands under load).
mr_fio_alive() {
	pid_alive "$FIO_PID" || {
		tail -20 "$FIO_OUT" >&2
		fail "fio ended before the fault was injected"
	}
}

# mr_fio_wait: wait for mr_fio_start's fio; fail unless it exited 0 with
# err=0 in every job and no verify complaint. Prints its summary lines.
mr_fio_wait() {
	local rc=0
	bg_wait "$FIO_PID" || rc=$?
	if [ $rc -ne 0 ] || grep -qiE 'verify: bad|verify failed|crc32c: verify|err= *[1-9]' "$FIO_OUT"; then
		tail -40 "$FIO_OUT" >&2
		fail "fio through $M_NAME: status $rc"
	fi
	grep -E '^ *(READ|WRITE):' "$FIO_OUT" | sed 's/^ */   /'
}

# mr_writes URI OFFSET...: one qemu-io write per OFFSET (region-aligned or
# not) of 64K with pattern 0xNN taken from a running counter; remembers each
# (offset pattern) in MR_WRITTEN for mr_check_written.
MR_WRITTEN=()
MR_PAT=$((0x60))
mr_writes() {
	local uri=$1 off cmds=()
	shift
	for off in "$@"; do
		MR_PAT=$(((MR_PAT + 1) % 256))
		[ $MR_PAT -eq 0 ] && MR_PAT=1
		cmds+=("write -P $MR_PAT $off 65536")
		MR_WRITTEN+=("$off $MR_PAT")
	done
	qio "$uri" "${cmds[@]}" "flush"
}

# mr_files_have has|lacks FILE...: every write of MR_WRITTEN is in (has) or
# absent from (lacks: at least one byte differs) each FILE; one python for all. Prints what is wrong.
mr_files_have() {
	local mode=$1
	shift
	printf '%s\n' "${MR_WRITTEN[@]}" | python3 -c '
import sys
mode = sys.argv[1]
writes = [tuple(int(x) for x in ln.split()) for ln in sys.stdin if ln.strip()]
bad = 0
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        for off, pat in writes:
            f.seek(off)
            d = f.read(65536)
            there = d == bytes([pat]) * 65536
            if mode == "has" and not there:
                i = next((k for k, b in enumerate(d) if b != pat), len(d))
                print("%s: the write at %d (pattern %#x): byte %d is %r" % (path, off, pat, off + i, d[i:i + 1]), file=sys.stderr)
                bad += 1
            elif mode == "lacks" and there:
                print("%s: already has the write at %d (pattern %#x)" % (path, off, pat), file=sys.stderr)
                bad += 1
sys.exit(1 if bad else 0)
' "$mode" "$@"
}

# mr_check_written URI WHAT: every write of mr_writes (MR_WRITTEN) reads back
# through URI, and is in every leg's file.
mr_check_written() {
	local uri=$1 what=$2 w off pat cmds=()
	for w in "${MR_WRITTEN[@]}"; do
		read -r off pat <<<"$w"
		cmds+=("read -P $pat $off 65536")
	done
	mr_files_have has "${LEG_IMG[@]}" || fail "$what: writes missing from the leg files"
	qio "$uri" "${cmds[@]}"
	note "${#MR_WRITTEN[@]} writes read back through $uri and found on every leg ($what)"
}
