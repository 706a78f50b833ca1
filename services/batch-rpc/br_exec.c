/*
 * br_exec.c - the work timer: every replica works due jobs (br_exec.h).
 *
 * A tick looks for due jobs, takes one job's lease at a time and works it
 * for up to batchrpc.slice of real time, chunk by chunk:
 *
 *   todo chunk  members are looked up in the directory and their cache
 *               entries read with one MGET; cache_control decides who needs
 *               Stedi (CACHE_ONLY: nobody - an entry, even stale, completes
 *               the member, none fails it with CACHE_MISS; BYPASS_CACHE:
 *               everybody; DEFAULT, PREFER_CACHED and STALE_WHILE_REVALIDATE:
 *               those without a fresh entry). Those go to Stedi:
 *               REALTIME_ONLY  real-time checks in the limiter's batch class,
 *                              up to the job's max_concurrent_requests at
 *                              once, RetryConfig between attempts, each
 *                              check's rte.* events on rte.events;
 *               BATCH_ONLY     one Stedi batch of the chunk's members
 *                              (<= 10,000), registered with batch_registry
 *                              for webhook-receiver to poll; the members
 *                              move to the job's "wait" list with the
 *                              submit time.
 *   wait chunk  members whose Stedi batch was submitted: an entry written
 *               since the submit completes the member (its error, if it is
 *               an error entry, fails it); the rest wait for the next look
 *               (batchrpc.check_interval).
 * A job with nothing left in either list ends COMPLETED (no member
 * failed), PARTIALLY_COMPLETED or FAILED (every member failed); one past
 * its timeout ends FAILED with TIMEOUT and its remaining members failed.
 *
 * Crashes: a chunk's members stay in the job's "doing" list until the
 * chunk is finished; a replica that dies (or stalls past its lease) leaves
 * them there and the next worker redoes the whole chunk, counting its
 * members in dups (rte_batchrpc_duplicate_checks_total). A long real-time
 * chunk renews the lease while its workers run and stops them when it is
 * lost. A refused Stedi batch submit puts the members back at the end of
 * todo and retries after batchrpc.submit_retry, up to
 * batchrpc.submit_attempts, then fails them; a submit whose outcome is
 * unknown (Stedi may have created the batch) is retried too, counted as
 * duplicates, so no member is lost.
 *
 * Cancel (br_grpc.c) ends the job in Redis: the next take or finish of any
 * replica sees it ended, and real-time workers look before each member.
 */
#include "br_exec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br_events.h"
#include "br_plan.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/service.h"

#define WAIT_CHUNK 1000
#define DUE_MAX 8
#define CODE_MAX 32
#define ERRORS_KEEP 100

enum {
    S_BATCH = RTE__V1__BATCH_EXECUTION_OPTIONS__STRATEGY__STRATEGY_BATCH_ONLY,
    CC_CACHE_ONLY = RTE__V1__CACHE_CONTROL__CACHE_CONTROL_CACHE_ONLY,
    CC_BYPASS = RTE__V1__CACHE_CONTROL__CACHE_CONTROL_BYPASS_CACHE,
};

/* what became of one member of a chunk */
enum verdict { V_NONE = 0, V_HIT, V_REFRESHED, V_FAILED, V_NEED, V_WAIT, V_REQUEUE };

typedef struct member_work {
    const char *id; /* borrowed from the chunk */
    const rte_member *m;
    char key[RTE_CACHE_KEY_MAX];
    int64_t wait_since; /* wait chunks: when its Stedi batch was submitted */
    enum verdict v;
    char code[CODE_MAX];
    char msg[128];
    int64_t dur_ms;
} member_work;

/* counters one chunk adds to its job */
typedef struct tally {
    long completed, failed, hits, misses, refreshed, rt_calls, sb_calls, dups, dur_sum, dur_n,
        chunks;
} tally;

static void count_member(const char *result, long n)
{
    const char *v[] = {result};
    if (n > 0)
        rte_counter_add(BM.members, v, (double)n);
}

static void count_chunk(const char *kind)
{
    const char *v[] = {kind};
    rte_counter_inc(BM.chunks, v);
}

/* keep the last ERRORS_KEEP member errors of a job for GetBatchStatus */
static void record_errors(rte_redis *r, const char *id, const member_work *w, size_t n)
{
    char key[160], item[512], err[256], now[24];
    int k = 0;

    snprintf(key, sizeof key, "%s:j:%s:errors", BR.c.jobs.prefix, id);
    snprintf(now, sizeof now, "%lld", (long long)rte_clock_now_ms());
    for (size_t i = 0; i < n && k < ERRORS_KEEP; i++) {
        if (w[i].v != V_FAILED)
            continue;
        snprintf(item, sizeof item, "%s\x1f%s\x1f%s\x1f%s", now, w[i].code, w[i].msg, w[i].id);
        redisReply *rep = rte_redis_cmd(r, err, sizeof err, "LPUSH %s %s", key, item);
        if (rep)
            freeReplyObject(rep);
        k++;
    }
    if (k > 0) {
        redisReply *rep = rte_redis_cmd(r, err, sizeof err, "LTRIM %s 0 %d", key, ERRORS_KEEP - 1);
        if (rep)
            freeReplyObject(rep);
        rep =
            rte_redis_cmd(r, err, sizeof err, "PEXPIRE %s %lld", key, (long long)BR.c.jobs.keep_ms);
        if (rep)
            freeReplyObject(rep);
    }
}

