"""webhook-receiver: nothing accepted is ever lost.

Real processes, each test with the pieces it breaks of its own: a kill -9
between the 202 and the cache writes; Redis down while the consumer works
(offsets not committed until the writes succeed); a frozen broker (503, then
success once it answers again); and a Stedi batch submitted without a
callback that reaches the cache by polling across a kill -9 of the receiver.
"""
import json
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from confluent_kafka import Consumer, TopicPartition

from conftest import KafkaBroker, RedisServer, Service, start_stedi_sim, stop_clean, wait_for
from kafka_util import consume_all
from webhook_util import (body_of, cache_get, callback, metric, post, receiver_env,
                          sign_standard, start_receiver, wait_cached, write_config)

TOPIC = "rte.stedi.batch-results"
GROUP = "webhook-receiver." + TOPIC


def own_redis(workdir):
    r = RedisServer(tempfile.mkdtemp(dir=workdir))
    r.start()
    return r


def offsets(bootstrap):
    """(high watermarks, committed offsets of the receiver's group) per partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                  "enable.auto.commit": False})
    try:
        parts = c.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        tps = [TopicPartition(TOPIC, p) for p in parts]
        high = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        committed = {tp.partition: max(tp.offset, 0) for tp in c.committed(tps, timeout=10)}
        return high, committed
    finally:
        c.close()


def test_kill9_after_202_before_cache_writes(workdir, kafka_broker):
    rs = own_redis(workdir)
    rx = start_receiver(workdir, rs.url, kafka_broker.bootstrap, WH_REDIS_WAIT="1s")
    try:
        rs.stop()  # the consumer cannot write: the 202 must rest on Kafka alone
        r = rx.get("admin", "/readyz")  # readiness follows Kafka: callbacks still accepted
        assert r.status_code == 200
        assert r.json()["checks"] == {"kafka": "ok", "kafka_consumers": "ok"}
        body = body_of(callback("kill9", 200))
        r = post(rx, body, sign_standard(body))
        assert r.status_code == 202, r.text
        rx.kill()
        rs.start()
        assert rs.client().dbsize() == 0  # nothing reached this (fresh) Redis
        rx = start_receiver(workdir, rs.url, kafka_broker.bootstrap)
        got = wait_cached(rs.client(), [f"kill9M{i}" for i in range(200)], timeout=60)
        assert got["kill9M7"]["copay_amount"] == 20
        assert rs.client().scard("rte:wh:batch:kill9:written") == 200
    finally:
        stop_clean(rx)
        rs.stop()


def test_redis_down_during_consumption(workdir, kafka_broker):
    rs = own_redis(workdir)
    rx = start_receiver(workdir, rs.url, kafka_broker.bootstrap, WH_REDIS_WAIT="500ms",
                        KAFKA_HANDLER_MAX_RETRIES="1000",
                        KAFKA_HANDLER_RETRY_BACKOFF_MAX="500ms")
    try:
        rs.stop()
        batches = [f"redis-down-{i}" for i in range(3)]
        for b in batches:
            body = body_of(callback(b, 50))
            assert post(rx, body, sign_standard(body)).status_code == 202
        high, _ = offsets(kafka_broker.bootstrap)
        wait_for(lambda: metric(rx, "rte_wh_messages_total", kind="callback",
                                outcome="retry") >= 2, what="retries while Redis is down")
        assert metric(rx, "rte_kafka_consumer_stalled", topic="rte.stedi.batch-results") >= 1
        time.sleep(1.5)  # several auto-commit intervals (500 ms) pass
        _, committed = offsets(kafka_broker.bootstrap)
        assert any(committed[p] < high[p] for p in high), (committed, high)
        rs.start()
        rds = rs.client()
        for b in batches:
            wait_cached(rds, [f"{b}M{i}" for i in range(50)], timeout=60)
            wait_for(lambda b=b: rds.scard(f"rte:wh:batch:{b}:written") == 50, what=b)
        wait_for(lambda: (lambda h, c: all(c[p] >= h[p] for p in h))(
            *offsets(kafka_broker.bootstrap)), timeout=30, what="offsets committed")
        assert metric(rx, "rte_kafka_consumer_stalled", topic="rte.stedi.batch-results") == 0
        # at least once: a message whose partition moved while it was being retried may be
        # written by two members, which rewrites identical entries; the record stays exact
        assert metric(rx, "rte_wh_results_written_total", kind="callback") >= 150
        assert metric(rx, "rte_wh_messages_total", kind="callback", outcome="poison") == 0
    finally:
        stop_clean(rx)
        rs.stop()


def test_broker_down_is_503_then_success(workdir, redis_server):
    d = tempfile.mkdtemp(dir=workdir)
    broker = KafkaBroker(d)
    broker.start()
    rx = start_receiver(d, redis_server.url, broker.bootstrap, WH_PRODUCE_TIMEOUT="2s")
    try:
        body = body_of(callback("broker-down", 10))
        os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker stops answering
        t0 = time.monotonic()
        r = post(rx, body, sign_standard(body))
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert time.monotonic() - t0 < 10
        assert metric(rx, "rte_wh_callbacks_total", result="unavailable") == 1
        # other requests are not stuck behind the slow produce
        assert rx.get("admin", "/healthz", timeout=2).status_code == 200
        os.kill(broker.proc.pid, signal.SIGCONT)

        def retried():  # a sender retrying with a fresh delivery id each time
            return post(rx, body, sign_standard(body)).status_code == 202
        wait_for(retried, timeout=60, interval=1, what="202 once the broker is back")
        wait_cached(redis_server.client(), [f"broker-downM{i}" for i in range(10)])
    finally:
        if broker.proc.poll() is None:
            os.kill(broker.proc.pid, signal.SIGCONT)
        stop_clean(rx)
        broker.stop()


def test_polled_batch_lands_across_restart(workdir, redis_server, kafka_broker):
    n, page = 240, 20
    sim = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="9s",
                          RTE_CLOCK_SCALE="1")
    env = dict(WH_POLL_ENABLED="true", WH_POLL_INTERVAL="200ms", WH_POLL_PAGE_SIZE=str(page),
               BATCH_REGISTRY_FIRST_DELAY="300ms", BATCH_REGISTRY_MAX_INTERVAL="1s",
               BATCH_REGISTRY_LEASE="2s",
               STEDI_BASE_URL=f"http://127.0.0.1:{sim.ports['http']}", STEDI_API_KEY="test-key")
    rx = start_receiver(workdir, redis_server.url, kafka_broker.bootstrap, **env)
    try:
        items = [{"tradingPartnerServiceId": "62308",
                  "provider": {"organizationName": "Clinic", "npi": "1999999984"},
                  "subscriber": {"memberId": f"POLL{i}", "firstName": "Ann", "lastName": "Lee",
                                 "dateOfBirth": "19800102"},
                  "encounter": {"serviceTypeCodes": ["30"]},
                  "submitterTransactionIdentifier": f"P{i}"} for i in range(n)]
        r = requests.post(sim.url("http", "/2024-04-01/eligibility-manager/batch-eligibility"),
                          json={"items": items}, headers={"Authorization": "test-key"},
                          timeout=30)
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        # a polled result names no member: the registration says who each item is
        members = [{"submitter_id": f"P{i}", "member_id": f"POLL{i}",
                    "trading_partner_id": "62308", "service_types": ["30"]} for i in range(n)]
        r = requests.post(rx.url("admin", "/admin/batches"),
                          json={"batch_id": batch_id, "source": "cache-warmer", "items": n,
                                "members": members},
                          timeout=10)
        assert r.status_code == 201, r.text

        def record():
            return requests.get(rx.url("admin", f"/admin/batches/{batch_id}"), timeout=10).json()
        # mid-way: some pages produced, the batch not complete
        rec = wait_for(lambda: (lambda d: d if d["polled"] >= 2 * page else None)(record()),
                       timeout=30, what="first pages polled")
        assert rec["state"] == "pending" and rec["polled"] < n and rec["cursor"]
        rx.kill()
        rx = start_receiver(workdir, redis_server.url, kafka_broker.bootstrap, **env)
        rec = wait_for(lambda: (lambda d: d if d["state"] == "done" else None)(record()),
                       timeout=60, what="batch done")
        assert rec["done_reason"] == "complete"
        # neither re-read from the start nor skipped: at most one page twice
        assert n <= rec["polled"] <= n + page, rec
        rds = redis_server.client()
        got = wait_cached(rds, [f"POLL{i}" for i in range(n)], timeout=30)
        assert all(e["source"] == "stedi_batch" for e in got.values())
        # payer rejections (sim classes 5 and 15: AAA 75, AAA 44) are error entries, written
        # with what they say about retrying; the others are answers for service type 30
        for i in range(n):
            e = got[f"POLL{i}"]
            if i % 20 in (5, 15):
                assert e["error"]["code"] == ("75" if i % 20 == 5 else "44") and \
                    e["error"]["retry"] is False, e
            else:
                assert "error" not in e and e["benefits"]["30"]["status"] in ("active",
                                                                              "inactive"), e
        wait_for(lambda: rds.scard(f"rte:wh:batch:{batch_id}:written") == n, what="all recorded")

        def event():
            evs = [json.loads(m.value) for m in
                   consume_all(kafka_broker.bootstrap, "domain.rte.v1.cache_warming_events")
                   if m.key == batch_id.encode()]
            return evs or None
        evs = wait_for(event, timeout=30, what="cache_warming_events event")
        assert len(evs) == 1
        assert evs[0]["via"] == "poll" and evs[0]["source"] == "cache-warmer"
        assert (evs[0]["total"], evs[0]["written"], evs[0]["failed"]) == (n, n, 0)
        assert metric(rx, "rte_wh_batches_polled_total", outcome="complete") == 1
    finally:
        stop_clean(rx)
        stop_clean(sim)


def test_frozen_broker_holds_no_worker(workdir, redis_server):
    """The 202/503 waits on the broker's report, not in a worker thread
    (issue 23): with one worker and a frozen broker, 8 concurrent callbacks
    are all handed to the producer at once and all answered 503 about one
    wh.produce_timeout later (the old synchronous produce answered them one
    after another, 8 timeouts in all); none is answered 202 and each
    delivery id is forgotten again (a retry is processed, not taken for a
    replay). Once the broker answers, a burst of 40 on the same single
    worker is accepted whole and cached."""
    d = tempfile.mkdtemp(dir=workdir)
    broker = KafkaBroker(d)
    broker.start()
    rx = start_receiver(d, redis_server.url, broker.bootstrap, WH_WORKERS=1,
                        WH_PRODUCE_TIMEOUT="2s")
    rds = redis_server.client()
    try:
        bodies = [body_of(callback(f"frozen-{k}", 5)) for k in range(8)]
        heads = [sign_standard(b, wid=f"frozen-delivery-{k}") for k, b in enumerate(bodies)]
        os.kill(broker.proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as ex:
            done = list(ex.map(lambda k: (post(rx, bodies[k], heads[k]), time.monotonic() - t0),
                               range(8)))
        codes = [r.status_code for r, _ in done]
        assert codes == [503] * 8, [r.text for r, _ in done]
        slowest = max(t for _, t in done)
        assert 1.9 <= slowest < 6, f"answered after {slowest:.1f} s (2 s timeout, 1 worker)"
        assert metric(rx, "rte_wh_callbacks_total", result="unavailable") == 8
        assert metric(rx, "rte_wh_callbacks_total", result="accepted") == 0
        assert [k for k in range(8) if rds.exists(f"rte:wh:delivery:wh:frozen-delivery-{k}")] == []
        assert [k for k in range(8) if cache_get(rds, f"frozen-{k}M0", "62308")] == []
        os.kill(broker.proc.pid, signal.SIGCONT)

        burst = [body_of(callback(f"burst-{k}", 3)) for k in range(40)]

        def send(k):
            return post(rx, burst[k], sign_standard(burst[k])).status_code
        with ThreadPoolExecutor(40) as ex:
            got = list(ex.map(send, range(40)))
        assert got == [202] * 40
        assert metric(rx, "rte_wh_callbacks_total", result="accepted") == 40
        wait_cached(rds, [f"burst-{k}M{i}" for k in range(40) for i in range(3)])
    finally:
        if broker.proc.poll() is None:
            os.kill(broker.proc.pid, signal.SIGCONT)
        stop_clean(rx)
        broker.stop()


def test_part_the_producer_refuses_is_503_at_once(workdir, redis_server, kafka_broker):
    """A part the producer refuses (here: larger than kafka.producer.
    message.max.bytes) fails the callback at once - 503, not 202 and not a
    wait for wh.produce_timeout - and forgets its delivery id; a callback
    that fits is accepted by the same receiver."""
    d = tempfile.mkdtemp(dir=workdir)
    cfg = write_config(d, "small-messages.yaml", "kafka.producer.message.max.bytes: 4000\n")
    rx = Service("webhook-receiver",
                 receiver_env(redis_server.url, kafka_broker.bootstrap, WH_PRODUCE_TIMEOUT="20s"),
                 d, args=["--config", cfg]).start()
    rds = redis_server.client()
    try:
        big = body_of(callback("too-big", 40))  # one part of ~11 kB
        assert len(big) > 8000
        t0 = time.monotonic()
        r = post(rx, big, sign_standard(big, wid="too-big-delivery"))
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert time.monotonic() - t0 < 5, "answered by the refusal, not the 20 s timeout"
        assert metric(rx, "rte_wh_callbacks_total", result="unavailable") == 1
        assert not rds.exists("rte:wh:delivery:wh:too-big-delivery")
        small = body_of(callback("fits", 1))
        r = post(rx, small, sign_standard(small))
        assert r.status_code == 202, r.text
        assert r.json()["results"] == 1 and r.json()["parts"] == 1
        wait_cached(rds, ["fitsM0"])
        assert cache_get(rds, "too-bigM0", "62308") is None
    finally:
        stop_clean(rx)
