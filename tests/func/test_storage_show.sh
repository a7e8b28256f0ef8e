#!/usr/bin/env bash
# `dst show S` prints the sysfs-shaped tree of DESIGN.md (alg, name, nodes
# line, per node type/start/size/state and IO counters, one uri line per
# frontend); `--json` parses and carries the same values; `dst stat S` prints
# a row per node, and its rates move under load; a stopped storage shows the
# same tree from its config.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio nbdinfo

step "storage S: a remote node (export, 16M) and a local file (8M)"
st_export shx 16M
XPORT=$PORT X_URI=$URI
truncate -s $((8 * MiB + 4096)) "$T_TMP/loc.img" # 8M of data, then its label
st_create S linear
st_add S --remote "$X_URI"
st_add S --disk "$T_TMP/loc.img"

step "dst show S of the running storage, default frontend"
st_start S
dst_ok show S >"$T_TMP/show.txt"
show=$(cat "$T_TMP/show.txt")
line() { grep -qxF -- "$1" "$T_TMP/show.txt" || { cat "$T_TMP/show.txt" >&2; fail "dst show S: no line '$1'"; }; }
line "S/alg : alg_linear"
line "S/name : S"
line "S/n-0/type : R: 127.0.0.1:$XPORT"
line "S/n-0/size : 32768"
line "S/n-0/start : 0"
line "S/n-0/state : up"
line "S/n-32768/type : L: $T_TMP/loc.img"
line "S/n-32768/size : 16384"
line "S/n-32768/start : 32768"
line "S/nodes : sectors (start [size]): 0 [32768] | 32768 [16384]"
line "S/uri : nbd+unix:///?socket=$DST_STATE_DIR/S.sock"
line "S/state : running"
line "S/size : 49152"
# Every line is NAME/attr : value.
bad=$(grep -vE '^S/[A-Za-z0-9_./-]+ : ' "$T_TMP/show.txt" | head -3)
[ -z "$bad" ] || fail "dst show S: malformed lines: $bad"
assert_contains "$show" "S/n-0/io/writes : " "per-node IO counters"
assert_contains "$show" "S/n-0/io/errors : " "per-node error counter"

step "IO counters move: writes to each node show up in its counters"
w0=$(show_attr S n-0/io/writes)
w1=$(show_attr S n-32768/io/writes)
run_ok "qemu-io writes to both nodes" qemu-io -f raw -c "write -P 1 0 64k" -c "write -P 2 20M 64k" -c "write -P 3 22M 64k" "$ST_URI"
assert_ge "$(show_attr S n-0/io/writes)" $((w0 + 1)) "n-0/io/writes after a write to it"
assert_ge "$(show_attr S n-32768/io/writes)" $((w1 + 2)) "n-32768/io/writes after two writes to it"
assert_ge "$(show_attr S n-32768/io/write_bytes)" 131072 "n-32768/io/write_bytes"

step "dst show S --json: valid JSON, no duplicate keys, same values as the text"
dst_ok show S --json >"$T_TMP/show.json"
dst_ok show S >"$T_TMP/show.txt"
python3 -m json.tool "$T_TMP/show.json" >/dev/null || fail "dst show --json is not valid JSON"
python3 - "$T_TMP/show.json" "$T_TMP/show.txt" <<'EOF' || fail "dst show --json disagrees with dst show"
import json, sys

