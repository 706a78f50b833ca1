/*
 * gw_events.h - the gateway's events on Kafka topic rte.events.
 *
 * Lifecycle events of a real-time check (rte.submitted; rte.enqueued when
 * no slot was free at once and it waits in the limiter's queue;
 * rte.scheduled, rte.started, rte.completed, rte.failed, rte.timeout,
 * rte.downtime) and
 * rte.access events that count every answered request (hit/miss/stale/
 * error), so the warmer can measure how many warmed entries were used:
 * accesses are tallied per member, trading partner, result and mode for
 * gateway.access_window and sent one event per tally with its count
 * (gw_access.h); with the window at 0, one event per request. Values are
 * JSON; the Kafka key is the member key (a keyed hash): the raw member id
 * never leaves the gateway. Every event carries a fresh event_id.
 *
 * Producing only enqueues into librdkafka (never waits for the broker); a
 * full queue drops the event and counts it in
 * rte_gateway_events_total{result="dropped"}.
 *
 * Thread safety: any thread.
 */
#ifndef GW_EVENTS_H
#define GW_EVENTS_H

#include <stdint.h>

#include "gw.h"

/*
 * gw_event_lifecycle - emit type ("rte.completed", ...) for member_key at
 * trading partner tp; latency_ms < 0 omits it; detail may be NULL
 */
void gw_event_lifecycle(const char *type, const char *member_key, const char *tp,
                        const char *trigger, const char *request_id, int64_t latency_ms,
                        const char *outcome, const char *detail);

/*
 * gw_event_access - count an answered request in its access tally (e may be
 * NULL); with tallies off, or its shard full, emit its rte.access at once
 */
void gw_event_access(const gw_req *r, enum gw_result result, const rte_cache_entry *e,
                     int64_t latency_ms);

/*
 * gw_events_start - tally accesses (G.access) for window_ms and send each
 * window's tallies from a thread of its own; window_ms 0 leaves tallies off
 * (one event per access). tallies bounds the tallies per window (split over
 * the CPU shards, at least 256 each). -1 + err if out of memory.
 */
int gw_events_start(int64_t window_ms, int tallies, char *err, size_t errlen);

/* gw_events_stop - stop the flusher after sending the last tallies (before the producer goes) */
void gw_events_stop(void);

#endif
