#!/bin/sh
# member_dir.sh - load 1,000,000 generated members into rte_member_dir, from
# the JSONL and from its compiled form.
#
# Usage: sh bench/member_dir.sh [BUILD_DIR]   (make bench passes build/)
# Generates the population with member-gen (seed 1) into a temporary file,
# then prints member-gen's time and the file's size; member-dir-bench on the
# JSONL (load seconds, peak RSS, lookups/s for random finds, one column
# scan); member-gen --compile's time, peak RSS and the compiled file's size;
# member-dir-bench on the compiled file. Figures are printed, not asserted.
# N=<count> overrides the member count; RUNS=<n> (default 1) repeats each
# load; OLD_BUILD=<dir> also loads the JSONL with another build's
# member-dir-bench, alternating with this one's in the same run.
set -eu
BUILD=${1:-build}
N=${N:-1000000}
RUNS=${RUNS:-1}
OLD_BUILD=${OLD_BUILD:-}
tmp=$(mktemp /tmp/member_dir_bench.XXXXXX)
trap 'rm -f "$tmp" "$tmp.mdir"' EXIT INT TERM
secs() { awk "BEGIN{printf \"%.2f\", $2 - $1}"; }
# load FILE with BUILD's member-dir-bench; prints its figures with a prefix
load() {
    "$1/bin/member-dir-bench" "$2" 1000000 | sed "s/^/$3 /"
}
start=$(date +%s.%N)
"$BUILD/bin/member-gen" --count "$N" --seed 1 --out "$tmp"
end=$(date +%s.%N)
echo "member_gen_seconds $(secs "$start" "$end") jsonl_bytes $(wc -c <"$tmp")"
start=$(date +%s.%N)
/usr/bin/time -f "compile_peak_rss_mb %M" -o "$tmp.rss" \
    "$BUILD/bin/member-gen" --compile "$tmp" --out "$tmp.mdir"
end=$(date +%s.%N)
echo "compile_seconds $(secs "$start" "$end") $(awk '{printf "%s %.1f", $1, $2 / 1024}' "$tmp.rss") compiled_bytes $(wc -c <"$tmp.mdir")"
rm -f "$tmp.rss"
i=0
while [ "$i" -lt "$RUNS" ]; do
    i=$((i + 1))
    if [ -n "$OLD_BUILD" ]; then
        load "$OLD_BUILD" "$tmp" "run $i old jsonl"
    fi
    load "$BUILD" "$tmp" "run $i jsonl"
    load "$BUILD" "$tmp.mdir" "run $i compiled"
done
echo "reproduce: N=$N RUNS=$RUNS sh bench/member_dir.sh $BUILD"
