/*
 * cw_stats.c - warming statistics (contract and Redis layout in cw_stats.h).
 *
 * Writes are pipelined per submitted batch or per consumed batch of
 * rte.events; a query sums at most 31 days of hourly hashes in one
 * pipeline. Statistics are best effort: a Redis error is logged and the
 * figures miss that batch, warming itself is never held up by them.
 */
#include "cw_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"

#define HOUR_MS 3600000LL
#define MAX_HOURS (31 * 24)

/* a growing pipeline of commands, each up to 6 arguments copied into owned strings */
struct pipe {
    int n, cap;
    rte_redis_argv *cmds;
    char (*args)[6][160];
    const char *(*ptrs)[6];
};

static int pipe_add(struct pipe *p, int argc, const char *const *argv)
{
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        void *a = realloc(p->cmds, (size_t)cap * sizeof *p->cmds);
        if (a)
            p->cmds = a;
        void *b = realloc(p->args, (size_t)cap * sizeof *p->args);
        if (b)
            p->args = b;
        void *c = realloc(p->ptrs, (size_t)cap * sizeof *p->ptrs);
        if (c)
            p->ptrs = c;
        if (!a || !b || !c)
            return -1;
        p->cap = cap;
    }
    for (int i = 0; i < argc; i++)
        snprintf(p->args[p->n][i], sizeof p->args[p->n][i], "%s", argv[i]);
    p->cmds[p->n].argc = argc; /* argv pointers are set by pipe_run: the arrays may move */
    p->n++;
    return 0;
}

