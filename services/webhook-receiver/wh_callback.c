/*
 * wh_callback.c - validate batch callbacks and cut them into envelopes
 * (wh_callback.h).
 *
 * The eligibility{} object of each completed result is checked by the cache
 * entry module itself (rte_cache_entry_from_callback), so what passes here
 * is exactly what the consumer can map; only the field path is prefixed
 * ("results[3]." + "eligibility.copay_amount: ...").
 *
 * Input policy (docs/input.md): the body is parsed strictly (rte_json_parse:
 * no duplicate keys, \u0000, invalid UTF-8 or lone surrogates), the ids of
 * each result are rte_input_id ids, completed_at is RFC 3339 and the
 * eligibility dates are calendar dates. A body that breaks any of it is
 * refused whole with a 400 naming the field, so nothing of it reaches Kafka
 * or the cache.
 */
#include "wh_callback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/batch_registry.h"
#include "rte/cache_entry.h"
#include "rte/crypto.h"
#include "rte/input.h"
#include "rte/json.h"

/* wh_content_id - keyed hash (fixed key) of the body, first 16 bytes in hex */
void wh_content_id(const char *body, size_t len, char out[WH_CONTENT_ID_LEN + 1])
{
    static const char key[] = "rte-webhook-receiver-content-id";
    uint8_t mac[RTE_SHA256_LEN];
    rte_hmac_sha256(key, sizeof key - 1, body, len, mac);
    rte_hex_encode(mac, WH_CONTENT_ID_LEN / 2, out);
}

/* a required string of 1..maxlen bytes: "<where>.<name>: missing" etc. */
static int req_str(const cJSON *o, const char *where, const char *name, size_t maxlen,
                   const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    const char *dot = where[0] ? "." : "";
    if (v == NULL || cJSON_IsNull(v)) {
        snprintf(err, errlen, "%s%s%s: missing", where, dot, name);
        return -1;
    }
    if (!cJSON_IsString(v)) {
        snprintf(err, errlen, "%s%s%s: expected a string", where, dot, name);
        return -1;
    }
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > maxlen) {
        snprintf(err, errlen, "%s%s%s: expected 1..%zu characters", where, dot, name, maxlen);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

/*
 * a required id (rte_input_id: no control characters, well-formed UTF-8,
 * 1..maxlen bytes): "results[3].member_id: control character U+0001 ..."
 */
static int req_id(const cJSON *o, const char *where, const char *name, size_t maxlen,
                  const char **out, char *err, size_t errlen)
{
    char why[160];
    if (req_str(o, where, name, maxlen, out, err, errlen) != 0)
        return -1;
    if (rte_input_id(*out, strlen(*out), maxlen, NULL, why, sizeof why) == 0)
        return 0; /* the field name is formatted only for an error: 10,000 results, 30,000 ids */
    snprintf(err, errlen, "%s%s%s: %s", where, where[0] ? "." : "", name, why);
    return -1;
}

static int check_result(const cJSON *r, int i, char *err, size_t errlen)
{
    char where[32], why[200];
    const char *s;
    snprintf(where, sizeof where, "results[%d]", i);
    if (!cJSON_IsObject(r)) {
        snprintf(err, errlen, "%s: expected an object", where);
        return -1;
    }
    if (req_id(r, where, "check_id", RTE_INPUT_ID_MAX, &s, err, errlen) != 0 ||
        req_id(r, where, "member_id", RTE_INPUT_ID_MAX, &s, err, errlen) != 0 ||
        req_id(r, where, "trading_partner_id", RTE_INPUT_CODE_MAX, &s, err, errlen) != 0 ||
        req_str(r, where, "status", 32, &s, err, errlen) != 0)
        return -1;
    if (strcmp(s, "completed") == 0) {
        const cJSON *el = cJSON_GetObjectItemCaseSensitive(r, "eligibility");
        rte_cache_entry e;
        rte_cache_freshness f = rte_cache_freshness_default();
        if (el == NULL) {
            snprintf(err, errlen, "%s.eligibility: missing (status is completed)", where);
            return -1;
        }
        if (rte_cache_entry_from_callback(el, 0, &f, &e, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s.%s", where, why);
            return -1;
        }
        return 0;
    }
    if (strcmp(s, "error") == 0) {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(r, "error");
        if (er != NULL && !cJSON_IsObject(er)) {
            snprintf(err, errlen, "%s.error: expected an object", where);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "%s.status: expected completed or error", where);
    return -1;
}

/* wh_callback_parse - pure */
int wh_callback_parse(const char *body, size_t len, int max_results, wh_callback *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* the size is wh.max_body's to bound (the HTTP route did, up to 256 MiB), not the default's */
    rte_input_json_limits lim = {.max_bytes = len > 0 ? len : 1};
    cJSON *doc = rte_json_parse_limited(body, len, &lim, err, errlen);
    if (doc == NULL)
        return -1;
    out->doc = doc;
    if (!cJSON_IsObject(doc)) {
        snprintf(err, errlen, "body: expected a JSON object");
        goto fail;
    }
    if (req_str(doc, "", "batch_id", RTE_BATCH_ID_MAX - 1, &out->batch_id, err, errlen) != 0 ||
        req_str(doc, "", "status", 32, &out->status, err, errlen) != 0)
        goto fail;
    if (!rte_batch_registry_valid_id(out->batch_id)) {
        snprintf(err, errlen, "batch_id: expected characters of [A-Za-z0-9._:-]");
        goto fail;
    }
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(doc, "completed_at");
    if (ca != NULL && !cJSON_IsNull(ca)) {
        if (!cJSON_IsString(ca)) {
            snprintf(err, errlen, "completed_at: expected an RFC 3339 time");
            goto fail;
        }
        if (rte_input_timestamp(ca->valuestring, strlen(ca->valuestring), NULL, "completed_at", err,
                                errlen) != 0)
            goto fail;
        out->completed_at = ca->valuestring;
    }
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "results");
    if (res == NULL) {
        snprintf(err, errlen, "results: missing");
        goto fail;
    }
    if (!cJSON_IsArray(res)) {
        snprintf(err, errlen, "results: expected an array");
        goto fail;
    }
    int n = cJSON_GetArraySize(res);
    if (n > max_results) {
        snprintf(err, errlen, "results: %d results, at most %d are accepted", n, max_results);
        goto fail;
    }
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, res)
    {
        if (check_result(r, i, err, errlen) != 0)
            goto fail;
        i++;
    }
    out->results = res;
    out->nresults = n;
    out->body = body;
    out->body_len = len;
    return 0;
fail:
    wh_callback_free(out);
    return -1;
}

/* wh_callback_free - release */
void wh_callback_free(wh_callback *cb)
{
    cJSON_Delete(cb->doc);
    memset(cb, 0, sizeof *cb);
}

/* wh_envelopes_free - release */
void wh_envelopes_free(wh_envelopes *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->msg[i]);
    free(e->msg);
    free(e->len);
    memset(e, 0, sizeof *e);
}

