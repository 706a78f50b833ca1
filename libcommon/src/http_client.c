/*
 * http_client.c - libcurl (multi) HTTP client: one I/O thread, blocking
 * callers, retries with full-jitter backoff.
 *
 * Shape: each client owns a CURLM multi handle and one thread that drives it
 * (curl_multi_perform / curl_multi_poll). A caller of rte_http_do builds an
 * easy handle on its own thread, appends a transfer to the client's queue
 * (mutex-protected) and wakes the I/O thread with curl_multi_wakeup; the I/O
 * thread adds the handle to the multi, and when curl reports it done removes
 * it and signals the caller's condition variable. Because every transfer
 * goes through one multi handle, idle connections are kept in its pool and
 * reused by later requests from any thread (at most max_connections per
 * host); TLS sessions are shared through a CURLSH so new connections resume
 * them.
 *
 * Retries run on the caller's thread: attempt, classify, maybe sleep, repeat.
 * A request is retried only if it is safe to repeat (GET, HEAD, PUT, DELETE,
 * OPTIONS, or a POST marked idempotent) and the attempt ended in a
 * connection error, a timeout, 429 or a 5xx. The wait is a random value in
 * [0, min(max_delay, base * 2^retry)]; on 429/503 a Retry-After header that
 * asks for longer wins, capped at max_delay. Each attempt's curl timeout is
 * min(timeout_ms, time left before the deadline); when a wait would end past
 * the deadline the exchange stops and returns the last result. Backoff
 * sleeps are real time (never scaled by RTE_CLOCK_SCALE) and are cut short
 * by rte_http_client_free.
 *
 * Only the header block of the final response is kept: the buffer restarts
 * at every status line, so 100-continue and earlier attempts leave nothing.
 *
 * Errors: rte_http_do returns 0 whenever an HTTP response arrived, whatever
 * its status; -1 when none did (transport error, deadline, shutdown), with
 * resp->error saying why. A transfer that fails after the status line (body
 * cut short, timeout mid-body) counts as a transport error: status 0.
 *
 * Deliberately not done: redirects are not followed (a 3xx is returned to
 * the caller); no cookies; proxy settings stay curl's defaults (the *_proxy
 * environment variables); response bodies are not size-limited; URLs are
 * never logged (they may carry identifiers); easy handles are not pooled
 * (one per exchange, reused across its retries; connections live in the
 * multi handle either way). curl_global_cleanup is never called: curl is
 * initialised once per process and lives as long as it.
 */
#include "rte/http_client.h"
#include "rte/clock.h"
#include "rte/log.h"
#include "rte/metrics.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_MAX_CONNECTIONS 32
#define DEFAULT_USER_AGENT "rte-suite/1"
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_BASE_DELAY_MS 100
#define DEFAULT_MAX_DELAY_MS 10000
#define POLL_MS 1000

/* A growable byte buffer, always NUL-terminated once non-empty. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

/*
 * One attempt in flight. Lives on the caller's stack for the whole exchange;
 * the I/O thread touches it only between enqueue and done.
 */
struct transfer {
    CURL *easy;
    struct transfer *next; /* queue link, then active-list link */
    struct transfer *prev; /* active list only */
    pthread_cond_t done_cv;
    int done;      /* under c->mu */
    int cancelled; /* under c->mu: the client is shutting down */
    CURLcode result;
    struct buf body;
    struct buf headers;
    char errbuf[CURL_ERROR_SIZE];
};

/* The request with defaults filled in. */
struct plan {
    const rte_http_request *req;
    const char *method;
    const char *name;
    int timeout_ms;
    int max_attempts;
    int base_delay_ms;
    int max_delay_ms;
    int safe; /* may be repeated */
};

