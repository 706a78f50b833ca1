/*
 * gw_policy.c - cache-control policy of the gateway: pure decisions.
 *
 * Contract in gw_policy.h. The mode semantics follow the source design's
 * "Cache Control Semantics": DEFAULT serves fresh entries and asks Stedi
 * otherwise; CACHE_ONLY never asks Stedi (a stale entry is still served, a
 * miss is refused); PREFER_CACHED serves any entry and asks Stedi only on a
 * miss; BYPASS_CACHE always asks Stedi and stores the answer;
 * STALE_WHILE_REVALIDATE serves any entry at once and refreshes a stale one
 * in the background. Request directives (RFC 9111 5.2.1, RFC 5861) map onto
 * the modes: no-cache -> BYPASS_CACHE, only-if-cached -> CACHE_ONLY; and
 * narrow them: max-stale[=n] lets any mode serve an entry up to n seconds
 * past its freshness, max-age=n makes older entries stale, stale-if-error[=n]
 * lets a Stedi failure be answered with a stale entry. Unknown directives are
 * ignored, as RFC 9111 requires; a known one with a bad value is refused
 * (delta-seconds is 1*DIGIT, token or quoted, saturated at 2^31; the first
 * of a repeated directive counts). Prefer never fails a request (RFC 7240
 * 2): a preference we cannot honour is ignored. docs/cache-gateway.md has
 * the reasoning.
 */
#include "gw_policy.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rte/clock.h"
#include "rte/json.h"

static const char *const mode_names[GW_MODE_N] = {"DEFAULT", "CACHE_ONLY", "PREFER_CACHED",
                                                  "BYPASS_CACHE", "STALE_WHILE_REVALIDATE"};
static const char *const mode_labels[GW_MODE_N] = {"default", "cache_only", "prefer_cached",
                                                   "bypass_cache", "stale_while_revalidate"};

/* gw_mode_name - static string */
const char *gw_mode_name(enum gw_mode m)
{
    return (unsigned)m < GW_MODE_N ? mode_names[m] : "DEFAULT";
}

/* gw_mode_label - static string */
const char *gw_mode_label(enum gw_mode m)
{
    return (unsigned)m < GW_MODE_N ? mode_labels[m] : "default";
}

/* gw_mode_parse - case-insensitive; -1 if unknown */
int gw_mode_parse(const char *s)
{
    for (int i = 0; i < GW_MODE_N; i++)
        if (strcasecmp(s, mode_names[i]) == 0)
            return i;
    return -1;
}

/* gw_policy_init - DEFAULT, nothing else */
void gw_policy_init(gw_policy *p)
{
    memset(p, 0, sizeof *p);
    p->mode = GW_MODE_DEFAULT;
    p->max_stale_s = -1;
    p->stale_if_error_s = -1;
    p->max_age_s = -1;
    p->wait_s = -1;
}

/*
 * RFC 9111 1.2.2: a delta-seconds larger than a cache can represent MUST be
 * taken as 2^31; we saturate there, however many digits were sent.
 */
#define DELTA_MAX 2147483648LL
#define WAIT_MAX 3600 /* Prefer: wait beyond this is honoured as this */

/* past the quoted-string starting at s (a '"'): its closing quote, or the end of the text */
static const char *skip_quoted(const char *s)
{
    for (s++; *s != '\0' && *s != '"'; s++)
        if (*s == '\\' && s[1] != '\0')
            s++;
    return *s == '"' ? s + 1 : s;
}

/*
 * delta-seconds (1*DIGIT) as a token or a quoted-string (RFC 9111 5.2:
 * recipients accept both), saturated at DELTA_MAX; -1 if malformed
 */
static int64_t delta_seconds(const char *v, size_t n)
{
    size_t i = 0, end = n;
    int quoted = n > 0 && v[0] == '"';
    int64_t x = 0;

    if (quoted) {
        if (n < 2 || v[n - 1] != '"')
            return -1;
        i = 1;
        end = n - 1;
    }
    if (i == end)
        return -1;
    for (; i < end; i++) {
        char c = v[i];
        if (quoted && c == '\\') {
            if (++i == end)
                return -1;
            c = v[i];
        }
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
        if (x > DELTA_MAX)
            x = DELTA_MAX;
    }
    return x;
}

