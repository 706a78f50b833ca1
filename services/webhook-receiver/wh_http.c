/*
 * wh_http.c - POST /api/v1/batch-callback and the admin routes (wh_http.h).
 *
 * The media type is checked first, on the loop thread (rte_http_require_json:
 * 415 unless Content-Type is JSON and there is no content coding): it is
 * public, unsigned and cheap, and a wrong one is refused before a worker
 * spends an HMAC on the body.
 *
 * Threads: handlers run on the h2o loop thread and never block on Kafka;
 * the queue (mutex + condition variable) hands deferred requests to a fixed
 * pool of workers, each with its own scratch buffer and its own Redis
 * connection (rte_service_redis). The queue is bounded: beyond
 * wh.queue_max waiting callbacks the loop answers 503 at once, so a stalled
 * broker turns into quick retries for senders, not unbounded memory.
 *
 * A worker verifies, validates and claims the delivery, hands the envelopes
 * to the producer (rte_kafka_produce_async) and takes the next request: it
 * does not wait for the broker. The answer is sent when the last part's
 * delivery report arrives (on the producer's poll thread): 202 once every
 * part is acknowledged (acks=all), so nothing answered 202 can be lost; on
 * a failed part, or when wh.produce_timeout passes first (the sweeper
 * thread), the request goes back to a worker, which forgets the delivery
 * id and answers 503. So concurrency is bounded by wh.queue_max and the
 * producer's queue, not by the number of workers. A waiting request (struct
 * job) lives until it is answered and every part has been reported, under
 * P.mu.
 */
#include "wh_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/batch_registry.h"
#include "rte/clock.h"
#include "rte/input.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/stedi_reply.h"
#include "rte/topics.h"
#include "wh.h"
#include "wh_callback.h"
#include "wh_sig.h"

struct job {
    rte_http_req *req;
    int64_t t0;
    char x_sig[160];
    char wh_id[300];
    char wh_ts[40];
    char wh_sig[2048];
    int has_x, has_id, has_ts, has_sig;
    struct job *next; /* in Q */
    /* once produced, under P.mu */
    int fail_answer;            /* a queued 503 answer, not a request to process */
    int left;                   /* parts without a delivery report */
    int answered;               /* 202 or 503 sent (or handed to a worker) */
    int failed;                 /* a part was not delivered (err says why) */
    int64_t deadline, t_handed; /* monotonic ms: wh.produce_timeout; parts handed over */
    struct job *pprev, *pnext;  /* in P while not answered */
    char batch_id[RTE_BATCH_ID_MAX];
    int nresults, nparts;
    int claimed;   /* 1: key was set by claim_delivery (forget it on failure) */
    char key[400]; /* the delivery id's Redis key */
    char err[256]; /* why the callback was not stored */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int len;
    int stopping;
    pthread_t *threads;
    int nthreads;
} Q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* callbacks handed to the producer and not yet answered, oldest deadline first */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the sweeper's sleep (monotonic clock); signalled to stop it */
    struct job *head, *tail;
    int stopping;
    pthread_t sweeper;
    int sweeper_started;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void respond_status(rte_http_req *req, int code, const char *status, const char *batch_id,
                           int results, int parts)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "status", status);
    if (batch_id != NULL)
        cJSON_AddStringToObject(d, "batch_id", batch_id);
    if (results >= 0)
        cJSON_AddNumberToObject(d, "results", results);
    if (parts >= 0)
        cJSON_AddNumberToObject(d, "parts", parts);
    cJSON_AddStringToObject(d, "request_id", rte_http_req_id(req));
    rte_http_respond_json(req, code, d);
    cJSON_Delete(d);
}

static void finish(struct job *j, const char *result)
{
    wh_count(WM.callbacks, result, NULL);
    rte_series_observe(rte_metric_series0(WM.ack), (double)(rte_clock_mono_ms() - j->t0) / 1000.0);
}

