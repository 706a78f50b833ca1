/*
 * member_dir.c - load a JSONL member snapshot into an indexed, refcounted table.
 *
 * Contract (see rte/member_dir.h): a snapshot is built completely before it
 * becomes visible and is never modified afterwards, so readers need no lock
 * beyond the short one that hands out a reference. Loads are serialised by
 * the directory's reload mutex; the snapshot mutex guards one pointer.
 *
 * Why a hand-written parser: the schema is flat and known, and cJSON per
 * line costs a tree of mallocs per member (1,000,000 members would spend
 * most of the load in malloc/free). This parser walks one object per line,
 * decodes strings (with the usual escapes, \uXXXX to UTF-8) into a scratch
 * buffer, copies unique strings into one arena per snapshot, interns the
 * low-cardinality ones, and skips unknown keys of any JSON type. Numbers in
 * plain decimal form are read without strtod; others fall back to strtod.
 *
 * Memory: one rte_member record per member (array grown with realloc, which
 * glibc turns into mremap at this size), arena blocks of 4 MiB, an index of
 * uint32 slots at most 50 % full. A file is streamed line by line (never
 * mapped whole); a URL body is held in memory while it is parsed.
 *
 * Input policy (docs/input.md): every line must first pass rte_input_json
 * (strict JSON: well-formed UTF-8, no duplicate keys, no \u0000 or lone
 * surrogate escapes, nesting within 32), and then its fields the policy's
 * own checks - member_id and trading_partner_id / payer_id are ids
 * (rte_input_id), date_of_birth is a calendar date (YYYY-MM-DD or
 * YYYYMMDD), the *_at times are RFC 3339 and enrollment_date a calendar
 * date or RFC 3339 (neither before 1970: -1 means absent). A line that
 * fails fails the load, naming the line and the field, like every other
 * bad line. The check is a second pass over each line; it costs about a
 * tenth of the load (bench/member_dir.sh).
 *
 * Not done here: watching the file (callers poll reload_if_changed from a
 * timer), or partial reloads.
 */
#include "rte/member_dir.h"

#include "rte/clock.h"
#include "rte/config.h"
#include "rte/http_client.h"
#include "rte/input.h"
#include "rte/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARENA_BLOCK (4u << 20)
#define KEY_MAX 64
#define URL_TIMEOUT_MS 120000

/* --- arena ------------------------------------------------------------------ */

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    char data[];
} ablock;

typedef struct arena {
    ablock *head;
} arena;

