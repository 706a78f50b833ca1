/*
 * br.h - batch-rpc: settings, shared state and metrics of its files.
 *
 * The service runs bulk eligibility jobs submitted over gRPC:
 *   br_grpc.c    BatchEligibilityService: validation, idempotent submit,
 *                rate limit, status, listing, cancel, the two streams
 *   br_select.c  member selection: MemberIdList or MemberQuery over the
 *                member directory
 *   br_plan.c    what the service decides at submit: strategy (the
 *                source's decision matrix), window start time, estimates
 *   br_exec.c    the work timer: any replica takes a due job's lease and
 *                works it chunk by chunk (cache pre-flight, real-time
 *                checks in the limiter's batch class, Stedi batches)
 *   br_events.c  updates: the job's update log (streams), BatchJobEvent on
 *                Kafka, rte.* lifecycle events of real-time checks
 * A job lives in Redis (libcommon jobs.h), so every replica can serve and
 * work every job. Settings are read once at start-up into BR.
 */
#ifndef BR_H
#define BR_H

#include <stddef.h>
#include <stdint.h>

#include "batch_eligibility.pb-c.h"
#include "rte/batch_registry.h"
#include "rte/cache_entry.h"
#include "rte/config.h"
#include "rte/http_client.h"
#include "rte/jobs.h"
#include "rte/member_dir.h"
#include "rte/metrics.h"
#include "rte/stedi.h"

typedef struct br_conf {
    const char *members;        /* member directory source (borrowed from the config) */
    int64_t members_reload_ms;  /* clock ms between reload checks */
    int request_max;            /* members per job */
    int rate_limit;             /* batches per client per rate_window; 0 = no limit */
    int64_t rate_window_ms;     /* real ms */
    int64_t tick_ms;            /* clock ms between looks for due jobs */
    int64_t slice_ms;           /* real ms one job is worked before others get a turn */
    int chunk;                  /* members per real-time / cache chunk */
    int batch_chunk;            /* members per Stedi batch (<= 10,000) */
    int realtime_workers;       /* real-time calls in parallel per job and replica */
    int64_t check_interval_ms;  /* clock ms between looks at members waiting on a Stedi batch */
    int64_t timeout_ms;         /* default job timeout (clock ms) */
    int64_t timeout_max_ms;     /* most a request may ask */
    int page_size;              /* ListBatches default page */
    int64_t watch_poll_ms;      /* real ms between looks for updates on a stream */
    int64_t keepalive_ms;       /* real ms without update before a keepalive */
    int64_t check_eta_ms;       /* expected real-time check (for estimates), clock ms */
    int64_t batch_eta_ms;       /* expected Stedi batch time (for estimates), clock ms */
    int member_events_max;      /* MEMBER_COMPLETED updates only for jobs up to this size */
    int64_t submit_retry_ms;    /* clock ms before a refused Stedi batch submit is retried */
    int submit_attempts;        /* refused submits before a chunk's members fail */
    int64_t jitter_ms;          /* most random delay after a window opens (clock ms) */
    int64_t busy_pause_ms;      /* real-time jobs pause this long while slots are busy */
    int slots_limit;            /* slots.limit: the account's real-time slots (load figures) */
    const char *webhook_secret; /* signs callbacks; "" = callbacks refused */
    int webhook_attempts;       /* at-least-once deliveries before a message is dropped */
    int64_t webhook_backoff_ms; /* first retry delay (doubles; real ms) */
    int64_t webhook_lease_ms;   /* a claimed message is due again after this (real ms) */
    int64_t webhook_timeout_ms; /* one POST */
    char prefix[64];            /* keys of the service: idempotency, rate, per-client index */
    const char *time_zone;      /* windows are computed in this zone */
    rte_cache_settings cache;
    rte_jobs_opts jobs;
    rte_batch_registry_opts registry;
} br_conf;

typedef struct br_state {
    br_conf c;
    rte_stedi *stedi;
    rte_member_dir *dir;
    struct rte_tz *tz;
    rte_http_client *http; /* webhook deliveries */
    uint8_t whkey[256];    /* the webhook signing key (decoded secret) */
    int whkeylen;          /* 0 = no secret configured */
    char owner[64];        /* this process's lease token */
} br_state;

