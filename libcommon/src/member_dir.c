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
 * Compiled form ("compiled form" below): the same snapshot written as
 * fixed-size arrays with a SHA-256 (rte_member_snapshot_write); a source
 * that starts with its magic is read back with bounded reads and checks
 * instead of the parser, about 20 times less CPU for 1,000,000 members.
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

#include <openssl/evp.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
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
    uint32_t *ids; /* ids[j]: the number of slots[j], in order of first sight (from 1) */
    size_t cap, used;
    const char **by_id; /* by_id[id]; by_id[0] = "" */
    size_t by_id_cap;
} intern;

static int intern_grow(intern *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    const char **slots = calloc(cap, sizeof(*slots));
    uint32_t *ids = calloc(cap, sizeof(*ids));
    const char **by_id = realloc(t->by_id, (cap / 2 + 1) * sizeof(*by_id));
    if (by_id)
        t->by_id = by_id;
    if (!slots || !ids || !by_id) {
        free(slots);
        free(ids);
        return -1;
    }
    t->by_id[0] = "";
    t->by_id_cap = cap / 2 + 1;
    for (size_t i = 0; i < t->cap; i++) {
        const char *s = t->slots[i];
        if (!s)
            continue;
        size_t j = hash_bytes(s, strlen(s)) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = s;
        ids[j] = t->ids[i];
    }
    free(t->slots);
    free(t->ids);
    t->slots = slots;
    t->ids = ids;
    t->cap = cap;
    return 0;
}

/* the interned copy of s and its id (*id: 0 for ""); NULL when out of memory */
static const char *intern_id(intern *t, arena *a, const char *s, size_t len, uint32_t *id)
{
    *id = 0;
    if (len == 0)
        return "";
    if ((t->used + 1) * 2 > t->cap && intern_grow(t) < 0)
        return NULL;
    size_t j = hash_bytes(s, len) & (t->cap - 1);
    while (t->slots[j]) {
        const char *c = t->slots[j];
        if (strncmp(c, s, len) == 0 && c[len] == '\0') {
            *id = t->ids[j];
            return c;
        }
        j = (j + 1) & (t->cap - 1);
    }
    const char *c = arena_strdup(a, s, len);
    if (!c)
        return NULL;
    t->slots[j] = c;
    t->ids[j] = (uint32_t)++t->used;
    t->by_id[t->used] = c;
    *id = t->ids[j];
    return c;
}

static const char *intern_get(intern *t, arena *a, const char *s, size_t len)
{
    uint32_t id;
    return intern_id(t, a, s, len, &id);
}

/* the id of s when interned, else 0 (lookup only) */
static uint32_t intern_find(const intern *t, const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || !t->cap)
        return 0;
    size_t j = hash_bytes(s, len) & (t->cap - 1);
    while (t->slots[j]) {
        if (strcmp(t->slots[j], s) == 0)
            return t->ids[j];
        j = (j + 1) & (t->cap - 1);
    }
    return 0;
}

/* --- attribute columns ------------------------------------------------------ */

#define B RTE_ATTR_BOOL
#define N RTE_ATTR_NUM
#define T RTE_ATTR_TIME
#define E RTE_ATTR_ENUM
#define S RTE_ATTR_SET
#define STR RTE_ATTR_STR
/* every MemberQuery attribute the loader keeps (docs/member-query.md) */
static const struct {
    const char *name;
    int type;
} attr_schema[] = {
    /* the record's own fields, copied into columns when the snapshot is finished */
    {"sponsor_id", E},
    {"population_id", E},
    {"state", E},
    {"language", E},
    {"plan_type", E},
    {"trading_partner_id", E},
    {"account_status", E},
    {"has_rte_enabled", B},
    {"is_mock", B},
    {"date_of_birth", T},
    {"last_login_at", T},
    {"last_eligibility_check_at", T},
    {"upcoming_appointment_at", T},
    {"enrollment_date", T},
    /* the profile's attributes, parsed into columns */
    {"benefit_contract_id", E},
    {"healthcare_services", S},
    {"top_benefits", S},
    {"contract_start", T},
    {"contract_end", T},
    {"insurance_plan_id", E},
    {"feature_options.chat_available", B},
    {"feature_options.video_visits", B},
    {"feature_options.provider_instructions", E},
    {"feature_options.max_visits_per_year", N},
    {"has_dual_coverage", B},
    {"coverage_type", E},
    {"payer_name", E},
    {"is_file_based_enrollment", B},
    {"coverage_status", E},
    {"coverage_start", T},
    {"coverage_end", T},
    {"network_type", E},
    {"is_self_funded", B},
    {"has_hsa", B},
    {"has_hra", B},
    {"has_fsa", B},
    {"has_mental_health_coverage", B},
    {"has_prescription_coverage", B},
    {"has_dental_coverage", B},
    {"has_vision_coverage", B},
    {"has_telehealth_coverage", B},
    {"individual_deductible", N},
    {"family_deductible", N},
    {"individual_oop_max", N},
    {"group_number", E},
    {"policy_number", STR},
    {"employer_id", E},
    {"plan_effective_date", T},
    {"plan_renewal_date", T},
    {"is_marketplace_plan", B},
    {"is_subsidized", B},
    {"metal_tier", E},
    {"member_role", E},
    {"relationship", E},
    {"dependents_count", N},
    {"family_size", N},
    {"has_family_members_enrolled", B},
    {"biological_sex", E},
    {"gender_identity", E},
    {"zip_code", E},
    {"city", E},
    {"time_zone", E},
    {"written_language", E},
    {"race_ethnicity", E},
    {"is_vip", B},
    {"is_do_not_contact", B},
    {"is_lgbtq_plus", B},
    {"engagement_cohort", E},
    {"has_completed_onboarding", B},
    {"used_features", S},
    {"has_unread_messages", B},
    {"has_sent_messages", B},
    {"push_notifications_enabled", B},
    {"email_notifications_enabled", B},
    {"app_sessions_30d", N},
    {"app_usage_probability", N},
    {"chronic_conditions", S},
    {"enrolled_programs", S},
    {"service_delivery_types", S},
    {"care_gaps", S},
    {"has_active_prescriptions", B},
    {"last_claim_at", T},
    {"is_high_utilizer", B},
    {"health_risk_score", N},
    {"churn_risk_score", N},
    {"annual_er_visits", N},
    {"predicted_annual_cost", N},
    {"activity_trend", E},
    {"regular_activity", B},
    {"session_active", B},
    {"devices", S},
    {"biometric_data_at", T},
    {"has_step_data", B},
    {"has_heart_rate_data", B},
    {"has_sleep_data", B},
    {"has_sdoh_screening", B},
    {"has_transportation_barrier", B},
    {"has_food_insecurity", B},
    {"has_housing_instability", B},
    {"requires_digital_assistance", B},
    {"has_pcp_attributed", B},
    {"network_id", E},
    {"last_provider_visit_at", T},
    {"provider_types", S},
    {"life_events", S},
    {"life_event_at", T},
};
#undef B
#undef N
#undef T
#undef E
#undef S
#undef STR
#define NATTR (sizeof(attr_schema) / sizeof(attr_schema[0]))
#define NDERIVED 14   /* the first NDERIVED attributes are the record's fields */
#define ATTR_HASH 256 /* open-addressing table of attribute names, > 2 * NATTR */

static int16_t attr_slots[ATTR_HASH]; /* attribute index + 1; 0 empty */
static pthread_once_t attr_once = PTHREAD_ONCE_INIT;

static void attr_init(void)
{
    _Static_assert(ATTR_HASH >= 2 * NATTR, "attribute table at most half full");
    for (size_t i = 0; i < NATTR; i++) {
        const char *n = attr_schema[i].name;
        size_t j = hash_bytes(n, strlen(n)) & (ATTR_HASH - 1);
        while (attr_slots[j])
            j = (j + 1) & (ATTR_HASH - 1);
        attr_slots[j] = (int16_t)(i + 1);
    }
}

/* the schema index of attribute key, -1 when it is none */
static int attr_of(const char *key)
{
    size_t j = hash_bytes(key, strlen(key)) & (ATTR_HASH - 1);
    while (attr_slots[j]) {
        int i = attr_slots[j] - 1;
        if (strcmp(attr_schema[i].name, key) == 0)
            return i;
        j = (j + 1) & (ATTR_HASH - 1);
    }
    return -1;
}

/* column storage; pub's pointers are set when the snapshot is finished */
typedef struct column {
    rte_member_column pub;
    void *data; /* NUM int32, TIME int64, ENUM uint16, SET uint32, STR const char *; BOOL uint64
                   words */
} column;

static size_t attr_elem(int type)
{
    switch (type) {
    case RTE_ATTR_NUM:
        return sizeof(int32_t);
    case RTE_ATTR_TIME:
        return sizeof(int64_t);
    case RTE_ATTR_ENUM:
        return sizeof(uint16_t);
    case RTE_ATTR_SET:
        return sizeof(uint32_t);
    case RTE_ATTR_STR:
        return sizeof(const char *);
    default:
        return sizeof(uint64_t); /* BOOL: per 64 members */
    }
}

/* the event category of a type name, by its domain (RecentEventFilter.EventCategory numbers) */
int rte_member_event_category(const char *type)
{
    static const struct {
        const char *prefix;
        int category;
    } cats[] = {
        {"domain.authentication.", 1},
        {"domain.accounts.", 2},
        {"domain.enrollment.", 3},
        {"domain.engagement.", 4},
        {"domain.scheduling.", 5},
        {"domain.messaging.", 6},
        {"domain.care.v1.CARE_GAP", 8},
        {"domain.care.", 7},
        {"domain.clinical.", 9},
        {"domain.search.", 10},
        {"domain.recommendations.", 11},
        {"domain.payments.", 12},
        {"domain.rte.", 13},
        {"domain.communications.", 14},
    };
    for (size_t i = 0; i < sizeof(cats) / sizeof(cats[0]); i++)
        if (strncmp(type, cats[i].prefix, strlen(cats[i].prefix)) == 0)
            return cats[i].category;
    return 0;
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
    column cols[NATTR];
    uint32_t *id_order; /* member indexes sorted by member id */
    uint32_t *id_rank;  /* id_rank[i]: the position of member i in id_order */
    uint32_t *ev_off;   /* member i's events: ev[ev_off[i] .. ev_off[i + 1]) */
    rte_member_event *ev;
    size_t nev, ev_cap;
    _Atomic(rte_member_postings *) post[NATTR]; /* enum columns' posting lists, built on demand */
    _Atomic(rte_member_event_index *) evx;      /* events by (type, time), built on demand */
};

