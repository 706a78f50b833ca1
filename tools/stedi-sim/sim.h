/*
 * sim.h - shared declarations of stedi-sim, the in-memory Stedi stand-in.
 *
 * main.c reads the settings into sim_conf, opens the manager API's own port
 * when asked to and declares the routes; sim_request.c checks requests
 * against Stedi's published request schema; sim_answer.c builds the
 * deterministic answer for a member (the benefit structures, payer
 * rejections and Stedi's own errors); sim_realtime.c owns authorization,
 * the latency scheduler and the concurrency limit of the real-time
 * endpoint; sim_batch.c owns batches, their items, polling and completion
 * callbacks. Counters for /_sim/stats live in sim_st, guarded by their own
 * mutex.
 *
 * Everything is in memory and lost on exit: this is a simulator, not a store.
 */
#ifndef SIM_H
#define SIM_H

#include <cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/config.h"
#include "rte/http_server.h"

#define SIM_MAX_DOWNTIME 32
#define SIM_CLASSES 20 /* member structure classes: member number mod 20 */

/* Stedi's two hosts; a listener serves one or both (its routes' arg points at the mask) */
enum sim_api {
    SIM_API_HEALTHCARE = 1, /* real-time eligibility */
    SIM_API_MANAGER = 2,    /* batch submit, status, items, polling */
};

typedef struct sim_downtime {
    char payer[64]; /* tradingPartnerServiceId */
    int start_min;  /* minutes after 00:00 UTC (simulated) */
    int end_min;    /* exclusive; may be < start_min (window wraps midnight) */
} sim_downtime;

typedef struct sim_cfg {
    const char *api_key;
    int64_t latency_p50_ms, latency_p95_ms, latency_max_ms; /* simulated */
    int max_concurrent;
    double error_rate;
    sim_downtime downtime[SIM_MAX_DOWNTIME];
    int ndowntime;
    const char *unknown_payers; /* comma-separated payer ids Stedi does not know */
    int64_t batch_min_delay_ms, batch_max_delay_ms; /* simulated */
    const char *callback_secret;
    int callback_max_attempts;
} sim_cfg;

typedef struct sim_stats {
    pthread_mutex_t mu;
    long realtime_calls, realtime_429, realtime_errors;
    long max_in_flight, in_flight;
    long batches, batch_items, callbacks_sent, callbacks_failed;
} sim_stats;

extern sim_cfg sim_conf;
extern sim_stats sim_st;

/* sim_stat_add - add v to one counter under the stats lock; any thread */
void sim_stat_add(long *counter, long v);

/* --- HTTP helpers (sim_realtime.c) --------------------------------------- */

/*
 * sim_serves - 1 if the listener whose route arg is api_mask serves api,
 * else answers 404 (the manager API on the main port once it has its own);
 * loop thread
 */
int sim_serves(rte_http_req *req, const void *api_mask, enum sim_api api);

/*
 * sim_authorized - 1 if Authorization carries the key ("<key>" or
 * "Key <key>"); else answers 403, or 401 for a missing header on the
 * manager API (the codes each OpenAPI document lists); loop thread
 */
int sim_authorized(rte_http_req *req, enum sim_api api);

/* sim_stedi_error - answer status with Stedi's {"code","message"} error body; loop thread */
void sim_stedi_error(rte_http_req *req, int status, const char *code, const char *msg);

/* sim_h_not_found - any path this host does not serve: 404 {"code","message"}; loop thread */
void sim_h_not_found(rte_http_req *req, void *arg);

/* sim_hash - FNV-1a 64 of text, continuing from h (start with 0); pure */
uint64_t sim_hash(uint64_t h, const char *text);

/* --- request checks (sim_request.c) -------------------------------------- */

#define SIM_MAX_FIELD_ERRORS 10

/* The fields a request got wrong, as Stedi's ValidationException lists them. */
typedef struct sim_invalid {
    int n;     /* entries in e (at most SIM_MAX_FIELD_ERRORS) */
    int total; /* errors found, including those not kept */
    struct {
        char path[160]; /* JSON pointer: "/items/3/subscriber/memberId" */
        char text[256]; /* "items[3].subscriber.memberId: must ..." */
    } e[SIM_MAX_FIELD_ERRORS];
} sim_invalid;

/*
 * sim_check_request - check one eligibility check against Stedi's request
 * schema and the rules its descriptions state; item >= 0 checks items[item]
 * of a batch (submitterTransactionIdentifier required, names prefixed).
 * Adds to v; pure
 */
