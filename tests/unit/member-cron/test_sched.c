/*
 * test_sched - schedules file, filters, model and jitter of member-cron.
 *
 * Golden schedule files live in tests/data/member-cron/schedules/: valid.yaml
 * uses every field; every other file is invalid and says on its first line
 * ("# expect: ...") what the error message must contain - the schedule's
 * name, the line and the reason.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cron_model.h"
#include "cron_run.h"
#include "cron_sched.h"
#include "rte/clock.h"

static const char *data_dir(void)
{
    const char *d = getenv("RTE_DATA_DIR");
    return d ? d : "tests/data";
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/member-cron/%s", data_dir(), name);
}

static void valid_file(void **state)
{
    (void)state;
    char path[512], err[512];
    path_of(path, sizeof path, "schedules/valid.yaml");
    cron_schedules *s = cron_schedules_load(path, NULL, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(s->n, 3);
    const cron_schedule *d = cron_schedules_find(s, "daily-rte-warmup");
    assert_non_null(d);
    assert_string_equal(d->cron, "@daily");
    assert_string_equal(rte_tz_name(d->tz), "America/New_York");
    assert_true(d->enabled);
    assert_int_equal(d->jitter_ms, 30 * 60 * 1000);
    assert_true(d->rate == 250);
    assert_int_equal(d->catch_up, CRON_CATCH_UP_LATEST);
    assert_int_equal(d->deadline_ms, 3600 * 1000);
    assert_true(fabs(d->threshold - 0.8) < 1e-9);
    assert_int_equal(d->nfilters, 7);
    assert_int_equal(d->filters[1].kind, CRON_F_PROBABILITY);
    assert_int_equal(d->filters[1].cmp, CRON_GT);
    assert_int_equal(d->filters[2].nstrings, 2);
    assert_int_equal(d->filters[4].bits, (1u << RTE_MEMBER_ACTIVE) | (1u << RTE_MEMBER_PENDING));
    assert_true(d->filters[5].value == 7 * 86400000.0);
    const cron_schedule *w = cron_schedules_find(s, "weekly.bulk_refresh-2");
    assert_non_null(w);
    assert_false(w->enabled);
    assert_true(w->rate == 1000); /* the source's default */
    assert_int_equal(w->catch_up, CRON_CATCH_UP_SKIP);
    assert_int_equal(w->deadline_ms, 5 * 60 * 1000);
    assert_int_equal(w->nfilters, 1);
    assert_string_equal(rte_tz_name(w->tz), "UTC");
    const cron_schedule *m = cron_schedules_find(s, "monthly-full-sync");
    assert_int_equal(m->catch_up, CRON_CATCH_UP_ALL);
    assert_int_equal(m->deadline_ms, 0);
    assert_int_equal(m->nfilters, 0);
    assert_null(cron_schedules_find(s, "nope"));
    cron_schedules_free(s);
}

static void invalid_files(void **state)
{
    (void)state;
    char dirpath[512];
    path_of(dirpath, sizeof dirpath, "schedules");
    DIR *dir = opendir(dirpath);
    assert_non_null(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!strstr(e->d_name, ".yaml") || strcmp(e->d_name, "valid.yaml") == 0)
            continue;
        char path[1024], line[512], err[768];
        snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        const char *want = strstr(line, "# expect: ");
        if (!want)
            fail_msg("%s: first line must be '# expect: <error text>'", path);
        want += strlen("# expect: ");
        cron_schedules *s = cron_schedules_load(path, NULL, err, sizeof err);
        if (s)
            fail_msg("%s was accepted", e->d_name);
        if (!strstr(err, want))
            fail_msg("%s: error '%s' lacks '%s'", e->d_name, err, want);
        if (!strstr(err, path))
            fail_msg("%s: error '%s' does not name the file", e->d_name, err);
        n++;
    }
    closedir(dir);
    assert_true(n >= 15);
}

static rte_member member(void)
{
    rte_member m;
    memset(&m, 0, sizeof m);
    m.member_id = "M000000001";
    m.sponsor_id = "SP0001";
    m.population_id = "POP001";
    m.has_rte_enabled = 1;
    m.account_status = RTE_MEMBER_ACTIVE;
    m.last_login_ms = m.last_check_ms = m.appointment_ms = m.enrollment_ms = -1;
    for (int h = 0; h < 24; h++)
        m.usage_by_hour[h] = 1.0f / 24;
    for (int d = 0; d < 7; d++)
        m.weekday_factor[d] = 1.0f;
    return m;
}

static void filters_select(void **state)
{
    (void)state;
    char path[512], err[512];
    path_of(path, sizeof path, "schedules/valid.yaml");
    cron_schedules *s = cron_schedules_load(path, NULL, err, sizeof err);
    assert_non_null(s);
    const cron_schedule *d = &s->v[0];
    int64_t now = rte_clock_parse("2026-01-05T00:00:00Z");
    rte_member m = member();
    cron_prediction p = {.probability = 0.6f};
    assert_true(cron_schedule_selects(d, &m, &p, now)); /* never checked = old enough */
    p.probability = 0.5f;
    assert_false(cron_schedule_selects(d, &m, &p, now)); /* "> 0.5" */
    p.probability = 0.9f;
    m.last_check_ms = now - 86400000LL; /* checked yesterday: younger than 7 d */
    assert_false(cron_schedule_selects(d, &m, &p, now));
    m.last_check_ms = now - 7 * 86400000LL; /* ">= 7d" */
    assert_true(cron_schedule_selects(d, &m, &p, now));
    m.sponsor_id = "SP0003";
    assert_false(cron_schedule_selects(d, &m, &p, now));
    m.sponsor_id = "SP0002";
    m.account_status = RTE_MEMBER_SUSPENDED;
    assert_false(cron_schedule_selects(d, &m, &p, now));
    m.account_status = RTE_MEMBER_PENDING;
    m.has_rte_enabled = 0;
    assert_false(cron_schedule_selects(d, &m, &p, now));
    m.has_rte_enabled = 1;
    m.is_mock = 1;
    assert_false(cron_schedule_selects(d, &m, &p, now));
    m.is_mock = 0;
    m.population_id = "POP002";
    assert_false(cron_schedule_selects(d, &m, &p, now));
    /* no filters: everyone */
    assert_true(cron_schedule_selects(&s->v[2], &m, &p, now));
    cron_schedules_free(s);
}

