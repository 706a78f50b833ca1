/*
 * kafka.c - librdkafka producer and at-least-once consumer (rte/kafka.h).
 *
 * Producer. One rd_kafka_t plus a poll thread that serves delivery reports,
 * so no caller ever calls rd_kafka_poll. A report counts
 * rte_kafka_produced_total{topic,result} and, for rte_kafka_produce_sync,
 * wakes the caller: the sync call passes a heap "waiter" as the message
 * opaque; the producer's mutex guards every waiter, and whichever of the
 * two sides comes last (the report, or the caller giving up at its
 * timeout) frees it, so a late report never touches freed memory.
 * Connectivity is probed with a brokers-only Metadata request (1 s bound)
 * because librdkafka reports "all brokers down" but never "back up".
 *
 * Batches. rte_kafka_produce_batch hands n messages of one topic to
 * rd_kafka_produce_batch through a topic handle the producer keeps (one
 * lookup per batch, not per message), numbering each for the watermark. A
 * batching thread (an HTTP loop: rte_kafka_batch_begin) copies what it
 * produces with rte_kafka_produce_batched into a thread-local buffer
 * (RTE_KAFKA_BATCH_MAX messages, 128 KiB) that it flushes after each loop
 * turn, so a busy loop makes one librdkafka call and one wake-up of its
 * broker thread per turn instead of one per message. Messages refused at a
 * flush are counted (result="refused") and logged at most once a second;
 * the caller had already been told 0.
 *
 * Consumer. Offsets are stored by us (enable.auto.offset.store=false) only
 * after the handler succeeded or the DLQ copy was acknowledged; librdkafka
 * auto-commits what is stored every auto.commit.interval.ms, and we commit
 * synchronously when partitions are revoked (cooperative-sticky, so only
 * the moved partitions stop) and when run() stops. A crash therefore
 * redelivers at most the messages finished since the last commit plus the
 * one in hand: at-least-once; consumers drop duplicates by event_id.
 *
 * Batch mode hands the handler what one poll burst brought (up to
 * batch_max, never waiting to fill a batch) and stores nothing until the
 * whole batch is finished; a retry hands the same batch again. Offsets are
 * then stored per partition after the batch's last message there, except
 * in a partition where a DLQ copy could not be made (stopping, revoked):
 * nothing from that message on moves, so it is redelivered.
 *
 * Retries run on the consumer thread: the handler is called again after a
 * backoff, and no further message is handled meanwhile, so per-key order
 * holds (and every other partition of this member waits too). During the
 * backoff the whole assignment is paused and the thread keeps polling in
 * 50 ms slices: librdkafka drops what it had fetched for the paused
 * partitions and, on resume, fetches again from after the message in hand
 * (it resumes from the last message handed to us + 1), while the polls keep
 * max.poll.interval.ms from expiring and serve rebalances. So retries may
 * last as long as max_retries x retry_backoff_max_ms allows (a dependency
 * outage of minutes stalls the partitions instead of dead-lettering); a
 * partition assigned mid-backoff is paused as it arrives, a message polled
 * anyway is held and handled after the one in hand, and if the partition of
 * the message in hand is revoked it is left, unstored, to its new owner (so
 * nothing is lost). A poison message is copied to "<topic>.dlq" with
 * rte_kafka_produce_sync; if that fails the offset is not stored and the
 * copy is retried with the same backoff until it succeeds or the consumer
 * stops (then it is redelivered after restart). Nothing is ever dropped.
 *
 * Properties: our defaults (above, plus linger.ms=5 and session.timeout.ms=
 * 10000) are set first, then every config-file key under kafka.producer. or
 * kafka.consumer. is passed to librdkafka with the prefix removed, so the
 * file may override any of them. RTE_* variables override those keys'
 * values but cannot add keys the file lacks (rte_config_each lists file keys).
 *
 * Errors: constructors return NULL with a message naming the bad property or
 * config key; broker trouble is logged (librdkafka's log and error callbacks
 * go to rte_log) and retried by librdkafka. A handler returning a value
 * other than RTE_KAFKA_OK/RETRY/POISON is a bug (rte_panic).
 *
 * Deliberately not here: transactions or exactly-once delivery, schemas,
 * parallelism inside one consumer (run more group members instead), and
 * topic administration (tools/kafka-dev-broker creates local topics).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "rte/clock.h"
#include "rte/kafka.h"
#include "rte/log.h"
#include "rte/metrics.h"

#define POLL_MS 100               /* consumer and producer poll granularity */
#define SLICE_MS 50               /* backoffs poll (and check the stop flag) this often */
#define CONNECTED_TIMEOUT_MS 1000 /* bound on the connectivity probe */
#define DLQ_TIMEOUT_MS 10000      /* wait for a DLQ copy's acknowledgement */
#define COMMIT_TIMEOUT_MS 10000   /* wait for a commit's answer (a revoke while running) */
#define CLOSE_DEFAULT_MS 10000    /* rte_kafka_consumer_stop: bound on leaving the group */
#define FIRST_ASSIGN_MS 15000     /* close: wait at most this for a first assignment */
#define DLQ_SUFFIX ".dlq"
#define STOPPED (-1) /* call_with_retries: stop requested mid-backoff */
#define LEFT (-2)    /* call_with_retries: the partition was revoked mid-backoff */

#define MAX_TOPIC_HANDLES 32 /* distinct topics one producer batches to */

struct rte_kafka_producer {
    rd_kafka_t *rk;
    pthread_t poller;
    int poller_started;
    atomic_int stop;
    pthread_mutex_t mu; /* guards every struct waiter of this producer */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC; broadcast on each sync delivery */

    /* Delivery watermark of rte_kafka_produce messages (see kafka.h): each
     * gets the next sequence number, carried in its opaque as (seq << 1) | 1
     * (a waiter pointer is even). Reports set seq_done[seq % SEQ_RING]; the
     * watermark then moves over every contiguous reported number. */
    uint8_t *seq_done;           /* SEQ_RING flags, under seq_mu */
    pthread_mutex_t seq_mu;      /* reports may arrive on the poller and on a flushing thread */
    _Atomic uint64_t seq_next;   /* last number handed out */
    uint64_t seq_wm;             /* under seq_mu: every number <= it was reported */
    _Atomic uint64_t seq_wm_pub; /* seq_wm for lock-free readers */
    _Atomic uint64_t seq_failed; /* reports that were errors */

    pthread_mutex_t topics_mu; /* topic handles for rte_kafka_produce_batch */
    rd_kafka_topic_t *topics[MAX_TOPIC_HANDLES];
    int ntopics;
};

#define SEQ_RING (1u << 20) /* above librdkafka's queue.buffering.max.messages default */

/* One rte_kafka_produce_sync call in flight; freed by whichever side is last */
struct waiter {
    int done;
    int abandoned;
    rd_kafka_resp_err_t err;
    rte_kafka_delivered_fn fn; /* rte_kafka_produce_async: called instead of waking anyone */
    void *arg;
};

#define HEALTH_TOPICS 8     /* subscribed topics with health gauges (more are not measured) */
#define LAG_REFRESH_MS 1000 /* how often the lag gauge is recomputed */

struct rte_kafka_consumer {
    rd_kafka_t *rk;
    rte_kafka_handler handler;
    void *arg;
    int max_retries;
    int backoff_ms;
    int backoff_max_ms;
    rte_kafka_producer *dlq;
    atomic_int stop;
    atomic_int closed;
    atomic_int assigned;      /* a first assignment arrived (see close_consumer) */
    int leaked;               /* handle deliberately not destroyed (see close_consumer) */
    _Atomic int64_t close_by; /* mono ms by which close must be done (rte_kafka_consumer_stop*) */
    /* published for rte_kafka_consumers_stuck (read from any thread): */
    _Atomic int64_t out_since; /* mono ms it left (or before it first joined) its group; 0 = in */
    atomic_int paused_pub;     /* c->paused */
    /* consumer thread only (rebalance_cb runs inside its polls): */
    int paused;                /* the assignment is paused for a backoff */
    rte_series *stalled;       /* rte_kafka_consumer_stalled{topic} counted while paused */
    unsigned revokes;          /* revocations seen so far */
    rd_kafka_message_t **held; /* polled during a backoff, handled after it, in order */
    int held_head, nheld, held_cap;
    /* health (consumer thread only): partitions held and lag per subscribed
     * topic, this consumer's share of the process-wide gauges */
    struct held_topic {
        char name[256];
        int parts;                    /* partitions assigned now */
        double lag;                   /* high watermark - position, summed over them */
        unsigned stores, stores_seen; /* offsets stored on the topic; as of the last lag refresh */
        _Atomic int64_t behind_since; /* mono ms since it had lag and stored nothing; 0 = none */
    } ht[HEALTH_TOPICS];
    int nht;
    int64_t lag_at; /* next lag refresh, mono ms */
    /* batch mode (opts.batch_handler): arrays of batch_max, consumer thread only */
    rte_kafka_batch_handler batch_handler;
    int batch_max;
    rd_kafka_message_t **bm;
    rte_kafka_msg *bmsg;
    rte_kafka_verdict *bv;
};

