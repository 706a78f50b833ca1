/*
 * member_query.c - compile a MemberQuery (or a PredicateFilter expression)
 * into a plan and resolve it over a member directory snapshot.
 *
 * A plan is a tree of AND / OR over leaves; every leaf tests one column
 * of the directory (rte/member_dir.h): a flag bitmap, an amount range, a
 * time range, an enum code in a set of values, a list attribute holding
 * any or all of some names, the events of a window, a feature flag. Every
 * filter field of every family becomes such leaves (docs/member-query.md
 * has the table); an expression parses into the same leaves, so there is
 * one engine. NOT is pushed down to the leaves when compiling (De Morgan),
 * and each leaf says what an absent value gives, so absent values behave
 * as SQL's NULL does (a comparison with NULL is never true, NOT of it
 * neither): results are the same as the SQL the property test runs.
 *
 * Resolving binds the plan to a snapshot (values to the snapshot's codes,
 * lists to bit masks), then evaluates the tree 64 members at a time into
 * a bitmap: an AND hands its children only the words still non-zero, so
 * selective leaves first make the rest cheap (children are ordered by
 * cost: flags and codes before amounts, times, then events). Matches are
 * then walked in order: member id order is precomputed by the directory
 * (no sort); another sort key sorts the matches after the cursor, or keeps
 * the best `limit` in a heap.
 *
 * Errors: compilation refuses, naming the field, anything it cannot
 * answer exactly (RTE_MEMBER_QUERY_INVALID); resolution fails only out of
 * memory or on a cursor of another sort order.
 *
 * Not done here: caching results, or any I/O (the caller owns the
 * snapshot and the transport).
 */
#include "rte/member_query.h"

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/input.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define RECENT_MS (90 * DAY_MS) /* "recent" claims and life events */
#define OPEN_ENROLLMENT_MS (60 * DAY_MS)
#define ANNIVERSARY_DAYS 30
#define MAX_DEPTH 64 /* expression nesting */

/* --- plan ------------------------------------------------------------------- */

enum kind {
    K_AND,
    K_OR,
    K_CONST,    /* cval */
    K_BOOL,     /* attr's flag */
    K_NUM,      /* lo <= hundredths <= hi */
    K_TIME,     /* lo <= ms <= hi */
    K_ENUM,     /* code's string matches vals (match) */
    K_STR,      /* string matches vals */
    K_SET,      /* any / all of vals (none: any name at all) */
    K_SETCOUNT, /* number of names in [lo, hi] */
    K_FLAG,     /* feature flag vals[0] is on */
    K_EVENTS,   /* ev */
    K_ANNIV     /* next anniversary of attr's date within lo days */
};

enum match { M_EXACT, M_PREFIX, M_CONTAINS };

typedef struct evhas {
    const char *type;
    int want;
    char **features; /* has_used_feature with feature_names */
    size_t nfeatures;
} evhas;

typedef struct evspec {
    uint32_t cats; /* bit c: EventCategory c */
    char **types, **sources;
    size_t ntypes, nsources;
    int64_t lo, hi;               /* window [lo, hi) in ms */
    int64_t min_count, max_count; /* -1: unset */
    evhas has[24];
    int nhas;
} evspec;

typedef struct node {
    int kind, neg, nullv; /* result = absent ? nullv : match ^ neg */
    int definite;         /* nullv is a known answer (IS NULL, has_*: false), not SQL's unknown */
    const char *attr;
    struct node **kids;
    size_t nkids;
    int64_t lo, hi;
    char **vals;
    size_t nvals;
    int match, all, cval;
    evspec *ev;
    int cost;
} node;

enum sort_field { SORT_ID, SORT_LAST_ACTIVE, SORT_CREATED, SORT_DOB, SORT_USAGE, SORT_NAME };

struct rte_member_query {
    node *root;
    int64_t now;
    void **allocs;
    size_t nallocs, allocs_cap;
    int sort, desc;
    size_t limit;
    int has_cursor;
    int cursor_sort, cursor_desc, cursor_null;
    int64_t cursor_key;
    char cursor_name[256], cursor_id[256];
};

typedef struct compiler {
    rte_member_query *q;
    int64_t now;
    char *err;
    size_t errlen;
    int rc;
} compiler;

static void *palloc(compiler *c, size_t n)
{
    rte_member_query *q = c->q;
    if (q->nallocs == q->allocs_cap) {
        size_t cap = q->allocs_cap ? q->allocs_cap * 2 : 64;
        void **a = realloc(q->allocs, cap * sizeof(*a));
        if (!a)
            return NULL;
        q->allocs = a;
        q->allocs_cap = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p)
        q->allocs[q->nallocs++] = p;
    return p;
}

static char *pstrdup(compiler *c, const char *s)
{
    size_t n = strlen(s);
    char *p = palloc(c, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

/* an error for field (printf); returns NULL so callers can `return bad(...)` */
static void *bad(compiler *c, const char *fmt, ...)
{
    va_list ap;
    if (c->rc == 0) {
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
        c->rc = RTE_MEMBER_QUERY_INVALID;
    }
    return NULL;
}

static void *oom(compiler *c)
{
    if (c->rc == 0) {
        snprintf(c->err, c->errlen, "member_query: out of memory");
        c->rc = -1;
    }
    return NULL;
}

static node *new_node(compiler *c, int kind, const char *attr)
{
    node *n = palloc(c, sizeof(*n));
    if (!n)
        return oom(c);
    n->kind = kind;
    n->attr = attr;
    n->lo = INT64_MIN;
    n->hi = INT64_MAX;
    return n;
}

static int add_kid(compiler *c, node *parent, node *kid)
{
    if (!kid)
        return -1;
    node **k = palloc(c, (parent->nkids + 1) * sizeof(*k));
    if (!k) {
        oom(c);
        return -1;
    }
    if (parent->nkids)
        memcpy(k, parent->kids, parent->nkids * sizeof(*k));
    k[parent->nkids++] = kid;
    parent->kids = k;
    return 0;
}

static char **copy_strs(compiler *c, char *const *v, size_t n, const char *field)
{
    char **out = palloc(c, (n ? n : 1) * sizeof(*out));
    if (!out)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        if (!v[i] || !v[i][0])
            return bad(c, "member_query.%s[%zu]: empty string", field, i);
        if (!(out[i] = pstrdup(c, v[i])))
            return oom(c);
    }
    return out;
}

/* --- leaves ------------------------------------------------------------------- */

static node *leaf_bool(compiler *c, const char *attr, int want)
{
    node *n = new_node(c, K_BOOL, attr);
    if (n)
        n->neg = !want;
    return n;
}

static node *leaf_range(compiler *c, int kind, const char *attr, int64_t lo, int64_t hi)
{
    node *n = new_node(c, kind, attr);
    if (n) {
        n->lo = lo;
        n->hi = hi;
    }
    return n;
}

static node *leaf_strs(compiler *c, int kind, const char *attr, char *const *v, size_t nv,
                       int match, const char *field)
{
    node *n = new_node(c, kind, attr);
    if (!n || !(n->vals = copy_strs(c, v, nv, field)))
        return NULL;
    n->nvals = nv;
    n->match = match;
    return n;
}

/* a list attribute holding any (all = 0) or all of v; with no v, any name at all */
static node *leaf_set(compiler *c, const char *attr, char *const *v, size_t nv, int all,
                      const char *field)
{
    node *n = leaf_strs(c, K_SET, attr, v, nv, M_EXACT, field);
    if (n)
        n->all = all;
    return n;
}

/* the smallest hundredths h with h / 100.0 >= v (the comparison SQL makes on the value) */
#define NUM_BIG 1099511627776.0 /* 2^40 hundredths: beyond every int32 column value */

static int64_t num_ceil(double v)
{
    if (!(v * 100.0 < NUM_BIG))
        return (int64_t)NUM_BIG;
    if (v * 100.0 < -NUM_BIG)
        return -(int64_t)NUM_BIG;
    int64_t h = (int64_t)floor(v * 100.0) - 2;
    while ((double)h / 100.0 < v)
        h++;
    return h;
}

/* the largest hundredths h with h / 100.0 <= v */
static int64_t num_floor(double v)
{
    if (!(v * 100.0 < NUM_BIG))
        return (int64_t)NUM_BIG;
    if (v * 100.0 < -NUM_BIG)
        return -(int64_t)NUM_BIG;
    int64_t h = (int64_t)ceil(v * 100.0) + 2;
    while ((double)h / 100.0 > v)
        h--;
    return h;
}

/* a float of a message as the decimal its sender wrote (0.4f is 0.4, not 0.4000000059) */
static double float_value(float f)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

/* a Timestamp in ms, its seconds cut to +-10^13 (beyond year 300,000) so nothing overflows */
static int64_t ts_ms(const Rte__V1__Timestamp *t)
{
    int64_t s = t->seconds > 10000000000000LL    ? 10000000000000LL
                : t->seconds < -10000000000000LL ? -10000000000000LL
                                                 : t->seconds;
    return s * 1000 + t->nanos / 1000000;
}

/* days since 1970 of civil date y-m-d, d cut to the month's last day */
static int64_t days_of(int64_t y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return rte_days_from_civil(y, m, d < last ? d : last);
}

/* the latest date of birth (ms) of a member aged at least years at now */
static int64_t born_by(int64_t now, int64_t years)
{
    int64_t y;
    int m, d;
    rte_civil_from_days(now >= 0 ? now / DAY_MS : -((-now + DAY_MS - 1) / DAY_MS), &y, &m, &d);
    return days_of(y - years, m, d) * DAY_MS;
}

/* age (whole years at now) in [lo, hi]; hi < 0: no upper bound */
static node *leaf_age(compiler *c, int64_t lo, int64_t hi)
{
    int64_t t_hi = lo > 0 ? born_by(c->now, lo) : INT64_MAX;
    int64_t t_lo = hi >= 0 ? born_by(c->now, hi + 1) + 1 : INT64_MIN;
    return leaf_range(c, K_TIME, "date_of_birth", t_lo, t_hi);
}

/* AND node */
static node *and_node(compiler *c)
{
    return new_node(c, K_AND, NULL);
}

/* --- NOT pushed to the leaves --------------------------------------------- */

static void negate(node *n)
{
    if (n->kind == K_AND || n->kind == K_OR) {
        n->kind = n->kind == K_AND ? K_OR : K_AND;
        for (size_t i = 0; i < n->nkids; i++)
            negate(n->kids[i]);
    } else if (n->kind == K_CONST) {
        n->cval = !n->cval;
    } else {
        n->neg = !n->neg;
        if (n->definite) /* NOT unknown stays unknown (never true); a known answer flips */
            n->nullv = !n->nullv;
    }
}

/* --- the expression language ------------------------------------------------ */

enum tok { T_END, T_IDENT, T_NUM, T_STR, T_DUR, T_LP, T_RP, T_COMMA, T_OP, T_BAD };

typedef struct lexer {
    compiler *c;
    const char *src, *p;
    int tok;
    const char *start;
    size_t len;
    double num;
    int64_t dur_ms;
    char op[3];
    int depth;
} lexer;

static void next(lexer *lx)
{
    const char *p = lx->p;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    lx->start = p;
    if (!*p) {
        lx->tok = T_END;
        lx->len = 0;
        lx->p = p;
        return;
    }
    if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
            p++;
        lx->tok = T_IDENT;
    } else if (isdigit((unsigned char)*p) ||
               ((*p == '-' || *p == '.') && isdigit((unsigned char)p[1]))) {
        char *end;
        errno = 0;
        lx->num = strtod(p, &end);
        lx->tok = errno || !isfinite(lx->num) ? T_BAD : T_NUM;
        p = end;
        int ms = lx->tok == T_NUM && p[0] == 'm' && p[1] == 's' && !isalnum((unsigned char)p[2]);
        if (lx->tok == T_NUM && *p && strchr("wdhms", *p) &&
            (ms || !isalnum((unsigned char)p[1]))) {
            static const struct {
                char u;
                int64_t ms;
            } units[] = {
                {'w', 7 * DAY_MS}, {'d', DAY_MS}, {'h', 3600000}, {'m', 60000}, {'s', 1000}};
            double unit = 1;
            for (size_t i = 0; i < 5 && !ms; i++)
                if (units[i].u == *p)
                    unit = (double)units[i].ms;
            /* at most 1e15 ms (about 31,700 years) either way */
            lx->tok = fabs(lx->num * unit) <= 1e15 ? T_DUR : T_BAD;
            if (lx->tok == T_DUR)
                lx->dur_ms = (int64_t)(lx->num * unit);
            p += ms ? 2 : 1;
        }
    } else if (*p == '\'') {
        p++;
        while (*p && *p != '\'')
            p++;
        lx->tok = *p ? T_STR : T_BAD;
        if (*p)
            p++;
    } else if (*p == '(' || *p == ')' || *p == ',') {
        lx->tok = *p == '(' ? T_LP : *p == ')' ? T_RP : T_COMMA;
        p++;
    } else if (strchr("=<>!", *p)) {
        size_t n = (p[1] == '=' || (p[0] == '<' && p[1] == '>')) ? 2 : 1;
        memcpy(lx->op, p, n);
        lx->op[n] = '\0';
        lx->tok = strcmp(lx->op, "!") == 0 || strcmp(lx->op, "==") == 0 ? T_BAD : T_OP;
        p += n;
    } else {
        lx->tok = T_BAD;
        p++;
    }
    lx->len = (size_t)(p - lx->start);
    lx->p = p;
}

