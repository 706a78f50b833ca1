/*
 * wh_poll.c - polling of registered Stedi batches (wh_poll.h).
 *
 * The owner token that holds leases is "<hostname>:<pid>:<random>", fresh
 * per process, so a restarted replica never mistakes an old lease for its
 * own: it waits for the old lease to expire (batch_registry.lease).
 */
#include "wh_poll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rte/batch_registry.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/stedi.h"
#include "rte/topics.h"
#include "wh.h"

static rte_stedi *stedi;
static char owner[128];

/* what one batch's poll is doing; handed to the page callback */
struct poll_ctx {
    rte_redis *r;
    const rte_batch_record *rec;
    long items;                        /* items produced in this poll */
    char cursor[RTE_BATCH_CURSOR_MAX]; /* resume point: before the page in hand, then after it */
    int stopped;                       /* a produce failed or the lease was lost */
    int lease_lost;
    char err[512];
};

/* wh_poll_start - init thread */
int wh_poll_start(const rte_config *cfg, char *err, size_t errlen)
{
    snprintf(owner, sizeof owner, "%s", rte_service_instance_id());
    if (!WH.poll_enabled)
        return 0;
    stedi = rte_stedi_from_config(cfg, err, errlen);
    return stedi != NULL ? 0 : -1;
}

/* wh_poll_stop - shutdown thread */
void wh_poll_stop(void)
{
    if (stedi != NULL)
        rte_stedi_free(stedi);
    stedi = NULL;
}

/*
 * the registered members of a page's items ({submitter id: {key,
 * service_types}}), so the envelope says which cache entry each item is;
 * NULL + err on a Redis error
 */
static cJSON *page_members(rte_redis *r, const rte_batch_record *rec, const rte_stedi_page *page,
                           char *err, size_t errlen)
{
    const char **ids = calloc((size_t)page->count + 1, sizeof *ids);
    const cJSON *it;
    cJSON *m;
    int n = 0;

    if (ids == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cJSON_ArrayForEach(it, page->items)
    {
        const cJSON *sti = cJSON_GetObjectItemCaseSensitive(it, "submitterTransactionIdentifier");
        if (cJSON_IsString(sti) && n < page->count)
            ids[n++] = sti->valuestring;
    }
    m = rte_batch_registry_members(r, &WH.registry, rec->batch_id, ids, n, err, errlen);
    free(ids);
    return m;
}

/* build and produce a poll_page envelope embedding the page as received */
static int produce_page(rte_redis *r, const rte_batch_record *rec, const rte_stedi_page *page,
                        const char *cursor, char *err, size_t errlen)
{
    cJSON *members = page_members(r, rec, page, err, errlen);
    if (members == NULL)
        return -1;
    cJSON *head = cJSON_CreateObject();
    char id[25];
    uint8_t b[12];
    rte_random_bytes(b, sizeof b);
    rte_hex_encode(b, sizeof b, id);
    cJSON_AddNumberToObject(head, "v", 1);
    cJSON_AddStringToObject(head, "kind", WH_KIND_POLL_PAGE);
    cJSON_AddStringToObject(head, "id", id);
    cJSON_AddStringToObject(head, "batch_id", rec->batch_id);
    cJSON_AddStringToObject(head, "source", rec->source);
    cJSON_AddStringToObject(head, "cursor", cursor ? cursor : "");
    cJSON_AddNumberToObject(head, "fetched_at_ms", (double)rte_clock_now_ms());
    cJSON_AddNumberToObject(head, "count", page->count);
    cJSON_AddItemToObject(head, "members", members);
    char *h = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* head without its closing brace, then ,"page":<raw>} */
    size_t hl = strlen(h) - 1, len = hl + 8 + page->raw_len + 1;
    char *msg = malloc(len + 1);
    int rc = -1;
    if (msg != NULL) {
        memcpy(msg, h, hl);
        memcpy(msg + hl, ",\"page\":", 8);
        memcpy(msg + hl + 8, page->raw, page->raw_len);
        msg[len - 1] = '}';
        msg[len] = '\0';
        rc = wh_produce(RTE_TOPIC_STEDI_BATCH_RESULTS, WH_KIND_POLL_PAGE, rec->batch_id, msg, len,
                        err, errlen);
    } else {
        snprintf(err, errlen, "out of memory");
    }
    free(msg);
    cJSON_free(h);
    return rc;
}

