#!/usr/bin/env bash
# make install / make uninstall: into a DESTDIR under the test's temp dir
# (PREFIX=/usr), every file where it belongs with its mode; the installed
# dst and dstd run (--help), and the installed dst finds the dstd beside it
# (an export started and stopped with nothing else on PATH); the man pages
# dst(1), dstd(8), dst.conf(5) format without a warning (groff -ww, man -l)
# and dst.conf(5) names every key the daemons read; the systemd units pass
# `systemd-analyze verify` (an instance of the template, dst.target, and the
# drop-in `dst enable --dry-run` writes for a storage over a local export);
# bash completion offers commands, options and configured names; `dst
# enable` where systemd is not running is refused with the systemctl lines;
# where it runs (a mount namespace with its own /run/systemd/system, and a
# stand-in systemctl that logs its arguments) `dst enable --now` writes the
# drop-in --dry-run showed and runs daemon-reload and enable, `dst disable
# --now` undoes it, and a failing systemctl fails dst enable with its
# message; make uninstall removes every file.
. "$(dirname "$0")/lib.sh"
need make groff man

DEST=$T_TMP/dest
PFX=$T_TMP/prefix
# make_in ARGS...: make in the source tree with the binaries under test,
# as they are (-o: never rebuilt here, with other flags, under other tests).
make_in() {
	make --no-print-directory -C "$ROOT" BUILD="$DST_BIN" -o "$DST_BIN/dst" -o "$DST_BIN/dstd" \
		"$@" >"$T_TMP/make.out" 2>&1 || {
		tail -20 "$T_TMP/make.out" >&2
		fail "make $* failed"
	}
}

step "make install DESTDIR=$DEST PREFIX=/usr"
make_in install DESTDIR="$DEST" PREFIX=/usr
expect="755 usr/bin/dst
755 usr/bin/dstd
644 usr/lib/systemd/system/dst.target
644 usr/lib/systemd/system/dst@.service
644 usr/share/bash-completion/completions/dst
644 usr/share/man/man1/dst.1
644 usr/share/man/man5/dst.conf.5
644 usr/share/man/man8/dstd.8"
got=$(cd "$DEST" && find . -type f -printf '%P %m\n' | sort | awk '{ print $2, $1 }')
assert_eq "$got" "$expect" "the files make install put under DESTDIR"
assert_contains "$(cat "$DEST/usr/lib/systemd/system/dst@.service")" "ExecStart=/usr/bin/dstd --foreground %i" \
	"the unit names the installed dstd"
cmp -s "$DST_BIN/dst" "$DEST/usr/bin/dst" || fail "the installed dst is not the one built"

step "the installed binaries run"
out=$("$DEST/usr/bin/dst" --help) || fail "installed dst --help"
assert_contains "$out" "enable NAME" "installed dst --help"
out=$("$DEST/usr/bin/dstd" --help) || fail "installed dstd --help"
assert_contains "$out" "usage: dstd" "installed dstd --help"
# dst runs the dstd beside it: nothing of the build on PATH, no DST_DSTD.
PORT=$(free_port)
out=$(env -u DST_DSTD PATH=/usr/bin:/bin "$DEST/usr/bin/dst" export mem:16M --name ie \
	--listen "127.0.0.1:$PORT" 2>&1) || fail "installed dst export: $out"
track_export ie
assert_eq "$(readlink "/proc/$(export_pid ie)/exe")" "$DEST/usr/bin/dstd" "the dstd the installed dst ran"
env -u DST_DSTD PATH=/usr/bin:/bin "$DEST/usr/bin/dst" stop ie >/dev/null || fail "installed dst stop"
check_log "$DST_STATE_DIR/ie.log"

step "man pages: groff -man -ww and man -l without a warning"
for m in man1/dst.1 man5/dst.conf.5 man8/dstd.8; do
	f=$DEST/usr/share/man/$m
	warn=$(groff -man -ww -z "$f" 2>&1)
	assert_eq "$warn" "" "groff warnings for $m"
	rc=0
	txt=$(MANWIDTH=80 man -l "$f" 2>"$T_TMP/man.err") || rc=$?
	assert_eq "$rc" 0 "man -l $m"
	assert_eq "$(cat "$T_TMP/man.err")" "" "man -l $m on stderr"
	assert_contains "$txt" "NAME" "man -l $m"
