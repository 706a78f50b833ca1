"""tools/stedi-sim against Stedi's published OpenAPI (the contract it stands in for).

Every answer the simulator gives - each endpoint, each status it can send,
each member class of docs/stedi-sim.md, payer errors over 200 and over 400,
an unknown payer, ERROR poll items, a COMPLETED_WITH_ERRORS batch, gzip
pages - is validated with python3-jsonschema against the response schema
healthcare.json or manager.json gives for that path, method and status,
strictly (no property Stedi does not publish; see stedi_openapi.py). The
manager API runs on a port of its own, as on Stedi's separate host.

Requests go the other way: the simulator must refuse (400, Stedi's
ValidationException) exactly what schema/realtime_request.schema.json and
schema/batch_request.schema.json refuse, and accept Stedi's own example
requests.

Needs ../shared/stedi-openapi beside the checkout: skipped with a message
where it is absent, a failure under CI (CI=true), where it is always there.
"""
import concurrent.futures
import copy
import json
import os
import threading
import time

import pytest
import requests

import stedi_openapi as so
from conftest import start_stedi_sim, stop_clean, wait_for

KEY = "test-key"
AUTH = {"Authorization": KEY}
P = so.PREFIX
RT = "/change/medicalnetwork/eligibility/v3"
BATCH = "/eligibility-manager/batch-eligibility"
STATUS = "/eligibility-manager/batch/{batchId}"
ITEMS = "/eligibility-manager/batch/{batchId}/items"
POLL = "/eligibility-manager/polling/batch-eligibility"


@pytest.fixture(scope="module")
def contract():
    so.require()
    return so.Contract()


def check(member_id="M000000021", payer="62308", sti=None):
    body = {"tradingPartnerServiceId": payer,
            "provider": {"organizationName": "Clinic", "npi": "1999999984"},
            "subscriber": {"memberId": member_id, "firstName": "Ann", "lastName": "Lee",
                           "dateOfBirth": "19800102"},
            "encounter": {"serviceTypeCodes": ["30"]}}
    if sti is not None:
        body["submitterTransactionIdentifier"] = sti
    return body


class Api:
    """Calls one simulator and validates every answer against the documents."""

    def __init__(self, sim, contract):
        self.sim, self.c = sim, contract
        self.seen = set()  # (path, status) validated

    def _go(self, api, method, path, url_path, headers, **kw):
        port = "manager" if api == so.MANAGER else "http"
        url = self.sim.url(port, P + url_path)
        r = requests.request(method, url, headers=AUTH if headers is None else headers,
                             timeout=60, **kw)
        body = self.c.check(api, path, method.lower(), r)
        self.seen.add((path, r.status_code))
        return r, body

    def realtime(self, body, headers=None):
        return self._go(so.HEALTHCARE, "POST", RT, RT, headers, json=body)

    def submit(self, body, headers=None):
        return self._go(so.MANAGER, "POST", BATCH, BATCH, headers, json=body)

    def status(self, bid, headers=None):
        return self._go(so.MANAGER, "GET", STATUS, f"/eligibility-manager/batch/{bid}", headers)

    def items(self, bid, params=None, headers=None):
        return self._go(so.MANAGER, "GET", ITEMS, f"/eligibility-manager/batch/{bid}/items",
                        headers, params=params)

    def poll(self, params=None, headers=None):
        return self._go(so.MANAGER, "GET", POLL, POLL, headers, params=params)


@pytest.fixture(scope="module")
def api(workdir, contract):
    sim = start_stedi_sim(workdir, args=("--manager-port", "0"),
                          RTE_CLOCK_START="2026-03-02T06:00:00Z", downtime="DOWNPAYER@05:00-12:00",
                          latency_p50="1s", latency_p95="2s")
    yield Api(sim, contract)
    stop_clean(sim)


