/*
 * test_metrics.c - Prometheus exposition, checked by parsing it back.
 *
 * parse_expo() is a small, strict reader of text format 0.0.4: every line is
 * a "# HELP"/"# TYPE" comment or "name{labels} value"; TYPE comes before the
 * family's samples; label values use only the \\ \" \n escapes; values are
 * numbers or +Inf/-Inf/NaN. check_histograms() then verifies that buckets
 * are cumulative with ascending le, end in +Inf, and +Inf equals _count.
 * Misuse that must panic runs in forked children.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/metrics.h"

#define MAX_SAMPLES 256
#define MAX_FAMILIES 32
#define MAX_PARSED_LABELS 6

struct label {
    char name[64];
    char value[256];
};

struct sample {
    char name[128];
    char family[128];
    struct label labels[MAX_PARSED_LABELS];
    int nlabels;
    double value;
};

struct family {
    char name[128];
    char type[16];
    int has_help, has_samples;
};

struct expo {
    struct sample s[MAX_SAMPLES];
    int n;
    struct family f[MAX_FAMILIES];
    int nf;
};

static int name_char(char c, int first, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Copy a metric (colon) or label name at *p into out; advance *p. */
static int read_name(const char **p, char *out, size_t outlen, int colon)
{
    size_t n = 0;

    while (name_char((*p)[n], n == 0, colon))
        n++;
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return 0;
}

static int read_value(const char *s, double *v)
{
    char *end;

    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return 0;
    }
    if (!*s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return -1;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

static struct family *find_family(struct expo *e, const char *name)
{
    for (int i = 0; i < e->nf; i++)
        if (strcmp(e->f[i].name, name) == 0)
            return &e->f[i];
    return NULL;
}

static int parse_labels(const char **pp, struct sample *s)
{
    const char *p = *pp + 1; /* past '{' */

    while (*p != '}') {
        struct label *l;
        size_t n = 0;
        if (s->nlabels == MAX_PARSED_LABELS)
            return -1;
        l = &s->labels[s->nlabels++];
        if (read_name(&p, l->name, sizeof(l->name), 0) < 0 || *p++ != '=' || *p++ != '"')
            return -1;
        for (; *p != '"'; p++) {
            char c = *p;
            if (c == '\0' || c == '\n' || n + 1 >= sizeof(l->value))
                return -1;
            if (c == '\\') {
                p++;
                if (*p == 'n')
                    c = '\n';
                else if (*p == '\\' || *p == '"')
                    c = *p;
                else
                    return -1;
            }
            l->value[n++] = c;
        }
        l->value[n] = '\0';
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    *pp = p + 1;
    return 0;
}

/* The family sample s belongs to (its own name or a histogram's base name); sets s->family. */
static struct family *sample_family(struct expo *e, struct sample *s)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t nl = strlen(s->name);
    struct family *f;

    memcpy(s->family, s->name, nl + 1);
    f = find_family(e, s->family);
    for (int i = 0; !f && i < 3; i++) {
        size_t sl = strlen(suffixes[i]);
        if (nl <= sl || strcmp(s->name + nl - sl, suffixes[i]) != 0)
            continue;
        s->family[nl - sl] = '\0';
        f = find_family(e, s->family);
        if (f && strcmp(f->type, "histogram") != 0)
            f = NULL;
        if (!f)
            memcpy(s->family, s->name, nl + 1);
    }
    return f;
}

static int parse_line(struct expo *e, const char *line)
{
    char name[128], kind[16];
    struct family *f;
    struct sample *s;
    const char *p = line;

    if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
        int help = line[2] == 'H';
        p += 7;
        if (read_name(&p, name, sizeof(name), 1) < 0 || *p != ' ')
            return -1;
        f = find_family(e, name);
        if (!f) {
            if (e->nf == MAX_FAMILIES)
                return -1;
            f = &e->f[e->nf++];
            memset(f, 0, sizeof(*f));
            snprintf(f->name, sizeof(f->name), "%s", name);
        }
        if (f->has_samples)
            return -1; /* HELP/TYPE after samples */
        if (help) {
            if (f->has_help++)
                return -1;
            return 0;
        }
        if (f->type[0] || sscanf(p + 1, "%15s", kind) != 1)
            return -1;
        if (strcmp(kind, "counter") && strcmp(kind, "gauge") && strcmp(kind, "histogram"))
            return -1;
        snprintf(f->type, sizeof(f->type), "%s", kind);
        return 0;
    }
    if (line[0] == '#' || line[0] == '\0')
        return -1;
    if (e->n == MAX_SAMPLES)
        return -1;
    s = &e->s[e->n++];
    memset(s, 0, sizeof(*s));
    if (read_name(&p, s->name, sizeof(s->name), 1) < 0)
        return -1;
    if (*p == '{' && parse_labels(&p, s) < 0)
        return -1;
    if (*p != ' ' || read_value(p + 1, &s->value) < 0)
        return -1;
    f = sample_family(e, s);
    if (!f || !f->type[0] || f != &e->f[e->nf - 1])
        return -1; /* no TYPE yet, or family interleaved with another */
    f->has_samples = 1;
    return 0;
}

