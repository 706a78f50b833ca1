/*
 * gw.h - the cache-gateway's shared state and request record.
 *
 * One process-wide struct (G) holds what init built: settings, the Stedi
 * client, the L1 cache, the member directory and the metric series. A
 * gw_req is one eligibility question on its way through the gateway: the
 * HTTP layer (gw_http.c) fills it, the core (gw_core.c) answers it from the
 * cache or through a Stedi call, and whoever answers first - the core, or
 * the deadline sweeper - sends the response exactly once (gw_req_claim).
 *
 * Thread safety: G is written only by init and shutdown; its atomics may
 * be read from any thread. A gw_req's inputs are immutable once queued; its
 * answer state is guarded by its own mutex.
 */
#ifndef GW_H
#define GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gw_l1.h"
#include "gw_policy.h"
#include "rte/cache_entry.h"
#include "rte/crypto.h"
#include "rte/http_server.h"
#include "rte/member_dir.h"
#include "rte/metrics.h"
#include "rte/stedi.h"

#define GW_ID_MAX 64   /* member id */
#define GW_TP_MAX 32   /* trading partner id */
#define GW_NAME_MAX 64 /* first/last name */
#define GW_ASYNC_ID 37 /* uuid + NUL */
#define GW_MAX_BODY (64 * 1024)
#define GW_ANSWER_MAX 8192 /* an encoded answer: every field at its limit, fully escaped, fits */
#define GW_EVENT_MAX 4096  /* an encoded rte.events event, likewise */

/* Settings read at start-up (docs/configuration.md, "## cache-gateway"). */
typedef struct gw_conf {
    int workers;                  /* gateway.workers */
    int queue_max;                /* gateway.queue_max */
    int64_t deadline_ms;          /* gateway.deadline: default caller deadline (real ms) */
    int64_t fetch_timeout_ms;     /* gateway.fetch_timeout: one Stedi exchange (real ms) */
    int64_t lock_ttl_ms;          /* gateway.lock_ttl */
    int64_t lock_poll_ms;         /* gateway.lock_poll */
    int64_t async_ttl_ms;         /* gateway.async_ttl */
    int64_t fail_hold_ms;         /* gateway.fail_hold */
    int64_t l1_entries;           /* gateway.l1_entries (0 = off) */
    int64_t l1_ttl_ms;            /* gateway.l1_ttl (<= 1 s): while invalidations may be missed */
    int64_t l1_ttl_subscribed_ms; /* gateway.l1_ttl_subscribed: while they arrive */
    double xfetch_beta;           /* gateway.xfetch_beta (0 = off) */
    int64_t xfetch_delta_ms;      /* gateway.xfetch_delta: delta before any measurement (sim ms) */
    const char *member_dir;       /* gateway.member_dir ("" = none) */
    int64_t access_window_ms;     /* gateway.access_window: tally accesses this long (0 = off) */
    int access_tallies;           /* gateway.access_tallies: tallies per window, at most */
} gw_conf;

enum gw_result { GW_R_HIT, GW_R_MISS, GW_R_STALE, GW_R_ERROR, GW_R_N };

typedef struct gw_metrics {
    rte_series *requests[GW_MODE_N][GW_R_N];    /* rte_cache_control_requests_total{mode,result} */
    rte_series *mode_duration[GW_MODE_N];       /* rte_cache_control_duration_seconds{mode} */
    rte_series *response[GW_R_N];               /* rte_response_duration_seconds{cache} */
    rte_series *hit, *miss;                     /* rte_cache_hit_total, rte_cache_miss_total */
    rte_series *age;                            /* rte_cache_age_seconds */
    rte_metric *degraded;                       /* rte_gateway_degraded_total{reason} */
    rte_metric *flights;                        /* rte_gateway_singleflight_total{role} */
    rte_metric *lock;                           /* rte_gateway_lock_total{result} */
    rte_metric *refresh;                        /* rte_gateway_refresh_total{trigger,result} */
    rte_metric *async;                          /* rte_gateway_async_total{trigger} */
    rte_series *l1_hit, *l1_miss;               /* rte_gateway_l1_total{result} */
    rte_series *l1_inval;                       /* rte_gateway_l1_invalidations_total */
    rte_series *l1_subscribed;                  /* rte_gateway_l1_subscribed */
    rte_series *events_queued, *events_dropped; /* rte_gateway_events_total{result} */
    rte_series *access_tallied, *access_alone;  /* rte_gateway_access_total{sent} */
    rte_series *queue_depth;                    /* rte_gateway_queue_depth */
} gw_metrics;

