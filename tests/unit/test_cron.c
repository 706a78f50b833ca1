/*
 * test_cron - cron expressions and TZif zones (libcommon cron.c, tz.c).
 *
 * Golden cases are data: tests/data/cron/cron_next.txt (zone,
 * expression, after, expected next fires, DST edges included) and
 * cron_invalid.txt (expression, expected error text). RTE_DATA_DIR points at
 * tests/data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rte/cron.h"
#include "rte/tz.h"
#include "rte/clock.h"

static FILE *open_data(const char *name)
{
    char path[512];
    const char *dir = getenv("RTE_DATA_DIR");
    snprintf(path, sizeof path, "%s/cron/%s", dir ? dir : "tests/data", name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repo root with RTE_DATA_DIR=tests/data)", path);
    return f;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static void fmt(int64_t s, char *buf)
{
    char tmp[40];
    rte_clock_format(s * 1000, tmp, sizeof tmp);
    /* "2026-01-05T06:00:00.000Z" -> "2026-01-05T06:00:00Z" */
    snprintf(buf, 32, "%.19sZ", tmp);
}

static void golden_next(void **state)
{
    (void)state;
    FILE *f = open_data("cron_next.txt");
    char line[1024];
    int cases = 0, fires = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *zone = trim(strtok_r(line, "|", &save));
        char *expr = trim(strtok_r(NULL, "|", &save));
        char *after = trim(strtok_r(NULL, "|", &save));
        char *expect = trim(strtok_r(NULL, "|", &save));
        char err[256];
        rte_tz *tz = rte_tz_load(NULL, zone, err, sizeof err);
        if (!tz)
            fail_msg("%s", err);
        rte_cron e;
        if (rte_cron_parse(expr, &e, err, sizeof err) != 0)
            fail_msg("'%s': %s", expr, err);
        int64_t t = rte_clock_parse(after) / 1000;
        char *s2 = NULL;
        for (char *want = strtok_r(expect, " ", &s2); want; want = strtok_r(NULL, " ", &s2)) {
            char got[32];
            t = rte_cron_next(&e, tz, t);
            fmt(t, got);
            if (strcmp(got, want) != 0)
                fail_msg("%s '%s' after %s: got %s, want %s", zone, expr, after, got, want);
            fires++;
        }
        rte_tz_free(tz);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 40);
    print_message("cron_next.txt: %d cases, %d fires checked\n", cases, fires);
}

static void golden_invalid(void **state)
{
    (void)state;
    FILE *f = open_data("cron_invalid.txt");
    char line[512];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char *bar = strrchr(line, '|');
        assert_non_null(bar);
        *bar = '\0';
        char *expr = trim(line), *want = trim(bar + 1);
        rte_cron e;
        char err[256] = "";
        if (rte_cron_parse(expr, &e, err, sizeof err) == 0)
            fail_msg("'%s' was accepted", expr);
        if (!strstr(err, want))
            fail_msg("'%s': error '%s' lacks '%s'", expr, err, want);
        cases++;
    }
    fclose(f);
    assert_true(cases >= 18);
}