struct rte_http_client {
    CURLM *multi;
    CURLSH *share;
    pthread_mutex_t share_mu;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* CLOCK_MONOTONIC: backoff sleepers, free() */
    struct transfer *queue; /* under mu: waiting for the I/O thread */
    struct transfer *queue_tail;
    struct transfer *active; /* I/O thread only: inside the multi handle */
    int stopping;            /* under mu */
    int callers;             /* under mu: threads inside rte_http_do */
    long connect_timeout_ms;
    char *user_agent;
    rte_metric *requests_total;
    rte_metric *duration;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---------------------------------------------------- */

static int64_t real_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: per-thread, seeded lazily; only spreads retries apart. */
static uint64_t random_u64(void)
{
    static _Thread_local uint64_t state;
    struct timespec ts;

    if (state == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
                (uint64_t)(uintptr_t)&state;
        if (state == 0)
            state = 0x9e3779b97f4a7c15u;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1du;
}

static int buf_append(struct buf *b, const char *p, size_t n)
{
    size_t cap;
    char *data;

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        data = realloc(b->data, cap);
        if (data == NULL)
            return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Hand the buffer's bytes to the caller (never NULL unless out of memory). */
static char *buf_take(struct buf *b, size_t *len)
{
    char *data = b->data;

    *len = b->len;
    if (data == NULL)
        data = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return data;
}

static void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int is_safe_method(const char *method, int idempotent)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};

    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strcmp(method, safe[i]) == 0)
            return 1;
    return idempotent && strcmp(method, "POST") == 0;
}

static void make_plan(const rte_http_request *req, struct plan *p)
{
    p->req = req;
    p->method = req->method ? req->method : "GET";
    p->name = req->name ? req->name : "default";
    p->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    p->max_attempts = req->max_attempts > 0 ? req->max_attempts : 1;
    p->base_delay_ms = req->base_delay_ms > 0 ? req->base_delay_ms : DEFAULT_BASE_DELAY_MS;
    p->max_delay_ms = req->max_delay_ms > 0 ? req->max_delay_ms : DEFAULT_MAX_DELAY_MS;
    p->safe = is_safe_method(p->method, req->idempotent);
}

static const char *outcome_label(long status)
{
    if (status == 0)
        return "error";
    if (status == 429)
        return "429";
    if (status < 300)
        return "2xx";
    if (status < 400)
        return "3xx";
    if (status < 500)
        return "4xx";
    return "5xx";
}

/* Transport failures worth another attempt: the server may answer next time. */
static int transient_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* ---- curl callbacks (I/O thread) --------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;

    return buf_append(&t->body, ptr, n) == 0 ? n : 0;
}

/* Keep only the last header block: a status line starts a new one. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;

    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        t->headers.len = 0;
    return buf_append(&t->headers, ptr, n) == 0 ? n : 0;
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
    rte_http_client *c = userptr;

    (void)handle;
    (void)data;
    (void)access;
    pthread_mutex_lock(&c->share_mu);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
    rte_http_client *c = userptr;

    (void)handle;
    (void)data;
    pthread_mutex_unlock(&c->share_mu);
}

/* ---- the I/O thread ---------------------------------------------------- */

/* Report a transfer finished; the caller may free t as soon as mu drops. */
static void complete(rte_http_client *c, struct transfer *t, CURLcode result, int cancelled)
{
    pthread_mutex_lock(&c->mu);
    t->result = result;
    t->cancelled = cancelled;
    t->done = 1;
    pthread_cond_signal(&t->done_cv);
    pthread_mutex_unlock(&c->mu);
}

static void active_link(rte_http_client *c, struct transfer *t)
{
    t->prev = NULL;
    t->next = c->active;
    if (c->active)
        c->active->prev = t;
    c->active = t;
}

static void active_unlink(rte_http_client *c, struct transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        c->active = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

/* Move queued transfers into the multi handle; 1 once the client is stopping. */
static int adopt_queued(rte_http_client *c)
{
    struct transfer *t, *next;
    CURLMcode mrc;

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        return 1;
    }
    t = c->queue;
    c->queue = c->queue_tail = NULL;
    pthread_mutex_unlock(&c->mu);

    for (; t != NULL; t = next) {
        next = t->next;
        mrc = curl_multi_add_handle(c->multi, t->easy);
        if (mrc != CURLM_OK) {
            snprintf(t->errbuf, sizeof t->errbuf, "curl_multi_add_handle: %s",
                     curl_multi_strerror(mrc));
            complete(c, t, CURLE_FAILED_INIT, 0);
            continue;
        }
        active_link(c, t);
    }
    return 0;
}

static void reap_finished(rte_http_client *c)
{
    struct transfer *t;
    CURLMsg *msg;
    CURL *easy;
    CURLcode result;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        easy = msg->easy_handle;
        result = msg->data.result;
        t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(c->multi, easy);
        active_unlink(c, t);
        complete(c, t, result, 0);
    }
}

