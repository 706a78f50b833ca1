"""test_kafka_consumer_stall - starved consumers get their partitions back; stuck ones show it.

The stall of issue 23: under heavy load a webhook-receiver's three consumers
lost their partitions and got none back for minutes while /readyz stayed
green. Reproduced here with SIGSTOP/SIGCONT cycles (4 s stopped, 0.5 s
running, for 30 s; each stop longer than the suites' 3 s session timeout)
while callbacks keep arriving whenever the process runs:

- target "receiver": the receiver is starved; the coordinator evicts its
  members, which rejoin when they run again.
- target "broker": the broker is starved (on the mock cluster, the process
  holding the group coordinator); the members time their own sessions out
  (librdkafka's SESSTMOUT), lose their partitions and rejoin. On the mock
  cluster of librdkafka 2.0.2 that JoinGroup is never answered: the member
  waits until the request times out, max.poll.interval.ms + 3 s later
  (librdkafka's default 300 s: the 222 s of the issue). Our consumers now
  default to 60 s, so they rejoin within about a minute. Apache Kafka
  answers the rejoin within seconds.

Runs on the mock cluster (make test) and on Apache Kafka (make test-kafka).
Asserted, without a restart (the same pid throughout): once the starvation
ends, all 6 partitions of rte.stedi.batch-results are assigned again and the
lag drains to 0 within RECOVER_S, and every callback answered 202 is in the
cache. Prints the figures (pytest -s).

The last test checks the detection: a consumer behind on its partitions
without finishing a message for longer than health.consumer_stuck_after
turns /readyz 503 (naming it) and shows in rte_kafka_consumer_stuck_seconds.
"""
import os
import signal
import threading
import time

import pytest

from conftest import BUILD, stop_clean, wait_for
from kafka_util import APACHE, start_broker
from webhook_util import body_of, callback, metric, post, sign_standard, start_receiver

TOPIC = "rte.stedi.batch-results"
PARTITIONS = 6
N = 5  # results per callback
# bound on reassignment + drain after the starvation ends: a JoinGroup the coordinator never
# answers is given up after max.poll.interval.ms + 3 s (our default 60 s), then rejoined
RECOVER_S = 90


def gauge(rx, name):
    return metric(rx, name, topic=TOPIC)


class Sender(threading.Thread):
    """Posts fresh callbacks until stopped; keeps the ids answered 202."""

    def __init__(self, rx, prefix):
        super().__init__(daemon=True)
        self.rx, self.prefix = rx, prefix
        self.accepted, self.seq = [], 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.seq += 1
            bid = f"{self.prefix}{self.seq}"
            body = body_of(callback(bid, N))
            try:
                if post(self.rx, body, sign_standard(body), timeout=20).status_code == 202:
                    self.accepted.append(bid)
            except Exception:  # noqa: BLE001 - stopped mid-request: not accepted
                pass
            time.sleep(0.05)


def starve(pids, seconds, stop_s=4.0, run_s=0.5):
    """SIGSTOP/SIGCONT cycles for `seconds`: each cycle stops the next pid of pids
    for stop_s, then lets it run for run_s."""
    end = time.monotonic() + seconds
    cycles = 0
    try:
        while time.monotonic() < end:
            pid = pids[cycles % len(pids)]
            os.kill(pid, signal.SIGSTOP)
            time.sleep(stop_s)
            os.kill(pid, signal.SIGCONT)
            time.sleep(run_s)
            cycles += 1
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    return cycles


@pytest.fixture
def own_broker(tmp_path):
    """A broker of the test's own: starving one must not take the session's broker down."""
    b = start_broker(tmp_path)
    yield b
    b.stop()


@pytest.mark.skipif(BUILD.rstrip("/").endswith("build-asan"),
                    reason="a recovery-time bound under SIGSTOP starvation; the sanitizer build "
                    "runs the consumer's paths in the other Kafka suites and the readyz test")
