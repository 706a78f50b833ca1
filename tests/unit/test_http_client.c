/*
 * test_http_client.c - rte_http_* against a scripted HTTP/1.1 server that
 * runs inside the test (loopback, ephemeral port; nothing external).
 *
 * The server answers the n-th request (counted across connections) with
 * script[n], repeating the last entry once the script runs out, and counts
 * accepted connections so connection reuse can be checked. Timing checks
 * are lower bounds only, except a loose upper bound where a deadline is the
 * point of the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "rte/clock.h"
#include "rte/http_client.h"
#include "rte/metrics.h"

#define MAX_CONNS 16

struct reply {
    int status;
    const char *headers; /* extra "Name: value\r\n" lines, may be NULL */
    const char *body;
    size_t body_len; /* 0 = strlen(body) */
};

struct server {
    int fd;
    int port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    const struct reply *script;
    int nscript;
    int stop;     /* under mu */
    int accepts;  /* under mu */
    int requests; /* under mu */
    char last_head[4096];
    char last_body[256];
    int conn_fds[MAX_CONNS];
    pthread_t conn_threads[MAX_CONNS];
    int nconns;
};

struct conn {
    struct server *s;
    int fd;
};

/* ---- the scripted server ---------------------------------------------- */

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t content_length(const char *head)
{
    const char *p = strcasestr(head, "\r\nContent-Length:");

    if (p == NULL)
        return 0;
    return (size_t)strtoul(p + 17, NULL, 10);
}

static const struct reply *next_reply(struct server *s, const char *head, size_t head_len,
                                      const char *body, size_t body_len)
{
    const struct reply *r;
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->requests++;
    snprintf(s->last_head, sizeof s->last_head, "%.*s", (int)head_len, head);
    snprintf(s->last_body, sizeof s->last_body, "%.*s", (int)body_len, body);
    r = &s->script[n < s->nscript ? n : s->nscript - 1];
    pthread_mutex_unlock(&s->mu);
    return r;
}

static int send_reply(int fd, const struct reply *r)
{
    char head[1024];
    size_t blen = r->body_len ? r->body_len : (r->body ? strlen(r->body) : 0);
    int n;

    n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", r->status,
                 blen, r->headers ? r->headers : "");
    if (send_all(fd, head, (size_t)n) != 0)
        return -1;
    return blen ? send_all(fd, r->body, blen) : 0;
}

