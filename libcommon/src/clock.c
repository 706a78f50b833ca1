/*
 * clock.c - the suite's one notion of "now", real or scaled.
 *
 *   now_ms = start_ms + (monotonic_now - monotonic_at_init) * scale
 *
 * start_ms is RTE_CLOCK_START as seen from this process's start-up: with
 * an anchor (RTE_CLOCK_ANCHOR, the real epoch time at which simulated time
 * was RTE_CLOCK_START) it is START + (real time at init - ANCHOR) * scale,
 * so every process given the same three settings computes the same
 * simulated time whenever it started (up to their wall clocks' skew).
 * Without an anchor each process starts at START at its own start-up, as
 * a single process or a benchmark wants.
 *
 * The elapsed part is measured on CLOCK_MONOTONIC so a wall-clock step
 * (NTP) does not make simulated time jump. With scale 1 and no start time
 * (the default, and the state before any init) now is simply
 * CLOCK_REALTIME, so production behaves like plain wall-clock time.
 *
 * The state is plain globals written by rte_clock_init, which must run
 * before other threads start (the skeleton calls rte_clock_init_env first
 * thing); afterwards every function is a lock-free read.
 *
 * rte_clock_init returns -1 for a scale outside (0, 1e6] or a negative
 * start; rte_clock_init_env is fatal (rte_fatal naming the variable and its
 * value) for a bad RTE_CLOCK_SCALE or RTE_CLOCK_START. An empty variable
 * counts as unset. rte_clock_parse accepts RFC 3339 date-times
 * ("2026-01-05T06:00:00Z", fractional seconds truncated to ms, "+01:00" /
 * "-05:00" offsets, 't'/'z' or a space as separators) and plain epoch
 * seconds (digits only); instants before 1970 are rejected (-1).
 *
 * rte_clock_format writes the digits itself from rte_civil_from_days: it
 * runs several times per request, and takes 30 ns where gmtime_r and
 * snprintf took 180 (tests/programs/crypto-bench). It accepts every int64
 * ms, pre-1970 included, and prints the year as "%04d" would ("0001",
 * "-001", "10000"); a short buffer gets the text truncated and
 * NUL-terminated, as snprintf would leave it.
 *
 * It does not model time zones beyond numeric offsets, nor leap seconds
 * (":60" is accepted and folds into the next minute, as timegm does).
 */
#include "rte/clock.h"

#include "rte/log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SCALE 1e6

static double clock_scale = 1.0;
static int scaled;           /* 0: plain CLOCK_REALTIME */
static int64_t start_ms;     /* simulated time at init */
static int64_t mono_init_ns; /* CLOCK_MONOTONIC at init */

static int64_t ts_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t realtime_ms(void)
{
    return ts_ns(CLOCK_REALTIME) / 1000000;
}

/* rte_clock_init - set scale (> 0) and start (ms since epoch, or 0 = now); before threads */
int rte_clock_init(double scale, int64_t start)
{
    return rte_clock_init_anchored(scale, start, 0);
}

/* rte_clock_init_anchored - as rte_clock_init, simulated start at real time anchor; before threads
 */
int rte_clock_init_anchored(double scale, int64_t start, int64_t anchor)
{
    if (!(scale > 0) || scale > MAX_SCALE || start < 0 || anchor < 0)
        return -1;
    mono_init_ns = ts_ns(CLOCK_MONOTONIC);
    int64_t real = realtime_ms();
    clock_scale = scale;
    scaled = !(scale == 1.0 && (start == 0 || start == anchor));
    if (start == 0)
        start = anchor ? anchor : real;
    /* elapsed simulated time since the anchor; a future anchor gives a time before start */
    start_ms = anchor ? start + (int64_t)((double)(real - anchor) * scale) : start;
    return 0;
}

