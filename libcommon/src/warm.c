/*
 * warm.c - the shared warming path (rte/warm.h): a Redis-backed queue of
 * members sealed into Stedi batches, submitted and registered.
 *
 * Why Lua: "is this event new, is this member new in the window, add it,
 * seal at max_batch" must be one step, or two replicas (or one replica and
 * its restart) could each queue a member once, or seal a batch one member
 * too big. A script per call of thousands of members costs one round trip
 * and a few microseconds of Redis time per member, which is what lets the
 * consumers keep up with a fire of a million predictions.
 *
 * Scripts are sent by EVALSHA and loaded when Redis answers NOSCRIPT (a
 * restart or SCRIPT FLUSH). Leases of claims use Redis's TIME, so replicas
 * with skewed clocks agree on who may submit; windows use the libcommon
 * clock the caller passes, so a scaled clock scales them.
 *
 * The Stedi batch call is made in exactly one place, stedi_submit().
 */
#include "rte/warm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"

#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)

struct rte_warm {
    rte_warm_opts o;
    rte_batch_registry_opts bo;
    rte_stedi *stedi; /* borrowed; NULL = no submitting */
    char k_state[96], k_open[96], k_ready[96], k_seq[96], k_claims[96];
};

/* --- scripts --------------------------------------------------------------- */

/* the seal step both scripts share: the open set becomes batch <seq> */
#define SEAL_LUA                                                                                   \
    "local function seal(prefix, start, now)\n"                                                    \
    "  local seq = redis.call('INCR', KEYS[4])\n"                                                  \
    "  redis.call('RENAME', KEYS[2], prefix .. ':b:' .. seq)\n"                                    \
    "  redis.call('HSET', prefix .. ':bst:' .. seq, 'opened_ms', start, 'sealed_ms', now,\n"       \
    "    'attempts', 0)\n"                                                                         \
    "  redis.call('RPUSH', KEYS[3], seq)\n"                                                        \
    "end\n"

/*
 * Helpers the queueing scripts share. Commands take a whole call's
 * elements at once (SMISMEMBER, SADD, RPUSH), cut into chunks of
 * CHUNK elements since Lua's unpack() is limited to a few thousand values.
 * remember(): values are members of bucket sets <base>:<b>, b = Redis
 * time / ttl, each kept 2 x ttl after its last write; a value is
 * remembered when it is in the current or the previous bucket, so for at
 * least ttl (at most twice that). Event-id hashes live under P:seen,
 * queued members under P:mq.
 */
#define BULK_LUA                                                                                   \
    "local CHUNK = 2000\n"                                                                         \
    "local function each_chunk(list, per, fn)\n"                                                   \
    "  local i = 1\n"                                                                              \
    "  while i <= #list do\n"                                                                      \
    "    local j = math.min(#list, i + CHUNK * per - 1)\n"                                         \
    "    fn(unpack(list, i, j))\n"                                                                 \
    "    i = j + 1\n"                                                                              \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function bucket_keys(base, ttl)\n"                                                      \
    "  local t = redis.call('TIME')\n"                                                             \
    "  local b = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / ttl)\n"  \
    "  return base .. ':' .. b, base .. ':' .. (b - 1)\n"                                          \
    "end\n"                                                                                        \
    "-- remember(base, ttl, list): a table value -> true for the values of list\n"                 \
    "-- (distinct) already remembered in the time buckets of base; every value is\n"               \
    "-- remembered from now on\n"                                                                  \
    "local function remember(base, ttl, list)\n"                                                   \
    "  local old = {}\n"                                                                           \
    "  if #list == 0 then return old end\n"                                                        \
    "  local cur, prev = bucket_keys(base, ttl)\n"                                                 \
    "  for _, key in ipairs({cur, prev}) do\n"                                                     \
    "    local at = 0\n"                                                                           \
    "    each_chunk(list, 1, function(...)\n"                                                      \
    "      local v = redis.call('SMISMEMBER', key, ...)\n"                                         \
    "      for k = 1, #v do\n"                                                                     \
    "        if v[k] == 1 then old[list[at + k]] = true end\n"                                     \
    "      end\n"                                                                                  \
    "      at = at + #v\n"                                                                         \
    "    end)\n"                                                                                   \
    "  end\n"                                                                                      \
    "  local set = {}\n"                                                                           \
    "  for _, h in ipairs(list) do\n"                                                              \
    "    if not old[h] then set[#set + 1] = h end\n"                                               \
    "  end\n"                                                                                      \
    "  if #set > 0 then\n"                                                                         \
    "    each_chunk(set, 1, function(...) redis.call('SADD', cur, ...) end)\n"                     \
    "    redis.call('PEXPIRE', cur, 2 * ttl)\n"                                                    \
    "  end\n"                                                                                      \
    "  return old\n"                                                                               \
    "end\n"

/*
 * KEYS state, open, ready, seq; ARGV now, max, member_ttl, seen_ttl,
 * prefix, source, then (seen hash or '', member id) pairs. Returns a
 * verdict per pair, as if the pairs had been offered one by one in order:
 * 1 the event id was seen (before, or earlier in this call), 2 the member
 * was queued within member_ttl (or earlier in this call), else 0 and the
 * member joins the open set, which is sealed whenever it reaches max.
 * A duplicate member's event id is marked seen too.
 */
