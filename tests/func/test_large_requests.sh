#!/usr/bin/env bash
# Requests up to 64 MiB (the maximum block size dst advertises, as nbdkit
# does) are served, larger ones answered EINVAL (the NBD spec). A 64 MiB
# request goes to the device in pieces of one buffer; the client sees one
# reply, in order. Checked with python3-libnbd on an export and on a storage
# (alg_linear over two exports, so a request also crosses a node boundary):
#  - the advertised maximum block size is 64 MiB;
#  - 64 MiB writes and reads (random data, compared), alone and with small
#    reads and writes in flight around them on the same connection;
#  - structured replies (libnbd) and simple ones (tests/tools/nbd_raw.py:
#    64 MiB round trip, each MiB numbered): a read's reply leaves piece by
#    piece;
#  - the same over TLS;
#  - over 64 MiB, read and write (tests/tools/nbd_raw.py: libnbd refuses to
#    send them): EINVAL, the write's payload skipped, the connection usable.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
need nbdcopy psktool
need_nbdpy

# big URI: the checks above, on one connection per reply style.
big() {
	local out rc=0
	out=$("$NBDPY" - "$1" 2>&1 <<'EOF'
import os, sys, nbd
uri = sys.argv[1]
M = 1 << 20
h = nbd.NBD()
h.set_uri_allow_local_file(True)  # tls-psk-file=
h.connect_uri(uri)
assert h.get_structured_replies_negotiated()
mx = h.get_block_size(nbd.SIZE_MAXIMUM)
assert mx == 64 * M, f"maximum block size {mx}"
size = h.get_size()
off = 8 * M + 4096
data = os.urandom(64 * M)
h.pwrite(data, off)
# Small requests in flight before and after a large read, and a large
# write among small ones: each answer carries its own data.
small = {o: os.urandom(4096) for o in (0, 4 * M, size - 4096)}
for o, d in small.items():
    h.pwrite(d, o)
before, after = {}, {}
for o in small:
    before[o] = nbd.Buffer(4096)
    h.aio_pread(before[o], o)
big = nbd.Buffer(64 * M)
h.aio_pread(big, off)
for o in small:
    after[o] = nbd.Buffer(4096)
    h.aio_pread(after[o], o)
while h.aio_in_flight() > 0:
    h.poll(-1)
assert big.to_bytearray() == data, "64 MiB read among small ones"
for o in small:
    assert before[o].to_bytearray() == small[o], f"small read at {o} (before)"
    assert after[o].to_bytearray() == small[o], f"small read at {o} (after)"
data2 = data[M:] + data[:M]
h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(small[0])), 0)
h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data2)), off)
h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(small[4 * M])), 4 * M)
while h.aio_in_flight() > 0:
    h.poll(-1)
assert h.pread(64 * M, off) == data2, "64 MiB write among small ones"
assert h.pread(4096, 0) == small[0], "a small read after the large ones"
h.shutdown()
print(f"64 MiB writes and reads at {off}, alone and among small ones: ok")
EOF
	) || rc=$?
	printf '%s\n' "$out" | sed 's/^/   /'
	[ $rc -eq 0 ] || fail "large requests on $1"
	[ "${2:-}" != tls ] || return 0
	# libnbd will not send more than 64 MiB: the raw client does; and a
	# 64 MiB round trip with simple replies, each MiB numbered.
	nbd_raw 127.0.0.1 "${1##*:}" oversize_read oversize_write max_size_io >"$T_TMP/raw.out" 2>&1 || rc=$?
	sed 's/^/   /' "$T_TMP/raw.out"
	[ $rc -eq 0 ] || fail "over-size requests on $1"
}

step "export: mem:160M"
start_export big mem:160M
EXP=$URI
big "$EXP"
PEAK=$(show_attr big mem/buffer_peak)
note "export's buffer peak: $PEAK bytes"
assert_le "$PEAK" $((128 * MiB)) "the export's buffer peak"

step "export over TLS (a read's pieces go out as TLS records)"
KEYS=$T_TMP/keys.psk
psktool -u alice -p "$KEYS" >/dev/null 2>&1 || fail "psktool"
start_export tls mem:96M --tls-psk "$KEYS"
big "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$KEYS" tls

step "storage: alg_linear over two 48 MiB exports (a 64 MiB request crosses the node boundary)"
st_export n0 48M
N0=$URI
st_export n1 48M
N1=$URI
st_create lin linear
st_add lin --remote "$N0"
st_add lin --remote "$N1"
st_start lin --listen "127.0.0.1:$(free_port)"
big "$ST_URI"
assert_eq "$(dev_sha "$ST_URI")" "$(node_data "$T_TMP/n0.img" "$T_TMP/n1.img" | sha256sum | cut -d' ' -f1)" \
	"the storage's data is its two nodes' data"
st_stop lin
echo "PASS"
