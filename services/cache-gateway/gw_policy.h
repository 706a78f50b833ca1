/*
 * gw_policy.h - cache-control policy of the gateway: pure decisions.
 *
 * Turns what a caller asked for (a cache_control mode, RFC 9111 / RFC 5861
 * Cache-Control request directives, an RFC 7240 Prefer header) into a
 * gw_policy, and a policy plus what the cache holds into an action. Builds
 * the response's Cache-Control and Cache-Status (RFC 9211) headers. Checks
 * member and trading partner ids. Also the XFetch early-refresh test
 * (Vattani et al., VLDB 2015).
 *
 * Everything here is pure (no I/O, no globals), so the unit tests in
 * tests/unit/cache-gateway/test_policy.c cover every mode and directive.
 * Errors are returned as -1 with a message naming the field or value.
 *
 * Thread safety: pure functions; any thread.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "rte/cache_entry.h"

enum gw_mode {
    GW_MODE_DEFAULT = 0,
    GW_MODE_CACHE_ONLY,
    GW_MODE_PREFER_CACHED,
    GW_MODE_BYPASS_CACHE,
    GW_MODE_STALE_WHILE_REVALIDATE,
    GW_MODE_N
};

/* What the caller accepts. Second counts are -1 when not given, INT64_MAX for "any". */
typedef struct gw_policy {
    enum gw_mode mode;
    int64_t max_stale_s;      /* serve an entry up to this far past fresh_until */
    int64_t stale_if_error_s; /* on a Stedi failure, serve stale up to this far past */
    int64_t max_age_s;        /* treat entries older than this as stale */
    int respond_async;        /* Prefer: respond-async */
    int64_t wait_s;           /* Prefer: wait=N, -1 when absent */
} gw_policy;

/* What to do with a request once the cache has been read. */
enum gw_action {
    GW_SERVE,               /* fresh entry: HIT */
    GW_SERVE_REFRESH,       /* fresh entry, but XFetch says refresh it in the background */
    GW_SERVE_STALE,         /* stale entry the caller accepts: STALE */
    GW_SERVE_STALE_REFRESH, /* stale entry served now, one background refresh (SWR) */
    GW_FETCH,               /* ask Stedi (a stale entry, if any, is the fallback) */
    GW_REFUSE_MISS,         /* CACHE_ONLY / only-if-cached and nothing usable: 504 */
};

/* What the cache holds for the key, as seen at now_ms. */
typedef struct gw_lookup {
    int present; /* 0: nothing (or Redis unreachable) */
    int64_t cached_at_ms, fresh_until_ms;
} gw_lookup;

/* gw_mode_name - "DEFAULT", ...; static string */
const char *gw_mode_name(enum gw_mode m);

/* gw_mode_label - lower-case metrics label ("default", "cache_only", ...); static string */
const char *gw_mode_label(enum gw_mode m);

/* gw_mode_parse - a mode name (case-insensitive) to its value; -1 if unknown */
int gw_mode_parse(const char *s);

/* gw_policy_init - DEFAULT with nothing else requested */
void gw_policy_init(gw_policy *p);

/*
 * gw_policy_from_request - fill p from the cache_control parameter (NULL =
 * not given; "" is refused like any unknown mode), the Cache-Control header
 * and the Prefer header (NULL = absent). An explicit mode wins over the mode
 * a directive implies; the directives' limits (max-stale, stale-if-error,
 * max-age) apply to any mode. -1 + err (naming the field, listing the valid
 * modes) on a bad mode or a known Cache-Control directive with a malformed
 * value; unknown directives and any Prefer trouble are ignored (RFC 9111
 * 5.2, RFC 7240 2).
 */
int gw_policy_from_request(gw_policy *p, const char *mode, const char *cache_control,
                           const char *prefer, char *err, size_t errlen);

/* gw_is_stale - 1 when the entry is past fresh_until or older than the policy's max-age */
int gw_is_stale(const gw_policy *p, const gw_lookup *l, int64_t now_ms);

/*
 * gw_decide - the action for policy p given lookup l at now_ms. xfetch is
 * 1 when gw_xfetch said a fresh entry should be refreshed early.
 */
enum gw_action gw_decide(const gw_policy *p, const gw_lookup *l, int64_t now_ms, int xfetch);

/* gw_stale_usable_on_error - 1 when a stale entry may answer a Stedi failure */
int gw_stale_usable_on_error(const gw_policy *p, const gw_lookup *l, int64_t now_ms);

/*
 * gw_xfetch - probabilistic early expiration: 1 when
 * now - delta*beta*ln(u) >= fresh_until (u uniform in (0,1]); beta <= 0
 * disables it.
 */
int gw_xfetch(int64_t now_ms, int64_t fresh_until_ms, double delta_ms, double beta, double u);

/* gw_valid_id - 1 when s is 1..maxlen bytes of [A-Za-z0-9._-] */
int gw_valid_id(const char *s, size_t maxlen);

/*
 * gw_cache_control_header - response Cache-Control: max-age (the entry's
 * freshness lifetime), stale-while-revalidate and stale-if-error (how long
 * past that it is kept); physical_ms the Redis TTL.
 */
void gw_cache_control_header(const rte_cache_entry *e, int64_t physical_ms, char *out, size_t len);

/* Cache-Status forwarding reasons (RFC 9211 fwd=) */
enum gw_fwd { GW_FWD_NONE, GW_FWD_MISS, GW_FWD_STALE, GW_FWD_BYPASS, GW_FWD_REQUEST };

/*
 * gw_cache_status_header - RFC 9211 Cache-Status: "rte-gateway; hit; ttl=N"
 * or "rte-gateway; fwd=miss; fwd-status=200; stored"; ttl is negative for
 * stale entries; detail (may be NULL) is appended as detail=.
 */
void gw_cache_status_header(int hit, enum gw_fwd fwd, int fwd_status, int stored,
                            const rte_cache_entry *e, int64_t now_ms, const char *detail, char *out,
                            size_t len);

#endif
