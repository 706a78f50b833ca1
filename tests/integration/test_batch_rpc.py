"""batch-rpc's BatchEligibilityService from Python's grpcio against the real
processes (Redis, Kafka dev broker, stedi-sim, webhook-receiver): every RPC
and its errors, the strategies, cache_control, idempotent submit, the rate
limit, listing, cancel and stream resume."""
import json
import time

import grpc
import pytest
import requests

from batchrpc_util import BatchStack, Client, Hooks, answered, code_of, rejected
from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import start_broker
from warmer_util import eligible, gen_members

import eligibility_pb2 as epb  # noqa: E402 (conftest puts the generated modules on the path)

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("batchrpc-kafka"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def members(workdir):
    path, ms = gen_members(workdir, 2000, 20)
    return path, answered(eligible(ms)), rejected(eligible(ms))


def sim_stats(sim):
    return requests.get(sim.url("http", "/_sim/stats"), timeout=10).json()


def test_realtime_job_completes_and_reports(workdir, redis_server, broker, members):
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir)
    c = Client(svc)
    try:
        pb = c.pb
        ids = [m["member_id"] for m in ok[:12]]
        r = c.submit(c.ids_request(ids, strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                   max_concurrent_requests=3))
        assert r.batch_id.startswith("br-") and r.total_members == 12
        ro = r.resolved_options
        assert ro.strategy == pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY
        assert ro.max_concurrent_requests == 3 and ro.timeout.seconds == 8 * 3600
        assert ro.retry_config.max_attempts == 3
        assert ro.notifications.kafka_topic == "domain.rte.v1.batch_job_events"
        s = c.wait_final(r.batch_id)
        assert s.status == pb.BATCH_STATUS_COMPLETED, s
        assert (s.progress.total_members, s.progress.completed, s.progress.failed) == (12, 12, 0)
        assert s.progress.cache_misses == 12 and s.progress.cache_hits == 0
        for m in ok[:12]:
            e = st.cache_entry(m)
            assert e is not None and e["source"] == "stedi_realtime"
        job = st.job(r.batch_id)
        assert job["rt_calls"] == "12" and job.get("sb_calls", "0") == "0"
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def ids_of(ms):
    return [m["member_id"] for m in ms]


