/*
 * cron_store.c - the Redis side of exactly-once fires (see cron_store.h).
 *
 * Scripts are sent with EVAL: they run a handful of times per fire and per
 * cursor batch, so caching SHAs would buy nothing measurable.
 */
#include "cron_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char PLAN_LUA[] =
    "local cur = redis.call('GET', KEYS[1]) or ''\n"
    "if cur ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "local newest, newest_s = -1, nil\n"
    "for i = 4, #ARGV do\n"
    "  local k = ARGV[3] .. ARGV[i]\n"
    "  if redis.call('HSETNX', k, 'state', 'pending') == 1 then\n"
    "    redis.call('HSET', k, 'cursor', 0, 'token', 0, 'lease_until', 0, 'emitted', 0,\n"
    "               'takeovers', 0, 'manual', 0)\n"
    "    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i])\n"
    "  end\n"
    "  if tonumber(ARGV[i]) > newest then newest, newest_s = tonumber(ARGV[i]), ARGV[i] end\n"
    "end\n"
    "if newest >= 0 and newest > tonumber(redis.call('GET', KEYS[3]) or '-1') then\n"
    "  redis.call('SET', KEYS[3], newest_s)\n"
    "end\n"
    "return 1\n";

static const char CREATE_LUA[] =
    "if redis.call('HSETNX', KEYS[1], 'state', 'pending') == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'cursor', 0, 'token', 0, 'lease_until', 0, 'emitted', 0,\n"
    "           'takeovers', 0, 'manual', ARGV[2])\n"
    "redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])\n"
    "if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[3]) or '-1') then\n"
    "  redis.call('SET', KEYS[3], ARGV[1])\n"
    "end\n"
    "return 1\n";

/* KEYS[1] fire; ARGV owner, lease_ms, total, started_ms */
static const char ACQUIRE_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local f = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'cursor')\n"
    "if not f[1] or f[1] == 'done' then return {0, 0, 0} end\n"
    "if tonumber(f[2] or '0') > now then return {0, 0, 0} end\n"
    "local takeover = 0\n"
    "if f[1] == 'running' then\n"
    "  takeover = 1\n"
    "  redis.call('HINCRBY', KEYS[1], 'takeovers', 1)\n"
    "end\n"
    "local tok = redis.call('HINCRBY', KEYS[1], 'token', 1)\n"
    "redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1],\n"
    "           'lease_until', now + tonumber(ARGV[2]), 'total', ARGV[3])\n"
    "redis.call('HSETNX', KEYS[1], 'started_ms', ARGV[4])\n"
    "return {tok, tonumber(f[3] or '0'), takeover}\n";

/* KEYS[1] fire, KEYS[2] pending; ARGV token, cursor, lease_ms, emitted, done, now_ms, member */
static const char ADVANCE_LUA[] =
    "if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('HSET', KEYS[1], 'cursor', ARGV[2], 'lease_until', now + tonumber(ARGV[3]))\n"
    "redis.call('HINCRBY', KEYS[1], 'emitted', ARGV[4])\n"
    "if ARGV[5] == '1' then\n"
    "  redis.call('HSET', KEYS[1], 'state', 'done', 'finished_ms', ARGV[6], 'lease_until', 0)\n"
    "  redis.call('ZREM', KEYS[2], ARGV[7])\n"
    "  redis.call('EXPIRE', KEYS[1], 604800)\n"
    "elseif ARGV[5] == '-1' then\n"
    "  redis.call('HSET', KEYS[1], 'lease_until', 0)\n"
    "end\n"
    "return 1\n";

static void key(char *buf, size_t len, const cron_store *st, const char *sched, const char *what)
{
    snprintf(buf, len, "%s%s:%s", st->prefix, sched, what);
}

static void fire_key(char *buf, size_t len, const cron_store *st, const char *sched, int64_t ms)
{
    snprintf(buf, len, "%s%s:fire:%" PRId64, st->prefix, sched, ms);
}

