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
#include <time.h>

#include <cmocka.h>

#include "cron_model.h"
#include "cron_run.h"
#include "cron_sched.h"
#include "rte/clock.h"
#include "rte/member_dir.h"

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
    /* the directory filters, translated into one member_query expression */
    assert_string_equal(d->where,
                        "has_rte_enabled = TRUE AND (sponsor_id IN ('SP0001', 'SP0002')) AND "
                        "(population_id IN ('POP001')) AND (account_status IN ('ACTIVE', "
                        "'PENDING')) AND (last_eligibility_check_at IS NULL OR "
                        "last_eligibility_check_at <= NOW() - 604800000ms) AND is_mock = FALSE");
    /* the model's prediction stays a test of its own */
    assert_int_equal(d->nprob, 1);
    assert_int_equal(d->prob[0].cmp, CRON_GT);
    assert_true(d->prob[0].value == 0.5);
    const cron_schedule *w = cron_schedules_find(s, "weekly.bulk_refresh-2");
    assert_non_null(w);
    assert_false(w->enabled);
    assert_true(w->rate == 1000); /* the source's default */
    assert_int_equal(w->catch_up, CRON_CATCH_UP_SKIP);
    assert_int_equal(w->deadline_ms, 5 * 60 * 1000);
    assert_int_equal(w->nfilters, 1);
    assert_string_equal(w->where, "has_rte_enabled = TRUE");
    assert_int_equal(w->nprob, 0);
    assert_string_equal(rte_tz_name(w->tz), "UTC");
    const cron_schedule *m = cron_schedules_find(s, "monthly-full-sync");
    assert_int_equal(m->catch_up, CRON_CATCH_UP_ALL);
    assert_int_equal(m->deadline_ms, 0);
    assert_int_equal(m->nfilters, 0);
    assert_null(m->where); /* every member */
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

/*
 * The matcher member-cron had before its filters moved onto member_query,
 * kept here as the oracle: every filter kind must select exactly the
 * members it selected.
 */
enum old_kind { O_RTE, O_MOCK, O_SPONSOR, O_POPULATION, O_STATUS, O_CHECK_AGE };

typedef struct old_filter {
    int kind, cmp, flag;
    double value;  /* age in ms */
    unsigned bits; /* statuses */
    const char *strings[4];
} old_filter;

static int old_cmp(int cmp, double a, double b)
{
    return cmp == CRON_GT ? a > b : cmp == CRON_GE ? a >= b : cmp == CRON_LT ? a < b : a <= b;
}

static int old_selects(const old_filter *f, int nf, const rte_member *m, int64_t now_ms)
{
    for (int i = 0; i < nf; i++) {
        int in = 0;
        const char *v = f[i].kind == O_SPONSOR ? m->sponsor_id : m->population_id;
        switch (f[i].kind) {
        case O_RTE:
            if (!m->has_rte_enabled != !f[i].flag)
                return 0;
            break;
        case O_MOCK:
            if (!m->is_mock != !f[i].flag)
                return 0;
            break;
        case O_SPONSOR:
        case O_POPULATION:
            for (int k = 0; k < 4 && f[i].strings[k]; k++)
                in |= strcmp(f[i].strings[k], v) == 0;
            if (!in)
                return 0;
            break;
        case O_STATUS:
            if (m->account_status >= RTE_MEMBER_STATUS_UNKNOWN ||
                !((f[i].bits >> m->account_status) & 1))
                return 0;
            break;
        default: {
            double age = m->last_check_ms < 0 ? INFINITY : (double)(now_ms - m->last_check_ms);
            if (!old_cmp(f[i].cmp, age, f[i].value))
                return 0;
        }
        }
    }
    return 1;
}

#define NOW_S 1767571200LL /* 2026-01-05T00:00:00Z */
#define NMEMBERS 3000

static uint64_t rnd(uint64_t *st)
{
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    return *st >> 33;
}

