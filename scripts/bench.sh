#!/bin/sh
# bench.sh - `make bench`: run every benchmark under bench/ and print figures.
#
# Each bench/<name>.sh prints its own figures and the command that reproduces
# them. Benchmarks are never part of `make test`: this machine is shared and
# noisy, so numbers are compared side by side, not asserted.
set -eu
BUILD=${1:-build}
found=0
for b in bench/*.sh; do
    [ "$b" = bench/lib.sh ] && continue # helpers the drivers source
    [ -e "$b" ] || continue
    found=1
    echo "== $b"
    sh "$b" "$BUILD"
done
[ $found = 1 ] || echo "bench: no benchmarks yet"
