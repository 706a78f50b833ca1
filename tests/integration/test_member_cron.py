"""member-cron: events, filters, prediction, jitter, rate, admin, reloads.

Runs the real member-cron against real Redis and the Kafka dev broker with
member-gen populations and a scaled clock. Events are read back from both
topics and decoded (protobuf with the generated member_cron_pb2, JSON) and
checked field by field against the population file and a Python rendering
of the shipped model. The model's AUC against member-gen's hidden truth is
printed and must be at least 0.80.
"""
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from conftest import bin_path, stop_clean, wait_for
from member_cron_util import (GEN_NOW, auc, events, gen_members, metric, metrics,
                                      predict, run_now, schedules_state, start_cron, ts_ms,
                                      wait_fire_done)

CONTENT = """\
schedules:
  - name: ct-all
    cron: "@yearly"
    rate: 0
    threshold: 0.5
    filters:
      - has_rte_enabled: true
      - account_status: ACTIVE
  - name: ct-narrow
    cron: "0 9 * * mon-fri"
    timezone: America/New_York
    rate: 0
    filters:
      - app_usage_probability: "> 0.3"
      - app_usage_probability: "<= 0.9"
      - sponsor_id: [SP0001, SP0002, SP0003, SP0004, SP0005, SP0006, SP0007, SP0008]
      - population_id: [POP001, POP002, POP003, POP004, POP005, POP006, POP007, POP008]
      - eligibility_check_age: "> 7d"
      - is_mock: false
  - name: ct-jitter
    cron: "@yearly"
    rate: 0
    jitter: 2m
  - name: ct-disabled
    cron: "* * * * *"
    enabled: false
  - name: ct-query
    cron: "@yearly"
    rate: 0
    filters:
      - has_rte_enabled: true
    query: "state IN ('CA', 'TX', 'FL') AND AGE >= 40 AND has_completed_onboarding = TRUE"
"""


@pytest.fixture(scope="module")
def population(workdir):
    return gen_members(workdir, 1500, 11)


@pytest.fixture(scope="module")
def content_svc(workdir, redis_server, kafka_broker, population):
    svc = start_cron(workdir, redis_server, kafka_broker, CONTENT, population[0], "it-ct:",
                     scale=60)
    yield svc
    stop_clean(svc)


def test_events_field_by_field(content_svc, kafka_broker, population):
    _, members, _ = population
    by_id = {m["member_id"]: m for m in members}
    fire = run_now(content_svc, "ct-all")
    fire_ms = fire["fire_ms"]
    last = wait_fire_done(content_svc, "ct-all", fire_ms)
    pb, js, _ = events(kafka_broker, "ct-all")
    want = {m["member_id"] for m in members
            if m["has_rte_enabled"] and m["account_status"] == "ACTIVE"}
    got = [e.member_id for e in pb]
    assert Counter(got) == Counter(want), "each selected member exactly once"
    assert last["emitted"] == len(want) and last["cursor"] == last["total"] == len(members)
    version = None
    n_likely = 0
    for e in pb:
        m = by_id[e.member_id]
        assert e.account_id == e.member_id
        assert e.schedule_name == "ct-all" and e.cron_expression == "@yearly"
        assert e.event_id == f"ct-all/{fire_ms}/{e.member_id}"
        emitted = e.emitted_at.seconds * 1000 + e.emitted_at.nanos // 1000000
        assert fire_ms <= emitted <= fire_ms + 3600_000
        c = e.context
        assert c.sponsor_id == m["sponsor_id"]
        assert list(c.population_ids) == [m["population_id"]]
        assert c.has_rte_enabled is True
        assert dict(c.feature_flags) == {f: True for f in m["feature_flags"]}
        if m["last_eligibility_check_at"] is None:
            assert not c.HasField("last_eligibility_check")
        else:
            assert c.last_eligibility_check.seconds * 1000 == ts_ms(m["last_eligibility_check_at"])
        a = c.predicted_activity
        p, version = predict(m, fire_ms)
        assert abs(a.app_usage_probability - p) < 1e-4, (e.member_id, a.app_usage_probability, p)
        assert 0.0 <= a.confidence <= 1.0
        assert a.model_version == version
        appt = m["upcoming_appointment_at"]
        soon = appt is not None and 0 <= ts_ms(appt) - fire_ms <= 48 * 3600_000
        assert a.predicted_operations[0] == "check_eligibility"
        assert ("get_coverage" in a.predicted_operations) == soon
        n_likely += a.app_usage_probability >= 0.5
    # JSON app_usage_likely: exactly the members at or above the threshold (0.5)
    probs = {e.member_id: e.context.predicted_activity.app_usage_probability for e in pb}
    assert len(js) == n_likely > 0
    assert {d["member_id"] for d in js} == {k for k, v in probs.items() if v >= 0.5}
    for d in js:
        assert d["type"] == "digital-twin.prediction.app_usage_likely"
        assert d["event_id"] == f"ct-all/{fire_ms}/{d['member_id']}/likely"
        assert abs(ts_ms(d["timestamp"]) - fire_ms) <= 3600_000
        data = d["data"]
        assert abs(data["probability"] - probs[d["member_id"]]) < 1e-4
        pt = ts_ms(data["predicted_time"])
        assert pt % 3600_000 == 0 and fire_ms < pt <= fire_ms + 25 * 3600_000
        assert data["confidence"] in ("high", "medium", "low")
        assert data["window_minutes"] == 60
        assert data["model_version"] == version