typedef struct gw_state {
    gw_conf conf;
    rte_cache_settings cache;
    rte_stedi *stedi;
    gw_l1 *l1;
    rte_redis_sub *invalidations; /* RTE_CACHE_WRITTEN_CHANNEL -> gw_l1_drop */
    rte_member_dir *dir;
    gw_metrics m;
    struct gw_access_table *access; /* access tallies; NULL = one event per access */
    _Atomic int64_t delta_ms;       /* XFetch delta: smoothed Stedi latency, simulated ms */
} gw_state;

extern gw_state G;

/*
 * A gRPC caller waiting for its answer (gw_grpc.c): the core fills it with
 * what it would have rendered on HTTP (status, result, a copy of the entry
 * served, or the error message) and signals. It lives on the gRPC
 * handler's stack; gw_ask (gw_core.h) guarantees the core is done with it
 * before the handler returns.
 */
typedef struct gw_rpc {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status; /* the HTTP status the same request gets */
    enum gw_result result;
    int have_entry; /* e holds the entry served */
    int cached;     /* _metadata.cached */
    int revalidating;
    rte_cache_entry e;
    char message[400]; /* error answers */
    int64_t now_ms;
} gw_rpc;

/* What a request is for. */
enum gw_kind { GW_CHECK, GW_REFRESH, GW_STATUS };

typedef struct gw_req {
    enum gw_kind kind;
    /* inputs, immutable once queued */
    char member_id[GW_ID_MAX + 1];
    char tp[GW_TP_MAX + 1];
    char first_name[GW_NAME_MAX + 1], last_name[GW_NAME_MAX + 1];
    char dob[11];
    char npi[11], org[81]; /* "" = the Stedi client's defaults */
    char key[RTE_CACHE_KEY_MAX];
    char member_key[RTE_MEMBER_KEY_LEN + 1];
    char request_id[64];
    const char *trigger; /* "request", "swr", "xfetch" (static) */
    gw_policy pol;
    int64_t t0_mono, deadline_mono;
    int callers_deadline; /* the caller set Prefer: wait */
    /* answer state, under mu */
    pthread_mutex_t mu;
    int answered;
    rte_http_req *http; /* NULL once answered or for background work */
    gw_rpc *rpc;        /* a gRPC caller instead of http; NULL once answered */
    char async_id[GW_ASYNC_ID];
    gw_lookup seen; /* what the cache held when read */
    rte_cache_entry stale;
    int have_entry;
    /* links */
    atomic_int refs;
    struct gw_req *qnext;         /* work queue */
    struct gw_req *pnext, *pprev; /* deadline list */
    int pending;                  /* on the deadline list (sweeper mutex) */
    struct gw_req *wnext;         /* flight waiters */
} gw_req;

/* An answer, ready to render. */
typedef struct gw_answer {
    int status;
    enum gw_result result;
    const rte_cache_entry *e; /* NULL for errors */
    int cached;               /* _metadata.cached */
    int hit;                  /* Cache-Status hit */
    enum gw_fwd fwd;
    int fwd_status;
    int stored;
    const char *detail;  /* Cache-Status detail, may be NULL */
    const char *message; /* error message */
    int64_t now_ms;
    int revalidating; /* a background refresh of the entry was started */
} gw_answer;

#endif
