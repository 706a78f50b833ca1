/*
 * test_wh_callback.c - callback validation (field-naming errors) and the
 * envelopes a callback is cut into (wh_callback.c), using the golden
 * callbacks in tests/data/webhook-receiver/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/cache_entry.h"
#include "rte/json.h"
#include "wh_callback.h"
#include "testutil.h"

/* a golden file of this suite */
static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", "webhook-receiver", name);
    return tu_data(path, len);
}

static void test_golden_good(void **state)
{
    (void)state;
    size_t len;
    char err[256];
    char *body = slurp("callback_good.json", &len);
    wh_callback cb;
    assert_int_equal(wh_callback_parse(body, len, 10000, &cb, err, sizeof err), 0);
    assert_string_equal(cb.batch_id, "golden-batch-1");
    assert_int_equal(cb.nresults, 3);
    assert_string_equal(cb.completed_at, "2026-01-05T06:00:00.000Z");
    wh_callback_free(&cb);
    assert_int_equal(wh_callback_parse(body, len, 2, &cb, err, sizeof err), -1);
    assert_string_equal(err, "results: 3 results, at most 2 are accepted");
    free(body);
}

static void test_golden_missing_member(void **state)
{
    (void)state;
    size_t len;
    char err[256];
    char *body = slurp("callback_missing_member.json", &len);
    wh_callback cb;
    assert_int_equal(wh_callback_parse(body, len, 10000, &cb, err, sizeof err), -1);
    assert_string_equal(err, "results[3].member_id: missing");
    assert_null(cb.doc);
    free(body);
}

static void expect_error(const char *json, const char *msg)
{
    char err[256];
    wh_callback cb;
    assert_int_equal(wh_callback_parse(json, strlen(json), 100, &cb, err, sizeof err), -1);
    if (strstr(err, msg) == NULL)
        fail_msg("error '%s' does not contain '%s'", err, msg);
}

static void test_field_errors(void **state)
{
    (void)state;
    expect_error("[]", "body: expected a JSON object");
    expect_error("{\"status\":\"completed\",\"results\":[]}", "batch_id: missing");
    expect_error("{\"batch_id\":7,\"status\":\"completed\",\"results\":[]}",
                 "batch_id: expected a string");
    expect_error("{\"batch_id\":\"b\",\"status\":\"completed\"}", "results: missing");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[1]}",
                 "results[0]: expected an object");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
                 "\"member_id\":\"m\",\"trading_partner_id\":\"p\",\"status\":\"completed\","
                 "\"eligibility\":{\"eligible\":\"yes\"}}]}",
                 "results[0].eligibility.eligible: expected true or false");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
                 "\"member_id\":\"m\",\"trading_partner_id\":\"p\",\"status\":\"completed\","
                 "\"eligibility\":{\"eligible\":true,\"network_status\":\"maybe\"}}]}",
                 "results[0].eligibility.network_status: expected in_network");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
                 "\"member_id\":\"\",\"trading_partner_id\":\"p\",\"status\":\"error\"}]}",
                 "results[0].member_id: expected 1..128 characters");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"completed_at\":\"noon\",\"results\":[]}",
                 "completed_at: expected an RFC 3339 date-time");
    expect_error("{\"batch_id\":\"b\"", "invalid JSON");
}

/* a callback with one result whose member id (raw JSON text) is m */
static void expect_member_error(const char *m, const char *msg)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
             "\"member_id\":\"%s\",\"trading_partner_id\":\"p\",\"status\":\"error\"}]}",
             m);
    expect_error(json, msg);
}

/*
 * the input policy (issue 16): every body below was accepted before - the
 * first one wrote member "M1"'s cache entry for member "M1\0X"
 */
