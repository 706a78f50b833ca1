# bench/lib.sh - set-up shared by the benchmark drivers (sourced, not run).
#
#   bench_init NAME    BENCH_DIR: a fresh private directory (mktemp, under
#                      /tmp/NAME.*); on exit every process in BENCH_PIDS is
#                      stopped and the directory removed, unless KEEP is set
#                      (then both stay for a look)
#   bench_port         a free loopback port
#   bench_redis        start a private redis-server (no persistence);
#                      sets REDIS_PORT
#   bench_broker BIN [ARG...]  start BIN/kafka-dev-broker (with ARGs, e.g.
#                      --topic NAME:PARTITIONS) and wait for it; sets
#                      KAFKA_BROKERS and BROKER_PID
#   bench_track PID    stop PID on exit too
BENCH_PIDS=""

bench_cleanup() {
    [ -n "${KEEP:-}" ] && { echo "KEEP: processes and $BENCH_DIR left running" >&2; return 0; }
    for p in $BENCH_PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $BENCH_PIDS; do wait "$p" 2>/dev/null || true; done
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
    bench_track $!
}

bench_broker() {
    _bin=$1
    shift
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
