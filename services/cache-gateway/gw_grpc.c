/*
 * gw_grpc.c - rte.v1.EligibilityService/CheckEligibility (contract in
 * gw_grpc.h).
 *
 * The handler reads the request as gw_h_member reads its path and query -
 * the member id and trading partner through the input policy
 * (rte_input_id) and the gateway's id rule, the mode through
 * gw_policy_from_request, names and date of birth from the member
 * directory - builds the same gw_req with the same cache key and deadline,
 * and hands it to the core with gw_ask. It does not try the loop thread's
 * L1 fast path: a worker reads the shared cache itself (one thread hop,
 * the same entry). The answer the core would have rendered on HTTP comes
 * back in a gw_rpc and is turned into a CheckEligibilityResponse here.
 */
#include "gw_grpc.h"

#include <stdio.h>
#include <string.h>

#include "eligibility.pb-c.h"
#include "gw.h"
#include "gw_core.h"
#include "gw_http.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/input.h"

/* CacheControl enum values -> the HTTP API's cache_control names */
static const char *const modes[] = {
    [RTE__V1__CACHE_CONTROL__CACHE_CONTROL_DEFAULT] = "DEFAULT",
    [RTE__V1__CACHE_CONTROL__CACHE_CONTROL_CACHE_ONLY] = "CACHE_ONLY",
    [RTE__V1__CACHE_CONTROL__CACHE_CONTROL_PREFER_CACHED] = "PREFER_CACHED",
    [RTE__V1__CACHE_CONTROL__CACHE_CONTROL_BYPASS_CACHE] = "BYPASS_CACHE",
    [RTE__V1__CACHE_CONTROL__CACHE_CONTROL_STALE_WHILE_REVALIDATE] = "STALE_WHILE_REVALIDATE",
};

static const Rte__V1__CacheStatus statuses[GW_R_N] = {
    [GW_R_HIT] = RTE__V1__CACHE_STATUS__CACHE_STATUS_HIT,
    [GW_R_MISS] = RTE__V1__CACHE_STATUS__CACHE_STATUS_MISS,
    [GW_R_STALE] = RTE__V1__CACHE_STATUS__CACHE_STATUS_STALE,
    [GW_R_ERROR] = RTE__V1__CACHE_STATUS__CACHE_STATUS_ERROR,
};

/* an id field: 0, or -1 after INVALID_ARGUMENT naming it (the HTTP API's 400 text) */
static int check_id(rte_grpc_call *call, const char *field, const char *s, size_t max)
{
    char why[200];

    if (rte_input_id(s, strlen(s), max, NULL, why, sizeof why) != 0) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "field '%s': %s", field, why);
        return -1;
    }
    if (!gw_valid_id(s, max)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "field '%s': must be 1-%zu characters of A-Z, a-z, 0-9, '.', '_', '-'",
                        field, max);
        return -1;
    }
    return 0;
}

/* x-request-id when given (characters safe in JSON and logs), else a fresh UUID */
static void request_id(rte_grpc_call *call, char *out, size_t len)
{
    const char *id = rte_grpc_metadata(call, "x-request-id");
    size_t n = 0;

    if (id == NULL || id[0] == '\0') {
        char uuid[37];
        rte_uuid4(uuid);
        snprintf(out, len, "%s", uuid);
        return;
    }
    for (; id[n] != '\0' && n + 1 < len; n++) {
        char c = id[n];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '-' || c == '_' || c == '.';
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
}

/* fill tmp from the request as gw_h_member does; 0, or -1 with the status set */
static int read_request(rte_grpc_call *call, const Rte__V1__CheckEligibilityRequest *q, gw_req *r)
{
    char err[300];
    int mode = (int)q->cache_control;

    if (check_id(call, "member_id", q->member_id, GW_ID_MAX) != 0)
        return -1;
    if (q->trading_partner_id[0] != '\0' &&
        check_id(call, "trading_partner_id", q->trading_partner_id, GW_TP_MAX) != 0)
        return -1;
    if (mode < 0 || mode >= (int)(sizeof modes / sizeof modes[0])) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "field 'cache_control': %d is not a CacheControl value (0-4)", mode);
        return -1;
    }
    request_id(call, r->request_id, sizeof r->request_id);
    snprintf(r->member_id, sizeof r->member_id, "%s", q->member_id);
    snprintf(r->tp, sizeof r->tp, "%s", q->trading_partner_id);
    if (gw_policy_from_request(&r->pol, modes[mode], NULL, NULL, err, sizeof err) != 0) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "%s", err);
        return -1;
    }
    if (gw_from_directory(r) != 0) {
        rte_grpc_status(call, RTE_GRPC_NOT_FOUND, "member '%s' is not in the member directory",
                        r->member_id);
        return -1;
    }
    if (!gw_valid_id(r->tp, GW_TP_MAX)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "field 'trading_partner_id': required (the member directory has none for "
                        "member '%s')",
                        r->member_id);
        return -1;
    }
    rte_crypto_member_key(G.cache.member_key_secret, r->member_id, r->member_key);
    if (rte_cache_key_for(r->member_key, r->tp, r->key, sizeof r->key) != 0) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "field 'trading_partner_id': too long");
        return -1;
    }
    r->t0_mono = rte_clock_mono_ms();
    r->deadline_mono = r->t0_mono + G.conf.deadline_ms;
    return 0;
}

