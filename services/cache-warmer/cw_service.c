/*
 * cw_service.c - cache-warmer's start-up and shutdown (cw_service.h).
 *
 * Order at shutdown: the skeleton has already stopped the consumers (their
 * last batches are in Redis or uncommitted) and the gRPC workers; the
 * final flush seals the open window and submits what is sealed, then the
 * urgent pool stops and everything is freed.
 */
#include "cw_service.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cw.h"
#include "cw_flush.h"
#include "cw_urgent.h"
#include "rte/service.h"
#include "rte/crypto.h"
#include "rte/log.h"

/* cw_check - start-up thread (--check-config) */
int cw_check(const rte_config *cfg, char *err, size_t errlen)
{
    cw_conf c;

    if (cw_conf_load(cfg, &c, err, errlen) != 0)
        return -1;
    return rte_stedi_check_config(cfg, err, errlen);
}

/* cw_init - start-up thread */
int cw_init(const rte_config *cfg, char *err, size_t errlen)
{

    if (cw_conf_load(cfg, &CW.c, err, errlen) != 0)
        return -1;
    cw_metrics_init();
    CW.dir = rte_member_dir_new(CW.c.members, err, errlen);
    if (CW.dir == NULL)
        return -1;
    CW.stedi = rte_stedi_from_config(cfg, err, errlen);
    if (CW.stedi == NULL)
        return -1;
    CW.warm = rte_warm_new(&CW.c.warm, CW.stedi, &CW.c.registry, err, errlen);
    if (CW.warm == NULL)
        return -1;
    snprintf(CW.owner, sizeof CW.owner, "%s", rte_service_instance_id());
    return cw_urgent_start(err, errlen);
}

/* cw_shutdown - shutdown hook */
void cw_shutdown(void)
{
    cw_flush_final();
    cw_urgent_stop();
    rte_warm_free(CW.warm);
    rte_stedi_free(CW.stedi);
    rte_member_dir_free(CW.dir);
    CW.warm = NULL;
    CW.stedi = NULL;
    CW.dir = NULL;
}

/* cw_flush_interval_ms - start-up thread */
long long cw_flush_interval_ms(void)
{
    return CW.c.flush_check_ms;
}

/* cw_kafka_batch_max - start-up thread */
int cw_kafka_batch_max(void)
{
    return CW.c.batch_max;
}
