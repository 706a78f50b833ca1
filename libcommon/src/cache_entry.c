/*
 * cache_entry.c - the one owner of the shared eligibility cache format.
 *
 * Contract in rte/cache_entry.h. What each field means and which Stedi
 * fields fill it is stedi_reply.c's business (docs/stedi.md); this file
 * only keys, encodes, decodes and writes entries.
 *
 * Amounts in a benefit summary are kept as integers (cents, hundredths of
 * a percent) so that a value read from Stedi's decimal strings encodes back
 * to exactly the same decimal.
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
#include "rte/input.h"
#include "rte/json.h"
#include "rte/log.h"

#define HOUR_MS (3600LL * 1000)

/* rte_cache_freshness_default - the design's defaults */
rte_cache_freshness rte_cache_freshness_default(void)
{
    rte_cache_freshness f = {22 * HOUR_MS, 5 * 60 * 1000LL, HOUR_MS, 72 * HOUR_MS};
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
        rte_config_duration_try(cfg, "cache.fresh_error_final", f->error_final_ms, 1000,
                                30 * 24 * HOUR_MS, &f->error_final_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "cache.ttl", f->physical_ms, 1000, 90 * 24 * HOUR_MS,
                                &f->physical_ms, err, errlen) != 0)
        return -1;
    if (f->physical_ms <= f->success_ms || f->physical_ms <= f->error_ms ||
        f->physical_ms <= f->error_final_ms) {
        snprintf(err, errlen,
                 "cache.ttl (RTE_CACHE_TTL): %lld ms must exceed cache.fresh_success, "
                 "cache.fresh_error and cache.fresh_error_final so stale entries can still be "
                 "served",
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

static const char *const kind_names[RTE_BENEFIT_NKINDS] = {"copay",         "coinsurance_percent",
                                                           "deductible",    "deductible_family",
                                                           "out_of_pocket", "out_of_pocket_family"};
static const char *const net_names[RTE_NET_N] = {"in_network", "out_of_network", "any_network",
                                                 "network_not_stated"};

/* rte_cache_benefit_kind_name - static string */
const char *rte_cache_benefit_kind_name(enum rte_benefit_kind k)
{
    return (unsigned)k < RTE_BENEFIT_NKINDS ? kind_names[k] : "unknown";
}

/* rte_cache_network_name - static string */
const char *rte_cache_network_name(enum rte_benefit_network n)
{
    return (unsigned)n < RTE_NET_N ? net_names[n] : "unknown";
}

static uint32_t bit(enum rte_benefit_kind kind, enum rte_benefit_network net)
{
    return 1u << ((unsigned)kind * RTE_NET_N + (unsigned)net);
}

/* rte_cache_benefit_get - pure */
int rte_cache_benefit_get(const rte_cache_benefit *b, enum rte_benefit_kind kind,
                          enum rte_benefit_network net, rte_cache_range *out)
{
    if ((unsigned)kind >= RTE_BENEFIT_NKINDS || (unsigned)net >= RTE_NET_N ||
        !(b->has & bit(kind, net)))
        return 0;
    *out = b->amount[kind][net];
    return 1;
}

/* rte_cache_benefit_add - pure */
void rte_cache_benefit_add(rte_cache_benefit *b, enum rte_benefit_kind kind,
                           enum rte_benefit_network net, int32_t v)
{
    rte_cache_range *r;

    if ((unsigned)kind >= RTE_BENEFIT_NKINDS || (unsigned)net >= RTE_NET_N)
        return;
    r = &b->amount[kind][net];
    if (!(b->has & bit(kind, net))) {
        r->lo = r->hi = v;
        b->has |= bit(kind, net);
        return;
    }
    if (v < r->lo)
        r->lo = v;
    if (v > r->hi)
        r->hi = v;
}

/* one stored integer amount as the JSON number it stands for (cents or 1/100 %) */
static cJSON *amount_json(int32_t v)
{
    return cJSON_CreateNumber((double)v / 100.0);
}

static void add_date(cJSON *o, const char *name, const char *date)
{
    if (date[0])
        cJSON_AddStringToObject(o, name, date);
    else
        cJSON_AddNullToObject(o, name);
}

/* benefits{} of e: {"30": {status, status_code, copay: {in_network: 20, ...}, ...}} */
static void encode_benefits(cJSON *o, const rte_cache_entry *e)
{
    cJSON *all;

    if (e->nbenefits <= 0)
        return;
    all = cJSON_AddObjectToObject(o, "benefits");
    for (int i = 0; i < e->nbenefits && i < RTE_CACHE_SERVICE_TYPES_MAX; i++) {
        const rte_cache_benefit *b = &e->benefits[i];
        cJSON *one = cJSON_AddObjectToObject(all, b->service_type);
        cJSON_AddStringToObject(one, "status", b->status);
        if (b->status_code[0])
            cJSON_AddStringToObject(one, "status_code", b->status_code);
        for (int k = 0; k < RTE_BENEFIT_NKINDS; k++) {
            cJSON *kind = NULL;
            for (int n = 0; n < RTE_NET_N; n++) {
                rte_cache_range r;
                if (!rte_cache_benefit_get(b, (enum rte_benefit_kind)k, (enum rte_benefit_network)n,
                                           &r))
                    continue;
                if (kind == NULL)
                    kind = cJSON_AddObjectToObject(one, kind_names[k]);
                if (r.lo == r.hi) {
                    cJSON_AddItemToObject(kind, net_names[n], amount_json(r.lo));
                } else {
                    cJSON *mm = cJSON_AddObjectToObject(kind, net_names[n]);
                    cJSON_AddItemToObject(mm, "min", amount_json(r.lo));
                    cJSON_AddItemToObject(mm, "max", amount_json(r.hi));
                }
            }
        }
    }
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
    add_date(o, "coverage_start", e->coverage_start);
    add_date(o, "coverage_end", e->coverage_end);
    add_date(o, "eligibility_start", e->eligibility_start);
    add_date(o, "eligibility_end", e->eligibility_end);
    encode_benefits(o, e);
    cJSON_AddStringToObject(o, "cached_at", cached);
    cJSON_AddStringToObject(o, "fresh_until", fresh);
    cJSON_AddStringToObject(o, "source", e->source);
    if (e->is_error) {
        cJSON *er = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(er, "code", e->error_code);
        cJSON_AddStringToObject(er, "message", e->error_message);
        if (e->error_followup[0])
            cJSON_AddStringToObject(er, "followup_action", e->error_followup);
        cJSON_AddBoolToObject(er, "retry", e->error_retry);
        if (e->error_origin[0])
            cJSON_AddStringToObject(er, "origin", e->error_origin);
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
    char field[64];
    if (rte_json_string(o, name, 64, &s, err, errlen) != 0)
        return -1;
    snprintf(field, sizeof field, "field '%s'", name);
    return rte_input_timestamp(s, strlen(s), out, field, err, errlen);
}

static int date_field(const cJSON *o, const char *name, char out[11], char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    out[0] = '\0';
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || rte_input_date(v->valuestring, strlen(v->valuestring),
                                             RTE_INPUT_DATE_ISO, NULL, NULL, NULL, 0) != 0) {
        snprintf(err, errlen, "field '%s': expected a calendar date YYYY-MM-DD or null", name);
        return -1;
    }
    memcpy(out, v->valuestring, 11);
    return 0;
}

/* a stored amount (a JSON number) back into cents or 1/100 %; -1 when out of range */
static int amount_value(const cJSON *v, int32_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 2e7)
        return -1;
    *out = (int32_t)llround(v->valuedouble * 100.0);
    return 0;
}

/* one amount of benefits.<stc>.<kind>: a number, or {min, max} */
static int decode_amount(const cJSON *v, rte_cache_benefit *b, int kind, int net)
{
    int32_t lo, hi;

    if (cJSON_IsObject(v)) {
        if (amount_value(cJSON_GetObjectItemCaseSensitive(v, "min"), &lo) != 0 ||
            amount_value(cJSON_GetObjectItemCaseSensitive(v, "max"), &hi) != 0 || lo > hi)
            return -1;
    } else if (amount_value(v, &lo) == 0) {
        hi = lo;
    } else {
        return -1;
    }
    rte_cache_benefit_add(b, (enum rte_benefit_kind)kind, (enum rte_benefit_network)net, lo);
    rte_cache_benefit_add(b, (enum rte_benefit_kind)kind, (enum rte_benefit_network)net, hi);
    return 0;
}

/* one service type's summary: benefits.<stc> */
static int decode_benefit(const cJSON *v, rte_cache_benefit *b, char *err, size_t errlen)
{
    const char *status = NULL, *code = NULL;

    if (!cJSON_IsObject(v) || strlen(v->string) >= sizeof b->service_type) {
        snprintf(err, errlen, "field 'benefits.%.8s': expected an object under a service type code",
                 v->string);
        return -1;
    }
    copy_str(b->service_type, sizeof b->service_type, v->string);
    if (rte_json_string(v, "status", sizeof b->status - 1, &status, err, errlen) != 0 ||
        rte_json_string_opt(v, "status_code", sizeof b->status_code - 1, &code, err, errlen) != 0)
        return -1;
    copy_str(b->status, sizeof b->status, status);
    copy_str(b->status_code, sizeof b->status_code, code);
    for (int k = 0; k < RTE_BENEFIT_NKINDS; k++) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(v, kind_names[k]);
        if (kind == NULL)
            continue;
        for (int n = 0; n < RTE_NET_N; n++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(kind, net_names[n]);
            if (a != NULL && decode_amount(a, b, k, n) != 0) {
                snprintf(err, errlen,
                         "field 'benefits.%s.%s.%s': expected an amount >= 0 or {min, max}",
                         b->service_type, kind_names[k], net_names[n]);
                return -1;
            }
        }
    }
    return 0;
}

