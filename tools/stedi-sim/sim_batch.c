/*
 * sim_batch.c - batch eligibility of stedi-sim: submit, status, items,
 * polling, and the optional signed completion callback.
 *
 * Submission (POST .../eligibility-manager/batch-eligibility) checks the
 * whole body the way Stedi documents it and refuses it whole on any error:
 * 1..10,000 items, each a real-time check plus submitterTransactionIdentifier
 * (unique within the batch), maxRetryHours an integer 8..24, name matching
 * ^[a-zA-Z0-9-_]{1,100}$ - 400 ValidationException naming every field - and
 * a name already used by another batch of the account is 409. The answer is
 * {batchId, submittedAt}.
 *
 * Each item follows a timeline in simulated time fixed at submission from
 * its hash, so a resubmission behaves the same: PENDING until the batch is
 * validated (submittedAt + min(1 s, batch_min_delay / 2)), VALIDATED until
 * it starts, STARTED, possibly RETRYING, then COMPLETED or
 * COMPLETED_WITH_ERRORS at submittedAt + a delay in
 * [sim.batch_min_delay, sim.batch_max_delay]. An item whose completion
 * falls in its payer's sim.downtime window retries until the window ends,
 * or fails (AAA 42) once maxRetryHours have passed; sim.error_rate makes an
 * item retry and fail the same way; an item for a payer in
 * sim.unknown_payers fails with AAA 79. A completed item's answer is the
 * member's real-time answer at its completion time. The batch status
 * follows its items: PENDING, VALIDATED, IN_PROGRESS, then COMPLETED, or
 * COMPLETED_WITH_ERRORS when any item failed (VALIDATION_FAILED is for
 * CSV uploads, which the simulator does not take). Nothing ticks: every
 * read evaluates the timeline at the current simulated time, and batch
 * items use no real-time slot.
 *
 * Polling (GET .../eligibility-manager/polling/batch-eligibility) returns
 * completed checks oldest first - one batch's (batchId) or the whole
 * account's, optionally only those completed after startDateTime - each
 * the flat real-time answer plus batchId, batchName and
 * submitterTransactionIdentifier, or a status "ERROR" item for a failed
 * check. nextPageToken is there while more completed results follow; a
 * token names the last item returned and stays valid, so re-reading it
 * later also returns what completed since. Pages of more than 20
 * (pageSize > 20) are gzip-compressed and need Accept-Encoding: gzip.
 *
 * Callbacks (not a Stedi feature, kept to exercise the signed-callback
 * path): when a submission names callback_url, one callback thread posts
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
#include <math.h>
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
#define HOUR_MS 3600000LL

/* how an item ends */
enum item_end {
    END_ANSWER,        /* the payer's answer (which may itself be a rejection) */
    END_UNKNOWN_PAYER, /* status ERROR, AAA 79 */
    END_PAYER_DOWN,    /* status ERROR, AAA 42: retries ran out */
};

struct item {
    cJSON *req;       /* the submitted check, owned */
    int64_t start_ms; /* STARTED from here (simulated) */
    int64_t retry_ms; /* RETRYING from here; == due_ms when it never retries */
    int64_t due_ms;   /* completes here */
    enum item_end end;
};

struct batch {
    char id[37];
    char name[101];
    uint64_t seq; /* submission order, for polls across batches */
    int max_retry_hours;
    int64_t submitted_ms, validated_ms; /* simulated */
    int64_t complete_mono;              /* real monotonic ms when the last item completes */
    int n, done, errors;                /* done: completed prefix of order; errors among them */
    struct item *items;
    int *order;         /* item indexes by completion time, then index */
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
    uint64_t seq;
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
        b->errors += b->items[b->order[b->done]].end != END_ANSWER;
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

/* the seed of item i's ids: the same answer bytes on every read */
static uint64_t item_seed(const struct batch *b, int i)
{
    char k[16];
    snprintf(k, sizeof k, "#%d", i);
    return sim_hash(sim_hash(0, b->id), k);
}

/* --- submit -------------------------------------------------------------- */

static int by_due(const void *a, const void *b, void *arg)
{
    const struct item *items = arg;
    int x = *(const int *)a, y = *(const int *)b;
    if (items[x].due_ms != items[y].due_ms)
        return items[x].due_ms < items[y].due_ms ? -1 : 1;
    return x - y;
}

static int name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* items[i].submitterTransactionIdentifier repeats an earlier one: errors into v */
static void check_unique_ids(const cJSON *items, int n, sim_invalid *v)
{
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap *= 2;
    const char **slot = calloc(cap, sizeof *slot);
    int *where = calloc(cap, sizeof *where);
    if (slot == NULL || where == NULL)
        rte_panic("out of memory");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const char *s = sfield(it, "submitterTransactionIdentifier");
        size_t h = (size_t)sim_hash(0, s) & (cap - 1);
        while (slot[h] != NULL && strcmp(slot[h], s) != 0)
            h = (h + 1) & (cap - 1);
        if (slot[h] != NULL) {
            char path[64], shown[41];
            snprintf(path, sizeof path, "/items/%d/submitterTransactionIdentifier", i);
            sim_invalid_add(v, path,
                            "items[%d].submitterTransactionIdentifier: '%s' is already used by "
                            "items[%d]; it must be unique within the batch",
                            i, sim_excerpt(s, shown, sizeof shown), where[h]);
        } else {
            slot[h] = s;
            where[h] = i;
        }
        i++;
    }
    free(slot);
    free(where);
}

