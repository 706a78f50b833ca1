/*
 * config.c - YAML configuration flattened to dotted keys, with RTE_* overrides.
 *
 * Loading (libyaml's document API) turns nested mappings into dotted keys:
 *   redis:
 *     url: redis://127.0.0.1:6379      -> redis.url
 *   kafka:
 *     brokers: [a:9092, b:9092]        -> kafka.brokers = "a:9092,b:9092"
 * A sequence holding only scalars is joined with ","; a sequence holding
 * mappings or sequences is flattened by index (items.0.name, items.1.name).
 * A null scalar ("key:", "~", "null") is treated as absent, so the default
 * applies. The top level must be a mapping (or empty); duplicate keys, more
 * than one YAML document, and nesting deeper than MAX_DEPTH are load errors.
 * Load errors name the file, the line and column, and libyaml's reason.
 *
 * Environment: for key "redis.url" the variable RTE_REDIS_URL (upper case,
 * '.' and '-' become '_') wins over the file. Variables are read with
 * getenv at lookup time, so a key absent from the file can still be set in
 * the environment; an empty variable counts as unset. A value taken from the
 * environment is borrowed from environ: valid until that variable is
 * changed (services do not change their environment after start-up).
 *
 * Typed getters return the default when the key is absent and are fatal
 * (rte_fatal) when the value is malformed or out of range, with a message
 *   config: key 'redis.timeout' (RTE_REDIS_TIMEOUT) = 'abc': expected an integer in [1, 60000]
 * The _try variants return -1 with the same text in err instead.
 * Durations: "250ms", "5s", "2m", "1h", "1d" or bare milliseconds; a decimal
 * fraction ("1.5s") is allowed and rounds to the nearest ms. Booleans:
 * true/false, yes/no, on/off, 1/0, case-insensitive.
 *
 * rte_config_each lists the keys of the file only (with their environment
 * overrides applied). RTE_* variables for keys the file does not mention are
 * not listed: "RTE_A_B_C" cannot be mapped back to one dotted key ("a.b.c",
 * "a_b.c", "a-b.c", ...).
 *
 * A loaded rte_config is immutable; every getter may be called from any
 * thread without locks. This module does not watch files or reload: the
 * skeleton loads a new rte_config on SIGHUP and swaps it.
 */
#include "rte/config.h"

#include "rte/log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define ENV_NAME_MAX 256
#define ERR_MAX 512

struct entry {
    char *key;
    char *value;
    size_t line;
};

struct rte_config {
    struct entry *v;
    size_t n, cap;
};

/* Where a load is reading from and where its error goes. */
struct loader {
    rte_config *cfg;
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t errlen;
};

static int add_entry(rte_config *cfg, const char *key, const char *value, size_t vlen, size_t line)
{
    if (cfg->n == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 32;
        struct entry *v = realloc(cfg->v, cap * sizeof(*v));
        if (!v)
            return -1;
        cfg->v = v;
        cfg->cap = cap;
    }
    struct entry *e = &cfg->v[cfg->n];
    e->key = strdup(key);
    e->value = strndup(value, vlen);
    e->line = line;
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        return -1;
    }
    cfg->n++;
    return 0;
}

