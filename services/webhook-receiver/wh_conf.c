/*
 * wh_conf.c - webhook-receiver settings (docs/configuration.md,
 * "webhook-receiver"), its metric families and the one produce helper.
 *
 * Every key has a safe default; a bad value fails start-up with a message
 * naming the key and its RTE_* variable. wh.secrets is a comma-separated
 * list (a YAML sequence is joined with commas): every listed secret is
 * accepted, so a new one can be added, senders moved over, and the old one
 * removed without downtime. Each secret becomes its HMAC key here, once,
 * through rte_crypto_webhook_key: a Standard Webhooks "whsec_<base64>"
 * secret is decoded, and one that does not decode stops start-up naming
 * its place in the list (wh.secrets[i], counted from 0); any other secret
 * is its own text. The development default "whsec-test" (the simulator's;
 * a hyphen, so text) is accepted with a warning.
 */
#include <stdio.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/kafka.h"
#include "rte/log.h"
#include "rte/service.h"
#include "wh.h"

wh_conf WH;
wh_metrics WM;

#define DEV_SECRET "whsec-test"
#define MIB (1024 * 1024)

/* split the comma-separated list and turn each secret into its key; 0 or -1 + err */
static int parse_secrets(const char *list, wh_secrets *out, char *err, size_t errlen)
{
    char copy[4096], why[256];
    size_t n = strlen(list);
    if (n >= sizeof copy) {
        snprintf(err, errlen, "config: key 'wh.secrets' (RTE_WH_SECRETS): longer than %zu bytes",
                 sizeof copy - 1);
        return -1;
    }
    memcpy(copy, list, n + 1);
    out->n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (len == 0)
            continue;
        if (out->n == WH_MAX_SECRETS) {
            snprintf(err, errlen, "config: key 'wh.secrets' (RTE_WH_SECRETS): at most %d secrets",
                     WH_MAX_SECRETS);
            return -1;
        }
        if (len < 8) {
            snprintf(err, errlen,
                     "config: key 'wh.secrets[%d]' (RTE_WH_SECRETS): shorter than 8 characters",
                     out->n);
            return -1;
        }
        int klen = rte_crypto_webhook_key(tok, out->key[out->n], why, sizeof why);
        if (klen < 0) {
            snprintf(err, errlen, "config: key 'wh.secrets[%d]' (RTE_WH_SECRETS): %s", out->n, why);
            return -1;
        }
        if (strcmp(tok, DEV_SECRET) == 0)
            rte_log_warn("wh.secrets includes the development secret; set RTE_WH_SECRETS in "
                         "production");
        out->len[out->n++] = (size_t)klen;
    }
    if (out->n == 0) {
        snprintf(err, errlen, "config: key 'wh.secrets' (RTE_WH_SECRETS): no secret given");
        return -1;
    }
    return 0;
}

/* wh_conf_load - start-up thread */
int wh_conf_load(const rte_config *cfg, wh_conf *o, char *err, size_t errlen)
{
    int64_t v;
    memset(o, 0, sizeof *o);
    const char *secrets = rte_config_str(cfg, "wh.secrets", DEV_SECRET);
    if (parse_secrets(secrets, &o->secrets, err, errlen) != 0)
        return -1;
    if (rte_config_duration_try(cfg, "wh.timestamp_tolerance", 5 * 60 * 1000, 1000,
                                24 * 3600 * 1000LL, &o->tolerance_ms, err, errlen) != 0)
        return -1;
    if (rte_config_int_try(cfg, "wh.max_body", 8 * MIB, 1024, 256 * MIB, &v, err, errlen) != 0)
        return -1;
    o->max_body = (size_t)v;
    if (rte_config_int_try(cfg, "wh.max_results", 10000, 1, 1000000, &v, err, errlen) != 0)
        return -1;
    o->max_results = (int)v;
    if (rte_config_duration_try(cfg, "wh.replay_ttl", 24 * 3600 * 1000LL, 60 * 1000,
                                30 * 24 * 3600 * 1000LL, &o->replay_ttl_ms, err, errlen) != 0)
        return -1;
    if (rte_config_int_try(cfg, "wh.workers", 4, 1, 256, &v, err, errlen) != 0)
        return -1;
    o->workers = (int)v;
    if (rte_config_int_try(cfg, "wh.queue_max", 256, 1, 100000, &v, err, errlen) != 0)
        return -1;
    o->queue_max = (int)v;
    if (rte_config_duration_try(cfg, "wh.produce_timeout", 10000, 100, 120000, &v, err, errlen) !=
        0)
        return -1;
    o->produce_timeout_ms = (int)v;
    if (rte_config_int_try(cfg, "wh.chunk_bytes", 512 * 1024, 4096, 64 * MIB, &v, err, errlen) != 0)
        return -1;
    o->chunk_bytes = (size_t)v;
    if (rte_config_duration_try(cfg, "wh.stats_ttl", 7 * 24 * 3600 * 1000LL, 60 * 1000,
                                90 * 24 * 3600 * 1000LL, &o->stats_ttl_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "wh.redis_wait", 20000, 0, 120000, &o->redis_wait_ms, err,
                                errlen) != 0)
        return -1;
    if (rte_config_int_try(cfg, "wh.writers", 4, 0, 64, &v, err, errlen) != 0)
        return -1;
    o->writers = (int)v;
    o->poll_enabled = rte_config_bool(cfg, "wh.poll.enabled", 1);
    if (rte_config_duration_try(cfg, "wh.poll.interval", 5000, 10, 3600 * 1000LL,
                                &o->poll_interval_ms, err, errlen) != 0)
        return -1;
    if (rte_config_int_try(cfg, "wh.poll.page_size", 100, 1, 200, &v, err, errlen) != 0)
        return -1;
    o->poll_page_size = (int)v;
    if (rte_config_int_try(cfg, "wh.poll.max_batches", 16, 1, 1000, &v, err, errlen) != 0)
        return -1;
    o->poll_max_batches = (int)v;
    if (rte_cache_settings_from_config(cfg, &o->cache, err, errlen) != 0 ||
        rte_batch_registry_opts_from_config(cfg, &o->registry, err, errlen) != 0)
        return -1;
    return 0;
}