/* Serve requests on one connection until the peer closes it. */
static void *conn_main(void *arg)
{
    struct conn *cn = arg;
    char buf[16384];
    size_t len = 0, need;
    char *end;
    ssize_t got;

    for (;;) {
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            size_t head_len = (size_t)(end - buf) + 4;
            need = head_len + content_length(buf);
            if (len >= need) {
                const struct reply *r =
                    next_reply(cn->s, buf, head_len, buf + head_len, need - head_len);
                if (send_reply(cn->fd, r) != 0)
                    break;
                memmove(buf, buf + need, len - need);
                len -= need;
                continue;
            }
        }
        if (len + 1 >= sizeof buf)
            break;
        got = recv(cn->fd, buf + len, sizeof buf - 1 - len, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    free(cn);
    return NULL;
}

/* Server threads must not use cmocka asserts (they longjmp): abort instead. */
static void start_conn(struct server *s, int fd)
{
    struct conn *cn = malloc(sizeof *cn);

    if (cn == NULL)
        abort();
    cn->s = s;
    cn->fd = fd;
    pthread_mutex_lock(&s->mu);
    if (s->nconns >= MAX_CONNS)
        abort();
    s->accepts++;
    s->conn_fds[s->nconns] = fd;
    if (pthread_create(&s->conn_threads[s->nconns], NULL, conn_main, cn) != 0)
        abort();
    s->nconns++;
    pthread_mutex_unlock(&s->mu);
}

static int stopping(struct server *s)
{
    int stop;

    pthread_mutex_lock(&s->mu);
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void *acceptor_main(void *arg)
{
    struct server *s = arg;
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    int fd;

    while (!stopping(s)) {
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        fd = accept(s->fd, NULL, NULL);
        if (fd >= 0)
            start_conn(s, fd);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1, ephemeral port; returns fd and fills port. */
static int listen_loopback(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct server *server_start(const struct reply *script, int nscript)
{
    struct server *s = calloc(1, sizeof *s);

    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->script = script;
    s->nscript = nscript;
    s->fd = listen_loopback(&s->port);
    assert_int_equal(pthread_create(&s->acceptor, NULL, acceptor_main, s), 0);
    return s;
}

static void server_stop(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nconns; i++)
        shutdown(s->conn_fds[i], SHUT_RDWR);
    for (int i = 0; i < s->nconns; i++) {
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int server_count(struct server *s, const int *field)
{
    int v;

    pthread_mutex_lock(&s->mu);
    v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ---- helpers ----------------------------------------------------------- */

struct fixture {
    struct server *server;
    rte_http_client *client;
    char url[128];
};

static void fixture_start(struct fixture *f, const struct reply *script, int nscript)
{
    char err[256] = "";

    f->server = server_start(script, nscript);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/x", f->server->port);
    f->client = rte_http_client_new(NULL, err, sizeof err);
    assert_non_null(f->client);
}

/* The client goes first so its connections close and the server threads end. */
static void fixture_stop(struct fixture *f)
{
    rte_http_client_free(f->client);
    server_stop(f->server);
}

static rte_http_request get_request(const char *url)
{
    rte_http_request req = {.method = "GET", .url = url, .name = "test"};

    req.base_delay_ms = 10;
    req.timeout_ms = 5000;
    return req;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ------------------------------------------------------------- */

static void test_get_200_body(void **state)
{
    static const struct reply script[] = {{200, "X-Request-Id: abc123\r\n", "hello", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;
    char value[64];

    (void)state;
    fixture_start(&f, script, 1);
    req = get_request(f.url);
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(resp.body_len, 5);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(rte_http_response_header(&resp, "x-request-id", value, sizeof value), 0);
    assert_string_equal(value, "abc123");
    assert_int_equal(rte_http_response_header(&resp, "X-Absent", value, sizeof value), -1);
    assert_non_null(strstr(f.server->last_head, "GET /x HTTP/1.1"));
    assert_non_null(strcasestr(f.server->last_head, "User-Agent: rte-suite/1"));
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_post_not_retried_on_503(void **state)
{
    static const struct reply script[] = {{503, NULL, "busy", 0}, {200, NULL, "ok", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    fixture_start(&f, script, 2);
    req = get_request(f.url);
    req.method = "POST";
    req.body = "x=1";
    req.body_len = 3;
    req.max_attempts = 3;
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(server_count(f.server, &f.server->requests), 1);
    assert_string_equal(f.server->last_body, "x=1");
    assert_non_null(strstr(f.server->last_head, "POST /x HTTP/1.1"));
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_idempotent_post_retried(void **state)
{
    static const struct reply script[] = {{503, NULL, "busy", 0}, {200, NULL, "ok", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    fixture_start(&f, script, 2);
    req = get_request(f.url);
    req.method = "POST";
    req.body = "x=1";
    req.body_len = 3;
    req.max_attempts = 3;
    req.idempotent = 1;
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 2);
    assert_string_equal(resp.body, "ok");
    assert_string_equal(f.server->last_body, "x=1");
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_get_retried_500_500_200(void **state)
{
    static const struct reply script[] = {
        {500, "X-Attempt: 1\r\n", "e1", 0},
        {500, "X-Attempt: 2\r\n", "e2", 0},
        {200, "X-Attempt: 3\r\n", "fine", 0},
    };
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;
    char value[16];

    (void)state;
    fixture_start(&f, script, 3);
    req = get_request(f.url);
    req.max_attempts = 5;
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 3);
    assert_string_equal(resp.body, "fine");
    /* only the final attempt's header block is kept */
    assert_int_equal(rte_http_response_header(&resp, "X-Attempt", value, sizeof value), 0);
    assert_string_equal(value, "3");
    assert_null(strstr(resp.headers, "X-Attempt: 1"));
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_retries_stop_at_max_attempts(void **state)
{
    static const struct reply script[] = {{500, NULL, "down", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    fixture_start(&f, script, 1);
    req = get_request(f.url);
    req.max_attempts = 3;
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 500);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(server_count(f.server, &f.server->requests), 3);
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_4xx_not_retried(void **state)
{
    static const struct reply script[] = {{404, NULL, "no", 0}, {200, NULL, "ok", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    fixture_start(&f, script, 2);
    req = get_request(f.url);
    req.max_attempts = 3;
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.attempts, 1);
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_retry_after_honoured(void **state)
{
    static const struct reply script[] = {
        {429, "Retry-After: 1\r\n", "slow down", 0},
        {200, NULL, "ok", 0},
    };
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;
    char value[16];
    int64_t start;

    (void)state;
    fixture_start(&f, script, 2);
    req = get_request(f.url);
    req.max_attempts = 2;
    start = now_ms();
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_true(now_ms() - start >= 900);
    assert_true(resp.seconds >= 0.9);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 2);
    assert_int_equal(rte_http_response_header(&resp, "Retry-After", value, sizeof value), -1);
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_deadline_stops_retries(void **state)
{
    static const struct reply script[] = {{503, NULL, "busy", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;
    int64_t start;

    (void)state;
    fixture_start(&f, script, 1);
    req = get_request(f.url);
    req.max_attempts = 100;
    req.base_delay_ms = 100;
    start = now_ms();
    req.deadline_ms = rte_clock_mono_ms() + 500;
    /* the header allows either ending: the last 503, or -1 when the deadline
     * cut the final attempt short (status 0); never past the deadline */
    int rc = rte_http_do(f.client, &req, &resp);
    assert_true(now_ms() - start < 3000);
    assert_true((rc == 0 && resp.status == 503) || (rc == -1 && resp.status == 0));
    assert_true(resp.attempts >= 1);
    assert_true(resp.attempts < 100);
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_deadline_already_passed(void **state)
{
    static const struct reply script[] = {{200, NULL, "ok", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    fixture_start(&f, script, 1);
    req = get_request(f.url);
    req.deadline_ms = rte_clock_mono_ms() - 1;
    assert_int_equal(rte_http_do(f.client, &req, &resp), -1);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.attempts, 0);
    assert_true(strlen(resp.error) > 0);
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_connection_refused(void **state)
{
    char err[256] = "", url[64];
    rte_http_client *c;
    rte_http_request req;
    rte_http_response resp;
    int port, fd;

    (void)state;
    fd = listen_loopback(&port); /* take a free port, then free it: nobody listens */
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    c = rte_http_client_new(&(rte_http_client_opts){.connect_timeout_ms = 1000}, err, sizeof err);
    assert_non_null(c);
    req = get_request(url);
    req.max_attempts = 3;
    assert_int_equal(rte_http_do(c, &req, &resp), -1);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.attempts, 3);
    assert_true(strlen(resp.error) > 0);
    rte_http_response_free(&resp);
    rte_http_client_free(c);
}

/* "hello gzip" compressed as a gzip stream (windowBits 16 + 15). */
static size_t gzip(const char *text, unsigned char *out, size_t outlen)
{
    z_stream z;

    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = out;
    z.avail_out = (uInt)outlen;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    deflateEnd(&z);
    return z.total_out;
}

static void test_gzip_decoded(void **state)
{
    static unsigned char packed[128];
    struct reply script[] = {{200, "Content-Encoding: gzip\r\n", (const char *)packed, 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    script[0].body_len = gzip("hello gzip", packed, sizeof packed);
    fixture_start(&f, script, 1);
    req = get_request(f.url);
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 10);
    assert_string_equal(resp.body, "hello gzip");
    assert_non_null(strcasestr(f.server->last_head, "Accept-Encoding:"));
    assert_non_null(strstr(f.server->last_head, "gzip"));
    rte_http_response_free(&resp);
    fixture_stop(&f);
}

static void test_connection_reused(void **state)
{
    static const struct reply script[] = {{200, NULL, "one", 0}, {200, NULL, "two", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;

    (void)state;
    fixture_start(&f, script, 2);
    req = get_request(f.url);
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_string_equal(resp.body, "one");
    rte_http_response_free(&resp);
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    assert_string_equal(resp.body, "two");
    rte_http_response_free(&resp);
    assert_int_equal(server_count(f.server, &f.server->requests), 2);
    assert_int_equal(server_count(f.server, &f.server->accepts), 1);
    fixture_stop(&f);
}

struct worker {
    rte_http_client *client;
    const char *url;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    rte_http_request req = get_request(w->url);
    rte_http_response resp;

    for (int i = 0; i < 10; i++) {
        if (rte_http_do(w->client, &req, &resp) == 0 && resp.status == 200 &&
            strcmp(resp.body, "ok") == 0)
            w->ok++;
        rte_http_response_free(&resp);
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    static const struct reply script[] = {{200, NULL, "ok", 0}};
    struct fixture f;
    struct worker w[4];
    pthread_t th[4];

    (void)state;
    fixture_start(&f, script, 1);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.client = f.client, .url = f.url};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 10);
    }
    assert_int_equal(server_count(f.server, &f.server->requests), 40);
    assert_true(server_count(f.server, &f.server->accepts) <= 4);
    fixture_stop(&f);
}

static void test_response_header_lookup(void **state)
{
    char headers[] = "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/plain\r\n"
                     "retry-after:   7  \r\n"
                     "X-Empty:\r\n"
                     "\r\n";
    rte_http_response resp = {.headers = headers};
    char value[64], tiny[4];

    (void)state;
    assert_int_equal(rte_http_response_header(&resp, "CONTENT-TYPE", value, sizeof value), 0);
    assert_string_equal(value, "text/plain");
    assert_int_equal(rte_http_response_header(&resp, "Retry-After", value, sizeof value), 0);
    assert_string_equal(value, "7");
    assert_int_equal(rte_http_response_header(&resp, "x-empty", value, sizeof value), 0);
    assert_string_equal(value, "");
    assert_int_equal(rte_http_response_header(&resp, "Content-Typ", value, sizeof value), -1);
    assert_int_equal(rte_http_response_header(&resp, "Content-Type", tiny, sizeof tiny), 0);
    assert_string_equal(tiny, "tex");
    resp.headers = NULL;
    assert_int_equal(rte_http_response_header(&resp, "Content-Type", value, sizeof value), -1);
}

static void test_retry_after_parse(void **state)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s */
    const int64_t date_ms = 1445412480000LL;

    (void)state;
    assert_int_equal(rte_http_retry_after_ms("120", 0), 120000);
    assert_int_equal(rte_http_retry_after_ms(" 0 ", 0), 0);
    assert_int_equal(rte_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", date_ms - 5000),
                     5000);
    assert_int_equal(rte_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", date_ms + 5000), 0);
    assert_int_equal(rte_http_retry_after_ms("Wednesday, 21-Oct-15 07:28:00 GMT", date_ms), 0);
    assert_int_equal(rte_http_retry_after_ms("Wed Oct 21 07:28:00 2015", date_ms - 1000), 1000);
    assert_int_equal(rte_http_retry_after_ms("soon", 0), -1);
    assert_int_equal(rte_http_retry_after_ms("12abc", 0), -1);
    assert_int_equal(rte_http_retry_after_ms("-5", 0), -1);
    assert_int_equal(rte_http_retry_after_ms("", 0), -1);
    assert_int_equal(rte_http_retry_after_ms(NULL, 0), -1);
    assert_int_equal(rte_http_retry_after_ms("99999999999999999999", 0), -1);
    assert_int_equal(rte_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 PST", 0), -1);
}

static void test_metrics_counted(void **state)
{
    static const struct reply script[] = {{500, NULL, "e", 0}, {200, NULL, "ok", 0}};
    struct fixture f;
    rte_http_request req;
    rte_http_response resp;
    char *text;
    size_t len;

    (void)state;
    fixture_start(&f, script, 2);
    req = get_request(f.url);
    req.name = "t_metrics";
    req.max_attempts = 2;
    assert_int_equal(rte_http_do(f.client, &req, &resp), 0);
    rte_http_response_free(&resp);
    text = rte_metrics_render(&len);
    assert_non_null(text);
    assert_non_null(
        strstr(text, "rte_http_client_requests_total{name=\"t_metrics\",outcome=\"5xx\"} 1\n"));
    assert_non_null(
        strstr(text, "rte_http_client_requests_total{name=\"t_metrics\",outcome=\"2xx\"} 1\n"));
    assert_non_null(strstr(text, "rte_http_client_duration_seconds_count{name=\"t_metrics\"} 1\n"));
    free(text);
    fixture_stop(&f);
}

static void test_free_with_no_requests(void **state)
{
    char err[256] = "";
    rte_http_client *c;

    (void)state;
    c = rte_http_client_new(&(rte_http_client_opts){.max_connections = 2, .user_agent = "t/1"}, err,
                            sizeof err);
    assert_non_null(c);
    rte_http_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_200_body),
        cmocka_unit_test(test_post_not_retried_on_503),
        cmocka_unit_test(test_idempotent_post_retried),
        cmocka_unit_test(test_get_retried_500_500_200),
        cmocka_unit_test(test_retries_stop_at_max_attempts),
        cmocka_unit_test(test_4xx_not_retried),
        cmocka_unit_test(test_retry_after_honoured),
        cmocka_unit_test(test_deadline_stops_retries),
        cmocka_unit_test(test_deadline_already_passed),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_gzip_decoded),
        cmocka_unit_test(test_connection_reused),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_response_header_lookup),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_metrics_counted),
        cmocka_unit_test(test_free_with_no_requests),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
