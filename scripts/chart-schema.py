#!/usr/bin/python3
"""chart-schema.py - write each chart's values.schema.json from docs/configuration.md.

    /usr/bin/python3 scripts/chart-schema.py          write charts/<service>/values.schema.json
    /usr/bin/python3 scripts/chart-schema.py --check  exit 1 naming each file that differs

The configuration reference is the one table of every key (STYLE.md 7); the
charts' `config:` values mirror it, and this script makes Helm enforce that:
each row of the tables in docs/configuration.md becomes a property of the
schema's `config` object, with a type taken from its default and range
(a duration: a string such as `5s` or whole milliseconds; an integer or a
number with the range's bounds; a boolean; a word from a listed set; else a
string). Every object has additionalProperties false, so a misspelt or
unknown key fails `helm install` / `helm template` instead of being ignored
by the service (the config loader does not refuse keys it does not read).

Which keys a service reads is decided by prefix (SERVICE_KEYS below). Keys
that hold secrets are left out on purpose: the charts take them from a
Kubernetes Secret by reference (`secretEnv`), never from values. A service
whose own keys are not in docs/configuration.md yet (batch-rpc, being
written) gets its section as an open object, and the schema tightens by
itself when the docs gain the table.

The chart-level values (image, replicas, probes, autoscaling, ...) are the
same for every chart (CHART_PROPS); tests/deploy/test_charts.py checks that
the committed files equal what this script writes.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "configuration.md")

COMMON = ["log.", "admin.", "http.", "grpc.", "redis.", "health.", "shutdown.", "kafka."]
CACHE_STEDI = ["cache.", "stedi.", "slots."]
SERVICE_KEYS = {
    "cache-gateway": COMMON + CACHE_STEDI + ["gateway."],
    "member-cron": COMMON + ["member_cron."],
    "webhook-receiver": COMMON + CACHE_STEDI + ["wh.", "batch_registry."],
    "cache-warmer": COMMON + CACHE_STEDI + ["batch_registry.", "warm.", "warmer."],
    "batch-rpc": COMMON + CACHE_STEDI + ["batch_registry.", "batchrpc."],
}
# charts/rte-suite's global.config: the keys that must be one value suite-wide
# (one Redis, one Kafka, one cache key secret and limiter, one registry);
# per-address keys (admin.addr, http.*, grpc.*) stay per service
SUITE_KEYS = ["log.", "redis.", "health.", "kafka.", "cache.", "stedi.", "slots.",
              "batch_registry."]
# the service's own section, left open while the docs do not list its keys
OWN_SECTION = {"cache-gateway": "gateway", "member-cron": "member_cron",
               "webhook-receiver": "wh", "cache-warmer": "warmer", "batch-rpc": "batchrpc"}
# secrets come from a Secret (secretEnv), never from values
SECRET_KEYS = {"cache.member_key_secret", "stedi.api_key", "wh.secrets"}
# sections that are not config keys of a deployed service
SKIP_SECTIONS = ("Process environment", "stedi-sim")

ROW = re.compile(r"^\| `([a-z0-9_.<>-]+)` \| (?:`RTE_[A-Z0-9_]+`|—) \| ([^|]*) \| ([^|]*) \|")
DURATION = re.compile(r"^\d+(ms|s|m|h|d)$")
DURATION_IN_RANGE = re.compile(r"\d+(ms|s|m|h|d)\b")
INT_RANGE = re.compile(r"^(\d+)–(\d+)\b")
NUM_RANGE = re.compile(r"^(\d+(?:\.\d+)?)–(\d+(?:\.\d+)?)\b")

DURATION_SCHEMA = {"type": ["string", "integer"], "pattern": "^[0-9]+(ms|s|m|h|d)?$",
                   "minimum": 0,
                   "description": "a duration: 250ms, 5s, 2m, 1h, 1d or whole milliseconds"}
SCALAR = {"type": ["string", "number", "boolean"]}


def doc_rows():
    """(key, default, range, meaning) of every documented key of a deployed service."""
    rows, section = [], ""
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                section = line[3:].strip()
                continue
            if section.startswith(SKIP_SECTIONS):
                continue
            m = ROW.match(line)
            if m:
                meaning = line.rstrip().rstrip("|").split(" | ")[-1].strip()
                rows.append((m.group(1), m.group(2).strip(), m.group(3).strip(), meaning))
    return rows


def key_schema(key, default, rng, meaning):
    """The JSON Schema of one documented key."""
    plain = default.strip("`").split("`")[0].strip()
    desc = f"{key}: {meaning}"[:300]
    if "<property>" in key:
        return {"type": "object", "additionalProperties": SCALAR,
                "description": f"librdkafka properties: {meaning}"[:300]}
    if rng in ("bool", "on/off") or plain in ("true", "false", "on", "off"):
        return {"type": "boolean", "description": desc}
    if DURATION.match(plain) or (DURATION_IN_RANGE.search(rng) and not re.match(r"^\d", plain)):
        return dict(DURATION_SCHEMA, description=desc)
    words = [w.strip() for w in rng.split(",")]
    if len(words) > 1 and plain in words and all(re.match(r"^[a-z]+$", w) for w in words):
        return {"type": "string", "enum": words, "description": desc}
    if "digits" in rng:
        n = re.match(r"^(\d+) digits", rng)
        pat = f"^[0-9]{{{n.group(1)}}}$" if n else "^[0-9]+$"
        return {"type": ["string", "integer"], "pattern": pat, "description": desc}
    if re.match(r"^\d+\.\d+$", plain) or (re.match(r"^\d+$", plain) and NUM_RANGE.match(rng)
                                          and "." in NUM_RANGE.match(rng).group(0)):
        s = {"type": "number", "description": desc}
        m = NUM_RANGE.match(rng)
        if m:
            s.update(minimum=float(m.group(1)), maximum=float(m.group(2)))
        return s
    if re.match(r"^\d+$", plain):
        s = {"type": "integer", "description": desc}
        m = INT_RANGE.match(rng)
        if m:
            s.update(minimum=int(m.group(1)), maximum=int(m.group(2)))
        elif re.match(r"^0–", rng):
            s["minimum"] = 0
        elif re.match(r"^\d", rng):
            s["minimum"] = int(re.match(r"^(\d+)", rng).group(1))
        # a probability range such as 0–1 is a number, not an integer
        if s.get("maximum") == 1 and s.get("minimum") == 0 and "." in default:
            s["type"] = "number"
        return s
    return {"type": "string", "description": desc}


def put(tree, dotted, schema, required=False):
    """Add the schema of a dotted key; a required key is required with its sections."""
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        if required and p not in node.setdefault("required", []):
            node["required"].append(p)
        node = node.setdefault("properties", {}).setdefault(
            p, {"type": "object", "additionalProperties": False})
    node.setdefault("properties", {})[parts[-1]] = schema
    if required:
        node.setdefault("required", []).append(parts[-1])


def config_schema(service, rows):
    tree = {"type": "object", "additionalProperties": False,
            "description": "the service's config.yaml (docs/configuration.md); secrets are not "
                           "allowed here: see secretEnv"}
    if service == "rte-suite":
        prefixes, own = SUITE_KEYS, None
    else:
        prefixes, own = SERVICE_KEYS[service], OWN_SECTION[service]
    seen_own = False
    for key, default, rng, meaning in rows:
        if key in SECRET_KEYS or not key.startswith(tuple(prefixes)):
            continue
        if own and key.startswith(own + "."):
            seen_own = True
        # a key without a default ("(required)") must be in the chart's config
        put(tree, key.replace(".<property>", ""), key_schema(key, default, rng, meaning),
            required=default == "(required)")
    if own and not seen_own:
        tree["properties"][own] = {
            "type": "object",
            "description": f"{own}.*: not yet in docs/configuration.md, so not checked here "
                           "(the service's --check-config still is)"}
    return tree


def obj(props, required=(), desc=None):
    s = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        s["required"] = list(required)
    if desc:
        s["description"] = desc
    return s


PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
QUANTITY = {"type": ["string", "integer", "number"]}
RESOURCES = obj({
    "requests": {"type": "object", "additionalProperties": QUANTITY},
    "limits": {"type": "object", "additionalProperties": QUANTITY},
})
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
ANY_LIST = {"type": "array", "items": {"type": "object"}}


def chart_props(service):
    props = {
        "global": {"type": "object", "description": "Helm globals (charts/rte-suite sets global.config)"},
        "enabled": {"type": "boolean", "description": "read by charts/rte-suite (its dependency condition)"},
        "nameOverride": {"type": "string"},
        "replicaCount": {"type": "integer", "minimum": 0},
        "image": obj({"repository": {"type": "string", "minLength": 1},
                      "tag": {"type": "string", "minLength": 1},
                      "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}},
                     ["repository", "tag"]),
        "imagePullSecrets": {"type": "array", "items": obj({"name": {"type": "string"}}, ["name"])},
        "service": obj({"type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                        "httpPort": PORT, "adminPort": PORT, "grpcPort": PORT},
                       ["type", "adminPort", "grpcPort"]),
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 1},
        "resources": RESOURCES,
        "existingSecret": {"type": "string", "minLength": 1,
                           "description": "name of the Secret the secretEnv keys are read from"},
        "secretEnv": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                      "propertyNames": {"pattern": "^RTE_[A-Z0-9_]+$"},
                      "description": "environment variable -> key in existingSecret"},
        "extraEnv": ANY_LIST,
        "podAnnotations": STRMAP,
        "podLabels": STRMAP,
        "nodeSelector": STRMAP,
        "tolerations": ANY_LIST,
        "affinity": {"type": "object"},
        "priorityClassName": {"type": "string"},
        "probes": obj({
            "grpc": {"type": "boolean",
                     "description": "readiness through the native gRPC probe (grpc.health.v1) "
                                    "instead of HTTP /readyz"},
            "livenessPeriodSeconds": {"type": "integer", "minimum": 1},
            "readinessPeriodSeconds": {"type": "integer", "minimum": 1},
            "startupFailureThreshold": {"type": "integer", "minimum": 1},
        }),
        "topologySpread": obj({"enabled": {"type": "boolean"},
                               "maxSkew": {"type": "integer", "minimum": 1},
                               "zoneKey": {"type": "string"}, "hostKey": {"type": "string"},
                               "whenUnsatisfiable": {"enum": ["DoNotSchedule", "ScheduleAnyway"]}}),
        "podDisruptionBudget": obj({"enabled": {"type": "boolean"},
                                    "maxUnavailable": {"type": ["integer", "string"]}}),
        "autoscaling": obj({
            "enabled": {"type": "boolean"},
            "minReplicas": {"type": "integer", "minimum": 1},
            "maxReplicas": {"type": "integer", "minimum": 1},
            "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1, "maximum": 100},
            "external": obj({
                "metric": {"type": "string", "minLength": 1},
                "selector": STRMAP,
                "averageValue": {"type": ["string", "integer"]},
            }, desc="an External metric (consumer lag, queue depth) served by an external "
                    "metrics adapter: docs/deploy.md"),
        }),
        "serviceMonitor": obj({"enabled": {"type": "boolean"},
                               "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                               "labels": STRMAP}),
        "prometheusRule": obj({"enabled": {"type": "boolean"}, "labels": STRMAP}),
        "config": None,
    }
    if service == "member-cron":
        props["schedules"] = {"type": "string", "description": "mounted as /etc/rte/schedules.yaml"}
        props["model"] = {"type": "string", "description": "mounted as /etc/rte/model.yaml"}
    return props


def schema(service, rows):
    props = chart_props(service)
    props["config"] = config_schema(service, rows)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"{service} chart values",
        "description": "generated by scripts/chart-schema.py from docs/configuration.md; do not edit",
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "service", "config"],
        "properties": props,
    }


def suite_schema(rows):
    """charts/rte-suite: global.config checked here, each service's values by its own chart."""
    props = {s: {"type": "object", "description": f"values of charts/{s} (its values.schema.json)"}
             for s in SERVICE_KEYS}
    gconf = config_schema("rte-suite", rows)
    gconf["description"] = ("keys set on every service, over each chart's own config: "
                            "one Redis, one Kafka, one cache and limiter for the suite")
    props["global"] = {"type": "object", "additionalProperties": False,
                       "properties": {"config": gconf}}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "rte-suite umbrella values",
        "description": "generated by scripts/chart-schema.py from docs/configuration.md; do not edit",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
    }


def main():
    check = sys.argv[1:] == ["--check"]
    rows = doc_rows()
    bad = []
    for service in list(SERVICE_KEYS) + ["rte-suite"]:
        path = os.path.join(ROOT, "charts", service, "values.schema.json")
        doc = suite_schema(rows) if service == "rte-suite" else schema(service, rows)
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        bad.append(path)
            except FileNotFoundError:
                bad.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if bad:
        for p in bad:
            print(f"chart-schema: {os.path.relpath(p, ROOT)} differs from docs/configuration.md; "
                  "run /usr/bin/python3 scripts/chart-schema.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
