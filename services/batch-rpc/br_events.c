/*
 * br_events.c - a job's updates to its log, Kafka and rte.events (br_events.h).
 *
 * Updates are packed on the stack or with one malloc per update; a job
 * makes one per chunk, so nothing here is on a per-member hot path except
 * MEMBER_COMPLETED and the rte.* events, which are written without
 * allocating (rte_jsonw into a stack buffer).
 */
#include "br_events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_events.pb-c.h"
#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/events.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/service.h"
#include "rte/topics.h"

#include "br_webhook.h"

#define EVENT_MAX 2048
#define IDS_MAX 1024

static void count(const char *sink, const char *result)
{
    const char *v[] = {sink, result};
    rte_counter_inc(BM.events, v);
}

/* append u to the log of job id */
static void push(rte_redis *r, const char *id, Rte__V1__BatchStatusUpdate *u)
{
    size_t n = rte__v1__batch_status_update__get_packed_size(u);
    uint8_t *buf = malloc(n + 1);
    char err[256];

    if (buf == NULL) {
        count("stream", "dropped");
        return;
    }
    rte__v1__batch_status_update__pack(u, buf);
    if (rte_jobs_event(r, &BR.c.jobs, id, buf, n, rte_clock_now_ms(), NULL, err, sizeof err) != 0) {
        count("stream", "dropped");
        rte_log_warn("batch %s: update not logged (%s); watchers will miss it", id, err);
    } else {
        count("stream", "ok");
    }
    free(buf);
}

/* does the job's notification filter let event type through? */
static int wanted(const br_job *j, const char *type)
{
    const Rte__V1__NotificationPreferences *n = j->opts ? j->opts->notifications : NULL;
    if (n == NULL || n->n_event_types == 0)
        return 1;
    for (size_t i = 0; i < n->n_event_types; i++)
        if (strcmp(n->event_types[i], type) == 0)
            return 1;
    return 0;
}

static const char *topic(const br_job *j)
{
    const Rte__V1__NotificationPreferences *n = j->opts ? j->opts->notifications : NULL;
    if (n && n->_kafka_topic_case && n->kafka_topic[0])
        return n->kafka_topic;
    return RTE_TOPIC_BATCH_JOB_EVENTS;
}

static void dur(Rte__V1__Duration *d, int64_t ms)
{
    rte__v1__duration__init(d);
    d->seconds = ms / 1000;
    d->nanos = (int32_t)(ms % 1000) * 1000000;
}

