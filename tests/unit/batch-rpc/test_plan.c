/*
 * test_plan.c - batch-rpc's plan (br_plan.c): every row of the source's
 * OPTIMAL decision matrix, window openings in UTC (weekends skipped for
 * business hours), the multi-window plan above 50,000 members, spreading
 * and the resolved options' defaults; member time zones: groups planned at
 * their own window's opening (America/New_York, America/Los_Angeles, the
 * default zone), across both 2026 US DST changes, and the chunk gates that
 * spread each group over its own window.
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
    /* 6 chunks, 3 windows a day: the default timeout counts after two days of windows */
    assert_int_equal(p.timeout_ms, 8 * HOUR + 48 * HOUR);
    o.priority = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_NORMAL;
    br_plan_make(&o, 60000, &load, SAT_10, 0, &p);
    assert_int_equal(p.multi, 0); /* NORMAL runs now */
    assert_int_equal(p.timeout_ms, 8 * HOUR);
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

/* 2026-12-07 is a Monday: 12:00Z = 07:00 EST = 04:00 PST */
#define MON_12Z 1796644800000LL
static const char NY[] = "America/New_York", LA[] = "America/Los_Angeles";

static void plan_zones(int window, size_t n, const char *const *zone, int64_t now, br_plan *p,
                       size_t *order, br_plan_group *g, int *ng)
{
    Rte__V1__BatchExecutionOptions o = RTE__V1__BATCH_EXECUTION_OPTIONS__INIT;
    br_plan_load load = {0, 15, -1};
    o.priority = RTE__V1__BATCH_EXECUTION_OPTIONS__PRIORITY__PRIORITY_NORMAL;
    o.strategy = RTE__V1__BATCH_EXECUTION_OPTIONS__STRATEGY__STRATEGY_REALTIME_ONLY;
    o.scheduling_window = (Rte__V1__SchedulingWindow)window;
    br_plan_make(&o, n, &load, now, 0, p);
    assert_int_equal(p->zoned, 1);
    br_plan_zones(p, now, 0, n, zone, NULL, order, g, ng);
}

static void test_zone_groups(void **state)
{
    (void)state;
    const char *zone[] = {LA, NULL, NY, LA, NY, "Not/AZone", ""};
    size_t order[7];
    br_plan_group g[BR_PLAN_GROUPS_MAX];
    int ng = 0;
    br_plan p;
    /* business hours on Monday 12:00Z: open in UTC (the default zone), 09:00 EST = 14:00Z,
     * 09:00 PST = 17:00Z; an unknown zone and none take the default */
    plan_zones(1, 7, zone, MON_12Z, &p, order, g, &ng);
    assert_int_equal(ng, 3);
    assert_string_equal(g[0].zone, "");
    assert_int_equal(g[0].start_ms, MON_12Z);
    assert_int_equal(g[0].first, 0);
    assert_int_equal(g[0].n, 3);
    assert_string_equal(g[1].zone, NY);
    assert_int_equal(g[1].start_ms, 1796652000000LL); /* 2026-12-07T14:00Z */
    assert_int_equal(g[1].first, 3);
    assert_int_equal(g[1].n, 2);
    assert_string_equal(g[2].zone, LA);
    assert_int_equal(g[2].start_ms, 1796662800000LL); /* 2026-12-07T17:00Z */
    assert_int_equal(g[2].first, 5);
    size_t want[] = {1, 5, 6, 2, 4, 0, 3}; /* by group, submission order inside */
    for (int i = 0; i < 7; i++)
        assert_int_equal(order[i], want[i]);
    assert_int_equal(p.start_ms, MON_12Z); /* the job starts with its first group */
    /* every member in New York: the job waits for 09:00 there */
    const char *ny[] = {NY, NY};
    plan_zones(1, 2, ny, MON_12Z, &p, order, g, &ng);
    assert_int_equal(ng, 1);
    assert_int_equal(p.start_ms, 1796652000000LL);
    /* the stored form round-trips */
    char buf[512];
    br_plan_group back[BR_PLAN_GROUPS_MAX];
    plan_zones(1, 7, zone, MON_12Z, &p, order, g, &ng);
    br_plan_groups_format(g, ng, buf, sizeof buf);
    assert_string_equal(buf, "- 1796644800000 0 3;America/New_York 1796652000000 3 2;"
                             "America/Los_Angeles 1796662800000 5 2");
    assert_int_equal(br_plan_groups_parse(buf, back, BR_PLAN_GROUPS_MAX), 3);
    assert_string_equal(back[2].zone, LA);
    assert_int_equal(back[2].start_ms, g[2].start_ms);
    assert_int_equal(back[1].first, 3);
    assert_int_equal(br_plan_groups_parse("NY 12 x", back, BR_PLAN_GROUPS_MAX), -1);
}