static const char enqueue_lua[] = SEAL_LUA BULK_LUA
    "local st = redis.call('HMGET', KEYS[1], 'start')\n"
    "local start = tonumber(st[1]) or 0\n"
    "local now, max, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[5]\n"
    "local n = (#ARGV - 6) / 2\n"
    "local out, ids, first = {}, {}, {}\n"
    "for i = 1, n do\n"
    "  local h = ARGV[5 + 2 * i]\n"
    "  out[i] = 0\n"
    "  if h ~= '' then\n"
    "    if first[h] then out[i] = 1 else first[h] = true; ids[#ids + 1] = h end\n"
    "  end\n"
    "end\n"
    "local old = remember(prefix .. ':seen', tonumber(ARGV[4]), ids)\n"
    "local cand, inbatch = {}, {}\n"
    "for i = 1, n do\n"
    "  local h, m = ARGV[5 + 2 * i], ARGV[6 + 2 * i]\n"
    "  if out[i] == 0 and h ~= '' and old[h] then out[i] = 1 end\n"
    "  if out[i] == 0 then\n"
    "    if inbatch[m] then out[i] = 2 else inbatch[m] = i; cand[#cand + 1] = m end\n"
    "  end\n"
    "end\n"
    "local queued = remember(prefix .. ':mq', tonumber(ARGV[3]), cand)\n"
    "local q = {}\n"
    "for _, m in ipairs(cand) do\n"
    "  if queued[m] then out[inbatch[m]] = 2 else q[#q + 1] = m end\n"
    "end\n"
    "if #q > 0 then\n"
    "  if start == 0 then\n"
    "    start = now\n"
    "    redis.call('HSET', KEYS[1], 'start', start)\n"
    "  end\n"
    "  local size, pos = math.floor(redis.call('LLEN', KEYS[2]) / 2), 1\n"
    "  while pos <= #q do\n"
    "    if size >= max then seal(prefix, start, now); size = 0 end\n"
    "    local take = math.min(#q - pos + 1, max - size)\n"
    "    local args = {}\n"
    "    for j = pos, pos + take - 1 do args[#args + 1] = q[j]; args[#args + 1] = ARGV[6] end\n"
    "    each_chunk(args, 2, function(...) redis.call('RPUSH', KEYS[2], ...) end)\n"
    "    size, pos = size + take, pos + take\n"
    "  end\n"
    "  if size >= max then seal(prefix, start, now) end\n"
    "end\n"
    "return out\n";

/*
 * ARGV member_ttl, prefix, seq: the members of sealed batch <seq> are
 * forgotten as queued, so their next request queues them again (a batch
 * dropped without reaching Stedi). The number forgotten.
 */
static const char release_lua[] =
    BULK_LUA "local list = redis.call('LRANGE', ARGV[2] .. ':b:' .. ARGV[3], 0, -1)\n"
             "local ms = {}\n"
             "for i = 1, #list, 2 do ms[#ms + 1] = list[i] end\n"
             "local n = 0\n"
             "if #ms == 0 then return 0 end\n"
             "local cur, prev = bucket_keys(ARGV[2] .. ':mq', tonumber(ARGV[1]))\n"
             "for _, key in ipairs({cur, prev}) do\n"
             "  each_chunk(ms, 1, function(...) n = n + redis.call('SREM', key, ...) end)\n"
             "end\n"
             "return n\n";

/* ARGV ttl, base, then values. 1 per value not remembered under base before (now it is), else 0 */
static const char mark_seen_lua[] = BULK_LUA
    "local ids, dup = {}, {}\n"
    "for i = 3, #ARGV do\n"
    "  if dup[ARGV[i]] == nil then dup[ARGV[i]] = false; ids[#ids + 1] = ARGV[i] end\n"
    "end\n"
    "local old = remember(ARGV[2], tonumber(ARGV[1]), ids)\n"
    "local out = {}\n"
    "for i = 3, #ARGV do\n"
    "  local h = ARGV[i]\n"
    "  if old[h] or dup[h] then out[#out + 1] = 0 else out[#out + 1] = 1; dup[h] = true end\n"
    "end\n"
    "return out\n";

/* KEYS state, open, ready, seq; ARGV now, window, force, prefix. 1 sealed, 0 not */
static const char seal_lua[] = SEAL_LUA
    "local start = tonumber(redis.call('HGET', KEYS[1], 'start')) or 0\n"
    "if start == 0 then return 0 end\n"
    "if ARGV[3] ~= '1' and tonumber(ARGV[1]) - start < tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'start', 0)\n"
    "if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end\n"
    "seal(ARGV[4], start, ARGV[1])\n"
    "return 1\n";

/*
 * KEYS ready, claims; ARGV owner, lease_ms, prefix. An expired claim first,
 * else the oldest sealed batch: {seq, state, name, batch_id, attempts,
 * opened_ms, items, submit_ms}, or nil.
 */
static const char claim_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local seq = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)[1]\n"
    "if not seq then seq = redis.call('LPOP', KEYS[1]) end\n"
    "if not seq then return false end\n"
    "local h = ARGV[3] .. ':bst:' .. seq\n"
    "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), seq)\n"
    "redis.call('HSET', h, 'owner', ARGV[1])\n"
    "local v = redis.call('HMGET', h, 'state', 'name', 'batch_id', 'attempts', 'opened_ms',\n"
    "  'items', 'submit_ms')\n"
    "return {seq, v[1] or '', v[2] or '', v[3] or '', v[4] or '0', v[5] or '0', v[6] or '0',\n"
    "  v[7] or '0'}\n";

/*
 * KEYS claims; ARGV owner, seq, prefix, action (set|retry|done), arg
 * (retry: delay ms; done: keep ms), then field/value pairs for P:bst:<seq>.
 * 1, or 0 when the claim is no longer ours.
 */
static const char update_lua[] =
    "local h = ARGV[3] .. ':bst:' .. ARGV[2]\n"
    "if redis.call('HGET', h, 'owner') ~= ARGV[1] or\n"
    "   not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end\n"
    "if #ARGV > 5 then redis.call('HSET', h, unpack(ARGV, 6)) end\n"
    "if ARGV[4] == 'retry' then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[2])\n"
    "  redis.call('HDEL', h, 'owner')\n"
    "elseif ARGV[4] == 'done' then\n"
    "  redis.call('ZREM', KEYS[1], ARGV[2])\n"
    "  redis.call('DEL', ARGV[3] .. ':b:' .. ARGV[2])\n"
    "  redis.call('PEXPIRE', h, ARGV[5])\n"
    "end\n"
    "return 1\n";