static void event_index_free(rte_member_event_index *x);

static void postings_free(rte_member_postings *p)
{
    if (!p)
        return;
    free((void *)p->count);
    free((void *)p->off);
    free((void *)p->idx);
    free(p);
}

static void snapshot_free(rte_member_snapshot *s)
{
    if (!s)
        return;
    free(s->members);
    free(s->index);
    free(s->names.slots);
    free(s->names.ids);
    free(s->names.by_id);
    for (size_t i = 0; i < NATTR; i++)
        free(s->cols[i].data);
    free(s->ev_off);
    free(s->ev);
    free(s->id_order);
    free(s->id_rank);
    for (size_t i = 0; i < NATTR; i++)
        postings_free(atomic_load(&s->post[i]));
    event_index_free(atomic_load(&s->evx));
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
    F_FLAGS,
    F_EVENTS,
    F_OPTIONS
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
    {"events", F_EVENTS},
    {"feature_options", F_OPTIONS},
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

/* --- attribute values into columns ------------------------------------------- */

/* a string value (or null: *len 0) into ps->scratch; -1 + err naming key otherwise */
static int attr_string(parser *ps, const char *key, size_t *len)
{
    int trunc;

    *len = 0;
    ps->scratch[0] = '\0';
    if (match_lit(ps, "null"))
        return 0;
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, "field '%s': expected a string", key);
    return parse_string(ps, ps->scratch, (size_t)(ps->end - ps->p) + 1, len, &trunc);
}

/* the interned code of a string for a 16-bit column; 0 for ""; -1 + err naming key */
static int attr_code(parser *ps, rte_member_snapshot *s, const char *key, const char *str,
                     size_t len, uint16_t *code)
{
    uint32_t id;
    if (!intern_id(&s->names, &s->strings, str, len, &id))
        return fail(ps, "%s", "out of memory");
    if (id > UINT16_MAX)
        return fail(ps, "field '%s': more than 65535 distinct strings in the directory", key);
    *code = (uint16_t)id;
    return 0;
}

struct set_arg {
    rte_member_snapshot *s;
    column *c;
    uint32_t *bits;
    const char *key;
};

/* one name of a list attribute: its bit in the column's own names */
static int set_element(parser *ps, const char *k, void *arg)
{
    struct set_arg *a = arg;
    size_t len;
    int bit = -1;

    (void)k;
    if (attr_string(ps, a->key, &len) < 0)
        return -1;
    if (len == 0)
        return fail(ps, "field '%s': expected non-empty strings", a->key);
    const char *name = intern_get(&a->s->names, &a->s->strings, ps->scratch, len);
    if (!name)
        return fail(ps, "%s", "out of memory");
    for (int i = 0; i < a->c->pub.nset; i++)
        if (a->c->pub.set_names[i] == name)
            bit = i;
    if (bit < 0) {
        if (a->c->pub.nset == RTE_MEMBER_SET_MAX)
            return fail(ps, "field '%s': more than 32 distinct names in the directory", a->key);
        bit = a->c->pub.nset;
        a->c->pub.set_names[a->c->pub.nset++] = name;
    }
    *a->bits |= 1u << bit;
    return 0;
}

/* attribute idx of member row from the value at ps->p */
static int parse_attr(parser *ps, rte_member_snapshot *s, size_t row, int idx, const char *key)
{
    column *c = &s->cols[idx];
    size_t len;
    double v;

    switch (c->pub.type) {
    case RTE_ATTR_BOOL: {
        int on;
        if (parse_bool(ps, &on, key) < 0)
            return -1;
        if (on)
            ((uint64_t *)c->data)[row >> 6] |= 1ULL << (row & 63);
        return 0;
    }
    case RTE_ATTR_NUM:
        if (match_lit(ps, "null"))
            return 0;
        if (parse_number(ps, &v) < 0)
            return fail(ps, "field '%s': expected a number", key);
        v = round(v * 100.0);
        if (!(v > (double)INT32_MIN && v <= (double)INT32_MAX))
            return fail(ps, "field '%s': out of range (at most 21474836.47 in magnitude)", key);
        ((int32_t *)c->data)[row] = (int32_t)v;
        return 0;
    case RTE_ATTR_TIME:
        if (attr_string(ps, key, &len) < 0)
            return -1;
        if (len) {
            int64_t t = parse_when(ps, key, ps->scratch, len);
            if (t < 0)
                return -1;
            ((int64_t *)c->data)[row] = t;
        }
        return 0;
    case RTE_ATTR_ENUM:
        if (attr_string(ps, key, &len) < 0)
            return -1;
        return attr_code(ps, s, key, ps->scratch, len, &((uint16_t *)c->data)[row]);
    case RTE_ATTR_SET: {
        struct set_arg a = {s, c, &((uint32_t *)c->data)[row], key};
        if (match_lit(ps, "null"))
            return 0;
        if (ps->p >= ps->end || *ps->p != '[')
            return fail(ps, "field '%s': expected an array of strings", key);
        return each_element(ps, key, ps->scratch, (size_t)(ps->end - ps->p) + 1, set_element, &a);
    }
    default: { /* RTE_ATTR_STR */
        if (attr_string(ps, key, &len) < 0)
            return -1;
        const char *str = arena_strdup(&s->strings, ps->scratch, len);
        if (!str)
            return fail(ps, "%s", "out of memory");
        ((const char **)c->data)[row] = str;
        return 0;
    }
    }
}

struct row_arg {
    rte_member_snapshot *s;
    size_t row;
    const char *field;
};

/* one feature option: its column "feature_options.<name>", or skipped when not one we keep */
static int option_element(parser *ps, const char *k, void *arg)
{
    struct row_arg *a = arg;
    char name[KEY_MAX + 24];

    snprintf(name, sizeof name, "feature_options.%s", k);
    int idx = attr_of(name);
    if (idx < 0)
        return skip_value(ps, 1);
    return parse_attr(ps, a->s, a->row, idx, name);
}

static int push_event(parser *ps, rte_member_snapshot *s, const rte_member_event *e)
{
    if (s->nev == s->ev_cap) {
        size_t cap = s->ev_cap ? s->ev_cap * 2 : 4096;
        rte_member_event *ev = realloc(s->ev, cap * sizeof(*ev));
        if (!ev)
            return fail(ps, "%s", "out of memory");
        s->ev = ev;
        s->ev_cap = cap;
    }
    if (s->nev >= UINT32_MAX)
        return fail(ps, "%s", "more than 4294967295 events in the directory");
    s->ev[s->nev++] = *e;
    return 0;
}

/* one event: [time, type, source or null, feature or null], the last two optional */
static int event_element(parser *ps, const char *k, void *arg)
{
    struct row_arg *a = arg;
    rte_member_event e = {0};
    size_t len;

    (void)k;
    if (ps->p >= ps->end || *ps->p != '[')
        return fail(ps, "field '%s': an event is [time, type, source, feature]", a->field);
    ps->p++;
    for (int part = 0;; part++) {
        skip_ws(ps);
        if (part == 4 || attr_string(ps, a->field, &len) < 0)
            return fail(ps, "field '%s': an event is [time, type, source, feature]", a->field);
        if (part == 0) {
            int64_t t = len ? parse_when(ps, a->field, ps->scratch, len) : -1;
            if (t < 0)
                return len ? -1 : fail(ps, "field '%s': an event needs a time", a->field);
            if (t / 1000 > UINT32_MAX)
                return fail(ps, "field '%s': an event after 2106", a->field);
            e.at_s = (uint32_t)(t / 1000);
        } else {
            uint16_t *dst = part == 1 ? &e.type : part == 2 ? &e.source : &e.feature;
            if (attr_code(ps, a->s, a->field, ps->scratch, len, dst) < 0)
                return -1;
            if (part == 1) {
                if (!len)
                    return fail(ps, "field '%s': an event needs a type", a->field);
                e.category = (uint8_t)rte_member_event_category(ps->scratch);
            }
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']' && part >= 1) {
            ps->p++;
            break;
        }
        return fail(ps, "field '%s': an event is [time, type, source, feature]", a->field);
    }
    return push_event(ps, a->s, &e);
}

/* events or feature_options of member row */
static int parse_nested(parser *ps, rte_member_snapshot *s, size_t row, enum field f,
                        const char *key)
{
    struct row_arg a = {s, row, key};
    char open = f == F_EVENTS ? '[' : '{';

    if (match_lit(ps, "null"))
        return 0;
    if (ps->p >= ps->end || *ps->p != open)
        return fail(ps,
                    f == F_EVENTS ? "field '%s': expected an array of events"
                                  : "field '%s': expected an object",
                    key);
    return each_element(ps, key, ps->scratch, (size_t)(ps->end - ps->p) + 1,
                        f == F_EVENTS ? event_element : option_element, &a);
}

