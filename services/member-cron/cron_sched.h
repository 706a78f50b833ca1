/*
 * cron_sched.h - the schedules file: what fires when, for whom, how fast.
 *
 * The file is the source's member-cron-schedules.yaml with per-schedule
 * additions (docs/member-cron.md has the full table):
 *
 *   schedules:
 *     - name: daily-rte-warmup        # [A-Za-z0-9._-]{1,63}, unique
 *       cron: "@daily"                # rte_cron.h syntax
 *       enabled: true                 # default true
 *       timezone: America/New_York    # IANA zone, default UTC
 *       jitter: 30m                   # spread emissions over this window, default 0
 *       rate: 1000                    # events/s (token bucket), 0 = unlimited
 *       catch_up: latest              # skip | latest | all, default skip
 *       starting_deadline: 1h         # how late a fire may still start; 0 = no limit
 *       threshold: 0.7                # app_usage_likely at/above this probability
 *       filters:                      # all must hold
 *         - has_rte_enabled: true
 *         - app_usage_probability: "> 0.5"
 *         - sponsor_id: [SP0001, SP0002]
 *         - population_id: POP001
 *         - account_status: [ACTIVE, PENDING]
 *         - eligibility_check_age: "> 7d"   # never checked counts as older than any age
 *         - is_mock: false
 *       query: "state IN ('CA', 'NY') AND AGE >= 65"   # any MemberQuery expression
 *
 * One filter engine: at load the directory filters (every key above but
 * app_usage_probability) and `query` are translated into one expression of
 * libcommon's member_query language (cron_schedule.where), compiled once
 * to check it; each fire compiles it again with the fire time as NOW()
 * (eligibility_check_age is relative) and resolves it over the snapshot
 * into a bitmap (cron_schedule_match). app_usage_probability is the
 * model's prediction at fire time (cron_model), not a directory
 * attribute, so it stays a test on the prediction (cron_schedule_wants).
 *
 * Errors: a file that does not load is refused as a whole with the
 * schedule's name, its line and the reason ("schedules.yaml: schedule
 * 'nightly' (line 12): cron: hour: 24 is out of range 0-23"); the caller
 * keeps the schedules it has.
 *
 * Thread safety: a loaded cron_schedules is immutable and may be shared by
 * threads; the owner frees it once no thread uses it (cron_service keeps
 * old sets alive by reference count).
 */
#ifndef CRON_SCHED_H
#define CRON_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "rte/cron.h"
#include "cron_model.h"
#include "rte/tz.h"
#include "rte/member_dir.h"
#include "rte/member_query.h"

enum cron_catch_up { CRON_CATCH_UP_SKIP, CRON_CATCH_UP_LATEST, CRON_CATCH_UP_ALL };

enum cron_cmp { CRON_GT, CRON_GE, CRON_LT, CRON_LE };

/* one app_usage_probability filter: the prediction compared with value */
typedef struct cron_prob_test {
    int cmp; /* enum cron_cmp */
    double value;
} cron_prob_test;

typedef struct cron_schedule {
    char name[64];
    char cron[128];
    rte_cron expr;
    rte_tz *tz;
    int enabled;
    int64_t jitter_ms;
    double rate; /* events/s, 0 = unlimited */
    int catch_up;
    int64_t deadline_ms; /* 0 = unlimited */
    double threshold;
    int nfilters;         /* filters as written (each key of `filters`) */
    char *where;          /* directory filters and query as one expression; NULL = every member */
    cron_prob_test *prob; /* app_usage_probability filters (all must hold) */
    int nprob;
    int line;
} cron_schedule;

typedef struct cron_schedules {
    cron_schedule *v;
    int n;
} cron_schedules;

/*
 * cron_schedules_load - parse and validate path (zones from zoneinfo_dir,
 * NULL = system); NULL + err naming schedule, line and reason
 */
cron_schedules *cron_schedules_load(const char *path, const char *zoneinfo_dir, char *err,
                                    size_t errlen);

/* cron_schedules_free - release a set (NULL is fine) */
void cron_schedules_free(cron_schedules *s);

/* cron_schedules_find - schedule by name, or NULL; borrowed */
const cron_schedule *cron_schedules_find(const cron_schedules *s, const char *name);

/*
 * cron_schedule_query - compile s's directory filters (s->where) with now_ms
 * as NOW(); NULL with *rc 0 when s has none (every member), NULL with *rc
 * < 0 and err otherwise on failure. Any thread.
 */
rte_member_query *cron_schedule_query(const cron_schedule *s, int64_t now_ms, int *rc, char *err,
                                      size_t errlen);

/*
 * cron_schedule_match - the members of snap that s's directory filters
 * select at now_ms: *bits a new bitmap by member index (free() it), or NULL
 * when s selects every member; *total their number. 0, or -1 + err. Any
 * thread; snap is only read.
 */
int cron_schedule_match(const cron_schedule *s, const rte_member_snapshot *snap, int64_t now_ms,
                        uint64_t **bits, size_t *total, char *err, size_t errlen);

/* cron_schedule_wants - 1 if probability passes every app_usage_probability filter of s */
int cron_schedule_wants(const cron_schedule *s, double probability);

/* cron_parse_duration - "250ms", "5s", "2m", "1h", "1d" or bare ms; -1 if malformed */
int64_t cron_parse_duration(const char *s);

/* cron_catch_up_name - "skip" | "latest" | "all" */
const char *cron_catch_up_name(int policy);

#endif
