#!/usr/bin/env bash
# Bad input from clients, sent by the raw client (tests/tools/nbd_raw.py):
# requests that must get an NBD error while the connection stays usable
# (out of range, oversize, unknown commands and flags, writes on a read-only
# export, bad FLUSH), broken streams that must close only that connection
# (bad magic, bad flags, truncated handshakes, garbage, clients vanishing
# mid-request), and option haggling errors. Each group runs against its own
# export, so one crash does not hide the others; after each group the daemon
# must be alive, stop cleanly with dst stop, and have a clean log.
. "$(dirname "$0")/lib.sh"

BAD=()

# group TITLE NAME DISK [export options] -- [raw options] -- SCENARIOS...
group() {
	local title=$1 name=$2 disk=$3 rc=0 pid errs
	shift 3
	local eopts=() ropts=()
	while [ "$1" != -- ]; do eopts+=("$1"); shift; done
	shift
	while [ "$1" != -- ]; do ropts+=("$1"); shift; done
	shift
	step "$title"
	start_export "$name" "$disk" "${eopts[@]}"
	pid=$PID
	nbd_raw "${ropts[@]}" --name "$name" 127.0.0.1 "$PORT" "$@" || rc=1
	if ! pid_alive "$pid"; then
		echo "FAIL: the daemon of $name (pid $pid) died during this group" >&2
		rc=1
	else
		errs=$(show_attr "$name" io/errors)
		note "io/errors counted by the export: $errs"
		if "$DST" stop "$name" >/dev/null && wait_gone "$pid" 15; then
			[ ! -e "$DST_STATE_DIR/$name.pid" ] || { echo "FAIL: pid file of $name left" >&2; rc=1; }
		else
			echo "FAIL: $name (pid $pid) did not stop with dst stop" >&2
			rc=1
		fi
	fi
	T_SAN_CHECKED+=("$DST_STATE_DIR/$name.log")
	if grep -Eq "$SAN_PATTERN" "$DST_STATE_DIR/$name.log"; then
		echo "FAIL: sanitizer report in $name.log:" >&2
		san_report "$DST_STATE_DIR/$name.log" >&2
		rc=1
	fi
	if [ $rc -ne 0 ]; then
		BAD+=("$name")
		echo "---- $name.log (last lines) ----"
		grep -Ev '^ +#' "$DST_STATE_DIR/$name.log" | log_tail /dev/stdin 8
	fi
}

truncate -s 64M "$T_TMP/bad.img"

group "requests that get an error and keep the connection usable (mem:)" \
	bad-req mem:64M -- -- \
	oor_read oor_read_structured oor_write oversize_read oversize_write max_size_io \
	zero_length unknown_command unknown_flags flush_with_range stream_sync slow_drip \
	pipelined other_commands disc_with_inflight bad_request_magic garbage_transmission

group "the same on a file export" \
	bad-file "$T_TMP/bad.img" -- -- \
	oor_read oor_write oversize_write unknown_flags stream_sync slow_drip pipelined \
	other_commands bad_request_magic

group "read-only export: writes get EPERM, payload skipped" \
	bad-ro mem:64M --readonly -- --readonly -- \
	readonly_write oor_read oversize_read unknown_flags zero_length flush_with_range other_commands

group "handshake: bad magic, bad flags, truncated, garbage, option errors" \
	bad-hs mem:64M -- -- \
	bad_client_flags bad_option_magic truncated_handshake garbage_handshake \
	unknown_option list_with_data go_unknown_export malformed_go meta_before_structured \
	huge_option export_name_opt abort options_burst garbage_storm many_clients

group "clients vanishing in the middle of a write payload" \
	bad-vanish1 mem:64M -- -- vanish_mid_payload

group "clients vanishing with replies still queued" \
	bad-vanish2 mem:64M -- -- vanish_with_inflight

group "clients vanishing, file export" \
	bad-vanish3 "$T_TMP/bad.img" -- -- vanish_mid_payload vanish_with_inflight

[ ${#BAD[@]} -eq 0 ] || fail "groups with failures: ${BAD[*]}"
echo "PASS"
