/*
 * test_http_server.c - rte_http_server loops, deferred responses from
 * another thread, and where h2o's per-thread socket buffers go.
 *
 * h2o 2.2 recycles socket input buffers through a __thread free list picked
 * when the socket is created. A socket created on this (the start-up)
 * thread but read on a loop thread frees its buffers into this thread's
 * list; with two loops that list is mutated by two threads at once and the
 * heap is corrupted (the gateway crashed under load that way). The server
 * must create every socket on its loop thread, so after real traffic with
 * deferred responses through two loops, this thread's list stays empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <h2o.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rte/http_client.h"
#include "rte/http_server.h"

#define NREQ 300
#define NCLIENTS 4

/* a handoff of deferred requests to the responder thread */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rte_http_req *q[NREQ * 2];
    int n;
    int stop;
} H = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void h_deferred(rte_http_req *req, void *arg)
{
    (void)arg;
    rte_http_defer(req);
    pthread_mutex_lock(&H.mu);
    H.q[H.n++] = req;
    pthread_cond_signal(&H.cv);
    pthread_mutex_unlock(&H.mu);
}

static void *responder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&H.mu);
    for (;;) {
        while (H.n == 0 && !H.stop)
            pthread_cond_wait(&H.cv, &H.mu);
        if (H.n == 0)
            break;
        rte_http_req *req = H.q[--H.n];
        pthread_mutex_unlock(&H.mu);
        char body[64];
        int n = snprintf(body, sizeof body, "{\"tail\":\"%s\"}", rte_http_req_tail(req));
        rte_http_respond(req, 200, "application/json", body, (size_t)n);
        pthread_mutex_lock(&H.mu);
    }
    pthread_mutex_unlock(&H.mu);
    return NULL;
}

static void h_inline(rte_http_req *req, void *arg)
{
    (void)arg;
    rte_http_respond(req, 200, "text/plain", "ok", 2);
}

static const rte_http_route routes[] = {
    {.method = "GET", .path = "/d/*", .handler = h_deferred, .name = "deferred"},
    {.method = "GET", .path = "/i", .handler = h_inline, .name = "inline"},
    {0},
};

static void *run_loop(void *arg)
{
    rte_http_server_run(arg);
    return NULL;
}

struct client_arg {
    int port;
    int first;
    int ok;
};

static void *client(void *arg)
{
    struct client_arg *c = arg;
    char err[256], url[128], want[64];
    rte_http_client *hc = rte_http_client_new(NULL, err, sizeof err);
    if (hc == NULL)
        return NULL;
    for (int i = 0; i < NREQ / NCLIENTS; i++) {
        int id = c->first + i;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/d/m%d", c->port, id);
        rte_http_request rq = {.method = "GET", .url = url, .timeout_ms = 5000};
        rte_http_response rs;
        rte_http_do(hc, &rq, &rs);
        snprintf(want, sizeof want, "{\"tail\":\"m%d\"}", id);
        if (rs.status == 200 && rs.body != NULL && strcmp(rs.body, want) == 0)
            c->ok++;
        rte_http_response_free(&rs);
    }
    rte_http_client_free(hc);
    return NULL;
}

/* two loops share one port; deferred answers come from a third thread */
static void test_two_loops_deferred_keep_buffers_on_loop_threads(void **state)
{
    (void)state;
    char err[256];
    rte_http_server *a = rte_http_server_new(err, sizeof err);
    rte_http_server *b = rte_http_server_new(err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    rte_http_server_set_reuseport(a, 1);
    rte_http_server_set_reuseport(b, 1);
    int port = rte_http_server_listen(a, "127.0.0.1:0", routes, err, sizeof err);
    assert_true(port > 0);
    char same[64];
    snprintf(same, sizeof same, "127.0.0.1:%d", port);
    assert_int_equal(rte_http_server_listen(b, same, routes, err, sizeof err), port);

    pthread_t ta, tb, tr, tc[NCLIENTS];
    H.stop = 0;
    pthread_create(&tr, NULL, responder, NULL);
    pthread_create(&ta, NULL, run_loop, a);
    pthread_create(&tb, NULL, run_loop, b);

    struct client_arg ca[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        ca[i] = (struct client_arg){.port = port, .first = i * (NREQ / NCLIENTS), .ok = 0};
        pthread_create(&tc[i], NULL, client, &ca[i]);
    }
    int ok = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(tc[i], NULL);
        ok += ca[i].ok;
    }
    assert_int_equal(ok, NREQ);

    /* a listener can only be added before run */
    assert_int_equal(rte_http_server_listen(a, "127.0.0.1:0", routes, err, sizeof err), -1);
    assert_non_null(strstr(err, "before rte_http_server_run"));

    rte_http_server_stop(a, 2000);
    rte_http_server_stop(b, 2000);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_mutex_lock(&H.mu);
    H.stop = 1;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
    pthread_join(tr, NULL);
    rte_http_server_free(a);
    rte_http_server_free(b);

    /* this thread made the servers but ran no loop: no socket buffer may land here */
    assert_int_equal(h2o_socket_buffer_prototype.allocator.cnt, 0);
    assert_null(h2o_socket_buffer_prototype.allocator._link);
}

/* a server that never ran frees its bound ports */
static void test_free_without_run_releases_the_port(void **state)
{
    (void)state;
    char err[256], addr[64];
    rte_http_server *s = rte_http_server_new(err, sizeof err);
    int port = rte_http_server_listen(s, "127.0.0.1:0", routes, err, sizeof err);
    assert_true(port > 0);
    rte_http_server_free(s);
    /* without SO_REUSEPORT, binding the same port again only works if it was closed */
    s = rte_http_server_new(err, sizeof err);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(rte_http_server_listen(s, addr, routes, err, sizeof err), port);
    rte_http_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_loops_deferred_keep_buffers_on_loop_threads),
        cmocka_unit_test(test_free_without_run_releases_the_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
