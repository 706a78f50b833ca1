/*
 * br_plan.h - what batch-rpc decides when a job is submitted: its strategy,
 * when it starts, how fast it may go, and the resolved options it reports.
 *
 * Strategy (source, "STRATEGY_OPTIMAL" decision matrix; rows checked in this
 * order, first match wins):
 *   priority LOW                                   -> batch API
 *   fewer than 100 members                         -> real-time
 *   more than 1,000 members                        -> batch API
 *   100..1,000, HIGH, low Stedi load, not off-peak -> real-time
 *   otherwise (NORMAL, or load, or 1-5 AM local)   -> batch API
 * "Low Stedi load" = at least 5 of the limiter's slots free; off-peak is
 * 1-5 AM in batchrpc.time_zone. The matrix gives "< 100 any priority ->
 * real-time" and "any size LOW -> batch API" for the same small LOW job;
 * LOW wins (the proto: "use batch API, process overnight").
 *
 * Load spreading: a job with a window (not ANY) spreads its chunks evenly
 * over the window's length from its start, each with a jitter of up to a
 * quarter of the gap (at most 5 min); a PRIORITY_LOW job of more than
 * 50,000 members on the batch API that leaves the window to the service
 * (ANY) sends its 10,000-member chunks to the low-utilization, morning and
 * evening windows in turn (source: "Multi-Window Distribution"; LOW is
 * "process overnight"; a job of any other priority or an explicit window
 * runs as asked).
 *
 * Windows (local time in batchrpc.time_zone): a job inside its window starts
 * at once, else at the next opening plus a jitter of up to batchrpc.jitter:
 *   ANY             by load: < 30 % slots used now, < 70 % in 30-60 min,
 *                   else the next low-utilization window
 *   BUSINESS_HOURS  9-17 Monday to Friday      MORNING   6-10
 *   EVENING         17-22                      LOW_UTILIZATION 1-5
 *   OPTIMAL_MEMBER_ENGAGEMENT  the hour before the members' busiest hour
 *                   (sum of the directory's usage_by_hour), same spread
 *
 * Thread safety: pure functions over their arguments and BR's settings.
 */
#ifndef BR_PLAN_H
#define BR_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "batch_eligibility.pb-c.h"
#include "rte/member_dir.h"

typedef struct br_plan {
    int strategy; /* BATCH_ONLY or REALTIME_ONLY (never OPTIMAL) */
    int priority;
    int window;
    int64_t start_ms; /* clock ms the job may start */
    int64_t eta_ms;   /* estimated completion, clock ms */
    int max_conc;     /* real-time calls at once for this job */
    int64_t timeout_ms;
    int retry_max;
    int64_t retry_initial_ms, retry_max_ms;
    double retry_mult;
    int chunks;        /* Stedi batches (BATCH_ONLY) or real-time chunks */
    int64_t spread_ms; /* the window's length: chunks spread evenly over it (0 = ANY) */
    int multi;         /* > 50,000 members on the batch API: chunks rotate over three windows */
    char why[80];      /* the matrix row or the caller's choice */
} br_plan;

/* Storage of a resolved BatchExecutionOptions message (points into itself). */
typedef struct br_resolved {
    Rte__V1__BatchExecutionOptions o;
    Rte__V1__Duration timeout, initial, maxi;
    Rte__V1__RetryConfig retry;
    Rte__V1__NotificationPreferences notif;
} br_resolved;

/* the busiest-hour input of OPTIMAL_MEMBER_ENGAGEMENT: -1 when unknown */
typedef struct br_plan_load {
    int slots_in_use; /* cluster-wide now, -1 unknown */
    int slots_limit;
    int peak_hour; /* members' busiest local hour 0..23, -1 unknown */
} br_plan_load;

/*
 * br_plan_make - the plan for n members submitted at now_ms with options o
 * (may be NULL); jitter_ms bounds the random delay after a window opens.
 */
void br_plan_make(const Rte__V1__BatchExecutionOptions *o, size_t n, const br_plan_load *load,
                  int64_t now_ms, int64_t jitter_ms, br_plan *p);

/*
 * br_plan_resolved - the options the service decided (p) over the request's
 * (o, may be NULL), into r (self-contained but borrowing o's strings).
 */
void br_plan_resolved(const br_plan *p, const Rte__V1__BatchExecutionOptions *o, br_resolved *r);

/* br_plan_window_start - the window's next opening at or after now_ms (0 jitter); exposed for
 * tests */
int64_t br_plan_window_start(int window, int64_t now_ms, int peak_hour);

/* br_plan_peak_hour - the busiest hour of n members (usage_by_hour summed), -1 if none */
int br_plan_peak_hour(const rte_member *const *m, size_t n);

#endif