void sim_check_request(const cJSON *req, int item, sim_invalid *v);

/* sim_invalid_add - add one error (pointer path, then printf text); pure */
void sim_invalid_add(sim_invalid *v, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sim_utf8_ok - 1 if the n bytes at s are valid UTF-8 (JSON text must be); pure */
int sim_utf8_ok(const char *s, size_t n);

/*
 * sim_excerpt - at most len - 1 bytes of s for an error message, printable
 * ASCII kept and anything else as '?', so echoing a client's bytes can
 * never make the answer invalid JSON text; returns out; pure
 */
const char *sim_excerpt(const char *s, char *out, size_t len);

/* sim_respond_invalid - 400 {"message","fieldList":[{"path","message"}]}; loop thread */
void sim_respond_invalid(rte_http_req *req, const sim_invalid *v);

/* --- answers (sim_answer.c) ---------------------------------------------- */

/* What an answer says, for the batch item list and the completion callback. */
typedef struct sim_facts {
    enum { SIM_ACTIVE, SIM_INACTIVE, SIM_REJECTED } result;
    int http_status; /* 200, or 400 for the rejection Stedi sends under 400 */
    const char *aaa; /* AAA code of a rejection, else NULL */
    int copay;       /* the office-visit co-payment, -1 when the plan has none */
    char network;    /* inPlanNetworkIndicatorCode of that co-payment ('Y', 'N', 'W') */
    char begin[9];   /* coverage start YYYYMMDD, "" if the answer has none */
    char end[9];     /* coverage end YYYYMMDD, "" if open */
} sim_facts;

/* sim_member_number - the trailing digits of subscriber.memberId (else a hash); pure */
uint64_t sim_member_number(const cJSON *req);

/*
 * sim_answer - the payer's 271 for a valid check answered at simulated time
 * at_ms, as Stedi's JSON: benefit structure, dates and any rejection from
 * the member's class (sim_member_number mod SIM_CLASSES); ids derive from
 * seed. facts (may be NULL) gets what it says. Caller frees; pure
 */
cJSON *sim_answer(const cJSON *req, int64_t at_ms, uint64_t seed, sim_facts *facts);

/* sim_answer_payer_down - the 271 of a payer that cannot answer (AAA 42); caller frees; pure */
cJSON *sim_answer_payer_down(const cJSON *req, int64_t at_ms, uint64_t seed);

/* sim_answer_unknown_payer - Stedi's 400 body for a payer it does not know; caller frees; pure */
cJSON *sim_answer_unknown_payer(const cJSON *req);

/*
 * sim_answer_failed_item - a batch check Stedi gave up on (status "ERROR"):
 * the payer is unknown (AAA 79) or never answered within retry_hours
 * (AAA 42); caller frees; pure
 */
cJSON *sim_answer_failed_item(const cJSON *req, uint64_t seed, int unknown_payer, int retry_hours);

/* sim_payer_unknown - 1 if payer is in sim.unknown_payers; pure */
int sim_payer_unknown(const char *payer);

/*
 * sim_downtime_end - when payer's sim.downtime window covering at_ms ends
 * (adjacent windows joined), or -1 when the payer is up at at_ms; pure
 */
int64_t sim_downtime_end(const char *payer, int64_t at_ms);

/* sim_format_uuid - a UUID-shaped id drawn from (seed, k); pure */
void sim_format_uuid(uint64_t seed, uint64_t k, char out[37]);

/* --- endpoints ----------------------------------------------------------- */

/* sim_realtime_start - start the scheduler thread; init */
int sim_realtime_start(char *err, size_t errlen);
/* sim_realtime_stop - stop the scheduler (after draining), free what is left */
void sim_realtime_stop(void);
/* sim_h_realtime - POST .../eligibility/v3; loop thread */
void sim_h_realtime(rte_http_req *req, void *arg);

/* sim_batch_start - start the callback thread and HTTP client; init */
int sim_batch_start(char *err, size_t errlen);
/* sim_batch_stop - stop the callback thread, free every batch; shutdown */
void sim_batch_stop(void);
/* sim_h_batch_submit - POST .../eligibility-manager/batch-eligibility; a loop thread */
void sim_h_batch_submit(rte_http_req *req, void *arg);
/* sim_h_batch_get - GET .../batch/{id} and .../batch/{id}/items; a loop thread */
void sim_h_batch_get(rte_http_req *req, void *arg);
/* sim_h_poll - GET .../eligibility-manager/polling/batch-eligibility; a loop thread */
void sim_h_poll(rte_http_req *req, void *arg);

#endif
