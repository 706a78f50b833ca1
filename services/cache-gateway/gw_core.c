/*
 * gw_core.c - workers, single flight, cluster lock, deadlines, refreshes.
 *
 * Contract in gw_core.h. Data structures, each under its own mutex:
 *
 *   queue     FIFO of gw_req for the workers (bounded by gateway.queue_max).
 *   flights   hash table key -> flight {leader's request, waiters, the
 *             cached_at the leader saw}. Joining a running flight costs no
 *             worker: the waiter is answered when the flight ends.
 *   pending   every request still holding an HTTP request or a waiting
 *             gRPC caller, for the sweeper, which scans it every few ms
 *             for passed deadlines.
 *
 * Answers go to the request's HTTP request (gw_render) or, for gRPC
 * CheckEligibility, into its gw_rpc (the same answer, accounted the same
 * way, handed to the waiting handler): everything before - single flight,
 * lock, slot class, deadlines, stale-on-deadline - is one code path.
 *
 * Redis keys besides the cache's own (whose names only cache_entry.c
 * builds; these only prefix them): rte:gw:lock:<cache key> (leader's token,
 * PX gateway.lock_ttl), rte:gw:fail:<cache key> (why the last call failed,
 * PX gateway.fail_hold), rte:gw:req:<uuid> (async request state, PX
 * gateway.async_ttl).
 *
 * Redis unreachable: reads count as misses (degraded, counted in
 * rte_gateway_degraded_total), CACHE_ONLY answers 503; a flight goes ahead
 * without the lock, but the slot limiter needs Redis too, so Stedi is not
 * called and the answer is 503 naming the cause (no slot, no call).
 */
#include "gw_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_events.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"

#define NBUCKETS 1024
#define MAX_WORKERS 256
#define LOCK_PREFIX "rte:gw:lock:"
#define FAIL_PREFIX "rte:gw:fail:"
#define REQ_PREFIX "rte:gw:req:"
/* how often a waiting gRPC caller checks that its client is still there */
#define ASK_POLL_MS 100

static const char *const result_names[GW_R_N] = {"HIT", "MISS", "STALE", "ERROR"};

struct flight {
    char key[RTE_CACHE_KEY_MAX];
    gw_req *lead;    /* details for the Stedi check (a reference) */
    gw_req *waiters; /* each holds a reference; lead included */
    int64_t baseline_ms;
    struct flight *next;
};

enum fl_kind { FL_FETCHED, FL_FOUND, FL_FAIL, FL_REQUEUE };

struct fl_result {
    enum fl_kind kind;
    rte_cache_entry e;
    int stored;
    enum rte_stedi_outcome outcome;
    char message[300];
};

static struct {
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    gw_req *qhead, *qtail;
    int qlen;
    int stopping;
    pthread_t workers[MAX_WORKERS];
    int nworkers;

    pthread_mutex_t fmu;
    struct flight *buckets[NBUCKETS];

    pthread_mutex_t pmu;
    pthread_cond_t pcv;
    gw_req *phead;
    pthread_t sweeper;
    int sweeper_started;
} C = {.qmu = PTHREAD_MUTEX_INITIALIZER,
       .qcv = PTHREAD_COND_INITIALIZER,
       .fmu = PTHREAD_MUTEX_INITIALIZER,
       .pmu = PTHREAD_MUTEX_INITIALIZER,
       .pcv = PTHREAD_COND_INITIALIZER};

static atomic_int stopping_flag;

/* ---- small helpers ----------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* a uniform double in (0,1], per-thread xorshift seeded from the OS */
static double uniform(void)
{
    static _Thread_local uint64_t x;
    if (x == 0 && (rte_random_bytes(&x, sizeof x) != 0 || x == 0))
        x = (uint64_t)rte_clock_mono_ms() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return ((double)(x >> 11) + 1.0) / 9007199254740992.0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* gw_req_init - any thread */
void gw_req_init(gw_req *r, enum gw_kind kind)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->trigger = "request";
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->refs, 1);
    gw_policy_init(&r->pol);
}

/* gw_req_fini - any thread */
void gw_req_fini(gw_req *r)
{
    pthread_mutex_destroy(&r->mu);
}

/* gw_req_new - any thread */
gw_req *gw_req_new(enum gw_kind kind)
{
    gw_req *r = malloc(sizeof *r);
    if (r != NULL)
        gw_req_init(r, kind);
    return r;
}

/* gw_req_dup - any thread */
gw_req *gw_req_dup(const gw_req *src)
{
    gw_req *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    memcpy(r, src, sizeof *r);
    pthread_mutex_init(&r->mu, NULL); /* its own lock and reference, nothing shared with src */
    atomic_init(&r->refs, 1);
    r->http = NULL;
    r->rpc = NULL;
    r->qnext = r->pnext = r->pprev = r->wnext = NULL;
    r->pending = 0;
    return r;
}

