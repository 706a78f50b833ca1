/*
 * gw_core.h - the gateway's core: workers, single flight, the cluster lock,
 * deadlines, background refreshes and the async request store.
 *
 * The HTTP loop thread answers what L1 can answer and hands everything
 * else to gw_submit. A pool of worker threads reads Redis, decides (gw_
 * policy.h) and, when Stedi must be asked, joins the key's flight: the
 * first request for a key in this process becomes the flight's leader and
 * the others wait on it without holding a worker. The leader takes the
 * cluster-wide lock (SET NX PX on rte:gw:lock:<cache key>) so that one
 * replica calls Stedi while the others poll the cache for its answer; it
 * re-reads the cache after taking the lock, so a result that landed in the
 * meantime is used instead of a second call. A failed call leaves a short
 * failure marker so waiting replicas stop waiting instead of calling again.
 *
 * A sweeper thread answers every request whose deadline passed: with the
 * stale entry when one exists (stale-on-deadline), with 202 + Location when
 * the caller set Prefer: wait or respond-async (the call goes on and its
 * result lands in the cache and in the async store), else 504. Answers are
 * sent exactly once (first claim wins).
 *
 * Thread safety: every function may be called from any thread; the work
 * queue, flight table and deadline list each have one mutex, never held
 * during I/O.
 */
#ifndef GW_CORE_H
#define GW_CORE_H

#include <stddef.h>

#include "gw.h"

/* gw_core_start - start workers and the sweeper; -1 + err; init thread */
int gw_core_start(char *err, size_t errlen);

/* gw_core_stop - stop and join them, answer what is left; shutdown thread */
void gw_core_stop(void);

/* gw_req_new - a zeroed request holding one reference; NULL on OOM */
gw_req *gw_req_new(enum gw_kind kind);

/*
 * gw_req_init / gw_req_fini - the same for a request the caller holds (on
 * the stack, never shared): the loop thread answers L1 hits without
 * allocating, and hands the workers a gw_req_dup
 */
void gw_req_init(gw_req *r, enum gw_kind kind);
void gw_req_fini(gw_req *r);

/* gw_req_dup - a heap copy of src's inputs with its own lock and one reference; NULL on OOM */
gw_req *gw_req_dup(const gw_req *src);

/* gw_req_unref - drop a reference (frees on the last) */
void gw_req_unref(gw_req *r);

/*
 * gw_submit - queue r for a worker (takes over the caller's reference). A
 * request with an HTTP request is also put on the deadline list. -1 when
 * the queue is full (r untouched; the caller answers 503 and unrefs it).
 */
int gw_submit(gw_req *r);

/*
 * gw_ask - submit r (a heap request: takes over the caller's reference)
 * for a gRPC caller and wait until the core answers it into rpc - the same
 * answer, at the same deadline, an HTTP caller gets. live(arg) is asked
 * every 100 ms whether the client is still there; when it is not, r is
 * given up (answered, nobody told) and 1 returned. 0 when rpc holds the
 * answer; -1 when the queue is full (r released; answer UNAVAILABLE).
 * Blocks the calling thread; takes rpc's and r's mutexes.
 */
int gw_ask(gw_req *r, gw_rpc *rpc, int (*live)(void *arg), void *arg);

/* gw_refresh_async - queue one background refresh of r's key (copied) unless one is running */
void gw_refresh_async(const gw_req *r, const char *trigger);

/*
 * gw_render - send answer a to http (status, headers, JSON body) and
 * account it (metrics, access event). For the loop thread's fast path and
 * for workers holding a claimed request.
 */
void gw_render(const gw_req *r, const gw_answer *a, rte_http_req *http);

/* gw_answer_cached - the answer for serving entry e with the given result */
void gw_answer_cached(gw_answer *a, const rte_cache_entry *e, enum gw_result result,
                      int64_t now_ms);

/*
 * gw_answer_entry - the answer for serving cached entry e with result (HIT or
 * STALE), except that an error entry carrying the success it replaced
 * answers that success instead (STALE, detail stale-if-error) when the
 * caller accepts stale data on an error: a payer outage does not hide the
 * last good answer. ok is the storage for that success (a->e may point to it).
 */
void gw_answer_entry(gw_answer *a, const gw_policy *p, const rte_cache_entry *e,
                     enum gw_result result, rte_cache_entry *ok, int64_t now_ms);

/* gw_xfetch_now - XFetch test for a fresh entry, with the measured Stedi latency */
int gw_xfetch_now(const rte_cache_entry *e, int64_t now_ms);

#endif
