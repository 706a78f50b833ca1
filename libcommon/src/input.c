/*
 * input.c - the one definition of valid outside input (contract in
 * rte/input.h, policy in docs/input.md).
 *
 * Why a JSON validator of our own in front of cJSON: cJSON is lenient where
 * a second reader is strict, and the difference is exploitable. It keeps
 * both members of {"a":1,"a":2} (lookups find the first; Python's json and
 * Redis's cjson keep the last), cuts a string at an escaped \u0000 (so
 * "M1\u0000X" keys the cache as member "M1"), copies invalid UTF-8 through
 * (Kafka envelopes that no other reader can parse), turns lone surrogate
 * escapes into garbage bytes, accepts leading zeros and any byte <= 0x20
 * as whitespace, and nests 1000 deep. rte_input_json walks the bytes once
 * and refuses all of that before cJSON builds its tree, so what cJSON then
 * reads is what any conforming parser reads.
 *
 * The walk is a loop over an explicit stack of open containers (no
 * recursion, so depth costs no C stack), tracking for error messages the
 * current key or index of each container. Strings are skipped 8 bytes at a
 * time while they hold plain ASCII (the common case for ids and names);
 * other bytes are classified one by one with the UTF-8 table of RFC 3629
 * section 4. Keys of each open object stay on a key stack: the first
 * LINEAR_KEYS keys of an object are compared (hash first) as they arrive,
 * and an object with more is checked when it closes through a hash table
 * of its keys (linear; a member directory line has ~150 keys), falling
 * back to a sort when keys crafted to share a hash make the probes run
 * long, so a 100,000-key object costs at most n log n, never n^2. Keys without escapes are
 * compared in place; keys with escapes are decoded into a scratch buffer
 * first ("a" and "\u0061" are the same key). Nothing is allocated for a
 * document whose open objects hold at most 64 keys together and no escaped
 * keys.
 *
 * Does not: build a tree (cJSON does), check what any value means (callers
 * do, with rte_input_id and friends), or repair anything.
 */
#include "rte/input.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"

#define LINEAR_KEYS 32 /* keys of one object compared as they arrive */
#define INLINE_KEYS 64 /* key stack entries before it moves to the heap */
#define PATH_MAX_TEXT 200
#define PATH_KEY_QUOTE 32

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, const char *field,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (err == NULL || errlen == 0)
        return -1;
    if (field != NULL) {
        n = snprintf(err, errlen, "%s: ", field);
        if (n < 0 || (size_t)n >= errlen)
            return -1;
    }
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* rte_input_quote - pure */
void rte_input_quote(const char *s, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;

    if (outlen == 0)
        return;
    for (i = 0; i < len && i < RTE_INPUT_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 4 >= outlen)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (i < len && o + 3 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/*
 * The well-formed sequence at p (p[0] >= 0x80), avail bytes available:
 * its length with *cp its code point, or 0. RFC 3629's table: the second
 * byte's range excludes overlong forms (E0, F0), surrogates (ED) and code
 * points above U+10FFFF (F4); C0, C1 and F5..FF never start one.
 */
static size_t utf8_seq(const unsigned char *p, size_t avail, uint32_t *cp)
{
    unsigned c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    *cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3f);
    }
    return n;
}

/* rte_input_utf8_char - pure */
size_t rte_input_utf8_char(const char *s, size_t avail)
{
    uint32_t cp;

    return avail > 0 ? utf8_seq((const unsigned char *)s, avail, &cp) : 0;
}

/* rte_input_utf8 - pure */
int rte_input_utf8(const char *s, size_t len, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp;

    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(u + i, len - i, &cp);
        if (n == 0) {
            if (bad != NULL)
                *bad = i;
            return 0;
        }
        i += n;
    }
    return 1;
}

/* ---- ids ------------------------------------------------------------------- */

