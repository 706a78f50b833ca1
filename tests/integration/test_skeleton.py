"""The service skeleton, through the smallest real service built on it.

Starts tests/programs/skeleton-probe against real Redis and the Kafka dev
broker and checks what every service inherits: admin endpoints, readiness
that follows Redis, gRPC health, consumption with a consumer group, the DLQ,
timers, config errors, SIGHUP and draining on SIGTERM.
"""
import os
import signal
import socket
import subprocess
import threading
import time

import grpc
import pytest
import requests

import promtext
from conftest import Service, bin_path, wait_for


# Every probe in this file joins one consumer group. The mock cluster holds a join to a
# non-empty group for session.timeout.ms - 1 s (librdkafka's rdkafka_mock_cgrp.c), and the
# skeleton waits for its first assignment before it may close (librdkafka #4312), so with
# the default 10 s session each probe's start and stop cost 9 s; with 3 s, about 2 s.
PROBE_KAFKA = ("kafka.consumer.session.timeout.ms: 3000\n"
               "kafka.consumer.heartbeat.interval.ms: 500\n")


def probe_env(redis_server, kafka_broker, **extra):
    cfg = os.path.join(os.path.dirname(kafka_broker.file), "probe-kafka.yaml")
    if not os.path.exists(cfg):
        with open(cfg, "w") as f:
            f.write(PROBE_KAFKA)
    env = {"RTE_REDIS_URL": redis_server.url, "RTE_KAFKA_BROKERS": kafka_broker.bootstrap,
           "RTE_HEALTH_INTERVAL": "200ms", "PROBE_TOPIC": "probe.in", "RTE_CONFIG": cfg}
    env.update(extra)
    return env


@pytest.fixture
def probe(redis_server, kafka_broker, workdir):
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker), workdir).start()
    yield s
    s.stop()


def health_status(port, timeout=5):
    import health_pb2
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                               response_deserializer=health_pb2.HealthCheckResponse.FromString)
        resp = check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def test_admin_endpoints(probe):
    r = probe.get("admin", "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "alive"
    r = probe.get("admin", "/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"redis": "ok", "kafka": "ok", "kafka_consumers": "ok"}
    assert probe.get("admin", "/nope").status_code == 404
    assert requests.post(probe.url("admin", "/metrics"), timeout=5).status_code == 405

    probe.get("http", "/v1/echo?msg=hi%20there")
    r = probe.get("admin", "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = promtext.parse(r.text)
    assert types["rte_http_requests_total"] == "counter"
    assert types["rte_http_request_duration_seconds"] == "histogram"
    assert promtext.value(samples, "rte_ready") == 1
    assert promtext.value(samples, "rte_dependency_up", dependency="redis") == 1
    assert promtext.value(samples, "rte_http_requests_total", route="echo", status="200") == 1
    # the timer runs every 100 ms
    wait_for(lambda: promtext.value(promtext.parse(probe.get("admin", "/metrics").text)[1],
                                    "probe_ticks_total") >= 3, what="timer ticks")


def test_public_routes_and_errors(probe):
    r = probe.get("http", "/v1/echo?msg=caf%C3%A9+ok", headers={"X-Request-Id": "req-123"})
    assert r.status_code == 200 and r.json() == {"msg": "café ok"}
    assert r.headers["x-request-id"] == "req-123"
    r = probe.get("http", "/v1/echo")
    assert r.status_code == 400
    assert "'msg'" in r.json()["error"]["message"]
    assert r.json()["request_id"]
    r = probe.get("http", "/v1/slow?ms=50")
    assert r.status_code == 200 and r.json() == {"slow": "done"}


def test_grpc_health_follows_redis(probe, redis_server):
    assert health_status(probe.ports["grpc"]) == "SERVING"
    redis_server.stop()
    try:
        wait_for(lambda: health_status(probe.ports["grpc"]) == "NOT_SERVING", what="NOT_SERVING")
        r = probe.get("admin", "/readyz")
        assert r.status_code == 503 and r.json()["checks"]["redis"] == "unreachable"
        assert probe.get("admin", "/healthz").status_code == 200  # alive, just not ready
    finally:
        redis_server.start()
    wait_for(lambda: health_status(probe.ports["grpc"]) == "SERVING", what="SERVING again")


def test_consumer_group_and_dlq(probe, redis_server, kafka_broker):
    from confluent_kafka import Consumer, Producer
    rc = redis_server.client()
    rc.delete("probe:seen")
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(50):
        p.produce("probe.in", key=f"k{i}", value=f"m{i}")
    p.produce("probe.in", key="bad", value="POISON pill")
    assert p.flush(30) == 0
    wait_for(lambda: rc.llen("probe:seen") >= 50, what="50 messages consumed")
    assert sorted(rc.lrange("probe:seen", 0, -1)) == sorted(f"m{i}".encode() for i in range(50))

    c = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "dlq-reader",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["probe.in.dlq"])
    try:
        msg = wait_for(lambda: (lambda m: m if m is not None and not m.error() else None)(
            c.poll(0.5)), what="DLQ message")
    finally:
        c.close()
    assert msg.value() == b"POISON pill"
    headers = dict(msg.headers())
    assert b"payload contains POISON" in headers["dlq-reason"]
    assert headers["dlq-topic"] == b"probe.in"


def test_bad_config_names_key(redis_server, kafka_broker, workdir):
    env = probe_env(redis_server, kafka_broker, RTE_HEALTH_INTERVAL="soon")
    s = Service("skeleton-probe", env, workdir)
    s.env.update(env)
    out = subprocess.run([bin_path("skeleton-probe")], env=s.env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert "health.interval" in out.stderr and "RTE_HEALTH_INTERVAL" in out.stderr
    assert "soon" in out.stderr


def test_check_config(redis_server, kafka_broker, workdir, tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text("log:\n  level: debug\nhealth:\n  interval: 2s\n")
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker), workdir)
    out = subprocess.run([bin_path("skeleton-probe"), "--config", str(cfg), "--check-config"],
                         env=s.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    cfg.write_text("log:\n  level: [unclosed\n")
    out = subprocess.run([bin_path("skeleton-probe"), "--config", str(cfg), "--check-config"],
                         env=s.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert str(cfg) in out.stderr


def test_sighup_reload_keeps_serving(redis_server, kafka_broker, workdir, tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(PROBE_KAFKA + "probe:\n  handler_ms: 0\n")
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker), workdir,
                args=["--config", str(cfg)]).start()
    try:
        cfg.write_text("probe: [broken\n")
        s.signal(signal.SIGHUP)
        wait_for(lambda: "keeping the previous configuration" in s.logtext(), what="reload refusal")
        cfg.write_text(PROBE_KAFKA + "probe:\n  handler_ms: 5\n")
        s.signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in s.logtext(), what="reload")
        assert s.get("admin", "/readyz").status_code == 200
    finally:
        s.stop()


def test_sigterm_drains_inflight_and_exits_zero(redis_server, kafka_broker, workdir):
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker), workdir).start()
    result = {}

    def slow():
        result["r"] = requests.get(s.url("http", "/v1/slow?ms=1500"), timeout=20)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)  # let the request reach the server before the signal
    s.signal(signal.SIGTERM)
    rc = s.wait(30)
    t.join(20)
    assert rc == 0, s.logtext()
    assert result["r"].status_code == 200 and result["r"].json() == {"slow": "done"}
    assert "drained in" in s.logtext()
    s.stop()


