/*
 * cw_flush.c - the batch queue's timer (contract in cw_flush.h).
 */
#include "cw_flush.h"
#include "cw_sched.h"

#include <stdio.h>

#include "cw.h"
#include "cw_stats.h"
#include "rte/clock.h"
#include "rte/log.h"
#include "rte/service.h"

#define SUBMITS_PER_TICK 64

static void count_outcome(const rte_warm_submitted *s)
{
    /* retry, orphan (looking for it at Stedi), lost: the batch is not settled yet */
    if (s->outcome[0] == 'r' || s->outcome[0] == 'o' || s->outcome[0] == 'l')
        return;
    if (s->unresolved > 0)
        rte_counter_add(CM.skipped, (const char *const[]){"unknown_member"}, s->unresolved);
    if (s->outcome[0] == 's') { /* submitted */
        rte_series_inc(rte_metric_series0(CM.batches));
        rte_series_add(rte_metric_series0(CM.checks), s->items);
        rte_counter_add(CM.results, (const char *const[]){"success"}, s->items);
        rte_log_info("cache-warmer: Stedi batch %s (%s) submitted with %d checks", s->batch_id,
                     s->name, s->items);
    } else if (s->outcome[0] == 'f' || s->outcome[0] == 'u') { /* failed, unknown */
        rte_counter_add(CM.results,
                        (const char *const[]){s->outcome[0] == 'f' ? "failure" : "unknown"},
                        s->items);
    }
}

/* submit what can be claimed; stop on error, when nothing waits, or after max */
static void submit_all(rte_redis *r, int max)
{
    rte_member_snapshot *snap = rte_member_dir_acquire(CW.dir);
    rte_warm_submitted s;
    char err[512];

    for (int i = 0; i < max; i++) {
        int rc = rte_warm_submit_next(CW.warm, r, snap, CW.owner, cw_stats_submitted, r, &s, err,
                                      sizeof err);
        if (rc < 0)
            rte_log_warn("cache-warmer: submitting a sealed batch: %s; retried next tick", err);
        if (rc <= 0)
            break;
        count_outcome(&s);
    }
    rte_member_snapshot_release(snap);
}

static void publish_backlog(rte_redis *r)
{
    long open, sealed, batches;
    char err[256];

    if (rte_warm_backlog(CW.warm, r, &open, &sealed, &batches, err, sizeof err) != 0)
        return;
    rte_gauge_set(CM.queue, (const char *const[]){"open"}, (double)open);
    rte_gauge_set(CM.queue, (const char *const[]){"sealed"}, (double)sealed);
}

static void reload_members(void)
{
    static int64_t last;
    int64_t now = rte_clock_now_ms();
    char err[512];

    if (now - last < CW.c.members_reload_ms)
        return;
    last = now;
    int rc = rte_member_dir_reload_if_changed(CW.dir, err, sizeof err);
    if (rc < 0)
        rte_log_warn("cache-warmer: member directory reload failed (%s); keeping the loaded one",
                     err);
    else if (rc > 0)
        rte_log_info("cache-warmer: member directory reloaded");
}

/* cw_flush_tick - timer thread */
void cw_flush_tick(void *arg)
{
    rte_redis *r = rte_service_redis();
    char err[256];

    (void)arg;
    if (rte_warm_seal(CW.warm, r, rte_clock_now_ms(), 0, err, sizeof err) < 0)
        rte_log_warn("cache-warmer: sealing the window: %s; retried next tick", err);
    submit_all(r, SUBMITS_PER_TICK);
    cw_stats_track(r);
    publish_backlog(r);
    reload_members();
    cw_sched_tick();
}

/* cw_flush_final - shutdown hook (consumers have stopped) */
void cw_flush_final(void)
{
    rte_redis *r = rte_service_redis();
    char err[256];

    if (!CW.c.flush_on_shutdown)
        return;
    if (rte_warm_seal(CW.warm, r, rte_clock_now_ms(), 1, err, sizeof err) < 0) {
        rte_log_warn("cache-warmer: final seal failed (%s); the queue stays in Redis for the "
                     "other replicas",
                     err);
        return;
    }
    submit_all(r, 1000);
    publish_backlog(r);
}
