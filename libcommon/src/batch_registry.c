/*
 * batch_registry.c - Stedi batches waiting to be polled (rte/batch_registry.h).
 *
 * Every write is one Lua script so that the lease check and the change it
 * guards are atomic: between "is this lease still mine" and "move the
 * cursor" no other replica can take the batch. The due set is a sorted set
 * scored by the next check time, so listing due batches is one
 * ZRANGEBYSCORE however many batches are registered.
 *
 * The backoff level is kept in the hash ("level") next to the number of
 * checks, so a restart of the poller neither resets nor skips the schedule.
 *
 * Members (which cache key and service types each submitted item stands
 * for) are written before the batch is scheduled, in pipelined HSETs of
 * MEMBERS_CHUNK items, and expire with the batch: retry window plus keep_ms
 * at registration, keep_ms once the batch is done.
 */
#include "rte/batch_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600LL * 1000)
#define MEMBERS_CHUNK 500
#define MEMBERS_MAX 10000

/* rte_batch_registry_opts_init - defaults; any thread */
void rte_batch_registry_opts_init(rte_batch_registry_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->prefix, sizeof o->prefix, "rte:batch");
    o->first_delay_ms = 60 * 1000;
    o->max_interval_ms = 10 * 60 * 1000;
    o->retry_window_ms = 24 * HOUR_MS;
    o->lease_ms = 60 * 1000;
    o->keep_ms = 7 * 24 * HOUR_MS;
}

/* rte_batch_registry_opts_from_config - start-up thread */
int rte_batch_registry_opts_from_config(const rte_config *cfg, rte_batch_registry_opts *o,
                                        char *err, size_t errlen)
{
    rte_batch_registry_opts_init(o);
    /* the default is a literal, not o->prefix: copying o->prefix onto itself (the
     * key absent) is an overlapping snprintf, which emptied the prefix */
    const char *prefix = rte_config_str(cfg, "batch_registry.prefix", "rte:batch");
    if (prefix[0] == '\0' || strlen(prefix) >= sizeof o->prefix) {
        snprintf(err, errlen,
                 "config: key 'batch_registry.prefix' (RTE_BATCH_REGISTRY_PREFIX) = '%s': "
                 "expected 1..%zu characters",
                 prefix, sizeof o->prefix - 1);
        return -1;
    }
    snprintf(o->prefix, sizeof o->prefix, "%s", prefix);
    if (rte_config_duration_try(cfg, "batch_registry.first_delay", o->first_delay_ms, 0,
                                24 * HOUR_MS, &o->first_delay_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batch_registry.max_interval", o->max_interval_ms, 10,
                                24 * HOUR_MS, &o->max_interval_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batch_registry.retry_window", o->retry_window_ms, 1000,
                                30 * 24 * HOUR_MS, &o->retry_window_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batch_registry.lease", o->lease_ms, 100, HOUR_MS,
                                &o->lease_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "batch_registry.keep", o->keep_ms, 1000, 90 * 24 * HOUR_MS,
                                &o->keep_ms, err, errlen) != 0)
        return -1;
    return 0;
}

/* rte_batch_registry_valid_id - ids go into Redis keys: a safe charset only */
int rte_batch_registry_valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= RTE_BATCH_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

struct keys {
    char hash[256], due[96], lease[256], items[256];
};

static void make_keys(const rte_batch_registry_opts *o, const char *id, struct keys *k)
{
    snprintf(k->hash, sizeof k->hash, "%s:%s", o->prefix, id);
    snprintf(k->due, sizeof k->due, "%s:due", o->prefix);
    snprintf(k->lease, sizeof k->lease, "%s:%s:lease", o->prefix, id);
    snprintf(k->items, sizeof k->items, "%s:%s:items", o->prefix, id);
}

static int check_id(const char *id, char *err, size_t errlen)
{
    if (rte_batch_registry_valid_id(id))
        return 0;
    snprintf(err, errlen, "batch id '%.64s': expected 1..%d characters of [A-Za-z0-9._:-]",
             id ? id : "", RTE_BATCH_ID_MAX - 1);
    return -1;
}

