"""cache-warmer: every branch of the decision tree, the DLQ, event dedupe, and
the window and size flushes through stedi-sim and webhook-receiver's polling
into the cache. Real processes: Redis, kafka-dev-broker, stedi-sim,
webhook-receiver, cache-warmer."""
import signal
import time

import pytest

from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import consume_all, start_broker
from warmer_util import (CRON_TOPIC, LIKELY_TOPIC, Stack, eligible, gen_members, metric,
                         send_cron, send_likely, wait_metric)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("warm-kafka"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def members(workdir):
    return gen_members(workdir, 2000, 3)


def test_decision_tree_each_branch(workdir, redis_server, broker, members):
    """One event per branch; the window is an hour, so what is queued stays in the open set."""
    path, ms = members
    ok = eligible(ms)
    no_rte = next(m for m in ms if not m["has_rte_enabled"] and m["account_status"] == "ACTIVE")
    inactive = next(m for m in ms if m["has_rte_enabled"] and m["account_status"] != "ACTIVE")
    fresh, old, err_entry, stale, queued, preload2, low = ok[0], ok[1], ok[2], ok[3], ok[4], \
        ok[5], ok[6]
    st = Stack(redis_server, broker, path)
    st.put_entry(fresh, cached_ago_s=600)              # 10 min old: fresh enough -> skip
    st.put_entry(old, cached_ago_s=2 * 3600)           # 2 h old (fresh_window 1 h) -> warm
    st.put_entry(err_entry, cached_ago_s=10, fresh_for_s=300, error=True)  # error -> warm
    st.put_entry(stale, cached_ago_s=30 * 3600)        # past fresh_until -> warm
    w = st.start_warmer(workdir, RTE_WARMER_URGENT_ABOVE="1")
    try:
        send_likely(broker, [
            (low["member_id"], 0.5),                   # below 0.7
            ("NO-SUCH-MEMBER", 0.85),
            (no_rte["member_id"], 0.85),
            (inactive["member_id"], 0.85),
            (fresh["member_id"], 0.85),
            (old["member_id"], 0.85, "dup-event-1"),
            (err_entry["member_id"], 0.95),
            (stale["member_id"], 0.75),
            (queued["member_id"], 0.80),
        ])
        send_cron(broker, [(preload2["member_id"], 0.72),
                           (queued["member_id"], 0.99, "other-event")])   # same member again
        wait_metric(w, "rte_cache_warming_requests_total", 4, source="digital-twin",
                    priority="preload")
        wait_metric(w, "rte_cache_warming_skipped_total", 1, reason="duplicate_member")
        # the same event id again (a redelivery): dropped without a second queueing
        send_likely(broker, [(old["member_id"], 0.85, "dup-event-1")])
        wait_metric(w, "rte_cache_warming_skipped_total", 1, reason="duplicate_event")

        skipped = {r: metric(w, "rte_cache_warming_skipped_total", reason=r)
                   for r in ("low_probability", "unknown_member", "rte_disabled",
                             "inactive_coverage", "fresh", "duplicate_member",
                             "duplicate_event")}
        assert skipped == {"low_probability": 1, "unknown_member": 1, "rte_disabled": 1,
                           "inactive_coverage": 1, "fresh": 1, "duplicate_member": 1,
                           "duplicate_event": 1}
        open_set = st.open_members()
        assert set(open_set) == {old["member_id"], err_entry["member_id"], stale["member_id"],
                                 queued["member_id"], preload2["member_id"]}
        assert open_set[preload2["member_id"]] == "member-cron"
        assert open_set[queued["member_id"]] == "digital-twin"
        # 0.95 is above the default urgent threshold but urgent is off here (urgent_above 1)
        assert metric(w, "rte_cache_warming_requests_total", source="digital-twin",
                      priority="preload") == 4
        assert metric(w, "rte_cache_warming_requests_total", source="member-cron",
                      priority="preload") == 1
        assert metric(w, "rte_cache_warming_queue_size", state="open") == 5
    finally:
        stop_clean_no_flush(w)


def stop_clean_no_flush(w):
    stop_clean(w)


def test_undecodable_and_invalid_events_go_to_the_dlq(workdir, redis_server, broker, members):
    path, ms = members
    ok = eligible(ms)
    st = Stack(redis_server, broker, path)
    w = st.start_warmer(workdir)
    try:
        from kafka_util import produce
        produce(broker.bootstrap, CRON_TOPIC, [("k1", b"\xff\xff\xff not protobuf")])
        produce(broker.bootstrap, LIKELY_TOPIC, [
            ("k2", b"{not json"),
            ("k3", b'{"type":"digital-twin.prediction.app_usage_likely","event_id":"e3",'
                   b'"data":{"probability":0.9}}'),
            ("k4", b'{"type":"digital-twin.prediction.app_usage_likely","event_id":"e4",'
                   b'"member_id":"M1","data":{"probability":1.7}}'),
            ("k5", b'{"type":"something.else","event_id":"e5","member_id":"M1",'
                   b'"data":{"probability":0.9}}'),
        ])
        send_cron(broker, [(ok[10]["member_id"], 1.5)])
        send_likely(broker, [(ok[11]["member_id"], 0.8)])   # a good one after the bad ones
        wait_for(lambda: ok[11]["member_id"] in st.open_members(), what="the good event queued")

        def dlq(topic):
            return {m.key: m.headers["dlq-reason"].decode()
                    for m in consume_all(broker.bootstrap, topic + ".dlq")}
        likely = wait_for(lambda: (d := dlq(LIKELY_TOPIC)) and len(d) >= 4 and d,
                          what="4 likely DLQ copies")
        assert "invalid JSON" in likely[b"k2"]
        assert "member_id" in likely[b"k3"]
        assert "data.probability" in likely[b"k4"]
        assert "type" in likely[b"k5"]
        cron = wait_for(lambda: (d := dlq(CRON_TOPIC)) and len(d) >= 2 and d,
                        what="2 cron DLQ copies")
        assert "MemberCronEvent" in cron[b"k1"]
        assert "app_usage_probability" in cron[ok[10]["member_id"].encode()]
        assert metric(w, "rte_cache_warming_invalid_events_total", topic=LIKELY_TOPIC) >= 4
    finally:
        stop_clean(w)


def test_window_and_size_flushes_reach_the_cache(workdir, redis_server, broker, members):
    """max_batch 10: 25 members become batches of 10 and 10 at once (size) and 5 when the
    window (30 s of a clock scaled 10x: 3 s) elapses; webhook-receiver polls all into the
    cache. Both processes run the scaled clock with one RTE_CLOCK_ANCHOR (5 s before
    either starts), started 3 s apart: the batch registry's times, written by
    cache-warmer (registered) and by webhook-receiver (done), both read the shared
    simulated time - without the anchor each clock would start at its own start-up,
    50 and 80 simulated seconds behind it."""
    path, ms = members
    ok = eligible(ms)[100:125]
    sim = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="20s")
    st = Stack(redis_server, broker, path, sim)
    scale, start_ms, anchor = 10, 1767592800000, int(time.time()) - 5  # 2026-01-05T06:00Z

    def sim_ms(t):  # the shared simulated clock at real time t
        return start_ms + (t - anchor) * scale * 1000
    clock = {"RTE_CLOCK_SCALE": str(scale), "RTE_CLOCK_START": "2026-01-05T06:00:00Z",
             "RTE_CLOCK_ANCHOR": str(anchor)}
    w = st.start_warmer(workdir, RTE_WARM_MAX_BATCH="10", RTE_WARM_WINDOW="30s",
                        RTE_WARMER_FLUSH_CHECK="1s", **clock)
    time.sleep(3)
    wh = st.start_receiver(workdir, RTE_WH_POLL_INTERVAL="2s", **clock)
    try:
        t0, sent_at = time.monotonic(), time.time()
        send_likely(broker, [(m["member_id"], 0.8) for m in ok])
        wait_metric(w, "rte_batch_submitted_total", 2, timeout=20)
        sizes_at_once = sorted(len(v) for v in st.submitted().values())
        assert sizes_at_once == [10, 10], sizes_at_once
        wait_metric(w, "rte_batch_submitted_total", 3, timeout=20)
        assert time.monotonic() - t0 >= 2.5, "the window flushed before it elapsed"
        sub = st.submitted()
        assert sorted(len(v) for v in sub.values()) == [5, 10, 10]
        assert sorted(m for v in sub.values() for m in v) == sorted(m["member_id"] for m in ok)
        assert metric(w, "rte_batch_checks_submitted_total") == 25
        wait_for(lambda: all(st.cache_entry(m) for m in ok), timeout=60,
                 what="25 cache entries written by webhook-receiver")
        assert {st.cache_entry(m)["source"] for m in ok} == {"stedi_batch"}
        wait_metric(w, "rte_batch_completion_duration_seconds_count", 3, timeout=30)
        # registered by cache-warmer, done by webhook-receiver: both on the shared clock
        lo, hi = sim_ms(sent_at) - 5000, sim_ms(time.time()) + 5000
        for b in sub:
            rec = {k.decode(): v.decode()
                   for k, v in st.rds.hgetall(f"{st.registry_prefix}:{b}").items()}
            assert lo <= int(rec["registered_ms"]) <= int(rec["done_ms"]) <= hi, (b, rec, lo, hi)
    finally:
        stop_clean(w)
        stop_clean(wh)
        stop_clean(sim)


