"""tools/stedi-sim, the in-memory Stedi stand-in, through its HTTP APIs.

Starts the real binary (no Redis, no Kafka) with a scaled clock so simulated
latencies of seconds and batch delays of minutes take milliseconds, and
checks what Stedi documents: Authorization (bare key or "Key <key>"; 403,
or 401 for a missing key on the manager API), request checks naming each
field in Stedi's ValidationException shape, the member classes of
docs/stedi-sim.md (benefit structures, date forms, planStatus or not, AAA 75
over 200, AAA 44 over 400), an unknown payer (400, code 33), downtime
(AAA 42), injected failures (503/504), the latency distribution, the
15-call limit (429), the batch lifecycle through every documented status,
item states, retries across downtime, the items list with its filters,
polling (flat items, ERROR items, tokens, the whole account, startDateTime,
gzip above 20), batch validation (limits, unique names: 409), the two hosts
on two ports, the signed completion callback, /_sim/stats and /_sim/reset,
and a clean exit 0 on SIGTERM (so an ASan build reports leaks).

Schema conformance against Stedi's OpenAPI files is test_stedi_sim_openapi.py.
"""
import base64
import concurrent.futures
import gzip
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import Service, bin_path, start_stedi_sim, stop_clean, wait_for

KEY = "test-key"
RT = "/2024-04-01/change/medicalnetwork/eligibility/v3"
BATCH = "/2024-04-01/eligibility-manager/batch-eligibility"
STATUS = "/2024-04-01/eligibility-manager/batch/"
POLL = "/2024-04-01/eligibility-manager/polling/batch-eligibility"
AUTH = {"Authorization": KEY}
COPAYS = [0, 10, 20, 25, 30, 40, 50]


def member(cls, v=1):
    """A member id whose trailing number n has n % 20 == cls and n // 20 == v."""
    return f"M{v * 20 + cls:09d}"


def check(member_id="M000001001", payer="62308", cn="123456789", sti=None):
    body = {"controlNumber": cn, "tradingPartnerServiceId": payer,
            "provider": {"organizationName": "Clinic", "npi": "1999999984"},
            "subscriber": {"memberId": member_id, "firstName": "Ann", "lastName": "Lee",
                           "dateOfBirth": "19800102"},
            "encounter": {"serviceTypeCodes": ["30"]}}
    if cn is None:
        del body["controlNumber"]
    if sti is not None:
        body["submitterTransactionIdentifier"] = sti
    return body


def post(sim, path, body, headers=AUTH, port="http", **kw):
    return requests.post(sim.url(port, path), json=body, headers=headers,
                         timeout=kw.pop("timeout", 30), **kw)


def get(sim, path, headers=AUTH, port="http", **kw):
    return requests.get(sim.url(port, path), headers=headers, timeout=30, **kw)


PER_CALL = ("id", "eligibilitySearchId", "meta", "controlNumber", "reassociationKey")


def stable(doc):
    """The answer without what Stedi makes up per call."""
    return {k: v for k, v in doc.items() if k not in PER_CALL}


@pytest.fixture(scope="module")
def fast(workdir):
    s = start_stedi_sim(workdir, RTE_CLOCK_START="2026-01-05T06:00:00Z",
                        downtime="DOWNPAYER@05:00-12:00", latency_p50="1s", latency_p95="2s")
    yield s
    stop_clean(s)


def test_authorization_forms(fast):
    assert post(fast, RT, check(), headers={"Authorization": KEY}).status_code == 200
    assert post(fast, RT, check(), headers={"Authorization": f"Key {KEY}"}).status_code == 200
    for h in ({}, {"Authorization": "nope"}, {"Authorization": "Key nope"},
              {"Authorization": f"Bearer {KEY}"}):
        r = post(fast, RT, check(), headers=h)
        assert r.status_code == 403, (h, r.status_code)  # the healthcare API documents 403 only
        assert r.json()["message"]
    r = post(fast, BATCH, {"items": [check(sti="a")]}, headers={})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    assert post(fast, BATCH, {"items": [check(sti="a")]},
                headers={"Authorization": "nope"}).status_code == 403
    assert get(fast, POLL, headers={"Authorization": "Key nope"}).status_code == 403
    assert get(fast, STATUS + "x", headers={}).status_code == 401


def invalid(r):
    assert r.status_code == 400, r.text
    d = r.json()
    assert set(d) == {"message", "fieldList"}, d  # Stedi's ValidationException
    return d


