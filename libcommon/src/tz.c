/*
 * tz.c - TZif reader (RFC 8536) with the POSIX TZ footer rule.
 *
 * A zone file holds a table of transitions (instant -> local time type) and,
 * from version 2 on, a footer such as "EST5EDT,M3.2.0,M11.1.0" that gives
 * the rule for instants after the last transition. We keep the 64-bit table
 * (the v1 32-bit block is skipped when a v2 block follows) and parse the
 * footer into std/dst offsets and two yearly rule dates.
 *
 * Lookups binary-search the table; past its end the footer rule is
 * evaluated for the year at hand. Leap-second records are ignored (the
 * "right/" zones are not supported; cron time is POSIX time).
 */
#include "rte/tz.h"

#include "rte/clock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DIR "/usr/share/zoneinfo"
#define MAX_FILE (1 << 20)

enum rule_kind { RULE_MONTH_WEEK_DAY, RULE_JULIAN_NOLEAP, RULE_JULIAN_ZERO };

typedef struct rule_date {
    int kind;
    int month, week, wday; /* M form */
    int day;               /* J (1..365) or zero-based (0..365) form */
    int32_t secs;          /* local time of day of the change, may be <0 or >24h */
} rule_date;

typedef struct posix_rule {
    int present;
    int has_dst;
    int32_t std_off, dst_off; /* UTC offsets (east positive) */
    rule_date start, end;     /* start of DST (in std time), end (in dst time) */
} posix_rule;

struct rte_tz {
    char name[128];
    int64_t *trans; /* ascending transition instants */
    int32_t *off;   /* offset after each transition */
    size_t ntrans;
    int32_t initial; /* offset before the first transition */
    posix_rule rule;
};

/* civil calendar math: rte_days_from_civil / rte_civil_from_days (clock.h) */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* local (as-if-UTC) seconds at which rule date r happens in year y */
static int64_t rule_local(const rule_date *r, int64_t y)
{
    int64_t day;
    if (r->kind == RULE_JULIAN_NOLEAP) {
        day = rte_days_from_civil(y, 1, 1) + r->day - 1;
        if (is_leap(y) && r->day >= 60)
            day++;
    } else if (r->kind == RULE_JULIAN_ZERO) {
        day = rte_days_from_civil(y, 1, 1) + r->day;
    } else {
        int64_t first = rte_days_from_civil(y, r->month, 1);
        int wd_first = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
        int delta = (r->wday - wd_first + 7) % 7;
        int dom = 1 + delta + (r->week - 1) * 7;
        while (dom > days_in_month(y, r->month))
            dom -= 7;
        day = first + dom - 1;
    }
    return day * 86400 + r->secs;
}

/* UTC instants of DST start and end in year y */
static void rule_year(const posix_rule *p, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_local(&p->start, y) - p->std_off;
    *end = rule_local(&p->end, y) - p->dst_off;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;
    rte_civil_from_days(floor_div(t, 86400), &y, &m, &d);
    return y;
}

static int32_t rule_offset(const posix_rule *p, int64_t t)
{
    if (!p->has_dst)
        return p->std_off;
    int64_t s, e;
    rule_year(p, year_of(t + p->std_off), &s, &e);
    int in_dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return in_dst ? p->dst_off : p->std_off;
}

/* --- POSIX TZ string ---------------------------------------------------- */

static int parse_name(const char **sp)
{
    const char *s = *sp;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e)
            return -1;
        *sp = e + 1;
        return 0;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - b < 3)
        return -1;
    *sp = s;
    return 0;
}

/* [+-]hh[:mm[:ss]] into seconds */
static int parse_hms(const char **sp, int32_t *out, int max_hours)
{
    const char *s = *sp;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (*s < '0' || *s > '9')
        return -1;
    long v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        char *end;
        v[i] = strtol(s, &end, 10);
        if (end == s)
            return -1;
        s = end;
    }
    if (v[0] > max_hours || v[1] > 59 || v[2] > 59)
        return -1;
    *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
    *sp = s;
    return 0;
}

static int parse_rule_date(const char **sp, rule_date *r)
{
    const char *s = *sp;
    char *end;
    memset(r, 0, sizeof *r);
    r->secs = 7200;
    if (*s == 'M') {
        r->kind = RULE_MONTH_WEEK_DAY;
        r->month = (int)strtol(s + 1, &end, 10);
        if (*end != '.')
            return -1;
        r->week = (int)strtol(end + 1, &end, 10);
        if (*end != '.')
            return -1;
        r->wday = (int)strtol(end + 1, &end, 10);
        if (r->month < 1 || r->month > 12 || r->week < 1 || r->week > 5 || r->wday < 0 ||
            r->wday > 6)
            return -1;
    } else if (*s == 'J') {
        r->kind = RULE_JULIAN_NOLEAP;
        r->day = (int)strtol(s + 1, &end, 10);
        if (end == s + 1 || r->day < 1 || r->day > 365)
            return -1;
    } else if (*s >= '0' && *s <= '9') {
        r->kind = RULE_JULIAN_ZERO;
        r->day = (int)strtol(s, &end, 10);
        if (r->day > 365)
            return -1;
    } else {
        return -1;
    }
    s = end;
    if (*s == '/') {
        s++;
        if (parse_hms(&s, &r->secs, 167) < 0)
            return -1;
    }
    *sp = s;
    return 0;
}

