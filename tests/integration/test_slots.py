"""The cluster-wide Stedi slot limiter (libcommon/slots) across real processes.

Every case runs tests/programs/slot-probe processes against a real
redis-server, each case under its own key prefix. While a probe holds a slot
it INCRs <prefix>:test:inflight and RPUSHes the value it saw to
<prefix>:test:observed, so the maximum of that list is the highest number of
slots held at once across all processes; --tag RPUSHes grant order to
<prefix>:test:order.
"""
import re
import signal
import subprocess
import time
import uuid

import pytest

from conftest import bin_path, wait_for


def prefix():
    return "slots-it:" + uuid.uuid4().hex[:8]


def start(redis_server, pfx, cls, *extra, out=None):
    """A slot-probe process; stdout to the file out (or a pipe)."""
    args = [bin_path("slot-probe"), "--redis", redis_server.url, "--class", cls,
            "--prefix", pfx] + [str(x) for x in extra]
    stdout = open(out, "w") if out else subprocess.PIPE
    p = subprocess.Popen(args, stdout=stdout, stderr=subprocess.PIPE, text=True)
    p.out_path = out
    if out:
        stdout.close()
    return p


def finish(p, timeout=60):
    """Wait for a probe; returns (exit code, summary dict, stderr)."""
    out, err = p.communicate(timeout=timeout)
    if p.out_path:
        with open(p.out_path) as f:
            out = f.read()
    m = re.search(r"slot-probe: class=\S+ (.*)", out or "")
    summary = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
    return p.returncode, {k: int(v) for k, v in summary.items()}, err


def observed(client, pfx):
    return [int(v) for v in client.lrange(pfx + ":test:observed", 0, -1)]


def holding(path):
    with open(path) as f:
        return "slot-probe: holding" in f.read()


def start_holder(redis_server, tmp_path, pfx, cls, name, *extra):
    """A --hold-forever probe that holds a slot once this returns."""
    out = str(tmp_path / f"{name}.out")
    p = start(redis_server, pfx, cls, "--hold-forever", "--tag", name, *extra, out=out)
    wait_for(lambda: p.poll() is not None or holding(out), timeout=10, what=f"{name} to hold")
    assert p.poll() is None, finish(p)
    return p


@pytest.mark.parametrize("limit,n", [(15, 200), (3, 100)])
def test_limit_never_exceeded_across_processes(redis_server, limit, n):
    """8 processes x n acquisitions (hold 2-5 ms): never more than limit held."""
    pfx = prefix()
    procs = [start(redis_server, pfx, "interactive", "--n", n, "--hold-min-ms", 2,
                   "--hold-ms", 5, "--limit", limit, "--reserve", 0, "--lease-ms", 5000)
             for _ in range(8)]
    results = [finish(p) for p in procs]
    for rc, summary, err in results:
        assert rc == 0, err
        assert summary["ok"] == n and summary["timeout"] == 0 and summary["error"] == 0
    seen = observed(redis_server.client(), pfx)
    assert len(seen) == 8 * n
    assert max(seen) <= limit
    assert max(seen) > 1, "the probes never overlapped: concurrency not exercised"
    c = redis_server.client()
    assert c.zcard(pfx + ":holders") == 0
    assert int(c.get(pfx + ":test:inflight")) == 0


def test_crashed_holder_slot_returns_after_lease(redis_server, tmp_path):
    """kill -9 of a holder: its slot is free again once its lease (1.5 s) ends."""
    pfx = prefix()
    holder = start_holder(redis_server, tmp_path, pfx, "interactive", "holder",
                          "--limit", 1, "--reserve", 0, "--lease-ms", 1500)
    holder.kill()
    holder.wait(5)
    t0 = time.monotonic()
    rc, summary, err = finish(start(redis_server, pfx, "interactive", "--n", 1, "--limit", 1,
                                    "--reserve", 0, "--lease-ms", 1500, "--timeout-ms", 5000))
    elapsed = time.monotonic() - t0
    assert rc == 0, err
    assert summary["ok"] == 1
    assert summary["max_wait_ms"] >= 1000, summary
    assert elapsed < 5.0


def wait_queued(client, pfx, cls, n):
    wait_for(lambda: client.zcard(f"{pfx}:queue:{cls}") >= n, timeout=10,
             what=f"{n} waiter(s) in queue {cls}")