/* rte_stedi_poll_all callback: produce, then advance the cursor, then renew */
static int on_page(void *arg, const rte_stedi_page *page, const char *cursor_after)
{
    struct poll_ctx *c = arg;
    if (produce_page(c->r, c->rec, page, c->cursor, c->err, sizeof c->err) != 0) {
        c->stopped = 1;
        return 1;
    }
    wh_count(WM.pages, NULL, NULL);
    rte_series_add(rte_metric_series0(WM.poll_items), page->count);
    c->items += page->count;
    snprintf(c->cursor, sizeof c->cursor, "%s", cursor_after);
    int rc = rte_batch_registry_advance(c->r, &WH.registry, c->rec->batch_id, owner, c->cursor,
                                        page->count, c->err, sizeof c->err);
    if (rc == 0)
        rc = rte_batch_registry_renew(c->r, &WH.registry, c->rec->batch_id, owner, c->err,
                                      sizeof c->err);
    if (rc != 0) {
        c->stopped = 1;
        c->lease_lost = rc == RTE_BATCH_E_LOST;
        return 1;
    }
    return rte_service_draining() ? 1 : 0;
}

static int produce_done(const rte_batch_record *rec, char *err, size_t errlen)
{
    cJSON *d = cJSON_CreateObject();
    char id[RTE_BATCH_ID_MAX + 8];
    snprintf(id, sizeof id, "done:%s", rec->batch_id);
    cJSON_AddNumberToObject(d, "v", 1);
    cJSON_AddStringToObject(d, "kind", WH_KIND_BATCH_DONE);
    cJSON_AddStringToObject(d, "id", id);
    cJSON_AddStringToObject(d, "batch_id", rec->batch_id);
    cJSON_AddStringToObject(d, "source", rec->source);
    cJSON_AddNumberToObject(d, "items", rec->items);
    cJSON_AddNumberToObject(d, "at_ms", (double)rte_clock_now_ms());
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    int rc = text ? wh_produce(RTE_TOPIC_STEDI_BATCH_RESULTS, WH_KIND_BATCH_DONE, rec->batch_id,
                               text, strlen(text), err, errlen)
                  : -1;
    cJSON_free(text);
    return rc;
}

/* reschedule with backoff and count the outcome */
static void later(rte_redis *r, const char *id, int progressed, const char *outcome)
{
    char err[512];
    int rc = rte_batch_registry_reschedule(r, &WH.registry, id, owner, progressed,
                                           rte_clock_now_ms(), NULL, err, sizeof err);
    if (rc == 1) {
        rte_log_warn("batch %s passed its retry window; no longer polled", id);
        wh_count(WM.polled, "expired", NULL);
        return;
    }
    if (rc < 0)
        rte_log_warn("batch %s: cannot reschedule (%s); it stays due", id, err);
    wh_count(WM.polled, outcome, NULL);
}

_Static_assert(RTE_BATCH_CURSOR_MAX >= RTE_STEDI_CURSOR_MAX,
               "the registry must hold every cursor the client writes");