/* KEYS open, ready, claims; ARGV prefix. {open, sealed members, sealed batches} */
static const char backlog_lua[] =
    "local sealed, n = 0, 0\n"
    "for _, seq in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do\n"
    "  sealed, n = sealed + redis.call('LLEN', ARGV[1] .. ':b:' .. seq) / 2, n + 1\n"
    "end\n"
    "for _, seq in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do\n"
    "  sealed, n = sealed + redis.call('LLEN', ARGV[1] .. ':b:' .. seq) / 2, n + 1\n"
    "end\n"
    "return {redis.call('LLEN', KEYS[1]) / 2, sealed, n}\n";

/*
 * EVALSHA script with argv[0..argc) as its keys and arguments (the caller
 * leaves argv[0..2] free: filled here), loading it on NOSCRIPT. The reply
 * or NULL + err.
 */
static redisReply *eval(rte_redis *r, const char *script, int nkeys, const char **argv,
                        size_t *argvlen, int argc, char *err, size_t errlen)
{
    char sha[41], nk[8];
    redisReply *rep;

    rte_sha1_hex(script, strlen(script), sha);
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = nk;
    for (int i = 0; i < 3; i++)
        argvlen[i] = strlen(argv[i]);
    rep = rte_redis_cmdargv(r, argc, argv, argvlen, err, errlen);
    if (rep == NULL && strstr(err, "NOSCRIPT") != NULL) {
        redisReply *ld = rte_redis_cmd(r, err, errlen, "SCRIPT LOAD %s", script);
        if (ld == NULL)
            return NULL;
        freeReplyObject(ld);
        rep = rte_redis_cmdargv(r, argc, argv, argvlen, err, errlen);
    }
    return rep;
}

