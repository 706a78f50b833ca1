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
#   (b) 100,000 cached members, Zipf(s=1) access, 64 connections
#   (c) one hot cached member, 32 connections (the latency goal: p99 < 1 ms)
#   (d) the same member at a fixed rate, RATE req/s (default 10000) over 32
#       connections, timed from each request's due time (tests/programs/
#       latency-probe: open loop, so the figure is the server's latency, not
#       the queueing of a saturated machine that wrk's closed loop measures)
# Both caches are primed first: the gateway's Redis holds every member's
# entry (as the warmer leaves it), nginx's cache is filled by one request
# per member through stedi-sim, and then each tool gets the same priming
# pass through its front door (one request per member), so the gateway's
# in-process L1 starts as warm as nginx's cache. Prints req/s and p50/p99 for each
# tool and the ratios; figures are printed, not asserted. Needs wrk and
# nginx (apt-get install wrk nginx-light). D=<seconds> per run (default 5),
# N=<members> (default 100000). GATEWAY=<binary> runs another cache-gateway
# build (a sanitizer build, say) against the same set-up. KEEP=1 leaves
# everything running afterwards (bench/lib.sh).
set -eu
BUILD=${1:-build}
D=${D:-5}
RATE=${RATE:-10000}
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
    RTE_PORTS_FILE="$tmp/sim.ports" RTE_LOG_LEVEL=warn "$BUILD/bin/stedi-sim" 2>"$tmp/sim.log" &
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

RTE_REDIS_URL="redis://127.0.0.1:$RPORT" RTE_KAFKA_BROKERS="$KAFKA_BROKERS" \
    RTE_STEDI_BASE_URL="http://127.0.0.1:$SIMPORT" RTE_CACHE_MEMBER_KEY_SECRET=$SECRET \
    RTE_GATEWAY_MEMBER_DIR="$tmp/members.jsonl" RTE_LOG_LEVEL=error RTE_HTTP_THREADS=$THREADS \
    RTE_HTTP_ADDR=127.0.0.1:0 RTE_ADMIN_ADDR=127.0.0.1:0 RTE_GRPC_ADDR=127.0.0.1:0 \
    RTE_PORTS_FILE="$tmp/gw.ports" "${GATEWAY:-$BUILD/bin/cache-gateway}" 2>"$tmp/gw.log" &
GWPID=$!
bench_track $GWPID
i=0
while [ ! -s "$tmp/gw.ports" ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && { echo "cache-gateway did not start" >&2; cat "$tmp/gw.log" >&2; exit 1; }
    sleep 0.05
done
GWPORT=$($PY -c "import json;print(json.load(open('$tmp/gw.ports'))['http'])")

chmod 755 "$tmp"
mkdir -p "$tmp/nginx/cache"
chmod -R 777 "$tmp/nginx"
cat >"$tmp/nginx.conf" <<NGEOF
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
daemon on;
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
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp" 2>"$tmp/nginx.start" || {
    cat "$tmp/nginx.start" >&2; exit 1; }
i=0
until [ -s "$tmp/nginx.pid" ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05; done
bench_track "$(cat "$tmp/nginx.pid")" # nginx daemonizes: its master's pid

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

run() { # name url connections [script]
    if [ -n "${4:-}" ]; then
        out=$(wrk -t2 -c"$3" -d"${D}"s --latency -s "$4" "$2" 2>&1)
    else
        out=$(wrk -t2 -c"$3" -d"${D}"s --latency "$2" 2>&1)
    fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-34s req/s %10s  p50 %8s  p99 %8s  non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
    if ! kill -0 "$GWPID" 2>/dev/null; then
        echo "bench-gateway: cache-gateway exited during '$1'; its log:" >&2
        tail -40 "$tmp/gw.log" >&2
        exit 1
    fi
    eval "$5=$rps"
}
echo "bench-gateway: wrk -t2, ${D}s per run, $N members, both caches primed"
run "gateway (a) hot member  c=64" "http://127.0.0.1:$GWPORT/v1/eligibility/Z000001" 64 "" GA
run "nginx   (a) hot member  c=64" "http://127.0.0.1:$NPORT/v1/eligibility/Z000001" 64 "" NA
run "gateway (b) zipf $N c=64" "http://127.0.0.1:$GWPORT" 64 "$tmp/zipf.lua" GB
run "nginx   (b) zipf $N c=64" "http://127.0.0.1:$NPORT" 64 "$tmp/zipf.lua" NB
run "gateway (c) hot member  c=32" "http://127.0.0.1:$GWPORT/v1/eligibility/Z000001" 32 "" GC
run "nginx   (c) hot member  c=32" "http://127.0.0.1:$NPORT/v1/eligibility/Z000001" 32 "" NC
lat() { # name port
    out=$("$BUILD/bin/latency-probe" "$2" /v1/eligibility/Z000001 32 "$RATE" "$D" 2>&1) || true
    printf '%-34s %s\n' "$1" "$out"
}
lat "gateway (d) open loop c=32 ${RATE}/s" "$GWPORT"
lat "nginx   (d) open loop c=32 ${RATE}/s" "$NPORT"
awk -v ga="$GA" -v na="$NA" -v gb="$GB" -v nb="$NB" -v gc="$GC" -v nc="$NC" 'BEGIN {
    printf "ratio gateway/nginx req/s (a) %.2f   (b) %.2f   (c) %.2f\n", (na > 0 ? ga / na : 0),
        (nb > 0 ? gb / nb : 0), (nc > 0 ? gc / nc : 0) }'
curl -s "http://127.0.0.1:$($PY -c "import json;print(json.load(open('$tmp/gw.ports'))['admin'])")/metrics" |
    grep -E '^rte_gateway_l1_total|^rte_cache_hit_total|^rte_cache_miss_total|^rte_gateway_events_total' || true
echo "reproduce: D=$D N=$N THREADS=$THREADS RATE=$RATE sh bench/gateway.sh $BUILD   (or: make bench-gateway)"