/* One field's value into m; strings through the scratch buffer. */
static int parse_field(parser *ps, rte_member_snapshot *s, rte_member *m, enum field f,
                       const char *key, const char **payer)
{
    size_t len;
    int trunc;

    size_t row = (size_t)(m - s->members);
    if (f == F_UNKNOWN) {
        int idx = attr_of(key);
        return idx < 0 ? skip_value(ps, 0) : parse_attr(ps, s, row, idx, key);
    }
    if (f == F_EVENTS || f == F_OPTIONS)
        return parse_nested(ps, s, row, f, key);
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
        if (m->account_status != RTE_MEMBER_STATUS_UNKNOWN &&
            !intern_get(&s->names, &s->strings, str, len))
            return fail(ps, "%s", "out of memory");
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
    pthread_once(&attr_once, attr_init);
    for (size_t i = 0; i < NATTR; i++) {
        b->s->cols[i].pub.name = attr_schema[i].name;
        b->s->cols[i].pub.type = attr_schema[i].type;
    }
    return 0;
}

/* room for cap members in every column and the event offsets; 0 or -1 */
static int grow_columns(rte_member_snapshot *s, size_t old, size_t cap)
{
    for (size_t i = 0; i < NATTR; i++) {
        column *c = &s->cols[i];
        int bits = c->pub.type == RTE_ATTR_BOOL;
        size_t n_old = bits ? (old + 63) / 64 : old, n_new = bits ? (cap + 63) / 64 : cap;
        size_t elem = attr_elem(c->pub.type);
        char *d = realloc(c->data, n_new * elem);
        if (!d)
            return -1;
        if (bits)
            memset(d + n_old * elem, 0, (n_new - n_old) * elem);
        c->data = d;
    }
    uint32_t *off = realloc(s->ev_off, (cap + 1) * sizeof(*off));
    if (!off)
        return -1;
    s->ev_off = off;
    return 0;
}

/* member row's attributes absent; its events start here */
static void row_defaults(rte_member_snapshot *s, size_t row)
{
    for (size_t i = 0; i < NATTR; i++) {
        column *c = &s->cols[i];
        switch (c->pub.type) {
        case RTE_ATTR_NUM:
            ((int32_t *)c->data)[row] = RTE_ATTR_NUM_ABSENT;
            break;
        case RTE_ATTR_TIME:
            ((int64_t *)c->data)[row] = RTE_ATTR_TIME_ABSENT;
            break;
        case RTE_ATTR_ENUM:
            ((uint16_t *)c->data)[row] = 0;
            break;
        case RTE_ATTR_SET:
            ((uint32_t *)c->data)[row] = 0;
            break;
        case RTE_ATTR_STR:
            ((const char **)c->data)[row] = "";
            break;
        default:
            break; /* BOOL words are zeroed when grown */
        }
    }
    s->ev_off[row] = (uint32_t)s->nev;
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
        if (!mm || !ll || grow_columns(s, s->cap, cap) < 0)
            goto oom;
        s->cap = cap;
    }
    row_defaults(s, s->count);
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
                if (b->lines)
                    snprintf(err, errlen, "member_dir: %s: line %u: member_id '%s' repeats line %u",
                             b->source, b->lines[i], id, b->lines[k]);
                else
                    snprintf(
                        err, errlen,
                        "member_dir: %s: compiled directory: member %zu: member_id '%s' repeats "
                        "member %zu",
                        b->source, i, id, k);
                return -1;
            }
            j = (j + 1) & s->index_mask;
        }
        s->index[j] = (uint32_t)(i + 1);
    }
    return 0;
}

/* a record's string field as a code; -1 beyond 16 bits */
static int field_code(const rte_member_snapshot *s, const char *v, uint16_t *code)
{
    uint32_t id = intern_find(&s->names, v);
    if (id > UINT16_MAX)
        return -1;
    *code = (uint16_t)id;
    return 0;
}

/* the record fields' columns (the first NDERIVED attributes), from the records */
static int derive_columns(rte_member_snapshot *s)
{
    _Static_assert(NDERIVED == 14, "the fields below");
    uint16_t *code[7];
    for (int k = 0; k < 7; k++)
        code[k] = s->cols[k].data;
    uint64_t *rte = s->cols[7].data, *mock = s->cols[8].data;
    int64_t *t[5];
    for (int k = 0; k < 5; k++)
        t[k] = s->cols[9 + k].data;
    static const char *const status[] = {"ACTIVE", "INACTIVE", "SUSPENDED", "PENDING", ""};

    for (size_t i = 0; i < s->count; i++) {
        const rte_member *m = &s->members[i];
        const char *v[7] = {
            m->sponsor_id,         m->population_id,         m->state, m->language, m->plan_type,
            m->trading_partner_id, status[m->account_status]};
        for (int k = 0; k < 7; k++)
            if (field_code(s, v[k], &code[k][i]) < 0)
                return -1;
        if (m->has_rte_enabled)
            rte[i >> 6] |= 1ULL << (i & 63);
        if (m->is_mock)
            mock[i >> 6] |= 1ULL << (i & 63);
        int64_t days = 0;
        char derr[64];
        t[0][i] = m->date_of_birth[0] && rte_input_date(m->date_of_birth, strlen(m->date_of_birth),
                                                        RTE_INPUT_DATE_ISO | RTE_INPUT_DATE_BASIC,
                                                        &days, NULL, derr, sizeof derr) == 0
                      ? days * 86400000LL
                      : RTE_ATTR_TIME_ABSENT;
        int64_t when[4] = {m->last_login_ms, m->last_check_ms, m->appointment_ms, m->enrollment_ms};
        for (int k = 0; k < 4; k++)
            t[1 + k][i] = when[k] < 0 ? RTE_ATTR_TIME_ABSENT : when[k];
    }
    return 0;
}

static int cmp_by_id(const void *a, const void *b, void *arg)
{
    const rte_member *m = arg;
    return strcmp(m[*(const uint32_t *)a].member_id, m[*(const uint32_t *)b].member_id);
}

/* s->id_order: indexes by member id; 0 or -1 out of memory */
static int build_id_order(rte_member_snapshot *s)
{
    s->id_order = malloc((s->count ? s->count : 1) * sizeof(*s->id_order));
    if (!s->id_order)
        return -1;
    for (size_t i = 0; i < s->count; i++)
        s->id_order[i] = (uint32_t)i;
    qsort_r(s->id_order, s->count, sizeof(*s->id_order), cmp_by_id, s->members);
    s->id_rank = malloc((s->count ? s->count : 1) * sizeof(*s->id_rank));
    if (!s->id_rank)
        return -1;
    for (size_t r = 0; r < s->count; r++)
        s->id_rank[s->id_order[r]] = (uint32_t)r;
    return 0;
}

/* the columns' public pointers, once their data is complete */
static void publish_columns(rte_member_snapshot *s)
{
    for (size_t i = 0; i < NATTR; i++) {
        column *c = &s->cols[i];
        switch (c->pub.type) {
        case RTE_ATTR_BOOL:
            c->pub.bits = c->data;
            break;
        case RTE_ATTR_NUM:
            c->pub.num = c->data;
            break;
        case RTE_ATTR_TIME:
            c->pub.time = c->data;
            break;
        case RTE_ATTR_ENUM:
            c->pub.code = c->data;
            break;
        case RTE_ATTR_SET:
            c->pub.set = c->data;
            break;
        default:
            c->pub.str = c->data;
            break;
        }
    }
}

/* Take the finished snapshot out of the builder. */
static rte_member_snapshot *builder_finish(builder *b, char *err, size_t errlen)
{
    rte_member_snapshot *s;

    if (builder_index(b, err, errlen) < 0)
        return NULL;
    s = b->s;
    if (!s->ev_off && grow_columns(s, 0, 1) < 0) {
        snprintf(err, errlen, "member_dir: %s: out of memory", b->source);
        return NULL;
    }
    s->ev_off[s->count] = (uint32_t)s->nev;
    if (build_id_order(s) < 0) {
        snprintf(err, errlen, "member_dir: %s: out of memory", b->source);
        return NULL;
    }
    if (derive_columns(s) < 0) {
        snprintf(err, errlen, "member_dir: %s: more than 65535 distinct strings", b->source);
        return NULL;
    }
    publish_columns(s);
    b->s = NULL;
    builder_cleanup(b);
    return s;
}

/* --- compiled form ------------------------------------------------------------ */

/*
 * A compiled directory (rte_member_snapshot_write) is a snapshot's content
 * as fixed-size little-endian arrays, so a load is a bounded read plus
 * validation instead of a parse:
 *
 *   header (64 bytes, not hashed): magic "RTE-MDIR", u32 format version,
 *     u32 number of sections, u64 members, u64 file size, SHA-256 of
 *     bytes [64, file size)
 *   section table: per section u32 id, u32 0, u64 offset, u64 length; the
 *     sections follow in id order, back to back, up to the end of the file
 *   1 meta: u64 members, values, flags, events, string bytes, columns
 *   2 strings: NUL-terminated UTF-8 strings, byte 0 is ""
 *   3 values: the intern table, u32 string offset per code 1..values
 *   4 flags: u32 code of each feature flag name, in bit order
 *   5 members: MDIR_REC bytes per member (mdir_put_member)
 *   6 columns: per stored attribute u32 name offset, u32 type, u32 names,
 *     32 x u32 codes of a list attribute's names
 *   7 column data: each column's values in the order of 6 (booleans as
 *     u64 words, numbers i32, times i64, codes u16, lists u32, strings u32
 *     offsets)
 *   8 event offsets: u32 per member + 1;  9 events: 12 bytes each
 *   10 id order: u32 member index per rank
 *
 * The record fields' columns, the id index, id ranks and event categories'
 * consistency are rebuilt or checked on load, never trusted. Everything read
 * is outside input: the checksum is verified over the whole body first
 * (a first pass), then every count, offset, code and bit is bounds-checked
 * while the arrays are filled; a failure names the section.
 */

#define MDIR_MAGIC "RTE-MDIR"
#define MDIR_VERSION 1u
#define MDIR_HEADER 64
#define MDIR_NSECT 10
#define MDIR_TABLE (MDIR_NSECT * 24)
#define MDIR_META 48
#define MDIR_REC 208
#define MDIR_COLDESC (12 + 4 * RTE_MEMBER_SET_MAX)
#define MDIR_EVENT 12
#define MDIR_CHUNK 4096 /* records decoded per read */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the compiled form is little-endian");

