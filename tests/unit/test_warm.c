/*
 * test_warm.c - the warming queue's scripts (rte/warm.h) against a real
 * redis-server started for the group: verdicts of one call as if its
 * members had been offered one by one (event ids and members repeated in
 * the call, a duplicate member's event id marked seen), sealing at
 * max_batch in the middle of a call, calls larger than the scripts' chunk
 * of 2,000, rte_warm_mark_seen sharing the event-id buckets, and the
 * backlog counts. No Stedi: rte_warm_new(..., NULL, NULL) queues only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/warm.h"
#include "testutil.h"

static tu_redis T;
static char err[512];
static rte_redis *R;
static int prefix_n;

static int setup(void **state)
{
    (void)state;
    int rc = tu_redis_up(&T, 2000);
    R = T.r;
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    tu_redis_down(&T);
    return 0;
}

/* a queue of its own prefix per test */
static rte_warm *new_queue(int max_batch)
{
    rte_warm_opts o;

    rte_warm_opts_init(&o);
    snprintf(o.prefix, sizeof o.prefix, "t%d:warm", ++prefix_n);
    snprintf(o.dedup_secret, sizeof o.dedup_secret, "unit-secret");
    o.max_batch = max_batch;
    rte_warm *w = rte_warm_new(&o, NULL, NULL, err, sizeof err);
    assert_non_null(w);
    return w;
}