@pytest.mark.parametrize("pointer,mutate,why", [
    ("/subscriber", lambda b: b.pop("subscriber"), "missing"),
    ("/tradingPartnerServiceId", lambda b: b.pop("tradingPartnerServiceId"), "missing"),
    ("/subscriber/memberId", lambda b: b["subscriber"].update(memberId="M1@2"),
     "must hold only letters A-Z, a-z, digits, '-' and spaces"),
    ("/subscriber/memberId", lambda b: b["subscriber"].update(memberId="M" + "1" * 80),
     "must be 2..80 characters (got 81)"),
    ("/subscriber/memberId", lambda b: b["subscriber"].update(memberId="M"),
     "must be 2..80 characters (got 1)"),
    ("/subscriber/firstName", lambda b: b["subscriber"].update(firstName="A" * 36),
     "must be 1..35 characters (got 36)"),
    ("/subscriber/lastName", lambda b: b["subscriber"].update(lastName="É" * 61),
     "must be 1..60 characters (got 61)"),
    ("/subscriber/dateOfBirth", lambda b: b["subscriber"].update(dateOfBirth="1980-01-02"),
     "must be a date as YYYYMMDD"),
    ("/subscriber/dateOfBirth", lambda b: b["subscriber"].update(dateOfBirth="19801302"),
     "must be a date as YYYYMMDD"),
    ("/subscriber/gender", lambda b: b["subscriber"].update(gender="X"),
     "'X' is not one of the codes Stedi accepts here"),
    ("/provider/npi", lambda b: b["provider"].update(npi="199999998"),
     "must be exactly 10 digits"),
    ("/provider/organizationName", lambda b: b["provider"].update(organizationName="C" * 61),
     "must be 1..60 characters (got 61)"),
    ("/provider/address/city", lambda b: b["provider"].update(address={"address1": "1 Main"}),
     "missing"),
    ("/encounter/serviceTypeCodes", lambda b: b["encounter"].update(serviceTypeCodes=[]),
     "must hold 1..99 items (got 0)"),
    ("/encounter/serviceTypeCodes/1",
     lambda b: b["encounter"].update(serviceTypeCodes=["30", "ZZ"]),
     "'ZZ' is not one of the codes Stedi accepts here"),
    ("/controlNumber", lambda b: b.update(controlNumber="12345"), "must be 9 characters (got 5)"),
    ("/controlNumber", lambda b: b.update(controlNumber=123456789), "must be a string"),
    ("/dependents", lambda b: b.update(dependents=[{"firstName": "A"}, {"firstName": "B"}]),
     "must hold 1..1 items (got 2)"),
    # rules the schema states in its descriptions
    ("/provider/organizationName", lambda b: b["provider"].pop("organizationName"),
     "missing (an individual provider gives firstName and lastName instead)"),
    ("/provider/npi", lambda b: b["provider"].pop("npi"),
     "missing (a provider without an NPI gives taxId or ssn instead)"),
    ("/subscriber", lambda b: b.update(subscriber={"firstName": "Ann"}),
     "needs at least one of memberId, dateOfBirth, lastName"),
])
def test_invalid_requests_name_the_field(fast, pointer, mutate, why):
    b = check()
    mutate(b)
    d = invalid(post(fast, RT, b))
    dotted = pointer[1:].replace("/", ".")
    dotted = ".".join(p if not p.isdigit() else f"[{p}]" for p in dotted.split(".")).replace(".[",
                                                                                           "[")
    assert d["message"] == f"{dotted}: {why}", d
    assert d["fieldList"] == [{"path": pointer, "message": d["message"]}]


def test_invalid_request_lists_every_field_and_json_errors(fast):
    b = check()
    b["subscriber"]["memberId"] = "#"
    b["provider"]["npi"] = "12"
    del b["tradingPartnerServiceId"]
    d = invalid(post(fast, RT, b))
    assert d["message"].endswith("(and 2 more)")
    assert sorted(f["path"] for f in d["fieldList"]) == [
        "/provider/npi", "/subscriber/memberId", "/tradingPartnerServiceId"]
    r = requests.post(fast.url("http", RT), data=b"{not json", headers=AUTH, timeout=10)
    assert invalid(r)["fieldList"][0]["path"] == "/"
    assert invalid(post(fast, RT, [check()]))["message"] == "(request): must be a JSON object"