/* a BatchJobEvent of type for j on its topic */
static void kafka(const br_job *j, const char *type)
{
    rte_kafka_producer *p = rte_service_producer();
    Rte__V1__BatchJobEvent ev = RTE__V1__BATCH_JOB_EVENT__INIT;
    Rte__V1__BatchJobDetails d = RTE__V1__BATCH_JOB_DETAILS__INIT;
    Rte__V1__BatchCompletedResult done = RTE__V1__BATCH_COMPLETED_RESULT__INIT;
    Rte__V1__BatchFailedResult failed = RTE__V1__BATCH_FAILED_RESULT__INIT;
    Rte__V1__BatchProgressUpdate prog = RTE__V1__BATCH_PROGRESS_UPDATE__INIT;
    Rte__V1__Timestamp at, eta;
    Rte__V1__Duration total, avg;
    char id[37], err[256], *ids[IDS_MAX], *sb = NULL;
    size_t nids = 0;
    int64_t now = rte_clock_now_ms();

    if (p == NULL || !wanted(j, type))
        return;
    rte_uuid4(id);
    br_ts(&at, now);
    ev.event_id = id;
    ev.occurred_at = &at;
    ev.event_type = (char *)type;
    ev.batch_id = (char *)j->id;
    ev.job_type = j->from_query ? "MEMBER_QUERY" : "RTE_BATCH";
    d.client_service_name = (char *)j->service;
    d.client_job_id = (char *)j->cjid;
    d.total_members = (int32_t)j->total;
    d.resolved_options = j->opts;
    if (j->sb_ids && j->sb_ids[0] && (sb = strdup(j->sb_ids)) != NULL) {
        char *s = sb, *c;
        while (s && *s && nids < IDS_MAX) {
            c = strchr(s, ',');
            if (c)
                *c++ = '\0';
            if (*s)
                ids[nids++] = s;
            s = c;
        }
    }
    d.n_stedi_batch_ids = nids;
    d.stedi_batch_ids = ids;
    ev.details = &d;
    ev.initiated_by_service = (char *)j->service;
    ev.initiated_by_user_id = (char *)j->caller;
    int64_t took = j->ended_ms && j->started_ms ? j->ended_ms - j->started_ms : 0;
    if (strcmp(type, "COMPLETED") == 0) {
        done.total_members = (int32_t)j->total;
        done.successful = (int32_t)j->completed;
        done.failed = (int32_t)j->failed;
        done.skipped = (int32_t)j->cancelled;
        done.cache_hits = (int32_t)j->hits;
        done.cache_refreshed = (int32_t)j->refreshed;
        dur(&total, took);
        dur(&avg, j->dur_n ? j->dur_sum_ms / j->dur_n : 0);
        done.total_duration = &total;
        done.avg_member_duration = &avg;
        done.stedi_batch_calls = (int32_t)j->sb_calls;
        done.stedi_realtime_calls = (int32_t)j->rt_calls;
        ev.result_case = RTE__V1__BATCH_JOB_EVENT__RESULT_COMPLETED;
        ev.completed = &done;
    } else if (strcmp(type, "FAILED") == 0 || strcmp(type, "CANCELLED") == 0) {
        failed.error_code = (char *)(j->ecode[0] ? j->ecode : type);
        failed.error_message = (char *)(j->emsg[0] ? j->emsg : j->reason);
        failed.total_members = (int32_t)j->total;
        failed.successful = (int32_t)j->completed;
        failed.failed = (int32_t)j->failed;
        dur(&total, took);
        failed.total_duration = &total;
        failed.retryable = strcmp(j->ecode, "STEDI_UNAVAILABLE") == 0;
        ev.result_case = RTE__V1__BATCH_JOB_EVENT__RESULT_FAILED;
        ev.failed = &failed;
    } else if (strcmp(type, "PROGRESS") == 0) {
        prog.completed = (int32_t)(j->completed + j->failed);
        prog.total = (int32_t)j->total;
        prog.percent_complete =
            j->total ? (float)(100.0 * (double)(j->completed + j->failed) / (double)j->total) : 0;
        br_ts(&eta, j->eta_ms);
        prog.estimated_completion = &eta;
        ev.result_case = RTE__V1__BATCH_JOB_EVENT__RESULT_PROGRESS;
        ev.progress = &prog;
    }
    size_t n = rte__v1__batch_job_event__get_packed_size(&ev);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        count("kafka", "dropped");
        goto out;
    }
    rte__v1__batch_job_event__pack(&ev, buf);
    if (rte_kafka_produce(p, topic(j), j->id, strlen(j->id), buf, n, NULL, 0, err, sizeof err) !=
        0) {
        count("kafka", "dropped");
        rte_log_warn("batch %s: %s event not produced on %s: %s", j->id, type, topic(j), err);
    } else {
        count("kafka", "ok");
    }
    free(buf);
out:
    free(sb);
}

/* br_events_started - any thread */
void br_events_started(rte_redis *r, const br_job *j)
{
    Rte__V1__BatchStatusUpdate u = RTE__V1__BATCH_STATUS_UPDATE__INIT;
    Rte__V1__BatchStarted s = RTE__V1__BATCH_STARTED__INIT;
    Rte__V1__Timestamp at, eta;

    br_ts(&at, j->started_ms);
    br_ts(&eta, j->eta_ms);
    s.batch_id = (char *)j->id;
    s.total_members = (int32_t)j->total;
    s.started_at = &at;
    s.estimated_completion = &eta;
    s.resolved_options = j->opts;
    u.event_type = RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_STARTED;
    u.update_case = RTE__V1__BATCH_STATUS_UPDATE__UPDATE_STARTED;
    u.started = &s;
    u.batch_id = (char *)j->id;
    push(r, j->id, &u);
    kafka(j, "STARTED");
    br_webhook_enqueue(r, j, "STARTED");
}

/* br_events_progress - any thread */
void br_events_progress(rte_redis *r, const br_job *j)
{
    Rte__V1__BatchStatusUpdate u = RTE__V1__BATCH_STATUS_UPDATE__INIT;
    br_progress p;

    br_job_progress(j, &p);
    u.event_type = RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_PROGRESS;
    u.update_case = RTE__V1__BATCH_STATUS_UPDATE__UPDATE_PROGRESS;
    u.progress = &p.p;
    u.batch_id = (char *)j->id;
    push(r, j->id, &u);
    kafka(j, "PROGRESS");
    br_webhook_enqueue(r, j, "PROGRESS");
}

