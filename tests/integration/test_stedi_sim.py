"""tools/stedi-sim, the in-memory Stedi stand-in, through its HTTP API.

Starts the real binary (no Redis, no Kafka) with a scaled clock so simulated
latencies of seconds and batch delays of minutes take milliseconds, and
checks: auth, shape validation naming the field, deterministic outcomes,
payer errors and downtime, the latency distribution (from X-Sim-Latency-Ms,
plus a real-time lower bound), the 15-slot limit, the batch lifecycle,
poll-batch pagination and gzip, batch validation, the signed completion
callback with retries, /_sim/stats and /_sim/reset, and a clean exit 0 on
SIGTERM (so an ASan build reports leaks through the exit code).
"""
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import http.server
import json
import signal
import threading
import time

import pytest
import requests

from conftest import Service, start_stedi_sim, stop_clean, wait_for

KEY = "test-key"
RT = "/2024-04-01/change/medicalnetwork/eligibility/v3"
BATCH = "/2024-04-01/eligibility-manager/batch-eligibility"
STATUS = "/2024-04-01/eligibility-manager/batch/"
POLL = "/2025-04-25/healthcare/eligibility/poll-batch"
AUTH = {"Authorization": f"Key {KEY}"}


def check(member="M1001", payer="62308", cn="123456789", sti=None):
    body = {"controlNumber": cn, "tradingPartnerServiceId": payer,
            "provider": {"organizationName": "Clinic", "npi": "1999999984"},
            "subscriber": {"memberId": member, "firstName": "Ann", "lastName": "Lee",
                           "dateOfBirth": "19800102"},
            "encounter": {"serviceTypeCodes": ["30"]}}
    if sti is not None:
        body["submitterTransactionIdentifier"] = sti
    return body


def start(workdir, **env):
    return start_stedi_sim(workdir, **env)


def post(sim, path, body, headers=AUTH, **kw):
    return requests.post(sim.url("http", path), json=body, headers=headers,
                         timeout=kw.pop("timeout", 30), **kw)


