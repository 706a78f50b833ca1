/*
 * test_plan.c - batch-rpc's plan (br_plan.c): every row of the source's
 * OPTIMAL decision matrix, window openings in UTC (weekends skipped for
 * business hours), the multi-window plan above 50,000 members, spreading
 * and the resolved options' defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "br.h"
#include "br_plan.h"

/* 2026-12-05 is a Saturday */
#define SAT_10 1796464800000LL /* 2026-12-05T10:00:00Z */
#define HOUR 3600000LL

static int setup(void **state)
{
    (void)state;
    memset(&BR, 0, sizeof BR); /* tz NULL: UTC */
    BR.c.realtime_workers = 5;
    BR.c.timeout_ms = 8 * HOUR;
    BR.c.chunk = 100;
    BR.c.batch_chunk = 10000;
    BR.c.check_eta_ms = 13500;
    BR.c.batch_eta_ms = HOUR / 2;
    return 0;
}

static int strategy(size_t n, int priority, int in_use, int64_t now)
{
    Rte__V1__BatchExecutionOptions o = RTE__V1__BATCH_EXECUTION_OPTIONS__INIT;
    br_plan_load load = {in_use, 15, -1};
    br_plan p;
    o.priority = (Rte__V1__BatchExecutionOptions__Priority)priority;
    br_plan_make(&o, n, &load, now, 0, &p);
    return p.strategy;
}

enum { LOW = 0, NORMAL = 1, HIGH = 2, BATCH = 1, RT = 2 };

static void test_decision_matrix(void **state)
{
    (void)state;
    int64_t noon = SAT_10 + 2 * HOUR, three_am = SAT_10 - 7 * HOUR;
    assert_int_equal(strategy(99, NORMAL, 0, noon), RT);
    assert_int_equal(strategy(99, HIGH, 15, noon), RT);
    assert_int_equal(strategy(99, LOW, 0, noon), BATCH);
    assert_int_equal(strategy(100, HIGH, 0, noon), RT);
    assert_int_equal(strategy(1000, HIGH, 10, noon), RT);      /* 5 free: low load */
    assert_int_equal(strategy(1000, HIGH, 11, noon), BATCH);   /* 4 free */
    assert_int_equal(strategy(500, HIGH, 0, three_am), BATCH); /* off-peak */
    assert_int_equal(strategy(500, NORMAL, 0, noon), BATCH);
    assert_int_equal(strategy(1001, HIGH, 0, noon), BATCH);
}

static void test_window_openings(void **state)
{
    (void)state;
    enum { BUS = 1, MORN = 2, EVE = 3, LOWU = 4 };
    /* Saturday 10:00: business hours open Monday 09:00 */
    assert_int_equal(br_plan_window_start(BUS, SAT_10, -1), SAT_10 + 47 * HOUR);
    /* inside the window: now */
    assert_int_equal(br_plan_window_start(MORN, SAT_10 - 2 * HOUR, -1), SAT_10 - 2 * HOUR);
    assert_int_equal(br_plan_window_start(MORN, SAT_10, -1), SAT_10 + 20 * HOUR);
    assert_int_equal(br_plan_window_start(EVE, SAT_10, -1), SAT_10 + 7 * HOUR);
    assert_int_equal(br_plan_window_start(LOWU, SAT_10, -1), SAT_10 + 15 * HOUR);
    /* engagement: busiest hour 20 -> from 18:00 */
    assert_int_equal(br_plan_window_start(5, SAT_10, 20), SAT_10 + 8 * HOUR);
    /* no usage data: the morning window */
    assert_int_equal(br_plan_window_start(5, SAT_10, -1), SAT_10 + 20 * HOUR);
}

static void test_multi_window_and_spread(void **state)
{
    (void)state;
    Rte__V1__BatchExecutionOptions o = RTE__V1__BATCH_EXECUTION_OPTIONS__INIT;
    br_plan_load load = {0, 15, -1};
    br_plan p;
    o.strategy = RTE__V1__BATCH_EXECUTION_OPTIONS__STRATEGY__STRATEGY_BATCH_ONLY;
    br_plan_make(&o, 60000, &load, SAT_10, 0, &p);
    assert_int_equal(p.multi, 1); /* priority LOW (0), window ANY */
    assert_int_equal(p.chunks, 6);
    assert_int_equal(p.start_ms, SAT_10 + 15 * HOUR); /* the next low-utilization window */
    o.priority = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_NORMAL;
    br_plan_make(&o, 60000, &load, SAT_10, 0, &p);
    assert_int_equal(p.multi, 0); /* NORMAL runs now */
    assert_int_equal(p.start_ms, SAT_10);
    o.priority = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_LOW;
    br_plan_make(&o, 50000, &load, SAT_10, 0, &p);
    assert_int_equal(p.multi, 0);
    assert_int_equal(p.start_ms, SAT_10); /* ANY, no load: now */
    assert_int_equal(p.spread_ms, 0);
    o.scheduling_window = RTE__V1__SCHEDULING_WINDOW__SCHEDULING_WINDOW_EVENING;
    br_plan_make(&o, 50000, &load, SAT_10, 0, &p);
    assert_int_equal(p.spread_ms, 5 * HOUR);
    assert_int_equal(p.start_ms, SAT_10 + 7 * HOUR);
    /* jitter only after a window opens, and within its bound */
    br_plan_make(&o, 50000, &load, SAT_10, 60000, &p);
    assert_true(p.start_ms >= SAT_10 + 7 * HOUR && p.start_ms <= SAT_10 + 7 * HOUR + 60000);
    /* ANY under load: medium waits 30-60 min, high waits for the low-utilization window */
    o.scheduling_window = 0;
    load.slots_in_use = 6;
    br_plan_make(&o, 10, &load, SAT_10, 0, &p);
    assert_true(p.start_ms >= SAT_10 + HOUR / 2 && p.start_ms <= SAT_10 + HOUR);
    load.slots_in_use = 11;
    br_plan_make(&o, 10, &load, SAT_10, 0, &p);
    assert_int_equal(p.start_ms, SAT_10 + 15 * HOUR);
}

static void test_resolved_defaults(void **state)
{
    (void)state;
    Rte__V1__BatchExecutionOptions o = RTE__V1__BATCH_EXECUTION_OPTIONS__INIT;
    br_plan_load load = {0, 15, -1};
    br_plan p;
    br_resolved r;
    o.priority = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_NORMAL;
    o.max_concurrent_requests = 40; /* capped */
    o.callback_url = "https://client.example/cb";
    br_plan_make(&o, 10, &load, SAT_10, 0, &p);
    br_plan_resolved(&p, &o, &r);
    assert_int_equal(r.o.strategy, RT);
    assert_int_equal(r.o.max_concurrent_requests, 5);
    assert_int_equal(r.o.timeout->seconds, 8 * 3600);
    assert_int_equal(r.o.retry_config->max_attempts, 3);
    assert_int_equal(r.o.retry_config->initial_interval->seconds, 1);
    assert_int_equal(r.o.retry_config->max_interval->seconds, 60);
    assert_true(r.o.retry_config->backoff_multiplier == 2.0f);
    assert_string_equal(r.o.notifications->kafka_topic, "domain.rte.v1.batch_job_events");
    assert_string_equal(r.o.notifications->callback_url, "https://client.example/cb");
    assert_int_equal(p.eta_ms, SAT_10 + 2 * 13500); /* 10 members, 5 at once */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_matrix),
        cmocka_unit_test(test_window_openings),
        cmocka_unit_test(test_multi_window_and_spread),
        cmocka_unit_test(test_resolved_defaults),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
