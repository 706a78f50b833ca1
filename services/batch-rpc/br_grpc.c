/*
 * br_grpc.c - BatchEligibilityService (contract in br_grpc.h).
 *
 * Handlers run on gRPC worker threads with their thread's Redis
 * connection. Nothing about a job is kept in the process: every handler
 * reads and writes Redis, so any replica answers for any job.
 *
 * Who is calling: br_caller, the one place that answers it. Jobs, the
 * idempotency keys, the per-client listing and the rate limit are all
 * keyed by it; a job of another caller is NOT_FOUND (its existence is not
 * disclosed).
 */
#include "br_grpc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "br.h"
#include "br_events.h"
#include "br_plan.h"
#include "br_select.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/slots.h"

#define NAME_MAX_LEN 64
#define CJID_MAX 128
#define URL_MAX 2048
#define TOPIC_MAX 249
#define REASON_MAX 200
#define LIST_SCAN 200
#define IDEM_WAIT_MS 5000
#define RESUME_KEY "rte-resume-after"

/* br_caller - any gRPC worker thread */
const char *br_caller(const rte_grpc_call *call)
{
    /* the client id of the caller's verified token; with token checks off (grpc.auth.*
     * unset: development) every call is the one client "anonymous" */
    const char *p = rte_grpc_call_principal(call);
    return p && p[0] ? p : "anonymous";
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int url_ok(const char *u)
{
    size_t n = strlen(u);
    return n <= URL_MAX && printable(u) && strchr(u, ' ') == NULL &&
           ((strncmp(u, "https://", 8) == 0 && n > 8) || (strncmp(u, "http://", 7) == 0 && n > 7));
}

static int dur_bad(const Rte__V1__Duration *d)
{
    return d && (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999);
}

static const char *const event_names[] = {"STARTED", "PROGRESS",  "COMPLETED",
                                          "FAILED",  "CANCELLED", NULL};

/* INVALID_ARGUMENT naming the field, or 0 */
static int check_options(rte_grpc_call *call, const Rte__V1__BatchExecutionOptions *o)
{
    if (o == NULL)
        return 0;
    if ((int)o->priority < 0 || (int)o->priority > 2) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.priority: unknown value %d (PRIORITY_LOW, PRIORITY_NORMAL, "
                        "PRIORITY_HIGH)",
                        (int)o->priority);
        return -1;
    }
    if ((int)o->strategy < 0 || (int)o->strategy > 2) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.strategy: unknown value %d (STRATEGY_OPTIMAL, "
                        "STRATEGY_BATCH_ONLY, STRATEGY_REALTIME_ONLY)",
                        (int)o->strategy);
        return -1;
    }
    if ((int)o->scheduling_window < 0 || (int)o->scheduling_window > 5) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.scheduling_window: unknown value %d", (int)o->scheduling_window);
        return -1;
    }
    if (o->max_concurrent_requests < 0) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.max_concurrent_requests: must be >= 0 (0 = the service's "
                        "default), got %d",
                        o->max_concurrent_requests);
        return -1;
    }
    if (dur_bad(o->timeout) ||
        (o->timeout &&
         o->timeout->seconds * 1000 + o->timeout->nanos / 1000000 > BR.c.timeout_max_ms)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.timeout: expected 0 (default %lld s) .. %lld s, nanos "
                        "0..999999999",
                        (long long)BR.c.timeout_ms / 1000, (long long)BR.c.timeout_max_ms / 1000);
        return -1;
    }
    const Rte__V1__RetryConfig *rc = o->retry_config;
    if (rc) {
        if (rc->max_attempts < 0 || rc->max_attempts > 10) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "options.retry_config.max_attempts: expected 0 (default 3) .. 10, "
                            "got %d",
                            rc->max_attempts);
            return -1;
        }
        if (dur_bad(rc->initial_interval) || dur_bad(rc->max_interval)) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "options.retry_config.%s: seconds >= 0, nanos 0..999999999",
                            dur_bad(rc->initial_interval) ? "initial_interval" : "max_interval");
            return -1;
        }
        if (!(rc->backoff_multiplier == 0 ||
              (rc->backoff_multiplier >= 1 && rc->backoff_multiplier <= 10))) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "options.retry_config.backoff_multiplier: expected 0 (default 2) "
                            "or 1..10, got %g",
                            (double)rc->backoff_multiplier);
            return -1;
        }
    }
    if (o->callback_url && o->callback_url[0] && !url_ok(o->callback_url)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.callback_url: expected an http(s) URL of at most %d bytes",
                        URL_MAX);
        return -1;
    }
    const Rte__V1__NotificationPreferences *n = o->notifications;
    if (n == NULL)
        return 0;
    if (n->_kafka_topic_case &&
        (!name_ok(n->kafka_topic, TOPIC_MAX) || strchr(n->kafka_topic, ':') != NULL)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.notifications.kafka_topic: expected 1..%d characters of "
                        "[A-Za-z0-9._-]",
                        TOPIC_MAX);
        return -1;
    }
    if (n->_callback_url_case && n->callback_url[0] && !url_ok(n->callback_url)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.notifications.callback_url: expected an http(s) URL of at "
                        "most %d bytes",
                        URL_MAX);
        return -1;
    }
    for (size_t i = 0; i < n->n_event_types; i++) {
        int k = 0;
        while (event_names[k] && strcmp(event_names[k], n->event_types[i]) != 0)
            k++;
        if (!event_names[k]) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "options.notifications.event_types[%zu]: unknown event type "
                            "'%.40s' (STARTED, PROGRESS, COMPLETED, FAILED, CANCELLED)",
                            i, n->event_types[i]);
            return -1;
        }
    }
    if ((int)n->delivery_mode < 0 || (int)n->delivery_mode > 1) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "options.notifications.delivery_mode: unknown value %d",
                        (int)n->delivery_mode);
        return -1;
    }
    return 0;
}