static void *syntax(lexer *lx, const char *what)
{
    if (lx->tok == T_END)
        return bad(lx->c, "%s: at %zu: %s, found the end", "expression",
                   (size_t)(lx->start - lx->src) + 1, what);
    return bad(lx->c, "%s: at %zu near '%.*s': %s", "expression", (size_t)(lx->start - lx->src) + 1,
               (int)(lx->len > 40 ? 40 : lx->len), lx->start, what);
}

static int is_kw(const lexer *lx, const char *kw)
{
    return lx->tok == T_IDENT && strlen(kw) == lx->len && strncasecmp(lx->start, kw, lx->len) == 0;
}

/* a value: number, string, duration, TRUE/FALSE, NULL, DATE '..', TIMESTAMP '..', NOW() +- dur */
typedef struct value {
    enum { V_NUM, V_STR, V_BOOL, V_TIME, V_DUR } t;
    double num;
    char str[256];
    int64_t ms;
} value;

static int time_of(const char *s, int64_t *ms)
{
    int64_t v;
    size_t n = strlen(s);
    char err[64];
    if (n == 10 && rte_input_date(s, n, RTE_INPUT_DATE_ISO, &v, NULL, err, sizeof err) == 0) {
        *ms = v * DAY_MS;
        return 0;
    }
    v = rte_clock_parse(s);
    if (v < 0 && strcmp(s, "1970-01-01T00:00:00Z") != 0)
        return -1;
    *ms = v;
    return 0;
}

static int parse_value(lexer *lx, value *v)
{
    memset(v, 0, sizeof(*v));
    if (lx->tok == T_NUM) {
        v->t = V_NUM;
        v->num = lx->num;
    } else if (lx->tok == T_DUR) {
        v->t = V_DUR;
        v->ms = lx->dur_ms;
    } else if (lx->tok == T_STR) {
        if (lx->len - 2 >= sizeof v->str) {
            syntax(lx, "string longer than 255 bytes");
            return -1;
        }
        v->t = V_STR;
        memcpy(v->str, lx->start + 1, lx->len - 2);
    } else if (is_kw(lx, "TRUE") || is_kw(lx, "FALSE")) {
        v->t = V_BOOL;
        v->num = is_kw(lx, "TRUE");
    } else if (is_kw(lx, "DATE") || is_kw(lx, "TIMESTAMP")) {
        next(lx);
        if (lx->tok != T_STR) {
            syntax(lx, "expected a quoted date or time");
            return -1;
        }
        char buf[64];
        size_t n = lx->len - 2 < sizeof buf - 1 ? lx->len - 2 : sizeof buf - 1;
        memcpy(buf, lx->start + 1, n);
        buf[n] = '\0';
        if (time_of(buf, &v->ms) < 0) {
            syntax(lx, "expected YYYY-MM-DD or an RFC 3339 time");
            return -1;
        }
        v->t = V_TIME;
    } else if (is_kw(lx, "NOW")) {
        next(lx);
        if (lx->tok != T_LP || (next(lx), lx->tok != T_RP)) {
            syntax(lx, "expected NOW()");
            return -1;
        }
        v->t = V_TIME;
        v->ms = lx->c->now;
        const char *save = lx->p;
        next(lx);
        if (lx->tok == T_DUR && lx->start[0] == '-') { /* NOW() -7d lexed as one number */
            v->ms += lx->dur_ms;
            return 0;
        }
        if (lx->tok == T_BAD && lx->len == 1 && (lx->start[0] == '+' || lx->start[0] == '-')) {
            int sign = lx->start[0] == '-' ? -1 : 1;
            next(lx);
            if (lx->tok != T_DUR) {
                syntax(lx, "expected a duration (7d, 24h, 30m, 10s, 2w)");
                return -1;
            }
            v->ms += sign * lx->dur_ms;
            return 0;
        }
        lx->p = save; /* no arithmetic: leave the token for the caller */
        return 0;
    } else {
        syntax(lx, "expected a value");
        return -1;
    }
    return 0;
}

/* the attribute of an identifier: its column name and type; AGE is -2 */
static int attr_lookup(lexer *lx, char *name, size_t cap)
{
    if (lx->len >= cap) {
        syntax(lx, "attribute name too long");
        return -1;
    }
    for (size_t i = 0; i < lx->len; i++)
        name[i] = (char)tolower((unsigned char)lx->start[i]);
    name[lx->len] = '\0';
    if (strcmp(name, "age") == 0)
        return -2;
    int t = rte_member_attr_type(name);
    if (t < 0) {
        char why[320];
        snprintf(why, sizeof why, "unknown attribute '%.*s'", (int)lx->len, lx->start);
        syntax(lx, why);
        return -1;
    }
    return t;
}

/* one comparison "attr op value" as a leaf; type checks name the attribute */
static node *cmp_leaf(lexer *lx, const char *attr, int type, const char *op, const value *v)
{
    compiler *c = lx->c;
    int eq = !strcmp(op, "="), ne = !strcmp(op, "!=") || !strcmp(op, "<>");
    node *n = NULL;

    if (type == -2 || type == RTE_ATTR_NUM) {
        if (v->t != V_NUM)
            return syntax(lx, "expected a number");
        if (type == -2) {
            if (v->num != floor(v->num) || fabs(v->num) > 1000)
                return syntax(lx, "AGE compares with whole years");
            int64_t a = (int64_t)v->num;
            if (!strcmp(op, ">="))
                return leaf_age(c, a, -1);
            if (!strcmp(op, ">"))
                return leaf_age(c, a + 1, -1);
            /* an impossible age is an empty range: still absent (NULL) without a birth date */
            if (!strcmp(op, "<="))
                return a < 0 ? leaf_range(c, K_TIME, attr, 1, 0) : leaf_age(c, 0, a);
            if (!strcmp(op, "<"))
                return a <= 0 ? leaf_range(c, K_TIME, attr, 1, 0) : leaf_age(c, 0, a - 1);
            n = a < 0 ? leaf_range(c, K_TIME, attr, 1, 0) : leaf_age(c, a, a);
        } else {
            double x = v->num;
            if (!strcmp(op, ">="))
                return leaf_range(c, K_NUM, attr, num_ceil(x), INT64_MAX);
            if (!strcmp(op, ">"))
                return leaf_range(c, K_NUM, attr, num_floor(x) + 1, INT64_MAX);
            if (!strcmp(op, "<="))
                return leaf_range(c, K_NUM, attr, INT64_MIN, num_floor(x));
            if (!strcmp(op, "<"))
                return leaf_range(c, K_NUM, attr, INT64_MIN, num_ceil(x) - 1);
            n = leaf_range(c, K_NUM, attr, num_ceil(x), num_floor(x)); /* empty unless exact */
        }
    } else if (type == RTE_ATTR_TIME) {
        int64_t t;
        if (v->t == V_TIME)
            t = v->ms;
        else if (v->t != V_STR || time_of(v->str, &t) < 0)
            return syntax(lx, "expected a date ('YYYY-MM-DD'), a time or NOW() +- duration");
        if (!strcmp(op, ">="))
            return leaf_range(c, K_TIME, attr, t, INT64_MAX);
        if (!strcmp(op, ">"))
            return leaf_range(c, K_TIME, attr, t + 1, INT64_MAX);
        if (!strcmp(op, "<="))
            return leaf_range(c, K_TIME, attr, INT64_MIN, t);
        if (!strcmp(op, "<"))
            return leaf_range(c, K_TIME, attr, INT64_MIN, t - 1);
        n = leaf_range(c, K_TIME, attr, t, t);
    } else if (type == RTE_ATTR_BOOL) {
        if (v->t != V_BOOL)
            return syntax(lx, "expected TRUE or FALSE");
        if (!eq && !ne)
            return syntax(lx, "a flag compares with = or !=");
        return leaf_bool(c, attr, (int)v->num ^ ne);
    } else {
        if (v->t != V_STR)
            return syntax(lx, "expected a quoted string");
        if (!eq && !ne)
            return syntax(lx, "a string attribute compares with =, != or IN");
        char *one = (char *)v->str;
        if (!one[0])
            return syntax(lx, "empty string");
        n = type == RTE_ATTR_SET   ? leaf_set(c, attr, &one, 1, 0, "expression")
            : type == RTE_ATTR_STR ? leaf_strs(c, K_STR, attr, &one, 1, M_EXACT, "expression")
                                   : leaf_strs(c, K_ENUM, attr, &one, 1, M_EXACT, "expression");
        if (n && ne)
            negate(n);
        return n;
    }
    if (n && ne)
        negate(n);
    if (!n || (!eq && !ne))
        return n ? syntax(lx, "expected a comparison operator") : NULL;
    return n;
}

static node *parse_or(lexer *lx);

/* attr IN (v, ...) as an OR of equalities (one leaf for strings) */
static node *parse_in(lexer *lx, const char *attr, int type)
{
    compiler *c = lx->c;
    node * or = new_node(c, K_OR, NULL);
    char **strs = palloc(c, 256 * sizeof(*strs));
    size_t ns = 0;

    if (! or || !strs)
        return oom(c);
    next(lx);
    if (lx->tok != T_LP)
        return syntax(lx, "expected '(' after IN");
    for (;;) {
        value v;
        next(lx);
        if (parse_value(lx, &v) < 0)
            return NULL;
        if ((type == RTE_ATTR_ENUM || type == RTE_ATTR_SET || type == RTE_ATTR_STR) &&
            v.t == V_STR) {
            if (ns == 256)
                return syntax(lx, "more than 256 values in IN");
            if (!v.str[0])
                return syntax(lx, "empty string");
            if (!(strs[ns++] = pstrdup(c, v.str)))
                return oom(c);
        } else if (add_kid(c, or, cmp_leaf(lx, attr, type, "=", &v)) < 0) {
            return NULL;
        }
        next(lx);
        if (lx->tok == T_RP)
            break;
        if (lx->tok != T_COMMA)
            return syntax(lx, "expected ',' or ')'");
    }
    if (ns) {
        int kind = type == RTE_ATTR_SET ? K_SET : type == RTE_ATTR_STR ? K_STR : K_ENUM;
        node *l = leaf_strs(c, kind, attr, strs, ns, M_EXACT, "expression");
        if (add_kid(c, or, l) < 0)
            return NULL;
    }
    next(lx);
    return or ;
}

/* comparison | ( expr ) */
static node *parse_primary(lexer *lx)
{
    compiler *c = lx->c;
    char attr[128];

    if (lx->tok == T_LP) {
        if (++lx->depth > MAX_DEPTH)
            return syntax(lx, "nesting deeper than 64");
        next(lx);
        node *n = parse_or(lx);
        if (!n)
            return NULL;
        if (lx->tok != T_RP)
            return syntax(lx, "expected ')'");
        lx->depth--;
        next(lx);
        return n;
    }
    if (lx->tok != T_IDENT || is_kw(lx, "AND") || is_kw(lx, "OR") || is_kw(lx, "NOT"))
        return syntax(lx, "expected an attribute or '('");
    int type = attr_lookup(lx, attr, sizeof attr);
    if (type == -1)
        return NULL;
    const char *name = type == -2 ? "date_of_birth" : pstrdup(c, attr);
    if (!name)
        return oom(c);
    next(lx);
    int not = 0;
    if (is_kw(lx, "IS")) {
        next(lx);
        if (is_kw(lx, "NOT")) {
            not = 1;
            next(lx);
        }
        if (!is_kw(lx, "NULL"))
            return syntax(lx, "expected NULL");
        if (type == RTE_ATTR_BOOL || type == RTE_ATTR_SET)
            return syntax(lx, "a flag or list attribute is never NULL");
        next(lx);
        /* a range covering every value: false only when absent */
        node *n = new_node(c,
                           type == RTE_ATTR_NUM    ? K_NUM
                           : type == RTE_ATTR_ENUM ? K_ENUM
                           : type == RTE_ATTR_STR  ? K_STR
                                                   : K_TIME,
                           name);
        if (!n)
            return NULL;
        if (n->kind == K_ENUM || n->kind == K_STR)
            n->cval = 1; /* matches any present value */
        n->definite = 1;
        if (!not ) { /* IS NULL: true exactly when absent */
            n->neg = 1;
            n->nullv = 1;
        }
        return n;
    }
    if (is_kw(lx, "NOT")) {
        not = 1;
        next(lx);
    }
    node *n;
    if (is_kw(lx, "IN")) {
        n = parse_in(lx, name, type);
    } else if (is_kw(lx, "BETWEEN")) {
        value a, b;
        next(lx);
        if (parse_value(lx, &a) < 0)
            return NULL;
        next(lx);
        if (!is_kw(lx, "AND"))
            return syntax(lx, "expected AND in BETWEEN");
        next(lx);
        if (parse_value(lx, &b) < 0)
            return NULL;
        n = and_node(c);
        if (add_kid(c, n, cmp_leaf(lx, name, type, ">=", &a)) < 0 ||
            add_kid(c, n, cmp_leaf(lx, name, type, "<=", &b)) < 0)
            return NULL;
        next(lx);
    } else {
        if (not )
            return syntax(lx, "expected IN or BETWEEN after NOT");
        if (lx->tok != T_OP)
            return syntax(lx, "expected a comparison operator");
        char op[3];
        memcpy(op, lx->op, sizeof op);
        next(lx);
        value v;
        if (parse_value(lx, &v) < 0)
            return NULL;
        n = cmp_leaf(lx, name, type, op, &v);
        if (n)
            next(lx);
    }
    if (n && not )
        negate(n);
    return n;
}

