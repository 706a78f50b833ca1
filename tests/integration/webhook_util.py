"""Helpers shared by the webhook-receiver suites (no tests here).

Builds callbacks in the source design's shape, signs them in both schemes
exactly as a sender must (X-Webhook-Signature hex HMAC of the body; Standard
Webhooks v1 over id.timestamp.body), starts the receiver against real Redis
and the Kafka dev broker, and reads the shared cache the way the C code
writes it (key = rte:eligibility:{HMAC(secret, member)[:16] hex}:{payer}).

official_sign / official_verify run the official Standard Webhooks library
(npm standardwebhooks, installed into tests/npm by scripts/deps.sh) through
tests/npm/swh.js, so any sender or receiver of ours can be held to it
(require_official_library skips only off CI when node is missing).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

import promtext
from conftest import Service, wait_for
from kafka_util import CONSUMER_CONFIG

SECRET = "whsec-integration-one"
CACHE_SECRET = "it-cache-member-key-secret"
CALLBACK = "/api/v1/batch-callback"
GOLDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                      "webhook-receiver")


def golden(name):
    """A golden callback body from tests/data/webhook-receiver, as bytes."""
    with open(os.path.join(GOLDEN, name), "rb") as f:
        return f.read()


def cache_key(member, payer, secret=CACHE_SECRET):
    mk = hmac.new(secret.encode(), member.encode(), hashlib.sha256).hexdigest()[:32]
    return f"rte:eligibility:{mk}:{payer}"


def cache_get(rds, member, payer):
    v = rds.get(cache_key(member, payer))
    return json.loads(v) if v else None


def result(i, prefix, payer="62308", status="completed", eligible=True):
    r = {"check_id": f"{prefix}-{i}", "member_id": f"{prefix}M{i}", "trading_partner_id": payer,
         "status": status}
    if status == "completed":
        r["eligibility"] = {"eligible": eligible, "copay_amount": 10 + i % 5 * 5,
                            "network_status": "in_network" if i % 2 == 0 else "out_of_network",
                            "coverage_start": "2026-01-01", "coverage_end": "2026-12-31"}
    else:
        r["error"] = {"code": "42", "description": "Unable to Respond at Current Time"}
    return r


def callback(batch_id, n, prefix=None, errors=()):
    """A callback document with n results; indexes in errors are payer errors."""
    prefix = prefix or batch_id
    return {"batch_id": batch_id, "status": "completed", "completed_at": "2026-01-05T06:00:00.000Z",
            "results": [result(i, prefix, status="error" if i in errors else "completed")
                        for i in range(n)]}


def body_of(doc):
    return json.dumps(doc, separators=(",", ":")).encode()


def webhook_key(secret):
    """The HMAC key of a configured secret: whsec_ + base64 is decoded, other text is itself."""
    if secret.startswith("whsec_"):
        b64 = secret[len("whsec_"):]
        return base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    return secret.encode()


def sign_standard(body, secret=SECRET, wid=None, ts=None):
    wid = wid or str(uuid.uuid4())
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(webhook_key(secret), f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": wid, "webhook-timestamp": ts,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
            "Content-Type": "application/json"}


def sign_hex(body, secret=SECRET):
    return {"X-Webhook-Signature": hmac.new(webhook_key(secret), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


NPM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "npm")


def require_official_library():
    """The node binary, once tests/npm holds standardwebhooks; else skip (fail on CI)."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed; scripts/deps.sh installs nodejs (make deps)")
        pytest.skip("node is not installed: the Standard Webhooks interop tests need it "
                    "(make deps installs it)")
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "standardwebhooks")):
        pytest.fail("tests/npm/node_modules has no standardwebhooks: run make deps "
                    "(scripts/deps.sh runs npm ci there)")
    return node


def _swh(args, stdin):
    node = require_official_library()
    return subprocess.run([node, os.path.join(NPM_DIR, "swh.js")] + args, input=stdin,
                          capture_output=True, timeout=30)


def official_sign(body, *secrets, wid=None, ts=None):
    """Standard Webhooks headers for body made by the official library, one v1 per secret."""
    args = ["sign"] + (["--id", wid] if wid else []) + (["--ts", str(ts)] if ts else [])
    p = _swh(args + list(secrets), body)
    assert p.returncode == 0, p.stderr.decode()
    return {**json.loads(p.stdout), "Content-Type": "application/json"}


def official_verify(secret, body, headers):
    """(ok, message): the official library's Webhook.verify on the exact body bytes."""
    req = {"headers": dict(headers), "body_b64": base64.b64encode(body).decode()}
    p = _swh(["verify", secret], json.dumps(req).encode())
    assert p.returncode in (0, 1), p.stderr.decode()
    return p.returncode == 0, p.stdout.decode().strip()


def post(svc, body, headers, timeout=30):
    return requests.post(svc.url("http", CALLBACK), data=body, headers=headers, timeout=timeout)


def write_config(workdir, name, extra=""):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(CONSUMER_CONFIG + "kafka.consumer.auto.commit.interval.ms: 500\n" + extra)
    return path


def receiver_env(redis_url, bootstrap, **extra):
    env = {"RTE_REDIS_URL": redis_url, "RTE_KAFKA_BROKERS": bootstrap,
           "RTE_HEALTH_INTERVAL": "200ms", "RTE_WH_SECRETS": SECRET,
           "RTE_CACHE_MEMBER_KEY_SECRET": CACHE_SECRET, "RTE_LOG_LEVEL": "info",
           "RTE_WH_POLL_ENABLED": "false", "RTE_SHUTDOWN_DEADLINE": "20s"}
    env.update({k if k.startswith("RTE_") else "RTE_" + k.upper(): str(v)
                for k, v in extra.items()})
    return env


def start_receiver(workdir, redis_url, bootstrap, wait_ready=True, **extra):
    cfg = write_config(workdir, f"wh-{time.monotonic_ns()}.yaml")
    return Service("webhook-receiver", receiver_env(redis_url, bootstrap, **extra), workdir,
                   args=["--config", cfg]).start(wait_ready=wait_ready)


def metric(svc, name, **labels):
    _, samples = promtext.parse(svc.get("admin", "/metrics").text)
    return promtext.value(samples, name, **labels) or 0


def wait_cached(rds, members, payer="62308", timeout=40):
    """Wait until every member has a cache entry; returns {member: entry}."""
    def all_there():
        got = {m: cache_get(rds, m, payer) for m in members}
        missing = [m for m, v in got.items() if v is None]
        return got if not missing else None
    return wait_for(all_there, timeout=timeout, interval=0.1,
                    what=f"{len(members)} cache entries")
