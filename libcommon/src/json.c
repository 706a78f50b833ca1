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
 * exactly len bytes (the buffer need not be NUL-terminated); otherwise it
 * fails with "invalid JSON at byte N" (0-based offset where parsing
 * stopped).
 *
 * Pure functions over caller-owned objects; callable from any thread. The
 * module does not validate UTF-8 or reject duplicate member names (the
 * first one wins, as with cJSON_GetObjectItemCaseSensitive).
 */
#include "rte/json.h"

#include <inttypes.h>
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

/* rte_json_parse - parse len bytes; NULL and err ("invalid JSON at byte N") on failure */
cJSON *rte_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *root;
    size_t off;

    if (!buf || !len) {
        snprintf(err, errlen, "invalid JSON at byte 0");
        return NULL;
    }
    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    off = end && end >= buf ? (size_t)(end - buf) : 0;
    if (root) {
        while (off < len && buf[off] && strchr(" \t\r\n", buf[off]))
            off++;
        if (off == len)
            return root;
        cJSON_Delete(root);
    }
    snprintf(err, errlen, "invalid JSON at byte %zu", off);
    return NULL;
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
