/*
 * test_member_dir.c - rte_member_dir: golden 5-member file (exact fields,
 * escapes, nulls, unknown keys, payer_id fallback), unknown ids, malformed
 * lines named by number, duplicate ids, reload_if_changed (unchanged,
 * rewritten, failed reload keeps the old snapshot) and a reader keeping its
 * old snapshot across a reload, find_many agreeing with find, and loading plus conditional
 * reloading (ETag / If-None-Match, 304) from an http URL served by a small in-test server thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "rte/member_dir.h"

static char golden[512];

static const char *data_dir(void)
{
    const char *d = getenv("RTE_DATA_DIR");
    return d && d[0] ? d : "tests/data";
}

static int setup(void **state)
{
    (void)state;
    snprintf(golden, sizeof(golden), "%s/member_dir/five.jsonl", data_dir());
    return 0;
}

/* Write text to a fresh temporary file; returns its path in buf. */
static void write_tmp(char *buf, size_t len, const char *text)
{
    snprintf(buf, len, "/tmp/test_member_dir_XXXXXX");
    int fd = mkstemp(buf);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Replace path's content (new inode via rename, as a snapshot publisher would). */
static void rewrite(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_golden_fields(void **state)
{
    char err[256];
    (void)state;
    rte_member_dir *d = rte_member_dir_new(golden, err, sizeof(err));
    assert_non_null(d);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(s), 5);

    const rte_member *m = rte_member_snapshot_find(s, "M223274216");
    assert_non_null(m);
    assert_ptr_equal(m, rte_member_snapshot_at(s, 0));
    assert_string_equal(m->first_name, "John");
    assert_string_equal(m->last_name, "Lopez");
    assert_string_equal(m->date_of_birth, "1968-10-29");
    assert_string_equal(m->sponsor_id, "SP0248");
    assert_string_equal(m->population_id, "POP008");
    assert_string_equal(m->state, "AZ");
    assert_string_equal(m->language, "en");
    assert_string_equal(m->plan_type, "HMO");
    assert_string_equal(m->trading_partner_id, "87726");
    assert_int_equal(m->has_rte_enabled, 1);
    assert_int_equal(m->is_mock, 0);
    assert_int_equal(m->account_status, RTE_MEMBER_ACTIVE);
    assert_int_equal(m->last_login_ms, 1767347000000LL);
    assert_int_equal(m->last_check_ms, 1766689706000LL);
    assert_int_equal(m->appointment_ms, -1);
    assert_int_equal(m->enrollment_ms, 1639612800000LL);
    assert_float_equal(m->usage_by_hour[9], 0.2958f, 1e-6);
    assert_float_equal(m->weekday_factor[6], 0.89f, 1e-6);
    float sum = 0;
    for (int h = 0; h < 24; h++)
        sum += m->usage_by_hour[h];
    assert_float_equal(sum, 1.0f, 1e-4);

    /* hand-written member: escapes, nulls, absent fields, unknown keys */
    m = rte_member_snapshot_find(s, "M000000005");
    assert_non_null(m);
    assert_string_equal(m->first_name, "Zo\xc3\xab");
    assert_string_equal(m->last_name, "O\"Neil");
    assert_string_equal(m->trading_partner_id, "62308"); /* from payer_id */
    assert_int_equal(m->has_rte_enabled, 0);
    assert_int_equal(m->is_mock, 1);
    assert_int_equal(m->account_status, RTE_MEMBER_STATUS_UNKNOWN);
    assert_int_equal(m->last_login_ms, -1);
    assert_int_equal(m->last_check_ms, -1); /* key absent */
    assert_int_equal(m->appointment_ms, 1767688200000LL);
    assert_int_equal(m->enrollment_ms, 1766188800000LL);
    assert_float_equal(m->usage_by_hour[7], 0.5f, 1e-6);
    assert_float_equal(m->weekday_factor[5], 1.0f, 1e-6);

    /* interned: equal values share one pointer */
    const rte_member *a = rte_member_snapshot_at(s, 0);
    for (size_t i = 1; i < 5; i++) {
        const rte_member *b = rte_member_snapshot_at(s, i);
        if (strcmp(a->language, b->language) == 0)
            assert_ptr_equal(a->language, b->language);
    }
    assert_null(rte_member_snapshot_at(s, 5));
    assert_null(rte_member_snapshot_find(s, "M999999999"));
    assert_null(rte_member_snapshot_find(s, ""));
    assert_null(rte_member_snapshot_find(s, "M22327421"));

    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
}

static void expect_load_error(const char *text, const char *needle)
{
    char path[512], err[256] = "";
    write_tmp(path, sizeof(path), text);
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof(err));
    assert_null(d);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not contain '%s'", err, needle);
    unlink(path);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_load_error("{\"member_id\":\"A\"}\n\n{\"member_id\":\"B\",\"first_name\":}\n",
                      "line 3:");
    expect_load_error("{\"member_id\":\"A\"}\nnot json\n", "line 2:");
    expect_load_error("{\"first_name\":\"x\"}\n", "line 1: missing member_id");
    expect_load_error("{\"member_id\":\"A\"}\n{\"member_id\":\"A\"}\n",
                      "line 2: member_id 'A' repeats line 1");
    expect_load_error("{\"member_id\":\"A\",\"usage_by_hour\":[1,2]}\n",
                      "'usage_by_hour' has 2 numbers, expected 24");
    expect_load_error("{\"member_id\":\"A\",\"last_login_at\":\"yesterday\"}\n",
                      "field 'last_login_at'");
    expect_load_error("{\"member_id\":\"A\"} x\n",
                      "line 1: invalid JSON at byte 18: unexpected data after the document");
    expect_load_error("{\"member_id\":\"A\",\"has_rte_enabled\":\"yes\"}\n",
                      "field 'has_rte_enabled'");

    char err[256] = "";
    assert_null(rte_member_dir_new("/nonexistent/members.jsonl", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/members.jsonl"));
}

/*
 * the input policy on directory lines (issue 16): each of these loaded
 * before, and now fails the load naming the line and the field
 */
static void test_input_policy(void **state)
{
    (void)state;
    /* ids: an escaped NUL cut "A\u0000B" to "A"; control characters and bad UTF-8 went in */
    expect_load_error("{\"member_id\":\"A\"}\n{\"member_id\":\"B\\u0000X\"}\n",
                      "line 2: \\u0000 not allowed in a string at 'member_id'");
    expect_load_error("{\"member_id\":\"B\\u0001\"}\n",
                      "line 1: field 'member_id': control character U+0001 at byte 1 is not "
                      "allowed");
    expect_load_error("{\"member_id\":\"B\\u2028\"}\n", "field 'member_id': line separator");
    expect_load_error("{\"member_id\":\"B\x01\"}\n",
                      "line 1: control character 0x01 at byte 15 in a string at 'member_id'");
    expect_load_error("{\"member_id\":\"M\xff\"}\n",
                      "line 1: invalid UTF-8 at byte 15 in a string at 'member_id'");
    expect_load_error("{\"member_id\":\"M1\",\"last_name\":\"\xc0\xafx\"}\n",
                      "line 1: invalid UTF-8 at byte 31 in a string at 'last_name'");
    expect_load_error("{\"member_id\":\" M1\"}\n", "field 'member_id': leading or trailing space");
    expect_load_error("{\"member_id\":\"M1\",\"trading_partner_id\":\"62\\u000a308\"}\n",
                      "field 'trading_partner_id': control character U+000A");
    expect_load_error("{\"member_id\":\"M1\",\"payer_id\":\"\\u200b62308\"}\n",
                      "field 'payer_id': invisible format character U+200B");
    /* duplicate keys: the first one won, whatever a second reader thought */
    expect_load_error("{\"member_id\":\"A\",\"member_id\":\"B\"}\n",
                      "line 1: duplicate key 'member_id' in the top-level object");
    expect_load_error("{\"member_id\":\"A\",\"x\":{\"k\":1,\"k\":2}}\n",
                      "line 1: duplicate key 'k' in the object at 'x'");
    expect_load_error("{\"member_id\":\"A\",\"feature_flags\":{\"f\":true,\"f\":false}}\n",
                      "duplicate key 'f' in the object at 'feature_flags'");
    /* lone surrogates were turned into U+FFFD */
    expect_load_error("{\"member_id\":\"A\",\"first_name\":\"\\ud800\"}\n",
                      "unpaired surrogate escape \\ud800 at byte 31 in a string at 'first_name'");
    /* dates and times */
    expect_load_error("{\"member_id\":\"A\",\"date_of_birth\":\"1980-13-45\"}\n",
                      "line 1: field 'date_of_birth': not a calendar date (month 13)");
    expect_load_error("{\"member_id\":\"A\",\"date_of_birth\":\"1981-02-29\"}\n",
                      "field 'date_of_birth': not a calendar date (1981-02 has no day 29)");
    expect_load_error("{\"member_id\":\"A\",\"date_of_birth\":\"01/02/1980\"}\n",
                      "field 'date_of_birth': expected YYYY-MM-DD or YYYYMMDD");
    expect_load_error("{\"member_id\":\"A\",\"enrollment_date\":\"2021-02-31\"}\n",
                      "field 'enrollment_date': not a calendar date (2021-02 has no day 31)");
    expect_load_error("{\"member_id\":\"A\",\"last_login_at\":\"2026-02-30T10:00:00Z\"}\n",
                      "field 'last_login_at': not a calendar date (2026-02 has no day 30)");
    expect_load_error("{\"member_id\":\"A\",\"last_login_at\":\"2026-01-02T25:00:00Z\"}\n",
                      "field 'last_login_at': not a time of day (25:00:00)");
    expect_load_error("{\"member_id\":\"A\",\"last_login_at\":\"1969-12-31T23:00:00Z\"}\n",
                      "field 'last_login_at': before 1970");
    expect_load_error("{\"member_id\":\"A\",\"upcoming_appointment_at\":\"1767688200\"}\n",
                      "field 'upcoming_appointment_at': expected an RFC 3339 date-time");

    /* what the policy allows: a surrogate pair is one 4-byte character, offsets are read */
    char path[512], err[256] = "";
    write_tmp(path, sizeof(path),
              "{\"member_id\":\"M-\xc3\xa9\",\"first_name\":\"\\ud834\\udd1e\","
              "\"date_of_birth\":\"19800229\",\"last_login_at\":\"2026-01-05T07:00:00+01:00\","
              "\"enrollment_date\":\"2024-02-29\"}\n");
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof(err));
    if (d == NULL)
        fail_msg("load failed: %s", err);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    const rte_member *m = rte_member_snapshot_find(s, "M-\xc3\xa9");
    assert_non_null(m);
    assert_string_equal(m->first_name, "\xf0\x9d\x84\x9e");
    assert_string_equal(m->date_of_birth, "19800229");
    assert_int_equal(m->last_login_ms, 1767592800000LL);
    assert_int_equal(m->enrollment_ms, 1709164800000LL);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    unlink(path);
}

/* the on flags of m, by name, in bit order, joined with ',' */
static void on_flags(const rte_member_snapshot *s, const rte_member *m, char *out, size_t len)
{
    const char *const *names;
    size_t n = rte_member_snapshot_flags(s, &names);

    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (m->feature_flags & (1ULL << i))
            snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? "," : "", names[i]);
}

