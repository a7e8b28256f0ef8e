# shellcheck shell=bash
# lib_splice.sh - helpers for the splice tests (test_splice_*.sh); source it
# after lib.sh and lib_storage.sh.
#
# A storage whose nodes are remote moves the payload of a large request
# (64 KiB or more) that falls on one remote node socket -> pipe -> socket
# with splice(2), and copies the rest (small requests, a request split over
# two nodes, TLS on either side, no pipe free). `dst show` counts both:
#   NAME/splice                      "on", or "off: REASON"
#   NAME/splice/read_spliced_bytes   NAME/splice/read_copied_bytes
#   NAME/splice/write_spliced_bytes  NAME/splice/write_copied_bytes
#   NAME/NODE/splice                 "yes", or "no (REASON)"
#   NAME/NODE/spliced_bytes          NAME/NODE/copied_bytes
# The data checks hold on either path; the counter checks are what tell the
# paths apart.
#
# sp_assert_attr NAME KEY GLOB WHAT  NAME/KEY matches the shell GLOB (and
#                            is shown)
# sp_mark NAME [NODE...]     remember the counters of NAME (and its NODEs)
# sp_delta NAME KEY          what KEY (e.g. splice/read_spliced_bytes,
#                            n-0/spliced_bytes) grew by since sp_mark
# sp_most BYTES              3/4 of BYTES: "most" of a load's large IO (a
#                            request that finds every pipe of the pool taken
#                            is copied, and that is allowed)
# sp_idle_pipes NAME N       with no IO under way: NAME's pipes are back in
#                            the pool but the N its plaintext remote nodes
#                            keep to send from (splice/pipes_in_use), and
#                            no more than 64 were made (splice/pipes)
# sp_fio_jobs URI OUT SPEC...  one fio job per SPEC "BS@OFFSET+SIZE":
#                            random writes of BS covering [OFFSET, +SIZE)
#                            once at QD16, then crc32c verify reads of all
#                            of it; every job at once. Fails the test on any
#                            error. Each job moves SIZE bytes each way.
# sp_fio_start URI RUNTIME OUT [fio options]  1M random writes at QD16 with
#                            crc32c verify in passes, time_based, in the
#                            background (FIO_PID, FIO_OUT); 2 jobs of 16M at
#                            offsets 0 and 16M unless the options say other.
# sp_fio_wait                wait for it: exited 0, err=0, no verify
#                            complaint; prints fio's summary lines.
# sp_random FILE SIZE        a file of random bytes

# The counters of the storage (KEY under NAME/) and of each node.
SP_KEYS="splice/read_spliced_bytes splice/read_copied_bytes splice/write_spliced_bytes splice/write_copied_bytes"
SP_NODE_KEYS="spliced_bytes copied_bytes"
declare -A SP_MARK=()

# sp_show NAME: `dst show NAME`, once, for several attributes.
sp_show() {
	"$DST" show "$1" 2>"$T_TMP/dst.err" || { cat "$T_TMP/dst.err" >&2; fail "dst show $1 failed"; }
	check_stderr "$T_TMP/dst.err" "dst show"
}

# sp_attr SHOW NAME KEY: KEY of NAME in the output SHOW of sp_show; fails if
# it is missing or not a number.
sp_attr() {
	local v
	v=$(awk -v k="$2/$3" -F' : ' '$1 == k { print $2; exit }' <<<"$1")
	[[ $v =~ ^[0-9]+$ ]] || fail "dst show $2: $2/$3 is '$v', not a byte count"
	echo "$v"
}

sp_assert_attr() {
	local v
	v=$(show_attr "$1" "$2")
	# shellcheck disable=SC2053 # a glob on purpose
	[[ $v == $3 ]] || fail "$4: $1/$2 is '$v', expected '$3'"
	note "$1/$2 : $v"
}

sp_mark() {
	local name=$1 out k n
	shift
	out=$(sp_show "$name") || exit 1
	for k in $SP_KEYS; do
		SP_MARK[$name/$k]=$(sp_attr "$out" "$name" "$k") || exit 1
	done
	for n in "$@"; do
		for k in $SP_NODE_KEYS; do
			SP_MARK[$name/$n/$k]=$(sp_attr "$out" "$name" "$n/$k") || exit 1
		done
	done
}

sp_delta() {
	local now
	[ -n "${SP_MARK[$1/$2]:-}" ] || fail "sp_delta $1 $2: no sp_mark of it"
	now=$(sp_attr "$(sp_show "$1")" "$1" "$2") || exit 1
	echo $((now - SP_MARK[$1/$2]))
}