/* br_events_finished - any thread */
void br_events_finished(rte_redis *r, const br_job *j)
{
    Rte__V1__BatchStatusUpdate u = RTE__V1__BATCH_STATUS_UPDATE__INIT;
    Rte__V1__BatchCompleted c = RTE__V1__BATCH_COMPLETED__INIT;
    Rte__V1__BatchFailed f = RTE__V1__BATCH_FAILED__INIT;
    Rte__V1__Timestamp at;
    br_progress p;

    br_job_progress(j, &p);
    br_ts(&at, j->ended_ms);
    u.batch_id = (char *)j->id;
    if (j->status == RTE__V1__BATCH_STATUS__BATCH_STATUS_COMPLETED ||
        j->status == RTE__V1__BATCH_STATUS__BATCH_STATUS_PARTIALLY_COMPLETED) {
        c.batch_id = (char *)j->id;
        c.status = (Rte__V1__BatchStatus)j->status;
        c.progress = &p.p;
        c.completed_at = &at;
        u.event_type = RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_COMPLETED;
        u.update_case = RTE__V1__BATCH_STATUS_UPDATE__UPDATE_COMPLETED;
        u.completed = &c;
        push(r, j->id, &u);
        kafka(j, "COMPLETED");
        br_webhook_enqueue(r, j, "COMPLETED");
        return;
    }
    int cancelled = j->status == RTE__V1__BATCH_STATUS__BATCH_STATUS_CANCELLED;
    f.batch_id = (char *)j->id;
    f.error_code = cancelled ? "CANCELLED" : (char *)j->ecode;
    f.error_message = (char *)(cancelled ? j->reason : j->emsg);
    f.progress = &p.p;
    f.failed_at = &at;
    u.event_type = RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_FAILED;
    u.update_case = RTE__V1__BATCH_STATUS_UPDATE__UPDATE_FAILED;
    u.failed = &f;
    push(r, j->id, &u);
    kafka(j, cancelled ? "CANCELLED" : "FAILED");
    br_webhook_enqueue(r, j, cancelled ? "CANCELLED" : "FAILED");
}

/* br_events_member - any thread */
void br_events_member(rte_redis *r, const char *id, const char *member_id, int success,
                      int64_t dur_ms, const char *error)
{
    Rte__V1__BatchStatusUpdate u = RTE__V1__BATCH_STATUS_UPDATE__INIT;
    Rte__V1__MemberCompleted m = RTE__V1__MEMBER_COMPLETED__INIT;
    Rte__V1__Duration d;

    dur(&d, dur_ms);
    m.account_id = (char *)member_id;
    m.success = success;
    m.duration = &d;
    if (error != NULL && error[0]) {
        m._error_message_case = RTE__V1__MEMBER_COMPLETED___ERROR_MESSAGE_ERROR_MESSAGE;
        m.error_message = (char *)error;
    }
    u.event_type = RTE__V1__BATCH_EVENT_TYPE__EVENT_TYPE_MEMBER_COMPLETED;
    u.update_case = RTE__V1__BATCH_STATUS_UPDATE__UPDATE_MEMBER_COMPLETED;
    u.member_completed = &m;
    u.batch_id = (char *)id;
    push(r, id, &u);
}

/* br_events_lifecycle - any thread */
void br_events_lifecycle(const char *type, const char *member_key, const char *tp,
                         const char *job_id, int64_t latency_ms, const char *outcome,
                         const char *detail)
{
    rte_kafka_producer *p = rte_service_producer();
    char buf[EVENT_MAX], err[256];
    rte_lifecycle_event e = {type,   member_key, tp,      "batch-rpc", "batch",
                             job_id, latency_ms, outcome, detail,      rte_clock_now_ms()};
    int n;

    if (p == NULL)
        return;
    n = rte_lifecycle_event_json(&e, buf, sizeof buf);
    if (n < 0 || rte_kafka_produce(p, RTE_TOPIC_RTE_EVENTS, member_key, strlen(member_key), buf,
                                   (size_t)n, NULL, 0, err, sizeof err) != 0) {
        count("rte_events", "dropped");
        return;
    }
    count("rte_events", "ok");
}

/* br_events_id_ts - pure */
int br_events_id_ts(const char *evid, Rte__V1__Timestamp *t)
{
    long long ms, seq;
    char *end;

    ms = strtoll(evid, &end, 10);
    if (end == evid || *end != '-')
        return -1;
    seq = strtoll(end + 1, &end, 10);
    if (*end != '\0' || seq < 0 || seq > 999999 || ms < 0)
        return -1;
    rte__v1__timestamp__init(t);
    t->seconds = ms / 1000;
    t->nanos = (int32_t)((ms % 1000) * 1000000 + seq);
    return 0;
}

/* br_events_ts_id - pure */
void br_events_ts_id(int64_t seconds, int32_t nanos, char *out, size_t len)
{
    snprintf(out, len, "%" PRId64 "-%d", seconds * 1000 + nanos / 1000000, (int)(nanos % 1000000));
}
