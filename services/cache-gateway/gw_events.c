/*
 * gw_events.c - JSON events on rte.events (contract in gw_events.h).
 *
 * Events are written with rte_jsonw into a stack buffer (no allocation;
 * access events happen on every request) and produced batched: on an HTTP
 * loop they go to librdkafka once per loop turn (rte_kafka_produce_batched),
 * elsewhere one by one. Every string is escaped, even
 * the validated ids, since cache entries can come from any writer.
 */
#include "gw_events.h"

#include <stdio.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/crypto.h"
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
    rte_jsonw w;
    int n;

    begin_event(&w, buf, sizeof buf, type, member_key, tp, rte_clock_now_ms());
    rte_jsonw_str(&w, "trigger", trigger ? trigger : "request");
    if (request_id != NULL && request_id[0] != '\0')
        rte_jsonw_str(&w, "request_id", request_id);
    if (latency_ms >= 0)
        rte_jsonw_int(&w, "latency_ms", latency_ms);
    if (outcome != NULL)
        rte_jsonw_str(&w, "outcome", outcome);
    if (detail != NULL && detail[0] != '\0')
        rte_jsonw_str(&w, "detail", detail);
    rte_jsonw_end(&w);
    n = rte_jsonw_done(&w);
    if (n < 0) {
        rte_series_inc(G.m.events_dropped);
        rte_log_warn("rte.events: %s event exceeds %d bytes; dropped", type, GW_EVENT_MAX);
        return;
    }
    produce(member_key, buf, (size_t)n);
}

/* gw_event_access - any thread; no allocation */
void gw_event_access(const gw_req *r, enum gw_result result, const rte_cache_entry *e,
                     int64_t latency_ms)
{
    char buf[GW_EVENT_MAX];
    rte_jsonw w;
    int n;
    int64_t now = rte_clock_now_ms();

    begin_event(&w, buf, sizeof buf, "rte.access", r->member_key, r->tp, now);
    rte_jsonw_str(&w, "result", result_names[result]);
    rte_jsonw_str(&w, "mode", gw_mode_name(r->pol.mode));
    rte_jsonw_int(&w, "latency_ms", latency_ms);
    rte_jsonw_str(&w, "request_id", r->request_id);
    if (e != NULL) {
        rte_jsonw_str(&w, "entry_source", e->source);
        rte_jsonw_int(&w, "age_seconds", rte_cache_entry_age_s(e, now));
    }
    rte_jsonw_end(&w);
    n = rte_jsonw_done(&w);
    if (n < 0) {
        rte_series_inc(G.m.events_dropped);
        return;
    }
    produce(r->member_key, buf, (size_t)n);
}