static void test_feature_flags(void **state)
{
    char path[512], err[256], got[256];
    (void)state;
    write_tmp(path, sizeof(path),
              "{\"member_id\":\"A\",\"feature_flags\":[\"new_ui\",\"rte_v2\"]}\n"
              "{\"member_id\":\"B\",\"feature_flags\":{\"rte_v2\":true,\"beta\":true,"
              "\"new_ui\":false}}\n"
              "{\"member_id\":\"C\",\"feature_flags\":null}\n"
              "{\"member_id\":\"D\",\"feature_flags\":[]}\n"
              "{\"member_id\":\"E\"}\n");
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof(err));
    assert_non_null(d);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    const char *const *names;
    assert_int_equal(rte_member_snapshot_flags(s, &names), 3);
    assert_string_equal(names[0], "new_ui");
    assert_string_equal(names[1], "rte_v2");
    assert_string_equal(names[2], "beta");
    on_flags(s, rte_member_snapshot_find(s, "A"), got, sizeof got);
    assert_string_equal(got, "new_ui,rte_v2");
    on_flags(s, rte_member_snapshot_find(s, "B"), got, sizeof got); /* new_ui false: off */
    assert_string_equal(got, "rte_v2,beta");
    static const char *const none[] = {"C", "D", "E"}; /* null, [], absent */
    for (size_t i = 0; i < 3; i++)
        assert_true(rte_member_snapshot_find(s, none[i])->feature_flags == 0);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    unlink(path);

    /* bad shapes name the field; a 65th distinct name is refused */
    expect_load_error("{\"member_id\":\"A\",\"feature_flags\":\"new_ui\"}\n",
                      "field 'feature_flags': expected an array");
    expect_load_error("{\"member_id\":\"A\",\"feature_flags\":[1]}\n",
                      "field 'feature_flags': expected a flag name");
    expect_load_error("{\"member_id\":\"A\",\"feature_flags\":{\"x\":\"on\"}}\n",
                      "field 'feature_flags': expected true or false");
    char many[2048] = "{\"member_id\":\"A\",\"feature_flags\":[";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"f%d\"", i ? "," : "", i);
    snprintf(many + strlen(many), sizeof many - strlen(many), "]}\n");
    expect_load_error(many, "more than 64 distinct flag names");
}

