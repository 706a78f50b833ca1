/*
 * kafka.h - librdkafka producer and at-least-once consumer.
 *
 * Producer: idempotent (enable.idempotence=true, acks=all), delivery reports
 * counted in metrics (rte_kafka_produced_total{topic,result}), flushed on
 * rte_kafka_producer_free. rte_kafka_produce_sync waits for the broker's
 * acknowledgement: callers that must not answer 2xx before a durable copy
 * exists use it.
 *
 * Consumer: one consumer-group member polled by one thread
 * (rte_kafka_consumer_run). For each message the handler returns
 *   RTE_KAFKA_OK     - done: the offset is stored and later committed;
 *   RTE_KAFKA_RETRY  - transient failure: retried with exponential backoff up
 *                      to max_retries, then treated as poison; the consumer
 *                      keeps polling with its partitions paused meanwhile,
 *                      so long retries (a dependency outage of minutes) do
 *                      not cost the group membership (max.poll.interval.ms);
 *   RTE_KAFKA_POISON - the message can never succeed: it is produced to
 *                      "<topic>.dlq" with headers dlq-reason, dlq-topic,
 *                      dlq-partition, dlq-offset, then its offset is stored.
 * Offsets are stored only after the handler succeeded (or the DLQ copy was
 * acknowledged) and committed periodically and on close, so a crash
 * redelivers what was not finished: at-least-once. Rebalancing is
 * cooperative-sticky. While a handler keeps returning RETRY the partition is
 * not advanced, so ordering per key holds.
 *
 * Broker address: rte_kafka_brokers() returns RTE_KAFKA_BROKERS if set, else
 * the config key kafka.brokers, else the bootstrap file written by
 * tools/kafka-dev-broker (RTE_RUN_DIR/kafka.bootstrap, default run/).
 *
 * Thread safety: a producer may be used from any thread. A consumer belongs to
 * the thread that calls rte_kafka_consumer_run; rte_kafka_consumer_stop may be
 * called from any thread.
 */
#ifndef RTE_KAFKA_H
#define RTE_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "rte/config.h"

typedef struct rte_kafka_producer rte_kafka_producer;
typedef struct rte_kafka_consumer rte_kafka_consumer;

enum { RTE_KAFKA_OK = 0, RTE_KAFKA_RETRY = 1, RTE_KAFKA_POISON = 2 };

/* default transient retries: backoffs of 200 ms doubling to 10 s make about 9 min */
#define RTE_KAFKA_MAX_RETRIES 60

typedef struct rte_kafka_header {
    const char *name;
    const void *value;
    size_t len;
} rte_kafka_header;

typedef struct rte_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    int64_t timestamp_ms;
    void *rk_message; /* the underlying rd_kafka_message_t, borrowed */
} rte_kafka_msg;

/*
 * handler: called on the consumer thread; on RTE_KAFKA_RETRY/POISON fill
 * reason (a message a human can act on; goes into the DLQ header)
 */
typedef int (*rte_kafka_handler)(const rte_kafka_msg *msg, void *arg, char *reason,
                                 size_t reasonlen);

/*
 * Batch handling, for consumers whose work per message is a share of one
 * round trip (a pipelined Redis write for hundreds of messages): the
 * consumer hands the handler up to batch_max messages at once - whatever
 * was already fetched, in partition order, never waiting for more - and
 * the handler returns
 *   RTE_KAFKA_OK     - each message has its verdict in v[i].rc: RTE_KAFKA_OK,
 *                      or RTE_KAFKA_POISON with v[i].reason (that message
 *                      goes to the DLQ); every offset is then stored;
 *   RTE_KAFKA_RETRY  - the whole batch failed transiently (reason filled):
 *                      it is handed over again, with the same backoff,
 *                      pausing and retry limit as single messages (minus
 *                      messages of partitions revoked meanwhile), so the
 *                      handler must be idempotent over a batch.
 * Nothing of a batch is stored before the handler returned OK.
 */
#define RTE_KAFKA_REASON_MAX 256
typedef struct rte_kafka_verdict {
    int rc; /* RTE_KAFKA_OK (preset) or RTE_KAFKA_POISON */
    char reason[RTE_KAFKA_REASON_MAX];
} rte_kafka_verdict;

typedef int (*rte_kafka_batch_handler)(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n,
                                       void *arg, char *reason, size_t reasonlen);

