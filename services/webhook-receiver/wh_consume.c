/*
 * wh_consume.c - the one writer of batch results into the cache
 * (wh_consume.h).
 *
 * One message is applied in three round-trip phases: the applied check, the
 * compare-and-set of every successful result (rte_cache_put_many: one
 * script call per 64 entries, chunks of 128 spread over the writer pool), and
 * one pipeline for the per-batch record. Consecutive callback messages of
 * one Kafka batch go through the same phases together (apply_group), so a
 * run of 64 small callbacks costs a handful of round trips, not five each.
 * A crash between the phases redelivers the message; the puts are idempotent (same entry, same
 * cached_at) and the record uses sets keyed by check id, so the redelivery
 * changes nothing that was already right.
 *
 * Input policy (docs/input.md): an envelope is checked whole before
 * anything is written - strict JSON (rte_json_parse), its kind, content id
 * and batch id, the part numbers, and for a callback every result (ids,
 * status, eligibility, as the HTTP side checked them). One that fails goes
 * to rte.stedi.batch-results.dlq with the reason naming the field, and
 * nothing of it reaches the cache: only an envelope an older or foreign
 * producer wrote can fail here. A polled page is Stedi's own data: an item
 * Stedi answered badly (no submitter id, one with control characters, no
 * eligibility) is recorded as failed "invalid", and the page's other items
 * are written.
 *
 * Messages come in batches (wh_consume_batch, up to WH_CONSUME_BATCH): each
 * batch's cache_warming_events are produced asynchronously and the batch
 * waits once, at its end, for the delivery watermark to pass them (at most
 * wh.produce_timeout) before its offsets are stored and the per-batch
 * "event sent" markers are set. A failed or late delivery retries the
 * whole batch; the redelivery re-sends those events with the same event_id.
 */
#include "wh_consume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rte/batch_registry.h"
#include "rte/cache_entry.h"
#include "rte/clock.h"
#include "rte/input.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/stedi.h"
#include "rte/topics.h"
#include "wh.h"
#include "wh_writers.h"

/* what one message did, for the per-batch record */
struct apply {
    const char **ok_ids; /* written (or a newer entry was already there) */
    int nok;
    const char **bad_ids; /* failed, with reason */
    const char **bad_why;
    int nbad;
    long written, kept;
};

/* events of the batch in hand (consumer thread): produced, not yet acknowledged */
#define EV_MAX WH_CONSUME_BATCH /* one event per message at most */
struct events {
    uint64_t seq; /* the producer's sequence number after the last one */
    int n;
    char mark[EV_MAX][288]; /* rte:wh:event:<batch> to set once delivered */
};
static _Thread_local struct events *EV;

/* wait until Redis answers, up to wh.redis_wait (not while draining); 0 when back */
static int wait_for_redis(rte_redis *r)
{
    int64_t until = rte_clock_mono_ms() + WH.redis_wait_ms;
    do {
        if (rte_redis_ping(r) == 0)
            return 0;
        if (rte_service_draining())
            return -1;
        usleep(200 * 1000);
    } while (rte_clock_mono_ms() < until);
    return -1;
}

static int retry(rte_redis *r, char *reason, size_t rl, const char *what, const char *err)
{
    snprintf(reason, rl, "%s: %s", what, err);
    rte_log_warn("%s (%s); waiting for Redis, then the message is retried (offset not committed)",
                 what, err);
    wait_for_redis(r);
    return RTE_KAFKA_RETRY;
}

static const char *sfield(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* a number member as an integer; 0 when absent, not a number, or beyond 2^53 in size
 * (converting a larger double is undefined, and no time or count we write comes near) */
static int64_t nfield(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= -9007199254740992.0 &&
                   v->valuedouble <= 9007199254740992.0
               ? (int64_t)v->valuedouble
               : 0;
}

/*
 * a required id of a callback result: "results[3].member_id: ..."; 0, or -1
 * + why
 */
static int result_id(const cJSON *res, int i, const char *name, size_t maxlen, const char **out,
                     char *why, size_t wl)
{
    char bad[160];
    *out = sfield(res, name);
    if (*out == NULL) {
        snprintf(why, wl, "results[%d].%s: missing or not a string", i, name);
        return -1;
    }
    if (rte_input_id(*out, strlen(*out), maxlen, NULL, bad, sizeof bad) == 0)
        return 0;
    snprintf(why, wl, "results[%d].%s: %s", i, name, bad);
    return -1;
}

/*
 * map callback result i into it (no I/O): 0, or -1 + why when the result
 * is not one the HTTP side would have accepted (the envelope is poison)
 */
static int map_callback(const cJSON *res, int i, int64_t cached_at, wh_item *it, char *why,
                        size_t wl)
{
    char err[200];
    const char *st = sfield(res, "status");
    if (result_id(res, i, "check_id", RTE_INPUT_ID_MAX, &it->id, why, wl) != 0 ||
        result_id(res, i, "member_id", RTE_INPUT_ID_MAX, &it->member, why, wl) != 0 ||
        result_id(res, i, "trading_partner_id", RTE_INPUT_CODE_MAX, &it->partner, why, wl) != 0)
        return -1;
    if (st == NULL || (strcmp(st, "completed") != 0 && strcmp(st, "error") != 0)) {
        snprintf(why, wl, "results[%d].status: expected completed or error", i);
        return -1;
    }
    if (strcmp(st, "error") == 0) {
        it->fail = "payer_error";
        return 0;
    }
    if (rte_cache_entry_from_callback(cJSON_GetObjectItemCaseSensitive(res, "eligibility"),
                                      cached_at, &WH.cache.freshness, &it->entry, err,
                                      sizeof err) != 0) {
        snprintf(why, wl, "results[%d].%s", i, err);
        return -1;
    }
    return 0;
}

/* cached_at of a callback: when it completed, never later than its receipt */
static int64_t callback_time(const cJSON *env)
{
    int64_t received = nfield(env, "received_at_ms");
    int64_t cached_at = received > 0 ? received : rte_clock_now_ms();
    const char *ca = sfield(env, "completed_at");
    int64_t done_ms = -1;
    if (ca != NULL)
        rte_input_timestamp(ca, strlen(ca), &done_ms, NULL, NULL, 0); /* checked: envelope */
    return done_ms > 0 && done_ms < cached_at ? done_ms : cached_at;
}

/* the service types a member's check asked, from its registry record */
static void asked_of(const cJSON *member, rte_stedi_asked *asked)
{
    const cJSON *v;

    memset(asked, 0, sizeof *asked);
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(member, "service_types"))
    {
        if (asked->n < RTE_CACHE_SERVICE_TYPES_MAX && cJSON_IsString(v) &&
            strlen(v->valuestring) < sizeof asked->code[0])
            snprintf(asked->code[asked->n++], sizeof asked->code[0], "%s", v->valuestring);
    }
}

