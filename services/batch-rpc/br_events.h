/*
 * br_events.h - where a job's updates go.
 *
 *   update log  every BatchStatusUpdate of a job is appended to the job's
 *               log in Redis (jobs.h rte_jobs_event), whichever replica
 *               makes it; WatchBatchStatus and SubmitBatchStreaming read
 *               the log, so a watcher on any replica sees every update and
 *               can resume after the last one it saw. The stored update
 *               carries no timestamp: a reader sets it from the log id
 *               (seconds.nanos = ms / 1000, ms % 1000 * 10^6 + sequence), so
 *               the timestamp is the resume point.
 *   Kafka       BatchJobEvent (batch_events.proto) on the job's topic
 *               (notifications.kafka_topic, default
 *               domain.rte.v1.batch_job_events), key = batch id, for
 *               STARTED, PROGRESS, COMPLETED, FAILED and CANCELLED, filtered
 *               by notifications.event_types (empty = all).
 *   rte.events  the lifecycle events of each real-time check a job makes,
 *               as the gateway writes them (rte.enqueued when no slot is free at once and it waits
 * for a slot, rte.scheduled, rte.started, rte.completed, rte.downtime, rte.failed, rte.timeout),
 * member key only.
 *
 * Producing only enqueues into librdkafka; a refused event is counted in
 * rte_batchrpc_events_total{sink="kafka",result="dropped"} and logged.
 *
 * Thread safety: any thread (each call uses the caller's Redis connection).
 */
#ifndef BR_EVENTS_H
#define BR_EVENTS_H

#include <stdint.h>

#include "br.h"

/* br_events_started / _progress / _finished - the job's update, log and Kafka */
void br_events_started(rte_redis *r, const br_job *j);
void br_events_progress(rte_redis *r, const br_job *j);
void br_events_finished(rte_redis *r, const br_job *j);

/* br_events_member - a MEMBER_COMPLETED update of job id (log only) */
void br_events_member(rte_redis *r, const char *id, const char *member_id, int success,
                      int64_t dur_ms, const char *error);

/* br_events_lifecycle - one rte.* event of a real-time check (latency_ms < 0 omits it) */
void br_events_lifecycle(const char *type, const char *member_key, const char *tp,
                         const char *job_id, int64_t latency_ms, const char *outcome,
                         const char *detail);

/* br_events_update_ts - the log id "ms-seq" as a Timestamp; -1 if malformed */
int br_events_id_ts(const char *evid, Rte__V1__Timestamp *t);

/* br_events_ts_id - a Timestamp back to the log id it came from ("ms-seq") */
void br_events_ts_id(int64_t seconds, int32_t nanos, char *out, size_t len);

#endif
