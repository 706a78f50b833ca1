/*
 * slots.c - the cluster-wide limiter of Stedi real-time slots.
 *
 * Contract in rte/slots.h. Everything that decides is one Lua script run
 * with EVALSHA (reloaded with SCRIPT LOAD when the server answers NOSCRIPT,
 * e.g. after a restart or SCRIPT FLUSH). Redis runs a script atomically, so
 * "count the holders, then add one" cannot interleave with another replica.
 * The script reads the server's TIME, so lease expiry does not depend on the
 * clocks of the replicas; Redis 7 replicates scripts by their effects, which
 * makes TIME legal inside them (older servers need replicate_commands, which
 * the script calls when present).
 *
 * Every run of the script first removes expired leases (and reports how
 * many, for rte_slots_lease_expiries_total) and waiters whose heartbeat has
 * lapsed, then performs one operation:
 *
 *   acquire  enqueue the waiter if new (score = INCR of P:seq), refresh its
 *            heartbeat, and grant if its rank in its class queue is below
 *            the slots free to its class: limit - total for interactive;
 *            for warming/batch the smaller of (cap - class in use) and
 *            (limit - reserve - total), and none while any interactive
 *            waiter is queued. "Rank below free" keeps first come, first
 *            served (nobody passes an earlier waiter while slots are short)
 *            yet lets k waiters take k free slots at once instead of one per
 *            poll. A grant moves the waiter's id into P:holders scored by
 *            now + lease_ms; that id is the lease token.
 *   cancel   drop the waiter (and a lease under that token, if the grant
 *            reply was lost in transit), for timeouts and errors.
 *   release  drop the lease; reports whether it was still held.
 *   renew    push an unexpired lease's expiry to now + lease_ms.
 *   count    nothing; the counts below.
 *
 * and returns {done, expired, held[3], queued[3]}. Tokens start with the
 * class digit, so per-class counts need no second structure.
 *
 * Waiting is polling (5-20 ms jittered): simple, no pub/sub connection per
 * waiter, and at 15 slots and Stedi latencies of seconds the poll cost is
 * negligible. Waiters refresh their heartbeat on every poll; a waiter that
 * crashed stops blocking its queue after waiter_ttl_ms.
 *
 * Connections: a small pool of rte_redis connections owned by the limiter.
 * A caller pops one (or creates one) under the pool mutex, does its I/O
 * without any lock, and pushes it back. The pool grows to the number of
 * threads ever concurrently inside the limiter.
 *
 * What it does not do: pub/sub wake-ups, fairness between warming and batch
 * (each has its own cap and queue), or renewing leases by itself.
 */
#include "rte/slots.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/metrics.h"
#include "rte/redis.h"

#define NKEYS 8
#define POLL_MIN_MS 5
#define POLL_MAX_MS 20

static const char script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local holders, seq = KEYS[1], KEYS[8]\n"
    "local op, cls, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local expired = redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)\n"
    "for c = 0, 2 do\n"
    "  local q, alive = KEYS[2 + c], KEYS[5 + c]\n"
    "  local dead = redis.call('ZRANGEBYSCORE', alive, '-inf', now)\n"
    "  for _, w in ipairs(dead) do redis.call('ZREM', q, w) end\n"
    "  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', alive, '-inf', now) end\n"
    "end\n"
    "local function held()\n"
    "  local n = {0, 0, 0}\n"
    "  for _, m in ipairs(redis.call('ZRANGE', holders, 0, -1)) do\n"
    "    local c = tonumber(string.sub(m, 1, 1))\n"
    "    if c and c >= 0 and c <= 2 then n[c + 1] = n[c + 1] + 1 end\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "local done = 0\n"
    "local q, alive = KEYS[2 + cls], KEYS[5 + cls]\n"
    "if op == 'acquire' then\n"
    "  local lease, limit = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "  local wcap, bcap = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "  local reserve, wttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
    "  if not redis.call('ZSCORE', q, id) then\n"
    "    redis.call('ZADD', q, redis.call('INCR', seq), id)\n"
    "  end\n"
    "  redis.call('ZADD', alive, now + wttl, id)\n"
    "  local rank = redis.call('ZRANK', q, id)\n"
    "  local n = held()\n"
    "  local total = n[1] + n[2] + n[3]\n"
    "  local free = limit - total\n"
    "  if cls ~= 0 then\n"
    "    local cap = bcap\n"
    "    if cls == 1 then cap = wcap end\n"
    "    free = math.min(cap - n[cls + 1], limit - reserve - total)\n"
    "    if redis.call('ZCARD', KEYS[2]) > 0 then free = 0 end\n"
    "  end\n"
    "  if rank < free then\n"
    "    redis.call('ZADD', holders, now + lease, id)\n"
    "    redis.call('ZREM', q, id)\n"
    "    redis.call('ZREM', alive, id)\n"
    "    done = 1\n"
    "  end\n"
    "elseif op == 'cancel' then\n"
    "  redis.call('ZREM', q, id)\n"
    "  redis.call('ZREM', alive, id)\n"
    "  done = redis.call('ZREM', holders, id)\n"
    "elseif op == 'release' then\n"
    "  done = redis.call('ZREM', holders, id)\n"
    "elseif op == 'renew' then\n"
    "  if redis.call('ZSCORE', holders, id) then\n"
    "    redis.call('ZADD', holders, 'XX', now + tonumber(ARGV[4]), id)\n"
    "    done = 1\n"
    "  end\n"
    "end\n"
    "local n = held()\n"
    "return {done, expired, n[1], n[2], n[3], redis.call('ZCARD', KEYS[2]),\n"
    "        redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4])}\n";

