/*
 * sim_realtime.c - the real-time eligibility endpoint of stedi-sim, and the
 * HTTP helpers both APIs share.
 *
 * A request is checked (Authorization; JSON; Stedi's request schema, 400
 * ValidationException naming each field), a payer Stedi does not know gets
 * Stedi's own 400 (code 33) at once, and the rest is admitted against
 * sim.max_concurrent (the one API key's slots; the next caller gets 429 at
 * once). The answer is built at once and held for a latency drawn from a
 * log-normal fitted to sim.latency_p50/p95 (simulated ms, capped at
 * sim.latency_max), then sent by one scheduler thread that serves a
 * min-heap of due responses: no thread per request. The drawn latency is
 * sent in X-Sim-Latency-Ms.
 *
 * Latency draws use a golden-ratio low-discrepancy sequence as the uniform
 * source, so any few hundred consecutive calls match the configured
 * percentiles closely (tests can check them without flakiness) while the
 * order still looks random.
 *
 * The answer is the member's (sim_answer.c): HTTP 200 with the 271, or 400
 * for the rejection Stedi documents under 400. Payer trouble overrides it:
 * during a sim.downtime window the payer answers AAA 42 (HTTP 200), and
 * sim.error_rate (hash of the member and a call counter) turns a call into
 * AAA 42, 503 or 504 - the failure statuses the OpenAPI lists.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "sim.h"

sim_cfg sim_conf;
sim_stats sim_st = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* sim_stat_add - add v to one counter under the stats lock; any thread */
void sim_stat_add(long *counter, long v)
{
    pthread_mutex_lock(&sim_st.mu);
    *counter += v;
    pthread_mutex_unlock(&sim_st.mu);
}

/* sim_stedi_error - answer status with Stedi's {"code","message"} error body; loop thread */
void sim_stedi_error(rte_http_req *req, int status, const char *code, const char *msg)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "code", code);
    cJSON_AddStringToObject(d, "message", msg);
    rte_http_respond_json(req, status, d);
    cJSON_Delete(d);
}

/* sim_h_not_found - any path this host does not serve: 404 {"code","message"}; loop thread */
void sim_h_not_found(rte_http_req *req, void *arg)
{
    (void)arg;
    char msg[300], method[12], path[200];
    snprintf(msg, sizeof msg, "no resource %s %s on this host",
             sim_excerpt(rte_http_req_method(req), method, sizeof method),
             sim_excerpt(rte_http_req_path(req), path, sizeof path));
    sim_stedi_error(req, 404, "NOT_FOUND", msg);
}

/* sim_serves - 1 if this listener serves api, else answers 404; loop thread */
int sim_serves(rte_http_req *req, const void *api_mask, enum sim_api api)
{
    if (*(const int *)api_mask & (int)api)
        return 1;
    sim_h_not_found(req, NULL);
    return 0;
}

/* sim_authorized - 1 if Authorization carries the key, else answers 401/403; loop thread */
int sim_authorized(rte_http_req *req, enum sim_api api)
{
    char v[512];
    int n = rte_http_req_header(req, "Authorization", v, sizeof v);
    if (n < 0 && api == SIM_API_MANAGER) {
        sim_stedi_error(req, 401, "UNAUTHORIZED", "Missing Authorization header (the API key)");
        return 0;
    }
    if (n >= 0) {
        const char *k = v;
        if (strncmp(k, "Key ", 4) == 0) /* the older form, still accepted */
            k += 4;
        if (strcmp(k, sim_conf.api_key) == 0)
            return 1;
    }
    sim_stedi_error(req, 403, "ACCESS_DENIED",
                    n < 0 ? "Missing Authorization header (the API key)"
                          : "The API key in the Authorization header is not valid");
    return 0;
}

