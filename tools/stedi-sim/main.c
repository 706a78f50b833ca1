/*
 * stedi-sim - an in-memory stand-in for the Stedi eligibility API.
 *
 * Serves, on the public port (http.addr), Stedi's real paths so the suite can
 * run without the internet: real-time checks with log-normal latency in
 * simulated time and a per-key concurrency limit (sim_realtime.c), batch
 * submission, status, item lists and poll-batch pages with an optional signed
 * completion callback (sim_batch.c), plus GET /_sim/stats and POST /_sim/reset.
 * The admin port has the skeleton's /metrics, /healthz, /readyz. Needs
 * neither Redis nor Kafka. All state is in memory and lost on exit.
 *
 *   key                        RTE_* variable                 default     meaning
 *   sim.api_key                RTE_SIM_API_KEY                test-key    Authorization must be the
 * key or "Key <key>" sim.latency_p50            RTE_SIM_LATENCY_P50            4s          median
 * real-time latency (simulated) sim.latency_p95            RTE_SIM_LATENCY_P95            12s 95th
 * percentile (>= p50) sim.latency_max            RTE_SIM_LATENCY_MAX            120s        cap on
 * a drawn latency sim.max_concurrent         RTE_SIM_MAX_CONCURRENT         15          real-time
 * calls in flight per key; more -> 429 sim.error_rate             RTE_SIM_ERROR_RATE             0
 * 0..1 share of payer errors (AAA 42, 502, 503) sim.downtime               RTE_SIM_DOWNTIME (none)
 * "payer@HH:MM-HH:MM,..." simulated UTC -> AAA 42 sim.batch_min_delay RTE_SIM_BATCH_MIN_DELAY 1m
 * earliest completion of a batch item (simulated) sim.batch_max_delay RTE_SIM_BATCH_MAX_DELAY 15m
 * latest completion of a batch item (simulated) sim.callback_secret        RTE_SIM_CALLBACK_SECRET
 * whsec-test  HMAC-SHA256 key of completion callbacks sim.callback_max_attempts
 * RTE_SIM_CALLBACK_MAX_ATTEMPTS  10          callback deliveries before giving up
 *
 * A bad value is fatal at start-up and names the key (config.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/log.h"
#include "rte/service.h"
#include "sim.h"

/* "payer@HH:MM-HH:MM" -> d; -1 if malformed */
static int parse_window(const char *s, size_t n, sim_downtime *d)
{
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *at = strrchr(buf, '@');
    if (at == NULL || at == buf || (size_t)(at - buf) >= sizeof d->payer)
        return -1;
    *at = '\0';
    int h1, m1, h2, m2, used = 0;
    if (sscanf(at + 1, "%2d:%2d-%2d:%2d%n", &h1, &m1, &h2, &m2, &used) != 4 ||
        at[1 + used] != '\0' || h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || h1 < 0 || h2 < 0 ||
        m1 < 0 || m2 < 0)
        return -1;
    memcpy(d->payer, buf, (size_t)(at - buf) + 1);
    d->start_min = h1 * 60 + m1;
    d->end_min = h2 * 60 + m2;
    return 0;
}

