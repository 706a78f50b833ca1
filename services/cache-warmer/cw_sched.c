/*
 * cw_sched.c - ScheduleWarming (contract in cw_sched.h).
 *
 * The stored form of a schedule is the request's protobuf bytes: what was
 * validated is exactly what fires, and a replica of a later build reads
 * what an older one wrote. Each tick re-parses the few schedules (a cron
 * expression parses in microseconds; a zone file is read once per fire
 * check), which keeps no state in the process that could disagree with
 * Redis after an update from another replica.
 */
#include "cw_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_warming.pb-c.h"
#include "cw.h"
#include "cw_decide.h"
#include "rte/clock.h"
#include "rte/member_query.h"
#include "rte/cron.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/tz.h"

#define NAME_MAX_LEN 64
#define ID_MAX 128
#define CHUNK 1000
#define MAX_SCHEDULES 1000
#define FIRES_KEPT 100
#define SOURCE "schedule"

/* --- validation ------------------------------------------------------------ */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* 0 when the query compiles (libcommon member_query: every family, the expression language) */
static int query_ok(const Rte__V1__MemberQuery *q, char *err, size_t errlen)
{
    int rc;
    rte_member_query *mq;

    if (q->limit < 0) {
        snprintf(err, errlen, "member_query.limit: expected >= 0 (0 = every match), got %d",
                 q->limit);
        return -1;
    }
    mq = rte_member_query_new(q, rte_clock_now_ms(), &rc, err, errlen);
    if (mq == NULL)
        return -1;
    rte_member_query_free(mq);
    return 0;
}

/*
 * the request checked and its expression and zone loaded (*tz to free);
 * 0, or -1 + err naming the field
 */
static int request_ok(const Rte__V1__ScheduleWarmingRequest *r, rte_cron *expr, rte_tz **tz,
                      char *err, size_t errlen)
{
    char why[256];

    *tz = NULL;
    if (!name_ok(r->schedule_name)) {
        snprintf(err, errlen, "schedule_name: expected 1..%d characters of [A-Za-z0-9_-]",
                 NAME_MAX_LEN);
        return -1;
    }
    if (rte_cron_parse(r->cron_expression, expr, why, sizeof why) != 0) {
        snprintf(err, errlen, "cron_expression: %s", why);
        return -1;
    }
    if ((int)r->strategy < 0 || (int)r->strategy > 2) {
        snprintf(err, errlen, "strategy: unknown value %d (INTELLIGENT, FORCE, FILL_ONLY)",
                 (int)r->strategy);
        return -1;
    }
    if ((int)r->priority == CW_URGENT) {
        snprintf(err, errlen,
                 "priority: URGENT is real-time warming, not for schedules (use "
                 "PRELOAD or BACKGROUND)");
        return -1;
    }
    if ((int)r->priority < 0 || (int)r->priority > 2) {
        snprintf(err, errlen, "priority: unknown value %d (BACKGROUND, PRELOAD)", (int)r->priority);
        return -1;
    }
    if (r->member_query && query_ok(r->member_query, err, errlen) != 0)
        return -1;
    *tz = rte_tz_load(NULL, r->time_zone[0] ? r->time_zone : "UTC", why, sizeof why);
    if (*tz == NULL) {
        snprintf(err, errlen, "time_zone: %s", why);
        return -1;
    }
    return 0;
}

/* --- Redis ------------------------------------------------------------------ */

static void key_of(const char *name, const char *suffix, char *out, size_t len)
{
    snprintf(out, len, "%s:sched:%s%s", CW.c.warm.prefix, name, suffix);
}

/*
 * KEYS schedule hash, names set; ARGV name, req bytes, now_ms. Stores the
 * request; a new schedule's horizon is now, an updated one's is kept unless
 * older than now (an edited expression must not fire for the past).
 */
static const char upsert_lua[] =
    "local h = tonumber(redis.call('HGET', KEYS[1], 'horizon') or '0')\n"
    "local now = tonumber(ARGV[3])\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  redis.call('HSET', KEYS[1], 'created_ms', ARGV[3])\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'req', ARGV[2], 'updated_ms', ARGV[3], 'horizon',\n"
    "  math.max(h, now))\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "return 1\n";

/*
 * KEYS schedule hash; ARGV owner, expected horizon, fire ms (-1: only
 * resume), lease ms. A fire whose runner's lease ran out is resumed ({2,
 * fire}); else the horizon moves from expected to fire ({1, fire}) if
 * nobody moved it first; else 0. Leases on Redis's clock.
 */