static void check_submission(const cJSON *in, sim_invalid *v)
{
    if (!cJSON_IsObject(in)) {
        sim_invalid_add(v, "/", "(request): must be a JSON object");
        return;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(in, "items");
    int n = cJSON_IsArray(items) ? cJSON_GetArraySize(items) : -1;
    if (items == NULL)
        sim_invalid_add(v, "/items", "items: missing (an array of 1..%d checks)", MAX_ITEMS);
    else if (n < 0)
        sim_invalid_add(v, "/items", "items: must be an array");
    else if (n < 1 || n > MAX_ITEMS)
        sim_invalid_add(v, "/items", "items: must hold 1..%d checks (got %d)", MAX_ITEMS, n);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(in, "maxRetryHours");
    if (x != NULL && (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
                      x->valuedouble < 8 || x->valuedouble > 24))
        sim_invalid_add(v, "/maxRetryHours", "maxRetryHours: must be an integer in 8..24");
    x = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (x != NULL && !cJSON_IsString(x))
        sim_invalid_add(v, "/name", "name: must be a string");
    else if (x != NULL && !name_ok(x->valuestring))
        sim_invalid_add(v, "/name",
                        "name: must be 1..100 of the letters A-Z, a-z, digits, '-' and '_'");
    x = cJSON_GetObjectItemCaseSensitive(in, "callback_url");
    if (x != NULL && (!cJSON_IsString(x) || (strncmp(x->valuestring, "http://", 7) != 0 &&
                                             strncmp(x->valuestring, "https://", 8) != 0)))
        sim_invalid_add(v, "/callback_url", "callback_url: must be an http(s) URL");
    if (n < 1 || n > MAX_ITEMS)
        return;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        sim_check_request(it, i++, v);
    }
    if (v->total == 0)
        check_unique_ids(items, n, v);
}

/* item i's timeline and ending, fixed at submission */
static void plan_item(struct batch *b, int i)
{
    struct item *it = &b->items[i];
    const char *payer = sfield(it->req, "tradingPartnerServiceId");
    uint64_t span = (uint64_t)(sim_conf.batch_max_delay_ms - sim_conf.batch_min_delay_ms) + 1;
    uint64_t h = sim_hash(sim_hash(0, member_of(it->req)), payer);
    h = sim_hash(h, sfield(it->req, "submitterTransactionIdentifier"));
    int64_t due = b->submitted_ms + sim_conf.batch_min_delay_ms + (int64_t)(h % span);
    it->start_ms = b->validated_ms + (due - b->validated_ms) / 2;
    it->retry_ms = it->due_ms = due;
    it->end = END_ANSWER;
    int64_t give_up = due + (int64_t)b->max_retry_hours * HOUR_MS;
    int64_t up = sim_downtime_end(payer, due);
    if (sim_payer_unknown(payer)) {
        it->end = END_UNKNOWN_PAYER;
    } else if ((double)(sim_hash(h, "error") >> 11) / 9007199254740992.0 < sim_conf.error_rate) {
        it->end = END_PAYER_DOWN; /* retried, then given up at its completion time */
        it->retry_ms = it->start_ms + (due - it->start_ms) / 2;
    } else if (up >= 0 && up <= give_up) {
        it->due_ms = up; /* retried until the payer came back */
    } else if (up >= 0) {
        it->end = END_PAYER_DOWN;
        it->due_ms = give_up;
    }
}

