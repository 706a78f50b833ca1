/*
 * gw_http.c - the gateway's HTTP API (contract in gw_http.h).
 *
 * Every handler fills one gw_req: ids checked (the input policy first,
 * rte_input_id: no control characters, well-formed UTF-8, docs/input.md;
 * then the gateway's own 1..64 / 1..32 bytes of [A-Za-z0-9._-]; the path's
 * member id is percent-decoded first, so "M%2D1" is "M-1"), query
 * parameters read strictly (one that cannot be decoded, is too long, comes
 * twice or is not one the route reads is a 400 naming it, never "absent"),
 * subscriber details from the request body or the member directory, the
 * policy from cache_control + Cache-Control + Prefer (all field lines of
 * each; too long is 431), the cache key, and the deadline (Prefer: wait=N,
 * else gateway.deadline). The loop thread then answers from L1 when the
 * policy allows it (the hot path: no Redis, no thread hop) and hands
 * everything else to the workers.
 */
#include "gw_http.h"

#include <stdio.h>
#include <string.h>

#include "gw.h"
#include "gw_core.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/input.h"
#include "rte/json.h"
#include "rte/log.h"

/* copy the request id, keeping only characters safe in JSON and logs */
static void copy_request_id(gw_req *r, rte_http_req *req)
{
    const char *id = rte_http_req_id(req);
    size_t n = 0;
    for (; id[n] != '\0' && n + 1 < sizeof r->request_id; n++) {
        char c = id[n];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '-' || c == '_' || c == '.';
        r->request_id[n] = ok ? c : '_';
    }
    r->request_id[n] = '\0';
}

/* bounded copy (callers have checked lengths; this only guarantees the NUL) */
static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = src ? strnlen(src, len - 1) : 0;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * a decoded path or query value that must be an id of the gateway's kind;
 * 0, or -1 after answering 400 naming field
 */
static int check_id(rte_http_req *req, const char *field, const char *s, int n, size_t max)
{
    char why[200];
    if (n == RTE_HTTP_MALFORMED) {
        rte_http_error(req, 400,
                       "field '%s': malformed (a bad %%XX escape, an encoded NUL, given twice, "
                       "or too long)",
                       field);
        return -1;
    }
    if (rte_input_id(s, (size_t)n, max, NULL, why, sizeof why) != 0) {
        rte_http_error(req, 400, "field '%s': %s", field, why);
        return -1;
    }
    if (!gw_valid_id(s, max)) {
        rte_http_error(req, 400,
                       "field '%s': must be 1-%zu characters of A-Z, a-z, 0-9, '.', '_', "
                       "'-'",
                       field, max);
        return -1;
    }
    return 0;
}

/* gw_from_directory - any thread (takes a directory snapshot) */
int gw_from_directory(gw_req *r)
{
    rte_member_snapshot *snap;
    const rte_member *m;
    int rc = -1;

    if (G.dir == NULL)
        return -1;
    snap = rte_member_dir_acquire(G.dir);
    m = rte_member_snapshot_find(snap, r->member_id);
    if (m != NULL) {
        copy_str(r->first_name, sizeof r->first_name, m->first_name);
        copy_str(r->last_name, sizeof r->last_name, m->last_name);
        copy_str(r->dob, sizeof r->dob, m->date_of_birth);
        if (r->tp[0] == '\0')
            copy_str(r->tp, sizeof r->tp, m->trading_partner_id);
        rc = 0;
    }
    rte_member_snapshot_release(snap);
    return rc;
}

/*
 * a list header (every field line, joined): 1 given, 0 absent, -1 after
 * answering 431 (RFC 9110 5.4: a field larger than we process gets a 4xx,
 * never silence)
 */
static int list_header(rte_http_req *req, const char *name, char *buf, size_t len)
{
    int rc = rte_http_req_header_list(req, name, buf, len);

    if (rc >= 0)
        return 1;
    if (rc == RTE_HTTP_HEADER_ABSENT)
        return 0;
    rte_http_error(req, 431, "header '%s': longer than %zu bytes (all its lines together)", name,
                   len - 1);
    return -1;
}