static rte_metric *m_produced;
static rte_metric *m_consumed;
static rte_metric *m_handler;
static rte_metric *m_stalled;
static rte_metric *m_assigned;
static rte_metric *m_lag;
static rte_metric *m_stuck;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void)
{
    static const char *const topic_result[] = {"topic", "result", NULL};
    static const char *const topic[] = {"topic", NULL};

    m_produced =
        rte_counter_new("rte_kafka_produced_total",
                        "Messages acknowledged (ok) or failed (error) by Kafka, or refused before "
                        "sending (refused: queue full, unknown topic)",
                        topic_result);
    m_consumed = rte_counter_new("rte_kafka_consumed_total",
                                 "Messages handled (ok), retried (retry, one per retry) or "
                                 "dead-lettered (dlq)",
                                 topic_result);
    m_handler = rte_histogram_new("rte_kafka_handler_seconds", "Time spent in one handler call",
                                  topic, NULL, 0);
    m_stalled = rte_gauge_new("rte_kafka_consumer_stalled",
                              "Consumers retrying a message of the topic now, their partitions "
                              "paused (a dependency outage when it lasts)",
                              topic);
    m_assigned = rte_gauge_new("rte_kafka_consumer_assigned_partitions",
                               "Partitions of the topic this process's consumers hold now (0 on "
                               "every replica while the topic has lag: a stalled group)",
                               topic);
    m_lag = rte_gauge_new("rte_kafka_consumer_lag",
                          "Messages behind the high watermark on the partitions this process "
                          "holds (refreshed every second from the fetcher's watermarks)",
                          topic);
    m_stuck = rte_gauge_new("rte_kafka_consumer_stuck_seconds",
                            "Longest time one of this process's consumers of the topic has been "
                            "out of its group, or behind on partitions it holds without finishing "
                            "a message (0 = consuming or idle)",
                            topic);
}

static void count(rte_metric *m, const char *topic, const char *result)
{
    const char *const values[] = {topic, result};

    rte_counter_inc(m, values);
}

static void count_n(rte_metric *m, const char *topic, const char *result, int n)
{
    const char *const values[] = {topic, result};

    rte_counter_add(m, values, n);
}

static int next_backoff(int backoff, int max)
{
    return backoff > max / 2 ? max : backoff * 2;
}

/* --- broker list --------------------------------------------------------- */

static int copy_trimmed(const char *s, char *buf, size_t len)
{
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= len)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

static int read_bootstrap_file(char *buf, size_t len)
{
    const char *dir = getenv("RTE_RUN_DIR");
    char path[4096];
    char text[4096];
    size_t n;
    FILE *f;

    if (!dir || !*dir)
        dir = "run";
    if ((size_t)snprintf(path, sizeof path, "%s/kafka.bootstrap", dir) >= sizeof path)
        return -1;
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return copy_trimmed(text, buf, len);
}

/* rte_kafka_brokers - env, then config, then the dev broker's file; any thread */
int rte_kafka_brokers(const rte_config *cfg, char *buf, size_t len)
{
    const char *s = getenv("RTE_KAFKA_BROKERS");

    if (s && *s)
        return copy_trimmed(s, buf, len);
    s = cfg ? rte_config_str(cfg, "kafka.brokers", NULL) : NULL;
    if (s && *s)
        return copy_trimmed(s, buf, len);
    return read_bootstrap_file(buf, len);
}

/* --- configuration shared by producer and consumer ----------------------- */

static enum rte_log_level syslog_to_rte(int level)
{
    if (level <= 3)
        return RTE_LOG_ERROR;
    if (level == 4)
        return RTE_LOG_WARN;
    if (level <= 6)
        return RTE_LOG_INFO;
    return RTE_LOG_DEBUG;
}

/* librdkafka internal threads: route its log lines to ours */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    rte_log(syslog_to_rte(level), "librdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

/* poll threads: client-level errors; librdkafka retries by itself */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char why[512];

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        return; /* log_cb already reported this connection failure */
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, why, sizeof why);
        rte_log_error("kafka %s: fatal error: %s; this client is unusable until restart",
                      rd_kafka_name(rk), why);
        return;
    }
    rte_log_warn("kafka %s: %s: %s; librdkafka keeps retrying", rd_kafka_name(rk),
                 rd_kafka_err2name(err), reason);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen)
{
    char why[256];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errlen, "kafka property %s=%s: %s", name, value, why);
    return -1;
}

struct props {
    rd_kafka_conf_t *conf;
    const char *prefix;
    int rc;
    char *err;
    size_t errlen;
};

