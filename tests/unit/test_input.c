/*
 * test_input.c - the input policy (rte/input.h): UTF-8 at the byte level
 * (overlong forms, encoded surrogates, 4-byte sequences, truncation), ids
 * (control characters C0/DEL/C1, separators, format characters, spaces,
 * lengths), calendar dates (leap years, month 13, day 0, both formats),
 * RFC 3339 timestamps (offsets, fractions, leap seconds), and strict JSON
 * (grammar, duplicate keys in small and large objects, \u0000, surrogate
 * escapes, depth and size bounds) with the exact messages callers pass on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/input.h"

#define JAN5_0600 1767592800000LL /* 2026-01-05T06:00:00Z */

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        int ok;
        size_t bad;
    } cases[] = {
        {"", 0, 1, 0},
        {"plain ascii", 11, 1, 0},
        {"\xc3\xa9", 2, 1, 0},                 /* U+00E9, 2 bytes */
        {"\xe2\x82\xac", 3, 1, 0},             /* U+20AC, 3 bytes */
        {"\xf0\x9d\x84\x9e", 4, 1, 0},         /* U+1D11E, 4 bytes */
        {"\xf4\x8f\xbf\xbf", 4, 1, 0},         /* U+10FFFF, the last */
        {"\xed\x9f\xbf", 3, 1, 0},             /* U+D7FF, just below the surrogates */
        {"\xee\x80\x80", 3, 1, 0},             /* U+E000, just above them */
        {"\xc0\x80", 2, 0, 0},                 /* overlong NUL */
        {"\xc1\xbf", 2, 0, 0},                 /* overlong U+007F */
        {"\xe0\x80\x80", 3, 0, 0},             /* overlong, 3 bytes */
        {"\xe0\x9f\xbf", 3, 0, 0},             /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", 4, 0, 0},         /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, 0, 0},             /* U+D800 encoded */
        {"\xed\xbf\xbf", 3, 0, 0},             /* U+DFFF encoded */
        {"\xed\xa0\xbd\xed\xb8\x80", 6, 0, 0}, /* CESU-8 surrogate pair */
        {"\xf4\x90\x80\x80", 4, 0, 0},         /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0, 0},         /* F5 never starts a sequence */
        {"\xff", 1, 0, 0},
        {"ab\x80", 3, 0, 2},                           /* lone continuation byte */
        {"ab\xe2\x82", 4, 0, 2},                       /* truncated at the end */
        {"a\xc3(", 3, 0, 1},                           /* bad continuation */
        {"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84", 9, 0, 5}, /* good, good, cut */
    };
    size_t bad;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad = 999;
        int ok = rte_input_utf8(cases[i].s, cases[i].len, &bad);
        if (ok != cases[i].ok)
            fail_msg("case %zu: utf8 %d, expected %d", i, ok, cases[i].ok);
        if (!ok && bad != cases[i].bad)
            fail_msg("case %zu: bad byte %zu, expected %zu", i, bad, cases[i].bad);
    }
    assert_int_equal(rte_input_utf8_char("\xf0\x9d\x84\x9e", 4), 4);
    assert_int_equal(rte_input_utf8_char("\xf0\x9d\x84\x9e", 3), 0); /* not all there */
    assert_int_equal(rte_input_utf8_char("\xc3\xa9", 2), 2);
    assert_int_equal(rte_input_utf8_char("\x80", 1), 0);
}

static void expect_id(const char *s, size_t len, size_t max, const char *field, const char *want)
{
    char err[200] = "untouched";
    int rc = rte_input_id(s, len, max, field, err, sizeof err);

    if (want == NULL) {
        if (rc != 0)
            fail_msg("id of %zu bytes refused: %s", len, err);
        return;
    }
    if (rc != -1)
        fail_msg("id of %zu bytes accepted, expected '%s'", len, want);
    if (strcmp(err, want) != 0)
        fail_msg("'%s' != '%s'", err, want);
}