static void rfc3339(int64_t s, char out[32])
{
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* a directory whose values hit every filter value and the check-age boundaries */
static void write_members(const char *path)
{
    static const char *const sponsors[] = {"SP0001", "SP0002", "SP0003", "SP0004", NULL};
    static const char *const pops[] = {"POP001", "POP002", "POP003", NULL};
    static const char *const status[] = {"ACTIVE",  "INACTIVE", "SUSPENDED",
                                         "PENDING", "CLOSED",   NULL};
    static const char *const states[] = {"CA", "NY", "TX"};
    static const char *const flag[] = {"true", "false", NULL};
    /* check ages around 7 d, 36 h and 90 m, each boundary exactly and one second off */
    static const int64_t edges[] = {
        7 * 86400,     7 * 86400 - 1, 7 * 86400 + 1, 36 * 3600, 36 * 3600 + 1,
        36 * 3600 - 1, 90 * 60,       90 * 60 - 1,   0,         1};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t st = 42;
    for (int i = 0; i < NMEMBERS; i++) {
        char check[64] = "", when[32];
        const char *sp = sponsors[rnd(&st) % 5], *po = pops[rnd(&st) % 4];
        const char *stt = status[rnd(&st) % 6], *rte = flag[rnd(&st) % 3],
                   *mock = flag[rnd(&st) % 3];
        uint64_t c = rnd(&st) % 8;
        if (c < 3) {
            int64_t age = c == 0 ? edges[rnd(&st) % 10] : (int64_t)(rnd(&st) % (30 * 86400));
            rfc3339(NOW_S - age, when);
            snprintf(check, sizeof check, ",\"last_eligibility_check_at\":\"%s\"", when);
        } else if (c == 3) {
            snprintf(check, sizeof check, ",\"last_eligibility_check_at\":null");
        } else if (c < 7) {
            rfc3339(NOW_S - (int64_t)(rnd(&st) % (400 * 86400)), when);
            snprintf(check, sizeof check, ",\"last_eligibility_check_at\":\"%s\"", when);
        }
        fprintf(f, "{\"member_id\":\"M%09d\",\"state\":\"%s\",\"date_of_birth\":\"%d-%02d-%02d\"",
                i, states[rnd(&st) % 3], 1930 + (int)(rnd(&st) % 80), 1 + (int)(rnd(&st) % 12),
                1 + (int)(rnd(&st) % 28));
        if (sp)
            fprintf(f, ",\"sponsor_id\":\"%s\"", sp);
        if (po)
            fprintf(f, ",\"population_id\":\"%s\"", po);
        if (stt)
            fprintf(f, ",\"account_status\":\"%s\"", stt);
        if (rte)
            fprintf(f, ",\"has_rte_enabled\":%s", rte);
        if (mock)
            fprintf(f, ",\"is_mock\":%s", mock);
        fprintf(f, "%s}\n", check);
    }
    fclose(f);
}

/* load a one-schedule file with body under filters:, or NULL + err */
static cron_schedules *load_one(const char *body, char *err, size_t errlen)
{
    const char *path = "/tmp/test_sched_one.yaml";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "schedules:\n  - name: one\n    cron: '@daily'\n%s", body);
    fclose(f);
    cron_schedules *s = cron_schedules_load(path, NULL, err, errlen);
    remove(path);
    return s;
}

/* how many members of snap the file's filters select; each one checked against want */
static size_t check_selection(const char *body, rte_member_snapshot *snap,
                              int (*want)(const rte_member *, const void *), const void *arg)
{
    char err[768];
    cron_schedules *s = load_one(body, err, sizeof err);
    if (!s)
        fail_msg("%s: %s", body, err);
    uint64_t *bits;
    size_t total, n = rte_member_snapshot_count(snap), got = 0;
    if (cron_schedule_match(&s->v[0], snap, NOW_S * 1000, &bits, &total, err, sizeof err) < 0)
        fail_msg("%s: %s", body, err);
    for (size_t i = 0; i < n; i++) {
        const rte_member *m = rte_member_snapshot_at(snap, i);
        int sel = !bits || ((bits[i >> 6] >> (i & 63)) & 1);
        if (sel != want(m, arg))
            fail_msg("%s: member %s selected %d, expected %d (where: %s)", body, m->member_id, sel,
                     !sel, s->v[0].where ? s->v[0].where : "-");
        got += (size_t)sel;
    }
    assert_int_equal(got, total);
    free(bits);
    cron_schedules_free(s);
    return got;
}

struct old_case {
    const char *yaml;
    old_filter f[6];
    int nf;
};

static int old_want(const rte_member *m, const void *arg)
{
    const struct old_case *c = arg;
    return old_selects(c->f, c->nf, m, NOW_S * 1000);
}

#define DAYS7 (7 * 86400000.0)

