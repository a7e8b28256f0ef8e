# shellcheck shell=bash
# lib_verify.sh - helpers for the tests of dst verify and of the checksum
# resync (test_verify_*.sh, test_resync_csum.sh); source it after lib.sh,
# lib_storage.sh and lib_mirror.sh.
#
# Legs are made to differ behind the mirror's back by writing into a leg's
# backing file (the export serves it through the page cache, so it sees the
# write at once); what verify reports is read from `dst show NAME` and from
# the `verify: mismatch at offset O length L: NODE differs from SOURCE`
# lines of NAME.log.
#
# vf_hosts / vf_leg_export put a leg on another host: its export runs in a
# network namespace (lib_netns.sh, sourced before this file) when the test
# runs as root with ip and nft, else on 127.0.0.1 like the others.

BLK=4096

# vf_data FILE SIZE SEED: FILE of SIZE bytes (a number) of pseudo-random
# data, the same for the same SEED (no 4 KiB block of it repeats).
vf_data() {
	python3 - "$1" "$2" "$3" <<'EOF' || fail "writing $1"
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(path, "wb") as f:
    left = size
    while left:
        n = min(left, 1 << 20)
        f.write(r.randbytes(n))
        left -= n
EOF
}

# vf_flip FILE OFFSET LEN: invert every byte of FILE in OFFSET..+LEN in
# place (every 4 KiB block of the range then differs from what it was).
vf_flip() {
	python3 - "$@" <<'EOF' || fail "vf_flip $*"
import os, sys
path, off, ln = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDWR)
d = os.pread(fd, ln, off)
if len(d) != ln:
    sys.exit("short read of %s at %d" % (path, off))
if os.pwrite(fd, bytes(b ^ 0xFF for b in d), off) != ln:
    sys.exit("short write of %s at %d" % (path, off))
os.close(fd)
EOF
}

# vf_scatter FILE DATASIZE PERMILLE SEED: change PERMILLE/1000 of the 4 KiB
# blocks of FILE's first DATASIZE bytes, chosen at random (seeded), each
# inverted. Prints how many blocks were changed.
vf_scatter() {
	python3 - "$@" <<'EOF' || fail "vf_scatter $*"
import os, random, sys
path, size, pm, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
nblk = size // 4096
pick = sorted(random.Random(seed).sample(range(nblk), nblk * pm // 1000))
fd = os.open(path, os.O_RDWR)
for b in pick:
    d = os.pread(fd, 4096, b * 4096)
    os.pwrite(fd, bytes(x ^ 0xFF for x in d), b * 4096)
os.close(fd)
print(len(pick))
EOF
}

# vf_merge: "OFFSET LENGTH" lines on stdin, sorted and with touching ranges
# merged (a run of blocks across a region boundary is logged as two lines).
vf_merge() {
	sort -n | awk '
		NF == 2 { if (n && $1 == o + l) { l += $2; next }
			  if (n) print o, l; o = $1; l = $2; n = 1 }
		END { if (n) print o, l }'
}

# vf_logged NAME: the mismatch ranges of NAME.log since mr_log_mark, as
# "OFFSET LENGTH NODE SOURCE [repaired]" lines.
vf_logged() {
	tail -n +$((${MR_LOG_MARK:-0} + 1)) "$DST_STATE_DIR/$1.log" |
		sed -n 's/.*verify: mismatch at offset \([0-9]*\) length \([0-9]*\): \([^ ]*\) differs from \([^ ]*\)\( (repaired)\)\{0,1\}$/\1 \2 \3 \4\5/p' |
		sed 's/ (repaired)$/ repaired/'
}

# vf_start NAME ARGS...: dst verify NAME ARGS (no --wait): must exit 0.
vf_start() {
	local name=$1
	shift
	dst_ok verify "$name" "$@" >/dev/null
	note "dst verify $name $* started"
}

# vf_wait NAME SECONDS: wait until verify/state is no longer running;
# prints it.
vf_wait() {
	local s
	for _ in $(seq $(($2 * 5))); do
		s=$(show_attr "$1" verify/state)
		[ "$s" != running ] && { echo "$s"; return 0; }
		sleep 0.2
	done
	"$DST" show "$1" 2>&1 | grep /verify/ >&2
	fail "the verify of $1 still runs after $2 s"
}

# vf_run RC NAME ARGS...: dst verify NAME ARGS --wait (limit 120 s); its
# exit status must be RC. What it printed on stdout in VF_OUT.
vf_run() {
	local want=$1 name=$2 rc=0
	shift 2
	timeout 120 "$DST" verify "$name" "$@" --wait >"$T_TMP/vf.out" 2>"$T_TMP/vf.err" || rc=$?
	check_stderr "$T_TMP/vf.err" "dst verify $name $*"
	VF_OUT=$(cat "$T_TMP/vf.out")
	note "dst verify $name $* --wait -> $rc: $VF_OUT"
	if [ "$rc" != "$want" ]; then
		tail -5 "$T_TMP/vf.err" >&2
		"$DST" show "$name" 2>&1 | grep /verify/ >&2
		log_tail "$DST_STATE_DIR/$name.log" 10 >&2
		fail "dst verify $name $* --wait exited $rc, expected $want"
	fi
	# The summary is the first line (a hint where to find the ranges may
	# follow).
	case $VF_OUT in "verify of '$name'"*) ;; *) fail "dst verify --wait: no summary line: $VF_OUT" ;; esac
}