/* "STDoff[DST[off][,start[/time],end[/time]]]"; POSIX offsets are west-positive */
static int parse_posix(const char *s, posix_rule *p)
{
    int32_t off;
    memset(p, 0, sizeof *p);
    if (parse_name(&s) < 0 || parse_hms(&s, &off, 24) < 0)
        return -1;
    p->std_off = -off;
    p->present = 1;
    if (*s == '\0')
        return 0;
    if (parse_name(&s) < 0)
        return -1;
    p->has_dst = 1;
    p->dst_off = p->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (parse_hms(&s, &off, 24) < 0)
            return -1;
        p->dst_off = -off;
    }
    if (*s == '\0') /* no rule: POSIX leaves it implementation-defined; use US rules */
        s = ",M3.2.0,M11.1.0";
    if (*s++ != ',' || parse_rule_date(&s, &p->start) < 0 || *s++ != ',' ||
        parse_rule_date(&s, &p->end) < 0 || *s != '\0')
        return -1;
    return 0;
}

/* --- TZif ----------------------------------------------------------------- */

typedef struct hdr {
    int version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} hdr;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int read_hdr(const unsigned char *p, size_t n, hdr *h)
{
    if (n < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    h->version = p[4] == 0 ? 1 : p[4] - '0';
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->typecnt == 0 || h->typecnt > 256 || h->timecnt > 100000)
        return -1;
    return 0;
}

