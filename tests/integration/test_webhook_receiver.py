"""webhook-receiver: signed batch callbacks into the cache, end to end.

Real processes: redis-server, the Kafka dev broker, the receiver, and
tools/stedi-sim as a real sender. Checks both signature schemes (good, bad,
expired, replayed), secret rotation, the media type (415 unless JSON),
malformed and oversized bodies, that
the same callback twice writes once, the per-batch record and the
cache_warming_events event, and a callback stedi-sim sends for a real batch.
"""
import json
import os
import subprocess
import time

import pytest
import requests

from conftest import bin_path, start_stedi_sim, stop_clean, wait_for
from kafka_util import consume_all
from webhook_util import (SECRET, body_of, cache_get, callback, golden, metric,
                                        post, sign_hex, sign_standard, start_receiver,
                                        wait_cached)

OLD_SECRET = "whsec-integration-old"


@pytest.fixture(scope="module")
def rx(workdir, redis_server, kafka_broker):
    s = start_receiver(workdir, redis_server.url, kafka_broker.bootstrap,
                       WH_SECRETS=f"{SECRET}, {OLD_SECRET}", WH_MAX_BODY=300000,
                       WH_MAX_RESULTS=500)
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def rds(redis_server):
    return redis_server.client()


def test_golden_callback_standard_scheme_lands_in_cache(rx, rds, kafka_broker):
    body = golden("callback_good.json")
    r = post(rx, body, sign_standard(body))
    assert r.status_code == 202, r.text
    d = r.json()
    assert d["status"] == "accepted" and d["batch_id"] == "golden-batch-1"
    assert d["results"] == 3 and d["parts"] == 1
    expected = json.loads(golden("callback_good.expected.json"))
    got = wait_cached(rds, list(expected))
    for member, want in expected.items():
        for k, v in want.items():
            assert got[member][k] == v, (member, k)
        # cached_at is the callback's completed_at (older than receipt)
        assert got[member]["cached_at"] == "2026-01-05T06:00:00.000Z"
        assert got[member]["fresh_until"] == "2026-01-06T04:00:00.000Z"  # + 22 h
    assert cache_get(rds, "GM2", "62308") is None  # payer errors are counted, not cached
    wait_for(lambda: rds.exists("rte:wh:event:golden-batch-1"), what="event sent")
    assert rds.scard("rte:wh:batch:golden-batch-1:written") == 2
    assert rds.hgetall("rte:wh:batch:golden-batch-1:failed") == {b"G-2": b"payer_error"}
    assert metric(rx, "rte_wh_results_failed_total", reason="payer_error") >= 1
    assert metric(rx, "rte_wh_callbacks_total", result="accepted") >= 1
    events = [json.loads(m.value) for m in consume_all(kafka_broker.bootstrap,
                                                       "domain.rte.v1.cache_warming_events")
              if m.key == b"golden-batch-1"]
    assert len(events) == 1
    ev = events[0]
    assert ev["event_id"] == "webhook-receiver:golden-batch-1:results_cached"
    assert (ev["total"], ev["written"], ev["failed"]) == (3, 2, 1)
    assert ev["failed_by_reason"] == {"payer_error": 1} and ev["via"] == "callback"
    # the durable copy is on the results topic, keyed by batch id
    copies = [m for m in consume_all(kafka_broker.bootstrap, "rte.stedi.batch-results")
              if m.key == b"golden-batch-1"]
    assert len(copies) == 1
    env = json.loads(copies[0].value)
    assert env["kind"] == "callback" and env["total"] == 3 and len(env["results"]) == 3
    assert copies[0].headers["rte-kind"] == b"callback"


def test_x_webhook_signature_scheme(rx, rds):
    doc = callback("xsig-batch", 4)
    body = body_of(doc)
    r = post(rx, body, sign_hex(body))
    assert r.status_code == 202, r.text
    got = wait_cached(rds, [f"xsig-batchM{i}" for i in range(4)])
    assert got["xsig-batchM1"]["copay_amount"] == 15
    assert got["xsig-batchM1"]["network_status"] == "out_of_network"
    # upper-case hex and a sha256= prefix in either case are the same signature: a replay now
    for prefix, digest in (("sha256=", str.upper), ("SHA256=", str.lower), ("Sha256=", str.upper)):
        h = sign_hex(body)
        h["X-Webhook-Signature"] = prefix + digest(h["X-Webhook-Signature"])
        r = post(rx, body, h)
        assert r.status_code == 200 and r.json()["status"] == "duplicate", (prefix, r.text)


