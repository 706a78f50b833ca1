"""cache-gateway: cache-control modes, stampede protection, async, events, faults.

Real processes only: redis-server, the Kafka dev broker, tools/stedi-sim and
two cache-gateway replicas sharing one Redis. stedi-sim's /_sim/stats counts
the real-time calls, so every test asserts exactly how many Stedi calls a
sequence of requests made. Stale entries are planted straight into Redis in
the cache format (libcommon/cache_entry), under the keyed member hash.
"""
import concurrent.futures as cf
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import time
import uuid

import pytest
import requests

from conftest import (KafkaBroker, RedisServer, Service, start_stedi_sim, stop_clean,
                      wait_for)

SECRET = "it-gateway-secret"
TP = "87726"
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                    "cache-gateway")
MEMBERS = os.path.join(DATA, "members.jsonl")
HOUR = 3600 * 1000


def member_key(mid):
    return hmac.new(SECRET.encode(), mid.encode(), hashlib.sha256).hexdigest()[:32]


def cache_key(mid, tp=TP):
    return f"rte:eligibility:{member_key(mid)}:{tp}"


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def plant(rds, mid, cached_ago_ms, fresh_ms=22 * HOUR, copay=99, tp=TP, source="stedi_batch",
          announce=True):
    """Write a cache entry cached cached_ago_ms ago and fresh for fresh_ms after that.

    Like rte_cache_put, the write is announced on rte:cache:written (unless
    announce is False, which only a writer bypassing libcommon would do)."""
    now = int(time.time() * 1000)
    cached = now - cached_ago_ms
    value = {"eligible": True, "copay_amount": copay, "network_status": "in_network",
             "coverage_start": "2026-01-01", "coverage_end": "2026-12-31",
             "cached_at": iso(cached), "fresh_until": iso(cached + fresh_ms), "source": source}
    rds.set(cache_key(mid, tp), json.dumps(value), px=72 * HOUR)
    if announce:
        rds.publish("rte:cache:written", cache_key(mid, tp))


def new_member():
    """A fresh member id the simulator answers as covered: its trailing number
    n has n % 20 == 1 (docs/stedi-sim.md: classes 5 and 15 are payer errors,
    0, 9 and 19 inactive), so no test depends on which class a random id hits."""
    u = uuid.uuid4()
    return f"T{u.hex[:12].upper()}Z{(u.int % 10**6) * 20 + 1}"


def body(mid, mode=None, tp=TP):
    b = {"member": {"member_id": mid, "first_name": "Ann", "last_name": "Lee",
                    "date_of_birth": "1980-01-02"},
         "trading_partner_id": tp}
    if mode:
        b["cache_control"] = mode
    return b


def stats(sim):
    return sim.get("http", "/_sim/stats").json()


class Gateway:
    def __init__(self, svc):
        self.svc = svc

    def post(self, b, headers=None, timeout=20):
        return requests.post(self.svc.url("http", "/v1/eligibility/check"), json=b,
                             headers=headers or {}, timeout=timeout)

    def get(self, path, headers=None, timeout=20):
        return requests.get(self.svc.url("http", path), headers=headers or {}, timeout=timeout)

    def metrics(self):
        return self.svc.get("admin", "/metrics").text


def start_gateway(workdir, redis_url, sim, broker, **extra):
    env = {"RTE_REDIS_URL": redis_url, "RTE_KAFKA_BROKERS": broker.bootstrap,
           "RTE_STEDI_BASE_URL": f"http://127.0.0.1:{sim.ports['http']}" if sim else
           "http://127.0.0.1:9",
           "RTE_STEDI_API_KEY": "test-key", "RTE_CACHE_MEMBER_KEY_SECRET": SECRET,
           "RTE_GATEWAY_MEMBER_DIR": MEMBERS, "RTE_GATEWAY_XFETCH_BETA": "0",
           "RTE_GATEWAY_DEADLINE": "8s", "RTE_GATEWAY_FETCH_TIMEOUT": "6s",
           "RTE_LOG_LEVEL": "warn", "RTE_SHUTDOWN_DEADLINE": "15s"}
    env.update({k: str(v) for k, v in extra.items()})
    return Gateway(Service("cache-gateway", env, workdir).start())


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("gw"))
    rds = RedisServer(wd)
    rds.start()
    broker = KafkaBroker(wd)  # the dev broker creates rte.events itself
    broker.start()
    # 2 s simulated median at scale 10: 200 ms real per call
    sim = start_stedi_sim(wd, latency_p50="2s", latency_p95="3s", RTE_CLOCK_SCALE="10")
    a = start_gateway(wd, rds.url, sim, broker)
    b = start_gateway(wd, rds.url, sim, broker)
    e = type("Env", (), {})()
    e.wd, e.redis, e.broker, e.sim, e.a, e.b = wd, rds, broker, sim, a, b
    e.r = rds.client()
    yield e
    stop_clean(a.svc)
    stop_clean(b.svc)
    sim.stop()
    broker.stop()
    rds.stop()


