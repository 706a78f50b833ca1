"""webhook-receiver and stedi-sim against the official Standard Webhooks library.

The specification serializes a symmetric secret as "whsec_" + base64 of 24
to 64 random bytes, and its libraries sign with the decoded bytes. Here the
official npm package (standardwebhooks, pinned in tests/npm, driven through
tests/npm/swh.js) signs callbacks that a real receiver must take and write
to the cache, and verifies the callbacks stedi-sim sends, captured by a
small HTTP listener. A sender of ours (batch-rpc) is held to the same
helpers: webhook_util.official_sign / official_verify.

Real processes: redis-server, the Kafka dev broker, webhook-receiver,
stedi-sim, and node. Off CI the file skips only when node is missing.
"""
import base64
import hashlib
import hmac
import http.server
import os
import subprocess
import threading
import time

import pytest
import requests

from conftest import bin_path, start_stedi_sim, stop_clean, wait_for
from webhook_util import (body_of, callback, metric, official_sign, official_verify, post,
                          receiver_env, require_official_library, sign_hex, sign_standard,
                          start_receiver, wait_cached, webhook_key)

# made for these tests (32 and 24 random bytes); never used anywhere else
WHSEC = "whsec_t0g5LdcGzB16cjEvPAuOA4UwMHJCgQIX5YRZ8nFivN4="
WHSEC_24 = "whsec_/ZqXXGa+ZOb/8ty773qQuJqfKn6IkFyL"
UNKNOWN = "whsec_Ym9ndXMtc2VjcmV0LW5vYm9keS1rbm93cy1pdCEh"  # configured nowhere


@pytest.fixture(scope="module", autouse=True)
def node():
    return require_official_library()


@pytest.fixture(scope="module")
def rx(workdir, redis_server, kafka_broker):
    s = start_receiver(workdir, redis_server.url, kafka_broker.bootstrap,
                       WH_SECRETS=f"{WHSEC}, {WHSEC_24}")
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def rds(redis_server):
    return redis_server.client()


def test_official_library_signature_is_accepted_and_cached(rx, rds):
    doc = callback("swh-one", 3, errors=(2,))
    body = body_of(doc)
    r = post(rx, body, official_sign(body, WHSEC))
    assert r.status_code == 202, r.text
    assert r.json()["results"] == 3
    got = wait_cached(rds, ["swh-oneM0", "swh-oneM1"])
    assert got["swh-oneM0"]["copay_amount"] == 10 and got["swh-oneM0"]["eligible"] is True
    assert got["swh-oneM1"]["network_status"] == "out_of_network"
    assert got["swh-oneM1"]["source"] == "stedi_batch"
    wait_for(lambda: rds.exists("rte:wh:event:swh-one"), what="results_cached event")
    assert rds.scard("rte:wh:batch:swh-one:written") == 2
    # the same delivery again (same webhook-id) is a replay
    h = official_sign(body, WHSEC, wid="msg_swh_replay")
    assert post(rx, body, h).status_code == 202
    r = post(rx, body, h)
    assert r.status_code == 200 and r.json()["status"] == "duplicate"


def test_rotating_sender_with_two_signatures(rx, rds):
    # a sender moving between secrets signs with both, space-separated
    body = body_of(callback("swh-rotate", 1))
    h = official_sign(body, UNKNOWN, WHSEC_24)
    assert len(h["webhook-signature"].split(" ")) == 2
    assert post(rx, body, h).status_code == 202
    body = body_of(callback("swh-rotate-2", 1))
    assert post(rx, body, official_sign(body, WHSEC, UNKNOWN)).status_code == 202
    wait_cached(rds, ["swh-rotateM0", "swh-rotate-2M0"])


