/*
 * gw_init.c - the gateway's start-up, shutdown and timers (see gw_init.h).
 */
#include "gw_init.h"
#include "rte/clock.h"

#include <stdio.h>
#include <string.h>

#include "gw.h"
#include "gw_core.h"
#include "gw_events.h"
#include "rte/log.h"

gw_state G;

static const char *const result_labels[GW_R_N] = {"hit", "miss", "stale", "error"};

static void register_metrics(void)
{
    static const double age_buckets[] = {60,        300,       900,       3600,
                                         3 * 3600,  6 * 3600,  12 * 3600, 22 * 3600,
                                         24 * 3600, 48 * 3600, 72 * 3600};
    static const double fast_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                          5,      10,    20,     30,    60,   120};
    int nfast = (int)(sizeof fast_buckets / sizeof fast_buckets[0]);
    rte_metric *req = rte_counter_new("rte_cache_control_requests_total",
                                      "eligibility requests by cache-control mode and result",
                                      (const char *const[]){"mode", "result", NULL});
    rte_metric *dur = rte_histogram_new("rte_cache_control_duration_seconds",
                                        "request duration by cache-control mode",
                                        (const char *const[]){"mode", NULL}, fast_buckets, nfast);
    rte_metric *resp = rte_histogram_new("rte_response_duration_seconds",
                                         "request duration by cache result (hit, miss, stale, "
                                         "error)",
                                         (const char *const[]){"cache", NULL}, fast_buckets, nfast);
    for (int m = 0; m < GW_MODE_N; m++) {
        for (int r = 0; r < GW_R_N; r++)
            G.m.requests[m][r] =
                rte_metric_labels(req, (const char *const[]){gw_mode_label(m), result_labels[r]});
        G.m.mode_duration[m] = rte_metric_labels(dur, (const char *const[]){gw_mode_label(m)});
    }
    for (int r = 0; r < GW_R_N; r++)
        G.m.response[r] = rte_metric_labels(resp, (const char *const[]){result_labels[r]});
    G.m.hit = rte_metric_series0(
        rte_counter_new("rte_cache_hit_total", "requests answered from the cache", NULL));
    G.m.miss = rte_metric_series0(
        rte_counter_new("rte_cache_miss_total", "requests that needed a Stedi call", NULL));
    G.m.age = rte_metric_series0(rte_histogram_new(
        "rte_cache_age_seconds", "age of the cached entries served", NULL, age_buckets, 11));
    G.m.degraded = rte_counter_new("rte_gateway_degraded_total",
                                   "operations done without Redis (cache_read, cache_write, lock, "
                                   "async_store)",
                                   (const char *const[]){"reason", NULL});
    G.m.flights = rte_counter_new("rte_gateway_singleflight_total",
                                  "misses that led a Stedi flight or joined a running one",
                                  (const char *const[]){"role", NULL});
    G.m.lock = rte_counter_new("rte_gateway_lock_total",
                               "cluster-wide fetch lock: acquired, or waited for another replica",
                               (const char *const[]){"result", NULL});
    G.m.refresh =
        rte_counter_new("rte_gateway_refresh_total", "background refreshes (swr, xfetch) by result",
                        (const char *const[]){"trigger", "result", NULL});
    G.m.async = rte_counter_new("rte_gateway_async_total",
                                "requests answered 202 (prefer = respond-async, deadline = "
                                "Prefer: wait passed)",
                                (const char *const[]){"trigger", NULL});
    rte_metric *l1 = rte_counter_new("rte_gateway_l1_total", "in-process L1 cache lookups",
                                     (const char *const[]){"result", NULL});
    G.m.l1_hit = rte_metric_labels(l1, (const char *const[]){"hit"});
    G.m.l1_miss = rte_metric_labels(l1, (const char *const[]){"miss"});
    G.m.l1_inval = rte_metric_series0(
        rte_counter_new("rte_gateway_l1_invalidations_total",
                        "cache writes announced by Redis pub/sub that dropped an L1 copy", NULL));
    G.m.l1_subscribed = rte_metric_series0(rte_gauge_new(
        "rte_gateway_l1_subscribed",
        "1 while the L1 receives invalidations (long L1 ttl), 0 while it falls back to <= 1 s",
        NULL));
    rte_metric *events =
        rte_counter_new("rte_gateway_events_total",
                        "events for rte.events: queued, or dropped (producer queue full)",
                        (const char *const[]){"result", NULL});
    G.m.events_queued = rte_metric_labels(events, (const char *const[]){"queued"});
    G.m.events_dropped = rte_metric_labels(events, (const char *const[]){"dropped"});
    rte_metric *access = rte_counter_new(
        "rte_gateway_access_total",
        "answered requests by how their rte.access was sent: tallied (one event per member, "
        "trading partner, result and mode per gateway.access_window) or alone (an event of its "
        "own: tallies off or full)",
        (const char *const[]){"sent", NULL});
    G.m.access_tallied = rte_metric_labels(access, (const char *const[]){"tallied"});
    G.m.access_alone = rte_metric_labels(access, (const char *const[]){"alone"});
    G.m.queue_depth = rte_metric_series0(
        rte_gauge_new("rte_gateway_queue_depth", "requests waiting for a worker", NULL));
}

