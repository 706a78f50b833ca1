/*
 * br_plan.c - strategy, window and estimates of a job (contract in br_plan.h).
 *
 * Local times are the tz module's "civil seconds encoded as UTC": the hour
 * of day is local % 86400 / 3600, and a local opening time goes back to an
 * instant through rte_tz_resolve (a gap takes the hour after it).
 */
#include "br_plan.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "rte/crypto.h"
#include "rte/log.h"
#include "rte/tz.h"

#define MIN_MS 60000LL
#define DAY_S 86400LL

enum {
    W_ANY = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_ANY,
    W_BUSINESS = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_BUSINESS_HOURS,
    W_MORNING = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_MORNING,
    W_EVENING = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_EVENING,
    W_LOW = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_LOW_UTILIZATION,
    W_ENGAGE = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_OPTIMAL_MEMBER_ENGAGEMENT,
};

enum {
    S_OPTIMAL = RTE__V1__BATCH_EXECUTION_OPTIONS__STRATEGY__STRATEGY_OPTIMAL,
    S_BATCH = RTE__V1__BATCH_EXECUTION_OPTIONS__STRATEGY__STRATEGY_BATCH_ONLY,
    S_REALTIME = RTE__V1__BATCH_EXECUTION_OPTIONS__STRATEGY__STRATEGY_REALTIME_ONLY,
    P_LOW = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_LOW,
    P_HIGH = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_HIGH,
};

static int64_t local_s(const rte_tz *tz, int64_t t_s)
{
    return t_s + (tz ? rte_tz_offset(tz, t_s) : 0);
}

/* the instant of local civil time l in tz */
static int64_t instant(const rte_tz *tz, int64_t l)
{
    int64_t out[2];
    if (tz == NULL)
        return l;
    if (rte_tz_resolve(tz, l, out) > 0)
        return out[0];
    /* in a gap: the same wall time an hour later exists */
    if (rte_tz_resolve(tz, l + 3600, out) > 0)
        return out[0];
    return l - rte_tz_offset(tz, l);
}

/* hours [open, close) of a fixed window; 0 if the window has none */
static int hours(int window, int peak, int *open, int *close)
{
    switch (window) {
    case W_BUSINESS:
        *open = 9, *close = 17;
        return 1;
    case W_MORNING:
        *open = 6, *close = 10;
        return 1;
    case W_EVENING:
        *open = 17, *close = 22;
        return 1;
    case W_LOW:
        *open = 1, *close = 5;
        return 1;
    case W_ENGAGE:
        /* warm 1-2 h before the members' busiest hour (source: ATC's "1-2 hours BEFORE");
         * without usage data, the morning window (the source's fallback) */
        if (peak < 0)
            return hours(W_MORNING, -1, open, close);
        *open = (peak + 22) % 24;
        *close = *open + 1;
        return 1;
    default:
        return 0;
    }
}

static int weekday(int64_t l)
{
    int64_t days = l >= 0 ? l / DAY_S : (l - DAY_S + 1) / DAY_S;
    return (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4); 0 = Sunday */
}

/* br_plan_window_start - any thread */
int64_t br_plan_window_start(int window, int64_t now_ms, int peak_hour)
{
    return br_plan_window_start_tz(window, now_ms, peak_hour, NULL);
}

/* br_plan_window_start_tz - any thread */
int64_t br_plan_window_start_tz(int window, int64_t now_ms, int peak_hour, const rte_tz *tz)
{
    int open, close;
    if (tz == NULL)
        tz = BR.tz;
    int64_t now_s = now_ms / 1000, l = local_s(tz, now_s);
    int64_t day = (l >= 0 ? l / DAY_S : (l - DAY_S + 1) / DAY_S) * DAY_S;
    int h = (int)((l - day) / 3600);

    if (!hours(window, peak_hour, &open, &close))
        return now_ms;
    int business = window == W_BUSINESS;
    if (h >= open && h < close && !(business && (weekday(l) == 0 || weekday(l) == 6)))
        return now_ms;
    int64_t cand = day + open * 3600LL;
    if (cand <= l)
        cand += DAY_S;
    while (business && (weekday(cand) == 0 || weekday(cand) == 6))
        cand += DAY_S;
    return instant(tz, cand) * 1000;
}

static uint32_t rnd(uint32_t n)
{
    uint32_t v = 0;
    if (n == 0)
        return 0;
    rte_random_bytes(&v, sizeof v);
    return v % n;
}

