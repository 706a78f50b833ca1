/*
 * test_batch_registry.c - the registry of Stedi batches to poll, against a
 * real redis-server started for the test group on a free port: register,
 * due listing, leases between two owners (and expiry), the lease-checked
 * cursor, exponential backoff with its cap, progress keeping the interval,
 * the retry window, done, the backlog counts, and the members each
 * submitted item stands for (looked up by submitterTransactionIdentifier,
 * expiring with the batch).
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
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/batch_registry.h"
#include "rte/config.h"
#include "testutil.h"

static tu_redis T;
static rte_redis *R;
static rte_batch_registry_opts O;
static char err[512];

static int setup(void **state)
{
    (void)state;
    int rc = tu_redis_up(&T, 1000);
    R = T.r;
    rte_batch_registry_opts_init(&O);
    snprintf(O.prefix, sizeof O.prefix, "test:batch");
    O.first_delay_ms = 1000;
    O.max_interval_ms = 5000;
    O.retry_window_ms = 60000;
    O.lease_ms = 300;
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    tu_redis_down(&T);
    return 0;
}

static int due_at(int64_t now, char (*ids)[RTE_BATCH_ID_MAX])
{
    return rte_batch_registry_due(R, &O, now, ids, 8, err, sizeof err);
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(rte_batch_registry_valid_id("6f1c2d3e-aaaa-bbbb-cccc-0123456789ab"));
    assert_true(rte_batch_registry_valid_id("warmer:2026.01_05"));
    assert_false(rte_batch_registry_valid_id(""));
    assert_false(rte_batch_registry_valid_id("has space"));
    assert_false(rte_batch_registry_valid_id("a{b}"));
    rte_batch_info b = {"bad id", "x", 1, 0, 0};
    assert_int_equal(rte_batch_registry_register(R, &O, &b, 1000, err, sizeof err), -1);
    assert_non_null(strstr(err, "batch id"));
}

static void test_register_due_and_record(void **state)
{
    (void)state;
    char ids[8][RTE_BATCH_ID_MAX];
    rte_batch_record rec;
    rte_batch_info b = {"b-one", "cache-warmer", 250, 900000, 0};
    assert_int_equal(rte_batch_registry_register(R, &O, &b, 1000000, err, sizeof err), 0);
    assert_int_equal(due_at(1000999, ids), 0); /* first check after first_delay */
    assert_int_equal(due_at(1001000, ids), 1);
    assert_string_equal(ids[0], "b-one");
    assert_int_equal(rte_batch_registry_get(R, &O, "b-one", &rec, err, sizeof err), 1);
    assert_string_equal(rec.source, "cache-warmer");
    assert_int_equal(rec.items, 250);
    assert_int_equal(rec.submitted_ms, 900000);
    assert_int_equal(rec.registered_ms, 1000000);
    assert_int_equal(rec.retry_until_ms, 900000 + 60000);
    assert_int_equal(rec.next_ms, 1001000);
    assert_string_equal(rec.cursor, "");
    assert_int_equal(rec.done, 0);
    assert_int_equal(rte_batch_registry_get(R, &O, "unknown", &rec, err, sizeof err), 0);

    /* registering again keeps the schedule and progress */
    b.items = 260;
    assert_int_equal(rte_batch_registry_register(R, &O, &b, 1000500, err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_get(R, &O, "b-one", &rec, err, sizeof err), 1);
    assert_int_equal(rec.items, 260);
    assert_int_equal(rec.next_ms, 1001000);
    long pending, due;
    assert_int_equal(rte_batch_registry_backlog(R, &O, 1001000, &pending, &due, err, sizeof err),
                     0);
    assert_int_equal(pending, 1);
    assert_int_equal(due, 1);
}

