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

enum cron_catch_up { CRON_CATCH_UP_SKIP, CRON_CATCH_UP_LATEST, CRON_CATCH_UP_ALL };

enum cron_filter_kind {
    CRON_F_RTE,
    CRON_F_MOCK,
    CRON_F_PROBABILITY,
    CRON_F_SPONSOR,
    CRON_F_POPULATION,
    CRON_F_STATUS,
    CRON_F_CHECK_AGE
};

enum cron_cmp { CRON_GT, CRON_GE, CRON_LT, CRON_LE };

typedef struct cron_filter {
    int kind;
    int cmp;        /* probability, check age */
    double value;   /* probability, or age in ms */
    int flag;       /* booleans */
    unsigned bits;  /* account statuses, 1 << enum rte_member_status */
    char **strings; /* sponsor / population ids */
    int nstrings;
} cron_filter;

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
    cron_filter *filters;
    int nfilters;
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

/* cron_schedule_selects - 1 if every filter of s holds for m with prediction p at now_ms */
int cron_schedule_selects(const cron_schedule *s, const rte_member *m, const cron_prediction *p,
                          int64_t now_ms);

/* cron_parse_duration - "250ms", "5s", "2m", "1h", "1d" or bare ms; -1 if malformed */
int64_t cron_parse_duration(const char *s);

/* cron_catch_up_name - "skip" | "latest" | "all" */
const char *cron_catch_up_name(int policy);

#endif
