"""test_kafka_cluster - webhook-receiver on a three-broker Apache Kafka while brokers fail.

Runs only under RTE_TEST_KAFKA=apache (make test-kafka). A KRaft cluster of
three combined nodes (256 MiB heaps), every topic with replication factor 3
and min.insync.replicas 2; our producer is idempotent with acks=all. While
senders post callbacks (20 results each) to a webhook-receiver, one broker
is killed with SIGKILL and later restarted, then the leader of partition 0
of rte.stedi.batch-results (the busy topic) is killed. Checked: every
callback answered 202 reaches the cache (nothing acknowledged is lost),
every batch is applied exactly once (its written set has its 20 results and
the count of applied messages equals the number of batches in Redis), and
the consumers rebalance and go on. Prints the figures: callbacks accepted
and refused, duplicates seen and dropped, the time to recover
after each kill (first 202 of a callback sent after it, slowest 202 of one
sent from 5 s before to 10 s after it) and the time until a callback sent after it is cached.

A second test fires member-cron (20,000 members, two replicas) into the same cluster while a
broker is SIGKILLed and restarted and then the replica holding the fire is SIGKILLed: every
member's event arrives, duplicates stay within 9 x member_cron.batch per takeover.
"""
import os
import signal
import sys
import threading
import time

import pytest

from conftest import APACHE, apache_topics, stop_clean, wait_for
from webhook_util import body_of, cache_get, callback, metric, post, sign_standard, start_receiver

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "kafka"))
import kafka_cluster  # noqa: E402

pytestmark = pytest.mark.skipif(not APACHE, reason="needs RTE_TEST_KAFKA=apache")

BUSY = "rte.stedi.batch-results"
N = 20  # results per callback


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("kafka3")
    c = kafka_cluster.Cluster(root / "kafka", 3, rf=3, min_isr=2)
    c.start(apache_topics())
    yield c
    c.stop()


class Senders:
    """CONC threads posting fresh callbacks until stopped; records every answer."""

    def __init__(self, rx, conc=4):
        self.rx = rx
        self.accepted = []  # (answered at, batch id, sent at), monotonic
        self.refused = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seq = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(conc)]

    def next_id(self):
        with self.lock:
            self.seq += 1
            return f"kc{self.seq}"

    def run(self):
        while not self.stop.is_set():
            bid = self.next_id()
            body = body_of(callback(bid, N))
            sent = time.monotonic()
            try:
                r = post(self.rx, body, sign_standard(body), timeout=60)
                code = r.status_code
            except Exception:  # noqa: BLE001 - a timeout counts as refused
                code = 0
            with self.lock:
                if code == 202:
                    self.accepted.append((time.monotonic(), bid, sent))
                else:
                    self.refused += 1
            if code != 202:
                time.sleep(0.2)

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(90)

    def stall(self, t0, before=5.0, after=10.0):
        """Longest time to a 202 of a callback sent from `before` s before t0 to `after` s after."""
        return max((done - sent for done, _, sent in self.accepted
                    if t0 - before <= sent <= t0 + after), default=float("inf"))

    def recovered(self, t0):
        """Seconds from t0 to the first 202 of a callback sent after t0."""
        return min((done - t0 for done, _, sent in self.accepted if sent >= t0),
                   default=float("inf"))

    def first_after(self, t0):
        later = sorted((sent, b) for _, b, sent in self.accepted if sent >= t0)
        return later[0] if later else None


def cached_at(rds, bid, t_from, rx=None, timeout=180):
    """Seconds from t_from until every result of batch bid is in the cache.

    On a timeout it says what the receiver's consumers and producer were doing (issue 23: this
    once failed and passed on rerun, leaving nothing to look at)."""
    try:
        wait_for(lambda: all(cache_get(rds, f"{bid}M{i}", "62308") for i in range(N)),
                 timeout=timeout, interval=0.1, what=f"batch {bid} cached")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{receiver_state(rx)}") from None
    return time.monotonic() - t_from


def receiver_state(rx):
    """The receiver's Kafka metrics and its last warnings, for a failure message."""
    if rx is None:
        return ""
    try:
        text = rx.get("admin", "/metrics").text
    except Exception as e:  # noqa: BLE001 - the state is a best effort
        text = f"(no metrics: {e})"
    keep = [ln for ln in text.splitlines()
            if ln.startswith(("rte_kafka_consumer_", "rte_kafka_produced_total", "rte_wh_events",
                              "rte_wh_messages_total", "rte_kafka_consumed_total"))]
    warn = [ln for ln in rx.logtext().splitlines() if '"level":"debug"' not in ln][-40:]
    return "receiver metrics:\n" + "\n".join(keep) + "\nreceiver log (last 40):\n" + \
        "\n".join(warn)