static void test_ids(void **state)
{
    char long_id[200];

    (void)state;
    expect_id("M123", 4, 128, "member_id", NULL);
    expect_id("A B", 3, 128, "member_id", NULL);              /* an inner space is fine */
    expect_id("M\xc3\xbcller", 7, 128, "member_id", NULL);    /* so is UTF-8 */
    expect_id("\xf0\x9d\x84\x9e", 4, 128, "member_id", NULL); /* and 4-byte characters */
    expect_id("", 0, 128, "member_id", "member_id: must not be empty");
    memset(long_id, 'x', sizeof long_id);
    expect_id(long_id, 128, 128, "id", NULL);
    expect_id(long_id, 129, 128, "id", "id: longer than 128 bytes");
    expect_id("M1\0X", 4, 128, "results[0].member_id",
              "results[0].member_id: control character U+0000 at byte 2 is not allowed");
    expect_id("M\x01", 2, 128, "f", "f: control character U+0001 at byte 1 is not allowed");
    expect_id("M\t", 2, 128, "f", "f: control character U+0009 at byte 1 is not allowed");
    expect_id("M\n1", 3, 128, "f", "f: control character U+000A at byte 1 is not allowed");
    expect_id("M\x7f", 2, 128, "f", "f: control character U+007F at byte 1 is not allowed");
    expect_id("M\xc2\x85", 3, 128, "f", "f: control character U+0085 at byte 1 is not allowed");
    expect_id("M\xc2\x9f", 3, 128, "f", "f: control character U+009F at byte 1 is not allowed");
    expect_id("M\xc2\xa0", 3, 128, "f", NULL); /* U+00A0 is past C1 */
    expect_id("M\xe2\x80\xa8", 4, 128, "f", "f: line separator U+2028 at byte 1 is not allowed");
    expect_id("M\xe2\x80\x8b", 4, 128, "f",
              "f: invisible format character U+200B at byte 1 is not allowed");
    expect_id("M\xe2\x80\xae", 4, 128, "f",
              "f: invisible format character U+202E at byte 1 is not allowed");
    expect_id("\xef\xbb\xbfM", 4, 128, "f",
              "f: invisible format character U+FEFF at byte 0 is not allowed");
    expect_id("M\xff", 2, 128, "f", "f: invalid UTF-8 at byte 1");
    expect_id("M\xc0\x80", 3, 128, "f", "f: invalid UTF-8 at byte 1"); /* overlong NUL */
    expect_id("M\xed\xa0\x80", 4, 128, "f", "f: invalid UTF-8 at byte 1");
    expect_id(" M", 2, 128, "f", "f: leading or trailing space is not allowed");
    expect_id("M ", 2, 128, "f", "f: leading or trailing space is not allowed");
    expect_id("M\x01", 2, 128, NULL, "control character U+0001 at byte 1 is not allowed");
    expect_id("xyz", 3, 0, NULL, NULL); /* maxlen 0: no bound */
}

static void expect_date(const char *s, int formats, const char *want, int64_t days)
{
    char err[200] = "untouched";
    int64_t got = -12345;
    int rc = rte_input_date(s, strlen(s), formats, &got, "coverage_start", err, sizeof err);

    if (want == NULL) {
        if (rc != 0)
            fail_msg("date '%s' refused: %s", s, err);
        if (got != days)
            fail_msg("date '%s': day %lld, expected %lld", s, (long long)got, (long long)days);
        return;
    }
    if (rc != -1)
        fail_msg("date '%s' accepted, expected '%s'", s, want);
    if (strcmp(err, want) != 0)
        fail_msg("'%s' != '%s'", err, want);
}