def test_submit_refuses_bad_requests_naming_the_field(workdir, redis_server, broker, members):
    path, ok, bad = members
    st = BatchStack(redis_server, broker, path, None)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_REQUEST_MAX="50")
    c = Client(svc)
    pb = c.pb
    try:
        def refused(req):
            code, details = code_of(c.submit, req)
            assert code == INVALID, (code, details)
            return details

        good = ids_of(ok[:3])
        assert refused(pb.SubmitBatchRequest(client_service_name="svc")).startswith(
            "member_selector:")
        assert refused(c.ids_request(good[:1] + [""])).startswith("member_ids.member_ids[1]:")
        d = refused(c.ids_request([good[0], good[1], good[0]]))
        assert d.startswith("member_ids.member_ids[2]: duplicate of member_ids[0]"), d
        assert refused(c.ids_request(ids_of(ok[:51]))).startswith("member_ids.member_ids:")
        r = c.ids_request(good)
        r.client_service_name = "bad name!"
        assert refused(r).startswith("client_service_name:")
        r = c.ids_request(good)
        r.cache_control = 9
        assert refused(r).startswith("cache_control:")
        r = c.ids_request(good)
        r.options.strategy = 7
        assert refused(r).startswith("options.strategy:")
        r = c.ids_request(good)
        r.options.retry_config.backoff_multiplier = 0.5
        assert refused(r).startswith("options.retry_config.backoff_multiplier:")
        r = c.ids_request(good)
        r.options.timeout.seconds = -1
        assert refused(r).startswith("options.timeout:")
        r = c.ids_request(good)
        r.options.notifications.event_types.append("EXPLODED")
        assert refused(r).startswith("options.notifications.event_types[0]:")
        r = c.ids_request(good)
        r.options.callback_url = "ftp://example.com/x"
        assert refused(r).startswith("options.callback_url:")
        r = c.ids_request(good)
        r.options.max_concurrent_requests = -2
        assert refused(r).startswith("options.max_concurrent_requests:")
        # a MemberQuery the directory cannot answer is refused by field (libcommon member_query)
        q = pb.SubmitBatchRequest(client_service_name="svc")
        q.member_query.predicate_filter.expression = "AGE >= 18 AND COLOR = 'red'"
        assert refused(q).startswith("member_query.predicate_filter.expression:")
        assert "COLOR" in refused(q)
        q = pb.SubmitBatchRequest(client_service_name="svc")
        q.member_query.cursor = "abc"
        assert refused(q).startswith("member_query.cursor:")
        q = pb.SubmitBatchRequest(client_service_name="svc")
        q.member_query.has_rte_enabled = True  # 2,000 members match, request_max is 50
        d = refused(q)
        assert d.startswith("member_query: selects ") and "more than 50 (batchrpc" in d, d
        # the other RPCs
        code, d = code_of(c.status, pb.GetBatchStatusRequest(batch_id=""))
        assert code == INVALID and d.startswith("batch_id:")
        code, d = code_of(c.status, pb.GetBatchStatusRequest(batch_id="br-nope"))
        assert code == grpc.StatusCode.NOT_FOUND and d.startswith("batch_id:")
        code, d = code_of(c.cancel, pb.CancelBatchRequest(batch_id="br-nope"))
        assert code == grpc.StatusCode.NOT_FOUND
        code, d = code_of(c.list, pb.ListBatchesRequest(page_size=-1))
        assert code == INVALID and d.startswith("page_size:")
        code, d = code_of(c.list, pb.ListBatchesRequest(page_token="garbage"))
        assert code == INVALID and d.startswith("page_token:")
        code, d = code_of(lambda: list(c.watch(pb.WatchBatchRequest(batch_id="br-x"),
                                                metadata=(("rte-resume-after", "yesterday"),))))
        assert code == INVALID and d.startswith("rte-resume-after metadata:")
        code, d = code_of(lambda: list(c.watch(pb.WatchBatchRequest(batch_id="br-x",
                                                                    event_types=[9]))))
        assert code == INVALID and d.startswith("event_types[0]:")
        assert svc.proc.poll() is None
    finally:
        c.close()
        stop_clean(svc)


