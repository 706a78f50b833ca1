/*
 * test_redis.c - blocking, pipelined and non-blocking Redis paths against a
 * real redis-server started for the test group on a free port, including a
 * restart of that server (reconnect) and a stopped server (clear errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rte/redis.h"
#include "testutil.h"

static pid_t pid;
static char port_s[16], url[64];

static int launch(void)
{
    pid = tu_redis_start((int)strtol(port_s, NULL, 10));
    return pid > 0 ? 0 : -1;
}

static void halt(void)
{
    tu_redis_stop(pid);
}

static int setup(void **state)
{
    (void)state;
    snprintf(port_s, sizeof port_s, "%d", tu_free_port());
    snprintf(url, sizeof url, "redis://127.0.0.1:%s", port_s);
    return launch();
}

static int teardown(void **state)
{
    (void)state;
    halt();
    return 0;
}

static void test_url_errors(void **state)
{
    (void)state;
    char err[256];
    assert_null(rte_redis_new("http://x", 100, err, sizeof err));
    assert_non_null(strstr(err, "redis://"));
    assert_null(rte_redis_new("redis://h:99999", 100, err, sizeof err));
    assert_non_null(strstr(err, "port"));
}

static void test_cmd_and_error_reply(void **state)
{
    (void)state;
    char err[256];
    rte_redis *r = rte_redis_new(url, 1000, err, sizeof err);
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "SET %s %b", "k1", "v\0x", (size_t)3);
    assert_non_null(rep);
    freeReplyObject(rep);
    rep = rte_redis_cmd(r, err, sizeof err, "GET k1");
    assert_int_equal(rep->len, 3);
    assert_memory_equal(rep->str, "v\0x", 3);
    freeReplyObject(rep);
    assert_null(rte_redis_cmd(r, err, sizeof err, "INCR k1"));
    assert_non_null(strstr(err, "not an integer"));
    rte_redis_free(r);
}

static void test_pipeline(void **state)
{
    (void)state;
    char err[256];
    rte_redis *r = rte_redis_new(url, 1000, err, sizeof err);
    const char *a0[] = {"DEL", "ctr"}, *a1[] = {"INCR", "ctr"}, *a2[] = {"INCRBY", "ctr", "41"};
    rte_redis_argv cmds[] = {{2, a0, NULL}, {2, a1, NULL}, {3, a2, NULL}};
    redisReply *out[3];
    assert_int_equal(rte_redis_pipeline(r, 3, cmds, out, err, sizeof err), 0);
    assert_int_equal(out[1]->integer, 1);
    assert_int_equal(out[2]->integer, 42);
    for (int i = 0; i < 3; i++)
        freeReplyObject(out[i]);
    rte_redis_free(r);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    long long value;
    char err[128];
};

static void on_reply(redisReply *reply, const char *err, void *arg)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->value = reply ? reply->integer : -1;
    snprintf(w->err, sizeof w->err, "%s", err ? err : "");
    w->done++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_done(struct waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void test_async(void **state)
{
    (void)state;
    char err[256];
    rte_redis_async *a = rte_redis_async_new(url, 1000, err, sizeof err);
    assert_non_null(a);
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ""};
    const char *argv[] = {"INCRBY", "actr", "5"};
    /* the first commands may arrive while still connecting: they are held, not failed */
    for (int i = 0; i < 10; i++)
        assert_int_equal(rte_redis_async_cmd(a, on_reply, &w, 3, argv, NULL), 0);
    wait_done(&w, 10);
    assert_int_equal(w.value, 50);
    assert_string_equal(w.err, "");
    const char *bad[] = {"NOSUCHCOMMAND"};
    assert_int_equal(rte_redis_async_cmd(a, on_reply, &w, 1, bad, NULL), 0);
    wait_done(&w, 11);
    assert_non_null(strstr(w.err, "unknown command"));
    rte_redis_async_free(a);
}

static void test_reconnect_after_restart(void **state)
{
    (void)state;
    char err[256];
    rte_redis *r = rte_redis_new(url, 500, err, sizeof err);
    assert_int_equal(rte_redis_ping(r), 0);
    halt();
    assert_int_equal(rte_redis_ping(r), -1);
    redisReply *rep = rte_redis_cmd(r, err, sizeof err, "PING");
    assert_null(rep);
    assert_non_null(strstr(err, "redis"));
    assert_int_equal(launch(), 0);
    int ok = -1;
    for (int i = 0; i < 100 && ok != 0; i++) { /* backoff is at most 5 s */
        ok = rte_redis_ping(r);
        if (ok != 0)
            usleep(100000);
    }
    assert_int_equal(ok, 0);
    rte_redis_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_cmd_and_error_reply),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_async),
        cmocka_unit_test(test_reconnect_after_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
