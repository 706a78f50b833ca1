/*
 * gw_init.h - the gateway's start-up, shutdown and timers.
 *
 * gw_init reads the gateway.* keys (docs/configuration.md, "## cache-gateway"),
 * the cache settings (cache.*), builds the Stedi client (stedi.*, slots.*),
 * loads the member directory, registers the metrics and starts the core.
 * Bad settings fail start-up naming the key. gw_shutdown stops the core and
 * frees what init built.
 *
 * Thread safety: the skeleton calls these on its own threads: init and
 * shutdown on the main thread, the timer on its timer thread.
 */
#ifndef GW_INIT_H
#define GW_INIT_H

#include <stddef.h>

#include "rte/config.h"

/* gw_check_config - the service's check callback: gateway.*, cache.*, stedi.*, slots.* */
int gw_check_config(const rte_config *cfg, char *err, size_t errlen);

/* gw_init - the service's init callback */
int gw_init(const rte_config *cfg, char *err, size_t errlen);

/* gw_shutdown - the service's shutdown callback */
void gw_shutdown(void);

/* gw_reload_directory - timer: reload the member directory when its source changed */
void gw_reload_directory(void *arg);

#endif
