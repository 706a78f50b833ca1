/*
 * cron_service.c - member-cron's state, scheduler loop and admin endpoints.
 *
 * One scheduler thread per replica loops until drain:
 *   1. every member_cron.watch_interval: reload the schedules file, the
 *      model file (when their identity changed) and the member directory;
 *      a file that does not load is logged with schedule, line and reason,
 *      counted, and the previous set keeps running;
 *   2. plan: for every enabled schedule, the fires between its horizon and
 *      now, judged by the catch-up policy (cron_store_plan: exactly one
 *      replica's plan wins, so each skipped fire is counted and logged once);
 *   3. run: the oldest due fire whose lease it can take, to the end
 *      (cron_run); then straight back to 1 without sleeping.
 * Any number of replicas run this loop against the same Redis.
 *
 * Catch-up: a fire is on time when it is at most starting_deadline late
 * (0 = no limit). skip runs on-time fires only; latest also runs the newest
 * missed fire however late; all runs every fire within the deadline (with
 * no cap on their number). Everything else is skipped.
 */
#include "cron_service.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cron_model.h"
#include "cron_run.h"
#include "cron_sched.h"
#include "cron_store.h"
#include "rte/clock.h"
#include "rte/config.h"
#include "rte/log.h"
#include "rte/member_dir.h"
#include "rte/service.h"

#define MAX_DUE 8

typedef struct active {
    cron_schedules *s;
    cron_model model;
    atomic_int refs;
} active;

