#!/bin/sh
# member_dir.sh - load 1,000,000 generated members into rte_member_dir.
#
# Usage: sh bench/member_dir.sh [BUILD_DIR]   (make bench passes build/)
# Generates the population with member-gen (seed 1) into a temporary file,
# then prints member-gen's time, the load seconds, peak RSS, lookups/s for
# 1,000,000 random finds and one column-scan time from member-dir-bench.
# Figures are printed, not asserted. N=<count> overrides the member count.
set -eu
BUILD=${1:-build}
N=${N:-1000000}
tmp=$(mktemp /tmp/member_dir_bench.XXXXXX)
trap 'rm -f "$tmp"' EXIT INT TERM
start=$(date +%s.%N)
"$BUILD/bin/member-gen" --count "$N" --seed 1 --out "$tmp"
end=$(date +%s.%N)
echo "member_gen_seconds $(awk "BEGIN{printf \"%.2f\", $end - $start}") bytes $(wc -c <"$tmp")"
"$BUILD/bin/member-dir-bench" "$tmp" 1000000
echo "reproduce: N=$N sh bench/member_dir.sh $BUILD"