def test_strict_validation_takes_stedis_examples_and_refuses_the_old_shapes(contract):
    ex = os.path.join(so.OPENAPI_DIR, "examples")

    def load(name):
        with open(os.path.join(ex, name)) as f:
            return json.load(f)
    cases = [(so.HEALTHCARE, RT, "post", 200, "realtime_200_active.openapi.json"),
             (so.HEALTHCARE, RT, "post", 400, "realtime_400_aaa44.openapi.json"),
             (so.MANAGER, BATCH, "post", 200, "batch_submit_200.openapi.json"),
             (so.MANAGER, STATUS, "get", 200, "batch_status_completed.openapi.json"),
             (so.MANAGER, STATUS, "get", 200, "batch_status_completed_with_errors.openapi.json"),
             (so.MANAGER, ITEMS, "get", 200, "batch_items_200.openapi.json"),
             (so.MANAGER, POLL, "get", 200, "poll_200_page.openapi.json")]
    for name in sorted(os.listdir(os.path.join(so.OPENAPI_DIR, "variants"))):
        cases.append((so.HEALTHCARE, RT, "post", 200, os.path.join("..", "variants", name)))
    for api, path, method, status, name in cases:
        assert contract.errors(api, path, method, status, load(name)) == [], name
    # what the simulator used to send is refused: a wrapped poll item, pendingCount, ...
    page = load("poll_200_page.openapi.json")
    old = {"items": [{"submitterTransactionIdentifier": "A", "batchId": "b", "memberId": "M1",
                      "tradingPartnerServiceId": "62308", "status": "COMPLETED",
                      "response": page["items"][1]}]}
    errs = contract.errors(so.MANAGER, POLL, "get", 200, old)
    assert any("'memberId'" in e and "'response'" in e for e in errs), errs
    old_status = {"batchId": "b", "status": "COMPLETED", "totalCount": 1, "successCount": 1,
                  "errorCount": 0, "pendingCount": 0, "submittedAt": "2026-01-05T06:00:00.000Z"}
    assert contract.errors(so.MANAGER, STATUS, "get", 200, old_status)
    assert contract.errors(so.HEALTHCARE, RT, "post", 400,
                           {"code": "BAD_REQUEST", "message": "subscriber.memberId: missing"})
    aaa42 = {"errors": [{"field": "AAA", "code": "42", "followupAction": "Please Retry Later"}]}
    assert contract.errors(so.HEALTHCARE, RT, "post", 200, aaa42)


def test_realtime_answers_match(api):
    # every member class, two variants each
    for cls in range(20):
        for v in (1, 4):
            r, d = api.realtime(check(member_id=f"M{v * 20 + cls:09d}", payer="87726"))
            assert r.status_code == (400 if cls == 15 else 200), (cls, d)
    # a member found without a member id; an individual provider
    b = check()
    del b["subscriber"]["memberId"]
    b["provider"] = {"firstName": "Jo", "lastName": "Ray", "npi": "1999999984"}
    api.realtime(b)
    # payer down (AAA 42 over 200), unknown payer (Stedi's 400), bad requests, keys
    _, d = api.realtime(check(payer="DOWNPAYER"))
    assert d["errors"][0]["code"] == "42"
    r, d = api.realtime(check(payer="FOO"))
    assert r.status_code == 400 and d["status"] == "ERROR" and d["errors"][0]["code"] == "33"
    bad = check()
    bad["subscriber"]["memberId"] = "x" * 81
    r, d = api.realtime(bad)
    assert r.status_code == 400 and d["fieldList"][0]["path"] == "/subscriber/memberId"
    assert api.realtime(check(), headers={})[0].status_code == 403
    assert api.realtime(check(), headers={"Authorization": "Key wrong"})[0].status_code == 403
    assert {s for p, s in api.seen if p == RT} == {200, 400, 403}


def test_realtime_throttling_and_payer_failures_match(workdir, contract):
    sim = start_stedi_sim(workdir, RTE_CLOCK_SCALE="100", max_concurrent="1",
                          latency_p50="5s", latency_p95="5s", error_rate="1")
    try:
        a = Api(sim, contract)
        barrier = threading.Barrier(6)

        def at_once(i):
            barrier.wait()
            return a.realtime(check(member_id=f"E{i}"))[0].status_code

        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            burst = list(ex.map(at_once, range(6)))
        assert burst.count(429) >= 4, burst
        one_by_one = {a.realtime(check(member_id=f"F{i}"))[0].status_code for i in range(15)}
        assert {200, 503, 504} <= one_by_one, one_by_one  # AAA 42, unavailable, timeout
        assert {s for p, s in a.seen} >= {200, 429, 503, 504}
    finally:
        stop_clean(sim)


