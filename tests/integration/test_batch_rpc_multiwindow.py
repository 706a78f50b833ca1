"""batch-rpc's multi-window distribution with real processes (Redis, the Kafka dev broker,
stedi-sim): a PRIORITY_LOW job of more than 50,000 members on the batch API, window left
to the service, sends its 10,000-member Stedi batches to the low-utilization, morning and
evening windows of its members' zone in turn, on a scaled clock (source: "Multi-Window
Distribution")."""
import json
import os

import pytest

from batchrpc_util import BatchStack, Client
from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import start_broker

N = 50001  # the smallest job above the threshold: 5 Stedi batches of 10,000 and one of 1
SCALE = 6000  # simulated seconds per real second: the 40 h of the job in under 25 s
HOUR = 3600 * 1000


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("batchrpc-multi-kafka"))
    yield b
    b.stop()


def directory(workdir):
    """N members, all in New York (the directory's time_zone column)."""
    path = os.path.join(workdir, f"multiwindow-{N}.jsonl")
    with open(path, "w") as f:
        for i in range(N):
            f.write(json.dumps({"member_id": "MW%06d" % i, "first_name": "Multi",
                                "last_name": "Window", "date_of_birth": "1980-01-01",
                                "trading_partner_id": "87726",
                                "time_zone": "America/New_York"}) + "\n")
    return path, ["MW%06d" % i for i in range(N)]


def utc_ms(s):
    import calendar
    import time
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def test_above_50000_members_chunks_rotate_over_three_windows(workdir, redis_server, broker):
    path, ids = directory(workdir)
    sim = start_stedi_sim(workdir)
    st = BatchStack(redis_server, broker, path, sim)
    # Tuesday 2026-12-08 03:00 UTC = Monday 22:00 EST, after the evening window (the clock
    # runs from start-up: loading and submitting take some of the 3 h before 01:00 EST);
    # batchrpc.time_zone stays UTC: the windows are
    # the members' own (New York). No webhook-receiver: the members stay waiting on their
    # Stedi batches, which is all this test looks at. check_interval 1h keeps the waiting
    # members' look-ups (50,000 at a time) rare.
    svc = st.start_batchrpc(workdir, RTE_CLOCK_SCALE=str(SCALE),
                            RTE_CLOCK_START="2026-12-08T03:00:00Z", RTE_BATCHRPC_TICK="60s",
                            RTE_BATCHRPC_CHECK_INTERVAL="1h", RTE_BATCHRPC_RATE_LIMIT="0",
                            RTE_BATCHRPC_LEASE="10s", RTE_BATCHRPC_SLICE="2s")
    c = Client(svc)
    pb = c.pb
    try:
        req = c.ids_request(ids, strategy=pb.BatchExecutionOptions.STRATEGY_BATCH_ONLY,
                            priority=pb.BatchExecutionOptions.PRIORITY_LOW)
        r = c.submit(req, timeout=60)
        job = st.job(r.batch_id)
        assert job["multi"] == "1" and job["chunks"] == "6"
        # one group, New York, starting at its next low-utilization window, 01:00 EST (or at
        # the submit if a slow start-up brought it inside that window)
        low = utc_ms("2026-12-08T06:00:00Z")
        sub = int(job["submitted_ms"])
        assert sub < low + 4 * HOUR, "start-up took the whole first window: lower SCALE"
        assert job["groups"] == f"America/New_York {max(low, sub)} 0 {N}"
        # the default timeout (8 h) is stretched over the days the windows take
        assert r.resolved_options.timeout.seconds == 8 * 3600 + 2 * 86400
        wait_for(lambda: int(st.job(r.batch_id).get("sb_calls", 0)) >= 6, timeout=60,
                 interval=0.1, what="six Stedi batches")
        job = st.job(r.batch_id)
        assert job["status"] == str(pb.BATCH_STATUS_RUNNING), job
        sb = job["sb_ids"].split(",")
        assert len(sb) == 6, sb
        got = []
        for bid in sb:
            h = {k.decode(): v.decode()
                 for k, v in st.rds.hgetall(f"{st.registry_prefix}:{bid}").items()}
            assert h["source"] == "batch-rpc"
            got.append((int(h["submitted_ms"]), int(h["items"])))
        # chunk k in the (k mod 3)-th of low-utilization (01-05 EST = 06-10 UTC), morning
        # (06-10 EST = 11-15 UTC) and evening (17-22 EST = 22-03 UTC) windows, in turn
        want = [("2026-12-08T06:00:00Z", 4), ("2026-12-08T11:00:00Z", 4),
                ("2026-12-08T22:00:00Z", 5), ("2026-12-09T06:00:00Z", 4),
                ("2026-12-09T11:00:00Z", 4), ("2026-12-09T22:00:00Z", 5)]
        for k, ((at, n), (opens, hours)) in enumerate(zip(got, want)):
            assert utc_ms(opens) <= at < utc_ms(opens) + hours * HOUR, (k, at, got)
            assert n == (10000 if k < 5 else 1), (k, got)
        cancel = c.cancel(pb.CancelBatchRequest(batch_id=r.batch_id, reason="test over"))
        assert cancel.members_cancelled == N
    finally:
        c.close()
        try:
            stop_clean(svc)
        finally:
            sim.stop()  # even when batch-rpc did not exit cleanly