/* INVALID_ARGUMENT naming the field, or 0 */
static int check_submit(rte_grpc_call *call, const Rte__V1__SubmitBatchRequest *req)
{
    char err[512];

    if (!name_ok(req->client_service_name, NAME_MAX_LEN)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "client_service_name: required, 1..%d characters of [A-Za-z0-9._:-]",
                        NAME_MAX_LEN);
        return -1;
    }
    if (strlen(req->client_job_id) > CJID_MAX || !printable(req->client_job_id)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "client_job_id: at most %d bytes without control characters", CJID_MAX);
        return -1;
    }
    switch (req->member_selector_case) {
    case RTE__V1__SUBMIT_BATCH_REQUEST__MEMBER_SELECTOR_MEMBER_IDS:
        if (br_select_ids((const char *const *)req->member_ids->member_ids,
                          req->member_ids->n_member_ids, BR.c.request_max, err, sizeof err) != 0) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "%s", err);
            return -1;
        }
        break;
    case RTE__V1__SUBMIT_BATCH_REQUEST__MEMBER_SELECTOR_MEMBER_QUERY:
        if (br_select_check_query(req->member_query, BR.c.request_max, err, sizeof err) != 0) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "%s", err);
            return -1;
        }
        break;
    default:
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "member_selector: set member_ids or member_query");
        return -1;
    }
    if ((int)req->cache_control < 0 || (int)req->cache_control > 4) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "cache_control: unknown value %d (CACHE_CONTROL_DEFAULT, CACHE_ONLY, "
                        "PREFER_CACHED, BYPASS_CACHE, STALE_WHILE_REVALIDATE)",
                        (int)req->cache_control);
        return -1;
    }
    if (check_options(call, req->options) != 0)
        return -1;
    const Rte__V1__BatchExecutionOptions *o = req->options;
    int wants = o && ((o->callback_url && o->callback_url[0]) ||
                      (o->notifications && o->notifications->_callback_url_case &&
                       o->notifications->callback_url[0]));
    if (wants && BR.whkeylen <= 0) {
        rte_grpc_status(call, RTE_GRPC_FAILED_PRECONDITION,
                        "options.notifications.callback_url: this service signs no callbacks "
                        "(batchrpc.webhook_secret is not set)");
        return -1;
    }
    return 0;
}

/*
 * the rate limit: a sliding window of this caller's submits on Redis's
 * clock. 0 admitted (and counted), else the ms until one more is admitted
 */
static const char rate_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local win = tonumber(ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)\n"
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then\n"
    "  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  return math.max(1, tonumber(first[2]) + win - now)\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], win)\n"
    "return 0\n";

static long long rate_check(rte_redis *r, const char *caller, char *id, char *err, size_t errlen)
{
    char key[256], win[24], lim[12];
    if (BR.c.rate_limit == 0)
        return 0;
    snprintf(key, sizeof key, "%s:rate:%s", BR.c.prefix, caller);
    snprintf(win, sizeof win, "%lld", (long long)BR.c.rate_window_ms);
    snprintf(lim, sizeof lim, "%d", BR.c.rate_limit);
    rte_uuid4(id);
    redisReply *rep =
        rte_redis_cmd(r, err, errlen, "EVAL %s 1 %s %s %s %s", rate_lua, key, win, lim, id);
    if (rep == NULL)
        return -1;
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    freeReplyObject(rep);
    return v;
}

static void idem_key(const char *caller, const char *cjid, char *out, size_t len)
{
    char h[41];
    rte_sha1_hex(cjid, strlen(cjid), h);
    snprintf(out, len, "%s:idem:%s:%s", BR.c.prefix, caller, h);
}

/* give back the rate window's entry id (the submit stored nothing) */
static void rate_refund(rte_redis *r, const char *caller, const char *id)
{
    char key[256], err[256];
    snprintf(key, sizeof key, "%s:rate:%s", BR.c.prefix, caller);
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "ZREM %s %s", key, id);
    if (rep)
        freeReplyObject(rep);
}

/* the id an idempotency key holds: 1 found, 0 none, -1 + err */
static int idem_get(rte_redis *r, const char *key, char *id, char *err, size_t errlen)
{
    redisReply *rep = rte_redis_cmd(r, err, errlen, "GET %s", key);
    int rc = 0;
    if (rep == NULL)
        return -1;
    if (rep->type == REDIS_REPLY_STRING && rep->len < RTE_JOBS_ID_MAX) {
        snprintf(id, RTE_JOBS_ID_MAX, "%s", rep->str);
        rc = 1;
    }
    freeReplyObject(rep);
    return rc;
}

