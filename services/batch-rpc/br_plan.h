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
 * Windows open in each member's local time: br_plan_zones groups a job's
 * members by the directory's time_zone (members without one, or with a
 * zone this machine cannot load, take batchrpc.time_zone), plans each
 * group's start at its window's opening in its zone and orders the groups
 * by start; br_plan_gate spreads each group's chunks over its own window.
 * A group inside its window starts at once, else at the next opening plus
 * a jitter of up to batchrpc.jitter:
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

struct rte_tz;

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
    int zoned;         /* the start is a local time: br_plan_zones must plan each member zone */
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

/* br_plan_window_start_tz - the same in zone tz (NULL = batchrpc.time_zone) */
int64_t br_plan_window_start_tz(int window, int64_t now_ms, int peak_hour, const struct rte_tz *tz);

/* One time-zone group of a job: members [first, first + n) of its stored order. */
typedef struct br_plan_group {
    char zone[64];    /* IANA name; "" = batchrpc.time_zone */
    long first, n;    /* its members' positions in the job's list */
    int64_t start_ms; /* its window's opening in its zone (+ jitter), or now */
} br_plan_group;

#define BR_PLAN_GROUPS_MAX 64 /* distinct zones per job; members of more take the default zone */

/*
 * br_plan_zones - plan p's start per time zone for n members: zone[i] is
 * member i's zone name (NULL or "" = batchrpc.time_zone), m[i] its record
 * (may be NULL; for OPTIMAL_MEMBER_ENGAGEMENT each group's busiest hour).
 * Fills order[0..n) with member indexes grouped by zone (groups by start,
 * then name; submission order within a group), groups[0..*ngroups) (at
 * most BR_PLAN_GROUPS_MAX), and sets p->start_ms to the first group's
 * start and p->eta_ms from the last one's. Any thread (zones are loaded
 * once, under a mutex, and kept).
 */
void br_plan_zones(br_plan *p, int64_t now_ms, int64_t jitter_ms, size_t n, const char *const *zone,
                   const rte_member *const *m, size_t *order, br_plan_group *groups, int *ngroups);

/*
 * br_plan_groups_format / br_plan_groups_parse - groups as the job hash's
 * "groups" field ("zone start_ms first n" per group, ';' between; zone "-"
 * for the default); parse returns the number of groups, -1 if malformed.
 */
void br_plan_groups_format(const br_plan_group *g, int ng, char *out, size_t len);
int br_plan_groups_parse(const char *s, br_plan_group *g, int max);

/*
 * br_plan_gate - for the chunk at position pos (members already taken from
 * the job's list) of a job of spread_ms / multi with groups g: the clock ms
 * it may start (0 = at once) and in *take the most members it may hold (it
 * ends at its group's end). Chunk k of a group of c chunks is not due before
 * the group's start + k * spread_ms / c plus a jitter of up to a quarter of
 * that gap (at most 5 min; a hash of seed and k, so the same chunk always
 * gets the same); multi: chunk k waits for the k % 3-th of the
 * low-utilization, morning and evening windows in the group's zone. Any
 * thread.
 */
int64_t br_plan_gate(const br_plan_group *g, int ng, int64_t spread_ms, int multi, long pos,
                     int size, const char *seed, int64_t now_ms, int *take);

/* br_plan_zone - the loaded zone of name (cached; NULL = unknown or the default); any thread */
const struct rte_tz *br_plan_zone(const char *name);

/* br_plan_peak_hour - the busiest hour of n members (usage_by_hour summed), -1 if none */
int br_plan_peak_hour(const rte_member *const *m, size_t n);

#endif
