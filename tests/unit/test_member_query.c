/*
 * test_member_query.c - rte_member_query: an empty query is every member in
 * id order; limit + cursor pages add up to the whole; expression errors name
 * position and token; invalid MemberQuery fields are refused naming them;
 * absent values behave as SQL's NULL (a test, its NOT and IS NULL split the
 * members); RecentEventFilter windows, categories, counts and has_* flags on
 * a hand-written directory with known answers; ages around a birthday;
 * the events index (rte_member_snapshot_event_index): its layout, event
 * filters answered through it (window ends to the millisecond, a member's
 * several events counted once, type lists), and random windows checked
 * against a scan of every member's events.
 * (The per-family golden cases and the SQLite cross-check are in
 * tests/integration/test_member_query.py.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rte/member_dir.h"
#include "rte/member_query.h"

#define NOW 1767571200000LL /* 2026-01-05T00:00:00Z */

static char path[512];

static int setup(void **state)
{
    const char *d = getenv("RTE_DATA_DIR");
    (void)state;
    snprintf(path, sizeof path, "%s/member_query/members.jsonl", d && d[0] ? d : "tests/data");
    return 0;
}

static rte_member_dir *load(const char *p)
{
    char err[512];
    rte_member_dir *d = rte_member_dir_new(p, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    return d;
}

/* the number of members expr selects in s (-1 when it does not compile) */
static long count(const rte_member_snapshot *s, const char *expr)
{
    char err[512];
    int rc;
    rte_member_query_result res;
    const char **ids;
    size_t n;
    rte_member_query *q = rte_member_query_parse(expr, NOW, &rc, err, sizeof err);
    if (!q)
        return -1;
    assert_int_equal(rte_member_query_ids(q, s, &ids, &n, &res, err, sizeof err), 0);
    assert_int_equal(n, res.total);
    free(ids);
    rte_member_query_free(q);
    return (long)res.total;
}

static void test_empty_query_and_paging(void **state)
{
    char err[512];
    int rc;
    (void)state;
    rte_member_dir *d = load(path);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    Rte__V1__MemberQuery m = RTE__V1__MEMBER_QUERY__INIT;
    rte_member_query_result res;
    const char **all, **page;
    size_t n_all, n;

    rte_member_query *q = rte_member_query_new(&m, NOW, &rc, err, sizeof err);
    assert_non_null(q);
    assert_int_equal(rte_member_query_ids(q, s, &all, &n_all, &res, err, sizeof err), 0);
    assert_int_equal(n_all, 300);
    assert_int_equal(res.total, 300);
    assert_string_equal(res.next_cursor, "");
    for (size_t i = 1; i < n_all; i++)
        assert_true(strcmp(all[i - 1], all[i]) < 0);
    rte_member_query_free(q);

    /* pages of 47: each has a cursor until the last, and they add up to the whole */
    char cursor[RTE_MEMBER_QUERY_CURSOR_MAX] = "";
    size_t seen = 0;
    m.limit = 47;
    do {
        m.cursor = cursor;
        q = rte_member_query_new(&m, NOW, &rc, err, sizeof err);
        assert_non_null(q);
        assert_int_equal(rte_member_query_ids(q, s, &page, &n, &res, err, sizeof err), 0);
        assert_int_equal(res.total, 300);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(page[i], all[seen + i]);
        seen += n;
        snprintf(cursor, sizeof cursor, "%s", res.next_cursor);
        assert_true(n == 47 || cursor[0] == '\0');
        free(page);
        rte_member_query_free(q);
    } while (cursor[0]);
    assert_int_equal(seen, 300);
    free(all);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

static void expect_error(const char *expr, const char *needle)
{
    char err[512];
    int rc = 0;
    rte_member_query *q = rte_member_query_parse(expr, NOW, &rc, err, sizeof err);
    assert_null(q);
    assert_int_equal(rc, RTE_MEMBER_QUERY_INVALID);
    if (!strstr(err, needle))
        fail_msg("'%s': '%s' lacks '%s'", expr, err, needle);
}

static void test_expression_errors(void **state)
{
    (void)state;
    expect_error("AGE >= 18 AND COLOR = 'red'",
                 "expression: at 15 near 'COLOR': unknown attribute 'COLOR'");
    expect_error("AGE >= 18 AND (STATE = 'CA'", "expression: at 28: expected ')', found the end");
    expect_error("STATE IN ('CA', )", "at 17 near ')': expected a value");
    expect_error("IS_VIP > true", "a flag compares with = or !=");
    expect_error("LAST_LOGIN_AT > NOW() + x", "expected a duration");
    expect_error("AGE >= 18 OR", "found the end");
    expect_error("STATE = 'unterminated", "near ''unterminated': expected a value");
    expect_error("AGE >= 1.5", "AGE compares with whole years");
    expect_error("   ", "found the end");
}

static void expect_invalid(const Rte__V1__MemberQuery *m, const char *needle)
{
    char err[512];
    int rc = 0;
    rte_member_query *q = rte_member_query_new(m, NOW, &rc, err, sizeof err);
    assert_null(q);
    assert_int_equal(rc, RTE_MEMBER_QUERY_INVALID);
    if (!strstr(err, needle))
        fail_msg("'%s' lacks '%s'", err, needle);
}

static void test_invalid_fields(void **state)
{
    Rte__V1__MemberQuery m = RTE__V1__MEMBER_QUERY__INIT;
    Rte__V1__DemographicsFilter dem = RTE__V1__DEMOGRAPHICS_FILTER__INIT;
    Rte__V1__FeatureOptionFilter opt = RTE__V1__FEATURE_OPTION_FILTER__INIT;
    Rte__V1__FeatureOptionFilter *opts[] = {&opt};
    Rte__V1__RecentEventFilter ev = RTE__V1__RECENT_EVENT_FILTER__INIT;
    Rte__V1__RecentEventFilter__EventCategory cats[] = {0};
    (void)state;

    dem._min_age_case = RTE__V1__DEMOGRAPHICS_FILTER___MIN_AGE_MIN_AGE;
    dem.min_age = -1;
    m.demographics_filter = &dem;
    expect_invalid(&m, "member_query.demographics_filter.min_age");
    m.demographics_filter = NULL;

    opt.name = "no_such";
    m.n_feature_options = 1;
    m.feature_options = opts;
    expect_invalid(&m, "member_query.feature_options[0].name: unknown feature option 'no_such'");
    m.n_feature_options = 0;

    ev.n_event_categories = 1;
    ev.event_categories = cats;
    m.recent_event_filter = &ev;
    expect_invalid(&m, "member_query.recent_event_filter.event_categories[0]: 0 is not a value");
    m.recent_event_filter = NULL;

    m.limit = -5;
    expect_invalid(&m, "member_query.limit");
    m.limit = 0;
    m.cursor = "76317c307c307c307c307c7c4d31"; /* v1|0|0|0|0||M1 with the sort of another query */
    Rte__V1__SortOrder so = RTE__V1__SORT_ORDER__INIT;
    so.field = RTE__V1__SORT_ORDER__FIELD__CREATED_AT;
    m.sort_order = &so;
    expect_invalid(&m, "member_query.cursor: made for another sort_order");
    m.cursor = "not hex";
    expect_invalid(&m, "member_query.cursor: not a cursor of this service");
}

static void test_null_semantics(void **state)
{
    (void)state;
    rte_member_dir *d = load(path);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    long eq = count(s, "METAL_TIER = 'SILVER'"), ne = count(s, "NOT METAL_TIER = 'SILVER'");
    long null = count(s, "METAL_TIER IS NULL"), notnull = count(s, "NOT (METAL_TIER IS NULL)");
    assert_true(eq > 0 && null > 0 && ne > 0);
    assert_int_equal(eq + ne + null, 300);
    assert_int_equal(notnull, eq + ne);
    /* a flag is never absent: it and its negation split the members */
    assert_int_equal(count(s, "HAS_HSA = true") + count(s, "NOT HAS_HSA = true"), 300);
    /* De Morgan over absent values */
    assert_int_equal(count(s, "NOT (METAL_TIER = 'GOLD' OR LAST_CLAIM_AT > '2025-12-01')"),
                     count(s, "METAL_TIER != 'GOLD' AND LAST_CLAIM_AT <= '2025-12-01'"));
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

/* a directory with known events; now is 2026-01-05 */
static const char events_jsonl[] =
    "{\"member_id\":\"A\",\"date_of_birth\":\"2008-01-05\",\"events\":["
    "[\"2026-01-04T12:00:00Z\",\"domain.authentication.v1.SIGNIN\",\"mx-backend\"],"
    "[\"2026-01-03T12:00:00Z\",\"domain.engagement.v1.FEATURE_USED\",\"mx-backend\",\"messaging\"],"
    "[\"2025-12-01T00:00:00Z\",\"domain.authentication.v1.SIGNIN\",\"mx-backend\"]]}\n"
    "{\"member_id\":\"B\",\"date_of_birth\":\"2008-01-06\",\"events\":["
    "[\"2026-01-04T23:00:00Z\",\"domain.rte.v1.ELIGIBILITY_ERROR\",\"realtime-eligibility\"]]}\n"
    "{\"member_id\":\"C\",\"date_of_birth\":\"2004-02-29\"}\n";

static size_t run(const rte_member_snapshot *s, const Rte__V1__MemberQuery *m, char *ids,
                  size_t cap)
{
    char err[512];
    int rc;
    const char **got;
    size_t n;
    rte_member_query_result res;
    rte_member_query *q = rte_member_query_new(m, NOW, &rc, err, sizeof err);
    if (!q)
        fail_msg("%s", err);
    assert_int_equal(rte_member_query_ids(q, s, &got, &n, &res, err, sizeof err), 0);
    ids[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(ids + strlen(ids), cap - strlen(ids), "%s", got[i]);
    free(got);
    rte_member_query_free(q);
    return n;
}

static void test_recent_events_and_ages(void **state)
{
    char tmp[] = "/tmp/test_member_query_XXXXXX", ids[64];
    int fd = mkstemp(tmp);
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, events_jsonl, sizeof events_jsonl - 1),
                     (ssize_t)(sizeof events_jsonl - 1));
    close(fd);
    rte_member_dir *d = load(tmp);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    Rte__V1__MemberQuery m = RTE__V1__MEMBER_QUERY__INIT;
    Rte__V1__RecentEventFilter ev = RTE__V1__RECENT_EVENT_FILTER__INIT;
    Rte__V1__Duration week = RTE__V1__DURATION__INIT;
    Rte__V1__RecentEventFilter__EventCategory auth[] = {1}, engage_rte[] = {4, 13};
    m.recent_event_filter = &ev;

    /* AUTHENTICATION in the last 7 days: A's sign-in of the 4th (not the one of 1 Dec) */
    week.seconds = 7 * 86400;
    ev.within_last = &week;
    ev.n_event_categories = 1;
    ev.event_categories = auth;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "A");
    ev._min_event_count_case = RTE__V1__RECENT_EVENT_FILTER___MIN_EVENT_COUNT_MIN_EVENT_COUNT;
    ev.min_event_count = 2;
    assert_int_equal(run(s, &m, ids, sizeof ids), 0);
    ev.within_last = NULL; /* the whole history: A signed in twice */
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);

    /* ENGAGEMENT or RTE in the week, at least one: A (feature) and B (error) */
    ev.within_last = &week;
    ev._min_event_count_case = 0;
    ev.n_event_categories = 2;
    ev.event_categories = engage_rte;
    assert_int_equal(run(s, &m, ids, sizeof ids), 2);
    assert_string_equal(ids, "AB");
    /* had_eligibility_error: B; has_used_feature of 'billing': nobody; of 'messaging': A */
    ev._had_eligibility_error_case =
        RTE__V1__RECENT_EVENT_FILTER___HAD_ELIGIBILITY_ERROR_HAD_ELIGIBILITY_ERROR;
    ev.had_eligibility_error = 1;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "B");
    ev._had_eligibility_error_case = 0;
    char *billing[] = {"billing"}, *messaging[] = {"messaging"};
    ev.n_feature_names = 1;
    ev.feature_names = billing;
    assert_int_equal(run(s, &m, ids, sizeof ids), 0);
    ev.feature_names = messaging;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "A");

    /* ages on 2026-01-05: A turns 18 today, B tomorrow; C (29 Feb 2004) is 21 */
    m.recent_event_filter = NULL;
    Rte__V1__DemographicsFilter dem = RTE__V1__DEMOGRAPHICS_FILTER__INIT;
    dem._min_age_case = RTE__V1__DEMOGRAPHICS_FILTER___MIN_AGE_MIN_AGE;
    dem.min_age = 18;
    m.demographics_filter = &dem;
    assert_int_equal(run(s, &m, ids, sizeof ids), 2);
    assert_string_equal(ids, "AC");
    assert_int_equal(count(s, "AGE = 17"), 1);
    assert_int_equal(count(s, "AGE BETWEEN 21 AND 21"), 1);

    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    unlink(tmp);
}

