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
 *
 * The other tests speak HTTP/1.0 over a raw socket, so they see the response
 * exactly as sent: response headers from a handler that answers at once and
 * from one that defers to another thread (each sent once, name lower-case),
 * error bodies as cJSON would print them, and rte_http_requests_total by
 * route and status, including more statuses than the per-route cache holds.
 *
 * rte_http_json_content_type is pure and tested on its own: which
 * Content-Type values are JSON (RFC 9110 8.3 syntax, RFC 6839 +json,
 * RFC 8259's UTF-8).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rte/http_client.h"
#include "rte/http_server.h"
#include "rte/metrics.h"

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

/* --- one server on its own loop thread, and a raw HTTP/1.0 client --- */

struct srv {
    rte_http_server *s;
    pthread_t loop;
    int port;
};

static void srv_start(struct srv *v, const rte_http_route *r)
{
    char err[256];
    v->s = rte_http_server_new(err, sizeof err);
    assert_non_null(v->s);
    v->port = rte_http_server_listen(v->s, "127.0.0.1:0", r, err, sizeof err);
    assert_true(v->port > 0);
    pthread_create(&v->loop, NULL, run_loop, v->s);
}

static void srv_stop(struct srv *v)
{
    rte_http_server_stop(v->s, 2000);
    pthread_join(v->loop, NULL);
    rte_http_server_free(v->s);
}

/*
 * send "METHOD path HTTP/1.0" with extra header lines (each ending CRLF, or
 * "") and read the whole response (HTTP/1.0: the server closes) into buf
 */
static void raw_get(int port, const char *method, const char *path, const char *extra, char *buf,
                    size_t len)
{
    char req[512];
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t got = 0;
    ssize_t k;

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: t\r\n%s\r\n", method, path, extra);
    assert_int_equal(write(fd, req, (size_t)n), n);
    while (got + 1 < len && (k = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fd);
}

/* the status code of a raw response */
static int raw_status(const char *resp)
{
    assert_true(strncmp(resp, "HTTP/1.", 7) == 0);
    return (int)strtol(resp + 9, NULL, 10);
}

/* how many times the exact line "line" appears in the response's header section */
static int header_lines(const char *resp, const char *line)
{
    const char *end = strstr(resp, "\r\n\r\n");
    char want[256];
    int n = 0;

    assert_non_null(end);
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    for (const char *p = resp; (p = strstr(p, want)) != NULL && p < end; p += 2)
        n++;
    return n;
}

/* the body of a raw response */
static const char *raw_body(const char *resp)
{
    const char *end = strstr(resp, "\r\n\r\n");
    assert_non_null(end);
    return end + 4;
}

/* --- response headers --- */

static void h_headers(rte_http_req *req, void *arg)
{
    (void)arg;
    rte_http_add_header(req, "X-Custom-Name", "Value With Spaces; q=1");
    rte_http_add_header(req, "cache-control", "no-store");
    rte_http_add_header(req, "X-Dup", "first");
    rte_http_add_header(req, "X-DUP", "second");
    rte_http_respond(req, 200, "text/plain", "ok", 2);
}

static void *deferred_answer(void *arg)
{
    rte_http_req *req = arg;
    rte_http_add_header(req, "X-After", "late");
    rte_http_add_header(req, "Retry-After", "1");
    if (strcmp(rte_http_req_tail(req), "error") == 0)
        rte_http_error(req, 503, "busy: \"%s\"\n\ttry\\later", rte_http_req_id(req));
    else
        rte_http_respond(req, 200, "text/plain", "later", 5);
    return NULL;
}

static pthread_t answerers[8];
static atomic_int nanswerers; /* set on the loop thread, read here once the answers came */

/* adds a header, defers, and answers from a new thread that adds two more */
static void h_headers_deferred(rte_http_req *req, void *arg)
{
    (void)arg;
    int i = atomic_load(&nanswerers);
    rte_http_add_header(req, "X-Before", "early");
    if (i == 8) { /* no cmocka assert here: this is the loop thread */
        rte_http_error(req, 500, "test: too many deferred requests");
        return;
    }
    rte_http_defer(req);
    pthread_create(&answerers[i], NULL, deferred_answer, req);
    atomic_store(&nanswerers, i + 1);
}

static void h_error(rte_http_req *req, void *arg)
{
    (void)arg;
    rte_http_add_header(req, "Retry-After", "5");
    rte_http_error(req, 503, "too many \"callbacks\" in\tprogress");
}

static const rte_http_route header_routes[] = {
    {.method = "GET", .path = "/h", .handler = h_headers, .name = "t_headers"},
    {.method = "GET", .path = "/hd/*", .handler = h_headers_deferred, .name = "t_headers_d"},
    {.method = "GET", .path = "/err", .handler = h_error, .name = "t_error"},
    {0},
};

/* the error body cJSON prints for this status, message and request id */
static char *cjson_error(int status, const char *msg, const char *id)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(doc, "error");
    cJSON_AddNumberToObject(e, "status", status);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(doc, "request_id", id);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return text;
}

/* a handler that answers at once: each added header once, lower-case, value exact */
static void test_headers_inline(void **state)
{
    (void)state;
    struct srv v;
    char resp[4096];
    srv_start(&v, header_routes);

    raw_get(v.port, "GET", "/h", "X-Request-Id: hdr-test-1\r\n", resp, sizeof resp);
    assert_int_equal(raw_status(resp), 200);
    assert_int_equal(header_lines(resp, "x-custom-name: Value With Spaces; q=1"), 1);
    assert_int_equal(header_lines(resp, "cache-control: no-store"), 1);
    assert_int_equal(header_lines(resp, "x-dup: first"), 1);
    assert_int_equal(header_lines(resp, "x-dup: second"), 1);
    assert_int_equal(header_lines(resp, "content-type: text/plain"), 1);
    assert_int_equal(header_lines(resp, "x-request-id: hdr-test-1"), 1);
    assert_null(strstr(resp, "X-Custom-Name"));
    assert_null(strstr(resp, "X-Dup"));
    assert_null(strstr(resp, "X-DUP"));
    /* same name twice: both, in the order added */
    assert_true(strstr(resp, "x-dup: first") < strstr(resp, "x-dup: second"));
    assert_string_equal(raw_body(resp), "ok");
    /* a known length, not chunked */
    assert_non_null(strcasestr(resp, "\r\ncontent-length: 2\r\n"));
    assert_null(strcasestr(resp, "transfer-encoding"));

    /* HEAD through the GET route: same headers, no body */
    raw_get(v.port, "HEAD", "/h", "", resp, sizeof resp);
    assert_int_equal(raw_status(resp), 200);
    assert_int_equal(header_lines(resp, "x-dup: second"), 1);
    assert_int_equal(header_lines(resp, "cache-control: no-store"), 1);
    assert_string_equal(raw_body(resp), "");

    /* an error after a header, on the loop thread: header and cJSON's body */
    raw_get(v.port, "GET", "/err", "X-Request-Id: err-1\r\n", resp, sizeof resp);
    assert_int_equal(raw_status(resp), 503);
    assert_int_equal(header_lines(resp, "retry-after: 5"), 1);
    assert_int_equal(header_lines(resp, "content-type: application/json"), 1);
    char *want = cjson_error(503, "too many \"callbacks\" in\tprogress", "err-1");
    assert_string_equal(raw_body(resp), want);
    free(want);
    srv_stop(&v);
}

/* a handler that adds a header, defers, and answers from another thread */
static void test_headers_deferred(void **state)
{
    (void)state;
    struct srv v;
    char resp[4096];
    atomic_store(&nanswerers, 0);
    srv_start(&v, header_routes);

    for (int i = 0; i < 3; i++) {
        raw_get(v.port, "GET", "/hd/ok", "", resp, sizeof resp);
        assert_int_equal(raw_status(resp), 200);
        assert_int_equal(header_lines(resp, "x-before: early"), 1);
        assert_int_equal(header_lines(resp, "x-after: late"), 1);
        assert_int_equal(header_lines(resp, "retry-after: 1"), 1);
        assert_int_equal(header_lines(resp, "content-type: text/plain"), 1);
        assert_null(strstr(resp, "X-After"));
        assert_string_equal(raw_body(resp), "later");
        assert_non_null(strcasestr(resp, "\r\ncontent-length: 5\r\n"));
    }

    /* a deferred error: headers from both sides, and cJSON's escaping of the message */
    raw_get(v.port, "GET", "/hd/error", "X-Request-Id: deferred-err.7\r\n", resp, sizeof resp);
    assert_int_equal(raw_status(resp), 503);
    assert_int_equal(header_lines(resp, "x-before: early"), 1);
    assert_int_equal(header_lines(resp, "x-after: late"), 1);
    assert_int_equal(header_lines(resp, "x-request-id: deferred-err.7"), 1);
    char *want = cjson_error(503, "busy: \"deferred-err.7\"\n\ttry\\later", "deferred-err.7");
    assert_string_equal(raw_body(resp), want);
    free(want);

    for (int i = 0; i < atomic_load(&nanswerers); i++)
        pthread_join(answerers[i], NULL);
    srv_stop(&v);
}

/* --- repeated query parameters --- */

/* answers the values of every "state" parameter in order, '|'-joined, then the count */
static void h_states(rte_http_req *req, void *arg)
{
    (void)arg;
    char out[256] = "", v[32];
    size_t used = 0;
    int i = 0;
    for (; rte_http_req_query_at(req, "state", i, v, sizeof v, NULL, 0) >= 0; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s|", v);
    snprintf(out + used, sizeof out - used, "%d", i);
    rte_http_respond(req, 200, "text/plain", out, strlen(out));
}

static void test_query_at_walks_a_repeated_parameter(void **state)
{
    (void)state;
    static const rte_http_route routes[] = {{"GET", "/q", h_states, NULL, 0, "t_q"}, {0}};
    struct srv v;
    char resp[2048];
    srv_start(&v, routes);
    raw_get(v.port, "GET", "/q?state=A&x=1&state=B%20C&states=no&state=&state=D", "", resp,
            sizeof resp);
    assert_int_equal(raw_status(resp), 200);
    assert_string_equal(raw_body(resp), "A|B C||D|4");
    raw_get(v.port, "GET", "/q?x=state", "", resp, sizeof resp);
    assert_string_equal(raw_body(resp), "0");
    srv_stop(&v);
}

/* --- percent-decoding of query values and path tails (the input policy) --- */

/* answers "q=<len or rte_http_query_rc>:<hex of the decoded bytes>|t=<len or -2>:<hex>" */
static void h_decode(rte_http_req *req, void *arg)
{
    (void)arg;
    char q[16], t[16], out[200];
    int nq = rte_http_req_query(req, "q", q, sizeof q, NULL, 0);
    int nt = rte_http_req_tail_decoded(req, t, sizeof t);
    size_t o = (size_t)snprintf(out, sizeof out, "q=%d:", nq);
    for (int i = 0; i < nq; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "%02x", (unsigned char)q[i]);
    o += (size_t)snprintf(out + o, sizeof out - o, "|t=%d:", nt);
    for (int i = 0; i < nt; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "%02x", (unsigned char)t[i]);
    rte_http_respond(req, 200, "text/plain", out, o);
}

static const rte_http_route decode_routes[] = {
    {.method = "GET", .path = "/d/*", .handler = h_decode, .name = "t_decode"},
    {0},
};

/*
 * "%00" ended the C string a caller read ("62308%00x" was "62308"); now it
 * is CONTROL, a bad escape MALFORMED, an overflow TOO_LONG and a repeated
 * parameter REPEATED; a path tail that does not decode is
 * RTE_HTTP_MALFORMED. Paths decode %XX but not '+'.
 */
static void test_query_and_tail_decoding(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/d/a?q=b", "q=1:62|t=1:61"},
        {"/d/M%2D1?q=a+b%21", "q=4:61206221|t=3:4d2d31"},
        {"/d/a+b?q=", "q=0:|t=3:612b62"},
        {"/d/x?r=1", "q=-1:|t=1:78"},
        {"/d/x?q=62308%00x", "q=-5:|t=1:78"},
        {"/d/x%00?q=1", "q=1:31|t=-2:"},
        {"/d/x?q=%zz", "q=-2:|t=1:78"},
        {"/d/x%4?q=%4", "q=-2:|t=-2:"},
        {"/d/x?q=1&q=2", "q=-4:|t=1:78"},
        {"/d/x?q=1&qq=2&aq=3", "q=1:31|t=1:78"},
        {"/d/%01%ff?q=%C3%A9", "q=2:c3a9|t=2:01ff"}, /* decoded as is: ids are checked later */
        {"/d/0123456789abcdef?q=0123456789abcdef", "q=-3:|t=-2:"}, /* 16 bytes: no room */
    };
    struct srv v;
    char resp[2048];

    (void)state;
    srv_start(&v, decode_routes);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_get(v.port, "GET", cases[i].path, "", resp, sizeof resp);
        assert_int_equal(raw_status(resp), 200);
        if (strcmp(raw_body(resp), cases[i].want) != 0)
            fail_msg("%s: '%s', expected '%s'", cases[i].path, raw_body(resp), cases[i].want);
    }
    srv_stop(&v);
}

