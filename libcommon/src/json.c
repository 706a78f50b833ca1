/*
 * json.c - strict cJSON helpers whose errors name the field.
 *
 * Every getter reads one member of an object and on a problem returns -1 with
 * err set to one of
 *   field 'subscriber.memberId': missing
 *   field 'subscriber.memberId': expected string        (object, integer, ...)
 *   field 'n': must be in [1, 10000]
 *   field 's': longer than 64 bytes
 *   field 's': must not be empty
 *   field 'items': must have 1..100 elements
 * where the field is the thread-local prefix (rte_json_set_prefix) + "." +
 * name, or the name alone without a prefix. A JSON null counts as absent:
 * "missing" for required getters, untouched output for _opt ones. Integers
 * must be integral numbers (1.5 is not) in [min, max] with
 * |n| < 2^53: a double holds every such integer exactly, while a larger one
 * may already have been rounded by the parser (9007199254740993 reads as
 * 2^53), so it is refused rather than silently changed. Numbers must be
 * finite (1e999 overflows to inf).
 *
 * rte_json_parse accepts one JSON value surrounded by optional whitespace in
 * exactly len bytes (the buffer need not be NUL-terminated), and only when
 * it passes the suite's strict rules first (rte_input_json: RFC 8259
 * grammar, well-formed UTF-8, no duplicate keys, no \u0000, no lone
 * surrogates, bounded depth and size; docs/input.md). So every member name
 * in a tree from here is unique and every string is a whole C string. It
 * fails with rte_input_json's message ("invalid JSON at byte N: ...",
 * "duplicate key 'k' in the object at 'a[3]'", ...).
 *
 * rte_jsonw (the writer) keeps going after the buffer fills, only counting,
 * so callers check once at the end (rte_jsonw_done). Its strings are
 * always valid JSON: control characters escaped, and a byte that is not
 * well-formed UTF-8 written as \ufffd. Numbers follow cJSON's
 * print_number: integral values print as integers, others with %1.15g, or
 * %1.17g when %1.15g does not read back as the same double.
 *
 * rte_json_id reads a string member and applies rte_input_id to it (ids
 * must not carry control characters or invalid UTF-8).
 *
 * Pure functions over caller-owned objects; callable from any thread.
 */
#include "rte/json.h"

#include "rte/input.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_MAX 256
#define EXACT_INT_MAX 9007199254740992.0 /* 2^53 */

static _Thread_local char json_prefix[PREFIX_MAX];

static void field_error(char *err, size_t errlen, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void field_error(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!err || !errlen)
        return;
    n = snprintf(err, errlen, "field '%s%s%s': ", json_prefix, json_prefix[0] ? "." : "",
                 name ? name : "");
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* The member, or NULL when absent or null. */
static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *v;

    if (!cJSON_IsObject(obj) || !name)
        return NULL;
    v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(v) ? NULL : v;
}

static int require(const cJSON *obj, const char *name, const cJSON **v, char *err, size_t errlen)
{
    *v = member(obj, name);
    if (!*v) {
        field_error(err, errlen, name, "missing");
        return -1;
    }
    return 0;
}

/* rte_json_parse_limited - strict parse within lim (NULL: the defaults); any thread */
cJSON *rte_json_parse_limited(const char *buf, size_t len, const rte_input_json_limits *lim,
                              char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *root;

    if (rte_input_json(buf, len, lim, err, errlen) != 0)
        return NULL;
    /* valid by the rules above, so cJSON fails here only for want of memory (its own
     * limits - nesting 1000, numbers of any length in 1.7.15+deb12u4 - are wider) */
    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL)
        snprintf(err, errlen, "out of memory parsing JSON of %zu bytes", len);
    return root;
}

/* rte_json_parse - strict parse with the default limits; any thread */
cJSON *rte_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    return rte_json_parse_limited(buf, len, NULL, err, errlen);
}

/* rte_json_object - the object member name of obj (required); out is borrowed */
int rte_json_object(const cJSON *obj, const char *name, const cJSON **out, char *err, size_t errlen)
{
    const cJSON *v;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    if (!cJSON_IsObject(v)) {
        field_error(err, errlen, name, "expected object");
        return -1;
    }
    *out = v;
    return 0;
}