enum {
    SEC_META = 1,
    SEC_STRINGS,
    SEC_VALUES,
    SEC_FLAGS,
    SEC_MEMBERS,
    SEC_COLUMNS,
    SEC_COLDATA,
    SEC_EVOFF,
    SEC_EVENTS,
    SEC_IDORDER
};

static const char *const sec_names[MDIR_NSECT + 1] = {
    "",        "meta",        "strings",       "values", "flags",   "members",
    "columns", "column data", "event offsets", "events", "id order"};

static void put_u16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, sizeof v);
}
static void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}
static void put_u64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}
static uint16_t get_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* bytes of one stored column of type for count members */
static uint64_t mdir_col_bytes(int type, uint64_t count)
{
    if (type == RTE_ATTR_BOOL)
        return (count + 63) / 64 * 8;
    if (type == RTE_ATTR_STR)
        return count * 4; /* string offsets */
    return count * attr_elem(type);
}

/* 1 when buf starts with the compiled form's magic */
static int mdir_is_compiled(const void *buf, size_t len)
{
    return len >= 8 && memcmp(buf, MDIR_MAGIC, 8) == 0;
}

/* -- writing -- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

/* the offset of a copy of s in b (0 for ""); UINT32_MAX when out of memory or beyond 4 GiB */
static uint32_t strbuf_add(strbuf *b, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n == 1)
        return 0;
    if (b->len + n > UINT32_MAX - 1)
        return UINT32_MAX;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 20;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return UINT32_MAX;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return (uint32_t)(b->len - n);
}

typedef struct mdir_writer {
    FILE *f;
    EVP_MD_CTX *md;
    int failed;
} mdir_writer;

static void w_bytes(mdir_writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n || EVP_DigestUpdate(w->md, p, n) != 1)
        w->failed = 1;
}

/* member m as a MDIR_REC-byte record; str[4]: its four string offsets */
static void mdir_put_member(const rte_member_snapshot *s, const rte_member *m, const uint32_t *str,
                            unsigned char *r)
{
    const char *v[6] = {m->sponsor_id, m->population_id, m->state,
                        m->language,   m->plan_type,     m->trading_partner_id};
    int64_t when[4] = {m->last_login_ms, m->last_check_ms, m->appointment_ms, m->enrollment_ms};

    for (int k = 0; k < 4; k++)
        put_u32(r + 4 * k, str[k]);
    for (int k = 0; k < 6; k++)
        put_u32(r + 16 + 4 * k, intern_find(&s->names, v[k]));
    r[40] = (unsigned char)(m->has_rte_enabled != 0);
    r[41] = (unsigned char)(m->is_mock != 0);
    r[42] = (unsigned char)m->account_status;
    r[43] = 0;
    put_u64(r + 44, m->feature_flags);
    for (int k = 0; k < 4; k++)
        put_u64(r + 52 + 8 * k, (uint64_t)when[k]);
    memcpy(r + 84, m->usage_by_hour, sizeof(m->usage_by_hour));
    memcpy(r + 180, m->weekday_factor, sizeof(m->weekday_factor));
    _Static_assert(84 + 24 * 4 == 180 && 180 + 7 * 4 + 0 == MDIR_REC, "record layout");
}

/* the strings of s (values, column names, member strings, string columns) and their offsets */
typedef struct mdir_strings {
    strbuf b;
    uint32_t *member; /* 4 per member: id, first, last, date of birth */
    uint32_t *col[NATTR];
    uint32_t name[NATTR];
    uint32_t *value; /* value[id - 1] */
} mdir_strings;

static void mdir_strings_free(mdir_strings *t)
{
    free(t->b.p);
    free(t->member);
    free(t->value);
    for (size_t i = 0; i < NATTR; i++)
        free(t->col[i]);
}

static int mdir_strings_build(const rte_member_snapshot *s, mdir_strings *t)
{
    memset(t, 0, sizeof(*t));
    size_t n = s->count ? s->count : 1;
    t->b.p = malloc(1 << 20);
    t->member = malloc(n * 4 * sizeof(uint32_t));
    t->value = malloc((s->names.used ? s->names.used : 1) * sizeof(uint32_t));
    if (!t->b.p || !t->member || !t->value)
        return -1;
    t->b.cap = 1 << 20;
    t->b.p[0] = '\0';
    t->b.len = 1;
    uint32_t bad = 0;
    for (size_t id = 1; id <= s->names.used; id++)
        bad |= (t->value[id - 1] = strbuf_add(&t->b, s->names.by_id[id])) == UINT32_MAX;
    for (size_t i = NDERIVED; i < NATTR; i++) {
        bad |= (t->name[i] = strbuf_add(&t->b, s->cols[i].pub.name)) == UINT32_MAX;
        if (s->cols[i].pub.type != RTE_ATTR_STR)
            continue;
        if (!(t->col[i] = malloc(n * sizeof(uint32_t))))
            return -1;
        const char **str = s->cols[i].data;
        for (size_t r = 0; r < s->count; r++)
            bad |= (t->col[i][r] = strbuf_add(&t->b, str[r])) == UINT32_MAX;
    }
    for (size_t r = 0; r < s->count; r++) {
        const rte_member *m = &s->members[r];
        const char *v[4] = {m->member_id, m->first_name, m->last_name, m->date_of_birth};
        for (int k = 0; k < 4; k++)
            bad |= (t->member[4 * r + k] = strbuf_add(&t->b, v[k])) == UINT32_MAX;
    }
    return bad ? -1 : 0;
}

/* rte_member_snapshot_write - any thread, lock-free (s is immutable) */
int rte_member_snapshot_write(const rte_member_snapshot *s, const char *path, char *err,
                              size_t errlen)
{
    mdir_strings t;
    mdir_writer w = {0};
    unsigned char hdr[MDIR_HEADER] = {0}, table[MDIR_TABLE], meta[MDIR_META];
    unsigned char *buf = NULL;
    char tmp[4096];
    unsigned int mdlen = 0;
    int rc = -1;
    uint64_t count = s->count, ncols = NATTR - NDERIVED, coldata = 0;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "member_dir: %s: path too long", path);
        return -1;
    }
    if (mdir_strings_build(s, &t) < 0) {
        snprintf(err, errlen, "member_dir: %s: out of memory (or strings beyond 4 GiB)", path);
        goto out;
    }
    for (size_t i = NDERIVED; i < NATTR; i++)
        coldata += mdir_col_bytes(s->cols[i].pub.type, count);
    uint64_t len[MDIR_NSECT + 1] = {0,
                                    MDIR_META,
                                    t.b.len,
                                    4 * (uint64_t)s->names.used,
                                    4 * (uint64_t)s->nflags,
                                    MDIR_REC * count,
                                    MDIR_COLDESC * ncols,
                                    coldata,
                                    4 * (count + 1),
                                    MDIR_EVENT * (uint64_t)s->nev,
                                    4 * count};
    uint64_t off = MDIR_HEADER + MDIR_TABLE;
    for (int k = 1; k <= MDIR_NSECT; k++) {
        unsigned char *e = table + 24 * (k - 1);
        put_u32(e, (uint32_t)k);
        put_u32(e + 4, 0);
        put_u64(e + 8, off);
        put_u64(e + 16, len[k]);
        off += len[k];
    }
    memcpy(hdr, MDIR_MAGIC, 8);
    put_u32(hdr + 8, MDIR_VERSION);
    put_u32(hdr + 12, MDIR_NSECT);
    put_u64(hdr + 16, count);
    put_u64(hdr + 24, off);
    put_u64(meta, count);
    put_u64(meta + 8, s->names.used);
    put_u64(meta + 16, (uint64_t)s->nflags);
    put_u64(meta + 24, s->nev);
    put_u64(meta + 32, t.b.len);
    put_u64(meta + 40, ncols);

    buf = malloc(MDIR_CHUNK * MDIR_REC);
    w.md = EVP_MD_CTX_new();
    w.f = fopen(tmp, "wb");
    if (!buf || !w.md || !w.f || EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "member_dir: cannot write '%s': %s", tmp,
                 w.f ? "out of memory" : strerror(errno));
        goto out;
    }
    w_bytes(&w, hdr, sizeof hdr);
    EVP_DigestInit_ex(w.md, EVP_sha256(), NULL); /* the header is not hashed */
    w_bytes(&w, table, sizeof table);
    w_bytes(&w, meta, sizeof meta);
    w_bytes(&w, t.b.p, t.b.len);
    for (size_t id = 1; id <= s->names.used; id++) {
        put_u32(buf, t.value[id - 1]);
        w_bytes(&w, buf, 4);
    }
    for (int k = 0; k < s->nflags; k++) {
        put_u32(buf, intern_find(&s->names, s->flags[k]));
        w_bytes(&w, buf, 4);
    }
    for (size_t r = 0; r < count; r += MDIR_CHUNK) {
        size_t n = count - r < MDIR_CHUNK ? count - r : MDIR_CHUNK;
        for (size_t j = 0; j < n; j++)
            mdir_put_member(s, &s->members[r + j], t.member + 4 * (r + j), buf + j * MDIR_REC);
        w_bytes(&w, buf, n * MDIR_REC);
    }
    for (size_t i = NDERIVED; i < NATTR; i++) {
        const rte_member_column *c = &s->cols[i].pub;
        memset(buf, 0, MDIR_COLDESC);
        put_u32(buf, t.name[i]);
        put_u32(buf + 4, (uint32_t)c->type);
        put_u32(buf + 8, (uint32_t)c->nset);
        for (int k = 0; k < c->nset; k++)
            put_u32(buf + 12 + 4 * k, intern_find(&s->names, c->set_names[k]));
        w_bytes(&w, buf, MDIR_COLDESC);
    }
    for (size_t i = NDERIVED; i < NATTR; i++) {
        const column *c = &s->cols[i];
        if (c->pub.type == RTE_ATTR_STR)
            w_bytes(&w, t.col[i], 4 * count);
        else
            w_bytes(&w, c->data, mdir_col_bytes(c->pub.type, count));
    }
    w_bytes(&w, s->ev_off, 4 * (count + 1));
    for (size_t e = 0; e < s->nev; e += MDIR_CHUNK) {
        size_t n = s->nev - e < MDIR_CHUNK ? s->nev - e : MDIR_CHUNK;
        for (size_t j = 0; j < n; j++) {
            const rte_member_event *ev = &s->ev[e + j];
            unsigned char *p = buf + j * MDIR_EVENT;
            put_u32(p, ev->at_s);
            put_u16(p + 4, ev->type);
            put_u16(p + 6, ev->source);
            put_u16(p + 8, ev->feature);
            p[10] = ev->category;
            p[11] = 0;
        }
        w_bytes(&w, buf, n * MDIR_EVENT);
    }
    w_bytes(&w, s->id_order, 4 * count);
    if (!w.failed && EVP_DigestFinal_ex(w.md, hdr + 32, &mdlen) == 1 && mdlen == 32 &&
        fseek(w.f, 0, SEEK_SET) == 0 && fwrite(hdr, 1, sizeof hdr, w.f) == sizeof hdr &&
        fflush(w.f) == 0 && fsync(fileno(w.f)) == 0) {
        rc = 0;
    } else {
        snprintf(err, errlen, "member_dir: writing '%s' failed: %s", tmp, strerror(errno));
    }
    if (fclose(w.f) != 0 && rc == 0) {
        snprintf(err, errlen, "member_dir: writing '%s' failed: %s", tmp, strerror(errno));
        rc = -1;
    }
    w.f = NULL;
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "member_dir: cannot rename '%s' to '%s': %s", tmp, path,
                 strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        unlink(tmp);
