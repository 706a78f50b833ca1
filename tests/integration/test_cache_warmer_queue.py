"""cache-warmer's batch queue across processes: 25,000 predictions become three Stedi
batches of at most 10,000 that webhook-receiver polls into the cache; two replicas never
submit a member twice; kill -9 mid-accumulation loses no member and re-submits none.
Real processes: Redis, kafka-dev-broker, stedi-sim, webhook-receiver, cache-warmer."""
import collections
import time

import pytest

from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import start_broker
from warmer_util import (LosingProxy, Stack, eligible, gen_members, metric, send_cron,
                         send_likely)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("warmq-kafka"))
    yield b
    b.stop()


def submitted_counts(st):
    return collections.Counter(m for v in st.submitted().values() for m in v)


def test_25000_predictions_become_three_batches_and_reach_the_cache(workdir, redis_server,
                                                                     broker):
    path, ms = gen_members(workdir, 33000, 11)
    ok = eligible(ms)[:25000]
    assert len(ok) == 25000
    # results trickle in over ~20 s (sim clock x1000): the dev broker keeps only 5 MB per
    # partition, so results polled much faster than webhook-receiver writes them would be
    # trimmed from rte.stedi.batch-results before they were consumed
    sim = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="20000s")
    st = Stack(redis_server, broker, path, sim)
    wh = st.start_receiver(workdir)
    w = st.start_warmer(workdir, RTE_WARM_WINDOW="10s")
    try:
        send_likely(broker, [(m["member_id"], 0.8) for m in ok])
        wait_for(lambda: metric(w, "rte_batch_submitted_total") >= 3, timeout=90,
                 what="3 batches submitted")
        time.sleep(1)
        sub = st.submitted()
        assert sorted(len(v) for v in sub.values()) == [5000, 10000, 10000]
        counts = collections.Counter(m for v in sub.values() for m in v)
        assert len(counts) == 25000 and set(counts.values()) == {1}
        assert metric(w, "rte_batch_checks_submitted_total") == 25000
        wait_for(lambda: not [m for m in ok[::50] if not st.cache_entry(m)],
                 timeout=120, interval=1, what="a sample of 500 entries cached")
        wait_for(lambda: all(st.cache_entry(m) for m in ok), timeout=120, interval=2,
                 what="all 25,000 entries in the cache")
    finally:
        stop_clean(w)
        stop_clean(wh)
        stop_clean(sim)


# A member's two events (one per topic) often land on different replicas at different
# times; when a window closed between them, the old per-window member dedupe queued the
# member again in the next window (CI, stop 24). Members are now remembered for
# warm.member_ttl across windows.
def test_two_replicas_never_submit_a_member_twice(workdir, redis_server, broker):
    path, ms = gen_members(workdir, 5000, 12)
    ok = eligible(ms)[:3000]
    sim = start_stedi_sim(workdir)
    st = Stack(redis_server, broker, path, sim)
    a = st.start_warmer(workdir, RTE_WARM_WINDOW="2s", RTE_WARM_MAX_BATCH="400")
    b = st.start_warmer(workdir, RTE_WARM_WINDOW="2s", RTE_WARM_MAX_BATCH="400")
    try:
        # every member twice (both topics: the replicas split the partitions of each, so a
        # member's two events usually land on different replicas), in two rounds
        for half in (ok[:1500], ok[1500:]):
            send_likely(broker, [(m["member_id"], 0.8) for m in half])
            send_cron(broker, [(m["member_id"], 0.85) for m in half])
        wait_for(lambda: sum(submitted_counts(st).values()) >= 3000, timeout=90, interval=0.5,
                 what="3,000 members submitted")
        time.sleep(3)  # a second submission of anyone would show up by now
        counts = submitted_counts(st)
        assert len(counts) == 3000 and max(counts.values()) == 1
        assert all(len(v) <= 400 for v in st.submitted().values())
        per = [metric(x, "rte_batch_checks_submitted_total") for x in (a, b)]
        assert sum(per) == 3000
        dups = sum(metric(x, "rte_cache_warming_skipped_total", reason="duplicate_member")
                   for x in (a, b))
        assert dups == 3000
    finally:
        stop_clean(a)
        stop_clean(b)
        stop_clean(sim)


# When the kill lands while replica a is inside the Stedi submit call, replica b takes the
# claim over when a's lease ends and submits the batch again under the name a recorded:
# Stedi creates it then (a died before it arrived) or answers 409 (it exists), and b finds
# its id among the polled results by name and registers it. Either way: once, not lost.
def test_kill9_mid_accumulation_loses_none_and_resubmits_none(workdir, redis_server, broker):
    path, ms = gen_members(workdir, 5000, 13)
    ok = eligible(ms)[:3000]
    sim = start_stedi_sim(workdir)
    st = Stack(redis_server, broker, path, sim)
    # first replica: batches of 300 go out as they fill, the rest accumulates (window 1 h)
    a = st.start_warmer(workdir, RTE_WARM_MAX_BATCH="300", RTE_WARMER_BATCH_MAX="50")
    send_likely(broker, [(m["member_id"], 0.8) for m in ok[:2000]])
    wait_for(lambda: metric(a, "rte_batch_submitted_total") >= 2 and st.open_members(),
             timeout=60, what="some batches submitted and members accumulating")
    a.kill()
    before = submitted_counts(st)
    assert 600 <= sum(before.values()) < 2000
    b = st.start_warmer(workdir, RTE_WARM_MAX_BATCH="300", RTE_WARM_WINDOW="2s")
    try:
        send_likely(broker, [(m["member_id"], 0.8) for m in ok[2000:]])
        wait_for(lambda: sum(submitted_counts(st).values()) >= 3000, timeout=90, interval=0.5,
                 what="all 3,000 members submitted")
        time.sleep(3)
        counts = submitted_counts(st)
        assert set(counts) == {m["member_id"] for m in ok}, "a member was lost"
        assert max(counts.values()) == 1, "a member was submitted twice"
    finally:
        stop_clean(b)
        stop_clean(sim)


def test_a_lost_submit_answer_is_submitted_once_and_found_by_name(workdir, redis_server, broker):
    """Stedi creates the batch but its answer is lost: the retry under the same name is
    refused (409), the batch is found by name among the polled results and registered;
    Stedi holds it once and its results reach the cache."""
    path, ms = gen_members(workdir, 600, 14)
    ok = eligible(ms)[:200]
    sim = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="60s")
    proxy = LosingProxy(sim, lose=1)
    st = Stack(redis_server, broker, path, sim)
    wh = st.start_receiver(workdir)
    w = st.start_warmer(workdir, RTE_WARM_WINDOW="2s", RTE_WARM_RETRY_DELAY="300ms",
                        RTE_STEDI_BASE_URL=proxy.url)
    try:
        send_likely(broker, [(m["member_id"], 0.8) for m in ok])
        wait_for(lambda: st.batch_ids(), timeout=60, interval=0.3, what="the batch registered")
        # one POST lost after Stedi took it, one refused as a taken name; nothing else
        assert proxy.statuses == [200, 409]
        sub = st.submitted()
        assert len(sub) == 1
        (members,) = sub.values()
        assert sorted(members) == sorted(m["member_id"] for m in ok)
        assert metric(w, "rte_batch_submitted_total") == 1
        assert metric(w, "rte_cache_warming_results_total", result="unknown") == 0
        wait_for(lambda: all(st.cache_entry(m) for m in ok), timeout=90, interval=1,
                 what="every member's entry in the cache")
    finally:
        stop_clean(w)
        stop_clean(wh)
        stop_clean(sim)
        proxy.close()