/* a growable text buffer */
struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* a JSON string literal of s */
static void sb_json_str(struct sb *b, const char *s)
{
    cJSON *v = cJSON_CreateString(s ? s : "");
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    if (t == NULL)
        b->oom = 1;
    else
        sb_str(b, t);
    cJSON_free(t);
    cJSON_Delete(v);
}

/* the envelope head, up to and including "results":[ */
static void head(struct sb *b, const wh_callback *cb, const char *id, int part, int parts,
                 int64_t received_ms)
{
    char num[160];
    sb_str(b, "{\"v\":1,\"kind\":\"callback\",\"id\":");
    sb_json_str(b, id);
    snprintf(num, sizeof num, ",\"part\":%d,\"parts\":%d,\"total\":%d,\"received_at_ms\":%lld",
             part, parts, cb->nresults, (long long)received_ms);
    sb_str(b, num);
    sb_str(b, ",\"batch_id\":");
    sb_json_str(b, cb->batch_id);
    sb_str(b, ",\"status\":");
    sb_json_str(b, cb->status);
    if (cb->completed_at != NULL) {
        sb_str(b, ",\"completed_at\":");
        sb_json_str(b, cb->completed_at);
    }
    sb_str(b, ",\"results\":[");
}

/* --- the raw bytes of each result ------------------------------------------
 * The body has passed cJSON, so it is valid JSON: a scanner that only
 * tracks strings and nesting finds where each element of the top-level
 * "results" array starts and ends. Envelopes then carry each result's bytes
 * exactly as the sender signed them, and nothing is printed again.
 */

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"': past the closing quote, or NULL */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* past one value, or NULL */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
               *p != '\n' && *p != '\r')
            p++;
        return p;
    }
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            p = skip_string(p, end);
            if (p == NULL)
                return NULL;
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return NULL;
}

