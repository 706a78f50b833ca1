"""kafka_util - Kafka helpers for the integration suites.

start_broker() runs tools/kafka-dev-broker (librdkafka's mock cluster) with
the suite's topics plus the ones a test asks for, and returns a Broker whose
.bootstrap is the list clients connect to. produce() and consume_all() talk
to it with confluent_kafka, independently of libcommon, so a test can check
what our C code wrote. wait_for() polls with a deadline: the machines these
run on are slow and shared, so tests never rely on fixed sleeps.

Binaries come from $RTE_BUILD_DIR/bin (the Makefile passes the build
directory), or $RTE_BUILD_DIR itself if it has no bin/, else <repo>/build/bin.

With RTE_TEST_KAFKA=apache start_broker() runs a single-node Apache Kafka
(KRaft, tools/kafka/kafka_cluster.py) instead, with the same topics.

Mock cluster facts a test must respect: a brand-new consumer group waits
about 3 s before its first assignment; a member that dies without leaving
holds its partitions until session.timeout.ms expires (CONSUMER_CONFIG sets
3 s for test programs); everything is lost when the broker stops.
"""
import os
import pathlib
import select
import signal
import subprocess
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

REPO = pathlib.Path(__file__).resolve().parents[2]

# Config for test programs built on rte/kafka.h: short sessions so a killed
# member's partitions move on within seconds.
CONSUMER_CONFIG = (
    "kafka.consumer.session.timeout.ms: 3000\n"
    "kafka.consumer.heartbeat.interval.ms: 500\n"
)


def bin_dir():
    """The directory holding the suite's executables."""
    d = os.environ.get("RTE_BUILD_DIR")
    if not d:
        return REPO / "build" / "bin"
    p = pathlib.Path(d)
    return p / "bin" if (p / "bin").is_dir() else p


def binary(name):
    """Absolute path of executable name; fails with a hint when not built."""
    path = bin_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `make build` (or set RTE_BUILD_DIR)")
    return str(path)


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    """Call predicate until it returns something truthy; return that, or fail at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


APACHE = os.environ.get("RTE_TEST_KAFKA", "mock") == "apache"


class Broker:
    """A running kafka-dev-broker process (or Apache Kafka cluster, .cluster)."""

    def __init__(self, proc, bootstrap, bootstrap_file, log_path, cluster=None):
        self.proc = proc
        self.bootstrap = bootstrap
        self.bootstrap_file = bootstrap_file
        self.log_path = log_path
        self.cluster = cluster

    @property
    def run_dir(self):
        """A directory usable as RTE_RUN_DIR (holds kafka.bootstrap)."""
        return str(self.bootstrap_file.parent)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit code."""
        if self.cluster is not None:
            self.cluster.stop(timeout)
            self.bootstrap_file.unlink(missing_ok=True)
            # the JVM's exit status after a clean shutdown on SIGTERM is 143
            return 0 if self.proc.returncode in (0, 143) else self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


def start_broker(workdir, topics=None, timeout=30.0):
    """Start kafka-dev-broker in workdir with extra topics {name: partitions}."""
    workdir = pathlib.Path(workdir)
    bootstrap_file = workdir / "kafka.bootstrap"
    if APACHE:
        return _start_apache(workdir, bootstrap_file, topics)
    log_path = workdir / "kafka-dev-broker.log"
    args = [binary("kafka-dev-broker"), "--bootstrap-file", str(bootstrap_file)]
    for name, partitions in (topics or {}).items():
        args += ["--topic", f"{name}:{partitions}"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
    broker = Broker(proc, None, bootstrap_file, log_path)
    try:
        broker.bootstrap = _read_line(proc, timeout)
    except BaseException:
        broker.stop()
        raise
    assert bootstrap_file.read_text().strip() == broker.bootstrap
    return broker


def _start_apache(workdir, bootstrap_file, topics):
    import sys
    sys.path.insert(0, str(REPO / "tools" / "kafka"))
    import kafka_cluster
    all_topics = kafka_cluster.suite_topics(binary("kafka-dev-broker"))
    all_topics.update(topics or {})
    c = kafka_cluster.Cluster(workdir / "apache-kafka", 1).start(all_topics)
    kafka_cluster.publish(c.bootstrap, bootstrap_file)
    return Broker(c.nodes[0].proc, c.bootstrap, bootstrap_file, c.nodes[0].log_path, c)


def _read_line(proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline().decode().strip()
            if line:
                return line
        if proc.poll() is not None:
            raise AssertionError(f"kafka-dev-broker exited with {proc.returncode}")
    raise AssertionError(f"kafka-dev-broker printed no bootstrap list within {timeout:.0f} s")


def produce(bootstrap, topic, messages, partition=None, timeout=30.0):
    """Produce [(key, value)] (str or bytes) and wait until all are acknowledged."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})

    def report(err, _msg):
        if err is not None:
            errors.append(err)

    for key, value in messages:
        kwargs = {"key": key, "value": value, "on_delivery": report}
        if partition is not None:
            kwargs["partition"] = partition
        p.produce(topic, **kwargs)
    left = p.flush(timeout)
    assert left == 0 and not errors, f"produce to {topic}: {left} left, errors {errors}"


class Message:
    """One consumed record; headers as a dict of str -> bytes (last value wins)."""

    def __init__(self, m):
        self.topic = m.topic()
        self.partition = m.partition()
        self.offset = m.offset()
        self.key = m.key()
        self.value = m.value()
        self.headers = dict(m.headers() or [])

    def __repr__(self):
        return f"Message({self.topic}[{self.partition}]@{self.offset} {self.key!r}={self.value!r})"


def consume_all(bootstrap, topic, timeout=30.0):
    """Every message currently in topic (all partitions, from the start), without a group."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"kafka-util-{uuid.uuid4()}",
        "enable.auto.commit": False,
    })
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        assert md.error is None, f"topic {topic}: {md.error}"
        high = {}
        for p in md.partitions:
            _, high[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in high])
        return _read_until(c, high, timeout)
    finally:
        c.close()


def _read_until(c, high, timeout):
    out = []
    pos = {p: 0 for p in high}
    deadline = time.monotonic() + timeout
    while any(pos[p] < high[p] for p in high):
        if time.monotonic() > deadline:
            raise AssertionError(f"read {len(out)} messages; positions {pos}, end {high}")
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(Message(m))
        pos[m.partition()] = m.offset() + 1
    return out


def read_lines(path):
    """Lines of a text file split on spaces, [] if it does not exist yet."""
    try:
        with open(path) as f:
            return [line.split(" ") for line in f.read().splitlines()]
    except FileNotFoundError:
        return []
