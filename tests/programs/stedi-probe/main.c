/*
 * stedi-probe - drive rte/stedi.h (the Stedi client) from integration tests.
 *
 * Configuration comes from RTE_* variables exactly as a service reads it
 * (rte_stedi_from_config): RTE_STEDI_BASE_URL (or RTE_STEDI_HEALTHCARE_BASE_URL
 * and RTE_STEDI_MANAGER_BASE_URL), RTE_STEDI_API_KEY, RTE_STEDI_TIMEOUT,
 * RTE_STEDI_MAX_ATTEMPTS, RTE_REDIS_URL, RTE_SLOTS_* ...
 *
 *   stedi-probe realtime [--n 1] [--threads 1] [--class interactive]
 *                        [--member M] [--member-prefix P] [--payer 62308]
 *                        [--deadline-ms 0] [--dob 1980-01-02] [--first-name Ann]
 *                        [--service-types 30]
 *   stedi-probe submit [--n 10] [--member-prefix P] [--payer 62308]
 *                      [--dob 19800102] [--name NAME] [--service-types 30]
 *   stedi-probe status --batch ID
 *   stedi-probe poll --batch ID [--page-size 100] [--cursor C] [--service-types 30]
 *
 * Each prints one JSON object on stdout:
 *   realtime  {"ok":N,"payer_error":N,...,"attempts":N,"max_attempts":N,
 *              "first":{outcome,message,http_status,eligible,copay_amount,
 *              network_status,coverage_start,coverage_end,source,error_code,
 *              entry: the cache entry as encoded}}
 *   submit    {"rc":0|-1|-2,"batch_id":..,"error":..}
 *   status    {"rc":..,"status":..,"state":..,"total":..,"success":..,
 *              "error":..,"in_progress":..,"complete":..,"failed":..}
 *   poll      {"rc":items|-N,"cursor":..,"pages":N,"items":[{sti,batch,
 *              eligible,copay_amount,is_error,error_code,entry}],"error":..}
 * Exit 0 after any outcome; 1 on bad arguments or configuration.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/config.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/slots.h"
#include "rte/stedi.h"

#define NOUTCOMES (RTE_STEDI_FAILED + 1)

struct args {
    const char *cmd, *member, *prefix, *payer, *batch, *cursor, *dob, *first, *name, *types;
    long n, threads, deadline_ms, page_size;
    int cls;
};

struct run {
    rte_stedi *s;
    const struct args *a;
    pthread_mutex_t mu;
    long next, counts[NOUTCOMES], attempts, max_attempts, degraded;
    int have_first;
    rte_stedi_result first;
};

static void usage(void)
{
    fprintf(stderr, "usage: stedi-probe realtime|submit|status|poll [options] (see source)\n");
    exit(1);
}

static long num(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0')
        usage();
    return n;
}

static void parse(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    a->n = -1;
    a->threads = 1;
    a->payer = "62308";
    a->prefix = "P";
    a->page_size = 100;
    a->dob = "19800102";
    a->first = "Ann";
    if (argc < 2)
        usage();
    a->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (strcmp(k, "--n") == 0)
            a->n = num(v);
        else if (strcmp(k, "--threads") == 0)
            a->threads = num(v);
        else if (strcmp(k, "--class") == 0)
            a->cls = rte_slot_class_parse(v);
        else if (strcmp(k, "--member") == 0)
            a->member = v;
        else if (strcmp(k, "--member-prefix") == 0)
            a->prefix = v;
        else if (strcmp(k, "--payer") == 0)
            a->payer = v;
        else if (strcmp(k, "--deadline-ms") == 0)
            a->deadline_ms = num(v);
        else if (strcmp(k, "--first-name") == 0)
            a->first = v;
        else if (strcmp(k, "--name") == 0)
            a->name = v;
        else if (strcmp(k, "--service-types") == 0)
            a->types = v;
        else if (strcmp(k, "--batch") == 0)
            a->batch = v;
        else if (strcmp(k, "--cursor") == 0)
            a->cursor = v;
        else if (strcmp(k, "--page-size") == 0)
            a->page_size = num(v);
        else if (strcmp(k, "--dob") == 0)
            a->dob = v;
        else
            usage();
    }
    if (a->cls < 0 || a->threads < 1)
        usage();
}

static void fill_check(const struct args *a, long i, char *member, size_t len, char *sti,
                       size_t stilen, rte_stedi_check *c)
{
    if (a->member)
        snprintf(member, len, "%s", a->member);
    else
        snprintf(member, len, "%s%ld", a->prefix, i);
    snprintf(sti, stilen, "T%ld", i);
    memset(c, 0, sizeof *c);
    c->trading_partner_id = a->payer;
    c->member_id = member;
    c->first_name = a->first;
    c->last_name = "Lee";
    c->date_of_birth = a->dob;
    c->service_types = a->types;
    c->submitter_id = sti;
}

static void *realtime_worker(void *arg)
{
    struct run *r = arg;
    char member[64], sti[32];
    rte_stedi_check c;
    rte_stedi_result res;

    for (;;) {
        long i;
        pthread_mutex_lock(&r->mu);
        i = r->next++;
        pthread_mutex_unlock(&r->mu);
        if (i >= r->a->n)
            return NULL;
        fill_check(r->a, i, member, sizeof member, sti, sizeof sti, &c);
        c.submitter_id = NULL;
        rte_stedi_realtime(r->s, &c, (enum rte_slot_class)r->a->cls,
                           r->a->deadline_ms ? rte_clock_mono_ms() + r->a->deadline_ms : 0, NULL,
                           NULL, &res);
        pthread_mutex_lock(&r->mu);
        r->counts[res.outcome]++;
        r->attempts += res.attempts;
        r->degraded += res.degraded;
        if (res.attempts > r->max_attempts)
            r->max_attempts = res.attempts;
        if (!r->have_first) {
            r->first = res;
            r->have_first = 1;
        }
        pthread_mutex_unlock(&r->mu);
    }
}

static void add_entry(cJSON *o, const rte_cache_entry *e)
{
    cJSON_AddBoolToObject(o, "eligible", e->eligible);
    if (e->has_copay)
        cJSON_AddNumberToObject(o, "copay_amount", e->copay_amount);
    cJSON_AddStringToObject(o, "network_status", e->network_status);
    cJSON_AddStringToObject(o, "coverage_start", e->coverage_start);
    cJSON_AddStringToObject(o, "coverage_end", e->coverage_end);
    cJSON_AddStringToObject(o, "source", e->source);
    cJSON_AddBoolToObject(o, "is_error", e->is_error);
    cJSON_AddStringToObject(o, "error_code", e->error_code);
    char *text = rte_cache_entry_encode(e);
    cJSON_AddItemToObject(o, "entry", cJSON_Parse(text ? text : "null"));
    cJSON_free(text);
}

static void print_free(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(o);
}

static void cmd_realtime(rte_stedi *s, const struct args *a)
{
    struct run r;
    pthread_t *t = calloc((size_t)a->threads, sizeof *t);
    cJSON *o = cJSON_CreateObject(), *f;

    memset(&r, 0, sizeof r);
    r.s = s;
    r.a = a;
    pthread_mutex_init(&r.mu, NULL);
    for (long i = 0; i < a->threads; i++)
        pthread_create(&t[i], NULL, realtime_worker, &r);
    for (long i = 0; i < a->threads; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < NOUTCOMES; k++)
        cJSON_AddNumberToObject(o, rte_stedi_outcome_name((enum rte_stedi_outcome)k), r.counts[k]);
    cJSON_AddNumberToObject(o, "attempts", r.attempts);
    cJSON_AddNumberToObject(o, "max_attempts", r.max_attempts);
    cJSON_AddNumberToObject(o, "degraded", r.degraded);
    if (r.have_first) {
        f = cJSON_AddObjectToObject(o, "first");
        cJSON_AddStringToObject(f, "outcome", rte_stedi_outcome_name(r.first.outcome));
        cJSON_AddStringToObject(f, "message", r.first.message);
        cJSON_AddNumberToObject(f, "http_status", r.first.http_status);
        cJSON_AddNumberToObject(f, "slot_wait_ms", r.first.slot_wait_ms);
        if (r.first.outcome == RTE_STEDI_OK || r.first.outcome == RTE_STEDI_PAYER_ERROR)
            add_entry(f, &r.first.entry);
    }
    pthread_mutex_destroy(&r.mu);
    free(t);
    print_free(o);
}

static void cmd_submit(rte_stedi *s, const struct args *a)
{
    long n = a->n < 0 ? 10 : a->n;
    rte_stedi_check *items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    char(*members)[64] = calloc((size_t)(n > 0 ? n : 1), 64);
    char(*stis)[32] = calloc((size_t)(n > 0 ? n : 1), 32);
    char batch_id[128] = "", err[512] = "";
    cJSON *o = cJSON_CreateObject();
    int rc;

    for (long i = 0; i < n; i++)
        fill_check(a, i, members[i], 64, stis[i], 32, &items[i]);
    rc = rte_stedi_batch_submit(s, items, (size_t)n, a->name, 0, batch_id, sizeof batch_id, err,
                                sizeof err);
    cJSON_AddNumberToObject(o, "rc", rc);
    cJSON_AddStringToObject(o, "batch_id", batch_id);
    cJSON_AddStringToObject(o, "error", err);
    free(items);
    free(members);
    free(stis);
    print_free(o);
}

static void cmd_status(rte_stedi *s, const struct args *a)
{
    rte_stedi_batch_info b;
    char err[512] = "";
    cJSON *o = cJSON_CreateObject();
    int rc = rte_stedi_batch_status(s, a->batch ? a->batch : "", &b, err, sizeof err);

    cJSON_AddNumberToObject(o, "rc", rc);
    cJSON_AddStringToObject(o, "status", b.status);
    cJSON_AddStringToObject(o, "state", rte_stedi_batch_state_name(b.state));
    cJSON_AddNumberToObject(o, "total", b.total);
    cJSON_AddNumberToObject(o, "success", b.success);
    cJSON_AddNumberToObject(o, "error", b.error);
    cJSON_AddNumberToObject(o, "in_progress", b.in_progress);
    cJSON_AddBoolToObject(o, "complete", b.complete);
    cJSON_AddBoolToObject(o, "failed", b.failed);
    cJSON_AddStringToObject(o, "message", err);
    print_free(o);
}

struct poll_acc {
    cJSON *items, *cursors;
    int pages;
    rte_stedi_asked asked;
};

static int on_page(void *arg, const rte_stedi_page *p, const char *cursor_after)
{
    struct poll_acc *acc = arg;
    const cJSON *it;
    rte_stedi_item m;
    char err[256];

    acc->pages++;
    cJSON_AddItemToArray(acc->cursors, cJSON_CreateString(cursor_after));
    cJSON_ArrayForEach(it, p->items)
    {
        cJSON *o = cJSON_CreateObject();
        if (rte_stedi_item_map(it, &acc->asked, rte_clock_now_ms(), NULL, &m, err, sizeof err) !=
            0) {
            cJSON_AddStringToObject(o, "map_error", err);
        } else {
            cJSON_AddStringToObject(o, "sti", m.submitter_id);
            cJSON_AddStringToObject(o, "batch", m.batch_id ? m.batch_id : "");
            add_entry(o, &m.entry);
        }
        cJSON_AddItemToArray(acc->items, o);
    }
    return 0;
}

static void cmd_poll(rte_stedi *s, const struct args *a)
{
    struct poll_acc acc = {cJSON_CreateArray(), cJSON_CreateArray(), 0, {0}};
    char cursor[RTE_STEDI_CURSOR_MAX] = "", err[512] = "";
    cJSON *o = cJSON_CreateObject();
    if (rte_stedi_asked_parse(a->types, &acc.asked, err, sizeof err) != 0) {
        fprintf(stderr, "stedi-probe: --service-types: %s\n", err);
        exit(1);
    }
    long rc = rte_stedi_poll_all(s, a->batch ? a->batch : "", (int)a->page_size, a->cursor, on_page,
                                 &acc, cursor, sizeof cursor, err, sizeof err);

    cJSON_AddNumberToObject(o, "rc", (double)rc);
    cJSON_AddStringToObject(o, "cursor", cursor);
    cJSON_AddNumberToObject(o, "pages", acc.pages);
    cJSON_AddItemToObject(o, "items", acc.items);
    cJSON_AddItemToObject(o, "page_cursors", acc.cursors);
    cJSON_AddStringToObject(o, "error", err);
    print_free(o);
}

int main(int argc, char **argv)
{
    struct args a;
    char err[512];
    rte_config *cfg;
    rte_stedi *s;

    parse(argc, argv, &a);
    rte_clock_init_env();
    cfg = rte_config_from_string("", err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "stedi-probe: %s\n", err);
        return 1;
    }
    s = rte_stedi_from_config(cfg, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "stedi-probe: %s\n", err);
        rte_config_free(cfg);
        return 1;
    }
    if (a.n < 0 && strcmp(a.cmd, "realtime") == 0)
        a.n = 1;
    if (strcmp(a.cmd, "realtime") == 0)
        cmd_realtime(s, &a);
    else if (strcmp(a.cmd, "submit") == 0)
        cmd_submit(s, &a);
    else if (strcmp(a.cmd, "status") == 0)
        cmd_status(s, &a);
    else if (strcmp(a.cmd, "poll") == 0)
        cmd_poll(s, &a);
    else
        usage();
    rte_stedi_free(s);
    rte_config_free(cfg);
    return 0;
}
