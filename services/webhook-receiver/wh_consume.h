/*
 * wh_consume.h - the writer of batch results: consumer of
 * rte.stedi.batch-results.
 *
 * For each envelope (wh_callback.h for callbacks; wh_poll.c for poll_page
 * and batch_done):
 *   1. a message whose content id was applied before is acknowledged and
 *      skipped (rte:wh:applied:{id}), so the same callback twice - a sender
 *      retry, a Kafka redelivery - writes once;
 *   2. every result is mapped and written with rte_cache_put, which never
 *      replaces a newer entry. A callback result is mapped with
 *      rte_cache_entry_from_callback; one that is not completed is not
 *      cached but counted by reason (payer_error, not_completed, invalid).
 *      A polled item is matched to its member by its
 *      submitterTransactionIdentifier through the envelope's members map
 *      (the poller looked it up in the batch registry) and read with
 *      rte_stedi_item_map for the service types it asked: a success entry,
 *      or for a payer's or Stedi's errors[] an error entry - written too,
 *      since it says whether to retry, and the put keeps the success it
 *      replaces as last_success for stale-if-error. An item without a
 *      registered member is counted as unknown_item, one that cannot be
 *      read as invalid;
 *   3. the per-batch record is updated in one pipeline: the set of written
 *      check ids (rte:wh:batch:{id}:written, so re-reads never double
 *      count), failed check ids with their reason (...:failed), and the
 *      applied marker;
 *   4. at the end of a batch (last part of a callback, or batch_done from
 *      the poller) one JSON event goes to domain.rte.v1.cache_warming_events
 *      (event_id "webhook-receiver:{batch}:results_cached", sent once).
 * cached_at is the time the result was produced (callback completed_at, or
 * the poll's fetch time, never later than receipt), so a replay writes the
 * same entry and an old result never looks newer than a real-time answer.
 *
 * Returns RTE_KAFKA_RETRY when Redis or Kafka fails (after waiting up to
 * wh.redis_wait for Redis to come back), so the offset is not stored until
 * every write succeeded; RTE_KAFKA_POISON for an envelope that cannot be
 * read. Runs on the consumer thread with its Redis connection.
 */
#ifndef WH_CONSUME_H
#define WH_CONSUME_H

#include <stddef.h>

#include <cJSON.h>

#include "rte/kafka.h"

#include "wh_writers.h"

/*
 * wh_consume_map - the results of envelope env (kind callback or poll_page)
 * as items to write (calloc'd array, caller frees; strings borrowed from
 * env); the count, or -1 + why when env is poison (no results array, or a
 * callback result that breaks the input policy), -2 out of memory. Pure;
 * any thread.
 */
int wh_consume_map(const cJSON *env, const char *kind, wh_item **out, char *why, size_t wl);

/* wh_consume - rte_kafka_handler for rte.stedi.batch-results; consumer thread */
int wh_consume(const rte_kafka_msg *msg, void *arg, char *reason, size_t reasonlen);

/*
 * wh_consume_batch - rte_kafka_batch_handler for rte.stedi.batch-results:
 * each message as wh_consume (consecutive callback messages applied
 * together: one round trip per phase for all of them, same verdicts, same
 * records and events), except that cache_warming_events are produced
 * asynchronously and awaited once per batch (delivery watermark, at most
 * wh.produce_timeout); any RETRY, or an event not acknowledged, retries the
 * whole batch. Consumer thread.
 */
#define WH_CONSUME_BATCH 64
int wh_consume_batch(const rte_kafka_msg *msgs, rte_kafka_verdict *v, int n, void *arg,
                     char *reason, size_t reasonlen);

#endif