static int64_t num(const redisReply *r)
{
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return -1;
}

/* a per-schedule millisecond value: *ms = -1 when absent; 0 or -1 + err */
static int get_ms(cron_store *st, const char *sched, const char *what, int64_t *ms, char *err,
                  size_t errlen)
{
    char k[256];
    key(k, sizeof k, st, sched, what);
    redisReply *r = rte_redis_cmd(st->r, err, errlen, "GET %s", k);
    if (!r)
        return -1;
    *ms = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
    freeReplyObject(r);
    return 0;
}

/* cron_store_horizon - caller's thread */
int cron_store_horizon(cron_store *st, const char *sched, int64_t *ms, char *err, size_t errlen)
{
    return get_ms(st, sched, "horizon", ms, err, errlen);
}

/* cron_store_init_horizon - caller's thread */
int cron_store_init_horizon(cron_store *st, const char *sched, int64_t ms, char *err, size_t errlen)
{
    char k[256];
    key(k, sizeof k, st, sched, "horizon");
    redisReply *r = rte_redis_cmd(st->r, err, errlen, "SET %s %" PRId64 " NX", k, ms);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* cron_store_plan - caller's thread */
int cron_store_plan(cron_store *st, const char *sched, int64_t expect, int64_t horizon,
                    const int64_t *fires, int n, char *err, size_t errlen)
{
    char k1[256], k2[256], k3[256], prefix[256], exp_s[24], hor_s[24];
    int argc = 9 + n, rc = -1;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    char(*nums)[24] = calloc((size_t)(n ? n : 1), sizeof *nums);

    if (!argv || !nums) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    key(k1, sizeof k1, st, sched, "horizon");
    key(k2, sizeof k2, st, sched, "pending");
    key(k3, sizeof k3, st, sched, "last_fire");
    key(prefix, sizeof prefix, st, sched, "fire:");
    snprintf(exp_s, sizeof exp_s, "%" PRId64, expect);
    snprintf(hor_s, sizeof hor_s, "%" PRId64, horizon);
    argv[0] = "EVAL";
    argv[1] = PLAN_LUA;
    argv[2] = "3";
    argv[3] = k1;
    argv[4] = k2;
    argv[5] = k3;
    argv[6] = expect < 0 ? "" : exp_s;
    argv[7] = hor_s;
    argv[8] = prefix;
    for (int i = 0; i < n; i++) {
        snprintf(nums[i], sizeof nums[i], "%" PRId64, fires[i]);
        argv[9 + i] = nums[i];
    }
    redisReply *r = rte_redis_cmdargv(st->r, argc, argv, NULL, err, errlen);
    if (r) {
        rc = num(r) == 1 ? 1 : 0;
        freeReplyObject(r);
    }
out:
    free(argv);
    free(nums);
    return rc;
}

/* cron_store_create - caller's thread */
int cron_store_create(cron_store *st, const char *sched, int64_t fire_ms, int manual, char *err,
                      size_t errlen)
{
    char fk[256], pk[256], lk[256], ms[24];
    fire_key(fk, sizeof fk, st, sched, fire_ms);
    key(pk, sizeof pk, st, sched, "pending");
    key(lk, sizeof lk, st, sched, "last_fire");
    snprintf(ms, sizeof ms, "%" PRId64, fire_ms);
    const char *argv[] = {"EVAL", CREATE_LUA, "3", fk, pk, lk, ms, manual ? "1" : "0"};
    redisReply *r = rte_redis_cmdargv(st->r, 8, argv, NULL, err, errlen);
    if (!r)
        return -1;
    int rc = num(r) == 1;
    freeReplyObject(r);
    return rc;
}

/* cron_store_due - caller's thread */
int cron_store_due(cron_store *st, const char *sched, int64_t now_ms, int64_t *out, int max,
                   char *err, size_t errlen)
{
    char pk[256];
    key(pk, sizeof pk, st, sched, "pending");
    redisReply *r = rte_redis_cmd(st->r, err, errlen,
                                  "ZRANGEBYSCORE %s -inf %" PRId64 " LIMIT 0 %d", pk, now_ms, max);
    if (!r)
        return -1;
    int n = 0;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements && n < max; i++)
            out[n++] = num(r->element[i]);
    freeReplyObject(r);
    return n;
}