/* --- rte_http_requests_total --- */

static void h_status(rte_http_req *req, void *arg)
{
    (void)arg;
    char s[8];
    if (rte_http_req_query(req, "s", s, sizeof s, NULL, 0) <= 0) {
        rte_http_error(req, 400, "test: no status");
        return;
    }
    int status = (int)strtol(s, NULL, 10);
    if (status == 0)
        return; /* no answer: the server sends 500 */
    rte_http_respond(req, status, "text/plain", "x", 1);
}

static const rte_http_route metric_routes[] = {
    {.method = "GET", .path = "/mix", .handler = h_status, .name = "t_mix"},
    {.method = "GET", .path = "/many", .handler = h_status, .name = "t_many"},
    {.method = "POST", .path = "/post-only", .handler = h_inline, .name = "t_post"},
    {0},
};

/* the value of rte_http_requests_total{route,status}, 0 if the series does not exist */
static long requests_total(const char *route, int status)
{
    char want[160];
    size_t len;
    char *text = rte_metrics_render(&len);
    assert_non_null(text);
    snprintf(want, sizeof want, "\nrte_http_requests_total{route=\"%s\",status=\"%d\"} ", route,
             status);
    const char *p = strstr(text, want);
    long v = p != NULL ? strtol(p + strlen(want), NULL, 10) : 0;
    free(text);
    return v;
}