/*
 * One element of a comma-separated header: name [BWS "=" BWS value], value
 * a token or a quoted-string (commas inside quotes do not split). For
 * Prefer, ";"-separated parameters may follow; anything else after the
 * value makes the element malformed (junk).
 */
struct item {
    const char *name, *value;
    size_t nlen, vlen;
    int has_value;
    int junk;
};

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* a character that ends a token or an unquoted value */
static int ends_token(char c)
{
    return c == '\0' || c == ',' || c == ';' || c == '=' || c == '"' || is_ows(c);
}

/* next element of the list at *p (params: ';' parameters allowed after it); 0 at the end */
static int next_item(const char **p, struct item *it, int params)
{
    const char *s = *p;

    memset(it, 0, sizeof *it);
    while (is_ows(*s) || *s == ',')
        s++;
    if (*s == '\0')
        return 0;
    it->name = s;
    while (!ends_token(*s))
        s++;
    it->nlen = (size_t)(s - it->name);
    while (is_ows(*s))
        s++;
    if (*s == '=') {
        it->has_value = 1;
        for (s++; is_ows(*s);)
            s++;
        it->value = s;
        if (*s == '"')
            s = skip_quoted(s);
        else
            while (!ends_token(*s))
                s++;
        it->vlen = (size_t)(s - it->value);
        while (is_ows(*s))
            s++;
    }
    if (*s != '\0' && *s != ',') {
        it->junk = !(params && *s == ';');
        while (*s != '\0' && *s != ',')
            s = *s == '"' ? skip_quoted(s) : s + 1;
    }
    *p = s;
    return 1;
}

static int is(const struct item *it, const char *name)
{
    return it->nlen == strlen(name) && strncasecmp(it->name, name, it->nlen) == 0;
}

/*
 * a Cache-Control directive with a delta-seconds argument: *out (when
 * *seen is 0: the first occurrence counts, RFC 9111 4.2.1) or -1 + err.
 * Without an argument: INT64_MAX ("any") when optional, else an error.
 */
static int cc_seconds(const struct item *it, int optional, int64_t *out, int *seen, char *err,
                      size_t errlen)
{
    int64_t v = INT64_MAX;

    if (it->has_value || !optional)
        v = it->has_value && !it->junk ? delta_seconds(it->value, it->vlen) : -1;
    if (v < 0 || it->junk) {
        snprintf(err, errlen,
                 "header 'Cache-Control': directive '%.*s' needs a number of seconds (digits "
                 "only, RFC 9111 delta-seconds)%s",
                 (int)it->nlen, it->name, optional ? " or no value" : "");
        return -1;
    }
    if (!*seen)
        *out = v;
    *seen = 1;
    return 0;
}

/* a Cache-Control directive that takes no argument; 0, or -1 + err */
static int cc_flag(const struct item *it, int *flag, char *err, size_t errlen)
{
    if (it->has_value || it->junk) {
        snprintf(err, errlen, "header 'Cache-Control': directive '%.*s' takes no value",
                 (int)it->nlen, it->name);
        return -1;
    }
    *flag = 1;
    return 0;
}

static int parse_cache_control(gw_policy *p, const char *cc, int *implied, char *err, size_t errlen)
{
    struct item it;
    int only_if_cached = 0, no_cache = 0, seen_stale = 0, seen_sie = 0, seen_age = 0, rc = 0;

    while (rc == 0 && next_item(&cc, &it, 0)) {
        if (is(&it, "no-cache"))
            rc = cc_flag(&it, &no_cache, err, errlen);
        else if (is(&it, "only-if-cached"))
            rc = cc_flag(&it, &only_if_cached, err, errlen);
        else if (is(&it, "max-stale"))
            rc = cc_seconds(&it, 1, &p->max_stale_s, &seen_stale, err, errlen);
        else if (is(&it, "stale-if-error"))
            rc = cc_seconds(&it, 1, &p->stale_if_error_s, &seen_sie, err, errlen);
        else if (is(&it, "max-age"))
            rc = cc_seconds(&it, 0, &p->max_age_s, &seen_age, err, errlen);
        /* anything else: ignored (RFC 9111 5.2) */
    }
    if (rc != 0)
        return -1;
    if (only_if_cached)
        *implied = GW_MODE_CACHE_ONLY;
    else if (no_cache)
        *implied = GW_MODE_BYPASS_CACHE;
    return 0;
}