static void fail(member_work *w, const char *code, const char *msg)
{
    w->v = V_FAILED;
    snprintf(w->code, sizeof w->code, "%.31s", code);
    snprintf(w->msg, sizeof w->msg, "%.127s", msg);
}

/* look members up and read their cache entries with one MGET; entries[i] decoded when found */
static int preflight(rte_redis *r, const rte_member_snapshot *snap, member_work *w, size_t n,
                     rte_cache_entry *entries, int *found, char *err, size_t errlen)
{
    const char **ids = calloc(n + 1, sizeof *ids);
    const rte_member **ms = malloc(sizeof *ms * (n + 1));
    const char **argv = malloc(sizeof *argv * (n + 1));
    size_t *lens = malloc(sizeof *lens * (n + 1));
    size_t *idx = malloc(sizeof *idx * (n + 1));
    size_t k = 1;
    int rc = -1;

    if (!ids || !ms || !argv || !lens || !idx) {
        snprintf(err, errlen, "out of memory for a chunk of %zu", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = w[i].id;
    rte_member_snapshot_find_many(snap, ids, n, ms);
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        found[i] = 0;
        w[i].m = ms[i];
        if (ms[i] == NULL) {
            fail(&w[i], "UNKNOWN_MEMBER", "not in the member directory");
            continue;
        }
        if (rte_cache_key(BR.c.cache.member_key_secret, ms[i]->member_id, ms[i]->trading_partner_id,
                          w[i].key, sizeof w[i].key) != 0) {
            fail(&w[i], "BAD_MEMBER", "trading partner id too long for a cache key");
            continue;
        }
        idx[k] = i;
        argv[k] = w[i].key;
        lens[k++] = strlen(w[i].key);
    }
    if (k == 1) {
        rc = 0;
        goto out;
    }
    redisReply *rep = rte_redis_cmdargv(r, (int)k, argv, lens, err, errlen);
    if (rep == NULL)
        goto out;
    for (size_t j = 1; rep->type == REDIS_REPLY_ARRAY && j < k && j - 1 < rep->elements; j++) {
        redisReply *e = rep->element[j - 1];
        char why[128];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (rte_cache_entry_decode(e->str, e->len, &entries[idx[j]], why, sizeof why) == 0)
            found[idx[j]] = 1;
    }
    freeReplyObject(rep);
    rc = 0;
out:
    free(ids);
    free(ms);
    free(argv);
    free(lens);
    free(idx);
    return rc;
}

/* --- real-time checks -------------------------------------------------------------- */

typedef struct rt_pool {
    const br_job *j;
    member_work *w;
    size_t *need;
    size_t nneed;
    atomic_size_t next;
    atomic_int stop;
    atomic_int running;
    atomic_long calls;
    int64_t deadline_mono;
    int retry_max;
    int64_t retry_initial_ms, retry_max_ms;
    double retry_mult;
} rt_pool;

struct started {
    const char *key, *tp, *job;
    int64_t t0;
};

static void on_started(void *arg, const rte_slot_lease *lease)
{
    struct started *s = arg;
    (void)lease;
    int64_t wait = rte_clock_mono_ms() - s->t0;
    br_events_lifecycle("rte.scheduled", s->key, s->tp, s->job, wait, NULL, NULL);
    br_events_lifecycle("rte.started", s->key, s->tp, s->job, wait, NULL, NULL);
}

/* the first attempt found no batch-class slot: the check waits in the limiter's queue */
static void on_enqueued(void *arg)
{
    struct started *s = arg;
    br_events_lifecycle("rte.enqueued", s->key, s->tp, s->job, -1, NULL,
                        "waiting for a batch-class slot");
}

static int job_ended(rte_redis *r, const char *id)
{
    char err[256];
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "HGET %s:j:%s ended", BR.c.jobs.prefix, id);
    int ended = rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "1") == 0;
    if (rep)
        freeReplyObject(rep);
    return ended;
}

static int retryable(enum rte_stedi_outcome o)
{
    return o == RTE_STEDI_NO_SLOT || o == RTE_STEDI_RATE_LIMITED || o == RTE_STEDI_UNAVAILABLE ||
           o == RTE_STEDI_TIMEOUT || o == RTE_STEDI_FAILED;
}