static gw_req *ref(gw_req *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

/* gw_req_unref - any thread */
void gw_req_unref(gw_req *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void degraded(const char *reason)
{
    rte_counter_inc(G.m.degraded, (const char *const[]){reason});
}

/* ---- deadline list ------------------------------------------------------ */

static void pending_add(gw_req *r)
{
    pthread_mutex_lock(&C.pmu);
    r->pending = 1;
    r->pprev = NULL;
    r->pnext = C.phead;
    if (C.phead)
        C.phead->pprev = r;
    C.phead = ref(r);
    pthread_mutex_unlock(&C.pmu);
}

/* 1 if r was on the list (the caller then owns the list's reference) */
static int pending_remove_locked(gw_req *r)
{
    if (!r->pending)
        return 0;
    r->pending = 0;
    if (r->pprev)
        r->pprev->pnext = r->pnext;
    else
        C.phead = r->pnext;
    if (r->pnext)
        r->pnext->pprev = r->pprev;
    r->pnext = r->pprev = NULL;
    return 1;
}

static void pending_remove(gw_req *r)
{
    pthread_mutex_lock(&C.pmu);
    int had = pending_remove_locked(r);
    pthread_mutex_unlock(&C.pmu);
    if (had)
        gw_req_unref(r);
}

/*
 * claim - take the right to answer r. Returns its HTTP request when this
 * caller must respond (and takes r off the deadline list), else NULL, with
 * *rpc (when rpc is not NULL) the waiting gRPC caller instead, if any;
 * async_id receives the async request id when r was answered with 202.
 */
static rte_http_req *claim(gw_req *r, char async_id[GW_ASYNC_ID], gw_rpc **rpc)
{
    rte_http_req *http = NULL;
    gw_rpc *waiting = NULL;

    pthread_mutex_lock(&r->mu);
    if (!r->answered) {
        r->answered = 1;
        http = r->http;
        waiting = r->rpc;
        r->http = NULL;
        r->rpc = NULL;
    }
    if (async_id != NULL)
        memcpy(async_id, r->async_id, GW_ASYNC_ID);
    pthread_mutex_unlock(&r->mu);
    if (http != NULL || waiting != NULL)
        pending_remove(r);
    if (rpc != NULL)
        *rpc = waiting;
    return http;
}

/* ---- rendering and accounting ------------------------------------------ */

/* benefits: {"30": {status, status_code, copay: {in_network: 20, ...}, ...}} (cache_entry.h) */
static void write_benefits(rte_jsonw *w, const rte_cache_entry *e)
{
    if (e->nbenefits <= 0)
        return;
    rte_jsonw_begin(w, "benefits");
    for (int i = 0; i < e->nbenefits && i < RTE_CACHE_SERVICE_TYPES_MAX; i++) {
        const rte_cache_benefit *b = &e->benefits[i];
        rte_jsonw_begin(w, b->service_type);
        rte_jsonw_str(w, "status", b->status);
        if (b->status_code[0])
            rte_jsonw_str(w, "status_code", b->status_code);
        for (int k = 0; k < RTE_BENEFIT_NKINDS; k++) {
            int open = 0;
            for (int n = 0; n < RTE_NET_N; n++) {
                rte_cache_range r;
                const char *net = rte_cache_network_name((enum rte_benefit_network)n);
                if (!rte_cache_benefit_get(b, (enum rte_benefit_kind)k, (enum rte_benefit_network)n,
                                           &r))
                    continue;
                if (!open++)
                    rte_jsonw_begin(w, rte_cache_benefit_kind_name((enum rte_benefit_kind)k));
                if (r.lo == r.hi) {
                    rte_jsonw_num(w, net, r.lo / 100.0);
                } else {
                    rte_jsonw_begin(w, net);
                    rte_jsonw_num(w, "min", r.lo / 100.0);
                    rte_jsonw_num(w, "max", r.hi / 100.0);
                    rte_jsonw_end(w);
                }
            }
            if (open)
                rte_jsonw_end(w);
        }
        rte_jsonw_end(w);
    }
    rte_jsonw_end(w);
}

static void write_entry_fields(rte_jsonw *w, const rte_cache_entry *e)
{
    rte_jsonw_bool(w, "eligible", e->eligible);
    if (e->has_copay)
        rte_jsonw_num(w, "copay_amount", e->copay_amount);
    else
        rte_jsonw_null(w, "copay_amount");
    rte_jsonw_str(w, "network_status", e->network_status);
    rte_jsonw_str(w, "coverage_start", e->coverage_start);
    rte_jsonw_str(w, "coverage_end", e->coverage_end);
    rte_jsonw_str(w, "eligibility_start", e->eligibility_start);
    rte_jsonw_str(w, "eligibility_end", e->eligibility_end);
    write_benefits(w, e);
    if (e->is_error) {
        rte_jsonw_begin(w, "error");
        rte_jsonw_str(w, "code", e->error_code);
        rte_jsonw_str(w, "message", e->error_message);
        if (e->error_followup[0])
            rte_jsonw_str(w, "followup_action", e->error_followup);
        rte_jsonw_bool(w, "retry", e->error_retry);
        if (e->error_origin[0])
            rte_jsonw_str(w, "origin", e->error_origin);
        rte_jsonw_end(w);
    }
}

/* the response body of answer a to request r, as member key of w's open object (NULL: the
 * document) */
static void write_answer(rte_jsonw *w, const char *key, const gw_req *r, const gw_answer *a)
{
    char ts[40];

    rte_jsonw_begin(w, key);
    if (a->e == NULL) {
        rte_jsonw_begin(w, "error");
        rte_jsonw_int(w, "status", a->status);
        rte_jsonw_str(w, "message", a->message ? a->message : "");
        rte_jsonw_end(w);
    }
    rte_jsonw_str(w, "member_id", r->member_id);
    rte_jsonw_str(w, "trading_partner_id", r->tp);
    if (a->e != NULL)
        write_entry_fields(w, a->e);
    rte_jsonw_str(w, "cache_status", result_names[a->result]);
    if (a->e != NULL) {
        rte_jsonw_begin(w, "_metadata");
        rte_jsonw_bool(w, "cached", a->cached);
        rte_jsonw_int(w, "age_seconds", rte_cache_entry_age_s(a->e, a->now_ms));
        rte_clock_format(a->e->fresh_until_ms, ts, sizeof ts);
        rte_jsonw_str(w, "expires_at", ts);
        rte_clock_format(a->e->cached_at_ms, ts, sizeof ts);
        rte_jsonw_str(w, "cached_at", ts);
        rte_jsonw_str(w, "source", a->e->source);
        rte_jsonw_str(w, "mode", gw_mode_name(r->pol.mode));
        rte_jsonw_end(w);
    }
    rte_jsonw_str(w, "request_id", r->request_id);
    rte_jsonw_end(w);
}

static void account(const gw_req *r, const gw_answer *a)
{
    double secs = (double)(rte_clock_mono_ms() - r->t0_mono) / 1000.0;

    rte_series_inc(G.m.requests[r->pol.mode][a->result]);
    rte_series_observe(G.m.mode_duration[r->pol.mode], secs);
    rte_series_observe(G.m.response[a->result], secs);
    if (a->result == GW_R_HIT || a->result == GW_R_STALE) {
        rte_series_inc(G.m.hit);
        if (a->e != NULL)
            rte_series_observe(G.m.age, (double)rte_cache_entry_age_s(a->e, a->now_ms));
    } else if (a->result == GW_R_MISS) {
        rte_series_inc(G.m.miss);
    }
    gw_event_access(r, a->result, a->e, rte_clock_mono_ms() - r->t0_mono);
}

/* gw_render - loop thread (fast path) or the claiming thread */
void gw_render(const gw_req *r, const gw_answer *a, rte_http_req *http)
{
    char buf[200], body[GW_ANSWER_MAX];
    rte_jsonw w;
    int n;

    if (a->e != NULL) {
        gw_cache_control_header(a->e, G.cache.freshness.physical_ms, buf, sizeof buf);
        rte_http_add_header(http, "Cache-Control", buf);
        rte_http_add_header(http, "Age", rte_int_text(rte_cache_entry_age_s(a->e, a->now_ms), buf));
    } else {
        rte_http_add_header(http, "Cache-Control", "no-store");
    }
    gw_cache_status_header(a->hit, a->fwd, a->fwd_status, a->stored, a->e, a->now_ms, a->detail,
                           buf, sizeof buf);
    rte_http_add_header(http, "Cache-Status", buf);
    rte_jsonw_init(&w, body, sizeof body);
    write_answer(&w, NULL, r, a);
    n = rte_jsonw_done(&w);
    account(r, a);
    if (n < 0) {
        rte_log_error("answer for request %s exceeds %d bytes", r->request_id, GW_ANSWER_MAX);
        rte_http_error(http, 500, "the answer could not be encoded");
        return;
    }
    rte_http_respond(http, a->status, "application/json", body, (size_t)n);
}

/* hand answer a to the gRPC caller waiting in rpc, accounted as gw_render accounts it */
static void render_rpc(const gw_req *r, const gw_answer *a, gw_rpc *rpc)
{
    account(r, a);
    pthread_mutex_lock(&rpc->mu);
    rpc->status = a->status;
    rpc->result = a->result;
    rpc->have_entry = a->e != NULL;
    if (a->e != NULL)
        rpc->e = *a->e;
    rpc->cached = a->cached;
    rpc->revalidating = a->revalidating;
    snprintf(rpc->message, sizeof rpc->message, "%s", a->message ? a->message : "");
    rpc->now_ms = a->now_ms;
    rpc->done = 1;
    pthread_cond_signal(&rpc->cv);
    pthread_mutex_unlock(&rpc->mu);
}

/* gw_answer_cached - pure */
void gw_answer_cached(gw_answer *a, const rte_cache_entry *e, enum gw_result result, int64_t now_ms)
{
    memset(a, 0, sizeof *a);
    a->status = 200;
    a->result = result;
    a->e = e;
    a->cached = 1;
    a->hit = 1;
    a->now_ms = now_ms;
}

/*
 * 1 and *ok = the success e is (or, for an error entry, carries) when the
 * caller accepts it in place of an error (stale-if-error, max-stale,
 * PREFER_CACHED, SWR)
 */
static int success_on_error(const gw_policy *p, const rte_cache_entry *e, rte_cache_entry *ok,
                            int64_t now_ms)
{
    gw_lookup l = {.present = 1};

    if (e->is_error) {
        if (!rte_cache_entry_last_success(e, ok))
            return 0;
    } else {
        *ok = *e;
    }
    l.cached_at_ms = ok->cached_at_ms;
    l.fresh_until_ms = ok->fresh_until_ms;
    return gw_stale_usable_on_error(p, &l, now_ms);
}

/* gw_answer_entry - pure */
void gw_answer_entry(gw_answer *a, const gw_policy *p, const rte_cache_entry *e,
                     enum gw_result result, rte_cache_entry *ok, int64_t now_ms)
{
    if (e->is_error && success_on_error(p, e, ok, now_ms)) {
        gw_answer_cached(a, ok, GW_R_STALE, now_ms);
        a->detail = "stale-if-error";
        return;
    }
    gw_answer_cached(a, e, result, now_ms);
}

static void error_answer(gw_answer *a, int status, const char *message)
{
    memset(a, 0, sizeof *a);
    a->status = status;
    a->result = GW_R_ERROR;
    a->message = message;
    a->now_ms = rte_clock_now_ms();
}

/* ---- async request store ----------------------------------------------- */

/* store the async request's state (JSON text in w) under its id; -1 when not stored */
static int store_state(const char *id, rte_jsonw *w, int nx)
{
    char key[80], px[24], err[256];
    redisReply *rep;

    if (rte_jsonw_done(w) < 0) {
        rte_log_error("async request %s: state exceeds %zu bytes; not stored", id, w->cap);
        return -1;
    }
    snprintf(key, sizeof key, REQ_PREFIX "%s", id);
    snprintf(px, sizeof px, "%lld", (long long)G.conf.async_ttl_ms);
    if (nx)
        rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "SET %s %s PX %s NX", key, w->buf,
                            px);
    else
        rep =
            rte_redis_cmd(rte_service_redis(), err, sizeof err, "SET %s %s PX %s", key, w->buf, px);
    if (rep == NULL) {
        rte_log_warn("async request %s: state not stored: %s", id, err);
        degraded("async_store");
        return -1;
    }
    freeReplyObject(rep);
    return 0;
}

static int store_pending(const gw_req *r, const char *id)
{
    char ts[40], text[512];
    rte_jsonw w;

    rte_clock_format(rte_clock_now_ms(), ts, sizeof ts);
    rte_jsonw_init(&w, text, sizeof text);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_str(&w, "status", "pending");
    rte_jsonw_str(&w, "request_id", id);
    rte_jsonw_str(&w, "trading_partner_id", r->tp);
    rte_jsonw_str(&w, "submitted_at", ts);
    rte_jsonw_end(&w);
    return store_state(id, &w, 1);
}

static void store_done(const gw_req *r, const char *id, const gw_answer *a)
{
    char text[GW_ANSWER_MAX + 256];
    rte_jsonw w;

    rte_jsonw_init(&w, text, sizeof text);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_str(&w, "status", "done");
    rte_jsonw_str(&w, "request_id", id);
    rte_jsonw_int(&w, "http_status", a->status);
    write_answer(&w, "response", r, a);
    rte_jsonw_end(&w);
    store_state(id, &w, 0);
}

/* answer 202 with Location for async id on http */
static void respond_accepted(gw_req *r, rte_http_req *http, const char *id)
{
    char loc[96];
    cJSON *doc = cJSON_CreateObject();
    gw_answer a;

    snprintf(loc, sizeof loc, "/v1/eligibility/requests/%s", id);
    rte_http_add_header(http, "Location", loc);
    rte_http_add_header(http, "Retry-After", "1");
    if (r->pol.respond_async)
        rte_http_add_header(http, "Preference-Applied", "respond-async");
    rte_http_add_header(http, "Cache-Control", "no-store");
    rte_http_add_header(http, "Cache-Status", "rte-gateway; fwd=miss");
    cJSON_AddStringToObject(doc, "status", "pending");
    cJSON_AddStringToObject(doc, "request_id", id);
    cJSON_AddStringToObject(doc, "location", loc);
    cJSON_AddStringToObject(doc, "member_id", r->member_id);
    cJSON_AddStringToObject(doc, "trading_partner_id", r->tp);
    cJSON_AddStringToObject(doc, "cache_status", "MISS");
    memset(&a, 0, sizeof a);
    a.result = GW_R_MISS;
    a.now_ms = rte_clock_now_ms();
    account(r, &a);
    rte_counter_inc(G.m.async, (const char *const[]){r->pol.respond_async ? "prefer" : "deadline"});
    rte_http_respond_json(http, 202, doc);
    cJSON_Delete(doc);
}

/*
 * go_async - answer r with 202 now (unless already answered); its result
 * will land in the async store. Returns 1 if it answered.
 */
static int go_async(gw_req *r)
{
    char id[GW_ASYNC_ID];
    rte_http_req *http = NULL;

    rte_uuid4(id);
    if (store_pending(r, id) != 0)
        return 0;
    pthread_mutex_lock(&r->mu);
    if (!r->answered && r->http != NULL) { /* a gRPC caller has no request to poll */
        r->answered = 1;
        http = r->http;
        r->http = NULL;
        memcpy(r->async_id, id, GW_ASYNC_ID);
    }
    pthread_mutex_unlock(&r->mu);
    if (http == NULL)
        return 0;
    pending_remove(r);
    respond_accepted(r, http, id);
    return 1;
}

/* deliver - answer r with a: respond if still unanswered, else update its async state */
static void deliver(gw_req *r, const gw_answer *a)
{
    char aid[GW_ASYNC_ID];
    gw_rpc *rpc;
    rte_http_req *http = claim(r, aid, &rpc);

    if (http != NULL)
        gw_render(r, a, http);
    else if (rpc != NULL)
        render_rpc(r, a, rpc);
    else if (aid[0] != '\0')
        store_done(r, aid, a);
}

/* ---- the queue ------------------------------------------------------------ */

/* gw_submit - any thread */
int gw_submit(gw_req *r)
{
    pthread_mutex_lock(&C.qmu);
    if (C.stopping || C.qlen >= G.conf.queue_max) {
        pthread_mutex_unlock(&C.qmu);
        return -1;
    }
    if (r->http != NULL || r->rpc != NULL)
        pending_add(r);
    r->qnext = NULL;
    if (C.qtail)
        C.qtail->qnext = r;
    else
        C.qhead = r;
    C.qtail = r;
    C.qlen++;
    rte_series_set(G.m.queue_depth, C.qlen);
    pthread_cond_signal(&C.qcv);
    pthread_mutex_unlock(&C.qmu);
    return 0;
}

static gw_req *pop(void)
{
    gw_req *r;
    pthread_mutex_lock(&C.qmu);
    while (C.qhead == NULL && !C.stopping)
        pthread_cond_wait(&C.qcv, &C.qmu);
    r = C.qhead;
    if (r != NULL) {
        C.qhead = r->qnext;
        if (C.qhead == NULL)
            C.qtail = NULL;
        C.qlen--;
        rte_series_set(G.m.queue_depth, C.qlen);
    }
    pthread_mutex_unlock(&C.qmu);
    return r;
}

/* gw_refresh_async - any thread */
void gw_refresh_async(const gw_req *src, const char *trigger)
{
    gw_req *r = gw_req_new(GW_REFRESH);
    if (r == NULL)
        return;
    memcpy(r->member_id, src->member_id, sizeof r->member_id);
    memcpy(r->tp, src->tp, sizeof r->tp);
    memcpy(r->first_name, src->first_name, sizeof r->first_name);
    memcpy(r->last_name, src->last_name, sizeof r->last_name);
    memcpy(r->dob, src->dob, sizeof r->dob);
    memcpy(r->npi, src->npi, sizeof r->npi);
    memcpy(r->org, src->org, sizeof r->org);
    memcpy(r->key, src->key, sizeof r->key);
    memcpy(r->member_key, src->member_key, sizeof r->member_key);
    memcpy(r->request_id, src->request_id, sizeof r->request_id);
    r->seen = src->seen;
    r->trigger = trigger;
    r->t0_mono = rte_clock_mono_ms();
    r->deadline_mono = r->t0_mono + G.conf.fetch_timeout_ms;
    if (gw_submit(r) != 0) {
        rte_counter_inc(G.m.refresh, (const char *const[]){trigger, "queue_full"});
        gw_req_unref(r);
    }
}

/* gw_xfetch_now - any thread */
int gw_xfetch_now(const rte_cache_entry *e, int64_t now_ms)
{
    if (G.conf.xfetch_beta <= 0 || e->is_error)
        return 0;
    return gw_xfetch(now_ms, e->fresh_until_ms, (double)atomic_load(&G.delta_ms),
                     G.conf.xfetch_beta, uniform());
}

/* ---- the cluster lock ---------------------------------------------------- */

/* 1 acquired, 0 held by someone else, -1 Redis error */
static int lock_try(const char *key, const char *token)
{
    char lk[RTE_CACHE_KEY_MAX + 16], px[24], err[256];
    redisReply *rep;
    int got;

    snprintf(lk, sizeof lk, LOCK_PREFIX "%s", key);
    snprintf(px, sizeof px, "%lld", (long long)G.conf.lock_ttl_ms);
    rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "SET %s %s NX PX %s", lk, token, px);
    if (rep == NULL)
        return -1;
    got = rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    return got;
}