/* eval with NUL-terminated arguments only */
static redisReply *eval_str(rte_redis *r, const char *script, int nkeys, const char **argv,
                            int argc, char *err, size_t errlen)
{
    size_t lens[32];

    if (argc > 32)
        rte_panic("warm: %d script arguments", argc);
    for (int i = 3; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return eval(r, script, nkeys, argv, lens, argc, err, errlen);
}

static int64_t reply_int(const redisReply *e)
{
    if (e == NULL)
        return 0;
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

/* --- options ------------------------------------------------------------- */

/* rte_warm_opts_init - any thread */
void rte_warm_opts_init(rte_warm_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->prefix, sizeof o->prefix, "rte:warm");
    o->window_ms = 5 * MIN_MS;
    o->max_batch = RTE_WARM_BATCH_MAX;
    o->dedup_ttl_ms = 24 * HOUR_MS;
    o->member_ttl_ms = HOUR_MS;
    o->lease_ms = MIN_MS;
    o->retry_delay_ms = 10000;
    o->max_attempts = 5;
    snprintf(o->source, sizeof o->source, "cache-warmer");
}

static int str_key(const rte_config *cfg, const char *key, const char *env, char *dst, size_t cap,
                   int name_chars, char *err, size_t errlen)
{
    const char *v = rte_config_str(cfg, key, dst);
    size_t n = strlen(v);
    int ok = n > 0 && n < cap;

    for (size_t i = 0; ok && name_chars && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
             (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '_';
    if (!ok) {
        snprintf(err, errlen, "config: key '%s' (%s) = '%.80s': expected 1..%zu characters%s", key,
                 env, v, cap - 1, name_chars ? " of [A-Za-z0-9_-]" : "");
        return -1;
    }
    memmove(dst, v, n + 1);
    return 0;
}

/* rte_warm_opts_from_config - start-up thread */
int rte_warm_opts_from_config(const rte_config *cfg, rte_warm_opts *o, char *err, size_t errlen)
{
    int64_t v;

    rte_warm_opts_init(o);
    if (str_key(cfg, "warm.prefix", "RTE_WARM_PREFIX", o->prefix, sizeof o->prefix, 0, err,
                errlen) != 0 ||
        str_key(cfg, "warm.source", "RTE_WARM_SOURCE", o->source, sizeof o->source, 1, err,
                errlen) != 0)
        return -1;
    if (rte_config_duration_try(cfg, "warm.window", o->window_ms, 1000, 24 * HOUR_MS, &o->window_ms,
                                err, errlen) != 0 ||
        rte_config_int_try(cfg, "warm.max_batch", o->max_batch, 1, RTE_WARM_BATCH_MAX, &v, err,
                           errlen) != 0)
        return -1;
    o->max_batch = (int)v;
    if (rte_config_duration_try(cfg, "warm.dedup_ttl", o->dedup_ttl_ms, MIN_MS, 30 * 24 * HOUR_MS,
                                &o->dedup_ttl_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "warm.member_ttl",
                                o->member_ttl_ms > 2 * o->window_ms ? o->member_ttl_ms
                                                                    : 2 * o->window_ms,
                                MIN_MS, 30 * 24 * HOUR_MS, &o->member_ttl_ms, err, errlen) != 0 ||
        rte_config_duration_try(cfg, "warm.lease", o->lease_ms, 1000, HOUR_MS, &o->lease_ms, err,
                                errlen) != 0 ||
        rte_config_duration_try(cfg, "warm.retry_delay", o->retry_delay_ms, 10, HOUR_MS,
                                &o->retry_delay_ms, err, errlen) != 0 ||
        rte_config_int_try(cfg, "warm.max_attempts", o->max_attempts, 1, 100, &v, err, errlen) != 0)
        return -1;
    o->max_attempts = (int)v;
    if (o->dedup_ttl_ms < 2 * o->window_ms) {
        snprintf(err, errlen,
                 "config: key 'warm.dedup_ttl' (RTE_WARM_DEDUP_TTL) = %lld ms: must be at least "
                 "twice warm.window (%lld ms), or a redelivery could queue a member twice",
                 (long long)o->dedup_ttl_ms, (long long)o->window_ms);
        return -1;
    }
    if (o->member_ttl_ms < 2 * o->window_ms) {
        snprintf(err, errlen,
                 "config: key 'warm.member_ttl' (RTE_WARM_MEMBER_TTL) = %lld ms: must be at least "
                 "twice warm.window (%lld ms), or a member could be queued twice in one window",
                 (long long)o->member_ttl_ms, (long long)o->window_ms);
        return -1;
    }
    rte_cache_settings cs;
    if (rte_cache_settings_from_config(cfg, &cs, err, errlen) != 0)
        return -1;
    snprintf(o->dedup_secret, sizeof o->dedup_secret, "%s", cs.member_key_secret);
    return 0;
}

/* rte_warm_new - any thread */
rte_warm *rte_warm_new(const rte_warm_opts *o, rte_stedi *stedi, const rte_batch_registry_opts *bo,
                       char *err, size_t errlen)
{
    rte_warm *w;

    if (o->max_batch < 1 || o->max_batch > RTE_WARM_BATCH_MAX || o->window_ms < 1 ||
        o->prefix[0] == '\0' || o->source[0] == '\0') {
        snprintf(err, errlen, "warm: max_batch must be 1..%d, window > 0, prefix and source set",
                 RTE_WARM_BATCH_MAX);
        return NULL;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "warm: out of memory");
        return NULL;
    }
    w->o = *o;
    w->stedi = stedi;
    if (bo)
        w->bo = *bo;
    else
        rte_batch_registry_opts_init(&w->bo);
    snprintf(w->k_state, sizeof w->k_state, "%s:state", o->prefix);
    snprintf(w->k_open, sizeof w->k_open, "%s:open", o->prefix);
    snprintf(w->k_ready, sizeof w->k_ready, "%s:ready", o->prefix);
    snprintf(w->k_seq, sizeof w->k_seq, "%s:seq", o->prefix);
    snprintf(w->k_claims, sizeof w->k_claims, "%s:claims", o->prefix);
    return w;
}

/* rte_warm_free - owner's thread */
void rte_warm_free(rte_warm *w)
{
    free(w);
}

/* rte_warm_options - any thread */
const rte_warm_opts *rte_warm_options(const rte_warm *w)
{
    return &w->o;
}

/* --- queueing ------------------------------------------------------------ */

/* the seen-key suffix of an event id: a keyed hash, so no member id shows in key names */
static void seen_hash(const rte_warm *w, const char *event_id, char out[33])
{
    uint8_t mac[32];

    rte_hmac_sha256(w->o.dedup_secret, strlen(w->o.dedup_secret), event_id, strlen(event_id), mac);
    rte_hex_encode(mac, 16, out);
}

static int64_t real_ms(int64_t clock_ms)
{
    int64_t r = rte_clock_real_ms(clock_ms);
    return r < 1000 ? 1000 : r;
}

/* rte_warm_enqueue - any thread, the caller's connection */
int rte_warm_enqueue(rte_warm *w, rte_redis *r, rte_warm_item *items, int n, const char *source,
                     int64_t now_ms, char *err, size_t errlen)
{
    enum { FIXED = 3 + 4 + 6 };
    const char **argv = NULL;
    size_t *lens = NULL;
    char(*hashes)[33] = NULL;
    char now[24], max[16], mttl[24], sttl[24];
    redisReply *rep = NULL;
    int argc = FIXED, rc = -1;

    if (n <= 0)
        return 0;
    argv = malloc((size_t)(FIXED + 2 * n) * sizeof *argv);
    lens = malloc((size_t)(FIXED + 2 * n) * sizeof *lens);
    hashes = malloc((size_t)n * sizeof *hashes);
    if (!argv || !lens || !hashes) {
        snprintf(err, errlen, "warm: out of memory queueing %d members", n);
        goto out;
    }
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(max, sizeof max, "%d", w->o.max_batch);
    snprintf(mttl, sizeof mttl, "%lld", (long long)real_ms(w->o.member_ttl_ms));
    snprintf(sttl, sizeof sttl, "%lld", (long long)real_ms(w->o.dedup_ttl_ms));
    const char *fixed[] = {w->k_state, w->k_open, w->k_ready, w->k_seq,    now,
                           max,        mttl,      sttl,       w->o.prefix, source};
    for (int i = 0; i < FIXED - 3; i++) {
        argv[3 + i] = fixed[i];
        lens[3 + i] = strlen(fixed[i]);
    }
    for (int i = 0; i < n; i++) {
        hashes[i][0] = '\0';
        if (items[i].event_id && items[i].event_id[0])
            seen_hash(w, items[i].event_id, hashes[i]);
        argv[argc] = hashes[i];
        lens[argc++] = strlen(hashes[i]);
        argv[argc] = items[i].member_id;
        lens[argc++] = strlen(items[i].member_id);
    }
    rep = eval(r, enqueue_lua, 4, argv, lens, argc, err, errlen);
    if (rep == NULL)
        goto out;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)n) {
        snprintf(err, errlen, "warm: enqueue script answered type %d", rep->type);
        goto out;
    }
    for (int i = 0; i < n; i++)
        items[i].verdict = (int)reply_int(rep->element[i]);
    rc = 0;
out:
    if (rep)
        freeReplyObject(rep);
    free(argv);
    free(lens);
    free(hashes);
    return rc;
}