static char *arena_alloc(arena *a, size_t n)
{
    ablock *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

static const char *arena_strdup(arena *a, const char *s, size_t len)
{
    if (len == 0)
        return "";
    char *p = arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void arena_free(arena *a)
{
    ablock *b = a->head;
    while (b) {
        ablock *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* --- intern table (low-cardinality strings) --------------------------------- */

typedef struct intern {
    const char **slots;
    size_t cap, used;
} intern;

static int intern_grow(intern *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    const char **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        const char *s = t->slots[i];
        if (!s)
            continue;
        size_t j = hash_bytes(s, strlen(s)) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = s;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

static const char *intern_get(intern *t, arena *a, const char *s, size_t len)
{
    if (len == 0)
        return "";
    if ((t->used + 1) * 2 > t->cap && intern_grow(t) < 0)
        return NULL;
    size_t j = hash_bytes(s, len) & (t->cap - 1);
    while (t->slots[j]) {
        const char *c = t->slots[j];
        if (strncmp(c, s, len) == 0 && c[len] == '\0')
            return c;
        j = (j + 1) & (t->cap - 1);
    }
    const char *c = arena_strdup(a, s, len);
    if (!c)
        return NULL;
    t->slots[j] = c;
    t->used++;
    return c;
}

/* --- snapshot ---------------------------------------------------------------- */

struct rte_member_snapshot {
    atomic_int refs;
    rte_member *members;
    size_t count, cap;
    uint32_t *index; /* member index + 1; 0 = empty */
    size_t index_mask;
    arena strings;
    intern names;
    const char *flags[RTE_MEMBER_MAX_FLAGS]; /* distinct feature flag names (interned) */
    int nflags;
};

static void snapshot_free(rte_member_snapshot *s)
{
    if (!s)
        return;
    free(s->members);
    free(s->index);
    free(s->names.slots);
    arena_free(&s->strings);
    free(s);
}

/* --- line parser ----------------------------------------------------------- */

typedef struct parser {
    const char *p, *end;
    char *scratch; /* at least line length + 1 */
    char *err;
    size_t errlen;
} parser;

enum field {
    F_UNKNOWN,
    F_MEMBER_ID,
    F_FIRST,
    F_LAST,
    F_DOB,
    F_SPONSOR,
    F_POPULATION,
    F_STATE,
    F_LANGUAGE,
    F_PLAN,
    F_PAYER,
    F_TPID,
    F_RTE,
    F_MOCK,
    F_STATUS,
    F_LOGIN,
    F_CHECK,
    F_APPT,
    F_ENROLL,
    F_USAGE,
    F_WEEKDAY,
    F_FLAGS
};

static const struct {
    const char *name;
    enum field f;
} field_names[] = {
    {"member_id", F_MEMBER_ID},
    {"first_name", F_FIRST},
    {"last_name", F_LAST},
    {"date_of_birth", F_DOB},
    {"sponsor_id", F_SPONSOR},
    {"population_id", F_POPULATION},
    {"state", F_STATE},
    {"language", F_LANGUAGE},
    {"plan_type", F_PLAN},
    {"payer_id", F_PAYER},
    {"trading_partner_id", F_TPID},
    {"has_rte_enabled", F_RTE},
    {"is_mock", F_MOCK},
    {"account_status", F_STATUS},
    {"last_login_at", F_LOGIN},
    {"last_eligibility_check_at", F_CHECK},
    {"upcoming_appointment_at", F_APPT},
    {"enrollment_date", F_ENROLL},
    {"usage_by_hour", F_USAGE},
    {"weekday_factor", F_WEEKDAY},
    {"feature_flags", F_FLAGS},
};

/* the field named key; first bytes compared before whole names (a strcmp per name cost 15 %) */
static enum field field_of(const char *key)
{
    for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
        if (field_names[i].name[0] == key[0] && strcmp(key, field_names[i].name) == 0)
            return field_names[i].f;
    return F_UNKNOWN;
}

static int fail(parser *ps, const char *fmt, const char *what)
{
    snprintf(ps->err, ps->errlen, fmt, what);
    return -1;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
        ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int utf8_put(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * A JSON string at ps->p into dst (NUL-terminated, at most cap - 1 bytes,
 * *trunc set when longer). The decoded form is never longer than the source.
 */
static int parse_string(parser *ps, char *dst, size_t cap, size_t *len, int *trunc)
{
    size_t n = 0;
    *trunc = 0;
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, "expected %s", "a string");
    ps->p++;
    for (;;) {
        if (ps->p >= ps->end)
            return fail(ps, "%s", "unterminated string");
        unsigned char c = (unsigned char)*ps->p++;
        char buf[4];
        int blen = 1;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(ps, "%s", "control character in string");
        if (c != '\\') { /* the common case: the byte stands for itself */
            if (n + 1 < cap)
                dst[n++] = (char)c;
            else
                *trunc = 1;
            continue;
        }
        buf[0] = (char)c;
        if (c == '\\') {
            if (ps->p >= ps->end)
                return fail(ps, "%s", "unterminated string");
            char e = *ps->p++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                buf[0] = e;
                break;
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'u': {
                unsigned cp = 0;
                if (ps->end - ps->p < 4)
                    return fail(ps, "%s", "bad \\u escape");
                for (int i = 0; i < 4; i++) {
                    int h = hexval(ps->p[i]);
                    if (h < 0)
                        return fail(ps, "%s", "bad \\u escape");
                    cp = cp * 16 + (unsigned)h;
                }
                ps->p += 4;
                if (cp == 0)
                    return fail(ps, "%s", "\\u0000 in string");
                if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
                    ps->p[1] == 'u') { /* a pair (rte_input_json refused lone halves) */
                    unsigned lo = 0;
                    for (int i = 0; i < 4; i++) {
                        int h = hexval(ps->p[2 + i]);
                        if (h < 0)
                            return fail(ps, "%s", "bad \\u escape");
                        lo = lo * 16 + (unsigned)h;
                    }
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail(ps, "%s", "unpaired surrogate escape");
                    ps->p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xd800 && cp <= 0xdfff) {
                    return fail(ps, "%s", "unpaired surrogate escape");
                }
                blen = utf8_put(buf, cp);
                break;
            }
            default:
                return fail(ps, "%s", "bad escape in string");
            }
        }
        if (n + (size_t)blen < cap) {
            memcpy(dst + n, buf, (size_t)blen);
            n += (size_t)blen;
        } else {
            *trunc = 1;
        }
    }
    dst[n] = '\0';
    *len = n;
    return 0;
}

static int match_lit(parser *ps, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lit, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

/* A JSON number; plain decimals without strtod. */
static int parse_number(parser *ps, double *out)
{
    const char *s = ps->p;
    int neg = 0, digits = 0;
    double v = 0;

    if (s < ps->end && *s == '-') {
        neg = 1;
        s++;
    }
    while (s < ps->end && *s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    if (!digits)
        return fail(ps, "expected %s", "a number");
    if (s < ps->end && *s == '.') {
        double scale = 1;
        int fd = 0;
        s++;
        while (s < ps->end && *s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            scale *= 10;
            fd++;
        }
        if (!fd)
            return fail(ps, "expected %s", "digits after '.'");
        v /= scale;
    }
    if (s < ps->end && (*s == 'e' || *s == 'E')) {
        char tmp[64];
        size_t n = 0;
        const char *t = ps->p;
        while (t < ps->end && n + 1 < sizeof(tmp) && strchr("+-0123456789.eE", *t))
            tmp[n++] = *t++;
        tmp[n] = '\0';
        char *endp;
        v = strtod(tmp, &endp);
        if (endp == tmp)
            return fail(ps, "expected %s", "a number");
        ps->p += endp - tmp;
        *out = v;
        return 0;
    }
    ps->p = s;
    *out = neg ? -v : v;
    return 0;
}

/* one element of a container: its key (objects; NULL in arrays), ps->p at its value */
typedef int (*element_fn)(parser *ps, const char *key, void *arg);

/*
 * the elements of the array or object at ps->p (the caller saw '[' or '{'),
 * each handed to item; object keys are decoded into key (cap bytes, cut when
 * longer). Errors name field when it is not NULL. 0, or -1 with the error.
 */
static int each_element(parser *ps, const char *field, char *key, size_t cap, element_fn item,
                        void *arg)
{
    char close = *ps->p == '[' ? ']' : '}', msg[160];
    int obj = close == '}', trunc;
    size_t len;

    snprintf(msg, sizeof msg, "%s%s%sexpected ", field ? "field '" : "", field ? field : "",
             field ? "': " : "");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        skip_ws(ps);
        if (obj) {
            if (parse_string(ps, key, cap, &len, &trunc) < 0)
                return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "%s':'", msg);
            ps->p++;
            skip_ws(ps);
        }
        if (item(ps, obj ? key : NULL, arg) < 0)
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "',' or '%c'", close);
        return fail(ps, "%s", msg);
    }
}

static int skip_value(parser *ps, int depth);

static int skip_element(parser *ps, const char *key, void *arg)
{
    (void)key;
    return skip_value(ps, *(int *)arg + 1);
}

static int skip_value(parser *ps, int depth)
{
    char dummy[1];
    size_t len;
    int trunc;
    double d;

    if (depth > 32)
        return fail(ps, "%s", "nesting too deep");
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "%s", "unexpected end of line");
    switch (*ps->p) {
    case '"':
        return parse_string(ps, dummy, sizeof(dummy), &len, &trunc);
    case '[':
    case '{':
        return each_element(ps, NULL, dummy, sizeof(dummy), skip_element, &depth);
    default:
        if (match_lit(ps, "true") || match_lit(ps, "false") || match_lit(ps, "null"))
            return 0;
        return parse_number(ps, &d);
    }
}

/* prefix the problem in ps->err with "field 'key': " (errors only: no formatting on success) */
static int field_failed(parser *ps, const char *key)
{
    char why[256];

    snprintf(why, sizeof why, "%s", ps->err);
    snprintf(ps->err, ps->errlen, "field '%s': %s", key, why);
    return -1;
}

/*
 * a time field: a calendar date (midnight UTC) or an RFC 3339 date-time,
 * in epoch ms; -1 + err (naming key) when neither, or before 1970 (-1
 * means absent in rte_member)
 */
static int64_t parse_when(parser *ps, const char *key, const char *s, size_t len)
{
    int64_t v = -1;

    if (len == 10 && s[4] == '-') {
        if (rte_input_date(s, len, RTE_INPUT_DATE_ISO, &v, NULL, ps->err, ps->errlen) != 0)
            return field_failed(ps, key);
        v *= 86400000LL;
    } else if (rte_input_timestamp(s, len, &v, NULL, ps->err, ps->errlen) != 0) {
        return field_failed(ps, key);
    }
    if (v < 0) {
        snprintf(ps->err, ps->errlen, "field '%s': before 1970", key);
        return -1;
    }
    return v;
}

/* an id field (member_id, trading_partner_id, payer_id); 0 or -1 + err naming key */
static int check_id(parser *ps, const char *key, const char *s, size_t len, size_t max)
{
    if (rte_input_id(s, len, max, NULL, ps->err, ps->errlen) != 0)
        return field_failed(ps, key);
    return 0;
}

static int parse_floats(parser *ps, float *out, int n, const char *key)
{
    int i = 0;
    if (ps->p >= ps->end || *ps->p != '[')
        return fail(ps, "field '%s': expected an array of numbers", key);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        goto count;
    }
    for (;;) {
        double v;
        skip_ws(ps);
        if (parse_number(ps, &v) < 0)
            return fail(ps, "field '%s': expected an array of numbers", key);
        if (i < n)
            out[i] = (float)v;
        i++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        return fail(ps, "field '%s': expected ',' or ']'", key);
    }
count:
    if (i != n) {
        char what[96];
        snprintf(what, sizeof(what), "%s' has %d numbers, expected %d", key, i, n);
        return fail(ps, "field '%s", what);
    }
    return 0;
}

static int parse_bool(parser *ps, int *out, const char *key)
{
    if (match_lit(ps, "true"))
        *out = 1;
    else if (match_lit(ps, "false") || match_lit(ps, "null"))
        *out = 0;
    else
        return fail(ps, "field '%s': expected true or false", key);
    return 0;
}

static int status_of(const char *s)
{
    if (strcmp(s, "ACTIVE") == 0)
        return RTE_MEMBER_ACTIVE;
    if (strcmp(s, "INACTIVE") == 0)
        return RTE_MEMBER_INACTIVE;
    if (strcmp(s, "SUSPENDED") == 0)
        return RTE_MEMBER_SUSPENDED;
    if (strcmp(s, "PENDING") == 0)
        return RTE_MEMBER_PENDING;
    return RTE_MEMBER_STATUS_UNKNOWN;
}

/* the bit of flag name (interned) in s, a new name taking the next; -1 when all are taken */
static int flag_bit(rte_member_snapshot *s, const char *name)
{
    for (int i = 0; i < s->nflags; i++)
        if (s->flags[i] == name)
            return i;
    if (s->nflags == RTE_MEMBER_MAX_FLAGS)
        return -1;
    s->flags[s->nflags] = name;
    return s->nflags++;
}

struct flags_arg {
    rte_member_snapshot *s;
    rte_member *m;
    const char *field;
};

/* one flag: a name in an array (on), or name: bool in an object */
static int flag_element(parser *ps, const char *key, void *arg)
{
    struct flags_arg *a = arg;
    size_t len;
    int trunc, on = 1;

    if (key == NULL) { /* array: the value is the name */
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, "field '%s': expected a flag name (a string)", a->field);
        if (parse_string(ps, ps->scratch, (size_t)(ps->end - ps->p) + 1, &len, &trunc) < 0)
            return -1;
        key = ps->scratch;
    } else {
        len = strlen(key);
        if (parse_bool(ps, &on, a->field) < 0)
            return -1;
    }
    if (len == 0)
        return fail(ps, "field '%s': a flag name is empty", a->field);
    const char *name = intern_get(&a->s->names, &a->s->strings, key, len);
    if (!name)
        return fail(ps, "%s", "out of memory");
    if (!on)
        return 0;
    int bit = flag_bit(a->s, name);
    if (bit < 0)
        return fail(ps, "field '%s': more than 64 distinct flag names in the directory", a->field);
    a->m->feature_flags |= 1ULL << bit;
    return 0;
}

