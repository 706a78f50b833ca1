#!/bin/sh
# batch-rpc.sh - a BATCH_ONLY job of N members (default 1,000,000) through
# batch-rpc: how long SubmitBatch takes to answer, how long until all of
# its Stedi batches are submitted, that no real-time slot is used, and
# batch-rpc's peak RSS.
#
# Usage: sh bench/batch-rpc.sh [BUILD_DIR]  (make bench-batch-rpc passes build/)
# Environment: N members (default 1,000,000), ROUNDS SubmitBatch calls timed
# (default 5).
#
# member-gen writes N members; a private redis-server, a Kafka dev broker,
# stedi-sim and one batch-rpc replica start. Round 1 submits a MemberQuery
# selecting every member (has_rte_enabled false, no limit) with
# STRATEGY_BATCH_ONLY and waits until the job has submitted all
# ceil(N / 10,000) Stedi batches (job field sb_calls); rounds 2.. submit the
# same query again (a new client_job_id each) and cancel it at once, to time
# the answer only. Prints SubmitBatch p50/p99 (ms), the time to all Stedi
# batches submitted (s), stedi-sim's real-time calls and the limiter's
# leases seen during the run (both must be 0), and VmHWM of batch-rpc.
# Figures are printed, not asserted.
set -eu
BUILD=${1:-build}
N=${N:-1000000}
ROUNDS=${ROUNDS:-5}
REPO=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
. "$REPO/bench/lib.sh"
bench_init batch_rpc_bench
tmp=$BENCH_DIR

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
