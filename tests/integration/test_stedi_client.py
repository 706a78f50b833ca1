"""libcommon's Stedi client (rte/stedi.h) against tools/stedi-sim and real Redis.

Drives tests/programs/stedi-probe, which builds the client from RTE_*
variables exactly as a service does. Faults come from the simulator's own
knobs (error rate, a lower concurrency limit than our limiter, latency above
our timeout, a wrong key) and, for the unsafe batch submit, from a tiny
scripted HTTP server that times out, fails or refuses: those show which
outcomes the client repeats and which it must not.
"""
import concurrent.futures
import http.server
import json
import subprocess
import threading
import uuid

import pytest
import requests

from conftest import bin_path, free_port, start_stedi_sim, stop_clean, wait_for
from test_slots import finish as slot_finish, start_holder

RT = "/2024-04-01/change/medicalnetwork/eligibility/v3"


def probe(redis_server, sim_url, *args, timeout=120, **env):
    """Run stedi-probe; returns its JSON summary."""
    e = {"RTE_STEDI_BASE_URL": sim_url, "RTE_REDIS_URL": redis_server.url,
         "RTE_SLOTS_PREFIX": "stedi-it:" + uuid.uuid4().hex[:8], "RTE_LOG_LEVEL": "error",
         "RTE_STEDI_RETRY_BASE_DELAY": "5ms", "RTE_STEDI_RETRY_MAX_DELAY": "50ms"}
    e.update({k: str(v) for k, v in env.items()})
    import os
    full = dict(os.environ)
    full.update(e)
    p = subprocess.run([bin_path("stedi-probe")] + [str(a) for a in args], env=full,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def stats(sim):
    return requests.get(sim.url("http", "/_sim/stats"), timeout=10).json()


def reset(sim):
    requests.post(sim.url("http", "/_sim/reset"), timeout=10)


@pytest.fixture(scope="module")
def sim(workdir):
    s = start_stedi_sim(workdir, latency_p50="2s", latency_p95="4s")
    yield s
    stop_clean(s)


def sim_answer(sim, member, payer="62308", stc="30"):
    """The simulator's own answer for a member (docs/stedi-sim.md: class = id mod 20)."""
    body = {"tradingPartnerServiceId": payer,
            "provider": {"organizationName": "C", "npi": "1999999984"},
            "subscriber": {"memberId": member, "firstName": "Ann", "lastName": "Lee",
                           "dateOfBirth": "19800102"},
            "encounter": {"serviceTypeCodes": [stc]}}
    r = requests.post(sim.url("http", RT), json=body, headers={"Authorization": "test-key"},
                      timeout=30)
    return r.status_code, r.json()


def iso(d):
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}"