/*
 * policy from the mode (NULL = not given) and the Cache-Control / Prefer
 * headers; 0, or -1 after answering 4xx
 */
static int read_policy(rte_http_req *req, gw_req *r, const char *mode)
{
    char cc[1024], prefer[512], err[300];
    int has_cc = list_header(req, "Cache-Control", cc, sizeof cc);
    int has_prefer = has_cc < 0 ? -1 : list_header(req, "Prefer", prefer, sizeof prefer);

    if (has_cc < 0 || has_prefer < 0)
        return -1;
    if (gw_policy_from_request(&r->pol, mode, has_cc ? cc : NULL, has_prefer ? prefer : NULL, err,
                               sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        return -1;
    }
    return 0;
}

/* a query parameter into buf: 1 given, 0 absent, -1 after answering 400 naming it */
static int query_param(rte_http_req *req, const char *name, char *buf, size_t len)
{
    char err[300];
    int rc = rte_http_req_query(req, name, buf, len, err, sizeof err);

    if (rc >= 0)
        return 1;
    if (rc == RTE_HTTP_QUERY_ABSENT)
        return 0;
    rte_http_error(req, 400, "%s", err);
    return -1;
}

/*
 * 0 when the query holds only parameters of names (NULL = none), else -1
 * after answering 400: a misspelt cache_control must not pass for DEFAULT
 */
static int query_only(rte_http_req *req, const char *const *names)
{
    char err[300];

    if (rte_http_req_query_only(req, names, err, sizeof err) == 0)
        return 0;
    rte_http_error(req, 400, "%s", err);
    return -1;
}

/* answer from L1 when the policy allows; 1 answered, 0 not */
static int fast_path(rte_http_req *req, gw_req *r)
{
    rte_cache_entry e, ok;
    gw_answer a;
    int64_t now;
    enum gw_action act;

    if (r->pol.mode == GW_MODE_BYPASS_CACHE)
        return 0;
    if (!gw_l1_get(G.l1, r->key, r->t0_mono, &e)) {
        if (G.l1 != NULL)
            rte_series_inc(G.m.l1_miss);
        return 0;
    }
    now = rte_clock_now_ms();
    r->seen.present = 1;
    r->seen.cached_at_ms = e.cached_at_ms;
    r->seen.fresh_until_ms = e.fresh_until_ms;
    act = gw_decide(&r->pol, &r->seen, now, gw_xfetch_now(&e, now));
    if (act != GW_SERVE && act != GW_SERVE_REFRESH && act != GW_SERVE_STALE &&
        act != GW_SERVE_STALE_REFRESH)
        return 0;
    rte_series_inc(G.m.l1_hit);
    gw_answer_entry(&a, &r->pol, &e,
                    act == GW_SERVE || act == GW_SERVE_REFRESH ? GW_R_HIT : GW_R_STALE, &ok, now);
    gw_render(r, &a, req);
    if (act == GW_SERVE_REFRESH)
        gw_refresh_async(r, "xfetch");
    else if (act == GW_SERVE_STALE_REFRESH)
        gw_refresh_async(r, "swr");
    return 1;
}

/*
 * key, deadline, then L1 or the workers. tmp is the handler's request on the
 * stack (an L1 hit allocates nothing); a copy on the heap goes to the workers.
 */
static void dispatch(rte_http_req *req, gw_req *tmp)
{
    gw_req *r;

    rte_crypto_member_key(G.cache.member_key_secret, tmp->member_id, tmp->member_key);
    if (rte_cache_key_for(tmp->member_key, tmp->tp, tmp->key, sizeof tmp->key) != 0) {
        rte_http_error(req, 400, "field 'trading_partner_id': too long");
        return;
    }
    tmp->t0_mono = rte_clock_mono_ms();
    tmp->callers_deadline = tmp->pol.wait_s >= 0;
    tmp->deadline_mono =
        tmp->t0_mono + (tmp->callers_deadline ? tmp->pol.wait_s * 1000 : G.conf.deadline_ms);
    if (fast_path(req, tmp))
        return;
    r = gw_req_dup(tmp);
    if (r == NULL) {
        rte_http_error(req, 500, "out of memory");
        return;
    }
    rte_http_defer(req);
    r->http = req;
    if (gw_submit(r) != 0) {
        r->http = NULL;
        rte_http_add_header(req, "Retry-After", "1");
        rte_http_error(req, 503, "the gateway is overloaded (gateway.queue_max requests waiting)");
        gw_req_unref(r);
    }
}

static const char *const member_params[] = {"trading_partner_id", "cache_control", NULL};

/* gw_h_member - loop thread */
void gw_h_member(rte_http_req *req, void *arg)
{
    char member_id[256], tp[256], mode[256];
    gw_req tmp, *r = &tmp;
    int given, n;
    (void)arg;

    n = rte_http_req_tail_decoded(req, member_id, sizeof member_id);
    if (check_id(req, "member_id", member_id, n, GW_ID_MAX) != 0)
        return;
    gw_req_init(r, GW_CHECK);
    copy_request_id(r, req);
    copy_str(r->member_id, sizeof r->member_id, member_id);
    if (query_only(req, member_params) != 0)
        goto fail;
    given = query_param(req, "trading_partner_id", tp, sizeof tp);
    if (given < 0)
        goto fail;
    if (given) {
        if (check_id(req, "trading_partner_id", tp, (int)strlen(tp), GW_TP_MAX) != 0)
            goto fail;
        copy_str(r->tp, sizeof r->tp, tp);
    }
    given = query_param(req, "cache_control", mode, sizeof mode);
    if (given < 0 || read_policy(req, r, given ? mode : NULL) != 0)
        goto fail;
    if (gw_from_directory(r) != 0) {
        rte_http_error(req, 404,
                       "member '%s' is not in the member directory; POST /v1/eligibility/check "
                       "with the member's details instead",
                       r->member_id);
        goto fail;
    }
    if (!gw_valid_id(r->tp, GW_TP_MAX)) {
        rte_http_error(req, 400,
                       "field 'trading_partner_id': required (the member directory has none for "
                       "member '%s')",
                       r->member_id);
        goto fail;
    }
    dispatch(req, r);
fail:
    gw_req_fini(r);
}

/* read an optional string field of obj, checking length; 0 ok, -1 after answering 400 */
static int opt_field(rte_http_req *req, const cJSON *obj, const char *name, size_t max,
                     const char **out)
{
    char err[300];
    if (obj == NULL)
        return 0;
    if (rte_json_string_opt(obj, name, max, out, err, sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        return -1;
    }
    return 0;
}

/* gw_h_check - loop thread */
void gw_h_check(rte_http_req *req, void *arg)
{
    size_t len;
    const char *body = rte_http_req_body(req, &len);
    char err[300];
    cJSON *doc = NULL;
    const cJSON *member = NULL, *provider = NULL;
    const char *mid = NULL, *first = NULL, *last = NULL, *dob = NULL, *tp = NULL, *mode = NULL,
               *npi = NULL, *org = NULL;
    gw_req tmp, *r = &tmp;
    (void)arg;

    gw_req_init(r, GW_CHECK);
    if (query_only(req, NULL) != 0)
        goto out;
    doc = rte_json_parse(body, len, err, sizeof err);
    if (doc == NULL) {
        rte_http_error(req, 400, "request body: %s", err);
        goto out;
    }
    if (!cJSON_IsObject(doc)) {
        rte_http_error(req, 400, "request body: expected a JSON object");
        goto out;
    }
    rte_json_set_prefix(NULL);
    if (rte_json_object(doc, "member", &member, err, sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        goto out;
    }
    rte_json_set_prefix("member");
    if (rte_json_id(member, "member_id", GW_ID_MAX, &mid, err, sizeof err) != 0) {
        rte_json_set_prefix(NULL);
        rte_http_error(req, 400, "%s", err);
        goto out;
    }
    if (opt_field(req, member, "first_name", GW_NAME_MAX, &first) ||
        opt_field(req, member, "last_name", GW_NAME_MAX, &last) ||
        opt_field(req, member, "date_of_birth", 10, &dob)) {
        rte_json_set_prefix(NULL);
        goto out;
    }
    rte_json_set_prefix(NULL);
    if (!gw_valid_id(mid, GW_ID_MAX)) {
        rte_http_error(req, 400,
                       "field 'member.member_id': must be 1-%d characters of A-Z, a-z, 0-9, '.', "
                       "'_', '-'",
                       GW_ID_MAX);
        goto out;
    }
    if (dob != NULL && rte_input_date(dob, strlen(dob), RTE_INPUT_DATE_ISO | RTE_INPUT_DATE_BASIC,
                                      NULL, "field 'member.date_of_birth'", err, sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(doc, "provider") != NULL) {
        if (rte_json_object(doc, "provider", &provider, err, sizeof err) != 0) {
            rte_http_error(req, 400, "%s", err);
            goto out;
        }
        rte_json_set_prefix("provider");
        if (opt_field(req, provider, "npi", 10, &npi) ||
            opt_field(req, provider, "organization_name", 80, &org)) {
            rte_json_set_prefix(NULL);
            goto out;
        }
        rte_json_set_prefix(NULL);
        if (npi != NULL && (strlen(npi) != 10 || strspn(npi, "0123456789") != 10)) {
            rte_http_error(req, 400, "field 'provider.npi': expected 10 digits");
            goto out;
        }
    }
    if (opt_field(req, doc, "trading_partner_id", 0, &tp) ||
        opt_field(req, doc, "cache_control", 64, &mode))
        goto out;
    if (tp != NULL && check_id(req, "trading_partner_id", tp, (int)strlen(tp), GW_TP_MAX) != 0)
        goto out;
    copy_request_id(r, req);
    copy_str(r->member_id, sizeof r->member_id, mid);
    copy_str(r->tp, sizeof r->tp, tp);
    copy_str(r->npi, sizeof r->npi, npi);
    copy_str(r->org, sizeof r->org, org);
    if (read_policy(req, r, mode) != 0)
        goto out;
    if (first != NULL && last != NULL && dob != NULL) {
        copy_str(r->first_name, sizeof r->first_name, first);
        copy_str(r->last_name, sizeof r->last_name, last);
        copy_str(r->dob, sizeof r->dob, dob);
    } else if (gw_from_directory(r) != 0) {
        rte_http_error(req, 404,
                       "member '%s' is not in the member directory and the request lacks "
                       "member.first_name, member.last_name and member.date_of_birth",
                       r->member_id);
        goto out;
    }
    if (r->tp[0] == '\0') {
        rte_http_error(req, 400, "field 'trading_partner_id': required");
        goto out;
    }
    dispatch(req, r);
out:
    gw_req_fini(r);
    cJSON_Delete(doc);
}

/* gw_h_request - loop thread */
void gw_h_request(rte_http_req *req, void *arg)
{
    char id[64];
    gw_req *r;
    (void)arg;

    if (rte_http_req_tail_decoded(req, id, sizeof id) != 36 ||
        strspn(id, "0123456789abcdef-") != 36) {
        rte_http_error(req, 400, "field 'request_id': expected a UUID");
        return;
    }
    if (query_only(req, NULL) != 0)
        return;
    r = gw_req_new(GW_STATUS);
    if (r == NULL) {
        rte_http_error(req, 500, "out of memory");
        return;
    }
    copy_request_id(r, req);
    memcpy(r->async_id, id, 37);
    r->t0_mono = rte_clock_mono_ms();
    r->deadline_mono = r->t0_mono + G.conf.deadline_ms;
    rte_http_defer(req);
    r->http = req;
    if (gw_submit(r) != 0) {
        r->http = NULL;
        rte_http_error(req, 503, "the gateway is overloaded");
        gw_req_unref(r);
    }
}