out:
    if (w.f) {
        fclose(w.f);
        unlink(tmp);
    }
    EVP_MD_CTX_free(w.md);
    free(buf);
    mdir_strings_free(&t);
    return rc;
}

/* -- reading -- */

typedef struct mdir_reader {
    FILE *f;                  /* the file, or */
    const unsigned char *buf; /* a body in memory */
    uint64_t len, pos;
    const char *source;
    char *err;
    size_t errlen;
    /* from the file */
    uint64_t count, nvalues, nflags, nev, nstr, ncols;
    uint64_t sec_len[MDIR_NSECT + 1];
    const char *str; /* the strings section, in the snapshot's arena */
    uint8_t *cat;    /* event category per value code, 255 until computed */
} mdir_reader;

__attribute__((format(printf, 2, 3))) static int mdir_bad(mdir_reader *r, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "member_dir: %s: compiled directory: %s", r->source, msg);
    return -1;
}

/* n bytes at the read position into dst; -1 + err naming section sec when short */
static int mdir_read(mdir_reader *r, void *dst, size_t n, int sec)
{
    if (n > r->len - r->pos)
        return mdir_bad(r, "section '%s': truncated", sec_names[sec]);
    if (r->f) {
        if (fread(dst, 1, n, r->f) != n)
            return mdir_bad(r, "section '%s': read failed: %s", sec_names[sec],
                            ferror(r->f) ? strerror(errno) : "end of file");
    } else if (n) {
        memcpy(dst, r->buf + r->pos, n);
    }
    r->pos += n;
    return 0;
}

/* the string at offset off of the strings section; NULL + err when out of bounds */
static const char *mdir_str(mdir_reader *r, uint32_t off, int sec, const char *what, uint64_t i)
{
    if (off >= r->nstr) {
        mdir_bad(r, "section '%s': %s %llu: string offset %u beyond %llu bytes", sec_names[sec],
                 what, (unsigned long long)i, off, (unsigned long long)r->nstr);
        return NULL;
    }
    return r->str + off;
}

/* the interned string of code id; NULL + err when id is not a code of the values */
static const char *mdir_value(mdir_reader *r, rte_member_snapshot *s, uint32_t id, int sec,
                              const char *what, uint64_t i)
{
    if (id > r->nvalues) {
        mdir_bad(r, "section '%s': %s %llu: code %u beyond the %llu values", sec_names[sec], what,
                 (unsigned long long)i, id, (unsigned long long)r->nvalues);
        return NULL;
    }
    return id ? s->names.by_id[id] : "";
}

/* the SHA-256 of bytes [MDIR_HEADER, len) equals want; -1 + err otherwise */
static int mdir_verify(mdir_reader *r, const unsigned char *want)
{
    unsigned char got[32];
    unsigned int glen = 0;
    unsigned char *chunk = NULL;
    int ok = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    if (r->f) {
        chunk = malloc(1 << 20);
        if (!chunk || fseek(r->f, MDIR_HEADER, SEEK_SET) != 0)
            goto out;
        size_t n;
        while ((n = fread(chunk, 1, 1 << 20, r->f)) > 0)
            if (EVP_DigestUpdate(md, chunk, n) != 1)
                goto out;
        if (ferror(r->f) || fseek(r->f, MDIR_HEADER, SEEK_SET) != 0)
            goto out;
    } else if (EVP_DigestUpdate(md, r->buf + MDIR_HEADER, r->len - MDIR_HEADER) != 1) {
        goto out;
    }
    ok = EVP_DigestFinal_ex(md, got, &glen) == 1 && glen == 32 ? 1 : -1;
out:
    free(chunk);
    EVP_MD_CTX_free(md);
    if (ok == 0)
        return mdir_bad(r, "cannot compute the checksum: %s",
                        r->f && ferror(r->f) ? strerror(errno) : "out of memory");
    if (ok < 0 || memcmp(got, want, 32) != 0)
        return mdir_bad(r, "checksum mismatch (SHA-256 of bytes %d..%llu): the file is damaged",
                        MDIR_HEADER, (unsigned long long)r->len);
    return 0;
}

/* header, checksum, section table and meta; 0 or -1 + err */
static int mdir_read_head(mdir_reader *r)
{
    unsigned char hdr[MDIR_HEADER], table[MDIR_TABLE], meta[MDIR_META];

    if (r->len < MDIR_HEADER + MDIR_TABLE + MDIR_META)
        return mdir_bad(r, "truncated: %llu bytes, shorter than the header and section table",
                        (unsigned long long)r->len);
    if (mdir_read(r, hdr, sizeof hdr, SEC_META) < 0)
        return -1;
    uint32_t version = get_u32(hdr + 8);
    if (version != MDIR_VERSION)
        return mdir_bad(r,
                        "format version %u, this build reads version %u (compile it again "
                        "with member-gen --compile)",
                        version, MDIR_VERSION);
    if (get_u32(hdr + 12) != MDIR_NSECT)
        return mdir_bad(r, "header: %u sections, expected %d", get_u32(hdr + 12), MDIR_NSECT);
    if (get_u64(hdr + 24) != r->len)
        return mdir_bad(r, "truncated or extended: the header says %llu bytes, the file has %llu",
                        (unsigned long long)get_u64(hdr + 24), (unsigned long long)r->len);
    if (mdir_verify(r, hdr + 32) < 0)
        return -1;
    r->pos = MDIR_HEADER;
    if (mdir_read(r, table, sizeof table, SEC_META) < 0 ||
        mdir_read(r, meta, sizeof meta, SEC_META) < 0)
        return -1;
    uint64_t off = MDIR_HEADER + MDIR_TABLE;
    for (int k = 1; k <= MDIR_NSECT; k++) {
        const unsigned char *e = table + 24 * (k - 1);
        if (get_u32(e) != (uint32_t)k || get_u64(e + 8) != off)
            return mdir_bad(r,
                            "section table: entry %d is section %u at offset %llu, expected "
                            "section %d ('%s') at %llu",
                            k, get_u32(e), (unsigned long long)get_u64(e + 8), k, sec_names[k],
                            (unsigned long long)off);
        r->sec_len[k] = get_u64(e + 16);
        if (r->sec_len[k] > r->len - off)
            return mdir_bad(r,
                            "section table: section '%s' (%llu bytes at %llu) beyond the end "
                            "of the file",
                            sec_names[k], (unsigned long long)r->sec_len[k],
                            (unsigned long long)off);
        off += r->sec_len[k];
    }
    if (off != r->len)
        return mdir_bad(r, "section table: the sections end at %llu, the file at %llu",
                        (unsigned long long)off, (unsigned long long)r->len);
    r->count = get_u64(meta);
    r->nvalues = get_u64(meta + 8);
    r->nflags = get_u64(meta + 16);
    r->nev = get_u64(meta + 24);
    r->nstr = get_u64(meta + 32);
    r->ncols = get_u64(meta + 40);
    if (r->sec_len[SEC_META] != MDIR_META || r->count != get_u64(hdr + 16))
        return mdir_bad(r, "section 'meta': %llu members, the header says %llu",
                        (unsigned long long)r->count, (unsigned long long)get_u64(hdr + 16));
    if (r->count >= UINT32_MAX - 1 || r->nvalues >= UINT32_MAX || r->nev >= UINT32_MAX ||
        r->nstr < 1 || r->nstr > UINT32_MAX || r->nflags > RTE_MEMBER_MAX_FLAGS ||
        r->ncols > NATTR - NDERIVED)
        return mdir_bad(r,
                        "section 'meta': a count out of range (members %llu, values %llu, "
                        "flags %llu, events %llu, string bytes %llu, columns %llu)",
                        (unsigned long long)r->count, (unsigned long long)r->nvalues,
                        (unsigned long long)r->nflags, (unsigned long long)r->nev,
                        (unsigned long long)r->nstr, (unsigned long long)r->ncols);
    uint64_t want[MDIR_NSECT + 1] = {0,
                                     MDIR_META,
                                     r->nstr,
                                     4 * r->nvalues,
                                     4 * r->nflags,
                                     MDIR_REC * r->count,
                                     MDIR_COLDESC * r->ncols,
                                     r->sec_len[SEC_COLDATA], /* checked with the columns */
                                     4 * (r->count + 1),
                                     MDIR_EVENT * r->nev,
                                     4 * r->count};
    for (int k = 1; k <= MDIR_NSECT; k++)
        if (r->sec_len[k] != want[k])
            return mdir_bad(r, "section '%s': %llu bytes, expected %llu", sec_names[k],
                            (unsigned long long)r->sec_len[k], (unsigned long long)want[k]);
    return 0;
}

