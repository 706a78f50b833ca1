/*
 * jobs.h - durable jobs in Redis: a list of work items per job, worked in
 * chunks by any replica under a lease, with an ordered log of updates.
 *
 * A job is a hash of the caller's fields plus a work list. Replicas find
 * jobs that are due, take a job's lease (a Redis key with a PX expiry, so a
 * replica killed with -9 loses it after lease_ms), and move a chunk of
 * items from a source list to the job's "doing" list in one script. When
 * the chunk is handled, one script adds the caller's counters, sets fields,
 * requeues what must be looked at again and empties "doing". A chunk that
 * was in "doing" when its worker died is handed, whole, to the next
 * worker that takes the job (take reports it as resumed): nothing is lost,
 * and work done twice is bounded by one chunk per crash.
 *
 * Every state change after creation first checks that the caller still
 * holds the lease (RTE_JOBS_E_LOST otherwise), and that the job has not
 * ended (RTE_JOBS_E_ENDED): ending a job (complete, failed, cancelled -
 * the caller's words, in field "status") deletes its remaining work at
 * once, so a cancel stops every replica at its next chunk.
 *
 * Updates: rte_jobs_event appends an opaque payload to the job's stream
 * with an id "<ms>-<seq>" that never goes back (ms is the caller's clock,
 * held at the last id's ms if the clock is behind), so a reader that saw
 * id X resumes with the updates after X (rte_jobs_events_after).
 *
 * Redis layout (prefix P, default "rte:jobs"):
 *   P:due           sorted set job id -> when it should next be worked (clock ms)
 *   P:j:<id>        hash: the caller's fields, plus ended (0|1), ended_ms, evms
 *   P:j:<id>:<list> the work lists ("todo", "wait", ... chosen by the caller)
 *   P:j:<id>:doing  the chunk being worked; P:j:<id>:src the list it came from
 *   P:j:<id>:lease  the owner token of the replica working it, PX lease_ms
 *   P:j:<id>:ev     stream of updates (field "u"), trimmed to about events_max
 * An ended job's keys expire after keep_ms (real time).
 *
 * Errors: 0 / counts, RTE_JOBS_E_* or -1 with err naming what failed.
 * Thread safety: pure functions over the caller's Redis connection.
 */
#ifndef RTE_JOBS_H
#define RTE_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "rte/redis.h"

#define RTE_JOBS_ID_MAX 64
#define RTE_JOBS_EVID_MAX 48
#define RTE_JOBS_E_LOST (-2)  /* the lease is not (or no longer) the caller's */
#define RTE_JOBS_E_ENDED (-3) /* the job has ended (cancelled, finished) */

typedef struct rte_jobs_opts {
    char prefix[64];  /* default "rte:jobs" */
    int64_t lease_ms; /* real ms; default 30 s */
    int events_max;   /* updates kept per job (approximately); default 10000 */
    int64_t keep_ms;  /* an ended job stays readable this long (real ms); default 7 d */
} rte_jobs_opts;

/* One chunk taken from a job. */
typedef struct rte_jobs_chunk {
    char src[16];       /* the list the items came from */
    int resumed;        /* 1: left in "doing" by a worker that lost its lease */
    size_t n;           /* items */
    const char **items; /* borrowed from the reply below; valid until rte_jobs_chunk_free */
    size_t *lens;
    void *reply;
} rte_jobs_chunk;

/* rte_jobs_opts_init - the defaults above; any thread */
void rte_jobs_opts_init(rte_jobs_opts *o);

/*
 * rte_jobs_create - job id with fields (nf name/value pairs, flattened) and
 * items in list "todo", due at due_ms. Items go in first, in pipelined
 * pieces, and the hash and due entry last, so a job is never seen half made.
 * Creating an existing id again replaces its work. 0 or -1 + err.
 */
int rte_jobs_create(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *const *fields,
                    int nf, const char *const *items, size_t n, int64_t due_ms, char *err,
                    size_t errlen);

/* rte_jobs_exists - 1 when the job's hash exists, 0 if not, -1 + err */
int rte_jobs_exists(rte_redis *r, const rte_jobs_opts *o, const char *id, char *err, size_t errlen);

/* rte_jobs_due - up to max job ids due at now_ms, earliest first; count or -1 + err */
int rte_jobs_due(rte_redis *r, const rte_jobs_opts *o, int64_t now_ms, char (*ids)[RTE_JOBS_ID_MAX],
                 int max, char *err, size_t errlen);