static void audit(const char *op, const char *caller, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* one line per batch operation: who, what, which batch; never a member id */
static void audit(const char *op, const char *caller, const char *id, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    rte_log_info("audit: op=%s caller=%s batch=%s %s", op, caller, id, detail);
}

/*
 * the plan's start per member time zone (the directory's time_zone column):
 * *out the ids in group order (malloc'd), groups[0..*ng); 0, or -1 out of memory
 */
static int zone_groups(const rte_member_snapshot *snap, br_plan *plan, int64_t now,
                       const char **ids, size_t n, const char ***out, int *ng,
                       br_plan_group *groups)
{
    const rte_member_column *col = rte_member_snapshot_column(snap, "time_zone");
    const rte_member **ms = malloc(sizeof *ms * (n + 1));
    const char **zone = malloc(sizeof *zone * (n + 1));
    size_t *order = malloc(sizeof *order * (n + 1));
    const char **sorted = malloc(sizeof *sorted * (n + 1));
    int rc = -1;

    if (ms == NULL || zone == NULL || order == NULL || sorted == NULL)
        goto out;
    rte_member_snapshot_find_many(snap, ids, n, ms);
    for (size_t i = 0; i < n; i++)
        zone[i] =
            col != NULL && col->code != NULL && ms[i] != NULL
                ? rte_member_snapshot_value(snap, col->code[rte_member_snapshot_index(snap, ms[i])])
                : NULL;
    br_plan_zones(plan, now, BR.c.jitter_ms, n, zone, ms, order, groups, ng);
    for (size_t i = 0; i < n; i++)
        sorted[i] = ids[order[i]];
    *out = sorted;
    sorted = NULL;
    rc = 0;
out:
    free(ms);
    free(zone);
    free(order);
    free(sorted);
    return rc;
}

/* create the job for req as id; 0, or -1 with the call's status set */
static int create(rte_grpc_call *call, rte_redis *r, const Rte__V1__SubmitBatchRequest *req,
                  const char *caller, const char *id)
{
    rte_member_snapshot *snap = rte_member_dir_acquire(BR.dir);
    const char **ids = NULL, **selected = NULL, **zoned_ids = NULL;
    size_t n = 0;
    char err[512], *hex = NULL, groups_s[BR_PLAN_GROUPS_MAX * 96];
    br_plan_group groups[BR_PLAN_GROUPS_MAX];
    int ng = 0;
    uint8_t *packed = NULL;
    int rc = -1, in_use = -1, by_class[RTE_SLOT_NCLASSES];
    int64_t now = rte_clock_now_ms();
    br_plan plan;
    br_resolved res;

    if (req->member_selector_case == RTE__V1__SUBMIT_BATCH_REQUEST__MEMBER_SELECTOR_MEMBER_IDS) {
        ids = (const char **)req->member_ids->member_ids;
        n = req->member_ids->n_member_ids;
    } else {
        if (br_select_query(snap, req->member_query, BR.c.request_max, &selected, &n, err,
                            sizeof err) != 0) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "%s", err);
            goto out;
        }
        ids = selected;
        if (n == 0) {
            rte_grpc_status(call, RTE_GRPC_FAILED_PRECONDITION,
                            "member_query: no member of the directory matches");
            goto out;
        }
    }
    rte_slots *slots = rte_stedi_slots(BR.stedi);
    if (slots != NULL)
        in_use = rte_slots_in_use(slots, by_class);
    br_plan_load load = {in_use, BR.c.slots_limit, -1};
    if (req->options &&
        (int)req->options->scheduling_window ==
            RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_OPTIMAL_MEMBER_ENGAGEMENT) {
        size_t k = n < 10000 ? n : 10000; /* a sample is enough for the busiest hour */
        const rte_member **ms = malloc(sizeof *ms * (k + 1));
        if (ms != NULL) {
            rte_member_snapshot_find_many(snap, ids, k, ms);
            load.peak_hour = br_plan_peak_hour(ms, k);
            free(ms);
        }
    }
    br_plan_make(req->options, n, &load, now, BR.c.jitter_ms, &plan);
    if (plan.zoned && zone_groups(snap, &plan, now, ids, n, &zoned_ids, &ng, groups) != 0) {
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    if (zoned_ids != NULL)
        ids = zoned_ids;
    br_plan_groups_format(groups, ng, groups_s, sizeof groups_s);
    br_plan_resolved(&plan, req->options, &res);
    size_t plen = rte__v1__batch_execution_options__get_packed_size(&res.o);
    packed = malloc(plen + 1);
    hex = malloc(2 * plen + 1);
    if (packed == NULL || hex == NULL) {
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    rte__v1__batch_execution_options__pack(&res.o, packed);
    rte_hex_encode(packed, plen, hex);
    hex[2 * plen] = '\0';
    char st[8], cc[8], total[24], sub[24], start[24], eta[24], q[4], spread[24], chunks[16],
        multi[4];
    snprintf(spread, sizeof spread, "%lld", (long long)plan.spread_ms);
    snprintf(chunks, sizeof chunks, "%d", plan.chunks);
    snprintf(multi, sizeof multi, "%d", plan.multi);
    snprintf(st, sizeof st, "%d", RTE__V1__BATCH_STATUS__BATCH_STATUS_PENDING);
    snprintf(cc, sizeof cc, "%d", (int)req->cache_control);
    snprintf(total, sizeof total, "%zu", n);
    snprintf(sub, sizeof sub, "%lld", (long long)now);
    snprintf(start, sizeof start, "%lld", (long long)plan.start_ms);
    snprintf(eta, sizeof eta, "%lld", (long long)plan.eta_ms);
    snprintf(q, sizeof q, "%d",
             req->member_selector_case ==
                 RTE__V1__SUBMIT_BATCH_REQUEST__MEMBER_SELECTOR_MEMBER_QUERY);
    const char *f[] = {"caller",       caller,
                       "service",      req->client_service_name,
                       "cjid",         req->client_job_id,
                       "status",       st,
                       "query",        q,
                       "cc",           cc,
                       "total",        total,
                       "submitted_ms", sub,
                       "start_ms",     start,
                       "eta_ms",       eta,
                       "opts",         hex,
                       "sb_ids",       "",
                       "spread_ms",    spread,
                       "chunks",       chunks,
                       "multi",        multi,
                       "groups",       groups_s};
    if (rte_jobs_create(r, &BR.c.jobs, id, f, 16, ids, n, plan.start_ms, err, sizeof err) != 0) {
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch not stored: %s", err);
        goto out;
    }
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "ZADD %s:c:%s 0 %013lld:%s", BR.c.prefix,
                                    caller, (long long)now, id);
    if (rep)
        freeReplyObject(rep);
    const char *v[] = {"submitted"};
    rte_counter_inc(BM.jobs, v);
    audit("SubmitBatch", caller, id,
          "service=%s client_job_id=%s members=%zu selector=%s strategy=%d (%s) window=%d "
          "start_ms=%lld cache_control=%d",
          req->client_service_name, req->client_job_id[0] ? "set" : "none", n,
          q[0] == '1' ? "member_query" : "member_ids", plan.strategy, plan.why, plan.window,
          (long long)plan.start_ms, (int)req->cache_control);
    rc = 0;
out:
    free(selected);
    free(zoned_ids);
    rte_member_snapshot_release(snap);
    free(packed);
    free(hex);
    return rc;
}