/* sections strings, values and flags into s */
static int mdir_read_dict(mdir_reader *r, rte_member_snapshot *s)
{
    char *str = arena_alloc(&s->strings, r->nstr);
    size_t bad;

    if (!str)
        return mdir_bad(r, "%s", "out of memory");
    if (mdir_read(r, str, r->nstr, SEC_STRINGS) < 0)
        return -1;
    if (str[0] != '\0' || str[r->nstr - 1] != '\0')
        return mdir_bad(r, "section 'strings': does not start and end with a NUL byte");
    if (!rte_input_utf8(str, r->nstr, &bad))
        return mdir_bad(r, "section 'strings': malformed UTF-8 at byte %zu", bad);
    r->str = str;
    for (uint64_t i = 0; i < r->nvalues; i++) {
        unsigned char b[4];
        uint32_t id;
        if (mdir_read(r, b, 4, SEC_VALUES) < 0)
            return -1;
        const char *v = mdir_str(r, get_u32(b), SEC_VALUES, "value", i + 1);
        if (!v)
            return -1;
        if (!v[0])
            return mdir_bad(r, "section 'values': value %llu is empty", (unsigned long long)i + 1);
        if (!intern_id(&s->names, &s->strings, v, strlen(v), &id))
            return mdir_bad(r, "%s", "out of memory");
        if (id != i + 1)
            return mdir_bad(r, "section 'values': value %llu ('%.40s') repeats value %u",
                            (unsigned long long)i + 1, v, id);
    }
    r->cat = malloc(r->nvalues + 1);
    if (!r->cat)
        return mdir_bad(r, "%s", "out of memory");
    memset(r->cat, 255, r->nvalues + 1);
    for (uint64_t k = 0; k < r->nflags; k++) {
        unsigned char b[4];
        if (mdir_read(r, b, 4, SEC_FLAGS) < 0)
            return -1;
        uint32_t id = get_u32(b);
        const char *name = mdir_value(r, s, id, SEC_FLAGS, "flag", k);
        if (!name)
            return -1;
        if (id == 0 || flag_bit(s, name) != (int)k)
            return mdir_bad(r, "section 'flags': flag %llu is empty or repeats a flag",
                            (unsigned long long)k);
    }
    return 0;
}

/* one MDIR_REC record into m; 0 or -1 + err naming member i */
static int mdir_get_member(mdir_reader *r, rte_member_snapshot *s, const unsigned char *p,
                           uint64_t i, rte_member *m)
{
    const char **str[4] = {&m->member_id, &m->first_name, &m->last_name, &m->date_of_birth};
    const char **code[6] = {&m->sponsor_id, &m->population_id, &m->state,
                            &m->language,   &m->plan_type,     &m->trading_partner_id};
    int64_t *when[4] = {&m->last_login_ms, &m->last_check_ms, &m->appointment_ms,
                        &m->enrollment_ms};
    char why[200];

    for (int k = 0; k < 4; k++)
        if (!(*str[k] = mdir_str(r, get_u32(p + 4 * k), SEC_MEMBERS, "member", i)))
            return -1;
    for (int k = 0; k < 6; k++)
        if (!(*code[k] = mdir_value(r, s, get_u32(p + 16 + 4 * k), SEC_MEMBERS, "member", i)))
            return -1;
    if (rte_input_id(m->member_id, strlen(m->member_id), RTE_INPUT_ID_MAX, "member_id", why,
                     sizeof why) != 0)
        return mdir_bad(r, "section 'members': member %llu: %s", (unsigned long long)i, why);
    if (m->date_of_birth[0] && rte_input_date(m->date_of_birth, strlen(m->date_of_birth),
                                              RTE_INPUT_DATE_ISO | RTE_INPUT_DATE_BASIC, NULL,
                                              "date_of_birth", why, sizeof why) != 0)
        return mdir_bad(r, "section 'members': member %llu: %s", (unsigned long long)i, why);
    if (p[40] > 1 || p[41] > 1 || p[42] > RTE_MEMBER_STATUS_UNKNOWN || p[43])
        return mdir_bad(r, "section 'members': member %llu: a flag or status out of range",
                        (unsigned long long)i);
    m->has_rte_enabled = p[40];
    m->is_mock = p[41];
    m->account_status = p[42];
    m->feature_flags = get_u64(p + 44);
    if (r->nflags < 64 && (m->feature_flags >> r->nflags) != 0)
        return mdir_bad(r,
                        "section 'members': member %llu: a feature flag bit beyond the %llu "
                        "flags",
                        (unsigned long long)i, (unsigned long long)r->nflags);
    for (int k = 0; k < 4; k++) {
        *when[k] = (int64_t)get_u64(p + 52 + 8 * k);
        if (*when[k] < -1)
            return mdir_bad(r, "section 'members': member %llu: a time before 1970",
                            (unsigned long long)i);
    }
    memcpy(m->usage_by_hour, p + 84, sizeof(m->usage_by_hour));
    memcpy(m->weekday_factor, p + 180, sizeof(m->weekday_factor));
    for (int h = 0; h < 24; h++)
        if (isnan(m->usage_by_hour[h]) || (h < 7 && isnan(m->weekday_factor[h])))
            return mdir_bad(r, "section 'members': member %llu: a usage factor is NaN",
                            (unsigned long long)i);
    return 0;
}

static int mdir_read_members(mdir_reader *r, rte_member_snapshot *s, unsigned char *buf)
{
    for (uint64_t i = 0; i < r->count; i += MDIR_CHUNK) {
        uint64_t n = r->count - i < MDIR_CHUNK ? r->count - i : MDIR_CHUNK;
        if (mdir_read(r, buf, n * MDIR_REC, SEC_MEMBERS) < 0)
            return -1;
        for (uint64_t j = 0; j < n; j++)
            if (mdir_get_member(r, s, buf + j * MDIR_REC, i + j, &s->members[i + j]) < 0)
                return -1;
    }
    s->count = r->count;
    return 0;
}

/* one column's values into c (c's set names already read); 0 or -1 + err */
static int mdir_read_column(mdir_reader *r, column *c, unsigned char *buf)
{
    uint64_t n = r->count;
    const char *name = c->pub.name;

    if (c->pub.type != RTE_ATTR_STR) {
        if (mdir_read(r, c->data, mdir_col_bytes(c->pub.type, n), SEC_COLDATA) < 0)
            return -1;
    }
    switch (c->pub.type) {
    case RTE_ATTR_BOOL:
        if (n % 64 && (((uint64_t *)c->data)[n / 64] >> (n % 64)) != 0)
            return mdir_bad(r, "section 'column data': column '%s': bits beyond the last member",
                            name);
        return 0;
    case RTE_ATTR_ENUM:
        for (uint64_t i = 0; i < n; i++)
            if (((uint16_t *)c->data)[i] > r->nvalues)
                return mdir_bad(r,
                                "section 'column data': column '%s': member %llu: code %u "
                                "beyond the %llu values",
                                name, (unsigned long long)i, ((uint16_t *)c->data)[i],
                                (unsigned long long)r->nvalues);
        return 0;
    case RTE_ATTR_SET:
        for (uint64_t i = 0; c->pub.nset < 32 && i < n; i++)
            if (((uint32_t *)c->data)[i] >> c->pub.nset)
                return mdir_bad(r,
                                "section 'column data': column '%s': member %llu: a name "
                                "beyond the column's %d",
                                name, (unsigned long long)i, c->pub.nset);
        return 0;
    case RTE_ATTR_STR:
        for (uint64_t i = 0; i < n; i += MDIR_CHUNK) {
            uint64_t k = n - i < MDIR_CHUNK ? n - i : MDIR_CHUNK;
            if (mdir_read(r, buf, k * 4, SEC_COLDATA) < 0)
                return -1;
            for (uint64_t j = 0; j < k; j++) {
                const char *v = mdir_str(r, get_u32(buf + 4 * j), SEC_COLDATA, name, i + j);
                if (!v)
                    return -1;
                ((const char **)c->data)[i + j] = v;
            }
        }
        return 0;
    default: /* numbers and times: every value is one */
        return 0;
    }
}

