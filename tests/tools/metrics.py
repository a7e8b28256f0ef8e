#!/usr/bin/env python3
# metrics.py - read dst's metrics the way Prometheus does, for the tests.
#
#   metrics.py [--om] SRC check
#       parse SRC with prometheus_client's parser (OpenMetrics' with --om)
#       and check every histogram: buckets cumulative, le="+Inf" equal to
#       _count; print the number of families
#   metrics.py [--om] SRC get SAMPLE [LABEL=VALUE...]
#       print the value of the one sample SAMPLE (e.g. dst_node_ops_total)
#       whose labels include those given; fail unless exactly one matches
#   metrics.py [--om] SRC families
#       print the family names, one a line
#
# SRC is a file, - (stdin), or an http:// URL (fetched with urllib; with
# --om it asks for OpenMetrics in its Accept header and checks the reply's
# Content-Type).
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as prom_parse


def load(src, om):
    if src.startswith("http://"):
        req = urllib.request.Request(src)
        if om:
            req.add_header("Accept", "application/openmetrics-text; version=1.0.0")
        with urllib.request.urlopen(req, timeout=10) as r:
            ctype = r.headers.get("Content-Type", "")
            want = "application/openmetrics-text" if om else "text/plain; version=0.0.4"
            if not ctype.startswith(want):
                sys.exit(f"{src}: Content-Type '{ctype}', expected {want}")
            return r.read().decode()
    if src == "-":
        return sys.stdin.read()
    with open(src) as f:
        return f.read()


def main():
    args = sys.argv[1:]
    om = False
    if args and args[0] == "--om":
        om = True
        args = args[1:]
    if len(args) < 2:
        sys.exit(__doc__ if __doc__ else "usage: metrics.py [--om] SRC check|get|families")
    src, cmd, rest = args[0], args[1], args[2:]
    text = load(src, om)
    if om and not text.endswith("# EOF\n"):
        sys.exit(f"{src}: OpenMetrics text does not end with '# EOF'")
    fams = list((om_parse if om else prom_parse)(text))
    if cmd == "families":
        for f in fams:
            print(f.name)
    elif cmd == "check":
        for f in fams:
            if f.type != "histogram":
                continue
            series = {}
            for s in f.samples:
                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                series.setdefault(key, {"buckets": [], "count": None})
                if s.name.endswith("_bucket"):
                    series[key]["buckets"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    series[key]["count"] = s.value
            for key, v in series.items():
                b = sorted(v["buckets"])
                if not b or b[-1][0] != float("inf"):
                    sys.exit(f"{f.name}{dict(key)}: no le=\"+Inf\" bucket")
                if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                    sys.exit(f"{f.name}{dict(key)}: buckets not cumulative: {b}")
                if b[-1][1] != v["count"]:
                    sys.exit(f"{f.name}{dict(key)}: +Inf {b[-1][1]} != _count {v['count']}")
        print(len(fams))
    elif cmd == "get":
        if not rest:
            sys.exit("get: which sample?")
        name, want = rest[0], dict(a.split("=", 1) for a in rest[1:])
        hits = [s for f in fams for s in f.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in want.items())]
        if len(hits) != 1:
            sys.exit(f"{name}{want}: {len(hits)} samples match, expected 1")
        v = hits[0].value
        print(int(v) if float(v).is_integer() else v)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
