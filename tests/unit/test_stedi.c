/*
 * test_stedi.c - the Stedi client's own reading and checking, without a
 * server (stedi.h): batch status answers (every BatchStatus), poll pages
 * and their items, Stedi's field limits on what we send, batch names, and
 * the two base URLs. What goes over the wire is checked by
 * tests/integration/test_stedi_openapi.py.
 *
 * Documented answers are read from ../shared/stedi-openapi at run time
 * (skipped where absent, failing under CI=true); the facts each must give
 * are in tests/data/stedi/.
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
#include "rte/config.h"
#include "rte/stedi.h"
#include "testutil.h"

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* the facts we keep of a status answer, as JSON (what the expected files hold) */
static char *info_json(const rte_stedi_batch_info *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", b->id);
    cJSON_AddStringToObject(o, "name", b->name);
    cJSON_AddStringToObject(o, "status", b->status);
    cJSON_AddStringToObject(o, "state", rte_stedi_batch_state_name(b->state));
    cJSON_AddBoolToObject(o, "complete", b->complete);
    cJSON_AddBoolToObject(o, "failed", b->failed);
    cJSON_AddNumberToObject(o, "total", b->total);
    cJSON_AddNumberToObject(o, "success", b->success);
    cJSON_AddNumberToObject(o, "error", b->error);
    cJSON_AddNumberToObject(o, "in_progress", b->in_progress);
    cJSON_AddNumberToObject(o, "validated", b->validated);
    cJSON_AddNumberToObject(o, "validation_failed", b->validation_failed);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void status_case(const char *example, const char *expected)
{
    char path[128], err[256];
    size_t len;
    rte_stedi_batch_info b;
    char *in = tu_openapi(example, &len);
    snprintf(path, sizeof path, "stedi/%s", expected);
    char *want = tu_data(path, NULL);
    cJSON *doc = cJSON_ParseWithLength(in, len);

    chomp(want);
    assert_int_equal(rte_stedi_batch_info_read(doc, &b, err, sizeof err), 0);
    char *got = info_json(&b);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n  got  %s\n  want %s", example, got, want);
    cJSON_free(got);
    cJSON_Delete(doc);
    free(in);
    free(want);
}

/* the two documented status answers: COMPLETED_WITH_ERRORS is as complete as COMPLETED */
static void test_batch_status_documented(void **state)
{
    (void)state;
    status_case("examples/batch_status_completed_with_errors.openapi.json",
                "batch_status_completed_with_errors.expected.json");
    status_case("examples/batch_status_completed.openapi.json",
                "batch_status_completed.expected.json");
}

/* every BatchStatus; an unknown one keeps polling; no status at all is an error */
static void test_batch_states(void **state)
{
    (void)state;
    static const struct {
        const char *status;
        enum rte_stedi_batch_state st;
        int complete, failed;
    } t[] = {
        {"PENDING", RTE_STEDI_BATCH_PENDING, 0, 0},
        {"VALIDATED", RTE_STEDI_BATCH_VALIDATED, 0, 0},
        {"VALIDATION_FAILED", RTE_STEDI_BATCH_VALIDATION_FAILED, 0, 1},
        {"IN_PROGRESS", RTE_STEDI_BATCH_IN_PROGRESS, 0, 0},
        {"COMPLETED", RTE_STEDI_BATCH_COMPLETED, 1, 0},
        {"COMPLETED_WITH_ERRORS", RTE_STEDI_BATCH_COMPLETED_WITH_ERRORS, 1, 0},
        {"PAUSED", RTE_STEDI_BATCH_UNKNOWN, 0, 0},
    };
    char json[160], err[256];
    rte_stedi_batch_info b;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(json, sizeof json, "{\"status\":\"%s\",\"inProgressCount\":3}", t[i].status);
        cJSON *doc = cJSON_Parse(json);
        assert_int_equal(rte_stedi_batch_info_read(doc, &b, err, sizeof err), 0);
        assert_string_equal(b.status, t[i].status);
        assert_int_equal(b.state, t[i].st);
        assert_int_equal(b.complete, t[i].complete);
        assert_int_equal(b.failed, t[i].failed);
        assert_int_equal(b.in_progress, 3);
        cJSON_Delete(doc);
    }
    cJSON *doc = cJSON_Parse("{\"totalCount\":3}");
    assert_int_equal(rte_stedi_batch_info_read(doc, &b, err, sizeof err), RTE_STEDI_E_FAILED);
    assert_string_equal(err, "batch status answer: status missing or unusable");
    cJSON_Delete(doc);
}

