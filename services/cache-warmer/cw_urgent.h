/*
 * cw_urgent.h - urgent warming through Stedi's real-time API.
 *
 * An urgent request (probability above warmer.urgent_above, or priority
 * URGENT over gRPC) is warmed at once: its event id is marked seen, then a
 * pool of warmer.urgent_workers threads makes one real-time call per member
 * in the slot limiter's warming class - which is granted only below the
 * warming cap, outside the interactive reserve and while no interactive
 * caller waits, so warming never takes a slot interactive traffic needs -
 * and writes the answer to the cache (rte_cache_put, compare-and-set). A
 * member whose call cannot get a slot or an answer before
 * warmer.urgent_deadline falls back to the batch queue.
 */
#ifndef CW_URGENT_H
#define CW_URGENT_H

#include <stddef.h>

#include "cw_decide.h"
#include "rte/redis.h"

/* cw_urgent_start - start the worker pool; 0 or -1 + err. Start-up thread. */
int cw_urgent_start(char *err, size_t errlen);

/* cw_urgent_stop - finish queued calls and join the pool. Shutdown. */
void cw_urgent_stop(void);

/*
 * cw_urgent_run - warm the n requests u[] (outcome set: CW_WARMED, or after
 * a fallback CW_QUEUED / CW_SKIP_DUP_MEMBER; an event seen before
 * CW_SKIP_DUP_EVENT) and return once all are done. 0, or -1 + err on a
 * Redis error before any call. Any thread (r is the caller's connection).
 */
int cw_urgent_run(cw_req **u, int n, const char *source, rte_redis *r, char *err, size_t errlen);

#endif
