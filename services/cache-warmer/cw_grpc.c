/*
 * cw_grpc.c - CacheWarmingService (contract in cw_grpc.h).
 *
 * Handlers run on gRPC worker threads; each uses its thread's Redis
 * connection and the shared decision path, so a WarmCache of 1,000 members
 * costs the same few round trips as a Kafka batch.
 */
#include "cw_grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_warming.pb-c.h"
#include "cw_decide.h"
#include "cw_sched.h"
#include "cw_stats.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/service.h"

#define ID_MAX 128
#define SOURCE_MAX 64

static const char *const known_ops[] = {"check_eligibility", "get_coverage", "view_benefits",
                                        "get_benefits", NULL};

/* a source label: 1..64 of [A-Za-z0-9._:-] */
static int source_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SOURCE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* INVALID_ARGUMENT naming the field, or 0 when req is acceptable */
static int check_warm(rte_grpc_call *call, const Rte__V1__WarmCacheRequest *req)
{
    if (req->n_member_ids == 0 || req->n_member_ids > (size_t)CW.c.request_max) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "member_ids: expected 1..%d member ids, got %zu", CW.c.request_max,
                        req->n_member_ids);
        return -1;
    }
    for (size_t i = 0; i < req->n_member_ids; i++) {
        size_t n = strlen(req->member_ids[i]);
        if (n == 0 || n > ID_MAX) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "member_ids[%zu]: expected 1..%d bytes", i, ID_MAX);
            return -1;
        }
    }
    for (size_t i = 0; i < req->n_operations; i++) {
        int k = 0;
        while (known_ops[k] && strcmp(known_ops[k], req->operations[i]) != 0)
            k++;
        if (!known_ops[k]) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "operations[%zu]: unknown operation '%.40s' (known: "
                            "check_eligibility, get_coverage, view_benefits, get_benefits)",
                            i, req->operations[i]);
            return -1;
        }
    }
    if ((int)req->strategy < 0 || (int)req->strategy > 2) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "strategy: unknown value %d (INTELLIGENT, FORCE, FILL_ONLY)",
                        (int)req->strategy);
        return -1;
    }
    if ((int)req->priority < 0 || (int)req->priority > 2) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "priority: unknown value %d (BACKGROUND, PRELOAD, URGENT)",
                        (int)req->priority);
        return -1;
    }
    if (req->source[0] != '\0' && !source_ok(req->source)) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                        "source: expected 1..%d characters of [A-Za-z0-9._:-]", SOURCE_MAX);
        return -1;
    }
    return 0;
}

static void warm_cache(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__WarmCacheRequest *req = (const Rte__V1__WarmCacheRequest *)m;
    const char *source = req->source[0] ? req->source : "grpc";
    char err[512], job[40], id[37];
    int queued = 0, batched = 0;
    cw_req *q;

    (void)arg;
    if (check_warm(call, req) != 0)
        return;
    q = calloc(req->n_member_ids, sizeof *q);
    if (q == NULL) {
        rte_grpc_status(call, RTE_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < req->n_member_ids; i++)
        q[i] = (cw_req){.member_id = req->member_ids[i],
                        .probability = -1,
                        .priority = (int)req->priority,
                        .strategy = (int)req->strategy};
    if (cw_decide(q, (int)req->n_member_ids, source, err, sizeof err) != 0) {
        free(q);
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "warming queue unavailable: %s", err);
        return;
    }
    for (size_t i = 0; i < req->n_member_ids; i++) {
        queued += q[i].outcome == CW_QUEUED || q[i].outcome == CW_WARMED;
        batched += q[i].outcome == CW_QUEUED;
    }
    free(q);
    rte_uuid4(id);
    snprintf(job, sizeof job, "wj-%s", id);
    int64_t eta = rte_clock_now_ms();
    if (batched > 0)
        eta += CW.c.warm.window_ms + CW.c.batch_eta_ms;
    Rte__V1__Timestamp ts = RTE__V1__TIMESTAMP__INIT;
    ts.seconds = eta / 1000;
    ts.nanos = (int32_t)(eta % 1000) * 1000000;
    Rte__V1__WarmCacheResponse resp = RTE__V1__WARM_CACHE_RESPONSE__INIT;
    resp.warming_job_id = job;
    resp.members_queued = queued;
    resp.members_skipped = (int32_t)req->n_member_ids - queued;
    resp.estimated_completion = &ts;
    rte_log_info("cache-warmer: WarmCache %s from %s: %d queued or warmed, %d skipped", job, source,
                 queued, resp.members_skipped);
    rte_grpc_reply(call, &resp.base);
}

