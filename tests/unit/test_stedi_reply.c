/*
 * test_stedi_reply.c - the one reader of Stedi eligibility answers
 * (stedi_reply.h): documented answers and made-up ones into cache entries.
 *
 * The golden cases are listed in tests/data/stedi/cases.txt (what is read,
 * for which service types, on which day) with the entry each must give in
 * tests/data/stedi/<name>.expected.json. Answers from Stedi's published
 * OpenAPI are read from ../shared/stedi-openapi at run time: those cases
 * are skipped, saying so, where it is absent, and fail under CI=true.
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
#include "rte/clock.h"
#include "rte/stedi.h"
#include "rte/stedi_reply.h"
#include "testutil.h"

#define MAX_CASES 64

struct gcase {
    char name[64], from[16], file[128], item[8], asked[16], now[32];
};

static struct gcase cases[MAX_CASES];

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* one golden case: read the answer, encode the entry, compare with the expected file */
static void run_case(void **state)
{
    const struct gcase *c = *state;
    char path[256], err[256];
    size_t len;
    char *in, *want, *got;
    cJSON *doc;
    const cJSON *answer;
    rte_cache_entry e;
    rte_stedi_asked asked;
    rte_cache_freshness f = rte_cache_freshness_default();
    int64_t now = rte_clock_parse(c->now);

    assert_true(now > 0);
    if (strcmp(c->from, "openapi") == 0) {
        in = tu_openapi(c->file, &len);
    } else {
        snprintf(path, sizeof path, "stedi/%s", c->file);
        in = tu_data(path, &len);
    }
    snprintf(path, sizeof path, "stedi/%s.expected.json", c->name);
    want = tu_data(path, NULL);
    chomp(want);
    doc = cJSON_ParseWithLength(in, len);
    assert_non_null(doc);
    assert_int_equal(rte_stedi_asked_parse(c->asked, &asked, err, sizeof err), 0);
    if (strcmp(c->item, "-") == 0) {
        if (rte_stedi_reply_read(doc, &asked, "stedi_realtime", now, &f, &e, err, sizeof err) != 0)
            fail_msg("%s: %s", c->name, err);
    } else {
        rte_stedi_item it;
        answer = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "items"),
                                    (int)strtol(c->item, NULL, 10));
        assert_non_null(answer);
        if (rte_stedi_item_map(answer, &asked, now, &f, &it, err, sizeof err) != 0)
            fail_msg("%s: %s", c->name, err);
        e = it.entry;
    }
    got = rte_cache_entry_encode(&e);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n  got  %s\n  want %s", c->name, got, want);
    cJSON_free(got);
    cJSON_Delete(doc);
    free(in);
    free(want);
}

/* cases.txt into cases[]; the count */
static int load_cases(void)
{
    char *text, *line, *next;
    int n = 0;

    text = tu_data("stedi/cases.txt", NULL);
    for (line = text; line && *line; line = next) {
        struct gcase *c = &cases[n];
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (n >= MAX_CASES || sscanf(line, "%63s %15s %127s %7s %15s %31s", c->name, c->from,
                                     c->file, c->item, c->asked, c->now) != 6) {
            fprintf(stderr, "cases.txt: cannot read '%s'\n", line);
            exit(1);
        }
        n++;
    }
    free(text);
    return n;
}

/* ---- one rule at a time -------------------------------------------------- */

static int read_json(const char *json, const char *asked_list, rte_cache_entry *e, char *err,
                     size_t errlen)
{
    rte_stedi_asked asked;
    rte_cache_freshness f = rte_cache_freshness_default();
    cJSON *doc = cJSON_Parse(json);
    int rc;

    assert_non_null(doc);
    assert_int_equal(rte_stedi_asked_parse(asked_list, &asked, err, errlen), 0);
    rc = rte_stedi_reply_read(doc, &asked, "stedi_realtime",
                              rte_clock_parse("2026-01-05T06:00:00Z"), &f, e, err, errlen);
    cJSON_Delete(doc);
    return rc;
}

