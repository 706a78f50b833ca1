/*
 * http_server.c - h2o (evloop) HTTP server: routes, JSON, limits, ids.
 *
 * Contract in rte/http_server.h. How it is put together:
 *
 * - One h2o_evloop per server, run by one thread. Each listener gets its own
 *   h2o_globalconf/h2o_context with a single catch-all handler at "/" that
 *   dispatches on our own route table, so routing, 404/405, the body limit,
 *   request ids and metrics live in one place (dispatch()).
 * - Each request gets a wrapper (struct rte_http_req): one malloc holding
 *   the struct and, after it, NUL-terminated copies of method, path and
 *   query, plus a pointer to the h2o request. The wrapper is tied to the h2o
 *   request pool through a shared allocation whose dispose callback runs
 *   when h2o frees the request (answered, or the client went away).
 *   Deferred responses travel to the loop thread through an h2o_multithread
 *   queue; the loop thread sends them only if the h2o request still exists.
 *   The wrapper is reference-counted (pool + deferring thread), so whichever
 *   side lets go last frees it. When a request is deferred its body and
 *   headers are copied into the wrapper (one block), so the deferring thread
 *   never reads h2o memory.
 * - Response headers: until a request is deferred, rte_http_add_header runs
 *   on the loop thread and adds the header straight to the h2o response,
 *   copied into the request pool (no malloc). After rte_http_defer, another
 *   thread may add headers, and it must not touch h2o, so they are copied
 *   into the wrapper and added by the loop thread when the response is sent.
 *   Headers added before deferring stay in the h2o response, so each header
 *   is sent exactly once either way.
 * - Metrics: rte_http_requests_total is counted through a small per-route
 *   table of status -> series (struct status_slot), filled on first use, so
 *   the per-response cost is a few atomic loads and one atomic add instead
 *   of formatting the status and searching the family under its mutex.
 *   Series pointers are valid for the process lifetime (metrics.c), so a
 *   slot never changes once filled; statuses beyond the table's size take
 *   the slow path.
 * - Every h2o object that owns a socket (the listeners, each context's
 *   internal queue, the queue that carries deferred responses) is created
 *   and destroyed on the loop thread itself, in rte_http_server_run. h2o
 *   2.2 recycles socket buffers through a per-thread (__thread) free list
 *   chosen when the socket is created: a socket made on the start-up thread
 *   but read on a loop thread frees its buffers into the start-up thread's
 *   list, and with several loops (http.threads) two threads then mutate
 *   that one list at once, which corrupts the heap. Listening only binds
 *   the port and records the configuration.
 * - Stopping closes listening sockets on the loop thread, asks each
 *   context to shut down (h2o closes idle keep-alive connections), and
 *   returns from run once no request is in flight or the deadline passed.
 *
 * - TLS (rte_http_server_listen_tls): the listener's accept context carries
 *   an OpenSSL context with ALPN offering h2 and http/1.1, so h2o speaks
 *   HTTP/2 to clients that ask for it over TLS. Plain listeners speak
 *   HTTP/1.1 only (no h2c upgrade).
 *
 * - Media types (rte_http_require_json): Content-Type is parsed by RFC 9110
 *   8.3's grammar (type "/" subtype *( OWS ";" OWS name "=" token or
 *   quoted-string )), so "application/json; charset=utf-8" passes and
 *   "application/json, text/plain" does not. A malformed value, another
 *   type or a charset other than utf-8 is 415; so is any content coding,
 *   since h2o hands bodies over as they came (RFC 9110 12.5.3 asks for
 *   415 with Accept-Encoding then).
 *
 * What it does not do: client certificates, certificate reload without a
 * restart, streaming request bodies (h2o buffers the whole body first, bounded by the
 * largest route limit).
 */
#include "rte/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <h2o.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "rte/clock.h"
#include "rte/crypto.h"
#include "rte/json.h"
#include "rte/log.h"
#include "rte/metrics.h"

#define DEFAULT_MAX_BODY (1024 * 1024)
#define MAX_LISTENERS 8

struct listener;

/* an accepted connection, tracked so a stop can close idle keep-alives */
struct conn {
    struct conn *prev, *next;
    int fd;
    rte_series *open; /* the server's open-connections gauge */
};

struct catchall {
    h2o_handler_t super;
    struct listener *l;
};

/*
 * one status of rte_http_requests_total for one route: status is claimed
 * once (0 -> the status, by compare-and-swap) and never changes; series is
 * published after it, so a reader that sees the status but no series yet
 * takes the slow path
 */
#define STATUS_SLOTS 8

struct status_slot {
    atomic_int status;
    _Atomic(rte_series *) series;
};

struct route_rt {
    rte_http_route r;
    size_t prefix_len; /* > 0 for '*' routes */
    rte_series *dur;
    struct status_slot counts[STATUS_SLOTS];
};

struct listener {
    rte_http_server *srv;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *sock;
    int fd;
    int port;
    int closed;
    int reuseport; /* the socket shares its port (SO_REUSEPORT group) */
    struct route_rt *routes;
    int nroutes;
    struct status_slot unmatched[STATUS_SLOTS]; /* counts of requests no route took */
    SSL_CTX *ssl;                               /* NULL = plain HTTP/1.1 */
};

struct rte_http_server {
    h2o_evloop_t *loop;
    h2o_multithread_queue_t *queue; /* created by run, on the loop thread */
    h2o_multithread_receiver_t receiver;
    struct listener *listeners[MAX_LISTENERS];
    int nlisteners;
    atomic_int inflight;
    int reuseport; /* listeners share their port with other servers' (SO_REUSEPORT) */
    int ran;       /* run set the loop up (and tore it down when it returned) */
    atomic_int stopping;
    atomic_int stop_port; /* listener to stop, -1 none */
    int64_t stop_deadline;
    pthread_mutex_t lock;
    struct conn conns;          /* list head; loop thread only */
    rte_series *m_conns;        /* rte_http_connections{loop} */
    rte_series *m_accepted;     /* rte_http_connections_accepted_total{loop} */
    void (*on_turn)(void *arg); /* after each loop turn, on the loop thread */
    void *on_turn_arg;
};

struct hdr_copy {
    char *name;
    char *value;
};

struct rte_http_req {
    h2o_req_t *h2o; /* NULL once h2o freed the request */
    struct listener *l;
    struct route_rt *route;
    atomic_int refs;
    int deferred;
    int responded;
    int64_t start_ms;
    const char *method; /* these three point into text */
    const char *path;
    const char *query; /* without '?', or "" */
    size_t path_len;
    const char *tail;
    char id[40];
    /* copies made by rte_http_defer, in one block (copy) */
    void *copy;
    const char *body;
    size_t body_len;
    struct hdr_copy *hdrs;
    size_t nhdrs;
    /* headers added after deferring; each name is one malloc holding name and value */
    struct hdr_copy *out;
    size_t nout;
    char text[]; /* method, path and query, each NUL-terminated */
};

