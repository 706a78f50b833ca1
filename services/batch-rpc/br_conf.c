/*
 * br_conf.c - batch-rpc settings (docs/configuration.md, "batch-rpc"), its
 * metric families, and its start-up and shutdown.
 *
 * Every key has a safe default; a bad value fails start-up naming the key
 * and its RTE_* variable. Defaults follow the source: 10 batches per client
 * per hour, 8 h job timeout, Stedi batches of at most 10,000.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "br.h"
#include "rte/service.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/tz.h"

br_state BR;
br_metrics BM;

#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

/* br_conf_load - start-up thread */
int br_conf_load(const rte_config *cfg, br_conf *o, char *err, size_t errlen)
{
    const char *p;

    memset(o, 0, sizeof *o);
    if (rte_member_dir_source_config(cfg, "batchrpc.members", &o->members, err, errlen) != 0)
        return -1;
    if (rte_config_duration_try(cfg, "batchrpc.members_reload", MIN_MS, 1000, DAY_MS,
                                &o->members_reload_ms, err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.request_max", 1000000, 1, 5000000, &o->request_max, err,
                             errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.rate_limit", 10, 0, 1000000, &o->rate_limit, err,
                             errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.rate_window", HOUR_MS, 1000, 31 * DAY_MS,
                                &o->rate_window_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.tick", 1000, 10, MIN_MS, &o->tick_ms, err, errlen) !=
            0 ||
        rte_config_duration_try(cfg, "batchrpc.slice", 2000, 100, 10 * MIN_MS, &o->slice_ms, err,
                                errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.chunk", 100, 1, 1000, &o->chunk, err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.batch_chunk", BR_STEDI_BATCH_MAX, 1, BR_STEDI_BATCH_MAX,
                             &o->batch_chunk, err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.realtime_workers", 5, 1, 15, &o->realtime_workers, err,
                             errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.check_interval", 30000, 10, HOUR_MS,
                                &o->check_interval_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.timeout", 8 * HOUR_MS, 1000, 7 * DAY_MS,
                                &o->timeout_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.timeout_max", 48 * HOUR_MS, 1000, 30 * DAY_MS,
                                &o->timeout_max_ms, err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.page_size", 50, 1, 1000, &o->page_size, err, errlen) !=
            0 ||
        rte_config_duration_try(cfg, "batchrpc.watch_poll", 200, 10, 10000, &o->watch_poll_ms, err,
                                errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.keepalive", 15000, 100, 10 * MIN_MS,
                                &o->keepalive_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.check_eta", 13500, 0, HOUR_MS, &o->check_eta_ms, err,
                                errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.batch_eta", 30 * MIN_MS, 0, DAY_MS, &o->batch_eta_ms,
                                err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.member_events_max", 10000, 0, 1000000,
                             &o->member_events_max, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.submit_retry", 10000, 10, HOUR_MS,
                                &o->submit_retry_ms, err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.submit_attempts", 5, 1, 100, &o->submit_attempts, err,
                             errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.jitter", 60 * MIN_MS, 0, DAY_MS, &o->jitter_ms, err,
                                errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.busy_pause", 10000, 10, HOUR_MS, &o->busy_pause_ms,
                                err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.webhook_attempts", 10, 1, 100, &o->webhook_attempts,
                             err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.webhook_backoff", 1000, 10, HOUR_MS,
                                &o->webhook_backoff_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.webhook_lease", 30000, 100, HOUR_MS,
                                &o->webhook_lease_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.webhook_timeout", 10000, 100, 5 * MIN_MS,
                                &o->webhook_timeout_ms, err, errlen) != 0)
        return -1;
    o->webhook_secret = rte_config_str(cfg, "batchrpc.webhook_secret", "");
    if (o->webhook_secret[0]) {
        uint8_t key[RTE_WEBHOOK_KEY_MAX];
        char why[200];
        if (rte_crypto_webhook_key(o->webhook_secret, key, why, sizeof why) < 0) {
            snprintf(err, errlen,
                     "config: key 'batchrpc.webhook_secret' (RTE_BATCHRPC_WEBHOOK_SECRET): %s",
                     why);
            return -1;
        }
    }
    if (o->webhook_timeout_ms >= o->webhook_lease_ms) {
        snprintf(err, errlen,
                 "config: key 'batchrpc.webhook_timeout' (RTE_BATCHRPC_WEBHOOK_TIMEOUT) must be "
                 "below batchrpc.webhook_lease");
        return -1;
    }
    if (rte_config_int32_try(cfg, "slots.limit", 15, 1, 1000, &o->slots_limit, err, errlen) != 0)
        return -1;
    if (o->timeout_ms > o->timeout_max_ms) {
        snprintf(err, errlen,
                 "config: key 'batchrpc.timeout' (RTE_BATCHRPC_TIMEOUT) must not exceed "
                 "batchrpc.timeout_max");
        return -1;
    }
    p = rte_config_str(cfg, "batchrpc.prefix", "rte:batchrpc");
    if (p[0] == '\0' || strlen(p) >= 48) {
        snprintf(err, errlen, "config: key 'batchrpc.prefix' (RTE_BATCHRPC_PREFIX): 1..47 chars");
        return -1;
    }
    snprintf(o->prefix, sizeof o->prefix, "%s", p);
    o->time_zone = rte_config_str(cfg, "batchrpc.time_zone", "UTC");
    rte_jobs_opts_init(&o->jobs);
    snprintf(o->jobs.prefix, sizeof o->jobs.prefix, "%s", p);
    if (rte_config_duration_try(cfg, "batchrpc.lease", 30000, 1000, 10 * MIN_MS, &o->jobs.lease_ms,
                                err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batchrpc.keep", 7 * DAY_MS, MIN_MS, 90 * DAY_MS,
                                &o->jobs.keep_ms, err, errlen) != 0 ||
        rte_config_int32_try(cfg, "batchrpc.events_max", 10000, 100, 1000000, &o->jobs.events_max,
                             err, errlen) != 0)
        return -1;
    if (o->slice_ms * 2 > o->jobs.lease_ms) {
        snprintf(err, errlen,
                 "config: key 'batchrpc.slice' (RTE_BATCHRPC_SLICE) must be at most half of "
                 "batchrpc.lease (the lease is renewed once per chunk)");
        return -1;
    }
    if (rte_cache_settings_from_config(cfg, &o->cache, err, errlen) != 0)
        return -1;
    return rte_batch_registry_opts_from_config(cfg, &o->registry, err, errlen);
}

/* br_metrics_init - start-up thread */
void br_metrics_init(void)
{
    static const char *const ev[] = {"event", NULL};
    static const char *const res[] = {"result", NULL};
    static const char *const kind[] = {"kind", NULL};
    static const char *const out[] = {"outcome", NULL};
    static const char *const sink[] = {"sink", "result", NULL};

    BM.jobs = rte_counter_new("rte_batchrpc_jobs_total",
                              "Batch jobs by lifecycle event (submitted, idempotent, started, "
                              "completed, partially_completed, failed, cancelled, resumed)",
                              ev);
    BM.members = rte_counter_new("rte_batchrpc_members_total",
                                 "Members of batch jobs by result (cache_hit, refreshed, "
                                 "failed, cancelled)",
                                 res);
    BM.chunks =
        rte_counter_new("rte_batchrpc_chunks_total",
                        "Chunks worked by kind (realtime, batch, cache, wait, resumed)", kind);
    BM.dups = rte_counter_new("rte_batchrpc_duplicate_checks_total",
                              "Members worked again because the replica working their chunk "
                              "died or lost its lease",
                              NULL);
    BM.limited = rte_counter_new("rte_batchrpc_rate_limited_total",
                                 "SubmitBatch calls refused by the per-client rate limit", NULL);
    BM.realtime = rte_counter_new("rte_batchrpc_realtime_total",
                                  "Real-time checks made by batch jobs by outcome", out);
    BM.stedi = rte_counter_new("rte_batchrpc_stedi_batches_total",
                               "Stedi batch submits by outcome (submitted, refused, unknown)", out);
    BM.batches = rte_counter_new("rte_batch_submitted_total", "Stedi batches submitted", NULL);
    BM.checks = rte_counter_new("rte_batch_checks_submitted_total",
                                "Checks in the Stedi batches submitted", NULL);
    BM.events = rte_counter_new("rte_batchrpc_events_total",
                                "Job updates pushed by sink (stream, kafka) and result", sink);
    static const char *const type[] = {"type", NULL};
    BM.resent = rte_counter_new("rte_batchrpc_events_redelivered_total",
                                "Owed job events (started, completed, failed, cancelled) "
                                "sent again after a sink failed or a replica died",
                                type);
}

/* br_check - start-up thread (--check-config) */
int br_check(const rte_config *cfg, char *err, size_t errlen)
{
    br_conf c;
    char why[256];
    struct rte_tz *tz;

    if (br_conf_load(cfg, &c, err, errlen) != 0)
        return -1;
    tz = rte_tz_load(NULL, c.time_zone, why, sizeof why);
    if (tz == NULL) {
        snprintf(err, errlen, "config: key 'batchrpc.time_zone' (RTE_BATCHRPC_TIME_ZONE): %s", why);
        return -1;
    }
    rte_tz_free(tz);
    return rte_stedi_check_config(cfg, err, errlen);
}

/* br_init - start-up thread */
int br_init(const rte_config *cfg, char *err, size_t errlen)
{
    char why[256];

    if (br_conf_load(cfg, &BR.c, err, errlen) != 0)
        return -1;
    br_metrics_init();
    BR.tz = rte_tz_load(NULL, BR.c.time_zone, why, sizeof why);
    if (BR.tz == NULL) {
        snprintf(err, errlen, "config: key 'batchrpc.time_zone' (RTE_BATCHRPC_TIME_ZONE): %s", why);
        return -1;
    }
    if (BR.c.webhook_secret[0]) {
        BR.whkeylen = rte_crypto_webhook_key(BR.c.webhook_secret, BR.whkey, why, sizeof why);
        if (BR.whkeylen < 0) {
            snprintf(err, errlen, "config: key 'batchrpc.webhook_secret': %s", why);
            return -1;
        }
    }
    BR.http = rte_http_client_new(NULL, err, errlen);
    if (BR.http == NULL)
        return -1;
    BR.dir = rte_member_dir_new(BR.c.members, err, errlen);
    if (BR.dir == NULL)
        return -1;
    BR.stedi = rte_stedi_from_config(cfg, err, errlen);
    if (BR.stedi == NULL)
        return -1;
    snprintf(BR.owner, sizeof BR.owner, "%s", rte_service_instance_id());
    return 0;
}

/* br_shutdown - shutdown hook (timers and gRPC workers have stopped) */
void br_shutdown(void)
{
    rte_stedi_free(BR.stedi);
    rte_member_dir_free(BR.dir);
    rte_tz_free(BR.tz);
    rte_http_client_free(BR.http);
    BR.http = NULL;
    BR.stedi = NULL;
    BR.dir = NULL;
    BR.tz = NULL;
}

/* br_status_name - pure */
const char *br_status_name(int status)
{
    static const char *const names[] = {"PENDING", "RUNNING",   "COMPLETED",
                                        "FAILED",  "CANCELLED", "PARTIALLY_COMPLETED"};
    return status >= 0 && status <= 5 ? names[status] : "UNKNOWN";
}

/* br_status_final - pure */
int br_status_final(int status)
{
    return status >= RTE__V1__BATCH_STATUS__BATCH_STATUS_COMPLETED;
}
