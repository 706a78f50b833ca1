/*
 * rtectl_batch.c - `rtectl batch submit|status|list|watch|cancel`: an
 * operator's client of batch-rpc's BatchEligibilityService (docs/batch-rpc.md).
 *
 *   rtectl batch submit [options] (--members FILE | MEMBER_ID ...)
 *       --service NAME (default "rtectl"), --job-id ID, --strategy
 *       optimal|batch|realtime, --priority low|normal|high, --window
 *       any|business|morning|evening|low|engagement, --cache
 *       default|cache_only|prefer_cached|bypass|swr, --concurrency N;
 *       FILE holds one member id a line
 *   rtectl batch status BATCH_ID
 *   rtectl batch list [--page-size N] [--page-token T]
 *   rtectl batch watch BATCH_ID          one JSON line per update until the end
 *   rtectl batch cancel BATCH_ID [--reason TEXT]
 *
 * Where: --addr HOST:PORT, else RTE_BATCHRPC_ADDR, else 127.0.0.1:50051;
 * a bearer token with --token, else RTE_BATCHRPC_TOKEN. Output is JSON on
 * stdout; exit 0 on success, 1 on bad usage, 2 when the call failed (the
 * gRPC code and message are printed), 3 for NOT_FOUND.
 */
#include "rtectl_batch.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_eligibility.pb-c.h"
#include "rte/grpc_client.h"

#define SVC "/rte.v1.BatchEligibilityService/"
#define TIMEOUT_MS 30000
#define WATCH_MS (7 * 24 * 3600 * 1000)

static const char *const status_names[] = {"PENDING", "RUNNING",   "COMPLETED",
                                           "FAILED",  "CANCELLED", "PARTIALLY_COMPLETED"};
static const char *const event_names[] = {"STARTED", "PROGRESS", "MEMBER_COMPLETED", "COMPLETED",
                                          "FAILED"};

static int usage(void)
{
    fprintf(stderr,
            "usage: rtectl batch submit [--addr A] [--token T] [--service NAME] [--job-id ID]\n"
            "                    [--strategy optimal|batch|realtime] [--priority low|normal|high]\n"
            "                    [--window any|business|morning|evening|low|engagement]\n"
            "                    [--cache default|cache_only|prefer_cached|bypass|swr]\n"
            "                    [--concurrency N] (--members FILE | MEMBER_ID ...)\n"
            "       rtectl batch status|watch BATCH_ID [--addr A] [--token T]\n"
            "       rtectl batch list [--page-size N] [--page-token T] [--addr A] [--token T]\n"
            "       rtectl batch cancel BATCH_ID [--reason TEXT] [--addr A] [--token T]\n");
    return 1;
}

static int pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static const char *status_name(int s)
{
    return s >= 0 && s <= 5 ? status_names[s] : "UNKNOWN";
}

static void print(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(o);
}

static int failed(int code, const char *msg)
{
    static const char *const codes[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code >= 0 && code <= 16 ? codes[code] : "UNKNOWN");
    cJSON_AddStringToObject(o, "message", msg);
    print(o);
    return code == 5 ? 3 : 2;
}

static void progress_json(cJSON *o, const Rte__V1__BatchProgress *p)
{
    if (p == NULL)
        return;
    cJSON_AddNumberToObject(o, "total_members", p->total_members);
    cJSON_AddNumberToObject(o, "completed", p->completed);
    cJSON_AddNumberToObject(o, "failed", p->failed);
    cJSON_AddNumberToObject(o, "pending", p->pending);
    cJSON_AddNumberToObject(o, "cache_hits", p->cache_hits);
    cJSON_AddNumberToObject(o, "cache_misses", p->cache_misses);
}

/* options shared by every subcommand; the rest stay in argv for the caller */
struct common {
    const char *addr, *token;
};

