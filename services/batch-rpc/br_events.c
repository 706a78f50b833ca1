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
#define ACK_WAIT_MAX_MS 10000
#define OWED_CLAIM_MAX 4
#define OWED_BACKOFF_MAX_MS 600000

static void count(const char *sink, const char *result)
{
    const char *v[] = {sink, result};
    rte_counter_inc(BM.events, v);
}

/* append u to the log of job id; 0 or -1 (counted, logged) */
static int push(rte_redis *r, const char *id, Rte__V1__BatchStatusUpdate *u)
{
    size_t n = rte__v1__batch_status_update__get_packed_size(u);
    uint8_t *buf = malloc(n + 1);
    char err[256];
    int rc = -1;

    if (buf == NULL) {
        count("stream", "dropped");
        return -1;
    }
    rte__v1__batch_status_update__pack(u, buf);
    if (rte_jobs_event(r, &BR.c.jobs, id, buf, n, rte_clock_now_ms(), NULL, err, sizeof err) != 0) {
        count("stream", "dropped");
        rte_log_warn("batch %s: update not logged (%s)", id, err);
    } else {
        count("stream", "ok");
        rc = 0;
    }
    free(buf);
    return rc;
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

/* how long a STARTED or final BatchJobEvent waits for the broker's acknowledgement */
static int ack_wait_ms(void)
{
    int64_t ms = BR.c.jobs.lease_ms / 3;
    return (int)(ms > ACK_WAIT_MAX_MS ? ACK_WAIT_MAX_MS : ms);
}

/*
 * a BatchJobEvent of type for j on its topic. PROGRESS is only enqueued
 * (best effort); STARTED and the final events wait for the broker's
 * acknowledgement and carry an event id that is the same at every retry.
 * 0 when the event was taken (or is not wanted), -1 (counted, logged) not.
 */
static int kafka(const br_job *j, const char *type)
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
    int owed = strcmp(type, "PROGRESS") != 0, rc = -1;

    if (p == NULL || !wanted(j, type))
        return 0;
    if (owed)
        br_events_event_id(j->id, type, id);
    else
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
    if (owed)
        rc = rte_kafka_produce_sync(p, topic(j), j->id, strlen(j->id), buf, n, NULL, 0,
                                    ack_wait_ms(), err, sizeof err);
    else
        rc = rte_kafka_produce(p, topic(j), j->id, strlen(j->id), buf, n, NULL, 0, err, sizeof err);
    if (rc != 0) {
        count("kafka", "dropped");
        rte_log_warn("batch %s: %s event not %s on %s: %s", j->id, type,
                     owed ? "acknowledged" : "produced", topic(j), err);
    } else {
        count("kafka", "ok");
    }
    free(buf);
out:
    free(sb);
    return rc == 0 ? 0 : -1;
}

/* the sinks in skip | those of (log, kafka, webhook) that took their event (rc 0) */
static unsigned took(unsigned skip, int log_rc, int kafka_rc, int webhook_rc)
{
    return skip | (log_rc == 0 ? BR_SINK_LOG : 0) | (kafka_rc == 0 ? BR_SINK_KAFKA : 0) |
           (webhook_rc == 0 ? BR_SINK_WEBHOOK : 0);
}

/* br_events_started - any thread */
unsigned br_events_started(rte_redis *r, const br_job *j, unsigned skip)
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
    /* every sink not in skip is tried, whatever the others did */
    int l = skip & BR_SINK_LOG ? 0 : push(r, j->id, &u);
    int k = skip & BR_SINK_KAFKA ? 0 : kafka(j, "STARTED");
    int w = skip & BR_SINK_WEBHOOK ? 0 : br_webhook_enqueue(r, j, "STARTED");
    return took(skip, l, k, w);
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
    (void)push(r, j->id, &u);
    (void)kafka(j, "PROGRESS");
    (void)br_webhook_enqueue(r, j, "PROGRESS");
}

/* br_events_final_type - pure */
const char *br_events_final_type(const br_job *j)
{
    if (j->status == RTE__V1__BATCH_STATUS__BATCH_STATUS_COMPLETED ||
        j->status == RTE__V1__BATCH_STATUS__BATCH_STATUS_PARTIALLY_COMPLETED)
        return "COMPLETED";
    return j->status == RTE__V1__BATCH_STATUS__BATCH_STATUS_CANCELLED ? "CANCELLED" : "FAILED";
}

/* br_events_finished - any thread */
unsigned br_events_finished(rte_redis *r, const br_job *j, unsigned skip)
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
        int l = skip & BR_SINK_LOG ? 0 : push(r, j->id, &u);
        int k = skip & BR_SINK_KAFKA ? 0 : kafka(j, "COMPLETED");
        int w = skip & BR_SINK_WEBHOOK ? 0 : br_webhook_enqueue(r, j, "COMPLETED");
        return took(skip, l, k, w);
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
    int l = skip & BR_SINK_LOG ? 0 : push(r, j->id, &u);
    int k = skip & BR_SINK_KAFKA ? 0 : kafka(j, cancelled ? "CANCELLED" : "FAILED");
    int w =
        skip & BR_SINK_WEBHOOK ? 0 : br_webhook_enqueue(r, j, cancelled ? "CANCELLED" : "FAILED");
    return took(skip, l, k, w);
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
    (void)push(r, id, &u);
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

