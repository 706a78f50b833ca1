#!/bin/sh
# gateway.sh - cache-gateway hit path against nginx proxy_cache, side by side.
#
# Usage: sh bench/gateway.sh [BUILD_DIR]     (make bench-gateway passes build/)
# Starts redis-server, the Kafka dev broker, stedi-sim, one cache-gateway and
# nginx (Debian's package) as a caching reverse proxy in front of stedi-sim
# (proxy_cache_lock on, proxy_cache_use_stale updating error timeout,
# proxy_cache_background_update on), all on free loopback ports, then runs
# wrk (2 threads) against both:
#   (a) one hot cached member, 64 connections
#   (b) 100,000 cached members, Zipf(s=1) access, 64 connections (after one
#       unmeasured warm-up round per tool: the gateway's L1 in its steady state)
#   (c) one hot cached member, 32 connections (the latency goal: p99 < 1 ms)
#   (c2) the same with the clients pinned: one single-thread wrk per CPU
#       (taskset), 16 connections each, latency histograms merged
#   (d) the same member at fixed rates, RATES req/s (default "10000 20000")
#       over 32 connections, timed from each request's due time (tests/
#       programs/latency-probe: open loop, so the figure is the server's
#       latency, not the queueing of a saturated machine that wrk's closed
#       loop measures). Before (d) tests/programs/cpu-stalls prints how often
#       each idle CPU vanished for over 0.1/0.5/2 ms: on a shared VM that is
#       the floor under any p99.
# Every phase runs ROUNDS rounds (default 5) of D seconds with the two tools
# alternating; each figure is the median of its rounds, and the rounds are
# printed too.
# Both caches are primed first: the gateway's Redis holds every member's
# entry (as the warmer leaves it), nginx's cache is filled by one request
# per member through stedi-sim, and then each tool gets the same priming
# pass through its front door (one request per member), so the gateway's
# in-process L1 starts as warm as nginx's cache. Prints req/s and p50/p99 for each
# tool and the ratios; figures are printed, not asserted. Needs wrk and
# nginx (apt-get install wrk nginx-light). D=<seconds> per round (default 5),
# N=<members> (default 100000). GATEWAY=<binary> runs another cache-gateway
# build (a sanitizer build, say) against the same set-up. KEEP=1 leaves
# everything running afterwards (bench/lib.sh).
set -eu
BUILD=${1:-build}
D=${D:-5}
RATES=${RATES:-10000 20000}
ROUNDS=${ROUNDS:-5} # rounds per phase, the two tools alternating
N=${N:-100000}
THREADS=${THREADS:-2} # gateway event loops (http.threads), like nginx's worker_processes 2
PY=/usr/bin/python3
for t in wrk nginx redis-server; do
    command -v $t >/dev/null 2>&1 || [ -x /usr/sbin/$t ] || {
        echo "bench-gateway: $t is missing (apt-get install wrk nginx-light redis-server)" >&2
        exit 1
    }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
. "$(dirname "$0")/lib.sh"
bench_init gw_bench
tmp=$BENCH_DIR
NPORT=$(bench_port)
SECRET=bench-secret

bench_redis
RPORT=$REDIS_PORT
bench_broker "$BUILD/bin"
RTE_CLOCK_SCALE=1000 RTE_SIM_LATENCY_P50=0 RTE_SIM_LATENCY_P95=0 RTE_SIM_MAX_CONCURRENT=10000 \
    RTE_HTTP_ADDR=127.0.0.1:0 RTE_ADMIN_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
    RTE_PORTS_FILE="$tmp/sim.ports" RTE_LOG_LEVEL=warn "$BUILD/bin/stedi-sim" >/dev/null 2>"$tmp/sim.log" &
bench_track $!
i=0
while [ ! -s "$tmp/sim.ports" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "stedi-sim did not start" >&2; exit 1; }
    sleep 0.05
done
SIMPORT=$($PY -c "import json;print(json.load(open('$tmp/sim.ports'))['http'])")

# members Z000001..: the directory for the gateway, the cache entries for Redis
$PY - "$tmp" "$N" "$RPORT" "$SECRET" <<'PYEOF'
import hashlib, hmac, json, sys, time
import redis
tmp, n, port, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(f"{tmp}/members.jsonl", "w") as f:
    for i in range(1, n + 1):
        f.write(json.dumps({"member_id": "Z%06d" % i, "first_name": "Bench", "last_name": "Member",
                            "date_of_birth": "1980-01-01", "trading_partner_id": "87726"}) + "\n")
