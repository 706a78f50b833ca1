"""Helpers shared by the batch-rpc suites (no tests here).

Starts batch-rpc against real Redis, a Kafka dev broker and stedi-sim (and
webhook-receiver to poll its Stedi batches into the cache, as in
production), and gives a grpcio client of BatchEligibilityService.

Who is calling: the suites run batch-rpc with token checks off (conftest
sets grpc.auth.required=false), so every call is the client "anonymous";
test_batch_rpc_auth.py turns them on and gives each Client its own bearer
token (Client(svc, metadata=bearer(token))).
"""
import http.server
import json
import threading
import time
import uuid

import grpc

from conftest import Service, wait_for
from warmer_util import Stack, write_config

CALLER = "anonymous"
SERVICE = "rte.v1.BatchEligibilityService"


def call_metadata():
    """The metadata every call carries (a bearer token once auth lands)."""
    return ()


class BatchStack(Stack):
    """Stack plus batch-rpc's own key prefix."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batch_prefix = f"it:{uuid.uuid4().hex[:8]}:batchrpc"

    def start_batchrpc(self, workdir, wait_ready=True, **extra):
        env = self.common_env()
        env.update({"RTE_BATCHRPC_MEMBERS": self.members_path,
                    "RTE_BATCHRPC_PREFIX": self.batch_prefix, "RTE_BATCHRPC_TICK": "100ms",
                    "RTE_BATCHRPC_CHECK_INTERVAL": "300ms", "RTE_BATCHRPC_LEASE": "5s",
                    "RTE_BATCHRPC_SLICE": "1s", "RTE_BATCHRPC_WATCH_POLL": "50ms",
                    "RTE_BATCHRPC_JITTER": "0"})
        env.update({k if k.startswith("RTE_") else "RTE_" + k.upper(): str(v)
                    for k, v in extra.items()})
        return Service("batch-rpc", env, workdir,
                       args=["--config", write_config(workdir)]).start(wait_ready=wait_ready)

    def job(self, batch_id):
        h = self.rds.hgetall(f"{self.batch_prefix}:j:{batch_id}")
        return {k.decode(): v.decode() for k, v in h.items()}


class Client:
    """grpcio client of one batch-rpc replica."""

    def __init__(self, svc, metadata=None):
        import batch_eligibility_pb2 as pb
        self.pb = pb
        base = tuple(call_metadata() if metadata is None else metadata)
        self.ch = grpc.insecure_channel(f"127.0.0.1:{svc.ports['grpc']}")
        grpc.channel_ready_future(self.ch).result(timeout=10)

        def unary(name, resp):
            f = self.ch.unary_unary(f"/{SERVICE}/{name}",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=resp.FromString)
            return lambda req, timeout=30, metadata=(): f(
                req, timeout=timeout, metadata=base + tuple(metadata))

        def stream(name):
            f = self.ch.unary_stream(f"/{SERVICE}/{name}",
                                     request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=pb.BatchStatusUpdate.FromString)
            return lambda req, timeout=60, metadata=(): f(
                req, timeout=timeout, metadata=base + tuple(metadata))

        self.submit = unary("SubmitBatch", pb.SubmitBatchResponse)
        self.status = unary("GetBatchStatus", pb.GetBatchStatusResponse)
        self.list = unary("ListBatches", pb.ListBatchesResponse)
        self.cancel = unary("CancelBatch", pb.CancelBatchResponse)
        self.watch = stream("WatchBatchStatus")
        self.submit_streaming = stream("SubmitBatchStreaming")

    def close(self):
        self.ch.close()

    def ids_request(self, ids, strategy=None, cache_control=0, client_job_id="", **opts):
        pb = self.pb
        req = pb.SubmitBatchRequest(client_service_name="it-service",
                                    client_job_id=client_job_id, cache_control=cache_control)
        req.member_ids.member_ids.extend(ids)
        if strategy is not None:
            req.options.strategy = strategy
        for k, v in opts.items():
            setattr(req.options, k, v)
        return req

    def wait_final(self, batch_id, timeout=60):
        final = (self.pb.BATCH_STATUS_COMPLETED, self.pb.BATCH_STATUS_FAILED,
                 self.pb.BATCH_STATUS_CANCELLED, self.pb.BATCH_STATUS_PARTIALLY_COMPLETED)
        return wait_for(lambda: (lambda s: s if s.status in final else None)(
            self.status(self.pb.GetBatchStatusRequest(batch_id=batch_id))),
            timeout=timeout, interval=0.1, what=f"batch {batch_id} to finish")


def code_of(fn, *a, **kw):
    """The gRPC status code and details of a call that must fail."""
    try:
        fn(*a, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise AssertionError("the call succeeded")


def now_s():
    return time.time()


def sim_class(member_id):
    """stedi-sim's answer class of a member id (docs/stedi-sim.md): trailing digits mod 20."""
    digits = ""
    for ch in reversed(member_id):
        if not ch.isdigit():
            break
        digits = ch + digits
    return int(digits[-18:]) % 20 if digits else None


def answered(members):
    """Members stedi-sim answers without a payer rejection (classes other than 5 and 15)."""
    return [m for m in members if sim_class(m["member_id"]) not in (5, 15, None)]


def rejected(members):
    """Members stedi-sim rejects for the payer (AAA 75 or 44)."""
    return [m for m in members if sim_class(m["member_id"]) in (5, 15)]


class Hooks:
    """A callback receiver: records every POST; answers 503 to the first attempt of each
    message id when flaky (so the sender must retry), else 204."""

    def __init__(self, flaky=False):
        self.got, self.flaky, seen = [], flaky, set()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hdr = {k.lower(): v for k, v in self.headers.items()}
                outer.got.append((hdr, body))
                first = hdr.get("webhook-id") not in seen
                seen.add(hdr.get("webhook-id"))
                self.send_response(503 if outer.flaky and first else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hooks/batch"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def of_type(self, t):
        """(headers, parsed body) of every POST whose body's type is t."""
        return [(h, json.loads(b)) for h, b in list(self.got) if json.loads(b)["type"] == t]

    def close(self):
        self.srv.shutdown()
