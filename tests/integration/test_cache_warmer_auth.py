"""cache-warmer's CacheWarmingService behind M2M tokens (libcommon auth, docs/auth.md),
from Python's grpcio with tokens minted by PyJWT: no/bad token -> UNAUTHENTICATED saying
why, a token without the method's scope -> PERMISSION_DENIED naming it, the right scope
-> OK; health needs no token and answers for the service's own name; TLS with a test CA;
and the start-up rules of grpc.auth.required."""
import os
import subprocess

import grpc
import pytest

from auth_util import ISSUER, Keys, bearer, make_tls
from conftest import bin_path
from kafka_util import start_broker
from warmer_util import Stack, gen_members, metric

AUD = "rte-cache-warmer"
SVC = "rte.v1.CacheWarmingService"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("warm-auth-kafka"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def keys(workdir):
    return Keys(workdir)


def channel_clients(ch):
    import cache_warming_pb2 as pb
    import health_pb2 as hpb

    def unary(path, resp):
        return ch.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=resp.FromString)
    return (pb, unary(f"/{SVC}/WarmCache", pb.WarmCacheResponse),
            unary(f"/{SVC}/GetWarmingStats", pb.GetWarmingStatsResponse),
            hpb, unary("/grpc.health.v1.Health/Check", hpb.HealthCheckResponse))