static const char take_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local v = redis.call('HMGET', KEYS[1], 'horizon', 'fire', 'lease_until')\n"
    "if v[2] and v[2] ~= '' then\n"
    "  if tonumber(v[3] or '0') > now then return 0 end\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease_until', now + tonumber(ARGV[4]))\n"
    "  return {2, v[2]}\n"
    "end\n"
    "if ARGV[3] == '-1' or (v[1] or '') ~= ARGV[2] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'horizon', ARGV[3], 'fire', ARGV[3], 'owner', ARGV[1],\n"
    "  'lease_until', now + tonumber(ARGV[4]))\n"
    "return {1, ARGV[3]}\n";

/*
 * KEYS schedule hash, fires list; ARGV owner, fire, members, keep. Closes
 * the fire if this owner still holds it: 1, else 0.
 */
static const char done_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 'owner', 'fire')\n"
    "if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'fire', '', 'lease_until', 0, 'last_fire', ARGV[2],\n"
    "  'last_members', ARGV[3])\n"
    "redis.call('RPUSH', KEYS[2], ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[3])\n"
    "redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)\n"
    "return 1\n";

/*
 * KEYS schedule hash; ARGV owner, fire, lease ms. Extends the lease while
 * this owner still runs this fire: 1, else 0 (taken over: stop).
 */
static const char renew_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 'owner', 'fire')\n"
    "if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('HSET', KEYS[1], 'lease_until', now + tonumber(ARGV[3]))\n"
    "return 1\n";

static redisReply *eval(rte_redis *r, const char *script, int nkeys, int argc, const char **argv,
                        const size_t *lens, char *err, size_t errlen)
{
    const char *a[12];
    size_t l[12];

    a[0] = "EVAL";
    a[1] = script;
    char nk[4];
    snprintf(nk, sizeof nk, "%d", nkeys);
    a[2] = nk;
    for (int i = 0; i < 3; i++)
        l[i] = strlen(a[i]);
    for (int i = 0; i < argc && i < 9; i++) {
        a[3 + i] = argv[i];
        l[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    return rte_redis_cmdargv(r, 3 + argc, a, l, err, errlen);
}

/* --- the gRPC handler --------------------------------------------------------- */

static void put_ts(Rte__V1__Timestamp *t, int64_t ms)
{
    rte__v1__timestamp__init(t);
    t->seconds = ms / 1000;
    t->nanos = (int32_t)(ms % 1000) * 1000000;
}

/* cw_sched_schedule_warming - gRPC worker threads */
void cw_sched_schedule_warming(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__ScheduleWarmingRequest *req = (const Rte__V1__ScheduleWarmingRequest *)m;
    rte_redis *r = rte_service_redis();
    rte_cron expr;
    rte_tz *tz = NULL;
    char err[512], hkey[160], nkey[160], now_s[24], id[96];
    uint8_t *buf = NULL;
    redisReply *rep = NULL;

    (void)arg;
    if (request_ok(req, &expr, &tz, err, sizeof err) != 0) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "%s", err);
        goto out;
    }
    size_t len = rte__v1__schedule_warming_request__get_packed_size(req);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    rte__v1__schedule_warming_request__pack(req, buf);
    int64_t now = rte_clock_now_ms();
    key_of(req->schedule_name, "", hkey, sizeof hkey);
    snprintf(nkey, sizeof nkey, "%s:sched:names", CW.c.warm.prefix);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    const char *argv[] = {hkey, nkey, req->schedule_name, (const char *)buf, now_s};
    const size_t lens[] = {strlen(hkey), strlen(nkey), strlen(req->schedule_name), len,
                           strlen(now_s)};
    rep = eval(r, upsert_lua, 2, 5, argv, lens, err, sizeof err);
    if (rep == NULL) {
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "schedules unavailable: %s", err);
        goto out;
    }
    Rte__V1__ScheduleWarmingResponse resp = RTE__V1__SCHEDULE_WARMING_RESPONSE__INIT;
    Rte__V1__Timestamp next;
    snprintf(id, sizeof id, "ws-%s", req->schedule_name);
    resp.schedule_id = id;
    int64_t n = req->enabled ? rte_cron_next(&expr, tz, now / 1000) : -1;
    if (n >= 0) {
        put_ts(&next, n * 1000);
        resp.next_run = &next;
    }
    rte_log_info("cache-warmer: schedule %s '%s' (%s) %s, next fire %lld", req->schedule_name,
                 req->cron_expression, rte_tz_name(tz), req->enabled ? "enabled" : "disabled",
                 (long long)n);
    rte_grpc_reply(call, &resp.base);
out:
    if (rep)
        freeReplyObject(rep);
    free(buf);
    rte_tz_free(tz);
}

/* --- firing ---------------------------------------------------------------- */

