/*
 * test_clock.c - scaled time, start time, RFC 3339 parse/format, env checks.
 *
 * Timing checks use wide tolerances because the test machine is shared and
 * noisy; the env checks that must be fatal run in forked children.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rte/clock.h"

#define JAN5_0600 1767592800000LL /* 2026-01-05T06:00:00Z */

static void real_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int reset(void **state)
{
    (void)state;
    unsetenv("RTE_CLOCK_SCALE");
    unsetenv("RTE_CLOCK_START");
    unsetenv("RTE_CLOCK_ANCHOR");
    return rte_clock_init(1.0, 0);
}

static void test_default_is_wall_clock(void **state)
{
    struct timespec ts;
    int64_t now;

    (void)state;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = rte_clock_now_ms();
    assert_true(llabs(now - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000)) < 1000);
    assert_true(fabs(rte_clock_scale() - 1.0) < 1e-12);
    assert_int_equal(rte_clock_now_s(), rte_clock_now_ms() / 1000);
}

static void test_scale_60(void **state)
{
    int64_t t0, t1, m0, m1;

    (void)state;
    assert_int_equal(rte_clock_init(60, 0), 0);
    assert_true(fabs(rte_clock_scale() - 60.0) < 1e-12);
    t0 = rte_clock_now_ms();
    m0 = rte_clock_mono_ms();
    real_sleep_ms(100);
    t1 = rte_clock_now_ms();
    m1 = rte_clock_mono_ms();
    /* 100 real ms = 6 simulated s; allow for a slow, noisy machine */
    assert_in_range(t1 - t0, 4500, 12000);
    /* the monotonic clock is never scaled */
    assert_in_range(m1 - m0, 90, 2000);
}

static void test_start_time_honoured(void **state)
{
    int64_t now;

    (void)state;
    assert_int_equal(rte_clock_init(1.0, JAN5_0600), 0);
    now = rte_clock_now_ms();
    assert_in_range(now, JAN5_0600, JAN5_0600 + 2000);
    assert_int_equal(rte_clock_now_s(), now / 1000);

    assert_int_equal(rte_clock_init(3600, JAN5_0600), 0);
    real_sleep_ms(20);
    now = rte_clock_now_ms();
    /* 20 real ms at 3600x = 72 simulated s */
    assert_in_range(now, JAN5_0600 + 60000, JAN5_0600 + 3600000);
}

static void test_init_rejects(void **state)
{
    (void)state;
    assert_int_equal(rte_clock_init(0, 0), -1);
    assert_int_equal(rte_clock_init(-1, 0), -1);
    assert_int_equal(rte_clock_init(1e6 + 1, 0), -1);
    assert_int_equal(rte_clock_init(NAN, 0), -1);
    assert_int_equal(rte_clock_init(1, -5), -1);
    assert_int_equal(rte_clock_init(1e6, 0), 0);
}

static void test_real_ms(void **state)
{
    (void)state;
    assert_int_equal(rte_clock_real_ms(60000), 60000);
    assert_int_equal(rte_clock_init(60, 0), 0);
    assert_int_equal(rte_clock_real_ms(60000), 1000);
    assert_int_equal(rte_clock_real_ms(90), 2); /* 1.5 rounds up */
    assert_int_equal(rte_clock_real_ms(1), 1);  /* never 0 for a positive duration */
    assert_int_equal(rte_clock_real_ms(0), 0);
    assert_int_equal(rte_clock_init(0.5, 0), 0);
    assert_int_equal(rte_clock_real_ms(1000), 2000);
}