/* a deferred response in flight to the loop thread; one malloc */
struct response_msg {
    h2o_multithread_message_t super;
    rte_http_req *req;
    int status;
    const char *content_type; /* NULL, or in data after the body */
    size_t len;
    char data[]; /* the body (len bytes), then the content type NUL-terminated */
};

struct pool_anchor {
    rte_http_req *req;
};

static rte_metric *m_requests;
static rte_metric *m_duration;
static rte_metric *m_conns;
static rte_metric *m_accepted;
static atomic_int loops_made; /* numbers the servers for m_conns */
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void init_metrics(void)
{
    static const char *const rl[] = {"route", "status", NULL};
    static const char *const dl[] = {"route", NULL};
    m_requests =
        rte_counter_new("rte_http_requests_total", "HTTP requests by route and status", rl);
    m_duration = rte_histogram_new("rte_http_request_duration_seconds",
                                   "HTTP request latency by route", dl, NULL, 0);
    m_conns = rte_gauge_new("rte_http_connections",
                            "Open HTTP connections per event loop, numbered in the order the "
                            "servers were made (a service's loop 0 also serves the admin port)",
                            (const char *const[]){"loop", NULL});
    m_accepted = rte_counter_new("rte_http_connections_accepted_total",
                                 "HTTP connections accepted per event loop (loops numbered as in "
                                 "rte_http_connections): how the kernel spread them",
                                 (const char *const[]){"loop", NULL});
}

/* copy n bytes of s to dst and NUL-terminate; returns the byte after the NUL */
static char *put(char *dst, const char *s, size_t n)
{
    if (n > 0)
        memcpy(dst, s, n);
    dst[n] = '\0';
    return dst + n + 1;
}

/* copy n bytes of s to dst with A-Z lower-cased (h2o and HTTP/2 want lower-case names) */
static void lower_copy(char *dst, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
}

static void req_unref(rte_http_req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->copy);
    for (size_t i = 0; i < r->nout; i++)
        free(r->out[i].name); /* the value is in the same block */
    free(r->out);
    free(r);
}

/* the slow path: resolve the series by its labels (the family's mutex) */
static rte_series *series_by_labels(const char *name, int status)
{
    char st[12];
    snprintf(st, sizeof st, "%d", status);
    const char *lv[] = {name, st, NULL};
    return rte_metric_labels(m_requests, lv);
}

/* the rte_http_requests_total series of (name, status) through the slots */
static rte_series *requests_series(struct status_slot *slots, const char *name, int status)
{
    if (status <= 0) /* 0 marks a free slot */
        return series_by_labels(name, status);
    for (int i = 0; i < STATUS_SLOTS; i++) {
        struct status_slot *sl = &slots[i];
        int st = atomic_load_explicit(&sl->status, memory_order_acquire);
        if (st == 0) {
            if (atomic_compare_exchange_strong(&sl->status, &st, status)) {
                rte_series *s = series_by_labels(name, status);
                atomic_store_explicit(&sl->series, s, memory_order_release);
                return s;
            }
            /* another thread claimed it first; st now holds its status */
        }
        if (st == status) {
            rte_series *s = atomic_load_explicit(&sl->series, memory_order_acquire);
            return s != NULL ? s : series_by_labels(name, status);
        }
    }
    return series_by_labels(name, status);
}

static void count_request(rte_http_req *r, int status)
{
    if (r->route != NULL)
        rte_series_inc(requests_series(r->route->counts, r->route->r.name, status));
    else
        rte_series_inc(requests_series(r->l->unmatched, "unmatched", status));
}

/* runs on the loop thread when h2o frees the request's pool */
static void on_pool_dispose(void *p)
{
    struct pool_anchor *a = p;
    rte_http_req *r = a->req;
    if (!r->responded)
        count_request(r, 499);
    r->h2o = NULL;
    atomic_fetch_sub(&r->l->srv->inflight, 1);
    req_unref(r);
}

static void record(rte_http_req *r, int status)
{
    count_request(r, status);
    if (r->route != NULL)
        rte_series_observe(r->route->dur, (double)(rte_clock_mono_ms() - r->start_ms) / 1000.0);
}

