# bench/lib.sh - set-up shared by the benchmark drivers (sourced, not run).
#
#   bench_init NAME    BENCH_DIR: a fresh private directory (mktemp, under
#                      /tmp/NAME.*); on exit every process in BENCH_PIDS is
#                      stopped and the directory removed, unless KEEP is set
#                      (then both stay for a look)
#   bench_port         a free loopback port
#   bench_redis        start a private redis-server (no persistence);
#                      sets REDIS_PORT and REDIS_PID
#   bench_broker BIN [ARG...]  start BIN/kafka-dev-broker (with ARGs, e.g.
#                      --topic NAME:PARTITIONS) and wait for it; sets
#                      KAFKA_BROKERS and BROKER_PID. With BENCH_KAFKA=apache:
#                      a single-node Apache Kafka (tools/kafka/kafka_cluster.py,
#                      KRaft) in BENCH_DIR instead, stopped on exit (ARGs unused)
#   bench_track PID    stop PID on exit too
#   bench_both SCRIPT ARGS...  unless BENCH_KAFKA is set: run SCRIPT once on
#                      the mock cluster and once on Apache Kafka, print both
#                      outputs side by side, and exit (the caller's `exec`);
#                      set BENCH_KAFKA=mock or apache to run one only
BENCH_PIDS=""
BENCH_REPO=$(cd "$(dirname "$0")/.." && pwd)

bench_cleanup() {
    [ -n "${KEEP:-}" ] && { echo "KEEP: processes and $BENCH_DIR left running" >&2; return 0; }
    for p in $BENCH_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $BENCH_PIDS; do wait "$p" 2>/dev/null || true; done
    if [ -d "$BENCH_DIR/apache-kafka" ]; then
        /usr/bin/python3 "$BENCH_REPO/tools/kafka/kafka_cluster.py" down --dir "$BENCH_DIR/apache-kafka"
    fi
    rm -rf "$BENCH_DIR"
}

bench_init() {
    BENCH_DIR=$(mktemp -d "/tmp/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_track() { BENCH_PIDS="$BENCH_PIDS $1"; }

bench_port() {
    /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

bench_redis() {
    REDIS_PORT=$(bench_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$BENCH_DIR" --daemonize no --loglevel warning >"$BENCH_DIR/redis.log" 2>&1 &
    REDIS_PID=$!
    bench_track $!
}

bench_broker() {
    _bin=$1
    shift
    if [ "${BENCH_KAFKA:-mock}" = apache ]; then
        /usr/bin/python3 "$BENCH_REPO/tools/kafka/kafka_cluster.py" up --dir "$BENCH_DIR/apache-kafka" \
            --bootstrap-file "$BENCH_DIR/kafka.bootstrap" --list-topics-bin "$_bin/kafka-dev-broker" \
            >"$BENCH_DIR/kafka.log" 2>&1 || { echo "Apache Kafka did not start: $(tail -5 "$BENCH_DIR/kafka.log")" >&2; exit 1; }
        KAFKA_BROKERS=$(cat "$BENCH_DIR/kafka.bootstrap")
        return 0
    fi
    "$_bin/kafka-dev-broker" --bootstrap-file "$BENCH_DIR/kafka.bootstrap" "$@" >/dev/null \
        2>"$BENCH_DIR/kafka.log" &
    BROKER_PID=$!
    bench_track $BROKER_PID
    _i=0
    while [ ! -s "$BENCH_DIR/kafka.bootstrap" ]; do
        _i=$((_i + 1))
        [ $_i -le 300 ] || { echo "the Kafka dev broker did not start" >&2; exit 1; }
        sleep 0.1
    done
    KAFKA_BROKERS=$(cat "$BENCH_DIR/kafka.bootstrap")
}

bench_both() {
    [ -n "${BENCH_KAFKA:-}" ] && return 0
    _script=$1
    shift
    _out=$(mktemp -d /tmp/bench-both.XXXXXX)
    BENCH_KAFKA=mock sh "$_script" "$@" >"$_out/mock" 2>&1 || echo "(mock run failed)" >>"$_out/mock"
    if sh "$BENCH_REPO/scripts/deps.sh" kafka >/dev/null 2>&1 &&
        /usr/bin/python3 "$BENCH_REPO/tools/kafka/kafka_cluster.py" fetch >/dev/null 2>&1; then
        BENCH_KAFKA=apache sh "$_script" "$@" >"$_out/apache" 2>&1 || echo "(apache run failed)" >>"$_out/apache"
    else
        echo "(no Apache Kafka: sh scripts/deps.sh kafka failed)" >"$_out/apache"
    fi
    /usr/bin/python3 - "$_out/mock" "$_out/apache" <<'PY'
import sys
a = open(sys.argv[1]).read().splitlines()
b = open(sys.argv[2]).read().splitlines()
w = max([len(x) for x in a] + [36])
print(f"{'mock cluster (kafka-dev-broker)':<{w}} | Apache Kafka, 1 broker (KRaft)")
print("-" * w + "-+-" + "-" * 36)
for i in range(max(len(a), len(b))):
    print(f"{a[i] if i < len(a) else '':<{w}} | {b[i] if i < len(b) else ''}")
PY
    rm -rf "$_out"
    exit 0
}
