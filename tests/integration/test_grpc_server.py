"""Integration tests for libcommon's gRPC server (libcommon/src/grpc_server.c).

They drive tests/programs/grpc-probe (see its main.c for what each Echo
input does) with Python grpcio through generic stubs, using the
grpc.health.v1 messages generated from proto/health.proto.

Binary and generated Python come from $RTE_BUILD_DIR (default <repo>/build):
bin/grpc-probe and gen/py/health_pb2.py; if the latter is missing it is
generated into a temporary directory with protoc.

Timing: the machine is slow and shared, so every wait polls against a
generous deadline; no test relies on a fixed sleep being long enough.
"""

import concurrent.futures
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import pytest

import promtext

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RTE_BUILD_DIR", REPO / "build"))
PROBE = BUILD / "bin" / "grpc-probe"
START_TIMEOUT = 20  # seconds: process start + listening + channel ready
CALL_TIMEOUT = 20  # seconds: ordinary calls on a loaded machine


def _load_health_pb2():
    gen = BUILD / "gen" / "py"
    if not (gen / "health_pb2.py").exists():
        gen = pathlib.Path(tempfile.mkdtemp(prefix="rte-health-py-"))
        subprocess.run(
            ["protoc", f"--proto_path={REPO / 'proto'}", f"--python_out={gen}",
             str(REPO / "proto" / "health.proto")],
            check=True)
    sys.path.insert(0, str(gen))
    import health_pb2  # noqa: E402  (path set just above)
    return health_pb2


health_pb2 = _load_health_pb2()
Req = health_pb2.HealthCheckRequest
Resp = health_pb2.HealthCheckResponse
SERVING = Resp.SERVING
NOT_SERVING = Resp.NOT_SERVING


class Probe:
    """One grpc-probe process: its port, a channel, and its stdout lines."""

    def __init__(self, tmp_path, ready=True, workers=8, port=0):
        if not PROBE.exists():
            pytest.fail(f"{PROBE} is missing: build it first (make {PROBE})")
        self.ready_file = tmp_path / "ready"
        if ready:
            self.ready_file.touch()
        self.stderr_path = tmp_path / "probe.stderr"
        self.lines = []
        self.cond = threading.Condition()
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [str(PROBE), "--ready-file", str(self.ready_file),
                 "--workers", str(workers), "--port", str(port)],
                stdout=subprocess.PIPE, stderr=err, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.channel = None
        try:
            line = self.wait_line("port ", START_TIMEOUT)
            self.port = int(line.split()[1])
            self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
            grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT)
        except BaseException:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF
            self.cond.notify_all()

    def wait_line(self, prefix, timeout):
        """The first stdout line starting with prefix; fails at EOF or timeout."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line is None:
                        pytest.fail(f"probe exited before printing {prefix!r}: {self.stderr()}")
                    if line.startswith(prefix):
                        return line
                left = end - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {prefix!r} line from the probe in {timeout}s")
                self.cond.wait(left)

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def unary(self, path, serialize=Req.SerializeToString, deserialize=Resp.FromString):
        return self.channel.unary_unary(path, request_serializer=serialize,
                                        response_deserializer=deserialize)

    def stream(self, path):
        return self.channel.unary_stream(path, request_serializer=Req.SerializeToString,
                                         response_deserializer=Resp.FromString)

    def check(self, service=""):
        return self.unary("/grpc.health.v1.Health/Check")(Req(service=service),
                                                          timeout=CALL_TIMEOUT)

    def echo(self, service, **kw):
        kw.setdefault("timeout", CALL_TIMEOUT)
        return self.unary("/rte.test.Echo/Echo")(Req(service=service), **kw)

    def terminate(self, timeout=30):
        """SIGTERM, wait for exit; returns (exit code, stdout lines)."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=timeout)
        return rc, [line for line in self.lines if line is not None]

    def close(self):
        """Stop the probe if still running (SIGTERM: under ASan this runs the leak
        check over everything the test did); returns its exit code."""
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    p = Probe(tmp_path_factory.mktemp("grpc-probe"))
    yield p
    rc = p.close()
    assert rc == 0, f"probe exited {rc}: {p.stderr()}"


@pytest.fixture
def fresh_probe(tmp_path):
    probes = []

    def start(**kw):
        d = tmp_path / f"probe{len(probes)}"
        d.mkdir()
        probes.append(Probe(d, **kw))
        return probes[-1]

    yield start
    failed = [(p.close(), p.stderr()) for p in probes]
    failed = [(rc, err) for rc, err in failed if rc != 0]
    assert not failed, f"probe exit codes and stderr: {failed}"


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kw)
    return info.value


def exit_metrics(lines):
    """The samples of the metrics the probe prints after "cancelled N" at exit."""
    start = next(i for i, line in enumerate(lines) if line.startswith("cancelled "))
    _, samples = promtext.parse("\n".join(lines[start + 1:]) + "\n")
    return samples


# --- health ---------------------------------------------------------------


def test_check_follows_ready_file(fresh_probe):
    p = fresh_probe()
    assert p.check("").status == SERVING
    assert p.check("rte.test.Echo").status == SERVING
    assert p.check("grpc.health.v1.Health").status == SERVING
    p.ready_file.unlink()
    assert p.check("").status == NOT_SERVING
    assert p.check("rte.test.Echo").status == NOT_SERVING


def test_check_unknown_service_is_not_found(probe):
    err = rpc_error(probe.check, "no.such.Service")
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_watch_streams_each_change(fresh_probe):
    p = fresh_probe()
    call = p.stream("/grpc.health.v1.Health/Watch")(Req(service=""), timeout=60)
    try:
        assert next(call).status == SERVING
        p.ready_file.unlink()
        assert next(call).status == NOT_SERVING
        p.ready_file.touch()
        assert next(call).status == SERVING
    finally:
        call.cancel()
    # the cancelled stream must give its worker back: calls still work
    assert p.echo("ok").status == SERVING