/* benefits{} (optional: entries written before it existed have none) */
static int decode_benefits(const cJSON *o, rte_cache_entry *out, char *err, size_t errlen)
{
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(o, "benefits"), *v;

    if (all == NULL || cJSON_IsNull(all))
        return 0;
    if (!cJSON_IsObject(all)) {
        snprintf(err, errlen, "field 'benefits': expected an object");
        return -1;
    }
    cJSON_ArrayForEach(v, all)
    {
        if (out->nbenefits >= RTE_CACHE_SERVICE_TYPES_MAX) {
            snprintf(err, errlen, "field 'benefits': more than %d service types",
                     RTE_CACHE_SERVICE_TYPES_MAX);
            return -1;
        }
        if (decode_benefit(v, &out->benefits[out->nbenefits], err, errlen) != 0)
            return -1;
        out->nbenefits++;
    }
    return 0;
}

/* error{} of an error entry; fields added later are optional */
static int decode_error(const cJSON *er, rte_cache_entry *out, char *err, size_t errlen)
{
    const char *followup = NULL, *origin = NULL;

    out->is_error = 1;
    out->error_retry = 1; /* entries from before the field: all were 5-minute errors */
    copy_str(out->error_code, sizeof out->error_code, str_field(er, "code"));
    copy_str(out->error_message, sizeof out->error_message, str_field(er, "message"));
    if (rte_json_string_opt(er, "followup_action", sizeof out->error_followup - 1, &followup, err,
                            errlen) != 0 ||
        rte_json_bool_opt(er, "retry", &out->error_retry, err, errlen) != 0 ||
        rte_json_string_opt(er, "origin", sizeof out->error_origin - 1, &origin, err, errlen) != 0)
        return -1;
    copy_str(out->error_followup, sizeof out->error_followup, followup);
    copy_str(out->error_origin, sizeof out->error_origin, origin);
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
    if (cJSON_IsNumber(cp) && isfinite(cp->valuedouble)) {
        out->copay_amount = cp->valuedouble;
        out->has_copay = 1;
    } else if (cp != NULL && !cJSON_IsNull(cp)) { /* 1e999 parses as inf: not an amount */
        snprintf(err, errlen, "field 'copay_amount': expected a finite number or null");
        return -1;
    }
    if (rte_json_string(o, "network_status", sizeof out->network_status - 1, &s, err, errlen) != 0)
        return -1;
    copy_str(out->network_status, sizeof out->network_status, s);
    if (date_field(o, "coverage_start", out->coverage_start, err, errlen) != 0 ||
        date_field(o, "coverage_end", out->coverage_end, err, errlen) != 0 ||
        date_field(o, "eligibility_start", out->eligibility_start, err, errlen) != 0 ||
        date_field(o, "eligibility_end", out->eligibility_end, err, errlen) != 0 ||
        decode_benefits(o, out, err, errlen) != 0 ||
        time_field(o, "cached_at", &out->cached_at_ms, err, errlen) != 0 ||
        time_field(o, "fresh_until", &out->fresh_until_ms, err, errlen) != 0)
        return -1;
    if (rte_json_string(o, "source", sizeof out->source - 1, &s, err, errlen) != 0)
        return -1;
    copy_str(out->source, sizeof out->source, s);
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsObject(er) && decode_error(er, out, err, errlen) != 0)
        return -1;
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
 * One call writes up to PUT_CHUNK entries. KEYS[i] the key of entry i;
 * ARGV[1] the TTL in ms; then four ARGV per entry, entry i from ARGV[4i-2]:
 * the value, its cached_at, the oldest cached_at a carried success may
 * have, "1" when the value is an error entry that should carry one. Per
 * entry, exactly as a call of its own would: a stored entry with a later
 * cached_at is kept; an error replacing a success (or an error that
 * carries one) keeps that success as last_success, spliced into the
 * value's object; each write is announced on RTE_CACHE_WRITTEN_CHANNEL, in
 * the same atomic step. Returns one integer per entry: 1 written, 0 kept.
 */
