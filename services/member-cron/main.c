/*
 * member-cron - scheduled, predictive member events, exactly once per fire.
 *
 *   reads     schedules YAML (member_cron.schedules), model YAML
 *             (member_cron.model), the member directory (member_cron.members)
 *   produces  member-cron-events (protobuf MemberCronEvent, key member id)
 *             digital-twin.prediction.app_usage_likely (JSON, key member id)
 *   admin     GET /v1/schedules, POST /v1/schedules/{name}/run
 *   timers    scheduler: plans and runs fires until drain (cron_service.c)
 *
 * Replicas coordinate through Redis (cron_store.c); see docs/member-cron.md.
 */
#include "cron_service.h"
#include "rte/service.h"

int main(int argc, char **argv)
{
    static const rte_http_route admin[] = {
        {"GET", "/v1/schedules", cron_admin_list, NULL, 0, "schedules"},
        {"POST", "/v1/schedules/*", cron_admin_run, NULL, 0, "schedule_run"},
        {NULL},
    };
    /* interval 1 ms: the scheduler starts at once and loops until the drain */
    static const rte_timer_decl timers[] = {{"scheduler", 1, cron_service_scheduler, NULL}, {NULL}};
    rte_service_def def = {
        .name = "member-cron",
        .needs = RTE_NEEDS_REDIS | RTE_NEEDS_KAFKA,
        .check = cron_service_check,
        .init = cron_service_init,
        .shutdown = cron_service_shutdown,
        .reload = cron_service_reload,
        .admin_routes = admin,
        .timers = timers,
    };
    return rte_service_main(&def, argc, argv);
}