/* br_events_event_id - pure */
void br_events_event_id(const char *batch_id, const char *type, char out[37])
{
    char name[RTE_JOBS_ID_MAX + 32], h[41];
    static const char hexd[] = "0123456789abcdef";
    size_t k = 0;

    snprintf(name, sizeof name, "%s/%s", batch_id, type);
    rte_sha1_hex(name, strlen(name), h);
    /* name-based UUID layout (version 5, RFC 4122 variant) */
    h[12] = '5';
    h[16] = hexd[(rte_hex_digit(h[16]) & 0x3) | 0x8];
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[k++] = '-';
        out[k++] = h[i];
    }
    out[k] = '\0';
}

/* score ARGV[1] in KEYS[1] at Redis time + ARGV[2] ms */
static const char owe_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "return 0\n";

/* claim up to ARGV[2] due ids of KEYS[1] for ARGV[1] ms (a lease: due again if we die) */
static const char claim_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])\n"
    "for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id) end\n"
    "return ids\n";

/* clear job KEYS[1]'s marker if it is still ARGV[1] (or gone); KEYS[2] the owed set */
static const char paid_lua[] =
    "local v = redis.call('HGET', KEYS[1], 'owed')\n"
    "if v == ARGV[1] then redis.call('HDEL', KEYS[1], 'owed', 'owed_tries', 'sent_STARTED', "
    "'sent_COMPLETED', 'sent_FAILED', 'sent_CANCELLED') end\n"
    "if v == ARGV[1] or not v then redis.call('ZREM', KEYS[2], ARGV[2]) end\n"
    "return 0\n";

static redisReply *eval(rte_redis *r, const char *script, int nkeys, const char **args, int nargs,
                        char *err, size_t errlen)
{
    const char *argv[8];
    size_t lens[8];
    char nk[4];
    int n = 0;

    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = nk;
    for (int i = 0; i < nargs && n < 8; i++)
        argv[n++] = args[i];
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return rte_redis_cmdargv(r, n, argv, lens, err, errlen);
}

static void owed_key(char *out, size_t len)
{
    snprintf(out, len, "%s:owed", BR.c.jobs.prefix);
}

/* br_events_owe - any thread */
int br_events_owe(rte_redis *r, const char *id, char *err, size_t errlen)
{
    char key[160], lease[24];
    owed_key(key, sizeof key);
    snprintf(lease, sizeof lease, "%lld", (long long)BR.c.jobs.lease_ms);
    const char *a[] = {key, id, lease};
    redisReply *rep = eval(r, owe_lua, 1, a, 3, err, errlen);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* br_events_owed_of - any thread */
void br_events_owed_of(rte_redis *r, const char *id, char *out, size_t len)
{
    char err[256];
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "HGET %s:j:%s owed", BR.c.jobs.prefix, id);
    int started = rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, "STARTED") != NULL;
    if (rep)
        freeReplyObject(rep);
    snprintf(out, len, "%s", started ? "STARTED ENDED" : "ENDED");
}

/* br_events_paid - any thread */
void br_events_paid(rte_redis *r, const char *id, const char *owed)
{
    char key[160], job[160], err[256];
    owed_key(key, sizeof key);
    snprintf(job, sizeof job, "%s:j:%s", BR.c.jobs.prefix, id);
    const char *a[] = {job, key, owed, id};
    redisReply *rep = eval(r, paid_lua, 2, a, 4, err, sizeof err);
    if (rep == NULL) {
        rte_log_warn("batch %s: events sent but the owed marker stays (%s); they will be sent "
                     "again",
                     id, err);
        return;
    }
    freeReplyObject(rep);
}

/* the sinks that already took owed event type of job id (sent_<type>; 0 if unknown) */
static unsigned sent_before(rte_redis *r, const char *id, const char *type)
{
    char err[256];
    unsigned v = 0;
    redisReply *rep =
        rte_redis_cmd(r, err, sizeof err, "HGET %s:j:%s sent_%s", BR.c.jobs.prefix, id, type);
    if (rep && rep->type == REDIS_REPLY_STRING)
        v = (unsigned)strtoul(rep->str, NULL, 10) & BR_SINKS_ALL;
    if (rep)
        freeReplyObject(rep);
    return v;
}

/* remember which sinks took owed event type, so a retry sends it only to the others */
static void sent_now(rte_redis *r, const char *id, const char *type, unsigned sinks)
{
    char err[256];
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "HSET %s:j:%s sent_%s %u", BR.c.jobs.prefix,
                                    id, type, sinks);
    if (rep)
        freeReplyObject(rep);
}