/*
 * map one polled item into it (no I/O): matched to its member through the
 * envelope's members map by the submitterTransactionIdentifier we set at
 * submit (the item itself names no member), read for the service types
 * that member's check asked. Errors[] items become error entries.
 */
static void map_item(const cJSON *item, const cJSON *members, int64_t fetched, wh_item *it)
{
    rte_stedi_item si;
    rte_stedi_asked asked;
    char why[200];
    const char *sti = sfield(item, "submitterTransactionIdentifier");
    const cJSON *m = sti ? cJSON_GetObjectItemCaseSensitive(members, sti) : NULL;

    it->id = sti ? sti : "?";
    if (sti == NULL ||
        rte_input_id(sti, strlen(sti), RTE_INPUT_ID_MAX, NULL, why, sizeof why) != 0) {
        it->id = "?"; /* not fit to be a field name in the batch record */
        it->fail = "invalid";
        return;
    }
    it->key = sfield(m, "key");
    if (it->key == NULL) {
        rte_log_warn("polled result %s matches no registered member; not cached", sti);
        it->fail = "unknown_item";
        return;
    }
    asked_of(m, &asked);
    if (rte_stedi_item_map(item, &asked, fetched, &WH.cache.freshness, &si, why, sizeof why) != 0) {
        rte_log_warn("polled result %s cannot be read (%s); not cached", sti, why);
        it->fail = "invalid";
        return;
    }
    it->entry = si.entry;
}

/*
 * wh_consume_map - the results of an envelope as items: their count; -1 +
 * why when the envelope is poison (not the expected shape, or a callback
 * result that breaks the input policy); -2 out of memory
 */
/* the list of results (callback) or items (poll page) of env; NULL + why when missing */
static const cJSON *results_of(const cJSON *env, const char *kind, char *why, size_t wl)
{
    int callback = strcmp(kind, WH_KIND_CALLBACK) == 0;
    const cJSON *list = callback ? cJSON_GetObjectItemCaseSensitive(env, "results")
                                 : cJSON_GetObjectItemCaseSensitive(
                                       cJSON_GetObjectItemCaseSensitive(env, "page"), "items");
    if (cJSON_IsArray(list))
        return list;
    snprintf(why, wl, "%s envelope without its %s array", kind,
             callback ? "results" : "page.items");
    return NULL;
}

/* map every element of list into items (zeroed, room for all); 0, or -1 + why (poison) */
static int map_list(const cJSON *env, const char *kind, const cJSON *list, wh_item *items,
                    char *why, size_t wl)
{
    int callback = strcmp(kind, WH_KIND_CALLBACK) == 0, i = 0;
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(env, "members");
    int64_t t = callback ? callback_time(env) : nfield(env, "fetched_at_ms");
    if (t <= 0)
        t = rte_clock_now_ms();
    const cJSON *x;
    cJSON_ArrayForEach(x, list)
    {
        if (callback && map_callback(x, i, t, &items[i], why, wl) != 0)
            return -1;
        if (!callback)
            map_item(x, members, t, &items[i]);
        i++;
    }
    return 0;
}

int wh_consume_map(const cJSON *env, const char *kind, wh_item **out, char *why, size_t wl)
{
    const cJSON *list = results_of(env, kind, why, wl);
    if (list == NULL)
        return -1;
    int n = cJSON_GetArraySize(list);
    wh_item *items = calloc((size_t)n + 1, sizeof *items);
    if (items == NULL) {
        snprintf(why, wl, "out of memory");
        return -2;
    }
    if (map_list(env, kind, list, items, why, wl) != 0) {
        free(items);
        return -1;
    }
    *out = items;
    return n;
}

