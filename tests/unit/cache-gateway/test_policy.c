/*
 * test_policy.c - gw_policy: modes, Cache-Control / Prefer parsing, the
 * decision table (golden cases in tests/data/cache-gateway/decisions.txt),
 * stale-if-error, XFetch, id checks and the response headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_policy.h"

static const char *const action_names[] = {
    "SERVE", "SERVE_REFRESH", "SERVE_STALE", "SERVE_STALE_REFRESH", "FETCH", "REFUSE_MISS"};

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

static void test_decision_table(void **state)
{
    (void)state;
    char path[512], line[512];
    const char *dir = getenv("RTE_DATA_DIR");
    snprintf(path, sizeof path, "%s/cache-gateway/decisions.txt", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int cases = 0;
    const int64_t now = 1800000000000LL;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL, *cols[4] = {NULL, NULL, NULL, NULL};
        int n = 0;
        for (char *t = strtok_r(line, "|", &save); t && n < 4; t = strtok_r(NULL, "|", &save))
            cols[n++] = trim(t);
        assert_int_equal(n, 4);
        gw_policy p;
        char err[300];
        const char *mode = strcmp(cols[0], "-") == 0 ? NULL : cols[0];
        const char *cc = strcmp(cols[1], "-") == 0 ? NULL : cols[1];
        assert_int_equal(gw_policy_from_request(&p, mode, cc, NULL, err, sizeof err), 0);
        gw_lookup l = {0};
        int xfetch = 0;
        if (strcmp(cols[2], "fresh") == 0 || strcmp(cols[2], "fresh-xfetch") == 0) {
            l = (gw_lookup){1, now - 1000, now + 3600000};
            xfetch = cols[2][5] == '-';
        } else if (strncmp(cols[2], "stale:", 6) == 0) {
            int64_t past = strtoll(cols[2] + 6, NULL, 10) * 1000;
            l = (gw_lookup){1, now - past - 79200000, now - past};
        } else if (strncmp(cols[2], "old:", 4) == 0) {
            int64_t age = strtoll(cols[2] + 4, NULL, 10) * 1000;
            l = (gw_lookup){1, now - age, now - age + 79200000};
        }
        enum gw_action a = gw_decide(&p, &l, now, xfetch);
        if (strcmp(action_names[a], cols[3]) != 0)
            fail_msg("case %s | %s | %s: got %s, want %s", cols[0], cols[1], cols[2],
                     action_names[a], cols[3]);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 30);
}

static void test_modes(void **state)
{
    (void)state;
    assert_int_equal(gw_mode_parse("DEFAULT"), GW_MODE_DEFAULT);
    assert_int_equal(gw_mode_parse("stale_while_revalidate"), GW_MODE_STALE_WHILE_REVALIDATE);
    assert_int_equal(gw_mode_parse("SOMETIMES"), -1);
    assert_string_equal(gw_mode_label(GW_MODE_CACHE_ONLY), "cache_only");
    gw_policy p;
    char err[300];
    assert_int_equal(gw_policy_from_request(&p, "NEVER", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "cache_control"));
    assert_non_null(strstr(err, "STALE_WHILE_REVALIDATE"));
    assert_non_null(strstr(err, "PREFER_CACHED"));
    /* an explicit mode wins over the directive's */
    assert_int_equal(gw_policy_from_request(&p, "PREFER_CACHED", "no-cache", NULL, err, sizeof err),
                     0);
    assert_int_equal(p.mode, GW_MODE_PREFER_CACHED);
    /* given but empty is not "not given" */
    assert_int_equal(gw_policy_from_request(&p, "", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "field 'cache_control': empty mode"));
    /* the caller's bytes come back printable */
    assert_int_equal(gw_policy_from_request(&p,
                                            "A\xff\x01"
                                            "B",
                                            NULL, NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "unknown mode 'A??B'"));
}

static void test_directives(void **state)
{
    (void)state;
    gw_policy p;
    char err[300];
    assert_int_equal(gw_policy_from_request(&p, NULL,
                                            " max-stale = 30 ,stale-if-error=\"600\", max-age=5",
                                            NULL, err, sizeof err),
                     0);
    assert_int_equal(p.max_stale_s, 30);
    assert_int_equal(p.stale_if_error_s, 600);
    assert_int_equal(p.max_age_s, 5);
    assert_int_equal(
        gw_policy_from_request(&p, NULL, "max-stale, stale-if-error", NULL, err, sizeof err), 0);
    assert_true(p.max_stale_s == INT64_MAX && p.stale_if_error_s == INT64_MAX);
    assert_int_equal(gw_policy_from_request(&p, NULL, "max-stale=-1", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "max-stale"));
    assert_int_equal(gw_policy_from_request(&p, NULL, "max-age", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "max-age"));
    /* Prefer */
    assert_int_equal(
        gw_policy_from_request(&p, NULL, NULL, "respond-async, wait=10", err, sizeof err), 0);
    assert_true(p.respond_async);
    assert_int_equal(p.wait_s, 10);
    assert_int_equal(gw_policy_from_request(&p, NULL, NULL, "handling=lenient", err, sizeof err),
                     0);
    assert_false(p.respond_async);
    assert_int_equal(p.wait_s, -1);
}