def test_idempotent_submit_and_rate_limit(workdir, redis_server, broker, members):
    path, ok, bad = members
    st = BatchStack(redis_server, broker, path, None)
    # far in the future: jobs stay pending, nothing calls Stedi
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_RATE_LIMIT="3")
    c = Client(svc)
    pb = c.pb
    try:
        # a request refused after the client_job_id was claimed leaves it free
        q = pb.SubmitBatchRequest(client_service_name="it-service",
                                  client_job_id="nightly-2026-12-07")
        q.member_query.sponsor_ids.append("no-such-sponsor")
        code, d = code_of(c.submit, q)
        assert code == grpc.StatusCode.FAILED_PRECONDITION and d.startswith("member_query:")
        req = c.ids_request(ids_of(ok[:5]), client_job_id="nightly-2026-12-07",
                            cache_control=epb.CACHE_CONTROL_CACHE_ONLY)
        a = c.submit(req)
        b = c.submit(req)
        assert a.batch_id == b.batch_id and b.total_members == 5
        assert a.resolved_options == b.resolved_options
        c2 = c.submit(c.ids_request(ids_of(ok[5:8]), client_job_id="other"))
        c3 = c.submit(c.ids_request(ids_of(ok[8:9])))
        assert len({a.batch_id, c2.batch_id, c3.batch_id}) == 3
        code, d = code_of(c.submit, c.ids_request(ids_of(ok[9:10])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, d
        assert "at most 3 batches per 3600 s" in d and "retry after" in d
        # a replay is not a new batch: still answered under the limit
        assert c.submit(req).batch_id == a.batch_id
        assert c.submit(req).batch_id == a.batch_id
        assert len(st.rds.keys(f"{st.batch_prefix}:j:*:todo")) <= 3
    finally:
        c.close()
        stop_clean(svc)


def test_cache_control_calls_stedi_only_for_what_it_must(workdir, redis_server, broker, members):
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    group = ok[40:52]
    for m in group[:4]:
        st.put_entry(m, cached_ago_s=60)          # fresh
    for m in group[4:8]:
        st.put_entry(m, cached_ago_s=30 * 3600)   # stale (past 22 h)
    svc = st.start_batchrpc(workdir)
    c = Client(svc)
    pb = c.pb
    rt = pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY
    try:
        before = sim_stats(sim)["realtime_calls"]
        # CACHE_ONLY: the 8 cached (even stale) complete from the cache, 4 misses fail, no call
        r = c.submit(c.ids_request(ids_of(group), strategy=rt,
                                   cache_control=epb.CACHE_CONTROL_CACHE_ONLY))
        s = c.wait_final(r.batch_id)
        assert s.status == pb.BATCH_STATUS_PARTIALLY_COMPLETED
        assert (s.progress.completed, s.progress.failed) == (8, 4)
        assert (s.progress.cache_hits, s.progress.cache_misses) == (8, 4)
        assert {e.error_code for e in s.errors} == {"CACHE_MISS"}
        assert sorted(e.member_id for e in s.errors) == sorted(ids_of(group[8:]))
        assert sim_stats(sim)["realtime_calls"] == before
        # PREFER_CACHED: only the 4 stale and the 4 missing are checked
        r = c.submit(c.ids_request(ids_of(group), strategy=rt,
                                   cache_control=epb.CACHE_CONTROL_PREFER_CACHED))
        s = c.wait_final(r.batch_id)
        assert s.status == pb.BATCH_STATUS_COMPLETED, s
        assert (s.progress.cache_hits, s.progress.cache_misses, s.progress.completed) == (4, 8, 12)
        assert sim_stats(sim)["realtime_calls"] == before + 8
        # BYPASS_CACHE: all 12
        r = c.submit(c.ids_request(ids_of(group), strategy=rt,
                                   cache_control=epb.CACHE_CONTROL_BYPASS_CACHE))
        s = c.wait_final(r.batch_id)
        assert s.status == pb.BATCH_STATUS_COMPLETED and s.progress.cache_hits == 0
        assert sim_stats(sim)["realtime_calls"] == before + 20
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def test_payer_rejections_fail_members_partially(workdir, redis_server, broker, members):
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir)
    c = Client(svc)
    pb = c.pb
    try:
        ids = ids_of(ok[60:63] + bad[:2])
        r = c.submit(c.ids_request(ids, strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY))
        s = c.wait_final(r.batch_id)
        assert s.status == pb.BATCH_STATUS_PARTIALLY_COMPLETED
        assert (s.progress.completed, s.progress.failed) == (3, 2)
        assert sorted(e.member_id for e in s.errors) == sorted(ids_of(bad[:2]))
        assert all(e.error_code in ("75", "44") for e in s.errors), s.errors
        # every member failed: FAILED
        r = c.submit(c.ids_request(ids_of(bad[2:4]),
                                   strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY))
        s = c.wait_final(r.batch_id)
        assert s.status == pb.BATCH_STATUS_FAILED and s.progress.failed == 2
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def test_batch_only_registers_stedi_batches_and_tracks_until_written(workdir, redis_server,
                                                                     broker, members):
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    wh = st.start_receiver(workdir)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_BATCH_CHUNK="10")
    c = Client(svc)
    pb = c.pb
    try:
        before = sim_stats(sim)["realtime_calls"]
        group = ok[100:125]
        r = c.submit(c.ids_request(ids_of(group),
                                   strategy=pb.BatchExecutionOptions.STRATEGY_BATCH_ONLY))
        assert r.resolved_options.strategy == pb.BatchExecutionOptions.STRATEGY_BATCH_ONLY
        s = c.wait_final(r.batch_id, timeout=90)
        assert s.status == pb.BATCH_STATUS_COMPLETED, s
        assert (s.progress.completed, s.progress.failed) == (25, 0)
        job = st.job(r.batch_id)
        sb = job["sb_ids"].split(",")
        assert job["sb_calls"] == "3" and len(sb) == 3      # 10 + 10 + 5
        assert job.get("rt_calls", "0") == "0"
        assert sim_stats(sim)["realtime_calls"] == before  # no real-time slot used
        for b in sb:
            h = st.rds.hgetall(f"{st.registry_prefix}:{b}")
            assert h[b"source"] == b"batch-rpc"
        assert sorted(sum((st.batch_members(b) for b in sb), [])) == sorted(ids_of(group))
        for m in group:
            assert st.cache_entry(m)["source"] == "stedi_batch"
    finally:
        c.close()
        stop_clean(svc)
        stop_clean(wh)
        sim.stop()


