/*
 * metrics.c - Prometheus counters, gauges and histograms with labels.
 *
 * Registry: a global list of families under registry_mu (registration,
 * exposition, reset). Each family keeps its series in a list that only
 * grows at its head: finding a series reads it without a lock, and the
 * family's mutex is taken only to add one and to render; series are never
 * freed (except by rte_metrics_reset_for_tests), so callers cache series
 * pointers and the hot path is lock-free:
 *   - a counter holds an integer part (atomic uint64, bumped by inc and by
 *     integral adds) plus a double part (an atomic uint64 holding the bits
 *     of a double, updated with a CAS loop); its value is their sum;
 *   - a gauge holds one double (bits in an atomic uint64, CAS loop);
 *   - a histogram holds one atomic counter per bucket (non-cumulative,
 *     the last one is +Inf) and an atomic double sum. Its count is the sum
 *     of the buckets, so a scrape always has +Inf bucket == _count.
 * Counters and histograms keep those words once per CPU cell, each cell on
 * its own cache lines: an update touches the cell of the CPU it runs on
 * (sched_getcpu, a read of the rseq area), so HTTP loops on two CPUs
 * counting the same series no longer bounce one cache line between them
 * (two loops steered by CPU spent 2.7 % of their time in rte_series_inc and
 * rte_series_observe on shared lines). Readers add the cells up. There are
 * min(configured CPUs, MAX_CELLS) cells; CPUs beyond share cells, which
 * stays correct (the words are atomic), only slower. A gauge is one word:
 * set cannot be split across cells.
 *
 * Exposition is text format 0.0.4: families sorted by name, series sorted
 * by label values, "# HELP" (only when help is non-empty; \ and newline
 * escaped), "# TYPE", label values with \\, \" and \n escaped. Numbers:
 * integral values below 2^53 print as integers ("3"), others with the
 * shortest %.{15,16,17}g that round-trips, and +Inf, -Inf, NaN as
 * Prometheus spells them. A labelled family with no series yet is not
 * rendered; a family without labels has its series from registration, so
 * it shows 0.
 *
 * Bugs are rte_panic: a bad metric or label name, more than
 * RTE_METRICS_MAX_LABELS labels, registering a name again with another type
 * or other label names, non-ascending buckets, a NULL label value, and an
 * operation that does not fit the type (set on a counter, observe on a
 * gauge). A negative or NaN add to a counter is dropped with one warning
 * per process: it would otherwise crash a service over a skewed delta.
 *
 * This module does not serve HTTP (the skeleton's admin port calls
 * rte_metrics_render) and does not expire series.
 */
#include "rte/metrics.h"

#include "rte/cpu.h"
#include "rte/log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { COUNTER, GAUGE, HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60};

#define MAX_CELLS 64
#define LINE 64 /* bytes: cells never share a cache line */

/*
 * One series. Counters and histograms keep their words in ncells cells of
 * stride words each (cell c at cells + c * stride): a counter's cell is
 * {integer part, double part}, a histogram's {sum, nbounds + 1 bucket
 * counts}. A gauge uses gauge_bits only.
 */
struct rte_metric_series {
    struct rte_metric *family;
    char *values[RTE_METRICS_MAX_LABELS];
    _Atomic uint64_t gauge_bits; /* gauge: the value's bits */
    _Atomic uint64_t *cells;     /* counter, histogram: ncells * stride words */
    int stride;                  /* words per cell, a multiple of LINE / 8 */
    struct rte_metric_series *next;
};

struct rte_metric {
    char *name;
    char *help;
    enum kind kind;
    int nlabels;
    char *labels[RTE_METRICS_MAX_LABELS];
    double *bounds;
    int nbounds;
    pthread_mutex_t mu;           /* serialises adding series; taken to render */
    _Atomic(rte_series *) series; /* newest first; published complete, never unlinked */
    int nseries;                  /* under mu */
    struct rte_metric *next;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static rte_metric *families;
static atomic_int warned_negative;
static int ncells; /* set under registry_mu before the first series exists */

/* ---- atomics on doubles ----------------------------------------------- */

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    uint64_t new;