/*
 * validate, replay or create; id filled on 0 (*replayed = 1 when the
 * client_job_id named an existing batch); -1 with the call's status set
 */
static int submit(rte_grpc_call *call, const Rte__V1__SubmitBatchRequest *req, char *id,
                  int *replayed)
{
    const char *caller = br_caller(call);
    rte_redis *r = rte_service_redis();
    char key[256], err[256], uuid[37];
    int have = 0;

    *replayed = 0;
    if (check_submit(call, req) != 0)
        return -1;
    if (req->client_job_id[0]) {
        idem_key(caller, req->client_job_id, key, sizeof key);
        have = idem_get(r, key, id, err, sizeof err);
        if (have < 0) {
            rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
            return -1;
        }
        if (have) {
            /* the batch may still be being stored by the call that named it */
            int64_t until = rte_clock_mono_ms() + IDEM_WAIT_MS;
            while (rte_jobs_exists(r, &BR.c.jobs, id, err, sizeof err) == 0 &&
                   rte_clock_mono_ms() < until)
                nap_ms(50);
            if (rte_jobs_exists(r, &BR.c.jobs, id, err, sizeof err) == 1) {
                *replayed = 1;
                const char *v[] = {"idempotent"};
                rte_counter_inc(BM.jobs, v);
                audit("SubmitBatch", caller, id, "replayed: same client_job_id");
                return 0;
            }
            /* its creator died before storing it: store it now under the same id */
        }
    }
    char slot[37] = "";
    long long wait = rate_check(r, caller, slot, err, sizeof err);
    if (wait < 0) {
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
        return -1;
    }
    if (wait > 0) {
        rte_counter_inc(BM.limited, NULL);
        audit("SubmitBatch", caller, "-", "refused: rate limit");
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED,
                        "rate limit: at most %d batches per %lld s per client; retry after %lld "
                        "s (retry-after-ms=%lld)",
                        BR.c.rate_limit, (long long)BR.c.rate_window_ms / 1000, (wait + 999) / 1000,
                        wait);
        return -1;
    }
    if (!have) {
        rte_uuid4(uuid);
        snprintf(id, RTE_JOBS_ID_MAX, "br-%s", uuid);
        if (req->client_job_id[0]) {
            redisReply *rep = rte_redis_cmd(r, err, sizeof err, "SET %s %s NX PX %lld", key, id,
                                            (long long)BR.c.jobs.keep_ms);
            if (rep == NULL) {
                rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
                return -1;
            }
            int won = rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            if (!won) {
                /* a concurrent identical submit won: answer with its batch */
                if (idem_get(r, key, id, err, sizeof err) != 1) {
                    rte_grpc_status(call, RTE_GRPC_ABORTED,
                                    "client_job_id: a concurrent submit holds it; retry");
                    return -1;
                }
                int64_t until = rte_clock_mono_ms() + IDEM_WAIT_MS;
                while (rte_jobs_exists(r, &BR.c.jobs, id, err, sizeof err) == 0 &&
                       rte_clock_mono_ms() < until)
                    nap_ms(50);
                *replayed = 1;
                return 0;
            }
        }
    }
    if (create(call, r, req, caller, id) == 0)
        return 0;
    if (slot[0])
        rate_refund(r, caller, slot);
    if (req->client_job_id[0] && !have) {
        /* nothing was stored: the client_job_id is free for a corrected request */
        redisReply *rep = rte_redis_cmd(r, err, sizeof err, "DEL %s", key);
        if (rep)
            freeReplyObject(rep);
    }
    return -1;
}