def test_batch_answers_match(api):
    items = ([check(member_id=f"B{i}", sti=f"B{i}") for i in range(40)] +
             [check(member_id="B98", payer="FOO", sti="B98")])
    r, d = api.submit({"items": items, "name": "contract-check", "maxRetryHours": 9})
    assert r.status_code == 200
    bid = d["batchId"]
    final = wait_for(lambda: (lambda x: x if x["status"].startswith("COMPLETED") else None)(
        api.status(bid)[1]), timeout=30, what="batch finished")
    assert final["status"] == "COMPLETED_WITH_ERRORS" and final["errorCount"] == 1
    # items: pages, filters
    _, page = api.items(bid, {"pageSize": 15})
    api.items(bid, {"pageSize": 15, "pageToken": page["nextPageToken"]})
    api.items(bid, [("state", "COMPLETED_WITH_ERRORS"), ("eligibilityCheckResult", "FAILED")])
    # poll: small pages, a gzip page, the whole account, an ERROR item among them
    _, p1 = api.poll({"batchId": bid, "pageSize": 5})
    api.poll({"batchId": bid, "pageSize": 5, "pageToken": p1["nextPageToken"]})
    r, big = api.poll({"batchId": bid, "pageSize": 50})
    assert r.headers["content-encoding"] == "gzip" and len(big["items"]) == 41
    assert [i for i in big["items"] if i.get("status") == "ERROR"][0]["errors"][0]["code"] == "79"
    api.poll({"pageSize": 20})
    api.poll({"pageSize": 3, "startDateTime": "2026-03-02T05:00:00Z"})
    # refusals
    assert api.poll({"batchId": bid, "pageSize": 201})[0].status_code == 400
    assert api.poll({"batchId": bid, "pageSize": 30},
                    headers=dict(AUTH, **{"Accept-Encoding": "identity"}))[0].status_code == 400
    assert api.poll({"batchId": "nope"})[0].status_code == 404
    assert api.status("nope")[0].status_code == 404
    assert api.items("nope")[0].status_code == 404
    assert api.items(bid, {"state": "DONE"})[0].status_code == 400
    assert api.submit({"items": []})[0].status_code == 400
    assert api.submit({"items": [check(sti="z")], "name": "contract-check"})[0].status_code == 409
    assert api.submit({"items": [check(sti="z")]}, headers={})[0].status_code == 401
    assert api.status(bid, headers={"Authorization": "wrong"})[0].status_code == 403
    assert api.poll(headers={})[0].status_code == 401
    assert api.items(bid, headers={"Authorization": "wrong"})[0].status_code == 403
    assert {s for p, s in api.seen if p == POLL} == {200, 400, 401, 404}
    assert {s for p, s in api.seen if p == BATCH} >= {200, 400, 401, 409}


def test_batch_status_matches_through_its_lifecycle(workdir, contract):
    sim = start_stedi_sim(workdir, args=("--manager-port", "0"), RTE_CLOCK_SCALE="1",
                          batch_min_delay="2s", batch_max_delay="4s", error_rate="0.3")
    try:
        a = Api(sim, contract)
        items = [check(member_id=f"C{i}", sti=f"C{i}") for i in range(12)]
        _, d = a.submit({"items": items})
        seen = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15:
            _, st = a.status(d["batchId"])
            a.items(d["batchId"])
            if not seen or seen[-1] != st["status"]:
                seen.append(st["status"])
            if st["status"].startswith("COMPLETED"):
                break
            time.sleep(0.05)
        assert seen == ["PENDING", "VALIDATED", "IN_PROGRESS", "COMPLETED_WITH_ERRORS"], seen
        _, page = a.poll({"batchId": d["batchId"], "pageSize": 20})
        assert any(i.get("status") == "ERROR" for i in page["items"])
    finally:
        stop_clean(sim)


def verdicts(sim_status, schema_errors):
    return ("refused" if sim_status == 400 else "accepted",
            "refused" if schema_errors else "accepted")