/* rte_clock_init_env - read RTE_CLOCK_SCALE/START/ANCHOR; fatal on bad values */
void rte_clock_init_env(void)
{
    const char *sv = getenv("RTE_CLOCK_SCALE");
    const char *st = getenv("RTE_CLOCK_START");
    const char *an = getenv("RTE_CLOCK_ANCHOR");
    double scale = 1.0;
    int64_t start = 0, anchor = 0;

    if (sv && *sv) {
        char *end;
        errno = 0;
        scale = strtod(sv, &end);
        if (end == sv || *end || errno || !isfinite(scale) || !(scale > 0) || scale > MAX_SCALE)
            rte_fatal("clock: RTE_CLOCK_SCALE='%s': expected a number > 0 and <= 1000000", sv);
    }
    if (st && *st) {
        start = rte_clock_parse(st);
        if (start < 0)
            rte_fatal("clock: RTE_CLOCK_START='%s': expected RFC 3339 UTC time "
                      "(2026-01-05T06:00:00Z) or epoch seconds",
                      st);
    }
    if (an && *an) {
        anchor = rte_clock_parse(an);
        if (anchor <= 0)
            rte_fatal("clock: RTE_CLOCK_ANCHOR='%s': expected the real time (RFC 3339 UTC or "
                      "epoch seconds) at which the simulated clock read RTE_CLOCK_START",
                      an);
    }
    if (rte_clock_init_anchored(scale, start, anchor) < 0)
        rte_fatal("clock: RTE_CLOCK_SCALE='%s' RTE_CLOCK_START='%s' RTE_CLOCK_ANCHOR='%s' rejected",
                  sv ? sv : "", st ? st : "", an ? an : "");
}

/* rte_clock_now_ms - simulated wall-clock time in ms since the Unix epoch; any thread */
int64_t rte_clock_now_ms(void)
{
    if (!scaled)
        return realtime_ms();
    double elapsed_ms = (double)(ts_ns(CLOCK_MONOTONIC) - mono_init_ns) / 1e6;
    return start_ms + (int64_t)(elapsed_ms * clock_scale);
}