def test_interactive_waiter_goes_before_earlier_batch_waiter(redis_server, tmp_path):
    """Both slots held; a batch waiter then an interactive one; interactive wins."""
    pfx = prefix()
    c = redis_server.client()
    common = ("--limit", 2, "--reserve", 0, "--lease-ms", 30000)
    holders = [start_holder(redis_server, tmp_path, pfx, "interactive", f"holder{i}", *common)
               for i in range(2)]
    batch = start(redis_server, pfx, "batch", "--n", 1, "--hold-ms", 50, "--tag", "batch",
                  "--timeout-ms", 20000, *common)
    wait_queued(c, pfx, 2, 1)
    inter = start(redis_server, pfx, "interactive", "--n", 1, "--hold-ms", 50,
                  "--tag", "interactive", "--timeout-ms", 20000, *common)
    wait_queued(c, pfx, 0, 1)
    # one slot frees: only the (later) interactive waiter may take it
    holders[0].send_signal(signal.SIGTERM)
    wait_for(lambda: c.llen(pfx + ":test:order") >= 3, timeout=10, what="a third grant")
    assert c.lindex(pfx + ":test:order", 2) == b"interactive"
    holders[1].send_signal(signal.SIGTERM)
    for p in holders + [batch, inter]:
        rc, summary, err = finish(p, timeout=20)
        assert rc == 0, err
    order = [v.decode() for v in c.lrange(pfx + ":test:order", 0, -1)]
    assert order == ["holder0", "holder1", "interactive", "batch"]
    assert c.zcard(pfx + ":holders") == 0


def test_fifo_within_class_and_interactive_first(redis_server, tmp_path):
    """One slot held; batch b0, b1, b2 then interactive queue up: i, b0, b1, b2."""
    pfx = prefix()
    c = redis_server.client()
    common = ("--limit", 1, "--reserve", 0, "--lease-ms", 30000, "--timeout-ms", 20000)
    holder = start_holder(redis_server, tmp_path, pfx, "interactive", "holder", *common)
    waiters = []
    for i in range(3):
        waiters.append(start(redis_server, pfx, "batch", "--n", 1, "--hold-ms", 30,
                             "--tag", f"b{i}", *common))
        wait_queued(c, pfx, 2, i + 1)
    waiters.append(start(redis_server, pfx, "interactive", "--n", 1, "--hold-ms", 30,
                         "--tag", "i", *common))
    wait_queued(c, pfx, 0, 1)
    holder.send_signal(signal.SIGTERM)
    for p in [holder] + waiters:
        rc, summary, err = finish(p, timeout=20)
        assert rc == 0, err
    order = [v.decode() for v in c.lrange(pfx + ":test:order", 0, -1)]
    assert order == ["holder", "i", "b0", "b1", "b2"]


@pytest.mark.parametrize("cap,reserve", [(10, 5), (8, 5), (12, 5)])
def test_warming_cap_and_interactive_reserve(redis_server, tmp_path, cap, reserve):
    """12 warming holders, limit 15: at most min(cap, limit - reserve) hold at once,
    and interactive traffic still gets a slot while they do."""
    pfx = prefix()
    c = redis_server.client()
    expect = min(cap, 15 - reserve)
    common = ("--limit", 15, "--reserve", reserve, "--warming-cap", cap, "--lease-ms", 30000)
    procs = []
    for i in range(12):
        out = str(tmp_path / f"w{cap}-{i}.out")
        procs.append(start(redis_server, pfx, "warming", "--hold-forever", "--timeout-ms", 1500,
                           *common, out=out))
    wait_for(lambda: sum(p.poll() is not None for p in procs) >= 12 - expect, timeout=15,
             what="the warming probes beyond the cap to time out")
    time.sleep(0.2)
    assert c.zcard(pfx + ":holders") == expect
    assert max(observed(c, pfx)) == expect
    # the reserve is still there for interactive callers
    rc, summary, err = finish(start(redis_server, pfx, "interactive", "--n", 1,
                                    "--timeout-ms", 2000, *common))
    assert rc == 0, err
    timed_out = [p for p in procs if p.poll() is not None]
    assert len(timed_out) == 12 - expect
    for p in timed_out:
        rc, summary, err = finish(p)
        assert rc == 2 and summary["timeout"] == 1, err
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        if p not in timed_out:
            rc, summary, err = finish(p, timeout=20)
            assert rc == 0, err
    assert c.zcard(pfx + ":holders") == 0
    assert c.zcard(pfx + ":queue:1") == 0
