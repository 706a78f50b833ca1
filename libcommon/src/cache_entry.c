/*
 * cache_entry.c - the one owner of the shared eligibility cache format.
 *
 * Contract in rte/cache_entry.h. Mapping a Stedi 271 response into our
 * entry follows X12 eligibility codes as Stedi returns them in JSON:
 *
 *   eligible        some planStatus[] has statusCode "1" (active coverage),
 *                   or, without planStatus, a benefitsInformation[] with
 *                   code "1"; code "6" / status "6" means inactive
 *   copay_amount    the first benefitsInformation[] with code "B"
 *                   (co-payment) and a benefitAmount, preferring one marked
 *                   in-network (inPlanNetworkIndicatorCode "Y")
 *   network_status  "Y" -> in_network, "N" -> out_of_network, else unknown,
 *                   taken from that co-payment (or any benefit that says)
 *   coverage dates  planDateInformation.planBegin / planEnd, or a "plan"
 *                   range "YYYYMMDD-YYYYMMDD", rewritten as YYYY-MM-DD
 *   errors[]        a payer error (AAA): an error entry, fresh for 5 min
 *
 * The compare-and-set script decodes the stored value with Redis's cjson and
 * compares cached_at as strings: RFC 3339 UTC with fixed millisecond width
 * sorts lexicographically in time order.
 */
#include "rte/cache_entry.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"
#include "rte/log.h"

#define HOUR_MS (3600LL * 1000)

/* rte_cache_freshness_default - the design's defaults */
rte_cache_freshness rte_cache_freshness_default(void)
{
    rte_cache_freshness f = {22 * HOUR_MS, 5 * 60 * 1000LL, 72 * HOUR_MS};
    return f;
}

#define DEV_MEMBER_KEY_SECRET "dev-member-key-secret"

/* rte_cache_settings_from_config - start-up thread; reads cfg only */
int rte_cache_settings_from_config(const rte_config *cfg, rte_cache_settings *out, char *err,
                                   size_t errlen)
{
    const char *secret = rte_config_str(cfg, "cache.member_key_secret", DEV_MEMBER_KEY_SECRET);
    rte_cache_freshness *f = &out->freshness;

    memset(out, 0, sizeof *out);
    if (secret[0] == '\0' || strlen(secret) >= sizeof out->member_key_secret) {
        snprintf(err, errlen,
                 "cache.member_key_secret (RTE_CACHE_MEMBER_KEY_SECRET): must be 1..%zu "
                 "characters",
                 sizeof out->member_key_secret - 1);
        return -1;
    }
    snprintf(out->member_key_secret, sizeof out->member_key_secret, "%s", secret);
    if (strcmp(secret, DEV_MEMBER_KEY_SECRET) == 0)
        rte_log_warn(
            "cache.member_key_secret is the development default; set "
            "RTE_CACHE_MEMBER_KEY_SECRET to the same secret on every service in production");
    *f = rte_cache_freshness_default();
    if (rte_config_duration_try(cfg, "cache.fresh_success", f->success_ms, 1000, 30 * 24 * HOUR_MS,
                                &f->success_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "cache.fresh_error", f->error_ms, 1000, 24 * HOUR_MS,
                                &f->error_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "cache.ttl", f->physical_ms, 1000, 90 * 24 * HOUR_MS,
                                &f->physical_ms, err, errlen) != 0)
        return -1;
    if (f->physical_ms <= f->success_ms || f->physical_ms <= f->error_ms) {
        snprintf(err, errlen,
                 "cache.ttl (RTE_CACHE_TTL): %lld ms must exceed cache.fresh_success "
                 "and cache.fresh_error so stale entries can still be served",
                 (long long)f->physical_ms);
        return -1;
    }
    return 0;
}

/* rte_cache_key - rte:eligibility:{member_key}:{trading_partner_id} */
int rte_cache_key(const char *secret, const char *member_id, const char *trading_partner_id,
                  char *out, size_t len)
{
    char mk[RTE_MEMBER_KEY_LEN + 1];
    rte_crypto_member_key(secret, member_id, mk);
    return rte_cache_key_for(mk, trading_partner_id, out, len);
}