/* what is wrong with code point cp in an id, or NULL */
static const char *id_forbidden(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
        return "control character";
    if (cp == 0x2028 || cp == 0x2029)
        return "line separator";
    if ((cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff)
        return "invisible format character";
    return NULL;
}

/* rte_input_id - pure */
int rte_input_id(const char *s, size_t len, size_t maxlen, const char *field, char *err,
                 size_t errlen)
{
    const unsigned char *u = (const unsigned char *)s;

    if (s == NULL || len == 0)
        return fail(err, errlen, field, "must not be empty");
    if (maxlen > 0 && len > maxlen)
        return fail(err, errlen, field, "longer than %zu bytes", maxlen);
    for (size_t i = 0; i < len;) {
        uint32_t cp = u[i];
        size_t n = 1;
        if (cp >= 0x80) {
            n = utf8_seq(u + i, len - i, &cp);
            if (n == 0)
                return fail(err, errlen, field, "invalid UTF-8 at byte %zu", i);
        }
        const char *why = id_forbidden(cp);
        if (why != NULL)
            return fail(err, errlen, field, "%s U+%04X at byte %zu is not allowed", why,
                        (unsigned)cp, i);
        i += n;
    }
    if (u[0] == ' ' || u[len - 1] == ' ')
        return fail(err, errlen, field, "leading or trailing space is not allowed");
    return 0;
}

/* ---- dates and times ----------------------------------------------------- */

/* exactly n ASCII digits at s into *out; 1, or 0 */
static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* y-m-d is a day of the Gregorian calendar; 0, or -1 + err */
static int check_ymd(int y, int m, int d, const char *field, char *err, size_t errlen)
{
    if (m < 1 || m > 12)
        return fail(err, errlen, field, "not a calendar date (month %02d)", m);
    if (d < 1 || d > month_days(y, m))
        return fail(err, errlen, field, "not a calendar date (%04d-%02d has no day %02d)", y, m, d);
    return 0;
}

/* rte_input_date - pure */
int rte_input_date(const char *s, size_t len, int formats, int64_t *days, const char *field,
                   char *err, size_t errlen)
{
    int y = 0, m = 0, d = 0, ok = 0;

    if (s != NULL && (formats & RTE_INPUT_DATE_ISO) && len == 10)
        ok = digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &m) && s[7] == '-' &&
             digits(s + 8, 2, &d);
    else if (s != NULL && (formats & RTE_INPUT_DATE_BASIC) && len == 8)
        ok = digits(s, 4, &y) && digits(s + 4, 2, &m) && digits(s + 6, 2, &d);
    if (!ok)
        return fail(err, errlen, field, "expected %s",
                    formats == RTE_INPUT_DATE_ISO     ? "YYYY-MM-DD"
                    : formats == RTE_INPUT_DATE_BASIC ? "YYYYMMDD"
                                                      : "YYYY-MM-DD or YYYYMMDD");
    if (check_ymd(y, m, d, field, err, errlen) != 0)
        return -1;
    if (days != NULL)
        *days = rte_days_from_civil(y, m, d);
    return 0;
}

#define RFC3339_SHAPE "expected an RFC 3339 date-time such as 2026-01-05T06:00:00Z"

/* rte_input_timestamp - pure */
int rte_input_timestamp(const char *s, size_t len, int64_t *ms, const char *field, char *err,
                        size_t errlen)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0, sign = 0;
    size_t p = 19;

    if (s == NULL || len < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return fail(err, errlen, field, RFC3339_SHAPE);
    if (check_ymd(y, mo, d, field, err, errlen) != 0)
        return -1;
    if (h > 23 || mi > 59 || sec > 60)
        return fail(err, errlen, field, "not a time of day (%02d:%02d:%02d)", h, mi, sec);
    if (sec == 60 && mi != 59)
        return fail(err, errlen, field, "second 60 is a leap second only in minute 59");
    if (p < len && s[p] == '.') {
        size_t n = 0;
        for (p++; p < len && s[p] >= '0' && s[p] <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (s[p] - '0');
        if (n == 0)
            return fail(err, errlen, field, "expected digits after the '.' of the seconds");
        for (; n < 3; n++)
            frac *= 10;
    }
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        sign = s[p] == '+' ? 1 : -1;
        if (len - p < 6 || !digits(s + p + 1, 2, &oh) || s[p + 3] != ':' ||
            !digits(s + p + 4, 2, &om))
            return fail(err, errlen, field, "expected a time offset Z or +hh:mm / -hh:mm");
        if (oh > 23 || om > 59)
            return fail(err, errlen, field, "not a time offset (%02d:%02d)", oh, om);
        p += 6;
    } else {
        return fail(err, errlen, field, "expected a time offset Z or +hh:mm / -hh:mm");
    }
    if (p != len)
        return fail(err, errlen, field, RFC3339_SHAPE " (text after the offset)");
    if (ms != NULL)
        *ms = rte_days_from_civil(y, mo, d) * 86400000LL +
              (((int64_t)h * 60 + mi) * 60 + sec) * 1000 + frac -
              (int64_t)sign * (oh * 60 + om) * 60000;
    return 0;
}