/* Shutdown: every transfer still queued or in flight ends as cancelled. */
static void cancel_all(rte_http_client *c)
{
    struct transfer *t, *next;

    while ((t = c->active) != NULL) {
        active_unlink(c, t);
        curl_multi_remove_handle(c->multi, t->easy);
        complete(c, t, CURLE_ABORTED_BY_CALLBACK, 1);
    }
    pthread_mutex_lock(&c->mu);
    t = c->queue;
    c->queue = c->queue_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    for (; t != NULL; t = next) {
        next = t->next;
        complete(c, t, CURLE_ABORTED_BY_CALLBACK, 1);
    }
}

static void *io_main(void *arg)
{
    rte_http_client *c = arg;
    int running = 0;

    while (adopt_queued(c) == 0) {
        curl_multi_perform(c->multi, &running);
        reap_finished(c);
        curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL);
    }
    cancel_all(c);
    return NULL;
}

/* ---- client life ------------------------------------------------------- */

static void register_metrics(rte_http_client *c)
{
    static const char *const request_labels[] = {"name", "outcome", NULL};
    static const char *const duration_labels[] = {"name", NULL};

    c->requests_total = rte_counter_new("rte_http_client_requests_total",
                                        "HTTP client attempts by outcome", request_labels);
    c->duration =
        rte_histogram_new("rte_http_client_duration_seconds",
                          "HTTP client exchange time including retries", duration_labels, NULL, 0);
}

static int init_sync(rte_http_client *c, char *err, size_t errlen)
{
    if (rte_clock_cond_init(&c->wake) != 0) {
        snprintf(err, errlen, "pthread_cond_init failed");
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->share_mu, NULL);
    return 0;
}

static int init_curl(rte_http_client *c, long max_connections, char *err, size_t errlen)
{
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (c->multi == NULL || c->share == NULL) {
        snprintf(err, errlen, "curl_multi_init/curl_share_init failed (out of memory?)");
        return -1;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_connections);
    /* the idle pool: room for every per-host connection of a few hosts */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, max_connections * 4);
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return 0;
}

static void destroy(rte_http_client *c)
{
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->share)
        curl_share_cleanup(c->share);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->share_mu);
    free(c->user_agent);
    free(c);
}

/* rte_http_client_new - any thread; starts the I/O thread; NULL + err on failure */
rte_http_client *rte_http_client_new(const rte_http_client_opts *opts, char *err, size_t errlen)
{
    rte_http_client_opts o = {0};
    rte_http_client *c;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if (opts)
        o = *opts;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (init_sync(c, err, errlen) != 0) {
        free(c);
        return NULL;
    }
    c->connect_timeout_ms =
        o.connect_timeout_ms > 0 ? o.connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    c->user_agent = strdup(o.user_agent ? o.user_agent : DEFAULT_USER_AGENT);
    if (c->user_agent == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (init_curl(c, o.max_connections > 0 ? o.max_connections : DEFAULT_MAX_CONNECTIONS, err,
                  errlen) != 0)
        goto fail;
    register_metrics(c);
    if (pthread_create(&c->thread, NULL, io_main, c) != 0) {
        snprintf(err, errlen, "pthread_create for the HTTP client thread failed");
        goto fail;
    }
    return c;
fail:
    destroy(c);
    return NULL;
}

/*
 * rte_http_client_free - any thread but the client's own; takes mu. Cancels
 * queued and in-flight transfers, wakes backoff sleepers, joins the I/O
 * thread and waits for every caller to leave rte_http_do before freeing.
 */
void rte_http_client_free(rte_http_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);

    pthread_mutex_lock(&c->mu);
    while (c->callers > 0)
        pthread_cond_wait(&c->wake, &c->mu);
    pthread_mutex_unlock(&c->mu);
    destroy(c);
}

/* ---- one exchange (caller's thread) ------------------------------------ */

static int enter(rte_http_client *c)
{
    int rc = 0;

    pthread_mutex_lock(&c->mu);
    if (c->stopping)
        rc = -1;
    else
        c->callers++;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void leave(rte_http_client *c)
{
    pthread_mutex_lock(&c->mu);
    if (--c->callers == 0 && c->stopping)
        pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);

    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':')
            return 1;
    return 0;
}

