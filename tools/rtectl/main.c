/*
 * rtectl - operator's command line for the shared state of the suite.
 *
 *   rtectl key MEMBER_ID TRADING_PARTNER       the cache key (keyed hash; no raw id)
 *   rtectl get MEMBER_ID TRADING_PARTNER       the cache entry, as stored, plus freshness
 *   rtectl warm --members FILE [--first N] [--offset K] [--source S] [--submit]
 *                                              queue members [K, K+N) of a member-gen
 *                                              snapshot in the shared warming queue
 *                                              (libcommon warm, as cache-warmer does) and
 *                                              seal the window; with --submit, submit
 *                                              every sealed batch from here as Stedi
 *                                              batches (<source>-<seq>-<random>) and
 *                                              register them for webhook-receiver
 *   rtectl batch BATCH_ID                      a registered batch: state, cursor, progress
 *   rtectl batch submit|status|list|watch|cancel ...
 *                                              batch-rpc's BatchEligibilityService over
 *                                              gRPC (rtectl_batch.c)
 *   rtectl slots                               real-time slots in use, by class
 *
 * Settings come from the same keys and RTE_* variables as the services
 * (--config FILE, then the environment): redis.url, cache.*, stedi.*,
 * slots.*, batch_registry.*. Output is one JSON object on stdout. Exit 0 on
 * success, 1 on bad usage or configuration, 2 when the operation failed
 * (the message says why), 3 for "not found".
 *
 * rtectl only uses libcommon's public modules, so what it reads and writes is
 * exactly what the services read and write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rte/batch_registry.h"
#include "rte/cache_entry.h"
#include "rte/clock.h"
#include "rte/config.h"
#include "rte/log.h"
#include "rte/member_dir.h"
#include "rte/redis.h"
#include "rte/slots.h"
#include "rte/stedi.h"
#include "rtectl_batch.h"
#include "rte/warm.h"

static rte_config *cfg;

static void usage(void)
{
    fprintf(stderr, "usage: rtectl [--config FILE] key|get MEMBER_ID TRADING_PARTNER\n"
                    "       rtectl [--config FILE] warm --members FILE [--first N] [--offset K] "
                    "[--source S] [--submit]\n"
                    "       rtectl [--config FILE] batch BATCH_ID\n"
                    "       rtectl batch submit|status|list|watch|cancel ... (rtectl batch "
                    "submit --help)\n"
                    "       rtectl [--config FILE] slots\n");
    exit(1);
}

static void print_json(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static int fail(int code, const char *what, const char *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", what);
    cJSON_AddStringToObject(o, "message", err);
    print_json(o);
    return code;
}

static rte_redis *redis_conn(void)
{
    char err[256];
    rte_redis *r = rte_redis_new(rte_config_str(cfg, "redis.url", rte_redis_default_url()), 2000,
                                 err, sizeof err);
    if (r == NULL)
        rte_fatal("config: key 'redis.url' (RTE_REDIS_URL): %s", err);
    return r;
}

static void cache_settings(rte_cache_settings *cs)
{
    char err[256];
    if (rte_cache_settings_from_config(cfg, cs, err, sizeof err) != 0)
        rte_fatal("%s", err);
}

static int cmd_key(const char *member, const char *tp)
{
    rte_cache_settings cs;
    char key[RTE_CACHE_KEY_MAX];
    cJSON *o;

    cache_settings(&cs);
    if (rte_cache_key(cs.member_key_secret, member, tp, key, sizeof key) != 0)
        return fail(2, "bad_input", "trading partner id too long for a cache key");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    print_json(o);
    return 0;
}

static int cmd_get(const char *member, const char *tp)
{
    rte_cache_settings cs;
    rte_cache_entry e;
    char key[RTE_CACHE_KEY_MAX], err[256], *json;
    rte_redis *r;
    cJSON *o;
    int rc;

    cache_settings(&cs);
    if (rte_cache_key(cs.member_key_secret, member, tp, key, sizeof key) != 0)
        return fail(2, "bad_input", "trading partner id too long for a cache key");
    r = redis_conn();
    rc = rte_cache_get(r, key, &e, err, sizeof err);
    rte_redis_free(r);
    if (rc < 0)
        return fail(2, "redis", err);
    if (rc == 0)
        return fail(3, "not_found", key);
    json = rte_cache_entry_encode(&e);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddItemToObject(o, "entry", cJSON_Parse(json));
    cJSON_AddBoolToObject(o, "fresh", rte_cache_entry_is_fresh(&e, rte_clock_now_ms()));
    cJSON_AddNumberToObject(o, "age_seconds",
                            (double)rte_cache_entry_age_s(&e, rte_clock_now_ms()));
    free(json);
    print_json(o);
    return 0;
}

struct warm_args {
    const char *members, *source;
    long first, offset;
    int submit;
};

/* --source as a Stedi batch name prefix: its [A-Za-z0-9_-] characters */
static void name_chars(const char *src, char *dst, size_t cap)
{
    size_t n = 0;

    for (; *src && n + 1 < cap; src++)
        if ((*src >= 'a' && *src <= 'z') || (*src >= 'A' && *src <= 'Z') ||
            (*src >= '0' && *src <= '9') || *src == '-' || *src == '_')
            dst[n++] = *src;
    dst[n] = '\0';
}