static void get_status(int port, const char *path, int want)
{
    char resp[2048];
    raw_get(port, "GET", path, "", resp, sizeof resp);
    assert_int_equal(raw_status(resp), want);
}

/* a mix of answers is counted under the right route and status labels */
static void test_request_counter_labels(void **state)
{
    (void)state;
    struct srv v;
    static const int many[] = {200, 201, 202, 204, 301, 400, 401, 403, 404, 409, 500, 503};
    int nmany = (int)(sizeof many / sizeof many[0]); /* more than the per-route cache */
    long unmatched404 = requests_total("unmatched", 404);
    long unmatched405 = requests_total("unmatched", 405);
    srv_start(&v, metric_routes);

    for (int i = 0; i < 3; i++)
        get_status(v.port, "/mix?s=200", 200);
    for (int i = 0; i < 2; i++)
        get_status(v.port, "/mix?s=404", 404);
    get_status(v.port, "/mix?s=500", 500);
    get_status(v.port, "/mix?s=0", 500); /* the handler sent nothing */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < nmany; i++) {
            char path[32];
            snprintf(path, sizeof path, "/many?s=%d", many[i]);
            get_status(v.port, path, many[i]);
        }
    get_status(v.port, "/no/such/route", 404);
    get_status(v.port, "/no/such/route", 404);
    get_status(v.port, "/post-only", 405);

    assert_int_equal(requests_total("t_mix", 200), 3);
    assert_int_equal(requests_total("t_mix", 404), 2);
    assert_int_equal(requests_total("t_mix", 500), 2);
    assert_int_equal(requests_total("t_mix", 201), 0);
    for (int i = 0; i < nmany; i++)
        assert_int_equal(requests_total("t_many", many[i]), 2);
    assert_int_equal(requests_total("unmatched", 404), unmatched404 + 2);
    assert_int_equal(requests_total("unmatched", 405), unmatched405 + 1);
    assert_int_equal(requests_total("t_post", 405), 0);
    srv_stop(&v);
}