/*
 * RFC 7240 2: a preference the server does not recognise or cannot comply
 * with is ignored, never an error, and only the first instance of each
 * counts. So a malformed wait (wait=soon, wait=-1, wait=) is dropped and the
 * gateway's own deadline applies; the response carries no
 * Preference-Applied for it.
 */
static void parse_prefer(gw_policy *p, const char *prefer)
{
    struct item it;
    int seen_async = 0, seen_wait = 0;

    while (next_item(&prefer, &it, 1)) {
        if (is(&it, "respond-async")) {
            /* the token alone; an empty value ("" too) is no value (RFC 7240 2) */
            int empty = it.vlen == 0 || (it.vlen == 2 && it.value[0] == '"');
            if (!seen_async++ && !it.junk && empty)
                p->respond_async = 1;
        } else if (is(&it, "wait")) {
            int64_t w = it.has_value && !it.junk ? delta_seconds(it.value, it.vlen) : -1;
            if (!seen_wait++ && w >= 0)
                p->wait_s = w > WAIT_MAX ? WAIT_MAX : w;
        }
    }
}

/* gw_policy_from_request - explicit mode wins; -1 + err naming the field */
int gw_policy_from_request(gw_policy *p, const char *mode, const char *cache_control,
                           const char *prefer, char *err, size_t errlen)
{
    int implied = -1;

    gw_policy_init(p);
    if (cache_control != NULL && parse_cache_control(p, cache_control, &implied, err, errlen) != 0)
        return -1;
    if (prefer != NULL)
        parse_prefer(p, prefer);
    if (mode != NULL) {
        int m = gw_mode_parse(mode);
        if (m < 0) {
            char shown[44];
            size_t n = 0;
            /* the caller's text, printable ASCII only (it goes into JSON and logs) */
            for (; n < 40 && mode[n] != '\0'; n++)
                shown[n] = mode[n] >= 0x20 && mode[n] < 0x7f ? mode[n] : '?';
            memcpy(shown + n, mode[n] != '\0' ? "..." : "", mode[n] != '\0' ? 4 : 1);
            snprintf(err, errlen,
                     "field 'cache_control': %s mode '%s'; valid modes are DEFAULT, "
                     "CACHE_ONLY, PREFER_CACHED, BYPASS_CACHE, STALE_WHILE_REVALIDATE",
                     mode[0] != '\0' ? "unknown" : "empty", shown);
            return -1;
        }
        p->mode = (enum gw_mode)m;
    } else if (implied >= 0) {
        p->mode = (enum gw_mode)implied;
    }
    return 0;
}

/* when the entry stopped being fresh for this caller */
static int64_t stale_from(const gw_policy *p, const gw_lookup *l)
{
    int64_t t = l->fresh_until_ms;
    if (p->max_age_s >= 0 && l->cached_at_ms + p->max_age_s * 1000 < t)
        t = l->cached_at_ms + p->max_age_s * 1000;
    return t;
}

/* gw_is_stale - pure */
int gw_is_stale(const gw_policy *p, const gw_lookup *l, int64_t now_ms)
{
    return now_ms >= stale_from(p, l);
}

/* 1 when the entry is stale by no more than limit_s (INT64_MAX = any) */
static int within(const gw_policy *p, const gw_lookup *l, int64_t now_ms, int64_t limit_s)
{
    if (limit_s < 0)
        return 0;
    if (limit_s == INT64_MAX)
        return 1;
    return now_ms - stale_from(p, l) <= limit_s * 1000;
}

/* gw_decide - pure */
enum gw_action gw_decide(const gw_policy *p, const gw_lookup *l, int64_t now_ms, int xfetch)
{
    if (p->mode == GW_MODE_BYPASS_CACHE)
        return GW_FETCH;
    if (!l->present)
        return p->mode == GW_MODE_CACHE_ONLY ? GW_REFUSE_MISS : GW_FETCH;
    if (!gw_is_stale(p, l, now_ms)) {
        if (xfetch && p->mode != GW_MODE_CACHE_ONLY)
            return GW_SERVE_REFRESH;
        return GW_SERVE;
    }
    /* stale: an explicit max-stale bounds every mode */
    if (p->max_stale_s >= 0 && !within(p, l, now_ms, p->max_stale_s))
        return p->mode == GW_MODE_CACHE_ONLY ? GW_REFUSE_MISS : GW_FETCH;
    switch (p->mode) {
    case GW_MODE_CACHE_ONLY:
    case GW_MODE_PREFER_CACHED:
        return GW_SERVE_STALE;
    case GW_MODE_STALE_WHILE_REVALIDATE:
        return GW_SERVE_STALE_REFRESH;
    default:
        return p->max_stale_s >= 0 ? GW_SERVE_STALE : GW_FETCH;
    }
}