/*
 * warm: members [offset, offset + first) of the snapshot go through the
 * warming path every service uses (libcommon warm): queued in the shared
 * queue (members queued within warm.member_ttl are reported as duplicates),
 * the window sealed, and with --submit every sealed batch submitted and
 * registered from here, resolved in the same snapshot.
 */
static int cmd_warm(const struct warm_args *a)
{
    char err[512], owner[64];
    rte_member_dir *dir;
    rte_member_snapshot *snap;
    rte_warm_item *items = NULL;
    rte_batch_registry_opts bo;
    rte_warm_opts wo;
    rte_warm *w = NULL;
    rte_stedi *st = NULL;
    rte_redis *r = NULL;
    size_t n = 0, count;
    int rc = 2, queued = 0, dups = 0;
    cJSON *o = NULL, *batches;

    if (rte_batch_registry_opts_from_config(cfg, &bo, err, sizeof err) != 0 ||
        rte_warm_opts_from_config(cfg, &wo, err, sizeof err) != 0)
        rte_fatal("%s", err);
    name_chars(a->source, wo.source, sizeof wo.source);
    if (wo.source[0] == '\0')
        return fail(1, "bad_input", "--source must hold at least one of [A-Za-z0-9_-]");
    dir = rte_member_dir_new(a->members, err, sizeof err);
    if (dir == NULL)
        rte_fatal("--members %s: %s", a->members, err);
    snap = rte_member_dir_acquire(dir);
    count = rte_member_snapshot_count(snap);
    if (a->offset < 0 || (size_t)a->offset >= count || a->first < 1 || a->first > 10000) {
        rc = fail(1, "bad_input", "--offset must fall inside the snapshot and --first be 1..10000");
        goto out;
    }
    items = calloc((size_t)a->first, sizeof *items);
    if (items == NULL)
        rte_fatal("out of memory for %ld members", a->first);
    for (size_t i = (size_t)a->offset; i < count && n < (size_t)a->first; i++)
        items[n++] = (rte_warm_item){rte_member_snapshot_at(snap, i)->member_id, NULL, -1};
    if (a->submit) {
        st = rte_stedi_from_config(cfg, err, sizeof err);
        if (st == NULL)
            rte_fatal("%s", err);
    }
    w = rte_warm_new(&wo, st, &bo, err, sizeof err);
    if (w == NULL)
        rte_fatal("%s", err);
    r = redis_conn();
    if (rte_warm_enqueue(w, r, items, (int)n, a->source, rte_clock_now_ms(), err, sizeof err) !=
            0 ||
        rte_warm_seal(w, r, rte_clock_now_ms(), 1, err, sizeof err) < 0) {
        rc = fail(2, "redis", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        queued += items[i].verdict == RTE_WARM_QUEUED;
        dups += items[i].verdict == RTE_WARM_DUP_MEMBER;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", wo.source);
    cJSON_AddNumberToObject(o, "queued", queued);
    cJSON_AddNumberToObject(o, "duplicates", dups);
    batches = cJSON_AddArrayToObject(o, "batches");
    snprintf(owner, sizeof owner, "rtectl-%ld", (long)getpid());
    long submitted = 0;
    for (int more = a->submit; more;) {
        rte_warm_submitted out;
        more = rte_warm_submit_next(w, r, snap, owner, NULL, NULL, &out, err, sizeof err);
        if (more < 0) {
            cJSON_Delete(o);
            o = NULL;
            rc = fail(2, "warm", err);
            goto out;
        }
        if (more == 0)
            break;
        cJSON *b = cJSON_CreateObject();
        cJSON_AddNumberToObject(b, "seq", (double)out.seq);
        cJSON_AddStringToObject(b, "outcome", out.outcome);
        cJSON_AddStringToObject(b, "batch_id", out.batch_id);
        cJSON_AddStringToObject(b, "name", out.name);
        cJSON_AddNumberToObject(b, "items", out.items);
        cJSON_AddNumberToObject(b, "unresolved", out.unresolved);
        cJSON_AddItemToArray(batches, b);
        if (strcmp(out.outcome, "submitted") == 0) {
            if (submitted == 0) { /* the first batch, at the top level for scripts */
                cJSON_AddStringToObject(o, "batch_id", out.batch_id);
                cJSON_AddStringToObject(o, "name", out.name);
            }
            submitted += out.items;
        }
    }
    cJSON_AddNumberToObject(o, "items", (double)submitted);
    print_json(o);
    o = NULL;
    rc = 0;
out:
    cJSON_Delete(o);
    if (r)
        rte_redis_free(r);
    rte_warm_free(w);
    rte_stedi_free(st);
    free(items);
    rte_member_snapshot_release(snap);
    rte_member_dir_free(dir);
    return rc;
}

static int cmd_batch(const char *id)
{
    rte_batch_registry_opts bo;
    rte_batch_record rec;
    char err[256];
    rte_redis *r;
    cJSON *o;
    int rc;

    if (rte_batch_registry_opts_from_config(cfg, &bo, err, sizeof err) != 0)
        rte_fatal("%s", err);
    r = redis_conn();
    rc = rte_batch_registry_get(r, &bo, id, &rec, err, sizeof err);
    rte_redis_free(r);
    if (rc < 0)
        return fail(2, "redis", err);
    if (rc == 0)
        return fail(3, "not_found", id);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "batch_id", rec.batch_id);
    cJSON_AddStringToObject(o, "source", rec.source);
    cJSON_AddNumberToObject(o, "items", rec.items);
    cJSON_AddNumberToObject(o, "polled", (double)rec.polled);
    cJSON_AddNumberToObject(o, "checks", rec.checks);
    cJSON_AddStringToObject(o, "cursor", rec.cursor);
    cJSON_AddBoolToObject(o, "done", rec.done);
    cJSON_AddStringToObject(o, "done_reason", rec.done_reason);
    print_json(o);
    return 0;
}

static int cmd_slots(void)
{
    rte_slots_opts so;
    rte_slots *s;
    char err[256];
    int by[RTE_SLOT_NCLASSES], total;
    cJSON *o;
    int64_t v;

    rte_slots_opts_init(&so);
    so.prefix = rte_config_str(cfg, "slots.prefix", so.prefix);
    if (rte_config_int_try(cfg, "slots.limit", so.limit, 1, 1000, &v, err, sizeof err) != 0)
        rte_fatal("%s", err);
    so.limit = (int)v;
    so.reserve_interactive = so.reserve_interactive > so.limit ? so.limit : so.reserve_interactive;
    so.warming_cap = so.warming_cap > so.limit ? so.limit : so.warming_cap;
    so.batch_cap = so.batch_cap > so.limit ? so.limit : so.batch_cap;
    s = rte_slots_new(rte_config_str(cfg, "redis.url", rte_redis_default_url()), &so, err,
                      sizeof err);
    if (s == NULL)
        rte_fatal("%s", err);
    total = rte_slots_in_use(s, by);
    rte_slots_free(s);
    if (total < 0)
        return fail(2, "redis", "could not read the slot limiter (see log)");
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "limit", so.limit);
    cJSON_AddNumberToObject(o, "in_use", total);
    for (int c = 0; c < RTE_SLOT_NCLASSES; c++)
        cJSON_AddNumberToObject(o, rte_slot_class_name((enum rte_slot_class)c), by[c]);
    print_json(o);
    return 0;
}

