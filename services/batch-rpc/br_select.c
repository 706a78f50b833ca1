/*
 * br_select.c - which members a job checks (br_select.h).
 *
 * A MemberIdList is checked field by field (each id 1..128 bytes without
 * control characters, no id twice: a duplicate is refused, never silently
 * dropped). A MemberQuery is answered from the member directory's snapshot
 * with the filters the directory can answer today; any other filter that is
 * set is refused by name, so a caller never gets a job over a population
 * the service did not actually select.
 */
#include "br_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 128

/* FNV-1a; ids are short */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* br_select_ids - any thread */
int br_select_ids(const char *const *ids, size_t n, int max, char *err, size_t errlen)
{
    size_t cap = 16, *slot = NULL;
    int rc = -1;

    if (n == 0 || n > (size_t)max) {
        snprintf(err, errlen, "member_ids.member_ids: expected 1..%d member ids, got %zu", max, n);
        return -1;
    }
    while (cap < n * 2)
        cap *= 2;
    slot = calloc(cap, sizeof *slot); /* index + 1, 0 = empty */
    if (slot == NULL) {
        snprintf(err, errlen, "member_ids: out of memory for %zu ids", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        if (len == 0 || len > ID_MAX) {
            snprintf(err, errlen, "member_ids.member_ids[%zu]: expected 1..%d bytes, got %zu", i,
                     ID_MAX, len);
            goto out;
        }
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)ids[i][k] < 0x20 || ids[i][k] == 0x7f) {
                snprintf(err, errlen, "member_ids.member_ids[%zu]: control character at byte %zu",
                         i, k);
                goto out;
            }
        size_t h = (size_t)hash(ids[i]) & (cap - 1);
        while (slot[h] != 0) {
            if (strcmp(ids[slot[h] - 1], ids[i]) == 0) {
                snprintf(err, errlen,
                         "member_ids.member_ids[%zu]: duplicate of member_ids[%zu] (each member "
                         "once per job)",
                         i, slot[h] - 1);
                goto out;
            }
            h = (h + 1) & (cap - 1);
        }
        slot[h] = i + 1;
    }
    rc = 0;
out:
    free(slot);
    return rc;
}

static int64_t ts_ms(const Rte__V1__Timestamp *t)
{
    return t->seconds * 1000 + t->nanos / 1000000;
}

static int ts_ok(const Rte__V1__Timestamp *t, const char *field, char *err, size_t errlen)
{
    if (t != NULL && (t->nanos < 0 || t->nanos > 999999999)) {
        snprintf(err, errlen, "member_query.%s.nanos: expected 0..999999999", field);
        return -1;
    }
    return 0;
}

/* the first filter set that the directory cannot answer yet, or NULL */
static const char *unsupported(const Rte__V1__MemberQuery *q)
{
    if (q->benefit_contract_filter)
        return "benefit_contract_filter";
    if (q->n_feature_options)
        return "feature_options";
    if (q->predicate_filter)
        return "predicate_filter";
    if (q->coverage_filter)
        return "coverage_filter";
    if (q->insurance_plan_filter)
        return "insurance_plan_filter";
    if (q->family_filter)
        return "family_filter";
    if (q->demographics_filter)
        return "demographics_filter";
    if (q->min_app_usage_probability != 0.0f)
        return "min_app_usage_probability";
    if (q->engagement_filter)
        return "engagement_filter";
    if (q->care_journey_filter)
        return "care_journey_filter";
    if (q->recent_event_filter)
        return "recent_event_filter";
    if (q->cursor && q->cursor[0])
        return "cursor";
    if (q->sort_order && (q->sort_order->field || q->sort_order->direction))
        return "sort_order";
    if (q->risk_stratification_filter)
        return "risk_stratification_filter";
    if (q->biometric_filter)
        return "biometric_filter";
    if (q->sdoh_filter)
        return "sdoh_filter";
    if (q->provider_network_filter)
        return "provider_network_filter";
    if (q->temporal_event_filter)
        return "temporal_event_filter";
    return NULL;
}

/* AccountStatus (proto) to the directory's status, -1 if it has none */
static int dir_status(int s)
{
    switch (s) {
    case RTE__V1__ACCOUNT_STATUS__ACTIVE:
        return RTE_MEMBER_ACTIVE;
    case RTE__V1__ACCOUNT_STATUS__INACTIVE:
        return RTE_MEMBER_INACTIVE;
    case RTE__V1__ACCOUNT_STATUS__SUSPENDED:
        return RTE_MEMBER_SUSPENDED;
    case RTE__V1__ACCOUNT_STATUS__PENDING_ACTIVATION:
        return RTE_MEMBER_PENDING;
    default:
        return -1;
    }
}

static int in_list(const char *v, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return 1;
    return 0;
}

