/*
 * br_select.c - which members a job checks (br_select.h).
 *
 * A MemberIdList is checked field by field (each id 1..128 bytes without
 * control characters, no id twice: a duplicate is refused, never silently
 * dropped). A MemberQuery is compiled and resolved by libcommon's
 * member_query over the directory's snapshot (every filter family, the
 * expression language, limit, cursor, sort order); what it cannot answer
 * is refused naming the field, so a caller never gets a job over a
 * population the service did not actually select.
 */
#include "br_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/clock.h"
#include "rte/member_query.h"

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

/* br_select_check_query - any thread */
int br_select_check_query(const Rte__V1__MemberQuery *q, int max, char *err, size_t errlen)
{
    int rc;
    rte_member_query *mq;

    if (q->limit < 0 || q->limit > max) {
        snprintf(err, errlen, "member_query.limit: expected 0..%d (0 = up to %d), got %d", max, max,
                 q->limit);
        return -1;
    }
    mq = rte_member_query_new(q, rte_clock_now_ms(), &rc, err, errlen);
    if (mq == NULL)
        return -1;
    rte_member_query_free(mq);
    return 0;
}

/* br_select_query - any thread */
int br_select_query(const rte_member_snapshot *snap, const Rte__V1__MemberQuery *q, int max,
                    const char ***ids, size_t *n, char *err, size_t errlen)
{
    rte_member_query_result res;
    rte_member_query *mq;
    int rc;

    *ids = NULL;
    *n = 0;
    mq = rte_member_query_new(q, rte_clock_now_ms(), &rc, err, errlen);
    if (mq == NULL)
        return -1;
    rc = rte_member_query_ids(mq, snap, ids, n, &res, err, errlen);
    rte_member_query_free(mq);
    if (rc != 0)
        return -1;
    if (q->limit == 0 && res.total > (size_t)max) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        snprintf(err, errlen,
                 "member_query: selects %zu members, more than %d (batchrpc.request_max); narrow "
                 "it or set member_query.limit",
                 res.total, max);
        return -1;
    }
    return 0;
}
