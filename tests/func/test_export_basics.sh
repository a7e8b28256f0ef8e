#!/usr/bin/env bash
# Export node basics: what nbdinfo sees (size, flags, block sizes, --list,
# --map on a sparse file), dst show (tree and JSON), default names, dst stop
# and dst start.
. "$(dirname "$0")/lib.sh"
need nbdinfo qemu-io

MiB=1048576

# json_get JSON PYEXPR: evaluate PYEXPR with j bound to the parsed JSON.
json_get() {
	python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" ||
		fail "cannot evaluate $2 on JSON"
}

step "mem:64M export: nbdinfo --json shows size, flags and block sizes"
start_export basics mem:64M
MEM_URI=$URI MEM_PID=$PID
info=$(nbdinfo --json "$MEM_URI") || fail "nbdinfo $MEM_URI failed"
e='j["exports"][0]'
assert_eq "$(json_get "$info" "${e}[\"export-name\"]")" basics "export name"
assert_eq "$(json_get "$info" "${e}[\"export-size\"]")" $((64 * MiB)) "export size"
assert_eq "$(json_get "$info" 'j["structured"]')" True "structured replies"
for f in can_flush can_fua can_trim can_zero can_fast_zero can_multi_conn can_cache can_df; do
	assert_eq "$(json_get "$info" "${e}[\"$f\"]")" True "$f"
done
assert_eq "$(json_get "$info" "${e}[\"is_read_only\"]")" False "is_read_only"
assert_eq "$(json_get "$info" "${e}[\"block_size_minimum\"]")" 1 "block_size_minimum"
assert_eq "$(json_get "$info" "${e}[\"block_size_preferred\"]")" 4096 "block_size_preferred"
assert_eq "$(json_get "$info" "${e}[\"block_size_maximum\"]")" 67108864 "block_size_maximum (64 MiB)"
assert_eq "$(json_get "$info" "\"base:allocation\" in ${e}[\"contexts\"]")" True "base:allocation context"
assert_eq "$(nbdinfo --size "$MEM_URI")" $((64 * MiB)) "nbdinfo --size"
nbdinfo --can flush "$MEM_URI" || fail "nbdinfo --can flush says no"
nbdinfo --can multi-conn "$MEM_URI" || fail "nbdinfo --can multi-conn says no"
nbdinfo --is read-only "$MEM_URI" && fail "nbdinfo --is read-only says yes on a read-write export"

step "nbdinfo --list names the export and its disk"
list=$(nbdinfo --list "$MEM_URI") || fail "nbdinfo --list failed"
assert_contains "$list" 'export="basics"' "nbdinfo --list"
assert_contains "$list" "M: mem:64M" "nbdinfo --list description"

step "mem: --map is one hole before writing, data exactly where written after"
map=$(nbdinfo --map "$MEM_URI") || fail "nbdinfo --map failed"
note "$map"
assert_eq "$(echo "$map" | awk '{print $1, $2, $3}')" "0 $((64 * MiB)) 3" "map of an unwritten mem disk"
run_ok "qemu-io write" qemu-io -f raw -c "write -P 0xab 4M 1M" "$MEM_URI"
map=$(nbdinfo --map "$MEM_URI") || fail "nbdinfo --map failed"
note "$map"
assert_eq "$(echo "$map" | awk '{printf "%s %s %s;", $1, $2, $3}')" \
	"0 $((4 * MiB)) 3;$((4 * MiB)) $MiB 0;$((5 * MiB)) $((59 * MiB)) 3;" "map after writing 1M at 4M"

step "dst show: the tree has the uri and live counters"
show=$(dst show basics) || fail "dst show basics failed"
assert_contains "$show" "basics/uri : $MEM_URI" "dst show uri"
assert_contains "$show" "basics/state : running" "dst show state"
assert_contains "$show" "basics/bytes : $((64 * MiB))" "dst show bytes"
wb=$(show_attr basics io/write_bytes)
assert_ge "$wb" "$MiB" "io/write_bytes after a 1M write"
assert_ge "$(show_attr basics io/writes)" 1 "io/writes"
assert_ge "$(show_attr basics io/reads)" 0 "io/reads"
assert_ge "$(show_attr basics clients_total)" 4 "clients_total after 4 clients"
assert_eq "$(show_attr basics io/errors)" 0 "io/errors"
assert_eq "$(show_attr basics io/inflight)" 0 "io/inflight when idle"

