/*
 * cron_run.c - execute one fire: order, predict, filter, encode, pace, commit.
 *
 * See cron_run.h for the contract. The per-member loop is the hot path of
 * the service (bench/member-cron.sh): it touches only the snapshot, stack
 * buffers and the producer's queue. librdkafka copies each payload into its
 * own batch buffers; we retry briefly when its queue is full rather than
 * dropping or allocating.
 */
#include "cron_run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "member_cron.pb-c.h"
#include "rte/clock.h"
#include "rte/log.h"
#include "rte/metrics.h"
#include "rte/service.h"
#include "rte/topics.h"

#define TYPE_LIKELY "digital-twin.prediction.app_usage_likely"

cron_metrics cron_m;

/* cron_metrics_init - any thread, idempotent (families are registered once) */
void cron_metrics_init(void)
{
    static const char *const s[] = {"schedule", NULL};
    static const char *const st[] = {"schedule", "topic", NULL};
    static const char *const sr[] = {"schedule", "result", NULL};
    static const double dur[] = {0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600};
    static const double prob[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
    cron_m.emitted = rte_counter_new("member_cron_events_emitted_total",
                                     "events produced, per schedule and topic", st);
    cron_m.filtered = rte_counter_new("member_cron_members_filtered_total",
                                      "members a fire visited that the filters did not select", s);
    cron_m.fires =
        rte_counter_new("member_cron_fires_total",
                        "fire runs ended, by result (done, fenced, failed, drained)", sr);
    cron_m.fires_skipped = rte_counter_new("member_cron_fires_skipped_total",
                                           "missed fires the catch-up policy did not run", s);
    cron_m.takeovers = rte_counter_new("member_cron_fire_takeovers_total",
                                       "fires resumed from the cursor after another holder", s);
    cron_m.rate = rte_gauge_new("member_cron_emission_rate",
                                "events per second of the current or last run", s);
    cron_m.progress =
        rte_gauge_new("member_cron_fire_progress", "share of the directory walked, 0-1", s);
    cron_m.duration = rte_histogram_new("member_cron_run_duration_seconds",
                                        "wall time of one run of a fire", s, dur, 9);
    cron_m.probability =
        rte_histogram_new("member_cron_prediction_probability",
                          "predicted app-usage probability of selected members", s, prob, 9);
    cron_m.schedules = rte_gauge_new("member_cron_schedules", "schedules loaded", NULL);
    static const char *const r[] = {"result", NULL};
    cron_m.reloads = rte_counter_new("member_cron_schedule_reloads_total",
                                     "schedule file loads, by result (ok, refused)", r);
}

/* --- small helpers ------------------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* cron_jitter_offset_ms - any thread */
int64_t cron_jitter_offset_ms(const char *schedule, const char *member_id, int64_t window_ms)
{
    if (window_ms <= 0)
        return 0;
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, schedule);
    h = fnv1a(h ^ 0x1f, member_id);
    return (int64_t)(mix64(h) % (uint64_t)window_ms);
}

/* cron_event_id - any thread */
int cron_event_id(char *buf, size_t len, const char *schedule, int64_t fire_ms,
                  const char *member_id)
{
    return snprintf(buf, len, "%s/%" PRId64 "/%s", schedule, fire_ms, member_id);
}

