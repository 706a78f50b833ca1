/*
 * cw_decide.h - the warming decision tree for a batch of requests.
 *
 * For each request, in the source's order (000 "Decision Tree", 001
 * "Warming Strategies"):
 *   probability below warmer.min_probability    skip low_probability
 *   not in the member directory                 skip unknown_member
 *   has_rte_enabled false                       skip rte_disabled
 *   account not ACTIVE                          skip inactive_coverage
 *   same member earlier in this batch           skip duplicate_member
 *   cache entry (one MGET for the whole batch):
 *     INTELLIGENT: a success entry younger than warmer.fresh_window and
 *                  still fresh                  skip fresh
 *     FILL_ONLY:   any entry, even stale        skip cached
 *     FORCE:       never skipped for the cache
 *   priority (from the probability when there is one: > urgent_above
 *   URGENT, > preload_above PRELOAD, else BACKGROUND):
 *     URGENT -> the real-time API in the warming slot class (cw_urgent.c),
 *               except INTELLIGENT over a stale entry, which the source
 *               sends to the batch API
 *     else   -> the batch queue (rte_warm_enqueue: event ids and members
 *               already queued in the window are dropped there, across
 *               replicas)
 * Every skip is counted in rte_cache_warming_skipped_total{reason}, every
 * member sent on in rte_cache_warming_requests_total{source,priority}.
 */
#ifndef CW_DECIDE_H
#define CW_DECIDE_H

#include <stddef.h>

#include "cw.h"

typedef struct cw_req {
    const char *member_id; /* borrowed */
    const char *event_id;  /* borrowed; NULL = no event dedupe (gRPC) */
    double probability;    /* < 0 = none: priority is as given */
    int priority;          /* enum cw_priority (set from probability when there is one) */
    int strategy;          /* enum cw_strategy */
    int outcome;           /* out: enum cw_outcome */
    /* working state of cw_decide */
    const rte_member *m;
    int stale; /* an entry exists but is not fresh enough */
} cw_req;

/*
 * cw_decide - decide and act on n requests from source (a metric label);
 * urgent ones are warmed before it returns. 0, or -1 + err when Redis
 * failed (nothing was lost: offering the same requests again is safe).
 * Any thread; uses the thread's Redis connection; blocks for urgent calls.
 */
int cw_decide(cw_req *q, int n, const char *source, char *err, size_t errlen);

/* cw_priority_of - the priority of a probability under the configured thresholds */
int cw_priority_of(double probability);

#endif
