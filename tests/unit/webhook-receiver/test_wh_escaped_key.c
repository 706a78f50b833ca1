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
    wh_envelopes env;
    char err[256];

    assert_int_equal(wh_callback_parse(body, sizeof body - 1, 100, &cb, err, sizeof err), 0);
    assert_int_equal(cb.nresults, 1);
    assert_int_equal(wh_callback_envelopes(&cb, "cid", 1, 65536, &env), 0);
    assert_int_equal(env.n, 1);
    cJSON *e = rte_json_parse(env.msg[0], env.len[0], err, sizeof err);
    assert_non_null(e);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "results");
    assert_int_equal(cJSON_GetArraySize(res), 1);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, 0), "check_id");
    assert_string_equal(id->valuestring, "A");
    cJSON_Delete(e);
    wh_envelopes_free(&env);
    wh_callback_free(&cb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaped_results_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
