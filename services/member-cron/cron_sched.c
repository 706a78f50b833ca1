/*
 * cron_sched.c - load, validate and evaluate the schedules file.
 *
 * Every field is checked before anything is returned, so a bad edit can
 * never half-apply; the first problem found is reported with the schedule's
 * name (or its position when the name itself is the problem) and the line
 * of the offending node.
 *
 * Filters are not matched here: each directory filter becomes a term of a
 * member_query expression (has_rte_enabled: true -> "has_rte_enabled =
 * TRUE", eligibility_check_age: "> 7d" -> "(last_eligibility_check_at IS
 * NULL OR last_eligibility_check_at < NOW() - 604800000ms)", ...), ANDed
 * with the schedule's `query`, and libcommon's member_query resolves it.
 * Only app_usage_probability, the model's prediction, is tested here.
 */
#include "cron_sched.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron_yaml.h"
#include "rte/input.h"

#define DEFAULT_RATE 1000.0
#define DEFAULT_THRESHOLD 0.7
#define DEFAULT_DEADLINE_MS (5 * 60 * 1000LL)

typedef struct ctx {
    cron_yaml *y;
    const char *path;
    const char *sched; /* name, or NULL before it is known */
    int index;
    char *err;
    size_t errlen;
    char *expr; /* the schedule's translated filters so far */
    size_t len, cap;
} ctx;

