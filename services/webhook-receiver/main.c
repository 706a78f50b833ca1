/*
 * webhook-receiver - every Stedi batch result, pushed or polled, durably
 * into the cache.
 *
 *   serves    POST /api/v1/batch-callback (signed callbacks; wh_http.c)
 *             admin: POST /admin/batches, GET /admin/batches/{id}
 *   timers    poll registered Stedi batches (wh_poll.c)
 *   consumes  rte.stedi.batch-results, its own durable copy, and writes
 *             the cache (wh_consume.c)
 *   produces  rte.stedi.batch-results, domain.rte.v1.cache_warming_events
 *
 * Settings: docs/configuration.md ("webhook-receiver"); design notes:
 * docs/webhook-receiver.md.
 */
#include "rte/log.h"
#include "rte/service.h"
#include "rte/stedi.h"
#include "rte/topics.h"
#include "wh.h"
#include "wh_consume.h"
#include "wh_http.h"
#include "wh_poll.h"
#include "wh_writers.h"

static rte_timer_decl timers[] = {{"poll_batches", 5000, wh_poll_tick, NULL}, {NULL}};

/* wh.*, cache.*, batch_registry.* and, when polling, stedi.* / slots.*; builds nothing */
static int check(const rte_config *cfg, char *err, size_t errlen)
{
    wh_conf c;

    if (wh_conf_load(cfg, &c, err, errlen) != 0)
        return -1;
    return c.poll_enabled ? rte_stedi_check_config(cfg, err, errlen) : 0;
}

static int init(const rte_config *cfg, char *err, size_t errlen)
{
    if (wh_conf_load(cfg, &WH, err, errlen) != 0)
        return -1;
    wh_metrics_init();
    timers[0].interval_ms = WH.poll_interval_ms; /* the skeleton starts timers after init */
    if (wh_poll_start(cfg, err, errlen) != 0 || wh_writers_start(WH.writers, err, errlen) != 0 ||
        wh_http_start(err, errlen) != 0)
        return -1;
    return 0;
}

static void shutdown_hook(void)
{
    wh_http_stop();
    wh_writers_stop();
    wh_poll_stop();
}

int main(int argc, char **argv)
{
    /* three members of one group: each takes its share of the partitions, in
     * batches whose cache_warming_events are awaited once per batch */
    static const rte_consumer_decl consumers[] = {
        {RTE_TOPIC_STEDI_BATCH_RESULTS, NULL, NULL, NULL, wh_consume_batch, WH_CONSUME_BATCH},
        {RTE_TOPIC_STEDI_BATCH_RESULTS, NULL, NULL, NULL, wh_consume_batch, WH_CONSUME_BATCH},
        {RTE_TOPIC_STEDI_BATCH_RESULTS, NULL, NULL, NULL, wh_consume_batch, WH_CONSUME_BATCH},
        {NULL},
    };
    rte_service_def def = {
        .name = "webhook-receiver",
        /* ready = able to take callbacks durably: Kafka only. While Redis is down the
         * callbacks still land on Kafka and reach the cache once it returns. */
        .needs = RTE_NEEDS_KAFKA,
        .check = check,
        .init = init,
        .shutdown = shutdown_hook,
        .consumers = consumers,
        .routes = wh_http_routes(),
        .admin_routes = wh_http_admin_routes(),
        .timers = timers,
    };
    return rte_service_main(&def, argc, argv);
}