static int check_string(const cJSON *v, const char *name, size_t maxlen, const char **out,
                        char *err, size_t errlen)
{
    size_t n;

    if (!cJSON_IsString(v) || !v->valuestring) {
        field_error(err, errlen, name, "expected string");
        return -1;
    }
    n = strlen(v->valuestring);
    if (n == 0) {
        field_error(err, errlen, name, "must not be empty");
        return -1;
    }
    if (maxlen && n > maxlen) {
        field_error(err, errlen, name, "longer than %zu bytes", maxlen);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

/*
 * rte_json_string - required string member, 1..maxlen bytes (maxlen 0 = no
 * limit); out is borrowed from obj
 */
int rte_json_string(const cJSON *obj, const char *name, size_t maxlen, const char **out, char *err,
                    size_t errlen)
{
    const cJSON *v;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    return check_string(v, name, maxlen, out, err, errlen);
}

/* rte_json_string_opt - optional string member; absent or null leaves *out unchanged */
int rte_json_string_opt(const cJSON *obj, const char *name, size_t maxlen, const char **out,
                        char *err, size_t errlen)
{
    const cJSON *v = member(obj, name);

    return v ? check_string(v, name, maxlen, out, err, errlen) : 0;
}

/* the message prefix "field 'prefix.name'" for errors built outside field_error */
static void field_name(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "field '%s%s%s'", json_prefix, json_prefix[0] ? "." : "", name);
}

static int check_id(const cJSON *v, const char *name, size_t maxlen, const char **out, char *err,
                    size_t errlen)
{
    char field[PREFIX_MAX + 80];
    const char *s;

    if (check_string(v, name, 0, &s, err, errlen) != 0)
        return -1;
    field_name(field, sizeof field, name);
    if (rte_input_id(s, strlen(s), maxlen, field, err, errlen) != 0)
        return -1;
    *out = s;
    return 0;
}

/* rte_json_id - required id member (rte_input_id rules, 1..maxlen bytes); out is borrowed */
int rte_json_id(const cJSON *obj, const char *name, size_t maxlen, const char **out, char *err,
                size_t errlen)
{
    const cJSON *v;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    return check_id(v, name, maxlen, out, err, errlen);
}

/* rte_json_id_opt - optional id member; absent or null leaves *out unchanged */
int rte_json_id_opt(const cJSON *obj, const char *name, size_t maxlen, const char **out, char *err,
                    size_t errlen)
{
    const cJSON *v = member(obj, name);

    return v ? check_id(v, name, maxlen, out, err, errlen) : 0;
}

static int check_int(const cJSON *v, const char *name, int64_t min, int64_t max, int64_t *out,
                     char *err, size_t errlen)
{
    double d;
    int64_t i;

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        v->valuedouble != floor(v->valuedouble)) {
        field_error(err, errlen, name, "expected integer");
        return -1;
    }
    d = v->valuedouble;
    /* compare as doubles first: (int64_t)d is undefined beyond the int64 range */
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        goto range;
    i = (int64_t)d;
    if (i < min || i > max)
        goto range;
    if (fabs(d) >= EXACT_INT_MAX) {
        field_error(err, errlen, name, "integer too large to be exact (|n| >= 2^53)");
        return -1;
    }
    *out = i;
    return 0;
range:
    field_error(err, errlen, name, "must be in [%" PRId64 ", %" PRId64 "]", min, max);
    return -1;
}

/* rte_json_int - required integer member in [min,max] */
int rte_json_int(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                 char *err, size_t errlen)
{
    const cJSON *v;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    return check_int(v, name, min, max, out, err, errlen);
}

/* rte_json_int_opt - optional integer member in [min,max]; absent leaves *out unchanged */
int rte_json_int_opt(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                     char *err, size_t errlen)
{
    const cJSON *v = member(obj, name);

    return v ? check_int(v, name, min, max, out, err, errlen) : 0;
}