/* the commands of one message's per-batch record and applied marker */
struct rec {
    char wkey[256], fkey[256], akey[256], ttl[24];
    const char **sadd, **hset;
    const char *e1[3], *e2[3], *mark[5];
};

/* into cmds (room for 5): their count, or -1 out of memory; free r->sadd and r->hset after */
static int rec_cmds(struct rec *r, const char *batch_id, const char *content_id,
                    const struct apply *a, rte_redis_argv *cmds)
{
    int ncmd = 0;
    snprintf(r->wkey, sizeof r->wkey, "rte:wh:batch:%s:written", batch_id);
    snprintf(r->fkey, sizeof r->fkey, "rte:wh:batch:%s:failed", batch_id);
    snprintf(r->akey, sizeof r->akey, "rte:wh:applied:%s", content_id);
    snprintf(r->ttl, sizeof r->ttl, "%lld", (long long)WH.stats_ttl_ms);
    r->sadd = calloc((size_t)a->nok + 2, sizeof *r->sadd);
    r->hset = calloc((size_t)a->nbad * 2 + 2, sizeof *r->hset);
    if (r->sadd == NULL || r->hset == NULL)
        return -1;
    if (a->nok > 0) {
        r->sadd[0] = "SADD";
        r->sadd[1] = r->wkey;
        memcpy(r->sadd + 2, a->ok_ids, (size_t)a->nok * sizeof *r->sadd);
        cmds[ncmd++] = (rte_redis_argv){a->nok + 2, r->sadd, NULL};
    }
    if (a->nbad > 0) {
        r->hset[0] = "HSET";
        r->hset[1] = r->fkey;
        for (int i = 0; i < a->nbad; i++) {
            r->hset[2 + 2 * i] = a->bad_ids[i];
            r->hset[3 + 2 * i] = a->bad_why[i];
        }
        cmds[ncmd++] = (rte_redis_argv){a->nbad * 2 + 2, r->hset, NULL};
    }
    const char *e1[] = {"PEXPIRE", r->wkey, r->ttl}, *e2[] = {"PEXPIRE", r->fkey, r->ttl};
    const char *mark[] = {"SET", r->akey, "1", "PX", r->ttl};
    memcpy(r->e1, e1, sizeof e1);
    memcpy(r->e2, e2, sizeof e2);
    memcpy(r->mark, mark, sizeof mark);
    cmds[ncmd++] = (rte_redis_argv){3, r->e1, NULL};
    cmds[ncmd++] = (rte_redis_argv){3, r->e2, NULL};
    cmds[ncmd++] = (rte_redis_argv){5, r->mark, NULL};
    return ncmd;
}

/* send n commands in one pipeline, every reply checked; 0 or -1 + err */
static int pipeline_checked(rte_redis *r, int n, const rte_redis_argv *cmds, char *err,
                            size_t errlen)
{
    redisReply **rep = calloc((size_t)n + 1, sizeof *rep);
    int rc = -1;
    if (rep == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rte_redis_pipeline(r, n, cmds, rep, err, errlen) == 0) {
        rc = 0;
        for (int i = 0; i < n; i++) {
            if (rep[i] != NULL && rep[i]->type == REDIS_REPLY_ERROR) {
                snprintf(err, errlen, "batch record: %s", rep[i]->str);
                rc = -1;
            }
            if (rep[i] != NULL)
                freeReplyObject(rep[i]);
        }
    }
    free(rep);
    return rc;
}

/* the per-batch record and the applied marker in one pipeline; 0 or -1 + err */
static int record(rte_redis *r, const char *batch_id, const char *content_id, const struct apply *a,
                  char *err, size_t errlen)
{
    struct rec rc_ = {0};
    rte_redis_argv cmds[5];
    int n = rec_cmds(&rc_, batch_id, content_id, a, cmds), rc = -1;
    if (n < 0)
        snprintf(err, errlen, "out of memory");
    else
        rc = pipeline_checked(r, n, cmds, err, errlen);
    free(rc_.sadd);
    free(rc_.hset);
    return rc;
}

/* 1 applied before, 0 not, -1 + err */
static int applied_before(rte_redis *r, const char *content_id, char *err, size_t errlen)
{
    char key[256];
    snprintf(key, sizeof key, "rte:wh:applied:%s", content_id);
    const char *argv[] = {"EXISTS", key};
    redisReply *rep = rte_redis_cmdargv(r, 2, argv, NULL, err, errlen);
    if (rep == NULL)
        return -1;
    int rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    return rc;
}

/* the event's counts from the replies to SCARD written and HVALS failed */
static void counts_of(const redisReply *scard, const redisReply *hvals, long *written,
                      cJSON *by_reason, long *failed)
{
    *written = scard->type == REDIS_REPLY_INTEGER ? (long)scard->integer : 0;
    *failed = 0;
    for (size_t i = 0; hvals->type == REDIS_REPLY_ARRAY && i < hvals->elements; i++) {
        const char *why = hvals->element[i]->str;
        cJSON *n = cJSON_GetObjectItemCaseSensitive(by_reason, why);
        if (n == NULL)
            cJSON_AddNumberToObject(by_reason, why, 1);
        else
            cJSON_SetNumberValue(n, n->valuedouble + 1);
        (*failed)++;
    }
}

