/*
 * gw_http.h - the gateway's HTTP API (server side).
 *
 *   GET  /v1/eligibility/{member_id}?trading_partner_id=&cache_control=
 *   POST /v1/eligibility/check          {member, provider, trading_partner_id, cache_control}
 *   GET  /v1/eligibility/requests/{id}  async request: 202 pending, or the stored result
 *
 * Handlers run on the h2o loop thread. They validate input (400 naming the
 * field, 404 for an unknown member), answer from L1 when they can, and
 * otherwise defer the request and hand it to the core (gw_core.h).
 *
 * Thread safety: loop thread only.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "gw.h"
#include "rte/http_server.h"

/*
 * gw_from_directory - fill r's names and date of birth (and trading
 * partner when empty) from the member directory; 0 found, -1 not (or no
 * directory). Any thread. Shared with the gRPC API (gw_grpc.h).
 */
int gw_from_directory(gw_req *r);

/* gw_h_member - GET /v1/eligibility/{member_id} */
void gw_h_member(rte_http_req *req, void *arg);

/* gw_h_check - POST /v1/eligibility/check */
void gw_h_check(rte_http_req *req, void *arg);

/* gw_h_request - GET /v1/eligibility/requests/{id} */
void gw_h_request(rte_http_req *req, void *arg);

#endif
