/*
 * cron_run.h - one fire of one schedule: walk the directory, emit events.
 *
 * A run owns the lease of one fire record (cron_store). It walks the
 * directory snapshot from the persisted cursor in a fixed order - member
 * index, or with jitter the order of each member's stable offset
 * (hash(schedule, member id) mod jitter window) so later members wait until
 * fire time + their offset. The schedule's directory filters are resolved
 * once at the start of the run by libcommon's member_query into a bitmap
 * (cron_schedule_match, NOW() = fire time); then for each member:
 *   in the bitmap -> predict (cron_model) -> app_usage_probability filters
 *   on the prediction (cron_schedule_wants) -> if selected,
 *   produce MemberCronEvent to member-cron-events (key member id) and, when
 *   the probability reaches the threshold, the app_usage_likely JSON event.
 * Emission passes a token bucket (schedule rate, real seconds).
 *
 * Every `batch` members (and at least every third of the lease) the run
 * notes a cursor commit and keeps producing; the cursor is saved under its
 * fencing token once the producer's delivery watermark shows every event
 * before it acknowledged by the broker (rte_kafka_delivered_seq), so no
 * flush stalls the run. At most 8 commits wait at once. A crash therefore
 * re-emits only the events after the last saved cursor - normally about one
 * batch, never more than nine (duplicates carry the same event id:
 * "{schedule}/{fire ms}/{member id}") - and never skips a member. Drain,
 * pacing waits and the end of the fire still flush.
 * Losing the lease (fenced) stops the run at once; on drain the run commits
 * and gives the lease up so another replica resumes immediately.
 *
 * Nothing is allocated per event: messages are packed into stack buffers.
 * Thread safety: a run executes on the caller's (scheduler) thread; the
 * progress fields of cron_run_state are atomics read by the admin thread.
 */
#ifndef CRON_RUN_H
#define CRON_RUN_H

#include <stdatomic.h>
#include <stdint.h>

#include "cron_model.h"
#include "cron_sched.h"
#include "cron_store.h"
#include "rte/kafka.h"
#include "rte/member_dir.h"
#include "rte/metrics.h"

enum cron_run_result { CRON_RUN_DONE, CRON_RUN_FENCED, CRON_RUN_FAILED, CRON_RUN_DRAINED };

typedef struct cron_run_opts {
    const cron_schedule *sched;
    const cron_model *model;
    rte_member_snapshot *snap;
    cron_store *store;
    rte_kafka_producer *producer;
    int64_t fire_ms;
    int64_t token;
    int64_t cursor;
    int64_t batch; /* members per cursor commit */
    int flush_timeout_ms;
} cron_run_opts;

/* live progress of the run in hand, for the admin endpoint */
typedef struct cron_run_state {
    _Atomic int64_t position, total, emitted, likely, filtered;
    _Atomic int64_t commits, flush_ms; /* cursor commits and the time spent waiting for acks */
} cron_run_state;

/* cron_run - execute the fire; returns enum cron_run_result; scheduler thread */
int cron_run(const cron_run_opts *o, cron_run_state *st);

/* cron_jitter_offset_ms - the stable offset of member_id within a schedule's window */
int64_t cron_jitter_offset_ms(const char *schedule, const char *member_id, int64_t window_ms);

/* cron_event_id - "{schedule}/{fire_ms}/{member_id}" into buf; length */
int cron_event_id(char *buf, size_t len, const char *schedule, int64_t fire_ms,
                  const char *member_id);

/* member-cron's metric families (registered by cron_metrics_init) */
typedef struct cron_metrics {
    rte_metric *emitted, *filtered, *fires, *fires_skipped, *takeovers, *rate, *progress, *duration,
        *probability, *schedules, *reloads;
} cron_metrics;
extern cron_metrics cron_m;

/* cron_metrics_init - register member-cron's metric families (idempotent) */
void cron_metrics_init(void);

#endif