static void check_one(rt_pool *p, member_work *w, rte_redis *r)
{
    const rte_member *m = w->m;
    rte_stedi_check chk = {.trading_partner_id = m->trading_partner_id,
                           .member_id = m->member_id,
                           .first_name = m->first_name,
                           .last_name = m->last_name,
                           .date_of_birth = m->date_of_birth};
    char mkey[40], err[256];
    rte_stedi_result out = {.outcome = RTE_STEDI_FAILED};
    int64_t t0 = rte_clock_mono_ms(), backoff = p->retry_initial_ms;
    int rc = -1;

    /* the member key is the cache key's hash part: rte:eligibility:{member_key}:{tp} */
    const char *a = strchr(w->key, ':');
    a = a ? strchr(a + 1, ':') : NULL;
    snprintf(mkey, sizeof mkey, "%.32s", a ? a + 1 : "");
    for (int attempt = 1; attempt <= p->retry_max; attempt++) {
        struct started s = {mkey, m->trading_partner_id, p->j->id, rte_clock_mono_ms()};
        br_events_lifecycle("rte.submitted", mkey, m->trading_partner_id, p->j->id, -1, NULL, NULL);
        int64_t c0 = rte_clock_mono_ms();
        rc = rte_stedi_realtime_notify(BR.stedi, &chk, RTE_SLOT_BATCH, p->deadline_mono,
                                       on_enqueued, on_started, &s, &out);
        int64_t latency = rte_clock_mono_ms() - c0;
        const char *o = rte_stedi_outcome_name(out.outcome);
        const char *v[] = {o};
        rte_counter_inc(BM.realtime, v);
        if (out.outcome != RTE_STEDI_NO_SLOT)
            atomic_fetch_add(&p->calls, 1);
        if (rc == 0) {
            const char *type =
                out.outcome == RTE_STEDI_PAYER_ERROR && strcmp(out.entry.error_code, "42") == 0
                    ? "rte.downtime"
                    : "rte.completed";
            br_events_lifecycle(type, mkey, m->trading_partner_id, p->j->id, latency, o,
                                out.outcome == RTE_STEDI_PAYER_ERROR ? out.message : NULL);
            break;
        }
        br_events_lifecycle(out.outcome == RTE_STEDI_TIMEOUT ? "rte.timeout" : "rte.failed", mkey,
                            m->trading_partner_id, p->j->id, latency, o, out.message);
        if (!retryable(out.outcome) || attempt == p->retry_max || atomic_load(&p->stop) ||
            rte_clock_mono_ms() + backoff >= p->deadline_mono)
            break;
        /* RetryConfig intervals are simulated time, like every other job duration */
        rte_clock_sleep_ms(backoff);
        backoff = (int64_t)((double)backoff * p->retry_mult);
        if (backoff > p->retry_max_ms)
            backoff = p->retry_max_ms;
    }
    w->dur_ms = rte_clock_mono_ms() - t0;
    if (rc != 0) {
        fail(w, rte_stedi_outcome_name(out.outcome), out.message);
        return;
    }
    if (rte_cache_put(r, w->key, &out.entry, &BR.c.cache.freshness, err, sizeof err) < 0)
        rte_log_warn("batch %s: cache write failed (%s); the member's answer is not cached",
                     p->j->id, err);
    if (out.entry.is_error)
        fail(w, out.entry.error_code[0] ? out.entry.error_code : "PAYER_ERROR",
             out.entry.error_message);
    else
        w->v = V_REFRESHED;
}

static void *rt_worker(void *arg)
{
    rt_pool *p = arg;
    rte_redis *r = rte_service_redis();

    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->nneed || atomic_load(&p->stop))
            break;
        if (job_ended(r, p->j->id)) {
            atomic_store(&p->stop, 1);
            break;
        }
        check_one(p, &p->w[p->need[i]], r);
    }
    atomic_fetch_sub(&p->running, 1);
    return NULL;
}

/* run the needed members' checks, renewing the lease meanwhile; -1 when the lease was lost */
static int realtime(rte_redis *r, const br_job *j, member_work *w, size_t *need, size_t nneed,
                    tally *t)
{
    rt_pool p = {.j = j, .w = w, .need = need, .nneed = nneed};
    const Rte__V1__RetryConfig *rc = j->opts->retry_config;
    int nthreads = j->opts->max_concurrent_requests > 0 ? j->opts->max_concurrent_requests : 1;
    if (j->conc_cap > 0 && nthreads > j->conc_cap)
        nthreads = j->conc_cap;
    pthread_t th[16];
    int started = 0, lost = 0;
    char err[256];
    int64_t job_deadline = j->started_ms + (j->opts->timeout ? j->opts->timeout->seconds * 1000 +
                                                                   j->opts->timeout->nanos / 1000000
                                                             : BR.c.timeout_ms);
    int64_t left = job_deadline - rte_clock_now_ms();

    p.deadline_mono = rte_clock_mono_ms() + rte_clock_real_ms(left > 0 ? left : 0);
    p.retry_max = rc && rc->max_attempts > 0 ? rc->max_attempts : 3;
    p.retry_initial_ms = rc && rc->initial_interval ? rc->initial_interval->seconds * 1000 +
                                                          rc->initial_interval->nanos / 1000000
                                                    : 1000;
    p.retry_max_ms = rc && rc->max_interval
                         ? rc->max_interval->seconds * 1000 + rc->max_interval->nanos / 1000000
                         : 60000;
    p.retry_mult = rc && rc->backoff_multiplier >= 1 ? rc->backoff_multiplier : 2.0;
    if (nthreads > 15)
        nthreads = 15;
    if ((size_t)nthreads > nneed)
        nthreads = (int)nneed;
    atomic_init(&p.next, 0);
    atomic_init(&p.stop, 0);
    atomic_init(&p.running, nthreads);
    atomic_init(&p.calls, 0);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&th[i], NULL, rt_worker, &p) != 0) {
            atomic_fetch_sub(&p.running, nthreads - i);
            break;
        }
        started++;
    }
    if (started == 0) {
        /* no thread: do it on this one */
        atomic_fetch_add(&p.running, 1);
        rt_worker(&p);
    }
    int64_t renew_at = rte_clock_mono_ms() + BR.c.jobs.lease_ms / 3;
    while (atomic_load(&p.running) > 0) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        if (rte_clock_mono_ms() >= renew_at) {
            renew_at = rte_clock_mono_ms() + BR.c.jobs.lease_ms / 3;
            if (rte_jobs_lease(r, &BR.c.jobs, j->id, BR.owner, err, sizeof err) == 0) {
                rte_log_warn("batch %s: lease lost mid-chunk; stopping its checks (the next "
                             "worker redoes the chunk)",
                             j->id);
                atomic_store(&p.stop, 1);
                lost = 1;
            }
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    t->rt_calls += atomic_load(&p.calls);
    return lost ? -1 : 0;
}