static void test_sleep_scaled(void **state)
{
    int64_t m0, m1;

    (void)state;
    assert_int_equal(rte_clock_init(1000, 0), 0);
    m0 = rte_clock_mono_ms();
    rte_clock_sleep_ms(50000); /* 50 simulated s = 50 real ms */
    m1 = rte_clock_mono_ms();
    assert_in_range(m1 - m0, 45, 2000);
    m0 = rte_clock_mono_ms();
    rte_clock_sleep_ms(0);
    rte_clock_sleep_ms(-10);
    assert_in_range(rte_clock_mono_ms() - m0, 0, 20);
}

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(rte_clock_parse("2026-01-05T06:00:00Z"), JAN5_0600);
    assert_int_equal(rte_clock_parse("2026-01-05t06:00:00z"), JAN5_0600);
    assert_int_equal(rte_clock_parse("2026-01-05 06:00:00Z"), JAN5_0600);
    assert_int_equal(rte_clock_parse("2026-01-05T06:00:00.5Z"), JAN5_0600 + 500);
    assert_int_equal(rte_clock_parse("2026-01-05T06:00:00.123456789Z"), JAN5_0600 + 123);
    assert_int_equal(rte_clock_parse("2026-01-05T07:00:00+01:00"), JAN5_0600);
    assert_int_equal(rte_clock_parse("2026-01-05T01:00:00-05:00"), JAN5_0600);
    assert_int_equal(rte_clock_parse("2026-01-05T06:30:00.250+00:30"), JAN5_0600 + 250);
    assert_int_equal(rte_clock_parse("1767592800"), JAN5_0600);
    assert_int_equal(rte_clock_parse("0"), 0);
    assert_int_equal(rte_clock_parse("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(rte_clock_parse("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(rte_clock_parse("1969-12-31T23:59:59-01:00"), 3599000);
}

static void test_parse_invalid(void **state)
{
    const char *bad[] = {
        "",
        "abc",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2026-01-05T24:00:00Z",
        "2026-01-05T06:60:00Z",
        "2026-01-05T06:00:00",
        "2026-01-05T06:00:00Zjunk",
        "2026-01-05",
        "2026-01-05T06:00Z",
        "2026-01-05T06:00:00.Z",
        "2026-01-05T06:00:00+0100",
        "2026-01-05T06:00:00+24:00",
        "2026-1-5T06:00:00Z",
        " 2026-01-05T06:00:00Z",
        "-5",
        "12a",
        "1.5",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "99999999999999999999",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rte_clock_parse(bad[i]) != -1)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(rte_clock_parse(NULL), -1);
}

static void test_format_round_trip(void **state)
{
    const int64_t cases[] = {0,
                             1,
                             999,
                             JAN5_0600,
                             JAN5_0600 + 123,
                             951782400000LL /* 2000-02-29 */,
                             4102444799999LL /* 2099-12-31T23:59:59.999Z */};
    char buf[40], small[8];

    (void)state;
    rte_clock_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    rte_clock_format(JAN5_0600 + 123, buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-05T06:00:00.123Z");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rte_clock_format(cases[i], buf, sizeof(buf));
        assert_int_equal(strlen(buf), 24);
        assert_int_equal(rte_clock_parse(buf), cases[i]);
    }
    rte_clock_format(JAN5_0600, small, sizeof(small));
    assert_string_equal(small, "2026-01");
}

/* Known instants: leap days, years outside 1000..9999 (printed as "%04d" prints them), the
 * ends of int64. */
static void test_format_known(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1709164799999LL, "2024-02-28T23:59:59.999Z"},
        {1709210096789LL, "2024-02-29T12:34:56.789Z"},
        {1709251200000LL, "2024-03-01T00:00:00.000Z"},
        {1795444625123LL, "2026-11-23T14:37:05.123Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        {253402300800000LL, "10000-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-2203891200000LL, "1900-03-01T00:00:00.000Z"},
        {-62135596800000LL, "0001-01-01T00:00:00.000Z"},
        {-62135596800001LL, "0000-12-31T23:59:59.999Z"},
        {-62167219200001LL, "-001-12-31T23:59:59.999Z"},
        {INT64_MAX, "292278994-08-17T07:12:55.807Z"},
        {INT64_MIN, "-292275055-05-16T16:47:04.192Z"},
    };
    char buf[40];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rte_clock_format(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

/* A short buffer gets the text truncated and terminated, as snprintf leaves it; len <= 0 or
 * a NULL buffer writes nothing. */
static void test_format_short_buffer(void **state)
{
    char buf[32];

    (void)state;
    memset(buf, 'x', sizeof(buf));
    rte_clock_format(JAN5_0600, buf, 0);
    rte_clock_format(JAN5_0600, buf, -5);
    rte_clock_format(JAN5_0600, NULL, sizeof(buf));
    assert_int_equal(buf[0], 'x');
    rte_clock_format(JAN5_0600, buf, 1);
    assert_string_equal(buf, "");
    assert_int_equal(buf[1], 'x');
    rte_clock_format(JAN5_0600, buf, 8);
    assert_string_equal(buf, "2026-01");
    assert_int_equal(buf[8], 'x');
    rte_clock_format(JAN5_0600 + 456, buf, 24);
    assert_string_equal(buf, "2026-01-05T06:00:00.456");
    rte_clock_format(JAN5_0600 + 456, buf, 25);
    assert_string_equal(buf, "2026-01-05T06:00:00.456Z");
    rte_clock_format(INT64_MIN, buf, 11);
    assert_string_equal(buf, "-292275055");
}

/* rte_clock_format as it was written before it formatted digits itself. */
static void gmtime_format(int64_t ms, char *buf, size_t len)
{
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    time_t t = (time_t)secs;
    struct tm tm;

    assert_non_null(gmtime_r(&t, &tm));
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - secs * 1000));
}