def no_dups(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        sys.exit("duplicate JSON keys: %s" % sorted(dup))
    return dict(pairs)

doc = json.load(open(sys.argv[1]), object_pairs_hook=no_dups)
text = {}
for ln in open(sys.argv[2]):
    k, _, v = ln.rstrip("\n").partition(" : ")
    text.setdefault(k, []).append(v)

# Text paths in the JSON: nodes (n-START) are the array "nodes" of objects
# named by "name"; the text's "nodes" line is "layout".
def lookup(path):
    cur = doc
    parts = path.split("/")
    if parts[1:] == ["nodes"]:
        parts[1] = "layout"
    for i, part in enumerate(parts):
        if i == 1 and part.startswith("n-"):
            named = [n for n in cur.get("nodes", []) if n.get("name") == part]
            if len(named) != 1:
                return None
            cur = named[0]
            continue
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur

# Counters and uptime may move between the two calls; compare the rest.
moving = ("/io/", "/uptime", "/mem/", "/clients")
checked = 0
for k, vals in text.items():
    j = lookup(k)
    if j is None:
        sys.exit("%s is in the text but not in the JSON" % k)
    if any(m in k or k.endswith(m.rstrip("/")) for m in moving):
        continue
    jv = j if isinstance(j, list) else [j]
    if [str(x) for x in jv] != vals:
        sys.exit("%s: text %r, JSON %r" % (k, vals, j))
    checked += 1
for must in ("S/alg", "S/name", "S/nodes", "S/uri", "S/n-0/type", "S/n-0/size", "S/n-0/start"):
    if must not in text:
        sys.exit("%s missing" % must)
if not isinstance(lookup("S/n-0/size"), int):
    sys.exit("S/n-0/size is not a JSON number")
nodes = doc["S"]["nodes"]
if [n["name"] for n in nodes] != ["n-0", "n-32768"]:
    sys.exit("nodes: %r" % (nodes,))
if not isinstance(doc["S"]["uri"], list):
    sys.exit("uri is not a list: %r" % (doc["S"]["uri"],))
print("   %d attributes agree" % checked)
EOF

step "dst stat S: a row per node, rates move under load"
dst_ok stat S >"$T_TMP/stat.txt"
for r in S/n-0 S/n-32768; do
	grep -qE "^$r +[0-9]" "$T_TMP/stat.txt" || { cat "$T_TMP/stat.txt" >&2; fail "dst stat S: no row for $r"; }
done
bg fio --name=load --ioengine=nbd --uri="$ST_URI" --rw=randwrite --bs=4k --iodepth=8 \
	--offset=15M --size=2M --time_based --runtime=4 --output=/dev/null
FPID=$BG_PID
sleep 0.5
dst_ok stat S --watch --interval 0.5 --count 3 >"$T_TMP/stat2.txt"
bg_wait "$FPID" || fail "fio load failed"
n0=$(awk '$1 == "S/n-0" && $3 > 0' "$T_TMP/stat2.txt" | wc -l)
n1=$(awk '$1 == "S/n-32768" && $3 > 0' "$T_TMP/stat2.txt" | wc -l)
tables=$(grep -c '^S/n-0 ' "$T_TMP/stat2.txt")
[ "$tables" -ge 3 ] || { cat "$T_TMP/stat2.txt" >&2; fail "dst stat --watch --count 3 printed $tables tables"; }
[ "$n0" -ge 1 ] && [ "$n1" -ge 1 ] || { cat "$T_TMP/stat2.txt" >&2; fail "dst stat: no w/s on both nodes under a load that writes to both"; }

step "two frontends: one uri line each, a list in JSON"
st_stop S
SPORT=$(free_port)
st_start S --listen "127.0.0.1:$SPORT" --socket "$T_TMP/S2.sock"
dst_ok show S >"$T_TMP/show.txt"
line "S/uri : nbd://127.0.0.1:$SPORT"
line "S/uri : nbd+unix:///?socket=$T_TMP/S2.sock"
dst_ok show S --json | python3 -c '
import json, sys
u = json.load(sys.stdin)["S"]["uri"]
sys.exit(0 if isinstance(u, list) and len(u) == 2 else "uri: %r" % (u,))' || fail "S/uri in JSON"
assert_eq "$(dev_size "nbd://127.0.0.1:$SPORT")" "$(dev_size "nbd+unix:///?socket=$T_TMP/S2.sock")" "both frontends serve the same device"

step "dst show (all) lists S and the export"
all=$(dst show) || fail "dst show failed"
assert_contains "$all" "S/alg : alg_linear" "dst show (all)"
assert_contains "$all" "shx/" "dst show (all)"

step "a stopped storage shows the same tree from its config"
st_stop S
dst_ok show S >"$T_TMP/show.txt"
line "S/state : stopped"
line "S/alg : alg_linear"
line "S/name : S"
line "S/n-0/type : R: 127.0.0.1:$XPORT"
line "S/n-0/start : 0"
line "S/n-0/size : 32768"
line "S/n-32768/type : L: $T_TMP/loc.img"
line "S/nodes : sectors (start [size]): 0 [32768] | 32768 [16384]"
dst_ok show S --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["S"]
n = s.get("nodes", [])
ok = len(n) == 2 and n[0]["name"] == "n-0" and n[0]["size"] == 32768 and s["layout"].startswith("sectors")
sys.exit(0 if ok else "stopped JSON: %r" % (s,))' ||
	fail "dst show --json of a stopped storage lacks the node tree"

stop_export shx
echo "PASS"