static const char put_script[] =
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local b = 4 * i - 2\n"
    "  local value, at = ARGV[b], ARGV[b + 1]\n"
    "  local old = redis.call('GET', KEYS[i])\n"
    "  local write = 1\n"
    "  if old then\n"
    "    local ok, doc = pcall(cjson.decode, old)\n"
    "    if ok and type(doc) == 'table' then\n"
    "      if type(doc.cached_at) == 'string' and doc.cached_at > at then\n"
    "        write = 0\n"
    "      elseif ARGV[b + 3] == '1' and string.sub(value, -1) == '}' then\n"
    "        local keep, text = nil, nil\n"
    "        if doc.error == nil then keep, text = doc, old\n"
    "        elseif type(doc.last_success) == 'table' then keep = doc.last_success end\n"
    "        if keep and type(keep.cached_at) == 'string' and keep.cached_at >= ARGV[b + 2] then\n"
    "          text = text or cjson.encode(keep)\n"
    "          value = string.sub(value, 1, -2) .. ',\"last_success\":' .. text .. '}'\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if write == 1 then\n"
    "    redis.call('SET', KEYS[i], value, 'PX', ARGV[1])\n"
    "    redis.call('PUBLISH', '" RTE_CACHE_WRITTEN_CHANNEL "', KEYS[i])\n"
    "  end\n"
    "  out[i] = write\n"
    "end\n"
    "return out\n";

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

