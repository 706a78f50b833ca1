"""Shared fixtures: real Redis, the Kafka dev broker, and service processes.

Every integration suite starts the real processes it needs: redis-server from
Debian, a Kafka, and our binaries from $RTE_BUILD_DIR (default <repo>/build).
Nothing here is a mock of our own services. Ports are chosen free at start,
so suites never collide with a developer's running stack.

The Kafka is tools/kafka-dev-broker (librdkafka's mock cluster) by default;
with RTE_TEST_KAFKA=apache (make test-kafka) it is a real single-node Apache
Kafka in KRaft mode (tools/kafka/kafka_cluster.py) with the same topics.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RTE_BUILD_DIR", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(BUILD, "gen", "py"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools", "kafka"))

# "apache": the suites run against a real Apache Kafka (make test-kafka)
KAFKA_KIND = os.environ.get("RTE_TEST_KAFKA", "mock")
if KAFKA_KIND not in ("mock", "apache"):
    raise RuntimeError(f"RTE_TEST_KAFKA={KAFKA_KIND!r}: expected mock or apache")
APACHE = KAFKA_KIND == "apache"


def bin_path(name):
    """Path of one of our executables in the build tree."""
    p = os.path.join(BUILD, "bin", name)
    if not os.path.exists(p):
        pytest.fail(f"{p} is missing: run make build")
    return p


def free_port():
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=20.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value or the timeout passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - report the last failure
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class RedisServer:
    """A redis-server on a free loopback port, in its own directory."""

    def __init__(self, workdir):
        self.dir = workdir
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, what=f"redis on port {self.port}")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=False)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def apache_topics(extra=()):
    """The suite's topics (kafka-dev-broker --list-topics) plus NAME:PARTITIONS specs."""
    import kafka_cluster
    topics = kafka_cluster.suite_topics(bin_path("kafka-dev-broker"))
    for spec in extra:
        name, _, n = spec.rpartition(":")
        topics[name] = int(n)
    return topics


class KafkaBroker:
    """A Kafka on loopback: librdkafka's mock cluster (3 brokers, kafka-dev-broker),
    or with RTE_TEST_KAFKA=apache one Apache Kafka node (KRaft). Either way .bootstrap
    is the list to connect to, .file holds it, and .proc is the (first) broker process."""

    def __init__(self, workdir, topics=()):
        self.workdir = workdir
        self.file = os.path.join(workdir, "kafka.bootstrap")
        self.topics = topics
        self.proc = None
        self.bootstrap = None
        self.cluster = None

    def start(self):
        if APACHE:
            return self._start_apache()
        args = [bin_path("kafka-dev-broker"), "--bootstrap-file", self.file]
        for t in self.topics:
            args += ["--topic", t]
        self.log = open(self.file + ".log", "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_for(lambda: os.path.exists(self.file), what="kafka-dev-broker bootstrap file")
        with open(self.file) as f:
            self.bootstrap = f.read().strip()

    def _start_apache(self):
        import kafka_cluster
        root = tempfile.mkdtemp(dir=self.workdir, prefix="apache-kafka-")
        self.cluster = kafka_cluster.Cluster(root, 1)
        self.cluster.start(apache_topics(self.topics))
        self.proc = self.cluster.nodes[0].proc
        self.bootstrap = self.cluster.bootstrap
        kafka_cluster.publish(self.bootstrap, self.file)
        self.log = None

    def stop(self):
        if self.cluster:
            self.cluster.stop()
            if os.path.exists(self.file):
                os.unlink(self.file)
            self.proc = None
            return
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
        self.log.close()


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="rte-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(workdir):
    r = RedisServer(os.path.join(workdir))
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def kafka_broker(workdir):
    b = KafkaBroker(workdir, topics=("probe.in:3", "probe.in.dlq:1"))
    b.start()
    yield b
    b.stop()


class Service:
    """One of our service processes, started with env overrides and free ports."""

    def __init__(self, name, env, workdir, args=()):
        self.name = name
        self.ports_file = os.path.join(workdir, f"{name}-{time.monotonic_ns()}.ports")
        self.log_path = self.ports_file + ".log"
        self.env = dict(os.environ)
        self.env.update({"RTE_ADMIN_ADDR": "127.0.0.1:0", "RTE_HTTP_ADDR": "127.0.0.1:0",
                         "RTE_GRPC_ADDR": "127.0.0.1:0", "RTE_PORTS_FILE": self.ports_file})
        # gRPC token checks are on by default in production (docs/auth.md); suites that
        # test them pass a JWKS, the others run with them off, explicitly
        self.env.setdefault("RTE_GRPC_AUTH_REQUIRED", "false")
        self.env.update(env)
        self.args = list(args)
        self.proc = None
        self.ports = None

    def start(self, wait_ready=True):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([bin_path(self.name)] + self.args, env=self.env,
                                     stdout=self.log, stderr=self.log)
        wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.ports_file),
                 what=f"{self.name} to listen")
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.logtext()}")
        with open(self.ports_file) as f:
            self.ports = json.load(f)
        if wait_ready:
            wait_for(lambda: self.get("admin", "/readyz").status_code == 200,
                     what=f"{self.name} ready")
        return self

    def url(self, port, path):
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def get(self, port, path, **kw):
        import requests
        return requests.get(self.url(port, path), timeout=kw.pop("timeout", 10), **kw)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if os.path.exists(self.ports_file):
            os.unlink(self.ports_file)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if os.path.exists(self.ports_file):
            os.unlink(self.ports_file)
        self.log.close()

    def logtext(self):
        with open(self.log_path) as f:
            return f.read()


def start_stedi_sim(workdir, args=(), **env):
    """Start tools/stedi-sim with a fast clock (scale 1000) on free ports.

    Keyword names are sim settings (latency_p50="4s" -> RTE_SIM_LATENCY_P50)
    or full RTE_* variables (RTE_CLOCK_SCALE="100"); args are command-line
    arguments (("--manager-port", "0") puts the manager API on a port of its
    own, sim.ports["manager"]). The API key is test-key; sim.url("http", path)
    addresses the API.
    """
    e = {"RTE_CLOCK_SCALE": "1000", "RTE_LOG_LEVEL": "warn"}
    e.update({k.upper() if k.upper().startswith("RTE_") else "RTE_SIM_" + k.upper(): str(v)
              for k, v in env.items()})
    return Service("stedi-sim", e, workdir, args=args).start()


def stop_clean(svc):
    """SIGTERM, then require exit 0: under ASan a leak or UB turns into a non-zero code."""
    svc.signal(signal.SIGTERM)
    code = svc.wait(30)
    log = svc.logtext()
    svc.stop()
    assert code == 0, f"{svc.name} exited {code}: {log[-3000:]}"