/* SET NX the delivery id: 1 first time, 0 seen before, -1 Redis unavailable */
static int claim_delivery(const char *replay_id, char *key, size_t keylen)
{
    char err[256], ttl[24];
    snprintf(key, keylen, "rte:wh:delivery:%s", replay_id);
    snprintf(ttl, sizeof ttl, "%lld", (long long)WH.replay_ttl_ms);
    const char *argv[] = {"SET", key, "1", "NX", "PX", ttl};
    redisReply *rep = rte_redis_cmdargv(rte_service_redis(), 6, argv, NULL, err, sizeof err);
    if (rep == NULL) {
        rte_log_warn("replay check skipped: %s; accepting the callback (the consumer applies it "
                     "once by content)",
                     err);
        return -1;
    }
    int first = rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    return first;
}

static void unclaim_delivery(const char *key)
{
    char err[256];
    const char *argv[] = {"DEL", key};
    redisReply *rep = rte_redis_cmdargv(rte_service_redis(), 2, argv, NULL, err, sizeof err);
    if (rep == NULL)
        rte_log_warn("could not forget delivery %s (%s); a retry of it will be answered 200 "
                     "without processing until wh.replay_ttl passes",
                     key, err);
    else
        freeReplyObject(rep);
}

static void pending_unlink(struct job *j)
{
    if (j->pprev != NULL)
        j->pprev->pnext = j->pnext;
    else
        P.head = j->pnext;
    if (j->pnext != NULL)
        j->pnext->pprev = j->pprev;
    else
        P.tail = j->pprev;
    j->pprev = j->pnext = NULL;
}

static void fail_answer(struct job *j, wh_buf *scratch);

/* a queued 503 answer for j (copied: j may be freed by its last report); under P.mu */
static struct job *fail_copy(const struct job *j, const char *why)
{
    struct job *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->fail_answer = 1;
    f->req = j->req;
    f->t0 = j->t0;
    f->claimed = j->claimed;
    snprintf(f->batch_id, sizeof f->batch_id, "%s", j->batch_id);
    snprintf(f->key, sizeof f->key, "%s", j->key);
    snprintf(f->err, sizeof f->err, "%s", why);
    return f;
}

/* hand a 503 answer to a worker (it talks to Redis); during the stop, answer it here */
static void fail_enqueue(struct job *f)
{
    pthread_mutex_lock(&Q.mu);
    if (!Q.stopping) {
        f->next = NULL;
        if (Q.tail != NULL)
            Q.tail->next = f;
        else
            Q.head = f;
        Q.tail = f;
        Q.len++; /* may pass wh.queue_max: it is an answer owed, not new work */
        rte_series_set(rte_metric_series0(WM.queue), Q.len);
        pthread_cond_signal(&Q.cv);
        pthread_mutex_unlock(&Q.mu);
        return;
    }
    pthread_mutex_unlock(&Q.mu);
    wh_buf scratch = {0};
    fail_answer(f, &scratch);
    wh_buf_free(&scratch);
    free(f);
}

/*
 * one part's delivery report (error NULL: acknowledged); on the producer's
 * poll thread, or on the worker for a part the producer refused. The last
 * report of a callback answers it 202 unless it was answered already.
 */
static void part_reported(void *arg, const char *error)
{
    struct job *j = arg, *f = NULL;
    int accept = 0, release = 0;
    const char *lv[] = {"callback", NULL};
    rte_histogram_observe(WM.produce, lv, (double)(rte_clock_mono_ms() - j->t_handed) / 1000.0);
    pthread_mutex_lock(&P.mu);
    j->left--;
    if (error != NULL && !j->failed) {
        j->failed = 1;
        snprintf(j->err, sizeof j->err, "%s", error);
    }
    if (!j->answered && (j->failed || j->left == 0)) {
        if (j->failed)
            f = fail_copy(j, j->err); /* NULL (out of memory): the sweeper answers it */
        if (!j->failed || f != NULL) {
            j->answered = 1;
            pending_unlink(j);
            accept = !j->failed;
        }
    }
    release = j->left == 0 && j->answered;
    pthread_mutex_unlock(&P.mu);
    if (accept) {
        rte_log_debug("callback %s: %d parts acknowledged in %lld ms", j->batch_id, j->nparts,
                      (long long)(rte_clock_mono_ms() - j->t_handed));
        finish(j, "accepted"); /* counted before the sender can see the answer */
        respond_status(j->req, 202, "accepted", j->batch_id, j->nresults, j->nparts);
    }
    if (f != NULL)
        fail_enqueue(f);
    if (release)
        free(j);
}

