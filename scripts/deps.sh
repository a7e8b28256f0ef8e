#!/bin/bash
# deps.sh - install the Debian packages dst's build, tests, demo and benchmarks
# need, but only those that are missing. Quiet and quick when all are there.
#
#   scripts/deps.sh            (make deps; make check and make demo call it)
#
# Runs apt-get as root, or through sudo otherwise. Debian 12 package names.
set -euo pipefail

PKGS=(
	build-essential pkg-config  # compiler, make, pkg-config
	libnbd-dev liburing-dev     # build: NBD client library, io_uring
	libgnutls28-dev             # build: TLS (NBD_OPT_STARTTLS)
	libmicrohttpd-dev           # build: dstd serves its metrics over HTTP
	libfuse3-dev fuse3          # FUSE frontend: libfuse3 and fusermount3
	libcmocka-dev               # unit tests
	clang-format                # make format / format-check
	clang libclang-rt-14-dev    # make fuzz: clang with libFuzzer and its sanitizers
	libnbd-bin python3-libnbd   # tests: nbdinfo, nbdcopy, nbdsh; bench: nbdfuse
	nbdkit qemu-utils fio       # tests and benchmarks: peer servers, qemu-img/qemu-io, fio
	python3                     # test helpers
	python3-prometheus-client   # tests: parse the metrics as Prometheus does
	gnutls-bin                  # tests: psktool and certtool make TLS keys
	nftables iproute2           # tests: network faults (nft, ip, tc)
	procps e2fsprogs util-linux # tests: ps, mkfs.ext4/fsck.ext4, unshare, fallocate, blkdiscard
	mount                       # dst attach, tests: losetup, mount
	logrotate                   # tests: rotating a daemon's log (SIGHUP)
	systemd groff-base man-db   # tests of make install: systemd-analyze verify, groff, man -l
)

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: not root and no sudo: install them as root with apt-get" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"