def test_what_stedi_accepts_is_accepted(fast):
    b = check(cn=None)  # Stedi makes the control number up
    del b["encounter"]  # serviceTypeCodes default to 30
    b["subscriber"]["memberId"] = "AB-12 34"
    d = post(fast, RT, b).json()
    assert len(d["controlNumber"]) == 9 and d["controlNumber"].isdigit()
    assert d["reassociationKey"] == d["controlNumber"]
    # characters beyond ASCII are characters, and come back intact
    b = check(cn="ÉÉÉÉÉÉÉÉÉ")
    b["subscriber"]["firstName"] = "Zoë" + "é" * 32
    b["provider"]["organizationName"] = "Clínica " + "ñ" * 52
    d = post(fast, RT, b).json()
    assert d["controlNumber"] == "ÉÉÉÉÉÉÉÉÉ" and d["subscriber"]["firstName"] == "ZOë" + "é" * 32
    assert d["provider"]["providerName"] == "CLíNICA " + "ñ" * 52
    r = requests.post(fast.url("http", RT), data=json.dumps(check()).encode().replace(
        b"Ann", b"A\xffn"), headers=AUTH, timeout=10)
    assert invalid(r)["message"] == "(request): the body is not valid JSON (UTF-8)"
    # an individual provider, no member id (found by demographics)
    b = check()
    b["provider"] = {"firstName": "Jo", "lastName": "Ray", "npi": "1999999984"}
    del b["subscriber"]["memberId"]
    a1, a2 = post(fast, RT, b), post(fast, RT, b)
    assert a1.status_code == a2.status_code and stable(a1.json()) == stable(a2.json())
    prov = a1.json()["provider"]
    assert (prov["entityType"], prov["providerName"], prov["providerFirstName"], prov["npi"]) == \
        ("Person", "RAY", "JO", "1999999984")


def rows(d, code=None, stc=None, net=None):
    return [b for b in d.get("benefitsInformation", [])
            if (code is None or b["code"] == code) and
            (stc is None or stc in b.get("serviceTypeCodes", [])) and
            (net is None or b.get("inPlanNetworkIndicatorCode") == net)]


# docs/stedi-sim.md, "Members": class -> (status, kind, planDateInformation keys, planStatus)
CLASSES = {
    0: (200, "inactive", {"planBegin", "planEnd"}, True),
    1: (200, "active", {"plan"}, True),
    2: (200, "active", {"plan"}, False),
    3: (200, "active", {"planBegin"}, True),
    4: (200, "active", {"eligibilityBegin", "eligibilityEnd"}, False),
    5: (200, "AAA 75", {"plan"}, False),
    6: (200, "active", {"planBegin", "plan"}, True),
    7: (200, "active", {"planBegin", "planEnd"}, False),
    8: (200, "active", {"eligibilityBegin", "planBegin", "planEnd"}, True),
    9: (200, "inactive", {"eligibilityBegin", "eligibilityEnd"}, False),
    10: (200, "active", {"plan"}, True),
    11: (200, "active", {"plan"}, False),
    12: (200, "active", {"planBegin"}, False),
    13: (200, "active", {"planBegin", "planEnd"}, True),
    14: (200, "active", {"planBegin"}, True),
    15: (400, "AAA 44", {"plan"}, False),
    16: (200, "active", {"eligibilityBegin", "eligibilityEnd"}, False),
    17: (200, "active", {"eligibilityBegin", "planBegin", "planEnd"}, False),
    18: (200, "active", {"plan"}, True),
    19: (200, "inactive", {"plan"}, False),
}


def test_member_classes_follow_the_documented_table(fast):
    year = "2026"  # the fixture's simulated date is 2026-01-05
    for cls, (status, kind, dates, has_ps) in CLASSES.items():
        for v in (0, 3):
            mid = member(cls, v)
            r = post(fast, RT, check(member_id=mid, payer="87726"))
            assert r.status_code == status, (cls, r.text)
            d = r.json()
            assert d["subscriber"]["memberId"] == mid and d["tradingPartnerServiceId"] == "87726"
            assert d["payer"]["name"] == "UNITEDHEALTHCARE"
            assert set(d["planDateInformation"]) == dates, (cls, d["planDateInformation"])
            assert ("planStatus" in d) == has_ps, cls
            assert stable(post(fast, RT, check(member_id=mid, payer="87726")).json()) == stable(d)
            if kind.startswith("AAA"):
                code = kind.split()[1]
                assert [e["code"] for e in d["errors"]] == [code]
                owner = "subscriber" if code == "75" else "provider"
                assert d[owner]["aaaErrors"][0]["code"] == code
                assert "benefitsInformation" not in d
                continue
            assert d["errors"] == []
            cov = rows(d, stc="30")[0]
            assert cov["code"] == ("1" if kind == "active" else "6"), cls
            if has_ps:
                assert d["planStatus"][0]["statusCode"] == cov["code"]
            pdi = d["planDateInformation"]
            if kind == "active" and "plan" in pdi:
                assert pdi["plan"] == f"{year}0101-{year}1231"
            if kind == "inactive":  # coverage ended before the simulated today
                end = pdi.get("planEnd") or pdi.get("eligibilityEnd") or pdi["plan"][-8:]
                assert end < "20260105", (cls, pdi)


