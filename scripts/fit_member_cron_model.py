#!/usr/bin/python3
"""fit_member_cron_model.py - fit member-cron's logistic app-usage model.

Usage: /usr/bin/python3 scripts/fit_member_cron_model.py [BUILD_DIR] > services/member-cron/model.yaml

Generates a training population with member-gen (seed 1, 40,000 members,
--now 2026-01-05T00:00:00Z) and its hidden truth file, computes the same
features services/member-cron/cron_model.c computes (see FEATURES), fits a
logistic regression on `opened` by Newton-Raphson with a small L2 penalty
(standard library only: Debian's python3 here has no numpy), and prints the
model file with the fitted coefficients, the training AUC and log-loss as
comments. The integration test scores the shipped file on another seed.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

NOW = "2026-01-05T00:00:00Z"
SEED = 1
COUNT = 40000
FEATURES = ["recency", "appointment_48h", "recent_enrollment_30d", "hour_concentration",
            "active", "weekday"]


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def features(m, now):
    """The model's inputs for member m at instant now (seconds); mirrors cron_model.c."""
    login = m.get("last_login_at")
    rec = -5.0 if login is None else -math.log1p(max(0.0, now - ts(login)) / 86400.0)
    appt = m.get("upcoming_appointment_at")
    appt48 = 1.0 if appt is not None and 0 <= ts(appt) - now <= 48 * 3600 else 0.0
    enr = ts(m["enrollment_date"] + "T00:00:00Z")
    new = 1.0 if 0 <= now - enr <= 30 * 86400 else 0.0
    u = m["usage_by_hour"]
    conc = max(u[h] + u[(h + 1) % 24] + u[(h + 2) % 24] for h in range(24))
    active = 1.0 if m["account_status"] == "ACTIVE" else 0.0
    dow = datetime.fromtimestamp(now, timezone.utc).weekday()  # Monday = 0, as weekday_factor
    wk = m["weekday_factor"][dow] - 1.0
    return [rec, appt48, new, conc, active, wk]


def solve(a, b):
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit(xs, ys, l2=1e-3, iters=12):
    d = len(xs[0]) + 1
    w = [0.0] * d
    for _ in range(iters):
        g = [0.0] * d
        h = [[0.0] * d for _ in range(d)]
        for x, y in zip(xs, ys):
            xx = [1.0] + x
            z = sum(wi * xi for wi, xi in zip(w, xx))
            p = 1.0 / (1.0 + math.exp(-z))
            r = p * (1 - p)
            for i in range(d):
                g[i] += (p - y) * xx[i]
                for j in range(i, d):
                    h[i][j] += r * xx[i] * xx[j]
        for i in range(d):
            g[i] += l2 * w[i] * len(xs) * (i > 0)
            h[i][i] += l2 * len(xs) * (i > 0)
            for j in range(i):
                h[i][j] = h[j][i]
        step = solve(h, g)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return w


def auc(scores, labels):
    pairs = sorted(zip(scores, labels))
    n1 = sum(labels)
    n0 = len(labels) - n1
    s, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        s += (i + j + 1) / 2 * sum(l for _, l in pairs[i:j])
        i = j
    return (s - n1 * (n1 + 1) / 2) / (n1 * n0)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    with tempfile.TemporaryDirectory() as d:
        out, truth = os.path.join(d, "m.jsonl"), os.path.join(d, "t.jsonl")
        subprocess.run([os.path.join(build, "bin", "member-gen"), "--count", str(COUNT), "--seed",
                        str(SEED), "--now", NOW, "--out", out, "--truth", truth], check=True)
        now = ts(NOW)
        with open(out) as f:
            xs = [features(json.loads(line), now) for line in f]
        with open(truth) as f:
            ys = [1.0 if json.loads(line)["opened"] else 0.0 for line in f]
    w = fit(xs, ys)
    ps = [1 / (1 + math.exp(-(w[0] + sum(a * b for a, b in zip(w[1:], x))))) for x in xs]
    ll = -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for p, y in zip(ps, ys)) / len(ys)
    print("# member-cron app-usage model: P(open in next 24 h) = 1 / (1 + exp(-z)),")
    print("# z = intercept + sum(coefficient * feature). Features: see cron_model.c.")
    print(f"# Fitted by scripts/fit_member_cron_model.py on member-gen --count {COUNT} "
          f"--seed {SEED} --now {NOW}")
    print(f"# training AUC {auc(ps, ys):.4f}, log-loss {ll:.4f}, base rate {sum(ys)/len(ys):.4f}")
    print('version: "logit-2026-01-05.1"')
    print(f"intercept: {w[0]:.6f}")
    print("coefficients:")
    for name, c in zip(FEATURES, w[1:]):
        print(f"  {name}: {c:.6f}")
    print("window_minutes: 60")


if __name__ == "__main__":
    main()