/* Parse text into e; fails the test naming the first bad line. */
static void parse_expo(const char *text, struct expo *e)
{
    const char *p = text;
    char line[1024];

    memset(e, 0, sizeof(*e));
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("exposition does not end in a newline: '%s'", p);
        if ((size_t)(nl - p) >= sizeof(line))
            fail_msg("line too long");
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        if (parse_line(e, line) < 0)
            fail_msg("bad exposition line: '%s'", line);
        p = nl + 1;
    }
}

static const char *label_of(const struct sample *s, const char *name)
{
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return NULL;
}

static int non_le_labels(const struct sample *s)
{
    return s->nlabels - (label_of(s, "le") != NULL);
}

/* Same family and same labels apart from le? */
static int same_series(const struct sample *a, const struct sample *b)
{
    if (strcmp(a->family, b->family) != 0 || non_le_labels(a) != non_le_labels(b))
        return 0;
    for (int i = 0; i < a->nlabels; i++) {
        const char *v;
        if (strcmp(a->labels[i].name, "le") == 0)
            continue;
        v = label_of(b, a->labels[i].name);
        if (!v || strcmp(v, a->labels[i].value) != 0)
            return 0;
    }
    return 1;
}

/* Every histogram series: le ascending, counts cumulative, last le +Inf == _count. */
static void check_histograms(const struct expo *e)
{
    char want_count[160], want_sum[160];
    int done[MAX_SAMPLES] = {0};

    for (int i = 0; i < e->n; i++) {
        const struct sample *s = &e->s[i];
        const struct sample *count = NULL, *sum = NULL;
        double prev_le = -INFINITY, prev_v = 0, le;
        int nb = 0;

        if (done[i] || !label_of(s, "le"))
            continue;
        snprintf(want_count, sizeof(want_count), "%s_count", s->family);
        snprintf(want_sum, sizeof(want_sum), "%s_sum", s->family);
        for (int j = i; j < e->n; j++) {
            const struct sample *b = &e->s[j];
            if (!same_series(s, b))
                continue;
            done[j] = 1;
            if (label_of(b, "le")) {
                assert_int_equal(read_value(label_of(b, "le"), &le), 0);
                assert_true(le > prev_le);
                assert_true(b->value >= prev_v);
                prev_le = le;
                prev_v = b->value;
                nb++;
            } else if (strcmp(b->name, want_count) == 0) {
                count = b;
            } else if (strcmp(b->name, want_sum) == 0) {
                sum = b;
            }
        }
        assert_true(nb > 0);
        assert_true(isinf(prev_le) && prev_le > 0);
        assert_non_null(count);
        assert_non_null(sum);
        assert_true(count->value == prev_v);
    }
}

/* The sample called name whose labels are the NULL-terminated name,value pairs kv. */
static const struct sample *find(const struct expo *e, const char *name, const char *const *kv)
{
    for (int i = 0; i < e->n; i++) {
        const struct sample *s = &e->s[i];
        int n = 0, ok = strcmp(s->name, name) == 0;
        for (; ok && kv && kv[2 * n]; n++) {
            const char *v = label_of(s, kv[2 * n]);
            ok = v && strcmp(v, kv[2 * n + 1]) == 0;
        }
        if (ok && n == s->nlabels)
            return s;
    }
    return NULL;
}

static double value_of(const struct expo *e, const char *name, const char *const *kv)
{
    const struct sample *s = find(e, name, kv);
    if (!s)
        fail_msg("no sample %s", name);
    return s->value;
}