/* --- query parameters and list headers --- */

/* answer "rc=<rc> v=[<value>] err=[<message>]" */
static void answer_rc(rte_http_req *req, int rc, const char *v, const char *err)
{
    char body[512];
    int n = snprintf(body, sizeof body, "rc=%d v=[%s] err=[%s]", rc, v, err);
    rte_http_respond(req, 200, "text/plain", body, (size_t)n);
}

/* parameter "v" into 8 bytes (at most 7 decoded) */
static void h_query(rte_http_req *req, void *arg)
{
    (void)arg;
    char v[8], err[256] = "";
    int rc = rte_http_req_query(req, "v", v, sizeof v, err, sizeof err);
    answer_rc(req, rc, v, rc == RTE_HTTP_QUERY_ABSENT ? "" : err);
}

static void h_query_only(rte_http_req *req, void *arg)
{
    static const char *const names[] = {"a", "b", NULL};
    char err[256] = "";
    int rc = rte_http_req_query_only(req, arg != NULL ? NULL : names, err, sizeof err);
    answer_rc(req, rc, "", err);
}

/* every X-L line joined, into 16 bytes */
static void answer_list(rte_http_req *req)
{
    char v[16];
    int rc = rte_http_req_header_list(req, "X-L", v, sizeof v);
    answer_rc(req, rc, rc >= 0 ? v : "", "");
}

static void h_list(rte_http_req *req, void *arg)
{
    (void)arg;
    answer_list(req);
}

static void *list_later(void *arg)
{
    answer_list(arg);
    return NULL;
}

/* reads the header on another thread, from the copies rte_http_defer made */
static void h_list_deferred(rte_http_req *req, void *arg)
{
    (void)arg;
    int i = atomic_load(&nanswerers);
    if (i == 8) {
        rte_http_error(req, 500, "test: too many deferred requests");
        return;
    }
    rte_http_defer(req);
    pthread_create(&answerers[i], NULL, list_later, req);
    atomic_store(&nanswerers, i + 1);
}