/* --- Stedi batches ------------------------------------------------------------------ */

/* submit the needed members as one Stedi batch; 0 submitted (members to wait), 1 refused, -1 */
static int submit_batch(rte_redis *r, br_job *j, member_work *w, size_t *need, size_t nneed,
                        char *bid, size_t bidlen, char *serr, size_t serrlen)
{
    rte_stedi_check *items = calloc(nneed, sizeof *items);
    rte_batch_member *bm = calloc(nneed, sizeof *bm);
    char(*sti)[24] = calloc(nneed, sizeof *sti);
    char name[101], prefix[40], err[256];
    int rc = -1;

    if (!items || !bm || !sti) {
        snprintf(serr, serrlen, "out of memory for %zu checks", nneed);
        goto out;
    }
    for (size_t k = 0; k < nneed; k++) {
        const rte_member *m = w[need[k]].m;
        snprintf(sti[k], sizeof sti[k], "b%zu", k);
        items[k] = (rte_stedi_check){.trading_partner_id = m->trading_partner_id,
                                     .member_id = m->member_id,
                                     .first_name = m->first_name,
                                     .last_name = m->last_name,
                                     .date_of_birth = m->date_of_birth,
                                     .submitter_id = sti[k]};
        bm[k] = (rte_batch_member){sti[k], w[need[k]].key, "30"};
    }
    snprintf(prefix, sizeof prefix, "batch-rpc-%.8s", j->id + 3);
    rte_stedi_batch_name(prefix, name, sizeof name);
    int src = rte_stedi_batch_submit(BR.stedi, items, nneed, name, 0, bid, bidlen, serr, serrlen);
    if (src != 0) {
        const char *v[] = {src == RTE_STEDI_E_UNKNOWN ? "unknown" : "refused"};
        rte_counter_inc(BM.stedi, v);
        rc = 1;
        goto out;
    }
    const char *v[] = {"submitted"};
    rte_counter_inc(BM.stedi, v);
    rte_series_inc(rte_metric_series0(BM.batches));
    rte_series_add(rte_metric_series0(BM.checks), (double)nneed);
    rte_batch_info bi = {.batch_id = bid,
                         .source = "batch-rpc",
                         .items = (int)nneed,
                         .submitted_ms = rte_clock_now_ms(),
                         .members = bm,
                         .nmembers = (int)nneed};
    if (rte_batch_registry_register(r, &BR.c.registry, &bi, rte_clock_now_ms(), err, sizeof err) !=
        0) {
        /* the batch exists at Stedi but nobody will poll it: its members are redone */
        snprintf(serr, serrlen, "Stedi batch %s not registered: %s", bid, err);
        rc = 1;
        goto out;
    }
    rc = 0;
out:
    free(items);
    free(bm);
    free(sti);
    return rc;
}

/* --- chunks --------------------------------------------------------------------------- */

static void fmt(char *buf, size_t len, long v)
{
    snprintf(buf, len, "%ld", v);
}

/* close the chunk with t's counters, requeuing what must come back; rte_jobs_finish's codes */
static int finish(rte_redis *r, const br_job *j, const tally *t, const char *const *set, int nset,
                  const char *to, const char **req, size_t nreq)
{
    char v[11][24], err[256];
    long vals[11] = {t->completed, t->failed, t->hits,    t->misses, t->refreshed, t->rt_calls,
                     t->sb_calls,  t->dups,   t->dur_sum, t->dur_n,  t->chunks};
    const char *names[11] = {"completed", "failed", "hits",    "misses", "refreshed",  "rt_calls",
                             "sb_calls",  "dups",   "dur_sum", "dur_n",  "chunks_done"};
    const char *incr[22];
    int ni = 0;

    for (int i = 0; i < 11; i++) {
        if (vals[i] == 0)
            continue;
        fmt(v[i], sizeof v[i], vals[i]);
        incr[2 * ni] = names[i];
        incr[2 * ni + 1] = v[i];
        ni++;
    }
    rte_jobs_finish_args a = {.incr = incr,
                              .nincr = ni,
                              .set = set,
                              .nset = nset,
                              .requeue_to = to,
                              .requeue = req,
                              .nrequeue = nreq};
    int rc = rte_jobs_finish(r, &BR.c.jobs, j->id, BR.owner, &a, err, sizeof err);
    if (rc == -1)
        rte_log_warn("batch %s: chunk not recorded (%s); it is redone by the next worker", j->id,
                     err);
    return rc;
}

static void tally_verdicts(const member_work *w, size_t n, tally *t)
{
    for (size_t i = 0; i < n; i++) {
        switch (w[i].v) {
        case V_HIT:
            t->completed++, t->hits++;
            break;
        case V_REFRESHED:
            t->completed++, t->refreshed++;
            break;
        case V_FAILED:
            t->failed++;
            break;
        default:
            break;
        }
        if (w[i].dur_ms > 0)
            t->dur_sum += w[i].dur_ms, t->dur_n++;
    }
}