static node *parse_not(lexer *lx)
{
    if (is_kw(lx, "NOT")) {
        if (++lx->depth > MAX_DEPTH)
            return syntax(lx, "nesting deeper than 64");
        next(lx);
        node *n = parse_not(lx);
        lx->depth--;
        if (n)
            negate(n);
        return n;
    }
    return parse_primary(lx);
}

static node *parse_and(lexer *lx)
{
    node *first = parse_not(lx);
    if (!first || !is_kw(lx, "AND"))
        return first;
    node *n = and_node(lx->c);
    if (add_kid(lx->c, n, first) < 0)
        return NULL;
    while (is_kw(lx, "AND")) {
        next(lx);
        if (add_kid(lx->c, n, parse_not(lx)) < 0)
            return NULL;
    }
    return n;
}

static node *parse_or(lexer *lx)
{
    node *first = parse_and(lx);
    if (!first || !is_kw(lx, "OR"))
        return first;
    node *n = new_node(lx->c, K_OR, NULL);
    if (add_kid(lx->c, n, first) < 0)
        return NULL;
    while (is_kw(lx, "OR")) {
        next(lx);
        if (add_kid(lx->c, n, parse_and(lx)) < 0)
            return NULL;
    }
    return n;
}

static node *parse_expression(compiler *c, const char *src)
{
    lexer lx = {c, src, src, 0, src, 0, 0, 0, {0}, 0};
    if (!src || !src[0])
        return bad(c, "expression: empty");
    if (strlen(src) > 65536)
        return bad(c, "expression: longer than 65536 bytes");
    next(&lx);
    node *n = parse_or(&lx);
    if (n && lx.tok != T_END)
        return syntax(&lx, "expected AND, OR or the end");
    return n;
}

/* --- MemberQuery to plan ------------------------------------------------------ */

#define HAS(f, x) ((f)->_##x##_case != 0)

/* names of enum values v (none may be 0 or unknown), mapped through map (NULL: as named) */
static char **enum_names(compiler *c, const ProtobufCEnumDescriptor *d, const int *v, size_t n,
                         const char *field)
{
    char **out = palloc(c, (n ? n : 1) * sizeof(*out));
    if (!out)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v[i]);
        if (v[i] == 0 || !ev)
            return bad(c, "member_query.%s[%zu]: %d is not a value to filter on", field, i, v[i]);
        out[i] = (char *)ev->name;
    }
    return out;
}

static int add_enum_in(compiler *c, node *and, const char *attr, const ProtobufCEnumDescriptor *d,
                       const int *v, size_t n, const char *field)
{
    if (!n)
        return 0;
    char **names = enum_names(c, d, v, n, field);
    if (!names)
        return -1;
    node *l = new_node(c, K_ENUM, attr);
    if (!l)
        return -1;
    l->vals = names;
    l->nvals = n;
    return add_kid(c, and, l);
}

static int add_strs(compiler *c, node *and, int kind, const char *attr, char *const *v, size_t n,
                    int match, const char *field)
{
    if (!n)
        return 0;
    return add_kid(c, and, leaf_strs(c, kind, attr, v, n, match, field));
}

static int add_time(compiler *c, node *and, const char *attr, const Rte__V1__Timestamp *after,
                    const Rte__V1__Timestamp *before)
{
    if (after && add_kid(c, and, leaf_range(c, K_TIME, attr, ts_ms(after), INT64_MAX)) < 0)
        return -1;
    if (before && add_kid(c, and, leaf_range(c, K_TIME, attr, INT64_MIN, ts_ms(before) - 1)) < 0)
        return -1;
    return 0;
}

/* amount bounds [lo, hi] from optional floats (has_lo/has_hi) */
static int add_amount(compiler *c, node *and, const char *attr, int has_lo, float lo, int has_hi,
                      float hi, const char *field)
{
    if (!has_lo && !has_hi)
        return 0;
    double l = float_value(lo), h = float_value(hi);
    if ((has_lo && (!isfinite(l) || l < 0)) || (has_hi && (!isfinite(h) || h < 0)))
        return bad(c, "member_query.%s: expected a non-negative number", field), -1;
    if (has_lo && has_hi && l > h)
        return bad(c, "member_query.%s: minimum above maximum", field), -1;
    return add_kid(c, and,
                   leaf_range(c, K_NUM, attr, has_lo ? num_ceil(l) : INT64_MIN,
                              has_hi ? num_floor(h) : INT64_MAX));
}

static int add_count(compiler *c, node *and, const char *attr, int has_lo, int32_t lo, int has_hi,
                     int32_t hi, const char *field)
{
    if (!has_lo && !has_hi)
        return 0;
    if ((has_lo && lo < 0) || (has_hi && hi < 0))
        return bad(c, "member_query.%s: expected a non-negative count", field), -1;
    if (has_lo && has_hi && lo > hi)
        return bad(c, "member_query.%s: minimum above maximum", field), -1;
    return add_kid(c, and,
                   leaf_range(c, K_NUM, attr, has_lo ? (int64_t)lo * 100 : INT64_MIN,
                              has_hi ? (int64_t)hi * 100 : INT64_MAX));
}

static int add_bool(compiler *c, node *and, int has, int v, const char *attr)
{
    return has ? add_kid(c, and, leaf_bool(c, attr, v)) : 0;
}

/* a time attribute within [lo, hi] as a flag: want = 0 is its negation, absent counting as no */
static int add_time_flag(compiler *c, node *and, int want, const char *attr, int64_t lo, int64_t hi)
{
    node *n = leaf_range(c, K_TIME, attr, lo, hi);
    if (!n)
        return -1;
    n->definite = 1;
    if (!want) {
        n->neg = 1;
        n->nullv = 1;
    }
    return add_kid(c, and, n);
}

/* a list attribute holding anything (want) or nothing (!want) */
static int add_nonempty(compiler *c, node *and, int want, const char *attr)
{
    node *n = leaf_set(c, attr, NULL, 0, 0, attr);
    if (!n)
        return -1;
    n->neg = !want;
    return add_kid(c, and, n);
}

static int add_enum_flag(compiler *c, node *and, int want, const char *attr, const char *value)
{
    char *v = (char *)value;
    node *n = leaf_strs(c, K_ENUM, attr, &v, 1, M_EXACT, attr);
    if (!n)
        return -1;
    n->definite = 1;
    if (!want) {
        n->neg = 1;
        n->nullv = 1;
    }
    return add_kid(c, and, n);
}

static int benefit(compiler *c, node *and, const Rte__V1__BenefitContractFilter *f)
{
    if (f->n_healthcare_service_ids &&
        add_kid(c, and,
                leaf_set(c, "healthcare_services", f->healthcare_service_ids,
                         f->n_healthcare_service_ids, 0,
                         "benefit_contract_filter.healthcare_service_ids")) < 0)
        return -1;
    if (add_strs(c, and, K_ENUM, "insurance_plan_id", f->insurance_plan_ids,
                 f->n_insurance_plan_ids, M_EXACT,
                 "benefit_contract_filter.insurance_plan_ids") < 0)
        return -1;
    if (f->active_at || f->include_future_contracts) {
        int64_t t = f->active_at ? ts_ms(f->active_at) : c->now;
        /* contract_end is the last day covered */
        if (add_kid(c, and, leaf_range(c, K_TIME, "contract_end", t - DAY_MS + 1, INT64_MAX)) < 0)
            return -1;
        if (!f->include_future_contracts &&
            add_kid(c, and, leaf_range(c, K_TIME, "contract_start", INT64_MIN, t)) < 0)
            return -1;
    }
    if (HAS(f, is_top_benefit)) {
        node *n =
            leaf_set(c, "top_benefits", f->healthcare_service_ids, f->n_healthcare_service_ids, 0,
                     "benefit_contract_filter.healthcare_service_ids");
        if (!n)
            return -1;
        n->neg = !f->is_top_benefit;
        if (add_kid(c, and, n) < 0)
            return -1;
    }
    return 0;
}

static int feature_option(compiler *c, node *and, const Rte__V1__FeatureOptionFilter *f, size_t i)
{
    char attr[300];
    if (!f->name || !f->name[0])
        return bad(c, "member_query.feature_options[%zu].name: empty", i), -1;
    snprintf(attr, sizeof attr, "feature_options.%s", f->name);
    int type = rte_member_attr_type(attr);
    if (type < 0)
        return bad(c, "member_query.feature_options[%zu].name: unknown feature option '%s'", i,
                   f->name),
               -1;
    static const int want_type[] = {-1, RTE_ATTR_BOOL, RTE_ATTR_ENUM, RTE_ATTR_NUM, -2};
    int ft = (int)f->type;
    if (ft < 0 || ft > 4 || ft == 4 || (ft != 0 && want_type[ft] != type))
        return bad(c, "member_query.feature_options[%zu].type: option '%s' is not of that type", i,
                   f->name),
               -1;
    const char *name = pstrdup(c, attr);
    const char *v = f->value ? f->value : "";
    int op = (int)f->operator_;
    node *n = NULL;
    if (op < 0 || op > 5)
        return bad(c, "member_query.feature_options[%zu].operator: unknown", i), -1;
    if (op == 0)
        op = 1; /* unspecified: EQUALS */
    if (type == RTE_ATTR_BOOL) {
        if (strcmp(v, "true") && strcmp(v, "false"))
            return bad(c, "member_query.feature_options[%zu].value: expected true or false", i), -1;
        if (op != 1 && op != 2)
            return bad(c,
                       "member_query.feature_options[%zu].operator: a BOOLEAN option takes "
                       "EQUALS or NOT_EQUALS",
                       i),
                   -1;
        n = leaf_bool(c, name, (strcmp(v, "true") == 0) ^ (op == 2));
    } else if (type == RTE_ATTR_NUM) {
        char *end;
        double x = strtod(v, &end);
        if (!v[0] || *end || !isfinite(x))
            return bad(c, "member_query.feature_options[%zu].value: expected a number", i), -1;
        if (op == 3)
            return bad(c,
                       "member_query.feature_options[%zu].operator: CONTAINS needs a STRING "
                       "option",
                       i),
                   -1;
        n = op == 4   ? leaf_range(c, K_NUM, name, num_floor(x) + 1, INT64_MAX)
            : op == 5 ? leaf_range(c, K_NUM, name, INT64_MIN, num_ceil(x) - 1)
                      : leaf_range(c, K_NUM, name, num_ceil(x), num_floor(x));
        if (n && op == 2)
            negate(n);
    } else {
        char *one = (char *)v;
        if (op == 4 || op == 5)
            return bad(c,
                       "member_query.feature_options[%zu].operator: GREATER_THAN and "
                       "LESS_THAN need a NUMBER option",
                       i),
                   -1;
        if (!v[0])
            return bad(c, "member_query.feature_options[%zu].value: empty", i), -1;
        n = leaf_strs(c, K_ENUM, name, &one, 1, op == 3 ? M_CONTAINS : M_EXACT,
                      "feature_options.value");
        if (n && op == 2)
            negate(n);
    }
    return add_kid(c, and, n);
}

static int predicate(compiler *c, node *and, const Rte__V1__PredicateFilter *f)
{
    int64_t saved = c->now;
    if (f->evaluated_at)
        c->now = ts_ms(f->evaluated_at);
    node *e = parse_expression(c, f->expression);
    c->now = saved;
    if (!e) {
        if (c->rc == RTE_MEMBER_QUERY_INVALID) { /* prefix the field */
            char why[512];
            snprintf(why, sizeof why, "%s", c->err);
            snprintf(c->err, c->errlen, "member_query.predicate_filter.%s", why);
        }
        return -1;
    }
    /* the predicates are the expression's top-level AND terms: all, or any of them */
    if (!f->require_all_predicates && e->kind == K_AND)
        e->kind = K_OR;
    if (add_kid(c, and, e) < 0)
        return -1;
    if (HAS(f, benefit_contract_id)) {
        char *v = f->benefit_contract_id;
        if (add_strs(c, and, K_ENUM, "benefit_contract_id", &v, 1, M_EXACT,
                     "predicate_filter.benefit_contract_id") < 0)
            return -1;
    }
    if (HAS(f, healthcare_service_id)) {
        char *v = f->healthcare_service_id;
        if (add_kid(c, and,
                    leaf_set(c, "healthcare_services", &v, 1, 0,
                             "predicate_filter.healthcare_service_id")) < 0)
            return -1;
    }
    return 0;
}

