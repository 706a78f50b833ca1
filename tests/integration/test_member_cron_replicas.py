"""member-cron replicas: exactly once per fire, crash resume, catch-up.

Several real member-cron processes share one Redis (same key prefix) and
the Kafka dev broker. A scheduled fire raced by three replicas must emit
each selected member exactly once; kill -9 of the replica running a fire
must let another resume from the persisted cursor with no member missing
and at most one cursor batch duplicated; after a simulated outage (the
clock restarted hours later) each catch-up policy runs and skips the
fires it should, counting skipped ones in a metric.
"""
import time
from collections import Counter

from conftest import stop_clean, wait_for
from member_cron_util import (events, gen_members, metric, metrics, run_now,
                                      schedules_state, start_cron, stop_all, ts_ms, utc,
                                      wait_fire_done)

RACE = """\
schedules:
  - name: race
    cron: "0 * * * *"
    rate: 0
    filters:
      - has_rte_enabled: true
"""


def test_three_replicas_one_fire_exactly_once(workdir, redis_server, kafka_broker):
    path, members, _ = gen_members(workdir, 3000, 31)
    # clock at 00:59:30 x60: the 01:00 fire is due ~0.5 s after start, raced by all three; the
    # next is a real minute later, so a slow run (sanitizers, a loaded machine) cannot have a
    # later fire become "last" before the test reads it
    reps = [start_cron(workdir, redis_server, kafka_broker, RACE, path, "it-race:", scale=60,
                       start="2026-01-05T00:59:30Z", replica=f"r{i}",
                       sched_path=f"{workdir}/race.yaml") for i in range(3)]
    try:
        fire_ms = ts_ms("2026-01-05T01:00:00Z")
        last = wait_fire_done(reps[0], "race", fire_ms, timeout=40)
        pb, _, _ = events(kafka_broker, "race")
    finally:
        stop_all(reps)
    pb = [e for e in pb if e.event_id.startswith(f"race/{fire_ms}/")]
    want = {m["member_id"] for m in members if m["has_rte_enabled"]}
    counts = Counter(e.member_id for e in pb)
    assert set(counts) == want
    assert max(counts.values()) == 1, "a member was emitted twice"
    assert last["emitted"] == len(want) and last["takeovers"] == 0


KILL = """\
schedules:
  - name: kill
    cron: "@yearly"
    rate: 1500
    threshold: 1
"""


def test_kill9_mid_run_resumes_from_cursor(workdir, redis_server, kafka_broker):
    path, members, _ = gen_members(workdir, 6000, 41)
    common = dict(scale=60, sched_path=f"{workdir}/kill.yaml",
                  extra={"RTE_MEMBER_CRON_BATCH": "50", "RTE_MEMBER_CRON_LEASE": "1s"})
    a = start_cron(workdir, redis_server, kafka_broker, KILL, path, "it-kill:", replica="a",
                   **common)
    b = start_cron(workdir, redis_server, kafka_broker, None, path, "it-kill:", replica="b",
                   **common)
    victim = None
    try:
        fire_ms = run_now(a, "kill")["fire_ms"]
        running = wait_for(lambda: (schedules_state(a)["kill"]["running"] or {}).get("cursor", 0)
                           >= 1500 and schedules_state(a)["kill"]["running"], timeout=20,
                           what="the fire a quarter done")
        victim, survivor = (a, b) if running["owner"] == "a" else (b, a)
        victim.kill()  # SIGKILL mid-run
        last = wait_fire_done(survivor, "kill", fire_ms, timeout=40)
        pb, _, _ = events(kafka_broker, "kill")
    finally:
        stop_all([a, b], killed=[victim] if victim else [])
    ids = [e.member_id for e in pb if e.event_id.startswith(f"kill/{fire_ms}/")]
    counts = Counter(ids)
    dup = len(ids) - len(counts)
    print(f"\nkill -9 at cursor {running['cursor']}: {len(counts)} members, {dup} duplicates, "
          f"takeovers {last['takeovers']}")
    assert set(counts) == {m["member_id"] for m in members}, "a member was skipped"
    assert last["takeovers"] >= 1
    # at most the uncommitted batch (50) plus what was in flight at the kill
    assert dup <= 100


CATCHUP = """\
schedules:
  - name: cu-skip
    cron: "0 * * * *"
    rate: 0
    catch_up: skip
  - name: cu-latest
    cron: "0 * * * *"
    rate: 0
    catch_up: latest
  - name: cu-all-3h
    cron: "0 * * * *"
    rate: 0
    catch_up: all
    starting_deadline: 3h
  - name: cu-all
    cron: "0 * * * *"
    rate: 0
    catch_up: all
    starting_deadline: 0
"""


