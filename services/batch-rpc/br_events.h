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
 * PROGRESS (and the rte.* events) are best effort: producing only enqueues
 * into librdkafka; a refused event is counted in
 * rte_batchrpc_events_total{sink="kafka",result="dropped"} and logged.
 *
 * STARTED and the final event (COMPLETED, FAILED, CANCELLED) are owed:
 * whoever changes the job's status writes, in the same Redis operation,
 * the job hash field owed ("STARTED", "ENDED" or "STARTED ENDED"), after
 * scoring the job in P:owed (P = batchrpc.prefix) at now + batchrpc.lease.
 * The events then go to every sink; only when each took its event (update
 * log written, Kafka acknowledged within min(lease / 3, 10 s), webhook
 * stored in its outbox) is the marker cleared (br_events_paid); when only
 * some did, they are remembered (job field sent_<type>) and a retry sends
 * to the others only. Every replica's work timer claims due P:owed entries
 * (a lease of batchrpc.lease) and sends what the job hash says is owed,
 * from the job's current state, again
 * (rte_batchrpc_events_redelivered_total{type}); a failed retry is due
 * again after lease doubling per try (at most 10 min) and ends that tick's
 * retries. An owed event's Kafka event_id and webhook-id are derived from
 * the batch id and event type, so a redelivery is recognisable.
 *
 * Thread safety: any thread (each call uses the caller's Redis connection).
 */
#ifndef BR_EVENTS_H
#define BR_EVENTS_H

#include <stdint.h>

#include "br.h"

/* the sinks of a job's update (masks) */
#define BR_SINK_LOG 1u
#define BR_SINK_KAFKA 2u
#define BR_SINK_WEBHOOK 4u
#define BR_SINKS_ALL 7u

/*
 * br_events_started / _progress / _finished - the job's update to the log,
 * Kafka and its webhook. _started and _finished send it to the sinks not in
 * skip and return skip | the sinks that took it (BR_SINKS_ALL: every one).
 */
unsigned br_events_started(rte_redis *r, const br_job *j, unsigned skip);
void br_events_progress(rte_redis *r, const br_job *j);
unsigned br_events_finished(rte_redis *r, const br_job *j, unsigned skip);

/* br_events_final_type - "COMPLETED", "FAILED" or "CANCELLED" for an ended job */
const char *br_events_final_type(const br_job *j);

/* br_events_event_id - the event id (UUID text) of owed event type of batch_id, same every time */
void br_events_event_id(const char *batch_id, const char *type, char out[37]);

/* br_events_owe - score job id in P:owed at now + lease (before writing its marker); 0 or -1 */
int br_events_owe(rte_redis *r, const char *id, char *err, size_t errlen);

/* br_events_owed_of - the marker an end writes: "STARTED ENDED" (STARTED still owed) or "ENDED" */
void br_events_owed_of(rte_redis *r, const char *id, char *out, size_t len);

/* br_events_paid - clear job id's marker and P:owed entry if the marker is still owed */
void br_events_paid(rte_redis *r, const char *id, const char *owed);

/*
 * br_events_emit_owed - send j's owed events (the marker's text) to the
 * sinks that have not taken them yet (job field sent_<type>, written when
 * only some did); marker cleared when every sink took them. 0 or -1.
 */
int br_events_emit_owed(rte_redis *r, const br_job *j, const char *owed);

/* br_events_owed_tick - claim due P:owed entries and send their events again (work timer) */
void br_events_owed_tick(rte_redis *r);

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