/* rte_jobs_reschedule - the job is next due at due_ms (no-op once ended); 0 or -1 + err */
int rte_jobs_reschedule(rte_redis *r, const rte_jobs_opts *o, const char *id, int64_t due_ms,
                        char *err, size_t errlen);

/* rte_jobs_lease - 1 taken (or already ours, renewed), 0 held by another, -1 + err */
int rte_jobs_lease(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                   char *err, size_t errlen);

/* rte_jobs_release - drop our lease (no-op if not ours); 0 or -1 + err */
int rte_jobs_release(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                     char *err, size_t errlen);

/*
 * rte_jobs_take - under our lease (renewed), the chunk left in "doing" if
 * any (resumed = 1), else up to n items moved from list src to "doing".
 * Returns the number of items (0: src is empty), RTE_JOBS_E_LOST,
 * RTE_JOBS_E_ENDED or -1 + err. Free *c with rte_jobs_chunk_free.
 */
int rte_jobs_take(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                  const char *src, int n, rte_jobs_chunk *c, char *err, size_t errlen);

/* rte_jobs_chunk_free - release a chunk (safe on a zeroed one) */
void rte_jobs_chunk_free(rte_jobs_chunk *c);

/* What rte_jobs_finish does besides emptying "doing". Strings borrowed. */
typedef struct rte_jobs_finish_args {
    const char *const *incr; /* name, delta pairs (flattened), HINCRBY */
    int nincr;               /* pairs */
    const char *const *set;  /* name, value pairs, HSET */
    int nset;
    const char *requeue_to; /* list that gets requeue[] at its tail (NULL = none) */
    const char *const *requeue;
    const size_t *requeue_lens;
    size_t nrequeue;
} rte_jobs_finish_args;

/*
 * rte_jobs_finish - under our lease, close the chunk in "doing" as a. 0,
 * RTE_JOBS_E_LOST, RTE_JOBS_E_ENDED (nothing changed) or -1 + err.
 */
int rte_jobs_finish(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                    const rte_jobs_finish_args *a, char *err, size_t errlen);

/*
 * rte_jobs_set - under our lease, set fields (nf name/value pairs) of a job
 * that has not ended. 0, RTE_JOBS_E_LOST, RTE_JOBS_E_ENDED or -1 + err.
 */
int rte_jobs_set(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                 const char *const *fields, int nf, char *err, size_t errlen);

/* rte_jobs_len - the length of the job's list name; -1 + err */
long rte_jobs_len(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *name, char *err,
                  size_t errlen);

/*
 * rte_jobs_end - end the job: set fields (nf pairs; normally "status"),
 * ended = 1, ended_ms = now_ms; drop its work lists and its due entry; the
 * job expires after keep_ms. owner NULL ends it whoever holds the lease
 * (cancel). Returns the items dropped (>= 0), RTE_JOBS_E_ENDED when it had
 * already ended, RTE_JOBS_E_LOST, or -1 + err (also when there is no such
 * job).
 */
long rte_jobs_end(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                  const char *const *fields, int nf, const char *const *lists, int nlists,
                  int64_t now_ms, char *err, size_t errlen);

/*
 * rte_jobs_event - append payload to the job's updates with an id not
 * before now_ms (written into evid, RTE_JOBS_EVID_MAX bytes). 0 or -1 + err.
 */
int rte_jobs_event(rte_redis *r, const rte_jobs_opts *o, const char *id, const void *payload,
                   size_t len, int64_t now_ms, char *evid, char *err, size_t errlen);

/*
 * rte_jobs_events_after - up to max updates after id after ("" = from the
 * first) as the XRANGE reply (caller frees with freeReplyObject): an array
 * of [id, ["u", payload]]. NULL + err on a Redis error.
 */
redisReply *rte_jobs_events_after(rte_redis *r, const rte_jobs_opts *o, const char *id,
                                  const char *after, int max, char *err, size_t errlen);

/* rte_jobs_get - the job's hash as an HGETALL reply (caller frees); an empty array if unknown */
redisReply *rte_jobs_get(rte_redis *r, const rte_jobs_opts *o, const char *id, char *err,
                         size_t errlen);

/* rte_jobs_field - field name of an HGETALL reply, or def; borrowed */
const char *rte_jobs_field(const redisReply *h, const char *name, const char *def);

/* rte_jobs_field_ll - field name as an integer, or def */
long long rte_jobs_field_ll(const redisReply *h, const char *name, long long def);

#endif