done
# dst.conf(5) documents every key the daemons and dst read from a config.
# (conf_get, conf_get_nth, conf_bool... and frontend_limits' get.)
keys=$(grep -rhoE '(conf_[a-z_]+|[^a-z_]get)\([^,()]+, *"[a-z-]+"' "$ROOT/src" | sed -E 's/.*"([a-z-]+)"$/\1/' | sort -u)
[ -n "$keys" ] || fail "found no config keys in the sources"
conf5=$(MANWIDTH=200 man -l "$DEST/usr/share/man/man5/dst.conf.5" 2>/dev/null)
for k in $keys; do
	case $k in loop | file-dev) continue ;; esac # NAME.loop, not a config
	grep -qE "^ {7}$k( |$)" <<<"$conf5" || fail "dst.conf(5) does not document key '$k'"
done
note "dst.conf(5) documents: $(echo $keys)"

step "dst enable --dry-run: the drop-in for storage st over local export e0"
"$DST" export mem:8M --name e0 --listen "127.0.0.1:$(free_port)" >/dev/null || fail "dst export e0"
track_export e0
E0=nbd://$(awk -F' = ' '$1 == "listen" { print $2 }' "$DST_STATE_DIR/e0.conf")
dst_ok create st --alg linear >/dev/null
dst_ok add st --remote "$E0" >/dev/null
stop_export e0
out=$(dst enable st --dry-run) || fail "dst enable st --dry-run"
assert_contains "$out" "Wants=dst@e0.service" "the drop-in for st"
assert_contains "$out" "After=dst@e0.service" "the drop-in for st"
assert_contains "$out" "Environment=DST_STATE_DIR=$DST_STATE_DIR" "the drop-in for st"
assert_contains "$out" "systemctl enable dst.target dst@st.service" "dst enable --dry-run"
out=$(dst enable e0 --dry-run) || fail "dst enable e0 --dry-run"
assert_not_contains "$out" "Wants=" "the drop-in for an export"

step "make install PREFIX=$PFX; systemd-analyze verify of the units"
make_in install PREFIX="$PFX"
if command -v systemd-analyze >/dev/null; then
	U=$T_TMP/units
	mkdir -p "$U"
	# An instance of the template (as systemctl makes it), and dst.target.
	ln -s "$PFX/lib/systemd/system/dst@.service" "$U/dst@st.service"
	ln -s "$PFX/lib/systemd/system/dst@.service" "$U/dst@e0.service"
	ln -s "$PFX/lib/systemd/system/dst.target" "$U/dst.target"
	out=$(dst enable st --dry-run) || fail "dst enable st --dry-run"
	mkdir -p "$U/dst@st.service.d"
	printf '%s\n' "$out" | sed -n '/<<EOF$/,/^EOF$/p' | sed '1d;$d' >"$U/dst@st.service.d/dst-enable.conf"
	grep -q '^\[Unit\]' "$U/dst@st.service.d/dst-enable.conf" || fail "no drop-in in dst enable --dry-run"
	rc=0
	(cd "$U" && MANPATH=$PFX/share/man systemd-analyze verify ./dst@st.service ./dst.target) \
		>"$T_TMP/verify.out" 2>&1 || rc=$?
	if [ $rc -ne 0 ] || [ -s "$T_TMP/verify.out" ]; then
		cat "$T_TMP/verify.out" >&2
		fail "systemd-analyze verify of the units (status $rc)"
	fi
	note "systemd-analyze verify: dst@st.service (with its drop-in), dst.target: clean"
	# And it does catch a broken unit (the check can fail).
	sed 's|ExecStart=.*|ExecStart=/nonexistent/dstd --foreground %i|' "$PFX/lib/systemd/system/dst@.service" >"$U/dst@bad.service"
	(cd "$U" && MANPATH=$PFX/share/man systemd-analyze verify ./dst@bad.service) >/dev/null 2>&1 &&
		fail "systemd-analyze verify passed a unit with a missing ExecStart"
else
	note "systemd-analyze is not installed: units not verified"
fi

step "bash completion"
dst_ok create comp1 --alg stripe >/dev/null
comp() { # WORDS...: the completions of the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _dst; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$PFX/share/bash-completion/completions/dst" "$PFX/bin/dst" "$@"
}
out=$(comp "") || fail "completion of commands"
for c in start stop attach enable disable show; do
	assert_contains "$out" "$c" "completion of commands"
