/*
 * stedi-sim - an in-memory stand-in for Stedi's eligibility APIs.
 *
 * Serves Stedi's published paths and shapes so the suite can run without
 * the internet. Stedi has two hosts: the healthcare API (real-time checks,
 * sim_realtime.c) and the manager API (batch submit, status, items and
 * polling, sim_batch.c). Both are served on the public port (http.addr)
 * unless the manager API gets its own listener (--manager-port N or
 * sim.manager_addr): then each port answers only its own API's paths (404
 * for the other's), and the manager port is published in the ports file as
 * "manager". GET /_sim/stats and POST /_sim/reset (test controls, no
 * authorization) are on both. The admin port has the skeleton's /metrics,
 * /healthz, /readyz. Needs neither Redis nor Kafka. All state is in memory
 * and lost on exit.
 *
 *   key                        RTE_* variable                 default
 *   sim.api_key                RTE_SIM_API_KEY                test-key
 *   sim.latency_p50            RTE_SIM_LATENCY_P50            4s
 *   sim.latency_p95            RTE_SIM_LATENCY_P95            12s
 *   sim.latency_max            RTE_SIM_LATENCY_MAX            120s
 *   sim.max_concurrent         RTE_SIM_MAX_CONCURRENT         15
 *   sim.error_rate             RTE_SIM_ERROR_RATE             0
 *   sim.downtime               RTE_SIM_DOWNTIME               (none)
 *   sim.unknown_payers         RTE_SIM_UNKNOWN_PAYERS         FOO
 *   sim.manager_addr           RTE_SIM_MANAGER_ADDR           (none: the manager API on http.addr)
 *   sim.batch_min_delay        RTE_SIM_BATCH_MIN_DELAY        1m
 *   sim.batch_max_delay        RTE_SIM_BATCH_MAX_DELAY        15m
 *   sim.callback_secret        RTE_SIM_CALLBACK_SECRET        whsec-test
 *   sim.callback_max_attempts  RTE_SIM_CALLBACK_MAX_ATTEMPTS  10
 *
 * docs/stedi-sim.md says what each means. A bad value is fatal at start-up
 * and names the key (config.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
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

/* the APIs each listener serves: routes point at these masks (sim_serves) */
static int main_apis = SIM_API_HEALTHCARE | SIM_API_MANAGER;
static int manager_apis = SIM_API_MANAGER;

static void sim_h_stats(rte_http_req *req, void *arg);
static void sim_h_reset(rte_http_req *req, void *arg);

/* the manager API's own listener (--manager-port / sim.manager_addr) */
static struct {
    long cli_port; /* --manager-port N; -1 = not given */
    rte_http_server *server;
    pthread_t thread;
} M = {.cli_port = -1};

static const rte_http_route manager_routes[] = {
    {"POST", "/2024-04-01/eligibility-manager/batch-eligibility", sim_h_batch_submit, &manager_apis,
     64u << 20, "batch_submit"},
    {"GET", "/2024-04-01/eligibility-manager/batch/*", sim_h_batch_get, &manager_apis, 0,
     "batch_get"},
    {"GET", "/2024-04-01/eligibility-manager/polling/batch-eligibility", sim_h_poll, &manager_apis,
     0, "poll"},
    {"GET", "/_sim/stats", sim_h_stats, NULL, 0, "sim_stats"},
    {"POST", "/_sim/reset", sim_h_reset, NULL, 0, "sim_reset"},
    {NULL, "/*", sim_h_not_found, NULL, 0, "not_found"},
    {NULL},
};

static void *manager_main(void *arg)
{
    rte_http_server_run(arg);
    return NULL;
}

/* the manager API's address: --manager-port on http.addr's host, else sim.manager_addr */
static const char *manager_addr(const rte_config *cfg, char *buf, size_t len)
{
    if (M.cli_port < 0)
        return rte_config_str(cfg, "sim.manager_addr", "");
    const char *http = rte_config_str(cfg, "http.addr", "0.0.0.0:8080");
    const char *colon = strrchr(http, ':');
    int host = colon != NULL ? (int)(colon - http) : 0;
    snprintf(buf, len, "%.*s:%ld", host, http, M.cli_port);
    return buf;
}