static struct {
    pthread_mutex_t mu; /* cur, running_* */
    active *cur;
    rte_member_dir *dir;
    char sched_path[512], model_path[512], members[1024], zoneinfo[256], prefix[128], owner[128];
    int64_t lease_ms, batch, poll_ms, watch_ms, flush_ms, max_plan;
    rte_file_id sched_id, model_id;
    /* the fire this replica is running */
    char running_name[64];
    int64_t running_fire;
    cron_run_state rs;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static active *acquire_active(void)
{
    pthread_mutex_lock(&G.mu);
    active *a = G.cur;
    if (a)
        atomic_fetch_add(&a->refs, 1);
    pthread_mutex_unlock(&G.mu);
    return a;
}

static void release_active(active *a)
{
    if (a && atomic_fetch_sub(&a->refs, 1) == 1) {
        cron_schedules_free(a->s);
        free(a);
    }
}

static void swap_active(cron_schedules *s, const cron_model *m)
{
    active *a = calloc(1, sizeof *a);
    if (!a)
        rte_panic("member-cron: out of memory swapping schedules");
    a->s = s;
    a->model = *m;
    atomic_store(&a->refs, 1);
    pthread_mutex_lock(&G.mu);
    active *old = G.cur;
    G.cur = a;
    pthread_mutex_unlock(&G.mu);
    release_active(old);
    rte_series_set(rte_metric_series0(cron_m.schedules), s->n);
}

static void count_reload(const char *result)
{
    const char *lv[] = {result, NULL};
    rte_counter_inc(cron_m.reloads, lv);
}

/* load both files; 0 and swapped, or -1 with err and nothing changed */
static int load_files(const char *sched_path, const char *model_path, char *err, size_t errlen)
{
    cron_model m;
    rte_file_id sid = {0}, mid = {0};
    rte_file_id_of(sched_path, &sid);
    rte_file_id_of(model_path, &mid);
    if (cron_model_load(model_path, &m, err, errlen) < 0) {
        count_reload("refused");
        return -1;
    }
    cron_schedules *s = cron_schedules_load(sched_path, G.zoneinfo, err, errlen);
    if (!s) {
        count_reload("refused");
        return -1;
    }
    swap_active(s, &m);
    G.sched_id = sid;
    G.model_id = mid;
    count_reload("ok");
    for (int i = 0; i < s->n; i++)
        rte_log_info("schedule %s: cron '%s' in %s, %s, rate %g/s, jitter %" PRId64
                     " ms, catch_up %s, threshold %.2f, %d filter(s)",
                     s->v[i].name, s->v[i].cron, rte_tz_name(s->v[i].tz),
                     s->v[i].enabled ? "enabled" : "disabled", s->v[i].rate, s->v[i].jitter_ms,
                     cron_catch_up_name(s->v[i].catch_up), s->v[i].threshold, s->v[i].nfilters);
    return 0;
}

static void read_paths(const rte_config *cfg)
{
    snprintf(G.sched_path, sizeof G.sched_path, "%s",
             rte_config_str(cfg, "member_cron.schedules", "services/member-cron/schedules.yaml"));
    snprintf(G.model_path, sizeof G.model_path, "%s",
             rte_config_str(cfg, "member_cron.model", "services/member-cron/model.yaml"));
}

/* every member_cron.* setting into G (fatal, naming the key, on a bad value) */
static void read_settings(const rte_config *cfg)
{
    read_paths(cfg);
    snprintf(G.members, sizeof G.members, "%s",
             rte_config_str(cfg, "member_cron.members", "run/members.jsonl"));
    snprintf(G.zoneinfo, sizeof G.zoneinfo, "%s",
             rte_config_str(cfg, "member_cron.zoneinfo", "/usr/share/zoneinfo"));
    snprintf(G.prefix, sizeof G.prefix, "%s",
             rte_config_str(cfg, "member_cron.key_prefix", "rte:cron:"));
    const char *rid = rte_config_str(cfg, "member_cron.replica_id", "");
    snprintf(G.owner, sizeof G.owner, "%s", *rid ? rid : rte_service_instance_id());
    G.lease_ms = rte_config_duration_ms(cfg, "member_cron.lease", 5000, 200, 600000);
    G.batch = rte_config_int(cfg, "member_cron.batch", 5000, 1, 10000000);
    G.poll_ms = rte_config_duration_ms(cfg, "member_cron.poll", 100, 5, 60000);
    G.watch_ms = rte_config_duration_ms(cfg, "member_cron.watch_interval", 1000, 50, 600000);
    G.flush_ms = (int)rte_config_duration_ms(cfg, "member_cron.flush_timeout", 30000, 100, 600000);
    G.max_plan = rte_config_int(cfg, "member_cron.max_plan", 10000, 1, 1000000);
}

/* cron_service_check - main thread: settings, and the files they name parse */
int cron_service_check(const rte_config *cfg, char *err, size_t errlen)
{
    cron_model m;
    cron_schedules *s;
    char why[300];

    read_settings(cfg);
    if (rte_member_dir_check_source(G.members, why, sizeof why) != 0) {
        snprintf(err, errlen, "member_cron.members (RTE_MEMBER_CRON_MEMBERS) %s", why);
        return -1;
    }
    if (cron_model_load(G.model_path, &m, err, errlen) < 0)
        return -1;
    s = cron_schedules_load(G.sched_path, G.zoneinfo, err, errlen);
    if (!s)
        return -1;
    cron_schedules_free(s);
    return 0;
}

/* cron_service_init - main thread, before serving */
int cron_service_init(const rte_config *cfg, char *err, size_t errlen)
{
    cron_metrics_init();
    read_settings(cfg);
    G.dir = rte_member_dir_new(G.members, err, errlen);
    if (!G.dir)
        return -1;
    char why[768];
    if (load_files(G.sched_path, G.model_path, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    rte_member_snapshot *snap = rte_member_dir_acquire(G.dir);
    rte_log_info("member-cron: replica %s, %zu members from %s, model %s, schedules %s, "
                 "lease %" PRId64 " ms, batch %" PRId64,
                 G.owner, rte_member_snapshot_count(snap), G.members, G.cur->model.version,
                 G.sched_path, G.lease_ms, G.batch);
    rte_member_snapshot_release(snap);
    return 0;
}

/* cron_service_reload - main thread (SIGHUP) */
int cron_service_reload(const rte_config *cfg, char *err, size_t errlen)
{
    read_paths(cfg);
    if (load_files(G.sched_path, G.model_path, err, errlen) < 0)
        return -1;
    rte_log_info("member-cron: schedules and model reloaded on SIGHUP");
    return 0;
}

/* cron_service_shutdown - main thread, after the scheduler returned */
void cron_service_shutdown(void)
{
    pthread_mutex_lock(&G.mu);
    active *a = G.cur;
    G.cur = NULL;
    pthread_mutex_unlock(&G.mu);
    release_active(a);
    rte_member_dir_free(G.dir);
    G.dir = NULL;
}

/* --- scheduler ------------------------------------------------------------ */

static void watch_files(void)
{
    rte_file_id sid, mid;
    int s_ok = rte_file_id_of(G.sched_path, &sid) == 0;
    int m_ok = rte_file_id_of(G.model_path, &mid) == 0;
    if ((s_ok && !rte_file_id_same(&sid, &G.sched_id)) ||
        (m_ok && !rte_file_id_same(&mid, &G.model_id))) {
        char err[768];
        if (load_files(G.sched_path, G.model_path, err, sizeof err) < 0) {
            rte_log_error("member-cron: %s; the previous schedules keep running", err);
            /* do not retry the same bad file every interval */
            if (s_ok)
                G.sched_id = sid;
            if (m_ok)
                G.model_id = mid;
        } else {
            rte_log_info("member-cron: schedules file changed; reloaded");
        }
    }
    char err[512];
    int r = rte_member_dir_reload_if_changed(G.dir, err, sizeof err);
    if (r < 0)
        rte_log_error("member-cron: member directory reload failed (%s); keeping the previous "
                      "snapshot",
                      err);
}

/* redis trouble is logged once per 10 s, not once per tick */
static int warn_now(void)
{
    static _Atomic int64_t last;
    int64_t now = rte_clock_mono_ms(), prev = atomic_load(&last);
    return now - prev >= 10000 && atomic_compare_exchange_strong(&last, &prev, now);
}

static void plan(cron_store *st, const cron_schedule *s, int64_t now)
{
    char err[512];
    int64_t horizon;
    if (cron_store_horizon(st, s->name, &horizon, err, sizeof err) < 0) {
        if (warn_now())
            rte_log_warn("member-cron: schedule %s: %s; planning retried next tick", s->name, err);
        return;
    }
    if (horizon < 0) {
        cron_store_init_horizon(st, s->name, now, err, sizeof err);
        return;
    }
    int64_t t = rte_cron_next(&s->expr, s->tz, horizon / 1000);
    if (t < 0 || t * 1000 > now)
        return;
    int64_t cap = G.max_plan;
    int64_t *fires = malloc((size_t)cap * sizeof *fires);
    int64_t *run = malloc((size_t)cap * sizeof *run);
    if (!fires || !run)
        goto out;
    int n = 0, nrun = 0;
    for (; t >= 0 && t * 1000 <= now && n < cap; t = rte_cron_next(&s->expr, s->tz, t))
        fires[n++] = t * 1000;
    for (int i = 0; i < n; i++) {
        int on_time = s->deadline_ms == 0 || now - fires[i] <= s->deadline_ms;
        int newest = i == n - 1;
        if (on_time || (newest && s->catch_up == CRON_CATCH_UP_LATEST))
            run[nrun++] = fires[i];
        else if (s->catch_up == CRON_CATCH_UP_ALL && s->deadline_ms == 0)
            run[nrun++] = fires[i];
    }
    int rc = cron_store_plan(st, s->name, horizon, fires[n - 1], run, nrun, err, sizeof err);
    if (rc < 0) {
        rte_log_warn("member-cron: schedule %s: planning failed (%s); retried next tick", s->name,
                     err);
    } else if (rc == 1) {
        const char *lv[] = {s->name, NULL};
        int skipped = 0;
        for (int i = 0, j = 0; i < n; i++) {
            if (j < nrun && run[j] == fires[i]) {
                j++;
                continue;
            }
            skipped++;
            rte_counter_inc(cron_m.fires_skipped, lv);
            if (skipped <= 20)
                rte_log_warn("member-cron: schedule %s: fire %" PRId64 " skipped (%" PRId64
                             " s late, catch_up %s, starting_deadline %" PRId64 " ms)",
                             s->name, fires[i], (now - fires[i]) / 1000,
                             cron_catch_up_name(s->catch_up), s->deadline_ms);
        }
        if (skipped > 20)
            rte_log_warn("member-cron: schedule %s: %d missed fires skipped in all", s->name,
                         skipped);
        for (int i = 0; i < nrun; i++)
            rte_log_info("member-cron: schedule %s: fire %" PRId64 " planned%s", s->name, run[i],
                         now - run[i] > 60000 ? " (catch-up)" : "");
    }
out:
    free(fires);
    free(run);
}

static const char *result_name(int rc)
{
    static const char *const n[] = {"done", "fenced", "failed", "drained"};
    return rc >= 0 && rc <= 3 ? n[rc] : "failed";
}

/* try to lease and run one fire; 1 if it ran */
static int run_fire(cron_store *st, const active *a, const cron_schedule *s, int64_t fire_ms)
{
    char err[512], when[24];
    int64_t token, cursor;
    int takeover;
    rte_member_snapshot *snap = rte_member_dir_acquire(G.dir);
    int64_t total = (int64_t)rte_member_snapshot_count(snap);
    int rc = cron_store_acquire(st, s->name, fire_ms, total, rte_clock_now_ms(), &token, &cursor,
                                &takeover, err, sizeof err);
    if (rc <= 0) {
        if (rc < 0 && warn_now())
            rte_log_warn("member-cron: schedule %s: lease request failed (%s)", s->name, err);
        rte_member_snapshot_release(snap);
        return 0;
    }
    snprintf(when, sizeof when, "%" PRId64, fire_ms);
    const char *lv[] = {s->name, NULL};
    if (takeover) {
        rte_counter_inc(cron_m.takeovers, lv);
        rte_log_warn("member-cron: schedule %s fire %s: taking over from cursor %" PRId64
                     " of %" PRId64 " (previous holder's lease expired or was released)",
                     s->name, when, cursor, total);
    } else {
        rte_log_info("member-cron: schedule %s fire %s: running %" PRId64
                     " members from cursor %" PRId64 " (token %" PRId64 ")",
                     s->name, when, total, cursor, token);
    }
    pthread_mutex_lock(&G.mu);
    snprintf(G.running_name, sizeof G.running_name, "%s", s->name);
    G.running_fire = fire_ms;
    atomic_store(&G.rs.emitted, 0);
    atomic_store(&G.rs.likely, 0);
    atomic_store(&G.rs.filtered, 0);
    atomic_store(&G.rs.commits, 0);
    atomic_store(&G.rs.flush_ms, 0);
    pthread_mutex_unlock(&G.mu);
    cron_run_opts o = {
        .sched = s,
        .model = &a->model,
        .snap = snap,
        .store = st,
        .producer = rte_service_producer(),
        .fire_ms = fire_ms,
        .token = token,
        .cursor = cursor,
        .batch = G.batch,
        .flush_timeout_ms = (int)G.flush_ms,
    };
    int64_t t0 = rte_clock_mono_ms();
    int res = cron_run(&o, &G.rs);
    const char *lr[] = {s->name, result_name(res), NULL};
    rte_counter_inc(cron_m.fires, lr);
    rte_log_info("member-cron: schedule %s fire %s: %s at %" PRId64 "/%" PRId64 " members, %" PRId64
                 " events (%" PRId64 " app_usage_likely), %" PRId64
                 " filtered out, %.3f s, %" PRId64 " cursor commits waited %" PRId64
                 " ms for broker acknowledgements",
                 s->name, when, result_name(res), atomic_load(&G.rs.position), total,
                 atomic_load(&G.rs.emitted), atomic_load(&G.rs.likely), atomic_load(&G.rs.filtered),
                 (double)(rte_clock_mono_ms() - t0) / 1000.0, atomic_load(&G.rs.commits),
                 atomic_load(&G.rs.flush_ms));
    pthread_mutex_lock(&G.mu);
    G.running_name[0] = '\0';
    pthread_mutex_unlock(&G.mu);
    rte_member_snapshot_release(snap);
    return 1;
}

static int is_manual(cron_store *st, const char *sched, int64_t fire_ms)
{
    cron_fire_info fi;
    char err[256];
    return cron_store_fire_info(st, sched, fire_ms, &fi, err, sizeof err) == 1 && fi.manual;
}

static int run_one_due(cron_store *st, const active *a, int64_t now)
{
    char err[512];
    for (int i = 0; i < a->s->n; i++) {
        const cron_schedule *s = &a->s->v[i];
        int64_t due[MAX_DUE];
        int n = cron_store_due(st, s->name, now, due, MAX_DUE, err, sizeof err);
        for (int k = 0; k < n && !rte_service_draining(); k++) {
            if (!s->enabled && !is_manual(st, s->name, due[k]))
                continue;
            if (run_fire(st, a, s, due[k]))
                return 1;
        }
    }
    return 0;
}

/* cron_service_scheduler - the scheduler timer's thread */
void cron_service_scheduler(void *arg)
{
    (void)arg;
    cron_store st = {rte_service_redis(), G.prefix, G.owner, G.lease_ms};
    int64_t last_watch = rte_clock_mono_ms();
    while (!rte_service_draining()) {
        if (rte_clock_mono_ms() - last_watch >= G.watch_ms) {
            watch_files();
            last_watch = rte_clock_mono_ms();
        }
        active *a = acquire_active();
        if (!a)
            break;
        int64_t now = rte_clock_now_ms();
        for (int i = 0; i < a->s->n && !rte_service_draining(); i++)
            if (a->s->v[i].enabled)
                plan(&st, &a->s->v[i], now);
        int ran = rte_service_draining() ? 0 : run_one_due(&st, a, now);
        release_active(a);
        if (!ran)
            usleep((useconds_t)G.poll_ms * 1000);
    }
}

/* --- admin ------------------------------------------------------------------- */

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char buf[40];
    if (ms < 0) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    rte_clock_format(ms, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

static cJSON *fire_json(cron_store *st, const char *sched, int64_t fire_ms)
{
    cron_fire_info fi;
    char err[256];
    if (cron_store_fire_info(st, sched, fire_ms, &fi, err, sizeof err) != 1)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    add_time(f, "fire_time", fire_ms);
    cJSON_AddNumberToObject(f, "fire_ms", (double)fire_ms);
    cJSON_AddStringToObject(f, "state", fi.state);
    cJSON_AddBoolToObject(f, "manual", fi.manual);
    int64_t pos = fi.cursor;
    pthread_mutex_lock(&G.mu);
    if (G.running_name[0] && strcmp(G.running_name, sched) == 0 && G.running_fire == fire_ms)
        pos = atomic_load(&G.rs.position);
    pthread_mutex_unlock(&G.mu);
    cJSON_AddNumberToObject(f, "cursor", (double)pos);
    cJSON_AddNumberToObject(f, "total", (double)fi.total);
    cJSON_AddNumberToObject(f, "progress",
                            fi.total > 0 ? (double)pos / (double)fi.total
                                         : (strcmp(fi.state, "done") == 0 ? 1.0 : 0.0));
    cJSON_AddNumberToObject(f, "emitted", (double)fi.emitted);
    cJSON_AddNumberToObject(f, "takeovers", (double)fi.takeovers);
    cJSON_AddStringToObject(f, "owner", fi.owner);
    add_time(f, "started_at", fi.started_ms > 0 ? fi.started_ms : -1);
    add_time(f, "finished_at", fi.finished_ms > 0 ? fi.finished_ms : -1);
    return f;
}

/* cron_admin_list - HTTP loop thread */
void cron_admin_list(rte_http_req *req, void *arg)
{
    (void)arg;
    active *a = acquire_active();
    if (!a) {
        rte_http_error(req, 503, "no schedules loaded");
        return;
    }
    cron_store st = {rte_service_redis(), G.prefix, G.owner, G.lease_ms};
    int64_t now = rte_clock_now_ms();
    char err[256];
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "replica", G.owner);
    add_time(doc, "now", now);
    cJSON_AddStringToObject(doc, "model_version", a->model.version);
    cJSON *arr = cJSON_AddArrayToObject(doc, "schedules");
    for (int i = 0; i < a->s->n; i++) {
        const cron_schedule *s = &a->s->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "cron", s->cron);
        cJSON_AddStringToObject(o, "timezone", rte_tz_name(s->tz));
        cJSON_AddBoolToObject(o, "enabled", s->enabled);
        cJSON_AddNumberToObject(o, "rate", s->rate);
        cJSON_AddNumberToObject(o, "jitter_ms", (double)s->jitter_ms);
        cJSON_AddStringToObject(o, "catch_up", cron_catch_up_name(s->catch_up));
        cJSON_AddNumberToObject(o, "starting_deadline_ms", (double)s->deadline_ms);
        cJSON_AddNumberToObject(o, "threshold", s->threshold);
        cJSON_AddNumberToObject(o, "filters", s->nfilters);
        int64_t next = s->enabled ? rte_cron_next(&s->expr, s->tz, now / 1000) : -1;
        add_time(o, "next_fire", next >= 0 ? next * 1000 : -1);
        int64_t last = -1;
        cron_store_last_fire(&st, s->name, &last, err, sizeof err);
        add_time(o, "last_fire", last);
        cJSON *lf = last >= 0 ? fire_json(&st, s->name, last) : NULL;
        if (lf)
            cJSON_AddItemToObject(o, "last", lf);
        else
            cJSON_AddNullToObject(o, "last");
        int64_t due[MAX_DUE];
        int n = cron_store_due(&st, s->name, INT64_MAX / 2, due, MAX_DUE, err, sizeof err);
        cJSON *pend = cJSON_AddArrayToObject(o, "pending");
        cJSON *running = NULL;
        for (int k = 0; k < n; k++) {
            cJSON *f = fire_json(&st, s->name, due[k]);
            if (!f)
                continue;
            const cJSON *state = cJSON_GetObjectItem(f, "state");
            if (!running && cJSON_IsString(state) && strcmp(state->valuestring, "running") == 0)
                running = cJSON_Duplicate(f, 1);
            cJSON_AddItemToArray(pend, f);
        }
        if (running)
            cJSON_AddItemToObject(o, "running", running);
        else
            cJSON_AddNullToObject(o, "running");
        cJSON_AddItemToArray(arr, o);
    }
    release_active(a);
    rte_http_respond_json(req, 200, doc);
    cJSON_Delete(doc);
}

/* cron_admin_run - HTTP loop thread */
void cron_admin_run(rte_http_req *req, void *arg)
{
    (void)arg;
    const char *tail = rte_http_req_tail(req);
    char name[64];
    size_t len = strcspn(tail, "/");
    if (len == 0 || len >= sizeof name || strcmp(tail + len, "/run") != 0) {
        rte_http_error(req, 404, "expected POST /v1/schedules/{name}/run");
        return;
    }
    memcpy(name, tail, len);
    name[len] = '\0';
    active *a = acquire_active();
    const cron_schedule *s = a ? cron_schedules_find(a->s, name) : NULL;
    if (!s) {
        release_active(a);
        rte_http_error(req, 404, "no schedule named '%s'", name);
        return;
    }
    cron_store st = {rte_service_redis(), G.prefix, G.owner, G.lease_ms};
    char err[256];
    int64_t fire = rte_clock_now_ms();
    int rc = cron_store_create(&st, s->name, fire, 1, err, sizeof err);
    release_active(a);
    if (rc < 0) {
        rte_http_error(req, 503, "redis: %s", err);
        return;
    }
    if (rc == 0) {
        rte_http_error(req, 409, "a fire of '%s' at this instant already exists", name);
        return;
    }
    rte_log_info("member-cron: schedule %s: manual fire requested", name);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "schedule", name);
    add_time(doc, "fire_time", fire);
    cJSON_AddNumberToObject(doc, "fire_ms", (double)fire);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/%" PRId64 "/", name, fire);
    cJSON_AddStringToObject(doc, "event_id_prefix", prefix);
    rte_http_respond_json(req, 202, doc);
    cJSON_Delete(doc);
}
