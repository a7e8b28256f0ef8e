#!/usr/bin/env bash
# bench/tls.sh - TLS benchmarks: dst export --tls require against
# nbdkit --tls=require over the same memory backing, on loopback TCP.
#
#   (a) PSK: nbdcopy over one connection (fio's nbd engine cannot be given
#       a PSK file: libnbd refuses local files in URIs it did not allow),
#       writing a random file into the export and reading it back to null:.
#   (b) X.509: fio's nbd engine with the four rows of bench/run.sh. libnbd
#       finds the client certificates in $HOME/.pki/libnbd, so fio only
#       needs nbds://HOST:PORT; HOME points into the scratch dir for it.
#       dst without TLS (dst-plain) is measured alongside: the cost of TLS.
#
# Environment: BENCH_RUNTIME (10 s per fio run), BENCH_REPEAT (1; the median
# is shown), BENCH_SIZE (1G memory disks), BENCH_COPY (512M copied in (a)),
# BENCH_OUT (also write the tables there), DST_BUILD (build).
# Servers listen on 127.0.0.1 only and are stopped by PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST="$ROOT/${DST_BUILD:-build}/dst"
RUNTIME=${BENCH_RUNTIME:-10}
REPEAT=${BENCH_REPEAT:-1}
SIZE=${BENCH_SIZE:-1G}
COPY=${BENCH_COPY:-512M}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
for tool in fio nbdkit nbdcopy nbdinfo psktool certtool ss python3; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-bench-tls.XXXXXX")
export DST_STATE_DIR=$WORK/state
mkdir -p "$DST_STATE_DIR" "$WORK/pki" "$WORK/home/.pki/libnbd" "$WORK/res"
# The servers start in subshells (read ... < <(start_dst ...)), so the trap
# finds them by their pid files: dst's in the state dir, nbdkit's in $WORK.
cleanup() {
	local rc=$? f
	set +e
	for f in "$DST_STATE_DIR"/*.pid; do
		[ -e "$f" ] && "$DST" stop "$(basename "$f" .pid)" --force --timeout 5 >/dev/null 2>&1
	done
	for f in "$WORK"/*.pid; do
		[ -s "$f" ] && kill_pid "$(cat "$f")"
	done
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

# ---- keys ----
psktool -u bench -p "$WORK/keys.psk" >/dev/null 2>&1
PKI=$WORK/pki
ct() { certtool "$@" >/dev/null 2>&1 || die "certtool $*"; }
printf 'cn = bench CA\nca\ncert_signing_key\n' >"$PKI/ca.info"
printf '%s\n' 'cn = localhost' 'ip_address = 127.0.0.1' tls_www_server encryption_key \
	signing_key >"$PKI/server.info"
printf '%s\n' 'cn = bench-client' tls_www_client encryption_key signing_key >"$PKI/client.info"
ct --generate-privkey --key-type=ecdsa --outfile "$PKI/ca-key.pem"
ct --generate-self-signed --load-privkey "$PKI/ca-key.pem" --template "$PKI/ca.info" \
	--outfile "$PKI/ca-cert.pem"
for who in server client; do
	ct --generate-privkey --key-type=ecdsa --outfile "$PKI/$who-key.pem"
	ct --generate-certificate --load-ca-certificate "$PKI/ca-cert.pem" \
		--load-ca-privkey "$PKI/ca-key.pem" --load-privkey "$PKI/$who-key.pem" \
		--template "$PKI/$who.info" --outfile "$PKI/$who-cert.pem"
done
cp "$PKI/ca-cert.pem" "$PKI/client-cert.pem" "$PKI/client-key.pem" "$WORK/home/.pki/libnbd/"

# ---- servers: each prints "PID PORT" ----
wait_up() { # wait_up URI PID
	for _ in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		HOME=$WORK/home nbdinfo --size "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
start_dst() { # start_dst NAME [TLS OPTIONS...]
	local name=$1 port pid
	shift
	port=$(free_port)
	"$DST" export "mem:$SIZE" --name "$name" --listen "127.0.0.1:$port" "$@" >/dev/null ||
		die "dst export $name failed"
	pid=$(cat "$DST_STATE_DIR/$name.pid")
	echo "$pid $port"
}
start_nbdkit() { # start_nbdkit NAME [TLS OPTIONS...]
	local name=$1 port
	shift
	port=$(free_port)
	nbdkit -i 127.0.0.1 -p "$port" -P "$WORK/$name.pid" "$@" memory "$SIZE" ||
		die "nbdkit $name failed"
	for _ in $(seq 50); do [ -s "$WORK/$name.pid" ] && break; sleep 0.1; done
	echo "$(cat "$WORK/$name.pid") $port"
}

# ---- (a) PSK, nbdcopy ----
note "(a) PSK: nbdcopy of $COPY, one connection, $REPEAT run(s) each"
head -c "$COPY" /dev/urandom >"$WORK/data.img"
read -r DPID DPORT < <(start_dst psk-dst --tls require --tls-psk "$WORK/keys.psk")
read -r KPID KPORT < <(start_nbdkit psk-nbdkit --tls=require --tls-psk="$WORK/keys.psk")
psk_uri() { echo "nbds://bench@127.0.0.1:$1/?tls-psk-file=$WORK/keys.psk"; }
wait_up "$(psk_uri "$DPORT")" "$DPID" || die "dst (PSK) does not answer"
wait_up "$(psk_uri "$KPORT")" "$KPID" || die "nbdkit (PSK) does not answer"
copy_mibs() { # copy_mibs SRC DST -> MiB/s
	local t0 t1
	t0=$(date +%s.%N)
	nbdcopy --connections=1 "$1" "$2" || die "nbdcopy $1 $2"
	t1=$(date +%s.%N)
	awk -v b="$(stat -c %s "$WORK/data.img")" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%.1f", b / 1048576 / (t1 - t0) }'
}
for _ in $(seq "$REPEAT"); do
	for s in dst nbdkit; do
		port=$DPORT
		[ $s = nbdkit ] && port=$KPORT
		w=$(copy_mibs "$WORK/data.img" "$(psk_uri "$port")")
		r=$(copy_mibs "$(psk_uri "$port")" null:)
		echo "$w" >>"$WORK/res/psk-$s.write"
		echo "$r" >>"$WORK/res/psk-$s.read"
		note "  $s: write $w MiB/s, read $r MiB/s"
	done
done
"$DST" stop psk-dst >/dev/null
kill "$KPID"

# ---- (b) X.509, fio ----
note "(b) X.509: fio nbd engine, ${RUNTIME}s per run, $REPEAT run(s) each"
read -r DPID DPORT < <(start_dst x509-dst --tls require --tls-certs "$PKI")
read -r KPID KPORT < <(start_nbdkit x509-nbdkit --tls=require --tls-certificates="$PKI")
read -r PPID_ PPORT < <(start_dst plain-dst)
declare -A URI=([dst]="nbds://127.0.0.1:$DPORT/" [nbdkit]="nbds://127.0.0.1:$KPORT/"
	[dst-plain]="nbd://127.0.0.1:$PPORT/")
wait_up "${URI[dst]}" "$DPID" || die "dst (X.509) does not answer"
wait_up "${URI[nbdkit]}" "$KPID" || die "nbdkit (X.509) does not answer"
wait_up "${URI[dst-plain]}" "$PPID_" || die "dst (plain) does not answer"
ROWS=(seqread seqwrite randread randwrite)
declare -A NAME=([seqread]="seq read 1M QD16" [seqwrite]="seq write 1M QD16"
	[randread]="rand read 4K QD32" [randwrite]="rand write 4K QD32")
declare -A ARGS=([seqread]="--rw=read --bs=1M --iodepth=16"
	[seqwrite]="--rw=write --bs=1M --iodepth=16"
	[randread]="--rw=randread --bs=4k --iodepth=32 --norandommap"
	[randwrite]="--rw=randwrite --bs=4k --iodepth=32 --norandommap")
declare -A UNIT=([seqread]=MiB/s [seqwrite]=MiB/s [randread]=IOPS [randwrite]=IOPS)
for s in dst nbdkit dst-plain; do
	HOME=$WORK/home fio --name=prefill --ioengine=nbd --uri="${URI[$s]}" --rw=write --bs=1M \
		--iodepth=16 >/dev/null 2>&1 || die "prefill of $s failed"
done
for row in "${ROWS[@]}"; do
	for _ in $(seq "$REPEAT"); do
		for s in dst nbdkit dst-plain; do
			# shellcheck disable=SC2086 # the row's options are words
			HOME=$WORK/home fio --name="$row" --ioengine=nbd --uri="${URI[$s]}" ${ARGS[$row]} \
				--numjobs=1 --time_based --runtime="$RUNTIME" --output-format=json \
				--output="$WORK/fio.json" >/dev/null 2>&1 || die "fio $row against $s failed"
			v=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r, w = j["read"], j["write"]
print(r["iops"] + w["iops"] if sys.argv[2] == "IOPS" else (r["bw_bytes"] + w["bw_bytes"]) / 1048576)' \
				"$WORK/fio.json" "${UNIT[$row]}")
			echo "$v" >>"$WORK/res/x509-$s.$row"
			note "  $s ${NAME[$row]}: $v ${UNIT[$row]}"
		done
	done
done

fmt() { # fmt VALUE UNIT
	if [ "$2" = IOPS ]; then awk -v v="$1" 'BEGIN { printf "%.1fk", v / 1000 }'; else awk -v v="$1" 'BEGIN { printf "%.0f", v }'; fi
}
{
	echo
	echo "## dst TLS benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Loopback TCP, memory backing ($SIZE), $(nproc) cpus, kernel $(uname -r), median of $REPEAT;" \
		"GnuTLS $(pkg-config --modversion gnutls 2>/dev/null || echo '?'), nbdkit $(nbdkit --version | cut -d' ' -f2)."
	echo
	echo "### (a) PSK, nbdcopy of $COPY over one connection (MiB/s)"
	echo
	echo "| row | dst | nbdkit | dst/nbdkit |"
	echo "|---|---:|---:|---:|"
	for dir in write read; do
		d=$(median <"$WORK/res/psk-dst.$dir")
		k=$(median <"$WORK/res/psk-nbdkit.$dir")
		echo "| nbdcopy $dir | $(fmt "$d" MiB/s) | $(fmt "$k" MiB/s) | $(ratio "$d" "$k") |"
	done
	echo
	echo "### (b) X.509, fio nbd engine, ${RUNTIME} s runs (MiB/s or IOPS)"
	echo
	echo "| row | dst | nbdkit | dst/nbdkit | dst without TLS | TLS/plain (dst) |"
	echo "|---|---:|---:|---:|---:|---:|"
	for row in "${ROWS[@]}"; do
		d=$(median <"$WORK/res/x509-dst.$row")
		k=$(median <"$WORK/res/x509-nbdkit.$row")
		p=$(median <"$WORK/res/x509-dst-plain.$row")
		echo "| ${NAME[$row]} | $(fmt "$d" "${UNIT[$row]}") | $(fmt "$k" "${UNIT[$row]}") | $(ratio "$d" "$k") | $(fmt "$p" "${UNIT[$row]}") | $(ratio "$d" "$p") |"
	done
} | tee ${BENCH_OUT:+"$BENCH_OUT"}