def test_optimal_strategy_follows_the_decision_matrix(workdir, redis_server, broker, members):
    path, ok, bad = members
    st = BatchStack(redis_server, broker, path, None)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_RATE_LIMIT="0")
    c = Client(svc)
    pb = c.pb
    O = pb.BatchExecutionOptions
    low = pb.SchedulingWindow.Value("SCHEDULING_WINDOW_LOW_UTILIZATION")
    try:
        def strategy(n, priority):
            # the low-utilization window keeps the job pending (unless it is 1-5 AM UTC now)
            req = c.ids_request(ids_of(ok[:n]), priority=priority, scheduling_window=low)
            return c.submit(req).resolved_options.strategy

        assert strategy(50, O.PRIORITY_NORMAL) == O.STRATEGY_REALTIME_ONLY
        assert strategy(50, O.PRIORITY_LOW) == O.STRATEGY_BATCH_ONLY
        assert strategy(150, O.PRIORITY_NORMAL) == O.STRATEGY_BATCH_ONLY
        hour = time.gmtime().tm_hour
        assert strategy(150, O.PRIORITY_HIGH) == (
            O.STRATEGY_BATCH_ONLY if 1 <= hour < 5 else O.STRATEGY_REALTIME_ONLY)
        assert strategy(1001, O.PRIORITY_HIGH) == O.STRATEGY_BATCH_ONLY
        # an explicit strategy is kept
        req = c.ids_request(ids_of(ok[:2000]), strategy=O.STRATEGY_REALTIME_ONLY,
                            scheduling_window=low)
        assert c.submit(req).resolved_options.strategy == O.STRATEGY_REALTIME_ONLY
    finally:
        c.close()
        stop_clean(svc)


