#!/bin/sh
# json.sh - `make bench-json`: what the strict JSON rules (libcommon/input,
# docs/input.md) cost on a 10,000-result batch callback (2.5 MB), next to
# cJSON's own parse, and on one object of 100,000 keys (the sorted
# duplicate check). Runs tests/programs/json-bench.
#
# Usage: sh bench/json.sh [BUILD_DIR]   (make bench passes build/)
# RESULTS and RUNS may be set in the environment; the program prints the
# command that reproduces its figures. Figures are printed, not
# asserted: the machine is shared, so compare the lines of one run.
set -eu
BUILD=${1:-build}
RESULTS=${RESULTS:-10000}
RUNS=${RUNS:-20}
[ -x "$BUILD/bin/json-bench" ] || { echo "bench-json: $BUILD/bin/json-bench missing; run make build" >&2; exit 1; }
"$BUILD/bin/json-bench" "$RESULTS" "$RUNS"
