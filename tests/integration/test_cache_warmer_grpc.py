"""cache-warmer's gRPC CacheWarmingService from Python's grpcio (WarmCache with each
strategy, invalid arguments named, GetWarmingStats), and urgent real-time warming in the
limiter's warming class under a burst of interactive gateway traffic (stedi-sim's
/_sim/stats: never more than 15 calls in flight)."""
import concurrent.futures
import time

import grpc
import pytest
import requests

from conftest import Service, start_stedi_sim, stop_clean, wait_for
from kafka_util import start_broker
from warmer_util import Stack, eligible, gen_members, metric, send_likely


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("warmg-kafka"))
    yield b
    b.stop()


def warmer_clients(svc):
    """cache-warmer's gRPC client: (the pb module, WarmCache, GetWarmingStats and ScheduleWarming callables)."""
    import cache_warming_pb2 as pb
    ch = grpc.insecure_channel(f"127.0.0.1:{svc.ports['grpc']}")
    grpc.channel_ready_future(ch).result(timeout=10)

    def unary(name, resp):
        return ch.unary_unary(f"/rte.v1.CacheWarmingService/{name}",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=resp.FromString)
    return pb, unary("WarmCache", pb.WarmCacheResponse), \
        unary("GetWarmingStats", pb.GetWarmingStatsResponse), \
        unary("ScheduleWarming", pb.ScheduleWarmingResponse)