static int is_null_scalar(const yaml_node_t *node)
{
    const char *v = (const char *)node->data.scalar.value;

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return node->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static int load_error(struct loader *ld, const yaml_node_t *node, const char *what, const char *key)
{
    snprintf(ld->err, ld->errlen, "config: %s: line %zu column %zu: %s%s%s%s", ld->name,
             node->start_mark.line + 1, node->start_mark.column + 1, what, key ? " '" : "",
             key ? key : "", key ? "'" : "");
    return -1;
}

static int flatten(struct loader *ld, yaml_node_t *node, const char *path, int depth);

static int flatten_sequence(struct loader *ld, yaml_node_t *node, const char *path, int depth)
{
    yaml_node_item_t *it;
    char *joined = NULL, sub[ENV_NAME_MAX];
    size_t len = 0;
    int all_scalars = 1, rc = -1, i = 0;

    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
        if (yaml_document_get_node(ld->doc, *it)->type != YAML_SCALAR_NODE)
            all_scalars = 0;
    if (!all_scalars) {
        for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            snprintf(sub, sizeof(sub), "%s.%d", path, i++);
            if (flatten(ld, yaml_document_get_node(ld->doc, *it), sub, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        size_t n = is_null_scalar(item) ? 0 : item->data.scalar.length;
        char *grown = realloc(joined, len + n + 2);
        if (!grown)
            goto out;
        joined = grown;
        if (len)
            joined[len++] = ',';
        memcpy(joined + len, item->data.scalar.value, n);
        len += n;
        joined[len] = '\0';
    }
    if (add_entry(ld->cfg, path, joined ? joined : "", len, node->start_mark.line + 1) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        snprintf(ld->err, ld->errlen, "config: %s: out of memory", ld->name);
    free(joined);
    return rc;
}

static int flatten_mapping(struct loader *ld, yaml_node_t *node, const char *path, int depth)
{
    char sub[ENV_NAME_MAX];

    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        if (k->type != YAML_SCALAR_NODE || k->data.scalar.length == 0)
            return load_error(ld, k, "mapping keys must be non-empty scalars", NULL);
        int n = snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
                         (const char *)k->data.scalar.value);
        if (n < 0 || (size_t)n >= sizeof(sub))
            return load_error(ld, k, "key too long", NULL);
        if (flatten(ld, v, sub, depth + 1) < 0)
            return -1;
    }
    return 0;
}

static int flatten(struct loader *ld, yaml_node_t *node, const char *path, int depth)
{
    if (depth > MAX_DEPTH)
        return load_error(ld, node, "nesting too deep (recursive alias?) under", path);
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return flatten_mapping(ld, node, path, depth);
    case YAML_SEQUENCE_NODE:
        return flatten_sequence(ld, node, path, depth);
    case YAML_SCALAR_NODE:
        if (is_null_scalar(node))
            return 0;
        if (add_entry(ld->cfg, path, (const char *)node->data.scalar.value,
                      node->data.scalar.length, node->start_mark.line + 1) < 0) {
            snprintf(ld->err, ld->errlen, "config: %s: out of memory", ld->name);
            return -1;
        }
        return 0;
    default:
        return load_error(ld, node, "unexpected empty node at", path);
    }
}

static void parser_error(const yaml_parser_t *p, const char *name, char *err, size_t errlen)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";

    if (p->error == YAML_READER_ERROR) {
        snprintf(err, errlen, "config: %s: byte %zu: %s", name, p->problem_offset, problem);
        return;
    }
    if (p->context)
        snprintf(err, errlen, "config: %s: line %zu column %zu: %s %s started at line %zu", name,
                 p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                 p->context_mark.line + 1);
    else
        snprintf(err, errlen, "config: %s: line %zu column %zu: %s", name, p->problem_mark.line + 1,
                 p->problem_mark.column + 1, problem);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static rte_config *load(yaml_parser_t *parser, const char *name, char *err, size_t errlen)
{
    rte_config *cfg = calloc(1, sizeof(*cfg));
    yaml_document_t doc;
    struct loader ld = {cfg, &doc, name, err, errlen};
    yaml_node_t *root;
    int rc = -1;

    if (!cfg) {
        snprintf(err, errlen, "config: %s: out of memory", name);
        return NULL;
    }
    if (!yaml_parser_load(parser, &doc)) {
        parser_error(parser, name, err, errlen);
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    if (root && !(root->type == YAML_SCALAR_NODE && is_null_scalar(root))) {
        if (root->type != YAML_MAPPING_NODE)
            rc = load_error(&ld, root, "the top level must be a mapping", NULL);
        else
            rc = flatten(&ld, root, "", 0);
        if (rc < 0) {
            yaml_document_delete(&doc);
            goto out;
        }
    }
    yaml_document_delete(&doc);

    rc = -1;
    if (!yaml_parser_load(parser, &doc)) {
        parser_error(parser, name, err, errlen);
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    if (root) {
        load_error(&ld, root, "only one YAML document is allowed", NULL);
        yaml_document_delete(&doc);
        goto out;
    }
    yaml_document_delete(&doc);

    if (cfg->n)
        qsort(cfg->v, cfg->n, sizeof(cfg->v[0]), entry_cmp);
    for (size_t i = 1; i < cfg->n; i++) {
        if (strcmp(cfg->v[i - 1].key, cfg->v[i].key) == 0) {
            snprintf(err, errlen, "config: %s: line %zu: duplicate key '%s' (first at line %zu)",
                     name,
                     cfg->v[i].line > cfg->v[i - 1].line ? cfg->v[i].line : cfg->v[i - 1].line,
                     cfg->v[i].key,
                     cfg->v[i].line < cfg->v[i - 1].line ? cfg->v[i].line : cfg->v[i - 1].line);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc < 0) {
        rte_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/*
 * rte_config_load - parse the YAML file at path (NULL or "" = no file, only
 * defaults and environment). Returns NULL and fills err on a read or syntax
 * error (message names the file, line and reason). Any thread; no locks.
 */
rte_config *rte_config_load(const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    rte_config *cfg;
    FILE *f;

    if (!path || !*path)
        return rte_config_from_string("", err, errlen);
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "config: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "config: %s: out of memory", path);
        fclose(f);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    cfg = load(&parser, path, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    return cfg;
}

/* rte_config_from_string - same as rte_config_load but from YAML text ("<string>" in errors) */
rte_config *rte_config_from_string(const char *yaml, char *err, size_t errlen)
{
    yaml_parser_t parser;
    rte_config *cfg;

    if (!yaml)
        yaml = "";
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "config: <string>: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    cfg = load(&parser, "<string>", err, errlen);
    yaml_parser_delete(&parser);
    return cfg;
}

/* rte_config_free - release a configuration (NULL is fine) */
void rte_config_free(rte_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->v[i].key);
        free(cfg->v[i].value);
    }
    free(cfg->v);
    free(cfg);
}

/* rte_config_env_name - the RTE_* variable for key into buf (truncated to fit) */
void rte_config_env_name(const char *key, char *buf, size_t len)
{
    size_t i = 0;

    if (!buf || !len)
        return;
    for (const char *p = "RTE_"; *p && i + 1 < len; p++)
        buf[i++] = *p;
    for (; key && *key && i + 1 < len; key++)
        buf[i++] = (*key == '.' || *key == '-') ? '_' : (char)toupper((unsigned char)*key);
    buf[i] = '\0';
}

static const struct entry *find(const rte_config *cfg, const char *key)
{
    struct entry probe = {(char *)key, NULL, 0};

    if (!cfg || !cfg->n)
        return NULL;
    return bsearch(&probe, cfg->v, cfg->n, sizeof(cfg->v[0]), entry_cmp);
}

static const char *env_value(const char *key)
{
    char name[ENV_NAME_MAX];
    const char *v;

    rte_config_env_name(key, name, sizeof(name));
    v = getenv(name);
    return v && *v ? v : NULL;
}

/* rte_config_raw - the raw value (environment first, then file), or NULL; borrowed */
const char *rte_config_raw(const rte_config *cfg, const char *key)
{
    const struct entry *e;
    const char *v;

    if (!key)
        return NULL;
    v = env_value(key);
    if (v)
        return v;
    e = find(cfg, key);
    return e ? e->value : NULL;
}

/* rte_config_str - string value or def; borrowed, valid while cfg lives */
const char *rte_config_str(const rte_config *cfg, const char *key, const char *def)
{
    const char *v = rte_config_raw(cfg, key);
    return v ? v : def;
}

static void bad_value(char *err, size_t errlen, const char *key, const char *value,
                      const char *expect)
{
    char env[ENV_NAME_MAX];

    rte_config_env_name(key, env, sizeof(env));
    snprintf(err, errlen, "config: key '%s' (%s) = '%s': %s", key, env, value, expect);
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *p = s;
    int64_t whole = 0, mult = 0;
    double frac = 0, place = 0.1;
    int nd = 0;

    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (whole > (INT64_MAX - 9) / 10)
            return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        int nf = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nf++, place /= 10)
            frac += (*p - '0') * place;
        if (!nf)
            return -1;
    }
    if (!nd)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(p, units[i].unit) == 0)
            mult = units[i].ms;
    if (!mult || whole > INT64_MAX / mult - 1)
        return -1;
    *out = whole * mult + llround(frac * (double)mult);
    return 0;
}

/* rte_config_int_try - like rte_config_int but returns -1 and fills err instead of exiting */
int rte_config_int_try(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                       int64_t max, int64_t *out, char *err, size_t errlen)
{
    const char *v = rte_config_raw(cfg, key);
    char expect[96];
    int64_t x;

    if (!v) {
        *out = def;
        return 0;
    }
    if (parse_int(v, &x) < 0 || x < min || x > max) {
        snprintf(expect, sizeof(expect), "expected an integer in [%" PRId64 ", %" PRId64 "]", min,
                 max);
        bad_value(err, errlen, key, v, expect);
        return -1;
    }
    *out = x;
    return 0;
}

/* rte_config_int - integer in [min,max] or def; fatal naming the key if bad */
int64_t rte_config_int(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                       int64_t max)
{
    char err[ERR_MAX];
    int64_t v;

    if (rte_config_int_try(cfg, key, def, min, max, &v, err, sizeof(err)) < 0)
        rte_fatal("%s", err);
    return v;
}

/* rte_config_double - number in [min,max] or def; fatal naming the key if bad */
double rte_config_double(const rte_config *cfg, const char *key, double def, double min, double max)
{
    const char *v = rte_config_raw(cfg, key);
    char err[ERR_MAX], expect[96];
    double x;

    if (!v)
        return def;
    if (parse_double(v, &x) < 0 || x < min || x > max) {
        snprintf(expect, sizeof(expect), "expected a number in [%.17g, %.17g]", min, max);
        bad_value(err, sizeof(err), key, v, expect);
        rte_fatal("%s", err);
    }
    return x;
}

/* rte_config_bool - true/false/yes/no/on/off/1/0 or def; fatal naming the key if bad */
int rte_config_bool(const rte_config *cfg, const char *key, int def)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    const char *v = rte_config_raw(cfg, key);
    char err[ERR_MAX];

    if (!v)
        return def;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    bad_value(err, sizeof(err), key, v, "expected a boolean (true/false, yes/no, on/off, 1/0)");
    rte_fatal("%s", err);
}

/* rte_config_duration_try - like rte_config_duration_ms but returns -1 and fills err */
int rte_config_duration_try(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                            int64_t max, int64_t *out, char *err, size_t errlen)
{
    const char *v = rte_config_raw(cfg, key);
    char expect[160];
    int64_t x;

    if (!v) {
        *out = def;
        return 0;
    }
    if (parse_duration(v, &x) < 0 || x < min || x > max) {
        snprintf(expect, sizeof(expect),
                 "expected a duration in [%" PRId64 "ms, %" PRId64
                 "ms] (250ms, 5s, 2m, 1h, 1d; a bare number is ms)",
                 min, max);
        bad_value(err, errlen, key, v, expect);
        return -1;
    }
    *out = x;
    return 0;
}

/* rte_config_int32_try - any thread */
int rte_config_int32_try(const rte_config *cfg, const char *key, int def, int min, int max,
                         int *out, char *err, size_t errlen)
{
    int64_t v;

    if (rte_config_int_try(cfg, key, def, min, max, &v, err, errlen) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* rte_config_duration32_try - any thread */
int rte_config_duration32_try(const rte_config *cfg, const char *key, int def, int min, int max,
                              int *out, char *err, size_t errlen)
{
    int64_t v;

    if (rte_config_duration_try(cfg, key, def, min, max, &v, err, errlen) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/*
 * rte_config_duration_ms - "250ms", "5s", "2m", "1h", or a bare number of
 * milliseconds, in [min,max] ms; fatal naming the key if bad
 */
int64_t rte_config_duration_ms(const rte_config *cfg, const char *key, int64_t def, int64_t min,
                               int64_t max)
{
    char err[ERR_MAX];
    int64_t v;

    if (rte_config_duration_try(cfg, key, def, min, max, &v, err, sizeof(err)) < 0)
        rte_fatal("%s", err);
    return v;
}

/*
 * rte_config_each - call fn for every key of the file under prefix ("" = all;
 * "redis" matches "redis" and "redis.*"), in key order, with environment
 * overrides applied; RTE_* variables without a file key are not listed
 */
void rte_config_each(const rte_config *cfg, const char *prefix,
                     void (*fn)(const char *key, const char *value, void *arg), void *arg)
{
    size_t plen = prefix ? strlen(prefix) : 0;

    if (!cfg || !fn)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        const char *k = cfg->v[i].key;
        const char *env;
        if (plen && (strncmp(k, prefix, plen) != 0 ||
                     !(prefix[plen - 1] == '.' || k[plen] == '\0' || k[plen] == '.')))
            continue;
        env = env_value(k);
        fn(k, env ? env : cfg->v[i].value, arg);
    }
}

/* rte_file_id_of_stat - any thread */
void rte_file_id_of_stat(const struct stat *st, rte_file_id *id)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
}

/* rte_file_id_of - any thread */
int rte_file_id_of(const char *path, rte_file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    rte_file_id_of_stat(&st, id);
    return 0;
}

/* rte_file_id_same - any thread */
int rte_file_id_same(const rte_file_id *a, const rte_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}
