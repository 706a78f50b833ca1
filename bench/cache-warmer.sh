#!/bin/sh
# cache-warmer.sh - 1,000,000 predictions through cache-warmer's consume,
# decide and queue, beside the raw consume rate of the same topic.
#
# Usage: sh bench/cache-warmer.sh [BUILD_DIR]  (make bench-cache-warmer passes build/)
# Environment: N members and events (default 1,000,000), ROUNDS (default 3),
# BATCH (warmer.batch_max and the raw consumer's batch, default 1000),
# PERF=FILE (perf record -g of cache-warmer into FILE.<round>).
#
# Once: member-gen writes N members (seed 1). Each round, on a fresh Kafka
# dev broker and an emptied private redis-server:
#   1. member-cron fires one unthrottled schedule over every member: N
#      MemberCronEvents on member-cron-events (threshold 1, so no
#      app_usage_likely events), then stops;
#   2. tests/programs/cache-fill writes a fresh success entry, through
#      libcommon's cache_entry module, for every third member;
#   3. raw: kafka-probe consume --discard, the same libcommon/librdkafka
#      consumer in batch mode with the same kafka.consumer.* settings, whose
#      handler does nothing; events/s from its first handler call to the
#      one that reached N;
#   4. cache-warmer consumes the same topic: decode, validate, the decision
#      tree (directory, one MGET of cache entries per batch, strategy) and
#      one queue script per batch; events/s from its
#      rte_kafka_consumed_total{topic="member-cron-events"} sampled every
#      20 ms from the first sample above 0 to the one at N.
# Steps 3 and 4 swap order every other round. Every event reaches the
# cache lookup (warmer.min_probability 0) and none is sent to the real-time
# API (warmer.urgent_above 1: urgent warming is Stedi-bound, not queueing);
# the flush timer is slowed to an hour so no Stedi batch is submitted
# during the measurement (size-sealed batches wait in the queue).
# Prints per round and as medians: both rates, their ratio (goal >= 0.5),
# cache-warmer >= 100,000 events/s?, peak RSS (VmHWM) of both consumers,
# and cache-warmer's outcome counts. Figures are printed, not asserted.
set -eu
BUILD=${1:-build}
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-1000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
. "$REPO/bench/lib.sh"
bench_init cache_warmer_bench
tmp=$BENCH_DIR
PY=/usr/bin/python3