static const rte_http_route query_routes[] = {
    {.method = "GET", .path = "/q", .handler = h_query, .name = "t_q"},
    {.method = "GET", .path = "/qo", .handler = h_query_only, .name = "t_qo"},
    {.method = "GET", .path = "/qn", .handler = h_query_only, .arg = "none", .name = "t_qn"},
    {.method = "GET", .path = "/l", .handler = h_list, .name = "t_l"},
    {.method = "GET", .path = "/ld", .handler = h_list_deferred, .name = "t_ld"},
    {0},
};

/* GET target (with extra header lines), expecting body "rc=<rc> v=[<v>]..." and err holding want */
static void expect_rc(int port, const char *target, const char *extra, int rc, const char *v,
                      const char *want_err)
{
    char resp[4096], head[128];
    raw_get(port, "GET", target, extra, resp, sizeof resp);
    if (raw_status(resp) != 200)
        fail_msg("%s: status %d", target, raw_status(resp));
    snprintf(head, sizeof head, "rc=%d v=[%s] err=[", rc, v);
    const char *body = raw_body(resp);
    if (strncmp(body, head, strlen(head)) != 0)
        fail_msg("%s: got '%s', want '%s...'", target, body, head);
    if (want_err != NULL && strstr(body + strlen(head), want_err) == NULL)
        fail_msg("%s: error in '%s' lacks '%s'", target, body, want_err);
}

/*
 * A parameter that cannot be read is never "absent": malformed escapes,
 * characters that must be encoded, control characters, values too long for
 * the caller's buffer and repeated names each have their own code and a
 * message naming the parameter.
 */
static void test_query_parameters_strict(void **state)
{
    (void)state;
    struct srv v;
    srv_start(&v, query_routes);

    expect_rc(v.port, "/q?v=abc", "", 3, "abc", "");
    expect_rc(v.port, "/q", "", RTE_HTTP_QUERY_ABSENT, "", "");
    expect_rc(v.port, "/q?w=1&vv=2", "", RTE_HTTP_QUERY_ABSENT, "", "");
    expect_rc(v.port, "/q?v=", "", 0, "", "");
    expect_rc(v.port, "/q?v", "", 0, "", "");
    expect_rc(v.port, "/q?v=%41b+c", "", 4, "Ab c", "");
    expect_rc(v.port, "/q?v=a=b", "", 3, "a=b", "");
    expect_rc(v.port, "/q?&&vv=1&v=ok&", "", 2, "ok", "");
    expect_rc(v.port, "/q?v=%e2%82%AC", "", 3, "\xe2\x82\xac", "");
    /* another parameter's trouble is not v's */
    expect_rc(v.port, "/q?x=%ZZ&v=ok", "", 2, "ok", "");
    /* malformed escapes, a trailing '%' included */
    expect_rc(v.port, "/q?v=%ZZ", "", RTE_HTTP_QUERY_MALFORMED, "",
              "query parameter 'v': '%ZZ' is not a percent-escape");
    expect_rc(v.port, "/q?v=ab%", "", RTE_HTTP_QUERY_MALFORMED, "", "'v': '%' is not a");
    expect_rc(v.port, "/q?v=ab%4", "", RTE_HTTP_QUERY_MALFORMED, "", "'%4' is not a");
    expect_rc(v.port, "/q?v=%4&w=1", "", RTE_HTTP_QUERY_MALFORMED, "", "'%4' is not a");
    /* characters RFC 3986 wants encoded */
    expect_rc(v.port, "/q?v=a|b", "", RTE_HTTP_QUERY_MALFORMED, "",
              "query parameter 'v': the character '|' must be percent-encoded");
    expect_rc(v.port, "/q?v=a\x80", "", RTE_HTTP_QUERY_MALFORMED, "", "the byte 0x80");
    /* control characters, NUL first */
    expect_rc(v.port, "/q?v=%00", "", RTE_HTTP_QUERY_CONTROL, "",
              "query parameter 'v': '%00' decodes to a control character");
    expect_rc(v.port, "/q?v=a%0Ab", "", RTE_HTTP_QUERY_CONTROL, "", "'%0A'");
    expect_rc(v.port, "/q?v=%7f", "", RTE_HTTP_QUERY_CONTROL, "", "'%7f'");
    /* 7 decoded bytes fit the 8-byte buffer, 8 do not */
    expect_rc(v.port, "/q?v=1234567", "", 7, "1234567", "");
    expect_rc(v.port, "/q?v=%41%41%41%41%41%41%41", "", 7, "AAAAAAA", "");
    expect_rc(v.port, "/q?v=12345678", "", RTE_HTTP_QUERY_TOO_LONG, "",
              "query parameter 'v': longer than 7 bytes");
    expect_rc(v.port, "/q?v=123456789012345678901234567890", "", RTE_HTTP_QUERY_TOO_LONG, "",
              "longer than 7 bytes");
    /* twice, even with the same value, even spelt differently */
    expect_rc(v.port, "/q?v=1&v=1", "", RTE_HTTP_QUERY_REPEATED, "",
              "query parameter 'v': given more than once");
    expect_rc(v.port, "/q?v=1&%76=2", "", RTE_HTTP_QUERY_REPEATED, "", "more than once");
    expect_rc(v.port, "/q?v&v=", "", RTE_HTTP_QUERY_REPEATED, "", "more than once");
    expect_rc(v.port, "/q?%76=x", "", 1, "x", "");

    /* only the names a route reads */
    expect_rc(v.port, "/qo", "", 0, "", "");
    expect_rc(v.port, "/qo?a=1&b=%ZZ&%61=", "", 0, "", "");
    expect_rc(v.port, "/qo?a=1&c=2", "", RTE_HTTP_QUERY_UNKNOWN, "",
              "query parameter 'c': not one this request reads (it reads a, b)");
    expect_rc(v.port, "/qo?b%5Fx=1", "", RTE_HTTP_QUERY_UNKNOWN, "", "'b_x'");
    expect_rc(v.port, "/qo?a%ZZ=1", "", RTE_HTTP_QUERY_MALFORMED, "",
              "query parameter name 'a%ZZ': '%ZZ' is not a percent-escape");
    expect_rc(v.port, "/qo?a%00=1", "", RTE_HTTP_QUERY_CONTROL, "", "control character");
    expect_rc(v.port, "/qn?x=1", "", RTE_HTTP_QUERY_UNKNOWN, "", "(it reads none)");
    expect_rc(v.port, "/qn", "", 0, "", "");
    srv_stop(&v);
}