/*
 * The caller's headers, plus an empty "Expect:" so curl never waits for a
 * 100-continue on larger bodies (a second round trip, or a 1 s stall against
 * servers that ignore it).
 */
static struct curl_slist *build_headers(const char *const *headers, int *oom)
{
    struct curl_slist *list = NULL, *next;

    *oom = 0;
    for (const char *const *h = headers; h && *h; h++) {
        next = curl_slist_append(list, *h);
        if (next == NULL)
            goto fail;
        list = next;
    }
    if (!has_header(headers, "Expect")) {
        next = curl_slist_append(list, "Expect:");
        if (next == NULL)
            goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    *oom = 1;
    return NULL;
}

static CURLcode set_method(CURL *e, const struct plan *p)
{
    const rte_http_request *req = p->req;
    const char *body = req->body ? req->body : "";
    CURLcode rc;

    if (strcmp(p->method, "GET") == 0)
        return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(p->method, "HEAD") == 0)
        return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (strcmp(p->method, "POST") != 0) {
        rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, p->method);
        if (rc != CURLE_OK || req->body_len == 0)
            return rc;
    }
    rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    return rc;
}

/* The caller's abort flag, read by curl's progress callback on the I/O thread
 * (at least about once a second per transfer): non-zero aborts the attempt. */
static int aborted(const rte_http_request *req)
{
    return req->abort_flag != NULL && __atomic_load_n(req->abort_flag, __ATOMIC_ACQUIRE) != 0;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return aborted((const rte_http_request *)arg) ? 1 : 0;
}

static CURLcode setup_easy(rte_http_client *c, const struct plan *p, struct transfer *t,
                           struct curl_slist *headers)
{
    CURL *e = t->easy;
    CURLcode rc;

    rc = curl_easy_setopt(e, CURLOPT_URL, p->req->url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)t);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)t);
    if (rc == CURLE_OK && p->req->abort_flag != NULL) {
        rc = curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)p->req);
    }
    if (rc == CURLE_OK)
        rc = set_method(e, p);
    return rc;
}

/* Hand t to the I/O thread and wait until it is done; takes mu. */
static CURLcode run_transfer(rte_http_client *c, struct transfer *t)
{
    pthread_mutex_lock(&c->mu);
    t->done = 0;
    t->cancelled = 0;
    if (c->stopping) {
        t->cancelled = 1;
        pthread_mutex_unlock(&c->mu);
        return CURLE_ABORTED_BY_CALLBACK;
    }
    t->next = NULL;
    if (c->queue_tail)
        c->queue_tail->next = t;
    else
        c->queue = t;
    c->queue_tail = t;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);

    pthread_mutex_lock(&c->mu);
    while (!t->done)
        pthread_cond_wait(&t->done_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return t->result;
}

/* Replace resp's status/body/headers/error with the outcome of this attempt. */
static void record_attempt(struct transfer *t, rte_http_response *resp)
{
    long status = 0;
    size_t headers_len;

    free(resp->body);
    free(resp->headers);
    resp->body = buf_take(&t->body, &resp->body_len);
    resp->headers = buf_take(&t->headers, &headers_len);
    resp->error[0] = '\0';
    resp->not_sent = 0;
    resp->timed_out = 0;
    if (t->result == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        resp->status = status;
        return;
    }
    resp->status = 0;
    resp->not_sent = !t->cancelled && (t->result == CURLE_COULDNT_CONNECT ||
                                       t->result == CURLE_COULDNT_RESOLVE_HOST);
    resp->timed_out = t->result == CURLE_OPERATION_TIMEDOUT;
    if (t->cancelled)
        snprintf(resp->error, sizeof resp->error, "HTTP client shutting down; request cancelled");
    else if (t->errbuf[0] != '\0')
        snprintf(resp->error, sizeof resp->error, "%s", t->errbuf);
    else
        snprintf(resp->error, sizeof resp->error, "%s", curl_easy_strerror(t->result));
}