static int coverage(compiler *c, node *and, const Rte__V1__CoverageFilter *f)
{
    if (add_bool(c, and, HAS(f, has_dual_coverage), f->has_dual_coverage, "has_dual_coverage") ||
        add_enum_in(c, and, "coverage_type", &rte__v1__coverage_filter__coverage_type__descriptor,
                    (const int *)f->coverage_types, f->n_coverage_types,
                    "coverage_filter.coverage_types") ||
        add_strs(c, and, K_ENUM, "payer_name", f->payer_names, f->n_payer_names, M_EXACT,
                 "coverage_filter.payer_names") ||
        add_bool(c, and, HAS(f, is_file_based_enrollment), f->is_file_based_enrollment,
                 "is_file_based_enrollment") ||
        add_enum_in(c, and, "coverage_status",
                    &rte__v1__coverage_filter__coverage_status__descriptor,
                    (const int *)f->coverage_statuses, f->n_coverage_statuses,
                    "coverage_filter.coverage_statuses"))
        return -1;
    if (f->coverage_active_at) {
        int64_t t = ts_ms(f->coverage_active_at);
        if (add_kid(c, and, leaf_range(c, K_TIME, "coverage_start", INT64_MIN, t)) < 0 ||
            add_kid(c, and, leaf_range(c, K_TIME, "coverage_end", t - DAY_MS + 1, INT64_MAX)) < 0)
            return -1;
    }
    return 0;
}

static int plan(compiler *c, node *and, const Rte__V1__InsurancePlanFilter *f)
{
    static const struct {
        const char *attr;
        size_t off_case, off_val;
    } flags[] = {
#define F(x)                                                                                       \
    {#x, offsetof(Rte__V1__InsurancePlanFilter, _##x##_case),                                      \
     offsetof(Rte__V1__InsurancePlanFilter, x)}
        F(is_self_funded),
        F(has_hsa),
        F(has_hra),
        F(has_fsa),
        F(has_mental_health_coverage),
        F(has_prescription_coverage),
        F(has_dental_coverage),
        F(has_vision_coverage),
        F(has_telehealth_coverage),
        F(is_marketplace_plan),
        F(is_subsidized),
#undef F
    };
    if (add_strs(c, and, K_ENUM, "insurance_plan_id", f->insurance_plan_ids,
                 f->n_insurance_plan_ids, M_EXACT, "insurance_plan_filter.insurance_plan_ids") ||
        add_strs(c, and, K_ENUM, "payer_name", f->payer_names, f->n_payer_names, M_EXACT,
                 "insurance_plan_filter.payer_names") ||
        add_enum_in(c, and, "plan_type", &rte__v1__insurance_plan_filter__plan_type__descriptor,
                    (const int *)f->plan_types, f->n_plan_types,
                    "insurance_plan_filter.plan_types") ||
        add_enum_in(c, and, "network_type",
                    &rte__v1__insurance_plan_filter__network_type__descriptor,
                    (const int *)f->network_types, f->n_network_types,
                    "insurance_plan_filter.network_types") ||
        add_enum_in(c, and, "metal_tier", &rte__v1__insurance_plan_filter__metal_tier__descriptor,
                    (const int *)f->metal_tiers, f->n_metal_tiers,
                    "insurance_plan_filter.metal_tiers"))
        return -1;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        const char *base = (const char *)f;
        int has = *(const int *)(base + flags[i].off_case) != 0;
        int v = *(const protobuf_c_boolean *)(base + flags[i].off_val);
        if (add_bool(c, and, has, v, flags[i].attr) < 0)
            return -1;
    }
    if (add_amount(c, and, "individual_deductible", HAS(f, min_individual_deductible),
                   f->min_individual_deductible, HAS(f, max_individual_deductible),
                   f->max_individual_deductible,
                   "insurance_plan_filter.min_individual_deductible") ||
        add_amount(c, and, "family_deductible", HAS(f, min_family_deductible),
                   f->min_family_deductible, HAS(f, max_family_deductible),
                   f->max_family_deductible, "insurance_plan_filter.min_family_deductible") ||
        add_amount(c, and, "individual_oop_max", HAS(f, min_individual_oop_max),
                   f->min_individual_oop_max, HAS(f, max_individual_oop_max),
                   f->max_individual_oop_max, "insurance_plan_filter.min_individual_oop_max") ||
        add_strs(c, and, K_ENUM, "group_number", f->group_numbers, f->n_group_numbers, M_EXACT,
                 "insurance_plan_filter.group_numbers") ||
        add_strs(c, and, K_STR, "policy_number", f->policy_numbers, f->n_policy_numbers, M_EXACT,
                 "insurance_plan_filter.policy_numbers") ||
        add_strs(c, and, K_ENUM, "employer_id", f->employer_ids, f->n_employer_ids, M_EXACT,
                 "insurance_plan_filter.employer_ids") ||
        add_time(c, and, "plan_effective_date", f->plan_effective_after, f->plan_effective_before))
        return -1;
    if (HAS(f, renewing_within_days) || HAS(f, days_until_renewal)) {
        if (!HAS(f, days_until_renewal) || f->days_until_renewal < 0)
            return bad(c, "member_query.insurance_plan_filter.days_until_renewal: a number of "
                          "days >= 0 is needed with renewing_within_days"),
                   -1;
        int want = HAS(f, renewing_within_days) ? f->renewing_within_days : 1;
        if (add_time_flag(c, and, want, "plan_renewal_date", c->now - DAY_MS + 1,
                          c->now + (int64_t)f->days_until_renewal * DAY_MS) < 0)
            return -1;
    }
    return 0;
}

static int family(compiler *c, node *and, const Rte__V1__FamilyRelationshipFilter *f)
{
    if (add_enum_in(
            c, and, "member_role", &rte__v1__family_relationship_filter__member_role__descriptor,
            (const int *)f->member_roles, f->n_member_roles, "family_filter.member_roles") ||
        add_enum_in(
            c, and, "relationship", &rte__v1__family_relationship_filter__relationship__descriptor,
            (const int *)f->relationships, f->n_relationships, "family_filter.relationships") ||
        add_count(c, and, "family_size", HAS(f, min_family_size), f->min_family_size,
                  HAS(f, max_family_size), f->max_family_size, "family_filter.min_family_size") ||
        add_bool(c, and, HAS(f, has_family_members_enrolled), f->has_family_members_enrolled,
                 "has_family_members_enrolled"))
        return -1;
    if (HAS(f, has_dependents)) {
        node *n = leaf_range(c, K_NUM, "dependents_count", 100, INT64_MAX);
        if (!n)
            return -1;
        n->neg = !f->has_dependents;
        if (add_kid(c, and, n) < 0)
            return -1;
    }
    if (HAS(f, is_dependent) && add_enum_flag(c, and, !f->is_dependent, "relationship", "SELF"))
        return -1;
    return 0;
}

static int demographics(compiler *c, node *and, const Rte__V1__DemographicsFilter *f)
{
    static const int group_lo[] = {0, 0, 18, 35, 55, 65}, group_hi[] = {0, 17, 34, 54, 64, -1};
    if (HAS(f, min_age) || HAS(f, max_age)) {
        if ((HAS(f, min_age) && (f->min_age < 0 || f->min_age > 200)) ||
            (HAS(f, max_age) && (f->max_age < 0 || f->max_age > 200)))
            return bad(c, "member_query.demographics_filter.min_age: ages are 0 to 200"), -1;
        if (HAS(f, min_age) && HAS(f, max_age) && f->min_age > f->max_age)
            return bad(c, "member_query.demographics_filter.min_age: above max_age"), -1;
        if (add_kid(c, and,
                    leaf_age(c, HAS(f, min_age) ? f->min_age : 0,
                             HAS(f, max_age) ? f->max_age : -1)) < 0)
            return -1;
    }
    if (f->n_age_groups) {
        node * or = new_node(c, K_OR, NULL);
        for (size_t i = 0; i < f->n_age_groups; i++) {
            int g = (int)f->age_groups[i];
            if (g < 1 || g > 5)
                return bad(c,
                           "member_query.demographics_filter.age_groups[%zu]: %d is not a "
                           "value to filter on",
                           i, g),
                       -1;
            if (add_kid(c, or, leaf_age(c, group_lo[g], group_hi[g])) < 0)
                return -1;
        }
        if (add_kid(c, and, or) < 0)
            return -1;
    }
    if (add_strs(c, and, K_ENUM, "biological_sex", f->biological_sexes, f->n_biological_sexes,
                 M_EXACT, "demographics_filter.biological_sexes") ||
        add_strs(c, and, K_ENUM, "gender_identity", f->gender_identities, f->n_gender_identities,
                 M_EXACT, "demographics_filter.gender_identities") ||
        add_strs(c, and, K_ENUM, "state", f->states, f->n_states, M_EXACT,
                 "demographics_filter.states") ||
        add_strs(c, and, K_ENUM, "zip_code", f->zip_codes, f->n_zip_codes, M_PREFIX,
                 "demographics_filter.zip_codes") ||
        add_strs(c, and, K_ENUM, "city", f->cities, f->n_cities, M_EXACT,
                 "demographics_filter.cities") ||
        add_strs(c, and, K_ENUM, "language", f->preferred_spoken_languages,
                 f->n_preferred_spoken_languages, M_EXACT,
                 "demographics_filter.preferred_spoken_languages") ||
        add_strs(c, and, K_ENUM, "written_language", f->preferred_written_languages,
                 f->n_preferred_written_languages, M_EXACT,
                 "demographics_filter.preferred_written_languages") ||
        add_strs(c, and, K_ENUM, "race_ethnicity", f->race_ethnicities, f->n_race_ethnicities,
                 M_EXACT, "demographics_filter.race_ethnicities") ||
        add_bool(c, and, HAS(f, is_vip), f->is_vip, "is_vip") ||
        add_bool(c, and, HAS(f, is_do_not_contact), f->is_do_not_contact, "is_do_not_contact") ||
        add_bool(c, and, HAS(f, is_lgbtq_plus), f->is_lgbtq_plus, "is_lgbtq_plus"))
        return -1;
    return 0;
}

static int engagement(compiler *c, node *and, const Rte__V1__EngagementFilter *f)
{
    if (add_enum_in(c, and, "engagement_cohort",
                    &rte__v1__engagement_filter__engagement_cohort__descriptor,
                    (const int *)f->cohorts, f->n_cohorts, "engagement_filter.cohorts") ||
        add_time(c, and, "last_login_at", f->logged_in_after, f->logged_in_before) ||
        add_bool(c, and, HAS(f, has_completed_onboarding), f->has_completed_onboarding,
                 "has_completed_onboarding") ||
        (f->n_used_features &&
         add_kid(c, and,
                 leaf_set(c, "used_features", f->used_features, f->n_used_features, 0,
                          "engagement_filter.used_features")) < 0) ||
        add_bool(c, and, HAS(f, has_unread_messages), f->has_unread_messages,
                 "has_unread_messages") ||
        add_bool(c, and, HAS(f, has_sent_messages), f->has_sent_messages, "has_sent_messages") ||
        add_bool(c, and, HAS(f, push_notifications_enabled), f->push_notifications_enabled,
                 "push_notifications_enabled") ||
        add_bool(c, and, HAS(f, email_notifications_enabled), f->email_notifications_enabled,
                 "email_notifications_enabled"))
        return -1;
    if (HAS(f, has_upcoming_appointments) &&
        add_time_flag(c, and, f->has_upcoming_appointments, "upcoming_appointment_at", c->now,
                      INT64_MAX) < 0)
        return -1;
    return 0;
}

static int care(compiler *c, node *and, const Rte__V1__CareJourneyFilter *f)
{
    if (f->n_enrolled_programs) {
        char **names = enum_names(c, &rte__v1__care_journey_filter__program_type__descriptor,
                                  (const int *)f->enrolled_programs, f->n_enrolled_programs,
                                  "care_journey_filter.enrolled_programs");
        if (!names || add_kid(c, and,
                              leaf_set(c, "enrolled_programs", names, f->n_enrolled_programs, 0,
                                       "enrolled_programs")) < 0)
            return -1;
    }
    if ((HAS(f, has_active_service_deliveries) &&
         add_nonempty(c, and, f->has_active_service_deliveries, "service_delivery_types") < 0) ||
        (f->n_service_delivery_types &&
         add_kid(c, and,
                 leaf_set(c, "service_delivery_types", f->service_delivery_types,
                          f->n_service_delivery_types, 0,
                          "care_journey_filter.service_delivery_types")) < 0) ||
        (HAS(f, has_open_care_gaps) &&
         add_nonempty(c, and, f->has_open_care_gaps, "care_gaps") < 0) ||
        (f->n_care_gap_types &&
         add_kid(c, and,
                 leaf_set(c, "care_gaps", f->care_gap_types, f->n_care_gap_types, 0,
                          "care_journey_filter.care_gap_types")) < 0) ||
        add_bool(c, and, HAS(f, has_active_prescriptions), f->has_active_prescriptions,
                 "has_active_prescriptions") ||
        (f->n_chronic_conditions &&
         add_kid(c, and,
                 leaf_set(c, "chronic_conditions", f->chronic_conditions, f->n_chronic_conditions,
                          0, "care_journey_filter.chronic_conditions")) < 0) ||
        (HAS(f, has_recent_claims) && add_time_flag(c, and, f->has_recent_claims, "last_claim_at",
                                                    c->now - RECENT_MS, INT64_MAX) < 0) ||
        add_time(c, and, "last_claim_at", f->claims_after, NULL) ||
        add_bool(c, and, HAS(f, is_high_utilizer), f->is_high_utilizer, "is_high_utilizer"))
        return -1;
    return 0;
}