extern br_state BR;

typedef struct br_metrics {
    rte_metric *jobs;     /* rte_batchrpc_jobs_total{event} */
    rte_metric *members;  /* rte_batchrpc_members_total{result} */
    rte_metric *chunks;   /* rte_batchrpc_chunks_total{kind} */
    rte_metric *dups;     /* rte_batchrpc_duplicate_checks_total */
    rte_metric *limited;  /* rte_batchrpc_rate_limited_total */
    rte_metric *realtime; /* rte_batchrpc_realtime_total{outcome} */
    rte_metric *stedi;    /* rte_batchrpc_stedi_batches_total{outcome} */
    rte_metric *batches;  /* rte_batch_submitted_total (the source's name, as cache-warmer) */
    rte_metric *checks;   /* rte_batch_checks_submitted_total */
    rte_metric *events;   /* rte_batchrpc_events_total{sink,result} */
    rte_metric *resent;   /* rte_batchrpc_events_redelivered_total{type} */
} br_metrics;

extern br_metrics BM;

#define BR_STEDI_BATCH_MAX 10000 /* Stedi's limit of checks per batch */
#define BR_CALLER_MAX 128

/* A job as stored (br_job.c). */
typedef struct br_job {
    char id[RTE_JOBS_ID_MAX];
    char caller[BR_CALLER_MAX]; /* who submitted it (br_caller) */
    char service[72];           /* client_service_name */
    char cjid[136];             /* client_job_id */
    int status;                 /* BatchStatus */
    int from_query;             /* members came from a MemberQuery */
    int cache_control;
    long total, completed, failed, hits, misses, refreshed, rt_calls, sb_calls, dups, cancelled;
    int64_t submitted_ms, start_ms, started_ms, ended_ms, eta_ms, dur_sum_ms;
    long dur_n;
    int64_t spread_ms;        /* spread the chunks evenly over this much after the start (0 = no) */
    long chunks, chunks_done; /* planned, and todo chunks recorded so far */
    int multi;                /* > 50,000 members: chunks rotate over three windows */
    int conc_cap;             /* not stored: the adaptive cap on real-time calls now (0 = none) */
    char ecode[32], emsg[200], reason[200];
    char *sb_ids; /* comma-separated Stedi batch ids (malloc'd) */
    char *groups; /* time-zone groups, br_plan_groups_format's text (malloc'd; "" = one) */
    Rte__V1__BatchExecutionOptions *opts; /* resolved options (unpacked; br_job_clear) */
} br_job;

/* br_job_load - 1 and *j filled, 0 no such job, -1 + err; caller's Redis connection */
int br_job_load(rte_redis *r, const char *id, br_job *j, char *err, size_t errlen);

/* br_job_clear - free what br_job_load allocated (safe on a zeroed job) */
void br_job_clear(br_job *j);

/* Storage for a BatchProgress built from a job. */
typedef struct br_progress {
    Rte__V1__BatchProgress p;
    Rte__V1__Duration avg;
    Rte__V1__Timestamp started, eta;
} br_progress;

/* br_job_progress - j's progress into out (self-contained); pure */
void br_job_progress(const br_job *j, br_progress *out);

/* br_ts - clock ms as a Timestamp */
void br_ts(Rte__V1__Timestamp *t, int64_t ms);

/* br_conf_load - every batchrpc.* key plus cache.*, batch_registry.*; -1 + err */
int br_conf_load(const rte_config *cfg, br_conf *out, char *err, size_t errlen);

/* br_metrics_init - register the families; start-up thread */
void br_metrics_init(void);

/* br_check / br_init / br_shutdown - the skeleton's callbacks (main.c) */
int br_check(const rte_config *cfg, char *err, size_t errlen);
int br_init(const rte_config *cfg, char *err, size_t errlen);
void br_shutdown(void);

/* br_status_name - "PENDING", ... for a BatchStatus value; static string */
const char *br_status_name(int status);

/* br_status_final - 1 for COMPLETED, FAILED, CANCELLED, PARTIALLY_COMPLETED */
int br_status_final(int status);

#endif
