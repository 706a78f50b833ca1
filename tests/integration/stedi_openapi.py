"""Stedi's published OpenAPI as a test oracle (helpers, no tests here).

The contract lives outside the project, in ../shared/stedi-openapi beside the
checkout (RTE_STEDI_OPENAPI_DIR overrides): healthcare.json (real-time),
manager.json (batch), and schema/*.schema.json, the request schemas resolved
into standalone JSON Schema. The files are read in place, never copied.
Where they are absent a suite that needs them is skipped with a message
saying so; under CI (CI=true) their absence fails instead, since CI always
has them.

Responses are validated with Debian's python3-jsonschema (Draft 2020-12, the
dialect of OpenAPI 3.1) against the schema the document gives for that path,
method and status, resolving "#/components/schemas/..." references over the
whole document. Strictly: every object schema that lists properties is
closed (additionalProperties false) unless it says otherwise, so a field
Stedi does not publish - a "response" wrapper, a top-level "memberId" -
fails validation instead of passing unnoticed. Stedi's own examples pass
this strict form (test_stedi_sim_openapi checks that), and it is also what
makes the real-time 400's oneOf (a 271 with errors, or a ValidationException)
pick exactly one branch. date-time values are checked as RFC 3339.
"""
import json
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENAPI_DIR = os.environ.get("RTE_STEDI_OPENAPI_DIR",
                             os.path.join(os.path.dirname(REPO), "shared", "stedi-openapi"))

# Stedi's two hosts: the OpenAPI paths omit the version prefix the servers carry
HEALTHCARE = "healthcare"
MANAGER = "manager"
PREFIX = "/2024-04-01"

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def require():
    """Skip (or, under CI, fail) unless Stedi's OpenAPI files are beside the checkout."""
    if os.path.isfile(os.path.join(OPENAPI_DIR, "healthcare.json")):
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            pytest.fail("python3-jsonschema is missing: run make deps (scripts/deps.sh)")
        return
    msg = (f"Stedi's OpenAPI is not at {OPENAPI_DIR} (../shared/stedi-openapi beside the "
           "checkout, or RTE_STEDI_OPENAPI_DIR): these contract tests need it")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


def load(name):
    with open(os.path.join(OPENAPI_DIR, name)) as f:
        return json.load(f)


def closed(schema):
    """A copy in which every object schema listing properties allows no others."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(x) for x in schema]
    return schema


class Contract:
    """Validators for the responses of both documents and for the request schemas."""

    def __init__(self):
        import jsonschema
        self.js = jsonschema
        self.docs = {HEALTHCARE: closed(load("healthcare.json")),
                     MANAGER: closed(load("manager.json"))}
        self.formats = jsonschema.FormatChecker(formats=())
        self.formats.checks("date-time")(lambda v: not isinstance(v, str) or bool(RFC3339.match(v)))
        self.requests = {"realtime": load("schema/realtime_request.schema.json"),
                         "batch": load("schema/batch_request.schema.json")}
        self._cache = {}

    def _validator(self, api, path, method, status):
        key = (api, path, method, status)
        if key not in self._cache:
            doc = self.docs[api]
            op = doc["paths"][path][method]
            resp = op["responses"].get(str(status))
            assert resp is not None, (f"{method.upper()} {path} answered {status}, which "
                                      f"{api}.json does not document "
                                      f"(it lists {sorted(op['responses'])})")
            schema = resp["content"]["application/json"]["schema"]
            resolver = self.js.RefResolver("", doc)
            self._cache[key] = self.js.Draft202012Validator(schema, resolver=resolver,
                                                            format_checker=self.formats)
        return self._cache[key]

    def errors(self, api, path, method, status, body):
        """The schema violations of body as that response, as readable lines."""
        v = self._validator(api, path, method, status)
        out = []
        for e in sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in e.absolute_path)
            out.append(f"/{where}: {e.message[:300]}")
            for sub in (e.context or [])[:6]:
                out.append(f"    /{'/'.join(str(p) for p in sub.absolute_path)}: "
                           f"{sub.message[:200]}")
        return out

    def check(self, api, path, method, response):
        """Assert a requests.Response matches the document; return its JSON body."""
        body = response.json()
        errs = self.errors(api, path, method, response.status_code, body)
        assert not errs, (f"{method.upper()} {path} -> {response.status_code} does not match "
                          f"{api}.json:\n  " + "\n  ".join(errs[:20]) +
                          f"\nbody: {json.dumps(body)[:1500]}")
        return body

    def request_errors(self, kind, body):
        """Violations of body against schema/<kind>_request.schema.json (as published)."""
        schema = self.requests[kind]
        v = self.js.Draft202012Validator(schema)
        return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}"
                for e in v.iter_errors(body)]