sp_most() {
	echo $(($1 * 3 / 4))
}

# sp_counters NAME [NODE...]: the counters' growth since sp_mark, on one
# line, for the test's output.
sp_counters() {
	local name=$1 out k n line=''
	shift
	out=$(sp_show "$name") || exit 1
	for k in $SP_KEYS; do
		line+=" ${k#splice/}=+$(($(sp_attr "$out" "$name" "$k") - SP_MARK[$name/$k]))"
	done
	for n in "$@"; do
		for k in $SP_NODE_KEYS; do
			line+=" $n/$k=+$(($(sp_attr "$out" "$name" "$n/$k") - SP_MARK[$name/$n/$k]))"
		done
	done
	note "$name:$line"
}

# sp_assert_delta NAME KEY OP BYTES WHAT: sp_delta NAME KEY is OP (ge, le,
# eq) BYTES.
sp_assert_delta() {
	local d
	d=$(sp_delta "$1" "$2") || exit 1
	case $3 in
	ge) assert_ge "$d" "$4" "$5 ($1/$2 grew by $d)" ;;
	le) assert_le "$d" "$4" "$5 ($1/$2 grew by $d)" ;;
	eq) assert_eq "$d" "$4" "$5 ($1/$2 grew by)" ;;
	*) fail "sp_assert_delta: bad operator '$3'" ;;
	esac
}

sp_idle_pipes() {
	local used made
	# A request's pipe goes back when it completes; its client may have
	# seen the reply a moment before.
	for _ in $(seq 20); do
		used=$(show_attr "$1" splice/pipes_in_use)
		[ "$used" = "$2" ] && break
		sleep 0.1
	done
	made=$(show_attr "$1" splice/pipes)
	assert_eq "$used" "$2" "$1/splice/pipes_in_use with no IO under way (of $made pipes made)"
	assert_le "$made" 64 "$1/splice/pipes"
	note "$1: $made pipes made, $used in use (the nodes' own) with no IO under way"
}

sp_fio_jobs() {
	local uri=$1 out=$2 spec bs off size jobs=()
	shift 2
	for spec in "$@"; do
		[[ $spec =~ ^([0-9]+[kKmM])@([0-9]+[kKmM]?)\+([0-9]+[kKmM])$ ]] || fail "sp_fio_jobs: bad spec '$spec'"
		bs=${BASH_REMATCH[1]} off=${BASH_REMATCH[2]} size=${BASH_REMATCH[3]}
		jobs+=(--name="bs$bs" --bs="$bs" --offset="$off" --size="$size")
	done
	fio_run 120 "$out" --ioengine=nbd --uri="$uri" --rw=randwrite --iodepth=16 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 "${jobs[@]}" || {
		tail -40 "$out" >&2
		fail "fio write+verify ($*) on $uri"
	}
	if grep -qiE 'verify: bad|verify failed|crc32c: verify' "$out"; then
		grep -iE verify "$out" | head -10 >&2
		fail "fio verify ($*) on $uri"
	fi
	grep -E '^ *(READ|WRITE):' "$out" | sed 's/^ */   /'
}

sp_fio_start() {
	local uri=$1 runtime=$2 out=$3
	shift 3
	# --norandommap lets a pass write a block twice (fio checks each block
	# against its last write); --serialize_overlap keeps two overlapping
	# writes from being in flight at once (NBD does not order them).
	bg fio_run $((runtime + 60)) "$out" --name=splice --ioengine=nbd --uri="$uri" \
		--rw=randwrite --bs=1m --iodepth=16 --numjobs=2 --size=16M --offset_increment=16M \
		--time_based --runtime="$runtime" --norandommap --serialize_overlap=1 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting "$@"
	FIO_PID=$BG_PID
	FIO_OUT=$out
	note "fio 1M write+verify on $uri for $runtime s (pid $FIO_PID)"
}

sp_fio_alive() {
	pid_alive "$FIO_PID" || {
		tail -20 "$FIO_OUT" >&2
		fail "fio ended before the fault was injected"
	}
}

sp_fio_wait() {
	local rc=0
	bg_wait "$FIO_PID" || rc=$?
	if [ $rc -ne 0 ] || grep -qiE 'verify: bad|verify failed|crc32c: verify|err= *[1-9]' "$FIO_OUT"; then
		tail -40 "$FIO_OUT" >&2
		fail "fio 1M write+verify: status $rc"
	fi
	grep -E '^ *(READ|WRITE):' "$FIO_OUT" | sed 's/^ */   /'
}

sp_random() {
	head -c "$2" /dev/urandom >"$1" || fail "random data into $1"
}