__attribute__((format(printf, 3, 4))) static int bad(ctx *c, yaml_node_t *n, const char *fmt, ...)
{
    char why[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (c->sched)
        snprintf(c->err, c->errlen, "%s: schedule '%s' (line %d): %s", c->path, c->sched,
                 cron_yaml_line(n), why);
    else
        snprintf(c->err, c->errlen, "%s: schedule #%d (line %d): %s", c->path, c->index + 1,
                 cron_yaml_line(n), why);
    return -1;
}

/* append to the expression being built; -1 out of memory */
__attribute__((format(printf, 2, 3))) static int emit(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (c->len + (size_t)n + 1 > c->cap) {
        size_t cap = (c->len + (size_t)n + 1) * 2;
        char *p = realloc(c->expr, cap);
        if (!p)
            return -1;
        c->expr = p;
        c->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(c->expr + c->len, c->cap - c->len, fmt, ap);
    va_end(ap);
    c->len += (size_t)n;
    return 0;
}

/* start one more ANDed term */
static int term(ctx *c)
{
    return c->len ? emit(c, " AND ") : 0;
}

/* cron_parse_duration - any thread */
int64_t cron_parse_duration(const char *s)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    double v = strtod(s, &end);
    double mul = 1;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else if (strcmp(end, "d") == 0)
        mul = 86400000;
    else
        return -1;
    if (!isfinite(v) || v * mul > 1e15)
        return -1;
    return (int64_t)(v * mul);
}

/* cron_catch_up_name - any thread */
const char *cron_catch_up_name(int p)
{
    return p == CRON_CATCH_UP_ALL ? "all" : p == CRON_CATCH_UP_LATEST ? "latest" : "skip";
}

static int parse_bool(const char *s, int *out)
{
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                             "0"};
    for (int i = 0; s && i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return 0;
    return 1;
}

/* "> 0.5", ">=0.5", "< 7d", "0.5" (= ">=") */
static int parse_cmp(const char *s, int *cmp, const char **rest)
{
    while (isspace((unsigned char)*s))
        s++;
    *cmp = CRON_GE;
    if (s[0] == '>' && s[1] == '=') {
        *cmp = CRON_GE;
        s += 2;
    } else if (s[0] == '<' && s[1] == '=') {
        *cmp = CRON_LE;
        s += 2;
    } else if (s[0] == '>') {
        *cmp = CRON_GT;
        s++;
    } else if (s[0] == '<') {
        *cmp = CRON_LT;
        s++;
    }
    while (isspace((unsigned char)*s))
        s++;
    *rest = s;
    return *s ? 0 : -1;
}

#define IN_MAX 256 /* values of one IN (member_query's limit); longer lists OR several */

/* key: one value or a list of them -> "(attr IN ('a', 'b') OR attr IN (...))" */
static int parse_strings(ctx *c, yaml_node_t *v, const char *key, const char *attr, int status)
{
    static const char *const names[] = {"ACTIVE", "INACTIVE", "SUSPENDED", "PENDING"};
    size_t n = v->type == YAML_SEQUENCE_NODE
                   ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                   : 1;
    if (v->type == YAML_MAPPING_NODE || n == 0)
        return bad(c, v, "filter %s: expected a value or a list of values", key);
    if (term(c) < 0 || emit(c, "(") < 0)
        return bad(c, v, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = v->type == YAML_SEQUENCE_NODE
                              ? yaml_document_get_node(&c->y->doc, v->data.sequence.items.start[i])
                              : v;
        const char *s = cron_yaml_str(it);
        if (!s || !*s)
            return bad(c, it, "filter %s: expected a non-empty string", key);
        if (status) {
            int found = -1;
            for (int k = 0; k < 4; k++)
                if (strcasecmp(s, names[k]) == 0)
                    found = k;
            if (found < 0)
                return bad(c, it,
                           "filter account_status: '%s' is not ACTIVE, INACTIVE, SUSPENDED or "
                           "PENDING",
                           s);
            s = names[found];
        } else if (strchr(s, '\'') || strlen(s) > RTE_INPUT_ID_MAX) {
            /* no member id, sponsor or population can hold either */
            return bad(c, it, "filter %s: '%.80s' is not an id (at most %d bytes, no quote)", key,
                       s, RTE_INPUT_ID_MAX);
        }
        int rc = i % IN_MAX == 0 ? emit(c, "%s%s IN ('%s'", i ? ") OR " : "", attr, s)
                                 : emit(c, ", '%s'", s);
        if (rc < 0)
            return bad(c, it, "out of memory");
    }
    if (emit(c, "))") < 0)
        return bad(c, v, "out of memory");
    return 0;
}

static int parse_filter(ctx *c, const char *key, yaml_node_t *v, cron_schedule *sc)
{
    const char *s = cron_yaml_str(v);
    if (strcmp(key, "has_rte_enabled") == 0 || strcmp(key, "is_mock") == 0) {
        int flag;
        if (parse_bool(s, &flag) < 0)
            return bad(c, v, "filter %s: expected true or false, got '%s'", key, s ? s : "?");
        if (term(c) < 0 || emit(c, "%s = %s", key, flag ? "TRUE" : "FALSE") < 0)
            return bad(c, v, "out of memory");
        return 0;
    }
    if (strcmp(key, "app_usage_probability") == 0) {
        const char *rest;
        char *end;
        cron_prob_test *t = &sc->prob[sc->nprob];
        if (!s || parse_cmp(s, &t->cmp, &rest) < 0)
            return bad(c, v, "filter %s: expected a comparison such as \"> 0.5\"", key);
        t->value = strtod(rest, &end);
        if (end == rest || *end || !(t->value >= 0 && t->value <= 1))
            return bad(c, v, "filter %s: '%s': expected a comparison with a number in [0, 1]", key,
                       s);
        sc->nprob++;
        return 0;
    }
    if (strcmp(key, "eligibility_check_age") == 0) {
        static const char *const op[] = {"<", "<=", ">", ">="}; /* age op d <=> check op' now - d */
        const char *rest;
        int cmp;
        int64_t ms;
        if (!s || parse_cmp(s, &cmp, &rest) < 0 || (ms = cron_parse_duration(rest)) < 0)
            return bad(c, v, "filter %s: '%s': expected a comparison with a duration (\"> 7d\")",
                       key, s ? s : "?");
        /* never checked is older than any age: it passes > and >=, fails < and <= */
        int rc = term(c);
        if (rc == 0 && (cmp == CRON_GT || cmp == CRON_GE))
            rc = emit(c,
                      "(last_eligibility_check_at IS NULL OR last_eligibility_check_at %s NOW() - "
                      "%" PRId64 "ms)",
                      op[cmp], ms);
        else if (rc == 0)
            rc = emit(c, "last_eligibility_check_at %s NOW() - %" PRId64 "ms", op[cmp], ms);
        if (rc < 0)
            return bad(c, v, "out of memory");
        return 0;
    }
    if (strcmp(key, "sponsor_id") == 0 || strcmp(key, "population_id") == 0 ||
        strcmp(key, "account_status") == 0)
        return parse_strings(c, v, key, key, key[0] == 'a');
    return bad(c, v,
               "unknown filter '%s' (known: has_rte_enabled, is_mock, app_usage_probability, "
               "sponsor_id, population_id, account_status, eligibility_check_age; any other "
               "attribute: the schedule's 'query')",
               key);
}

static int parse_filters(ctx *c, yaml_node_t *fl, cron_schedule *s)
{
    /* a list of one-key mappings (the source's form) or one mapping */
    yaml_node_t *maps[256];
    size_t nmaps = 0, total = 0;
    if (fl->type == YAML_MAPPING_NODE) {
        maps[nmaps++] = fl;
    } else if (fl->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = fl->data.sequence.items.start;
             it < fl->data.sequence.items.top && nmaps < 256; it++) {
            yaml_node_t *m = yaml_document_get_node(&c->y->doc, *it);
            if (!m || m->type != YAML_MAPPING_NODE)
                return bad(c, m ? m : fl,
                           "filters: each entry must be a mapping such as "
                           "'has_rte_enabled: true'");
            maps[nmaps++] = m;
        }
    } else if (fl->type == YAML_SCALAR_NODE && *cron_yaml_str(fl) == '\0') {
        return 0;
    } else {
        return bad(c, fl, "filters: expected a list of filters");
    }
    for (size_t i = 0; i < nmaps; i++)
        total += (size_t)(maps[i]->data.mapping.pairs.top - maps[i]->data.mapping.pairs.start);
    if (total == 0)
        return 0;
    s->prob = calloc(total, sizeof *s->prob);
    if (!s->prob)
        return bad(c, fl, "out of memory");
    for (size_t i = 0; i < nmaps; i++) {
        for (yaml_node_pair_t *p = maps[i]->data.mapping.pairs.start;
             p < maps[i]->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&c->y->doc, p->key);
            yaml_node_t *v = yaml_document_get_node(&c->y->doc, p->value);
            const char *key = cron_yaml_str(k);
            if (!key)
                return bad(c, k, "filters: keys must be strings");
            s->nfilters++;
            if (parse_filter(c, key, v, s) < 0)
                return -1;
        }
    }
    return 0;
}