/* sections columns and column data into s */
static int mdir_read_columns(mdir_reader *r, rte_member_snapshot *s, unsigned char *buf)
{
    int order[NATTR], seen[NATTR] = {0};
    uint64_t want = 0;

    for (uint64_t k = 0; k < r->ncols; k++) {
        if (mdir_read(r, buf, MDIR_COLDESC, SEC_COLUMNS) < 0)
            return -1;
        const char *name = mdir_str(r, get_u32(buf), SEC_COLUMNS, "column", k);
        if (!name)
            return -1;
        int idx = attr_of(name);
        uint32_t type = get_u32(buf + 4), nset = get_u32(buf + 8);
        if (idx < (int)NDERIVED || (uint32_t)attr_schema[idx].type != type || seen[idx])
            return mdir_bad(r,
                            "section 'columns': column %llu '%.64s' (type %u) is not an "
                            "attribute of this build, or repeats",
                            (unsigned long long)k, name, type);
        if (nset > RTE_MEMBER_SET_MAX || (nset && type != RTE_ATTR_SET))
            return mdir_bad(r, "section 'columns': column '%s': %u list names", name, nset);
        column *c = &s->cols[idx];
        for (uint32_t j = 0; j < nset; j++) {
            uint32_t id = get_u32(buf + 12 + 4 * j);
            const char *v = mdir_value(r, s, id, SEC_COLUMNS, "column", k);
            if (!v)
                return -1;
            for (uint32_t q = 0; q < j; q++)
                if (c->pub.set_names[q] == v)
                    v = "";
            if (!v[0])
                return mdir_bad(r,
                                "section 'columns': column '%s': list name %u is empty or "
                                "repeats",
                                name, j);
            c->pub.set_names[j] = v;
        }
        c->pub.nset = (int)nset;
        seen[idx] = 1;
        order[k] = idx;
        want += mdir_col_bytes((int)type, r->count);
    }
    if (want != r->sec_len[SEC_COLDATA])
        return mdir_bad(r, "section 'column data': %llu bytes, expected %llu",
                        (unsigned long long)r->sec_len[SEC_COLDATA], (unsigned long long)want);
    for (uint64_t k = 0; k < r->ncols; k++)
        if (mdir_read_column(r, &s->cols[order[k]], buf) < 0)
            return -1;
    for (size_t i = NDERIVED; i < NATTR; i++) /* attributes the file does not have: absent */
        for (uint64_t row = 0; !seen[i] && row < r->count; row++) {
            column *c = &s->cols[i];
            if (c->pub.type == RTE_ATTR_NUM)
                ((int32_t *)c->data)[row] = RTE_ATTR_NUM_ABSENT;
            else if (c->pub.type == RTE_ATTR_TIME)
                ((int64_t *)c->data)[row] = RTE_ATTR_TIME_ABSENT;
            else if (c->pub.type == RTE_ATTR_ENUM)
                ((uint16_t *)c->data)[row] = 0;
            else if (c->pub.type == RTE_ATTR_SET)
                ((uint32_t *)c->data)[row] = 0;
            else if (c->pub.type == RTE_ATTR_STR)
                ((const char **)c->data)[row] = "";
        }
    return 0;
}

/* sections event offsets and events into s */
static int mdir_read_events(mdir_reader *r, rte_member_snapshot *s, unsigned char *buf)
{
    if (mdir_read(r, s->ev_off, 4 * (r->count + 1), SEC_EVOFF) < 0)
        return -1;
    for (uint64_t i = 0; i <= r->count; i++)
        if ((i == 0 && s->ev_off[0] != 0) || (i > 0 && s->ev_off[i] < s->ev_off[i - 1]) ||
            s->ev_off[i] > r->nev || (i == r->count && s->ev_off[i] != r->nev))
            return mdir_bad(r, "section 'event offsets': offset %llu (%u) out of order or range",
                            (unsigned long long)i, s->ev_off[i]);
    s->ev = malloc((r->nev ? r->nev : 1) * sizeof(*s->ev));
    if (!s->ev)
        return mdir_bad(r, "%s", "out of memory");
    s->ev_cap = r->nev;
    for (uint64_t e = 0; e < r->nev; e += MDIR_CHUNK) {
        uint64_t n = r->nev - e < MDIR_CHUNK ? r->nev - e : MDIR_CHUNK;
        if (mdir_read(r, buf, n * MDIR_EVENT, SEC_EVENTS) < 0)
            return -1;
        for (uint64_t j = 0; j < n; j++) {
            const unsigned char *p = buf + j * MDIR_EVENT;
            rte_member_event *ev = &s->ev[e + j];
            ev->at_s = get_u32(p);
            ev->type = get_u16(p + 4);
            ev->source = get_u16(p + 6);
            ev->feature = get_u16(p + 8);
            ev->category = p[10];
            if (ev->type == 0 || ev->type > r->nvalues || ev->source > r->nvalues ||
                ev->feature > r->nvalues || p[11])
                return mdir_bad(r,
                                "section 'events': event %llu: a code beyond the %llu values "
                                "(or no type)",
                                (unsigned long long)(e + j), (unsigned long long)r->nvalues);
            if (r->cat[ev->type] == 255)
                r->cat[ev->type] = (uint8_t)rte_member_event_category(s->names.by_id[ev->type]);
            if (ev->category != r->cat[ev->type])
                return mdir_bad(r,
                                "section 'events': event %llu: category %u, its type '%s' is "
                                "category %u",
                                (unsigned long long)(e + j), ev->category, s->names.by_id[ev->type],
                                r->cat[ev->type]);
        }
    }
    s->nev = r->nev;
    return 0;
}

/* section id order into s, checked to be the members sorted by id; ranks */
static int mdir_read_id_order(mdir_reader *r, rte_member_snapshot *s)
{
    size_t n = r->count ? r->count : 1;
    s->id_order = malloc(n * sizeof(*s->id_order));
    s->id_rank = malloc(n * sizeof(*s->id_rank));
    if (!s->id_order || !s->id_rank)
        return mdir_bad(r, "%s", "out of memory");
    if (mdir_read(r, s->id_order, 4 * r->count, SEC_IDORDER) < 0)
        return -1;
    memset(s->id_rank, 0xff, n * sizeof(*s->id_rank));
    for (uint64_t k = 0; k < r->count; k++) {
        uint32_t i = s->id_order[k];
        if (i >= r->count || s->id_rank[i] != UINT32_MAX)
            return mdir_bad(r,
                            "section 'id order': rank %llu: member %u out of range or "
                            "repeated",
                            (unsigned long long)k, i);
        s->id_rank[i] = (uint32_t)k;
        int cmp =
            k ? strcmp(s->members[s->id_order[k - 1]].member_id, s->members[i].member_id) : -1;
        if (cmp == 0)
            return mdir_bad(r, "section 'id order': members %u and %u have the same member_id",
                            s->id_order[k - 1], i);
        if (cmp > 0)
            return mdir_bad(r, "section 'id order': rank %llu is not in member id order",
                            (unsigned long long)k);
    }
    return 0;
}

/* a compiled directory from r (positioned at 0) into a finished snapshot; NULL + err */
static rte_member_snapshot *mdir_load(mdir_reader *r)
{
    builder b;
    rte_member_snapshot *s = NULL;
    unsigned char *buf = NULL;

    if (builder_init(&b, r->source) < 0) {
        snprintf(r->err, r->errlen, "member_dir: %s: out of memory", r->source);
        return NULL;
    }
    if (mdir_read_head(r) < 0)
        goto out;
    size_t cap = r->count ? r->count : 1;
    buf = malloc(MDIR_CHUNK * MDIR_REC);
    b.s->members = calloc(cap, sizeof(*b.s->members));
    if (!buf || !b.s->members || grow_columns(b.s, 0, cap) < 0) {
        mdir_bad(r, "out of memory for %llu members", (unsigned long long)r->count);
        goto out;
    }
    b.s->cap = cap;
    if (mdir_read_dict(r, b.s) < 0 || mdir_read_members(r, b.s, buf) < 0 ||
        mdir_read_columns(r, b.s, buf) < 0 || mdir_read_events(r, b.s, buf) < 0 ||
        builder_index(&b, r->err, r->errlen) < 0 || mdir_read_id_order(r, b.s) < 0)
        goto out;
    if (r->pos != r->len) {
        mdir_bad(r, "%llu bytes after the last section", (unsigned long long)(r->len - r->pos));
        goto out;
    }
    if (derive_columns(b.s) < 0) {
        mdir_bad(r, "%s", "more than 65535 distinct strings");
        goto out;
    }
    publish_columns(b.s);
    s = b.s;
    b.s = NULL;
out:
    free(buf);
    free(r->cat);
    r->cat = NULL;
    builder_cleanup(&b);
    return s;
}