/*
 * remember the n values (NULL/"" skipped; hashed with the dedupe secret
 * when hash) under P<suffix> for ttl_ms: fresh[i] = 1 if value i was not
 * remembered before; 0, -1 + err
 */
static int mark(rte_warm *w, rte_redis *r, const char *suffix, int64_t ttl_ms, int hash,
                const char *const *values, int n, int *fresh, char *err, size_t errlen)
{
    enum { FIXED = 3 + 2 };
    const char **argv = malloc((size_t)(FIXED + n) * sizeof *argv);
    size_t *lens = malloc((size_t)(FIXED + n) * sizeof *lens);
    char(*hashes)[33] = malloc((size_t)(n > 0 ? n : 1) * sizeof *hashes);
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    char ttl[24], base[96];
    redisReply *rep = NULL;
    int m = 0, rc = -1;

    if (!argv || !lens || !hashes || !idx) {
        snprintf(err, errlen, "warm: out of memory");
        goto out;
    }
    snprintf(ttl, sizeof ttl, "%lld", (long long)real_ms(ttl_ms));
    snprintf(base, sizeof base, "%s%s", w->o.prefix, suffix);
    argv[3] = ttl;
    argv[4] = base;
    lens[3] = strlen(ttl);
    lens[4] = strlen(base);
    for (int i = 0; i < n; i++) {
        fresh[i] = 1;
        if (values[i] == NULL || values[i][0] == '\0')
            continue;
        if (hash) {
            seen_hash(w, values[i], hashes[m]);
            argv[FIXED + m] = hashes[m];
        } else {
            argv[FIXED + m] = values[i];
        }
        lens[FIXED + m] = strlen(argv[FIXED + m]);
        idx[m++] = i;
    }
    if (m == 0) {
        rc = 0;
        goto out;
    }
    rep = eval(r, mark_seen_lua, 0, argv, lens, FIXED + m, err, errlen);
    if (rep == NULL)
        goto out;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)m) {
        snprintf(err, errlen, "warm: mark script answered type %d", rep->type);
        goto out;
    }
    for (int j = 0; j < m; j++)
        fresh[idx[j]] = reply_int(rep->element[j]) == 1;
    rc = 0;
out:
    if (rep)
        freeReplyObject(rep);
    free(argv);
    free(lens);
    free(hashes);
    free(idx);
    return rc;
}

/* rte_warm_mark_seen - any thread, the caller's connection */
int rte_warm_mark_seen(rte_warm *w, rte_redis *r, const char *const *event_ids, int n, int *fresh,
                       char *err, size_t errlen)
{
    return mark(w, r, ":seen", w->o.dedup_ttl_ms, 1, event_ids, n, fresh, err, errlen);
}

/* rte_warm_mark_urgent - any thread, the caller's connection */
int rte_warm_mark_urgent(rte_warm *w, rte_redis *r, const char *const *member_ids, int n,
                         int *fresh, char *err, size_t errlen)
{
    return mark(w, r, ":mu", w->o.member_ttl_ms, 0, member_ids, n, fresh, err, errlen);
}

/* rte_warm_seal - any thread, the caller's connection */
int rte_warm_seal(rte_warm *w, rte_redis *r, int64_t now_ms, int force, char *err, size_t errlen)
{
    char now[24], win[24];
    const char *argv[3 + 4 + 4] = {NULL,     NULL, NULL, w->k_state,        w->k_open,  w->k_ready,
                                   w->k_seq, now,  win,  force ? "1" : "0", w->o.prefix};
    redisReply *rep;
    int64_t sealed;

    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(win, sizeof win, "%lld", (long long)w->o.window_ms);
    rep = eval_str(r, seal_lua, 4, argv, 11, err, errlen);
    if (rep == NULL)
        return -1;
    sealed = reply_int(rep);
    freeReplyObject(rep);
    return sealed > 0;
}

/* rte_warm_backlog - any thread, the caller's connection */
int rte_warm_backlog(rte_warm *w, rte_redis *r, long *open, long *sealed, long *batches, char *err,
                     size_t errlen)
{
    const char *argv[3 + 3 + 1] = {NULL,       NULL,        NULL,       w->k_open,
                                   w->k_ready, w->k_claims, w->o.prefix};
    redisReply *rep = eval_str(r, backlog_lua, 3, argv, 7, err, errlen);

    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
        snprintf(err, errlen, "warm: backlog script answered type %d", rep->type);
        freeReplyObject(rep);
        return -1;
    }
    *open = (long)reply_int(rep->element[0]);
    *sealed = (long)reply_int(rep->element[1]);
    *batches = (long)reply_int(rep->element[2]);
    freeReplyObject(rep);
    return 0;
}

/* --- submitting ---------------------------------------------------------- */

/*
 * The checks of one sealed batch, resolved in the member directory: the
 * Stedi items, their submitter ids ("w<n>", how a polled result finds its
 * member again), the cache keys and registry members, and who asked.
 */
struct resolved {
    rte_stedi_check *items;
    char (*stis)[16];
    char (*keys)[RTE_CACHE_KEY_MAX];
    rte_batch_member *members;
    const char **sources; /* point into keep */
    redisReply *keep;
    int n, unresolved;
};

struct claim {
    char seq[24], state[16], name[101], batch_id[RTE_BATCH_ID_MAX];
    int attempts, items;
    int64_t opened_ms;
    int64_t submit_ms; /* clock ms of the first submit under name; 0 = none yet */
};

