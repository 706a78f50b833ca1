#!/bin/sh
# batch-rpc.sh - batch-rpc's two benchmarks (issue 20), figures printed, not
# asserted. PART=batch or PART=realtime runs one; unset, both in turn (what
# `make bench-batch-rpc` runs).
#
# Usage: sh bench/batch-rpc.sh [BUILD_DIR]  (make bench-batch-rpc passes build/)
#
# PART=batch: a BATCH_ONLY job of N members (default 1,000,000): how long
# SubmitBatch takes to answer, how long until all of its Stedi batches are
# submitted, that no real-time slot is used, and batch-rpc's peak RSS.
# Environment: N members, ROUNDS SubmitBatch calls timed (default 5).
# member-gen writes N members; a private redis-server, a Kafka dev broker,
# stedi-sim and one batch-rpc replica start. Round 1 submits a MemberQuery
# selecting every member (has_rte_enabled false, no limit) with
# STRATEGY_BATCH_ONLY and waits until the job has submitted all
# ceil(N / 10,000) Stedi batches (job field sb_calls); rounds 2.. submit the
# same query again (a new client_job_id each) and cancel it at once, to time
# the answer only. Prints SubmitBatch p50/p99 (ms), the time to all Stedi
# batches submitted (s), stedi-sim's real-time calls and the limiter's
# leases seen during the run (both must be 0), and VmHWM of batch-rpc.
#
# PART=realtime: a REALTIME_ONLY job of JOB members (default 2,000) beside
# interactive traffic through cache-gateway. redis-server, the Kafka dev
# broker, stedi-sim (its 15-call limit; its default 4 s / 12 s p50/p95
# latency on a clock SCALE times faster, default 100: 40 / 120 ms), one
# cache-gateway and one batch-rpc replica share one limiter (slots.limit 15,
# batch_cap 5, reserve_interactive 5: the defaults). bench/batch_rpc_realtime.py
# sends interactive GETs open loop at RATE per second (default 25), each a
# DEFAULT-mode miss (a member nobody has cached) that calls stedi-sim: D
# seconds alone (default 25), then at the same rate from the job's submit
# until it ends. Prints interactive p50/p99 both ways and their ratio (goal
# p99 within 10 %), the batch class's occupancy (time-weighted mean of its
# leases in Redis, sampled every 20 ms, over min(batch_cap, limit - reserve);
# goal >= 90 %) and stedi-sim's max_in_flight (must stay <= 15).
set -eu
BUILD=${1:-build}
if [ -z "${PART:-}" ]; then
    echo "== BATCH_ONLY: N=${N:-1000000} members"
    PART=batch sh "$0" "$@"
    echo "== REALTIME_ONLY beside interactive traffic: JOB=${JOB:-2000} members"
    PART=realtime sh "$0" "$@"
    exit 0