static long long redis_int(const char *fmt, const char *a, const char *b)
{
    redisReply *rep = rte_redis_cmd(R, err, sizeof err, fmt, a, b);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static void enqueue(rte_warm *w, rte_warm_item *it, int n)
{
    assert_int_equal(rte_warm_enqueue(w, R, it, n, "unit", 1000, err, sizeof err), 0);
}

static void test_verdicts_in_one_call(void **state)
{
    (void)state;
    rte_warm *w = new_queue(100);
    rte_warm_item it[] = {
        {"m1", "e1", -1}, /* queued */
        {"m2", "e1", -1}, /* event repeated in the call */
        {"m1", "e2", -1}, /* member repeated in the call: e2 is still marked seen */
        {"m3", "e3", -1}, /* queued */
        {"m4", NULL, -1}, /* no event id: member dedupe only */
        {"m4", "", -1},   /* the same member again */
    };
    enqueue(w, it, 6);
    int want[] = {RTE_WARM_QUEUED, RTE_WARM_DUP_EVENT, RTE_WARM_DUP_MEMBER,
                  RTE_WARM_QUEUED, RTE_WARM_QUEUED,    RTE_WARM_DUP_MEMBER};
    for (int i = 0; i < 6; i++)
        assert_int_equal(it[i].verdict, want[i]);

    /* a later call: e2 was seen with its duplicate member; m2 is new */
    rte_warm_item again[] = {{"m9", "e2", -1}, {"m2", "e9", -1}, {"m3", "e10", -1}};
    enqueue(w, again, 3);
    assert_int_equal(again[0].verdict, RTE_WARM_DUP_EVENT);
    assert_int_equal(again[1].verdict, RTE_WARM_QUEUED);
    assert_int_equal(again[2].verdict, RTE_WARM_DUP_MEMBER);

    long open, sealed, batches;
    assert_int_equal(rte_warm_backlog(w, R, &open, &sealed, &batches, err, sizeof err), 0);
    assert_int_equal(open, 4); /* m1, m3, m4, m2 */
    assert_int_equal(sealed, 0);
    assert_int_equal(batches, 0);
    rte_warm_free(w);
}

static void test_seal_mid_call(void **state)
{
    (void)state;
    rte_warm *w = new_queue(3);
    const rte_warm_opts *o = rte_warm_options(w);
    char ids[8][16], evs[8][16], key[96];
    rte_warm_item it[8];

    for (int i = 0; i < 8; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        snprintf(evs[i], sizeof evs[i], "e%d", i);
        it[i] = (rte_warm_item){ids[i], evs[i], -1};
    }
    enqueue(w, it, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(it[i].verdict, RTE_WARM_QUEUED);
    long open, sealed, batches;
    assert_int_equal(rte_warm_backlog(w, R, &open, &sealed, &batches, err, sizeof err), 0);
    assert_int_equal(open, 1);
    assert_int_equal(sealed, 6);
    assert_int_equal(batches, 2);
    /* batch 1 holds the first three members in order, with their source */
    snprintf(key, sizeof key, "%s:b:1", o->prefix);
    redisReply *rep = rte_redis_cmd(R, err, sizeof err, "LRANGE %s 0 -1", key);
    assert_non_null(rep);
    assert_int_equal(rep->elements, 6);
    assert_string_equal(rep->element[0]->str, "m0");
    assert_string_equal(rep->element[1]->str, "unit");
    assert_string_equal(rep->element[4]->str, "m2");
    freeReplyObject(rep);
    /* the eighth member fills the open set to 2; a forced seal makes batch 3 */
    enqueue(w, &it[7], 1);
    assert_int_equal(rte_warm_seal(w, R, 2000, 1, err, sizeof err), 1);
    assert_int_equal(rte_warm_backlog(w, R, &open, &sealed, &batches, err, sizeof err), 0);
    assert_int_equal(open, 0);
    assert_int_equal(sealed, 8);
    assert_int_equal(batches, 3);
    rte_warm_free(w);
}

static void test_large_call(void **state)
{
    (void)state;
    enum { N = 5000 }; /* more than two chunks of the scripts' bulk commands */
    rte_warm *w = new_queue(RTE_WARM_BATCH_MAX);
    static char ids[N][16], evs[N][16];
    static rte_warm_item it[N];

    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        snprintf(evs[i], sizeof evs[i], "e%d", i);
        it[i] = (rte_warm_item){ids[i], evs[i], -1};
    }
    enqueue(w, it, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(it[i].verdict, RTE_WARM_QUEUED);
    /* the same events again: every one a duplicate event, in every chunk */
    enqueue(w, it, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(it[i].verdict, RTE_WARM_DUP_EVENT);
    /* new events for the same members: duplicates of the window */
    for (int i = 0; i < N; i++)
        snprintf(evs[i], sizeof evs[i], "f%d", i);
    enqueue(w, it, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(it[i].verdict, RTE_WARM_DUP_MEMBER);
    long open, sealed, batches;
    assert_int_equal(rte_warm_backlog(w, R, &open, &sealed, &batches, err, sizeof err), 0);
    assert_int_equal(open, N);
    rte_warm_free(w);
}

static void test_mark_seen(void **state)
{
    (void)state;
    rte_warm *w = new_queue(100);
    const char *ids[] = {"u1", "u1", "u2", "", NULL};
    int fresh[5];

    assert_int_equal(rte_warm_mark_seen(w, R, ids, 5, fresh, err, sizeof err), 0);
    assert_int_equal(fresh[0], 1);
    assert_int_equal(fresh[1], 0); /* repeated in the call */
    assert_int_equal(fresh[2], 1);
    assert_int_equal(fresh[3], 1); /* no id: nothing to dedupe */
    assert_int_equal(fresh[4], 1);
    assert_int_equal(rte_warm_mark_seen(w, R, ids, 1, fresh, err, sizeof err), 0);
    assert_int_equal(fresh[0], 0);
    /* the queue sees the same ids */
    rte_warm_item it[] = {{"m1", "u2", -1}, {"m2", "u3", -1}};
    enqueue(w, it, 2);
    assert_int_equal(it[0].verdict, RTE_WARM_DUP_EVENT);
    assert_int_equal(it[1].verdict, RTE_WARM_QUEUED);
    /* ids are kept in a bucket set that expires after 2 x dedup_ttl at most */
    char pattern[96];
    snprintf(pattern, sizeof pattern, "%s:seen:*", rte_warm_options(w)->prefix);
    redisReply *rep = rte_redis_cmd(R, err, sizeof err, "KEYS %s", pattern);
    assert_non_null(rep);
    assert_int_equal(rep->elements, 1);
    long long ttl = redis_int("PTTL %s", rep->element[0]->str, NULL);
    long long card = redis_int("SCARD %s", rep->element[0]->str, NULL);
    freeReplyObject(rep);
    assert_true(ttl > 0 && ttl <= 2 * rte_warm_options(w)->dedup_ttl_ms);
    assert_int_equal(card, 3); /* u1, u2, u3 as keyed hashes */
    rte_warm_free(w);
}

/* a member stays queued across windows (member_ttl), in a bucket set that expires */
static void test_member_remembered_across_windows(void **state)
{
    (void)state;
    rte_warm *w = new_queue(100);
    const rte_warm_opts *o = rte_warm_options(w);
    rte_warm_item it[] = {{"m1", "e1", -1}};

    enqueue(w, it, 1);
    assert_int_equal(it[0].verdict, RTE_WARM_QUEUED);
    /* the window ends: batch 1 holds m1; a new event for m1 in the next window */
    assert_int_equal(rte_warm_seal(w, R, 2000, 1, err, sizeof err), 1);
    rte_warm_item next[] = {{"m1", "e2", -1}, {"m2", "e3", -1}};
    enqueue(w, next, 2);
    assert_int_equal(next[0].verdict, RTE_WARM_DUP_MEMBER);
    assert_int_equal(next[1].verdict, RTE_WARM_QUEUED);
    char pattern[96];
    snprintf(pattern, sizeof pattern, "%s:mq:*", o->prefix);
    redisReply *rep = rte_redis_cmd(R, err, sizeof err, "KEYS %s", pattern);
    assert_non_null(rep);
    assert_int_equal(rep->elements, 1);
    long long ttl = redis_int("PTTL %s", rep->element[0]->str, NULL);
    long long card = redis_int("SCARD %s", rep->element[0]->str, NULL);
    freeReplyObject(rep);
    assert_true(ttl > o->member_ttl_ms && ttl <= 2 * o->member_ttl_ms);
    assert_int_equal(card, 2);
    rte_warm_free(w);
}

/* a batch dropped without reaching Stedi forgets its members: they queue again */
static void test_dropped_batch_releases_members(void **state)
{
    (void)state;
    rte_stedi_opts so;
    rte_warm_opts o;
    rte_warm_submitted out;

    rte_stedi_opts_init(&so);
    so.api_key = "unit";
    rte_stedi *stedi = rte_stedi_new(&so, err, sizeof err);
    assert_non_null(stedi);
    rte_warm_opts_init(&o);
    snprintf(o.prefix, sizeof o.prefix, "t%d:warm", ++prefix_n);
    snprintf(o.dedup_secret, sizeof o.dedup_secret, "unit-secret");
    rte_warm *w = rte_warm_new(&o, stedi, NULL, err, sizeof err);
    assert_non_null(w);

    rte_warm_item it[] = {{"gone1", "g1", -1}, {"gone2", "g2", -1}, {"kept", "g3", -1}};
    enqueue(w, it, 2);
    assert_int_equal(rte_warm_seal(w, R, 2000, 1, err, sizeof err), 1);
    enqueue(w, &it[2], 1); /* a member of the next window */
    /* no member directory: nobody resolves, the batch is dropped as empty */
    assert_int_equal(rte_warm_submit_next(w, R, NULL, "unit", NULL, NULL, &out, err, sizeof err),
                     1);
    assert_string_equal(out.outcome, "empty");
    assert_int_equal(out.unresolved, 2);
    rte_warm_item again[] = {{"gone1", "h1", -1}, {"gone2", "h2", -1}, {"kept", "h3", -1}};
    enqueue(w, again, 3);
    assert_int_equal(again[0].verdict, RTE_WARM_QUEUED);
    assert_int_equal(again[1].verdict, RTE_WARM_QUEUED);
    assert_int_equal(again[2].verdict, RTE_WARM_DUP_MEMBER);
    rte_warm_free(w);
    rte_stedi_free(stedi);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_in_one_call),
        cmocka_unit_test(test_seal_mid_call),
        cmocka_unit_test(test_large_call),
        cmocka_unit_test(test_mark_seen),
        cmocka_unit_test(test_member_remembered_across_windows),
        cmocka_unit_test(test_dropped_batch_releases_members),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