step "dst show --json is valid JSON with the same data"
json=$(dst show basics --json) || fail "dst show --json failed"
printf '%s\n' "$json" | python3 -m json.tool >/dev/null || { printf '%s\n' "$json" >&2; fail "dst show --json is not valid JSON"; }
assert_eq "$(json_get "$json" 'j["basics"]["uri"]')" "['$MEM_URI']" "JSON uri (a list, as uri may repeat)"
assert_eq "$(json_get "$json" 'j["basics"]["io"]["write_bytes"]')" "$wb" "JSON io/write_bytes"
assert_eq "$(json_get "$json" 'type(j["basics"]["io"]["reads"]).__name__')" int "JSON counters are numbers"
assert_eq "$(json_get "$json" 'j["basics"]["mem"]["buffer_budget"] > 0')" True "JSON mem/buffer_budget"

step "sparse file export: --map follows the file's holes; discard punches one"
truncate -s 64M "$T_TMP/sparse.img"
start_export sparse "$T_TMP/sparse.img"
FILE_URI=$URI
map=$(nbdinfo --map "$FILE_URI") || fail "nbdinfo --map failed"
note "$map"
assert_eq "$(echo "$map" | awk '{print $1, $2, $3}')" "0 $((64 * MiB)) 3" "map of an empty sparse file"
run_ok "qemu-io write" qemu-io -f raw -c "write -P 0xcd 4M 1M" "$FILE_URI"
map=$(nbdinfo --map "$FILE_URI") || fail "nbdinfo --map failed"
note "$map"
assert_eq "$(echo "$map" | awk '{printf "%s %s %s;", $1, $2, $3}')" \
	"0 $((4 * MiB)) 3;$((4 * MiB)) $MiB 0;$((5 * MiB)) $((59 * MiB)) 3;" "map after writing 1M at 4M"
# The same answer as the file system gives.
fsmap=$(python3 - "$T_TMP/sparse.img" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size; off = 0; out = []
while off < size:
    try: d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError: d = size
    if d > off: out.append("%d %d 3" % (off, d - off))
    if d >= size: break
    h = os.lseek(fd, d, os.SEEK_HOLE); out.append("%d %d 0" % (d, h - d)); off = h
print(";".join(out) + ";")
EOF
)
assert_eq "$(echo "$map" | awk '{printf "%s %s %s;", $1, $2, $3}')" "$fsmap" "map against SEEK_DATA/SEEK_HOLE"
run_ok "qemu-io discard" qemu-io -f raw -c "discard 4M 1M" "$FILE_URI"
map=$(nbdinfo --map "$FILE_URI") || fail "nbdinfo --map failed"
assert_eq "$(echo "$map" | awk '{print $1, $2, $3}')" "0 $((64 * MiB)) 3" "map after discarding the data"
[ "$(du -k "$T_TMP/sparse.img" | cut -f1)" -lt 64 ] || fail "discard did not free the blocks of the file"

step "unix socket: --socket serves nbd+unix://"
sock=$T_TMP/u.sock
dst_ok export mem:8M --name unixexp --socket "$sock" >/dev/null
track_export unixexp
assert_eq "$(nbdinfo --size "nbd+unix:///?socket=$sock")" $((8 * MiB)) "size over the unix socket"
assert_contains "$(dst show unixexp)" "unixexp/uri : nbd+unix:///?socket=$sock" "unix uri in dst show"
stop_export unixexp
[ ! -e "$sock" ] || fail "socket $sock left after stop"