@pytest.mark.parametrize("target", ["receiver", "broker"])
def test_starved_consumers_recover_without_restart(workdir, redis_server, own_broker, target):
    if target == "broker" and not APACHE:
        # librdkafka 2.0.2's mock coordinator aborts on a member's second JoinGroup while
        # the first is unanswered (rdkafka_mock_cgrp.c:567 `!member->resp`), which a
        # starved mock broker provokes at random: a bug of the mock, seen in make test runs.
        pytest.skip("broker starvation runs on Apache Kafka (make test-kafka); the mock "
                    "coordinator of librdkafka 2.0.2 aborts under it (docs/kafka.md)")
    kafka_broker = own_broker
    rds = redis_server.client()
    rx = start_receiver(workdir, redis_server.url, kafka_broker.bootstrap,
                        WH_PRODUCE_TIMEOUT="30s")
    pid = rx.proc.pid
    s = Sender(rx, f"st{os.getpid()}x")
    figures = {}
    try:
        wait_for(lambda: gauge(rx, "rte_kafka_consumer_assigned_partitions") == PARTITIONS,
                 timeout=60, what="all partitions assigned before the starvation")
        s.start()
        time.sleep(2)
        pids = [pid] if target == "receiver" else [kafka_broker.proc.pid]
        figures["starvation cycles (4 s stopped, 0.5 s running)"] = starve(pids, 30)
        t_end = time.monotonic()
        assert rx.proc.poll() is None
        wait_for(lambda: gauge(rx, "rte_kafka_consumer_assigned_partitions") == PARTITIONS,
                 timeout=RECOVER_S, interval=0.5, what="partitions reassigned after the starvation")
        figures["partitions reassigned after the starvation (s)"] = time.monotonic() - t_end
        time.sleep(3)
        s.halt.set()
        s.join(30)
        wait_for(lambda: gauge(rx, "rte_kafka_consumer_lag") == 0, timeout=RECOVER_S,
                 interval=0.5, what="lag drained")
        figures["lag 0 after the starvation (s)"] = time.monotonic() - t_end
        assert len(s.accepted) > 10, f"only {len(s.accepted)} callbacks accepted"
        for bid in s.accepted:
            wait_for(lambda b=bid: rds.scard(f"rte:wh:batch:{b}:written") == N, timeout=RECOVER_S,
                     interval=0.2, what=f"batch {bid} written")
        figures["every accepted callback cached after the starvation (s)"] = \
            time.monotonic() - t_end
        figures["callbacks accepted"] = len(s.accepted)
        assert rx.proc.pid == pid and rx.proc.poll() is None  # no restart
    finally:
        s.halt.set()
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        log = rx.logtext()
        stop_clean(rx)  # exit 0: under the sanitizers a leak or UB fails the test
    for what in ("assigned", "revoked", "lost"):
        figures[f"log lines: partitions {what}"] = \
            sum(1 for line in log.splitlines() if f"consumer: {what} " in line)
    print("\nconsumer starvation:")
    for k, v in figures.items():
        print(f"  {k:<60} {v:.1f}" if isinstance(v, float) else f"  {k:<60} {v}")


def test_consumer_behind_without_progress_turns_readyz_not_ready(workdir, redis_server,
                                                                 kafka_broker):
    """A consumer whose partitions have lag while it finishes nothing for longer than
    health.consumer_stuck_after makes /readyz 503, naming the consumer and why, and sets
    rte_kafka_consumer_stuck_seconds; once it catches up (lag 0) it is ready again, without
    a restart. Before issue 23 /readyz stayed 200 and the gauge did not exist."""
    from kafka_util import produce
    from test_skeleton import probe_env
    from conftest import Service
    topic = f"probe.stuck{os.getpid()}"
    produce(kafka_broker.bootstrap, topic, [(b"k", b"first")])  # creates the topic
    env = probe_env(redis_server, kafka_broker, PROBE_TOPIC=topic, RTE_PROBE_HANDLER_MS="3000",
                    RTE_HEALTH_CONSUMER_STUCK_AFTER="2s")
    s = Service("skeleton-probe", env, workdir).start()
    try:
        wait_for(lambda: metric(s, "rte_kafka_consumed_total", topic=topic, result="ok") == 1,
                 timeout=60, what="the first message handled")
        assert s.get("admin", "/readyz").status_code == 200
        produce(kafka_broker.bootstrap, topic, [(b"k", f"m{i}".encode()) for i in range(3)],
                partition=0)
        def not_ready():
            r = s.get("admin", "/readyz")
            return [r.json()] if r.status_code == 503 else None  # a 503 Response is falsy

        body = wait_for(not_ready, timeout=30, interval=0.2, what="/readyz 503")[0]
        why = body["checks"]["kafka_consumers"]
        assert why.startswith(f"a consumer of {topic} has been behind without progress for "), why
        assert metric(s, "rte_kafka_consumer_stuck_seconds", topic=topic) >= 2
        wait_for(lambda: metric(s, "rte_kafka_consumed_total", topic=topic, result="ok") == 4,
                 timeout=30, what="every message handled")
        wait_for(lambda: s.get("admin", "/readyz").status_code == 200 and
                 metric(s, "rte_kafka_consumer_stuck_seconds", topic=topic) == 0, timeout=30,
                 what="ready again once caught up, stuck gauge 0")
        assert s.get("admin", "/readyz").json()["checks"]["kafka_consumers"] == "ok"
        assert s.proc.poll() is None
    finally:
        stop_clean(s)
