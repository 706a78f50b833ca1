"""The input policy (docs/input.md, issue 16) where outside data enters.

Real processes: redis-server, the Kafka dev broker, webhook-receiver and
cache-gateway. Every case here was accepted before the policy: a callback
whose member id held an escaped NUL was written over another member's cache
entry, raw control characters and invalid UTF-8 went into Kafka envelopes no
other reader could parse, a repeated key was read as its first value, an
impossible date was stored, and the gateway read "87726%00x" as "87726". Now
each is a 400 naming the field (or, for a Kafka envelope, a DLQ copy whose
reason names it) and nothing is written or produced.
"""
import hashlib
import hmac
import http.client
import json
import os
import time

import pytest
import requests

from conftest import Service, stop_clean, wait_for
from kafka_util import consume_all, produce
from webhook_util import (CACHE_SECRET, body_of, cache_get, cache_key, callback, metric, post,
                          sign_standard, start_receiver, wait_cached)

TOPIC = "rte.stedi.batch-results"
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                    "cache-gateway")


@pytest.fixture(scope="module")
def rx(workdir, redis_server, kafka_broker):
    s = start_receiver(workdir, redis_server.url, kafka_broker.bootstrap)
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def rds(redis_server):
    return redis_server.client()


def on_topic(bootstrap, batch_id, topic=TOPIC):
    """Messages on topic keyed by batch_id."""
    return [m for m in consume_all(bootstrap, topic) if m.key == batch_id.encode()]


def raw_callback(batch_id, member_json):
    """A one-result callback body with member_json spliced in as raw bytes (the
    member id exactly as written on the wire, escapes and all)."""
    doc = callback(batch_id, 1)
    doc["results"][0]["member_id"] = "@MEMBER@"
    return body_of(doc).replace(b'"@MEMBER@"', member_json)


def refused(rx, body, *needles):
    """POST body; assert a 400 whose message holds every needle; the message."""
    r = post(rx, body, sign_standard(body))
    assert r.status_code == 400, r.text
    msg = r.json()["error"]["message"]
    for n in needles:
        assert n in msg, (n, msg)
    return msg


# ---- webhook callbacks (finding 2, 3, 4) --------------------------------------------


def test_escaped_nul_in_member_id_does_not_overwrite_another_member(rx, rds, kafka_broker):
    # a real member "NULM0" is cached first
    good = callback("nul-batch-good", 1, prefix="NUL")
    good["results"][0]["eligibility"]["copay_amount"] = 10
    body = body_of(good)
    assert post(rx, body, sign_standard(body)).status_code == 202
    before = wait_cached(rds, ["NULM0"])["NULM0"]
    assert before["copay_amount"] == 10
    # then a callback for "NULM0\u0000X": cJSON read it as "NULM0" and overwrote its entry
    bad = callback("nul-batch-bad", 1, prefix="NUL")
    bad["results"][0]["member_id"] = "NULM0\u0000X"
    bad["results"][0]["eligibility"]["copay_amount"] = 99
    body = body_of(bad)
    assert b"\\u0000" in body
    refused(rx, body, "\\u0000 not allowed", "results[0].member_id")
    time.sleep(1.0)  # had it been accepted, the consumer would have written by now
    assert cache_get(rds, "NULM0", "62308")["copay_amount"] == 10
    assert rds.get(cache_key("NULM0\u0000X", "62308")) is None
    assert on_topic(kafka_broker.bootstrap, "nul-batch-bad") == []
    assert metric(rx, "rte_wh_callbacks_total", result="invalid") >= 1