static struct expo *render_and_parse(char **text)
{
    struct expo *e = malloc(sizeof(*e));
    size_t len = 0;

    assert_non_null(e);
    *text = rte_metrics_render(&len);
    assert_non_null(*text);
    assert_int_equal(len, strlen(*text));
    parse_expo(*text, e);
    check_histograms(e);
    return e;
}

static int reset(void **state)
{
    (void)state;
    rte_metrics_reset_for_tests();
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_counter(void **state)
{
    const char *const labels[] = {"route", "code", NULL};
    const char *const ok[] = {"/v1/eligibility", "200"}, *const bad[] = {"/v1/eligibility", "503"};
    rte_metric *c =
        rte_counter_new("rte_test_requests_total", "Requests.\nBy route \\ code.", labels);
    rte_series *s = rte_metric_labels(c, ok);
    struct expo *e;
    char *text;

    (void)state;
    assert_ptr_equal(rte_metric_labels(c, ok), s);
    rte_series_inc(s);
    rte_counter_inc(c, ok);
    rte_counter_add(c, ok, 1);
    rte_counter_add(c, bad, 2.5);
    rte_counter_add(c, bad, -1); /* dropped: counters only go up */
    assert_true(rte_series_value(s) == 3);

    e = render_and_parse(&text);
    assert_non_null(strstr(text, "# HELP rte_test_requests_total Requests.\\nBy route \\\\ code.\n"
                                 "# TYPE rte_test_requests_total counter\n"));
    assert_non_null(strstr(text, "rte_test_requests_total{route=\"/v1/eligibility\",code=\"200\"} "
                                 "3\n"));
    assert_true(value_of(e, "rte_test_requests_total",
                         (const char *const[]){"route", "/v1/eligibility", "code", "503", NULL}) ==
                2.5);
    assert_int_equal(e->n, 2);
    free(e);
    free(text);
}

static void test_label_escaping_round_trips(void **state)
{
    const char *const labels[] = {"v", NULL};
    const char *tricky = "a\"b\\c\nd} x=\"y\",é";
    rte_metric *g = rte_gauge_new("rte_test_escape", "", labels);
    struct expo *e;
    char *text;

    (void)state;
    rte_gauge_set(g, (const char *const[]){tricky}, 1);
    rte_gauge_set(g, (const char *const[]){""}, 2);
    e = render_and_parse(&text);
    assert_non_null(strstr(text, "rte_test_escape{v=\"a\\\"b\\\\c\\nd} x=\\\"y\\\",é\"} 1\n"));
    assert_null(strstr(text, "# HELP rte_test_escape"));
    assert_true(value_of(e, "rte_test_escape", (const char *const[]){"v", tricky, NULL}) == 1);
    assert_true(value_of(e, "rte_test_escape", (const char *const[]){"v", "", NULL}) == 2);
    free(e);
    free(text);
}

static void test_gauge_and_numbers(void **state)
{
    const char *const labels[] = {"k", NULL};
    rte_metric *plain = rte_gauge_new("rte_test_plain", "no labels", NULL);
    rte_metric *g = rte_gauge_new("rte_test_gauge", "values", labels);
    const double vals[] = {0.1, 1.0 / 3, 1e20, -2.5e-7, 123456789.125, 9007199254740993.0};
    char key[8], *text;
    struct expo *e;
    rte_series *s;

    (void)state;
    e = render_and_parse(&text);
    assert_non_null(strstr(text, "\nrte_test_plain 0\n"));
    free(e);
    free(text);

    s = rte_metric_series0(plain);
    rte_series_set(s, -3.5);
    rte_series_inc(s);
    rte_series_inc(s);
    rte_series_dec(s);
    rte_series_add(s, 5.5);
    assert_true(rte_series_value(s) == 3);
    rte_gauge_set(g, (const char *const[]){"nan"}, NAN);
    rte_gauge_set(g, (const char *const[]){"pinf"}, INFINITY);
    rte_gauge_set(g, (const char *const[]){"ninf"}, -INFINITY);
    rte_gauge_set(g, (const char *const[]){"negzero"}, -0.0);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        snprintf(key, sizeof(key), "v%zu", i);
        rte_gauge_set(g, (const char *const[]){key}, vals[i]);
    }
    e = render_and_parse(&text);
    assert_non_null(strstr(text, "\nrte_test_plain 3\n"));
    assert_non_null(strstr(text, "{k=\"nan\"} NaN\n"));
    assert_non_null(strstr(text, "{k=\"pinf\"} +Inf\n"));
    assert_non_null(strstr(text, "{k=\"ninf\"} -Inf\n"));
    assert_non_null(strstr(text, "{k=\"negzero\"} 0\n"));
    assert_non_null(strstr(text, "{k=\"v0\"} 0.1\n"));
    assert_non_null(strstr(text, "{k=\"v4\"} 123456789.125\n"));
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        snprintf(key, sizeof(key), "v%zu", i);
        assert_true(value_of(e, "rte_test_gauge", (const char *const[]){"k", key, NULL}) ==
                    vals[i]);
    }
    free(e);
    free(text);
}