static int64_t dur_ms(const Rte__V1__Duration *d)
{
    return d ? d->seconds * 1000 + d->nanos / 1000000 : 0;
}

/* br_plan_peak_hour - any thread */
int br_plan_peak_hour(const rte_member *const *m, size_t n)
{
    double sum[24] = {0};
    int best = -1;
    for (size_t i = 0; i < n; i++)
        for (int h = 0; m[i] && h < 24; h++)
            sum[h] += m[i]->usage_by_hour[h];
    for (int h = 0; h < 24; h++)
        if (sum[h] > 0 && (best < 0 || sum[h] > sum[best]))
            best = h;
    return best;
}

/* br_plan_make - any thread */
void br_plan_make(const Rte__V1__BatchExecutionOptions *o, size_t n, const br_plan_load *load,
                  int64_t now_ms, int64_t jitter_ms, br_plan *p)
{
    int strategy = o ? (int)o->strategy : S_OPTIMAL;
    int priority = o ? (int)o->priority : 0;
    int window = o ? (int)o->scheduling_window : W_ANY;
    int free_slots = load->slots_in_use < 0 ? 0 : load->slots_limit - load->slots_in_use;
    int64_t l = local_s(BR.tz, now_ms / 1000);
    int hour = (int)(((l % DAY_S) + DAY_S) % DAY_S / 3600);

    memset(p, 0, sizeof *p);
    p->priority = priority;
    p->window = window;
    if (strategy != S_OPTIMAL) {
        p->strategy = strategy;
        snprintf(p->why, sizeof p->why, "requested");
    } else if (priority == P_LOW) {
        p->strategy = S_BATCH;
        snprintf(p->why, sizeof p->why, "priority LOW: batch API");
    } else if (n < 100) {
        p->strategy = S_REALTIME;
        snprintf(p->why, sizeof p->why, "fewer than 100 members: real-time");
    } else if (n > 1000) {
        p->strategy = S_BATCH;
        snprintf(p->why, sizeof p->why, "more than 1,000 members: batch API");
    } else if (priority == P_HIGH && free_slots >= 5 && !(hour >= 1 && hour < 5)) {
        p->strategy = S_REALTIME;
        snprintf(p->why, sizeof p->why, "100-1,000 members, HIGH, low load: real-time");
    } else {
        p->strategy = S_BATCH;
        snprintf(p->why, sizeof p->why, "100-1,000 members, %s: batch API",
                 priority != P_HIGH ? "NORMAL"
                 : free_slots < 5   ? "high load"
                                    : "off-peak");
    }
    /* when */
    if (window == W_ANY) {
        double use = load->slots_in_use < 0 || load->slots_limit <= 0
                         ? 0
                         : (double)load->slots_in_use / load->slots_limit;
        if (use < 0.3)
            p->start_ms = now_ms;
        else if (use < 0.7)
            p->start_ms = now_ms + 30 * MIN_MS + rnd(30 * 60) * 1000LL;
        else {
            p->start_ms = br_plan_window_start(W_LOW, now_ms, -1);
            p->zoned = 1;
        }
    } else {
        p->zoned = 1;
        p->start_ms = br_plan_window_start(window, now_ms, load->peak_hour);
    }
    if (p->start_ms > now_ms && jitter_ms > 0)
        p->start_ms += rnd((uint32_t)(jitter_ms / 1000 + 1)) * 1000LL;
    /* how fast, how long, how often */
    p->max_conc =
        o && o->max_concurrent_requests > 0 ? o->max_concurrent_requests : BR.c.realtime_workers;
    if (p->max_conc > BR.c.realtime_workers)
        p->max_conc = BR.c.realtime_workers;
    p->timeout_ms = o && dur_ms(o->timeout) > 0 ? dur_ms(o->timeout) : BR.c.timeout_ms;
    const Rte__V1__RetryConfig *rc = o ? o->retry_config : NULL;
    p->retry_max = rc && rc->max_attempts > 0 ? rc->max_attempts : 3;
    p->retry_initial_ms =
        rc && dur_ms(rc->initial_interval) > 0 ? dur_ms(rc->initial_interval) : 1000;
    p->retry_max_ms = rc && dur_ms(rc->max_interval) > 0 ? dur_ms(rc->max_interval) : 60000;
    if (p->retry_max_ms < p->retry_initial_ms)
        p->retry_max_ms = p->retry_initial_ms;
    p->retry_mult = rc && rc->backoff_multiplier > 0 ? rc->backoff_multiplier : 2.0;
    int open, close;
    if (window != W_ANY && hours(window, load->peak_hour, &open, &close))
        p->spread_ms = (int64_t)(close - open) * 3600 * 1000;
    if (p->strategy == S_BATCH && n > 50000 && window == W_ANY && priority == P_LOW) {
        /* source: "distributeAcrossWindows": 10k chunks over low-utilization, morning and
         * evening windows in turn; the first chunk waits for the next low-utilization one */
        p->multi = 1;
        p->zoned = 1;
        p->spread_ms = 0;
        p->start_ms = br_plan_window_start(W_LOW, now_ms, -1);
    }
    if (p->strategy == S_BATCH) {
        p->chunks = (int)((n + (size_t)BR.c.batch_chunk - 1) / (size_t)BR.c.batch_chunk);
        /* three windows a day: a multi-window job without a timeout of its own gets the
         * default after its last window, not from its first (8 h would end it in the first) */
        if (p->multi && !(o && dur_ms(o->timeout) > 0))
            p->timeout_ms += (int64_t)((p->chunks + 2) / 3) * DAY_S * 1000;
        p->eta_ms = p->start_ms + BR.c.batch_eta_ms;
    } else {
        p->chunks = (int)((n + (size_t)BR.c.chunk - 1) / (size_t)BR.c.chunk);
        size_t rounds = (n + (size_t)p->max_conc - 1) / (size_t)p->max_conc;
        p->eta_ms = p->start_ms + (int64_t)rounds * BR.c.check_eta_ms;
    }
}

