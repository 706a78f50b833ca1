/*
 * skeleton-probe - the smallest real service built on the skeleton.
 *
 * Integration tests start it to check what every service gets for free:
 * admin endpoints, readiness that follows Redis and Kafka, gRPC health,
 * a consumer with at-least-once delivery and a DLQ, a timer, deferred HTTP
 * responses and draining on SIGTERM.
 *
 *   consumes  $PROBE_TOPIC (default probe.in): RPUSH the payload onto the
 *             Redis list probe:seen; a payload containing POISON goes to the
 *             DLQ; PROBE_HANDLER_MS delays each message (to kill mid-way)
 *   serves    GET /v1/echo?msg=  -> {"msg": ...}
 *             GET /v1/slow?ms=N  -> answered from another thread after N ms
 *   timers    tick every 100 ms (simulated) -> probe_ticks_total
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rte/log.h"
#include "rte/metrics.h"
#include "rte/service.h"

static int handler_ms;
static rte_metric *ticks;

static int on_message(const rte_kafka_msg *msg, void *arg, char *reason, size_t len)
{
    (void)arg;
    if (memmem(msg->payload, msg->len, "POISON", 6) != NULL) {
        snprintf(reason, len, "payload contains POISON");
        return RTE_KAFKA_POISON;
    }
    if (handler_ms > 0)
        usleep((useconds_t)handler_ms * 1000);
    char err[256];
    redisReply *r = rte_redis_cmd(rte_service_redis(), err, sizeof err, "RPUSH probe:seen %b",
                                  msg->payload, msg->len);
    if (r == NULL) {
        snprintf(reason, len, "%s", err);
        return RTE_KAFKA_RETRY;
    }
    freeReplyObject(r);
    return RTE_KAFKA_OK;
}

static void h_echo(rte_http_req *req, void *arg)
{
    (void)arg;
    char msg[256], err[160];
    if (rte_http_req_query(req, "msg", msg, sizeof msg, err, sizeof err) < 0) {
        rte_http_error(req, 400, "%s", err);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "msg", msg);
    rte_http_respond_json(req, 200, doc);
    cJSON_Delete(doc);
}

struct slow {
    rte_http_req *req;
    long ms;
};

static void *slow_main(void *arg)
{
    struct slow *s = arg;
    usleep((useconds_t)s->ms * 1000);
    static const char body[] = "{\"slow\":\"done\"}";
    rte_http_respond(s->req, 200, "application/json", body, sizeof body - 1);
    free(s);
    return NULL;
}

static void h_slow(rte_http_req *req, void *arg)
{
    (void)arg;
    char v[16];
    char *end = v;
    long ms = rte_http_req_query(req, "ms", v, sizeof v, NULL, 0) > 0 ? strtol(v, &end, 10) : -1;
    if (ms < 0 || ms > 60000 || *end != '\0') {
        rte_http_error(req, 400, "query parameter 'ms' must be an integer in [0, 60000]");
        return;
    }
    struct slow *s = malloc(sizeof *s);
    s->req = req;
    s->ms = ms;
    rte_http_defer(req);
    pthread_t t;
    pthread_create(&t, NULL, slow_main, s);
    pthread_detach(t);
}

static void tick(void *arg)
{
    (void)arg;
    rte_series_inc(rte_metric_series0(ticks));
}

static int init(const rte_config *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    handler_ms = (int)rte_config_int(cfg, "probe.handler_ms", 0, 0, 600000);
    ticks = rte_counter_new("probe_ticks_total", "timer ticks of the skeleton probe", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    const char *topic = getenv("PROBE_TOPIC");
    rte_consumer_decl consumers[] = {{topic ? topic : "probe.in", on_message, NULL, NULL}, {NULL}};
    static const rte_http_route routes[] = {
        {"GET", "/v1/echo", h_echo, NULL, 0, "echo"},
        {"GET", "/v1/slow", h_slow, NULL, 0, "slow"},
        {NULL},
    };
    static const rte_timer_decl timers[] = {{"tick", 100, tick, NULL}, {NULL}};
    rte_service_def def = {
        .name = "skeleton-probe",
        .needs = RTE_NEEDS_REDIS | RTE_NEEDS_KAFKA,
        .init = init,
        .consumers = consumers,
        .routes = routes,
        .timers = timers,
    };
    return rte_service_main(&def, argc, argv);
}