static void lock_release(const char *key, const char *token)
{
    static const char lua[] = "if redis.call('get', KEYS[1]) == ARGV[1] then "
                              "return redis.call('del', KEYS[1]) else return 0 end";
    char lk[RTE_CACHE_KEY_MAX + 16], err[256];
    redisReply *rep;

    snprintf(lk, sizeof lk, LOCK_PREFIX "%s", key);
    rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "EVAL %s 1 %s %s", lua, lk, token);
    if (rep == NULL)
        rte_log_warn("lock %s not released (%s); it expires on its own", lk, err);
    else
        freeReplyObject(rep);
}

/* 1 the lock exists, 0 it does not, -1 error; *failure filled from the failure marker */
static int lock_state(const char *key, char *failure, size_t flen)
{
    char lk[RTE_CACHE_KEY_MAX + 16], fk[RTE_CACHE_KEY_MAX + 16], err[256];
    redisReply *rep;
    int exists;

    snprintf(lk, sizeof lk, LOCK_PREFIX "%s", key);
    snprintf(fk, sizeof fk, FAIL_PREFIX "%s", key);
    failure[0] = '\0';
    rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "EXISTS %s", lk);
    if (rep == NULL)
        return -1;
    exists = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    if (exists)
        return 1;
    rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "GET %s", fk);
    if (rep == NULL)
        return -1;
    if (rep->type == REDIS_REPLY_STRING)
        snprintf(failure, flen, "%.*s", (int)rep->len, rep->str);
    freeReplyObject(rep);
    return 0;
}