/* parse cc (Cache-Control) and prefer; the rc, with *p filled */
static int parse(gw_policy *p, const char *cc, const char *prefer, char *err)
{
    return gw_policy_from_request(p, NULL, cc, prefer, err, 300);
}

/*
 * RFC 9111 1.2.2 delta-seconds: 1*DIGIT, any number of digits, a value too
 * large taken as 2^31; token or quoted-string (5.2). A known directive with
 * anything else is refused naming it; unknown directives are ignored even
 * when commas hide in their quoted values; the first of a repeated
 * directive counts (4.2.1).
 */
static void test_cache_control_values(void **state)
{
    (void)state;
    gw_policy p;
    char err[300];
    assert_int_equal(parse(&p, "max-age=99999999999999999999999999", NULL, err), 0);
    assert_int_equal(p.max_age_s, 2147483648LL);
    assert_int_equal(parse(&p, "max-stale=2147483647, stale-if-error=2147483649", NULL, err), 0);
    assert_int_equal(p.max_stale_s, 2147483647LL);
    assert_int_equal(p.stale_if_error_s, 2147483648LL);
    assert_int_equal(parse(&p, "max-age=000000000000000000000000000005", NULL, err), 0);
    assert_int_equal(p.max_age_s, 5);
    assert_int_equal(parse(&p, "MAX-AGE=\"4\"", NULL, err), 0);
    assert_int_equal(p.max_age_s, 4);
    static const struct {
        const char *cc, *named;
    } bad[] = {
        {"max-age=-1", "max-age"},
        {"max-stale=abc", "max-stale"},
        {"max-age=1.5", "max-age"},
        {"max-age=", "max-age"},
        {"max-stale=", "max-stale"},
        {"max-age=5 6", "max-age"},
        {"max-age=\"5", "max-age"},
        {"max-age=\"\"", "max-age"},
        {"stale-if-error=+5", "stale-if-error"},
        {"max-age=5;x", "max-age"},
        {"no-cache=5", "no-cache"},
        {"only-if-cached=\"1\"", "only-if-cached"},
        {"max-age=3, max-age=x", "max-age"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (parse(&p, bad[i].cc, NULL, err) != -1)
            fail_msg("'%s' was accepted", bad[i].cc);
        if (strstr(err, "Cache-Control") == NULL || strstr(err, bad[i].named) == NULL)
            fail_msg("'%s': error '%s' does not name '%s'", bad[i].cc, err, bad[i].named);
    }
    /* unknown directives are ignored, commas inside their quoted values included */
    assert_int_equal(parse(&p, "ext=\"a, max-age=abc\", max-age=7", NULL, err), 0);
    assert_int_equal(p.max_age_s, 7);
    assert_int_equal(parse(&p, "foo=bar baz, private, max-age=3", NULL, err), 0);
    assert_int_equal(p.max_age_s, 3);
    /* the first occurrence counts */
    assert_int_equal(parse(&p, "max-age=5, max-age=60", NULL, err), 0);
    assert_int_equal(p.max_age_s, 5);
    assert_int_equal(parse(&p, "max-stale=10, max-stale", NULL, err), 0);
    assert_int_equal(p.max_stale_s, 10);
}

/*
 * RFC 7240 2: a preference the server cannot honour is ignored, never an
 * error; only the first instance of a preference counts; empty values are
 * no values; parameters after ';' belong to the preference before them.
 */
static void test_prefer_is_never_an_error(void **state)
{
    (void)state;
    gw_policy p;
    char err[300];
    static const char *const ignored[] = {"wait=soon", "wait=-1",  "wait=",    "wait",
                                          "wait=1.5",  "wait=\"3", "wait;x=5", "wait=5 6"};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        if (parse(&p, NULL, ignored[i], err) != 0)
            fail_msg("Prefer '%s' refused: %s", ignored[i], err);
        if (p.wait_s != -1)
            fail_msg("Prefer '%s': wait %lld, want none", ignored[i], (long long)p.wait_s);
    }
    assert_int_equal(parse(&p, NULL, "wait=99999", err), 0);
    assert_int_equal(p.wait_s, 3600);
    assert_int_equal(parse(&p, NULL, "wait=10, wait=20", err), 0);
    assert_int_equal(p.wait_s, 10);
    assert_int_equal(parse(&p, NULL, "wait=soon, wait=20", err), 0);
    assert_int_equal(p.wait_s, -1);
    assert_int_equal(parse(&p, NULL, "Wait = \"15\" ; foo=1, respond-async", err), 0);
    assert_int_equal(p.wait_s, 15);
    assert_true(p.respond_async);
    assert_int_equal(parse(&p, NULL, "respond-async=\"\"", err), 0);
    assert_true(p.respond_async);
    assert_int_equal(parse(&p, NULL, "respond-async=yes", err), 0);
    assert_false(p.respond_async);
    assert_int_equal(parse(&p, NULL, "return=\"a,b\";x, wait=2", err), 0);
    assert_int_equal(p.wait_s, 2);
    /* Prefer trouble never hides a Cache-Control error */
    assert_int_equal(parse(&p, "max-age=x", "wait=1", err), -1);
    assert_non_null(strstr(err, "max-age"));
}