def test_realtime_reads_the_published_answer(redis_server, sim):
    """Each member class of the simulator read by the rules of docs/stedi.md."""
    def rt(member, *extra):
        out = probe(redis_server, sim.url("http", ""), "realtime", "--member", member,
                    "--dob", "1980-01-02", *extra)
        return out, out["first"]

    # class 1 "basic": active on 30 (plan range); its only co-pay row is for 98
    out, f = rt("M000000021")
    status, truth = sim_answer(sim, "M000000021")
    assert out["ok"] == 1 and f["source"] == "stedi_realtime" and f["http_status"] == 200, out
    plan = truth["planDateInformation"]["plan"]
    assert f["eligible"] is True
    assert "copay_amount" not in f  # 30 has no co-pay row: never another type's
    assert (f["coverage_start"], f["coverage_end"]) == (iso(plan[:8]), iso(plan[9:]))
    assert f["network_status"] == "unknown"
    assert f["entry"]["benefits"]["30"]["status"] == "active"
    # asked 98 (office visit), the same member's in-network co-pay is the answer
    out, f = rt("M000000021", "--service-types", "98")
    _, truth98 = sim_answer(sim, "M000000021", stc="98")
    copay = [b for b in truth98["benefitsInformation"] if b["code"] == "B" and
             "98" in b.get("serviceTypeCodes", []) and b.get("inPlanNetworkIndicatorCode") == "Y"]
    assert f["copay_amount"] == float(copays_one(copay)), f
    # class 3: a planBegin range keeps its end
    out, f = rt("M000000023")
    _, truth = sim_answer(sim, "M000000023")
    pb = truth["planDateInformation"]["planBegin"]
    assert "-" in pb and f["coverage_end"] == iso(pb[9:]), (pb, f)
    # class 4: eligibilityBegin/End only, read as the coverage and eligibility dates
    out, f = rt("M000000024")
    _, truth = sim_answer(sim, "M000000024")
    pd = truth["planDateInformation"]
    assert f["entry"]["eligibility_start"] == iso(pd["eligibilityBegin"])
    assert f["coverage_end"] == iso(pd["eligibilityEnd"]) and f["eligible"] is True
    # class 7 "out of network only": the payer's provider statement
    out, f = rt("M000000027")
    assert f["network_status"] == "out_of_network" and f["eligible"] is True, f
    # class 0: inactive
    out, f = rt("M000000020")
    assert f["eligible"] is False and f["entry"]["benefits"]["30"]["status"] == "inactive"
    # class 5: AAA 75 over 200; class 15: AAA 44 over 400 - answers, not failures
    out, f = rt("M000000025")
    assert out["payer_error"] == 1 and f["http_status"] == 200 and f["error_code"] == "75"
    assert f["entry"]["error"]["retry"] is False
    out, f = rt("M000000035")
    assert out["payer_error"] == 1 and f["http_status"] == 400 and f["error_code"] == "44", out
    assert out["attempts"] == 1


def copays_one(rows):
    assert len({r["benefitAmount"] for r in rows}) == 1, rows
    return rows[0]["benefitAmount"]


def test_bad_check_is_rejected_before_any_call(redis_server, sim):
    reset(sim)
    out = probe(redis_server, sim.url("http", ""), "realtime", "--member", "M1", "--dob", "1980")
    assert out["rejected"] == 1 and out["attempts"] == 0
    assert "subscriber.dateOfBirth" in out["first"]["message"]
    assert stats(sim)["realtime_calls"] == 0


def test_wrong_key_is_rejected_without_retry(redis_server, sim):
    out = probe(redis_server, sim.url("http", ""), "realtime", "--member", "M1",
                RTE_STEDI_API_KEY="wrong", RTE_STEDI_MAX_ATTEMPTS=5)
    assert out["rejected"] == 1 and out["attempts"] == 1, out
    assert out["first"]["http_status"] == 403  # Stedi: AccessDeniedException
    assert "stedi.api_key" in out["first"]["message"]


def test_429_from_stedi_is_retried(redis_server, workdir):
    # Stedi allows 2 while our limiter allows 8: the surplus gets 429 and retries.
    s = start_stedi_sim(workdir, max_concurrent=2, latency_p50="20s", latency_p95="30s")
    try:
        out = probe(redis_server, s.url("http", ""), "realtime", "--n", 16, "--threads", 8,
                    RTE_SLOTS_LIMIT=8, RTE_STEDI_MAX_ATTEMPTS=20)
        st = stats(s)
        assert out["ok"] + out["payer_error"] == 16, out
        assert st["realtime_429"] > 0 and out["attempts"] == 16 + st["realtime_429"], (out, st)
        assert st["max_in_flight"] <= 2
    finally:
        stop_clean(s)


def test_5xx_retried_payer_errors_answered(redis_server, workdir):
    s = start_stedi_sim(workdir, error_rate="0.5", latency_p50="1s", latency_p95="2s")
    try:
        out = probe(redis_server, s.url("http", ""), "realtime", "--n", 40, "--threads", 4,
                    RTE_STEDI_MAX_ATTEMPTS=10)
        st = stats(s)
        assert out["unavailable"] == 0 and out["failed"] == 0, out
        assert out["ok"] > 0 and out["payer_error"] > 0, out
        assert out["ok"] + out["payer_error"] == 40
        # every admitted call was one of our attempts; some of them were retries
        assert out["attempts"] == st["realtime_calls"] > 40
        once = probe(redis_server, s.url("http", ""), "realtime", "--n", 40, "--threads", 4,
                     "--member-prefix", "Q", RTE_STEDI_MAX_ATTEMPTS=1)
        assert once["attempts"] == 40 and once["unavailable"] > 0, once
    finally:
        stop_clean(s)


