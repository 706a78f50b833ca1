"""member-gen: deterministic synthetic population and its hidden truth file.

Runs the real build/bin/member-gen: same seed gives identical bytes, another
seed differs, N lines of valid JSON with every field and type, usage_by_hour
sums to 1, and the truth file has one row per member with p in [0, 1].
"""
import json
import re
import subprocess

from conftest import bin_path

FIELDS = {
    "member_id": str, "first_name": str, "last_name": str, "date_of_birth": str,
    "sponsor_id": str, "population_id": str, "state": str, "language": str,
    "plan_type": str, "payer_id": str, "trading_partner_id": str,
    "has_rte_enabled": bool, "account_status": str, "is_mock": bool,
    "feature_flags": list, "enrollment_date": str, "usage_by_hour": list,
    "weekday_factor": list,
}
TIMES = ("last_login_at", "last_eligibility_check_at", "upcoming_appointment_at")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def gen(*args):
    return subprocess.run([bin_path("member-gen"), *args], check=True,
                          capture_output=True).stdout


def test_same_seed_identical_bytes_other_seed_differs():
    a = gen("--count", "500", "--seed", "42")
    b = gen("--count", "500", "--seed", "42")
    c = gen("--count", "500", "--seed", "43")
    assert a == b
    assert a != c
    assert gen("--count", "500", "--seed", "42", "--now", "2026-02-01T00:00:00Z") != a


def test_lines_fields_and_types(tmp_path):
    out = tmp_path / "m.jsonl"
    gen("--count", "3000", "--seed", "9", "--out", str(out))
    lines = out.read_text().splitlines()
    assert len(lines) == 3000
    ids = set()
    statuses, plans, rte, mock = set(), set(), 0, 0
    for line in lines:
        m = json.loads(line)
        for k, t in FIELDS.items():
            assert isinstance(m[k], t), (k, m[k])
        for k in TIMES:
            assert m[k] is None or RFC3339.match(m[k]), (k, m[k])
        assert re.match(r"^M\d{9}$", m["member_id"])
        assert DATE.match(m["date_of_birth"]) and DATE.match(m["enrollment_date"])
        assert re.match(r"^[A-Z]{2}$", m["state"])
        assert m["payer_id"] == m["trading_partner_id"]
        assert len(m["usage_by_hour"]) == 24 and len(m["weekday_factor"]) == 7
        assert abs(sum(m["usage_by_hour"]) - 1.0) < 1e-3
        assert all(v >= 0 for v in m["usage_by_hour"])
        assert all(isinstance(f, str) for f in m["feature_flags"])
        ids.add(m["member_id"])
        statuses.add(m["account_status"])
        plans.add(m["plan_type"])
        rte += m["has_rte_enabled"]
        mock += m["is_mock"]
    assert len(ids) == 3000
    assert statuses == {"ACTIVE", "INACTIVE", "SUSPENDED", "PENDING"}
    # the base draw (PPO/HMO/EPO/HDHP) is replaced by Medicare plans from 65
    # and, for a few, by Medicaid or POS
    assert {"HMO", "PPO", "EPO", "HDHP", "POS", "MEDICAID", "MEDICARE",
            "MEDICARE_ADVANTAGE", "DUAL_ELIGIBLE"} == plans
    assert 0.85 < rte / 3000 < 0.95
    assert mock < 0.03 * 3000


def test_truth_file(tmp_path):
    out, truth = tmp_path / "m.jsonl", tmp_path / "t.jsonl"
    gen("--count", "2000", "--seed", "1", "--out", str(out), "--truth", str(truth))
    members = [json.loads(x)["member_id"] for x in out.read_text().splitlines()]
    rows = [json.loads(x) for x in truth.read_text().splitlines()]
    assert [r["member_id"] for r in rows] == members
    assert all(0.0 <= r["p_open_24h"] <= 1.0 for r in rows)
    assert all(isinstance(r["opened"], bool) for r in rows)
    opened = sum(r["opened"] for r in rows)
    expected = sum(r["p_open_24h"] for r in rows)
    assert abs(opened - expected) < 4 * (expected ** 0.5) + 5


def test_bad_arguments():
    r = subprocess.run([bin_path("member-gen"), "--count", "x", "--seed", "1"],
                       capture_output=True)
    assert r.returncode == 2 and b"--count" in r.stderr
    r = subprocess.run([bin_path("member-gen"), "--seed", "1"], capture_output=True)
    assert r.returncode == 2
