#!/usr/bin/env bash
# Access control: --allow CIDR[:ro|:rw] (longest prefix wins), --readonly,
# refused clients (logged with their address), loopback-only default.
# Clients come from 127.0.0.1 (nbdinfo, qemu-io) and from other loopback
# addresses (the raw client binds 127.0.0.2 / 127.0.0.5).
. "$(dirname "$0")/lib.sh"
need nbdinfo qemu-io

ro_flag() { nbdinfo --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["is_read_only"])'; }

step "--allow 127.0.0.1:ro: read-only for 127.0.0.1"
start_export acl-ro mem:16M --allow 127.0.0.1:ro
assert_eq "$(ro_flag "$URI")" True "is_read_only for a :ro client"
run_fails "qemu-io write on a read-only export" qemu-io -f raw -c "write -P 1 0 4k" "$URI"
assert_contains "$RUN_OUT" "Permission denied" "qemu-io error"
run_ok "qemu-io -r read" qemu-io -r -f raw -c "read -P 0 0 64k" "$URI"
note "a client that ignores READ_ONLY gets EPERM and can go on reading"
run_ok "raw access_ro" nbd_raw --readonly 127.0.0.1 "$PORT" access_ro readonly_write
note "127.0.0.2 matches no rule: refused"
run_ok "raw refused from 127.0.0.2" nbd_raw --src 127.0.0.2 127.0.0.1 "$PORT" refused
assert_contains "$(dst show acl-ro)" "acl-ro/allow : 127.0.0.1/32:ro" "dst show allow"
stop_export acl-ro

step "--allow 127.0.0.2/32 only: 127.0.0.1 is refused and logged"
start_export acl-refuse mem:16M --allow 127.0.0.2/32
run_fails "nbdinfo from a refused address" nbdinfo "$URI"
run_fails "qemu-io from a refused address" qemu-io -r -f raw -c "read 0 4k" "$URI"
run_ok "raw refused from 127.0.0.1" nbd_raw 127.0.0.1 "$PORT" refused
run_ok "raw from 127.0.0.2 is let in read-write" nbd_raw --src 127.0.0.2 127.0.0.1 "$PORT" access_rw
grep -Eq 'client 127\.0\.0\.1:[0-9]+: refused' "$DST_STATE_DIR/acl-refuse.log" ||
	{ cat "$DST_STATE_DIR/acl-refuse.log" >&2; fail "the log does not name the refused client 127.0.0.1"; }
grep -Eq 'client 127\.0\.0\.2:[0-9]+: refused' "$DST_STATE_DIR/acl-refuse.log" &&
	fail "the log says the allowed client 127.0.0.2 was refused"
assert_ge "$(show_attr acl-refuse clients_refused)" 4 "clients_refused"
stop_export acl-refuse

step "--readonly: every client is read-only"
truncate -s 16M "$T_TMP/ro.img"
start_export acl-readonly "$T_TMP/ro.img" --readonly
assert_eq "$(ro_flag "$URI")" True "is_read_only with --readonly"
assert_eq "$(show_attr acl-readonly access)" ro "dst show access"
run_fails "qemu-io write with --readonly" qemu-io -f raw -c "write -P 1 0 4k" "$URI"
run_ok "raw write gets EPERM" nbd_raw --readonly 127.0.0.1 "$PORT" readonly_write access_ro
run_ok "qemu-io -r read" qemu-io -r -f raw -c "read -P 0 0 1M" "$URI"
stop_export acl-readonly
cmp -s "$T_TMP/ro.img" <(head -c 16777216 /dev/zero) || fail "the read-only export changed its file"

step "--readonly wins over an :rw rule"
start_export acl-ro-rw mem:16M --allow 127.0.0.1/32:rw --readonly
assert_eq "$(ro_flag "$URI")" True "is_read_only with :rw and --readonly"
run_ok "raw write gets EPERM" nbd_raw 127.0.0.1 "$PORT" access_ro
stop_export acl-ro-rw

for order in "8-first" "32-first"; do
	step "longest prefix wins ($order): 127.0.0.0/8:ro + 127.0.0.1/32:rw"
	if [ $order = 8-first ]; then
		start_export acl-lpm mem:16M --allow 127.0.0.0/8:ro --allow 127.0.0.1/32:rw
	else
		start_export acl-lpm mem:16M --allow 127.0.0.1/32:rw --allow 127.0.0.0/8:ro
	fi
	assert_eq "$(ro_flag "$URI")" False "is_read_only for 127.0.0.1 (the /32 :rw rule)"
	run_ok "qemu-io write from 127.0.0.1" qemu-io -f raw -c "write -P 0x42 0 64k" -c "read -P 0x42 0 64k" "$URI"
	run_ok "raw from 127.0.0.1 is rw" nbd_raw 127.0.0.1 "$PORT" access_rw
	run_ok "raw from 127.0.0.5 is ro (the /8 rule)" nbd_raw --src 127.0.0.5 127.0.0.1 "$PORT" access_ro
	stop_export acl-lpm
done

step "nested rules: a /24 :rw and a /32 :ro inside a /8 :ro"
start_export acl-nest mem:16M --allow 127.0.0.0/8:ro --allow 127.0.0.0/24:rw --allow 127.0.1.7/32:ro
run_ok "127.0.0.5 in the /24: rw" nbd_raw --src 127.0.0.5 127.0.0.1 "$PORT" access_rw
run_ok "127.0.1.7: ro (/32)" nbd_raw --src 127.0.1.7 127.0.0.1 "$PORT" access_ro
run_ok "127.0.1.8: ro (/8)" nbd_raw --src 127.0.1.8 127.0.0.1 "$PORT" access_ro
stop_export acl-nest

step "no --allow: loopback clients are let in read-write"
start_export acl-default mem:16M
assert_eq "$(ro_flag "$URI")" False "is_read_only by default"
run_ok "raw from 127.0.0.2" nbd_raw --src 127.0.0.2 127.0.0.1 "$PORT" access_rw
stop_export acl-default
echo "PASS"
