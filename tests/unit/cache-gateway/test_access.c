/*
 * test_access.c - gw_access: access tallies (folding, separate keys, a full
 * shard refusing, drains emptying and reusing tables, threads adding while
 * another drains: every access counted exactly once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_access.h"

#define MAXT 4096

/* What a drain handed over. */
typedef struct drained {
    int n;
    gw_access_tally t[MAXT];
} drained;

static void collect(const gw_access_tally *y, void *arg)
{
    drained *d = arg;
    assert_true(d->n < MAXT);
    d->t[d->n++] = *y;
}

static gw_access acc(const char *mk, const char *tp, enum gw_result r, enum gw_mode m, int64_t now,
                     int64_t latency, const char *rid)
{
    gw_access a = {.member_key = mk,
                   .tp = tp,
                   .request_id = rid,
                   .result = r,
                   .mode = m,
                   .now_ms = now,
                   .latency_ms = latency,
                   .entry_source = "stedi_batch",
                   .age_s = now / 1000};
    return a;
}

static const gw_access_tally *find(const drained *d, const char *mk, const char *tp,
                                   enum gw_result r, enum gw_mode m)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->t[i].member_key, mk) == 0 && strcmp(d->t[i].tp, tp) == 0 &&
            d->t[i].result == r && d->t[i].mode == m)
            return &d->t[i];
    return NULL;
}

static void test_folds_one_key(void **state)
{
    (void)state;
    gw_access_table *t = gw_access_new(1, 16);
    static drained d;
    char rid[16];

    for (int i = 0; i < 1000; i++) {
        gw_access a;
        snprintf(rid, sizeof rid, "r%d", i);
        a = acc("0123456789abcdef0123456789abcdef", "AETNA", GW_R_HIT, GW_MODE_DEFAULT, 5000 + i,
                i % 7, rid);
        assert_int_equal(gw_access_add(t, &a), 1);
    }
    d.n = 0;
    assert_int_equal(gw_access_drain(t, collect, &d), 1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.t[0].count, 1000);
    assert_int_equal(d.t[0].first_ms, 5000);
    assert_int_equal(d.t[0].last_ms, 5999);
    assert_int_equal(d.t[0].latency_max_ms, 6);
    /* sum of i % 7 over 0..999: 142 full cycles of 21, then 0..5 */
    assert_int_equal(d.t[0].latency_sum_ms, 142 * 21 + 15);
    assert_string_equal(d.t[0].request_id, "r999");
    assert_string_equal(d.t[0].entry_source, "stedi_batch");
    assert_int_equal(d.t[0].age_s, 5);
    assert_int_equal(d.t[0].result, GW_R_HIT);
    assert_int_equal(d.t[0].mode, GW_MODE_DEFAULT);
    /* a drained table is empty */
    d.n = 0;
    assert_int_equal(gw_access_drain(t, collect, &d), 0);
    gw_access_free(t);
}

static void test_keys_results_modes_apart(void **state)
{
    (void)state;
    gw_access_table *t = gw_access_new(1, 16);
    static drained d;
    const char *mk = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", *mk2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    gw_access list[] = {
        acc(mk, "AETNA", GW_R_HIT, GW_MODE_DEFAULT, 1, 1, "a"),
        acc(mk, "AETNA", GW_R_MISS, GW_MODE_DEFAULT, 2, 1, "b"),
        acc(mk, "AETNA", GW_R_HIT, GW_MODE_PREFER_CACHED, 3, 1, "c"),
        acc(mk, "CIGNA", GW_R_HIT, GW_MODE_DEFAULT, 4, 1, "d"),
        acc(mk2, "AETNA", GW_R_HIT, GW_MODE_DEFAULT, 5, 1, "e"),
        acc(mk, "AETNA", GW_R_HIT, GW_MODE_DEFAULT, 6, 1, "f"),
    };
    list[1].entry_source = NULL; /* a miss answered without an entry */
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        assert_int_equal(gw_access_add(t, &list[i]), 1);
    d.n = 0;
    assert_int_equal(gw_access_drain(t, collect, &d), 5);
    assert_int_equal(find(&d, mk, "AETNA", GW_R_HIT, GW_MODE_DEFAULT)->count, 2);
    assert_string_equal(find(&d, mk, "AETNA", GW_R_HIT, GW_MODE_DEFAULT)->request_id, "f");
    assert_int_equal(find(&d, mk, "AETNA", GW_R_MISS, GW_MODE_DEFAULT)->count, 1);
    assert_string_equal(find(&d, mk, "AETNA", GW_R_MISS, GW_MODE_DEFAULT)->entry_source, "");
    assert_int_equal(find(&d, mk, "AETNA", GW_R_HIT, GW_MODE_PREFER_CACHED)->count, 1);
    assert_int_equal(find(&d, mk, "CIGNA", GW_R_HIT, GW_MODE_DEFAULT)->count, 1);
    assert_int_equal(find(&d, mk2, "AETNA", GW_R_HIT, GW_MODE_DEFAULT)->count, 1);
    /* in the order they were opened */
    assert_string_equal(d.t[0].request_id, "f");
    assert_string_equal(d.t[4].member_key, mk2);
    gw_access_free(t);
}

