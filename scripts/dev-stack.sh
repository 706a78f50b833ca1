#!/bin/sh
# dev-stack.sh - start or stop the local Redis and Kafka dev broker.
#
# Usage: sh scripts/dev-stack.sh up|down [BUILD_DIR]     (make dev-up / dev-down)
#
# up   starts redis-server on 127.0.0.1:$RTE_REDIS_PORT (default 6390, so a
#      system Redis on 6379 is left alone; no persistence) and
#      BUILD_DIR/bin/kafka-dev-broker, both in the background with pid files
#      and logs in $RTE_RUN_DIR (default ./run). It waits until Redis answers
#      PING and the broker has published run/kafka.bootstrap, writes
#      run/redis.url, and prints both endpoints. A component whose pid file
#      names a live process of the right program is left running, so `up` is
#      idempotent.
#      With RTE_DEV_KAFKA=apache (make dev-up KAFKA=apache) the Kafka is a
#      real single-node Apache Kafka in KRaft mode instead
#      (tools/kafka/kafka_cluster.py: ephemeral ports, its own directory
#      $RTE_RUN_DIR/apache-kafka, the suite's topics), published the same
#      way in run/kafka.bootstrap.
# down sends SIGTERM to each, SIGKILL after 5 s (the Apache Kafka: 30 s),
#      and removes the pid files and the endpoint files.
#
# Errors: a component not ready within 30 s, a missing binary, or a foreign
# Redis already on the port exit 1 naming the cause and the log to read.
# Not for production: loopback only, nothing survives a restart.
set -eu

CMD=${1:-}
BUILD=${2:-build}
RUN=${RTE_RUN_DIR:-run}
PORT=${RTE_REDIS_PORT:-6390}

say() { echo "dev-stack: $*"; }
fail() { echo "dev-stack: $*" >&2; exit 1; }

# running PIDFILE PROGRAM - the pid file names a live PROGRAM process
running() {
    [ -f "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && ps -p "$pid" -o args= 2>/dev/null | grep -q "$2"
}

# wait_ready WHAT PIDFILE LOG CHECK... - poll CHECK for up to 30 s
wait_ready() {
    what=$1 pidfile=$2 log=$3
    shift 3
    i=0
    until "$@" >/dev/null 2>&1; do
        kill -0 "$(cat "$pidfile")" 2>/dev/null || fail "$what exited; see $log"
        [ $i -lt 300 ] || fail "$what not ready within 30 s; see $log"
        sleep 0.1
        i=$((i + 1))
    done
}

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; }

up_redis() {
    if running "$RUN/redis.pid" redis-server; then
        say "redis already running (pid $(cat "$RUN/redis.pid"))"
        [ -s "$RUN/redis.url" ] || echo "redis://127.0.0.1:$PORT" >"$RUN/redis.url"
        return
    fi
    redis_ping && fail "a Redis not started by us answers on port $PORT; set RTE_REDIS_PORT"
    nohup redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$RUN" </dev/null >"$RUN/redis.log" 2>&1 &
    echo $! >"$RUN/redis.pid"
    wait_ready "redis-server" "$RUN/redis.pid" "$RUN/redis.log" redis_ping
    echo "redis://127.0.0.1:$PORT" >"$RUN/redis.url"
}

up_apache_kafka() {
    if running "$RUN/apache-kafka/node-1/pid" kafka.Kafka; then
        say "apache kafka already running (pid $(cat "$RUN/apache-kafka/node-1/pid"))"
        return
    fi
    running "$RUN/kafka.pid" kafka-dev-broker && fail "the mock kafka-dev-broker is running; make dev-down first"
    [ -x "$BUILD/bin/kafka-dev-broker" ] || fail "$BUILD/bin/kafka-dev-broker is not built; run make"
    rm -f "$RUN/kafka.bootstrap"
    /usr/bin/python3 "$(dirname "$0")/../tools/kafka/kafka_cluster.py" up --dir "$RUN/apache-kafka" \
        --bootstrap-file "$RUN/kafka.bootstrap" --list-topics-bin "$BUILD/bin/kafka-dev-broker" \
        >"$RUN/kafka.log" 2>&1 || fail "apache kafka did not start; see $RUN/kafka.log and $RUN/apache-kafka/node-1/server.log"
}

up_kafka() {
    if [ "${RTE_DEV_KAFKA:-mock}" = apache ]; then
        up_apache_kafka
        return
    fi
    running "$RUN/apache-kafka/node-1/pid" kafka.Kafka && fail "apache kafka is running; make dev-down first"
    if running "$RUN/kafka.pid" kafka-dev-broker; then
        say "kafka-dev-broker already running (pid $(cat "$RUN/kafka.pid"))"
        return
    fi
    [ -x "$BUILD/bin/kafka-dev-broker" ] || fail "$BUILD/bin/kafka-dev-broker is not built; run make"
    rm -f "$RUN/kafka.bootstrap"
    nohup "$BUILD/bin/kafka-dev-broker" --bootstrap-file "$RUN/kafka.bootstrap" \
        </dev/null >"$RUN/kafka.log" 2>&1 &
    echo $! >"$RUN/kafka.pid"
    wait_ready "kafka-dev-broker" "$RUN/kafka.pid" "$RUN/kafka.log" test -s "$RUN/kafka.bootstrap"
}

# stop NAME PIDFILE PROGRAM - SIGTERM, then SIGKILL after 5 s
stop() {
    if ! running "$2" "$3"; then
        say "$1 not running"
        rm -f "$2"
        return
    fi
    pid=$(cat "$2")
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$1 ignored SIGTERM for 5 s; killing it"
        kill -KILL "$pid"
    fi
    rm -f "$2"
    say "$1 stopped"
}

case $CMD in
up)
    mkdir -p "$RUN"
    up_redis
    up_kafka
    say "redis  $(cat "$RUN/redis.url")  (log $RUN/redis.log)"
    say "kafka  $(cat "$RUN/kafka.bootstrap")  (${RTE_DEV_KAFKA:-mock}; log $RUN/kafka.log)"
    ;;
down)
    stop redis "$RUN/redis.pid" redis-server
    stop kafka-dev-broker "$RUN/kafka.pid" kafka-dev-broker
    if [ -d "$RUN/apache-kafka" ]; then
        /usr/bin/python3 "$(dirname "$0")/../tools/kafka/kafka_cluster.py" down --dir "$RUN/apache-kafka"
        say "apache kafka stopped"
    fi
    rm -f "$RUN/redis.url" "$RUN/kafka.bootstrap"
    ;;
*)
    fail "usage: sh scripts/dev-stack.sh up|down [BUILD_DIR]"
    ;;
esac