static void test_reload(void **state)
{
    char path[512], err[256];
    (void)state;
    write_tmp(path, sizeof(path),
              "{\"member_id\":\"A\",\"first_name\":\"Old\"}\n{\"member_id\":\"B\"}\n");
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), 0);

    rte_member_snapshot *old = rte_member_dir_acquire(d);
    rewrite(path, "{\"member_id\":\"A\",\"first_name\":\"New\"}\n{\"member_id\":\"C\"}\n"
                  "{\"member_id\":\"D\"}\n");
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), 1);
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), 0);

    rte_member_snapshot *cur = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(cur), 3);
    assert_string_equal(rte_member_snapshot_find(cur, "A")->first_name, "New");
    assert_null(rte_member_snapshot_find(cur, "B"));
    assert_non_null(rte_member_snapshot_find(cur, "D"));

    /* the reader holding the old snapshot still sees the old data */
    assert_int_equal(rte_member_snapshot_count(old), 2);
    assert_string_equal(rte_member_snapshot_find(old, "A")->first_name, "Old");
    assert_non_null(rte_member_snapshot_find(old, "B"));
    rte_member_snapshot_release(old);

    /* a broken rewrite fails the reload and keeps the current snapshot */
    rewrite(path, "{\"member_id\":\"E\"}\n{broken\n");
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2:"));
    rte_member_snapshot *again = rte_member_dir_acquire(d);
    assert_ptr_equal(again, cur);
    rte_member_snapshot_release(again);

    /* the directory may go while a reader still holds a snapshot */
    rte_member_dir_free(d);
    assert_string_equal(rte_member_snapshot_find(cur, "A")->first_name, "New");
    rte_member_snapshot_release(cur);
    unlink(path);
}