/* what one run of the script reports */
struct result {
    int done;
    int expired;
    int held[RTE_SLOT_NCLASSES];
    int queued[RTE_SLOT_NCLASSES];
};

struct conn {
    rte_redis *r;
    struct conn *next;
};

struct rte_slots {
    rte_slots_opts o;
    char prefix[128];
    char url[512];
    char keys[NKEYS][160];
    char sha[41];
    pthread_mutex_t lock; /* guards pool only */
    struct conn *pool;
    rte_series *in_use[RTE_SLOT_NCLASSES];
    rte_series *waiters[RTE_SLOT_NCLASSES];
    rte_series *wait_s[RTE_SLOT_NCLASSES];
    rte_series *acq_ok[RTE_SLOT_NCLASSES];
    rte_series *acq_timeout[RTE_SLOT_NCLASSES];
    rte_series *acq_error[RTE_SLOT_NCLASSES];
    rte_series *expiries;
};

static const char *const class_names[RTE_SLOT_NCLASSES] = {"interactive", "warming", "batch"};

/* rte_slot_class_name - the label/flag name of a class; any thread */
const char *rte_slot_class_name(enum rte_slot_class cls)
{
    if ((int)cls < 0 || (int)cls >= RTE_SLOT_NCLASSES)
        return "unknown";
    return class_names[cls];
}

/* rte_slot_class_parse - a class name to its value; any thread */
int rte_slot_class_parse(const char *name)
{
    int i;

    for (i = 0; name && i < RTE_SLOT_NCLASSES; i++)
        if (strcmp(name, class_names[i]) == 0)
            return i;
    return -1;
}

/* rte_slots_opts_init - the documented defaults; any thread */
void rte_slots_opts_init(rte_slots_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prefix = "rte:slots";
    o->limit = 15;
    o->lease_ms = 30000;
    o->warming_cap = 5;
    o->batch_cap = 5;
    o->reserve_interactive = 5;
    o->waiter_ttl_ms = 2000;
    o->redis_timeout_ms = 1000;
}

static int check_opts(const rte_slots_opts *o, char *err, size_t errlen)
{
    if (o->limit < 1 || o->limit > 10000) {
        snprintf(err, errlen, "slots: limit %d out of range 1..10000", o->limit);
        return -1;
    }
    if (o->lease_ms < 100) {
        snprintf(err, errlen, "slots: lease_ms %d below 100", o->lease_ms);
        return -1;
    }
    if (o->warming_cap < 0 || o->batch_cap < 0) {
        snprintf(err, errlen, "slots: warming_cap %d / batch_cap %d must be >= 0", o->warming_cap,
                 o->batch_cap);
        return -1;
    }
    if (o->reserve_interactive < 0 || o->reserve_interactive > o->limit) {
        snprintf(err, errlen, "slots: reserve_interactive %d out of range 0..limit (%d)",
                 o->reserve_interactive, o->limit);
        return -1;
    }
    if (o->waiter_ttl_ms < 100 || o->redis_timeout_ms < 1) {
        snprintf(err, errlen, "slots: waiter_ttl_ms %d (>= 100) / redis_timeout_ms %d (>= 1)",
                 o->waiter_ttl_ms, o->redis_timeout_ms);
        return -1;
    }
    return 0;
}