def test_filters_select_exactly(content_svc, kafka_broker, population):
    _, members, _ = population
    fire_ms = run_now(content_svc, "ct-narrow")["fire_ms"]
    wait_fire_done(content_svc, "ct-narrow", fire_ms)
    pb, _, _ = events(kafka_broker, "ct-narrow")
    sponsors = {f"SP{i:04d}" for i in range(1, 9)}
    pops = {f"POP{i:03d}" for i in range(1, 9)}
    want = set()
    for m in members:
        p, _ = predict(m, fire_ms)
        chk = m["last_eligibility_check_at"]
        old = chk is None or fire_ms - ts_ms(chk) > 7 * 86400_000
        # members within 1e-4 of a probability bound are left out of the comparison
        if 0.3 - 1e-4 < p < 0.3 + 1e-4 or 0.9 - 1e-4 < p < 0.9 + 1e-4:
            continue
        if (0.3 < p <= 0.9 and m["sponsor_id"] in sponsors and m["population_id"] in pops
                and old and not m["is_mock"]):
            want.add(m["member_id"])
    got = {e.member_id for e in pb}
    assert len(got) == len(pb)
    assert want and want <= got and len(got - want) <= 1
    assert all(e.context.sponsor_id in sponsors for e in pb)


def test_query_key_selects_from_any_family(content_svc, kafka_broker, population):
    """A schedule's `query` (the member_query language) with its filters: state,
    AGE at the fire time and an engagement flag, none of which member-cron's
    own filter keys can say."""
    import datetime
    _, members, _ = population
    fire_ms = run_now(content_svc, "ct-query")["fire_ms"]
    wait_fire_done(content_svc, "ct-query", fire_ms)
    pb, _, _ = events(kafka_broker, "ct-query")
    day = datetime.datetime.fromtimestamp(fire_ms / 1000, datetime.timezone.utc).date()

    def age(dob):
        b = datetime.date.fromisoformat(dob)
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    want = {m["member_id"] for m in members
            if m["has_rte_enabled"] and m["state"] in ("CA", "TX", "FL")
            and age(m["date_of_birth"]) >= 40 and m.get("has_completed_onboarding") is True}
    got = [e.member_id for e in pb]
    assert want and len(got) == len(set(got))
    assert set(got) == want
    s = metrics(content_svc)
    assert metric(s, "member_cron_members_filtered_total",
                  schedule="ct-query") == len(members) - len(want)


def test_jitter_stable_offsets(content_svc, kafka_broker, population):
    _, members, _ = population
    fire_ms = run_now(content_svc, "ct-jitter")["fire_ms"]
    wait_fire_done(content_svc, "ct-jitter", fire_ms, timeout=30)
    pb, _, _ = events(kafka_broker, "ct-jitter")
    assert len(pb) == len(members)
    window = 120_000
    offsets = []
    for e in pb:
        off = jitter_offset("ct-jitter", e.member_id, window)
        emitted = e.emitted_at.seconds * 1000 + e.emitted_at.nanos // 1000000
        # never before its offset; at most ~0.5 s real (30 s simulated) after it
        assert fire_ms + off <= emitted <= fire_ms + off + 30_000, (e.member_id, off,
                                                                    emitted - fire_ms)
        offsets.append(off)
    # spread over the window, not bunched
    assert min(offsets) < window * 0.05 and max(offsets) > window * 0.95


