"""day_report - the figures of a simulated day, as a table, JSON and an HTML page.

build() turns what day_sim.py measured (the driver's own requests, stedi-sim's
counters and samples, Prometheus queries over the services' metrics) into
one report dict; table() prints it off vs on; write() stores report.json
and report.html, a self-contained page (inline SVG, no script, nothing
fetched) readable at a glance. Nothing here asserts a figure: a promise of
the source documents is compared with what was measured and the gap, when
there is one, is stated.

User latency is on the simulated clock: an answer that waited for Stedi
(MISS, or a failure) is scaled, since every wait on that path (Stedi's drawn
latency, slot queueing behind other Stedi calls) runs on the scaled clock;
the gateway's own overhead, the median real time of a cache answer in that
run, is taken off before scaling and added back unscaled. Answers from the
cache (HIT, STALE, CACHE_ONLY's 504) are not scaled. docs/day.md says what
this over- and under-states.
"""
import html
import json
import os
from datetime import datetime, timezone

HOUR = 3600.0
SLOT_LIMIT = 15


def pct(xs, q):
    if not xs:
        return 0.0
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ratio(a, b):
    return a / b if b else 0.0


def latencies(res, scale):
    """Simulated seconds per request (module docstring)."""
    cached = [r["real_s"] for r in res if r["cache"] in ("HIT", "STALE")]
    base = pct(cached, 0.5) if cached else 0.0
    out = []
    for r in res:
        waited = r["cache"] == "MISS" or r["status"] not in (200, 504)
        lat = (max(0.0, r["real_s"] - base) * scale + base) if waited else r["real_s"]
        out.append(lat)
    return out, base


