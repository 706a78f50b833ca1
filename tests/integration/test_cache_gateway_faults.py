"""cache-gateway under faults: Stedi down or slow, Redis stopped and restarted.

Each test family gets its own gateway (and, for the Redis test, its own
redis-server) so stopping things never disturbs the other suites. Every
gateway must still exit 0 on SIGTERM (stop_clean), which under ASan also
means no leak.
"""
import json
import time

import pytest
import requests

from conftest import KafkaBroker, RedisServer, start_stedi_sim, stop_clean, wait_for
from test_cache_gateway import (HOUR, TP, body, cache_key, iso, new_member, plant,
                                start_gateway, stats)


def plant_error(rds, mid, cached_ago_ms, success_ago_ms, copay):
    """Write a payer-error entry (AAA 42, fresh for 5 min) cached cached_ago_ms ago,
    carrying the success it replaced, as the cache's put script leaves one."""
    now = int(time.time() * 1000)
    cached, ok_at = now - cached_ago_ms, now - success_ago_ms
    ok = {"eligible": True, "copay_amount": copay, "network_status": "in_network",
          "coverage_start": "2026-01-01", "coverage_end": "2026-12-31",
          "cached_at": iso(ok_at), "fresh_until": iso(ok_at + 22 * HOUR), "source": "stedi_rte"}
    value = {"eligible": False, "copay_amount": None, "network_status": "unknown",
             "coverage_start": None, "coverage_end": None, "cached_at": iso(cached),
             "fresh_until": iso(cached + 5 * 60000), "source": "stedi_rte",
             "error": {"code": "42", "message": "Unable to Respond at Current Time"},
             "last_success": ok}
    rds.set(cache_key(mid), json.dumps(value), px=72 * HOUR)
    rds.publish("rte:cache:written", cache_key(mid))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("gwf"))
    rds = RedisServer(wd)
    rds.start()
    broker = KafkaBroker(wd)
    broker.start()
    yield wd, rds, broker
    broker.stop()
    rds.stop()


def test_stedi_down_stale_if_error(base):
    wd, rds, broker = base
    gw = start_gateway(wd, rds.url, None, broker, RTE_STEDI_MAX_ATTEMPTS="1")
    r = rds.client()
    try:
        mid = new_member()
        x = gw.post(body(mid))
        assert x.status_code == 502, x.text
        assert x.json()["cache_status"] == "ERROR"
        assert "Stedi check failed" in x.json()["error"]["message"]
        plant(r, mid, cached_ago_ms=30 * HOUR, copay=5)  # stale by 8 h
        x = gw.post(body(mid), headers={"Cache-Control": "stale-if-error"})
        assert x.status_code == 200 and x.json()["cache_status"] == "STALE"
        assert x.json()["copay_amount"] == 5
        assert "detail=stale-if-error" in x.headers["Cache-Status"]
        assert "fwd=stale" in x.headers["Cache-Status"]
        # too stale for the caller's bound: the failure shows
        x = gw.post(body(mid), headers={"Cache-Control": "stale-if-error=60"})
        assert x.status_code == 502
        # without the directive DEFAULT reports the failure
        x = gw.post(body(mid))
        assert x.status_code == 502
        # PREFER_CACHED and CACHE_ONLY never needed Stedi
        assert gw.post(body(mid, "PREFER_CACHED")).json()["cache_status"] == "STALE"
        assert gw.post(body(mid, "CACHE_ONLY")).json()["cache_status"] == "STALE"
    finally:
        stop_clean(gw.svc)