/* extend this replica's lease on the fire after each chunk; 0 ok, -1 + err when lost */
static int renew(rte_redis *r, const char *hkey, const char *fire_s, char *err, size_t errlen)
{
    char lease_s[24];
    snprintf(lease_s, sizeof lease_s, "%lld", (long long)CW.c.warm.lease_ms);
    redisReply *rep = eval(r, renew_lua, 1, 4, (const char *[]){hkey, CW.owner, fire_s, lease_s},
                           NULL, err, errlen);
    if (rep == NULL)
        return -1;
    int ok = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    if (!ok)
        snprintf(err, errlen, "the fire's lease was lost to another replica; it resumes the fire");
    return ok ? 0 : -1;
}

/* one fire's members, handed out by the query in order, decided in chunks */
struct fire {
    rte_redis *r;
    const char *name, *hkey, *fire_s;
    const Rte__V1__ScheduleWarmingRequest *req;
    int64_t fire;
    cw_req *q;
    char (*ev)[NAME_MAX_LEN + ID_MAX + 40];
    int k, rc;
    long matched;
    char *err;
    size_t errlen;
};

static int fire_chunk(struct fire *f)
{
    if (f->k > 0 && f->rc == 0)
        f->rc = cw_decide(f->q, f->k, SOURCE, f->err, f->errlen);
    f->k = 0;
    return f->rc;
}

static int fire_member(const rte_member *m, size_t index, void *arg)
{
    struct fire *f = arg;
    (void)index;
    snprintf(f->ev[f->k], sizeof f->ev[f->k], "sched/%s/%lld/%s", f->name, (long long)f->fire,
             m->member_id);
    f->q[f->k] = (cw_req){.member_id = m->member_id,
                          .event_id = f->ev[f->k],
                          .probability = -1,
                          .priority = (int)f->req->priority,
                          .strategy = (int)f->req->strategy};
    f->matched++;
    if (++f->k == CHUNK && fire_chunk(f) == 0)
        f->rc = renew(f->r, f->hkey, f->fire_s, f->err, f->errlen);
    return f->rc != 0;
}

/*
 * run fire f of the schedule: the members its MemberQuery selects (libcommon
 * member_query, "now" = the fire's time; no query = every member) through
 * cw_decide, the lease renewed after each chunk; matched count, -1 + err
 */
static long run_fire(rte_redis *r, const char *name, const char *hkey,
                     const Rte__V1__ScheduleWarmingRequest *req, int64_t fire, char *err,
                     size_t errlen)
{
    char fire_s[24];
    struct fire f = {.r = r,
                     .name = name,
                     .hkey = hkey,
                     .fire_s = fire_s,
                     .req = req,
                     .fire = fire,
                     .err = err,
                     .errlen = errlen};
    rte_member_query *mq = NULL;
    rte_member_snapshot *snap = NULL;
    int qrc;

    snprintf(fire_s, sizeof fire_s, "%lld", (long long)fire);
    f.q = malloc(CHUNK * sizeof *f.q);
    f.ev = malloc(CHUNK * sizeof *f.ev);
    if (!f.q || !f.ev) {
        snprintf(err, errlen, "out of memory for a fire");
        f.rc = -1;
        goto out;
    }
    snap = rte_member_dir_acquire(CW.dir);
    if (req->member_query) {
        rte_member_query_result res;
        mq = rte_member_query_new(req->member_query, fire, &qrc, err, errlen);
        if (mq == NULL ||
            rte_member_query_resolve(mq, snap, fire_member, &f, &res, err, errlen) != 0) {
            f.rc = -1;
            goto out;
        }
    } else {
        size_t count = rte_member_snapshot_count(snap);
        for (size_t i = 0; i < count && f.rc == 0; i++)
            fire_member(rte_member_snapshot_at(snap, i), i, &f);
    }
    fire_chunk(&f);
out:
    rte_member_query_free(mq);
    if (snap)
        rte_member_snapshot_release(snap);
    free(f.q);
    free(f.ev);
    return f.rc == 0 ? f.matched : -1;
}

/* the newest fire <= now after horizon (s), *missed the older due ones; -1 if none due */
static int64_t due_fire(const rte_cron *e, const rte_tz *tz, int64_t horizon_s, int64_t now_s,
                        long *missed)
{
    int64_t f = rte_cron_next(e, tz, horizon_s), n;

    *missed = 0;
    if (f < 0 || f > now_s)
        return -1;
    while ((n = rte_cron_next(e, tz, f)) >= 0 && n <= now_s) {
        f = n;
        (*missed)++;
    }
    return f;
}

