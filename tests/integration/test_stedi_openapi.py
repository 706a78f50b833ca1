"""The Stedi client against Stedi's published contract (../shared/stedi-openapi).

Two tiny capture servers stand for Stedi's two hosts, the healthcare API
(real-time) and the manager API (batch submit, status, polling). They record
every request and answer with the documented examples. tests/programs/
stedi-probe and tools/rtectl drive the real client, configured as a service
is. Then:
  - every request body validates against the OpenAPI request schema
    (python3-jsonschema) and uses only properties the schema defines,
    none of them deprecated;
  - each call goes to its own host, on the documented path, with the API
    key bare in Authorization;
  - the documented answers (200, 400 with errors[], Stedi's own 400, a
    refused key, a validation error, the poll page, both batch statuses)
    come out as the facts tests/data/stedi/ says.

The documents are read from ../shared/stedi-openapi (RTE_STEDI_OPENAPI_DIR
overrides; stedi_openapi.require decides): without them these tests skip,
saying so; under CI they fail instead, since CI always has them.
"""
import http.server
import json
import os
import re
import subprocess
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

import stedi_openapi
from conftest import REPO, bin_path

OPENAPI = stedi_openapi.OPENAPI_DIR
DATA = os.path.join(REPO, "tests", "data", "stedi")
RT_PATH = "/2024-04-01/change/medicalnetwork/eligibility/v3"
BATCH_PATH = "/2024-04-01/eligibility-manager/batch-eligibility"
STATUS_PATH = "/2024-04-01/eligibility-manager/batch/"
POLL_PATH = "/2024-04-01/eligibility-manager/polling/batch-eligibility"
KEY = "test_" + uuid.uuid4().hex[:12]
NAME_RE = re.compile(r"^[a-zA-Z0-9-_]{1,100}$")


@pytest.fixture(scope="module")
def openapi():
    stedi_openapi.require()
    return OPENAPI


def example(name):
    with open(os.path.join(OPENAPI, "examples", name)) as f:
        return json.load(f)


def expected(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


# ---- the request schemas --------------------------------------------------

def schema(name):
    with open(os.path.join(OPENAPI, "schema", name)) as f:
        return json.load(f)


def validate(body, name):
    """Valid against the schema, and only properties it defines, none deprecated."""
    import jsonschema
    s = schema(name)
    jsonschema.Draft202012Validator(s).validate(body)
    defs = s["$defs"]

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        return node

    def walk(value, node, path):
        node = resolve(node)
        if isinstance(value, dict):
            props = node.get("properties", {})
            for k, v in value.items():
                assert k in props, f"{path}.{k}: not a property the OpenAPI defines"
                assert not resolve(props[k]).get("deprecated") and not props[k].get(
                    "deprecated"), f"{path}.{k}: deprecated in the OpenAPI"
                walk(v, props[k], f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, node.get("items", {}), f"{path}[{i}]")
    walk(body, s, "$")


# ---- two capture servers ---------------------------------------------------

class Capture:
    """One host: records requests, answers from routes {(method, path prefix): fn(req)}."""

    def __init__(self):
        self.requests = []
        self.routes = {}
        cap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self, method):
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n) if n else b""
                u = urlsplit(self.path)
                req = {"method": method, "path": u.path, "query": parse_qs(u.query),
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": json.loads(raw) if raw else None}
                cap.requests.append(req)
                status, body = 404, {"message": "no such route"}
                for (m, prefix), fn in cap.routes.items():
                    if m == method and u.path.startswith(prefix):
                        status, body = fn(req)
                        break
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.srv.server_port}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def hosts(openapi):
    h, m = Capture(), Capture()
    yield h, m
    h.close()
    m.close()


def run(cmd, hosts, *args, **env):
    """stedi-probe or rtectl with the client pointed at the two capture hosts."""
    h, m = hosts
    e = dict(os.environ)
    e.update({"RTE_STEDI_HEALTHCARE_BASE_URL": h.url, "RTE_STEDI_MANAGER_BASE_URL": m.url,
              "RTE_STEDI_API_KEY": KEY, "RTE_LOG_LEVEL": "error",
              "RTE_STEDI_RETRY_BASE_DELAY": "5ms", "RTE_STEDI_RETRY_MAX_DELAY": "20ms",
              "RTE_CLOCK_START": "2024-06-15T12:00:00Z", "RTE_CLOCK_SCALE": "1"})
    e.update({k: str(v) for k, v in env.items()})
    p = subprocess.run([bin_path(cmd)] + [str(a) for a in args], env=e, capture_output=True,
                       text=True, timeout=60)
    return p


