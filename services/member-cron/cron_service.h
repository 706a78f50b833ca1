/*
 * cron_service.h - member-cron's callbacks to the libcommon skeleton.
 *
 * main.c hands these to rte_service_main:
 *   init / reload / shutdown   configuration (member_cron.* keys), the
 *                              schedules file, the model file and the
 *                              member directory; SIGHUP reloads schedules
 *                              and model (refused as a whole when either
 *                              does not load, old ones keep running)
 *   cron_service_scheduler     the "scheduler" timer: a loop on its own
 *                              thread until drain that watches the files,
 *                              plans due fires (catch-up policy), takes
 *                              leases and runs fires (cron_run)
 *   cron_admin_list/run        GET /v1/schedules, POST /v1/schedules/{name}/run
 *
 * Thread safety: the active schedules+model pair is reference counted and
 * swapped under a mutex, so the scheduler thread, the admin (HTTP loop)
 * thread and the SIGHUP (main) thread never see a freed set.
 */
#ifndef CRON_SERVICE_H
#define CRON_SERVICE_H

#include <stddef.h>

#include "rte/config.h"
#include "rte/http_server.h"

/* cron_service_check - skeleton check callback: member_cron.* and the files they name */
int cron_service_check(const rte_config *cfg, char *err, size_t errlen);

/* cron_service_init - skeleton init callback (main thread) */
int cron_service_init(const rte_config *cfg, char *err, size_t errlen);

/* cron_service_reload - skeleton SIGHUP callback (main thread) */
int cron_service_reload(const rte_config *cfg, char *err, size_t errlen);

/* cron_service_shutdown - skeleton shutdown callback, after timers stopped */
void cron_service_shutdown(void);

/* cron_service_scheduler - the scheduler timer; returns once the service drains */
void cron_service_scheduler(void *arg);

/* cron_admin_list - GET /v1/schedules (HTTP loop thread; short Redis reads) */
void cron_admin_list(rte_http_req *req, void *arg);

/* cron_admin_run - POST /v1/schedules/{name}/run (HTTP loop thread) */
void cron_admin_run(rte_http_req *req, void *arg);

#endif