/* rte_json_number - required finite number member in [min,max] */
int rte_json_number(const cJSON *obj, const char *name, double min, double max, double *out,
                    char *err, size_t errlen)
{
    const cJSON *v;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        field_error(err, errlen, name, "expected number");
        return -1;
    }
    if (v->valuedouble < min || v->valuedouble > max) {
        field_error(err, errlen, name, "must be in [%.17g, %.17g]", min, max);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int check_bool(const cJSON *v, const char *name, int *out, char *err, size_t errlen)
{
    if (!cJSON_IsBool(v)) {
        field_error(err, errlen, name, "expected boolean");
        return -1;
    }
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

/* rte_json_bool - required boolean member */
int rte_json_bool(const cJSON *obj, const char *name, int *out, char *err, size_t errlen)
{
    const cJSON *v;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    return check_bool(v, name, out, err, errlen);
}

/* rte_json_bool_opt - optional boolean member; absent leaves *out unchanged */
int rte_json_bool_opt(const cJSON *obj, const char *name, int *out, char *err, size_t errlen)
{
    const cJSON *v = member(obj, name);

    return v ? check_bool(v, name, out, err, errlen) : 0;
}

/* rte_json_array - required array member with minn..maxn elements; out is borrowed */
int rte_json_array(const cJSON *obj, const char *name, int minn, int maxn, const cJSON **out,
                   char *err, size_t errlen)
{
    const cJSON *v;
    int n;

    if (require(obj, name, &v, err, errlen) < 0)
        return -1;
    if (!cJSON_IsArray(v)) {
        field_error(err, errlen, name, "expected array");
        return -1;
    }
    n = cJSON_GetArraySize(v);
    if (n < minn || n > maxn) {
        field_error(err, errlen, name, "must have %d..%d elements", minn, maxn);
        return -1;
    }
    *out = v;
    return 0;
}

/*
 * rte_json_set_prefix - errors from nested objects: prefix names the parent
 * ("results[3]") so a message reads "field 'results[3].status': ..."; the
 * prefix is thread-local and cleared with NULL (or "")
 */
void rte_json_set_prefix(const char *prefix)
{
    snprintf(json_prefix, sizeof(json_prefix), "%s", prefix ? prefix : "");
}

/* rte_json_print - compact text of obj (malloc'd by cJSON's allocator, free()), NULL on OOM */
char *rte_json_print(const cJSON *obj)
{
    return obj ? cJSON_PrintUnformatted(obj) : NULL;
}

/* ---- writer ------------------------------------------------------------- */

static void w_put(rte_jsonw *w, const char *s, size_t n)
{
    if (w->len + n < w->cap)
        memcpy(w->buf + w->len, s, n);
    else
        w->overflow = 1;
    w->len += n;
}

static void w_char(rte_jsonw *w, char c)
{
    w_put(w, &c, 1);
}

/*
 * 1 when one of the 8 bytes in v needs a look: below 0x20, '"', '\\' or
 * from 0x80 up (the "has a byte less than n" and "has a zero byte" word
 * tricks; the high bit marks UTF-8, checked byte by byte)
 */
static int word_needs_escape(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
    uint64_t below = (v - ones * 0x20) & ~v;
    uint64_t is_quote = (quote - ones) & ~quote;
    uint64_t is_bslash = (bslash - ones) & ~bslash;

    return ((below | is_quote | is_bslash | v) & highs) != 0;
}

/*
 * a JSON string literal with cJSON's escapes. Runs of plain characters are
 * copied whole; the scan for the next character to escape tests 8 bytes at
 * a time (ids and names rarely need any, and this writer runs on every
 * answer and event). Well-formed UTF-8 is copied; a byte that is not part
 * of one (input is checked where it enters, so this is a last defence) is
 * written as \ufffd, so the document stays valid JSON whatever s holds.
 */
static void w_string(rte_jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *end = s + strlen(s), *run = s;

    w_char(w, '"');
    while (s < end) {
        unsigned char c;
        const char *esc = NULL;
        char u[6];
        if (end - s >= 8) {
            uint64_t v;
            memcpy(&v, s, sizeof v);
            if (!word_needs_escape(v)) {
                s += 8;
                continue;
            }
        }
        c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = rte_input_utf8_char(s, (size_t)(end - s));
            if (n > 0) {
                s += n;
                continue;
            }
            w_put(w, run, (size_t)(s - run));
            run = ++s;
            w_put(w, "\\ufffd", 6);
            continue;
        }
        s++;
        if (c >= 32 && c != '"' && c != '\\')
            continue;
        w_put(w, run, (size_t)(s - 1 - run));
        run = s;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            w_put(w, u, 6);
            continue;
        }
        w_put(w, esc, 2);
    }
    w_put(w, run, (size_t)(end - run));
    w_char(w, '"');
}