/* rte_cache_key_for - pure; any thread */
int rte_cache_key_for(const char *member_key, const char *trading_partner_id, char *out, size_t len)
{
    int n = snprintf(out, len, "rte:eligibility:%s:%s", member_key, trading_partner_id);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static void copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

static const char *str_field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "20250101" -> "2025-01-01"; anything else -> "" */
static void x12_date(const char *s, char out[11])
{
    out[0] = '\0';
    if (s == NULL || strlen(s) < 8)
        return;
    for (int i = 0; i < 8; i++)
        if (s[i] < '0' || s[i] > '9')
            return;
    snprintf(out, 11, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
}

static void map_dates(const cJSON *resp, rte_cache_entry *e)
{
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(resp, "planDateInformation");
    if (!cJSON_IsObject(pd))
        return;
    x12_date(str_field(pd, "planBegin"), e->coverage_start);
    x12_date(str_field(pd, "planEnd"), e->coverage_end);
    const char *plan = str_field(pd, "plan");
    if (e->coverage_start[0] == '\0' && plan != NULL && strlen(plan) == 17 && plan[8] == '-') {
        x12_date(plan, e->coverage_start);
        x12_date(plan + 9, e->coverage_end);
    }
}

static int map_status(const cJSON *resp)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(resp, "planStatus");
    const cJSON *it;
    int seen = 0;
    cJSON_ArrayForEach(it, ps)
    {
        const char *code = str_field(it, "statusCode");
        seen = 1;
        if (code != NULL && strcmp(code, "1") == 0)
            return 1;
    }
    if (seen)
        return 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(resp, "benefitsInformation"))
    {
        const char *code = str_field(it, "code");
        if (code != NULL && strcmp(code, "1") == 0)
            return 1;
    }
    return 0;
}

static void map_network(const char *ind, rte_cache_entry *e)
{
    if (ind != NULL && strcmp(ind, "Y") == 0)
        copy_str(e->network_status, sizeof e->network_status, "in_network");
    else if (ind != NULL && strcmp(ind, "N") == 0)
        copy_str(e->network_status, sizeof e->network_status, "out_of_network");
}

static void map_copay(const cJSON *resp, rte_cache_entry *e)
{
    const cJSON *best = NULL, *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(resp, "benefitsInformation"))
    {
        const char *code = str_field(it, "code");
        if (code == NULL || strcmp(code, "B") != 0 || str_field(it, "benefitAmount") == NULL)
            continue;
        const char *ind = str_field(it, "inPlanNetworkIndicatorCode");
        if (best == NULL || (ind != NULL && strcmp(ind, "Y") == 0 &&
                             !(str_field(best, "inPlanNetworkIndicatorCode") &&
                               strcmp(str_field(best, "inPlanNetworkIndicatorCode"), "Y") == 0)))
            best = it;
    }
    if (best != NULL) {
        char *end;
        double v = strtod(str_field(best, "benefitAmount"), &end);
        if (*end == '\0' && v >= 0 && isfinite(v)) { /* "inf", "1e999": no amount */
            e->copay_amount = v;
            e->has_copay = 1;
        }
        map_network(str_field(best, "inPlanNetworkIndicatorCode"), e);
        return;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(resp, "benefitsInformation"))
    {
        if (str_field(it, "inPlanNetworkIndicatorCode") != NULL) {
            map_network(str_field(it, "inPlanNetworkIndicatorCode"), e);
            return;
        }
    }
}

/* rte_cache_entry_from_stedi - map a Stedi eligibility response into an entry */
int rte_cache_entry_from_stedi(const cJSON *resp, const char *source, int64_t now_ms,
                               const rte_cache_freshness *f, rte_cache_entry *out, char *err,
                               size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(resp)) {
        snprintf(err, errlen, "Stedi response is not a JSON object");
        return -1;
    }
    copy_str(out->source, sizeof out->source, source);
    copy_str(out->network_status, sizeof out->network_status, "unknown");
    out->cached_at_ms = now_ms;
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(resp, "errors");
    if (cJSON_IsArray(errors) && cJSON_GetArraySize(errors) > 0) {
        const cJSON *e0 = cJSON_GetArrayItem(errors, 0);
        out->is_error = 1;
        copy_str(out->error_code, sizeof out->error_code, str_field(e0, "code"));
        copy_str(out->error_message, sizeof out->error_message, str_field(e0, "description"));
        out->fresh_until_ms = now_ms + f->error_ms;
        return 0;
    }
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "planStatus")) &&
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "benefitsInformation"))) {
        snprintf(err, errlen,
                 "Stedi response has neither planStatus nor benefitsInformation "
                 "nor errors");
        return -1;
    }
    out->eligible = map_status(resp);
    map_copay(resp, out);
    map_dates(resp, out);
    out->fresh_until_ms = now_ms + f->success_ms;
    return 0;
}