now = int(time.time() * 1000)
iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)
val = json.dumps({"eligible": True, "copay_amount": 25, "network_status": "in_network",
                  "coverage_start": "2026-01-01", "coverage_end": "2026-12-31",
                  "cached_at": iso(now), "fresh_until": iso(now + 22 * 3600 * 1000),
                  "source": "stedi_batch"})
r = redis.Redis(port=port)
p = r.pipeline(transaction=False)
for i in range(1, n + 1):
    mk = hmac.new(secret.encode(), ("Z%06d" % i).encode(), hashlib.sha256).hexdigest()[:32]
    p.set(f"rte:eligibility:{mk}:87726", val, px=72 * 3600 * 1000)
    if i % 10000 == 0:
        p.execute()
p.execute()
PYEOF

# start_service NAME BINARY [VAR=value...]: one of our services on this set-up
# (this Redis and broker, free loopback ports, THREADS loops); waits for its
# ports file and sets <NAME>PID, <NAME>PORT (public) and <NAME>ADMIN
start_service() {
    name=$1 bin=$2; shift 2
    env RTE_REDIS_URL="redis://127.0.0.1:$RPORT" RTE_KAFKA_BROKERS="$KAFKA_BROKERS" \
        RTE_LOG_LEVEL=error RTE_HTTP_THREADS=$THREADS \
        RTE_HTTP_ADDR=127.0.0.1:0 RTE_ADMIN_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
        RTE_PORTS_FILE="$tmp/$name.ports" "$@" "$bin" >/dev/null 2>"$tmp/$name.log" &
    eval "${name}PID=$!"
    bench_track $!
    i=0
    while [ ! -s "$tmp/$name.ports" ]; do
        i=$((i + 1)); [ $i -gt 1200 ] && { echo "$bin ($name) did not start" >&2; cat "$tmp/$name.log" >&2; exit 1; }
        sleep 0.05
    done
    eval "${name}PORT=\$($PY -c \"import json;print(json.load(open('$tmp/$name.ports'))['http'])\")"
    eval "${name}ADMIN=\$($PY -c \"import json;print(json.load(open('$tmp/$name.ports'))['admin'])\")"
}
start_gateway() { # NAME [VAR=value...]
    n=$1; shift
    start_service "$n" "${GATEWAY:-$BUILD/bin/cache-gateway}" \
        RTE_STEDI_BASE_URL="http://127.0.0.1:$SIMPORT" RTE_CACHE_MEMBER_KEY_SECRET=$SECRET \
        RTE_GATEWAY_MEMBER_DIR="$tmp/members.jsonl" RTE_GRPC_AUTH_REQUIRED=false "$@"
}
start_gateway gw
GWPID=$gwPID GWPORT=$gwPORT
# the same gateway with http.steer_by_cpu (a loop per CPU, each taking the
# connections that arrive on its CPU), where the machine has a CPU per loop
NCPU=$($PY -c 'import os;print(len(os.sched_getaffinity(0)))')
SGWPORT=""
if [ "$THREADS" -ge 2 ] && [ "$THREADS" -le "$NCPU" ]; then
    start_gateway sgw RTE_HTTP_STEER_BY_CPU=on
    SGWPORT=$sgwPORT
    # the steered floor: our HTTP stack answering a constant (skeleton-probe's
    # echo route, on the loop, no cache, no events), loops steered the same way
    start_service probe "$BUILD/bin/skeleton-probe" PROBE_TOPIC=bench.probe RTE_HTTP_STEER_BY_CPU=on
    PROBEPORT=$probePORT
fi

FLOORPORT=$(bench_port)
# a gateway hit's body, 412 bytes (its headers add ~200 more)
FLOORBODY='{"member_id":"Z000001","trading_partner_id":"87726","eligible":true,"copay_amount":25,"network_status":"in_network","coverage_start":"2026-01-01","coverage_end":"2026-12-31","cache_status":"HIT","_metadata":{"cached":true,"age_seconds":764,"expires_at":"2026-11-24T17:23:05.319Z","cached_at":"2026-11-23T19:23:05.319Z","source":"stedi_batch","mode":"DEFAULT"},"request_id":"8573754f-4220-4e25-8ee2-8cf09d06d938"}'