static void apply_prop(const char *key, const char *value, void *arg)
{
    struct props *p = arg;
    size_t n = strlen(p->prefix);
    const char *name = strncmp(key, p->prefix, n) == 0 ? key + n : key;
    char why[256];
    char env[256];

    if (p->rc < 0)
        return;
    if (rd_kafka_conf_set(p->conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return;
    rte_config_env_name(key, env, sizeof env);
    snprintf(p->err, p->errlen, "config key %s (%s) = \"%s\": %s", key, env, value, why);
    p->rc = -1;
}

/* librdkafka properties from every config key under prefix */
static int apply_props(const rte_config *cfg, const char *prefix, rd_kafka_conf_t *conf, char *err,
                       size_t errlen)
{
    struct props p = {conf, prefix, 0, err, errlen};

    if (cfg)
        rte_config_each(cfg, prefix, apply_prop, &p);
    return p.rc;
}

static rd_kafka_conf_t *base_conf(const rte_config *cfg, const char *brokers, char *err,
                                  size_t errlen)
{
    rd_kafka_conf_t *conf;
    char list[2048];

    if (!brokers) {
        if (rte_kafka_brokers(cfg, list, sizeof list) < 0) {
            snprintf(err, errlen,
                     "no Kafka brokers: set RTE_KAFKA_BROKERS or kafka.brokers, or start "
                     "tools/kafka-dev-broker (writes $RTE_RUN_DIR/kafka.bootstrap)");
            return NULL;
        }
        brokers = list;
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (conf_set(conf, "bootstrap.servers", brokers, err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* 1 if a broker answers a brokers-only Metadata request within 1 s */
static int brokers_up(rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;
    int up;

    if (rd_kafka_metadata(rk, 0, NULL, &md, CONNECTED_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    up = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return up;
}

/* --- producer ------------------------------------------------------------ */

/* poll thread (or a flushing caller): one delivery report */
/* Mark seq reported and move the watermark over every contiguous report. */
static void seq_reported(rte_kafka_producer *p, uint64_t seq)
{
    pthread_mutex_lock(&p->seq_mu);
    p->seq_done[seq % SEQ_RING] = 1;
    while (p->seq_done[(p->seq_wm + 1) % SEQ_RING]) {
        p->seq_done[(p->seq_wm + 1) % SEQ_RING] = 0;
        p->seq_wm++;
    }
    atomic_store(&p->seq_wm_pub, p->seq_wm);
    pthread_mutex_unlock(&p->seq_mu);
}

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    rte_kafka_producer *p = opaque;
    struct waiter *w = m->_private;
    const char *topic = rd_kafka_topic_name(m->rkt);

    (void)rk;
    /* purged by rte_kafka_producer_free at its deadline: counted, logged there once in all */
    int purged =
        m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    count(m_produced, topic, purged ? "lost_at_shutdown" : m->err ? "error" : "ok");
    if ((uintptr_t)m->_private & 1) {
        if (m->err && !purged) {
            atomic_fetch_add(&p->seq_failed, 1);
            rte_log_error("kafka: message to %s not delivered: %s; it is lost", topic,
                          rd_kafka_err2str(m->err));
        }
        seq_reported(p, (uint64_t)((uintptr_t)m->_private >> 1));
        return;
    }
    if (!w) {
        if (m->err && !purged)
            rte_log_error("kafka: message to %s not delivered: %s; it is lost", topic,
                          rd_kafka_err2str(m->err));
        return;
    }
    if (w->fn != NULL) { /* rte_kafka_produce_async: no one waits; the caller is told */
        w->fn(w->arg, m->err ? rd_kafka_err2str(m->err) : NULL);
        free(w);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (w->abandoned) {
        free(w);
    } else {
        w->done = 1;
        w->err = m->err;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

static void *poll_loop(void *arg)
{
    rte_kafka_producer *p = arg;

    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, POLL_MS);
    return NULL;
}

static int producer_conf(rd_kafka_conf_t *conf, const rte_config *cfg, char *err, size_t errlen)
{
    if (conf_set(conf, "enable.idempotence", "true", err, errlen) < 0 ||
        conf_set(conf, "acks", "all", err, errlen) < 0 ||
        conf_set(conf, "linger.ms", "5", err, errlen) < 0)
        return -1;
    return apply_props(cfg, "kafka.producer.", conf, err, errlen);
}

static void producer_destroy(rte_kafka_producer *p)
{
    if (p->poller_started) {
        atomic_store(&p->stop, 1);
        pthread_join(p->poller, NULL);
    }
    for (int i = 0; i < p->ntopics; i++)
        rd_kafka_topic_destroy(p->topics[i]);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    pthread_mutex_destroy(&p->topics_mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->seq_mu);
    free(p->seq_done);
    free(p);
}

/* rte_kafka_producer_new - any thread; starts the producer's poll thread */
rte_kafka_producer *rte_kafka_producer_new(const rte_config *cfg, const char *brokers, char *err,
                                           size_t errlen)
{
    rte_kafka_producer *p;
    rd_kafka_conf_t *conf = NULL;
    char why[512];
    int rc = -1;

    pthread_once(&metrics_once, metrics_init);
    p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "kafka producer: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->seq_mu, NULL);
    pthread_mutex_init(&p->topics_mu, NULL);
    p->seq_done = calloc(SEQ_RING, 1);
    if (!p->seq_done) {
        snprintf(err, errlen, "kafka producer: out of memory");
        pthread_mutex_destroy(&p->mu);
        pthread_mutex_destroy(&p->seq_mu);
        pthread_mutex_destroy(&p->topics_mu);
        free(p);
        return NULL;
    }
    rte_clock_cond_init(&p->cv);

    conf = base_conf(cfg, brokers, err, errlen);
    if (!conf || producer_conf(conf, cfg, err, errlen) < 0)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!p->rk) {
        snprintf(err, errlen, "kafka producer: %s", why);
        goto out;
    }
    conf = NULL; /* owned by p->rk now */
    if (pthread_create(&p->poller, NULL, poll_loop, p) != 0) {
        snprintf(err, errlen, "kafka producer: cannot start poll thread");
        goto out;
    }
    p->poller_started = 1;
    rc = 0;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rc < 0) {
        producer_destroy(p);
        return NULL;
    }
    return p;
}

/* rte_kafka_flush - any thread; returns what is still queued or unacknowledged */
int rte_kafka_flush(rte_kafka_producer *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

/* rte_kafka_producer_free - the owner, once no other thread uses p */
int rte_kafka_producer_free(rte_kafka_producer *p, int timeout_ms)
{
    int left;

    if (!p)
        return 0;
    left = rte_kafka_flush(p, timeout_ms);
    if (left > 0) {
        rte_log_warn("kafka producer: %d message(s) not acknowledged within %d ms; dropping them "
                     "(rte_kafka_produced_total{result=\"lost_at_shutdown\"})",
                     left, timeout_ms);
        /* purged messages still get a report, which frees abandoned waiters */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, 500);
    }
    producer_destroy(p);
    return left;
}

static int produce(rte_kafka_producer *p, const char *topic, const void *key, size_t keylen,
                   const void *payload, size_t len, const rte_kafka_header *headers, int nheaders,
                   void *w, char *err, size_t errlen)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_resp_err_t e;
    int i;

    if (nheaders > 0) {
        hdrs = rd_kafka_headers_new((size_t)nheaders);
        for (i = 0; i < nheaders; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].len);
    }
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                          RD_KAFKA_V_VALUE((void *)payload, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0; /* hdrs now belong to the message */
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(e));
    return -1;
}

/*
 * reserve n watermark numbers; the first, or 0 with err (counted as refused)
 * while SEQ_RING messages already await their reports
 */
static uint64_t seq_take(rte_kafka_producer *p, const char *topic, int n, char *err, size_t errlen)
{
    if (atomic_load(&p->seq_next) - atomic_load(&p->seq_wm_pub) >= SEQ_RING - (uint64_t)n) {
        snprintf(err, errlen, "produce to %s: %u messages await delivery reports; retry later",
                 topic, SEQ_RING - 1);
        count_n(m_produced, topic, "refused", n);
        return 0;
    }
    return atomic_fetch_add(&p->seq_next, (uint64_t)n) + 1;
}

/* rte_kafka_produce - any thread; seq_mu only if librdkafka refuses the message */
int rte_kafka_produce(rte_kafka_producer *p, const char *topic, const void *key, size_t keylen,
                      const void *payload, size_t len, const rte_kafka_header *headers,
                      int nheaders, char *err, size_t errlen)
{
    uint64_t seq = seq_take(p, topic, 1, err, errlen);

    if (seq == 0)
        return -1;
    if (produce(p, topic, key, keylen, payload, len, headers, nheaders,
                (void *)(uintptr_t)((seq << 1) | 1), err, errlen) != 0) {
        seq_reported(p, seq); /* never sent; the caller was told */
        count(m_produced, topic, "refused");
        return -1;
    }
    return 0;
}

/* rte_kafka_produced_seq - any thread; lock-free */
uint64_t rte_kafka_produced_seq(rte_kafka_producer *p)
{
    return atomic_load(&p->seq_next);
}

/* rte_kafka_delivered_seq - any thread; lock-free */
uint64_t rte_kafka_delivered_seq(rte_kafka_producer *p, uint64_t *failed)
{
    if (failed)
        *failed = atomic_load(&p->seq_failed);
    return atomic_load(&p->seq_wm_pub);
}

/* ---- batches ---------------------------------------------------------- */

/*
 * the producer's handle for topic, made once (rd_kafka_topic_new looks it up
 * under a lock); NULL with err if none can be had
 */
static rd_kafka_topic_t *topic_handle(rte_kafka_producer *p, const char *topic, char *err,
                                      size_t errlen)
{
    rd_kafka_topic_t *rkt = NULL;

    pthread_mutex_lock(&p->topics_mu);
    for (int i = 0; i < p->ntopics && rkt == NULL; i++)
        if (strcmp(rd_kafka_topic_name(p->topics[i]), topic) == 0)
            rkt = p->topics[i];
    if (rkt == NULL && p->ntopics >= MAX_TOPIC_HANDLES) {
        snprintf(err, errlen, "produce to %s: no topic handle: more than %d topics", topic,
                 MAX_TOPIC_HANDLES);
    } else if (rkt == NULL) {
        rkt = rd_kafka_topic_new(p->rk, topic, NULL);
        if (rkt != NULL)
            p->topics[p->ntopics++] = rkt;
        else
            snprintf(err, errlen, "produce to %s: no topic handle: %s", topic,
                     rd_kafka_err2str(rd_kafka_last_error()));
    }
    pthread_mutex_unlock(&p->topics_mu);
    return rkt;
}

/* rte_kafka_produce_batch - any thread */
int rte_kafka_produce_batch(rte_kafka_producer *p, const char *topic, const rte_kafka_out *msgs,
                            int n, char *err, size_t errlen)
{
    rd_kafka_message_t m[RTE_KAFKA_BATCH_MAX];
    rd_kafka_topic_t *rkt;
    uint64_t seq;
    int ok;

    if (n <= 0)
        return 0;
    if (n > RTE_KAFKA_BATCH_MAX) {
        ok = rte_kafka_produce_batch(p, topic, msgs, RTE_KAFKA_BATCH_MAX, err, errlen);
        if (ok < RTE_KAFKA_BATCH_MAX)
            return ok;
        return ok + rte_kafka_produce_batch(p, topic, msgs + ok, n - ok, err, errlen);
    }
    rkt = topic_handle(p, topic, err, errlen);
    if (rkt == NULL) {
        count_n(m_produced, topic, "refused", n);
        return 0;
    }
    seq = seq_take(p, topic, n, err, errlen);
    if (seq == 0)
        return 0;
    memset(m, 0, sizeof m[0] * (size_t)n);
    for (int i = 0; i < n; i++) {
        m[i].payload = (void *)msgs[i].payload;
        m[i].len = msgs[i].len;
        m[i].key = (void *)msgs[i].key;
        m[i].key_len = msgs[i].key_len;
        m[i]._private = (void *)(uintptr_t)(((seq + (uint64_t)i) << 1) | 1);
    }
    ok = rd_kafka_produce_batch(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, m, n);
    if (ok == n)
        return n;
    for (int i = 0, first = 1; i < n; i++) {
        if (m[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        if (first)
            snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(m[i].err));
        first = 0;
        seq_reported(p, seq + (uint64_t)i); /* never sent; the caller is told */
    }
    count_n(m_produced, topic, "refused", n - ok);
    return ok;
}

/*
 * A batching thread's messages, copied into one buffer until the thread
 * flushes (see kafka.h). Only the owning thread touches it.
 */
#define BATCH_BYTES (128 * 1024)
struct thread_batch {
    rte_kafka_producer *p;
    char topic[256];
    int n;
    size_t used;
    rte_kafka_out m[RTE_KAFKA_BATCH_MAX];
    char buf[BATCH_BYTES];
};

static __thread struct thread_batch *tl_batch;

/* rte_kafka_batch_begin - the calling thread */
void rte_kafka_batch_begin(void)
{
    if (tl_batch == NULL)
        tl_batch = calloc(1, sizeof *tl_batch); /* NULL: the thread simply does not batch */
}

/* at most one line a second for refused batches, whichever thread */
static void log_refused(int n, const char *why)
{
    static _Atomic int64_t last_ms;
    int64_t now = rte_clock_mono_ms(), then = atomic_load(&last_ms);

    if (now - then >= 1000 && atomic_compare_exchange_strong(&last_ms, &then, now))
        rte_log_warn("kafka: %d batched message(s) refused: %s (counted in "
                     "rte_kafka_produced_total{result=\"refused\"}; this line at most once a "
                     "second)",
                     n, why);
}

/* rte_kafka_batch_flush - the calling thread */
int rte_kafka_batch_flush(void)
{
    struct thread_batch *b = tl_batch;
    char err[256];
    int ok;

    if (b == NULL || b->n == 0)
        return 0;
    ok = rte_kafka_produce_batch(b->p, b->topic, b->m, b->n, err, sizeof err);
    if (ok < b->n)
        log_refused(b->n - ok, err);
    ok = b->n - ok;
    b->n = 0;
    b->used = 0;
    return ok;
}

/* rte_kafka_batch_end - the calling thread */
void rte_kafka_batch_end(void)
{
    rte_kafka_batch_flush();
    free(tl_batch);
    tl_batch = NULL;
}

/* rte_kafka_produce_batched - any thread; batches only on a batching thread */
int rte_kafka_produce_batched(rte_kafka_producer *p, const char *topic, const void *key,
                              size_t keylen, const void *payload, size_t len, char *err,
                              size_t errlen)
{
    struct thread_batch *b = tl_batch;
    size_t tlen = strlen(topic);

    if (b == NULL || keylen + len > BATCH_BYTES || tlen >= sizeof b->topic) {
        if (b != NULL)
            rte_kafka_batch_flush(); /* keep this thread's messages in order */
        return rte_kafka_produce(p, topic, key, keylen, payload, len, NULL, 0, err, errlen);
    }
    if (b->n > 0 && (b->p != p || strcmp(b->topic, topic) != 0 || b->n == RTE_KAFKA_BATCH_MAX ||
                     b->used + keylen + len > BATCH_BYTES))
        rte_kafka_batch_flush();
    if (b->n == 0) {
        b->p = p;
        memcpy(b->topic, topic, tlen + 1);
    }
    rte_kafka_out *m = &b->m[b->n++];
    m->key = keylen > 0 ? memcpy(b->buf + b->used, key, keylen) : NULL;
    b->used += keylen;
    m->key_len = keylen;
    m->payload = len > 0 ? memcpy(b->buf + b->used, payload, len) : NULL;
    b->used += len;
    m->len = len;
    return 0;
}

static struct timespec deadline_after(int ms)
{
    return rte_clock_mono_timespec(rte_clock_mono_ms() + ms);
}

/* rte_kafka_produce_sync - any thread; blocks on the producer's mutex/condvar */
int rte_kafka_produce_sync(rte_kafka_producer *p, const char *topic, const void *key, size_t keylen,
                           const void *payload, size_t len, const rte_kafka_header *headers,
                           int nheaders, int timeout_ms, char *err, size_t errlen)
{
    struct waiter *w = calloc(1, sizeof *w);
    struct timespec deadline = deadline_after(timeout_ms);
    int rc = -1;

    if (!w) {
        snprintf(err, errlen, "produce to %s: out of memory", topic);
        return -1;
    }
    if (produce(p, topic, key, keylen, payload, len, headers, nheaders, w, err, errlen) < 0) {
        free(w);
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    while (!w->done && pthread_cond_timedwait(&p->cv, &p->mu, &deadline) != ETIMEDOUT)
        ;
    if (!w->done)
        snprintf(err, errlen, "produce to %s: not acknowledged within %d ms", topic, timeout_ms);
    else if (w->err)
        snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(w->err));
    else
        rc = 0;
    if (w->done)
        free(w);
    else
        w->abandoned = 1; /* the delivery report frees it */
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* rte_kafka_produce_async - any thread; fn later on the thread serving delivery reports */
int rte_kafka_produce_async(rte_kafka_producer *p, const char *topic, const void *key,
                            size_t keylen, const void *payload, size_t len,
                            const rte_kafka_header *headers, int nheaders,
                            rte_kafka_delivered_fn fn, void *arg, char *err, size_t errlen)
{
    struct waiter *w = calloc(1, sizeof *w);

    if (!w) {
        snprintf(err, errlen, "produce to %s: out of memory", topic);
        return -1;
    }
    w->fn = fn;
    w->arg = arg;
    if (produce(p, topic, key, keylen, payload, len, headers, nheaders, w, err, errlen) < 0) {
        count(m_produced, topic, "refused");
        free(w);
        return -1;
    }
    return 0;
}

/* rte_kafka_producer_connected - any thread; may block up to 1 s */
int rte_kafka_producer_connected(rte_kafka_producer *p)
{
    return brokers_up(p->rk);
}

/* --- consumer ------------------------------------------------------------ */

/* ms left until c must be closed (rte_kafka_consumer_stop_within); 0 when past */
static int64_t close_left(rte_kafka_consumer *c)
{
    int64_t by = atomic_load(&c->close_by);
    int64_t left;

    if (by == 0) /* freed without a stop */
        atomic_compare_exchange_strong(&c->close_by, &by, rte_clock_mono_ms() + CLOSE_DEFAULT_MS);
    left = atomic_load(&c->close_by) - rte_clock_mono_ms();
    return left > 0 ? left : 0;
}

/* how long a commit at a revoke may wait: the close's budget once stopping */
static int commit_timeout(rte_kafka_consumer *c)
{
    int64_t left;

    if (!atomic_load(&c->stop))
        return COMMIT_TIMEOUT_MS;
    left = close_left(c);
    return (int)(left < COMMIT_TIMEOUT_MS ? left : COMMIT_TIMEOUT_MS);
}

/*
 * commit what is stored, waiting at most timeout_ms for the answer: rd_kafka_commit would wait
 * for ever for a coordinator that is gone (an unanswered commit is redelivered, not lost)
 */
static void commit_stored(rd_kafka_t *rk, const char *when, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(rk, NULL, q, NULL, NULL);

    if (!e) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms > 0 ? timeout_ms : 0);
        e = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        rte_log_warn("kafka consumer: commit on %s failed: %s; messages finished since the last "
                     "commit will be redelivered",
                     when, rd_kafka_err2str(e));
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
    char text[1024];
    size_t n = 0;
    int i;

    if (parts->cnt == 0)
        return; /* cooperative rounds that move nothing */
    text[0] = '\0';
    for (i = 0; i < parts->cnt && n < sizeof text; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s[%d]", i ? " " : "",
                              parts->elems[i].topic, (int)parts->elems[i].partition);
    rte_log_info("kafka consumer: %s %d partition(s): %s", what, parts->cnt, text);
}

/* move this consumer's share of a per-topic gauge from *mine to v */
static void health_set(rte_metric *m, const char *topic, double *mine, double v)
{
    if (v == *mine)
        return;
    rte_series_add(rte_metric_labels(m, (const char *const[]){topic}), v - *mine);
    *mine = v;
}

/* recount the partitions held per topic after a rebalance; consumer thread */
static void health_assignment(rte_kafka_consumer *c, int clear)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    int i, k;

    if (!clear && rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (k = 0; k < c->nht; k++) {
        int n = 0;
        for (i = 0; a && i < a->cnt; i++)
            n += strcmp(a->elems[i].topic, c->ht[k].name) == 0;
        double parts = c->ht[k].parts;
        health_set(m_assigned, c->ht[k].name, &parts, n);
        c->ht[k].parts = n;
        if (n == 0)
            health_set(m_lag, c->ht[k].name, &c->ht[k].lag, 0);
    }
    if (a)
        rd_kafka_topic_partition_list_destroy(a);
}

/* recompute the lag of the held partitions at most every LAG_REFRESH_MS; consumer thread */
static void health_lag(rte_kafka_consumer *c)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    double lag[HEALTH_TOPICS] = {0};
    int64_t lo, hi, now = rte_clock_mono_ms();
    int i, k;

    if (now < c->lag_at || c->nht == 0)
        return;
    c->lag_at = now + LAG_REFRESH_MS;
    if (rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_position(c->rk, a);
    for (i = 0; i < a->cnt; i++) {
        rd_kafka_topic_partition_t *p = &a->elems[i];
        /* cached by the fetcher: no request to the broker */
        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) || hi < 0)
            continue;
        int64_t from = p->offset >= 0 ? p->offset : lo;
        for (k = 0; k < c->nht; k++)
            if (strcmp(p->topic, c->ht[k].name) == 0 && hi > from)
                lag[k] += (double)(hi - from);
    }
    rd_kafka_topic_partition_list_destroy(a);
    for (k = 0; k < c->nht; k++) {
        struct held_topic *t = &c->ht[k];
        health_set(m_lag, t->name, &t->lag, lag[k]);
        /* behind = lag with no offset stored since the last refresh; idle (lag 0) is healthy */
        if (lag[k] <= 0)
            atomic_store(&t->behind_since, 0);
        else if (t->stores != t->stores_seen || atomic_load(&t->behind_since) == 0)
            atomic_store(&t->behind_since, now);
        t->stores_seen = t->stores;
    }
}

/* an offset of topic was stored: the consumer made progress there; consumer thread */
static void progressed(rte_kafka_consumer *c, const char *topic)
{
    for (int k = 0; k < c->nht; k++)
        if (strcmp(c->ht[k].name, topic) == 0)
            c->ht[k].stores++;
}

/* the consumer is out of its group from now, unless it already was */
static void left_group(rte_kafka_consumer *c)
{
    int64_t none = 0;

    atomic_compare_exchange_strong(&c->out_since, &none, rte_clock_mono_ms());
}

/* consumer thread (inside consumer_poll or consumer_close) */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;

    rte_kafka_consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* every join ends here, with an empty list too: the member is in its group */
        atomic_store(&c->assigned, 1);
        atomic_store(&c->out_since, 0);
        log_partitions("assigned", parts);
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (c->paused) /* mid-backoff: new partitions wait for the message in hand too */
            rd_kafka_pause_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        c->revokes++;
        left_group(c); /* rejoining: back in at the next assignment */
        log_partitions(rd_kafka_assignment_lost(rk) ? "lost" : "revoked", parts);
        if (!rd_kafka_assignment_lost(rk))
            commit_stored(rk, "revoke", commit_timeout(c));
        if (cooperative)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    } else {
        rte_log_error("kafka consumer: rebalance failed: %s; dropping the assignment and rejoining",
                      rd_kafka_err2str(err));
        left_group(c);
        rd_kafka_assign(rk, NULL);
    }
    if (e) {
        rte_log_error("kafka consumer: applying the rebalance failed: %s",
                      rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    health_assignment(c, 0);
    c->lag_at = 0; /* the lag of new partitions at the next poll */
}

static int check_opts(const rte_kafka_consumer_opts *o, char *err, size_t errlen)
{
    const char *missing = NULL;

    if (!o->group_id || !*o->group_id)
        missing = "group_id";
    else if (!o->topics || !o->topics[0])
        missing = "topics";
    else if (!o->handler == !o->batch_handler)
        missing = "handler (exactly one of handler and batch_handler)";
    else if (!o->dlq)
        missing = "dlq (a producer for <topic>.dlq copies)";
    if (!missing)
        return 0;
    snprintf(err, errlen, "kafka consumer: opts.%s is required", missing);
    return -1;
}

static int consumer_conf(rd_kafka_conf_t *conf, const rte_config *cfg, const char *group, char *err,
                         size_t errlen)
{
    static const char *const fixed[][2] = {
        {"enable.auto.commit", "true"},    {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"}, {"partition.assignment.strategy", "cooperative-sticky"},
        {"session.timeout.ms", "10000"},   {"max.poll.interval.ms", "60000"},
    };
    size_t i;

    if (conf_set(conf, "group.id", group, err, errlen) < 0)
        return -1;
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (conf_set(conf, fixed[i][0], fixed[i][1], err, errlen) < 0)
            return -1;
    return apply_props(cfg, "kafka.consumer.", conf, err, errlen);
}

static int subscribe(rd_kafka_t *rk, const char *const *topics, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    rd_kafka_resp_err_t e;

    for (; *topics; topics++)
        rd_kafka_topic_partition_list_add(list, *topics, RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    snprintf(err, errlen, "kafka consumer: subscribe: %s", rd_kafka_err2str(e));
    return -1;
}

static void set_retry_opts(rte_kafka_consumer *c, const rte_kafka_consumer_opts *o)
{
    c->max_retries = o->max_retries > 0   ? o->max_retries
                     : o->max_retries < 0 ? 0
                                          : RTE_KAFKA_MAX_RETRIES;
    c->backoff_ms = o->retry_backoff_ms > 0 ? o->retry_backoff_ms : 200;
    c->backoff_max_ms = o->retry_backoff_max_ms > 0 ? o->retry_backoff_max_ms : 10000;
    if (c->backoff_max_ms < c->backoff_ms)
        c->backoff_max_ms = c->backoff_ms;
}

/*
 * rte_kafka_consumer_new - any thread; max_retries 0 means RTE_KAFKA_MAX_RETRIES,
 * negative means none; brokers NULL means rte_kafka_brokers(cfg)
 */
rte_kafka_consumer *rte_kafka_consumer_new(const rte_config *cfg, const char *brokers,
                                           const rte_kafka_consumer_opts *opts, char *err,
                                           size_t errlen)
{
    rte_kafka_consumer *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    char why[512];
    int rc = -1;

    pthread_once(&metrics_once, metrics_init);
    if (check_opts(opts, err, errlen) < 0)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "kafka consumer: out of memory");
        return NULL;
    }
    c->handler = opts->handler;
    c->batch_handler = opts->batch_handler;
    c->arg = opts->arg;
    if (c->batch_handler) {
        c->batch_max = opts->batch_max > 0 ? opts->batch_max : 500;
        c->bm = calloc((size_t)c->batch_max, sizeof *c->bm);
        c->bmsg = calloc((size_t)c->batch_max, sizeof *c->bmsg);
        c->bv = calloc((size_t)c->batch_max, sizeof *c->bv);
        if (!c->bm || !c->bmsg || !c->bv) {
            snprintf(err, errlen, "kafka consumer: out of memory for batches of %d", c->batch_max);
            goto out;
        }
    }
    c->dlq = opts->dlq;
    set_retry_opts(c, opts);
    conf = base_conf(cfg, brokers, err, errlen);
    if (!conf || consumer_conf(conf, cfg, opts->group_id, err, errlen) < 0)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!c->rk) {
        snprintf(err, errlen, "kafka consumer: %s", why);
        goto out;
    }
    conf = NULL; /* owned by c->rk now */
    rd_kafka_poll_set_consumer(c->rk);
    atomic_store(&c->out_since, rte_clock_mono_ms()); /* not in the group until assigned */
    for (c->nht = 0; c->nht < HEALTH_TOPICS && opts->topics[c->nht]; c->nht++) {
        snprintf(c->ht[c->nht].name, sizeof c->ht[0].name, "%s", opts->topics[c->nht]);
        /* the series exists (at 0) from the start: "no partitions" is visible */
        rte_series_add(rte_metric_labels(m_assigned, (const char *const[]){opts->topics[c->nht]}),
                       0);
        rte_series_add(rte_metric_labels(m_lag, (const char *const[]){opts->topics[c->nht]}), 0);
        rte_series_add(rte_metric_labels(m_stuck, (const char *const[]){opts->topics[c->nht]}), 0);
    }
    rc = subscribe(c->rk, opts->topics, err, errlen);
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rc < 0) {
        if (c->rk)
            rd_kafka_destroy(c->rk);
        free(c->bm);
        free(c->bmsg);
        free(c->bv);
        free(c);
        return NULL;
    }
    return c;
}

/* rte_kafka_check_config - any thread; builds no client, so connects nowhere */
int rte_kafka_check_config(const rte_config *cfg, const char *brokers, char *err, size_t errlen)
{
    rd_kafka_conf_t *p = base_conf(cfg, brokers, err, errlen);
    rd_kafka_conf_t *c = p ? base_conf(cfg, brokers, err, errlen) : NULL;
    int rc = -1;

    if (p && c && producer_conf(p, cfg, err, errlen) == 0 &&
        consumer_conf(c, cfg, "check-config", err, errlen) == 0)
        rc = 0;
    if (p)
        rd_kafka_conf_destroy(p);
    if (c)
        rd_kafka_conf_destroy(c);
    return rc;
}

/* pause (1) or resume (0) every assigned partition */
static void pause_assignment(rte_kafka_consumer *c, int pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &l);

    if (!e && l->cnt > 0)
        e = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (e)
        rte_log_warn("kafka consumer: cannot %s the assignment: %s", pause ? "pause" : "resume",
                     rd_kafka_err2str(e));
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
}

/* a backoff on a message of topic begins: pause the assignment, count the stall */
static void stall(rte_kafka_consumer *c, const char *topic)
{
    pause_assignment(c, 1);
    c->paused = 1;
    atomic_store(&c->paused_pub, 1);
    c->stalled = rte_metric_labels(m_stalled, (const char *const[]){topic});
    rte_series_inc(c->stalled);
}

/* the message in hand is finished: resume (unless stopping: the consumer closes) */
static void unstall(rte_kafka_consumer *c)
{
    if (!atomic_load(&c->stop))
        pause_assignment(c, 0);
    c->paused = 0;
    atomic_store(&c->paused_pub, 0);
    rte_series_dec(c->stalled);
    c->stalled = NULL;
}

/* 1 if topic/partition is in the current assignment */
static int owns(rte_kafka_consumer *c, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    int found = 0;

    if (!rd_kafka_assignment(c->rk, &l))
        found = rd_kafka_topic_partition_list_find(l, topic, partition) != NULL;
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return found;
}

/* keep m, polled during a backoff, for after the message in hand */
static void hold(rte_kafka_consumer *c, rd_kafka_message_t *m)
{
    if (c->nheld == c->held_cap) {
        int cap = c->held_cap ? c->held_cap * 2 : 16;
        rd_kafka_message_t **h = realloc(c->held, (size_t)cap * sizeof *h);
        if (!h) /* not stored: redelivered after the restart */
            rte_panic("kafka consumer: out of memory holding a message");
        c->held = h;
        c->held_cap = cap;
    }
    c->held[c->nheld++] = m;
}

/* after a revocation: let go of held messages of partitions no longer ours */
static void drop_unowned(rte_kafka_consumer *c)
{
    int i, n = c->held_head;

    for (i = c->held_head; i < c->nheld; i++) {
        rd_kafka_message_t *m = c->held[i];
        if (owns(c, rd_kafka_topic_name(m->rkt), m->partition))
            c->held[n++] = m;
        else
            rd_kafka_message_destroy(m); /* not stored: its new owner gets it */
    }
    c->nheld = n;
}

static void consumer_error(rte_kafka_consumer *c, const rd_kafka_message_t *m);

/*
 * wait ms before retrying msg (the message in hand), polling all along with
 * the assignment paused: 0, STOPPED when stop was requested, LEFT when msg's
 * partition was revoked meanwhile (left for its new owner)
 */
static int backoff(rte_kafka_consumer *c, const rte_kafka_msg *msg, int ms)
{
    int64_t end = rte_clock_mono_ms() + ms;
    unsigned revokes = c->revokes;
    int64_t left;

    if (!c->paused)
        stall(c, msg->topic);
    while (!atomic_load(&c->stop)) {
        health_lag(c);
        left = end - rte_clock_mono_ms();
        if (left <= 0)
            return 0;
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(c->rk, left < SLICE_MS ? (int)left : SLICE_MS);
        if (m && m->err) {
            consumer_error(c, m);
            rd_kafka_message_destroy(m);
        } else if (m) {
            hold(c, m);
        }
        if (c->revokes != revokes) {
            revokes = c->revokes;
            drop_unowned(c);
            if (!owns(c, msg->topic, msg->partition))
                return LEFT;
        }
    }
    return STOPPED;
}

static int call_handler(rte_kafka_consumer *c, const rte_kafka_msg *msg, char *reason,
                        size_t reasonlen)
{
    const char *const topic[] = {msg->topic};
    int64_t t0 = rte_clock_mono_ms();
    int rc;

    reason[0] = '\0';
    rc = c->handler(msg, c->arg, reason, reasonlen);
    rte_histogram_observe(m_handler, topic, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    if (rc != RTE_KAFKA_OK && rc != RTE_KAFKA_RETRY && rc != RTE_KAFKA_POISON)
        rte_panic("kafka consumer: handler for %s returned %d", msg->topic, rc);
    if (rc != RTE_KAFKA_OK && !reason[0])
        snprintf(reason, reasonlen, "handler gave no reason");
    return rc;
}

/* put prefix before the text in buf (size len), cutting the text's end if needed */
static void prepend(char *buf, size_t len, const char *prefix)
{
    size_t p = strlen(prefix);
    size_t n = strlen(buf);

    if (p >= len)
        p = len - 1;
    if (p + n >= len)
        n = len - 1 - p;
    memmove(buf + p, buf, n);
    memcpy(buf, prefix, p);
    buf[p + n] = '\0';
}

/* OK or POISON (retries exhausted become POISON), or STOPPED / LEFT mid-backoff */
static int call_with_retries(rte_kafka_consumer *c, const rte_kafka_msg *msg, char *reason,
                             size_t reasonlen)
{
    int wait = c->backoff_ms;
    char prefix[64];
    int attempt;
    int rc;

    for (attempt = 0;; attempt++) {
        rc = call_handler(c, msg, reason, reasonlen);
        if (rc != RTE_KAFKA_RETRY)
            return rc;
        if (attempt >= c->max_retries) {
            snprintf(prefix, sizeof prefix, "gave up after %d retries: ", attempt);
            prepend(reason, reasonlen, prefix);
            return RTE_KAFKA_POISON;
        }
        count(m_consumed, msg->topic, "retry");
        rte_log_warn("kafka consumer: %s [%d] @%lld: %s; retry %d/%d in %d ms", msg->topic,
                     (int)msg->partition, (long long)msg->offset, reason, attempt + 1,
                     c->max_retries, wait);
        rc = backoff(c, msg, wait);
        if (rc != 0)
            return rc;
        wait = next_backoff(wait, c->backoff_max_ms);
    }
}

/* copy msg to <topic>.dlq until acknowledged: 0, or STOPPED / LEFT first */
static int dead_letter(rte_kafka_consumer *c, const rte_kafka_msg *msg, const char *reason)
{
    char dlq[512], part[16], off[24], ts[24], err[512];
    rte_kafka_header h[5] = {
        {"dlq-reason", reason, strlen(reason)},
        {"dlq-topic", msg->topic, strlen(msg->topic)},
        {"dlq-partition", part, 0},
        {"dlq-offset", off, 0},
        {"dlq-timestamp", ts, 0},
    };
    int wait = c->backoff_ms, rc;

    snprintf(dlq, sizeof dlq, "%s%s", msg->topic, DLQ_SUFFIX);
    h[2].len = (size_t)snprintf(part, sizeof part, "%d", (int)msg->partition);
    h[3].len = (size_t)snprintf(off, sizeof off, "%lld", (long long)msg->offset);
    h[4].len = (size_t)snprintf(ts, sizeof ts, "%lld", (long long)msg->timestamp_ms);
    for (;;) {
        if (rte_kafka_produce_sync(c->dlq, dlq, msg->key, msg->key_len, msg->payload, msg->len, h,
                                   5, DLQ_TIMEOUT_MS, err, sizeof err) == 0) {
            rte_log_warn("kafka consumer: %s [%d] @%lld sent to %s: %s", msg->topic,
                         (int)msg->partition, (long long)msg->offset, dlq, reason);
            return 0;
        }
        rte_log_error("kafka consumer: %s [%d] @%lld: DLQ copy failed: %s; offset not stored, "
                      "retrying in %d ms",
                      msg->topic, (int)msg->partition, (long long)msg->offset, err, wait);
        rc = backoff(c, msg, wait);
        if (rc != 0)
            return rc;
        wait = next_backoff(wait, c->backoff_max_ms);
    }
}

static void store_offset(rte_kafka_consumer *c, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_resp_err_t e;

    rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = m->offset + 1;
    e = rd_kafka_offsets_store(c->rk, l);
    if (!e)
        e = l->elems[0].err;
    if (!e)
        progressed(c, topic);
    if (e)
        rte_log_warn("kafka consumer: cannot store offset of %s [%d] @%lld: %s; it will be "
                     "redelivered to the partition's new owner",
                     topic, (int)m->partition, (long long)m->offset, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

static void handle(rte_kafka_consumer *c, rd_kafka_message_t *m)
{
    rte_kafka_msg msg = {
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .key_len = m->key_len,
        .payload = m->payload,
        .len = m->len,
        .timestamp_ms = rd_kafka_message_timestamp(m, NULL),
        .rk_message = m,
    };
    char reason[512];
    int rc = call_with_retries(c, &msg, reason, sizeof reason);

    if (rc == RTE_KAFKA_POISON) {
        int dl = dead_letter(c, &msg, reason);
        if (dl != 0)
            rc = dl;
    }
    /* STOPPED or LEFT: not stored, so redelivered after the restart or to the new owner */
    if (rc == LEFT)
        rte_log_warn("kafka consumer: %s [%d] @%lld: partition revoked while the message was "
                     "being retried; left to its new owner",
                     msg.topic, (int)msg.partition, (long long)msg.offset);
    if (rc == RTE_KAFKA_OK || rc == RTE_KAFKA_POISON) {
        store_offset(c, m);
        count(m_consumed, msg.topic, rc == RTE_KAFKA_OK ? "ok" : "dlq");
    }
    if (c->paused)
        unstall(c);
}

static void consumer_error(rte_kafka_consumer *c, const rd_kafka_message_t *m)
{
    char why[512];

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(c->rk, why, sizeof why);
        rte_log_error("kafka consumer: fatal error: %s; stopping", why);
        atomic_store(&c->stop, 1);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR_INVALID_SESSION_TIMEOUT) {
        /* Apache Kafka refuses a JoinGroup whose session timeout lies outside
         * group.min/max.session.timeout.ms (6 s..30 min by default); the mock
         * cluster accepts any value. Retrying cannot help: say what to fix. */
        rte_log_error("kafka consumer: the broker refuses kafka.consumer.session.timeout.ms "
                      "(%s): it must lie within the broker's group.min.session.timeout.ms and "
                      "group.max.session.timeout.ms; no partitions until it does",
                      rd_kafka_message_errstr(m));
        return;
    }
    rte_log_warn("kafka consumer: %s%s%s: %s; still polling",
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "", m->rkt ? ": " : "",
                 rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
}

/*
 * librdkafka 2.0.2 aborts in rd_kafka_sticky_assignor_state_destroy when a
 * cooperative-sticky consumer is destroyed before its first assignment
 * (librdkafka issue #4312, fixed in 2.3.0). A service stopped while still
 * joining its group would crash instead of exiting 0, so we let the join
 * finish first, discarding (not storing) anything fetched meanwhile: those
 * messages are redelivered to whoever owns the partition next.
 */
static int wait_first_assignment(rte_kafka_consumer *c, int timeout_ms)
{
    int64_t until = rte_clock_mono_ms() + timeout_ms;
    while (!atomic_load(&c->assigned) && rte_clock_mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, POLL_MS);
        if (m)
            rd_kafka_message_destroy(m);
    }
    return atomic_load(&c->assigned) ? 0 : -1;
}

/*
 * Leave the group by c->close_by: commit, then rd_kafka_consumer_close_queue served here until
 * closed. rd_kafka_consumer_close itself waits without a bound for a coordinator that is gone
 * (a member that lost its session while the broker was down waits for a rejoin that never
 * comes), and so would rd_kafka_destroy after it: a consumer not closed in time is left as it
 * is (leaked) and the process exits around it. Its partitions move after session.timeout.ms and
 * whatever it had not committed is redelivered to their next owner: nothing is lost.
 */
static void close_consumer(rte_kafka_consumer *c)
{
    rd_kafka_queue_t *q;
    rd_kafka_error_t *e;
    int64_t left;

    if (atomic_exchange(&c->closed, 1))
        return;
    left = close_left(c);
    if (wait_first_assignment(c, (int)(left < FIRST_ASSIGN_MS ? left : FIRST_ASSIGN_MS)) != 0) {
        rte_log_warn("kafka consumer: no group assignment arrived before stop; leaving the group "
                     "by session timeout (librdkafka 2.0.2 cannot close a consumer that never "
                     "joined)");
        c->leaked = 1;
        return;
    }
    commit_stored(c->rk, "stop", (int)close_left(c));
    q = rd_kafka_queue_new(c->rk);
    e = rd_kafka_consumer_close_queue(c->rk, q);
    while (!e && !rd_kafka_consumer_closed(c->rk) && (left = close_left(c)) > 0)
        rd_kafka_queue_poll_callback(q, (int)(left < POLL_MS ? left : POLL_MS)); /* rebalance_cb */
    if (e || !rd_kafka_consumer_closed(c->rk)) {
        rte_log_warn("kafka consumer: could not leave the group before the shutdown deadline "
                     "(%s); leaving it by session timeout: its partitions move to other members "
                     "after kafka.consumer.session.timeout.ms and what it had not committed is "
                     "redelivered",
                     e ? rd_kafka_error_string(e) : "the group coordinator does not answer");
        c->leaked = 1;
    }
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_queue_destroy(q);
}

/* the oldest message held during a backoff, else the next one polled (waiting up to ms) */
static rd_kafka_message_t *next_message(rte_kafka_consumer *c, int ms)
{
    health_lag(c);
    if (c->held_head < c->nheld)
        return c->held[c->held_head++];
    c->held_head = c->nheld = 0;
    return rd_kafka_consumer_poll(c->rk, ms);
}

/* --- batch mode ---------------------------------------------------------- */

/*
 * up to batch_max messages into c->bm: the first waits up to POLL_MS, the
 * rest only take what is already fetched (held messages first), so a batch
 * is never delayed to fill up
 */
static int collect(rte_kafka_consumer *c)
{
    int n = 0;
    rd_kafka_message_t *m = next_message(c, POLL_MS);

    while (m) {
        if (m->err) {
            consumer_error(c, m);
            rd_kafka_message_destroy(m);
        } else {
            c->bm[n++] = m;
        }
        if (n == c->batch_max || atomic_load(&c->stop))
            break;
        m = next_message(c, 0);
    }
    return n;
}

static void fill_msg(rte_kafka_msg *msg, rd_kafka_message_t *m)
{
    *msg = (rte_kafka_msg){
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .key_len = m->key_len,
        .payload = m->payload,
        .len = m->len,
        .timestamp_ms = rd_kafka_message_timestamp(m, NULL),
        .rk_message = m,
    };
}

/* after a backoff: let go of the batch's messages whose partitions were revoked; the new count */
static int keep_owned(rte_kafka_consumer *c, int n)
{
    int k = 0;

    for (int i = 0; i < n; i++) {
        if (owns(c, c->bmsg[i].topic, c->bmsg[i].partition)) {
            c->bm[k] = c->bm[i];
            fill_msg(&c->bmsg[k], c->bm[k]);
            k++;
        } else {
            rd_kafka_message_destroy(c->bm[i]); /* not stored: its new owner gets it */
        }
    }
    if (k < n)
        rte_log_warn("kafka consumer: %d message(s) of a batch being retried were left to the "
                     "new owners of their partitions",
                     n - k);
    return k;
}

/* one handler call with verdicts preset to OK; panics on a bad return or verdict */
static int call_batch(rte_kafka_consumer *c, int n, char *reason, size_t reasonlen)
{
    const char *const topic[] = {c->bmsg[0].topic};
    int64_t t0 = rte_clock_mono_ms();
    int rc;

    for (int i = 0; i < n; i++) {
        c->bv[i].rc = RTE_KAFKA_OK;
        c->bv[i].reason[0] = '\0';
    }
    reason[0] = '\0';
    rc = c->batch_handler(c->bmsg, c->bv, n, c->arg, reason, reasonlen);
    rte_histogram_observe(m_handler, topic, (double)(rte_clock_mono_ms() - t0) / 1000.0);
    if (rc != RTE_KAFKA_OK && rc != RTE_KAFKA_RETRY)
        rte_panic("kafka consumer: batch handler for %s returned %d", c->bmsg[0].topic, rc);
    for (int i = 0; rc == RTE_KAFKA_OK && i < n; i++) {
        if (c->bv[i].rc != RTE_KAFKA_OK && c->bv[i].rc != RTE_KAFKA_POISON)
            rte_panic("kafka consumer: batch handler for %s gave verdict %d", c->bmsg[0].topic,
                      c->bv[i].rc);
        if (c->bv[i].rc == RTE_KAFKA_POISON && !c->bv[i].reason[0])
            snprintf(c->bv[i].reason, sizeof c->bv[i].reason, "handler gave no reason");
    }
    if (rc == RTE_KAFKA_RETRY && !reason[0])
        snprintf(reason, reasonlen, "handler gave no reason");
    return rc;
}

/*
 * the handler until it returns OK (or retries run out: all POISON); *np is
 * the count still held (revoked ones are let go). 0, or STOPPED.
 */
static int run_batch(rte_kafka_consumer *c, int *np)
{
    int n = *np;
    char reason[512], prefix[64];
    int wait = c->backoff_ms;

    for (int attempt = 0;; attempt++) {
        if (call_batch(c, n, reason, sizeof reason) == RTE_KAFKA_OK)
            return 0;
        if (attempt >= c->max_retries) {
            snprintf(prefix, sizeof prefix, "gave up after %d retries: ", attempt);
            prepend(reason, sizeof reason, prefix);
            for (int i = 0; i < n; i++) {
                c->bv[i].rc = RTE_KAFKA_POISON;
                snprintf(c->bv[i].reason, sizeof c->bv[i].reason, "%.*s",
                         (int)sizeof c->bv[i].reason - 1, reason); /* cut: a DLQ header */
            }
            return 0;
        }
        count_n(m_consumed, c->bmsg[0].topic, "retry", n);
        rte_log_warn("kafka consumer: batch of %d from %s: %s; retry %d/%d in %d ms", n,
                     c->bmsg[0].topic, reason, attempt + 1, c->max_retries, wait);
        int b = backoff(c, &c->bmsg[0], wait);
        if (b == STOPPED)
            return STOPPED;
        n = *np = keep_owned(c, n);
        if (n == 0)
            return 0;
        wait = next_backoff(wait, c->backoff_max_ms);
    }
}

/* 1 when topic/partition is in the list of partitions whose offsets must not move */
static int blocked(const rd_kafka_topic_partition_list_t *b, const char *topic, int32_t partition)
{
    return rd_kafka_topic_partition_list_find(b, topic, partition) != NULL;
}

/* dead-letter the poisoned, then store each partition's offset after its last finished message */
static void finish_batch(rte_kafka_consumer *c, int n)
{
    rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_t *stop = rd_kafka_topic_partition_list_new(1);
    int ok = 0, dlq = 0;

    for (int i = 0; i < n; i++) {
        const rte_kafka_msg *m = &c->bmsg[i];
        if (blocked(stop, m->topic, m->partition))
            continue;
        if (c->bv[i].rc == RTE_KAFKA_POISON && dead_letter(c, m, c->bv[i].reason) != 0) {
            /* not copied (stopping, or revoked): nothing from here on in this partition moves */
            rd_kafka_topic_partition_list_add(stop, m->topic, m->partition);
            continue;
        }
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(store, m->topic, m->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(store, m->topic, m->partition);
        p->offset = m->offset + 1;
        if (c->bv[i].rc == RTE_KAFKA_POISON)
            dlq++;
        else
            ok++;
    }
    if (store->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, store);
        for (int i = 0; !e && i < store->cnt; i++)
            e = store->elems[i].err;
        for (int i = 0; !e && i < store->cnt; i++)
            progressed(c, store->elems[i].topic);
        if (e)
            rte_log_warn("kafka consumer: cannot store the offsets of a batch of %d: %s; they "
                         "will be redelivered to the partitions' new owners",
                         n, rd_kafka_err2str(e));
    }
    count_n(m_consumed, c->bmsg[0].topic, "ok", ok);
    count_n(m_consumed, c->bmsg[0].topic, "dlq", dlq);
    rd_kafka_topic_partition_list_destroy(store);
    rd_kafka_topic_partition_list_destroy(stop);
}

/* one collected batch, start to end; destroys its messages */
static void handle_batch(rte_kafka_consumer *c, int n)
{
    if (n == 0)
        return;
    for (int i = 0; i < n; i++)
        fill_msg(&c->bmsg[i], c->bm[i]);
    /* STOPPED: nothing stored, all redelivered after the restart */
    if (run_batch(c, &n) == 0 && n > 0)
        finish_batch(c, n);
    for (int i = 0; i < n; i++)
        rd_kafka_message_destroy(c->bm[i]);
    if (c->paused)
        unstall(c);
}

/* let go of held messages (not stored: redelivered) */
static void drop_held(rte_kafka_consumer *c)
{
    while (c->held_head < c->nheld)
        rd_kafka_message_destroy(c->held[c->held_head++]);
    c->held_head = c->nheld = 0;
}

/* rte_kafka_consumer_run - the owning thread only */
void rte_kafka_consumer_run(rte_kafka_consumer *c)
{
    rd_kafka_message_t *m;

    while (!atomic_load(&c->stop)) {
        if (c->batch_handler) {
            handle_batch(c, collect(c));
            continue;
        }
        m = next_message(c, POLL_MS);
        if (!m)
            continue;
        if (m->err)
            consumer_error(c, m);
        else
            handle(c, m);
        rd_kafka_message_destroy(m);
    }
    drop_held(c);
    close_consumer(c);
}

/* rte_kafka_consumer_stop - any thread; lock-free atomic stores, so signal handlers too */
void rte_kafka_consumer_stop(rte_kafka_consumer *c)
{
    rte_kafka_consumer_stop_within(c, CLOSE_DEFAULT_MS);
}

/* rte_kafka_consumer_stop_within - any thread; lock-free atomic stores */
void rte_kafka_consumer_stop_within(rte_kafka_consumer *c, int close_ms)
{
    atomic_store(&c->close_by, rte_clock_mono_ms() + (close_ms > 0 ? close_ms : 0));
    atomic_store(&c->stop, 1);
}

/* rte_kafka_consumer_free - the owning thread, after run returned (or instead of run) */
void rte_kafka_consumer_free(rte_kafka_consumer *c)
{
    if (!c)
        return;
    drop_held(c);
    free(c->held);
    c->held = NULL;
    c->held_cap = 0;
    close_consumer(c);
    health_assignment(c, 1); /* this consumer's share of the gauges leaves with it */
    free(c->bm);
    free(c->bmsg);
    free(c->bv);
    c->bm = NULL;
    c->bmsg = NULL;
    c->bv = NULL;
    if (c->leaked)
        return; /* kept reachable on purpose: destroying it would abort */
    rd_kafka_destroy(c->rk);
    free(c);
}

/*
 * seconds c has been stuck on topic k: out of its group, or behind with nothing stored; 0 while
 * it retries with its partitions paused (a dependency outage, rte_kafka_consumer_stalled)
 */
static double stuck_seconds(rte_kafka_consumer *c, int k, int64_t now, const char **reason)
{
    int64_t out = atomic_load(&c->out_since);
    int64_t behind = atomic_load(&c->ht[k].behind_since);

    *reason = out ? "out of its consumer group" : "behind without progress";
    if ((!out && !behind) || (!out && atomic_load(&c->paused_pub)))
        return 0;
    return (double)(now - (out ? out : behind)) / 1000.0;
}

/*
 * rte_kafka_consumers_stuck - one caller at a time (the service's probe thread), while every
 * consumer in cs lives; reads only what their threads publish in atomics, so a consumer thread
 * stuck in a handler is seen too. Sets rte_kafka_consumer_stuck_seconds{topic} to the worst of
 * cs and returns how many consumers are stuck longer than bound_ms (0: none counted), naming the
 * first in why.
 */
int rte_kafka_consumers_stuck(rte_kafka_consumer *const *cs, int n, int64_t bound_ms, char *why,
                              size_t whylen)
{
    struct worst {
        const char *topic;
        double worst;
    } seen[HEALTH_TOPICS * 16];
    int nseen = 0, nstuck = 0;
    int64_t now = rte_clock_mono_ms();

    why[0] = '\0';
    for (int i = 0; i < n; i++) {
        rte_kafka_consumer *c = cs[i];
        int counted = 0;
        for (int k = 0; k < c->nht; k++) {
            const char *reason;
            double secs = stuck_seconds(c, k, now, &reason);
            int j = 0;
            while (j < nseen && strcmp(seen[j].topic, c->ht[k].name) != 0)
                j++;
            if (j == nseen && nseen < (int)(sizeof seen / sizeof seen[0]))
                seen[nseen++] = (struct worst){c->ht[k].name, 0};
            if (j < nseen && secs > seen[j].worst)
                seen[j].worst = secs;
            if (bound_ms <= 0 || secs * 1000.0 < (double)bound_ms || counted)
                continue;
            counted = 1;
            if (nstuck++ == 0)
                snprintf(why, whylen, "a consumer of %s has been %s for %.0f s (bound %lld s)",
                         c->ht[k].name, reason, secs, (long long)(bound_ms / 1000));
        }
    }
    for (int j = 0; j < nseen; j++)
        rte_gauge_set(m_stuck, (const char *const[]){seen[j].topic}, seen[j].worst);
    return nstuck;
}

/* rte_kafka_consumer_connected - any thread; may block up to 1 s */
int rte_kafka_consumer_connected(rte_kafka_consumer *c)
{
    return !atomic_load(&c->closed) && brokers_up(c->rk);
}

/* rte_kafka_msg_header - handler thread, while msg lives; borrowed */
const void *rte_kafka_msg_header(const rte_kafka_msg *msg, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs;
    const void *value;
    size_t size;

    if (!msg->rk_message || rd_kafka_message_headers(msg->rk_message, &hdrs))
        return NULL;
    if (rd_kafka_header_get_last(hdrs, name, &value, &size))
        return NULL;
    if (len)
        *len = size;
    return value;
}