static int check_keys(ctx *c, yaml_node_t *m)
{
    static const char *const known[] = {"name",      "cron",    "enabled",  "timezone",
                                        "jitter",    "rate",    "catch_up", "starting_deadline",
                                        "threshold", "filters", "query",    NULL};
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&c->y->doc, p->key);
        const char *key = cron_yaml_str(k);
        int ok = 0;
        for (int i = 0; key && known[i]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok)
            return bad(c, k,
                       "unknown key '%s' (known: name, cron, enabled, timezone, jitter, rate, "
                       "catch_up, starting_deadline, threshold, filters, query)",
                       key ? key : "?");
    }
    return 0;
}

static int parse_number(ctx *c, yaml_node_t *n, const char *key, double lo, double hi, double *out)
{
    const char *s = cron_yaml_str(n);
    char *end = NULL;
    if (s)
        *out = strtod(s, &end);
    if (!s || end == s || *end || !isfinite(*out) || *out < lo || *out > hi)
        return bad(c, n, "%s: '%s': expected a number in [%g, %g]", key, s ? s : "?", lo, hi);
    return 0;
}

static int parse_dur(ctx *c, yaml_node_t *n, const char *key, int64_t max_ms, int64_t *out)
{
    const char *s = cron_yaml_str(n);
    *out = cron_parse_duration(s);
    if (*out < 0 || *out > max_ms)
        return bad(c, n, "%s: '%s': expected a duration (250ms, 5s, 2m, 1h, 1d) up to %lld ms", key,
                   s ? s : "?", (long long)max_ms);
    return 0;
}