def test_watch_resumes_after_the_last_update_seen(workdir, redis_server, broker, members):
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_CHUNK="4")
    c = Client(svc)
    pb = c.pb
    try:
        r = c.submit(c.ids_request(ids_of(ok[200:220]),
                                   strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                   max_concurrent_requests=1))
        stream = c.watch(pb.WatchBatchRequest(batch_id=r.batch_id))
        first = []
        for u in stream:
            first.append(u)
            if len(first) == 3:
                break
        stream.cancel()
        assert first[0].event_type == pb.EVENT_TYPE_STARTED and first[0].batch_id == r.batch_id
        assert first[0].started.total_members == 20
        last = first[-1].timestamp
        resumed = list(c.watch(pb.WatchBatchRequest(batch_id=r.batch_id),
                               metadata=(("rte-resume-after",
                                          f"{last.seconds}.{last.nanos:09d}"),)))
        assert resumed[-1].event_type == pb.EVENT_TYPE_COMPLETED
        assert resumed[-1].completed.status == pb.BATCH_STATUS_COMPLETED
        # the whole log, read again after the end: the resumed stream is exactly its tail
        full = list(c.watch(pb.WatchBatchRequest(batch_id=r.batch_id)))
        key = [(u.timestamp.seconds, u.timestamp.nanos, u.event_type) for u in full]
        assert key[:3] == [(u.timestamp.seconds, u.timestamp.nanos, u.event_type) for u in first]
        assert key[3:] == [(u.timestamp.seconds, u.timestamp.nanos, u.event_type)
                           for u in resumed]
        assert sum(u.event_type == pb.EVENT_TYPE_MEMBER_COMPLETED for u in full) == 20
        assert sum(u.event_type == pb.EVENT_TYPE_PROGRESS for u in full) == 5  # 20 / chunk 4
        # a filter: only the final update
        only = list(c.watch(pb.WatchBatchRequest(batch_id=r.batch_id,
                                                 event_types=[pb.EVENT_TYPE_COMPLETED])))
        assert [u.event_type for u in only] == [pb.EVENT_TYPE_COMPLETED]
        # SubmitBatchStreaming: the same updates of a new batch, from its start to its end
        ups = list(c.submit_streaming(c.ids_request(
            ids_of(ok[220:224]), strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY)))
        assert ups[0].event_type == pb.EVENT_TYPE_STARTED and ups[0].batch_id.startswith("br-")
        assert ups[-1].event_type == pb.EVENT_TYPE_COMPLETED
        assert ups[-1].completed.progress.completed == 4
        ts = [(u.timestamp.seconds, u.timestamp.nanos) for u in ups]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def test_batch_job_events_on_kafka(workdir, redis_server, broker, members):
    import batch_events_pb2
    from kafka_util import consume_all
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    # one batch-class slot for three workers: checks wait in the limiter's queue (rte.enqueued)
    svc = st.start_batchrpc(workdir, RTE_SLOTS_BATCH_CAP="1")
    c = Client(svc)
    pb = c.pb
    try:
        req = c.ids_request(ids_of(ok[300:306]),
                            strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                            max_concurrent_requests=3, client_job_id="kafka-events")
        r = c.submit(req)
        c.wait_final(r.batch_id)
        # a second job only wants COMPLETED, on a topic of its own choosing
        req2 = c.ids_request(ids_of(ok[306:308]),
                             strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY)
        req2.options.notifications.kafka_topic = "rte.events"
        req2.options.notifications.event_types.append("COMPLETED")
        r2 = c.submit(req2)
        c.wait_final(r2.batch_id)

        def events(topic, batch_id):
            out = []
            for m in consume_all(broker.bootstrap, topic):
                if m.key != batch_id.encode():
                    continue
                e = batch_events_pb2.BatchJobEvent()
                e.ParseFromString(m.value)
                out.append(e)
            return out

        ev = wait_for(lambda: (lambda e: e if any(x.event_type == "COMPLETED" for x in e)
                               else None)(events("domain.rte.v1.batch_job_events", r.batch_id)),
                      timeout=20, what="COMPLETED on batch_job_events")
        types = [e.event_type for e in ev]
        assert types[0] == "STARTED" and types[-1] == "COMPLETED" and "PROGRESS" in types
        done = ev[-1]
        assert done.batch_id == r.batch_id and done.job_type == "RTE_BATCH"
        assert done.details.client_job_id == "kafka-events"
        assert done.details.client_service_name == "it-service"
        assert done.details.total_members == 6
        assert done.completed.successful == 6 and done.completed.stedi_realtime_calls == 6
        assert done.initiated_by_user_id == "anonymous"
        assert len({e.event_id for e in ev}) == len(ev)
        ev2 = wait_for(lambda: events("rte.events", r2.batch_id), timeout=20,
                       what="the second job's event")
        assert [e.event_type for e in ev2] == ["COMPLETED"]
        assert events("domain.rte.v1.batch_job_events", r2.batch_id) == []
        # every real-time check's lifecycle on rte.events, by member key, enqueued included
        import json
        life = [json.loads(m.value) for m in consume_all(broker.bootstrap, "rte.events")
                if m.value.startswith(b"{")]
        mine = [e for e in life if e.get("request_id") == r.batch_id]
        kinds = {e["type"] for e in mine}
        assert {"rte.submitted", "rte.enqueued", "rte.scheduled", "rte.started",
                "rte.completed"} <= kinds, kinds
        assert sum(e["type"] == "rte.completed" for e in mine) == 6
        assert all(e["source"] == "batch-rpc" and "member_id" not in e for e in mine)
        assert not any(m["member_id"] in json.dumps(mine) for m in ok[300:306])
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def test_list_batches_pages_newest_first(workdir, redis_server, broker, members):
    path, ok, bad = members
    st = BatchStack(redis_server, broker, path, None)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_RATE_LIMIT="0")
    c = Client(svc)
    pb = c.pb
    low = pb.SchedulingWindow.Value("SCHEDULING_WINDOW_BUSINESS_HOURS")
    try:
        made = []
        for i in range(5):
            req = c.ids_request(ids_of(ok[i:i + 1]), client_job_id=f"list-{i}",
                                scheduling_window=low)
            if i == 4:
                req.client_service_name = "other-service"
            made.append(c.submit(req).batch_id)
            time.sleep(0.01)
        seen, token, pages = [], "", 0
        while True:
            p = c.list(pb.ListBatchesRequest(page_size=2, page_token=token))
            pages += 1
            seen += [b.batch_id for b in p.batches]
            assert all(b.client_job_id.startswith("list-") for b in p.batches)
            token = p.next_page_token
            if not token:
                break
        assert seen == made[::-1] and pages == 3
        p = c.list(pb.ListBatchesRequest(client_service_name="other-service"))
        assert [b.batch_id for b in p.batches] == [made[4]]
        c.cancel(pb.CancelBatchRequest(batch_id=made[0], reason="not needed"))
        p = c.list(pb.ListBatchesRequest(statuses=[pb.BATCH_STATUS_CANCELLED]))
        assert [b.batch_id for b in p.batches] == [made[0]]
        assert p.batches[0].progress.total_members == 1
    finally:
        c.close()
        stop_clean(svc)