/* ---- strict JSON ---------------------------------------------------------- */

/* one key of an open object, decoded: bytes in the input, or in the scratch at off */
struct key {
    const char *p; /* NULL while the bytes are in the scratch (which may move) */
    size_t off, len;
    uint32_t hash;
};

/* one open container */
struct frame {
    int obj;         /* 1 object, 0 array */
    size_t n;        /* object: keys so far; array: index of the current element */
    size_t keys;     /* object: where its keys start on the key stack */
    uint64_t seen;   /* object: bit (hash % 64) of each key so far, to skip most comparisons */
    const char *key; /* object: the current key as written (for paths) */
    size_t keylen;
};

struct scan {
    const unsigned char *b, *p, *end;
    struct frame *f;
    int depth, max_depth;
    struct key *keys, *keys0; /* keys0: the inline storage keys start in */
    size_t nkeys, capkeys;
    char *scratch;
    size_t nscratch, capscratch;
    char *err;
    size_t errlen;
};

/* where an error is, for its message */
enum where { AT_CONTAINER, AT_STRING, AT_KEY };

/* the path of the value at frame depth `upto` (frames below it name the steps) into buf */
static void path_text(const struct scan *s, int upto, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (int i = 0; i < upto && o + 1 < len; i++) {
        const struct frame *f = &s->f[i];
        int n;
        if (f->obj) {
            char q[PATH_KEY_QUOTE * 4 + 8];
            rte_input_quote(f->key, f->keylen < PATH_KEY_QUOTE ? f->keylen : PATH_KEY_QUOTE, q,
                            sizeof q);
            n = snprintf(buf + o, len - o, "%s%s%s", o > 0 ? "." : "", q,
                         f->keylen > PATH_KEY_QUOTE ? "..." : "");
        } else {
            n = snprintf(buf + o, len - o, "[%zu]", f->n);
        }
        if (n < 0)
            break;
        o += (size_t)n;
        if (o >= len)
            o = len - 1;
    }
}

/* " in a string at 'a.b'" and the like, for the error at s->depth */
static void where_text(const struct scan *s, enum where w, char *buf, size_t len)
{
    char path[PATH_MAX_TEXT];

    if (w == AT_STRING) {
        path_text(s, s->depth, path, sizeof path);
        if (path[0])
            snprintf(buf, len, " in a string at '%s'", path);
        else
            snprintf(buf, len, " in the top-level string");
    } else if (w == AT_KEY) {
        path_text(s, s->depth - 1, path, sizeof path);
        if (path[0])
            snprintf(buf, len, " in a key of the object at '%s'", path);
        else
            snprintf(buf, len, " in a key of the top-level object");
    } else {
        path_text(s, s->depth > 0 ? s->depth - 1 : 0, path, sizeof path);
        if (path[0])
            snprintf(buf, len, " (in '%s')", path);
        else
            buf[0] = '\0';
    }
}

static size_t at(const struct scan *s)
{
    return (size_t)(s->p - s->b);
}

/* a grammar error at the current byte */
static int bad_json(struct scan *s, const char *what)
{
    char where[PATH_MAX_TEXT + 40];

    where_text(s, AT_CONTAINER, where, sizeof where);
    return fail(s->err, s->errlen, NULL, "invalid JSON at byte %zu: %s%s", at(s), what, where);
}

/*
 * an error inside a string or key: the formatted problem, where it is
 * (" in a string at 'a.b'"), then tail; kept out of line so the scanning
 * functions carry no message buffers
 */
