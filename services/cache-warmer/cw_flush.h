/*
 * cw_flush.h - the batch queue's timer: seal, submit, watch, measure.
 *
 * Every warmer.flush_check (clock) each replica: seals the open window if
 * it has elapsed (rte_warm_seal: one replica wins), submits every sealed
 * batch it can claim (rte_warm_submit_next), notes completed batches
 * (cw_stats_track), publishes rte_cache_warming_queue_size and reloads the
 * member directory when it changed. On SIGTERM (warmer.flush_on_shutdown)
 * the open window is sealed at once and what is sealed is submitted.
 */
#ifndef CW_FLUSH_H
#define CW_FLUSH_H

/* cw_flush_tick - timer thread */
void cw_flush_tick(void *arg);

/* cw_flush_final - seal and submit everything now; shutdown hook */
void cw_flush_final(void);

#endif