fi
N=${N:-1000000}
ROUNDS=${ROUNDS:-5}
REPO=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
. "$REPO/bench/lib.sh"
bench_init batch_rpc_bench
tmp=$BENCH_DIR
if [ "$PART" = realtime ]; then
    JOB=${JOB:-2000}
    RATE=${RATE:-25}
    D=${D:-25}
    SCALE=${SCALE:-100}
    # enough members for the job and every interactive request (each asks a new one)
    COUNT=$(/usr/bin/python3 -c "print(int(($JOB + $RATE * ($D + 120) + 100) * 1.25))")
    "$BUILD/bin/member-gen" --count "$COUNT" --seed 2 --out "$tmp/members.jsonl"
    bench_redis
    bench_broker "$BUILD/bin"
    export RTE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT RTE_KAFKA_BROKERS=$KAFKA_BROKERS
    export RTE_CACHE_MEMBER_KEY_SECRET=bench-batch-rpc-secret RTE_LOG_LEVEL=warn
    export RTE_STEDI_API_KEY=test-key RTE_GRPC_AUTH_REQUIRED=false RTE_CLOCK_SCALE=$SCALE
    export RTE_CLOCK_ANCHOR=$(date +%s) # one simulated clock for every process
    export RTE_SLOTS_LIMIT=15 RTE_SLOTS_BATCH_CAP=5 RTE_SLOTS_RESERVE_INTERACTIVE=5
    simport=$(bench_port)
    RTE_HTTP_ADDR=127.0.0.1:$simport RTE_ADMIN_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
        "$BUILD/bin/stedi-sim" >"$tmp/sim.log" 2>&1 &
    bench_track $!
    gwport=$(bench_port)
    gwadmin=$(bench_port)
    RTE_HTTP_ADDR=127.0.0.1:$gwport RTE_ADMIN_ADDR=127.0.0.1:$gwadmin RTE_GRPC_ADDR=127.0.0.1:0 \
        RTE_STEDI_BASE_URL=http://127.0.0.1:$simport RTE_GATEWAY_MEMBER_DIR=$tmp/members.jsonl \
        "$BUILD/bin/cache-gateway" >"$tmp/gateway.log" 2>&1 &
    bench_track $!
    grpcport=$(bench_port)
    RTE_GRPC_ADDR=127.0.0.1:$grpcport RTE_ADMIN_ADDR=127.0.0.1:0 \
        RTE_STEDI_BASE_URL=http://127.0.0.1:$simport RTE_BATCHRPC_MEMBERS=$tmp/members.jsonl \
        RTE_BATCHRPC_RATE_LIMIT=0 RTE_BATCHRPC_TICK=50ms RTE_BATCHRPC_JITTER=0 \
        "$BUILD/bin/batch-rpc" >"$tmp/batch-rpc.log" 2>&1 &
    bench_track $!
    i=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gwadmin/readyz")" = 200 ]; do
        i=$((i + 1))
        [ $i -le 600 ] || { echo "cache-gateway is not ready" >&2; cat "$tmp/gateway.log" >&2; exit 1; }
        sleep 0.1
    done
    PYTHONPATH=$BUILD/gen/py /usr/bin/python3 "$REPO/bench/batch_rpc_realtime.py" \
        "127.0.0.1:$grpcport" "http://127.0.0.1:$gwport" "$REDIS_PORT" "http://127.0.0.1:$simport" \
        "$tmp/members.jsonl" "$JOB" "$RATE" "$D" 5 15 5
    exit 0
fi

"$BUILD/bin/member-gen" --count "$N" --seed 1 --out "$tmp/members.jsonl"
bench_redis
bench_broker "$BUILD/bin"
export RTE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT RTE_KAFKA_BROKERS=$KAFKA_BROKERS
export RTE_CACHE_MEMBER_KEY_SECRET=bench-batch-rpc-secret RTE_LOG_LEVEL=warn
export RTE_STEDI_API_KEY=test-key RTE_GRPC_AUTH_REQUIRED=false

simport=$(bench_port)
RTE_HTTP_ADDR=127.0.0.1:$simport RTE_ADMIN_ADDR=127.0.0.1:0 RTE_CLOCK_SCALE=1000 \
    "$BUILD/bin/stedi-sim" >"$tmp/sim.log" 2>&1 &
bench_track $!
grpcport=$(bench_port)
RTE_GRPC_ADDR=127.0.0.1:$grpcport RTE_ADMIN_ADDR=127.0.0.1:0 \
    RTE_STEDI_BASE_URL=http://127.0.0.1:$simport RTE_BATCHRPC_MEMBERS=$tmp/members.jsonl \
    RTE_BATCHRPC_REQUEST_MAX=$N RTE_BATCHRPC_RATE_LIMIT=0 RTE_BATCHRPC_TICK=50ms \
    RTE_BATCHRPC_CHECK_INTERVAL=1h RTE_BATCHRPC_JITTER=0 \
    "$BUILD/bin/batch-rpc" >"$tmp/batch-rpc.log" 2>&1 &
brpid=$!
bench_track $brpid

PYTHONPATH=$BUILD/gen/py /usr/bin/python3 "$REPO/bench/batch_rpc.py" "127.0.0.1:$grpcport" \
    "$REDIS_PORT" "http://127.0.0.1:$simport" "$N" "$ROUNDS" "$brpid"