/* X12 AAA04 follow-up actions, by Stedi's name and by code */
static void test_retry_table(void **state)
{
    (void)state;
    static const struct {
        const char *code, *followup;
        int retry;
    } t[] = {
        {"72", "Please Correct and Resubmit", 0},
        {"72", "C", 0},
        {"79", "Resubmission Not Allowed", 1}, /* Stedi: wait a few minutes, then retry */
        {"79", "Please Resubmit Original Transaction", 1},
        {"79", "Resubmission Allowed", 1},
        {"79", "Do Not Resubmit; Inquiry Initiated to a Third Party", 0},
        {"79", "Please Wait 30 Days and Resubmit", 0},
        {"79", "Please Wait 10 Days and Resubmit", 0},
        {"79", "Do Not Resubmit; We Will Hold Your Request and Respond Again Shortly", 1},
        {"79", "w", 0},
        {"42", "Please Correct and Resubmit", 1}, /* the payer is down, whatever it suggests */
        {"80", "C", 1},
        {"75", NULL, 1},                 /* nothing said: the 5-minute error as before */
        {"75", "Please Retry Later", 1}, /* not one of Stedi's names */
        {NULL, NULL, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (rte_stedi_reply_retry(t[i].code, t[i].followup) != t[i].retry)
            fail_msg("code %s follow-up '%s': expected retry=%d", t[i].code ? t[i].code : "-",
                     t[i].followup ? t[i].followup : "-", t[i].retry);
}

/* one error the same request cannot pass makes the entry final, fresh for error_final */
static void test_any_final_error_is_final(void **state)
{
    (void)state;
    rte_cache_entry e;
    char err[256];
    assert_int_equal(read_json("{\"errors\":[{\"code\":\"42\",\"description\":\"Unable\","
                               "\"followupAction\":\"Resubmission Allowed\"},{\"code\":\"72\","
                               "\"description\":\"Invalid Member ID\",\"followupAction\":"
                               "\"Please Correct and Resubmit\"}]}",
                               NULL, &e, err, sizeof err),
                     0);
    assert_true(e.is_error);
    assert_false(e.error_retry);
    assert_string_equal(e.error_code, "42"); /* the first one is shown */
    assert_string_equal(e.error_followup, "R");
    assert_string_equal(e.error_origin, "payer");
    assert_int_equal(e.fresh_until_ms - e.cached_at_ms, 3600 * 1000);
    assert_int_equal(e.nbenefits, 0);
}

/* Stedi's own validation error (no errors[]) is not an answer: the client calls it rejected */
static void test_not_an_answer(void **state)
{
    (void)state;
    rte_cache_entry e;
    char err[256];
    assert_int_equal(read_json("{\"message\":\"Invalid request\",\"fieldList\":[{\"path\":"
                               "\"subscriber.memberId\",\"message\":\"too short\"}]}",
                               NULL, &e, err, sizeof err),
                     -1);
    assert_string_equal(err, "not an eligibility answer: neither errors[] nor "
                             "benefitsInformation[]");
    assert_int_equal(read_json("[1,2]", NULL, &e, err, sizeof err), -1);
    /* an empty answer is one: the payer said nothing about anything */
    assert_int_equal(
        read_json("{\"errors\":[],\"benefitsInformation\":[]}", NULL, &e, err, sizeof err), 0);
    assert_false(e.eligible);
    assert_string_equal(e.benefits[0].status, "not_stated");
}

static void test_asked_parse(void **state)
{
    (void)state;
    rte_stedi_asked a;
    char err[256], out[16];

    assert_int_equal(rte_stedi_asked_parse(NULL, &a, err, sizeof err), 0);
    assert_int_equal(a.n, 0);
    rte_stedi_asked_format(&a, out, sizeof out);
    assert_string_equal(out, "30");
    assert_int_equal(rte_stedi_asked_parse("30,mh,30", &a, err, sizeof err), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.code[1], "MH");
    rte_stedi_asked_format(&a, out, sizeof out);
    assert_string_equal(out, "30,MH");
    assert_int_equal(rte_stedi_asked_parse("30,MH,A6", &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "at most 2"));
    assert_int_equal(rte_stedi_asked_parse("30,,MH", &a, err, sizeof err), -1);
    assert_int_equal(rte_stedi_asked_parse("3X0", &a, err, sizeof err), -1);
    assert_string_equal(err, "serviceTypeCodes: '3X0' is not a service type code (1-2 letters "
                             "or digits)");
}

/* provider statements: in, out, both (unknown), and lookalikes that are not */
static void test_provider_statements(void **state)
{
    (void)state;
    static const struct {
        const char *desc, *want;
    } t[] = {
        {"PROVIDER IS OUT NETWORK FOR MEMBER", "out_of_network"},
        {" Provider is out of network based on NPI ID provided in request.", "out_of_network"},
        {"Provider is out-of-network", "out_of_network"},
        {"PROVIDER NOT IN NETWORK", "out_of_network"},
        {"Provider is in network", "in_network"},
        {"Includes services provided by Client Specific Network", "unknown"},
        {"Services rendered thru Client Specific Network", "unknown"},
        {"Provider within network rules apply", "unknown"},
        {"OUT OF NETWORK BENEFITS APPLY", "unknown"}, /* about benefits, not the provider */
    };
    char json[512], err[256];
    rte_cache_entry e;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":[\"30\"],"
                 "\"additionalInformation\":[{\"description\":\"%s\"}]}]}",
                 t[i].desc);
        assert_int_equal(read_json(json, NULL, &e, err, sizeof err), 0);
        if (strcmp(e.network_status, t[i].want) != 0)
            fail_msg("'%s': %s, expected %s", t[i].desc, e.network_status, t[i].want);
    }
    /* the payer says both: we cannot say */
    assert_int_equal(
        read_json("{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":[\"30\"],"
                  "\"additionalInformation\":[{\"description\":\"Provider is in network\"}]},"
                  "{\"code\":\"B\",\"serviceTypeCodes\":[\"30\"],\"additionalInformation\":["
                  "{\"description\":\"Provider is out of network\"}]}]}",
                  NULL, &e, err, sizeof err),
        0);
    assert_string_equal(e.network_status, "unknown");
    /* inPlanNetworkIndicatorCode alone says nothing about the provider */
    assert_int_equal(read_json("{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":["
                               "\"30\"],\"inPlanNetworkIndicatorCode\":\"Y\"},{\"code\":\"B\","
                               "\"serviceTypeCodes\":[\"30\"],\"benefitAmount\":\"20\","
                               "\"inPlanNetworkIndicatorCode\":\"Y\"}]}",
                               NULL, &e, err, sizeof err),
                     0);
    assert_string_equal(e.network_status, "unknown");
    assert_true(e.has_copay);
}

/* amounts we cannot show exactly are not shown */
static void test_amount_strings(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value;
        int kind;
        int32_t want; /* -1: not stated */
    } t[] = {
        {"benefitAmount", "100.00", RTE_BENEFIT_COPAY, 10000},
        {"benefitAmount", "7.5", RTE_BENEFIT_COPAY, 750},
        {"benefitAmount", ".5", RTE_BENEFIT_COPAY, 50},
        {"benefitAmount", "12.345", RTE_BENEFIT_COPAY, -1},
        {"benefitAmount", "-5", RTE_BENEFIT_COPAY, -1},
        {"benefitAmount", "twenty", RTE_BENEFIT_COPAY, -1},
        {"benefitAmount", "", RTE_BENEFIT_COPAY, -1},
        {"benefitAmount", "99999999999", RTE_BENEFIT_COPAY, -1},
        {"benefitPercent", "0.125", RTE_BENEFIT_COINSURANCE, 1250},
        {"benefitPercent", "1", RTE_BENEFIT_COINSURANCE, 10000},
        {"benefitPercent", "1.5", RTE_BENEFIT_COINSURANCE, -1},
        {"benefitPercent", "0.123456", RTE_BENEFIT_COINSURANCE, -1},
    };
    char json[512], err[256];
    rte_cache_entry e;
    rte_cache_range r;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"benefitsInformation\":[{\"code\":\"%s\",\"serviceTypeCodes\":[\"30\"],"
                 "\"%s\":\"%s\",\"inPlanNetworkIndicatorCode\":\"Y\"}]}",
                 t[i].kind == RTE_BENEFIT_COPAY ? "B" : "A", t[i].field, t[i].value);
        assert_int_equal(read_json(json, NULL, &e, err, sizeof err), 0);
        int got =
            rte_cache_benefit_get(&e.benefits[0], (enum rte_benefit_kind)t[i].kind, RTE_NET_IN, &r);
        if (t[i].want < 0 ? got : !got || r.lo != t[i].want)
            fail_msg("%s '%s': got %d (%d), expected %d", t[i].field, t[i].value, got,
                     got ? r.lo : 0, t[i].want);
    }
}