static struct batch *new_batch(cJSON *in)
{
    cJSON *items = cJSON_GetObjectItemCaseSensitive(in, "items");
    struct batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        rte_panic("out of memory");
    rte_uuid4(b->id);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    snprintf(b->name, sizeof b->name, "%s", cJSON_IsString(name) ? name->valuestring : b->id);
    const cJSON *hours = cJSON_GetObjectItemCaseSensitive(in, "maxRetryHours");
    b->max_retry_hours = cJSON_IsNumber(hours) ? (int)hours->valuedouble : 8;
    b->n = cJSON_GetArraySize(items);
    b->items = calloc((size_t)b->n, sizeof *b->items);
    b->order = calloc((size_t)b->n, sizeof *b->order);
    if (b->items == NULL || b->order == NULL)
        rte_panic("out of memory");
    b->submitted_ms = rte_clock_now_ms();
    int64_t check = sim_conf.batch_min_delay_ms / 2 < 1000 ? sim_conf.batch_min_delay_ms / 2 : 1000;
    b->validated_ms = b->submitted_ms + check;
    int64_t last = b->submitted_ms;
    for (int i = 0; i < b->n; i++) {
        b->items[i].req = cJSON_DetachItemFromArray(items, 0);
        plan_item(b, i);
        b->order[i] = i;
        if (b->items[i].due_ms > last)
            last = b->items[i].due_ms;
    }
    qsort_r(b->order, (size_t)b->n, sizeof *b->order, by_due, b->items);
    b->complete_mono = rte_clock_mono_ms() + rte_clock_real_ms(last - b->submitted_ms);
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(in, "callback_url");
    if (cJSON_IsString(cb)) {
        b->callback_url = strdup(cb->valuestring);
        if (b->callback_url == NULL)
            rte_panic("out of memory");
        b->cb_state = 1;
    }
    return b;
}

/* a batch of the account already has this name; B.mu held */
static int name_taken(const char *name)
{
    for (struct batch *b = B.head; b != NULL; b = b->next)
        if (strcmp(b->name, name) == 0)
            return 1;
    return 0;
}

/* sim_h_batch_submit - POST .../eligibility-manager/batch-eligibility; a loop thread */
void sim_h_batch_submit(rte_http_req *req, void *arg)
{
    if (!sim_serves(req, arg, SIM_API_MANAGER) || !sim_authorized(req, SIM_API_MANAGER))
        return;
    size_t len;
    const char *body = rte_http_req_body(req, &len);
    cJSON *in = sim_utf8_ok(body, len) ? cJSON_ParseWithLength(body, len) : NULL;
    sim_invalid v = {0};
    if (in == NULL)
        sim_invalid_add(&v, "/", "(request): the body is not valid JSON (UTF-8)");
    else
        check_submission(in, &v);
    if (v.total > 0) {
        sim_respond_invalid(req, &v);
        cJSON_Delete(in);
        return;
    }
    struct batch *b = new_batch(in);
    cJSON_Delete(in);

    pthread_mutex_lock(&B.mu);
    int taken = name_taken(b->name);
    if (!taken) {
        b->seq = ++B.seq;
        b->next = B.head;
        B.head = b;
        pthread_cond_signal(&B.cv);
    }
    pthread_mutex_unlock(&B.mu);
    if (taken) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "A batch named '%s' already exists in this account; batch names must be unique",
                 b->name);
        free_batch(b);
        sim_stedi_error(req, 409, "CONFLICT", msg);
        return;
    }
    pthread_mutex_lock(&sim_st.mu);
    sim_st.batches++;
    sim_st.batch_items += b->n;
    pthread_mutex_unlock(&sim_st.mu);

    cJSON *d = cJSON_CreateObject();
    char ts[40];
    cJSON_AddStringToObject(d, "batchId", b->id);
    rte_clock_format(b->submitted_ms, ts, sizeof ts);
    cJSON_AddStringToObject(d, "submittedAt", ts);
    rte_http_respond_json(req, 200, d);
    cJSON_Delete(d);
}

/* --- status and items ---------------------------------------------------- */

enum item_state { ST_PENDING, ST_VALIDATED, ST_STARTED, ST_RETRYING, ST_COMPLETED, ST_FAILED };

static const char *const state_names[] = {"PENDING",  "VALIDATED", "STARTED",
                                          "RETRYING", "COMPLETED", "COMPLETED_WITH_ERRORS"};

static enum item_state state_at(const struct batch *b, const struct item *it, int64_t now)
{
    if (now >= it->due_ms)
        return it->end == END_ANSWER ? ST_COMPLETED : ST_FAILED;
    if (now >= it->retry_ms)
        return ST_RETRYING;
    if (now >= it->start_ms)
        return ST_STARTED;
    return now >= b->validated_ms ? ST_VALIDATED : ST_PENDING;
}