/* offsets of the n elements of the first top-level "results"; 0, or -1 when not found as
 * expected (the caller then prints the parsed results instead) */
static int raw_results(const char *body, size_t len, int n, size_t *off, size_t *rlen)
{
    const char *p = ws(body, body + len), *end = body + len;
    if (p >= end || *p != '{')
        return -1;
    p++;
    for (;;) {
        p = ws(p, end);
        if (p >= end || *p != '"')
            return -1;
        const char *k = p + 1;
        p = skip_string(p, end);
        if (p == NULL)
            return -1;
        /* an escaped key may be "results" to cJSON but not to memcmp below */
        if (memchr(k, '\\', (size_t)(p - k)) != NULL)
            return -1;
        int is_results = p - k - 1 == 7 && memcmp(k, "results", 7) == 0;
        p = ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        p = ws(p + 1, end);
        if (is_results)
            break;
        p = skip_value(p, end);
        if (p == NULL)
            return -1;
        p = ws(p, end);
        if (p >= end || *p != ',')
            return -1;
        p++;
    }
    if (p >= end || *p != '[')
        return -1;
    p = ws(p + 1, end);
    for (int i = 0; p < end && *p != ']'; i++) {
        const char *e = skip_value(p, end);
        if (e == NULL || i >= n)
            return -1;
        off[i] = (size_t)(p - body);
        rlen[i] = (size_t)(e - p);
        p = ws(e, end);
        if (p < end && *p == ',')
            p = ws(p + 1, end);
        else if (i + 1 != n)
            return -1;
    }
    return 0;
}

/* wh_callback_envelopes - pure */
int wh_callback_envelopes(const wh_callback *cb, const char *content_id, int64_t received_ms,
                          size_t chunk_bytes, wh_envelopes *out)
{
    int rc = -1;
    int n = cb->nresults, printed = 0;
    size_t cnt = (size_t)(n > 0 ? n : 1);
    char **item = calloc(cnt, sizeof *item);
    size_t *off = calloc(cnt, sizeof *off), *len = calloc(cnt, sizeof *len);
    int *start = calloc(cnt + 1, sizeof *start);
    memset(out, 0, sizeof *out);
    if (item == NULL || off == NULL || len == NULL || start == NULL)
        goto out;
    if (cb->body == NULL || raw_results(cb->body, cb->body_len, n, off, len) != 0) {
        /* not found as expected (e.g. an escaped key): print the parsed results */
        const cJSON *r;
        int i = 0;
        printed = 1;
        cJSON_ArrayForEach(r, cb->results)
        {
            item[i] = cJSON_PrintUnformatted(r);
            if (item[i] == NULL)
                goto out;
            len[i] = strlen(item[i]);
            i++;
        }
    }
    /* group the results by size */
    int parts = 0;
    size_t acc = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || (acc > 0 && acc + len[i] + 1 > chunk_bytes)) {
            start[parts++] = i;
            acc = 0;
        }
        acc += len[i] + 1;
    }
    if (parts == 0)
        start[parts++] = 0; /* an empty callback still travels (one part) */
    start[parts] = n;
    out->msg = calloc((size_t)parts, sizeof *out->msg);
    out->len = calloc((size_t)parts, sizeof *out->len);
    if (out->msg == NULL || out->len == NULL)
        goto out;
    for (int p = 0; p < parts; p++) {
        struct sb b = {0};
        head(&b, cb, content_id, p, parts, received_ms);
        for (int k = start[p]; k < start[p + 1]; k++) {
            if (k > start[p])
                sb_add(&b, ",", 1);
            sb_add(&b, printed ? item[k] : cb->body + off[k], len[k]);
        }
        sb_str(&b, "]}");
        if (b.oom) {
            free(b.p);
            goto out;
        }
        out->msg[p] = b.p;
        out->len[p] = b.len;
        out->n++;
    }
    rc = 0;
out:
    for (int k = 0; item != NULL && k < n; k++)
        cJSON_free(item[k]);
    free(item);
    free(off);
    free(len);
    free(start);
    if (rc != 0)
        wh_envelopes_free(out);
    return rc;
}
