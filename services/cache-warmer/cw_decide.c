/*
 * cw_decide.c - the decision tree (contract in cw_decide.h).
 *
 * Hot path of the consumers (bench/cache-warmer.sh): per request a
 * directory lookup (all of a batch's at once: rte_member_snapshot_find_many
 * overlaps the cache misses of a large directory) and a cache key; per
 * batch one MGET, one enqueue script
 * and one statistics pipeline, whatever the batch size. Buffers grow once
 * per thread and are reused.
 */
#include "cw_decide.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_urgent.h"
#include "rte/clock.h"
#include "rte/log.h"
#include "rte/service.h"

/* per-thread scratch, grown to the largest batch seen */
struct scratch {
    int cap;
    char (*keys)[RTE_CACHE_KEY_MAX];
    const char **argv;
    size_t *lens;
    int *idx;
    rte_warm_item *items;
    cw_req **urgent;
    const rte_member **seen; /* open-addressing set of member pointers, 2*cap slots */
    const char **ids;        /* member ids of the batch, for one directory lookup */
    const rte_member **found;
};

static __thread struct scratch S;

/* the thread's scratch is freed when the thread ends (pthread key destructor) */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    struct scratch *s = p;
    free(s->keys);
    free(s->argv);
    free(s->lens);
    free(s->idx);
    free(s->items);
    free(s->urgent);
    free(s->seen);
    free(s->ids);
    free(s->found);
    memset(s, 0, sizeof *s);
}

static void scratch_key_new(void)
{
    if (pthread_key_create(&scratch_key, scratch_free) != 0)
        rte_panic("cache-warmer: no pthread key for the decision scratch");
}

static int grow(int n)
{
    if (n <= S.cap)
        return 0;
    int cap = n < 64 ? 64 : n;
    if (S.cap == 0) {
        pthread_once(&scratch_once, scratch_key_new);
        pthread_setspecific(scratch_key, &S);
    }
    free(S.keys);
    free(S.argv);
    free(S.lens);
    free(S.idx);
    free(S.items);
    free(S.urgent);
    free(S.seen);
    free(S.ids);
    free(S.found);
    S.keys = malloc((size_t)cap * sizeof *S.keys);
    S.argv = malloc((size_t)(cap + 1) * sizeof *S.argv);
    S.lens = malloc((size_t)(cap + 1) * sizeof *S.lens);
    S.idx = malloc((size_t)cap * sizeof *S.idx);
    S.items = malloc((size_t)cap * sizeof *S.items);
    S.urgent = malloc((size_t)cap * sizeof *S.urgent);
    S.seen = malloc((size_t)cap * 4 * sizeof *S.seen);
    S.ids = malloc((size_t)cap * sizeof *S.ids);
    S.found = malloc((size_t)cap * sizeof *S.found);
    S.cap = cap;
    if (!S.keys || !S.argv || !S.lens || !S.idx || !S.items || !S.urgent || !S.seen || !S.ids ||
        !S.found) {
        S.cap = 0;
        return -1;
    }
    return 0;
}

/* 1 if m was already in the set (slots 4*cap, cleared by the caller) */
static int seen_before(const rte_member *m, int slots)
{
    uintptr_t h = ((uintptr_t)m >> 4) * 0x9E3779B97F4A7C15ULL;
    int i = (int)(h % (uintptr_t)slots);
    while (S.seen[i] != NULL) {
        if (S.seen[i] == m)
            return 1;
        i = (i + 1) % slots;
    }
    S.seen[i] = m;
    return 0;
}

/* cw_priority_of - any thread */
int cw_priority_of(double p)
{
    if (p > CW.c.urgent_above)
        return CW_URGENT;
    if (p > CW.c.preload_above)
        return CW_PRELOAD;
    return CW_BACKGROUND;
}

/* the directory's verdict on q, whose member m was looked up (NULL: none), CW_PENDING if it may be
 * warmed */
static int directory_check(cw_req *q, const rte_member *m, int slots)
{
    if (q->probability >= 0 && q->probability < CW.c.min_probability)
        return CW_SKIP_LOW_PROBABILITY;
    q->m = m;
    if (q->m == NULL)
        return CW_SKIP_UNKNOWN_MEMBER;
    if (!q->m->has_rte_enabled)
        return CW_SKIP_RTE_DISABLED;
    if (q->m->account_status != RTE_MEMBER_ACTIVE)
        return CW_SKIP_INACTIVE_COVERAGE;
    if (seen_before(q->m, slots))
        return CW_SKIP_DUP_MEMBER;
    return CW_PENDING;
}

/* what the cache says of q's entry under its strategy: CW_PENDING, or a skip */
static int cache_check(cw_req *q, const redisReply *v, int64_t now)
{
    rte_cache_entry e;
    char err[160];

    if (v == NULL || v->type != REDIS_REPLY_STRING)
        return CW_PENDING;
    if (rte_cache_entry_decode(v->str, v->len, &e, err, sizeof err) != 0) {
        /* a corrupt entry is as good as none: warming replaces it */
        rte_log_debug("cache-warmer: unreadable cache entry treated as a miss: %s", err);
        return CW_PENDING;
    }
    if (q->strategy == CW_FILL_ONLY)
        return CW_SKIP_CACHED;
    if (!e.is_error && rte_cache_entry_is_fresh(&e, now) &&
        now - e.cached_at_ms < CW.c.fresh_window_ms)
        return CW_SKIP_FRESH;
    q->stale = 1;
    return CW_PENDING;
}

