/*
 * warm.h - the one path from "warm these members" to a registered Stedi
 * batch: queue -> dedupe -> seal -> submit -> register.
 *
 * Every warming request that goes through Stedi's batch API (cache-warmer's
 * Kafka consumers and gRPC WarmCache, rtectl warm) lands here. The queue
 * lives in Redis, shared by every replica, so it survives a crash and no
 * member is submitted twice within member_ttl_ms (at least one window)
 * whichever replica saw it:
 *
 *   enqueue  one Lua script per call of up to thousands of members (bulk
 *            commands inside: HMGET, SMISMEMBER, SADD, HSET; Redis >= 6.2): an
 *            event id already seen (kept dedup_ttl_ms, stored as a keyed
 *            hash, never in clear) is a duplicate; a member queued within
 *            member_ttl_ms (so in this window, or in an earlier one whose
 *            batch is still on its way) is a duplicate; anything else joins the
 *            open set. The open set is sealed into a numbered batch the
 *            moment it holds max_batch members (inside the same script, so
 *            a sealed batch never exceeds it).
 *   seal     when the window (window_ms of the libcommon clock since its
 *            first member) has elapsed, or on demand (SIGTERM), the open set
 *            becomes a batch and the next member opens a new window.
 *   submit   any replica claims the oldest sealed batch (or one whose
 *            claimant died: claims are leases on Redis's clock), resolves
 *            its members through the member directory, submits them as
 *            one Stedi batch with a unique name, registers the Stedi batch
 *            id with batch_registry for webhook-receiver to poll, and
 *            deletes the batch. The claim records "submitting" and the
 *            name before the call and the batch id after it; a batch found
 *            "submitting" (its submitter died in the call, or the outcome
 *            was unknown) is submitted again under the same name: Stedi
 *            creates it, or answers 409 and the batch, now "orphan", is
 *            looked up by name among the polled results until found and
 *            registered (dropped as "unknown" after 26 h of nothing). A
 *            refused submit (nothing created) is retried
 *            after retry_delay_ms, up to max_attempts, then dropped as
 *            "failed". A dropped batch's members are forgotten as queued,
 *            so their next request queues them again.
 *
 * Redis layout (prefix P, default "rte:warm"; with Redis Cluster put a hash
 * tag in it, "{rte:warm}", since the scripts touch keys they derive):
 *   P:state     hash start (the open window's first member, clock ms;
 *               0 = no member yet)
 *   P:open      list member id, source, member id, source ... accumulating
 *               (each member once: P:mq dedupes; a list costs Redis a
 *               fraction of a hash's insert)
 *   P:mq:<b>    member ids queued in time bucket b (Redis time /
 *               member_ttl_ms); queued = in this or the previous bucket
 *   P:mu:<b>    the same for members warmed at once (rte_warm_mark_urgent)
 *   P:seen:<b>  event id dedupe: set of keyed hashes of event ids seen in
 *               time bucket b (Redis time / dedup_ttl_ms); an id counts as
 *               seen in this or the previous bucket, so it is remembered at
 *               least dedup_ttl_ms and at most twice that
 *   P:seq       last batch number; P:b:<n> a sealed batch's members: the
 *               P:open list renamed (member id, the source that queued it)
 *   P:ready     list of sealed batch numbers waiting for a submitter
 *   P:claims    sorted set batch number -> claim expiry (Redis time, ms)
 *   P:bst:<n>   hash owner, state (submitting|orphan|submitted|done), name,
 *               submit_ms, batch_id, attempts, opened_ms, sealed_ms, outcome
 * Member ids are stored as list elements and set members (values), never
 * in key names.
 *
 * Deliberately not here: deciding whether a member needs warming
 * (cache-warmer), real-time calls, and writing results to the cache
 * (webhook-receiver polls the registered batches).
 *
 * Errors: 0 / counts, or -1 with err naming what failed (Redis, Stedi).
 *
 * Thread safety: an rte_warm is immutable after rte_warm_new and may be
 * used from any thread at once; each call uses the caller's Redis
 * connection (owned by the calling thread).
 */
#ifndef RTE_WARM_H
#define RTE_WARM_H

#include <stddef.h>
#include <stdint.h>

#include "rte/batch_registry.h"
#include "rte/config.h"
#include "rte/member_dir.h"
#include "rte/redis.h"
#include "rte/stedi.h"

#define RTE_WARM_BATCH_MAX 10000 /* Stedi's limit of checks per batch */

typedef struct rte_warm rte_warm;

typedef struct rte_warm_opts {
    char prefix[64];        /* default "rte:warm" */
    int64_t window_ms;      /* accumulation window, clock ms; default 5 min */
    int max_batch;          /* seal at this many members; 1..10000, default 10000 */
    int64_t dedup_ttl_ms;   /* event ids remembered, clock ms; default 24 h */
    int64_t member_ttl_ms;  /* a queued member is not queued again, clock ms; default 1 h */
    int64_t lease_ms;       /* a submitter's claim, real ms; default 60 s */
    int64_t retry_delay_ms; /* after a refused submit, real ms; default 10 s */
    int max_attempts;       /* refused submits before a batch is dropped; default 5 */
    char source[64];        /* registry source and batch name prefix; default "cache-warmer" */
    char dedup_secret[128]; /* keys the event id hash (cache.member_key_secret) */
} rte_warm_opts;