# made for this test (32 random bytes); used nowhere else
WEBHOOK_SECRET = "whsec_q6BDFtL2dXPYQMmD3jg5V0hN1cZr8wOqkxJ4y7sZ0aE="


def test_signed_webhooks_verified_by_the_official_library(workdir, redis_server, broker,
                                                          members):
    import json

    from webhook_util import official_verify, require_official_library
    require_official_library()
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_WEBHOOK_SECRET=WEBHOOK_SECRET,
                            RTE_BATCHRPC_WEBHOOK_BACKOFF="200ms")
    c = Client(svc)
    pb = c.pb
    flaky, plain = Hooks(flaky=True), Hooks(flaky=False)
    NP = pb.NotificationPreferences
    try:
        # at least once, STARTED and COMPLETED only, through a receiver failing each first try
        req = c.ids_request(ids_of(ok[400:405]),
                            strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                            client_job_id="hooked")
        req.options.notifications.callback_url = flaky.url
        req.options.notifications.event_types.extend(["STARTED", "COMPLETED"])
        req.options.notifications.delivery_mode = NP.DELIVERY_AT_LEAST_ONCE
        r = c.submit(req)
        assert r.resolved_options.notifications.callback_url == flaky.url
        c.wait_final(r.batch_id)
        wait_for(lambda: len(flaky.got) >= 4, timeout=30, what="two callbacks, each retried")
        time.sleep(0.5)
        bodies = [json.loads(b) for _, b in flaky.got]
        # each message twice (503, then delivered), under one webhook-id; no other message
        by_id = {}
        for (h, _), b in zip(flaky.got, bodies):
            by_id.setdefault(h["webhook-id"], []).append(b["type"])
        assert sorted(by_id.values()) == [["batch.completed"] * 2, ["batch.started"] * 2]
        assert bodies[0]["type"] == "batch.started"
        done = [b for b in bodies if b["type"] == "batch.completed"][-1]["data"]
        assert done["batch_id"] == r.batch_id and done["status"] == "COMPLETED"
        assert (done["total_members"], done["completed"], done["failed"]) == (5, 5, 0)
        assert done["client_job_id"] == "hooked"
        assert not any(m["member_id"] in json.dumps(bodies) for m in ok[400:405])
        for h, b in flaky.got:
            good, why = official_verify(WEBHOOK_SECRET, b, h)
            assert good, why
        # a tampered body fails the official check (the check is real)
        # (retries are not ordered: under load the started message's retry can come last)
        h, b = next((h, b) for h, b in flaky.got if json.loads(b)["type"] == "batch.completed")
        tampered = b.replace(b'"completed":5', b'"completed":4')
        assert tampered != b
        good, _ = official_verify(WEBHOOK_SECRET, tampered, h)
        assert not good
        # best effort, the first definition's callback_url, every event: one attempt each
        req = c.ids_request(ids_of(ok[405:407]),
                            strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                            callback_url=plain.url)
        r2 = c.submit(req)
        assert r2.resolved_options.notifications.callback_url == plain.url
        c.wait_final(r2.batch_id)
        wait_for(lambda: any(json.loads(b)["type"] == "batch.completed" for _, b in plain.got),
                 timeout=30, what="the completed callback")
        types = [json.loads(b)["type"] for _, b in plain.got]
        assert types[0] == "batch.started" and "batch.progress" in types
        assert len({h["webhook-id"] for h, _ in plain.got}) == len(plain.got)
    finally:
        c.close()
        flaky.close()
        plain.close()
        stop_clean(svc)
        sim.stop()


