/*
 * test_wh_escaped_key.c - a callback whose results key is written with an
 * escape: the envelopes must carry the results that were validated (found
 * by the invariant of tests/fuzz/webhook-receiver/fuzz_wh_callback.c; the
 * input is tests/fuzz/regressions/wh_callback/escaped-results-key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/json.h"
#include "wh_callback.h"

static void test_escaped_results_key(void **state)
{
    (void)state;
    /* cJSON reads the first key as "results"; a later literal one must not be what is sent */
    static const char body[] =
        "{\"batch_id\":\"b1\",\"status\":\"completed\","
        "\"resu\\u006cts\":[{\"check_id\":\"A\",\"member_id\":\"M\",\"trading_partner_id\":\"T\","
        "\"status\":\"error\"}],"
        "\"results\":[{\"check_id\":\"EVIL\",\"member_id\":\"M\",\"trading_partner_id\":\"T\","
        "\"status\":\"completed\",\"eligibility\":{\"eligible\":\"yes\"}}]}";
    wh_callback cb;
    char err[256];

    /*
     * The strict JSON policy compares keys after unescaping: the two spellings
     * are one key given twice, so the body is refused before anything is read
     * from it (docs/input.md), and no envelope can carry either copy.
     */
    assert_int_not_equal(wh_callback_parse(body, sizeof body - 1, 100, &cb, err, sizeof err), 0);
    assert_non_null(strstr(err, "duplicate key 'results'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaped_results_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