/* feature_flags: an array of the names that are on, or an object of name: bool; or null */
static int parse_flags(parser *ps, rte_member_snapshot *s, rte_member *m, const char *key)
{
    _Static_assert(RTE_MEMBER_MAX_FLAGS == 64, "the message above and the uint64_t bit set");
    struct flags_arg a = {s, m, key};

    if (match_lit(ps, "null"))
        return 0;
    if (ps->p >= ps->end || (*ps->p != '[' && *ps->p != '{'))
        return fail(ps, "field '%s': expected an array of flag names or an object of name: bool",
                    key);
    return each_element(ps, key, ps->scratch, (size_t)(ps->end - ps->p) + 1, flag_element, &a);
}

/* One field's value into m; strings through the scratch buffer. */
static int parse_field(parser *ps, rte_member_snapshot *s, rte_member *m, enum field f,
                       const char *key, const char **payer)
{
    size_t len;
    int trunc;

    if (f == F_UNKNOWN)
        return skip_value(ps, 0);
    if (f == F_RTE)
        return parse_bool(ps, &m->has_rte_enabled, key);
    if (f == F_MOCK)
        return parse_bool(ps, &m->is_mock, key);
    if (f == F_USAGE)
        return parse_floats(ps, m->usage_by_hour, 24, key);
    if (f == F_WEEKDAY)
        return parse_floats(ps, m->weekday_factor, 7, key);
    if (f == F_FLAGS)
        return parse_flags(ps, s, m, key);

    /* every other field is a string (or null) */
    if (match_lit(ps, "null")) {
        ps->scratch[0] = '\0';
        len = 0;
        if (f == F_MEMBER_ID)
            return fail(ps, "field '%s': expected a non-empty string", key);
    } else if (ps->p < ps->end && *ps->p == '"') {
        if (parse_string(ps, ps->scratch, (size_t)(ps->end - ps->p) + 1, &len, &trunc) < 0)
            return -1;
    } else {
        return fail(ps, "field '%s': expected a string", key);
    }
    const char *str = ps->scratch;
    const char **dst = NULL;
    int interned = 1;
    int64_t *when = NULL;

    switch (f) {
    case F_MEMBER_ID:
        if (len == 0)
            return fail(ps, "field '%s': expected a non-empty string", key);
        if (check_id(ps, key, str, len, RTE_INPUT_ID_MAX) != 0)
            return -1;
        dst = &m->member_id;
        interned = 0;
        break;
    case F_FIRST:
        dst = &m->first_name;
        interned = 0;
        break;
    case F_LAST:
        dst = &m->last_name;
        interned = 0;
        break;
    case F_DOB:
        if (len > 0 && rte_input_date(str, len, RTE_INPUT_DATE_ISO | RTE_INPUT_DATE_BASIC, NULL,
                                      NULL, ps->err, ps->errlen) != 0)
            return field_failed(ps, key);
        dst = &m->date_of_birth;
        interned = 0;
        break;
    case F_SPONSOR:
        dst = &m->sponsor_id;
        break;
    case F_POPULATION:
        dst = &m->population_id;
        break;
    case F_STATE:
        dst = &m->state;
        break;
    case F_LANGUAGE:
        dst = &m->language;
        break;
    case F_PLAN:
        dst = &m->plan_type;
        break;
    case F_PAYER:
        if (len > 0 && check_id(ps, key, str, len, RTE_INPUT_CODE_MAX) != 0)
            return -1;
        dst = payer;
        break;
    case F_TPID:
        if (len > 0 && check_id(ps, key, str, len, RTE_INPUT_CODE_MAX) != 0)
            return -1;
        dst = &m->trading_partner_id;
        break;
    case F_STATUS:
        m->account_status = status_of(str);
        return 0;
    case F_LOGIN:
        when = &m->last_login_ms;
        break;
    case F_CHECK:
        when = &m->last_check_ms;
        break;
    case F_APPT:
        when = &m->appointment_ms;
        break;
    case F_ENROLL:
        when = &m->enrollment_ms;
        break;
    default:
        return skip_value(ps, 0);
    }
    if (when) {
        *when = len ? parse_when(ps, key, str, len) : -1;
        return len && *when < 0 ? -1 : 0;
    }
    *dst = interned ? intern_get(&s->names, &s->strings, str, len)
                    : arena_strdup(&s->strings, str, len);
    if (!*dst)
        return fail(ps, "%s", "out of memory");
    return 0;
}