static void test_histogram_default_buckets(void **state)
{
    const char *les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                         "1",     "2.5",  "5",     "10",   "30",  "60",   "+Inf"};
    const double counts[] = {1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 4, 4, 4, 5};
    rte_metric *h = rte_histogram_new("rte_test_latency_seconds", "Latency.", NULL, NULL, 0);
    rte_series *s = rte_metric_series0(h);
    struct expo *e;
    char *text;

    (void)state;
    rte_series_observe(s, 0.003);
    rte_series_observe(s, 0.2);
    rte_series_observe(s, 0.2);
    rte_series_observe(s, 7);
    rte_series_observe(s, 100);
    assert_true(rte_series_value(s) == 5);
    e = render_and_parse(&text);
    assert_non_null(strstr(text, "# TYPE rte_test_latency_seconds histogram\n"));
    for (int i = 0; i < 14; i++) {
        const char *const kv[] = {"le", les[i], NULL};
        assert_true(value_of(e, "rte_test_latency_seconds_bucket", kv) == counts[i]);
    }
    assert_true(fabs(value_of(e, "rte_test_latency_seconds_sum", NULL) - 107.403) < 1e-9);
    assert_true(value_of(e, "rte_test_latency_seconds_count", NULL) == 5);
    assert_int_equal(e->n, 16);
    free(e);
    free(text);
}

