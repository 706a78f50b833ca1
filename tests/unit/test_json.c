/*
 * test_json.c - every rte_json getter: ok, missing, wrong type, out of range,
 * prefixed field names, and rte_json_parse's byte offsets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "rte/json.h"

static const char *doc_text =
    "{\"subscriber\":{\"memberId\":\"M123\",\"firstName\":\"\",\"n\":7},"
    "\"s\":\"hello\",\"long\":\"0123456789\",\"num\":42,\"half\":1.5,\"neg\":-3,"
    "\"big\":9007199254740993,\"huge\":1e300,\"inf\":1e999,\"str5\":\"5\","
    "\"flag\":true,\"off\":false,\"nil\":null,\"items\":[1,2,3],\"empty\":[],"
    "\"ratio\":0.25,\"obj\":{}}";

static int parse_doc(void **state)
{
    char err[128];

    *state = rte_json_parse(doc_text, strlen(doc_text), err, sizeof(err));
    return *state ? 0 : -1;
}

static int free_doc(void **state)
{
    cJSON_Delete(*state);
    rte_json_set_prefix(NULL);
    return 0;
}

static void test_parse_errors(void **state)
{
    const struct {
        const char *text;
        const char *err;
    } cases[] = {
        {"{\"a\":1,}", "invalid JSON at byte 7: expected a string key"},
        {"{\"a\": tru}", "invalid JSON at byte 6: expected a value"},
        {"{\"a\":1} x", "invalid JSON at byte 8: unexpected data after the document"},
        {"", "invalid JSON at byte 0: expected a value"},
        {"nul", "invalid JSON at byte 0: expected a value"},
    };
    char err[128];
    cJSON *j;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(err, sizeof(err), "unset");
        assert_null(rte_json_parse(cases[i].text, strlen(cases[i].text), err, sizeof(err)));
        assert_string_equal(err, cases[i].err);
    }
    /* exactly len bytes are parsed: no NUL terminator needed, trailing bytes ignored */
    j = rte_json_parse("{\"a\":1}garbage", 7, err, sizeof(err));
    assert_non_null(j);
    cJSON_Delete(j);
    j = rte_json_parse(" [1, 2]\r\n", 9, err, sizeof(err));
    assert_non_null(j);
    cJSON_Delete(j);
    /* an embedded NUL inside len is not whitespace */
    assert_null(rte_json_parse("{\"a\":1}\0zz", 10, err, sizeof(err)));
    assert_string_equal(err, "invalid JSON at byte 7: unexpected data after the document");
    assert_null(rte_json_parse(NULL, 0, err, sizeof(err)));
}

/*
 * what cJSON alone let through and rte_json_parse now refuses (issue 16):
 * each document below parses with cJSON, and reads differently there than
 * in a strict reader
 */
static void test_parse_strict(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        /* cJSON keeps both; lookups find the first, Python and Redis's cjson the last */
        {"{\"results\":[{\"member_id\":\"A\",\"member_id\":\"B\"}]}",
         "duplicate key 'member_id' in the object at 'results[0]'"},
        /* cJSON cuts the string at the NUL: "M1\u0000X" would read as "M1" */
        {"{\"member_id\":\"M1\\u0000X\"}", "\\u0000 not allowed in a string at 'member_id'"},
        /* raw control characters and invalid UTF-8 are copied through by cJSON */
        {"{\"member_id\":\"M\x01\"}",
         "control character 0x01 at byte 15 in a string at 'member_id' (must be escaped)"},
        {"{\"member_id\":\"M\xff\"}", "invalid UTF-8 at byte 15 in a string at 'member_id'"},
        {"[01]", "invalid JSON at byte 2: expected ',' or ']'"}, /* cJSON reads 1 */
        {"\x01[1]", "invalid JSON at byte 0: expected a value"}, /* cJSON skips it */
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *lenient = cJSON_ParseWithLength(cases[i].text, strlen(cases[i].text));
        if (lenient == NULL)
            fail_msg("case %zu: cJSON refuses it too; not a case of the policy", i);
        cJSON_Delete(lenient);
        snprintf(err, sizeof(err), "unset");
        assert_null(rte_json_parse(cases[i].text, strlen(cases[i].text), err, sizeof(err)));
        assert_string_equal(err, cases[i].err);
    }
    /* the caller's bounds */
    rte_input_json_limits lim = {8, 2};
    assert_null(rte_json_parse_limited("[1,2,3,4]", 9, &lim, err, sizeof(err)));
    assert_string_equal(err, "document of 9 bytes exceeds the limit of 8 bytes");
    assert_null(rte_json_parse_limited("[[[1]]]", 7, &lim, err, sizeof(err)));
    assert_string_equal(err, "nesting deeper than 2 levels at byte 2");
    cJSON *j = rte_json_parse_limited("[[1]]", 5, &lim, err, sizeof(err));
    assert_non_null(j);
    cJSON_Delete(j);
}

