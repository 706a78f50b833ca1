/*
 * jobs.c - durable jobs in Redis worked in chunks under leases (jobs.h).
 *
 * Each state change is one Lua script so that "is the lease still mine, has
 * the job ended" and the change itself are atomic. Lists are pushed in
 * pieces of at most PIECE items: Lua's unpack() is bounded by the C stack
 * (about 8,000 values), and a Stedi batch chunk is 10,000.
 */
#include "rte/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE 4000
#define KEY_MAX 192

static const char take_lua[] =
    "if redis.call('HGET', KEYS[1], 'ended') == '1' then return -3 end\n"
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
    "local d = redis.call('LRANGE', KEYS[3], 0, -1)\n"
    "if #d > 0 then return {1, redis.call('GET', KEYS[5]) or 'todo', d} end\n"
    "local it = redis.call('LRANGE', KEYS[4], 0, tonumber(ARGV[2]) - 1)\n"
    "if #it == 0 then return {0, ARGV[4], it} end\n"
    "redis.call('LTRIM', KEYS[4], #it, -1)\n"
    "local i = 1\n"
    "while i <= #it do\n"
    "  local j = math.min(i + 3999, #it)\n"
    "  redis.call('RPUSH', KEYS[3], unpack(it, i, j))\n"
    "  i = j + 1\n"
    "end\n"
    "redis.call('SET', KEYS[5], ARGV[4])\n"
    "return {0, ARGV[4], it}\n";

static const char finish_lua[] =
    "if redis.call('HGET', KEYS[1], 'ended') == '1' then redis.call('DEL', KEYS[3]) return -3 "
    "end\n"
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end\n"
    "local i = 2\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "local last = i + n - 1\n"
    "while i <= last do\n"
    "  local j = math.min(i + 3999, last)\n"
    "  redis.call('RPUSH', KEYS[4], unpack(ARGV, i, j))\n"
    "  i = j + 1\n"
    "end\n"
    "redis.call('DEL', KEYS[3])\n"
    "return 0\n";

/* KEYS: job, lease, due, ev, src, lists...; ARGV: owner|'', now, keep_ms, id, nf, pairs */
static const char end_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -4 end\n"
    "if redis.call('HGET', KEYS[1], 'ended') == '1' then return -3 end\n"
    "if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end\n"
    "local dropped = 0\n"
    "for k = 6, #KEYS do dropped = dropped + redis.call('LLEN', KEYS[k]); "
    "redis.call('DEL', KEYS[k]) end\n"
    "redis.call('DEL', KEYS[5])\n"
    "local i = 6\n"
    "for k = 1, tonumber(ARGV[5]) do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); "
    "i = i + 2 end\n"
    "redis.call('HSET', KEYS[1], 'ended', '1', 'ended_ms', ARGV[2])\n"
    "redis.call('ZREM', KEYS[3], ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[4], ARGV[3])\n"
    "if ARGV[1] ~= '' then redis.call('DEL', KEYS[2]) end\n"
    "return dropped\n";

static const char event_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('no such job') end\n"
    "local last = tonumber(redis.call('HGET', KEYS[1], 'evms') or '0')\n"
    "local ms = tonumber(ARGV[1])\n"
    "if ms < last then ms = last end\n"
    "local s = string.format('%d', ms)\n"
    "redis.call('HSET', KEYS[1], 'evms', s)\n"
    "local ttl = redis.call('PTTL', KEYS[1])\n"
    "local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], s .. '-*', 'u', ARGV[2])\n"
    "if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end\n"
    "return id\n";

static const char set_lua[] =
    "if redis.call('HGET', KEYS[1], 'ended') == '1' then return -3 end\n"
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end\n"
    "for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "return 0\n";

static const char lease_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if v then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";

static const char release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* rte_jobs_opts_init - any thread */
void rte_jobs_opts_init(rte_jobs_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->prefix, sizeof o->prefix, "rte:jobs");
    o->lease_ms = 30000;
    o->events_max = 10000;
    o->keep_ms = 7LL * 24 * 3600 * 1000;
}

static void key(char *out, const rte_jobs_opts *o, const char *id, const char *suffix)
{
    if (suffix)
        snprintf(out, KEY_MAX, "%s:j:%s:%s", o->prefix, id, suffix);
    else
        snprintf(out, KEY_MAX, "%s:j:%s", o->prefix, id);
}

static int valid_id(const char *id, char *err, size_t errlen)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= RTE_JOBS_ID_MAX || strchr(id, ':') != NULL) {
        snprintf(err, errlen, "jobs: job id '%.64s' must be 1..%d characters without ':'",
                 id ? id : "", RTE_JOBS_ID_MAX - 1);
        return -1;
    }
    return 0;
}