/* rte_kafka_brokers - the bootstrap list to use (see above), into buf; -1 if none is known */
int rte_kafka_brokers(const rte_config *cfg, char *buf, size_t len);

/*
 * rte_kafka_producer_new - idempotent acks=all producer. Extra librdkafka
 * properties come from config keys under kafka.producer.* . NULL + err on
 * failure.
 */
rte_kafka_producer *rte_kafka_producer_new(const rte_config *cfg, const char *brokers, char *err,
                                           size_t errlen);

/* rte_kafka_producer_free - flush (up to timeout_ms) and destroy; returns messages not delivered */
int rte_kafka_producer_free(rte_kafka_producer *p, int timeout_ms);

/*
 * rte_kafka_produce - enqueue one message (copied); delivery is reported
 * asynchronously (metrics). 0, or -1 with err (queue full, unknown topic).
 */
int rte_kafka_produce(rte_kafka_producer *p, const char *topic, const void *key, size_t keylen,
                      const void *payload, size_t len, const rte_kafka_header *headers,
                      int nheaders, char *err, size_t errlen);

/*
 * Delivery watermark: every message rte_kafka_produce accepts gets the next
 * sequence number of its producer (1, 2, ...). rte_kafka_produced_seq is
 * the last number handed out; rte_kafka_delivered_seq is the highest N such
 * that every message numbered <= N has had its delivery report, and *failed
 * (if not NULL) how many reports so far were errors. A caller that must not
 * record progress before its messages are durable (a cursor) remembers
 * produced_seq at that point and records it once delivered_seq reaches it
 * with no new failures - without stopping production to flush. Both are
 * lock-free, any thread.
 */
uint64_t rte_kafka_produced_seq(rte_kafka_producer *p);
uint64_t rte_kafka_delivered_seq(rte_kafka_producer *p, uint64_t *failed);

/*
 * rte_kafka_produce_batch - enqueue n messages for one topic (copied) in one
 * librdkafka call: the topic handle is looked up once, not per message. Each
 * message is partitioned by its key and numbered for the watermark like
 * rte_kafka_produce's. Returns how many were accepted (n, or fewer with err
 * naming the first refusal); refused ones are counted in
 * rte_kafka_produced_total{result="refused"}. No headers.
 */
#define RTE_KAFKA_BATCH_MAX 256 /* messages per librdkafka call; longer batches are split */
typedef struct rte_kafka_out {
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
} rte_kafka_out;
int rte_kafka_produce_batch(rte_kafka_producer *p, const char *topic, const rte_kafka_out *msgs,
                            int n, char *err, size_t errlen);

/*
 * Per-thread batching, for a thread that runs an event loop and produces
 * many small messages per turn (the HTTP loops: the service skeleton does
 * all of this for them).
 *   rte_kafka_batch_begin()  the calling thread batches from now on: it
 *                            promises to call rte_kafka_batch_flush after
 *                            each turn and rte_kafka_batch_end before it
 *                            exits (and before the producer is freed);
 *   rte_kafka_produce_batched(...)  on a batching thread: copies the message
 *                            into the thread's buffer and returns 0 (a full
 *                            buffer, or another producer or topic, flushes
 *                            first); on any other thread: rte_kafka_produce;
 *   rte_kafka_batch_flush()  hands the thread's messages to librdkafka with
 *                            one rte_kafka_produce_batch call; returns how
 *                            many were refused (also counted and logged);
 *   rte_kafka_batch_end()    flush, and stop batching.
 * Order: one thread's batched messages keep their order; a message it sends
 * with rte_kafka_produce meanwhile may overtake them.
 */
void rte_kafka_batch_begin(void);
int rte_kafka_produce_batched(rte_kafka_producer *p, const char *topic, const void *key,
                              size_t keylen, const void *payload, size_t len, char *err,
                              size_t errlen);
int rte_kafka_batch_flush(void);
void rte_kafka_batch_end(void);

/*
 * rte_kafka_produce_sync - produce and wait until the broker acknowledged it
 * (acks=all) or timeout_ms passed. 0, or -1 with err.
 */
int rte_kafka_produce_sync(rte_kafka_producer *p, const char *topic, const void *key, size_t keylen,
                           const void *payload, size_t len, const rte_kafka_header *headers,
                           int nheaders, int timeout_ms, char *err, size_t errlen);