/* gw_stale_usable_on_error - pure */
int gw_stale_usable_on_error(const gw_policy *p, const gw_lookup *l, int64_t now_ms)
{
    if (!l->present)
        return 0;
    if (p->mode == GW_MODE_PREFER_CACHED || p->mode == GW_MODE_STALE_WHILE_REVALIDATE)
        return 1;
    return within(p, l, now_ms, p->stale_if_error_s) || within(p, l, now_ms, p->max_stale_s);
}

/* gw_xfetch - pure; u in (0,1] */
int gw_xfetch(int64_t now_ms, int64_t fresh_until_ms, double delta_ms, double beta, double u)
{
    if (beta <= 0 || delta_ms <= 0)
        return 0;
    if (u <= 0)
        u = 1e-12;
    if (u > 1)
        u = 1;
    return (double)now_ms - delta_ms * beta * log(u) >= (double)fresh_until_ms;
}

/* gw_valid_id - pure */
int gw_valid_id(const char *s, size_t maxlen)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= maxlen || !(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

/* append s to out (len bytes, NUL-terminated; text that does not fit is cut) at *n */
static void put(char *out, size_t len, size_t *n, const char *s)
{
    size_t k = strlen(s);

    if (*n + 1 >= len)
        return;
    if (k > len - 1 - *n)
        k = len - 1 - *n;
    memcpy(out + *n, s, k);
    *n += k;
    out[*n] = '\0';
}

static void put_int(char *out, size_t len, size_t *n, int64_t v)
{
    char tmp[RTE_INT_TEXT];

    put(out, len, n, rte_int_text(v, tmp));
}

/*
 * gw_cache_control_header - pure. Written piece by piece rather than with
 * snprintf: this and gw_cache_status_header run on every answer, and their
 * snprintf calls were 2 % of an HTTP loop's time.
 */
void gw_cache_control_header(const rte_cache_entry *e, int64_t physical_ms, char *out, size_t len)
{
    int64_t life = (e->fresh_until_ms - e->cached_at_ms) / 1000;
    int64_t keep = (physical_ms - (e->fresh_until_ms - e->cached_at_ms)) / 1000;
    size_t n = 0;

    if (life < 0)
        life = 0;
    if (keep < 0)
        keep = 0;
    if (len == 0)
        return;
    out[0] = '\0';
    put(out, len, &n, "max-age=");
    put_int(out, len, &n, life);
    put(out, len, &n, ", stale-while-revalidate=");
    put_int(out, len, &n, keep);
    put(out, len, &n, ", stale-if-error=");
    put_int(out, len, &n, keep);
}

/* gw_cache_status_header - pure */
void gw_cache_status_header(int hit, enum gw_fwd fwd, int fwd_status, int stored,
                            const rte_cache_entry *e, int64_t now_ms, const char *detail, char *out,
                            size_t len)
{
    static const char *const fwds[] = {"", "miss", "stale", "bypass", "request"};
    size_t n = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    put(out, len, &n, "rte-gateway");
    if (hit)
        put(out, len, &n, "; hit");
    if (fwd != GW_FWD_NONE) {
        put(out, len, &n, "; fwd=");
        put(out, len, &n, fwds[fwd]);
    }
    if (fwd_status > 0) {
        put(out, len, &n, "; fwd-status=");
        put_int(out, len, &n, fwd_status);
    }
    if (stored)
        put(out, len, &n, "; stored");
    if (e != NULL) {
        int64_t ttl = e->fresh_until_ms - now_ms;
        ttl = ttl >= 0 ? ttl / 1000 : -((-ttl + 999) / 1000);
        put(out, len, &n, "; ttl=");
        put_int(out, len, &n, ttl);
    }
    if (detail != NULL) {
        put(out, len, &n, "; detail=");
        put(out, len, &n, detail);
    }
}
