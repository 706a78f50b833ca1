"""SIGTERM after the Kafka broker died: every service exits within shutdown.deadline.

Found in a test session: after a broker was killed mid-test, services hung in
their drain on SIGTERM. A consumer whose group session had expired while the
broker was gone waited in rd_kafka_consumer_close for a coordinator that never
answered (librdkafka 2.0.2 waits there without a bound), and the drain's steps
each took up to 80 % of the deadline, so only the watchdog ended the process
("drain did not finish ... exiting 1"). libcommon now gives every step a share
of shutdown.deadline (docs/operations.md, "Draining and restarts"): consumers
that cannot leave their group in time are left to the session timeout (their
uncommitted offsets are redelivered), and what the producer still holds at
90 % of the deadline is dropped, counted
(rte_kafka_produced_total{result="lost_at_shutdown"}) and logged once.

Each Kafka-using service gets a broker of its own (the mock cluster: under a
second to start), is killed with SIGKILL under it, and must then drain on
SIGTERM with exit 0 and "drained in" (nothing was pending), before the
deadline, without the watchdog. webhook-receiver is also drained with a
callback in flight: that callback is refused (503, so its sender retries),
never acknowledged, and its message is the one reported lost at shutdown
(exit 1). Under RTE_TEST_KAFKA=apache (make test-kafka) the module is
skipped: a JVM broker per case made its three consumer cases take 196 s
(they passed on Apache Kafka 4.4.0, 2026-12-08); RTE_TEST_SHUTDOWN_APACHE=1
runs them there (the producer-only services stay on the mock broker).
"""
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

import promtext
import webhook_util as W
from conftest import APACHE, Service, wait_for
from kafka_util import CONSUMER_CONFIG, start_broker

pytestmark = pytest.mark.skipif(
    APACHE and os.environ.get("RTE_TEST_SHUTDOWN_APACHE") != "1",
    reason="a JVM broker per case is slow; make test runs these on the mock broker "
           "(RTE_TEST_SHUTDOWN_APACHE=1 runs them on Apache Kafka)")

DEADLINE_S = 10
MEMBERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                       "member_dir", "five.jsonl")
MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "services", "member-cron", "model.yaml")
# the consuming services and their topics: each topic has its health series (docs/operations.md)
CONSUMERS = {"cache-warmer": {"member-cron-events", "digital-twin.prediction.app_usage_likely",
                              "rte.events"},
             "webhook-receiver": {"rte.stedi.batch-results"}}
HEALTH = ("rte_kafka_consumer_assigned_partitions", "rte_kafka_consumer_lag",
          "rte_kafka_consumer_stuck_seconds")
SERVICES = ["member-cron", "cache-warmer", "batch-rpc", "webhook-receiver", "cache-gateway"]


@pytest.fixture
def broker(tmp_path):
    b = start_broker(tmp_path)  # a broker per case: this one gets killed
    yield b
    if b.proc.poll() is None:
        b.stop()


def service_env(name, redis_server, bootstrap, workdir):
    env = {"RTE_REDIS_URL": redis_server.url, "RTE_KAFKA_BROKERS": bootstrap,
           "RTE_HEALTH_INTERVAL": "200ms", "RTE_LOG_LEVEL": "info",
           "RTE_SHUTDOWN_DEADLINE": f"{DEADLINE_S}s", "RTE_CACHE_MEMBER_KEY_SECRET": "it-secret",
           "RTE_STEDI_API_KEY": "test-key", "RTE_STEDI_BASE_URL": "http://127.0.0.1:9"}
    tag = f"it:shutdown:{time.monotonic_ns()}"
    env.update({
        "member-cron": {"RTE_MEMBER_CRON_MEMBERS": MEMBERS, "RTE_MEMBER_CRON_MODEL": MODEL,
                        "RTE_MEMBER_CRON_SCHEDULES": os.path.join(workdir, "none.yaml"),
                        "RTE_MEMBER_CRON_KEY_PREFIX": tag},
        "cache-warmer": {"RTE_WARMER_MEMBERS": MEMBERS, "RTE_WARM_PREFIX": tag},
        "batch-rpc": {"RTE_BATCHRPC_MEMBERS": MEMBERS, "RTE_BATCHRPC_PREFIX": tag},
        "webhook-receiver": {"RTE_WH_SECRETS": W.SECRET, "RTE_WH_POLL_ENABLED": "false",
                             "RTE_CACHE_MEMBER_KEY_SECRET": W.CACHE_SECRET},
        "cache-gateway": {},
    }[name])
    return env