static void test_dates(void **state)
{
    const int iso = RTE_INPUT_DATE_ISO, basic = RTE_INPUT_DATE_BASIC, both = iso | basic;

    (void)state;
    expect_date("1970-01-01", iso, NULL, 0);
    expect_date("1969-12-31", iso, NULL, -1);
    expect_date("2024-02-29", iso, NULL, rte_days_from_civil(2024, 2, 29)); /* leap */
    expect_date("2000-02-29", iso, NULL, rte_days_from_civil(2000, 2, 29)); /* 400 rule */
    expect_date("2026-12-31", iso, NULL, rte_days_from_civil(2026, 12, 31));
    expect_date("2023-02-29", iso, "coverage_start: not a calendar date (2023-02 has no day 29)",
                0);
    expect_date("1900-02-29", iso, "coverage_start: not a calendar date (1900-02 has no day 29)",
                0); /* 100 rule */
    expect_date("2026-13-45", iso, "coverage_start: not a calendar date (month 13)", 0);
    expect_date("2026-00-10", iso, "coverage_start: not a calendar date (month 00)", 0);
    expect_date("2026-04-31", iso, "coverage_start: not a calendar date (2026-04 has no day 31)",
                0);
    expect_date("2026-01-00", iso, "coverage_start: not a calendar date (2026-01 has no day 00)",
                0);
    expect_date("2026-1-05", iso, "coverage_start: expected YYYY-MM-DD", 0);
    expect_date("2026-01-05T00:00:00Z", iso, "coverage_start: expected YYYY-MM-DD", 0);
    expect_date(" 2026-01-05", iso, "coverage_start: expected YYYY-MM-DD", 0);
    expect_date("2026/01/05", iso, "coverage_start: expected YYYY-MM-DD", 0);
    expect_date("+026-01-05", iso, "coverage_start: expected YYYY-MM-DD", 0);
    expect_date("20240229", basic, NULL, rte_days_from_civil(2024, 2, 29));
    expect_date("20230229", basic, "coverage_start: not a calendar date (2023-02 has no day 29)",
                0);
    expect_date("20261345", basic, "coverage_start: not a calendar date (month 13)", 0);
    expect_date("2024-02-29", basic, "coverage_start: expected YYYYMMDD", 0);
    expect_date("20240229", iso, "coverage_start: expected YYYY-MM-DD", 0);
    expect_date("20240229", both, NULL, rte_days_from_civil(2024, 2, 29));
    expect_date("2024-02-29", both, NULL, rte_days_from_civil(2024, 2, 29));
    expect_date("2024022", both, "coverage_start: expected YYYY-MM-DD or YYYYMMDD", 0);
}

static void expect_ts(const char *s, const char *want, int64_t ms)
{
    char err[200] = "untouched";
    int64_t got = -12345;
    int rc = rte_input_timestamp(s, strlen(s), &got, "completed_at", err, sizeof err);

    if (want == NULL) {
        if (rc != 0)
            fail_msg("timestamp '%s' refused: %s", s, err);
        if (got != ms)
            fail_msg("timestamp '%s': %lld, expected %lld", s, (long long)got, (long long)ms);
        return;
    }
    if (rc != -1)
        fail_msg("timestamp '%s' accepted, expected '%s'", s, want);
    if (strcmp(err, want) != 0)
        fail_msg("'%s' != '%s'", err, want);
}