"$BUILD/bin/member-gen" --count "$N" --seed 1 --out "$tmp/members.jsonl"
bench_redis
redis_pid=${BENCH_PIDS##* }
export RTE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export RTE_CACHE_MEMBER_KEY_SECRET=bench-cache-warmer-secret
export RTE_LOG_LEVEL=warn

cat >"$tmp/schedules.yaml" <<YAML
schedules:
  - name: bench
    cron: "@yearly"
    rate: 0
    threshold: 1
YAML
cat >"$tmp/cron.yaml" <<YAML
member_cron:
  members: $tmp/members.jsonl
  schedules: $tmp/schedules.yaml
  model: $REPO/services/member-cron/model.yaml
  batch: 100000
  lease: 30s
kafka:
  producer:
    linger.ms: 5
    batch.size: 1000000
    batch.num.messages: 100000
    queue.buffering.max.messages: 2000000
    queue.buffering.max.kbytes: 2097152
    compression.codec: lz4
YAML
# the consumer settings both consumers read (librdkafka defaults otherwise)
cat >"$tmp/consumer.yaml" <<YAML
kafka:
  consumer:
    session.timeout.ms: 6000
    heartbeat.interval.ms: 1000
YAML
cat "$tmp/consumer.yaml" >"$tmp/warmer.yaml"
cat >>"$tmp/warmer.yaml" <<YAML
warmer:
  members: $tmp/members.jsonl
  min_probability: 0
  urgent_above: 1
  preload_above: 0.7
  batch_max: $BATCH
  flush_check: 1h
YAML

wait_http() { # URL PID LOG WHAT
    _i=0
    until curl -sf "$1" >/dev/null 2>&1; do
        kill -0 "$2" 2>/dev/null || { echo "$4 exited"; tail "$3"; exit 1; }
        sleep 0.1; _i=$((_i + 1))
        [ $_i -lt 1200 ] || { echo "$4 did not become ready"; tail "$3"; exit 1; }
    done
}

produce() { # member-cron: one fire of N events, then stop it
    aport=$(bench_port)
    RTE_KAFKA_BROKERS=$KAFKA_BROKERS RTE_ADMIN_ADDR=127.0.0.1:$aport RTE_HTTP_ADDR=127.0.0.1:0 \
    RTE_GRPC_ADDR=127.0.0.1:0 RTE_CLOCK_START=2026-01-05T00:00:00Z \
        "$BUILD/bin/member-cron" --config "$tmp/cron.yaml" 2>"$tmp/cron.log" &
    _p=$!
    wait_http "http://127.0.0.1:$aport/readyz" $_p "$tmp/cron.log" member-cron
    _fire=$(curl -sf -X POST "http://127.0.0.1:$aport/v1/schedules/bench/run" |
        $PY -c 'import json,sys;print(json.load(sys.stdin)["fire_ms"])')
    $PY - "$aport" "$_fire" <<'PY'
import json, sys, time, urllib.request
port, fire = sys.argv[1], int(sys.argv[2])
while True:
    last = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/schedules"))["schedules"][0]["last"]
    if last and last["fire_ms"] == fire and last["state"] == "done":
        print(f"produced {last['emitted']} MemberCronEvents")
        break
    time.sleep(0.1)
PY
    kill $_p; wait $_p 2>/dev/null || true
}

raw() { # prints "rate rss_kb"
    "$BUILD/bin/kafka-probe" consume --group "bench-raw-$1" --topic member-cron-events \
        --discard --expect "$N" --batch "$BATCH" --config "$tmp/consumer.yaml" \
        --brokers "$KAFKA_BROKERS" >"$tmp/raw.out" 2>"$tmp/raw.log" &
    _p=$!
    _hwm=0 _i=0
    while kill -0 $_p 2>/dev/null; do
        _h=$(awk '/VmHWM/{print $2}' "/proc/$_p/status" 2>/dev/null || echo 0)
        [ "${_h:-0}" -gt "$_hwm" ] && _hwm=$_h
        sleep 0.2; _i=$((_i + 1))
        [ $_i -lt 1500 ] || { kill $_p; echo "raw consumer: no $N events in 300 s" >&2; exit 1; }
    done
    wait $_p || { echo "raw consumer failed" >&2; tail "$tmp/raw.log" >&2; exit 1; }
    _rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' "$tmp/raw.out")
    [ -n "$_rate" ] || { echo "raw consumer printed no rate" >&2; cat "$tmp/raw.out" >&2; exit 1; }
    echo "$_rate $_hwm"
}

warmer() { # prints "rate rss_kb", outcomes into $tmp/outcomes.$1
    aport=$(bench_port)
    RTE_KAFKA_BROKERS=$KAFKA_BROKERS RTE_ADMIN_ADDR=127.0.0.1:$aport RTE_GRPC_ADDR=127.0.0.1:0 \
    RTE_GRPC_AUTH_REQUIRED=false RTE_WARM_PREFIX="bench:r$1:warm" \
        "$BUILD/bin/cache-warmer" --config "$tmp/warmer.yaml" 2>"$tmp/warmer.log" &
    _p=$!
    PERF_OUT=${PERF:+$PERF.$1} $PY - "$aport" "$N" "$_p" "$tmp/outcomes.$1" "$redis_pid" <<'PY'
import os, re, signal, subprocess, sys, time, urllib.request
port, n, pid, out, rpid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
perf = None
tick = os.sysconf("SC_CLK_TCK")
def cpu(p):  # user + system seconds of process p
    f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
url = f"http://127.0.0.1:{port}/metrics"
line = re.compile(r'^rte_kafka_consumed_total\{[^}]*topic="member-cron-events"[^}]*\} (\S+)', re.M)
first = None
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        time.sleep(0.02)
        continue
    t = time.monotonic()
    c = sum(float(v) for v in line.findall(text))
    if c > 0 and first is None:
        first = (t, c)
        cpu0 = (cpu(pid), cpu(rpid))
        if os.environ.get("PERF_OUT"):  # the consuming phase only, not the directory load
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-o",
                                     os.environ["PERF_OUT"], "-p", pid],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if c >= n:
        break
    time.sleep(0.02)
else:
    sys.exit("cache-warmer did not consume %d events in time" % n)
cpu1 = (cpu(pid), cpu(rpid))
if perf:
    perf.send_signal(signal.SIGINT)
    perf.wait()
hwm = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
rate = (c - first[1]) / (t - first[0]) if t > first[0] else 0
with open(out, "w") as f:
    for l in text.splitlines():
        if l.startswith(("rte_cache_warming_skipped_total{", "rte_cache_warming_requests_total{",
                         "rte_cache_warming_invalid_events_total{")):
            f.write(l + "\n")
hs = lambda k: sum(float(v) for v in re.findall(
    r'^rte_kafka_handler_seconds_%s\{topic="member-cron-events"\} (\S+)' % k, text, re.M))
with open(out + ".cpu", "w") as f:
    f.write(f"{t - first[0]:.2f} s measured: cache-warmer CPU {cpu1[0] - cpu0[0]:.2f} s, "
            f"redis-server CPU {cpu1[1] - cpu0[1]:.2f} s; handler calls {hs('count'):.0f}, "
            f"{1000 * hs('sum') / max(hs('count'), 1):.2f} ms each")
print(f"{rate:.0f} {hwm}")
PY
    kill $_p; wait $_p 2>/dev/null || true
    # Redis time by command while cache-warmer consumed (the queue script is the EVALSHA)
    _st=$(redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\(evalsha\|mget\):calls=\([0-9]*\),usec=\([0-9]*\),.*/\1 \2 calls \3 us/p' |
        paste -sd ',')
    echo "; redis: $_st" >>"$tmp/outcomes.$1.cpu"
}