static void set_dur(Rte__V1__Duration *d, int64_t ms)
{
    rte__v1__duration__init(d);
    d->seconds = ms / 1000;
    d->nanos = (int32_t)(ms % 1000) * 1000000;
}

/* br_plan_resolved - any thread */
void br_plan_resolved(const br_plan *p, const Rte__V1__BatchExecutionOptions *o, br_resolved *r)
{
    static char default_topic[] = "domain.rte.v1.batch_job_events";
    const Rte__V1__NotificationPreferences *n = o ? o->notifications : NULL;

    memset(r, 0, sizeof *r);
    rte__v1__batch_execution_options__init(&r->o);
    r->o.priority = (Rte__V1__BatchExecutionOptions__Priority)p->priority;
    r->o.strategy = (Rte__V1__BatchExecutionOptions__Strategy)p->strategy;
    r->o.scheduling_window = (Rte__V1__SchedulingWindow)p->window;
    r->o.max_concurrent_requests = p->max_conc;
    set_dur(&r->timeout, p->timeout_ms);
    r->o.timeout = &r->timeout;
    rte__v1__retry_config__init(&r->retry);
    r->retry.max_attempts = p->retry_max;
    set_dur(&r->initial, p->retry_initial_ms);
    set_dur(&r->maxi, p->retry_max_ms);
    r->retry.initial_interval = &r->initial;
    r->retry.max_interval = &r->maxi;
    r->retry.backoff_multiplier = (float)p->retry_mult;
    r->o.retry_config = &r->retry;
    r->o.callback_url = o && o->callback_url ? o->callback_url : (char *)"";
    rte__v1__notification_preferences__init(&r->notif);
    r->notif._kafka_topic_case = RTE__V1__NOTIFICATION_PREFERENCES___KAFKA_TOPIC_KAFKA_TOPIC;
    r->notif.kafka_topic =
        n && n->_kafka_topic_case && n->kafka_topic[0] ? n->kafka_topic : default_topic;
    if (n && n->_callback_url_case && n->callback_url[0]) {
        r->notif._callback_url_case = RTE__V1__NOTIFICATION_PREFERENCES___CALLBACK_URL_CALLBACK_URL;
        r->notif.callback_url = n->callback_url;
    } else if (o && o->callback_url && o->callback_url[0]) {
        r->notif._callback_url_case = RTE__V1__NOTIFICATION_PREFERENCES___CALLBACK_URL_CALLBACK_URL;
        r->notif.callback_url = o->callback_url;
    }
    if (n) {
        r->notif.n_event_types = n->n_event_types;
        r->notif.event_types = n->event_types;
        r->notif.delivery_mode = n->delivery_mode;
    } else {
        r->notif.delivery_mode =
            RTE__V1__NOTIFICATION_PREFERENCES__DELIVERY_MODE__DELIVERY_AT_LEAST_ONCE;
    }
    r->o.notifications = &r->notif;
}