/* EVAL script with nkeys keys then args (all strings, lens may be NULL = strlen) */
static redisReply *eval(rte_redis *r, const char *script, int nkeys, int argc, const char **argv,
                        const size_t *lens, char *err, size_t errlen)
{
    int total = argc + 3;
    const char **av = malloc(sizeof *av * (size_t)total);
    size_t *al = malloc(sizeof *al * (size_t)total);
    char nk[12];
    redisReply *rep = NULL;

    if (av == NULL || al == NULL) {
        snprintf(err, errlen, "jobs: out of memory for %d arguments", argc);
        goto out;
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    av[0] = "EVAL";
    av[1] = script;
    av[2] = nk;
    for (int i = 0; i < 3; i++)
        al[i] = strlen(av[i]);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    rep = rte_redis_cmdargv(r, total, av, al, err, errlen);
out:
    free(av);
    free(al);
    return rep;
}

static long long int_reply(redisReply *rep)
{
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    freeReplyObject(rep);
    return v;
}

/* rte_jobs_create - caller's thread owns r */
int rte_jobs_create(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *const *fields,
                    int nf, const char *const *items, size_t n, int64_t due_ms, char *err,
                    size_t errlen)
{
    char kjob[KEY_MAX], ktodo[KEY_MAX], kdoing[KEY_MAX], ksrc[KEY_MAX], kev[KEY_MAX], kdue[KEY_MAX],
        due[24];
    size_t pieces = (n + PIECE - 1) / PIECE, ncmd = pieces + 3, k = 0;
    rte_redis_argv *cmds = NULL;
    redisReply **reps = NULL;
    const char **av = NULL, **hav = NULL;
    int rc = -1;

    if (valid_id(id, err, errlen) != 0)
        return -1;
    key(kjob, o, id, NULL);
    key(ktodo, o, id, "todo");
    key(kdoing, o, id, "doing");
    key(ksrc, o, id, "src");
    key(kev, o, id, "ev");
    snprintf(kdue, sizeof kdue, "%s:due", o->prefix);
    snprintf(due, sizeof due, "%lld", (long long)due_ms);
    cmds = calloc(ncmd, sizeof *cmds);
    reps = calloc(ncmd, sizeof *reps);
    av = malloc(sizeof *av * (n + 2 * pieces + 1));
    hav = malloc(sizeof *hav * (size_t)(2 * nf + 6));
    if (!cmds || !reps || !av || !hav) {
        snprintf(err, errlen, "jobs: out of memory for a job of %zu items", n);
        goto out;
    }
    const char *delv[6] = {"DEL", kjob, ktodo, kdoing, ksrc, kev};
    cmds[k++] = (rte_redis_argv){6, delv, NULL};
    const char **p = av;
    for (size_t i = 0; i < n; i += PIECE) {
        size_t m = n - i < PIECE ? n - i : PIECE;
        p[0] = "RPUSH";
        p[1] = ktodo;
        memcpy(p + 2, items + i, m * sizeof *p);
        cmds[k++] = (rte_redis_argv){(int)m + 2, p, NULL};
        p += m + 2;
    }
    hav[0] = "HSET";
    hav[1] = kjob;
    for (int i = 0; i < 2 * nf; i++)
        hav[2 + i] = fields[i];
    hav[2 + 2 * nf] = "ended";
    hav[3 + 2 * nf] = "0";
    cmds[k++] = (rte_redis_argv){2 * nf + 4, hav, NULL};
    const char *zv[] = {"ZADD", kdue, due, id};
    cmds[k++] = (rte_redis_argv){4, zv, NULL};
    /* argvlen NULL: rte_redis_pipeline needs lengths, so build them */
    size_t *lens = NULL;
    size_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += (size_t)cmds[i].argc;
    lens = malloc(sizeof *lens * total);
    if (lens == NULL) {
        snprintf(err, errlen, "jobs: out of memory for a job of %zu items", n);
        goto out;
    }
    size_t *lp = lens;
    for (size_t i = 0; i < k; i++) {
        for (int j = 0; j < cmds[i].argc; j++)
            lp[j] = strlen(cmds[i].argv[j]);
        cmds[i].argvlen = lp;
        lp += cmds[i].argc;
    }
    rc = rte_redis_pipeline(r, (int)k, cmds, reps, err, errlen);
    for (size_t i = 0; rc == 0 && i < k; i++)
        if (reps[i] && reps[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "jobs: creating %s: %.200s", id, reps[i]->str);
            rc = -1;
        }
    for (size_t i = 0; i < k; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
    free(lens);
out:
    free(cmds);
    free(reps);
    free(av);
    free(hav);
    return rc;
}

/* rte_jobs_exists - caller's thread owns r */
int rte_jobs_exists(rte_redis *r, const rte_jobs_opts *o, const char *id, char *err, size_t errlen)
{
    char k[KEY_MAX];
    redisReply *rep;

    if (valid_id(id, err, errlen) != 0)
        return 0;
    key(k, o, id, NULL);
    rep = rte_redis_cmd(r, err, errlen, "EXISTS %s", k);
    if (rep == NULL)
        return -1;
    return int_reply(rep) > 0 ? 1 : 0;
}

/* rte_jobs_due - caller's thread owns r */
int rte_jobs_due(rte_redis *r, const rte_jobs_opts *o, int64_t now_ms, char (*ids)[RTE_JOBS_ID_MAX],
                 int max, char *err, size_t errlen)
{
    redisReply *rep = rte_redis_cmd(r, err, errlen, "ZRANGEBYSCORE %s:due -inf %lld LIMIT 0 %d",
                                    o->prefix, (long long)now_ms, max);
    int n = 0;

    if (rep == NULL)
        return -1;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && n < max; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING && rep->element[i]->len < RTE_JOBS_ID_MAX)
            snprintf(ids[n++], RTE_JOBS_ID_MAX, "%s", rep->element[i]->str);
    freeReplyObject(rep);
    return n;
}

/* rte_jobs_reschedule - caller's thread owns r */
int rte_jobs_reschedule(rte_redis *r, const rte_jobs_opts *o, const char *id, int64_t due_ms,
                        char *err, size_t errlen)
{
    redisReply *rep =
        rte_redis_cmd(r, err, errlen, "ZADD %s:due XX %lld %s", o->prefix, (long long)due_ms, id);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* rte_jobs_lease - caller's thread owns r */
int rte_jobs_lease(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                   char *err, size_t errlen)
{
    char k[KEY_MAX], ms[24];
    key(k, o, id, "lease");
    snprintf(ms, sizeof ms, "%lld", (long long)o->lease_ms);
    const char *argv[] = {k, owner, ms};
    redisReply *rep = eval(r, lease_lua, 1, 3, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    return int_reply(rep) == 1 ? 1 : 0;
}

/* rte_jobs_release - caller's thread owns r */
int rte_jobs_release(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                     char *err, size_t errlen)
{
    char k[KEY_MAX];
    key(k, o, id, "lease");
    const char *argv[] = {k, owner};
    redisReply *rep = eval(r, release_lua, 1, 2, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* rte_jobs_chunk_free - any thread */
void rte_jobs_chunk_free(rte_jobs_chunk *c)
{
    if (c->reply)
        freeReplyObject(c->reply);
    free(c->items);
    free(c->lens);
    memset(c, 0, sizeof *c);
}

/* rte_jobs_take - caller's thread owns r */
int rte_jobs_take(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                  const char *src, int n, rte_jobs_chunk *c, char *err, size_t errlen)
{
    char kjob[KEY_MAX], klease[KEY_MAX], kdoing[KEY_MAX], ksrc[KEY_MAX], klist[KEY_MAX], ms[24],
        nb[12];
    redisReply *rep, *items;

    memset(c, 0, sizeof *c);
    key(kjob, o, id, NULL);
    key(klease, o, id, "lease");
    key(kdoing, o, id, "doing");
    key(ksrc, o, id, "src");
    key(klist, o, id, src);
    snprintf(ms, sizeof ms, "%lld", (long long)o->lease_ms);
    snprintf(nb, sizeof nb, "%d", n);
    const char *argv[] = {kjob, klease, kdoing, klist, ksrc, owner, nb, ms, src};
    rep = eval(r, take_lua, 5, 9, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    if (rep->type == REDIS_REPLY_INTEGER) {
        long long v = rep->integer;
        freeReplyObject(rep);
        return v == -3 ? RTE_JOBS_E_ENDED : RTE_JOBS_E_LOST;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[2]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        snprintf(err, errlen, "jobs: unexpected reply taking a chunk of %s", id);
        return -1;
    }
    items = rep->element[2];
    c->reply = rep;
    c->resumed = (int)rep->element[0]->integer;
    snprintf(c->src, sizeof c->src, "%s",
             rep->element[1]->type == REDIS_REPLY_STRING ? rep->element[1]->str : src);
    c->n = items->elements;
    c->items = calloc(c->n + 1, sizeof *c->items);
    c->lens = calloc(c->n + 1, sizeof *c->lens);
    if (c->items == NULL || c->lens == NULL) {
        rte_jobs_chunk_free(c);
        snprintf(err, errlen, "jobs: out of memory for a chunk of %zu", items->elements);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++) {
        c->items[i] = items->element[i]->str;
        c->lens[i] = items->element[i]->len;
    }
    return (int)c->n;
}

/* rte_jobs_finish - caller's thread owns r */
int rte_jobs_finish(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                    const rte_jobs_finish_args *a, char *err, size_t errlen)
{
    char kjob[KEY_MAX], klease[KEY_MAX], kdoing[KEY_MAX], kreq[KEY_MAX], ni[12], ns[12], nr[12];
    size_t argc = 4 + 1 + 1 + 2 * (size_t)a->nincr + 1 + 2 * (size_t)a->nset + 1 + a->nrequeue;
    const char **argv = malloc(sizeof *argv * argc);
    size_t *lens = malloc(sizeof *lens * argc);
    redisReply *rep;
    size_t k = 0;
    int rc = -1;

    if (argv == NULL || lens == NULL) {
        snprintf(err, errlen, "jobs: out of memory");
        goto out;
    }
    key(kjob, o, id, NULL);
    key(klease, o, id, "lease");
    key(kdoing, o, id, "doing");
    key(kreq, o, id, a->requeue_to ? a->requeue_to : "none");
    snprintf(ni, sizeof ni, "%d", a->nincr);
    snprintf(ns, sizeof ns, "%d", a->nset);
    snprintf(nr, sizeof nr, "%zu", a->nrequeue);
    argv[k++] = kjob;
    argv[k++] = klease;
    argv[k++] = kdoing;
    argv[k++] = kreq;
    argv[k++] = owner;
    argv[k++] = ni;
    for (int i = 0; i < 2 * a->nincr; i++)
        argv[k++] = a->incr[i];
    argv[k++] = ns;
    for (int i = 0; i < 2 * a->nset; i++)
        argv[k++] = a->set[i];
    argv[k++] = nr;
    for (size_t i = 0; i < k; i++)
        lens[i] = strlen(argv[i]);
    for (size_t i = 0; i < a->nrequeue; i++) {
        argv[k] = a->requeue[i];
        lens[k++] = a->requeue_lens ? a->requeue_lens[i] : strlen(a->requeue[i]);
    }
    rep = eval(r, finish_lua, 4, (int)k, argv, lens, err, errlen);
    if (rep == NULL)
        goto out;
    long long v = int_reply(rep);
    rc = v == 0 ? 0 : v == -3 ? RTE_JOBS_E_ENDED : RTE_JOBS_E_LOST;
out:
    free(argv);
    free(lens);
    return rc;
}

/* rte_jobs_set - caller's thread owns r */
int rte_jobs_set(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                 const char *const *fields, int nf, char *err, size_t errlen)
{
    char kjob[KEY_MAX], klease[KEY_MAX];
    const char **argv = malloc(sizeof *argv * (size_t)(3 + 2 * nf));
    redisReply *rep;
    int rc = -1;

    if (argv == NULL) {
        snprintf(err, errlen, "jobs: out of memory");
        return -1;
    }
    key(kjob, o, id, NULL);
    key(klease, o, id, "lease");
    argv[0] = kjob;
    argv[1] = klease;
    argv[2] = owner;
    for (int i = 0; i < 2 * nf; i++)
        argv[3 + i] = fields[i];
    rep = eval(r, set_lua, 2, 3 + 2 * nf, argv, NULL, err, errlen);
    if (rep != NULL) {
        long long v = int_reply(rep);
        rc = v == 0 ? 0 : v == -3 ? RTE_JOBS_E_ENDED : RTE_JOBS_E_LOST;
    }
    free(argv);
    return rc;
}

/* rte_jobs_len - caller's thread owns r */
long rte_jobs_len(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *name, char *err,
                  size_t errlen)
{
    char k[KEY_MAX];
    key(k, o, id, name);
    redisReply *rep = rte_redis_cmd(r, err, errlen, "LLEN %s", k);
    if (rep == NULL)
        return -1;
    return (long)int_reply(rep);
}

/* rte_jobs_end - caller's thread owns r */
long rte_jobs_end(rte_redis *r, const rte_jobs_opts *o, const char *id, const char *owner,
                  const char *const *fields, int nf, const char *const *lists, int nlists,
                  int64_t now_ms, char *err, size_t errlen)
{
    char kjob[KEY_MAX], klease[KEY_MAX], kdue[KEY_MAX], kev[KEY_MAX], ksrc[KEY_MAX],
        kdoing[KEY_MAX], now[24], keep[24], nfs[12];
    char(*kl)[KEY_MAX] = NULL;
    const char **argv = NULL;
    long rc = -1;
    int k = 0;

    if (valid_id(id, err, errlen) != 0)
        return -1;
    kl = calloc((size_t)nlists + 1, sizeof *kl);
    argv = malloc(sizeof *argv * (size_t)(6 + nlists + 5 + 2 * nf + 1));
    if (kl == NULL || argv == NULL) {
        snprintf(err, errlen, "jobs: out of memory");
        goto out;
    }
    key(kjob, o, id, NULL);
    key(klease, o, id, "lease");
    snprintf(kdue, sizeof kdue, "%s:due", o->prefix);
    key(kev, o, id, "ev");
    key(ksrc, o, id, "src");
    key(kdoing, o, id, "doing");
    for (int i = 0; i < nlists; i++)
        key(kl[i], o, id, lists[i]);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(keep, sizeof keep, "%lld", (long long)o->keep_ms);
    snprintf(nfs, sizeof nfs, "%d", nf);
    argv[k++] = kjob;
    argv[k++] = klease;
    argv[k++] = kdue;
    argv[k++] = kev;
    argv[k++] = ksrc;
    argv[k++] = kdoing;
    for (int i = 0; i < nlists; i++)
        argv[k++] = kl[i];
    int nkeys = k;
    argv[k++] = owner ? owner : "";
    argv[k++] = now;
    argv[k++] = keep;
    argv[k++] = id;
    argv[k++] = nfs;
    for (int i = 0; i < 2 * nf; i++)
        argv[k++] = fields[i];
    redisReply *rep = eval(r, end_lua, nkeys, k, argv, NULL, err, errlen);
    if (rep == NULL)
        goto out;
    rc = (long)int_reply(rep);
    if (rc == -4) {
        snprintf(err, errlen, "jobs: no job %s", id);
        rc = -1;
    } else if (rc == -3) {
        rc = RTE_JOBS_E_ENDED;
    } else if (rc == -2) {
        rc = RTE_JOBS_E_LOST;
    }
out:
    free(kl);
    free(argv);
    return rc;
}

/* rte_jobs_event - caller's thread owns r */
int rte_jobs_event(rte_redis *r, const rte_jobs_opts *o, const char *id, const void *payload,
                   size_t len, int64_t now_ms, char *evid, char *err, size_t errlen)
{
    char kjob[KEY_MAX], kev[KEY_MAX], now[24], max[12];
    key(kjob, o, id, NULL);
    key(kev, o, id, "ev");
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(max, sizeof max, "%d", o->events_max);
    const char *argv[] = {kjob, kev, now, (const char *)payload, max};
    size_t lens[] = {strlen(kjob), strlen(kev), strlen(now), len, strlen(max)};
    redisReply *rep = eval(r, event_lua, 2, 5, argv, lens, err, errlen);
    if (rep == NULL)
        return -1;
    if (evid)
        snprintf(evid, RTE_JOBS_EVID_MAX, "%s", rep->type == REDIS_REPLY_STRING ? rep->str : "");
    freeReplyObject(rep);
    return 0;
}

/* rte_jobs_events_after - caller's thread owns r */
redisReply *rte_jobs_events_after(rte_redis *r, const rte_jobs_opts *o, const char *id,
                                  const char *after, int max, char *err, size_t errlen)
{
    char kev[KEY_MAX], from[RTE_JOBS_EVID_MAX + 2];
    key(kev, o, id, "ev");
    if (after == NULL || after[0] == '\0')
        snprintf(from, sizeof from, "-");
    else
        snprintf(from, sizeof from, "(%s", after);
    return rte_redis_cmd(r, err, errlen, "XRANGE %s %s + COUNT %d", kev, from, max);
}

/* rte_jobs_get - caller's thread owns r */
redisReply *rte_jobs_get(rte_redis *r, const rte_jobs_opts *o, const char *id, char *err,
                         size_t errlen)
{
    char k[KEY_MAX];
    if (valid_id(id, err, errlen) != 0)
        return NULL;
    key(k, o, id, NULL);
    return rte_redis_cmd(r, err, errlen, "HGETALL %s", k);
}

/* rte_jobs_field - pure */
const char *rte_jobs_field(const redisReply *h, const char *name, const char *def)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY)
        return def;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    return def;
}

/* rte_jobs_field_ll - pure */
long long rte_jobs_field_ll(const redisReply *h, const char *name, long long def)
{
    const char *v = rte_jobs_field(h, name, NULL);
    char *end;
    if (v == NULL)
        return def;
    long long x = strtoll(v, &end, 10);
    return end == v ? def : x;
}