static int take_common(int *argc, char **argv, struct common *c)
{
    int k = 0;
    c->addr = getenv("RTE_BATCHRPC_ADDR");
    c->token = getenv("RTE_BATCHRPC_TOKEN");
    if (c->addr == NULL || c->addr[0] == '\0')
        c->addr = "127.0.0.1:50051";
    for (int i = 0; i < *argc; i++) {
        if ((strcmp(argv[i], "--addr") == 0 || strcmp(argv[i], "--token") == 0) && i + 1 < *argc) {
            if (argv[i][2] == 'a')
                c->addr = argv[i + 1];
            else
                c->token = argv[i + 1];
            i++;
            continue;
        }
        argv[k++] = argv[i];
    }
    *argc = k;
    return 0;
}

/* member ids of FILE (one a line) appended to l */
static int read_members(const char *path, Rte__V1__MemberIdList *l)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        char **ids = realloc(l->member_ids, sizeof *ids * (l->n_member_ids + 1));
        if (ids == NULL)
            break;
        l->member_ids = ids;
        l->member_ids[l->n_member_ids++] = strdup(line);
    }
    fclose(f);
    return 0;
}

static int submit(rte_grpc_client *cl, int argc, char **argv)
{
    static const char *const strategies[] = {"optimal", "batch", "realtime"};
    static const char *const priorities[] = {"low", "normal", "high"};
    static const char *const windows[] = {"any", "morning", "evening", "low", "engagement"};
    static const int window_values[] = {0, 2, 3, 4, 5};
    static const char *const caches[] = {"default", "cache_only", "prefer_cached", "bypass", "swr"};
    Rte__V1__SubmitBatchRequest req = RTE__V1__SUBMIT_BATCH_REQUEST__INIT;
    Rte__V1__BatchExecutionOptions o = RTE__V1__BATCH_EXECUTION_OPTIONS__INIT;
    Rte__V1__MemberIdList l = RTE__V1__MEMBER_ID_LIST__INIT;
    ProtobufCMessage *resp = NULL;
    char err[512];
    int rc = 1, v;

    req.client_service_name = "rtectl";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(a, "--", 2) != 0) {
            char **ids = realloc(l.member_ids, sizeof *ids * (l.n_member_ids + 1));
            if (ids == NULL)
                goto out;
            l.member_ids = ids;
            l.member_ids[l.n_member_ids++] = strdup(a);
            continue;
        }
        if (val == NULL)
            goto out;
        i++;
        if (strcmp(a, "--service") == 0)
            req.client_service_name = (char *)val;
        else if (strcmp(a, "--job-id") == 0)
            req.client_job_id = (char *)val;
        else if (strcmp(a, "--members") == 0 && read_members(val, &l) == 0)
            ;
        else if (strcmp(a, "--strategy") == 0 && (v = pick(val, strategies, 3)) >= 0)
            o.strategy = (Rte__V1__BatchExecutionOptions__Strategy)v;
        else if (strcmp(a, "--priority") == 0 && (v = pick(val, priorities, 3)) >= 0)
            o.priority = (Rte__V1__BatchExecutionOptions__Priority)v;
        else if (strcmp(a, "--window") == 0 && strcmp(val, "business") == 0)
            o.scheduling_window = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_BUSINESS_HOURS;
        else if (strcmp(a, "--window") == 0 && (v = pick(val, windows, 5)) >= 0)
            o.scheduling_window = (Rte__V1__SchedulingWindow)window_values[v];
        else if (strcmp(a, "--cache") == 0 && (v = pick(val, caches, 5)) >= 0)
            req.cache_control = (Rte__V1__CacheControl)v;
        else if (strcmp(a, "--concurrency") == 0 && (v = (int)strtol(val, NULL, 10)) > 0)
            o.max_concurrent_requests = v;
        else
            goto out;
    }
    if (l.n_member_ids == 0)
        goto out;
    req.member_selector_case = RTE__V1__SUBMIT_BATCH_REQUEST__MEMBER_SELECTOR_MEMBER_IDS;
    req.member_ids = &l;
    req.options = &o;
    int code = rte_grpc_client_unary(cl, SVC "SubmitBatch", &req.base,
                                     &rte__v1__submit_batch_response__descriptor, &resp, TIMEOUT_MS,
                                     err, sizeof err);
    if (code != 0) {
        rc = failed(code, err);
        goto out;
    }
    const Rte__V1__SubmitBatchResponse *r = (const Rte__V1__SubmitBatchResponse *)resp;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "batch_id", r->batch_id);
    cJSON_AddNumberToObject(j, "total_members", r->total_members);
    if (r->resolved_options) {
        cJSON_AddStringToObject(j, "strategy", strategies[r->resolved_options->strategy % 3]);
        cJSON_AddNumberToObject(j, "max_concurrent_requests",
                                r->resolved_options->max_concurrent_requests);
    }
    if (r->estimated_completion)
        cJSON_AddNumberToObject(j, "estimated_completion",
                                (double)r->estimated_completion->seconds);
    print(j);
    rc = 0;
