/*
 * json.h - strict cJSON helpers whose errors name the field.
 *
 * Validation reads a field by path-like name and reports the first problem as
 * "field 'subscriber.memberId': expected string" so an HTTP 400 or gRPC
 * INVALID_ARGUMENT can pass it to the caller unchanged. Getters return 0 on
 * success and -1 with err filled otherwise; optional getters leave the output
 * untouched when the field is absent.
 *
 * Thread safety: pure functions over caller-owned objects.
 */
#ifndef RTE_JSON_H
#define RTE_JSON_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* rte_json_parse - parse len bytes; NULL and err ("invalid JSON at byte N") on failure */
cJSON *rte_json_parse(const char *buf, size_t len, char *err, size_t errlen);

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

#endif
