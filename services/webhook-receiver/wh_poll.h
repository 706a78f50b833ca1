/*
 * wh_poll.h - polling of registered Stedi batches (real Stedi sends no
 * completion callback).
 *
 * Each tick (wh.poll.interval, a timer thread) takes up to
 * wh.poll.max_batches due batches from the registry (batch_registry.h) and,
 * for each whose lease this replica wins:
 *   1. rte_stedi_batch_status; unknown to Stedi -> done "not_found" once
 *      past its retry window, else checked again later;
 *   2. if anything completed, rte_stedi_poll_all from the persisted cursor;
 *      every page is produced to rte.stedi.batch-results as a poll_page
 *      envelope (acks=all), and only after that produce succeeded is the
 *      cursor advanced (rte_batch_registry_advance, lease-checked) and the
 *      lease renewed. A crash therefore re-reads at most one page (the
 *      consumer's writes are idempotent) and never skips one;
 *   3. a batch Stedi reports complete (COMPLETED or COMPLETED_WITH_ERRORS)
 *      whose pages were all handed on gets a batch_done envelope (so the
 *      consumer emits its event after every page, same partition) and is
 *      marked done; VALIDATION_FAILED is marked done "validation_failed"
 *      at once (nothing will complete); otherwise it is rescheduled with
 *      backoff (or expires past its retry window).
 * Each poll_page envelope carries, besides the page as Stedi sent it, the
 * registered members of its items ({submitterTransactionIdentifier: {key,
 * service_types}}, rte_batch_registry_members): a polled item names no
 * member, so this is how the consumer knows which cache entry it is.
 * The cursor kept is the page's nextPageToken, or for the last page so far
 * the token that fetched it: results completing later extend that page, so
 * it is read again rather than skipped.
 *
 * Runs on the timer thread with its own Redis connection; winds down when
 * the service drains.
 */
#ifndef WH_POLL_H
#define WH_POLL_H

#include <stddef.h>

#include "rte/config.h"

/* wh_poll_start - build the Stedi client when polling is enabled; init thread */
int wh_poll_start(const rte_config *cfg, char *err, size_t errlen);

/* wh_poll_tick - one polling round; the timer's function */
void wh_poll_tick(void *arg);

/* wh_poll_stop - free the Stedi client; shutdown thread (timers stopped) */
void wh_poll_stop(void);

#endif
