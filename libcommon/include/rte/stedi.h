/*
 * stedi.h - the client side of the Stedi eligibility API.
 *
 * Four calls, on Stedi's real paths (DESIGN.md "Stedi API"):
 *   real-time check   POST /2024-04-01/change/medicalnetwork/eligibility/v3
 *   batch submit      POST /2024-04-01/eligibility-manager/batch-eligibility
 *   batch status      GET  /2024-04-01/eligibility-manager/batch/{batchId}
 *   poll results      GET  /2025-04-25/healthcare/eligibility/poll-batch
 *                          ?batchId=&pageSize=&pageToken=  (all pages)
 *
 * Contract:
 * - Every real-time call first takes a lease from the cluster-wide slot
 *   limiter (slots.h) in the caller's class and holds it for the whole
 *   exchange, retries included. A keeper thread renews held leases every
 *   lease_ms/3 so a 120 s Stedi answer never outlives its lease; if a
 *   renewal finds the lease lost the call is abandoned at once (another
 *   process may own that slot now). No slot, no call: a limiter error or a
 *   deadline that passes while waiting returns RTE_STEDI_NO_SLOT and Stedi is
 *   never contacted. One exception, for interactive traffic only: when the
 *   limiter's Redis is unreachable, a process may still make up to
 *   degraded_limit calls at once on a local budget (result.degraded = 1,
 *   counted in rte_stedi_degraded_calls_total), so members keep getting
 *   answers while Redis is down. With N replicas the cluster then makes at
 *   most N x degraded_limit calls at once: keep that at or below the
 *   account's limit (slots.degraded_limit). Warming and batch wait for Redis.
 * - Retries: 429 and 5xx and transport failures, exponential backoff with
 *   full jitter, Retry-After honoured (http_client.h), each attempt bounded
 *   by its timeout and the whole exchange by the caller's deadline. The
 *   real-time check, status and poll are reads and are retried. Batch submit
 *   creates a batch, so it is retried only when Stedi certainly did not act
 *   (connection refused, 429); a timeout or 5xx after sending returns
 *   RTE_STEDI_UNKNOWN: the batch may exist, and the caller must not blindly
 *   resubmit.
 * - Mapping: real-time answers and polled items become cache entries
 *   through cache_entry.h (the one owner of the format). Payer errors (AAA
 *   in errors[]) are answers, not failures: they become error entries.
 *
 * Configuration (rte_stedi_from_config; docs/configuration.md): stedi.*
 * for the API, slots.* for the limiter, cache.* for freshness.
 *
 * Metrics: rte_stedi_calls_total{api,outcome},
 * rte_stedi_call_duration_seconds{api}, rte_stedi_slot_wait_seconds{class}
 * plus those of http_client (name stedi_<api>) and slots.
 *
 * Thread safety: every function may be called from any thread at once; the
 * client holds no lock during I/O (the keeper list has a mutex held only to
 * add/remove a lease).
 */
#ifndef RTE_STEDI_H
#define RTE_STEDI_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/cache_entry.h"
#include "rte/config.h"
#include "rte/http_client.h"
#include "rte/slots.h"

typedef struct rte_stedi rte_stedi;

typedef struct rte_stedi_opts {
    const char *base_url;          /* default "http://127.0.0.1:8089" */
    const char *api_key;           /* sent as "Authorization: Key <api_key>"; required */
    int realtime_timeout_ms;       /* per real-time attempt; default 120000 */
    int api_timeout_ms;            /* per batch/status/poll attempt; default 30000 */
    int max_attempts;              /* default 3 */
    int base_delay_ms;             /* backoff base; default 200 */
    int max_delay_ms;              /* backoff cap (and Retry-After cap); default 10000 */
    const char *provider_name;     /* default for checks; default "RTE Cache Warming" */
    const char *provider_npi;      /* 10 digits; default "1999999984" */
    rte_cache_freshness freshness; /* default rte_cache_freshness_default() */
    rte_http_client *http;         /* borrowed; NULL = the client makes its own */
    rte_slots *slots;              /* borrowed; NULL = real-time calls refused */
    int degraded_limit; /* interactive calls this process may make at once while the limiter's
                           Redis is unreachable; 0 = none; default 2 */
} rte_stedi_opts;

