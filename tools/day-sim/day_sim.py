#!/usr/bin/python3
"""day-sim - one simulated day of the whole suite, warming off and on, measured.

    /usr/bin/python3 tools/day-sim/day_sim.py [--members N] [--seed S]
        [--day-seconds T] [--date YYYY-MM-DD] [--out DIR] [--build DIR] ...

What it does (docs/day.md says why and what limits the figures):

1. A population from member-gen (--members, --seed) with member-gen's hidden
   truth (p_open_24h, opened). From that truth and the member's own profile
   the driver draws the day's app opens: who opens (member-gen's draw,
   moved by the member's weekday factor for the simulated date), when (an
   hour from the member's usage_by_hour on the member's local clock, time
   zone from the member's state), and a second open for some. The services
   never see this truth.
2. Twice, with the same seed and the same opens ("off" without cache-warmer,
   "on" with it): a fresh redis-server, kafka-dev-broker, stedi-sim (Stedi's
   latency p50 4 s / p95 12 s on the scaled clock, its 15-call limit, a payer
   outage window), member-cron with the shipped schedules and model,
   webhook-receiver, cache-gateway, (on: cache-warmer), and Prometheus
   scraping every service's /metrics. Every process shares one scaled
   clock (RTE_CLOCK_SCALE/START/ANCHOR), 24 h in --day-seconds.
3. The opens are replayed open-loop against cache-gateway as the member app
   would call it (DEFAULT, plus shares of PREFER_CACHED and CACHE_ONLY).
4. Figures come from what was measured: the driver's own timings and
   answers, stedi-sim's counters, and Prometheus queries over the services'
   metrics; day_report.py prints the table and writes report.json and a
   self-contained report.html.

Nothing is mocked: every process is the suite's real executable. Exit 0
when both runs completed (whatever the figures say), 1 when a process did
not start or a run failed, 2 on bad arguments.
"""
import argparse
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import day_report  # noqa: E402

DAY_S = 86400
# member-gen's states and their main IANA zone (a state spanning two zones takes
# the zone most of its people live in)
STATE_ZONE = {
    "CA": "America/Los_Angeles", "TX": "America/Chicago", "FL": "America/New_York",
    "NY": "America/New_York", "PA": "America/New_York", "IL": "America/Chicago",
    "OH": "America/New_York", "GA": "America/New_York", "NC": "America/New_York",
    "MI": "America/Detroit", "NJ": "America/New_York", "VA": "America/New_York",
    "WA": "America/Los_Angeles", "AZ": "America/Phoenix", "MA": "America/New_York",
    "TN": "America/Chicago", "IN": "America/Indiana/Indianapolis", "MO": "America/Chicago",
    "MD": "America/New_York", "WI": "America/Chicago", "CO": "America/Denver",
    "MN": "America/Chicago", "SC": "America/New_York", "AL": "America/Chicago",
    "LA": "America/Chicago", "KY": "America/New_York", "OR": "America/Los_Angeles",
    "OK": "America/Chicago", "CT": "America/New_York", "UT": "America/Denver",
}
# the shipped daily schedule fires at midnight in New York: the simulated day
# is that midnight to the next
DAY_ZONE = "America/New_York"
RUSH_HOURS = (6, 10)  # member-local morning rush [6:00, 10:00)
SECOND_OPEN_SHARE = 0.3


class DayError(Exception):
    """A run could not be carried out (a process did not start, a query failed)."""