def get(sim, path, headers=AUTH, **kw):
    return requests.get(sim.url("http", path), headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def fast(workdir):
    s = start(workdir, RTE_CLOCK_START="2026-01-05T06:00:00Z", downtime="DOWNPAYER@05:00-12:00")
    yield s
    stop_clean(s)


def test_auth_and_validation(fast):
    r = post(fast, RT, check(), headers={})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    assert post(fast, RT, check(), headers={"Authorization": "Key nope"}).status_code == 401
    assert post(fast, RT, check(), headers={"Authorization": KEY}).status_code == 200
    assert post(fast, RT, check()).status_code == 200

    for path, mutate in [("subscriber.memberId", lambda b: b["subscriber"].pop("memberId")),
                         ("provider.npi", lambda b: b["provider"].pop("npi")),
                         ("controlNumber", lambda b: b.pop("controlNumber")),
                         ("encounter.serviceTypeCodes",
                          lambda b: b["encounter"].update(serviceTypeCodes=[])),
                         ("subscriber.dateOfBirth",
                          lambda b: b["subscriber"].update(dateOfBirth="1980-01-02"))]:
        b = check()
        mutate(b)
        r = post(fast, RT, b)
        assert r.status_code == 400, path
        assert r.json()["message"].startswith(path + ":"), r.json()
    r = requests.post(fast.url("http", RT), data=b"{not json", headers=AUTH, timeout=10)
    assert r.status_code == 400


def test_deterministic_outcome_and_shape(fast):
    a = post(fast, RT, check(member="M42", cn="000000001")).json()
    b = post(fast, RT, check(member="M42", cn="000000002")).json()
    assert a.pop("controlNumber") == "000000001" and b.pop("controlNumber") == "000000002"
    assert a == b
    assert a["subscriber"]["memberId"] == "M42"
    ps = a["planStatus"][0]
    assert ps["statusCode"] in ("1", "6") and ps["serviceTypeCodes"] == ["30"]
    assert len(a["planDateInformation"]["planBegin"]) == 8
    seen = set()
    for i in range(40):
        d = post(fast, RT, check(member=f"MX{i}")).json()
        status = d["planStatus"][0]["status"]
        copay = [x["benefitAmount"] for x in d["benefitsInformation"] if x["code"] == "B"]
        net = d["benefitsInformation"][0]["inPlanNetworkIndicatorCode"]
        if status == "Active Coverage":
            assert copay and int(copay[0]) in (0, 10, 20, 25, 30, 40, 50)
        seen.add((status, net))
    assert len(seen) >= 3  # outcomes vary across members


def test_downtime_window(fast):
    d = post(fast, RT, check(payer="DOWNPAYER")).json()
    assert d["errors"][0]["code"] == "42"
    assert d["errors"][0]["followupAction"] == "Please Retry Later"
    assert "errors" not in post(fast, RT, check(payer="OTHER")).json()


def test_error_rate(workdir):
    s = start(workdir, error_rate="1")
    try:
        statuses = set()
        for i in range(30):
            r = post(s, RT, check(member=f"E{i}"))
            if r.status_code == 200:
                assert r.json()["errors"][0]["code"] == "42"
            statuses.add(r.status_code)
        assert statuses == {200, 502, 503}
        assert get(s, "/_sim/stats").json()["realtime_errors"] == 30
    finally:
        stop_clean(s)


def test_latency_distribution(workdir):
    s = start(workdir, RTE_CLOCK_SCALE="100", latency_p50="4s", latency_p95="12s")
    try:
        def one(i):
            t0 = time.monotonic()
            r = post(s, RT, check(member=f"L{i}"))
            return r.status_code, int(r.headers["x-sim-latency-ms"]), (time.monotonic() - t0) * 1000

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            res = list(ex.map(one, range(240)))
        assert all(st == 200 for st, _, _ in res)
        lat = sorted(x for _, x, _ in res)
        p50 = lat[len(lat) // 2]
        p95 = lat[int(len(lat) * 0.95)]
        assert 3600 <= p50 <= 4400, p50
        assert 10800 <= p95 <= 13200, p95
        assert max(lat) <= 120000
        for _, x, real in res:
            assert real >= x / 100 - 1, (x, real)
    finally:
        stop_clean(s)


def test_concurrency_limit_and_stats(workdir):
    s = start(workdir, RTE_CLOCK_SCALE="100", latency_p50="150s", latency_p95="150s",
              latency_max="150s")
    try:
        barrier = threading.Barrier(20)

        def one(i):
            barrier.wait()
            return post(s, RT, check(member=f"C{i}"))

        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            res = list(ex.map(one, range(20)))
        codes = [r.status_code for r in res]
        assert codes.count(429) >= 5 and codes.count(200) <= 15, codes
        assert codes.count(200) + codes.count(429) == 20
        assert next(r for r in res if r.status_code == 429).json()["code"] == "TOO_MANY_REQUESTS"
        st = get(s, "/_sim/stats").json()
        assert st["max_in_flight"] == 15
        assert st["realtime_429"] == codes.count(429)
        assert st["realtime_calls"] == codes.count(200)
        wait_for(lambda: get(s, "/_sim/stats").json()["in_flight"] == 0, timeout=10,
                 what="in_flight back to 0")
        r = requests.post(s.url("http", "/_sim/reset"), timeout=10)
        assert r.status_code == 200
        st = get(s, "/_sim/stats").json()
        assert st["realtime_calls"] == 0 and st["realtime_429"] == 0 and st["max_in_flight"] == 0
    finally:
        stop_clean(s)


def submit(sim, n, prefix="T", **extra):
    items = [check(member=f"{prefix}M{i}", sti=f"{prefix}{i}") for i in range(n)]
    return post(sim, BATCH, dict(items=items, **extra))


def wait_completed(sim, batch_id, timeout=20):
    return wait_for(lambda: (lambda d: d if d["status"] == "COMPLETED" else None)(
        get(sim, STATUS + batch_id).json()), timeout=timeout, what="batch COMPLETED")


@pytest.fixture(scope="module")
def done_batch(fast):
    r = submit(fast, 50, name="lifecycle", maxRetryHours=12)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["status"] == "PENDING" and len(d["batchId"]) == 36 and d["totalCount"] == 50
    return d["batchId"]


def test_batch_lifecycle(fast, done_batch):
    first = get(fast, STATUS + done_batch).json()
    assert first["status"] in ("PENDING", "IN_PROGRESS", "COMPLETED")
    st = wait_completed(fast, done_batch)
    assert st["totalCount"] == 50 and st["pendingCount"] == 0
    assert st["successCount"] + st["errorCount"] == 50
    assert st["completedAt"] >= st["submittedAt"]
    items = get(fast, STATUS + done_batch + "/items").json()["items"]
    assert len(items) == 50 and all(i["status"] == "COMPLETED" for i in items)
    assert get(fast, STATUS + "00000000-0000-4000-8000-000000000000").status_code == 404
    assert get(fast, STATUS + done_batch, headers={}).status_code == 401


def test_poll_pagination_and_gzip(fast, done_batch):
    wait_completed(fast, done_batch)
    seen, token, pages = [], None, 0
    while True:
        q = {"batchId": done_batch, "pageSize": 7}
        if token:
            q["pageToken"] = token
        r = get(fast, POLL, params=q)
        assert r.status_code == 200, r.text
        d = r.json()
        pages += 1
        assert len(d["items"]) <= 7
        for it in d["items"]:
            assert it["status"] == "COMPLETED" and it["batchId"] == done_batch
            assert "planStatus" in it["response"] or "errors" in it["response"]
            seen.append(it["submitterTransactionIdentifier"])
        token = d.get("nextPageToken")
        if not token:
            break
    assert pages == 8
    assert len(seen) == len(set(seen)) == 50
    assert set(seen) == {f"T{i}" for i in range(50)}
    # tokens are stable: the same token gives the same page
    q = {"batchId": done_batch, "pageSize": 7}
    t1 = get(fast, POLL, params=q).json()["nextPageToken"]
    a = get(fast, POLL, params=dict(q, pageToken=t1)).json()
    b = get(fast, POLL, params=dict(q, pageToken=t1)).json()
    assert a == b

    assert get(fast, POLL, params={"batchId": done_batch, "pageSize": 201}).status_code == 400
    assert get(fast, POLL, params={"batchId": done_batch, "pageSize": 0}).status_code == 400
    assert get(fast, POLL, params={"batchId": done_batch, "pageToken": "zz"}).status_code == 400
    r = get(fast, POLL, params={"batchId": done_batch, "pageSize": 30},
            headers=dict(AUTH, **{"Accept-Encoding": "gzip"}))
    assert r.headers.get("content-encoding") == "gzip"
    assert len(r.json()["items"]) == 30
    r = get(fast, POLL, params={"batchId": done_batch, "pageSize": 20},
            headers=dict(AUTH, **{"Accept-Encoding": "gzip"}))
    assert "content-encoding" not in r.headers and len(r.json()["items"]) == 20
    r = get(fast, POLL, params={"batchId": done_batch, "pageSize": 30},
            headers=dict(AUTH, **{"Accept-Encoding": "identity"}))
    assert "content-encoding" not in r.headers and len(r.json()["items"]) == 30
    r = get(fast, POLL, params={"batchId": done_batch})
    assert len(r.json()["items"]) == 50 and "nextPageToken" not in r.json()


def test_poll_parameters_that_cannot_be_read_are_400(fast, done_batch):
    """A pageToken that does not decode must not restart the reader at the
    first result, nor a repeated pageSize pick one: each is 400 naming it."""
    wait_completed(fast, done_batch)
    for query, name in ((f"batchId={done_batch}&pageToken=%ZZ", "pageToken"),
                        (f"batchId={done_batch}&pageToken=ab%", "pageToken"),
                        (f"batchId={done_batch}&pageSize=7&pageSize=7", "pageSize"),
                        (f"batchId={done_batch}&pageSize=%007", "pageSize"),
                        (f"batchId={done_batch}&batchId={done_batch}", "batchId"),
                        ("batchId=%ZZ", "batchId")):
        c = http.client.HTTPConnection("127.0.0.1", fast.ports["http"], timeout=10)
        c.request("GET", f"{POLL}?{query}", headers=AUTH)
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        assert r.status == 400, (query, r.status, body)
        assert f"'{name}'" in body["message"], (query, body)


def test_batch_validation(fast):
    items = [check(member=f"V{i}", sti=f"V{i}") for i in range(30)]
    del items[17]["subscriber"]["memberId"]
    r = post(fast, BATCH, {"items": items})
    assert r.status_code == 400 and r.json()["message"] == "items[17].subscriber.memberId: missing"
    items = [check(member="V1", sti="V1"), check(member="V2")]
    r = post(fast, BATCH, {"items": items})
    assert r.json()["message"] == "items[1].submitterTransactionIdentifier: missing"
    assert post(fast, BATCH, {"items": []}).status_code == 400
    assert post(fast, BATCH, {"items": [check(sti="x")], "maxRetryHours": 2}).status_code == 400
    one = check(sti="x")
    r = post(fast, BATCH, {"items": [one] * 10001})
    assert r.status_code == 400 and "10000" in r.json()["message"]
    r = post(fast, BATCH, {"items": [one] * 10000}, timeout=60)
    assert r.status_code == 200


class Recorder(http.server.BaseHTTPRequestHandler):
    calls = []
    fail_first = 1

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.calls.append((dict(self.headers), body))
        code = 500 if len(Recorder.calls) <= Recorder.fail_first else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_callback_signed_with_retry_and_clean_exit(workdir):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    s = start(workdir, batch_min_delay="1s", batch_max_delay="30s", callback_secret="sekrit")
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        r = submit(s, 5, prefix="CB", callback_url=url)
        assert r.status_code == 200
        batch_id = r.json()["batchId"]
        wait_for(lambda: len(Recorder.calls) >= 2, timeout=20, what="callback retried")
        st = wait_for(lambda: (lambda d: d if d["callbacks_sent"] == 1 else None)(
            get(s, "/_sim/stats").json()), timeout=10, what="callback counted")
        assert st["callbacks_failed"] == 1
        assert st["batches"] == 1 and st["batch_items"] == 5
        headers, body = Recorder.calls[1]
        h = {k.lower(): v for k, v in headers.items()}
        want = hmac.new(b"sekrit", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(h["x-webhook-signature"], want)
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        mac = base64.b64encode(hmac.new(b"sekrit", signed, hashlib.sha256).digest()).decode()
        assert h["webhook-signature"] == "v1," + mac
        assert abs(int(h["webhook-timestamp"]) - time.time()) < 60
        assert len(h["webhook-id"]) == 36
        doc = json.loads(body)
        assert doc["batch_id"] == batch_id and doc["status"] == "completed"
        assert sorted(x["check_id"] for x in doc["results"]) == [f"CB{i}" for i in range(5)]
        for x in doc["results"]:
            if x["status"] == "completed":
                e = x["eligibility"]
                assert isinstance(e["eligible"], bool)
                assert e["network_status"] in ("in_network", "out_of_network")
                assert len(e["coverage_start"]) == 10
        assert get(s, STATUS + batch_id).json()["status"] == "COMPLETED"
        time.sleep(0.3)
        assert len(Recorder.calls) == 2  # no more after a 2xx
    finally:
        srv.shutdown()
        stop_clean(s)
