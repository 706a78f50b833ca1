"""tools/day-sim: a small simulated day (2,000 members, 24 h in 40 s),
warming off and on, against the real processes.

One day is run for the module (about 2.5 minutes of wall time for both runs);
the tests read its report.json and report.html:
- the report's figures agree with the services' own metrics, as Prometheus
  scraped them during the day (requests by result, real-time calls, batch
  checks); the mid-day batch-rpc job ran;
- warming on beats warming off on hit rate and on Stedi real-time calls;
- the 15-slot limit held (stedi-sim's highest in-flight count, no 429);
- the HTML renders in headless Chromium: a non-blank screenshot, the title,
  four charts.
"""
import json
import os
import shutil
import struct
import subprocess
import zlib

import pytest

from conftest import BUILD, REPO

DAY_SIM = os.path.join(REPO, "tools", "day-sim", "day_sim.py")

# A measurement of the suite, not of memory safety: every service of the day also runs
# under the sanitizers in its own suites; under them the day would measure the sanitizer.
pytestmark = pytest.mark.skipif(BUILD.rstrip("/").endswith("build-asan"),
                                reason="the simulated day is a measurement; the sanitizer "
                                "build runs each service's own suites")
SERVICES = ("stedi-sim", "member-cron", "webhook-receiver", "cache-gateway")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("day"))
    p = subprocess.run(["/usr/bin/python3", DAY_SIM, "--members", "2000", "--seed", "7",
                        "--day-seconds", "40", "--startup-seconds", "8", "--out", out,
                        "--build", BUILD, "--client-workers", "32"],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    with open(os.path.join(out, "report.json")) as f:
        rep = json.load(f)
    return out, rep, p.stdout


def test_table_printed_with_seed_and_command(day):
    _, rep, stdout = day
    assert "warming off" in stdout and "warming on" in stdout
    assert "seed 7, 2,000 members" in stdout
    assert "reproduce: /usr/bin/python3 tools/day-sim/day_sim.py --members 2000" in stdout
    assert "report.html" in stdout
    assert rep["members"] == 2000 and rep["seed"] == 7
    assert rep["runs"]["off"]["requests"] == rep["runs"]["on"]["requests"] == rep["opens"] > 300


def test_services_exited_cleanly(day):
    _, rep, _ = day
    for name, r in rep["runs"].items():
        assert r["problems"] == [], (name, r["problems"])
        for svc in SERVICES + (("cache-warmer",) if name == "on" else ()):
            assert r["exit_codes"][svc] == 0, (name, svc, r["exit_codes"])
        assert "cache-warmer" not in rep["runs"]["off"]["exit_codes"]


def test_report_agrees_with_service_metrics(day):
    _, rep, _ = day
    names = {"HIT": "hit", "STALE": "stale", "MISS": "miss", "error": "error"}
    for name, r in rep["runs"].items():
        prom = r["prometheus"]
        assert r["failed_requests"] == 0, name
        assert prom["requests"] == r["requests"], name
        for cache, n in r["by_cache"].items():
            assert prom["requests_by_result"].get(names[cache], 0) == n, (name, cache, prom)
        assert abs(prom["hit_rate"] - r["hit_rate"]) < 1e-9
        # every real-time exchange the services counted (except those that never got a
        # slot, none here) reached stedi-sim, and stedi-sim admitted nothing else
        assert prom["realtime_calls_reaching_stedi"] == r["stedi_realtime_calls"], (name, prom)
        assert prom["batch_checks_submitted"] == r["stedi_batch_items"], (name, prom)
    # the mid-day batch-rpc job (a PREFER_CACHED refresh) ran in both days
    for name, r in rep["runs"].items():
        assert r["batch_job"] and r["batch_job"].get("batch_id"), (name, r["batch_job"])
    # warming off: the warmer submitted nothing; any batch item is the mid-day batch-rpc job
    off = rep["runs"]["off"]
    assert off["prometheus"]["batch_checks_by_job"].get("cache-warmer", 0) == 0
    assert off["stedi_batch_items"] == off["prometheus"]["batch_checks_by_job"].get("batch-rpc", 0)


def test_warming_beats_no_warming(day):
    _, rep, _ = day
    off, on = rep["runs"]["off"], rep["runs"]["on"]
    # with the shipped settings (min probability 0.7) the gain is a few points: about 40
    # of the 412 openers are warmed (docs/day.md); each is one or two more hits
    assert on["hit_rate"] > off["hit_rate"] + 0.01, (off["hit_rate"], on["hit_rate"])
    assert on["stedi_realtime_calls"] < off["stedi_realtime_calls"]
    assert on["warmed"] > 0 and on["stedi_batch_items"] > 0
    assert on["predicted"] > 0 and 0 < on["precision"] <= 1 and 0 < on["recall"] <= 1


def test_slot_limit_held(day):
    _, rep, _ = day
    for name, r in rep["runs"].items():
        assert 0 < r["max_in_flight"] <= 15, name
        assert r["stedi_realtime_429"] == 0, name
        assert r["prometheus"]["slots_in_use_max_sampled"] <= 15, name


def png_pixels(path):
    """(width, height, rows of bytes, bytes per pixel) of an 8-bit RGB(A) PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def test_html_renders_in_chromium(day):
    out, rep, _ = day
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: install the Debian package chromium (make deps)")
    page = "file://" + os.path.join(out, "report.html")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", f"--user-data-dir={os.path.join(out, 'chromium')}"]
    shot = os.path.join(out, "report.png")
    p = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,1400", page],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and os.path.exists(shot), p.stderr[-2000:]
    dom = subprocess.run(flags + ["--dump-dom", page], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"<title>{rep['title']}</title>" in dom.stdout
    assert dom.stdout.count("<svg") == 4
    assert "Hit rate per hour of the day" in dom.stdout
    w, h, rows, bpp = png_pixels(shot)
    assert (w, h) == (1280, 1400)
    colors, ink = set(), 0
    for row in rows[::4]:
        for x in range(0, w * bpp, 4 * bpp):
            px = row[x:x + 3]
            colors.add(px)
            ink += px != b"\xff\xff\xff"
    sampled = (h // 4 + (h % 4 > 0)) * (w // 4)
    # charts and text: many colours (the run colours among them), a fair share of ink
    assert len(colors) > 50, len(colors)
    assert ink / sampled > 0.05, ink / sampled
    assert any(abs(px[0] - 0x1f) < 8 and abs(px[1] - 0x6f) < 8 and abs(px[2] - 0xb2) < 8
               for px in colors), "no 'warming on' blue in the screenshot"