/* br_events_emit_owed - any thread */
int br_events_emit_owed(rte_redis *r, const br_job *j, const char *owed)
{
    int rc = 0;
    if (strstr(owed, "STARTED") != NULL) {
        unsigned before = sent_before(r, j->id, "STARTED");
        unsigned now = br_events_started(r, j, before);
        if (now != BR_SINKS_ALL) {
            if (now != before)
                sent_now(r, j->id, "STARTED", now);
            rc = -1;
        }
    }
    if (strstr(owed, "ENDED") != NULL && j->ended_ms > 0) {
        const char *type = br_events_final_type(j);
        unsigned before = sent_before(r, j->id, type);
        unsigned now = br_events_finished(r, j, before);
        if (now != BR_SINKS_ALL) {
            if (now != before)
                sent_now(r, j->id, type, now);
            rc = -1;
        }
    }
    if (rc == 0)
        br_events_paid(r, j->id, owed);
    return rc;
}

/* a failed retry of job id: due again after lease doubling per try, at most OWED_BACKOFF_MAX_MS */
static const char backoff_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end\n"
    "local n = redis.call('HINCRBY', KEYS[2], 'owed_tries', 1)\n"
    "if n > 6 then n = 6 end\n"
    "local d = tonumber(ARGV[2]) * 2 ^ (n - 1)\n"
    "if d > tonumber(ARGV[3]) then d = math.max(tonumber(ARGV[3]), tonumber(ARGV[2])) end\n"
    "redis.call('ZADD', KEYS[1], 'XX', now + d, ARGV[1])\n"
    "return n\n";

static void backoff(rte_redis *r, const char *id)
{
    char key[160], job[160], lease[24], cap[24], err[256];
    owed_key(key, sizeof key);
    snprintf(job, sizeof job, "%s:j:%s", BR.c.jobs.prefix, id);
    snprintf(lease, sizeof lease, "%lld", (long long)BR.c.jobs.lease_ms);
    snprintf(cap, sizeof cap, "%d", OWED_BACKOFF_MAX_MS);
    const char *a[] = {key, job, id, lease, cap};
    redisReply *rep = eval(r, backoff_lua, 2, a, 5, err, sizeof err);
    if (rep)
        freeReplyObject(rep);
}

/* count one owed event sent again; type lower case */
static void redelivered(const char *type)
{
    const char *v[] = {type};
    rte_counter_inc(BM.resent, v);
}

/* br_events_owed_tick - timer thread */
void br_events_owed_tick(rte_redis *r)
{
    char key[160], lease[24], max[8], err[256], id[RTE_JOBS_ID_MAX], owed[32];
    owed_key(key, sizeof key);
    snprintf(lease, sizeof lease, "%lld", (long long)BR.c.jobs.lease_ms);
    snprintf(max, sizeof max, "%d", OWED_CLAIM_MAX);
    const char *a[] = {key, lease, max};
    redisReply *rep = eval(r, claim_lua, 1, a, 3, err, sizeof err);
    if (rep == NULL) {
        rte_log_warn("batch jobs: cannot look for owed events (%s); next tick retries", err);
        return;
    }
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        br_job j;
        if (e->type != REDIS_REPLY_STRING || e->len >= sizeof id)
            continue;
        snprintf(id, sizeof id, "%s", e->str);
        redisReply *o =
            rte_redis_cmd(r, err, sizeof err, "HGET %s:j:%s owed", BR.c.jobs.prefix, id);
        if (o == NULL)
            continue;
        snprintf(owed, sizeof owed, "%s", o->type == REDIS_REPLY_STRING ? o->str : "");
        freeReplyObject(o);
        int got = owed[0] ? br_job_load(r, id, &j, err, sizeof err) : 0;
        if (got < 0)
            continue; /* Redis: the claim lapses and a later tick retries */
        if (got == 0) {
            /* nothing owed (paid meanwhile) or the job expired */
            br_events_paid(r, id, owed[0] ? owed : "-");
            continue;
        }
        if (strstr(owed, "STARTED") != NULL)
            redelivered("started");
        if (strstr(owed, "ENDED") != NULL && j.ended_ms > 0)
            redelivered(strcmp(br_events_final_type(&j), "COMPLETED") == 0   ? "completed"
                        : strcmp(br_events_final_type(&j), "CANCELLED") == 0 ? "cancelled"
                                                                             : "failed");
        int rc = br_events_emit_owed(r, &j, owed);
        br_job_clear(&j);
        if (rc == 0) {
            rte_log_info("batch %s: owed %s events sent again", id, owed);
            continue;
        }
        backoff(r, id);
        rte_log_warn("batch %s: owed %s events not taken by every sink; retried later", id, owed);
        /* a sink is down: the rest of the claim waits a lease rather than this tick */
        break;
    }
    freeReplyObject(rep);
}
