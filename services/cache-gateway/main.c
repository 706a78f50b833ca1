/*
 * cache-gateway - the cache-control eligibility gateway (issue 4).
 *
 * Every member-facing eligibility request goes through here: answered from
 * the shared Redis cache (and an in-process L1) as the caller's cache
 * control allows, or with one real-time Stedi call per key cluster-wide,
 * holding a slot of the interactive class. See docs/cache-gateway.md.
 *
 *   serves    GET  /v1/eligibility/{member_id}?trading_partner_id=&cache_control=
 *             POST /v1/eligibility/check
 *             GET  /v1/eligibility/requests/{id}   (async requests, Prefer: respond-async)
 *   serves    gRPC rte.v1.EligibilityService/CheckEligibility (gw_grpc.c): the same answers
 *   produces  rte.events (lifecycle and access events, key = member key)
 *   timers    member-dir: reload the member directory when it changed
 */
#include "gw.h"
#include "gw_grpc.h"
#include "gw_http.h"
#include "gw_init.h"
#include "rte/service.h"

int main(int argc, char **argv)
{
    static const rte_http_route routes[] = {
        {"GET", "/v1/eligibility/requests/*", gw_h_request, NULL, 1024, "eligibility_request"},
        {"POST", "/v1/eligibility/check", gw_h_check, NULL, GW_MAX_BODY, "eligibility_check"},
        {"GET", "/v1/eligibility/*", gw_h_member, NULL, 1024, "eligibility_member"},
        {NULL},
    };
    static const rte_timer_decl timers[] = {{"member-dir", 60000, gw_reload_directory, NULL},
                                            {NULL}};
    const rte_service_def def = {
        .name = "cache-gateway",
        .needs = RTE_NEEDS_REDIS | RTE_NEEDS_KAFKA,
        .check = gw_check_config,
        .init = gw_init,
        .shutdown = gw_shutdown,
        .routes = routes,
        .grpc = gw_grpc_methods(),
        .timers = timers,
    };
    return rte_service_main(&def, argc, argv);
}