: >"$tmp/results"
r=1
while [ $r -le "$ROUNDS" ]; do
    # 24 partitions: the dev broker keeps 5 MiB per partition, ~68 bytes per
    # lz4-compressed event; 12 would drop the oldest ~8 %
    bench_broker "$BUILD/bin" --topic member-cron-events:24
    broker_pid=$BROKER_PID
    produce
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    "$BUILD/bin/cache-fill" --members "$tmp/members.jsonl" --every 3
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    if [ $((r % 2)) = 1 ]; then
        rw=$(raw $r); ww=$(warmer $r)
    else
        ww=$(warmer $r); rw=$(raw $r)
    fi
    set -- $rw $ww
    echo "round $r: raw_consume_events_per_s $1 (rss ${2} kB)  cache_warmer_events_per_s $3 (rss ${4} kB)  ratio $(awk "BEGIN{printf \"%.2f\", $3 / $1}")"
    echo "  cache-warmer: $(cat "$tmp/outcomes.$r.cpu")"
    echo "$1 $2 $3 $4" >>"$tmp/results"
    kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
    rm -f "$tmp/kafka.bootstrap"
    r=$((r + 1))
done

echo "cache-warmer outcomes (last round, events of member-cron-events):"
sed 's/^/  /' "$tmp/outcomes.$ROUNDS"
$PY - "$tmp/results" "$N" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
med = lambda i: statistics.median(r[i] for r in rows)
raw, warm = med(0), med(2)
ratios = [r[2] / r[0] for r in rows]
print(f"median of {len(rows)} rounds, {int(sys.argv[2])} events each:")
print(f"  raw_consume_events_per_s {raw:.0f}")
print(f"  cache_warmer_events_per_s {warm:.0f}  (goal >= 100000: {'met' if warm >= 100000 else 'NOT met'})")
print(f"  ratio {statistics.median(ratios):.2f}  (goal >= 0.5: {'met' if statistics.median(ratios) >= 0.5 else 'NOT met'})")
print(f"  peak_rss_kb cache-warmer {max(r[3] for r in rows):.0f}  raw consumer {max(r[1] for r in rows):.0f}")
PY
echo "reproduce: N=$N ROUNDS=$ROUNDS BATCH=$BATCH sh bench/cache-warmer.sh $BUILD   (or make bench-cache-warmer)"
