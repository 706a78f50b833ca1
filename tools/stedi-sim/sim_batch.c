/*
 * sim_batch.c - batch eligibility of stedi-sim: submit, status, items,
 * poll-batch pages and the optional signed completion callback.
 *
 * A submission (1..10,000 items, each a real-time request plus
 * submitterTransactionIdentifier; a bad item is refused whole with 400
 * naming "items[i].field") becomes an in-memory batch. Every item gets a
 * completion time in simulated time, submittedAt + a delay in
 * [sim.batch_min_delay, sim.batch_max_delay] drawn from the item's hash, so
 * a resubmission behaves the same. Items are sorted by that time once; the
 * "completion order" is this order and completion is evaluated lazily on
 * each read (a cursor advances over items whose time has passed), so no
 * thread ticks and no real-time slot is used. An item's answer (coverage or
 * AAA 42) is the real-time outcome at its completion time.
 *
 * Poll pages walk the completion order; a page token is base64("i:<index>"),
 * stable because the order never changes. Pages with more than 20 items are
 * gzip-compressed when the client accepts gzip.
 *
 * Callbacks: when a submission names callback_url, one callback thread posts
 * the completion document after the last item completes, signed twice
 * (X-Webhook-Signature: hex HMAC-SHA256 over the body; Standard Webhooks
 * webhook-id/-timestamp/-signature "v1,<base64 HMAC over id.ts.body>"; the
 * key is rte_crypto_webhook_key of sim.callback_secret, made once at start:
 * a "whsec_<base64>" secret decoded as the specification says, any other
 * its text, the rule webhook-receiver verifies with). Failed attempts are
 * retried after 1 s, 2 s, 4 s ... (real time, capped at 60 s) up to
 * sim.callback_max_attempts. webhook-timestamp is real Unix time, since
 * receivers judge replay windows against their own wall clock.
 *
 * Batches are never expired: memory grows with what is submitted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/http_client.h"
#include "rte/log.h"
#include "sim.h"

#define MAX_ITEMS 10000
#define GZIP_OVER 20

struct item {
    cJSON *req;     /* the submitted item, owned */
    int64_t due_ms; /* simulated completion time */
    int error;      /* completes with AAA 42 */
};

struct batch {
    char id[37];
    int64_t submitted_ms;  /* simulated */
    int64_t complete_mono; /* real monotonic ms when the last item completes */
    int n, done, errors;   /* done: completed prefix of order */
    struct item *items;
    int *order;
    char *callback_url; /* NULL = none */
    int cb_state;       /* 0 none, 1 pending, 2 delivered, 3 gave up */
    int cb_attempts;
    int64_t cb_next_mono;
    struct batch *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *head;
    int stop;
    pthread_t thread;
    rte_http_client *client;
} B = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static const char *sfield(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *member_of(const cJSON *item)
{
    return sfield(cJSON_GetObjectItemCaseSensitive(item, "subscriber"), "memberId");
}

/* advance the completion cursor to simulated now; B.mu held */
static void advance(struct batch *b, int64_t now)
{
    while (b->done < b->n && b->items[b->order[b->done]].due_ms <= now) {
        b->errors += b->items[b->order[b->done]].error;
        b->done++;
    }
}

/* B.mu held; borrowed */
static struct batch *find(const char *id, size_t len)
{
    for (struct batch *b = B.head; b != NULL; b = b->next)
        if (strlen(b->id) == len && memcmp(b->id, id, len) == 0)
            return b;
    return NULL;
}

static void free_batch(struct batch *b)
{
    for (int i = 0; i < b->n; i++)
        cJSON_Delete(b->items[i].req);
    free(b->items);
    free(b->order);
    free(b->callback_url);
    free(b);
}

static const struct item *sort_items;
static int by_due(const void *a, const void *b)
{
    int64_t x = sort_items[*(const int *)a].due_ms, y = sort_items[*(const int *)b].due_ms;
    if (x != y)
        return x < y ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

/* --- submit -------------------------------------------------------------- */

static int check_submission(const cJSON *in, char *err, size_t errlen)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(in, "items");
    if (!cJSON_IsArray(items)) {
        snprintf(err, errlen, "items: missing (an array of 1..%d checks)", MAX_ITEMS);
        return -1;
    }
    int n = cJSON_GetArraySize(items);
    if (n < 1 || n > MAX_ITEMS) {
        snprintf(err, errlen, "items: must hold 1..%d checks (got %d)", MAX_ITEMS, n);
        return -1;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "maxRetryHours");
    if (v != NULL && (!cJSON_IsNumber(v) || v->valuedouble < 8 || v->valuedouble > 24)) {
        snprintf(err, errlen, "maxRetryHours: must be a number in 8..24");
        return -1;
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (v != NULL && !cJSON_IsString(v)) {
        snprintf(err, errlen, "name: must be a string");
        return -1;
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "callback_url");
    if (v != NULL && (!cJSON_IsString(v) || (strncmp(v->valuestring, "http://", 7) != 0 &&
                                             strncmp(v->valuestring, "https://", 8) != 0))) {
        snprintf(err, errlen, "callback_url: must be an http(s) URL");
        return -1;
    }
    int i = 0;
    char prefix[32];
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        snprintf(prefix, sizeof prefix, "items[%d].", i);
        if (sim_validate(it, prefix, err, errlen) != 0)
            return -1;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "submitterTransactionIdentifier");
        if (!cJSON_IsString(s) || s->valuestring[0] == '\0') {
            snprintf(err, errlen, "%ssubmitterTransactionIdentifier: missing", prefix);
            return -1;
        }
        i++;
    }
    return 0;
}