@pytest.mark.parametrize("member,needles", [
    (b'"CTL\x01M"', ("control character 0x01", "results[0].member_id", "must be escaped")),
    (b'"CTL\\u0001M"', ("results[0].member_id: control character U+0001",)),
    (b'"CTL\\u007fM"', ("results[0].member_id: control character U+007F",)),
    (b'"CTL\\u0085M"', ("results[0].member_id: control character U+0085",)),
    (b'"CTL\\u2028M"', ("results[0].member_id: line separator U+2028",)),
    (b'"UTF\xffM"', ("invalid UTF-8 at byte", "results[0].member_id")),
    (b'"UTF\xc0\x80M"', ("invalid UTF-8 at byte", "results[0].member_id")),  # overlong NUL
    (b'"UTF\xed\xa0\x80M"', ("invalid UTF-8 at byte", "results[0].member_id")),  # surrogate
    (b'"SUR\\ud800M"', ("unpaired surrogate escape \\ud800", "results[0].member_id")),
])
def test_bad_member_ids_are_400_and_never_produced(rx, rds, kafka_broker, member, needles):
    batch = "badid-" + hashlib.sha256(member).hexdigest()[:12]
    body = raw_callback(batch, member)
    refused(rx, body, *needles)
    time.sleep(0.3)
    assert on_topic(kafka_broker.bootstrap, batch) == []


def test_duplicate_keys_are_400_naming_the_key(rx, rds, kafka_broker):
    doc = callback("dup-batch", 2, prefix="DUP")
    body = body_of(doc)
    # results[1] names two members; cJSON took the first, another reader the last
    body = body.replace(b'"member_id":"DUPM1"', b'"member_id":"DUPM1","member_id":"DUPM9"')
    refused(rx, body, "duplicate key 'member_id' in the object at 'results[1]'")
    body = body_of(doc).replace(b'{"batch_id":"dup-batch"',
                                b'{"batch_id":"dup-batch","batch_id":"dup-other"')
    refused(rx, body, "duplicate key 'batch_id' in the top-level object")
    # the same key after unescaping is the same key
    body = body_of(doc).replace(b'"status":"completed","completed_at"',
                                b'"status":"completed","st\\u0061tus":"x","completed_at"')
    refused(rx, body, "duplicate key 'status' in the top-level object")
    time.sleep(0.5)
    assert on_topic(kafka_broker.bootstrap, "dup-batch") == []
    for m in ("DUPM0", "DUPM1", "DUPM9"):
        assert cache_get(rds, m, "62308") is None


@pytest.mark.parametrize("field,value,needle", [
    ("coverage_start", "2026-13-45", "results[0].eligibility.coverage_start: not a calendar date "
                                     "(month 13)"),
    ("coverage_end", "2026-02-29", "results[0].eligibility.coverage_end: not a calendar date "
                                   "(2026-02 has no day 29)"),
    ("coverage_start", "2026-04-00", "results[0].eligibility.coverage_start: not a calendar date"),
])
def test_impossible_dates_are_400(rx, rds, kafka_broker, field, value, needle):
    batch = f"date-{field}-{value}"
    doc = callback(batch, 1, prefix=batch)
    doc["results"][0]["eligibility"][field] = value
    body = body_of(doc)
    refused(rx, body, needle)
    time.sleep(0.3)
    assert cache_get(rds, f"{batch}M0", "62308") is None
    assert on_topic(kafka_broker.bootstrap, batch) == []


def test_completed_at_must_be_rfc3339(rx):
    for value, needle in (("1767592800", "completed_at: expected an RFC 3339 date-time"),
                          ("2026-02-30T06:00:00Z", "completed_at: not a calendar date"),
                          ("2026-01-05 06:00:00Z", "completed_at: expected an RFC 3339")):
        doc = callback("when-batch", 1)
        doc["completed_at"] = value
        refused(rx, body_of(doc), needle)


def test_a_good_unicode_member_id_is_accepted(rx, rds):
    # the policy refuses what is ambiguous, not what is merely non-ASCII
    doc = callback("utf8-batch", 1)
    doc["results"][0]["member_id"] = "M\u00fcller-\U0001d11e"
    body = json.dumps(doc, ensure_ascii=False).encode()
    r = post(rx, body, sign_standard(body))
    assert r.status_code == 202, r.text
    wait_cached(rds, ["M\u00fcller-\U0001d11e"])


# ---- Kafka envelopes consumed by webhook-receiver -------------------------------------


