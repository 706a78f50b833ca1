/*
 * cron.c - cron parsing and next-fire search on a zone's wall clock.
 *
 * The search walks matching local (wall-clock) minutes with the usual
 * field-by-field skipping (wrong month -> next month, wrong day -> next
 * day, ...), then maps each local time to instants with rte_tz_resolve.
 * Because a repeated hour makes local time run backwards, the walk starts
 * a few hours before the local time of `after` and keeps the smallest
 * instant after `after`, stopping once later local times cannot beat it.
 */
#include "rte/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rte/clock.h"

#define WINDOW (3 * 3600) /* largest DST shift we allow for, with margin */
#define HORIZON_DAYS (50 * 366)

typedef struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* index 0 = lo */
} field;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const field FIELDS[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, dow_names},
};

static int parse_value(const field *f, const char **sp, int *out, char *err, size_t errlen)
{
    const char *s = *sp;
    if (isdigit((unsigned char)*s)) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end - s > 4 || v < f->lo || v > f->hi) {
            snprintf(err, errlen, "%s: %.*s is out of range %d-%d", f->name, (int)(end - s), s,
                     f->lo, f->hi);
            return -1;
        }
        *out = (int)v;
        *sp = end;
        return 0;
    }
    if (f->names && isalpha((unsigned char)*s)) {
        for (int i = 0; f->names[i]; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
                *out = f->lo + i;
                *sp = s + 3;
                return 0;
            }
        }
    }
    int n = 0;
    while (s[n] && s[n] != ',' && s[n] != '-' && s[n] != '/' && n < 16)
        n++;
    snprintf(err, errlen, "%s: '%.*s' is not a %s", f->name, n, s,
             f->names ? "number or name" : "number");
    return -1;
}

/*
 * one comma-separated element: *, N, N-M, each with optional /step. Every
 * field runs lo..hi with its own numbers; the weekday field runs 0..7, both
 * ends Sunday (bit 0), so "*" + "/2", "N/step" (N through 7) and "a-b/step"
 * step through Sunday-as-7 like the other values: 5/1 is Fri, Sat, Sun and
 * 7/2 is Sunday. A weekday range ending in Sunday may write it 0 (or sun):
 * fri-sun is 5-7.
 */
static int parse_elem(const field *f, const char **sp, uint64_t *bits, int *star, char *err,
                      size_t errlen)
{
    const char *s = *sp;
    int lo, hi, step = 1;
    int weekday = f->hi == 7;

    if (*s == '*') {
        lo = f->lo;
        hi = f->hi;
        s++;
        *star = 1;
    } else {
        if (parse_value(f, &s, &lo, err, errlen) < 0)
            return -1;
        hi = lo;
        if (*s == '-') {
            s++;
            if (parse_value(f, &s, &hi, err, errlen) < 0)
                return -1;
            if (weekday && hi == 0 && lo > 0)
                hi = 7;
            if (hi < lo) {
                snprintf(err, errlen, "%s: range %d-%d runs backwards", f->name, lo, hi);
                return -1;
            }
        } else if (*s == '/') {
            hi = f->hi; /* N/step = N through the end */
        }
    }
    if (*s == '/') {
        char *end;
        s++;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > f->hi + 1) {
            snprintf(err, errlen, "%s: step '%.*s' must be a number in 1-%d", f->name,
                     (int)strcspn(s, ","), s, f->hi + 1);
            return -1;
        }
        step = (int)v;
        s = end;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << (weekday && v == 7 ? 0 : v);
    *sp = s;
    return 0;
}

static int parse_field(const field *f, const char *text, uint64_t *bits, int *star, char *err,
                       size_t errlen)
{
    const char *s = text;
    *bits = 0;
    *star = 0;
    int first_star = *s == '*';
    for (;;) {
        int st = 0;
        if (parse_elem(f, &s, bits, &st, err, errlen) < 0)
            return -1;
        if (*s == '\0')
            break;
        if (*s != ',') {
            snprintf(err, errlen, "%s: unexpected '%c' in '%s'", f->name, *s, text);
            return -1;
        }
        s++;
    }
    *star = first_star;
    return 0;
}

static const char *macro(const char *s)
{
    static const char *const m[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcasecmp(s, m[i][0]) == 0)
            return m[i][1];
    return NULL;
}

