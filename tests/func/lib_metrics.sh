# shellcheck shell=bash
# lib_metrics.sh - helpers for the metrics tests (test_metrics_*.sh); source
# it after lib.sh. The metrics are read by prometheus_client's own parsers
# (python3-prometheus-client), through tests/tools/metrics.py.

# need_prom: set PROMPY to a python3 with prometheus_client, or skip.
need_prom() {
	PROMPY=$(python_with prometheus_client) ||
		skip "no python3 with prometheus_client (python3-prometheus-client)"
}

# metrics_save FILE [NAME...]: dst metrics into FILE; it must parse and its
# histograms must be consistent.
metrics_save() {
	local f=$1
	shift
	dst metrics "$@" >"$f" || fail "dst metrics $* failed"
	"$PROMPY" "$TESTS_DIR/tools/metrics.py" "$f" check >/dev/null ||
		fail "dst metrics $*: not valid Prometheus text (see above)"
}

# mval [--om] SRC SAMPLE [LABEL=VALUE...]: the value of one sample.
mval() {
	"$PROMPY" "$TESTS_DIR/tools/metrics.py" "$@" || fail "metrics: no single sample $*"
}

# assert_metric SRC SAMPLE LABELS... -- EXPECTED WHAT
assert_metric() {
	local args=()
	while [ "$1" != "--" ]; do
		args+=("$1")
		shift
	done
	shift
	assert_eq "$(mval "${args[0]}" get "${args[@]:1}")" "$1" "$2"
}
