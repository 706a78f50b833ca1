/*
 * events.c - the rte.* lifecycle event JSON (rte/events.h).
 */
#include "rte/events.h"

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"

/* rte_lifecycle_event_json - pure; any thread */
int rte_lifecycle_event_json(const rte_lifecycle_event *e, char *buf, size_t len)
{
    char id[37], ts[40];
    rte_jsonw w;

    rte_uuid4(id);
    rte_clock_format(e->at_ms, ts, sizeof ts);
    rte_jsonw_init(&w, buf, len);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_str(&w, "event_id", id);
    rte_jsonw_str(&w, "type", e->type);
    rte_jsonw_str(&w, "occurred_at", ts);
    rte_jsonw_str(&w, "member_key", e->member_key);
    rte_jsonw_str(&w, "trading_partner_id", e->tp);
    rte_jsonw_str(&w, "source", e->source);
    rte_jsonw_str(&w, "trigger", e->trigger);
    if (e->request_id != NULL && e->request_id[0] != '\0')
        rte_jsonw_str(&w, "request_id", e->request_id);
    if (e->latency_ms >= 0)
        rte_jsonw_int(&w, "latency_ms", e->latency_ms);
    if (e->outcome != NULL)
        rte_jsonw_str(&w, "outcome", e->outcome);
    if (e->detail != NULL && e->detail[0] != '\0')
        rte_jsonw_str(&w, "detail", e->detail);
    rte_jsonw_end(&w);
    return rte_jsonw_done(&w);
}