done
assert_contains "$(comp start --f)" "--fuse" "completion of start's options"
assert_contains "$(comp start co)" "comp1" "completion of configured names"
assert_eq "$(comp create x --alg st)" "stripe" "completion of --alg"

step "dst enable / disable without systemd: refused, with the systemctl lines"
if [ -d /run/systemd/system ]; then
	note "systemd runs here: not tried (it would enable the unit)"
else
	rc=0
	out=$("$DST" enable comp1 2>&1) || rc=$?
	assert_eq "$rc" 1 "dst enable's status without systemd"
	assert_contains "$out" "systemd is not running" "dst enable without systemd"
	assert_contains "$out" "systemctl enable dst.target dst@comp1.service" "dst enable without systemd"
	rc=0
	out=$("$DST" disable comp1 --now 2>&1) || rc=$?
	assert_eq "$rc" 1 "dst disable's status without systemd"
	assert_contains "$out" "systemctl disable --now dst@comp1.service" "dst disable without systemd"
fi
run_fails "enable of an unknown name" "$DST" enable nosuch --dry-run
assert_contains "$RUN_OUT" "no storage or export named 'nosuch'" "enable of an unknown name"

step "dst enable / disable with systemd (a private /run with /run/systemd/system, a stand-in systemctl)"
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
	note "not root or no unshare: not tried"
else
	mkdir -p "$T_TMP/fakebin" "$T_TMP/etc-systemd"
	# The stand-in logs its arguments; SYSTEMCTL_FAIL makes it fail as
	# systemctl does for a unit it does not know.
	cat >"$T_TMP/fakebin/systemctl" <<'SH'
#!/bin/sh
echo "$*" >>"$SYSTEMCTL_LOG"
if [ -n "${SYSTEMCTL_FAIL:-}" ] && [ "$1" = enable ]; then
	echo "Failed to enable unit: Unit file dst@comp1.service does not exist." >&2
	exit 1
fi
SH
	chmod +x "$T_TMP/fakebin/systemctl"
	in_systemd() { # CMD...: in a mount namespace where systemd seems to run
		SYSTEMCTL_LOG=$T_TMP/systemctl.log DST_SYSTEMD_DIR=$T_TMP/etc-systemd \
			PATH=$T_TMP/fakebin:$PATH unshare -m --propagation private \
			sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec "$@"' _ "$@"
	}
	dry=$("$DST" enable st --dry-run | sed -n '/<<EOF$/,/^EOF$/p' | sed '1d;$d')
	out=$(in_systemd "$DST" enable st --now 2>&1) || fail "dst enable st --now: $out"
	assert_contains "$out" "enabled 'st' (dst@st.service), started" "dst enable's output"
	DROP=$T_TMP/etc-systemd/dst@st.service.d/dst-enable.conf
	[ -f "$DROP" ] || fail "dst enable wrote no drop-in"
	assert_eq "$(cat "$DROP")" "$dry" "the drop-in dst enable wrote (as --dry-run said)"
	assert_eq "$(cat "$T_TMP/systemctl.log")" "daemon-reload
enable --now dst.target dst@st.service" "what dst enable ran"
	: >"$T_TMP/systemctl.log"
	out=$(in_systemd "$DST" disable st --now 2>&1) || fail "dst disable st --now: $out"
	assert_eq "$(cat "$T_TMP/systemctl.log")" "disable --now dst@st.service
daemon-reload" "what dst disable ran"
	[ ! -e "$DROP" ] || fail "dst disable left the drop-in"
	rc=0
	out=$(SYSTEMCTL_FAIL=1 in_systemd "$DST" enable comp1 2>&1) || rc=$?
	assert_eq "$rc" 1 "dst enable's status when systemctl fails"
	assert_contains "$out" "systemctl enable dst.target dst@comp1.service: Failed to enable unit" "dst enable when systemctl fails"
fi

step "make uninstall"
make_in uninstall DESTDIR="$DEST" PREFIX=/usr
left=$(find "$DEST" -type f)
assert_eq "$left" "" "files left under DESTDIR after make uninstall"
make_in uninstall PREFIX="$PFX"
assert_eq "$(find "$PFX" -type f)" "" "files left under $PFX after make uninstall"
echo "PASS"