/* the first asked type decides eligible; not stated for it: the plan as a whole (30) */
static void test_eligible_falls_back_to_30(void **state)
{
    (void)state;
    rte_cache_entry e;
    char err[256];
    const char *only30 =
        "{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":[\"30\"]}]}";
    const char *mh_inactive = "{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":["
                              "\"30\"]},{\"code\":\"6\",\"serviceTypeCodes\":[\"MH\"]}]}";

    assert_int_equal(read_json(only30, "MH", &e, err, sizeof err), 0);
    assert_true(e.eligible);
    assert_string_equal(e.benefits[0].status, "not_stated");
    assert_int_equal(read_json(mh_inactive, "MH", &e, err, sizeof err), 0);
    assert_false(e.eligible);
    assert_string_equal(e.benefits[0].status, "inactive");
    /* codes 2, 4 and 5 are active too; 7 and 8 inactive */
    for (char code = '1'; code <= '8'; code++) {
        char json[160];
        snprintf(json, sizeof json,
                 "{\"benefitsInformation\":[{\"code\":\"%c\",\"serviceTypeCodes\":[\"30\"]}]}",
                 code);
        assert_int_equal(read_json(json, NULL, &e, err, sizeof err), 0);
        assert_int_equal(e.eligible, code <= '5');
        assert_string_equal(e.benefits[0].status, code <= '5' ? "active" : "inactive");
    }
}

int main(void)
{
    static const struct CMUnitTest rules[] = {
        cmocka_unit_test(test_retry_table),
        cmocka_unit_test(test_any_final_error_is_final),
        cmocka_unit_test(test_not_an_answer),
        cmocka_unit_test(test_asked_parse),
        cmocka_unit_test(test_provider_statements),
        cmocka_unit_test(test_amount_strings),
        cmocka_unit_test(test_eligible_falls_back_to_30),
    };
    static struct CMUnitTest golden[MAX_CASES];
    struct gcase *states[MAX_CASES];
    int n = load_cases(), rc;

    for (int i = 0; i < n; i++) {
        states[i] = &cases[i];
        golden[i] = (struct CMUnitTest){cases[i].name, run_case, NULL, NULL, states[i]};
    }
    rc = cmocka_run_group_tests(rules, NULL, NULL);
    rc += _cmocka_run_group_tests("golden", golden, (size_t)n, NULL, NULL);
    return rc;
}