/* 1 claimed (c filled), 0 nothing waiting, -1 + err */
static int claim(rte_warm *w, rte_redis *r, const char *owner, struct claim *c, char *err,
                 size_t errlen)
{
    char lease[24];
    const char *argv[3 + 2 + 3] = {NULL,        NULL,  NULL,  w->k_ready,
                                   w->k_claims, owner, lease, w->o.prefix};
    redisReply *rep;

    snprintf(lease, sizeof lease, "%lld", (long long)w->o.lease_ms);
    rep = eval_str(r, claim_lua, 2, argv, 8, err, errlen);
    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return 0;
    }
    if (rep->elements != 8) {
        snprintf(err, errlen, "warm: claim script answered %zu elements", rep->elements);
        freeReplyObject(rep);
        return -1;
    }
    memset(c, 0, sizeof *c);
    snprintf(c->seq, sizeof c->seq, "%s", rep->element[0]->str ? rep->element[0]->str : "");
    snprintf(c->state, sizeof c->state, "%s", rep->element[1]->str ? rep->element[1]->str : "");
    snprintf(c->name, sizeof c->name, "%s", rep->element[2]->str ? rep->element[2]->str : "");
    snprintf(c->batch_id, sizeof c->batch_id, "%s",
             rep->element[3]->str ? rep->element[3]->str : "");
    c->attempts = (int)reply_int(rep->element[4]);
    c->opened_ms = reply_int(rep->element[5]);
    c->items = (int)reply_int(rep->element[6]);
    c->submit_ms = reply_int(rep->element[7]);
    freeReplyObject(rep);
    return 1;
}

/* a lease-checked change of claim c (see update_lua): 1 done, 0 lost, -1 + err */
static int update(rte_warm *w, rte_redis *r, const char *owner, const struct claim *c,
                  const char *action, int64_t arg, const char *const *fields, int nfields,
                  char *err, size_t errlen)
{
    char a[24];
    const char *argv[32] = {NULL, NULL, NULL, w->k_claims, owner, c->seq, w->o.prefix, action, a};
    int argc = 9;
    redisReply *rep;
    int64_t ok;

    snprintf(a, sizeof a, "%lld", (long long)arg);
    for (int i = 0; i < nfields && argc < 32; i++)
        argv[argc++] = fields[i];
    rep = eval_str(r, update_lua, 1, argv, argc, err, errlen);
    if (rep == NULL)
        return -1;
    ok = reply_int(rep);
    freeReplyObject(rep);
    if (!ok)
        rte_log_warn("warm: claim on batch %s was lost (lease %lld ms ran out); its new claimant "
                     "finishes it",
                     c->seq, (long long)w->o.lease_ms);
    return ok ? 1 : 0;
}

/* the one place a Stedi batch is submitted */
static int stedi_submit(rte_warm *w, const rte_stedi_check *items, size_t n, const char *name,
                        char *batch_id, size_t idlen, char *err, size_t errlen)
{
    return rte_stedi_batch_submit(w->stedi, items, n, name, 0, batch_id, idlen, err, errlen);
}

/* a unique Stedi batch name, ^[a-zA-Z0-9-_]{1,100}$: <source>-<seq>-<random hex> */
static void batch_name(const rte_warm *w, const char *seq, char out[101])
{
    uint8_t rnd[6];
    char hex[13];

    if (rte_random_bytes(rnd, sizeof rnd) != 0)
        memset(rnd, 0, sizeof rnd);
    rte_hex_encode(rnd, sizeof rnd, hex);
    snprintf(out, 101, "%.60s-%s-%s", w->o.source, seq, hex);
}

/*
 * register c's Stedi batch for polling, with the members of rs (how its
 * polled results find their cache entries), and close the claim: 0, or
 * -1 + err
 */
static int finish_submitted(rte_warm *w, rte_redis *r, const char *owner, const struct claim *c,
                            const struct resolved *rs, int64_t submitted_ms, char *err,
                            size_t errlen)
{
    rte_batch_info bi = {.batch_id = c->batch_id,
                         .source = w->o.source,
                         .items = rs->n,
                         .submitted_ms = submitted_ms,
                         .members = rs->members,
                         .nmembers = rs->n};
    const char *f[] = {"state", "done", "outcome", "submitted"};

    if (rte_batch_registry_register(r, &w->bo, &bi, rte_clock_now_ms(), err, errlen) != 0)
        return -1;
    return update(w, r, owner, c, "done", real_ms(w->bo.keep_ms), f, 4, err, errlen) < 0 ? -1 : 0;
}

/*
 * close claim c without a batch at Stedi, with outcome why; its members
 * are forgotten as queued first (while its list still exists), so their
 * next request queues them again
 */
static int drop(rte_warm *w, rte_redis *r, const char *owner, const struct claim *c,
                const char *why, rte_warm_submitted *out, char *err, size_t errlen)
{
    const char *f[] = {"state", "done", "outcome", why};
    char ttl[24];
    const char *argv[3 + 3] = {NULL, NULL, NULL, ttl, w->o.prefix, c->seq};
    redisReply *rep;

    snprintf(out->outcome, sizeof out->outcome, "%s", why);
    snprintf(ttl, sizeof ttl, "%lld", (long long)real_ms(w->o.member_ttl_ms));
    rep = eval_str(r, release_lua, 0, argv, 6, err, errlen);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    return update(w, r, owner, c, "done", real_ms(w->bo.keep_ms), f, 4, err, errlen) < 0 ? -1 : 1;
}

static void resolved_free(struct resolved *rs)
{
    free(rs->items);
    free(rs->stis);
    free(rs->keys);
    free(rs->members);
    free(rs->sources);
    if (rs->keep)
        freeReplyObject(rs->keep);
    memset(rs, 0, sizeof *rs);
}

/*
 * the members of batch c (a list of member, source pairs) resolved in snap
 * into rs (caller frees with resolved_free); the count, -1 + err. The list
 * never changes once sealed, so a resolution repeated after a crash gives
 * every member the submitter id it was submitted with.
 */