static void member_defaults(rte_member *m)
{
    memset(m, 0, sizeof(*m));
    m->member_id = m->first_name = m->last_name = m->date_of_birth = "";
    m->sponsor_id = m->population_id = m->state = m->language = m->plan_type = "";
    m->trading_partner_id = "";
    m->account_status = RTE_MEMBER_STATUS_UNKNOWN;
    m->last_login_ms = m->last_check_ms = m->appointment_ms = m->enrollment_ms = -1;
}

/* Parse one object into m. */
static int parse_member(parser *ps, rte_member_snapshot *s, rte_member *m)
{
    char key[KEY_MAX];
    const char *payer = "";
    size_t len;
    int trunc;

    member_defaults(m);
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '{')
        return fail(ps, "expected %s", "a JSON object");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        goto done;
    }
    for (;;) {
        skip_ws(ps);
        if (parse_string(ps, key, sizeof(key), &len, &trunc) < 0)
            return -1;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return fail(ps, "expected %s after a key", "':'");
        ps->p++;
        skip_ws(ps);
        if (parse_field(ps, s, m, trunc ? F_UNKNOWN : field_of(key), key, &payer) < 0)
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        return fail(ps, "expected %s", "',' or '}'");
    }
done:
    skip_ws(ps);
    if (ps->p != ps->end)
        return fail(ps, "%s", "trailing characters after the object");
    if (!m->member_id[0])
        return fail(ps, "%s", "missing member_id");
    if (!m->trading_partner_id[0])
        m->trading_partner_id = payer;
    return 0;
}