static int64_t ts_ms(const Rte__V1__Timestamp *t)
{
    return t->seconds * 1000 + t->nanos / 1000000;
}

static void get_stats(rte_grpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Rte__V1__GetWarmingStatsRequest *req = (const Rte__V1__GetWarmingStatsRequest *)m;
    int64_t now = rte_clock_now_ms();
    int64_t end = req->end_time ? ts_ms(req->end_time) : now + 1;
    int64_t start = req->start_time ? ts_ms(req->start_time) : end - 24 * 3600000LL;
    cw_stats st;
    char err[256];

    (void)arg;
    if (req->start_time && req->start_time->nanos < 0) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "start_time.nanos: must be 0..999999999");
        return;
    }
    if (end <= start) {
        rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT, "end_time: must be after start_time");
        return;
    }
    for (size_t i = 0; i < req->n_sources; i++)
        if (!source_ok(req->sources[i])) {
            rte_grpc_status(call, RTE_GRPC_INVALID_ARGUMENT,
                            "sources[%zu]: expected 1..%d characters of [A-Za-z0-9._:-]", i,
                            SOURCE_MAX);
            return;
        }
    if (cw_stats_query(rte_service_redis(), start, end, (const char *const *)req->sources,
                       (int)req->n_sources, &st, err, sizeof err) != 0) {
        rte_grpc_status(call, RTE_GRPC_UNAVAILABLE, "%s", err);
        return;
    }
    Rte__V1__WarmingStats__BySourceEntry ent[CW_STATS_MAX_SOURCES], *ep[CW_STATS_MAX_SOURCES];
    for (int s = 0; s < st.nsources; s++) {
        rte__v1__warming_stats__by_source_entry__init(&ent[s]);
        ent[s].key = st.source[s];
        ent[s].value = (int32_t)st.by_source[s];
        ep[s] = &ent[s];
    }
    Rte__V1__Duration avg = RTE__V1__DURATION__INIT;
    avg.seconds = (int64_t)(st.avg_warm_ms / 1000);
    avg.nanos = (int32_t)((int64_t)st.avg_warm_ms % 1000) * 1000000;
    Rte__V1__WarmingStats ws = RTE__V1__WARMING_STATS__INIT;
    ws.total_members_warmed = (int32_t)st.warmed;
    ws.cache_hits_avoided = (int32_t)st.used;
    ws.n_by_source = (size_t)st.nsources;
    ws.by_source = ep;
    ws.prediction_accuracy = (float)st.accuracy;
    ws.avg_warm_duration = &avg;
    ws.cache_hit_rate_improvement = (float)st.hit_improvement;
    Rte__V1__GetWarmingStatsResponse resp = RTE__V1__GET_WARMING_STATS_RESPONSE__INIT;
    resp.stats = &ws;
    rte_grpc_reply(call, &resp.base);
}

/* cw_grpc_methods - any thread */
const rte_grpc_method *cw_grpc_methods(void)
{
    /* scopes: docs/auth.md ("Scopes per service") */
    static const rte_grpc_method m[] = {
        {"/rte.v1.CacheWarmingService/WarmCache", &rte__v1__warm_cache_request__descriptor,
         &rte__v1__warm_cache_response__descriptor, warm_cache, NULL, NULL, CW_SCOPE_WRITE},
        {"/rte.v1.CacheWarmingService/ScheduleWarming",
         &rte__v1__schedule_warming_request__descriptor,
         &rte__v1__schedule_warming_response__descriptor, cw_sched_schedule_warming, NULL, NULL,
         CW_SCOPE_WRITE},
        {"/rte.v1.CacheWarmingService/GetWarmingStats",
         &rte__v1__get_warming_stats_request__descriptor,
         &rte__v1__get_warming_stats_response__descriptor, get_stats, NULL, NULL, CW_SCOPE_READ},
        {NULL},
    };
    return m;
}
