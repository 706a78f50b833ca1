/*
 * cw_service.h - cache-warmer's start-up, reload and shutdown callbacks.
 */
#ifndef CW_SERVICE_H
#define CW_SERVICE_H

#include <stddef.h>

#include "rte/config.h"

/* cw_check - validate warmer.*, warm.*, cache.*, batch_registry.*, stedi.*; builds nothing */
int cw_check(const rte_config *cfg, char *err, size_t errlen);

/* cw_init - load the directory, build the Stedi client and the warming path, start the pool */
int cw_init(const rte_config *cfg, char *err, size_t errlen);

/* cw_shutdown - final flush (warmer.flush_on_shutdown), stop the pool, free */
void cw_shutdown(void);

/* cw_flush_interval_ms - the flush timer's interval once cw_init ran (clock ms) */
long long cw_flush_interval_ms(void);

/* cw_kafka_batch_max - messages per consumer batch (warmer.batch_max) once cw_init ran */
int cw_kafka_batch_max(void);

#endif