def test_bad_signatures_are_401_without_hints(rx):
    body = body_of(callback("bad-sig", 2))
    before_std = metric(rx, "rte_wh_signature_failures_total", scheme="standard_webhooks",
                        reason="mismatch")
    before_hex = metric(rx, "rte_wh_signature_failures_total", scheme="x_webhook_signature",
                        reason="mismatch")
    cases = [
        sign_standard(body, secret="not-the-secret"),
        sign_hex(body, secret="not-the-secret"),
        sign_standard(body + b" "),  # signed another body
        {"Content-Type": "application/json"},  # no signature at all
        {**sign_standard(body), "webhook-signature": "v1,not base64!"},
        {**sign_standard(body), "webhook-signature": "v2,abc"},
        {**sign_standard(body), "webhook-timestamp": "yesterday"},
        {"X-Webhook-Signature": "abcd", "Content-Type": "application/json"},
    ]
    msgs = []
    for h in cases:
        r = post(rx, body, h)
        assert r.status_code == 401, (h, r.text)
        # RFC 9110 15.5.2: a 401 carries a challenge
        assert r.headers["WWW-Authenticate"] == 'Webhook-Signature realm="batch-callback"'
        msg = r.json()["error"]["message"]
        assert "secret" not in msg.lower() and SECRET not in msg and OLD_SECRET not in msg
        msgs.append(msg)
    # malformed headers are named; a wrong signature says only that
    assert msgs[0] == msgs[1] == msgs[2] == "invalid signature"
    assert msgs[3].startswith("no signature: send webhook-id")
    assert msgs[4].startswith("webhook-signature: no v1,")
    assert msgs[6] == "webhook-timestamp: expected integer Unix seconds"
    assert msgs[7].startswith("X-Webhook-Signature: expected 64 hex digits")
    assert metric(rx, "rte_wh_signature_failures_total", scheme="standard_webhooks",
                  reason="mismatch") == before_std + 2
    assert metric(rx, "rte_wh_signature_failures_total", scheme="x_webhook_signature",
                  reason="mismatch") == before_hex + 1
    assert metric(rx, "rte_wh_signature_failures_total", scheme="none", reason="missing") >= 1
    assert metric(rx, "rte_wh_signature_failures_total", scheme="standard_webhooks",
                  reason="malformed") >= 3


def test_several_signatures_one_good(rx, rds):
    body = body_of(callback("multi-sig", 1))
    h = sign_standard(body)
    bad = sign_standard(body, secret="some-other-key", wid=h["webhook-id"],
                        ts=h["webhook-timestamp"])
    h["webhook-signature"] = bad["webhook-signature"] + " " + h["webhook-signature"]
    assert post(rx, body, h).status_code == 202
    wait_cached(rds, ["multi-sigM0"])


def test_expired_and_future_timestamps_refused(rx):
    body = body_of(callback("expired", 1))
    for ts in (int(time.time()) - 301, int(time.time()) + 301):
        r = post(rx, body, sign_standard(body, ts=ts))
        assert r.status_code == 401
        assert "window" in r.json()["error"]["message"]
    assert metric(rx, "rte_wh_signature_failures_total", scheme="standard_webhooks",
                  reason="expired") >= 2
    # inside the tolerance is fine
    r = post(rx, body, sign_standard(body, ts=int(time.time()) - 240))
    assert r.status_code == 202


def test_replayed_webhook_id_is_200_and_not_processed(rx, rds):
    body = body_of(callback("replay", 2))
    h = sign_standard(body)
    assert post(rx, body, h).status_code == 202
    before = metric(rx, "rte_wh_replays_total", scheme="standard_webhooks")
    r = post(rx, body, h)
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert metric(rx, "rte_wh_replays_total", scheme="standard_webhooks") == before + 1
    assert metric(rx, "rte_wh_callbacks_total", result="duplicate") >= 1


