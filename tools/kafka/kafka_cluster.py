#!/usr/bin/python3
"""kafka_cluster.py - run a real Apache Kafka (KRaft, no ZooKeeper) on loopback.

The broker is the published jars of org.apache.kafka:kafka_2.13 and
kafka-tools, resolved by Maven from tools/kafka/pom.xml into
$RTE_KAFKA_JARS/<version> (default <repo>/build/kafka/<version>) and run by
Debian's OpenJDK (scripts/deps.sh kafka installs both). Each node runs in
combined mode (broker + controller, static quorum) in its own directory with
ports found free at start; the cluster id is random. Topics are created with
the suite's partition counts (`kafka-dev-broker --list-topics`, i.e.
libcommon/src/topics.c) plus any asked for; the bootstrap list is written
atomically to a file the way kafka-dev-broker publishes it.

Used two ways:
  - by the integration suites (tests/integration/conftest.py and kafka_util.py
    when RTE_TEST_KAFKA=apache), through the Cluster class;
  - by scripts/dev-stack.sh (make dev-up KAFKA=apache) from the command line:
      kafka_cluster.py fetch [--version V]
      kafka_cluster.py up --dir DIR --bootstrap-file FILE [--brokers N]
                          [--version V] [--list-topics-bin PATH] [--topic NAME:P]...
      kafka_cluster.py down --dir DIR
    `up` leaves the JVMs running detached (pid files in DIR/node-N/) and
    exits 0 once every topic has a leader; `down` stops them (SIGTERM, then
    SIGKILL after 30 s) and removes the bootstrap file.

Settings that differ from Kafka's defaults, chosen for tests on a small
shared machine: heap 256 MiB per node (RTE_KAFKA_HEAP), serial GC,
offsets.topic.num.partitions 10, group.initial.rebalance.delay.ms 0,
group.min.session.timeout.ms 1000 (Kafka's default floor is 6000: the suites'
consumers use 3 s sessions),
num.partitions 4 for auto-created topics (as on the mock cluster);
replication factor min(3, nodes) and min.insync.replicas min(2, nodes)
unless given. Not for production: plaintext, loopback only.
"""
import argparse
import base64
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[2]
POM = REPO / "tools" / "kafka" / "pom.xml"
# The version the suite runs (docs/kafka.md: what was tested and why this one).
DEFAULT_VERSION = os.environ.get("RTE_KAFKA_VERSION", "4.4.0")

LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = out
rootLogger.appenderRef.out.ref = OUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""

LOG4J1 = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
"""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jars_dir(version=DEFAULT_VERSION):
    """Directory holding the broker's jars for version (filled by fetch())."""
    root = os.environ.get("RTE_KAFKA_JARS") or str(REPO / "build" / "kafka")
    return pathlib.Path(root) / version