static int events(compiler *c, node *and, const Rte__V1__RecentEventFilter *f)
{
    static const struct {
        const char *type;
        size_t off_case, off_val;
    } has[] = {
#define H(x, t)                                                                                    \
    {t, offsetof(Rte__V1__RecentEventFilter, _##x##_case), offsetof(Rte__V1__RecentEventFilter, x)}
        H(has_signed_in_recently, "domain.authentication.v1.SIGNIN"),
        H(has_enrolled_recently, "domain.enrollment.v1.ENROLLED"),
        H(has_coverage_change, "domain.enrollment.v1.COVERAGE_CHANGED"),
        H(has_app_session, "domain.engagement.v1.APP_SESSION_STARTED"),
        H(has_viewed_homepage, "domain.engagement.v1.HOMEPAGE_VIEWED"),
        H(has_used_feature, "domain.engagement.v1.FEATURE_USED"),
        H(has_sent_message, "domain.messaging.v1.MESSAGE_SENT"),
        H(has_received_message, "domain.messaging.v1.MESSAGE_RECEIVED"),
        H(has_opened_notification, "domain.communications.v1.NOTIFICATION_OPENED"),
        H(has_booked_appointment, "domain.scheduling.v1.APPOINTMENT_BOOKED"),
        H(has_cancelled_appointment, "domain.scheduling.v1.APPOINTMENT_CANCELLED"),
        H(has_searched_provider, "domain.search.v1.PROVIDER_SEARCHED"),
        H(has_program_enrollment, "domain.care.v1.PROGRAM_ENROLLED"),
        H(has_service_delivery, "domain.care.v1.SERVICE_DELIVERED"),
        H(has_care_gap_activity, "domain.care.v1.CARE_GAP_UPDATED"),
        H(has_lab_result, "domain.clinical.v1.LAB_RESULT"),
        H(has_prescription_filled, "domain.clinical.v1.PRESCRIPTION_FILLED"),
        H(has_claim_processed, "domain.clinical.v1.CLAIM_PROCESSED"),
        H(has_eligibility_check, "domain.rte.v1.ELIGIBILITY_CHECKED"),
        H(had_eligibility_error, "domain.rte.v1.ELIGIBILITY_ERROR"),
#undef H
    };
    evspec *ev = palloc(c, sizeof(*ev));
    if (!ev)
        return oom(c), -1;
    ev->lo = INT64_MIN;
    ev->hi = INT64_MAX;
    ev->min_count = ev->max_count = -1;
    int selector = 0;
    for (size_t i = 0; i < f->n_event_categories; i++) {
        int cat = (int)f->event_categories[i];
        if (cat < 1 || cat > 14)
            return bad(c,
                       "member_query.recent_event_filter.event_categories[%zu]: %d is not a "
                       "value to filter on",
                       i, cat),
                   -1;
        ev->cats |= 1u << cat;
        selector = 1;
    }
    if (f->n_event_types && !(ev->types = copy_strs(c, f->event_types, f->n_event_types,
                                                    "recent_event_filter.event_types")))
        return -1;
    ev->ntypes = f->n_event_types;
    if (f->n_source_services &&
        !(ev->sources = copy_strs(c, f->source_services, f->n_source_services,
                                  "recent_event_filter.source_services")))
        return -1;
    ev->nsources = f->n_source_services;
    selector |= ev->ntypes || ev->nsources;
    if (f->events_after) {
        ev->lo = ts_ms(f->events_after);
        selector = 1;
    }
    if (f->events_before) {
        ev->hi = ts_ms(f->events_before);
        selector = 1;
    }
    if (f->within_last) {
        if (f->within_last->seconds < 0 || f->within_last->seconds > 100LL * 365 * 86400)
            return bad(c, "member_query.recent_event_filter.within_last: expected a positive "
                          "duration of at most 100 years"),
                   -1;
        int64_t d = f->within_last->seconds * 1000 + f->within_last->nanos / 1000000;
        if (d <= 0)
            return bad(c, "member_query.recent_event_filter.within_last: expected a positive "
                          "duration of at most 100 years"),
                   -1;
        if (c->now - d > ev->lo)
            ev->lo = c->now - d;
        selector = 1;
    }
    if (HAS(f, min_event_count) || HAS(f, max_event_count)) {
        if ((HAS(f, min_event_count) && f->min_event_count < 0) ||
            (HAS(f, max_event_count) && f->max_event_count < 0))
            return bad(c, "member_query.recent_event_filter.min_event_count: counts are >= 0"), -1;
        if (HAS(f, min_event_count) && HAS(f, max_event_count) &&
            f->min_event_count > f->max_event_count)
            return bad(c, "member_query.recent_event_filter.min_event_count: above "
                          "max_event_count"),
                   -1;
        ev->min_count = HAS(f, min_event_count) ? f->min_event_count : -1;
        ev->max_count = HAS(f, max_event_count) ? f->max_event_count : -1;
    } else if (selector) {
        ev->min_count = 1; /* selectors alone: at least one such event */
    }
    for (size_t i = 0; i < sizeof(has) / sizeof(has[0]); i++) {
        const char *base = (const char *)f;
        if (*(const int *)(base + has[i].off_case) == 0)
            continue;
        evhas *h = &ev->has[ev->nhas++];
        h->type = has[i].type;
        h->want = *(const protobuf_c_boolean *)(base + has[i].off_val);
    }
    if (f->n_feature_names) {
        evhas *h = NULL;
        for (int i = 0; i < ev->nhas; i++)
            if (!strcmp(ev->has[i].type, "domain.engagement.v1.FEATURE_USED"))
                h = &ev->has[i];
        if (!h) {
            h = &ev->has[ev->nhas++];
            h->type = "domain.engagement.v1.FEATURE_USED";
            h->want = 1;
        }
        if (!(h->features = copy_strs(c, f->feature_names, f->n_feature_names,
                                      "recent_event_filter.feature_names")))
            return -1;
        h->nfeatures = f->n_feature_names;
    }
    if (ev->min_count >= 0 || ev->max_count >= 0 || ev->nhas) {
        node *n = new_node(c, K_EVENTS, NULL);
        if (!n)
            return -1;
        n->ev = ev;
        if (add_kid(c, and, n) < 0)
            return -1;
    }
    if ((HAS(f, has_session_active) &&
         add_bool(c, and, 1, f->has_session_active, "session_active") < 0) ||
        (HAS(f, is_increasing_activity) &&
         add_enum_flag(c, and, f->is_increasing_activity, "activity_trend", "INCREASING") < 0) ||
        (HAS(f, is_decreasing_activity) &&
         add_enum_flag(c, and, f->is_decreasing_activity, "activity_trend", "DECREASING") < 0) ||
        (HAS(f, is_regular_pattern) &&
         add_bool(c, and, 1, f->is_regular_pattern, "regular_activity") < 0))
        return -1;
    return 0;
}

static int risk(compiler *c, node *and, const Rte__V1__RiskStratificationFilter *f)
{
    if (add_amount(c, and, "health_risk_score", HAS(f, min_health_risk_score),
                   f->min_health_risk_score, 0, 0,
                   "risk_stratification_filter.min_health_risk_score") ||
        add_amount(c, and, "churn_risk_score", HAS(f, min_churn_risk_score),
                   f->min_churn_risk_score, 0, 0,
                   "risk_stratification_filter.min_churn_risk_score") ||
        add_count(c, and, "annual_er_visits", HAS(f, min_annual_er_visits), f->min_annual_er_visits,
                  0, 0, "risk_stratification_filter.min_annual_er_visits") ||
        add_amount(c, and, "predicted_annual_cost", HAS(f, min_predicted_cost),
                   f->min_predicted_cost, 0, 0, "risk_stratification_filter.min_predicted_cost"))
        return -1;
    if (HAS(f, min_chronic_conditions)) {
        if (f->min_chronic_conditions < 0)
            return bad(c, "member_query.risk_stratification_filter.min_chronic_conditions: "
                          "expected a count >= 0"),
                   -1;
        if (add_kid(c, and,
                    leaf_range(c, K_SETCOUNT, "chronic_conditions", f->min_chronic_conditions,
                               INT64_MAX)) < 0)
            return -1;
    }
    return 0;
}

static int biometric(compiler *c, node *and, const Rte__V1__BiometricFilter *f)
{
    return (HAS(f, has_wearable_connected) &&
            add_nonempty(c, and, f->has_wearable_connected, "devices") < 0) ||
                   (f->n_device_types &&
                    add_kid(c, and,
                            leaf_set(c, "devices", f->device_types, f->n_device_types, 0,
                                     "biometric_filter.device_types")) < 0) ||
                   add_time(c, and, "biometric_data_at", f->biometric_data_after, NULL) ||
                   add_bool(c, and, HAS(f, has_step_data), f->has_step_data, "has_step_data") ||
                   add_bool(c, and, HAS(f, has_heart_rate_data), f->has_heart_rate_data,
                            "has_heart_rate_data") ||
                   add_bool(c, and, HAS(f, has_sleep_data), f->has_sleep_data, "has_sleep_data")
               ? -1
               : 0;
}

static int sdoh(compiler *c, node *and, const Rte__V1__SDOHFilter *f)
{
    return add_bool(c, and, HAS(f, has_transportation_barrier), f->has_transportation_barrier,
                    "has_transportation_barrier") ||
                   add_bool(c, and, HAS(f, has_food_insecurity), f->has_food_insecurity,
                            "has_food_insecurity") ||
                   add_bool(c, and, HAS(f, has_housing_instability), f->has_housing_instability,
                            "has_housing_instability") ||
                   add_bool(c, and, HAS(f, requires_digital_assistance),
                            f->requires_digital_assistance, "requires_digital_assistance") ||
                   add_bool(c, and, HAS(f, has_sdoh_screening), f->has_sdoh_screening,
                            "has_sdoh_screening")
               ? -1
               : 0;
}

static int provider(compiler *c, node *and, const Rte__V1__ProviderNetworkFilter *f)
{
    return add_bool(c, and, HAS(f, has_pcp_attributed), f->has_pcp_attributed,
                    "has_pcp_attributed") ||
                   add_strs(c, and, K_ENUM, "network_id", f->network_ids, f->n_network_ids, M_EXACT,
                            "provider_network_filter.network_ids") ||
                   add_time(c, and, "last_provider_visit_at", f->seen_provider_after, NULL) ||
                   (f->n_provider_types &&
                    add_kid(c, and,
                            leaf_set(c, "provider_types", f->provider_types, f->n_provider_types, 0,
                                     "provider_network_filter.provider_types")) < 0)
               ? -1
               : 0;
}

static int temporal(compiler *c, node *and, const Rte__V1__TemporalEventFilter *f)
{
    if ((HAS(f, has_recent_life_event) &&
         add_time_flag(c, and, f->has_recent_life_event, "life_event_at", c->now - RECENT_MS,
                       INT64_MAX) < 0) ||
        (f->n_life_event_types &&
         add_kid(c, and,
                 leaf_set(c, "life_events", f->life_event_types, f->n_life_event_types, 0,
                          "temporal_event_filter.life_event_types")) < 0) ||
        (HAS(f, in_open_enrollment_period) &&
         add_time_flag(c, and, f->in_open_enrollment_period, "plan_renewal_date", c->now + 1,
                       c->now + OPEN_ENROLLMENT_MS) < 0))
        return -1;
    if (HAS(f, coverage_expiring_within_days) || f->days_until_expiration) {
        if (f->days_until_expiration <= 0)
            return bad(c, "member_query.temporal_event_filter.days_until_expiration: a number of "
                          "days > 0 is needed with coverage_expiring_within_days"),
                   -1;
        int want = HAS(f, coverage_expiring_within_days) ? f->coverage_expiring_within_days : 1;
        if (add_time_flag(c, and, want, "coverage_end", c->now - DAY_MS + 1,
                          c->now + (int64_t)f->days_until_expiration * DAY_MS) < 0)
            return -1;
    }
    if (HAS(f, enrollment_anniversary_within_days)) {
        node *n = leaf_range(c, K_ANNIV, "enrollment_date", ANNIVERSARY_DAYS, 0);
        if (!n)
            return -1;
        n->neg = !f->enrollment_anniversary_within_days;
        if (add_kid(c, and, n) < 0)
            return -1;
    }
    return 0;
}

static int account_statuses(compiler *c, node *and, const Rte__V1__MemberQuery *q)
{
    if (!q->n_account_statuses)
        return 0;
    char **names = palloc(c, q->n_account_statuses * sizeof(*names));
    if (!names)
        return oom(c), -1;
    for (size_t i = 0; i < q->n_account_statuses; i++) {
        int v = (int)q->account_statuses[i];
        static const char *const dir_name[] = {NULL,        "ACTIVE",  "INACTIVE",
                                               "SUSPENDED", "PENDING", "DEPRECATED"};
        if (v < 1 || v > 5)
            return bad(c, "member_query.account_statuses[%zu]: %d is not a value to filter on", i,
                       v),
                   -1;
        names[i] = (char *)dir_name[v]; /* the directory's PENDING is PENDING_ACTIVATION */
    }
    node *n = new_node(c, K_ENUM, "account_status");
    if (!n)
        return -1;
    n->vals = names;
    n->nvals = q->n_account_statuses;
    return add_kid(c, and, n);
}

static int flags(compiler *c, node *and, const Rte__V1__MemberQuery *q)
{
    for (size_t i = 0; i < q->n_required_feature_flags; i++) {
        const Rte__V1__MemberQuery__RequiredFeatureFlagsEntry *e = q->required_feature_flags[i];
        if (!e->key || !e->key[0])
            return bad(c, "member_query.required_feature_flags: an empty flag name"), -1;
        char *k = e->key;
        node *n = leaf_strs(c, K_FLAG, NULL, &k, 1, M_EXACT, "required_feature_flags");
        if (!n)
            return -1;
        n->neg = !e->value;
        if (add_kid(c, and, n) < 0)
            return -1;
    }
    return 0;
}

/* --- cursor ---------------------------------------------------------------- */

static const char hexd[] = "0123456789abcdef";

/* "v1" sort desc null key hexname hexid, as hex of the whole (opaque to callers) */
static void cursor_make(const rte_member_query *q, int null, int64_t key, const char *name,
                        const char *id, char *out, size_t cap)
{
    char raw[RTE_MEMBER_QUERY_CURSOR_MAX / 2];
    int n = snprintf(raw, sizeof raw, "v1|%d|%d|%d|%lld|%s|%s", q->sort, q->desc, null,
                     (long long)key, name ? name : "", id);
    size_t j = 0;
    if (n < 0 || (size_t)n >= sizeof raw || (size_t)n * 2 + 1 > cap) {
        out[0] = '\0';
        return;
    }
    for (int i = 0; i < n; i++) {
        out[j++] = hexd[(unsigned char)raw[i] >> 4];
        out[j++] = hexd[(unsigned char)raw[i] & 15];
    }
    out[j] = '\0';
}

static int cursor_read(compiler *c, const char *cur)
{
    rte_member_query *q = c->q;
    char raw[RTE_MEMBER_QUERY_CURSOR_MAX / 2 + 1];
    size_t n = strlen(cur);
    if (n % 2 || n / 2 >= sizeof raw)
        return bad(c, "member_query.cursor: not a cursor of this service"), -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = rte_hex_digit(cur[2 * i]), lo = rte_hex_digit(cur[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return bad(c, "member_query.cursor: not a cursor of this service"), -1;
        raw[i] = (char)(hi * 16 + lo);
        if (!raw[i])
            return bad(c, "member_query.cursor: not a cursor of this service"), -1;
    }
    raw[n / 2] = '\0';
    long long key;
    int sort, desc, null, used = 0;
    if (sscanf(raw, "v1|%d|%d|%d|%lld|%n", &sort, &desc, &null, &key, &used) != 4 || !used)
        return bad(c, "member_query.cursor: not a cursor of this service"), -1;
    const char *rest = raw + used, *bar = strchr(rest, '|');
    if (!bar || (size_t)(bar - rest) >= sizeof q->cursor_name ||
        strlen(bar + 1) >= sizeof q->cursor_id || !bar[1])
        return bad(c, "member_query.cursor: not a cursor of this service"), -1;
    if (sort != q->sort || desc != q->desc)
        return bad(c, "member_query.cursor: made for another sort_order"), -1;
    memcpy(q->cursor_name, rest, (size_t)(bar - rest));
    q->cursor_name[bar - rest] = '\0';
    snprintf(q->cursor_id, sizeof q->cursor_id, "%s", bar + 1);
    q->cursor_null = null;
    q->cursor_key = key;
    q->has_cursor = 1;
    return 0;
}

/* --- compile ------------------------------------------------------------------ */

static int compile(compiler *c, const Rte__V1__MemberQuery *m)
{
    node *and = and_node(c);
    rte_member_query *q = c->q;
    if (!and)
        return -1;
    q->root = and;
    if (add_strs(c, and, K_ENUM, "sponsor_id", m->sponsor_ids, m->n_sponsor_ids, M_EXACT,
                 "sponsor_ids") ||
        add_strs(c, and, K_ENUM, "population_id", m->population_ids, m->n_population_ids, M_EXACT,
                 "population_ids") ||
        (m->benefit_contract_filter && benefit(c, and, m->benefit_contract_filter)) ||
        flags(c, and, m))
        return -1;
    for (size_t i = 0; i < m->n_feature_options; i++)
        if (feature_option(c, and, m->feature_options[i], i) < 0)
            return -1;
    if ((m->predicate_filter && predicate(c, and, m->predicate_filter)) ||
        (m->has_rte_enabled && add_bool(c, and, 1, 1, "has_rte_enabled")) ||
        add_time(c, and, "last_eligibility_check_at", m->eligibility_checked_after,
                 m->eligibility_checked_before) ||
        (m->coverage_filter && coverage(c, and, m->coverage_filter)) ||
        (m->insurance_plan_filter && plan(c, and, m->insurance_plan_filter)) ||
        (m->family_filter && family(c, and, m->family_filter)) ||
        (m->demographics_filter && demographics(c, and, m->demographics_filter)) ||
        add_time(c, and, "last_login_at", m->last_active_after, m->last_active_before))
        return -1;
    if (m->min_app_usage_probability != 0) {
        double p = float_value(m->min_app_usage_probability);
        if (!(p >= 0 && p <= 1))
            return bad(c, "member_query.min_app_usage_probability: expected 0.0 to 1.0"), -1;
        if (add_kid(c, and, leaf_range(c, K_NUM, "app_usage_probability", num_ceil(p), INT64_MAX)) <
            0)
            return -1;
    }
    if ((m->engagement_filter && engagement(c, and, m->engagement_filter)) ||
        (m->care_journey_filter && care(c, and, m->care_journey_filter)) ||
        (m->recent_event_filter && events(c, and, m->recent_event_filter)) ||
        account_statuses(c, and, m) ||
        (m->exclude_mock_accounts && add_bool(c, and, 1, 0, "is_mock")) ||
        (m->risk_stratification_filter && risk(c, and, m->risk_stratification_filter)) ||
        (m->biometric_filter && biometric(c, and, m->biometric_filter)) ||
        (m->sdoh_filter && sdoh(c, and, m->sdoh_filter)) ||
        (m->provider_network_filter && provider(c, and, m->provider_network_filter)) ||
        (m->temporal_event_filter && temporal(c, and, m->temporal_event_filter)))
        return -1;
    if (m->limit < 0)
        return bad(c, "member_query.limit: expected 0 (all) or more"), -1;
    q->limit = (size_t)m->limit;
    if (m->sort_order) {
        int f = (int)m->sort_order->field, d = (int)m->sort_order->direction;
        if (f < 0 || f > 5)
            return bad(c, "member_query.sort_order.field: %d is not a field", f), -1;
        if (d < 0 || d > 2)
            return bad(c, "member_query.sort_order.direction: %d is not a direction", d), -1;
        q->sort = f; /* enum sort_field follows SortOrder.Field */
        q->desc = d == 2;
    }
    if (m->cursor && m->cursor[0] && cursor_read(c, m->cursor) < 0)
        return -1;
    return 0;
}

static rte_member_query *finish(compiler *c, int ok, int *rc)
{
    if (!ok || c->rc) {
        if (!c->rc)
            oom(c);
        *rc = c->rc;
        rte_member_query_free(c->q);
        return NULL;
    }
    *rc = 0;
    return c->q;
}

/* rte_member_query_new - any thread; no shared state */
rte_member_query *rte_member_query_new(const Rte__V1__MemberQuery *m, int64_t now_ms, int *rc,
                                       char *err, size_t errlen)
{
    compiler c = {calloc(1, sizeof(rte_member_query)), now_ms, err, errlen, 0};
    if (!c.q) {
        snprintf(err, errlen, "member_query: out of memory");
        *rc = -1;
        return NULL;
    }
    if (!m)
        bad(&c, "member_query: missing");
    c.q->now = now_ms;
    return finish(&c, m && compile(&c, m) == 0, rc);
}

/* rte_member_query_parse - any thread; no shared state */
rte_member_query *rte_member_query_parse(const char *expression, int64_t now_ms, int *rc, char *err,
                                         size_t errlen)
{
    compiler c = {calloc(1, sizeof(rte_member_query)), now_ms, err, errlen, 0};
    if (!c.q) {
        snprintf(err, errlen, "member_query: out of memory");
        *rc = -1;
        return NULL;
    }
    c.q->now = now_ms;
    c.q->root = parse_expression(&c, expression);
    return finish(&c, c.q->root != NULL, rc);
}

/* rte_member_query_free - any thread once no resolve uses q */
void rte_member_query_free(rte_member_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nallocs; i++)
        free(q->allocs[i]);
    free(q->allocs);
    free(q);
}

/* --- binding to a snapshot ----------------------------------------------------- */

typedef struct bnode {
    const node *n;
    struct bnode *kids;
    const rte_member_column *col;
    uint8_t *table; /* K_ENUM: per code; K_EVENTS: per code, bit 0 type, 1 source */
    size_t ntable;
    uint32_t mask;
    int impossible; /* a value of an all-set that no member has */
    int flag_bit;
    /* K_ENUM IN of rare codes only: their posting lists and how many members they hold */
    const rte_member_postings *post;
    size_t post_hits;
    /* K_EVENTS: has types as codes; features as a table */
    uint16_t has_code[24];
    uint8_t *feat_table[24];
    uint32_t lo_s, hi_s; /* window in seconds [lo, hi) */
    /* K_EVENTS from the events index: ranges of evx->ent holding every match */
    const rte_member_event_index *evx;
    size_t *evr; /* nevr [from, to) pairs */
    size_t nevr, ev_hits;
    double rank; /* AND order: cost / share of candidates it removes */
} bnode;

typedef struct binder {
    const rte_member_snapshot *s;
    size_t nvalues; /* codes 0 .. nvalues - 1 */
    char *err;
    size_t errlen;
} binder;

static void unbind(bnode *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->kids && i < b->n->nkids; i++)
        unbind(&b->kids[i]);
    free(b->kids);
    free(b->table);
    free(b->evr);
    for (int i = 0; i < 24; i++)
        free(b->feat_table[i]);
}

static int str_match(const char *v, const node *n)
{
    if (n->cval) /* IS NOT NULL over strings: any present value */
        return v[0] != '\0';
    for (size_t i = 0; i < n->nvals; i++) {
        const char *x = n->vals[i];
        if (n->match == M_EXACT    ? strcmp(v, x) == 0
            : n->match == M_PREFIX ? strncmp(v, x, strlen(x)) == 0
                                   : strstr(v, x) != NULL)
            return 1;
    }
    return 0;
}

/* a table over every code: 1 where the code's string matches vals */
static uint8_t *code_table(binder *bd, const node *n, size_t *len)
{
    uint8_t *t = calloc(bd->nvalues ? bd->nvalues : 1, 1);
    if (!t)
        return NULL;
    *len = bd->nvalues;
    if (n->match == M_EXACT && !n->cval) {
        for (size_t i = 0; i < n->nvals; i++) {
            uint32_t id = rte_member_snapshot_value_id(bd->s, n->vals[i]);
            if (id && id < bd->nvalues)
                t[id] = 1;
        }
        return t;
    }
    for (size_t id = 1; id < bd->nvalues; id++)
        t[id] = (uint8_t)str_match(rte_member_snapshot_value(bd->s, (uint32_t)id), n);
    return t;
}

static uint8_t *names_table(binder *bd, char *const *v, size_t nv)
{
    uint8_t *t = calloc(bd->nvalues ? bd->nvalues : 1, 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < nv; i++) {
        uint32_t id = rte_member_snapshot_value_id(bd->s, v[i]);
        if (id && id < bd->nvalues)
            t[id] = 1;
    }
    return t;
}

static uint32_t clamp_s(int64_t ms, int up)
{
    if (ms <= 0)
        return 0;
    int64_t s = up ? (ms + 999) / 1000 : ms / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/*
 * the events index for K_EVENTS leaf b (not negated): every match needs an
 * event in the window of the counted types (min_count >= 1) and one of each
 * has_* type asked true; of these conditions the one with the fewest index
 * entries gives the candidates (a superset, checked event by event after)
 */
static int bind_event_index(binder *bd, bnode *b)
{
    const evspec *ev = b->n->ev;
    const rte_member_event_index *x = rte_member_snapshot_event_index(bd->s);
    size_t best = SIZE_MAX, from, to;
    int pick = -2; /* -1: the counted types; h >= 0: has[h] */

    if (!x)
        return 0; /* out of memory for the index: the leaf reads every candidate's events */
    if (ev->min_count >= 1) {
        size_t sum = 0;
        for (size_t t = 0; t < x->ntypes; t++) {
            uint16_t v = x->types[t];
            if ((ev->cats && !((ev->cats >> x->category[t]) & 1)) ||
                (ev->ntypes && !(v < bd->nvalues && (b->table[v] & 1))))
                continue;
            rte_member_event_index_range(x, v, b->lo_s, b->hi_s, &from, &to);
            sum += to - from;
        }
        best = sum;
        pick = -1;
    }
    for (int h = 0; h < ev->nhas; h++) {
        if (!ev->has[h].want)
            continue;
        rte_member_event_index_range(x, b->has_code[h], b->lo_s, b->hi_s, &from, &to);
        if (to - from < best) {
            best = to - from;
            pick = h;
        }
    }
    if (pick == -2)
        return 0; /* nothing every match needs (max_event_count alone, has_*: false) */
    b->evr = malloc((pick == -1 && x->ntypes ? x->ntypes : 1) * 2 * sizeof(*b->evr));
    if (!b->evr)
        return -1;
    for (size_t t = 0; pick == -1 && t < x->ntypes; t++) {
        uint16_t v = x->types[t];
        if ((ev->cats && !((ev->cats >> x->category[t]) & 1)) ||
            (ev->ntypes && !(v < bd->nvalues && (b->table[v] & 1))))
            continue;
        rte_member_event_index_range(x, v, b->lo_s, b->hi_s, &from, &to);
        if (to > from) {
            b->evr[2 * b->nevr] = from;
            b->evr[2 * b->nevr++ + 1] = to;
        }
    }
    if (pick >= 0) {
        rte_member_event_index_range(x, b->has_code[pick], b->lo_s, b->hi_s, &from, &to);
        b->evr[0] = from;
        b->evr[1] = to;
        b->nevr = to > from;
    }
    b->evx = x;
    b->ev_hits = best;
    return 0;
}

static int bind(binder *bd, const node *n, bnode *b)
{
    memset(b, 0, sizeof(*b));
    b->n = n;
    if (n->nkids) {
        b->kids = calloc(n->nkids, sizeof(*b->kids));
        if (!b->kids)
            return -1;
        for (size_t i = 0; i < n->nkids; i++)
            if (bind(bd, n->kids[i], &b->kids[i]) < 0)
                return -1;
        return 0;
    }
    if (n->attr && n->kind != K_FLAG) {
        b->col = rte_member_snapshot_column(bd->s, n->attr);
        if (!b->col) { /* compiled names are checked; a mismatch is a bug */
            snprintf(bd->err, bd->errlen, "member_query: no column '%s'", n->attr);
            return -1;
        }
    }
    switch (n->kind) {
    case K_ENUM:
        b->table = code_table(bd, n, &b->ntable);
        if (!b->table)
            return -1;
        if (!n->neg && !n->nullv) /* a plain IN: its members may come from posting lists */
            b->post = rte_member_snapshot_postings(bd->s, n->attr);
        for (size_t v = 1; b->post && v < b->ntable; v++) {
            if (!b->table[v])
                continue;
            if (v >= b->post->nvalues || b->post->count[v] > b->post->rare_max)
                b->post = NULL; /* a common value: the column scan is as cheap */
            else
                b->post_hits += b->post->count[v];
        }
        return 0;
    case K_SET:
        if (!n->nvals) {
            b->mask = UINT32_MAX;
            return 0;
        }
        for (size_t i = 0; i < n->nvals; i++) {
            int found = 0;
            for (int k = 0; k < b->col->nset; k++)
                if (strcmp(b->col->set_names[k], n->vals[i]) == 0) {
                    b->mask |= 1u << k;
                    found = 1;
                }
            if (!found && n->all)
                b->impossible = 1;
        }
        return 0;
    case K_FLAG: {
        const char *const *names;
        size_t nf = rte_member_snapshot_flags(bd->s, &names);
        b->flag_bit = -1;
        for (size_t i = 0; i < nf; i++)
            if (strcmp(names[i], n->vals[0]) == 0)
                b->flag_bit = (int)i;
        return 0;
    }
    case K_EVENTS: {
        const evspec *ev = n->ev;
        b->table = calloc(bd->nvalues ? bd->nvalues : 1, 1);
        if (!b->table)
            return -1;
        for (size_t i = 0; i < ev->ntypes; i++) {
            uint32_t id = rte_member_snapshot_value_id(bd->s, ev->types[i]);
            if (id && id < bd->nvalues)
                b->table[id] |= 1;
        }
        for (size_t i = 0; i < ev->nsources; i++) {
            uint32_t id = rte_member_snapshot_value_id(bd->s, ev->sources[i]);
            if (id && id < bd->nvalues)
                b->table[id] |= 2;
        }
        for (int i = 0; i < ev->nhas; i++) {
            uint32_t id = rte_member_snapshot_value_id(bd->s, ev->has[i].type);
            b->has_code[i] = id <= UINT16_MAX ? (uint16_t)id : 0;
            if (ev->has[i].nfeatures &&
                !(b->feat_table[i] = names_table(bd, ev->has[i].features, ev->has[i].nfeatures)))
                return -1;
        }
        b->lo_s = clamp_s(ev->lo, 1);
        b->hi_s = ev->hi == INT64_MAX ? UINT32_MAX : clamp_s(ev->hi, 1);
        return n->neg ? 0 : bind_event_index(bd, b);
    }
    default:
        return 0;
    }
}

/* --- evaluation ----------------------------------------------------------------- */

typedef struct evalctx {
    const rte_member_snapshot *s;
    size_t count, words;
    int64_t now;
} evalctx;

static int events_match(const evalctx *x, const bnode *b, size_t i)
{
    const evspec *ev = b->n->ev;
    const rte_member_event *e;
    size_t n = rte_member_snapshot_events(x->s, i, &e);
    int64_t count = 0;
    uint32_t seen = 0;

    for (size_t k = 0; k < n; k++) {
        if (e[k].at_s < b->lo_s || e[k].at_s >= b->hi_s)
            continue;
        for (int h = 0; h < ev->nhas; h++)
            if (e[k].type == b->has_code[h] && b->has_code[h] &&
                (!b->feat_table[h] || b->feat_table[h][e[k].feature]))
                seen |= 1u << h;
        if ((!ev->cats || (ev->cats >> e[k].category) & 1) &&
            (!ev->ntypes || (b->table[e[k].type] & 1)) &&
            (!ev->nsources || (b->table[e[k].source] & 2)))
            count++;
    }
    if (ev->min_count >= 0 && count < ev->min_count)
        return 0;
    if (ev->max_count >= 0 && count > ev->max_count)
        return 0;
    for (int h = 0; h < ev->nhas; h++)
        if ((int)((seen >> h) & 1) != ev->has[h].want)
            return 0;
    return 1;
}

/* the next anniversary of date ms (month and day) falls within days of now */
static int anniversary_within(int64_t ms, int64_t now, int64_t days)
{
    int64_t y, yn;
    int m, d, mn, dn;
    rte_civil_from_days(ms / DAY_MS, &y, &m, &d);
    int64_t today = now >= 0 ? now / DAY_MS : -((-now + DAY_MS - 1) / DAY_MS);
    rte_civil_from_days(today, &yn, &mn, &dn);
    int64_t next = days_of(yn, m, d);
    if (next < today)
        next = days_of(yn + 1, m, d);
    return next - today <= days;
}

/*
 * leaf b for the candidates m among the 64 members from base: only their bits
 * are computed (after a selective leaf most words hold a few candidates)
 */
static uint64_t leaf_word(const evalctx *x, const bnode *b, size_t base, uint64_t m)
{
    const node *nd = b->n;
    const rte_member_column *c = b->col;
    uint64_t r = 0;
    int neg = nd->neg, nullv = nd->nullv;

    switch (nd->kind) {
    case K_CONST:
        return nd->cval ? UINT64_MAX : 0;
    case K_BOOL:
        r = c->bits[base >> 6];
        return neg ? ~r : r;
    case K_NUM:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            int32_t v = c->num[base + k];
            int bit = v == RTE_ATTR_NUM_ABSENT ? nullv : ((v >= nd->lo && v <= nd->hi) ^ neg);
            r |= (uint64_t)bit << k;
        }
        return r;
    case K_TIME:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            int64_t v = c->time[base + k];
            int bit = v == RTE_ATTR_TIME_ABSENT ? nullv : ((v >= nd->lo && v <= nd->hi) ^ neg);
            r |= (uint64_t)bit << k;
        }
        return r;
    case K_ENUM:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            uint16_t v = c->code[base + k];
            int bit = v == 0 ? nullv : ((v < b->ntable && b->table[v]) ^ neg);
            r |= (uint64_t)bit << k;
        }
        return r;
    case K_STR:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            const char *v = c->str[base + k];
            int bit = !v[0] ? nullv : (str_match(v, nd) ^ neg);
            r |= (uint64_t)bit << k;
        }
        return r;
    case K_SET:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            uint32_t v = c->set[base + k];
            int m = nd->all ? !b->impossible && (v & b->mask) == b->mask : (v & b->mask) != 0;
            r |= (uint64_t)(m ^ neg) << k;
        }
        return r;
    case K_SETCOUNT:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            int cnt = __builtin_popcount(c->set[base + k]);
            r |= (uint64_t)((cnt >= nd->lo && cnt <= nd->hi) ^ neg) << k;
        }
        return r;
    case K_FLAG:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            const rte_member *mem = rte_member_snapshot_at(x->s, base + k);
            int on = b->flag_bit >= 0 && ((mem->feature_flags >> b->flag_bit) & 1);
            r |= (uint64_t)(on ^ neg) << k;
        }
        return r;
    case K_EVENTS:
        for (uint64_t t = m, k; t && (k = (uint64_t)__builtin_ctzll(t), 1); t &= t - 1)
            r |= (uint64_t)(events_match(x, b, base + k) ^ neg) << k;
        return r;
    case K_ANNIV:
        for (uint64_t t = m; t; t &= t - 1) {
            size_t k = (size_t)__builtin_ctzll(t);
            int64_t v = c->time[base + k];
            int bit =
                v == RTE_ATTR_TIME_ABSENT ? nullv : (anniversary_within(v, x->now, nd->lo) ^ neg);
            r |= (uint64_t)bit << k;
        }
        return r;
    default:
        return 0;
    }
}

