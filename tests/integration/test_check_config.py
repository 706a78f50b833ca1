"""--check-config on every service: the common keys, the service's own keys and
the files they name are validated without starting anything; a bad value exits
1 with a message naming the key, a good configuration exits 0.

No Redis or broker is started: --check-config must not need them (the broker
and Redis addresses point at port 1, where nothing listens).
"""
import os
import subprocess

import pytest

from conftest import REPO, bin_path


def run(service, tmp_path, overrides):
    members = tmp_path / "members.jsonl"
    members.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTE_")}
    env.update(RTE_KAFKA_BROKERS="127.0.0.1:1", RTE_REDIS_URL="redis://127.0.0.1:1",
               RTE_MEMBER_CRON_MEMBERS=str(members), RTE_GRPC_AUTH_REQUIRED="false")
    env.update(overrides)
    return subprocess.run([bin_path(service), "--check-config"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("service", ["cache-gateway", "webhook-receiver", "member-cron"])
def test_good_configuration_passes(service, tmp_path):
    out = run(service, tmp_path, {})
    assert out.returncode == 0, out.stderr
    assert f"{service}: configuration OK" in out.stdout


BAD = [
    # the service's own keys, each named in the error
    ("cache-gateway", {"RTE_GATEWAY_L1_TTL": "5s"}, "gateway.l1_ttl"),
    ("cache-gateway", {"RTE_GATEWAY_LOCK_TTL": "1s", "RTE_GATEWAY_FETCH_TIMEOUT": "2s"},
     "gateway.lock_ttl"),
    ("cache-gateway", {"RTE_GATEWAY_MEMBER_DIR": "/nonexistent/members.jsonl"},
     "gateway.member_dir"),
    ("cache-gateway", {"RTE_STEDI_PROVIDER_NPI": "123"}, "stedi.provider_npi"),
    ("cache-gateway", {"RTE_CACHE_FRESH_SUCCESS": "soon"}, "cache.fresh_success"),
    ("webhook-receiver", {"RTE_WH_SECRETS": "short"}, "wh.secrets"),
    ("webhook-receiver", {"RTE_WH_REDIS_WAIT": "10m"}, "wh.redis_wait"),
    ("webhook-receiver", {"RTE_SLOTS_LIMIT": "0"}, "slots.limit"),
    ("member-cron", {"RTE_MEMBER_CRON_LEASE": "1ms"}, "member_cron.lease"),
    ("member-cron", {"RTE_MEMBER_CRON_MEMBERS": "/nonexistent/members.jsonl"},
     "member_cron.members"),
    # common keys the skeleton reads only when it starts serving
    ("cache-gateway", {"RTE_HTTP_THREADS": "0"}, "http.threads"),
    ("cache-gateway", {"RTE_HTTP_TLS_CERT": "/etc/ssl/cert.pem"}, "http.tls_key"),
    ("webhook-receiver", {"RTE_KAFKA_HANDLER_MAX_RETRIES": "many"}, "kafka.handler_max_retries"),
    ("member-cron", {"RTE_GRPC_WORKERS": "0"}, "grpc.workers"),
    ("webhook-receiver", {"RTE_HEALTH_CONSUMER_STUCK_AFTER": "2h"},
     "health.consumer_stuck_after"),
    # gRPC token checks: on by default, so a service with methods needs a JWKS
    ("cache-gateway", {"RTE_GRPC_AUTH_REQUIRED": "true"}, "grpc.auth.required"),
    ("cache-gateway", {"RTE_GRPC_AUTH_JWKS_FILE": "/nonexistent/jwks.json",
                       "RTE_GRPC_AUTH_ISSUER": "https://idp.test/",
                       "RTE_GRPC_AUTH_AUDIENCE": "rte-cache-gateway"}, "grpc.auth.jwks_file"),
]


@pytest.mark.parametrize("service,overrides,key", BAD, ids=[f"{s}-{k}" for s, _, k in BAD])
def test_bad_value_is_named(service, overrides, key, tmp_path):
    out = run(service, tmp_path, overrides)
    assert out.returncode == 1, out.stdout + out.stderr
    assert key in out.stderr, out.stderr
    assert "configuration OK" not in out.stdout


def test_member_cron_schedules_file_is_parsed(tmp_path):
    bad = tmp_path / "schedules.yaml"
    bad.write_text("schedules:\n  - name: nightly\n    cron: \"61 * * * *\"\n")
    out = run("member-cron", tmp_path, {"RTE_MEMBER_CRON_SCHEDULES": str(bad)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert str(bad) in out.stderr, out.stderr


def test_kafka_property_is_checked_without_connecting(tmp_path):
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("kafka:\n  producer:\n    linger.ms: soon\n")
    out = run("cache-gateway", tmp_path, {"RTE_CONFIG": str(cfg)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "kafka.producer.linger.ms" in out.stderr, out.stderr
    # nothing tried to reach the (absent) broker
    cfg.write_text("kafka:\n  producer:\n    linger.ms: 20\n")
    out = run("cache-gateway", tmp_path, {"RTE_CONFIG": str(cfg)})
    assert out.returncode == 0, out.stderr
    assert "Connection refused" not in out.stderr and "brokers are down" not in out.stderr


@pytest.mark.parametrize("service,key", [("cache-gateway", "RTE_GATEWAY_MEMBER_DIR"),
                                         ("member-cron", "RTE_MEMBER_CRON_MEMBERS")])
def test_member_directory_url_is_accepted_unfetched(service, key, tmp_path):
    out = run(service, tmp_path, {key: "http://127.0.0.1:1/members.jsonl"})
    assert out.returncode == 0, out.stderr