/* One attempt with the given curl timeout; returns 0 if a response arrived. */
static int attempt(rte_http_client *c, const struct plan *p, struct transfer *t, long timeout_ms,
                   rte_http_response *resp)
{
    CURLcode rc;

    t->errbuf[0] = '\0';
    buf_free(&t->body);
    buf_free(&t->headers);
    rc = curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    t->result = rc == CURLE_OK ? run_transfer(c, t) : rc;
    resp->attempts++;
    record_attempt(t, resp);
    rte_counter_inc(c->requests_total, (const char *const[]){p->name, outcome_label(resp->status)});
    return resp->status != 0 ? 0 : -1;
}

/* Per-attempt curl timeout; <= 0 when the deadline has already passed. */
static long attempt_timeout(const struct plan *p)
{
    int64_t left;

    if (p->req->deadline_ms == 0)
        return p->timeout_ms;
    left = p->req->deadline_ms - rte_clock_mono_ms();
    if (left <= 0)
        return 0;
    return left < p->timeout_ms ? (long)left : p->timeout_ms;
}

static int64_t jitter_ms(const struct plan *p, int retry)
{
    int64_t cap = p->base_delay_ms;

    for (int i = 0; i < retry && cap < p->max_delay_ms; i++)
        cap *= 2;
    if (cap > p->max_delay_ms)
        cap = p->max_delay_ms;
    return (int64_t)(random_u64() % (uint64_t)(cap + 1));
}

/* An unsafe request may still be repeated when the server certainly did not
 * act on it: no connection was ever made, or it answered 429 (refused). */
static int refused_unacted(const struct transfer *t, const rte_http_response *resp)
{
    if (resp->status == 0)
        return !t->cancelled &&
               (t->result == CURLE_COULDNT_CONNECT || t->result == CURLE_COULDNT_RESOLVE_HOST);
    return resp->status == 429;
}

static int worth_retrying(const struct plan *p, const struct transfer *t,
                          const rte_http_response *resp)
{
    if (!p->safe)
        return p->req->retry_refused && refused_unacted(t, resp);
    if (resp->status == 0)
        return !t->cancelled && transient_curl_error(t->result);
    return resp->status == 429 || (resp->status >= 500 && resp->status <= 599);
}

/* How long to wait before the next attempt; -1 to stop and return resp as is. */
static int64_t retry_wait(const struct plan *p, const struct transfer *t,
                          const rte_http_response *resp)
{
    char value[128];
    int64_t wait, asked;

    if (resp->attempts >= p->max_attempts || aborted(p->req) || !worth_retrying(p, t, resp))
        return -1;
    wait = jitter_ms(p, resp->attempts - 1);
    if ((resp->status == 429 || resp->status == 503) &&
        rte_http_response_header(resp, "Retry-After", value, sizeof value) == 0) {
        asked = rte_http_retry_after_ms(value, real_now_ms());
        if (asked > wait)
            wait = asked < p->max_delay_ms ? asked : p->max_delay_ms;
    }
    if (p->req->deadline_ms != 0 && rte_clock_mono_ms() + wait >= p->req->deadline_ms)
        return -1;
    return wait;
}

/* Backoff sleep, real time; returns -1 if the client started shutting down. */
static int sleep_unless_stopping(rte_http_client *c, int64_t ms)
{
    struct timespec until = rte_clock_mono_timespec(rte_clock_mono_ms() + ms);
    int stopping;

    pthread_mutex_lock(&c->mu);
    while (!c->stopping && pthread_cond_timedwait(&c->wake, &c->mu, &until) != ETIMEDOUT)
        ;
    stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return stopping ? -1 : 0;
}

static int run_attempts(rte_http_client *c, const struct plan *p, struct transfer *t,
                        rte_http_response *resp)
{
    int rc = -1;
    long timeout;
    int64_t wait;

    for (;;) {
        timeout = attempt_timeout(p);
        if (timeout <= 0) {
            if (resp->attempts == 0) {
                snprintf(resp->error, sizeof resp->error,
                         "deadline passed before the first attempt");
                resp->not_sent = 1;
                resp->timed_out = 1;
            }
            return rc;
        }
        rc = attempt(c, p, t, timeout, resp);
        wait = retry_wait(p, t, resp);
        if (wait < 0)
            return rc;
        rte_log_debug("http %s %s: attempt %d/%d got %s; retrying in %lld ms", p->name, p->method,
                      resp->attempts, p->max_attempts, outcome_label(resp->status),
                      (long long)wait);
        if (sleep_unless_stopping(c, wait) != 0)
            return rc;
    }
}

