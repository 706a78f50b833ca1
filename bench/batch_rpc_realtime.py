"""bench/batch_rpc_realtime.py - the measuring half of bench/batch-rpc.sh's
REALTIME part (see there): interactive traffic through cache-gateway alone,
then beside a REALTIME_ONLY batch-rpc job, at the same fixed rate.

Arguments: GRPC_ADDR GATEWAY_URL REDIS_PORT SIM_URL MEMBERS_JSONL JOB_SIZE
RATE D BATCH_CAP LIMIT RESERVE.

Interactive load: open loop. Request i is due at t0 + i / RATE; a pool of
threads sends it when due and its latency is measured from that due time
(so a slow server shows up as latency, not as a lower rate). Each request
asks a different member the job does not touch, with no cache entry, so
every one is a DEFAULT-mode miss that calls stedi-sim in the interactive
class. Batch-class occupancy: the limiter's lease set (Redis sorted set
rte:slots:holders, token "<class number>:<uuid>" -> expiry ms, batch = 2) sampled every 20 ms
from the submit until the job ends; the time-weighted mean of unexpired
"2:" (batch) leases over what the class may use, min(batch_cap, limit -
reserve_interactive). stedi-sim's /_sim/stats max_in_flight (reset before
each phase) is the most real-time calls in flight seen at the simulator.
"""
import json
import math
import sys
import threading
import time

import grpc
import redis
import requests

import batch_eligibility_pb2 as pb
from batch_rpc_client import Client

(addr, gw, redis_port, sim, members_path, job_size, rate, dur, batch_cap, limit,
 reserve) = sys.argv[1:12]
job_size, rate, dur = int(job_size), float(rate), float(dur)
batch_cap, limit, reserve = int(batch_cap), int(limit), int(reserve)
may_use = max(1, min(batch_cap, limit - reserve))
rds = redis.Redis(port=int(redis_port))


def sim_class(mid):
    """stedi-sim's answer class (docs/stedi-sim.md): trailing digits mod 20."""
    d = ""
    for ch in reversed(mid):
        if not ch.isdigit():
            break
        d = ch + d
    return int(d[-18:]) % 20 if d else None


ids = []
with open(members_path) as f:
    for line in f:
        mid = json.loads(line)["member_id"]
        if sim_class(mid) not in (5, 15, None):  # no payer rejection: one kind of answer
            ids.append(mid)
job_ids, interactive = ids[:job_size], ids[job_size:]
if len(job_ids) < job_size:
    sys.exit(f"the directory has only {len(job_ids)} members for the job")

unary = Client(addr).unary


submit = unary("SubmitBatch", pb.SubmitBatchResponse)
status = unary("GetBatchStatus", pb.GetBatchStatusResponse)
FINAL = (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED, pb.BATCH_STATUS_CANCELLED,
         pb.BATCH_STATUS_PARTIALLY_COMPLETED)

next_member = [0]
member_lock = threading.Lock()


def take_member():
    with member_lock:
        i = next_member[0]
        next_member[0] += 1
    if i >= len(interactive):
        raise SystemExit("out of interactive members: raise the directory size")
    return interactive[i]


def load(stop):
    """Interactive requests at RATE per second until stop() says so; [(latency ms, status)]."""
    out, lock = [], threading.Lock()
    sess = threading.local()
    t0 = time.monotonic()
    pending = []

    def one(due, mid):
        s = getattr(sess, "s", None)
        if s is None:
            s = sess.s = requests.Session()
        try:
            code = s.get(f"{gw}/v1/eligibility/{mid}", timeout=60).status_code
        except requests.RequestException:
            code = 0
        ms = (time.monotonic() - due) * 1000
        with lock:
            out.append((ms, code))

    i = 0
    while not stop():
        due = t0 + i / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        t = threading.Thread(target=one, args=(due, take_member()), daemon=True)
        t.start()
        pending.append(t)
        i += 1
    for t in pending:
        t.join(120)
    return out


def pct(vals, p):
    v = sorted(vals)
    return v[min(len(v) - 1, max(0, int(math.ceil(p / 100 * len(v))) - 1))] if v else float("nan")