def test_timeout_outcome(redis_server, workdir):
    s = start_stedi_sim(workdir, latency_p50="600s", latency_p95="700s", latency_max="800s")
    try:
        out = probe(redis_server, s.url("http", ""), "realtime", "--member", "M9",
                    RTE_STEDI_TIMEOUT="100ms", RTE_STEDI_MAX_ATTEMPTS=2)
        assert out["timeout"] == 1 and out["attempts"] == 2, out
        out = probe(redis_server, s.url("http", ""), "realtime", "--member", "M9",
                    "--deadline-ms", 150, RTE_STEDI_MAX_ATTEMPTS=5)
        assert out["timeout"] == 1 and out["attempts"] == 1, out
    finally:
        stop_clean(s)


def test_no_slot_means_no_call(redis_server, sim, tmp_path):
    pfx = "stedi-it:" + uuid.uuid4().hex[:8]
    holder = start_holder(redis_server, tmp_path, pfx, "interactive", "h", "--limit", 1,
                          "--reserve", 0, "--warming-cap", 1, "--batch-cap", 1)
    try:
        reset(sim)
        out = probe(redis_server, sim.url("http", ""), "realtime", "--member", "M1",
                    "--deadline-ms", 300, RTE_SLOTS_PREFIX=pfx, RTE_SLOTS_LIMIT=1,
                    RTE_SLOTS_RESERVE_INTERACTIVE=0, RTE_SLOTS_WARMING_CAP=1,
                    RTE_SLOTS_BATCH_CAP=1)
        assert out["no_slot"] == 1 and out["attempts"] == 0, out
        assert out["first"]["slot_wait_ms"] >= 250
        assert stats(sim)["realtime_calls"] == 0
    finally:
        holder.terminate()
        slot_finish(holder)


def test_eight_processes_never_exceed_the_limit(redis_server, workdir):
    """8 processes x 200 calls (4 threads each, 32 callers for 15 slots)."""
    s = start_stedi_sim(workdir, latency_p50="30s", latency_p95="60s")
    pfx = "stedi-it:" + uuid.uuid4().hex[:8]
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            outs = list(ex.map(lambda i: probe(
                redis_server, s.url("http", ""), "realtime", "--n", 200, "--threads", 4,
                "--member-prefix", f"P{i}-", RTE_SLOTS_PREFIX=pfx, timeout=300), range(8)))
        st = stats(s)
        print(f"8x200 realtime: max_in_flight={st['max_in_flight']} 429s={st['realtime_429']}")
        assert sum(o["ok"] + o["payer_error"] for o in outs) == 1600, outs
        assert st["realtime_calls"] == 1600
        assert st["max_in_flight"] <= 15
        assert st["max_in_flight"] >= 10  # the limiter was actually contended
        assert st["realtime_429"] == 0
    finally:
        stop_clean(s)


# ---- batch ----------------------------------------------------------------

def wait_complete(redis_server, sim, batch_id, timeout=30):
    last = {}

    def done():
        last.update(probe(redis_server, sim.url("http", ""), "status", "--batch", batch_id))
        return last["complete"]
    wait_for(done, timeout=timeout, interval=0.2, what="batch to complete")
    return last


