/*
 * batch_registry.h - Stedi batches waiting to be polled, kept in Redis.
 *
 * Real Stedi sends no completion callback, so whoever submits a Stedi batch
 * (cache-warmer, batch-rpc) registers it here, and webhook-receiver polls
 * every registered batch until it is complete or past its retry window.
 *
 * Redis layout (prefix default "rte:batch"):
 *   <prefix>:due             sorted set: batch id -> next check (clock ms)
 *   <prefix>:{id}            hash: source, items, submitted_ms,
 *                            registered_ms, retry_until_ms, cursor, checks,
 *                            polled, state (pending|done), done_reason,
 *                            done_ms
 *   <prefix>:{id}:lease      string: the owner token of the replica polling
 *                            it now, with a PX expiry (crash-safe)
 *   <prefix>:{id}:items      hash: submitterTransactionIdentifier -> JSON
 *                            {"key": cache key, "service_types": [...]}:
 *                            which member (as its cache key, never the raw
 *                            id) and which question each submitted item is,
 *                            since a polled result names neither
 *
 * Scheduling: the first check is due first_delay_ms after registration; each
 * check that finds nothing new doubles the interval (first_delay_ms x 2^n),
 * capped at max_interval_ms; a check that made progress keeps the interval.
 * A batch whose retry window (submitted + retry_window_ms, or the
 * registration's own) has passed is marked done with reason "expired".
 * Times are the libcommon clock (clock.h), so a scaled clock scales polling;
 * lease expiry is Redis's own (real) time.
 *
 * Leases: every state change after registration (cursor, reschedule, done)
 * runs as a Lua script that first checks the caller still holds the lease,
 * so a replica whose lease expired mid-poll cannot move the cursor of a
 * batch another replica now owns (it gets RTE_BATCH_E_LOST).
 *
 * Errors: functions return 0 (or a count / 1 / 0 as said) and -1 with err
 * on a Redis error; RTE_BATCH_E_LOST when the lease is not held.
 *
 * Deliberately not here: talking to Stedi (stedi.h), or writing results
 * (webhook-receiver does that). Done batches stay readable for keep_ms.
 *
 * Thread safety: pure functions over the caller's Redis connection (owned
 * by the calling thread); no locks.
 */
#ifndef RTE_BATCH_REGISTRY_H
#define RTE_BATCH_REGISTRY_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/config.h"
#include "rte/redis.h"

#define RTE_BATCH_ID_MAX 128
#define RTE_BATCH_CURSOR_MAX 1040 /* a Stedi page token (up to 1024) plus our skip count */
#define RTE_BATCH_E_LOST (-2)

typedef struct rte_batch_registry_opts {
    char prefix[64];         /* default "rte:batch" */
    int64_t first_delay_ms;  /* first check after registration; default 60 s */
    int64_t max_interval_ms; /* backoff cap; default 10 min */
    int64_t retry_window_ms; /* default window after submission; default 24 h */
    int64_t lease_ms;        /* lease lifetime (real ms); default 60 s */
    int64_t keep_ms;         /* done batches kept this long (real ms); default 7 d */
} rte_batch_registry_opts;

/* One submitted item: how its polled result finds its cache entry. Strings are borrowed. */
typedef struct rte_batch_member {
    const char *submitter_id;  /* the item's submitterTransactionIdentifier */
    const char *cache_key;     /* rte_cache_key of its member and trading partner */
    const char *service_types; /* the service types it asked, "30" or "30,MH"; NULL = "30" */
} rte_batch_member;

/* What a submitter registers. Strings are borrowed. */
typedef struct rte_batch_info {
    const char *batch_id;            /* Stedi's batchId, 1..127 chars of [A-Za-z0-9._:-] */
    const char *source;              /* who submitted: "cache-warmer", "batch-rpc", ... */
    int items;                       /* item count submitted */
    int64_t submitted_ms;            /* clock ms; 0 = now */
    int64_t retry_window_ms;         /* 0 = the registry's default */
    const rte_batch_member *members; /* one per submitted item (0..10000); stored before the
                                        batch is scheduled, so no poll runs without them */
    int nmembers;
} rte_batch_info;

/* A batch as stored. */
typedef struct rte_batch_record {
    char batch_id[RTE_BATCH_ID_MAX];
    char source[64];
    int items;
    int64_t submitted_ms, registered_ms, retry_until_ms, next_ms;
    char cursor[RTE_BATCH_CURSOR_MAX]; /* poll page token to resume from, "" = start */
    int checks;                        /* status checks so far */
    long polled;                       /* poll items handed on so far */
    int done;                          /* 1 once marked done */
    char done_reason[32];              /* complete | expired | not_found | ... */
} rte_batch_record;