/* can (dom, month) ever meet? only matters when dom restricts and dow does not */
static int possible(const rte_cron *e)
{
    static const int maxd[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (e->dom_star || !e->dow_star)
        return 1;
    for (int m = 1; m <= 12; m++)
        if (e->month & (1u << m))
            for (int d = 1; d <= maxd[m - 1]; d++)
                if (e->dom & (1u << d))
                    return 1;
    return 0;
}

/* rte_cron_parse - any thread */
int rte_cron_parse(const char *text, rte_cron *out, char *err, size_t errlen)
{
    char buf[256], *parts[6];
    int n = 0;

    memset(out, 0, sizeof *out);
    while (text && isspace((unsigned char)*text))
        text++;
    if (!text || !*text) {
        snprintf(err, errlen, "empty cron expression");
        return -1;
    }
    if (text[0] == '@') {
        char word[32];
        size_t len = strcspn(text, " \t");
        snprintf(word, sizeof word, "%.*s", (int)(len < 31 ? len : 31), text);
        const char *m = macro(word);
        if (!m || text[len + strspn(text + len, " \t")] != '\0') {
            snprintf(err, errlen,
                     "unknown macro '%s' (use @yearly, @annually, @monthly, @weekly, @daily, "
                     "@midnight or @hourly)",
                     word);
            return -1;
        }
        text = m;
    }
    if (strlen(text) >= sizeof buf) {
        snprintf(err, errlen, "cron expression is too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n == 5) {
            n++;
            break;
        }
        parts[n++] = tok;
    }
    if (n != 5) {
        snprintf(err, errlen,
                 "expected 5 fields (minute hour day-of-month month day-of-week), got %s%d",
                 n > 5 ? "more than " : "", n > 5 ? 5 : n);
        return -1;
    }
    uint64_t bits[5];
    int star[5];
    for (int i = 0; i < 5; i++)
        if (parse_field(&FIELDS[i], parts[i], &bits[i], &star[i], err, errlen) < 0)
            return -1;
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint32_t)bits[3];
    out->dow = (uint32_t)bits[4];
    out->hour_star = star[1];
    out->dom_star = star[2];
    out->dow_star = star[4];
    if (!possible(out)) {
        snprintf(err, errlen, "day-of-month '%s' never occurs in month '%s'", parts[2], parts[3]);
        return -1;
    }
    return 0;
}

static int day_matches(const rte_cron *e, int64_t days, int d)
{
    int wd = (int)((days % 7 + 11) % 7);
    int dom_ok = (e->dom >> d) & 1, dow_ok = (e->dow >> wd) & 1;
    if (e->dom_star || e->dow_star)
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* the first local minute >= t (local seconds) that matches, or INT64_MAX past limit */
static int64_t next_local(const rte_cron *e, int64_t t, int64_t limit)
{
    t = floor_div(t + 59, 60) * 60;
    while (t <= limit) {
        int64_t days = floor_div(t, 86400), y;
        int m, d;
        int sod = (int)(t - days * 86400);
        rte_civil_from_days(days, &y, &m, &d);
        if (!((e->month >> m) & 1)) {
            t = rte_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
            continue;
        }
        if (!day_matches(e, days, d)) {
            t = (days + 1) * 86400;
            continue;
        }
        int h = sod / 3600, mi = sod / 60 % 60;
        if (!((e->hour >> h) & 1)) {
            t = days * 86400 + (h + 1) * 3600;
            continue;
        }
        if (!((e->minute >> mi) & 1)) {
            t += 60;
            continue;
        }
        return t;
    }
    return INT64_MAX;
}

/* the transition that skips local time t (the instant the gap ends), or -1 */
static int64_t gap_end(const rte_tz *tz, int64_t t)
{
    for (int64_t s = rte_tz_next_transition(tz, t - 30 * 3600); s <= t + 30 * 3600;
         s = rte_tz_next_transition(tz, s)) {
        int32_t before = rte_tz_offset(tz, s - 1), after = rte_tz_offset(tz, s);
        if (after > before && s + before <= t && t < s + after)
            return s;
    }
    return -1;
}

/* rte_cron_next - any thread */
int64_t rte_cron_next(const rte_cron *e, const rte_tz *tz, int64_t after)
{
    int64_t start = after + rte_tz_offset(tz, after) - WINDOW;
    int64_t limit = start + (int64_t)HORIZON_DAYS * 86400;
    int64_t best = INT64_MAX, best_local = 0;

    for (int64_t t = next_local(e, start, limit); t != INT64_MAX;
         t = next_local(e, t + 60, limit)) {
        if (best != INT64_MAX && t > best_local + WINDOW)
            break;
        int64_t u[2];
        int n = rte_tz_resolve(tz, t, u);
        int64_t cand[2];
        int nc = 0;
        if (n == 1) {
            cand[nc++] = u[0];
        } else if (n == 2) {
            cand[nc++] = u[0];
            if (e->hour_star)
                cand[nc++] = u[1];
        } else if (!e->hour_star) {
            /* a skipped local time fires at the end of the gap */
            int64_t g = gap_end(tz, t);
            if (g >= 0)
                cand[nc++] = g;
        }
        for (int i = 0; i < nc; i++) {
            if (cand[i] > after && cand[i] < best) {
                best = cand[i];
                best_local = t;
            }
        }
    }
    return best == INT64_MAX ? -1 : best;
}