def envelope(batch_id, member=b'"ENVM0"', extra=b""):
    """A callback envelope as webhook-receiver writes it, member id spliced in raw."""
    res = (b'{"check_id":"' + batch_id.encode() + b'-0","member_id":' + member +
           b',"trading_partner_id":"62308","status":"completed","eligibility":'
           b'{"eligible":true,"copay_amount":5,"network_status":"in_network",'
           b'"coverage_start":"2026-01-01","coverage_end":"2026-12-31"}}')
    cid = hashlib.sha256(batch_id.encode() + member).hexdigest()[:32].encode()
    return (b'{"v":1,"kind":"callback","id":"' + cid + b'","part":0,"parts":1,"total":1,'
            b'"received_at_ms":' + str(int(time.time() * 1000)).encode() + extra +
            b',"batch_id":"' + batch_id.encode() + b'","status":"completed","results":[' + res +
            b"]}")


@pytest.mark.parametrize("name,member,extra,reason", [
    ("env-utf8", b'"ENV\xffM"', b"", "invalid UTF-8 at byte"),
    ("env-nul", b'"ENV\\u0000M"', b"", "\\u0000 not allowed in a string at 'results[0].member_id'"),
    ("env-ctl", b'"ENV\\u0001M"', b"", "results[0].member_id: control character U+0001"),
    ("env-dup", b'"ENVM0"', b',"kind":"poll_page"', "duplicate key 'kind' in the top-level object"),
    ("env-date", b'"ENVM0"', b"", "eligibility.coverage_start: not a calendar date"),
])
def test_bad_envelopes_go_to_the_dlq_with_the_reason(rx, rds, kafka_broker, name, member, extra,
                                                     reason):
    msg = envelope(name, member, extra)
    if name == "env-date":
        msg = msg.replace(b'"coverage_start":"2026-01-01"', b'"coverage_start":"2026-13-45"')
    poison = metric(rx, "rte_wh_messages_total", kind="callback", outcome="poison") + \
        metric(rx, "rte_wh_messages_total", kind="unknown", outcome="poison")
    produce(kafka_broker.bootstrap, TOPIC, [(name, msg)])
    dlq = wait_for(lambda: on_topic(kafka_broker.bootstrap, name, TOPIC + ".dlq"), timeout=30,
                   what=f"{name} on the DLQ")
    assert len(dlq) == 1 and dlq[0].value == msg
    why = dlq[0].headers["dlq-reason"].decode()
    assert reason in why, why
    why.encode("utf-8")  # the reason itself is clean text
    assert metric(rx, "rte_wh_messages_total", kind="callback", outcome="poison") + \
        metric(rx, "rte_wh_messages_total", kind="unknown", outcome="poison") == poison + 1
    assert rds.scard(f"rte:wh:batch:{name}:written") == 0
    assert cache_get(rds, "ENVM0", "62308") is None


def test_a_good_envelope_is_written(rx, rds, kafka_broker):
    produce(kafka_broker.bootstrap, TOPIC, [("env-good", envelope("env-good", b'"ENVGOOD0"'))])
    got = wait_cached(rds, ["ENVGOOD0"])
    assert got["ENVGOOD0"]["copay_amount"] == 5