step "two --listen and a --socket: three URIs in dst show, each serves"
pa=$(free_port)
pb=$(free_port)
while [ "$pb" = "$pa" ]; do pb=$(free_port); done
dst_ok export mem:8M --name multi --listen "127.0.0.1:$pa" --listen "127.0.0.1:$pb" --socket "$T_TMP/m.sock" \
	--allow 127.0.0.0/8:ro --allow 127.0.0.1:rw >/dev/null
track_export multi
json=$(dst show multi --json) || fail "dst show multi --json failed"
assert_eq "$(json_get "$json" 'j["multi"]["uri"]')" \
	"['nbd://127.0.0.1:$pa', 'nbd://127.0.0.1:$pb', 'nbd+unix:///?socket=$T_TMP/m.sock']" "JSON uri list"
assert_eq "$(json_get "$json" 'j["multi"]["allow"]')" "['127.0.0.0/8:ro', '127.0.0.1/32:rw']" "JSON allow list"
for u in "nbd://127.0.0.1:$pa" "nbd://127.0.0.1:$pb" "nbd+unix:///?socket=$T_TMP/m.sock"; do
	assert_eq "$(nbdinfo --size "$u")" $((8 * MiB)) "size through $u"
done
stop_export multi

step "default names: mem-PORT and disk0.img-PORT"
p1=$(free_port)
out=$(dst export mem:16M --listen "127.0.0.1:$p1") || fail "dst export mem:16M failed"
track_export "mem-$p1"
assert_contains "$out" "'mem-$p1'" "dst export output names the export"
assert_contains "$out" "nbd://127.0.0.1:$p1" "dst export output gives the uri"
[ -s "$DST_STATE_DIR/mem-$p1.pid" ] || fail "no pid file mem-$p1.pid"
[ -f "$DST_STATE_DIR/mem-$p1.conf" ] || fail "no config mem-$p1.conf"
assert_eq "$(nbdinfo --json "nbd://127.0.0.1:$p1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["export-name"])')" \
	"mem-$p1" "export name seen by nbdinfo"
truncate -s 8M "$T_TMP/disk0.img"
p2=$(free_port)
out=$(dst export "$T_TMP/disk0.img" --listen "127.0.0.1:$p2") || fail "dst export disk0.img failed"
track_export "disk0.img-$p2"
assert_contains "$out" "'disk0.img-$p2'" "dst export output names the export"
assert_contains "$(dst show "disk0.img-$p2")" "disk0.img-$p2/disk : L: $T_TMP/disk0.img" "dst show disk"
assert_contains "$(dst show)" "mem-$p1/uri : nbd://127.0.0.1:$p1" "dst show (all) lists mem-$p1"

step "exporting under a running name is refused"
run_fails "second export with the same name" "$DST" export mem:16M --listen "127.0.0.1:$p1"
assert_contains "$RUN_OUT" "already running" "error message"

step "dst stop: the daemon exits, its pid file goes, the port closes"
stop_export "mem-$p1"
nbdinfo "nbd://127.0.0.1:$p1" >/dev/null 2>&1 && fail "nbdinfo still reaches mem-$p1 after dst stop"
assert_contains "$(dst show "mem-$p1")" "mem-$p1/state : stopped" "dst show of a stopped export"
run_fails "dst stop of a stopped export" "$DST" stop "mem-$p1"
assert_contains "$RUN_OUT" "not running" "error message"
run_fails "dst stop of an unknown name" "$DST" stop no-such-export
assert_contains "$RUN_OUT" "no storage or export named 'no-such-export'" "error message"

step "dst start brings a file export back with its data"
run_ok "qemu-io write" qemu-io -f raw -c "write -P 0x77 8M 1M" "$FILE_URI"
stop_export sparse
dst_ok start sparse >/dev/null
track_export sparse
spid=$(export_pid sparse) && pid_alive "$spid" || fail "sparse not running after dst start"
run_ok "data is still there after restart" qemu-io -f raw -c "read -P 0x77 8M 1M" "$FILE_URI"
stop_export sparse
stop_export "disk0.img-$p2"
stop_export basics
pid_alive "$MEM_PID" && fail "pid $MEM_PID still alive"
echo "PASS"
