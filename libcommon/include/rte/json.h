/*
 * json.h - strict cJSON helpers whose errors name the field.
 *
 * Parsing is strict (rte/input.h): a document with duplicate keys, invalid
 * UTF-8, \u0000, lone surrogates or too deep nesting is refused before
 * cJSON sees it.
 *
 * Validation reads a field by path-like name and reports the first problem as
 * "field 'subscriber.memberId': expected string" so an HTTP 400 or gRPC
 * INVALID_ARGUMENT can pass it to the caller unchanged. Getters return 0 on
 * success and -1 with err filled otherwise; optional getters leave the output
 * untouched when the field is absent.
 *
 * rte_jsonw writes a compact JSON object straight into a caller's buffer,
 * for documents made on every request (no allocation, no cJSON tree). It
 * escapes keys and strings as cJSON does (", \\, control characters) and
 * prints numbers as cJSON does, so a document reads the same either way;
 * unlike cJSON it never copies a byte that is not well-formed UTF-8 (it
 * writes \ufffd), so its output is valid JSON whatever it is given.
 *
 * Thread safety: pure functions over caller-owned objects and buffers.
 */
#ifndef RTE_JSON_H
#define RTE_JSON_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/input.h"

/*
 * rte_json_parse - parse len bytes under the strict rules of rte_input_json
 * (default size and depth bounds); NULL and err naming the byte, key or
 * path on failure ("invalid JSON at byte N: ...", "duplicate key 'k' in the
 * object at 'a[3]'")
 */
cJSON *rte_json_parse(const char *buf, size_t len, char *err, size_t errlen);

/* rte_json_parse_limited - rte_json_parse within lim (NULL or zero members: the defaults) */
cJSON *rte_json_parse_limited(const char *buf, size_t len, const rte_input_json_limits *lim,
                              char *err, size_t errlen);

/* rte_json_object - the object member name of obj (required) */
int rte_json_object(const cJSON *obj, const char *name, const cJSON **out, char *err,
                    size_t errlen);

/*
 * rte_json_string - required string member, 1..maxlen bytes (maxlen 0 = no
 * limit); out is borrowed from obj
 */
int rte_json_string(const cJSON *obj, const char *name, size_t maxlen, const char **out, char *err,
                    size_t errlen);

/* rte_json_string_opt - optional string member; absent leaves *out unchanged */
int rte_json_string_opt(const cJSON *obj, const char *name, size_t maxlen, const char **out,
                        char *err, size_t errlen);

/*
 * rte_json_id - required string member that is a valid id (rte_input_id:
 * 1..maxlen bytes, no control characters, well-formed UTF-8); out is
 * borrowed from obj. Errors read "field 'results[0].member_id': control
 * character U+0001 at byte 2 is not allowed".
 */
int rte_json_id(const cJSON *obj, const char *name, size_t maxlen, const char **out, char *err,
                size_t errlen);

/* rte_json_id_opt - optional id member; absent or null leaves *out unchanged */
int rte_json_id_opt(const cJSON *obj, const char *name, size_t maxlen, const char **out, char *err,
                    size_t errlen);

/* rte_json_int - required integer member in [min,max] */
int rte_json_int(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                 char *err, size_t errlen);

/* rte_json_int_opt - optional integer member in [min,max] */
int rte_json_int_opt(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                     char *err, size_t errlen);

/* rte_json_number - required number member in [min,max] */
int rte_json_number(const cJSON *obj, const char *name, double min, double max, double *out,
                    char *err, size_t errlen);

/* rte_json_bool - required boolean member */
int rte_json_bool(const cJSON *obj, const char *name, int *out, char *err, size_t errlen);

/* rte_json_bool_opt - optional boolean member */
int rte_json_bool_opt(const cJSON *obj, const char *name, int *out, char *err, size_t errlen);

/* rte_json_array - required array member with minn..maxn elements */
int rte_json_array(const cJSON *obj, const char *name, int minn, int maxn, const cJSON **out,
                   char *err, size_t errlen);

/*
 * rte_json_set_prefix - errors from nested objects: prefix names the parent
 * ("results[3]") so a message reads "field 'results[3].status': ..."; the
 * prefix is thread-local and cleared with NULL
 */
void rte_json_set_prefix(const char *prefix);

/* rte_json_print - compact text of obj (malloc'd, caller frees), NULL on OOM */
char *rte_json_print(const cJSON *obj);

#define RTE_JSONW_DEPTH 8

typedef struct rte_jsonw {
    char *buf;
    size_t cap;
    size_t len;
    int overflow;                     /* the buffer was too small (or nesting too deep) */
    int depth;                        /* open objects */
    unsigned char n[RTE_JSONW_DEPTH]; /* members written so far at each depth */
} rte_jsonw;

/* rte_jsonw_init - write into buf (cap bytes, room for the NUL included) */
void rte_jsonw_init(rte_jsonw *w, char *buf, size_t cap);

/* rte_jsonw_begin - open an object: the document (key NULL) or member key of the open one */
void rte_jsonw_begin(rte_jsonw *w, const char *key);

/* rte_jsonw_end - close the innermost open object */
void rte_jsonw_end(rte_jsonw *w);

/* members of the innermost open object; a NULL string is written as null */
void rte_jsonw_str(rte_jsonw *w, const char *key, const char *value);
void rte_jsonw_int(rte_jsonw *w, const char *key, int64_t value);
void rte_jsonw_num(rte_jsonw *w, const char *key, double value); /* NaN and infinities: null */
void rte_jsonw_bool(rte_jsonw *w, const char *key, int value);
void rte_jsonw_null(rte_jsonw *w, const char *key);

/*
 * rte_jsonw_done - NUL-terminate; the length, or -1 when the buffer was too
 * small or an object is still open (the text is then unusable)
 */
int rte_jsonw_done(rte_jsonw *w);

/*
 * rte_int_text - the decimal text of v ("-12"), written at the end of tmp
 * and NUL-terminated; returns its first character. The JSON writer's own
 * integer formatting, for callers building header values without
 * snprintf. Pure.
 */
#define RTE_INT_TEXT 24
const char *rte_int_text(int64_t v, char tmp[RTE_INT_TEXT]);

#endif