/* forget the delivery id and answer 503 (a worker, or the stopping thread) */
static void fail_answer(struct job *f, wh_buf *scratch)
{
    (void)scratch;
    if (f->claimed == 1)
        unclaim_delivery(f->key);
    rte_log_error("callback for batch %s not stored durably (%s); answered 503 so the sender "
                  "retries",
                  f->batch_id, f->err);
    finish(f, "unavailable"); /* counted before the sender can see the answer */
    rte_http_add_header(f->req, "Retry-After", "5");
    rte_http_error(f->req, 503, "could not store the callback durably; retry later");
}

/* the sweeper: answers (through a worker) callbacks not acknowledged within wh.produce_timeout */
static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&P.mu);
    while (!P.stopping) {
        int64_t now = rte_clock_mono_ms();
        while (P.head != NULL && P.head->deadline <= now) {
            struct job *j = P.head, *f;
            char why[160];
            snprintf(why, sizeof why, "not acknowledged within %d ms", WH.produce_timeout_ms);
            f = fail_copy(j, j->failed ? j->err : why);
            if (f == NULL)
                break; /* out of memory: try again on the next tick */
            j->answered = 1;
            pending_unlink(j);
            int release = j->left == 0; /* else its last report frees it */
            pthread_mutex_unlock(&P.mu);
            fail_enqueue(f);
            if (release)
                free(j);
            pthread_mutex_lock(&P.mu);
        }
        struct timespec ts = rte_clock_mono_timespec(rte_clock_mono_ms() + 50);
        pthread_cond_timedwait(&P.cv, &P.mu, &ts);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

/*
 * hand every envelope to the producer; j is answered by the delivery
 * reports (or the sweeper) and must not be touched after this returns
 */
static void produce_all(struct job *j, const wh_envelopes *env)
{
    rte_kafka_producer *p = rte_service_producer();
    const rte_kafka_header h[] = {{"rte-kind", WH_KIND_CALLBACK, strlen(WH_KIND_CALLBACK)}};
    int n = env->n;
    pthread_mutex_lock(&P.mu);
    j->left = n;
    j->nparts = n;
    j->t_handed = rte_clock_mono_ms();
    j->deadline = j->t_handed + WH.produce_timeout_ms;
    j->pnext = NULL;
    j->pprev = P.tail;
    if (P.tail != NULL)
        P.tail->pnext = j;
    else
        P.head = j;
    P.tail = j;
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < n; i++) {
        char err[256];
        if (p == NULL) {
            part_reported(j, "no Kafka producer");
            continue;
        }
        if (rte_kafka_produce_async(p, RTE_TOPIC_STEDI_BATCH_RESULTS, j->batch_id,
                                    strlen(j->batch_id), env->msg[i], env->len[i], h, 1,
                                    part_reported, j, err, sizeof err) != 0)
            part_reported(j, err); /* the last part's report may free j */
    }
}

