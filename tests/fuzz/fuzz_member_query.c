/*
 * fuzz_member_query.c - libFuzzer target: a PredicateFilter expression as
 * rte_member_query_parse compiles it and rte_member_query_resolve runs it
 * over a small directory (three members with every kind of attribute,
 * some absent).
 *
 * The input is the expression. It either fails with an error starting
 * "expression:" (RTE_MEMBER_QUERY_INVALID), or resolves; then the ids come
 * in member id order, the total is at most the directory's size, and the
 * expression and its negation never both hold for a member (absent values
 * make neither true, as SQL's NULL does).
 */
#include "fuzz.h"
#include "rte/member_dir.h"
#include "rte/member_query.h"

static rte_member_dir *dir;

static const char members[] =
    "{\"member_id\":\"M1\",\"date_of_birth\":\"1980-02-29\",\"state\":\"CA\",\"plan_type\":"
    "\"HDHP\",\"has_rte_enabled\":true,\"account_status\":\"ACTIVE\",\"feature_flags\":[\"a\"],"
    "\"last_login_at\":\"2026-01-01T10:00:00Z\",\"enrollment_date\":\"2020-05-01\","
    "\"healthcare_services\":[\"VPC\",\"EMO\"],\"individual_deductible\":3000.5,"
    "\"has_hsa\":true,\"zip_code\":\"94110\",\"metal_tier\":\"SILVER\","
    "\"feature_options\":{\"max_visits_per_year\":12,\"provider_instructions\":\"x\"},"
    "\"events\":[[\"2026-01-02T00:00:00Z\",\"domain.authentication.v1.SIGNIN\",\"mx-backend\"]]}\n"
    "{\"member_id\":\"M2\",\"date_of_birth\":\"2010-12-31\",\"state\":\"TX\",\"chronic_"
    "conditions\":"
    "[\"DIABETES\"],\"family_size\":4,\"coverage_end\":\"2026-03-01\",\"is_vip\":true}\n"
    "{\"member_id\":\"M3\"}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    (void)argc, (void)argv;
    fuzz_quiet();
    dir = rte_member_dir_new(fuzz_file((const uint8_t *)members, sizeof members - 1), err,
                             sizeof err);
    if (!dir) {
        fprintf(stderr, "fuzz_member_query: %s\n", err);
        abort();
    }
    return 0;
}

static int record(const rte_member *m, size_t index, void *arg)
{
    uint8_t *hit = arg;
    (void)m;
    hit[index] = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], *expr = fuzz_str(data, size), *neg = NULL;
    int rc;
    int64_t now = 1767571200000; /* 2026-01-05 */
    rte_member_query *q = rte_member_query_parse(expr, now, &rc, err, sizeof err);
    rte_member_query *nq = NULL;
    rte_member_snapshot *s = rte_member_dir_acquire(dir);
    rte_member_query_result res, nres;
    uint8_t hit[3] = {0}, nhit[3] = {0};

    if (!q) {
        FUZZ_ASSERT(rc == RTE_MEMBER_QUERY_INVALID || rc == -1);
        FUZZ_ASSERT(rc == -1 || strncmp(err, "expression:", 11) == 0);
        goto out;
    }
    FUZZ_ASSERT(rte_member_query_resolve(q, s, record, hit, &res, err, sizeof err) == 0);
    FUZZ_ASSERT(res.total <= 3 && res.returned == res.total && !res.next_cursor[0]);
    neg = malloc(size + 8);
    FUZZ_ASSERT(neg != NULL);
    memcpy(neg, "NOT (", 5);
    memcpy(neg + 5, expr, strlen(expr));
    memcpy(neg + 5 + strlen(expr), ")", 2);
    nq = rte_member_query_parse(neg, now, &rc, err, sizeof err);
    if (nq) { /* not when the nesting limit or a trailing comment-like token stops it */
        FUZZ_ASSERT(rte_member_query_resolve(nq, s, record, nhit, &nres, err, sizeof err) == 0);
        for (int i = 0; i < 3; i++)
            FUZZ_ASSERT(!(hit[i] && nhit[i]));
    }
out:
    rte_member_query_free(q);
    rte_member_query_free(nq);
    rte_member_snapshot_release(s);
    free(neg);
    free(expr);
    return 0;
}