def test_payer_down_keeps_the_last_success_for_stale_if_error(base):
    """A payer outage (AAA 42) is cached as an error entry for 5 min, and that entry
    replaces the success in Redis. It keeps the success it replaced, so callers who
    accept stale data on an error still get the last good answer during the outage."""
    wd, rds, broker = base
    hour = time.gmtime().tm_hour
    window = f"{(hour - 1) % 24:02d}:00-{(hour + 2) % 24:02d}:00"  # now, in simulated = real UTC
    sim = start_stedi_sim(wd, latency_p50="50ms", latency_p95="100ms", RTE_CLOCK_SCALE="1",
                          downtime=f"{TP}@{window}")
    gw = start_gateway(wd, rds.url, sim, broker, RTE_STEDI_MAX_ATTEMPTS="1")
    r = rds.client()
    try:
        mid = new_member()
        plant(r, mid, cached_ago_ms=30 * HOUR, copay=7)  # stale by 8 h
        # the stale entry sends DEFAULT to Stedi; the payer is down; stale-if-error
        x = gw.post(body(mid), headers={"Cache-Control": "stale-if-error"})
        assert x.status_code == 200 and x.json()["cache_status"] == "STALE", x.text
        assert x.json()["copay_amount"] == 7 and "error" not in x.json()
        assert "fwd=stale" in x.headers["Cache-Status"]
        assert "detail=stale-if-error" in x.headers["Cache-Status"]
        assert stats(sim)["realtime_calls"] == 1
        # Redis now holds the payer error, carrying the success
        stored = json.loads(r.get(cache_key(mid)))
        assert stored["error"]["code"] == "42"
        assert stored["last_success"]["copay_amount"] == 7
        for _ in range(2):  # from Redis, then from the L1
            # the fresh error entry answers callers that accept no stale data
            x = gw.post(body(mid))
            assert x.json()["error"]["code"] == "42", x.text
            x = gw.post(body(mid), headers={"Cache-Control": "stale-if-error=60"})
            assert x.json()["error"]["code"] == "42", x.text
            # and the last success answers those that do, without another Stedi call
            for hdrs, b in (({"Cache-Control": "stale-if-error"}, body(mid)),
                            ({}, body(mid, "PREFER_CACHED")),
                            ({}, body(mid, "STALE_WHILE_REVALIDATE"))):
                x = gw.post(b, headers=hdrs)
                assert x.status_code == 200 and x.json()["cache_status"] == "STALE", x.text
                assert x.json()["copay_amount"] == 7 and "error" not in x.json()
                assert "detail=stale-if-error" in x.headers["Cache-Status"]
        assert stats(sim)["realtime_calls"] == 1
    finally:
        stop_clean(gw.svc)
        sim.stop()


def test_slow_stedi_deadlines(base):
    wd, rds, broker = base
    # 3 s real per call (scale 1): longer than every caller deadline below
    sim = start_stedi_sim(wd, latency_p50="3s", latency_p95="3s", RTE_CLOCK_SCALE="1")
    gw = start_gateway(wd, rds.url, sim, broker, RTE_GATEWAY_DEADLINE="1s")
    r = rds.client()
    try:
        # Prefer: wait=1 on a miss -> 202 after about 1 s, then the result lands
        mid = new_member()
        t0 = time.monotonic()
        x = gw.post(body(mid), headers={"Prefer": "wait=1"})
        took = time.monotonic() - t0
        assert x.status_code == 202, x.text
        assert 0.9 <= took < 2.0
        loc = x.headers["Location"]
        assert gw.get(loc).status_code == 202  # still pending
        res = wait_for(lambda: gw.get(loc).status_code == 200 and gw.get(loc), timeout=8,
                       what="async result after the deadline")
        assert res.json()["response"]["cache_status"] == "MISS"
        assert gw.post(body(mid)).json()["cache_status"] == "HIT"

        # stale-on-deadline: a stale entry is served at the deadline, the call fills the cache
        mid2 = new_member()
        plant(r, mid2, cached_ago_ms=23 * HOUR, copay=3)
        calls0 = stats(sim)["realtime_calls"]
        t0 = time.monotonic()
        x = gw.post(body(mid2), headers={"Prefer": "wait=1"})
        assert x.status_code == 200 and x.json()["cache_status"] == "STALE"
        assert "detail=stale-on-deadline" in x.headers["Cache-Status"]
        assert time.monotonic() - t0 < 2.0
        wait_for(lambda: gw.post(body(mid2, "CACHE_ONLY")).json()["cache_status"] == "HIT",
                 timeout=8, what="the call to fill the cache")
        assert stats(sim)["realtime_calls"] == calls0 + 1

        # stale-on-deadline over a payer-error entry that carries the last success:
        # the success for a caller accepting stale-if-error, the error for one who does not
        mid3 = new_member()
        plant_error(r, mid3, cached_ago_ms=10 * 60000, success_ago_ms=30 * HOUR, copay=4)
        x = gw.post(body(mid3), headers={"Prefer": "wait=1", "Cache-Control": "stale-if-error"})
        assert x.status_code == 200 and x.json()["cache_status"] == "STALE", x.text
        assert x.json()["copay_amount"] == 4 and "error" not in x.json()
        assert "detail=stale-on-deadline" in x.headers["Cache-Status"]
        plant_error(r, mid3, cached_ago_ms=10 * 60000, success_ago_ms=30 * HOUR, copay=4)
        x = gw.post(body(mid3), headers={"Prefer": "wait=1"})
        assert x.status_code == 200 and x.json()["cache_status"] == "STALE", x.text
        assert x.json()["error"]["code"] == "42"

        # no Prefer: the gateway's deadline (1 s) passes -> 504 naming the cause
        t0 = time.monotonic()
        x = gw.post(body(new_member()))
        assert x.status_code == 504
        assert "deadline" in x.json()["error"]["message"]
        assert time.monotonic() - t0 < 2.0
    finally:
        stop_clean(gw.svc)
        sim.stop()