def calls(e):
    return stats(e.sim)["realtime_calls"]


# ---- modes ----------------------------------------------------------------


def test_directory_member_miss_then_hit(env):
    mid = "GWM0001"
    env.r.delete(cache_key(mid))
    before = calls(env)
    r1 = env.a.get(f"/v1/eligibility/{mid}?trading_partner_id={TP}")
    assert r1.status_code == 200, r1.text
    j = r1.json()
    assert j["cache_status"] == "MISS"
    assert j["member_id"] == mid and j["trading_partner_id"] == TP
    assert isinstance(j["eligible"], bool)
    assert j["_metadata"]["cached"] is False
    assert j["_metadata"]["source"] == "stedi_realtime"
    assert "fwd=miss" in r1.headers["Cache-Status"] and "stored" in r1.headers["Cache-Status"]
    assert calls(env) == before + 1
    r2 = env.b.get(f"/v1/eligibility/{mid}")  # trading partner from the directory
    assert r2.status_code == 200
    j2 = r2.json()
    assert j2["cache_status"] == "HIT" and j2["_metadata"]["cached"] is True
    assert j2["_metadata"]["age_seconds"] >= 0
    assert j2["_metadata"]["expires_at"].endswith("Z")
    assert r2.headers["Cache-Control"].startswith("max-age=79200, stale-while-revalidate=")
    assert "stale-if-error=" in r2.headers["Cache-Control"]
    assert int(r2.headers["Age"]) >= 0
    assert r2.headers["Cache-Status"].startswith("rte-gateway; hit; ttl=")
    assert calls(env) == before + 1
    assert env.r.exists(cache_key(mid)) == 1


def test_cache_only(env):
    mid = new_member()
    before = calls(env)
    r = env.a.post(body(mid, "CACHE_ONLY"))
    assert r.status_code == 504 and r.json()["cache_status"] == "ERROR"
    r = env.a.post(body(mid), headers={"Cache-Control": "only-if-cached"})
    assert r.status_code == 504
    plant(env.r, mid, cached_ago_ms=30 * HOUR)  # stale
    r = env.a.post(body(mid, "cache_only"))
    assert r.status_code == 200 and r.json()["cache_status"] == "STALE"
    assert r.json()["copay_amount"] == 99
    # only-if-cached with a max-stale the entry exceeds: a miss
    r = env.a.post(body(mid), headers={"Cache-Control": "only-if-cached, max-stale=60"})
    assert r.status_code == 504
    assert calls(env) == before