def test_benefit_structures_vary_as_documented(fast):
    def answer(cls, v=1):
        return post(fast, RT, check(member_id=member(cls, v))).json()
    for v in range(7):  # the office co-payment follows (n // 20) % 7
        assert rows(answer(1, v), "B", "98", "Y")[0]["benefitAmount"] == str(COPAYS[v])
    d = answer(2)  # in- and out-of-network rows side by side
    assert rows(d, "B", "98", "Y") and rows(d, "B", "98", "N")
    assert rows(d, "C", net="Y") and rows(d, "C", net="N")
    d = answer(3)  # several service types
    assert {s for b in rows(d, "B") for s in b["serviceTypeCodes"]} >= {"98", "UC", "86", "MH"}
    assert rows(d, "I", "AL") and len(d["planStatus"]) == 2
    d = answer(6)  # co-insurance only
    assert not rows(d, "B") and rows(d, "A", net="Y")[0]["benefitPercent"] == "0.2"
    d = answer(7)  # out of network only
    assert {b.get("inPlanNetworkIndicatorCode") for b in rows(d)[1:]} == {"N"}
    assert "out of network" in rows(d, "1")[0]["additionalInformation"][0]["description"]
    d = answer(12)  # the payer does not say
    assert rows(d, "B", "98", "W") and rows(d, "A", net="U")
    d = answer(10)  # like Stedi's example: family accumulators, psychotherapy, a facility row
    assert rows(d, "G", net="N")[0]["coverageLevelCode"] == "FAM"
    assert rows(d, "1", "A6") and rows(d, "X")
    # no trailing digits: a hash picks the class, still the same every time
    a = post(fast, RT, check(member_id="ABCDEF")).json()
    assert stable(a) == stable(post(fast, RT, check(member_id="ABCDEF")).json())


def test_payer_errors_unknown_payer_and_downtime(fast):
    requests.post(fast.url("http", "/_sim/reset"), timeout=10)
    r = post(fast, RT, check(payer="FOO"))
    assert r.status_code == 400
    d = r.json()
    assert d["status"] == "ERROR" and d["tradingPartnerServiceId"] == "FOO"
    assert d["errors"][0]["code"] == "33" and "FOO is not configured" in d["errors"][0][
        "description"]
    d = post(fast, RT, check(payer="DOWNPAYER")).json()
    assert d["errors"][0]["code"] == "42"
    assert d["errors"][0]["followupAction"] == "Resubmission Allowed"
    assert d["payer"]["aaaErrors"][0]["code"] == "42" and "benefitsInformation" not in d
    assert post(fast, RT, check(payer="OTHER")).json()["errors"] == []
    st = get(fast, "/_sim/stats").json()
    assert st["realtime_errors"] == 2 and st["realtime_calls"] == 2  # FOO is answered unadmitted


def test_error_rate(workdir):
    s = start_stedi_sim(workdir, error_rate="1")
    try:
        statuses = set()
        for i in range(30):
            r = post(s, RT, check(member_id=member(1, i)))
            if r.status_code == 200:
                assert r.json()["errors"][0]["code"] == "42"
            else:
                assert r.json()["code"] in ("SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT")
            statuses.add(r.status_code)
        assert statuses == {200, 503, 504}
        assert get(s, "/_sim/stats").json()["realtime_errors"] == 30
    finally:
        stop_clean(s)


def test_latency_distribution(workdir):
    s = start_stedi_sim(workdir, RTE_CLOCK_SCALE="100", latency_p50="4s", latency_p95="12s")
    try:
        def one(i):
            t0 = time.monotonic()
            r = post(s, RT, check(member_id=member(1, i)))
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
    s = start_stedi_sim(workdir, RTE_CLOCK_SCALE="100", latency_p50="150s", latency_p95="150s",
                        latency_max="150s")
    try:
        barrier = threading.Barrier(20)

        def one(i):
            barrier.wait()
            return post(s, RT, check(member_id=member(1, i)))

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


def items_for(n, prefix="T", payer="62308"):
    return [check(member_id=f"{prefix}{i}", payer=payer, sti=f"{prefix}{i}") for i in range(n)]