/* --- building a snapshot ----------------------------------------------------- */

typedef struct builder {
    rte_member_snapshot *s;
    uint32_t *lines; /* source line of each member, for duplicate messages */
    size_t lines_cap;
    char *scratch;
    size_t scratch_cap;
    const char *source;
} builder;

static int builder_init(builder *b, const char *source)
{
    memset(b, 0, sizeof(*b));
    b->source = source;
    b->s = calloc(1, sizeof(*b->s));
    if (!b->s)
        return -1;
    atomic_init(&b->s->refs, 1);
    return 0;
}

static void builder_cleanup(builder *b)
{
    snapshot_free(b->s);
    free(b->lines);
    free(b->scratch);
    memset(b, 0, sizeof(*b));
}

static int builder_line(builder *b, const char *line, size_t len, size_t lineno, char *err,
                        size_t errlen)
{
    rte_member_snapshot *s = b->s;
    char perr[256];

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return 0; /* blank line */
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap + s->cap / 2 : 1024;
        rte_member *mm = realloc(s->members, cap * sizeof(*mm));
        uint32_t *ll = realloc(b->lines, cap * sizeof(*ll));
        if (mm)
            s->members = mm;
        if (ll)
            b->lines = ll;
        if (!mm || !ll)
            goto oom;
        s->cap = cap;
    }
    if (b->scratch_cap < len + 1) {
        free(b->scratch);
        b->scratch_cap = len + 1 > 4096 ? len + 1 : 4096;
        b->scratch = malloc(b->scratch_cap);
        if (!b->scratch)
            goto oom;
    }
    rte_input_json_limits lim = {0, 32};
    if (rte_input_json(line, len, &lim, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "member_dir: %s: line %zu: %s", b->source, lineno, perr);
        return -1;
    }
    parser ps = {line, line + len, b->scratch, perr, sizeof(perr)};
    if (parse_member(&ps, s, &s->members[s->count]) < 0) {
        snprintf(err, errlen, "member_dir: %s: line %zu: %s (at column %zu)", b->source, lineno,
                 perr, (size_t)(ps.p - line) + 1);
        return -1;
    }
    if (lineno > UINT32_MAX || s->count >= UINT32_MAX - 1) {
        snprintf(err, errlen, "member_dir: %s: line %zu: too many lines", b->source, lineno);
        return -1;
    }
    b->lines[s->count++] = (uint32_t)lineno;
    return 0;