def test_default_prefer_cached_bypass(env):
    mid = new_member()
    before = calls(env)
    plant(env.r, mid, cached_ago_ms=30 * HOUR)  # stale by 8 h
    r = env.a.post(body(mid, "PREFER_CACHED"))
    assert r.status_code == 200 and r.json()["cache_status"] == "STALE"
    assert r.json()["_metadata"]["age_seconds"] >= 30 * 3600 - 5
    assert calls(env) == before
    # max-stale (any) lets DEFAULT serve it too
    r = env.a.post(body(mid), headers={"Cache-Control": "max-stale"})
    assert r.json()["cache_status"] == "STALE"
    assert calls(env) == before
    # DEFAULT: stale -> Stedi
    r = env.a.post(body(mid))
    assert r.status_code == 200 and r.json()["cache_status"] == "MISS"
    assert "fwd=stale" in r.headers["Cache-Status"]
    assert calls(env) == before + 1
    r = env.b.post(body(mid, "DEFAULT"))
    assert r.json()["cache_status"] == "HIT"
    r = env.b.post(body(mid, "PREFER_CACHED"))
    assert r.json()["cache_status"] == "HIT"
    assert calls(env) == before + 1
    # BYPASS_CACHE and no-cache always call
    r = env.a.post(body(mid, "BYPASS_CACHE"))
    assert r.json()["cache_status"] == "MISS" and "fwd=bypass" in r.headers["Cache-Status"]
    r = env.b.post(body(mid), headers={"Cache-Control": "no-cache"})
    assert r.json()["cache_status"] == "MISS"
    assert calls(env) == before + 3
    # max-age=0 makes the fresh entry stale for this caller
    r = env.a.post(body(mid), headers={"Cache-Control": "max-age=0"})
    assert r.json()["cache_status"] == "MISS"
    assert calls(env) == before + 4


def test_swr_refreshes_once(env):
    mid = new_member()
    plant(env.r, mid, cached_ago_ms=25 * HOUR, copay=7)
    before = calls(env)
    gws = [env.a, env.b]
    with cf.ThreadPoolExecutor(20) as ex:
        rs = list(ex.map(lambda i: gws[i % 2].post(body(mid, "STALE_WHILE_REVALIDATE")),
                         range(20)))
    assert all(r.status_code == 200 for r in rs)
    assert all(r.json()["cache_status"] == "STALE" for r in rs)
    assert all(r.json()["copay_amount"] == 7 for r in rs)
    wait_for(lambda: calls(env) == before + 1, timeout=10, what="one background refresh")
    wait_for(lambda: env.a.post(body(mid, "STALE_WHILE_REVALIDATE")).json()["cache_status"]
             == "HIT", timeout=5, what="refreshed entry")
    time.sleep(0.5)
    assert calls(env) == before + 1
    assert 'rte_gateway_refresh_total{trigger="swr",result="refreshed"} 1' in (
        env.a.metrics() + env.b.metrics())


def test_l1_sees_foreign_writes_within_1s(env):
    mid = new_member()
    plant(env.r, mid, cached_ago_ms=1000, copay=10)
    assert env.a.post(body(mid)).json()["copay_amount"] == 10
    assert env.a.post(body(mid)).json()["copay_amount"] == 10  # from L1 now
    plant(env.r, mid, cached_ago_ms=0, copay=20)  # another writer (warmer, webhook)
    t0 = time.monotonic()
    wait_for(lambda: env.a.post(body(mid)).json()["copay_amount"] == 20, timeout=3,
             interval=0.02, what="foreign write visible")
    assert time.monotonic() - t0 <= 1.3


def test_l1_lost_invalidations_clear_it(env):
    """While the pub/sub link is down invalidations may be missed: the L1 is emptied."""
    mid = new_member()
    plant(env.r, mid, cached_ago_ms=1000, copay=10)
    time.sleep(0.3)  # let its announcement arrive first: a later one would drop the L1 copy
    assert env.a.post(body(mid)).json()["copay_amount"] == 10
    plant(env.r, mid, cached_ago_ms=0, copay=30, announce=False)  # unannounced write
    time.sleep(1.2)
    assert env.a.post(body(mid)).json()["copay_amount"] == 10  # L1 lives long while subscribed
    assert "rte_gateway_l1_subscribed 1" in env.a.metrics()
    env.r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    t0 = time.monotonic()
    wait_for(lambda: env.a.post(body(mid)).json()["copay_amount"] == 30, timeout=3,
             interval=0.02, what="L1 cleared after the subscription dropped")
    assert time.monotonic() - t0 <= 1.3
    wait_for(lambda: "rte_gateway_l1_subscribed 1" in env.a.metrics(), timeout=5,
             what="resubscribed")


# ---- stampede ---------------------------------------------------------------


def test_100_concurrent_misses_one_call(env):
    mid = new_member()
    before = calls(env)
    with cf.ThreadPoolExecutor(100) as ex:
        rs = list(ex.map(lambda i: env.a.post(body(mid)), range(100)))
    assert [r.status_code for r in rs] == [200] * 100
    assert calls(env) == before + 1
    assert sum(r.json()["cache_status"] == "MISS" for r in rs) >= 1
    assert len({r.json()["_metadata"]["cached_at"] for r in rs}) == 1