static void test_stale_if_error(void **state)
{
    (void)state;
    const int64_t now = 1800000000000LL;
    gw_policy p;
    char err[300];
    gw_lookup stale = {1, now - 90000000, now - 120000}; /* 120 s past */
    gw_lookup none = {0};
    assert_int_equal(gw_policy_from_request(&p, NULL, NULL, NULL, err, sizeof err), 0);
    assert_false(gw_stale_usable_on_error(&p, &stale, now));
    assert_int_equal(gw_policy_from_request(&p, NULL, "stale-if-error", NULL, err, sizeof err), 0);
    assert_true(gw_stale_usable_on_error(&p, &stale, now));
    assert_false(gw_stale_usable_on_error(&p, &none, now));
    assert_int_equal(gw_policy_from_request(&p, NULL, "stale-if-error=60", NULL, err, sizeof err),
                     0);
    assert_false(gw_stale_usable_on_error(&p, &stale, now));
    assert_int_equal(gw_policy_from_request(&p, NULL, "stale-if-error=300", NULL, err, sizeof err),
                     0);
    assert_true(gw_stale_usable_on_error(&p, &stale, now));
    assert_int_equal(gw_policy_from_request(&p, "PREFER_CACHED", NULL, NULL, err, sizeof err), 0);
    assert_true(gw_stale_usable_on_error(&p, &stale, now));
}

static void test_xfetch(void **state)
{
    (void)state;
    /* beta 0 or no delta: never */
    assert_false(gw_xfetch(1000, 2000, 500, 0, 0.001));
    assert_false(gw_xfetch(1000, 2000, 0, 1, 0.001));
    /* already expired: always */
    assert_true(gw_xfetch(3000, 2000, 100, 1, 1.0));
    /* 1000 ms left, delta 500: refresh iff -500 ln u >= 1000, u <= e^-2 */
    assert_true(gw_xfetch(1000, 2000, 500, 1, exp(-2.0) - 1e-6));
    assert_false(gw_xfetch(1000, 2000, 500, 1, exp(-2.0) + 1e-3));
    /* frequency over a uniform grid matches e^-(gap/(delta*beta)) */
    int hits = 0, n = 10000;
    for (int i = 1; i <= n; i++)
        hits += gw_xfetch(0, 1000, 1000, 1, (double)i / n);
    assert_true(fabs((double)hits / n - exp(-1.0)) < 0.01);
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(gw_valid_id("M123-abc_9.x", 64));
    assert_false(gw_valid_id("", 64));
    assert_false(gw_valid_id("a b", 64));
    assert_false(gw_valid_id("a/b", 64));
    assert_false(gw_valid_id("abcdef", 5));
    assert_true(gw_valid_id("abcde", 5));
    assert_false(gw_valid_id(NULL, 5));
}

static void test_headers(void **state)
{
    (void)state;
    rte_cache_entry e;
    char buf[200];
    memset(&e, 0, sizeof e);
    e.cached_at_ms = 1000000;
    e.fresh_until_ms = e.cached_at_ms + 22LL * 3600 * 1000;
    gw_cache_control_header(&e, 72LL * 3600 * 1000, buf, sizeof buf);
    assert_string_equal(buf, "max-age=79200, stale-while-revalidate=180000, stale-if-error=180000");
    gw_cache_status_header(1, GW_FWD_NONE, 0, 0, &e, e.cached_at_ms + 200000, NULL, buf,
                           sizeof buf);
    assert_string_equal(buf, "rte-gateway; hit; ttl=79000");
    gw_cache_status_header(0, GW_FWD_MISS, 200, 1, &e, e.cached_at_ms, NULL, buf, sizeof buf);
    assert_string_equal(buf, "rte-gateway; fwd=miss; fwd-status=200; stored; ttl=79200");
    gw_cache_status_header(0, GW_FWD_STALE, 502, 0, &e, e.fresh_until_ms + 1500, "stale-if-error",
                           buf, sizeof buf);
    assert_string_equal(buf,
                        "rte-gateway; fwd=stale; fwd-status=502; ttl=-2; detail=stale-if-error");
    gw_cache_status_header(0, GW_FWD_BYPASS, 0, 0, NULL, 0, NULL, buf, sizeof buf);
    assert_string_equal(buf, "rte-gateway; fwd=bypass");
    /* a short buffer gets the text cut and NUL-terminated, as snprintf would */
    gw_cache_status_header(1, GW_FWD_MISS, 200, 0, &e, e.cached_at_ms, NULL, buf, 20);
    assert_string_equal(buf, "rte-gateway; hit; f");
    gw_cache_control_header(&e, 72LL * 3600 * 1000, buf, 12);
    assert_string_equal(buf, "max-age=792");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_directives),
        cmocka_unit_test(test_cache_control_values),
        cmocka_unit_test(test_prefer_is_never_an_error),
        cmocka_unit_test(test_stale_if_error),
        cmocka_unit_test(test_xfetch),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