static int resolve(rte_warm *w, rte_redis *r, const struct claim *c,
                   const rte_member_snapshot *snap, struct resolved *rs, char *err, size_t errlen)
{
    redisReply *rep = rte_redis_cmd(r, err, errlen, "LRANGE %s:b:%s 0 -1", w->o.prefix, c->seq);
    size_t pairs;
    int n = 0;

    memset(rs, 0, sizeof *rs);
    if (rep == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2) {
        freeReplyObject(rep);
        return 0;
    }
    rs->keep = rep; /* the sources point into it */
    pairs = rep->elements / 2;
    rs->items = calloc(pairs, sizeof *rs->items);
    rs->stis = calloc(pairs, sizeof *rs->stis);
    rs->keys = calloc(pairs, sizeof *rs->keys);
    rs->members = calloc(pairs, sizeof *rs->members);
    rs->sources = calloc(pairs, sizeof *rs->sources);
    if (!rs->items || !rs->stis || !rs->keys || !rs->members || !rs->sources) {
        snprintf(err, errlen, "warm: out of memory for %zu checks", pairs);
        resolved_free(rs);
        return -1;
    }
    for (size_t i = 0; i < pairs; i++) {
        const rte_member *m =
            snap ? rte_member_snapshot_find(snap, rep->element[2 * i]->str) : NULL;
        if (m == NULL || rte_cache_key(w->o.dedup_secret, m->member_id, m->trading_partner_id,
                                       rs->keys[n], sizeof rs->keys[n]) != 0) {
            rs->unresolved++;
            continue;
        }
        snprintf(rs->stis[n], sizeof rs->stis[n], "w%d", n);
        rs->items[n] = (rte_stedi_check){.trading_partner_id = m->trading_partner_id,
                                         .member_id = m->member_id,
                                         .first_name = m->first_name,
                                         .last_name = m->last_name,
                                         .date_of_birth = m->date_of_birth,
                                         .submitter_id = rs->stis[n]};
        rs->members[n] = (rte_batch_member){rs->stis[n], rs->keys[n], "30"};
        rs->sources[n] = rep->element[2 * i + 1]->str;
        n++;
    }
    rs->n = n;
    return n;
}

/* record c's Stedi batch id and register it; the caller reports it (1), -1 + err */
static int submitted(rte_warm *w, rte_redis *r, const char *owner, struct claim *c,
                     const struct resolved *rs, rte_warm_submitted_fn fn, void *arg,
                     rte_warm_submitted *out, char *err, size_t errlen)
{
    char nitems[12];
    const char *s[] = {"state", "submitted", "batch_id", c->batch_id, "items", nitems};
    int up;

    snprintf(out->batch_id, sizeof out->batch_id, "%s", c->batch_id);
    snprintf(out->outcome, sizeof out->outcome, "submitted");
    snprintf(nitems, sizeof nitems, "%d", rs->n);
    up = update(w, r, owner, c, "set", 0, s, 6, err, errlen);
    if (up == 0) {
        /* our lease ran out during the call: the claimant that took over
           resubmits under the same name, is told it exists, finds it by name
           and registers it - registering it here too would do it twice */
        rte_log_warn("warm: Stedi batch %s (%s) is left to the claimant that took batch %s over",
                     c->batch_id, c->name, c->seq);
        return 1;
    }
    if (up < 0 || finish_submitted(w, r, owner, c, rs, out->submitted_ms, err, errlen) != 0) {
        rte_log_error("warm: Stedi batch %s (%d checks) submitted but not recorded: %s; the next "
                      "claimant registers it",
                      c->batch_id, rs->n, err);
        return -1;
    }
    if (fn)
        fn(arg, out, rs->items, rs->sources, rs->n);
    return 1;
}

/* claim c back in the queue after delay_ms with fields f; 1, -1 + err */
static int later(rte_warm *w, rte_redis *r, const char *owner, const struct claim *c,
                 const char *outcome, int64_t delay_ms, const char *const *f, int nf,
                 rte_warm_submitted *out, char *err, size_t errlen)
{
    snprintf(out->outcome, sizeof out->outcome, "%s", outcome);
    return update(w, r, owner, c, "retry", delay_ms, f, nf, err, errlen) < 0 ? -1 : 1;
}

/*
 * c's batch exists at Stedi under c->name (Stedi said 409 to the name) but
 * its id was never read: look for it among the account's polled results
 * (their items carry batchName), and register it once found. Until one of
 * its checks completes, look again after retry_delay_ms; after
 * RTE_WARM_ORPHAN_MS with nothing found, drop it as unknown.
 */
#define RTE_WARM_ORPHAN_MS (26 * HOUR_MS) /* Stedi retries a check at most 24 h */
static int find_orphan(rte_warm *w, rte_redis *r, const char *owner, struct claim *c,
                       const struct resolved *rs, rte_warm_submitted_fn fn, void *arg,
                       rte_warm_submitted *out, char *err, size_t errlen)
{
    const char *f[] = {"state", "orphan"};
    char serr[512];
    int64_t now = rte_clock_now_ms();
    int found = rte_stedi_find_batch(w->stedi, c->name, c->submit_ms - MIN_MS, 50, c->batch_id,
                                     sizeof c->batch_id, serr, sizeof serr);

    if (found == 1) {
        rte_log_info("warm: batch %s (%s): found at Stedi as %s; registered", c->seq, c->name,
                     c->batch_id);
        return submitted(w, r, owner, c, rs, fn, arg, out, err, errlen);
    }
    if (found == 0 && now - c->submit_ms > RTE_WARM_ORPHAN_MS) {
        rte_log_error("warm: batch %s (%s): Stedi says the name exists but none of its checks "
                      "came back in %lld h; dropped as unknown",
                      c->seq, c->name, (long long)(RTE_WARM_ORPHAN_MS / HOUR_MS));
        return drop(w, r, owner, c, "unknown", out, err, errlen);
    }
    if (found < 0)
        rte_log_warn("warm: batch %s (%s): looking for it at Stedi: %s", c->seq, c->name, serr);
    return later(w, r, owner, c, "orphan", w->o.retry_delay_ms, f, 2, out, err, errlen);
}

