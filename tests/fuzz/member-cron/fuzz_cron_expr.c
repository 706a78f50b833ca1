/*
 * fuzz_cron_expr.c - libFuzzer target: cron expressions of the schedules
 * file (rte_cron_parse) and their next fire times (rte_cron_next).
 *
 * The input is one expression. One that parses has a next fire from a few
 * instants in three zones (UTC, America/New_York, Australia/Lord_Howe with
 * its 30-minute daylight shift), each strictly later, on a whole minute;
 * in UTC, where no daylight rule moves a fire, the fire's minute, hour,
 * month and day match the expression's fields. Zones come from the
 * system's zoneinfo, as in the unit tests.
 */
#include <time.h>

#include "rte/cron.h"
#include "rte/tz.h"
#include "fuzz.h"

static rte_tz *zones[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const names[] = {"UTC", "America/New_York", "Australia/Lord_Howe"};
    char err[256];
    (void)argc, (void)argv;
    for (int i = 0; i < 3; i++) {
        zones[i] = rte_tz_load(NULL, names[i], err, sizeof err);
        if (zones[i] == NULL) {
            fprintf(stderr, "fuzz_cron_expr: %s\n", err);
            abort();
        }
    }
    return 0;
}

/* in UTC a fire is exactly a minute the fields allow */
static void check_utc(const rte_cron *e, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    FUZZ_ASSERT(gmtime_r(&tt, &tm) != NULL);
    FUZZ_ASSERT(e->minute >> tm.tm_min & 1);
    FUZZ_ASSERT(e->hour >> tm.tm_hour & 1);
    FUZZ_ASSERT(e->month >> (tm.tm_mon + 1) & 1);
    int dom = e->dom >> tm.tm_mday & 1, dow = e->dow >> tm.tm_wday & 1;
    FUZZ_ASSERT((!e->dom_star && !e->dow_star) ? (dom || dow) : (dom && dow));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 2026-01-05, a spring-forward night in New York (2026-03-08 06:59 UTC), 2099-12-31 */
    static const int64_t after[] = {1767571200, 1772953140, 4102444740};
    char err[256], *text = fuzz_str(data, size);
    rte_cron e;

    if (rte_cron_parse(text, &e, err, sizeof err) != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        free(text);
        return 0;
    }
    FUZZ_ASSERT(e.minute != 0 && e.hour != 0 && e.dom != 0 && e.month != 0 && e.dow != 0);
    FUZZ_ASSERT(e.minute >> 60 == 0 && e.hour >> 24 == 0 && e.month >> 13 == 0 && e.dow >> 7 == 0 &&
                (e.dom & 1) == 0 && (e.month & 1) == 0);
    for (int z = 0; z < 3; z++) {
        for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
            int64_t t = rte_cron_next(&e, zones[z], after[i]);
            if (t < 0)
                continue;
            FUZZ_ASSERT(t > after[i] && t % 60 == 0);
            if (z == 0)
                check_utc(&e, t);
            int64_t t2 = rte_cron_next(&e, zones[z], t);
            FUZZ_ASSERT(t2 < 0 || t2 > t);
        }
    }
    free(text);
    return 0;
}
