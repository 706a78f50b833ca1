/*
 * sim_realtime.c - the real-time eligibility endpoint of stedi-sim.
 *
 * A request is checked (Authorization, JSON, shape: 400 names the field),
 * admitted against sim.max_concurrent (the one API key's slots; the next
 * caller gets 429 TOO_MANY_REQUESTS at once), and its answer is built at
 * once. The answer is then held for a latency drawn from a log-normal fitted
 * to sim.latency_p50/p95 (simulated ms, capped at sim.latency_max) and sent
 * by one scheduler thread that serves a min-heap of due responses: no thread
 * per request. The drawn latency is sent in X-Sim-Latency-Ms.
 *
 * Latency draws use a golden-ratio low-discrepancy sequence as the uniform
 * source, so any few hundred consecutive calls match the configured
 * percentiles closely (tests can check them without flakiness) while the
 * order still looks random.
 *
 * Outcomes are a pure function of (memberId, tradingPartnerServiceId) and the
 * simulated date; payer errors come from sim.error_rate (hash of the body and
 * a call counter: AAA 42 in a 200, or HTTP 502/503) and from sim.downtime
 * windows (AAA 42). The same outcome builder serves batch items.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
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

/* sim_stedi_error - answer status with a Stedi-style {"code","message"} body; loop thread */
void sim_stedi_error(rte_http_req *req, int status, const char *code, const char *msg)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "code", code);
    cJSON_AddStringToObject(d, "message", msg);
    rte_http_respond_json(req, status, d);
    cJSON_Delete(d);
}

/* sim_authorized - 1 if the Authorization header carries the key, else answers 401; loop thread */
int sim_authorized(rte_http_req *req)
{
    char v[512];
    int n = rte_http_req_header(req, "Authorization", v, sizeof v);
    if (n >= 0) {
        const char *k = v;
        if (strncmp(k, "Key ", 4) == 0)
            k += 4;
        if (strcmp(k, sim_conf.api_key) == 0)
            return 1;
    }
    sim_stedi_error(req, 401, "UNAUTHORIZED",
                    "Missing or invalid API key in the Authorization header");
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

/* --- validation ---------------------------------------------------------- */

static const char *str_field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring[0] != '\0' ? v->valuestring : NULL;
}

static int all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int fail(char *err, size_t errlen, const char *prefix, const char *field, const char *why)
{
    snprintf(err, errlen, "%s%s: %s", prefix, field, why);
    return -1;
}

/* sim_validate - check one eligibility request's shape; -1 + err naming the field */
int sim_validate(const cJSON *item, const char *prefix, char *err, size_t errlen)
{
    if (!cJSON_IsObject(item))
        return fail(err, errlen, prefix, "(request)", "must be a JSON object");
    if (str_field(item, "controlNumber") == NULL)
        return fail(err, errlen, prefix, "controlNumber", "missing");
    if (str_field(item, "tradingPartnerServiceId") == NULL)
        return fail(err, errlen, prefix, "tradingPartnerServiceId", "missing");
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(item, "provider");
    if (!cJSON_IsObject(prov))
        return fail(err, errlen, prefix, "provider", "missing");
    if (str_field(prov, "organizationName") == NULL)
        return fail(err, errlen, prefix, "provider.organizationName", "missing");
    const char *npi = str_field(prov, "npi");
    if (npi == NULL)
        return fail(err, errlen, prefix, "provider.npi", "missing");
    if (!all_digits(npi, 10))
        return fail(err, errlen, prefix, "provider.npi", "must be 10 digits");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(item, "subscriber");
    if (!cJSON_IsObject(sub))
        return fail(err, errlen, prefix, "subscriber", "missing");
    static const char *const sf[] = {"memberId", "firstName", "lastName", "dateOfBirth"};
    char field[64];
    for (size_t i = 0; i < sizeof sf / sizeof sf[0]; i++) {
        snprintf(field, sizeof field, "subscriber.%s", sf[i]);
        if (str_field(sub, sf[i]) == NULL)
            return fail(err, errlen, prefix, field, "missing");
    }
    if (!all_digits(str_field(sub, "dateOfBirth"), 8))
        return fail(err, errlen, prefix, "subscriber.dateOfBirth", "must be YYYYMMDD");
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(item, "encounter");
    if (!cJSON_IsObject(enc))
        return fail(err, errlen, prefix, "encounter", "missing");
    const cJSON *stc = cJSON_GetObjectItemCaseSensitive(enc, "serviceTypeCodes");
    if (!cJSON_IsArray(stc) || cJSON_GetArraySize(stc) == 0)
        return fail(err, errlen, prefix, "encounter.serviceTypeCodes",
                    "missing (a non-empty array of strings)");
    const cJSON *c;
    cJSON_ArrayForEach(c, stc)
    {
        if (!cJSON_IsString(c) || c->valuestring[0] == '\0')
            return fail(err, errlen, prefix, "encounter.serviceTypeCodes",
                        "must hold non-empty strings");
    }
    return 0;
}