def jitter_offset(schedule, member_id, window):
    """cron_jitter_offset_ms in Python: FNV-1a 64 then the splitmix64 finaliser."""
    mask = (1 << 64) - 1

    def fnv(h, s):
        for b in s.encode():
            h = ((h ^ b) * 0x100000001b3) & mask
        return h
    h = fnv(0xcbf29ce484222325, schedule)
    h = fnv(h ^ 0x1f, member_id)
    z = h
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & mask
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & mask
    z ^= z >> 31
    return z % window


def test_admin_schedules_and_metrics(content_svc):
    st = schedules_state(content_svc)
    assert set(st) == {"ct-all", "ct-narrow", "ct-jitter", "ct-disabled", "ct-query"}
    n = st["ct-narrow"]
    assert n["timezone"] == "America/New_York" and n["rate"] == 0 and n["filters"] == 6
    # the clock started Monday 2026-01-05 00:00Z = Sunday 19:00 EST: next 09:00 EST is 14:00Z
    assert n["next_fire"] == "2026-01-05T14:00:00.000Z"
    assert st["ct-disabled"]["next_fire"] is None and st["ct-disabled"]["enabled"] is False
    assert st["ct-all"]["catch_up"] == "skip" and st["ct-all"]["threshold"] == 0.5
    import requests
    r = requests.post(content_svc.url("admin", "/v1/schedules/nope/run"), timeout=5)
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = requests.post(content_svc.url("admin", "/v1/schedules/ct-all/go"), timeout=5)
    assert r.status_code == 404
    # progress of a run in flight: a jittered fire takes ~2 s real
    fire_ms = run_now(content_svc, "ct-jitter")["fire_ms"]
    running = wait_for(lambda: schedules_state(content_svc)["ct-jitter"]["running"],
                       timeout=10, what="a running fire in /v1/schedules")
    assert running["fire_ms"] == fire_ms and running["state"] == "running"
    assert 0 <= running["progress"] <= 1 and running["total"] == 1500
    wait_fire_done(content_svc, "ct-jitter", fire_ms, timeout=30)
    s = metrics(content_svc)
    assert metric(s, "member_cron_events_emitted_total", schedule="ct-all",
                  topic="member-cron-events") > 0
    assert metric(s, "member_cron_events_emitted_total", schedule="ct-all",
                  topic="digital-twin.prediction.app_usage_likely") > 0
    assert metric(s, "member_cron_members_filtered_total", schedule="ct-narrow") > 0
    assert metric(s, "member_cron_fires_total", schedule="ct-jitter", result="done") >= 1
    assert metric(s, "member_cron_run_duration_seconds_count", schedule="ct-all") >= 1
    assert metric(s, "member_cron_prediction_probability_count", schedule="ct-all") > 0
    assert metric(s, "member_cron_fire_progress", schedule="ct-jitter") == 1.0
    assert metric(s, "member_cron_schedules") == 5


def test_model_auc_against_hidden_truth(workdir, redis_server, kafka_broker):
    path, members, truth = gen_members(workdir, 6000, 2026, truth=True)
    svc = start_cron(workdir, redis_server, kafka_broker,
                     "schedules:\n  - name: auc\n    cron: '@yearly'\n    rate: 0\n",
                     path, "it-auc:", scale=1, start=GEN_NOW)
    try:
        fire_ms = run_now(svc, "auc")["fire_ms"]
        wait_fire_done(svc, "auc", fire_ms)
        pb, _, _ = events(kafka_broker, "auc")
    finally:
        stop_clean(svc)
    prob = {e.member_id: e.context.predicted_activity.app_usage_probability for e in pb}
    assert len(prob) == len(members)
    labels = [1 if r["opened"] else 0 for r in truth]
    score = auc([prob[r["member_id"]] for r in truth], labels)
    ceiling = auc([r["p_open_24h"] for r in truth], labels)
    print(f"\nmember-cron model AUC on member-gen --count 6000 --seed 2026: {score:.4f} "
          f"(hidden true probability scores {ceiling:.4f})")
    assert score >= 0.80