/* one schedule: take and run its due (or orphaned) fire */
static void tick_one(rte_redis *r, const char *name)
{
    char hkey[160], fkey[170], err[512], exp_s[24], fire_s[24], lease_s[24], members[24];
    redisReply *h = NULL, *t = NULL, *d = NULL;
    Rte__V1__ScheduleWarmingRequest *req = NULL;
    rte_tz *tz = NULL;
    rte_cron expr;

    key_of(name, "", hkey, sizeof hkey);
    h = rte_redis_cmd(r, err, sizeof err, "HMGET %s req horizon fire lease_until", hkey);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 4 ||
        h->element[0]->type != REDIS_REPLY_STRING)
        goto out;
    req = rte__v1__schedule_warming_request__unpack(NULL, h->element[0]->len,
                                                    (const uint8_t *)h->element[0]->str);
    if (req == NULL || !req->enabled)
        goto out;
    if (request_ok(req, &expr, &tz, err, sizeof err) != 0) {
        rte_log_warn("cache-warmer: schedule %s no longer valid (%s); not fired", name, err);
        goto out;
    }
    const char *hz = h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str : "0";
    int orphan = h->element[2]->type == REDIS_REPLY_STRING && h->element[2]->str[0] != '\0';
    int64_t horizon = strtoll(hz, NULL, 10), now = rte_clock_now_ms();
    long missed = 0;
    int64_t fire = -1;
    if (!orphan) {
        int64_t f = due_fire(&expr, tz, horizon / 1000, now / 1000, &missed);
        if (f < 0)
            goto out;
        fire = f * 1000;
    } /* else a fire in progress: the script resumes it if its runner's lease ran out */
    snprintf(exp_s, sizeof exp_s, "%s", hz);
    snprintf(fire_s, sizeof fire_s, "%lld", (long long)fire);
    snprintf(lease_s, sizeof lease_s, "%lld", (long long)CW.c.warm.lease_ms);
    t = eval(r, take_lua, 1, 5, (const char *[]){hkey, CW.owner, exp_s, fire_s, lease_s}, NULL, err,
             sizeof err);
    if (t == NULL) {
        rte_log_warn("cache-warmer: schedule %s: %s; retried next tick", name, err);
        goto out;
    }
    if (t->type != REDIS_REPLY_ARRAY || t->elements != 2)
        goto out; /* another replica took it, or runs it */
    int resumed = t->element[0]->integer == 2;
    fire = strtoll(t->element[1]->str, NULL, 10);
    if (missed > 0)
        rte_counter_add(CM.fires, (const char *const[]){"missed"}, (double)missed);
    long n = run_fire(r, name, hkey, req, fire, err, sizeof err);
    if (n < 0) {
        /* the lease runs out and a replica (maybe this one) resumes the fire */
        rte_counter_inc(CM.fires, (const char *const[]){"failed"});
        rte_log_warn("cache-warmer: schedule %s fire %lld: %s; resumed when its lease ends", name,
                     (long long)fire, err);
        goto out;
    }
    key_of(name, ":fires", fkey, sizeof fkey);
    snprintf(members, sizeof members, "%ld", n);
    char keep[8];
    snprintf(keep, sizeof keep, "%d", FIRES_KEPT);
    d = eval(r, done_lua, 2, 6,
             (const char *[]){hkey, fkey, CW.owner, t->element[1]->str, members, keep}, NULL, err,
             sizeof err);
    rte_counter_inc(CM.fires, (const char *const[]){resumed ? "resumed" : "fired"});
    rte_log_info("cache-warmer: schedule %s fired for %lld: %ld members%s%s", name, (long long)fire,
                 n, resumed ? " (resumed after its runner died)" : "",
                 d == NULL ? "; closing the fire failed, it will be resumed" : "");
out:
    if (h)
        freeReplyObject(h);
    if (t)
        freeReplyObject(t);
    if (d)
        freeReplyObject(d);
    if (req)
        rte__v1__schedule_warming_request__free_unpacked(req, NULL);
    rte_tz_free(tz);
}

/* cw_sched_tick - the flush timer's thread */
void cw_sched_tick(void)
{
    rte_redis *r = rte_service_redis();
    char err[256];
    redisReply *names = rte_redis_cmd(r, err, sizeof err, "SRANDMEMBER %s:sched:names %d",
                                      CW.c.warm.prefix, MAX_SCHEDULES);

    if (names == NULL) {
        rte_log_warn("cache-warmer: reading schedules: %s; retried next tick", err);
        return;
    }
    for (size_t i = 0; names->type == REDIS_REPLY_ARRAY && i < names->elements; i++)
        if (names->element[i]->type == REDIS_REPLY_STRING && name_ok(names->element[i]->str))
            tick_one(r, names->element[i]->str);
    freeReplyObject(names);
}
