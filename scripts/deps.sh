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
	libisal-dev                 # build: ISA-L's Reed-Solomon coding for alg_parity
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
	dmsetup                     # make vm-check: dm-log-writes and dm-flakey in the guest
	mount                       # dst attach, tests: losetup, mount
	logrotate                   # tests: rotating a daemon's log (SIGHUP)
	systemd groff-base man-db   # tests of make install: systemd-analyze verify, groff, man -l
	qemu-system-x86 busybox-static cpio kmod xz-utils # make vm-check: qemu, the guest's
	                            # initramfs (busybox, cpio), depmod, unxz for the modules
)

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

# The kernel the VM tests boot (tests/vm/run): Debian's, unpacked into
# $VM_CACHE, never installed as the host's boot kernel. bookworm-backports'
# 6.12 has nbd, ublk_drv, dm-log-writes and 9p as modules (the -cloud flavour
# has no 9p, so it is the plain -amd64 one); if that suite cannot be had,
# bookworm's own 6.1 (nbd, dm-log-writes, no ublk). The suite is added with
# the archive URI the system's apt sources already name for bookworm.
VM_CACHE=${DST_VM_CACHE:-/var/cache/dst-vm}
vm_kernel_ok() { [ -e "$VM_CACHE/current/ok" ]; }

vm_kernel() {
	local uri list dir meta pkg deb ver tmp
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ {u = $2} /^Suites:/ && / bookworm( |$)/ {print u; exit}')
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' \
		/etc/apt/sources.list 2>/dev/null)
	list=/etc/apt/sources.list.d/dst-bookworm-backports.sources
	if [ -n "$uri" ] && [ ! -e "$list" ]; then
		printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uri" | "${SUDO[@]}" tee "$list" >/dev/null
	fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || true
	pkg=
	for meta in linux-image-6.12-amd64 linux-image-amd64; do
		pkg=$(apt-cache depends "$meta" 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
		[ -n "$pkg" ] && break
	done
	if [ -z "$pkg" ]; then
		echo "deps.sh: no Debian kernel package found for the VM tests" >&2
		return 1
	fi
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
		{ rm -rf "$tmp"; echo "deps.sh: apt-get download $pkg failed" >&2; return 1; }
	deb=$(ls "$tmp"/*.deb)
	dir=$VM_CACHE/${pkg#linux-image-}
	"${SUDO[@]}" rm -rf "$dir"
	"${SUDO[@]}" mkdir -p "$dir" || return 1
	# (Called in an || list, where set -e does not apply: every step checked.)
	"${SUDO[@]}" dpkg-deb -x "$deb" "$dir" || { rm -rf "$tmp"; return 1; }
	rm -rf "$tmp"
	ver=$(ls "$dir/lib/modules")
	# The package's postinst would run depmod; modules.dep is not in the .deb.
	"${SUDO[@]}" /usr/sbin/depmod -b "$dir" "$ver" || return 1
	"${SUDO[@]}" touch "$dir/ok" || return 1
	"${SUDO[@]}" ln -sfn "$dir" "$VM_CACHE/current" || return 1
	echo "deps.sh: VM kernel $pkg unpacked in $dir" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
	vm_kernel_ok && exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: not root and no sudo: install them as root with apt-get" >&2
	exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps.sh: installing ${missing[*]}" >&2
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Without a kernel the VM tests skip; the rest does not need it.
vm_kernel_ok || vm_kernel || echo "deps.sh: the VM tests will be skipped" >&2
