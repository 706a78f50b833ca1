/*
 * gw_l1.h - the gateway's bounded in-process cache in front of Redis.
 *
 * A set-associative table (8 ways per set) of decoded cache entries keyed
 * by their Redis key. Memory is fixed at creation: nothing is allocated per
 * request. An entry lives at most ttl_ms of real (monotonic) time after it
 * was read from or written to Redis. Every cache write anywhere in the
 * suite is announced on Redis pub/sub (cache_entry.h) and drops the key
 * here at once (gw_l1_drop); while that subscription is up the gateway
 * uses a long ttl, and while it is down (invalidations may be missed) it
 * clears the table and falls back to a ttl of at most 1 s, so a write made
 * anywhere is visible here within 1 s either way. A full set evicts its
 * least recently used way.
 *
 * Thread safety: any thread; each set stripe has its own mutex, held only
 * to copy an entry in or out.
 */
#ifndef GW_L1_H
#define GW_L1_H

#include <stddef.h>
#include <stdint.h>

#include "rte/cache_entry.h"

typedef struct gw_l1 gw_l1;

/* gw_l1_new - room for about capacity entries (rounded up to whole sets); NULL if capacity is 0 */
gw_l1 *gw_l1_new(size_t capacity, int64_t ttl_ms);

/* gw_l1_free - release (NULL is fine) */
void gw_l1_free(gw_l1 *c);

/* gw_l1_get - 1 and *out filled when key is held and younger than ttl at now_mono_ms, else 0 */
int gw_l1_get(gw_l1 *c, const char *key, int64_t now_mono_ms, rte_cache_entry *out);

/*
 * gw_l1_put - remember e under key, read from Redis (or answered) at
 * read_mono_ms; an entry with an older cached_at never replaces a newer one
 * still held, and a value read before the key's last invalidation (or
 * before the last gw_l1_clear) is refused
 */
void gw_l1_put(gw_l1 *c, const char *key, const rte_cache_entry *e, int64_t read_mono_ms);

/* gw_l1_drop - forget key: the cache entry was written elsewhere (leaves a tombstone) */
void gw_l1_drop(gw_l1 *c, const char *key, int64_t now_mono_ms);

/* gw_l1_clear - forget everything and refuse values read before now (invalidations missed) */
void gw_l1_clear(gw_l1 *c, int64_t now_mono_ms);

/* gw_l1_set_ttl - change how long entries live (long while invalidations arrive, short when not) */
void gw_l1_set_ttl(gw_l1 *c, int64_t ttl_ms);

/* gw_l1_capacity - entries it can hold */
size_t gw_l1_capacity(const gw_l1 *c);

#endif