def test_batch_submit_status_and_poll_all_pages(redis_server, sim):
    sub = probe(redis_server, sim.url("http", ""), "submit", "--n", 45, "--member-prefix", "B")
    assert sub["rc"] == 0 and sub["batch_id"], sub
    st = wait_complete(redis_server, sim, sub["batch_id"])
    assert st["total"] == 45 and st["success"] + st["error"] == 45 and st["in_progress"] == 0
    assert st["status"] in ("COMPLETED", "COMPLETED_WITH_ERRORS"), st
    out = probe(redis_server, sim.url("http", ""), "poll", "--batch", sub["batch_id"],
                "--page-size", 10)
    assert out["rc"] == 45 and out["pages"] == 5, out
    # each page's cursor resumes right after it; the last one equals the final cursor
    assert len(out["page_cursors"]) == 5 and out["page_cursors"][-1] == out["cursor"]
    mid = probe(redis_server, sim.url("http", ""), "poll", "--batch", sub["batch_id"],
                "--page-size", 10, "--cursor", out["page_cursors"][1])
    assert sorted(i["sti"] for i in mid["items"]) == sorted(
        i["sti"] for i in out["items"][20:]), mid
    stis = sorted(i["sti"] for i in out["items"])
    assert stis == sorted(f"T{i}" for i in range(45))
    assert all(i["source"] == "stedi_batch" for i in out["items"])
    # the cursor is past everything: polling again hands over nothing
    again = probe(redis_server, sim.url("http", ""), "poll", "--batch", sub["batch_id"],
                  "--page-size", 10, "--cursor", out["cursor"])
    assert again["rc"] == 0 and again["items"] == [] and again["cursor"] == out["cursor"]


def test_two_hosts_like_stedi(redis_server, workdir):
    """The manager API on a port of its own: real-time on one, every batch call on the other."""
    s = start_stedi_sim(workdir, args=("--manager-port", "0"), batch_min_delay="0s",
                        batch_max_delay="2s")
    try:
        hosts = {"RTE_STEDI_BASE_URL": "http://127.0.0.1:1",  # the shorthand, overridden
                 "RTE_STEDI_HEALTHCARE_BASE_URL": s.url("http", ""),
                 "RTE_STEDI_MANAGER_BASE_URL": s.url("manager", "")}
        out = probe(redis_server, s.url("http", ""), "realtime", "--member", "M000000021",
                    **hosts)
        assert out["ok"] == 1, out
        sub = probe(redis_server, s.url("http", ""), "submit", "--n", 12, **hosts)
        assert sub["rc"] == 0, sub

        def done():
            st = probe(redis_server, s.url("http", ""), "status", "--batch", sub["batch_id"],
                       **hosts)
            return st if st["complete"] else None
        wait_for(done, timeout=30, interval=0.2, what="batch to complete")
        out = probe(redis_server, s.url("http", ""), "poll", "--batch", sub["batch_id"],
                    "--page-size", 5, **hosts)
        assert out["rc"] == 12 and out["pages"] == 3, out
        # the healthcare port answers no batch path, the manager port no real-time one
        assert requests.get(s.url("http", "/2024-04-01/eligibility-manager/batch/"
                                   + sub["batch_id"]),
                            headers={"Authorization": "test-key"}, timeout=10).status_code == 404
        one = probe(redis_server, s.url("manager", ""), "realtime", "--member", "M1")
        assert one["rejected"] == 1 and one["first"]["http_status"] == 404, one
    finally:
        stop_clean(s)


def test_poll_cursor_resumes_while_results_trickle_in(redis_server, workdir):
    # items complete over 0..60 simulated s = 0..3 real s: poll with the cursor meanwhile
    s = start_stedi_sim(workdir, RTE_CLOCK_SCALE=20, batch_min_delay="0s",
                        batch_max_delay="60s")
    try:
        sub = probe(redis_server, s.url("http", ""), "submit", "--n", 57)
        assert sub["rc"] == 0, sub
        seen, cursor, polls = [], "", 0
        while True:
            st = probe(redis_server, s.url("http", ""), "status", "--batch", sub["batch_id"])
            out = probe(redis_server, s.url("http", ""), "poll", "--batch", sub["batch_id"],
                        "--page-size", 7, "--cursor", cursor)
            assert out["rc"] >= 0, out
            seen += [i["sti"] for i in out["items"]]
            cursor = out["cursor"]
            polls += 1
            if st["complete"] and out["rc"] == 0:
                break
            assert polls < 400
        assert len(seen) == 57 and len(set(seen)) == 57, (len(seen), polls)
        assert polls > 3  # results really arrived over several polls
    finally:
        stop_clean(s)