chmod 755 "$tmp"
mkdir -p "$tmp/nginx/cache"
chmod -R 777 "$tmp/nginx"
cat >"$tmp/nginx.conf" <<NGEOF
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
daemon off; # started like the gateway: same session, same scheduling group
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000; # the gateway has no per-connection limit either
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    proxy_cache_path $tmp/nginx/cache levels=1:2 keys_zone=rte:64m max_size=2g inactive=3d;
    upstream sim { server 127.0.0.1:$SIMPORT; keepalive 64; }
    server { # the floor: a constant answer of the gateway's size, no cache, no upstream
        listen 127.0.0.1:$FLOORPORT;
        location / { default_type application/json; return 200 '$FLOORBODY'; }
    }
    server {
        listen 127.0.0.1:$NPORT;
        location ~ ^/v1/eligibility/([A-Za-z0-9]+)\$ {
            set \$member \$1;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            rewrite ^ /2024-04-01/change/medicalnetwork/eligibility/v3 break;
            proxy_pass http://sim;
            proxy_method POST;
            proxy_set_header Authorization "Key test-key";
            proxy_set_header Content-Type application/json;
            proxy_set_body '{"controlNumber":"123456789","tradingPartnerServiceId":"87726","provider":{"organizationName":"Bench","npi":"1999999984"},"subscriber":{"memberId":"\$member","firstName":"Bench","lastName":"Member","dateOfBirth":"19800101"},"encounter":{"serviceTypeCodes":["30"]}}';
            proxy_cache rte;
            proxy_cache_key \$request_uri;
            proxy_cache_methods GET;
            proxy_cache_valid 200 22h;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_cache_lock on;
            proxy_cache_use_stale updating error timeout;
            proxy_cache_background_update on;
        }
    }
}
NGEOF
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp" >"$tmp/nginx.start" 2>&1 &
bench_track $!
i=0
until [ -s "$tmp/nginx.pid" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "nginx did not start" >&2; cat "$tmp/nginx.start" "$tmp/nginx.err" >&2; exit 1; }
    sleep 0.05
done

# wrk scripts: one hot member; Zipf over N members; sequential priming
cat >"$tmp/zipf.lua" <<LUAEOF
local n = $N
local cdf = {}
init = function(args)
    local sum = 0
    for i = 1, n do sum = sum + 1 / i end
    local acc = 0
    for i = 1, n do acc = acc + (1 / i) / sum; cdf[i] = acc end
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end
request = function()
    local u, lo, hi = math.random(), 1, n
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    return wrk.format("GET", string.format("/v1/eligibility/Z%06d", lo))
end
LUAEOF
cat >"$tmp/prime.lua" <<LUAEOF
local i = 0
local step, off = 1, 0
setup = function(thread) thread:set("off", off); off = off + 1 end
init = function(args) step = 2; i = tonumber(off) or 0 end
request = function()
    i = i + step
    if i > $N then i = (i % step) + 1 end
    return wrk.format("GET", string.format("/v1/eligibility/Z%06d", i))
end
LUAEOF

wait_up() { i=0; until curl -s -o /dev/null "$1"; do i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.05; done; }
wait_up "http://127.0.0.1:$NPORT/v1/eligibility/Z000001"
wait_up "http://127.0.0.1:$GWPORT/v1/eligibility/Z000001"
# prime both: every member once through each front door (nginx fetches from stedi-sim)
wrk -t2 -c16 -d"$(( N / 8000 + 2 ))"s -s "$tmp/prime.lua" "http://127.0.0.1:$NPORT" >/dev/null 2>&1
wrk -t2 -c16 -d"$(( N / 8000 + 2 ))"s -s "$tmp/prime.lua" "http://127.0.0.1:$GWPORT" >/dev/null 2>&1
# the steered gateway runs the hot-member phases only: that member is all it needs
[ -z "$SGWPORT" ] || wait_up "http://127.0.0.1:$SGWPORT/v1/eligibility/Z000001"
wait_up "http://127.0.0.1:$FLOORPORT/"