def fetch(version=DEFAULT_VERSION):
    """Resolve the broker's jars with Maven (once); returns their directory."""
    d = jars_dir(version)
    stamp = d / ".complete"
    if stamp.exists():
        return d
    if not shutil.which("mvn") or not shutil.which("java"):
        raise RuntimeError("mvn or java is missing: run `sh scripts/deps.sh kafka`")
    d.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}",
           "dependency:copy-dependencies", f"-DoutputDirectory={d}"]
    if int(version.split(".")[0]) < 4:
        cmd += ["-P", "!log4j2"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mvn could not resolve Kafka {version}:\n{r.stdout[-3000:]}")
    if not list(d.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"mvn ran but {d} has no kafka_2.13 jar")
    stamp.write_text(version + "\n")
    return d


def suite_topics(list_topics_bin):
    """{name: partitions} printed by `kafka-dev-broker --list-topics`."""
    out = subprocess.run([str(list_topics_bin), "--list-topics"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    topics = {}
    for line in out.splitlines():
        name, _, n = line.rpartition(":")
        topics[name] = int(n)
    return topics


def new_cluster_id():
    """A random KRaft cluster id: 16 bytes, URL-safe base64 without padding. Like
    Kafka's own, never one starting with '-' (the format tool would read an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class Node:
    """One combined broker+controller JVM: its ports, directory and process."""

    def __init__(self, root, node_id):
        self.id = node_id
        self.dir = pathlib.Path(root) / f"node-{node_id}"
        self.port = free_port()
        self.controller_port = free_port()
        self.proc = None
        self.log = None

    @property
    def props(self):
        return self.dir / "server.properties"

    @property
    def log_path(self):
        return self.dir / "server.log"

    @property
    def pid_file(self):
        return self.dir / "pid"

    @property
    def pid(self):
        if self.proc is not None:
            return self.proc.pid
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


class Cluster:
    """A KRaft cluster of `brokers` combined nodes under root."""

    def __init__(self, root, brokers=1, version=DEFAULT_VERSION, rf=None, min_isr=None,
                 heap=None, extra_props=None):
        self.root = pathlib.Path(root)
        self.version = version
        self.nodes = [Node(self.root, i + 1) for i in range(brokers)]
        self.rf = rf or min(3, brokers)
        self.min_isr = min_isr or min(2, brokers)
        self.heap = heap or os.environ.get("RTE_KAFKA_HEAP", "256m")
        self.extra_props = dict(extra_props or {})
        self.cluster_id = new_cluster_id()
        self.jars = None

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def node(self, node_id):
        return self.nodes[node_id - 1]

    # --- configuration --------------------------------------------------
    def _write_config(self, n):
        voters = ",".join(f"{m.id}@127.0.0.1:{m.controller_port}" for m in self.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": n.id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{n.port},CONTROLLER://127.0.0.1:{n.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{n.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": n.dir / "data",
            "num.partitions": 4,
            "auto.create.topics.enable": "true",
            "default.replication.factor": self.rf,
            "min.insync.replicas": self.min_isr,
            "offsets.topic.replication.factor": self.rf,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": self.rf,
            "transaction.state.log.min.isr": self.min_isr,
            "group.initial.rebalance.delay.ms": 0,
            # the suites' consumers use 3 s sessions so a killed member's
            # partitions move within seconds; Kafka's floor is 6 s
            "group.min.session.timeout.ms": 1000,
            "num.network.threads": 2,
            "num.io.threads": 4,
            "log.retention.hours": 24,
        }
        props.update(self.extra_props)
        n.dir.mkdir(parents=True, exist_ok=True)
        n.props.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (n.dir / "log4j2.properties").write_text(LOG4J2)
        (n.dir / "log4j.properties").write_text(LOG4J1)

    def _java(self, n, main, *args):
        return ["java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseSerialGC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={n.dir / 'log4j2.properties'}",
                f"-Dlog4j.configuration=file:{n.dir / 'log4j.properties'}",
                f"-Dkafka.logs.dir={n.dir}",
                "-cp", f"{self.jars}/*", main, *args]

    def _format(self, n):
        cmd = self._java(n, "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                         "-c", str(n.props), "--ignore-formatted")
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"kafka-storage format of node {n.id} failed:\n{r.stdout[-3000:]}")

    # --- processes ------------------------------------------------------
    def _launch(self, n, detach=False):
        n.log = open(n.log_path, "ab")
        n.proc = subprocess.Popen(self._java(n, "kafka.Kafka", str(n.props)),
                                  stdin=subprocess.DEVNULL, stdout=n.log, stderr=subprocess.STDOUT,
                                  start_new_session=detach)
        n.pid_file.write_text(f"{n.proc.pid}\n")

    def start(self, topics=None, timeout=120.0, detach=False):
        """Format and start every node, wait for them, create topics {name: partitions}."""
        self.jars = fetch(self.version)
        self.root.mkdir(parents=True, exist_ok=True)
        for n in self.nodes:
            shutil.rmtree(n.dir / "data", ignore_errors=True)  # a fresh cluster each start
            self._write_config(n)
        for n in self.nodes:
            self._format(n)
        for n in self.nodes:
            self._launch(n, detach)
        try:
            self.wait_brokers(len(self.nodes), timeout)
            if topics:
                self.create_topics(topics, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_brokers(self, count, timeout=120.0):
        """Wait until metadata lists count brokers (fails early if a node dies)."""
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None and n.proc.returncode != -9:
                    raise RuntimeError(f"kafka node {n.id} exited {n.proc.returncode}; "
                                       f"see {n.log_path}:\n{tail(n.log_path)}")
            try:
                md = admin.list_topics(timeout=2)
                last = sorted(md.brokers)
                if len(md.brokers) >= count:
                    return
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            time.sleep(0.2)
        raise RuntimeError(f"kafka at {self.bootstrap}: {count} brokers not up in {timeout:.0f} s "
                           f"(last: {last!r})")

    def create_topics(self, topics, timeout=120.0):
        """Create {name: partitions} (rf and min.insync.replicas as configured), wait for leaders."""
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        rf = min(self.rf, len(self.nodes))
        new = [NewTopic(t, p, rf, config={"min.insync.replicas": str(self.min_isr)})
               for t, p in topics.items()]
        for name, fut in admin.create_topics(new, request_timeout=30).items():
            try:
                fut.result(timeout)
            except Exception as e:  # noqa: BLE001 - an existing topic is fine
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise RuntimeError(f"create topic {name}: {e}") from e
        deadline = time.monotonic() + timeout
        while True:
            md = admin.list_topics(timeout=5)
            missing = [t for t, p in topics.items()
                       if t not in md.topics or md.topics[t].error is not None
                       or len(md.topics[t].partitions) != p
                       or any(pm.leader < 0 for pm in md.topics[t].partitions.values())]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics without leaders after {timeout:.0f} s: {missing}")
            time.sleep(0.2)

    def leader(self, topic, partition=0):
        """Node id leading topic[partition] now (-1 when none)."""
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        md = admin.list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition].leader

    def kill(self, node_id, sig=signal.SIGKILL):
        """Send sig to one node (SIGKILL: a crash; the node's data stays)."""
        n = self.node(node_id)
        os.kill(n.pid, sig)
        if sig == signal.SIGKILL and n.proc is not None:
            n.proc.wait(30)

    def restart(self, node_id, timeout=120.0):
        """Start a stopped or killed node again on its ports and data."""
        n = self.node(node_id)
        if n.alive():
            raise RuntimeError(f"node {node_id} is still running")
        if n.log:
            n.log.close()
        self._launch(n)
        self.wait_brokers(len([m for m in self.nodes if m.alive()]), timeout)

    def stop(self, timeout=30.0):
        """SIGTERM every live node, SIGKILL what is left after timeout; returns nothing."""
        live = [n for n in self.nodes if n.alive()]
        for n in live:
            try:
                os.kill(n.pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for n in live:
            while n.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if n.alive():
                try:
                    os.kill(n.pid, signal.SIGKILL)
                except OSError:
                    pass
            if n.proc is not None:
                n.proc.wait(10)
        for n in self.nodes:
            if n.log:
                n.log.close()
                n.log = None
            n.pid_file.unlink(missing_ok=True)


def tail(path, nbytes=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - nbytes))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def publish(bootstrap, path):
    """Write "bootstrap\\n" to path atomically (tmp file + rename)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    tmp.write_text(bootstrap + "\n")
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(prog="kafka_cluster.py",
                                 description="Run Apache Kafka (KRaft) on loopback for dev and tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="resolve the broker's jars with Maven")
    f.add_argument("--version", default=DEFAULT_VERSION)
    u = sub.add_parser("up", help="format and start a cluster, create topics, publish bootstrap")
    u.add_argument("--dir", required=True)
    u.add_argument("--bootstrap-file", required=True)
    u.add_argument("--brokers", type=int, default=1)
    u.add_argument("--version", default=DEFAULT_VERSION)
    u.add_argument("--list-topics-bin", help="kafka-dev-broker, whose --list-topics names the topics")
    u.add_argument("--topic", action="append", default=[], help="NAME:PARTITIONS")
    d = sub.add_parser("down", help="stop the cluster started by up in --dir")
    d.add_argument("--dir", required=True)
    d.add_argument("--bootstrap-file")
    a = ap.parse_args(argv)

    if a.cmd == "fetch":
        print(fetch(a.version))
        return 0
    if a.cmd == "up":
        if not 1 <= a.brokers <= 9:
            ap.error("--brokers must be 1..9")
        topics = suite_topics(a.list_topics_bin) if a.list_topics_bin else {}
        for spec in a.topic:
            name, _, n = spec.rpartition(":")
            if not name or not n.isdigit() or not 1 <= int(n) <= 1000:
                ap.error(f"--topic {spec}: expected NAME:PARTITIONS with 1..1000 partitions")
            topics[name] = int(n)
        if pathlib.Path(a.dir).exists():
            shutil.rmtree(a.dir)
        c = Cluster(a.dir, a.brokers, a.version)
        c.start(topics, detach=True)
        publish(c.bootstrap, a.bootstrap_file)
        print(c.bootstrap)
        return 0
    # down: every node directory's pid file
    root = pathlib.Path(a.dir)
    nodes = []
    for p in sorted(root.glob("node-*/pid")):
        n = Node(root, int(p.parent.name.split("-")[1]))
        nodes.append(n)
    c = Cluster(root, max(1, len(nodes)))
    c.nodes = nodes
    c.stop()
    if a.bootstrap_file:
        pathlib.Path(a.bootstrap_file).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as e:
        print(f"kafka_cluster: {e}", file=sys.stderr)
        sys.exit(1)