def test_unknown_batch_and_bad_input(redis_server, sim):
    st = probe(redis_server, sim.url("http", ""), "status", "--batch", "no-such-batch")
    assert st["rc"] == -3
    out = probe(redis_server, sim.url("http", ""), "submit", "--n", 0)
    assert out["rc"] == -1 and "items" in out["error"]
    out = probe(redis_server, sim.url("http", ""), "submit", "--n", 3, "--dob", "nope")
    assert out["rc"] == -1 and "items[0].subscriber.dateOfBirth" in out["error"], out
    out = probe(redis_server, sim.url("http", ""), "poll", "--batch", "x", "--cursor", "junk")
    assert out["rc"] == -1 and "cursor" in out["error"]


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers POSTs from a script: 'hang', 'refuse' (429), '503' or 'ok'."""
    script, hits = [], []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        step = Scripted.script[min(len(Scripted.hits), len(Scripted.script) - 1)]
        Scripted.hits.append(step)
        if step == "hang":
            threading.Event().wait(2)
            return
        code, body = {"refuse": (429, {"code": "TOO_MANY_REQUESTS", "message": "slow down"}),
                      "503": (503, {"message": "down"}),
                      "ok": (200, {"batchId": "b-1", "status": "PENDING"})}[step]
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def scripted():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Scripted.hits = []
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("script,rc,hits", [
    (["refuse", "refuse", "ok"], 0, 3),   # 429: Stedi did nothing, so repeating is safe
    (["503", "ok"], -2, 1),               # may have been created: never repeated
    (["hang", "ok"], -2, 1),              # timed out after sending: never repeated
])
def test_batch_submit_repeats_only_what_stedi_refused(redis_server, scripted, script, rc, hits):
    Scripted.script = script
    out = probe(redis_server, f"http://127.0.0.1:{scripted.server_port}", "submit", "--n", 2,
                RTE_STEDI_MAX_ATTEMPTS=5, RTE_STEDI_API_TIMEOUT="300ms")
    assert out["rc"] == rc and len(Scripted.hits) == hits, (out, Scripted.hits)
    if rc == 0:
        assert out["batch_id"] == "b-1"
    else:
        assert "may have created" in out["error"]


def test_batch_submit_to_nothing_is_a_clear_refusal(redis_server):
    out = probe(redis_server, f"http://127.0.0.1:{free_port()}", "submit", "--n", 2,
                RTE_STEDI_MAX_ATTEMPTS=2)
    assert out["rc"] == -1 and "refused" in out["error"], out


def test_redis_down_interactive_runs_degraded_others_wait(redis_server, sim):
    dead = f"redis://127.0.0.1:{free_port()}"
    reset(sim)
    out = probe(redis_server, sim.url("http", ""), "realtime", "--n", 6, "--threads", 6,
                RTE_REDIS_URL=dead, RTE_SLOTS_DEGRADED_LIMIT=2)
    assert out["ok"] + out["payer_error"] == 6 and out["degraded"] == 6, out
    assert stats(sim)["max_in_flight"] <= 2  # the local budget held
    out = probe(redis_server, sim.url("http", ""), "realtime", "--class", "batch",
                "--deadline-ms", 500, RTE_REDIS_URL=dead)
    assert out["no_slot"] == 1 and out["degraded"] == 0, out
    out = probe(redis_server, sim.url("http", ""), "realtime", "--deadline-ms", 500,
                RTE_REDIS_URL=dead, RTE_SLOTS_DEGRADED_LIMIT=0)
    assert out["no_slot"] == 1, out
