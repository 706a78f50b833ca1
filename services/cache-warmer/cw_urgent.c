/*
 * cw_urgent.c - urgent warming through the real-time API (cw_urgent.h).
 *
 * Callers (the consumer threads, gRPC workers) hand a set of requests to
 * the pool and wait for the set; the pool's threads take requests in
 * arrival order. The pool size bounds this replica's real-time calls; the
 * slot limiter bounds the cluster's (warming_cap, interactive reserve).
 * The real-time call is made in exactly one place, realtime().
 */
#include "cw_urgent.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_stats.h"
#include "rte/clock.h"
#include "rte/log.h"
#include "rte/service.h"

struct set {
    int left;
    pthread_cond_t done;
};

struct job {
    cw_req *q;
    struct set *set;
    int ok;
    struct job *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct job *head, *tail;
    pthread_t *threads;
    int nthreads, stop;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* the one place cache-warmer calls Stedi's real-time API */
static int realtime(const rte_member *m, rte_stedi_result *res)
{
    rte_stedi_check chk = {.trading_partner_id = m->trading_partner_id,
                           .member_id = m->member_id,
                           .first_name = m->first_name,
                           .last_name = m->last_name,
                           .date_of_birth = m->date_of_birth};
    return rte_stedi_realtime(CW.stedi, &chk, RTE_SLOT_WARMING,
                              rte_clock_mono_ms() + CW.c.urgent_deadline_ms, NULL, NULL, res);
}

/* one urgent member: 1 warmed into the cache, 0 not (falls back to the batch queue) */
static int warm_one(const rte_member *m)
{
    rte_stedi_result res;
    char key[RTE_CACHE_KEY_MAX], err[256];

    if (realtime(m, &res) != 0) {
        rte_log_info("cache-warmer: urgent real-time warming got no answer (%s: %s); falling back "
                     "to the batch queue",
                     rte_stedi_outcome_name(res.outcome), res.message);
        return 0;
    }
    if (rte_cache_key(CW.c.cache.member_key_secret, m->member_id, m->trading_partner_id, key,
                      sizeof key) != 0 ||
        rte_cache_put(rte_service_redis(), key, &res.entry, &CW.c.cache.freshness, err,
                      sizeof err) < 0) {
        rte_log_warn("cache-warmer: urgent answer not cached (%s); falling back to the batch queue",
                     err);
        return 0;
    }
    return 1;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&P.mu);
    for (;;) {
        while (P.head == NULL && !P.stop)
            pthread_cond_wait(&P.work, &P.mu);
        if (P.head == NULL)
            break;
        struct job *j = P.head;
        P.head = j->next;
        if (P.head == NULL)
            P.tail = NULL;
        pthread_mutex_unlock(&P.mu);
        j->ok = warm_one(j->q->m);
        pthread_mutex_lock(&P.mu);
        if (--j->set->left == 0)
            pthread_cond_signal(&j->set->done);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

/* cw_urgent_start - start-up thread */
int cw_urgent_start(char *err, size_t errlen)
{
    pthread_cond_init(&P.work, NULL);
    P.threads = calloc((size_t)CW.c.urgent_workers, sizeof *P.threads);
    if (P.threads == NULL) {
        snprintf(err, errlen, "cache-warmer: out of memory for the urgent pool");
        return -1;
    }
    for (; P.nthreads < CW.c.urgent_workers; P.nthreads++)
        if (pthread_create(&P.threads[P.nthreads], NULL, worker, NULL) != 0) {
            snprintf(err, errlen, "cache-warmer: cannot start urgent worker %d", P.nthreads);
            return -1;
        }
    return 0;
}

/* cw_urgent_stop - shutdown, after the consumers and gRPC stopped */
void cw_urgent_stop(void)
{
    pthread_mutex_lock(&P.mu);
    P.stop = 1;
    pthread_cond_broadcast(&P.work);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < P.nthreads; i++)
        pthread_join(P.threads[i], NULL);
    free(P.threads);
    P.threads = NULL;
    P.nthreads = 0;
}

/* hand the n requests to the pool and wait for all of them; the jobs' results in jobs[] */
static void run_calls(cw_req **u, int n, struct job *jobs)
{
    struct set set = {.left = n};

    rte_clock_cond_init(&set.done);
    pthread_mutex_lock(&P.mu);
    for (int i = 0; i < n; i++) {
        jobs[i] = (struct job){.q = u[i], .set = &set};
        if (P.tail)
            P.tail->next = &jobs[i];
        else
            P.head = &jobs[i];
        P.tail = &jobs[i];
    }
    pthread_cond_broadcast(&P.work);
    while (set.left > 0)
        pthread_cond_wait(&set.done, &P.mu);
    pthread_mutex_unlock(&P.mu);
    pthread_cond_destroy(&set.done);
}

/* cw_urgent_run - any thread */
int cw_urgent_run(cw_req **u, int n, const char *source, rte_redis *r, char *err, size_t errlen)
{
    const char **ids = calloc((size_t)n, sizeof *ids);
    int *fresh = calloc((size_t)n, sizeof *fresh);
    struct job *jobs = calloc((size_t)n, sizeof *jobs);
    rte_warm_item *back = calloc((size_t)n, sizeof *back);
    cw_req **bq = calloc((size_t)n, sizeof *bq);
    const char **tps = calloc((size_t)n, sizeof *tps);
    int m = 0, nb = 0, rc = -1;
    long warmed = 0;

    if (!ids || !fresh || !jobs || !back || !bq || !tps) {
        snprintf(err, errlen, "cache-warmer: out of memory for %d urgent requests", n);
        goto out;
    }
    for (int i = 0; i < n; i++)
        ids[i] = u[i]->event_id;
    if (rte_warm_mark_seen(CW.warm, r, ids, n, fresh, err, errlen) != 0)
        goto out;
    for (int i = 0; i < n; i++) {
        if (fresh[i])
            u[m++] = u[i];
        else
            u[i]->outcome = CW_SKIP_DUP_EVENT;
    }
    /* a member's events on both topics: one real-time call, not one per event */
    for (int i = 0; i < m; i++)
        ids[i] = u[i]->m->member_id;
    if (rte_warm_mark_urgent(CW.warm, r, ids, m, fresh, err, errlen) != 0)
        goto out;
    int k = 0;
    for (int i = 0; i < m; i++) {
        if (fresh[i])
            u[k++] = u[i];
        else
            u[i]->outcome = CW_SKIP_DUP_MEMBER;
    }
    m = k;
    run_calls(u, m, jobs);
    for (int i = 0; i < m; i++) {
        if (jobs[i].ok) {
            u[i]->outcome = CW_WARMED;
            ids[warmed] = u[i]->m->member_id;
            tps[warmed++] = u[i]->m->trading_partner_id;
            continue;
        }
        back[nb] = (rte_warm_item){.member_id = u[i]->m->member_id};
        bq[nb++] = u[i];
    }
    if (warmed > 0)
        cw_stats_warmed(r, source, ids, tps, (int)warmed);
    rte_counter_add(CM.urgent, (const char *const[]){"warmed"}, (double)warmed);
    rte_counter_add(CM.urgent, (const char *const[]){"fallback"}, (double)nb);
    rte_counter_add(CM.results, (const char *const[]){"success"}, (double)warmed);
    if (nb > 0 &&
        rte_warm_enqueue(CW.warm, r, back, nb, source, rte_clock_now_ms(), err, errlen) != 0) {
        /* their events are marked seen: a retry would drop them, so say so loudly */
        rte_log_error("cache-warmer: %d urgent member(s) whose real-time call failed could not be "
                      "queued for a batch either: %s",
                      nb, err);
        for (int i = 0; i < nb; i++)
            bq[i]->outcome = CW_SKIP_DUP_MEMBER;
        rte_counter_add(CM.results, (const char *const[]){"failure"}, (double)nb);
        rc = 0;
        goto out;
    }
    for (int i = 0; i < nb; i++)
        bq[i]->outcome = back[i].verdict == RTE_WARM_QUEUED ? CW_QUEUED : CW_SKIP_DUP_MEMBER;
    rc = 0;
out:
    free(ids);
    free(fresh);
    free(jobs);
    free(back);
    free(bq);
    free(tps);
    return rc;
}
