/*
 * cw.h - cache-warmer: settings, shared state and metrics of its files.
 *
 * The service turns warming requests into warm cache entries:
 *   cw_consume.c  the two Kafka consumers (member-cron-events protobuf,
 *                 app_usage_likely JSON): decode, validate, DLQ the rest
 *   cw_decide.c   the decision tree for a batch of requests (probability,
 *                 directory, one MGET of cache entries, strategy, priority),
 *                 then rte_warm_enqueue or the urgent path
 *   cw_urgent.c   urgent requests: real-time Stedi calls in the limiter's
 *                 warming class, falling back to the batch queue
 *   cw_flush.c    the timer: seal windows, submit sealed batches, watch
 *                 completion, publish the queue size
 *   cw_grpc.c     CacheWarmingService (WarmCache, ScheduleWarming, GetWarmingStats)
 *   cw_sched.c    ScheduleWarming: named cron schedules in Redis, each fire
 *                 run once cluster-wide through cw_decide
 *   cw_stats.c    warming statistics in Redis and prediction accuracy from
 *                 the gateway's rte.access events
 * Settings are read once at start-up (cw_conf_load) into the global CW.
 */
#ifndef CW_H
#define CW_H

#include <stddef.h>
#include <stdint.h>

#include "rte/cache_entry.h"
#include "rte/config.h"
#include "rte/member_dir.h"
#include "rte/metrics.h"
#include "rte/stedi.h"
#include "rte/warm.h"

/* WarmCacheRequest.Priority and WarmingStrategy values (cache_warming.proto) */
enum cw_priority { CW_BACKGROUND = 0, CW_PRELOAD = 1, CW_URGENT = 2 };
enum cw_strategy { CW_INTELLIGENT = 0, CW_FORCE = 1, CW_FILL_ONLY = 2 };

/* What became of one request. Skips are counted by reason (cw_outcome_name). */
enum cw_outcome {
    CW_PENDING = 0,
    CW_SKIP_LOW_PROBABILITY,
    CW_SKIP_UNKNOWN_MEMBER,
    CW_SKIP_RTE_DISABLED,
    CW_SKIP_INACTIVE_COVERAGE,
    CW_SKIP_FRESH,      /* INTELLIGENT: an entry younger than fresh_window */
    CW_SKIP_CACHED,     /* FILL_ONLY: any entry */
    CW_SKIP_DUP_EVENT,  /* event id seen before */
    CW_SKIP_DUP_MEMBER, /* already queued in this window / this request */
    CW_QUEUED,          /* in the batch queue */
    CW_WARMED,          /* urgent: warmed through the real-time API */
    CW_NOUTCOMES
};

typedef struct cw_conf {
    const char *members;        /* member directory source (borrowed from the config) */
    int64_t members_reload_ms;  /* clock ms between reload checks */
    double min_probability;     /* below: skipped */
    double urgent_above;        /* above: URGENT */
    double preload_above;       /* above: PRELOAD, else BACKGROUND */
    int64_t fresh_window_ms;    /* INTELLIGENT skips entries younger than this */
    int urgent_workers;         /* real-time calls in parallel per replica */
    int64_t urgent_deadline_ms; /* real ms a call may wait for a slot and answer */
    int64_t flush_check_ms;     /* clock ms between seal/submit checks */
    int64_t batch_eta_ms;       /* expected Stedi batch time, for estimates */
    int request_max;            /* WarmCache members per request */
    int batch_max;              /* Kafka messages per handler call */
    int flush_on_shutdown;      /* SIGTERM seals and submits the open window */
    rte_cache_settings cache;
    rte_warm_opts warm;
    rte_batch_registry_opts registry;
} cw_conf;

typedef struct cw_state {
    cw_conf c;
    rte_stedi *stedi;
    rte_warm *warm;
    rte_member_dir *dir;
    char owner[64]; /* this process's claim token */
} cw_state;

extern cw_state CW;

typedef struct cw_metrics {
    rte_metric *requests;   /* rte_cache_warming_requests_total{source,priority} */
    rte_metric *results;    /* rte_cache_warming_results_total{result} */
    rte_metric *skipped;    /* rte_cache_warming_skipped_total{reason} */
    rte_metric *accuracy;   /* rte_cache_warming_prediction_accuracy{source} */
    rte_metric *batches;    /* rte_batch_submitted_total */
    rte_metric *checks;     /* rte_batch_checks_submitted_total */
    rte_metric *completion; /* rte_batch_completion_duration_seconds */
    rte_metric *queue;      /* rte_cache_warming_queue_size{state} */
    rte_metric *urgent;     /* rte_cache_warming_urgent_total{outcome} */
    rte_metric *invalid;    /* rte_cache_warming_invalid_events_total{topic} */
    rte_metric *fires;      /* rte_cache_warming_schedule_fires_total{result} */
} cw_metrics;

extern cw_metrics CM;

/* cw_conf_load - every warmer.* key plus cache.*, warm.*, batch_registry.*; -1 + err */
int cw_conf_load(const rte_config *cfg, cw_conf *out, char *err, size_t errlen);

/* cw_metrics_init - register the families; start-up thread */
void cw_metrics_init(void);

/* cw_priority_name / cw_outcome_name - label values; static strings */
const char *cw_priority_name(int p);
const char *cw_outcome_name(int o);

#endif