# (what, mutation of a valid request): each is judged by the schema and by the simulator
REALTIME_CASES = [
    ("valid as is", lambda b: None),
    ("no controlNumber, no encounter", lambda b: (b.pop("encounter"))),
    ("missing provider", lambda b: b.pop("provider")),
    ("missing subscriber", lambda b: b.pop("subscriber")),
    ("missing tradingPartnerServiceId", lambda b: b.pop("tradingPartnerServiceId")),
    ("empty tradingPartnerServiceId", lambda b: b.update(tradingPartnerServiceId="")),
    ("81-character tradingPartnerServiceId", lambda b: b.update(tradingPartnerServiceId="9" * 81)),
    ("8-character controlNumber", lambda b: b.update(controlNumber="12345678")),
    ("9-character controlNumber", lambda b: b.update(controlNumber="123456789")),
    ("member id with '/'", lambda b: b["subscriber"].update(memberId="AB/123")),
    ("member id with '_'", lambda b: b["subscriber"].update(memberId="AB_123")),
    ("member id with '-' and space", lambda b: b["subscriber"].update(memberId="AB-1 23")),
    ("member id of 1 character", lambda b: b["subscriber"].update(memberId="A")),
    ("member id of 80 characters", lambda b: b["subscriber"].update(memberId="A" * 80)),
    ("member id of 81 characters", lambda b: b["subscriber"].update(memberId="A" * 81)),
    ("member id a number", lambda b: b["subscriber"].update(memberId=12345)),
    ("first name of 35", lambda b: b["subscriber"].update(firstName="F" * 35)),
    ("first name of 36", lambda b: b["subscriber"].update(firstName="F" * 36)),
    ("last name of 61", lambda b: b["subscriber"].update(lastName="L" * 61)),
    ("empty first name", lambda b: b["subscriber"].update(firstName="")),
    ("middle name of 26", lambda b: b["subscriber"].update(middleName="M" * 26)),
    ("date of birth with dashes", lambda b: b["subscriber"].update(dateOfBirth="1980-01-02")),
    ("date of birth month 13", lambda b: b["subscriber"].update(dateOfBirth="19801301")),
    ("date of birth day 31 (any month)", lambda b: b["subscriber"].update(dateOfBirth="19800231")),
    ("gender U", lambda b: b["subscriber"].update(gender="U")),
    ("gender F", lambda b: b["subscriber"].update(gender="F")),
    ("ssn of 8 digits", lambda b: b["subscriber"].update(ssn="12345678")),
    ("subscriber state XX", lambda b: b["subscriber"].update(address={"state": "XX"})),
    ("subscriber postal code of 4", lambda b: b["subscriber"].update(address={"postalCode": "1234"})),
    ("npi of 11 digits", lambda b: b["provider"].update(npi="19999999841")),
    ("npi with a letter", lambda b: b["provider"].update(npi="199999998X")),
    ("organization name of 61", lambda b: b["provider"].update(organizationName="O" * 61)),
    ("provider address without city", lambda b: b["provider"].update(address={"address1": "1"})),
    ("provider type unknown", lambda b: b["provider"].update(providerType="alien")),
    ("empty serviceTypeCodes", lambda b: b["encounter"].update(serviceTypeCodes=[])),
    ("100 serviceTypeCodes", lambda b: b["encounter"].update(serviceTypeCodes=["30"] * 100)),
    ("serviceTypeCode ZZ", lambda b: b["encounter"].update(serviceTypeCodes=["ZZ"])),
    ("serviceTypeCode MH", lambda b: b["encounter"].update(serviceTypeCodes=["MH", "98"])),
    ("dateOfService bad", lambda b: b["encounter"].update(dateOfService="2026-01-01")),
    ("medical procedure missing its qualifier",
     lambda b: b["encounter"].update(medicalProcedures=[{"procedureCode": "99213"}])),
    ("two dependents", lambda b: b.update(dependents=[{"firstName": "A"}, {"firstName": "B"}])),
    ("one dependent", lambda b: b.update(dependents=[{"firstName": "A", "lastName": "B"}])),
    ("dependent relationship 99",
     lambda b: b.update(dependents=[{"individualRelationshipCode": "99"}])),
    ("subscriber an array", lambda b: b.update(subscriber=[])),
    ("unknown extra property", lambda b: b.update(somethingElse={"a": 1})),
    ("healthCareCodeInformation of 9",
     lambda b: b["subscriber"].update(healthCareCodeInformation=[
         {"diagnosisCode": "E119", "diagnosisTypeCode": "ABK"}] * 9)),
    ("externalPatientId of 37", lambda b: b.update(externalPatientId="x" * 37)),
    ("portalUsername empty", lambda b: b.update(portalUsername="")),
]