static void read_downtime(const rte_config *cfg)
{
    const char *v = rte_config_str(cfg, "sim.downtime", "");
    while (*v != '\0') {
        while (*v == ' ' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        while (n > 0 && v[n - 1] == ' ')
            n--;
        if (n == 0)
            break;
        if (sim_conf.ndowntime == SIM_MAX_DOWNTIME ||
            parse_window(v, n, &sim_conf.downtime[sim_conf.ndowntime]) != 0)
            rte_fatal("sim.downtime (RTE_SIM_DOWNTIME): bad window '%.*s' (want at most %d of "
                      "payer@HH:MM-HH:MM)",
                      (int)n, v, SIM_MAX_DOWNTIME);
        sim_conf.ndowntime++;
        v += strcspn(v, ",");
    }
}

static int init(const rte_config *cfg, char *err, size_t errlen)
{
    sim_conf.api_key = rte_config_str(cfg, "sim.api_key", "test-key");
    sim_conf.latency_p50_ms = rte_config_duration_ms(cfg, "sim.latency_p50", 4000, 0, 3600000);
    sim_conf.latency_p95_ms = rte_config_duration_ms(cfg, "sim.latency_p95", 12000, 0, 3600000);
    sim_conf.latency_max_ms = rte_config_duration_ms(cfg, "sim.latency_max", 120000, 0, 3600000);
    if (sim_conf.latency_p95_ms < sim_conf.latency_p50_ms)
        rte_fatal("sim.latency_p95 (RTE_SIM_LATENCY_P95) must be >= sim.latency_p50");
    sim_conf.max_concurrent = (int)rte_config_int(cfg, "sim.max_concurrent", 15, 1, 100000);
    sim_conf.error_rate = rte_config_double(cfg, "sim.error_rate", 0, 0, 1);
    read_downtime(cfg);
    sim_conf.batch_min_delay_ms =
        rte_config_duration_ms(cfg, "sim.batch_min_delay", 60000, 0, 7 * 86400000LL);
    sim_conf.batch_max_delay_ms =
        rte_config_duration_ms(cfg, "sim.batch_max_delay", 900000, 0, 7 * 86400000LL);
    if (sim_conf.batch_max_delay_ms < sim_conf.batch_min_delay_ms)
        rte_fatal("sim.batch_max_delay (RTE_SIM_BATCH_MAX_DELAY) must be >= sim.batch_min_delay");
    sim_conf.callback_secret = rte_config_str(cfg, "sim.callback_secret", "whsec-test");
    sim_conf.callback_max_attempts =
        (int)rte_config_int(cfg, "sim.callback_max_attempts", 10, 1, 1000);
    if (sim_realtime_start(err, errlen) != 0 || sim_batch_start(err, errlen) != 0)
        return -1;
    return 0;
}

static void shutdown_sim(void)
{
    sim_batch_stop();
    sim_realtime_stop();
}

static void h_stats(rte_http_req *req, void *arg)
{
    (void)arg;
    cJSON *d = cJSON_CreateObject();
    pthread_mutex_lock(&sim_st.mu);
    cJSON_AddNumberToObject(d, "realtime_calls", (double)sim_st.realtime_calls);
    cJSON_AddNumberToObject(d, "realtime_429", (double)sim_st.realtime_429);
    cJSON_AddNumberToObject(d, "realtime_errors", (double)sim_st.realtime_errors);
    cJSON_AddNumberToObject(d, "max_in_flight", (double)sim_st.max_in_flight);
    cJSON_AddNumberToObject(d, "in_flight", (double)sim_st.in_flight);
    cJSON_AddNumberToObject(d, "batches", (double)sim_st.batches);
    cJSON_AddNumberToObject(d, "batch_items", (double)sim_st.batch_items);
    cJSON_AddNumberToObject(d, "callbacks_sent", (double)sim_st.callbacks_sent);
    cJSON_AddNumberToObject(d, "callbacks_failed", (double)sim_st.callbacks_failed);
    pthread_mutex_unlock(&sim_st.mu);
    rte_http_respond_json(req, 200, d);
    cJSON_Delete(d);
}

/* counters go to zero; in_flight is a gauge and stays, max_in_flight restarts from it */
static void h_reset(rte_http_req *req, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sim_st.mu);
    sim_st.realtime_calls = sim_st.realtime_429 = sim_st.realtime_errors = 0;
    sim_st.max_in_flight = sim_st.in_flight;
    sim_st.batches = sim_st.batch_items = sim_st.callbacks_sent = sim_st.callbacks_failed = 0;
    pthread_mutex_unlock(&sim_st.mu);
    static const char ok[] = "{\"reset\":true}";
    rte_http_respond(req, 200, "application/json", ok, sizeof ok - 1);
}

int main(int argc, char **argv)
{
    static const rte_http_route routes[] = {
        {"POST", "/2024-04-01/change/medicalnetwork/eligibility/v3", sim_h_realtime, NULL, 0,
         "realtime"},
        {"POST", "/2024-04-01/eligibility-manager/batch-eligibility", sim_h_batch_submit, NULL,
         64u << 20, "batch_submit"},
        {"GET", "/2024-04-01/eligibility-manager/batch/*", sim_h_batch_get, NULL, 0, "batch_get"},
        {"GET", "/2025-04-25/healthcare/eligibility/poll-batch", sim_h_poll, NULL, 0, "poll"},
        {"GET", "/_sim/stats", h_stats, NULL, 0, "sim_stats"},
        {"POST", "/_sim/reset", h_reset, NULL, 0, "sim_reset"},
        {NULL},
    };
    rte_service_def def = {
        .name = "stedi-sim",
        .needs = 0,
        .init = init,
        .shutdown = shutdown_sim,
        .routes = routes,
    };
    return rte_service_main(&def, argc, argv);
}
