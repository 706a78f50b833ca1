"""batch-rpc with token checks on (libcommon auth, docs/auth.md): no or a bad token is
UNAUTHENTICATED, a token without rte:batch:submit may not submit or cancel
(PERMISSION_DENIED), rte:batch:read may only read, and a client sees and cancels only its
own batches (another's is NOT_FOUND; listings hold only its own); the caller's identity is
the token's client id, in the audit log and the Kafka event."""
import grpc
import pytest

from auth_util import Keys, bearer
from batchrpc_util import BatchStack, Client, code_of
from conftest import stop_clean
from kafka_util import start_broker
from warmer_util import eligible, gen_members

AUD = "batch-rpc"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("batchrpc-auth-kafka"))
    yield b
    b.stop()


def test_tokens_scopes_and_ownership(workdir, redis_server, broker):
    path, ms = gen_members(workdir, 2000, 22)
    ok = eligible(ms)
    keys = Keys(workdir)
    st = BatchStack(redis_server, broker, path, None)
    svc = st.start_batchrpc(workdir, **keys.env(AUD))
    alice = Client(svc, bearer(keys.token(AUD, "rte:batch:submit", client="alice-svc")))
    bob = Client(svc, bearer(keys.token(AUD, "rte:batch:submit rte:batch:read",
                                        client="bob-svc", alg="ES256")))
    reader = Client(svc, bearer(keys.token(AUD, "rte:batch:read", client="alice-svc")))
    nobody = Client(svc, ())
    forged = Client(svc, bearer(keys.token(AUD, "rte:batch:submit", key=keys.rogue)))
    other = Client(svc, bearer(keys.token(AUD, "rte:warm:write", client="alice-svc")))
    pb = alice.pb
    low = pb.SchedulingWindow.Value("SCHEDULING_WINDOW_LOW_UTILIZATION")
    try:
        def req(i):
            return alice.ids_request([ok[i]["member_id"]], scheduling_window=low,
                                     client_job_id=f"job-{i}")

        code, d = code_of(nobody.submit, req(0))
        assert code == grpc.StatusCode.UNAUTHENTICATED, d
        code, d = code_of(forged.submit, req(0))
        assert code == grpc.StatusCode.UNAUTHENTICATED, d
        code, d = code_of(other.submit, req(0))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "rte:batch:submit" in d
        code, d = code_of(reader.submit, req(0))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        code, d = code_of(other.list, pb.ListBatchesRequest())
        assert code == grpc.StatusCode.PERMISSION_DENIED and "rte:batch:read" in d

        a = alice.submit(req(1))
        b = bob.submit(req(1))  # the same client_job_id, another client: another batch
        assert a.batch_id != b.batch_id
        assert alice.submit(req(1)).batch_id == a.batch_id
        # a submitter follows its own batch; a reader token of the same client too
        assert alice.status(pb.GetBatchStatusRequest(batch_id=a.batch_id)).batch_id == a.batch_id
        assert reader.status(pb.GetBatchStatusRequest(batch_id=a.batch_id)).batch_id == a.batch_id
        code, d = code_of(reader.cancel, pb.CancelBatchRequest(batch_id=a.batch_id))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        # another client's batch does not exist for it
        code, _ = code_of(bob.status, pb.GetBatchStatusRequest(batch_id=a.batch_id))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = code_of(bob.cancel, pb.CancelBatchRequest(batch_id=a.batch_id))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = code_of(lambda: list(bob.watch(pb.WatchBatchRequest(batch_id=a.batch_id))))
        assert code == grpc.StatusCode.NOT_FOUND
        assert [x.batch_id for x in alice.list(pb.ListBatchesRequest()).batches] == [a.batch_id]
        assert [x.batch_id for x in bob.list(pb.ListBatchesRequest()).batches] == [b.batch_id]
        assert bob.cancel(pb.CancelBatchRequest(batch_id=b.batch_id)).status == \
            pb.BATCH_STATUS_CANCELLED
        assert st.job(a.batch_id)["caller"] == "alice-svc"
        log = svc.logtext()
        assert "op=SubmitBatch caller=alice-svc" in log and "op=CancelBatch caller=bob-svc" in log
        assert ok[1]["member_id"] not in log
    finally:
        for c in (alice, bob, reader, nobody, forged, other):
            c.close()
        stop_clean(svc)
