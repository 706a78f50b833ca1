/*
 * batch-rpc - bulk eligibility jobs submitted over gRPC, worked by every
 * replica from Redis.
 *
 *   serves  gRPC rte.v1.BatchEligibilityService (br_grpc.c)
 *   timers  work: due jobs, chunk by chunk, under leases (br_exec.c)
 *           webhooks: signed callbacks from the Redis outbox (br_webhook.c)
 *   emits   BatchJobEvent on domain.rte.v1.batch_job_events, rte.* events
 *           of its real-time checks on rte.events (br_events.c)
 *
 * Jobs live in Redis (libcommon jobs module); Stedi batches are registered
 * with batch_registry for webhook-receiver to poll into the cache.
 * Settings: docs/configuration.md ("batch-rpc"); design: docs/batch-rpc.md.
 */
#include "br.h"
#include "br_exec.h"
#include "br_grpc.h"
#include "br_webhook.h"
#include "rte/service.h"

static rte_timer_decl timers[] = {
    {"work", 1000, br_exec_tick, NULL}, {"webhooks", 200, br_webhook_tick, NULL}, {NULL}};

static int init(const rte_config *cfg, char *err, size_t errlen)
{
    if (br_init(cfg, err, errlen) != 0)
        return -1;
    /* the skeleton starts timers after init */
    timers[0].interval_ms = BR.c.tick_ms;
    return 0;
}

int main(int argc, char **argv)
{
    rte_service_def def = {
        .name = "batch-rpc",
        .needs = RTE_NEEDS_REDIS | RTE_NEEDS_KAFKA,
        .check = br_check,
        .init = init,
        .shutdown = br_shutdown,
        .grpc = br_grpc_methods(),
        .timers = timers,
        .grpc_workers = 32,
    };
    return rte_service_main(&def, argc, argv);
}