def self_signed(tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_public_port_tls_speaks_http2_and_http11(redis_server, kafka_broker, workdir, tmp_path):
    cert, key = self_signed(tmp_path)
    env = probe_env(redis_server, kafka_broker, RTE_HTTP_TLS_CERT=cert, RTE_HTTP_TLS_KEY=key)
    s = Service("skeleton-probe", env, workdir).start()
    try:
        url = f"https://127.0.0.1:{s.ports['http']}/v1/echo?msg=tls"
        out = subprocess.run(["curl", "-sk", "--http2", "-w", "\n%{http_version}", url],
                             capture_output=True, text=True, timeout=30)
        body, version = out.stdout.rsplit("\n", 1)
        assert version == "2" and '"msg":"tls"' in body.replace(" ", ""), out
        out = subprocess.run(["curl", "-sk", "--http1.1", "-w", "\n%{http_version}", url],
                             capture_output=True, text=True, timeout=30)
        assert out.stdout.rsplit("\n", 1)[1] == "1.1", out
        # plain HTTP on the TLS port is refused, not served
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https", "http"), timeout=5)
        # the admin port stays plain HTTP for probes
        assert s.get("admin", "/healthz").status_code == 200
    finally:
        s.stop()


@pytest.mark.parametrize("which", ["cert_only", "bad_cert"])
def test_tls_config_errors_name_the_key(redis_server, kafka_broker, workdir, tmp_path, which):
    cert, key = self_signed(tmp_path)
    if which == "cert_only":
        extra = {"RTE_HTTP_TLS_CERT": cert}
        expect = "http.tls_key"
    else:
        bad = tmp_path / "bad.pem"
        bad.write_text("not a certificate\n")
        extra = {"RTE_HTTP_TLS_CERT": str(bad), "RTE_HTTP_TLS_KEY": key}
        expect = str(bad)
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker, **extra), workdir)
    out = subprocess.run([bin_path("skeleton-probe")], env=s.env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1 and expect in out.stderr, out.stderr


def by_loop(svc, metric):
    """metric's samples by loop label, from one scrape (which is itself a connection on loop 0)"""
    _, samples = promtext.parse(svc.get("admin", "/metrics").text)
    return {int(dict(labels)["loop"]): int(v) for (name, labels), v in samples.items()
            if name == metric}


def loop_connections(svc):
    """rte_http_connections by loop (the scrape's own connection counts on loop 0)"""
    return by_loop(svc, "rte_http_connections")


def loop_accepted(svc):
    """rte_http_connections_accepted_total by loop (each scrape is one more on loop 0)"""
    return by_loop(svc, "rte_http_connections_accepted_total")


def open_keepalive(port, n):
    """n HTTP/1.1 connections, each answered once and left open"""
    socks = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"GET /v1/echo?msg=k HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 200")
        socks.append(c)
    return socks