def wait_fully_replicated(cluster, timeout=180):
    """Seconds until every partition has its whole replica set in sync again.

    Kafka with replication factor 3 and min.insync.replicas 2 survives one broker at a time:
    a restarted broker rejoins a partition's ISR only once it caught up, and killing another
    broker before then leaves that partition one in-sync replica, where acks=all writes wait
    (NOT_ENOUGH_REPLICAS, retried until message.timeout.ms) - correct Kafka, not a fault of
    ours. The leader kill waits for this so it is the one failure it means to be."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
    t0 = time.monotonic()

    def in_sync():
        md = admin.list_topics(timeout=10)
        return all(set(p.isrs) == set(p.replicas) for t in md.topics.values()
                   for p in t.partitions.values())
    wait_for(in_sync, timeout=timeout, interval=0.5, what="every partition fully in sync")
    return time.monotonic() - t0


def test_broker_kill_and_leader_kill_lose_nothing(cluster, workdir, redis_server):
    rds = redis_server.client()
    rx = start_receiver(workdir, redis_server.url, cluster.bootstrap, WH_PRODUCE_TIMEOUT="30s",
                        LOG_LEVEL="warn")
    s = Senders(rx)
    figures = {}
    try:
        s.start()
        time.sleep(5)
        victim = 3
        t_kill = time.monotonic()
        cluster.kill(victim)
        time.sleep(8)
        first = wait_for(lambda: s.first_after(t_kill + 0.5), timeout=60, what="a 202 after the kill")
        figures["broker kill: first later callback cached after the kill (s)"] = \
            cached_at(rds, first[1], t_kill, rx)
        cluster.restart(victim)
        figures["restarted broker back in every ISR, after its restart (s)"] = \
            wait_fully_replicated(cluster)
        time.sleep(5)
        leader = cluster.leader(BUSY, 0)
        assert leader in (1, 2, 3)
        t_lead = time.monotonic()
        cluster.kill(leader)
        time.sleep(8)
        first = wait_for(lambda: s.first_after(t_lead + 0.5), timeout=60,
                         what="a 202 after the leader kill")
        figures["leader kill: first later callback cached after the kill (s)"] = \
            cached_at(rds, first[1], t_lead, rx)
        s.finish()
        cluster.restart(leader)

        figures["broker kill: first 202 of a callback sent after it (s)"] = s.recovered(t_kill)
        figures["broker kill: slowest 202 of one sent -5..+10 s around it (s)"] = s.stall(t_kill)
        figures[f"leader kill (node {leader}): first 202 of one sent after it (s)"] = \
            s.recovered(t_lead)
        figures["leader kill: slowest 202 of one sent -5..+10 s around it (s)"] = s.stall(t_lead)
        accepted = [b for _, b, _ in s.accepted]
        assert len(accepted) > 50, f"only {len(accepted)} callbacks accepted"
        # nothing acknowledged is lost: every 202'd callback is in the cache
        t0 = time.monotonic()
        for bid in accepted:
            wait_for(lambda b=bid: rds.scard(f"rte:wh:batch:{b}:written") == N, timeout=180,
                     interval=0.2, what=f"batch {bid} written")
        figures["all accepted callbacks cached, after the senders stopped (s)"] = \
            time.monotonic() - t0
        # nothing applied twice: one applied message per batch in Redis
        batches = [k for k in rds.scan_iter(match="rte:wh:batch:kc*:written", count=1000)]
        ok = metric(rx, "rte_wh_messages_total", kind="callback", outcome="ok")
        dup = metric(rx, "rte_wh_messages_total", kind="callback", outcome="duplicate")
        assert ok == len(batches), f"{ok} messages applied for {len(batches)} batches"
        assert len(batches) >= len(accepted)
        written = metric(rx, "rte_wh_results_written_total", kind="callback")
        assert written == N * len(batches)
        figures["callbacks accepted (202)"] = len(accepted)
        figures["callbacks refused (503/timeout; a sender retries)"] = s.refused
        figures["batches applied (incl. refused ones Kafka still stored)"] = len(batches)
        figures["duplicate messages seen and dropped"] = dup
        figures["results written"] = written
    finally:
        s.finish()
        stop_clean(rx)
    print("\nthree-broker cluster (rf 3, min.insync.replicas 2, acks=all, idempotent):")
    for k, v in figures.items():
        print(f"  {k:<66} {v:.1f}" if isinstance(v, float) else f"  {k:<66} {v}")


CRON = """\
schedules:
  - name: kc
    cron: "@yearly"
    rate: 2500
    threshold: 1