/* every filter kind and value: the same members as the old matcher selected */
static void filters_select_as_before(void **state)
{
    (void)state;
    char err[512];
    const char *path = "/tmp/test_sched_members.jsonl";
    write_members(path);
    rte_member_dir *dir = rte_member_dir_new(path, err, sizeof err);
    if (!dir)
        fail_msg("%s", err);
    rte_member_snapshot *snap = rte_member_dir_acquire(dir);
    assert_int_equal(rte_member_snapshot_count(snap), NMEMBERS);
    const unsigned A = 1u << RTE_MEMBER_ACTIVE, I = 1u << RTE_MEMBER_INACTIVE,
                   S = 1u << RTE_MEMBER_SUSPENDED, P = 1u << RTE_MEMBER_PENDING;
    const struct old_case cases[] = {
        {"- has_rte_enabled: true", {{O_RTE, .flag = 1}}, 1},
        {"- has_rte_enabled: no", {{O_RTE, .flag = 0}}, 1},
        {"- is_mock: false", {{O_MOCK, .flag = 0}}, 1},
        {"- is_mock: on", {{O_MOCK, .flag = 1}}, 1},
        {"- sponsor_id: SP0002", {{O_SPONSOR, .strings = {"SP0002"}}}, 1},
        {"- sponsor_id: [SP0001, SP0004]", {{O_SPONSOR, .strings = {"SP0001", "SP0004"}}}, 1},
        {"- sponsor_id: [SP9999]", {{O_SPONSOR, .strings = {"SP9999"}}}, 1},
        {"- population_id: [POP001, POP003]", {{O_POPULATION, .strings = {"POP001", "POP003"}}}, 1},
        {"- population_id: pop002", {{O_POPULATION, .strings = {"pop002"}}}, 1}, /* exact case */
        {"- account_status: [active, PENDING]", {{O_STATUS, .bits = A | P}}, 1},
        {"- account_status: SUSPENDED", {{O_STATUS, .bits = S}}, 1},
        {"- account_status: [INACTIVE, ACTIVE, SUSPENDED, PENDING]",
         {{O_STATUS, .bits = A | I | S | P}},
         1},
        {"- eligibility_check_age: '> 7d'", {{O_CHECK_AGE, CRON_GT, .value = DAYS7}}, 1},
        {"- eligibility_check_age: '>= 7d'", {{O_CHECK_AGE, CRON_GE, .value = DAYS7}}, 1},
        {"- eligibility_check_age: '< 7d'", {{O_CHECK_AGE, CRON_LT, .value = DAYS7}}, 1},
        {"- eligibility_check_age: '<=7d'", {{O_CHECK_AGE, CRON_LE, .value = DAYS7}}, 1},
        {"- eligibility_check_age: 7d", {{O_CHECK_AGE, CRON_GE, .value = DAYS7}}, 1},
        {"- eligibility_check_age: '> 36h'", {{O_CHECK_AGE, CRON_GT, .value = 129600000}}, 1},
        {"- eligibility_check_age: '< 1.5h'", {{O_CHECK_AGE, CRON_LT, .value = 5400000}}, 1},
        {"- eligibility_check_age: '<= 90m'", {{O_CHECK_AGE, CRON_LE, .value = 5400000}}, 1},
        {"- eligibility_check_age: '> 1500'", {{O_CHECK_AGE, CRON_GT, .value = 1500}}, 1},
        {"- eligibility_check_age: '>= 0'", {{O_CHECK_AGE, CRON_GE, .value = 0}}, 1},
        {"- eligibility_check_age: '< 5400001ms'", {{O_CHECK_AGE, CRON_LT, .value = 5400001}}, 1},
        /* the shipped daily schedule and every kind at once (valid.yaml's filters) */
        {"- has_rte_enabled: true\n      - app_usage_probability: '> 0.5'",
         {{O_RTE, .flag = 1}},
         1},
        {"- has_rte_enabled: true\n      - sponsor_id: [SP0001, SP0002]\n"
         "      - population_id: POP001\n      - account_status: [ACTIVE, PENDING]\n"
         "      - eligibility_check_age: '>= 7d'\n      - is_mock: false",
         {{O_RTE, .flag = 1},
          {O_SPONSOR, .strings = {"SP0001", "SP0002"}},
          {O_POPULATION, .strings = {"POP001"}},
          {O_STATUS, .bits = A | P},
          {O_CHECK_AGE, CRON_GE, .value = DAYS7},
          {O_MOCK, .flag = 0}},
         6},
        /* one mapping, two filters */
        {"{is_mock: false, eligibility_check_age: '< 7d'}",
         {{O_MOCK, .flag = 0}, {O_CHECK_AGE, CRON_LT, .value = DAYS7}},
         2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body, "    filters%s%s\n",
                 cases[i].yaml[0] == '{' ? ": " : ":\n      ", cases[i].yaml);
        size_t got = check_selection(body, snap, old_want, &cases[i]);
        /* each case is a real test: some members in, some out (SP9999 and pop002: none) */
        if (strstr(cases[i].yaml, "SP9999") || strstr(cases[i].yaml, "pop002"))
            assert_int_equal(got, 0);
        else if (strstr(cases[i].yaml, "'>= 0'"))
            assert_int_equal(got, NMEMBERS);   /* no check lies in the future; never = oldest */
        else if (!(got > 0 && got < NMEMBERS)) /* all statuses: CLOSED and absent stay out */
            fail_msg("%s: %zu of %d members selected", cases[i].yaml, got, NMEMBERS);
    }
    /* the exact boundary: checked exactly 7 d ago is ">= 7d" but not "> 7d" */
    struct old_case ge = cases[13], gt = cases[12];
    size_t n_ge = check_selection("    filters:\n      - eligibility_check_age: '>= 7d'\n", snap,
                                  old_want, &ge);
    size_t n_gt = check_selection("    filters:\n      - eligibility_check_age: '> 7d'\n", snap,
                                  old_want, &gt);
    assert_true(n_ge > n_gt);
    rte_member_snapshot_release(snap);
    rte_member_dir_free(dir);
    remove(path);
}