/* wh_metrics_init - start-up thread */
void wh_metrics_init(void)
{
    static const char *const result[] = {"result", NULL};
    static const char *const sig[] = {"scheme", "reason", NULL};
    static const char *const scheme[] = {"scheme", NULL};
    static const char *const kind[] = {"kind", NULL};
    static const char *const kind_outcome[] = {"kind", "outcome", NULL};
    static const char *const reason[] = {"reason", NULL};
    static const char *const outcome[] = {"outcome", NULL};
    static const char *const state[] = {"state", NULL};
    WM.callbacks = rte_counter_new("rte_wh_callbacks_total", "batch callbacks by result", result);
    WM.sig_failures = rte_counter_new("rte_wh_signature_failures_total",
                                      "callbacks refused for their signature", sig);
    WM.replays =
        rte_counter_new("rte_wh_replays_total",
                        "callbacks whose delivery id was seen before (answered 200)", scheme);
    WM.produce = rte_histogram_new("rte_wh_produce_duration_seconds",
                                   "synchronous produce to rte.stedi.batch-results", kind, NULL, 0);
    WM.ack = rte_histogram_new("rte_wh_callback_ack_seconds",
                               "from a callback's arrival to its answer", NULL, NULL, 0);
    WM.queue = rte_gauge_new("rte_wh_callback_queue_depth", "callbacks waiting for a worker", NULL);
    WM.messages =
        rte_counter_new("rte_wh_messages_total",
                        "batch-results messages consumed by kind and outcome", kind_outcome);
    WM.written =
        rte_counter_new("rte_wh_results_written_total", "results written to the cache", kind);
    WM.kept = rte_counter_new("rte_wh_results_kept_newer_total",
                              "results not written because the cache held a newer entry", NULL);
    WM.failed =
        rte_counter_new("rte_wh_results_failed_total", "results not cached, by reason", reason);
    WM.apply =
        rte_histogram_new("rte_wh_apply_duration_seconds",
                          "writing one consumed message's results to the cache", kind, NULL, 0);
    WM.events = rte_counter_new("rte_wh_events_total", "cache_warming_events emitted", result);
    WM.polled = rte_counter_new("rte_wh_batches_polled_total",
                                "registered batches checked, by outcome", outcome);
    WM.pages = rte_counter_new("rte_wh_poll_pages_total", "poll pages produced", NULL);
    WM.poll_items = rte_counter_new("rte_wh_poll_items_total", "polled items produced", NULL);
    WM.backlog =
        rte_gauge_new("rte_wh_backlog_batches",
                      "registered batches still being polled (pending) and due now (due)", state);
}

/* wh_count - any thread */
void wh_count(rte_metric *m, const char *l1, const char *l2)
{
    const char *lv[] = {l1, l2, NULL};
    if (l1 == NULL)
        rte_series_inc(rte_metric_series0(m));
    else
        rte_counter_inc(m, lv);
}

/* wh_produce - synchronous acks=all produce, timed by kind; any thread */
int wh_produce(const char *topic, const char *kind, const char *key, const char *msg, size_t len,
               char *err, size_t errlen)
{
    rte_kafka_producer *p = rte_service_producer();
    if (p == NULL) {
        snprintf(err, errlen, "no Kafka producer");
        return -1;
    }
    const rte_kafka_header h[] = {{"rte-kind", kind, strlen(kind)}};
    int64_t t0 = rte_clock_mono_ms();
    int rc = rte_kafka_produce_sync(p, topic, key, strlen(key), msg, len, h, 1,
                                    WH.produce_timeout_ms, err, errlen);
    const char *lv[] = {kind, NULL};
    rte_histogram_observe(WM.produce, lv, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    return rc;
}