def test_xfetch_refreshes_hot_entry_early(base):
    wd, rds, broker = base
    sim = start_stedi_sim(wd, latency_p50="1s", latency_p95="1s", RTE_CLOCK_SCALE="10")
    # delta 1 h before any measurement: an entry 60 s from expiry is refreshed early
    gw = start_gateway(wd, rds.url, sim, broker, RTE_GATEWAY_XFETCH_BETA="1",
                       RTE_GATEWAY_XFETCH_DELTA="1h", RTE_GATEWAY_L1_ENTRIES="0")
    r = rds.client()
    try:
        mid = new_member()
        plant(r, mid, cached_ago_ms=22 * HOUR - 60000, copay=1)  # 60 s of freshness left
        x = gw.post(body(mid))
        assert x.status_code == 200 and x.json()["cache_status"] == "HIT"
        assert x.json()["copay_amount"] == 1
        wait_for(lambda: stats(sim)["realtime_calls"] == 1, timeout=5, what="early refresh")
        wait_for(lambda: gw.post(body(mid)).json()["_metadata"]["source"] == "stedi_realtime",
                 timeout=5, what="refreshed entry")
        # now fresh for 22 h and delta is the measured ~100 ms: no further refresh
        for _ in range(10):
            assert gw.post(body(mid)).json()["cache_status"] == "HIT"
        time.sleep(0.3)
        assert stats(sim)["realtime_calls"] == 1
        assert 'rte_gateway_refresh_total{trigger="xfetch",result="refreshed"} 1' in gw.metrics()
    finally:
        stop_clean(gw.svc)
        sim.stop()


def test_redis_stopped_and_restarted(base):
    wd, _, broker = base
    rds = RedisServer(wd)
    rds.start()
    sim = start_stedi_sim(wd, latency_p50="1s", latency_p95="1s", RTE_CLOCK_SCALE="20")
    gw = start_gateway(wd, rds.url, sim, broker, RTE_HEALTH_INTERVAL="100ms",
                       RTE_REDIS_TIMEOUT="200ms")
    try:
        mid = new_member()
        assert gw.post(body(mid)).json()["cache_status"] == "MISS"
        calls0 = stats(sim)["realtime_calls"]
        rds.stop()
        wait_for(lambda: gw.svc.get("admin", "/readyz").status_code != 200, timeout=5,
                 what="not ready without Redis")
        x = gw.post(body(new_member(), "CACHE_ONLY"))
        assert x.status_code == 503 and "Redis" in x.json()["error"]["message"]
        # DEFAULT and BYPASS_CACHE still answer from Stedi on the local degraded budget
        t0 = time.monotonic()
        for mode in ("DEFAULT", "BYPASS_CACHE"):
            x = gw.post(body(new_member(), mode))
            assert x.status_code == 200, x.text
            assert x.json()["cache_status"] == "MISS"
        assert time.monotonic() - t0 < 10
        assert stats(sim)["realtime_calls"] == calls0 + 2
        m = gw.metrics()
        assert 'rte_gateway_degraded_total{reason="cache_read"}' in m
        assert "rte_stedi_degraded_calls_total 2" in m, [
            l for l in m.splitlines() if "degraded" in l]
        rds.start()  # same port
        wait_for(lambda: gw.svc.get("admin", "/readyz").status_code == 200, timeout=10,
                 what="ready again")

        def served():
            x = gw.post(body(new_member()))
            return x.status_code == 200 and x.json()["cache_status"] == "MISS"

        wait_for(served, timeout=10, interval=0.3, what="answers after Redis came back")
        assert gw.svc.proc.poll() is None
    finally:
        stop_clean(gw.svc)
        sim.stop()
        rds.stop()