# vf_expect_ranges WHAT WANT GOT: two lists of "OFFSET LENGTH" lines must
# be the same once merged (vf_merge).
vf_expect_ranges() {
	local want got
	want=$(vf_merge <<<"$2")
	got=$(vf_merge <<<"$3")
	if [ "$want" != "$got" ]; then
		echo "expected ranges:" >&2
		printf '   %s\n' "$want" >&2
		echo "ranges logged:" >&2
		printf '   %s\n' "$got" >&2
		fail "$1: the logged mismatch ranges are not the ones made"
	fi
}

# vf_blocks RANGES: the number of 4 KiB blocks in "OFFSET LENGTH" lines.
vf_blocks() {
	awk -v b=$BLK 'NF >= 2 { n += $2 / b } END { print n + 0 }' <<<"$1"
}

# export_attr EXPORT ATTR: an attribute of an export's `dst show` (its
# counters: io/write_bytes, io/read_bytes...).
export_attr() {
	show_attr "$1" "$2"
}

# vf_hosts TAG OCTET STORAGE: make the namespace (see lib_netns.sh's
# netns_pick) if we can; VF_NS=1 then. The cleanup stops STORAGE first.
vf_hosts() {
	VF_NS=0
	if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1; then
		VF_NS=1
		netns_pick "$1" "$2"
		# shellcheck disable=SC2064 # STORAGE now
		trap "netns_cleanup $3" EXIT
		netns_setup
	else
		note "not root, or no ip/nft: every leg runs on 127.0.0.1"
	fi
}

# vf_leg_export I NAME IMG: `dst export IMG --name NAME` as leg I: in the
# namespace on NODE_IP:10809 (if VF_NS=1; one such leg per test), else on
# 127.0.0.1. Sets LEG_EXPORT[I], LEG_IMG[I], LEG_URI[I], LEG_PORT[I].
vf_leg_export() {
	local i=$1 name=$2 img=$3 pid
	LEG_EXPORT[i]=$name LEG_IMG[i]=$img
	if [ "${VF_NS:-0}" = 1 ]; then
		track_export "$name"
		nsx "$DST" export "$img" --name "$name" --listen "$NODE_IP:10809" \
			--allow "$HOST_IP/32" || fail "dst export of $name in $NS"
		check_stderr "$T_TMP/nsx.out" "dst export in $NS"
		pid=$(export_pid "$name") || fail "no pid file for $name"
		assert_eq "$(ip netns identify "$pid")" "$NS" "the network namespace of $name's export"
		LEG_URI[i]=nbd://$NODE_IP:10809 LEG_PORT[i]=10809
		note "export $name: $img on ${LEG_URI[i]} in $NS (pid $pid)"
	else
		start_export "$name" "$img"
		LEG_URI[i]=$URI LEG_PORT[i]=$PORT
	fi
}
