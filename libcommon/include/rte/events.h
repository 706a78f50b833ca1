/*
 * events.h - the JSON of the rte.* lifecycle events on topic rte.events,
 * written in one place for every service that makes real-time checks
 * (cache-gateway, batch-rpc), so their shape cannot drift apart.
 *
 * Fields: event_id (a fresh UUID), type, occurred_at (RFC 3339), member_key,
 * trading_partner_id, source, trigger, then request_id, latency_ms, outcome
 * and detail when set. Pure; any thread.
 */
#ifndef RTE_EVENTS_H
#define RTE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rte_lifecycle_event {
    const char *type;       /* "rte.submitted", "rte.enqueued", ... */
    const char *member_key; /* the keyed member hash, never a raw id */
    const char *tp;         /* trading partner id */
    const char *source;     /* the emitting service */
    const char *trigger;    /* "request", "batch", ... */
    const char *request_id; /* NULL or "" = left out */
    int64_t latency_ms;     /* < 0 = left out */
    const char *outcome;    /* NULL = left out */
    const char *detail;     /* NULL or "" = left out */
    int64_t at_ms;          /* occurred_at, clock ms */
} rte_lifecycle_event;

/* rte_lifecycle_event_json - e as JSON into buf; its length, or -1 if len is too small */
int rte_lifecycle_event_json(const rte_lifecycle_event *e, char *buf, size_t len);

#endif
