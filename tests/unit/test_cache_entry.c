/*
 * test_cache_entry.c - the cache entry format: mapping, encoding, CAS writes.
 *
 * Golden cases live in tests/data/cache_entry/: v1_<case>.json are entries
 * as the first format stored them (they must still decode, and re-encode as
 * v1_<case>.reencoded.json), v2_<case>.json entries with every later field
 * (decode then encode gives the same bytes). Reading Stedi answers into
 * entries is test_stedi_reply.c's. The Redis cases start a real
 * redis-server on a free port for the duration of the test group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include "rte/cache_entry.h"
#include "rte/stedi_reply.h"
#include "rte/clock.h"
#include "testutil.h"

/* a golden file of this suite */
static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", "cache_entry", name);
    return tu_data(path, len);
}

/* strip the trailing newline of a golden file */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* an entry of the first format decodes, and encodes with today's fields */
static void compat(const char *name)
{
    char file[128], err[256];
    size_t len;
    rte_cache_entry e, back;

    snprintf(file, sizeof file, "v1_%s.json", name);
    char *old = slurp(file, &len);
    snprintf(file, sizeof file, "v1_%s.reencoded.json", name);
    char *want = slurp(file, NULL);
    chomp(old);
    chomp(want);
    if (rte_cache_entry_decode(old, strlen(old), &e, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    assert_int_equal(e.nbenefits, 0);
    assert_string_equal(e.eligibility_start, "");
    char *got = rte_cache_entry_encode(&e);
    assert_string_equal(got, want);
    assert_int_equal(rte_cache_entry_decode(got, strlen(got), &back, err, sizeof err), 0);
    assert_memory_equal(&back, &e, sizeof e);
    cJSON_free(got);
    free(old);
    free(want);
}

static void test_v1_entries_decode(void **state)
{
    (void)state;
    compat("active_copay");
    compat("inactive");
    compat("payer_error");
}

/* an old error entry was a 5-minute error: it reads as worth retrying */
static void test_v1_error_is_retryable(void **state)
{
    (void)state;
    char err[256];
    size_t len;
    rte_cache_entry e;
    char *old = slurp("v1_payer_error.json", &len);
    assert_int_equal(rte_cache_entry_decode(old, len, &e, err, sizeof err), 0);
    assert_true(e.is_error);
    assert_true(e.error_retry);
    assert_string_equal(e.error_code, "42");
    assert_string_equal(e.error_followup, "");
    free(old);
}

/* every field of today's format survives decode then encode, byte for byte */
static void roundtrip(const char *name)
{
    char err[256];
    size_t len;
    rte_cache_entry e;
    char *in = slurp(name, &len);
    chomp(in);
    if (rte_cache_entry_decode(in, strlen(in), &e, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    char *got = rte_cache_entry_encode(&e);
    assert_string_equal(got, in);
    cJSON_free(got);
    free(in);
}

static void test_v2_roundtrip(void **state)
{
    (void)state;
    rte_cache_entry e;
    rte_cache_range r;
    char err[256];
    size_t len;

    roundtrip("v2_benefits.json");
    roundtrip("v2_error_final.json");
    char *in = slurp("v2_benefits.json", &len);
    assert_int_equal(rte_cache_entry_decode(in, len, &e, err, sizeof err), 0);
    assert_int_equal(e.nbenefits, 2);
    assert_string_equal(e.benefits[0].service_type, "30");
    assert_string_equal(e.benefits[1].status, "not_stated");
    assert_true(rte_cache_benefit_get(&e.benefits[0], RTE_BENEFIT_COPAY, RTE_NET_UNSTATED, &r));
    assert_int_equal(r.lo, 1500);
    assert_int_equal(r.hi, 2550);
    assert_true(rte_cache_benefit_get(&e.benefits[0], RTE_BENEFIT_COINSURANCE, RTE_NET_IN, &r));
    assert_int_equal(r.lo, 1250); /* 12.5 % in hundredths of a percent */
    assert_true(
        rte_cache_benefit_get(&e.benefits[0], RTE_BENEFIT_DEDUCTIBLE_FAMILY, RTE_NET_ANY, &r));
    assert_int_equal(r.lo, 555516);
    assert_false(rte_cache_benefit_get(&e.benefits[0], RTE_BENEFIT_COPAY, RTE_NET_OUT, &r));
    assert_string_equal(e.eligibility_start, "2022-01-02");
    free(in);
}

/* malformed later fields are named like the first ones */
static void test_decode_names_bad_benefit(void **state)
{
    (void)state;
    char err[256];
    rte_cache_entry e;
    const char *base = "{\"eligible\":true,\"network_status\":\"unknown\","
                       "\"cached_at\":\"2026-01-01T00:00:00.000Z\","
                       "\"fresh_until\":\"2026-01-02T00:00:00.000Z\",\"source\":\"stedi_batch\",";
    char doc[512];

    snprintf(doc, sizeof doc,
             "%s\"benefits\":{\"30\":{\"status\":\"active\","
             "\"copay\":{\"in_network\":\"20\"}}}}",
             base);
    assert_int_equal(rte_cache_entry_decode(doc, strlen(doc), &e, err, sizeof err), -1);
    assert_string_equal(err, "field 'benefits.30.copay.in_network': expected an amount >= 0 or "
                             "{min, max}");
    snprintf(doc, sizeof doc,
             "%s\"benefits\":{\"30\":{\"status\":\"active\","
             "\"copay\":{\"in_network\":{\"min\":30,\"max\":20}}}}}",
             base);
    assert_int_equal(rte_cache_entry_decode(doc, strlen(doc), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "benefits.30.copay.in_network"));
    snprintf(doc, sizeof doc,
             "%s\"benefits\":{\"30\":{\"status\":\"active\"},\"MH\":{\"status\":\"active\"},"
             "\"A6\":{\"status\":\"active\"}}}",
             base);
    assert_int_equal(rte_cache_entry_decode(doc, strlen(doc), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 2 service types"));
    snprintf(doc, sizeof doc, "%s\"error\":{\"code\":\"44\",\"message\":\"x\",\"retry\":\"no\"}}",
             base);
    assert_int_equal(rte_cache_entry_decode(doc, strlen(doc), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "retry"));
}

/* amounts widen to a range; unstated cells stay unstated */
static void test_benefit_add(void **state)
{
    (void)state;
    rte_cache_benefit b;
    rte_cache_range r;

    memset(&b, 0, sizeof b);
    assert_false(rte_cache_benefit_get(&b, RTE_BENEFIT_COPAY, RTE_NET_IN, &r));
    rte_cache_benefit_add(&b, RTE_BENEFIT_COPAY, RTE_NET_IN, 2000);
    rte_cache_benefit_add(&b, RTE_BENEFIT_COPAY, RTE_NET_IN, 0);
    rte_cache_benefit_add(&b, RTE_BENEFIT_COPAY, RTE_NET_IN, 1000);
    assert_true(rte_cache_benefit_get(&b, RTE_BENEFIT_COPAY, RTE_NET_IN, &r));
    assert_int_equal(r.lo, 0);
    assert_int_equal(r.hi, 2000);
    assert_false(rte_cache_benefit_get(&b, RTE_BENEFIT_COPAY, RTE_NET_OUT, &r));
    assert_false(rte_cache_benefit_get(&b, RTE_BENEFIT_NKINDS, RTE_NET_IN, &r));
    assert_string_equal(rte_cache_benefit_kind_name(RTE_BENEFIT_OUT_OF_POCKET_FAMILY),
                        "out_of_pocket_family");
    assert_string_equal(rte_cache_network_name(RTE_NET_UNSTATED), "network_not_stated");
}

static void test_decode_names_bad_field(void **state)
{
    (void)state;
    char err[256];
    rte_cache_entry e;
    const char *bad = "{\"eligible\":\"yes\",\"network_status\":\"in_network\"}";
    assert_int_equal(rte_cache_entry_decode(bad, strlen(bad), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "eligible"));
    const char *bad2 = "{\"eligible\":true,\"network_status\":\"x\",\"cached_at\":\"yesterday\","
                       "\"fresh_until\":\"2026-01-01T00:00:00Z\",\"source\":\"stedi_batch\"}";
    assert_int_equal(rte_cache_entry_decode(bad2, strlen(bad2), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "cached_at"));
}

/* dates are calendar dates wherever they enter an entry (issue 16) */
static void test_calendar_dates(void **state)
{
    (void)state;
    char err[256];
    rte_cache_entry e;
    rte_cache_freshness f = rte_cache_freshness_default();

    /* a callback's eligibility{}: 2026-13-45 was stored as it came */
    cJSON *el = cJSON_Parse("{\"eligible\":true,\"coverage_start\":\"2026-13-45\"}");
    assert_int_equal(rte_cache_entry_from_callback(el, 0, &f, &e, err, sizeof err), -1);
    assert_string_equal(err, "eligibility.coverage_start: not a calendar date (month 13)");
    cJSON_Delete(el);
    el = cJSON_Parse("{\"eligible\":true,\"coverage_end\":\"2025-02-29\"}");
    assert_int_equal(rte_cache_entry_from_callback(el, 0, &f, &e, err, sizeof err), -1);
    assert_string_equal(err,
                        "eligibility.coverage_end: not a calendar date (2025-02 has no day 29)");
    cJSON_Delete(el);
    el = cJSON_Parse("{\"eligible\":true,\"coverage_start\":\"2024-02-29\"}");
    assert_int_equal(rte_cache_entry_from_callback(el, 0, &f, &e, err, sizeof err), 0);
    assert_string_equal(e.coverage_start, "2024-02-29");
    cJSON_Delete(el);

    /* Stedi's CCYYMMDD plan dates: an impossible one is unknown, not "2026-13-45" */
    cJSON *resp = cJSON_Parse("{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":"
                              "[\"30\"]}],\"planDateInformation\":"
                              "{\"planBegin\":\"20261345\",\"planEnd\":\"20261231\"}}");
    assert_int_equal(rte_stedi_reply_read(resp, NULL, "stedi_realtime", 0, &f, &e, err, sizeof err),
                     0);
    assert_string_equal(e.coverage_start, "");
    assert_string_equal(e.coverage_end, "2026-12-31");
    cJSON_Delete(resp);
    resp = cJSON_Parse("{\"benefitsInformation\":[{\"code\":\"1\",\"serviceTypeCodes\":"
                       "[\"30\"]}],\"planDateInformation\":{\"plan\":\"20240229-20250229\"}}");
    assert_int_equal(rte_stedi_reply_read(resp, NULL, "stedi_realtime", 0, &f, &e, err, sizeof err),
                     0);
    /* the reader refuses a range with an impossible end whole: no date rather than half */
    assert_string_equal(e.coverage_end, "");
    cJSON_Delete(resp);

    /* a stored value: dates and times are checked on the way out of Redis too */
    const char *v = "{\"eligible\":true,\"network_status\":\"in_network\",\"coverage_start\":"
                    "\"2026-02-30\",\"cached_at\":\"2026-01-01T00:00:00.000Z\",\"fresh_until\":"
                    "\"2026-01-01T22:00:00.000Z\",\"source\":\"stedi_batch\"}";
    assert_int_equal(rte_cache_entry_decode(v, strlen(v), &e, err, sizeof err), -1);
    assert_string_equal(err, "field 'coverage_start': expected a calendar date YYYY-MM-DD or null");
    v = "{\"eligible\":true,\"network_status\":\"in_network\",\"cached_at\":\"1767592800\","
        "\"fresh_until\":\"2026-01-01T22:00:00.000Z\",\"source\":\"stedi_batch\"}";
    assert_int_equal(rte_cache_entry_decode(v, strlen(v), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "field 'cached_at': expected an RFC 3339 date-time"));
}

static void test_key_hides_member_id(void **state)
{
    (void)state;
    char k1[RTE_CACHE_KEY_MAX], k2[RTE_CACHE_KEY_MAX], k3[RTE_CACHE_KEY_MAX];
    assert_int_equal(rte_cache_key("s1", "M000000001", "60054", k1, sizeof k1), 0);
    assert_int_equal(rte_cache_key("s1", "M000000001", "60054", k2, sizeof k2), 0);
    assert_int_equal(rte_cache_key("s2", "M000000001", "60054", k3, sizeof k3), 0);
    assert_string_equal(k1, k2);
    assert_string_not_equal(k1, k3);
    assert_null(strstr(k1, "M000000001"));
    assert_int_equal(strncmp(k1, "rte:eligibility:", 16), 0);
    assert_string_equal(k1 + strlen(k1) - 6, ":60054");
    assert_int_equal(rte_cache_key("s1", "M1", "60054", k1, 20), -1);
}

static void test_freshness(void **state)
{
    (void)state;
    rte_cache_entry e = {.cached_at_ms = 1000000, .fresh_until_ms = 2000000};
    assert_true(rte_cache_entry_is_fresh(&e, 1999999));
    assert_false(rte_cache_entry_is_fresh(&e, 2000000));
    assert_int_equal(rte_cache_entry_age_s(&e, 1061000), 61);
    assert_int_equal(rte_cache_entry_age_s(&e, 0), 0);
}

/* --- real Redis ---------------------------------------------------- */

static pid_t redis_pid;
static char redis_url[64];

static int start_redis(void **state)
{
    (void)state;
    int port = tu_free_port();
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", port);
    redis_pid = tu_redis_start(port);
    return redis_pid > 0 ? 0 : -1;
}

static int stop_redis(void **state)
{
    (void)state;
    tu_redis_stop(redis_pid);
    return 0;
}

static void test_put_get_never_older(void **state)
{
    (void)state;
    char err[256];
    rte_redis *r = rte_redis_new(redis_url, 1000, err, sizeof err);
    rte_cache_freshness f = rte_cache_freshness_default();
    rte_cache_entry newer = {.eligible = 1,
                             .has_copay = 1,
                             .copay_amount = 25,
                             .cached_at_ms = 2000000000000LL,
                             .fresh_until_ms = 2000000000000LL + f.success_ms};
    snprintf(newer.network_status, sizeof newer.network_status, "in_network");
    snprintf(newer.source, sizeof newer.source, "stedi_realtime");
    rte_cache_entry older = newer;
    older.cached_at_ms -= 60000;
    older.copay_amount = 99;
    snprintf(older.source, sizeof older.source, "stedi_batch");
    const char *key = "rte:eligibility:test:60054";

    assert_int_equal(rte_cache_put(r, key, &newer, &f, err, sizeof err), 1);
    assert_int_equal(rte_cache_put(r, key, &older, &f, err, sizeof err), 0);
    rte_cache_entry got;
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_true(got.copay_amount == 25);
    assert_string_equal(got.source, "stedi_realtime");
    assert_int_equal(got.cached_at_ms, newer.cached_at_ms);

    /* physical TTL is set and longer than logical freshness */
    redisReply *ttl = rte_redis_cmd(r, err, sizeof err, "PTTL %s", key);
    assert_non_null(ttl);
    assert_true(ttl->integer > f.success_ms);
    freeReplyObject(ttl);

    assert_int_equal(rte_cache_get(r, "rte:eligibility:absent:1", &got, err, sizeof err), 0);
    redisReply *set = rte_redis_cmd(r, err, sizeof err, "SET rte:eligibility:bad:1 {oops");
    freeReplyObject(set);
    assert_int_equal(rte_cache_get(r, "rte:eligibility:bad:1", &got, err, sizeof err), -1);
    assert_non_null(strstr(err, "corrupt"));
    rte_redis_free(r);
}

/* An error entry keeps the success it replaced, from error to error, within the Redis TTL. */
static void test_error_keeps_last_success(void **state)
{
    (void)state;
    char err[256];
    rte_redis *r = rte_redis_new(redis_url, 1000, err, sizeof err);
    rte_cache_freshness f = rte_cache_freshness_default();
    const int64_t t = 2000000000000LL;
    const char *key = "rte:eligibility:lastok:60054";
    rte_cache_entry ok = {.eligible = 1,
                          .has_copay = 1,
                          .copay_amount = 12.5,
                          .cached_at_ms = t,
                          .fresh_until_ms = t + f.success_ms};
    rte_cache_entry bad = {.is_error = 1, .cached_at_ms = t + 1000, .fresh_until_ms = t + 301000};
    rte_cache_entry got, back;

    snprintf(ok.network_status, sizeof ok.network_status, "in_network");
    snprintf(ok.coverage_start, sizeof ok.coverage_start, "2026-01-01");
    snprintf(ok.source, sizeof ok.source, "stedi_batch");
    snprintf(bad.network_status, sizeof bad.network_status, "unknown");
    snprintf(bad.source, sizeof bad.source, "stedi_realtime");
    snprintf(bad.error_code, sizeof bad.error_code, "42");
    snprintf(bad.error_message, sizeof bad.error_message, "Unable to Respond at Current Time");

    assert_int_equal(rte_cache_put(r, key, &ok, &f, err, sizeof err), 1);
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_false(got.has_last_success);
    assert_false(rte_cache_entry_last_success(&got, &back));

    /* the error replaces the success and keeps it */
    assert_int_equal(rte_cache_put(r, key, &bad, &f, err, sizeof err), 1);
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_true(got.is_error);
    assert_string_equal(got.error_code, "42");
    assert_true(rte_cache_entry_last_success(&got, &back));
    assert_false(back.is_error);
    assert_true(back.eligible && back.has_copay && back.copay_amount == 12.5);
    assert_string_equal(back.network_status, "in_network");
    assert_string_equal(back.coverage_start, "2026-01-01");
    assert_string_equal(back.coverage_end, "");
    assert_string_equal(back.source, "stedi_batch");
    assert_int_equal(back.cached_at_ms, t);
    assert_int_equal(back.fresh_until_ms, t + f.success_ms);

    /* a second error carries it on (through put_many's path too) */
    bad.cached_at_ms = t + 2000;
    rte_cache_write w = {.key = key, .entry = &bad};
    assert_int_equal(rte_cache_put_many(r, &w, 1, &f, err, sizeof err), 0);
    assert_int_equal(w.rc, 1);
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_true(rte_cache_entry_last_success(&got, &back));
    assert_true(back.copay_amount == 12.5 && back.cached_at_ms == t);
    assert_string_equal(back.coverage_start, "2026-01-01");

    /* an entry put with a success of its own keeps that one: one last_success, encoded as read */
    got.cached_at_ms = t + 2500;
    got.last_success.copay_amount = 13;
    assert_int_equal(rte_cache_put(r, key, &got, &f, err, sizeof err), 1);
    redisReply *raw = rte_redis_cmd(r, err, sizeof err, "GET %s", key);
    assert_non_null(raw);
    char *first = strstr(raw->str, "\"last_success\"");
    assert_non_null(first);
    assert_null(strstr(first + 1, "\"last_success\""));
    freeReplyObject(raw);
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_true(rte_cache_entry_last_success(&got, &back));
    assert_true(back.copay_amount == 13 && back.cached_at_ms == t);

    /* a new success ends it; an error long after that success keeps nothing */
    ok.cached_at_ms = t + 3000;
    assert_int_equal(rte_cache_put(r, key, &ok, &f, err, sizeof err), 1);
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_false(got.is_error || got.has_last_success);
    bad.cached_at_ms = t + 3000 + f.physical_ms + 1;
    assert_int_equal(rte_cache_put(r, key, &bad, &f, err, sizeof err), 1);
    assert_int_equal(rte_cache_get(r, key, &got, err, sizeof err), 1);
    assert_true(got.is_error);
    assert_false(got.has_last_success);
    rte_redis_free(r);
}

static void test_decode_last_success(void **state)
{
    (void)state;
    char err[256];
    rte_cache_entry e;
    const char *good = "{\"eligible\":false,\"copay_amount\":null,\"network_status\":\"unknown\","
                       "\"coverage_start\":null,\"coverage_end\":null,"
                       "\"cached_at\":\"2026-11-23T10:00:00.000Z\","
                       "\"fresh_until\":\"2026-11-23T10:05:00.000Z\",\"source\":\"stedi_realtime\","
                       "\"error\":{\"code\":\"42\",\"message\":\"down\"},\"last_success\":"
                       "{\"eligible\":true,\"copay_amount\":20,\"network_status\":\"in_network\","
                       "\"coverage_start\":null,\"coverage_end\":\"2026-12-31\","
                       "\"cached_at\":\"2026-11-22T10:00:00.000Z\","
                       "\"fresh_until\":\"2026-11-23T08:00:00.000Z\",\"source\":\"stedi_batch\"}}";
    char bad[1024];

    assert_int_equal(rte_cache_entry_decode(good, strlen(good), &e, err, sizeof err), 0);
    assert_true(e.is_error && e.has_last_success);
    assert_true(e.last_success.eligible && e.last_success.copay_amount == 20);
    assert_string_equal(e.last_success.coverage_end, "2026-12-31");
    /* a malformed last_success is named */
    snprintf(bad, sizeof bad, "%s", good);
    memcpy(strstr(bad, "\"eligible\":true"), "\"eligible\":   7", 15);
    assert_int_equal(rte_cache_entry_decode(bad, strlen(bad), &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "last_success"));
}

struct announced {
    pthread_mutex_t mu;
    int subscribed, messages;
    char last[RTE_CACHE_KEY_MAX];
};

static void on_written(void *arg, const char *channel, const char *msg, size_t len)
{
    struct announced *a = arg;
    (void)len;
    pthread_mutex_lock(&a->mu);
    if (strcmp(channel, RTE_CACHE_WRITTEN_CHANNEL) == 0) {
        a->messages++;
        snprintf(a->last, sizeof a->last, "%s", msg);
    }
    pthread_mutex_unlock(&a->mu);
}

static void on_sub_state(void *arg, int subscribed)
{
    struct announced *a = arg;
    pthread_mutex_lock(&a->mu);
    a->subscribed = subscribed;
    pthread_mutex_unlock(&a->mu);
}

static int wait_count(struct announced *a, int *field, int want)
{
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&a->mu);
        int v = *field;
        pthread_mutex_unlock(&a->mu);
        if (v == want)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* Every write is announced on the invalidation channel; a kept newer entry is not. */
static void test_put_announces_writes(void **state)
{
    (void)state;
    char err[256];
    struct announced a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rte_redis_sub *sub = rte_redis_subscribe(redis_url, 1000, RTE_CACHE_WRITTEN_CHANNEL, on_written,
                                             on_sub_state, &a, err, sizeof err);
    assert_non_null(sub);
    assert_true(wait_count(&a, &a.subscribed, 1));
    rte_redis *r = rte_redis_new(redis_url, 1000, err, sizeof err);
    rte_cache_freshness f = rte_cache_freshness_default();
    rte_cache_entry e = {.eligible = 1, .cached_at_ms = 2000000000000LL};
    snprintf(e.source, sizeof e.source, "stedi_batch");
    rte_cache_entry older = e;
    older.cached_at_ms -= 1000;
    const char *key = "rte:eligibility:announce:62308";

    assert_int_equal(rte_cache_put(r, key, &e, &f, err, sizeof err), 1);
    assert_true(wait_count(&a, &a.messages, 1));
    assert_string_equal(a.last, key);
    assert_int_equal(rte_cache_put(r, key, &older, &f, err, sizeof err), 0);
    usleep(200000);
    pthread_mutex_lock(&a.mu);
    assert_int_equal(a.messages, 1); /* nothing written, nothing announced */
    pthread_mutex_unlock(&a.mu);
    rte_redis_free(r);
    rte_redis_sub_free(sub);
}

/* Many writes in one round trip: same CAS as rte_cache_put, script reloaded after a flush. */
static void test_put_many(void **state)
{
    (void)state;
    char err[256];
    rte_redis *r = rte_redis_new(redis_url, 1000, err, sizeof err);
    rte_cache_freshness f = rte_cache_freshness_default();
    rte_cache_entry e[3];
    rte_cache_write w[3];
    const char *keys[3] = {"rte:eligibility:many:1", "rte:eligibility:many:2",
                           "rte:eligibility:many:3"};

    for (int i = 0; i < 3; i++) {
        memset(&e[i], 0, sizeof e[i]);
        e[i].eligible = 1;
        e[i].has_copay = 1;
        e[i].copay_amount = 10 + i;
        e[i].cached_at_ms = 2000000000000LL;
        snprintf(e[i].source, sizeof e[i].source, "stedi_batch");
        snprintf(e[i].network_status, sizeof e[i].network_status, "in_network");
        w[i] = (rte_cache_write){keys[i], &e[i], -1};
    }
    /* key 3 already holds a newer entry: kept */
    rte_cache_entry newer = e[2];
    newer.cached_at_ms += 5000;
    newer.copay_amount = 99;
    assert_int_equal(rte_cache_put(r, keys[2], &newer, &f, err, sizeof err), 1);
    redisReply *fl = rte_redis_cmd(r, err, sizeof err, "SCRIPT FLUSH"); /* NOSCRIPT path */
    freeReplyObject(fl);

    assert_int_equal(rte_cache_put_many(r, w, 3, &f, err, sizeof err), 0);
    assert_int_equal(w[0].rc, 1);
    assert_int_equal(w[1].rc, 1);
    assert_int_equal(w[2].rc, 0);
    rte_cache_entry got;
    int grc = rte_cache_get(r, keys[1], &got, err, sizeof err);
    if (grc != 1)
        fail_msg("get: %d %s", grc, err);
    assert_true(got.copay_amount == 11);
    assert_int_equal(rte_cache_get(r, keys[2], &got, err, sizeof err), 1);
    assert_true(got.copay_amount == 99);
    /* again, now with the script cached: older ones are all kept */
    assert_int_equal(rte_cache_put_many(r, w, 2, &f, err, sizeof err), 0);
    assert_int_equal(w[0].rc, 1); /* same cached_at: not older, rewritten */
    assert_int_equal(rte_cache_put_many(r, w, 0, &f, err, sizeof err), 0);
    assert_int_equal(rte_cache_put_many(r, w, 1001, &f, err, sizeof err), -1);
    rte_redis_free(r);
}

/* calls of a Redis command so far (INFO commandstats), -1 if unknown */
static long command_calls(rte_redis *r, const char *cmd)
{
    char err[256], pat[64];
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "INFO commandstats");
    long calls = -1;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
        snprintf(pat, sizeof pat, "cmdstat_%s:calls=", cmd);
        const char *p = strstr(rep->str, pat);
        calls = p ? strtol(p + strlen(pat), NULL, 10) : 0;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    return calls;
}

/*
 * 200 writes, mixed: a call covers 64 keys (4 EVALSHA, not 200), and each
 * entry is judged on its own as rte_cache_put judges it - a stored newer
 * entry is kept (rc 0, value untouched), an older one is replaced, an
 * error replacing a success carries it, the same key twice in one call
 * applies in order.
 */
static void test_put_many_batched(void **state)
{
    (void)state;
    enum { N = 200 };
    char err[256];
    rte_redis *r = rte_redis_new(redis_url, 1000, err, sizeof err);
    rte_cache_freshness f = rte_cache_freshness_default();
    static rte_cache_entry e[N];
    static rte_cache_write w[N];
    static char keys[N][64];
    const int64_t t = 2000000000000LL;

    assert_non_null(r);
    redisReply *fl = rte_redis_cmd(r, err, sizeof err, "FLUSHALL");
    freeReplyObject(fl);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "rte:eligibility:batched%d:62308", i);
        memset(&e[i], 0, sizeof e[i]);
        e[i].eligible = 1;
        e[i].has_copay = 1;
        e[i].copay_amount = i;
        e[i].cached_at_ms = t;
        e[i].fresh_until_ms = t + f.success_ms;
        snprintf(e[i].source, sizeof e[i].source, "stedi_batch");
        snprintf(e[i].network_status, sizeof e[i].network_status, "in_network");
        w[i] = (rte_cache_write){keys[i], &e[i], -1};
    }
    /* stored before: every third key newer (kept), every fifth older (replaced) */
    for (int i = 0; i < N; i++) {
        rte_cache_entry pre = e[i];
        if (i % 3 == 0)
            pre.cached_at_ms = t + 1000;
        else if (i % 5 == 0)
            pre.cached_at_ms = t - 1000;
        else
            continue;
        pre.copay_amount = 1000 + i;
        assert_int_equal(rte_cache_put(r, keys[i], &pre, &f, err, sizeof err), 1);
    }
    /* entry 7 (stored: nothing) and entry 10 (stored: an older success) become errors */
    for (int i = 7; i <= 10; i += 3) {
        e[i].is_error = 1;
        e[i].error_retry = 1;
        snprintf(e[i].error_code, sizeof e[i].error_code, "42");
        snprintf(e[i].error_origin, sizeof e[i].error_origin, "payer");
    }
    /* the same key three times in one call (64, 65, 66) */
    w[65].key = keys[64];
    e[65].cached_at_ms = t + 500;
    w[66].key = keys[64];
    e[66].cached_at_ms = t - 500;
    long before = command_calls(r, "evalsha");
    assert_int_equal(rte_cache_put_many(r, w, N, &f, err, sizeof err), 0);
    assert_int_equal(command_calls(r, "evalsha") - before,
                     (N + 63) / 64); /* 200 before: one per entry */

    rte_cache_entry got;
    for (int i = 0; i < N; i++) {
        if (i == 65 || i == 66)
            continue;
        assert_int_equal(rte_cache_get(r, keys[i], &got, err, sizeof err), 1);
        if (i % 3 == 0) {
            assert_int_equal(w[i].rc, 0);
            assert_true(got.copay_amount == 1000 + i); /* the newer one stayed */
            assert_int_equal(got.cached_at_ms, t + 1000);
        } else if (i == 7 || i == 10) {
            assert_int_equal(w[i].rc, 1);
            assert_int_equal(got.is_error, 1);
            assert_int_equal(got.has_last_success, i == 10); /* 10 replaced a success */
        } else if (i != 64) {                                /* 64: below */
            assert_int_equal(w[i].rc, 1);
            assert_int_equal(got.is_error, 0);
            assert_true(got.copay_amount == i);
            assert_int_equal(got.cached_at_ms, t);
        }
    }
    /* key 64 (nothing stored before), three times in one call, in order: its own entry (t)
     * written, 65's (t + 500) newer so written, 66's (t - 500) older so kept */
    assert_int_equal(w[64].rc, 1);
    assert_int_equal(w[65].rc, 1);
    assert_int_equal(w[66].rc, 0);
    assert_int_equal(rte_cache_get(r, keys[64], &got, err, sizeof err), 1);
    assert_true(got.copay_amount == 65);
    assert_int_equal(got.cached_at_ms, t + 500);
    rte_redis_free(r);
}

static void test_settings_from_config(void **state)
{
    char err[256];
    rte_cache_settings cs;
    rte_config *cfg;
    (void)state;

    cfg = rte_config_from_string("cache:\n  member_key_secret: s3cret\n  fresh_success: 2h\n"
                                 "  fresh_error: 30s\n  ttl: 3h\n",
                                 err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_cache_settings_from_config(cfg, &cs, err, sizeof err), 0);
    assert_string_equal(cs.member_key_secret, "s3cret");
    assert_int_equal(cs.freshness.success_ms, 2 * 3600 * 1000);
    assert_int_equal(cs.freshness.error_ms, 30 * 1000);
    assert_int_equal(cs.freshness.physical_ms, 3 * 3600 * 1000);
    rte_config_free(cfg);

    /* a TTL that would drop entries while still fresh is refused, naming the key */
    cfg = rte_config_from_string("cache:\n  fresh_success: 2h\n  ttl: 1h\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_cache_settings_from_config(cfg, &cs, err, sizeof err), -1);
    assert_non_null(strstr(err, "cache.ttl"));
    rte_config_free(cfg);

    cfg = rte_config_from_string("cache:\n  fresh_error: soon\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_cache_settings_from_config(cfg, &cs, err, sizeof err), -1);
    assert_non_null(strstr(err, "cache.fresh_error"));
    rte_config_free(cfg);

    /* an error retrying cannot fix: its own window, also below the TTL */
    cfg = rte_config_from_string("cache:\n  fresh_error_final: 4h\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_cache_settings_from_config(cfg, &cs, err, sizeof err), 0);
    assert_int_equal(cs.freshness.error_final_ms, 4LL * 3600 * 1000);
    rte_config_free(cfg);
    cfg = rte_config_from_string("cache:\n  fresh_error_final: 100h\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(rte_cache_settings_from_config(cfg, &cs, err, sizeof err), -1);
    assert_non_null(strstr(err, "cache.fresh_error_final"));
    rte_config_free(cfg);

    /* defaults: the design's 22 h / 5 min / 72 h, and 1 h for a final error */
    cfg = rte_config_from_string("", err, sizeof err);
    assert_int_equal(rte_cache_settings_from_config(cfg, &cs, err, sizeof err), 0);
    assert_int_equal(cs.freshness.success_ms, 22LL * 3600 * 1000);
    assert_int_equal(cs.freshness.error_ms, 5LL * 60 * 1000);
    assert_int_equal(cs.freshness.error_final_ms, 3600LL * 1000);
    assert_int_equal(cs.freshness.physical_ms, 72LL * 3600 * 1000);
    rte_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_v1_entries_decode),   cmocka_unit_test(test_v1_error_is_retryable),
        cmocka_unit_test(test_v2_roundtrip),        cmocka_unit_test(test_decode_names_bad_benefit),
        cmocka_unit_test(test_benefit_add),         cmocka_unit_test(test_decode_names_bad_field),
        cmocka_unit_test(test_decode_last_success), cmocka_unit_test(test_key_hides_member_id),
        cmocka_unit_test(test_freshness),           cmocka_unit_test(test_settings_from_config),
        cmocka_unit_test(test_calendar_dates),
    };
    const struct CMUnitTest redis[] = {
        cmocka_unit_test(test_put_get_never_older),
        cmocka_unit_test(test_error_keeps_last_success),
        cmocka_unit_test(test_put_announces_writes),
        cmocka_unit_test(test_put_many),
        cmocka_unit_test(test_put_many_batched),
    };
    int rc = cmocka_run_group_tests(pure, NULL, NULL);
    rc += cmocka_run_group_tests(redis, start_redis, stop_redis);
    return rc;
}
