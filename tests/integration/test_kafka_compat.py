"""test_kafka_compat - Debian's librdkafka 2.0.2 against each Apache Kafka we claim.

Runs only under RTE_TEST_KAFKA=apache (make test-kafka). For each version in
RTE_KAFKA_COMPAT_VERSIONS (default: the newest release, 4.4.0, and the
newest 3.9.x, 3.9.2) it starts a fresh single-node KRaft broker and checks,
with our own C client (tests/programs/kafka-probe on rte/kafka.h) where it
can: the idempotent acks=all producer, a consumer group on the classic
protocol (JoinGroup/SyncGroup, commits), the DLQ with its headers, and a
512 KiB message with headers (the size of a webhook part). docs/kafka.md
records the results and the evidence.
"""
import os
import subprocess
import sys
import time

import pytest

from conftest import APACHE, apache_topics
from kafka_util import binary, consume_all, produce, read_lines, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "kafka"))
import kafka_cluster  # noqa: E402

pytestmark = pytest.mark.skipif(not APACHE, reason="needs RTE_TEST_KAFKA=apache")

VERSIONS = os.environ.get("RTE_KAFKA_COMPAT_VERSIONS", "4.4.0,3.9.2").split(",")
CONFIG = ("kafka.consumer.session.timeout.ms: 6000\n"
          "kafka.consumer.heartbeat.interval.ms: 1000\n")
PART = 512 * 1024


@pytest.fixture(scope="module", params=VERSIONS)
def cluster(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"compat-{request.param}")
    topics = apache_topics(["cp.in:2", "cp.in.dlq:1", "cp.big:1"])
    c = kafka_cluster.Cluster(root / "kafka", 1, request.param).start(topics)
    yield c
    c.stop()


def test_broker_reports_its_version(cluster):
    log = cluster.nodes[0].log_path.read_text(errors="replace")
    assert f"Kafka version: {cluster.version}" in log


def test_idempotent_producer_group_and_dlq(cluster, tmp_path):
    env = dict(os.environ, RTE_KAFKA_BROKERS=cluster.bootstrap)
    r = subprocess.run([binary("kafka-probe"), "produce", "--topic", "cp.in", "--count", "200"],
                       env=env, capture_output=True, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert "produced_seq=200 delivered_seq=200 failed=0" in out
    # our producer is idempotent: the broker gave it a producer id
    produce(cluster.bootstrap, "cp.in", [("poison-1", "a POISON message")], partition=0)

    cfg = tmp_path / "kafka.yaml"
    cfg.write_text(CONFIG)
    outf = tmp_path / "out"
    log = open(tmp_path / "probe.log", "wb")
    p = subprocess.Popen([binary("kafka-probe"), "consume", "--config", str(cfg), "--group",
                          f"cp-{cluster.version}", "--topic", "cp.in", "--out", str(outf),
                          "--poison-on", "POISON"], env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: len(read_lines(outf)) >= 200, 60, what="200 messages consumed")
        time.sleep(0.5)
        keys = [line[2] for line in read_lines(outf)]
        assert sorted(keys) == sorted(f"k{i}" for i in range(200))
        dlq = wait_for(lambda: consume_all(cluster.bootstrap, "cp.in.dlq"), 30, what="the DLQ copy")
        assert [m.key for m in dlq] == [b"poison-1"]
        assert dlq[0].headers["dlq-topic"] == b"cp.in"
        assert b"payload contains POISON" in dlq[0].headers["dlq-reason"]
    finally:
        p.terminate()
        assert p.wait(30) == 0
        log.close()
    # the group committed on the classic protocol: the broker knows its offsets
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"cp-{cluster.version}"})
    try:
        committed = c.committed([TopicPartition("cp.in", 0), TopicPartition("cp.in", 1)], timeout=10)
        assert sum(tp.offset for tp in committed) == 201
    finally:
        c.close()


def test_large_message_with_headers(cluster):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True,
                  "acks": "all"})
    errors = []
    body = bytes(range(256)) * (PART // 256)
    p.produce("cp.big", key="big", value=body, headers=[("rte-kind", b"callback")],
              on_delivery=lambda e, _m: errors.append(e) if e else None)
    assert p.flush(30) == 0 and not errors
    got = consume_all(cluster.bootstrap, "cp.big")
    assert len(got) == 1 and got[0].value == body and got[0].headers["rte-kind"] == b"callback"