static void test_histogram_labels_custom_buckets(void **state)
{
    const char *const labels[] = {"op", NULL};
    const double bounds[] = {1, 2, 5, INFINITY};
    rte_metric *h = rte_histogram_new("rte_test_sizes", "Sizes.", labels, bounds, 4);
    const char *const get[] = {"get"}, *const put[] = {"put"};
    struct expo *e;
    char *text;

    (void)state;
    rte_histogram_observe(h, get, 1); /* le is inclusive */
    rte_histogram_observe(h, get, 2);
    rte_histogram_observe(h, get, 3);
    rte_histogram_observe(h, get, 6);
    rte_histogram_observe(h, put, 0.5);
    e = render_and_parse(&text);
    assert_non_null(strstr(text, "rte_test_sizes_bucket{op=\"get\",le=\"1\"} 1\n"
                                 "rte_test_sizes_bucket{op=\"get\",le=\"2\"} 2\n"
                                 "rte_test_sizes_bucket{op=\"get\",le=\"5\"} 3\n"
                                 "rte_test_sizes_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                                 "rte_test_sizes_sum{op=\"get\"} 12\n"
                                 "rte_test_sizes_count{op=\"get\"} 4\n"));
    assert_true(value_of(e, "rte_test_sizes_count", (const char *const[]){"op", "put", NULL}) == 1);
    assert_int_equal(e->n, 12);
    free(e);
    free(text);
}

static void test_registry(void **state)
{
    const char *const labels[] = {"x", NULL};
    rte_metric *z = rte_counter_new("zzz_last_total", "z", NULL);
    rte_metric *a = rte_counter_new("aaa_first_total", "a", NULL);
    rte_metric *empty = rte_counter_new("mmm_unused_total", "never used", labels);
    char *text, *pa, *pz;
    struct expo *e;

    (void)state;
    assert_ptr_equal(rte_counter_new("zzz_last_total", "other help", NULL), z);
    assert_non_null(empty);
    rte_series_inc(rte_metric_series0(a));
    e = render_and_parse(&text);
    pa = strstr(text, "aaa_first_total 1\n");
    pz = strstr(text, "zzz_last_total 0\n");
    assert_non_null(pa);
    assert_non_null(pz);
    assert_true(pa < pz);
    assert_null(strstr(text, "mmm_unused_total")); /* labelled, no series yet */
    free(e);
    free(text);
}

/* ---- misuse panics ---------------------------------------------------- */

static void panic_type_clash(void)
{
    rte_counter_new("rte_test_clash", "", NULL);
    rte_gauge_new("rte_test_clash", "", NULL);
}

static void panic_bad_name(void)
{
    rte_counter_new("1bad-name", "", NULL);
}

static void panic_le_label(void)
{
    rte_histogram_new("rte_test_h", "", (const char *const[]){"le", NULL}, NULL, 0);
}

static void panic_set_counter(void)
{
    rte_series_set(rte_metric_series0(rte_counter_new("rte_test_c", "", NULL)), 1);
}

static void panic_too_many_labels(void)
{
    rte_counter_new("rte_test_many", "", (const char *const[]){"a", "b", "c", "d", "e", NULL});
}

static void panic_buckets(void)
{
    rte_histogram_new("rte_test_b", "", NULL, (const double[]){1, 1, 2}, 3);
}

static void panic_relabel(void)
{
    rte_counter_new("rte_test_r", "", (const char *const[]){"a", NULL});
    rte_counter_new("rte_test_r", "", (const char *const[]){"b", NULL});
}

static void assert_panics(void (*fn)(void))
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        fn();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_misuse_panics(void **state)
{
    (void)state;
    assert_panics(panic_type_clash);
    assert_panics(panic_bad_name);
    assert_panics(panic_le_label);
    assert_panics(panic_set_counter);
    assert_panics(panic_too_many_labels);
    assert_panics(panic_buckets);
    assert_panics(panic_relabel);
}

/* ---- concurrency ------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 100000

struct shared {
    rte_metric *counter, *gauge, *hist;
};

static void *hammer(void *arg)
{
    struct shared *sh = arg;
    const char *const vals[] = {"same"};
    /* every thread resolves the same labels: exactly one series may result */
    rte_series *c = rte_metric_labels(sh->counter, vals);
    rte_series *g = rte_metric_labels(sh->gauge, vals);
    rte_series *h = rte_metric_labels(sh->hist, vals);

    for (int i = 0; i < PER_THREAD; i++) {
        rte_series_inc(c);
        rte_series_add(g, 0.5);
        rte_series_observe(h, (i % 4) * 0.5);
    }
    return NULL;
}

static void test_concurrent_increments(void **state)
{
    const char *const labels[] = {"k", NULL};
    const char *const same[] = {"k", "same", NULL};
    struct shared sh = {
        rte_counter_new("rte_test_conc_total", "c", labels),
        rte_gauge_new("rte_test_conc_gauge", "g", labels),
        rte_histogram_new("rte_test_conc_hist", "h", labels, (const double[]){0.25, 1}, 2),
    };
    pthread_t t[THREADS];
    struct expo *e;
    char *text;

    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    e = render_and_parse(&text);
    assert_int_equal(e->n, 2 + 5);
    assert_true(value_of(e, "rte_test_conc_total", same) == THREADS * PER_THREAD);
    assert_true(value_of(e, "rte_test_conc_gauge", same) == THREADS * PER_THREAD * 0.5);
    assert_true(value_of(e, "rte_test_conc_hist_count", same) == THREADS * PER_THREAD);
    assert_true(value_of(e, "rte_test_conc_hist_bucket",
                         (const char *const[]){"k", "same", "le", "0.25", NULL}) ==
                THREADS * PER_THREAD / 4);
    assert_true(value_of(e, "rte_test_conc_hist_sum", same) == THREADS * (PER_THREAD / 4) * 3.0);
    free(e);
    free(text);
}

/*
 * Updates are kept per CPU cell and added up when read: pinned to each CPU
 * this process may use in turn, one thread counts, adds, observes and moves
 * a gauge, and the scrape and rte_series_value show the totals over all
 * CPUs, a histogram's _count equal to its +Inf bucket.
 */