/* when the item last changed state, at simulated now */
static int64_t changed_at(const struct batch *b, const struct item *it, int64_t now)
{
    const int64_t steps[] = {it->due_ms, it->retry_ms, it->start_ms, b->validated_ms};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i] <= now)
            return steps[i];
    return b->submitted_ms;
}

/* B.mu held; now simulated */
static cJSON *status_doc(const struct batch *b, int64_t now)
{
    int count[6] = {0};
    int64_t updated = b->submitted_ms;
    for (int i = 0; i < b->n; i++) {
        count[state_at(b, &b->items[i], now)]++;
        int64_t t = changed_at(b, &b->items[i], now);
        if (t > updated)
            updated = t;
    }
    int finished = count[ST_COMPLETED] + count[ST_FAILED];
    const char *status = now < b->validated_ms                      ? "PENDING"
                         : finished == b->n && count[ST_FAILED] > 0 ? "COMPLETED_WITH_ERRORS"
                         : finished == b->n                         ? "COMPLETED"
                         : count[ST_VALIDATED] == b->n              ? "VALIDATED"
                                                                    : "IN_PROGRESS";
    char ts[40];
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "batchType", "ELIGIBILITY");
    rte_clock_format(b->submitted_ms, ts, sizeof ts);
    cJSON_AddStringToObject(d, "createdAt", ts);
    cJSON_AddNumberToObject(d, "errorCount", count[ST_FAILED]);
    cJSON_AddStringToObject(d, "id", b->id);
    cJSON_AddNumberToObject(d, "inProgressCount", count[ST_STARTED] + count[ST_RETRYING]);
    cJSON_AddNumberToObject(d, "maxRetryHours", b->max_retry_hours);
    cJSON_AddStringToObject(d, "name", b->name);
    cJSON_AddStringToObject(d, "source", "API");
    cJSON_AddStringToObject(d, "status", status);
    cJSON_AddNumberToObject(d, "successCount", count[ST_COMPLETED]);
    cJSON_AddNumberToObject(d, "totalCount", b->n);
    rte_clock_format(updated, ts, sizeof ts);
    cJSON_AddStringToObject(d, "updatedAt", ts);
    cJSON_AddNumberToObject(d, "validatedCount", count[ST_VALIDATED]);
    cJSON_AddNumberToObject(d, "validationFailedCount", 0);
    return d;
}

/* the answer document of a completed item; caller frees */
static cJSON *item_answer(const struct batch *b, int i, sim_facts *f)
{
    const struct item *it = &b->items[i];
    uint64_t seed = item_seed(b, i);
    if (it->end == END_ANSWER)
        return sim_answer(it->req, it->due_ms, seed, f);
    if (f != NULL)
        *f = (sim_facts){.result = SIM_REJECTED, .copay = -1};
    return sim_answer_failed_item(it->req, seed, it->end == END_UNKNOWN_PAYER, b->max_retry_hours);
}

static const char *const result_names[] = {"ACTIVE", "INACTIVE", "FAILED"};

