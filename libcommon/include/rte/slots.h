/*
 * slots.h - the cluster-wide limiter of Stedi real-time slots.
 *
 * Stedi gives the account a fixed number of concurrent real-time calls (15).
 * Every replica of every service takes a lease from this one Redis-backed
 * counting semaphore before a real-time call and gives it back afterwards,
 * so the limit holds across processes and machines.
 *
 * Contract:
 * - The number of unexpired leases never exceeds `limit`. Each grant is one
 *   atomic Lua script on the Redis server, using the server's TIME, so all
 *   replicas share one clock.
 * - A lease lasts lease_ms from its grant (or last renewal). A holder that
 *   crashes loses its slot to the pool after at most lease_ms. A holder whose
 *   call may outlast lease_ms must call rte_slots_renew in time; once a lease
 *   has expired the slot may already belong to someone else, so renew and
 *   release then return RTE_SLOTS_LOST.
 * - Classes: interactive traffic goes first. Warming and batch leases are
 *   granted only while no interactive caller is waiting, while their class
 *   holds fewer than its cap, and while `reserve_interactive` slots stay free
 *   for interactive traffic. Within a class, waiters are served first come,
 *   first served (a queue per class in Redis).
 * - Waiting is polling: a waiter re-runs the script every 5-20 ms (jittered)
 *   until it is granted or its deadline passes. Each poll refreshes the
 *   waiter's heartbeat; a waiter that dies leaves its queue after
 *   waiter_ttl_ms.
 *
 * Errors: when Redis is unreachable or answers with an error, acquire
 * returns -1 and the caller must NOT call Stedi (no slot means no call).
 *
 * Redis keys (prefix P): P:holders (sorted set token -> lease expiry ms),
 * P:queue:<0-2> (waiter -> arrival sequence), P:alive:<0-2> (waiter ->
 * heartbeat expiry ms), P:seq. With Redis Cluster, put a hash tag in the
 * prefix ("{rte:slots}") so the script's keys share one hash slot.
 *
 * Metrics: rte_slots_in_use{class}, rte_slots_waiters{class} (cluster-wide,
 * as last seen by this process), rte_slots_wait_seconds{class} (time to a
 * grant), rte_slots_lease_expiries_total (expired leases this process's
 * scripts removed), rte_slots_acquire_total{class,result=ok|timeout|error}.
 *
 * Thread safety: an rte_slots may be used from any number of threads at once.
 * Each call borrows a Redis connection from the limiter's own small pool
 * (a mutex guards only the pool list, never held during I/O), so callers
 * do not serialise behind one another and no per-process URL is imposed.
 */
#ifndef RTE_SLOTS_H
#define RTE_SLOTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rte_slots rte_slots;

enum rte_slot_class { RTE_SLOT_INTERACTIVE = 0, RTE_SLOT_WARMING = 1, RTE_SLOT_BATCH = 2 };
#define RTE_SLOT_NCLASSES 3

/* return codes besides 0 */
#define RTE_SLOTS_ERROR (-1)   /* Redis unreachable or failed: do not call Stedi */
#define RTE_SLOTS_TIMEOUT (-2) /* the deadline passed without a grant */
#define RTE_SLOTS_LOST (-3)    /* renew/release: the lease had already expired */

typedef struct rte_slots_opts {
    const char *prefix;      /* Redis key prefix; default "rte:slots" */
    int limit;               /* concurrent leases in all; default 15 */
    int lease_ms;            /* lease lifetime without renewal; default 30000 */
    int warming_cap;         /* most warming leases at once; default 5 */
    int batch_cap;           /* most batch leases at once; default 5 */
    int reserve_interactive; /* slots warming/batch may never take; default 5 */
    int waiter_ttl_ms;       /* a silent waiter leaves its queue after this; default 2000 */
    int redis_timeout_ms;    /* connect and command timeout; default 1000 */
} rte_slots_opts;

typedef struct rte_slot_lease {
    char token[40];      /* "<class>:<uuid>", unique per grant */
    int64_t acquired_ms; /* rte_clock_mono_ms() when granted */
    enum rte_slot_class cls;
} rte_slot_lease;

/* rte_slot_class_name - "interactive" | "warming" | "batch"; static string */
const char *rte_slot_class_name(enum rte_slot_class cls);

/* rte_slot_class_parse - a class name to its value; -1 if unknown */
int rte_slot_class_parse(const char *name);

/* rte_slots_opts_init - fill o with the defaults above; any thread, no locks */
void rte_slots_opts_init(rte_slots_opts *o);

/*
 * rte_slots_new - a limiter on redis_url (NULL = RTE_REDIS_URL or the
 * default) with options o (NULL = defaults; copied). Connects lazily. NULL +
 * err on a malformed URL or options out of range. Any thread, no locks.
 */
rte_slots *rte_slots_new(const char *redis_url, const rte_slots_opts *o, char *err, size_t errlen);

/* rte_slots_lease_ms - the lease lifetime this limiter grants; any thread */
int rte_slots_lease_ms(const rte_slots *s);

/* rte_slots_free - close the pooled connections; no call may be in progress */
void rte_slots_free(rte_slots *s);

/*
 * rte_slots_acquire - take a real-time slot, waiting until the deadline
 * (rte_clock_mono_ms time; a deadline already past makes one attempt).
 * Returns 0 with *out filled, RTE_SLOTS_TIMEOUT, or RTE_SLOTS_ERROR with err
 * (then the caller must not call Stedi). Any thread; takes the pool mutex
 * briefly, blocks in Redis I/O and sleeps between polls.
 */
int rte_slots_acquire(rte_slots *s, enum rte_slot_class cls, int64_t deadline_mono_ms,
                      rte_slot_lease *out, char *err, size_t errlen);

/* told once, on the acquiring thread, that the first attempt found no slot and the caller waits */
typedef void (*rte_slots_wait_fn)(void *arg);

/*
 * rte_slots_acquire_notify - rte_slots_acquire that calls on_wait(arg)
 * (may be NULL) once, when the first attempt was not granted and the
 * caller is queued to wait (before the first sleep); not when the first
 * attempt is granted, fails or finds the deadline passed. For callers
 * that report queued work (the rte.enqueued event). Any thread.
 */
int rte_slots_acquire_notify(rte_slots *s, enum rte_slot_class cls, int64_t deadline_mono_ms,
                             rte_slots_wait_fn on_wait, void *arg, rte_slot_lease *out, char *err,
                             size_t errlen);

/*
 * rte_slots_release - give the slot back. 0, RTE_SLOTS_LOST if the lease had
 * already expired, or RTE_SLOTS_ERROR (logged; the lease then expires on its
 * own within lease_ms). Any thread; pool mutex briefly, blocking Redis I/O.
 */
int rte_slots_release(rte_slots *s, const rte_slot_lease *lease);

/*
 * rte_slots_renew - extend a held lease to lease_ms from now, for calls that
 * may outlast it. 0, RTE_SLOTS_LOST (expired: stop using the slot), or
 * RTE_SLOTS_ERROR (logged). Any thread; pool mutex briefly, blocking I/O.
 */
int rte_slots_renew(rte_slots *s, const rte_slot_lease *lease);

/*
 * rte_slots_in_use - unexpired leases cluster-wide (and per class into
 * by_class[3] when not NULL); -1 on a Redis error (logged). Any thread; pool
 * mutex briefly, blocking Redis I/O.
 */
int rte_slots_in_use(rte_slots *s, int *by_class);

#endif