/* durations in ms (member-cron's check ages translate to them) and the bitmap of matches */
static void test_ms_durations_and_match(void **state)
{
    char err[512];
    int rc;
    (void)state;
    rte_member_dir *d = load(path);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    /* 7d, 168h, 604800s and 604800000ms are the same instant */
    long week = count(s, "last_login_at < NOW() - 7d");
    assert_true(week > 0 && week < 300);
    assert_int_equal(count(s, "last_login_at < NOW() - 604800000ms"), week);
    assert_int_equal(count(s, "last_login_at < NOW() - 604800s"), week);
    assert_int_equal(count(s, "last_login_at < NOW() -604800000ms"), week);
    /* 1e15 ms (about 31,700 years) is the longest duration either way */
    assert_true(count(s, "last_login_at > NOW() - 1000000000000000ms") >= 0);
    expect_error("last_login_at > NOW() - 1000000000000001ms", "expected a duration");
    expect_error("last_login_at > NOW() - 5mss", "expected");

    /* rte_member_query_match: the same members as resolve, as a bitmap by index */
    rte_member_query *q = rte_member_query_parse("last_login_at < NOW() - 7d OR STATE = 'CA'", NOW,
                                                 &rc, err, sizeof err);
    assert_non_null(q);
    uint64_t *bits = NULL;
    size_t total = 0, n = rte_member_snapshot_count(s), set = 0;
    assert_int_equal(rte_member_query_match(q, s, &bits, &total, err, sizeof err), 0);
    const char **ids;
    size_t nids;
    rte_member_query_result res;
    assert_int_equal(rte_member_query_ids(q, s, &ids, &nids, &res, err, sizeof err), 0);
    assert_int_equal(total, nids);
    for (size_t i = 0; i < nids; i++) {
        size_t idx = rte_member_snapshot_index(s, rte_member_snapshot_find(s, ids[i]));
        assert_true((bits[idx >> 6] >> (idx & 63)) & 1);
    }
    for (size_t i = 0; i < n; i++)
        set += (bits[i >> 6] >> (i & 63)) & 1;
    assert_int_equal(set, total);
    free(ids);
    free(bits);
    rte_member_query_free(q);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

/* posting lists of an enum column, and an IN of rare codes answered from them */
static void test_postings(void **state)
{
    (void)state;
    rte_member_dir *d = load(path);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    size_t n = rte_member_snapshot_count(s);
    assert_null(rte_member_snapshot_postings(s, "has_rte_enabled")); /* not an enum */
    assert_null(rte_member_snapshot_postings(s, "no_such_column"));
    const rte_member_postings *p = rte_member_snapshot_postings(s, "state");
    assert_non_null(p);
    assert_ptr_equal(p, rte_member_snapshot_postings(s, "state")); /* built once, kept */
    assert_int_equal(p->rare_max, n / 16);
    const rte_member_column *c = rte_member_snapshot_column(s, "state");
    size_t listed = 0, rare_codes = 0;
    for (size_t v = 1; v < p->nvalues; v++) {
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            cnt += c->code[i] == v;
        assert_int_equal(p->count[v], cnt);
        size_t len = p->off[v + 1] - p->off[v];
        assert_int_equal(len, cnt <= p->rare_max ? cnt : 0);
        for (uint32_t j = p->off[v]; j < p->off[v + 1]; j++) {
            assert_int_equal(c->code[p->idx[j]], v);
            assert_true(j == p->off[v] || p->idx[j - 1] < p->idx[j]); /* index order */
        }
        listed += len;
        rare_codes += cnt && cnt <= p->rare_max;
    }
    assert_true(listed > 0 && rare_codes > 1);
    /* every state alone and in pairs: the list path gives what a scan of the codes gives */
    for (size_t v = 1; v < p->nvalues; v++) {
        const char *name = rte_member_snapshot_value(s, (uint32_t)v);
        if (!p->count[v] || !name[0])
            continue;
        char expr[256];
        snprintf(expr, sizeof expr, "state = '%s'", name);
        assert_int_equal(count(s, expr), (long)p->count[v]);
        snprintf(expr, sizeof expr, "state IN ('%s', 'CA') AND has_rte_enabled = TRUE", name);
        long want = 0;
        const rte_member_column *rte = rte_member_snapshot_column(s, "has_rte_enabled");
        for (size_t i = 0; i < n; i++) {
            const char *st = rte_member_snapshot_value(s, c->code[i]);
            want += (strcmp(st, name) == 0 || strcmp(st, "CA") == 0) &&
                    ((rte->bits[i >> 6] >> (i & 63)) & 1);
        }
        assert_int_equal(count(s, expr), want);
        snprintf(expr, sizeof expr, "NOT state = '%s'", name); /* never from the lists */
        long absent = 0;
        for (size_t i = 0; i < n; i++)
            absent += c->code[i] == 0;
        assert_int_equal(count(s, expr), (long)(n - p->count[v]) - absent);
    }
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

/* --- the events index ------------------------------------------------------ */

#define ENROLLED "domain.enrollment.v1.ENROLLED"
#define CHANGED "domain.enrollment.v1.COVERAGE_CHANGED"
#define SIGNIN "domain.authentication.v1.SIGNIN"

/*
 * E1: two ENROLLED (one 3 Jan 09:00, one 4 Jan 10:00) and a COVERAGE_CHANGED
 * at 4 Jan 10:00:00; E2: ENROLLED at exactly now - 48 h; E3: SIGNIN on the
 * 4th; then 100 members without events, so the index is the cheaper start
 */
/* a small member directory file for the events index tests (mkstemp fills the X's) */
static char *index_dir(void)
{
    static char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/test_member_query_evx_XXXXXX");
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("{\"member_id\":\"E1\",\"events\":[[\"2026-01-04T10:00:00Z\",\"" ENROLLED "\"],"
          "[\"2026-01-04T10:00:00Z\",\"" CHANGED "\"],[\"2026-01-03T09:00:00Z\",\"" ENROLLED
          "\"]]}\n"
          "{\"member_id\":\"E2\",\"events\":[[\"2026-01-03T00:00:00Z\",\"" ENROLLED "\"]]}\n"
          "{\"member_id\":\"E3\",\"events\":[[\"2026-01-04T00:00:00Z\",\"" SIGNIN "\"]]}\n",
          f);
    for (int i = 0; i < 100; i++)
        fprintf(f, "{\"member_id\":\"F%03d\"}\n", i);
    assert_int_equal(fclose(f), 0);
    return tmp;
}

static void test_event_index_layout(void **state)
{
    (void)state;
    char *p = index_dir();
    rte_member_dir *d = load(p);
    unlink(p);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    const rte_member_event_index *x = rte_member_snapshot_event_index(s);
    assert_non_null(x);
    assert_ptr_equal(rte_member_snapshot_event_index(s), x); /* built once, kept */
    assert_int_equal(x->nentries, 5);
    assert_int_equal(x->ntypes, 3);
    size_t from, to;
    uint32_t enrolled = rte_member_snapshot_value_id(s, ENROLLED);
    /* ENROLLED in time order: E2 (3 Jan 00:00), E1 (3 Jan 09:00), E1 (4 Jan 10:00) */
    rte_member_event_index_range(x, enrolled, 0, UINT32_MAX, &from, &to);
    assert_int_equal(to - from, 3);
    const char *want[] = {"E2", "E1", "E1"};
    const uint32_t at[] = {1767398400, 1767430800, 1767520800};
    for (size_t j = 0; j < 3; j++) {
        uint64_t e = x->ent[from + j];
        assert_int_equal((uint32_t)(e >> 32), at[j]);
        assert_string_equal(rte_member_snapshot_at(s, (uint32_t)e)->member_id, want[j]);
    }
    /* [lo, hi) in seconds: 3 Jan 09:00 is in [09:00, 09:00:01), not in [00:00, 09:00) */
    rte_member_event_index_range(x, enrolled, 1767430800, 1767430801, &from, &to);
    assert_int_equal(to - from, 1);
    rte_member_event_index_range(x, enrolled, 1767398400, 1767430800, &from, &to);
    assert_int_equal(to - from, 1);
    rte_member_event_index_range(x, 0, 0, UINT32_MAX, &from, &to); /* code 0: no type */
    assert_int_equal(to - from, 0);
    /* the categories ride along: ENROLLMENT (3) twice, AUTHENTICATION (1) once */
    int cats = 0;
    for (size_t t = 0; t < x->ntypes; t++)
        cats += x->category[t];
    assert_int_equal(cats, 3 + 3 + 1);
    assert_true(x->bytes >= 5 * sizeof(uint64_t));
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

static void test_event_filters_through_index(void **state)
{
    (void)state;
    char *p = index_dir(), ids[256];
    rte_member_dir *d = load(p);
    unlink(p);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    Rte__V1__MemberQuery m = RTE__V1__MEMBER_QUERY__INIT;
    Rte__V1__RecentEventFilter ev = RTE__V1__RECENT_EVENT_FILTER__INIT;
    Rte__V1__Duration win = RTE__V1__DURATION__INIT;
    Rte__V1__Timestamp before = RTE__V1__TIMESTAMP__INIT;
    m.recent_event_filter = &ev;

    /* enrolled in the last 48 h: the window opens at exactly E2's event (included);
       E1's two enrollments make it one member */
    win.seconds = 48 * 3600;
    ev.within_last = &win;
    ev._has_enrolled_recently_case =
        RTE__V1__RECENT_EVENT_FILTER___HAS_ENROLLED_RECENTLY_HAS_ENROLLED_RECENTLY;
    ev.has_enrolled_recently = 1;
    assert_int_equal(run(s, &m, ids, sizeof ids), 2);
    assert_string_equal(ids, "E1E2");
    /* one millisecond less: the window opens 1 ms after E2's event */
    win.seconds = 48 * 3600 - 1;
    win.nanos = 999000000;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "E1");
    win.nanos = 0;
    win.seconds = 48 * 3600;

    /* before is strict: COVERAGE_CHANGED at 4 Jan 10:00:00.000 is not before itself,
       it is before 10:00:00.001 */
    ev._has_enrolled_recently_case = 0;
    ev._has_coverage_change_case =
        RTE__V1__RECENT_EVENT_FILTER___HAS_COVERAGE_CHANGE_HAS_COVERAGE_CHANGE;
    ev.has_coverage_change = 1;
    before.seconds = 1767520800;
    ev.events_before = &before;
    assert_int_equal(run(s, &m, ids, sizeof ids), 0);
    before.nanos = 1000000;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "E1");
    ev.events_before = NULL;

    /* Example 11's shape: ENROLLMENT events, enrolled and coverage changed, 48 h */
    Rte__V1__RecentEventFilter__EventCategory enrollment[] = {3};
    ev.n_event_categories = 1;
    ev.event_categories = enrollment;
    ev._has_enrolled_recently_case =
        RTE__V1__RECENT_EVENT_FILTER___HAS_ENROLLED_RECENTLY_HAS_ENROLLED_RECENTLY;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "E1");
    ev._has_enrolled_recently_case = 0;
    ev._has_coverage_change_case = 0;

    /* counts: E1 has three ENROLLMENT events in the window, E2 one; each member once */
    ev._min_event_count_case = RTE__V1__RECENT_EVENT_FILTER___MIN_EVENT_COUNT_MIN_EVENT_COUNT;
    ev.min_event_count = 1;
    assert_int_equal(run(s, &m, ids, sizeof ids), 2);
    assert_string_equal(ids, "E1E2");
    ev.min_event_count = 3;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "E1");
    ev.min_event_count = 4;
    assert_int_equal(run(s, &m, ids, sizeof ids), 0);
    ev._min_event_count_case = 0;
    ev.n_event_categories = 0;

    /* a type list ORs: COVERAGE_CHANGED or SIGNIN in 48 h; a type nobody has: none */
    char *types[] = {CHANGED, SIGNIN}, *unknown[] = {"domain.enrollment.v1.NO_SUCH_TYPE"};
    ev.n_event_types = 2;
    ev.event_types = types;
    assert_int_equal(run(s, &m, ids, sizeof ids), 2);
    assert_string_equal(ids, "E1E3");
    ev.n_event_types = 1;
    ev.event_types = unknown;
    assert_int_equal(run(s, &m, ids, sizeof ids), 0);
    ev.n_event_types = 0;

    /* has_*: false: an event in the window (the window alone asks for one) and no
       enrollment among them: E3 */
    ev._has_enrolled_recently_case =
        RTE__V1__RECENT_EVENT_FILTER___HAS_ENROLLED_RECENTLY_HAS_ENROLLED_RECENTLY;
    ev.has_enrolled_recently = 0;
    assert_int_equal(run(s, &m, ids, sizeof ids), 1);
    assert_string_equal(ids, "E3");
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