static void test_id(void **state)
{
    const char *out = "untouched";
    char err[200];
    const char *text = "{\"m\":\"M1\",\"c\":\"M\\u0001\",\"s\":\"\\u00e9t\\u00e9\",\"n\":5,"
                       "\"sp\":\" M\",\"nul\":null}";
    cJSON *d = rte_json_parse(text, strlen(text), err, sizeof(err));

    (void)state;
    assert_non_null(d);
    assert_int_equal(rte_json_id(d, "m", 128, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "M1");
    assert_int_equal(rte_json_id(d, "s", 128, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "\xc3\xa9t\xc3\xa9");
    rte_json_set_prefix("results[2]");
    assert_int_equal(rte_json_id(d, "c", 128, &out, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "field 'results[2].c': control character U+0001 at byte 1 is not allowed");
    assert_int_equal(rte_json_id(d, "sp", 128, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'results[2].sp': leading or trailing space is not allowed");
    assert_int_equal(rte_json_id(d, "m", 1, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'results[2].m': longer than 1 bytes");
    assert_int_equal(rte_json_id(d, "n", 128, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'results[2].n': expected string");
    assert_int_equal(rte_json_id(d, "nul", 128, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'results[2].nul': missing");
    rte_json_set_prefix(NULL);
    out = "untouched";
    assert_int_equal(rte_json_id_opt(d, "absent", 128, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "untouched");
    assert_int_equal(rte_json_id_opt(d, "c", 128, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'c': control character U+0001 at byte 1 is not allowed");
    cJSON_Delete(d);
}

static void test_string(void **state)
{
    const cJSON *doc = *state, *sub;
    const char *out = "untouched";
    char err[128];

    assert_int_equal(rte_json_string(doc, "s", 0, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "hello");
    assert_int_equal(rte_json_string(doc, "long", 10, &out, err, sizeof(err)), 0);
    assert_int_equal(rte_json_string(doc, "long", 9, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'long': longer than 9 bytes");
    assert_int_equal(rte_json_string(doc, "absent", 0, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'absent': missing");
    assert_int_equal(rte_json_string(doc, "nil", 0, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'nil': missing");
    assert_int_equal(rte_json_string(doc, "num", 0, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'num': expected string");
    assert_int_equal(rte_json_object(doc, "subscriber", &sub, err, sizeof(err)), 0);
    assert_int_equal(rte_json_string(sub, "memberId", 64, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "M123");
    assert_int_equal(rte_json_string(sub, "firstName", 64, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'firstName': must not be empty");
}

static void test_string_opt(void **state)
{
    const cJSON *doc = *state;
    const char *out = "untouched";
    char err[128];

    assert_int_equal(rte_json_string_opt(doc, "absent", 0, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "untouched");
    assert_int_equal(rte_json_string_opt(doc, "nil", 0, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "untouched");
    assert_int_equal(rte_json_string_opt(doc, "s", 0, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "hello");
    assert_int_equal(rte_json_string_opt(doc, "flag", 0, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'flag': expected string");
    assert_int_equal(rte_json_string_opt(doc, "s", 3, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 's': longer than 3 bytes");
}

static void test_int(void **state)
{
    const cJSON *doc = *state;
    int64_t v = 99;
    char err[128];

    assert_int_equal(rte_json_int(doc, "num", 1, 10000, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 42);
    assert_int_equal(rte_json_int(doc, "neg", -10, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, -3);
    assert_int_equal(rte_json_int(doc, "num", 1, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'num': must be in [1, 10]");
    assert_int_equal(rte_json_int(doc, "neg", 1, 10000, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'neg': must be in [1, 10000]");
    assert_int_equal(rte_json_int(doc, "half", 0, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'half': expected integer");
    assert_int_equal(rte_json_int(doc, "str5", 0, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'str5': expected integer");
    assert_int_equal(rte_json_int(doc, "absent", 0, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'absent': missing");
    /* 1e300 is integral as a double but far outside int64 */
    assert_int_equal(rte_json_int(doc, "huge", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "field 'huge': must be in ["));
    assert_int_equal(rte_json_int(doc, "inf", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'inf': expected integer");
    /* beyond 2^53 the parser already rounded the value: refuse it */
    assert_int_equal(rte_json_int(doc, "big", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'big': integer too large to be exact (|n| >= 2^53)");
    assert_int_equal(rte_json_int(doc, "big", 0, 100, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'big': must be in [0, 100]");
    assert_int_equal(v, -3);
}

static void test_int_opt(void **state)
{
    const cJSON *doc = *state;
    int64_t v = 99;
    char err[128];

    assert_int_equal(rte_json_int_opt(doc, "absent", 0, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 99);
    assert_int_equal(rte_json_int_opt(doc, "nil", 0, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 99);
    assert_int_equal(rte_json_int_opt(doc, "num", 0, 100, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 42);
    assert_int_equal(rte_json_int_opt(doc, "num", 0, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'num': must be in [0, 10]");
    assert_int_equal(rte_json_int_opt(doc, "s", 0, 10, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 's': expected integer");
}

static void test_number(void **state)
{
    const cJSON *doc = *state;
    double v = 0;
    char err[128];

    assert_int_equal(rte_json_number(doc, "ratio", 0, 1, &v, err, sizeof(err)), 0);
    assert_true(v == 0.25);
    assert_int_equal(rte_json_number(doc, "half", 0, 1, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'half': must be in [0, 1]");
    assert_int_equal(rte_json_number(doc, "s", 0, 1, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 's': expected number");
    assert_int_equal(rte_json_number(doc, "inf", -1e308, 1e308, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'inf': expected number");
    assert_int_equal(rte_json_number(doc, "absent", 0, 1, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'absent': missing");
}

static void test_bool(void **state)
{
    const cJSON *doc = *state;
    int v = 7;
    char err[128];

    assert_int_equal(rte_json_bool(doc, "flag", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1);
    assert_int_equal(rte_json_bool(doc, "off", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rte_json_bool(doc, "num", &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'num': expected boolean");
    assert_int_equal(rte_json_bool(doc, "absent", &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'absent': missing");

    v = 7;
    assert_int_equal(rte_json_bool_opt(doc, "absent", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 7);
    assert_int_equal(rte_json_bool_opt(doc, "flag", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1);
    assert_int_equal(rte_json_bool_opt(doc, "s", &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 's': expected boolean");
}

static void test_array_and_object(void **state)
{
    const cJSON *doc = *state, *out = NULL;
    char err[128];

    assert_int_equal(rte_json_array(doc, "items", 1, 3, &out, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(out), 3);
    assert_int_equal(rte_json_array(doc, "items", 1, 2, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'items': must have 1..2 elements");
    assert_int_equal(rte_json_array(doc, "empty", 1, 10, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'empty': must have 1..10 elements");
    assert_int_equal(rte_json_array(doc, "obj", 0, 10, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'obj': expected array");
    assert_int_equal(rte_json_array(doc, "absent", 0, 10, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'absent': missing");

    assert_int_equal(rte_json_object(doc, "obj", &out, err, sizeof(err)), 0);
    assert_true(cJSON_IsObject(out));
    assert_int_equal(rte_json_object(doc, "items", &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'items': expected object");
    assert_int_equal(rte_json_object(doc, "absent", &out, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'absent': missing");
}

static void test_prefix(void **state)
{
    const cJSON *doc = *state, *sub;
    const char *s;
    int64_t v;
    int b;
    char err[128];

    assert_int_equal(rte_json_object(doc, "subscriber", &sub, err, sizeof(err)), 0);
    rte_json_set_prefix("subscriber");
    assert_int_equal(rte_json_string(sub, "lastName", 64, &s, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'subscriber.lastName': missing");
    assert_int_equal(rte_json_int(sub, "n", 10, 20, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'subscriber.n': must be in [10, 20]");
    rte_json_set_prefix("results[3]");
    assert_int_equal(rte_json_bool(sub, "memberId", &b, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'results[3].memberId': expected boolean");
    rte_json_set_prefix(NULL);
    assert_int_equal(rte_json_string(sub, "lastName", 64, &s, err, sizeof(err)), -1);
    assert_string_equal(err, "field 'lastName': missing");
}

static void test_print_and_small_err(void **state)
{
    const cJSON *doc = *state, *sub;
    char err[16], *text;

    assert_int_equal(rte_json_object(doc, "subscriber", &sub, err, sizeof(err)), 0);
    text = rte_json_print(sub);
    assert_non_null(text);
    assert_string_equal(text, "{\"memberId\":\"M123\",\"firstName\":\"\",\"n\":7}");
    free(text);
    assert_null(rte_json_print(NULL));
    /* a short error buffer is truncated, never overrun */
    assert_int_equal(rte_json_int(doc, "absent", 0, 1, &(int64_t){0}, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(rte_json_int(doc, "absent", 0, 1, &(int64_t){0}, NULL, 0), -1);
}

/* the writer prints what cJSON prints for the same document */
static void test_writer_matches_cjson(void **state)
{
    (void)state;
    static const char *const strs[] = {"plain",
                                       "",
                                       "quote \" back \\ slash",
                                       "tab\tnl\ncr\r",
                                       "bell\a esc\x1b del\x7f",
                                       "caf\xc3\xa9 \xe2\x82\xac"};
    static const double nums[] = {0,     25,      -3,   25.5, 0.1,          1.0 / 3,
                                  1e300, -2.5e-7, 1e20, 4e9,  2147483648.0, -1e15};
    char buf[2048], key[16];
    rte_jsonw w;
    cJSON *doc = cJSON_CreateObject();
    cJSON *inner = cJSON_CreateObject();

    rte_jsonw_init(&w, buf, sizeof buf);
    rte_jsonw_begin(&w, NULL);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        snprintf(key, sizeof key, "s%zu", i);
        rte_jsonw_str(&w, key, strs[i]);
        cJSON_AddStringToObject(doc, key, strs[i]);
    }
    rte_jsonw_begin(&w, "n\"ested");
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        snprintf(key, sizeof key, "n%zu", i);
        rte_jsonw_num(&w, key, nums[i]);
        cJSON_AddNumberToObject(inner, key, nums[i]);
    }
    rte_jsonw_int(&w, "big", 4102444800000LL);
    cJSON_AddNumberToObject(inner, "big", 4102444800000.0);
    rte_jsonw_num(&w, "nan", NAN);
    cJSON_AddNumberToObject(inner, "nan", NAN);
    rte_jsonw_end(&w);
    cJSON_AddItemToObject(doc, "n\"ested", inner);
    rte_jsonw_bool(&w, "t", 1);
    rte_jsonw_bool(&w, "f", 0);
    rte_jsonw_null(&w, "z");
    rte_jsonw_str(&w, "zs", NULL);
    cJSON_AddTrueToObject(doc, "t");
    cJSON_AddFalseToObject(doc, "f");
    cJSON_AddNullToObject(doc, "z");
    cJSON_AddNullToObject(doc, "zs");
    rte_jsonw_end(&w);

    char *want = cJSON_PrintUnformatted(doc);
    int n = rte_jsonw_done(&w);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
    cJSON_free(want);
    cJSON_Delete(doc);

    /* and it parses back */
    char err[128];
    cJSON *back = rte_json_parse(buf, (size_t)n, err, sizeof err);
    assert_non_null(back);
    assert_string_equal(cJSON_GetObjectItem(back, "s2")->valuestring, strs[2]);
    cJSON_Delete(back);

    /* integers keep every digit (cJSON 1.7.15 prints 2^53-1 as 9.00719925474099e+15) */
    rte_jsonw_init(&w, buf, sizeof buf);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_int(&w, "a", 9007199254740991LL);
    rte_jsonw_int(&w, "b", INT64_MIN);
    rte_jsonw_end(&w);
    assert_true(rte_jsonw_done(&w) > 0);
    assert_string_equal(buf, "{\"a\":9007199254740991,\"b\":-9223372036854775808}");
}

/*
 * the writer scans strings 8 bytes at a time: every character that needs an
 * escape (and some that do not) at every position of strings 1-24 long is
 * written as cJSON writes it
 */
static void test_writer_escapes_at_every_position(void **state)
{
    (void)state;
    static const char specials[] = {'"', '\\', '\n', '\t', 1, 0x1f, ' ', 0x7f, (char)0xc3, '!'};
    char str[32], buf[256];
    rte_jsonw w;

    for (size_t len = 1; len <= 24; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (size_t k = 0; k <= sizeof specials; k++) {
                memset(str, 'a' + (int)(len % 26), len);
                if (k < sizeof specials) {
                    str[pos] = specials[k];
                    str[len] = '\0';
                } else { /* a whole 2-byte character: copied as it is */
                    str[pos] = (char)0xc3;
                    str[pos + 1] = (char)0xa9;
                    str[len + 1] = '\0';
                }
                cJSON *doc = cJSON_CreateObject();
                /* a lone 0xc3 is no UTF-8: the writer puts U+FFFD where cJSON copies the byte */
                if (k < sizeof specials && specials[k] == (char)0xc3) {
                    char fixed[40];
                    memcpy(fixed, str, pos);
                    memcpy(fixed + pos, "\xef\xbf\xbd", 3);
                    memcpy(fixed + pos + 3, str + pos + 1, len - pos);
                    cJSON_AddStringToObject(doc, "s", fixed);
                } else {
                    cJSON_AddStringToObject(doc, "s", str);
                }
                char *want = cJSON_PrintUnformatted(doc);
                rte_jsonw_init(&w, buf, sizeof buf);
                rte_jsonw_begin(&w, NULL);
                rte_jsonw_str(&w, "s", str);
                rte_jsonw_end(&w);
                assert_true(rte_jsonw_done(&w) > 0);
                /* the same text, but U+FFFD escaped: compare what a reader gets */
                char err[128];
                cJSON *back = rte_json_parse(buf, strlen(buf), err, sizeof err);
                if (back == NULL)
                    fail_msg("writer output '%s' is not valid JSON: %s", buf, err);
                char *again = cJSON_PrintUnformatted(back);
                assert_string_equal(again, want);
                if (k < sizeof specials && specials[k] != (char)0xc3)
                    assert_string_equal(buf, want); /* byte for byte, as before */
                cJSON_free(again);
                cJSON_Delete(back);
                cJSON_free(want);
                cJSON_Delete(doc);
            }
}

static void test_int_text(void **state)
{
    (void)state;
    char tmp[RTE_INT_TEXT];
    assert_string_equal(rte_int_text(0, tmp), "0");
    assert_string_equal(rte_int_text(-7, tmp), "-7");
    assert_string_equal(rte_int_text(79200, tmp), "79200");
    assert_string_equal(rte_int_text(INT64_MAX, tmp), "9223372036854775807");
    assert_string_equal(rte_int_text(INT64_MIN, tmp), "-9223372036854775808");
}

/* a full buffer or an open object gives -1, never a cut document */
static void test_writer_overflow_and_balance(void **state)
{
    (void)state;
    char buf[16];
    rte_jsonw w;

    rte_jsonw_init(&w, buf, sizeof buf);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_str(&w, "k", "0123456789");
    rte_jsonw_end(&w);
    assert_int_equal(rte_jsonw_done(&w), -1);
    assert_string_equal(buf, "");

    /* exactly full: 15 characters and the NUL */
    rte_jsonw_init(&w, buf, sizeof buf);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_str(&w, "k", "012345");
    rte_jsonw_end(&w);
    assert_int_equal(rte_jsonw_done(&w), 14);
    assert_string_equal(buf, "{\"k\":\"012345\"}");

    rte_jsonw_init(&w, buf, sizeof buf);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_int(&w, "k", -7);
    assert_int_equal(rte_jsonw_done(&w), -1); /* still open */

    rte_jsonw_init(&w, buf, sizeof buf);
    rte_jsonw_end(&w);
    assert_int_equal(rte_jsonw_done(&w), -1); /* closed more than opened */

    char deep[256];
    rte_jsonw_init(&w, deep, sizeof deep);
    for (int i = 0; i <= RTE_JSONW_DEPTH; i++)
        rte_jsonw_begin(&w, i ? "d" : NULL);
    assert_int_equal(rte_jsonw_done(&w), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_id),
        cmocka_unit_test_setup_teardown(test_string, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_string_opt, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_int, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_int_opt, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_number, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_bool, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_array_and_object, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_prefix, parse_doc, free_doc),
        cmocka_unit_test_setup_teardown(test_print_and_small_err, parse_doc, free_doc),
        cmocka_unit_test(test_writer_matches_cjson),
        cmocka_unit_test(test_writer_overflow_and_balance),
        cmocka_unit_test(test_writer_escapes_at_every_position),
        cmocka_unit_test(test_int_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