/* the commands of an event's state: EXISTS its marker, SCARD written, HVALS failed */
struct ev_keys {
    char mkey[256], wkey[256], fkey[256];
    const char *a0[2], *a1[2], *a2[2];
};

static void ev_cmds(struct ev_keys *k, const char *batch_id, rte_redis_argv *cmds)
{
    snprintf(k->mkey, sizeof k->mkey, "rte:wh:event:%s", batch_id);
    snprintf(k->wkey, sizeof k->wkey, "rte:wh:batch:%s:written", batch_id);
    snprintf(k->fkey, sizeof k->fkey, "rte:wh:batch:%s:failed", batch_id);
    k->a0[0] = "EXISTS";
    k->a0[1] = k->mkey;
    k->a1[0] = "SCARD";
    k->a1[1] = k->wkey;
    k->a2[0] = "HVALS";
    k->a2[1] = k->fkey;
    cmds[0] = (rte_redis_argv){2, k->a0, NULL};
    cmds[1] = (rte_redis_argv){2, k->a1, NULL};
    cmds[2] = (rte_redis_argv){2, k->a2, NULL};
}

/*
 * one cache_warming_events event per batch: RTE_KAFKA_OK when sent (or
 * sent before), RTE_KAFKA_RETRY on a Redis or Kafka failure
 */
static int emit_event(rte_redis *r, const char *batch_id, const char *via, const char *submitter,
                      long total, redisReply *const *pre, char *reason, size_t rl)
{
    char err[512], ttl[24], id[256], ts[40];
    struct ev_keys k = {0};
    rte_redis_argv cmds[3];
    redisReply *got[3] = {0}, *const *rep = pre;
    ev_cmds(&k, batch_id, cmds);
    if (rep == NULL) { /* the state in one round trip, unless the caller fetched it */
        if (rte_redis_pipeline(r, 3, cmds, got, err, sizeof err) != 0)
            return retry(r, reason, rl, "event state", err);
        rep = got;
    }
    int sent = rep[0]->type == REDIS_REPLY_INTEGER && rep[0]->integer > 0;
    for (int i = 0; !sent && EV != NULL && i < EV->n; i++)
        sent = strcmp(EV->mark[i], k.mkey) == 0; /* already sent in this batch */
    long written = 0, failed = 0;
    cJSON *ev = sent ? NULL : cJSON_CreateObject();
    cJSON *by = sent ? NULL : cJSON_CreateObject();
    if (!sent)
        counts_of(rep[1], rep[2], &written, by, &failed);
    for (int i = 0; i < 3; i++)
        if (got[i] != NULL)
            freeReplyObject(got[i]);
    if (sent)
        return RTE_KAFKA_OK;
    const char *mkey = k.mkey;
    snprintf(id, sizeof id, "webhook-receiver:%s:results_cached", batch_id);
    rte_clock_format(rte_clock_now_ms(), ts, sizeof ts);
    cJSON_AddStringToObject(ev, "event_id", id);
    cJSON_AddStringToObject(ev, "event_type", "BATCH_RESULTS_CACHED");
    cJSON_AddStringToObject(ev, "occurred_at", ts);
    cJSON_AddStringToObject(ev, "batch_id", batch_id);
    cJSON_AddStringToObject(ev, "via", via);
    cJSON_AddStringToObject(ev, "source", submitter ? submitter : "");
    cJSON_AddNumberToObject(ev, "total", (double)total);
    cJSON_AddNumberToObject(ev, "written", (double)written);
    cJSON_AddNumberToObject(ev, "failed", (double)failed);
    cJSON_AddItemToObject(ev, "failed_by_reason", by);
    cJSON_AddStringToObject(ev, "service", "webhook-receiver");
    char *text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (EV != NULL && EV->n < EV_MAX) {
        /* asynchronous: the batch waits for the watermark once, at its end */
        rte_kafka_producer *p = rte_service_producer();
        const rte_kafka_header h[] = {{"rte-kind", "event", 5}};
        int rc = text && p ? rte_kafka_produce(p, RTE_TOPIC_CACHE_WARMING_EVENTS, batch_id,
                                               strlen(batch_id), text, strlen(text), h, 1, err,
                                               sizeof err)
                           : -1;
        cJSON_free(text);
        if (rc != 0) {
            snprintf(reason, rl, "cache_warming_events produce: %s", p ? err : "no producer");
            wh_count(WM.events, "failed", NULL);
            return RTE_KAFKA_RETRY;
        }
        EV->seq = rte_kafka_produced_seq(p);
        snprintf(EV->mark[EV->n++], sizeof EV->mark[0], "%s", mkey);
        return RTE_KAFKA_OK;
    }
    int rc = text ? wh_produce(RTE_TOPIC_CACHE_WARMING_EVENTS, "event", batch_id, text,
                               strlen(text), err, sizeof err)
                  : -1;
    cJSON_free(text);
    if (rc != 0) {
        snprintf(reason, rl, "cache_warming_events produce: %s", err);
        wh_count(WM.events, "failed", NULL);
        return RTE_KAFKA_RETRY;
    }
    wh_count(WM.events, "sent", NULL);
    snprintf(ttl, sizeof ttl, "%lld", (long long)WH.stats_ttl_ms);
    const char *mark[] = {"SET", mkey, "1", "PX", ttl};
    redisReply *m = rte_redis_cmdargv(r, 5, mark, NULL, err, sizeof err);
    if (m != NULL)
        freeReplyObject(m); /* if lost, a redelivery re-sends: same event_id */
    return RTE_KAFKA_OK;
}

