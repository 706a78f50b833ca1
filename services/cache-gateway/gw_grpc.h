/*
 * gw_grpc.h - the gateway's gRPC API: rte.v1.EligibilityService
 * (proto/eligibility.proto), the source's "RPC API" for cache control.
 *
 *   CheckEligibility  {member_id, trading_partner_id, cache_control}: the
 *                     same question as GET /v1/eligibility/{member_id}?
 *                     trading_partner_id=&cache_control=, answered by the
 *                     same core (single flight, cluster lock, interactive
 *                     slot class, cache, deadline gateway.deadline)
 *
 * Answers mirror the HTTP body: an entry served (HTTP 200) fills
 * eligibility, cache_status and cache_metadata (and error_message for a
 * payer's error entry); an answer HTTP gives without an entry (504
 * CACHE_ONLY miss or deadline, 502 Stedi failure, 503 Redis down under
 * CACHE_ONLY) is OK with cache_status ERROR and error_message the same
 * text - the source's errors-as-data CoverageResult. Only a request that
 * never reaches the core gets a gRPC status: INVALID_ARGUMENT naming the
 * field (HTTP 400), NOT_FOUND for a member the directory lacks (404),
 * UNAVAILABLE when the work queue is full (503).
 *
 * Callers need scope rte:eligibility:read (docs/auth.md).
 *
 * Thread safety: the handler runs on a gRPC worker and blocks it until the
 * core answered (gw_ask).
 */
#ifndef GW_GRPC_H
#define GW_GRPC_H

#include "rte/grpc_server.h"

#define GW_SCOPE_READ "rte:eligibility:read"

/* gw_grpc_methods - the method table (static storage); any thread */
const rte_grpc_method *gw_grpc_methods(void);

#endif
