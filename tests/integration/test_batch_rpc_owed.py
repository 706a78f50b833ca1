"""batch-rpc never loses a job's STARTED or final event (issue 20): the status change writes
an "owed" marker with it; the marker is cleared only once every sink took its event (the
update log, Kafka acknowledged, the webhook outbox). A replica killed with -9 while Kafka
cannot acknowledge the COMPLETED event leaves the marker; another replica sends the event
again, with the same event id / webhook-id, so receivers can drop duplicates."""
import hashlib
import os
import signal
import time

import pytest

from batchrpc_util import BatchStack, Client, Hooks, answered
from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import consume_all, start_broker
from warmer_util import eligible, gen_members, metric

WEBHOOK_SECRET = "whsec_q6BDFtL2dXPYQMmD3jg5V0hN1cZr8wOqkxJ4y7sZ0aE="
TOPIC = "domain.rte.v1.batch_job_events"


@pytest.fixture(scope="module")
def members(workdir):
    path, ms = gen_members(workdir, 200, 41)
    return path, answered(eligible(ms))


def event_id(batch_id, type_):
    """The id batch-rpc gives an owed event: name-based UUID of "<batch id>/<type>"."""
    h = list(hashlib.sha1(f"{batch_id}/{type_}".encode()).hexdigest()[:32])
    h[12] = "5"
    h[16] = "0123456789abcdef"[(int(h[16], 16) & 3) | 8]
    h = "".join(h)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def batch_events(broker, batch_id):
    import batch_events_pb2
    out = []
    for m in consume_all(broker.bootstrap, TOPIC):
        if m.key == batch_id.encode():
            e = batch_events_pb2.BatchJobEvent()
            e.ParseFromString(m.value)
            out.append(e)
    return out


def test_completed_event_survives_kill9_while_kafka_is_down(workdir, redis_server, members,
                                                            tmp_path_factory):
    path, ok = members
    broker = start_broker(tmp_path_factory.mktemp("batchrpc-owed-kafka"))
    # scale 10: a 4 s median answer takes 400 ms, capped at 800 ms
    sim = start_stedi_sim(workdir, RTE_CLOCK_SCALE="10", latency_max="8s")
    st = BatchStack(redis_server, broker, path, sim)
    extra = {"RTE_BATCHRPC_CHUNK": "4", "RTE_BATCHRPC_LEASE": "3s",
             "RTE_BATCHRPC_WEBHOOK_SECRET": WEBHOOK_SECRET,
             "RTE_BATCHRPC_WEBHOOK_BACKOFF": "200ms"}
    a = st.start_batchrpc(workdir, **extra)
    b = None
    ca = Client(a)
    cb = None
    pb = ca.pb
    hooks = Hooks()
    stopped = False
    try:
        req = ca.ids_request([m["member_id"] for m in ok[:12]],
                             strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                             max_concurrent_requests=2, client_job_id="owed")
        req.options.notifications.callback_url = hooks.url
        req.options.notifications.event_types.extend(["STARTED", "COMPLETED"])
        req.options.notifications.delivery_mode = \
            pb.NotificationPreferences.DELIVERY_AT_LEAST_ONCE
        r = ca.submit(req)
        bid = r.batch_id
        owed_set = f"{st.batch_prefix}:owed"
        # STARTED was acknowledged by Kafka: the marker is gone before the job ends
        wait_for(lambda: st.job(bid).get("started_ms") and "owed" not in st.job(bid)
                 and int(st.job(bid).get("completed", 0)) >= 1,
                 timeout=60, interval=0.05, what="STARTED paid and a member done")
        assert st.job(bid).get("ended") != "1", "the job ended too early for the test"
        started = [e for e in batch_events(broker, bid) if e.event_type == "STARTED"]
        assert [e.event_id for e in started] == [event_id(bid, "STARTED")]
        # Kafka stops answering before the job ends: COMPLETED cannot be acknowledged
        os.kill(broker.proc.pid, signal.SIGSTOP)
        stopped = True
        wait_for(lambda: st.job(bid).get("ended") == "1", timeout=90, interval=0.05,
                 what="the job to end")
        job = st.job(bid)
        # the end and its marker were written together; the marker stays: Kafka took nothing
        assert job["owed"] == "ENDED", job
        assert int(job["status"]) == pb.BATCH_STATUS_COMPLETED
        assert st.rds.zscore(owed_set, bid) is not None
        # the log and the webhook outbox took theirs: remembered, so a retry skips them
        wait_for(lambda: st.job(bid).get("sent_COMPLETED") == "5", timeout=20,
                 what="the sinks that took COMPLETED (log 1 + webhook 4) recorded")
        wait_for(lambda: hooks.of_type("batch.completed"), timeout=20,
                 what="the COMPLETED webhook")
        # the replica dies with the unacknowledged event in its producer's queue
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        os.kill(broker.proc.pid, signal.SIGCONT)
        stopped = False
        b = st.start_batchrpc(workdir, **extra)
        cb = Client(b)
        ev = wait_for(lambda: [e for e in batch_events(broker, bid)
                               if e.event_type == "COMPLETED"] or None,
                      timeout=60, interval=0.5, what="COMPLETED on Kafka from the other replica")
        assert {e.event_id for e in ev} == {event_id(bid, "COMPLETED")}
        done = ev[0]
        assert done.batch_id == bid and done.details.client_job_id == "owed"
        assert done.completed.total_members == 12 and done.completed.successful == 12
        # the marker is cleared once every sink took its event again
        wait_for(lambda: "owed" not in st.job(bid) and st.rds.zscore(owed_set, bid) is None,
                 timeout=30, what="the owed marker to clear")
        assert metric(b, "rte_batchrpc_events_redelivered_total", type="completed") == 1
        assert metric(b, "rte_batchrpc_events_redelivered_total", type="started") == 0
        assert "sent_COMPLETED" not in st.job(bid)
        # the webhook, stored before the crash, is not stored again: one message, derived id
        time.sleep(1)
        ids = [h["webhook-id"] for h, _ in hooks.of_type("batch.completed")]
        assert ids == ["msg_" + event_id(bid, "COMPLETED")]
        assert [h["webhook-id"] for h, _ in hooks.of_type("batch.started")] == \
            ["msg_" + event_id(bid, "STARTED")]
        # the update log (a Redis stream) holds the final update once
        kinds = []
        for _, f in st.rds.xrange(f"{st.batch_prefix}:j:{bid}:ev"):
            u = pb.BatchStatusUpdate()
            u.ParseFromString(f[b"u"])
            kinds.append(u.WhichOneof("update"))
        assert kinds.count("completed") == 1 and kinds.count("started") == 1, kinds
        s = cb.status(pb.GetBatchStatusRequest(batch_id=bid))
        assert s.status == pb.BATCH_STATUS_COMPLETED
        stop_clean(b)
    finally:
        if stopped:
            os.kill(broker.proc.pid, signal.SIGCONT)
        ca.close()
        if cb:
            cb.close()
        for s in (a, b):
            if s:
                s.kill()
        hooks.close()
        sim.stop()
        broker.stop()