def test_a_run_of_envelopes_poison_among_good_ones(rx, rds, kafka_broker):
    """Consecutive callback envelopes are applied together (wh_consume.c apply_group): a poison
    one among them goes to the DLQ with its reason and writes nothing, the good ones around it
    and a redelivered copy (a duplicate) are written once, each batch's record counts its own."""
    good = [envelope(f"run-good-{i}", f'"RUNM{i}"'.encode()) for i in range(4)]
    bad = envelope("run-bad", b'"RUNBAD\\u0001"')
    dups = metric(rx, "rte_wh_messages_total", kind="callback", outcome="duplicate")
    produce(kafka_broker.bootstrap, TOPIC, [("run-good-0", good[0]), ("run-good-1", good[1]),
                                            ("run-bad", bad), ("run-good-2", good[2]),
                                            ("run-good-0", good[0]), ("run-good-3", good[3])])
    got = wait_cached(rds, [f"RUNM{i}" for i in range(4)])
    assert [got[f"RUNM{i}"]["copay_amount"] for i in range(4)] == [5, 5, 5, 5]
    dlq = wait_for(lambda: on_topic(kafka_broker.bootstrap, "run-bad", TOPIC + ".dlq"),
                   timeout=30, what="run-bad on the DLQ")
    assert len(dlq) == 1 and dlq[0].value == bad
    why = dlq[0].headers["dlq-reason"].decode()
    assert "results[0].member_id: control character U+0001" in why, why
    assert rds.scard("rte:wh:batch:run-bad:written") == 0
    for i in range(4):
        assert rds.smembers(f"rte:wh:batch:run-good-{i}:written") == {f"run-good-{i}-0".encode()}
    wait_for(lambda: metric(rx, "rte_wh_messages_total", kind="callback",
                            outcome="duplicate") == dups + 1, timeout=10, what="one duplicate")


# ---- cache-gateway: path, query string, body -----------------------------------------

GW_SECRET = "it-input-gateway-secret"
TP = "87726"
HOUR = 3600 * 1000


def gw_key(mid, tp=TP):
    mk = hmac.new(GW_SECRET.encode(), mid.encode(), hashlib.sha256).hexdigest()[:32]
    return f"rte:eligibility:{mk}:{tp}"


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


@pytest.fixture(scope="module")
def gw(workdir, redis_server, kafka_broker):
    env = {"RTE_REDIS_URL": redis_server.url, "RTE_KAFKA_BROKERS": kafka_broker.bootstrap,
           "RTE_STEDI_BASE_URL": "http://127.0.0.1:9", "RTE_STEDI_API_KEY": "test-key",
           "RTE_CACHE_MEMBER_KEY_SECRET": GW_SECRET,
           "RTE_GATEWAY_MEMBER_DIR": os.path.join(DATA, "members.jsonl"),
           "RTE_GATEWAY_XFETCH_BETA": "0", "RTE_GATEWAY_DEADLINE": "3s",
           "RTE_LOG_LEVEL": "warn", "RTE_SHUTDOWN_DEADLINE": "15s"}
    s = Service("cache-gateway", env, workdir).start()
    now = int(time.time() * 1000)
    value = {"eligible": True, "copay_amount": 42, "network_status": "in_network",
             "coverage_start": "2026-01-01", "coverage_end": "2026-12-31",
             "cached_at": iso(now), "fresh_until": iso(now + 22 * HOUR), "source": "stedi_batch"}
    redis_server.client().set(gw_key("GWM0001"), json.dumps(value), px=72 * HOUR)
    yield s
    stop_clean(s)


class Answer:
    def __init__(self, status, body):
        self.status_code, self.text = status, body.decode("utf-8")

    def json(self):
        return json.loads(self.text)


