/*
 * test_wh_consume.c - what the consumer makes of a poll_page envelope
 * (wh_consume_map): Stedi's documented poll page, whose items name no
 * member, matched through the envelope's members map; a payer's or Stedi's
 * error item becomes an error entry to write, not a dropped result.
 *
 * The page is read from ../shared/stedi-openapi (skipped where absent,
 * failing under CI=true).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/json.h"
#include "testutil.h"
#include "wh.h"
#include "wh_consume.h"

/* a poll_page envelope around the documented page, as wh_poll.c builds it */
static cJSON *envelope(const char *members_json)
{
    size_t len;
    char *page = tu_openapi("examples/poll_200_page.openapi.json", &len);
    cJSON *env = cJSON_CreateObject();

    cJSON_AddStringToObject(env, "kind", WH_KIND_POLL_PAGE);
    cJSON_AddStringToObject(env, "batch_id", "01932c61-2d4f-7d22-85fa-c7db2e13e771");
    cJSON_AddNumberToObject(env, "fetched_at_ms", (double)rte_clock_parse("2024-06-15T12:00:00Z"));
    cJSON_AddItemToObject(env, "members", cJSON_Parse(members_json));
    cJSON_AddItemToObject(env, "page", cJSON_ParseWithLength(page, len));
    free(page);
    return env;
}

static void test_documented_page_items_are_written(void **state)
{
    (void)state;
    wh_item *items = NULL;
    char why[256];
    WH.cache.freshness = rte_cache_freshness_default();
    cJSON *env = envelope("{\"ABC123456789\":{\"key\":\"rte:eligibility:k1:TEST\","
                          "\"service_types\":[\"30\"]},\"DEF123456799\":{\"key\":"
                          "\"rte:eligibility:k2:AHS\",\"service_types\":[\"30\"]}}");

    assert_int_equal(wh_consume_map(env, WH_KIND_POLL_PAGE, &items, why, sizeof why), 2);
    /* status ERROR with errors[]: an error entry, written, saying not to retry */
    assert_null(items[0].fail);
    assert_string_equal(items[0].id, "ABC123456789");
    assert_string_equal(items[0].key, "rte:eligibility:k1:TEST");
    assert_true(items[0].entry.is_error);
    assert_string_equal(items[0].entry.error_code, "79");
    assert_false(items[0].entry.error_retry);
    assert_string_equal(items[0].entry.source, "stedi_batch");
    /* the flat 271 */
    assert_null(items[1].fail);
    assert_string_equal(items[1].key, "rte:eligibility:k2:AHS");
    assert_false(items[1].entry.is_error);
    assert_true(items[1].entry.eligible);
    assert_int_equal(items[1].entry.cached_at_ms, rte_clock_parse("2024-06-15T12:00:00Z"));
    free(items);
    cJSON_Delete(env);
}

/* a result no registered member stands for is counted, not guessed */
static void test_unknown_item(void **state)
{
    (void)state;
    wh_item *items = NULL;
    char why[256];
    cJSON *env = envelope("{\"DEF123456799\":{\"key\":\"rte:eligibility:k2:AHS\"}}");

    assert_int_equal(wh_consume_map(env, WH_KIND_POLL_PAGE, &items, why, sizeof why), 2);
    assert_string_equal(items[0].fail, "unknown_item");
    assert_null(items[1].fail);
    free(items);
    cJSON_Delete(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_page_items_are_written),
        cmocka_unit_test(test_unknown_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