def probe(hosts, *args, redis=None, **env):
    if redis is not None:
        env.setdefault("RTE_REDIS_URL", redis.url)
        env.setdefault("RTE_SLOTS_PREFIX", "openapi-it:" + uuid.uuid4().hex[:8])
    p = run("stedi-probe", hosts, *args, **env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def facts(entry):
    """An entry without its times (the probe's clock runs on)."""
    return {k: v for k, v in entry.items() if k not in ("cached_at", "fresh_until")}


def answer(status, body):
    return lambda req: (status, body)


# ---- real-time ---------------------------------------------------------------

def test_realtime_request_contract_and_answer(hosts, redis_server):
    h, m = hosts
    h.routes[("POST", RT_PATH)] = answer(200, example("realtime_200_active.openapi.json"))
    out = probe(hosts, "realtime", "--member", "UHC202649", "--payer", "87726",
                "--first-name", "John", "--dob", "1976-02-14", redis=redis_server)
    assert out["ok"] == 1, out
    assert len(h.requests) == 1 and m.requests == []  # real-time: the healthcare API only
    req = h.requests[0]
    assert req["method"] == "POST" and req["path"] == RT_PATH
    assert req["headers"]["authorization"] == KEY  # bare, not "Key ..."
    validate(req["body"], "realtime_request.schema.json")
    assert "controlNumber" not in req["body"]  # deprecated: Stedi generates one
    assert req["body"]["encounter"]["serviceTypeCodes"] == ["30"]
    assert req["body"]["subscriber"]["dateOfBirth"] == "19760214"
    # the facts the golden case says: copay not from the mental-health row, network
    # from the payer's statement, eligible from benefitsInformation
    want = facts(expected("realtime_200_active.expected.json"))
    assert facts(out["first"]["entry"]) == want


def test_realtime_400_with_errors_is_an_answer(hosts, redis_server):
    h, _ = hosts
    h.routes[("POST", RT_PATH)] = answer(400, example("realtime_400_aaa44.openapi.json"))
    out = probe(hosts, "realtime", redis=redis_server, RTE_STEDI_MAX_ATTEMPTS=3)
    first = out["first"]
    assert out["payer_error"] == 1 and first["http_status"] == 400, out
    assert out["attempts"] == 1 and len(h.requests) == 1
    assert first["entry"]["error"] == {"code": "44", "message": "Invalid/Missing Provider Name",
                                       "followup_action": "C", "retry": False, "origin": "payer"}
    assert "do not retry" in first["message"]


def test_unknown_payer_is_stedis_own_error(hosts, redis_server):
    h, _ = hosts
    h.routes[("POST", RT_PATH)] = answer(400, example("realtime_payer_not_configured.docs.json"))
    out = probe(hosts, "realtime", "--payer", "FOO", redis=redis_server)
    want = expected("realtime_payer_not_configured.expected.json")
    assert out["payer_error"] == 1, out
    assert facts(out["first"]["entry"]) == facts(want)


def test_refused_key_is_403_and_names_the_setting(hosts, redis_server):
    h, _ = hosts
    h.routes[("POST", RT_PATH)] = answer(403, {"message": "Forbidden"})
    out = probe(hosts, "realtime", redis=redis_server, RTE_STEDI_MAX_ATTEMPTS=4)
    first = out["first"]
    assert out["rejected"] == 1 and first["http_status"] == 403 and out["attempts"] == 1, out
    assert "refused the API key" in first["message"] and "stedi.api_key" in first["message"]


def test_validation_error_is_rejected_naming_the_field(hosts, redis_server):
    h, _ = hosts
    h.routes[("POST", RT_PATH)] = answer(400, {
        "message": "Invalid request", "fieldList": [
            {"path": "subscriber.memberId", "message": "must match pattern"}]})
    out = probe(hosts, "realtime", redis=redis_server)
    assert out["rejected"] == 1, out
    assert "subscriber.memberId: must match pattern" in out["first"]["message"]


def test_stedi_limits_refused_before_sending(hosts, redis_server):
    h, _ = hosts
    out = probe(hosts, "realtime", "--first-name", "J" * 36, redis=redis_server)
    assert out["rejected"] == 1 and out["attempts"] == 0, out
    assert "subscriber.firstName" in out["first"]["message"]
    out = probe(hosts, "realtime", "--member", "M_1", redis=redis_server)
    assert out["rejected"] == 1 and "subscriber.memberId" in out["first"]["message"]
    assert h.requests == []


# ---- batch: submit, status, polling ----------------------------------------

def test_batch_submit_contract(hosts, redis_server):
    h, m = hosts
    m.routes[("POST", BATCH_PATH)] = answer(200, example("batch_submit_200.openapi.json"))
    out = probe(hosts, "submit", "--n", 3, "--name", "nightly-2024_06_15", "--service-types",
                "30", redis=redis_server)
    assert out["rc"] == 0 and out["batch_id"] == "01928d19-df25-76c0-8d51-f5351260fa05", out
    assert h.requests == [] and len(m.requests) == 1  # batch: the manager API only
    req = m.requests[0]
    assert req["method"] == "POST" and req["path"] == BATCH_PATH
    assert req["headers"]["authorization"] == KEY
    validate(req["body"], "batch_request.schema.json")
    assert req["body"]["name"] == "nightly-2024_06_15"
    assert [i["submitterTransactionIdentifier"] for i in req["body"]["items"]] == ["T0", "T1",
                                                                                   "T2"]


def test_batch_status_and_polling(hosts, redis_server):
    _, m = hosts
    page = example("poll_200_page.openapi.json")
    last = {"items": []}  # the page after it: no nextPageToken, nothing new

    def poll(req):
        return 200, (last if req["query"].get("pageToken") else page)
    m.routes[("GET", POLL_PATH)] = poll
    m.routes[("GET", STATUS_PATH)] = answer(
        200, example("batch_status_completed_with_errors.openapi.json"))
    st = probe(hosts, "status", "--batch", "01976b18-6d90-71d1-b27b-2556a9fbf837",
               redis=redis_server)
    assert st["rc"] == 0 and st["status"] == "COMPLETED_WITH_ERRORS" and st["complete"], st
    assert m.requests[0]["path"] == STATUS_PATH + "01976b18-6d90-71d1-b27b-2556a9fbf837"

    out = probe(hosts, "poll", "--batch", "01932c61-2d4f-7d22-85fa-c7db2e13e771",
                "--page-size", 50, redis=redis_server)
    assert out["rc"] == 2 and out["pages"] == 1, out
    polls = [r for r in m.requests if r["path"] == POLL_PATH]
    assert len(polls) == 2
    assert polls[0]["query"] == {"batchId": ["01932c61-2d4f-7d22-85fa-c7db2e13e771"],
                                 "pageSize": ["50"]}
    assert polls[1]["query"]["pageToken"] == [page["nextPageToken"]]
    assert all(r["headers"]["authorization"] == KEY for r in m.requests)
    items = {i["sti"]: i for i in out["items"]}
    assert items["ABC123456789"]["entry"]["error"]["code"] == "79"
    assert facts(items["DEF123456799"]["entry"]) == facts(
        expected("poll_200_page_item1.expected.json"))


def test_rtectl_warm_names_are_unique_and_items_registered(hosts, redis_server, tmp_path):
    _, m = hosts
    n = [0]

    def submit(req):
        n[0] += 1
        return 200, {"batchId": f"batch-{n[0]}", "submittedAt": "2024-06-15T12:00:00Z"}
    m.routes[("POST", BATCH_PATH)] = submit
    members = tmp_path / "members.jsonl"
    subprocess.run([bin_path("member-gen"), "--count", "20", "--seed", "3", "--out",
                    str(members)], check=True, capture_output=True, timeout=60)
    prefix = "openapi-it:" + uuid.uuid4().hex[:8]
    outs = []
    for offset in (0, 5):
        p = run("rtectl", hosts, "warm", "--members", members, "--first", 5, "--offset", offset,
                "--source", "nightly warm", "--submit", RTE_REDIS_URL=redis_server.url,
                RTE_BATCH_REGISTRY_PREFIX=prefix, RTE_WARM_PREFIX=prefix + ":warm",
                RTE_CACHE_MEMBER_KEY_SECRET="it-secret")
        assert p.returncode == 0, p.stderr
        outs.append(json.loads(p.stdout))
    names = [r["body"]["name"] for r in m.requests]
    assert len(names) == 2 and names[0] != names[1], names
    assert all(NAME_RE.match(x) and x.startswith("nightlywarm-") for x in names), names
    assert [o["name"] for o in outs] == names
    for r in m.requests:
        validate(r["body"], "batch_request.schema.json")
    # each item's submitterTransactionIdentifier says which cache entry its result is
    rds = redis_server.client()
    stored = rds.hgetall(f"{prefix}:batch-1:items")
    stis = [i["submitterTransactionIdentifier"] for i in m.requests[0]["body"]["items"]]
    assert sorted(k.decode() for k in stored) == sorted(stis)
    v = json.loads(stored[stis[0].encode()])
    assert v["service_types"] == ["30"] and v["key"].startswith("rte:eligibility:")
    assert m.requests[0]["body"]["items"][0]["subscriber"]["memberId"] not in v["key"]