/* the schedule's `query` ANDed to its filters; the whole compiled once to check it */
static int parse_query(ctx *c, yaml_node_t *m, cron_schedule *s)
{
    char why[512];
    int rc;
    yaml_node_t *n = cron_yaml_get(c->y, m, "query");
    if (n) {
        const char *q = cron_yaml_str(n);
        if (!q || !*q)
            return bad(c, n, "query: expected a member query expression (docs/member-query.md)");
        /* alone first, so an error's position is the one in the file's string */
        rte_member_query *p = rte_member_query_parse(q, 0, &rc, why, sizeof why);
        if (!p)
            return bad(c, n, "query: %s", rc == RTE_MEMBER_QUERY_INVALID ? why : "out of memory");
        rte_member_query_free(p);
        if (term(c) < 0 || emit(c, "(%s)", q) < 0)
            return bad(c, n, "out of memory");
    }
    if (!c->len)
        return 0;
    rte_member_query *p = rte_member_query_parse(c->expr, 0, &rc, why, sizeof why);
    yaml_node_t *fl = cron_yaml_get(c->y, m, "filters");
    if (!p)
        return bad(c, fl ? fl : n, "filters%s: %s", n ? " and query" : "",
                   rc == RTE_MEMBER_QUERY_INVALID ? why : "out of memory");
    rte_member_query_free(p);
    s->where = c->expr;
    c->expr = NULL;
    c->len = c->cap = 0;
    return 0;
}

static int parse_schedule(ctx *c, yaml_node_t *m, const char *zdir, cron_schedule *s)
{
    char why[256];
    yaml_node_t *n;

    s->line = cron_yaml_line(m);
    s->enabled = 1;
    s->rate = DEFAULT_RATE;
    s->threshold = DEFAULT_THRESHOLD;
    s->deadline_ms = DEFAULT_DEADLINE_MS;
    if (m->type != YAML_MAPPING_NODE)
        return bad(c, m, "expected a mapping with name and cron");
    n = cron_yaml_get(c->y, m, "name");
    const char *name = cron_yaml_str(n);
    if (!n)
        return bad(c, m, "'name' is required");
    if (!name_ok(name))
        return bad(c, n, "name '%s': expected 1-63 characters of A-Z a-z 0-9 . _ -",
                   name ? name : "?");
    snprintf(s->name, sizeof s->name, "%s", name);
    c->sched = s->name;
    if (check_keys(c, m) < 0)
        return -1;
    n = cron_yaml_get(c->y, m, "cron");
    const char *cr = cron_yaml_str(n);
    if (!cr)
        return bad(c, m, "'cron' is required");
    if (strlen(cr) >= sizeof s->cron || rte_cron_parse(cr, &s->expr, why, sizeof why) < 0)
        return bad(c, n, "cron '%s': %s", cr, strlen(cr) >= sizeof s->cron ? "too long" : why);
    snprintf(s->cron, sizeof s->cron, "%s", cr);
    if ((n = cron_yaml_get(c->y, m, "enabled")) && parse_bool(cron_yaml_str(n), &s->enabled) < 0)
        return bad(c, n, "enabled: expected true or false");
    n = cron_yaml_get(c->y, m, "timezone");
    const char *zone = n ? cron_yaml_str(n) : "UTC";
    s->tz = rte_tz_load(zdir, zone ? zone : "", why, sizeof why);
    if (!s->tz)
        return bad(c, n, "%s", why);
    if ((n = cron_yaml_get(c->y, m, "jitter")) &&
        parse_dur(c, n, "jitter", 86400000LL, &s->jitter_ms) < 0)
        return -1;
    if ((n = cron_yaml_get(c->y, m, "rate")) && parse_number(c, n, "rate", 0, 1e7, &s->rate) < 0)
        return -1;
    if ((n = cron_yaml_get(c->y, m, "threshold")) &&
        parse_number(c, n, "threshold", 0, 1, &s->threshold) < 0)
        return -1;
    if ((n = cron_yaml_get(c->y, m, "starting_deadline")) &&
        parse_dur(c, n, "starting_deadline", 366 * 86400000LL, &s->deadline_ms) < 0)
        return -1;
    if ((n = cron_yaml_get(c->y, m, "catch_up"))) {
        const char *p = cron_yaml_str(n);
        if (p && strcmp(p, "skip") == 0)
            s->catch_up = CRON_CATCH_UP_SKIP;
        else if (p && strcmp(p, "latest") == 0)
            s->catch_up = CRON_CATCH_UP_LATEST;
        else if (p && strcmp(p, "all") == 0)
            s->catch_up = CRON_CATCH_UP_ALL;
        else
            return bad(c, n, "catch_up: '%s': expected skip, latest or all", p ? p : "?");
    }
    if ((n = cron_yaml_get(c->y, m, "filters")) && parse_filters(c, n, s) < 0)
        return -1;
    return parse_query(c, m, s);
}