static struct batch *new_batch(cJSON *in)
{
    cJSON *items = cJSON_GetObjectItemCaseSensitive(in, "items");
    struct batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        rte_panic("out of memory");
    rte_uuid4(b->id);
    b->n = cJSON_GetArraySize(items);
    b->items = calloc((size_t)b->n, sizeof *b->items);
    b->order = calloc((size_t)b->n, sizeof *b->order);
    if (b->items == NULL || b->order == NULL)
        rte_panic("out of memory");
    b->submitted_ms = rte_clock_now_ms();
    uint64_t span = (uint64_t)(sim_conf.batch_max_delay_ms - sim_conf.batch_min_delay_ms) + 1;
    int64_t last = b->submitted_ms;
    for (int i = 0; i < b->n; i++) {
        cJSON *it = cJSON_DetachItemFromArray(items, 0);
        uint64_t h = sim_hash(sim_hash(0, member_of(it)), sfield(it, "tradingPartnerServiceId"));
        h = sim_hash(h, sfield(it, "submitterTransactionIdentifier"));
        b->items[i].req = it;
        b->items[i].due_ms = b->submitted_ms + sim_conf.batch_min_delay_ms + (int64_t)(h % span);
        b->items[i].error = sim_item_error(it, b->items[i].due_ms);
        b->order[i] = i;
        if (b->items[i].due_ms > last)
            last = b->items[i].due_ms;
    }
    sort_items = b->items; /* loop thread only */
    qsort(b->order, (size_t)b->n, sizeof *b->order, by_due);
    b->complete_mono = rte_clock_mono_ms() + rte_clock_real_ms(last - b->submitted_ms);
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(in, "callback_url");
    if (cJSON_IsString(cb)) {
        b->callback_url = strdup(cb->valuestring);
        b->cb_state = 1;
    }
    return b;
}

/* sim_h_batch_submit - POST .../batch-eligibility; loop thread */
void sim_h_batch_submit(rte_http_req *req, void *arg)
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
    if (check_submission(in, err, sizeof err) != 0) {
        sim_stedi_error(req, 400, "BAD_REQUEST", err);
        cJSON_Delete(in);
        return;
    }
    struct batch *b = new_batch(in);
    cJSON_Delete(in);
    pthread_mutex_lock(&sim_st.mu);
    sim_st.batches++;
    sim_st.batch_items += b->n;
    pthread_mutex_unlock(&sim_st.mu);

    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "batchId", b->id);
    cJSON_AddStringToObject(d, "status", "PENDING");
    cJSON_AddNumberToObject(d, "totalCount", b->n);
    char ts[40];
    rte_clock_format(b->submitted_ms, ts, sizeof ts);
    cJSON_AddStringToObject(d, "submittedAt", ts);
    pthread_mutex_lock(&B.mu);
    b->next = B.head;
    B.head = b;
    pthread_cond_signal(&B.cv);
    pthread_mutex_unlock(&B.mu);
    rte_http_respond_json(req, 200, d);
    cJSON_Delete(d);
}