static void test_full_shard_refuses_new_keys_only(void **state)
{
    (void)state;
    gw_access_table *t = gw_access_new(1, 4);
    static drained d;
    char mk[16];

    for (int i = 0; i < 4; i++) {
        snprintf(mk, sizeof mk, "k%d", i);
        gw_access a = acc(mk, "TP", GW_R_HIT, GW_MODE_DEFAULT, i, 1, "r");
        assert_int_equal(gw_access_add(t, &a), 1);
    }
    gw_access fifth = acc("k4", "TP", GW_R_HIT, GW_MODE_DEFAULT, 9, 1, "r");
    gw_access again = acc("k2", "TP", GW_R_HIT, GW_MODE_DEFAULT, 9, 1, "r");
    assert_int_equal(gw_access_add(t, &fifth), 0); /* the caller sends it alone */
    assert_int_equal(gw_access_add(t, &again), 1); /* a known key still folds */
    d.n = 0;
    assert_int_equal(gw_access_drain(t, collect, &d), 4);
    assert_int_equal(find(&d, "k2", "TP", GW_R_HIT, GW_MODE_DEFAULT)->count, 2);
    assert_null(find(&d, "k4", "TP", GW_R_HIT, GW_MODE_DEFAULT));
    /* room again after the drain */
    assert_int_equal(gw_access_add(t, &fifth), 1);
    gw_access_free(t);
}

static void test_long_fields_cut_short(void **state)
{
    (void)state;
    gw_access_table *t = gw_access_new(1, 4);
    static drained d;
    char rid[200], tp[100];

    memset(rid, 'r', sizeof rid - 1);
    rid[sizeof rid - 1] = '\0';
    memset(tp, 't', sizeof tp - 1);
    tp[sizeof tp - 1] = '\0';
    gw_access a = acc("m", tp, GW_R_ERROR, GW_MODE_CACHE_ONLY, 1, 1, rid);
    assert_int_equal(gw_access_add(t, &a), 1);
    d.n = 0;
    gw_access_drain(t, collect, &d);
    assert_int_equal(strlen(d.t[0].request_id), sizeof d.t[0].request_id - 1);
    assert_int_equal(strlen(d.t[0].tp), sizeof d.t[0].tp - 1);
    gw_access_free(t);
}

/* Many windows of random keys against a plain count: a drained table's index must be clean. */
static void test_windows_match_a_reference(void **state)
{
    (void)state;
    enum { KEYS = 300, CAP = 128 };
    gw_access_table *t = gw_access_new(1, CAP);
    static drained d;
    unsigned seed = 7;

    for (int w = 0; w < 50; w++) {
        int want[KEYS] = {0}, alone = 0, total = 0;
        for (int i = 0; i < 2000; i++) {
            int k = (int)(rand_r(&seed) % KEYS);
            char mk[16];
            snprintf(mk, sizeof mk, "m%d", k);
            gw_access a = acc(mk, "TP", GW_R_HIT, GW_MODE_DEFAULT, i, 1, "r");
            if (gw_access_add(t, &a))
                want[k]++;
            else
                alone++;
        }
        d.n = 0;
        gw_access_drain(t, collect, &d);
        assert_int_equal(d.n, CAP); /* 300 keys over 2000 draws: the table fills */
        for (int i = 0; i < d.n; i++) {
            int k = (int)strtol(d.t[i].member_key + 1, NULL, 10);
            assert_int_equal(d.t[i].count, want[k]);
            total += (int)d.t[i].count;
        }
        assert_int_equal(total + alone, 2000);
    }
    gw_access_free(t);
}

/* Threads adding on every shard while another drains: each access lands in exactly one tally. */
static gw_access_table *shared;

static void *adder(void *arg)
{
    intptr_t id = (intptr_t)arg;
    char mk[16];

    for (int i = 0; i < 20000; i++) {
        snprintf(mk, sizeof mk, "k%d", i % 40);
        gw_access a = acc(mk, "TP", id % 2 ? GW_R_HIT : GW_R_MISS, GW_MODE_DEFAULT, i, 1, "r");
        assert_int_equal(gw_access_add(shared, &a), 1);
    }
    return NULL;
}

static void tally_counts(const gw_access_tally *y, void *arg)
{
    int64_t *sum = arg;
    sum[y->result] += y->count;
}

static void test_threads_and_drains(void **state)
{
    (void)state;
    pthread_t t[4];
    int64_t sum[GW_R_N] = {0};
    shared = gw_access_new(2, 256);
    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, adder, (void *)i);
    for (int i = 0; i < 200; i++)
        gw_access_drain(shared, tally_counts, sum);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    gw_access_drain(shared, tally_counts, sum);
    assert_int_equal(sum[GW_R_HIT], 40000);
    assert_int_equal(sum[GW_R_MISS], 40000);
    gw_access_free(shared);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    assert_null(gw_access_new(0, 10));
    assert_null(gw_access_new(65, 10));
    assert_null(gw_access_new(1, 0));
    gw_access_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folds_one_key),
        cmocka_unit_test(test_keys_results_modes_apart),
        cmocka_unit_test(test_full_shard_refuses_new_keys_only),
        cmocka_unit_test(test_long_fields_cut_short),
        cmocka_unit_test(test_windows_match_a_reference),
        cmocka_unit_test(test_threads_and_drains),
        cmocka_unit_test(test_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
