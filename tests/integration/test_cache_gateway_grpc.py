"""cache-gateway's gRPC CheckEligibility (rte.v1.EligibilityService) against its HTTP API:
the same question asked both ways gets the same answer (entry fields, cache status,
metadata), from the same cache and the same single flight (stedi-sim counts the real-time
calls); request errors are gRPC statuses naming the field; calls need an M2M token with
rte:eligibility:read. And the rte.enqueued lifecycle event: with one slot cluster-wide,
checks that wait for it emit rte.enqueued between rte.submitted and rte.scheduled."""
import concurrent.futures as cf
import json
import os
import time

import grpc
import pytest
import requests

from auth_util import Keys, bearer
from conftest import KafkaBroker, RedisServer, start_stedi_sim, stop_clean, wait_for
from test_cache_gateway import HOUR, MEMBERS, TP, calls, member_key, plant, start_gateway

AUD = "rte-cache-gateway"
PATH = "/rte.v1.EligibilityService/CheckEligibility"


def directory(workdir, n):
    """A member directory of n members the simulator answers as covered (id ends in 20k+1)."""
    with open(MEMBERS) as f:
        proto = json.loads(f.readline())
    ids = [f"GRPC{i:04d}Z{i * 20 + 1}" for i in range(n)]
    path = os.path.join(workdir, f"grpc-members-{time.monotonic_ns()}.jsonl")
    with open(path, "w") as f:
        for mid in ids:
            f.write(json.dumps(dict(proto, member_id=mid)) + "\n")
    return path, ids


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("gwg"))
    rds = RedisServer(wd)
    rds.start()
    broker = KafkaBroker(wd)
    broker.start()
    sim = start_stedi_sim(wd, latency_p50="2s", latency_p95="3s", RTE_CLOCK_SCALE="10")
    keys = Keys(wd)
    members, ids = directory(wd, 40)
    gw = start_gateway(wd, rds.url, sim, broker, RTE_GATEWAY_MEMBER_DIR=members,
                       **keys.env(AUD))
    ch = grpc.insecure_channel(f"127.0.0.1:{gw.svc.ports['grpc']}")
    e = type("Env", (), {})()
    e.wd, e.redis, e.broker, e.sim, e.gw, e.keys, e.ids = wd, rds, broker, sim, gw, keys, ids
    e.r = rds.client()
    e.token = keys.token(AUD, "rte:eligibility:read", client="portal")
    e.ch = ch
    yield e
    ch.close()
    stop_clean(gw.svc)
    sim.stop()
    broker.stop()
    rds.stop()


def pb():
    import eligibility_pb2
    return eligibility_pb2


def rpc(e, mid, mode=0, tp=TP, token=None, timeout=20):
    m = pb()
    call = e.ch.unary_unary(PATH, request_serializer=lambda x: x.SerializeToString(),
                            response_deserializer=m.CheckEligibilityResponse.FromString)
    req = m.CheckEligibilityRequest(member_id=mid, trading_partner_id=tp, cache_control=mode)
    return call(req, timeout=timeout, metadata=bearer(token or e.token))


def http(e, mid, mode):
    return e.gw.get(f"/v1/eligibility/{mid}?trading_partner_id={TP}&cache_control={mode}")


MODES = {"DEFAULT": 0, "CACHE_ONLY": 1, "PREFER_CACHED": 2, "BYPASS_CACHE": 3,
         "STALE_WHILE_REVALIDATE": 4}
STATUS = {0: "UNSPECIFIED", 1: "HIT", 2: "MISS", 3: "STALE", 4: "ERROR"}


def ms_of(ts):
    return ts.seconds * 1000 + ts.nanos // 1000000


def iso_ms(s):
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return (int(time.mktime(t)) - time.timezone) * 1000 + int(s[20:23])


