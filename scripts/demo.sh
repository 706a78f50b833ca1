#!/bin/sh
# demo.sh - `make demo`: bring up the local stack and show it working.
#
# Starts Redis and the Kafka dev broker (scripts/dev-stack.sh), then runs the
# skeleton probe service against them for a few seconds: it consumes a
# handful of messages, answers its admin endpoints, and drains on SIGTERM.
# The services of later issues (cache-gateway, cache-warmer, ...) are added
# here as they land. The stack keeps running afterwards; `make dev-down`
# stops it.
set -eu
BUILD=${1:-build}
RUN=${RTE_RUN_DIR:-run}
sh scripts/dev-stack.sh up "$BUILD"

REDIS_URL=$(cat "$RUN/redis.url")
BROKERS=$(cat "$RUN/kafka.bootstrap")
echo
echo "demo: starting skeleton-probe against redis $REDIS_URL and kafka $BROKERS"
PORTS="$RUN/skeleton-probe.ports"
rm -f "$PORTS"
RTE_REDIS_URL=$REDIS_URL RTE_KAFKA_BROKERS=$BROKERS RTE_PORTS_FILE=$PORTS \
RTE_ADMIN_ADDR=127.0.0.1:0 RTE_HTTP_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
    "$BUILD/bin/skeleton-probe" 2>"$RUN/skeleton-probe.log" &
pid=$!
i=0
while [ ! -s "$PORTS" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
admin=$(sed 's/.*"admin":\([0-9]*\).*/\1/' "$PORTS")
http=$(sed 's/.*"http":\([0-9]*\).*/\1/' "$PORTS")
sleep 1
echo "demo: GET /readyz  -> $(curl -s "http://127.0.0.1:$admin/readyz")"
echo "demo: GET /v1/echo -> $(curl -s "http://127.0.0.1:$http/v1/echo?msg=hello")"
echo "demo: metrics sample:"
curl -s "http://127.0.0.1:$admin/metrics" | grep -E '^rte_(ready|dependency_up|http_requests_total)' | head -8
kill -TERM $pid
wait $pid && echo "demo: skeleton-probe drained and exited 0"
echo
echo "demo: the stack is still up (redis $REDIS_URL, kafka $BROKERS); 'make dev-down' stops it"