/* verify, validate, claim, produce; *handed = 1 when j now belongs to the delivery reports */
static void process(struct job *j, wh_buf *scratch, int *handed)
{
    rte_http_req *req = j->req;
    size_t len;
    const char *body = rte_http_req_body(req, &len);
    const char *scheme = "none", *why = NULL;
    char replay_id[320], key[400], err[512];
    wh_callback cb;
    wh_envelopes env = {0};

    rte_log_set_request_id(rte_http_req_id(req));
    wh_sig_input in = {body,
                       len,
                       j->has_x ? j->x_sig : NULL,
                       j->has_id ? j->wh_id : NULL,
                       j->has_ts ? j->wh_ts : NULL,
                       j->has_sig ? j->wh_sig : NULL};
    enum wh_sig_result sr =
        wh_sig_verify(&in, &WH.secrets, (int64_t)time(NULL), WH.tolerance_ms / 1000, scratch,
                      &scheme, replay_id, sizeof replay_id, &why);
    if (sr != WH_SIG_OK) {
        wh_count(WM.sig_failures, scheme, wh_sig_reason(sr));
        /* RFC 9110 15.5.2: a 401 carries a challenge; the "scheme" is the signature */
        rte_http_add_header(req, "WWW-Authenticate", "Webhook-Signature realm=\"batch-callback\"");
        rte_http_error(req, 401, "%s", why);
        finish(j, sr == WH_SIG_EXPIRED ? "expired" : "bad_signature");
        goto out;
    }
    int64_t t_sig = rte_clock_mono_ms();
    if (wh_callback_parse(body, len, WH.max_results, &cb, err, sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        finish(j, "invalid");
        goto out;
    }
    int claimed = claim_delivery(replay_id, key, sizeof key);
    if (claimed == 0) {
        wh_count(WM.replays, scheme, NULL);
        respond_status(req, 200, "duplicate", cb.batch_id, -1, -1);
        finish(j, "duplicate");
        goto free_cb;
    }
    char id[WH_CONTENT_ID_LEN + 1];
    wh_content_id(body, len, id);
    int64_t t_parse = rte_clock_mono_ms();
    if (wh_callback_envelopes(&cb, id, rte_clock_now_ms(), WH.chunk_bytes, &env) != 0) {
        if (claimed == 1)
            unclaim_delivery(key);
        rte_log_error("callback for batch %s not stored durably (out of memory); answered 503 so "
                      "the sender retries",
                      cb.batch_id);
        rte_http_add_header(req, "Retry-After", "5");
        rte_http_error(req, 503, "could not store the callback durably; retry later");
        finish(j, "unavailable");
        goto free_cb;
    }
    rte_log_debug("callback %s: %d results, %zu bytes: verified in %lld ms, parsed and validated "
                  "in %lld ms, %d envelopes in %lld ms; handing them to the producer",
                  cb.batch_id, cb.nresults, len, (long long)(t_sig - j->t0),
                  (long long)(t_parse - t_sig), env.n, (long long)(rte_clock_mono_ms() - t_parse));
    snprintf(j->batch_id, sizeof j->batch_id, "%s", cb.batch_id);
    snprintf(j->key, sizeof j->key, "%s", key);
    j->claimed = claimed;
    j->nresults = cb.nresults;
    produce_all(j, &env); /* the producer copied the envelopes; j is the reports' now */
    *handed = 1;
free_cb:
    wh_envelopes_free(&env);
    wh_callback_free(&cb);
out:
    rte_log_set_request_id(NULL);
}

static void *worker_main(void *arg)
{
    (void)arg;
    wh_buf scratch = {0};
    for (;;) {
        pthread_mutex_lock(&Q.mu);
        while (Q.head == NULL && !Q.stopping)
            pthread_cond_wait(&Q.cv, &Q.mu);
        struct job *j = Q.head;
        if (j == NULL) { /* stopping and drained */
            pthread_mutex_unlock(&Q.mu);
            break;
        }
        Q.head = j->next;
        if (Q.head == NULL)
            Q.tail = NULL;
        Q.len--;
        rte_series_set(rte_metric_series0(WM.queue), Q.len);
        pthread_mutex_unlock(&Q.mu);
        int handed = 0;
        if (j->fail_answer)
            fail_answer(j, &scratch);
        else
            process(j, &scratch, &handed);
        if (!handed)
            free(j);
    }
    wh_buf_free(&scratch);
    return NULL;
}

static int copy_header(rte_http_req *req, const char *name, char *buf, size_t len)
{
    return rte_http_req_header(req, name, buf, len) >= 0;
}

/* loop thread: refuse what is not JSON (415), copy headers, defer, queue */
static void h_callback(rte_http_req *req, void *arg)
{
    (void)arg;
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        rte_http_error(req, 503, "out of memory; retry later");
        return;
    }
    j->req = req;
    j->t0 = rte_clock_mono_ms();
    if (rte_http_require_json(req) != 0) {
        finish(j, "unsupported_media_type");
        free(j);
        return;
    }
    j->has_x = copy_header(req, "x-webhook-signature", j->x_sig, sizeof j->x_sig);
    j->has_id = copy_header(req, "webhook-id", j->wh_id, sizeof j->wh_id);
    j->has_ts = copy_header(req, "webhook-timestamp", j->wh_ts, sizeof j->wh_ts);
    j->has_sig = copy_header(req, "webhook-signature", j->wh_sig, sizeof j->wh_sig);
    pthread_mutex_lock(&Q.mu);
    if (Q.len >= WH.queue_max || Q.stopping) {
        pthread_mutex_unlock(&Q.mu);
        rte_http_add_header(req, "Retry-After", "1");
        rte_http_error(req, 503, "too many callbacks in progress; retry later");
        finish(j, "overloaded");
        free(j);
        return;
    }
    rte_http_defer(req);
    if (Q.tail != NULL)
        Q.tail->next = j;
    else
        Q.head = j;
    Q.tail = j;
    Q.len++;
    rte_series_set(rte_metric_series0(WM.queue), Q.len);
    pthread_cond_signal(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
}

/* the service types of one admin member: ["30", "MH"] or "30,MH"; absent = "30" */
static int member_types(const cJSON *m, int i, char *out, size_t len, char *err, size_t errlen)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "service_types"), *v;
    rte_stedi_asked asked;
    char why[160];
    size_t k = 0;

    out[0] = '\0';
    if (cJSON_IsArray(st)) {
        cJSON_ArrayForEach(v, st)
        {
            int w = cJSON_IsString(v)
                        ? snprintf(out + k, len - k, "%s%s", k ? "," : "", v->valuestring)
                        : -1;
            if (w < 0 || (size_t)w >= len - k) {
                snprintf(err, errlen, "members[%d].service_types: expected codes as strings", i);
                return -1;
            }
            k += (size_t)w;
        }
    } else if (cJSON_IsString(st)) {
        snprintf(out, len, "%s", st->valuestring);
    } else if (st != NULL) {
        snprintf(err, errlen, "members[%d].service_types: expected an array of codes", i);
        return -1;
    }
    if (rte_stedi_asked_parse(out, &asked, why, sizeof why) != 0) {
        snprintf(err, errlen, "members[%d].%s", i, why);
        return -1;
    }
    rte_stedi_asked_format(&asked, out, len);
    return 0;
}