def test_two_replicas_one_call(env):
    mid = new_member()
    before = calls(env)
    gws = [env.a, env.b]
    with cf.ThreadPoolExecutor(60) as ex:
        rs = list(ex.map(lambda i: gws[i % 2].post(body(mid)), range(60)))
    assert [r.status_code for r in rs] == [200] * 60
    assert calls(env) == before + 1
    assert len({r.json()["_metadata"]["cached_at"] for r in rs}) == 1
    assert 'rte_gateway_lock_total{result="waited"}' in env.a.metrics() + env.b.metrics()


def test_200_distinct_misses_stay_within_15_slots(env):
    requests.post(env.sim.url("http", "/_sim/reset"), timeout=5)
    mids = [new_member() for _ in range(200)]
    gws = [env.a, env.b]
    with cf.ThreadPoolExecutor(200) as ex:
        rs = list(ex.map(lambda i: gws[i % 2].post(body(mids[i]), timeout=30), range(200)))
    codes = [r.status_code for r in rs]
    assert codes == [200] * 200, {c: codes.count(c) for c in set(codes)}
    s = stats(env.sim)
    assert s["realtime_calls"] == 200
    assert s["max_in_flight"] <= 15
    assert s["realtime_429"] == 0


# ---- async ----------------------------------------------------------------------


