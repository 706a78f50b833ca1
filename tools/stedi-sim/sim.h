/*
 * sim.h - shared declarations of stedi-sim, the in-memory Stedi stand-in.
 *
 * main.c reads the settings into sim_cfg and declares the routes;
 * sim_realtime.c owns request validation, the deterministic outcome, the
 * latency scheduler and the concurrency limit; sim_batch.c owns batches,
 * polling and completion callbacks. Counters for /_sim/stats live in
 * sim_stats, guarded by their own mutex.
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

/* sim_authorized - 1 if the Authorization header carries the key, else answers 401; loop thread */
int sim_authorized(rte_http_req *req);

/* sim_stedi_error - answer status with a Stedi-style {"code","message"} body; loop thread */
void sim_stedi_error(rte_http_req *req, int status, const char *code, const char *msg);

/* sim_hash - FNV-1a 64 of text, continuing from h (start with 0); pure */
uint64_t sim_hash(uint64_t h, const char *text);

/*
 * sim_validate - check one eligibility request's shape; on error fill err
 * with "<prefix><field>: <reason>" and return -1; pure
 */
int sim_validate(const cJSON *item, const char *prefix, char *err, size_t errlen);

/*
 * sim_outcome - the response document for a valid request at simulated time
 * now_ms: coverage from hash(memberId, payer), or the AAA 42 error during a
 * downtime window or when force_error is set; caller frees
 */
cJSON *sim_outcome(const cJSON *item, int64_t now_ms, int force_error);

/* sim_item_error - 1 if a batch item deterministically fails at simulated time now_ms; pure */
int sim_item_error(const cJSON *item, int64_t now_ms);

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
/* sim_h_batch_submit - POST .../batch-eligibility; loop thread */
void sim_h_batch_submit(rte_http_req *req, void *arg);
/* sim_h_batch_get - GET .../batch/{id} and .../batch/{id}/items; loop thread */
void sim_h_batch_get(rte_http_req *req, void *arg);
/* sim_h_poll - GET /2025-04-25/healthcare/eligibility/poll-batch; loop thread */
void sim_h_poll(rte_http_req *req, void *arg);

#endif