/*
 * members[] of an admin registration ({submitter_id, member_id,
 * trading_partner_id, service_types?}) into m (keys and types written into
 * keys/types, RTE_CACHE_KEY_MAX and 16 bytes each); 0 or -1 + err naming
 * the field
 */
static int admin_members(const cJSON *arr, rte_batch_member *m, char (*keys)[RTE_CACHE_KEY_MAX],
                         char (*types)[16], char *err, size_t errlen)
{
    const cJSON *it;
    int i = 0;

    cJSON_ArrayForEach(it, arr)
    {
        const char *sti = NULL, *member = NULL, *tp = NULL;
        char why[256];
        if (!cJSON_IsObject(it) ||
            rte_json_id(it, "submitter_id", 80, &sti, why, sizeof why) != 0 ||
            rte_json_id(it, "member_id", 80, &member, why, sizeof why) != 0 ||
            rte_json_id(it, "trading_partner_id", 80, &tp, why, sizeof why) != 0) {
            snprintf(err, errlen, "members[%d]: %s", i,
                     cJSON_IsObject(it) ? why : "expected an object");
            return -1;
        }
        if (member_types(it, i, types[i], sizeof types[i], err, errlen) != 0)
            return -1;
        if (rte_cache_key(WH.cache.member_key_secret, member, tp, keys[i], sizeof keys[i]) != 0) {
            snprintf(err, errlen, "members[%d].trading_partner_id: too long for a cache key", i);
            return -1;
        }
        m[i] = (rte_batch_member){sti, keys[i], types[i]};
        i++;
    }
    return 0;
}

