/*
 * fuzz_gw_request.c - libFuzzer target: what the gateway reads from
 * GET /v1/eligibility/{member_id}.
 *
 * Input, one field per line (none can hold a newline on the wire): the
 * request path, the raw query string, the Cache-Control header, the Prefer
 * header ("-" alone = header absent). The harness reads them as
 * gw_h_member does (gw_http.c): the member id from the path tail and
 * trading_partner_id and cache_control from the query (rte_http_req_query),
 * both headers (rte_http_req_header), checked with gw_valid_id and turned
 * into a policy with gw_policy_from_request. A policy it accepts is then
 * applied to cache entries of every age (gw_decide, gw_is_stale,
 * gw_stale_usable_on_error) and to the response headers, where the
 * arithmetic on the caller's seconds must not overflow.
 */
#include "fuzz.h"
#include "fuzz_http_req.h"
#include "gw.h"
#include "gw_policy.h"

#define NOW_MS 1767571200000LL /* 2026-01-05T00:00:00Z */
#define PREFIX "/v1/eligibility/"

static void apply(const gw_policy *p)
{
    static const int64_t age_s[] = {0, 1, 3600, 79200, 79201, 86400 * 3, 86400 * 365};
    rte_cache_entry e;
    char out[256];

    FUZZ_ASSERT(p->mode >= GW_MODE_DEFAULT && p->mode < GW_MODE_N);
    FUZZ_ASSERT(p->wait_s >= -1 && p->wait_s <= 3600);
    for (size_t i = 0; i < sizeof age_s / sizeof age_s[0]; i++) {
        gw_lookup l = {1, NOW_MS - age_s[i] * 1000, NOW_MS - age_s[i] * 1000 + 79200000};
        enum gw_action a = gw_decide(p, &l, NOW_MS, (int)(i & 1));
        FUZZ_ASSERT(a >= GW_SERVE && a <= GW_REFUSE_MISS);
        (void)gw_is_stale(p, &l, NOW_MS);
        (void)gw_stale_usable_on_error(p, &l, NOW_MS);
        memset(&e, 0, sizeof e);
        e.cached_at_ms = l.cached_at_ms;
        e.fresh_until_ms = l.fresh_until_ms;
        gw_cache_control_header(&e, 72LL * 3600 * 1000, out, sizeof out);
        gw_cache_status_header(a == GW_SERVE, GW_FWD_MISS, 200, 1, &e, NOW_MS,
                               gw_mode_label(p->mode), out, sizeof out);
    }
    gw_lookup none = {0, 0, 0};
    (void)gw_decide(p, &none, NOW_MS, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[4], tp[256], mode[256], cc[512], prefer[256], err[300];
    char *buf = fuzz_fields(data, size, f, 4);
    static const char *const names[] = {"Cache-Control", "Prefer"};
    char *values[2];
    fuzz_http_req q;
    gw_policy pol;

    if (f[3] == NULL) {
        free(buf);
        return 0;
    }
    values[0] = strcmp(f[2], "-") == 0 ? NULL : f[2];
    values[1] = strcmp(f[3], "-") == 0 ? NULL : f[3];
    fuzz_http_req_init(&q, f[0], PREFIX, f[1], names, values, 2);

    (void)gw_valid_id(rte_http_req_tail(q.req), GW_ID_MAX);
    if (rte_http_req_query(q.req, "trading_partner_id", tp, sizeof tp, NULL, 0) >= 0)
        (void)gw_valid_id(tp, GW_TP_MAX);
    if (rte_http_req_query(q.req, "cache_control", mode, sizeof mode, NULL, 0) < 0)
        mode[0] = '\0';
    int has_cc = rte_http_req_header(q.req, "Cache-Control", cc, sizeof cc) >= 0;
    int has_prefer = rte_http_req_header(q.req, "Prefer", prefer, sizeof prefer) >= 0;
    if (gw_policy_from_request(&pol, mode, has_cc ? cc : NULL, has_prefer ? prefer : NULL, err,
                               sizeof err) == 0)
        apply(&pol);
    else
        FUZZ_ASSERT(err[0] != '\0');
    fuzz_http_req_fini(&q);
    free(buf);
    return 0;
}