static void mark_failure(const char *key, const char *message)
{
    char fk[RTE_CACHE_KEY_MAX + 16], px[24], err[256];
    redisReply *rep;

    snprintf(fk, sizeof fk, FAIL_PREFIX "%s", key);
    snprintf(px, sizeof px, "%lld", (long long)G.conf.fail_hold_ms);
    rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "SET %s %s PX %s", fk, message, px);
    if (rep != NULL)
        freeReplyObject(rep);
}

/* ---- flights -------------------------------------------------------------- */

/*
 * join - attach r to the running flight for its key (returns NULL), or
 * start one led by r (returns it). Refresh requests never join: when a
 * flight runs, the key is already being refreshed (returns NULL, r unused).
 */
static struct flight *join(gw_req *r, int *joined)
{
    size_t b = (size_t)(fnv1a(r->key) % NBUCKETS);
    struct flight *f;

    *joined = 0;
    pthread_mutex_lock(&C.fmu);
    for (f = C.buckets[b]; f != NULL; f = f->next)
        if (strcmp(f->key, r->key) == 0)
            break;
    if (f != NULL) {
        if (r->kind != GW_REFRESH) {
            r->wnext = f->waiters;
            f->waiters = ref(r);
            *joined = 1;
        }
        pthread_mutex_unlock(&C.fmu);
        return NULL;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL) {
        pthread_mutex_unlock(&C.fmu);
        return NULL;
    }
    memcpy(f->key, r->key, sizeof f->key);
    f->lead = ref(r);
    r->wnext = NULL;
    f->waiters = ref(r);
    f->baseline_ms = r->seen.present ? r->seen.cached_at_ms : 0;
    f->next = C.buckets[b];
    C.buckets[b] = f;
    pthread_mutex_unlock(&C.fmu);
    return f;
}

