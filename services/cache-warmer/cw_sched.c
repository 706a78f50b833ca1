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

/* MemberQuery fields the member directory answers (protobuf names) */
static const char *const answered[] = {"sponsor_ids",
                                       "population_ids",
                                       "required_feature_flags",
                                       "has_rte_enabled",
                                       "eligibility_checked_after",
                                       "eligibility_checked_before",
                                       "last_active_after",
                                       "last_active_before",
                                       "account_statuses",
                                       "exclude_mock_accounts",
                                       "limit",
                                       NULL};

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

/* 1 if field f of message m holds anything but its proto3 default */
static int field_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(const void *)(base + f->quantifier_offset) > 0;
    const void *p = base + f->offset;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p != NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p != 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p != 0.0f;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p != 0.0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const int64_t *)p != 0;
    default: /* 32-bit integers and enums */
        return *(const int32_t *)p != 0;
    }
}

static int ts_valid(const Rte__V1__Timestamp *t)
{
    return t == NULL || (t->seconds >= 0 && t->nanos >= 0 && t->nanos <= 999999999);
}

static int64_t ts_ms(const Rte__V1__Timestamp *t)
{
    return t->seconds * 1000 + t->nanos / 1000000;
}

/* the member status of an AccountStatus, -1 if the directory has none */
static int status_of(int s)
{
    switch (s) {
    case RTE__V1__ACCOUNT_STATUS__ACTIVE:
        return RTE_MEMBER_ACTIVE;
    case RTE__V1__ACCOUNT_STATUS__INACTIVE:
        return RTE_MEMBER_INACTIVE;
    case RTE__V1__ACCOUNT_STATUS__SUSPENDED:
        return RTE_MEMBER_SUSPENDED;
    case RTE__V1__ACCOUNT_STATUS__PENDING_ACTIVATION:
        return RTE_MEMBER_PENDING;
    default:
        return -1;
    }
}

static int strings_ok(char **v, size_t n, const char *field, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        if (len == 0 || len > ID_MAX) {
            snprintf(err, errlen, "member_query.%s[%zu]: expected 1..%d bytes", field, i, ID_MAX);
            return -1;
        }
    }
    return 0;
}

