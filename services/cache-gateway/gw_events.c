/*
 * gw_events.c - JSON events on rte.events (contract in gw_events.h).
 *
 * Lifecycle events are rare (one per Stedi call step) and built with cJSON;
 * access events happen on every request, so they are formatted with one
 * snprintf into a stack buffer: their fields are validated ids, enum names
 * and numbers that need no escaping.
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
    if (rte_kafka_produce(p, RTE_TOPIC_RTE_EVENTS, member_key, strlen(member_key), json, len, NULL,
                          0, err, sizeof err) != 0) {
        rte_counter_inc(G.m.events, (const char *const[]){"dropped"});
        rte_log_debug("rte.events: event dropped: %s", err);
        return;
    }
    rte_counter_inc(G.m.events, (const char *const[]){"queued"});
}

/* gw_event_lifecycle - any thread */
void gw_event_lifecycle(const char *type, const char *member_key, const char *tp,
                        const char *trigger, const char *request_id, int64_t latency_ms,
                        const char *outcome, const char *detail)
{
    char id[37], ts[40];
    cJSON *doc = cJSON_CreateObject();
    char *text;

    rte_uuid4(id);
    rte_clock_format(rte_clock_now_ms(), ts, sizeof ts);
    cJSON_AddStringToObject(doc, "event_id", id);
    cJSON_AddStringToObject(doc, "type", type);
    cJSON_AddStringToObject(doc, "occurred_at", ts);
    cJSON_AddStringToObject(doc, "member_key", member_key);
    cJSON_AddStringToObject(doc, "trading_partner_id", tp);
    cJSON_AddStringToObject(doc, "source", "cache-gateway");
    cJSON_AddStringToObject(doc, "trigger", trigger ? trigger : "request");
    if (request_id != NULL && request_id[0] != '\0')
        cJSON_AddStringToObject(doc, "request_id", request_id);
    if (latency_ms >= 0)
        cJSON_AddNumberToObject(doc, "latency_ms", (double)latency_ms);
    if (outcome != NULL)
        cJSON_AddStringToObject(doc, "outcome", outcome);
    if (detail != NULL && detail[0] != '\0')
        cJSON_AddStringToObject(doc, "detail", detail);
    text = rte_json_print(doc);
    cJSON_Delete(doc);
    if (text == NULL)
        return;
    produce(member_key, text, strlen(text));
    cJSON_free(text);
}

/* gw_event_access - any thread; no allocation */
void gw_event_access(const gw_req *r, enum gw_result result, const rte_cache_entry *e,
                     int64_t latency_ms)
{
    char id[37], ts[40], buf[768];
    int n;

    rte_uuid4(id);
    rte_clock_format(rte_clock_now_ms(), ts, sizeof ts);
    n = snprintf(buf, sizeof buf,
                 "{\"event_id\":\"%s\",\"type\":\"rte.access\",\"occurred_at\":\"%s\","
                 "\"member_key\":\"%s\",\"trading_partner_id\":\"%s\",\"source\":\"cache-gateway\","
                 "\"result\":\"%s\",\"mode\":\"%s\",\"latency_ms\":%lld,\"request_id\":\"%s\"",
                 id, ts, r->member_key, r->tp, result_names[result], gw_mode_name(r->pol.mode),
                 (long long)latency_ms, r->request_id);
    if (n > 0 && (size_t)n < sizeof buf && e != NULL)
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      ",\"entry_source\":\"%s\",\"age_seconds\":%lld", e->source,
                      (long long)rte_cache_entry_age_s(e, rte_clock_now_ms()));
    if (n > 0 && (size_t)n + 2 < sizeof buf) {
        buf[n++] = '}';
        buf[n] = '\0';
        produce(r->member_key, buf, (size_t)n);
    }
}
