"""bench/batch_rpc.py - the measuring half of bench/batch-rpc.sh (see there)."""
import math
import sys
import time

import redis
import requests

import batch_eligibility_pb2 as pb
from batch_rpc_client import Client

addr, redis_port, sim, n, rounds, pid = sys.argv[1:7]
n, rounds = int(n), int(rounds)
rds = redis.Redis(port=int(redis_port))
unary = Client(addr).unary


submit = unary("SubmitBatch", pb.SubmitBatchResponse)
cancel = unary("CancelBatch", pb.CancelBatchResponse)


def request(i):
    r = pb.SubmitBatchRequest(client_service_name="bench", client_job_id=f"bench-{i}")
    r.member_query.exclude_mock_accounts = False
    r.options.strategy = pb.BatchExecutionOptions.STRATEGY_BATCH_ONLY
    # NORMAL: a LOW job this large would be spread over the night's windows
    r.options.priority = pb.BatchExecutionOptions.PRIORITY_NORMAL
    return r


def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def slots_held():
    return sum(rds.zcard(k) for k in rds.scan_iter("rte:slots:holders"))


# wait for readiness (the directory is loaded before the gRPC port answers)
t0 = time.monotonic()
r = submit(request(0), timeout=600)
first_ms = (time.monotonic() - t0) * 1000
want = math.ceil(r.total_members / 10000)
start = t0
max_slots = 0
while True:
    h = rds.hget(f"rte:batchrpc:j:{r.batch_id}", "sb_calls")
    max_slots = max(max_slots, slots_held())
    if h is not None and int(h) >= want:
        break
    if time.monotonic() - start > 3600:
        sys.exit("the job did not submit its batches within an hour")
    time.sleep(0.05)
all_submitted_s = time.monotonic() - start
lat = [first_ms]
for i in range(1, rounds):
    t = time.monotonic()
    x = submit(request(i), timeout=600)
    lat.append((time.monotonic() - t) * 1000)
    cancel(pb.CancelBatchRequest(batch_id=x.batch_id, reason="bench: timing only"), timeout=60)
lat.sort()


def pct(p):
    return lat[min(len(lat) - 1, int(math.ceil(p / 100 * len(lat))) - 1)]


stats = requests.get(f"{sim}/_sim/stats", timeout=10).json()
print(f"members                         {r.total_members:,}")
print(f"SubmitBatch answer (ms)         p50 {pct(50):.0f}  p99 {pct(99):.0f}  "
      f"(over {len(lat)} submits: {', '.join(f'{v:.0f}' for v in lat)})")
print(f"all {want} Stedi batches submitted {all_submitted_s:.1f} s after the submit")
print(f"Stedi batches at the simulator  {stats.get('batches')}  items {stats.get('batch_items')}")
print(f"real-time calls (must be 0)     {stats.get('realtime_calls')}; "
      f"limiter leases seen {max_slots}")
print(f"batch-rpc peak RSS              {rss_kb() / 1024:.0f} MB")