/* 0 when the query asks only what the directory answers, with sane values; else -1 + err */
static int query_ok(const Rte__V1__MemberQuery *q, char *err, size_t errlen)
{
    const ProtobufCMessageDescriptor *d = q->base.descriptor;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int k = 0;
        if (!field_set(&q->base, f))
            continue;
        while (answered[k] && strcmp(answered[k], f->name) != 0)
            k++;
        if (!answered[k]) {
            snprintf(err, errlen,
                     "member_query.%s: not answered by the member directory (supported: "
                     "sponsor_ids, population_ids, required_feature_flags, has_rte_enabled, "
                     "eligibility_checked_after/before, last_active_after/before, "
                     "account_statuses, exclude_mock_accounts, limit)",
                     f->name);
            return -1;
        }
    }
    if (strings_ok(q->sponsor_ids, q->n_sponsor_ids, "sponsor_ids", err, errlen) != 0 ||
        strings_ok(q->population_ids, q->n_population_ids, "population_ids", err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < q->n_required_feature_flags; i++) {
        size_t len = strlen(q->required_feature_flags[i]->key);
        if (len == 0 || len > ID_MAX) {
            snprintf(err, errlen, "member_query.required_feature_flags: keys must be 1..%d bytes",
                     ID_MAX);
            return -1;
        }
    }
    for (size_t i = 0; i < q->n_account_statuses; i++)
        if (status_of((int)q->account_statuses[i]) < 0) {
            snprintf(err, errlen,
                     "member_query.account_statuses[%zu]: %d is not a status the directory holds "
                     "(ACTIVE, INACTIVE, SUSPENDED, PENDING_ACTIVATION)",
                     i, (int)q->account_statuses[i]);
            return -1;
        }
    const struct {
        const Rte__V1__Timestamp *t;
        const char *name;
    } ts[] = {{q->eligibility_checked_after, "eligibility_checked_after"},
              {q->eligibility_checked_before, "eligibility_checked_before"},
              {q->last_active_after, "last_active_after"},
              {q->last_active_before, "last_active_before"}};
    for (size_t i = 0; i < 4; i++)
        if (!ts_valid(ts[i].t)) {
            snprintf(err, errlen,
                     "member_query.%s: expected seconds >= 0 and nanos in 0..999999999",
                     ts[i].name);
            return -1;
        }
    if (q->limit < 0) {
        snprintf(err, errlen, "member_query.limit: expected >= 0 (0 = every match), got %d",
                 q->limit);
        return -1;
    }
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

static int in_list(const char *v, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return 1;
    return 0;
}

/* the bit of each required flag in the snapshot (-1 = no member has it) */
struct flags {
    int bit[64];
    size_t n;
};

static void flag_bits(const Rte__V1__MemberQuery *q, const rte_member_snapshot *snap,
                      struct flags *f)
{
    const char *const *names;
    size_t nn = rte_member_snapshot_flags(snap, &names);

    f->n = q->n_required_feature_flags < 64 ? q->n_required_feature_flags : 64;
    for (size_t i = 0; i < f->n; i++) {
        f->bit[i] = -1;
        for (size_t k = 0; k < nn && k < 64; k++)
            if (strcmp(names[k], q->required_feature_flags[i]->key) == 0)
                f->bit[i] = (int)k;
    }
}

static int in_range(int64_t v, const Rte__V1__Timestamp *after, const Rte__V1__Timestamp *before)
{
    if ((after || before) && v < 0)
        return 0; /* never checked / never active: outside any bound */
    return (!after || v > ts_ms(after)) && (!before || v < ts_ms(before));
}

/* 1 if member m answers query q (NULL = every member) */
static int matches(const rte_member *m, const Rte__V1__MemberQuery *q, const struct flags *f)
{
    if (q == NULL)
        return 1;
    if (q->n_sponsor_ids &&
        !(m->sponsor_id && in_list(m->sponsor_id, q->sponsor_ids, q->n_sponsor_ids)))
        return 0;
    if (q->n_population_ids &&
        !(m->population_id && in_list(m->population_id, q->population_ids, q->n_population_ids)))
        return 0;
    for (size_t i = 0; i < f->n; i++) {
        int on = f->bit[i] >= 0 && (m->feature_flags >> f->bit[i] & 1u);
        if (on != (q->required_feature_flags[i]->value != 0))
            return 0;
    }
    if (q->has_rte_enabled && !m->has_rte_enabled)
        return 0;
    if (!in_range(m->last_check_ms, q->eligibility_checked_after, q->eligibility_checked_before) ||
        !in_range(m->last_login_ms, q->last_active_after, q->last_active_before))
        return 0;
    if (q->n_account_statuses) {
        size_t i = 0;
        while (i < q->n_account_statuses &&
               status_of((int)q->account_statuses[i]) != m->account_status)
            i++;
        if (i == q->n_account_statuses)
            return 0;
    }
    if (q->exclude_mock_accounts && m->is_mock)
        return 0;
    return 1;
}

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

/*
 * run fire f of the schedule: its members through cw_decide, the lease
 * renewed after each chunk; matched count, -1 + err
 */
static long run_fire(rte_redis *r, const char *name, const char *hkey,
                     const Rte__V1__ScheduleWarmingRequest *req, int64_t fire, char *err,
                     size_t errlen)
{
    char fire_s[24];
    snprintf(fire_s, sizeof fire_s, "%lld", (long long)fire);
    const Rte__V1__MemberQuery *mq = req->member_query;
    cw_req *q = malloc(CHUNK * sizeof *q);
    char(*ev)[NAME_MAX_LEN + ID_MAX + 40] = malloc(CHUNK * sizeof *ev);
    if (!q || !ev) {
        free(q);
        free(ev);
        snprintf(err, errlen, "out of memory for a fire");
        return -1;
    }
    rte_member_snapshot *snap = rte_member_dir_acquire(CW.dir);
    struct flags fl = {.n = 0};
    long matched = 0, limit = mq && mq->limit > 0 ? mq->limit : -1;
    size_t count = rte_member_snapshot_count(snap);
    int k = 0, rc = 0;

    if (mq)
        flag_bits(mq, snap, &fl);
    for (size_t i = 0; i < count && rc == 0 && (limit < 0 || matched < limit); i++) {
        const rte_member *m = rte_member_snapshot_at(snap, i);
        if (!matches(m, mq, &fl))
            continue;
        snprintf(ev[k], sizeof ev[k], "sched/%s/%lld/%s", name, (long long)fire, m->member_id);
        q[k] = (cw_req){.member_id = m->member_id,
                        .event_id = ev[k],
                        .probability = -1,
                        .priority = (int)req->priority,
                        .strategy = (int)req->strategy};
        matched++;
        if (++k == CHUNK) {
            rc = cw_decide(q, k, SOURCE, err, errlen);
            if (rc == 0)
                rc = renew(r, hkey, fire_s, err, errlen);
            k = 0;
        }
    }
    if (rc == 0 && k > 0)
        rc = cw_decide(q, k, SOURCE, err, errlen);
    rte_member_snapshot_release(snap);
    free(q);
    free(ev);
    return rc == 0 ? matched : -1;
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