def test_cancel_while_kafka_is_down_is_sent_again(workdir, redis_server, members,
                                                  tmp_path_factory):
    path, ok = members
    broker = start_broker(tmp_path_factory.mktemp("batchrpc-owed-cancel-kafka"))
    sim = start_stedi_sim(workdir, RTE_CLOCK_SCALE="10", latency_max="8s")
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_CHUNK="4", RTE_BATCHRPC_LEASE="3s")
    c = Client(svc)
    pb = c.pb
    stopped = False
    try:
        r = c.submit(c.ids_request([m["member_id"] for m in ok[20:60]],
                                   strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                   max_concurrent_requests=1))
        bid = r.batch_id
        wait_for(lambda: st.job(bid).get("started_ms") and "owed" not in st.job(bid),
                 timeout=60, interval=0.05, what="STARTED paid")
        os.kill(broker.proc.pid, signal.SIGSTOP)
        stopped = True
        resp = c.cancel(pb.CancelBatchRequest(batch_id=bid, reason="owed test"))
        assert resp.status == pb.BATCH_STATUS_CANCELLED
        job = st.job(bid)
        assert job["ended"] == "1" and job["owed"] == "ENDED", job
        os.kill(broker.proc.pid, signal.SIGCONT)
        stopped = False
        # the work tick sends it again once the owed entry is due (one lease after the cancel)
        wait_for(lambda: "owed" not in st.job(bid), timeout=30, what="the owed marker to clear")
        assert metric(svc, "rte_batchrpc_events_redelivered_total", type="cancelled") == 1
        ev = wait_for(lambda: [e for e in batch_events(broker, bid)
                               if e.event_type == "CANCELLED"] or None,
                      timeout=30, interval=0.5, what="CANCELLED on Kafka")
        # librdkafka may also deliver the first attempt once the broker answers: same id
        assert {e.event_id for e in ev} == {event_id(bid, "CANCELLED")}
        assert ev[0].failed.error_message == "owed test"
        # exits 0 (under ASan: no leak, no UB)
        stop_clean(svc)
    finally:
        if stopped:
            os.kill(broker.proc.pid, signal.SIGCONT)
        c.close()
        svc.kill()
        sim.stop()
        broker.stop()