/* --- outcome ------------------------------------------------------------- */

static int in_downtime(const char *payer, int64_t now_ms)
{
    int m = (int)((now_ms / 60000) % 1440);
    for (int i = 0; i < sim_conf.ndowntime; i++) {
        const sim_downtime *d = &sim_conf.downtime[i];
        if (strcmp(d->payer, payer) != 0)
            continue;
        if (d->start_min <= d->end_min ? (m >= d->start_min && m < d->end_min)
                                       : (m >= d->start_min || m < d->end_min))
            return 1;
    }
    return 0;
}

static uint64_t member_hash(const cJSON *item)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(item, "subscriber");
    uint64_t h = sim_hash(0, str_field(sub, "memberId"));
    h = sim_hash(h, "|");
    return sim_hash(h, str_field(item, "tradingPartnerServiceId"));
}

/* sim_item_error - 1 if a batch item deterministically fails at simulated time now_ms; pure */
int sim_item_error(const cJSON *item, int64_t now_ms)
{
    if (in_downtime(str_field(item, "tradingPartnerServiceId"), now_ms))
        return 1;
    const char *sti = str_field(item, "submitterTransactionIdentifier");
    uint64_t h = sim_hash(member_hash(item), sti ? sti : "");
    return (double)(h >> 11) / 9007199254740992.0 < sim_conf.error_rate;
}

static void ymd(char *buf, size_t len, int y, int m, int d)
{
    snprintf(buf, len, "%04d%02d%02d", y, m, d);
}

static cJSON *echo_base(const cJSON *item)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "controlNumber", str_field(item, "controlNumber"));
    cJSON_AddStringToObject(d, "tradingPartnerServiceId",
                            str_field(item, "tradingPartnerServiceId"));
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(item, "subscriber");
    cJSON *s = cJSON_AddObjectToObject(d, "subscriber");
    static const char *const sf[] = {"memberId", "firstName", "lastName", "dateOfBirth"};
    for (size_t i = 0; i < sizeof sf / sizeof sf[0]; i++)
        cJSON_AddStringToObject(s, sf[i], str_field(sub, sf[i]));
    return d;
}