/* RFC 3339 UTC, second precision: "2026-01-05T09:00:00Z" */
static void fmt_time(int64_t ms, char out[24])
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t sod = s - days * 86400, y;
    int m, d;
    rte_civil_from_days(days, &y, &m, &d);
    snprintf(out, 24, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

/* JSON string body (without quotes) of s into out */
static void json_escape(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 7 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, len - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

static void sleep_real_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- token bucket (real time) -------------------------------------------- */

typedef struct bucket {
    double rate, tokens, cap;
    int64_t last_ns;
} bucket;

static void bucket_init(bucket *b, double rate)
{
    b->rate = rate;
    b->cap = rate * 0.01 > 1 ? rate * 0.01 : 1; /* at most 10 ms worth of burst */
    b->tokens = 1;
    b->last_ns = mono_ns();
}

/* wait for one token; returns the ns slept */
static void bucket_take(bucket *b)
{
    if (b->rate <= 0)
        return;
    for (;;) {
        int64_t now = mono_ns();
        b->tokens += (double)(now - b->last_ns) * b->rate / 1e9;
        b->last_ns = now;
        if (b->tokens > b->cap)
            b->tokens = b->cap;
        if (b->tokens >= 1) {
            b->tokens -= 1;
            return;
        }
        int64_t wait_ns = (int64_t)((1 - b->tokens) / b->rate * 1e9);
        struct timespec ts = {wait_ns / 1000000000LL, (long)(wait_ns % 1000000000LL)};
        nanosleep(&ts, NULL);
    }
}

/* --- order ---------------------------------------------------------------- */

typedef struct slot {
    uint32_t off, idx;
} slot;

static int slot_cmp(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* members in order of their jitter offset (ties by index); NULL = index order */
static slot *jitter_order(const cron_schedule *s, rte_member_snapshot *snap, size_t n)
{
    if (s->jitter_ms <= 0 || n == 0)
        return NULL;
    slot *v = malloc(n * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const rte_member *m = rte_member_snapshot_at(snap, i);
        v[i].off = (uint32_t)cron_jitter_offset_ms(s->name, m->member_id, s->jitter_ms);
        v[i].idx = (uint32_t)i;
    }
    qsort(v, n, sizeof *v, slot_cmp);
    return v;
}

/* --- producing ------------------------------------------------------------ */

static int produce(rte_kafka_producer *p, const char *topic, const char *key, const void *buf,
                   size_t len)
{
    char err[256];
    for (int tries = 0;; tries++) {
        if (rte_kafka_produce(p, topic, key, strlen(key), buf, len, NULL, 0, err, sizeof err) == 0)
            return 0;
        if (!strstr(err, "Queue full") || tries > 30000 || rte_service_draining()) {
            rte_log_error("member-cron: %s; the fire stops here and resumes from its cursor", err);
            return -1;
        }
        sleep_real_ms(1); /* librdkafka's queue drains as batches are acknowledged */
    }
}

/* m's feature flags that are on, as map entries in v (pointers in p); their number */
static size_t flag_entries(const cron_run_opts *o, const rte_member *m,
                           Rte__V1__MemberContext__FeatureFlagsEntry *v,
                           Rte__V1__MemberContext__FeatureFlagsEntry **p)
{
    const char *const *names;
    size_t n = rte_member_snapshot_flags(o->snap, &names), k = 0;

    for (size_t i = 0; i < n; i++) {
        if (!(m->feature_flags & (1ULL << i)))
            continue;
        rte__v1__member_context__feature_flags_entry__init(&v[k]);
        v[k].key = (char *)names[i];
        v[k].value = 1;
        p[k] = &v[k];
        k++;
    }
    return k;
}

static int emit_member(const cron_run_opts *o, const rte_member *m, const cron_prediction *pr,
                       int likely)
{
    static char *const op_names[] = {"check_eligibility", "get_coverage", "view_benefits"};
    const cron_schedule *s = o->sched;
    int64_t now = rte_clock_now_ms();
    char event_id[256];
    cron_event_id(event_id, sizeof event_id, s->name, o->fire_ms, m->member_id);

    Rte__V1__Timestamp emitted = RTE__V1__TIMESTAMP__INIT;
    emitted.seconds = now / 1000;
    emitted.nanos = (int32_t)(now % 1000) * 1000000;
    Rte__V1__Timestamp checked = RTE__V1__TIMESTAMP__INIT;
    checked.seconds = m->last_check_ms / 1000;
    char *ops[3];
    size_t nops = 0;
    for (int b = 0; b < 3; b++)
        if (pr->ops & (1u << b))
            ops[nops++] = op_names[b];
    Rte__V1__ActivityPrediction act = RTE__V1__ACTIVITY_PREDICTION__INIT;
    act.app_usage_probability = pr->probability;
    act.n_predicted_operations = nops;
    act.predicted_operations = ops;
    act.confidence = pr->confidence;
    act.model_version = (char *)o->model->version;
    char *pop = (char *)m->population_id;
    Rte__V1__MemberContext ctx = RTE__V1__MEMBER_CONTEXT__INIT;
    ctx.sponsor_id = (char *)m->sponsor_id;
    ctx.n_population_ids = *pop ? 1 : 0;
    ctx.population_ids = &pop;
    ctx.has_rte_enabled = m->has_rte_enabled != 0;
    ctx.last_eligibility_check = m->last_check_ms >= 0 ? &checked : NULL;
    ctx.predicted_activity = &act;
    Rte__V1__MemberContext__FeatureFlagsEntry flag_v[RTE_MEMBER_MAX_FLAGS];
    Rte__V1__MemberContext__FeatureFlagsEntry *flag_p[RTE_MEMBER_MAX_FLAGS];
    ctx.n_feature_flags = flag_entries(o, m, flag_v, flag_p);
    ctx.feature_flags = flag_p;
    Rte__V1__MemberCronEvent ev = RTE__V1__MEMBER_CRON_EVENT__INIT;
    ev.member_id = (char *)m->member_id;
    ev.account_id = (char *)m->member_id;
    ev.schedule_name = (char *)s->name;
    ev.cron_expression = (char *)s->cron;
    ev.emitted_at = &emitted;
    ev.context = &ctx;
    ev.event_id = event_id;

    uint8_t buf[4096];
    size_t need = rte__v1__member_cron_event__get_packed_size(&ev);
    if (need > sizeof buf) {
        rte_log_error("member-cron: event for member of schedule %s is %zu bytes (limit %zu); "
                      "skipped",
                      s->name, need, sizeof buf);
        return 0;
    }
    size_t n = rte__v1__member_cron_event__pack(&ev, buf);
    if (produce(o->producer, RTE_TOPIC_MEMBER_CRON_EVENTS, m->member_id, buf, n) < 0)
        return -1;
    if (!likely)
        return 1;

    char ts[24], pt[24], mid[160], ver[160], json[1024];
    fmt_time(now, ts);
    fmt_time(pr->predicted_ms, pt);
    json_escape(m->member_id, mid, sizeof mid);
    json_escape(o->model->version, ver, sizeof ver);
    int jn = snprintf(
        json, sizeof json,
        "{\"type\":\"" TYPE_LIKELY "\",\"event_id\":\"%s/likely\",\"member_id\":\"%s\","
        "\"timestamp\":\"%s\",\"data\":{\"probability\":%.4f,\"predicted_time\":\"%s\","
        "\"confidence\":\"%s\",\"confidence_score\":%.4f,\"window_minutes\":%d,"
        "\"model_version\":\"%s\",\"schedule_name\":\"%s\"}}",
        event_id, mid, ts, (double)pr->probability, pt, cron_confidence_label(pr->confidence),
        (double)pr->confidence, o->model->window_minutes, ver, s->name);
    if (jn <= 0 || (size_t)jn >= sizeof json)
        return 1;
    if (produce(o->producer, RTE_TOPIC_APP_USAGE_LIKELY, m->member_id, json, (size_t)jn) < 0)
        return -1;
    return 2;
}

/* --- the run --------------------------------------------------------------- */

typedef struct series {
    rte_series *ev, *likely, *filtered, *rate, *progress, *prob;
} series;

/* advance the cursor under our token (retried briefly); enum cron_run_result or -1 to go on */
static int save_cursor(const cron_run_opts *o, int64_t pos, int64_t emitted_delta, int done)
{
    char err[256];
    int rc = -1;
    for (int attempt = 0; attempt < 5 && rc < 0; attempt++) {
        rc = cron_store_advance(o->store, o->sched->name, o->fire_ms, o->token, pos, emitted_delta,
                                done, rte_clock_now_ms(), err, sizeof err);
        if (rc < 0)
            sleep_real_ms(100 << attempt);
    }
    if (rc < 0) {
        rte_log_error("member-cron: schedule %s fire %" PRId64 ": cursor not saved (%s); the "
                      "lease expires and the fire resumes from the last saved cursor",
                      o->sched->name, o->fire_ms, err);
        return CRON_RUN_FAILED;
    }
    if (rc == 0) {
        rte_log_warn("member-cron: schedule %s fire %" PRId64 ": lease lost to another replica "
                     "(fenced); stopping this run",
                     o->sched->name, o->fire_ms);
        return CRON_RUN_FENCED;
    }
    return -1;
}

/* flush, then advance the cursor under our token; enum cron_run_result or -1 to go on */
static int commit(const cron_run_opts *o, cron_run_state *st, int64_t pos, int64_t emitted_delta,
                  int done)
{
    int64_t t0 = rte_clock_mono_ms();
    int left = rte_kafka_flush(o->producer, o->flush_timeout_ms);
    atomic_fetch_add(&st->flush_ms, rte_clock_mono_ms() - t0);
    atomic_fetch_add(&st->commits, 1);
    if (left > 0) {
        rte_log_error("member-cron: schedule %s fire %" PRId64 ": %d events not acknowledged "
                      "within %d ms; cursor stays at its last commit and the fire is retried",
                      o->sched->name, o->fire_ms, left, o->flush_timeout_ms);
        return CRON_RUN_FAILED;
    }
    return save_cursor(o, pos, emitted_delta, done);
}

/*
 * Pipelined cursor commits: at each batch boundary the run notes the
 * producer's last sequence number and keeps producing; once the delivery
 * watermark passes that number (every event before the boundary is
 * acknowledged) the cursor is saved. So a commit costs no flush, and a crash
 * still re-emits at most the events after the last saved cursor.
 */
#define PIPE 8

struct pending {
    int64_t pos, emitted;
    uint64_t seq;
};

struct pipeline {
    struct pending q[PIPE];
    int head, n;
    uint64_t failed0; /* failed delivery reports when the run started */
};

/* Save every pending cursor whose events are all acknowledged; wait up to
 * the flush timeout for the oldest when wait is set. enum cron_run_result
 * or -1 to go on. */
static int settle(const cron_run_opts *o, cron_run_state *st, struct pipeline *pl, int wait)
{
    int64_t t0 = rte_clock_mono_ms();

    while (pl->n > 0) {
        struct pending *h = &pl->q[pl->head];
        uint64_t failed, done = rte_kafka_delivered_seq(o->producer, &failed);
        if (failed != pl->failed0) {
            rte_log_error("member-cron: schedule %s fire %" PRId64 ": an event was not "
                          "delivered; cursor stays at its last commit and the fire is retried",
                          o->sched->name, o->fire_ms);
            return CRON_RUN_FAILED;
        }
        if (done < h->seq) {
            if (!wait)
                return -1;
            if (rte_clock_mono_ms() - t0 > o->flush_timeout_ms) {
                rte_log_error("member-cron: schedule %s fire %" PRId64 ": events not "
                              "acknowledged within %d ms; the fire is retried",
                              o->sched->name, o->fire_ms, o->flush_timeout_ms);
                return CRON_RUN_FAILED;
            }
            sleep_real_ms(1);
            continue;
        }
        int rc = save_cursor(o, h->pos, h->emitted, 0);
        if (rc >= 0)
            return rc;
        atomic_fetch_add(&st->commits, 1);
        pl->head = (pl->head + 1) % PIPE;
        pl->n--;
    }
    atomic_fetch_add(&st->flush_ms, rte_clock_mono_ms() - t0);
    return -1;
}

/* Queue a cursor commit at pos; waits only when PIPE commits are already pending. */
static int commit_later(const cron_run_opts *o, cron_run_state *st, struct pipeline *pl,
                        int64_t pos, int64_t emitted)
{
    int rc = settle(o, st, pl, pl->n == PIPE);
    if (rc >= 0)
        return rc;
    struct pending *t = &pl->q[(pl->head + pl->n) % PIPE];
    t->pos = pos;
    t->emitted = emitted;
    t->seq = rte_kafka_produced_seq(o->producer);
    pl->n++;
    return -1;
}

/* Emitted counts still waiting in the pipeline (folded into a flush-based commit). */
static int64_t pending_emitted(struct pipeline *pl)
{
    int64_t sum = 0;
    for (int i = 0; i < pl->n; i++)
        sum += pl->q[(pl->head + i) % PIPE].emitted;
    pl->n = 0;
    return sum;
}

/* cron_run - scheduler thread */
int cron_run(const cron_run_opts *o, cron_run_state *st)
{
    const cron_schedule *s = o->sched;
    size_t n = rte_member_snapshot_count(o->snap);
    slot *order = jitter_order(s, o->snap, n);
    const char *l1[] = {s->name, NULL};
    const char *l2[] = {s->name, RTE_TOPIC_MEMBER_CRON_EVENTS, NULL};
    const char *l3[] = {s->name, RTE_TOPIC_APP_USAGE_LIKELY, NULL};
    series se = {rte_metric_labels(cron_m.emitted, l2),  rte_metric_labels(cron_m.emitted, l3),
                 rte_metric_labels(cron_m.filtered, l1), rte_metric_labels(cron_m.rate, l1),
                 rte_metric_labels(cron_m.progress, l1), rte_metric_labels(cron_m.probability, l1)};
    bucket b;
    int64_t pos = o->cursor, committed = pos, emitted_since = 0, emitted_run = 0;
    int64_t t0 = rte_clock_mono_ms(), last_commit = t0;
    int64_t commit_every_ms = o->store->lease_ms / 3 > 0 ? o->store->lease_ms / 3 : 1;
    int rc = -1;
    struct pipeline pl = {.head = 0, .n = 0};

    rte_kafka_delivered_seq(o->producer, &pl.failed0);

    if (s->jitter_ms > 0 && !order && n > 0) {
        rte_log_error("member-cron: out of memory ordering %zu members for jitter", n);
        return CRON_RUN_FAILED;
    }
    /* the directory filters, resolved once per run by member_query (NULL: every member) */
    uint64_t *sel = NULL;
    size_t nsel = 0;
    char qerr[512];
    if (cron_schedule_match(s, o->snap, o->fire_ms, &sel, &nsel, qerr, sizeof qerr) < 0) {
        rte_log_error("member-cron: schedule %s fire %" PRId64 ": filters: %s", s->name, o->fire_ms,
                      qerr);
        free(order);
        return CRON_RUN_FAILED;
    }
    atomic_store(&st->total, (int64_t)n);
    atomic_store(&st->position, pos);
    bucket_init(&b, s->rate);
    while ((size_t)pos < n) {
        if (rte_service_draining()) {
            rc = commit(o, st, pos, emitted_since + pending_emitted(&pl), -1);
            if (rc < 0)
                rc = CRON_RUN_DRAINED;
            break;
        }
        size_t idx = order ? order[pos].idx : (size_t)pos;
        const rte_member *m = rte_member_snapshot_at(o->snap, idx);
        if (order) {
            int64_t due = o->fire_ms + order[pos].off;
            int64_t now = rte_clock_now_ms();
            if (now < due) {
                int64_t real = rte_clock_real_ms(due - now);
                sleep_real_ms(real < 50 ? (real < 1 ? 1 : real) : 50);
                if (rte_clock_mono_ms() - last_commit >= commit_every_ms) {
                    rc = commit(o, st, pos, emitted_since + pending_emitted(&pl), 0);
                    if (rc >= 0)
                        break;
                    emitted_since = 0;
                    committed = pos;
                    last_commit = rte_clock_mono_ms();
                }
                continue;
            }
        }
        cron_prediction pr;
        int selected = !sel || ((sel[idx >> 6] >> (idx & 63)) & 1);
        if (selected) { /* the directory filters hold: the model's part */
            cron_model_predict(o->model, m, o->fire_ms, &pr);
            selected = cron_schedule_wants(s, pr.probability);
        }
        if (selected) {
            bucket_take(&b);
            int likely = pr.probability >= s->threshold;
            int e = emit_member(o, m, &pr, likely);
            if (e < 0) {
                rc = CRON_RUN_FAILED;
                break;
            }
            if (e > 0) {
                emitted_since++;
                emitted_run++;
                rte_series_inc(se.ev);
                rte_series_observe(se.prob, pr.probability);
                if (e == 2) {
                    rte_series_inc(se.likely);
                    atomic_fetch_add(&st->likely, 1);
                }
            }
        } else {
            rte_series_inc(se.filtered);
            atomic_fetch_add(&st->filtered, 1);
        }
        pos++;
        if ((pos & 255) == 0) {
            atomic_store(&st->position, pos);
            atomic_store(&st->emitted, emitted_run);
        }
        int64_t now_mono = (pos & 63) == 0 ? rte_clock_mono_ms() : last_commit;
        if ((pos & 63) == 0 && pl.n > 0) {
            rc = settle(o, st, &pl, 0);
            if (rc >= 0)
                break;
        }
        if (pos - committed >= o->batch || now_mono - last_commit >= commit_every_ms) {
            if ((size_t)pos >= n)
                break; /* the final commit below marks the fire done */
            rc = commit_later(o, st, &pl, pos, emitted_since);
            if (rc >= 0)
                break;
            emitted_since = 0;
            committed = pos;
            last_commit = rte_clock_mono_ms();
            double secs = (double)(last_commit - t0) / 1000.0;
            if (secs > 0)
                rte_series_set(se.rate, (double)emitted_run / secs);
            rte_series_set(se.progress, n ? (double)pos / (double)n : 1.0);
        }
    }
    if (rc < 0 && (size_t)pos >= n) {
        rc = commit(o, st, pos, emitted_since + pending_emitted(&pl), 1);
        if (rc < 0)
            rc = CRON_RUN_DONE;
    }
    atomic_store(&st->position, pos);
    atomic_store(&st->emitted, emitted_run);
    double secs = (double)(rte_clock_mono_ms() - t0) / 1000.0;
    if (secs > 0)
        rte_series_set(se.rate, (double)emitted_run / secs);
    rte_series_set(se.progress, n ? (double)pos / (double)n : 1.0);
    rte_histogram_observe(cron_m.duration, l1, secs);
    free(order);
    free(sel);
    return rc;
}
