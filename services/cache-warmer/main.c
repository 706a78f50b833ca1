/*
 * cache-warmer - predictions in, warm cache out, through Stedi's batch API.
 *
 *   consumes  member-cron-events (protobuf), app_usage_likely (JSON):
 *             decide and queue (cw_consume.c, cw_decide.c, cw_urgent.c);
 *             rte.events (rte.access): prediction accuracy (cw_stats.c)
 *   timers    seal windows, submit and register Stedi batches (cw_flush.c)
 *   serves    gRPC rte.v1.CacheWarmingService (cw_grpc.c)
 *
 * The batch queue is libcommon's warm module, shared by every replica in
 * Redis; webhook-receiver polls the registered batches into the cache.
 * Settings: docs/configuration.md ("cache-warmer"); design notes:
 * docs/cache-warmer.md.
 */
#include "cw_consume.h"
#include "cw_flush.h"
#include "cw_grpc.h"
#include "cw_service.h"
#include "cw_stats.h"
#include "rte/service.h"
#include "rte/topics.h"

static rte_timer_decl timers[] = {{"flush", 5000, cw_flush_tick, NULL}, {NULL}};
/* three batch consumers of their own groups (batch_max set from warmer.batch_max) */
static rte_consumer_decl consumers[] = {
    {RTE_TOPIC_MEMBER_CRON_EVENTS, NULL, NULL, NULL, cw_consume_cron, 1000},
    {RTE_TOPIC_APP_USAGE_LIKELY, NULL, NULL, NULL, cw_consume_likely, 1000},
    {RTE_TOPIC_RTE_EVENTS, NULL, NULL, NULL, cw_stats_access, 1000},
    {NULL},
};

static int init(const rte_config *cfg, char *err, size_t errlen)
{
    if (cw_init(cfg, err, errlen) != 0)
        return -1;
    /* the skeleton starts timers and consumers after init */
    timers[0].interval_ms = cw_flush_interval_ms();
    for (int i = 0; consumers[i].topic; i++)
        consumers[i].batch_max = cw_kafka_batch_max();
    return 0;
}

int main(int argc, char **argv)
{
    rte_service_def def = {
        .name = "cache-warmer",
        .needs = RTE_NEEDS_REDIS | RTE_NEEDS_KAFKA,
        .check = cw_check,
        .init = init,
        .shutdown = cw_shutdown,
        .consumers = consumers,
        .grpc = cw_grpc_methods(),
        .timers = timers,
    };
    return rte_service_main(&def, argc, argv);
}