/* the documented poll page: two flat items matched by submitterTransactionIdentifier */
static void test_poll_page_documented(void **state)
{
    (void)state;
    char err[256];
    size_t len;
    rte_stedi_page p;
    rte_stedi_item it;
    rte_cache_freshness f = rte_cache_freshness_default();
    int64_t now = rte_clock_parse("2024-06-15T12:00:00Z");
    char *in = tu_openapi("examples/poll_200_page.openapi.json", &len);

    memset(&p, 0, sizeof p);
    p.doc = cJSON_ParseWithLength(in, len);
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), 0);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.next_token, "01932c61-2d4f-7d22-85fa-c7db2e13e771");

    /* a failed check: status ERROR with errors[], no member named anywhere */
    assert_int_equal(
        rte_stedi_item_map(cJSON_GetArrayItem(p.items, 0), NULL, now, &f, &it, err, sizeof err), 0);
    assert_string_equal(it.submitter_id, "ABC123456789");
    assert_string_equal(it.batch_id, "01932c61-2d4f-7d22-85fa-c7db2e13e771");
    assert_true(it.entry.is_error);
    assert_string_equal(it.entry.error_code, "79");
    assert_string_equal(it.entry.error_origin, "stedi");
    assert_false(it.entry.error_retry);
    assert_string_equal(it.entry.source, "stedi_batch");

    /* the flat 271 */
    assert_int_equal(
        rte_stedi_item_map(cJSON_GetArrayItem(p.items, 1), NULL, now, &f, &it, err, sizeof err), 0);
    assert_string_equal(it.submitter_id, "DEF123456799");
    assert_false(it.entry.is_error);
    assert_true(it.entry.eligible);
    assert_string_equal(it.entry.coverage_end, "2024-12-31");
    cJSON_Delete(p.doc);
    free(in);
}

/* what the old client expected is refused: a wrapper, or no submitter id */
static void test_item_shapes(void **state)
{
    (void)state;
    char err[256];
    rte_stedi_item it;
    cJSON *wrapped = cJSON_Parse(
        "{\"submitterTransactionIdentifier\":\"T1\",\"memberId\":\"M1\","
        "\"tradingPartnerServiceId\":\"62308\",\"status\":\"COMPLETED\",\"response\":{"
        "\"errors\":[],\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":[\"30\"]}]}}");
    cJSON *anonymous = cJSON_Parse("{\"errors\":[],\"benefitsInformation\":[{\"code\":\"1\"}]}");

    assert_int_equal(rte_stedi_item_map(wrapped, NULL, 0, NULL, &it, err, sizeof err), -1);
    assert_string_equal(
        err, "item T1: not an eligibility answer: neither errors[] nor benefitsInformation[]");
    assert_int_equal(rte_stedi_item_map(anonymous, NULL, 0, NULL, &it, err, sizeof err), -1);
    assert_non_null(strstr(err, "submitterTransactionIdentifier"));
    cJSON_Delete(wrapped);
    cJSON_Delete(anonymous);
}

/* nextPageToken is up to 1024 characters */
static void test_page_tokens(void **state)
{
    (void)state;
    char err[256], json[1200];
    rte_stedi_page p;
    char tok[1026];

    memset(tok, 'a', sizeof tok);
    tok[1024] = '\0';
    snprintf(json, sizeof json, "{\"items\":[],\"nextPageToken\":\"%s\"}", tok);
    memset(&p, 0, sizeof p);
    p.doc = cJSON_Parse(json);
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), 0);
    assert_int_equal(strlen(p.next_token), 1024);
    cJSON_Delete(p.doc);
    tok[1024] = 'a';
    tok[1025] = '\0';
    snprintf(json, sizeof json, "{\"items\":[],\"nextPageToken\":\"%s\"}", tok);
    p.doc = cJSON_Parse(json);
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), RTE_STEDI_E_FAILED);
    cJSON_Delete(p.doc);
    p.doc = cJSON_Parse("{\"items\":[{}]}");
    assert_int_equal(rte_stedi_page_read(&p, err, sizeof err), 0);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.next_token, "");
    cJSON_Delete(p.doc);
}

