/*
 * cron_model.h - the app-usage predictor: a logistic model from a YAML file.
 *
 * P(member opens the app in the next 24 h) = 1 / (1 + exp(-z)) with
 * z = intercept + sum(coefficient_i * feature_i) over the member directory's
 * signals at instant now:
 *   recency                -log1p(days since last login), -5 if never
 *   appointment_48h        1 if an appointment starts within the next 48 h
 *   recent_enrollment_30d  1 if enrolled within the last 30 days
 *   hour_concentration     share of usage in the busiest 3-hour window
 *   active                 1 if the account is ACTIVE
 *   weekday                weekday_factor of today's weekday - 1
 * The coefficients and the version string come from the model file
 * (services/member-cron/model.yaml, fitted offline by
 * scripts/fit_member_cron_model.py); a missing coefficient is 0.
 *
 * predicted_time is the start of the member's most used hour within the
 * next 24 h (usage_by_hour weighted by weekday_factor); confidence combines
 * how decided the probability is with how concentrated the habit is.
 *
 * Errors: cron_model_load names the file and the key that is wrong.
 * Thread safety: a loaded model is immutable; cron_model_predict is
 * reentrant and allocation-free (the hot path of every fire).
 */
#ifndef CRON_MODEL_H
#define CRON_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "rte/member_dir.h"

enum { CRON_OP_CHECK_ELIGIBILITY = 1, CRON_OP_GET_COVERAGE = 2, CRON_OP_VIEW_BENEFITS = 4 };

typedef struct cron_model {
    char version[64];
    double intercept;
    double recency, appointment, enrollment, concentration, active, weekday;
    int window_minutes;
} cron_model;

typedef struct cron_prediction {
    float probability;
    float confidence;
    int64_t predicted_ms; /* start of the likely hour */
    unsigned ops;         /* CRON_OP_* bits */
} cron_prediction;

/* cron_model_load - read a model file into *m; 0, or -1 with err */
int cron_model_load(const char *path, cron_model *m, char *err, size_t errlen);

/* cron_model_predict - the prediction for member at now_ms; any thread */
void cron_model_predict(const cron_model *m, const rte_member *mem, int64_t now_ms,
                        cron_prediction *out);

/* cron_confidence_label - "high" (> 0.8), "medium" (> 0.5) or "low"; static */
const char *cron_confidence_label(float confidence);

#endif
