"""batch-rpc's BatchEligibilityService from Python's grpcio against the real
processes (Redis, Kafka dev broker, stedi-sim, webhook-receiver): every RPC
and its errors, the strategies, cache_control, idempotent submit, the rate
limit, listing, cancel and stream resume."""
import time

import grpc
import pytest
import requests

from batchrpc_util import BatchStack, Client, answered, code_of, rejected
from conftest import start_stedi_sim, stop_clean, wait_for
from kafka_util import start_broker
from warmer_util import eligible, gen_members

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