/* br_select_check_query - any thread */
int br_select_check_query(const Rte__V1__MemberQuery *q, int max, char *err, size_t errlen)
{
    const char *u = unsupported(q);

    if (u != NULL) {
        snprintf(err, errlen,
                 "member_query.%s: not supported by this member directory yet (supported: "
                 "sponsor_ids, population_ids, required_feature_flags, has_rte_enabled, "
                 "eligibility_checked_after/before, last_active_after/before, "
                 "account_statuses, exclude_mock_accounts, limit)",
                 u);
        return -1;
    }
    if (q->limit < 0 || q->limit > max) {
        snprintf(err, errlen, "member_query.limit: expected 0..%d (0 = up to %d), got %d", max, max,
                 q->limit);
        return -1;
    }
    for (size_t i = 0; i < q->n_account_statuses; i++) {
        int s = (int)q->account_statuses[i];
        if (s != RTE__V1__ACCOUNT_STATUS__DEPRECATED && dir_status(s) < 0) {
            snprintf(err, errlen,
                     "member_query.account_statuses[%zu]: expected ACTIVE, INACTIVE, "
                     "SUSPENDED, PENDING_ACTIVATION or DEPRECATED, got %d",
                     i, s);
            return -1;
        }
    }
    for (size_t i = 0; i < q->n_required_feature_flags; i++)
        if (q->required_feature_flags[i]->key == NULL ||
            q->required_feature_flags[i]->key[0] == 0) {
            snprintf(err, errlen, "member_query.required_feature_flags: empty flag name");
            return -1;
        }
    if (ts_ok(q->eligibility_checked_after, "eligibility_checked_after", err, errlen) != 0 ||
        ts_ok(q->eligibility_checked_before, "eligibility_checked_before", err, errlen) != 0 ||
        ts_ok(q->last_active_after, "last_active_after", err, errlen) != 0 ||
        ts_ok(q->last_active_before, "last_active_before", err, errlen) != 0)
        return -1;
    return 0;
}

/* does m pass q? flagbit[i] is the snapshot bit of required flag i, -1 if the flag is unknown */
static int match(const rte_member *m, const Rte__V1__MemberQuery *q, const int *flagbit)
{
    if (q->n_sponsor_ids && !in_list(m->sponsor_id, q->sponsor_ids, q->n_sponsor_ids))
        return 0;
    if (q->n_population_ids && !in_list(m->population_id, q->population_ids, q->n_population_ids))
        return 0;
    if (q->has_rte_enabled && !m->has_rte_enabled)
        return 0;
    if (q->exclude_mock_accounts && m->is_mock)
        return 0;
    if (q->n_account_statuses) {
        int ok = 0;
        for (size_t i = 0; i < q->n_account_statuses && !ok; i++)
            ok = dir_status((int)q->account_statuses[i]) == m->account_status;
        if (!ok)
            return 0;
    }
    for (size_t i = 0; i < q->n_required_feature_flags; i++) {
        int on = flagbit[i] >= 0 && (m->feature_flags >> flagbit[i]) & 1;
        if (on != (q->required_feature_flags[i]->value != 0))
            return 0;
    }
    /* a time filter needs the time: a member never checked is before any "before" */
    if (q->eligibility_checked_after &&
        (m->last_check_ms < 0 || m->last_check_ms < ts_ms(q->eligibility_checked_after)))
        return 0;
    if (q->eligibility_checked_before && m->last_check_ms >= ts_ms(q->eligibility_checked_before))
        return 0;
    if (q->last_active_after &&
        (m->last_login_ms < 0 || m->last_login_ms < ts_ms(q->last_active_after)))
        return 0;
    if (q->last_active_before &&
        (m->last_login_ms < 0 || m->last_login_ms >= ts_ms(q->last_active_before)))
        return 0;
    return 1;
}

/* br_select_query - any thread */
int br_select_query(const rte_member_snapshot *snap, const Rte__V1__MemberQuery *q, int max,
                    const char ***ids, size_t *n, char *err, size_t errlen)
{
    /* without a limit, look for one more than a job may hold to tell the caller */
    size_t count = rte_member_snapshot_count(snap),
           lim = q->limit > 0 ? (size_t)q->limit : (size_t)max + 1;
    const char *const *names;
    size_t nflags = rte_member_snapshot_flags(snap, &names);
    int *flagbit = calloc(q->n_required_feature_flags + 1, sizeof *flagbit);
    const char **out = NULL;
    size_t k = 0;

    *ids = NULL;
    *n = 0;
    if (flagbit == NULL)
        goto oom;
    for (size_t i = 0; i < q->n_required_feature_flags; i++) {
        flagbit[i] = -1;
        for (size_t b = 0; b < nflags; b++)
            if (strcmp(names[b], q->required_feature_flags[i]->key) == 0)
                flagbit[i] = (int)b;
    }
    out = malloc(sizeof *out * ((lim < count ? lim : count) + 1));
    if (out == NULL)
        goto oom;
    for (size_t i = 0; i < count && k < lim; i++) {
        const rte_member *m = rte_member_snapshot_at(snap, i);
        if (match(m, q, flagbit))
            out[k++] = m->member_id;
    }
    free(flagbit);
    if (q->limit == 0 && k > (size_t)max) {
        free(out);
        snprintf(err, errlen,
                 "member_query: selects more than %d members (batchrpc.request_max); narrow it "
                 "or set member_query.limit",
                 max);
        return -1;
    }
    *ids = out;
    *n = k;
    return 0;
oom:
    free(flagbit);
    snprintf(err, errlen, "member_query: out of memory");
    return -1;
}
