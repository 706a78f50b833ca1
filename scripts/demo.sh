#!/bin/sh
# demo.sh - `make demo`: the suite's main job, end to end, on this machine.
#
#   1. Redis and the Kafka dev broker (scripts/dev-stack.sh), stedi-sim with
#      a compressed clock (x60: a 4 s Stedi answer takes ~70 ms, batch items
#      complete within seconds), 2,000 synthetic members (member-gen).
#   2. member-cron fires a schedule now: it predicts who will open the app
#      and emits MemberCronEvents (and app_usage_likely predictions).
#   3. Warming: cache-warmer consumes the predictions, decides (threshold,
#      RTE enabled, active coverage, fresh cache), queues the members and,
#      when its 5 s window closes, submits them as a Stedi batch registered
#      for polling; webhook-receiver polls the batch page by page into the
#      cache - no real-time slot used.
#   4. cache-gateway answers a warmed member from the cache (HIT) and a cold
#      one through a real-time Stedi call under the slot limiter (MISS), and
#      CACHE_ONLY for a cold member answers 504.
#   5. batch-rpc: `rtectl batch submit` sends five members as one real-time
#      batch job over gRPC, `rtectl batch watch` follows it to its end.
#   6. Figures: Stedi calls, highest in-flight, cache hits/misses.
#
# Services are stopped with SIGTERM at the end (they drain and exit 0); Redis
# and the broker stay up (`make dev-down` stops them). Logs: run/demo/*.log.
set -eu
BUILD=${1:-build}
RUN=${RTE_RUN_DIR:-run}
DEMO="$RUN/demo"
sh scripts/dev-stack.sh up "$BUILD"
mkdir -p "$DEMO"
rm -f "$DEMO"/*.ports

REDIS_URL=$(cat "$RUN/redis.url")
BROKERS=$(cat "$RUN/kafka.bootstrap")
export RTE_REDIS_URL="$REDIS_URL" RTE_KAFKA_BROKERS="$BROKERS" RTE_LOG_LEVEL=warn
# a fresh member-key secret per run gives a fresh keyspace: "cold" really is cold
export RTE_CACHE_MEMBER_KEY_SECRET="demo-$(date +%s)" RTE_STEDI_API_KEY=test-key
export RTE_SLOTS_PREFIX="demo:slots" RTE_BATCH_REGISTRY_PREFIX="demo:batch"
# registered batches are first checked after 0.5 s and then at most every 1 s
export RTE_BATCH_REGISTRY_FIRST_DELAY=500ms RTE_BATCH_REGISTRY_MAX_INTERVAL=1s
# the demo makes no gRPC calls: token checks off, explicitly (docs/auth.md; the services log
# INSECURE at start)
export RTE_GRPC_AUTH_REQUIRED=false
PIDS=""

say() { printf '\n\033[1mdemo:\033[0m %s\n' "$*"; }

# start NAME [VAR=value ...]: run build/bin/NAME on free ports, wait until it listens
start() {
    name=$1
    shift
    ports="$DEMO/$name.ports"
    env RTE_ADMIN_ADDR=127.0.0.1:0 RTE_HTTP_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
        RTE_PORTS_FILE="$ports" "$@" "$BUILD/bin/$name" 2>"$DEMO/$name.log" &
    PIDS="$PIDS $!"
    i=0
    while [ ! -s "$ports" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$ports" ] || { echo "demo: $name did not start; see $DEMO/$name.log" >&2; exit 1; }
}
port() { sed "s/.*\"$2\":\([0-9]*\).*/\1/" "$DEMO/$1.ports"; }
metric() { curl -s "http://127.0.0.1:$(port "$1" admin)/metrics" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
ready() {
    i=0
    until curl -sf "http://127.0.0.1:$(port "$1" admin)/readyz" >/dev/null; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "demo: $1 not ready; see $DEMO/$1.log" >&2; exit 1; }
        sleep 0.05
    done
}
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