__attribute__((noinline, cold, format(printf, 4, 5))) static int
fail_in(struct scan *s, enum where w, const char *tail, const char *fmt, ...)
{
    char where[PATH_MAX_TEXT + 40];
    va_list ap;
    size_t n;

    if (s->err == NULL || s->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(s->err, s->errlen, fmt, ap);
    va_end(ap);
    where_text(s, w, where, sizeof where);
    n = strlen(s->err);
    snprintf(s->err + n, s->errlen - n, "%s%s", where, tail);
    return -1;
}

static inline void skip_ws(struct scan *s)
{
    while (s->p < s->end && *s->p <= ' ' &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* 1 when none of the 8 bytes in v is a control character, '"', '\\' or above 0x7f */
static int word_plain(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
    uint64_t t =
        ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash) | v;

    return (t & highs) == 0;
}

/* 1 for a byte that may stand for itself in a string and is ASCII (a table: one load a byte) */
static const unsigned char plain_ascii[256] = {
    ['\x20'] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1,    ['\''] = 1, ['('] = 1,
    [')'] = 1,    ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1,    ['/'] = 1,  ['0'] = 1,
    ['1'] = 1,    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,    ['7'] = 1,  ['8'] = 1,
    ['9'] = 1,    [':'] = 1, [';'] = 1, ['<'] = 1, ['='] = 1, ['>'] = 1,    ['?'] = 1,  ['@'] = 1,
    ['A'] = 1,    ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,    ['G'] = 1,  ['H'] = 1,
    ['I'] = 1,    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,    ['O'] = 1,  ['P'] = 1,
    ['Q'] = 1,    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,    ['W'] = 1,  ['X'] = 1,
    ['Y'] = 1,    ['Z'] = 1, ['['] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1,    ['`'] = 1,  ['a'] = 1,
    ['b'] = 1,    ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,    ['h'] = 1,  ['i'] = 1,
    ['j'] = 1,    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,    ['p'] = 1,  ['q'] = 1,
    ['r'] = 1,    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1,    ['x'] = 1,  ['y'] = 1,
    ['z'] = 1,    ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1, ['\x7f'] = 1,
};

static int hex4(const unsigned char *p, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* s->p just past a backslash: the escape is valid (and s->p past it); 0 or -1 */
static int scan_escape(struct scan *s, enum where w)
{
    uint32_t cp, lo;

    if (s->p >= s->end)
        return bad_json(s, "unterminated string");
    switch (*s->p) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        s->p++;
        return 0;
    case 'u':
        break;
    default:
        return bad_json(s, "invalid escape in a string");
    }
    if (s->end - s->p < 5 || !hex4(s->p + 1, &cp))
        return bad_json(s, "\\u needs four hex digits");
    if (cp == 0)
        return fail_in(s, w, "", "\\u0000 not allowed");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail_in(s, w, " (a low half without a high one)",
                       "unpaired surrogate escape \\u%04x at byte %zu", (unsigned)cp, at(s) - 1);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (s->end - s->p < 11 || s->p[5] != '\\' || s->p[6] != 'u' || !hex4(s->p + 7, &lo) ||
            lo < 0xdc00 || lo > 0xdfff)
            return fail_in(s, w, " (a high half not followed by a low one)",
                           "unpaired surrogate escape \\u%04x at byte %zu", (unsigned)cp,
                           at(s) - 1);
        s->p += 11;
        return 0;
    }
    s->p += 5;
    return 0;
}

/* s->p at the opening quote: past the closing one, *esc set when it held escapes; 0 or -1 */
static int scan_string(struct scan *s, enum where w, int *esc)
{
    uint32_t cp;

    *esc = 0;
    s->p++;
    for (;;) {
        while (s->end - s->p >= 8) {
            uint64_t v;
            memcpy(&v, s->p, sizeof v);
            if (!word_plain(v))
                break;
            s->p += 8;
        }
        while (s->p < s->end && plain_ascii[*s->p])
            s->p++;
        if (s->p >= s->end)
            return bad_json(s, "unterminated string");
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c == '\\') {
            *esc = 1;
            s->p++;
            if (scan_escape(s, w) != 0)
                return -1;
        } else if (c < 0x20) {
            return fail_in(s, w, " (must be escaped)", "control character 0x%02x at byte %zu", c,
                           at(s));
        } else {
            size_t n = utf8_seq(s->p, (size_t)(s->end - s->p), &cp);
            if (n == 0)
                return fail_in(s, w, "", "invalid UTF-8 at byte %zu", at(s));
            s->p += n;
        }
    }
}

