"""test_kafka - libcommon's Kafka module (rte/kafka.h) against kafka-dev-broker.

Drives tests/programs/kafka-probe, a consumer/producer built on rte/kafka.h,
and checks with confluent_kafka what reached the broker: delivery of every
message, redelivery after kill -9, dead-lettering with headers, offsets
committed on SIGTERM, and the producer's connectivity probe.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

from kafka_util import (CONSUMER_CONFIG, binary, consume_all, produce, read_lines, start_broker,
                        wait_for)

TOPICS = {
    "kt-roundtrip": 4,
    "kt-kill": 2,
    "kt-poison": 2,
    "kt-poison.dlq": 1,
    "kt-outage": 2,
    "kt-outage.dlq": 1,
    "kt-rebalance": 2,
    "kt-sigterm": 1,
    "kt-batched": 4,
    "kt-batched-refused": 2,
    "kt-batch": 4,
    "kt-batch.dlq": 1,
    "kt-batch-kill": 2,
    "kt-batch-outage": 2,
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("kafka"), TOPICS)
    yield b
    assert b.stop() == 0
    assert not b.bootstrap_file.exists(), "broker left its bootstrap file behind"


@pytest.fixture
def env(broker):
    return dict(os.environ, RTE_KAFKA_BROKERS=broker.bootstrap)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "kafka.yaml"
    path.write_text(CONSUMER_CONFIG)
    return str(path)


class Probe:
    """A `kafka-probe consume` process appending to an out file."""

    def __init__(self, tmp_path, env, config, group, topic, name, *extra):
        self.out = tmp_path / f"{name}.out"
        self.log = tmp_path / f"{name}.log"
        args = [binary("kafka-probe"), "consume", "--config", config, "--group", group,
                "--topic", topic, "--out", str(self.out), *extra]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)

    def lines(self):
        return read_lines(self.out)

    def keys(self):
        return [line[2] for line in self.lines()]

    def wait_lines(self, n, timeout=30.0):
        return wait_for(lambda: len(self.lines()) >= n, timeout, what=f"{n} lines in {self.out}")

    def log_text(self):
        return self.log.read_text(errors="replace")

    def terminate(self, timeout=10.0):
        """SIGTERM; returns (exit code, seconds taken)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"consumer ignored SIGTERM for {timeout} s:\n{self.log_text()}")
        return rc, time.monotonic() - t0