/* every line of a list header, joined as RFC 9110 5.3 allows; too long is not absent */
static void test_header_list_joins_lines(void **state)
{
    (void)state;
    struct srv v;
    atomic_store(&nanswerers, 0);
    srv_start(&v, query_routes);

    for (int d = 0; d < 2; d++) {
        const char *path = d ? "/ld" : "/l";
        expect_rc(v.port, path, "", RTE_HTTP_HEADER_ABSENT, "", "");
        expect_rc(v.port, path, "X-L: a\r\n", 1, "a", "");
        expect_rc(v.port, path, "X-L: a\r\nX-Other: z\r\nx-l: b, c\r\n", 7, "a, b, c", "");
        expect_rc(v.port, path, "X-L:\r\nX-L: b\r\n", 1, "b", "");
        expect_rc(v.port, path, "X-L: 0123456789abcde\r\n", 15, "0123456789abcde", "");
        expect_rc(v.port, path, "X-L: 0123456789abcdef\r\n", RTE_HTTP_HEADER_TOO_LONG, "", "");
        expect_rc(v.port, path, "X-L: 0123456\r\nX-L: 789abcdef\r\n", RTE_HTTP_HEADER_TOO_LONG, "",
                  "");
    }
    for (int i = 0; i < atomic_load(&nanswerers); i++)
        pthread_join(answerers[i], NULL);
    srv_stop(&v);
}

/* --- the per-turn hook --- */

static struct {
    int pending;       /* loop thread: answered since the hook last ran */
    int flushed;       /* what the hook collected */
    int turns;         /* hook calls */
    int foreign;       /* hook calls on another thread than the handlers' */
    pthread_t handler; /* the thread the handlers ran on */
} turn_state;

static void h_turn(rte_http_req *req, void *arg)
{
    (void)arg;
    turn_state.handler = pthread_self();
    turn_state.pending++;
    rte_http_respond(req, 200, "text/plain", "ok", 2);
}

static void on_turn(void *arg)
{
    assert_ptr_equal(arg, &turn_state);
    turn_state.turns++;
    if (turn_state.pending > 0 && !pthread_equal(turn_state.handler, pthread_self()))
        turn_state.foreign++;
    turn_state.flushed += turn_state.pending;
    turn_state.pending = 0;
}

static const rte_http_route turn_routes[] = {
    {"GET", "/t", h_turn, NULL},
    {NULL, NULL, NULL, NULL},
};

