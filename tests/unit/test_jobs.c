/*
 * test_jobs.c - libcommon jobs against a real redis-server started for the
 * group: chunks taken and finished under a lease, a chunk left by a worker
 * whose lease ran out handed whole to the next, a lost lease refused, an
 * ended job refusing every worker, update ids that never go back, and a
 * 10,000-item chunk (beyond Lua's unpack limit) in one take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rte/jobs.h"
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

static void opts(rte_jobs_opts *o, int64_t lease_ms)
{
    rte_jobs_opts_init(o);
    snprintf(o->prefix, sizeof o->prefix, "t%d:jobs", ++prefix_n);
    o->lease_ms = lease_ms;
}

static void make(const rte_jobs_opts *o, const char *id, int n)
{
    char(*ids)[16] = calloc((size_t)n, sizeof *ids);
    const char **items = calloc((size_t)n, sizeof *items);
    const char *f[] = {"status", "0", "total", "x"};
    assert_non_null(ids);
    assert_non_null(items);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        items[i] = ids[i];
    }
    assert_int_equal(rte_jobs_create(R, o, id, f, 2, items, (size_t)n, 1000, err, sizeof err), 0);
    free(ids);
    free(items);
}

static void test_take_finish_and_due(void **state)
{
    rte_jobs_opts o;
    rte_jobs_chunk c;
    char ids[4][RTE_JOBS_ID_MAX];
    (void)state;
    opts(&o, 5000);
    make(&o, "job1", 7);
    assert_int_equal(rte_jobs_due(R, &o, 999, ids, 4, err, sizeof err), 0);
    assert_int_equal(rte_jobs_due(R, &o, 1000, ids, 4, err, sizeof err), 1);
    assert_string_equal(ids[0], "job1");
    /* no lease, no chunk */
    assert_int_equal(rte_jobs_take(R, &o, "job1", "a", "todo", 3, &c, err, sizeof err),
                     RTE_JOBS_E_LOST);
    assert_int_equal(rte_jobs_lease(R, &o, "job1", "a", err, sizeof err), 1);
    assert_int_equal(rte_jobs_lease(R, &o, "job1", "b", err, sizeof err), 0);
    assert_int_equal(rte_jobs_take(R, &o, "job1", "a", "todo", 3, &c, err, sizeof err), 3);
    assert_int_equal(c.resumed, 0);
    assert_string_equal(c.src, "todo");
    assert_string_equal(c.items[0], "m0");
    assert_string_equal(c.items[2], "m2");
    rte_jobs_chunk_free(&c);
    const char *incr[] = {"done", "3"};
    const char *req[] = {"m1"};
    rte_jobs_finish_args a = {
        .incr = incr, .nincr = 1, .requeue_to = "wait", .requeue = req, .nrequeue = 1};
    assert_int_equal(rte_jobs_finish(R, &o, "job1", "a", &a, err, sizeof err), 0);
    assert_int_equal(rte_jobs_len(R, &o, "job1", "todo", err, sizeof err), 4);
    assert_int_equal(rte_jobs_len(R, &o, "job1", "wait", err, sizeof err), 1);
    assert_int_equal(rte_jobs_len(R, &o, "job1", "doing", err, sizeof err), 0);
    redisReply *h = rte_jobs_get(R, &o, "job1", err, sizeof err);
    assert_int_equal(rte_jobs_field_ll(h, "done", 0), 3);
    assert_string_equal(rte_jobs_field(h, "total", ""), "x");
    freeReplyObject(h);
    /* the rest, then nothing */
    assert_int_equal(rte_jobs_take(R, &o, "job1", "a", "todo", 10, &c, err, sizeof err), 4);
    rte_jobs_chunk_free(&c);
    rte_jobs_finish_args none = {0};
    assert_int_equal(rte_jobs_finish(R, &o, "job1", "a", &none, err, sizeof err), 0);
    assert_int_equal(rte_jobs_take(R, &o, "job1", "a", "todo", 10, &c, err, sizeof err), 0);
    rte_jobs_chunk_free(&c);
    assert_int_equal(rte_jobs_take(R, &o, "job1", "a", "wait", 10, &c, err, sizeof err), 1);
    assert_string_equal(c.items[0], "m1");
    rte_jobs_chunk_free(&c);
}

static void test_dead_worker_chunk_is_resumed_whole(void **state)
{
    rte_jobs_opts o;
    rte_jobs_chunk c;
    (void)state;
    opts(&o, 200);
    make(&o, "job2", 10);
    assert_int_equal(rte_jobs_lease(R, &o, "job2", "dead", err, sizeof err), 1);
    assert_int_equal(rte_jobs_take(R, &o, "job2", "dead", "todo", 4, &c, err, sizeof err), 4);
    rte_jobs_chunk_free(&c);
    /* the worker dies; its lease runs out */
    usleep(300 * 1000);
    assert_int_equal(rte_jobs_lease(R, &o, "job2", "next", err, sizeof err), 1);
    assert_int_equal(rte_jobs_take(R, &o, "job2", "next", "todo", 2, &c, err, sizeof err), 4);
    assert_int_equal(c.resumed, 1);
    assert_string_equal(c.items[0], "m0");
    assert_string_equal(c.items[3], "m3");
    rte_jobs_chunk_free(&c);
    /* the dead worker cannot record anything any more */
    rte_jobs_finish_args none = {0};
    assert_int_equal(rte_jobs_finish(R, &o, "job2", "dead", &none, err, sizeof err),
                     RTE_JOBS_E_LOST);
    const char *f[] = {"status", "9"};
    assert_int_equal(rte_jobs_set(R, &o, "job2", "dead", f, 1, err, sizeof err), RTE_JOBS_E_LOST);
    assert_int_equal(rte_jobs_finish(R, &o, "job2", "next", &none, err, sizeof err), 0);
    assert_int_equal(rte_jobs_len(R, &o, "job2", "todo", err, sizeof err), 6);
}