/* sim_hash - FNV-1a 64 of text, continuing from h (start with 0); pure */
uint64_t sim_hash(uint64_t h, const char *text)
{
    if (h == 0)
        h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    /* final avalanche so low bits depend on every byte */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* --- latency ------------------------------------------------------------- */

/* inverse standard normal CDF by bisection on erfc; |error| < 1e-9 */
static double probit(double p)
{
    double lo = -9, hi = 9;
    for (int i = 0; i < 64; i++) {
        double mid = (lo + hi) / 2;
        if (0.5 * erfc(-mid / sqrt(2.0)) < p)
            lo = mid;
        else
            hi = mid;
    }
    return (lo + hi) / 2;
}

/* simulated latency of the n-th call */
static int64_t draw_latency(uint64_t n)
{
    if (sim_conf.latency_p50_ms <= 0)
        return 0;
    double u = fmod(0.5 + (double)n * 0.6180339887498949, 1.0);
    double sigma =
        log((double)sim_conf.latency_p95_ms / (double)sim_conf.latency_p50_ms) / 1.6448536269514722;
    double ms = (double)sim_conf.latency_p50_ms * exp(sigma * probit(u));
    if (ms > (double)sim_conf.latency_max_ms)
        ms = (double)sim_conf.latency_max_ms;
    return (int64_t)llround(ms);
}

/* --- scheduler ----------------------------------------------------------- */

struct due {
    int64_t at; /* real monotonic ms */
    rte_http_req *req;
    int status;
    char *body;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct due *heap;
    size_t n, cap;
    int stop;
    pthread_t thread;
    uint64_t calls; /* drives the latency sequence and error draws */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void heap_push(struct due d)
{
    if (S.n == S.cap) {
        S.cap = S.cap ? S.cap * 2 : 64;
        S.heap = realloc(S.heap, S.cap * sizeof *S.heap);
        if (S.heap == NULL)
            rte_panic("out of memory");
    }
    size_t i = S.n++;
    while (i > 0 && S.heap[(i - 1) / 2].at > d.at) {
        S.heap[i] = S.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    S.heap[i] = d;
}

static struct due heap_pop(void)
{
    struct due top = S.heap[0], last = S.heap[--S.n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= S.n)
            break;
        if (c + 1 < S.n && S.heap[c + 1].at < S.heap[c].at)
            c++;
        if (S.heap[c].at >= last.at)
            break;
        S.heap[i] = S.heap[c];
        i = c;
    }
    if (S.n > 0)
        S.heap[i] = last;
    return top;
}

static void *scheduler_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.mu);
    while (!S.stop) {
        if (S.n == 0) {
            pthread_cond_wait(&S.cv, &S.mu);
            continue;
        }
        int64_t now = rte_clock_mono_ms();
        if (S.heap[0].at > now) {
            struct timespec ts = rte_clock_mono_timespec(S.heap[0].at);
            pthread_cond_timedwait(&S.cv, &S.mu, &ts);
            continue;
        }
        struct due d = heap_pop();
        pthread_mutex_unlock(&S.mu);
        /*
         * the call ends before its answer leaves: a client that sends its
         * next call the moment it reads this answer must not find the
         * call still counted (max_in_flight would read one too many)
         */
        pthread_mutex_lock(&sim_st.mu);
        sim_st.in_flight--;
        pthread_mutex_unlock(&sim_st.mu);
        rte_http_respond(d.req, d.status, "application/json", d.body, strlen(d.body));
        cJSON_free(d.body);
        pthread_mutex_lock(&S.mu);
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

/* sim_realtime_start - start the scheduler thread; init */
int sim_realtime_start(char *err, size_t errlen)
{
    rte_clock_cond_init(&S.cv);
    if (pthread_create(&S.thread, NULL, scheduler_main, NULL) != 0) {
        snprintf(err, errlen, "stedi-sim: cannot start the scheduler thread");
        return -1;
    }
    return 0;
}

/* sim_realtime_stop - stop the scheduler (after draining), free what is left */
void sim_realtime_stop(void)
{
    pthread_mutex_lock(&S.mu);
    S.stop = 1;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
    pthread_join(S.thread, NULL);
    /* left only if the drain ran out of time: answer rather than abandon them */
    for (size_t i = 0; i < S.n; i++) {
        static const char gone[] =
            "{\"code\":\"SERVICE_UNAVAILABLE\",\"message\":\"simulator shutting down\"}";
        rte_http_respond(S.heap[i].req, 503, "application/json", gone, sizeof gone - 1);
        cJSON_free(S.heap[i].body);
    }
    free(S.heap);
    S.heap = NULL;
    S.n = S.cap = 0;
    pthread_cond_destroy(&S.cv);
}

/* admit one call under the limit; 0 if all slots are taken */
static int admit(void)
{
    int ok = 0;
    pthread_mutex_lock(&sim_st.mu);
    if (sim_st.in_flight < sim_conf.max_concurrent) {
        ok = 1;
        sim_st.in_flight++;
        sim_st.realtime_calls++;
        if (sim_st.in_flight > sim_st.max_in_flight)
            sim_st.max_in_flight = sim_st.in_flight;
    } else {
        sim_st.realtime_429++;
    }
    pthread_mutex_unlock(&sim_st.mu);
    return ok;
}

static void respond_now(rte_http_req *req, int status, cJSON *doc)
{
    rte_http_respond_json(req, status, doc);
    cJSON_Delete(doc);
}

/* sim_h_realtime - POST .../eligibility/v3; loop thread */
void sim_h_realtime(rte_http_req *req, void *arg)
{
    (void)arg;
    if (!sim_authorized(req, SIM_API_HEALTHCARE))
        return;
    size_t len;
    const char *body = rte_http_req_body(req, &len);
    cJSON *in = sim_utf8_ok(body, len) ? cJSON_ParseWithLength(body, len) : NULL;
    sim_invalid v = {0};
    if (in == NULL)
        sim_invalid_add(&v, "/", "(request): the body is not valid JSON (UTF-8)");
    else
        sim_check_request(in, -1, &v);
    if (v.total > 0) {
        sim_respond_invalid(req, &v);
        cJSON_Delete(in);
        return;
    }
    const char *payer =
        cJSON_GetObjectItemCaseSensitive(in, "tradingPartnerServiceId")->valuestring;
    if (sim_payer_unknown(payer)) {
        sim_stat_add(&sim_st.realtime_errors, 1);
        respond_now(req, 400, sim_answer_unknown_payer(in));
        cJSON_Delete(in);
        return;
    }
    if (!admit()) {
        sim_stedi_error(req, 429, "TOO_MANY_REQUESTS",
                        "Too many concurrent real-time requests for this API key; retry later");
        cJSON_Delete(in);
        return;
    }
    pthread_mutex_lock(&S.mu);
    uint64_t n = S.calls++;
    pthread_mutex_unlock(&S.mu);
    int64_t lat = draw_latency(n);

    /* payer trouble: hash of the member and the call counter against error_rate */
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "#%llu", (unsigned long long)n);
    uint64_t h = sim_hash(sim_member_number(in) + 1, payer);
    h = sim_hash(h, nbuf);
    int force = 0; /* 1: AAA 42, 2: 503, 3: 504 */
    if ((double)(h >> 11) / 9007199254740992.0 < sim_conf.error_rate)
        force = (int)(h % 3) + 1;
    int64_t now = rte_clock_now_ms();
    if (force == 0 && sim_downtime_end(payer, now) >= 0)
        force = 1;
    uint64_t seed;
    rte_random_bytes(&seed, sizeof seed);
    int status = 200;
    cJSON *out;
    if (force == 2 || force == 3) {
        status = force == 2 ? 503 : 504;
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "code",
                                force == 2 ? "SERVICE_UNAVAILABLE" : "GATEWAY_TIMEOUT");
        cJSON_AddStringToObject(out, "message",
                                force == 2 ? "The payer connection is unavailable; retry "
                                             "later"
                                           : "The payer did not answer in time; retry "
                                             "later");
    } else if (force == 1) {
        out = sim_answer_payer_down(in, now, seed);
    } else {
        sim_facts f;
        out = sim_answer(in, now, seed, &f);
        status = f.http_status;
        if (f.result == SIM_REJECTED)
            force = 4;
    }
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    cJSON_Delete(in);
    if (text == NULL)
        rte_panic("stedi-sim: out of memory printing an answer");
    if (force)
        sim_stat_add(&sim_st.realtime_errors, 1);
    char lb[32];
    snprintf(lb, sizeof lb, "%lld", (long long)lat);
    rte_http_add_header(req, "X-Sim-Latency-Ms", lb);
    rte_http_defer(req);
    struct due d = {rte_clock_mono_ms() + rte_clock_real_ms(lat), req, status, text};
    pthread_mutex_lock(&S.mu);
    heap_push(d);
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
}
