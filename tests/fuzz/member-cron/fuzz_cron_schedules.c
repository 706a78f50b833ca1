/*
 * fuzz_cron_schedules.c - libFuzzer target: member-cron's schedules file
 * (cron_schedules_load), zones from the system's zoneinfo.
 *
 * The input is the whole file. A file that loads gives schedules with
 * unique valid names, known catch-up policies and non-negative limits,
 * each findable by name, whose translated filters compile at any fire
 * time and whose probability filters can be evaluated without fault; one
 * that does not names the problem.
 */
#include "cron_sched.h"
#include "fuzz.h"

#define NOW_MS 1767571200000LL /* 2026-01-05T00:00:00Z */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[768];
    cron_schedules *s = cron_schedules_load(fuzz_file(data, size), NULL, err, sizeof err);

    if (s == NULL) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    for (int i = 0; i < s->n; i++) {
        const cron_schedule *c = &s->v[i];
        FUZZ_ASSERT(c->name[0] != '\0' && cron_schedules_find(s, c->name) == c);
        FUZZ_ASSERT(c->catch_up >= CRON_CATCH_UP_SKIP && c->catch_up <= CRON_CATCH_UP_ALL);
        FUZZ_ASSERT(c->jitter_ms >= 0 && c->deadline_ms >= 0 && c->rate >= 0);
        FUZZ_ASSERT(c->tz != NULL && cron_catch_up_name(c->catch_up) != NULL);
        int rc;
        rte_member_query *q = cron_schedule_query(c, NOW_MS, &rc, err, sizeof err);
        FUZZ_ASSERT((q != NULL) == (c->where != NULL) && (q || rc == 0));
        rte_member_query_free(q);
        (void)cron_schedule_wants(c, 0.75);
        (void)rte_cron_next(&c->expr, c->tz, NOW_MS / 1000);
    }
    cron_schedules_free(s);
    return 0;
}