static void test_timestamps(void **state)
{
    const char *shape = "completed_at: expected an RFC 3339 date-time such as 2026-01-05T06:00:00Z";
    const char *offset = "completed_at: expected a time offset Z or +hh:mm / -hh:mm";

    (void)state;
    expect_ts("2026-01-05T06:00:00Z", NULL, JAN5_0600);
    expect_ts("2026-01-05t06:00:00z", NULL, JAN5_0600);
    expect_ts("2026-01-05T06:00:00.123Z", NULL, JAN5_0600 + 123);
    expect_ts("2026-01-05T06:00:00.1Z", NULL, JAN5_0600 + 100);
    expect_ts("2026-01-05T06:00:00.123456789Z", NULL, JAN5_0600 + 123);
    expect_ts("2026-01-05T07:00:00+01:00", NULL, JAN5_0600);
    expect_ts("2026-01-05T01:00:00-05:00", NULL, JAN5_0600);
    expect_ts("2026-01-05T11:45:00.5+05:45", NULL, JAN5_0600 + 500);
    expect_ts("2026-01-05T06:00:00-00:00", NULL, JAN5_0600);  /* unknown local offset */
    expect_ts("2026-12-31T23:59:60Z", NULL, 1798761600000LL); /* leap second: next minute */
    expect_ts("1969-12-31T23:59:59Z", NULL, -1000);
    expect_ts("2024-02-29T12:00:00Z", NULL,
              rte_days_from_civil(2024, 2, 29) * 86400000LL + 12 * 3600000LL);
    expect_ts("2026-01-05 06:00:00Z", shape, 0);
    expect_ts("2026-01-05T06:00Z", shape, 0);
    expect_ts("1767592800", shape, 0); /* epoch seconds are not RFC 3339 */
    expect_ts("", shape, 0);
    expect_ts("2026-01-05T06:00:00", offset, 0);
    expect_ts("2026-01-05T06:00:00+0100", offset, 0);
    expect_ts("2026-01-05T06:00:00+01", offset, 0);
    expect_ts("2026-01-05T06:00:00+01:60", "completed_at: not a time offset (01:60)", 0);
    expect_ts("2026-01-05T06:00:00+24:00", "completed_at: not a time offset (24:00)", 0);
    expect_ts("2026-01-05T06:00:00Zx",
              "completed_at: expected an RFC 3339 date-time such as 2026-01-05T06:00:00Z (text "
              "after the offset)",
              0);
    expect_ts("2026-01-05T24:00:00Z", "completed_at: not a time of day (24:00:00)", 0);
    expect_ts("2026-01-05T06:60:00Z", "completed_at: not a time of day (06:60:00)", 0);
    expect_ts("2026-01-05T06:00:61Z", "completed_at: not a time of day (06:00:61)", 0);
    expect_ts("2026-01-05T06:30:60Z", "completed_at: second 60 is a leap second only in minute 59",
              0);
    expect_ts("2026-02-30T00:00:00Z", "completed_at: not a calendar date (2026-02 has no day 30)",
              0);
    expect_ts("2026-13-01T00:00:00Z", "completed_at: not a calendar date (month 13)", 0);
    expect_ts("2026-01-05T06:00:00.Z", "completed_at: expected digits after the '.' of the seconds",
              0);
}

static void test_quote(void **state)
{
    char out[300], big[100];

    (void)state;
    rte_input_quote("ab\x01\xff'", 5, out, sizeof out);
    assert_string_equal(out, "ab\\x01\\xff'");
    memset(big, 'a', sizeof big);
    rte_input_quote(big, sizeof big, out, sizeof out);
    assert_int_equal(strlen(out), RTE_INPUT_QUOTE_MAX + 3);
    assert_string_equal(out + RTE_INPUT_QUOTE_MAX, "...");
    rte_input_quote("abcdef", 6, out, 4); /* a short buffer cuts, NUL-terminated */
    assert_string_equal(out, "abc");
}

static void expect_json(const char *doc, size_t len, const char *want)
{
    char err[300] = "untouched";
    int rc = rte_input_json(doc, len, NULL, err, sizeof err);

    if (want == NULL) {
        if (rc != 0)
            fail_msg("document %.60s refused: %s", doc, err);
        return;
    }
    if (rc != -1)
        fail_msg("document %.60s accepted, expected '%s'", doc, want);
    if (strcmp(err, want) != 0)
        fail_msg("'%s' != '%s'", err, want);
}

#define OK(doc) expect_json(doc, sizeof(doc) - 1, NULL)
#define BAD(doc, want) expect_json(doc, sizeof(doc) - 1, want)

