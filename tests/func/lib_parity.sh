# shellcheck shell=bash
# lib_parity.sh - helpers for the alg_parity tests (test_parity_*.sh); source
# it after lib.sh, lib_storage.sh and lib_mirror.sh.
#
# A parity storage's nodes are lib_mirror's legs: file-backed `dst export`
# nodes made by mr_legs (LEG_IMG, LEG_PORT, LEG_URI, LEG_EXPORT), so that
# leg_kill9, leg_restart, mr_wait, mr_log_mark, mr_fio_start... work on them
# as on a mirror's legs. Node i (0-based, in the order added) is LEG_*[i];
# LEG_NODE[i] is its name in `dst show` (n-START).
# The storage: P_NAME, P_URI, P_PID, P_SIZE (bytes a client sees), P_K, P_M,
# P_N (= K + M), P_CHUNK, P_ROWS (chunks per node in use).
#
# The parity of the node files is checked by tests/tools/parity_check (built
# by make unit): it recomputes every row's parity with the storage's code and
# placement (src/alg/parity_code.h, parity_geom.h) from the files themselves.

PARITY_CHECK=$DST_BIN/tests/parity_check
[ -x "$PARITY_CHECK" ] || skip "$PARITY_CHECK not built (make unit)"

# pr_parity STORAGE K M [dst create options...]: create a K+M parity storage
# over the legs of mr_legs, add them in order, start it on a free port. Sets
# P_*, LEG_NODE. The nodes are new blank files, their parity (all zeros)
# right: created with --assume-clean unless PR_INITIAL_SYNC=1.
pr_parity() {
	local s=$1 k=$2 m=$3 i
	shift 3
	if [ "${PR_INITIAL_SYNC:-0}" = 1 ]; then
		st_create "$s" parity --data "$k" --parity "$m" "$@"
	else
		st_create "$s" parity --data "$k" --parity "$m" --assume-clean "$@"
	fi
	for i in "${!LEG_URI[@]}"; do
		st_add "$s" --remote "${LEG_URI[i]}"
	done
	st_start "$s" --listen "127.0.0.1:$(free_port)"
	pr_attach "$s" "$k" "$m"
}

# pr_attach STORAGE K M: set P_* and LEG_NODE from the running storage
# (after pr_parity, or after a `dst start` of it again).
pr_attach() {
	P_NAME=$1 P_K=$2 P_M=$3 P_N=$(($2 + $3)) P_URI=$ST_URI P_PID=$ST_PID
	P_SIZE=$(show_attr "$1" bytes)
	P_CHUNK=$(show_attr "$1" parity/chunk)
	[[ $P_CHUNK =~ ^[0-9]+$ ]] && [ "$P_CHUNK" -ge 4096 ] || fail "$1/parity/chunk is '$P_CHUNK'"
	P_ROWS=$((P_SIZE / (P_K * P_CHUNK)))
	[ $((P_ROWS * P_K * P_CHUNK)) -eq "$P_SIZE" ] ||
		fail "$1: $P_SIZE bytes are not whole rows of $P_K x $P_CHUNK"
	pr_nodes "$1" "$P_N"
	note "parity $1: $P_K+$P_M, chunk $P_CHUNK, $P_ROWS rows, $P_SIZE bytes," \
		"nodes ${LEG_NODE[*]}, health $(show_attr "$1" health)"
}