/* the JSON object of e (with the success an error entry carries) */
static cJSON *encode_obj(const rte_cache_entry *e)
{
    rte_cache_entry ok;
    char cached[40], fresh[40];
    rte_clock_format(e->cached_at_ms, cached, sizeof cached);
    rte_clock_format(e->fresh_until_ms, fresh, sizeof fresh);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "eligible", e->eligible);
    if (e->has_copay)
        cJSON_AddNumberToObject(o, "copay_amount", e->copay_amount);
    else
        cJSON_AddNullToObject(o, "copay_amount");
    cJSON_AddStringToObject(o, "network_status", e->network_status);
    if (e->coverage_start[0])
        cJSON_AddStringToObject(o, "coverage_start", e->coverage_start);
    else
        cJSON_AddNullToObject(o, "coverage_start");
    if (e->coverage_end[0])
        cJSON_AddStringToObject(o, "coverage_end", e->coverage_end);
    else
        cJSON_AddNullToObject(o, "coverage_end");
    cJSON_AddStringToObject(o, "cached_at", cached);
    cJSON_AddStringToObject(o, "fresh_until", fresh);
    cJSON_AddStringToObject(o, "source", e->source);
    if (e->is_error) {
        cJSON *er = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(er, "code", e->error_code);
        cJSON_AddStringToObject(er, "message", e->error_message);
    }
    if (rte_cache_entry_last_success(e, &ok))
        cJSON_AddItemToObject(o, "last_success", encode_obj(&ok));
    return o;
}

/* rte_cache_entry_encode - the JSON value; caller frees */
char *rte_cache_entry_encode(const rte_cache_entry *e)
{
    cJSON *o = encode_obj(e);
    char *text = cJSON_PrintUnformatted(o);

    cJSON_Delete(o);
    return text;
}

static int time_field(const cJSON *o, const char *name, int64_t *out, char *err, size_t errlen)
{
    const char *s = NULL;
    if (rte_json_string(o, name, 64, &s, err, errlen) != 0)
        return -1;
    *out = rte_clock_parse(s);
    if (*out < 0) {
        snprintf(err, errlen, "field '%s': not an RFC 3339 time", name);
        return -1;
    }
    return 0;
}

static int date_field(const cJSON *o, const char *name, char out[11], char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    out[0] = '\0';
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 10) {
        snprintf(err, errlen, "field '%s': expected YYYY-MM-DD or null", name);
        return -1;
    }
    memcpy(out, v->valuestring, 11);
    return 0;
}

/* the fields of one stored entry object o into out (zeroed first) */
static int decode_obj(const cJSON *o, rte_cache_entry *out, char *err, size_t errlen)
{
    const char *s;
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }
    if (rte_json_bool(o, "eligible", &out->eligible, err, errlen) != 0)
        return -1;
    const cJSON *cp = cJSON_GetObjectItemCaseSensitive(o, "copay_amount");
    if (cJSON_IsNumber(cp)) {
        out->copay_amount = cp->valuedouble;
        out->has_copay = 1;
    } else if (cp != NULL && !cJSON_IsNull(cp)) {
        snprintf(err, errlen, "field 'copay_amount': expected number or null");
        return -1;
    }
    if (rte_json_string(o, "network_status", sizeof out->network_status - 1, &s, err, errlen) != 0)
        return -1;
    copy_str(out->network_status, sizeof out->network_status, s);
    if (date_field(o, "coverage_start", out->coverage_start, err, errlen) != 0 ||
        date_field(o, "coverage_end", out->coverage_end, err, errlen) != 0 ||
        time_field(o, "cached_at", &out->cached_at_ms, err, errlen) != 0 ||
        time_field(o, "fresh_until", &out->fresh_until_ms, err, errlen) != 0)
        return -1;
    if (rte_json_string(o, "source", sizeof out->source - 1, &s, err, errlen) != 0)
        return -1;
    copy_str(out->source, sizeof out->source, s);
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsObject(er)) {
        out->is_error = 1;
        copy_str(out->error_code, sizeof out->error_code, str_field(er, "code"));
        copy_str(out->error_message, sizeof out->error_message, str_field(er, "message"));
    }
    return 0;
}

