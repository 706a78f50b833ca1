/*
 * stedi.h - the client side of the Stedi eligibility API.
 *
 * Stedi's published OpenAPI is the contract (docs/stedi.md). Two hosts:
 *   healthcare API  real-time check
 *                   POST /2024-04-01/change/medicalnetwork/eligibility/v3
 *   manager API     batch submit
 *                   POST /2024-04-01/eligibility-manager/batch-eligibility
 *                   batch status
 *                   GET  /2024-04-01/eligibility-manager/batch/{batchId}
 *                   results, page by page
 *                   GET  /2024-04-01/eligibility-manager/polling/batch-eligibility
 *                        ?batchId=&pageSize=&pageToken=
 * Base URLs are scheme://host[:port][/prefix] without the API version: the
 * client adds /2024-04-01 itself, because the version decides the shapes it
 * reads (a base URL ending in a dated segment is refused).
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
 * - Answers: a real-time body and a polled item are read by the one reader,
 *   stedi_reply.h, into a cache entry. errors[] is read whatever the HTTP
 *   status (Stedi documents a payer's AAA rejection under HTTP 400 and an
 *   unknown payer as a 400 with its own code): such an answer is
 *   RTE_STEDI_PAYER_ERROR with an error entry that says whether asking
 *   again can help. Only a 4xx without errors[] (Stedi's validation
 *   error, a refused key: 401/403) is RTE_STEDI_REJECTED.
 * - Requests are checked against Stedi's own field limits before anything
 *   is sent; an error names the field (subscriber.firstName, ...).
 * - Authorization: the API key itself, as Stedi documents it (the older
 *   "Key <api key>" form is only tolerated by Stedi).
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
#include "rte/stedi_reply.h"

typedef struct rte_stedi rte_stedi;

/* The API version the client speaks (its paths start with it). */
#define RTE_STEDI_API_VERSION "2024-04-01"

typedef struct rte_stedi_opts {
    const char *healthcare_base_url; /* real-time checks; default "http://127.0.0.1:8089" */
    const char *manager_base_url;    /* batch submit, status, polling; same default */
    const char *api_key;             /* sent as "Authorization: <api_key>"; required */
    int realtime_timeout_ms;         /* per real-time attempt; default 120000 */
    int api_timeout_ms;              /* per batch/status/poll attempt; default 30000 */
    int max_attempts;                /* default 3 */
    int base_delay_ms;               /* backoff base; default 200 */
    int max_delay_ms;                /* backoff cap (and Retry-After cap); default 10000 */
    const char *provider_name;       /* default for checks, 1..60 chars; "RTE Cache Warming" */
    const char *provider_npi;        /* 10 digits; default "1999999984" */
    rte_cache_freshness freshness;   /* default rte_cache_freshness_default() */
    rte_http_client *http;           /* borrowed; NULL = the client makes its own */
    rte_slots *slots;                /* borrowed; NULL = real-time calls refused */
    int degraded_limit; /* interactive calls this process may make at once while the limiter's
                           Redis is unreachable; 0 = none; default 2 */
} rte_stedi_opts;

/* One eligibility question: a member at a payer. Strings are borrowed. Limits are Stedi's. */
typedef struct rte_stedi_check {
    const char *trading_partner_id; /* tradingPartnerServiceId, 1..80 */
    const char *member_id;          /* subscriber.memberId, 2..80 of [A-Za-z0-9- ] */
    const char *first_name;         /* 1..35 */
    const char *last_name;          /* 1..60 */
    const char *date_of_birth;      /* YYYYMMDD or YYYY-MM-DD */
    const char *provider_name;      /* provider.organizationName 1..60; NULL = opts default */
    const char *provider_npi;       /* NULL = opts default */
    const char *service_types;      /* "30" or "30,MH" (at most 2); NULL = "30" */
    const char *control_number;     /* deprecated by Stedi: NULL = not sent; else 9 digits */
    const char *submitter_id;       /* batch items: submitterTransactionIdentifier (required),
                                       1..50 of [A-Za-z0-9._-], unique in the batch */
} rte_stedi_check;