/*
 * rte_kafka_produce_async - enqueue one message (copied) like
 * rte_kafka_produce_sync, without waiting: fn(arg, NULL) is called once the
 * broker acknowledged it (acks=all), or fn(arg, reason) once it is known not
 * delivered (message timeout, purge at rte_kafka_producer_free). fn runs
 * exactly once, on the thread serving delivery reports (the producer's poll
 * thread, or one flushing it): it must not block. Returns 0, or -1 with err
 * (queue full, unknown topic, out of memory) and fn is never called.
 */
typedef void (*rte_kafka_delivered_fn)(void *arg, const char *error);
int rte_kafka_produce_async(rte_kafka_producer *p, const char *topic, const void *key,
                            size_t keylen, const void *payload, size_t len,
                            const rte_kafka_header *headers, int nheaders,
                            rte_kafka_delivered_fn fn, void *arg, char *err, size_t errlen);

/* rte_kafka_flush - wait until every queued message is delivered; returns messages left */
int rte_kafka_flush(rte_kafka_producer *p, int timeout_ms);

/*
 * rte_kafka_check_config - the broker list and every kafka.producer.* and
 * kafka.consumer.* property are ones librdkafka accepts; builds no client
 * (--check-config). 0, or -1 + err naming the key.
 */
int rte_kafka_check_config(const rte_config *cfg, const char *brokers, char *err, size_t errlen);

/* rte_kafka_producer_connected - 1 if at least one broker is up, else 0 */
int rte_kafka_producer_connected(rte_kafka_producer *p);

typedef struct rte_kafka_consumer_opts {
    const char *group_id;                  /* consumer group */
    const char *const *topics;             /* NULL-terminated */
    rte_kafka_handler handler;             /* one message at a time, or: */
    rte_kafka_batch_handler batch_handler; /* batches (exactly one of the two) */
    int batch_max;                         /* batch_handler: most messages per call; default 500 */
    void *arg;
    int max_retries;          /* transient retries before DLQ; 0 = RTE_KAFKA_MAX_RETRIES */
    int retry_backoff_ms;     /* first backoff, doubled each time; default 200 */
    int retry_backoff_max_ms; /* default 10000 */
    rte_kafka_producer *dlq;  /* producer for <topic>.dlq copies (required) */
} rte_kafka_consumer_opts;

/* rte_kafka_consumer_new - join the group; extra properties from kafka.consumer.* */
rte_kafka_consumer *rte_kafka_consumer_new(const rte_config *cfg, const char *brokers,
                                           const rte_kafka_consumer_opts *opts, char *err,
                                           size_t errlen);

/*
 * rte_kafka_consumer_run - poll and dispatch until rte_kafka_consumer_stop;
 * finishes the message in hand, commits stored offsets and leaves the group
 * before returning. Call on the thread that owns the consumer.
 */
void rte_kafka_consumer_run(rte_kafka_consumer *c);

/* rte_kafka_consumer_stop - ask run() to return after the current message; any thread */
void rte_kafka_consumer_stop(rte_kafka_consumer *c);

/*
 * rte_kafka_consumer_stop_within - rte_kafka_consumer_stop, and run() (or free) gives up
 * leaving the group close_ms from now (rte_kafka_consumer_stop: 10 s): a coordinator that
 * does not answer, or a group never joined, is left by session timeout instead (uncommitted
 * offsets are redelivered to the partitions' next owner); any thread
 */
void rte_kafka_consumer_stop_within(rte_kafka_consumer *c, int close_ms);

/* rte_kafka_consumer_free - destroy (after run returned) */
void rte_kafka_consumer_free(rte_kafka_consumer *c);

/* rte_kafka_consumer_connected - 1 if the consumer has a broker up and a group assignment or is
 * joining */
int rte_kafka_consumer_connected(rte_kafka_consumer *c);

/*
 * rte_kafka_consumers_stuck - health of n consumers, from one thread at a time while they
 * live: sets rte_kafka_consumer_stuck_seconds{topic} and returns how many have been out of
 * their group, or behind on their partitions without finishing a message, for longer than
 * bound_ms (those retrying with paused partitions, a dependency outage, excepted); why names
 * the first.
 */
int rte_kafka_consumers_stuck(rte_kafka_consumer *const *cs, int n, int64_t bound_ms, char *why,
                              size_t whylen);

/* rte_kafka_msg_header - value of header name on msg (borrowed), NULL if absent */
const void *rte_kafka_msg_header(const rte_kafka_msg *msg, const char *name, size_t *len);

#endif