/* a chunk of the todo list; 0 done, 1 come back later (submit refused), -1 stop */
static int work_todo(rte_redis *r, br_job *j, rte_jobs_chunk *c, int64_t *retry_at)
{
    size_t n = c->n, nneed = 0, nreq = 0;
    member_work *w = calloc(n, sizeof *w);
    rte_cache_entry *e = malloc(sizeof *e * n);
    int *found = calloc(n, sizeof *found);
    size_t *need = calloc(n, sizeof *need);
    const char **req = calloc(n, sizeof *req);
    char(*waits)[RTE_CACHE_KEY_MAX + 160] = NULL;
    rte_member_snapshot *snap = rte_member_dir_acquire(BR.dir);
    int64_t now = rte_clock_now_ms();
    tally t = {.chunks = 1};
    char err[256], bid[RTE_BATCH_ID_MAX] = "", serr[512], *ids = NULL;
    const char *set[4];
    int nset = 0, rc = -1, bypass = j->cache_control == CC_BYPASS;

    if (!w || !e || !found || !need || !req) {
        rte_log_error("batch %s: out of memory for a chunk of %zu", j->id, n);
        goto out;
    }
    if (c->resumed) {
        t.dups = (long)n;
        rte_counter_add(BM.dups, NULL, (double)n);
        count_chunk("resumed");
    }
    for (size_t i = 0; i < n; i++)
        w[i].id = c->items[i];
    if (preflight(r, snap, w, n, e, found, err, sizeof err) != 0) {
        rte_log_warn("batch %s: cache pre-flight failed (%s); retrying", j->id, err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (w[i].v == V_FAILED)
            continue;
        if (j->cache_control == CC_CACHE_ONLY) {
            if (found[i]) {
                w[i].v = V_HIT;
            } else {
                fail(&w[i], "CACHE_MISS", "no cached entry (CACHE_ONLY never calls Stedi)");
                t.misses++;
            }
        } else if (!bypass && found[i] && rte_cache_entry_is_fresh(&e[i], now)) {
            w[i].v = V_HIT;
        } else {
            w[i].v = V_NEED;
            need[nneed++] = i;
        }
    }
    if (nneed > 0 && (int)j->opts->strategy != S_BATCH) {
        count_chunk("realtime");
        if (realtime(r, j, w, need, nneed, &t) != 0) {
            rc = -1;
            goto out;
        }
        for (size_t k = 0; k < nneed; k++)
            if (w[need[k]].v == V_NEED) /* stopped by a cancel: the job has ended anyway */
                w[need[k]].v = V_NONE;
        t.misses += (long)nneed;
    } else if (nneed > 0) {
        count_chunk("batch");
        int s = submit_batch(r, j, w, need, nneed, bid, sizeof bid, serr, sizeof serr);
        long attempts = 0;
        if (s == 1) {
            redisReply *rep = rte_redis_cmd(r, err, sizeof err, "HINCRBY %s:j:%s sb_attempts 1",
                                            BR.c.jobs.prefix, j->id);
            attempts = rep && rep->type == REDIS_REPLY_INTEGER ? (long)rep->integer : 1;
            if (rep)
                freeReplyObject(rep);
            if (attempts >= BR.c.submit_attempts) {
                rte_log_error("batch %s: Stedi refused a batch of %zu %ld times (%s); those "
                              "members fail",
                              j->id, nneed, attempts, serr);
                for (size_t k = 0; k < nneed; k++)
                    fail(&w[need[k]], "STEDI_REFUSED", serr);
                t.misses += (long)nneed;
            } else {
                rte_log_warn("batch %s: Stedi batch submit of %zu failed (attempt %ld of %d): "
                             "%s; retrying in %lld ms",
                             j->id, nneed, attempts, BR.c.submit_attempts, serr,
                             (long long)BR.c.submit_retry_ms);
                for (size_t k = 0; k < nneed; k++)
                    req[nreq++] = w[need[k]].id, w[need[k]].v = V_REQUEUE;
                *retry_at = now + BR.c.submit_retry_ms;
            }
        } else if (s == 0) {
            waits = calloc(nneed, sizeof *waits);
            ids = malloc(strlen(j->sb_ids) + strlen(bid) + 2);
            if (waits == NULL || ids == NULL) {
                rte_log_error("batch %s: out of memory after submitting Stedi batch %s", j->id,
                              bid);
                goto out;
            }
            for (size_t k = 0; k < nneed; k++) {
                snprintf(waits[k], sizeof waits[k], "%lld|%s", (long long)now, w[need[k]].id);
                req[nreq++] = waits[k];
                w[need[k]].v = V_WAIT;
            }
            snprintf(ids, strlen(j->sb_ids) + strlen(bid) + 2, "%s%s%s", j->sb_ids,
                     j->sb_ids[0] ? "," : "", bid);
            set[nset++] = "sb_ids";
            set[nset++] = ids;
            set[nset++] = "sb_attempts";
            set[nset++] = "0";
            nset /= 2;
            t.sb_calls = 1;
            t.misses += (long)nneed;
            rte_log_info("batch %s: Stedi batch %s of %zu members submitted and registered", j->id,
                         bid, nneed);
        } else {
            goto out;
        }
    } else {
        count_chunk("cache");
    }
    tally_verdicts(w, n, &t);
    int f = finish(r, j, &t, set, nset, waits ? "wait" : nreq ? "todo" : NULL, req, nreq);
    if (f == 0) {
        record_errors(r, j->id, w, n);
        count_member("cache_hit", t.hits);
        count_member("refreshed", t.refreshed);
        count_member("failed", t.failed);
        if (j->total <= BR.c.member_events_max)
            for (size_t i = 0; i < n; i++)
                if (w[i].v == V_REFRESHED || (w[i].v == V_FAILED && w[i].dur_ms > 0))
                    br_events_member(r, j->id, w[i].id, w[i].v == V_REFRESHED, w[i].dur_ms,
                                     w[i].v == V_FAILED ? w[i].code : NULL);
        rc = nreq && !waits ? 1 : 0;
    }
out:
    rte_member_snapshot_release(snap);
    free(w);
    free(e);
    free(found);
    free(need);
    free(req);
    free(waits);
    free(ids);
    return rc;
}

/* a chunk of the wait list: members whose entries the batch results may have written */
static int work_wait(rte_redis *r, br_job *j, rte_jobs_chunk *c)
{
    size_t n = c->n, nreq = 0;
    member_work *w = calloc(n, sizeof *w);
    rte_cache_entry *e = malloc(sizeof *e * n);
    int *found = calloc(n, sizeof *found);
    const char **req = calloc(n, sizeof *req);
    char(*ids)[160] = calloc(n, sizeof *ids);
    rte_member_snapshot *snap = rte_member_dir_acquire(BR.dir);
    tally t = {0};
    char err[256];
    int rc = -1;

    if (!w || !e || !found || !req || !ids)
        goto out;
    count_chunk("wait");
    for (size_t i = 0; i < n; i++) {
        const char *bar = memchr(c->items[i], '|', c->lens[i]);
        w[i].wait_since = strtoll(c->items[i], NULL, 10);
        snprintf(ids[i], sizeof ids[i], "%s", bar ? bar + 1 : c->items[i]);
        w[i].id = ids[i];
    }
    if (preflight(r, snap, w, n, e, found, err, sizeof err) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (w[i].v == V_FAILED)
            continue;
        /* written since the submit (5 s of slack for clocks of different processes) */
        if (found[i] && e[i].cached_at_ms >= w[i].wait_since - 5000) {
            if (e[i].is_error)
                fail(&w[i], e[i].error_code[0] ? e[i].error_code : "PAYER_ERROR",
                     e[i].error_message);
            else
                w[i].v = V_REFRESHED;
        } else {
            req[nreq++] = c->items[i];
        }
    }
    tally_verdicts(w, n, &t);
    rc = finish(r, j, &t, NULL, 0, "wait", req, nreq);
    if (rc == 0) {
        record_errors(r, j->id, w, n);
        count_member("refreshed", t.refreshed);
        count_member("failed", t.failed);
    }
out:
    rte_member_snapshot_release(snap);
    free(w);
    free(e);
    free(found);
    free(req);
    free(ids);
    return rc;
}

static int reload(rte_redis *r, br_job *j);

/* end j with status (and why); remaining members fail when fail_rest */
static void end_job(rte_redis *r, br_job *j, int status, const char *code, const char *msg,
                    int fail_rest)
{
    char st[8], err[256];
    const char *lists[] = {"todo", "wait"};
    char owed[32];
    snprintf(st, sizeof st, "%d", status);
    /* a STARTED still owed stays owed with the final event */
    br_events_owed_of(r, j->id, owed, sizeof owed);
    const char *f[] = {"status",       st,     "ecode", code ? code : "", "emsg",
                       msg ? msg : "", "owed", owed};

    if (br_events_owe(r, j->id, err, sizeof err) != 0) {
        rte_log_warn("batch %s: could not end it (%s); the next worker retries", j->id, err);
        return;
    }
    long dropped = rte_jobs_end(r, &BR.c.jobs, j->id, BR.owner, f, 4, lists, 2, rte_clock_now_ms(),
                                err, sizeof err);
    if (dropped < 0) {
        if (dropped == -1)
            rte_log_warn("batch %s: could not end it (%s); the next worker retries", j->id, err);
        return;
    }
    if (fail_rest && dropped > 0) {
        redisReply *rep = rte_redis_cmd(r, err, sizeof err, "HINCRBY %s:j:%s failed %ld",
                                        BR.c.jobs.prefix, j->id, dropped);
        if (rep)
            freeReplyObject(rep);
        count_member("failed", dropped);
    }
    if (reload(r, j) != 0)
        return; /* still owed: a tick sends it */
    (void)br_events_emit_owed(r, j, owed);
    const char *v[] = {status == RTE__V1__BATCH_STATUS__BATCH_STATUS_COMPLETED ? "completed"
                       : status == RTE__V1__BATCH_STATUS__BATCH_STATUS_PARTIALLY_COMPLETED
                           ? "partially_completed"
                           : "failed"};
    rte_counter_inc(BM.jobs, v);
    rte_log_info("audit: batch %s of %s (%s) ended %s: %ld members, %ld completed (%ld from "
                 "cache), %ld failed, %ld duplicate checks%s%s",
                 j->id, j->caller, j->service, br_status_name(j->status), j->total, j->completed,
                 j->hits, j->failed, j->dups, code ? "; " : "", code ? code : "");
}

static int64_t timeout_ms(const br_job *j)
{
    const Rte__V1__Duration *d = j->opts->timeout;
    int64_t t = d ? d->seconds * 1000 + d->nanos / 1000000 : 0;
    return t > 0 ? t : BR.c.timeout_ms;
}

static int reload(rte_redis *r, br_job *j)
{
    char err[256], id[RTE_JOBS_ID_MAX];
    snprintf(id, sizeof id, "%s", j->id);
    br_job_clear(j);
    return br_job_load(r, id, j, err, sizeof err) == 1 ? 0 : -1;
}

/*
 * adaptive rate (source: "Adaptive Rate Limiting", by Stedi concurrency):
 * fewer than 5 slots used by the other classes (interactive, warming) - the
 * job's own concurrency; fewer than 10 - at most 2 at once; else pause. The
 * batch class's own leases do not count, or a job would throttle itself.
 * Returns 0 to go on (j->conc_cap set), 1 to pause.
 */
static int adaptive(br_job *j)
{
    int by[RTE_SLOT_NCLASSES] = {0};
    rte_slots *s = rte_stedi_slots(BR.stedi);

    j->conc_cap = 0;
    if (s == NULL || (int)j->opts->strategy == S_BATCH || j->cache_control == CC_CACHE_ONLY)
        return 0;
    if (rte_slots_in_use(s, by) < 0)
        return 0; /* the limiter itself refuses calls while Redis is out */
    int others = by[RTE_SLOT_INTERACTIVE] + by[RTE_SLOT_WARMING];
    if (others >= 10)
        return 1;
    if (others >= 5)
        j->conc_cap = 2;
    return 0;
}

/*
 * the todo chunk's gate under load spreading and time-zone groups: 0 (take
 * *take members now), the clock ms it may start, or -1 (Redis; logged).
 * A chunk left in "doing" by a crash was gated already: it goes at once.
 */
static int64_t todo_gate(rte_redis *r, const br_job *j, int size, int *take)
{
    br_plan_group g[BR_PLAN_GROUPS_MAX];
    char err[256];
    int ng;

    *take = size;
    long doing = rte_jobs_len(r, &BR.c.jobs, j->id, "doing", err, sizeof err);
    long todo = doing == 0 ? rte_jobs_len(r, &BR.c.jobs, j->id, "todo", err, sizeof err) : 0;
    if (doing < 0 || todo < 0) {
        rte_log_warn("batch %s: %s", j->id, err);
        return -1;
    }
    if (doing > 0 || todo == 0)
        return 0;
    ng = j->groups && j->groups[0] ? br_plan_groups_parse(j->groups, g, BR_PLAN_GROUPS_MAX) : 0;
    if (ng <= 0) {
        /* one group from the job's start (jobs planned before member time zones) */
        memset(g, 0, sizeof g[0]);
        g[0].start_ms = j->started_ms;
        g[0].n = j->total;
        ng = 1;
    }
    return br_plan_gate(g, ng, j->spread_ms, j->multi, j->total - todo, size, j->id,
                        rte_clock_now_ms(), take);
}

/* work job id (its lease is ours) for one slice */
static void work(rte_redis *r, const char *id)
{
    br_job j;
    char err[256], now_s[24], st[8];
    int64_t now = rte_clock_now_ms(), slice_end = rte_clock_mono_ms() + BR.c.slice_ms;
    int64_t next = 0;

    if (br_job_load(r, id, &j, err, sizeof err) != 1) {
        redisReply *rep = rte_redis_cmd(r, err, sizeof err, "ZREM %s:due %s", BR.c.jobs.prefix, id);
        if (rep)
            freeReplyObject(rep);
        return;
    }
    if (j.status == RTE__V1__BATCH_STATUS__BATCH_STATUS_PENDING) {
        if (now < j.start_ms) {
            rte_jobs_reschedule(r, &BR.c.jobs, id, j.start_ms, err, sizeof err);
            goto out;
        }
        snprintf(now_s, sizeof now_s, "%lld", (long long)now);
        snprintf(st, sizeof st, "%d", RTE__V1__BATCH_STATUS__BATCH_STATUS_RUNNING);
        const char *f[] = {"status", st, "started_ms", now_s, "owed", "STARTED"};
        if (br_events_owe(r, id, err, sizeof err) != 0 ||
            rte_jobs_set(r, &BR.c.jobs, id, BR.owner, f, 3, err, sizeof err) != 0)
            goto out;
        j.status = RTE__V1__BATCH_STATUS__BATCH_STATUS_RUNNING;
        j.started_ms = now;
        (void)br_events_emit_owed(r, &j, "STARTED");
        const char *v[] = {"started"};
        rte_counter_inc(BM.jobs, v);
        rte_log_info("audit: batch %s of %s (%s) started: %ld members, %s", id, j.caller, j.service,
                     j.total,
                     (int)j.opts->strategy == S_BATCH ? "Stedi batch API" : "real-time API");
    }
    while (rte_clock_mono_ms() < slice_end && !rte_service_draining()) {
        rte_jobs_chunk c;
        memset(&c, 0, sizeof c);
        now = rte_clock_now_ms();
        if (now > j.started_ms + timeout_ms(&j)) {
            end_job(r, &j, RTE__V1__BATCH_STATUS__BATCH_STATUS_FAILED, "TIMEOUT",
                    "the job's timeout passed before every member was checked", 1);
            goto out;
        }
        if (adaptive(&j)) {
            next = now + BR.c.busy_pause_ms;
            rte_log_info("batch %s: Stedi slots busy with interactive traffic; pausing", id);
            break;
        }
        int size = (int)j.opts->strategy == S_BATCH && j.cache_control != CC_CACHE_ONLY
                       ? BR.c.batch_chunk
                       : BR.c.chunk;
        int64_t gate = todo_gate(r, &j, size, &size);
        if (gate < 0)
            goto out;
        /* gate > 0: the next chunk's time under spreading or its zone's window; members
         * waiting on Stedi batches are still looked at meanwhile */
        int got = gate > 0 ? 0
                           : rte_jobs_take(r, &BR.c.jobs, id, BR.owner, "todo", size, &c, err,
                                           sizeof err);
        if (got < 0) {
            if (got == -1)
                rte_log_warn("batch %s: %s", id, err);
            goto out;
        }
        if (got > 0) {
            int64_t retry_at = 0;
            int w =
                strcmp(c.src, "wait") == 0 ? work_wait(r, &j, &c) : work_todo(r, &j, &c, &retry_at);
            rte_jobs_chunk_free(&c);
            if (w < 0 || reload(r, &j) != 0)
                goto out;
            br_events_progress(r, &j);
            if (w == 1) {
                next = retry_at;
                break;
            }
            continue;
        }
        rte_jobs_chunk_free(&c);
        long waiting = rte_jobs_len(r, &BR.c.jobs, id, "wait", err, sizeof err);
        if (waiting < 0)
            goto out;
        if (waiting > 0) {
            /* one pass over the waiting members, then the next look */
            for (long seen = 0; seen < waiting && !rte_service_draining();) {
                got = rte_jobs_take(r, &BR.c.jobs, id, BR.owner, "wait", WAIT_CHUNK, &c, err,
                                    sizeof err);
                if (got <= 0) {
                    rte_jobs_chunk_free(&c);
                    if (got < 0)
                        goto out;
                    break;
                }
                int w =
                    strcmp(c.src, "wait") == 0 ? work_wait(r, &j, &c) : work_todo(r, &j, &c, &next);
                seen += got;
                rte_jobs_chunk_free(&c);
                if (w < 0)
                    goto out;
            }
            if (reload(r, &j) != 0)
                goto out;
            if (rte_jobs_len(r, &BR.c.jobs, id, "wait", err, sizeof err) > 0 ||
                rte_jobs_len(r, &BR.c.jobs, id, "todo", err, sizeof err) > 0) {
                br_events_progress(r, &j);
                next = rte_clock_now_ms() + BR.c.check_interval_ms;
                if (gate > 0 && gate < next)
                    next = gate;
                break;
            }
            continue;
        }
        if (gate > 0) {
            next = gate;
            break;
        }
        /* nothing left */
        int status = j.failed == 0      ? RTE__V1__BATCH_STATUS__BATCH_STATUS_COMPLETED
                     : j.completed == 0 ? RTE__V1__BATCH_STATUS__BATCH_STATUS_FAILED
                                        : RTE__V1__BATCH_STATUS__BATCH_STATUS_PARTIALLY_COMPLETED;
        end_job(r, &j, status,
                status == RTE__V1__BATCH_STATUS__BATCH_STATUS_FAILED ? "ALL_MEMBERS_FAILED" : NULL,
                status == RTE__V1__BATCH_STATUS__BATCH_STATUS_FAILED
                    ? "no member could be checked (see errors)"
                    : NULL,
                0);
        goto out;
    }
    /* come back: at once (others due earlier go first), or when asked */
    rte_jobs_reschedule(r, &BR.c.jobs, id, next ? next : rte_clock_now_ms(), err, sizeof err);
out:
    br_job_clear(&j);
}

/* br_exec_tick - timer thread */
void br_exec_tick(void *arg)
{
    static int64_t reload_at;
    rte_redis *r = rte_service_redis();
    char ids[DUE_MAX][RTE_JOBS_ID_MAX], err[256];
    int n;

    (void)arg;
    if (rte_clock_now_ms() >= reload_at) {
        reload_at = rte_clock_now_ms() + BR.c.members_reload_ms;
        if (rte_member_dir_reload_if_changed(BR.dir, err, sizeof err) < 0)
            rte_log_warn("member directory reload failed (%s); keeping the loaded one", err);
    }
    br_events_owed_tick(r);
    n = rte_jobs_due(r, &BR.c.jobs, rte_clock_now_ms(), ids, DUE_MAX, err, sizeof err);
    if (n < 0) {
        rte_log_warn("batch jobs: cannot look for due jobs (%s); next tick retries", err);
        return;
    }
    for (int i = 0; i < n && !rte_service_draining(); i++) {
        if (rte_jobs_lease(r, &BR.c.jobs, ids[i], BR.owner, err, sizeof err) != 1)
            continue;
        work(r, ids[i]);
        rte_jobs_release(r, &BR.c.jobs, ids[i], BR.owner, err, sizeof err);
    }
}
