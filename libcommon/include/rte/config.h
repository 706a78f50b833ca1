/*
 * config.h - YAML configuration with RTE_* environment overrides.
 *
 * A configuration is a flat map of dotted keys ("redis.url",
 * "kafka.brokers") built from a YAML file of nested mappings; sequences of
 * scalars are joined with commas. For every key the environment variable
 * RTE_<KEY> (dots and dashes become underscores, upper case: RTE_REDIS_URL)
 * overrides the file. Each typed getter takes the safe default and, for
 * numbers, the allowed range; a value that does not parse or is out of range
 * is fatal at start-up with a message naming the key, its variable and the
 * bad value (rte_fatal). Use the _try variants where an error must be
 * returned instead (SIGHUP reload).
 *
 * Thread safety: a loaded rte_config is immutable and may be read from any
 * thread. Reloading produces a new rte_config; the skeleton swaps them.
 */
#ifndef RTE_CONFIG_H
#define RTE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

typedef struct rte_config rte_config;

/*
 * rte_config_load - parse the YAML file at path (NULL or "" = no file, only
 * defaults and environment). Returns NULL and fills err on a read or syntax
 * error (message names the file, line and reason).
 */
rte_config *rte_config_load(const char *path, char *err, size_t errlen);

/* rte_config_from_string - same as rte_config_load but from YAML text */
rte_config *rte_config_from_string(const char *yaml, char *err, size_t errlen);

/* rte_config_free - release a configuration */
void rte_config_free(rte_config *cfg);

/* rte_config_env_name - the RTE_* variable for key into buf */
void rte_config_env_name(const char *key, char *buf, size_t len);

/* rte_config_raw - the raw value (environment first, then file), or NULL; borrowed */
const char *rte_config_raw(const rte_config *cfg, const char *key);

/* rte_config_str - string value or def; borrowed, valid while cfg lives */
const char *rte_config_str(const rte_config *cfg, const char *key, const char *def);

/* rte_config_int - integer in [min,max] or def; fatal naming the key if bad */
int64_t rte_config_int(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                       int64_t max);

/* rte_config_double - number in [min,max] or def; fatal naming the key if bad */
double rte_config_double(const rte_config *cfg, const char *key, double def, double min,
                         double max);

/* rte_config_bool - true/false/yes/no/on/off/1/0 or def; fatal naming the key if bad */
int rte_config_bool(const rte_config *cfg, const char *key, int def);

/*
 * rte_config_duration_ms - "250ms", "5s", "2m", "1h", or a bare number of
 * milliseconds, in [min,max] ms; fatal naming the key if bad
 */
int64_t rte_config_duration_ms(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                               int64_t max);

/* rte_config_int_try - like rte_config_int but returns -1 and fills err instead of exiting */
int rte_config_int_try(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                       int64_t max, int64_t *out, char *err, size_t errlen);

/* rte_config_duration_try - like rte_config_duration_ms but returns -1 and fills err */
int rte_config_duration_try(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                            int64_t max, int64_t *out, char *err, size_t errlen);

/*
 * rte_config_int32_try, rte_config_duration32_try - the same into an int
 * (min and max must lie within int's range)
 */
int rte_config_int32_try(const rte_config *cfg, const char *key, int def, int min, int max,
                         int *out, char *err, size_t errlen);
int rte_config_duration32_try(const rte_config *cfg, const char *key, int def, int min, int max,
                              int *out, char *err, size_t errlen);

/* rte_config_each - call fn for every key of the file (env overrides applied) under prefix ("" =
 * all) */
void rte_config_each(const rte_config *cfg, const char *prefix,
                     void (*fn)(const char *key, const char *value, void *arg), void *arg);

/*
 * rte_file_id - what tells that a file a service reloads has changed:
 * device, inode (a rename over it), size and modification time (an edit)
 */
typedef struct rte_file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} rte_file_id;

/* rte_file_id_of_stat - the identity st describes */
void rte_file_id_of_stat(const struct stat *st, rte_file_id *id);

/* rte_file_id_of - stat(path) into id: 0, or -1 with errno set */
int rte_file_id_of(const char *path, rte_file_id *id);

/* rte_file_id_same - 1 when a and b are the same, unchanged file */
int rte_file_id_same(const rte_file_id *a, const rte_file_id *b);

#endif