say "2,000 synthetic members -> $DEMO/members.jsonl"
"$BUILD/bin/member-gen" --count 2000 --seed 42 --now "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --out "$DEMO/members.jsonl"

cat >"$DEMO/schedules.yaml" <<'EOF'
schedules:
  - name: demo-morning
    cron: "0 6 * * *"
    timezone: America/New_York
    rate: 0
    catch_up: skip
    threshold: 0.7
    filters:
      - has_rte_enabled: true
EOF

start stedi-sim RTE_CLOCK_SCALE=60 RTE_SIM_BATCH_MIN_DELAY=10s RTE_SIM_BATCH_MAX_DELAY=90s
SIM="http://127.0.0.1:$(port stedi-sim http)"
export RTE_STEDI_BASE_URL="$SIM"
start member-cron RTE_MEMBER_CRON_MEMBERS="$DEMO/members.jsonl" \
    RTE_MEMBER_CRON_SCHEDULES="$DEMO/schedules.yaml" RTE_MEMBER_CRON_KEY_PREFIX="demo:cron:"
start webhook-receiver RTE_WH_POLL_INTERVAL=200ms
# a fresh queue per run; its 5 s window (5 min in production) closes soon after the fire
start cache-warmer RTE_WARMER_MEMBERS="$DEMO/members.jsonl" RTE_WARM_PREFIX="demo:warm:$(date +%s)" \
    RTE_WARM_WINDOW=5s RTE_WARMER_FLUSH_CHECK=500ms RTE_WARM_SOURCE=demo
start cache-gateway RTE_GATEWAY_MEMBER_DIR="$DEMO/members.jsonl"
for s in member-cron webhook-receiver cache-warmer cache-gateway; do ready $s; done
echo "demo: stedi-sim $SIM, redis $REDIS_URL, kafka $BROKERS"