def same_answer(j, g):
    """The HTTP body j and the gRPC response g say the same thing."""
    assert g.member_id == j["member_id"] and g.trading_partner_id == j["trading_partner_id"]
    assert STATUS[g.cache_status] == j["cache_status"]
    if "error" in j and "eligible" not in j:
        assert not g.HasField("eligibility")
        assert g.error_message == j["error"]["message"]
        return
    el, md = g.eligibility, g.cache_metadata
    assert el.eligible == j["eligible"]
    assert el.copay_amount == (j["copay_amount"] or 0)
    assert el.network_status == j["network_status"]
    assert (el.coverage_start, el.coverage_end) == (j["coverage_start"], j["coverage_end"])
    assert el.source == j["_metadata"]["source"]
    assert ms_of(el.cached_at) == iso_ms(j["_metadata"]["cached_at"])
    assert ms_of(el.fresh_until) == iso_ms(j["_metadata"]["expires_at"])
    assert ms_of(md.expires_at) == iso_ms(j["_metadata"]["expires_at"])
    assert md.cached == j["_metadata"]["cached"]
    assert abs(md.age_seconds - j["_metadata"]["age_seconds"]) <= 1


def test_same_answers_as_http(env):
    ids = env.ids
    before = calls(env)
    # fresh entry: HIT both ways, every mode that may serve it
    plant(env.r, ids[0], cached_ago_ms=60_000, copay=12)
    for mode in ("DEFAULT", "CACHE_ONLY", "PREFER_CACHED", "STALE_WHILE_REVALIDATE"):
        j = http(env, ids[0], mode)
        assert j.status_code == 200, j.text
        g = rpc(env, ids[0], MODES[mode])
        assert g.cache_status == pb().CACHE_STATUS_HIT and g.eligibility.copay_amount == 12
        same_answer(j.json(), g)
    # stale entry under PREFER_CACHED / CACHE_ONLY: STALE both ways, no call
    plant(env.r, ids[1], cached_ago_ms=30 * HOUR, copay=34)
    for mode in ("PREFER_CACHED", "CACHE_ONLY"):
        j = http(env, ids[1], mode)
        g = rpc(env, ids[1], MODES[mode])
        assert g.cache_status == pb().CACHE_STATUS_STALE
        same_answer(j.json(), g)
    # cold member, CACHE_ONLY: HTTP 504, gRPC OK with ERROR and the same message
    env.r.delete(f"rte:eligibility:{member_key(ids[2])}:{TP}")
    j = http(env, ids[2], "CACHE_ONLY")
    assert j.status_code == 504
    g = rpc(env, ids[2], MODES["CACHE_ONLY"])
    assert g.cache_status == pb().CACHE_STATUS_ERROR and "CACHE_ONLY" in g.error_message
    same_answer(j.json(), g)
    assert calls(env) == before
    # cold member, DEFAULT over gRPC: one Stedi call, stored; HTTP then hits that entry
    g = rpc(env, ids[3])
    assert g.cache_status == pb().CACHE_STATUS_MISS and g.eligibility.source == "stedi_realtime"
    assert not g.cache_metadata.cached
    assert calls(env) == before + 1
    j = http(env, ids[3], "DEFAULT").json()
    assert j["cache_status"] == "HIT"
    assert iso_ms(j["_metadata"]["cached_at"]) == ms_of(g.eligibility.cached_at)
    g2 = rpc(env, ids[3])
    same_answer(j, g2)
    # BYPASS_CACHE over gRPC calls again, like HTTP's
    assert rpc(env, ids[3], MODES["BYPASS_CACHE"]).cache_status == pb().CACHE_STATUS_MISS
    assert calls(env) == before + 2
    # stale under STALE_WHILE_REVALIDATE: STALE now, revalidating, one background call
    plant(env.r, ids[4], cached_ago_ms=25 * HOUR, copay=7)
    g = rpc(env, ids[4], MODES["STALE_WHILE_REVALIDATE"])
    assert g.cache_status == pb().CACHE_STATUS_STALE and g.cache_metadata.revalidating
    wait_for(lambda: calls(env) == before + 3, timeout=10, what="the background refresh")
    m = env.gw.metrics()
    assert 'rte_cache_control_requests_total{mode="cache_only",result="error"}' in m


def test_one_flight_for_http_and_grpc_callers(env):
    mid = env.ids[10]
    before = calls(env)
    with cf.ThreadPoolExecutor(20) as ex:
        futs = [ex.submit(rpc, env, mid) if i % 2 else ex.submit(http, env, mid, "DEFAULT")
                for i in range(20)]
        res = [f.result() for f in futs]
    assert calls(env) == before + 1
    stamps = set()
    for r in res:
        if isinstance(r, requests.Response):
            assert r.status_code == 200
            stamps.add(iso_ms(r.json()["_metadata"]["cached_at"]))
        else:
            stamps.add(ms_of(r.eligibility.cached_at))
    assert len(stamps) == 1


