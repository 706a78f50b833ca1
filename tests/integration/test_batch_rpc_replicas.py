"""batch-rpc with several replicas on one Redis: a replica killed with -9 in the middle of
a job leaves it to another, which completes it with no member lost and the duplicates
bounded by one chunk and counted; CancelBatch on one replica stops the work another is
doing; scheduling windows in the configured time zone on a set clock."""
import os
import signal
import time

import pytest
import requests

from batchrpc_util import BatchStack, Client, answered
from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import start_broker
from warmer_util import eligible, gen_members, metric


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("batchrpc-rep-kafka"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def members(workdir):
    path, ms = gen_members(workdir, 2000, 21)
    return path, answered(eligible(ms))


def slow_sim(workdir):
    # scale 10: a 4 s median answer takes 400 ms, capped at 800 ms
    return start_stedi_sim(workdir, RTE_CLOCK_SCALE="10", latency_max="8s")


def sim_calls(sim):
    return requests.get(sim.url("http", "/_sim/stats"), timeout=10).json()["realtime_calls"]


def holder(st, batch_id):
    v = st.rds.get(f"{st.batch_prefix}:j:{batch_id}:lease")
    return v.decode() if v else None


def test_kill9_mid_job_another_replica_completes_it(workdir, redis_server, broker, members):
    path, ok = members
    sim = slow_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    extra = {"RTE_BATCHRPC_CHUNK": "6", "RTE_BATCHRPC_LEASE": "3s"}
    a = st.start_batchrpc(workdir, **extra)
    b = st.start_batchrpc(workdir, **extra)
    ca, cb = Client(a), Client(b)
    pb = ca.pb
    group = ok[:30]
    try:
        r = ca.submit(ca.ids_request([m["member_id"] for m in group],
                                     strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                     max_concurrent_requests=2))
        # wait until a replica is in the middle of the job, then kill that one
        wait_for(lambda: int(st.job(r.batch_id).get("completed", 0)) >= 6
                 and holder(st, r.batch_id), timeout=60, interval=0.02, what="a chunk done")
        owner = holder(st, r.batch_id)
        victim, survivor, client = ((a, b, cb) if f":{a.proc.pid}:" in owner else (b, a, ca))
        assert f":{victim.proc.pid}:" in owner
        doing = st.rds.llen(f"{st.batch_prefix}:j:{r.batch_id}:doing")
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        s = client.wait_final(r.batch_id, timeout=120)
        assert s.status == pb.BATCH_STATUS_COMPLETED, s
        assert (s.progress.completed, s.progress.failed, s.progress.pending) == (30, 0, 0)
        for m in group:
            assert st.cache_entry(m) is not None, m["member_id"]
        job = st.job(r.batch_id)
        dups = int(job.get("dups", 0))
        # the chunk in flight when the replica died is redone whole: at most one chunk
        assert dups <= 6 and (doing == 0 or dups > 0), (doing, dups)
        assert metric(survivor, "rte_batchrpc_duplicate_checks_total") == dups
        assert int(job["rt_calls"]) <= 30 + dups
    finally:
        ca.close()
        cb.close()
        for s in (a, b):
            s.kill()
        sim.stop()


def test_cancel_on_one_replica_stops_work_on_every_replica(workdir, redis_server, broker,
                                                           members):
    path, ok = members
    sim = slow_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    a = st.start_batchrpc(workdir, RTE_BATCHRPC_CHUNK="5")
    b = st.start_batchrpc(workdir, RTE_BATCHRPC_CHUNK="5")
    ca, cb = Client(a), Client(b)
    pb = ca.pb
    try:
        r = ca.submit(ca.ids_request([m["member_id"] for m in ok[100:160]],
                                     strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                     max_concurrent_requests=2))
        wait_for(lambda: int(st.job(r.batch_id).get("completed", 0)) >= 4, timeout=60,
                 what="the job under way")
        owner = holder(st, r.batch_id) or ""
        # cancel through the replica that is NOT working it
        other = cb if f":{a.proc.pid}:" in owner else ca
        c = other.cancel(pb.CancelBatchRequest(batch_id=r.batch_id, reason="wrong population"))
        assert c.status == pb.BATCH_STATUS_CANCELLED and c.members_cancelled > 0
        s = other.status(pb.GetBatchStatusRequest(batch_id=r.batch_id))
        assert s.status == pb.BATCH_STATUS_CANCELLED
        time.sleep(1.0)  # the checks already in flight (at most 2) finish
        calls = sim_calls(sim)
        time.sleep(2.0)
        assert sim_calls(sim) == calls, "Stedi still called after the cancel"
        s = other.status(pb.GetBatchStatusRequest(batch_id=r.batch_id))
        assert s.status == pb.BATCH_STATUS_CANCELLED
        assert s.progress.completed + s.progress.failed + c.members_cancelled <= 60
        assert s.progress.pending == 0
        assert st.rds.zscore(f"{st.batch_prefix}:due", r.batch_id) is None
        # cancelling again (either replica) is not an error and changes nothing
        again = ca.cancel(pb.CancelBatchRequest(batch_id=r.batch_id))
        assert again.status == pb.BATCH_STATUS_CANCELLED and again.members_cancelled == 0
        ups = list(ca.watch(pb.WatchBatchRequest(batch_id=r.batch_id)))
        assert ups[-1].event_type == pb.EVENT_TYPE_FAILED
        assert ups[-1].failed.error_code == "CANCELLED"
        assert ups[-1].failed.error_message == "wrong population"
    finally:
        ca.close()
        cb.close()
        stop_clean(a)
        stop_clean(b)
        sim.stop()


def utc(s):
    return int(time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)


def test_scheduling_windows_in_the_configured_time_zone(workdir, redis_server, broker, members):
    path, ok = members
    # a member without a zone of its own takes batchrpc.time_zone; one in New York the same
    nym = [m["member_id"] for m in ok if m.get("time_zone") == "America/New_York"][0]
    st = BatchStack(redis_server, broker, path, None)
    # Saturday 2026-12-05 10:00 UTC = 05:00 in New York (EST, UTC-5)
    svc = st.start_batchrpc(workdir, RTE_CLOCK_START="2026-12-05T10:00:00Z",
                            RTE_BATCHRPC_TIME_ZONE="America/New_York",
                            RTE_BATCHRPC_RATE_LIMIT="0")
    c = Client(svc)
    pb = c.pb
    W = pb.SchedulingWindow
    try:
        def start_of(window):
            r = c.submit(c.ids_request([nym],
                                       strategy=pb.BatchExecutionOptions.STRATEGY_BATCH_ONLY,
                                       scheduling_window=W.Value(window)))
            assert r.resolved_options.scheduling_window == W.Value(window)
            s = c.status(pb.GetBatchStatusRequest(batch_id=r.batch_id))
            return s.status, s.progress.started_at.seconds

        now = utc("2026-12-05T10:00:00Z")
        # business hours: Monday 09:00 EST
        assert start_of("SCHEDULING_WINDOW_BUSINESS_HOURS") == (
            pb.BATCH_STATUS_PENDING, utc("2026-12-07T14:00:00Z"))
        # morning (6-10): today 06:00 EST
        assert start_of("SCHEDULING_WINDOW_MORNING") == (
            pb.BATCH_STATUS_PENDING, utc("2026-12-05T11:00:00Z"))
        # evening (17-22): today 17:00 EST
        assert start_of("SCHEDULING_WINDOW_EVENING") == (
            pb.BATCH_STATUS_PENDING, utc("2026-12-05T22:00:00Z"))
        # low utilization (1-5): 05:00 is past it, tomorrow 01:00 EST
        assert start_of("SCHEDULING_WINDOW_LOW_UTILIZATION") == (
            pb.BATCH_STATUS_PENDING, utc("2026-12-06T06:00:00Z"))
        # engagement: the hour before the members' busiest hour, within a day
        st_, start = start_of("SCHEDULING_WINDOW_OPTIMAL_MEMBER_ENGAGEMENT")
        assert now <= start <= now + 24 * 3600 and start % 3600 == 0
        # ANY with no load: at once
        st_, start = start_of("SCHEDULING_WINDOW_ANY")
        assert abs(start - now) < 30
    finally:
        c.close()
        stop_clean(svc)


def test_adaptive_rate_pauses_while_interactive_traffic_holds_slots(workdir, redis_server,
                                                                     broker, members):
    path, ok = members
    sim = slow_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    # members in New York, inside their morning window (12:00 UTC = 07:00 EST), so the job
    # starts whatever the load (ANY would wait)
    ny = [m["member_id"] for m in ok if m.get("time_zone") == "America/New_York"]
    svc = st.start_batchrpc(workdir, RTE_BATCHRPC_BUSY_PAUSE="200ms",
                            RTE_CLOCK_START="2026-12-07T12:00:00Z")
    c = Client(svc)
    pb = c.pb
    holders = f"{st.slots_prefix}:holders"
    try:
        # ten interactive leases held (as the gateway's would be), far from expiring
        t = st.rds.time()
        until = t[0] * 1000 + t[1] // 1000 + 600000
        st.rds.zadd(holders, {f"0:fake-{i}": until for i in range(10)})
        before = sim_calls(sim)
        r = c.submit(c.ids_request(ny[100:106],
                                   strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                   scheduling_window=pb.SchedulingWindow.Value(
                                       "SCHEDULING_WINDOW_MORNING")))
        wait_for(lambda: st.job(r.batch_id).get("started_ms"), timeout=20, what="started")
        time.sleep(1.5)
        s = c.status(pb.GetBatchStatusRequest(batch_id=r.batch_id))
        assert s.status == pb.BATCH_STATUS_RUNNING and s.progress.completed == 0
        assert sim_calls(sim) == before
        assert "Stedi slots busy with interactive traffic; pausing" in svc.logtext()
        # the interactive traffic goes: the job resumes and completes
        st.rds.delete(holders)
        s = c.wait_final(r.batch_id, timeout=60)
        assert s.status == pb.BATCH_STATUS_COMPLETED and s.progress.completed == 6
        # six interactive leases: medium load, at most 2 real-time calls at once (asked: 5)
        st.rds.zadd(holders, {f"0:fake-{i}": until for i in range(6)})
        requests.post(sim.url("http", "/_sim/reset"), timeout=10)
        r = c.submit(c.ids_request(ny[110:122],
                                   strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                   max_concurrent_requests=5,
                                   scheduling_window=pb.SchedulingWindow.Value(
                                       "SCHEDULING_WINDOW_MORNING")))
        s = c.wait_final(r.batch_id, timeout=60)
        assert s.status == pb.BATCH_STATUS_COMPLETED and s.progress.completed == 12
        stats = requests.get(sim.url("http", "/_sim/stats"), timeout=10).json()
        assert stats["realtime_calls"] == 12 and stats["max_in_flight"] == 2, stats
        st.rds.delete(holders)
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def test_chunks_spread_evenly_across_the_window(workdir, redis_server, broker, members):
    path, ok = members
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    # members in New York; 11:00 UTC = 06:00 EST, inside their morning window (6-10): 4 chunks
    # over 4 h, 1 h apart (+ <= 15 min jitter); the clock runs 1800x (4 h in 8 s)
    svc = st.start_batchrpc(workdir, RTE_CLOCK_SCALE="1800",
                            RTE_CLOCK_START="2026-12-07T11:00:00Z", RTE_BATCHRPC_TICK="60s",
                            RTE_BATCHRPC_CHUNK="5", RTE_BATCHRPC_CHECK_INTERVAL="60s")
    c = Client(svc)
    pb = c.pb
    try:
        ny = [m["member_id"] for m in ok if m.get("time_zone") == "America/New_York"]
        req = c.ids_request(ny[300:320],
                            strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                            scheduling_window=pb.SchedulingWindow.Value(
                                "SCHEDULING_WINDOW_MORNING"))
        r = c.submit(req)
        s = c.wait_final(r.batch_id, timeout=60)
        assert s.status == pb.BATCH_STATUS_COMPLETED and s.progress.completed == 20
        ups = list(c.watch(pb.WatchBatchRequest(batch_id=r.batch_id,
                                                event_types=[pb.EVENT_TYPE_PROGRESS])))
        at = [u.timestamp.seconds for u in ups if u.HasField("progress")]
        assert len(at) == 4, at
        gaps = [b - a for a, b in zip(at, at[1:])]
        assert all(45 * 60 <= g <= 75 * 60 + 60 for g in gaps), gaps
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()


def test_windows_open_in_each_members_time_zone(workdir, redis_server, broker, members):
    """Members in New York and Los Angeles, MORNING window (06-10 local), on Monday
    2026-12-07 13:00 UTC = 08:00 EST = 05:00 PST: the New York group starts at once,
    the Los Angeles group at 06:00 PST = 14:00 UTC (the clock runs 1800x: 2 s later)."""
    path, ok = members
    ny = [m["member_id"] for m in ok if m.get("time_zone") == "America/New_York"][:4]
    la = [m["member_id"] for m in ok if m.get("time_zone") == "America/Los_Angeles"][:4]
    assert len(ny) == 4 and len(la) == 4
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    svc = st.start_batchrpc(workdir, RTE_CLOCK_SCALE="1800",
                            RTE_CLOCK_START="2026-12-07T13:00:00Z", RTE_BATCHRPC_RATE_LIMIT="0")
    c = Client(svc)
    pb = c.pb
    try:
        # submitted interleaved: the job stores them by zone, the earlier window first
        r = c.submit(c.ids_request([x for pair in zip(la, ny) for x in pair],
                                   strategy=pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY,
                                   priority=pb.BatchExecutionOptions.PRIORITY_NORMAL,
                                   scheduling_window=pb.SchedulingWindow.Value(
                                       "SCHEDULING_WINDOW_MORNING")))
        groups = st.job(r.batch_id)["groups"].split(";")
        assert [g.split()[0] for g in groups] == ["America/New_York", "America/Los_Angeles"]
        assert groups[1] == f"America/Los_Angeles {utc('2026-12-07T14:00:00Z') * 1000} 4 4"
        # at once: the submit's time (the clock runs 30 simulated minutes a real second,
        # start-up included)
        ny_start = int(groups[0].split()[1]) // 1000
        assert utc("2026-12-07T13:00:00Z") <= ny_start < utc("2026-12-07T13:45:00Z")
        s = c.wait_final(r.batch_id, timeout=60)
        assert s.status == pb.BATCH_STATUS_COMPLETED and s.progress.completed == 8
        done = {u.member_completed.account_id: u.timestamp.seconds
                for u in c.watch(pb.WatchBatchRequest(
                    batch_id=r.batch_id, event_types=[pb.EVENT_TYPE_MEMBER_COMPLETED]))
                if u.HasField("member_completed")}
        assert sorted(done) == sorted(ny + la)
        # New York's checks ran before Los Angeles's window opened, Los Angeles's after
        for m in ny:
            assert utc("2026-12-07T13:00:00Z") <= done[m] < utc("2026-12-07T14:00:00Z"), done
        for m in la:
            assert utc("2026-12-07T14:00:00Z") <= done[m] < utc("2026-12-07T14:30:00Z"), done
    finally:
        c.close()
        stop_clean(svc)
        sim.stop()