static void test_member_gen_roundtrip(void **state)
{
    char path[512], cmd[1024], err[256];
    (void)state;
    if (access("build/bin/member-gen", X_OK) != 0)
        skip();
    snprintf(path, sizeof(path), "/tmp/test_member_dir_gen_%d.jsonl", (int)getpid());
    snprintf(cmd, sizeof(cmd), "build/bin/member-gen --count 2000 --seed 5 --out %s", path);
    assert_int_equal(system(cmd), 0);
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof(err));
    if (!d)
        fail_msg("%s", err);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(s), 2000);
    for (size_t i = 0; i < 2000; i++) {
        const rte_member *m = rte_member_snapshot_at(s, i);
        assert_ptr_equal(rte_member_snapshot_find(s, m->member_id), m);
        assert_int_equal(strlen(m->member_id), 10);
        assert_true(m->account_status != RTE_MEMBER_STATUS_UNKNOWN);
        assert_true(m->enrollment_ms > 0);
    }
    /* find_many agrees with find over groups of 32 and a partial last group: every member,
     * then absent, empty and NULL ids mixed in */
    enum { N = 2000 + 75 };
    static const char *ids[N];
    static const rte_member *out[N];
    static char absent[75][16];
    for (size_t i = 0; i < 2000; i++)
        ids[i] = rte_member_snapshot_at(s, i)->member_id;
    for (size_t i = 0; i < 75; i++) {
        snprintf(absent[i], sizeof absent[i], "X%09zu", i);
        ids[2000 + i] = i % 3 == 0 ? NULL : i % 3 == 1 ? absent[i] : "";
    }
    rte_member_snapshot_find_many(s, ids, N, out);
    for (size_t i = 0; i < 2000; i++)
        assert_ptr_equal(out[i], rte_member_snapshot_at(s, i));
    for (size_t i = 2000; i < N; i++)
        assert_null(out[i]);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    unlink(path);
}