def submit(sim, items, port="http", **extra):
    r = post(sim, BATCH, dict(items=items, **extra), port=port)
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {"batchId", "submittedAt"}, d
    return d["batchId"]


def status_of(sim, batch_id, port="http"):
    return get(sim, STATUS + batch_id, port=port).json()


def wait_final(sim, batch_id, timeout=30, port="http"):
    return wait_for(lambda: (lambda d: d if d["status"].startswith("COMPLETED") else None)(
        status_of(sim, batch_id, port)), timeout=timeout, what="batch finished")


def test_batch_lifecycle_through_every_status(workdir):
    # real time (scale 1): validated after 1 s, items complete 2..5 s after submission
    s = start_stedi_sim(workdir, RTE_CLOCK_SCALE="1", batch_min_delay="2s", batch_max_delay="5s",
                        error_rate="0.3")
    try:
        items = items_for(20, "L") + [check(member_id="L99", payer="FOO", sti="L99")]
        t0 = time.monotonic()
        bid = submit(s, items, name="lifecycle-1", maxRetryHours=12)
        seen_status, seen_states, docs = [], set(), []
        while time.monotonic() - t0 < 20:
            d = status_of(s, bid)
            docs.append(d)
            if not seen_status or seen_status[-1] != d["status"]:
                seen_status.append(d["status"])
            for it in get(s, STATUS + bid + "/items").json()["items"]:
                seen_states.add(it["state"])
            if d["status"].startswith("COMPLETED"):
                break
            time.sleep(0.05)
        assert seen_status == ["PENDING", "VALIDATED", "IN_PROGRESS", "COMPLETED_WITH_ERRORS"], \
            seen_status
        assert seen_states == {"PENDING", "VALIDATED", "STARTED", "RETRYING", "COMPLETED",
                               "COMPLETED_WITH_ERRORS"}, seen_states
        final = docs[-1]
        assert final["id"] == bid and final["name"] == "lifecycle-1" and final["source"] == "API"
        assert final["batchType"] == "ELIGIBILITY" and final["maxRetryHours"] == 12
        assert final["totalCount"] == 21 and final["inProgressCount"] == 0
        assert final["successCount"] + final["errorCount"] == 21 and final["errorCount"] >= 2
        assert final["updatedAt"] >= final["createdAt"]
        assert "pendingCount" not in final and "batchId" not in final
        assert all(a["updatedAt"] <= b["updatedAt"] for a, b in zip(docs, docs[1:]))
        failed = get(s, STATUS + bid + "/items",
                     params={"state": "COMPLETED_WITH_ERRORS"}).json()["items"]
        assert len(failed) == final["errorCount"]
        assert "L99" in [f["additionalInfo"]["eligibility"]["submitterTransactionIdentifier"]
                         for f in failed]
    finally:
        stop_clean(s)