/* rte_batch_registry_opts_init - the defaults above; any thread */
void rte_batch_registry_opts_init(rte_batch_registry_opts *o);

/*
 * rte_batch_registry_opts_from_config - batch_registry.first_delay,
 * .max_interval, .retry_window, .lease, .keep, .prefix; -1 + err naming the
 * key on a bad value. Start-up thread.
 */
int rte_batch_registry_opts_from_config(const rte_config *cfg, rte_batch_registry_opts *o,
                                        char *err, size_t errlen);

/* rte_batch_registry_valid_id - 1 if id is a usable batch id (see rte_batch_info) */
int rte_batch_registry_valid_id(const char *id);

/*
 * rte_batch_registry_register - record a batch and its members and
 * schedule its first check at now_ms + first_delay_ms. Registering an id
 * again keeps its cursor and progress (only source/items are refreshed;
 * members are added). The members live as long as the batch can be polled
 * plus keep_ms. 0, or -1 + err (a member without submitter id or cache key
 * is refused, naming it).
 */
int rte_batch_registry_register(rte_redis *r, const rte_batch_registry_opts *o,
                                const rte_batch_info *b, int64_t now_ms, char *err, size_t errlen);

/*
 * rte_batch_registry_due - up to max ids (each RTE_BATCH_ID_MAX bytes in
 * ids) whose next check is at or before now_ms, earliest first. Returns the
 * count, or -1 + err.
 */
int rte_batch_registry_due(rte_redis *r, const rte_batch_registry_opts *o, int64_t now_ms,
                           char (*ids)[RTE_BATCH_ID_MAX], int max, char *err, size_t errlen);

/* rte_batch_registry_lease - take the batch's lease for owner: 1 taken (or already ours), 0 held
 * by another, -1 + err */
int rte_batch_registry_lease(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                             const char *owner, char *err, size_t errlen);

/* rte_batch_registry_renew - extend our lease by lease_ms: 0, RTE_BATCH_E_LOST, or -1 + err */
int rte_batch_registry_renew(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                             const char *owner, char *err, size_t errlen);

/* rte_batch_registry_release - drop our lease (no-op if not ours); 0 or -1 + err */
int rte_batch_registry_release(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                               const char *owner, char *err, size_t errlen);

/* rte_batch_registry_get - 1 found (out filled), 0 unknown, -1 + err */
int rte_batch_registry_get(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                           rte_batch_record *out, char *err, size_t errlen);

/*
 * rte_batch_registry_advance - under our lease, persist cursor (the token to
 * resume polling from) and add items to the polled count. 0,
 * RTE_BATCH_E_LOST, or -1 + err.
 */
int rte_batch_registry_advance(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                               const char *owner, const char *cursor, long items, char *err,
                               size_t errlen);

/*
 * rte_batch_registry_reschedule - under our lease, count one check and set
 * the next one (backoff as above; progressed = the check found new results).
 * When the retry window has passed the batch is marked done ("expired")
 * instead and 1 is returned; else 0. RTE_BATCH_E_LOST or -1 + err.
 */
int rte_batch_registry_reschedule(rte_redis *r, const rte_batch_registry_opts *o,
                                  const char *batch_id, const char *owner, int progressed,
                                  int64_t now_ms, int64_t *next_ms, char *err, size_t errlen);

/*
 * rte_batch_registry_done - under our lease, mark the batch done with reason
 * and stop scheduling it (kept keep_ms for inspection). 0, RTE_BATCH_E_LOST
 * or -1 + err.
 */
int rte_batch_registry_done(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                            const char *owner, const char *reason, int64_t now_ms, char *err,
                            size_t errlen);

/*
 * rte_batch_registry_members - the registered members of the n submitter
 * ids given, as a new JSON object {submitter id: {"key", "service_types"}}
 * holding those found (caller deletes it); NULL + err on a Redis error.
 * Caller's thread owns r.
 */
cJSON *rte_batch_registry_members(rte_redis *r, const rte_batch_registry_opts *o,
                                  const char *batch_id, const char *const *submitter_ids, int n,
                                  char *err, size_t errlen);

/* rte_batch_registry_backlog - batches still scheduled (*pending) and due now (*due); 0 or -1 */
int rte_batch_registry_backlog(rte_redis *r, const rte_batch_registry_opts *o, int64_t now_ms,
                               long *pending, long *due, char *err, size_t errlen);

#endif