static void test_leases(void **state)
{
    (void)state;
    rte_batch_record rec;
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-one", "A", err, sizeof err), 1);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-one", "A", err, sizeof err), 1);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-one", "B", err, sizeof err), 0);
    /* only the holder moves the cursor */
    assert_int_equal(
        rte_batch_registry_advance(R, &O, "b-one", "B", "0:dG9rZW4=", 100, err, sizeof err),
        RTE_BATCH_E_LOST);
    assert_int_equal(
        rte_batch_registry_advance(R, &O, "b-one", "A", "0:dG9rZW4=", 100, err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_renew(R, &O, "b-one", "A", err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_renew(R, &O, "b-one", "B", err, sizeof err),
                     RTE_BATCH_E_LOST);
    assert_int_equal(rte_batch_registry_get(R, &O, "b-one", &rec, err, sizeof err), 1);
    assert_string_equal(rec.cursor, "0:dG9rZW4=");
    assert_int_equal(rec.polled, 100);
    /* a crashed holder's lease expires; then B gets it, and A is fenced out */
    usleep(400 * 1000);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-one", "B", err, sizeof err), 1);
    assert_int_equal(rte_batch_registry_advance(R, &O, "b-one", "A", "x", 1, err, sizeof err),
                     RTE_BATCH_E_LOST);
    assert_non_null(strstr(err, "lease lost"));
    /* release only drops our own lease */
    assert_int_equal(rte_batch_registry_release(R, &O, "b-one", "A", err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-one", "A", err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_release(R, &O, "b-one", "B", err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-one", "A", err, sizeof err), 1);
    assert_int_equal(rte_batch_registry_release(R, &O, "b-one", "A", err, sizeof err), 0);
}

static void test_backoff_and_done(void **state)
{
    (void)state;
    char ids[8][RTE_BATCH_ID_MAX];
    int64_t next = 0, t = 2000000;
    rte_batch_record rec;
    rte_batch_info b = {"b-two", "batch-rpc", 10, t, 0};
    assert_int_equal(rte_batch_registry_register(R, &O, &b, t, err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-two", "A", err, sizeof err), 1);
    /* nothing new: 2 s, 4 s, then capped at 5 s */
    int64_t want[] = {2000, 4000, 5000, 5000};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(
            rte_batch_registry_reschedule(R, &O, "b-two", "A", 0, t, &next, err, sizeof err), 0);
        assert_int_equal(next - t, want[i]);
    }
    /* progress keeps the interval where it is */
    assert_int_equal(
        rte_batch_registry_reschedule(R, &O, "b-two", "A", 1, t, &next, err, sizeof err), 0);
    assert_int_equal(next - t, 5000);
    assert_int_equal(due_at(t + 4999, ids) >= 0, 1);
    for (int i = 0, n = due_at(t + 4999, ids); i < n; i++)
        assert_string_not_equal(ids[i], "b-two");
    assert_int_equal(rte_batch_registry_get(R, &O, "b-two", &rec, err, sizeof err), 1);
    assert_int_equal(rec.checks, 5);
    /* someone else cannot reschedule it */
    assert_int_equal(
        rte_batch_registry_reschedule(R, &O, "b-two", "B", 0, t, &next, err, sizeof err),
        RTE_BATCH_E_LOST);

    assert_int_equal(
        rte_batch_registry_done(R, &O, "b-two", "A", "complete", t + 1, err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_get(R, &O, "b-two", &rec, err, sizeof err), 1);
    assert_int_equal(rec.done, 1);
    assert_string_equal(rec.done_reason, "complete");
    for (int i = 0, n = due_at(t + 100000, ids); i < n; i++)
        assert_string_not_equal(ids[i], "b-two");
    /* done batches are not revived by registering them again */
    assert_int_equal(rte_batch_registry_register(R, &O, &b, t + 2, err, sizeof err), 0);
    for (int i = 0, n = due_at(t + 100000, ids); i < n; i++)
        assert_string_not_equal(ids[i], "b-two");
    /* the lease went with it */
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-two", "B", err, sizeof err), 1);
}

static void test_retry_window(void **state)
{
    (void)state;
    int64_t next = 0, t = 3000000;
    rte_batch_record rec;
    rte_batch_info b = {"b-three", "batch-rpc", 5, t, 10000};
    assert_int_equal(rte_batch_registry_register(R, &O, &b, t, err, sizeof err), 0);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-three", "A", err, sizeof err), 1);
    assert_int_equal(
        rte_batch_registry_reschedule(R, &O, "b-three", "A", 0, t + 9999, &next, err, sizeof err),
        0);
    assert_int_equal(
        rte_batch_registry_reschedule(R, &O, "b-three", "A", 0, t + 10000, &next, err, sizeof err),
        1);
    assert_int_equal(rte_batch_registry_get(R, &O, "b-three", &rec, err, sizeof err), 1);
    assert_int_equal(rec.done, 1);
    assert_string_equal(rec.done_reason, "expired");
}

/* a polled result names no member: the registry says which cache entry it is */
static void test_members(void **state)
{
    (void)state;
    const rte_batch_member m[] = {
        {"w5", "rte:eligibility:aaaa:62308", NULL},
        {"w6", "rte:eligibility:bbbb:87726", "30,MH"},
    };
    rte_batch_info b = {"b-members", "rtectl", 2, 0, 0, m, 2};
    const char *ids[] = {"w6", "nope", "w5", "w6"};
    char ttl_key[128];

    assert_int_equal(rte_batch_registry_register(R, &O, &b, 5000000, err, sizeof err), 0);
    cJSON *got = rte_batch_registry_members(R, &O, "b-members", ids, 4, err, sizeof err);
    assert_non_null(got);
    assert_int_equal(cJSON_GetArraySize(got), 2);
    char *text = cJSON_PrintUnformatted(got);
    assert_string_equal(text, "{\"w6\":{\"key\":\"rte:eligibility:bbbb:87726\",\"service_types\":"
                              "[\"30\",\"MH\"]},\"w5\":{\"key\":\"rte:eligibility:aaaa:62308\","
                              "\"service_types\":[\"30\"]}}");
    cJSON_free(text);
    cJSON_Delete(got);
    /* they expire with the batch: retry window + keep now, keep once done */
    snprintf(ttl_key, sizeof ttl_key, "%s:b-members:items", O.prefix);
    redisReply *rep = rte_redis_cmd(R, err, sizeof err, "PTTL %s", ttl_key);
    assert_non_null(rep);
    assert_true(rep->integer > O.keep_ms && rep->integer <= O.retry_window_ms + O.keep_ms);
    freeReplyObject(rep);
    assert_int_equal(rte_batch_registry_lease(R, &O, "b-members", "me", err, sizeof err), 1);
    assert_int_equal(
        rte_batch_registry_done(R, &O, "b-members", "me", "complete", 5000001, err, sizeof err), 0);
    rep = rte_redis_cmd(R, err, sizeof err, "PTTL %s", ttl_key);
    assert_true(rep->integer > 0 && rep->integer <= O.keep_ms);
    freeReplyObject(rep);

    /* a member without its cache key is refused, naming it; nothing is scheduled */
    const rte_batch_member bad[] = {{"w1", "k", NULL}, {"w2", NULL, NULL}};
    rte_batch_info bb = {"b-bad", "x", 2, 0, 0, bad, 2};
    assert_int_equal(rte_batch_registry_register(R, &O, &bb, 5000000, err, sizeof err), -1);
    assert_non_null(strstr(err, "members[1]"));
    rte_batch_record rec;
    assert_int_equal(rte_batch_registry_get(R, &O, "b-bad", &rec, err, sizeof err), 0);
}

/* the key absent, the prefix is the documented default (it was once emptied) */
static void test_config_default_prefix(void **state)
{
    (void)state;
    rte_batch_registry_opts o;
    rte_config *cfg = rte_config_from_string("batch_registry:\n  lease: 5s\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_batch_registry_opts_from_config(cfg, &o, err, sizeof err), 0);
    assert_string_equal(o.prefix, "rte:batch");
    assert_int_equal(o.lease_ms, 5000);
    rte_config_free(cfg);
    cfg = rte_config_from_string("batch_registry:\n  prefix: \"it:b\"\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_batch_registry_opts_from_config(cfg, &o, err, sizeof err), 0);
    assert_string_equal(o.prefix, "it:b");
    rte_config_free(cfg);
}

static void test_redis_down(void **state)
{
    (void)state;
    char ids[8][RTE_BATCH_ID_MAX];
    rte_batch_registry_opts o = O;
    rte_redis *dead = rte_redis_new("redis://127.0.0.1:1", 200, err, sizeof err);
    assert_int_equal(rte_batch_registry_due(dead, &o, 1, ids, 8, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
    assert_int_equal(rte_batch_registry_lease(dead, &o, "b-one", "A", err, sizeof err), -1);
    rte_redis_free(dead);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),          cmocka_unit_test(test_register_due_and_record),
        cmocka_unit_test(test_leases),       cmocka_unit_test(test_backoff_and_done),
        cmocka_unit_test(test_retry_window), cmocka_unit_test(test_members),
        cmocka_unit_test(test_redis_down),   cmocka_unit_test(test_config_default_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