static void test_zone_dst(void **state)
{
    (void)state;
    const char *zone[] = {NY, LA};
    size_t order[2];
    br_plan_group g[BR_PLAN_GROUPS_MAX];
    int ng = 0;
    br_plan p;
    /* Saturday 2026-03-07 19:00Z (14:00 EST, 11:00 PST): the next morning (06:00) is Sunday March
     * 8, after the 02:00 change to daylight time: 06:00 EDT = 10:00Z, 06:00 PDT = 13:00Z */
    plan_zones(2, 2, zone, 1772910000000LL, &p, order, g, &ng);
    assert_int_equal(ng, 2);
    assert_string_equal(g[0].zone, NY);
    assert_int_equal(g[0].start_ms, 1772964000000LL);
    assert_int_equal(g[1].start_ms, 1772974800000LL);
    /* Saturday 2026-10-31 19:00Z (15:00 EDT, 12:00 PDT): Sunday November 1 is back on standard
     * time: 06:00 EST = 11:00Z, 06:00 PST = 14:00Z */
    plan_zones(2, 2, zone, 1793473200000LL, &p, order, g, &ng);
    assert_int_equal(g[0].start_ms, 1793530800000LL);
    assert_int_equal(g[1].start_ms, 1793541600000LL);
    assert_int_equal(br_plan_window_start_tz(2, 1793473200000LL, -1, br_plan_zone(LA)),
                     1793541600000LL);
}

static void test_zone_gates(void **state)
{
    (void)state;
    int64_t s1 = 1796652000000LL, s2 = 1796662800000LL, now = MON_12Z;
    br_plan_group g[2] = {{"America/New_York", 0, 250, 1796652000000LL},
                          {"America/Los_Angeles", 250, 150, 1796662800000LL}};
    int64_t spread = 4 * HOUR, gap1 = spread / 3, gap2 = spread / 2, at;
    int take;
    /* New York's three chunks over its morning (4 h / 3 apart, jitter <= a quarter gap) */
    assert_int_equal(br_plan_gate(g, 2, spread, 0, 0, 100, "br-x", now, &take), s1);
    assert_int_equal(take, 100);
    at = br_plan_gate(g, 2, spread, 0, 100, 100, "br-x", now, &take);
    assert_true(at >= s1 + gap1 && at <= s1 + gap1 + gap1 / 4);
    assert_int_equal(at, br_plan_gate(g, 2, spread, 0, 100, 100, "br-x", now, &take)); /* stable */
    at = br_plan_gate(g, 2, spread, 0, 200, 100, "br-x", now, &take);
    assert_true(at >= s1 + 2 * gap1 && at <= s1 + 2 * gap1 + gap1 / 4);
    assert_int_equal(take, 50); /* a chunk ends with its group */
    /* Los Angeles's two chunks over its own morning */
    assert_int_equal(br_plan_gate(g, 2, spread, 0, 250, 100, "br-x", now, &take), s2);
    assert_int_equal(take, 100);
    at = br_plan_gate(g, 2, spread, 0, 350, 100, "br-x", now, &take);
    assert_true(at >= s2 + gap2 && at <= s2 + gap2 + 5 * 60000);
    assert_int_equal(take, 50);
    /* a due chunk goes at once */
    assert_int_equal(br_plan_gate(g, 2, spread, 0, 250, 100, "br-x", s2 + 1, &take), 0);
    /* multi-window in New York, Monday 16:00Z (11:00 EST): chunk 0 waits for 01:00 EST
     * (06:00Z), chunk 1 for 06:00 EST (11:00Z next day), chunk 2 for 17:00 EST (22:00Z) */
    br_plan_group m[1] = {{"America/New_York", 0, 30000, 0}};
    int64_t t = 1796659200000LL;
    assert_int_equal(br_plan_gate(m, 1, 0, 1, 0, 10000, "b", t, &take), 1796709600000LL);
    assert_int_equal(br_plan_gate(m, 1, 0, 1, 10000, 10000, "b", t, &take), 1796727600000LL);
    assert_int_equal(br_plan_gate(m, 1, 0, 1, 20000, 10000, "b", t, &take), 1796680800000LL);
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
        cmocka_unit_test(test_zone_groups),
        cmocka_unit_test(test_zone_dst),
        cmocka_unit_test(test_zone_gates),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