oom:
    snprintf(err, errlen, "member_dir: %s: line %zu: out of memory", b->source, lineno);
    return -1;
}

static int builder_index(builder *b, char *err, size_t errlen)
{
    rte_member_snapshot *s = b->s;
    size_t cap = 16;

    while (cap < s->count * 2)
        cap *= 2;
    s->index = calloc(cap, sizeof(*s->index));
    if (!s->index) {
        snprintf(err, errlen, "member_dir: %s: out of memory for the index", b->source);
        return -1;
    }
    s->index_mask = cap - 1;
    for (size_t i = 0; i < s->count; i++) {
        const char *id = s->members[i].member_id;
        size_t j = hash_bytes(id, strlen(id)) & s->index_mask;
        while (s->index[j]) {
            size_t k = s->index[j] - 1;
            if (strcmp(s->members[k].member_id, id) == 0) {
                snprintf(err, errlen, "member_dir: %s: line %u: member_id '%s' repeats line %u",
                         b->source, b->lines[i], id, b->lines[k]);
                return -1;
            }
            j = (j + 1) & s->index_mask;
        }
        s->index[j] = (uint32_t)(i + 1);
    }
    return 0;
}

/* Take the finished snapshot out of the builder. */
static rte_member_snapshot *builder_finish(builder *b, char *err, size_t errlen)
{
    rte_member_snapshot *s;

    if (builder_index(b, err, errlen) < 0)
        return NULL;
    s = b->s;
    b->s = NULL;
    builder_cleanup(b);
    return s;
}

static rte_member_snapshot *load_file(const char *path, rte_file_id *id, char *err, size_t errlen)
{
    rte_member_snapshot *s = NULL;
    builder b;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    struct stat st;

    if (builder_init(&b, path) < 0) {
        snprintf(err, errlen, "member_dir: %s: out of memory", path);
        return NULL;
    }
    f = fopen(path, "r");
    if (!f || fstat(fileno(f), &st) < 0) {
        snprintf(err, errlen, "member_dir: cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (builder_line(&b, line, (size_t)n, ++lineno, err, errlen) < 0)
            goto out;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "member_dir: reading '%s' failed: %s", path, strerror(errno));
        goto out;
    }
    s = builder_finish(&b, err, errlen);
    if (s)
        rte_file_id_of_stat(&st, id);
out:
    free(line);
    if (f)
        fclose(f);
    builder_cleanup(&b);
    return s;
}

static rte_member_snapshot *load_buffer(const char *source, const char *buf, size_t len, char *err,
                                        size_t errlen)
{
    builder b;
    size_t lineno = 0;
    const char *p = buf, *end = buf + len;

    if (builder_init(&b, source) < 0) {
        snprintf(err, errlen, "member_dir: %s: out of memory", source);
        return NULL;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl + 1 : end;
        if (builder_line(&b, p, (size_t)(le - p), ++lineno, err, errlen) < 0) {
            builder_cleanup(&b);
            return NULL;
        }
        p = le;
    }
    rte_member_snapshot *s = builder_finish(&b, err, errlen);
    builder_cleanup(&b);
    return s;
}

/* --- directory --------------------------------------------------------------- */

/* 1 when source names an http(s) URL rather than a file */
static int is_url(const char *source)
{
    return strncmp(source, "http://", 7) == 0 || strncmp(source, "https://", 8) == 0;
}

struct rte_member_dir {
    char *source;
    int is_url;
    rte_http_client *http;
    pthread_mutex_t mu;        /* guards cur */
    pthread_mutex_t reload_mu; /* serialises loads and the fields below */
    rte_member_snapshot *cur;
    rte_file_id fid;
    char etag[256], last_modified[128];
    uint64_t body_hash;
};

