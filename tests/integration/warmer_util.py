"""Helpers shared by the cache-warmer suites (no tests here).

Starts cache-warmer (and webhook-receiver polling stedi-sim) against real
Redis and a Kafka dev broker of the module's own, builds the two kinds of
prediction events exactly as member-cron writes them, and reads back what
reached Stedi: the batches cache-warmer registered (batch_registry records
under the test's prefix) and each batch's items from stedi-sim.
"""
import json
import os
import subprocess
import time
import uuid

import requests

import promtext
from conftest import Service, bin_path, wait_for
from kafka_util import CONSUMER_CONFIG, produce

CRON_TOPIC = "member-cron-events"
LIKELY_TOPIC = "digital-twin.prediction.app_usage_likely"
API_KEY = "test-key"


def gen_members(workdir, count, seed):
    out = os.path.join(workdir, f"warm-members-{count}-{seed}.jsonl")
    if not os.path.exists(out):
        subprocess.run([bin_path("member-gen"), "--count", str(count), "--seed", str(seed),
                        "--out", out], check=True, capture_output=True, timeout=120)
    with open(out) as f:
        return out, [json.loads(line) for line in f]


def eligible(members):
    return [m for m in members if m["has_rte_enabled"] and m["account_status"] == "ACTIVE"]


def likely_event(member_id, probability, event_id=None):
    """A digital-twin.prediction.app_usage_likely event as member-cron writes it."""
    return json.dumps({
        "type": LIKELY_TOPIC, "event_id": event_id or f"it/{uuid.uuid4().hex}/likely",
        "member_id": member_id, "timestamp": "2026-01-05T06:00:00Z",
        "data": {"probability": probability, "predicted_time": "2026-01-05T09:00:00Z",
                 "confidence": "high", "window_minutes": 60}})


def cron_event(member_id, probability, event_id=None, schedule="it-schedule"):
    """A serialized MemberCronEvent as member-cron writes it."""
    import member_cron_pb2
    ev = member_cron_pb2.MemberCronEvent(
        member_id=member_id, account_id=member_id, schedule_name=schedule,
        cron_expression="0 4 * * *", event_id=event_id or f"{schedule}/1/{member_id}")
    ev.context.has_rte_enabled = True
    ev.context.predicted_activity.app_usage_probability = probability
    ev.context.predicted_activity.predicted_operations.append("check_eligibility")
    return ev.SerializeToString()


def send_likely(broker, events):
    """events: [(member_id, probability[, event_id])] onto the likely topic, key = member."""
    produce(broker.bootstrap, LIKELY_TOPIC, [(e[0], likely_event(*e)) for e in events])


def send_cron(broker, events):
    produce(broker.bootstrap, CRON_TOPIC, [(e[0], cron_event(*e)) for e in events])


def write_config(workdir, extra=""):
    path = os.path.join(workdir, f"warmer-{time.monotonic_ns()}.yaml")
    with open(path, "w") as f:
        f.write(CONSUMER_CONFIG + "kafka.consumer.auto.commit.interval.ms: 300\n" + extra)
    return path