out:
    for (size_t i = 0; i < l.n_member_ids; i++)
        free(l.member_ids[i]);
    free(l.member_ids);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc == 1 ? usage() : rc;
}

static int status(rte_grpc_client *cl, const char *id)
{
    Rte__V1__GetBatchStatusRequest req = RTE__V1__GET_BATCH_STATUS_REQUEST__INIT;
    ProtobufCMessage *resp;
    char err[512];

    req.batch_id = (char *)id;
    int code = rte_grpc_client_unary(cl, SVC "GetBatchStatus", &req.base,
                                     &rte__v1__get_batch_status_response__descriptor, &resp,
                                     TIMEOUT_MS, err, sizeof err);
    if (code != 0)
        return failed(code, err);
    const Rte__V1__GetBatchStatusResponse *r = (const Rte__V1__GetBatchStatusResponse *)resp;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "batch_id", r->batch_id);
    cJSON_AddStringToObject(j, "status", status_name(r->status));
    progress_json(j, r->progress);
    cJSON_AddNumberToObject(j, "errors", (double)r->n_errors);
    print(j);
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static int list(rte_grpc_client *cl, int argc, char **argv)
{
    Rte__V1__ListBatchesRequest req = RTE__V1__LIST_BATCHES_REQUEST__INIT;
    ProtobufCMessage *resp;
    char err[512];

    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--page-size") == 0)
            req.page_size = (int32_t)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--page-token") == 0)
            req.page_token = argv[i + 1];
        else
            return usage();
    }
    if (argc % 2)
        return usage();
    int code = rte_grpc_client_unary(cl, SVC "ListBatches", &req.base,
                                     &rte__v1__list_batches_response__descriptor, &resp, TIMEOUT_MS,
                                     err, sizeof err);
    if (code != 0)
        return failed(code, err);
    const Rte__V1__ListBatchesResponse *r = (const Rte__V1__ListBatchesResponse *)resp;
    cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "batches");
    for (size_t i = 0; i < r->n_batches; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "batch_id", r->batches[i]->batch_id);
        cJSON_AddStringToObject(b, "client_service_name", r->batches[i]->client_service_name);
        cJSON_AddStringToObject(b, "client_job_id", r->batches[i]->client_job_id);
        cJSON_AddStringToObject(b, "status", status_name(r->batches[i]->status));
        progress_json(b, r->batches[i]->progress);
        cJSON_AddItemToArray(a, b);
    }
    cJSON_AddStringToObject(j, "next_page_token", r->next_page_token);
    print(j);
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static int on_update(void *arg, const ProtobufCMessage *m)
{
    const Rte__V1__BatchStatusUpdate *u = (const Rte__V1__BatchStatusUpdate *)m;
    cJSON *j = cJSON_CreateObject();
    (void)arg;
    cJSON_AddStringToObject(j, "event",
                            u->event_type <= 4 ? event_names[u->event_type] : "UNKNOWN");
    if (u->timestamp) {
        char ts[48];
        snprintf(ts, sizeof ts, "%lld.%09d", (long long)u->timestamp->seconds,
                 (int)u->timestamp->nanos);
        cJSON_AddStringToObject(j, "timestamp", ts);
    }
    cJSON_AddStringToObject(j, "batch_id", u->batch_id);
    if (u->update_case == RTE__V1__BATCH_STATUS_UPDATE__UPDATE_PROGRESS)
        progress_json(j, u->progress);
    else if (u->update_case == RTE__V1__BATCH_STATUS_UPDATE__UPDATE_COMPLETED) {
        cJSON_AddStringToObject(j, "status", status_name(u->completed->status));
        progress_json(j, u->completed->progress);
    } else if (u->update_case == RTE__V1__BATCH_STATUS_UPDATE__UPDATE_FAILED) {
        cJSON_AddStringToObject(j, "error_code", u->failed->error_code);
        cJSON_AddStringToObject(j, "error_message", u->failed->error_message);
        progress_json(j, u->failed->progress);
    } else if (u->update_case == RTE__V1__BATCH_STATUS_UPDATE__UPDATE_MEMBER_COMPLETED) {
        cJSON_AddBoolToObject(j, "success", u->member_completed->success);
    }
    print(j);
    return 0;
}