def test_respond_async_202_flow(env):
    mid = new_member()
    before = calls(env)
    r = env.a.post(body(mid), headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    assert loc.startswith("/v1/eligibility/requests/") and r.json()["request_id"] in loc
    assert r.headers["Preference-Applied"] == "respond-async"

    def done():
        x = env.b.get(loc)
        assert x.status_code in (200, 202), x.text
        return x if x.status_code == 200 else None

    res = wait_for(done, timeout=10, what="async result")
    j = res.json()
    assert j["status"] == "done" and j["http_status"] == 200
    assert j["response"]["member_id"] == mid and isinstance(j["response"]["eligible"], bool)
    assert calls(env) == before + 1
    assert env.a.post(body(mid)).json()["cache_status"] == "HIT"
    # a cached answer is given at once even with respond-async
    assert env.a.post(body(mid), headers={"Prefer": "respond-async"}).status_code == 200
    assert env.a.get("/v1/eligibility/requests/" + str(uuid.uuid4())).status_code == 404


# ---- bad input ------------------------------------------------------------------


def test_bad_input(env):
    r = env.a.post(body(new_member(), "SOMETIMES"))
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    for m in ("DEFAULT", "CACHE_ONLY", "PREFER_CACHED", "BYPASS_CACHE", "STALE_WHILE_REVALIDATE"):
        assert m in msg
    r = env.a.get(f"/v1/eligibility/GWM0001?cache_control=NOPE")
    assert r.status_code == 400 and "cache_control" in r.json()["error"]["message"]
    r = env.a.get("/v1/eligibility/bad$id")
    assert r.status_code == 400 and "member_id" in r.json()["error"]["message"]
    r = env.a.get("/v1/eligibility/" + "A" * 65)
    assert r.status_code == 400 and "member_id" in r.json()["error"]["message"]
    r = env.a.get("/v1/eligibility/GWM0001?trading_partner_id=" + "9" * 40)
    assert r.status_code == 400 and "trading_partner_id" in r.json()["error"]["message"]
    r = env.a.get("/v1/eligibility/GWM0001?trading_partner_id=a%20b")
    assert r.status_code == 400 and "trading_partner_id" in r.json()["error"]["message"]
    r = env.a.get("/v1/eligibility/NOSUCHMEMBER")
    assert r.status_code == 404 and "NOSUCHMEMBER" in r.json()["error"]["message"]
    b = body(new_member())
    b["member"]["member_id"] = "x y"
    r = env.a.post(b)
    assert r.status_code == 400 and "member.member_id" in r.json()["error"]["message"]
    b = body(new_member())
    del b["member"]["member_id"]
    r = env.a.post(b)
    assert r.status_code == 400 and "member_id" in r.json()["error"]["message"]
    b = body(new_member(), tp="bad/tp")
    r = env.a.post(b)
    assert r.status_code == 400 and "trading_partner_id" in r.json()["error"]["message"]
    b = {"member": {"member_id": "NOTINDIR1"}, "trading_partner_id": TP}
    r = env.a.post(b)
    assert r.status_code == 404 and "NOTINDIR1" in r.json()["error"]["message"]
    r = requests.post(env.a.svc.url("http", "/v1/eligibility/check"), data="{nope", timeout=5)
    assert r.status_code == 400
    r = requests.post(env.a.svc.url("http", "/v1/eligibility/check"),
                      data=json.dumps({"pad": "x" * 70000}), timeout=5)
    assert r.status_code == 413
    r = env.a.post(body(new_member()), headers={"Cache-Control": "max-stale=abc"})
    assert r.status_code == 400 and "max-stale" in r.json()["error"]["message"]


def raw_get(gw, target, headers=()):
    """GET target exactly as written (requests would re-encode a bad '%'), with
    headers as (name, value) pairs, repeated names sent as separate lines."""
    c = http.client.HTTPConnection("127.0.0.1", gw.svc.ports["http"], timeout=20)
    try:
        c.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in headers:
            c.putheader(name, value)
        c.endheaders()
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def test_query_parameters_that_cannot_be_read_are_400_without_a_stedi_call(env):
    """A parameter that cannot be decoded, is too long, or comes twice is a 400
    naming it: never "absent" (the member's default payer, DEFAULT mode, and a
    real-time Stedi call for a cold member)."""
    mid = "GWM0003"  # in the directory, never cached by another test
    env.r.delete(cache_key(mid))
    cases = [
        ("trading_partner_id=%ZZ", "trading_partner_id", "'%ZZ' is not a percent-escape"),
        ("trading_partner_id=87726%", "trading_partner_id", "'%' is not a percent-escape"),
        ("trading_partner_id=8772%6", "trading_partner_id", "'%6' is not a percent-escape"),
        ("trading_partner_id=" + "9" * 300, "trading_partner_id", "longer than"),
        ("trading_partner_id=87726&trading_partner_id=87726", "trading_partner_id",
         "more than once"),
        ("trading_partner_id=87726&trading%5Fpartner%5Fid=60054", "trading_partner_id",
         "more than once"),
        ("trading_partner_id=877%0026", "trading_partner_id", "control character"),
        ("trading_partner_id=87|26", "trading_partner_id", "must be percent-encoded"),
        ("cache_control=%ZZ", "cache_control", "'%ZZ' is not a percent-escape"),
        ("cache_control=DEFAULT%", "cache_control", "'%' is not a percent-escape"),
        ("cache_control=" + "A" * 300, "cache_control", "longer than"),
        ("cache_control=CACHE_ONLY&cache_control=CACHE_ONLY", "cache_control", "more than once"),
        ("cache_control=DEFAULT%00", "cache_control", "control character"),
        ("cache_control=", "cache_control", "empty mode"),
        ("cache_control=SOMETIMES", "cache_control", "unknown mode"),
        ("cache_contrl=CACHE_ONLY", "cache_contrl", "not one this request reads"),
        ("trading_partner_id=87726&foo%ZZ=1", "foo%ZZ", "is not a percent-escape"),
    ]
    before = calls(env)
    for query, name, what in cases:
        status, hdrs, raw = raw_get(env.a, f"/v1/eligibility/{mid}?{query}")
        assert status == 400, (query, status, raw)
        msg = json.loads(raw)["error"]["message"]
        assert f"'{name}'" in msg and what in msg, (query, msg)
    # POST /check reads no query parameters: one there would be silently lost
    r = requests.post(env.a.svc.url("http", "/v1/eligibility/check?cache_control=CACHE_ONLY"),
                      json=body(new_member()), timeout=20)
    assert r.status_code == 400 and "'cache_control'" in r.json()["error"]["message"]
    assert calls(env) == before
    assert env.r.exists(cache_key(mid)) == 0
    # a well-formed request for the same member still works (one call)
    status, _, raw = raw_get(env.a, f"/v1/eligibility/{mid}?trading_partner_id=8772%36")
    assert status == 200, raw
    assert json.loads(raw)["trading_partner_id"] == TP
    assert calls(env) == before + 1


def test_list_headers_all_lines_count_and_too_long_is_431(env):
    """Cache-Control and Prefer sent as several lines mean their joined list
    (RFC 9110 5.3); one too long for the gateway is a 4xx (RFC 9110 5.4), not
    ignored."""
    mid = new_member()
    before = calls(env)
    # only-if-cached on the second line: CACHE_ONLY, a cold member is 504 without a call
    b = json.dumps(body(mid)).encode()
    c = http.client.HTTPConnection("127.0.0.1", env.a.svc.ports["http"], timeout=20)
    c.putrequest("POST", "/v1/eligibility/check")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(len(b)))
    c.putheader("Cache-Control", "max-age=0")
    c.putheader("Cache-Control", "only-if-cached")
    c.endheaders(b)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 504, r.status
    assert calls(env) == before
    for name, value in (("Cache-Control", "x" * 2000), ("Prefer", "respond-async, " * 60)):
        status, _, raw = raw_get(env.a, "/v1/eligibility/GWM0003", [(name, value)])
        assert status == 431, (name, status)
        assert f"'{name}'" in json.loads(raw)["error"]["message"]
    assert calls(env) == before