def test_callbacks_refused_without_a_signing_secret(workdir, redis_server, broker, members):
    path, ok, bad = members
    st = BatchStack(redis_server, broker, path, None)
    svc = st.start_batchrpc(workdir)
    c = Client(svc)
    try:
        req = c.ids_request(ids_of(ok[:1]), callback_url="https://example.com/cb")
        code, d = code_of(c.submit, req)
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert d.startswith("options.notifications.callback_url:")
    finally:
        c.close()
        stop_clean(svc)


def test_rtectl_batch_speaks_the_api(workdir, redis_server, broker, members):
    import json
    import os
    import subprocess

    from conftest import bin_path
    path, ok, bad = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir)
    env = dict(os.environ, RTE_BATCHRPC_ADDR=f"127.0.0.1:{svc.ports['grpc']}")

    def rtectl(*args):
        p = subprocess.run([bin_path("rtectl"), "batch", *args], env=env, capture_output=True,
                           timeout=60)
        lines = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
        return p.returncode, lines, p.stderr.decode()

    try:
        mfile = os.path.join(workdir, "rtectl-members.txt")
        with open(mfile, "w") as f:
            f.write("\n".join(m["member_id"] for m in ok[700:704]) + "\n")
        rc, out, err = rtectl("submit", "--members", mfile, "--strategy", "realtime",
                              "--concurrency", "2", "--job-id", "ops-1", ok[704]["member_id"])
        assert rc == 0, (out, err)
        bid = out[0]["batch_id"]
        assert out[0]["total_members"] == 5 and out[0]["strategy"] == "realtime"
        rc, ups, err = rtectl("watch", bid)
        assert rc == 0, err
        assert ups[0]["event"] == "STARTED" and ups[-1]["event"] == "COMPLETED"
        assert ups[-1]["status"] == "COMPLETED" and ups[-1]["completed"] == 5
        rc, out, _ = rtectl("status", bid)
        assert rc == 0 and out[0]["status"] == "COMPLETED" and out[0]["completed"] == 5
        rc, out, _ = rtectl("list", "--page-size", "10")
        assert rc == 0 and bid in [b["batch_id"] for b in out[0]["batches"]]
        rc, out, _ = rtectl("cancel", bid, "--reason", "done anyway")
        assert rc == 0 and out[0]["status"] == "COMPLETED" and out[0]["members_cancelled"] == 0
        rc, out, _ = rtectl("status", "br-nope")
        assert rc == 3 and out[0]["error"] == "NOT_FOUND"
        rc, out, _ = rtectl("submit", "--strategy", "sideways", "M1")
        assert rc == 1
        rc, out, _ = rtectl("submit", "--service", "bad name!", "M1")
        assert rc == 2 and out[0]["error"] == "INVALID_ARGUMENT"
        assert out[0]["message"].startswith("client_service_name:")
    finally:
        stop_clean(svc)
        sim.stop()


