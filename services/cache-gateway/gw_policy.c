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
 * ignored, as RFC 9111 requires; a known one with a bad value is refused.
 */
#include "gw_policy.h"

#include <ctype.h>
#include <errno.h>
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

/* parse a delta-seconds value (RFC 9111 1.2.2), optionally quoted; -1 if malformed */
static int64_t delta_seconds(const char *v, size_t n)
{
    char buf[24];
    char *end;
    long long x;

    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)v[i]))
            return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    errno = 0;
    x = strtoll(buf, &end, 10);
    if (errno != 0 || x > 10LL * 365 * 86400) /* cap: "any" in practice */
        x = 10LL * 365 * 86400;
    return x;
}

/* One "name[=value]" element of a comma-separated header. */
struct item {
    const char *name, *value;
    size_t nlen, vlen;
    int has_value;
};

/* next element of a comma list starting at *p; 0 at the end */
static int next_item(const char **p, struct item *it)
{
    const char *s = *p, *e, *eq;

    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (*s == '\0')
        return 0;
    e = s;
    while (*e != '\0' && *e != ',')
        e++;
    *p = e;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    memset(it, 0, sizeof *it);
    it->name = s;
    eq = memchr(s, '=', (size_t)(e - s));
    if (eq == NULL) {
        it->nlen = (size_t)(e - s);
        return 1;
    }
    it->has_value = 1;
    it->nlen = (size_t)(eq - s);
    while (it->nlen > 0 && (s[it->nlen - 1] == ' ' || s[it->nlen - 1] == '\t'))
        it->nlen--;
    it->value = eq + 1;
    while (it->value < e && (*it->value == ' ' || *it->value == '\t'))
        it->value++;
    it->vlen = (size_t)(e - it->value);
    return 1;
}

static int is(const struct item *it, const char *name)
{
    return it->nlen == strlen(name) && strncasecmp(it->name, name, it->nlen) == 0;
}

/* a directive whose value is optional ("any" when absent) */
static int opt_seconds(const struct item *it, int64_t *out, const char *hdr, char *err,
                       size_t errlen)
{
    if (!it->has_value) {
        *out = INT64_MAX;
        return 0;
    }
    *out = delta_seconds(it->value, it->vlen);
    if (*out < 0) {
        snprintf(err, errlen, "header '%s': directive '%.*s' needs a number of seconds", hdr,
                 (int)it->nlen, it->name);
        return -1;
    }
    return 0;
}

static int parse_cache_control(gw_policy *p, const char *cc, int *implied, char *err, size_t errlen)
{
    struct item it;
    int only_if_cached = 0, no_cache = 0;

    while (next_item(&cc, &it)) {
        if (is(&it, "no-cache")) {
            no_cache = 1;
        } else if (is(&it, "only-if-cached")) {
            only_if_cached = 1;
        } else if (is(&it, "max-stale")) {
            if (opt_seconds(&it, &p->max_stale_s, "Cache-Control", err, errlen) != 0)
                return -1;
        } else if (is(&it, "stale-if-error")) {
            if (opt_seconds(&it, &p->stale_if_error_s, "Cache-Control", err, errlen) != 0)
                return -1;
        } else if (is(&it, "max-age")) {
            p->max_age_s = it.has_value ? delta_seconds(it.value, it.vlen) : -1;
            if (p->max_age_s < 0) {
                snprintf(err, errlen,
                         "header 'Cache-Control': directive 'max-age' needs a number of seconds");
                return -1;
            }
        }
        /* anything else: ignored (RFC 9111 5.2) */
    }
    if (only_if_cached)
        *implied = GW_MODE_CACHE_ONLY;
    else if (no_cache)
        *implied = GW_MODE_BYPASS_CACHE;
    return 0;
}

static int parse_prefer(gw_policy *p, const char *prefer, char *err, size_t errlen)
{
    struct item it;

    while (next_item(&prefer, &it)) {
        /* parameters after ';' are not ours */
        const char *semi = memchr(it.name, ';', it.has_value ? it.nlen : it.nlen);
        if (semi != NULL)
            it.nlen = (size_t)(semi - it.name);
        if (is(&it, "respond-async")) {
            p->respond_async = 1;
        } else if (is(&it, "wait")) {
            size_t vlen = it.vlen;
            const char *vs = it.has_value ? memchr(it.value, ';', it.vlen) : NULL;
            if (vs != NULL)
                vlen = (size_t)(vs - it.value);
            p->wait_s = it.has_value ? delta_seconds(it.value, vlen) : -1;
            if (p->wait_s < 0 || p->wait_s > 3600) {
                snprintf(err, errlen, "header 'Prefer': 'wait' needs a number of seconds (0-3600)");
                return -1;
            }
        }
    }
    return 0;
}

/* gw_policy_from_request - explicit mode wins; -1 + err naming the field */
int gw_policy_from_request(gw_policy *p, const char *mode, const char *cache_control,
                           const char *prefer, char *err, size_t errlen)
{
    int implied = -1;

    gw_policy_init(p);
    if (cache_control != NULL && parse_cache_control(p, cache_control, &implied, err, errlen) != 0)
        return -1;
    if (prefer != NULL && parse_prefer(p, prefer, err, errlen) != 0)
        return -1;
    if (mode != NULL && mode[0] != '\0') {
        int m = gw_mode_parse(mode);
        if (m < 0) {
            snprintf(err, errlen,
                     "field 'cache_control': unknown mode '%.40s'; valid modes are DEFAULT, "
                     "CACHE_ONLY, PREFER_CACHED, BYPASS_CACHE, STALE_WHILE_REVALIDATE",
                     mode);
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