static void read_conf(const rte_config *cfg, gw_conf *c)
{
    c->workers = (int)rte_config_int(cfg, "gateway.workers", 32, 1, 256);
    c->queue_max = (int)rte_config_int(cfg, "gateway.queue_max", 10000, 1, 1000000);
    c->deadline_ms = rte_config_duration_ms(cfg, "gateway.deadline", 15000, 10, 600000);
    c->fetch_timeout_ms = rte_config_duration_ms(cfg, "gateway.fetch_timeout", 20000, 100, 600000);
    c->lock_ttl_ms =
        rte_config_duration_ms(cfg, "gateway.lock_ttl", c->fetch_timeout_ms + 5000, 100, 900000);
    c->lock_poll_ms = rte_config_duration_ms(cfg, "gateway.lock_poll", 20, 2, 5000);
    c->async_ttl_ms = rte_config_duration_ms(cfg, "gateway.async_ttl", 600000, 1000, 86400000);
    c->fail_hold_ms = rte_config_duration_ms(cfg, "gateway.fail_hold", 2000, 10, 600000);
    c->l1_entries = rte_config_int(cfg, "gateway.l1_entries", 100000, 0, 10000000);
    c->l1_ttl_ms = rte_config_duration_ms(cfg, "gateway.l1_ttl", 1000, 1, 1000);
    c->l1_ttl_subscribed_ms =
        rte_config_duration_ms(cfg, "gateway.l1_ttl_subscribed", 60000, 1, 3600000);
    c->xfetch_beta = rte_config_double(cfg, "gateway.xfetch_beta", 1.0, 0.0, 100.0);
    c->xfetch_delta_ms = rte_config_duration_ms(cfg, "gateway.xfetch_delta", 4000, 0, 3600000);
    c->member_dir = rte_config_str(cfg, "gateway.member_dir", "");
    c->access_window_ms = rte_config_duration_ms(cfg, "gateway.access_window", 1000, 0, 60000);
    c->access_tallies = (int)rte_config_int(cfg, "gateway.access_tallies", 16384, 1, 4000000);
}

/* read and cross-check the gateway.* keys into *c; -1 + err naming the key */
static int check_conf(const rte_config *cfg, gw_conf *c, char *err, size_t errlen)
{
    read_conf(cfg, c);
    if (c->lock_ttl_ms <= c->fetch_timeout_ms) {
        snprintf(err, errlen,
                 "gateway.lock_ttl (RTE_GATEWAY_LOCK_TTL) must exceed gateway.fetch_timeout");
        return -1;
    }
    return 0;
}

/* gw_check_config - main thread; builds nothing */
int gw_check_config(const rte_config *cfg, char *err, size_t errlen)
{
    gw_conf c;
    char why[300];

    /* rte_stedi_check_config covers cache.* too */
    if (check_conf(cfg, &c, err, errlen) != 0 || rte_stedi_check_config(cfg, err, errlen) != 0)
        return -1;
    if (c.member_dir[0] != '\0' && rte_member_dir_check_source(c.member_dir, why, sizeof why)) {
        snprintf(err, errlen, "gateway.member_dir (RTE_GATEWAY_MEMBER_DIR) %s", why);
        return -1;
    }
    return 0;
}

/* Invalidation subscriber thread: a cache write somewhere in the suite. */
static void on_cache_written(void *arg, const char *channel, const char *key, size_t len)
{
    (void)arg, (void)channel, (void)len;
    gw_l1_drop(G.l1, key, rte_clock_mono_ms());
    rte_series_inc(G.m.l1_inval);
}