/* one MGET of the entries of the requests still pending that the strategy reads */
static int read_cache(cw_req *q, int n, rte_redis *r, char *err, size_t errlen)
{
    int k = 0;
    redisReply *rep;
    int64_t now = rte_clock_now_ms();

    S.argv[0] = "MGET";
    S.lens[0] = 4;
    for (int i = 0; i < n; i++) {
        if (q[i].outcome != CW_PENDING || q[i].strategy == CW_FORCE)
            continue;
        if (rte_cache_key(CW.c.cache.member_key_secret, q[i].m->member_id,
                          q[i].m->trading_partner_id, S.keys[k], sizeof S.keys[k]) != 0) {
            q[i].outcome = CW_SKIP_UNKNOWN_MEMBER; /* a trading partner no key can hold */
            continue;
        }
        S.argv[k + 1] = S.keys[k];
        S.lens[k + 1] = strlen(S.keys[k]);
        S.idx[k++] = i;
    }
    if (k == 0)
        return 0;
    rep = rte_redis_cmdargv(r, k + 1, S.argv, S.lens, err, errlen);
    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)k) {
        snprintf(err, errlen, "cache-warmer: MGET answered type %d", rep->type);
        freeReplyObject(rep);
        return -1;
    }
    for (int j = 0; j < k; j++)
        q[S.idx[j]].outcome = cache_check(&q[S.idx[j]], rep->element[j], now);
    freeReplyObject(rep);
    return 0;
}

/* the batch queue for every pending non-urgent request; urgent ones into S.urgent */
static int route(cw_req *q, int n, const char *source, rte_redis *r, int *nurgent, char *err,
                 size_t errlen)
{
    int k = 0, u = 0;

    for (int i = 0; i < n; i++) {
        if (q[i].outcome != CW_PENDING)
            continue;
        if (q[i].priority == CW_URGENT && !(q[i].strategy == CW_INTELLIGENT && q[i].stale)) {
            S.urgent[u++] = &q[i];
            continue;
        }
        S.items[k] = (rte_warm_item){.member_id = q[i].m->member_id, .event_id = q[i].event_id};
        S.idx[k++] = i;
    }
    *nurgent = u;
    if (k > 0 &&
        rte_warm_enqueue(CW.warm, r, S.items, k, source, rte_clock_now_ms(), err, errlen) != 0)
        return -1;
    for (int j = 0; j < k; j++) {
        int v = S.items[j].verdict;
        q[S.idx[j]].outcome = v == RTE_WARM_QUEUED      ? CW_QUEUED
                              : v == RTE_WARM_DUP_EVENT ? CW_SKIP_DUP_EVENT
                                                        : CW_SKIP_DUP_MEMBER;
    }
    return 0;
}

/* count outcomes in one add per label set */
static void count(const cw_req *q, int n, const char *source)
{
    long by[CW_NOUTCOMES] = {0}, prio[3] = {0};

    for (int i = 0; i < n; i++) {
        by[q[i].outcome]++;
        if ((q[i].outcome == CW_QUEUED || q[i].outcome == CW_WARMED) && q[i].priority >= 0 &&
            q[i].priority <= 2)
            prio[q[i].priority]++;
    }
    for (int o = CW_SKIP_LOW_PROBABILITY; o <= CW_SKIP_DUP_MEMBER; o++)
        if (by[o] > 0)
            rte_counter_add(CM.skipped, (const char *const[]){cw_outcome_name(o)}, (double)by[o]);
    for (int p = 0; p < 3; p++)
        if (prio[p] > 0)
            rte_counter_add(CM.requests, (const char *const[]){source, cw_priority_name(p)},
                            (double)prio[p]);
}

/* cw_decide - any thread (its own scratch and Redis connection) */
int cw_decide(cw_req *q, int n, const char *source, char *err, size_t errlen)
{
    rte_redis *r = rte_service_redis();
    rte_member_snapshot *snap;
    int nurgent = 0, rc = -1;

    if (n <= 0)
        return 0;
    if (grow(n) != 0) {
        snprintf(err, errlen, "cache-warmer: out of memory for a batch of %d", n);
        return -1;
    }
    memset(S.seen, 0, (size_t)S.cap * 4 * sizeof *S.seen);
    snap = rte_member_dir_acquire(CW.dir);
    /* one lookup for the batch: the directory overlaps its cache misses */
    for (int i = 0; i < n; i++)
        S.ids[i] = q[i].probability >= 0 && q[i].probability < CW.c.min_probability
                       ? NULL
                       : q[i].member_id;
    rte_member_snapshot_find_many(snap, S.ids, (size_t)n, S.found);
    for (int i = 0; i < n; i++) {
        q[i].m = NULL;
        q[i].stale = 0;
        if (q[i].probability >= 0)
            q[i].priority = cw_priority_of(q[i].probability);
        q[i].outcome = directory_check(&q[i], S.found[i], S.cap * 4);
    }
    if (read_cache(q, n, r, err, errlen) != 0 || route(q, n, source, r, &nurgent, err, errlen) != 0)
        goto out;
    if (nurgent > 0 && cw_urgent_run(S.urgent, nurgent, source, r, err, errlen) != 0)
        goto out;
    count(q, n, source);
    rc = 0;
out:
    rte_member_snapshot_release(snap);
    return rc;
}