static int scan_digits(struct scan *s)
{
    const unsigned char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : bad_json(s, "expected a digit");
}

/* RFC 8259 number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int scan_number(struct scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (scan_digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) != 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) != 0)
            return -1;
    }
    return 0;
}

static int scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return bad_json(s, "expected a value");
    s->p += n;
    return 0;
}

/* the decoded bytes of key k */
static const char *key_bytes(const struct scan *s, const struct key *k)
{
    return k->p != NULL ? k->p : s->scratch + k->off;
}

/*
 * a hash of key bytes from their length and first and last 8 bytes: O(1),
 * and equal keys hash equal, which is all the comparisons need (they
 * compare the bytes when hashes match)
 */
static uint32_t hash_bytes(const char *p, size_t n)
{
    uint64_t a = 0, b = 0, h;

    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            a = (a << 8) | (unsigned char)p[i];
    }
    h = (a ^ (b * 0x9e3779b97f4a7c15ULL) ^ n) * 0xff51afd7ed558ccdULL;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* decode the (valid) escaped key between q and e into the scratch; 0 or -1 (out of memory) */
static int decode_key(struct scan *s, const unsigned char *q, const unsigned char *e, struct key *k)
{
    size_t need = s->nscratch + (size_t)(e - q);
    char *o;

    if (need > s->capscratch) {
        size_t cap = s->capscratch ? s->capscratch * 2 : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(s->scratch, cap);
        if (p == NULL)
            return fail(s->err, s->errlen, NULL, "out of memory checking JSON keys");
        s->scratch = p;
        s->capscratch = cap;
    }
    k->off = s->nscratch;
    o = s->scratch + s->nscratch;
    while (q < e) {
        uint32_t cp, lo;
        if (*q != '\\') {
            *o++ = (char)*q++;
            continue;
        }
        q++;
        switch (*q++) {
        case 'b':
            *o++ = '\b';
            continue;
        case 'f':
            *o++ = '\f';
            continue;
        case 'n':
            *o++ = '\n';
            continue;
        case 'r':
            *o++ = '\r';
            continue;
        case 't':
            *o++ = '\t';
            continue;
        case 'u':
            break;
        default: /* '"', '\\', '/' */
            *o++ = (char)q[-1];
            continue;
        }
        hex4(q, &cp);
        q += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) { /* paired: checked by scan_escape */
            hex4(q + 2, &lo);
            q += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xc0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xe0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else {
            *o++ = (char)(0xf0 | (cp >> 18));
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    k->p = NULL;
    k->len = (size_t)(o - (s->scratch + s->nscratch));
    s->nscratch += k->len;
    return 0;
}

static int same_key(const struct scan *s, const struct key *a, const struct key *b)
{
    return a->hash == b->hash && a->len == b->len &&
           memcmp(key_bytes(s, a), key_bytes(s, b), a->len) == 0;
}

/* "duplicate key 'k' in the object at 'path'" for the object of the top frame */
static int duplicate(struct scan *s, const struct key *k)
{
    char q[RTE_INPUT_QUOTE_MAX * 4 + 8], path[PATH_MAX_TEXT];

    rte_input_quote(key_bytes(s, k), k->len, q, sizeof q);
    path_text(s, s->depth - 1, path, sizeof path);
    if (path[0])
        return fail(s->err, s->errlen, NULL, "duplicate key '%s' in the object at '%s'", q, path);
    return fail(s->err, s->errlen, NULL, "duplicate key '%s' in the top-level object", q);
}

/* room for one more key on the key stack; 0 or -1 */
static int grow_keys(struct scan *s)
{
    size_t cap = s->capkeys * 2;
    struct key *n;

    if (s->keys == s->keys0) {
        n = malloc(cap * sizeof *n);
        if (n != NULL)
            memcpy(n, s->keys, s->nkeys * sizeof *n);
    } else {
        n = realloc(s->keys, cap * sizeof *n);
    }
    if (n == NULL)
        return fail(s->err, s->errlen, NULL, "out of memory checking JSON keys");
    s->keys = n;
    s->capkeys = cap;
    return 0;
}

/*
 * push a key of the top frame; refuses a repeat among its first
 * LINEAR_KEYS keys. The key is built in its slot (not copied there: a
 * struct assembled on the stack and copied cost a store-forwarding stall
 * per key).
 */
static int add_key(struct scan *s, const unsigned char *raw, size_t rawlen, int esc)
{
    struct frame *f = &s->f[s->depth - 1];
    struct key *k;

    f->key = (const char *)raw;
    f->keylen = rawlen;
    if (s->nkeys == s->capkeys && grow_keys(s) != 0)
        return -1;
    k = &s->keys[s->nkeys];
    k->p = (const char *)raw;
    k->off = 0;
    k->len = rawlen;
    if (esc && decode_key(s, raw, raw + rawlen, k) != 0)
        return -1;
    k->hash = hash_bytes(key_bytes(s, k), k->len);
    uint64_t bit = 1ULL << (k->hash & 63);
    if (f->n < LINEAR_KEYS && (f->seen & bit) != 0)
        for (size_t i = f->keys; i < s->nkeys; i++)
            if (same_key(s, &s->keys[i], k))
                return duplicate(s, k);
    f->seen |= bit;
    s->nkeys++;
    f->n++;
    return 0;
}

static int key_order(const void *a, const void *b)
{
    const struct key *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->p, y->p, x->len);
}

/*
 * n keys (more than LINEAR_KEYS) checked through an open-addressing table of
 * their hashes: 1 duplicate found (*dup), 0 none, -1 give up - out of memory,
 * or more probes than 4n + 64 (keys crafted to share a hash), so the caller
 * sorts instead and an object never costs more than n log n.
 */
static int keys_by_hash(const struct scan *s, const struct key *k, size_t n, size_t *dup)
{
    uint32_t stack[1024], *tab = stack;
    size_t cap = 64, probes = 0, limit = 4 * n + 64;
    int rc = 0;

    while (cap < 2 * n)
        cap <<= 1;
    if (cap > sizeof stack / sizeof stack[0] && !(tab = calloc(cap, sizeof *tab)))
        return -1;
    if (tab == stack)
        memset(stack, 0, cap * sizeof *tab);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t h = k[i].hash & (cap - 1);
        for (; tab[h] != 0; h = (h + 1) & (cap - 1)) {
            if (same_key(s, &k[tab[h] - 1], &k[i])) {
                *dup = i;
                rc = 1;
                break;
            }
            if (++probes > limit) {
                rc = -1;
                break;
            }
        }
        if (rc == 0)
            tab[h] = (uint32_t)i + 1;
    }
    if (tab != stack)
        free(tab);
    return rc;
}