/* 1 while some waiter is a caller's request (not only background refreshes) */
static int has_callers(const struct flight *f)
{
    int yes = 0;
    pthread_mutex_lock(&C.fmu);
    for (const gw_req *w = f->waiters; w != NULL; w = w->wnext)
        if (w->kind == GW_CHECK)
            yes = 1;
    pthread_mutex_unlock(&C.fmu);
    return yes;
}

/* unlink f and take its waiters */
static gw_req *land(struct flight *f)
{
    size_t b = (size_t)(fnv1a(f->key) % NBUCKETS);
    gw_req *w;

    pthread_mutex_lock(&C.fmu);
    for (struct flight **pp = &C.buckets[b]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    w = f->waiters;
    f->waiters = NULL;
    pthread_mutex_unlock(&C.fmu);
    return w;
}

static int failure_status(const struct fl_result *res)
{
    switch (res->outcome) {
    case RTE_STEDI_TIMEOUT:
        return 504;
    case RTE_STEDI_NO_SLOT:
        return strstr(res->message, "before the deadline") != NULL ? 504 : 503;
    default:
        return 502;
    }
}

/* answer one waiter with the flight's result */
/*
 * answer w with what it read from the cache when its fetch ended in an error
 * (fwd_status: what Stedi's side amounted to) and the caller accepts stale
 * data on an error: the success it read or the one its error entry carries,
 * else the stale error entry itself. 0 when there is none to give.
 */
static int stale_if_error(gw_req *w, int fwd_status, int64_t now)
{
    rte_cache_entry ok;
    gw_answer a;

    if (!w->have_entry)
        return 0;
    if (success_on_error(&w->pol, &w->stale, &ok, now))
        gw_answer_cached(&a, &ok, GW_R_STALE, now);
    else if (w->stale.is_error && fwd_status != 200 &&
             gw_stale_usable_on_error(&w->pol, &w->seen, now))
        gw_answer_cached(&a, &w->stale, GW_R_STALE, now);
    else
        return 0;
    a.hit = 0;
    a.fwd = GW_FWD_STALE;
    a.fwd_status = fwd_status;
    a.detail = "stale-if-error";
    deliver(w, &a);
    return 1;
}

static void answer_waiter(gw_req *w, const struct fl_result *res)
{
    gw_answer a;
    char msg[400];
    int64_t now = rte_clock_now_ms();

    if (w->kind != GW_CHECK)
        return;
    if (res->kind == FL_REQUEUE) {
        pthread_mutex_lock(&w->mu);
        int live = !w->answered || w->async_id[0] != '\0';
        pthread_mutex_unlock(&w->mu);
        if (live && gw_submit(ref(w)) != 0) {
            gw_req_unref(w);
            error_answer(&a, 503, "the gateway is overloaded; retry later");
            deliver(w, &a);
        }
        return;
    }
    /* a payer error (an error entry) while the caller accepts the success it had */
    if ((res->kind == FL_FETCHED || res->kind == FL_FOUND) && res->e.is_error &&
        stale_if_error(w, 200, now))
        return;
    if (res->kind == FL_FETCHED || res->kind == FL_FOUND) {
        memset(&a, 0, sizeof a);
        a.status = 200;
        a.result = GW_R_MISS;
        a.e = &res->e;
        a.cached = res->kind == FL_FOUND;
        a.fwd = w->pol.mode == GW_MODE_BYPASS_CACHE ? GW_FWD_BYPASS
                : w->have_entry                     ? GW_FWD_STALE
                                                    : GW_FWD_MISS;
        a.fwd_status = 200;
        a.stored = res->stored;
        a.detail = res->kind == FL_FOUND ? "filled-by-peer" : NULL;
        a.now_ms = now;
        deliver(w, &a);
        return;
    }
    /* the call failed: stale-if-error, else the reason */
    if (stale_if_error(w, failure_status(res), now))
        return;
    snprintf(msg, sizeof msg, "Stedi check failed (%s): %s", rte_stedi_outcome_name(res->outcome),
             res->message);
    error_answer(&a, failure_status(res), msg);
    deliver(w, &a);
}

static void finish_flight(struct flight *f, const struct fl_result *res)
{
    gw_req *w = land(f);
    while (w != NULL) {
        gw_req *next = w->wnext;
        answer_waiter(w, res);
        gw_req_unref(w);
        w = next;
    }
    gw_req_unref(f->lead);
    free(f);
}

struct started_ctx {
    const gw_req *lead;
    int64_t t0;
};

static void on_started(void *arg, const rte_slot_lease *lease)
{
    struct started_ctx *c = arg;
    (void)lease;
    int64_t wait = rte_clock_mono_ms() - c->t0;
    gw_event_lifecycle("rte.scheduled", c->lead->member_key, c->lead->tp, c->lead->trigger,
                       c->lead->request_id, wait, NULL, NULL);
    gw_event_lifecycle("rte.started", c->lead->member_key, c->lead->tp, c->lead->trigger,
                       c->lead->request_id, wait, NULL, NULL);
}

/* no slot was free at once: the check waits in the interactive queue */
static void on_enqueued(void *arg)
{
    struct started_ctx *c = arg;
    gw_event_lifecycle("rte.enqueued", c->lead->member_key, c->lead->tp, c->lead->trigger,
                       c->lead->request_id, -1, NULL, NULL);
}

/* the Stedi call itself, lock held (or Redis down); fills res */
static void call_stedi(struct flight *f, struct fl_result *res)
{
    const gw_req *l = f->lead;
    rte_stedi_check chk = {
        .trading_partner_id = l->tp,
        .member_id = l->member_id,
        .first_name = l->first_name,
        .last_name = l->last_name,
        .date_of_birth = l->dob,
        .provider_name = l->org[0] ? l->org : NULL,
        .provider_npi = l->npi[0] ? l->npi : NULL,
    };
    struct started_ctx sc = {l, rte_clock_mono_ms()};
    rte_stedi_result out;
    char err[256];
    const char *type;
    int64_t t0 = rte_clock_mono_ms();

    gw_event_lifecycle("rte.submitted", l->member_key, l->tp, l->trigger, l->request_id, -1, NULL,
                       NULL);
    int rc =
        rte_stedi_realtime_notify(G.stedi, &chk, RTE_SLOT_INTERACTIVE, t0 + G.conf.fetch_timeout_ms,
                                  on_enqueued, on_started, &sc, &out);
    int64_t latency = rte_clock_mono_ms() - t0;
    if (rc == 0) {
        res->kind = FL_FETCHED;
        res->e = out.entry;
        int put = rte_cache_put(rte_service_redis(), l->key, &out.entry, &G.cache.freshness, err,
                                sizeof err);
        if (put < 0) {
            rte_log_warn("cache write failed (%s); answering from Stedi without caching", err);
            degraded("cache_write");
        }
        res->stored = put == 1;
        /* an error entry stored in Redis may carry the success it replaced, which this
         * copy lacks: the next reader takes it from Redis into the L1 */
        if (put >= 0 && !out.entry.is_error)
            gw_l1_put(G.l1, l->key, &out.entry, rte_clock_mono_ms());
        /* XFetch delta: smoothed call time in simulated ms */
        int64_t sample = (int64_t)((double)out.call_ms * rte_clock_scale());
        int64_t d = atomic_load(&G.delta_ms);
        atomic_store(&G.delta_ms, d == 0 ? sample : (d * 4 + sample) / 5);
        type = out.outcome == RTE_STEDI_PAYER_ERROR && strcmp(out.entry.error_code, "42") == 0
                   ? "rte.downtime"
                   : "rte.completed";
        gw_event_lifecycle(type, l->member_key, l->tp, l->trigger, l->request_id, latency,
                           rte_stedi_outcome_name(out.outcome),
                           out.outcome == RTE_STEDI_PAYER_ERROR ? out.message : NULL);
        return;
    }
    res->kind = FL_FAIL;
    res->outcome = out.outcome;
    snprintf(res->message, sizeof res->message, "%s", out.message);
    type = out.outcome == RTE_STEDI_TIMEOUT ||
                   (out.outcome == RTE_STEDI_NO_SLOT && strstr(out.message, "deadline") != NULL)
               ? "rte.timeout"
               : "rte.failed";
    gw_event_lifecycle(type, l->member_key, l->tp, l->trigger, l->request_id, latency,
                       rte_stedi_outcome_name(out.outcome), out.message);
    rte_log_warn("Stedi real-time check failed (%s): %s", rte_stedi_outcome_name(out.outcome),
                 out.message);
}

/* re-read the cache: 1 when an entry newer than the flight's baseline is there */
static int newer_in_cache(struct flight *f, rte_cache_entry *e)
{
    char err[256];
    if (rte_cache_get(rte_service_redis(), f->key, e, err, sizeof err) != 1)
        return 0;
    return e->cached_at_ms > f->baseline_ms;
}

/* run f to its end on this worker: lock, call or wait, answer every waiter */
static void run_flight(struct flight *f)
{
    struct fl_result *res = calloc(1, sizeof *res);
    char token[37], failure[300];
    int64_t until = rte_clock_mono_ms() + G.conf.fetch_timeout_ms;
    int refresh = f->lead->kind == GW_REFRESH;
    int got;

    if (res == NULL) {
        static struct fl_result oom = {
            .kind = FL_FAIL, .outcome = RTE_STEDI_FAILED, .message = "out of memory"};
        finish_flight(f, &oom);
        return;
    }
    rte_uuid4(token);
    got = lock_try(f->key, token);
    if (got < 0) {
        degraded("lock");
        rte_log_warn("redis unreachable; calling Stedi without the cluster lock (degraded)");
        call_stedi(f, res);
        goto out;
    }
    for (;;) {
        if (got == 1) {
            rte_counter_inc(G.m.lock, (const char *const[]){"acquired"});
            if (newer_in_cache(f, &res->e)) {
                res->kind = FL_FOUND;
                gw_l1_put(G.l1, f->key, &res->e, rte_clock_mono_ms());
            } else {
                call_stedi(f, res);
                if (res->kind == FL_FAIL)
                    mark_failure(f->key, res->message);
            }
            lock_release(f->key, token);
            if (refresh)
                rte_counter_inc(G.m.refresh,
                                (const char *const[]){f->lead->trigger,
                                                      res->kind == FL_FETCHED ? "refreshed"
                                                      : res->kind == FL_FOUND ? "already_fresh"
                                                                              : "failed"});
            goto out;
        }
        /* another replica holds the lock: wait for its answer */
        rte_counter_inc(G.m.lock, (const char *const[]){"waited"});
        if (refresh && !has_callers(f)) {
            rte_counter_inc(G.m.refresh, (const char *const[]){f->lead->trigger, "elsewhere"});
            res->kind = FL_REQUEUE;
            goto out;
        }
        for (;;) {
            if (atomic_load(&stopping_flag) || rte_clock_mono_ms() >= until) {
                res->kind = FL_FAIL;
                res->outcome = RTE_STEDI_TIMEOUT;
                snprintf(res->message, sizeof res->message,
                         "another replica is calling Stedi for this member and had not answered "
                         "within %lld ms",
                         (long long)G.conf.fetch_timeout_ms);
                goto out;
            }
            sleep_ms(G.conf.lock_poll_ms / 2 + (int64_t)(uniform() * (double)G.conf.lock_poll_ms));
            if (newer_in_cache(f, &res->e)) {
                res->kind = FL_FOUND;
                gw_l1_put(G.l1, f->key, &res->e, rte_clock_mono_ms());
                goto out;
            }
            int st = lock_state(f->key, failure, sizeof failure);
            if (st == 1)
                continue;
            if (st == 0 && failure[0] != '\0') {
                res->kind = FL_FAIL;
                res->outcome = RTE_STEDI_FAILED;
                snprintf(res->message, sizeof res->message, "another replica's call failed: %.260s",
                         failure);
                goto out;
            }
            got = lock_try(f->key, token);
            if (got != 0)
                break; /* ours now (1), or Redis failed (-1) */
        }
        if (got < 0) {
            degraded("lock");
            call_stedi(f, res);
            goto out;
        }
    }
out:
    finish_flight(f, res);
    free(res);
}

/* ---- workers --------------------------------------------------------------- */

/* read the cache for r (L1, then Redis); -1 Redis unreachable, 0 absent, 1 found */
static int read_cache(gw_req *r, rte_cache_entry *e)
{
    char err[256];
    int64_t read_at = rte_clock_mono_ms();
    int rc = rte_cache_get(rte_service_redis(), r->key, e, err, sizeof err);
    if (rc < 0) {
        degraded("cache_read");
        rte_log_warn("cache read failed (%s); treating it as a miss (degraded)", err);
        if (gw_l1_get(G.l1, r->key, rte_clock_mono_ms(), e))
            return 1;
        return -1;
    }
    if (rc == 1)
        gw_l1_put(G.l1, r->key, e, read_at);
    return rc;
}

static void process_check(gw_req *r)
{
    rte_cache_entry e, ok;
    gw_answer a;
    int rc = read_cache(r, &e);
    int64_t now = rte_clock_now_ms();
    enum gw_action act;
    struct flight *f;
    int joined;

    pthread_mutex_lock(&r->mu);
    r->seen.present = rc == 1;
    if (rc == 1) {
        r->seen.cached_at_ms = e.cached_at_ms;
        r->seen.fresh_until_ms = e.fresh_until_ms;
        r->stale = e;
        r->have_entry = 1;
    }
    pthread_mutex_unlock(&r->mu);

    if (rc < 0 && r->pol.mode == GW_MODE_CACHE_ONLY) {
        error_answer(&a, 503, "the cache (Redis) is unreachable and cache_control is CACHE_ONLY");
        deliver(r, &a);
        return;
    }
    act = gw_decide(&r->pol, &r->seen, now, rc == 1 && gw_xfetch_now(&e, now));
    switch (act) {
    case GW_SERVE:
    case GW_SERVE_REFRESH:
        gw_answer_entry(&a, &r->pol, &e, GW_R_HIT, &ok, now);
        a.revalidating = act == GW_SERVE_REFRESH;
        deliver(r, &a);
        if (act == GW_SERVE_REFRESH)
            gw_refresh_async(r, "xfetch");
        return;
    case GW_SERVE_STALE:
    case GW_SERVE_STALE_REFRESH:
        gw_answer_entry(&a, &r->pol, &e, GW_R_STALE, &ok, now);
        a.revalidating = act == GW_SERVE_STALE_REFRESH;
        deliver(r, &a);
        if (act == GW_SERVE_STALE_REFRESH)
            gw_refresh_async(r, "swr");
        return;
    case GW_REFUSE_MISS:
        error_answer(&a, 504,
                     "no usable cached entry and the caller allows no Stedi call "
                     "(CACHE_ONLY / only-if-cached)");
        a.fwd = GW_FWD_MISS;
        a.detail = "only-if-cached";
        deliver(r, &a);
        return;
    case GW_FETCH:
        break;
    }
    if (r->pol.respond_async)
        go_async(r);
    f = join(r, &joined);
    if (f == NULL) {
        rte_counter_inc(G.m.flights, (const char *const[]){joined ? "follower" : "error"});
        if (!joined) {
            error_answer(&a, 500, "out of memory");
            deliver(r, &a);
        }
        return;
    }
    rte_counter_inc(G.m.flights, (const char *const[]){"leader"});
    run_flight(f);
}

static void process_refresh(gw_req *r)
{
    int joined;
    struct flight *f = join(r, &joined);
    if (f == NULL) {
        rte_counter_inc(G.m.refresh, (const char *const[]){r->trigger, "in_flight"});
        return;
    }
    run_flight(f);
}

static void process_status(gw_req *r)
{
    char key[80], err[256];
    redisReply *rep;
    rte_http_req *http;

    snprintf(key, sizeof key, REQ_PREFIX "%s", r->async_id);
    rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "GET %s", key);
    http = claim(r, NULL, NULL);
    if (http == NULL) {
        if (rep)
            freeReplyObject(rep);
        return;
    }
    if (rep == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "the request store (Redis) is unreachable: %s", err);
        rte_http_error(http, 503, "%s", msg);
        return;
    }
    if (rep->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        rte_http_error(http, 404, "no eligibility request '%s' (unknown, or expired)", r->async_id);
        return;
    }
    cJSON *doc = rte_json_parse(rep->str, rep->len, err, sizeof err);
    freeReplyObject(rep);
    if (doc == NULL) {
        rte_http_error(http, 500, "stored request state is unreadable: %s", err);
        return;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "status");
    int pending = cJSON_IsString(st) && strcmp(st->valuestring, "pending") == 0;
    if (pending) {
        rte_http_add_header(http, "Retry-After", "1");
        rte_http_respond_json(http, 202, doc);
    } else {
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(doc, "http_status");
        rte_http_respond_json(http, cJSON_IsNumber(hs) ? hs->valueint : 200, doc);
    }
    cJSON_Delete(doc);
}