static void test_json_valid(void **state)
{
    (void)state;
    OK("{}");
    OK("[]");
    OK("0");
    OK("-0");
    OK("-0.5e+10");
    OK("1E-2");
    OK("123456789012345678901234567890");
    OK("\"x\"");
    OK("true");
    OK("false");
    OK("null");
    OK(" \t\r\n{ \"a\" : [ 1 , 2 ] } \n");
    OK("{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}"); /* one key in different objects */
    OK("{\"a\":1,\"A\":2}");                             /* case matters */
    OK("{\"\":1,\"x\":{\"\":2}}");                       /* the empty key, once per object */
    OK("\"\\u00e9\\u20ac\\ud834\\udd1e\\\\\\/\\\"\\b\\f\\n\\r\\t\"");
    OK("\"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"");
    OK("\"\\u0001\""); /* an escaped control character is valid JSON (ids refuse it later) */
    OK("\"\x7f\"");    /* DEL needs no escape */
}

static void test_json_grammar(void **state)
{
    (void)state;
    BAD("", "invalid JSON at byte 0: expected a value");
    BAD("   ", "invalid JSON at byte 3: expected a value");
    BAD("01", "invalid JSON at byte 1: unexpected data after the document");
    BAD("[01]", "invalid JSON at byte 2: expected ',' or ']'");
    BAD("1.", "invalid JSON at byte 2: expected a digit");
    BAD("-", "invalid JSON at byte 1: expected a digit");
    BAD("1e", "invalid JSON at byte 2: expected a digit");
    BAD(".5", "invalid JSON at byte 0: expected a value");
    BAD("+1", "invalid JSON at byte 0: expected a value");
    BAD("NaN", "invalid JSON at byte 0: expected a value");
    BAD("nul", "invalid JSON at byte 0: expected a value");
    BAD("{\"a\":1,}", "invalid JSON at byte 7: expected a string key");
    BAD("[1,]", "invalid JSON at byte 3: expected a value");
    BAD("{'a':1}", "invalid JSON at byte 1: expected a string key");
    BAD("{\"a\" 1}", "invalid JSON at byte 5: expected ':'");
    BAD("{\"a\":1 \"b\":2}", "invalid JSON at byte 7: expected ',' or '}'");
    BAD("[1] x", "invalid JSON at byte 4: unexpected data after the document");
    BAD("{\"a\":[1,2}", "invalid JSON at byte 9: expected ',' or ']' (in 'a')");
    BAD("{\"r\":[{\"a\":1 x}]}", "invalid JSON at byte 13: expected ',' or '}' (in 'r[0]')");
    BAD("\f{}", "invalid JSON at byte 0: expected a value"); /* not JSON whitespace */
    BAD("\x01{}", "invalid JSON at byte 0: expected a value");
    BAD("\xef\xbb\xbf{}", "invalid JSON at byte 0: a byte-order mark is not allowed");
    BAD("/* c */{}", "invalid JSON at byte 0: expected a value");
    BAD("\"abc", "invalid JSON at byte 4: unterminated string");
    BAD("\"a\\x\"", "invalid JSON at byte 3: invalid escape in a string");
    BAD("\"\\u12\"", "invalid JSON at byte 2: \\u needs four hex digits");
    BAD("{\"a\":1}\0", "invalid JSON at byte 7: unexpected data after the document");
}

static void test_json_strings(void **state)
{
    (void)state;
    BAD("{\"member_id\":\"M1\\u0000X\"}", "\\u0000 not allowed in a string at 'member_id'");
    BAD("{\"results\":[{\"check_id\":\"c\"},{\"member_id\":\"M1\\u0000\"}]}",
        "\\u0000 not allowed in a string at 'results[1].member_id'");
    BAD("\"\\u0000\"", "\\u0000 not allowed in the top-level string");
    BAD("{\"a\\u0000\":1}", "\\u0000 not allowed in a key of the top-level object");
    BAD("{\"a\":\"x\x01\"}",
        "control character 0x01 at byte 7 in a string at 'a' (must be escaped)");
    BAD("{\"a\":\"x\ty\"}",
        "control character 0x09 at byte 7 in a string at 'a' (must be escaped)");
    BAD("{\"a\":\"\xff\"}", "invalid UTF-8 at byte 6 in a string at 'a'");
    BAD("{\"a\":\"\xc0\x80\"}", "invalid UTF-8 at byte 6 in a string at 'a'");
    BAD("{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8 at byte 6 in a string at 'a'");
    BAD("{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8 at byte 6 in a string at 'a'");
    BAD("{\"\xe0\x80\x80\":1}", "invalid UTF-8 at byte 2 in a key of the top-level object");
    BAD("{\"a\":[1,{\"b\":[0,0,\"ok \xfe\"]}]}", "invalid UTF-8 at byte 22 in a string at "
                                                 "'a[1].b[2]'");
    /* long plain runs go 8 bytes at a time: the bad byte is still found exactly */
    BAD("\"0123456789abcdef0123456789\x01\"",
        "control character 0x01 at byte 27 in the top-level string (must be escaped)");
    BAD("\"0123456789abcdef\xc3\xa9\xc3\"", "invalid UTF-8 at byte 19 in the top-level string");
    BAD("\"\\ud800\"", "unpaired surrogate escape \\ud800 at byte 1 in the top-level string (a "
                       "high half not followed by a low one)");
    BAD("\"\\ud800\\u0041\"", "unpaired surrogate escape \\ud800 at byte 1 in the top-level "
                              "string (a high half not followed by a low one)");
    BAD("\"\\ud800\\ud800\"", "unpaired surrogate escape \\ud800 at byte 1 in the top-level "
                              "string (a high half not followed by a low one)");
    BAD("{\"k\":\"x\\udc00\"}", "unpaired surrogate escape \\udc00 at byte 7 in a string at 'k' "
                                "(a low half without a high one)");
    BAD("\"\\uDBFF\\uDFFF\\uD800\"",
        "unpaired surrogate escape \\ud800 at byte 13 in the top-level string (a high half not "
        "followed by a low one)");
    OK("\"\\uDBFF\\uDFFF\"");
}

static void test_json_duplicates(void **state)
{
    char *big;
    size_t n;

    (void)state;
    BAD("{\"a\":1,\"a\":2}", "duplicate key 'a' in the top-level object");
    BAD("{\"results\":[{\"x\":1},{\"member_id\":\"a\",\"y\":2,\"member_id\":\"b\"}]}",
        "duplicate key 'member_id' in the object at 'results[1]'");
    BAD("{\"o\":{\"p\":{\"q\":1,\"q\":1}}}", "duplicate key 'q' in the object at 'o.p'");
    /* keys are compared after unescaping */
    BAD("{\"a\":1,\"\\u0061\":2}", "duplicate key 'a' in the top-level object");
    BAD("{\"\\u00e9\":1,\"\xc3\xa9\":2}", "duplicate key '\\xc3\\xa9' in the top-level object");
    BAD("{\"\\/\":1,\"/\":2}", "duplicate key '/' in the top-level object");
    BAD("{\"\\u0001\":1,\"\\u0001\":2}", "duplicate key '\\x01' in the top-level object");
    /* a nested object's keys do not clash with its parent's, before or after it */
    OK("{\"a\":{\"a\":{\"a\":1},\"b\":2},\"b\":{\"a\":1}}");

    /* objects past the linear check: 200 keys, then one repeat near the start or the end */
    big = malloc(200 * 16 + 64);
    assert_non_null(big);
    for (int rep = -1; rep < 200; rep += 199) {
        n = 0;
        big[n++] = '{';
        for (int i = 0; i < 200; i++)
            n += (size_t)snprintf(big + n, 32, "%s\"k%d\":%d", i ? "," : "", i, i);
        if (rep >= 0)
            n += (size_t)snprintf(big + n, 32, ",\"k%d\":0", rep == 199 ? 17 : 3);
        big[n++] = '}';
        char err[200] = "";
        int rc = rte_input_json(big, n, NULL, err, sizeof err);
        if (rep < 0) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, rep == 199 ? "duplicate key 'k17' in the top-level object"
                                                : "duplicate key 'k3' in the top-level object");
        }
    }
    free(big);
}

