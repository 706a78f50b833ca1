/*
 * cw_conf.c - cache-warmer settings (docs/configuration.md, "cache-warmer")
 * and its metric families.
 *
 * Every key has a safe default; a bad value fails start-up naming the key
 * and its RTE_* variable. The thresholds are the source's decision tree
 * (000 "Decision Tree", 001 "Integration with Member Cron"): skip below
 * 0.7, URGENT above 0.9, PRELOAD above 0.7, skip entries younger than 1 h.
 */
#include <stdio.h>
#include <string.h>

#include "cw.h"
#include "rte/log.h"

cw_state CW;
cw_metrics CM;

#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)

static int prob(const rte_config *cfg, const char *key, double def, double *out, char *err,
                size_t errlen)
{
    const char *v = rte_config_raw(cfg, key);
    char env[96], *end;
    double d;

    *out = def;
    if (v == NULL)
        return 0;
    d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= 0.0 && d <= 1.0)) {
        rte_config_env_name(key, env, sizeof env);
        snprintf(err, errlen, "config: key '%s' (%s) = '%.40s': expected a number in 0..1", key,
                 env, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* cw_conf_load - start-up thread */
int cw_conf_load(const rte_config *cfg, cw_conf *o, char *err, size_t errlen)
{
    int64_t v;

    memset(o, 0, sizeof *o);
    if (rte_member_dir_source_config(cfg, "warmer.members", &o->members, err, errlen) != 0)
        return -1;
    if (prob(cfg, "warmer.min_probability", 0.7, &o->min_probability, err, errlen) != 0 ||
        prob(cfg, "warmer.urgent_above", 0.9, &o->urgent_above, err, errlen) != 0 ||
        prob(cfg, "warmer.preload_above", 0.7, &o->preload_above, err, errlen) != 0)
        return -1;
    if (o->preload_above > o->urgent_above) {
        snprintf(err, errlen,
                 "config: key 'warmer.preload_above' (RTE_WARMER_PRELOAD_ABOVE) = %g: must not "
                 "exceed warmer.urgent_above (%g)",
                 o->preload_above, o->urgent_above);
        return -1;
    }
    if (rte_config_duration_try(cfg, "warmer.members_reload", MIN_MS, 1000, 24 * HOUR_MS,
                                &o->members_reload_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "warmer.fresh_window", HOUR_MS, 0, 30 * 24 * HOUR_MS,
                                &o->fresh_window_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "warmer.urgent_deadline", 30000, 100, 10 * MIN_MS,
                                &o->urgent_deadline_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "warmer.flush_check", 5000, 1, HOUR_MS, &o->flush_check_ms,
                                err, errlen) != 0 ||
        rte_config_duration_try(cfg, "warmer.batch_eta", 15 * MIN_MS, 0, 24 * HOUR_MS,
                                &o->batch_eta_ms, err, errlen) != 0)
        return -1;
    if (rte_config_int_try(cfg, "warmer.urgent_workers", 5, 1, 15, &v, err, errlen) != 0)
        return -1;
    o->urgent_workers = (int)v;
    if (rte_config_int_try(cfg, "warmer.request_max", 1000, 1, 10000, &v, err, errlen) != 0)
        return -1;
    o->request_max = (int)v;
    if (rte_config_int_try(cfg, "warmer.batch_max", 1000, 1, 10000, &v, err, errlen) != 0)
        return -1;
    o->batch_max = (int)v;
    o->flush_on_shutdown = rte_config_bool(cfg, "warmer.flush_on_shutdown", 1);
    if (rte_cache_settings_from_config(cfg, &o->cache, err, errlen) != 0 ||
        rte_warm_opts_from_config(cfg, &o->warm, err, errlen) != 0 ||
        rte_batch_registry_opts_from_config(cfg, &o->registry, err, errlen) != 0)
        return -1;
    return 0;
}

/* cw_metrics_init - start-up thread */
void cw_metrics_init(void)
{
    static const char *const sp[] = {"source", "priority", NULL};
    static const char *const r[] = {"result", NULL};
    static const char *const reason[] = {"reason", NULL};
    static const char *const src[] = {"source", NULL};
    static const char *const st[] = {"state", NULL};
    static const char *const oc[] = {"outcome", NULL};
    static const char *const topic[] = {"topic", NULL};
    static const double dur[] = {30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800};

    CM.requests = rte_counter_new("rte_cache_warming_requests_total",
                                  "members sent on to be warmed, by source and priority", sp);
    CM.results = rte_counter_new("rte_cache_warming_results_total",
                                 "warming outcomes per member: success (in a submitted Stedi batch "
                                 "or warmed in real time), failure (dropped), unknown",
                                 r);
    CM.skipped = rte_counter_new("rte_cache_warming_skipped_total",
                                 "warming requests not acted on, by reason", reason);
    CM.accuracy = rte_gauge_new("rte_cache_warming_prediction_accuracy",
                                "share of warmed entries the gateway later served (last hour of "
                                "warming with accesses seen), by source",
                                src);
    CM.batches = rte_counter_new("rte_batch_submitted_total", "Stedi batches submitted", NULL);
    CM.checks = rte_counter_new("rte_batch_checks_submitted_total",
                                "eligibility checks submitted in Stedi batches", NULL);
    CM.completion = rte_histogram_new("rte_batch_completion_duration_seconds",
                                      "Stedi batch submission to webhook-receiver marking it done "
                                      "(clock seconds)",
                                      NULL, dur, 11);
    CM.queue = rte_gauge_new("rte_cache_warming_queue_size",
                             "members waiting in the batch queue: open (accumulating) or sealed "
                             "(waiting for a submitter)",
                             st);
    CM.urgent = rte_counter_new("rte_cache_warming_urgent_total",
                                "urgent real-time warmings by outcome (warmed, fallback)", oc);
    CM.invalid = rte_counter_new("rte_cache_warming_invalid_events_total",
                                 "events sent to the DLQ as undecodable or invalid", topic);
    CM.fires = rte_counter_new("rte_cache_warming_schedule_fires_total",
                               "ScheduleWarming fires by result: fired (this replica ran it), "
                               "resumed (took over a fire whose runner died), missed (older due "
                               "fires skipped for the newest), failed",
                               r);
}

/* cw_priority_name - any thread */
const char *cw_priority_name(int p)
{
    static const char *const n[] = {"background", "preload", "urgent"};
    return p >= 0 && p <= 2 ? n[p] : "unknown";
}

/* cw_outcome_name - any thread */
const char *cw_outcome_name(int o)
{
    static const char *const n[CW_NOUTCOMES] = {
        "pending",           "low_probability", "unknown_member", "rte_disabled",
        "inactive_coverage", "fresh",           "cached",         "duplicate_event",
        "duplicate_member",  "queued",          "warmed"};
    return o >= 0 && o < CW_NOUTCOMES ? n[o] : "unknown";
}