/* read methods take either scope: a submitter may follow its own batches */
static int may_read(rte_grpc_call *call)
{
    if (rte_grpc_call_has_scope(call, BR_SCOPE_READ) ||
        rte_grpc_call_has_scope(call, BR_SCOPE_SUBMIT))
        return 1;
    rte_grpc_status(call, RTE_GRPC_PERMISSION_DENIED, "the token holds neither scope %s nor %s",
                    BR_SCOPE_READ, BR_SCOPE_SUBMIT);
    return 0;
}

/* the caller's job id (NOT_FOUND otherwise); 1 loaded, else the call's status is set */
static int load_own(rte_grpc_call *call, const char *id, br_job *j)
{
    char err[256];
    int rc;

    if (id[0] == '\0' || strlen(id) >= RTE_JOBS_ID_MAX || strchr(id, ':') || !printable(id)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "batch_id: expected the id SubmitBatch returned (1..%d characters)",
                        RTE_JOBS_ID_MAX - 1);
        return 0;
    }
    rc = br_job_load(rte_service_redis(), id, j, err, sizeof err);
    if (rc < 0) {
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
        return 0;
    }
    if (rc == 0 || strcmp(j->caller, br_caller(call)) != 0) {
        br_job_clear(j);
        rte_grpc_status(call, RTE_GRPC_NOT_FOUND, "batch_id: no batch '%.64s' of this client", id);
        return 0;
    }
    return 1;
}

static void submit_batch(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__SubmitBatchRequest *req = (const Rte__V1__SubmitBatchRequest *)m;
    char id[RTE_JOBS_ID_MAX];
    Rte__V1__Timestamp sub, eta;
    int replayed;
    br_job j;

    (void)arg;
    if (submit(call, req, id, &replayed) != 0 || !load_own(call, id, &j))
        return;
    Rte__V1__SubmitBatchResponse resp = RTE__V1__SUBMIT_BATCH_RESPONSE__INIT;
    br_ts(&sub, j.submitted_ms);
    br_ts(&eta, j.eta_ms);
    resp.batch_id = j.id;
    resp.total_members = (int32_t)j.total;
    resp.submitted_at = &sub;
    resp.estimated_completion = &eta;
    resp.resolved_options = j.opts;
    rte_grpc_reply(call, &resp.base);
    br_job_clear(&j);
}

static void get_status(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__GetBatchStatusRequest *req = (const Rte__V1__GetBatchStatusRequest *)m;
    Rte__V1__BatchError errs[100], *ep[100];
    Rte__V1__Timestamp at[100];
    char err[256], key[160];
    br_progress p;
    br_job j;
    size_t ne = 0;

    (void)arg;
    if (!may_read(call) || !load_own(call, req->batch_id, &j))
        return;
    snprintf(key, sizeof key, "%s:j:%s:errors", BR.c.jobs.prefix, j.id);
    redisReply *rep = rte_redis_cmd(rte_service_redis(), err, sizeof err, "LRANGE %s 0 99", key);
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements && ne < 100;
         i++) {
        /* ms \x1f code \x1f message \x1f member id (split in place) */
        char *f[4] = {rep->element[i]->str, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *s = strchr(f[k - 1], '\x1f');
            if (s)
                *s = '\0', f[k] = s + 1;
        }
        if (f[3] == NULL)
            continue;
        rte__v1__batch_error__init(&errs[ne]);
        br_ts(&at[ne], strtoll(f[0], NULL, 10));
        errs[ne].occurred_at = &at[ne];
        errs[ne].error_code = f[1];
        errs[ne].error_message = f[2];
        errs[ne].member_id = f[3];
        ep[ne] = &errs[ne];
        ne++;
    }
    br_job_progress(&j, &p);
    Rte__V1__GetBatchStatusResponse resp = RTE__V1__GET_BATCH_STATUS_RESPONSE__INIT;
    resp.batch_id = j.id;
    resp.status = (Rte__V1__BatchStatus)j.status;
    resp.progress = &p.p;
    resp.n_errors = ne;
    resp.errors = ep;
    rte_grpc_reply(call, &resp.base);
    if (rep)
        freeReplyObject(rep);
    br_job_clear(&j);
}