def test_warm_cache_strategies_and_invalid_arguments(workdir, redis_server, broker):
    path, ms = gen_members(workdir, 2000, 3)
    ok = eligible(ms)[300:320]
    sim = start_stedi_sim(workdir)
    st = Stack(redis_server, broker, path, sim)
    st.put_entry(ok[0], cached_ago_s=60)            # fresh
    st.put_entry(ok[1], cached_ago_s=30 * 3600)     # stale
    w = st.start_warmer(workdir)
    try:
        pb, warm, stats, schedule = warmer_clients(w)
        ids = [m["member_id"] for m in ok[:4]]
        # INTELLIGENT: the fresh one is skipped
        r = warm(pb.WarmCacheRequest(member_ids=ids, source="it-grpc",
                                     priority=pb.WarmCacheRequest.PRIORITY_PRELOAD), timeout=10)
        assert (r.members_queued, r.members_skipped) == (3, 1) and r.warming_job_id
        assert r.estimated_completion.seconds > time.time() + 3000  # window 1 h + batch eta
        # FORCE on the same members in the same window: the 3 already queued are not queued
        # twice; the fresh one is queued now
        r = warm(pb.WarmCacheRequest(member_ids=ids, strategy=pb.WARMING_STRATEGY_FORCE),
                 timeout=10)
        assert (r.members_queued, r.members_skipped) == (1, 3)
        # FILL_ONLY skips any entry, even a stale one; FORCE ignores the cache
        more = [m["member_id"] for m in ok[4:8]]
        st.put_entry(ok[4], cached_ago_s=30 * 3600)
        r = warm(pb.WarmCacheRequest(member_ids=more, strategy=pb.WARMING_STRATEGY_FILL_ONLY),
                 timeout=10)
        assert (r.members_queued, r.members_skipped) == (3, 1)
        st.put_entry(ok[8], cached_ago_s=10)
        r = warm(pb.WarmCacheRequest(member_ids=[ok[8]["member_id"]],
                                     strategy=pb.WARMING_STRATEGY_FORCE), timeout=10)
        assert (r.members_queued, r.members_skipped) == (1, 0)
        assert set(st.open_members()) == set(ids) | set(more[1:]) | {ok[8]["member_id"]}
        assert st.open_members()[ids[1]] == "it-grpc"
        assert metric(w, "rte_cache_warming_skipped_total", reason="cached") == 1

        bad = [
            (pb.WarmCacheRequest(), "member_ids"),
            (pb.WarmCacheRequest(member_ids=["M"] * 1001), "member_ids"),
            (pb.WarmCacheRequest(member_ids=[""]), "member_ids[0]"),
            (pb.WarmCacheRequest(member_ids=["M1"], operations=["fly"]), "operations[0]"),
            (pb.WarmCacheRequest(member_ids=["M1"], strategy=7), "strategy"),
            (pb.WarmCacheRequest(member_ids=["M1"], priority=9), "priority"),
            (pb.WarmCacheRequest(member_ids=["M1"], source="bad source!"), "source"),
        ]
        for req, field in bad:
            with pytest.raises(grpc.RpcError) as e:
                warm(req, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.value.details().startswith(field + ":"), e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            stats(pb.GetWarmingStatsRequest(start_time={"seconds": 2000},
                                            end_time={"seconds": 1000}), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("end_time")

        # flush by SIGTERM, then the statistics count the 8 members submitted, by source
        stop_clean(w)
        w = st.start_warmer(workdir)
        pb, warm, stats, schedule = warmer_clients(w)
        s = stats(pb.GetWarmingStatsRequest(), timeout=10).stats
        assert s.total_members_warmed == 8 and dict(s.by_source) == {"it-grpc": 3, "grpc": 5}
        s = stats(pb.GetWarmingStatsRequest(sources=["it-grpc"]), timeout=10).stats
        assert s.total_members_warmed == 3 and dict(s.by_source) == {"it-grpc": 3}
    finally:
        stop_clean(w)
        stop_clean(sim)


def test_urgent_warming_stays_behind_interactive_traffic(workdir, redis_server, broker):
    """80 urgent predictions (p 0.95) while 60 interactive requests hit the gateway at once:
    Stedi never sees more than 15 calls in flight, every interactive request is answered, and
    the urgent members end up cached by real-time warming (or queued as a fallback)."""
    path, ms = gen_members(workdir, 2000, 3)
    ok = eligible(ms)
    urgent, interactive = ok[400:480], ok[500:560]
    # 2 s simulated median at scale 10: 200 ms real per call
    sim = start_stedi_sim(workdir, latency_p50="2s", latency_p95="3s", RTE_CLOCK_SCALE="10")
    st = Stack(redis_server, broker, path, sim)
    env = st.common_env()
    env.update({"RTE_GATEWAY_MEMBER_DIR": path, "RTE_GATEWAY_DEADLINE": "30s",
                "RTE_GATEWAY_FETCH_TIMEOUT": "20s", "RTE_LOG_LEVEL": "warn"})
    gw = Service("cache-gateway", env, workdir).start()
    w = st.start_warmer(workdir, RTE_WARMER_URGENT_WORKERS="10")
    try:
        requests.post(sim.url("http", "/_sim/reset"), timeout=10)
        send_likely(broker, [(m["member_id"], 0.95) for m in urgent])
        wait_for(lambda: metric(w, "rte_cache_warming_urgent_total", outcome="warmed") >= 3,
                 timeout=30, what="urgent warming under way")

        def ask(m):
            return requests.get(gw.url("http", f"/v1/eligibility/{m['member_id']}"),
                                timeout=60).status_code
        with concurrent.futures.ThreadPoolExecutor(60) as pool:
            codes = list(pool.map(ask, interactive))
        assert codes.count(200) == 60, codes
        wait_for(lambda: metric(w, "rte_cache_warming_urgent_total", outcome="warmed") +
                 metric(w, "rte_cache_warming_urgent_total", outcome="fallback") >= 80,
                 timeout=90, what="every urgent member handled")
        s = requests.get(sim.url("http", "/_sim/stats"), timeout=10).json()
        assert s["max_in_flight"] <= 15, s
        assert s["realtime_429"] == 0, s
        warmed = metric(w, "rte_cache_warming_urgent_total", outcome="warmed")
        assert warmed >= 40
        cached = [m for m in urgent if st.cache_entry(m)]
        assert len(cached) >= warmed
        assert {st.cache_entry(m)["source"] for m in cached} == {"stedi_realtime"}
    finally:
        stop_clean(w)
        stop_clean(gw)
        stop_clean(sim)