/* admin: register a batch for polling, with the members its items stand for */
static void h_register(rte_http_req *req, void *arg)
{
    (void)arg;
    size_t len;
    char err[512];
    const char *body = rte_http_req_body(req, &len);
    const char *id = NULL, *source = "manual", *sub = NULL;
    const cJSON *arr = NULL;
    int64_t items = 0;
    rte_batch_member *members = NULL;
    char(*keys)[RTE_CACHE_KEY_MAX] = NULL;
    char(*types)[16] = NULL;
    int nm = 0;
    int64_t sub_ms = 0;
    rte_json_set_prefix(NULL);
    cJSON *d = rte_json_parse(body, len, err, sizeof err);
    if (d == NULL || rte_json_string(d, "batch_id", RTE_BATCH_ID_MAX - 1, &id, err, sizeof err) ||
        rte_json_id_opt(d, "source", 63, &source, err, sizeof err) ||
        rte_json_int_opt(d, "items", 0, 1000000, &items, err, sizeof err) ||
        rte_json_string_opt(d, "submitted_at", 64, &sub, err, sizeof err) ||
        (sub != NULL && rte_input_timestamp(sub, strlen(sub), &sub_ms, "field 'submitted_at'", err,
                                            sizeof err) != 0)) {
        rte_http_error(req, 400, "%s", err);
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(d, "members") != NULL &&
        rte_json_array(d, "members", 0, 10000, &arr, err, sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        goto out;
    }
    nm = arr ? cJSON_GetArraySize(arr) : 0;
    members = calloc((size_t)nm + 1, sizeof *members);
    keys = calloc((size_t)nm + 1, sizeof *keys);
    types = calloc((size_t)nm + 1, sizeof *types);
    if (members == NULL || keys == NULL || types == NULL) {
        rte_http_error(req, 503, "out of memory; retry later");
        goto out;
    }
    if (nm > 0 && admin_members(arr, members, keys, types, err, sizeof err) != 0) {
        rte_http_error(req, 400, "%s", err);
        goto out;
    }
    int64_t now = rte_clock_now_ms();
    rte_batch_info b = {id, source, (int)items, sub_ms, 0, members, nm};
    if (b.submitted_ms < 0) {
        rte_http_error(req, 400, "field 'submitted_at': before 1970");
    } else if (rte_batch_registry_register(rte_service_redis(), &WH.registry, &b, now, err,
                                           sizeof err) != 0) {
        rte_http_error(req, rte_batch_registry_valid_id(id) ? 503 : 400, "%s", err);
    } else {
        respond_status(req, 201, "registered", id, -1, -1);
    }
out:
    free(members);
    free(keys);
    free(types);
    cJSON_Delete(d);
}

/* admin: show a batch's registry record */
static void h_show(rte_http_req *req, void *arg)
{
    (void)arg;
    char err[512];
    rte_batch_record rec;
    char id[RTE_BATCH_ID_MAX];
    if (rte_http_req_tail_decoded(req, id, sizeof id) < 0 || !rte_batch_registry_valid_id(id)) {
        rte_http_error(req, 400, "batch id: expected 1..127 characters of [A-Za-z0-9._:-]");
        return;
    }
    int rc = rte_batch_registry_get(rte_service_redis(), &WH.registry, id, &rec, err, sizeof err);
    if (rc < 0) {
        rte_http_error(req, 503, "%s", err);
        return;
    }
    if (rc == 0) {
        rte_http_error(req, 404, "batch %s is not registered", id);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "batch_id", rec.batch_id);
    cJSON_AddStringToObject(d, "source", rec.source);
    cJSON_AddNumberToObject(d, "items", rec.items);
    cJSON_AddNumberToObject(d, "submitted_ms", (double)rec.submitted_ms);
    cJSON_AddNumberToObject(d, "next_ms", (double)rec.next_ms);
    cJSON_AddNumberToObject(d, "retry_until_ms", (double)rec.retry_until_ms);
    cJSON_AddStringToObject(d, "cursor", rec.cursor);
    cJSON_AddNumberToObject(d, "checks", rec.checks);
    cJSON_AddNumberToObject(d, "polled", (double)rec.polled);
    cJSON_AddStringToObject(d, "state", rec.done ? "done" : "pending");
    cJSON_AddStringToObject(d, "done_reason", rec.done_reason);
    rte_http_respond_json(req, 200, d);
    cJSON_Delete(d);
}

static rte_http_route routes[] = {
    {"POST", "/api/v1/batch-callback", h_callback, NULL, 0, "batch_callback"},
    {NULL},
};

static const rte_http_route admin_routes[] = {
    /* up to 10,000 members of about 100 bytes each */
    {"POST", "/admin/batches", h_register, NULL, 2 * 1024 * 1024, "admin_register_batch"},
    {"GET", "/admin/batches/*", h_show, NULL, 0, "admin_show_batch"},
    {NULL},
};

/* wh_http_routes - static table */
rte_http_route *wh_http_routes(void)
{
    return routes;
}

/* wh_http_admin_routes - static table */
const rte_http_route *wh_http_admin_routes(void)
{
    return admin_routes;
}

/* wh_http_start - init thread */
int wh_http_start(char *err, size_t errlen)
{
    routes[0].max_body = WH.max_body;
    Q.threads = calloc((size_t)WH.workers, sizeof *Q.threads);
    if (Q.threads == NULL) {
        snprintf(err, errlen, "out of memory starting %d workers", WH.workers);
        return -1;
    }
    for (int i = 0; i < WH.workers; i++) {
        if (pthread_create(&Q.threads[i], NULL, worker_main, NULL) != 0) {
            snprintf(err, errlen, "cannot start callback worker %d", i);
            return -1;
        }
        Q.nthreads++;
    }
    /* the sweeper's deadlines are monotonic: a cv on the default (realtime) clock saw each
     * one long past, and the sweeper spun on P.mu instead of sleeping */
    if (rte_clock_cond_init(&P.cv) != 0 ||
        pthread_create(&P.sweeper, NULL, sweeper_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the callback timeout sweeper");
        return -1;
    }
    P.sweeper_started = 1;
    return 0;
}

/*
 * wh_http_stop - shutdown thread (the HTTP loops still run): workers finish
 * the queue and exit, the sweeper stops, and callbacks still waiting for
 * the broker are answered 503 here (their reports, which arrive while the
 * producer is flushed or purged, only free them)
 */
void wh_http_stop(void)
{
    pthread_mutex_lock(&Q.mu);
    Q.stopping = 1; /* from now on a failed report answers on its own thread */
    pthread_cond_broadcast(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
    for (int i = 0; i < Q.nthreads; i++)
        pthread_join(Q.threads[i], NULL);
    free(Q.threads);
    Q.threads = NULL;
    Q.nthreads = 0;
    pthread_mutex_lock(&P.mu);
    P.stopping = 1;
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    if (P.sweeper_started)
        pthread_join(P.sweeper, NULL);
    P.sweeper_started = 0;
    pthread_mutex_lock(&P.mu);
    while (P.head != NULL) {
        struct job *j = P.head, *f = fail_copy(j, "the service stopped first");
        j->answered = 1;
        pending_unlink(j);
        int release = j->left == 0; /* else its last report frees it */
        pthread_mutex_unlock(&P.mu);
        if (f != NULL)
            fail_enqueue(f); /* answers here: the queue is stopping */
        else
            rte_log_error("out of memory answering a callback at shutdown; its sender times out");
        if (release)
            free(j);
        pthread_mutex_lock(&P.mu);
    }
    pthread_mutex_unlock(&P.mu);
}