/* the oracle: member i has an event of one of types (codes) in [lo_ms, hi_ms) */
static int has_event(const rte_member_snapshot *s, size_t i, const uint32_t *types, size_t nt,
                     int64_t lo_ms, int64_t hi_ms)
{
    const rte_member_event *e;
    size_t n = rte_member_snapshot_events(s, i, &e);
    for (size_t k = 0; k < n; k++) {
        int64_t at = (int64_t)e[k].at_s * 1000;
        for (size_t t = 0; t < nt; t++)
            if (e[k].type == types[t] && at >= lo_ms && at < hi_ms)
                return 1;
    }
    return 0;
}

/*
 * random type lists and windows whose ends sit on event times, 1 ms either
 * side or on them, over the 300 members: the index answers what reading
 * every member's events answers
 */
static void test_event_index_matches_scan(void **state)
{
    (void)state;
    rte_member_dir *d = load(path);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    size_t n = rte_member_snapshot_count(s);
    const rte_member_event_index *x = rte_member_snapshot_event_index(s);
    assert_non_null(x);
    assert_true(x->ntypes >= 10);
    uint32_t seed = 19;
    for (int round = 0; round < 300; round++) {
        uint32_t codes[2];
        char *names[2];
        size_t nt = 1 + (round & 1);
        for (size_t t = 0; t < nt; t++) {
            seed = seed * 1103515245u + 12345u;
            codes[t] = x->types[(seed >> 8) % x->ntypes];
            names[t] = (char *)rte_member_snapshot_value(s, codes[t]);
        }
        int64_t ends[2];
        for (int k = 0; k < 2; k++) { /* an event's time, or 1 ms before or after it */
            seed = seed * 1103515245u + 12345u;
            uint64_t e = x->ent[(seed >> 8) % x->nentries];
            ends[k] = (int64_t)(e >> 32) * 1000 + (int64_t)((seed >> 4) % 3) - 1;
        }
        int64_t lo = ends[0] < ends[1] ? ends[0] : ends[1], hi = ends[0] ^ ends[1] ^ lo;
        Rte__V1__MemberQuery m = RTE__V1__MEMBER_QUERY__INIT;
        Rte__V1__RecentEventFilter ev = RTE__V1__RECENT_EVENT_FILTER__INIT;
        Rte__V1__Timestamp after = RTE__V1__TIMESTAMP__INIT, before = RTE__V1__TIMESTAMP__INIT;
        after.seconds = lo / 1000;
        after.nanos = (int32_t)(lo % 1000) * 1000000;
        before.seconds = hi / 1000;
        before.nanos = (int32_t)(hi % 1000) * 1000000;
        ev.events_after = &after;
        ev.events_before = &before;
        ev.n_event_types = nt;
        ev.event_types = names;
        m.recent_event_filter = &ev;
        uint32_t signin = rte_member_snapshot_value_id(s, SIGNIN);
        if (round % 3 == 2) { /* and a sign-in in the window */
            ev._has_signed_in_recently_case =
                RTE__V1__RECENT_EVENT_FILTER___HAS_SIGNED_IN_RECENTLY_HAS_SIGNED_IN_RECENTLY;
            ev.has_signed_in_recently = 1;
        }
        char err[512];
        int rc;
        rte_member_query *q = rte_member_query_new(&m, NOW, &rc, err, sizeof err);
        assert_non_null(q);
        uint64_t *bits;
        size_t total, want = 0;
        assert_int_equal(rte_member_query_match(q, s, &bits, &total, err, sizeof err), 0);
        for (size_t i = 0; i < n; i++) {
            int hit = has_event(s, i, codes, nt, lo, hi) &&
                      (round % 3 != 2 || has_event(s, i, &signin, 1, lo, hi));
            want += (size_t)hit;
            if (hit != (int)((bits[i >> 6] >> (i & 63)) & 1))
                fail_msg("round %d: member %zu: %s in [%lld, %lld): want %d", round, i, names[0],
                         (long long)lo, (long long)hi, hit);
        }
        assert_int_equal(total, want);
        free(bits);
        rte_member_query_free(q);
    }
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty_query_and_paging, setup),
        cmocka_unit_test(test_expression_errors),
        cmocka_unit_test(test_invalid_fields),
        cmocka_unit_test_setup(test_null_semantics, setup),
        cmocka_unit_test(test_recent_events_and_ages),
        cmocka_unit_test_setup(test_ms_durations_and_match, setup),
        cmocka_unit_test_setup(test_postings, setup),
        cmocka_unit_test(test_event_index_layout),
        cmocka_unit_test(test_event_filters_through_index),
        cmocka_unit_test_setup(test_event_index_matches_scan, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