def log(msg):
    print(f"day-sim: {msg}", file=sys.stderr, flush=True)


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, timeout=10, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def http_text(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# --- the hidden truth of the day ------------------------------------------------------


def load_population(build, workdir, count, seed, now_iso):
    """member-gen's members and truth, generated once per (count, seed, date)."""
    members = os.path.join(workdir, f"members-{count}-{seed}.jsonl")
    truth = os.path.join(workdir, f"truth-{count}-{seed}.jsonl")
    subprocess.run([os.path.join(build, "bin", "member-gen"), "--count", str(count), "--seed",
                    str(seed), "--now", now_iso, "--out", members, "--truth", truth],
                   check=True, capture_output=True, timeout=600)
    with open(members) as f:
        mem = [json.loads(line) for line in f]
    with open(truth) as f:
        tr = {t["member_id"]: t for t in (json.loads(line) for line in f)}
    return members, mem, tr


def draw_opens(members, truth, day0, seed, share_prefer, share_cache_only):
    """The day's app opens: [(t_sim, member_id, trading_partner_id, mode, local_hour)].

    Who: member-gen's own draw (opened), then moved by the member's weekday
    factor for the date (a factor f < 1 drops an opener with probability
    1 - f; f > 1 adds non-openers so the expected share becomes p * f).
    When: an hour from usage_by_hour on the member's local clock of the
    day's date, a uniform minute and second; a second open for some. Members
    without RTE enabled never reach the eligibility check."""
    rng = random.Random(seed * 7919 + 17)
    day_start_local = datetime.fromtimestamp(day0, ZoneInfo(DAY_ZONE))
    date = day_start_local.date()
    weekday = date.weekday()  # member-gen's weekday_factor: index 0 = Monday
    opens = []
    openers = set()
    for m in members:
        t = truth[m["member_id"]]
        u = rng.random()
        if not m["has_rte_enabled"]:
            continue
        p = t["p_open_24h"]
        f = m["weekday_factor"][weekday]
        if t["opened"]:
            opened = f >= 1.0 or u < f
        else:
            opened = f > 1.0 and p < 1.0 and u < p * (f - 1.0) / (1.0 - p)
        if not opened:
            continue
        openers.add(m["member_id"])
        zone = ZoneInfo(STATE_ZONE.get(m["state"], DAY_ZONE))
        r, acc, hour = rng.random(), 0.0, 23
        for h, w in enumerate(m["usage_by_hour"]):
            acc += w
            if r < acc:
                hour = h
                break
        local = datetime(date.year, date.month, date.day, hour, rng.randrange(60),
                         rng.randrange(60), tzinfo=zone)
        ts = local.timestamp()
        # the member's local day and New York's overlap by all but a few hours:
        # what falls outside the simulated day wraps around it
        ts = day0 + (ts - day0) % DAY_S
        times = [ts]
        if rng.random() < SECOND_OPEN_SHARE:
            t2 = ts + rng.uniform(300, 4 * 3600)
            if t2 < day0 + DAY_S:
                times.append(t2)
        for tt in times:
            x = rng.random()
            mode = ("PREFER_CACHED" if x < share_prefer else
                    "CACHE_ONLY" if x < share_prefer + share_cache_only else "DEFAULT")
            lh = datetime.fromtimestamp(tt, zone).hour
            opens.append((tt, m["member_id"], m["trading_partner_id"], mode, lh))
    opens.sort()
    return opens, openers


# --- processes -------------------------------------------------------------------------


class Proc:
    """One process of a run: started with env overrides, stopped with SIGTERM."""

    def __init__(self, name, argv, env, rundir, ports=True):
        self.name = name
        self.ports_file = os.path.join(rundir, f"{name}.ports") if ports else None
        self.log_path = os.path.join(rundir, f"{name}.log")
        self.env = dict(os.environ)
        if ports:
            self.env.update({"RTE_ADMIN_ADDR": "127.0.0.1:0", "RTE_HTTP_ADDR": "127.0.0.1:0",
                             "RTE_GRPC_ADDR": "127.0.0.1:0", "RTE_PORTS_FILE": self.ports_file})
        self.env.update(env)
        self.argv = argv
        self.proc = None
        self.ports = {}

    def start(self, timeout=60):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        if not self.ports_file:
            return self
        deadline = time.monotonic() + timeout
        while not (os.path.exists(self.ports_file) and os.path.getsize(self.ports_file) > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise DayError(f"{self.name} did not start (exit {self.proc.poll()}); "
                               f"see {self.log_path}")
            time.sleep(0.05)
        time.sleep(0.02)
        with open(self.ports_file) as f:
            self.ports = json.load(f)
        return self

    def url(self, port, path=""):
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url("admin", "/readyz"), timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise DayError(f"{self.name} not ready; see {self.log_path}")

    def stop(self, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode


class Clock:
    """The run's shared simulated clock: sim = start + (real - anchor) * scale."""

    def __init__(self, start, anchor, scale):
        self.start, self.anchor, self.scale = start, anchor, scale

    def env(self):
        return {"RTE_CLOCK_SCALE": repr(self.scale), "RTE_CLOCK_START": iso(self.start),
                "RTE_CLOCK_ANCHOR": str(int(self.anchor))}

    def sim(self, real=None):
        return self.start + ((time.time() if real is None else real) - self.anchor) * self.scale

    def real(self, sim):
        return self.anchor + (sim - self.start) / self.scale


# --- one run ---------------------------------------------------------------------------


class Run:
    """One simulated day with warming on or off."""

    def __init__(self, cfg, warming, opens, members_path):
        self.cfg = cfg
        self.warming = warming
        self.opens = opens
        self.members_path = members_path
        self.name = "on" if warming else "off"
        self.dir = os.path.join(cfg.out, f"run-{self.name}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.procs = []
        self.results = []
        self.samples = []
        self.stop_sampling = threading.Event()

    def bin(self, name):
        return os.path.join(self.cfg.build, "bin", name)

    def start(self, proc, ready=True):
        self.procs.append(proc)
        proc.start()
        if ready and proc.ports_file:
            proc.wait_ready()
        return proc

    def common_env(self):
        return dict(self.clock.env(), **{
            "RTE_REDIS_URL": self.redis_url, "RTE_KAFKA_BROKERS": self.bootstrap,
            "RTE_LOG_LEVEL": "warn", "RTE_HEALTH_INTERVAL": "500ms",
            "RTE_CACHE_MEMBER_KEY_SECRET": self.secret, "RTE_STEDI_API_KEY": "test-key",
            "RTE_STEDI_BASE_URL": self.sim.url("http"), "RTE_SHUTDOWN_DEADLINE": "20s",
            # the day makes its gRPC calls without tokens (docs/auth.md): checks off, explicitly
            "RTE_GRPC_AUTH_REQUIRED": "false"})

    def setup(self):
        cfg = self.cfg
        self.secret = f"day-{cfg.seed}-{self.name}"
        # Redis and the Kafka dev broker of this run alone
        port = free_port()
        self.start(Proc("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", self.dir],
                        {}, self.dir, ports=False))
        self.redis_url = f"redis://127.0.0.1:{port}"
        wait(lambda: redis_ping(port), 20, "redis")
        boot = os.path.join(self.dir, "kafka.bootstrap")
        self.start(Proc("kafka-dev-broker", [self.bin("kafka-dev-broker"), "--bootstrap-file",
                                             boot], {}, self.dir, ports=False))
        wait(lambda: os.path.exists(boot) and os.path.getsize(boot) > 0, 30, "kafka-dev-broker")
        with open(boot) as f:
            self.bootstrap = f.read().strip()
        # Yesterday's answers still in the cache (same members both runs)
        if cfg.carryover_every:
            out = subprocess.run(
                [self.bin("cache-fill"), "--members", self.members_path, "--every",
                 str(cfg.carryover_every)], capture_output=True, text=True, timeout=300,
                env=dict(os.environ, RTE_REDIS_URL=self.redis_url, RTE_LOG_LEVEL="warn",
                         RTE_CACHE_MEMBER_KEY_SECRET=self.secret,
                         RTE_CLOCK_START=iso(cfg.day0 - cfg.carryover_age)))
            if out.returncode != 0:
                raise DayError(f"cache-fill failed: {out.stderr.strip()}")
            self.carryover = out.stdout.strip()
        # The clock: the simulated day's lead-in starts once everything had time to start
        lead = cfg.lead_s
        self.clock = Clock(cfg.day0 - lead, time.time() + cfg.startup_s, cfg.scale)
        sim_env = dict(self.clock.env(), RTE_LOG_LEVEL="warn")
        if cfg.outage:
            sim_env["RTE_SIM_DOWNTIME"] = cfg.outage
        self.sim = self.start(Proc("stedi-sim", [self.bin("stedi-sim")], sim_env, self.dir))
        env = self.common_env()
        self.cron = self.start(Proc("member-cron", [self.bin("member-cron")], dict(
            env, RTE_MEMBER_CRON_MEMBERS=self.members_path,
            RTE_MEMBER_CRON_SCHEDULES=os.path.join(REPO, "services/member-cron/schedules.yaml"),
            RTE_MEMBER_CRON_MODEL=os.path.join(REPO, "services/member-cron/model.yaml")),
            self.dir))
        self.receiver = self.start(Proc("webhook-receiver", [self.bin("webhook-receiver")], dict(
            env, RTE_WH_SECRETS="whsec-day-sim-secret", RTE_WH_POLL_ENABLED="true"), self.dir))
        self.gateway = self.start(Proc("cache-gateway", [self.bin("cache-gateway")], dict(
            env, RTE_GATEWAY_MEMBER_DIR=self.members_path,
            RTE_GATEWAY_WORKERS=str(cfg.gateway_workers)), self.dir))
        self.warmer = None
        if self.warming:
            wenv = dict(env, RTE_WARMER_MEMBERS=self.members_path)
            if cfg.warmer_min_probability is not None:
                wenv["RTE_WARMER_MIN_PROBABILITY"] = str(cfg.warmer_min_probability)
            self.warmer = self.start(Proc("cache-warmer", [self.bin("cache-warmer")], wenv,
                                          self.dir))
        self.batch_rpc = None
        if cfg.batch_job and os.path.exists(self.bin("batch-rpc")):
            benv = dict(env)
            for kv in cfg.batch_rpc_env:
                k, _, v = kv.partition("=")
                benv[k] = v.replace("{members}", self.members_path)
            self.batch_rpc = self.start(Proc("batch-rpc", [self.bin("batch-rpc")], benv,
                                             self.dir))
        self.start_prometheus()
        late = time.time() - self.clock.real(cfg.day0)
        if late > 0:
            raise DayError(f"start-up took too long: the day began {late:.1f} s (real) before "
                           f"every process was ready; raise --startup-seconds")

    def scrape_targets(self):
        t = {"stedi-sim": self.sim, "member-cron": self.cron, "webhook-receiver": self.receiver,
             "cache-gateway": self.gateway}
        if self.warmer:
            t["cache-warmer"] = self.warmer
        if self.batch_rpc:
            t["batch-rpc"] = self.batch_rpc
        return t

    def start_prometheus(self):
        cfg_path = os.path.join(self.dir, "prometheus.yml")
        iv = self.cfg.scrape_interval
        with open(cfg_path, "w") as f:
            f.write(f"global:\n  scrape_interval: {iv}ms\n  scrape_timeout: {iv * 9 // 10}ms\n"
                    "scrape_configs:\n")
            for name, p in self.scrape_targets().items():
                f.write(f"  - job_name: {name}\n    static_configs:\n"
                        f"      - targets: ['127.0.0.1:{p.ports['admin']}']\n")
        port = free_port()
        self.prom_url = f"http://127.0.0.1:{port}"
        self.prom = self.start(Proc("prometheus", [
            "prometheus", f"--config.file={cfg_path}",
            f"--storage.tsdb.path={os.path.join(self.dir, 'tsdb')}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], {}, self.dir,
            ports=False))
        wait(lambda: http_ok(self.prom_url + "/-/ready"), 60, "prometheus")

    def promql(self, expr):
        q = urllib.parse.urlencode({"query": expr})
        d = http_json(f"{self.prom_url}/api/v1/query?{q}", timeout=30)
        if d.get("status") != "success":
            raise DayError(f"prometheus query {expr!r}: {d}")
        return d["data"]["result"]

    def promval(self, expr):
        r = self.promql(expr)
        return float(r[0]["value"][1]) if r else 0.0

    # --- the load ---------------------------------------------------------------------

    def sampler(self):
        url = self.sim.url("http", "/_sim/stats")
        while not self.stop_sampling.is_set():
            try:
                st = http_json(url, timeout=2)
                st["t"] = self.clock.sim()
                self.samples.append(st)
            except (urllib.error.URLError, OSError, ValueError):
                pass
            self.stop_sampling.wait(self.cfg.sample_interval)

    def worker(self, q):
        import requests
        s = requests.Session()
        base = self.gateway.url("http", "/v1/eligibility/")
        while True:
            item = q.get()
            if item is None:
                return
            t, mid, tp, mode, lh = item
            sent = time.time()
            status, cs, err = 0, "error", None
            t0 = time.perf_counter()
            try:
                r = s.get(base + mid, params={"trading_partner_id": tp, "cache_control": mode},
                          timeout=self.cfg.request_timeout)
                status = r.status_code
                if status == 200:
                    cs = r.json().get("cache_status", "error")
            except Exception as e:  # noqa: BLE001 - a failed request is a measured failure
                err = str(e)[:200]
            real = time.perf_counter() - t0
            self.results.append({"t": t, "member": mid, "mode": mode, "local_hour": lh,
                                 "status": status, "cache": cs, "real_s": real,
                                 "lag_s": sent - self.clock.real(t), "error": err})

    def replay(self):
        q = queue.Queue()
        workers = [threading.Thread(target=self.worker, args=(q,), daemon=True)
                   for _ in range(self.cfg.client_workers)]
        for w in workers:
            w.start()
        samp = threading.Thread(target=self.sampler, daemon=True)
        samp.start()
        batch_job_at = self.cfg.day0 + self.cfg.batch_job_hour * 3600
        batch_started = False
        for item in self.opens:
            if self.batch_rpc and not batch_started and item[0] >= batch_job_at:
                batch_started = True
                threading.Thread(target=self.batch_job, daemon=True).start()
            delay = self.clock.real(item[0]) - time.time()
            if delay > 0:
                time.sleep(delay)
            q.put(item)
        end = self.clock.real(self.cfg.day0 + DAY_S)
        if end > time.time():
            time.sleep(end - time.time())
        for _ in workers:
            q.put(None)
        for w in workers:
            w.join(self.cfg.request_timeout + 5)
        self.stop_sampling.set()
        samp.join(5)

    def batch_job(self):
        """The optional mid-day phase: a 20,000-member PREFER_CACHED refresh through
        batch-rpc's SubmitBatch (runs only when build/bin/batch-rpc exists)."""
        try:
            import grpc
            sys.path.insert(0, os.path.join(self.cfg.build, "gen", "py"))
            import batch_eligibility_pb2 as be
            import eligibility_pb2 as el
            ids = self.batch_members
            req = be.SubmitBatchRequest(client_service_name="day-sim",
                                        client_job_id=f"day-{self.cfg.seed}-{self.name}",
                                        member_ids=be.MemberIdList(member_ids=ids),
                                        cache_control=el.CACHE_CONTROL_PREFER_CACHED)
            ch = grpc.insecure_channel(f"127.0.0.1:{self.batch_rpc.ports['grpc']}")
            call = ch.unary_unary("/rte.v1.BatchEligibilityService/SubmitBatch",
                                  request_serializer=be.SubmitBatchRequest.SerializeToString,
                                  response_deserializer=be.SubmitBatchResponse.FromString)
            resp = call(req, timeout=60)
            self.batch_job_result = {"batch_id": resp.batch_id,
                                     "total_members": resp.total_members}
        except Exception as e:  # noqa: BLE001 - reported, the day goes on
            self.batch_job_result = {"error": str(e)[:300]}

    # --- after the day ------------------------------------------------------------------

    def collect(self):
        """Everything the report needs, read before the processes stop."""
        cfg = self.cfg
        # The day is over: member-cron stops before the next day's fire (due at this very
        # midnight) feeds more warming; cache-warmer gets a window and a flush check to
        # submit what the day queued, and the last scrapes see the end. Then stedi-sim's
        # counters and Prometheus describe the same, finished, day.
        self.cron.stop()
        time.sleep((300 + 60) / cfg.scale + 3 * cfg.scrape_interval / 1000.0 + 0.5)
        stats = http_json(self.sim.url("http", "/_sim/stats"))
        predictions, warmed, problems = {}, {}, []
        try:
            predictions = self.read_predictions()
            warmed = self.read_warmed(predictions)
        except Exception as e:  # noqa: BLE001 - the day's other figures still stand
            problems.append(f"predictions/warmed not read: {e!r}")
            log(f"run '{self.name}': {problems[-1]}")
        direct = {n: http_text(p.url("admin", "/metrics"))
                  for n, p in self.scrape_targets().items() if p is not self.cron}
        span = int(self.prom_span_s()) + 60
        prom = {
            "requests_by_result": {r["metric"].get("result", ""): float(r["value"][1])
                                   for r in self.promql('sum by (result) '
                                                        '(rte_cache_control_requests_total'
                                                        '{job="cache-gateway"})')},
            "requests_by_mode_result": [
                (r["metric"].get("mode", ""), r["metric"].get("result", ""),
                 float(r["value"][1]))
                for r in self.promql('sum by (mode, result) (rte_cache_control_requests_total'
                                     '{job="cache-gateway"})')],
            "hit_total": self.promval('sum(rte_cache_hit_total{job="cache-gateway"})'),
            "miss_total": self.promval('sum(rte_cache_miss_total{job="cache-gateway"})'),
            "realtime_by_job": {r["metric"]["job"]: float(r["value"][1]) for r in self.promql(
                'sum by (job) (rte_stedi_calls_total{api="realtime"})')},
            "realtime_by_job_outcome": [
                (r["metric"]["job"], r["metric"].get("outcome", ""), float(r["value"][1]))
                for r in self.promql('sum by (job, outcome) (rte_stedi_calls_total'
                                     '{api="realtime"})')],
            "batch_checks": self.promval("sum(rte_batch_checks_submitted_total)"),
            "batch_checks_by_job": {r["metric"]["job"]: float(r["value"][1]) for r in self.promql(
                "sum by (job) (rte_batch_checks_submitted_total)")},
            "batches": self.promval("sum(rte_batch_submitted_total)"),
            "slots_max_sampled": self.promval(
                f"max_over_time(sum(rte_slots_in_use)[{span}s:"
                f"{cfg.scrape_interval}ms])"),
            "urgent_by_outcome": {r["metric"].get("outcome", ""): float(r["value"][1])
                                  for r in self.promql('sum by (outcome) '
                                                       '(rte_cache_warming_urgent_total)')},
            "prediction_accuracy": {r["metric"].get("source", ""): float(r["value"][1])
                                    for r in self.promql('rte_cache_warming_prediction_accuracy')},
            "likely_emitted": self.promval(
                f'sum(max_over_time(member_cron_events_emitted_total'
                f'{{topic="digital-twin.prediction.app_usage_likely"}}[{span}s]))'),
            "cron_emitted": self.promval(
                f'sum(max_over_time(member_cron_events_emitted_total'
                f'{{topic="member-cron-events"}}[{span}s]))'),
        }
        return {"stats": stats, "prom": prom, "direct_metrics": direct,
                "predictions": predictions, "warmed": warmed, "problems": problems,
                "batch_job": getattr(self, "batch_job_result", None),
                "urgent_check": getattr(self, "urgent_check", {})}

    def prom_span_s(self):
        return time.time() - self.clock.anchor + self.cfg.startup_s

    def read_predictions(self):
        """{member_id: probability} of app_usage_likely events member-cron emitted."""
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        topic = "digital-twin.prediction.app_usage_likely"
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"day-sim-{self.name}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            md = c.list_topics(topic, timeout=10)
            parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.topics[topic].partitions]
            highs = {}
            for tp in parts:
                _, hi = c.get_watermark_offsets(tp, timeout=10)
                highs[tp.partition] = hi
            c.assign(parts)
            out, done = {}, {p for p, hi in highs.items() if hi == 0}
            deadline = time.monotonic() + 120
            while len(done) < len(highs) and time.monotonic() < deadline:
                for msg in c.consume(1000, timeout=1.0):
                    if msg.error():
                        continue
                    ev = json.loads(msg.value())
                    out[ev["member_id"]] = ev["data"]["probability"]
                    if msg.offset() + 1 >= highs[msg.partition()]:
                        done.add(msg.partition())
            if len(done) < len(highs):
                raise DayError("could not read every app_usage_likely event back")
            return out
        finally:
            c.close()

    def read_warmed(self, predictions):
        """Members cache-warmer sent to Stedi: {member_id: (warmed at, sim s; how)}.

        Batch: every item of every batch cache-warmer registered (stedi-sim's
        items endpoint names the member), warmed at its registration. Urgent:
        a member predicted above warmer.urgent_above (0.9) whose cache entry
        was written by a real-time call before its first request of the day
        (or who never asked)."""
        if not self.warmer:
            return {}
        import hashlib
        import hmac
        import redis
        rds = redis.Redis.from_url(self.redis_url)
        warmed = {}
        prefix = "rte:batch"
        for key in rds.scan_iter(match=f"{prefix}:*", count=1000):
            rest = key.decode()[len(prefix) + 1:]
            # a batch's record is a hash; the due set, leases and item maps are not
            if ":" in rest or rds.type(key) != b"hash":
                continue
            h = rds.hgetall(key)
            if h.get(b"source") != b"cache-warmer":
                continue
            at = int(h.get(b"registered_ms", b"0")) / 1000.0
            for mid in self.batch_items(rest):
                warmed.setdefault(mid, (at, "batch"))
        first = {}
        for r in self.results:
            if r["member"] not in first or r["t"] < first[r["member"]]:
                first[r["member"]] = r["t"]
        tp = {m: t for _, m, t, _, _ in self.opens}
        tp.update(self.partners)
        check = self.urgent_check = {}
        for mid, p in predictions.items():
            if p <= 0.9 or mid in warmed or mid not in tp:
                continue
            mk = hmac.new(self.secret.encode(), mid.encode(), hashlib.sha256).hexdigest()[:32]
            v = rds.get(f"rte:eligibility:{mk}:{tp[mid]}")
            e = json.loads(v) if v else {}
            at = datetime.strptime(e["cached_at"][:19], "%Y-%m-%dT%H:%M:%S").replace(
                tzinfo=timezone.utc).timestamp() if e.get("cached_at") else None
            why = ("no entry" if not e else f"source {e.get('source')}"
                   if e.get("source") != "stedi_realtime" else "written after a request"
                   if at > first.get(mid, float("inf")) else "urgent")
            check[why] = check.get(why, 0) + 1
            if why == "urgent":
                warmed[mid] = (at, "urgent")
        return warmed

    def batch_items(self, batch_id):
        members, params = [], {"pageSize": "1000"}
        while True:
            url = self.sim.url("http", f"/2024-04-01/eligibility-manager/batch/{batch_id}/items?"
                               + urllib.parse.urlencode(params))
            req = urllib.request.Request(url, headers={"Authorization": "test-key"})
            with urllib.request.urlopen(req, timeout=30) as r:
                d = json.loads(r.read())
            members += [it["additionalInfo"]["eligibility"]["subscriberMemberId"]
                        for it in d["items"]]
            if not d.get("nextPageToken"):
                return members
            params["pageToken"] = d["nextPageToken"]

    def stop_all(self):
        codes = {}
        for p in reversed(self.procs):
            codes[p.name] = p.stop()
        return codes

    def execute(self):
        t0 = time.time()
        try:
            self.setup()
            log(f"run '{self.name}': processes up; day of {self.cfg.day_seconds:.0f} s real "
                f"(scale {self.cfg.scale:g}) starts in "
                f"{self.clock.real(self.cfg.day0) - time.time():.1f} s")
            self.replay()
            log(f"run '{self.name}': day done, {len(self.results)} requests; collecting")
            data = self.collect()
        finally:
            codes = self.stop_all()
        data["exit_codes"] = codes
        data["results"] = self.results
        data["samples"] = self.samples
        data["clock"] = {"start": self.clock.start, "anchor": self.clock.anchor,
                         "scale": self.clock.scale}
        data["carryover"] = getattr(self, "carryover", "")
        data["wall_s"] = time.time() - t0
        return data


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise DayError(f"timed out waiting for {what}")


# --- command line ----------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="day-sim", description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=100000, help="population size (member-gen)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--day-seconds", type=float, default=600.0,
                    help="real seconds for the 24 simulated hours (scale = 86400 / this)")
    ap.add_argument("--date", default="2026-12-08",
                    help="the simulated day (New York calendar date; default a Tuesday)")
    ap.add_argument("--out", default=os.path.join(REPO, "run", "day"))
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--runs", default="off,on", help="off, on or off,on")
    ap.add_argument("--prefer-cached", type=float, default=0.12,
                    help="share of opens asking PREFER_CACHED")
    ap.add_argument("--cache-only", type=float, default=0.08,
                    help="share of opens asking CACHE_ONLY")
    ap.add_argument("--outage", default="60054@13:00-15:00",
                    help="stedi-sim payer downtime, payer@HH:MM-HH:MM in simulated UTC "
                         "('' for none)")
    ap.add_argument("--carryover-every", type=int, default=3,
                    help="every K-th member has yesterday's answer in the cache (0 = cold)")
    ap.add_argument("--carryover-age", type=float, default=20.0,
                    help="hours before the day's start that yesterday's answers were cached")
    ap.add_argument("--warmer-min-probability", type=float, default=None,
                    help="what-if: cache-warmer's warmer.min_probability (shipped: 0.7)")
    ap.add_argument("--client-workers", type=int, default=96)
    ap.add_argument("--gateway-workers", type=int, default=64)
    ap.add_argument("--request-timeout", type=float, default=60.0)
    ap.add_argument("--scrape-interval", type=int, default=1000, help="Prometheus, real ms")
    ap.add_argument("--sample-interval", type=float, default=0.1,
                    help="real seconds between stedi-sim samples")
    ap.add_argument("--startup-seconds", type=float, default=15.0)
    ap.add_argument("--batch-job-hour", type=float, default=14.0,
                    help="hours into the day the optional batch-rpc job starts")
    ap.add_argument("--no-batch-job", dest="batch_job", action="store_false",
                    help="skip the batch-rpc phase even when build/bin/batch-rpc exists")
    ap.add_argument("--batch-rpc-env", action="append",
                    default=["RTE_BATCHRPC_MEMBERS={members}", "RTE_GRPC_AUTH_REQUIRED=false"],
                    help="KEY=VALUE for batch-rpc's environment ({members}: the directory); "
                         "default: the directory and no token checks (the driver has no JWKS)")
    a = ap.parse_args(argv)
    if a.members < 10 or a.members > 1000000:
        ap.error("--members: expected 10..1000000")
    if not 10 <= a.day_seconds <= 86400:
        ap.error("--day-seconds: expected 10..86400")
    if a.prefer_cached < 0 or a.cache_only < 0 or a.prefer_cached + a.cache_only > 1:
        ap.error("--prefer-cached + --cache-only: expected shares in 0..1 summing to <= 1")
    if a.runs not in ("off", "on", "off,on"):
        ap.error("--runs: expected off, on or off,on")
    if a.warmer_min_probability is not None and not 0 <= a.warmer_min_probability <= 1:
        ap.error("--warmer-min-probability: expected 0..1")
    if a.carryover_every < 0:
        ap.error("--carryover-every: expected >= 0")
    try:
        d = datetime.strptime(a.date, "%Y-%m-%d")
    except ValueError:
        ap.error(f"--date '{a.date}': expected YYYY-MM-DD")
    a.day0 = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(DAY_ZONE)).timestamp()
    a.scale = DAY_S / a.day_seconds
    a.lead_s = 600.0  # ten simulated minutes before midnight: member-cron's daily fire is due
    a.startup_s = a.startup_seconds
    a.carryover_age = a.carryover_age * 3600.0
    a.out = os.path.abspath(a.out)
    a.build = os.path.abspath(a.build)
    return a


def main(argv=None):
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    os.makedirs(cfg.out, exist_ok=True)
    cmd = "/usr/bin/python3 tools/day-sim/day_sim.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    for tool in ("redis-server", "prometheus"):
        if shutil.which(tool) is None:
            log(f"{tool} is missing: run make deps")
            return 1
    members_path, members, truth = load_population(cfg.build, cfg.out, cfg.members, cfg.seed,
                                                   iso(cfg.day0))
    opens, openers = draw_opens(members, truth, cfg.day0, cfg.seed, cfg.prefer_cached,
                                cfg.cache_only)
    log(f"{len(members)} members, {len(openers)} open the app, {len(opens)} eligibility "
        f"requests over the day of {iso(cfg.day0)}; scale {cfg.scale:g}")
    runs = {}
    for name in cfg.runs.split(","):
        run = Run(cfg, name == "on", opens, members_path)
        run.batch_members = [m["member_id"] for m in members[:20000]]
        run.partners = {m["member_id"]: m["trading_partner_id"] for m in members}
        try:
            runs[name] = run.execute()
        except DayError as e:
            log(f"run '{name}' failed: {e}")
            return 1
    report = day_report.build(cfg, cmd, members, openers, opens, runs)
    day_report.write(cfg.out, report)
    print(day_report.table(report))
    print(f"\nreport: {os.path.join(cfg.out, 'report.html')} "
          f"(figures: {os.path.join(cfg.out, 'report.json')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
