/*
 * test_l1.c - gw_l1: the bounded in-process cache (1 s visibility bound,
 * newer entries kept, fixed memory, eviction, threads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gw_l1.h"

static rte_cache_entry entry(int64_t cached_at, double copay)
{
    rte_cache_entry e;
    memset(&e, 0, sizeof e);
    e.eligible = 1;
    e.has_copay = 1;
    e.copay_amount = copay;
    e.cached_at_ms = cached_at;
    e.fresh_until_ms = cached_at + 1000;
    return e;
}

static void test_get_put_ttl(void **state)
{
    (void)state;
    gw_l1 *c = gw_l1_new(100, 1000);
    rte_cache_entry e = entry(5, 10), out;
    assert_false(gw_l1_get(c, "k1", 100, &out));
    gw_l1_put(c, "k1", &e, 100);
    assert_true(gw_l1_get(c, "k1", 100, &out));
    assert_true(out.copay_amount == 10);
    assert_true(gw_l1_get(c, "k1", 1099, &out));
    assert_false(gw_l1_get(c, "k1", 1100, &out)); /* lives at most ttl */
    assert_false(gw_l1_get(c, "k1", 1101, &out));
    gw_l1_put(c, "k1", &e, 2000);
    gw_l1_drop(c, "k1", 2000);
    assert_false(gw_l1_get(c, "k1", 2000, &out));
    assert_null(gw_l1_new(0, 1000));
    gw_l1_free(NULL);
    gw_l1_free(c);
}

static void test_newer_kept(void **state)
{
    (void)state;
    gw_l1 *c = gw_l1_new(16, 1000);
    rte_cache_entry newer = entry(200, 20), older = entry(100, 10), out;
    gw_l1_put(c, "k", &newer, 10);
    gw_l1_put(c, "k", &older, 20);
    assert_true(gw_l1_get(c, "k", 30, &out));
    assert_true(out.cached_at_ms == 200);
    /* once the newer one expired, the older one may be loaded again */
    gw_l1_put(c, "k", &older, 2000);
    assert_true(gw_l1_get(c, "k", 2000, &out));
    assert_true(out.cached_at_ms == 100);
    gw_l1_free(c);
}

/* A value read before an invalidation arrived must not land after it. */
static void test_invalidation_race_and_clear(void **state)
{
    (void)state;
    gw_l1 *c = gw_l1_new(16, 60000);
    rte_cache_entry old = entry(100, 10), fresh = entry(300, 30), out;

    gw_l1_drop(c, "k", 500);      /* the write elsewhere was announced at 500 */
    gw_l1_put(c, "k", &old, 450); /* but this value was read from Redis at 450 */
    assert_false(gw_l1_get(c, "k", 510, &out));
    gw_l1_put(c, "k", &fresh, 520); /* read after the invalidation: accepted */
    assert_true(gw_l1_get(c, "k", 530, &out));
    assert_true(out.copay_amount == 30);
    assert_true(gw_l1_get(c, "k", 50000, &out)); /* long ttl while subscribed */

    gw_l1_clear(c, 60000); /* invalidations may have been missed */
    assert_false(gw_l1_get(c, "k", 60001, &out));
    gw_l1_put(c, "k", &fresh, 59999); /* read before the clear: refused */
    assert_false(gw_l1_get(c, "k", 60002, &out));
    gw_l1_set_ttl(c, 1000);
    gw_l1_put(c, "k", &fresh, 60010);
    assert_true(gw_l1_get(c, "k", 61000, &out));
    assert_false(gw_l1_get(c, "k", 61010, &out)); /* back to the 1 s bound */
    gw_l1_free(c);
}

static void test_bounded(void **state)
{
    (void)state;
    gw_l1 *c = gw_l1_new(64, 1000);
    char key[32];
    rte_cache_entry e = entry(1, 1), out;
    assert_int_equal(gw_l1_capacity(c), 64);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        gw_l1_put(c, key, &e, 10 + i);
    }
    int held = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        held += gw_l1_get(c, key, 1010, &out);
    }
    assert_true(held > 0 && held <= 64);
    snprintf(key, sizeof key, "key-%d", 999); /* the newest survives */
    assert_true(gw_l1_get(c, key, 1010, &out));
    gw_l1_free(c);
}

/* A full set evicts the way read least recently, not the one loaded first. */
static void test_hot_key_survives_eviction(void **state)
{
    (void)state;
    gw_l1 *c = gw_l1_new(1, 1000); /* one set */
    int ways = (int)gw_l1_capacity(c);
    char key[16];
    rte_cache_entry e = entry(1, 1), out;
    assert_true(ways >= 4);
    for (int i = 0; i < ways; i++) {
        snprintf(key, sizeof key, "k%d", i);
        gw_l1_put(c, key, &e, 10 + i);
    }
    assert_true(gw_l1_get(c, "k0", 20, &out)); /* k0: loaded first, read last */
    assert_true(gw_l1_get(c, "k2", 21, &out));
    gw_l1_put(c, "new", &e, 22);
    assert_true(gw_l1_get(c, "k0", 23, &out));
    assert_false(gw_l1_get(c, "k1", 23, &out)); /* least recently used */
    assert_true(gw_l1_get(c, "k2", 23, &out));
    assert_true(gw_l1_get(c, "new", 23, &out));
    gw_l1_drop(c, "k9", 24); /* a tombstone takes the least recent way too: k3 */
    assert_false(gw_l1_get(c, "k3", 25, &out));
    assert_true(gw_l1_get(c, "k0", 25, &out));
    gw_l1_free(c);
}

static gw_l1 *shared;

static void *hammer(void *arg)
{
    char key[32];
    rte_cache_entry e = entry(1, (double)(intptr_t)arg), out;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", i % 300);
        gw_l1_put(shared, key, &e, 1 + i % 500);
        gw_l1_get(shared, key, 1 + i % 500, &out);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    shared = gw_l1_new(256, 1000);
    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    gw_l1_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_ttl),
        cmocka_unit_test(test_newer_kept),
        cmocka_unit_test(test_invalidation_race_and_clear),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_hot_key_survives_eviction),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