def test_steer_by_cpu_serves_a_connection_on_the_loop_of_its_cpu(redis_server, kafka_broker,
                                                                  workdir):
    """http.steer_by_cpu: loop i is kept on the i-th CPU and takes the connections arriving there.

    Over loopback a connection arrives on the CPU of the thread that connects,
    so this test keeps itself on one CPU at a time and finds every connection
    it opened on that CPU's loop (the kernel's hash would spread 6 over both)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("steering needs two CPUs; this machine lets us use one")
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker, RTE_HTTP_THREADS="2",
                                            RTE_HTTP_STEER_BY_CPU="on"), workdir).start()
    was = os.sched_getaffinity(0)
    try:
        tasks = {}
        for t in os.listdir(f"/proc/{s.proc.pid}/task"):
            with open(f"/proc/{s.proc.pid}/task/{t}/comm") as f:
                comm = f.read().strip()
            if comm.startswith("http-loop-"):
                tasks[int(comm[len("http-loop-"):])] = os.sched_getaffinity(int(t))
        assert tasks == {0: {cpus[0]}, 1: {cpus[1]}}
        for loop in (1, 0):
            before = loop_accepted(s)
            os.sched_setaffinity(0, {cpus[loop]})
            socks = open_keepalive(s.ports["http"], 6)
            try:
                os.sched_setaffinity(0, was)
                want = {0: 1, 1: 0}  # the scrape
                want[loop] += 6
                assert loop_connections(s) == want
                # the counter agrees: 6 more on this CPU's loop, and loop 0 saw two scrapes
                after = loop_accepted(s)
                assert {k: after[k] - before[k] for k in after} == {0: 2 + (loop == 0) * 6,
                                                                     1: (loop == 1) * 6}
            finally:
                for c in socks:
                    c.close()
            wait_for(lambda: loop_connections(s) == {0: 1, 1: 0}, timeout=5)
        assert "connections steered by CPU" in s.logtext()
    finally:
        os.sched_setaffinity(0, was)
        s.stop()


def test_steer_by_cpu_needs_a_loop_per_cpu(redis_server, kafka_broker, workdir):
    """one loop, or more loops than CPUs to keep them on: refused at start, naming both keys"""
    ncpus = len(os.sched_getaffinity(0))
    for threads in (1, ncpus + 1):
        bad = Service("skeleton-probe", probe_env(redis_server, kafka_broker,
                                                  RTE_HTTP_THREADS=str(threads),
                                                  RTE_HTTP_STEER_BY_CPU="on"), workdir)
        out = subprocess.run([bin_path("skeleton-probe")], env=bad.env, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 1, out.stderr
        assert ("'http.steer_by_cpu' (RTE_HTTP_STEER_BY_CPU) needs 'http.threads' "
                f"(RTE_HTTP_THREADS) between 2 and the {ncpus} CPUs this process may use; "
                f"it is {threads}") in out.stderr


def test_several_http_loops_share_the_public_port(redis_server, kafka_broker, workdir):
    """http.threads=3: three loops on one port (SO_REUSEPORT); all answer, drain exits 0."""
    s = Service("skeleton-probe", probe_env(redis_server, kafka_broker, RTE_HTTP_THREADS="3"),
                workdir).start()
    try:
        for i in range(60):  # a new connection each time, spread by the kernel
            r = requests.get(s.url("http", f"/v1/echo?msg=m{i}"), timeout=5,
                             headers={"Connection": "close"})
            assert r.status_code == 200 and r.json() == {"msg": f"m{i}"}
        slow = {}
        t = threading.Thread(target=lambda: slow.update(
            r=requests.get(s.url("http", "/v1/slow?ms=1500"), timeout=10)))
        t.start()
        time.sleep(0.3)
        s.signal(signal.SIGTERM)
        t.join(15)
        assert slow["r"].status_code == 200  # in flight on some loop: still answered
        assert s.wait(30) == 0
    finally:
        s.stop()
    bad = Service("skeleton-probe", probe_env(redis_server, kafka_broker, RTE_HTTP_THREADS="0"),
                  workdir)
    out = subprocess.run([bin_path("skeleton-probe")], env=bad.env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "http.threads" in out.stderr