@pytest.mark.parametrize("what,mutate", REALTIME_CASES, ids=[c[0] for c in REALTIME_CASES])
def test_realtime_request_refused_exactly_when_the_schema_refuses(api, what, mutate):
    b = check(member_id="M000000021")
    mutate(b)
    r, _ = api.realtime(b)
    sim_v, schema_v = verdicts(r.status_code, api.c.request_errors("realtime", b))
    assert sim_v == schema_v, (what, r.text[:400], api.c.request_errors("realtime", b))


BATCH_CASES = [
    ("valid as is", lambda b: None),
    ("name with letters, digits, '-' and '_'", lambda b: b.update(name="Night-run_2026")),
    ("name with a space", lambda b: b.update(name="night run")),
    ("name with a dot", lambda b: b.update(name="night.run")),
    ("name of 100", lambda b: b.update(name="n" * 100)),
    ("name of 101", lambda b: b.update(name="n" * 101)),
    ("empty name", lambda b: b.update(name="")),
    ("maxRetryHours 7", lambda b: b.update(maxRetryHours=7)),
    ("maxRetryHours 24", lambda b: b.update(maxRetryHours=24)),
    ("maxRetryHours 12.5", lambda b: b.update(maxRetryHours=12.5)),
    ("maxRetryHours a string", lambda b: b.update(maxRetryHours="12")),
    ("no items", lambda b: b.pop("items")),
    ("empty items", lambda b: b.update(items=[])),
    ("an item without submitterTransactionIdentifier",
     lambda b: b["items"][1].pop("submitterTransactionIdentifier")),
    ("an item without provider", lambda b: b["items"][2].pop("provider")),
    ("an item with a bad member id", lambda b: b["items"][0]["subscriber"].update(memberId="a*b")),
    ("an item with a long first name",
     lambda b: b["items"][2]["subscriber"].update(firstName="F" * 36)),
    ("an item with a 9-digit npi", lambda b: b["items"][1]["provider"].update(npi="123456789")),
    ("10,001 items", lambda b: b.update(items=[
        dict(b["items"][0], submitterTransactionIdentifier=f"x{i}") for i in range(10001)])),
]


@pytest.mark.parametrize("what,mutate", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_batch_request_refused_exactly_when_the_schema_refuses(api, what, mutate):
    b = {"items": [check(member_id=f"R{i}", sti=f"{what[:20]}-{i}") for i in range(3)]}
    mutate(b)
    r, _ = api.submit(b)
    sim_v, schema_v = verdicts(r.status_code, api.c.request_errors("batch", b))
    assert r.status_code in (200, 400), r.text[:300]
    assert sim_v == schema_v, (what, r.text[:400], api.c.request_errors("batch", b)[:5])


def test_stedis_example_requests_are_accepted(api):
    ex = os.path.join(so.OPENAPI_DIR, "examples")
    with open(os.path.join(ex, "realtime_request.openapi.json")) as f:
        r, d = api.realtime(json.load(f))
    assert r.status_code == 200 and d["subscriber"]["memberId"] == "UHC202649"
    with open(os.path.join(ex, "realtime_request_invalid_provider.openapi.json")) as f:
        r, d = api.realtime(json.load(f))
    assert r.status_code in (200, 400) and "fieldList" not in d  # an answer, not a refusal
    with open(os.path.join(ex, "batch_submit_request.openapi.json")) as f:
        body = json.load(f)
    r, d = api.submit(copy.deepcopy(body))
    assert r.status_code == 200
    r, _ = api.submit(body)  # its name is taken now
    assert r.status_code == 409