/* run a script with the four keys of batch id and argv; the reply or NULL + err */
static redisReply *eval4(rte_redis *r, const char *script, const struct keys *k, int argc,
                         const char **args, char *err, size_t errlen)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = "4";
    argv[n++] = k->hash;
    argv[n++] = k->due;
    argv[n++] = k->lease;
    argv[n++] = k->items;
    for (int i = 0; i < argc && n < 16; i++)
        argv[n++] = args[i];
    return rte_redis_cmdargv(r, n, argv, NULL, err, errlen);
}

/* an integer reply into *out; -1 + err otherwise (reply freed) */
static int int_reply(redisReply *rep, long long *out, char *err, size_t errlen)
{
    if (rep == NULL)
        return -1;
    int rc = 0;
    if (rep->type == REDIS_REPLY_INTEGER) {
        *out = rep->integer;
    } else {
        snprintf(err, errlen, "batch registry: unexpected reply type %d", rep->type);
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* KEYS hash, due, lease; ARGV id, source, items, submitted, now, retry_until, next */
static const char register_script[] =
    "if redis.call('HGET', KEYS[1], 'state') == 'done' then return 0 end\n"
    "local exists = redis.call('EXISTS', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'source', ARGV[2], 'items', ARGV[3])\n"
    "if exists == 0 then\n"
    "  redis.call('HSET', KEYS[1], 'submitted_ms', ARGV[4], 'registered_ms', ARGV[5],\n"
    "    'retry_until_ms', ARGV[6], 'cursor', '', 'checks', 0, 'level', 0, 'polled', 0,\n"
    "    'state', 'pending', 'next_ms', ARGV[7])\n"
    "  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])\n"
    "end\n"
    "return 1\n";

/* the stored value of one member: {"key": ..., "service_types": ["30", ...]} */
static char *member_value(const rte_batch_member *m)
{
    cJSON *d = cJSON_CreateObject(), *st;
    const char *p = m->service_types && m->service_types[0] ? m->service_types : "30";
    char code[8];
    char *text;

    if (d == NULL)
        return NULL;
    cJSON_AddStringToObject(d, "key", m->cache_key);
    st = cJSON_AddArrayToObject(d, "service_types");
    while (*p) {
        size_t n = strcspn(p, ",");
        snprintf(code, sizeof code, "%.*s", (int)(n < 7 ? n : 7), p);
        if (n > 0)
            cJSON_AddItemToArray(st, cJSON_CreateString(code));
        p += n;
        if (*p == ',')
            p++;
    }
    text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return text;
}

/* HSET the members in chunks, then set the hash's expiry; 0 or -1 + err */
static int store_members(rte_redis *r, const struct keys *k, const rte_batch_info *b,
                         int64_t ttl_ms, char *err, size_t errlen)
{
    const char **argv = calloc(2 + 2 * MEMBERS_CHUNK, sizeof *argv);
    char **values = calloc(MEMBERS_CHUNK, sizeof *values);
    char ttl[24];
    int rc = -1;

    if (argv == NULL || values == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i0 = 0; i0 < b->nmembers; i0 += MEMBERS_CHUNK) {
        int n = b->nmembers - i0 < MEMBERS_CHUNK ? b->nmembers - i0 : MEMBERS_CHUNK, fail = 0;
        argv[0] = "HSET";
        argv[1] = k->items;
        for (int i = 0; i < n; i++) {
            values[i] = member_value(&b->members[i0 + i]);
            fail |= values[i] == NULL;
            argv[2 + 2 * i] = b->members[i0 + i].submitter_id;
            argv[3 + 2 * i] = values[i];
        }
        redisReply *rep = fail ? NULL : rte_redis_cmdargv(r, 2 + 2 * n, argv, NULL, err, errlen);
        if (fail)
            snprintf(err, errlen, "out of memory");
        for (int i = 0; i < n; i++) {
            cJSON_free(values[i]);
            values[i] = NULL;
        }
        if (rep == NULL)
            goto out;
        int bad = rep->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(err, errlen, "batch registry members: %s", rep->str);
        freeReplyObject(rep);
        if (bad)
            goto out;
    }
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    const char *ex[] = {"PEXPIRE", k->items, ttl};
    redisReply *rep = rte_redis_cmdargv(r, 3, ex, NULL, err, errlen);
    if (rep == NULL)
        goto out;
    freeReplyObject(rep);
    rc = 0;
out:
    free(argv);
    free(values);
    return rc;
}

/* every member names its item and its cache key */
static int check_members(const rte_batch_info *b, char *err, size_t errlen)
{
    if (b->nmembers < 0 || b->nmembers > MEMBERS_MAX || (b->nmembers > 0 && b->members == NULL)) {
        snprintf(err, errlen, "batch %s: %d members (0..%d)", b->batch_id, b->nmembers,
                 MEMBERS_MAX);
        return -1;
    }
    for (int i = 0; i < b->nmembers; i++) {
        const rte_batch_member *m = &b->members[i];
        if (m->submitter_id == NULL || m->submitter_id[0] == '\0' || strlen(m->submitter_id) > 80 ||
            m->cache_key == NULL || m->cache_key[0] == '\0' || strlen(m->cache_key) > 200) {
            snprintf(err, errlen,
                     "batch %s: members[%d]: submitter id (1..80) and cache key (1..200) "
                     "required",
                     b->batch_id, i);
            return -1;
        }
    }
    return 0;
}

/* rte_batch_registry_register - caller's thread owns r */
int rte_batch_registry_register(rte_redis *r, const rte_batch_registry_opts *o,
                                const rte_batch_info *b, int64_t now_ms, char *err, size_t errlen)
{
    struct keys k = {0};
    char items[24], sub[24], now[24], until[24], next[24];
    if (check_id(b->batch_id, err, errlen) != 0)
        return -1;
    if (b->items < 0) {
        snprintf(err, errlen, "batch %s: negative item count", b->batch_id);
        return -1;
    }
    if (check_members(b, err, errlen) != 0)
        return -1;
    int64_t submitted = b->submitted_ms > 0 ? b->submitted_ms : now_ms;
    int64_t window = b->retry_window_ms > 0 ? b->retry_window_ms : o->retry_window_ms;
    make_keys(o, b->batch_id, &k);
    if (b->nmembers > 0 && store_members(r, &k, b, window + o->keep_ms, err, errlen) != 0)
        return -1;
    snprintf(items, sizeof items, "%d", b->items);
    snprintf(sub, sizeof sub, "%lld", (long long)submitted);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(until, sizeof until, "%lld", (long long)(submitted + window));
    snprintf(next, sizeof next, "%lld", (long long)(now_ms + o->first_delay_ms));
    const char *args[] = {b->batch_id, b->source ? b->source : "", items, sub, now, until, next};
    long long v;
    return int_reply(eval4(r, register_script, &k, 7, args, err, errlen), &v, err, errlen);
}

/* rte_batch_registry_due - caller's thread owns r */
int rte_batch_registry_due(rte_redis *r, const rte_batch_registry_opts *o, int64_t now_ms,
                           char (*ids)[RTE_BATCH_ID_MAX], int max, char *err, size_t errlen)
{
    char due[96], now[24], lim[16];
    snprintf(due, sizeof due, "%s:due", o->prefix);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(lim, sizeof lim, "%d", max);
    const char *argv[] = {"ZRANGEBYSCORE", due, "-inf", now, "LIMIT", "0", lim};
    redisReply *rep = rte_redis_cmdargv(r, 7, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    int n = 0;
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements && n < max; i++) {
            const redisReply *e = rep->element[i];
            if (e->type == REDIS_REPLY_STRING && e->len < RTE_BATCH_ID_MAX) {
                memcpy(ids[n], e->str, e->len);
                ids[n][e->len] = '\0';
                n++;
            }
        }
    }
    freeReplyObject(rep);
    return n;
}

/* KEYS hash, due, lease; ARGV owner, lease_ms */
static const char lease_script[] =
    "if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
    "if redis.call('GET', KEYS[3]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[2]) return 1\n"
    "end\n"
    "return 0\n";

static const char renew_script[] = "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end\n"
                                   "redis.call('PEXPIRE', KEYS[3], ARGV[2])\n"
                                   "return 0\n";

static const char release_script[] = "if redis.call('GET', KEYS[3]) == ARGV[1] then\n"
                                     "  redis.call('DEL', KEYS[3])\n"
                                     "end\n"
                                     "return 0\n";

static int lease_op(rte_redis *r, const rte_batch_registry_opts *o, const char *script,
                    const char *id, const char *owner, char *err, size_t errlen)
{
    struct keys k = {0};
    char ms[24];
    long long v = -1;
    if (check_id(id, err, errlen) != 0)
        return -1;
    make_keys(o, id, &k);
    snprintf(ms, sizeof ms, "%lld", (long long)o->lease_ms);
    const char *args[] = {owner, ms};
    if (int_reply(eval4(r, script, &k, 2, args, err, errlen), &v, err, errlen) != 0)
        return -1;
    if (v == RTE_BATCH_E_LOST)
        snprintf(err, errlen, "batch %s: lease lost (another replica owns it)", id);
    return (int)v;
}

/* rte_batch_registry_lease - caller's thread owns r */
int rte_batch_registry_lease(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                             const char *owner, char *err, size_t errlen)
{
    return lease_op(r, o, lease_script, batch_id, owner, err, errlen);
}

/* rte_batch_registry_renew - caller's thread owns r */
int rte_batch_registry_renew(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                             const char *owner, char *err, size_t errlen)
{
    return lease_op(r, o, renew_script, batch_id, owner, err, errlen);
}

/* rte_batch_registry_release - caller's thread owns r */
int rte_batch_registry_release(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                               const char *owner, char *err, size_t errlen)
{
    return lease_op(r, o, release_script, batch_id, owner, err, errlen);
}

static int64_t num(const redisReply *v)
{
    return v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
}

static void str(const redisReply *v, char *out, size_t len)
{
    size_t n = v->type == REDIS_REPLY_STRING ? v->len : 0;
    if (n >= len)
        n = len - 1;
    if (n > 0)
        memcpy(out, v->str, n);
    out[n] = '\0';
}

static void fill_field(rte_batch_record *out, const char *name, const redisReply *v)
{
    if (strcmp(name, "source") == 0)
        str(v, out->source, sizeof out->source);
    else if (strcmp(name, "items") == 0)
        out->items = (int)num(v);
    else if (strcmp(name, "submitted_ms") == 0)
        out->submitted_ms = num(v);
    else if (strcmp(name, "registered_ms") == 0)
        out->registered_ms = num(v);
    else if (strcmp(name, "retry_until_ms") == 0)
        out->retry_until_ms = num(v);
    else if (strcmp(name, "next_ms") == 0)
        out->next_ms = num(v);
    else if (strcmp(name, "cursor") == 0)
        str(v, out->cursor, sizeof out->cursor);
    else if (strcmp(name, "checks") == 0)
        out->checks = (int)num(v);
    else if (strcmp(name, "polled") == 0)
        out->polled = (long)num(v);
    else if (strcmp(name, "state") == 0)
        out->done = v->type == REDIS_REPLY_STRING && strcmp(v->str, "done") == 0;
    else if (strcmp(name, "done_reason") == 0)
        str(v, out->done_reason, sizeof out->done_reason);
}

/* rte_batch_registry_get - caller's thread owns r */
int rte_batch_registry_get(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                           rte_batch_record *out, char *err, size_t errlen)
{
    struct keys k = {0};
    if (check_id(batch_id, err, errlen) != 0)
        return -1;
    make_keys(o, batch_id, &k);
    const char *argv[] = {"HGETALL", k.hash};
    redisReply *rep = rte_redis_cmdargv(r, 2, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->batch_id, sizeof out->batch_id, "%s", batch_id);
    int found = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2;
    for (size_t i = 0; found && i + 1 < rep->elements; i += 2)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            fill_field(out, rep->element[i]->str, rep->element[i + 1]);
    freeReplyObject(rep);
    return found;
}

/* KEYS hash, due, lease; ARGV owner, cursor, items */
static const char advance_script[] = "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end\n"
                                     "redis.call('HSET', KEYS[1], 'cursor', ARGV[2])\n"
                                     "redis.call('HINCRBY', KEYS[1], 'polled', ARGV[3])\n"
                                     "return 0\n";

/* rte_batch_registry_advance - caller's thread owns r */
int rte_batch_registry_advance(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                               const char *owner, const char *cursor, long items, char *err,
                               size_t errlen)
{
    struct keys k = {0};
    char n[24];
    long long v;
    if (check_id(batch_id, err, errlen) != 0)
        return -1;
    make_keys(o, batch_id, &k);
    snprintf(n, sizeof n, "%ld", items);
    const char *args[] = {owner, cursor ? cursor : "", n};
    if (int_reply(eval4(r, advance_script, &k, 3, args, err, errlen), &v, err, errlen) != 0)
        return -1;
    if (v == RTE_BATCH_E_LOST)
        snprintf(err, errlen, "batch %s: lease lost (another replica owns it)", batch_id);
    return (int)v;
}

/*
 * KEYS hash, due, lease; ARGV owner, progressed, now, first_delay,
 * max_interval, keep_ms, id. Returns -2 (lease lost), -1 (expired, marked
 * done) or the next check time.
 */
static const char reschedule_script[] =
    "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end\n"
    "local now = tonumber(ARGV[3])\n"
    "local deadline = tonumber(redis.call('HGET', KEYS[1], 'retry_until_ms') or '0')\n"
    "redis.call('HINCRBY', KEYS[1], 'checks', 1)\n"
    "if now >= deadline then\n"
    "  redis.call('HSET', KEYS[1], 'state', 'done', 'done_reason', 'expired', 'done_ms', ARGV[3])\n"
    "  redis.call('ZREM', KEYS[2], ARGV[7])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
    "  redis.call('PEXPIRE', KEYS[4], ARGV[6])\n"
    "  redis.call('DEL', KEYS[3])\n"
    "  return -1\n"
    "end\n"
    "local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')\n"
    "if ARGV[2] == '0' and level < 40 then level = level + 1 end\n"
    "local interval = tonumber(ARGV[4]) * (2 ^ level)\n"
    "local cap = tonumber(ARGV[5])\n"
    "if interval > cap then interval = cap end\n"
    "local nxt = now + math.floor(interval)\n"
    "redis.call('HSET', KEYS[1], 'level', level, 'next_ms', nxt)\n"
    "redis.call('ZADD', KEYS[2], nxt, ARGV[7])\n"
    "return nxt\n";

/* rte_batch_registry_reschedule - caller's thread owns r */
int rte_batch_registry_reschedule(rte_redis *r, const rte_batch_registry_opts *o,
                                  const char *batch_id, const char *owner, int progressed,
                                  int64_t now_ms, int64_t *next_ms, char *err, size_t errlen)
{
    struct keys k = {0};
    char now[24], first[24], cap[24], keep[24];
    long long v;
    if (check_id(batch_id, err, errlen) != 0)
        return -1;
    make_keys(o, batch_id, &k);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    /* a zero first delay would never grow: back off from 1 s then */
    snprintf(first, sizeof first, "%lld",
             (long long)(o->first_delay_ms > 0 ? o->first_delay_ms : 1000));
    snprintf(cap, sizeof cap, "%lld", (long long)o->max_interval_ms);
    snprintf(keep, sizeof keep, "%lld", (long long)o->keep_ms);
    const char *args[] = {owner, progressed ? "1" : "0", now, first, cap, keep, batch_id};
    if (int_reply(eval4(r, reschedule_script, &k, 7, args, err, errlen), &v, err, errlen) != 0)
        return -1;
    if (v == RTE_BATCH_E_LOST) {
        snprintf(err, errlen, "batch %s: lease lost (another replica owns it)", batch_id);
        return RTE_BATCH_E_LOST;
    }
    if (v == -1)
        return 1;
    if (next_ms != NULL)
        *next_ms = v;
    return 0;
}

/* KEYS hash, due, lease; ARGV owner, reason, now, keep_ms, id */
static const char done_script[] =
    "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'done', 'done_reason', ARGV[2], 'done_ms', ARGV[3])\n"
    "redis.call('ZREM', KEYS[2], ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[4], ARGV[4])\n"
    "redis.call('DEL', KEYS[3])\n"
    "return 0\n";

/* rte_batch_registry_done - caller's thread owns r */
int rte_batch_registry_done(rte_redis *r, const rte_batch_registry_opts *o, const char *batch_id,
                            const char *owner, const char *reason, int64_t now_ms, char *err,
                            size_t errlen)
{
    struct keys k = {0};
    char now[24], keep[24];
    long long v;
    if (check_id(batch_id, err, errlen) != 0)
        return -1;
    make_keys(o, batch_id, &k);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(keep, sizeof keep, "%lld", (long long)o->keep_ms);
    const char *args[] = {owner, reason, now, keep, batch_id};
    if (int_reply(eval4(r, done_script, &k, 5, args, err, errlen), &v, err, errlen) != 0)
        return -1;
    if (v == RTE_BATCH_E_LOST)
        snprintf(err, errlen, "batch %s: lease lost (another replica owns it)", batch_id);
    return (int)v;
}

/* rte_batch_registry_members - caller's thread owns r */
cJSON *rte_batch_registry_members(rte_redis *r, const rte_batch_registry_opts *o,
                                  const char *batch_id, const char *const *submitter_ids, int n,
                                  char *err, size_t errlen)
{
    struct keys k = {0};
    const char **argv;
    redisReply *rep;
    cJSON *out;

    if (check_id(batch_id, err, errlen) != 0)
        return NULL;
    out = cJSON_CreateObject();
    if (out == NULL || n <= 0)
        return out;
    argv = calloc((size_t)n + 2, sizeof *argv);
    if (argv == NULL) {
        cJSON_Delete(out);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    make_keys(o, batch_id, &k);
    argv[0] = "HMGET";
    argv[1] = k.items;
    memcpy(argv + 2, submitter_ids, (size_t)n * sizeof *argv);
    rep = rte_redis_cmdargv(r, n + 2, argv, NULL, err, errlen);
    free(argv);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)n) {
        if (rep != NULL) {
            snprintf(err, errlen, "batch registry members: unexpected reply");
            freeReplyObject(rep);
        }
        cJSON_Delete(out);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const redisReply *v = rep->element[i];
        cJSON *m;
        if (v->type != REDIS_REPLY_STRING ||
            cJSON_GetObjectItemCaseSensitive(out, submitter_ids[i]) != NULL)
            continue;
        m = cJSON_ParseWithLength(v->str, v->len);
        if (cJSON_IsObject(m))
            cJSON_AddItemToObject(out, submitter_ids[i], m);
        else
            cJSON_Delete(m);
    }
    freeReplyObject(rep);
    return out;
}

/* rte_batch_registry_backlog - caller's thread owns r */
int rte_batch_registry_backlog(rte_redis *r, const rte_batch_registry_opts *o, int64_t now_ms,
                               long *pending, long *due, char *err, size_t errlen)
{
    char key[96], now[24];
    snprintf(key, sizeof key, "%s:due", o->prefix);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *a1[] = {"ZCARD", key};
    const char *a2[] = {"ZCOUNT", key, "-inf", now};
    rte_redis_argv cmds[2] = {{2, a1, NULL}, {4, a2, NULL}};
    redisReply *rep[2] = {NULL, NULL};
    if (rte_redis_pipeline(r, 2, cmds, rep, err, errlen) != 0)
        return -1;
    int rc = 0;
    if (rep[0]->type == REDIS_REPLY_INTEGER && rep[1]->type == REDIS_REPLY_INTEGER) {
        *pending = (long)rep[0]->integer;
        *due = (long)rep[1]->integer;
    } else {
        snprintf(err, errlen, "batch registry backlog: unexpected reply");
        rc = -1;
    }
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return rc;
}