/* Subscriber thread: long L1 life only while no invalidation can be missed. */
static void on_subscription(void *arg, int subscribed)
{
    (void)arg;
    gw_l1_clear(G.l1, rte_clock_mono_ms());
    gw_l1_set_ttl(G.l1, subscribed ? G.conf.l1_ttl_subscribed_ms : G.conf.l1_ttl_ms);
    rte_series_set(G.m.l1_subscribed, subscribed);
}

static int start_invalidations(const rte_config *cfg, char *err, size_t errlen)
{
    char serr[256];

    if (G.l1 == NULL)
        return 0;
    G.invalidations = rte_redis_subscribe(rte_config_str(cfg, "redis.url", rte_redis_default_url()),
                                          1000, RTE_CACHE_WRITTEN_CHANNEL, on_cache_written,
                                          on_subscription, NULL, serr, sizeof serr);
    if (G.invalidations == NULL) {
        snprintf(err, errlen, "redis.url (RTE_REDIS_URL): %s", serr);
        return -1;
    }
    return 0;
}

/* gw_init - main thread, before serving */
int gw_init(const rte_config *cfg, char *err, size_t errlen)
{
    memset(&G, 0, sizeof G);
    if (check_conf(cfg, &G.conf, err, errlen) != 0)
        return -1;
    if (rte_cache_settings_from_config(cfg, &G.cache, err, errlen) != 0)
        return -1;
    atomic_store(&G.delta_ms, G.conf.xfetch_delta_ms);
    register_metrics();
    G.stedi = rte_stedi_from_config(cfg, err, errlen);
    if (G.stedi == NULL)
        return -1;
    if (G.conf.l1_entries > 0) {
        G.l1 = gw_l1_new((size_t)G.conf.l1_entries, G.conf.l1_ttl_ms);
        if (G.l1 == NULL) {
            snprintf(err, errlen, "gateway.l1_entries (RTE_GATEWAY_L1_ENTRIES): out of memory");
            goto fail;
        }
    }
    if (G.conf.member_dir[0] != '\0') {
        char derr[300];
        G.dir = rte_member_dir_new(G.conf.member_dir, derr, sizeof derr);
        if (G.dir == NULL) {
            snprintf(err, errlen, "gateway.member_dir (RTE_GATEWAY_MEMBER_DIR) '%s': %s",
                     G.conf.member_dir, derr);
            goto fail;
        }
    } else {
        rte_log_warn("gateway.member_dir is not set: GET /v1/eligibility/{member_id} answers 404; "
                     "use POST /v1/eligibility/check with inline details");
    }
    if (start_invalidations(cfg, err, errlen) != 0)
        goto fail;
    if (gw_events_start(G.conf.access_window_ms, G.conf.access_tallies, err, errlen) != 0)
        goto fail;
    if (gw_core_start(err, errlen) != 0)
        goto fail;
    rte_log_info("cache-gateway: %d workers, L1 %zu entries / %lld ms, deadline %lld ms, fetch "
                 "timeout %lld ms",
                 G.conf.workers, gw_l1_capacity(G.l1), (long long)G.conf.l1_ttl_ms,
                 (long long)G.conf.deadline_ms, (long long)G.conf.fetch_timeout_ms);
    return 0;
fail:
    gw_core_stop();
    gw_events_stop();
    rte_redis_sub_free(G.invalidations);
    rte_member_dir_free(G.dir);
    gw_l1_free(G.l1);
    rte_stedi_free(G.stedi);
    memset(&G, 0, sizeof G);
    return -1;
}

/* gw_shutdown - main thread, after draining */
void gw_shutdown(void)
{
    gw_core_stop();
    gw_events_stop(); /* after the last answer: its access is in a tally */
    rte_redis_sub_free(G.invalidations);
    G.invalidations = NULL;
    if (G.dir != NULL)
        rte_member_dir_free(G.dir);
    gw_l1_free(G.l1);
    rte_stedi_free(G.stedi);
    G.dir = NULL;
    G.l1 = NULL;
    G.stedi = NULL;
}

/* gw_reload_directory - timer thread */
void gw_reload_directory(void *arg)
{
    char err[300];
    (void)arg;
    if (G.dir != NULL && rte_member_dir_reload_if_changed(G.dir, err, sizeof err) < 0)
        rte_log_warn("member directory reload failed (%s); keeping the loaded one", err);
}