enum rte_stedi_outcome {
    RTE_STEDI_OK = 0,       /* eligibility answered; entry filled */
    RTE_STEDI_PAYER_ERROR,  /* an answer with errors[] (payer AAA or Stedi's own, any HTTP
                               status); error entry filled */
    RTE_STEDI_NO_SLOT,      /* no real-time slot before the deadline, or the limiter failed */
    RTE_STEDI_RATE_LIMITED, /* still 429 after the retries */
    RTE_STEDI_UNAVAILABLE,  /* still 5xx after the retries */
    RTE_STEDI_TIMEOUT,      /* the per-call timeout or the caller's deadline passed */
    RTE_STEDI_REJECTED,     /* 4xx without errors[]: our request (validation) or key (401/403) */
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
#define RTE_STEDI_E_EXISTS (-4)    /* submit: 409, a batch of this name exists in the account */

/* Stedi's batch statuses (BatchStatus). */
enum rte_stedi_batch_state {
    RTE_STEDI_BATCH_UNKNOWN, /* a status this client does not know: keep polling, warn */
    RTE_STEDI_BATCH_PENDING,
    RTE_STEDI_BATCH_VALIDATED,
    RTE_STEDI_BATCH_VALIDATION_FAILED,
    RTE_STEDI_BATCH_IN_PROGRESS,
    RTE_STEDI_BATCH_COMPLETED,
    RTE_STEDI_BATCH_COMPLETED_WITH_ERRORS,
};

/* GET .../batch/{batchId} (GetBatchResponseContent); counts absent from the answer are 0 */
typedef struct rte_stedi_batch_info {
    char status[32]; /* as Stedi says, e.g. COMPLETED_WITH_ERRORS */
    enum rte_stedi_batch_state state;
    char id[128];
    char name[104];
    int total;             /* totalCount */
    int success;           /* successCount: sent and answered (errors[] included) */
    int error;             /* errorCount: no answer from the payer even after retrying */
    int in_progress;       /* inProgressCount: started or retrying */
    int validated;         /* validatedCount */
    int validation_failed; /* validationFailedCount */
    int max_retry_hours;   /* 0 when absent */
    int complete;          /* 1: COMPLETED or COMPLETED_WITH_ERRORS: no result will follow */
    int failed;            /* 1: VALIDATION_FAILED: the batch will not run */
} rte_stedi_batch_info;

#define RTE_STEDI_PAGE_TOKEN_MAX 1024 /* nextPageToken maxLength */

/* One page of batch poll results. */
typedef struct rte_stedi_page {
    char *raw; /* the page body as received (decoded), malloc'd */
    size_t raw_len;
    cJSON *doc;         /* parsed raw */
    const cJSON *items; /* borrowed from doc: the items array (may be empty) */
    int count;          /* items in this page */
    char next_token[RTE_STEDI_PAGE_TOKEN_MAX + 1]; /* nextPageToken, "" on the last page */
} rte_stedi_page;

/* One polled item read for the cache. Strings borrowed from the page. */
typedef struct rte_stedi_item {
    const char *submitter_id; /* submitterTransactionIdentifier: matches the item we submitted */
    const char *batch_id;     /* batchId, or NULL */
    rte_cache_entry entry;    /* success or error entry */
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
 * rte_stedi_realtime_notify - rte_stedi_realtime that also calls
 * on_enqueued(arg) (may be NULL) once when no slot was free at once and
 * the check waits in its class's queue (rte_slots_acquire_notify), before
 * on_started. Any thread; blocks.
 */
int rte_stedi_realtime_notify(rte_stedi *s, const rte_stedi_check *chk, enum rte_slot_class cls,
                              int64_t deadline_mono_ms, rte_slots_wait_fn on_enqueued,
                              rte_stedi_started_fn on_started, void *arg, rte_stedi_result *out);

/*
 * rte_stedi_batch_submit - submit n (1..10000) checks as one Stedi batch
 * named name (NULL = Stedi names it after the batchId; else it must match
 * ^[a-zA-Z0-9-_]{1,100}$ and be unique in the account: see
 * rte_stedi_batch_name), max_retry_hours 0 = Stedi's default (8) else
 * 8..24. Every item needs a submitter_id, unique in the batch: it is how
 * polled results are matched back to members. batch_id filled on 0.
 * RTE_STEDI_E_FAILED (refused: nothing created), RTE_STEDI_E_UNKNOWN (may
 * have been created) or RTE_STEDI_E_EXISTS (409: the name is taken, so an
 * earlier submission of this name was created; rte_stedi_find_batch finds
 * its id) + err. Any thread; blocks.
 */
int rte_stedi_batch_submit(rte_stedi *s, const rte_stedi_check *items, size_t n, const char *name,
                           int max_retry_hours, char *batch_id, size_t idlen, char *err,
                           size_t errlen);

/*
 * rte_stedi_batch_name - a batch name unique in the account:
 * "<prefix>-<UTC yyyymmddThhmmss>-<8 random hex>" with the prefix cut to
 * Stedi's characters and length. len >= 101 always fits. Any thread.
 */
void rte_stedi_batch_name(const char *prefix, char *out, size_t len);

/* rte_stedi_batch_name_valid - 1 when name matches ^[a-zA-Z0-9-_]{1,100}$ */
int rte_stedi_batch_name_valid(const char *name);

/* rte_stedi_batch_status - the batch's counts; 0, RTE_STEDI_E_NOT_FOUND or _FAILED + err */
int rte_stedi_batch_status(rte_stedi *s, const char *batch_id, rte_stedi_batch_info *out, char *err,
                           size_t errlen);

/*
 * rte_stedi_batch_info_read - the batch status answer doc (the parsed body
 * of GET .../batch/{batchId}) into out; 0, or RTE_STEDI_E_FAILED + err.
 * What rte_stedi_batch_status does with a 200 body. Pure; any thread.
 */
int rte_stedi_batch_info_read(const cJSON *doc, rte_stedi_batch_info *out, char *err,
                              size_t errlen);

/* rte_stedi_batch_state_name - "COMPLETED", ... ("UNKNOWN"); static string */
const char *rte_stedi_batch_state_name(enum rte_stedi_batch_state st);

/*
 * rte_stedi_poll_page - one page of completed results after page_token
 * (NULL/"" = from the start), page_size 1..200. 0 with *out filled (free it
 * with rte_stedi_page_free), RTE_STEDI_E_NOT_FOUND or _FAILED + err.
 */
int rte_stedi_poll_page(rte_stedi *s, const char *batch_id, int page_size, const char *page_token,
                        rte_stedi_page *out, char *err, size_t errlen);

/*
 * rte_stedi_page_read - check the polling answer in p->doc and fill
 * p->items, p->count and p->next_token from it (p->raw is left alone); 0,
 * or RTE_STEDI_E_FAILED + err. What rte_stedi_poll_page does with a 200
 * body. Pure; any thread.
 */
int rte_stedi_page_read(rte_stedi_page *p, char *err, size_t errlen);

/*
 * rte_stedi_find_batch - the batchId of the batch named name, read from
 * the account's polled results (items carry batchName) completed after
 * since_ms (clock ms), at most max_pages pages of 200: the only way back to
 * a batch whose submit answer was lost (Stedi has no lookup by name). 1
 * with batch_id filled, 0 when none of its checks has completed yet (or
 * they lie beyond max_pages), or RTE_STEDI_E_FAILED + err. Any thread;
 * blocks.
 */
int rte_stedi_find_batch(rte_stedi *s, const char *name, int64_t since_ms, int max_pages,
                         char *batch_id, size_t idlen, char *err, size_t errlen);

/* rte_stedi_page_free - release a page (safe on a zeroed page) */
void rte_stedi_page_free(rte_stedi_page *p);

/*
 * Called for each non-empty page in order with the resume cursor that holds
 * once this page is handled (persist it after handling the page); return 0
 * to go on, non-zero to stop there.
 */
typedef int (*rte_stedi_page_fn)(void *arg, const rte_stedi_page *page, const char *cursor_after);

#define RTE_STEDI_CURSOR_MAX (RTE_STEDI_PAGE_TOKEN_MAX + 16)

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
 * rte_stedi_item_map - read one polled item (an element of page->items:
 * the real-time answer shape plus batchId and submitterTransactionIdentifier,
 * a failed one with status "ERROR" and errors[]) for the service types its
 * check asked (NULL = "30"), cached at now_ms with freshness f (NULL = the
 * defaults). The item names no member: the caller matches submitter_id to
 * the member it submitted. -1 + err naming the field when the item is
 * malformed. Pure; any thread.
 */
int rte_stedi_item_map(const cJSON *item, const rte_stedi_asked *asked, int64_t now_ms,
                       const rte_cache_freshness *f, rte_stedi_item *out, char *err, size_t errlen);

/* rte_stedi_outcome_name - "ok", "payer_error", "no_slot", ...; static string */
const char *rte_stedi_outcome_name(enum rte_stedi_outcome o);

#endif