/* one entry of GET .../batch/{id}/items; B.mu held */
static cJSON *item_doc(const struct batch *b, int i, enum item_state st, int64_t now)
{
    const struct item *it = &b->items[i];
    uint64_t seed = item_seed(b, i);
    char ts[40], uuid[37], id[40], name[512];
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "additionalInfo"), "eligibility");
    if (st == ST_COMPLETED || st == ST_FAILED) {
        sim_facts f;
        cJSON *ans = item_answer(b, i, &f);
        cJSON_AddStringToObject(e, "eligibilityCheckResult", result_names[f.result]);
        cJSON *errors = cJSON_GetObjectItemCaseSensitive(ans, "errors");
        if (cJSON_GetArraySize(errors) > 0)
            cJSON_AddItemToObject(e, "aaaErrors", cJSON_Duplicate(errors, 1));
        cJSON_Delete(ans);
    }
    sim_format_uuid(seed, 2, uuid);
    cJSON_AddStringToObject(e, "eligibilitySearchId", uuid);
    sim_format_uuid(seed, 1, uuid);
    snprintf(id, sizeof id, "ec_%s", uuid);
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddStringToObject(e, "payerId", sfield(it->req, "tradingPartnerServiceId"));
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(it->req, "provider");
    const char *org = sfield(prov, "organizationName");
    if (*org == '\0') {
        snprintf(name, sizeof name, "%s %s", sfield(prov, "firstName"), sfield(prov, "lastName"));
        org = name;
    }
    cJSON_AddStringToObject(e, "providerName", org);
    if (*sfield(prov, "npi") != '\0')
        cJSON_AddStringToObject(e, "providerNpi", sfield(prov, "npi"));
    cJSON_AddStringToObject(e, "submitterTransactionIdentifier",
                            sfield(it->req, "submitterTransactionIdentifier"));
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(it->req, "subscriber");
    static const char *const from[] = {"firstName", "lastName", "memberId"};
    static const char *const to[] = {"subscriberFirstName", "subscriberLastName",
                                     "subscriberMemberId"};
    for (size_t k = 0; k < 3; k++)
        if (*sfield(sub, from[k]) != '\0')
            cJSON_AddStringToObject(e, to[k], sfield(sub, from[k]));
    cJSON_AddStringToObject(o, "batchId", b->id);
    rte_clock_format(b->submitted_ms, ts, sizeof ts);
    cJSON_AddStringToObject(o, "createdAt", ts);
    cJSON_AddNumberToObject(o, "index", i);
    sim_format_uuid(seed, 3, uuid);
    cJSON_AddStringToObject(o, "requestId", uuid);
    cJSON_AddStringToObject(o, "state", state_names[st]);
    rte_clock_format(changed_at(b, it, now), ts, sizeof ts);
    cJSON_AddStringToObject(o, "updatedAt", ts);
    return o;
}

/* --- page tokens: opaque to clients, hex of "<kind>:<numbers>" ---------- */

static void make_token(const char *text, char *out, size_t len)
{
    size_t n = strlen(text);
    if (2 * n + 1 > len)
        rte_panic("page token too long");
    rte_hex_encode((const uint8_t *)text, n, out);
}

/* the token's text (NUL-terminated) into buf; -1 if it is not one of ours */
static int read_token(const char *tok, char *buf, size_t len)
{
    size_t n = strlen(tok);
    if (n == 0 || n % 2 != 0 || n / 2 >= len || rte_hex_decode(tok, (uint8_t *)buf, len) < 0)
        return -1;
    buf[n / 2] = '\0';
    return 0;
}

/*
 * query parameter name into buf: 1 when given, 0 when absent, -1 with v
 * filled when it cannot be read (bad escape, control character, too long,
 * given twice) - a bad parameter is a 400, never taken for an absent one
 */
static int query_text(rte_http_req *req, const char *name, char *buf, size_t len, sim_invalid *v)
{
    char err[200], path[40];
    int rc = rte_http_req_query(req, name, buf, len, err, sizeof err);
    if (rc == RTE_HTTP_QUERY_ABSENT)
        return 0;
    if (rc < 0) {
        snprintf(path, sizeof path, "/%s", name);
        sim_invalid_add(v, path, "%s", err);
        return -1;
    }
    return 1;
}

/* the repeated query parameter `name`: each value must be in allowed; a bit per allowed index */
static int query_set(rte_http_req *req, const char *name, const char *const *allowed,
                     size_t nallowed, unsigned *mask, sim_invalid *v)
{
    char val[256], shown[41];
    *mask = 0;
    char err[200];
    int rc;
    for (int i = 0; (rc = rte_http_req_query_at(req, name, i, val, sizeof val, err, sizeof err)) !=
                    RTE_HTTP_QUERY_ABSENT;
         i++) {
        if (rc < 0) {
            char path[40];
            snprintf(path, sizeof path, "/%s", name);
            sim_invalid_add(v, path, "%s", err);
            return -1;
        }
        size_t k = 0;
        while (k < nallowed && strcmp(allowed[k], val) != 0)
            k++;
        if (k == nallowed) {
            char path[40];
            snprintf(path, sizeof path, "/%s", name);
            sim_invalid_add(v, path, "%s: '%s' is not one of the documented values", name,
                            sim_excerpt(val, shown, sizeof shown));
            return -1;
        }
        *mask |= 1u << k;
    }
    return 0;
}