/* rte_clock_now_s - simulated wall-clock time in whole seconds; any thread */
int64_t rte_clock_now_s(void)
{
    int64_t ms = rte_clock_now_ms();
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

/* rte_clock_scale - the current scale factor; any thread */
double rte_clock_scale(void)
{
    return clock_scale;
}

/* rte_clock_mono_ms - real monotonic ms (for latencies and timeouts, never scaled) */
int64_t rte_clock_mono_ms(void)
{
    return ts_ns(CLOCK_MONOTONIC) / 1000000;
}

/* rte_clock_sleep_ms - sleep for a simulated duration (real time = ms / scale); any thread */
void rte_clock_sleep_ms(int64_t ms)
{
    struct timespec req, rem;
    double real_ns;

    if (ms <= 0)
        return;
    real_ns = (double)ms / clock_scale * 1e6;
    if (real_ns > 9.2e18)
        real_ns = 9.2e18;
    req.tv_sec = (time_t)(real_ns / 1e9);
    req.tv_nsec = (long)(real_ns - (double)req.tv_sec * 1e9);
    if (req.tv_nsec < 0)
        req.tv_nsec = 0;
    if (req.tv_nsec > 999999999)
        req.tv_nsec = 999999999;
    while (nanosleep(&req, &rem) < 0 && errno == EINTR)
        req = rem;
}

/*
 * rte_clock_real_ms - convert a simulated duration to real milliseconds;
 * positive durations round up so they never become 0 (no busy loops)
 */
int64_t rte_clock_real_ms(int64_t simulated_ms)
{
    double r = (double)simulated_ms / clock_scale;

    if (r >= 9.2e18)
        return INT64_MAX;
    if (r <= -9.2e18)
        return INT64_MIN;
    return r > 0 ? (int64_t)ceil(r) : (int64_t)r;
}

/* Two decimal digits of v (0..99) at p. */
static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* y as printf's "%04d" would print it ("0042", "-001", "12345") at p; returns the length */
static size_t put_year(char *p, int64_t y)
{
    char rev[20];
    uint64_t u = y < 0 ? 0 - (uint64_t)y : (uint64_t)y;
    size_t n = 0, k = 0, width = y < 0 ? 3 : 4;

    if (y < 0)
        p[k++] = '-';
    do {
        rev[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n < width)
        rev[n++] = '0';
    while (n)
        p[k++] = rev[--n];
    return k;
}

/* rte_clock_format - RFC 3339 UTC text ("2026-01-05T06:00:00.000Z") of ms into buf; any thread */
void rte_clock_format(int64_t ms, char *buf, int len)
{
    const int64_t day_ms = 86400000;
    int64_t days = ms / day_ms, in_day = ms % day_ms, y;
    char text[32]; /* at most "-292275055-05-16T16:47:04.192Z" */
    size_t n;
    int mo, d, sec;

    if (!buf || len <= 0)
        return;
    if (in_day < 0) { /* floor division, without overflow at INT64_MIN */
        in_day += day_ms;
        days--;
    }
    rte_civil_from_days(days, &y, &mo, &d);
    sec = (int)(in_day / 1000);
    n = put_year(text, y);
    text[n] = '-';
    put2(text + n + 1, mo);
    text[n + 3] = '-';
    put2(text + n + 4, d);
    text[n + 6] = 'T';
    put2(text + n + 7, sec / 3600);
    text[n + 9] = ':';
    put2(text + n + 10, sec / 60 % 60);
    text[n + 12] = ':';
    put2(text + n + 13, sec % 60);
    text[n + 15] = '.';
    text[n + 16] = (char)('0' + in_day % 1000 / 100);
    put2(text + n + 17, (int)(in_day % 100));
    text[n + 19] = 'Z';
    n += 20;
    if (n > (size_t)len - 1) /* truncate as snprintf does */
        n = (size_t)len - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
}

/* Parse exactly n decimal digits at s into *v. */
static int fixed_digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

static int64_t parse_epoch(const char *s)
{
    int64_t v = 0;

    for (; *s; s++) {
        if (v > (INT64_MAX / 1000 - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v * 1000;
}

/* rte_clock_parse - RFC 3339 (Z or +hh:mm) or epoch seconds to ms; -1 if invalid */
int64_t rte_clock_parse(const char *s)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, ms = 0, sign = 0;
    struct tm tm = {0};
    const char *p;
    time_t t;

    if (!s || !*s)
        return -1;
    if (strspn(s, "0123456789") == strlen(s))
        return parse_epoch(s);

    if (fixed_digits(s, 4, &y) || s[4] != '-' || fixed_digits(s + 5, 2, &mo) || s[7] != '-' ||
        fixed_digits(s + 8, 2, &d) || !strchr("Tt ", s[10]) || s[10] == '\0' ||
        fixed_digits(s + 11, 2, &h) || s[13] != ':' || fixed_digits(s + 14, 2, &mi) ||
        s[16] != ':' || fixed_digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (fixed_digits(p + 1, 2, &oh) || p[3] != ':' || fixed_digits(p + 4, 2, &om) || oh > 23 ||
            om > 59)
            return -1;
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;

    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm); /* a 4-digit year cannot overflow a 64-bit time_t */
    int64_t r = (int64_t)t * 1000 + ms - (int64_t)sign * (oh * 3600 + om * 60) * 1000;
    return r < 0 ? -1 : r;
}

/* rte_days_from_civil - pure; any thread */
int64_t rte_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* rte_civil_from_days - pure; any thread */
void rte_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* rte_clock_cond_init - any thread */
int rte_clock_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc;

    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &ca) == 0 ? 0 : -1;
    pthread_condattr_destroy(&ca);
    return rc;
}

/* rte_clock_mono_timespec - pure; any thread */
struct timespec rte_clock_mono_timespec(int64_t mono_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(mono_ms / 1000),
                          .tv_nsec = (long)(mono_ms % 1000) * 1000000L};
    return ts;
}