static int node_cost(const node *n)
{
    static const int cost[] = {
        [K_CONST] = 0, [K_BOOL] = 1, [K_ENUM] = 2,  [K_SET] = 2,   [K_SETCOUNT] = 3, [K_NUM] = 3,
        [K_TIME] = 4,  [K_STR] = 6,  [K_ANNIV] = 8, [K_FLAG] = 10, [K_EVENTS] = 20};
    if (n->kind == K_AND || n->kind == K_OR) {
        int sum = 0;
        for (size_t i = 0; i < n->nkids; i++)
            sum += node_cost(n->kids[i]);
        return sum;
    }
    return cost[n->kind];
}

static int cmp_rank(const void *a, const void *b)
{
    const bnode *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* out = in AND b for an IN of rare codes, from their posting lists (out may be in) */
static int eval_postings(const evalctx *x, const bnode *b, const uint64_t *in, uint64_t *out)
{
    const rte_member_postings *p = b->post;
    uint64_t *hit = calloc(x->words ? x->words : 1, sizeof(*hit));
    if (!hit)
        return -1;
    for (size_t v = 1; v < b->ntable && v < p->nvalues; v++) {
        if (!b->table[v])
            continue;
        for (uint32_t j = p->off[v]; j < p->off[v + 1]; j++) {
            uint32_t i = p->idx[j];
            hit[i >> 6] |= in[i >> 6] & (1ULL << (i & 63));
        }
    }
    memcpy(out, hit, x->words * sizeof(*out));
    free(hit);
    return 0;
}

/* out = in AND b for events leaf b from the index: its entries' members, then their events */
static int eval_event_index(const evalctx *x, const bnode *b, const uint64_t *in, uint64_t *out)
{
    uint64_t *hit = calloc(x->words ? x->words : 1, sizeof(*hit));
    if (!hit)
        return -1;
    for (size_t r = 0; r < b->nevr; r++)
        for (size_t j = b->evr[2 * r]; j < b->evr[2 * r + 1]; j++) {
            uint32_t i = (uint32_t)b->evx->ent[j]; /* the low half: the member index */
            hit[i >> 6] |= in[i >> 6] & (1ULL << (i & 63));
        }
    for (size_t w = 0; w < x->words; w++)
        out[w] = hit[w] ? hit[w] & leaf_word(x, b, w * 64, hit[w]) : 0;
    free(hit);
    return 0;
}

/* out = in AND b, word by word (only words where in is non-zero are computed) */
static int eval(const evalctx *x, bnode *b, const uint64_t *in, uint64_t *out)
{
    const node *n = b->n;
    size_t words = x->words;

    if (n->kind == K_AND) {
        if (out != in)
            memcpy(out, in, words * sizeof(*out));
        for (size_t i = 0; i < n->nkids; i++)
            if (eval(x, &b->kids[i], out, out) < 0)
                return -1;
        return 0;
    }
    if (n->kind == K_OR) {
        uint64_t *acc = calloc(words, sizeof(*acc)), *tmp = malloc(words * sizeof(*tmp));
        uint64_t *rest = malloc(words * sizeof(*rest));
        int rc = -1;
        if (!acc || !tmp || !rest)
            goto out;
        for (size_t i = 0; i < n->nkids; i++) {
            for (size_t w = 0; w < words; w++)
                rest[w] = in[w] & ~acc[w]; /* members an earlier branch already took skip */
            if (eval(x, &b->kids[i], rest, tmp) < 0)
                goto out;
            for (size_t w = 0; w < words; w++)
                acc[w] |= tmp[w];
        }
        memcpy(out, acc, words * sizeof(*out));
        rc = 0;
    out:
        free(acc);
        free(tmp);
        free(rest);
        return rc;
    }
    if (b->evx) { /* fewer index entries than candidates: start from the index */
        size_t cand = 0;
        for (size_t w = 0; w < words; w++)
            cand += (size_t)__builtin_popcountll(in[w]);
        if (b->ev_hits <= cand)
            return eval_event_index(x, b, in, out);
    }
    if (b->post) { /* fewer members in the lists than candidates: walk the lists */
        size_t cand = 0;
        for (size_t w = 0; w < words; w++)
            cand += (size_t)__builtin_popcountll(in[w]);
        if (b->post_hits * 4 < cand)
            return eval_postings(x, b, in, out);
    }
    for (size_t w = 0; w < words; w++) {
        uint64_t m = in[w];
        if (!m) {
            out[w] = 0;
            continue;
        }
        out[w] = m & leaf_word(x, b, w * 64, m);
    }
    return 0;
}

#define SAMPLE_WORDS 128 /* 8,192 members estimate a leaf's selectivity */

/*
 * children of every AND in the order that drops candidates soonest for
 * least work: cost / (share removed), the share measured on a sample of
 * the snapshot (smp: SAMPLE_WORDS words spread evenly, all bits set); the
 * costly leaves (events, feature flags) are not sampled and count as
 * keeping half, except events answered from the events index: their
 * entries bound the members they keep and their cost. The bound copy is
 * reordered; the plan stays as compiled.
 */
static int order(const evalctx *x, bnode *b, const uint64_t *smp, size_t nsmp, uint64_t *tmp)
{
    if (!b->kids)
        return 0;
    for (size_t i = 0; i < b->n->nkids; i++)
        if (order(x, &b->kids[i], smp, nsmp, tmp) < 0)
            return -1;
    if (b->n->kind != K_AND)
        return 0;
    for (size_t i = 0; i < b->n->nkids; i++) {
        bnode *k = &b->kids[i];
        double cost = node_cost(k->n), keep = 0.5;
        if (k->evx) { /* from the index: at most one member per entry, checked one by one */
            double share = x->count ? (double)k->ev_hits / (double)x->count : 0;
            keep = share < 0.5 ? share : 0.5;
            cost = share < 0.5 ? 1 + 38 * share : cost;
        } else if (cost < 10 && nsmp) {
            if (eval(x, k, smp, tmp) < 0)
                return -1;
            size_t pass = 0;
            for (size_t w = 0; w < x->words; w++)
                pass += (size_t)__builtin_popcountll(tmp[w]);
            keep = (double)pass / (double)nsmp;
        }
        k->rank = (cost + 1) / (1.0 - keep + 1e-3);
    }
    qsort(b->kids, b->n->nkids, sizeof(*b->kids), cmp_rank);
    return 0;
}

/* --- ordering and paging ---------------------------------------------------- */

typedef struct sortkey {
    int null;
    int64_t key;
    const char *name;
    const char *id;
    uint32_t idx;
} sortkey;

static void key_of(const rte_member_snapshot *s, int sort, uint32_t i, sortkey *k)
{
    const rte_member *m = rte_member_snapshot_at(s, i);
    k->idx = i;
    k->id = m->member_id;
    k->name = NULL;
    k->key = 0;
    k->null = 0;
    switch (sort) {
    case SORT_LAST_ACTIVE:
        k->key = m->last_login_ms;
        k->null = m->last_login_ms < 0;
        break;
    case SORT_CREATED:
        k->key = m->enrollment_ms;
        k->null = m->enrollment_ms < 0;
        break;
    case SORT_DOB:
        k->key = rte_member_snapshot_column(s, "date_of_birth")->time[i];
        k->null = k->key == RTE_ATTR_TIME_ABSENT;
        break;
    case SORT_USAGE:
        k->key = rte_member_snapshot_column(s, "app_usage_probability")->num[i];
        k->null = k->key == RTE_ATTR_NUM_ABSENT;
        break;
    case SORT_NAME:
        k->name = m->last_name;
        k->null = !m->last_name[0];
        break;
    default: /* SORT_ID: the id is the key */
        k->name = m->member_id;
        break;
    }
}

/* order of a and b: key (direction desc), absent keys last either way, then member id */
static int key_cmp(const sortkey *a, const sortkey *b, int desc)
{
    if (a->null != b->null)
        return a->null - b->null;
    if (!a->null) {
        int c = a->name ? strcmp(a->name, b->name) : (a->key > b->key) - (a->key < b->key);
        if (c)
            return desc ? -c : c;
    }
    return strcmp(a->id, b->id);
}

static int key_cmp_r(const void *a, const void *b, void *desc)
{
    return key_cmp(a, b, *(int *)desc);
}

/* heap of the best limit keys: the root is the worst kept */
static void heap_down(sortkey *h, size_t n, size_t i, int desc)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && key_cmp(&h[l], &h[w], desc) > 0)
            w = l;
        if (r < n && key_cmp(&h[r], &h[w], desc) > 0)
            w = r;
        if (w == i)
            return;
        sortkey t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_up(sortkey *h, size_t i, int desc)
{
    while (i && key_cmp(&h[i], &h[(i - 1) / 2], desc) > 0) {
        sortkey t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int bit(const uint64_t *bm, size_t i)
{
    return (bm[i >> 6] >> (i & 63)) & 1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* word w of the bitmap of every member */
static uint64_t full_word(const evalctx *x, size_t w)
{
    return w + 1 < x->words || x->count % 64 == 0 ? UINT64_MAX : (1ULL << (x->count % 64)) - 1;
}

/* q's matches over s into a new bitmap *match (x set up here); their number, or -1 + err */
static int64_t match_bitmap(const rte_member_query *q, const rte_member_snapshot *s, evalctx *x,
                            uint64_t **match, char *err, size_t errlen)
{
    binder bd = {s, 0, err, errlen};
    bnode root;
    uint64_t *all = NULL, *m = NULL;
    int64_t total = -1;

    memset(&root, 0, sizeof(root));
    x->s = s;
    x->count = rte_member_snapshot_count(s);
    x->words = (x->count + 63) / 64;
    x->now = q->now;
    *match = NULL;
    err[0] = '\0';
    bd.nvalues = rte_member_snapshot_value_count(s) + 1; /* codes 1 .. count */
    if (bind(&bd, q->root, &root) < 0) {
        if (!err[0])
            snprintf(err, errlen, "member_query: out of memory");
        goto out;
    }
    all = malloc((x->words ? x->words : 1) * sizeof(*all));
    m = malloc((x->words ? x->words : 1) * sizeof(*m));
    if (!all || !m)
        goto oom;
    size_t step = x->words > SAMPLE_WORDS ? x->words / SAMPLE_WORDS : 1, nsmp = 0;
    for (size_t w = 0; w < x->words; w++) { /* the sample: every step-th word */
        all[w] = w % step == 0 ? full_word(x, w) : 0;
        nsmp += (size_t)__builtin_popcountll(all[w]);
    }
    if (order(x, &root, all, nsmp, m) < 0)
        goto oom;
    for (size_t w = 0; w < x->words; w++)
        all[w] = full_word(x, w);
    if (eval(x, &root, all, m) < 0)
        goto oom;
    total = 0;
    for (size_t w = 0; w < x->words; w++)
        total += __builtin_popcountll(m[w]);
    *match = m;
    m = NULL;
    goto out;
oom:
    snprintf(err, errlen, "member_query: out of memory");
out:
    unbind(&root);
    free(all);
    free(m);
    return total;
}

/* rte_member_query_match - any thread; q read-only; lock-free */
int rte_member_query_match(const rte_member_query *q, const rte_member_snapshot *s, uint64_t **bits,
                           size_t *total, char *err, size_t errlen)
{
    evalctx x;
    memset(&x, 0, sizeof(x));
    int64_t n = match_bitmap(q, s, &x, bits, err, errlen);
    if (n < 0)
        return -1;
    *total = (size_t)n;
    return 0;
}

/* rte_member_query_resolve - any thread; q read-only; lock-free */
int rte_member_query_resolve(const rte_member_query *q, const rte_member_snapshot *s,
                             rte_member_query_fn fn, void *arg, rte_member_query_result *res,
                             char *err, size_t errlen)
{
    evalctx x;
    uint64_t *match = NULL;
    sortkey *keys = NULL;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    memset(&x, 0, sizeof(x));
    int64_t total = match_bitmap(q, s, &x, &match, err, errlen);
    if (total < 0)
        return -1;
    res->total = (size_t)total;

    size_t limit = q->limit ? q->limit : SIZE_MAX;
    if (q->sort == SORT_ID && !q->desc) {
        const uint32_t *ord = rte_member_snapshot_id_order(s);
        size_t lo = 0, hi = x.count;
        if (q->has_cursor) { /* first id after the cursor's */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(rte_member_snapshot_at(s, ord[mid])->member_id, q->cursor_id) <= 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
        }
        const rte_member *last = NULL;
        if (res->total < x.count / 32) { /* few matches: sort their ranks, skip the walk */
            const uint32_t *rank = rte_member_snapshot_id_rank(s);
            uint32_t *rk = malloc((res->total ? res->total : 1) * sizeof(*rk));
            size_t nr = 0;
            if (!rk)
                goto oom;
            for (size_t w = 0; w < x.words; w++)
                for (uint64_t m = match[w]; m; m &= m - 1) {
                    uint32_t r = rank[w * 64 + (size_t)__builtin_ctzll(m)];
                    if (r >= lo)
                        rk[nr++] = r;
                }
            qsort(rk, nr, sizeof(*rk), cmp_u32);
            for (size_t j = 0; j < nr; j++) {
                if (res->returned == limit) {
                    cursor_make(q, 0, 0, last->member_id, last->member_id, res->next_cursor,
                                sizeof res->next_cursor);
                    break;
                }
                last = rte_member_snapshot_at(s, ord[rk[j]]);
                res->returned++;
                if (fn(last, ord[rk[j]], arg))
                    break;
            }
            free(rk);
            rc = 0;
            goto out;
        }
        for (size_t r = lo; r < x.count; r++) {
            if (!bit(match, ord[r]))
                continue;
            if (res->returned == limit) {
                cursor_make(q, 0, 0, last->member_id, last->member_id, res->next_cursor,
                            sizeof res->next_cursor);
                break;
            }
            last = rte_member_snapshot_at(s, ord[r]);
            res->returned++;
            if (fn(last, ord[r], arg))
                break;
        }
        rc = 0;
        goto out;
    }
    /* another order: the keys of the matches after the cursor, sorted or the best limit */
    sortkey cur = {q->cursor_null, q->cursor_key, q->cursor_name, q->cursor_id, 0};
    if (q->sort != SORT_NAME && q->sort != SORT_ID)
        cur.name = NULL;
    size_t cap = res->total < limit ? res->total : limit;
    int desc = q->desc, more = 0;
    size_t nk = 0;
    if (cap < SIZE_MAX)
        cap++; /* one more than a page tells whether a next page exists */
    keys = malloc((cap ? cap : 1) * sizeof(*keys));
    if (!keys)
        goto oom;
    for (size_t w = 0; w < x.words; w++) {
        for (uint64_t m = match[w]; m; m &= m - 1) {
            uint32_t i = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(m));
            sortkey k;
            key_of(s, q->sort, i, &k);
            if (q->has_cursor && key_cmp(&k, &cur, desc) <= 0)
                continue;
            if (nk < cap) {
                keys[nk++] = k;
                heap_up(keys, nk - 1, desc);
            } else if (key_cmp(&k, &keys[0], desc) < 0) {
                keys[0] = k;
                heap_down(keys, nk, 0, desc);
            }
        }
    }
    qsort_r(keys, nk, sizeof(*keys), key_cmp_r, &desc);
    if (nk > limit) {
        more = 1;
        nk = limit;
    }
    for (size_t i = 0; i < nk; i++) {
        res->returned++;
        if (fn(rte_member_snapshot_at(s, keys[i].idx), keys[i].idx, arg))
            break;
    }
    if (more && nk)
        cursor_make(q, keys[nk - 1].null, keys[nk - 1].key, keys[nk - 1].name, keys[nk - 1].id,
                    res->next_cursor, sizeof res->next_cursor);
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "member_query: out of memory");
out:
    free(match);
    free(keys);
    return rc;
}

struct ids_arg {
    const char **ids;
    size_t n, cap;
};

static int collect(const rte_member *m, size_t index, void *arg)
{
    struct ids_arg *a = arg;
    (void)index;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        const char **ids = realloc(a->ids, cap * sizeof(*ids));
        if (!ids)
            return 1;
        a->ids = ids;
        a->cap = cap;
    }
    a->ids[a->n++] = m->member_id;
    return 0;
}

/* rte_member_query_ids - any thread; the ids are borrowed from s */
int rte_member_query_ids(const rte_member_query *q, const rte_member_snapshot *s, const char ***ids,
                         size_t *n, rte_member_query_result *res, char *err, size_t errlen)
{
    struct ids_arg a = {NULL, 0, 0};
    int rc = rte_member_query_resolve(q, s, collect, &a, res, err, errlen);
    if (rc == 0 && a.n != res->returned) {
        snprintf(err, errlen, "member_query: out of memory");
        rc = -1;
    }
    if (rc != 0) {
        free(a.ids);
        return rc;
    }
    *ids = a.ids;
    *n = a.n;
    return 0;
}