# Every phase runs ROUNDS times with the two tools alternating, so a burst of
# noise from the shared machine lands in one round of one tool instead of
# deciding the figure; each line shows the rounds and their median.
median() { tr ' ' '\n' | grep -v '^-*$' | sort -n | awk '{v[NR] = $1} END {print NR ? v[int((NR + 1) / 2)] : "-"}'; }
gw_alive() {
    for g in gw ${SGWPORT:+sgw}; do
        eval "pid=\$${g}PID"
        kill -0 "$pid" 2>/dev/null && continue
        echo "bench-gateway: cache-gateway ($g) exited during $1; its log:" >&2
        tail -40 "$tmp/$g.log" >&2
        exit 1
    done
}
wrk_once() { # url connections [script] -> "req/s p50us p99us non2xx"
    if [ "${CLIENTS:-}" = pinned ]; then
        wrk_pinned "$1" "$2"
        return
    fi
    if [ -n "${3:-}" ]; then
        out=$(wrk -t2 -c"$2" -d"${D}"s --latency -s "$3" "$1" 2>&1)
    else
        out=$(wrk -t2 -c"$2" -d"${D}"s --latency "$1" 2>&1)
    fi
    echo "$out" | awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000;
                                         if (v ~ /s$/) return v * 1000000; return "-" }
        /Requests\/sec/ { r = int($2) } $1 == "50%" { a = us($2) } $1 == "99%" { b = us($2) }
        /Non-2xx/ { e += $NF }
        END { printf "%s %s %s %d\n", (r == "" ? "-" : r), (a == "" ? "-" : int(a)), (b == "" ? "-" : int(b)), e }'
}
# the clients' CPUs in the pinned phase: one wrk per CPU, as many as the gateway has loops
CLIENT_CPUS=$($PY -c "import os;print(' '.join(map(str, sorted(os.sched_getaffinity(0))[:$THREADS])))")
cat >"$tmp/hist.lua" <<'LUAEOF'
-- after the run: the request count and duration, then every latency (us) seen and how often
done = function(summary, latency, requests)
    io.write(string.format("requests %d duration_us %d\n", summary.requests, summary.duration))
    local i = 1
    while true do
        local v, n = latency(i)
        if v == nil or v == 0 then break end
        io.write(string.format("h %d %d\n", v, n))
        i = i + 1
    end
