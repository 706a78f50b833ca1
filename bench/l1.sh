#!/bin/sh
# l1.sh - how often the gateway's L1 misses under Zipf(1) reads over
# 100,000 members (bench-gateway's workload (b)), at capacities from half
# to twice the members and at a 60 s (the default while invalidations
# arrive) and a 10 min entry life. Drives gw_l1.c itself (build/bin/l1-sim),
# so the figures are the table's, not this machine's.
#
# Usage: sh bench/l1.sh [BUILD_DIR]   (make bench-l1)
set -eu
BUILD=${1:-build}
N=${N:-100000}
for ttl in 60000 600000; do
    for cap in $((N / 2)) $N $((N * 3 / 2)) $((N * 2)); do
        "$BUILD/bin/l1-sim" "$N" "$cap" "$ttl"
    done
done
echo "reproduce: N=$N sh bench/l1.sh $BUILD"