/* sim_outcome - the response document for a valid request; caller frees */
cJSON *sim_outcome(const cJSON *item, int64_t now_ms, int force_error)
{
    cJSON *d = echo_base(item);
    if (force_error || in_downtime(str_field(item, "tradingPartnerServiceId"), now_ms)) {
        cJSON *errs = cJSON_AddArrayToObject(d, "errors");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "field", "AAA");
        cJSON_AddStringToObject(e, "code", "42");
        cJSON_AddStringToObject(e, "description", "Unable to Respond at Current Time");
        cJSON_AddStringToObject(e, "followupAction", "Please Retry Later");
        cJSON_AddStringToObject(e, "location", "Loop 2100A");
        cJSON_AddItemToArray(errs, e);
        return d;
    }
    static const int copays[] = {0, 10, 20, 25, 30, 40, 50};
    uint64_t h = member_hash(item);
    int active = h % 10 < 8;
    int copay = copays[(h >> 8) % 7];
    int in_network = (h >> 16) % 4 != 0;
    int month = (int)((h >> 24) % 12) + 1;
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int year = tm.tm_year + 1900;
    char begin[16], end[16];
    ymd(begin, sizeof begin, active ? year - 1 : year - 2, month, 1);
    ymd(end, sizeof end, active ? year + 1 : year - 1, month, 1);

    const cJSON *stc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(item, "encounter"), "serviceTypeCodes");
    cJSON *pdi = cJSON_AddObjectToObject(d, "planDateInformation");
    cJSON_AddStringToObject(pdi, "planBegin", begin);
    cJSON_AddStringToObject(pdi, "planEnd", end);
    char plan[32];
    snprintf(plan, sizeof plan, "SIM PLAN %c", (char)('A' + (h >> 32) % 5));
    cJSON *ps = cJSON_CreateObject();
    cJSON_AddStringToObject(ps, "statusCode", active ? "1" : "6");
    cJSON_AddStringToObject(ps, "status", active ? "Active Coverage" : "Inactive");
    cJSON_AddStringToObject(ps, "planDetails", plan);
    cJSON_AddItemToObject(ps, "serviceTypeCodes", cJSON_Duplicate(stc, 1));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "planStatus"), ps);

    cJSON *bi = cJSON_AddArrayToObject(d, "benefitsInformation");
    cJSON *cov = cJSON_CreateObject();
    cJSON_AddStringToObject(cov, "code", active ? "1" : "6");
    cJSON_AddStringToObject(cov, "name", active ? "Active Coverage" : "Inactive");
    cJSON_AddItemToObject(cov, "serviceTypeCodes", cJSON_Duplicate(stc, 1));
    cJSON_AddStringToObject(cov, "inPlanNetworkIndicatorCode", in_network ? "Y" : "N");
    cJSON_AddItemToArray(bi, cov);
    if (active) {
        char amt[16];
        snprintf(amt, sizeof amt, "%d", copay);
        cJSON *co = cJSON_CreateObject();
        cJSON_AddStringToObject(co, "code", "B");
        cJSON_AddStringToObject(co, "name", "Co-Payment");
        cJSON_AddItemToObject(co, "serviceTypeCodes", cJSON_Duplicate(stc, 1));
        cJSON_AddStringToObject(co, "timeQualifierCode", "27");
        cJSON_AddStringToObject(co, "benefitAmount", amt);
        cJSON_AddStringToObject(co, "inPlanNetworkIndicatorCode", in_network ? "Y" : "N");
        cJSON_AddItemToArray(bi, co);
    }
    return d;
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
        rte_http_respond(d.req, d.status, "application/json", d.body, strlen(d.body));
        cJSON_free(d.body);
        pthread_mutex_lock(&sim_st.mu);
        sim_st.in_flight--;
        pthread_mutex_unlock(&sim_st.mu);
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

/* sim_h_realtime - POST .../eligibility/v3; loop thread */
void sim_h_realtime(rte_http_req *req, void *arg)
{
    (void)arg;
    if (!sim_authorized(req))
        return;
    size_t len;
    const char *body = rte_http_req_body(req, &len);
    cJSON *in = cJSON_ParseWithLength(body, len);
    char err[256];
    if (in == NULL) {
        sim_stedi_error(req, 400, "BAD_REQUEST", "request body is not valid JSON");
        return;
    }
    if (sim_validate(in, "", err, sizeof err) != 0) {
        sim_stedi_error(req, 400, "BAD_REQUEST", err);
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

    /* payer errors: hash of the body and the call counter against error_rate */
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "#%llu", (unsigned long long)n);
    uint64_t h = sim_hash(member_hash(in), nbuf);
    int status = 200, force = 0;
    if ((double)(h >> 11) / 9007199254740992.0 < sim_conf.error_rate)
        force = (int)(h % 3) + 1; /* 1: AAA 42, 2: 502, 3: 503 */
    int64_t now = rte_clock_now_ms();
    char *text;
    if (force == 2 || force == 3) {
        status = force == 2 ? 502 : 503;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "code", force == 2 ? "BAD_GATEWAY" : "SERVICE_UNAVAILABLE");
        cJSON_AddStringToObject(e, "message", "The payer connection failed; retry later");
        text = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
    } else {
        cJSON *out = sim_outcome(in, now, force == 1);
        if (cJSON_GetObjectItemCaseSensitive(out, "errors") != NULL)
            force = 1;
        text = cJSON_PrintUnformatted(out);
        cJSON_Delete(out);
    }
    cJSON_Delete(in);
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