    do {
        new = double_to_bits(bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(p, &old, new, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* ---- registration ----------------------------------------------------- */

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        rte_panic("metrics: out of memory");
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        rte_panic("metrics: out of memory");
    return p;
}

static int count_labels(const char *name, const char *const *labels, enum kind kind)
{
    int n = 0;

    for (; labels && labels[n]; n++) {
        if (n == RTE_METRICS_MAX_LABELS)
            rte_panic("metrics: %s: more than %d labels", name, RTE_METRICS_MAX_LABELS);
        if (!valid_name(labels[n], 0) || strncmp(labels[n], "__", 2) == 0 ||
            (kind == HISTOGRAM && strcmp(labels[n], "le") == 0))
            rte_panic("metrics: %s: invalid label name '%s'", name, labels[n]);
        for (int j = 0; j < n; j++)
            if (strcmp(labels[j], labels[n]) == 0)
                rte_panic("metrics: %s: label '%s' given twice", name, labels[n]);
    }
    return n;
}

/* the cell count: one per configured CPU, at most MAX_CELLS (registry_mu held) */
static void init_cells(void)
{
    if (ncells == 0)
        ncells = rte_cpu_shards(MAX_CELLS);
}

static rte_series *series_new(rte_metric *m, const char *const *values)
{
    rte_series *s = xcalloc(1, sizeof(*s));
    const int per_line = LINE / (int)sizeof(uint64_t);
    size_t bytes;

    s->family = m;
    for (int i = 0; values && i < m->nlabels; i++)
        s->values[i] = xstrdup(values[i]);
    if (m->kind == GAUGE)
        return s;
    s->stride = m->kind == HISTOGRAM ? m->nbounds + 2 : 2;
    s->stride = (s->stride + per_line - 1) / per_line * per_line;
    bytes = (size_t)ncells * (size_t)s->stride * sizeof(uint64_t);
    s->cells = aligned_alloc(LINE, bytes);
    if (!s->cells)
        rte_panic("metrics: out of memory");
    memset(s->cells, 0, bytes);
    return s;
}

/* this CPU's cell of s (any CPU number maps to a cell; -1 from sched_getcpu to cell 0) */
static _Atomic uint64_t *my_cell(const rte_series *s)
{
    return s->cells + (size_t)rte_cpu_shard(ncells) * (size_t)s->stride;
}

/* word w summed over the cells of s */
static uint64_t sum_word(const rte_series *s, int w)
{
    uint64_t n = 0;

    for (int c = 0; c < ncells; c++)
        n += atomic_load_explicit(&s->cells[(size_t)c * (size_t)s->stride + (size_t)w],
                                  memory_order_relaxed);
    return n;
}

/* the double in word w summed over the cells of s */
static double sum_double(const rte_series *s, int w)
{
    double d = 0;

    for (int c = 0; c < ncells; c++)
        d += bits_to_double(atomic_load_explicit(
            &s->cells[(size_t)c * (size_t)s->stride + (size_t)w], memory_order_relaxed));
    return d;
}

static rte_metric *register_family(const char *name, const char *help, const char *const *labels,
                                   enum kind kind, const double *bounds, int nbounds)
{
    rte_metric *m;
    int nlabels;

    if (!valid_name(name, 1))
        rte_panic("metrics: invalid metric name '%s'", name ? name : "(null)");
    nlabels = count_labels(name, labels, kind);

    pthread_mutex_lock(&registry_mu);
    init_cells();
    for (m = families; m; m = m->next) {
        if (strcmp(m->name, name) != 0)
            continue;
        if (m->kind != kind)
            rte_panic("metrics: %s registered as %s and as %s", name, kind_names[m->kind],
                      kind_names[kind]);
        int same = m->nlabels == nlabels;
        for (int i = 0; same && i < nlabels; i++)
            same = strcmp(m->labels[i], labels[i]) == 0;
        if (!same)
            rte_panic("metrics: %s registered twice with different label names", name);
        pthread_mutex_unlock(&registry_mu);
        return m;
    }
    m = xcalloc(1, sizeof(*m));
    m->name = xstrdup(name);
    m->help = xstrdup(help);
    m->kind = kind;
    m->nlabels = nlabels;
    for (int i = 0; i < nlabels; i++)
        m->labels[i] = xstrdup(labels[i]);
    if (kind == HISTOGRAM) {
        m->bounds = xcalloc(nbounds ? (size_t)nbounds : 1, sizeof(double));
        memcpy(m->bounds, bounds, (size_t)nbounds * sizeof(double));
        m->nbounds = nbounds;
    }
    pthread_mutex_init(&m->mu, NULL);
    if (nlabels == 0) {
        atomic_store(&m->series, series_new(m, NULL));
        m->nseries = 1;
    }
    m->next = families;
    families = m;
    pthread_mutex_unlock(&registry_mu);
    return m;
}

/* rte_counter_new - register a counter family with up to 4 label names (NULL-terminated) */
rte_metric *rte_counter_new(const char *name, const char *help, const char *const *labels)
{
    return register_family(name, help, labels, COUNTER, NULL, 0);
}

/* rte_gauge_new - register a gauge family; any thread, takes the registry lock */
rte_metric *rte_gauge_new(const char *name, const char *help, const char *const *labels)
{
    return register_family(name, help, labels, GAUGE, NULL, 0);
}

/*
 * rte_histogram_new - register a histogram family with nbuckets ascending
 * upper bounds (a trailing +Inf is dropped, it is implicit); buckets NULL =
 * default latency buckets in seconds (0.005 .. 60); takes the registry lock
 */
rte_metric *rte_histogram_new(const char *name, const char *help, const char *const *labels,
                              const double *buckets, int nbuckets)
{
    if (!buckets) {
        buckets = default_buckets;
        nbuckets = (int)(sizeof(default_buckets) / sizeof(default_buckets[0]));
    }
    if (nbuckets < 0)
        rte_panic("metrics: %s: negative bucket count", name ? name : "(null)");
    if (nbuckets > 0 && isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0)
        nbuckets--;
    for (int i = 0; i < nbuckets; i++)
        if (isnan(buckets[i]) || isinf(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            rte_panic("metrics: %s: buckets must be finite and strictly ascending",
                      name ? name : "(null)");
    return register_family(name, help, labels, HISTOGRAM, buckets, nbuckets);
}

/* ---- series ----------------------------------------------------------- */

/* the series of m with these values among those from head on, or NULL */
static rte_series *find_series(const rte_metric *m, rte_series *head, const char *const *values)
{
    for (rte_series *s = head; s; s = s->next) {
        int same = 1;
        for (int i = 0; same && i < m->nlabels; i++)
            same = strcmp(s->values[i], values[i]) == 0;
        if (same)
            return s;
    }
    return NULL;
}

/*
 * rte_metric_labels - the series for these label values (as many as the
 * family has label names); created on first use; the pointer stays valid for
 * the process lifetime. Any thread. Finding an existing series takes no
 * lock (the list only grows at its head, and a series is complete before
 * it is published), so the label-resolving helpers below can run per
 * message or per request; only creating one takes the family mutex.
 */
rte_series *rte_metric_labels(rte_metric *m, const char *const *values)
{
    rte_series *s;

    if (!m)
        rte_panic("metrics: NULL family");
    for (int i = 0; i < m->nlabels; i++)
        if (!values || !values[i])
            rte_panic("metrics: %s: label '%s' has no value", m->name, m->labels[i]);
    s = find_series(m, atomic_load_explicit(&m->series, memory_order_acquire), values);
    if (s)
        return s;
    pthread_mutex_lock(&m->mu);
    s = find_series(m, atomic_load_explicit(&m->series, memory_order_relaxed), values);
    if (!s) {
        s = series_new(m, values);
        s->next = atomic_load_explicit(&m->series, memory_order_relaxed);
        atomic_store_explicit(&m->series, s, memory_order_release);
        m->nseries++;
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* rte_metric_series0 - the series of a family without labels; lock-free */
rte_series *rte_metric_series0(rte_metric *m)
{
    if (!m || m->nlabels != 0)
        rte_panic("metrics: %s has labels; use rte_metric_labels", m ? m->name : "(null)");
    return atomic_load_explicit(&m->series, memory_order_acquire);
}

static void expect_kind(const rte_series *s, int counter_ok, int gauge_ok, int hist_ok,
                        const char *op)
{
    enum kind k = s->family->kind;

    if ((k == COUNTER && !counter_ok) || (k == GAUGE && !gauge_ok) || (k == HISTOGRAM && !hist_ok))
        rte_panic("metrics: %s on %s %s", op, kind_names[k], s->family->name);
}

/* rte_series_inc - add 1 to a counter or gauge; lock-free */
void rte_series_inc(rte_series *s)
{
    expect_kind(s, 1, 1, 0, "inc");
    if (s->family->kind == COUNTER)
        atomic_fetch_add_explicit(&my_cell(s)[0], 1, memory_order_relaxed);
    else
        atomic_add_double(&s->gauge_bits, 1);
}

/* rte_series_add - add v (>= 0 for counters; otherwise dropped with a warning); lock-free */
void rte_series_add(rte_series *s, double v)
{
    expect_kind(s, 1, 1, 0, "add");
    if (s->family->kind == GAUGE) {
        atomic_add_double(&s->gauge_bits, v);
        return;
    }
    if (!(v >= 0)) {
        if (!atomic_exchange(&warned_negative, 1))
            rte_log_warn("metrics: counter %s: dropped add of %g (counters only go up); "
                         "further such adds are dropped silently",
                         s->family->name, v);
        return;
    }
    if (v == floor(v) && v < 9007199254740992.0)
        atomic_fetch_add_explicit(&my_cell(s)[0], (uint64_t)v, memory_order_relaxed);
    else
        atomic_add_double(&my_cell(s)[1], v);
}

/* rte_series_dec - subtract 1 from a gauge; lock-free */
void rte_series_dec(rte_series *s)
{
    expect_kind(s, 0, 1, 0, "dec");
    atomic_add_double(&s->gauge_bits, -1);
}

/* rte_series_set - set a gauge; lock-free */
void rte_series_set(rte_series *s, double v)
{
    expect_kind(s, 0, 1, 0, "set");
    atomic_store_explicit(&s->gauge_bits, double_to_bits(v), memory_order_relaxed);
}

/* rte_series_observe - record one histogram observation; lock-free */
void rte_series_observe(rte_series *s, double v)
{
    const rte_metric *m = s->family;
    int lo = 0, hi;

    expect_kind(s, 0, 0, 1, "observe");
    /* first bound >= v (le is inclusive); NaN lands in +Inf like client_golang */
    hi = m->nbounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (m->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    _Atomic uint64_t *cell = my_cell(s);
    atomic_add_double(&cell[0], v);
    atomic_fetch_add_explicit(&cell[1 + lo], 1, memory_order_relaxed);
}

static uint64_t hist_count(const rte_series *s)
{
    uint64_t n = 0;

    for (int i = 0; i <= s->family->nbounds; i++)
        n += sum_word(s, 1 + i);
    return n;
}

/* rte_series_value - current value of a counter or gauge (count for histograms); lock-free */
double rte_series_value(const rte_series *s)
{
    switch (s->family->kind) {
    case COUNTER:
        return (double)sum_word(s, 0) + sum_double(s, 1);
    case GAUGE:
        return bits_to_double(atomic_load_explicit(&s->gauge_bits, memory_order_relaxed));
    default:
        return (double)hist_count(s);
    }
}

/* rte_counter_inc - resolve labels and add 1 (the family mutex only for a new series) */
void rte_counter_inc(rte_metric *m, const char *const *values)
{
    rte_series_inc(rte_metric_labels(m, values));
}

/* rte_counter_add - resolve labels and add v (the family mutex only for a new series) */
void rte_counter_add(rte_metric *m, const char *const *values, double v)
{
    rte_series_add(rte_metric_labels(m, values), v);
}

/* rte_gauge_set - resolve labels and set v (the family mutex only for a new series) */
void rte_gauge_set(rte_metric *m, const char *const *values, double v)
{
    rte_series_set(rte_metric_labels(m, values), v);
}

/* rte_histogram_observe - resolve labels and observe v (the family mutex only for a new series) */
void rte_histogram_observe(rte_metric *m, const char *const *values, double v)
{
    rte_series_observe(rte_metric_labels(m, values), v);
}

/* ---- exposition ------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            rte_panic("metrics: out of memory rendering");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Append s escaped: backslash and newline always, '"' when quote is set. */
static void buf_escaped(struct buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_str(b, "\\\\");
        else if (*s == '\n')
            buf_str(b, "\\n");
        else if (quote && *s == '"')
            buf_str(b, "\\\"");
        else
            buf_add(b, s, 1);
    }
}

static void format_value(double v, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, len, "%.0f", v == 0 ? 0.0 : v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, len, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static void buf_value(struct buf *b, double v)
{
    char num[40];

    format_value(v, num, sizeof(num));
    buf_str(b, num);
}

/* name{labels[,le="x"]} value\n */
static void sample(struct buf *b, const rte_metric *m, const rte_series *s, const char *suffix,
                   const char *le, double v)
{
    int any = m->nlabels > 0 || le;

    buf_str(b, m->name);
    buf_str(b, suffix);
    if (any)
        buf_str(b, "{");
    for (int i = 0; i < m->nlabels; i++) {
        if (i)
            buf_str(b, ",");
        buf_str(b, m->labels[i]);
        buf_str(b, "=\"");
        buf_escaped(b, s->values[i], 1);
        buf_str(b, "\"");
    }
    if (le) {
        buf_str(b, m->nlabels ? ",le=\"" : "le=\"");
        buf_str(b, le);
        buf_str(b, "\"");
    }
    buf_str(b, any ? "} " : " ");
    buf_value(b, v);
    buf_str(b, "\n");
}

static void render_series(struct buf *b, const rte_metric *m, const rte_series *s)
{
    char le[40];
    uint64_t cum = 0;

    if (m->kind != HISTOGRAM) {
        sample(b, m, s, "", NULL, rte_series_value(s));
        return;
    }
    /* read the buckets once so _bucket, _count agree within this scrape */
    for (int i = 0; i <= m->nbounds; i++) {
        cum += sum_word(s, 1 + i);
        if (i < m->nbounds)
            format_value(m->bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        sample(b, m, s, "_bucket", le, (double)cum);
    }
    sample(b, m, s, "_sum", NULL, sum_double(s, 0));
    sample(b, m, s, "_count", NULL, (double)cum);
}

static int series_cmp(const void *a, const void *b)
{
    const rte_series *x = *(rte_series *const *)a, *y = *(rte_series *const *)b;

    for (int i = 0; i < x->family->nlabels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

static int family_cmp(const void *a, const void *b)
{
    return strcmp((*(rte_metric *const *)a)->name, (*(rte_metric *const *)b)->name);
}

static void render_family(struct buf *b, rte_metric *m)
{
    rte_series **v;
    int n = 0;

    pthread_mutex_lock(&m->mu);
    if (!m->nseries)
        goto out;
    v = xcalloc((size_t)m->nseries, sizeof(*v));
    for (rte_series *s = atomic_load(&m->series); s && n < m->nseries; s = s->next)
        v[n++] = s;
    qsort(v, (size_t)n, sizeof(*v), series_cmp);
    if (m->help[0]) {
        buf_str(b, "# HELP ");
        buf_str(b, m->name);
        buf_str(b, " ");
        buf_escaped(b, m->help, 0);
        buf_str(b, "\n");
    }
    buf_str(b, "# TYPE ");
    buf_str(b, m->name);
    buf_str(b, " ");
    buf_str(b, kind_names[m->kind]);
    buf_str(b, "\n");
    for (int i = 0; i < n; i++)
        render_series(b, m, v[i]);
    free(v);
out:
    pthread_mutex_unlock(&m->mu);
}

/*
 * rte_metrics_render - the whole registry as Prometheus text 0.0.4; returns a
 * malloc'd NUL-terminated string (caller frees) and its length in *len.
 * Any thread; takes the registry lock, then each family's mutex in turn.
 */
char *rte_metrics_render(size_t *len)
{
    struct buf b = {0};
    rte_metric **v = NULL;
    size_t n = 0, i = 0;

    buf_add(&b, "", 0);
    pthread_mutex_lock(&registry_mu);
    for (rte_metric *m = families; m; m = m->next)
        n++;
    if (n) {
        v = xcalloc(n, sizeof(*v));
        for (rte_metric *m = families; m; m = m->next)
            v[i++] = m;
        qsort(v, n, sizeof(*v), family_cmp);
        for (i = 0; i < n; i++)
            render_family(&b, v[i]);
    }
    pthread_mutex_unlock(&registry_mu);
    free(v);
    if (len)
        *len = b.len;
    return b.p;
}

/* rte_metrics_reset_for_tests - drop every family (unit tests only: cached pointers dangle) */
void rte_metrics_reset_for_tests(void)
{
    rte_metric *m, *next;

    pthread_mutex_lock(&registry_mu);
    for (m = families; m; m = next) {
        next = m->next;
        for (rte_series *s = atomic_load(&m->series), *sn; s; s = sn) {
            sn = s->next;
            for (int i = 0; i < m->nlabels; i++)
                free(s->values[i]);
            free(s->cells);
            free(s);
        }
        for (int i = 0; i < m->nlabels; i++)
            free(m->labels[i]);
        pthread_mutex_destroy(&m->mu);
        free(m->bounds);
        free(m->help);
        free(m->name);
        free(m);
    }
    families = NULL;
    pthread_mutex_unlock(&registry_mu);
}