/* One eligibility question: a member at a payer. Strings are borrowed. */
typedef struct rte_stedi_check {
    const char *trading_partner_id; /* tradingPartnerServiceId */
    const char *member_id;
    const char *first_name;
    const char *last_name;
    const char *date_of_birth;     /* YYYYMMDD or YYYY-MM-DD */
    const char *provider_name;     /* NULL = opts default */
    const char *provider_npi;      /* NULL = opts default */
    const char *service_type_code; /* NULL = "30" (health benefit plan coverage) */
    const char *control_number;    /* NULL = generated, 9 digits */
    const char *submitter_id;      /* batch items: submitterTransactionIdentifier (required) */
} rte_stedi_check;

enum rte_stedi_outcome {
    RTE_STEDI_OK = 0,       /* eligibility answered; entry filled */
    RTE_STEDI_PAYER_ERROR,  /* payer answered with errors[] (e.g. AAA 42); error entry filled */
    RTE_STEDI_NO_SLOT,      /* no real-time slot before the deadline, or the limiter failed */
    RTE_STEDI_RATE_LIMITED, /* still 429 after the retries */
    RTE_STEDI_UNAVAILABLE,  /* still 5xx after the retries */
    RTE_STEDI_TIMEOUT,      /* the per-call timeout or the caller's deadline passed */
    RTE_STEDI_REJECTED,     /* 4xx other than 429: our request or key is wrong */
    RTE_STEDI_FAILED,       /* transport failure, lost lease, or an unreadable answer */
};

typedef struct rte_stedi_result {
    enum rte_stedi_outcome outcome;
    long http_status;      /* last HTTP status, 0 if none */
    int attempts;          /* HTTP attempts made */
    int64_t slot_wait_ms;  /* real ms spent waiting for the slot */
    int64_t call_ms;       /* real ms spent in the HTTP exchange */
    int degraded;          /* 1: the limiter was unreachable; ran on the local degraded budget */
    rte_cache_entry entry; /* OK and PAYER_ERROR only */
    char message[256];     /* what went wrong, for logs and API errors */
} rte_stedi_result;

/* Called once the slot is granted, right before the first HTTP attempt (on the caller's thread) */
typedef void (*rte_stedi_started_fn)(void *arg, const rte_slot_lease *lease);

/* Codes returned by the batch calls besides 0 */
#define RTE_STEDI_E_FAILED (-1)    /* refused or failed; err says why; nothing was created */
#define RTE_STEDI_E_UNKNOWN (-2)   /* submit: Stedi may or may not have created the batch */
#define RTE_STEDI_E_NOT_FOUND (-3) /* status/poll: no such batch */

typedef struct rte_stedi_batch_info {
    char status[16]; /* PENDING | IN_PROGRESS | COMPLETED | ... as Stedi says */
    int total, success, error, pending;
    int complete; /* 1 when status is COMPLETED (no item left pending) */
} rte_stedi_batch_info;

/* One page of poll-batch results. */
typedef struct rte_stedi_page {
    char *raw; /* the page body as received (decoded), malloc'd */
    size_t raw_len;
    cJSON *doc;           /* parsed raw */
    const cJSON *items;   /* borrowed from doc: the items array (may be empty) */
    int count;            /* items in this page */
    char next_token[256]; /* nextPageToken, "" on the last page */
} rte_stedi_page;

/* One polled item mapped for the cache. Strings borrowed from the page. */
typedef struct rte_stedi_item {
    const char *submitter_id;
    const char *member_id;
    const char *trading_partner_id;
    rte_cache_entry entry; /* success or payer-error entry */
} rte_stedi_item;

/* rte_stedi_opts_init - the defaults above; any thread */
void rte_stedi_opts_init(rte_stedi_opts *o);

/* rte_stedi_new - a client (opts copied, strings duplicated); NULL + err on bad options */
rte_stedi *rte_stedi_new(const rte_stedi_opts *o, char *err, size_t errlen);

/*
 * rte_stedi_from_config - a client built from stedi.*, slots.* and cache.*
 * keys, owning its own http client and slot limiter (on redis.url). NULL +
 * err naming the key on a bad value. Start-up thread.
 */
rte_stedi *rte_stedi_from_config(const rte_config *cfg, char *err, size_t errlen);

/*
 * rte_stedi_check_config - validate what rte_stedi_from_config reads,
 * building nothing (for --check-config). 0, or -1 + err naming the key.
 */
int rte_stedi_check_config(const rte_config *cfg, char *err, size_t errlen);

/* rte_stedi_free - stop the keeper; no call may be in progress */
void rte_stedi_free(rte_stedi *s);

/* rte_stedi_slots - the limiter the client uses (borrowed, may be NULL) */
rte_slots *rte_stedi_slots(rte_stedi *s);