/* AGE at NOW_S (2026-01-05) from "YYYY-MM-DD" */
static int age_of(const char *dob)
{
    long y = strtol(dob, NULL, 10), m = strtol(dob + 5, NULL, 10), d = strtol(dob + 8, NULL, 10);
    return (int)(2026 - y - (m > 1 || (m == 1 && d > 5)));
}

static int query_want(const rte_member *m, const void *arg)
{
    (void)arg;
    return m->has_rte_enabled && strcmp(m->state, "CA") == 0 && age_of(m->date_of_birth) >= 65 &&
           (strcmp(m->sponsor_id, "SP0001") == 0 || strcmp(m->sponsor_id, "SP0003") == 0);
}

/* a schedule's `query`: any member_query attribute from YAML, ANDed with its filters */
static void query_key(void **state)
{
    (void)state;
    char err[768];
    const char *path = "/tmp/test_sched_members.jsonl";
    write_members(path);
    rte_member_dir *dir = rte_member_dir_new(path, err, sizeof err);
    if (!dir)
        fail_msg("%s", err);
    rte_member_snapshot *snap = rte_member_dir_acquire(dir);
    size_t got = check_selection("    filters:\n      - has_rte_enabled: true\n"
                                 "    query: \"state = 'CA' AND AGE >= 65 AND sponsor_id IN "
                                 "('SP0001', 'SP0003')\"\n",
                                 snap, query_want, NULL);
    assert_true(got > 10 && got < NMEMBERS / 10);
    /* errors name the file's line, the key and the expression's position and token */
    cron_schedules *s =
        load_one("    query: \"state = 'CA' AND colour = 'blue'\"\n", err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "schedule 'one' (line 4): query: expression: at 18 near "
                                "'colour': unknown attribute 'colour'"));
    s = load_one("    query: \"AGE >= \"\n", err, sizeof err);
    assert_null(s);
    assert_non_null(
        strstr(err, "(line 4): query: expression: at 8: expected a value, found the end"));
    s = load_one("    query: ''\n", err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "(line 4): query: expected a member query expression"));
    rte_member_snapshot_release(snap);
    rte_member_dir_free(dir);
    remove(path);
}

/* app_usage_probability is the model's prediction at fire time, tested on it alone */
static void probability_filters(void **state)
{
    (void)state;
    char err[512];
    cron_schedules *s = load_one("    filters:\n      - app_usage_probability: '> 0.5'\n"
                                 "      - app_usage_probability: '<= 0.9'\n",
                                 err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    const cron_schedule *c = &s->v[0];
    assert_null(c->where); /* no directory filter: every member reaches the model */
    assert_int_equal(c->nprob, 2);
    assert_false(cron_schedule_wants(c, 0.5));
    assert_true(cron_schedule_wants(c, 0.5001));
    assert_true(cron_schedule_wants(c, 0.9));
    assert_false(cron_schedule_wants(c, 0.91));
    cron_schedules_free(s);
    s = load_one("    filters:\n      - app_usage_probability: 0.3\n", err, sizeof err);
    assert_non_null(s);
    assert_false(cron_schedule_wants(&s->v[0], 0.29)); /* bare number: >= */
    assert_true(cron_schedule_wants(&s->v[0], 0.3));
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
        cmocka_unit_test(valid_file),
        cmocka_unit_test(invalid_files),
        cmocka_unit_test(filters_select_as_before),
        cmocka_unit_test(query_key),
        cmocka_unit_test(probability_filters),
        cmocka_unit_test(model_predicts),
        cmocka_unit_test(jitter_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
