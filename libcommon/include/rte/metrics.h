/*
 * metrics.h - Prometheus counters, gauges and histograms with labels.
 *
 * A metric family is registered once (name, help, label names, and bucket
 * bounds for histograms) and returns a handle; rte_metric_labels() resolves
 * one set of label values to a series, creating it on first use. Hot paths
 * keep the series pointer and update it with atomics: no lock is taken on
 * inc/set/observe. Only series creation and exposition take the family's
 * mutex.
 *
 * rte_metrics_render writes the whole registry in the Prometheus text
 * exposition format 0.0.4 (HELP, TYPE, escaped label values, histogram
 * _bucket{le} / _sum / _count, +Inf bucket).
 *
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; a bad name or registering one
 * name twice with a different type is a bug (rte_panic). Registering the
 * same name with the same type returns the existing family.
 *
 * Thread safety: everything may be called from any thread.
 */
#ifndef RTE_METRICS_H
#define RTE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rte_metric rte_metric;        /* a family */
typedef struct rte_metric_series rte_series; /* one label-value combination */

#define RTE_METRICS_MAX_LABELS 4

/* rte_counter_new - register a counter family with up to 4 label names (NULL-terminated) */
rte_metric *rte_counter_new(const char *name, const char *help, const char *const *labels);

/* rte_gauge_new - register a gauge family */
rte_metric *rte_gauge_new(const char *name, const char *help, const char *const *labels);

/*
 * rte_histogram_new - register a histogram family with nbuckets ascending
 * upper bounds (the +Inf bucket is implicit); buckets NULL = default
 * latency buckets in seconds (0.005 .. 60)
 */
rte_metric *rte_histogram_new(const char *name, const char *help, const char *const *labels,
                              const double *buckets, int nbuckets);

/*
 * rte_metric_labels - the series for these label values (as many as the
 * family has label names); created on first use; the pointer stays valid for
 * the process lifetime, so callers may cache it
 */
rte_series *rte_metric_labels(rte_metric *m, const char *const *values);

/* rte_metric_series0 - the series of a family without labels */
rte_series *rte_metric_series0(rte_metric *m);

/* rte_series_inc - add 1 to a counter or gauge */
void rte_series_inc(rte_series *s);
/* rte_series_add - add v (>= 0 for counters) */
void rte_series_add(rte_series *s, double v);
/* rte_series_dec - subtract 1 from a gauge */
void rte_series_dec(rte_series *s);
/* rte_series_set - set a gauge */
void rte_series_set(rte_series *s, double v);
/* rte_series_observe - record one histogram observation */
void rte_series_observe(rte_series *s, double v);
/* rte_series_value - current value of a counter or gauge (count for histograms) */
double rte_series_value(const rte_series *s);

/* convenience: resolve labels and update in one call (takes the family mutex if new) */
void rte_counter_inc(rte_metric *m, const char *const *values);
void rte_counter_add(rte_metric *m, const char *const *values, double v);
void rte_gauge_set(rte_metric *m, const char *const *values, double v);
void rte_histogram_observe(rte_metric *m, const char *const *values, double v);

/*
 * rte_metrics_render - the whole registry as Prometheus text 0.0.4; returns a
 * malloc'd NUL-terminated string (caller frees) and its length in *len
 */
char *rte_metrics_render(size_t *len);

/* rte_metrics_reset_for_tests - drop every family (unit tests only) */
void rte_metrics_reset_for_tests(void);

#endif