/* --- member time zones ------------------------------------------------------ */

static pthread_mutex_t zone_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char name[64];
    rte_tz *tz; /* NULL: the name did not load */
} zone_cache[BR_PLAN_GROUPS_MAX * 2];
static int zone_n;

/* br_plan_zone - any thread; takes zone_mu */
const rte_tz *br_plan_zone(const char *name)
{
    const rte_tz *out = NULL;
    char err[256];
    int i;

    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof zone_cache[0].name ||
        (BR.c.time_zone && strcmp(name, BR.c.time_zone) == 0))
        return NULL;
    pthread_mutex_lock(&zone_mu);
    for (i = 0; i < zone_n; i++)
        if (strcmp(zone_cache[i].name, name) == 0)
            break;
    if (i == zone_n && zone_n < (int)(sizeof zone_cache / sizeof zone_cache[0])) {
        snprintf(zone_cache[i].name, sizeof zone_cache[i].name, "%s", name);
        zone_cache[i].tz = rte_tz_load(NULL, name, err, sizeof err);
        if (zone_cache[i].tz == NULL)
            rte_log_warn("member time zone '%s' cannot be loaded (%s): its members' windows use "
                         "batchrpc.time_zone",
                         name, err);
        zone_n++;
    }
    if (i < zone_n)
        out = zone_cache[i].tz;
    pthread_mutex_unlock(&zone_mu);
    return out;
}

/* the window a group's start is planned at */
static int group_window(const br_plan *p)
{
    return p->multi || p->window == W_ANY ? W_LOW : p->window;
}

typedef struct zgroup {
    const char *name; /* "" = default */
    const rte_tz *tz;
    long n, fill;
    int64_t start_ms;
} zgroup;