static void fields_and_names(void **state)
{
    (void)state;
    rte_cron e;
    char err[256];
    assert_int_equal(rte_cron_parse("0-59/15 0,12 1-5 jan-mar,DEC sun,Sat", &e, err, sizeof err),
                     0);
    assert_true(e.minute == ((1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45)));
    assert_int_equal(e.hour, (1u << 0) | (1u << 12));
    assert_int_equal(e.dom, 0x3eu);
    assert_int_equal(e.month, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
    assert_int_equal(e.dow, (1u << 0) | (1u << 6));
    assert_false(e.dom_star || e.dow_star || e.hour_star);
    assert_int_equal(rte_cron_parse("@HOURLY", &e, err, sizeof err), 0);
    assert_true(e.hour_star);
    assert_int_equal(e.minute, 1);
    assert_int_equal(rte_cron_parse("  0 0 * * 7  ", &e, err, sizeof err), 0);
    assert_int_equal(e.dow, 1);
}

/*
 * The weekday field runs 0..7 with both ends Sunday (bit 0), so a step
 * reaches Sunday as 7: N/step runs N through 7, never stopping at Saturday.
 */
static void weekday_steps_reach_sunday(void **state)
{
    (void)state;
    static const struct {
        const char *dow;
        uint32_t bits; /* bit 0 = Sunday .. bit 6 = Saturday */
        int star;
    } cases[] = {
        {"7/2", 1u << 0, 0},
        {"7/1", 1u << 0, 0},
        {"5/1", (1u << 5) | (1u << 6) | (1u << 0), 0},
        {"6/1", (1u << 6) | (1u << 0), 0},
        {"1/2", (1u << 1) | (1u << 3) | (1u << 5) | (1u << 0), 0},
        {"thu/3", (1u << 4) | (1u << 0), 0},
        {"0/7", 1u << 0, 0},
        {"1-7/2", (1u << 1) | (1u << 3) | (1u << 5) | (1u << 0), 0},
        {"fri-sun", (1u << 5) | (1u << 6) | (1u << 0), 0},
        {"6-0", (1u << 6) | (1u << 0), 0},
        {"mon-0/3", (1u << 1) | (1u << 4) | (1u << 0), 0},
        {"*/2", (1u << 0) | (1u << 2) | (1u << 4) | (1u << 6), 1},
        {"*/7", 1u << 0, 1},
        {"*", 0x7fu, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[64], err[256];
        rte_cron e;
        snprintf(text, sizeof text, "0 0 * * %s", cases[i].dow);
        if (rte_cron_parse(text, &e, err, sizeof err) != 0)
            fail_msg("'%s': %s", text, err);
        if (e.dow != cases[i].bits || e.dow_star != cases[i].star)
            fail_msg("'%s': weekdays 0x%02x (star %d), want 0x%02x (star %d)", text, e.dow,
                     e.dow_star, cases[i].bits, cases[i].star);
    }
    /* 7/2 used to parse as "no weekday at all" and never fire */
    char err[256];
    rte_cron e;
    rte_tz *utc = rte_tz_load(NULL, "UTC", err, sizeof err);
    assert_non_null(utc);
    assert_int_equal(rte_cron_parse("0 0 * * 7/2", &e, err, sizeof err), 0);
    /* after Mon 2026-01-05 00:00Z: Sun 2026-01-11 */
    assert_int_equal(rte_cron_next(&e, utc, rte_clock_parse("2026-01-05T00:00:00Z") / 1000),
                     rte_clock_parse("2026-01-11T00:00:00Z") / 1000);
    rte_tz_free(utc);
}

static void zone_offsets(void **state)
{
    (void)state;
    char err[256];
    rte_tz *ny = rte_tz_load(NULL, "America/New_York", err, sizeof err);
    rte_tz *lh = rte_tz_load(NULL, "Australia/Lord_Howe", err, sizeof err);
    rte_tz *utc = rte_tz_load(NULL, "UTC", err, sizeof err);
    assert_non_null(ny);
    assert_non_null(lh);
    assert_non_null(utc);
    int64_t spring = rte_clock_parse("2026-03-08T07:00:00Z") / 1000;
    assert_int_equal(rte_tz_offset(ny, spring - 1), -5 * 3600);
    assert_int_equal(rte_tz_offset(ny, spring), -4 * 3600);
    assert_int_equal(rte_tz_next_transition(ny, spring - 86400), spring);
    /* 2099 is past the table: the footer rule decides */
    int64_t far = rte_clock_parse("2099-07-01T12:00:00Z") / 1000;
    assert_int_equal(rte_tz_offset(ny, far), -4 * 3600);
    assert_int_equal(rte_tz_offset(ny, far + 180 * 86400), -5 * 3600);
    assert_int_equal(rte_tz_offset(lh, rte_clock_parse("2026-01-05T00:00:00Z") / 1000), 11 * 3600);
    assert_int_equal(rte_tz_offset(lh, rte_clock_parse("2026-07-05T00:00:00Z") / 1000),
                     10 * 3600 + 1800);
    assert_int_equal(rte_tz_offset(utc, far), 0);
    assert_int_equal(rte_tz_next_transition(utc, 0), INT64_MAX);

    int64_t out[2];
    /* 02:30 local on 2026-03-08 does not exist; 01:30 on 2026-11-01 happens twice */
    int64_t gap = rte_days_from_civil(2026, 3, 8) * 86400 + 2 * 3600 + 1800;
    int64_t rep = rte_days_from_civil(2026, 11, 1) * 86400 + 3600 + 1800;
    assert_int_equal(rte_tz_resolve(ny, gap, out), 0);
    assert_int_equal(rte_tz_resolve(ny, rep, out), 2);
    assert_int_equal(out[0], rte_clock_parse("2026-11-01T05:30:00Z") / 1000);
    assert_int_equal(out[1], rte_clock_parse("2026-11-01T06:30:00Z") / 1000);
    assert_int_equal(rte_tz_resolve(ny, rep + 86400, out), 1);
    rte_tz_free(ny);
    rte_tz_free(lh);
    rte_tz_free(utc);
}

static void zone_errors(void **state)
{
    (void)state;
    char err[256];
    assert_null(rte_tz_load(NULL, "Mars/Olympus_Mons", err, sizeof err));
    assert_non_null(strstr(err, "unknown zone"));
    assert_null(rte_tz_load(NULL, "../../etc/passwd", err, sizeof err));
    assert_non_null(strstr(err, "not a valid IANA zone name"));
    assert_null(rte_tz_load("/etc", "hostname", err, sizeof err));
    assert_non_null(strstr(err, "not a TZif file"));
}

static void civil_roundtrip(void **state)
{
    (void)state;
    for (int64_t d = -800000; d < 800000; d += 37) {
        int64_t y;
        int m, dd;
        rte_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(rte_days_from_civil(y, m, dd), d);
    }
    assert_int_equal(rte_days_from_civil(2026, 1, 5), 20458);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_next),      cmocka_unit_test(golden_invalid),
        cmocka_unit_test(fields_and_names), cmocka_unit_test(weekday_steps_reach_sunday),
        cmocka_unit_test(zone_offsets),     cmocka_unit_test(zone_errors),
        cmocka_unit_test(civil_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