/* Byte for byte what gmtime_r + snprintf gave: random instants over the whole range, around
 * 1970 and at day boundaries, into full and short buffers. */
static void test_format_matches_gmtime(void **state)
{
    uint64_t x = 88172645463325252ULL;

    (void)state;
    for (int i = 0; i < 200000; i++) {
        char want[96], got[96]; /* room for any int, so snprintf truncates only on purpose */
        int64_t ms;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (i % 3 == 0)
            ms = (int64_t)(x >> 1) - (int64_t)(x & 1) * INT64_MAX; /* anywhere */
        else if (i % 3 == 1)
            ms = (int64_t)(x % 600000000000000ULL) - 300000000000000LL; /* years -7500..11500 */
        else
            ms = ((int64_t)(x % 4000000) - 2000000) * 86400000LL + (int64_t)(x >> 62) - 2;
        size_t len = i % 5 == 0 ? (size_t)(x >> 59) : sizeof(want); /* 0..31 */
        memset(want, 'x', sizeof(want));
        memset(got, 'x', sizeof(got));
        if (len > 0)
            gmtime_format(ms, want, len);
        rte_clock_format(ms, got, (int)len);
        if (memcmp(want, got, sizeof(want)) != 0)
            fail_msg("%lld (len %zu): '%.40s', want '%.40s'", (long long)ms, len, got, want);
    }
}