def test_secret_rotation(rx, rds):
    for i, secret in enumerate((SECRET, OLD_SECRET)):
        body = body_of(callback(f"rotation-{i}", 1))
        assert post(rx, body, sign_standard(body, secret=secret)).status_code == 202
        assert post(rx, body, sign_hex(body, secret=secret)).status_code == 202
    wait_cached(rds, ["rotation-0M0", "rotation-1M0"])
    body = body_of(callback("rotation-2", 1))
    assert post(rx, body, sign_standard(body, secret="whsec-retired-long-ago")).status_code == 401


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("batch_id"), "batch_id: missing"),
    (lambda d: d.update(batch_id="has spaces"), "batch_id: expected characters"),
    (lambda d: d.update(results={}), "results: expected an array"),
    (lambda d: d["results"][3].pop("member_id"), "results[3].member_id: missing"),
    (lambda d: d["results"][1].update(status="maybe"), "results[1].status: expected completed"),
    (lambda d: d["results"][2].pop("eligibility"), "results[2].eligibility: missing"),
    (lambda d: d["results"][0]["eligibility"].update(copay_amount="ten"),
     "results[0].eligibility.copay_amount: expected a number"),
    (lambda d: d["results"][4]["eligibility"].update(coverage_end="31/12/2026"),
     "results[4].eligibility.coverage_end: expected YYYY-MM-DD"),
    (lambda d: d["results"][4]["eligibility"].pop("eligible"),
     "results[4].eligibility.eligible: missing"),
    (lambda d: d.update(completed_at="soon"), "completed_at: expected an RFC 3339"),
])
def test_malformed_fields_are_400_naming_the_field(rx, mutate, message):
    doc = callback("malformed", 5)
    mutate(doc)
    body = body_of(doc)
    r = post(rx, body, sign_standard(body))
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_golden_missing_member_and_not_json(rx):
    body = golden("callback_missing_member.json")
    r = post(rx, body, sign_standard(body))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "results[3].member_id: missing"
    for body in (b"{not json", b"[]", b""):
        r = post(rx, body, sign_standard(body))
        assert r.status_code == 400, body


@pytest.mark.parametrize("ctype", [
    "application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8",
    'application/json ; charset="utf-8"', "application/vnd.rte.callback+json",
])
def test_json_media_types_accepted(rx, rds, ctype):
    batch = f"ctype-{abs(hash(ctype)) % 10**6}"
    body = body_of(callback(batch, 1))
    r = post(rx, body, {**sign_standard(body), "Content-Type": ctype})
    assert r.status_code == 202, (ctype, r.text)
    wait_cached(rds, [f"{batch}M0"])  # written before the next test counts writes


@pytest.mark.parametrize("ctype,message", [
    ("text/plain", "Content-Type: text/plain is not JSON; send application/json"),
    ("application/x-www-form-urlencoded", "Content-Type: application/x-www-form-urlencoded is not"),
    ("text/json", "Content-Type: text/json is not JSON"),
    ("application/json; charset=iso-8859-1", "Content-Type: charset must be utf-8"),
    ("json", "Content-Type: not a media type"),
    (None, "Content-Type: missing; send application/json"),
])
def test_other_media_types_are_415_naming_the_header(rx, ctype, message):
    body = body_of(callback("ctype-bad", 1))
    h = sign_standard(body)
    del h["Content-Type"]
    if ctype is not None:
        h["Content-Type"] = ctype
    before = metric(rx, "rte_wh_callbacks_total", result="unsupported_media_type")
    # requests adds no Content-Type of its own to a bytes body
    r = post(rx, body, h)
    assert r.status_code == 415, (ctype, r.text)
    assert r.json()["error"]["message"].startswith(message), r.text
    assert r.headers["Accept-Post"] == "application/json"
    assert metric(rx, "rte_wh_callbacks_total", result="unsupported_media_type") == before + 1
    # the media type is judged before the signature: an unsigned one is 415 too
    r = post(rx, body, {} if ctype is None else {"Content-Type": ctype})
    assert r.status_code == 415


def test_content_coding_is_415(rx, rds):
    import gzip
    body = body_of(callback("gzipped", 1))
    z = gzip.compress(body)
    h = {**sign_standard(z), "Content-Encoding": "gzip"}
    r = post(rx, z, h)
    assert r.status_code == 415
    assert r.json()["error"]["message"].startswith("Content-Encoding: gzip is not accepted")
    assert r.headers["Accept-Encoding"] == "identity"
    # identity is no coding at all
    assert post(rx, body, {**sign_standard(body), "Content-Encoding": "identity"}).status_code == 202
    wait_cached(rds, ["gzippedM0"])