/* What became of one member offered to rte_warm_enqueue */
enum rte_warm_verdict {
    RTE_WARM_QUEUED = 0,     /* joined the open set */
    RTE_WARM_DUP_EVENT = 1,  /* its event id was seen before */
    RTE_WARM_DUP_MEMBER = 2, /* queued within member_ttl_ms */
};

typedef struct rte_warm_item {
    const char *member_id; /* borrowed */
    const char *event_id;  /* borrowed; NULL or "" = no event dedupe */
    int verdict;           /* out: enum rte_warm_verdict */
} rte_warm_item;

/* What one rte_warm_submit_next call did (for metrics and logs). */
typedef struct rte_warm_submitted {
    long seq;         /* the queue's batch number, 0 if none was claimed */
    char outcome[16]; /* submitted, retry, orphan, lost; dropped: failed, unknown, empty */
    char batch_id[RTE_BATCH_ID_MAX];
    char name[101];       /* the unique Stedi batch name */
    int items;            /* checks submitted */
    int unresolved;       /* members no longer in the directory */
    int64_t opened_ms;    /* first member of the batch's window (clock ms) */
    int64_t submitted_ms; /* clock ms */
} rte_warm_submitted;

/* rte_warm_opts_init - the defaults above; any thread */
void rte_warm_opts_init(rte_warm_opts *o);

/*
 * rte_warm_opts_from_config - warm.prefix, warm.window, warm.max_batch,
 * warm.dedup_ttl, warm.member_ttl, warm.lease, warm.retry_delay, warm.max_attempts,
 * warm.source and cache.member_key_secret; -1 + err naming the key.
 * Start-up thread.
 */
int rte_warm_opts_from_config(const rte_config *cfg, rte_warm_opts *o, char *err, size_t errlen);

/*
 * rte_warm_new - a warming path over stedi (borrowed; NULL = enqueue and
 * seal only) registering batches with registry options bo (copied). NULL +
 * err on bad options. Any thread.
 */
rte_warm *rte_warm_new(const rte_warm_opts *o, rte_stedi *stedi, const rte_batch_registry_opts *bo,
                       char *err, size_t errlen);

/* rte_warm_free - release (no call may be in progress) */
void rte_warm_free(rte_warm *w);

/* rte_warm_options - the options in use; borrowed */
const rte_warm_opts *rte_warm_options(const rte_warm *w);

/*
 * rte_warm_enqueue - offer n members on behalf of source (kept with each
 * member for statistics; one round trip), filling each item's verdict. 0, or -1 + err on a Redis
 * error (then some may have been queued: offering them again is safe, they come back as
 * duplicates).
 */
int rte_warm_enqueue(rte_warm *w, rte_redis *r, rte_warm_item *items, int n, const char *source,
                     int64_t now_ms, char *err, size_t errlen);

/*
 * rte_warm_mark_seen - remember n event ids (NULL/"" skipped) for
 * dedup_ttl_ms; fresh[i] = 1 if event i had not been seen, else 0. One
 * round trip. For callers that act on an event themselves (urgent
 * real-time warming). 0, or -1 + err.
 */
int rte_warm_mark_seen(rte_warm *w, rte_redis *r, const char *const *event_ids, int n, int *fresh,
                       char *err, size_t errlen);

/*
 * rte_warm_mark_urgent - remember n members (NULL/"" skipped) as warmed
 * at once through the real-time API for member_ttl_ms (P:mu:<b>, apart
 * from the batch queue's P:mq, so a member whose urgent call fails still
 * queues); fresh[i] = 1 if member i was not so remembered before (also
 * earlier in this call), else 0: the caller calls Stedi for fresh ones
 * only. One round trip. 0, or -1 + err.
 */
int rte_warm_mark_urgent(rte_warm *w, rte_redis *r, const char *const *member_ids, int n,
                         int *fresh, char *err, size_t errlen);

/*
 * rte_warm_seal - seal the open set into a batch when its window has
 * elapsed at now_ms, or whenever it holds members if force. Returns 1
 * sealed, 0 nothing to seal, -1 + err.
 */
int rte_warm_seal(rte_warm *w, rte_redis *r, int64_t now_ms, int force, char *err, size_t errlen);

/*
 * Called after a batch was submitted and registered, with its checks and
 * the source that queued each member (borrowed, valid during the call).
 */
typedef void (*rte_warm_submitted_fn)(void *arg, const rte_warm_submitted *s,
                                      const rte_stedi_check *items, const char *const *sources,
                                      int n);

/*
 * rte_warm_submit_next - claim the next sealed batch for owner (a unique
 * token per process), submit it through Stedi resolving members in snap,
 * register it, call fn (may be NULL) and report in *out. Returns 1 when a batch was claimed
 * (whatever its outcome), 0 when none is waiting, -1 + err on a Redis
 * error. Any thread; blocks for the Stedi call.
 */
int rte_warm_submit_next(rte_warm *w, rte_redis *r, const rte_member_snapshot *snap,
                         const char *owner, rte_warm_submitted_fn fn, void *arg,
                         rte_warm_submitted *out, char *err, size_t errlen);

/*
 * rte_warm_backlog - members in the open set (*open) and in sealed batches
 * not yet submitted (*sealed), and how many such batches (*batches).
 * 0 or -1 + err.
 */
int rte_warm_backlog(rte_warm *w, rte_redis *r, long *open, long *sealed, long *batches, char *err,
                     size_t errlen);

#endif