static void test_input_policy(void **state)
{
    (void)state;
    expect_member_error("M1\\u0000X", "\\u0000 not allowed in a string at 'results[0].member_id'");
    expect_member_error("M1\\u0001", "results[0].member_id: control character U+0001 at byte 2 "
                                     "is not allowed");
    expect_member_error("M1\\u007f", "results[0].member_id: control character U+007F");
    expect_member_error("M1\\u0085", "results[0].member_id: control character U+0085");
    expect_member_error("M1\x01", "control character 0x01 at byte 71 in a string at "
                                  "'results[0].member_id' (must be escaped)");
    expect_member_error("M1\xff", "invalid UTF-8 at byte 71 in a string at 'results[0].member_id'");
    expect_member_error("M1\xc0\x80", "invalid UTF-8 at byte 71");
    expect_member_error("\\udc00", "unpaired surrogate escape \\udc00");
    expect_member_error(" M1", "results[0].member_id: leading or trailing space");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\\u0002\","
                 "\"member_id\":\"m\",\"trading_partner_id\":\"p\",\"status\":\"error\"}]}",
                 "results[0].check_id: control character U+0002");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
                 "\"member_id\":\"m\",\"trading_partner_id\":\"p\\n\",\"status\":\"error\"}]}",
                 "results[0].trading_partner_id: control character U+000A");
    /* a repeated key: cJSON read the first, a second reader the last */
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
                 "\"member_id\":\"m1\",\"trading_partner_id\":\"p\",\"status\":\"error\","
                 "\"member_id\":\"m2\"}]}",
                 "duplicate key 'member_id' in the object at 'results[0]'");
    expect_error("{\"batch_id\":\"b\",\"batch_id\":\"c\",\"status\":\"c\",\"results\":[]}",
                 "duplicate key 'batch_id' in the top-level object");
    /* impossible dates and times */
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
                 "\"member_id\":\"m\",\"trading_partner_id\":\"p\",\"status\":\"completed\","
                 "\"eligibility\":{\"eligible\":true,\"coverage_start\":\"2026-13-45\"}}]}",
                 "results[0].eligibility.coverage_start: not a calendar date (month 13)");
    expect_error(
        "{\"batch_id\":\"b\",\"status\":\"c\",\"results\":[{\"check_id\":\"x\","
        "\"member_id\":\"m\",\"trading_partner_id\":\"p\",\"status\":\"completed\","
        "\"eligibility\":{\"eligible\":true,\"coverage_end\":\"2027-02-29\"}}]}",
        "results[0].eligibility.coverage_end: not a calendar date (2027-02 has no day 29)");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"completed_at\":\"1767592800\","
                 "\"results\":[]}",
                 "completed_at: expected an RFC 3339 date-time");
    expect_error("{\"batch_id\":\"b\",\"status\":\"c\",\"completed_at\":\"2026-02-30T06:00:00Z\","
                 "\"results\":[]}",
                 "completed_at: not a calendar date (2026-02 has no day 30)");
}

static void test_envelopes_split_and_rejoin(void **state)
{
    (void)state;
    char err[256], id[WH_CONTENT_ID_LEN + 1], id2[WH_CONTENT_ID_LEN + 1];
    /* 300 results of ~190 bytes, cut at 8 KiB: several parts, same order */
    size_t cap = 300 * 256 + 256, n = 0;
    char *body = malloc(cap);
    n += (size_t)snprintf(body + n, cap - n,
                          "{\"batch_id\":\"split-1\",\"status\":\"completed\",\"results\":[");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"check_id\":\"c%d\",\"member_id\":\"m%d\",\"trading_partner_"
                              "id\":\"62308\",\"status\":\"completed\",\"eligibility\":{"
                              "\"eligible\":true,\"copay_amount\":%d}}",
                              i ? "," : "", i, i, i % 50);
    n += (size_t)snprintf(body + n, cap - n, "]}");
    wh_callback cb;
    assert_int_equal(wh_callback_parse(body, n, 10000, &cb, err, sizeof err), 0);
    wh_content_id(body, n, id);
    wh_content_id(body, n - 1, id2);
    assert_int_equal(strlen(id), WH_CONTENT_ID_LEN);
    assert_string_not_equal(id, id2);

    wh_envelopes env;
    assert_int_equal(wh_callback_envelopes(&cb, id, 1234, 8192, &env), 0);
    assert_true(env.n > 3);
    int next = 0;
    for (int p = 0; p < env.n; p++) {
        assert_true(env.len[p] <= 8192 + 512);
        cJSON *d = rte_json_parse(env.msg[p], env.len[p], err, sizeof err);
        assert_non_null(d);
        assert_string_equal(cJSON_GetObjectItem(d, "kind")->valuestring, "callback");
        assert_string_equal(cJSON_GetObjectItem(d, "id")->valuestring, id);
        assert_int_equal(cJSON_GetObjectItem(d, "part")->valueint, p);
        assert_int_equal(cJSON_GetObjectItem(d, "parts")->valueint, env.n);
        assert_int_equal(cJSON_GetObjectItem(d, "total")->valueint, 300);
        assert_int_equal(cJSON_GetObjectItem(d, "received_at_ms")->valueint, 1234);
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(d, "results"))
        {
            char want[16];
            snprintf(want, sizeof want, "c%d", next++);
            assert_string_equal(cJSON_GetObjectItem(r, "check_id")->valuestring, want);
        }
        cJSON_Delete(d);
    }
    assert_int_equal(next, 300);
    wh_envelopes_free(&env);

    /* one part when everything fits */
    assert_int_equal(wh_callback_envelopes(&cb, id, 1234, 1 << 20, &env), 0);
    assert_int_equal(env.n, 1);
    wh_envelopes_free(&env);
    wh_callback_free(&cb);
    free(body);
}

static void test_empty_results_one_part(void **state)
{
    (void)state;
    char err[256];
    const char *body = "{\"batch_id\":\"e\",\"status\":\"completed\",\"results\":[]}";
    wh_callback cb;
    wh_envelopes env;
    assert_int_equal(wh_callback_parse(body, strlen(body), 10, &cb, err, sizeof err), 0);
    assert_int_equal(wh_callback_envelopes(&cb, "id", 1, 4096, &env), 0);
    assert_int_equal(env.n, 1);
    assert_non_null(strstr(env.msg[0], "\"results\":[]}"));
    wh_envelopes_free(&env);
    wh_callback_free(&cb);
}