/* send on the loop thread; r->h2o must be live */
static void send_now(rte_http_req *r, int status, const char *ctype, const char *body, size_t len)
{
    h2o_req_t *hr = r->h2o;
    hr->res.status = status;
    hr->res.reason = "";
    if (ctype != NULL) {
        h2o_iovec_t v = h2o_strdup(&hr->pool, ctype, SIZE_MAX);
        h2o_add_header(&hr->pool, &hr->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, v.base, v.len);
    }
    /* not copied: the pool's anchor keeps r alive until the pool is cleared */
    h2o_add_header_by_str(&hr->pool, &hr->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, r->id,
                          strlen(r->id));
    /* headers added after deferring; those added before are in hr->res.headers already */
    for (size_t i = 0; i < r->nout; i++) {
        h2o_iovec_t n = h2o_strdup(&hr->pool, r->out[i].name, SIZE_MAX);
        h2o_iovec_t v = h2o_strdup(&hr->pool, r->out[i].value, SIZE_MAX);
        h2o_add_header_by_str(&hr->pool, &hr->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
    }
    r->responded = 1;
    record(r, status);
    /* a known length (h2o_send_inline leaves it unset, so HTTP/1.1 would be chunked) */
    if (status >= 200 && status != 204 && status != 304)
        hr->res.content_length = len;
    h2o_send_inline(hr, body, len);
}

static void on_messages(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    (void)recv;
    while (!h2o_linklist_is_empty(messages)) {
        struct response_msg *m =
            H2O_STRUCT_FROM_MEMBER(struct response_msg, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (m->req->h2o != NULL)
            send_now(m->req, m->status, m->content_type, m->data, m->len);
        req_unref(m->req);
        free(m);
    }
}

static int route_matches(const struct route_rt *rt, const char *path)
{
    if (rt->prefix_len > 0)
        return strncmp(path, rt->r.path, rt->prefix_len) == 0;
    return strcmp(path, rt->r.path) == 0;
}

static int method_matches(const struct route_rt *rt, const char *method)
{
    if (rt->r.method == NULL)
        return 1;
    if (strcmp(rt->r.method, method) == 0)
        return 1;
    /* HEAD is served by GET routes (h2o drops the body) */
    return strcmp(method, "HEAD") == 0 && strcmp(rt->r.method, "GET") == 0;
}

static int sane_request_id(const char *s, size_t n)
{
    if (n == 0 || n > 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static rte_http_req *wrap(struct listener *l, h2o_req_t *hr)
{
    size_t plen = hr->path.len, qlen = 0;
    const char *query = "";
    if (hr->query_at != SIZE_MAX) {
        plen = hr->query_at;
        query = hr->path.base + hr->query_at + 1;
        qlen = hr->path.len - hr->query_at - 1;
    }
    rte_http_req *r = malloc(sizeof *r + hr->method.len + plen + qlen + 3);
    if (r == NULL)
        rte_panic("out of memory");
    memset(r, 0, sizeof *r);
    r->h2o = hr;
    r->l = l;
    atomic_init(&r->refs, 1);
    r->start_ms = rte_clock_mono_ms();
    char *p = r->text;
    r->method = p;
    p = put(p, hr->method.base, hr->method.len);
    r->path = p;
    r->path_len = plen;
    p = put(p, hr->path.base, plen);
    r->query = p;
    put(p, query, qlen);
    ssize_t idx = h2o_find_header_by_str(&hr->headers, H2O_STRLIT("x-request-id"), -1);
    if (idx >= 0 &&
        sane_request_id(hr->headers.entries[idx].value.base, hr->headers.entries[idx].value.len)) {
        memcpy(r->id, hr->headers.entries[idx].value.base, hr->headers.entries[idx].value.len);
        r->id[hr->headers.entries[idx].value.len] = '\0';
    } else {
        rte_uuid4(r->id);
    }
    struct pool_anchor *a = h2o_mem_alloc_shared(&hr->pool, sizeof *a, on_pool_dispose);
    a->req = r;
    atomic_fetch_add(&l->srv->inflight, 1);
    return r;
}

static struct route_rt *find_route(struct listener *l, const char *method, const char *path,
                                   int *path_matched)
{
    *path_matched = 0;
    for (int i = 0; i < l->nroutes; i++) {
        if (!route_matches(&l->routes[i], path))
            continue;
        *path_matched = 1;
        if (method_matches(&l->routes[i], method))
            return &l->routes[i];
    }
    return NULL;
}

static int on_req(h2o_handler_t *self, h2o_req_t *hr)
{
    struct listener *l = ((struct catchall *)self)->l;
    rte_http_req *r = wrap(l, hr);
    int path_matched;
    struct route_rt *rt = find_route(l, r->method, r->path, &path_matched);

    if (rt == NULL) {
        if (path_matched)
            rte_http_error(r, 405, "method %s not allowed on %s", r->method, r->path);
        else
            rte_http_error(r, 404, "no route for %s", r->path);
        return 0;
    }
    r->route = rt;
    r->tail = r->path + (rt->prefix_len > 0 ? rt->prefix_len : r->path_len);
    size_t limit = rt->r.max_body ? rt->r.max_body : DEFAULT_MAX_BODY;
    if (hr->entity.base != NULL && hr->entity.len > limit) {
        rte_http_error(r, 413, "request body of %zu bytes exceeds the limit of %zu bytes",
                       hr->entity.len, limit);
        return 0;
    }
    rte_log_set_request_id(r->id);
    rt->r.handler(r, rt->r.arg);
    rte_log_set_request_id(NULL);
    if (!r->responded && !r->deferred)
        rte_http_error(r, 500, "handler for %s sent no response", r->path);
    return 0;
}

static void on_conn_close(void *p)
{
    struct conn *c = p;
    rte_series_add(c->open, -1);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct listener *l = listener->data;
    if (err != NULL)
        return;
    /* accept ourselves so we know each connection's fd (see stop) */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            return;
        }
        h2o_socket_t *sock = h2o_evloop_socket_create(l->srv->loop, fd, 0);
        c->fd = fd;
        c->open = l->srv->m_conns;
        rte_series_add(c->open, 1);
        rte_series_inc(l->srv->m_accepted);
        c->next = &l->srv->conns;
        c->prev = l->srv->conns.prev;
        c->prev->next = c;
        l->srv->conns.prev = c;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&l->accept, sock);
    }
}

/* rte_http_server_new - create the loop; any thread */
rte_http_server *rte_http_server_new(char *err, size_t errlen)
{
    pthread_once(&metrics_once, init_metrics);
    rte_http_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = h2o_evloop_create();
    atomic_init(&s->inflight, 0);
    atomic_init(&s->stopping, 0);
    atomic_init(&s->stop_port, -1);
    pthread_mutex_init(&s->lock, NULL);
    s->conns.next = s->conns.prev = &s->conns;
    char loop[16];
    snprintf(loop, sizeof loop, "%d", atomic_fetch_add(&loops_made, 1));
    s->m_conns = rte_metric_labels(m_conns, (const char *const[]){loop, NULL});
    s->m_accepted = rte_metric_labels(m_accepted, (const char *const[]){loop, NULL});
    return s;
}

static int parse_addr(const char *addr, struct sockaddr_in *sin, char *err, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    char host[64];
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
        snprintf(err, errlen, "listen address '%s' is not host:port", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || end == colon + 1) {
        snprintf(err, errlen, "listen address '%s': bad port", addr);
        return -1;
    }
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        snprintf(err, errlen, "listen address '%s': host must be an IPv4 address", addr);
        return -1;
    }
    return 0;
}