end
LUAEOF
# wrk_pinned url connections -> "req/s p50us p99us non2xx": one single-thread
# wrk per client CPU (taskset), the connections split between them, so each
# client's connections arrive on its CPU and stay there; the figures merge
# their latency histograms and add up their rates
wrk_pinned() {
    set -- "$1" "$(( $2 / $(echo $CLIENT_CPUS | wc -w) ))"
    k=0 pids=""
    for cpu in $CLIENT_CPUS; do
        k=$((k + 1))
        taskset -c "$cpu" wrk -t1 -c"$2" -d"${D}"s -s "$tmp/hist.lua" "$1" >"$tmp/client.$k" 2>&1 &
        pids="$pids $!"
    done
    wait $pids
    $PY - "$tmp"/client.* <<'PYEOF'
import sys
rate, hist, bad = 0.0, {}, 0
for name in sys.argv[1:]:
    for line in open(name):
        f = line.split()
        if f[:1] == ["h"]:
            hist[int(f[1])] = hist.get(int(f[1]), 0) + int(f[2])
        elif f[:1] == ["requests"] and int(f[3]) > 0:
            rate += int(f[1]) / (int(f[3]) / 1e6)
        elif line.lstrip().startswith("Non-2xx"):
            bad += int(f[-1])
total = sum(hist.values())
def pct(q):
    seen = 0
    for v in sorted(hist):
        seen += hist[v]
        if seen >= q * total:
            return v
    return "-"
print(int(rate), pct(0.50), pct(0.99), bad)
PYEOF
    rm -f "$tmp"/client.*
}
accepted() { # admin port -> connections each loop has accepted so far, "n0 n1"
    curl -s "http://127.0.0.1:$1/metrics" | awk '/^rte_http_connections_accepted_total/ { s = s " " $2 } END { print s }'
}
conn_split() { # before after -> the connections each loop took in between, "16/16"
    echo "$1 / $2" | awk -F' / ' '{ n = split($1, a, " "); split($2, b, " ")
        for (i = 1; i <= n; i++) s = s (i > 1 ? "/" : "") (b[i] - a[i]); print s }'
}
# contestant_url NAME:PORT[:PATH] PATH -> its URL: the phase's PATH, or its own
contestant_url() {
    rest=${1#*:} port=${rest%%:*} cpath=$2
    [ "$rest" = "$port" ] || cpath=${rest#*:}
    echo "http://127.0.0.1:$port$cpath"
}
# wrk_phase LABEL PATH CONNS SCRIPT VAR NAME:PORT[:PATH]...: every round runs each
# contestant once, in turn; prints each one's medians and sets VAR to the
# median req/s of every contestant in order. A steered gateway's rounds also
# show how its loops shared the round's connections (from the accepted-
# connection counters, read between rounds: nothing runs during one).
wrk_phase() {
    LABEL=$1 path=$2 conns=$3 script=$4 var=$5
    shift 5
    bad=0
    if [ -n "${WARMUP:-}" ]; then # one unmeasured round each first
        for c in "$@"; do
            wrk_once "$(contestant_url "$c" "$path")" "$conns" "$script" >/dev/null
        done
    fi
    for r in $(seq "$ROUNDS"); do
        k=0
        for c in "$@"; do
            k=$((k + 1))
            [ "${c%%:*}" = "gateway-steered" ] && before=$(accepted "$sgwADMIN")
            set -- $(wrk_once "$(contestant_url "$c" "$path")" "$conns" "$script") "$@"
            eval "r$k=\"\${r$k:-} $1\" p50_$k=\"\${p50_$k:-} $2\" p99_$k=\"\${p99_$k:-} $3\""
            bad=$((bad + $4))
            shift 4
            if [ "${c%%:*}" = "gateway-steered" ]; then
                eval "split_$k=\"\${split_$k:-} $(conn_split "$before" "$(accepted "$sgwADMIN")")\""
            fi
            gw_alive "$LABEL"
        done
    done
    k=0 meds="" p99s=""
    for c in "$@"; do
        k=$((k + 1))
        eval "rr=\$r$k a=\$p50_$k b=\$p99_$k sp=\${split_$k:-}"
        printf '%-36s req/s %6s  p50 %5sus  p99 %6sus   req/s rounds:%s   p99 rounds:%s%s\n' \
            "${c%%:*} $LABEL" "$(echo $rr | median)" "$(echo $a | median)" "$(echo $b | median)" \
            "$rr" "$b" "${sp:+   conns per loop:$sp}"
        meds="$meds $(echo $rr | median)" p99s="$p99s $(echo $b | median)"
        eval "unset r$k p50_$k p99_$k split_$k"
    done
    [ "$bad" -eq 0 ] || echo "bench-gateway: $bad non-2xx answers in $LABEL" >&2
    eval "$var=\"$meds\" ${var}_P99=\"$p99s\""
}
echo "bench-gateway: wrk -t2, ${D}s per round, $ROUNDS rounds per phase (median shown), $N members, both caches primed"
STEERED=${SGWPORT:+gateway-steered:$SGWPORT}
wrk_phase "(a) hot member c=64" /v1/eligibility/Z000001 64 "" PA gateway:$GWPORT nginx:$NPORT $STEERED
# (b) starts with a warm-up round each: (a) ran longer than the gateway keeps an
# L1 entry (gateway.l1_ttl_subscribed, 60 s), so without it (b)'s first rounds
# would measure the L1 refilling from Redis rather than its steady state
# (nginx's cache keeps its entries; the warm-up changes nothing for it)
WARMUP=1
wrk_phase "(b) zipf $N c=64" "" 64 "$tmp/zipf.lua" PB gateway:$GWPORT nginx:$NPORT
WARMUP=""
STEERED_FLOOR=${SGWPORT:+steered-constant:$PROBEPORT:/v1/echo?msg=bench-constant-answer}
wrk_phase "(c) hot member c=32" /v1/eligibility/Z000001 32 "" PC gateway:$GWPORT nginx:$NPORT \
    $STEERED nginx-constant:$FLOORPORT $STEERED_FLOOR
# (c) again with the clients pinned: one wrk per CPU. wrk -t2 lets the
# scheduler move its threads, and when both land on one CPU every steered
# connection goes to one loop (the unbalanced rounds above); pinned clients
# are how connections arrive from a NIC whose queues are spread over the CPUs
CLIENTS=pinned
wrk_phase "(c2) hot member c=32, client per CPU" /v1/eligibility/Z000001 32 "" PC2 \
    gateway:$GWPORT nginx:$NPORT $STEERED nginx-constant:$FLOORPORT $STEERED_FLOOR
CLIENTS=""
# (d) open loop at fixed rates (latency-probe), timed as it explains
probe() { # port rate -> "p50 p99" in microseconds, or "- -"
    "$BUILD/bin/latency-probe" "$1" /v1/eligibility/Z000001 32 "$2" "$D" 2>/dev/null |
        awk '{for (i = 1; i < NF; i++) { if ($i == "p50") a = $(i + 1); if ($i == "p99") b = $(i + 1) }
              sub("us", "", a); sub("us", "", b); print (a == "" ? "-" : a), (b == "" ? "-" : b)}'
}
# the floor: how often the (otherwise idle) machine takes a CPU away for long
"$BUILD/bin/cpu-stalls" 2 | sed 's/^/machine, idle: /'
DMED=""
for rate in $RATES; do
    g99="" n99="" g50="" n50=""
    for r in $(seq "$ROUNDS"); do
        set -- $(probe "$GWPORT" "$rate"); g50="$g50 $1"; g99="$g99 $2"
        gw_alive "(d) at $rate/s"
        set -- $(probe "$NPORT" "$rate"); n50="$n50 $1"; n99="$n99 $2"
    done
    gm=$(echo $g99 | median) nm=$(echo $n99 | median)
    printf '%-30s p50 %5sus  p99 %6sus   p99 rounds:%s\n' "gateway (d) open loop ${rate}/s" \
        "$(echo $g50 | median)" "$gm" "$g99"
    printf '%-30s p50 %5sus  p99 %6sus   p99 rounds:%s\n' "nginx   (d) open loop ${rate}/s" \
        "$(echo $n50 | median)" "$nm" "$n99"
    DMED="$DMED $rate:$gm:$nm"
done
# PA: gateway nginx [steered]; PB: gateway nginx; PC: gateway nginx [steered] constant [steered-constant]
echo "$PA / $PB / $PC" | awk -F' / ' '{ split($1, a, " "); split($2, b, " "); split($3, c, " ")
    printf "ratio gateway/nginx median req/s (a) %.2f   (b) %.2f   (c) %.2f\n",
        (a[2] > 0 ? a[1] / a[2] : 0), (b[2] > 0 ? b[1] / b[2] : 0), (c[2] > 0 ? c[1] / c[2] : 0)
    if (length(a) > 2)
        printf "ratio gateway-steered/nginx median req/s (a) %.2f   (c) %.2f\n",
            (a[2] > 0 ? a[3] / a[2] : 0), (c[2] > 0 ? c[3] / c[2] : 0) }'
