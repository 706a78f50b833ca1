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

import requests
from confluent_kafka import Consumer, TopicPartition

from conftest import KafkaBroker, RedisServer, start_stedi_sim, stop_clean, wait_for
from kafka_util import consume_all
from webhook_util import (body_of, callback, metric, post, sign_standard,
                                        start_receiver, wait_cached)

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