static size_t block_len(const hdr *h, int tsize)
{
    return (size_t)h->timecnt * (size_t)tsize + h->timecnt + h->typecnt * 6u + h->charcnt +
           h->leapcnt * (size_t)(tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int parse_tzif(rte_tz *tz, const unsigned char *buf, size_t n, char *why, size_t whylen)
{
    hdr h;
    int tsize = 4;
    const unsigned char *p = buf;

    if (read_hdr(p, n, &h) < 0) {
        snprintf(why, whylen, "not a TZif file");
        return -1;
    }
    if (h.version >= 2) {
        size_t skip = 44 + block_len(&h, 4);
        if (skip > n || read_hdr(p + skip, n - skip, &h) < 0) {
            snprintf(why, whylen, "truncated TZif file");
            return -1;
        }
        p += skip;
        tsize = 8;
    }
    size_t avail = n - (size_t)(p - buf);
    if (44 + block_len(&h, tsize) > avail) {
        snprintf(why, whylen, "truncated TZif file");
        return -1;
    }
    const unsigned char *t = p + 44;
    const unsigned char *idx = t + (size_t)h.timecnt * (size_t)tsize;
    const unsigned char *types = idx + h.timecnt;
    /* RFC 8536 3.2: utoff MUST NOT be -2^31 and SHOULD lie in -89999..93599 */
    for (uint32_t i = 0; i < h.typecnt; i++) {
        int32_t utoff = (int32_t)be32(types + 6 * i);
        if (utoff < -89999 || utoff > 93599) {
            snprintf(why, whylen, "local time type %u: UTC offset %d s is outside -89999..93599", i,
                     utoff);
            return -1;
        }
    }
    tz->ntrans = h.timecnt;
    tz->trans = calloc(h.timecnt + 1, sizeof *tz->trans);
    tz->off = calloc(h.timecnt + 1, sizeof *tz->off);
    if (!tz->trans || !tz->off) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < h.timecnt; i++) {
        tz->trans[i] = tsize == 8 ? be64(t + 8 * i) : (int32_t)be32(t + 4 * i);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) { /* RFC 8536 3.2: MUST ascend */
            snprintf(why, whylen, "transition %u is not later than the one before", i);
            return -1;
        }
        if (idx[i] >= h.typecnt) {
            snprintf(why, whylen, "transition %u names an unknown local time type", i);
            return -1;
        }
        tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
    }
    tz->initial = (int32_t)be32(types);
    if (h.version >= 2) {
        const unsigned char *f = p + 44 + block_len(&h, tsize);
        const unsigned char *end = buf + n;
        if (f < end && *f == '\n') {
            const unsigned char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
            size_t len = nl ? (size_t)(nl - f - 1) : 0;
            char rule[256];
            if (len > 0 && len < sizeof rule) {
                memcpy(rule, f + 1, len);
                rule[len] = '\0';
                if (parse_posix(rule, &tz->rule) < 0) {
                    snprintf(why, whylen, "footer TZ rule '%.64s' is not understood", rule);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static int name_ok(const char *name)
{
    if (!name || !*name || name[0] == '/' || strstr(name, "..") || strlen(name) >= 128)
        return 0;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("/_+-", *s)))
            return 0;
    return 1;
}

/* rte_tz_load - any thread; reads one file */
rte_tz *rte_tz_load(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[512], why[160];
    unsigned char *buf = NULL;
    FILE *f = NULL;
    rte_tz *tz = NULL;
    int ok = 0;

    if (!name_ok(name)) {
        snprintf(err, errlen, "time zone '%s': not a valid IANA zone name", name ? name : "");
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", dir ? dir : DEFAULT_DIR, name);
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "time zone '%s': unknown zone (%s: %s)", name, path, strerror(errno));
        return NULL;
    }
    buf = malloc(MAX_FILE);
    tz = calloc(1, sizeof *tz);
    if (!buf || !tz) {
        snprintf(err, errlen, "time zone '%s': out of memory", name);
        goto out;
    }
    size_t n = fread(buf, 1, MAX_FILE, f);
    snprintf(tz->name, sizeof tz->name, "%s", name);
    if (parse_tzif(tz, buf, n, why, sizeof why) < 0) {
        snprintf(err, errlen, "time zone '%s': %s (%s)", name, why, path);
        goto out;
    }
    ok = 1;
out:
    if (f)
        fclose(f);
    free(buf);
    if (!ok) {
        rte_tz_free(tz);
        return NULL;
    }
    return tz;
}

/* rte_tz_free - the owner */
void rte_tz_free(rte_tz *tz)
{
    if (!tz)
        return;
    free(tz->trans);
    free(tz->off);
    free(tz);
}

/* rte_tz_name - any thread */
const char *rte_tz_name(const rte_tz *tz)
{
    return tz->name;
}

/* index of the last transition <= t, or -1 */
static long last_at_or_before(const rte_tz *tz, int64_t t)
{
    long lo = 0, hi = (long)tz->ntrans - 1, ans = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

/* rte_tz_offset - any thread */
int32_t rte_tz_offset(const rte_tz *tz, int64_t t)
{
    long i = last_at_or_before(tz, t);
    if (i < 0)
        return tz->ntrans > 0 || !tz->rule.present ? tz->initial : rule_offset(&tz->rule, t);
    if ((size_t)i == tz->ntrans - 1 && tz->rule.present)
        return rule_offset(&tz->rule, t);
    return tz->off[i];
}

/* rte_tz_next_transition - any thread */
int64_t rte_tz_next_transition(const rte_tz *tz, int64_t t)
{
    long i = last_at_or_before(tz, t);
    int32_t cur = rte_tz_offset(tz, t);
    for (size_t j = (size_t)(i + 1); j < tz->ntrans; j++)
        if (rte_tz_offset(tz, tz->trans[j]) != cur)
            return tz->trans[j];
    if (!tz->rule.present || !tz->rule.has_dst)
        return INT64_MAX;
    int64_t best = INT64_MAX;
    int64_t y = year_of(t);
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t s, e;
        rule_year(&tz->rule, yy, &s, &e);
        if (s > t && s < best && rte_tz_offset(tz, s) != rte_tz_offset(tz, s - 1))
            best = s;
        if (e > t && e < best && rte_tz_offset(tz, e) != rte_tz_offset(tz, e - 1))
            best = e;
    }
    return best;
}

/* rte_tz_resolve - any thread */
int rte_tz_resolve(const rte_tz *tz, int64_t local, int64_t out[2])
{
    /* every offset in force within ±26 h of the instant: real zones stay within ±14 h */
    int32_t offs[8] = {0};
    int noffs = 0;
    int64_t t = local - 26 * 3600, stop = local + 26 * 3600;
    while (t <= stop && noffs < 8) {
        int32_t o = rte_tz_offset(tz, t);
        int seen = 0;
        for (int i = 0; i < noffs; i++)
            seen |= offs[i] == o;
        if (!seen)
            offs[noffs++] = o;
        t = rte_tz_next_transition(tz, t);
    }
    int n = 0;
    for (int i = 0; i < noffs; i++) {
        int64_t u = local - offs[i];
        if (rte_tz_offset(tz, u) != offs[i])
            continue;
        if (n == 2)
            break;
        out[n++] = u;
    }
    if (n == 2 && out[0] > out[1]) {
        int64_t x = out[0];
        out[0] = out[1];
        out[1] = x;
    }
    return n;
}