/* Run rte_clock_init_env in a child with the given variables; returns its exit status. */
static int child_init_env(const char *scale, const char *start, char *errbuf, size_t errlen)
{
    int fds[2], status;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        if (scale)
            setenv("RTE_CLOCK_SCALE", scale, 1);
        if (start)
            setenv("RTE_CLOCK_START", start, 1);
        rte_clock_init_env();
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], errbuf, errlen - 1);
    errbuf[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_init_env(void **state)
{
    char err[2048];

    (void)state;
    assert_int_equal(child_init_env("0", NULL, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "RTE_CLOCK_SCALE"));
    assert_non_null(strstr(err, "'0'"));
    assert_int_equal(child_init_env("abc", NULL, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "'abc'"));
    assert_int_equal(child_init_env("2000000", NULL, err, sizeof(err)), 1);
    assert_int_equal(child_init_env("-3", NULL, err, sizeof(err)), 1);
    assert_int_equal(child_init_env("60", "yesterday", err, sizeof(err)), 1);
    assert_non_null(strstr(err, "RTE_CLOCK_START"));
    assert_non_null(strstr(err, "yesterday"));
    assert_int_equal(child_init_env("60", "2026-01-05T06:00:00Z", err, sizeof(err)), 0);

    setenv("RTE_CLOCK_SCALE", "120", 1);
    setenv("RTE_CLOCK_START", "2026-01-05T06:00:00Z", 1);
    rte_clock_init_env();
    assert_true(fabs(rte_clock_scale() - 120.0) < 1e-12);
    assert_in_range(rte_clock_now_ms(), JAN5_0600, JAN5_0600 + 120000);
}

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* two processes given the same scale, start and anchor agree, whenever each started */
static void test_anchor_shared_across_starts(void **state)
{
    (void)state;
    int64_t anchor = real_now_ms() - 10000; /* the cluster's clock started 10 s ago */

    /* the first process: 10 real s at scale 60 = 600 simulated s past start */
    assert_int_equal(rte_clock_init_anchored(60, JAN5_0600, anchor), 0);
    int64_t a = rte_clock_now_ms();
    assert_true(llabs(a - (JAN5_0600 + 600000)) < 60 * 500);
    /* a process starting 300 ms later computes the same time */
    real_sleep_ms(300);
    int64_t a2 = rte_clock_now_ms();
    assert_int_equal(rte_clock_init_anchored(60, JAN5_0600, anchor), 0);
    int64_t b = rte_clock_now_ms();
    assert_true(llabs(b - a2) < 60 * 100);
    assert_true(b - a > 60 * 200); /* and it moved on by 300 real ms * 60 meanwhile */
    /* without the anchor, the late process would have restarted at START */
    assert_int_equal(rte_clock_init(60, JAN5_0600), 0);
    assert_true(llabs(rte_clock_now_ms() - JAN5_0600) < 60 * 100);
    /* no start: simulated time equals real time at the anchor */
    assert_int_equal(rte_clock_init_anchored(3600, 0, anchor), 0);
    int64_t c = rte_clock_now_ms();
    assert_true(llabs(c - (anchor + 10300LL * 3600)) < 3600LL * 500);
    /* scale 1 with an anchor and a start: offset time that still runs at real speed */
    assert_int_equal(rte_clock_init_anchored(1, JAN5_0600, anchor), 0);
    assert_true(llabs(rte_clock_now_ms() - (JAN5_0600 + 10300)) < 500);
    assert_int_equal(rte_clock_init_anchored(1, 0, -1), -1);
}

/* RTE_CLOCK_ANCHOR from the environment; a bad value is fatal naming it */
static void test_anchor_env(void **state)
{
    (void)state;
    char anchor[32];
    snprintf(anchor, sizeof anchor, "%lld", (long long)(real_now_ms() / 1000 - 20));
    setenv("RTE_CLOCK_SCALE", "60", 1);
    setenv("RTE_CLOCK_START", "2026-01-05T06:00:00Z", 1);
    setenv("RTE_CLOCK_ANCHOR", anchor, 1);
    rte_clock_init_env();
    int64_t now = rte_clock_now_ms();
    /* 20 (..21, the anchor was truncated to seconds) real s * 60 past START */
    assert_true(now >= JAN5_0600 + 1200000 - 60 * 500 && now <= JAN5_0600 + 1260000 + 60 * 500);

    pid_t pid = fork();
    if (pid == 0) {
        setenv("RTE_CLOCK_ANCHOR", "yesterday", 1);
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        rte_clock_init_env();
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_is_wall_clock, reset, reset),
        cmocka_unit_test_setup_teardown(test_scale_60, reset, reset),
        cmocka_unit_test_setup_teardown(test_start_time_honoured, reset, reset),
        cmocka_unit_test_setup_teardown(test_init_rejects, reset, reset),
        cmocka_unit_test_setup_teardown(test_real_ms, reset, reset),
        cmocka_unit_test_setup_teardown(test_sleep_scaled, reset, reset),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_format_short_buffer),
        cmocka_unit_test(test_format_matches_gmtime),
        cmocka_unit_test_setup_teardown(test_init_env, reset, reset),
        cmocka_unit_test_setup_teardown(test_anchor_shared_across_starts, reset, reset),
        cmocka_unit_test_setup_teardown(test_anchor_env, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