BASE = """\
schedules:
  - name: rl-keep
    cron: "@yearly"
    rate: 0
"""

BROKEN = """\
schedules:
  - name: rl-keep
    cron: "@yearly"
    rate: 0
  - name: rl-broken
    cron: "0 24 * * *"
"""


def test_invalid_file_refused_old_keeps_running_and_sighup(workdir, redis_server, kafka_broker,
                                                           population):
    svc = start_cron(workdir, redis_server, kafka_broker, BASE, population[0], "it-rl:")
    try:
        # 1. file change with an invalid schedule: refused with name, line and reason
        with open(svc.sched_path, "w") as f:
            f.write(BROKEN)
        msg = ("schedule 'rl-broken' (line 6): cron '0 24 * * *': hour: 24 is out of range "
               "0-23")
        wait_for(lambda: msg in svc.logtext(), timeout=10, what="the refusal in the log")
        assert "previous schedules keep running" in svc.logtext()
        assert set(schedules_state(svc)) == {"rl-keep"}
        assert metric(metrics(svc), "member_cron_schedule_reloads_total", result="refused") >= 1
        # the old schedule still fires
        fire_ms = run_now(svc, "rl-keep")["fire_ms"]
        wait_fire_done(svc, "rl-keep", fire_ms)
        # 2. SIGHUP with the same bad file: refused too, old set kept
        svc.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: " in svc.logtext() and "keeping the previous configuration"
                 in svc.logtext(), timeout=10, what="SIGHUP refusal")
        assert set(schedules_state(svc)) == {"rl-keep"}
        # 3. a valid file and SIGHUP: new schedule live
        with open(svc.sched_path, "w") as f:
            f.write(BASE + "  - name: rl-new\n    cron: '*/5 * * * *'\n")
        svc.signal(signal.SIGHUP)
        wait_for(lambda: "rl-new" in schedules_state(svc), timeout=10, what="rl-new after SIGHUP")
        # 4. a valid change picked up by the file watch alone
        with open(svc.sched_path, "w") as f:
            f.write(BASE + "  - name: rl-watch\n    cron: '@hourly'\n")
        wait_for(lambda: set(schedules_state(svc)) == {"rl-keep", "rl-watch"}, timeout=10,
                 what="file-change reload")
    finally:
        stop_clean(svc)


def test_invalid_file_at_startup_is_fatal(workdir, population):
    path = os.path.join(workdir, "bad-start.yaml")
    with open(path, "w") as f:
        f.write("schedules:\n  - name: ok\n    cron: '@daily'\n  - name: bad tz\n"
                "    cron: '@daily'\n")
    env = dict(os.environ, RTE_MEMBER_CRON_SCHEDULES=path,
               RTE_MEMBER_CRON_MEMBERS=population[0], RTE_KAFKA_BROKERS="127.0.0.1:1",
               RTE_ADMIN_ADDR="127.0.0.1:0", RTE_GRPC_ADDR="127.0.0.1:0")
    p = subprocess.run([bin_path("member-cron")], env=env, capture_output=True, timeout=30,
                       text=True)
    assert p.returncode == 1
    assert "schedule #2 (line 4): name 'bad tz': expected 1-63 characters" in p.stderr


def test_rate_limit_within_5_percent(workdir, redis_server, kafka_broker):
    path, members, _ = gen_members(workdir, 1200, 77)
    svc = start_cron(workdir, redis_server, kafka_broker,
                     "schedules:\n  - name: rate\n    cron: '@yearly'\n    rate: 400\n"
                     "    threshold: 1\n",
                     path, "it-rate:", extra={"RTE_MEMBER_CRON_BATCH": "1000"})
    try:
        fire_ms = run_now(svc, "rate")["fire_ms"]
        wait_fire_done(svc, "rate", fire_ms)
        _, _, raw = events(kafka_broker, "rate")
    finally:
        stop_clean(svc)
    stamps = sorted(m.timestamp for m in raw)
    assert len(stamps) == len(members)
    span = (stamps[-1] - stamps[0]) / 1000.0
    rate = (len(stamps) - 1) / span
    print(f"\nmember-cron rate limit 400/s: measured {rate:.1f} events/s over {span:.2f} s")
    assert 380 <= rate <= 420

