/*
 * cron_store.h - fire records, leases and cursors in Redis.
 *
 * Exactly once per fire across replicas rests on three Lua scripts, each
 * atomic on the Redis server:
 *
 *   plan     compare-and-set of the schedule's horizon (the newest fire
 *            already planned): only the replica whose read of the horizon
 *            is still current creates the fire records for the fires due
 *            since, so missed fires are judged (run or skipped) once
 *            cluster-wide. A record is created with HSETNX, never twice.
 *   acquire  a lease on one fire record: granted when nobody holds an
 *            unexpired lease; each grant increments the record's fencing
 *            token and returns the persisted cursor to resume from.
 *   advance  moves the cursor (and renews the lease) only if the caller's
 *            token is still the record's token; a worker that lost its
 *            lease (paused, partitioned) is fenced out and stops.
 *
 * Leases expire on the Redis server's clock (TIME), in real milliseconds,
 * independent of the scaled simulation clock. Fire times are simulated
 * epoch milliseconds.
 *
 * Keys (prefix = member_cron.key_prefix, default "rte:cron:"):
 *   {prefix}{schedule}:horizon      newest planned fire (or first start), ms
 *   {prefix}{schedule}:last_fire    newest fire created, ms
 *   {prefix}{schedule}:pending      zset of fire times not finished
 *   {prefix}{schedule}:fire:{ms}    hash: state pending|running|done, cursor,
 *                                   total, emitted, token, owner,
 *                                   lease_until, takeovers, manual,
 *                                   started_ms, finished_ms (7 d TTL once done)
 *
 * Errors: every function returns -1 with err when Redis fails; the caller
 * retries on its next tick. Thread safety: functions take the rte_redis of
 * the calling thread.
 */
#ifndef CRON_STORE_H
#define CRON_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "rte/redis.h"

typedef struct cron_store {
    rte_redis *r;
    const char *prefix;
    const char *owner;
    int64_t lease_ms;
} cron_store;

typedef struct cron_fire_info {
    int64_t fire_ms;
    char state[16];
    int64_t cursor, total, emitted, takeovers, started_ms, finished_ms;
    int manual;
    char owner[96];
} cron_fire_info;

/* cron_store_horizon - read the horizon into *ms (-1 = none yet); 0 or -1 */
int cron_store_horizon(cron_store *st, const char *sched, int64_t *ms, char *err, size_t errlen);

/* cron_store_init_horizon - set the horizon to ms unless one exists; 0 or -1 */
int cron_store_init_horizon(cron_store *st, const char *sched, int64_t ms, char *err,
                            size_t errlen);

/*
 * cron_store_plan - if the horizon is still expect, set it to horizon and
 * create records for fires[0..n). 1 = done by us, 0 = someone else planned
 * first, -1 = error
 */
int cron_store_plan(cron_store *st, const char *sched, int64_t expect, int64_t horizon,
                    const int64_t *fires, int n, char *err, size_t errlen);

/* cron_store_create - create one fire record (manual run); 1 created, 0 existed, -1 error */
int cron_store_create(cron_store *st, const char *sched, int64_t fire_ms, int manual, char *err,
                      size_t errlen);

/* cron_store_due - up to max pending fires with time <= now_ms, oldest first; count or -1 */
int cron_store_due(cron_store *st, const char *sched, int64_t now_ms, int64_t *out, int max,
                   char *err, size_t errlen);

/*
 * cron_store_acquire - lease fire; returns 1 with *token, *cursor and
 * *takeover (1 if a previous holder's lease had expired mid-run), 0 if
 * leased by someone else or already done, -1 on error
 */
int cron_store_acquire(cron_store *st, const char *sched, int64_t fire_ms, int64_t total,
                       int64_t started_ms, int64_t *token, int64_t *cursor, int *takeover,
                       char *err, size_t errlen);

/*
 * cron_store_advance - under token, set cursor, add emitted, renew the
 * lease; done = 1 marks the fire finished, done = -1 gives the lease up
 * (drain) so another replica resumes at once. 1 ok, 0 fenced, -1 error
 */
int cron_store_advance(cron_store *st, const char *sched, int64_t fire_ms, int64_t token,
                       int64_t cursor, int64_t emitted_delta, int done, int64_t now_ms, char *err,
                       size_t errlen);

/* cron_store_fire_info - read one fire record; 1 found, 0 absent, -1 error */
int cron_store_fire_info(cron_store *st, const char *sched, int64_t fire_ms, cron_fire_info *out,
                         char *err, size_t errlen);

/* cron_store_last_fire - newest fire created, -1 if none; 0 or -1 */
int cron_store_last_fire(cron_store *st, const char *sched, int64_t *ms, char *err, size_t errlen);

#endif