static void script_sha(char out[41])
{
    rte_sha1_hex(script, strlen(script), out);
}

static void register_metrics(rte_slots *s)
{
    static const char *const cls_label[] = {"class", NULL};
    static const char *const acq_labels[] = {"class", "result", NULL};
    rte_metric *in_use, *waiters, *wait_s, *acq, *exp;
    int c;

    in_use = rte_gauge_new("rte_slots_in_use", "Stedi real-time slot leases held, cluster-wide",
                           cls_label);
    waiters = rte_gauge_new("rte_slots_waiters",
                            "Callers queued for a real-time slot, cluster-wide", cls_label);
    wait_s = rte_histogram_new("rte_slots_wait_seconds", "Time from asking to getting a slot",
                               cls_label, NULL, 0);
    acq = rte_counter_new("rte_slots_acquire_total", "Slot acquisitions by outcome", acq_labels);
    exp = rte_counter_new("rte_slots_lease_expiries_total",
                          "Slot leases that expired without release (holder crashed or stalled)",
                          NULL);
    for (c = 0; c < RTE_SLOT_NCLASSES; c++) {
        const char *v[] = {class_names[c], NULL};
        const char *ok[] = {class_names[c], "ok", NULL};
        const char *to[] = {class_names[c], "timeout", NULL};
        const char *er[] = {class_names[c], "error", NULL};

        s->in_use[c] = rte_metric_labels(in_use, v);
        s->waiters[c] = rte_metric_labels(waiters, v);
        s->wait_s[c] = rte_metric_labels(wait_s, v);
        s->acq_ok[c] = rte_metric_labels(acq, ok);
        s->acq_timeout[c] = rte_metric_labels(acq, to);
        s->acq_error[c] = rte_metric_labels(acq, er);
    }
    s->expiries = rte_metric_series0(exp);
}

/* rte_slots_new - build a limiter (connects lazily); any thread */
rte_slots *rte_slots_new(const char *redis_url, const rte_slots_opts *o, char *err, size_t errlen)
{
    static const char *const suffix[NKEYS] = {"holders", "queue:0", "queue:1", "queue:2",
                                              "alive:0", "alive:1", "alive:2", "seq"};
    rte_slots *s = NULL;
    rte_redis *r = NULL;
    const char *url = redis_url ? redis_url : rte_redis_default_url();
    int i, n;

    s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "slots: out of memory");
        goto out;
    }
    if (o)
        s->o = *o;
    else
        rte_slots_opts_init(&s->o);
    if (check_opts(&s->o, err, errlen) < 0)
        goto out;
    n = snprintf(s->prefix, sizeof s->prefix, "%s", s->o.prefix ? s->o.prefix : "rte:slots");
    if (n <= 0 || (size_t)n >= sizeof s->prefix) {
        snprintf(err, errlen, "slots: prefix empty or longer than %zu", sizeof s->prefix - 1);
        goto out;
    }
    s->o.prefix = s->prefix;
    n = snprintf(s->url, sizeof s->url, "%s", url);
    if (n < 0 || (size_t)n >= sizeof s->url) {
        snprintf(err, errlen, "slots: redis url too long");
        goto out;
    }
    for (i = 0; i < NKEYS; i++)
        snprintf(s->keys[i], sizeof s->keys[i], "%s:%s", s->prefix, suffix[i]);
    script_sha(s->sha);
    /* validates the URL now rather than on the first acquire */
    r = rte_redis_new(s->url, s->o.redis_timeout_ms, err, errlen);
    if (r == NULL)
        goto out;
    s->pool = calloc(1, sizeof *s->pool);
    if (s->pool == NULL) {
        snprintf(err, errlen, "slots: out of memory");
        goto out;
    }
    s->pool->r = r;
    r = NULL;
    pthread_mutex_init(&s->lock, NULL);
    register_metrics(s);
    return s;
out:
    if (r)
        rte_redis_free(r);
    free(s);
    return NULL;
}