/*
 * submit the members of claim c: under a new unique name, or - when c was
 * left "submitting" (its submitter died in the call, or did not learn the
 * outcome) - again under the name it was submitted with, so Stedi either
 * creates it now or answers 409 (it exists: find it). 1, or -1 + err on a
 * Redis error.
 */
static int submit(rte_warm *w, rte_redis *r, const rte_member_snapshot *snap, const char *owner,
                  struct claim *c, rte_warm_submitted_fn fn, void *arg, rte_warm_submitted *out,
                  char *err, size_t errlen)
{
    struct resolved rs;
    char attempts[12], since[24], serr[512];
    int n, rc = -1, src;
    int again = strcmp(c->state, "submitting") == 0 && c->name[0] != '\0';

    n = resolve(w, r, c, snap, &rs, err, errlen);
    out->unresolved = rs.unresolved;
    if (n < 0)
        goto out;
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->items = n;
    out->submitted_ms = rte_clock_now_ms();
    if (strcmp(c->state, "orphan") == 0) {
        rc = find_orphan(w, r, owner, c, &rs, fn, arg, out, err, errlen);
        goto out;
    }
    if (n == 0) {
        rc = drop(w, r, owner, c, "empty", out, err, errlen);
        goto out;
    }
    if (!again) {
        batch_name(w, c->seq, c->name);
        c->submit_ms = out->submitted_ms;
    }
    snprintf(out->name, sizeof out->name, "%s", c->name);
    snprintf(attempts, sizeof attempts, "%d", c->attempts + 1);
    snprintf(since, sizeof since, "%lld", (long long)c->submit_ms);
    const char *f[] = {"state",    "submitting", "name",      c->name,
                       "attempts", attempts,     "submit_ms", since};
    if (update(w, r, owner, c, "set", 0, f, 8, err, errlen) != 1) {
        rc = out->seq ? 1 : -1;
        snprintf(out->outcome, sizeof out->outcome, "lost");
        goto out;
    }
    if (again)
        rte_log_warn("warm: batch %s (%s, %d checks): its last submit's outcome is unknown; "
                     "submitted again under the same name (Stedi refuses a second batch of it)",
                     c->seq, c->name, n);
    src = stedi_submit(w, rs.items, (size_t)n, c->name, c->batch_id, sizeof c->batch_id, serr,
                       sizeof serr);
    if (src == 0) {
        rc = submitted(w, r, owner, c, &rs, fn, arg, out, err, errlen);
        goto out;
    }
    if (src == RTE_STEDI_E_EXISTS && again) {
        rc = find_orphan(w, r, owner, c, &rs, fn, arg, out, err, errlen);
        goto out;
    }
    if (c->attempts + 1 >= w->o.max_attempts) {
        rte_log_error("warm: batch %s (%d checks) not submitted after %d attempts, dropped as %s: "
                      "%s",
                      c->seq, n, c->attempts + 1, src == RTE_STEDI_E_UNKNOWN ? "unknown" : "failed",
                      serr);
        rc = drop(w, r, owner, c, src == RTE_STEDI_E_UNKNOWN ? "unknown" : "failed", out, err,
                  errlen);
        goto out;
    }
    if (src == RTE_STEDI_E_UNKNOWN) {
        /* it may exist: the retry submits the same name, which settles it */
        rte_log_warn("warm: batch %s (%s, %d checks): Stedi may or may not have created it (%s); "
                     "asking again under the same name in %lld ms",
                     c->seq, c->name, n, serr, (long long)w->o.retry_delay_ms);
        rc = later(w, r, owner, c, "retry", w->o.retry_delay_ms, NULL, 0, out, err, errlen);
        goto out;
    }
    rte_log_warn("warm: batch %s (%d checks) refused by Stedi (%s); retry in %lld ms", c->seq, n,
                 serr, (long long)w->o.retry_delay_ms);
    const char *g[] = {"state", ""};
    rc = later(w, r, owner, c, "retry", w->o.retry_delay_ms, g, 2, out, err, errlen);
out:
    resolved_free(&rs);
    return rc;
}

/* rte_warm_submit_next - any thread, the caller's connection; blocks in Stedi */
int rte_warm_submit_next(rte_warm *w, rte_redis *r, const rte_member_snapshot *snap,
                         const char *owner, rte_warm_submitted_fn fn, void *arg,
                         rte_warm_submitted *out, char *err, size_t errlen)
{
    struct claim c;
    int rc;

    memset(out, 0, sizeof *out);
    if (w->stedi == NULL) {
        snprintf(err, errlen, "warm: no Stedi client to submit with");
        return -1;
    }
    rc = claim(w, r, owner, &c, err, errlen);
    if (rc <= 0)
        return rc;
    out->seq = strtol(c.seq, NULL, 10);
    out->opened_ms = c.opened_ms;
    if (strcmp(c.state, "submitted") == 0) {
        /* its submitter died between Stedi's answer and the registration */
        snprintf(out->outcome, sizeof out->outcome, "submitted");
        snprintf(out->batch_id, sizeof out->batch_id, "%s", c.batch_id);
        out->items = c.items;
        struct resolved rs;
        if (resolve(w, r, &c, snap, &rs, err, errlen) < 0)
            return -1;
        rc = finish_submitted(w, r, owner, &c, &rs, 0, err, errlen) == 0 ? 1 : -1;
        resolved_free(&rs);
        return rc;
    }
    return submit(w, r, snap, owner, &c, fn, arg, out, err, errlen);
}
