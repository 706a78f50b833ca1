#!/bin/sh
# member-cron.sh - one unthrottled fire over 1,000,000 members into the dev broker.
#
# Usage: sh bench/member-cron.sh [BUILD_DIR]    (make bench-member-cron passes build/)
# Generates N members (default 1,000,000, seed 1) with member-gen, starts a
# private redis-server and tools/kafka-dev-broker, runs member-cron with one
# schedule (rate 0 = unlimited, no filters) and librdkafka batching
# (bench/member-cron.sh writes the kafka.producer.* keys), fires it through
# POST /v1/schedules/bench/run and waits until the fire record is done - the
# last cursor commit happens after the producer flushed, so every event was
# acknowledged by the broker. Prints events/s end to end (fire start to
# done; the clock starts at member-gen's --now so predictions are realistic),
# the MemberCronEvent and app_usage_likely counts, and member-cron's
# peak RSS (VmHWM). Figures are printed, not asserted. N=<count> overrides.
set -eu
BUILD=${1:-build}
N=${N:-1000000}
BATCH=${BATCH:-5000}  # the service default (member_cron.batch)
LINGER=${LINGER:-5}
REPO=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
. "$REPO/bench/lib.sh"
bench_both "$0" "$@"
bench_init member_cron_bench
tmp=$BENCH_DIR

start=$(date +%s.%N)
"$BUILD/bin/member-gen" --count "$N" --seed 1 --out "$tmp/members.jsonl"
end=$(date +%s.%N)
echo "member_gen_seconds $(awk "BEGIN{printf \"%.2f\", $end - $start}") members $N"

bench_redis
rport=$REDIS_PORT
bench_broker "$BUILD/bin"

cat >"$tmp/schedules.yaml" <<YAML
schedules:
  - name: bench
    cron: "@yearly"
    rate: 0
YAML
cat >"$tmp/config.yaml" <<YAML
log:
  level: info
member_cron:
  members: $tmp/members.jsonl
  schedules: $tmp/schedules.yaml
  model: $REPO/services/member-cron/model.yaml
  batch: $BATCH
  lease: 30s
kafka:
  producer:
    linger.ms: $LINGER
    batch.size: 1000000
    batch.num.messages: 100000
    queue.buffering.max.messages: 2000000
    queue.buffering.max.kbytes: 2097152
    compression.codec: lz4
YAML
aport=$(bench_port)
RTE_REDIS_URL=redis://127.0.0.1:$rport RTE_KAFKA_BROKERS=$KAFKA_BROKERS \
RTE_ADMIN_ADDR=127.0.0.1:$aport RTE_HTTP_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
RTE_CLOCK_START=2026-01-05T00:00:00Z \
    "$BUILD/bin/member-cron" --config "$tmp/config.yaml" 2>"$tmp/cron.log" &
cpid=$!
bench_track $cpid
i=0
until curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1; do
    sleep 0.2; i=$((i + 1))
    [ $i -lt 300 ] || { echo "member-cron did not become ready"; tail "$tmp/cron.log"; exit 1; }
done
rss_loaded=$(awk '/VmRSS/{print $2}' "/proc/$cpid/status")
curl -sf -X POST "http://127.0.0.1:$aport/v1/schedules/bench/run" >"$tmp/run.json"
/usr/bin/python3 - "$aport" "$tmp/run.json" <<'PY'
import json, sys, time, urllib.request
port, fire = sys.argv[1], json.load(open(sys.argv[2]))["fire_ms"]
while True:
    doc = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/schedules"))
    last = doc["schedules"][0]["last"]
    if last and last["fire_ms"] == fire and last["state"] == "done":
        break
    time.sleep(0.05)
PY
rss_peak=$(awk '/VmHWM/{print $2}' "/proc/$cpid/status")
/usr/bin/python3 - "$aport" <<'PY'
import json, sys, urllib.request
from datetime import datetime
port = sys.argv[1]
last = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/schedules"))["schedules"][0]["last"]
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
secs = t(last["finished_at"]) - t(last["started_at"])
m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
likely = sum(float(l.split()[-1]) for l in m.splitlines()
             if l.startswith("member_cron_events_emitted_total") and "app_usage_likely" in l)
print(f"member_cron_events {last['emitted']} app_usage_likely {int(likely)} seconds {secs:.3f}")
print(f"member_cron_events_per_second {last['emitted'] / secs:.0f} "
      f"(all messages {(last['emitted'] + likely) / secs:.0f}/s)")
PY
echo "member_cron_rss_kb loaded $rss_loaded peak $rss_peak"
grep -o "schedule bench fire [0-9]*: done[^\"]*" "$tmp/cron.log" || true
echo "reproduce: N=$N BATCH=$BATCH LINGER=$LINGER sh bench/member-cron.sh $BUILD   (or make bench-member-cron)"