static rte_stedi *client(void)
{
    rte_stedi_opts o;
    char err[256];
    rte_stedi_opts_init(&o);
    o.api_key = "k";
    rte_stedi *s = rte_stedi_new(&o, err, sizeof err);
    if (s == NULL)
        fail_msg("%s", err);
    return s;
}

static const rte_stedi_check good = {
    .trading_partner_id = "62308",
    .member_id = "AB-12 345",
    .first_name = "Ann",
    .last_name = "Lee",
    .date_of_birth = "1980-01-02",
    .submitter_id = "T1",
};

/* Stedi's limits, checked before anything is sent (no limiter here: a good check gets no slot) */
static void test_check_limits(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value, *msg;
    } t[] = {
        {"first", "Abcdefghijabcdefghijabcdefghijabcdef",
         "subscriber.firstName: 36 characters; Stedi takes 1..35"},
        {"member", "M_1", "subscriber.memberId: 'M_1' has characters Stedi refuses"},
        {"member", "M", "subscriber.memberId: 1 characters; Stedi takes 2..80"},
        {"dob", "20241301", "subscriber.dateOfBirth: '20241301' is not a date"},
        {"dob", "1980-02-32", "subscriber.dateOfBirth: '1980-02-32' is not a date"},
        {"org", "Ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo",
         "provider.organizationName: 61 characters; Stedi takes 1..60"},
        {"stc", "30,MH,A6", "serviceTypeCodes: at most 2 service types"},
        {"control", "12345", "controlNumber: '12345' is not 9 digits"},
    };
    rte_stedi *s = client();
    rte_stedi_result res;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        rte_stedi_check c = good;
        if (strcmp(t[i].field, "first") == 0)
            c.first_name = t[i].value;
        else if (strcmp(t[i].field, "member") == 0)
            c.member_id = t[i].value;
        else if (strcmp(t[i].field, "dob") == 0)
            c.date_of_birth = t[i].value;
        else if (strcmp(t[i].field, "org") == 0)
            c.provider_name = t[i].value;
        else if (strcmp(t[i].field, "stc") == 0)
            c.service_types = t[i].value;
        else
            c.control_number = t[i].value;
        assert_int_equal(rte_stedi_realtime(s, &c, RTE_SLOT_INTERACTIVE, 0, NULL, NULL, &res), -1);
        assert_int_equal(res.outcome, RTE_STEDI_REJECTED);
        assert_int_equal(res.attempts, 0);
        if (strncmp(res.message, t[i].msg, strlen(t[i].msg)) != 0)
            fail_msg("%s '%s': '%s', expected '%s...'", t[i].field, t[i].value, res.message,
                     t[i].msg);
    }
    /* within every limit: refused only for want of a slot limiter, never sent */
    assert_int_equal(rte_stedi_realtime(s, &good, RTE_SLOT_INTERACTIVE, 0, NULL, NULL, &res), -1);
    assert_int_equal(res.outcome, RTE_STEDI_NO_SLOT);
    rte_stedi_free(s);
}

/* a batch: its name, its items' ids, its size, all checked before sending */
static void test_batch_submit_checks(void **state)
{
    (void)state;
    rte_stedi *s = client();
    rte_stedi_check items[2] = {good, good};
    char id[64], err[256];

    assert_int_equal(
        rte_stedi_batch_submit(s, items, 1, "rtectl warm", 0, id, sizeof id, err, sizeof err),
        RTE_STEDI_E_FAILED);
    assert_string_equal(err, "name: 'rtectl warm' must match ^[a-zA-Z0-9-_]{1,100}$ (and be "
                             "unique in the account)");
    assert_int_equal(rte_stedi_batch_submit(s, items, 2, NULL, 0, id, sizeof id, err, sizeof err),
                     RTE_STEDI_E_FAILED);
    assert_non_null(strstr(err, "submitterTransactionIdentifier 'T1' used twice"));
    items[1].submitter_id = "T 2";
    assert_int_equal(rte_stedi_batch_submit(s, items, 2, NULL, 0, id, sizeof id, err, sizeof err),
                     RTE_STEDI_E_FAILED);
    assert_non_null(strstr(err, "items[1].submitterTransactionIdentifier"));
    items[1].submitter_id = NULL;
    assert_int_equal(rte_stedi_batch_submit(s, items, 2, NULL, 0, id, sizeof id, err, sizeof err),
                     RTE_STEDI_E_FAILED);
    assert_string_equal(err, "items[1].submitterTransactionIdentifier: missing");
    assert_int_equal(rte_stedi_batch_submit(s, items, 1, NULL, 7, id, sizeof id, err, sizeof err),
                     RTE_STEDI_E_FAILED);
    assert_string_equal(err, "maxRetryHours: 7 outside 8..24");
    rte_stedi_free(s);
}