static int client_there(void *arg)
{
    return !rte_grpc_call_gone(arg);
}

static void to_timestamp(Rte__V1__Timestamp *t, int64_t ms)
{
    int64_t s = ms / 1000, rem = ms % 1000;

    if (rem < 0) {
        s--;
        rem += 1000;
    }
    t->seconds = s;
    t->nanos = (int32_t)(rem * 1000000);
}

/* the response for the core's answer in rpc */
static void reply(rte_grpc_call *call, const gw_req *r, const gw_rpc *rpc)
{
    Rte__V1__CheckEligibilityResponse resp = RTE__V1__CHECK_ELIGIBILITY_RESPONSE__INIT;
    Rte__V1__EligibilityResult el = RTE__V1__ELIGIBILITY_RESULT__INIT;
    Rte__V1__CacheMetadata md = RTE__V1__CACHE_METADATA__INIT;
    Rte__V1__Timestamp cached_at = RTE__V1__TIMESTAMP__INIT, fresh = RTE__V1__TIMESTAMP__INIT,
                       expires = RTE__V1__TIMESTAMP__INIT;
    const rte_cache_entry *e = &rpc->e;

    resp.member_id = (char *)r->member_id;
    resp.trading_partner_id = (char *)r->tp;
    resp.cache_status = statuses[rpc->result];
    if (!rpc->have_entry) {
        resp.error_message = (char *)rpc->message;
        rte_grpc_reply(call, &resp.base);
        return;
    }
    el.eligible = e->eligible;
    el.copay_amount = e->has_copay ? e->copay_amount : 0;
    el.network_status = (char *)e->network_status;
    el.coverage_start = (char *)e->coverage_start;
    el.coverage_end = (char *)e->coverage_end;
    to_timestamp(&cached_at, e->cached_at_ms);
    to_timestamp(&fresh, e->fresh_until_ms);
    el.cached_at = &cached_at;
    el.fresh_until = &fresh;
    el.source = (char *)e->source;
    md.cached = rpc->cached;
    md.age_seconds = rte_cache_entry_age_s(e, rpc->now_ms);
    to_timestamp(&expires, e->fresh_until_ms);
    md.expires_at = &expires;
    md.revalidating = rpc->revalidating;
    resp.eligibility = &el;
    resp.cache_metadata = &md;
    if (e->is_error)
        resp.error_message = (char *)e->error_message;
    rte_grpc_reply(call, &resp.base);
}

static void check_eligibility(rte_grpc_call *call, const ProtobufCMessage *msg, void *arg)
{
    const Rte__V1__CheckEligibilityRequest *q = (const void *)msg;
    gw_req tmp, *r;
    gw_rpc rpc;
    int rc;
    (void)arg;

    gw_req_init(&tmp, GW_CHECK);
    if (read_request(call, q, &tmp) != 0)
        goto out;
    r = gw_req_dup(&tmp);
    if (r == NULL) {
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    memset(&rpc, 0, sizeof rpc);
    rc = gw_ask(r, &rpc, client_there, call);
    if (rc < 0)
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE,
                        "the gateway is overloaded (gateway.queue_max requests waiting)");
    else if (rc > 0)
        rte_grpc_status(call, RTE_GRPC_CANCELLED, "the client went away");
    else
        reply(call, &tmp, &rpc);
out:
    gw_req_fini(&tmp);
}

/* gw_grpc_methods - any thread */
const rte_grpc_method *gw_grpc_methods(void)
{
    static const rte_grpc_method m[] = {
        {"/rte.v1.EligibilityService/CheckEligibility",
         &rte__v1__check_eligibility_request__descriptor,
         &rte__v1__check_eligibility_response__descriptor, check_eligibility, NULL, NULL,
         GW_SCOPE_READ},
        {NULL},
    };
    return m;
}