/* an integer query parameter in lo..hi, default def; -1 + v on a bad one */
static int query_int(rte_http_req *req, const char *name, long lo, long hi, long def, long *out,
                     sim_invalid *v)
{
    char val[64], path[40];
    *out = def;
    int n = query_text(req, name, val, sizeof val, v);
    if (n <= 0)
        return n;
    n = (int)strlen(val);
    char *end;
    long x = strtol(val, &end, 10);
    if (n == 0 || *end != '\0' || x < lo || x > hi) {
        snprintf(path, sizeof path, "/%s", name);
        sim_invalid_add(v, path, "%s: must be an integer in %ld..%ld", name, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* GET .../batch/{id}/items; B.mu held */
static void respond_items(rte_http_req *req, struct batch *b, int64_t now)
{
    static const char *const results[] = {"ACTIVE", "INACTIVE", "INVESTIGATE", "FAILED"};
    sim_invalid v = {0};
    long size;
    unsigned states, wanted_results;
    char tok[2048];
    long from = 0;
    if (query_int(req, "pageSize", 1, 1000, 100, &size, &v) != 0 ||
        query_set(req, "state", state_names, 6, &states, &v) != 0 ||
        query_set(req, "eligibilityCheckResult", results, 4, &wanted_results, &v) != 0) {
        sim_respond_invalid(req, &v);
        return;
    }
    int tn = query_text(req, "pageToken", tok, sizeof tok, &v);
    if (tn < 0) {
        sim_respond_invalid(req, &v);
        return;
    }
    if (tn > 0) {
        char text[32], *end;
        if (read_token(tok, text, sizeof text) != 0 || strncmp(text, "i:", 2) != 0 ||
            (from = strtol(text + 2, &end, 10)) < 0 || *end != '\0' || from > b->n) {
            sim_invalid_add(&v, "/pageToken", "pageToken: not a token this API issued");
            sim_respond_invalid(req, &v);
            return;
        }
    }
    cJSON *d = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(d, "items");
    long taken = 0;
    int i = (int)from;
    for (; i < b->n && taken < size; i++) {
        enum item_state st = state_at(b, &b->items[i], now);
        if (states != 0 && !(states & (1u << st)))
            continue;
        cJSON *o = item_doc(b, i, st, now);
        if (wanted_results != 0) {
            const char *r =
                sfield(cJSON_GetObjectItemCaseSensitive(
                           cJSON_GetObjectItemCaseSensitive(o, "additionalInfo"), "eligibility"),
                       "eligibilityCheckResult");
            unsigned bit = 0;
            for (unsigned k = 0; k < 4; k++)
                if (strcmp(results[k], r) == 0)
                    bit = 1u << k;
            if (!(wanted_results & bit)) {
                cJSON_Delete(o);
                continue;
            }
        }
        cJSON_AddItemToArray(arr, o);
        taken++;
    }
    if (i < b->n) {
        char text[32];
        snprintf(text, sizeof text, "i:%d", i);
        make_token(text, tok, sizeof tok);
        cJSON_AddStringToObject(d, "nextPageToken", tok);
    }
    rte_http_respond_json(req, 200, d);
    cJSON_Delete(d);
}

/* sim_h_batch_get - GET .../batch/{id} and .../batch/{id}/items; a loop thread */
void sim_h_batch_get(rte_http_req *req, void *arg)
{
    if (!sim_serves(req, arg, SIM_API_MANAGER) || !sim_authorized(req, SIM_API_MANAGER))
        return;
    const char *tail = rte_http_req_tail(req);
    size_t idlen = strcspn(tail, "/");
    int want_items = 0;
    if (tail[idlen] == '/') {
        if (strcmp(tail + idlen, "/items") != 0) {
            sim_h_not_found(req, NULL);
            return;
        }
        want_items = 1;
    }
    int64_t now = rte_clock_now_ms();
    pthread_mutex_lock(&B.mu);
    struct batch *b = find(tail, idlen);
    if (b == NULL) {
        pthread_mutex_unlock(&B.mu);
        sim_stedi_error(req, 404, "NOT_FOUND", "No batch with this batchId");
        return;
    }
    advance(b, now);
    if (want_items) {
        respond_items(req, b, now);
    } else {
        cJSON *d = status_doc(b, now);
        rte_http_respond_json(req, 200, d);
        cJSON_Delete(d);
    }
    pthread_mutex_unlock(&B.mu);
}

/* --- poll ---------------------------------------------------------------- */

/* a completed item's place in the account's completion order */
typedef struct poll_key {
    int64_t due;
    uint64_t seq;
    int index;
} poll_key;

static int key_after(const poll_key *a, const poll_key *b)
{
    if (a->due != b->due)
        return a->due > b->due;
    if (a->seq != b->seq)
        return a->seq > b->seq;
    return a->index > b->index;
}

static poll_key key_of(const struct batch *b, int k)
{
    int i = b->order[k];
    return (poll_key){b->items[i].due_ms, b->seq, i};
}

/* the first completed position of b after `after` and after `since`; b->done if none */
static int first_after(const struct batch *b, const poll_key *after, int64_t since)
{
    int lo = 0, hi = b->done;
    while (lo < hi) { /* order is sorted by key within a batch */
        int mid = (lo + hi) / 2;
        poll_key k = key_of(b, mid);
        if (key_after(&k, after) && k.due > since)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* does the client take gzip? Accept-Encoding with q-values (RFC 9110 12.5.3) */
static int accepts_gzip(rte_http_req *req)
{
    char ae[512];
    if (rte_http_req_header(req, "Accept-Encoding", ae, sizeof ae) < 0)
        return 0;
    double gz = -1, star = -1;
    for (char *p = ae; *p != '\0';) {
        size_t n = strcspn(p, ",");
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), p);
        p += n + (p[n] == ',');
        char *s = one + strspn(one, " \t");
        size_t name = strcspn(s, " \t;");
        double q = 1;
        char *qp = strstr(s + name, "q=");
        if (qp != NULL)
            q = strtod(qp + 2, NULL);
        if ((name == 4 && strncasecmp(s, "gzip", 4) == 0) ||
            (name == 6 && strncasecmp(s, "x-gzip", 6) == 0))
            gz = q;
        else if (name == 1 && *s == '*')
            star = q;
    }
    return (gz >= 0 ? gz : star) > 0;
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

static void send_page(rte_http_req *req, cJSON *d, int gzip)
{
    char *text = cJSON_PrintUnformatted(d);
    if (text == NULL) {
        sim_stedi_error(req, 500, "INTERNAL_FAILURE", "could not encode the page");
        return;
    }
    size_t len = strlen(text), zlen = 0;
    unsigned char *z = gzip ? gzip_text(text, len, &zlen) : NULL;
    if (z != NULL) {
        rte_http_add_header(req, "Content-Encoding", "gzip");
        rte_http_add_header(req, "Vary", "Accept-Encoding");
        rte_http_respond(req, 200, "application/json", (const char *)z, zlen);
        free(z);
    } else if (gzip) {
        sim_stedi_error(req, 500, "INTERNAL_FAILURE", "could not compress the page");
    } else {
        rte_http_respond(req, 200, "application/json", text, len);
    }
    cJSON_free(text);
}

/* the poll's filters and position, read from the query; -1 + v on a bad one */
static int poll_query(rte_http_req *req, char *batch_id, size_t idlen, long *size, poll_key *after,
                      int64_t *since, sim_invalid *v)
{
    char tok[2048], text[80], when[256];
    if (query_text(req, "batchId", batch_id, idlen, v) < 0)
        return -1;
    if (query_int(req, "pageSize", 1, 200, 10, size, v) != 0)
        return -1;
    *after = (poll_key){INT64_MIN, 0, -1};
    int n = query_text(req, "pageToken", tok, sizeof tok, v);
    if (n < 0)
        return -1;
    if (n > 0) {
        long long due;
        unsigned long long seq;
        int index, used = 0;
        if (read_token(tok, text, sizeof text) != 0 ||
            sscanf(text, "p:%lld:%llu:%d%n", &due, &seq, &index, &used) != 3 ||
            text[used] != '\0') {
            sim_invalid_add(v, "/pageToken", "pageToken: not a token this API issued");
            return -1;
        }
        *after = (poll_key){due, seq, index};
    }
    *since = INT64_MIN;
    int w = query_text(req, "startDateTime", when, sizeof when, v);
    if (w < 0)
        return -1;
    if (w > 0) {
        *since =
            strchr(when, 'T') != NULL || strchr(when, 't') != NULL ? rte_clock_parse(when) : -1;
        if (*since < 0) {
            sim_invalid_add(v, "/startDateTime",
                            "startDateTime: must be an ISO 8601 date-time such as "
                            "2026-01-05T06:00:00Z");
            return -1;
        }
    }
    if (*size > GZIP_OVER && !accepts_gzip(req)) {
        sim_invalid_add(v, "/pageSize",
                        "pageSize: pages of more than %d results are gzip-compressed; send "
                        "Accept-Encoding: gzip",
                        GZIP_OVER);
        return -1;
    }
    return 0;
}

/* one poll item: the answer plus the batch fields; B.mu held */
static cJSON *poll_item(const struct batch *b, int i)
{
    cJSON *o = item_answer(b, i, NULL);
    cJSON_AddStringToObject(o, "batchId", b->id);
    cJSON_AddStringToObject(o, "batchName", b->name);
    cJSON_AddStringToObject(o, "submitterTransactionIdentifier",
                            sfield(b->items[i].req, "submitterTransactionIdentifier"));
    return o;
}

/* sim_h_poll - GET .../eligibility-manager/polling/batch-eligibility; a loop thread */
void sim_h_poll(rte_http_req *req, void *arg)
{
    if (!sim_serves(req, arg, SIM_API_MANAGER) || !sim_authorized(req, SIM_API_MANAGER))
        return;
    char id[2048];
    long size;
    poll_key after;
    int64_t since;
    sim_invalid v = {0};
    if (poll_query(req, id, sizeof id, &size, &after, &since, &v) != 0) {
        sim_respond_invalid(req, &v);
        return;
    }
    int64_t now = rte_clock_now_ms();
    pthread_mutex_lock(&B.mu);
    struct batch *only = id[0] != '\0' ? find(id, strlen(id)) : NULL;
    if (id[0] != '\0' && only == NULL) {
        pthread_mutex_unlock(&B.mu);
        sim_stedi_error(req, 404, "NOT_FOUND", "No batch with this batchId");
        return;
    }
    /* each batch's next position; the page merges them in completion order */
    int nb = 0;
    for (struct batch *b = B.head; b != NULL; b = b->next)
        nb++;
    struct cursor {
        struct batch *b;
        int k;
    } *cur = calloc((size_t)nb + 1, sizeof *cur);
    if (cur == NULL)
        rte_panic("out of memory");
    int nc = 0;
    for (struct batch *b = B.head; b != NULL; b = b->next) {
        if (only != NULL && b != only)
            continue;
        advance(b, now);
        cur[nc].b = b;
        cur[nc++].k = first_after(b, &after, since);
    }
    cJSON *d = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(d, "items");
    poll_key last = after;
    int more = 0;
    for (long taken = 0;; taken++) {
        int best = -1;
        poll_key bk = {0};
        for (int c = 0; c < nc; c++) {
            if (cur[c].k >= cur[c].b->done)
                continue;
            poll_key k = key_of(cur[c].b, cur[c].k);
            if (best < 0 || key_after(&bk, &k)) {
                best = c;
                bk = k;
            }
        }
        if (best < 0)
            break;
        if (taken == size) {
            more = 1;
            break;
        }
        cJSON_AddItemToArray(arr, poll_item(cur[best].b, bk.index));
        cur[best].k++;
        last = bk;
    }
    pthread_mutex_unlock(&B.mu);
    free(cur);
    if (more) {
        char text[80], tok[168];
        snprintf(text, sizeof text, "p:%lld:%llu:%d", (long long)last.due,
                 (unsigned long long)last.seq, last.index);
        make_token(text, tok, sizeof tok);
        cJSON_AddStringToObject(d, "nextPageToken", tok);
    }
    send_page(req, d, size > GZIP_OVER);
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

static cJSON *eligibility_of(const sim_facts *f)
{
    cJSON *e = cJSON_CreateObject();
    char date[16];
    cJSON_AddBoolToObject(e, "eligible", f->result == SIM_ACTIVE);
    cJSON_AddNumberToObject(e, "copay_amount", f->copay > 0 ? f->copay : 0);
    cJSON_AddStringToObject(e, "network_status",
                            f->network == 'Y' ? "in_network" : "out_of_network");
    iso_date(f->begin, date, sizeof date);
    cJSON_AddStringToObject(e, "coverage_start", date);
    iso_date(f->end, date, sizeof date);
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
    for (int k = 0; k < b->n; k++) {
        int i = b->order[k];
        const struct item *it = &b->items[i];
        sim_facts f;
        cJSON *ans = item_answer(b, i, &f);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "check_id", sfield(it->req, "submitterTransactionIdentifier"));
        cJSON_AddStringToObject(o, "member_id", member_of(it->req));
        cJSON_AddStringToObject(o, "trading_partner_id",
                                sfield(it->req, "tradingPartnerServiceId"));
        const cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ans, "errors"), 0);
        cJSON_AddStringToObject(o, "status", e0 != NULL ? "error" : "completed");
        if (e0 != NULL) {
            cJSON *e = cJSON_AddObjectToObject(o, "error");
            cJSON_AddStringToObject(e, "code", sfield(e0, "code"));
            cJSON_AddStringToObject(e, "description", sfield(e0, "description"));
        } else {
            cJSON_AddItemToObject(o, "eligibility", eligibility_of(&f));
        }
        cJSON_Delete(ans);
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