static void test_on_turn_runs_after_each_turn_on_the_loop(void **state)
{
    char err[256], resp[4096];
    struct srv v;

    (void)state;
    memset(&turn_state, 0, sizeof turn_state);
    v.s = rte_http_server_new(err, sizeof err);
    assert_non_null(v.s);
    rte_http_server_on_turn(v.s, on_turn, &turn_state);
    v.port = rte_http_server_listen(v.s, "127.0.0.1:0", turn_routes, err, sizeof err);
    assert_true(v.port > 0);
    pthread_create(&v.loop, NULL, run_loop, v.s);
    for (int i = 0; i < 20; i++) {
        raw_get(v.port, "GET", "/t", "", resp, sizeof resp);
        assert_int_equal(raw_status(resp), 200);
    }
    srv_stop(&v);
    /* every answer was collected by a hook call on the handlers' thread, none left over */
    assert_int_equal(turn_state.flushed, 20);
    assert_int_equal(turn_state.pending, 0);
    assert_int_equal(turn_state.foreign, 0);
    assert_true(turn_state.turns >= 20);
}

/* the sum of every rte_http_connections series */
static long open_connections(void)
{
    static const char name[] = "\nrte_http_connections{";
    size_t len;
    long sum = 0;
    char *text = rte_metrics_render(&len);
    assert_non_null(text);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p++)
        sum += strtol(strchr(p, '}') + 1, NULL, 10);
    free(text);
    return sum;
}

static long wait_connections(long want)
{
    long got = -1;
    for (int i = 0; i < 200 && (got = open_connections()) != want; i++)
        usleep(10000);
    return got;
}

static void test_connections_gauge_follows_open_connections(void **state)
{
    struct srv v;
    int fds[3];

    (void)state;
    srv_start(&v, turn_routes);
    assert_int_equal(wait_connections(0), 0);
    for (int i = 0; i < 3; i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)v.port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sin, sizeof sin), 0);
    }
    assert_int_equal(wait_connections(3), 3);
    close(fds[0]);
    assert_int_equal(wait_connections(2), 2);
    close(fds[1]);
    close(fds[2]);
    assert_int_equal(wait_connections(0), 0);
    srv_stop(&v);
}

/* --- steering by CPU: which of two loops sharing a port takes a connection --- */

static void h_which(rte_http_req *req, void *arg)
{
    rte_http_respond(req, 200, "text/plain", arg, 1);
}

static const rte_http_route which0[] = {{.path = "/which", .handler = h_which, .arg = "0"}, {0}};
static const rte_http_route which1[] = {{.path = "/which", .handler = h_which, .arg = "1"}, {0}};

/* the loop ('0' or '1') that served each of n new connections, if all agree; else 'x' */
static char served_by(int port, int n)
{
    char buf[1024], seen = 0;
    for (int i = 0; i < n; i++) {
        raw_get(port, "GET", "/which", "", buf, sizeof buf);
        assert_int_equal(raw_status(buf), 200);
        char c = raw_body(buf)[0];
        if (seen != 0 && c != seen)
            return 'x';
        seen = c;
    }
    return seen;
}

/*
 * The program maps the CPU a connection arrives on through the table: this
 * thread is kept on one CPU, so its connections arrive there (loopback), and
 * with that CPU at index k of the table loop k mod 2 takes every one of them.
 * Table entries other than this CPU are never-seen CPU numbers, so one CPU
 * is enough to see both loops chosen. Without the program the kernel's hash
 * spreads 24 connections over both loops.
 */
static void test_steer_by_cpu_sends_a_cpu_to_its_loop(void **state)
{
    struct srv a, b;
    char err[256];
    cpu_set_t was, one;
    int cpu;

    (void)state;
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof was, &was), 0);
    cpu = sched_getcpu();
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);

    a.s = rte_http_server_new(err, sizeof err);
    b.s = rte_http_server_new(err, sizeof err);
    rte_http_server_set_reuseport(a.s, 1);
    rte_http_server_set_reuseport(b.s, 1);
    a.port = rte_http_server_listen(a.s, "127.0.0.1:0", which0, err, sizeof err);
    assert_true(a.port > 0);
    snprintf(err, sizeof err, "127.0.0.1:%d", a.port);
    b.port = rte_http_server_listen(b.s, err, which1, err, sizeof err);
    assert_int_equal(b.port, a.port);
    pthread_create(&a.loop, NULL, run_loop, a.s);
    pthread_create(&b.loop, NULL, run_loop, b.s);

    assert_int_equal(served_by(a.port, 24), 'x'); /* by hash: both loops */

    int first[] = {cpu, 4000, 4001};
    assert_int_equal(rte_http_server_steer_by_cpu(b.s, first, 3, 2, err, sizeof err), 0);
    assert_int_equal(served_by(a.port, 12), '0');
    int second[] = {4000, cpu};
    assert_int_equal(rte_http_server_steer_by_cpu(a.s, second, 2, 2, err, sizeof err), 0);
    assert_int_equal(served_by(a.port, 12), '1');
    int third[] = {4000, 4001, cpu}; /* index 2: loop 2 mod 2 */
    assert_int_equal(rte_http_server_steer_by_cpu(a.s, third, 3, 2, err, sizeof err), 0);
    assert_int_equal(served_by(a.port, 12), '0');
    /* a CPU not in the table: its number mod the loops */
    assert_int_equal(rte_http_server_steer_by_cpu(a.s, NULL, 0, 2, err, sizeof err), 0);
    assert_int_equal(served_by(a.port, 12), cpu % 2 == 0 ? '0' : '1');

    srv_stop(&a);
    srv_stop(&b);
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof was, &was), 0);
}