static void poll_one(rte_redis *r, const char *id)
{
    char err[512];
    rte_batch_record rec;
    rte_stedi_batch_info st;
    int rc = rte_batch_registry_get(r, &WH.registry, id, &rec, err, sizeof err);
    if (rc <= 0 || rec.done) {
        if (rc == 0 || rec.done)
            rte_batch_registry_done(r, &WH.registry, id, owner, rec.done ? rec.done_reason : "gone",
                                    rte_clock_now_ms(), err, sizeof err);
        return;
    }
    rc = rte_stedi_batch_status(stedi, id, &st, err, sizeof err);
    if (rc == RTE_STEDI_E_NOT_FOUND) {
        if (rte_clock_now_ms() >= rec.retry_until_ms) {
            rte_batch_registry_done(r, &WH.registry, id, owner, "not_found", rte_clock_now_ms(),
                                    err, sizeof err);
            wh_count(WM.polled, "not_found", NULL);
        } else {
            later(r, id, 0, "not_found");
        }
        return;
    }
    if (rc != 0) {
        rte_log_warn("batch %s: status check failed (%s); checking again later", id, err);
        later(r, id, 0, "error");
        return;
    }
    if (st.failed) {
        /* VALIDATION_FAILED: "Stedi found errors in the batch submission that you need to fix
         * before processing can continue" - nothing will ever complete */
        rte_log_warn("batch %s: Stedi says %s (%d of %d items failed validation); no longer "
                     "polled",
                     id, st.status, st.validation_failed, st.total);
        rte_batch_registry_done(r, &WH.registry, id, owner, "validation_failed", rte_clock_now_ms(),
                                err, sizeof err);
        wh_count(WM.polled, "validation_failed", NULL);
        return;
    }
    if (st.state == RTE_STEDI_BATCH_UNKNOWN)
        rte_log_warn("batch %s: status '%s' is not one Stedi documents; polling on", id, st.status);
    struct poll_ctx c = {.r = r, .rec = &rec};
    if (st.success + st.error > 0) {
        char cursor[RTE_BATCH_CURSOR_MAX];
        snprintf(c.cursor, sizeof c.cursor, "%s", rec.cursor);
        long n = rte_stedi_poll_all(stedi, id, WH.poll_page_size, rec.cursor, on_page, &c, cursor,
                                    sizeof cursor, err, sizeof err);
        if (c.lease_lost) {
            rte_log_warn("batch %s: %s; leaving it to its new owner", id, c.err);
            wh_count(WM.polled, "lease_lost", NULL);
            return;
        }
        if (n < 0 || c.stopped) {
            rte_log_warn("batch %s: polling stopped after %ld items (%s); resuming from the saved "
                         "cursor later",
                         id, c.items, n < 0 ? err : c.err);
            later(r, id, c.items > 0, "error");
            return;
        }
        /* the client's resume point is authoritative (e.g. a last page with no new items) */
        if (strcmp(cursor, c.cursor) != 0 &&
            rte_batch_registry_advance(r, &WH.registry, id, owner, cursor, 0, err, sizeof err) !=
                0) {
            later(r, id, c.items > 0, "error");
            return;
        }
    }
    if (st.complete) {
        if (produce_done(&rec, err, sizeof err) != 0) {
            rte_log_warn("batch %s: complete, but its done marker was not produced (%s); "
                         "trying again later",
                         id, err);
            later(r, id, 1, "error");
            return;
        }
        rte_batch_registry_done(r, &WH.registry, id, owner, "complete", rte_clock_now_ms(), err,
                                sizeof err);
        rte_log_info("batch %s complete: %ld items polled in total", id, rec.polled + c.items);
        wh_count(WM.polled, "complete", NULL);
        return;
    }
    later(r, id, c.items > 0, c.items > 0 ? "progress" : "idle");
}

static void update_backlog(rte_redis *r)
{
    long pending, due;
    char err[256];
    if (rte_batch_registry_backlog(r, &WH.registry, rte_clock_now_ms(), &pending, &due, err,
                                   sizeof err) != 0)
        return;
    const char *p[] = {"pending", NULL}, *d[] = {"due", NULL};
    rte_gauge_set(WM.backlog, p, (double)pending);
    rte_gauge_set(WM.backlog, d, (double)due);
}

/* wh_poll_tick - timer thread */
void wh_poll_tick(void *arg)
{
    (void)arg;
    rte_redis *r = rte_service_redis();
    char err[512];
    if (stedi == NULL)
        return;
    update_backlog(r);
    char(*ids)[RTE_BATCH_ID_MAX] = calloc((size_t)WH.poll_max_batches, sizeof *ids);
    if (ids == NULL)
        return;
    int n = rte_batch_registry_due(r, &WH.registry, rte_clock_now_ms(), ids, WH.poll_max_batches,
                                   err, sizeof err);
    if (n < 0)
        rte_log_warn("cannot list due batches (%s); trying again next tick", err);
    for (int i = 0; i < n && !rte_service_draining(); i++) {
        int got = rte_batch_registry_lease(r, &WH.registry, ids[i], owner, err, sizeof err);
        if (got != 1)
            continue; /* another replica polls it, or Redis failed: next tick */
        poll_one(r, ids[i]);
        rte_batch_registry_release(r, &WH.registry, ids[i], owner, err, sizeof err);
    }
    free(ids);
    if (n > 0)
        update_backlog(r);
}