static int start_manager(const rte_config *cfg, char *err, size_t errlen)
{
    char buf[300];
    const char *addr = manager_addr(cfg, buf, sizeof buf);
    if (addr[0] == '\0')
        return 0;
    M.server = rte_http_server_new(err, errlen);
    if (M.server == NULL)
        return -1;
    int port = rte_http_server_listen(M.server, addr, manager_routes, err, errlen);
    if (port < 0)
        rte_fatal("sim.manager_addr (RTE_SIM_MANAGER_ADDR, --manager-port) = '%s': %s", addr, err);
    if (pthread_create(&M.thread, NULL, manager_main, M.server) != 0) {
        snprintf(err, errlen, "stedi-sim: cannot start the manager API's loop");
        return -1;
    }
    main_apis = SIM_API_HEALTHCARE;
    rte_service_publish_port("manager", port);
    rte_log_info("manager API on its own port %d; the main port serves the healthcare API only",
                 port);
    return 0;
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
    sim_conf.unknown_payers = rte_config_str(cfg, "sim.unknown_payers", "FOO");
    sim_conf.batch_min_delay_ms =
        rte_config_duration_ms(cfg, "sim.batch_min_delay", 60000, 0, 7 * 86400000LL);
    sim_conf.batch_max_delay_ms =
        rte_config_duration_ms(cfg, "sim.batch_max_delay", 900000, 0, 7 * 86400000LL);
    if (sim_conf.batch_max_delay_ms < sim_conf.batch_min_delay_ms)
        rte_fatal("sim.batch_max_delay (RTE_SIM_BATCH_MAX_DELAY) must be >= sim.batch_min_delay");
    sim_conf.callback_secret = rte_config_str(cfg, "sim.callback_secret", "whsec-test");
    sim_conf.callback_max_attempts =
        (int)rte_config_int(cfg, "sim.callback_max_attempts", 10, 1, 1000);
    if (sim_realtime_start(err, errlen) != 0 || sim_batch_start(err, errlen) != 0 ||
        start_manager(cfg, err, errlen) != 0)
        return -1;
    return 0;
}

static void shutdown_sim(void)
{
    if (M.server != NULL) {
        rte_http_server_stop(M.server, 5000);
        pthread_join(M.thread, NULL);
        rte_http_server_free(M.server);
        M.server = NULL;
    }
    sim_batch_stop();
    sim_realtime_stop();
}

/* GET /_sim/stats; a loop thread */
static void sim_h_stats(rte_http_req *req, void *arg)
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

/* POST /_sim/reset: counters to zero (in_flight is a gauge and stays, max_in_flight
 * restarts from it); a loop thread */
static void sim_h_reset(rte_http_req *req, void *arg)
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

/* take --manager-port N out of argv (the skeleton parses the rest); -1 on a bad value */
static int take_manager_port(int *argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--manager-port") != 0) {
            argv[out++] = argv[i];
            continue;
        }
        char *end = NULL;
        if (i + 1 < *argc)
            M.cli_port = strtol(argv[i + 1], &end, 10);
        if (end == NULL || end == argv[i + 1] || *end != '\0' || M.cli_port < 0 ||
            M.cli_port > 65535) {
            fprintf(stderr, "%s: --manager-port wants a port number 0..65535 (0 = any free)\n",
                    argv[0]);
            return -1;
        }
        i++;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    static const rte_http_route routes[] = {
        {"POST", "/2024-04-01/change/medicalnetwork/eligibility/v3", sim_h_realtime, &main_apis, 0,
         "realtime"},
        {"POST", "/2024-04-01/eligibility-manager/batch-eligibility", sim_h_batch_submit,
         &main_apis, 64u << 20, "batch_submit"},
        {"GET", "/2024-04-01/eligibility-manager/batch/*", sim_h_batch_get, &main_apis, 0,
         "batch_get"},
        {"GET", "/2024-04-01/eligibility-manager/polling/batch-eligibility", sim_h_poll, &main_apis,
         0, "poll"},
        {"GET", "/_sim/stats", sim_h_stats, NULL, 0, "sim_stats"},
        {"POST", "/_sim/reset", sim_h_reset, NULL, 0, "sim_reset"},
        {NULL, "/*", sim_h_not_found, NULL, 0, "not_found"},
        {NULL},
    };
    rte_service_def def = {
        .name = "stedi-sim",
        .needs = 0,
        .init = init,
        .shutdown = shutdown_sim,
        .routes = routes,
    };
    if (take_manager_port(&argc, argv) != 0)
        return 2;
    return rte_service_main(&def, argc, argv);
}