/*
 * rte_stedi_realtime - one real-time check in slot class cls, all of it
 * (slot wait included) before deadline_mono_ms (rte_clock_mono_ms; 0 =
 * only the per-attempt timeouts). Returns 0 when Stedi answered (OK or
 * PAYER_ERROR, out->entry filled), -1 otherwise with out->outcome and
 * out->message. on_started may be NULL. Any thread; blocks.
 */
int rte_stedi_realtime(rte_stedi *s, const rte_stedi_check *chk, enum rte_slot_class cls,
                       int64_t deadline_mono_ms, rte_stedi_started_fn on_started, void *arg,
                       rte_stedi_result *out);

/*
 * rte_stedi_batch_submit - submit n (1..10000) checks as one Stedi batch;
 * callback_url may be NULL (real Stedi ignores it), max_retry_hours 0 =
 * Stedi's default. batch_id filled on 0. RTE_STEDI_E_FAILED or
 * RTE_STEDI_E_UNKNOWN + err. Any thread; blocks.
 */
int rte_stedi_batch_submit(rte_stedi *s, const rte_stedi_check *items, size_t n, const char *name,
                           int max_retry_hours, const char *callback_url, char *batch_id,
                           size_t idlen, char *err, size_t errlen);

/* rte_stedi_batch_status - the batch's counts; 0, RTE_STEDI_E_NOT_FOUND or _FAILED + err */
int rte_stedi_batch_status(rte_stedi *s, const char *batch_id, rte_stedi_batch_info *out, char *err,
                           size_t errlen);

/*
 * rte_stedi_poll_page - one page of completed results after page_token
 * (NULL/"" = from the start), page_size 1..200. 0 with *out filled (free it
 * with rte_stedi_page_free), RTE_STEDI_E_NOT_FOUND or _FAILED + err.
 */
int rte_stedi_poll_page(rte_stedi *s, const char *batch_id, int page_size, const char *page_token,
                        rte_stedi_page *out, char *err, size_t errlen);

/*
 * rte_stedi_batch_info_read - the batch status answer doc (the parsed body
 * of GET .../batch/{batchId}) into out; 0, or RTE_STEDI_E_FAILED + err.
 * What rte_stedi_batch_status does with a 200 body. Pure; any thread.
 */
int rte_stedi_batch_info_read(const cJSON *doc, rte_stedi_batch_info *out, char *err,
                              size_t errlen);

/*
 * rte_stedi_page_read - check the poll-batch answer in p->doc and fill
 * p->items, p->count and p->next_token from it (p->raw is left alone); 0,
 * or RTE_STEDI_E_FAILED + err. What rte_stedi_poll_page does with a 200
 * body. Pure; any thread.
 */
int rte_stedi_page_read(rte_stedi_page *p, char *err, size_t errlen);

/* rte_stedi_page_free - release a page (safe on a zeroed page) */
void rte_stedi_page_free(rte_stedi_page *p);

/*
 * Called for each non-empty page in order with the resume cursor that holds
 * once this page is handled (persist it after handling the page); return 0
 * to go on, non-zero to stop there.
 */
typedef int (*rte_stedi_page_fn)(void *arg, const rte_stedi_page *page, const char *cursor_after);

#define RTE_STEDI_CURSOR_MAX 300

/*
 * rte_stedi_poll_all - hand every result completed since cursor to fn, page
 * by page. cursor is our own resume point ("" or NULL = from the first
 * result): a Stedi page token plus how many items of that page were already
 * handed over, so a partial last page is neither skipped nor re-read when
 * more results complete later. Pages handed to fn hold only new items.
 * cursor_out (RTE_STEDI_CURSOR_MAX bytes) receives the resume point after
 * the last page fn accepted - persist it, pass it next time. Returns the
 * number of items handed to fn, or a negative RTE_STEDI_E_* + err
 * (cursor_out still names the resume point). Any thread; blocks.
 */
long rte_stedi_poll_all(rte_stedi *s, const char *batch_id, int page_size, const char *cursor,
                        rte_stedi_page_fn fn, void *arg, char *cursor_out, size_t cursorlen,
                        char *err, size_t errlen);

/*
 * rte_stedi_item_map - map one polled item (an element of page->items)
 * cached at now_ms with freshness f (NULL = the defaults). -1 + err naming
 * the field when the item is malformed. Pure; any thread.
 */
int rte_stedi_item_map(const cJSON *item, int64_t now_ms, const rte_cache_freshness *f,
                       rte_stedi_item *out, char *err, size_t errlen);

/* rte_stedi_outcome_name - "ok", "payer_error", "no_slot", ...; static string */
const char *rte_stedi_outcome_name(enum rte_stedi_outcome o);

#endif