/* a page token: "<13 digits>:<id>" as the listing index holds it */
static int token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 15 || n > 13 + 1 + RTE_JOBS_ID_MAX)
        return 0;
    for (int i = 0; i < 13; i++)
        if (!isdigit((unsigned char)t[i]))
            return 0;
    return t[13] == ':' && printable(t);
}

static int64_t ts_ms(const Rte__V1__Timestamp *t)
{
    return t->seconds * 1000 + t->nanos / 1000000;
}

static void list_batches(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__ListBatchesRequest *req = (const Rte__V1__ListBatchesRequest *)m;
    const char *caller = br_caller(call);
    rte_redis *r = rte_service_redis();
    int size = req->page_size > 0 ? req->page_size : BR.c.page_size;
    char from[200], err[256], last[200] = "";
    int n = 0, more = 1;

    (void)arg;
    if (!may_read(call))
        return;
    if (req->page_size < 0 || req->page_size > 1000) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "page_size: expected 0 (default %d) .. 1000, got %d", BR.c.page_size,
                        req->page_size);
        return;
    }
    if (req->page_token[0] && !token_ok(req->page_token)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "page_token: not a token this service issued");
        return;
    }
    for (size_t i = 0; i < req->n_statuses; i++)
        if ((int)req->statuses[i] < 0 || (int)req->statuses[i] > 5) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "statuses[%zu]: unknown value %d", i,
                            (int)req->statuses[i]);
            return;
        }
    if ((req->submitted_after &&
         (req->submitted_after->nanos < 0 || req->submitted_after->nanos > 999999999)) ||
        (req->submitted_before &&
         (req->submitted_before->nanos < 0 || req->submitted_before->nanos > 999999999))) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "submitted_after/submitted_before: nanos must be 0..999999999");
        return;
    }
    if (req->client_service_name[0] && !name_ok(req->client_service_name, NAME_MAX_LEN)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "client_service_name: 1..%d characters of [A-Za-z0-9._:-]", NAME_MAX_LEN);
        return;
    }
    br_job *jobs = calloc((size_t)size, sizeof *jobs);
    if (jobs == NULL) {
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (req->page_token[0])
        snprintf(from, sizeof from, "(%s", req->page_token);
    else
        snprintf(from, sizeof from, "+");
    while (n < size && more) {
        redisReply *rep =
            rte_redis_cmd(r, err, sizeof err, "ZREVRANGEBYLEX %s:c:%s %s - LIMIT 0 %d", BR.c.prefix,
                          caller, from, LIST_SCAN);
        if (rep == NULL) {
            rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
            goto out;
        }
        more = rep->type == REDIS_REPLY_ARRAY && rep->elements == LIST_SCAN;
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && n < size; i++) {
            const char *e = rep->element[i]->str;
            snprintf(last, sizeof last, "%s", e);
            snprintf(from, sizeof from, "(%s", e);
            if (strlen(e) < 15)
                continue;
            int64_t sub = strtoll(e, NULL, 10);
            if ((req->submitted_after && sub < ts_ms(req->submitted_after)) ||
                (req->submitted_before && sub >= ts_ms(req->submitted_before)))
                continue;
            int rc = br_job_load(r, e + 14, &jobs[n], err, sizeof err);
            if (rc == 0) {
                /* expired: drop it from the index */
                redisReply *z =
                    rte_redis_cmd(r, err, sizeof err, "ZREM %s:c:%s %s", BR.c.prefix, caller, e);
                if (z)
                    freeReplyObject(z);
                continue;
            }
            if (rc < 0)
                continue;
            int keep = !req->client_service_name[0] ||
                       strcmp(req->client_service_name, jobs[n].service) == 0;
            if (keep && req->n_statuses) {
                keep = 0;
                for (size_t s = 0; s < req->n_statuses; s++)
                    keep |= (int)req->statuses[s] == jobs[n].status;
            }
            if (keep)
                n++;
            else
                br_job_clear(&jobs[n]);
        }
        if (n == size && rep->type == REDIS_REPLY_ARRAY)
            more = 1; /* a full page: the token lets the caller look further */
        freeReplyObject(rep);
    }
    {
        Rte__V1__BatchSummary *sum = calloc((size_t)n + 1, sizeof *sum);
        Rte__V1__BatchSummary **sp = calloc((size_t)n + 1, sizeof *sp);
        br_progress *prog = calloc((size_t)n + 1, sizeof *prog);
        Rte__V1__Timestamp *ts = calloc((size_t)n + 1, sizeof *ts);
        if (!sum || !sp || !prog || !ts) {
            rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            for (int i = 0; i < n; i++) {
                rte__v1__batch_summary__init(&sum[i]);
                br_job_progress(&jobs[i], &prog[i]);
                br_ts(&ts[i], jobs[i].submitted_ms);
                sum[i].batch_id = jobs[i].id;
                sum[i].client_service_name = jobs[i].service;
                sum[i].client_job_id = jobs[i].cjid;
                sum[i].status = (Rte__V1__BatchStatus)jobs[i].status;
                sum[i].progress = &prog[i].p;
                sum[i].submitted_at = &ts[i];
                sp[i] = &sum[i];
            }
            Rte__V1__ListBatchesResponse resp = RTE__V1__LIST_BATCHES_RESPONSE__INIT;
            resp.n_batches = (size_t)n;
            resp.batches = sp;
            resp.next_page_token = n == size && more ? last : "";
            rte_grpc_reply(call, &resp.base);
        }
        free(sum);
        free(sp);
        free(prog);
        free(ts);
    }