/* each result travels as the sender's exact bytes; odd layouts fall back to printing */
static void test_envelopes_carry_raw_results(void **state)
{
    (void)state;
    size_t len;
    char err[256];
    wh_callback cb;
    wh_envelopes env;
    char *body = slurp("callback_good.json", &len); /* pretty-printed */
    assert_int_equal(wh_callback_parse(body, len, 100, &cb, err, sizeof err), 0);
    assert_int_equal(wh_callback_envelopes(&cb, "cid", 7, 1 << 20, &env), 0);
    assert_int_equal(env.n, 1);
    const char *first = strstr(body, "{\n   \"check_id\": \"G-0\"");
    assert_non_null(first);
    assert_non_null(strstr(env.msg[0], "{\n   \"check_id\": \"G-0\""));
    cJSON *d = rte_json_parse(env.msg[0], env.len[0], err, sizeof err);
    assert_non_null(d);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "results")), 3);
    cJSON_Delete(d);
    wh_envelopes_free(&env);
    wh_callback_free(&cb);
    free(body);

    const char *odd[] = {
        /* a nested "results" before the real one, strings with brackets and escapes */
        "{\"meta\":{\"results\":[9]},\"note\":\"a ] \\\" [ {\",\"batch_id\":\"o1\","
        "\"status\":\"completed\",\"results\" : [ {\"check_id\":\"x]\",\"member_id\":\"m\","
        "\"trading_partner_id\":\"p\",\"status\":\"error\"} , {\"check_id\":\"y\","
        "\"member_id\":\"m2\",\"trading_partner_id\":\"p\",\"status\":\"error\"} ] }",
        /* an escaped key: cJSON reads "results", the scanner does not: printed instead */
        "{\"batch_id\":\"o2\",\"status\":\"completed\",\"\\u0072esults\":[{\"check_id\":\"x]\","
        "\"member_id\":\"m\",\"trading_partner_id\":\"p\",\"status\":\"error\"},{\"check_id\":"
        "\"y\",\"member_id\":\"m2\",\"trading_partner_id\":\"p\",\"status\":\"error\"}]}",
    };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wh_callback_parse(odd[i], strlen(odd[i]), 100, &cb, err, sizeof err), 0);
        assert_int_equal(wh_callback_envelopes(&cb, "cid", 7, 1 << 20, &env), 0);
        d = rte_json_parse(env.msg[0], env.len[0], err, sizeof err);
        assert_non_null(d);
        const cJSON *res = cJSON_GetObjectItem(d, "results");
        assert_int_equal(cJSON_GetArraySize(res), 2);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(res, 0), "check_id")->valuestring, "x]");
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(res, 1), "check_id")->valuestring, "y");
        cJSON_Delete(d);
        wh_envelopes_free(&env);
        wh_callback_free(&cb);
    }
}

/* rte_cache_entry_from_callback (libcommon/cache_entry), as the writer uses it */
static void test_eligibility_mapping(void **state)
{
    (void)state;
    char err[256];
    rte_cache_entry e;
    rte_cache_freshness f = rte_cache_freshness_default();
    cJSON *el = cJSON_Parse("{\"eligible\":true,\"copay_amount\":25,\"network_status\":"
                            "\"in_network\",\"coverage_start\":\"2025-03-01\","
                            "\"coverage_end\":\"2027-03-01\"}");
    assert_int_equal(rte_cache_entry_from_callback(el, 1000, &f, &e, err, sizeof err), 0);
    assert_true(e.eligible);
    assert_true(e.has_copay);
    assert_true(e.copay_amount == 25);
    assert_string_equal(e.network_status, "in_network");
    assert_string_equal(e.coverage_start, "2025-03-01");
    assert_string_equal(e.coverage_end, "2027-03-01");
    assert_string_equal(e.source, "stedi_batch");
    assert_int_equal(e.cached_at_ms, 1000);
    assert_int_equal(e.fresh_until_ms, 1000 + f.success_ms);
    assert_false(e.is_error);
    cJSON_Delete(el);

    el = cJSON_Parse("{\"eligible\":false,\"copay_amount\":null,\"coverage_end\":null}");
    assert_int_equal(rte_cache_entry_from_callback(el, 5, &f, &e, err, sizeof err), 0);
    assert_false(e.eligible);
    assert_false(e.has_copay);
    assert_string_equal(e.network_status, "unknown");
    assert_string_equal(e.coverage_end, "");
    cJSON_Delete(el);

    el = cJSON_Parse("{\"eligible\":true,\"copay_amount\":-1}");
    assert_int_equal(rte_cache_entry_from_callback(el, 5, &f, &e, err, sizeof err), -1);
    assert_string_equal(err, "eligibility.copay_amount: expected a number >= 0 or null");
    cJSON_Delete(el);
    assert_int_equal(rte_cache_entry_from_callback(NULL, 5, &f, &e, err, sizeof err), -1);
    assert_string_equal(err, "eligibility: expected an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_good),
        cmocka_unit_test(test_golden_missing_member),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_input_policy),
        cmocka_unit_test(test_envelopes_split_and_rejoin),
        cmocka_unit_test(test_empty_results_one_part),
        cmocka_unit_test(test_eligibility_mapping),
        cmocka_unit_test(test_envelopes_carry_raw_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