say "member-cron: fire 'demo-morning' now"
curl -s -X POST "http://127.0.0.1:$(port member-cron admin)/v1/schedules/demo-morning/run"
echo
i=0
until [ "$(metric member-cron member_cron_fires_total)" -ge 1 ] && \
      curl -s "http://127.0.0.1:$(port member-cron admin)/v1/schedules" | grep -q '"running":null\|"running":false' ||
      [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
curl -s "http://127.0.0.1:$(port member-cron admin)/metrics" | grep '^member_cron_events_emitted_total' | sed 's/^/demo: /'
echo "demo: (members at or above the schedule's 0.7 threshold also get an app_usage_likely prediction)"

say "cache-warmer: predictions in, one Stedi batch out (its window closes 5 s after the first member)"
i=0
until [ "$(metric cache-warmer rte_batch_submitted_total)" -ge 1 ] || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
curl -s "http://127.0.0.1:$(port cache-warmer admin)/metrics" |
    grep '^rte_cache_warming_requests_total\|^rte_cache_warming_skipped_total\|^rte_batch_submitted_total\|^rte_batch_checks_submitted_total' |
    sed 's/^/demo: /'
say "webhook-receiver: polls the registered batch into the cache"
# the batch's event is emitted once every polled page is in the cache
i=0
until [ "$(metric webhook-receiver rte_wh_events_total)" -ge 1 ] || [ $i -ge 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo "demo: results written to the cache (payer rejections as error entries that say whether to" \
     "retry): $(metric webhook-receiver rte_wh_results_written_total)," \
     "not cached (no registered member, unreadable): $(metric webhook-receiver rte_wh_results_failed_total)"

member_at() { sed -n "${1}p" "$DEMO/members.jsonl" | sed 's/.*"member_id":"\([^"]*\)".*/\1/'; }
payer_at() { sed -n "${1}p" "$DEMO/members.jsonl" | sed 's/.*"trading_partner_id":"\([^"]*\)".*/\1/'; }
GW="http://127.0.0.1:$(port cache-gateway http)"
ask() { # ask LINE [cache_control]: GET through the gateway, print status, headers, timing
    m=$(member_at "$1")
    p=$(payer_at "$1")
    curl -s -o "$DEMO/answer.json" -D "$DEMO/answer.head" \
        -w "HTTP %{http_code} in %{time_total}s" \
        "$GW/v1/eligibility/$m?trading_partner_id=$p${2:+&cache_control=$2}"
    echo "  member $m payer $p ${2:-DEFAULT}"
    grep -i '^cache-status\|^age' "$DEMO/answer.head" | tr -d '\r' | sed 's/^/    /'
    sed 's/^/    /' "$DEMO/answer.json" | cut -c1-220
    echo
}

# a warmed member: the first with a fresh eligible entry; a cold one: an active,
# RTE-enabled member without any entry (from line 1001 on)
warmed=0
cold=0
i=1
while [ $i -le 2000 ] && { [ $warmed -eq 0 ] || [ $cold -eq 0 ]; }; do
    line=$(sed -n "${i}p" "$DEMO/members.jsonl")
    if [ $warmed -eq 0 ] && "$BUILD/bin/rtectl" get "$(member_at $i)" "$(payer_at $i)" 2>/dev/null |
        grep -q '"eligible":true.*"fresh":true'; then
        warmed=$i
    elif [ $cold -eq 0 ] && [ $i -gt 1000 ] && echo "$line" | grep -q '"has_rte_enabled":true' &&
        echo "$line" | grep -q '"account_status":"ACTIVE"' &&
        ! "$BUILD/bin/rtectl" get "$(member_at $i)" "$(payer_at $i)" >/dev/null 2>&1; then
        cold=$i
    fi
    i=$((i + 1))
done
[ $warmed -gt 0 ] || { echo "demo: no member was warmed; see $DEMO/cache-warmer.log" >&2; exit 1; }
[ $cold -gt 0 ] || cold=1501

say "cache-gateway: a warmed member (expect HIT, no Stedi call)"
ask $warmed
say "cache-gateway: a cold member (expect MISS: one real-time Stedi call under the slot limiter)"
ask $cold
say "cache-gateway: the same member again (now HIT)"
ask $cold
say "cache-gateway: a cold member with CACHE_ONLY (expect 504, no Stedi call)"
ask $((cold + 1)) CACHE_ONLY

say "batch-rpc: five members as one real-time batch job over gRPC, watched to its end (rtectl batch)"
start batch-rpc RTE_BATCHRPC_MEMBERS="$DEMO/members.jsonl" \
    RTE_BATCHRPC_PREFIX="demo:batchrpc:$(date +%s)" RTE_BATCHRPC_TICK=200ms RTE_BATCHRPC_JITTER=0
ready batch-rpc
export RTE_BATCHRPC_ADDR="127.0.0.1:$(port batch-rpc grpc)"
sub=$("$BUILD/bin/rtectl" batch submit --service demo --strategy realtime --concurrency 2 \
    "$(member_at 1601)" "$(member_at 1602)" "$(member_at 1603)" "$(member_at 1604)" "$(member_at 1605)")
echo "$sub"
job=$(echo "$sub" | sed 's/.*"batch_id":"\([^"]*\)".*/\1/')
"$BUILD/bin/rtectl" batch watch "$job"
"$BUILD/bin/rtectl" batch status "$job"

say "figures"
curl -s "$SIM/_sim/stats"
echo
echo "demo: gateway hits $(metric cache-gateway rte_cache_hit_total), misses $(metric cache-gateway rte_cache_miss_total)," \
     "Stedi real-time calls by outcome: $(curl -s "http://127.0.0.1:$(port cache-gateway admin)/metrics" | grep '^rte_stedi_calls_total' | tr '\n' ' ')"
say "stopping the services (SIGTERM: each drains and exits 0); 'make dev-down' stops Redis and the broker"