def batch_leases():
    sec, usec = rds.time()
    now_ms = int(sec) * 1000 + int(usec) // 1000
    held = rds.zrangebyscore("rte:slots:holders", now_ms, "+inf")
    return sum(1 for t in held if t.startswith(b"2:")), len(held)


# warm-up: a few interactive calls (connections, the gateway's first slot grant)
warm = load(lambda: next_member[0] >= 5)

# phase 1: interactive alone for D seconds
requests.post(f"{sim}/_sim/reset", timeout=10)
t_end = time.monotonic() + dur
alone = load(lambda: time.monotonic() >= t_end)
stats_alone = requests.get(f"{sim}/_sim/stats", timeout=10).json()

# phase 2: the same rate beside a REALTIME_ONLY job of JOB_SIZE members
requests.post(f"{sim}/_sim/reset", timeout=10)
req = pb.SubmitBatchRequest(client_service_name="bench", client_job_id="bench-realtime")
req.member_ids.member_ids.extend(job_ids)
req.options.strategy = pb.BatchExecutionOptions.STRATEGY_REALTIME_ONLY
req.options.priority = pb.BatchExecutionOptions.PRIORITY_NORMAL
t_submit = time.monotonic()
resp = submit(req, timeout=60)
done = threading.Event()
samples = []  # (monotonic s, batch leases, all leases)


def sampler():
    while not done.is_set():
        b, a = batch_leases()
        samples.append((time.monotonic(), b, a))
        try:
            s = status(pb.GetBatchStatusRequest(batch_id=resp.batch_id), timeout=10)
            if s.status in FINAL:
                final.append(s)
                done.set()
                break
        except grpc.RpcError:
            pass
        time.sleep(0.02)


final = []
th = threading.Thread(target=sampler, daemon=True)
th.start()
beside = load(done.is_set)
th.join(30)
t_done = time.monotonic()
stats_job = requests.get(f"{sim}/_sim/stats", timeout=10).json()

# time-weighted mean of batch-class leases over [submit, end]
area = 0.0
peak_batch = peak_all = 0
prev_t, prev_b = t_submit, 0
for t, b, a in samples:
    area += prev_b * (t - prev_t)
    prev_t, prev_b = t, b
    peak_batch, peak_all = max(peak_batch, b), max(peak_all, a)
area += prev_b * (t_done - prev_t)
span = t_done - t_submit
occ = area / span / may_use if span > 0 else 0
js = final[0] if final else None

la = [ms for ms, _ in alone]
lb = [ms for ms, _ in beside]
bad = sum(1 for _, c in alone + beside if c != 200)
p99a, p99b = pct(la, 99), pct(lb, 99)
print(f"interactive rate                {rate:g} req/s open loop, DEFAULT-mode misses "
      f"(each a stedi-sim call)")
print(f"interactive alone               {len(la)} requests  p50 {pct(la, 50):.0f} ms  "
      f"p99 {p99a:.0f} ms")
print(f"interactive beside the job      {len(lb)} requests  p50 {pct(lb, 50):.0f} ms  "
      f"p99 {p99b:.0f} ms")
print(f"interactive p99 ratio           {p99b / p99a:.2f} (goal <= 1.10); p50 ratio "
      f"{pct(lb, 50) / pct(la, 50):.2f}; non-200 answers {bad}")
if js is not None:
    pr = js.progress
    print(f"job                             {resp.batch_id} {pb.BatchStatus.Name(js.status)}: "
          f"{pr.completed} done, {pr.failed} failed of {pr.total_members} "
          f"in {span:.1f} s")
else:
    print(f"job                             {resp.batch_id} did not finish")
print(f"batch-class occupancy           {occ * 100:.0f} % of {may_use} slots "
      f"(time-weighted mean {area / span:.2f} leases over {span:.1f} s, "
      f"{len(samples)} samples; goal >= 90 %); peak batch leases {peak_batch}, "
      f"peak all leases {peak_all}")
print(f"stedi-sim max in flight         alone {stats_alone.get('max_in_flight')}, beside the "
      f"job {stats_job.get('max_in_flight')} (limit 15); 429s "
      f"{stats_alone.get('realtime_429', 0) + stats_job.get('realtime_429', 0)}")
