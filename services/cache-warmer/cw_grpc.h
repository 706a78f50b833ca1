/*
 * cw_grpc.h - gRPC rte.v1.CacheWarmingService (proto/cache_warming.proto).
 *
 *   WarmCache        1..warmer.request_max member ids (1,000 by default: the
 *                    source's rate limit), strategy and priority as given,
 *                    source (default "grpc"); the members go through the
 *                    same decision tree and queue as the Kafka events (no
 *                    event id); returns a job id, how many were queued or
 *                    warmed, how many skipped, and the estimated completion
 *                    (now for urgent-only requests, else the window's end
 *                    plus warmer.batch_eta)
 *   GetWarmingStats  figures of cw_stats_query over [start_time, end_time)
 *                    (default: the last 24 h), by source
 *   ScheduleWarming  a named cron schedule of a member query (cw_sched.h)
 * Bad requests get INVALID_ARGUMENT naming the field.
 *
 * Callers are internal services with M2M tokens (docs/auth.md): WarmCache
 * and ScheduleWarming need scope rte:warm:write, GetWarmingStats
 * rte:warm:read; the server refuses a call without it before the handler.
 */
#ifndef CW_GRPC_H
#define CW_GRPC_H

#include "rte/grpc_server.h"

#define CW_SCOPE_WRITE "rte:warm:write"
#define CW_SCOPE_READ "rte:warm:read"

/* cw_grpc_methods - the method table (static storage) */
const rte_grpc_method *cw_grpc_methods(void);

#endif