static void test_end_stops_every_worker(void **state)
{
    rte_jobs_opts o;
    rte_jobs_chunk c;
    char ids[4][RTE_JOBS_ID_MAX];
    const char *lists[] = {"todo", "wait"};
    const char *f[] = {"status", "4"};
    (void)state;
    opts(&o, 5000);
    make(&o, "job3", 10);
    assert_int_equal(rte_jobs_lease(R, &o, "job3", "w", err, sizeof err), 1);
    assert_int_equal(rte_jobs_take(R, &o, "job3", "w", "todo", 3, &c, err, sizeof err), 3);
    rte_jobs_chunk_free(&c);
    /* a cancel from anywhere (no lease): 7 in todo + 3 in doing dropped */
    assert_int_equal(rte_jobs_end(R, &o, "job3", NULL, f, 1, lists, 2, 5, err, sizeof err), 10);
    assert_int_equal(rte_jobs_end(R, &o, "job3", NULL, f, 1, lists, 2, 5, err, sizeof err),
                     RTE_JOBS_E_ENDED);
    rte_jobs_finish_args none = {0};
    assert_int_equal(rte_jobs_finish(R, &o, "job3", "w", &none, err, sizeof err), RTE_JOBS_E_ENDED);
    assert_int_equal(rte_jobs_take(R, &o, "job3", "w", "todo", 3, &c, err, sizeof err),
                     RTE_JOBS_E_ENDED);
    rte_jobs_chunk_free(&c);
    assert_int_equal(rte_jobs_due(R, &o, 1 << 30, ids, 4, err, sizeof err), 0);
    redisReply *h = rte_jobs_get(R, &o, "job3", err, sizeof err);
    assert_string_equal(rte_jobs_field(h, "status", ""), "4");
    assert_string_equal(rte_jobs_field(h, "ended", ""), "1");
    freeReplyObject(h);
    assert_int_equal(rte_jobs_end(R, &o, "nojob", NULL, f, 1, lists, 2, 5, err, sizeof err), -1);
}

static void test_event_ids_never_go_back(void **state)
{
    rte_jobs_opts o;
    char a[RTE_JOBS_EVID_MAX], b[RTE_JOBS_EVID_MAX], c[RTE_JOBS_EVID_MAX];
    (void)state;
    opts(&o, 5000);
    make(&o, "job4", 1);
    assert_int_equal(rte_jobs_event(R, &o, "job4", "one", 3, 5000, a, err, sizeof err), 0);
    /* a replica whose clock is behind: held at the last ms */
    assert_int_equal(rte_jobs_event(R, &o, "job4", "two", 3, 4000, b, err, sizeof err), 0);
    assert_int_equal(rte_jobs_event(R, &o, "job4", "three", 5, 6000, c, err, sizeof err), 0);
    assert_string_equal(a, "5000-0");
    assert_string_equal(b, "5000-1");
    assert_string_equal(c, "6000-0");
    redisReply *rep = rte_jobs_events_after(R, &o, "job4", a, 10, err, sizeof err);
    assert_non_null(rep);
    assert_int_equal(rep->elements, 2);
    assert_string_equal(rep->element[0]->element[1]->element[1]->str, "two");
    freeReplyObject(rep);
    rep = rte_jobs_events_after(R, &o, "job4", "", 10, err, sizeof err);
    assert_int_equal(rep->elements, 3);
    freeReplyObject(rep);
    assert_int_equal(rte_jobs_event(R, &o, "nojob", "x", 1, 1, a, err, sizeof err), -1);
}

static void test_large_chunk(void **state)
{
    rte_jobs_opts o;
    rte_jobs_chunk c;
    (void)state;
    opts(&o, 5000);
    make(&o, "job5", 25000);
    assert_int_equal(rte_jobs_len(R, &o, "job5", "todo", err, sizeof err), 25000);
    assert_int_equal(rte_jobs_lease(R, &o, "job5", "w", err, sizeof err), 1);
    assert_int_equal(rte_jobs_take(R, &o, "job5", "w", "todo", 10000, &c, err, sizeof err), 10000);
    assert_string_equal(c.items[9999], "m9999");
    const char **req = calloc(10000, sizeof *req);
    assert_non_null(req);
    for (size_t i = 0; i < c.n; i++)
        req[i] = c.items[i];
    rte_jobs_finish_args a = {.requeue_to = "wait", .requeue = req, .nrequeue = c.n};
    assert_int_equal(rte_jobs_finish(R, &o, "job5", "w", &a, err, sizeof err), 0);
    free(req);
    rte_jobs_chunk_free(&c);
    assert_int_equal(rte_jobs_len(R, &o, "job5", "wait", err, sizeof err), 10000);
    assert_int_equal(rte_jobs_len(R, &o, "job5", "todo", err, sizeof err), 15000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_finish_and_due),
        cmocka_unit_test(test_dead_worker_chunk_is_resumed_whole),
        cmocka_unit_test(test_end_stops_every_worker),
        cmocka_unit_test(test_event_ids_never_go_back),
        cmocka_unit_test(test_large_chunk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