/* rte_member_dir_compile - any thread; takes no shared lock */
int rte_member_dir_compile(const char *source, const char *out, char *err, size_t errlen)
{
    rte_member_dir *d = rte_member_dir_new(source, err, errlen);
    if (!d)
        return -1;
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    int rc = rte_member_snapshot_write(s, out, err, errlen);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    return rc;
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
    char magic[8];
    size_t got = 0;
    if (S_ISREG(st.st_mode)) { /* a pipe cannot be rewound: read as JSONL */
        got = fread(magic, 1, sizeof magic, f);
        rewind(f);
    }
    if (mdir_is_compiled(magic, got)) {
        mdir_reader r = {
            .f = f, .len = (uint64_t)st.st_size, .source = path, .err = err, .errlen = errlen};
        s = mdir_load(&r);
        goto done;
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
done:
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

    if (mdir_is_compiled(buf, len)) {
        mdir_reader r = {.buf = (const unsigned char *)buf,
                         .len = len,
                         .source = source,
                         .err = err,
                         .errlen = errlen};
        return mdir_load(&r);
    }
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

/* rte_member_dir_source_config - any thread */
int rte_member_dir_source_config(const rte_config *cfg, const char *key, const char **source,
                                 char *err, size_t errlen)
{
    char env[128], why[256];

    rte_config_env_name(key, env, sizeof env);
    *source = rte_config_str(cfg, key, "");
    if ((*source)[0] == '\0') {
        snprintf(err, errlen,
                 "config: key '%s' (%s) is required: the member directory (JSONL file or "
                 "http(s) URL)",
                 key, env);
        return -1;
    }
    if (rte_member_dir_check_source(*source, why, sizeof why) != 0) {
        snprintf(err, errlen, "config: key '%s' (%s): %s", key, env, why);
        return -1;
    }
    return 0;
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

/* rte_member_snapshot_column - any thread, lock-free; borrowed from s */
const rte_member_column *rte_member_snapshot_column(const rte_member_snapshot *s, const char *name)
{
    pthread_once(&attr_once, attr_init);
    int idx = attr_of(name);
    return idx < 0 ? NULL : &s->cols[idx].pub;
}

/* the posting lists of enum column c of s (codes holding at most 1/16 of the members) */
static rte_member_postings *postings_build(const rte_member_snapshot *s, const column *c)
{
    size_t nv = s->names.used + 1, n = s->count, rare_max = n / 16;
    const uint16_t *code = c->data;
    rte_member_postings *p = calloc(1, sizeof(*p));
    uint32_t *count = calloc(nv, sizeof(*count)), *off = calloc(nv + 1, sizeof(*off));
    uint32_t *idx = NULL;
    if (!p || !count || !off)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (code[i] < nv)
            count[code[i]]++;
    for (size_t v = 0; v < nv; v++) /* only rare codes get a list */
        off[v + 1] = off[v] + (v > 0 && count[v] <= rare_max ? count[v] : 0);
    idx = malloc((off[nv] ? off[nv] : 1) * sizeof(*idx));
    if (!idx)
        goto fail;
    uint32_t *fill = calloc(nv, sizeof(*fill));
    if (!fill)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        uint16_t v = code[i];
        if (v > 0 && v < nv && count[v] <= rare_max)
            idx[off[v] + fill[v]++] = (uint32_t)i;
    }
    free(fill);
    p->count = count;
    p->off = off;
    p->idx = idx;
    p->nvalues = nv;
    p->rare_max = rare_max;
    return p;
fail:
    free(p);
    free(count);
    free(off);
    free(idx);
    return NULL;
}

/* rte_member_snapshot_postings - any thread, lock-free; builds once per column */
const rte_member_postings *rte_member_snapshot_postings(const rte_member_snapshot *s,
                                                        const char *name)
{
    pthread_once(&attr_once, attr_init);
    int a = attr_of(name);
    if (a < 0 || attr_schema[a].type != RTE_ATTR_ENUM)
        return NULL;
    rte_member_snapshot *m = (rte_member_snapshot *)s; /* the cache is the only mutable part */
    rte_member_postings *p = atomic_load_explicit(&m->post[a], memory_order_acquire), *none = NULL;
    if (p)
        return p;
    p = postings_build(s, &s->cols[a]);
    if (!p)
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&m->post[a], &none, p, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        postings_free(p); /* another thread built it first */
        return none;
    }
    return p;
}

/* --- events index: (type, time) -> member ----------------------------------- */

static void event_index_free(rte_member_event_index *x)
{
    if (!x)
        return;
    free((void *)x->off);
    free((void *)x->ent);
    free((void *)x->types);
    free((void *)x->category);
    free(x);
}

/*
 * sort ent[0..n) by its high 32 bits (the time), stably, two 16-bit counting
 * passes through tmp; entries of equal time keep their order (member index)
 */
static void sort_by_time(uint64_t *ent, uint64_t *tmp, size_t n, uint32_t *cnt)
{
    for (int pass = 0; pass < 2; pass++) {
        int shift = 32 + 16 * pass;
        uint64_t *src = pass ? tmp : ent, *dst = pass ? ent : tmp;
        memset(cnt, 0, 65536 * sizeof(*cnt));
        for (size_t j = 0; j < n; j++)
            cnt[(src[j] >> shift) & 0xffff]++;
        uint32_t sum = 0;
        for (size_t b = 0; b < 65536; b++) {
            uint32_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t j = 0; j < n; j++)
            dst[cnt[(src[j] >> shift) & 0xffff]++] = src[j];
    }
}

/*
 * the events of s grouped by type code, each group in (time, member) order:
 * a counting pass by type over the members in index order, then a radix
 * sort of each type's entries by time (stable, so ties stay by member)
 */
static rte_member_event_index *event_index_build(const rte_member_snapshot *s)
{
    size_t nv = s->names.used + 1, n = s->count, total = 0, ntypes = 0, big = 0;
    rte_member_event_index *x = calloc(1, sizeof(*x));
    uint32_t *off = calloc(nv + 1, sizeof(*off)), *fill = NULL, *cnt = NULL;
    uint64_t *ent = NULL, *tmp = NULL;
    uint16_t *types = NULL;
    uint8_t *category = NULL;
    const rte_member_event *e;

    if (!x || !off)
        goto fail;
    for (size_t i = 0; i < n; i++) { /* off[v + 1]: events of type v */
        size_t k = rte_member_snapshot_events(s, i, &e);
        for (size_t j = 0; j < k; j++)
            if (e[j].type < nv)
                off[e[j].type + 1]++;
    }
    for (size_t v = 0; v < nv; v++) {
        if (off[v + 1]) {
            ntypes++;
            if (off[v + 1] > big)
                big = off[v + 1];
        }
        off[v + 1] += off[v];
    }
    total = off[nv];
    ent = malloc((total ? total : 1) * sizeof(*ent));
    tmp = malloc((big ? big : 1) * sizeof(*tmp));
    fill = malloc(nv * sizeof(*fill));
    cnt = malloc(65536 * sizeof(*cnt));
    types = malloc((ntypes ? ntypes : 1) * sizeof(*types));
    category = malloc((ntypes ? ntypes : 1) * sizeof(*category));
    if (!ent || !tmp || !fill || !cnt || !types || !category)
        goto fail;
    memcpy(fill, off, nv * sizeof(*fill));
    for (size_t i = 0; i < n; i++) {
        size_t k = rte_member_snapshot_events(s, i, &e);
        for (size_t j = 0; j < k; j++)
            if (e[j].type < nv)
                ent[fill[e[j].type]++] = (uint64_t)e[j].at_s << 32 | (uint32_t)i;
    }
    ntypes = 0;
    for (size_t v = 1; v < nv; v++) {
        if (off[v + 1] == off[v])
            continue;
        sort_by_time(ent + off[v], tmp, off[v + 1] - off[v], cnt);
        types[ntypes] = (uint16_t)v;
        category[ntypes++] = (uint8_t)rte_member_event_category(s->names.by_id[v]);
    }
    free(tmp);
    free(fill);
    free(cnt);
    x->off = off;
    x->ent = ent;
    x->nvalues = nv;
    x->nentries = total;
    x->types = types;
    x->category = category;
    x->ntypes = ntypes;
    x->bytes = sizeof(*x) + (nv + 1) * sizeof(*off) + total * sizeof(*ent) +
               ntypes * (sizeof(*types) + sizeof(*category));
    return x;
fail:
    free(x);
    free(off);
    free(ent);
    free(tmp);
    free(fill);
    free(cnt);
    free(types);
    free(category);
    return NULL;
}

/* rte_member_snapshot_event_index - any thread, lock-free; built once per snapshot */
const rte_member_event_index *rte_member_snapshot_event_index(const rte_member_snapshot *s)
{
    rte_member_snapshot *m = (rte_member_snapshot *)s; /* the cache is the only mutable part */
    rte_member_event_index *x = atomic_load_explicit(&m->evx, memory_order_acquire), *none = NULL;
    if (x)
        return x;
    x = event_index_build(s);
    if (!x)
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&m->evx, &none, x, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        event_index_free(x); /* another thread built it first */
        return none;
    }
    return x;
}

/* rte_member_event_index_range - any thread, lock-free */
void rte_member_event_index_range(const rte_member_event_index *x, uint32_t type, uint32_t lo_s,
                                  uint32_t hi_s, size_t *from, size_t *to)
{
    *from = *to = 0;
    if (!x || type == 0 || type >= x->nvalues || lo_s >= hi_s)
        return;
    const uint64_t *ent = x->ent;
    size_t a = x->off[type], b = x->off[type + 1];
    uint64_t keys[2] = {(uint64_t)lo_s << 32, (uint64_t)hi_s << 32};
    size_t out[2];
    for (int k = 0; k < 2; k++) { /* first entry at or after keys[k] */
        size_t l = a, h = b;
        while (l < h) {
            size_t mid = l + (h - l) / 2;
            if (ent[mid] < keys[k])
                l = mid + 1;
            else
                h = mid;
        }
        out[k] = l;
    }
    *from = out[0];
    *to = out[1];
}

/* rte_member_attr_type - any thread, lock-free */
int rte_member_attr_type(const char *name)
{
    pthread_once(&attr_once, attr_init);
    int idx = attr_of(name);
    return idx < 0 ? -1 : attr_schema[idx].type;
}

/* rte_member_attr_name - any thread, lock-free */
const char *rte_member_attr_name(size_t i)
{
    return i < NATTR ? attr_schema[i].name : NULL;
}

/* rte_member_snapshot_id_order - any thread, lock-free; borrowed from s */
const uint32_t *rte_member_snapshot_id_order(const rte_member_snapshot *s)
{
    return s->id_order;
}

/* rte_member_snapshot_id_rank - any thread, lock-free; borrowed from s */
const uint32_t *rte_member_snapshot_id_rank(const rte_member_snapshot *s)
{
    return s->id_rank;
}

/* rte_member_snapshot_index - any thread, lock-free */
size_t rte_member_snapshot_index(const rte_member_snapshot *s, const rte_member *m)
{
    return (size_t)(m - s->members);
}

/* rte_member_snapshot_value_id - any thread, lock-free */
uint32_t rte_member_snapshot_value_id(const rte_member_snapshot *s, const char *value)
{
    return intern_find(&s->names, value);
}

/* rte_member_snapshot_value_count - any thread, lock-free */
size_t rte_member_snapshot_value_count(const rte_member_snapshot *s)
{
    return s->names.used;
}

/* rte_member_snapshot_value - any thread, lock-free; borrowed from s */
const char *rte_member_snapshot_value(const rte_member_snapshot *s, uint32_t id)
{
    return id && id <= s->names.used ? s->names.by_id[id] : "";
}

/* rte_member_snapshot_events - any thread, lock-free; *ev borrowed from s */
size_t rte_member_snapshot_events(const rte_member_snapshot *s, size_t i,
                                  const rte_member_event **ev)
{
    if (i >= s->count) {
        *ev = NULL;
        return 0;
    }
    *ev = s->ev ? s->ev + s->ev_off[i] : NULL; /* a directory without events has no array */
    return s->ev_off[i + 1] - s->ev_off[i];
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