def test_catch_up_policies_after_outage(workdir, redis_server, kafka_broker):
    path, members, _ = gen_members(workdir, 40, 51)
    sched = f"{workdir}/catchup.yaml"
    # first life at 00:30 sets each schedule's horizon, then an outage of five hours
    svc = start_cron(workdir, redis_server, kafka_broker, CATCHUP, path, "it-cu:", scale=60,
                     start="2026-01-05T00:30:00Z", sched_path=sched)
    wait_for(lambda: all(s["last_fire"] is None for s in schedules_state(svc).values()),
             what="schedules loaded")
    time.sleep(0.5)
    stop_clean(svc)
    svc = start_cron(workdir, redis_server, kafka_broker, None, path, "it-cu:", scale=60,
                     start="2026-01-05T05:30:00Z", sched_path=sched)
    hour = ts_ms("2026-01-05T01:00:00Z")
    missed = [hour + i * 3600_000 for i in range(5)]  # 01:00 .. 05:00
    expect = {"cu-skip": [], "cu-latest": missed[-1:], "cu-all-3h": missed[2:], "cu-all": missed}
    try:
        def settled():
            st = schedules_state(svc)
            return all(not st[n]["pending"] for n in expect) and all(
                (st[n]["last"] or {}).get("fire_ms") == (f[-1] if f else None) for n, f in
                expect.items() if f)
        wait_for(settled, timeout=40, what="catch-up fires to finish")
        s = metrics(svc)
        skipped = {n: metric(s, "member_cron_fires_skipped_total", schedule=n) for n in expect}
        log = svc.logtext()
    finally:
        stop_clean(svc)
    assert skipped == {"cu-skip": 5, "cu-latest": 4, "cu-all-3h": 2, "cu-all": 0}
    assert log.count("cu-skip: fire ") >= 5 and "skipped" in log
    for name, fires in expect.items():
        pb, _, _ = events(kafka_broker, name)
        by_fire = Counter(int(e.event_id.split("/")[1]) for e in pb)
        assert sorted(by_fire) == fires, (name, [utc(f) for f in by_fire])
        assert all(c == len(members) for c in by_fire.values())


def test_paused_holder_is_fenced(workdir, redis_server, kafka_broker):
    """SIGSTOP the holder past its lease: the other replica takes over; the
    paused one, resumed, is refused at its next cursor commit and stops."""
    import signal
    path, members, _ = gen_members(workdir, 5000, 61)
    common = dict(scale=60, sched_path=f"{workdir}/fence.yaml",
                  extra={"RTE_MEMBER_CRON_BATCH": "50", "RTE_MEMBER_CRON_LEASE": "1s"})
    sched = KILL.replace("name: kill", "name: fence")
    a = start_cron(workdir, redis_server, kafka_broker, sched, path, "it-fence:", replica="a",
                   **common)
    b = start_cron(workdir, redis_server, kafka_broker, None, path, "it-fence:", replica="b",
                   **common)
    try:
        fire_ms = run_now(a, "fence")["fire_ms"]
        running = wait_for(lambda: (schedules_state(a)["fence"]["running"] or {}).get("cursor", 0)
                           >= 1000 and schedules_state(a)["fence"]["running"], timeout=20,
                           what="the fire under way")
        paused, other = (a, b) if running["owner"] == "a" else (b, a)
        paused.signal(signal.SIGSTOP)
        wait_for(lambda: (schedules_state(other)["fence"]["running"] or {}).get("owner")
                 == other.env["RTE_MEMBER_CRON_REPLICA_ID"], timeout=20, what="the takeover")
        paused.signal(signal.SIGCONT)
        wait_fire_done(other, "fence", fire_ms, timeout=40)
        wait_for(lambda: "(fenced)" in paused.logtext(), timeout=10, what="the fenced log line")
        fenced = metric(metrics(paused), "member_cron_fires_total", schedule="fence",
                        result="fenced")
        pb, _, _ = events(kafka_broker, "fence")
    finally:
        stop_all([a, b])
    ids = [e.member_id for e in pb if e.event_id.startswith(f"fence/{fire_ms}/")]
    counts = Counter(ids)
    dup = len(ids) - len(counts)
    print(f"\npaused holder fenced: {len(counts)} members, {dup} duplicates")
    assert fenced == 1
    assert set(counts) == {m["member_id"] for m in members}
    assert dup <= 150