/*
 * A one-connection-at-a-time HTTP/1.1 server for the URL source: it answers
 * every GET with the current body and ETag, or 304 when If-None-Match names
 * the current ETag, and closes the connection after each answer.
 */
struct snap_server {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    char body[512];
    char etag[32];
    int gets, not_modified; /* under mu */
};

static void *snap_server_main(void *arg)
{
    struct snap_server *s = arg;
    char req[4096], head[256], out[1024];
    int c;

    while ((c = accept(s->fd, NULL, NULL)) >= 0) {
        ssize_t n, got = 0;
        while (got < (ssize_t)sizeof req - 1 &&
               (n = read(c, req + got, sizeof req - 1 - (size_t)got)) > 0) {
            got += n;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[got > 0 ? got : 0] = '\0';
        pthread_mutex_lock(&s->mu);
        s->gets++;
        snprintf(head, sizeof head, "If-None-Match: %s\r\n", s->etag);
        if (strstr(req, head)) {
            s->not_modified++;
            n = snprintf(out, sizeof out,
                         "HTTP/1.1 304 Not Modified\r\nETag: %s\r\n"
                         "Connection: close\r\n\r\n",
                         s->etag);
        } else {
            n = snprintf(out, sizeof out,
                         "HTTP/1.1 200 OK\r\nETag: %s\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         s->etag, strlen(s->body), s->body);
        }
        pthread_mutex_unlock(&s->mu);
        if (write(c, out, (size_t)n) != n)
            fprintf(stderr, "snap_server: short write\n");
        close(c);
    }
    return NULL;
}

static void snap_server_start(struct snap_server *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;

    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, snap_server_main, s), 0);
}

static void snap_server_set(struct snap_server *s, const char *body, const char *etag)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->body, sizeof s->body, "%s", body);
    snprintf(s->etag, sizeof s->etag, "%s", etag);
    pthread_mutex_unlock(&s->mu);
}

static void snap_server_stop(struct snap_server *s)
{
    shutdown(s->fd, SHUT_RDWR); /* wakes accept() */
    close(s->fd);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
}