/* cron_store_acquire - caller's thread */
int cron_store_acquire(cron_store *st, const char *sched, int64_t fire_ms, int64_t total,
                       int64_t started_ms, int64_t *token, int64_t *cursor, int *takeover,
                       char *err, size_t errlen)
{
    char fk[256], lease[24], tot[24], start[24];
    fire_key(fk, sizeof fk, st, sched, fire_ms);
    snprintf(lease, sizeof lease, "%" PRId64, st->lease_ms);
    snprintf(tot, sizeof tot, "%" PRId64, total);
    snprintf(start, sizeof start, "%" PRId64, started_ms);
    const char *argv[] = {"EVAL", ACQUIRE_LUA, "1", fk, st->owner, lease, tot, start};
    redisReply *r = rte_redis_cmdargv(st->r, 8, argv, NULL, err, errlen);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && num(r->element[0]) > 0) {
        *token = num(r->element[0]);
        *cursor = num(r->element[1]);
        *takeover = (int)num(r->element[2]);
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

/* cron_store_advance - caller's thread */
int cron_store_advance(cron_store *st, const char *sched, int64_t fire_ms, int64_t token,
                       int64_t cursor, int64_t emitted_delta, int done, int64_t now_ms, char *err,
                       size_t errlen)
{
    char fk[256], pk[256], tok[24], cur[24], lease[24], em[24], dn[8], now[24], member[24];
    fire_key(fk, sizeof fk, st, sched, fire_ms);
    key(pk, sizeof pk, st, sched, "pending");
    snprintf(tok, sizeof tok, "%" PRId64, token);
    snprintf(cur, sizeof cur, "%" PRId64, cursor);
    snprintf(lease, sizeof lease, "%" PRId64, st->lease_ms);
    snprintf(em, sizeof em, "%" PRId64, emitted_delta);
    snprintf(dn, sizeof dn, "%d", done);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(member, sizeof member, "%" PRId64, fire_ms);
    const char *argv[] = {"EVAL", ADVANCE_LUA, "2", fk, pk, tok, cur, lease, em, dn, now, member};
    redisReply *r = rte_redis_cmdargv(st->r, 12, argv, NULL, err, errlen);
    if (!r)
        return -1;
    int rc = num(r) == 1;
    freeReplyObject(r);
    return rc;
}

/* cron_store_fire_info - caller's thread */
int cron_store_fire_info(cron_store *st, const char *sched, int64_t fire_ms, cron_fire_info *out,
                         char *err, size_t errlen)
{
    char fk[256];
    fire_key(fk, sizeof fk, st, sched, fire_ms);
    redisReply *r = rte_redis_cmd(st->r, err, errlen,
                                  "HMGET %s state cursor total emitted takeovers started_ms "
                                  "finished_ms manual owner",
                                  fk);
    if (!r)
        return -1;
    memset(out, 0, sizeof *out);
    out->fire_ms = fire_ms;
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 9 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(out->state, sizeof out->state, "%s", r->element[0]->str);
        out->cursor = num(r->element[1]);
        out->total = num(r->element[2]);
        out->emitted = num(r->element[3]);
        out->takeovers = num(r->element[4]);
        out->started_ms = num(r->element[5]);
        out->finished_ms = num(r->element[6]);
        out->manual = num(r->element[7]) == 1;
        if (r->element[8]->type == REDIS_REPLY_STRING)
            snprintf(out->owner, sizeof out->owner, "%s", r->element[8]->str);
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

/* cron_store_last_fire - caller's thread */
int cron_store_last_fire(cron_store *st, const char *sched, int64_t *ms, char *err, size_t errlen)
{
    return get_ms(st, sched, "last_fire", ms, err, errlen);
}