/* run and free the pipeline; replies freed; 0 or -1 (logged) */
static int pipe_run(struct pipe *p, rte_redis *r, redisReply ***keep)
{
    char err[256];
    int rc = 0;
    redisReply **reps = p->n ? calloc((size_t)p->n, sizeof *reps) : NULL;

    for (int i = 0; i < p->n; i++) {
        for (int j = 0; j < p->cmds[i].argc; j++)
            p->ptrs[i][j] = p->args[i][j];
        p->cmds[i].argv = p->ptrs[i];
        p->cmds[i].argvlen = NULL;
    }

    if (p->n > 0 && (!reps || rte_redis_pipeline(r, p->n, p->cmds, reps, err, sizeof err) != 0)) {
        rte_log_warn("cache-warmer: statistics not recorded: %s", reps ? err : "out of memory");
        rc = -1;
    }
    if (keep && rc == 0) {
        *keep = reps;
        reps = NULL;
    }
    for (int i = 0; reps && i < p->n; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
    free(reps);
    return rc;
}

static void pipe_free(struct pipe *p, redisReply **reps)
{
    for (int i = 0; reps && i < p->n; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
    free(reps);
    free(p->cmds);
    free(p->args);
    free(p->ptrs);
    memset(p, 0, sizeof *p);
}

static void stats_key(int64_t ms, char *out, size_t len)
{
    snprintf(out, len, "%s:stats:%lld", CW.c.warm.prefix, (long long)(ms / HOUR_MS));
}

static void marker_key(const char *member_id, const char *tp, char *out, size_t len)
{
    char mk[RTE_MEMBER_KEY_LEN + 1];
    rte_crypto_member_key(CW.c.cache.member_key_secret, member_id, mk);
    snprintf(out, len, "%s:w:%s:%s", CW.c.warm.prefix, mk, tp);
}

static void int_text(int64_t v, char *out, size_t len)
{
    snprintf(out, len, "%lld", (long long)v);
}

static int64_t real_ms(int64_t clock_ms)
{
    int64_t r = rte_clock_real_ms(clock_ms);
    return r < 1000 ? 1000 : r;
}

/* markers for n members and HINCRBY warmed:<source> per distinct source */
static void add_warmed(struct pipe *p, int64_t now, const char *const *members,
                       const char *const *tps, const char *const *sources, int n)
{
    char key[256], val[120], ttl[24], hk[128], cnt[24], field[100], keep[24];
    const char *src[CW_STATS_MAX_SOURCES];
    long per[CW_STATS_MAX_SOURCES];
    int ns = 0;

    int_text(real_ms(CW.c.cache.freshness.success_ms), ttl, sizeof ttl);
    for (int i = 0; i < n; i++) {
        marker_key(members[i], tps[i], key, sizeof key);
        snprintf(val, sizeof val, "%.64s %lld", sources[i], (long long)now);
        pipe_add(p, 5, (const char *const[]){"SET", key, val, "PX", ttl});
        int s = 0;
        while (s < ns && strcmp(src[s], sources[i]) != 0)
            s++;
        if (s == ns && ns < CW_STATS_MAX_SOURCES) {
            src[ns] = sources[i];
            per[ns++] = 0;
        }
        if (s < ns)
            per[s]++;
    }
    stats_key(now, hk, sizeof hk);
    for (int s = 0; s < ns; s++) {
        snprintf(field, sizeof field, "warmed:%.64s", src[s]);
        int_text(per[s], cnt, sizeof cnt);
        pipe_add(p, 4, (const char *const[]){"HINCRBY", hk, field, cnt});
    }
    int_text(real_ms(32 * 24 * HOUR_MS), keep, sizeof keep);
    pipe_add(p, 3, (const char *const[]){"PEXPIRE", hk, keep});
}

/* cw_stats_submitted - the submitting thread (arg: its Redis connection) */
void cw_stats_submitted(void *arg, const rte_warm_submitted *s, const rte_stedi_check *items,
                        const char *const *sources, int n)
{
    rte_redis *r = arg;
    struct pipe p = {0};
    const char **members = malloc((size_t)n * sizeof *members);
    const char **tps = malloc((size_t)n * sizeof *tps);
    char sub[24], info[64], zk[128], hk[128];

    if (members && tps) {
        for (int i = 0; i < n; i++) {
            members[i] = items[i].member_id;
            tps[i] = items[i].trading_partner_id;
        }
        add_warmed(&p, s->submitted_ms, members, tps, sources, n);
        snprintf(zk, sizeof zk, "%s:inflight", CW.c.warm.prefix);
        snprintf(hk, sizeof hk, "%s:inflight_info", CW.c.warm.prefix);
        int_text(s->submitted_ms, sub, sizeof sub);
        snprintf(info, sizeof info, "%lld %d", (long long)s->opened_ms, s->items);
        pipe_add(&p, 4, (const char *const[]){"ZADD", zk, sub, s->batch_id});
        pipe_add(&p, 4, (const char *const[]){"HSET", hk, s->batch_id, info});
        pipe_run(&p, r, NULL);
    }
    pipe_free(&p, NULL);
    free(members);
    free(tps);
}

/* cw_stats_warmed - any thread */
void cw_stats_warmed(rte_redis *r, const char *source, const char *const *member_ids,
                     const char *const *tps, int n)
{
    struct pipe p = {0};
    const char **sources = malloc((size_t)n * sizeof *sources);

    if (sources) {
        for (int i = 0; i < n; i++)
            sources[i] = source;
        add_warmed(&p, rte_clock_now_ms(), member_ids, tps, sources, n);
        pipe_run(&p, r, NULL);
    }
    pipe_free(&p, NULL);
    free(sources);
}

/* one finished batch: completion time, time to warm */
static void complete(rte_redis *r, struct pipe *p, const char *batch_id, int64_t submitted,
                     int64_t now)
{
    char hk[128], zk[128], sk[128], sum[32], cnt[16], err[128];
    redisReply *info;
    long long opened = 0;
    int items = 0;

    rte_series_observe(rte_metric_series0(CM.completion), (double)(now - submitted) / 1000.0);
    snprintf(hk, sizeof hk, "%s:inflight_info", CW.c.warm.prefix);
    info = rte_redis_cmd(r, err, sizeof err, "HGET %s %s", hk, batch_id);
    if (info && info->type == REDIS_REPLY_STRING)
        sscanf(info->str, "%lld %d", &opened, &items);
    if (info)
        freeReplyObject(info);
    if (opened > 0 && items > 0 && now >= opened) {
        stats_key(now, sk, sizeof sk);
        int_text((now - opened) * items, sum, sizeof sum);
        int_text(items, cnt, sizeof cnt);
        pipe_add(p, 4, (const char *const[]){"HINCRBY", sk, "warm_ms", sum});
        pipe_add(p, 4, (const char *const[]){"HINCRBY", sk, "warm_n", cnt});
    }
    snprintf(zk, sizeof zk, "%s:inflight", CW.c.warm.prefix);
    pipe_add(p, 3, (const char *const[]){"ZREM", zk, batch_id});
    pipe_add(p, 3, (const char *const[]){"HDEL", hk, batch_id});
}

static void update_accuracy(rte_redis *r, int64_t now)
{
    cw_stats st;
    char err[128];

    if (cw_stats_query(r, now - 24 * HOUR_MS, now + 1, NULL, 0, &st, err, sizeof err) != 0)
        return;
    for (int s = 0; s < st.nsources; s++) {
        const char *one[] = {st.source[s]};
        cw_stats per;
        if (cw_stats_query(r, now - 24 * HOUR_MS, now + 1, one, 1, &per, err, sizeof err) == 0 &&
            per.warmed > 0)
            rte_gauge_set(CM.accuracy, one, per.accuracy);
    }
}

/* cw_stats_track - timer thread */
void cw_stats_track(rte_redis *r)
{
    static int64_t last_accuracy;
    char zk[128], err[256];
    struct pipe p = {0};
    int64_t now = rte_clock_now_ms();
    redisReply *z;

    snprintf(zk, sizeof zk, "%s:inflight", CW.c.warm.prefix);
    z = rte_redis_cmd(r, err, sizeof err, "ZRANGE %s 0 199 WITHSCORES", zk);
    for (size_t i = 0; z && z->type == REDIS_REPLY_ARRAY && i + 1 < z->elements; i += 2) {
        rte_batch_record rec;
        const char *id = z->element[i]->str;
        int found = rte_batch_registry_get(r, &CW.c.registry, id, &rec, err, sizeof err);
        if (found < 0)
            break;
        if (found == 0 || rec.done)
            complete(r, &p, id, strtoll(z->element[i + 1]->str, NULL, 10), now);
    }
    if (z)
        freeReplyObject(z);
    pipe_run(&p, r, NULL);
    pipe_free(&p, NULL);
    if (now - last_accuracy >= 60000) {
        last_accuracy = now;
        update_accuracy(r, now);
    }
}

/* --- rte.access ---------------------------------------------------------- */

struct access {
    const char *member_key, *tp;
    int hit;
    long count;
    int64_t cached_ms; /* the entry's cached_at, from occurred_at - age_seconds */
};

/* an rte.access event into a (borrowing j); 0, 1 not an access event, -1 invalid */
static int parse_access(const cJSON *j, struct access *a, char *err, size_t errlen)
{
    const char *type, *result, *occurred;
    int64_t count = 1, age = -1;

    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    if (rte_json_string(j, "type", 64, &type, err, errlen) != 0)
        return -1;
    if (strcmp(type, "rte.access") != 0)
        return 1;
    if (rte_json_string(j, "member_key", 64, &a->member_key, err, errlen) != 0 ||
        rte_json_string(j, "trading_partner_id", 80, &a->tp, err, errlen) != 0 ||
        rte_json_string(j, "result", 16, &result, err, errlen) != 0 ||
        rte_json_string(j, "occurred_at", 40, &occurred, err, errlen) != 0 ||
        rte_json_int_opt(j, "count", 1, 1000000000, &count, err, errlen) != 0 ||
        rte_json_int_opt(j, "age_seconds", 0, 100000000, &age, err, errlen) != 0)
        return -1;
    a->hit = strcmp(result, "hit") == 0;
    a->count = (long)count;
    int64_t at = rte_clock_parse(occurred);
    a->cached_ms = age >= 0 && at >= 0 ? at - age * 1000 : -1;
    return 0;
}

/* cw_stats_access - consumer thread of rte.events */
int cw_stats_access(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg, char *reason,
                    size_t reasonlen)
{
    cJSON **docs = calloc((size_t)n, sizeof *docs);
    struct access *a = calloc((size_t)n, sizeof *a);
    int *idx = calloc((size_t)n, sizeof *idx);
    struct pipe get = {0}, put = {0};
    redisReply **reps = NULL;
    char key[256], err[200], hk[128], field[100], cnt[24];
    long acc_w = 0, hit_w = 0, acc_u = 0, hit_u = 0;
    int k = 0, rc = RTE_KAFKA_RETRY;

    (void)arg;
    if (!docs || !a || !idx) {
        snprintf(reason, reasonlen, "out of memory for a batch of %d", n);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        docs[i] = rte_json_parse(msgs[i].payload, msgs[i].len, err, sizeof err);
        int p = docs[i] ? parse_access(docs[i], &a[k], err, sizeof err) : -1;
        if (p < 0) {
            v[i].rc = RTE_KAFKA_POISON;
            snprintf(v[i].reason, sizeof v[i].reason, "%s", err);
        } else if (p == 0) {
            snprintf(key, sizeof key, "%s:w:%s:%s", CW.c.warm.prefix, a[k].member_key, a[k].tp);
            pipe_add(&get, 2, (const char *const[]){"GET", key});
            idx[k++] = i;
        }
    }
    if (k > 0 && pipe_run(&get, rte_service_redis(), &reps) != 0) {
        snprintf(reason, reasonlen, "redis: reading warming markers failed");
        goto out;
    }
    for (int j = 0; j < k; j++) {
        const redisReply *m = reps[j];
        char src[70];
        long long warmed_ms;
        if (!m || m->type != REDIS_REPLY_STRING ||
            sscanf(m->str, "%69s %lld", src, &warmed_ms) != 2) {
            acc_u += a[j].count;
            hit_u += a[j].hit ? a[j].count : 0;
            continue;
        }
        acc_w += a[j].count;
        hit_w += a[j].hit ? a[j].count : 0;
        /* age is in whole seconds: allow one second of rounding */
        if (!a[j].hit || strstr(m->str, " used") != NULL || a[j].cached_ms < warmed_ms - 1000)
            continue;
        char val[120];
        snprintf(val, sizeof val, "%s used", m->str);
        pipe_add(&put, 5, (const char *const[]){"SET", get.args[j][1], val, "XX", "KEEPTTL"});
        stats_key(warmed_ms, hk, sizeof hk);
        snprintf(field, sizeof field, "used:%.64s", src);
        pipe_add(&put, 4, (const char *const[]){"HINCRBY", hk, field, "1"});
    }
    stats_key(rte_clock_now_ms(), hk, sizeof hk);
    const char *names[] = {"acc_w", "hit_w", "acc_u", "hit_u"};
    long vals[] = {acc_w, hit_w, acc_u, hit_u};
    for (int i = 0; i < 4; i++) {
        if (vals[i] == 0)
            continue;
        int_text(vals[i], cnt, sizeof cnt);
        pipe_add(&put, 4, (const char *const[]){"HINCRBY", hk, names[i], cnt});
    }
    pipe_run(&put, rte_service_redis(), NULL);
    rc = RTE_KAFKA_OK;
out:
    for (int i = 0; docs && i < n; i++)
        cJSON_Delete(docs[i]);
    pipe_free(&get, reps);
    pipe_free(&put, NULL);
    free(docs);
    free(a);
    free(idx);
    return rc;
}

/* --- queries ------------------------------------------------------------- */

static int wanted(const char *src, const char *const *sources, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(src, sources[i]) == 0)
            return 1;
    return n == 0;
}

static void add_source(cw_stats *o, const char *src, long v)
{
    int s = 0;
    while (s < o->nsources && strcmp(o->source[s], src) != 0)
        s++;
    if (s == o->nsources) {
        if (s == CW_STATS_MAX_SOURCES)
            return;
        snprintf(o->source[s], sizeof o->source[s], "%s", src);
        o->by_source[s] = 0;
        o->nsources++;
    }
    o->by_source[s] += v;
}

/* cw_stats_query - any thread */
int cw_stats_query(rte_redis *r, int64_t start_ms, int64_t end_ms, const char *const *sources,
                   int nsources, cw_stats *o, char *err, size_t errlen)
{
    int64_t h0 = start_ms / HOUR_MS, h1 = (end_ms - 1) / HOUR_MS;
    struct pipe p = {0};
    redisReply **reps = NULL;
    char hk[128];
    long warm_ms = 0, warm_n = 0, acc[4] = {0};

    memset(o, 0, sizeof *o);
    if (end_ms <= start_ms)
        return 0;
    if (h1 - h0 >= MAX_HOURS)
        h0 = h1 - MAX_HOURS + 1;
    for (int64_t h = h0; h <= h1; h++) {
        stats_key(h * HOUR_MS, hk, sizeof hk);
        pipe_add(&p, 2, (const char *const[]){"HGETALL", hk});
    }
    if (pipe_run(&p, r, &reps) != 0) {
        snprintf(err, errlen, "redis: reading warming statistics failed");
        pipe_free(&p, NULL);
        return -1;
    }
    for (int i = 0; i < p.n; i++) {
        const redisReply *h = reps[i];
        for (size_t j = 0; h && h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements; j += 2) {
            const char *f = h->element[j]->str;
            long val = strtol(h->element[j + 1]->str, NULL, 10);
            if (strncmp(f, "warmed:", 7) == 0 && wanted(f + 7, sources, nsources)) {
                o->warmed += val;
                add_source(o, f + 7, val);
            } else if (strncmp(f, "used:", 5) == 0 && wanted(f + 5, sources, nsources)) {
                o->used += val;
            } else if (strcmp(f, "warm_ms") == 0) {
                warm_ms += val;
            } else if (strcmp(f, "warm_n") == 0) {
                warm_n += val;
            } else {
                const char *names[] = {"acc_w", "hit_w", "acc_u", "hit_u"};
                for (int k = 0; k < 4; k++)
                    if (strcmp(f, names[k]) == 0)
                        acc[k] += val;
            }
        }
    }
    pipe_free(&p, reps);
    o->accuracy = o->warmed > 0 ? (double)o->used / (double)o->warmed : 0.0;
    if (o->accuracy > 1.0)
        o->accuracy = 1.0;
    o->avg_warm_ms = warm_n > 0 ? (double)warm_ms / (double)warm_n : 0.0;
    if (acc[0] > 0 && acc[2] > 0)
        o->hit_improvement = (double)acc[1] / (double)acc[0] - (double)acc[3] / (double)acc[2];
    return 0;
}