/* rte_slots_free - free the pool; no call may be in progress */
void rte_slots_free(rte_slots *s)
{
    struct conn *c, *next;

    if (s == NULL)
        return;
    for (c = s->pool; c; c = next) {
        next = c->next;
        rte_redis_free(c->r);
        free(c);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static struct conn *conn_get(rte_slots *s, char *err, size_t errlen)
{
    struct conn *c;

    pthread_mutex_lock(&s->lock);
    c = s->pool;
    if (c)
        s->pool = c->next;
    pthread_mutex_unlock(&s->lock);
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "slots: out of memory");
        return NULL;
    }
    c->r = rte_redis_new(s->url, s->o.redis_timeout_ms, err, errlen);
    if (c->r == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

static void conn_put(rte_slots *s, struct conn *c)
{
    pthread_mutex_lock(&s->lock);
    c->next = s->pool;
    s->pool = c;
    pthread_mutex_unlock(&s->lock);
}

static int int_elem(const redisReply *rep, size_t i, int *v)
{
    if (i >= rep->elements || rep->element[i]->type != REDIS_REPLY_INTEGER)
        return -1;
    *v = (int)rep->element[i]->integer;
    return 0;
}

static int parse_result(const redisReply *rep, struct result *res, char *err, size_t errlen)
{
    int c, bad = 0;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 8) {
        snprintf(err, errlen, "slots: unexpected script reply (type %d)", rep->type);
        return -1;
    }
    bad |= int_elem(rep, 0, &res->done);
    bad |= int_elem(rep, 1, &res->expired);
    for (c = 0; c < RTE_SLOT_NCLASSES; c++) {
        bad |= int_elem(rep, 2 + (size_t)c, &res->held[c]);
        bad |= int_elem(rep, 5 + (size_t)c, &res->queued[c]);
    }
    if (bad) {
        snprintf(err, errlen, "slots: script reply element is not an integer");
        return -1;
    }
    return 0;
}

/*
 * run - one run of the script: op for token in class cls with the numeric
 * arguments the op needs; fills res and updates the shared gauges
 */
static int run(rte_slots *s, const char *op, int cls, const char *token, struct result *res,
               char *err, size_t errlen)
{
    const int num[] = {cls,
                       s->o.lease_ms,
                       s->o.limit,
                       s->o.warming_cap,
                       s->o.batch_cap,
                       s->o.reserve_interactive,
                       s->o.waiter_ttl_ms};
    char nums[7][16];
    const char *argv[3 + NKEYS + 9];
    struct conn *c;
    redisReply *rep = NULL;
    int argc = 0, i, rc = -1;

    for (i = 0; i < 7; i++)
        snprintf(nums[i], sizeof nums[i], "%d", num[i]);
    argv[argc++] = "EVALSHA";
    argv[argc++] = s->sha;
    argv[argc++] = "8";
    for (i = 0; i < NKEYS; i++)
        argv[argc++] = s->keys[i];
    argv[argc++] = op; /* ARGV[1] */
    argv[argc++] = nums[0];
    argv[argc++] = token;
    for (i = 1; i < 7; i++) /* ARGV[4..9]: lease, limit, caps, reserve, waiter ttl */
        argv[argc++] = nums[i];

    c = conn_get(s, err, errlen);
    if (c == NULL)
        return -1;
    rep = rte_redis_cmdargv(c->r, argc, argv, NULL, err, errlen);
    if (rep == NULL && strstr(err, "NOSCRIPT") != NULL) {
        /* the server lost its script cache (restart, SCRIPT FLUSH): load and retry once */
        redisReply *ld = rte_redis_cmd(c->r, err, errlen, "SCRIPT LOAD %s", script);
        if (ld == NULL)
            goto out;
        freeReplyObject(ld);
        rep = rte_redis_cmdargv(c->r, argc, argv, NULL, err, errlen);
    }
    if (rep == NULL)
        goto out;
    if (parse_result(rep, res, err, errlen) < 0)
        goto out;
    if (res->expired > 0) {
        rte_series_add(s->expiries, res->expired);
        rte_log_warn("slots: %d real-time slot lease(s) expired without release (holder "
                     "crashed or overran lease_ms); slots returned to the pool",
                     res->expired);
    }
    for (i = 0; i < RTE_SLOT_NCLASSES; i++) {
        rte_series_set(s->in_use[i], res->held[i]);
        rte_series_set(s->waiters[i], res->queued[i]);
    }
    rc = 0;
out:
    if (rep)
        freeReplyObject(rep);
    conn_put(s, c);
    return rc;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int poll_delay_ms(void)
{
    static _Thread_local unsigned int seed;

    if (seed == 0)
        seed = (unsigned int)rte_clock_mono_ms() ^ (unsigned int)(uintptr_t)&seed;
    return POLL_MIN_MS + (int)(rand_r(&seed) % (POLL_MAX_MS - POLL_MIN_MS + 1));
}

/* rte_slots_acquire - take a real-time slot, waiting until the deadline; any thread */
int rte_slots_acquire(rte_slots *s, enum rte_slot_class cls, int64_t deadline_mono_ms,
                      rte_slot_lease *out, char *err, size_t errlen)
{
    return rte_slots_acquire_notify(s, cls, deadline_mono_ms, NULL, NULL, out, err, errlen);
}

/* rte_slots_acquire_notify - acquire, telling on_wait once when queued; any thread */
int rte_slots_acquire_notify(rte_slots *s, enum rte_slot_class cls, int64_t deadline_mono_ms,
                             rte_slots_wait_fn on_wait, void *arg, rte_slot_lease *out, char *err,
                             size_t errlen)
{
    struct result res;
    char uuid[37], token[40], ignored[128];
    int64_t start = rte_clock_mono_ms(), now;
    int rc;

    if ((int)cls < 0 || (int)cls >= RTE_SLOT_NCLASSES) {
        snprintf(err, errlen, "slots: unknown class %d", (int)cls);
        return RTE_SLOTS_ERROR;
    }
    rte_uuid4(uuid);
    snprintf(token, sizeof token, "%d:%s", (int)cls, uuid);
    for (;;) {
        if (run(s, "acquire", (int)cls, token, &res, err, errlen) < 0) {
            /* the grant may have happened with its reply lost: drop it if Redis answers */
            (void)run(s, "cancel", (int)cls, token, &res, ignored, sizeof ignored);
            rc = RTE_SLOTS_ERROR;
            rte_series_inc(s->acq_error[cls]);
            goto out;
        }
        now = rte_clock_mono_ms();
        if (res.done) {
            memset(out, 0, sizeof *out);
            memcpy(out->token, token, sizeof out->token);
            out->acquired_ms = now;
            out->cls = cls;
            rte_series_observe(s->wait_s[cls], (double)(now - start) / 1000.0);
            rte_series_inc(s->acq_ok[cls]);
            rc = 0;
            goto out;
        }
        if (now >= deadline_mono_ms) {
            (void)run(s, "cancel", (int)cls, token, &res, ignored, sizeof ignored);
            snprintf(err, errlen, "slots: no %s slot within the deadline (%lld ms waited)",
                     class_names[cls], (long long)(now - start));
            rte_series_inc(s->acq_timeout[cls]);
            rc = RTE_SLOTS_TIMEOUT;
            goto out;
        }
        if (on_wait != NULL) {
            on_wait(arg);
            on_wait = NULL;
        }
        int64_t d = poll_delay_ms();
        if (d > deadline_mono_ms - now)
            d = deadline_mono_ms - now;
        sleep_ms(d);
    }
out:
    return rc;
}

/* lease_op - release or renew; shared error handling */
static int lease_op(rte_slots *s, const char *op, const rte_slot_lease *lease)
{
    struct result res;
    char err[256];

    if (run(s, op, (int)lease->cls, lease->token, &res, err, sizeof err) < 0) {
        rte_log_warn("slots: %s of a %s lease failed (%s); it expires by itself within %d ms", op,
                     rte_slot_class_name(lease->cls), err, s->o.lease_ms);
        return RTE_SLOTS_ERROR;
    }
    return res.done ? 0 : RTE_SLOTS_LOST;
}

/* rte_slots_release - give a slot back; any thread */
int rte_slots_release(rte_slots *s, const rte_slot_lease *lease)
{
    return lease_op(s, "release", lease);
}

/* rte_slots_lease_ms - any thread; options are immutable after _new */
int rte_slots_lease_ms(const rte_slots *s)
{
    return s->o.lease_ms;
}

/* rte_slots_renew - extend a held lease to lease_ms from now; any thread */
int rte_slots_renew(rte_slots *s, const rte_slot_lease *lease)
{
    return lease_op(s, "renew", lease);
}

/* rte_slots_in_use - unexpired leases cluster-wide; any thread */
int rte_slots_in_use(rte_slots *s, int *by_class)
{
    struct result res;
    char err[256];
    int c;

    if (run(s, "count", 0, "-", &res, err, sizeof err) < 0) {
        rte_log_warn("slots: counting leases failed (%s)", err);
        return -1;
    }
    for (c = 0; by_class && c < RTE_SLOT_NCLASSES; c++)
        by_class[c] = res.held[c];
    return res.held[0] + res.held[1] + res.held[2];
}
