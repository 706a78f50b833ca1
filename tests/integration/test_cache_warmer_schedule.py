"""cache-warmer's ScheduleWarming from Python's grpcio: bad requests are INVALID_ARGUMENT
naming the field (name, cron expression, time zone, query fields the member directory
cannot answer, URGENT), next_run is the expression's next fire in its zone, and an
every-minute schedule on a scaled clock (RTE_CLOCK_SCALE=60, one RTE_CLOCK_ANCHOR for
both processes) fires once per minute across two replicas: each fire is run by one
replica and queues the query's members once."""
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import grpc
import pytest

from conftest import stop_clean, wait_for
from kafka_util import start_broker
from warmer_util import Stack, gen_members, metric
from test_cache_warmer_grpc import warmer_clients


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("warms-kafka"))
    yield b
    b.stop()


def refused(call, req):
    with pytest.raises(grpc.RpcError) as e:
        call(req, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    return e.value.details()


def test_schedule_warming_validates_and_answers_next_run(workdir, redis_server, broker):
    path, _ = gen_members(workdir, 2000, 3)
    st = Stack(redis_server, broker, path)
    w = st.start_warmer(workdir)
    try:
        pb, _, _, schedule = warmer_clients(w)
        import batch_eligibility_pb2 as be
        ok = dict(schedule_name="nightly", cron_expression="0 4 * * *",
                  time_zone="America/New_York", enabled=True,
                  member_query=be.MemberQuery(sponsor_ids=["SP0001"], has_rte_enabled=True))

        def req(**kw):
            return pb.ScheduleWarmingRequest(**{**ok, **kw})

        assert refused(schedule, req(schedule_name="bad name!")).startswith("schedule_name:")
        assert refused(schedule, req(schedule_name="x" * 65)).startswith("schedule_name:")
        d = refused(schedule, req(cron_expression="61 * * * *"))
        assert d.startswith("cron_expression: minute") and "61" in d, d
        assert refused(schedule, req(cron_expression="0 4 * *")).startswith("cron_expression:")
        assert refused(schedule, req(time_zone="Mars/Olympus_Mons")).startswith("time_zone:")
        assert refused(schedule, req(time_zone="../etc/passwd")).startswith("time_zone:")
        # the query is compiled by libcommon member_query: what it cannot answer is named
        d = refused(schedule, req(member_query=be.MemberQuery(min_app_usage_probability=1.5)))
        assert d.startswith("member_query.min_app_usage_probability:"), d
        q = be.MemberQuery(sponsor_ids=["SP0001"])
        q.predicate_filter.expression = "AGE >= 18 AND COLOR = 'red'"
        d = refused(schedule, req(member_query=q))
        assert d.startswith("member_query.predicate_filter.expression:") and "COLOR" in d, d
        d = refused(schedule, req(member_query=be.MemberQuery(account_statuses=[0])))
        assert d.startswith("member_query.account_statuses[0]:"), d
        assert refused(schedule, req(member_query=be.MemberQuery(limit=-1))).startswith(
            "member_query.limit:")
        assert refused(schedule, req(priority=pb.WarmCacheRequest.PRIORITY_URGENT)).startswith(
            "priority:")
        assert st.rds.scard(f"{st.warm_prefix}:sched:names") == 0  # nothing refused was kept

        r = schedule(req(), timeout=10)
        assert r.schedule_id == "ws-nightly"
        ny = ZoneInfo("America/New_York")
        local = datetime.now(ny)
        want = local.replace(hour=4, minute=0, second=0, microsecond=0)
        if want <= local:
            want = (want + timedelta(days=1)).replace(hour=4)
        assert r.next_run.seconds == int(want.timestamp()), (r.next_run, want)
        assert st.rds.sismember(f"{st.warm_prefix}:sched:names", "nightly")
        # disabled: stored, no next run
        r = schedule(req(enabled=False), timeout=10)
        assert r.schedule_id == "ws-nightly" and not r.HasField("next_run")
    finally:
        stop_clean(w)


def test_schedule_fires_once_per_minute_across_two_replicas(workdir, redis_server, broker):
    path, members = gen_members(workdir, 3000, 5)
    sponsor = members[0]["sponsor_id"]
    want = {m["member_id"] for m in members
            if m["sponsor_id"] == sponsor and m["has_rte_enabled"]
            and m["account_status"] == "ACTIVE"}
    matched = sum(1 for m in members if m["sponsor_id"] == sponsor and m["has_rte_enabled"]
                  and m["account_status"] == "ACTIVE" and not m["is_mock"])
    assert len(want) >= 5
    st = Stack(redis_server, broker, path)
    # one simulated clock for both processes, 20 s past the minute at the anchor
    anchor = int(time.time())
    clock = {"RTE_CLOCK_SCALE": "60", "RTE_CLOCK_START": "2026-01-05T06:00:20Z",
             "RTE_CLOCK_ANCHOR": str(anchor)}
    # no Stedi here: SIGTERM leaves the queue in Redis instead of submitting it
    a = st.start_warmer(workdir, RTE_WARMER_FLUSH_ON_SHUTDOWN="false", **clock)
    b = st.start_warmer(workdir, RTE_WARMER_FLUSH_ON_SHUTDOWN="false", **clock)
    try:
        pb, _, _, schedule = warmer_clients(a)
        import batch_eligibility_pb2 as be
        req = pb.ScheduleWarmingRequest(
            schedule_name="every-minute", cron_expression="* * * * *", enabled=True,
            priority=pb.WarmCacheRequest.PRIORITY_PRELOAD,
            member_query=be.MemberQuery(sponsor_ids=[sponsor], has_rte_enabled=True,
                                        account_statuses=[be.ACTIVE],
                                        exclude_mock_accounts=True))
        r = schedule(req, timeout=10)
        # the next whole simulated minute: both replicas' clocks read the same time
        sim_now = datetime(2026, 1, 5, 6, 0, 20, tzinfo=timezone.utc) + \
            timedelta(seconds=(time.time() - anchor) * 60)
        assert abs(r.next_run.seconds - (int(sim_now.timestamp()) // 60 + 1) * 60) <= 60
        fires_key = f"{st.warm_prefix}:sched:every-minute:fires"
        wait_for(lambda: st.rds.llen(fires_key) >= 4, timeout=30, what="4 fires")
        req.enabled = False
        schedule(req, timeout=10)
        time.sleep(1.0)  # a fire in progress finishes
        fires = [f.decode().split() for f in st.rds.lrange(fires_key, 0, -1)]
        at = [int(f[0]) for f in fires]
        # each minute fired once, in order, by one replica, over the query's members
        assert len(at) == len(set(at)) and at == sorted(at), fires
        assert all(y - x == 60000 for x, y in zip(at, at[1:])), at
        assert all(t % 60000 == 0 for t in at), at
        assert all(int(f[2]) == matched for f in fires), (fires, matched)
        ran = sum(metric(s, "rte_cache_warming_schedule_fires_total", result=res)
                  for s in (a, b) for res in ("fired", "resumed"))
        assert ran == len(at), (ran, fires)
        # the first fire queued each member once; later fires found them queued in the window
        queued = st.open_members()
        assert {m for m, s in queued.items() if s == "schedule"} == \
            {m for m in want if not next(x for x in members if x["member_id"] == m)["is_mock"]}
        sent = sum(metric(s, "rte_cache_warming_requests_total", source="schedule",
                          priority="preload") for s in (a, b))
        assert sent == matched
        dups = sum(metric(s, "rte_cache_warming_skipped_total", reason="duplicate_member")
                   for s in (a, b))
        assert dups == matched * (len(at) - 1)
    finally:
        stop_clean(a)
        stop_clean(b)


def test_fire_of_a_dead_runner_is_resumed_once(workdir, redis_server, broker):
    """A fire left running by a replica that died (its lease ran out) is resumed by another:
    recorded once, by the resuming replica, counted as resumed, its members queued."""
    path, members = gen_members(workdir, 2000, 3)
    sponsor = members[0]["sponsor_id"]
    want = {m["member_id"] for m in members
            if m["sponsor_id"] == sponsor and m["has_rte_enabled"]
            and m["account_status"] == "ACTIVE"}
    st = Stack(redis_server, broker, path)
    w = st.start_warmer(workdir, RTE_WARMER_FLUSH_ON_SHUTDOWN="false")
    try:
        pb, _, _, schedule = warmer_clients(w)
        import batch_eligibility_pb2 as be
        schedule(pb.ScheduleWarmingRequest(
            schedule_name="nightly", cron_expression="0 4 * * *", enabled=True,
            member_query=be.MemberQuery(sponsor_ids=[sponsor], has_rte_enabled=True,
                                        account_statuses=[be.ACTIVE])), timeout=10)
        key = f"{st.warm_prefix}:sched:nightly"
        fire = (int(time.time()) // 86400) * 86400000 + 4 * 3600000  # today 04:00 UTC
        # the state a runner that died mid-fire leaves: the fire taken, its lease run out
        st.rds.hset(key, mapping={"horizon": fire, "fire": fire, "owner": "dead-replica",
                                  "lease_until": 1})
        fires_key = key + ":fires"
        wait_for(lambda: st.rds.llen(fires_key) >= 1, timeout=20, what="the fire resumed")
        time.sleep(0.5)  # later ticks must not run it again
        fires = [f.decode().split() for f in st.rds.lrange(fires_key, 0, -1)]
        assert len(fires) == 1 and int(fires[0][0]) == fire, fires
        assert fires[0][1] != "dead-replica" and int(fires[0][2]) == len(want)
        assert metric(w, "rte_cache_warming_schedule_fires_total", result="resumed") == 1
        assert metric(w, "rte_cache_warming_schedule_fires_total", result="fired") == 0
        assert st.rds.hget(key, "fire") == b""
        assert {m for m, s in st.open_members().items() if s == "schedule"} == want
    finally:
        stop_clean(w)