/* the top frame (an object) closes: check a big one whole, pop its keys; 0 or -1 */
static int close_object(struct scan *s)
{
    struct frame *f = &s->f[s->depth - 1];
    struct key *k = s->keys + f->keys;
    size_t n = s->nkeys - f->keys, dup = 0;

    if (f->n > LINEAR_KEYS) {
        for (size_t i = 0; i < n; i++)
            if (k[i].p == NULL)
                k[i].p = s->scratch + k[i].off; /* the scratch no longer moves */
        int rc = n < UINT32_MAX ? keys_by_hash(s, k, n, &dup) : -1;
        if (rc == 1)
            return duplicate(s, &k[dup]);
        if (rc < 0) {
            qsort(k, n, sizeof *k, key_order);
            for (size_t i = 1; i < n; i++)
                if (same_key(s, &k[i - 1], &k[i]))
                    return duplicate(s, &k[i]);
        }
    }
    s->nkeys = f->keys;
    return 0;
}

static int push(struct scan *s, int obj)
{
    if (s->depth == s->max_depth)
        return fail(s->err, s->errlen, NULL, "nesting deeper than %d levels at byte %zu",
                    s->max_depth, at(s));
    s->f[s->depth++] = (struct frame){.obj = obj, .keys = s->nkeys};
    s->p++;
    return 0;
}