/* the separator and key before a member (key NULL: the document itself) */
static void w_key(rte_jsonw *w, const char *key)
{
    if (w->depth > 0) {
        if (w->n[w->depth - 1]++ > 0)
            w_char(w, ',');
        w_string(w, key != NULL ? key : "");
        w_char(w, ':');
    }
}

/* rte_jsonw_init - any thread */
void rte_jsonw_init(rte_jsonw *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    if (cap == 0)
        w->overflow = 1;
}

/* rte_jsonw_begin - any thread */
void rte_jsonw_begin(rte_jsonw *w, const char *key)
{
    w_key(w, key);
    if (w->depth == RTE_JSONW_DEPTH) {
        w->overflow = 1;
        return;
    }
    w->n[w->depth++] = 0;
    w_char(w, '{');
}

/* rte_jsonw_end - any thread */
void rte_jsonw_end(rte_jsonw *w)
{
    if (w->depth == 0) {
        w->overflow = 1;
        return;
    }
    w->depth--;
    w_char(w, '}');
}

/* rte_jsonw_str - any thread */
void rte_jsonw_str(rte_jsonw *w, const char *key, const char *value)
{
    w_key(w, key);
    if (value == NULL)
        w_put(w, "null", 4);
    else
        w_string(w, value);
}

/* rte_int_text - pure */
const char *rte_int_text(int64_t v, char tmp[RTE_INT_TEXT])
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t i = RTE_INT_TEXT - 1;

    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[--i] = '-';
    return &tmp[i];
}

/* rte_jsonw_int - any thread */
void rte_jsonw_int(rte_jsonw *w, const char *key, int64_t value)
{
    char tmp[RTE_INT_TEXT];
    const char *p = rte_int_text(value, tmp);
    w_key(w, key);
    w_put(w, p, (size_t)(tmp + RTE_INT_TEXT - 1 - p));
}

/* rte_jsonw_num - any thread */
void rte_jsonw_num(rte_jsonw *w, const char *key, double value)
{
    char tmp[32];
    double back = 0;
    int n;

    if (isnan(value) || isinf(value)) {
        rte_jsonw_null(w, key);
        return;
    }
    if (value == floor(value) && fabs(value) < 1e15) {
        rte_jsonw_int(w, key, (int64_t)value);
        return;
    }
    n = snprintf(tmp, sizeof tmp, "%1.15g", value);
    if (sscanf(tmp, "%lg", &back) != 1 || back != value)
        n = snprintf(tmp, sizeof tmp, "%1.17g", value);
    w_key(w, key);
    w_put(w, tmp, (size_t)n);
}

/* rte_jsonw_bool - any thread */
void rte_jsonw_bool(rte_jsonw *w, const char *key, int value)
{
    w_key(w, key);
    if (value)
        w_put(w, "true", 4);
    else
        w_put(w, "false", 5);
}

/* rte_jsonw_null - any thread */
void rte_jsonw_null(rte_jsonw *w, const char *key)
{
    w_key(w, key);
    w_put(w, "null", 4);
}

/* rte_jsonw_done - any thread */
int rte_jsonw_done(rte_jsonw *w)
{
    if (w->overflow || w->depth != 0 || w->len >= w->cap || w->len > INT_MAX) {
        if (w->cap > 0)
            w->buf[0] = '\0';
        return -1;
    }
    w->buf[w->len] = '\0';
    return (int)w->len;
}