/* room in a for n items; 0 or -1 (out of memory) */
static int apply_alloc(struct apply *a, int n)
{
    a->ok_ids = calloc((size_t)n + 1, sizeof *a->ok_ids);
    a->bad_ids = calloc((size_t)n + 1, sizeof *a->bad_ids);
    a->bad_why = calloc((size_t)n + 1, sizeof *a->bad_why);
    return a->ok_ids && a->bad_ids && a->bad_why ? 0 : -1;
}

static void apply_free(struct apply *a)
{
    free(a->ok_ids);
    free(a->bad_ids);
    free(a->bad_why);
    memset(a, 0, sizeof *a);
}

/* what the writes of items did, for the record */
static void tally(const wh_item *items, int n, struct apply *a)
{
    for (int i = 0; i < n; i++) {
        if (items[i].fail != NULL) {
            a->bad_ids[a->nbad] = items[i].id;
            a->bad_why[a->nbad++] = items[i].fail;
            continue;
        }
        a->ok_ids[a->nok++] = items[i].id;
        if (items[i].rc == 1)
            a->written++;
        else
            a->kept++;
    }
}

/* the metrics of one applied message, its writes started at t0 */
static void count_applied(const char *kind, const struct apply *a, int64_t t0)
{
    const char *lv[] = {kind, NULL};
    rte_counter_add(WM.written, lv, (double)a->written);
    if (a->kept > 0)
        rte_series_add(rte_metric_series0(WM.kept), (double)a->kept);
    for (int i = 0; i < a->nbad; i++)
        wh_count(WM.failed, a->bad_why[i], NULL);
    rte_histogram_observe(WM.apply, lv, (double)(rte_clock_mono_ms() - t0) / 1000.0);
}

static int apply_results(rte_redis *r, const cJSON *env, const char *kind, const char *batch_id,
                         const char *cid, char *reason, size_t rl)
{
    char err[512];
    wh_item *items = NULL;
    int n = wh_consume_map(env, kind, &items, reason, rl);
    if (n < 0)
        return n == -2 ? RTE_KAFKA_RETRY : RTE_KAFKA_POISON;
    int rc = RTE_KAFKA_OK;
    struct apply a = {0};
    if (apply_alloc(&a, n) != 0) {
        snprintf(reason, rl, "out of memory");
        rc = RTE_KAFKA_RETRY;
        goto out;
    }
    int64_t t0 = rte_clock_mono_ms();
    if (wh_writers_put(items, n, err, sizeof err) != 0) {
        rc = retry(r, reason, rl, "cache write", err);
        goto out;
    }
    tally(items, n, &a);
    if (record(r, batch_id, cid, &a, err, sizeof err) != 0) {
        rc = retry(r, reason, rl, "batch record", err);
        goto out;
    }
    count_applied(kind, &a, t0);
out:
    free(items);
    apply_free(&a);
    return rc;
}