/* names unique in the account, in Stedi's characters, at most 100 of them */
static void test_batch_names(void **state)
{
    (void)state;
    char a[128], b[128], long_prefix[200];

    rte_stedi_batch_name("rtectl", a, sizeof a);
    rte_stedi_batch_name("rtectl", b, sizeof b);
    assert_string_not_equal(a, b);
    assert_true(rte_stedi_batch_name_valid(a));
    assert_int_equal(strncmp(a, "rtectl-", 7), 0);
    assert_int_equal(strlen(a), strlen("rtectl-20261123T100000-0123abcd"));
    rte_stedi_batch_name("cache warmer: 06:00!", a, sizeof a);
    assert_true(rte_stedi_batch_name_valid(a));
    assert_int_equal(strncmp(a, "cachewarmer0600-", 16), 0);
    memset(long_prefix, 'x', sizeof long_prefix - 1);
    long_prefix[sizeof long_prefix - 1] = '\0';
    rte_stedi_batch_name(long_prefix, a, sizeof a);
    assert_true(rte_stedi_batch_name_valid(a));
    rte_stedi_batch_name(NULL, a, sizeof a);
    assert_true(rte_stedi_batch_name_valid(a));
    assert_false(rte_stedi_batch_name_valid(""));
    assert_false(rte_stedi_batch_name_valid("a.b"));
}

static int check_config(const char *yaml, char *err, size_t errlen)
{
    rte_config *cfg = rte_config_from_string(yaml, err, errlen);
    assert_non_null(cfg);
    int rc = rte_stedi_check_config(cfg, err, errlen);
    rte_config_free(cfg);
    return rc;
}

/* two hosts, each without the API version; stedi.base_url the shorthand for both */
static void test_base_urls(void **state)
{
    (void)state;
    char err[256];
    rte_stedi_opts o;

    assert_int_equal(check_config("stedi:\n  base_url: http://127.0.0.1:8089\n", err, sizeof err),
                     0);
    assert_int_equal(check_config("stedi:\n  healthcare_base_url: https://healthcare.us.stedi.com\n"
                                  "  manager_base_url: https://manager.us.stedi.com/\n",
                                  err, sizeof err),
                     0);
    assert_int_equal(check_config("stedi:\n  manager_base_url: "
                                  "https://manager.us.stedi.com/2024-04-01\n",
                                  err, sizeof err),
                     -1);
    assert_string_equal(err, "stedi.manager_base_url (RTE_STEDI_MANAGER_BASE_URL): "
                             "'https://manager.us.stedi.com/2024-04-01' ends in an API version; "
                             "give the host only (the client adds /2024-04-01)");
    assert_int_equal(check_config("stedi:\n  base_url: ftp://x\n", err, sizeof err), -1);
    assert_non_null(strstr(err, "stedi.base_url (RTE_STEDI_BASE_URL)"));
    assert_int_equal(check_config("stedi:\n  provider_name: \"\"\n", err, sizeof err), -1);
    assert_non_null(strstr(err, "stedi.provider_name"));

    rte_stedi_opts_init(&o);
    o.api_key = "k";
    o.healthcare_base_url = "https://proxy.example/stedi/2026-06-01/";
    assert_null(rte_stedi_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "healthcare_base_url"));
    o.healthcare_base_url = "https://proxy.example/stedi/";
    rte_stedi *s = rte_stedi_new(&o, err, sizeof err);
    assert_non_null(s);
    rte_stedi_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_status_documented),
        cmocka_unit_test(test_batch_states),
        cmocka_unit_test(test_poll_page_documented),
        cmocka_unit_test(test_item_shapes),
        cmocka_unit_test(test_page_tokens),
        cmocka_unit_test(test_check_limits),
        cmocka_unit_test(test_batch_submit_checks),
        cmocka_unit_test(test_batch_names),
        cmocka_unit_test(test_base_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