out:
    for (int i = 0; i < n; i++)
        br_job_clear(&jobs[i]);
    free(jobs);
}

static void cancel_batch(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__CancelBatchRequest *req = (const Rte__V1__CancelBatchRequest *)m;
    const char *caller = br_caller(call);
    rte_redis *r = rte_service_redis();
    const char *lists[] = {"todo", "wait"};
    char err[256], st[8], reason[REASON_MAX + 1];
    long dropped = 0;
    br_job j;

    (void)arg;
    if (strlen(req->reason) > REASON_MAX || !printable(req->reason)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "reason: at most %d bytes without control characters", REASON_MAX);
        return;
    }
    if (!load_own(call, req->batch_id, &j))
        return;
    if (!br_status_final(j.status)) {
        snprintf(st, sizeof st, "%d", RTE__V1__BATCH_STATUS__BATCH_STATUS_CANCELLED);
        snprintf(reason, sizeof reason, "%s", req->reason[0] ? req->reason : "cancelled");
        char owed[32];
        br_events_owed_of(r, j.id, owed, sizeof owed);
        const char *f[] = {"status", st, "reason", reason, "owed", owed};
        dropped = br_events_owe(r, j.id, err, sizeof err) != 0
                      ? -1
                      : rte_jobs_end(r, &BR.c.jobs, j.id, NULL, f, 3, lists, 2, rte_clock_now_ms(),
                                     err, sizeof err);
        if (dropped == -1) {
            br_job_clear(&j);
            rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
            return;
        }
        if (dropped >= 0) {
            redisReply *rep = rte_redis_cmd(r, err, sizeof err, "HSET %s:j:%s cancelled %ld",
                                            BR.c.jobs.prefix, j.id, dropped);
            if (rep)
                freeReplyObject(rep);
            const char *v[] = {"cancelled"};
            rte_counter_inc(BM.jobs, v);
            const char *mv[] = {"cancelled"};
            rte_counter_add(BM.members, mv, (double)dropped);
        }
        char id[RTE_JOBS_ID_MAX];
        snprintf(id, sizeof id, "%s", j.id);
        br_job_clear(&j);
        if (br_job_load(r, id, &j, err, sizeof err) != 1) {
            rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
            return;
        }
        if (dropped >= 0)
            (void)br_events_emit_owed(r, &j, owed);
    }
    audit("CancelBatch", caller, j.id, "status=%s members_cancelled=%ld", br_status_name(j.status),
          dropped > 0 ? dropped : 0);
    Rte__V1__CancelBatchResponse resp = RTE__V1__CANCEL_BATCH_RESPONSE__INIT;
    resp.batch_id = j.id;
    resp.status = (Rte__V1__BatchStatus)j.status;
    resp.members_cancelled = (int32_t)(dropped > 0 ? dropped : 0);
    rte_grpc_reply(call, &resp.base);
    br_job_clear(&j);
}

/* stream job id's updates after `after` ("" = all) to the call until its last one */
static void stream_updates(rte_grpc_call *call, const char *id, unsigned mask, const char *after0)
{
    rte_redis *r = rte_service_redis();
    char after[RTE_JOBS_EVID_MAX], err[256];
    int64_t idle_since = rte_clock_mono_ms();
    int quiet_ended = 0;

    snprintf(after, sizeof after, "%s", after0);
    for (;;) {
        redisReply *rep = rte_jobs_events_after(r, &BR.c.jobs, id, after, 100, err, sizeof err);
        size_t got = rep && rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
        if (rep == NULL) {
            rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "batch store unreachable: %s", err);
            return;
        }
        for (size_t i = 0; i < got; i++) {
            redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements < 2)
                continue;
            snprintf(after, sizeof after, "%s", e->element[0]->str);
            redisReply *payload = e->element[1]->element[1];
            Rte__V1__BatchStatusUpdate *u = rte__v1__batch_status_update__unpack(
                NULL, payload->len, (const uint8_t *)payload->str);
            if (u == NULL)
                continue;
            Rte__V1__Timestamp ts;
            int last = u->event_type == RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_COMPLETED ||
                       u->event_type == RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_FAILED;
            int sent = 0;
            if (br_events_id_ts(after, &ts) == 0 && (mask == 0 || mask & (1u << u->event_type))) {
                u->timestamp = &ts;
                sent = rte_grpc_stream_send(call, &u->base) == 0 ? 1 : -1;
                u->timestamp = NULL;
            }
            rte__v1__batch_status_update__free_unpacked(u, NULL);
            if (sent < 0 || last) {
                freeReplyObject(rep);
                return;
            }
            idle_since = rte_clock_mono_ms();
        }
        freeReplyObject(rep);
        if (got > 0)
            continue;
        /* nothing new: has the job ended without a final update we could read? */
        redisReply *h =
            rte_redis_cmd(r, err, sizeof err, "HGET %s:j:%s ended", BR.c.jobs.prefix, id);
        int ended = h == NULL || h->type != REDIS_REPLY_STRING || strcmp(h->str, "1") == 0;
        if (h)
            freeReplyObject(h);
        if (ended && ++quiet_ended >= 3)
            return;
        if (rte_clock_mono_ms() - idle_since >= BR.c.keepalive_ms) {
            Rte__V1__BatchStatusUpdate k = RTE__V1__BATCH_STATUS_UPDATE__INIT;
            Rte__V1__Timestamp ts;
            if (after[0] == '\0' || br_events_id_ts(after, &ts) != 0)
                br_ts(&ts, 0);
            k.timestamp = &ts;
            k.event_type = RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_PROGRESS;
            k.batch_id = (char *)id;
            if (rte_grpc_stream_send(call, &k.base) != 0)
                return;
            idle_since = rte_clock_mono_ms();
        }
        if (!rte_grpc_stream_wait(call, (int)BR.c.watch_poll_ms))
            return;
    }
}

