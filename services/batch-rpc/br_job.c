/*
 * br_job.c - a batch job as stored in its Redis hash (br.h, br_job_load).
 *
 * Fields (all strings; the jobs module adds ended, ended_ms, evms):
 *   caller service cjid     who submitted it, client_service_name, client_job_id
 *   status                  BatchStatus as a decimal
 *   query cc                1 if selected by MemberQuery; CacheControl
 *   total completed failed hits misses refreshed rt_calls sb_calls dups cancelled
 *   submitted_ms start_ms started_ms ended_ms eta_ms   clock ms
 *   dur_sum dur_n           real-time check time (ms) summed, and how many
 *   ecode emsg reason       why it failed / was cancelled
 *   sb_ids                  Stedi batch ids, comma-separated
 *   spread_ms chunks chunks_done multi   load spreading (br_exec.c)
 *   groups                  the members' time-zone groups: "zone start_ms first n"
 *                           per group, ';' between (br_plan_groups_format; absent
 *                           on jobs stored before member time zones: one group)
 *   opts                    the resolved BatchExecutionOptions, protobuf as hex
 * Raw member ids are never in the hash (they are list values of the job).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "rte/crypto.h"

static void str(const redisReply *h, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s", rte_jobs_field(h, name, ""));
}

/* br_job_load - caller's thread owns r */
int br_job_load(rte_redis *r, const char *id, br_job *j, char *err, size_t errlen)
{
    redisReply *h;
    const char *hex;

    memset(j, 0, sizeof *j);
    h = rte_jobs_get(r, &BR.c.jobs, id, err, errlen);
    if (h == NULL)
        return strstr(err, "jobs: job id") ? 0 : -1;
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        freeReplyObject(h);
        return 0;
    }
    snprintf(j->id, sizeof j->id, "%s", id);
    str(h, "caller", j->caller, sizeof j->caller);
    str(h, "service", j->service, sizeof j->service);
    str(h, "cjid", j->cjid, sizeof j->cjid);
    str(h, "ecode", j->ecode, sizeof j->ecode);
    str(h, "emsg", j->emsg, sizeof j->emsg);
    str(h, "reason", j->reason, sizeof j->reason);
    j->status = (int)rte_jobs_field_ll(h, "status", 0);
    j->from_query = (int)rte_jobs_field_ll(h, "query", 0);
    j->cache_control = (int)rte_jobs_field_ll(h, "cc", 0);
    j->total = (long)rte_jobs_field_ll(h, "total", 0);
    j->completed = (long)rte_jobs_field_ll(h, "completed", 0);
    j->failed = (long)rte_jobs_field_ll(h, "failed", 0);
    j->hits = (long)rte_jobs_field_ll(h, "hits", 0);
    j->misses = (long)rte_jobs_field_ll(h, "misses", 0);
    j->refreshed = (long)rte_jobs_field_ll(h, "refreshed", 0);
    j->rt_calls = (long)rte_jobs_field_ll(h, "rt_calls", 0);
    j->sb_calls = (long)rte_jobs_field_ll(h, "sb_calls", 0);
    j->dups = (long)rte_jobs_field_ll(h, "dups", 0);
    j->cancelled = (long)rte_jobs_field_ll(h, "cancelled", 0);
    j->submitted_ms = rte_jobs_field_ll(h, "submitted_ms", 0);
    j->start_ms = rte_jobs_field_ll(h, "start_ms", 0);
    j->started_ms = rte_jobs_field_ll(h, "started_ms", 0);
    j->ended_ms = rte_jobs_field_ll(h, "ended_ms", 0);
    j->eta_ms = rte_jobs_field_ll(h, "eta_ms", 0);
    j->dur_sum_ms = rte_jobs_field_ll(h, "dur_sum", 0);
    j->dur_n = (long)rte_jobs_field_ll(h, "dur_n", 0);
    j->spread_ms = rte_jobs_field_ll(h, "spread_ms", 0);
    j->chunks = (long)rte_jobs_field_ll(h, "chunks", 0);
    j->chunks_done = (long)rte_jobs_field_ll(h, "chunks_done", 0);
    j->multi = (int)rte_jobs_field_ll(h, "multi", 0);
    j->sb_ids = strdup(rte_jobs_field(h, "sb_ids", ""));
    j->groups = strdup(rte_jobs_field(h, "groups", ""));
    hex = rte_jobs_field(h, "opts", "");
    size_t n = strlen(hex) / 2;
    uint8_t *buf = malloc(n + 1);
    if (buf != NULL && rte_hex_decode(hex, buf, n) == (int)n)
        j->opts = rte__v1__batch_execution_options__unpack(NULL, n, buf);
    free(buf);
    freeReplyObject(h);
    if (j->opts == NULL || j->sb_ids == NULL || j->groups == NULL) {
        snprintf(err, errlen, "batch %s: stored options unreadable", id);
        br_job_clear(j);
        return -1;
    }
    return 1;
}

/* br_job_clear - any thread */
void br_job_clear(br_job *j)
{
    free(j->sb_ids);
    free(j->groups);
    j->groups = NULL;
    if (j->opts)
        rte__v1__batch_execution_options__free_unpacked(j->opts, NULL);
    j->sb_ids = NULL;
    j->opts = NULL;
}

/* br_ts - pure */
void br_ts(Rte__V1__Timestamp *t, int64_t ms)
{
    rte__v1__timestamp__init(t);
    t->seconds = ms / 1000;
    t->nanos = (int32_t)(ms % 1000) * 1000000;
}

/* br_job_progress - pure */
void br_job_progress(const br_job *j, br_progress *out)
{
    memset(out, 0, sizeof *out);
    rte__v1__batch_progress__init(&out->p);
    out->p.total_members = (int32_t)j->total;
    out->p.completed = (int32_t)j->completed;
    out->p.failed = (int32_t)j->failed;
    long pending = j->total - j->completed - j->failed - j->cancelled;
    out->p.pending = (int32_t)(pending > 0 && !br_status_final(j->status) ? pending : 0);
    out->p.cache_hits = (int32_t)j->hits;
    out->p.cache_misses = (int32_t)j->misses;
    rte__v1__duration__init(&out->avg);
    if (j->dur_n > 0) {
        int64_t avg = j->dur_sum_ms / j->dur_n;
        out->avg.seconds = avg / 1000;
        out->avg.nanos = (int32_t)(avg % 1000) * 1000000;
    }
    out->p.avg_duration = &out->avg;
    /* a job not started yet says when it is scheduled to start */
    int64_t started = j->started_ms > 0 ? j->started_ms : j->start_ms;
    if (started > 0) {
        br_ts(&out->started, started);
        out->p.started_at = &out->started;
    }
    br_ts(&out->eta, br_status_final(j->status) && j->ended_ms ? j->ended_ms : j->eta_ms);
    out->p.estimated_completion = &out->eta;
}