# pr_nodes STORAGE N: LEG_NODE, the node names in the order of dst show (the
# order they were added); fails unless there are N.
pr_nodes() {
	mapfile -t LEG_NODE < <("$DST" show "$1" | sed -n "s|^$1/\(n-[0-9]*\)/health : .*|\1|p")
	[ ${#LEG_NODE[@]} -eq "$2" ] || fail "dst show $1 lists ${#LEG_NODE[@]} nodes with a health letter, expected $2"
}

# pr_letters L [I L2...]: P_N times letter L, with the letter of node I
# replaced by L2 for each pair given: pr_letters A 2 D -> AADAAA.
pr_letters() {
	local all=$1 s
	s=$(printf "$all%.0s" $(seq "$P_N"))
	shift
	while [ $# -ge 2 ]; do
		s=${s:0:$1}$2${s:$(($1 + 1))}
		shift 2
	done
	echo "$s"
}

# pr_check WHAT: the parity of every row of the node files is right (the
# storage must be quiet: no write in flight, every node in sync).
pr_check() {
	local out rc=0
	out=$("$PARITY_CHECK" --rows "$P_ROWS" "$P_K" "$P_M" "$P_CHUNK" "${LEG_IMG[@]}" 2>&1) || rc=$?
	[ $rc -eq 0 ] || {
		printf '%s\n' "$out" >&2
		fail "$1: parity_check of the node files exited $rc"
	}
	note "parity consistent ($1): ${out#parity_check: }"
}

# pr_check_bad: how many rows of the node files have a wrong parity (for a
# note; the files are not required to be consistent).
pr_check_bad() {
	"$PARITY_CHECK" --rows "$P_ROWS" "$P_K" "$P_M" "$P_CHUNK" "${LEG_IMG[@]}" 2>&1 |
		sed -n 's/.*, \([0-9]*\) differ$/\1/p'
}

# pr_same_as_files URI WHAT: what a client reads through URI is the node
# files' data chunks in row order (the placement of parity_geom.h).
pr_same_as_files() {
	local dev files
	"$PARITY_CHECK" --rows "$P_ROWS" --extract "$T_TMP/extract.bin" "$P_K" "$P_M" "$P_CHUNK" \
		"${LEG_IMG[@]}" >"$T_TMP/extract.out" 2>&1
	[ $? -le 1 ] || { cat "$T_TMP/extract.out" >&2; fail "$2: parity_check --extract"; }
	files=$(sha256sum <"$T_TMP/extract.bin" | cut -d' ' -f1)
	dev=$(dev_sha "$1")
	rm -f "$T_TMP/extract.bin"
	[ "$dev" = "$files" ] || fail "$2: the device read through $1 is not the node files' data chunks in row order"
	note "the device is the node files' data chunks in row order ($2)"
}

# pr_check_written URI WHAT: every write of mr_writes (MR_WRITTEN) reads
# back through URI.
pr_check_written() {
	local w off pat cmds=()
	for w in "${MR_WRITTEN[@]}"; do
		read -r off pat <<<"$w"
		cmds+=("read -P $pat $off 65536")
	done
	qio "$1" "${cmds[@]}"
	note "${#MR_WRITTEN[@]} writes read back through $1 ($2)"
}

# pr_node_of ROW ROLE: the node (0-based) holding role ROLE (data i: i,
# parity j: K + j) of row ROW.
pr_node_of() {
	echo $((($2 + P_N - $1 % P_N) % P_N))
}

# pr_settle STORAGE: every node in sync, nothing stale, behind or lost.
pr_settle() {
	mr_wait "$1" health "$(pr_letters A)" 30 "every node in sync"
	mr_wait "$1" parity/stale_regions 0 20 "no stale regions"
	mr_wait "$1" parity/behind_regions 0 10 "no regions behind"
	assert_eq "$(show_attr "$1" parity/lost_rows)" 0 "$1/parity/lost_rows"
}

# pr_status_is STORAGE RC WHAT: `dst status STORAGE` exits RC (0 healthy,
# 1 degraded, 2 failed); its line is shown if not.
pr_status_is() {
	local rc=0
	"$DST" status "$1" >"$T_TMP/status.out" 2>&1 || rc=$?
	[ "$rc" = "$2" ] || {
		cat "$T_TMP/status.out" >&2
		fail "$3: dst status $1 exited $rc, expected $2"
	}
}

# pr_load_loop URI OUT: back-to-back fio runs of 3 s until the stop file
# exists (see pr_load_start); 1 at the first run that fails.
pr_load_loop() {
	local uri=$1 out=$2 n=0
	while [ ! -e "$T_TMP/load.stop" ]; do
		n=$((n + 1))
		fio_run 90 "$T_TMP/load.run" --name=parity --ioengine=nbd --uri="$uri" \
			--rw=randwrite --bssplit=4k/30:16k/20:64k/20:256k/15:1m/15 --blockalign=4k \
			--iodepth=32 --numjobs=2 --size=8M --offset_increment=8M \
			--time_based --runtime=3 --norandommap --serialize_overlap=1 \
			--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
			--group_reporting || {
			cat "$T_TMP/load.run" >>"$out"
			echo "load: run $n failed" >>"$out"
			return 1
		}
		grep -E '^ *(READ|WRITE):' "$T_TMP/load.run" >>"$out"
	done
	echo "load: $n runs" >>"$out"
}

# pr_load_start URI OUT: a write load with crc32c verify in the background
# for as long as the test acts: pr_load_loop, the fio of mr_fio_start (2
# jobs, each writing its 8M of 0..16M in random 4K..1M requests at QD32 and
# verifying each pass) in runs of 3 s, until pr_load_stop. The first run
# that fails ends the load. Sets FIO_PID, FIO_OUT (OUT: every run's
# summary, all of a failed run).
pr_load_start() {
	rm -f "$T_TMP/load.stop"
	: >"$2"
	bg pr_load_loop "$1" "$2"
	FIO_PID=$BG_PID
	FIO_OUT=$2
	note "fio write+verify runs on $1 (pid $FIO_PID)"
}

# pr_load_stop: end pr_load_start's load after its current run; fail unless
# every run passed. Says how many ran.
pr_load_stop() {
	local rc=0
	touch "$T_TMP/load.stop"
	bg_wait "$FIO_PID" || rc=$?
	if [ $rc -ne 0 ] || grep -qiE 'verify: bad|verify failed|crc32c: verify|err= *[1-9]' "$FIO_OUT"; then
		tail -40 "$FIO_OUT" >&2
		fail "the fio load through $P_NAME: status $rc"
	fi
	note "$(tail -1 "$FIO_OUT"), every one without error"
}

# pr_plan STORAGE KIND: the count of write plans KIND (full, rmw, rcw,
# degraded, noparity) used so far.
pr_plan() {
	local v
	v=$(show_attr "$1" "parity/plans/$2")
	[[ $v =~ ^[0-9]+$ ]] || fail "$1/parity/plans/$2 is '$v'"
	echo "$v"
}