/* the storage a scan starts with, so small documents allocate nothing */
struct scan_store {
    struct scan s;
    struct key keys[INLINE_KEYS];
    struct frame frames[RTE_INPUT_JSON_DEPTH];
};

enum state { S_VALUE, S_AFTER, S_KEY };

/* one value at s->p; the next state */
static int scan_value(struct scan *s, enum state *next)
{
    int esc;

    skip_ws(s);
    if (s->p >= s->end)
        return bad_json(s, "expected a value");
    *next = S_AFTER;
    switch (*s->p) {
    case '{':
        if (push(s, 1) != 0)
            return -1;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            s->depth--;
        } else {
            *next = S_KEY;
        }
        return 0;
    case '[':
        if (push(s, 0) != 0)
            return -1;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            s->depth--;
        } else {
            *next = S_VALUE;
        }
        return 0;
    case '"':
        return scan_string(s, AT_STRING, &esc);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        if (s->p == s->b && s->end - s->p >= 3 && memcmp(s->p, "\xef\xbb\xbf", 3) == 0)
            return bad_json(s, "a byte-order mark is not allowed");
        return bad_json(s, "expected a value");
    }
}

/* after a value: ',' or the close of the container; the next state, or 1 when done */
static int scan_after(struct scan *s, enum state *next)
{
    skip_ws(s);
    if (s->depth == 0)
        return s->p == s->end ? 1 : bad_json(s, "unexpected data after the document");
    struct frame *f = &s->f[s->depth - 1];
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        if (f->obj) {
            *next = S_KEY;
        } else {
            f->n++;
            *next = S_VALUE;
        }
        return 0;
    }
    if (s->p < s->end && *s->p == (f->obj ? '}' : ']')) {
        if (f->obj && close_object(s) != 0)
            return -1;
        s->p++;
        s->depth--;
        *next = S_AFTER;
        return 0;
    }
    return bad_json(s, f->obj ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* a key and its ':' */
static int scan_key(struct scan *s)
{
    const unsigned char *start;
    int esc;

    skip_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return bad_json(s, "expected a string key");
    start = s->p + 1;
    if (scan_string(s, AT_KEY, &esc) != 0)
        return -1;
    if (add_key(s, start, (size_t)(s->p - 1 - start), esc) != 0)
        return -1;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return bad_json(s, "expected ':'");
    s->p++;
    return 0;
}

/* rte_input_json - pure; allocates only for many keys, escaped keys or a deep limit */
int rte_input_json(const char *buf, size_t len, const rte_input_json_limits *lim, char *err,
                   size_t errlen)
{
    struct scan_store st;
    struct scan *s = &st.s;
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : RTE_INPUT_JSON_MAX_BYTES;
    int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : RTE_INPUT_JSON_DEPTH;
    enum state state = S_VALUE;
    int rc = 0;

    if (max_depth > RTE_INPUT_JSON_DEPTH_MAX)
        max_depth = RTE_INPUT_JSON_DEPTH_MAX;
    if (len > max_bytes)
        return fail(err, errlen, NULL, "document of %zu bytes exceeds the limit of %zu bytes", len,
                    max_bytes);
    memset(s, 0, sizeof *s);
    s->b = s->p = (const unsigned char *)(buf ? buf : "");
    s->end = s->b + (buf ? len : 0);
    s->err = err;
    s->errlen = errlen;
    s->max_depth = max_depth;
    s->keys = s->keys0 = st.keys;
    s->capkeys = INLINE_KEYS;
    s->f = st.frames;
    if (max_depth > RTE_INPUT_JSON_DEPTH) {
        s->f = malloc((size_t)max_depth * sizeof *s->f);
        if (s->f == NULL)
            return fail(err, errlen, NULL, "out of memory checking JSON");
    }
    while (rc == 0) {
        if (state == S_VALUE)
            rc = scan_value(s, &state);
        else if (state == S_AFTER)
            rc = scan_after(s, &state);
        else if ((rc = scan_key(s)) == 0)
            state = S_VALUE;
    }
    if (s->f != st.frames)
        free(s->f);
    if (s->keys != st.keys)
        free(s->keys);
    free(s->scratch);
    return rc > 0 ? 0 : -1;
}