/* 1 when every part of callback cid has been applied, 0 if not yet, -1 + err */
static int all_parts_applied(rte_redis *r, const char *cid, int parts, char *err, size_t errlen)
{
    if (parts <= 1)
        return 1;
    const char **argv = calloc((size_t)parts + 1, sizeof *argv);
    char *keys = calloc((size_t)parts, 128);
    int rc = -1;
    if (argv == NULL || keys == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    argv[0] = "EXISTS";
    for (int k = 0; k < parts; k++) {
        snprintf(keys + 128 * k, 128, "rte:wh:applied:%.64s:%d", cid, k);
        argv[k + 1] = keys + 128 * k;
    }
    redisReply *rep = rte_redis_cmdargv(r, parts + 1, argv, NULL, err, errlen);
    if (rep != NULL) {
        rc = rep->type == REDIS_REPLY_INTEGER && rep->integer >= parts;
        freeReplyObject(rep);
    }
out:
    free(argv);
    free(keys);
    return rc;
}

/*
 * the envelope's own fields as webhook-receiver writes them: content id an
 * id, batch id one the registry accepts, a callback's part numbers in
 * range; 0, or -1 + why
 */
static int check_envelope(const cJSON *env, const char *kind, char *why, size_t wl)
{
    const char *id, *batch_id, *ca = NULL;
    int64_t part, parts, total;
    rte_json_set_prefix(NULL);
    if (rte_json_id(env, "id", RTE_INPUT_ID_MAX, &id, why, wl) != 0 ||
        rte_json_string(env, "batch_id", 0, &batch_id, why, wl) != 0)
        return -1;
    if (!rte_batch_registry_valid_id(batch_id)) {
        snprintf(why, wl, "field 'batch_id': expected 1..%d characters of [A-Za-z0-9._:-]",
                 RTE_BATCH_ID_MAX - 1);
        return -1;
    }
    if (strcmp(kind, WH_KIND_CALLBACK) != 0)
        return 0;
    if (rte_json_int(env, "parts", 1, 1000000, &parts, why, wl) != 0 ||
        rte_json_int(env, "part", 0, parts - 1, &part, why, wl) != 0 ||
        rte_json_int(env, "total", 0, 100000000, &total, why, wl) != 0 ||
        rte_json_string_opt(env, "completed_at", 64, &ca, why, wl) != 0)
        return -1;
    if (ca != NULL && rte_input_timestamp(ca, strlen(ca), NULL, "field 'completed_at'", why, wl))
        return -1;
    return 0;
}

static int handle(rte_redis *r, const cJSON *env, const char *kind, int *dup, char *reason,
                  size_t rl)
{
    char err[512];
    if (check_envelope(env, kind, reason, rl) != 0)
        return RTE_KAFKA_POISON;
    const char *batch_id = sfield(env, "batch_id");
    const char *cid = sfield(env, "id");
    if (strcmp(kind, WH_KIND_BATCH_DONE) == 0)
        return emit_event(r, batch_id, "poll", sfield(env, "source"), (long)nfield(env, "items"),
                          NULL, reason, rl);
    /* parts of one callback share its content id */
    char part_id[128];
    snprintf(part_id, sizeof part_id, "%s:%lld", cid, (long long)nfield(env, "part"));
    int seen = applied_before(r, part_id, err, sizeof err);
    if (seen < 0)
        return retry(r, reason, rl, "applied check", err);
    if (seen) {
        *dup = 1;
    } else {
        int rc = apply_results(r, env, kind, batch_id, part_id, reason, rl);
        if (rc != RTE_KAFKA_OK)
            return rc;
    }
    if (strcmp(kind, WH_KIND_CALLBACK) != 0)
        return RTE_KAFKA_OK;
    /* parts are produced concurrently, so any of them may be the last one applied */
    int all = all_parts_applied(r, cid, (int)nfield(env, "parts"), err, sizeof err);
    if (all < 0)
        return retry(r, reason, rl, "parts check", err);
    if (all)
        return emit_event(r, batch_id, "callback", "callback", (long)nfield(env, "total"), NULL,
                          reason, rl);
    return RTE_KAFKA_OK;
}

/* one message, parsed (env, or NULL + err); env is deleted. Consumer thread */
static int consume_parsed(cJSON *env, const char *err, char *reason, size_t reasonlen)
{
    if (env == NULL) {
        snprintf(reason, reasonlen, "not a JSON envelope: %s", err);
        wh_count(WM.messages, "unknown", "poison");
        return RTE_KAFKA_POISON;
    }
    const char *kind = sfield(env, "kind");
    int rc, dup = 0;
    if (kind == NULL ||
        (strcmp(kind, WH_KIND_CALLBACK) != 0 && strcmp(kind, WH_KIND_POLL_PAGE) != 0 &&
         strcmp(kind, WH_KIND_BATCH_DONE) != 0)) {
        char q[RTE_INPUT_QUOTE_MAX * 4 + 8] = "(missing)";
        if (kind != NULL)
            rte_input_quote(kind, strlen(kind), q, sizeof q); /* the reason is a header too */
        snprintf(reason, reasonlen, "envelope kind '%s' is not callback, poll_page or batch_done",
                 q);
        kind = "unknown";
        rc = RTE_KAFKA_POISON;
    } else {
        rc = handle(rte_service_redis(), env, kind, &dup, reason, reasonlen);
    }
    const char *outcome = rc == RTE_KAFKA_RETRY    ? "retry"
                          : rc == RTE_KAFKA_POISON ? "poison"
                          : dup                    ? "duplicate"
                                                   : "ok";
    wh_count(WM.messages, kind, outcome);
    cJSON_Delete(env);
    return rc;
}

/* wh_consume - consumer thread */
int wh_consume(const rte_kafka_msg *msg, void *arg, char *reason, size_t reasonlen)
{
    (void)arg;
    char err[256];
    cJSON *env = rte_json_parse(msg->payload, msg->len, err, sizeof err);
    return consume_parsed(env, err, reason, reasonlen);
}

/* a callback message applied together with the others of its run (apply_group) */
struct gmsg {
    rte_kafka_verdict *v;
    cJSON *env; /* owned */
    const char *batch_id, *cid;
    char part_id[128];
    int skip; /* poison: verdict set */
    int dup;  /* applied before */
    wh_item *items;
    int n;
    struct apply a;
};

/*
 * apply k callback envelopes (check_envelope passed) as handle() applies
 * each, but with one round trip per phase for all of them: the applied
 * markers, the cache writes (wh_writers_put of every result), the records,
 * the events' state. A message that turns out poison gets its verdict and
 * writes nothing; a part applied before (or earlier in the run) is a
 * duplicate. RTE_KAFKA_OK, or RTE_KAFKA_RETRY + reason. Consumer thread.
 */
static int apply_group(rte_redis *r, struct gmsg *g, int k, char *reason, size_t rl)
{
    char err[512];
    int rc = RTE_KAFKA_RETRY, total = 0, off = 0, nrec = 0, nev = 0;
    rte_redis_argv *cmds = calloc((size_t)k * 5 + 1, sizeof *cmds);
    redisReply **rep = calloc((size_t)k * 3 + 1, sizeof *rep);
    char(*akey)[160] = calloc((size_t)k, sizeof *akey);
    const char *(*ex)[2] = calloc((size_t)k, sizeof *ex);
    struct rec *recs = calloc((size_t)k, sizeof *recs);
    struct ev_keys *evk = calloc((size_t)k, sizeof *evk);
    int *ev_of = calloc((size_t)k, sizeof *ev_of);
    wh_item *items = NULL;
    if (cmds == NULL || rep == NULL || akey == NULL || ex == NULL || recs == NULL || evk == NULL ||
        ev_of == NULL) {
        snprintf(reason, rl, "out of memory");
        goto out;
    }
    /* 1. applied before? */
    for (int i = 0; i < k; i++) {
        snprintf(akey[i], sizeof akey[i], "rte:wh:applied:%s", g[i].part_id);
        ex[i][0] = "EXISTS";
        ex[i][1] = akey[i];
        cmds[i] = (rte_redis_argv){2, ex[i], NULL};
    }
    if (rte_redis_pipeline(r, k, cmds, rep, err, sizeof err) != 0) {
        rc = retry(r, reason, rl, "applied check", err);
        goto out;
    }
    for (int i = 0; i < k; i++) {
        g[i].dup = rep[i] != NULL && rep[i]->type == REDIS_REPLY_INTEGER && rep[i]->integer > 0;
        for (int j = 0; j < i && !g[i].dup; j++)
            g[i].dup = strcmp(g[j].part_id, g[i].part_id) == 0; /* applied just before */
        if (rep[i] != NULL)
            freeReplyObject(rep[i]);
        rep[i] = NULL;
    }
    /* 2. every result mapped, poison envelopes set aside */
    for (int i = 0; i < k; i++) {
        const cJSON *list = g[i].dup ? NULL : results_of(g[i].env, WH_KIND_CALLBACK, err, 1);
        total += list ? cJSON_GetArraySize(list) : 0;
    }
    items = calloc((size_t)total + 1, sizeof *items);
    if (items == NULL) {
        snprintf(reason, rl, "out of memory");
        goto out;
    }
    for (int i = 0; i < k; i++) {
        if (g[i].dup)
            continue;
        const cJSON *list =
            results_of(g[i].env, WH_KIND_CALLBACK, g[i].v->reason, sizeof g[i].v->reason);
        int n = list ? cJSON_GetArraySize(list) : 0;
        if (list == NULL || map_list(g[i].env, WH_KIND_CALLBACK, list, items + off, g[i].v->reason,
                                     sizeof g[i].v->reason) != 0) {
            memset(items + off, 0, (size_t)n * sizeof *items);
            g[i].skip = 1;
            g[i].v->rc = RTE_KAFKA_POISON;
            continue;
        }
        if (apply_alloc(&g[i].a, n) != 0) {
            snprintf(reason, rl, "out of memory");
            goto out;
        }
        g[i].items = items + off;
        g[i].n = n;
        off += n;
    }
    /* 3. the cache writes of all of them */
    int64_t t0 = rte_clock_mono_ms();
    if (wh_writers_put(items, off, err, sizeof err) != 0) {
        rc = retry(r, reason, rl, "cache write", err);
        goto out;
    }
    /* 4. their records */
    for (int i = 0; i < k; i++) {
        if (g[i].dup || g[i].skip)
            continue;
        tally(g[i].items, g[i].n, &g[i].a);
        int nc = rec_cmds(&recs[i], g[i].batch_id, g[i].part_id, &g[i].a, cmds + nrec);
        if (nc < 0) {
            snprintf(reason, rl, "out of memory");
            goto out;
        }
        nrec += nc;
    }
    if (nrec > 0 && pipeline_checked(r, nrec, cmds, err, sizeof err) != 0) {
        rc = retry(r, reason, rl, "batch record", err);
        goto out;
    }
    for (int i = 0; i < k; i++)
        if (!g[i].dup && !g[i].skip)
            count_applied(WH_KIND_CALLBACK, &g[i].a, t0);
    /* 5. the events of the callbacks now complete */
    for (int i = 0; i < k; i++) {
        if (g[i].skip)
            continue;
        int all = all_parts_applied(r, g[i].cid, (int)nfield(g[i].env, "parts"), err, sizeof err);
        if (all < 0) {
            rc = retry(r, reason, rl, "parts check", err);
            goto out;
        }
        if (all)
            ev_of[nev++] = i;
    }
    for (int e = 0; e < nev; e++)
        ev_cmds(&evk[e], g[ev_of[e]].batch_id, cmds + 3 * e);
    if (nev > 0 && rte_redis_pipeline(r, 3 * nev, cmds, rep, err, sizeof err) != 0) {
        rc = retry(r, reason, rl, "event state", err);
        goto out;
    }
    for (int e = 0; e < nev; e++) {
        const struct gmsg *m = &g[ev_of[e]];
        int one = emit_event(r, m->batch_id, "callback", "callback", (long)nfield(m->env, "total"),
                             rep + 3 * e, reason, rl);
        if (one != RTE_KAFKA_OK) {
            rc = one;
            goto out;
        }
    }
    rc = RTE_KAFKA_OK;
    for (int i = 0; i < k; i++)
        wh_count(WM.messages, WH_KIND_CALLBACK,
                 g[i].skip  ? "poison"
                 : g[i].dup ? "duplicate"
                            : "ok");
out:
    if (rc != RTE_KAFKA_OK)
        wh_count(WM.messages, WH_KIND_CALLBACK, "retry");
    for (int i = 0; rep != NULL && i < 3 * k; i++)
        if (rep[i] != NULL)
            freeReplyObject(rep[i]);
    for (int i = 0; i < k; i++) {
        apply_free(&g[i].a);
        if (recs != NULL) {
            free(recs[i].sadd);
            free(recs[i].hset);
        }
    }
    free(items);
    free(cmds);
    free(rep);
    free(akey);
    free(ex);
    free(recs);
    free(evk);
    free(ev_of);
    return rc;
}

/* set the "event sent" markers of the batch's acknowledged events (best effort) */
static void mark_sent(rte_redis *r, const struct events *ev)
{
    char ttl[24], err[256];
    snprintf(ttl, sizeof ttl, "%lld", (long long)WH.stats_ttl_ms);
    for (int i = 0; i < ev->n; i++) {
        const char *mark[] = {"SET", ev->mark[i], "1", "PX", ttl};
        redisReply *rep = rte_redis_cmdargv(r, 5, mark, NULL, err, sizeof err);
        if (rep != NULL)
            freeReplyObject(rep); /* if lost, a redelivery re-sends: same event_id */
    }
}

/* wait until the watermark passes ev->seq with no new failed report; 0, or -1 + reason */
static int await_events(const struct events *ev, uint64_t failed0, char *reason, size_t rl)
{
    rte_kafka_producer *p = rte_service_producer();
    int64_t t0 = rte_clock_mono_ms();
    uint64_t failed = failed0;
    while (rte_kafka_delivered_seq(p, &failed) < ev->seq && failed == failed0) {
        int64_t now = rte_clock_mono_ms();
        if (now > rte_service_wait_until(t0, WH.produce_timeout_ms)) {
            snprintf(reason, rl, "cache_warming_events not acknowledged within %lld ms%s",
                     (long long)(now - t0),
                     rte_service_draining() ? " (the service is stopping)" : "");
            return -1;
        }
        usleep(500);
    }
    const char *lv[] = {"event", NULL};
    rte_histogram_observe(WM.produce, lv, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    if (failed != failed0) {
        /* some message of this producer failed: maybe one of ours; resend them all */
        snprintf(reason, rl, "a delivery report failed while cache_warming_events were in flight");
        return -1;
    }
    return 0;
}

/* wh_consume_batch - rte_kafka_batch_handler for rte.stedi.batch-results; consumer thread */
int wh_consume_batch(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg,
                     char *reason, size_t reasonlen)
{
    struct events *ev = calloc(1, sizeof *ev);
    uint64_t failed0 = 0;
    int rc = RTE_KAFKA_OK;
    if (ev == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return RTE_KAFKA_RETRY;
    }
    (void)arg;
    struct gmsg *g = calloc((size_t)n + 1, sizeof *g);
    if (g == NULL) {
        free(ev);
        snprintf(reason, reasonlen, "out of memory");
        return RTE_KAFKA_RETRY;
    }
    rte_kafka_delivered_seq(rte_service_producer(), &failed0);
    EV = ev;
    /* runs of callback messages are applied together (apply_group); any other message,
     * in its place in the order, alone */
    int k = 0;
    for (int i = 0; i <= n && rc == RTE_KAFKA_OK; i++) {
        char perr[256];
        cJSON *env = NULL;
        int grouped = 0;
        if (i < n) {
            env = rte_json_parse(msgs[i].payload, msgs[i].len, perr, sizeof perr);
            const char *kind = env ? sfield(env, "kind") : NULL;
            grouped = kind != NULL && strcmp(kind, WH_KIND_CALLBACK) == 0 &&
                      check_envelope(env, kind, v[i].reason, sizeof v[i].reason) == 0;
        }
        if (grouped) {
            struct gmsg *m = &g[k++];
            m->v = &v[i];
            m->env = env;
            m->batch_id = sfield(env, "batch_id");
            m->cid = sfield(env, "id");
            snprintf(m->part_id, sizeof m->part_id, "%s:%lld", m->cid,
                     (long long)nfield(env, "part"));
            continue;
        }
        if (k > 0) {
            rc = apply_group(rte_service_redis(), g, k, reason, reasonlen);
            for (int j = 0; j < k; j++)
                cJSON_Delete(g[j].env);
            memset(g, 0, (size_t)k * sizeof *g);
            k = 0;
        }
        if (i == n || rc != RTE_KAFKA_OK) {
            cJSON_Delete(env);
            break;
        }
        int one = consume_parsed(env, perr, v[i].reason, sizeof v[i].reason);
        if (one == RTE_KAFKA_RETRY) {
            snprintf(reason, reasonlen, "%s", v[i].reason);
            rc = RTE_KAFKA_RETRY;
            break;
        }
        v[i].rc = one;
    }
    free(g);
    EV = NULL;
    /* a retried batch sets no marker: its redelivery re-sends the events */
    if (rc == RTE_KAFKA_OK && ev->n > 0) {
        const char *res = "sent";
        if (await_events(ev, failed0, reason, reasonlen) != 0) {
            res = "failed";
            rc = RTE_KAFKA_RETRY;
        } else {
            mark_sent(rte_service_redis(), ev);
        }
        for (int i = 0; i < ev->n; i++)
            wh_count(WM.events, res, NULL);
    }
    free(ev);
    return rc;
}