static int zgroup_cmp(const void *a, const void *b)
{
    const zgroup *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* br_plan_zones - any thread */
void br_plan_zones(br_plan *p, int64_t now_ms, int64_t jitter_ms, size_t n, const char *const *zone,
                   const rte_member *const *m, size_t *order, br_plan_group *groups, int *ngroups)
{
    zgroup g[BR_PLAN_GROUPS_MAX];
    int ng = 1, *gi = malloc(sizeof *gi * (n ? n : 1));
    int64_t old_start = p->start_ms;

    memset(g, 0, sizeof g);
    g[0].name = "";
    for (size_t i = 0; i < n; i++) {
        const char *z = zone && gi ? zone[i] : NULL; /* out of memory: all in the default */
        const rte_tz *tz = br_plan_zone(z);
        int k = 0;
        if (tz != NULL) {
            for (k = 1; k < ng && strcmp(g[k].name, z) != 0; k++)
                ;
            if (k == ng) {
                if (ng == BR_PLAN_GROUPS_MAX) {
                    k = 0; /* too many zones: the default one */
                } else {
                    g[ng].name = z;
                    g[ng].tz = tz;
                    ng++;
                }
            }
        }
        g[k].n++;
        if (gi != NULL)
            gi[i] = k;
    }
    /* each group's start: its window's opening in its zone */
    for (int k = 0; k < ng; k++) {
        int peak = -1;
        if (p->window == W_ENGAGE && m != NULL && g[k].n > 0) {
            double sum[24] = {0};
            long seen = 0;
            for (size_t i = 0; i < n && seen < 10000; i++) {
                if ((gi ? gi[i] : 0) != k || m[i] == NULL)
                    continue;
                seen++;
                for (int h = 0; h < 24; h++)
                    sum[h] += m[i]->usage_by_hour[h];
            }
            for (int h = 0; h < 24; h++)
                if (sum[h] > 0 && (peak < 0 || sum[h] > sum[peak]))
                    peak = h;
        }
        g[k].start_ms = br_plan_window_start_tz(group_window(p), now_ms, peak, g[k].tz);
        if (g[k].start_ms > now_ms && jitter_ms > 0)
            g[k].start_ms += rnd((uint32_t)(jitter_ms / 1000 + 1)) * 1000LL;
    }
    /* the default group keeps the plan's own start (ANY by load, already jittered) */
    if (!p->multi && p->window == W_ANY)
        g[0].start_ms = old_start;
    int map[BR_PLAN_GROUPS_MAX] = {0};
    zgroup sorted[BR_PLAN_GROUPS_MAX];
    memcpy(sorted, g, sizeof g);
    for (int k = 0; k < ng; k++)
        sorted[k].fill = k; /* remember the original index */
    qsort(sorted, (size_t)ng, sizeof sorted[0], zgroup_cmp);
    long first = 0;
    int out = 0;
    for (int k = 0; k < ng; k++) {
        map[sorted[k].fill] = out;
        if (sorted[k].n == 0) {
            map[sorted[k].fill] = -1;
            continue;
        }
        snprintf(groups[out].zone, sizeof groups[out].zone, "%s", sorted[k].name);
        groups[out].first = first;
        groups[out].n = sorted[k].n;
        groups[out].start_ms = sorted[k].start_ms;
        first += sorted[k].n;
        out++;
    }
    long fill[BR_PLAN_GROUPS_MAX] = {0};
    for (size_t i = 0; i < n; i++) {
        int k = map[gi ? gi[i] : 0];
        order[groups[k].first + fill[k]++] = i;
    }
    free(gi);
    *ngroups = out;
    if (out > 0) {
        p->start_ms = groups[0].start_ms;
        p->eta_ms += groups[out - 1].start_ms - old_start;
    }
}

/* br_plan_groups_format - pure */
void br_plan_groups_format(const br_plan_group *g, int ng, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < ng && used < len; k++) {
        int w =
            snprintf(out + used, len - used, "%s%s %lld %ld %ld", k ? ";" : "",
                     g[k].zone[0] ? g[k].zone : "-", (long long)g[k].start_ms, g[k].first, g[k].n);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* br_plan_groups_parse - pure */
int br_plan_groups_parse(const char *s, br_plan_group *g, int max)
{
    int ng = 0;
    while (s && *s) {
        char zone[64];
        long long start;
        long first, n;
        int used = 0;
        if (ng == max || sscanf(s, "%63s %lld %ld %ld%n", zone, &start, &first, &n, &used) != 4)
            return -1;
        snprintf(g[ng].zone, sizeof g[ng].zone, "%s", strcmp(zone, "-") == 0 ? "" : zone);
        g[ng].start_ms = start;
        g[ng].first = first;
        g[ng].n = n;
        ng++;
        s += used;
        if (*s == ';')
            s++;
        else if (*s != '\0')
            return -1;
    }
    return ng;
}

/* a stable jitter in [0, bound] for chunk k of group gi of the job seed (FNV-1a) */
static int64_t chunk_jitter(const char *seed, int gi, long k, int64_t bound)
{
    uint64_t h = 1469598103934665603ULL;
    char buf[160];
    if (bound <= 0)
        return 0;
    snprintf(buf, sizeof buf, "%s/%d/%ld", seed ? seed : "", gi, k);
    for (const char *c = buf; *c; c++) {
        h ^= (unsigned char)*c;
        h *= 1099511628211ULL;
    }
    return (int64_t)(h % (uint64_t)(bound + 1));
}

/* br_plan_gate - any thread */
int64_t br_plan_gate(const br_plan_group *g, int ng, int64_t spread_ms, int multi, long pos,
                     int size, const char *seed, int64_t now_ms, int *take)
{
    static const int rotation[] = {W_LOW, W_MORNING, W_EVENING};
    int k = 0;

    *take = size;
    if (ng <= 0 || size <= 0)
        return 0;
    while (k < ng - 1 && pos >= g[k].first + g[k].n)
        k++;
    if (pos < g[k].first || pos >= g[k].first + g[k].n)
        return 0; /* past every group (a stored job's members moved): no gate */
    long left = g[k].first + g[k].n - pos;
    if (left < size)
        *take = (int)left;
    long chunk = (pos - g[k].first) / size;
    long chunks = (g[k].n + size - 1) / size;
    int64_t at;
    if (multi) {
        at = br_plan_window_start_tz(rotation[chunk % 3], now_ms, -1, br_plan_zone(g[k].zone));
    } else {
        at = g[k].start_ms;
        if (spread_ms > 0 && chunks > 1 && chunk > 0) {
            int64_t gap = spread_ms / chunks, bound = gap / 4 < 5 * MIN_MS ? gap / 4 : 5 * MIN_MS;
            at += chunk * gap + chunk_jitter(seed, k, chunk, bound);
        }
    }
    return at > now_ms ? at : 0;
}