static rte_metric *m_members, *m_reloads, *m_load_seconds;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void)
{
    static const char *const result_label[] = {"result", NULL};
    static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30};

    m_members = rte_gauge_new("rte_member_dir_members", "Members in the current snapshot", NULL);
    m_reloads = rte_counter_new("rte_member_dir_reloads_total",
                                "Member directory reload checks by result", result_label);
    m_load_seconds =
        rte_histogram_new("rte_member_dir_load_seconds", "Time to load a member snapshot", NULL,
                          buckets, (int)(sizeof(buckets) / sizeof(buckets[0])));
}

static void count_reload(const char *result)
{
    const char *v[] = {result};
    rte_counter_inc(m_reloads, v);
}

/* Fetch the URL; *unchanged set on 304 or identical content. Caller holds reload_mu. */
static rte_member_snapshot *load_url(rte_member_dir *d, int conditional, int *unchanged, char *err,
                                     size_t errlen)
{
    rte_member_snapshot *s = NULL;
    rte_http_response resp;
    char h1[300], h2[160];
    const char *headers[3] = {NULL, NULL, NULL};
    int nh = 0;

    *unchanged = 0;
    memset(&resp, 0, sizeof(resp));
    if (conditional && d->etag[0]) {
        snprintf(h1, sizeof(h1), "If-None-Match: %s", d->etag);
        headers[nh++] = h1;
    }
    if (conditional && d->last_modified[0]) {
        snprintf(h2, sizeof(h2), "If-Modified-Since: %s", d->last_modified);
        headers[nh++] = h2;
    }
    rte_http_request req = {.method = "GET",
                            .url = d->source,
                            .headers = headers,
                            .timeout_ms = URL_TIMEOUT_MS,
                            .max_attempts = 3,
                            .name = "member_dir"};
    if (rte_http_do(d->http, &req, &resp) < 0) {
        snprintf(err, errlen, "member_dir: GET %s failed: %s", d->source, resp.error);
        goto out;
    }
    if (resp.status == 304 && conditional) {
        *unchanged = 1;
        goto out;
    }
    if (resp.status != 200) {
        snprintf(err, errlen, "member_dir: GET %s: HTTP %ld", d->source, resp.status);
        goto out;
    }
    uint64_t h = hash_bytes(resp.body ? resp.body : "", resp.body_len);
    if (conditional && h == d->body_hash) {
        *unchanged = 1;
    } else {
        s = load_buffer(d->source, resp.body ? resp.body : "", resp.body_len, err, errlen);
        if (!s)
            goto out;
        d->body_hash = h;
    }
    if (rte_http_response_header(&resp, "ETag", d->etag, sizeof(d->etag)) < 0)
        d->etag[0] = '\0';
    if (rte_http_response_header(&resp, "Last-Modified", d->last_modified,
                                 sizeof(d->last_modified)) < 0)
        d->last_modified[0] = '\0';
out:
    rte_http_response_free(&resp);
    return s;
}

/* Load the source; NULL with *unchanged = 1 when nothing changed. Caller holds reload_mu. */
static rte_member_snapshot *load_source(rte_member_dir *d, int conditional, int *unchanged,
                                        char *err, size_t errlen)
{
    rte_member_snapshot *s;
    int64_t t0 = rte_clock_mono_ms();

    *unchanged = 0;
    if (d->is_url) {
        s = load_url(d, conditional, unchanged, err, errlen);
    } else {
        rte_file_id now;
        if (conditional && rte_file_id_of(d->source, &now) == 0 &&
            rte_file_id_same(&d->fid, &now)) {
            *unchanged = 1;
            return NULL;
        }
        s = load_file(d->source, &d->fid, err, errlen);
    }
    if (s) {
        rte_series_observe(rte_metric_series0(m_load_seconds),
                           (double)(rte_clock_mono_ms() - t0) / 1000.0);
        rte_series_set(rte_metric_series0(m_members), (double)s->count);
    }
    return s;
}

/* rte_member_dir_new - load source once; any thread, takes no shared lock */
rte_member_dir *rte_member_dir_new(const char *source, char *err, size_t errlen)
{
    rte_member_dir *d = NULL;
    int unchanged;

    pthread_once(&metrics_once, metrics_init);
    if (!source || !source[0]) {
        snprintf(err, errlen, "member_dir: empty source (expected a file path or http(s) URL)");
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d || !(d->source = strdup(source))) {
        snprintf(err, errlen, "member_dir: out of memory");
        goto fail;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->reload_mu, NULL);
    d->is_url = is_url(source);
    if (d->is_url && !(d->http = rte_http_client_new(NULL, err, errlen)))
        goto fail;
    d->cur = load_source(d, 0, &unchanged, err, errlen);
    if (!d->cur)
        goto fail;
    return d;
fail:
    rte_member_dir_free(d);
    return NULL;
}