for ph in "(c):$PC_P99" "(c2):$PC2_P99"; do
    echo "${ph#*:}" | awk -v ph="${ph%%:*}" '{ printf "%s median p99 at c=32: gateway %s us, nginx %s us", ph, $1, $2
    if (NF > 3) printf ", gateway-steered %s us", $3
    printf ", nginx-constant %s us", (NF > 3 ? $4 : $3)
    if (NF > 3) printf ", steered-constant %s us", $5
    printf "; goal < 1000\n" }'
done
for m in $DMED; do
    echo "$m" | awk -F: '{ printf "ratio gateway/nginx median p99 (d) at %s/s: %.2f  (gateway %s us, goal < 1000)\n",
        $1, ($3 > 0 ? $2 / $3 : 0), $2 }'
done
curl -s "http://127.0.0.1:$($PY -c "import json;print(json.load(open('$tmp/gw.ports'))['admin'])")/metrics" |
    grep -E '^rte_gateway_l1_total|^rte_cache_hit_total|^rte_cache_miss_total|^rte_gateway_events_total' || true
[ -n "$SGWPORT" ] || echo "bench-gateway: no steered gateway (THREADS=$THREADS, $NCPU CPUs: http.steer_by_cpu needs 2 <= THREADS <= CPUs)"
echo "reproduce: D=$D N=$N THREADS=$THREADS RATES='$RATES' ROUNDS=$ROUNDS sh bench/gateway.sh $BUILD   (or: make bench-gateway)"