def run_figures(cfg, name, data, openers, day0):
    res = data["results"]
    scale = data["clock"]["scale"]
    lat, base = latencies(res, scale)
    for r, x in zip(res, lat):
        r["lat_s"] = x
    hits = [r for r in res if r["cache"] in ("HIT", "STALE")]
    rush = [r for r in res if 6 <= r["local_hour"] < 10]
    rush_hits = [r for r in rush if r["cache"] in ("HIT", "STALE")]
    by_cache = {}
    for r in res:
        by_cache[r["cache"]] = by_cache.get(r["cache"], 0) + 1
    by_mode_cache = {}
    for r in res:
        k = f"{r['mode']}/{r['cache']}"
        by_mode_cache[k] = by_mode_cache.get(k, 0) + 1
    st = data["stats"]
    prom = data["prom"]
    # warmed entries and whether anyone asked after the warming
    asked = {}
    for r in res:
        asked.setdefault(r["member"], []).append(r)
    warmed = data["warmed"]
    never = [m for m, (at, _) in warmed.items()
             if not any(r["t"] >= at for r in asked.get(m, []))]
    served = sum(1 for m, (at, _) in warmed.items()
                 if any(r["t"] >= at and r["cache"] in ("HIT", "STALE")
                        for r in asked.get(m, [])))
    pred = set(data["predictions"])
    tp = len(pred & openers)
    prom_realtime = sum(prom["realtime_by_job"].values())
    prom_reached = sum(v for _, oc, v in prom["realtime_by_job_outcome"]
                       if oc not in ("no_slot",))
    prom_req = sum(prom["requests_by_result"].values())
    prom_hits = prom["requests_by_result"].get("hit", 0) + prom["requests_by_result"].get(
        "stale", 0)
    f = {
        "requests": len(res),
        "by_cache": by_cache,
        "by_mode_cache": by_mode_cache,
        "failed_requests": sum(1 for r in res if r["status"] == 0),
        "hit_rate": ratio(len(hits), len(res)),
        "fresh_hit_rate": ratio(by_cache.get("HIT", 0), len(res)),
        "rush_requests": len(rush),
        "rush_hit_rate": ratio(len(rush_hits), len(rush)),
        "rush_misses": sum(1 for r in rush if r["cache"] == "MISS"),
        "stedi_realtime_calls": st["realtime_calls"],
        "stedi_realtime_429": st["realtime_429"],
        "stedi_realtime_errors": st["realtime_errors"],
        "stedi_batches": st["batches"],
        "stedi_batch_items": st["batch_items"],
        "max_in_flight": st["max_in_flight"],
        "lat_hit": {q: pct([r["lat_s"] for r in hits], v)
                    for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "lat_all": {q: pct(lat, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "over_10s": sum(1 for x in lat if x > 10.0),
        "gateway_overhead_real_s": base,
        "max_lag_real_s": max((r["lag_s"] for r in res), default=0.0),
        "warmed": len(warmed),
        "warmed_batch": sum(1 for _, how in warmed.values() if how == "batch"),
        "warmed_urgent": sum(1 for _, how in warmed.values() if how == "urgent"),
        "warmed_never_read": len(never),
        "warmed_served_from_cache": served,
        "predicted": len(pred),
        "precision": ratio(tp, len(pred)),
        "recall": ratio(tp, len(openers)),
        "prometheus": {
            "requests": prom_req,
            "hit_rate": ratio(prom_hits, prom_req),
            "requests_by_result": prom["requests_by_result"],
            "realtime_calls": prom_realtime,
            "realtime_calls_reaching_stedi": prom_reached,
            "realtime_by_job": prom["realtime_by_job"],
            "batch_checks_submitted": prom["batch_checks"],
            "batch_checks_by_job": prom.get("batch_checks_by_job", {}),
            "batches_submitted": prom["batches"],
            "slots_in_use_max_sampled": prom["slots_max_sampled"],
            "urgent_by_outcome": prom["urgent_by_outcome"],
            "prediction_accuracy": prom["prediction_accuracy"],
            "likely_emitted": prom["likely_emitted"],
        },
        "urgent_check": data.get("urgent_check", {}),
        "problems": data.get("problems", []),
        "exit_codes": data["exit_codes"],
        "batch_job": data["batch_job"],
        "carryover": data["carryover"],
        "wall_s": data["wall_s"],
    }
    f["series"] = hourly(res, data["samples"], day0)
    f["latency_cdf"] = cdf(lat)
    return f


def hourly(res, samples, day0):
    """Per simulated hour of the day: requests, hit rate, most real-time calls in
    flight (stedi-sim's samples), Stedi real-time calls and batch items."""
    n = [0] * 24
    h = [0] * 24
    for r in res:
        i = min(23, max(0, int((r["t"] - day0) // HOUR)))
        n[i] += 1
        h[i] += r["cache"] in ("HIT", "STALE")
    inflight = [0] * 24
    rt = [0] * 24
    items = [0] * 24
    prev = None
    for s in samples:
        i = int((s["t"] - day0) // HOUR)
        if 0 <= i < 24:
            inflight[i] = max(inflight[i], s["in_flight"])
            if prev is not None:
                rt[i] += s["realtime_calls"] - prev["realtime_calls"]
                items[i] += s["batch_items"] - prev["batch_items"]
        prev = s
    return {"requests": n, "hit_rate": [ratio(a, b) for a, b in zip(h, n)],
            "max_in_flight": inflight, "realtime_calls": rt, "batch_items": items}


def cdf(lat):
    """Share of requests at or under each of a log-spaced set of latencies."""
    xs = sorted(lat)
    pts = []
    edges = [10 ** (e / 8.0) for e in range(-24, 18)]  # 1 ms .. ~150 s
    j = 0
    for e in edges:
        while j < len(xs) and xs[j] <= e:
            j += 1
        pts.append((e, ratio(j, len(xs))))
    return pts


def promises(runs):
    """The source documents' promises against the figures: (promise, measured, verdict)."""
    out = []
    off, on = runs.get("off"), runs.get("on")
    if off and on:
        gain = (on["hit_rate"] - off["hit_rate"]) * 100
        out.append(("hit rate up by >= 20 points (000: 30 -> 50 %)",
                    f"{off['hit_rate'] * 100:.1f} % -> {on['hit_rate'] * 100:.1f} % "
                    f"({gain:+.1f} points)",
                    "met" if gain >= 20 else f"not met: {20 - gain:.1f} points short"))
        cut = 1 - ratio(on["rush_misses"], off["rush_misses"])
        out.append(("morning-rush Stedi real-time calls -70 % (DESIGN)",
                    f"{off['rush_misses']} -> {on['rush_misses']} gateway calls "
                    f"({-cut * 100:+.0f} %)",
                    "met" if cut >= 0.70 else f"not met: {(0.70 - cut) * 100:.0f} points short"))
    if on:
        out.append(("hit rate 60-70 % with warming (004)", f"{on['hit_rate'] * 100:.1f} %",
                    "met" if on["hit_rate"] >= 0.60 else
                    f"not met: {(0.60 - on['hit_rate']) * 100:.1f} points short"))
        out.append(("hit rate 92 % at full rollout (001)", f"{on['hit_rate'] * 100:.1f} %",
                    "met" if on["hit_rate"] >= 0.92 else
                    f"not met: {(0.92 - on['hit_rate']) * 100:.1f} points short"))
        p95 = on["lat_all"]["p95"]
        out.append(("user-perceived latency under 500 ms (was 10-30 s)",
                    f"p95 of all requests {fmt_s(p95)}, of cache answers "
                    f"{fmt_s(on['lat_hit']['p95'])}",
                    "met" if p95 < 0.5 else f"not met for all requests: p95 is "
                    f"{fmt_s(p95 - 0.5)} over; met for cache answers"
                    if on["lat_hit"]["p95"] < 0.5 else f"not met: p95 {fmt_s(p95)}"))
    for name, r in runs.items():
        ok = r["max_in_flight"] <= SLOT_LIMIT and r["stedi_realtime_429"] == 0
        out.append((f"zero slot-saturation incidents (warming {name})",
                    f"max {r['max_in_flight']} of {SLOT_LIMIT} in flight, "
                    f"{r['stedi_realtime_429']} answered 429",
                    "met" if ok else "NOT met"))
    return out


def fmt_s(x):
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.1f} s"


def batch_phase(cfg, runs):
    """What became of the optional batch-rpc phase (a 20,000-member PREFER_CACHED job)."""
    if not cfg.batch_job:
        return "skipped (--no-batch-job)"
    if not os.path.exists(os.path.join(cfg.build, "bin", "batch-rpc")):
        return "skipped: batch-rpc is not built yet"
    return "; ".join(f"warming {n}: {json.dumps(r['batch_job'])}" for n, r in runs.items())


def build(cfg, cmd, members, openers, opens, data):
    runs = {n: run_figures(cfg, n, d, openers, cfg.day0) for n, d in data.items()}
    return {
        "title": "RTE suite - a simulated day, warming off vs on",
        "command": cmd,
        "seed": cfg.seed,
        "members": len(members),
        "openers": len(openers),
        "opens": len(opens),
        "date": datetime.fromtimestamp(cfg.day0, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": cfg.scale,
        "day_seconds": cfg.day_seconds,
        "outage": cfg.outage,
        "modes": {"PREFER_CACHED": cfg.prefer_cached, "CACHE_ONLY": cfg.cache_only},
        "carryover_every": cfg.carryover_every,
        "warmer_min_probability": cfg.warmer_min_probability,
        "batch_hour": cfg.batch_job_hour,
        "batch_phase": batch_phase(cfg, runs),
        "runs": runs,
        "promises": promises(runs),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


ROWS = [
    ("requests (app opens)", lambda r: f"{r['requests']:,}"),
    ("hit rate, whole day", lambda r: f"{r['hit_rate'] * 100:.1f} %"),
    ("hit rate, morning rush (06-10 local)", lambda r: f"{r['rush_hit_rate'] * 100:.1f} %"),
    ("Stedi real-time calls", lambda r: f"{r['stedi_realtime_calls']:,}"),
    ("  of them in the morning rush (gateway)", lambda r: f"{r['rush_misses']:,}"),
    ("Stedi batch items", lambda r: f"{r['stedi_batch_items']:,}"),
    ("max real-time in flight (limit 15)", lambda r: f"{r['max_in_flight']}"),
    ("real-time calls answered 429", lambda r: f"{r['stedi_realtime_429']}"),
    ("latency p50 / p95 / p99, cache answers",
     lambda r: " / ".join(fmt_s(r["lat_hit"][q]) for q in ("p50", "p95", "p99"))),
    ("latency p50 / p95 / p99, all requests",
     lambda r: " / ".join(fmt_s(r["lat_all"][q]) for q in ("p50", "p95", "p99"))),
    ("requests over 10 s", lambda r: f"{r['over_10s']:,}"),
    ("failed requests (no answer)", lambda r: f"{r['failed_requests']:,}"),
    ("members warmed (batch + urgent)",
     lambda r: f"{r['warmed']:,} ({r['warmed_batch']:,} + {r['warmed_urgent']:,})"),
    ("warmed, never read after warming",
     lambda r: f"{r['warmed_never_read']:,} ({ratio(r['warmed_never_read'], r['warmed']) * 100:.0f} %)"
     if r["warmed"] else "-"),
    ("prediction precision / recall (threshold 0.7)",
     lambda r: f"{r['precision'] * 100:.1f} % / {r['recall'] * 100:.1f} %"),
    ("Prometheus: gateway hit rate", lambda r: f"{r['prometheus']['hit_rate'] * 100:.1f} %"),
    ("Prometheus: real-time calls (all services)",
     lambda r: f"{r['prometheus']['realtime_calls']:,.0f}"),
    ("Prometheus: batch checks submitted",
     lambda r: f"{r['prometheus']['batch_checks_submitted']:,.0f}"),
]


def table(rep):
    names = list(rep["runs"])
    w0 = max(len(r[0]) for r in ROWS) + 2
    lines = [rep["title"],
             f"seed {rep['seed']}, {rep['members']:,} members ({rep['openers']:,} open the app, "
             f"{rep['opens']:,} requests), day from {rep['date']}, scale {rep['scale']:g} "
             f"(24 h in {rep['day_seconds']:.0f} s), payer outage {rep['outage'] or 'none'}",
             f"cache-warmer: warmer.min_probability "
             f"{'0.7 (shipped)' if rep['warmer_min_probability'] is None else rep['warmer_min_probability']}; "
             f"batch-rpc job at {rep['batch_hour']:g} h: {rep['batch_phase']}",
             f"reproduce: {rep['command']}", ""]
    cols = [[fn(rep["runs"][n]) for n in names] for _, fn in ROWS]
    w = [max(len(f"warming {n}"), *(len(c[i]) for c in cols)) + 2 for i, n in enumerate(names)]
    lines.append("".ljust(w0) + "".join(f"warming {n}".rjust(w[i]) for i, n in enumerate(names)))
    for (label, _), c in zip(ROWS, cols):
        lines.append(label.ljust(w0) + "".join(v.rjust(w[i]) for i, v in enumerate(c)))
    for n in names:
        for prob in rep["runs"][n].get("problems", []):
            lines.append(f"warming {n}: {prob}")
    lines.append("")
    lines.append("promises of the source documents:")
    for p, m, v in rep["promises"]:
        lines.append(f"  {p}: {m} - {v}")
    return "\n".join(lines)


def write(out, rep):
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    with open(os.path.join(out, "report.html"), "w") as f:
        f.write(render_html(rep))


# --- HTML with inline SVG --------------------------------------------------------------

COLORS = {"off": "#c0392b", "on": "#1f6fb2"}
W, H, PAD_L, PAD_B, PAD_T, PAD_R = 560, 260, 56, 36, 26, 16


def svg_frame(title, ymax, yfmt, xlabels, ylabel):
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">',
         f'<rect width="{W}" height="{H}" fill="#fff"/>',
         f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="14" '
         f'font-weight="bold">{html.escape(title)}</text>']
    for i in range(5):
        y = PAD_T + ph - ph * i / 4
        e.append(f'<line x1="{PAD_L}" x2="{PAD_L + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                 f'stroke="#ddd"/>')
        e.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                 f'{yfmt(ymax * i / 4)}</text>')
    for x, lab in xlabels:
        e.append(f'<text x="{PAD_L + pw * x:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" '
                 f'font-size="11">{html.escape(lab)}</text>')
    e.append(f'<text x="14" y="{PAD_T + ph / 2}" font-size="11" text-anchor="middle" '
             f'transform="rotate(-90 14 {PAD_T + ph / 2})">{html.escape(ylabel)}</text>')
    e.append(f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" '
             f'stroke="#888"/>')
    return e, pw, ph


def legend(e, names, x0=PAD_L + 8, y0=PAD_T + 14):
    for i, n in enumerate(names):
        c = COLORS.get(n, "#555")
        e.append(f'<rect x="{x0 + i * 110}" y="{y0 - 9}" width="12" height="12" fill="{c}"/>')
        e.append(f'<text x="{x0 + i * 110 + 16}" y="{y0 + 1}" font-size="12">warming {n}</text>')


def hour_labels():
    return [(h / 24.0, f"{h:02d}") for h in range(0, 25, 3)]


def line_chart(title, series, ymax, yfmt, ylabel, limit=None):
    """series: {run: [24 values]} drawn per hour of the day."""
    e, pw, ph = svg_frame(title, ymax, yfmt, hour_labels(), ylabel)
    if limit is not None:
        y = PAD_T + ph - ph * limit / ymax
        e.append(f'<line x1="{PAD_L}" x2="{PAD_L + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                 f'stroke="#000" stroke-dasharray="5,4"/>')
        e.append(f'<text x="{PAD_L + pw - 4}" y="{y - 4:.1f}" text-anchor="end" '
                 f'font-size="11">limit {limit}</text>')
    for n, vals in series.items():
        pts = " ".join(f"{PAD_L + pw * (i + 0.5) / 24:.1f},"
                       f"{PAD_T + ph - ph * min(v, ymax) / ymax:.1f}" for i, v in enumerate(vals))
        e.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS.get(n, "#555")}" '
                 f'stroke-width="2.5"/>')
    legend(e, list(series))
    e.append("</svg>")
    return "\n".join(e)


def cdf_chart(title, series):
    """series: {run: [(latency s, share)]} on a log latency axis."""
    import math
    lo, hi = -3.0, 2.2
    labs = [((math.log10(v) - lo) / (hi - lo), t) for v, t in
            ((0.001, "1 ms"), (0.01, "10 ms"), (0.1, "100 ms"), (1, "1 s"), (10, "10 s"),
             (100, "100 s"))]
    e, pw, ph = svg_frame(title, 1.0, lambda v: f"{v * 100:.0f} %", labs,
                          "requests answered within")
    x5 = PAD_L + pw * (math.log10(0.5) - lo) / (hi - lo)
    e.append(f'<line x1="{x5:.1f}" x2="{x5:.1f}" y1="{PAD_T}" y2="{PAD_T + ph}" stroke="#000" '
             f'stroke-dasharray="5,4"/><text x="{x5 + 4:.1f}" y="{PAD_T + ph - 6}" '
             f'font-size="11">500 ms</text>')
    for n, pts in series.items():
        p = " ".join(f"{PAD_L + pw * (min(max(math.log10(x), lo), hi) - lo) / (hi - lo):.1f},"
                     f"{PAD_T + ph - ph * s:.1f}" for x, s in pts)
        e.append(f'<polyline points="{p}" fill="none" stroke="{COLORS.get(n, "#555")}" '
                 f'stroke-width="2.5"/>')
    legend(e, list(series), y0=PAD_T + ph - 40)
    e.append("</svg>")
    return "\n".join(e)


def bar_chart(title, bars, ylabel):
    """bars: [(label, color, [24 values])] side by side per hour."""
    ymax = max([1] + [max(v) for _, _, v in bars])
    ymax = nice(ymax)
    e, pw, ph = svg_frame(title, ymax, lambda v: f"{v:,.0f}", hour_labels(), ylabel)
    bw = pw / 24 / (len(bars) + 1)
    for j, (lab, c, vals) in enumerate(bars):
        for i, v in enumerate(vals):
            h = ph * v / ymax
            x = PAD_L + pw * i / 24 + bw * (j + 0.5)
            e.append(f'<rect x="{x:.1f}" y="{PAD_T + ph - h:.1f}" width="{bw:.1f}" '
                     f'height="{h:.1f}" fill="{c}"/>')
        e.append(f'<rect x="{PAD_L + 8 + j * 150}" y="{PAD_T + 5}" width="12" height="12" '
                 f'fill="{c}"/><text x="{PAD_L + 24 + j * 150}" y="{PAD_T + 15}" '
                 f'font-size="12">{html.escape(lab)}</text>')
    e.append("</svg>")
    return "\n".join(e)


def nice(v):
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above v (an axis top)."""
    for p in range(0, 10):
        for m in (1, 2, 2.5, 5):
            if m * 10 ** p >= v:
                return m * 10 ** p
    return v


def render_html(rep):
    runs = rep["runs"]
    names = list(runs)
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(label)}</th>" + "".join(f"<td>{esc(fn(runs[n]))}</td>" for n in names)
        + "</tr>" for label, fn in ROWS)
    prom = "".join(f"<li><b>{esc(p)}</b>: {esc(m)} &mdash; <span class=\""
                   f"{'ok' if v == 'met' else 'bad'}\">{esc(v)}</span></li>"
                   for p, m, v in rep["promises"])
    mx = max([SLOT_LIMIT + 1] + [max(r["series"]["max_in_flight"]) for r in runs.values()])
    charts = [
        line_chart("Hit rate per hour of the day (New York time)",
                   {n: r["series"]["hit_rate"] for n, r in runs.items()}, 1.0,
                   lambda v: f"{v * 100:.0f} %", "hit rate"),
        line_chart("Real-time Stedi calls in flight (most per hour)",
                   {n: r["series"]["max_in_flight"] for n, r in runs.items()}, nice(mx),
                   lambda v: f"{v:.0f}", "calls in flight", limit=SLOT_LIMIT),
        cdf_chart("User latency: share of requests answered within",
                  {n: r["latency_cdf"] for n, r in runs.items()}),
    ]
    if "on" in runs:
        s = runs["on"]["series"]
        charts.append(bar_chart("Warming volume against app opens (warming on), per hour",
                                [("app opens", "#7f8c8d", s["requests"]),
                                 ("batch items", "#1f6fb2", s["batch_items"]),
                                 ("real-time calls", "#e67e22", s["realtime_calls"])],
                                "per hour"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(rep['title'])}</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; margin: 0 0 6px; }}
p.meta {{ font-size: 13px; color: #444; margin: 2px 0; }}
table {{ border-collapse: collapse; margin: 14px 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 10px; }}
th {{ text-align: left; font-weight: normal; background: #f5f5f5; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
thead th {{ font-weight: bold; text-align: right; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.ok {{ color: #1e7b34; font-weight: bold; }} .bad {{ color: #b03a2e; font-weight: bold; }}
ul {{ font-size: 13px; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>{esc(rep['title'])}</h1>
<p class="meta">seed {rep['seed']}, {rep['members']:,} members ({rep['openers']:,} open the app,
{rep['opens']:,} eligibility requests), day starting {esc(rep['date'])},
scale {rep['scale']:g} (24 h in {rep['day_seconds']:.0f} s real),
payer outage {esc(rep['outage'] or 'none')}, PREFER_CACHED {rep['modes']['PREFER_CACHED']:.0%},
CACHE_ONLY {rep['modes']['CACHE_ONLY']:.0%}</p>
<p class="meta">batch-rpc job at {rep['batch_hour']:g} h: {esc(rep['batch_phase'])}</p>
<p class="meta">reproduce: <code>{esc(rep['command'])}</code> &middot; generated {rep['generated']}</p>
<div class="charts">{''.join(charts)}</div>
<table><thead><tr><th></th>{''.join(f'<th>warming {esc(n)}</th>' for n in names)}</tr></thead>
<tbody>{rows}</tbody></table>
<h2 style="font-size:16px">Promises of the source documents</h2>
<ul>{prom}</ul>
<p class="meta">Latency is on the simulated clock (answers that waited for Stedi are scaled;
cache answers are not). Limits of these figures: docs/day.md.</p>
</body></html>
"""
