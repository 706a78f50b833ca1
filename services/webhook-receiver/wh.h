/*
 * wh.h - webhook-receiver: settings and metrics shared by its files.
 *
 * The service has three paths, one file each, all ending in the same topic:
 *   wh_http.c     POST /api/v1/batch-callback: verify (wh_sig.c), validate
 *                 (wh_callback.c), drop replays, produce to
 *                 rte.stedi.batch-results, 202 once acknowledged
 *   wh_poll.c     a timer that polls the batches registered in Redis
 *                 (batch_registry.h) and produces each page to the topic
 *   wh_consume.c  the consumer of that topic: the one writer of batch
 *                 results into the cache
 * Settings are read once at start-up (wh_conf_load) into the global WH.
 */
#ifndef WH_H
#define WH_H

#include <stddef.h>
#include <stdint.h>

#include "rte/batch_registry.h"
#include "rte/cache_entry.h"
#include "rte/config.h"
#include "rte/crypto.h"
#include "rte/metrics.h"

#define WH_MAX_SECRETS 8

/* Envelope kinds on rte.stedi.batch-results */
#define WH_KIND_CALLBACK "callback"
#define WH_KIND_POLL_PAGE "poll_page"
#define WH_KIND_BATCH_DONE "batch_done"

/* The HMAC keys of wh.secrets, each from rte_crypto_webhook_key (whsec_ decoded). */
typedef struct wh_secrets {
    int n;
    uint8_t key[WH_MAX_SECRETS][RTE_WEBHOOK_KEY_MAX];
    size_t len[WH_MAX_SECRETS];
} wh_secrets;

typedef struct wh_conf {
    wh_secrets secrets;
    int64_t tolerance_ms;     /* webhook-timestamp tolerance (real time) */
    size_t max_body;          /* bytes */
    int max_results;          /* results per callback */
    int64_t replay_ttl_ms;    /* how long a webhook-id is remembered */
    int workers;              /* threads verifying callbacks and handing them to Kafka */
    int queue_max;            /* callbacks waiting for a worker before 503 */
    int produce_timeout_ms;   /* acks=all wait bound (503 after it) */
    size_t chunk_bytes;       /* results per Kafka message, by size */
    int64_t stats_ttl_ms;     /* per-batch written/failed records */
    int64_t redis_wait_ms;    /* consumer: wait this long for Redis before RETRY */
    int writers;              /* threads writing one message's entries in parallel */
    int poll_enabled;         /* wh.poll.enabled */
    int64_t poll_interval_ms; /* timer interval (simulated ms) */
    int poll_page_size;       /* 1..200 */
    int poll_max_batches;     /* batches handled per tick */
    rte_cache_settings cache; /* secret + freshness */
    rte_batch_registry_opts registry;
} wh_conf;

extern wh_conf WH;

/* wh_conf_load - read every wh.* key (and cache.*, batch_registry.*); -1 + err naming the key */
int wh_conf_load(const rte_config *cfg, wh_conf *out, char *err, size_t errlen);

/* The service's metric families, registered by wh_metrics_init. */
typedef struct wh_metrics {
    rte_metric *callbacks;    /* rte_wh_callbacks_total{result} */
    rte_metric *sig_failures; /* rte_wh_signature_failures_total{scheme,reason} */
    rte_metric *replays;      /* rte_wh_replays_total{scheme} */
    rte_metric *produce;      /* rte_wh_produce_duration_seconds{kind} */
    rte_metric *ack;          /* rte_wh_callback_ack_seconds (receipt to 202) */
    rte_metric *queue;        /* rte_wh_callback_queue_depth */
    rte_metric *messages;     /* rte_wh_messages_total{kind,outcome} */
    rte_metric *written;      /* rte_wh_results_written_total{kind} */
    rte_metric *kept;         /* rte_wh_results_kept_newer_total */
    rte_metric *failed;       /* rte_wh_results_failed_total{reason} */
    rte_metric *apply;        /* rte_wh_apply_duration_seconds{kind} */
    rte_metric *events;       /* rte_wh_events_total{result} */
    rte_metric *polled;       /* rte_wh_batches_polled_total{outcome} */
    rte_metric *pages;        /* rte_wh_poll_pages_total */
    rte_metric *poll_items;   /* rte_wh_poll_items_total */
    rte_metric *backlog;      /* rte_wh_backlog_batches{state} */
} wh_metrics;

extern wh_metrics WM;

/* wh_metrics_init - register the families; start-up thread */
void wh_metrics_init(void);

/* wh_count - counter += 1 with one label value (NULL for none); any thread */
void wh_count(rte_metric *m, const char *l1, const char *l2);

/*
 * wh_produce - produce msg to topic with key and wait for acks=all (at most
 * wh.produce_timeout); the latency goes to rte_wh_produce_duration_seconds
 * {kind}. 0 or -1 + err. Any thread; blocks.
 */
int wh_produce(const char *topic, const char *kind, const char *key, const char *msg, size_t len,
               char *err, size_t errlen);

#endif
