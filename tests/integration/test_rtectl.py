"""tools/rtectl against real Redis and stedi-sim: the operator's view of
cache keys and entries, warming a slice of a member-gen snapshot through a
Stedi batch registered for polling, registered batches, and slots."""
import hashlib
import hmac
import json
import os
import subprocess
import uuid

import pytest

from conftest import bin_path, start_stedi_sim, stop_clean


def rtectl(redis_server, *args, **env):
    e = dict(os.environ)
    e.update({"RTE_REDIS_URL": redis_server.url, "RTE_LOG_LEVEL": "error"})
    e.update({k: str(v) for k, v in env.items()})
    p = subprocess.run([bin_path("rtectl")] + [str(a) for a in args], env=e,
                       capture_output=True, text=True, timeout=60)
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr


def test_key_is_the_keyed_hash(redis_server):
    rc, out, _ = rtectl(redis_server, "key", "M42", "62308", RTE_CACHE_MEMBER_KEY_SECRET="s")
    mk = hmac.new(b"s", b"M42", hashlib.sha256).hexdigest()[:32]
    assert rc == 0 and out["key"] == f"rte:eligibility:{mk}:62308"
    assert "M42" not in out["key"]


def test_get_missing_and_present(redis_server):
    rc, out, _ = rtectl(redis_server, "get", "M-none", "62308")
    assert rc == 3 and out["error"] == "not_found"
    _, k, _ = rtectl(redis_server, "key", "M43", "62308")
    value = {"eligible": True, "copay_amount": 20, "network_status": "in_network",
             "coverage_start": "2026-01-01", "coverage_end": "2026-12-31",
             "cached_at": "2026-11-23T10:00:00.000Z", "fresh_until": "2099-01-01T00:00:00.000Z",
             "source": "stedi_batch"}
    redis_server.client().set(k["key"], json.dumps(value))
    rc, out, _ = rtectl(redis_server, "get", "M43", "62308")
    assert rc == 0 and out["entry"]["copay_amount"] == 20 and out["fresh"] is True


def test_warm_queues_through_the_warming_path_and_submits(redis_server, workdir, tmp_path):
    members = tmp_path / "members.jsonl"
    subprocess.run([bin_path("member-gen"), "--count", "50", "--seed", "7", "--out",
                    str(members)], check=True, capture_output=True, timeout=60)
    sim = start_stedi_sim(workdir)
    prefix = "rtectl-it:" + uuid.uuid4().hex[:8]
    env = dict(RTE_STEDI_BASE_URL=sim.url("http", ""), RTE_BATCH_REGISTRY_PREFIX=prefix,
               RTE_WARM_PREFIX=prefix + ":warm")
    try:
        # queued only: the shared queue holds them, sealed, for a cache-warmer to submit
        rc, out, err = rtectl(redis_server, "warm", "--members", members, "--first", 10,
                              "--offset", 30, "--source", "ops", **env)
        assert rc == 0, err
        assert out["queued"] == 10 and out["duplicates"] == 0 and out["batches"] == []
        assert redis_server.client().llen(prefix + ":warm:ready") == 1
        # --submit: members 5..24 queued (20 new), then both sealed batches submitted
        rc, out, err = rtectl(redis_server, "warm", "--members", members, "--first", 20,
                              "--offset", 5, "--source", "de mo", "--submit", **env)
        assert rc == 0, err
        assert out["queued"] == 20 and out["source"] == "demo"
        assert [b["outcome"] for b in out["batches"]] == ["submitted", "submitted"]
        assert sorted(b["items"] for b in out["batches"]) == [10, 20]
        assert out["items"] == 30 and out["batch_id"] == out["batches"][0]["batch_id"]
        for b in out["batches"]:
            assert b["name"].startswith("demo-")
            st = sim.get("http", f"/2024-04-01/eligibility-manager/batch/{b['batch_id']}",
                         headers={"Authorization": "Key test-key"}).json()
            assert st["totalCount"] == b["items"]
            rc, rec, _ = rtectl(redis_server, "batch", b["batch_id"],
                                RTE_BATCH_REGISTRY_PREFIX=prefix)
            assert rc == 0 and rec["items"] == b["items"] and rec["source"] == "demo"
            assert not rec["done"]
        # the same members again within warm.member_ttl: duplicates, nothing submitted
        rc, out, _ = rtectl(redis_server, "warm", "--members", members, "--first", 20,
                            "--offset", 5, "--submit", **env)
        assert rc == 0 and out["queued"] == 0 and out["duplicates"] == 20
        assert out["batches"] == [] and out["items"] == 0
        rc, out, _ = rtectl(redis_server, "warm", "--members", members, "--offset", 500, **env)
        assert rc == 1 and "--offset" in out["message"]
    finally:
        stop_clean(sim)


def test_slots_and_bad_config(redis_server):
    rc, out, _ = rtectl(redis_server, "slots", RTE_SLOTS_PREFIX="rtectl-it:none")
    assert rc == 0 and out["in_use"] == 0 and out["limit"] == 15
    rc, _, err = rtectl(redis_server, "slots", RTE_SLOTS_LIMIT="many")
    assert rc == 1 and "slots.limit" in err