static long num(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0')
        usage();
    return n;
}

int main(int argc, char **argv)
{
    char err[512];
    const char *path = getenv("RTE_CONFIG");
    int i = 1, rc;

    rte_log_init("rtectl", RTE_LOG_WARN);
    rte_clock_init_env();
    if (i + 1 < argc && strcmp(argv[i], "--config") == 0) {
        path = argv[i + 1];
        i += 2;
    }
    cfg = path && path[0] ? rte_config_load(path, err, sizeof err)
                          : rte_config_from_string("", err, sizeof err);
    if (cfg == NULL)
        rte_fatal("config: %s", err);
    if (i >= argc)
        usage();
    const char *cmd = argv[i++];
    if ((strcmp(cmd, "key") == 0 || strcmp(cmd, "get") == 0) && argc - i == 2) {
        rc = cmd[0] == 'k' ? cmd_key(argv[i], argv[i + 1]) : cmd_get(argv[i], argv[i + 1]);
    } else if (strcmp(cmd, "batch") == 0 && argc - i >= 1 && rtectl_batch_is_rpc(argv[i])) {
        rc = rtectl_batch_rpc(argc - i, argv + i);
    } else if (strcmp(cmd, "batch") == 0 && argc - i == 1) {
        rc = cmd_batch(argv[i]);
    } else if (strcmp(cmd, "slots") == 0 && argc == i) {
        rc = cmd_slots();
    } else if (strcmp(cmd, "warm") == 0) {
        struct warm_args a = {NULL, "rtectl", 100, 0, 0};
        while (i < argc) {
            const char *flag = argv[i++];
            if (strcmp(flag, "--submit") == 0)
                a.submit = 1;
            else if (i == argc)
                usage();
            else if (strcmp(flag, "--members") == 0)
                a.members = argv[i++];
            else if (strcmp(flag, "--first") == 0)
                a.first = num(argv[i++]);
            else if (strcmp(flag, "--offset") == 0)
                a.offset = num(argv[i++]);
            else if (strcmp(flag, "--source") == 0)
                a.source = argv[i++];
            else
                usage();
        }
        if (a.members == NULL)
            usage();
        rc = cmd_warm(&a);
    } else {
        usage();
    }
    rte_config_free(cfg);
    return rc;
}