def test_batch_completes_cleanly_and_unknown_batch(fast):
    bid = submit(fast, [check(member_id=member(c), sti=f"c{c}") for c in (1, 2, 5, 15)])
    final = wait_final(fast, bid)
    assert final["status"] == "COMPLETED" and final["successCount"] == 4  # rejections included
    assert final["errorCount"] == 0 and final["name"] == bid  # no name given: the batchId
    r = get(fast, STATUS + "00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["message"]
    assert get(fast, STATUS + bid + "/nope").status_code == 404


def test_batch_items_retry_across_downtime(workdir):
    # SHORTDOWN comes back within maxRetryHours (8): retried, then answered; LONGDOWN does not
    # (the clock runs 10,000 times real time: the windows leave start-up 2 s of slack)
    s = start_stedi_sim(workdir, RTE_CLOCK_SCALE="10000", RTE_CLOCK_START="2026-01-05T04:00:00Z",
                        downtime="SHORTDOWN@04:00-10:00,LONGDOWN@04:00-23:59",
                        batch_min_delay="90s", batch_max_delay="120s")
    try:
        items = (items_for(3, "S", payer="SHORTDOWN") + items_for(3, "G", payer="LONGDOWN") +
                 items_for(3, "U", payer="62308"))
        bid = submit(s, items)
        wait_for(lambda: any(i["state"] == "RETRYING" for i in
                             get(s, STATUS + bid + "/items").json()["items"]),
                 timeout=10, interval=0.01, what="an item retrying")
        final = wait_final(s, bid, timeout=20)
        assert final["status"] == "COMPLETED_WITH_ERRORS" and final["errorCount"] == 3
        page = get(s, POLL, params={"batchId": bid}).json()["items"]
        by = {i["submitterTransactionIdentifier"]: i for i in page}
        assert len(by) == 9
        for k in ("S0", "S1", "S2", "U0"):
            assert "status" not in by[k] and by[k]["errors"] == [], by[k]
        for k in ("G0", "G1", "G2"):
            assert by[k]["status"] == "ERROR" and by[k]["errors"][0]["code"] == "42"
            assert "8 hours" in by[k]["errors"][0]["possibleResolutions"]
        # order: the retried items completed at 10:00, after the undisturbed ones
        order = [i["submitterTransactionIdentifier"][0] for i in page]
        assert order.index("S") > max(i for i, c in enumerate(order) if c == "U")
        assert order[-3:] == ["G", "G", "G"]
    finally:
        stop_clean(s)


@pytest.fixture(scope="module")
def done_batch(fast):
    items = items_for(48, "P") + [check(member_id=f"F{i}", payer="FOO", sti=f"F{i}")
                                  for i in range(2)]
    bid = submit(fast, items, name="poll-fixture")
    wait_final(fast, bid)
    return bid


def test_items_pages_and_filters(fast, done_batch):
    seen, token = [], None
    while True:
        q = {"pageSize": 7}
        if token:
            q["pageToken"] = token
        d = get(fast, STATUS + done_batch + "/items", params=q).json()
        assert len(d["items"]) <= 7
        seen += [i["index"] for i in d["items"]]
        token = d.get("nextPageToken")
        if not token:
            break
    assert seen == list(range(50))
    d = get(fast, STATUS + done_batch + "/items", params={"pageSize": 1000}).json()
    it = d["items"][0]
    e = it["additionalInfo"]["eligibility"]
    assert it["batchId"] == done_batch and it["state"] == "COMPLETED"
    assert e["submitterTransactionIdentifier"] == "P0" and e["subscriberMemberId"] == "P0"
    assert e["payerId"] == "62308" and e["providerNpi"] == "1999999984"
    # P5/P25/P45 are class 5 (AAA 75), P15/P35 class 15 (AAA 44): answered, but FAILED
    failed = get(fast, STATUS + done_batch + "/items",
                 params={"eligibilityCheckResult": "FAILED", "pageSize": 100}).json()["items"]
    ids = sorted(i["additionalInfo"]["eligibility"]["submitterTransactionIdentifier"]
                 for i in failed)
    assert ids == ["F0", "F1", "P15", "P25", "P35", "P45", "P5"]
    assert {i["state"] for i in failed} == {"COMPLETED", "COMPLETED_WITH_ERRORS"}
    assert all(i["additionalInfo"]["eligibility"]["aaaErrors"] for i in failed)
    both = get(fast, STATUS + done_batch + "/items",
               params=[("state", "COMPLETED_WITH_ERRORS"), ("state", "PENDING")]).json()["items"]
    assert len(both) == 2
    inactive = get(fast, STATUS + done_batch + "/items",
                   params={"eligibilityCheckResult": "INACTIVE"}).json()["items"]
    assert sorted(i["index"] for i in inactive) == [0, 9, 19, 20, 29, 39, 40]
    for bad in ({"state": "DONE"}, {"pageSize": 1001}, {"pageSize": 0}, {"pageToken": "zz"},
                {"eligibilityCheckResult": "MAYBE"}):
        assert invalid(get(fast, STATUS + done_batch + "/items", params=bad))["fieldList"]


def test_poll_pages_are_flat_answers(fast, done_batch):
    seen, token, pages = [], None, 0
    while True:
        q = {"batchId": done_batch, "pageSize": 7}
        if token:
            q["pageToken"] = token
        r = get(fast, POLL, params=q)
        assert r.status_code == 200, r.text
        assert "content-encoding" not in r.headers  # 20 or fewer: plain JSON
        d = r.json()
        pages += 1
        assert len(d["items"]) <= 7
        for it in d["items"]:
            assert it["batchId"] == done_batch and it["batchName"] == "poll-fixture"
            assert "response" not in it and "memberId" not in it  # flat, like Stedi's
            if it["tradingPartnerServiceId"] == "FOO":
                assert it["status"] == "ERROR" and it["errors"][0]["code"] == "79"
                assert "benefitsInformation" not in it
            else:
                assert it["subscriber"]["memberId"] == it["submitterTransactionIdentifier"]
                assert "status" not in it
            seen.append(it["submitterTransactionIdentifier"])
        token = d.get("nextPageToken")
        if not token:
            break
    assert pages == 8
    assert sorted(seen) == sorted([f"P{i}" for i in range(48)] + ["F0", "F1"])
    # the same token gives the same page, byte for byte
    q = {"batchId": done_batch, "pageSize": 7}
    t1 = get(fast, POLL, params=q).json()["nextPageToken"]
    a = get(fast, POLL, params=dict(q, pageToken=t1))
    assert a.content == get(fast, POLL, params=dict(q, pageToken=t1)).content
    # default page size is 10
    d = get(fast, POLL, params={"batchId": done_batch}).json()
    assert len(d["items"]) == 10 and "nextPageToken" in d


def test_poll_gzip_above_20(fast, done_batch):
    q = {"batchId": done_batch, "pageSize": 30}
    r = requests.get(fast.url("http", POLL), params=q, timeout=30, stream=True,
                     headers=dict(AUTH, **{"Accept-Encoding": "gzip"}))
    raw = r.raw.read()
    assert r.headers["content-encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(raw))["items"]) == 30
    for ae in ("identity", "gzip;q=0", "br", "*;q=0"):
        d = invalid(get(fast, POLL, params=q, headers=dict(AUTH, **{"Accept-Encoding": ae})))
        assert d["fieldList"][0]["path"] == "/pageSize" and "gzip" in d["message"]
    r = get(fast, POLL, params=q, headers=dict(AUTH, **{"Accept-Encoding": "deflate, *"}))
    assert r.headers["content-encoding"] == "gzip" and len(r.json()["items"]) == 30
    r = get(fast, POLL, params=dict(q, pageSize=20),
            headers=dict(AUTH, **{"Accept-Encoding": "identity"}))
    assert "content-encoding" not in r.headers and len(r.json()["items"]) == 20
    for bad in ({"pageSize": 201}, {"pageSize": 0}, {"pageToken": "zz"},
                {"startDateTime": "yesterday"}):
        invalid(get(fast, POLL, params=dict({"batchId": done_batch}, **bad)))
    assert get(fast, POLL, params={"batchId": "nope"}).status_code == 404


def test_poll_the_whole_account_and_since(fast, done_batch):
    first = []
    for k in range(2):  # one after the other: the second's results all come later
        first.append(submit(fast, [check(member_id=member(1, i), sti=f"w{k}-{i}")
                                   for i in range(3)]))
        wait_final(fast, first[-1])
    got, token = [], None
    while True:
        q = {"pageSize": 20}
        if token:
            q["pageToken"] = token
        d = get(fast, POLL, params=q).json()
        got += d["items"]
        token = d.get("nextPageToken")
        if not token:
            break
    ids = {i["batchId"] for i in got}
    assert {done_batch, *first} <= ids
    keys = [(i["batchId"], i["submitterTransactionIdentifier"]) for i in got]
    assert len(keys) == len(set(keys))
    # startDateTime: only what completed after it
    since = status_of(fast, first[1])["updatedAt"]
    later = get(fast, POLL, params={"startDateTime": since, "pageSize": 20}).json()["items"]
    assert all(i["batchId"] not in (done_batch, first[0]) for i in later)


def test_poll_parameters_that_cannot_be_read_are_400(fast, done_batch):
    """A pageToken that does not decode must not restart the reader at the
    first result, nor a repeated pageSize pick one: each is 400 naming it."""
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
        assert body["fieldList"][0]["path"] == f"/{name}", (query, body)


def test_batch_validation(fast):
    items = items_for(30, "V")
    del items[17]["subscriber"]["memberId"]
    items[18]["subscriber"]["memberId"] = "bad*id"
    d = invalid(post(fast, BATCH, {"items": items}))
    assert d["message"] == ("items[18].subscriber.memberId: must hold only letters A-Z, a-z, "
                            "digits, '-' and spaces")
    assert d["fieldList"][0]["path"] == "/items/18/subscriber/memberId"
    items = [check(member_id="V1", sti="V1"), check(member_id="V2")]
    d = invalid(post(fast, BATCH, {"items": items}))
    assert d["message"] == "items[1].submitterTransactionIdentifier: missing"
    items = [check(member_id="V1", sti="same"), check(member_id="V2", sti="same")]
    d = invalid(post(fast, BATCH, {"items": items}))
    assert d["fieldList"][0]["path"] == "/items/1/submitterTransactionIdentifier"
    assert "unique" in d["message"]
    for body, pointer in [({"items": []}, "/items"), ({}, "/items"), ({"items": {}}, "/items"),
                          ({"items": [check(sti="x")], "maxRetryHours": 2}, "/maxRetryHours"),
                          ({"items": [check(sti="x")], "maxRetryHours": 12.5}, "/maxRetryHours"),
                          ({"items": [check(sti="x")], "name": "has space"}, "/name"),
                          ({"items": [check(sti="x")], "name": "n" * 101}, "/name"),
                          ({"items": [check(sti="x")], "name": ""}, "/name")]:
        assert invalid(post(fast, BATCH, body))["fieldList"][0]["path"] == pointer, body
    one = check(sti="x")
    d = invalid(post(fast, BATCH, {"items": [one] * 10001}, timeout=60))
    assert "10000" in d["message"]
    many = [dict(one, submitterTransactionIdentifier=f"x{i}") for i in range(10000)]
    assert post(fast, BATCH, {"items": many, "name": "ten-thousand_OK"}, timeout=60).status_code \
        == 200


def test_batch_names_are_unique_in_the_account(fast):
    submit(fast, [check(sti="n1")], name="nightly-2026_01")
    r = post(fast, BATCH, {"items": [check(sti="n2")], "name": "nightly-2026_01"})
    assert r.status_code == 409 and "nightly-2026_01" in r.json()["message"]
    assert r.json()["code"] == "CONFLICT"
    submit(fast, [check(sti="n3")], name="nightly-2026_02")
    bid = submit(fast, [check(sti="n4")])
    # an unnamed batch is named by its id, which a later batch cannot take
    assert post(fast, BATCH, {"items": [check(sti="n5")], "name": bid}).status_code == 409


def test_two_hosts_on_two_ports(workdir):
    s = start_stedi_sim(workdir, args=("--manager-port", "0"))
    try:
        assert s.ports["manager"] not in (s.ports["http"], 0)
        assert post(s, RT, check()).status_code == 200
        r = post(s, RT, check(), port="manager")
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
        for path in (BATCH,):
            assert post(s, path, {"items": [check(sti="a")]}).status_code == 404
        assert get(s, POLL, params={"batchId": "x"}).status_code == 404
        assert get(s, STATUS + "x").status_code == 404
        bid = submit(s, [check(sti="a")], port="manager")
        assert status_of(s, bid, port="manager")["id"] == bid
        assert get(s, POLL, port="manager", params={"batchId": bid}).status_code == 200
        for port in ("http", "manager"):
            assert requests.get(s.url(port, "/_sim/stats"), timeout=10).json()["batches"] == 1
        assert get(s, "/nowhere").status_code == 404
    finally:
        stop_clean(s)
    one = start_stedi_sim(workdir)
    try:
        assert "manager" not in one.ports  # one port serves both APIs
    finally:
        stop_clean(one)


def test_bad_manager_port_stops_startup(workdir):
    r = subprocess.run([bin_path("stedi-sim"), "--manager-port", "abc"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--manager-port" in r.stderr
    env = dict(os.environ, RTE_HTTP_ADDR="127.0.0.1:0", RTE_ADMIN_ADDR="127.0.0.1:0",
               RTE_GRPC_ADDR="127.0.0.1:0", RTE_SIM_MANAGER_ADDR="256.1.1.1:x")
    r = subprocess.run([bin_path("stedi-sim")], capture_output=True, text=True, timeout=30,
                       env=env)
    assert r.returncode != 0 and "sim.manager_addr" in r.stderr + r.stdout


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
    s = start_stedi_sim(workdir, batch_min_delay="1s", batch_max_delay="30s",
                        callback_secret="sekrit")
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        items = [check(member_id=member(c), sti=f"CB{c}") for c in (0, 1, 2, 5, 7)]
        batch_id = submit(s, items, callback_url=url)
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
        res = {x["check_id"]: x for x in doc["results"]}
        assert sorted(res) == ["CB0", "CB1", "CB2", "CB5", "CB7"]
        assert res["CB0"]["eligibility"]["eligible"] is False  # inactive
        e = res["CB1"]["eligibility"]
        assert e["eligible"] is True and e["copay_amount"] == COPAYS[1]
        assert e["network_status"] == "in_network" and e["coverage_start"].endswith("-01-01")
        assert res["CB7"]["eligibility"]["network_status"] == "out_of_network"
        assert res["CB5"]["status"] == "error" and res["CB5"]["error"]["code"] == "75"
        assert status_of(s, batch_id)["status"] == "COMPLETED"
        time.sleep(0.3)
        assert len(Recorder.calls) == 2  # no more after a 2xx
    finally:
        srv.shutdown()
        stop_clean(s)