static void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        gw_req *r = pop();
        if (r == NULL)
            return NULL;
        rte_log_set_request_id(r->request_id);
        switch (r->kind) {
        case GW_CHECK:
            process_check(r);
            break;
        case GW_REFRESH:
            process_refresh(r);
            break;
        case GW_STATUS:
            process_status(r);
            break;
        }
        rte_log_set_request_id(NULL);
        gw_req_unref(r);
    }
}

/* ---- the deadline sweeper -------------------------------------------------- */

/* answer r whose deadline passed */
static void expire(gw_req *r)
{
    gw_answer a;
    rte_http_req *http = NULL;
    gw_rpc *rpc = NULL;
    int have = 0, async = 0;
    rte_cache_entry stale, ok;
    char id[GW_ASYNC_ID] = "";

    pthread_mutex_lock(&r->mu);
    if (!r->answered) {
        have = r->kind == GW_CHECK && r->have_entry;
        async = !have && r->kind == GW_CHECK && r->http != NULL &&
                (r->callers_deadline || r->pol.respond_async);
        if (async) {
            rte_uuid4(id);
            memcpy(r->async_id, id, GW_ASYNC_ID);
        }
        if (have)
            stale = r->stale;
        r->answered = 1;
        http = r->http;
        rpc = r->rpc;
        r->http = NULL;
        r->rpc = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    if (http == NULL && rpc == NULL)
        return;
    if (have) {
        /* an error entry gives way to the success it carries where the caller accepts that */
        gw_answer_entry(&a, &r->pol, &stale, GW_R_STALE, &ok, rte_clock_now_ms());
        a.hit = 0;
        a.fwd = GW_FWD_STALE;
        a.detail = "stale-on-deadline";
        if (rpc != NULL)
            render_rpc(r, &a, rpc);
        else
            gw_render(r, &a, http);
        return;
    }
    if (async && store_pending(r, id) == 0) {
        respond_accepted(r, http, id);
        return;
    }
    error_answer(&a, 504,
                 r->kind == GW_CHECK
                     ? "Stedi did not answer before the request's deadline and no cached entry "
                       "exists; the check goes on and will land in the cache (send Prefer: wait=N "
                       "or respond-async to get a request to poll)"
                     : "the request's deadline passed");
    if (rpc != NULL)
        render_rpc(r, &a, rpc);
    else
        gw_render(r, &a, http);
}

/* gw_ask - gRPC handler thread; waits on rpc's condition variable, takes r's mutex to give up */
int gw_ask(gw_req *r, gw_rpc *rpc, int (*live)(void *arg), void *arg)
{
    int detached = 0;

    pthread_mutex_init(&rpc->mu, NULL);
    rte_clock_cond_init(&rpc->cv);
    rpc->done = 0;
    r->rpc = rpc;
    ref(r); /* ours, for giving up below */
    if (gw_submit(r) != 0) {
        r->rpc = NULL;
        gw_req_unref(r); /* ours */
        gw_req_unref(r); /* the caller's */
        pthread_cond_destroy(&rpc->cv);
        pthread_mutex_destroy(&rpc->mu);
        return -1;
    }
    pthread_mutex_lock(&rpc->mu);
    while (!rpc->done) {
        struct timespec ts = rte_clock_mono_timespec(rte_clock_mono_ms() + ASK_POLL_MS);
        pthread_cond_timedwait(&rpc->cv, &rpc->mu, &ts);
        if (rpc->done || detached || live == NULL || live(arg))
            continue;
        /* the caller left: unhook rpc unless an answer is already on its way to it */
        pthread_mutex_unlock(&rpc->mu);
        pthread_mutex_lock(&r->mu);
        if (!r->answered) {
            r->answered = 1;
            r->rpc = NULL;
            detached = 1;
        }
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_lock(&rpc->mu);
        if (detached)
            break;
    }
    pthread_mutex_unlock(&rpc->mu);
    if (detached)
        pending_remove(r);
    gw_req_unref(r);
    pthread_cond_destroy(&rpc->cv);
    pthread_mutex_destroy(&rpc->mu);
    return detached ? 1 : 0;
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&C.pmu);
    while (!atomic_load(&stopping_flag)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 5 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&C.pcv, &C.pmu, &ts);
        int64_t now = rte_clock_mono_ms();
        gw_req *expired = NULL;
        for (gw_req *r = C.phead, *next; r != NULL; r = next) {
            next = r->pnext;
            if (r->deadline_mono <= now && pending_remove_locked(r)) {
                r->pnext = expired; /* list's reference moves to `expired` */
                expired = r;
            }
        }
        pthread_mutex_unlock(&C.pmu);
        while (expired != NULL) {
            gw_req *r = expired;
            expired = r->pnext;
            r->pnext = NULL;
            expire(r);
            gw_req_unref(r);
        }
        pthread_mutex_lock(&C.pmu);
    }
    pthread_mutex_unlock(&C.pmu);
    return NULL;
}

