/*
 * stedi.c - the client side of the Stedi eligibility API.
 *
 * Contract in rte/stedi.h; the API as we use it in docs/stedi.md. How it is
 * built:
 *
 *   hosts       real-time calls go to the healthcare base URL, batch
 *               submit, status and polling to the manager base URL; the
 *               paths carry the API version (RTE_STEDI_API_VERSION).
 *   requests    cJSON documents in Stedi's shape, checked against Stedi's
 *               own limits first, sent through the shared http_client
 *               (connection reuse, retries, Retry-After, gzip).
 *   slots       a real-time call holds a lease from the slot limiter from
 *               before the first attempt until after the last one. Held
 *               leases sit on a list that one keeper thread walks every
 *               lease_ms/3, renewing each; a lease found lost sets that
 *               call's abort flag, which http_client's progress callback
 *               turns into an aborted transfer within about a second. The
 *               keeper copies the list under its mutex and renews with the
 *               mutex released, so callers never wait behind Redis I/O.
 *   outcomes    whatever the HTTP status, a body the reader (stedi_reply.c)
 *               takes for an eligibility answer is one: OK, or PAYER_ERROR
 *               when it carries errors[]. Otherwise 429/5xx that survive
 *               the retries, 4xx, timeouts and transport failures each get
 *               their own outcome so callers can tell "Stedi is slow" from
 *               "we sent garbage" from "our key is refused".
 *   poll cursor "<skip>:<page token>": the page token Stedi gave us plus
 *               how many items of that page we already handed over. The
 *               last page has no nextPageToken, so the cursor stays on its
 *               token and skips what was handed over; results that complete
 *               later follow on that page.
 *
 * It does not cache, deduplicate or decide freshness: callers do that with
 * cache_entry.h.
 */
#include "rte/stedi.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/metrics.h"
#include "rte/redis.h"

#define V "/" RTE_STEDI_API_VERSION
#define PATH_REALTIME V "/change/medicalnetwork/eligibility/v3"      /* healthcare API */
#define PATH_BATCH V "/eligibility-manager/batch-eligibility"        /* manager API */
#define PATH_STATUS V "/eligibility-manager/batch/"                  /* manager API */
#define PATH_POLL V "/eligibility-manager/polling/batch-eligibility" /* manager API */
#define MAX_BATCH_ITEMS 10000
#define BASE_URL_MAX 512
#define URL_MAX (BASE_URL_MAX + 256 + 3 * RTE_STEDI_PAGE_TOKEN_MAX)

enum api { API_REALTIME, API_BATCH, API_STATUS, API_POLL, API_N };
static const char *const api_names[API_N] = {"realtime", "batch_submit", "batch_status", "poll"};
static const char *const http_names[API_N] = {"stedi_realtime", "stedi_batch_submit",
                                              "stedi_batch_status", "stedi_poll"};

/* A real-time call's lease while it is held; lives on the caller's stack. */
struct held {
    rte_slot_lease lease;
    int lost; /* atomic; set by the keeper, read by http_client's progress callback */
    struct held *next;
};

struct rte_stedi {
    rte_stedi_opts o;
    char *healthcare_url, *manager_url, *api_key, *provider_name, *provider_npi;
    char auth_header[300];
    rte_http_client *own_http;
    rte_slots *own_slots;

    pthread_mutex_t mu; /* guards held and stopping */
    pthread_cond_t wake;
    struct held *held;
    int stopping;
    int keeper_started;
    pthread_t keeper;

    int degraded_in_use; /* under mu: calls running on the local degraded budget */
    pthread_cond_t degraded_cv;

    rte_metric *calls;
    rte_metric *duration;
    rte_series *degraded_calls;
    rte_metric *slot_wait;
    rte_series *lease_lost;
};

