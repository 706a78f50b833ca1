/*
 * http_client.h - libcurl (multi) HTTP client with retries and reuse.
 *
 * One rte_http_client owns a curl multi handle driven by its own thread, so
 * connections (and TLS sessions) are reused across requests from every
 * caller thread. rte_http_do blocks the calling thread until the exchange
 * (with its retries) finished; many threads may wait at once.
 *
 * Retries: only when the request is safe to repeat (GET/HEAD/PUT/DELETE/
 * OPTIONS, or a POST the caller marks idempotent) and the outcome is a
 * connection error, a timeout, HTTP 429 or a 5xx. A request that is not safe
 * to repeat may opt in (retry_refused) to retries of the two outcomes where
 * the server certainly did nothing: no connection was made, or HTTP 429. Backoff is exponential
 * with full jitter (base * 2^attempt, capped), and a Retry-After header (seconds or HTTP date) is
 * honoured when it asks for longer, up to max_delay_ms. The whole exchange never outlives
 * deadline_ms.
 *
 * Responses are decoded (gzip, deflate) transparently. Metrics:
 * rte_http_client_requests_total{name,outcome} and
 * rte_http_client_duration_seconds{name}, where name is a low-cardinality
 * label the caller passes (e.g. "stedi_realtime").
 *
 * Thread safety: rte_http_do may be called from any thread concurrently.
 */
#ifndef RTE_HTTP_CLIENT_H
#define RTE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rte_http_client rte_http_client;

typedef struct rte_http_client_opts {
    int connect_timeout_ms; /* default 2000 */
    int max_connections;    /* per host, default 32 */
    const char *user_agent; /* default "rte-suite/1" */
} rte_http_client_opts;

typedef struct rte_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated, may be NULL */
    const void *body;
    size_t body_len;
    int timeout_ms; /* per attempt; default 10000 */
    int64_t
        deadline_ms;  /* whole exchange incl. retries, monotonic ms (rte_clock_mono_ms); 0 = none */
    int max_attempts; /* default 1 (no retry) */
    int base_delay_ms;     /* default 100 */
    int max_delay_ms;      /* default 10000 */
    int idempotent;        /* 1 lets a POST be retried */
    int retry_refused;     /* 1 lets an unsafe request be retried only when the server certainly
                              did not act on it: connection refused / host unresolved, or 429 */
    const char *name;      /* metrics label; default "default" */
    const int *abort_flag; /* when set non-zero (atomically, by any thread) the exchange stops
                              within about a second: no further attempt, the current one is
                              cut as a transport error; NULL = never */
} rte_http_request;

typedef struct rte_http_response {
    long status; /* 0 when no HTTP response arrived */
    char *body;  /* NUL-terminated, malloc'd */
    size_t body_len;
    char *headers;   /* raw response header block of the final attempt, malloc'd */
    int attempts;    /* attempts made */
    double seconds;  /* total time */
    char error[256]; /* transport error text when status == 0 */
    int not_sent;  /* status 0 and the server certainly saw nothing (refused/unresolved/no attempt)
                    */
    int timed_out; /* status 0 because the attempt timeout or the deadline ran out */
} rte_http_response;

/* rte_http_client_new - start the client thread; opts may be NULL; NULL + err on failure */
rte_http_client *rte_http_client_new(const rte_http_client_opts *opts, char *err, size_t errlen);

/* rte_http_client_free - cancel pending transfers, join the thread, free */
void rte_http_client_free(rte_http_client *c);

/*
 * rte_http_do - perform req (with retries as above) and fill resp. Returns 0
 * when an HTTP response arrived (any status), -1 on transport failure/deadline
 * (resp->error says why). Free resp with rte_http_response_free either way.
 */
int rte_http_do(rte_http_client *c, const rte_http_request *req, rte_http_response *resp);

/* rte_http_response_free - release body and headers of resp */
void rte_http_response_free(rte_http_response *resp);

/* rte_http_response_header - value of header name (case-insensitive) into buf; -1 if absent */
int rte_http_response_header(const rte_http_response *resp, const char *name, char *buf,
                             size_t len);

/* rte_http_retry_after_ms - parse a Retry-After value (delta seconds or IMF-fixdate) relative to
 * now_ms; -1 if invalid */
int64_t rte_http_retry_after_ms(const char *value, int64_t now_ms);

#endif
