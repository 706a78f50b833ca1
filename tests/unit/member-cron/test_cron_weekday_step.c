/*
 * test_cron_weekday_step.c - "7/step" in the day-of-week field: weekday 7
 * is Sunday, so the element is Sunday alone (fuzz_cron_expr found it
 * parsed to no day at all; tests/fuzz/regressions/cron_expr/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cron_expr.h"

static void test_seven_step_is_sunday(void **state)
{
    (void)state;
    cron_expr e;
    char err[256];
    assert_int_equal(cron_expr_parse("0 0 * * 7/2", &e, err, sizeof err), 0);
    assert_int_equal(e.dow, 1u); /* bit 0: Sunday */
    cron_tz *utc = cron_tz_load(NULL, "UTC", err, sizeof err);
    assert_non_null(utc);
    /* Monday 2026-01-05 00:00 UTC -> Sunday 2026-01-11 00:00 UTC */
    assert_int_equal(cron_expr_next(&e, utc, 1767571200), 1768089600);
    cron_tz_free(utc);
    assert_int_equal(cron_expr_parse("12 1 1 11 7/5", &e, err, sizeof err), 0);
    assert_int_equal(e.dow, 1u);
    assert_int_equal(cron_expr_parse("0 0 * * 5/1", &e, err, sizeof err), 0);
    assert_int_equal(e.dow, (1u << 5) | (1u << 6)); /* Friday through Saturday, as before */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seven_step_is_sunday),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