def test_prefer_the_gateway_cannot_honour_is_ignored(env):
    """RFC 7240 2: a preference the server cannot comply with is ignored, never
    an error: the request is answered as if it had not been sent."""
    before = calls(env)
    r = env.a.post(body(new_member()), headers={"Prefer": "wait=soon"})
    assert r.status_code == 200, r.text
    assert r.json()["cache_status"] == "MISS"
    assert "Preference-Applied" not in r.headers
    r = env.a.post(body(new_member()), headers={"Prefer": "wait=-1, respond-async=please"})
    assert r.status_code == 200, r.text
    assert calls(env) == before + 2


# ---- events and metrics -----------------------------------------------------------


def test_events_on_rte_events(env):
    from kafka_util import consume_all
    mid = new_member()
    assert env.a.post(body(mid)).status_code == 200
    assert env.a.post(body(mid)).json()["cache_status"] == "HIT"
    mk = member_key(mid)

    def mine():
        msgs = consume_all(env.broker.bootstrap, "rte.events", timeout=10)
        evs = []
        for m in msgs:
            raw = m.value if hasattr(m, "value") else m
            raw = raw() if callable(raw) else raw
            assert mid.encode() not in raw
            ev = json.loads(raw)
            if ev.get("member_key") == mk:
                evs.append(ev)
        types = [e["type"] for e in evs]
        want = {"rte.submitted", "rte.scheduled", "rte.started", "rte.completed", "rte.access"}
        return evs if want <= set(types) else None

    evs = wait_for(mine, timeout=20, interval=0.5, what="lifecycle events")
    for ev in evs:
        assert ev["event_id"] and ev["trading_partner_id"] == TP
        assert ev["source"] == "cache-gateway"
    done = [e for e in evs if e["type"] == "rte.completed"][0]
    assert done["latency_ms"] >= 0 and done["outcome"] == "ok"
    results = sorted(e["result"] for e in evs if e["type"] == "rte.access")
    assert results == ["hit", "miss"]
    assert len({e["event_id"] for e in evs}) == len(evs)