def code_of(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value.code(), e.value.details()


def test_tokens_scopes_and_health(workdir, redis_server, broker, keys):
    path, _ = gen_members(workdir, 200, 5)
    st = Stack(redis_server, broker, path)
    w = st.start_warmer(workdir, **keys.env(AUD))
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{w.ports['grpc']}")
        pb, warm, stats, hpb, check = channel_clients(ch)
        req = pb.GetWarmingStatsRequest()

        # no token, not a bearer credential, garbage, and each refused token says why
        assert code_of(stats, req, timeout=10) == (grpc.StatusCode.UNAUTHENTICATED,
                                                   "no bearer token: send metadata "
                                                   "'authorization: Bearer <token>'")
        code, msg = code_of(stats, req, timeout=10, metadata=[("authorization", "Basic eDp5")])
        assert code == grpc.StatusCode.UNAUTHENTICATED and "not a bearer token" in msg
        code, msg = code_of(stats, req, timeout=10, metadata=bearer("abc.def"))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "compact JWS" in msg
        refused = [
            (keys.token(AUD, "rte:warm:read", exp_in=-600), "token expired at"),
            (keys.token(AUD, "rte:warm:read", key=keys.rogue), "signature does not verify"),
            (keys.token(AUD, "rte:warm:read", iss="https://other.test/"), "issuer"),
            (keys.token(AUD, "rte:warm:read", aud="rte-batch-rpc"), "audience does not include"),
            (keys.token(AUD, "rte:warm:read", kid="rsa-9"), "no RS256 key with kid 'rsa-9'"),
            (keys.token(AUD, "rte:warm:read", nbf=2000000000), "not valid before"),
        ]
        for tok, why in refused:
            code, msg = code_of(stats, req, timeout=10, metadata=bearer(tok))
            assert code == grpc.StatusCode.UNAUTHENTICATED, (why, msg)
            assert why in msg, msg

        # valid tokens: the read scope may read stats but not warm
        read = keys.token(AUD, "rte:warm:read", client="stats-reader")
        r = stats(req, timeout=10, metadata=bearer(read))
        assert r.HasField("stats") and r.stats.total_members_warmed == 0
        code, msg = code_of(warm, pb.WarmCacheRequest(member_ids=["M1"]), timeout=10,
                            metadata=bearer(read))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert msg == ("token of client 'stats-reader' lacks scope 'rte:warm:write' "
                       f"(/{SVC}/WarmCache)")
        # ES256 with the write scope (scp array form) reaches the handler: its own
        # validation answers, not the token check
        write = keys.token(AUD, None, alg="ES256", scp=["rte:warm:write"])
        code, msg = code_of(warm, pb.WarmCacheRequest(), timeout=10, metadata=bearer(write))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "member_ids" in msg
        code, _ = code_of(stats, req, timeout=10, metadata=bearer(write))
        assert code == grpc.StatusCode.PERMISSION_DENIED

        # health: no token needed; the service's own name is known, others are not
        serving = hpb.HealthCheckResponse.SERVING
        assert check(hpb.HealthCheckRequest(), timeout=10).status == serving
        assert check(hpb.HealthCheckRequest(service=SVC), timeout=10).status == serving
        code, _ = code_of(check, hpb.HealthCheckRequest(service="rte.v1.Nope"), timeout=10)
        assert code == grpc.StatusCode.NOT_FOUND

        m = f"/{SVC}/GetWarmingStats"
        assert metric(w, "rte_grpc_auth_failures_total", method=m, reason="missing") == 2
        assert metric(w, "rte_grpc_auth_failures_total", method=m, reason="malformed") == 1
        assert metric(w, "rte_grpc_auth_failures_total", method=m, reason="expired") == 1
        assert metric(w, "rte_grpc_auth_failures_total", method=m, reason="signature") == 1
        assert metric(w, "rte_grpc_auth_failures_total", method=m, reason="unknown_key") == 1
        assert metric(w, "rte_grpc_auth_failures_total", method=m, reason="scope") == 1
        assert metric(w, "rte_grpc_auth_failures_total", method=f"/{SVC}/WarmCache",
                      reason="scope") == 1
        assert metric(w, "rte_grpc_requests_total", method=m, code="UNAUTHENTICATED") == 9
        assert "gRPC token checks on: 2 keys loaded" in w.logtext()
        ch.close()
    finally:
        w.stop()


def test_tls_with_test_ca(workdir, redis_server, broker, keys):
    path, _ = gen_members(workdir, 200, 5)
    ca, cert, key = make_tls(workdir)
    st = Stack(redis_server, broker, path)
    w = st.start_warmer(workdir, RTE_GRPC_TLS_CERT=cert, RTE_GRPC_TLS_KEY=key, **keys.env(AUD))
    try:
        addr = f"127.0.0.1:{w.ports['grpc']}"
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
        ch = grpc.secure_channel(addr, creds)
        pb, _, stats, hpb, check = channel_clients(ch)
        tok = keys.token(AUD, "rte:warm:read")
        assert stats(pb.GetWarmingStatsRequest(), timeout=10, metadata=bearer(tok)).stats
        assert check(hpb.HealthCheckRequest(service=SVC), timeout=10).status == \
            hpb.HealthCheckResponse.SERVING
        ch.close()
        # a plaintext client cannot talk to the TLS port
        plain = grpc.insecure_channel(addr)
        _, _, stats2, hpb2, check2 = channel_clients(plain)
        code, _ = code_of(check2, hpb2.HealthCheckRequest(), timeout=5)
        assert code == grpc.StatusCode.UNAVAILABLE
        plain.close()
        assert "serves TLS" in w.logtext()
    finally:
        w.stop()


def run_check(env_extra):
    env = dict(os.environ)
    env.update({"RTE_GRPC_ADDR": "127.0.0.1:0", "RTE_ADMIN_ADDR": "127.0.0.1:0",
                "RTE_KAFKA_BROKERS": "127.0.0.1:1", "RTE_WARMER_MEMBERS": "/dev/null"})
    env.pop("RTE_GRPC_AUTH_REQUIRED", None)
    env.update(env_extra)
    return subprocess.run([bin_path("cache-warmer"), "--check-config"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_startup_rules(workdir, keys):
    # the default is required: no JWKS -> refuses, naming the key and the way out
    out = run_check({})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "grpc.auth.required" in out.stderr and "RTE_GRPC_AUTH_REQUIRED" in out.stderr
    # off: starts, loudly
    out = run_check({"RTE_GRPC_AUTH_REQUIRED": "false"})
    assert "INSECURE: gRPC token checks are OFF" in out.stderr, out.stderr
    # a JWKS without issuer, an unreadable JWKS, a cert without key
    out = run_check({"RTE_GRPC_AUTH_JWKS_FILE": keys.jwks_path, "RTE_GRPC_AUTH_AUDIENCE": AUD})
    assert out.returncode == 1 and "RTE_GRPC_AUTH_ISSUER" in out.stderr
    out = run_check({"RTE_GRPC_AUTH_JWKS_FILE": "/nonexistent/jwks.json",
                     "RTE_GRPC_AUTH_ISSUER": ISSUER, "RTE_GRPC_AUTH_AUDIENCE": AUD})
    assert out.returncode == 1 and "/nonexistent/jwks.json" in out.stderr
