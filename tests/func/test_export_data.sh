#!/usr/bin/env bash
# Data integrity through the export: nbdcopy round trip with checksums,
# qemu-img compare, qemu-io patterns (write -P, read -P, discard, write -z)
# on mem: and file exports, fio with crc32c verify at QD32 x 4 jobs, and two
# clients at once on disjoint regions.
. "$(dirname "$0")/lib.sh"
need nbdcopy qemu-img qemu-io fio

MiB=1048576

step "nbdcopy round trip of 48 MiB of random data through a file export"
head -c $((48 * MiB)) /dev/urandom >"$T_TMP/src.bin"
truncate -s 48M "$T_TMP/backing.img"
start_export data-file "$T_TMP/backing.img"
FILE_URI=$URI
run_ok "nbdcopy to the export" nbdcopy "$T_TMP/src.bin" "$FILE_URI"
run_ok "nbdcopy from the export" nbdcopy "$FILE_URI" "$T_TMP/back.bin"
src_sum=$(sha256sum <"$T_TMP/src.bin" | cut -d' ' -f1)
assert_eq "$(sha256sum <"$T_TMP/back.bin" | cut -d' ' -f1)" "$src_sum" "sha256 of the data read back"
assert_eq "$(sha256sum <"$T_TMP/backing.img" | cut -d' ' -f1)" "$src_sum" "sha256 of the backing file"

step "qemu-img compare: source file against the export"
run_ok "qemu-img compare" qemu-img compare -f raw -F raw "$T_TMP/src.bin" "$FILE_URI"
# And it does tell a difference (so the check above means something).
printf 'X' | dd of="$T_TMP/src.bin" bs=1 seek=$((20 * MiB + 7)) conv=notrunc status=none
run_fails "qemu-img compare of different data" qemu-img compare -f raw -F raw "$T_TMP/src.bin" "$FILE_URI"
assert_contains "$RUN_OUT" "mismatch at offset $((20 * MiB))" "qemu-img compare message"

step "nbdcopy with several connections and requests in flight"
run_ok "nbdcopy -C 4 --requests 32" nbdcopy -C 4 --requests 32 "$FILE_URI" "$T_TMP/back2.bin"
assert_eq "$(sha256sum <"$T_TMP/back2.bin" | cut -d' ' -f1)" "$src_sum" "sha256 after a multi-connection copy"

start_export data-mem mem:128M
MEM_URI=$URI

for uri in "$MEM_URI" "$FILE_URI"; do
	step "qemu-io patterns on $uri"
	run_ok "write/read patterns" qemu-io -f raw \
		-c "write -P 0xab 0 1M" -c "read -P 0xab 0 1M" \
		-c "write -P 0x11 1000 3333" -c "read -P 0x11 1000 3333" \
		-c "read -P 0xab 0 1000" -c "read -P 0xab 4333 1044243" \
		-c "write -P 0x22 $((40 * MiB - 512)) 1024" -c "read -P 0x22 $((40 * MiB - 512)) 1024" \
		"$uri"
	run_ok "discard reads back zeroes" qemu-io -f raw \
		-c "discard 0 512k" -c "read -P 0 0 512k" -c "read -P 0xab 512k 512k" "$uri"
	run_ok "write -z reads back zeroes" qemu-io -f raw \
		-c "write -z 512k 256k" -c "read -P 0 512k 256k" -c "read -P 0xab 768k 256k" \
		-c "write -z -u 768k 256k" -c "read -P 0 0 1M" "$uri"
	run_ok "write -P over zeroes" qemu-io -f raw \
		-c "write -P 0x5c 4k 8k" -c "read -P 0 0 4k" -c "read -P 0x5c 4k 8k" -c "read -P 0 12k 4k" "$uri"
	# A wrong pattern must be noticed: the checks above can fail.
	run_fails "read -P with the wrong pattern" qemu-io -f raw -c "read -P 0x5d 4k 8k" "$uri"
done

step "write -f (FUA) and read-back through the file export"
run_ok "FUA write" qemu-io -f raw -c "write -f -P 0x3c 2M 1M" -c "read -P 0x3c 2M 1M" "$FILE_URI"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read()[2 << 20:3 << 20]; sys.exit(d != b"\x3c" * (1 << 20))' \
	"$T_TMP/backing.img" || fail "FUA-written data is not in the backing file"

# to_bytes SIZE: 4k, 16M... in bytes.
to_bytes() { numfmt --from=iec "$(echo "$1" | tr 'kmg' 'KMG')"; }

# fio_verify URI JOBS SIZE_PER_JOB [extra fio options]: randwrite with
# crc32c verify, each job in its own region (offset_increment). Every job's
# whole region must be written: the total of writes is checked.
fio_verify() {
	local uri=$1 jobs=$2 size=$3 out bs=4k a want got
	shift 3
	for a in "$@"; do case $a in --bs=*) bs=${a#--bs=} ;; esac; done
	want=$((jobs * $(to_bytes "$size") / $(to_bytes "$bs")))
	out=$(mktemp "$T_TMP/fio.XXXXXX")
	if ! fio_run 120 "$out" --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
		--iodepth=32 --numjobs="$jobs" --size="$size" --offset_increment="$size" \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting "$@"; then
		tail -30 "$out" >&2
		return 1
	fi
	got=$(sed -n 's/.*issued rwts: total=[0-9]*,\([0-9]*\),.*/\1/p' "$out")
	if [ "$got" != "$want" ]; then
		tail -30 "$out" >&2
		echo "fio issued $got writes, expected $want" >&2
		return 1
	fi
	grep -E '^ *(READ|WRITE):' "$out" | sed 's/^ */   /'
	return 0
}

for uri in "$MEM_URI" "$FILE_URI"; do
	step "fio randwrite + crc32c verify, 4 jobs x QD32, on $uri"
	fio_verify "$uri" 4 12M || fail "fio verify on $uri"
	step "fio verify_only from new connections: the data stayed"
	fio_verify "$uri" 4 12M --verify_only=1 || fail "fio verify_only on $uri"
done
errs=$(show_attr data-mem io/errors)
assert_eq "$errs" 0 "io/errors on the mem export after fio"
assert_ge "$(show_attr data-mem io/writes)" 8192 "io/writes counted on the mem export"

step "two clients at once: two fio processes on disjoint regions, both verify"
bg fio_verify "$MEM_URI" 2 16M --offset=0 --bs=64k
p1=$BG_PID
bg fio_verify "$MEM_URI" 2 16M --offset=64M --bs=16k
p2=$BG_PID
bg_wait $p1 || fail "first fio of the pair failed"
bg_wait $p2 || fail "second fio of the pair failed"

step "two qemu-io processes in parallel on disjoint regions"
bg qemu-io -f raw -c "write -P 0x61 96M 8M" -c "read -P 0x61 96M 8M" "$MEM_URI"
p1=$BG_PID
bg qemu-io -f raw -c "write -P 0x62 104M 8M" -c "read -P 0x62 104M 8M" "$MEM_URI"
p2=$BG_PID
bg_wait $p1 || fail "first qemu-io of the pair failed"
bg_wait $p2 || fail "second qemu-io of the pair failed"
run_ok "both regions intact afterwards" qemu-io -f raw -c "read -P 0x61 96M 8M" -c "read -P 0x62 104M 8M" "$MEM_URI"

assert_eq "$(show_attr data-mem clients)" 0 "clients left connected"
stop_export data-mem
stop_export data-file
echo "PASS"