def test_size_limits(rx):
    big = body_of(callback("too-big", 1400))
    assert len(big) > 300000
    r = post(rx, big, sign_standard(big))
    assert r.status_code == 413
    many = body_of(callback("too-many", 501))
    assert len(many) < 300000
    r = post(rx, many, sign_standard(many))
    assert r.status_code == 400
    assert "results: 501 results, at most 500" in r.json()["error"]["message"]


def test_same_callback_twice_writes_once(rx, rds):
    doc = callback("twice", 20, errors=(3,))
    body = body_of(doc)
    written = metric(rx, "rte_wh_results_written_total", kind="callback")
    # two deliveries of one callback with different webhook-ids (a sender retry)
    assert post(rx, body, sign_standard(body)).status_code == 202
    wait_cached(rds, [f"twiceM{i}" for i in range(20) if i != 3])
    wait_for(lambda: rds.exists("rte:wh:event:twice"), what="event")
    assert post(rx, body, sign_standard(body)).status_code == 202
    wait_for(lambda: metric(rx, "rte_wh_messages_total", kind="callback", outcome="duplicate") >= 1,
             what="second delivery consumed")
    assert metric(rx, "rte_wh_results_written_total", kind="callback") == written + 19
    assert rds.scard("rte:wh:batch:twice:written") == 19


def test_stedi_sim_callback_for_real_batch(rx, rds, workdir):
    """A callback stedi-sim sends for a batch it ran (not a Stedi feature: the sim keeps it to
    exercise this path) lands in the cache and agrees with what polling Stedi says."""
    sim = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="5s",
                          callback_secret=SECRET)
    try:
        items = [{"tradingPartnerServiceId": "62308",
                  "provider": {"organizationName": "Clinic", "npi": "1999999984"},
                  "subscriber": {"memberId": f"SIM{i}", "firstName": "Ann", "lastName": "Lee",
                                 "dateOfBirth": "19800102"},
                  "encounter": {"serviceTypeCodes": ["30"]},
                  "submitterTransactionIdentifier": f"S{i}"} for i in range(25)]
        r = requests.post(sim.url("http", "/2024-04-01/eligibility-manager/batch-eligibility"),
                          json={"items": items, "callback_url": rx.url("http", CALLBACK_PATH)},
                          headers={"Authorization": "test-key"}, timeout=30)
        assert r.status_code == 200, r.text
        batch_id = r.json()["batchId"]
        # members of class 5 and 15 (id mod 20) are payer rejections: not cached
        rejected = {f"SIM{i}" for i in range(25) if i % 20 in (5, 15)}
        got = wait_cached(rds, [f"SIM{i}" for i in range(25) if f"SIM{i}" not in rejected])
        # the cache agrees with what polling Stedi says about each member
        page = requests.get(
            sim.url("http", "/2024-04-01/eligibility-manager/polling/batch-eligibility"),
            params={"batchId": batch_id, "pageSize": 100},
            headers={"Authorization": "test-key"}, timeout=30).json()
        assert len(page["items"]) == 25
        for it in page["items"]:
            member = "SIM" + it["submitterTransactionIdentifier"][1:]
            if it["errors"]:
                assert member in rejected and cache_get(rds, member, "62308") is None
                continue
            active = any(b["code"] in "12345" and "30" in b.get("serviceTypeCodes", [])
                         for b in it["benefitsInformation"])
            entry = got[member]
            assert entry["eligible"] == active and entry["source"] == "stedi_batch"
            assert entry["coverage_start"][:4].isdigit()
        wait_for(lambda: rds.scard(f"rte:wh:batch:{batch_id}:written") == 25 - len(rejected),
                 what="results recorded")
        assert rds.hgetall(f"rte:wh:batch:{batch_id}:failed") == {
            f"S{m[3:]}".encode(): b"payer_error" for m in rejected}
        stats = requests.get(sim.url("http", "/_sim/stats"), timeout=10).json()
        assert stats["callbacks_sent"] == 1 and stats["callbacks_failed"] == 0
    finally:
        stop_clean(sim)


CALLBACK_PATH = "/api/v1/batch-callback"