/* rte_http_do - any thread; blocks until the exchange ends; takes mu briefly */
int rte_http_do(rte_http_client *c, const rte_http_request *req, rte_http_response *resp)
{
    struct transfer t;
    struct curl_slist *headers = NULL;
    struct plan p;
    int64_t start = rte_clock_mono_ms();
    int rc = -1, oom;
    CURLcode crc;

    memset(resp, 0, sizeof *resp);
    if (c == NULL || req == NULL || req->url == NULL) {
        snprintf(resp->error, sizeof resp->error, "rte_http_do: no client, request or URL");
        return -1;
    }
    if (enter(c) != 0) {
        snprintf(resp->error, sizeof resp->error, "HTTP client shutting down");
        return -1;
    }
    make_plan(req, &p);
    memset(&t, 0, sizeof t);
    pthread_cond_init(&t.done_cv, NULL);
    t.easy = curl_easy_init();
    headers = build_headers(req->headers, &oom);
    if (t.easy == NULL || oom) {
        snprintf(resp->error, sizeof resp->error, "out of memory preparing the request");
        goto out;
    }
    crc = setup_easy(c, &p, &t, headers);
    if (crc != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "curl_easy_setopt: %s", curl_easy_strerror(crc));
        goto out;
    }
    rc = run_attempts(c, &p, &t, resp);
    resp->seconds = (double)(rte_clock_mono_ms() - start) / 1000.0;
    rte_histogram_observe(c->duration, (const char *const[]){p.name}, resp->seconds);
out:
    if (t.easy)
        curl_easy_cleanup(t.easy);
    curl_slist_free_all(headers);
    buf_free(&t.body);
    buf_free(&t.headers);
    pthread_cond_destroy(&t.done_cv);
    leave(c);
    return rc;
}

/* rte_http_response_free - any thread; releases body and headers (resp itself is the caller's) */
void rte_http_response_free(rte_http_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    free(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
    resp->body_len = 0;
}

/* ---- header and Retry-After parsing (pure) ----------------------------- */

static void copy_trimmed(const char *p, size_t n, char *buf, size_t len)
{
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/*
 * rte_http_response_header - any thread; first header named name, value
 * trimmed and truncated to fit buf; 0 if found, -1 if absent
 */
int rte_http_response_header(const rte_http_response *resp, const char *name, char *buf, size_t len)
{
    const char *line, *eol;
    size_t nlen, llen;

    if (resp == NULL || resp->headers == NULL || name == NULL)
        return -1;
    nlen = strlen(name);
    for (line = resp->headers; *line != '\0'; line = eol + 1) {
        eol = strchr(line, '\n');
        llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            copy_trimmed(line + nlen + 1, llen - nlen - 1, buf, len);
            return 0;
        }
        if (eol == NULL)
            break;
    }
    return -1;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* delta-seconds: digits only (at most 15, so * 1000 cannot overflow) */
static int64_t parse_delta_seconds(const char *s)
{
    int64_t secs = 0;
    int digits = 0;

    for (; isdigit((unsigned char)*s); s++) {
        if (++digits > 15)
            return -1;
        secs = secs * 10 + (*s - '0');
    }
    if (*skip_space(s) != '\0')
        return -1;
    return secs * 1000;
}

/* HTTP-date: IMF-fixdate, plus the obsolete RFC 850 and asctime forms RFC 9110 asks us to accept */
static int64_t parse_http_date(const char *s, int64_t now_ms)
{
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    };
    struct tm tm;
    const char *end;
    time_t when;
    int64_t ms;

    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, formats[i], &tm);
        if (end == NULL || *skip_space(end) != '\0')
            continue;
        when = timegm(&tm);
        if (when == (time_t)-1)
            return -1;
        ms = (int64_t)when * 1000 - now_ms;
        return ms < 0 ? 0 : ms;
    }
    return -1;
}

/* rte_http_retry_after_ms - any thread; pure; delay in ms, 0 for a past date, -1 if invalid */
int64_t rte_http_retry_after_ms(const char *value, int64_t now_ms)
{
    if (value == NULL)
        return -1;
    value = skip_space(value);
    if (*value == '\0')
        return -1;
    if (isdigit((unsigned char)*value))
        return parse_delta_seconds(value);
    return parse_http_date(value, now_ms);
}
