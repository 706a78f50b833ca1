/*
 * cron_model.c - logistic app-usage model (see cron_model.h for features).
 *
 * The feature definitions here and in scripts/fit_member_cron_model.py must
 * stay identical: the shipped coefficients were fitted on the script's.
 */
#include "cron_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "cron_yaml.h"

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

static int number(cron_yaml *y, yaml_node_t *n, const char *path, const char *key, double *out,
                  char *err, size_t errlen)
{
    const char *v = cron_yaml_str(n);
    char *end = NULL;
    if (v)
        *out = strtod(v, &end);
    if (!v || end == v || *end || !isfinite(*out)) {
        snprintf(err, errlen, "model %s: line %d: %s = '%s': expected a number", path,
                 cron_yaml_line(n), key, v ? v : "(not a scalar)");
        return -1;
    }
    (void)y;
    return 0;
}

/* cron_model_load - any thread; reads the file */
int cron_model_load(const char *path, cron_model *m, char *err, size_t errlen)
{
    static const char *const names[] = {
        "recency", "appointment_48h", "recent_enrollment_30d", "hour_concentration",
        "active",  "weekday"};
    double *dst[] = {&m->recency,       &m->appointment, &m->enrollment,
                     &m->concentration, &m->active,      &m->weekday};
    char why[384];
    cron_yaml y;
    int rc = -1;

    memset(m, 0, sizeof *m);
    m->window_minutes = 60;
    if (cron_yaml_load(&y, path, why, sizeof why) < 0) {
        snprintf(err, errlen, "model %s", why);
        return -1;
    }
    yaml_node_t *root = cron_yaml_root(&y);
    const char *ver = cron_yaml_str(cron_yaml_get(&y, root, "version"));
    if (!ver || !*ver || strlen(ver) >= sizeof m->version) {
        snprintf(err, errlen, "model %s: 'version' is missing or longer than %zu characters", path,
                 sizeof m->version - 1);
        goto out;
    }
    snprintf(m->version, sizeof m->version, "%s", ver);
    yaml_node_t *icpt = cron_yaml_get(&y, root, "intercept");
    if (!icpt) {
        snprintf(err, errlen, "model %s: 'intercept' is missing", path);
        goto out;
    }
    if (number(&y, icpt, path, "intercept", &m->intercept, err, errlen) < 0)
        goto out;
    yaml_node_t *co = cron_yaml_get(&y, root, "coefficients");
    if (!co || co->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "model %s: 'coefficients' must be a mapping of feature: number",
                 path);
        goto out;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        yaml_node_t *n = cron_yaml_get(&y, co, names[i]);
        if (n && number(&y, n, path, names[i], dst[i], err, errlen) < 0)
            goto out;
    }
    yaml_node_t *wm = cron_yaml_get(&y, root, "window_minutes");
    if (wm) {
        double w;
        if (number(&y, wm, path, "window_minutes", &w, err, errlen) < 0)
            goto out;
        if (w < 1 || w > 1440) {
            snprintf(err, errlen, "model %s: window_minutes = %g: expected 1-1440", path, w);
            goto out;
        }
        m->window_minutes = (int)w;
    }
    rc = 0;
out:
    cron_yaml_free(&y);
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* cron_model_predict - any thread; no allocation */
void cron_model_predict(const cron_model *m, const rte_member *mem, int64_t now_ms,
                        cron_prediction *out)
{
    double rec = -5.0;
    if (mem->last_login_ms >= 0) {
        double days = (double)(now_ms - mem->last_login_ms) / (double)DAY_MS;
        rec = -log1p(days > 0 ? days : 0);
    }
    int appt = mem->appointment_ms >= 0 && mem->appointment_ms >= now_ms &&
               mem->appointment_ms - now_ms <= 48 * HOUR_MS;
    int enrolled = mem->enrollment_ms >= 0 && now_ms - mem->enrollment_ms >= 0 &&
                   now_ms - mem->enrollment_ms <= 30 * DAY_MS;
    const float *u = mem->usage_by_hour;
    double conc = 0;
    for (int h = 0; h < 24; h++) {
        double s = (double)u[h] + u[(h + 1) % 24] + u[(h + 2) % 24];
        if (s > conc)
            conc = s;
    }
    int64_t day = floor_div(now_ms, DAY_MS);
    int dow = (int)((day % 7 + 10) % 7); /* Monday = 0; 1970-01-01 was a Thursday */
    double wk = (double)mem->weekday_factor[dow] - 1.0;
    double z = m->intercept + m->recency * rec + m->appointment * appt + m->enrollment * enrolled +
               m->concentration * conc + m->active * (mem->account_status == RTE_MEMBER_ACTIVE) +
               m->weekday * wk;
    double p = 1.0 / (1.0 + exp(-z));

    /* the most likely hour in the next 24 h */
    int64_t hour0 = floor_div(now_ms, HOUR_MS) + 1;
    double best = -1;
    int64_t best_hour = hour0;
    for (int k = 0; k < 24; k++) {
        int64_t hr = hour0 + k;
        int64_t d = floor_div(hr, 24);
        int wd = (int)((d % 7 + 10) % 7);
        double w = (double)u[(int)(hr - d * 24)] * mem->weekday_factor[wd];
        if (w > best) {
            best = w;
            best_hour = hr;
        }
    }
    out->probability = (float)p;
    out->confidence = (float)(0.5 * fabs(2.0 * p - 1.0) + 0.5 * (conc > 1 ? 1 : conc));
    out->predicted_ms = best_hour * HOUR_MS;
    out->ops = CRON_OP_CHECK_ELIGIBILITY | (appt ? CRON_OP_GET_COVERAGE : 0) |
               (enrolled ? CRON_OP_VIEW_BENEFITS : 0);
}

/* cron_confidence_label - any thread */
const char *cron_confidence_label(float c)
{
    return c > 0.8f ? "high" : c > 0.5f ? "medium" : "low";
}