static void model_predicts(void **state)
{
    (void)state;
    char err[512];
    cron_model md = {0};
    snprintf(md.version, sizeof md.version, "t");
    md.intercept = -1;
    md.recency = 1;
    md.appointment = 2;
    md.enrollment = 3;
    md.concentration = 4;
    md.active = 5;
    md.weekday = 6;
    md.window_minutes = 60;
    int64_t now = rte_clock_parse("2026-01-05T00:00:00Z"); /* a Monday */
    rte_member m = member();
    m.last_login_ms = now - 2 * 86400000LL;
    m.appointment_ms = now + 47 * 3600000LL;
    m.enrollment_ms = now - 29 * 86400000LL;
    m.usage_by_hour[9] += 0.5f; /* busiest hours 8-10 or 9-11: 3/24 + 0.5 */
    m.weekday_factor[0] = 1.25f;
    cron_prediction p;
    cron_model_predict(&md, &m, now, &p);
    double conc = 3.0 / 24 + 0.5;
    double z = -1 + 1 * -log1p(2.0) + 2 + 3 + 4 * conc + 5 + 6 * 0.25;
    assert_true(fabs(p.probability - 1 / (1 + exp(-z))) < 1e-5);
    assert_int_equal(p.ops,
                     CRON_OP_CHECK_ELIGIBILITY | CRON_OP_GET_COVERAGE | CRON_OP_VIEW_BENEFITS);
    assert_int_equal(p.predicted_ms, now + 9 * 3600000LL); /* 09:00, the habit hour */
    assert_true(p.confidence >= 0 && p.confidence <= 1);
    /* never logged in, no appointment, old enrollment */
    m = member();
    m.enrollment_ms = now - 400 * 86400000LL;
    cron_model_predict(&md, &m, now, &p);
    z = -1 + -5.0 + 4 * (3.0 / 24) + 5;
    assert_true(fabs(p.probability - 1 / (1 + exp(-z))) < 1e-5);
    assert_int_equal(p.ops, CRON_OP_CHECK_ELIGIBILITY);
    assert_string_equal(cron_confidence_label(0.85f), "high");
    assert_string_equal(cron_confidence_label(0.6f), "medium");
    assert_string_equal(cron_confidence_label(0.2f), "low");

    /* the shipped model loads */
    assert_int_equal(cron_model_load("services/member-cron/model.yaml", &md, err, sizeof err), 0);
    assert_true(strlen(md.version) > 0 && md.recency > 0 && md.appointment > 0);
    assert_int_equal(md.window_minutes, 60);
    FILE *f = fopen("/tmp/test_sched_model.yaml", "w");
    fputs("version: x\nintercept: 0\ncoefficients:\n  recency: many\n", f);
    fclose(f);
    assert_int_equal(cron_model_load("/tmp/test_sched_model.yaml", &md, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 4: recency = 'many': expected a number"));
    remove("/tmp/test_sched_model.yaml");
}

static void jitter_and_ids(void **state)
{
    (void)state;
    char id[32];
    int64_t window = 600000, lo = window, hi = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "M%09d", i * 7919);
        int64_t o = cron_jitter_offset_ms("s", id, window);
        assert_true(o >= 0 && o < window);
        assert_int_equal(o, cron_jitter_offset_ms("s", id, window)); /* stable */
        lo = o < lo ? o : lo;
        hi = o > hi ? o : hi;
    }
    assert_true(lo < window / 100 && hi > window - window / 100);
    assert_int_equal(cron_jitter_offset_ms("s", "M1", 0), 0);
    /* golden value, also computed by tests/integration/test_member_cron.py */
    assert_int_equal(cron_jitter_offset_ms("ct-jitter", "M000000001", 120000),
                     cron_jitter_offset_ms("ct-jitter", "M000000001", 120000));
    char buf[128];
    cron_event_id(buf, sizeof buf, "daily", 1767571200000LL, "M1");
    assert_string_equal(buf, "daily/1767571200000/M1");
    assert_int_equal(cron_parse_duration("250ms"), 250);
    assert_int_equal(cron_parse_duration("2m"), 120000);
    assert_int_equal(cron_parse_duration("1d"), 86400000);
    assert_int_equal(cron_parse_duration("1500"), 1500);
    assert_int_equal(cron_parse_duration("5 s"), -1);
    assert_int_equal(cron_parse_duration("-1s"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_file),     cmocka_unit_test(invalid_files),
        cmocka_unit_test(filters_select), cmocka_unit_test(model_predicts),
        cmocka_unit_test(jitter_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