def test_sigterm_flushes_the_open_window(workdir, redis_server, broker, members):
    path, ms = members
    ok = eligible(ms)[200:207]
    sim = start_stedi_sim(workdir)
    st = Stack(redis_server, broker, path, sim)
    w = st.start_warmer(workdir)   # window 1 h: only the SIGTERM flush can submit
    send_likely(broker, [(m["member_id"], 0.8) for m in ok])
    wait_for(lambda: len(st.open_members()) == 7, what="7 members queued")
    assert st.batch_ids() == []
    stop_clean(w)
    sub = st.submitted()
    assert [sorted(v) for v in sub.values()] == [sorted(m["member_id"] for m in ok)]
    assert st.open_members() == {}
    stop_clean(sim)


def test_urgent_member_on_both_topics_is_called_once(workdir, redis_server, broker, members):
    """member-cron sends an urgent member on both topics (two event ids): one real-time
    Stedi call warms it; the other event is a duplicate member, not a second call."""
    path, ms = members
    ok = eligible(ms)
    # simulator classes 1..4 answer a covered, active member (docs/stedi-sim.md)
    a, b = [m for m in ok if int(m["member_id"][1:]) % 20 == 1][:2]
    # 2-2.5 s real per call (sim clock x1000): both events are decided while the call runs
    sim = start_stedi_sim(workdir, latency_p50="2000s", latency_p95="2500s", latency_max="3000s")
    st = Stack(redis_server, broker, path, sim)
    w = st.start_warmer(workdir)
    try:
        send_likely(broker, [(a["member_id"], 0.95), (b["member_id"], 0.96)])
        send_cron(broker, [(a["member_id"], 0.97), (b["member_id"], 0.98)])
        wait_metric(w, "rte_cache_warming_urgent_total", 2, outcome="warmed")
        # each member's other event: a duplicate while its call runs, or fresh once written
        wait_for(lambda: sum(metric(w, "rte_cache_warming_skipped_total", reason=r)
                             for r in ("duplicate_member", "fresh")) >= 2,
                 what="each member's second event skipped")
        time.sleep(1)
        stats = sim.get("http", "/_sim/stats").json()
        assert stats["realtime_calls"] == 2, stats
        assert metric(w, "rte_cache_warming_urgent_total", outcome="warmed") == 2
        assert st.cache_entry(a) and st.cache_entry(b)
    finally:
        stop_clean(w)
        stop_clean(sim)