def test_wrong_secret_is_401(rx):
    body = body_of(callback("swh-wrong", 1))
    before = metric(rx, "rte_wh_signature_failures_total", scheme="standard_webhooks",
                    reason="mismatch")
    r = post(rx, body, official_sign(body, UNKNOWN))
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid signature"
    # keyed with the secret's text (what the receiver wrongly did before): refused too
    h = official_sign(body, WHSEC)
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
    mac = hmac.new(WHSEC.encode(), signed, hashlib.sha256).digest()
    h["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
    assert post(rx, body, h).status_code == 401
    assert metric(rx, "rte_wh_signature_failures_total", scheme="standard_webhooks",
                  reason="mismatch") == before + 2
    # our own Python signer, keyed like the library, agrees with it
    assert post(rx, body, sign_standard(body, secret=WHSEC)).status_code == 202


def test_official_timestamps_outside_five_minutes_refused(rx):
    body = body_of(callback("swh-time", 1))
    for ts in (int(time.time()) - 310, int(time.time()) + 310):
        r = post(rx, body, official_sign(body, WHSEC, ts=ts))
        assert r.status_code == 401, r.text
        assert "window" in r.json()["error"]["message"]
    assert post(rx, body, official_sign(body, WHSEC, ts=int(time.time()) - 200)).status_code == 202


def test_x_webhook_signature_uses_the_decoded_key(rx, rds):
    body = body_of(callback("swh-hex", 1))
    r = post(rx, body, sign_hex(body, secret=WHSEC))
    assert r.status_code == 202, r.text
    h = sign_hex(body_of(callback("swh-hex-2", 1)), secret=WHSEC)
    h["X-Webhook-Signature"] = "SHA256=" + h["X-Webhook-Signature"]
    assert post(rx, body_of(callback("swh-hex-2", 1)), h).status_code == 202
    wait_cached(rds, ["swh-hexM0", "swh-hex-2M0"])


class Capture(http.server.BaseHTTPRequestHandler):
    """Records every POST (headers, exact body) and answers 204."""
    calls = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Capture.calls.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def items(n, prefix):
    return [{"controlNumber": f"{i:09d}", "tradingPartnerServiceId": "62308",
             "provider": {"organizationName": "Clinic", "npi": "1999999984"},
             "subscriber": {"memberId": f"{prefix}{i}", "firstName": "Ann", "lastName": "Lee",
                            "dateOfBirth": "19800102"},
             "encounter": {"serviceTypeCodes": ["30"]},
             "submitterTransactionIdentifier": f"{prefix}-{i}"} for i in range(n)]


def test_stedi_sim_callback_verifies_with_official_library(workdir, rx, rds):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Capture.calls = []
    sim = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="3s",
                          callback_secret=WHSEC)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        r = requests.post(sim.url("http", "/2024-04-01/eligibility-manager/batch-eligibility"),
                          json={"items": items(5, "SWH"), "callback_url": url},
                          headers={"Authorization": "Key test-key"}, timeout=30)
        assert r.status_code == 200, r.text
        wait_for(lambda: Capture.calls, timeout=30, what="stedi-sim's callback")
        headers, body = Capture.calls[0]
        h = {k.lower(): v for k, v in headers.items()}
        assert h["content-type"] == "application/json"
        ok, msg = official_verify(WHSEC, body, headers)
        assert ok, msg
        # not by accident: another secret, or a changed byte, fails the library's check
        assert official_verify(UNKNOWN, body, headers) == (False,
                                                           "WebhookVerificationError: No matching "
                                                           "signature found")
        assert not official_verify(WHSEC, body.replace(b"SWH", b"SWX", 1), headers)[0]
        # the hex scheme is keyed the same way
        assert h["x-webhook-signature"] == hmac.new(webhook_key(WHSEC), body,
                                                    hashlib.sha256).hexdigest()
        # and the receiver takes what the simulator sent, as sent
        fwd = {k: v for k, v in headers.items()
               if k.lower() in ("content-type", "webhook-id", "webhook-timestamp",
                                "webhook-signature", "x-webhook-signature")}
        r = post(rx, body, fwd)
        assert r.status_code == 202, r.text
        wait_cached(rds, [f"SWH{i}" for i in range(5)])
    finally:
        srv.shutdown()
        stop_clean(sim)


@pytest.mark.parametrize("secret", ["whsec_***", "whsec_c2hvcnQ="])
def test_stedi_sim_refuses_a_malformed_whsec_secret(workdir, secret):
    env = dict(os.environ, RTE_SIM_CALLBACK_SECRET=secret, RTE_ADMIN_ADDR="127.0.0.1:0",
               RTE_HTTP_ADDR="127.0.0.1:0", RTE_GRPC_ADDR="127.0.0.1:0")
    p = subprocess.run([bin_path("stedi-sim")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert "sim.callback_secret" in p.stderr and "RTE_SIM_CALLBACK_SECRET" in p.stderr
    assert "whsec_" in p.stderr and secret[6:] not in p.stderr


def test_receiver_names_the_malformed_secret(workdir, redis_server, kafka_broker):
    env = dict(os.environ, **receiver_env(redis_server.url, kafka_broker.bootstrap))
    env.update({"RTE_WH_SECRETS": f"{WHSEC}, whsec_{'A' * 20}", "RTE_ADMIN_ADDR": "127.0.0.1:0",
                "RTE_HTTP_ADDR": "127.0.0.1:0", "RTE_GRPC_ADDR": "127.0.0.1:0"})
    p = subprocess.run([bin_path("webhook-receiver")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert "wh.secrets[1]" in p.stderr and "decodes to 15 bytes" in p.stderr