/* --- status and items ---------------------------------------------------- */

static const char *batch_status(const struct batch *b)
{
    return b->done == b->n ? "COMPLETED" : b->done > 0 ? "IN_PROGRESS" : "PENDING";
}

/* B.mu held */
static cJSON *status_doc(const struct batch *b)
{
    char ts[40];
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "batchId", b->id);
    cJSON_AddStringToObject(d, "status", batch_status(b));
    cJSON_AddNumberToObject(d, "totalCount", b->n);
    cJSON_AddNumberToObject(d, "successCount", b->done - b->errors);
    cJSON_AddNumberToObject(d, "errorCount", b->errors);
    cJSON_AddNumberToObject(d, "pendingCount", b->n - b->done);
    rte_clock_format(b->submitted_ms, ts, sizeof ts);
    cJSON_AddStringToObject(d, "submittedAt", ts);
    if (b->done == b->n) {
        rte_clock_format(b->items[b->order[b->n - 1]].due_ms, ts, sizeof ts);
        cJSON_AddStringToObject(d, "completedAt", ts);
    }
    return d;
}

/* B.mu held */
static cJSON *items_doc(const struct batch *b)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "batchId", b->id);
    cJSON *arr = cJSON_AddArrayToObject(d, "items");
    for (int i = 0; i < b->n; i++) {
        const struct item *it = &b->items[i];
        /* advance() took every item due by now, so the first pending one bounds them */
        int done = b->done == b->n || it->due_ms < b->items[b->order[b->done]].due_ms;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "submitterTransactionIdentifier",
                                sfield(it->req, "submitterTransactionIdentifier"));
        cJSON_AddStringToObject(o, "memberId", member_of(it->req));
        cJSON_AddStringToObject(o, "tradingPartnerServiceId",
                                sfield(it->req, "tradingPartnerServiceId"));
        cJSON_AddStringToObject(o, "status", done ? "COMPLETED" : "PENDING");
        if (done)
            cJSON_AddBoolToObject(o, "error", it->error);
        cJSON_AddItemToArray(arr, o);
    }
    return d;
}

/* sim_h_batch_get - GET .../batch/{id} and .../batch/{id}/items; loop thread */
void sim_h_batch_get(rte_http_req *req, void *arg)
{
    (void)arg;
    if (!sim_authorized(req))
        return;
    const char *tail = rte_http_req_tail(req);
    size_t idlen = strcspn(tail, "/");
    int want_items = 0;
    if (tail[idlen] == '/') {
        if (strcmp(tail + idlen, "/items") != 0) {
            sim_stedi_error(req, 404, "NOT_FOUND", "no such resource");
            return;
        }
        want_items = 1;
    }
    pthread_mutex_lock(&B.mu);
    struct batch *b = find(tail, idlen);
    cJSON *d = NULL;
    if (b != NULL) {
        advance(b, rte_clock_now_ms());
        d = want_items ? items_doc(b) : status_doc(b);
    }
    pthread_mutex_unlock(&B.mu);
    if (d == NULL) {
        sim_stedi_error(req, 404, "NOT_FOUND", "no batch with this batchId");
        return;
    }
    rte_http_respond_json(req, 200, d);
    cJSON_Delete(d);
}

/* --- poll ---------------------------------------------------------------- */

static int parse_token(const char *tok, long *out)
{
    uint8_t raw[32];
    int n = rte_base64_decode(tok, raw, sizeof raw - 1);
    if (n < 3 || raw[0] != 'i' || raw[1] != ':')
        return -1;
    raw[n] = '\0';
    char *end;
    long v = strtol((const char *)raw + 2, &end, 10);
    if (*end != '\0' || v < 0 || end == (char *)raw + 2)
        return -1;
    *out = v;
    return 0;
}

static void make_token(long idx, char *out, size_t len)
{
    char raw[32];
    int n = snprintf(raw, sizeof raw, "i:%ld", idx);
    rte_base64_encode((const uint8_t *)raw, (size_t)n, out, len);
}

