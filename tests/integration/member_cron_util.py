"""Helpers shared by the member-cron integration suites (no tests here).

start_cron() runs the real build/bin/member-cron against the session's
Redis and Kafka dev broker with a schedules file, a member-gen population
and a scaled clock; each suite uses its own Redis key prefix and schedule
names so suites never see each other's fires. events() reads both output
topics back with confluent_kafka and decodes them (protobuf via the
generated member_cron_pb2, JSON via json).
"""
import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import requests

import promtext
from conftest import REPO, Service, bin_path, wait_for

sys.path.insert(0, os.path.join(REPO, "scripts"))
import fit_member_cron_model as fitmod  # noqa: E402  (the model's feature definitions)

GEN_NOW = "2026-01-05T00:00:00Z"
TOPIC = "member-cron-events"
LIKELY = "digital-twin.prediction.app_usage_likely"
MODEL_PATH = os.path.join(REPO, "services", "member-cron", "model.yaml")


def ts_ms(s):
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def gen_members(workdir, count, seed, truth=False):
    """member-gen population (and truth file) in workdir; returns (path, members, truth rows)."""
    out = os.path.join(workdir, f"members-{count}-{seed}.jsonl")
    tpath = out + ".truth"
    args = [bin_path("member-gen"), "--count", str(count), "--seed", str(seed), "--now", GEN_NOW,
            "--out", out]
    if truth:
        args += ["--truth", tpath]
    subprocess.run(args, check=True)
    with open(out) as f:
        members = [json.loads(line) for line in f]
    rows = None
    if truth:
        with open(tpath) as f:
            rows = [json.loads(line) for line in f]
    return out, members, rows


def start_cron(workdir, redis_server, kafka_broker, schedules, members_path, prefix,
               scale=60, start=GEN_NOW, replica=None, extra=None, wait_ready=True,
               sched_path=None):
    """member-cron with schedules (YAML text) written to a file; returns the Service."""
    sched_path = sched_path or os.path.join(workdir, f"{prefix}schedules.yaml")
    if schedules is not None:
        with open(sched_path, "w") as f:
            f.write(schedules)
    env = {"RTE_REDIS_URL": redis_server.url, "RTE_KAFKA_BROKERS": kafka_broker.bootstrap,
           "RTE_HEALTH_INTERVAL": "200ms", "RTE_LOG_LEVEL": "info",
           "RTE_CLOCK_SCALE": str(scale), "RTE_CLOCK_START": start,
           "RTE_MEMBER_CRON_MEMBERS": members_path, "RTE_MEMBER_CRON_SCHEDULES": sched_path,
           "RTE_MEMBER_CRON_MODEL": MODEL_PATH, "RTE_MEMBER_CRON_KEY_PREFIX": prefix,
           "RTE_MEMBER_CRON_POLL": "20ms", "RTE_MEMBER_CRON_WATCH_INTERVAL": "200ms",
           "RTE_MEMBER_CRON_LEASE": "1500ms", "RTE_MEMBER_CRON_BATCH": "100"}
    if replica:
        env["RTE_MEMBER_CRON_REPLICA_ID"] = replica
    env.update(extra or {})
    svc = Service("member-cron", env, workdir)
    svc.sched_path = sched_path
    return svc.start(wait_ready=wait_ready)


def schedules_state(svc):
    r = svc.get("admin", "/v1/schedules")
    assert r.status_code == 200, r.text
    return {s["name"]: s for s in r.json()["schedules"]}


def run_now(svc, name):
    r = requests.post(svc.url("admin", f"/v1/schedules/{name}/run"), timeout=10)
    assert r.status_code == 202, r.text
    return r.json()


def wait_fire_done(svc, name, fire_ms, timeout=60):
    def done():
        last = schedules_state(svc)[name]["last"]
        return last if last and last["fire_ms"] == fire_ms and last["state"] == "done" else None
    return wait_for(done, timeout=timeout, what=f"fire {fire_ms} of {name} to finish")


class Msg:
    """One consumed record with its producer timestamp (ms)."""

    def __init__(self, m):
        self.key = m.key()
        self.value = m.value()
        self.partition = m.partition()
        self.timestamp = m.timestamp()[1]


def consume(bootstrap, topic, timeout=60.0):
    """Every message in topic, from the start of each partition (no consumer group commits)."""
    import uuid
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"it-cron-{uuid.uuid4()}",
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        high = {}
        for p in md.partitions:
            _, high[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in high])
        out, pos = [], {p: 0 for p in high}
        deadline = time.monotonic() + timeout
        while any(pos[p] < high[p] for p in high):
            assert time.monotonic() < deadline, f"read {len(out)} of {topic}"
            batch = c.consume(10000, 0.5)
            for m in batch:
                if m.error():
                    continue
                out.append(Msg(m))
                pos[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def events(kafka_broker, schedule=None):
    """(protobuf events, JSON likely events, raw protobuf messages) of schedule (or all)."""
    import member_cron_pb2
    pb, raw = [], []
    for m in consume(kafka_broker.bootstrap, TOPIC):
        ev = member_cron_pb2.MemberCronEvent.FromString(m.value)
        if schedule is None or ev.schedule_name == schedule:
            assert m.key.decode() == ev.member_id
            pb.append(ev)
            raw.append(m)
    js = []
    for m in consume(kafka_broker.bootstrap, LIKELY):
        doc = json.loads(m.value)
        if schedule is None or doc["data"]["schedule_name"] == schedule:
            assert m.key.decode() == doc["member_id"]
            js.append(doc)
    return pb, js, raw


def predict(member, now_ms):
    """The model's probability in Python: the fit script's features and model.yaml."""
    coef, version, intercept = {}, None, 0.0
    with open(MODEL_PATH) as f:
        section = None
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            if not line.startswith(" "):
                key, _, val = line.partition(":")
                section = key.strip()
                if section == "version":
                    version = val.strip().strip('"')
                elif section == "intercept":
                    intercept = float(val)
            elif section == "coefficients":
                key, _, val = line.strip().partition(":")
                coef[key] = float(val)
    x = fitmod.features(member, now_ms / 1000.0)
    z = intercept + sum(coef.get(n, 0.0) * v for n, v in zip(fitmod.FEATURES, x))
    return 1.0 / (1.0 + math.exp(-z)), version


def metrics(svc):
    _, samples = promtext.parse(svc.get("admin", "/metrics").text)
    return samples


def metric(samples, name, **labels):
    want = frozenset(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def auc(scores, labels):
    return fitmod.auc(scores, labels)


def now_ms():
    return int(time.time() * 1000)


def utc(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stop_all(svcs, killed=()):
    """SIGTERM every service not in killed, then require exit 0 from each (under
    ASan a leak or UB makes it non-zero); killed ones are only cleaned up."""
    import signal
    for s in svcs:
        if s not in killed and s.proc and s.proc.poll() is None:
            s.signal(signal.SIGCONT)
            s.signal(signal.SIGTERM)
    errors = []
    for s in svcs:
        if s in killed or not s.proc:
            s.stop()
            continue
        try:
            code = s.wait(30)
        except subprocess.TimeoutExpired:
            code = "timeout"
        log = s.logtext()
        s.stop()
        if code != 0:
            errors.append(f"{s.name} exited {code}: {log[-2000:]}")
    assert not errors, "\n".join(errors)