def test_watch_ends_with_not_serving_on_shutdown(fresh_probe):
    p = fresh_probe()
    call = p.stream("/grpc.health.v1.Health/Watch")(Req(service=""), timeout=60)
    assert next(call).status == SERVING
    rc, lines = p.terminate()
    assert [r.status for r in call] == [NOT_SERVING]
    assert call.code() == grpc.StatusCode.OK
    assert rc == 0
    assert "cancelled 0" in lines


# --- unary calls ----------------------------------------------------------


def test_unknown_method_is_unimplemented(probe):
    err = rpc_error(probe.unary("/rte.test.Echo/Nope"), Req(), timeout=CALL_TIMEOUT)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/rte.test.Echo/Nope" in err.details()


def test_echo_ok(probe):
    assert probe.echo("ok").status == SERVING


def test_echo_bad_is_invalid_argument_with_field(probe):
    err = rpc_error(probe.echo, "bad")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "field 'service': must be 'ok'"


def test_garbage_request_is_invalid_argument(probe):
    raw = probe.unary("/rte.test.Echo/Echo", serialize=None, deserialize=None)
    # field 1, length 16, but only 5 bytes follow
    err = rpc_error(raw, b"\x0a\x10short", timeout=CALL_TIMEOUT)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not decode as grpc.health.v1.HealthCheckRequest" in err.details()


def test_metadata_reaches_the_handler(probe):
    err = rpc_error(probe.echo, "md:x-probe", metadata=[("x-probe", "hello")])
    assert err.details() == "md x-probe=hello"
    err = rpc_error(probe.echo, "md:x-probe")
    assert err.details() == "md x-probe=(absent)"


def test_client_deadline_reaches_the_handler(probe):
    err = rpc_error(probe.echo, "deadline", timeout=5)
    left = int(re.match(r"deadline in (-?\d+) ms", err.details()).group(1))
    # grpc-timeout is sent rounded up, so allow a little over 5000
    assert 0 < left <= 5100
    err = rpc_error(probe.unary("/rte.test.Echo/Echo"), Req(service="deadline"))
    assert err.details() == "deadline in -1 ms"


def test_deadline_exceeded_and_server_survives(probe):
    t0 = time.monotonic()
    err = rpc_error(probe.echo, "sleep:2000", timeout=0.2)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 1.9
    assert probe.echo("ok").status == SERVING
    assert probe.proc.poll() is None


def test_twenty_concurrent_calls(probe):
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: probe.echo("sleep:100" if i % 2 else "ok"), range(20)))
    assert [r.status for r in results] == [SERVING] * 20


def test_stream_count_yields_five(probe):
    got = list(probe.stream("/rte.test.Echo/Count")(Req(), timeout=CALL_TIMEOUT))
    assert [r.status for r in got] == [SERVING] * 5


def test_stream_cancelled_by_client_frees_worker(fresh_probe):
    p = fresh_probe(workers=1)
    call = p.stream("/rte.test.Echo/Count")(Req(), timeout=CALL_TIMEOUT)
    assert next(call).status == SERVING
    call.cancel()
    # with one worker, this only answers once the cancelled stream let go
    assert p.echo("ok").status == SERVING


# --- process life -----------------------------------------------------------


def test_second_server_on_same_port_fails(probe, tmp_path):
    proc = subprocess.run([str(PROBE), "--port", str(probe.port)], capture_output=True,
                          text=True, timeout=START_TIMEOUT)
    assert proc.returncode == 1
    assert "cannot listen" in proc.stderr


def test_sigterm_lets_in_flight_call_finish(fresh_probe):
    p = fresh_probe()
    fut = p.unary("/rte.test.Echo/Echo").future(Req(service="sleep:1000"), timeout=60)
    p.wait_line("sleeping 1000", CALL_TIMEOUT)
    rc, lines = p.terminate()
    assert fut.result(timeout=CALL_TIMEOUT).status == SERVING
    assert rc == 0
    assert "cancelled 0" in lines


def test_shutdown_cancels_calls_past_its_deadline(fresh_probe):
    p = fresh_probe()
    fut = p.unary("/rte.test.Echo/Echo").future(Req(service="sleep:7000"), timeout=60)
    p.wait_line("sleeping 7000", CALL_TIMEOUT)
    rc, lines = p.terminate(timeout=60)
    with pytest.raises(grpc.RpcError) as info:
        fut.result(timeout=CALL_TIMEOUT)
    assert info.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert rc == 0
    assert "cancelled 1" in lines


def test_requests_are_counted_by_method_and_code(fresh_probe):
    p = fresh_probe()
    p.echo("ok")
    rpc_error(p.echo, "bad")
    rpc_error(p.unary("/rte.test.Echo/Nope"), Req(), timeout=CALL_TIMEOUT)
    rpc_error(p.echo, "sleep:600", timeout=0.2)
    p.check()
    rc, lines = p.terminate()
    assert rc == 0
    m = exit_metrics(lines)
    total, echo = "rte_grpc_requests_total", "/rte.test.Echo/Echo"
    assert promtext.value(m, total, method=echo, code="OK") == 1
    assert promtext.value(m, total, method=echo, code="INVALID_ARGUMENT") == 1
    assert promtext.value(m, total, method=echo, code="DEADLINE_EXCEEDED") == 1
    assert promtext.value(m, total, method="unknown", code="UNIMPLEMENTED") == 1
    assert promtext.value(m, total, method="/grpc.health.v1.Health/Check", code="OK") == 1
    assert promtext.value(m, "rte_grpc_duration_seconds_count", method=echo) == 3