static void test_updates_on_every_cpu_add_up(void **state)
{
    rte_series *c = rte_metric_series0(rte_counter_new("rte_test_cpu_total", "c", NULL));
    rte_series *g = rte_metric_series0(rte_gauge_new("rte_test_cpu_gauge", "g", NULL));
    rte_series *h = rte_metric_series0(
        rte_histogram_new("rte_test_cpu_hist", "h", NULL, (const double[]){0.5}, 1));
    const char *const none[] = {NULL};
    cpu_set_t allowed, one;
    int ncpu = 0;
    struct expo *e;
    char *text;

    (void)state;
    assert_int_equal(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
        assert_int_equal(sched_getcpu(), cpu);
        rte_series_inc(c);
        rte_series_add(c, 2.5);
        rte_series_add(g, 1);
        rte_series_observe(h, 0.25);
        rte_series_observe(h, 4);
        ncpu++;
    }
    assert_int_equal(sched_setaffinity(0, sizeof allowed, &allowed), 0);
    assert_true(ncpu >= 1);
    assert_true(rte_series_value(c) == ncpu * 3.5);
    assert_true(rte_series_value(g) == ncpu);
    assert_true(rte_series_value(h) == 2 * ncpu);
    e = render_and_parse(&text);
    assert_true(value_of(e, "rte_test_cpu_total", none) == ncpu * 3.5);
    assert_true(value_of(e, "rte_test_cpu_gauge", none) == ncpu);
    assert_true(value_of(e, "rte_test_cpu_hist_count", none) == 2 * ncpu);
    assert_true(value_of(e, "rte_test_cpu_hist_sum", none) == ncpu * 4.25);
    assert_true(value_of(e, "rte_test_cpu_hist_bucket", (const char *const[]){"le", "0.5", NULL}) ==
                ncpu);
    assert_true(value_of(e, "rte_test_cpu_hist_bucket",
                         (const char *const[]){"le", "+Inf", NULL}) == 2 * ncpu);
    free(e);
    free(text);
}

#define RACED_SERIES 200

struct race {
    rte_metric *family;
    rte_series *got[THREADS][RACED_SERIES];
    int t;
};

/* one thread: resolve label values v0..v199, starting at a different one than its neighbours */
static void *resolve_all(void *arg)
{
    struct race *r = arg;
    int t = __atomic_fetch_add(&r->t, 1, __ATOMIC_RELAXED);
    char v[16];

    for (int k = 0; k < RACED_SERIES; k++) {
        int j = (k + t * 37) % RACED_SERIES;
        snprintf(v, sizeof v, "v%d", j);
        r->got[t][j] = rte_metric_labels(r->family, (const char *const[]){v});
        rte_series_inc(r->got[t][j]);
    }
    return NULL;
}

/*
 * series are found without a lock and created under one: threads racing to
 * resolve and create the same 200 label values all get one series per
 * value, each counted once per thread
 */
static void test_concurrent_series_creation(void **state)
{
    static struct race r;
    pthread_t t[THREADS];
    char v[16];

    (void)state;
    memset(&r, 0, sizeof r);
    r.family = rte_counter_new("rte_test_raced_total", "c", (const char *const[]){"v", NULL});
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, resolve_all, &r), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int j = 0; j < RACED_SERIES; j++) {
        snprintf(v, sizeof v, "v%d", j);
        rte_series *want = rte_metric_labels(r.family, (const char *const[]){v});
        for (int i = 0; i < THREADS; i++)
            assert_ptr_equal(r.got[i][j], want);
        assert_true(rte_series_value(want) == THREADS);
    }
    size_t len;
    char *text = rte_metrics_render(&len);
    int n = 0;
    for (const char *p = text; (p = strstr(p, "\nrte_test_raced_total{")) != NULL; p++)
        n++;
    assert_int_equal(n, RACED_SERIES);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter, reset),
        cmocka_unit_test_teardown(test_label_escaping_round_trips, reset),
        cmocka_unit_test_teardown(test_gauge_and_numbers, reset),
        cmocka_unit_test_teardown(test_histogram_default_buckets, reset),
        cmocka_unit_test_teardown(test_histogram_labels_custom_buckets, reset),
        cmocka_unit_test_teardown(test_registry, reset),
        cmocka_unit_test_teardown(test_misuse_panics, reset),
        cmocka_unit_test_teardown(test_concurrent_increments, reset),
        cmocka_unit_test_teardown(test_updates_on_every_cpu_add_up, reset),
        cmocka_unit_test_teardown(test_concurrent_series_creation, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