static int open_listen_socket(const char *addr, int reuseport, int *port, char *err, size_t errlen)
{
    struct sockaddr_in sin;
    if (parse_addr(addr, &sin, err, errlen) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int compile_routes(struct listener *l, const rte_http_route *routes, size_t *max_body)
{
    int n = 0;
    while (routes != NULL && routes[n].path != NULL)
        n++;
    l->routes = calloc((size_t)n + 1, sizeof *l->routes);
    if (l->routes == NULL)
        return -1;
    *max_body = DEFAULT_MAX_BODY;
    for (int i = 0; i < n; i++) {
        struct route_rt *rt = &l->routes[i];
        rt->r = routes[i];
        if (rt->r.name == NULL)
            rt->r.name = rt->r.path;
        size_t len = strlen(rt->r.path);
        if (len > 0 && rt->r.path[len - 1] == '*')
            rt->prefix_len = len - 1;
        const char *lv[] = {rt->r.name, NULL};
        rt->dur = rte_metric_labels(m_duration, lv);
        if (rt->r.max_body > *max_body)
            *max_body = rt->r.max_body;
    }
    l->nroutes = n;
    return 0;
}

/* rte_http_server_listen - bind and serve routes; on the creating thread before run */
/* A server TLS context from PEM files, offering h2 and http/1.1 by ALPN. */
static SSL_CTX *tls_context(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    unsigned long e;

    if (ctx == NULL) {
        snprintf(err, errlen, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        e = ERR_get_error();
        snprintf(err, errlen, "TLS certificate '%s': %s", cert, ERR_reason_error_string(e));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        e = ERR_get_error();
        snprintf(err, errlen, "TLS key '%s': %s", key, ERR_reason_error_string(e));
        goto fail;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

static int listen_on(rte_http_server *s, const char *addr, const rte_http_route *routes,
                     SSL_CTX *ssl, char *err, size_t errlen);

/* rte_http_server_listen - plain HTTP/1.1; the thread that created the server */
int rte_http_server_listen(rte_http_server *s, const char *addr, const rte_http_route *routes,
                           char *err, size_t errlen)
{
    return listen_on(s, addr, routes, NULL, err, errlen);
}

/* rte_http_server_listen_tls - HTTPS with HTTP/2 by ALPN; the thread that created the server */
int rte_http_server_listen_tls(rte_http_server *s, const char *addr, const rte_http_route *routes,
                               const char *cert_file, const char *key_file, char *err,
                               size_t errlen)
{
    SSL_CTX *ssl = tls_context(cert_file, key_file, err, errlen);
    int port;

    if (ssl == NULL)
        return -1;
    port = listen_on(s, addr, routes, ssl, err, errlen);
    if (port < 0)
        SSL_CTX_free(ssl);
    return port;
}

static int listen_on(rte_http_server *s, const char *addr, const rte_http_route *routes,
                     SSL_CTX *ssl, char *err, size_t errlen)
{
    if (s->nlisteners == MAX_LISTENERS) {
        snprintf(err, errlen, "too many listeners");
        return -1;
    }
    if (s->ran) {
        snprintf(err, errlen, "listen after run: add listeners before rte_http_server_run");
        return -1;
    }
    struct listener *l = calloc(1, sizeof *l);
    size_t max_body;
    if (l == NULL || compile_routes(l, routes, &max_body) != 0) {
        free(l);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = open_listen_socket(addr, s->reuseport, &l->port, err, errlen);
    if (fd < 0) {
        free(l->routes);
        free(l);
        return -1;
    }
    l->srv = s;
    h2o_config_init(&l->conf);
    /* h2o refuses bodies above this itself; our per-route check is below it */
    l->conf.max_request_entity_size = max_body + 1;
    h2o_hostconf_t *host =
        h2o_config_register_host(&l->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    struct catchall *h = (struct catchall *)h2o_create_handler(pc, sizeof *h);
    h->super.on_req = on_req;
    h->l = l;
    l->accept.hosts = l->conf.hosts;
    l->accept.ssl_ctx = ssl;
    l->ssl = ssl;
    l->fd = fd;
    l->reuseport = s->reuseport;
    s->listeners[s->nlisteners++] = l;
    return l->port;
}

/* one turn of the loop, then the owner's per-turn hook */
static void turn(rte_http_server *s, int32_t max_wait_ms)
{
    h2o_evloop_run(s->loop, max_wait_ms);
    if (s->on_turn != NULL)
        s->on_turn(s->on_turn_arg);
}

/* rte_http_server_on_turn - before run (the loop thread itself may set it) */
void rte_http_server_on_turn(rte_http_server *s, void (*fn)(void *arg), void *arg)
{
    s->on_turn = fn;
    s->on_turn_arg = arg;
}

/* loop thread, before the first turn: the queue, each context and listening socket */
static void loop_setup(rte_http_server *s)
{
    s->queue = h2o_multithread_create_queue(s->loop);
    h2o_multithread_register_receiver(s->queue, &s->receiver, on_messages);
    for (int i = 0; i < s->nlisteners; i++) {
        struct listener *l = s->listeners[i];
        h2o_context_init(&l->ctx, s->loop, &l->conf);
        l->accept.ctx = &l->ctx;
        l->sock = h2o_evloop_socket_create(s->loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
}

static void close_listener(struct listener *l);

/* loop thread, after the last turn: everything loop_setup made, in reverse */
static void loop_teardown(rte_http_server *s)
{
    for (int i = 0; i < s->nlisteners; i++) {
        struct listener *l = s->listeners[i];
        close_listener(l); /* run closed them all when it stopped; this is a no-op then */
        /* request_shutdown arms HTTP/2's GOAWAY timer even with no HTTP/2 connection */
        if (h2o_timeout_is_linked(&l->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&l->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&l->ctx);
    }
    h2o_multithread_unregister_receiver(s->queue, &s->receiver);
    h2o_multithread_destroy_queue(s->queue);
    free(s->queue); /* h2o 2.2.5's evloop build closes the queue but never frees it */
    s->queue = NULL;
    /* closed sockets (listeners, the queues' pipes) are freed by the next loop turn */
    turn(s, 0);
}

static void close_listener(struct listener *l)
{
    if (l->closed)
        return;
    l->closed = 1;
    h2o_socket_read_stop(l->sock);
    h2o_socket_close(l->sock);
    l->sock = NULL;
    h2o_context_request_shutdown(&l->ctx);
}

/*
 * close the connections still open (idle keep-alives) by shutting their
 * sockets down: h2o sees EOF and tears each one down through its own path,
 * which is the only way its timers get unlinked before the context goes
 */
static void close_connections(rte_http_server *s, int64_t deadline)
{
    for (struct conn *c = s->conns.next; c != &s->conns; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (s->conns.next != &s->conns && rte_clock_mono_ms() < deadline)
        turn(s, 10);
}

/* rte_http_server_run - run the loop until stopped; the loop thread */
int rte_http_server_run(rte_http_server *s)
{
    s->ran = 1;
    loop_setup(s);
    for (;;) {
        turn(s, 100);
        int port = atomic_exchange(&s->stop_port, -1);
        for (int i = 0; port >= 0 && i < s->nlisteners; i++)
            if (s->listeners[i]->port == port)
                close_listener(s->listeners[i]);
        if (!atomic_load(&s->stopping))
            continue;
        for (int i = 0; i < s->nlisteners; i++)
            close_listener(s->listeners[i]);
        if (atomic_load(&s->inflight) == 0)
            break;
        if (rte_clock_mono_ms() >= s->stop_deadline) {
            rte_log_warn("http: %d requests still in flight at the stop deadline; closing them",
                         atomic_load(&s->inflight));
            break;
        }
    }
    close_connections(s, rte_clock_mono_ms() + 2000);
    loop_teardown(s);
    return 0;
}

/* rte_http_server_stop_listener - stop accepting on one port; any thread */
void rte_http_server_stop_listener(rte_http_server *s, int port)
{
    atomic_store(&s->stop_port, port);
}

/* rte_http_server_stop - stop all listeners and return from run when drained; any thread */
void rte_http_server_stop(rte_http_server *s, int deadline_ms)
{
    pthread_mutex_lock(&s->lock);
    s->stop_deadline = rte_clock_mono_ms() + deadline_ms;
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->stopping, 1);
}

/* rte_http_server_set_reuseport - before listening; the creating thread */
void rte_http_server_set_reuseport(rte_http_server *s, int on)
{
    s->reuseport = on;
}

/*
 * rte_http_server_steer_by_cpu - a classic BPF program on the port's
 * SO_REUSEPORT group returns the index of the group's socket to take a new
 * connection: a table of "CPU cpus[k] -> k mod nloops", then "CPU mod
 * nloops" for a CPU not in it. The group's sockets are indexed in the order
 * they joined, the order the loops listened in; an index past the group
 * (a loop already closed its listener) makes the kernel fall back to its hash.
 */
int rte_http_server_steer_by_cpu(rte_http_server *s, const int *cpus, int ncpus, int nloops,
                                 char *err, size_t errlen)
{
    struct sock_filter code[2 * RTE_HTTP_STEER_MAX_CPUS + 3];
    struct sock_fprog prog = {.filter = code};
    int n = 0, attached = 0;

    if (nloops < 1 || ncpus < 0 || ncpus > RTE_HTTP_STEER_MAX_CPUS) {
        snprintf(err, errlen, "steer by CPU: %d loops over %d CPUs (1.., 0..%d)", nloops, ncpus,
                 RTE_HTTP_STEER_MAX_CPUS);
        return -1;
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU);
    for (int k = 0; k < ncpus; k++) {
        code[n++] =
            (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)cpus[k], 0, 1);
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)(k % nloops));
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)nloops);
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
    prog.len = (unsigned short)n;
    for (int i = 0; i < s->nlisteners; i++) {
        struct listener *l = s->listeners[i];
        if (!l->reuseport)
            continue;
        if (setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) {
            snprintf(err, errlen, "port %d: SO_ATTACH_REUSEPORT_CBPF: %s", l->port,
                     strerror(errno));
            return -1;
        }
        attached++;
    }
    if (attached == 0) {
        snprintf(err, errlen, "steer by CPU: no listener of this server shares its port");
        return -1;
    }
    return 0;
}

/* rte_http_server_wait_idle - any thread; sleeps in 5 ms steps, takes no lock */
int rte_http_server_wait_idle(const rte_http_server *s, int timeout_ms)
{
    int64_t until = rte_clock_mono_ms() + timeout_ms;
    int n;

    while ((n = rte_http_server_inflight(s)) > 0 && rte_clock_mono_ms() < until) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return n;
}

/* rte_http_server_inflight - requests not yet answered; any thread */
int rte_http_server_inflight(const rte_http_server *s)
{
    return atomic_load(&((rte_http_server *)s)->inflight);
}

/* rte_http_server_free - release everything (after run returned) */
void rte_http_server_free(rte_http_server *s)
{
    if (s == NULL)
        return;
    /* run tore down its sockets on the loop thread; a server never run holds only fds */
    for (int i = 0; i < s->nlisteners; i++) {
        if (!s->ran)
            close(s->listeners[i]->fd);
        h2o_config_dispose(&s->listeners[i]->conf);
    }
    h2o_evloop_destroy(s->loop);
    for (int i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i]->ssl)
            SSL_CTX_free(s->listeners[i]->ssl);
        free(s->listeners[i]->routes);
        free(s->listeners[i]);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* rte_http_req_method - the method; borrowed */
const char *rte_http_req_method(const rte_http_req *req)
{
    return req->method;
}

/* rte_http_req_path - the path without query; borrowed */
const char *rte_http_req_path(const rte_http_req *req)
{
    return req->path;
}

/* rte_http_req_tail - path after a '*' route's prefix; borrowed */
const char *rte_http_req_tail(const rte_http_req *req)
{
    return req->tail != NULL ? req->tail : "";
}

/* rte_http_req_id - the request id; borrowed */
const char *rte_http_req_id(const rte_http_req *req)
{
    return req->id;
}

/*
 * Query parameters. The query is split on '&' into name[=value] pairs
 * (empty pairs skipped) and each part is percent-decoded as HTML forms
 * encode it ('+' is a space). Decoding is strict, because a parameter that
 * cannot be read must never pass for one that was not sent: a '%' needs two
 * hex digits after it, characters RFC 3986 3.4 does not allow in a query
 * must come encoded, and an escape that decodes to a control character
 * (NUL included) is refused. A parameter given twice is refused too: a
 * proxy or framework in front of us may read the other copy.
 */

/* rte_http_req_tail_decoded - loop thread, or the deferring thread; no locks */
int rte_http_req_tail_decoded(const rte_http_req *req, char *buf, size_t len)
{
    const char *t = rte_http_req_tail(req);
    size_t n = strlen(t), o = 0;

    if (len == 0)
        return RTE_HTTP_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)t[i];
        if (c == '%') {
            int hi = i + 2 < n ? rte_hex_digit(t[i + 1]) : -1;
            int lo = i + 2 < n ? rte_hex_digit(t[i + 2]) : -1;
            if (hi < 0 || lo < 0 || hi * 16 + lo == 0)
                return RTE_HTTP_MALFORMED;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= len)
            return RTE_HTTP_MALFORMED;
        buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return (int)o;
}

/* 1 when c may appear unencoded in a query (RFC 3986: pchar / "/" / "?") */
static int query_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@/?", c) != NULL;
}

/* one name[=value] pair of the query, still encoded */
struct qpair {
    const char *name, *value;
    size_t nlen, vlen;
};

/* the next non-empty pair at *p; 0 at the end */
static int next_pair(const char **p, struct qpair *q)
{
    const char *s = *p, *amp, *eq;
    size_t n;

    while (*s == '&')
        s++;
    if (*s == '\0')
        return 0;
    amp = strchr(s, '&');
    n = amp != NULL ? (size_t)(amp - s) : strlen(s);
    eq = memchr(s, '=', n);
    q->name = s;
    q->nlen = eq != NULL ? (size_t)(eq - s) : n;
    q->value = eq != NULL ? eq + 1 : s + n;
    q->vlen = (size_t)(s + n - q->value);
    *p = s + n;
    return 1;
}

/*
 * decode n bytes of query text into out (len > 0 bytes, NUL-terminated,
 * cut short if it does not fit); the decoded length (which may be len or
 * more), or MALFORMED / CONTROL with *at the offset of the offending byte
 */
static long query_decode(const char *s, size_t n, char *out, size_t len, size_t *at)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        *at = i;
        if (c == '%') {
            int hi = i + 2 < n ? rte_hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? rte_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return RTE_HTTP_QUERY_MALFORMED;
            c = (unsigned char)(hi * 16 + lo);
            if (c < 0x20 || c == 0x7f)
                return RTE_HTTP_QUERY_CONTROL;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        } else if (!query_char(c)) {
            return RTE_HTTP_QUERY_MALFORMED;
        }
        if (o + 1 < len)
            out[o] = (char)c;
        o++;
    }
    out[o < len ? o : len - 1] = '\0';
    return (long)o;
}

/* 1 when the encoded text (n bytes) decodes to exactly name */
static int query_name_is(const char *raw, size_t n, const char *name)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++, k++) {
        int c = (unsigned char)raw[i];
        if (c == '%') {
            int hi = i + 2 < n ? rte_hex_digit(raw[i + 1]) : -1;
            int lo = i + 2 < n ? rte_hex_digit(raw[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return 0;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (name[k] == '\0' || (unsigned char)name[k] != c)
            return 0;
    }
    return name[k] == '\0';
}

/* client text for an error message: printable ASCII, others as '?', at most 40 bytes */
static void shown(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 4 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o == 40) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[o] = '\0';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * the message for query_decode's rc on s (n bytes, bad byte at at), about
 * "<label> '<name>'" (label "query parameter" or "query parameter name")
 */
static void decode_error(long rc, const char *s, size_t n, size_t at, const char *label,
                         const char *name, char *err, size_t errlen)
{
    char bad[8];

    if (rc == RTE_HTTP_QUERY_CONTROL) {
        shown(s + at, 3, bad, sizeof bad);
        set_err(err, errlen, "%s '%s': '%s' decodes to a control character", label, name, bad);
    } else if (s[at] == '%') {
        shown(s + at, n - at < 3 ? n - at : 3, bad, sizeof bad);
        set_err(err, errlen,
                "%s '%s': '%s' is not a percent-escape ('%%' must be followed by two hex "
                "digits; a literal '%%' is %%25)",
                label, name, bad);
    } else if ((unsigned char)s[at] > 0x20 && (unsigned char)s[at] < 0x7f) {
        set_err(err, errlen, "%s '%s': the character '%c' must be percent-encoded", label, name,
                s[at]);
    } else {
        set_err(err, errlen, "%s '%s': the byte 0x%02X must be percent-encoded", label, name,
                (unsigned char)s[at]);
    }
}

/* decode the value of pair q (parameter name) into buf; its length or an rte_http_query_rc */
static int pair_value(const struct qpair *q, const char *name, char *buf, size_t len, char *err,
                      size_t errlen)
{
    size_t at = 0;
    long rc = query_decode(q->value, q->vlen, buf, len, &at);

    if (rc < 0) {
        buf[0] = '\0';
        decode_error(rc, q->value, q->vlen, at, "query parameter", name, err, errlen);
        return (int)rc;
    }
    if ((size_t)rc >= len) {
        buf[0] = '\0';
        set_err(err, errlen, "query parameter '%s': longer than %zu bytes", name, len - 1);
        return RTE_HTTP_QUERY_TOO_LONG;
    }
    return (int)rc;
}

/* rte_http_req_query - loop thread, or the deferring thread; no locks */
int rte_http_req_query(const rte_http_req *req, const char *name, char *buf, size_t len, char *err,
                       size_t errlen)
{
    const char *p = req->query;
    struct qpair q, found = {0};
    int seen = 0;

    if (len == 0)
        rte_panic("rte_http_req_query: no room for the value of '%s'", name);
    buf[0] = '\0';
    while (next_pair(&p, &q)) {
        if (!query_name_is(q.name, q.nlen, name))
            continue;
        if (++seen == 2) {
            set_err(err, errlen, "query parameter '%s': given more than once", name);
            return RTE_HTTP_QUERY_REPEATED;
        }
        found = q;
    }
    if (seen == 0) {
        set_err(err, errlen, "query parameter '%s': missing", name);
        return RTE_HTTP_QUERY_ABSENT;
    }
    return pair_value(&found, name, buf, len, err, errlen);
}

/* rte_http_req_query_at - loop thread, or the deferring thread; no locks */
int rte_http_req_query_at(const rte_http_req *req, const char *name, int index, char *buf,
                          size_t len, char *err, size_t errlen)
{
    const char *p = req->query;
    struct qpair q;

    if (len == 0)
        rte_panic("rte_http_req_query_at: no room for the value of '%s'", name);
    buf[0] = '\0';
    while (next_pair(&p, &q)) {
        if (query_name_is(q.name, q.nlen, name) && index-- == 0)
            return pair_value(&q, name, buf, len, err, errlen);
    }
    set_err(err, errlen, "query parameter '%s': missing", name);
    return RTE_HTTP_QUERY_ABSENT;
}

/* rte_http_req_query_only - loop thread, or the deferring thread; no locks */
int rte_http_req_query_only(const rte_http_req *req, const char *const *names, char *err,
                            size_t errlen)
{
    const char *p = req->query;
    struct qpair q;
    char dec[64], show[64];
    size_t at = 0, o;
    long rc;
    int known;

    while (next_pair(&p, &q)) {
        known = 0;
        for (size_t i = 0; names != NULL && names[i] != NULL && !known; i++)
            known = query_name_is(q.name, q.nlen, names[i]);
        if (known)
            continue;
        rc = query_decode(q.name, q.nlen, dec, sizeof dec, &at);
        if (rc < 0) {
            shown(q.name, q.nlen, show, sizeof show);
            decode_error(rc, q.name, q.nlen, at, "query parameter name", show, err, errlen);
            return (int)rc;
        }
        shown(dec, (size_t)rc < sizeof dec ? (size_t)rc : sizeof dec - 1, show, sizeof show);
        set_err(err, errlen, "query parameter '%s': not one this request reads (it reads %s", show,
                names == NULL || names[0] == NULL ? "none" : "");
        for (size_t i = 0; err != NULL && names != NULL && names[i] != NULL; i++) {
            o = strlen(err);
            set_err(err + o, errlen - o, "%s%s", i > 0 ? ", " : "", names[i]);
        }
        if (err != NULL) {
            o = strlen(err);
            set_err(err + o, errlen - o, ")");
        }
        return RTE_HTTP_QUERY_UNKNOWN;
    }
    return 0;
}

static int copy_value(const char *v, size_t vlen, char *buf, size_t len)
{
    if (vlen + 1 > len)
        return -1;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return (int)vlen;
}

/* the first request header of that name, borrowed and not NUL-terminated; NULL if absent */
static const char *header_ref(const rte_http_req *req, const char *name, size_t *vlen)
{
    if (req->deferred) {
        for (size_t i = 0; i < req->nhdrs; i++)
            if (strcasecmp(req->hdrs[i].name, name) == 0) {
                *vlen = strlen(req->hdrs[i].value);
                return req->hdrs[i].value;
            }
        return NULL;
    }
    /* h2o keeps header names lower-case */
    char lower[128];
    size_t n = strlen(name);
    if (n >= sizeof lower)
        return NULL;
    lower_copy(lower, name, n);
    ssize_t idx = h2o_find_header_by_str(&req->h2o->headers, lower, n, -1);
    if (idx < 0)
        return NULL;
    h2o_iovec_t v = req->h2o->headers.entries[idx].value;
    *vlen = v.len;
    return v.base;
}

/* rte_http_req_header - first request header of that name into buf; length or -1 */
int rte_http_req_header(const rte_http_req *req, const char *name, char *buf, size_t len)
{
    size_t vlen;
    const char *v = header_ref(req, name, &vlen);
    return v != NULL ? copy_value(v, vlen, buf, len) : -1;
}

/* count a field line and append v to buf at *o (after ", " unless first); -1 if it does not fit */
static int join_value(char *buf, size_t len, size_t *o, int *lines, const char *v, size_t vlen)
{
    size_t sep = *o > 0 ? 2 : 0;

    (*lines)++;
    if (vlen == 0)
        return 0;
    if (*o + sep + vlen + 1 > len)
        return -1;
    memcpy(buf + *o, ", ", sep);
    memcpy(buf + *o + sep, v, vlen);
    *o += sep + vlen;
    buf[*o] = '\0';
    return 0;
}

/* rte_http_req_header_list - every line of that header joined with ", "; length or rc */
int rte_http_req_header_list(const rte_http_req *req, const char *name, char *buf, size_t len)
{
    char lower[128];
    size_t n = strlen(name), o = 0;
    int lines = 0;

    if (len == 0)
        return RTE_HTTP_HEADER_TOO_LONG;
    buf[0] = '\0';
    if (req->deferred) {
        for (size_t i = 0; i < req->nhdrs; i++)
            if (strcasecmp(req->hdrs[i].name, name) == 0 &&
                join_value(buf, len, &o, &lines, req->hdrs[i].value, strlen(req->hdrs[i].value)) !=
                    0)
                goto too_long;
    } else {
        if (n >= sizeof lower)
            return RTE_HTTP_HEADER_ABSENT;
        lower_copy(lower, name, n);
        for (ssize_t idx = -1;
             (idx = h2o_find_header_by_str(&req->h2o->headers, lower, n, idx)) != -1;) {
            h2o_iovec_t v = req->h2o->headers.entries[idx].value;
            if (join_value(buf, len, &o, &lines, v.base, v.len) != 0)
                goto too_long;
        }
    }
    if (lines == 0)
        return RTE_HTTP_HEADER_ABSENT;
    return (int)o;
too_long:
    buf[0] = '\0';
    return RTE_HTTP_HEADER_TOO_LONG;
}

/* rte_http_req_body - the request body and its length; borrowed */
const char *rte_http_req_body(const rte_http_req *req, size_t *len)
{
    if (req->deferred) {
        *len = req->body_len;
        return req->body;
    }
    if (req->h2o->entity.base == NULL) {
        *len = 0;
        return "";
    }
    *len = req->h2o->entity.len;
    return req->h2o->entity.base;
}

/*
 * rte_http_add_header - add a response header (copied; the name lower-case,
 * as HTTP/2 requires). Not deferred: loop thread, straight into the h2o
 * response in the request pool. Deferred: any thread, copied into the
 * wrapper for send_now. No lock.
 */
void rte_http_add_header(rte_http_req *req, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    if (!req->deferred) {
        h2o_req_t *hr = req->h2o;
        if (req->responded)
            return; /* too late: the headers have gone */
        char *n = h2o_mem_alloc_pool(&hr->pool, nlen + 1);
        lower_copy(n, name, nlen);
        n[nlen] = '\0';
        h2o_iovec_t v = h2o_strdup(&hr->pool, value, vlen);
        h2o_add_header_by_str(&hr->pool, &hr->res.headers, n, nlen, 1, NULL, v.base, v.len);
        return;
    }
    struct hdr_copy *out = realloc(req->out, (req->nout + 1) * sizeof *out);
    char *block = malloc(nlen + vlen + 2);
    if (out == NULL || block == NULL)
        rte_panic("out of memory");
    req->out = out;
    lower_copy(block, name, nlen);
    block[nlen] = '\0';
    out[req->nout].name = block;
    out[req->nout].value = block + nlen + 1;
    put(block + nlen + 1, value, vlen);
    req->nout++;
}

/* rte_http_respond - send the response; loop thread, or any thread once deferred */
void rte_http_respond(rte_http_req *req, int status, const char *content_type, const char *body,
                      size_t len)
{
    if (!req->deferred) {
        if (req->responded)
            rte_panic("http: second response to request %s", req->id);
        send_now(req, status, content_type, body, len);
        return;
    }
    size_t clen = content_type != NULL ? strlen(content_type) + 1 : 0;
    struct response_msg *m = malloc(sizeof *m + len + clen);
    if (m == NULL)
        rte_panic("out of memory");
    memset(m, 0, sizeof *m);
    m->req = req;
    m->status = status;
    m->len = len;
    if (len > 0)
        memcpy(m->data, body, len);
    if (content_type != NULL) {
        memcpy(m->data + len, content_type, clen);
        m->content_type = m->data + len;
    }
    h2o_multithread_send_message(&req->l->srv->receiver, &m->super);
}

/* rte_http_respond_json - send a cJSON document */
void rte_http_respond_json(rte_http_req *req, int status, const cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);
    if (text == NULL) {
        rte_http_error(req, 500, "could not encode the response");
        return;
    }
    rte_http_respond(req, status, "application/json", text, strlen(text));
    cJSON_free(text);
}

/*
 * rte_http_error - send a JSON error body with a message; written with
 * rte_jsonw into a stack buffer (the text cJSON printed, without its tree)
 */
void rte_http_error(rte_http_req *req, int status, const char *fmt, ...)
{
    char msg[512];
    char body[sizeof msg * 6 + 128]; /* every byte of msg escaped as \u00XX, and the rest */
    rte_jsonw w;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rte_jsonw_init(&w, body, sizeof body);
    rte_jsonw_begin(&w, NULL);
    rte_jsonw_begin(&w, "error");
    rte_jsonw_int(&w, "status", status);
    rte_jsonw_str(&w, "message", msg);
    rte_jsonw_end(&w);
    rte_jsonw_str(&w, "request_id", req->id);
    rte_jsonw_end(&w);
    n = rte_jsonw_done(&w);
    if (n < 0)
        rte_panic("http: error body for request %s does not fit", req->id);
    rte_http_respond(req, status, "application/json", body, (size_t)n);
}

/* rte_http_defer - respond later from any thread; call in the handler */
void rte_http_defer(rte_http_req *req)
{
    h2o_req_t *hr = req->h2o;
    size_t blen = hr->entity.base != NULL ? hr->entity.len : 0;
    size_t need = hr->headers.size * sizeof *req->hdrs + blen + 1;
    req->deferred = 1;
    atomic_fetch_add(&req->refs, 1); /* held until the response message is handled */
    /* one block: the header array, then the body, then each name and value */
    for (size_t i = 0; i < hr->headers.size; i++)
        need += hr->headers.entries[i].name->len + hr->headers.entries[i].value.len + 2;
    req->copy = malloc(need);
    if (req->copy == NULL)
        rte_panic("out of memory");
    req->hdrs = req->copy;
    req->nhdrs = hr->headers.size;
    char *p = (char *)(req->hdrs + req->nhdrs);
    req->body = p;
    req->body_len = blen;
    p = put(p, hr->entity.base, blen);
    for (size_t i = 0; i < req->nhdrs; i++) {
        h2o_header_t *h = &hr->headers.entries[i];
        req->hdrs[i].name = p;
        p = put(p, h->name->base, h->name->len);
        req->hdrs[i].value = p;
        p = put(p, h->value.base, h->value.len);
    }
}

/* --- media types ------------------------------------------------------------------ */

/* RFC 9110 5.6.2 tchar */
static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static size_t token_len(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && is_tchar(p[n]))
        n++;
    return n;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/*
 * one parameter value at *p (token or quoted-string, RFC 9110 5.6.4/5.6.6),
 * unquoted into out (truncated to outlen - 1); advances *p; -1 if malformed
 */
static int param_value(const char **p, const char *end, char *out, size_t outlen)
{
    const char *q = *p;
    size_t o = 0;
    if (q < end && *q == '"') {
        for (q++; q < end && *q != '"'; q++) {
            if (*q == '\\' && ++q == end)
                return -1;
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return -1; /* no control characters, even quoted */
            if (o + 1 < outlen)
                out[o++] = *q;
        }
        if (q == end)
            return -1;
        q++;
    } else {
        size_t n = token_len(q, end);
        if (n == 0)
            return -1;
        for (size_t i = 0; i < n && o + 1 < outlen; i++)
            out[o++] = q[i];
        q += n;
    }
    out[o] = '\0';
    *p = q;
    return 0;
}

/* rte_http_json_content_type - 1 if the Content-Type value names JSON, else 0 + why; pure */
int rte_http_json_content_type(const char *v, size_t n, char *why, size_t whylen)
{
    const char *end = v + n, *p = skip_ows(v, end);
    int charset_ok = 1;

    size_t tl = token_len(p, end);
    const char *type = p, *sub = p + tl + 1;
    size_t sl = tl > 0 && sub <= end && sub[-1] == '/' ? token_len(sub, end) : 0;
    if (sl == 0)
        goto malformed;
    p = sub + sl;
    for (;;) { /* parameters = *( OWS ";" OWS [ name "=" value ] ) */
        p = skip_ows(p, end);
        if (p == end)
            break;
        if (*p != ';')
            goto malformed;
        p = skip_ows(p + 1, end);
        if (p == end || *p == ';')
            continue;
        size_t nl = token_len(p, end);
        if (nl == 0 || p + nl == end || p[nl] != '=')
            goto malformed;
        const char *name = p;
        char value[16];
        p += nl + 1;
        if (param_value(&p, end, value, sizeof value) != 0)
            goto malformed;
        if (nl == 7 && strncasecmp(name, "charset", 7) == 0)
            charset_ok = strcasecmp(value, "utf-8") == 0;
    }
    int json = tl == 11 && strncasecmp(type, "application", 11) == 0 &&
               ((sl == 4 && strncasecmp(sub, "json", 4) == 0) ||
                (sl > 5 && strncasecmp(sub + sl - 5, "+json", 5) == 0));
    if (!json) {
        snprintf(why, whylen, "Content-Type: %.*s/%.*s is not JSON; send application/json",
                 (int)(tl < 64 ? tl : 64), type, (int)(sl < 64 ? sl : 64), sub);
        return 0;
    }
    if (!charset_ok) {
        snprintf(why, whylen, "Content-Type: charset must be utf-8 (JSON is UTF-8, RFC 8259)");
        return 0;
    }
    return 1;
malformed:
    snprintf(why, whylen,
             "Content-Type: not a media type (RFC 9110 8.3: type/subtype *(; name=value)); send "
             "application/json");
    return 0;
}

/* rte_http_require_json - 0 if the content is JSON, else answers 415 and -1; loop thread */
int rte_http_require_json(rte_http_req *req)
{
    char why[256];
    size_t n;
    const char *v = header_ref(req, "content-encoding", &n);
    const char *post = strcmp(req->method, "POST") == 0 ? "Accept-Post" : NULL;

    if (v != NULL && !(n == 8 && strncasecmp(v, "identity", 8) == 0)) {
        size_t tl = token_len(v, v + n); /* echo only token characters */
        rte_http_add_header(req, "Accept-Encoding", "identity");
        rte_http_error(req, 415,
                       "Content-Encoding: %.*s is not accepted; send the JSON without a content "
                       "coding",
                       (int)(tl < 64 ? tl : 64), v);
        return -1;
    }
    v = header_ref(req, "content-type", &n);
    if (v == NULL)
        snprintf(why, sizeof why, "Content-Type: missing; send application/json");
    else if (rte_http_json_content_type(v, n, why, sizeof why))
        return 0;
    if (post != NULL)
        rte_http_add_header(req, post, "application/json");
    rte_http_error(req, 415, "%s", why);
    return -1;
}