def gw_get(gw, path):
    """GET path sent as written (requests would re-quote a bad %XX as %25XX)."""
    c = http.client.HTTPConnection("127.0.0.1", gw.ports["http"], timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return Answer(r.status, r.read())
    finally:
        c.close()


def gw_refused(r, *needles):
    assert r.status_code == 400, r.text
    msg = r.json()["error"]["message"]
    for n in needles:
        assert n in msg, (n, msg)


def test_gateway_path_member_id_is_percent_decoded(gw):
    plain = gw_get(gw, "/v1/eligibility/GWM0001?cache_control=CACHE_ONLY")
    assert plain.status_code == 200, plain.text
    assert plain.json()["copay_amount"] == 42
    # RFC 3986: %30 is "0" and %2D would be "-"; the same resource, not a 400
    enc = gw_get(gw, "/v1/eligibility/GWM%30001?cache_control=CACHE_ONLY")
    assert enc.status_code == 200, enc.text
    assert enc.json()["copay_amount"] == 42


@pytest.mark.parametrize("segment,needles", [
    ("GWM%01X", ("field 'member_id': control character U+0001",)),
    ("GWM%7F", ("field 'member_id': control character U+007F",)),
    ("GWM%C2%85", ("field 'member_id': control character U+0085",)),
    ("GWM%FF", ("field 'member_id': invalid UTF-8 at byte 3",)),
    ("GWM%C0%80", ("field 'member_id': invalid UTF-8 at byte 3",)),
    ("GWM0001%00X", ("field 'member_id': malformed", "encoded NUL")),
    ("GWM%zz", ("field 'member_id': malformed",)),
    ("%20GWM0001", ("field 'member_id': leading or trailing space",)),
])
def test_gateway_path_with_bad_bytes_is_400_naming_member_id(gw, segment, needles):
    gw_refused(gw_get(gw, "/v1/eligibility/" + segment), *needles)


def test_gateway_query_values_are_checked(gw):
    # "87726%00x" read as "87726": the answer was for a trading partner nobody asked for
    gw_refused(gw_get(gw, "/v1/eligibility/GWM0001?trading_partner_id=87726%00x"),
               "query parameter 'trading_partner_id': '%00' decodes to a control character")
    gw_refused(gw_get(gw, "/v1/eligibility/GWM0001?trading_partner_id=87726%01"),
               "query parameter 'trading_partner_id': '%01' decodes to a control character")
    # given twice: proxies and frameworks disagree on which one counts
    gw_refused(gw_get(gw, "/v1/eligibility/GWM0001?trading_partner_id=87726"
                          "&trading_partner_id=62308"),
               "query parameter 'trading_partner_id': given more than once")
    gw_refused(gw_get(gw, "/v1/eligibility/GWM0001?cache_control=CACHE_ONLY"
                          "&cache_control=BYPASS_CACHE"),
               "query parameter 'cache_control': given more than once")
    gw_refused(gw_get(gw, "/v1/eligibility/GWM0001?cache_control=CACHE_ONLY%00"),
               "query parameter 'cache_control': '%00' decodes to a control character")


def gw_post(gw, data):
    return requests.post(gw.url("http", "/v1/eligibility/check"), data=data,
                         headers={"Content-Type": "application/json"}, timeout=10)


def test_gateway_body_is_strict(gw):
    base = {"member": {"member_id": "GWM0001", "first_name": "Alice", "last_name": "Tester",
                       "date_of_birth": "1980-01-01"},
            "trading_partner_id": TP, "cache_control": "CACHE_ONLY"}
    ok = gw_post(gw, json.dumps(base))
    assert ok.status_code == 200 and ok.json()["copay_amount"] == 42, ok.text
    # cJSON cut "GWM0001\u0000X" to "GWM0001" and answered for that member
    b = json.loads(json.dumps(base))
    b["member"]["member_id"] = "GWM0001\u0000X"
    gw_refused(gw_post(gw, json.dumps(b)), "\\u0000 not allowed",
               "'member.member_id'")
    b["member"]["member_id"] = "GWM0001\u0001"
    gw_refused(gw_post(gw, json.dumps(b)),
               "field 'member.member_id': control character U+0001")
    dup = json.dumps(base).replace('"member_id": "GWM0001"',
                                   '"member_id": "GWM0001", "member_id": "OTHER"')
    gw_refused(gw_post(gw, dup), "duplicate key 'member_id' in the object at 'member'")
    gw_refused(gw_post(gw, json.dumps(base).encode().replace(b"Alice", b"Al\xffice")),
               "invalid UTF-8", "'member.first_name'")
    for dob, needle in (("1980-13-45", "not a calendar date (month 13)"),
                        ("19810229", "not a calendar date (1981-02 has no day 29)"),
                        ("1980/01/01", "expected YYYY-MM-DD or YYYYMMDD")):
        b = json.loads(json.dumps(base))
        b["member"]["date_of_birth"] = dob
        gw_refused(gw_post(gw, json.dumps(b)), "field 'member.date_of_birth'", needle)