def sample(gw, series):
    """The value of one series (name with its labels, as rendered) on gw's /metrics; 0 if absent."""
    for line in gw.metrics().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def burst_hits(gw, mid, n, threads=8):
    """n POSTs for a cached member from `threads` keep-alive sessions; their cache statuses."""
    def part(k):
        with requests.Session() as s:
            url = gw.svc.url("http", "/v1/eligibility/check")
            return [s.post(url, json=body(mid), timeout=20).json()["cache_status"]
                    for _ in range(k)]

    with cf.ThreadPoolExecutor(threads) as ex:
        return [c for got in ex.map(part, [n // threads] * threads) for c in got]


def access_events(env, mk, enough):
    """The rte.access events for member key mk, once enough(events) holds."""
    from kafka_util import consume_all

    def mine():
        evs = [json.loads(m.value) for m in consume_all(env.broker.bootstrap, "rte.events")]
        got = [e for e in evs if e.get("member_key") == mk and e["type"] == "rte.access"]
        return got if enough(got) else None

    return wait_for(mine, timeout=20, interval=0.5, what="access events")


def test_access_tallies_count_every_request_and_survive_sigterm(env):
    """Accesses are tallied per member, trading partner, result and mode for a window
    (default 1 s): 400 hits make a few events whose counts add up to 400. SIGTERM right
    after the burst must still send the open tallies."""
    gw = start_gateway(env.wd, env.redis.url, env.sim, env.broker, RTE_HTTP_THREADS=2)
    mid = new_member()
    plant(env.r, mid, 1000)
    mk, n = member_key(mid), 400
    assert burst_hits(gw, mid, n) == ["HIT"] * n
    assert sample(gw, 'rte_gateway_access_total{sent="tallied"}') == n
    assert sample(gw, 'rte_gateway_access_total{sent="alone"}') == 0
    stop_clean(gw.svc)  # at once: the open tallies go out on the way down

    mine = access_events(env, mk, lambda evs: sum(e["count"] for e in evs) >= n)
    assert sum(e["count"] for e in mine) == n
    assert len(mine) <= 20, f"{len(mine)} events for {n} hits: not tallied"
    assert len({e["event_id"] for e in mine}) == len(mine)
    for e in mine:
        assert e["result"] == "hit" and e["mode"] == "DEFAULT"
        assert e["entry_source"] and e["first_at"] <= e["occurred_at"]
        assert 0 <= e["latency_ms"] and e["latency_ms"] * e["count"] >= e["latency_ms_sum"]


def test_access_window_zero_sends_one_event_per_request(env):
    """gateway.access_window: 0 turns tallies off: every request is an event of its own
    (count 1), batched per loop turn, and SIGTERM loses none."""
    gw = start_gateway(env.wd, env.redis.url, env.sim, env.broker, RTE_HTTP_THREADS=2,
                       RTE_GATEWAY_ACCESS_WINDOW="0")
    mid = new_member()
    plant(env.r, mid, 1000)
    mk, n = member_key(mid), 200
    assert burst_hits(gw, mid, n) == ["HIT"] * n
    assert sample(gw, 'rte_gateway_access_total{sent="alone"}') == n
    stop_clean(gw.svc)

    mine = access_events(env, mk, lambda evs: len(evs) >= n)
    assert len(mine) == n and len({e["event_id"] for e in mine}) == n
    assert {e["count"] for e in mine} == {1} and {e["result"] for e in mine} == {"hit"}
    assert len({e["request_id"] for e in mine}) == n


def test_metrics_named_as_in_the_design(env):
    text = env.a.metrics()
    for name in ("rte_cache_control_requests_total{mode=\"default\",result=\"hit\"}",
                 "rte_cache_control_duration_seconds_bucket{mode=\"default\"",
                 "rte_response_duration_seconds_bucket{cache=\"miss\"",
                 "rte_cache_hit_total", "rte_cache_miss_total", "rte_cache_age_seconds_bucket",
                 "rte_stedi_calls_total{api=\"realtime\",outcome=\"ok\"}",
                 "rte_slots_in_use"):
        assert name in text, name


def test_tls_serves_http2(env, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    gw = start_gateway(env.wd, env.redis.url, env.sim, env.broker, RTE_HTTP_TLS_CERT=cert,
                       RTE_HTTP_TLS_KEY=key)
    try:
        url = f"https://127.0.0.1:{gw.svc.ports['http']}/v1/eligibility/GWM0002?trading_partner_id={TP}"
        out = subprocess.run(["curl", "-sk", "--http2", "-D", "-", "-w", "\n%{http_version}",
                              url], capture_output=True, text=True, timeout=30)
        head_body, version = out.stdout.rsplit("\n", 1)
        assert version == "2", out
        assert "cache-status:" in head_body.lower()
        doc = json.loads(head_body[head_body.index("{"):])
        assert doc["member_id"] == "GWM0002" and doc["cache_status"] in ("MISS", "HIT")
    finally:
        stop_clean(gw.svc)