def probe_produce(env, topic, count, start=0, sync=False, extra=()):
    args = [binary("kafka-probe"), "produce", "--topic", topic, "--count", str(count),
            "--start", str(start), *extra] + (["--sync"] if sync else [])
    r = subprocess.run(args, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode(errors="replace")
    if not sync:  # the delivery watermark reached every message, none failed
        assert f"produced_seq={count} delivered_seq={count} failed=0" in r.stdout.decode()
    return r.stdout.decode()


def test_round_trip_delivers_each_message_once(tmp_path, env, config, broker):
    probe_produce(env, "kt-roundtrip", 1000)
    stored = consume_all(broker.bootstrap, "kt-roundtrip")
    assert sorted(m.key for m in stored) == sorted(f"k{i}".encode() for i in range(1000))

    c = Probe(tmp_path, env, config, "g-roundtrip", "kt-roundtrip", "rt")
    c.wait_lines(1000)
    time.sleep(0.5)  # would expose a duplicate delivered right after the last one
    keys = c.keys()
    assert len(keys) == 1000 and set(keys) == {f"k{i}" for i in range(1000)}
    assert all(line[3] == "m" + line[2][1:] for line in c.lines())
    assert c.terminate()[0] == 0


def test_kill9_mid_message_is_redelivered(tmp_path, env, config):
    probe_produce(env, "kt-kill", 1, sync=True)
    first = Probe(tmp_path, env, config, "g-kill", "kt-kill", "first", "--slow-ms", "3000")
    wait_for(lambda: "handling" in first.log_text(), what="the slow handler to start")
    first.proc.kill()
    first.proc.wait()
    assert first.lines() == []

    second = Probe(tmp_path, env, config, "g-kill", "kt-kill", "second")
    second.wait_lines(1)
    assert second.keys() == ["k0"]
    assert second.terminate()[0] == 0


def test_poison_and_exhausted_retries_go_to_dlq(tmp_path, env, config, broker):
    produce(broker.bootstrap, "kt-poison",
            [("p1", "ok-1"), ("p2", "bad POISON here"), ("p3", "FAILNOW"), ("p4", "ok-4")],
            partition=0)
    c = Probe(tmp_path, env, config, "g-poison", "kt-poison", "poison", "--poison-on", "POISON",
              "--fail-on", "FAILNOW", "--max-retries", "2")
    c.wait_lines(2)
    assert c.keys() == ["p1", "p4"]
    assert c.terminate()[0] == 0

    source = {m.key: m for m in consume_all(broker.bootstrap, "kt-poison")}
    dlq = {m.key: m for m in consume_all(broker.bootstrap, "kt-poison.dlq")}
    assert set(dlq) == {b"p2", b"p3"}
    poison = dlq[b"p2"]
    assert poison.value == b"bad POISON here"
    assert b"payload contains POISON" in poison.headers["dlq-reason"]
    assert poison.headers["dlq-topic"] == b"kt-poison"
    assert poison.headers["dlq-partition"] == b"0"
    assert poison.headers["dlq-offset"] == str(source[b"p2"].offset).encode()
    assert int(poison.headers["dlq-timestamp"]) > 0
    assert dlq[b"p3"].headers["dlq-reason"].startswith(b"gave up after 2 retries: ")


def start_outage(tmp_path, env, broker, topic, prefix, name, extra_config=""):
    """A dependency outage (the file "dependency-down" exists) and 10 messages on each of
    topic's two partitions (keys <prefix><partition>-<i>); a consumer of group g-<topic
    without kt-> that fails while the outage lasts has started retrying. Returns the
    outage file and the consumer."""
    config = tmp_path / "kafka.yaml"
    config.write_text(CONSUMER_CONFIG + extra_config)
    outage = tmp_path / "dependency-down"
    outage.write_text("")
    for part in (0, 1):
        produce(broker.bootstrap, topic,
                [(f"{prefix}{part}-{i}", f"v{i}") for i in range(10)], partition=part)
    c = Probe(tmp_path, env, str(config), "g-" + topic[3:], topic, name,
              "--fail-while", str(outage), "--max-retries", "100")
    wait_for(lambda: "dependency-down exists" in c.log_text(), what="the first retry")
    return outage, c


def test_outage_longer_than_max_poll_interval_stalls_instead_of_dead_lettering(tmp_path, env,
                                                                             broker):
    """A dependency outage (the handler returns RETRY for every message) lasting over twice
    max.poll.interval.ms: the consumer keeps polling with its partitions paused, so it stays
    in the group, and once the outage ends every message, including those produced during it,
    is handled exactly once and in order per partition; nothing is dead-lettered."""
    outage, c = start_outage(tmp_path, env, broker, "kt-outage", "o", "outage",
                             "kafka.consumer.max.poll.interval.ms: 3500\n")
    time.sleep(4)
    for part in (0, 1):  # arrive mid-outage, behind the stalled messages
        produce(broker.bootstrap, "kt-outage",
                [(f"o{part}-{i}", f"v{i}") for i in range(10, 15)], partition=part)
    time.sleep(4)
    assert c.lines() == []
    outage.unlink()
    c.wait_lines(30)
    time.sleep(0.5)  # would expose a redelivered duplicate
    lines = c.lines()
    assert sorted(line[2] for line in lines) == sorted(
        f"o{p}-{i}" for p in (0, 1) for i in range(15))
    for part in ("0", "1"):
        offsets = [int(line[1]) for line in lines if line[0] == part]
        assert offsets == list(range(15)), (part, offsets)
    log = c.log_text()
    assert "maximum poll interval" not in log and "revoked" not in log, log
    assert c.terminate()[0] == 0
    assert consume_all(broker.bootstrap, "kt-outage.dlq") == []


def test_rebalance_mid_retry_hands_the_partition_over(tmp_path, env, broker):
    """A second member joins while the first is retrying during an outage: the rebalance
    is served from the backoff's polls, a partition moves to the newcomer (which is not
    failing), and every message is handled exactly once, in order, across the two."""
    outage, a = start_outage(tmp_path, env, broker, "kt-rebalance", "r", "a")
    b = Probe(tmp_path, env, str(tmp_path / "kafka.yaml"), "g-rebalance", "kt-rebalance", "b")
    b.wait_lines(10)  # the partition it was given, while a still retries
    moved = b.lines()[0][0]
    assert {line[0] for line in b.lines()} == {moved} and a.lines() == []
    assert f"revoked 1 partition(s): kt-rebalance[{moved}]" in a.log_text()
    outage.unlink()
    a.wait_lines(10)
    time.sleep(0.5)  # would expose a duplicate
    lines = a.lines() + b.lines()
    assert sorted(line[2] for line in lines) == sorted(
        f"r{p}-{i}" for p in (0, 1) for i in range(10))
    for part in ("0", "1"):
        assert [int(line[1]) for line in lines if line[0] == part] == list(range(10))
    assert a.terminate()[0] == 0 and b.terminate()[0] == 0


def test_sigterm_commits_so_restart_does_not_reprocess(tmp_path, env, config):
    probe_produce(env, "kt-sigterm", 10)
    first = Probe(tmp_path, env, config, "g-sigterm", "kt-sigterm", "first")
    first.wait_lines(10)
    rc, took = first.terminate()
    assert rc == 0 and took < 5, f"exit {rc} after {took:.1f} s"
    assert len(first.lines()) == 10

    # One partition: k10.. can only arrive after any redelivered k0..k9.
    second = Probe(tmp_path, env, config, "g-sigterm", "kt-sigterm", "second")
    probe_produce(env, "kt-sigterm", 5, start=10)
    second.wait_lines(5)
    time.sleep(0.5)
    assert second.keys() == [f"k{i}" for i in range(10, 15)]
    assert second.terminate()[0] == 0


def connected(env, *extra):
    r = subprocess.run([binary("kafka-probe"), "connected", *extra], env=env,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode().split()


def test_producer_connected_follows_the_broker(tmp_path, env, broker):
    assert connected(env) == ["1"]
    from_file = {k: v for k, v in os.environ.items() if k != "RTE_KAFKA_BROKERS"}
    from_file["RTE_RUN_DIR"] = broker.run_dir
    assert connected(from_file) == ["1"]
    assert connected(dict(env, RTE_KAFKA_BROKERS="127.0.0.1:1")) == ["0"]

    (tmp_path / "b").mkdir()
    own = start_broker(tmp_path / "b")
    out = tmp_path / "connected.out"
    with open(out, "wb") as f:
        watcher = subprocess.Popen(
            [binary("kafka-probe"), "connected", "--repeat", "100", "--interval-ms", "200"],
            env=dict(env, RTE_KAFKA_BROKERS=own.bootstrap), stdout=f, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "1" in out.read_text().split(), what="connected=1")
        assert own.stop() == 0
        assert not own.bootstrap_file.exists()
        wait_for(lambda: out.read_text().split()[-1:] == ["0"], what="connected=0")
    finally:
        watcher.kill()
        watcher.wait()


def test_bad_property_is_named(tmp_path, env):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka.producer.no.such.property: 1\n")
    r = subprocess.run([binary("kafka-probe"), "connected", "--config", str(cfg)], env=env,
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b"kafka.producer.no.such.property" in r.stderr


def test_batched_produce_delivers_every_message_in_order(env, broker):
    # a batching thread flushing every 37 messages, as an HTTP loop does after each turn
    out = probe_produce(env, "kt-batched", 1000, extra=("--batched", "37"))
    assert "refused=0" in out
    stored = consume_all(broker.bootstrap, "kt-batched")
    assert sorted(int(m.key[1:]) for m in stored) == list(range(1000))
    assert all(m.value == b"m" + m.key[1:] for m in stored)
    for p in {m.partition for m in stored}:  # one thread's batched messages keep their order
        idx = [int(m.key[1:]) for m in sorted(stored, key=lambda m: m.offset) if m.partition == p]
        assert idx == sorted(idx), f"partition {p} out of order: {idx[:20]}"
    assert len({m.partition for m in stored}) > 1, "keys should spread over the partitions"


def test_batched_refusal_is_counted_and_spares_the_rest(tmp_path, env, broker):
    cfg = tmp_path / "small.yaml"
    cfg.write_text("kafka.producer.message.max.bytes: 10000\n")
    # message 5 (20,000 bytes) is refused inside its batch; the watermark still
    # reaches every number handed out, and the other 19 arrive
    out = probe_produce(env, "kt-batched-refused", 20,
                        extra=("--batched", "8", "--oversize-at", "5", "--config", str(cfg)))
    assert "refused=1" in out
    stored = consume_all(broker.bootstrap, "kt-batched-refused")
    assert sorted(int(m.key[1:]) for m in stored) == [i for i in range(20) if i != 5]


def test_batch_handler_gets_batches_poison_to_dlq_rest_stored(tmp_path, env, config, broker):
    """Batch mode: 2,000 messages arrive in batches of at most 300, each exactly once; a POISON
    verdict sends just that message to the DLQ; after SIGTERM a second member of the group gets
    nothing again (every offset of a finished batch was stored and committed)."""
    msgs = [(f"b{i}", "bad POISON" if i in (7, 1500) else f"v{i}") for i in range(2000)]
    produce(broker.bootstrap, "kt-batch", msgs)
    c = Probe(tmp_path, env, config, "g-batch", "kt-batch", "batch", "--batch", "300",
              "--poison-on", "POISON")
    c.wait_lines(1998)
    time.sleep(0.5)
    lines = c.lines()
    assert sorted(line[2] for line in lines) == sorted(
        f"b{i}" for i in range(2000) if i not in (7, 1500))
    sizes = [int(line[4][1:]) for line in lines]
    assert max(sizes) <= 300 and max(sizes) > 1, "messages were not handed over in batches"
    assert c.terminate()[0] == 0
    dlq = consume_all(broker.bootstrap, "kt-batch.dlq")
    assert sorted(m.key for m in dlq) == [b"b1500", b"b7"]
    assert all(m.headers["dlq-reason"] == b"payload contains POISON" for m in dlq)

    again = Probe(tmp_path, env, config, "g-batch", "kt-batch", "batch2", "--batch", "300")
    time.sleep(6)  # a new member's first assignment takes ~3 s on the mock cluster
    assert again.lines() == []
    assert again.terminate()[0] == 0


def test_batch_kill9_mid_batch_redelivers_the_whole_batch(tmp_path, env, config, broker):
    produce(broker.bootstrap, "kt-batch-kill", [(f"k{i}", f"v{i}") for i in range(50)],
            partition=0)
    first = Probe(tmp_path, env, config, "g-batch-kill", "kt-batch-kill", "bk1", "--batch", "100",
                  "--slow-ms", "5000")
    wait_for(lambda: "handling a batch" in first.log_text(), what="the slow batch to start")
    first.proc.kill()
    first.proc.wait()
    assert first.lines() == []
    second = Probe(tmp_path, env, config, "g-batch-kill", "kt-batch-kill", "bk2", "--batch", "100")
    second.wait_lines(50)
    assert sorted(second.keys()) == sorted(f"k{i}" for i in range(50))
    assert second.terminate()[0] == 0


def test_batch_retry_hands_the_same_batch_again_until_it_succeeds(tmp_path, env, broker):
    outage, c = start_outage(tmp_path, env, broker, "kt-batch-outage", "o", "bo",
                             extra_config="")
    c.proc.kill()
    c.proc.wait()
    c = Probe(tmp_path, env, str(tmp_path / "kafka.yaml"), "g-batch-outage", "kt-batch-outage",
              "bo2", "--fail-while", str(outage), "--max-retries", "100", "--batch", "50")
    wait_for(lambda: "dependency-down exists" in c.log_text(), what="a batch retry")
    time.sleep(1)
    assert c.lines() == []
    outage.unlink()
    c.wait_lines(20)
    time.sleep(0.5)
    assert sorted(c.keys()) == sorted(f"o{p}-{i}" for p in (0, 1) for i in range(10))
    assert c.terminate()[0] == 0


def test_async_produce_reports_each_message_once(env, broker):
    # rte_kafka_produce_async (webhook-receiver answers its callbacks from it):
    # every message's function is called exactly once, with no error once acked
    out = probe_produce(env, "kt-async", 500, sync=True, extra=("--async",))
    assert "kafka-probe: async ok=500 failed=0 twice=0 first_error=-" in out, out
    stored = consume_all(broker.bootstrap, "kt-async")
    assert sorted(int(m.key[1:]) for m in stored) == list(range(500))
    assert all(m.value == b"m" + m.key[1:] for m in stored)


def test_async_produce_reports_undelivered_messages_as_errors(tmp_path, env):
    # no broker behind the address: each message's function is called once,
    # with the reason, when its message.timeout.ms passes
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()
    cfg = tmp_path / "timeout.yaml"
    cfg.write_text("kafka.producer.message.timeout.ms: 1500\n")
    out = probe_produce(env, "kt-async-dead", 20, sync=True,
                        extra=("--async", "--brokers", dead, "--config", str(cfg)))
    assert "kafka-probe: async ok=0 failed=20 twice=0 first_error=Local: Message timed out" in out, out