/* cron_schedules_load - any thread; reads the file and zone files */
cron_schedules *cron_schedules_load(const char *path, const char *zdir, char *err, size_t errlen)
{
    cron_yaml y;
    cron_schedules *out = NULL;
    int ok = 0;

    if (cron_yaml_load(&y, path, err, errlen) < 0)
        return NULL;
    ctx c = {&y, path, NULL, 0, err, errlen, NULL, 0, 0};
    yaml_node_t *root = cron_yaml_root(&y);
    yaml_node_t *list = cron_yaml_get(&y, root, "schedules");
    out = calloc(1, sizeof *out);
    if (!out) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        snprintf(err, errlen, "%s: line %d: expected a top-level 'schedules:' list", path,
                 cron_yaml_line(list ? list : root));
        goto done;
    }
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *m = yaml_document_get_node(&y.doc, list->data.sequence.items.start[i]);
        c.sched = NULL;
        c.index = (int)i;
        c.len = 0;
        out->n++;
        if (parse_schedule(&c, m, zdir, &out->v[i]) < 0)
            goto done;
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->v[j].name, out->v[i].name) == 0) {
                bad(&c, m, "name is used twice (first at line %d)", out->v[j].line);
                goto done;
            }
    }
    ok = 1;
done:
    free(c.expr);
    cron_yaml_free(&y);
    if (!ok) {
        cron_schedules_free(out);
        return NULL;
    }
    return out;
}

/* cron_schedules_free - the owner */
void cron_schedules_free(cron_schedules *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        cron_schedule *x = &s->v[i];
        rte_tz_free(x->tz);
        free(x->where);
        free(x->prob);
    }
    free(s->v);
    free(s);
}

/* cron_schedules_find - any thread */
const cron_schedule *cron_schedules_find(const cron_schedules *s, const char *name)
{
    for (int i = 0; s && i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

static int cmp_ok(int cmp, double a, double b)
{
    switch (cmp) {
    case CRON_GT:
        return a > b;
    case CRON_GE:
        return a >= b;
    case CRON_LT:
        return a < b;
    default:
        return a <= b;
    }
}

/* cron_schedule_query - any thread */
rte_member_query *cron_schedule_query(const cron_schedule *s, int64_t now_ms, int *rc, char *err,
                                      size_t errlen)
{
    *rc = 0;
    if (!s->where)
        return NULL;
    rte_member_query *q = rte_member_query_parse(s->where, now_ms, rc, err, errlen);
    if (!q && *rc == 0)
        *rc = -1;
    return q;
}

/* cron_schedule_match - any thread; allocates the bitmap */
int cron_schedule_match(const cron_schedule *s, const rte_member_snapshot *snap, int64_t now_ms,
                        uint64_t **bits, size_t *total, char *err, size_t errlen)
{
    int rc;
    *bits = NULL;
    *total = rte_member_snapshot_count(snap);
    rte_member_query *q = cron_schedule_query(s, now_ms, &rc, err, errlen);
    if (!q)
        return rc < 0 ? -1 : 0;
    rc = rte_member_query_match(q, snap, bits, total, err, errlen);
    rte_member_query_free(q);
    return rc < 0 ? -1 : 0;
}

/* cron_schedule_wants - any thread; no allocation */
int cron_schedule_wants(const cron_schedule *s, double probability)
{
    for (int i = 0; i < s->nprob; i++)
        if (!cmp_ok(s->prob[i].cmp, probability, s->prob[i].value))
            return 0;
    return 1;
}