/* rte_stedi_outcome_name - static label for metrics and logs */
const char *rte_stedi_outcome_name(enum rte_stedi_outcome o)
{
    static const char *const names[] = {"ok",          "payer_error", "no_slot",  "rate_limited",
                                        "unavailable", "timeout",     "rejected", "failed"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

/* rte_stedi_opts_init - defaults; any thread */
void rte_stedi_opts_init(rte_stedi_opts *o)
{
    memset(o, 0, sizeof *o);
    o->healthcare_base_url = "http://127.0.0.1:8089";
    o->manager_base_url = "http://127.0.0.1:8089";
    o->realtime_timeout_ms = 120000;
    o->api_timeout_ms = 30000;
    o->max_attempts = 3;
    o->base_delay_ms = 200;
    o->max_delay_ms = 10000;
    o->provider_name = "RTE Cache Warming";
    o->provider_npi = "1999999984";
    o->freshness = rte_cache_freshness_default();
    o->degraded_limit = 2;
}

static int valid_npi(const char *npi)
{
    if (npi == NULL || strlen(npi) != 10)
        return 0;
    for (const char *p = npi; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/*
 * a base URL: http(s), at most BASE_URL_MAX, and not ending in a dated API
 * version (the client adds /2024-04-01; a copied OpenAPI server URL would
 * double it). what names the setting in the message.
 */
static int check_base_url(const char *what, const char *url, char *err, size_t errlen)
{
    size_t n = url ? strlen(url) : 0;
    const char *seg;

    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(err, errlen, "%s: '%s' must start with http:// or https://", what, url ? url : "");
        return -1;
    }
    if (n > BASE_URL_MAX) {
        snprintf(err, errlen, "%s: longer than %d characters", what, BASE_URL_MAX);
        return -1;
    }
    while (n > 0 && url[n - 1] == '/')
        n--;
    seg = url + n;
    while (seg > url && seg[-1] != '/')
        seg--;
    if (url + n - seg == 10 && seg[4] == '-' && seg[7] == '-' && isdigit((unsigned char)seg[0]) &&
        isdigit((unsigned char)seg[9])) {
        snprintf(err, errlen,
                 "%s: '%s' ends in an API version; give the host only (the client adds /%s)", what,
                 url, RTE_STEDI_API_VERSION);
        return -1;
    }
    return 0;
}

static int check_opts(const rte_stedi_opts *o, char *err, size_t errlen)
{
    if (check_base_url("stedi: healthcare_base_url", o->healthcare_base_url, err, errlen) != 0 ||
        check_base_url("stedi: manager_base_url", o->manager_base_url, err, errlen) != 0)
        return -1;
    if (o->api_key == NULL || o->api_key[0] == '\0' || strlen(o->api_key) > 256 ||
        strpbrk(o->api_key, "\r\n") != NULL) {
        snprintf(err, errlen, "stedi: api_key must be 1..256 characters without line breaks");
        return -1;
    }
    if (o->realtime_timeout_ms < 1 || o->api_timeout_ms < 1 || o->max_attempts < 1 ||
        o->base_delay_ms < 1 || o->max_delay_ms < o->base_delay_ms) {
        snprintf(err, errlen,
                 "stedi: timeouts, max_attempts and delays must be positive and "
                 "max_delay >= base_delay");
        return -1;
    }
    if (!valid_npi(o->provider_npi)) {
        snprintf(err, errlen, "stedi: provider_npi '%s' must be 10 digits",
                 o->provider_npi ? o->provider_npi : "");
        return -1;
    }
    if (o->provider_name == NULL || o->provider_name[0] == '\0' || strlen(o->provider_name) > 60) {
        snprintf(err, errlen,
                 "stedi: provider_name must be 1..60 characters (Stedi's "
                 "provider.organizationName)");
        return -1;
    }
    return 0;
}

static void register_metrics(rte_stedi *s)
{
    static const char *const call_labels[] = {"api", "outcome", NULL};
    static const char *const api_label[] = {"api", NULL};
    static const char *const cls_label[] = {"class", NULL};

    s->calls =
        rte_counter_new("rte_stedi_calls_total", "Stedi API calls by API and outcome", call_labels);
    s->duration =
        rte_histogram_new("rte_stedi_call_duration_seconds",
                          "Stedi API exchange time incl. retries, by API", api_label, NULL, 0);
    s->slot_wait =
        rte_histogram_new("rte_stedi_slot_wait_seconds",
                          "Time a real-time call waited for its slot", cls_label, NULL, 0);
    s->degraded_calls = rte_metric_series0(rte_counter_new(
        "rte_stedi_degraded_calls_total",
        "Interactive real-time calls made on the local budget while the slot limiter's Redis "
        "was unreachable",
        NULL));
    s->lease_lost = rte_metric_series0(rte_counter_new(
        "rte_stedi_lease_lost_total",
        "Real-time calls abandoned because their slot lease could not be renewed", NULL));
}

static void count_call(rte_stedi *s, enum api a, const char *outcome, double seconds)
{
    rte_counter_inc(s->calls, (const char *const[]){api_names[a], outcome});
    rte_histogram_observe(s->duration, (const char *const[]){api_names[a]}, seconds);
}

/* ---- the lease keeper ------------------------------------------------- */

static void hold(rte_stedi *s, struct held *h)
{
    pthread_mutex_lock(&s->mu);
    h->next = s->held;
    s->held = h;
    pthread_mutex_unlock(&s->mu);
}

static void unhold(rte_stedi *s, struct held *h)
{
    pthread_mutex_lock(&s->mu);
    for (struct held **pp = &s->held; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

/* Mark h lost if it is still held (it may have been released meanwhile). */
static void mark_lost(rte_stedi *s, const struct held *h)
{
    pthread_mutex_lock(&s->mu);
    for (struct held *p = s->held; p; p = p->next)
        if (p == h) {
            __atomic_store_n(&p->lost, 1, __ATOMIC_RELEASE);
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

static void renew_all(rte_stedi *s)
{
    struct held **snap = NULL;
    rte_slot_lease *leases = NULL;
    size_t n = 0, i;

    pthread_mutex_lock(&s->mu);
    for (struct held *p = s->held; p; p = p->next)
        n++;
    if (n > 0) {
        snap = calloc(n, sizeof *snap);
        leases = calloc(n, sizeof *leases);
    }
    if (snap != NULL && leases != NULL) {
        i = 0;
        for (struct held *p = s->held; p; p = p->next, i++) {
            snap[i] = p;
            leases[i] = p->lease;
        }
    } else {
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);

    for (i = 0; i < n; i++) {
        int rc = rte_slots_renew(s->o.slots, &leases[i]);
        if (rc == RTE_SLOTS_LOST) {
            rte_log_error("stedi: slot lease %s expired during a real-time call; abandoning "
                          "the call so the slot limit holds",
                          leases[i].token);
            mark_lost(s, snap[i]);
        }
        /* RTE_SLOTS_ERROR: Redis is unreachable; slots.c logged it. Keep the call:
         * nobody else can be granted our slot while Redis cannot answer either,
         * and the next round retries before lease_ms runs out. */
    }
    free(snap);
    free(leases);
}

static void *keeper_main(void *arg)
{
    rte_stedi *s = arg;
    int64_t every = rte_slots_lease_ms(s->o.slots) / 3;
    struct timespec until;

    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        until = rte_clock_mono_timespec(rte_clock_mono_ms() + every);
        while (!s->stopping && pthread_cond_timedwait(&s->wake, &s->mu, &until) != ETIMEDOUT)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        renew_all(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- construction ----------------------------------------------------- */

static void trim_slashes(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

/* rte_stedi_new - any thread; starts the keeper when a limiter is given */
rte_stedi *rte_stedi_new(const rte_stedi_opts *o, char *err, size_t errlen)
{
    rte_stedi *s;

    if (check_opts(o, err, errlen) != 0)
        return NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "stedi: out of memory");
        return NULL;
    }
    s->o = *o;
    s->healthcare_url = strdup(o->healthcare_base_url);
    s->manager_url = strdup(o->manager_base_url);
    s->api_key = strdup(o->api_key);
    s->provider_name = strdup(o->provider_name);
    s->provider_npi = strdup(o->provider_npi);
    if (!s->healthcare_url || !s->manager_url || !s->api_key || !s->provider_name ||
        !s->provider_npi) {
        snprintf(err, errlen, "stedi: out of memory");
        goto fail;
    }
    /* drop trailing slashes so paths join cleanly */
    trim_slashes(s->healthcare_url);
    trim_slashes(s->manager_url);
    /* Stedi: "Authorization: <api key>"; the "Key <api key>" form is only still accepted */
    snprintf(s->auth_header, sizeof s->auth_header, "Authorization: %s", s->api_key);
    if (s->o.http == NULL) {
        s->own_http = rte_http_client_new(NULL, err, errlen);
        if (s->own_http == NULL)
            goto fail;
        s->o.http = s->own_http;
    }
    pthread_mutex_init(&s->mu, NULL);
    rte_clock_cond_init(&s->wake);
    rte_clock_cond_init(&s->degraded_cv);
    register_metrics(s);
    if (s->o.slots != NULL) {
        if (pthread_create(&s->keeper, NULL, keeper_main, s) != 0) {
            snprintf(err, errlen, "stedi: cannot start the lease keeper thread");
            pthread_cond_destroy(&s->wake);
            pthread_cond_destroy(&s->degraded_cv);
            pthread_mutex_destroy(&s->mu);
            goto fail;
        }
        s->keeper_started = 1;
    }
    return s;
fail:
    if (s->own_http)
        rte_http_client_free(s->own_http);
    free(s->healthcare_url);
    free(s->manager_url);
    free(s->api_key);
    free(s->provider_name);
    free(s->provider_npi);
    free(s);
    return NULL;
}

static int slots_from_config(const rte_config *cfg, rte_slots_opts *so, char *err, size_t errlen)
{
    rte_slots_opts_init(so);
    so->prefix = rte_config_str(cfg, "slots.prefix", so->prefix);
    if (rte_config_int32_try(cfg, "slots.limit", so->limit, 1, 1000, &so->limit, err, errlen) ||
        rte_config_int32_try(cfg, "slots.warming_cap", so->warming_cap, 0, 1000, &so->warming_cap,
                             err, errlen) ||
        rte_config_int32_try(cfg, "slots.batch_cap", so->batch_cap, 0, 1000, &so->batch_cap, err,
                             errlen) ||
        rte_config_int32_try(cfg, "slots.reserve_interactive", so->reserve_interactive, 0, 1000,
                             &so->reserve_interactive, err, errlen) ||
        rte_config_duration32_try(cfg, "slots.lease", so->lease_ms, 100, 3600 * 1000, &so->lease_ms,
                                  err, errlen) ||
        rte_config_duration32_try(cfg, "slots.waiter_ttl", so->waiter_ttl_ms, 100, 600 * 1000,
                                  &so->waiter_ttl_ms, err, errlen) ||
        rte_config_duration32_try(cfg, "redis.timeout", so->redis_timeout_ms, 10, 60000,
                                  &so->redis_timeout_ms, err, errlen))
        return -1;
    return 0;
}

/* the client's and the limiter's options from cfg (strings borrowed); -1 + err naming the key */
static int opts_from_config(const rte_config *cfg, rte_stedi_opts *op, rte_slots_opts *so,
                            char *err, size_t errlen)
{
    rte_stedi_opts o;
    rte_cache_settings cs;
    const char *base;

    rte_stedi_opts_init(&o);
    /* stedi.base_url: the local single-host shorthand both default to */
    base = rte_config_str(cfg, "stedi.base_url", o.healthcare_base_url);
    o.healthcare_base_url = rte_config_str(cfg, "stedi.healthcare_base_url", base);
    o.manager_base_url = rte_config_str(cfg, "stedi.manager_base_url", base);
    if (check_base_url("stedi.base_url (RTE_STEDI_BASE_URL)", base, err, errlen) != 0 ||
        check_base_url("stedi.healthcare_base_url (RTE_STEDI_HEALTHCARE_BASE_URL)",
                       o.healthcare_base_url, err, errlen) != 0 ||
        check_base_url("stedi.manager_base_url (RTE_STEDI_MANAGER_BASE_URL)", o.manager_base_url,
                       err, errlen) != 0)
        return -1;
    o.api_key = rte_config_str(cfg, "stedi.api_key", "test-key");
    o.provider_name = rte_config_str(cfg, "stedi.provider_name", o.provider_name);
    o.provider_npi = rte_config_str(cfg, "stedi.provider_npi", o.provider_npi);
    if (strcmp(o.api_key, "test-key") == 0)
        rte_log_warn("stedi.api_key is the simulator's test key; set RTE_STEDI_API_KEY for a "
                     "real Stedi account");
    if (rte_config_int32_try(cfg, "slots.degraded_limit", o.degraded_limit, 0, 1000,
                             &o.degraded_limit, err, errlen) ||
        rte_config_duration32_try(cfg, "stedi.timeout", o.realtime_timeout_ms, 100, 600 * 1000,
                                  &o.realtime_timeout_ms, err, errlen) ||
        rte_config_duration32_try(cfg, "stedi.api_timeout", o.api_timeout_ms, 100, 600 * 1000,
                                  &o.api_timeout_ms, err, errlen) ||
        rte_config_duration32_try(cfg, "stedi.retry_base_delay", o.base_delay_ms, 1, 60 * 1000,
                                  &o.base_delay_ms, err, errlen) ||
        rte_config_duration32_try(cfg, "stedi.retry_max_delay", o.max_delay_ms, 1, 600 * 1000,
                                  &o.max_delay_ms, err, errlen) ||
        rte_config_int32_try(cfg, "stedi.max_attempts", o.max_attempts, 1, 20, &o.max_attempts, err,
                             errlen))
        return -1;
    if (o.max_delay_ms < o.base_delay_ms) {
        snprintf(err, errlen,
                 "stedi.retry_max_delay (RTE_STEDI_RETRY_MAX_DELAY) must be at least "
                 "stedi.retry_base_delay");
        return -1;
    }
    if (!valid_npi(o.provider_npi)) {
        snprintf(err, errlen, "stedi.provider_npi (RTE_STEDI_PROVIDER_NPI): '%s' is not 10 digits",
                 o.provider_npi);
        return -1;
    }
    if (o.provider_name[0] == '\0' || strlen(o.provider_name) > 60) {
        snprintf(err, errlen,
                 "stedi.provider_name (RTE_STEDI_PROVIDER_NAME): must be 1..60 characters "
                 "(Stedi's provider.organizationName)");
        return -1;
    }
    if (rte_cache_settings_from_config(cfg, &cs, err, errlen) != 0)
        return -1;
    o.freshness = cs.freshness;
    if (slots_from_config(cfg, so, err, errlen) != 0)
        return -1;
    *op = o;
    return 0;
}

/* rte_stedi_check_config - any thread; builds nothing */
int rte_stedi_check_config(const rte_config *cfg, char *err, size_t errlen)
{
    rte_stedi_opts o;
    rte_slots_opts so;

    return opts_from_config(cfg, &o, &so, err, errlen);
}

/* rte_stedi_from_config - start-up thread; fatal-free: returns NULL + err naming the key */
rte_stedi *rte_stedi_from_config(const rte_config *cfg, char *err, size_t errlen)
{
    rte_stedi_opts o;
    rte_slots_opts so;
    rte_slots *slots;
    rte_stedi *s;

    if (opts_from_config(cfg, &o, &so, err, errlen) != 0)
        return NULL;
    slots =
        rte_slots_new(rte_config_str(cfg, "redis.url", rte_redis_default_url()), &so, err, errlen);
    if (slots == NULL)
        return NULL;
    o.slots = slots;
    s = rte_stedi_new(&o, err, errlen);
    if (s == NULL) {
        rte_slots_free(slots);
        return NULL;
    }
    s->own_slots = slots;
    return s;
}

/* rte_stedi_free - start-up/shutdown thread; no call may be in progress */
void rte_stedi_free(rte_stedi *s)
{
    if (s == NULL)
        return;
    if (s->keeper_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->keeper, NULL);
    }
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->degraded_cv);
    pthread_mutex_destroy(&s->mu);
    if (s->own_slots)
        rte_slots_free(s->own_slots);
    if (s->own_http)
        rte_http_client_free(s->own_http);
    free(s->healthcare_url);
    free(s->manager_url);
    free(s->api_key);
    free(s->provider_name);
    free(s->provider_npi);
    free(s);
}

/* rte_stedi_slots - borrowed; any thread */
rte_slots *rte_stedi_slots(rte_stedi *s)
{
    return s->o.slots;
}

/* ---- request documents ------------------------------------------------ */

/* YYYY-MM-DD or YYYYMMDD -> YYYYMMDD; -1 unless a date Stedi's pattern accepts */
static int x12_dob(const char *in, char out[9])
{
    size_t n = in ? strlen(in) : 0;
    int k = 0, month, day;

    if (n != 8 && !(n == 10 && in[4] == '-' && in[7] == '-'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (n == 10 && (i == 4 || i == 7))
            continue;
        if (in[i] < '0' || in[i] > '9')
            return -1;
        out[k++] = in[i];
    }
    out[8] = '\0';
    /* ^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$ */
    month = (out[4] - '0') * 10 + (out[5] - '0');
    day = (out[6] - '0') * 10 + (out[7] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 ? 0 : -1;
}

/* a required string of min..max bytes */
static int required(const char *v, const char *name, size_t min, size_t max, char *err,
                    size_t errlen)
{
    size_t n = v ? strlen(v) : 0;

    if (n == 0) {
        snprintf(err, errlen, "%s: missing", name);
        return -1;
    }
    if (n < min || n > max) {
        snprintf(err, errlen, "%s: %zu characters; Stedi takes %zu..%zu", name, n, min, max);
        return -1;
    }
    return 0;
}

/* every character of v in the set (letters and digits plus extra) */
static int only(const char *v, const char *extra)
{
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr(extra, *p) == NULL)
            return 0;
    return 1;
}

static int validate_check(const rte_stedi_check *c, int batch, char *err, size_t errlen)
{
    char dob[9];
    rte_stedi_asked asked;

    if (required(c->trading_partner_id, "tradingPartnerServiceId", 1, 80, err, errlen) ||
        required(c->member_id, "subscriber.memberId", 2, 80, err, errlen) ||
        required(c->first_name, "subscriber.firstName", 1, 35, err, errlen) ||
        required(c->last_name, "subscriber.lastName", 1, 60, err, errlen))
        return -1;
    if (!only(c->member_id, "- ")) {
        snprintf(err, errlen,
                 "subscriber.memberId: '%.80s' has characters Stedi refuses (letters, digits, "
                 "'-' and spaces only)",
                 c->member_id);
        return -1;
    }
    if (x12_dob(c->date_of_birth, dob) != 0) {
        snprintf(err, errlen,
                 "subscriber.dateOfBirth: '%.40s' is not a date as YYYYMMDD or "
                 "YYYY-MM-DD",
                 c->date_of_birth ? c->date_of_birth : "");
        return -1;
    }
    if (c->provider_name != NULL &&
        required(c->provider_name, "provider.organizationName", 1, 60, err, errlen))
        return -1;
    if (c->provider_npi != NULL && !valid_npi(c->provider_npi)) {
        snprintf(err, errlen, "provider.npi: '%.40s' is not 10 digits", c->provider_npi);
        return -1;
    }
    if (rte_stedi_asked_parse(c->service_types, &asked, err, errlen) != 0)
        return -1;
    if (c->control_number != NULL &&
        (strlen(c->control_number) != 9 || !only(c->control_number, "") ||
         strspn(c->control_number, "0123456789") != 9)) {
        snprintf(err, errlen, "controlNumber: '%.40s' is not 9 digits", c->control_number);
        return -1;
    }
    if (batch) {
        if (required(c->submitter_id, "submitterTransactionIdentifier", 1, 50, err, errlen))
            return -1;
        if (!only(c->submitter_id, "._-")) {
            snprintf(err, errlen,
                     "submitterTransactionIdentifier: '%.50s': letters, digits, '.', '_' and "
                     "'-' only",
                     c->submitter_id);
            return -1;
        }
    }
    return 0;
}

/* The real-time request document (also a batch item when submitter_id is set). */
static cJSON *check_doc(const rte_stedi *s, const rte_stedi_check *c)
{
    char dob[9], why[120];
    cJSON *d = cJSON_CreateObject(), *prov, *sub, *enc, *codes;
    rte_stedi_asked asked;

    if (d == NULL)
        return NULL;
    x12_dob(c->date_of_birth, dob);
    if (rte_stedi_asked_parse(c->service_types, &asked, why, sizeof why) != 0 || asked.n == 0)
        asked = (rte_stedi_asked){1, {"30"}};
    if (c->submitter_id)
        cJSON_AddStringToObject(d, "submitterTransactionIdentifier", c->submitter_id);
    /* controlNumber is deprecated: "Stedi generates a control number for each eligibility
     * check" - sent only when the caller has its own */
    if (c->control_number)
        cJSON_AddStringToObject(d, "controlNumber", c->control_number);
    cJSON_AddStringToObject(d, "tradingPartnerServiceId", c->trading_partner_id);
    prov = cJSON_AddObjectToObject(d, "provider");
    cJSON_AddStringToObject(prov, "organizationName",
                            c->provider_name ? c->provider_name : s->provider_name);
    cJSON_AddStringToObject(prov, "npi", c->provider_npi ? c->provider_npi : s->provider_npi);
    sub = cJSON_AddObjectToObject(d, "subscriber");
    cJSON_AddStringToObject(sub, "memberId", c->member_id);
    cJSON_AddStringToObject(sub, "firstName", c->first_name);
    cJSON_AddStringToObject(sub, "lastName", c->last_name);
    cJSON_AddStringToObject(sub, "dateOfBirth", dob);
    enc = cJSON_AddObjectToObject(d, "encounter");
    codes = cJSON_AddArrayToObject(enc, "serviceTypeCodes");
    for (int i = 0; i < asked.n; i++)
        cJSON_AddItemToArray(codes, cJSON_CreateString(asked.code[i]));
    return d;
}

/*
 * Stedi's error message from a JSON error body ({"message", "fieldList":
 * [{"path", "message"}]} for a validation error), else the start of the
 * raw body; a refused key (401/403) says which setting to check.
 */
static void error_text(const rte_http_response *r, char *out, size_t len)
{
    cJSON *d;
    const cJSON *m, *f0;
    const char *path = NULL, *fmsg = NULL;

    if (r->status == 0) {
        snprintf(out, len, "%s", r->error);
        return;
    }
    d = cJSON_ParseWithLength(r->body ? r->body : "", r->body_len);
    m = d ? cJSON_GetObjectItemCaseSensitive(d, "message") : NULL;
    f0 = d ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "fieldList"), 0) : NULL;
    if (cJSON_IsObject(f0)) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(f0, "path");
        const cJSON *fm = cJSON_GetObjectItemCaseSensitive(f0, "message");
        path = cJSON_IsString(p) ? p->valuestring : NULL;
        fmsg = cJSON_IsString(fm) ? fm->valuestring : NULL;
    }
    if (r->status == 401 || r->status == 403)
        snprintf(out, len, "Stedi refused the API key (HTTP %ld: %.100s); check stedi.api_key",
                 r->status, cJSON_IsString(m) ? m->valuestring : "");
    else if (cJSON_IsString(m) && path != NULL)
        snprintf(out, len, "HTTP %ld: %.100s (%.60s: %.60s)", r->status, m->valuestring, path,
                 fmsg ? fmsg : "invalid");
    else if (cJSON_IsString(m))
        snprintf(out, len, "HTTP %ld: %s", r->status, m->valuestring);
    else
        snprintf(out, len, "HTTP %ld: %.120s", r->status, r->body ? r->body : "");
    cJSON_Delete(d);
}

static void base_request(const rte_stedi *s, rte_http_request *req, enum api a, const char *url,
                         const char *const *headers)
{
    memset(req, 0, sizeof *req);
    req->url = url;
    req->headers = headers;
    req->timeout_ms = a == API_REALTIME ? s->o.realtime_timeout_ms : s->o.api_timeout_ms;
    req->max_attempts = s->o.max_attempts;
    req->base_delay_ms = s->o.base_delay_ms;
    req->max_delay_ms = s->o.max_delay_ms;
    req->name = http_names[a];
}

/* ---- real-time -------------------------------------------------------- */

/* Take one of the process-local degraded slots, waiting until deadline (monotonic ms). */
static int degraded_acquire(rte_stedi *s, int64_t deadline)
{
    struct timespec until;
    int ok;

    until = rte_clock_mono_timespec(deadline);
    pthread_mutex_lock(&s->mu);
    while (s->degraded_in_use >= s->o.degraded_limit && !s->stopping &&
           pthread_cond_timedwait(&s->degraded_cv, &s->mu, &until) != ETIMEDOUT)
        ;
    ok = s->degraded_in_use < s->o.degraded_limit && !s->stopping;
    if (ok)
        s->degraded_in_use++;
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : -1;
}

/* At most one warning per 10 s while degraded: an outage must not flood the log. */
static void warn_degraded(rte_stedi *s, const char *why)
{
    static int64_t last_ms;
    int64_t now = rte_clock_mono_ms(), prev = __atomic_load_n(&last_ms, __ATOMIC_RELAXED);

    if (now - prev < 10000 && prev != 0)
        return;
    if (!__atomic_compare_exchange_n(&last_ms, &prev, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    rte_log_warn("slot limiter unreachable (%s); interactive calls go to Stedi on the local "
                 "degraded budget (%d per process; see rte_stedi_degraded_calls_total)",
                 why, s->o.degraded_limit);
}

static void degraded_release(rte_stedi *s)
{
    pthread_mutex_lock(&s->mu);
    s->degraded_in_use--;
    pthread_cond_signal(&s->degraded_cv);
    pthread_mutex_unlock(&s->mu);
}

static int finish(rte_stedi *s, rte_stedi_result *out, enum rte_stedi_outcome oc, double seconds)
{
    out->outcome = oc;
    count_call(s, API_REALTIME, rte_stedi_outcome_name(oc), seconds);
    return oc == RTE_STEDI_OK || oc == RTE_STEDI_PAYER_ERROR ? 0 : -1;
}

/* the outcome of a finished exchange; out->entry filled for OK and PAYER_ERROR */
static enum rte_stedi_outcome classify(const rte_stedi *s, const rte_http_response *r,
                                       const struct held *h, const rte_stedi_asked *asked,
                                       int64_t deadline, rte_stedi_result *out)
{
    char err[200];
    cJSON *doc = NULL;
    int read = -1;

    if (__atomic_load_n(&h->lost, __ATOMIC_ACQUIRE)) {
        snprintf(out->message, sizeof out->message,
                 "slot lease lost during the call (Redis unreachable longer than the lease); "
                 "call abandoned");
        return RTE_STEDI_FAILED;
    }
    if (r->status == 0) {
        snprintf(out->message, sizeof out->message, "%s", r->error);
        if (r->timed_out || (deadline != 0 && rte_clock_mono_ms() >= deadline))
            return RTE_STEDI_TIMEOUT;
        return RTE_STEDI_FAILED;
    }
    /* an eligibility answer is one whatever the status: Stedi documents a payer's AAA
     * rejection under HTTP 400, an unknown payer as a 400 with its own code */
    snprintf(err, sizeof err, "empty body");
    if (r->body != NULL && r->body_len > 0)
        doc = rte_json_parse(r->body, r->body_len, err, sizeof err);
    if (doc != NULL)
        read = rte_stedi_reply_read(doc, asked, "stedi_realtime", rte_clock_now_ms(),
                                    &s->o.freshness, &out->entry, err, sizeof err);
    cJSON_Delete(doc);
    if (read == 0) {
        if (!out->entry.is_error)
            return RTE_STEDI_OK;
        snprintf(out->message, sizeof out->message, "%s error %s (%s): %s", out->entry.error_origin,
                 out->entry.error_code, out->entry.error_retry ? "retry later" : "do not retry",
                 out->entry.error_message);
        return RTE_STEDI_PAYER_ERROR;
    }
    memset(&out->entry, 0, sizeof out->entry);
    if (r->status == 200) {
        snprintf(out->message, sizeof out->message, "unexpected Stedi answer: %s", err);
        return RTE_STEDI_FAILED;
    }
    error_text(r, out->message, sizeof out->message);
    if (r->status == 429)
        return RTE_STEDI_RATE_LIMITED;
    if (r->status == 504 || r->status == 408)
        return RTE_STEDI_TIMEOUT;
    if (r->status >= 500)
        return RTE_STEDI_UNAVAILABLE;
    return RTE_STEDI_REJECTED;
}

/* rte_stedi_realtime - any thread; blocks for the slot and the exchange */
int rte_stedi_realtime(rte_stedi *s, const rte_stedi_check *chk, enum rte_slot_class cls,
                       int64_t deadline_mono_ms, rte_stedi_started_fn on_started, void *arg,
                       rte_stedi_result *out)
{
    return rte_stedi_realtime_notify(s, chk, cls, deadline_mono_ms, NULL, on_started, arg, out);
}

/* rte_stedi_realtime_notify - any thread; blocks for the slot and the exchange */
int rte_stedi_realtime_notify(rte_stedi *s, const rte_stedi_check *chk, enum rte_slot_class cls,
                              int64_t deadline_mono_ms, rte_slots_wait_fn on_enqueued,
                              rte_stedi_started_fn on_started, void *arg, rte_stedi_result *out)
{
    char url[URL_MAX], err[256];
    const char *headers[] = {s->auth_header, "Content-Type: application/json", NULL};
    rte_http_request req;
    rte_http_response resp;
    struct held h;
    cJSON *doc;
    char *body;
    int64_t t0 = rte_clock_mono_ms(), slot_deadline, t1;
    int rc;
    enum rte_stedi_outcome oc;
    rte_stedi_asked asked;

    memset(out, 0, sizeof *out);
    if (validate_check(chk, 0, out->message, sizeof out->message) != 0)
        return finish(s, out, RTE_STEDI_REJECTED, 0);
    rte_stedi_asked_parse(chk->service_types, &asked, err, sizeof err); /* validated above */
    if (s->o.slots == NULL) {
        snprintf(out->message, sizeof out->message,
                 "no slot limiter configured; real-time calls are refused");
        return finish(s, out, RTE_STEDI_NO_SLOT, 0);
    }
    doc = check_doc(s, chk);
    body = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (body == NULL) {
        snprintf(out->message, sizeof out->message, "out of memory building the request");
        return finish(s, out, RTE_STEDI_FAILED, 0);
    }

    memset(&h, 0, sizeof h);
    slot_deadline = deadline_mono_ms != 0 ? deadline_mono_ms : t0 + s->o.realtime_timeout_ms;
    rc = rte_slots_acquire_notify(s->o.slots, cls, slot_deadline, on_enqueued, arg, &h.lease, err,
                                  sizeof err);
    if (rc == RTE_SLOTS_ERROR && cls == RTE_SLOT_INTERACTIVE && s->o.degraded_limit > 0) {
        if (degraded_acquire(s, slot_deadline) == 0) {
            warn_degraded(s, err);
            out->degraded = 1;
            rc = 0;
            snprintf(h.lease.token, sizeof h.lease.token, "degraded");
            h.lease.cls = cls;
            h.lease.acquired_ms = rte_clock_mono_ms();
            rte_series_inc(s->degraded_calls);
        } else {
            rc = RTE_SLOTS_TIMEOUT;
        }
    }
    t1 = rte_clock_mono_ms();
    out->slot_wait_ms = t1 - t0;
    rte_histogram_observe(s->slot_wait, (const char *const[]){rte_slot_class_name(cls)},
                          (double)out->slot_wait_ms / 1000.0);
    if (rc != 0) {
        snprintf(out->message, sizeof out->message, "%s",
                 rc == RTE_SLOTS_TIMEOUT ? "no real-time slot free before the deadline" : err);
        free(body);
        return finish(s, out, RTE_STEDI_NO_SLOT, 0);
    }
    if (on_started)
        on_started(arg, &h.lease);

    snprintf(url, sizeof url, "%s%s", s->healthcare_url, PATH_REALTIME);
    base_request(s, &req, API_REALTIME, url, headers);
    req.method = "POST";
    req.body = body;
    req.body_len = strlen(body);
    req.deadline_ms = deadline_mono_ms;
    req.idempotent = 1; /* an eligibility inquiry changes nothing at Stedi or the payer */
    req.abort_flag = &h.lost;

    if (out->degraded) {
        rte_http_do(s->o.http, &req, &resp);
        degraded_release(s);
    } else {
        hold(s, &h);
        rte_http_do(s->o.http, &req, &resp);
        unhold(s, &h);
        rte_slots_release(s->o.slots, &h.lease);
    }
    if (__atomic_load_n(&h.lost, __ATOMIC_ACQUIRE))
        rte_series_inc(s->lease_lost);

    out->call_ms = rte_clock_mono_ms() - t1;
    out->http_status = resp.status;
    out->attempts = resp.attempts;
    oc = classify(s, &resp, &h, &asked, deadline_mono_ms, out);
    rte_http_response_free(&resp);
    free(body);
    return finish(s, out, oc, (double)out->call_ms / 1000.0);
}

/* ---- batch ------------------------------------------------------------ */

/* rte_stedi_batch_name_valid - pure */
int rte_stedi_batch_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= 100 && only(name, "-_");
}

/* rte_stedi_batch_name - any thread */
void rte_stedi_batch_name(const char *prefix, char *out, size_t len)
{
    char p[64], ts[40], hex[9];
    uint8_t b[4];
    size_t k = 0;

    /* keep Stedi's characters of the prefix, at most 60 of them */
    for (const char *c = prefix ? prefix : ""; *c && k < 60; c++)
        if (isalnum((unsigned char)*c) || *c == '-' || *c == '_')
            p[k++] = *c;
    p[k] = '\0';
    rte_clock_format(rte_clock_now_ms(), ts, sizeof ts); /* 2026-11-23T10:00:00.000Z */
    rte_random_bytes(b, sizeof b);
    rte_hex_encode(b, sizeof b, hex);
    snprintf(out, len, "%s%s%.4s%.2s%.2sT%.2s%.2s%.2s-%s", p, k ? "-" : "", ts, ts + 5, ts + 8,
             ts + 11, ts + 14, ts + 17, hex);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* every submitter_id differs: it is how polled results find their member */
static int unique_ids(const rte_stedi_check *items, size_t n, char *err, size_t errlen)
{
    const char **ids = calloc(n, sizeof *ids);
    int rc = 0;

    if (ids == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = items[i].submitter_id;
    qsort(ids, n, sizeof *ids, cmp_str);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            snprintf(err, errlen,
                     "items: submitterTransactionIdentifier '%.50s' used twice; results could "
                     "not be told apart",
                     ids[i]);
            rc = -1;
        }
    free(ids);
    return rc;
}

/* rte_stedi_batch_submit - any thread; blocks; never resubmits what Stedi may have taken */
int rte_stedi_batch_submit(rte_stedi *s, const rte_stedi_check *items, size_t n, const char *name,
                           int max_retry_hours, char *batch_id, size_t idlen, char *err,
                           size_t errlen)
{
    char url[URL_MAX], why[200];
    const char *headers[] = {s->auth_header, "Content-Type: application/json", NULL};
    rte_http_request req;
    rte_http_response resp;
    cJSON *doc = NULL, *arr, *ans = NULL;
    const cJSON *id;
    char *body = NULL;
    int rc = RTE_STEDI_E_FAILED;
    int64_t t0 = rte_clock_mono_ms();
    const char *outcome = "rejected";

    memset(&resp, 0, sizeof resp);
    if (n < 1 || n > MAX_BATCH_ITEMS) {
        snprintf(err, errlen, "items: %zu items; a batch takes 1..%d", n, MAX_BATCH_ITEMS);
        goto out;
    }
    if (max_retry_hours != 0 && (max_retry_hours < 8 || max_retry_hours > 24)) {
        snprintf(err, errlen, "maxRetryHours: %d outside 8..24", max_retry_hours);
        goto out;
    }
    if (name != NULL && !rte_stedi_batch_name_valid(name)) {
        snprintf(err, errlen,
                 "name: '%.110s' must match ^[a-zA-Z0-9-_]{1,100}$ (and be unique in the "
                 "account)",
                 name);
        goto out;
    }
    doc = cJSON_CreateObject();
    arr = doc ? cJSON_AddArrayToObject(doc, "items") : NULL;
    if (arr == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (validate_check(&items[i], 1, why, sizeof why) != 0) {
            snprintf(err, errlen, "items[%zu].%s", i, why);
            goto out;
        }
        cJSON_AddItemToArray(arr, check_doc(s, &items[i]));
    }
    if (unique_ids(items, n, err, errlen) != 0)
        goto out;
    if (name)
        cJSON_AddStringToObject(doc, "name", name);
    if (max_retry_hours)
        cJSON_AddNumberToObject(doc, "maxRetryHours", max_retry_hours);
    body = cJSON_PrintUnformatted(doc);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    snprintf(url, sizeof url, "%s%s", s->manager_url, PATH_BATCH);
    base_request(s, &req, API_BATCH, url, headers);
    req.method = "POST";
    req.body = body;
    req.body_len = strlen(body);
    req.retry_refused = 1; /* creates a batch: repeat only what Stedi certainly refused */
    rte_http_do(s->o.http, &req, &resp);

    if (resp.status >= 200 && resp.status < 300) {
        ans = rte_json_parse(resp.body ? resp.body : "", resp.body_len, why, sizeof why);
        id = ans ? cJSON_GetObjectItemCaseSensitive(ans, "batchId") : NULL;
        if (!cJSON_IsString(id) || id->valuestring[0] == '\0' || strlen(id->valuestring) >= idlen) {
            snprintf(err, errlen, "Stedi accepted the batch but its answer has no usable batchId");
            rc = RTE_STEDI_E_UNKNOWN;
            outcome = "failed";
            goto out;
        }
        snprintf(batch_id, idlen, "%s", id->valuestring);
        rc = 0;
        outcome = "ok";
        goto out;
    }
    error_text(&resp, why, sizeof why);
    if (resp.status == 409) {
        snprintf(err, errlen, "batch refused: the name '%.100s' is taken in the account (%s)",
                 name ? name : "", why);
        rc = RTE_STEDI_E_EXISTS;
    } else if (resp.status == 429 || (resp.status >= 400 && resp.status < 500) ||
               (resp.status == 0 && resp.not_sent)) {
        snprintf(err, errlen, "batch refused: %s", why);
        outcome = resp.status == 429 ? "rate_limited" : resp.status == 0 ? "failed" : "rejected";
    } else {
        snprintf(err, errlen,
                 "batch outcome unknown (%s); Stedi may have created it - check "
                 "before resubmitting",
                 why);
        rc = RTE_STEDI_E_UNKNOWN;
        outcome = resp.status >= 500 ? "unavailable" : resp.timed_out ? "timeout" : "failed";
    }
out:
    count_call(s, API_BATCH, outcome, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    rte_http_response_free(&resp);
    cJSON_Delete(ans);
    cJSON_Delete(doc);
    free(body);
    return rc;
}

/* percent-encode everything but unreserved characters (RFC 3986) */
static int url_escape(const char *in, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (k + (plain ? 1 : 3) >= len)
            return -1;
        if (plain) {
            out[k++] = (char)*p;
        } else {
            out[k++] = '%';
            out[k++] = hex[*p >> 4];
            out[k++] = hex[*p & 15];
        }
    }
    out[k] = '\0';
    return 0;
}

/* GET url; fills *doc on 200. Returns 0, RTE_STEDI_E_NOT_FOUND or _FAILED + err. */
static int get_json(rte_stedi *s, enum api a, const char *url, rte_http_response *resp, cJSON **doc,
                    char *err, size_t errlen)
{
    const char *headers[] = {s->auth_header, "Accept: application/json", NULL};
    rte_http_request req;
    char why[200];
    int64_t t0 = rte_clock_mono_ms();
    const char *outcome;
    int rc = RTE_STEDI_E_FAILED;

    *doc = NULL;
    base_request(s, &req, a, url, headers);
    req.method = "GET";
    rte_http_do(s->o.http, &req, resp);
    if (resp->status == 200) {
        *doc = rte_json_parse(resp->body ? resp->body : "", resp->body_len, why, sizeof why);
        if (*doc == NULL) {
            snprintf(err, errlen, "unreadable Stedi answer: %s", why);
            outcome = "failed";
        } else {
            rc = 0;
            outcome = "ok";
        }
    } else {
        error_text(resp, why, sizeof why);
        snprintf(err, errlen, "%s", why);
        if (resp->status == 404) {
            rc = RTE_STEDI_E_NOT_FOUND;
            outcome = "not_found";
        } else if (resp->status == 429) {
            outcome = "rate_limited";
        } else if (resp->status >= 500) {
            outcome = "unavailable";
        } else if (resp->status >= 400) {
            outcome = "rejected";
        } else {
            outcome = resp->timed_out ? "timeout" : "failed";
        }
    }
    count_call(s, a, outcome, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    return rc;
}

static int int_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9 ? (int)v->valuedouble
                                                                            : 0;
}

static const char *const batch_states[] = {"UNKNOWN",
                                           "PENDING",
                                           "VALIDATED",
                                           "VALIDATION_FAILED",
                                           "IN_PROGRESS",
                                           "COMPLETED",
                                           "COMPLETED_WITH_ERRORS"};

/* rte_stedi_batch_state_name - static string */
const char *rte_stedi_batch_state_name(enum rte_stedi_batch_state st)
{
    return (unsigned)st < sizeof batch_states / sizeof batch_states[0] ? batch_states[st]
                                                                       : "UNKNOWN";
}

/* rte_stedi_batch_info_read - pure; any thread */
int rte_stedi_batch_info_read(const cJSON *doc, rte_stedi_batch_info *out, char *err, size_t errlen)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "status");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");

    memset(out, 0, sizeof *out);
    if (!cJSON_IsString(st) || st->valuestring[0] == '\0' ||
        strlen(st->valuestring) >= sizeof out->status) {
        snprintf(err, errlen, "batch status answer: status missing or unusable");
        return RTE_STEDI_E_FAILED;
    }
    snprintf(out->status, sizeof out->status, "%s", st->valuestring);
    for (size_t i = 1; i < sizeof batch_states / sizeof batch_states[0]; i++)
        if (strcmp(out->status, batch_states[i]) == 0)
            out->state = (enum rte_stedi_batch_state)i;
    if (cJSON_IsString(id))
        snprintf(out->id, sizeof out->id, "%s", id->valuestring);
    if (cJSON_IsString(name))
        snprintf(out->name, sizeof out->name, "%s", name->valuestring);
    out->total = int_field(doc, "totalCount");
    out->success = int_field(doc, "successCount");
    out->error = int_field(doc, "errorCount");
    out->in_progress = int_field(doc, "inProgressCount");
    out->validated = int_field(doc, "validatedCount");
    out->validation_failed = int_field(doc, "validationFailedCount");
    out->max_retry_hours = int_field(doc, "maxRetryHours");
    out->complete = out->state == RTE_STEDI_BATCH_COMPLETED ||
                    out->state == RTE_STEDI_BATCH_COMPLETED_WITH_ERRORS;
    out->failed = out->state == RTE_STEDI_BATCH_VALIDATION_FAILED;
    return 0;
}

/* rte_stedi_batch_status - any thread; blocks */
int rte_stedi_batch_status(rte_stedi *s, const char *batch_id, rte_stedi_batch_info *out, char *err,
                           size_t errlen)
{
    char url[URL_MAX], esc[512];
    rte_http_response resp;
    cJSON *doc;
    int rc;

    memset(out, 0, sizeof *out);
    if (batch_id == NULL || batch_id[0] == '\0' || url_escape(batch_id, esc, sizeof esc) != 0) {
        snprintf(err, errlen, "batchId: missing or too long");
        return RTE_STEDI_E_FAILED;
    }
    snprintf(url, sizeof url, "%s%s%s", s->manager_url, PATH_STATUS, esc);
    rc = get_json(s, API_STATUS, url, &resp, &doc, err, errlen);
    if (rc == 0)
        rc = rte_stedi_batch_info_read(doc, out, err, errlen);
    cJSON_Delete(doc);
    rte_http_response_free(&resp);
    return rc;
}

/* rte_stedi_page_read - pure; any thread */
int rte_stedi_page_read(rte_stedi_page *p, char *err, size_t errlen)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(p->doc, "items");
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(p->doc, "nextPageToken");

    /* nextPageToken: 1..1024 characters, absent on the last page */
    if (!cJSON_IsArray(items) ||
        (next != NULL && !cJSON_IsNull(next) &&
         (!cJSON_IsString(next) || strlen(next->valuestring) >= sizeof p->next_token))) {
        snprintf(err, errlen, "polling answer: items missing or nextPageToken unusable");
        return RTE_STEDI_E_FAILED;
    }
    p->items = items;
    p->count = cJSON_GetArraySize(items);
    p->next_token[0] = '\0';
    if (cJSON_IsString(next))
        snprintf(p->next_token, sizeof p->next_token, "%s", next->valuestring);
    return 0;
}

/* rte_stedi_poll_page - any thread; blocks */
int rte_stedi_poll_page(rte_stedi *s, const char *batch_id, int page_size, const char *page_token,
                        rte_stedi_page *out, char *err, size_t errlen)
{
    char url[URL_MAX], esc_id[512], esc_tok[3 * RTE_STEDI_PAGE_TOKEN_MAX + 1];
    rte_http_response resp;
    int rc;

    memset(out, 0, sizeof *out);
    if (page_size < 1 || page_size > 200) {
        snprintf(err, errlen, "pageSize: %d outside 1..200", page_size);
        return RTE_STEDI_E_FAILED;
    }
    if (batch_id == NULL || batch_id[0] == '\0' ||
        url_escape(batch_id, esc_id, sizeof esc_id) != 0) {
        snprintf(err, errlen, "batchId: missing or too long");
        return RTE_STEDI_E_FAILED;
    }
    if ((page_token != NULL && strlen(page_token) > RTE_STEDI_PAGE_TOKEN_MAX) ||
        url_escape(page_token ? page_token : "", esc_tok, sizeof esc_tok) != 0) {
        snprintf(err, errlen, "pageToken: longer than %d characters", RTE_STEDI_PAGE_TOKEN_MAX);
        return RTE_STEDI_E_FAILED;
    }
    snprintf(url, sizeof url, "%s%s?batchId=%s&pageSize=%d%s%s", s->manager_url, PATH_POLL, esc_id,
             page_size, esc_tok[0] ? "&pageToken=" : "", esc_tok);
    rc = get_json(s, API_POLL, url, &resp, &out->doc, err, errlen);
    if (rc == 0)
        rc = rte_stedi_page_read(out, err, errlen);
    if (rc == 0) {
        out->raw = resp.body;
        out->raw_len = resp.body_len;
        resp.body = NULL;
    }
    rte_http_response_free(&resp);
    if (rc != 0)
        rte_stedi_page_free(out);
    return rc;
}

/* rte_stedi_find_batch - any thread; blocks */
int rte_stedi_find_batch(rte_stedi *s, const char *name, int64_t since_ms, int max_pages,
                         char *batch_id, size_t idlen, char *err, size_t errlen)
{
    char url[URL_MAX], since[40], esc_since[128], token[RTE_STEDI_PAGE_TOKEN_MAX + 1] = "";
    char esc_tok[3 * RTE_STEDI_PAGE_TOKEN_MAX + 1];
    rte_http_response resp;
    rte_stedi_page page;
    int rc;

    rte_clock_format(since_ms, since, sizeof since);
    if (url_escape(since, esc_since, sizeof esc_since) != 0) {
        snprintf(err, errlen, "startDateTime: unusable");
        return RTE_STEDI_E_FAILED;
    }
    for (int n = 0; n < max_pages; n++) {
        if (url_escape(token, esc_tok, sizeof esc_tok) != 0) {
            snprintf(err, errlen, "pageToken: unusable");
            return RTE_STEDI_E_FAILED;
        }
        snprintf(url, sizeof url, "%s%s?startDateTime=%s&pageSize=200%s%s", s->manager_url,
                 PATH_POLL, esc_since, esc_tok[0] ? "&pageToken=" : "", esc_tok);
        memset(&page, 0, sizeof page);
        rc = get_json(s, API_POLL, url, &resp, &page.doc, err, errlen);
        rte_http_response_free(&resp);
        if (rc == 0)
            rc = rte_stedi_page_read(&page, err, errlen);
        if (rc != 0) {
            rte_stedi_page_free(&page);
            return RTE_STEDI_E_FAILED;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, page.items)
        {
            const cJSON *bn = cJSON_GetObjectItemCaseSensitive(it, "batchName");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "batchId");
            if (cJSON_IsString(bn) && strcmp(bn->valuestring, name) == 0 && cJSON_IsString(id) &&
                id->valuestring[0] != '\0' && strlen(id->valuestring) < idlen) {
                snprintf(batch_id, idlen, "%s", id->valuestring);
                rte_stedi_page_free(&page);
                return 1;
            }
        }
        snprintf(token, sizeof token, "%s", page.next_token);
        rte_stedi_page_free(&page);
        if (token[0] == '\0')
            break;
    }
    return 0;
}

/* rte_stedi_page_free - any thread */
void rte_stedi_page_free(rte_stedi_page *p)
{
    cJSON_Delete(p->doc);
    free(p->raw);
    memset(p, 0, sizeof *p);
}

/* "<skip>:<token>" -> skip and token; "" = start */
static int parse_cursor(const char *c, long *skip, char *token, size_t len)
{
    char *end;

    *skip = 0;
    token[0] = '\0';
    if (c == NULL || c[0] == '\0')
        return 0;
    errno = 0;
    *skip = strtol(c, &end, 10);
    if (errno != 0 || end == c || *end != ':' || *skip < 0 || *skip > 200 || strlen(end + 1) >= len)
        return -1;
    snprintf(token, len, "%s", end + 1);
    return 0;
}

static void make_cursor(char *out, size_t len, long skip, const char *token)
{
    if (skip == 0 && token[0] == '\0')
        snprintf(out, len, "%s", "");
    else
        snprintf(out, len, "%ld:%s", skip, token);
}

/* Drop the first skip items (already handed over) and re-render raw. */
static int drop_seen(rte_stedi_page *p, long skip)
{
    cJSON *items = (cJSON *)p->items;

    if (skip <= 0)
        return 0;
    for (long i = 0; i < skip && cJSON_GetArraySize(items) > 0; i++)
        cJSON_DeleteItemFromArray(items, 0);
    p->count = cJSON_GetArraySize(items);
    free(p->raw);
    p->raw = cJSON_PrintUnformatted(p->doc);
    p->raw_len = p->raw ? strlen(p->raw) : 0;
    return p->raw ? 0 : -1;
}

/* rte_stedi_poll_all - any thread; blocks; fn runs on the caller's thread */
long rte_stedi_poll_all(rte_stedi *s, const char *batch_id, int page_size, const char *cursor,
                        rte_stedi_page_fn fn, void *arg, char *cursor_out, size_t cursorlen,
                        char *err, size_t errlen)
{
    char token[RTE_STEDI_PAGE_TOKEN_MAX + 1], after[RTE_STEDI_CURSOR_MAX];
    long skip, handed = 0;
    rte_stedi_page page;
    int rc, total;

    if (parse_cursor(cursor, &skip, token, sizeof token) != 0) {
        snprintf(err, errlen, "cursor '%.60s' is not one this client wrote", cursor);
        return RTE_STEDI_E_FAILED;
    }
    make_cursor(cursor_out, cursorlen, skip, token);
    for (;;) {
        rc = rte_stedi_poll_page(s, batch_id, page_size, token, &page, err, errlen);
        if (rc != 0)
            return rc;
        total = page.count;
        if (total < skip) {
            snprintf(err, errlen,
                     "page at cursor holds %d items, fewer than the %ld already "
                     "handed over; Stedi's order changed",
                     total, skip);
            rte_stedi_page_free(&page);
            return RTE_STEDI_E_FAILED;
        }
        if (drop_seen(&page, skip) != 0) {
            snprintf(err, errlen, "out of memory");
            rte_stedi_page_free(&page);
            return RTE_STEDI_E_FAILED;
        }
        /* after this page: the next page's start, or (last page for now) this
         * token past everything it held */
        if (page.next_token[0] != '\0')
            make_cursor(after, sizeof after, 0, page.next_token);
        else
            make_cursor(after, sizeof after, total, token);
        if (page.count > 0 && fn(arg, &page, after) != 0) {
            rte_stedi_page_free(&page);
            return handed;
        }
        handed += page.count;
        snprintf(cursor_out, cursorlen, "%s", after);
        if (page.next_token[0] == '\0') {
            rte_stedi_page_free(&page);
            return handed;
        }
        snprintf(token, sizeof token, "%s", page.next_token);
        skip = 0;
        rte_stedi_page_free(&page);
    }
}

/* rte_stedi_item_map - pure; any thread */
int rte_stedi_item_map(const cJSON *item, const rte_stedi_asked *asked, int64_t now_ms,
                       const rte_cache_freshness *f, rte_stedi_item *out, char *err, size_t errlen)
{
    rte_cache_freshness def = rte_cache_freshness_default();
    const cJSON *b;
    char why[200];

    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(item)) {
        snprintf(err, errlen, "item: not an object");
        return -1;
    }
    if (rte_json_string(item, "submitterTransactionIdentifier", 80, &out->submitter_id, err,
                        errlen) != 0)
        return -1;
    b = cJSON_GetObjectItemCaseSensitive(item, "batchId");
    out->batch_id = cJSON_IsString(b) ? b->valuestring : NULL;
    /* a polled item is the real-time answer itself, flat: no wrapper, no member id */
    if (rte_stedi_reply_read(item, asked, "stedi_batch", now_ms, f ? f : &def, &out->entry, why,
                             sizeof why) != 0) {
        snprintf(err, errlen, "item %.80s: %s", out->submitter_id, why);
        return -1;
    }
    return 0;
}