def code_of(fn, *a, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*a, **kw)
    return e.value.code(), e.value.details()


def test_errors_and_access_control(env):
    c, msg = code_of(rpc, env, "bad id!")
    assert c == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("field 'member_id'")
    c, msg = code_of(rpc, env, env.ids[0], tp="x/y")
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "trading_partner_id" in msg
    c, msg = code_of(rpc, env, env.ids[0], mode=9)
    assert c == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("field 'cache_control'")
    c, msg = code_of(rpc, env, "NOTINDIR1")
    assert (c, msg) == (grpc.StatusCode.NOT_FOUND,
                        "member 'NOTINDIR1' is not in the member directory")
    c, msg = code_of(rpc, env, env.ids[0], token="x.y.z")
    assert c == grpc.StatusCode.UNAUTHENTICATED
    c, msg = code_of(rpc, env, env.ids[0], token=env.keys.token(AUD, "rte:warm:read"))
    assert c == grpc.StatusCode.PERMISSION_DENIED and "rte:eligibility:read" in msg
    import health_pb2 as h
    check = env.ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda x: x.SerializeToString(),
                               response_deserializer=h.HealthCheckResponse.FromString)
    assert check(h.HealthCheckRequest(service="rte.v1.EligibilityService"),
                 timeout=5).status == h.HealthCheckResponse.SERVING


def test_enqueued_while_waiting_for_a_slot(env, tmp_path):
    """One slot cluster-wide and Stedi answering in ~200 ms: of 4 concurrent distinct misses
    at least 3 wait in the queue; each that waited says so with rte.enqueued, after
    rte.submitted and before rte.scheduled; one that got its slot at once does not."""
    from kafka_util import consume_all
    members, ids = directory(str(tmp_path), 4)
    gw = start_gateway(str(tmp_path), env.redis.url, env.sim, env.broker,
                       RTE_GATEWAY_MEMBER_DIR=members, RTE_SLOTS_LIMIT="1",
                       RTE_SLOTS_RESERVE_INTERACTIVE="0", RTE_SLOTS_WARMING_CAP="0",
                       RTE_SLOTS_BATCH_CAP="0", RTE_SLOTS_PREFIX="it:enq:slots",
                       RTE_CACHE_MEMBER_KEY_SECRET="enqueued-secret")
    try:
        with cf.ThreadPoolExecutor(4) as ex:
            rs = list(ex.map(lambda m: gw.get(f"/v1/eligibility/{m}?trading_partner_id={TP}"),
                             ids))
        assert [r.status_code for r in rs] == [200] * 4
        keys = {r.json()["request_id"] for r in rs}

        def lifecycle():
            evs = []
            for m in consume_all(env.broker.bootstrap, "rte.events", timeout=10):
                raw = m.value if hasattr(m, "value") else m
                evs.append(json.loads(raw() if callable(raw) else raw))
            mine = [ev for ev in evs if ev.get("request_id") in keys]
            done = [ev for ev in mine if ev["type"] == "rte.completed"]
            return mine if len(done) == 4 else None

        evs = wait_for(lifecycle, timeout=20, interval=0.5, what="lifecycle events")
        by_req = {}
        for ev in evs:
            by_req.setdefault(ev["request_id"], []).append(ev["type"])
        waited = [t for t in by_req.values() if "rte.enqueued" in t]
        assert len(waited) >= 3, by_req
        for types in by_req.values():
            life = [t for t in types if t != "rte.access"]
            if "rte.enqueued" in life:
                assert life == ["rte.submitted", "rte.enqueued", "rte.scheduled", "rte.started",
                                "rte.completed"], life
            else:
                assert life == ["rte.submitted", "rte.scheduled", "rte.started",
                                "rte.completed"], life
        enq = [ev for ev in evs if ev["type"] == "rte.enqueued"]
        assert all(ev["source"] == "cache-gateway" and ev["trading_partner_id"] == TP
                   for ev in enq)
    finally:
        stop_clean(gw.svc)