static void watch(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__WatchBatchRequest *req = (const Rte__V1__WatchBatchRequest *)m;
    const char *resume = rte_grpc_metadata(call, RESUME_KEY);
    char after[RTE_JOBS_EVID_MAX] = "";
    unsigned mask = 0;
    br_job j;

    (void)arg;
    if (!may_read(call))
        return;
    for (size_t i = 0; i < req->n_event_types; i++) {
        int t = (int)req->event_types[i];
        if (t < 0 || t > 4) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "event_types[%zu]: unknown value %d (EVENT_TYPE_STARTED .. "
                            "EVENT_TYPE_FAILED)",
                            i, t);
            return;
        }
        mask |= 1u << t;
    }
    if (resume != NULL) {
        long long s;
        long ns;
        char *end;
        s = strtoll(resume, &end, 10);
        if (end == resume || *end != '.' || s < 0) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            RESUME_KEY " metadata: expected <seconds>.<nanos> of the last "
                                       "update's timestamp");
            return;
        }
        const char *ns_s = end + 1;
        ns = strtol(ns_s, &end, 10);
        if (end == ns_s || *end != '\0' || ns < 0 || ns > 999999999) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            RESUME_KEY " metadata: nanos must be 0..999999999");
            return;
        }
        br_events_ts_id(s, (int32_t)ns, after, sizeof after);
    }
    if (!load_own(call, req->batch_id, &j))
        return;
    audit("WatchBatchStatus", j.caller, j.id, "resume=%s", resume ? "yes" : "no");
    br_job_clear(&j);
    stream_updates(call, req->batch_id, mask, after);
}

static void submit_streaming(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__SubmitBatchRequest *req = (const Rte__V1__SubmitBatchRequest *)m;
    char id[RTE_JOBS_ID_MAX];
    int replayed;

    (void)arg;
    if (submit(call, req, id, &replayed) != 0)
        return;
    stream_updates(call, id, 0, "");
}

/* br_grpc_methods - any thread */
const rte_grpc_method *br_grpc_methods(void)
{
    /* scopes: SubmitBatch, SubmitBatchStreaming and CancelBatch need rte:batch:submit (the
     * server refuses before the handler); the read methods check either scope themselves */
    static const rte_grpc_method m[] = {
        {"/rte.v1.BatchEligibilityService/SubmitBatch", &rte__v1__submit_batch_request__descriptor,
         &rte__v1__submit_batch_response__descriptor, submit_batch, NULL, NULL, BR_SCOPE_SUBMIT},
        {"/rte.v1.BatchEligibilityService/GetBatchStatus",
         &rte__v1__get_batch_status_request__descriptor,
         &rte__v1__get_batch_status_response__descriptor, get_status, NULL, NULL, NULL},
        {"/rte.v1.BatchEligibilityService/ListBatches", &rte__v1__list_batches_request__descriptor,
         &rte__v1__list_batches_response__descriptor, list_batches, NULL, NULL, NULL},
        {"/rte.v1.BatchEligibilityService/CancelBatch", &rte__v1__cancel_batch_request__descriptor,
         &rte__v1__cancel_batch_response__descriptor, cancel_batch, NULL, NULL, BR_SCOPE_SUBMIT},
        {"/rte.v1.BatchEligibilityService/SubmitBatchStreaming",
         &rte__v1__submit_batch_request__descriptor, &rte__v1__batch_status_update__descriptor,
         NULL, submit_streaming, NULL, BR_SCOPE_SUBMIT},
        {"/rte.v1.BatchEligibilityService/WatchBatchStatus",
         &rte__v1__watch_batch_request__descriptor, &rte__v1__batch_status_update__descriptor, NULL,
         watch, NULL},
        {NULL},
    };
    return m;
}