static void test_steer_by_cpu_refuses_a_server_that_shares_no_port(void **state)
{
    char err[256];
    int cpus[] = {0};
    rte_http_server *s = rte_http_server_new(err, sizeof err);

    (void)state;
    assert_true(rte_http_server_listen(s, "127.0.0.1:0", which0, err, sizeof err) > 0);
    assert_int_equal(rte_http_server_steer_by_cpu(s, cpus, 1, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "no listener of this server shares its port"));
    assert_int_equal(rte_http_server_steer_by_cpu(s, cpus, 1, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "0 loops"));
    rte_http_server_free(s);
}

static void test_json_content_type(void **state)
{
    char why[256];
    const char *json[] = {
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json ; charset=\"utf-8\"",
        "application/json; foo=bar; charset=utf-8;",
        "application/cloudevents+json",
        "application/problem+JSON; charset=utf-8",
        " application/json\t",
    };
    const struct {
        const char *v, *why;
    } not_json[] = {
        {"text/plain", "Content-Type: text/plain is not JSON"},
        {"application/x-www-form-urlencoded", "application/x-www-form-urlencoded is not JSON"},
        {"application/jsonx", "is not JSON"},
        {"text/json", "text/json is not JSON"},
        {"application/+json", "is not JSON"},
        {"multipart/form-data; boundary=x", "multipart/form-data is not JSON"},
        {"application/json; charset=iso-8859-1", "charset must be utf-8"},
        {"application/json; charset=\"utf-16\"", "charset must be utf-8"},
        {"application/json; charset=utf-8x", "charset must be utf-8"},
        {"", "not a media type"},
        {"application", "not a media type"},
        {"application/", "not a media type"},
        {"/json", "not a media type"},
        {"application /json", "not a media type"},
        {"application/json charset=utf-8", "not a media type"},
        {"application/json; charset", "not a media type"},
        {"application/json; charset=", "not a media type"},
        {"application/json; charset=\"utf-8", "not a media type"},
        {"application/json, text/plain", "not a media type"},
        {"application/json; a=\"\x01\"", "not a media type"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof json / sizeof *json; i++)
        if (rte_http_json_content_type(json[i], strlen(json[i]), why, sizeof why) != 1)
            fail_msg("refused '%s': %s", json[i], why);
    for (size_t i = 0; i < sizeof not_json / sizeof *not_json; i++) {
        const char *v = not_json[i].v;
        why[0] = '\0';
        if (rte_http_json_content_type(v, strlen(v), why, sizeof why) != 0)
            fail_msg("accepted '%s'", v);
        if (strstr(why, not_json[i].why) == NULL || strncmp(why, "Content-Type: ", 14) != 0)
            fail_msg("'%s': message '%s' lacks '%s'", v, why, not_json[i].why);
    }
    /* the length bounds the value: what follows is not read */
    assert_int_equal(rte_http_json_content_type("application/jsonXYZ", 16, why, sizeof why), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_loops_deferred_keep_buffers_on_loop_threads),
        cmocka_unit_test(test_free_without_run_releases_the_port),
        cmocka_unit_test(test_headers_inline),
        cmocka_unit_test(test_headers_deferred),
        cmocka_unit_test(test_query_at_walks_a_repeated_parameter),
        cmocka_unit_test(test_request_counter_labels),
        cmocka_unit_test(test_query_parameters_strict),
        cmocka_unit_test(test_header_list_joins_lines),
        cmocka_unit_test(test_query_and_tail_decoding),
        cmocka_unit_test(test_on_turn_runs_after_each_turn_on_the_loop),
        cmocka_unit_test(test_connections_gauge_follows_open_connections),
        cmocka_unit_test(test_steer_by_cpu_sends_a_cpu_to_its_loop),
        cmocka_unit_test(test_steer_by_cpu_refuses_a_server_that_shares_no_port),
        cmocka_unit_test(test_json_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