/* rte_member_dir_reload_if_changed - any thread; takes reload_mu, then mu for the swap only */
int rte_member_dir_reload_if_changed(rte_member_dir *d, char *err, size_t errlen)
{
    rte_member_snapshot *s, *old;
    int unchanged;

    pthread_mutex_lock(&d->reload_mu);
    s = load_source(d, 1, &unchanged, err, errlen);
    pthread_mutex_unlock(&d->reload_mu);
    if (unchanged) {
        count_reload("unchanged");
        return 0;
    }
    if (!s) {
        count_reload("error");
        return -1;
    }
    pthread_mutex_lock(&d->mu);
    old = d->cur;
    d->cur = s;
    pthread_mutex_unlock(&d->mu);
    rte_member_snapshot_release(old);
    count_reload("reloaded");
    return 1;
}

/* rte_member_dir_acquire - any thread; takes mu briefly */
rte_member_snapshot *rte_member_dir_acquire(rte_member_dir *d)
{
    rte_member_snapshot *s;

    pthread_mutex_lock(&d->mu);
    s = d->cur;
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&d->mu);
    return s;
}

/* rte_member_snapshot_release - any thread, lock-free */
void rte_member_snapshot_release(rte_member_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

/* rte_member_snapshot_count - any thread, lock-free */
size_t rte_member_snapshot_count(const rte_member_snapshot *s)
{
    return s->count;
}

/* rte_member_dir_check_source - any thread; reads nothing */
int rte_member_dir_check_source(const char *source, char *err, size_t errlen)
{
    if (is_url(source) || access(source, R_OK) == 0)
        return 0;
    snprintf(err, errlen, "'%s': %s", source, strerror(errno));
    return -1;
}

/* rte_member_snapshot_flags - any thread, lock-free; borrowed from s */
size_t rte_member_snapshot_flags(const rte_member_snapshot *s, const char *const **names)
{
    *names = s->flags;
    return (size_t)s->nflags;
}

/* rte_member_snapshot_at - any thread, lock-free; borrowed from s */
const rte_member *rte_member_snapshot_at(const rte_member_snapshot *s, size_t i)
{
    return i < s->count ? &s->members[i] : NULL;
}

/* rte_member_snapshot_find - any thread, lock-free; borrowed from s */
const rte_member *rte_member_snapshot_find(const rte_member_snapshot *s, const char *member_id)
{
    if (!member_id || !s->index)
        return NULL;
    size_t j = hash_bytes(member_id, strlen(member_id)) & s->index_mask;
    while (s->index[j]) {
        const rte_member *m = &s->members[s->index[j] - 1];
        if (strcmp(m->member_id, member_id) == 0)
            return m;
        j = (j + 1) & s->index_mask;
    }
    return NULL;
}

/* rte_member_snapshot_find_many - any thread, lock-free; out[i] borrowed from s or NULL */
void rte_member_snapshot_find_many(const rte_member_snapshot *s, const char *const *ids, size_t n,
                                   const rte_member **out)
{
    enum { GROUP = 32 };
    size_t slot[GROUP];

    for (size_t base = 0; base < n; base += GROUP) {
        size_t g = n - base < GROUP ? n - base : GROUP;
        /* each step's loads are issued for the whole group before the next step needs them */
        for (size_t k = 0; k < g; k++) {
            const char *id = ids[base + k];
            slot[k] = id && s->index ? hash_bytes(id, strlen(id)) & s->index_mask : 0;
            if (id && s->index)
                __builtin_prefetch(&s->index[slot[k]]);
        }
        for (size_t k = 0; k < g; k++)
            if (ids[base + k] && s->index && s->index[slot[k]])
                __builtin_prefetch(&s->members[s->index[slot[k]] - 1]);
        for (size_t k = 0; k < g; k++)
            if (ids[base + k] && s->index && s->index[slot[k]])
                __builtin_prefetch(s->members[s->index[slot[k]] - 1].member_id);
        for (size_t k = 0; k < g; k++) {
            const char *id = ids[base + k];
            const rte_member *found = NULL;
            if (id && s->index)
                for (size_t j = slot[k]; s->index[j]; j = (j + 1) & s->index_mask) {
                    const rte_member *m = &s->members[s->index[j] - 1];
                    if (strcmp(m->member_id, id) == 0) {
                        found = m;
                        break;
                    }
                }
            out[base + k] = found;
        }
    }
}

/* rte_member_dir_free - any thread once no other thread uses d; readers' snapshots stay valid */
void rte_member_dir_free(rte_member_dir *d)
{
    if (!d)
        return;
    rte_member_snapshot_release(d->cur);
    if (d->http)
        rte_http_client_free(d->http);
    if (d->source) {
        pthread_mutex_destroy(&d->mu);
        pthread_mutex_destroy(&d->reload_mu);
    }
    free(d->source);
    free(d);
}