def test_member_query_selects_through_libcommon_member_query(workdir, redis_server, broker,
                                                             members):
    """A MemberQuery with families the old selector refused (demographics, an expression)
    selects exactly the members the directory file says, in one job."""
    path, _, _ = members
    with open(path) as f:
        everyone = [json.loads(line) for line in f]
    want = {m["member_id"] for m in everyone
            if m["state"] in ("CA", "TX") and m["has_rte_enabled"]}
    assert 20 < len(want) < 1000
    st = BatchStack(redis_server, broker, path, None)
    svc = st.start_batchrpc(workdir)
    c = Client(svc)
    pb = c.pb
    try:
        q = pb.SubmitBatchRequest(client_service_name="svc",
                                  cache_control=epb.CACHE_CONTROL_CACHE_ONLY)
        q.member_query.demographics_filter.states.extend(["CA", "TX"])
        q.member_query.has_rte_enabled = True
        r = c.submit(q)
        assert r.total_members == len(want)
        q = pb.SubmitBatchRequest(client_service_name="svc",
                                  cache_control=epb.CACHE_CONTROL_CACHE_ONLY)
        q.member_query.predicate_filter.expression = "STATE IN ('CA', 'TX')"
        q.member_query.has_rte_enabled = True
        r2 = c.submit(q)
        assert r2.total_members == len(want) and r2.batch_id != r.batch_id
    finally:
        c.close()
        stop_clean(svc)


def test_member_id_list_above_grpcs_4_mb_default(workdir, redis_server, broker, members):
    """grpc.max_receive_bytes (default 64 MiB): a MemberIdList of 350,000 ids (about 5.6 MB,
    above gRPC's own 4 MB default) is accepted; above the configured limit gRPC itself
    answers RESOURCE_EXHAUSTED naming both sizes, before any handler runs."""
    path = members[0]
    ids = ["big-%010d" % i for i in range(350000)]
    st = BatchStack(redis_server, broker, path, None)
    # ids outside the directory take batchrpc.time_zone: one where it is about noon now, so
    # the 1-5 AM low-utilization window is certainly closed (run at 02:00 UTC, it was open
    # and the first chunk was worked before the cancel)
    ahead = (12 - time.gmtime().tm_hour + 11) % 24 - 11  # hours ahead of UTC, -11..12
    zone = "Etc/UTC" if ahead == 0 else "Etc/GMT%+d" % -ahead
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_RATE_LIMIT="0", RTE_BATCHRPC_TIME_ZONE=zone)
    c = Client(svc)
    try:
        pb = c.pb
        pb_window = pb.SchedulingWindow.Value("SCHEDULING_WINDOW_LOW_UTILIZATION")
        # CACHE_ONLY, waiting for the night: the job is stored, never worked (cancelled below)
        req = c.ids_request(ids, cache_control=epb.CACHE_CONTROL_CACHE_ONLY,
                            scheduling_window=pb_window, priority=1)
        size = req.ByteSize()
        assert size > 4 * 1024 * 1024, size
        r = c.submit(req, timeout=120)
        assert r.total_members == len(ids)
        cancel = c.cancel(pb.CancelBatchRequest(batch_id=r.batch_id, reason="size test"))
        assert cancel.members_cancelled == len(ids)
    finally:
        c.close()
        stop_clean(svc)
    # a 1 MiB limit: the same request is refused by gRPC
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_RATE_LIMIT="0",
                            RTE_GRPC_MAX_RECEIVE_BYTES="1048576")
    c = Client(svc)
    try:
        code, details = code_of(c.submit, req, timeout=120)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
        assert f"larger than max ({size} vs. 1048576)" in details, details
        # a request under the limit still goes through
        small = c.ids_request(ids[:1000], cache_control=epb.CACHE_CONTROL_CACHE_ONLY,
                              scheduling_window=pb_window, priority=1)
        r = c.submit(small, timeout=60)
        assert r.total_members == 1000
        c.cancel(pb.CancelBatchRequest(batch_id=r.batch_id, reason="size test"))
    finally:
        c.close()
        stop_clean(svc)