"""
CRON_MEMBERS = 20000
CRON_BATCH = 1000


def test_member_cron_fire_through_broker_kill_and_replica_kill(cluster, workdir, redis_server):
    """member-cron fires 20,000 members into the three-broker cluster at 2,500/s while node 3
    is SIGKILLed (and restarted), then the replica holding the fire is SIGKILLed: the other
    takes over from the saved cursor. Every member's event arrives (by its deterministic event
    id) and the duplicates stay within the bound docs/member-cron.md states: 9 x
    member_cron.batch (8 commit points awaiting acknowledgement plus the batch in progress)
    per takeover. Prints the figures (pytest -s)."""
    from collections import Counter

    from member_cron_util import (events, gen_members, run_now, schedules_state, start_cron,
                                  stop_all, wait_fire_done)
    path, members, _ = gen_members(workdir, CRON_MEMBERS, 57)
    common = dict(scale=60, sched_path=f"{workdir}/kc.yaml",
                  extra={"RTE_MEMBER_CRON_BATCH": str(CRON_BATCH), "RTE_MEMBER_CRON_LEASE": "15s",
                         "RTE_LOG_LEVEL": "warn"})
    a = start_cron(workdir, redis_server, cluster, CRON, path, "it-kc:", replica="a", **common)
    b = start_cron(workdir, redis_server, cluster, None, path, "it-kc:", replica="b", **common)
    figures, victim = {}, None

    def cursor():
        run = schedules_state(a if victim is not a else b)["kc"]["running"] or {}
        return run.get("cursor", 0), run

    try:
        fire_ms = run_now(a, "kc")["fire_ms"]
        t0 = time.monotonic()
        wait_for(lambda: cursor()[0] >= CRON_MEMBERS // 5, timeout=60, what="a fifth done")
        t_kill, at = time.monotonic(), cursor()[0]
        cluster.kill(3)
        wait_for(lambda: cursor()[0] >= at + 2 * CRON_BATCH, timeout=90, interval=0.1,
                 what="the cursor moving after the broker kill")
        figures["broker kill: cursor moved 2 batches on after (s)"] = time.monotonic() - t_kill
        cluster.restart(3)
        wait_for(lambda: cursor()[0] >= CRON_MEMBERS * 3 // 5, timeout=90, what="3/5 done")
        running = cursor()[1]
        victim, survivor = (a, b) if running["owner"] == "a" else (b, a)
        figures["replica kill -9 at cursor"] = running["cursor"]
        victim.kill()
        t_rk = time.monotonic()
        last = wait_fire_done(survivor, "kc", fire_ms, timeout=120)
        figures["replica kill: fire done after (s)"] = time.monotonic() - t_rk
        figures["whole fire (s)"] = time.monotonic() - t0
        pb, _, _ = events(cluster, "kc")
    finally:
        stop_all([a, b], killed=[victim] if victim else [])
    logs = a.logtext() + b.logtext()
    retried = logs.count("the fire is retried")
    ids = [e.event_id for e in pb if e.event_id.startswith(f"kc/{fire_ms}/")]
    counts = Counter(ids)
    dup = len(ids) - len(counts)
    figures["members"] = CRON_MEMBERS
    figures["events (MemberCronEvent)"] = len(ids)
    figures["duplicates"] = dup
    figures["duplicates in batches of member_cron.batch"] = dup / CRON_BATCH
    figures["takeovers"] = last["takeovers"]
    figures["runs failed and retried from the cursor"] = retried
    print("\nmember-cron on the three-broker cluster (batch 1000, rate 2500/s):")
    for k, v in figures.items():
        print(f"  {k:<66} {v:.1f}" if isinstance(v, float) else f"  {k:<66} {v}")
    assert set(counts) == {f"kc/{fire_ms}/{m['member_id']}" for m in members}, "a member missing"
    assert last["takeovers"] >= 1
    # the bound holds per takeover (or failed run retried from its cursor); with a lease
    # longer than a broker failover (9-12 s) the replica kill is the only takeover
    assert dup <= 9 * CRON_BATCH * (last["takeovers"] + retried)