class Stack:
    """Names shared by the processes of one test: prefixes and the cache secret."""

    def __init__(self, redis_server, broker, members_path, sim=None):
        tag = uuid.uuid4().hex[:8]
        self.redis_server = redis_server
        self.rds = redis_server.client()
        self.broker = broker
        self.members_path = members_path
        self.sim = sim
        self.warm_prefix = f"it:{tag}:warm"
        self.registry_prefix = f"it:{tag}:batch"
        self.slots_prefix = f"it:{tag}:slots"
        self.secret = f"it-secret-{tag}"

    def common_env(self):
        env = {"RTE_REDIS_URL": self.redis_server.url, "RTE_KAFKA_BROKERS": self.broker.bootstrap,
               "RTE_HEALTH_INTERVAL": "200ms", "RTE_LOG_LEVEL": "info",
               "RTE_CACHE_MEMBER_KEY_SECRET": self.secret,
               "RTE_BATCH_REGISTRY_PREFIX": self.registry_prefix,
               "RTE_SLOTS_PREFIX": self.slots_prefix, "RTE_STEDI_API_KEY": API_KEY,
               "RTE_SHUTDOWN_DEADLINE": "20s",
               # the submitter schedules the first poll: both sides use the same registry times
               "RTE_BATCH_REGISTRY_FIRST_DELAY": "300ms", "RTE_BATCH_REGISTRY_MAX_INTERVAL": "1s"}
        if self.sim is not None:
            env["RTE_STEDI_BASE_URL"] = f"http://127.0.0.1:{self.sim.ports['http']}"
        return env

    def start_warmer(self, workdir, wait_ready=True, **extra):
        env = self.common_env()
        env.update({"RTE_WARMER_MEMBERS": self.members_path, "RTE_WARM_PREFIX": self.warm_prefix,
                    "RTE_WARMER_FLUSH_CHECK": "100ms", "RTE_WARM_WINDOW": "1h",
                    "RTE_WARM_LEASE": "5s"})
        env.update({k if k.startswith("RTE_") else "RTE_" + k.upper(): str(v)
                    for k, v in extra.items()})
        return Service("cache-warmer", env, workdir,
                       args=["--config", write_config(workdir)]).start(wait_ready=wait_ready)

    def start_receiver(self, workdir, **extra):
        env = self.common_env()
        env.update({"RTE_WH_SECRETS": "whsec-integration-one", "RTE_WH_POLL_ENABLED": "true",
                    "RTE_WH_POLL_INTERVAL": "200ms", "RTE_WH_POLL_PAGE_SIZE": "200",
                    "RTE_WH_POLL_MAX_BATCHES": "20", "RTE_BATCH_REGISTRY_LEASE": "5s"})
        env.update({k if k.startswith("RTE_") else "RTE_" + k.upper(): str(v)
                    for k, v in extra.items()})
        return Service("webhook-receiver", env, workdir,
                       args=["--config", write_config(workdir)]).start()

    # --- what the queue and Stedi hold -------------------------------------------------

    def open_members(self):
        """{member id: source} of the open window (a list of member, source pairs)."""
        flat = [x.decode() for x in self.rds.lrange(f"{self.warm_prefix}:open", 0, -1)]
        return dict(zip(flat[0::2], flat[1::2]))

    def batch_ids(self):
        """Stedi batch ids cache-warmer registered, in registration order."""
        due = self.rds.zrange(f"{self.registry_prefix}:due", 0, -1)
        ids = [k.decode().split(":")[-1] for k in self.rds.keys(f"{self.registry_prefix}:*")
               if not k.decode().endswith((":due", ":lease"))]
        recs = []
        for i in set(ids) | {d.decode() for d in due}:
            h = self.rds.hgetall(f"{self.registry_prefix}:{i}")
            if h.get(b"source") == b"cache-warmer":
                recs.append((int(h[b"registered_ms"]), i))
        return [i for _, i in sorted(recs)]

    def batch_members(self, batch_id):
        """The member ids of a Stedi batch, from its items (every page)."""
        members, params = [], {"pageSize": 1000}
        while True:
            r = requests.get(self.sim.url(
                "http", f"/2024-04-01/eligibility-manager/batch/{batch_id}/items"),
                headers={"Authorization": API_KEY}, params=params, timeout=30)
            r.raise_for_status()
            d = r.json()
            members += [it["additionalInfo"]["eligibility"]["subscriberMemberId"]
                        for it in d["items"]]
            if not d.get("nextPageToken"):
                return members
            params["pageToken"] = d["nextPageToken"]

    def submitted(self):
        """{batch_id: [member ids]} of every batch cache-warmer registered."""
        return {b: self.batch_members(b) for b in self.batch_ids()}

    def cache_entry(self, member):
        import hashlib
        import hmac
        mk = hmac.new(self.secret.encode(), member["member_id"].encode(),
                      hashlib.sha256).hexdigest()[:32]
        v = self.rds.get(f"rte:eligibility:{mk}:{member['trading_partner_id']}")
        return json.loads(v) if v else None

    def put_entry(self, member, cached_ago_s, fresh_for_s=22 * 3600, error=False):
        """Write a cache entry for member cached cached_ago_s seconds ago (real clock)."""
        import hashlib
        import hmac
        from datetime import datetime, timedelta, timezone
        now = datetime.now(timezone.utc)
        fmt = "%Y-%m-%dT%H:%M:%S.000Z"
        cached = now - timedelta(seconds=cached_ago_s)
        v = {"eligible": True, "copay_amount": 20, "network_status": "in_network",
             "coverage_start": "2026-01-01", "coverage_end": "2026-12-31",
             "cached_at": cached.strftime(fmt),
             "fresh_until": (cached + timedelta(seconds=fresh_for_s)).strftime(fmt),
             "source": "stedi_batch"}
        if error:
            v["error"] = {"code": "42", "message": "Unable to Respond at Current Time"}
        mk = hmac.new(self.secret.encode(), member["member_id"].encode(),
                      hashlib.sha256).hexdigest()[:32]
        self.rds.set(f"rte:eligibility:{mk}:{member['trading_partner_id']}", json.dumps(v))


def metric(svc, name, **labels):
    _, samples = promtext.parse(svc.get("admin", "/metrics").text)
    return promtext.value(samples, name, **labels) or 0


def wait_metric(svc, name, at_least, timeout=30, **labels):
    return wait_for(lambda: metric(svc, name, **labels) >= at_least, timeout=timeout,
                    what=f"{name}{labels} >= {at_least}")


class LosingProxy:
    """An HTTP relay in front of stedi-sim that loses Stedi's answer to the first `lose`
    batch submissions: the request reaches the simulator (which creates the batch), then
    the connection is closed without a reply - a crash or network cut between Stedi's
    commit and our read of its answer. Everything else is relayed as it is."""

    BATCH_PATH = "/2024-04-01/eligibility-manager/batch-eligibility"

    def __init__(self, sim, lose=1):
        import http.server
        import threading
        target = f"http://127.0.0.1:{sim.ports['http']}"
        proxy = self
        self.lost, self.lose, self.statuses = 0, lose, []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                r = requests.request(self.command, target + self.path, data=body,
                                     headers=headers, timeout=60)
                if self.command == "POST" and self.path.startswith(proxy.BATCH_PATH):
                    proxy.statuses.append(r.status_code)
                    if proxy.lost < proxy.lose:
                        proxy.lost += 1
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                out = r.content
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
