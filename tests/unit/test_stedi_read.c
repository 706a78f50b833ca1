/*
 * test_stedi_read.c - what the Stedi client reads from a 200 body of the
 * batch status and poll-batch endpoints (rte_stedi_batch_info_read,
 * rte_stedi_page_read) and of a real-time check (rte_stedi_reply_read),
 * without a server: the cases fuzzing found.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rte/cache_entry.h"
#include "rte/json.h"
#include "rte/stedi.h"
#include "rte/stedi_reply.h"

static cJSON *parse(const char *text)
{
    char err[128];
    cJSON *doc = rte_json_parse(text, strlen(text), err, sizeof err);
    assert_non_null(doc);
    return doc;
}

static void test_status_counts(void **state)
{
    (void)state;
    rte_stedi_batch_info info;
    char err[256];
    cJSON *doc = parse("{\"status\":\"COMPLETED\",\"totalCount\":9000,\"successCount\":8990,"
                       "\"errorCount\":10,\"inProgressCount\":0}");
    assert_int_equal(rte_stedi_batch_info_read(doc, &info, err, sizeof err), 0);
    assert_string_equal(info.status, "COMPLETED");
    assert_int_equal(info.total, 9000);
    assert_int_equal(info.success, 8990);
    assert_int_equal(info.error, 10);
    assert_int_equal(info.in_progress, 0);
    assert_int_equal(info.complete, 1);
    cJSON_Delete(doc);
}

/* fuzz_stedi_status found a count above INT_MAX converted to int (undefined) */
static void test_status_count_out_of_range_reads_as_zero(void **state)
{
    (void)state;
    rte_stedi_batch_info info;
    char err[256];
    cJSON *doc = parse("{\"status\":\"PENDING\",\"totalCount\":3,\"inProgressCount\":21474836483,"
                       "\"errorCount\":-1,\"successCount\":\"2\"}");
    assert_int_equal(rte_stedi_batch_info_read(doc, &info, err, sizeof err), 0);
    assert_int_equal(info.total, 3);
    assert_int_equal(info.in_progress, 0);
    assert_int_equal(info.error, 0);
    assert_int_equal(info.success, 0);
    assert_int_equal(info.complete, 0);
    cJSON_Delete(doc);
}

static void test_status_without_status_is_refused(void **state)
{
    (void)state;
    rte_stedi_batch_info info;
    char err[256];
    cJSON *doc = parse("{\"totalCount\":3}");
    assert_int_equal(rte_stedi_batch_info_read(doc, &info, err, sizeof err), RTE_STEDI_E_FAILED);
    assert_string_equal(err, "batch status answer: status missing or unusable");
    cJSON_Delete(doc);
}

static void test_page_items_and_token(void **state)
{
    (void)state;
    rte_stedi_page p;
    char err[256];
    memset(&p, 0, sizeof p);
    p.doc = parse("{\"items\":[{},{}],\"nextPageToken\":\"tok-2\"}");
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), 0);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.next_token, "tok-2");
    assert_true(cJSON_IsArray(p.items));
    rte_stedi_page_free(&p);

    p.doc = parse("{\"items\":[],\"nextPageToken\":null}");
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), 0);
    assert_int_equal(p.count, 0);
    assert_string_equal(p.next_token, "");
    rte_stedi_page_free(&p);
}

static void test_page_without_items_is_refused(void **state)
{
    (void)state;
    rte_stedi_page p;
    char err[256];
    memset(&p, 0, sizeof p);
    p.doc = parse("{\"items\":{},\"nextPageToken\":\"t\"}");
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), RTE_STEDI_E_FAILED);
    assert_string_equal(err, "polling answer: items missing or nextPageToken unusable");
    rte_stedi_page_free(&p);
    p.doc = parse("{\"items\":[],\"nextPageToken\":7}");
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), RTE_STEDI_E_FAILED);
    rte_stedi_page_free(&p);
}

/* fuzz_stedi_realtime found "inf" taken as a copay, which the cache then stores as null */
static void test_realtime_copay_must_be_finite(void **state)
{
    (void)state;
    rte_cache_freshness f = rte_cache_freshness_default();
    rte_cache_entry e;
    char err[256];
    static const char *const amounts[] = {"inf", "1e999", "INFINITY"};
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        char text[300];
        snprintf(text, sizeof text,
                 "{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":[\"30\"]},"
                 "{\"code\":\"B\",\"serviceTypeCodes\":[\"30\"],\"benefitAmount\":\"%s\","
                 "\"inPlanNetworkIndicatorCode\":\"Y\"}]}",
                 amounts[i]);
        cJSON *doc = parse(text);
        assert_int_equal(
            rte_stedi_reply_read(doc, NULL, "stedi_realtime", 1, &f, &e, err, sizeof err), 0);
        assert_int_equal(e.has_copay, 0);
        cJSON_Delete(doc);
    }
    cJSON *doc = parse("{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":[\"30\"]},"
                       "{\"code\":\"B\",\"serviceTypeCodes\":[\"30\"],\"benefitAmount\":\"25.5\","
                       "\"inPlanNetworkIndicatorCode\":\"Y\"}]}");
    assert_int_equal(rte_stedi_reply_read(doc, NULL, "stedi_realtime", 1, &f, &e, err, sizeof err),
                     0);
    assert_int_equal(e.has_copay, 1);
    assert_true(e.copay_amount == 25.5);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_counts),
        cmocka_unit_test(test_status_count_out_of_range_reads_as_zero),
        cmocka_unit_test(test_status_without_status_is_refused),
        cmocka_unit_test(test_page_items_and_token),
        cmocka_unit_test(test_page_without_items_is_refused),
        cmocka_unit_test(test_realtime_copay_must_be_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