/* gw_core_start - init thread */
int gw_core_start(char *err, size_t errlen)
{
    C.stopping = 0;
    atomic_store(&stopping_flag, 0);
    if (pthread_create(&C.sweeper, NULL, sweeper_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the deadline sweeper thread");
        return -1;
    }
    C.sweeper_started = 1;
    for (int i = 0; i < G.conf.workers && i < MAX_WORKERS; i++) {
        if (pthread_create(&C.workers[i], NULL, worker_main, NULL) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            return -1;
        }
        C.nworkers++;
    }
    return 0;
}

/* gw_core_stop - shutdown thread: workers finish what they hold, then the sweeper */
void gw_core_stop(void)
{
    gw_req *rest;

    atomic_store(&stopping_flag, 1);
    pthread_mutex_lock(&C.qmu);
    C.stopping = 1;
    rest = C.qhead;
    C.qhead = C.qtail = NULL;
    C.qlen = 0;
    pthread_cond_broadcast(&C.qcv);
    pthread_mutex_unlock(&C.qmu);
    for (int i = 0; i < C.nworkers; i++)
        pthread_join(C.workers[i], NULL);
    C.nworkers = 0;
    while (rest != NULL) {
        gw_req *next = rest->qnext;
        gw_answer a;
        error_answer(&a, 503, "the gateway is shutting down");
        deliver(rest, &a);
        gw_req_unref(rest);
        rest = next;
    }
    if (C.sweeper_started) {
        pthread_mutex_lock(&C.pmu);
        pthread_cond_broadcast(&C.pcv);
        pthread_mutex_unlock(&C.pmu);
        pthread_join(C.sweeper, NULL);
        C.sweeper_started = 0;
    }
    /* anything still on the deadline list gets its answer now */
    for (;;) {
        pthread_mutex_lock(&C.pmu);
        gw_req *r = C.phead;
        int had = r != NULL && pending_remove_locked(r);
        pthread_mutex_unlock(&C.pmu);
        if (r == NULL)
            break;
        gw_answer a;
        error_answer(&a, 503, "the gateway is shutting down");
        deliver(r, &a);
        if (had)
            gw_req_unref(r);
    }
}
