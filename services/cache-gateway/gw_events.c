/*
 * gw_events.c - JSON events on rte.events (contract in gw_events.h).
 *
 * Events are written with rte_jsonw into a stack buffer (no allocation)
 * and produced batched: on an HTTP loop they go to librdkafka once per loop
 * turn (rte_kafka_produce_batched), from the tally flusher once per window,
 * elsewhere one by one. An answered request only joins its access tally
 * (gw_access.c); the flusher thread below turns each window's tallies into
 * events. Every string is escaped, even the validated ids, since cache
 * entries can come from any writer.
 */
#include "gw_events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gw_access.h"
#include "rte/clock.h"
#include "rte/cpu.h"
#include "rte/crypto.h"
#include "rte/events.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/topics.h"

static const char *const result_names[GW_R_N] = {"hit", "miss", "stale", "error"};

static void produce(const char *member_key, const char *json, size_t len)
{
    rte_kafka_producer *p = rte_service_producer();
    char err[256];

    if (p == NULL)
        return;
    /* on an HTTP loop this joins the turn's batch (one librdkafka call per turn) */
    if (rte_kafka_produce_batched(p, RTE_TOPIC_RTE_EVENTS, member_key, strlen(member_key), json,
                                  len, err, sizeof err) != 0) {
        rte_series_inc(G.m.events_dropped);
        rte_log_debug("rte.events: event dropped: %s", err);
        return;
    }
    rte_series_inc(G.m.events_queued);
}

/* the fields every event starts with, into w over buf (the object is left open) */
static void begin_event(rte_jsonw *w, char *buf, size_t len, const char *type,
                        const char *member_key, const char *tp, int64_t now_ms)
{
    char id[37], ts[40];

    rte_uuid4(id);
    rte_clock_format(now_ms, ts, sizeof ts);
    rte_jsonw_init(w, buf, len);
    rte_jsonw_begin(w, NULL);
    rte_jsonw_str(w, "event_id", id);
    rte_jsonw_str(w, "type", type);
    rte_jsonw_str(w, "occurred_at", ts);
    rte_jsonw_str(w, "member_key", member_key);
    rte_jsonw_str(w, "trading_partner_id", tp);
    rte_jsonw_str(w, "source", "cache-gateway");
}

/* gw_event_lifecycle - any thread */
void gw_event_lifecycle(const char *type, const char *member_key, const char *tp,
                        const char *trigger, const char *request_id, int64_t latency_ms,
                        const char *outcome, const char *detail)
{
    char buf[GW_EVENT_MAX];
    rte_lifecycle_event e = {
        type,       member_key, tp,      "cache-gateway", trigger ? trigger : "request",
        request_id, latency_ms, outcome, detail,          rte_clock_now_ms()};
    int n = rte_lifecycle_event_json(&e, buf, sizeof buf);

    if (n < 0) {
        rte_series_inc(G.m.events_dropped);
        rte_log_warn("rte.events: %s event exceeds %d bytes; dropped", type, GW_EVENT_MAX);
        return;
    }
    produce(member_key, buf, (size_t)n);
}

/* one rte.access event for tally y (a single access is a tally of 1) */
static void emit_access(const gw_access_tally *y)
{
    char buf[GW_EVENT_MAX], first[40];
    rte_jsonw w;
    int n;

    begin_event(&w, buf, sizeof buf, "rte.access", y->member_key, y->tp, y->last_ms);
    rte_jsonw_str(&w, "result", result_names[y->result]);
    rte_jsonw_str(&w, "mode", gw_mode_name((enum gw_mode)y->mode));
    rte_jsonw_int(&w, "count", y->count);
    rte_clock_format(y->first_ms, first, sizeof first);
    rte_jsonw_str(&w, "first_at", first);
    rte_jsonw_int(&w, "latency_ms", y->latency_max_ms);
    rte_jsonw_int(&w, "latency_ms_sum", y->latency_sum_ms);
    rte_jsonw_str(&w, "request_id", y->request_id);
    if (y->entry_source[0] != '\0') {
        rte_jsonw_str(&w, "entry_source", y->entry_source);
        rte_jsonw_int(&w, "age_seconds", y->age_s);
    }
    rte_jsonw_end(&w);
    n = rte_jsonw_done(&w);
    if (n < 0) {
        rte_series_inc(G.m.events_dropped);
        return;
    }
    produce(y->member_key, buf, (size_t)n);
}

/* gw_event_access - any thread; no allocation */
void gw_event_access(const gw_req *r, enum gw_result result, const rte_cache_entry *e,
                     int64_t latency_ms)
{
    int64_t now = rte_clock_now_ms();
    gw_access a = {
        .member_key = r->member_key,
        .tp = r->tp,
        .request_id = r->request_id,
        .result = result,
        .mode = r->pol.mode,
        .now_ms = now,
        .latency_ms = latency_ms,
        .entry_source = e != NULL ? e->source : NULL,
        .age_s = e != NULL ? rte_cache_entry_age_s(e, now) : 0,
    };
    gw_access_tally one;

    if (G.access != NULL && gw_access_add(G.access, &a)) {
        rte_series_inc(G.m.access_tallied);
        return;
    }
    rte_series_inc(G.m.access_alone);
    gw_access_tally_one(&a, &one);
    emit_access(&one);
}

/* The tally flusher: drains G.access every window and on the way down. */
static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    int stop, running;
    int64_t window_ms;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_tally(const gw_access_tally *y, void *arg)
{
    (void)arg;
    emit_access(y);
}

static void *flusher_main(void *arg)
{
    int stop = 0;

    (void)arg;
    rte_kafka_batch_begin(); /* a drain's events go to librdkafka together */
    while (!stop) {
        struct timespec until = rte_clock_mono_timespec(rte_clock_mono_ms() + F.window_ms);

        pthread_mutex_lock(&F.mu);
        while (!F.stop && pthread_cond_timedwait(&F.wake, &F.mu, &until) != ETIMEDOUT)
            ;
        stop = F.stop;
        pthread_mutex_unlock(&F.mu);
        gw_access_drain(G.access, on_tally, NULL);
        rte_kafka_batch_flush();
    }
    rte_kafka_batch_end();
    return NULL;
}

/* gw_events_start - start-up thread */
int gw_events_start(int64_t window_ms, int tallies, char *err, size_t errlen)
{
    int nshards = rte_cpu_shards(64);
    int cap = tallies / nshards;

    if (window_ms <= 0)
        return 0; /* one event per access */
    G.access = gw_access_new(nshards, cap < 256 ? 256 : cap);
    if (G.access == NULL || rte_clock_cond_init(&F.wake) != 0) {
        snprintf(err, errlen, "gateway.access_tallies (RTE_GATEWAY_ACCESS_TALLIES): out of memory");
        gw_access_free(G.access);
        G.access = NULL;
        return -1;
    }
    F.window_ms = window_ms;
    F.stop = 0;
    if (pthread_create(&F.thread, NULL, flusher_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the access-event flusher thread");
        pthread_cond_destroy(&F.wake);
        gw_access_free(G.access);
        G.access = NULL;
        return -1;
    }
    F.running = 1;
    return 0;
}

/* gw_events_stop - shutdown thread, after the HTTP loops stopped: sends what is tallied */
void gw_events_stop(void)
{
    if (!F.running)
        return;
    pthread_mutex_lock(&F.mu);
    F.stop = 1;
    pthread_cond_signal(&F.wake);
    pthread_mutex_unlock(&F.mu);
    pthread_join(F.thread, NULL);
    F.running = 0;
    pthread_cond_destroy(&F.wake);
    gw_access_free(G.access);
    G.access = NULL;
}
