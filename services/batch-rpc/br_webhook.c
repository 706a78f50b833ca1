/*
 * br_webhook.c - the Redis outbox of signed job callbacks (br_webhook.h).
 *
 * Outbox keys (prefix P = batchrpc.prefix):
 *   P:wh:due      sorted set message id -> when it is due (Redis time, ms);
 *                 a claim moves it webhook_lease ahead
 *   P:wh:m:<id>   hash url, body, mode (0 best effort, 1 at least once),
 *                 attempts, batch
 * Times here are Redis's clock, so every replica agrees on "due" whatever
 * its own clock (and a scaled test clock does not speed up retries).
 */
#include "br_webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"

#include "br_events.h"

#define BODY_MAX 2048
#define CLAIM_MAX 16

static const char enqueue_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('HSET', KEYS[2], 'url', ARGV[2], 'body', ARGV[3], 'mode', ARGV[4], "
    "'attempts', '0', 'batch', ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[6])\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "return 0\n";

/* claim up to ARGV[2] due messages for ARGV[1] ms: {id, url, body, mode, attempts}... */
static const char claim_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local k = ARGV[3] .. id\n"
    "  if redis.call('EXISTS', k) == 0 then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  else\n"
    "    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)\n"
    "    local a = redis.call('HINCRBY', k, 'attempts', 1)\n"
    "    local v = redis.call('HMGET', k, 'url', 'body', 'mode')\n"
    "    table.insert(out, {id, v[1], v[2], v[3], a})\n"
    "  end\n"
    "end\n"
    "return out\n";

static const char retry_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "return 0\n";

static void count(const char *result)
{
    const char *v[] = {"webhook", result};
    rte_counter_inc(BM.events, v);
}

static const char *callback_url(const br_job *j)
{
    const Rte__V1__NotificationPreferences *n = j->opts ? j->opts->notifications : NULL;
    if (n && n->_callback_url_case && n->callback_url[0])
        return n->callback_url;
    return NULL;
}

static int wanted(const br_job *j, const char *type)
{
    const Rte__V1__NotificationPreferences *n = j->opts->notifications;
    if (n == NULL || n->n_event_types == 0)
        return 1;
    for (size_t i = 0; i < n->n_event_types; i++)
        if (strcmp(n->event_types[i], type) == 0)
            return 1;
    return 0;
}

/* br_webhook_enqueue - any thread */
int br_webhook_enqueue(rte_redis *r, const br_job *j, const char *type)
{
    const char *url = callback_url(j);
    char body[BODY_MAX], lower[32], evtype[48], ts[40], id[37], msg[48], due[160], key[160],
        mode[4], keep[24], err[256];
    rte_jsonw w;
    int n;

    if (url == NULL || !wanted(j, type))
        return 0;
    if (BR.whkeylen <= 0) {
        count("dropped");
        return 0; /* no key to sign with: storing it again would not help */
    }
    size_t i = 0;
    for (; i < sizeof lower - 1 && type[i]; i++)
        lower[i] = (char)(type[i] >= 'A' && type[i] <= 'Z' ? type[i] + 32 : type[i]);
    lower[i] = '\0';
    snprintf(evtype, sizeof evtype, "batch.%s", lower);
    rte_clock_format(rte_clock_now_ms(), ts, sizeof ts);
    rte_jsonw_init(&w, body, sizeof body);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_str(&w, "type", evtype);
    rte_jsonw_str(&w, "timestamp", ts);
    rte_jsonw_begin(&w, "data");
    rte_jsonw_str(&w, "batch_id", j->id);
    rte_jsonw_str(&w, "event_type", type);
    rte_jsonw_str(&w, "status", br_status_name(j->status));
    rte_jsonw_str(&w, "client_service_name", j->service);
    rte_jsonw_str(&w, "client_job_id", j->cjid);
    rte_jsonw_int(&w, "total_members", j->total);
    rte_jsonw_int(&w, "completed", j->completed);
    rte_jsonw_int(&w, "failed", j->failed);
    rte_jsonw_int(&w, "cache_hits", j->hits);
    rte_jsonw_int(&w, "cache_misses", j->misses);
    if (strcmp(type, "FAILED") == 0 || strcmp(type, "CANCELLED") == 0) {
        rte_jsonw_str(&w, "error_code", j->ecode[0] ? j->ecode : type);
        rte_jsonw_str(&w, "error_message", j->emsg[0] ? j->emsg : j->reason);
    }
    rte_jsonw_end(&w);
    rte_jsonw_end(&w);
    n = rte_jsonw_done(&w);
    if (n < 0) {
        count("dropped");
        return 0;
    }
    if (strcmp(type, "PROGRESS") == 0)
        rte_uuid4(id);
    else
        br_events_event_id(j->id, type, id);
    snprintf(msg, sizeof msg, "msg_%s", id);
    snprintf(due, sizeof due, "%s:wh:due", BR.c.prefix);
    snprintf(key, sizeof key, "%s:wh:m:%s", BR.c.prefix, msg);
    snprintf(mode, sizeof mode, "%d", (int)j->opts->notifications->delivery_mode);
    snprintf(keep, sizeof keep, "%lld", (long long)BR.c.jobs.keep_ms);
    const char *argv[] = {"EVAL", enqueue_lua, "2", due, key, msg, url, body, mode, j->id, keep};
    size_t lens[11];
    for (int k = 0; k < 11; k++)
        lens[k] = strlen(argv[k]);
    lens[7] = (size_t)n;
    redisReply *rep = rte_redis_cmdargv(r, 11, argv, lens, err, sizeof err);
    if (rep == NULL) {
        count("dropped");
        rte_log_warn("batch %s: %s webhook not stored (%s)", j->id, type, err);
        return -1;
    }
    freeReplyObject(rep);
    count("queued");
    return 0;
}

/* POST one message; 1 delivered (2xx), 0 not */
static int post(const char *msg, const char *url, const char *body, size_t len, long *status)
{
    char ts[24], hid[80], hts[48], hsig[128], b64[64];
    uint8_t mac[RTE_SHA256_LEN];
    rte_http_response resp;

    /* the receiver checks this against its own wall clock: real time, never the scaled one */
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    size_t total = strlen(msg) + 1 + strlen(ts) + 1 + len;
    char *signed_content = malloc(total + 1);
    if (signed_content == NULL)
        return 0;
    int k = snprintf(signed_content, total + 1, "%s.%s.", msg, ts);
    memcpy(signed_content + k, body, len);
    rte_hmac_sha256(BR.whkey, (size_t)BR.whkeylen, signed_content, (size_t)k + len, mac);
    free(signed_content);
    rte_base64_encode(mac, sizeof mac, b64, sizeof b64);
    snprintf(hid, sizeof hid, "webhook-id: %s", msg);
    snprintf(hts, sizeof hts, "webhook-timestamp: %s", ts);
    snprintf(hsig, sizeof hsig, "webhook-signature: v1,%s", b64);
    const char *headers[] = {"Content-Type: application/json", hid, hts, hsig, NULL};
    rte_http_request req = {.method = "POST",
                            .url = url,
                            .headers = headers,
                            .body = body,
                            .body_len = len,
                            .timeout_ms = (int)BR.c.webhook_timeout_ms,
                            .max_attempts = 1,
                            .name = "batch_webhook"};
    int rc = rte_http_do(BR.http, &req, &resp);
    *status = rc == 0 ? resp.status : 0;
    rte_http_response_free(&resp);
    return rc == 0 && resp.status >= 200 && resp.status < 300;
}

/* br_webhook_tick - timer thread */
void br_webhook_tick(void *arg)
{
    rte_redis *r = rte_service_redis();
    char due[160], prefix[160], lease[24], max[12], err[256];

    (void)arg;
    if (BR.http == NULL)
        return;
    snprintf(due, sizeof due, "%s:wh:due", BR.c.prefix);
    snprintf(prefix, sizeof prefix, "%s:wh:m:", BR.c.prefix);
    snprintf(lease, sizeof lease, "%lld", (long long)BR.c.webhook_lease_ms);
    snprintf(max, sizeof max, "%d", CLAIM_MAX);
    const char *argv[] = {"EVAL", claim_lua, "1", due, lease, max, prefix};
    size_t lens[7];
    for (int k = 0; k < 7; k++)
        lens[k] = strlen(argv[k]);
    redisReply *rep = rte_redis_cmdargv(r, 7, argv, lens, err, sizeof err);
    if (rep == NULL) {
        rte_log_warn("webhooks: cannot claim due callbacks (%s); next tick retries", err);
        return;
    }
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        redisReply *m = rep->element[i];
        if (m->type != REDIS_REPLY_ARRAY || m->elements != 5 ||
            m->element[1]->type != REDIS_REPLY_STRING || m->element[2]->type != REDIS_REPLY_STRING)
            continue;
        const char *msg = m->element[0]->str;
        int at_least_once =
            m->element[3]->type == REDIS_REPLY_STRING && strcmp(m->element[3]->str, "1") == 0;
        long long attempts = m->element[4]->integer;
        long status = 0;
        int ok = post(msg, m->element[1]->str, m->element[2]->str, m->element[2]->len, &status);
        if (ok || !at_least_once || attempts >= BR.c.webhook_attempts) {
            if (!ok) {
                count("failed");
                rte_log_warn("webhooks: %s to %.200s dropped after %lld attempt(s) (last "
                             "status %ld)",
                             msg, m->element[1]->str, attempts, status);
            } else {
                count("delivered");
            }
            redisReply *d = rte_redis_cmd(r, err, sizeof err, "DEL %s%s", prefix, msg);
            if (d)
                freeReplyObject(d);
            d = rte_redis_cmd(r, err, sizeof err, "ZREM %s %s", due, msg);
            if (d)
                freeReplyObject(d);
            continue;
        }
        count("retried");
        int64_t backoff = BR.c.webhook_backoff_ms;
        for (long long a = 1; a < attempts && backoff < 600000; a++)
            backoff *= 2;
        if (backoff > 600000)
            backoff = 600000;
        char b[24];
        snprintf(b, sizeof b, "%lld", (long long)backoff);
        const char *rv[] = {"EVAL", retry_lua, "1", due, msg, b};
        size_t rl[6];
        for (int k = 0; k < 6; k++)
            rl[k] = strlen(rv[k]);
        redisReply *d = rte_redis_cmdargv(r, 6, rv, rl, err, sizeof err);
        if (d)
            freeReplyObject(d);
    }
    freeReplyObject(rep);
}