/* the entries of one put_script call (a Redis Cluster would need them in one hash slot) */
#define PUT_CHUNK 64

/*
 * One pipelined round of EVALSHA, PUT_CHUNK entries per call: 0, 1 if Redis
 * did not know the script yet, -1 + err.
 */
static int put_round(rte_redis *r, rte_cache_write *w, int n, char **values, char (*cached)[40],
                     char (*keep_from)[40], const char *ttl, char *err, size_t errlen)
{
    int ncalls = (n + PUT_CHUNK - 1) / PUT_CHUNK;
    const char **argv = calloc((size_t)n * 5 + (size_t)ncalls * 4, sizeof *argv);
    rte_redis_argv *cmds = calloc((size_t)ncalls, sizeof *cmds);
    redisReply **reps = calloc((size_t)ncalls, sizeof *reps);
    char nkeys[(PUT_MANY_MAX + PUT_CHUNK - 1) / PUT_CHUNK][12];
    int rc = -1, noscript = 0;

    if (argv == NULL || cmds == NULL || reps == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const char **a = argv;
    for (int c = 0; c < ncalls; c++) {
        int i0 = c * PUT_CHUNK, k = n - i0 < PUT_CHUNK ? n - i0 : PUT_CHUNK;
        snprintf(nkeys[c], sizeof nkeys[c], "%d", k);
        cmds[c] = (rte_redis_argv){4 + 5 * k, a, NULL};
        *a++ = "EVALSHA";
        *a++ = put_sha;
        *a++ = nkeys[c];
        for (int i = i0; i < i0 + k; i++)
            *a++ = w[i].key;
        *a++ = ttl;
        for (int i = i0; i < i0 + k; i++) {
            *a++ = values[i];
            *a++ = cached[i];
            *a++ = keep_from[i];
            *a++ = carry(w[i].entry) ? "1" : "0";
        }
    }
    if (rte_redis_pipeline(r, ncalls, cmds, reps, err, errlen) != 0)
        goto out;
    rc = 0;
    for (int c = 0; c < ncalls; c++) {
        int i0 = c * PUT_CHUNK, k = n - i0 < PUT_CHUNK ? n - i0 : PUT_CHUNK;
        const redisReply *rep = reps[c];
        if (is_noscript(rep)) {
            noscript = 1;
        } else if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == (size_t)k) {
            for (int i = 0; i < k; i++) {
                if (rep->element[i]->type != REDIS_REPLY_INTEGER) {
                    snprintf(err, errlen, "cache put: unexpected reply for %s", w[i0 + i].key);
                    rc = -1;
                    break;
                }
                w[i0 + i].rc = (int)rep->element[i]->integer;
            }
        } else {
            snprintf(err, errlen, "cache put: %s",
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            rc = -1;
        }
    }
    if (rc == 0 && noscript)
        rc = 1;
out:
    for (int c = 0; reps != NULL && c < ncalls; c++)
        if (reps[c] != NULL)
            freeReplyObject(reps[c]);
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

/* a calendar date YYYY-MM-DD (rte_input_date) or null */
static int callback_date(const cJSON *o, const char *name, char out[11], char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char why[160];
    out[0] = '\0';
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        snprintf(err, errlen, "eligibility.%s: expected YYYY-MM-DD or null", name);
        return -1;
    }
    if (rte_input_date(v->valuestring, strlen(v->valuestring), RTE_INPUT_DATE_ISO, NULL, NULL, why,
                       sizeof why) != 0) {
        snprintf(err, errlen, "eligibility.%s: %s", name, why); /* formatted for errors only */
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