/* gzip text into a malloc'd buffer; NULL on failure */
static unsigned char *gzip_text(const char *text, size_t len, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    unsigned char *out = malloc(cap);
    if (out == NULL) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void send_page(rte_http_req *req, cJSON *d, int count)
{
    char *text = cJSON_PrintUnformatted(d);
    char ae[256];
    if (text == NULL) {
        sim_stedi_error(req, 500, "INTERNAL_ERROR", "could not encode the page");
        return;
    }
    size_t len = strlen(text), zlen = 0;
    unsigned char *z = NULL;
    if (count > GZIP_OVER && rte_http_req_header(req, "Accept-Encoding", ae, sizeof ae) >= 0 &&
        strstr(ae, "gzip") != NULL)
        z = gzip_text(text, len, &zlen);
    if (z != NULL) {
        rte_http_add_header(req, "Content-Encoding", "gzip");
        rte_http_add_header(req, "Vary", "Accept-Encoding");
        rte_http_respond(req, 200, "application/json", (const char *)z, zlen);
        free(z);
    } else {
        rte_http_respond(req, 200, "application/json", text, len);
    }
    cJSON_free(text);
}

/* sim_h_poll - GET /2025-04-25/healthcare/eligibility/poll-batch; loop thread */
void sim_h_poll(rte_http_req *req, void *arg)
{
    (void)arg;
    if (!sim_authorized(req))
        return;
    char id[64], v[128], err[200];
    int rc = rte_http_req_query(req, "batchId", id, sizeof id, err, sizeof err);
    if (rc <= 0) {
        sim_stedi_error(req, 400, "BAD_REQUEST", rc == 0 ? "batchId: empty" : err);
        return;
    }
    long size = 100, start = 0;
    rc = rte_http_req_query(req, "pageSize", v, sizeof v, err, sizeof err);
    if (rc != RTE_HTTP_QUERY_ABSENT) {
        char *end;
        size = rc >= 0 ? strtol(v, &end, 10) : 0;
        if (rc <= 0 || *end != '\0' || size < 1 || size > 200) {
            sim_stedi_error(req, 400, "BAD_REQUEST",
                            rc < 0 ? err : "pageSize: must be an integer in 1..200");
            return;
        }
    }
    rc = rte_http_req_query(req, "pageToken", v, sizeof v, err, sizeof err);
    if (rc < RTE_HTTP_QUERY_ABSENT) {
        sim_stedi_error(req, 400, "BAD_REQUEST", err);
        return;
    }
    if (rc > 0 && parse_token(v, &start) != 0) {
        sim_stedi_error(req, 400, "BAD_REQUEST", "pageToken: not a token this API issued");
        return;
    }
    pthread_mutex_lock(&B.mu);
    struct batch *b = find(id, strlen(id));
    if (b == NULL) {
        pthread_mutex_unlock(&B.mu);
        sim_stedi_error(req, 404, "NOT_FOUND", "no batch with this batchId");
        return;
    }
    advance(b, rte_clock_now_ms());
    if (start > b->done) {
        pthread_mutex_unlock(&B.mu);
        sim_stedi_error(req, 400, "BAD_REQUEST", "pageToken: beyond the completed results");
        return;
    }
    long end = start + size < b->done ? start + size : b->done;
    cJSON *d = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(d, "items");
    for (long i = start; i < end; i++) {
        const struct item *it = &b->items[b->order[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "submitterTransactionIdentifier",
                                sfield(it->req, "submitterTransactionIdentifier"));
        cJSON_AddStringToObject(o, "batchId", b->id);
        cJSON_AddStringToObject(o, "memberId", member_of(it->req));
        cJSON_AddStringToObject(o, "tradingPartnerServiceId",
                                sfield(it->req, "tradingPartnerServiceId"));
        cJSON_AddStringToObject(o, "status", "COMPLETED");
        cJSON_AddItemToObject(o, "response", sim_outcome(it->req, it->due_ms, it->error));
        cJSON_AddItemToArray(arr, o);
    }
    if (end < b->done) {
        char tok[64];
        make_token(end, tok, sizeof tok);
        cJSON_AddStringToObject(d, "nextPageToken", tok);
    }
    pthread_mutex_unlock(&B.mu);
    send_page(req, d, (int)(end - start));
    cJSON_Delete(d);
}

/* --- callbacks ----------------------------------------------------------- */

/* "YYYYMMDD" -> "YYYY-MM-DD" */
static void iso_date(const char *s, char *out, size_t len)
{
    if (strlen(s) == 8)
        snprintf(out, len, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
    else
        snprintf(out, len, "%s", s);
}

static cJSON *eligibility_of(const cJSON *resp)
{
    cJSON *e = cJSON_CreateObject();
    const cJSON *ps = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp, "planStatus"), 0);
    cJSON_AddBoolToObject(e, "eligible", strcmp(sfield(ps, "statusCode"), "1") == 0);
    double copay = 0;
    const char *net = "N";
    const cJSON *bi;
    cJSON_ArrayForEach(bi, cJSON_GetObjectItemCaseSensitive(resp, "benefitsInformation"))
    {
        net = sfield(bi, "inPlanNetworkIndicatorCode");
        if (strcmp(sfield(bi, "code"), "B") == 0)
            copay = strtod(sfield(bi, "benefitAmount"), NULL);
    }
    cJSON_AddNumberToObject(e, "copay_amount", copay);
    cJSON_AddStringToObject(e, "network_status",
                            strcmp(net, "Y") == 0 ? "in_network" : "out_of_network");
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(resp, "planDateInformation");
    char date[16];
    iso_date(sfield(pd, "planBegin"), date, sizeof date);
    cJSON_AddStringToObject(e, "coverage_start", date);
    iso_date(sfield(pd, "planEnd"), date, sizeof date);
    cJSON_AddStringToObject(e, "coverage_end", date);
    return e;
}

/* the completion document; B.mu held; caller frees */
static char *callback_body(const struct batch *b)
{
    cJSON *d = cJSON_CreateObject();
    char ts[40];
    cJSON_AddStringToObject(d, "batch_id", b->id);
    cJSON_AddStringToObject(d, "status", "completed");
    rte_clock_format(b->items[b->order[b->n - 1]].due_ms, ts, sizeof ts);
    cJSON_AddStringToObject(d, "completed_at", ts);
    cJSON *arr = cJSON_AddArrayToObject(d, "results");
    for (int i = 0; i < b->n; i++) {
        const struct item *it = &b->items[b->order[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "check_id", sfield(it->req, "submitterTransactionIdentifier"));
        cJSON_AddStringToObject(o, "member_id", member_of(it->req));
        cJSON_AddStringToObject(o, "trading_partner_id",
                                sfield(it->req, "tradingPartnerServiceId"));
        cJSON_AddStringToObject(o, "status", it->error ? "error" : "completed");
        if (it->error) {
            cJSON *e = cJSON_AddObjectToObject(o, "error");
            cJSON_AddStringToObject(e, "code", "42");
            cJSON_AddStringToObject(e, "description", "Unable to Respond at Current Time");
        } else {
            cJSON *resp = sim_outcome(it->req, it->due_ms, 0);
            cJSON_AddItemToObject(o, "eligibility", eligibility_of(resp));
            cJSON_Delete(resp);
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return text;
}

/* the HMAC key of sim.callback_secret; set by sim_batch_start, read-only after */
static uint8_t cb_key[RTE_WEBHOOK_KEY_MAX];
static size_t cb_keylen;

/* one delivery attempt; 0 on a 2xx */
static int deliver(const char *url, const char *body)
{
    size_t blen = strlen(body);
    uint8_t mac[RTE_SHA256_LEN];
    char hex[2 * RTE_SHA256_LEN + 1], b64[64], wid[37], wts[24];
    rte_hmac_sha256(cb_key, cb_keylen, body, blen, mac);
    rte_hex_encode(mac, sizeof mac, hex);
    rte_uuid4(wid);
    snprintf(wts, sizeof wts, "%lld", (long long)time(NULL));
    size_t slen = strlen(wid) + strlen(wts) + blen + 3;
    char *signed_text = malloc(slen);
    if (signed_text == NULL)
        rte_panic("out of memory");
    snprintf(signed_text, slen, "%s.%s.%s", wid, wts, body);
    rte_hmac_sha256(cb_key, cb_keylen, signed_text, strlen(signed_text), mac);
    free(signed_text);
    rte_base64_encode(mac, sizeof mac, b64, sizeof b64);

    char h1[128], h2[80], h3[64], h4[96];
    snprintf(h1, sizeof h1, "X-Webhook-Signature: %s", hex);
    snprintf(h2, sizeof h2, "webhook-id: %s", wid);
    snprintf(h3, sizeof h3, "webhook-timestamp: %s", wts);
    snprintf(h4, sizeof h4, "webhook-signature: v1,%s", b64);
    const char *headers[] = {"Content-Type: application/json", h1, h2, h3, h4, NULL};
    rte_http_request r = {.method = "POST",
                          .url = url,
                          .headers = headers,
                          .body = body,
                          .body_len = blen,
                          .timeout_ms = 5000,
                          .max_attempts = 1,
                          .name = "sim_callback"};
    rte_http_response resp;
    memset(&resp, 0, sizeof resp);
    int rc = rte_http_do(B.client, &r, &resp);
    int ok = rc == 0 && resp.status >= 200 && resp.status < 300;
    if (!ok)
        rte_log_warn("callback to %s failed (%s); will retry with backoff", url,
                     rc == 0 ? "non-2xx status" : resp.error);
    rte_http_response_free(&resp);
    return ok ? 0 : -1;
}

/* the pending callback due first; B.mu held */
static struct batch *next_callback(int64_t *when)
{
    struct batch *best = NULL;
    for (struct batch *b = B.head; b != NULL; b = b->next) {
        if (b->cb_state != 1)
            continue;
        int64_t t = b->cb_next_mono > b->complete_mono ? b->cb_next_mono : b->complete_mono;
        if (best == NULL || t < *when) {
            best = b;
            *when = t;
        }
    }
    return best;
}

static void *callback_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&B.mu);
    while (!B.stop) {
        int64_t when = 0, now = rte_clock_mono_ms();
        struct batch *b = next_callback(&when);
        if (b == NULL || when > now) {
            int64_t until = b == NULL || when > now + 1000 ? now + 1000 : when;
            struct timespec ts = rte_clock_mono_timespec(until);
            pthread_cond_timedwait(&B.cv, &B.mu, &ts);
            continue;
        }
        advance(b, rte_clock_now_ms());
        if (b->done < b->n) { /* scaled-clock rounding: not quite there yet */
            b->cb_next_mono = now + 1;
            continue;
        }
        char *body = callback_body(b);
        char *url = strdup(b->callback_url);
        pthread_mutex_unlock(&B.mu);
        int rc = body != NULL && url != NULL ? deliver(url, body) : -1;
        cJSON_free(body);
        free(url);
        sim_stat_add(rc == 0 ? &sim_st.callbacks_sent : &sim_st.callbacks_failed, 1);
        pthread_mutex_lock(&B.mu);
        b->cb_attempts++;
        if (rc == 0) {
            b->cb_state = 2;
        } else if (b->cb_attempts >= sim_conf.callback_max_attempts) {
            b->cb_state = 3;
            rte_log_error("callback for batch %s gave up after %d attempts", b->id, b->cb_attempts);
        } else {
            int shift = b->cb_attempts - 1 < 6 ? b->cb_attempts - 1 : 6;
            int64_t delay = 1000LL << shift;
            b->cb_next_mono = rte_clock_mono_ms() + (delay > 60000 ? 60000 : delay);
        }
    }
    pthread_mutex_unlock(&B.mu);
    return NULL;
}

/* sim_batch_start - start the callback thread and HTTP client; init */
int sim_batch_start(char *err, size_t errlen)
{
    char why[256];
    int klen = rte_crypto_webhook_key(sim_conf.callback_secret, cb_key, why, sizeof why);
    if (klen < 0) {
        snprintf(err, errlen, "config: key 'sim.callback_secret' (RTE_SIM_CALLBACK_SECRET): %s",
                 why);
        return -1;
    }
    cb_keylen = (size_t)klen;
    B.client = rte_http_client_new(NULL, err, errlen);
    if (B.client == NULL)
        return -1;
    rte_clock_cond_init(&B.cv);
    if (pthread_create(&B.thread, NULL, callback_main, NULL) != 0) {
        snprintf(err, errlen, "stedi-sim: cannot start the callback thread");
        return -1;
    }
    return 0;
}

/* sim_batch_stop - stop the callback thread, free every batch; shutdown */
void sim_batch_stop(void)
{
    pthread_mutex_lock(&B.mu);
    B.stop = 1;
    pthread_cond_signal(&B.cv);
    pthread_mutex_unlock(&B.mu);
    pthread_join(B.thread, NULL);
    rte_http_client_free(B.client);
    while (B.head != NULL) {
        struct batch *b = B.head;
        B.head = b->next;
        free_batch(b);
    }
    pthread_cond_destroy(&B.cv);
}