@pytest.mark.parametrize("var,value,named", [
    ("RTE_WH_SECRETS", "short", "wh.secrets[0]"),
    # Standard Webhooks: whsec_ + base64 of 24..64 bytes, checked at start-up
    ("RTE_WH_SECRETS", "a-good-text-secret, whsec_not*base64*at*all", "wh.secrets[1]"),
    ("RTE_WH_SECRETS", "whsec_c2hvcnQ=", "wh.secrets[0]"),
    ("RTE_WH_MAX_RESULTS", "0", "wh.max_results"),
    ("RTE_WH_TIMESTAMP_TOLERANCE", "soon", "wh.timestamp_tolerance"),
    ("RTE_BATCH_REGISTRY_LEASE", "1ms", "batch_registry.lease"),
])
def test_bad_settings_stop_startup_naming_the_key(workdir, redis_server, kafka_broker, var, value,
                                                   named):
    import subprocess
    from conftest import bin_path
    from webhook_util import receiver_env
    env = dict(os.environ, **receiver_env(redis_server.url, kafka_broker.bootstrap))
    env.update({var: value, "RTE_ADMIN_ADDR": "127.0.0.1:0", "RTE_HTTP_ADDR": "127.0.0.1:0",
                "RTE_GRPC_ADDR": "127.0.0.1:0"})
    p = subprocess.run([bin_path("webhook-receiver")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert named in p.stderr and var in p.stderr
    assert "not*base64" not in p.stderr  # the error never quotes a secret


def test_consumer_health_gauges_show_partitions_held_and_lag(rx, rds):
    """The writer's three consumers hold all 6 partitions of the busy topic between them;
    the lag gauge exists (so an alert on it can fire) and returns to 0 once the messages are
    applied. Both gauges were missing before issue 23."""
    import promtext
    topic = "rte.stedi.batch-results"

    def sample(name):
        _, samples = promtext.parse(rx.get("admin", "/metrics").text)
        return promtext.value(samples, name, topic=topic)

    wait_for(lambda: sample("rte_kafka_consumer_assigned_partitions") == 6, timeout=30,
             what="6 partitions held")
    body = body_of(callback("health", 30))
    assert post(rx, body, sign_standard(body)).status_code == 202
    wait_cached(rds, [f"healthM{i}" for i in range(30)])
    wait_for(lambda: sample("rte_kafka_consumer_lag") == 0, timeout=30, what="lag back to 0")


def test_an_idle_receiver_sleeps(rx):
    """The callback sweeper sleeps between its 50 ms ticks. Its deadline is monotonic; on a
    condition variable of the default (realtime) clock every deadline was long past, so it
    spun on the lock of the pending callbacks: most of a core at idle, and contention with
    the delivery reports under load (a third of the receiver's CPU in the bench's profile)."""
    def cpu():
        f = open(f"/proc/{rx.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    time.sleep(0.5)
    c0, t0 = cpu(), time.monotonic()
    time.sleep(3)
    share = (cpu() - c0) / (time.monotonic() - t0)
    assert share < 0.1, f"idle receiver used {share:.0%} of a core"


def test_wh_load_drives_the_receiver(rx, rds, redis_server):
    """tools/wh-load, the bench's client: its signatures are accepted, each callback lands whole
    in the cache, and it reports what it measured (one JSON object per phase)."""
    url = f"http://127.0.0.1:{rx.ports['http']}/api/v1/batch-callback"
    out = subprocess.run([bin_path("wh-load"), "--url", url, "--secret", SECRET,
                          "--redis", redis_server.url, "--prefix", "it-load", "--conns", "2",
                          "--secs", "1", "--results", "20", "--big", "1", "--big-results", "300"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = {d["phase"]: d for d in map(json.loads, out.stdout.splitlines())}
    assert set(got) == {"big", "start", "sustained", "caught_up"}
    assert got["big"]["runs"] == 1 and got["big"]["ack_ms"][0] > 0
    assert got["big"]["cached_ms"][0] >= got["big"]["ack_ms"][0]
    assert rds.scard("rte:wh:batch:it-load-big-0:written") == 300
    sus = got["sustained"]
    assert sus["accepted"] > 0 and sus["refused"] == 0 and sus["errors"] == 0
    assert sus["sent"] == sus["accepted"]
    assert got["caught_up"]["secs"] >= 0
    for k in range(sus["accepted"]):
        assert rds.scard(f"rte:wh:batch:it-load-sus-{k}:written") == 20
    # bad usage names the option
    bad = subprocess.run([bin_path("wh-load"), "--url", url, "--secret", SECRET, "--conns", "0"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 1 and "--conns: expected an integer 1..1024" in bad.stderr