static void test_url_source_and_conditional_reload(void **state)
{
    struct snap_server srv;
    char url[64], err[256];
    (void)state;

    snap_server_start(&srv);
    snap_server_set(&srv, "{\"member_id\":\"A\",\"first_name\":\"Old\"}\n", "\"v1\"");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/members.jsonl", srv.port);
    rte_member_dir *d = rte_member_dir_new(url, err, sizeof(err));
    assert_non_null(d);
    rte_member_snapshot *s1 = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(s1), 1);
    assert_string_equal(rte_member_snapshot_find(s1, "A")->first_name, "Old");

    /* unchanged: a conditional GET answered 304, same snapshot */
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), 0);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.not_modified, 1);
    pthread_mutex_unlock(&srv.mu);

    /* changed: new ETag, new body, new snapshot; the old reader keeps its data */
    snap_server_set(&srv, "{\"member_id\":\"A\",\"first_name\":\"New\"}\n{\"member_id\":\"B\"}\n",
                    "\"v2\"");
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), 1);
    rte_member_snapshot *s2 = rte_member_dir_acquire(d);
    assert_int_equal(rte_member_snapshot_count(s2), 2);
    assert_string_equal(rte_member_snapshot_find(s2, "A")->first_name, "New");
    assert_string_equal(rte_member_snapshot_find(s1, "A")->first_name, "Old");
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), 0);

    /* a broken snapshot behind the URL fails the reload and keeps the current one */
    snap_server_set(&srv, "{broken\n", "\"v3\"");
    assert_int_equal(rte_member_dir_reload_if_changed(d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 1"));
    rte_member_snapshot *s3 = rte_member_dir_acquire(d);
    assert_ptr_equal(s3, s2);

    rte_member_snapshot_release(s1);
    rte_member_snapshot_release(s2);
    rte_member_snapshot_release(s3);
    rte_member_dir_free(d);
    snap_server_stop(&srv);
}

/* MemberQuery attributes land in their columns; absent ones read as absent */
static void test_attribute_columns(void **state)
{
    char path[512], err[256];
    (void)state;
    write_tmp(
        path, sizeof(path),
        "{\"member_id\":\"A\",\"has_hsa\":true,\"individual_deductible\":3000.5,"
        "\"coverage_end\":\"2026-03-01\",\"city\":\"Oakland\",\"care_gaps\":[\"X\",\"Y\"],"
        "\"feature_options\":{\"max_visits_per_year\":12,\"unknown_option\":[1]},"
        "\"events\":[[\"2026-01-02T00:00:00Z\",\"domain.rte.v1.ELIGIBILITY_ERROR\",\"rte\"]]}\n"
        "{\"member_id\":\"B\",\"care_gaps\":[\"Y\"],\"metal_tier\":null}\n");
    rte_member_dir *d = rte_member_dir_new(path, err, sizeof(err));
    if (!d)
        fail_msg("%s", err);
    rte_member_snapshot *s = rte_member_dir_acquire(d);
    const rte_member_column *hsa = rte_member_snapshot_column(s, "has_hsa");
    const rte_member_column *ded = rte_member_snapshot_column(s, "individual_deductible");
    const rte_member_column *end = rte_member_snapshot_column(s, "coverage_end");
    const rte_member_column *city = rte_member_snapshot_column(s, "city");
    const rte_member_column *gaps = rte_member_snapshot_column(s, "care_gaps");
    const rte_member_column *visits =
        rte_member_snapshot_column(s, "feature_options.max_visits_per_year");
    assert_null(rte_member_snapshot_column(s, "no_such_attribute"));
    assert_int_equal(hsa->bits[0] & 3, 1);
    assert_int_equal(ded->num[0], 300050);
    assert_int_equal(ded->num[1], RTE_ATTR_NUM_ABSENT);
    assert_int_equal(end->time[0], 1772323200000LL);
    assert_true(end->time[1] == RTE_ATTR_TIME_ABSENT);
    assert_string_equal(rte_member_snapshot_value(s, city->code[0]), "Oakland");
    assert_int_equal(city->code[1], 0);
    assert_int_equal(gaps->nset, 2);
    assert_int_equal(gaps->set[0], 3);
    assert_int_equal(gaps->set[1], 2);
    assert_int_equal(visits->num[0], 1200);
    const rte_member_event *ev;
    assert_int_equal(rte_member_snapshot_events(s, 0, &ev), 1);
    assert_int_equal(ev[0].at_s, 1767312000u);
    assert_int_equal(ev[0].category, 13);
    assert_string_equal(rte_member_snapshot_value(s, ev[0].source), "rte");
    assert_int_equal(rte_member_snapshot_events(s, 1, &ev), 0);
    const uint32_t *ord = rte_member_snapshot_id_order(s);
    assert_int_equal(ord[0], 0);
    assert_int_equal(ord[1], 1);
    rte_member_snapshot_release(s);
    rte_member_dir_free(d);
    unlink(path);

    expect_load_error("{\"member_id\":\"A\",\"individual_deductible\":\"x\"}\n",
                      "line 1: field 'individual_deductible': expected a number");
    expect_load_error("{\"member_id\":\"A\",\"has_hsa\":1}\n",
                      "field 'has_hsa': expected true or false");
    expect_load_error("{\"member_id\":\"A\",\"coverage_end\":\"2026-02-30\"}\n",
                      "field 'coverage_end'");
    expect_load_error("{\"member_id\":\"A\",\"events\":[[\"2026-01-01T00:00:00Z\"]]}\n",
                      "field 'events': an event is [time, type, source, feature]");
    expect_load_error("{\"member_id\":\"A\",\"care_gaps\":[\"\"]}\n",
                      "field 'care_gaps': expected non-empty strings");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_fields),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_input_policy),
        cmocka_unit_test(test_feature_flags),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_member_gen_roundtrip),
        cmocka_unit_test(test_url_source_and_conditional_reload),
        cmocka_unit_test(test_attribute_columns),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
