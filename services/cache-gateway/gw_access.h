/*
 * gw_access.h - the gateway's access tallies: every answered request,
 * folded per member, trading partner, result and mode over a short window.
 *
 * An answered request is one access. Sent as a Kafka record of its own, an
 * access costs more than answering an L1 hit: a JSON event, a librdkafka
 * enqueue (an allocation) and a delivery report on the request's CPU, and
 * a few hundred bytes at the broker. A member opening the app asks several
 * times within a second, and a hot member thousands of times, so the
 * gateway tallies accesses here and sends one rte.access event per tally
 * and window: count, first and last time, the highest and the summed
 * latency, the last request id, entry source and age. Every access is in
 * exactly one tally; nothing is sampled.
 *
 * Shards: one per CPU (rte/cpu.h). A thread adds to the shard of the CPU it
 * runs on, under that shard's mutex: uncontended, since the HTTP loops keep
 * to their CPUs, unless two threads on one CPU interleave. A shard holds at
 * most cap tallies; an access that would need a new tally in a full shard
 * is refused (gw_access_add returns 0) and the caller sends it on its own,
 * so a window with more distinct keys than fit degrades to one record per
 * access, never to a loss.
 *
 * gw_access_drain swaps each shard's table for an empty one under the
 * mutex (constant time, so a request never waits for a drain) and hands the
 * tallies to fn outside it. Only one thread drains at a time (a mutex of
 * its own).
 *
 * Thread safety: gw_access_add and gw_access_drain from any thread;
 * gw_access_new/free on the start-up / shutdown thread.
 */
#ifndef GW_ACCESS_H
#define GW_ACCESS_H

#include <stdint.h>

#include "gw.h"

/* One tally: accesses to one member key at one trading partner with one result and mode. */
typedef struct gw_access_tally {
    char member_key[RTE_MEMBER_KEY_LEN + 1];
    char tp[GW_TP_MAX + 1];
    uint8_t result; /* enum gw_result */
    uint8_t mode;   /* enum gw_mode */
    uint32_t count;
    int64_t first_ms, last_ms; /* wall clock of the first and the last access */
    int64_t latency_max_ms, latency_sum_ms;
    char request_id[64];   /* the last access's */
    char entry_source[20]; /* the last access's entry; "" when it had none */
    int64_t age_s;         /* the last access's entry age (valid with entry_source) */
} gw_access_tally;

/* One access, as gw_access_add takes it. */
typedef struct gw_access {
    const char *member_key, *tp, *request_id;
    enum gw_result result;
    enum gw_mode mode;
    int64_t now_ms, latency_ms;
    const char *entry_source; /* NULL when no entry was answered */
    int64_t age_s;
} gw_access;

typedef struct gw_access_table gw_access_table;

/* gw_access_new - nshards shards (1..64) of at most cap tallies (>= 1) each; NULL if out of memory
 */
gw_access_table *gw_access_new(int nshards, int cap);

/* gw_access_free - release (NULL is fine); tallies not drained are discarded */
void gw_access_free(gw_access_table *t);

/* gw_access_add - 1 when the access joined a tally, 0 when its shard is full (send it alone) */
int gw_access_add(gw_access_table *t, const gw_access *a);

/* gw_access_tally_one - out = a tally of the one access a */
void gw_access_tally_one(const gw_access *a, gw_access_tally *out);

/* gw_access_drain - hand every tally to fn (and forget it); returns how many */
int gw_access_drain(gw_access_table *t, void (*fn)(const gw_access_tally *tally, void *arg),
                    void *arg);

#endif