def start(name, redis_server, broker, workdir):
    with open(os.path.join(workdir, "none.yaml"), "w") as f:
        f.write("schedules: []\n")
    cfg = os.path.join(workdir, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(CONSUMER_CONFIG)  # 3 s sessions: the group session expires soon after the kill
    svc = Service(name, service_env(name, redis_server, broker.bootstrap, workdir), workdir,
                  args=["--config", cfg]).start()
    if name in CONSUMERS:
        wait_for(lambda: assigned(svc) > 0, timeout=60, what=f"{name}'s consumers assigned")
        _, samples = promtext.parse(svc.get("admin", "/metrics").text)
        for metric in HEALTH:
            topics = {dict(labels).get("topic") for (n, labels) in samples if n == metric}
            assert topics == CONSUMERS[name], (metric, topics)
    return svc


def assigned(svc):
    _, samples = promtext.parse(svc.get("admin", "/metrics").text)
    return sum(v for (n, _), v in samples.items()
               if n == "rte_kafka_consumer_assigned_partitions")


def kill_broker(broker):
    broker.proc.kill()
    broker.proc.wait(10)


def term_and_wait(svc):
    """SIGTERM; (exit code, seconds to exit, log); fails if it outlives the deadline by 3 s."""
    t0 = time.monotonic()
    svc.signal(signal.SIGTERM)
    try:
        code = svc.wait(DEADLINE_S + 3)
    except subprocess.TimeoutExpired:
        svc.kill()
        pytest.fail(f"{svc.name} still running {DEADLINE_S + 3} s after SIGTERM: "
                    f"{svc.logtext()[-3000:]}")
    took = time.monotonic() - t0
    log = svc.logtext()
    svc.stop()
    return code, took, log


def wait_log(svc, text, timeout):
    wait_for(lambda: text in svc.logtext(), timeout=timeout, interval=0.1, what=repr(text))


@pytest.mark.parametrize("name", SERVICES)
def test_sigterm_after_broker_killed_exits_within_deadline(name, redis_server, broker, tmp_path):
    if APACHE and name not in CONSUMERS:
        pytest.skip("producer-only services run on the mock broker only (make test)")
    svc = start(name, redis_server, broker, str(tmp_path))
    kill_broker(broker)
    if name in CONSUMERS:
        # the state that hung: the consumers' group session expired while the broker is gone
        wait_log(svc, "lost ", 30)
    else:
        wait_log(svc, "dependency kafka is unreachable", 30)
    code, took, log = term_and_wait(svc)
    print(f"{name}: exit {code} {took:.1f} s after SIGTERM (deadline {DEADLINE_S} s)")
    assert "drain did not finish" not in log, log[-3000:]
    assert code == 0, f"{name} exited {code}: {log[-3000:]}"
    assert "drained in" in log
    assert took < DEADLINE_S, f"{name} took {took:.1f} s (deadline {DEADLINE_S} s)"


def test_webhook_callback_in_flight_is_refused_and_reported_lost(redis_server, broker, tmp_path):
    svc = start("webhook-receiver", redis_server, broker, str(tmp_path))
    body = W.body_of(W.callback("shutdown-before", 3))
    r = W.post(svc, body, W.sign_hex(body))
    assert r.status_code == 202, r.text  # acknowledged: it is in Kafka (then the broker dies)
    kill_broker(broker)
    wait_log(svc, "lost ", 30)
    answers = []

    def send():
        b = W.body_of(W.callback("shutdown-in-flight", 3))
        try:
            answers.append(W.post(svc, b, W.sign_hex(b), timeout=DEADLINE_S + 5).status_code)
        except requests.RequestException as e:
            answers.append(type(e).__name__)

    t = threading.Thread(target=send)
    t.start()
    time.sleep(1.0)  # the callback reaches the receiver, whose produce now waits on no broker
    code, took, log = term_and_wait(svc)
    t.join(10)
    assert "drain did not finish" not in log, log[-3000:]
    assert answers == [503], f"the callback in flight was answered {answers}, never 202"
    assert code == 1, f"exit {code}: {log[-3000:]}"
    assert "Kafka message(s) not delivered within shutdown.deadline were dropped (lost at " \
           "shutdown" in log, log[-3000:]
    assert took < DEADLINE_S, f"took {took:.1f} s (deadline {DEADLINE_S} s)"