/* rte_cache_entry_decode - parse a stored value */
int rte_cache_entry_decode(const char *json, size_t len, rte_cache_entry *out, char *err,
                           size_t errlen)
{
    rte_cache_entry ok;
    char why[200];
    int rc = -1;
    cJSON *o = rte_json_parse(json, len, err, errlen);

    memset(out, 0, sizeof *out);
    if (o == NULL)
        return -1;
    if (decode_obj(o, out, err, errlen) != 0)
        goto out;
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(o, "last_success");
    if (out->is_error && last != NULL) {
        if (decode_obj(last, &ok, why, sizeof why) != 0 || ok.is_error) {
            snprintf(err, errlen, "field 'last_success': %s",
                     ok.is_error ? "an error entry, expected a success" : why);
            goto out;
        }
        out->has_last_success = 1;
        out->last_success = (rte_cache_success){
            .eligible = ok.eligible,
            .copay_amount = ok.copay_amount,
            .has_copay = ok.has_copay,
            .cached_at_ms = ok.cached_at_ms,
            .fresh_until_ms = ok.fresh_until_ms,
        };
        memcpy(out->last_success.network_status, ok.network_status, sizeof ok.network_status);
        memcpy(out->last_success.coverage_start, ok.coverage_start, sizeof ok.coverage_start);
        memcpy(out->last_success.coverage_end, ok.coverage_end, sizeof ok.coverage_end);
        memcpy(out->last_success.source, ok.source, sizeof ok.source);
    }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

/* rte_cache_entry_last_success - pure */
int rte_cache_entry_last_success(const rte_cache_entry *e, rte_cache_entry *out)
{
    const rte_cache_success *k = &e->last_success;

    if (!e->is_error || !e->has_last_success)
        return 0;
    memset(out, 0, sizeof *out);
    out->eligible = k->eligible;
    out->copay_amount = k->copay_amount;
    out->has_copay = k->has_copay;
    memcpy(out->network_status, k->network_status, sizeof out->network_status);
    memcpy(out->coverage_start, k->coverage_start, sizeof out->coverage_start);
    memcpy(out->coverage_end, k->coverage_end, sizeof out->coverage_end);
    out->cached_at_ms = k->cached_at_ms;
    out->fresh_until_ms = k->fresh_until_ms;
    memcpy(out->source, k->source, sizeof out->source);
    return 1;
}

/* rte_cache_entry_is_fresh - before fresh_until */
int rte_cache_entry_is_fresh(const rte_cache_entry *e, int64_t now_ms)
{
    return now_ms < e->fresh_until_ms;
}

/* rte_cache_entry_age_s - seconds since cached_at */
int64_t rte_cache_entry_age_s(const rte_cache_entry *e, int64_t now_ms)
{
    return now_ms > e->cached_at_ms ? (now_ms - e->cached_at_ms) / 1000 : 0;
}

/*
 * KEYS[1] key; ARGV[1] value, ARGV[2] cached_at, ARGV[3] ttl ms, ARGV[4]
 * the oldest cached_at a carried success may have, ARGV[5] "1" when the
 * value is an error entry. Keeps a newer stored entry; an error replacing a
 * success (or an error that carries one) keeps that success as
 * last_success, spliced into the value's object. Announces each write on
 * RTE_CACHE_WRITTEN_CHANNEL, in the same atomic step.
 */
static const char put_script[] =
    "local old = redis.call('GET', KEYS[1])\n"
    "local value = ARGV[1]\n"
    "if old then\n"
    "  local ok, doc = pcall(cjson.decode, old)\n"
    "  if ok and type(doc) == 'table' then\n"
    "    if type(doc.cached_at) == 'string' and doc.cached_at > ARGV[2] then return 0 end\n"
    "    if ARGV[5] == '1' and string.sub(value, -1) == '}' then\n"
    "      local keep, text = nil, nil\n"
    "      if doc.error == nil then keep, text = doc, old\n"
    "      elseif type(doc.last_success) == 'table' then keep = doc.last_success end\n"
    "      if keep and type(keep.cached_at) == 'string' and keep.cached_at >= ARGV[4] then\n"
    "        text = text or cjson.encode(keep)\n"
    "        value = string.sub(value, 1, -2) .. ',\"last_success\":' .. text .. '}'\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[1], value, 'PX', ARGV[3])\n"
    "redis.call('PUBLISH', '" RTE_CACHE_WRITTEN_CHANNEL "', KEYS[1])\n"
    "return 1\n";

/* rte_cache_put - one write of rte_cache_put_many; caller's thread owns r */
int rte_cache_put(rte_redis *r, const char *key, const rte_cache_entry *e,
                  const rte_cache_freshness *f, char *err, size_t errlen)
{
    rte_cache_write w = {.key = key, .entry = e};

    if (rte_cache_put_many(r, &w, 1, f, err, errlen) != 0)
        return -1;
    return w.rc;
}

#define PUT_MANY_MAX 1000

static char put_sha[41];
static pthread_once_t put_sha_once = PTHREAD_ONCE_INIT;

static void put_sha_init(void)
{
    rte_sha1_hex(put_script, strlen(put_script), put_sha);
}

static int is_noscript(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* 1 when the script should carry the replaced success into e (an error not carrying one yet) */
static int carry(const rte_cache_entry *e)
{
    return e->is_error && !e->has_last_success;
}

/* One pipelined round of EVALSHA; 1 if Redis did not know the script yet. */
static int put_round(rte_redis *r, rte_cache_write *w, int n, char **values, char (*cached)[40],
                     char (*keep_from)[40], const char *ttl, char *err, size_t errlen)
{
    const char *(*argv)[9] = calloc((size_t)n, sizeof *argv);
    rte_redis_argv *cmds = calloc((size_t)n, sizeof *cmds);
    redisReply **reps = calloc((size_t)n, sizeof *reps);
    int rc = -1, noscript = 0;

    if (argv == NULL || cmds == NULL || reps == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *a[9] = {"EVALSHA", put_sha,      "1",
                            w[i].key,  values[i],    cached[i],
                            ttl,       keep_from[i], carry(w[i].entry) ? "1" : "0"};
        memcpy(argv[i], a, sizeof a);
        cmds[i] = (rte_redis_argv){9, argv[i], NULL};
    }
    if (rte_redis_pipeline(r, n, cmds, reps, err, errlen) != 0)
        goto out;
    rc = 0;
    for (int i = 0; i < n; i++) {
        if (is_noscript(reps[i])) {
            noscript = 1;
        } else if (reps[i] != NULL && reps[i]->type == REDIS_REPLY_INTEGER) {
            w[i].rc = (int)reps[i]->integer;
        } else {
            snprintf(err, errlen, "cache put: %s",
                     reps[i] && reps[i]->type == REDIS_REPLY_ERROR ? reps[i]->str
                                                                   : "unexpected reply");
            rc = -1;
        }
    }
    if (rc == 0 && noscript)
        rc = 1;
out:
    for (int i = 0; reps != NULL && i < n; i++)
        if (reps[i] != NULL)
            freeReplyObject(reps[i]);
    free(reps);
    free(cmds);
    free(argv);
    return rc;
}

/* rte_cache_put_many - compare-and-set each write, one round trip; caller's thread owns r */
int rte_cache_put_many(rte_redis *r, rte_cache_write *w, int n, const rte_cache_freshness *f,
                       char *err, size_t errlen)
{
    char ttl[24], (*cached)[40] = NULL, (*keep_from)[40] = NULL;
    char **values = NULL;
    int rc = -1;

    if (n < 0 || n > PUT_MANY_MAX) {
        snprintf(err, errlen, "cache put: %d writes at once (1..%d)", n, PUT_MANY_MAX);
        return -1;
    }
    if (n == 0)
        return 0;
    pthread_once(&put_sha_once, put_sha_init);
    values = calloc((size_t)n, sizeof *values);
    cached = calloc((size_t)n, sizeof *cached);
    keep_from = calloc((size_t)n, sizeof *keep_from);
    if (values == NULL || cached == NULL || keep_from == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        values[i] = rte_cache_entry_encode(w[i].entry);
        if (values[i] == NULL) {
            snprintf(err, errlen, "out of memory encoding a cache entry");
            goto out;
        }
        rte_clock_format(w[i].entry->cached_at_ms, cached[i], sizeof cached[i]);
        rte_clock_format(w[i].entry->cached_at_ms - f->physical_ms, keep_from[i],
                         sizeof keep_from[i]);
    }
    snprintf(ttl, sizeof ttl, "%lld", (long long)f->physical_ms);
    rc = put_round(r, w, n, values, cached, keep_from, ttl, err, errlen);
    if (rc == 1) { /* a fresh or flushed Redis: load the script, then once more */
        redisReply *rep = rte_redis_cmd(r, err, errlen, "SCRIPT LOAD %s", put_script);
        if (rep == NULL) {
            rc = -1;
            goto out;
        }
        freeReplyObject(rep);
        rc = put_round(r, w, n, values, cached, keep_from, ttl, err, errlen);
        if (rc == 1) {
            snprintf(err, errlen, "cache put: Redis keeps answering NOSCRIPT");
            rc = -1;
        }
    }
out:
    for (int i = 0; values != NULL && i < n; i++)
        cJSON_free(values[i]);
    free(values);
    free(cached);
    free(keep_from);
    return rc;
}

/* rte_cache_get - read and decode; caller's thread owns r */
int rte_cache_get(rte_redis *r, const char *key, rte_cache_entry *out, char *err, size_t errlen)
{
    const char *argv[] = {"GET", key};
    redisReply *rep = rte_redis_cmdargv(r, 2, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    int rc = 0;
    if (rep->type == REDIS_REPLY_STRING) {
        char why[256];
        rc = 1;
        if (rte_cache_entry_decode(rep->str, rep->len, out, why, sizeof why) != 0) {
            snprintf(err, errlen, "corrupt cache value at %s: %s", key, why);
            rc = -1;
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* a YYYY-MM-DD date with digits where they belong */
static int iso_date_ok(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    return 1;
}

static int callback_date(const cJSON *o, const char *name, char out[11], char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    out[0] = '\0';
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || !iso_date_ok(v->valuestring)) {
        snprintf(err, errlen, "eligibility.%s: expected YYYY-MM-DD or null", name);
        return -1;
    }
    memcpy(out, v->valuestring, 11);
    return 0;
}

/* rte_cache_entry_from_callback - map a callback result's eligibility{}; pure */
int rte_cache_entry_from_callback(const cJSON *el, int64_t now_ms, const rte_cache_freshness *f,
                                  rte_cache_entry *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(el)) {
        snprintf(err, errlen, "eligibility: expected an object");
        return -1;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(el, "eligible");
    if (v == NULL) {
        snprintf(err, errlen, "eligibility.eligible: missing");
        return -1;
    }
    if (!cJSON_IsBool(v)) {
        snprintf(err, errlen, "eligibility.eligible: expected true or false");
        return -1;
    }
    out->eligible = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(el, "copay_amount");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9) {
        out->copay_amount = v->valuedouble;
        out->has_copay = 1;
    } else if (v != NULL && !cJSON_IsNull(v)) {
        snprintf(err, errlen, "eligibility.copay_amount: expected a number >= 0 or null");
        return -1;
    }
    copy_str(out->network_status, sizeof out->network_status, "unknown");
    v = cJSON_GetObjectItemCaseSensitive(el, "network_status");
    if (cJSON_IsString(v) &&
        (strcmp(v->valuestring, "in_network") == 0 ||
         strcmp(v->valuestring, "out_of_network") == 0 || strcmp(v->valuestring, "unknown") == 0)) {
        copy_str(out->network_status, sizeof out->network_status, v->valuestring);
    } else if (v != NULL && !cJSON_IsNull(v)) {
        snprintf(err, errlen,
                 "eligibility.network_status: expected in_network, out_of_network or unknown");
        return -1;
    }
    if (callback_date(el, "coverage_start", out->coverage_start, err, errlen) != 0 ||
        callback_date(el, "coverage_end", out->coverage_end, err, errlen) != 0)
        return -1;
    copy_str(out->source, sizeof out->source, "stedi_batch");
    out->cached_at_ms = now_ms;
    out->fresh_until_ms = now_ms + f->success_ms;
    return 0;
}