static int watch(rte_grpc_client *cl, const char *id)
{
    Rte__V1__WatchBatchRequest req = RTE__V1__WATCH_BATCH_REQUEST__INIT;
    char err[512];
    req.batch_id = (char *)id;
    int code = rte_grpc_client_stream(cl, SVC "WatchBatchStatus", &req.base,
                                      &rte__v1__batch_status_update__descriptor, on_update, NULL,
                                      WATCH_MS, err, sizeof err);
    return code == 0 ? 0 : failed(code, err);
}

static int cancel(rte_grpc_client *cl, const char *id, int argc, char **argv)
{
    Rte__V1__CancelBatchRequest req = RTE__V1__CANCEL_BATCH_REQUEST__INIT;
    ProtobufCMessage *resp;
    char err[512];

    req.batch_id = (char *)id;
    if (argc == 2 && strcmp(argv[0], "--reason") == 0)
        req.reason = argv[1];
    else if (argc != 0)
        return usage();
    int code = rte_grpc_client_unary(cl, SVC "CancelBatch", &req.base,
                                     &rte__v1__cancel_batch_response__descriptor, &resp, TIMEOUT_MS,
                                     err, sizeof err);
    if (code != 0)
        return failed(code, err);
    const Rte__V1__CancelBatchResponse *r = (const Rte__V1__CancelBatchResponse *)resp;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "batch_id", r->batch_id);
    cJSON_AddStringToObject(j, "status", status_name(r->status));
    cJSON_AddNumberToObject(j, "members_cancelled", r->members_cancelled);
    print(j);
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

/* rtectl_batch_is_rpc - main thread */
int rtectl_batch_is_rpc(const char *sub)
{
    static const char *const subs[] = {"submit", "status", "list", "watch", "cancel"};
    return pick(sub, subs, 5) >= 0;
}

/* rtectl_batch_rpc - main thread */
int rtectl_batch_rpc(int argc, char **argv)
{
    struct common c;
    char err[256];
    int rc;

    if (argc < 1)
        return usage();
    const char *sub = argv[0];
    argc--, argv++;
    take_common(&argc, argv, &c);
    rte_grpc_client *cl = rte_grpc_client_new(c.addr, c.token, err, sizeof err);
    if (cl == NULL)
        return failed(14, err);
    if (strcmp(sub, "submit") == 0)
        rc = submit(cl, argc, argv);
    else if (strcmp(sub, "list") == 0)
        rc = list(cl, argc, argv);
    else if (argc < 1)
        rc = usage();
    else if (strcmp(sub, "status") == 0)
        rc = argc == 1 ? status(cl, argv[0]) : usage();
    else if (strcmp(sub, "watch") == 0)
        rc = argc == 1 ? watch(cl, argv[0]) : usage();
    else
        rc = cancel(cl, argv[0], argc - 1, argv + 1);
    rte_grpc_client_free(cl);
    return rc;
}