/*
 * keys that share their hash (the same first and last 8 bytes and length)
 * must not make the big-object check quadratic: the hash table gives up
 * and the sort decides, still finding a repeat
 */
static void test_json_colliding_keys(void **state)
{
    const int keys = 50000;
    char *doc = malloc((size_t)keys * 32 + 64), err[200] = "";
    struct timespec t0, t1;

    (void)state;
    assert_non_null(doc);
    for (int dup = 0; dup < 2; dup++) {
        size_t n = 0;
        doc[n++] = '{';
        for (int i = 0; i < keys; i++)
            n += (size_t)snprintf(doc + n, 32, "%s\"aaaaaaaa%05dbbbbbbbb\":1", i ? "," : "", i);
        if (dup)
            n += (size_t)snprintf(doc + n, 32, ",\"aaaaaaaa%05dbbbbbbbb\":2", 4242);
        doc[n++] = '}';
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = rte_input_json(doc, n, NULL, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (s > 1.0)
            fail_msg("%d colliding keys took %.2f s", keys, s);
        if (dup) {
            assert_int_equal(rc, -1);
            assert_string_equal(err,
                                "duplicate key 'aaaaaaaa04242bbbbbbbb' in the top-level object");
        } else {
            assert_int_equal(rc, 0);
        }
    }
    free(doc);
}

/* a 100,000-key object is checked in n log n: well under a second even here */
static void test_json_many_keys(void **state)
{
    const int keys = 100000;
    char *doc = malloc((size_t)keys * 24 + 16), err[200] = "";
    size_t n = 0;
    struct timespec t0, t1;

    (void)state;
    assert_non_null(doc);
    doc[n++] = '{';
    for (int i = 0; i < keys; i++)
        n += (size_t)snprintf(doc + n, 24, "%s\"key%d\":1", i ? "," : "", i);
    doc[n++] = '}';
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rte_input_json(doc, n, NULL, err, sizeof err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (s > 1.0)
        fail_msg("100,000 keys took %.2f s", s);
    /* escaped keys in a big object: the scratch grows, and the repeat is still found */
    n = 0;
    doc[n++] = '{';
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(doc + n, 32, "%s\"\\u006b%d\":1", i ? "," : "", i);
    n += (size_t)snprintf(doc + n, 32, ",\"k4321\":2}");
    assert_int_equal(rte_input_json(doc, n, NULL, err, sizeof err), -1);
    assert_string_equal(err, "duplicate key 'k4321' in the top-level object");
    free(doc);
}

static void test_json_limits(void **state)
{
    char doc[1200], err[200] = "";
    rte_input_json_limits lim = {0, 0};

    (void)state;
    memset(doc, '[', 64);
    memset(doc + 64, ']', 64);
    assert_int_equal(rte_input_json(doc, 128, NULL, err, sizeof err), 0);
    memset(doc, '[', 65);
    memset(doc + 65, ']', 65);
    assert_int_equal(rte_input_json(doc, 130, NULL, err, sizeof err), -1);
    assert_string_equal(err, "nesting deeper than 64 levels at byte 64");
    lim.max_depth = 3;
    assert_int_equal(rte_input_json("[{\"a\":[]}]", 10, &lim, err, sizeof err), 0);
    assert_int_equal(rte_input_json("[{\"a\":[{}]}]", 12, &lim, err, sizeof err), -1);
    assert_string_equal(err, "nesting deeper than 3 levels at byte 7");
    /* a deeper limit than the inline frames: 500 levels asked, 256 the most */
    lim.max_depth = 500;
    memset(doc, '[', 256);
    memset(doc + 256, ']', 256);
    assert_int_equal(rte_input_json(doc, 512, &lim, err, sizeof err), 0);
    memset(doc, '[', 257);
    memset(doc + 257, ']', 257);
    assert_int_equal(rte_input_json(doc, 514, &lim, err, sizeof err), -1);
    assert_string_equal(err, "nesting deeper than 256 levels at byte 256");
    lim = (rte_input_json_limits){10, 0};
    assert_int_equal(rte_input_json("[1,2,3,45]", 10, &lim, err, sizeof err), 0);
    assert_int_equal(rte_input_json("[1,2,3,456]", 11, &lim, err, sizeof err), -1);
    assert_string_equal(err, "document of 11 bytes exceeds the limit of 10 bytes");
    /* NULL buffer and tiny error buffers */
    assert_int_equal(rte_input_json(NULL, 0, NULL, err, sizeof err), -1);
    assert_string_equal(err, "invalid JSON at byte 0: expected a value");
    assert_int_equal(rte_input_json("{\"a\":1,\"a\":1}", 13, NULL, err, 8), -1);
    assert_string_equal(err, "duplica");
    assert_int_equal(rte_input_json("x", 1, NULL, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_json_grammar),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_json_duplicates),
        cmocka_unit_test(test_json_many_keys),
        cmocka_unit_test(test_json_colliding_keys),
        cmocka_unit_test(test_json_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
