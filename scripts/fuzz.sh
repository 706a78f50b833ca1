#!/bin/sh
# fuzz.sh - run the libFuzzer targets built into <build>/fuzz (docs/fuzzing.md).
#
#   sh scripts/fuzz.sh run     <build> <seconds> [name...]   make fuzz
#   sh scripts/fuzz.sh smoke   <build> <seconds> [name...]   make fuzz-smoke (CI)
#   sh scripts/fuzz.sh regress <build> 0         [name...]   make fuzz-regress
#
# Target <name> is <build>/fuzz/fuzz_<name>. Its inputs:
#   tests/fuzz/corpus/<name>/       committed seeds (or a minimised corpus)
#   tests/fuzz/<name>.seeds         more seeds, one path or glob a line,
#                                   relative to the repository root (golden
#                                   files under tests/data, Stedi's examples
#                                   in ../shared/stedi-openapi, system files);
#                                   paths that do not exist are skipped
#   tests/fuzz/<name>.dict          libFuzzer dictionary, when present
#   tests/fuzz/regressions/<name>/  inputs that once crashed it; replayed first
#
# run: fuzzes each target for <seconds> into <build>/corpus/<name>/ (kept and
# grown across runs, never committed) and prints, per target, executions per
# second, coverage (libFuzzer's cov: edges and ft: features), corpus size and
# the verdict. A crash, leak, timeout or out-of-memory fails the run; its
# input is copied into tests/fuzz/regressions/<name>/ (commit it with the
# fix) and the log is kept in <build>/logs/<name>.log.
# smoke: the same from the seeds alone, in a fresh corpus, for a few seconds
# per target, after replaying the regressions.
# regress: replays tests/fuzz/regressions/ only.
set -u
cd "$(dirname "$0")/.."
mode=${1:?mode}
build=${2:?build dir}
secs=${3:-60}
shift 3 2>/dev/null || shift $#

targets=$*
if [ -z "$targets" ]; then
    for b in "$build"/fuzz/fuzz_*; do
        [ -x "$b" ] && targets="$targets ${b##*/fuzz_}"
    done
fi
[ -n "$targets" ] || { echo "fuzz: no targets in $build/fuzz" >&2; exit 1; }

# libFuzzer's defaults plus: a slow input (10 s) is a finding, memory capped
# well below the machine's, leaks reported
FLAGS="-timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

mkdir -p "$build/logs" "$build/artifacts"
failed=""

# copy the seeds a target names into dir
seed() {
    name=$1 dir=$2
    mkdir -p "$dir"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        find "tests/fuzz/corpus/$name" -maxdepth 1 -type f -exec cp {} "$dir"/ \;
    fi
    [ -f "tests/fuzz/$name.seeds" ] || return 0
    grep -v '^[[:space:]]*\(#\|$\)' "tests/fuzz/$name.seeds" | while read -r pat; do
        for f in $pat; do
            [ -f "$f" ] || continue
            # name the copy after its path, so equal base names do not collide
            cp "$f" "$dir/seed-$(echo "$f" | tr '/' '_' | tr -cd 'A-Za-z0-9._-')"
        done
    done
}

# replay the regression inputs of one target; 0 when none crashes
replay() {
    name=$1 bin=$2 dir="tests/fuzz/regressions/$1"
    [ -d "$dir" ] || return 0
    files=$(find "$dir" -maxdepth 1 -type f ! -name '*.md' | sort)
    [ -n "$files" ] || return 0
    # shellcheck disable=SC2086
    if "$bin" $FLAGS $files >"$build/logs/$name.regress.log" 2>&1; then
        echo "fuzz: $name: $(echo "$files" | wc -l) regression input(s) pass"
        return 0
    fi
    echo "fuzz: $name: a regression input fails again; see $build/logs/$name.regress.log" >&2
    tail -n 30 "$build/logs/$name.regress.log" >&2
    return 1
}

# the figures of a finished run, from libFuzzer's log
report() {
    name=$1 log=$2 rc=$3 t=$4 corpus=$5
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    files=$(find "$corpus" -type f | wc -l)
    kb=$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s / 1024}')
    verdict=ok
    [ "$rc" = 0 ] || verdict="FAILED (exit $rc)"
    printf 'fuzz: %-16s %5ss  execs/s %-7s runs %-10s cov %-6s ft %-6s corpus %s files (%s KB)  %s\n' \
        "$name" "$t" "${eps:-?}" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$kb" "$verdict"
}

# keep what libFuzzer saved of a failure as a regression input
keep() {
    name=$1 art=$2
    for f in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
        [ -f "$f" ] || continue
        mkdir -p "tests/fuzz/regressions/$name"
        cp "$f" "tests/fuzz/regressions/$name/"
        echo "fuzz: $name: saved tests/fuzz/regressions/$name/${f##*/}" >&2
    done
}

start=$(date +%s)
for name in $targets; do
    bin="$build/fuzz/fuzz_$name"
    if [ ! -x "$bin" ]; then
        echo "fuzz: no target $bin" >&2
        failed="$failed $name"
        continue
    fi
    replay "$name" "$bin" || failed="$failed $name"
    [ "$mode" = regress ] && continue

    if [ "$mode" = smoke ]; then
        corpus="$build/smoke/$name"
        rm -rf "$corpus"
    else
        corpus="$build/corpus/$name"
    fi
    seeds="$build/seeds/$name"
    rm -rf "$seeds"
    seed "$name" "$seeds"
    [ -d "tests/fuzz/regressions/$name" ] &&
        find "tests/fuzz/regressions/$name" -maxdepth 1 -type f ! -name '*.md' -exec cp {} "$seeds"/ \;
    mkdir -p "$corpus"
    art="$build/artifacts/$name"
    rm -rf "$art"
    mkdir -p "$art"
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    log="$build/logs/$name.log"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    "$bin" $FLAGS $dict -max_total_time="$secs" -artifact_prefix="$art/" \
        "$corpus" "$seeds" >"$log" 2>&1
    rc=$?
    report "$name" "$log" "$rc" "$(($(date +%s) - t0))" "$corpus"
    if [ "$rc" != 0 ]; then
        failed="$failed $name"
        grep -E 'ERROR|SUMMARY|invariant|runtime error' "$log" | head -n 5 >&2
        keep "$name" "$art"
        echo "fuzz: $name: log in $log" >&2
    fi
done
echo "fuzz: $mode finished in $(($(date +%s) - start)) s"
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed" >&2
    exit 1
fi
